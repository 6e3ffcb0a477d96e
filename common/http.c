/* http.c — see http.h. Invariants:
 *  - a request is in the multi handle from start until it is done or
 *    cancelled, and freed exactly once, after its done callback;
 *  - the sockets array mirrors what curl asked for through the socket
 *    callback, so the poll items are always curl's current wishes;
 *  - curl's timer is an absolute deadline checked on every step. */
#define _GNU_SOURCE
#include "common/http.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/dynbuf.h"
#include "common/error.h"
#include "common/log.h"

typedef struct {
    curl_socket_t fd;
    int what; /* CURL_POLL_IN / _OUT / _INOUT */
} http_socket;

struct http_request {
    http_client_t *client;
    CURL *easy;
    struct curl_slist *headers;
    char *request_body;
    bool streaming;
    http_data_fn on_data;
    http_header_fn on_header;
    http_done_fn on_done;
    void *payload;
    dynbuf body;
    bool too_large;  /* the reply passed the body cap */
    CURLcode result; /* set when the transfer finished */
    bool done;       /* left the multi handle, callback pending */
    bool cancelled;  /* cancelled while its callback was pending */
    char error[CURL_ERROR_SIZE];
    http_request_t *next;
};

struct http_client {
    CURLM *multi;
    http_socket sockets[HTTP_MAX_SOCKETS];
    int n_sockets;
    int64_t deadline_ms; /* curl's timer, absolute; INT64_MAX when none */
    int running;
    int pending;              /* started, done callback not yet run */
    http_request_t *requests; /* every live request */
};

static bool global_init_done;
static int global_init_result;

int http_global_init(void)
{
    if (!global_init_done) {
        global_init_result = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? KV_OK
                                                                                : KV_ERR_IO;
        global_init_done = true;
    }
    return global_init_result;
}

/* ---- curl callbacks ---------------------------------------------------------------- */

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    http_client_t *c = userp;
    int i;
    for (i = 0; i < c->n_sockets; i++)
        if (c->sockets[i].fd == fd)
            break;
    if (what == CURL_POLL_REMOVE) {
        if (i < c->n_sockets)
            c->sockets[i] = c->sockets[--c->n_sockets];
        return 0;
    }
    if (i == c->n_sockets) {
        if (c->n_sockets == HTTP_MAX_SOCKETS) {
            log_error("http: more than %d sockets at once", HTTP_MAX_SOCKETS);
            return -1;
        }
        c->n_sockets++;
    }
    c->sockets[i] = (http_socket){.fd = fd, .what = what};
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    http_client_t *c = userp;
    c->deadline_ms = timeout_ms < 0 ? INT64_MAX : clock_now_ms() + timeout_ms;
    return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    http_request_t *r = userp;
    size_t len = size * nmemb;
    if (r->streaming && r->on_data) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300)
            return r->on_data(r->payload, data, len) < 0 ? 0 : len;
    }
    int rc = dynbuf_append(&r->body, data, len);
    if (rc == KV_ERR_TOO_LARGE)
        r->too_large = true;
    return rc == KV_OK ? len : 0; /* 0 aborts: over the cap, never grown without bound */
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    http_request_t *r = userp;
    size_t len = size * nmemb;
    if (r->on_header)
        r->on_header(r->payload, data, len);
    return len;
}

/* ---- life cycle ----------------------------------------------------------------- */

int http_client_new(http_client_t **out, long max_connections)
{
    *out = NULL;
    if (http_global_init() < 0)
        return KV_ERR_IO;
    http_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return KV_ERR_NOMEM;
    c->deadline_ms = INT64_MAX;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return KV_ERR_NOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    if (max_connections <= 0 || max_connections > HTTP_MAX_SOCKETS / 2)
        max_connections = HTTP_MAX_SOCKETS / 2;
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_connections);
    *out = c;
    return KV_OK;
}

static void request_free(http_request_t *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    if (r->request_body)
        memset(r->request_body, 0, strlen(r->request_body)); /* a login's password */
    free(r->request_body);
    dynbuf_free(&r->body);
    free(r);
}

static void request_unlink(http_client_t *c, http_request_t *r)
{
    for (http_request_t **p = &c->requests; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            c->pending--;
            return;
        }
    }
}

void http_client_destroy(http_client_t **client_p)
{
    http_client_t *c = *client_p;
    if (!c)
        return;
    while (c->requests) {
        http_request_t *r = c->requests;
        c->requests = r->next;
        if (!r->done)
            curl_multi_remove_handle(c->multi, r->easy);
        request_free(r);
    }
    curl_multi_cleanup(c->multi);
    free(c);
    *client_p = NULL;
}

/* ---- requests ---------------------------------------------------------------------- */

static int configure(http_request_t *r, const http_request_spec *spec)
{
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, spec->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (spec->connect_timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, spec->connect_timeout_ms);
    if (spec->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, spec->timeout_ms);
    if (r->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);

    const char *method = spec->method ? spec->method : "GET";
    if (spec->body || strcmp(method, "POST") == 0) {
        /* A POST always carries a body, even an empty one. */
        r->request_body = malloc(spec->body_len + 1);
        if (!r->request_body)
            return KV_ERR_NOMEM;
        if (spec->body_len)
            memcpy(r->request_body, spec->body, spec->body_len);
        r->request_body[spec->body_len] = '\0';
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)spec->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->request_body);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    return spec->setup ? spec->setup(spec->setup_payload, e) : KV_OK;
}

int http_client_start(http_client_t *c, const http_request_spec *spec, http_request_t **out)
{
    if (out)
        *out = NULL;
    http_request_t *r = calloc(1, sizeof *r);
    if (!r) {
        curl_slist_free_all(spec->headers);
        return KV_ERR_NOMEM;
    }
    r->client = c;
    r->headers = spec->headers;
    r->streaming = spec->streaming;
    r->on_data = spec->on_data;
    r->on_header = spec->on_header;
    r->on_done = spec->on_done;
    r->payload = spec->payload;
    dynbuf_init(&r->body, spec->body_max ? spec->body_max
                                         : (spec->streaming ? HTTP_ERROR_BODY_MAX : HTTP_BODY_MAX));
    r->easy = curl_easy_init();
    int rc = r->easy ? configure(r, spec) : KV_ERR_NOMEM;
    if (rc == KV_OK && curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
        rc = KV_ERR_IO;
    if (rc < 0) {
        request_free(r);
        return rc;
    }
    r->next = c->requests;
    c->requests = r;
    c->pending++;
    if (out)
        *out = r;
    return KV_OK;
}

void http_client_cancel(http_client_t *c, http_request_t **request)
{
    http_request_t *r = *request;
    *request = NULL;
    if (!r)
        return;
    if (r->done) {
        r->cancelled = true; /* freed by the step that holds it */
        return;
    }
    curl_multi_remove_handle(c->multi, r->easy);
    request_unlink(c, r);
    request_free(r);
}

/* ---- the step ---------------------------------------------------------------------- */

int http_client_pollitems(const http_client_t *c, zmq_pollitem_t *items, int max)
{
    int n = 0;
    for (int i = 0; i < c->n_sockets && n < max; i++) {
        short events = 0;
        if (c->sockets[i].what & CURL_POLL_IN)
            events |= ZMQ_POLLIN;
        if (c->sockets[i].what & CURL_POLL_OUT)
            events |= ZMQ_POLLOUT;
        items[n++] = (zmq_pollitem_t){.socket = NULL, .fd = c->sockets[i].fd, .events = events};
    }
    return n;
}

int64_t http_client_timeout_ms(const http_client_t *c, int64_t now_ms)
{
    if (c->deadline_ms == INT64_MAX)
        return INT64_MAX;
    return c->deadline_ms > now_ms ? c->deadline_ms - now_ms : 0;
}

int http_client_pending(const http_client_t *c) { return c->pending; }

/* The reply's Retry-After in ms, -1 when it had none. curl reads both forms,
 * delay-seconds and HTTP-date. */
static int64_t retry_after_ms(CURL *easy)
{
    curl_off_t seconds = 0;
    if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &seconds) != CURLE_OK || seconds <= 0)
        return -1;
    int64_t ms = (int64_t)seconds * 1000;
    return ms < HTTP_RETRY_AFTER_MAX_MS ? ms : HTTP_RETRY_AFTER_MAX_MS;
}

static void finish_done(http_client_t *c)
{
    for (;;) {
        http_request_t *done[64];
        size_t n = 0;
        CURLMsg *msg;
        int left = 0;

        /* Take finished transfers out first: a callback may cancel or start
         * others, and must not meet a handle curl still reports. */
        while (n < sizeof done / sizeof done[0] && (msg = curl_multi_info_read(c->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            http_request_t *r = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            r->result = msg->data.result;
            curl_multi_remove_handle(c->multi, r->easy);
            r->done = true;
            done[n++] = r;
        }
        if (n == 0)
            return;
        for (size_t i = 0; i < n; i++) {
            http_request_t *r = done[i];
            CURLcode code = r->result;
            long status = 0;
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
            if (!r->cancelled) {
                http_response resp = {
                    .status = status,
                    .curl_code = (int)code,
                    .error = code == CURLE_OK
                                 ? NULL
                                 : (r->too_large ? "response too large"
                                                 : (r->error[0] ? r->error
                                                                : curl_easy_strerror(code))),
                    .body = r->body.data ? r->body.data : "",
                    .body_len = r->body.len,
                    .body_too_large = r->too_large,
                    .retry_after_ms = retry_after_ms(r->easy),
                };
                r->on_done(r->payload, &resp);
            }
            request_unlink(c, r);
            request_free(r);
        }
    }
}

void http_client_step(http_client_t *c, int64_t now_ms)
{
    struct pollfd fds[HTTP_MAX_SOCKETS];
    int n = c->n_sockets;

    for (int i = 0; i < n; i++) {
        fds[i].fd = c->sockets[i].fd;
        fds[i].events = (short)(((c->sockets[i].what & CURL_POLL_IN) ? POLLIN : 0) |
                                ((c->sockets[i].what & CURL_POLL_OUT) ? POLLOUT : 0));
        fds[i].revents = 0;
    }
    /* The caller's poll woke us; ask the kernel which of curl's sockets are
     * ready without waiting (the caller's items may be stale by now). */
    if (n > 0 && poll(fds, (nfds_t)n, 0) > 0) {
        for (int i = 0; i < n; i++) {
            int flags = 0;
            if (fds[i].revents & (POLLIN | POLLHUP))
                flags |= CURL_CSELECT_IN;
            if (fds[i].revents & POLLOUT)
                flags |= CURL_CSELECT_OUT;
            if (fds[i].revents & (POLLERR | POLLNVAL))
                flags |= CURL_CSELECT_ERR;
            if (flags)
                curl_multi_socket_action(c->multi, fds[i].fd, flags, &c->running);
        }
    }
    if (now_ms >= c->deadline_ms || clock_now_ms() >= c->deadline_ms) {
        c->deadline_ms = INT64_MAX; /* curl sets the next one */
        curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &c->running);
    }
    finish_done(c);
}

void http_client_wait(http_client_t *c, int64_t max_wait_ms)
{
    struct pollfd fds[HTTP_MAX_SOCKETS];
    int64_t now = clock_now_ms();
    int64_t timeout = http_client_timeout_ms(c, now);
    if (max_wait_ms >= 0 && max_wait_ms < timeout)
        timeout = max_wait_ms;
    int n = c->n_sockets;
    if (timeout == INT64_MAX)
        timeout = n > 0 ? 1000 : 0; /* never wait for nothing */
    for (int i = 0; i < n; i++) {
        fds[i].fd = c->sockets[i].fd;
        fds[i].events = (short)(((c->sockets[i].what & CURL_POLL_IN) ? POLLIN : 0) |
                                ((c->sockets[i].what & CURL_POLL_OUT) ? POLLOUT : 0));
        fds[i].revents = 0;
    }
    if (poll(fds, (nfds_t)n, (int)timeout) < 0 && errno != EINTR)
        log_warn("http: poll: %s", strerror(errno));
    http_client_step(c, clock_now_ms());
}
