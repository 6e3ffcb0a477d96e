/* http.h — one non-blocking HTTP core on a libcurl multi handle, driven from
 * the caller's zmq_poll loop through curl's socket API.
 *
 * The loop asks for the sockets curl wants watched (http_client_pollitems,
 * raw-fd zmq poll items) and for its timer (http_client_timeout_ms), polls
 * them together with its own sockets, then calls http_client_step: the
 * sockets that are ready go to curl, curl's timer fires when its absolute
 * deadline has passed (whatever woke the poll: a busy socket must not
 * starve another transfer's timeouts), and finished transfers are reported
 * to their done callbacks.
 *
 * The core knows HTTP only. Credentials, TLS settings and cookies are the
 * glue's business (kube_client: bearer, client certificates; avi_session:
 * login, cookies, CSRF), set through the spec's `setup` hook on the easy
 * handle. Every buffered body has a hard maximum: a reply that passes it
 * is aborted and reported with body_too_large, never grown without bound.
 *
 * Callbacks: on_data and on_header run inside curl and must not start or
 * cancel requests; on_done runs after the transfer left the multi handle
 * and may do both. */
#ifndef KAVI_COMMON_HTTP_H
#define KAVI_COMMON_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define HTTP_MAX_SOCKETS 64                /* poll items curl may need at once */
#define HTTP_BODY_MAX ((size_t)64 << 20)   /* default cap on one buffered body */
#define HTTP_ERROR_BODY_MAX ((size_t)64 << 10) /* the body of a streaming request's error reply */
#define HTTP_RETRY_AFTER_MAX_MS 3600000    /* an absurd Retry-After is capped at an hour */

typedef struct http_client http_client_t;
typedef struct http_request http_request_t;

typedef struct {
    long status;            /* HTTP status; 0 when no response came */
    int curl_code;          /* CURLE_OK, or why the transfer failed */
    const char *error;      /* curl's message when curl_code != 0 */
    const char *body;       /* the buffered body, NUL-terminated ("" when none) */
    size_t body_len;
    bool body_too_large;    /* the reply passed body_max and was aborted */
    int64_t retry_after_ms; /* from Retry-After; -1 when absent */
} http_response;

/* Streaming 2xx body bytes; a negative return aborts the transfer. */
typedef int (*http_data_fn)(void *payload, const char *data, size_t len);
/* One response header line as curl received it (with its CRLF). */
typedef void (*http_header_fn)(void *payload, const char *line, size_t len);
typedef void (*http_done_fn)(void *payload, const http_response *response);
/* Last word on the easy handle before it goes out (TLS, cookies, auth);
 * a negative kv_err refuses the request. */
typedef int (*http_setup_fn)(void *payload, CURL *easy);

typedef struct {
    const char *method;          /* "GET" (default), "POST", "PUT", ... */
    const char *url;             /* absolute */
    struct curl_slist *headers;  /* taken: freed with the request, even on failure */
    const char *body;            /* copied; NULL for none */
    size_t body_len;             /* of body */
    size_t body_max;             /* cap on the buffered reply; 0: HTTP_BODY_MAX */
    long connect_timeout_ms;     /* 0: curl's default */
    long timeout_ms;             /* whole transfer; 0: none (watches) */
    bool streaming;              /* 2xx body goes to on_data, not the buffer */
    http_data_fn on_data;
    http_header_fn on_header;
    http_setup_fn setup;
    void *setup_payload;         /* for setup (the glue's object) */
    http_done_fn on_done;        /* required */
    void *payload;               /* for on_data, on_header, on_done */
} http_request_spec;

/* max_connections bounds the connections open at once (0: curl's default). */
int http_client_new(http_client_t **out, long max_connections);
/* Cancels every request still running without calling its on_done. */
void http_client_destroy(http_client_t **client);

/* Starts a request; *out (optional) is a handle for http_client_cancel,
 * valid until on_done runs. */
int http_client_start(http_client_t *c, const http_request_spec *spec, http_request_t **out);
/* Stops a request without calling on_done; sets *request to NULL. */
void http_client_cancel(http_client_t *c, http_request_t **request);

/* Fills up to `max` raw-fd poll items; returns how many. */
int http_client_pollitems(const http_client_t *c, zmq_pollitem_t *items, int max);
/* Milliseconds until curl's timer is due (INT64_MAX: none). */
int64_t http_client_timeout_ms(const http_client_t *c, int64_t now_ms);
/* Drives every ready socket and the timer; runs done callbacks. */
void http_client_step(http_client_t *c, int64_t now_ms);
/* Waits at most max_wait_ms for curl's sockets or timer, then steps: for
 * callers with no loop of their own (a command-line listing). */
void http_client_wait(http_client_t *c, int64_t max_wait_ms);
/* Requests started and not yet done. */
int http_client_pending(const http_client_t *c);

/* One-time curl_global_init; later calls return its first result. */
int http_global_init(void);

#endif
