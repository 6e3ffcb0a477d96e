/*
 * Tests of the Kubernetes API simulator, driven in-process over real HTTP and
 * HTTPS with libcurl, the way the watcher talks to an apiserver. Each test
 * starts its own simulator; certificates come from the openssl command at
 * group start. Results are awaited by polling with a deadline, never by a
 * fixed sleep. Run one test alone with:
 *   k8ssim_test_k8ssim [test-name-glob]
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "k8ssim.h"

#define DEADLINE_MS 10000
#define MAX_WATCHES 8

static const char *test_argv0;
static char cert_dir[] = "/tmp/k8ssim-test-XXXXXX";

static char *path_in(const char *name)
{
    static char paths[16][256];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, sizeof(paths[0]), "%s/%s", cert_dir, name);
    return p;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Polls pred until it holds or timeout_ms passes. */
static bool wait_for(bool (*pred)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (pred(arg))
            return true;
        if (now_ms() >= deadline)
            return false;
        sleep_ms(2);
    }
}

/* ---- HTTP client --------------------------------------------------------- */

struct creds {
    bool tls;
    const char *token;
    const char *cert, *key; /* client certificate */
};

struct reply {
    long status;
    CURLcode rc;
    char *body;
    size_t len;
    char *headers;
    size_t hlen;
    json_t *json;
};

static size_t append(char **buf, size_t *len, const char *data, size_t n)
{
    char *grown = realloc(*buf, *len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + *len, data, n);
    *len += n;
    grown[*len] = '\0';
    *buf = grown;
    return n;
}

static size_t reply_body_cb(char *data, size_t size, size_t n, void *cls)
{
    struct reply *r = cls;
    return append(&r->body, &r->len, data, size * n);
}

static size_t reply_header_cb(char *data, size_t size, size_t n, void *cls)
{
    struct reply *r = cls;
    return append(&r->headers, &r->hlen, data, size * n);
}

static void reply_free(struct reply *r)
{
    free(r->body);
    free(r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

static struct curl_slist *client_setup(CURL *curl, int port, const struct creds *c,
                                       const char *path, const char *content_type)
{
    char url[2048], header[512];
    struct curl_slist *headers = NULL;
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d%s", c && c->tls ? "https" : "http", port, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (c && c->tls) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, path_in("ca.crt"));
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
        if (c->cert) {
            curl_easy_setopt(curl, CURLOPT_SSLCERT, c->cert);
            curl_easy_setopt(curl, CURLOPT_SSLKEY, c->key);
        }
    }
    if (c && c->token) {
        snprintf(header, sizeof(header), "Authorization: Bearer %s", c->token);
        headers = curl_slist_append(headers, header);
    }
    if (content_type) {
        snprintf(header, sizeof(header), "Content-Type: %s", content_type);
        headers = curl_slist_append(headers, header);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    return headers;
}

static long request(int port, const struct creds *c, const char *method, const char *path,
                    const char *body, const char *content_type, struct reply *r)
{
    CURL *curl = curl_easy_init();
    memset(r, 0, sizeof(*r));
    assert_non_null(curl);
    struct curl_slist *headers = client_setup(curl, port, c, path, content_type);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, reply_body_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, reply_header_cb);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)DEADLINE_MS);
    r->rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (r->body)
        r->json = json_loads(r->body, 0, NULL);
    return r->status;
}

static long get(int port, const struct creds *c, const char *path, struct reply *r)
{
    return request(port, c, "GET", path, NULL, NULL, r);
}

/* A dotted path into JSON; numeric parts index arrays. */
static json_t *jget(json_t *v, const char *path)
{
    char part[128];
    const char *p = path;
    while (v && *p) {
        size_t len = strcspn(p, ".");
        snprintf(part, sizeof(part), "%.*s", (int)len, p);
        if (json_is_array(v))
            v = json_array_get(v, strtoul(part, NULL, 10));
        else
            v = json_object_get(v, part);
        p += len;
        if (*p == '.')
            p++;
    }
    return v;
}

static const char *jstr(json_t *v, const char *path)
{
    return json_string_value(jget(v, path));
}

static long jrv(json_t *v, const char *path)
{
    const char *s = jstr(v, path);
    return s ? strtol(s, NULL, 10) : -1;
}

static void assert_status_body(json_t *body, int code, const char *reason)
{
    assert_non_null(body);
    assert_string_equal(jstr(body, "kind"), "Status");
    assert_string_equal(jstr(body, "apiVersion"), "v1");
    assert_true(json_is_object(jget(body, "metadata")));
    assert_string_equal(jstr(body, "status"), "Failure");
    assert_non_null(jstr(body, "message"));
    assert_string_equal(jstr(body, "reason"), reason);
    assert_int_equal(json_integer_value(jget(body, "code")), code);
}

static bool has_header(const struct reply *r, const char *line)
{
    return r->headers && strcasestr(r->headers, line) != NULL;
}

/* ---- watch client (one thread per stream) ---------------------------------- */

struct watch {
    pthread_t thread;
    pthread_mutex_t lock;
    int port;
    struct creds creds;
    char path[1024];
    bool raw; /* chunked framing left in the data */
    char *data;
    size_t len;
    char *headers;
    size_t hlen;
    bool headers_done, done;
    CURLcode rc;
    long status;
    int64_t started_ms, ended_ms;
};

static size_t watch_body_cb(char *data, size_t size, size_t n, void *cls)
{
    struct watch *w = cls;
    pthread_mutex_lock(&w->lock);
    size_t got = append(&w->data, &w->len, data, size * n);
    pthread_mutex_unlock(&w->lock);
    return got;
}

static size_t watch_header_cb(char *data, size_t size, size_t n, void *cls)
{
    struct watch *w = cls;
    pthread_mutex_lock(&w->lock);
    size_t got = append(&w->headers, &w->hlen, data, size * n);
    if (size * n == 2 && !memcmp(data, "\r\n", 2))
        w->headers_done = true;
    pthread_mutex_unlock(&w->lock);
    return got;
}

static void *watch_run(void *cls)
{
    struct watch *w = cls;
    CURL *curl = curl_easy_init();
    long status = 0;
    CURLcode rc = CURLE_FAILED_INIT;
    if (curl) {
        struct curl_slist *headers = client_setup(curl, w->port, &w->creds, w->path, NULL);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, watch_body_cb);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, w);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, watch_header_cb);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, w);
        if (w->raw)
            curl_easy_setopt(curl, CURLOPT_HTTP_TRANSFER_DECODING, 0L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L);
        rc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
    }
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    w->status = status;
    w->done = true;
    w->ended_ms = now_ms();
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---- fixture --------------------------------------------------------------- */

struct fx {
    k8ssim_t *sim;
    int port;
    struct creds creds;
    struct watch *watches[MAX_WATCHES];
    size_t watch_count;
};

static struct fx fx;

static void start_sim(const k8ssim_options_t *opts)
{
    assert_int_equal(k8ssim_new(&fx.sim, opts), 0);
    fx.port = k8ssim_port(fx.sim);
    assert_true(fx.port > 0);
    fx.creds.tls = opts && opts->tls_cert_file;
    fx.creds.token = opts ? opts->token : NULL;
}

static struct watch *watch_open(const char *path, bool raw)
{
    struct watch *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    assert_true(fx.watch_count < MAX_WATCHES);
    pthread_mutex_init(&w->lock, NULL);
    w->port = fx.port;
    w->creds = fx.creds;
    w->raw = raw;
    w->started_ms = now_ms();
    snprintf(w->path, sizeof(w->path), "%s", path);
    assert_int_equal(pthread_create(&w->thread, NULL, watch_run, w), 0);
    fx.watches[fx.watch_count++] = w;
    return w;
}

static int fx_setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof(fx));
    return 0;
}

/* Destroying the simulator closes every stream, so the threads end. */
static int fx_teardown(void **state)
{
    (void)state;
    k8ssim_destroy(&fx.sim);
    assert_null(fx.sim);
    for (size_t i = 0; i < fx.watch_count; i++) {
        struct watch *w = fx.watches[i];
        pthread_join(w->thread, NULL);
        pthread_mutex_destroy(&w->lock);
        free(w->data);
        free(w->headers);
        free(w);
    }
    fx.watch_count = 0;
    return 0;
}

/* Snapshot of what a watch got so far: data copy, flags. */
struct seen {
    char *data;
    size_t len;
    bool headers_done, done;
    CURLcode rc;
    long status;
};

static struct seen watch_seen(struct watch *w)
{
    struct seen s = {0};
    pthread_mutex_lock(&w->lock);
    s.data = strndup(w->data ? w->data : "", w->len);
    s.len = w->len;
    s.headers_done = w->headers_done;
    s.done = w->done;
    s.rc = w->rc;
    s.status = w->status;
    pthread_mutex_unlock(&w->lock);
    return s;
}

static size_t count_substr(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

struct line_wait {
    struct watch *w;
    const char *needle;
    size_t count;
};

static bool watch_has_pred(void *cls)
{
    struct line_wait *lw = cls;
    struct seen s = watch_seen(lw->w);
    bool ok = count_substr(s.data, lw->needle) >= lw->count;
    free(s.data);
    return ok;
}

/* Waits until the stream holds `count` occurrences of needle. */
static bool watch_wait(struct watch *w, const char *needle, size_t count, int timeout_ms)
{
    struct line_wait lw = {w, needle, count};
    return wait_for(watch_has_pred, &lw, timeout_ms);
}

static bool watch_done_pred(void *cls)
{
    struct seen s = watch_seen(cls);
    free(s.data);
    return s.done;
}

static bool watch_headers_pred(void *cls)
{
    struct seen s = watch_seen(cls);
    free(s.data);
    return s.headers_done;
}

/* Complete event lines of a decoded stream, parsed. */
static json_t *watch_events(struct watch *w)
{
    struct seen s = watch_seen(w);
    json_t *events = json_array();
    char *line = s.data;
    char *nl;
    while ((nl = strchr(line, '\n'))) {
        *nl = '\0';
        json_t *ev = json_loads(line, 0, NULL);
        assert_non_null(ev);
        json_array_append_new(events, ev);
        line = nl + 1;
    }
    free(s.data);
    return events;
}

static long apply_node(const char *name, const char *label)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\","
             "\"labels\":{\"tier\":\"%s\"}}}",
             name, label);
    long rv = k8ssim_apply(fx.sim, text);
    assert_true(rv > 0);
    return rv;
}

static long apply_service(const char *ns, const char *name)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"%s\"},\"spec\":{\"type\":\"LoadBalancer\",\"ports\":[{\"port\":80}]}}",
             name, ns);
    long rv = k8ssim_apply(fx.sim, text);
    assert_true(rv > 0);
    return rv;
}

/* ---- lists --------------------------------------------------------------- */

static void test_list_pages_show_the_first_page_snapshot_while_objects_change(void **state)
{
    (void)state;
    struct reply r;
    char path[1024], name[32];
    start_sim(NULL);
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "n%02d", i);
        apply_node(name, "old");
    }
    assert_int_equal(get(fx.port, &fx.creds, "/api/v1/nodes?limit=4", &r), 200);
    long list_rv = jrv(r.json, "metadata.resourceVersion");
    assert_int_equal(list_rv, 10);
    assert_int_equal(json_array_size(jget(r.json, "items")), 4);
    assert_int_equal(json_integer_value(jget(r.json, "metadata.remainingItemCount")), 6);
    char *token = strdup(jstr(r.json, "metadata.continue"));
    assert_true(strlen(token) > 0);
    reply_free(&r);

    /* Between pages: change an unseen object, delete one, add one, change a seen one. */
    apply_node("n05", "new");
    assert_true(k8ssim_delete(fx.sim, "Node", NULL, "n06") > 0);
    apply_node("n99", "new");
    apply_node("n01", "new");

    json_t *names = json_array();
    for (int page = 2; token; page++) {
        char *escaped = curl_easy_escape(NULL, token, 0);
        snprintf(path, sizeof(path), "/api/v1/nodes?limit=4&continue=%s", escaped);
        curl_free(escaped);
        free(token);
        token = NULL;
        assert_int_equal(get(fx.port, &fx.creds, path, &r), 200);
        assert_int_equal(jrv(r.json, "metadata.resourceVersion"), list_rv);
        json_t *items = jget(r.json, "items");
        for (size_t i = 0; i < json_array_size(items); i++) {
            json_t *item = json_array_get(items, i);
            assert_true(jrv(item, "metadata.resourceVersion") <= list_rv);
            assert_string_equal(jstr(item, "metadata.labels.tier"), "old");
            json_array_append_new(names, json_string(jstr(item, "metadata.name")));
        }
        const char *next = jstr(r.json, "metadata.continue");
        if (next && *next)
            token = strdup(next);
        else
            assert_int_equal(page, 3); /* the last page: no continue */
        reply_free(&r);
    }
    /* n04..n09 as they were at the first page: n06 still there, n99 not yet. */
    assert_int_equal(json_array_size(names), 6);
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof(name), "n%02d", i + 4);
        assert_string_equal(json_string_value(json_array_get(names, (size_t)i)), name);
    }
    json_decref(names);

    /* A fresh list sees the present. */
    assert_int_equal(get(fx.port, &fx.creds, "/api/v1/nodes", &r), 200);
    assert_int_equal(json_array_size(jget(r.json, "items")), 10);
    assert_null(jget(r.json, "metadata.continue"));
    assert_int_equal(jrv(r.json, "metadata.resourceVersion"), 14);
    reply_free(&r);
}

static void test_list_thousands_of_objects_through_pages_of_500(void **state)
{
    (void)state;
    struct reply r;
    char path[1024], name[32];
    start_sim(NULL);
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "node-%04d", i);
        apply_node(name, "a");
    }
    size_t total = 0, pages = 0;
    char *token = NULL;
    long list_rv = -1;
    do {
        char *escaped = token ? curl_easy_escape(NULL, token, 0) : NULL;
        snprintf(path, sizeof(path), "/api/v1/nodes?limit=500%s%s", escaped ? "&continue=" : "",
                 escaped ? escaped : "");
        curl_free(escaped);
        free(token);
        token = NULL;
        assert_int_equal(get(fx.port, &fx.creds, path, &r), 200);
        if (list_rv < 0)
            list_rv = jrv(r.json, "metadata.resourceVersion");
        assert_int_equal(jrv(r.json, "metadata.resourceVersion"), list_rv);
        total += json_array_size(jget(r.json, "items"));
        pages++;
        const char *next = jstr(r.json, "metadata.continue");
        if (next && *next)
            token = strdup(next);
        reply_free(&r);
    } while (token);
    assert_int_equal(total, 3000);
    assert_int_equal(pages, 6);
}

static void test_list_names_its_kind_and_items_carry_no_kind(void **state)
{
    (void)state;
    struct reply r;
    start_sim(NULL);
    k8ssim_apply(fx.sim, "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
                         "\"metadata\":{\"name\":\"web-abc\",\"namespace\":\"shop\"},"
                         "\"addressType\":\"IPv4\",\"endpoints\":[]}");
    assert_int_equal(get(fx.port, &fx.creds, "/apis/discovery.k8s.io/v1/endpointslices", &r), 200);
    assert_string_equal(jstr(r.json, "kind"), "EndpointSliceList");
    assert_string_equal(jstr(r.json, "apiVersion"), "discovery.k8s.io/v1");
    assert_string_equal(jstr(r.json, "items.0.metadata.name"), "web-abc");
    assert_null(jget(r.json, "items.0.kind"));
    assert_null(jget(r.json, "items.0.apiVersion"));
    assert_non_null(jstr(r.json, "items.0.metadata.uid"));
    assert_null(jget(r.json, "metadata.continue"));
    reply_free(&r);
    /* The namespaced form filters by namespace. */
    assert_int_equal(
        get(fx.port, &fx.creds, "/apis/discovery.k8s.io/v1/namespaces/other/endpointslices", &r),
        200);
    assert_int_equal(json_array_size(jget(r.json, "items")), 0);
    reply_free(&r);
}

static void test_list_continue_after_expired_history_is_410_expired(void **state)
{
    (void)state;
    struct reply r;
    char path[1024];
    k8ssim_options_t opts = {.history_limit = 4};
    start_sim(&opts);
    apply_node("a", "x");
    apply_node("b", "x");
    apply_node("c", "x");

    /* Forgotten on demand. */
    assert_int_equal(get(fx.port, &fx.creds, "/api/v1/nodes?limit=1", &r), 200);
    char *escaped = curl_easy_escape(NULL, jstr(r.json, "metadata.continue"), 0);
    snprintf(path, sizeof(path), "/api/v1/nodes?limit=1&continue=%s", escaped);
    curl_free(escaped);
    reply_free(&r);
    k8ssim_expire_history(fx.sim);
    assert_int_equal(get(fx.port, &fx.creds, path, &r), 410);
    assert_status_body(r.json, 410, "Expired");
    assert_true(strlen(jstr(r.json, "metadata.continue")) > 0); /* the inconsistent way on */
    reply_free(&r);

    /* Outrun by more changes than the history keeps. */
    assert_int_equal(get(fx.port, &fx.creds, "/api/v1/nodes?limit=1", &r), 200);
    escaped = curl_easy_escape(NULL, jstr(r.json, "metadata.continue"), 0);
    snprintf(path, sizeof(path), "/api/v1/nodes?limit=1&continue=%s", escaped);
    curl_free(escaped);
    reply_free(&r);
    assert_int_equal(get(fx.port, &fx.creds, path, &r), 200); /* still within history */
    reply_free(&r);
    for (int i = 0; i < 5; i++)
        apply_node("c", i % 2 ? "x" : "y");
    assert_int_equal(get(fx.port, &fx.creds, path, &r), 410);
    assert_status_body(r.json, 410, "Expired");
    reply_free(&r);
}

static void test_watch_ended_at_once_sends_nothing_until_turned_off(void **state)
{
    (void)state;
    struct reply r;
    char path[256];
    start_sim(NULL);
    long rv = apply_node("a", "x");
    apply_node("b", "x");
    snprintf(path, sizeof(path), "/api/v1/nodes?watch=1&resourceVersion=%ld", rv);
    k8ssim_end_watches_at_once(fx.sim, true);
    assert_int_equal(get(fx.port, &fx.creds, path, &r), 200);
    assert_int_equal(r.len, 0);
    reply_free(&r);

    k8ssim_end_watches_at_once(fx.sim, false);
    struct watch *w = watch_open(path, false);
    assert_true(watch_wait(w, "\"b\"", 1, DEADLINE_MS));
}

static void test_fail_matching_hits_only_requests_whose_query_matches(void **state)
{
    (void)state;
    struct reply r;
    start_sim(NULL);
    apply_node("a", "x");
    apply_node("b", "x");
    k8ssim_fail_matching(fx.sim, "continue=", 503, 5);
    assert_int_equal(get(fx.port, &fx.creds, "/api/v1/nodes?limit=1", &r), 200);
    char *escaped = curl_easy_escape(NULL, jstr(r.json, "metadata.continue"), 0);
    char path[1024];
    snprintf(path, sizeof(path), "/api/v1/nodes?limit=1&continue=%s", escaped);
    curl_free(escaped);
    reply_free(&r);
    assert_int_equal(get(fx.port, &fx.creds, path, &r), 503);
    assert_status_body(r.json, 503, "ServiceUnavailable");
    reply_free(&r);
    k8ssim_fail_matching(fx.sim, NULL, 0, 0);
    assert_int_equal(get(fx.port, &fx.creds, path, &r), 200);
    assert_string_equal(jstr(r.json, "items.0.metadata.name"), "b");
    reply_free(&r);
}

static void test_list_and_watch_secrets_by_field_selector_type(void **state)
{
    (void)state;
    struct reply r;
    start_sim(NULL);
    k8ssim_apply(fx.sim, "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"tls\","
                         "\"namespace\":\"shop\"},\"type\":\"kubernetes.io/tls\"}");
    long rv = k8ssim_apply(fx.sim, "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":"
                                   "{\"name\":\"opaque\",\"namespace\":\"shop\"},\"type\":\"Opaque\"}");
    assert_int_equal(
        get(fx.port, &fx.creds, "/api/v1/secrets?fieldSelector=type%3Dkubernetes.io%2Ftls", &r),
        200);
    assert_int_equal(json_array_size(jget(r.json, "items")), 1);
    assert_string_equal(jstr(r.json, "items.0.metadata.name"), "tls");
    reply_free(&r);

    char path[256];
    snprintf(path, sizeof(path),
             "/api/v1/secrets?watch=1&resourceVersion=%ld&fieldSelector=type%%3Dkubernetes.io%%2Ftls",
             rv);
    struct watch *w = watch_open(path, false);
    k8ssim_apply(fx.sim, "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":"
                         "\"opaque2\",\"namespace\":\"shop\"},\"type\":\"Opaque\"}");
    k8ssim_apply(fx.sim, "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":"
                         "\"tls2\",\"namespace\":\"shop\"},\"type\":\"kubernetes.io/tls\"}");
    assert_true(watch_wait(w, "\n", 1, DEADLINE_MS));
    json_t *events = watch_events(w);
    assert_int_equal(json_array_size(events), 1);
    assert_string_equal(jstr(events, "0.object.metadata.name"), "tls2");
    json_decref(events);
}

/* ---- watches ------------------------------------------------------------- */

static void test_watch_from_resource_version_sends_only_later_events(void **state)
{
    (void)state;
    struct reply r;
    char path[256];
    start_sim(NULL);
    apply_service("shop", "a");
    apply_service("shop", "b");
    assert_int_equal(get(fx.port, &fx.creds, "/api/v1/services", &r), 200);
    long list_rv = jrv(r.json, "metadata.resourceVersion");
    reply_free(&r);
    long rv_c = apply_service("shop", "c");
    apply_node("not-a-service", "x");
    long rv_a = apply_service("shop", "a");

    snprintf(path, sizeof(path), "/api/v1/services?watch=1&resourceVersion=%ld", rv_c);
    struct watch *from_c = watch_open(path, false);
    snprintf(path, sizeof(path), "/api/v1/services?watch=true&resourceVersion=%ld", list_rv);
    struct watch *from_list = watch_open(path, false);
    assert_true(watch_wait(from_c, "\n", 1, DEADLINE_MS));
    assert_true(watch_wait(from_list, "\n", 2, DEADLINE_MS));
    long rv_d = apply_service("other", "d");
    assert_true(watch_wait(from_c, "\n", 2, DEADLINE_MS));
    assert_true(watch_wait(from_list, "\n", 3, DEADLINE_MS));

    json_t *events = watch_events(from_c);
    assert_int_equal(json_array_size(events), 2);
    assert_string_equal(jstr(events, "0.type"), "MODIFIED");
    assert_string_equal(jstr(events, "0.object.metadata.name"), "a");
    assert_int_equal(jrv(events, "0.object.metadata.resourceVersion"), rv_a);
    assert_string_equal(jstr(events, "0.object.kind"), "Service"); /* events carry kind */
    assert_string_equal(jstr(events, "1.type"), "ADDED");
    assert_int_equal(jrv(events, "1.object.metadata.resourceVersion"), rv_d);
    json_decref(events);

    events = watch_events(from_list);
    assert_int_equal(json_array_size(events), 3);
    assert_string_equal(jstr(events, "0.type"), "ADDED");
    assert_string_equal(jstr(events, "0.object.metadata.name"), "c");
    assert_string_equal(jstr(events, "1.type"), "MODIFIED");
    assert_string_equal(jstr(events, "2.object.metadata.name"), "d");
    for (size_t i = 0; i < json_array_size(events); i++)
        assert_true(jrv(json_array_get(events, i), "object.metadata.resourceVersion") > list_rv);
    json_decref(events);
}

static void test_watch_without_resource_version_starts_with_synthetic_added(void **state)
{
    (void)state;
    start_sim(NULL);
    apply_node("n1", "a");
    apply_node("n2", "a");
    struct watch *w = watch_open("/api/v1/nodes?watch=1", false);
    assert_true(watch_wait(w, "\n", 2, DEADLINE_MS));
    apply_node("n1", "b");
    assert_true(watch_wait(w, "\n", 3, DEADLINE_MS));
    json_t *events = watch_events(w);
    assert_string_equal(jstr(events, "0.type"), "ADDED");
    assert_string_equal(jstr(events, "1.type"), "ADDED");
    assert_string_equal(jstr(events, "2.type"), "MODIFIED");
    json_decref(events);
}

static void test_watch_headers_are_flushed_before_any_event(void **state)
{
    (void)state;
    start_sim(NULL);
    struct watch *w = watch_open("/apis/networking.k8s.io/v1/ingresses?watch=1&resourceVersion=0",
                                 false);
    assert_true(wait_for(watch_headers_pred, w, DEADLINE_MS));
    pthread_mutex_lock(&w->lock);
    assert_int_equal(w->len, 0); /* nothing happened, yet the client has the headers */
    assert_non_null(strstr(w->headers, "HTTP/1.1 200"));
    assert_non_null(strcasestr(w->headers, "Content-Type: application/json\r\n"));
    assert_non_null(strcasestr(w->headers, "Transfer-Encoding: chunked\r\n"));
    pthread_mutex_unlock(&w->lock);
}

/* Raw chunked bytes → chunks. Sets *truncated when the data stops inside a
 * chunk (announced length larger than what follows). */
static json_t *parse_chunks(const char *data, size_t len, bool *truncated, bool *terminated)
{
    json_t *chunks = json_array();
    size_t pos = 0;
    *truncated = false;
    *terminated = false;
    while (pos < len) {
        const char *crlf = strstr(data + pos, "\r\n");
        if (!crlf) {
            *truncated = true;
            break;
        }
        size_t size = strtoul(data + pos, NULL, 16);
        size_t start = (size_t)(crlf - data) + 2;
        if (size == 0) {
            *terminated = true;
            break;
        }
        if (start + size > len) {
            *truncated = true;
            break;
        }
        json_array_append_new(chunks, json_stringn(data + start, size));
        pos = start + size + 2;
    }
    return chunks;
}

static void test_watch_split_writes_straddle_chunks_and_share_them(void **state)
{
    (void)state;
    char path[256];
    start_sim(NULL);
    long rv = apply_node("first", "a");
    k8ssim_split_writes(fx.sim, true);
    snprintf(path, sizeof(path), "/api/v1/nodes?watch=1&resourceVersion=%ld", rv);
    struct watch *raw = watch_open(path, true);
    struct watch *decoded = watch_open(path, false);
    assert_true(wait_for(watch_headers_pred, raw, DEADLINE_MS));
    assert_true(wait_for(watch_headers_pred, decoded, DEADLINE_MS));
    /* Held back so that several events are pending when the writer wakes. */
    k8ssim_stall_watches(fx.sim, true);
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        apply_node(name, "a");
    }
    k8ssim_stall_watches(fx.sim, false);
    assert_true(watch_wait(decoded, "\n", 4, DEADLINE_MS));
    assert_true(watch_wait(raw, "}\n", 4, DEADLINE_MS));

    json_t *events = watch_events(decoded);
    assert_int_equal(json_array_size(events), 4);
    assert_string_equal(jstr(events, "3.object.metadata.name"), "n3");
    json_decref(events);

    struct seen s = watch_seen(raw);
    bool truncated, terminated;
    json_t *chunks = parse_chunks(s.data, s.len, &truncated, &terminated);
    size_t straddling = 0, shared = 0;
    for (size_t i = 0; i < json_array_size(chunks); i++) {
        const char *chunk = json_string_value(json_array_get(chunks, i));
        size_t len = strlen(chunk);
        if (len && chunk[len - 1] != '\n')
            straddling++;
        if (count_substr(chunk, "\n") >= 2)
            shared++;
    }
    assert_true(straddling >= 1);
    assert_true(shared >= 1);
    assert_false(terminated);
    json_decref(chunks);
    free(s.data);
}

static void test_watch_bookmarks_only_when_allowed(void **state)
{
    (void)state;
    k8ssim_options_t opts = {.bookmark_interval_ms = 40};
    start_sim(&opts);
    long rv = apply_node("n1", "a");
    char path[256];
    snprintf(path, sizeof(path),
             "/api/v1/nodes?watch=1&resourceVersion=%ld&allowWatchBookmarks=true", rv);
    struct watch *with = watch_open(path, false);
    snprintf(path, sizeof(path), "/api/v1/nodes?watch=1&resourceVersion=%ld&timeoutSeconds=1",
             rv);
    struct watch *without = watch_open(path, false);
    assert_true(watch_wait(with, "\"BOOKMARK\"", 3, DEADLINE_MS));
    /* The one without bookmarks runs to its timeout, silent. */
    assert_true(wait_for(watch_done_pred, without, DEADLINE_MS));
    struct seen s = watch_seen(without);
    assert_int_equal(s.rc, CURLE_OK);
    assert_int_equal(s.len, 0);
    free(s.data);

    json_t *events = watch_events(with);
    json_t *bookmark = json_array_get(events, 0);
    assert_string_equal(jstr(bookmark, "type"), "BOOKMARK");
    json_t *object = jget(bookmark, "object");
    assert_int_equal(json_object_size(object), 3);
    assert_string_equal(jstr(object, "kind"), "Node");
    assert_string_equal(jstr(object, "apiVersion"), "v1");
    assert_int_equal(json_object_size(jget(object, "metadata")), 1);
    assert_int_equal(jrv(object, "metadata.resourceVersion"), rv);
    json_decref(events);
}

static void test_watch_timeout_seconds_ends_the_stream_cleanly(void **state)
{
    (void)state;
    start_sim(NULL);
    long rv = apply_node("n1", "a");
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/nodes?watch=1&resourceVersion=%ld&timeoutSeconds=1",
             rv - 1);
    struct watch *w = watch_open(path, false);
    assert_true(wait_for(watch_done_pred, w, DEADLINE_MS));
    struct seen s = watch_seen(w);
    assert_int_equal(s.rc, CURLE_OK);
    assert_int_equal(s.status, 200);
    assert_int_equal(count_substr(s.data, "\n"), 1);
    assert_true(s.data[s.len - 1] == '\n');
    free(s.data);
    assert_true(w->ended_ms - w->started_ms >= 900);
}

static void test_watch_from_forgotten_resource_version_gets_one_error_410_event(void **state)
{
    (void)state;
    char path[256];
    k8ssim_options_t opts = {.history_limit = 3};
    start_sim(&opts);
    long rv = apply_node("n1", "a");
    apply_node("n1", "b");

    k8ssim_expire_history(fx.sim);
    snprintf(path, sizeof(path), "/api/v1/nodes?watch=1&resourceVersion=%ld", rv);
    struct watch *expired = watch_open(path, false);
    assert_true(wait_for(watch_done_pred, expired, DEADLINE_MS));
    struct seen s = watch_seen(expired);
    assert_int_equal(s.status, 200);
    assert_int_equal(s.rc, CURLE_OK);
    free(s.data);
    json_t *events = watch_events(expired);
    assert_int_equal(json_array_size(events), 1);
    assert_string_equal(jstr(events, "0.type"), "ERROR");
    assert_status_body(jget(events, "0.object"), 410, "Expired");
    assert_non_null(strstr(jstr(events, "0.object.message"), "too old resource version"));
    json_decref(events);

    /* Outrun by the history limit: of the four events after `newer` the
     * history (3) has lost the first. */
    long newer = apply_node("n2", "a");
    for (int i = 0; i < 4; i++)
        apply_node("n2", i % 2 ? "a" : "b");
    snprintf(path, sizeof(path), "/api/v1/nodes?watch=1&resourceVersion=%ld", newer);
    struct watch *outrun = watch_open(path, false);
    assert_true(wait_for(watch_done_pred, outrun, DEADLINE_MS));
    events = watch_events(outrun);
    assert_int_equal(json_array_size(events), 1);
    assert_int_equal(json_integer_value(jget(events, "0.object.code")), 410);
    json_decref(events);
}

static void test_drop_watches_cuts_streams_mid_chunk(void **state)
{
    (void)state;
    char path[256];
    start_sim(NULL);
    long rv = apply_node("n1", "a");
    snprintf(path, sizeof(path), "/api/v1/nodes?watch=1&resourceVersion=%ld", rv);
    struct watch *raw = watch_open(path, true);
    struct watch *decoded = watch_open(path, false);
    apply_node("n2", "a");
    assert_true(watch_wait(raw, "}\n", 1, DEADLINE_MS));
    assert_true(watch_wait(decoded, "\n", 1, DEADLINE_MS));

    k8ssim_drop_watches(fx.sim);
    assert_true(wait_for(watch_done_pred, raw, DEADLINE_MS));
    assert_true(wait_for(watch_done_pred, decoded, DEADLINE_MS));

    struct seen s = watch_seen(raw);
    bool truncated, terminated;
    json_t *chunks = parse_chunks(s.data, s.len, &truncated, &terminated);
    assert_true(truncated);
    assert_false(terminated);
    json_decref(chunks);
    free(s.data);

    s = watch_seen(decoded);
    assert_int_not_equal(s.rc, CURLE_OK); /* the client sees a broken transfer */
    assert_true(s.data[s.len - 1] != '\n'); /* with half an event */
    free(s.data);

    /* New watches are served again. */
    snprintf(path, sizeof(path), "/api/v1/nodes?watch=1&resourceVersion=%ld", rv);
    struct watch *again = watch_open(path, false);
    assert_true(watch_wait(again, "\n", 1, DEADLINE_MS));
}

static void test_drop_watches_over_https_breaks_the_transfer(void **state)
{
    (void)state;
    k8ssim_options_t opts = {.tls_cert_file = path_in("server.crt"),
                             .tls_key_file = path_in("server.key")};
    start_sim(&opts);
    long rv = apply_node("n1", "a");
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/nodes?watch=1&resourceVersion=%ld", rv - 1);
    struct watch *w = watch_open(path, false);
    assert_true(watch_wait(w, "\n", 1, DEADLINE_MS));
    k8ssim_drop_watches(fx.sim);
    assert_true(wait_for(watch_done_pred, w, DEADLINE_MS));
    struct seen s = watch_seen(w);
    assert_int_not_equal(s.rc, CURLE_OK);
    assert_true(s.data[s.len - 1] != '\n');
    free(s.data);
}

struct grew {
    struct watch *w;
    size_t len;
};

static bool watch_grew_pred(void *cls)
{
    struct grew *g = cls;
    struct seen s = watch_seen(g->w);
    free(s.data);
    return s.len > g->len;
}

static void test_stalled_watches_send_nothing_until_released(void **state)
{
    (void)state;
    k8ssim_options_t opts = {.bookmark_interval_ms = 20};
    start_sim(&opts);
    long rv = apply_node("n1", "a");
    char path[256];
    snprintf(path, sizeof(path),
             "/api/v1/nodes?watch=1&resourceVersion=%ld&allowWatchBookmarks=1", rv);
    struct watch *w = watch_open(path, false);
    assert_true(watch_wait(w, "BOOKMARK", 1, DEADLINE_MS));
    k8ssim_stall_watches(fx.sim, true);
    struct seen s = watch_seen(w);
    /* A bookmark may be in flight as the stall begins; after that, silence. */
    struct grew g = {w, s.len};
    free(s.data);
    wait_for(watch_grew_pred, &g, 100);
    s = watch_seen(w);
    g.len = s.len;
    free(s.data);
    apply_node("n2", "a");
    /* Ten bookmark intervals and an event: nothing arrives. */
    assert_false(wait_for(watch_grew_pred, &g, 200));
    k8ssim_stall_watches(fx.sim, false);
    assert_true(watch_wait(w, "\"n2\"", 1, DEADLINE_MS));
}

/* ---- faults and authentication -------------------------------------------- */

static void test_fail_next_429_carries_retry_after_then_recovers(void **state)
{
    (void)state;
    struct reply r;
    start_sim(NULL);
    k8ssim_fail_next(fx.sim, 429, 7, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(get(fx.port, &fx.creds, i ? "/api/v1/nodes?watch=1" : "/api/v1/nodes",
                             &r),
                         429);
        assert_true(has_header(&r, "Retry-After: 7\r\n"));
        assert_status_body(r.json, 429, "TooManyRequests");
        assert_int_equal(json_integer_value(jget(r.json, "details.retryAfterSeconds")), 7);
        reply_free(&r);
    }
    assert_int_equal(get(fx.port, &fx.creds, "/api/v1/nodes", &r), 200);
    reply_free(&r);
}

static void test_fail_next_503_answers_a_status_once(void **state)
{
    (void)state;
    struct reply r;
    start_sim(NULL);
    k8ssim_fail_next(fx.sim, 503, 0, 1);
    assert_int_equal(get(fx.port, &fx.creds, "/api/v1/services", &r), 503);
    assert_status_body(r.json, 503, "ServiceUnavailable");
    assert_false(has_header(&r, "Retry-After"));
    reply_free(&r);
    k8ssim_fail_next(fx.sim, 500, 0, 1);
    assert_int_equal(get(fx.port, &fx.creds, "/api/v1/services", &r), 500);
    assert_status_body(r.json, 500, "InternalError");
    reply_free(&r);
    assert_int_equal(get(fx.port, &fx.creds, "/api/v1/services", &r), 200);
    reply_free(&r);
}

static void test_rotated_token_rejects_the_old_one_with_401(void **state)
{
    (void)state;
    struct reply r;
    k8ssim_options_t opts = {.token = "token-one"};
    start_sim(&opts);
    struct creds one = {.token = "token-one"}, two = {.token = "token-two"}, none = {0};
    assert_int_equal(get(fx.port, &one, "/api/v1/nodes", &r), 200);
    reply_free(&r);
    assert_int_equal(get(fx.port, &none, "/api/v1/nodes", &r), 401);
    assert_status_body(r.json, 401, "Unauthorized");
    reply_free(&r);
    k8ssim_set_token(fx.sim, "token-two");
    assert_int_equal(get(fx.port, &one, "/api/v1/nodes", &r), 401);
    assert_status_body(r.json, 401, "Unauthorized");
    reply_free(&r);
    assert_int_equal(get(fx.port, &two, "/api/v1/nodes", &r), 200);
    reply_free(&r);
    assert_int_equal(k8ssim_count_requests(fx.sim, "/api/v1/nodes", NULL), 4);
}

static void test_client_certificate_authenticates_over_https(void **state)
{
    (void)state;
    struct reply r;
    k8ssim_options_t opts = {.tls_cert_file = path_in("server.crt"),
                             .tls_key_file = path_in("server.key"),
                             .client_ca_file = path_in("ca.crt"),
                             .token = "secret"};
    start_sim(&opts);
    struct creds cert = {.tls = true, .cert = path_in("client.crt"), .key = path_in("client.key")};
    struct creds rogue = {.tls = true, .cert = path_in("rogue.crt"), .key = path_in("rogue.key")};
    struct creds token = {.tls = true, .token = "secret"};
    struct creds nothing = {.tls = true};
    assert_int_equal(get(fx.port, &cert, "/api/v1/nodes", &r), 200);
    reply_free(&r);
    assert_int_equal(get(fx.port, &rogue, "/api/v1/nodes", &r), 401);
    reply_free(&r);
    assert_int_equal(get(fx.port, &token, "/api/v1/nodes", &r), 200);
    reply_free(&r);
    assert_int_equal(get(fx.port, &nothing, "/api/v1/nodes", &r), 401);
    reply_free(&r);

    char *log = k8ssim_requests_json(fx.sim);
    json_t *requests = json_loads(log, 0, NULL);
    free(log);
    assert_string_equal(jstr(requests, "0.auth"), "cert:kavi-watcher");
    assert_string_equal(jstr(requests, "1.auth"), "none");
    assert_string_equal(jstr(requests, "2.auth"), "bearer:secret");
    json_decref(requests);

    /* A watch over HTTPS with the certificate. */
    fx.creds = cert;
    struct watch *w = watch_open("/api/v1/nodes?watch=1", false);
    apply_node("n1", "a");
    assert_true(watch_wait(w, "\"n1\"", 1, DEADLINE_MS));
}

/* ---- discovery and paths -------------------------------------------------- */

static bool groups_contain(json_t *list, const char *group)
{
    json_t *groups = jget(list, "groups");
    for (size_t i = 0; i < json_array_size(groups); i++)
        if (!strcmp(jstr(json_array_get(groups, i), "name"), group))
            return true;
    return false;
}

static bool resources_contain(json_t *list, const char *name)
{
    json_t *resources = jget(list, "resources");
    for (size_t i = 0; i < json_array_size(resources); i++)
        if (!strcmp(jstr(json_array_get(resources, i), "name"), name))
            return true;
    return false;
}

static void test_discovery_without_routes_or_gateway_api(void **state)
{
    (void)state;
    struct reply r;
    start_sim(NULL);
    assert_int_equal(get(fx.port, &fx.creds, "/api", &r), 200);
    assert_string_equal(jstr(r.json, "kind"), "APIVersions");
    assert_string_equal(jstr(r.json, "versions.0"), "v1");
    reply_free(&r);
    assert_int_equal(get(fx.port, &fx.creds, "/api/v1", &r), 200);
    assert_true(resources_contain(r.json, "services"));
    assert_true(resources_contain(r.json, "services/status"));
    reply_free(&r);
    assert_int_equal(get(fx.port, &fx.creds, "/apis", &r), 200);
    assert_string_equal(jstr(r.json, "kind"), "APIGroupList");
    assert_true(groups_contain(r.json, "discovery.k8s.io"));
    assert_true(groups_contain(r.json, "networking.k8s.io"));
    assert_false(groups_contain(r.json, "route.openshift.io"));
    assert_false(groups_contain(r.json, "gateway.networking.k8s.io"));
    reply_free(&r);
    assert_int_equal(get(fx.port, &fx.creds, "/apis/networking.k8s.io/v1", &r), 200);
    assert_true(resources_contain(r.json, "ingresses"));
    assert_true(resources_contain(r.json, "ingressclasses"));
    reply_free(&r);
    const char *absent[] = {"/apis/route.openshift.io/v1", "/apis/route.openshift.io/v1/routes",
                            "/apis/gateway.networking.k8s.io/v1",
                            "/apis/gateway.networking.k8s.io/v1/gateways?watch=1"};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
        assert_int_equal(get(fx.port, &fx.creds, absent[i], &r), 404);
        assert_status_body(r.json, 404, "NotFound");
        reply_free(&r);
    }
}

static void test_discovery_with_routes_and_gateway_api(void **state)
{
    (void)state;
    struct reply r;
    k8ssim_options_t opts = {.serve_routes = true, .serve_gateway_api = true};
    start_sim(&opts);
    assert_int_equal(get(fx.port, &fx.creds, "/apis", &r), 200);
    assert_true(groups_contain(r.json, "route.openshift.io"));
    assert_true(groups_contain(r.json, "gateway.networking.k8s.io"));
    reply_free(&r);
    assert_int_equal(get(fx.port, &fx.creds, "/apis/route.openshift.io/v1", &r), 200);
    assert_string_equal(jstr(r.json, "kind"), "APIResourceList");
    assert_string_equal(jstr(r.json, "groupVersion"), "route.openshift.io/v1");
    assert_true(resources_contain(r.json, "routes"));
    reply_free(&r);
    assert_int_equal(get(fx.port, &fx.creds, "/apis/gateway.networking.k8s.io/v1", &r), 200);
    assert_true(resources_contain(r.json, "gatewayclasses"));
    assert_true(resources_contain(r.json, "gateways"));
    assert_true(resources_contain(r.json, "httproutes"));
    reply_free(&r);
    k8ssim_apply(fx.sim, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
                         "\"metadata\":{\"name\":\"r\",\"namespace\":\"shop\"}}");
    assert_int_equal(get(fx.port, &fx.creds, "/apis/gateway.networking.k8s.io/v1/httproutes", &r),
                     200);
    assert_string_equal(jstr(r.json, "kind"), "HTTPRouteList");
    assert_int_equal(json_array_size(jget(r.json, "items")), 1);
    reply_free(&r);
    assert_int_equal(get(fx.port, &fx.creds, "/apis/route.openshift.io/v1/routes", &r), 200);
    assert_string_equal(jstr(r.json, "kind"), "RouteList");
    reply_free(&r);
}

static void test_unknown_path_is_404_not_found_status(void **state)
{
    (void)state;
    struct reply r;
    start_sim(NULL);
    assert_int_equal(get(fx.port, &fx.creds, "/api/v1/pods", &r), 404);
    assert_status_body(r.json, 404, "NotFound");
    reply_free(&r);
    assert_int_equal(get(fx.port, &fx.creds, "/nothing/here", &r), 404);
    assert_status_body(r.json, 404, "NotFound");
    reply_free(&r);
}

/* ---- status writes -------------------------------------------------------- */

static void test_service_status_merge_patch_bumps_rv_and_emits_modified(void **state)
{
    (void)state;
    struct reply r;
    char path[256];
    start_sim(NULL);
    long rv = apply_service("shop", "web");
    snprintf(path, sizeof(path), "/api/v1/services?watch=1&resourceVersion=%ld", rv);
    struct watch *w = watch_open(path, false);
    const char *status_path = "/api/v1/namespaces/shop/services/web/status";

    assert_int_equal(request(fx.port, &fx.creds, "PATCH", status_path,
                             "{\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"10.0.0.1\"},"
                             "{\"ip\":\"10.0.0.2\"}]},\"conditions\":[]},"
                             "\"spec\":{\"type\":\"ClusterIP\"}}",
                             "application/merge-patch+json", &r),
                     200);
    assert_int_equal(jrv(r.json, "metadata.resourceVersion"), rv + 1);
    assert_string_equal(jstr(r.json, "status.loadBalancer.ingress.1.ip"), "10.0.0.2");
    assert_string_equal(jstr(r.json, "spec.type"), "LoadBalancer"); /* /status ignores spec */
    reply_free(&r);
    assert_true(watch_wait(w, "\n", 1, DEADLINE_MS));

    /* Lists are replaced wholesale, null deletes a key. */
    assert_int_equal(request(fx.port, &fx.creds, "PATCH", status_path,
                             "{\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"10.0.0.9\"}]},"
                             "\"conditions\":null}}",
                             "application/merge-patch+json; charset=utf-8", &r),
                     200);
    assert_int_equal(json_array_size(jget(r.json, "status.loadBalancer.ingress")), 1);
    assert_string_equal(jstr(r.json, "status.loadBalancer.ingress.0.ip"), "10.0.0.9");
    assert_null(jget(r.json, "status.conditions"));
    reply_free(&r);
    assert_true(watch_wait(w, "\n", 2, DEADLINE_MS));
    json_t *events = watch_events(w);
    assert_string_equal(jstr(events, "0.type"), "MODIFIED");
    assert_string_equal(jstr(events, "0.object.status.loadBalancer.ingress.0.ip"), "10.0.0.1");
    assert_string_equal(jstr(events, "1.type"), "MODIFIED");
    assert_int_equal(jrv(events, "1.object.metadata.resourceVersion"), rv + 2);
    json_decref(events);

    /* A stale resourceVersion in the patch is a failed precondition. */
    snprintf(path, sizeof(path), "{\"metadata\":{\"resourceVersion\":\"%ld\"},\"status\":{}}", rv);
    assert_int_equal(request(fx.port, &fx.creds, "PATCH", status_path, path,
                             "application/merge-patch+json", &r),
                     409);
    assert_status_body(r.json, 409, "Conflict");
    reply_free(&r);
    /* GET of the status subresource shows the stored object. */
    assert_int_equal(get(fx.port, &fx.creds, status_path, &r), 200);
    assert_int_equal(jrv(r.json, "metadata.resourceVersion"), rv + 2);
    reply_free(&r);
}

static void test_service_status_patch_missing_is_404_and_other_types_415(void **state)
{
    (void)state;
    struct reply r;
    start_sim(NULL);
    apply_service("shop", "web");
    assert_int_equal(request(fx.port, &fx.creds, "PATCH",
                             "/api/v1/namespaces/shop/services/nope/status", "{\"status\":{}}",
                             "application/merge-patch+json", &r),
                     404);
    assert_status_body(r.json, 404, "NotFound");
    reply_free(&r);
    const char *types[] = {"application/json-patch+json", "application/strategic-merge-patch+json",
                           "application/apply-patch+yaml"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(request(fx.port, &fx.creds, "PATCH",
                                 "/api/v1/namespaces/shop/services/web/status", "[]", types[i], &r),
                         415);
        assert_status_body(r.json, 415, "UnsupportedMediaType");
        reply_free(&r);
    }
    assert_int_equal(k8ssim_count_requests(fx.sim, NULL, NULL), 4);
}

/* ---- store and request log ------------------------------------------------ */

static void test_delete_emits_deleted_with_the_new_resource_version(void **state)
{
    (void)state;
    char path[256];
    start_sim(NULL);
    long rv = apply_service("shop", "web");
    snprintf(path, sizeof(path), "/api/v1/namespaces/shop/services?watch=1&resourceVersion=%ld",
             rv);
    struct watch *w = watch_open(path, false);
    assert_int_equal(k8ssim_delete(fx.sim, "Service", "shop", "nope"), -ENOENT);
    long deleted = k8ssim_delete(fx.sim, "Service", "shop", "web");
    assert_int_equal(deleted, rv + 1);
    assert_true(watch_wait(w, "\n", 1, DEADLINE_MS));
    json_t *events = watch_events(w);
    assert_string_equal(jstr(events, "0.type"), "DELETED");
    assert_string_equal(jstr(events, "0.object.spec.type"), "LoadBalancer");
    assert_int_equal(jrv(events, "0.object.metadata.resourceVersion"), deleted);
    json_decref(events);
    /* Bad input is refused. */
    assert_true(k8ssim_apply(fx.sim, "not json") < 0);
    assert_true(k8ssim_apply(fx.sim, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":"
                                     "{\"name\":\"p\",\"namespace\":\"d\"}}") < 0);
    assert_true(k8ssim_apply(fx.sim, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":"
                                     "{\"name\":\"no-namespace\"}}") < 0);
}

static void test_requests_are_recorded_with_query_auth_and_status(void **state)
{
    (void)state;
    struct reply r;
    k8ssim_options_t opts = {.token = "t"};
    start_sim(&opts);
    get(fx.port, &fx.creds, "/api/v1/nodes?limit=500&resourceVersion=0", &r);
    reply_free(&r);
    get(fx.port, &(struct creds){.token = "wrong"}, "/apis", &r);
    reply_free(&r);
    get(fx.port, &(struct creds){0}, "/api/v1/secrets?fieldSelector=type%3Dkubernetes.io%2Ftls",
        &r);
    reply_free(&r);

    char *log = k8ssim_requests_json(fx.sim);
    json_t *requests = json_loads(log, 0, NULL);
    free(log);
    assert_int_equal(json_array_size(requests), 3);
    assert_string_equal(jstr(requests, "0.method"), "GET");
    assert_string_equal(jstr(requests, "0.path"), "/api/v1/nodes");
    assert_string_equal(jstr(requests, "0.query"), "limit=500&resourceVersion=0");
    assert_string_equal(jstr(requests, "0.auth"), "bearer:t");
    assert_int_equal(json_integer_value(jget(requests, "0.status")), 200);
    assert_string_equal(jstr(requests, "1.auth"), "bearer:wrong");
    assert_int_equal(json_integer_value(jget(requests, "1.status")), 401);
    assert_string_equal(jstr(requests, "2.auth"), "none");
    assert_string_equal(jstr(requests, "2.query"), "fieldSelector=type=kubernetes.io/tls");
    json_decref(requests);
    assert_int_equal(k8ssim_count_requests(fx.sim, "/api/v1/", NULL), 2);
    assert_int_equal(k8ssim_count_requests(fx.sim, NULL, "limit=500"), 1);
    assert_int_equal(k8ssim_count_requests(fx.sim, "/apis", "limit"), 0);
}

/* ---- the program ---------------------------------------------------------- */

static bool file_ready(void *cls)
{
    struct stat st;
    return stat(cls, &st) == 0 && st.st_size > 0;
}

static void test_program_serves_objects_until_sigterm(void **state)
{
    (void)state;
    char bin[1024], port_file[300], objects[300], text[64];
    struct reply r;
    const char *slash = strrchr(test_argv0, '/');
    snprintf(bin, sizeof(bin), "%.*s/../bin/k8ssim", slash ? (int)(slash - test_argv0) : 1,
             slash ? test_argv0 : ".");
    if (access(bin, X_OK) != 0)
        fail_msg("%s is missing: build it with make (build/<variant>/bin/k8ssim)", bin);
    snprintf(port_file, sizeof(port_file), "%s", path_in("port"));
    snprintf(objects, sizeof(objects), "%s", path_in("objects.ndjson"));
    unlink(port_file);
    FILE *f = fopen(objects, "w");
    assert_non_null(f);
    fputs("# two nodes\n{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"a\"}}\n\n"
          "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"b\"}}\n",
          f);
    fclose(f);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(bin, bin, "--port", "0", "--port-file", port_file, "--objects", objects, "--token",
              "tok", "--tls-cert", path_in("server.crt"), "--tls-key", path_in("server.key"),
              "--client-ca", path_in("ca.crt"), (char *)NULL);
        _exit(127);
    }
    assert_true(wait_for(file_ready, port_file, DEADLINE_MS));
    f = fopen(port_file, "r");
    assert_non_null(f);
    assert_non_null(fgets(text, sizeof(text), f));
    fclose(f);
    int port = atoi(text);
    struct creds token = {.tls = true, .token = "tok"};
    struct creds cert = {.tls = true, .cert = path_in("client.crt"), .key = path_in("client.key")};
    assert_int_equal(get(port, &token, "/api/v1/nodes", &r), 200);
    assert_int_equal(json_array_size(jget(r.json, "items")), 2);
    reply_free(&r);
    assert_int_equal(get(port, &cert, "/api/v1/nodes", &r), 200);
    reply_free(&r);
    assert_int_equal(get(port, &(struct creds){.tls = true}, "/api/v1/nodes", &r), 401);
    reply_free(&r);

    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = 0;
    int64_t deadline = now_ms() + DEADLINE_MS;
    pid_t done = 0;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
        sleep_ms(5);
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("k8ssim did not exit on SIGTERM");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    unlink(port_file);
    unlink(objects);
}

/* ---- certificates --------------------------------------------------------- */

__attribute__((format(printf, 1, 2))) static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "k8ssim test: command failed (%d): %s\n", rc, cmd);
    return rc;
}

/* A throwaway CA, a server certificate for 127.0.0.1/localhost, a client
 * certificate (CN kavi-watcher) and one from another CA. EC P-256 is quick. */
static int make_certificates(void **state)
{
    (void)state;
    const char *d = cert_dir;
    if (!mkdtemp(cert_dir))
        return -1;
    if (run("cd %s && openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null && "
            "openssl req -x509 -new -key ca.key -subj /CN=k8ssim-test-ca -days 2 -out ca.crt "
            "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign "
            "2>/dev/null && "
            "openssl ecparam -name prime256v1 -genkey -noout -out rogue-ca.key 2>/dev/null && "
            "openssl req -x509 -new -key rogue-ca.key -subj /CN=rogue-ca -days 2 -out rogue-ca.crt "
            "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign "
            "2>/dev/null",
            d))
        return -1;
    if (run("cd %s && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n"
            "keyUsage=critical,digitalSignature\\nextendedKeyUsage=serverAuth\\n' > server.ext && "
            "printf 'basicConstraints=CA:FALSE\\nkeyUsage=critical,digitalSignature\\n"
            "extendedKeyUsage=clientAuth\\n' > client.ext",
            d))
        return -1;
    struct {
        const char *name, *cn, *ca, *ext;
    } leaves[] = {{"server", "127.0.0.1", "ca", "server.ext"},
                  {"client", "kavi-watcher", "ca", "client.ext"},
                  {"rogue", "kavi-watcher", "rogue-ca", "client.ext"}};
    for (int i = 0; i < 3; i++) {
        if (run("cd %s && openssl ecparam -name prime256v1 -genkey -noout -out %s.key 2>/dev/null "
                "&& openssl req -new -key %s.key -subj /CN=%s -out %s.csr 2>/dev/null && "
                "openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key -set_serial %d -days 2 "
                "-extfile %s -out %s.crt 2>/dev/null",
                d, leaves[i].name, leaves[i].name, leaves[i].cn, leaves[i].name, leaves[i].name,
                leaves[i].ca, leaves[i].ca, 100 + i, leaves[i].ext, leaves[i].name))
            return -1;
    }
    return 0;
}

static int remove_certificates(void **state)
{
    (void)state;
    return run("rm -rf %s", cert_dir);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_list_pages_show_the_first_page_snapshot_while_objects_change),
        T(test_list_thousands_of_objects_through_pages_of_500),
        T(test_list_names_its_kind_and_items_carry_no_kind),
        T(test_list_continue_after_expired_history_is_410_expired),
        T(test_list_and_watch_secrets_by_field_selector_type),
        T(test_watch_from_resource_version_sends_only_later_events),
        T(test_watch_without_resource_version_starts_with_synthetic_added),
        T(test_watch_headers_are_flushed_before_any_event),
        T(test_watch_split_writes_straddle_chunks_and_share_them),
        T(test_watch_bookmarks_only_when_allowed),
        T(test_watch_timeout_seconds_ends_the_stream_cleanly),
        T(test_watch_from_forgotten_resource_version_gets_one_error_410_event),
        T(test_drop_watches_cuts_streams_mid_chunk),
        T(test_drop_watches_over_https_breaks_the_transfer),
        T(test_stalled_watches_send_nothing_until_released),
        T(test_fail_next_429_carries_retry_after_then_recovers),
        T(test_watch_ended_at_once_sends_nothing_until_turned_off),
        T(test_fail_matching_hits_only_requests_whose_query_matches),
        T(test_fail_next_503_answers_a_status_once),
        T(test_rotated_token_rejects_the_old_one_with_401),
        T(test_client_certificate_authenticates_over_https),
        T(test_discovery_without_routes_or_gateway_api),
        T(test_discovery_with_routes_and_gateway_api),
        T(test_unknown_path_is_404_not_found_status),
        T(test_service_status_merge_patch_bumps_rv_and_emits_modified),
        T(test_service_status_patch_missing_is_404_and_other_types_415),
        T(test_delete_emits_deleted_with_the_new_resource_version),
        T(test_requests_are_recorded_with_query_auth_and_status),
        T(test_program_serves_objects_until_sigterm),
    };
    test_argv0 = argv[0];
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cmocka_run_group_tests(tests, make_certificates, remove_certificates);
    curl_global_cleanup();
    return failed;
}
