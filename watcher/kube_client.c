/* kube_client.c — see kube_client.h. Invariants:
 *  - a request is in the multi handle from start (or, when an exec plugin
 *    is fetching credentials, from the end of that run) until it is done
 *    or cancelled, and freed exactly once, after its done callback;
 *  - the sockets array mirrors what curl asked for through the socket
 *    callback, so the poll items are always curl's current wishes;
 *  - the timer is an absolute deadline checked on every step. */
#define _GNU_SOURCE
#include "watcher/kube_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

typedef struct {
    curl_socket_t fd;
    int what; /* CURL_POLL_IN / _OUT / _INOUT */
} kube_socket;

struct kube_request {
    kube_client_t *client;
    CURL *easy;
    struct curl_slist *headers;
    char *request_body;
    bool streaming;
    kube_data_fn on_data;
    kube_done_fn on_done;
    void *payload;
    dynbuf body;
    long status_seen; /* response code when the body started */
    CURLcode result; /* set when the transfer finished */
    bool done;      /* left the multi handle, callback pending */
    bool cancelled; /* cancelled while its callback was pending */
    bool waiting;   /* not in the multi handle yet: waits for the exec plugin */
    bool failed_launch; /* could not join the multi handle; its callback is due */
    char error[CURL_ERROR_SIZE];
    kube_request_t *next;
};

struct kube_client {
    kube_config *cfg;
    CURLM *multi;
    kube_socket sockets[KUBE_CLIENT_MAX_SOCKETS];
    int n_sockets;
    int64_t deadline_ms; /* curl's timer, absolute; INT64_MAX when none */
    int running;
    kube_request_t *requests; /* every live request */
    char *connect_to_host;    /* tls-server-name: the URL host */
    struct curl_slist *connect_to;
    char credential_error[512]; /* last refresh failure, logged once */
};

static bool global_init_done;

/* ---- lines --------------------------------------------------------------------- */

void kube_lines_init(kube_lines *lines, size_t max) { dynbuf_init(&lines->partial, max); }

void kube_lines_reset(kube_lines *lines) { dynbuf_reset(&lines->partial); }

void kube_lines_free(kube_lines *lines) { dynbuf_free(&lines->partial); }

static int deliver_line(char *line, size_t len, kube_line_fn fn, void *payload)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    line[len] = '\0';
    return len > 0 ? fn(payload, line, len) : KV_OK;
}

int kube_lines_feed(kube_lines *lines, const char *data, size_t len, kube_line_fn fn,
                    void *payload)
{
    dynbuf *partial = &lines->partial;
    int rc;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (!nl || partial->len > 0) {
            /* Part of a line: keep it until its newline arrives. */
            rc = dynbuf_append(partial, data, take);
            if (rc < 0) {
                dynbuf_reset(partial);
                return rc;
            }
            if (!nl)
                return KV_OK;
            rc = deliver_line(partial->data, partial->len, fn, payload);
            dynbuf_reset(partial);
        } else {
            /* A whole line inside this read: no copy but one for the NUL. */
            if (take > partial->max)
                return KV_ERR_TOO_LARGE;
            char *line = strndup(data, take);
            if (!line)
                return KV_ERR_NOMEM;
            rc = deliver_line(line, take, fn, payload);
            free(line);
        }
        if (rc < 0)
            return rc;
        data += take + 1;
        len -= take + 1;
    }
    return KV_OK;
}

/* ---- curl callbacks ---------------------------------------------------------------- */

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    kube_client_t *c = userp;
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
        if (c->n_sockets == KUBE_CLIENT_MAX_SOCKETS) {
            log_error("kube: more than %d sockets at once", KUBE_CLIENT_MAX_SOCKETS);
            return -1;
        }
        c->n_sockets++;
    }
    c->sockets[i] = (kube_socket){.fd = fd, .what = what};
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    kube_client_t *c = userp;
    c->deadline_ms = timeout_ms < 0 ? INT64_MAX : clock_now_ms() + timeout_ms;
    return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    kube_request_t *r = userp;
    size_t len = size * nmemb;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    r->status_seen = status;
    if (r->streaming && status >= 200 && status < 300 && r->on_data)
        return r->on_data(r->payload, data, len) < 0 ? 0 : len;
    if (dynbuf_append(&r->body, data, len) < 0)
        return 0; /* over the cap: abort rather than grow without bound */
    return len;
}

/* ---- life cycle ----------------------------------------------------------------- */

/* "https://host:port" → host and port, for CURLOPT_CONNECT_TO. */
static int server_host_port(const char *server, char *host, size_t host_len, int *port)
{
    bool https = strncmp(server, "https://", 8) == 0;
    const char *p = server + (https ? 8 : 7);
    const char *end = p + strcspn(p, "/");
    const char *colon = NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close)
            return KV_ERR_INVALID;
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
    }
    size_t n = (size_t)((colon ? colon : end) - p);
    if (n == 0 || n >= host_len)
        return KV_ERR_INVALID;
    memcpy(host, p, n);
    host[n] = '\0';
    *port = colon ? atoi(colon + 1) : (https ? 443 : 80);
    return *port > 0 && *port < 65536 ? KV_OK : KV_ERR_INVALID;
}

int kube_client_new(kube_client_t **out, kube_config *cfg, char *err, size_t err_len)
{
    kube_client_t *c = NULL;
    *out = NULL;
    if (!global_init_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, err_len, "curl_global_init failed");
            kube_config_destroy(&cfg);
            return KV_ERR_IO;
        }
        global_init_done = true;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        kube_config_destroy(&cfg);
        return KV_ERR_NOMEM;
    }
    c->cfg = cfg;
    c->deadline_ms = INT64_MAX;
    c->multi = curl_multi_init();
    if (!c->multi) {
        snprintf(err, err_len, "curl_multi_init failed");
        kube_client_destroy(&c);
        return KV_ERR_NOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)KUBE_CLIENT_MAX_SOCKETS / 2);
    if (cfg->tls_server_name) {
        /* Verify and send SNI for tls-server-name, but connect to the server. */
        char host[256], entry[600];
        int port = 0;
        if (server_host_port(cfg->server, host, sizeof host, &port) < 0) {
            snprintf(err, err_len, "server %s: cannot read host and port", cfg->server);
            kube_client_destroy(&c);
            return KV_ERR_INVALID;
        }
        snprintf(entry, sizeof entry, "%s:%d:%s:%d", cfg->tls_server_name, port, host, port);
        c->connect_to = curl_slist_append(NULL, entry);
        size_t n = strlen(cfg->tls_server_name) + 32;
        c->connect_to_host = malloc(n);
        if (!c->connect_to || !c->connect_to_host) {
            kube_client_destroy(&c);
            return KV_ERR_NOMEM;
        }
        snprintf(c->connect_to_host, n, "https://%s:%d", cfg->tls_server_name, port);
    }
    *out = c;
    return KV_OK;
}

static void request_free(kube_request_t *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->request_body);
    dynbuf_free(&r->body);
    free(r);
}

static void request_unlink(kube_client_t *c, kube_request_t *r)
{
    for (kube_request_t **p = &c->requests; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            return;
        }
    }
}

void kube_client_destroy(kube_client_t **client_p)
{
    kube_client_t *c = *client_p;
    if (!c)
        return;
    while (c->requests) {
        kube_request_t *r = c->requests;
        c->requests = r->next;
        if (!r->done && !r->waiting)
            curl_multi_remove_handle(c->multi, r->easy);
        request_free(r);
    }
    if (c->multi)
        curl_multi_cleanup(c->multi);
    curl_slist_free_all(c->connect_to);
    free(c->connect_to_host);
    kube_config_destroy(&c->cfg);
    free(c);
    *client_p = NULL;
}

const kube_config *kube_client_config(const kube_client_t *c) { return c->cfg; }

/* ---- requests ---------------------------------------------------------------------- */

static void set_blob(CURL *easy, CURLoption option, const kube_blob *blob)
{
    struct curl_blob b = {.data = blob->data, .len = blob->len, .flags = CURL_BLOB_COPY};
    curl_easy_setopt(easy, option, &b);
}

static int configure(kube_client_t *c, kube_request_t *r, const kube_request_spec *spec)
{
    const kube_config *cfg = c->cfg;
    CURL *e = r->easy;
    size_t n = strlen(c->connect_to_host ? c->connect_to_host : cfg->server) + strlen(spec->path) + 1;
    char *url = malloc(n);
    if (!url)
        return KV_ERR_NOMEM;
    snprintf(url, n, "%s%s", c->connect_to_host ? c->connect_to_host : cfg->server, spec->path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    free(url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip for large lists */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)KUBE_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kavi-watcher");
    /* HTTP/1.1: one connection per watch, so a dead or stalled connection
     * costs only its own watch, and the idle abort of one watch (which
     * closes its connection) never leaves the others on a dead path. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    /* A watch lives as long as the server keeps it; only its idle timer,
     * in the reflector, may end it early. */
    if (!spec->streaming)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)KUBE_REQUEST_TIMEOUT_MS);
    if (c->connect_to)
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, c->connect_to);

    if (cfg->ca_data.data)
        set_blob(e, CURLOPT_CAINFO_BLOB, &cfg->ca_data);
    else if (cfg->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
    if (cfg->insecure_skip_tls_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (h && spec->content_type) {
        char line[256];
        snprintf(line, sizeof line, "Content-Type: %s", spec->content_type);
        struct curl_slist *grown = curl_slist_append(h, line);
        h = grown ? grown : (curl_slist_free_all(h), NULL);
    }
    if (!h)
        return KV_ERR_NOMEM;
    r->headers = h; /* set on the handle with the credentials */

    const char *method = spec->method ? spec->method : "GET";
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (spec->body) {
        r->request_body = strdup(spec->body);
        if (!r->request_body)
            return KV_ERR_NOMEM;
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->request_body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->request_body));
    }
    return KV_OK;
}

/* The credentials as they are now: the client certificate and the bearer
 * token, which is the last header. */
static int attach_credentials(kube_client_t *c, kube_request_t *r)
{
    const kube_config *cfg = c->cfg;
    CURL *e = r->easy;
    if (cfg->client_cert_data.data) {
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        set_blob(e, CURLOPT_SSLCERT_BLOB, &cfg->client_cert_data);
        set_blob(e, CURLOPT_SSLKEY_BLOB, &cfg->client_key_data);
    } else if (cfg->client_cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLCERT, cfg->client_cert_file);
        curl_easy_setopt(e, CURLOPT_SSLKEY, cfg->client_key_file);
    }
    if (cfg->token) {
        size_t len = strlen(cfg->token) + sizeof "Authorization: Bearer ";
        char *line = malloc(len);
        if (!line)
            return KV_ERR_NOMEM;
        snprintf(line, len, "Authorization: Bearer %s", cfg->token);
        struct curl_slist *grown = curl_slist_append(r->headers, line);
        free(line);
        if (!grown)
            return KV_ERR_NOMEM;
        r->headers = grown;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    return KV_OK;
}

/* The request goes out with the current credentials. */
static int launch(kube_client_t *c, kube_request_t *r)
{
    int rc = attach_credentials(c, r);
    if (rc == KV_OK && curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
        rc = KV_ERR_IO;
    r->waiting = false;
    return rc;
}

/* A credential refresh that failed is logged once per distinct reason. */
static void note_credentials(kube_client_t *c, int rc, const char *why)
{
    if (rc < 0) {
        if (strcmp(why, c->credential_error) != 0)
            log_warn("kube: cannot refresh credentials (%s); using the previous ones", why);
        snprintf(c->credential_error, sizeof c->credential_error, "%s", why);
    } else {
        c->credential_error[0] = '\0';
    }
}

int kube_client_start(kube_client_t *c, const kube_request_spec *spec, kube_request_t **out)
{
    kube_request_t *r = NULL;
    char why[512] = "";
    int rc;

    if (out)
        *out = NULL;
    /* Credentials first: a token file read a minute ago or an expired exec
     * credential is refreshed before it goes out. While an exec plugin
     * runs, the request waits for it outside the multi handle. */
    int refresh = kube_config_refresh_async(c->cfg, clock_now_ms(), why, sizeof why);
    if (refresh != KV_ERR_AGAIN)
        note_credentials(c, refresh, why);
    r = calloc(1, sizeof *r);
    if (!r)
        return KV_ERR_NOMEM;
    r->client = c;
    r->streaming = spec->streaming;
    r->on_data = spec->on_data;
    r->on_done = spec->on_done;
    r->payload = spec->payload;
    dynbuf_init(&r->body, spec->streaming ? KUBE_ERROR_BODY_MAX : KUBE_BODY_MAX);
    r->easy = curl_easy_init();
    rc = r->easy ? configure(c, r, spec) : KV_ERR_NOMEM;
    if (rc == KV_OK && refresh == KV_ERR_AGAIN)
        r->waiting = true;
    else if (rc == KV_OK)
        rc = launch(c, r);
    if (rc < 0) {
        request_free(r);
        return rc;
    }
    r->next = c->requests;
    c->requests = r;
    if (out)
        *out = r;
    return KV_OK;
}

void kube_client_cancel(kube_client_t *c, kube_request_t **request)
{
    kube_request_t *r = *request;
    *request = NULL;
    if (!r)
        return;
    if (r->done) {
        r->cancelled = true; /* freed by the step that holds it */
        return;
    }
    if (!r->waiting)
        curl_multi_remove_handle(c->multi, r->easy);
    request_unlink(c, r);
    request_free(r);
}

/* ---- the step ---------------------------------------------------------------------- */

int kube_client_pollitems(kube_client_t *c, zmq_pollitem_t *items, int max)
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
    int exec_fd = kube_config_exec_fd(c->cfg);
    if (exec_fd >= 0 && n < max)
        items[n++] = (zmq_pollitem_t){.socket = NULL, .fd = exec_fd, .events = ZMQ_POLLIN};
    return n;
}

int64_t kube_client_timeout_ms(const kube_client_t *c, int64_t now_ms)
{
    int64_t deadline = c->deadline_ms;
    int64_t exec_deadline = kube_config_exec_deadline(c->cfg);
    if (exec_deadline < deadline)
        deadline = exec_deadline;
    if (deadline == INT64_MAX)
        return INT64_MAX;
    return deadline > now_ms ? deadline - now_ms : 0;
}

int kube_client_running(const kube_client_t *c) { return c->running; }

/* The reply's Retry-After in ms, -1 when it had none. curl reads both forms,
 * delay-seconds and HTTP-date; an absurd wait is capped at an hour. */
static int64_t retry_after_ms(CURL *easy)
{
    curl_off_t seconds = 0;
    if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &seconds) != CURLE_OK || seconds <= 0)
        return -1;
    return (int64_t)(seconds < 3600 ? seconds : 3600) * 1000;
}

static void finish_done(kube_client_t *c)
{
    kube_request_t *done[256];
    size_t n = 0;
    CURLMsg *msg;
    int left = 0;

    /* Take every finished transfer out first: a callback may cancel or
     * start others, and must not meet a handle curl still reports. */
    while (n < sizeof done / sizeof done[0] && (msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        kube_request_t *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode code = msg->data.result;
        curl_multi_remove_handle(c->multi, r->easy);
        r->done = true;
        r->result = code;
        done[n++] = r;
    }
    for (size_t i = 0; i < n; i++) {
        kube_request_t *r = done[i];
        CURLcode code = r->result;
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (!r->cancelled) {
            if (status == 401)
                kube_config_invalidate(c->cfg);
            kube_response resp = {
                .status = status,
                .curl_code = (int)code,
                .error = code == CURLE_OK ? NULL : (r->error[0] ? r->error : curl_easy_strerror(code)),
                .body = r->body.data ? r->body.data : "",
                .body_len = r->body.len,
                .retry_after_ms = retry_after_ms(r->easy),
            };
            r->on_done(r->payload, &resp);
        }
        request_unlink(c, r);
        request_free(r);
    }
}

/* Requests that waited for the exec plugin go out once it is done (with
 * the previous credentials if it failed). One that cannot join the multi
 * handle gets its done callback here, after the others went out, since a
 * callback may start or cancel requests. */
static void release_waiting(kube_client_t *c)
{
    char why[512] = "";
    int rc = kube_config_exec_step(c->cfg, why, sizeof why);
    if (rc == KV_ERR_AGAIN)
        return;
    note_credentials(c, rc, why);
    for (kube_request_t *r = c->requests; r; r = r->next)
        if (r->waiting && launch(c, r) < 0)
            r->failed_launch = true;
    for (;;) {
        kube_request_t *r = c->requests;
        while (r && !r->failed_launch)
            r = r->next;
        if (!r)
            return;
        curl_multi_remove_handle(c->multi, r->easy);
        request_unlink(c, r);
        kube_response resp = {.status = 0,
                              .curl_code = CURLE_OUT_OF_MEMORY,
                              .error = "cannot start the request",
                              .body = "",
                              .retry_after_ms = -1};
        r->on_done(r->payload, &resp);
        request_free(r);
    }
}

void kube_client_step(kube_client_t *c, int64_t now_ms)
{
    if (kube_config_exec_fd(c->cfg) >= 0)
        release_waiting(c);
    struct pollfd fds[KUBE_CLIENT_MAX_SOCKETS];
    int n = c->n_sockets;

    for (int i = 0; i < n; i++) {
        fds[i].fd = c->sockets[i].fd;
        fds[i].events = (short)(((c->sockets[i].what & CURL_POLL_IN) ? POLLIN : 0) |
                                ((c->sockets[i].what & CURL_POLL_OUT) ? POLLOUT : 0));
        fds[i].revents = 0;
    }
    /* The caller's zmq_poll woke us; ask the kernel which of curl's
     * sockets are ready without waiting. */
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
