/* kube_client.c — see kube_client.h. The transport is common/http.c; this
 * file is the Kubernetes glue: the URL, bearer token and client
 * certificate, server verification, and requests held while an exec
 * credential plugin runs. Invariants:
 *  - a request is on the core (r->http set) from start, or from the end
 *    of the plugin run it waited for, until its done callback, and freed
 *    exactly once, right after it (or when cancelled);
 *  - a 401 marks the credentials stale before the caller hears of it. */
#define _GNU_SOURCE
#include "watcher/kube_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/http.h"
#include "common/log.h"

struct kube_request {
    kube_client_t *client;
    http_request_t *http; /* on the core; NULL while waiting */
    char *method;
    char *path;
    char *request_body;
    char *content_type;
    bool streaming;
    kube_data_fn on_data;
    kube_done_fn on_done;
    void *payload;
    bool waiting;       /* not on the core yet: waits for the exec plugin */
    bool failed_launch; /* could not join the core; its callback is due */
    kube_request_t *next;
};

struct kube_client {
    kube_config *cfg;
    http_client_t *http;
    kube_request_t *requests; /* every live request */
    char *connect_to_host;    /* tls-server-name: the URL host */
    struct curl_slist *connect_to;
    char credential_error[512]; /* last refresh failure, logged once */
};

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
    c = calloc(1, sizeof *c);
    if (!c) {
        kube_config_destroy(&cfg);
        return KV_ERR_NOMEM;
    }
    c->cfg = cfg;
    int rc = http_client_new(&c->http, (long)KUBE_CLIENT_MAX_SOCKETS / 2);
    if (rc < 0) {
        snprintf(err, err_len, "cannot start the HTTP client (curl)");
        kube_client_destroy(&c);
        return rc;
    }
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
    free(r->method);
    free(r->path);
    free(r->request_body);
    free(r->content_type);
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
    http_client_destroy(&c->http); /* every transfer, without callbacks */
    while (c->requests) {
        kube_request_t *r = c->requests;
        c->requests = r->next;
        request_free(r);
    }
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

/* The core's last word on each transfer: server verification, the client
 * certificate as it is now, and the connection habits of a watch. */
static int kube_setup(void *payload, CURL *e)
{
    kube_client_t *c = payload;
    const kube_config *cfg = c->cfg;
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip for large lists */
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kavi-watcher");
    /* HTTP/1.1: one connection per watch, so a dead or stalled connection
     * costs only its own watch, and the idle abort of one watch (which
     * closes its connection) never leaves the others on a dead path. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
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
    if (cfg->client_cert_data.data) {
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        set_blob(e, CURLOPT_SSLCERT_BLOB, &cfg->client_cert_data);
        set_blob(e, CURLOPT_SSLKEY_BLOB, &cfg->client_key_data);
    } else if (cfg->client_cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLCERT, cfg->client_cert_file);
        curl_easy_setopt(e, CURLOPT_SSLKEY, cfg->client_key_file);
    }
    return KV_OK;
}

/* Appends "<name><value>"; on failure the list is freed and NULL returned. */
static struct curl_slist *header_add(struct curl_slist *list, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 1;
    char *line = malloc(len);
    if (!line) {
        curl_slist_free_all(list);
        return NULL;
    }
    snprintf(line, len, "%s%s", name, value);
    struct curl_slist *grown = curl_slist_append(list, line);
    free(line);
    if (!grown)
        curl_slist_free_all(list);
    return grown;
}

/* The headers with the credentials as they are now: the bearer token last. */
static struct curl_slist *request_headers(const kube_client_t *c, const kube_request_t *r)
{
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (h && r->content_type)
        h = header_add(h, "Content-Type: ", r->content_type);
    if (h && c->cfg->token)
        h = header_add(h, "Authorization: Bearer ", c->cfg->token);
    return h;
}

static void on_http_done(void *payload, const http_response *response);

static int on_http_data(void *payload, const char *data, size_t len)
{
    kube_request_t *r = payload;
    return r->on_data ? r->on_data(r->payload, data, len) : KV_OK;
}

/* The request goes out with the current credentials. */
static int launch(kube_client_t *c, kube_request_t *r)
{
    const char *server = c->connect_to_host ? c->connect_to_host : c->cfg->server;
    size_t n = strlen(server) + strlen(r->path) + 1;
    char *url = malloc(n);
    if (!url)
        return KV_ERR_NOMEM;
    snprintf(url, n, "%s%s", server, r->path);
    struct curl_slist *headers = request_headers(c, r);
    if (!headers) {
        free(url);
        return KV_ERR_NOMEM;
    }
    http_request_spec spec = {
        .method = r->method,
        .url = url,
        .headers = headers,
        .body = r->request_body,
        .body_len = r->request_body ? strlen(r->request_body) : 0,
        .body_max = r->streaming ? KUBE_ERROR_BODY_MAX : KUBE_BODY_MAX,
        .connect_timeout_ms = KUBE_CONNECT_TIMEOUT_MS,
        /* A watch lives as long as the server keeps it; only its idle
         * timer, in the reflector, may end it early. */
        .timeout_ms = r->streaming ? 0 : KUBE_REQUEST_TIMEOUT_MS,
        .streaming = r->streaming,
        .on_data = on_http_data,
        .setup = kube_setup,
        .setup_payload = c,
        .on_done = on_http_done,
        .payload = r,
    };
    int rc = http_client_start(c->http, &spec, &r->http);
    free(url);
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

static char *strdup_or_null(const char *s, bool *failed)
{
    char *copy = s ? strdup(s) : NULL;
    if (s && !copy)
        *failed = true;
    return copy;
}

int kube_client_start(kube_client_t *c, const kube_request_spec *spec, kube_request_t **out)
{
    kube_request_t *r = NULL;
    char why[512] = "";
    bool failed = false;
    int rc;

    if (out)
        *out = NULL;
    /* Credentials first: a token file read a minute ago or an expired exec
     * credential is refreshed before it goes out. While an exec plugin
     * runs, the request waits for it off the core. */
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
    r->method = strdup_or_null(spec->method ? spec->method : "GET", &failed);
    r->path = strdup_or_null(spec->path, &failed);
    r->request_body = strdup_or_null(spec->body, &failed);
    r->content_type = strdup_or_null(spec->content_type, &failed);
    rc = failed ? KV_ERR_NOMEM : KV_OK;
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
    http_client_cancel(c->http, &r->http);
    request_unlink(c, r);
    request_free(r);
}

/* ---- the step ---------------------------------------------------------------------- */

int kube_client_pollitems(kube_client_t *c, zmq_pollitem_t *items, int max)
{
    int n = http_client_pollitems(c->http, items, max);
    int exec_fd = kube_config_exec_fd(c->cfg);
    if (exec_fd >= 0 && n < max)
        items[n++] = (zmq_pollitem_t){.socket = NULL, .fd = exec_fd, .events = ZMQ_POLLIN};
    return n;
}

int64_t kube_client_timeout_ms(const kube_client_t *c, int64_t now_ms)
{
    int64_t wait = http_client_timeout_ms(c->http, now_ms);
    int64_t exec_deadline = kube_config_exec_deadline(c->cfg);
    if (exec_deadline != INT64_MAX) {
        int64_t until = exec_deadline > now_ms ? exec_deadline - now_ms : 0;
        if (until < wait)
            wait = until;
    }
    return wait;
}

int kube_client_running(const kube_client_t *c) { return http_client_pending(c->http); }

static void on_http_done(void *payload, const http_response *response)
{
    kube_request_t *r = payload;
    kube_client_t *c = r->client;
    r->http = NULL; /* the core frees it after this callback */
    if (response->status == 401)
        kube_config_invalidate(c->cfg);
    kube_response resp = {
        .status = response->status,
        .curl_code = response->curl_code,
        .error = response->error,
        .body = response->body,
        .body_len = response->body_len,
        .retry_after_ms = response->retry_after_ms,
    };
    request_unlink(c, r);
    r->on_done(r->payload, &resp);
    request_free(r);
}

/* Requests that waited for the exec plugin go out once it is done (with
 * the previous credentials if it failed). One that cannot join the core
 * gets its done callback here, after the others went out, since a
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
    http_client_step(c->http, now_ms);
}
