/* The planner's state machine without sockets: k8s events in, what lands on
 * the model stream out (a map standing in for the bus publisher, with a log
 * of every change in order). Time is passed in, so coalescing is tested
 * without sleeping. */
#include "test_planner_fixtures.h"

#include <uthash.h>

#include "common/error.h"
#include "proto/status.h"
#include "common/log.h"
#include "planner/planner.h"
#include "proto/envelope.h"
#include "proto/model.h"

#define STREAM "model.admin"

/* ---- a sink that remembers ---------------------------------------------- */

/* Entries are keyed "<stream> <key>"; the log names keys of the configured
 * tenant's stream alone and others as "<stream>/<key>". */
typedef struct sink_entry {
    char *key;
    void *body;
    size_t len;
    UT_hash_handle hh;
} sink_entry;

typedef struct {
    sink_entry *map;
    char log[8192]; /* "put K; del K; ..." */
    int changes;
    const char *too_large_key; /* refused as the bus refuses a body past its cap */
} memory_sink;

static const char *full_key(const char *stream, const char *key)
{
    static char text[1024];
    snprintf(text, sizeof text, "%s %s", stream, key);
    return text;
}

static void sink_log(memory_sink *sink, const char *op, const char *stream, const char *key)
{
    size_t used = strlen(sink->log);
    bool other = strcmp(stream, STREAM) != 0;
    snprintf(sink->log + used, sizeof sink->log - used, "%s%s %s%s%s", used ? "; " : "", op,
             other ? stream : "", other ? "/" : "", key);
    sink->changes++;
}

static int sink_put(void *ctx, const char *stream, const char *key, const void *body, size_t len)
{
    memory_sink *sink = ctx;
    sink_entry *entry = NULL;
    if (sink->too_large_key && strcmp(key, sink->too_large_key) == 0)
        return KV_ERR_TOO_LARGE;
    const char *id = full_key(stream, key);
    HASH_FIND_STR(sink->map, id, entry);
    if (entry && entry->len == len && memcmp(entry->body, body, len) == 0)
        return 0;
    if (!entry) {
        entry = calloc(1, sizeof *entry);
        entry->key = fx_strdup(id);
        HASH_ADD_KEYPTR(hh, sink->map, entry->key, strlen(entry->key), entry);
    }
    free(entry->body);
    entry->body = malloc(len ? len : 1);
    memcpy(entry->body, body, len);
    entry->len = len;
    sink_log(sink, "put", stream, key);
    return 1;
}

static void entry_free(sink_entry *entry)
{
    free(entry->key);
    free(entry->body);
    free(entry);
}

static int sink_remove(void *ctx, const char *stream, const char *key)
{
    memory_sink *sink = ctx;
    sink_entry *entry = NULL;
    HASH_FIND_STR(sink->map, full_key(stream, key), entry);
    if (!entry)
        return 0;
    HASH_DEL(sink->map, entry);
    entry_free(entry);
    sink_log(sink, "del", stream, key);
    return 1;
}

static void sink_foreach_key(void *ctx, const char *stream, bus_key_fn fn, void *payload)
{
    memory_sink *sink = ctx;
    sink_entry *entry, *tmp;
    size_t n = strlen(stream);
    HASH_ITER(hh, sink->map, entry, tmp) {
        if (strncmp(entry->key, stream, n) == 0 && entry->key[n] == ' ')
            fn(entry->key + n + 1, payload);
    }
}

static void sink_clear(memory_sink *sink)
{
    sink_entry *entry, *tmp;
    HASH_ITER(hh, sink->map, entry, tmp) {
        HASH_DEL(sink->map, entry);
        entry_free(entry);
    }
}

static const char *sink_take_log(memory_sink *sink)
{
    static char copy[8192];
    memcpy(copy, sink->log, sizeof copy);
    sink->log[0] = '\0';
    return copy;
}

/* An entry of the configured tenant's stream. */
static sink_entry *sink_get(memory_sink *sink, const char *key)
{
    sink_entry *entry = NULL;
    HASH_FIND_STR(sink->map, full_key(STREAM, key), entry);
    return entry;
}

/* An entry of another stream. */
static sink_entry *sink_get_in(memory_sink *sink, const char *stream, const char *key)
{
    sink_entry *entry = NULL;
    HASH_FIND_STR(sink->map, full_key(stream, key), entry);
    return entry;
}

/* ---- the fixture -------------------------------------------------------- */

typedef struct {
    kv_config *cfg;
    memory_sink sink;
    planner_t *planner;
    int64_t now;
} fixture;

static void fixture_init(fixture *f, kv_config *cfg)
{
    memset(f, 0, sizeof *f);
    f->cfg = cfg;
    f->now = 1000;
    planner_sink sink = {
        .put = sink_put, .remove = sink_remove, .foreach_key = sink_foreach_key, .ctx = &f->sink};
    assert_int_equal(planner_new(&f->planner, cfg, &sink), 0);
}

static void fixture_fini(fixture *f)
{
    planner_destroy(&f->planner);
    sink_clear(&f->sink);
    config_destroy(&f->cfg);
}

static void apply(fixture *f, bus_event_type type, const char *key, const void *body, size_t len)
{
    bus_event ev = {.type = type};
    ev.env.key = (char *)key;
    ev.env.body = (uint8_t *)body;
    ev.env.body_len = len;
    planner_apply(f->planner, &ev, f->now);
}

/* Puts an encoded projection under its key; takes the body. */
static void put_encoded(fixture *f, const char *kind, const char *ns, const char *name, void *body,
                        size_t len)
{
    char key[256];
    proto_k8s_key(key, sizeof key, kind, ns, name);
    apply(f, BUS_PUT, key, body, len);
    free(body);
}

static void put_node(fixture *f, proto_node *node)
{
    void *body;
    size_t len;
    assert_int_equal(proto_node_encode(node, &body, &len), 0);
    put_encoded(f, "Node", NULL, node->name, body, len);
    proto_node_destroy(&node);
}

static void put_service(fixture *f, proto_service *svc)
{
    void *body;
    size_t len;
    assert_int_equal(proto_service_encode(svc, &body, &len), 0);
    put_encoded(f, "Service", svc->namespace, svc->name, body, len);
    proto_service_destroy(&svc);
}

static void put_slice(fixture *f, proto_endpoint_slice *slice)
{
    void *body;
    size_t len;
    assert_int_equal(proto_endpoint_slice_encode(slice, &body, &len), 0);
    put_encoded(f, "EndpointSlice", slice->namespace, slice->name, body, len);
    proto_endpoint_slice_destroy(&slice);
}

/* Namespace `name`, with the tenant annotation when `tenant` is set. */
static void put_namespace(fixture *f, const char *name, const char *tenant)
{
    proto_namespace ns = {.name = (char *)name, .tenant = (char *)tenant};
    void *body;
    size_t len;
    assert_int_equal(proto_namespace_encode(&ns, &body, &len), 0);
    put_encoded(f, "Namespace", NULL, name, body, len);
}

static void delete_key(fixture *f, const char *key) { apply(f, BUS_DELETE, key, NULL, 0); }

static void marker(fixture *f, const char *key) { apply(f, BUS_PUT, key, NULL, 0); }

static void synced_and_consistent(fixture *f)
{
    marker(f, "!synced/Node");
    marker(f, "!synced/Service");
    marker(f, "!synced/EndpointSlice");
    marker(f, "!synced/Namespace");
    apply(f, BUS_CONSISTENT, NULL, NULL, 0);
}

/* Flushes once whatever is pending is due, as the loop would. */
static int flush(fixture *f)
{
    int64_t wait = planner_timeout_ms(f->planner, f->now);
    if (wait > 0)
        f->now += wait;
    return planner_flush(f->planner, f->now);
}

static proto_service *lb(const char *ns, const char *name, bool local)
{
    proto_service *svc = fx_service(ns, name, "LoadBalancer", local);
    fx_service_port(svc, "", "TCP", 80, 30080, 8080, NULL);
    return svc;
}

static proto_endpoint_slice *slice_with(const char *ns, const char *service, const char *node,
                                        bool ready)
{
    char name[128];
    snprintf(name, sizeof name, "%s-1", service);
    proto_endpoint_slice *slice = fx_slice(ns, name, service, "IPv4");
    fx_slice_port(slice, "", "TCP", 8080);
    if (ready)
        fx_endpoint(slice, "192.168.0.1", node, FX_READY);
    else
        fx_endpoint(slice, "192.168.0.1", node, FX_TERMINATING_SERVING);
    return slice;
}

/* Nodes a and b; Local web on a, Cluster api; ClusterIP internal. */
static void small_cluster(fixture *f)
{
    put_node(f, fx_node("a", "10.0.0.1", NULL));
    put_node(f, fx_node("b", "10.0.0.2", NULL));
    put_service(f, lb("shop", "web", true));
    put_slice(f, slice_with("shop", "web", "a", true));
    put_service(f, lb("shop", "api", false));
    proto_service *internal = fx_service("shop", "internal", "ClusterIP", false);
    fx_service_port(internal, "", "TCP", 80, 0, 8080, NULL);
    put_service(f, internal);
}

static proto_model *model_in(fixture *f, const char *name)
{
    sink_entry *entry = sink_get(&f->sink, name);
    proto_model *model = NULL;
    if (!entry)
        return NULL;
    assert_int_equal(proto_model_decode(&model, entry->body, entry->len), 0);
    return model;
}

/* The servers of a model's first pool, as "address:port enabled|disabled". */
static const char *first_pool_servers(fixture *f, const char *name)
{
    static char text[512];
    proto_model *model = model_in(f, name);
    assert_non_null(model);
    text[0] = '\0';
    for (size_t i = 0; i < model->n_objects; i++) {
        if (strcmp(model->objects[i].type, "pool") != 0)
            continue;
        json_t *servers = json_object_get(model->objects[i].body, "servers");
        size_t index;
        json_t *server;
        json_array_foreach(servers, index, server) {
            size_t used = strlen(text);
            snprintf(text + used, sizeof text - used, "%s%s %s", index ? ", " : "",
                     json_string_value(json_object_get(server, "external_uuid")),
                     json_is_true(json_object_get(server, "enabled")) ? "enabled" : "disabled");
        }
        break;
    }
    proto_model_destroy(&model);
    return text;
}

/* ---- tests -------------------------------------------------------------- */

static void test_nothing_is_published_until_every_kind_is_synced_and_consistent(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    small_cluster(&f);
    apply(&f, BUS_CONSISTENT, NULL, NULL, 0);
    marker(&f, "!synced/Node");
    marker(&f, "!synced/Service");
    marker(&f, "!synced/Namespace");
    assert_false(planner_is_ready(f.planner));
    assert_int_equal(planner_timeout_ms(f.planner, f.now), -1);
    f.now += 10000;
    assert_int_equal(planner_flush(f.planner, f.now), 0);
    assert_string_equal(sink_take_log(&f.sink), "");

    marker(&f, "!synced/EndpointSlice");
    assert_true(planner_is_ready(f.planner));
    assert_true(flush(&f) > 0);
    assert_string_equal(sink_take_log(&f.sink),
                        "put k8s--shop-api; put k8s--shop-web; put !complete");
    fixture_fini(&f);
}

/* A model the bus refuses as too large is left out alone: every other model
 * and the stream's "!complete" are still published, and nothing is retried
 * in a loop that would hold the others back. */
static void test_model_too_large_for_the_bus_is_refused_alone(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    f.sink.too_large_key = "k8s--shop-api";
    small_cluster(&f);
    apply(&f, BUS_CONSISTENT, NULL, NULL, 0);
    marker(&f, "!synced/Node");
    marker(&f, "!synced/Service");
    marker(&f, "!synced/Namespace");
    marker(&f, "!synced/EndpointSlice");
    assert_true(flush(&f) > 0);
    assert_string_equal(sink_take_log(&f.sink),
                        "put !refused/k8s--shop-api; put k8s--shop-web; put !complete");
    assert_null(sink_get(&f.sink, "k8s--shop-api"));
    /* The syncer learns which Service and why, for its status. */
    sink_entry *refusal = sink_get(&f.sink, "!refused/k8s--shop-api");
    assert_non_null(refusal);
    proto_status st;
    assert_int_equal(proto_status_decode(&st, refusal->body, refusal->len), 0);
    assert_int_equal(st.type, PROTO_STATUS_OBJECT);
    assert_string_equal(st.object.object, "Service/shop/api");
    assert_non_null(strstr(st.object.error, "past the bus's 64 MiB message cap"));
    proto_status_clear(&st);
    f.now += 10000;
    assert_int_equal(planner_flush(f.planner, f.now), 0);

    /* Once it fits again, it is published and the refusal goes. */
    f.sink.too_large_key = NULL;
    put_node(&f, fx_node("c", "10.0.0.3", NULL)); /* api (Cluster) gains a server */
    assert_true(flush(&f) > 0);
    assert_string_equal(sink_take_log(&f.sink), "put k8s--shop-api; del !refused/k8s--shop-api");
    fixture_fini(&f);
}

/* AKO's tenancy: a namespace annotated ako.vmware.com/tenant-name has its
 * Services' models on that tenant's stream, with that tenant in every
 * object; the others stay in tenantName. Each stream is complete. */
static void test_annotated_namespace_publishes_to_its_tenant_stream(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    put_namespace(&f, "shop", "team-b");
    put_namespace(&f, "plain", NULL);
    small_cluster(&f);
    put_service(&f, lb("plain", "www", false));
    synced_and_consistent(&f);
    assert_true(flush(&f) > 0);

    assert_null(sink_get(&f.sink, "k8s--shop-web"));
    assert_non_null(sink_get(&f.sink, "k8s--plain-www"));
    assert_non_null(sink_get(&f.sink, PROTO_KEY_COMPLETE));
    sink_entry *web = sink_get_in(&f.sink, "model.team-b", "k8s--shop-web");
    assert_non_null(web);
    assert_non_null(sink_get_in(&f.sink, "model.team-b", "k8s--shop-api"));
    assert_non_null(sink_get_in(&f.sink, "model.team-b", PROTO_KEY_COMPLETE));
    proto_model *model = NULL;
    assert_int_equal(proto_model_decode(&model, web->body, web->len), 0);
    assert_string_equal(model->tenant, "team-b");
    for (size_t i = 0; i < model->n_objects; i++)
        assert_string_equal(
            json_string_value(json_object_get(model->objects[i].body, "tenant_ref")),
            "/api/tenant/?name=team-b");
    proto_model_destroy(&model);
    fixture_fini(&f);
}

/* The annotation changes: the models leave the old tenant's stream (its
 * syncer deletes them) and appear on the new one's; nothing else moves. */
static void test_namespace_moving_to_another_tenant_moves_its_models(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    put_namespace(&f, "shop", NULL);
    small_cluster(&f);
    put_service(&f, lb("plain", "www", false));
    synced_and_consistent(&f);
    flush(&f);
    sink_take_log(&f.sink);

    put_namespace(&f, "shop", "team-b");
    assert_true(flush(&f) > 0);
    const char *log = sink_take_log(&f.sink);
    assert_non_null(strstr(log, "del k8s--shop-web"));
    assert_non_null(strstr(log, "del k8s--shop-api"));
    assert_non_null(strstr(log, "put model.team-b/k8s--shop-web"));
    assert_non_null(strstr(log, "put model.team-b/k8s--shop-api"));
    assert_non_null(strstr(log, "put model.team-b/!complete"));
    assert_null(strstr(log, "www"));
    assert_null(sink_get(&f.sink, "k8s--shop-web"));

    /* A label change of the namespace moves nothing. */
    put_namespace(&f, "shop", "team-b");
    assert_int_equal(flush(&f), 0);

    /* The annotation goes: back to tenantName. */
    delete_key(&f, "Namespace/shop");
    assert_true(flush(&f) > 0);
    log = sink_take_log(&f.sink);
    assert_non_null(strstr(log, "del model.team-b/k8s--shop-web"));
    assert_non_null(strstr(log, "put k8s--shop-web"));
    assert_non_null(sink_get(&f.sink, "k8s--shop-api"));
    assert_null(sink_get_in(&f.sink, "model.team-b", "k8s--shop-api"));
    fixture_fini(&f);
}

static void test_nothing_is_published_before_namespaces_are_synced(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    small_cluster(&f);
    marker(&f, "!synced/Node");
    marker(&f, "!synced/Service");
    marker(&f, "!synced/EndpointSlice");
    apply(&f, BUS_CONSISTENT, NULL, NULL, 0);
    f.now += 10000;
    assert_int_equal(planner_flush(f.planner, f.now), 0);
    put_namespace(&f, "shop", "team-b");
    marker(&f, "!synced/Namespace");
    assert_true(flush(&f) > 0);
    assert_null(sink_get(&f.sink, "k8s--shop-web")); /* never in the wrong tenant */
    assert_non_null(sink_get_in(&f.sink, "model.team-b", "k8s--shop-web"));
    fixture_fini(&f);
}

static void test_synced_but_not_consistent_publishes_nothing(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    small_cluster(&f);
    marker(&f, "!synced/Node");
    marker(&f, "!synced/Service");
    marker(&f, "!synced/EndpointSlice");
    marker(&f, "!synced/Namespace");
    f.now += 10000;
    assert_int_equal(planner_flush(f.planner, f.now), 0);
    assert_null(sink_get(&f.sink, PROTO_KEY_COMPLETE));
    fixture_fini(&f);
}

static void test_first_publication_holds_the_right_servers(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    small_cluster(&f);
    synced_and_consistent(&f);
    flush(&f);
    assert_string_equal(first_pool_servers(&f, "k8s--shop-web"), "10.0.0.1:30080 enabled");
    assert_string_equal(first_pool_servers(&f, "k8s--shop-api"),
                        "10.0.0.1:30080 enabled, 10.0.0.2:30080 enabled");
    fixture_fini(&f);
}

static void test_bursts_are_coalesced_until_quiet_or_the_maximum_delay(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    small_cluster(&f);
    synced_and_consistent(&f);
    flush(&f);
    sink_take_log(&f.sink);

    int64_t first = f.now;
    put_slice(&f, slice_with("shop", "web", "b", true));
    assert_int_equal(planner_timeout_ms(f.planner, f.now), PLANNER_QUIET_MS);
    /* An event every 10 ms: never quiet, so the maximum delay decides. */
    while (f.now + 10 < first + PLANNER_MAX_DELAY_MS) {
        f.now += 10;
        assert_int_equal(planner_flush(f.planner, f.now), 0);
        put_slice(&f, slice_with("shop", "web", (f.now / 10) % 2 ? "a" : "b", true));
    }
    put_slice(&f, slice_with("shop", "web", "b", true));
    assert_string_equal(sink_take_log(&f.sink), "");
    assert_int_equal(planner_timeout_ms(f.planner, f.now), first + PLANNER_MAX_DELAY_MS - f.now);
    f.now = first + PLANNER_MAX_DELAY_MS;
    assert_int_equal(planner_flush(f.planner, f.now), 1);
    assert_string_equal(sink_take_log(&f.sink), "put k8s--shop-web");
    assert_string_equal(first_pool_servers(&f, "k8s--shop-web"), "10.0.0.2:30080 enabled");
    assert_int_equal(planner_timeout_ms(f.planner, f.now), -1);

    /* A lone event is flushed once quiet. */
    put_slice(&f, slice_with("shop", "web", "b", false));
    f.now += PLANNER_QUIET_MS - 1;
    assert_int_equal(planner_flush(f.planner, f.now), 0);
    f.now += 1;
    assert_int_equal(planner_flush(f.planner, f.now), 1);
    assert_string_equal(first_pool_servers(&f, "k8s--shop-web"), "10.0.0.2:30080 disabled");
    fixture_fini(&f);
}

static void test_event_recomputes_only_the_models_it_touches(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    small_cluster(&f);
    put_service(&f, lb("shop", "cart", true));
    put_slice(&f, slice_with("shop", "cart", "b", true));
    synced_and_consistent(&f);
    flush(&f);
    sink_take_log(&f.sink);

    /* The pod of web moves to b: web's pool changes, nothing else. */
    put_slice(&f, slice_with("shop", "web", "b", true));
    assert_int_equal(flush(&f), 1);
    assert_string_equal(sink_take_log(&f.sink), "put k8s--shop-web");
    /* Node b gets a new address: the Cluster service and the Local ones
     * with endpoints on b change. */
    put_node(&f, fx_node("b", "10.0.9.2", NULL));
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink),
                        "put k8s--shop-api; put k8s--shop-cart; put k8s--shop-web");
    fixture_fini(&f);
}

static void test_unchanged_input_publishes_nothing(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    small_cluster(&f);
    synced_and_consistent(&f);
    flush(&f);
    sink_take_log(&f.sink);
    put_node(&f, fx_node("a", "10.0.0.1", NULL));
    put_service(&f, lb("shop", "web", true));
    assert_int_equal(flush(&f), 0);
    assert_string_equal(sink_take_log(&f.sink), "");
    fixture_fini(&f);
}

static void test_node_change_no_pool_can_see_recomputes_nothing(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    small_cluster(&f);
    synced_and_consistent(&f);
    flush(&f);
    proto_node *relabelled = fx_node("a", "10.0.0.1", NULL);
    fx_node_label(relabelled, "kubernetes.io/os", "linux");
    put_node(&f, relabelled);
    assert_int_equal(store_dirty_count(planner_store(f.planner)), 0);
    assert_int_equal(planner_timeout_ms(f.planner, f.now), -1);
    /* The node's address is what pools see: that recomputes. */
    put_node(&f, fx_node("a", "10.0.0.11", NULL));
    assert_string_equal(sink_take_log(&f.sink),
                        "put k8s--shop-api; put k8s--shop-web; put !complete");
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "put k8s--shop-api; put k8s--shop-web");
    fixture_fini(&f);
}

/* Under V4_V6 a Service's ipFamilies picks each node's address, so a node
 * event that touches only IPv6 reaches the IPv6-only Service, a label change
 * reaches nothing, and a Service whose ipFamilies change gets new servers. */
static void test_ip_families_decide_what_a_node_or_service_change_recomputes(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config("clusterName: k8s\nserviceType: NodePort\nipFamily: V4_V6\n"));
    put_node(&f, fx_node("a", "10.0.0.1", "fd00::1"));
    proto_service *v6 = lb("shop", "v6", false);
    v6->family_ipv6 = true;
    put_service(&f, v6);
    proto_service *dual = lb("shop", "dual", false);
    dual->family_ipv4 = true;
    dual->family_ipv6 = true;
    put_service(&f, dual);
    synced_and_consistent(&f);
    flush(&f);
    assert_string_equal(first_pool_servers(&f, "k8s--shop-v6"), "fd00::1:30080 enabled");
    assert_string_equal(first_pool_servers(&f, "k8s--shop-dual"), "10.0.0.1:30080 enabled");
    sink_take_log(&f.sink);

    proto_node *relabelled = fx_node("a", "10.0.0.1", "fd00::1");
    fx_node_label(relabelled, "kubernetes.io/os", "linux");
    put_node(&f, relabelled);
    assert_int_equal(store_dirty_count(planner_store(f.planner)), 0);

    /* Only the IPv6 address changes: only the IPv6 Service's pool differs. */
    put_node(&f, fx_node("a", "10.0.0.1", "fd00::9"));
    assert_int_equal(store_dirty_count(planner_store(f.planner)), 2);
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "put k8s--shop-v6");
    assert_string_equal(first_pool_servers(&f, "k8s--shop-v6"), "fd00::9:30080 enabled");

    /* The Service turns IPv4-only: its model follows. */
    proto_service *v4 = lb("shop", "v6", false);
    v4->family_ipv4 = true;
    put_service(&f, v4);
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "put k8s--shop-v6");
    assert_string_equal(first_pool_servers(&f, "k8s--shop-v6"), "10.0.0.1:30080 enabled");
    fixture_fini(&f);
}

static void test_reset_keeps_models_and_the_same_view_changes_nothing(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    small_cluster(&f);
    synced_and_consistent(&f);
    flush(&f);
    sink_take_log(&f.sink);

    apply(&f, BUS_RESET, NULL, NULL, 0);
    assert_false(planner_is_ready(f.planner));
    f.now += 10000;
    assert_int_equal(planner_flush(f.planner, f.now), 0);
    /* Half a snapshot: still nothing. */
    put_node(&f, fx_node("a", "10.0.0.1", NULL));
    marker(&f, "!synced/Node");
    f.now += 10000;
    assert_int_equal(planner_flush(f.planner, f.now), 0);
    assert_string_equal(sink_take_log(&f.sink), "");
    assert_non_null(sink_get(&f.sink, "k8s--shop-web"));

    /* The whole same view: identical models, not one change. */
    small_cluster(&f);
    synced_and_consistent(&f);
    assert_int_equal(flush(&f), 0);
    assert_string_equal(sink_take_log(&f.sink), "");
    fixture_fini(&f);
}

static void test_reset_then_a_view_without_a_service_deletes_its_model(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    small_cluster(&f);
    synced_and_consistent(&f);
    flush(&f);
    sink_take_log(&f.sink);

    apply(&f, BUS_RESET, NULL, NULL, 0);
    put_node(&f, fx_node("a", "10.0.0.1", NULL));
    put_node(&f, fx_node("b", "10.0.0.2", NULL));
    put_service(&f, lb("shop", "api", false));
    synced_and_consistent(&f);
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "del k8s--shop-web");
    assert_non_null(sink_get(&f.sink, PROTO_KEY_COMPLETE));
    fixture_fini(&f);
}

static void test_leftover_models_are_deleted_on_the_first_full_publication(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    sink_put(&f.sink, STREAM, "k8s--gone-svc", "x", 1);
    sink_take_log(&f.sink);
    small_cluster(&f);
    synced_and_consistent(&f);
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink),
                        "put k8s--shop-api; put k8s--shop-web; del k8s--gone-svc; put !complete");
    fixture_fini(&f);
}

/* Decodes the "!eos" of the configured tenant's stream into *eos and
 * checks its count and digest against what the stream holds. */
static bool eos_published_matches(fixture *f, proto_eos *eos)
{
    sink_entry *entry = sink_get(&f->sink, PROTO_KEY_EOS), *e, *tmp;
    if (!entry || proto_eos_decode(eos, entry->body, entry->len) != 0 || !eos->has_models)
        return false;
    uint32_t models = 0;
    uint64_t digest = 0;
    size_t prefix = strlen(STREAM " ");
    HASH_ITER(hh, f->sink.map, e, tmp) {
        if (strncmp(e->key, STREAM " ", prefix) != 0 || e->key[prefix] == '!')
            continue;
        models++;
        digest += proto_model_fingerprint(e->key + prefix, e->body, e->len);
    }
    return eos->models == models && eos->digest == digest;
}

static void test_eos_is_put_after_the_models_it_follows(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    void *eos;
    size_t eos_len;
    proto_eos watcher_eos = {.run_id = 42};
    assert_int_equal(proto_eos_encode(&watcher_eos, &eos, &eos_len), 0);
    small_cluster(&f);
    apply(&f, BUS_PUT, PROTO_KEY_EOS, eos, eos_len);
    synced_and_consistent(&f);
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink),
                        "put k8s--shop-api; put k8s--shop-web; put !complete; put !eos");
    /* The planner's copy says what the stream holds at the end. */
    proto_eos got;
    assert_true(eos_published_matches(&f, &got));
    assert_int_equal(got.run_id, 42);
    assert_int_equal(got.models, 2);

    /* A later change restates the end after it, with the new set. */
    put_slice(&f, slice_with("shop", "web", "b", true));
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "put k8s--shop-web; put !eos");
    assert_true(eos_published_matches(&f, &got));
    assert_int_equal(got.models, 2);
    /* Nothing changed, nothing repeated. */
    put_slice(&f, slice_with("shop", "web", "b", true));
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "");
    free(eos);
    fixture_fini(&f);
}

static void test_eos_reaches_the_tenant_stream_even_without_models(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    void *eos;
    size_t eos_len;
    proto_eos watcher_eos = {.run_id = 7};
    assert_int_equal(proto_eos_encode(&watcher_eos, &eos, &eos_len), 0);
    synced_and_consistent(&f);
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "put !complete");
    apply(&f, BUS_PUT, PROTO_KEY_EOS, eos, eos_len);
    assert_true(planner_timeout_ms(f.planner, f.now) >= 0);
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "put !eos");
    free(eos);
    fixture_fini(&f);
}

/* ---- large clusters ---------------------------------------------------- */

#define LARGE_SERVICES 10000

/* Nodes a and b and `n` Cluster LoadBalancer Services big/svc-00000... */
static void large_cluster(fixture *f, int n)
{
    put_node(f, fx_node("a", "10.0.0.1", NULL));
    put_node(f, fx_node("b", "10.0.0.2", NULL));
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "svc-%05d", i);
        put_service(f, lb("big", name, false));
    }
}

static void put_eos(fixture *f, uint64_t run)
{
    void *eos;
    size_t len;
    proto_eos watcher_eos = {.run_id = run};
    assert_int_equal(proto_eos_encode(&watcher_eos, &eos, &len), 0);
    apply(f, BUS_PUT, PROTO_KEY_EOS, eos, len);
    free(eos);
}

/* A full recompute of 10,000 Services is spread over flush calls of one
 * slice each, due at once one after the other (the loop polls between
 * them); events between slices are taken; "!complete" and "!eos" wait for
 * the last slice and count exactly what the stream then holds. */
static void test_a_large_recompute_is_sliced_and_markers_follow_the_last_slice(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    large_cluster(&f, LARGE_SERVICES);
    put_eos(&f, 9);
    synced_and_consistent(&f);

    assert_true(flush(&f) == PLANNER_FLUSH_SLICE);
    assert_true(planner_is_flushing(f.planner));
    assert_int_equal(planner_timeout_ms(f.planner, f.now), 0);
    assert_null(sink_get(&f.sink, PROTO_KEY_COMPLETE));
    /* Between slices: a Service not recomputed yet goes away. */
    delete_key(&f, "Service/big/svc-09999");
    unsigned long calls = 1;
    while (planner_is_flushing(f.planner)) {
        assert_null(sink_get(&f.sink, PROTO_KEY_COMPLETE));
        assert_null(sink_get(&f.sink, PROTO_KEY_EOS));
        assert_int_equal(planner_timeout_ms(f.planner, f.now), 0);
        assert_true(planner_flush(f.planner, f.now) >= 0);
        calls++;
    }
    unsigned long expected = (LARGE_SERVICES + PLANNER_FLUSH_SLICE - 1) / PLANNER_FLUSH_SLICE;
    assert_int_equal(calls, expected);
    assert_int_equal(planner_slices(f.planner), expected - 1);
    assert_non_null(sink_get(&f.sink, PROTO_KEY_COMPLETE));
    assert_null(sink_get(&f.sink, "k8s--big-svc-09999"));
    proto_eos got;
    assert_true(eos_published_matches(&f, &got));
    assert_int_equal(got.run_id, 9);
    assert_int_equal(got.models, LARGE_SERVICES - 1);
    fixture_fini(&f);
}

/* A RESET between two slices drops the flush under way: nothing of the
 * old view is deleted, and the next full view is recomputed whole. */
static void test_reset_between_slices_deletes_nothing(void **state)
{
    (void)state;
    fixture f;
    int n = 3 * PLANNER_FLUSH_SLICE;
    fixture_init(&f, fx_node_port_config());
    large_cluster(&f, n);
    synced_and_consistent(&f);
    flush(&f);
    assert_true(planner_is_flushing(f.planner));
    apply(&f, BUS_RESET, NULL, NULL, 0);
    assert_false(planner_is_flushing(f.planner));
    assert_true(planner_timeout_ms(f.planner, f.now) < 0);
    sink_take_log(&f.sink);
    f.sink.changes = 0;

    large_cluster(&f, n);
    synced_and_consistent(&f);
    while (planner_timeout_ms(f.planner, f.now) >= 0)
        assert_true(flush(&f) >= 0);
    assert_int_equal(f.sink.changes, n - PLANNER_FLUSH_SLICE + 1); /* the rest, "!complete" */
    assert_null(strstr(sink_take_log(&f.sink), "del "));
    assert_non_null(sink_get(&f.sink, PROTO_KEY_COMPLETE));
    fixture_fini(&f);
}

static void test_malformed_objects_are_skipped_and_the_rest_applied(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    apply(&f, BUS_PUT, "Service/shop/broken", "\x01\x02\x03", 3);
    /* A well-formed body under another object's key is refused too. */
    proto_service *svc = lb("shop", "real", false);
    void *body;
    size_t len;
    assert_int_equal(proto_service_encode(svc, &body, &len), 0);
    apply(&f, BUS_PUT, "Service/shop/impostor", body, len);
    apply(&f, BUS_PUT, "Node/shop", body, len);
    free(body);
    proto_service_destroy(&svc);
    apply(&f, BUS_PUT, "Ingress/shop/not-read-yet", "x", 1);
    small_cluster(&f);
    synced_and_consistent(&f);
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink),
                        "put k8s--shop-api; put k8s--shop-web; put !complete");
    fixture_fini(&f);
}

static void test_deleted_or_no_longer_ours_service_loses_its_model(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    small_cluster(&f);
    synced_and_consistent(&f);
    flush(&f);
    sink_take_log(&f.sink);

    delete_key(&f, "Service/shop/web");
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "del k8s--shop-web");

    proto_service *moved = lb("shop", "api", false);
    moved->load_balancer_class = fx_strdup("example.com/other-lb");
    put_service(&f, moved);
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "del k8s--shop-api");
    fixture_fini(&f);
}

static void test_node_deletion_disables_then_removes_its_servers(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    small_cluster(&f);
    synced_and_consistent(&f);
    flush(&f);
    proto_node *draining = fx_node("b", "10.0.0.2", NULL);
    draining->to_be_deleted = true;
    put_node(&f, draining);
    flush(&f);
    assert_string_equal(first_pool_servers(&f, "k8s--shop-api"),
                        "10.0.0.1:30080 enabled, 10.0.0.2:30080 disabled");
    delete_key(&f, "Node/b");
    flush(&f);
    assert_string_equal(first_pool_servers(&f, "k8s--shop-api"), "10.0.0.1:30080 enabled");
    fixture_fini(&f);
}

static void test_colliding_model_names_go_to_one_service_then_the_other(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    put_node(&f, fx_node("a", "10.0.0.1", NULL));
    /* "a-b"/"c" and "a"/"b-c" both make "k8s--a-b-c". */
    put_service(&f, lb("a-b", "c", false));
    put_service(&f, lb("a", "b-c", false));
    synced_and_consistent(&f);
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "put k8s--a-b-c; put !complete");
    proto_model *model = model_in(&f, "k8s--a-b-c");
    assert_string_equal(model->owners[0], "Service/a-b/c");
    proto_model_destroy(&model);

    /* The owner goes: the other Service's model replaces it, no delete. */
    delete_key(&f, "Service/a-b/c");
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "put k8s--a-b-c");
    model = model_in(&f, "k8s--a-b-c");
    assert_string_equal(model->owners[0], "Service/a/b-c");
    proto_model_destroy(&model);

    delete_key(&f, "Service/a/b-c");
    flush(&f);
    assert_string_equal(sink_take_log(&f.sink), "del k8s--a-b-c");
    fixture_fini(&f);
}

int main(int argc, char **argv)
{
    log_set_level(LOG_WARN); /* what was published is asserted, not read */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_is_published_until_every_kind_is_synced_and_consistent),
        cmocka_unit_test(test_model_too_large_for_the_bus_is_refused_alone),
        cmocka_unit_test(test_synced_but_not_consistent_publishes_nothing),
        cmocka_unit_test(test_annotated_namespace_publishes_to_its_tenant_stream),
        cmocka_unit_test(test_namespace_moving_to_another_tenant_moves_its_models),
        cmocka_unit_test(test_nothing_is_published_before_namespaces_are_synced),
        cmocka_unit_test(test_first_publication_holds_the_right_servers),
        cmocka_unit_test(test_bursts_are_coalesced_until_quiet_or_the_maximum_delay),
        cmocka_unit_test(test_event_recomputes_only_the_models_it_touches),
        cmocka_unit_test(test_unchanged_input_publishes_nothing),
        cmocka_unit_test(test_node_change_no_pool_can_see_recomputes_nothing),
        cmocka_unit_test(test_ip_families_decide_what_a_node_or_service_change_recomputes),
        cmocka_unit_test(test_reset_keeps_models_and_the_same_view_changes_nothing),
        cmocka_unit_test(test_reset_then_a_view_without_a_service_deletes_its_model),
        cmocka_unit_test(test_leftover_models_are_deleted_on_the_first_full_publication),
        cmocka_unit_test(test_eos_is_put_after_the_models_it_follows),
        cmocka_unit_test(test_eos_reaches_the_tenant_stream_even_without_models),
        cmocka_unit_test(test_a_large_recompute_is_sliced_and_markers_follow_the_last_slice),
        cmocka_unit_test(test_reset_between_slices_deletes_nothing),
        cmocka_unit_test(test_malformed_objects_are_skipped_and_the_rest_applied),
        cmocka_unit_test(test_deleted_or_no_longer_ours_service_loses_its_model),
        cmocka_unit_test(test_node_deletion_disables_then_removes_its_servers),
        cmocka_unit_test(test_colliding_model_names_go_to_one_service_then_the_other),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
