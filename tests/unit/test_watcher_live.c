/* The live watcher against the Kubernetes API simulator (tests/k8ssim) over
 * HTTPS with its own CA: paged initial sync of thousands of objects, events
 * split across chunks, 410 relists that publish exactly the difference,
 * dropped and stalled watches, 429 with Retry-After, token rotation, every
 * kubeconfig credential kind, absent API groups, Service status write-back,
 * and --record replaying to the same bus state.
 *
 * Every wait polls with a deadline; nothing sleeps a fixed time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#if __has_include("tests/k8ssim/k8ssim.h")

#include <curl/curl.h>
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <uthash.h>
#include <zmq.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/envelope.h"
#include "proto/status.h"
#include "tests/k8ssim/k8ssim.h"
#include "watcher/kube_config.h"
#include "watcher/projection.h"
#include "watcher/reflector.h"
#include "watcher/watcher.h"

#define DEADLINE_MS 60000
#define TOKEN "token-0"

/* ---- PKI made once with the openssl tool: a CA, a server and a client ---------- */

static char pki[64];
static char ca_file[128], server_cert[128], server_key[128], client_cert[128], client_key[128];
static char named_cert[128], named_key[128]; /* a server certificate for api.kavi.test only */

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static int make_pki(void **state)
{
    (void)state;
    snprintf(pki, sizeof pki, "/tmp/kavi-live-pki-XXXXXX");
    if (!mkdtemp(pki))
        return -1;
    snprintf(ca_file, sizeof ca_file, "%s/ca.crt", pki);
    snprintf(server_cert, sizeof server_cert, "%s/server.crt", pki);
    snprintf(server_key, sizeof server_key, "%s/server.key", pki);
    snprintf(client_cert, sizeof client_cert, "%s/client.crt", pki);
    snprintf(client_key, sizeof client_key, "%s/client.key", pki);
    snprintf(named_cert, sizeof named_cert, "%s/named.crt", pki);
    snprintf(named_key, sizeof named_key, "%s/named.key", pki);
    int rc = run("(cd %s && "
                 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key && "
                 "openssl req -x509 -new -key ca.key -subj /CN=kavi-test-ca -days 2 -out ca.crt && "
                 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key && "
                 "openssl req -new -key server.key -subj /CN=127.0.0.1 -out server.csr && "
                 "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext && "
                 "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
                 "-days 2 -extfile server.ext -out server.crt && "
                 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out client.key && "
                 "openssl req -new -key client.key -subj /CN=kavi-client -out client.csr && "
                 "printf 'extendedKeyUsage=clientAuth\\n' > client.ext && "
                 "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
                 "-days 2 -extfile client.ext -out client.crt && "
                 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out named.key && "
                 "openssl req -new -key named.key -subj /CN=api.kavi.test -out named.csr && "
                 "printf 'subjectAltName=DNS:api.kavi.test\\n' > named.ext && "
                 "openssl x509 -req -in named.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
                 "-days 2 -extfile named.ext -out named.crt"
                 ") >/dev/null 2>&1",
                 pki);
    return rc == 0 ? 0 : -1;
}

static int remove_pki(void **state)
{
    (void)state;
    run("rm -rf %s", pki);
    return 0;
}

static char *file_base64(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "base64 -w0 %s", path);
    FILE *p = popen(cmd, "r");
    char *out = calloc(1, 65536);
    assert_non_null(p);
    size_t n = fread(out, 1, 65535, p);
    out[n] = '\0';
    pclose(p);
    return out;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- log capture --------------------------------------------------------------- */

static int saved_stderr = -1;
static FILE *capture_file;

static void capture_begin(void)
{
    fflush(stderr);
    capture_file = tmpfile();
    assert_non_null(capture_file);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fileno(capture_file), STDERR_FILENO);
}

static char *capture_end(void)
{
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    long len = ftell(capture_file);
    char *text = calloc(1, (size_t)len + 1);
    rewind(capture_file);
    if (len > 0 && fread(text, 1, (size_t)len, capture_file) != (size_t)len)
        fail_msg("cannot read the captured log");
    fclose(capture_file);
    fputs(text, stderr);
    return text;
}

static int count_occurrences(const char *text, const char *needle);

/* How often the log captured so far holds needle. */
static int captured_log_count(const char *needle)
{
    fflush(stderr);
    long len = ftell(capture_file);
    char *text = calloc(1, (size_t)len + 1);
    assert_non_null(text);
    if (len > 0 && pread(fileno(capture_file), text, (size_t)len, 0) != len)
        fail_msg("cannot read the captured log");
    int n = count_occurrences(text, needle);
    free(text);
    return n;
}

static int count_occurrences(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- a subscriber's view of stream "k8s", and the changes it saw ------------------ */

typedef struct view_entry {
    char *key;
    uint8_t *body;
    size_t len;
    UT_hash_handle hh;
} view_entry;

typedef struct {
    view_entry *entries;
    char **changes; /* "PUT <key>" / "DELETE <key>" since the last mark */
    size_t n_changes, cap_changes;
    bool recording;
} view;

static void view_note(view *v, const char *what, const char *key)
{
    if (!v->recording)
        return;
    if (v->n_changes == v->cap_changes) {
        v->cap_changes = v->cap_changes ? v->cap_changes * 2 : 64;
        v->changes = realloc(v->changes, v->cap_changes * sizeof *v->changes);
        assert_non_null(v->changes);
    }
    size_t n = strlen(what) + strlen(key) + 2;
    v->changes[v->n_changes] = malloc(n);
    snprintf(v->changes[v->n_changes++], n, "%s %s", what, key);
}

static void view_mark(view *v)
{
    for (size_t i = 0; i < v->n_changes; i++)
        free(v->changes[i]);
    v->n_changes = 0;
    v->recording = true;
}

static void view_clear(view *v)
{
    view_entry *e, *tmp;
    HASH_ITER(hh, v->entries, e, tmp) {
        HASH_DEL(v->entries, e);
        free(e->key);
        free(e->body);
        free(e);
    }
}

static void view_free(view *v)
{
    view_clear(v);
    view_mark(v);
    free(v->changes);
    memset(v, 0, sizeof *v);
}

static void view_apply(view *v, bus_event *ev)
{
    view_entry *e = NULL;
    switch (ev->type) {
    case BUS_RESET:
        view_clear(v);
        view_note(v, "RESET", "");
        break;
    case BUS_PUT:
        HASH_FIND_STR(v->entries, ev->env.key, e);
        if (!e) {
            e = calloc(1, sizeof *e);
            e->key = strdup(ev->env.key);
            HASH_ADD_KEYPTR(hh, v->entries, e->key, strlen(e->key), e);
        }
        free(e->body);
        e->body = ev->env.body;
        e->len = ev->env.body_len;
        ev->env.body = NULL;
        view_note(v, "PUT", ev->env.key);
        break;
    case BUS_DELETE:
        HASH_FIND_STR(v->entries, ev->env.key, e);
        if (e) {
            HASH_DEL(v->entries, e);
            free(e->key);
            free(e->body);
            free(e);
        }
        view_note(v, "DELETE", ev->env.key);
        break;
    case BUS_CONSISTENT:
        break;
    }
}

static const view_entry *view_get(const view *v, const char *key)
{
    view_entry *e = NULL;
    HASH_FIND_STR(v->entries, key, e);
    return e;
}

static bool view_has_change(const view *v, const char *change)
{
    for (size_t i = 0; i < v->n_changes; i++)
        if (strcmp(v->changes[i], change) == 0)
            return true;
    return false;
}

/* Since view_mark the subscriber saw exactly these changes, in any order. */
static void expect_changes(const view *v, const char *const *changes, size_t n)
{
    for (size_t i = 0; i < v->n_changes; i++)
        fprintf(stderr, "change: %s\n", v->changes[i]);
    for (size_t i = 0; i < n; i++)
        if (!view_has_change(v, changes[i]))
            fail_msg("no change %s", changes[i]);
    assert_int_equal(v->n_changes, n);
}

/* ---- fixture ------------------------------------------------------------------------- */

typedef struct {
    k8ssim_t *sim;
    char dir[64];
    char kubeconfig[128];
    void *ctx;
    kv_config *cfg;
    watcher_t *w;
    bus_sub_t *sub;
    void *push; /* stands in for a syncer */
    int64_t rediscover_ms; /* 0: the watcher's default */
    view view;
} fixture;

static int endpoint_counter;

static void sim_start(fixture *f, k8ssim_options_t *opts)
{
    memset(f, 0, sizeof *f);
    if (!opts->tls_cert_file) {
        opts->tls_cert_file = server_cert;
        opts->tls_key_file = server_key;
    }
    if (!opts->client_ca_file)
        opts->client_ca_file = ca_file;
    if (!opts->token)
        opts->token = TOKEN;
    assert_int_equal(k8ssim_new(&f->sim, opts), 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/kavi-live-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->kubeconfig, sizeof f->kubeconfig, "%s/kubeconfig", f->dir);
}

/* A kubeconfig for the simulator: `cluster_extra` and `user` are YAML
 * lines (indented 4) for the cluster and the user. */
static void write_kubeconfig(fixture *f, const char *path, const char *cluster_extra,
                             const char *user)
{
    char text[16384];
    snprintf(text, sizeof text,
             "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
             "contexts:\n- name: sim\n  context: {cluster: sim, user: me}\n"
             "clusters:\n- name: sim\n  cluster:\n    server: https://127.0.0.1:%d\n%s\n"
             "users:\n- name: me\n  user:\n%s\n",
             k8ssim_port(f->sim), cluster_extra, user);
    write_text(path, text);
}

static void watcher_start(fixture *f, kube_config *kube, const char *record_file)
{
    char yaml[512], err[1024];
    int n = ++endpoint_counter;
    snprintf(yaml, sizeof yaml,
             "clusterName: test\ntenantName: admin\nlogLevel: INFO\n"
             "bus:\n  k8sPublish: inproc://live-pub-%d\n  k8sSnapshot: inproc://live-snap-%d\n"
             "  status: inproc://live-status-%d\n",
             n, n, n);
    if (config_load_string(&f->cfg, yaml, "test", err, sizeof err) < 0)
        fail_msg("%s", err);
    f->ctx = zmq_ctx_new();
    watcher_options options = {
        .kube = kube, .record_file = record_file, .rediscover_ms = f->rediscover_ms};
    if (watcher_new(&f->w, f->ctx, f->cfg, &options, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_int_equal(bus_sub_new(&f->sub, f->ctx, f->cfg->k8s_publish, f->cfg->k8s_snapshot,
                                 PROTO_STREAM_K8S),
                     0);
    f->push = bus_socket_connect(f->ctx, ZMQ_PUSH, f->cfg->status_endpoint);
    assert_non_null(f->push);
}

static void watcher_start_kubeconfig(fixture *f, const char *record_file)
{
    kube_config *kube = NULL;
    char err[1024];
    if (kube_config_load(&kube, f->kubeconfig, err, sizeof err) < 0)
        fail_msg("%s", err);
    watcher_start(f, kube, record_file);
}

static void sync_or_fail(fixture *f);

/* The watcher on the simulator through a kubeconfig with the test CA and
 * token, synced. */
static void watcher_start_synced(fixture *f)
{
    char extra[256];
    snprintf(extra, sizeof extra, "    certificate-authority: %s", ca_file);
    write_kubeconfig(f, f->kubeconfig, extra, "    token: " TOKEN);
    watcher_start_kubeconfig(f, NULL);
    sync_or_fail(f);
}

static void watcher_stop(fixture *f)
{
    bus_socket_close(&f->push);
    bus_sub_destroy(&f->sub);
    watcher_destroy(&f->w);
    if (f->ctx)
        zmq_ctx_term(f->ctx);
    f->ctx = NULL;
    config_destroy(&f->cfg);
    view_free(&f->view);
}

static void fixture_stop(fixture *f)
{
    watcher_stop(f);
    k8ssim_destroy(&f->sim);
    run("rm -rf %s", f->dir);
}

typedef bool (*condition_fn)(fixture *f, const void *arg);

/* Runs the watcher and the subscriber until cond holds; false at the deadline. */
static bool pump_until(fixture *f, condition_fn cond, const void *arg, int64_t deadline_ms)
{
    int64_t deadline = clock_now_ms() + deadline_ms;
    zmq_pollitem_t items[WATCHER_POLLITEMS + 2];
    for (;;) {
        int64_t now = clock_now_ms();
        int64_t wait = watcher_step(f->w, now);
        bus_event ev;
        while (bus_sub_next(f->sub, &ev, now) == 1) {
            view_apply(&f->view, &ev);
            bus_event_clear(&ev);
        }
        if (cond(f, arg))
            return true;
        if (now >= deadline)
            return false;
        int64_t sub_wait = bus_sub_timeout_ms(f->sub, now);
        if (sub_wait < wait)
            wait = sub_wait;
        if (wait > 20)
            wait = 20;
        int n = watcher_pollitems(f->w, items);
        n += bus_sub_pollitems(f->sub, items + n);
        zmq_poll(items, n, (long)wait);
    }
}

static bool has_key(fixture *f, const void *key)
{
    return bus_sub_is_consistent(f->sub) && view_get(&f->view, key);
}

static bool lacks_key(fixture *f, const void *key)
{
    return bus_sub_is_consistent(f->sub) && !view_get(&f->view, key);
}

static bool all_synced(fixture *f, const void *arg)
{
    (void)arg;
    return watcher_replay_done(f->w) && bus_sub_is_consistent(f->sub) &&
           view_get(&f->view, "!synced/Service") && view_get(&f->view, "!synced/Node") &&
           view_get(&f->view, "!synced/EndpointSlice");
}

typedef struct {
    const char *prefix;
    size_t count;
} prefix_count;

static bool has_count(fixture *f, const void *arg)
{
    const prefix_count *pc = arg;
    size_t n = 0;
    view_entry *e, *tmp;
    if (!bus_sub_is_consistent(f->sub))
        return false;
    HASH_ITER(hh, f->view.entries, e, tmp) {
        if (strncmp(e->key, pc->prefix, strlen(pc->prefix)) == 0)
            n++;
    }
    return n == pc->count;
}

typedef struct {
    const char *path;
    const char *query;
    size_t at_least;
} request_count;

static bool sim_got(fixture *f, const void *arg)
{
    const request_count *rc = arg;
    return k8ssim_count_requests(f->sim, rc->path, rc->query) >= rc->at_least;
}

static void sync_or_fail(fixture *f)
{
    if (!pump_until(f, all_synced, NULL, DEADLINE_MS))
        fail_msg("the watcher did not sync within %d ms", DEADLINE_MS);
}

/* The projection of what the simulator holds must reach the subscriber. */
static void wait_for_key(fixture *f, const char *key)
{
    if (!pump_until(f, has_key, key, DEADLINE_MS))
        fail_msg("%s never reached the subscriber", key);
}

static void wait_for_no_key(fixture *f, const char *key)
{
    if (!pump_until(f, lacks_key, key, DEADLINE_MS))
        fail_msg("%s was never deleted", key);
}

/* ---- objects --------------------------------------------------------------------------- */

static long apply_service(fixture *f, int i, int port)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc-%d\","
             "\"namespace\":\"default\"},\"spec\":{\"type\":\"LoadBalancer\",\"ports\":[{"
             "\"name\":\"http\",\"protocol\":\"TCP\",\"port\":%d,\"targetPort\":8080,"
             "\"nodePort\":%d}]}}",
             i, port, 30000 + i % 2000);
    long rv = k8ssim_apply(f->sim, json);
    assert_true(rv > 0);
    return rv;
}

static long apply_slice(fixture *f, int i)
{
    char json[768];
    snprintf(json, sizeof json,
             "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{"
             "\"name\":\"svc-%d-abcde\",\"namespace\":\"default\",\"labels\":{"
             "\"kubernetes.io/service-name\":\"svc-%d\"}},\"addressType\":\"IPv4\","
             "\"endpoints\":[{\"addresses\":[\"10.1.%d.%d\"],\"conditions\":{\"ready\":true},"
             "\"nodeName\":\"node-1\"}],\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\","
             "\"port\":8080}]}",
             i, i, i / 250, i % 250 + 1);
    long rv = k8ssim_apply(f->sim, json);
    assert_true(rv > 0);
    return rv;
}

static void apply_node(fixture *f, const char *name, const char *ip)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\"},"
             "\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"%s\"}]}}",
             name, ip);
    assert_true(k8ssim_apply(f->sim, json) > 0);
}

/* The auth values the simulator recorded, e.g. "bearer:token-0", "cert:kavi-client". */
static bool sim_saw_auth(fixture *f, const char *auth, long status)
{
    char *text = k8ssim_requests_json(f->sim);
    json_t *list = json_loads(text, 0, NULL);
    bool found = false;
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r) {
        const char *a = json_string_value(json_object_get(r, "auth"));
        if (a && strcmp(a, auth) == 0 && json_integer_value(json_object_get(r, "status")) == status)
            found = true;
    }
    json_decref(list);
    free(text);
    return found;
}

static size_t collect_body(char *data, size_t size, size_t nmemb, void *userp)
{
    FILE *out = userp;
    return fwrite(data, size, nmemb, out);
}

/* GET path from the simulator as a client would (token, CA): parsed body. */
static json_t *sim_get(fixture *f, const char *path)
{
    char url[512], *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CURL *h = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", k8ssim_port(f->sim), path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    fclose(out);
    json_t *doc = json_loadb(text, len, 0, NULL);
    free(text);
    assert_non_null(doc);
    return doc;
}

/* The status.loadBalancer.ingress the simulator holds for Service default/name, as JSON text. */
static char *service_ingress(fixture *f, const char *name)
{
    json_t *list = sim_get(f, "/api/v1/services");
    char *text = NULL;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(list, "items"), i, item) {
        const char *n = json_string_value(json_object_get(json_object_get(item, "metadata"), "name"));
        if (n && strcmp(n, name) == 0) {
            json_t *ingress = json_object_get(
                json_object_get(json_object_get(item, "status"), "loadBalancer"), "ingress");
            text = ingress ? json_dumps(ingress, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("null");
        }
    }
    json_decref(list);
    return text;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_initial_sync_of_thousands_through_pages(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 1000};
    sim_start(&f, &opts);
    for (int i = 0; i < 3000; i++) {
        apply_service(&f, i, 80);
        apply_slice(&f, i);
    }
    apply_node(&f, "node-1", "10.0.0.1");
    watcher_start_synced(&f);

    prefix_count services = {"Service/", 3000}, slices = {"EndpointSlice/", 3000};
    assert_true(pump_until(&f, has_count, &services, DEADLINE_MS));
    assert_true(pump_until(&f, has_count, &slices, DEADLINE_MS));
    assert_non_null(view_get(&f.view, "Service/default/svc-0"));
    assert_non_null(view_get(&f.view, "Service/default/svc-2999"));
    assert_non_null(view_get(&f.view, "EndpointSlice/default/svc-2999-abcde"));
    assert_non_null(view_get(&f.view, "Node/node-1"));
    static const char *markers[] = {"!synced/Node", "!synced/Service", "!synced/EndpointSlice",
                                    "!synced/Namespace", "!synced/Secret", "!synced/Ingress",
                                    "!synced/IngressClass", "!synced/Route",
                                    "!synced/GatewayClass", "!synced/Gateway",
                                    "!synced/HTTPRoute"};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        if (!view_get(&f.view, markers[i]))
            fail_msg("marker %s missing", markers[i]);
    /* 3000 objects at 500 a page: 6 pages each, the later ones with continue. */
    assert_true(k8ssim_count_requests(f.sim, "/api/v1/services", "limit=500") >= 6);
    assert_true(k8ssim_count_requests(f.sim, "/api/v1/services", "continue=") >= 5);
    assert_true(k8ssim_count_requests(f.sim, "/apis/discovery.k8s.io/v1/endpointslices",
                                      "continue=") >= 5);
    assert_true(k8ssim_count_requests(f.sim, "/api/v1/secrets",
                                      "fieldSelector=type=kubernetes.io/tls") +
                    k8ssim_count_requests(f.sim, "/api/v1/secrets",
                                          "fieldSelector=type%3Dkubernetes.io%2Ftls") >=
                1);
    /* Then watches start, with bookmarks. */
    request_count watch = {"/api/v1/services", "allowWatchBookmarks=true", 1};
    assert_true(pump_until(&f, sim_got, &watch, DEADLINE_MS));
    assert_true(sim_saw_auth(&f, "bearer:" TOKEN, 200));
    fixture_stop(&f);
}

static void test_expired_continue_token_lists_again_from_the_start(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 1000};
    char extra[256];
    sim_start(&f, &opts);
    for (int i = 0; i < 3000; i++)
        apply_service(&f, i, 80);
    snprintf(extra, sizeof extra, "    certificate-authority: %s", ca_file);
    write_kubeconfig(&f, f.kubeconfig, extra, "    token: " TOKEN);
    capture_begin();
    watcher_start_kubeconfig(&f, NULL);
    /* Once the first page is asked for, history goes: the next continue
     * token is too old (HTTP 410) and the list starts again. */
    request_count first_page = {"/api/v1/services", "limit=500", 1};
    bool asked = pump_until(&f, sim_got, &first_page, DEADLINE_MS);
    k8ssim_expire_history(f.sim);
    apply_service(&f, 3000, 80); /* appears only in the new list */
    bool synced = pump_until(&f, all_synced, NULL, DEADLINE_MS);
    prefix_count services = {"Service/", 3001};
    bool complete = pump_until(&f, has_count, &services, DEADLINE_MS);
    char *log = capture_end();
    assert_true(asked);
    assert_true(synced);
    assert_true(complete);
    assert_non_null(strstr(log, "Service: list expired (410); listing again from the start"));
    assert_non_null(strstr(log, "Service: relisted 3001 objects in 7 page(s)"));
    free(log);
    fixture_stop(&f);
}

/* The common start of the smaller tests: three Services, their slices, a node. */
static void start_small(fixture *f, k8ssim_options_t *opts)
{
    sim_start(f, opts);
    for (int i = 0; i < 3; i++) {
        apply_service(f, i, 80);
        apply_slice(f, i);
    }
    apply_node(f, "node-1", "10.0.0.1");
    watcher_start_synced(f);
}

static void test_events_split_across_chunks_are_whole(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    start_small(&f, &opts);
    k8ssim_split_writes(f.sim, true);
    for (int i = 100; i < 150; i++)
        apply_service(&f, i, 80);
    apply_service(&f, 0, 8443); /* modified */
    k8ssim_delete(f.sim, "Service", "default", "svc-1");
    prefix_count services = {"Service/", 3 + 50 - 1};
    assert_true(pump_until(&f, has_count, &services, DEADLINE_MS));
    wait_for_no_key(&f, "Service/default/svc-1");
    assert_non_null(view_get(&f.view, "Service/default/svc-149"));
    fixture_stop(&f);
}

static void test_expired_watch_relists_and_publishes_exactly_the_difference(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    start_small(&f, &opts);
    size_t lists_before = k8ssim_count_requests(f.sim, "/api/v1/services", "limit=");

    /* While the watches hear nothing, objects are added, changed and
     * deleted and the history is forgotten: only a relist can catch up. */
    k8ssim_stall_watches(f.sim, true);
    view_mark(&f.view);
    apply_service(&f, 7, 80);             /* added */
    apply_service(&f, 1, 9090);           /* changed */
    apply_service(&f, 2, 80);             /* applied again unchanged: no change to publish */
    k8ssim_delete(f.sim, "Service", "default", "svc-0"); /* deleted */
    k8ssim_expire_history(f.sim);
    k8ssim_drop_watches(f.sim);
    k8ssim_stall_watches(f.sim, false);

    wait_for_key(&f, "Service/default/svc-7");
    wait_for_no_key(&f, "Service/default/svc-0");
    request_count relist = {"/api/v1/services", "limit=", lists_before + 1};
    assert_true(pump_until(&f, sim_got, &relist, DEADLINE_MS));
    /* Let the other kinds' watches come back too, then compare. */
    request_count rewatch = {"/api/v1/services", "watch=", 2};
    assert_true(pump_until(&f, sim_got, &rewatch, DEADLINE_MS));
    assert_true(pump_until(&f, has_key, "Service/default/svc-1", DEADLINE_MS));
    static const char *const changes[] = {"PUT Service/default/svc-7", "PUT Service/default/svc-1",
                                          "DELETE Service/default/svc-0"};
    expect_changes(&f.view, changes, 3);
    fixture_stop(&f);
}

/* A relist whose second page keeps failing publishes nothing of its first:
 * until its last page, subscribers keep the whole old state of the kind,
 * then see exactly the difference at once. */
static void test_relist_publishes_nothing_until_its_last_page(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    sim_start(&f, &opts);
    for (int i = 0; i < 600; i++) /* two pages of 500 */
        apply_service(&f, i, 80);
    watcher_start_synced(&f);
    prefix_count all = {"Service/", 600};
    assert_true(pump_until(&f, has_count, &all, DEADLINE_MS));

    k8ssim_stall_watches(f.sim, true);
    view_mark(&f.view);
    apply_service(&f, 1, 9090);  /* svc-1 is on the first page (names sort as text) */
    apply_service(&f, 700, 80);  /* svc-700 on the second */
    k8ssim_delete(f.sim, "Service", "default", "svc-0");
    k8ssim_fail_matching(f.sim, "continue=", 503, 1000);
    k8ssim_expire_history(f.sim);
    k8ssim_drop_watches(f.sim);
    k8ssim_stall_watches(f.sim, false);

    /* The first page came back; the second was refused twice. */
    request_count refused = {"/api/v1/services", "continue=", 2};
    assert_true(pump_until(&f, sim_got, &refused, DEADLINE_MS));
    for (size_t i = 0; i < f.view.n_changes; i++)
        fprintf(stderr, "change too early: %s\n", f.view.changes[i]);
    assert_int_equal(f.view.n_changes, 0);
    assert_non_null(view_get(&f.view, "Service/default/svc-0"));

    k8ssim_fail_matching(f.sim, NULL, 0, 0);
    wait_for_key(&f, "Service/default/svc-700");
    wait_for_no_key(&f, "Service/default/svc-0");
    static const char *const changes[] = {"PUT Service/default/svc-1",
                                          "PUT Service/default/svc-700",
                                          "DELETE Service/default/svc-0"};
    expect_changes(&f.view, changes, 3);
    fixture_stop(&f);
}

static void test_dropped_watch_resumes_from_last_rv_without_relist(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    start_small(&f, &opts);
    apply_service(&f, 10, 80);
    wait_for_key(&f, "Service/default/svc-10");
    size_t lists = k8ssim_count_requests(f.sim, "/api/v1/services", "limit=");
    size_t watches = k8ssim_count_requests(f.sim, "/api/v1/services", "watch=");

    k8ssim_split_writes(f.sim, true); /* so the drop can land mid-event */
    apply_service(&f, 11, 80);
    k8ssim_drop_watches(f.sim);
    apply_service(&f, 12, 80);
    wait_for_key(&f, "Service/default/svc-11");
    wait_for_key(&f, "Service/default/svc-12");
    request_count rewatch = {"/api/v1/services", "watch=", watches + 1};
    assert_true(pump_until(&f, sim_got, &rewatch, DEADLINE_MS));
    assert_int_equal(k8ssim_count_requests(f.sim, "/api/v1/services", "limit="), lists);
    fixture_stop(&f);
}

static void test_stalled_watch_is_ended_by_the_idle_timer(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 100};
    setenv("KAVI_WATCH_IDLE_MS", "500", 1);
    capture_begin();
    start_small(&f, &opts);
    unsetenv("KAVI_WATCH_IDLE_MS");
    request_count first_watch = {"/api/v1/services", "watch=", 1};
    assert_true(pump_until(&f, sim_got, &first_watch, DEADLINE_MS));
    size_t watches = k8ssim_count_requests(f.sim, "/api/v1/services", "watch=");
    size_t lists = k8ssim_count_requests(f.sim, "/api/v1/services", "limit=");
    int64_t stalled_at = clock_now_ms();
    k8ssim_stall_watches(f.sim, true);
    request_count rewatch = {"/api/v1/services", "watch=", watches + 1};
    bool rewatched = pump_until(&f, sim_got, &rewatch, DEADLINE_MS);
    int64_t took = clock_now_ms() - stalled_at;
    k8ssim_stall_watches(f.sim, false);
    apply_service(&f, 20, 80);
    bool delivered = pump_until(&f, has_key, "Service/default/svc-20", DEADLINE_MS);
    char *log = capture_end();
    assert_true(rewatched);
    assert_true(delivered);
    /* Seen within the bound plus one backoff, not curl's seconds-late low-speed check. */
    assert_true(took >= 500);
    assert_true(took < 5000);
    assert_non_null(strstr(log, "Service: no event or bookmark for"));
    assert_int_equal(k8ssim_count_requests(f.sim, "/api/v1/services", "limit="), lists);
    free(log);
    fixture_stop(&f);
}

/* The first five requests (discovery and the four core lists, all sent at
 * once) are refused with 429 and Retry-After; backoff alone is < 1 s, so a
 * sync that took at least min_ms waited as told. */
static void check_429_waits_for_retry_after(bool http_date, int seconds, int64_t min_ms)
{
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200, .retry_after_http_date = http_date};
    char extra[256];
    sim_start(&f, &opts);
    apply_service(&f, 0, 80);
    snprintf(extra, sizeof extra, "    certificate-authority: %s", ca_file);
    write_kubeconfig(&f, f.kubeconfig, extra, "    token: " TOKEN);
    k8ssim_fail_next(f.sim, 429, seconds, 5);
    int64_t start = clock_now_ms();
    watcher_start_kubeconfig(&f, NULL);
    sync_or_fail(&f);
    int64_t took = clock_now_ms() - start;
    wait_for_key(&f, "Service/default/svc-0");
    char *text = k8ssim_requests_json(f.sim);
    json_t *list = json_loads(text, 0, NULL);
    size_t refused = 0, i;
    json_t *r;
    json_array_foreach(list, i, r) {
        if (json_integer_value(json_object_get(r, "status")) == 429)
            refused++;
    }
    json_decref(list);
    free(text);
    assert_int_equal(refused, 5);
    assert_true(took >= min_ms);
    fixture_stop(&f);
}

static void test_429_waits_for_retry_after(void **state)
{
    (void)state;
    check_429_waits_for_retry_after(false, 2, 2000);
}

/* "Retry-After: <HTTP-date>" (RFC 9110): whole seconds, so a date three
 * seconds ahead is at least two seconds away. */
static void test_429_waits_for_retry_after_as_http_date(void **state)
{
    (void)state;
    check_429_waits_for_retry_after(true, 3, 2000);
}

#define SHORT_WATCH "Service: watch ended after "

static bool two_short_watches(fixture *f, const void *arg)
{
    (void)f;
    (void)arg;
    return captured_log_count(SHORT_WATCH) >= 2;
}

/* The delays of the first two "watch ended ... without an event" lines. */
static void short_watch_delays(const char *log, long long delays[2])
{
    const char *at = log;
    for (int i = 0; i < 2; i++) {
        long long lived = 0;
        at = strstr(at, SHORT_WATCH);
        assert_non_null(at);
        at += strlen(SHORT_WATCH);
        if (sscanf(at, "%lld ms without an event; watching again in %lld ms", &lived,
                   &delays[i]) != 2)
            fail_msg("unexpected line: %.120s", at);
    }
}

/* A watch answered 200 that ends at once with nothing in it (a proxy
 * cutting it) is a failure: the watcher waits, longer each time, instead of
 * spinning, and carries on once watches work again. */
static void test_watch_ending_at_once_backs_off_then_recovers(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    long long delays[2];
    start_small(&f, &opts);
    capture_begin();
    k8ssim_end_watches_at_once(f.sim, true);
    k8ssim_drop_watches(f.sim);
    bool seen = pump_until(&f, two_short_watches, NULL, DEADLINE_MS);
    char *log = capture_end();
    if (!seen)
        fail_msg("no two short watches of Services were reported");
    short_watch_delays(log, delays);
    free(log);
    assert_true(delays[0] >= REFLECTOR_BACKOFF_INITIAL_MS / 2);
    assert_true(delays[1] >= delays[0]);

    k8ssim_end_watches_at_once(f.sim, false);
    apply_service(&f, 7, 80);
    wait_for_key(&f, "Service/default/svc-7");
    fixture_stop(&f);
}

static void test_5xx_and_403_back_off_then_recover(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    char extra[256];
    sim_start(&f, &opts);
    apply_service(&f, 0, 80);
    snprintf(extra, sizeof extra, "    certificate-authority: %s", ca_file);
    write_kubeconfig(&f, f.kubeconfig, extra, "    token: " TOKEN);
    k8ssim_fail_next(f.sim, 503, 0, 5);
    int64_t start = clock_now_ms();
    capture_begin();
    watcher_start_kubeconfig(&f, NULL);
    bool synced = pump_until(&f, all_synced, NULL, DEADLINE_MS);
    int64_t took = clock_now_ms() - start;
    /* RBAC refuses the next request: a line naming the kind, then a retry. */
    size_t watches = k8ssim_count_requests(f.sim, "/api/v1/", "watch=");
    k8ssim_fail_next(f.sim, 403, 0, 1);
    k8ssim_drop_watches(f.sim);
    apply_service(&f, 1, 80);
    bool delivered = pump_until(&f, has_key, "Service/default/svc-1", DEADLINE_MS);
    request_count rewatch = {"/api/v1/", "watch=", watches + 4};
    bool rewatched = pump_until(&f, sim_got, &rewatch, DEADLINE_MS);
    char *log = capture_end();
    assert_true(synced);
    assert_true(delivered);
    assert_true(rewatched);
    assert_true(took >= REFLECTOR_BACKOFF_INITIAL_MS / 2); /* backoff, not a hot loop */
    assert_non_null(strstr(log, "HTTP 503"));
    assert_non_null(strstr(log, "forbidden (HTTP 403"));
    assert_non_null(strstr(log, "check the RBAC rules"));
    free(log);
    fixture_stop(&f);
}

static void test_rotated_token_file_is_read_again_after_401(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    char path[192], port[16], err[1024];
    kube_config *kube = NULL;
    sim_start(&f, &opts);
    apply_service(&f, 0, 80);
    /* In-cluster, with the service account directory of a test. */
    snprintf(path, sizeof path, "%s/ca.crt", f.dir);
    run("cp %s %s", ca_file, path);
    snprintf(path, sizeof path, "%s/token", f.dir);
    write_text(path, TOKEN "\n");
    snprintf(port, sizeof port, "%d", k8ssim_port(f.sim));
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    setenv("KAVI_SERVICEACCOUNT_DIR", f.dir, 1);
    int rc = kube_config_in_cluster(&kube, err, sizeof err);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    unsetenv("KAVI_SERVICEACCOUNT_DIR");
    if (rc < 0)
        fail_msg("%s", err);
    watcher_start(&f, kube, NULL);
    sync_or_fail(&f);

    /* The kubelet rotates the token: the server accepts only the new one,
     * the file holds it; the open watches are cut, the next request meets
     * 401 with the old token, re-reads the file and goes on. */
    k8ssim_set_token(f.sim, "token-1");
    write_text(path, "token-1\n");
    k8ssim_drop_watches(f.sim);
    apply_service(&f, 30, 80);
    wait_for_key(&f, "Service/default/svc-30");
    assert_true(sim_saw_auth(&f, "bearer:" TOKEN, 401));
    assert_true(sim_saw_auth(&f, "bearer:token-1", 200));
    fixture_stop(&f);
}

/* One kubeconfig variant: sync, then the auth the simulator saw. */
static void sync_with_kubeconfig(fixture *f, const char *cluster_extra, const char *user,
                                 const char *expected_auth)
{
    apply_service(f, 0, 80);
    write_kubeconfig(f, f->kubeconfig, cluster_extra, user);
    watcher_start_kubeconfig(f, NULL);
    sync_or_fail(f);
    wait_for_key(f, "Service/default/svc-0");
    if (!sim_saw_auth(f, expected_auth, 200))
        fail_msg("the simulator never saw %s", expected_auth);
}

static void test_kubeconfig_token_file_and_ca_file(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    char extra[256], user[256], path[192];
    sim_start(&f, &opts);
    snprintf(path, sizeof path, "%s/token", f.dir);
    write_text(path, TOKEN "\n");
    snprintf(extra, sizeof extra, "    certificate-authority: %s", ca_file);
    snprintf(user, sizeof user, "    tokenFile: token"); /* relative to the kubeconfig */
    sync_with_kubeconfig(&f, extra, user, "bearer:" TOKEN);
    fixture_stop(&f);
}

static void test_kubeconfig_client_certificate_data_and_ca_data(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    char *ca = file_base64(ca_file), *cert = file_base64(client_cert), *key = file_base64(client_key);
    char extra[8192], user[16384];
    sim_start(&f, &opts);
    snprintf(extra, sizeof extra, "    certificate-authority-data: %s", ca);
    snprintf(user, sizeof user, "    client-certificate-data: %s\n    client-key-data: %s", cert,
             key);
    sync_with_kubeconfig(&f, extra, user, "cert:kavi-client");
    free(ca);
    free(cert);
    free(key);
    fixture_stop(&f);
}

static void test_kubeconfig_exec_plugin(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    char extra[256], user[1024], script[192];
    sim_start(&f, &opts);
    snprintf(script, sizeof script, "%s/credential.sh", f.dir);
    write_text(script, "#!/bin/sh\n"
                       "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 3 ;; esac\n"
                       "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
                       "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"'$1'\"}}'\n");
    chmod(script, 0755);
    snprintf(extra, sizeof extra, "    certificate-authority: %s", ca_file);
    snprintf(user, sizeof user,
             "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n"
             "      command: ./credential.sh\n      args: [\"%s\"]",
             TOKEN);
    sync_with_kubeconfig(&f, extra, user, "bearer:" TOKEN);
    fixture_stop(&f);
}

static bool log_has(fixture *f, const void *needle)
{
    (void)f;
    return captured_log_count(needle) > 0;
}

/* The watcher cannot get past TLS: the log says why, nothing reaches the bus. */
static void refused_by_tls(fixture *f, const char *cluster_extra, const char *why)
{
    write_kubeconfig(f, f->kubeconfig, cluster_extra, "    token: " TOKEN);
    capture_begin();
    watcher_start_kubeconfig(f, NULL);
    bool said = pump_until(f, log_has, why, DEADLINE_MS);
    bool synced = all_synced(f, NULL);
    free(capture_end());
    if (!said)
        fail_msg("the log never said '%s'", why);
    assert_false(synced);
    assert_int_equal(k8ssim_count_requests(f->sim, NULL, NULL), 0);
    watcher_stop(f);
}

/* tls-server-name: the certificate names api.kavi.test, the server URL
 * 127.0.0.1; the name is what is verified (and sent as SNI). */
static bool file_exists(fixture *f, const void *path)
{
    (void)f;
    return access(path, F_OK) == 0;
}

static bool sim_took_token_1(fixture *f, const void *arg)
{
    (void)arg;
    return sim_saw_auth(f, "bearer:token-1", 200);
}

/* An exec plugin that takes its time runs beside the loop, not inside it:
 * the watcher goes on while the plugin waits (here for the test itself,
 * which a blocking run would deadlock until the plugin is killed), and the
 * requests that need the new credential go out once it answers. */
static void test_slow_exec_plugin_runs_beside_the_loop(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    char extra[256], user[1024], script[192], fifo[192], started[192], ran[192], text[1024];
    sim_start(&f, &opts);
    apply_service(&f, 0, 80);
    snprintf(script, sizeof script, "%s/credential.sh", f.dir);
    snprintf(fifo, sizeof fifo, "%s/go", f.dir);
    snprintf(started, sizeof started, "%s/started", f.dir);
    snprintf(ran, sizeof ran, "%s/ran", f.dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* The first run answers at once; the next waits for a line on the fifo. */
    snprintf(text, sizeof text,
             "#!/bin/sh\n"
             "if [ -e %s ]; then touch %s; read go < %s; token=token-1;\n"
             "else touch %s; token=" TOKEN "; fi\n"
             "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
             "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"'$token'\"}}'\n",
             ran, started, fifo, ran);
    write_text(script, text);
    chmod(script, 0755);
    snprintf(extra, sizeof extra, "    certificate-authority: %s", ca_file);
    snprintf(user, sizeof user,
             "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n"
             "      command: %s",
             script);
    write_kubeconfig(&f, f.kubeconfig, extra, user);
    watcher_start_kubeconfig(&f, NULL);
    sync_or_fail(&f);

    /* The token is rotated: the next requests get 401 and the plugin runs. */
    k8ssim_set_token(f.sim, "token-1");
    k8ssim_drop_watches(f.sim);
    if (!pump_until(&f, file_exists, started, DEADLINE_MS))
        fail_msg("the plugin never ran again");
    int fd = open(fifo, O_WRONLY | O_NONBLOCK);
    if (fd < 0)
        fail_msg("the plugin no longer waits (%s): the loop blocked on it", strerror(errno));
    assert_int_equal(write(fd, "go\n", 3), 3);
    close(fd);

    if (!pump_until(&f, sim_took_token_1, NULL, DEADLINE_MS))
        fail_msg("no request went out with the plugin's new token");
    apply_service(&f, 1, 80);
    wait_for_key(&f, "Service/default/svc-1");
    fixture_stop(&f);
}

static void test_kubeconfig_tls_server_name(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {
        .bookmark_interval_ms = 200, .tls_cert_file = named_cert, .tls_key_file = named_key};
    char extra[512];
    sim_start(&f, &opts);
    snprintf(extra, sizeof extra, "    certificate-authority: %s", ca_file);
    refused_by_tls(&f, extra, "no alternative certificate subject name matches");
    snprintf(extra, sizeof extra,
             "    certificate-authority: %s\n    tls-server-name: api.kavi.test", ca_file);
    sync_with_kubeconfig(&f, extra, "    token: " TOKEN, "bearer:" TOKEN);
    fixture_stop(&f);
}

/* insecure-skip-tls-verify: a server no known CA signed is still reached. */
static void test_kubeconfig_insecure_skip_tls_verify(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    sim_start(&f, &opts);
    refused_by_tls(&f, "", "unable to get local issuer certificate");
    sync_with_kubeconfig(&f, "    insecure-skip-tls-verify: true", "    token: " TOKEN,
                         "bearer:" TOKEN);
    fixture_stop(&f);
}

static void test_kubeconfig_two_files_merged(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    char first[192], second[192], list[400], text[1024], err[1024];
    kube_config *kube = NULL;
    sim_start(&f, &opts);
    apply_service(&f, 0, 80);
    snprintf(first, sizeof first, "%s/users.yaml", f.dir);
    snprintf(second, sizeof second, "%s/clusters.yaml", f.dir);
    write_text(first, "users:\n- name: me\n  user: {token: " TOKEN "}\n");
    snprintf(text, sizeof text,
             "current-context: sim\ncontexts:\n- name: sim\n  context: {cluster: sim, user: me}\n"
             "clusters:\n- name: sim\n  cluster:\n    server: https://127.0.0.1:%d\n"
             "    certificate-authority: %s\n"
             "users:\n- name: me\n  user: {token: wrong-token}\n",
             k8ssim_port(f.sim), ca_file);
    write_text(second, text);
    snprintf(list, sizeof list, "%s:%s", first, second);
    setenv("KUBECONFIG", list, 1);
    int rc = kube_config_load(&kube, NULL, err, sizeof err);
    unsetenv("KUBECONFIG");
    if (rc < 0)
        fail_msg("%s", err);
    watcher_start(&f, kube, NULL);
    sync_or_fail(&f);
    wait_for_key(&f, "Service/default/svc-0");
    assert_true(sim_saw_auth(&f, "bearer:" TOKEN, 200));
    assert_false(sim_saw_auth(&f, "bearer:wrong-token", 401));
    fixture_stop(&f);
}

static void test_absent_api_groups_are_skipped_with_one_line(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    capture_begin();
    start_small(&f, &opts);
    char *log = capture_end();
    assert_int_equal(count_occurrences(log, "route.openshift.io/v1 is not served"), 1);
    assert_int_equal(count_occurrences(log, "gateway.networking.k8s.io/v1 is not served"), 1);
    assert_int_equal(k8ssim_count_requests(f.sim, "/apis/route.openshift.io", NULL), 0);
    assert_non_null(view_get(&f.view, "!synced/Route"));
    free(log);
    fixture_stop(&f);

    /* On OpenShift with the Gateway API installed, both are listed and watched. */
    k8ssim_options_t openshift = {.bookmark_interval_ms = 200, .serve_routes = true,
                                  .serve_gateway_api = true};
    start_small(&f, &openshift);
    request_count routes = {"/apis/route.openshift.io/v1/routes", "watch=", 1};
    request_count routes_gw = {"/apis/gateway.networking.k8s.io/v1/httproutes", "watch=", 1};
    assert_true(pump_until(&f, sim_got, &routes, DEADLINE_MS));
    assert_true(pump_until(&f, sim_got, &routes_gw, DEADLINE_MS));
    fixture_stop(&f);
}

/* A group installed after start-up (its CRDs applied later) is found by
 * the discovery the watcher repeats while a group is absent, and its kinds
 * are listed and watched without a restart. */
static void test_api_group_installed_later_is_listed_and_watched(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    char extra[256];
    sim_start(&f, &opts);
    apply_service(&f, 0, 80);
    snprintf(extra, sizeof extra, "    certificate-authority: %s", ca_file);
    write_kubeconfig(&f, f.kubeconfig, extra, "    token: " TOKEN);
    f.rediscover_ms = 100;
    capture_begin();
    watcher_start_kubeconfig(&f, NULL);
    sync_or_fail(&f);
    assert_true(k8ssim_apply(f.sim, "{\"apiVersion\": \"route.openshift.io/v1\", "
                                    "\"kind\": \"Route\", \"metadata\": {\"name\": \"web\", "
                                    "\"namespace\": \"default\"}, \"spec\": {\"host\": "
                                    "\"web.example.com\", \"to\": {\"kind\": \"Service\", "
                                    "\"name\": \"svc-0\"}}}") > 0);
    /* Two more rounds of discovery with the group still absent: one line. */
    request_count looks = {"/apis", NULL, 3};
    bool looked = pump_until(&f, sim_got, &looks, DEADLINE_MS);
    k8ssim_serve_groups(f.sim, true, false);
    bool found = pump_until(&f, has_key, "Route/default/web", DEADLINE_MS);
    char *log = capture_end();
    assert_true(looked);
    assert_true(found);
    assert_int_equal(count_occurrences(log, "route.openshift.io/v1 is not served"), 1);
    assert_int_equal(count_occurrences(log, "route.openshift.io/v1 is served now"), 1);
    assert_int_equal(count_occurrences(log, "gateway.networking.k8s.io/v1 is not served"), 1);
    free(log);

    /* Watched, not only listed: a change arrives as an event. */
    request_count watch = {"/apis/route.openshift.io/v1/routes", "watch=", 1};
    assert_true(pump_until(&f, sim_got, &watch, DEADLINE_MS));
    assert_true(k8ssim_delete(f.sim, "Route", "default", "web") > 0);
    wait_for_no_key(&f, "Route/default/web");
    fixture_stop(&f);
}

static void send_object_status(fixture *f, const char *object, const char *vip)
{
    char *vips[] = {(char *)vip};
    proto_object_status st = {.object = (char *)object, .tenant = "admin",
                              .vips = vip ? vips : NULL, .n_vips = vip ? 1 : 0};
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(proto_object_status_encode(&st, &data, &len), 0);
    assert_int_equal(zmq_send(f->push, data, len, 0), (int)len);
    free(data);
}

typedef struct {
    const char *path;
    size_t count;
} patch_count;

static size_t count_patches(fixture *f, const char *path, long status)
{
    char *text = k8ssim_requests_json(f->sim);
    json_t *list = json_loads(text, 0, NULL);
    size_t n = 0, i;
    json_t *r;
    json_array_foreach(list, i, r) {
        const char *m = json_string_value(json_object_get(r, "method"));
        const char *p = json_string_value(json_object_get(r, "path"));
        if (m && p && strcmp(m, "PATCH") == 0 && strcmp(p, path) == 0 &&
            json_integer_value(json_object_get(r, "status")) == status)
            n++;
    }
    json_decref(list);
    free(text);
    return n;
}

static bool patched(fixture *f, const void *arg)
{
    const patch_count *pc = arg;
    return count_patches(f, pc->path, 200) >= pc->count;
}

static void test_service_status_is_patched_on_the_api_server(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    start_small(&f, &opts);
    send_object_status(&f, "Service/default/svc-1", "10.50.0.7");
    patch_count first = {"/api/v1/namespaces/default/services/svc-1/status", 1};
    assert_true(pump_until(&f, patched, &first, DEADLINE_MS));
    char *ingress = service_ingress(&f, "svc-1");
    assert_string_equal(ingress, "[{\"ip\":\"10.50.0.7\"}]");
    free(ingress);
    /* The same status again writes nothing; a cleared one writes again. */
    send_object_status(&f, "Service/default/svc-1", "10.50.0.7");
    send_object_status(&f, "Service/default/svc-1", NULL);
    patch_count second = {"/api/v1/namespaces/default/services/svc-1/status", 2};
    assert_true(pump_until(&f, patched, &second, DEADLINE_MS));
    assert_int_equal(count_patches(&f, first.path, 200), 2);
    ingress = service_ingress(&f, "svc-1");
    assert_true(strcmp(ingress, "[]") == 0 || strcmp(ingress, "null") == 0);
    free(ingress);
    fixture_stop(&f);
}

static bool view_equal_without_markers(const view *a, const view *b)
{
    size_t na = 0, nb = 0;
    view_entry *e, *tmp;
    HASH_ITER(hh, a->entries, e, tmp) {
        if (e->key[0] == '!')
            continue;
        na++;
        const view_entry *o = view_get(b, e->key);
        if (!o || o->len != e->len || memcmp(o->body, e->body, e->len) != 0) {
            fprintf(stderr, "differs: %s\n", e->key);
            return false;
        }
    }
    HASH_ITER(hh, b->entries, e, tmp) nb += e->key[0] != '!';
    return na == nb;
}

static bool replay_done(fixture *f, const void *arg)
{
    (void)arg;
    return watcher_replay_done(f->w) && bus_sub_is_consistent(f->sub) &&
           view_get(&f->view, "!eos");
}

static void test_record_replays_to_the_same_bus_state(void **state)
{
    (void)state;
    fixture f;
    k8ssim_options_t opts = {.bookmark_interval_ms = 200};
    char record[192], extra[256], yaml[512], err[1024];
    sim_start(&f, &opts);
    for (int i = 0; i < 20; i++) {
        apply_service(&f, i, 80);
        apply_slice(&f, i);
    }
    apply_node(&f, "node-1", "10.0.0.1");
    snprintf(record, sizeof record, "%s/record.ndjson", f.dir);
    snprintf(extra, sizeof extra, "    certificate-authority: %s", ca_file);
    write_kubeconfig(&f, f.kubeconfig, extra, "    token: " TOKEN);
    watcher_start_kubeconfig(&f, record);
    sync_or_fail(&f);
    /* Watch events, and a relist that finds an object gone. */
    apply_service(&f, 3, 9999);
    k8ssim_delete(f.sim, "EndpointSlice", "default", "svc-4-abcde");
    wait_for_no_key(&f, "EndpointSlice/default/svc-4-abcde");
    k8ssim_stall_watches(f.sim, true);
    k8ssim_delete(f.sim, "Service", "default", "svc-5");
    k8ssim_expire_history(f.sim);
    k8ssim_drop_watches(f.sim);
    k8ssim_stall_watches(f.sim, false);
    wait_for_no_key(&f, "Service/default/svc-5");

    /* Keep the live view, stop, and replay the record. */
    view live = f.view;
    memset(&f.view, 0, sizeof f.view);
    watcher_stop(&f);

    int n = ++endpoint_counter;
    snprintf(yaml, sizeof yaml,
             "clusterName: test\ntenantName: admin\n"
             "bus:\n  k8sPublish: inproc://live-pub-%d\n  k8sSnapshot: inproc://live-snap-%d\n"
             "  status: inproc://live-status-%d\n",
             n, n, n);
    if (config_load_string(&f.cfg, yaml, "test", err, sizeof err) < 0)
        fail_msg("%s", err);
    f.ctx = zmq_ctx_new();
    watcher_options options = {.replay_file = record};
    if (watcher_new(&f.w, f.ctx, f.cfg, &options, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_int_equal(bus_sub_new(&f.sub, f.ctx, f.cfg->k8s_publish, f.cfg->k8s_snapshot,
                                 PROTO_STREAM_K8S),
                     0);
    assert_true(pump_until(&f, replay_done, NULL, DEADLINE_MS));
    assert_true(view_equal_without_markers(&live, &f.view));
    assert_null(view_get(&f.view, "Service/default/svc-5"));
    assert_non_null(view_get(&f.view, "Service/default/svc-3"));
    view_free(&live);
    fixture_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_sync_of_thousands_through_pages),
        cmocka_unit_test(test_expired_continue_token_lists_again_from_the_start),
        cmocka_unit_test(test_events_split_across_chunks_are_whole),
        cmocka_unit_test(test_expired_watch_relists_and_publishes_exactly_the_difference),
        cmocka_unit_test(test_relist_publishes_nothing_until_its_last_page),
        cmocka_unit_test(test_dropped_watch_resumes_from_last_rv_without_relist),
        cmocka_unit_test(test_stalled_watch_is_ended_by_the_idle_timer),
        cmocka_unit_test(test_429_waits_for_retry_after),
        cmocka_unit_test(test_429_waits_for_retry_after_as_http_date),
        cmocka_unit_test(test_watch_ending_at_once_backs_off_then_recovers),
        cmocka_unit_test(test_5xx_and_403_back_off_then_recover),
        cmocka_unit_test(test_rotated_token_file_is_read_again_after_401),
        cmocka_unit_test(test_kubeconfig_token_file_and_ca_file),
        cmocka_unit_test(test_kubeconfig_client_certificate_data_and_ca_data),
        cmocka_unit_test(test_kubeconfig_exec_plugin),
        cmocka_unit_test(test_slow_exec_plugin_runs_beside_the_loop),
        cmocka_unit_test(test_kubeconfig_tls_server_name),
        cmocka_unit_test(test_kubeconfig_insecure_skip_tls_verify),
        cmocka_unit_test(test_kubeconfig_two_files_merged),
        cmocka_unit_test(test_absent_api_groups_are_skipped_with_one_line),
        cmocka_unit_test(test_api_group_installed_later_is_listed_and_watched),
        cmocka_unit_test(test_service_status_is_patched_on_the_api_server),
        cmocka_unit_test(test_record_replays_to_the_same_bus_state),
    };
    log_init("test", LOG_INFO);
    return cmocka_run_group_tests(tests, make_pki, remove_pki);
}

#else /* no simulator in this tree yet */

static void test_simulator_missing(void **state)
{
    (void)state;
    skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_simulator_missing)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
