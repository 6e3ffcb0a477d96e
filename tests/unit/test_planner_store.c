/* The planner's store and its indexes: each event marks exactly the
 * Services whose models it can change — never a rescan, never a miss. */
#include "test_planner_fixtures.h"

#include "common/error.h"
#include "planner/store.h"

static store_t *new_store(bool node_port_mode)
{
    store_t *store = NULL;
    assert_int_equal(store_new(&store, node_port_mode), 0);
    return store;
}

static void put_service(store_t *store, proto_service *svc)
{
    assert_int_equal(store_put_service_take(store, &svc), 0);
    assert_null(svc);
}

static void put_node(store_t *store, proto_node *node)
{
    assert_int_equal(store_put_node_take(store, &node), 0);
}

static void put_slice(store_t *store, proto_endpoint_slice *slice)
{
    assert_int_equal(store_put_slice_take(store, &slice), 0);
}

static proto_service *lb(const char *ns, const char *name, bool local)
{
    proto_service *svc = fx_service(ns, name, "LoadBalancer", local);
    fx_service_port(svc, "", "TCP", 80, 30080, 8080, NULL);
    return svc;
}

static proto_endpoint_slice *slice_on(const char *ns, const char *name, const char *service,
                                      const char *node)
{
    proto_endpoint_slice *slice = fx_slice(ns, name, service, "IPv4");
    fx_slice_port(slice, "", "TCP", 8080);
    if (node)
        fx_endpoint(slice, "192.168.0.1", node, FX_READY);
    return slice;
}

/* Renders and empties the dirty set: "a/b c/d". */
static const char *take_dirty(store_t *store)
{
    static char text[1024];
    char **keys = NULL;
    size_t n = 0;
    assert_int_equal(store_take_dirty(store, &keys, &n), 0);
    text[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(text);
        snprintf(text + used, sizeof text - used, "%s%s", i ? " " : "", keys[i]);
    }
    store_free_keys(&keys, n);
    assert_int_equal(store_dirty_count(store), 0);
    return text;
}

/* A cluster: Local Services on nodes a and b, a Cluster Service, a
 * ClusterIP Service with endpoints on a, and nodes a, b, c. */
static store_t *cluster(bool node_port_mode)
{
    store_t *store = new_store(node_port_mode);
    put_node(store, fx_node("a", "10.0.0.1", NULL));
    put_node(store, fx_node("b", "10.0.0.2", NULL));
    put_node(store, fx_node("c", "10.0.0.3", NULL));
    put_service(store, lb("ns", "local-a", true));
    put_service(store, lb("ns", "local-b", true));
    put_service(store, lb("ns", "cluster", false));
    proto_service *internal = fx_service("ns", "internal", "ClusterIP", false);
    fx_service_port(internal, "", "TCP", 80, 0, 8080, NULL);
    put_service(store, internal);
    put_slice(store, slice_on("ns", "local-a-1", "local-a", "a"));
    put_slice(store, slice_on("ns", "local-b-1", "local-b", "b"));
    put_slice(store, slice_on("ns", "cluster-1", "cluster", "a"));
    put_slice(store, slice_on("ns", "internal-1", "internal", "a"));
    take_dirty(store);
    return store;
}

static void test_node_event_marks_local_services_on_it_and_cluster_services(void **state)
{
    (void)state;
    store_t *store = cluster(true);
    put_node(store, fx_node("a", "10.0.9.1", NULL));
    assert_string_equal(take_dirty(store), "ns/cluster ns/local-a");
    put_node(store, fx_node("c", "10.0.9.3", NULL));
    assert_string_equal(take_dirty(store), "ns/cluster");
    store_delete_node(store, "b");
    assert_string_equal(take_dirty(store), "ns/cluster ns/local-b");
    /* A Node that was never there changes nothing. */
    store_delete_node(store, "zz");
    assert_string_equal(take_dirty(store), "");
    store_destroy(&store);
}

static void test_new_node_marks_local_service_whose_endpoints_named_it_first(void **state)
{
    (void)state;
    store_t *store = new_store(true);
    put_service(store, lb("ns", "early", true));
    put_slice(store, slice_on("ns", "early-1", "early", "late-node"));
    take_dirty(store);
    put_node(store, fx_node("late-node", "10.0.0.7", NULL));
    assert_string_equal(take_dirty(store), "ns/early");
    store_destroy(&store);
}

static void test_node_event_in_clusterip_mode_marks_nothing(void **state)
{
    (void)state;
    store_t *store = cluster(false);
    put_node(store, fx_node("a", "10.0.9.1", NULL));
    store_delete_node(store, "b");
    assert_string_equal(take_dirty(store), "");
    store_destroy(&store);
}

static void test_slice_event_marks_only_its_load_balancer_service(void **state)
{
    (void)state;
    store_t *store = cluster(true);
    put_slice(store, slice_on("ns", "local-a-1", "local-a", "c"));
    assert_string_equal(take_dirty(store), "ns/local-a");
    put_slice(store, slice_on("ns", "internal-1", "internal", "b"));
    assert_string_equal(take_dirty(store), "");
    store_delete_slice(store, "ns/local-b-1");
    assert_string_equal(take_dirty(store), "ns/local-b");
    store_destroy(&store);
}

static void test_slice_event_skips_cluster_services_in_node_port_mode_only(void **state)
{
    (void)state;
    store_t *store = cluster(true);
    /* NodePort mode: a Cluster Service lists every node, endpoints or not. */
    put_slice(store, slice_on("ns", "cluster-1", "cluster", "b"));
    store_delete_slice(store, "ns/cluster-1");
    assert_string_equal(take_dirty(store), "");
    store_destroy(&store);

    store = cluster(false);
    /* ClusterIP mode: its servers are the endpoints. */
    put_slice(store, slice_on("ns", "cluster-1", "cluster", "b"));
    assert_string_equal(take_dirty(store), "ns/cluster");
    store_destroy(&store);
}

static void test_slice_moving_between_services_marks_both(void **state)
{
    (void)state;
    store_t *store = cluster(true);
    put_slice(store, slice_on("ns", "local-a-1", "local-b", "a"));
    assert_string_equal(take_dirty(store), "ns/local-a ns/local-b");
    store_destroy(&store);
}

static void count_slices(const proto_endpoint_slice *slice, void *payload)
{
    (void)slice;
    (*(int *)payload)++;
}

static void test_slice_moving_between_services_moves_its_endpoints(void **state)
{
    (void)state;
    store_t *store = cluster(true);
    put_slice(store, slice_on("ns", "local-a-1", "local-b", "a"));
    take_dirty(store);
    int a = 0, b = 0;
    store_foreach_slice_of(store, "ns/local-a", count_slices, &a);
    store_foreach_slice_of(store, "ns/local-b", count_slices, &b);
    assert_int_equal(a, 0);
    assert_int_equal(b, 2);
    /* Node a now carries local-b's endpoints, no longer local-a's. */
    put_node(store, fx_node("a", "10.0.9.1", NULL));
    assert_string_equal(take_dirty(store), "ns/cluster ns/local-b");
    store_destroy(&store);
}

static void test_endpoint_moving_node_updates_the_node_index(void **state)
{
    (void)state;
    store_t *store = cluster(true);
    put_slice(store, slice_on("ns", "local-a-1", "local-a", "c"));
    take_dirty(store);
    put_node(store, fx_node("a", "10.0.9.1", NULL));
    assert_string_equal(take_dirty(store), "ns/cluster");
    put_node(store, fx_node("c", "10.0.9.3", NULL));
    assert_string_equal(take_dirty(store), "ns/cluster ns/local-a");
    store_destroy(&store);
}

static void test_service_events_mark_the_service_itself(void **state)
{
    (void)state;
    store_t *store = cluster(true);
    /* LoadBalancer → ClusterIP: marked, so its model can be deleted. */
    proto_service *now_internal = fx_service("ns", "local-a", "ClusterIP", false);
    fx_service_port(now_internal, "", "TCP", 80, 0, 8080, NULL);
    put_service(store, now_internal);
    assert_string_equal(take_dirty(store), "ns/local-a");
    /* ...and it no longer follows node events. */
    put_node(store, fx_node("a", "10.0.9.1", NULL));
    assert_string_equal(take_dirty(store), "ns/cluster");
    /* Cluster → Local: it stops following every node. */
    put_service(store, lb("ns", "cluster", true));
    assert_string_equal(take_dirty(store), "ns/cluster");
    put_node(store, fx_node("b", "10.0.9.2", NULL));
    assert_string_equal(take_dirty(store), "ns/local-b");
    store_delete_service(store, "ns/local-b");
    assert_string_equal(take_dirty(store), "ns/local-b");
    assert_null(store_service(store, "ns/local-b"));
    store_destroy(&store);
}

static void test_slices_arriving_before_their_service_are_found_by_it(void **state)
{
    (void)state;
    store_t *store = new_store(true);
    put_slice(store, slice_on("ns", "s-1", "s", "a"));
    put_slice(store, slice_on("ns", "s-2", "s", "b"));
    assert_string_equal(take_dirty(store), ""); /* no Service yet, no model */
    put_service(store, lb("ns", "s", true));
    assert_string_equal(take_dirty(store), "ns/s");
    int n = 0;
    store_foreach_slice_of(store, "ns/s", count_slices, &n);
    assert_int_equal(n, 2);
    /* Deleting the Service keeps its slices indexed for when it returns. */
    store_delete_service(store, "ns/s");
    take_dirty(store);
    n = 0;
    store_foreach_slice_of(store, "ns/s", count_slices, &n);
    assert_int_equal(n, 2);
    store_destroy(&store);
}

static void test_slice_without_service_label_belongs_to_no_service(void **state)
{
    (void)state;
    store_t *store = cluster(true);
    put_slice(store, slice_on("ns", "orphan", NULL, "a"));
    assert_string_equal(take_dirty(store), "");
    put_node(store, fx_node("a", "10.0.9.1", NULL));
    assert_string_equal(take_dirty(store), "ns/cluster ns/local-a");
    store_destroy(&store);
}

static void test_mark_all_dirty_marks_every_service_and_clear_forgets_everything(void **state)
{
    (void)state;
    store_t *store = cluster(true);
    assert_int_equal(store_mark_all_dirty(store), 0);
    assert_string_equal(take_dirty(store), "ns/cluster ns/internal ns/local-a ns/local-b");
    store_mark_dirty(store, "ns/x");
    store_clear(store);
    assert_int_equal(store_dirty_count(store), 0);
    assert_null(store_service(store, "ns/cluster"));
    assert_null(store_node(store, "a"));
    assert_int_equal(store_node_count(store), 0);
    int n = 0;
    store_foreach_slice_of(store, "ns/local-a", count_slices, &n);
    assert_int_equal(n, 0);
    /* The store works as new after a clear. */
    put_service(store, lb("ns", "again", false));
    put_node(store, fx_node("a", "10.0.0.1", NULL));
    assert_string_equal(take_dirty(store), "ns/again");
    store_destroy(&store);
}

static void test_oversized_key_is_refused_and_freed(void **state)
{
    (void)state;
    store_t *store = new_store(true);
    char long_name[600];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    proto_service *svc = lb("ns", long_name, false);
    assert_int_equal(store_put_service_take(store, &svc), KV_ERR_TOO_LARGE);
    assert_null(svc);
    assert_int_equal(store_dirty_count(store), 0);
    store_destroy(&store);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_event_marks_local_services_on_it_and_cluster_services),
        cmocka_unit_test(test_new_node_marks_local_service_whose_endpoints_named_it_first),
        cmocka_unit_test(test_node_event_in_clusterip_mode_marks_nothing),
        cmocka_unit_test(test_slice_event_marks_only_its_load_balancer_service),
        cmocka_unit_test(test_slice_event_skips_cluster_services_in_node_port_mode_only),
        cmocka_unit_test(test_slice_moving_between_services_marks_both),
        cmocka_unit_test(test_slice_moving_between_services_moves_its_endpoints),
        cmocka_unit_test(test_endpoint_moving_node_updates_the_node_index),
        cmocka_unit_test(test_service_events_mark_the_service_itself),
        cmocka_unit_test(test_slices_arriving_before_their_service_are_found_by_it),
        cmocka_unit_test(test_slice_without_service_label_belongs_to_no_service),
        cmocka_unit_test(test_mark_all_dirty_marks_every_service_and_clear_forgets_everything),
        cmocka_unit_test(test_oversized_key_is_refused_and_freed),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
