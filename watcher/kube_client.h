/* kube_client.h — HTTP requests to the Kubernetes API server on the
 * non-blocking HTTP core (common/http.h), driven from the caller's
 * zmq_poll loop. This module is the Kubernetes glue: URL, bearer token,
 * client certificate, server verification, exec credential plugins.
 *
 * The loop asks for the sockets curl wants watched (kube_client_pollitems,
 * raw-fd zmq poll items) and for its timer (kube_client_timeout_ms), polls,
 * then calls kube_client_step: the sockets that are ready are handed to
 * curl, the timer fires when the absolute deadline has passed (whatever woke
 * the poll — a busy socket must not starve another transfer's timeouts),
 * and finished transfers are reported to their done callbacks.
 *
 * Every request carries the current credentials (bearer token, client
 * certificate) and verifies the server as the kube_config says. A 401 marks
 * the credentials stale, so the next request re-reads the token file or
 * re-runs the exec plugin. The plugin runs beside the loop (its stdout is
 * one more poll item): requests started meanwhile wait for it, while the
 * transfers already running go on.
 *
 * Callbacks: on_data runs inside curl and must not start or cancel
 * requests; on_done runs after the transfer left the multi handle and may
 * do both. */
#ifndef KAVI_WATCHER_KUBE_CLIENT_H
#define KAVI_WATCHER_KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "common/dynbuf.h"
#include "watcher/kube_config.h"

#define KUBE_CLIENT_MAX_SOCKETS 64         /* poll items curl may need at once */
#define KUBE_CLIENT_MAX_POLLITEMS (KUBE_CLIENT_MAX_SOCKETS + 1) /* and an exec plugin's stdout */
#define KUBE_BODY_MAX ((size_t)256 << 20)  /* a whole response (one list page) */
#define KUBE_ERROR_BODY_MAX (64 << 10)     /* the body of an error reply */
#define KUBE_CONNECT_TIMEOUT_MS 10000
#define KUBE_REQUEST_TIMEOUT_MS 60000      /* non-streaming requests only */

typedef struct kube_client kube_client_t;
typedef struct kube_request kube_request_t;

typedef struct {
    long status;            /* HTTP status; 0 when no response came */
    int curl_code;          /* CURLE_OK, or why the transfer failed */
    const char *error;      /* curl's message when curl_code != 0 */
    const char *body;       /* the whole body (buffered requests) or an error body */
    size_t body_len;
    int64_t retry_after_ms; /* from Retry-After; -1 when absent */
} kube_response;

/* Streaming 2xx body bytes; a negative return aborts the transfer. */
typedef int (*kube_data_fn)(void *payload, const char *data, size_t len);
typedef void (*kube_done_fn)(void *payload, const kube_response *response);

typedef struct {
    const char *method;       /* "GET" (default), "PATCH", ... */
    const char *path;         /* "/api/v1/services?limit=500", appended to the server */
    const char *body;         /* request body, NULL for none */
    const char *content_type; /* of the body */
    bool streaming;           /* a watch: no total timeout; 2xx body goes to on_data */
    kube_data_fn on_data;
    kube_done_fn on_done;     /* required */
    void *payload;
} kube_request_spec;

/* Takes cfg (destroyed with the client). */
int kube_client_new(kube_client_t **out, kube_config *cfg, char *err, size_t err_len);
void kube_client_destroy(kube_client_t **client);

const kube_config *kube_client_config(const kube_client_t *c);

/* Starts a request; *out (optional) is a handle for kube_client_cancel,
 * valid until on_done runs. */
int kube_client_start(kube_client_t *c, const kube_request_spec *spec, kube_request_t **out);
/* Stops a request without calling on_done; sets *request to NULL. */
void kube_client_cancel(kube_client_t *c, kube_request_t **request);

/* Fills up to `max` raw-fd poll items; returns how many. */
int kube_client_pollitems(kube_client_t *c, zmq_pollitem_t *items, int max);
/* Milliseconds until curl's timer is due (INT64_MAX: none). */
int64_t kube_client_timeout_ms(const kube_client_t *c, int64_t now_ms);
/* Drives every ready socket and the timer; runs done callbacks. */
void kube_client_step(kube_client_t *c, int64_t now_ms);
/* Transfers in progress. */
int kube_client_running(const kube_client_t *c);

/* Splits a byte stream into lines with a capped buffer: bytes arrive in any
 * pieces (an event split across reads, several events in one read). Each
 * complete line (without '\n' and a trailing '\r') goes to fn; a line over
 * `max` bytes is KV_ERR_TOO_LARGE. */
typedef int (*kube_line_fn)(void *payload, char *line, size_t len);
typedef struct {
    dynbuf partial;
} kube_lines;
void kube_lines_init(kube_lines *lines, size_t max);
int kube_lines_feed(kube_lines *lines, const char *data, size_t len, kube_line_fn fn,
                    void *payload);
void kube_lines_reset(kube_lines *lines);
void kube_lines_free(kube_lines *lines);

#endif
