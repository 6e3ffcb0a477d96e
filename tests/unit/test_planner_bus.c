/* The planner's loop over real ZeroMQ sockets (inproc): this test plays the
 * watcher (a bus publisher on stream "k8s") and a syncer (a subscriber to
 * "model.admin"), with planner_loop_run in a thread between them.
 *
 * Proving that something is NOT published needs a window of time; each such
 * window starts only after a positive sign that the planner has the input
 * (it asked the watcher for a snapshot, or published something after it),
 * and lasts ABSENCE_WINDOW_MS, five times the planner's longest coalescing delay. */
#include "test_planner_fixtures.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <uthash.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/log.h"
#include "planner/loop.h"
#include "planner/planner.h"
#include "proto/envelope.h"

/* Endpoints of one run. inproc:// for most tests; the watcher-restart test
 * uses ipc:// because libzmq (4.3.4) does not reconnect an inproc SUB or
 * DEALER to a socket that binds the same name again, which tcp/ipc do. */
typedef struct {
    char k8s_pub[128], k8s_snap[128], model_pub[128], model_snap[128];
} endpoints;

static endpoints endpoints_for(const char *transport)
{
    endpoints e;
    bool ipc = strcmp(transport, "ipc") == 0;
    const char *base = ipc ? "ipc:///tmp/kavi-planner-test" : "inproc://planner-test";
    long pid = ipc ? (long)getpid() : 0;
    snprintf(e.k8s_pub, sizeof e.k8s_pub, "%s-%ld-k8s-pub", base, pid);
    snprintf(e.k8s_snap, sizeof e.k8s_snap, "%s-%ld-k8s-snap", base, pid);
    snprintf(e.model_pub, sizeof e.model_pub, "%s-%ld-model-pub", base, pid);
    snprintf(e.model_snap, sizeof e.model_snap, "%s-%ld-model-snap", base, pid);
    return e;
}
#define DEADLINE_MS 10000
#define ABSENCE_WINDOW_MS (5 * PLANNER_MAX_DELAY_MS)
#define STREAM "model.admin"
#define WEB "k8s--shop-web"

/* ---- the syncer's view -------------------------------------------------- */

typedef struct held {
    char *key;
    void *body;
    size_t len;
    UT_hash_handle hh;
} held;

typedef struct {
    held *map;
    char order[4096]; /* keys in the order they were put: "k1 k2 ..." */
    int deletes;
    int resets;
} view;

static void held_free(held *h)
{
    free(h->key);
    free(h->body);
    free(h);
}

static void view_clear(view *v)
{
    held *h, *tmp;
    HASH_ITER(hh, v->map, h, tmp) {
        HASH_DEL(v->map, h);
        held_free(h);
    }
}

static held *view_get(view *v, const char *key)
{
    held *h = NULL;
    HASH_FIND_STR(v->map, key, h);
    return h;
}

static void view_apply(view *v, const bus_event *ev)
{
    held *h = NULL;
    switch (ev->type) {
    case BUS_RESET:
        view_clear(v);
        v->resets++;
        break;
    case BUS_CONSISTENT:
        break;
    case BUS_PUT: {
        size_t used = strlen(v->order);
        snprintf(v->order + used, sizeof v->order - used, "%s%s", used ? " " : "", ev->env.key);
        h = view_get(v, ev->env.key);
        if (!h) {
            h = calloc(1, sizeof *h);
            h->key = fx_strdup(ev->env.key);
            HASH_ADD_KEYPTR(hh, v->map, h->key, strlen(h->key), h);
        }
        free(h->body);
        h->body = malloc(ev->env.body_len ? ev->env.body_len : 1);
        if (ev->env.body_len)
            memcpy(h->body, ev->env.body, ev->env.body_len);
        h->len = ev->env.body_len;
        break;
    }
    case BUS_DELETE:
        v->deletes++;
        h = view_get(v, ev->env.key);
        if (h) {
            HASH_DEL(v->map, h);
            held_free(h);
        }
        break;
    }
}

/* ---- the harness -------------------------------------------------------- */

typedef struct {
    endpoints at;
    void *ctx;
    kv_config *cfg;
    bus_pub_t *watcher;
    bus_sub_t *syncer;
    view seen;
    int snapshot_requests; /* times the watcher's ROUTER had a request */
    pthread_t thread;
    atomic_int stop;
    planner_loop_stats stats;
    int loop_rc;
} harness;

static void syncer_connect(harness *h)
{
    assert_int_equal(bus_sub_new(&h->syncer, h->ctx, h->at.model_pub, h->at.model_snap, STREAM), 0);
}

static void *planner_thread(void *arg)
{
    harness *h = arg;
    h->loop_rc = planner_loop_run(h->cfg, h->ctx, &h->stop, &h->stats);
    return NULL;
}

static void harness_start(harness *h, const char *transport)
{
    char yaml[1024];
    memset(h, 0, sizeof *h);
    h->at = endpoints_for(transport);
    snprintf(yaml, sizeof yaml,
             "clusterName: k8s\nserviceType: NodePort\n"
             "bus:\n  k8sPublish: %s\n  k8sSnapshot: %s\n"
             "  modelPublish: %s\n  modelSnapshot: %s\n",
             h->at.k8s_pub, h->at.k8s_snap, h->at.model_pub, h->at.model_snap);
    h->cfg = fx_config(yaml);
    h->ctx = zmq_ctx_new();
    assert_non_null(h->ctx);
    assert_int_equal(bus_pub_new(&h->watcher, h->ctx, h->at.k8s_pub, h->at.k8s_snap), 0);
    atomic_store(&h->stop, 0);
    assert_int_equal(pthread_create(&h->thread, NULL, planner_thread, h), 0);
    syncer_connect(h);
}

static void harness_stop(harness *h)
{
    atomic_store(&h->stop, 1);
    pthread_join(h->thread, NULL);
    assert_int_equal(h->loop_rc, 0);
    bus_sub_destroy(&h->syncer);
    bus_pub_destroy(&h->watcher);
    view_clear(&h->seen);
    zmq_ctx_term(h->ctx);
    config_destroy(&h->cfg);
    /* libzmq leaves ipc:// socket files behind; they are this test's. */
    const char *paths[] = {h->at.k8s_pub, h->at.k8s_snap, h->at.model_pub, h->at.model_snap};
    for (size_t i = 0; i < 4; i++)
        if (strncmp(paths[i], "ipc://", 6) == 0)
            unlink(paths[i] + 6);
}

/* One poll round of the watcher (may be NULL) and the syncer. */
static void pump(harness *h)
{
    zmq_pollitem_t items[3];
    int n = bus_sub_pollitems(h->syncer, items);
    int router = -1;
    if (h->watcher) {
        router = n;
        items[n++] =
            (zmq_pollitem_t){.socket = bus_pub_snapshot_socket(h->watcher), .events = ZMQ_POLLIN};
    }
    int64_t now = clock_now_ms();
    long timeout = (long)bus_sub_timeout_ms(h->syncer, now);
    if (timeout > 20)
        timeout = 20;
    zmq_poll(items, n, timeout);
    now = clock_now_ms();
    if (h->watcher) {
        if (items[router].revents & ZMQ_POLLIN)
            h->snapshot_requests++;
        bus_pub_serve(h->watcher);
        bus_pub_tick(h->watcher, now);
    }
    bus_event ev;
    while (bus_sub_next(h->syncer, &ev, now) == 1) {
        view_apply(&h->seen, &ev);
        bus_event_clear(&ev);
    }
}

#define PUMP_UNTIL(h, cond)                                                                        \
    do {                                                                                           \
        int64_t until_ = clock_now_ms() + DEADLINE_MS;                                             \
        while (!(cond) && clock_now_ms() < until_)                                                 \
            pump(h);                                                                               \
        assert_true(cond);                                                                         \
    } while (0)

/* Pumps for the absence window, failing as soon as `cond` turns false. */
#define PUMP_WHILE_HOLDS(h, cond)                                                                  \
    do {                                                                                           \
        int64_t until_ = clock_now_ms() + ABSENCE_WINDOW_MS;                                       \
        while (clock_now_ms() < until_) {                                                          \
            pump(h);                                                                               \
            assert_true(cond);                                                                     \
        }                                                                                          \
    } while (0)

/* ---- the watcher's side ------------------------------------------------- */

static void publish(harness *h, const char *key, void *body, size_t len)
{
    assert_true(bus_pub_put(h->watcher, PROTO_STREAM_K8S, key, body ? body : "", len) >= 0);
    free(body);
}

static void publish_node(harness *h, const char *name, const char *ipv4)
{
    char key[128];
    void *body;
    size_t len;
    proto_node *node = fx_node(name, ipv4, NULL);
    assert_int_equal(proto_node_encode(node, &body, &len), 0);
    proto_k8s_key(key, sizeof key, "Node", NULL, name);
    proto_node_destroy(&node);
    publish(h, key, body, len);
}

static void publish_web_service(harness *h)
{
    void *body;
    size_t len;
    proto_service *svc = fx_service("shop", "web", "LoadBalancer", true);
    svc->health_check_node_port = 32000;
    fx_service_port(svc, "http", "TCP", 80, 30080, 8080, NULL);
    assert_int_equal(proto_service_encode(svc, &body, &len), 0);
    proto_service_destroy(&svc);
    publish(h, "Service/shop/web", body, len);
}

static void publish_web_slice(harness *h, const char *node)
{
    void *body;
    size_t len;
    proto_endpoint_slice *slice = fx_slice("shop", "web-1", "web", "IPv4");
    fx_slice_port(slice, "http", "TCP", 8080);
    fx_endpoint(slice, "192.168.0.1", node, FX_READY);
    assert_int_equal(proto_endpoint_slice_encode(slice, &body, &len), 0);
    proto_endpoint_slice_destroy(&slice);
    publish(h, "EndpointSlice/shop/web-1", body, len);
}

static void publish_cluster(harness *h, bool slices_synced)
{
    publish_node(h, "a", "10.0.0.1");
    publish_node(h, "b", "10.0.0.2");
    publish_web_service(h);
    publish_web_slice(h, "a");
    publish(h, "!synced/Node", NULL, 0);
    publish(h, "!synced/Service", NULL, 0);
    publish(h, "!synced/Namespace", NULL, 0);
    if (slices_synced)
        publish(h, "!synced/EndpointSlice", NULL, 0);
}

static void publish_eos(harness *h, uint64_t run)
{
    void *body;
    size_t len;
    proto_eos eos = {.run_id = run};
    assert_int_equal(proto_eos_encode(&eos, &body, &len), 0);
    publish(h, PROTO_KEY_EOS, body, len);
}

static bool eos_is(harness *h, uint64_t run)
{
    held *eos = view_get(&h->seen, PROTO_KEY_EOS);
    proto_eos got;
    return eos && proto_eos_decode(&got, eos->body, eos->len) == 0 && got.run_id == run;
}

/* Position of a key in the put order, -1 if never put. */
static int put_position(harness *h, const char *key)
{
    char padded[256];
    char order[4100];
    snprintf(padded, sizeof padded, " %s ", key);
    snprintf(order, sizeof order, " %s ", h->seen.order);
    const char *at = strstr(order, padded);
    return at ? (int)(at - order) : -1;
}

/* ---- tests -------------------------------------------------------------- */

static void test_models_appear_only_after_every_kind_is_synced(void **state)
{
    (void)state;
    harness h;
    harness_start(&h, "inproc");
    publish_cluster(&h, false);
    /* The planner has asked for the k8s snapshot and the syncer sees the
     * (empty) model stream: from here, silence is meaningful. */
    PUMP_UNTIL(&h, h.snapshot_requests > 0 && bus_sub_is_consistent(h.syncer));
    PUMP_WHILE_HOLDS(&h, HASH_COUNT(h.seen.map) == 0);

    publish(&h, "!synced/EndpointSlice", NULL, 0);
    PUMP_UNTIL(&h, view_get(&h.seen, PROTO_KEY_COMPLETE) != NULL);
    assert_non_null(view_get(&h.seen, WEB));
    assert_true(put_position(&h, WEB) < put_position(&h, PROTO_KEY_COMPLETE));

    /* Live changes flow through; a deleted Service takes its model along. */
    assert_int_equal(bus_pub_delete(h.watcher, PROTO_STREAM_K8S, "Service/shop/web"), 1);
    PUMP_UNTIL(&h, view_get(&h.seen, WEB) == NULL);
    assert_int_equal(h.seen.deletes, 1);
    harness_stop(&h);
}

static void test_watcher_restart_resets_the_planner_without_deleting_models(void **state)
{
    (void)state;
    harness h;
    harness_start(&h, "ipc");
    publish_cluster(&h, true);
    PUMP_UNTIL(&h, view_get(&h.seen, PROTO_KEY_COMPLETE) && view_get(&h.seen, WEB));
    held *before = view_get(&h.seen, WEB);
    size_t before_len = before->len;
    void *before_body = malloc(before_len);
    memcpy(before_body, before->body, before_len);

    /* The watcher restarts (new epoch) and has listed only one Node. */
    bus_pub_destroy(&h.watcher);
    int64_t until = clock_now_ms() + DEADLINE_MS;
    while (bus_pub_new(&h.watcher, h.ctx, h.at.k8s_pub, h.at.k8s_snap) < 0 &&
           clock_now_ms() < until)
        pump(&h);
    assert_non_null(h.watcher);
    h.snapshot_requests = 0;
    publish_node(&h, "a", "10.0.0.1");
    PUMP_UNTIL(&h, h.snapshot_requests > 0);
    PUMP_WHILE_HOLDS(&h, h.seen.deletes == 0 && view_get(&h.seen, WEB) != NULL);

    /* The new watcher finishes its list and its replay ends. */
    publish_cluster(&h, true);
    publish_eos(&h, bus_pub_epoch(h.watcher));
    PUMP_UNTIL(&h, eos_is(&h, bus_pub_epoch(h.watcher)));
    assert_int_equal(h.seen.deletes, 0);
    held *after = view_get(&h.seen, WEB);
    assert_non_null(after);
    assert_int_equal(after->len, before_len);
    assert_memory_equal(after->body, before_body, before_len);
    free(before_body);
    harness_stop(&h);
}

static void test_complete_and_eos_reach_a_syncer_that_joins_late(void **state)
{
    (void)state;
    harness h;
    harness_start(&h, "inproc");
    publish_cluster(&h, true);
    publish_eos(&h, 99);
    PUMP_UNTIL(&h, eos_is(&h, 99));
    /* A syncer started afterwards gets the same state by snapshot. (The
     * first syncer is not closed before the planner binds: libzmq 4.3.4
     * can crash when a socket with a pending inproc connect is closed.) */
    bus_sub_destroy(&h.syncer);
    view_clear(&h.seen);
    memset(&h.seen, 0, sizeof h.seen);
    syncer_connect(&h);
    PUMP_UNTIL(&h, bus_sub_is_consistent(h.syncer));
    assert_int_equal(h.seen.resets, 0);
    assert_non_null(view_get(&h.seen, WEB));
    assert_non_null(view_get(&h.seen, PROTO_KEY_COMPLETE));
    assert_true(eos_is(&h, 99));
    harness_stop(&h);
}

/* 10,000 Services: the loop's full recompute takes many slices, and the
 * loop polls (so serves snapshots, heartbeats and a stop) between each. */
static void test_a_large_recompute_returns_to_poll_between_slices(void **state)
{
    (void)state;
    enum { SERVICES = 10000 };
    harness h;
    harness_start(&h, "inproc");
    publish_node(&h, "a", "10.0.0.1");
    publish_node(&h, "b", "10.0.0.2");
    for (int i = 0; i < SERVICES; i++) {
        char name[32], key[64];
        void *body;
        size_t len;
        snprintf(name, sizeof name, "svc-%05d", i);
        proto_service *svc = fx_service("big", name, "LoadBalancer", false);
        fx_service_port(svc, "http", "TCP", 80, 30080, 8080, NULL);
        assert_int_equal(proto_service_encode(svc, &body, &len), 0);
        proto_service_destroy(&svc);
        snprintf(key, sizeof key, "Service/big/%s", name);
        publish(&h, key, body, len);
        if (i % 500 == 0)
            pump(&h); /* serve the planner's snapshot request meanwhile */
    }
    publish(&h, "!synced/Node", NULL, 0);
    publish(&h, "!synced/Service", NULL, 0);
    publish(&h, "!synced/Namespace", NULL, 0);
    publish(&h, "!synced/EndpointSlice", NULL, 0);
    publish_eos(&h, 5);
    int64_t until = clock_now_ms() + 12 * DEADLINE_MS;
    while (!eos_is(&h, 5) && clock_now_ms() < until)
        pump(&h);
    assert_true(eos_is(&h, 5));
    assert_non_null(view_get(&h.seen, PROTO_KEY_COMPLETE));
    assert_int_equal(HASH_COUNT(h.seen.map), SERVICES + 2); /* the models, the markers */
    assert_true(atomic_load(&h.stats.polls_between_slices) >=
                SERVICES / PLANNER_FLUSH_SLICE - 1);
    harness_stop(&h);
}

int main(int argc, char **argv)
{
    log_set_level(getenv("TEST_LOG") ? LOG_DEBUG : LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_appear_only_after_every_kind_is_synced),
        cmocka_unit_test(test_watcher_restart_resets_the_planner_without_deleting_models),
        cmocka_unit_test(test_complete_and_eos_reach_a_syncer_that_joins_late),
        cmocka_unit_test(test_a_large_recompute_returns_to_poll_between_slices),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
