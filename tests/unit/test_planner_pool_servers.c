/* Pool servers, DESIGN.md §3: every row of the table, node candidacy
 * (selector, exclusion label, address family of the config and of the
 * Service's ipFamilies, CNI addresses), port matching
 * by name across slices, deduplication, ClusterIP mode. Each test states
 * the servers a user would see on the controller, as
 * "<node> <address>:<port> enabled|disabled", sorted. */
#include "test_planner_fixtures.h"

#include "planner/pool_servers.h"
#include "planner/store.h"

typedef struct {
    kv_config *cfg;
    store_t *store;
    proto_service *svc; /* owned by the store once added */
} fixture;

static void fixture_init(fixture *f, kv_config *cfg)
{
    f->cfg = cfg;
    assert_int_equal(store_new(&f->store, cfg->node_port_mode), 0);
    f->svc = NULL;
}

static void fixture_fini(fixture *f)
{
    store_destroy(&f->store);
    config_destroy(&f->cfg);
}

static void add_node(fixture *f, proto_node *node)
{
    assert_int_equal(store_put_node_take(f->store, &node), 0);
}

static void add_slice(fixture *f, proto_endpoint_slice *slice)
{
    assert_int_equal(store_put_slice_take(f->store, &slice), 0);
}

/* The seed's Service: hostrule-ns/my-svc, LoadBalancer, port 80 → 8080,
 * nodePort 30080. */
static proto_service *seed_service(bool local)
{
    proto_service *svc = fx_service("hostrule-ns", "my-svc", "LoadBalancer", local);
    fx_service_port(svc, "", "TCP", 80, 30080, 8080, NULL);
    return svc;
}

/* The seed's Service listing the given spec.ipFamilies (none: neither). */
static proto_service *seed_service_of_families(bool local, bool ipv4, bool ipv6)
{
    proto_service *svc = seed_service(local);
    svc->family_ipv4 = ipv4;
    svc->family_ipv6 = ipv6;
    return svc;
}

#define V4_V6_CONFIG "clusterName: k8s\nserviceType: NodePort\nipFamily: V4_V6\n"
#define V6_CONFIG "clusterName: k8s\nserviceType: NodePort\nipFamily: V6\n"

static void add_service(fixture *f, proto_service *svc)
{
    assert_int_equal(store_put_service_take(f->store, &svc), 0);
}

/* Renders the servers of port `index` of Service key. */
static char *servers_of(fixture *f, const char *key, size_t index)
{
    static char text[2048];
    pool_server_list list = {0};
    const proto_service *svc = store_service(f->store, key);
    assert_non_null(svc);
    assert_true(index < svc->n_ports);
    assert_int_equal(pool_servers_compute(&list, f->cfg, f->store, svc, &svc->ports[index]), 0);
    text[0] = '\0';
    for (size_t i = 0; i < list.n; i++) {
        const pool_server *s = &list.items[i];
        size_t used = strlen(text);
        snprintf(text + used, sizeof text - used, "%s%s %s%s%s:%d %s", i ? ", " : "",
                 s->node_name ? s->node_name : "-", s->ipv6 ? "[" : "", s->address,
                 s->ipv6 ? "]" : "", (int)s->port, s->enabled ? "enabled" : "disabled");
    }
    pool_server_list_clear(&list);
    return text;
}

#define SEED_KEY "hostrule-ns/my-svc"

/* Two nodes, as in the seed; the pod of the seed runs on the worker. */
static void seed_nodes(fixture *f)
{
    add_node(f, fx_node("k8s-cluster-master", "10.0.0.1", NULL));
    add_node(f, fx_node("k8s-cluster-worker", "10.0.0.2", NULL));
}

static proto_endpoint_slice *seed_slice(void)
{
    proto_endpoint_slice *slice = fx_slice("hostrule-ns", "my-svc-abc", "my-svc", "IPv4");
    fx_slice_port(slice, "", "TCP", 8080);
    return slice;
}

/* ---- the table --------------------------------------------------------- */

static void test_cluster_policy_puts_every_node_enabled(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed_nodes(&f);
    add_service(&f, seed_service(false));
    proto_endpoint_slice *slice = seed_slice();
    fx_endpoint(slice, "192.168.25.134", "k8s-cluster-worker", FX_READY);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "k8s-cluster-master 10.0.0.1:30080 enabled, "
                                                     "k8s-cluster-worker 10.0.0.2:30080 enabled");
    fixture_fini(&f);
}

static void test_cluster_policy_without_any_endpoint_still_lists_every_node(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed_nodes(&f);
    add_service(&f, seed_service(false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "k8s-cluster-master 10.0.0.1:30080 enabled, "
                                                     "k8s-cluster-worker 10.0.0.2:30080 enabled");
    fixture_fini(&f);
}

static void test_local_node_with_ready_endpoint_is_enabled(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed_nodes(&f);
    add_service(&f, seed_service(true));
    proto_endpoint_slice *slice = seed_slice();
    fx_endpoint(slice, "192.168.25.134", "k8s-cluster-worker", FX_READY);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "k8s-cluster-worker 10.0.0.2:30080 enabled");
    fixture_fini(&f);
}

static void test_local_node_with_ready_and_terminating_endpoints_is_enabled(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed_nodes(&f);
    add_service(&f, seed_service(true));
    proto_endpoint_slice *slice = seed_slice();
    fx_endpoint(slice, "192.168.25.134", "k8s-cluster-worker", FX_TERMINATING_SERVING);
    fx_endpoint(slice, "192.168.25.135", "k8s-cluster-worker", FX_READY);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "k8s-cluster-worker 10.0.0.2:30080 enabled");
    fixture_fini(&f);
}

static void test_local_node_with_only_not_ready_endpoint_is_absent(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed_nodes(&f);
    add_service(&f, seed_service(true));
    proto_endpoint_slice *slice = seed_slice();
    fx_endpoint(slice, "192.168.25.134", "k8s-cluster-worker", FX_NOT_READY);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "");
    fixture_fini(&f);
}

static void test_local_node_with_only_terminating_serving_endpoint_is_disabled(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed_nodes(&f);
    add_service(&f, seed_service(true));
    proto_endpoint_slice *slice = seed_slice();
    fx_endpoint(slice, "192.168.25.134", "k8s-cluster-worker", FX_TERMINATING_SERVING);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "k8s-cluster-worker 10.0.0.2:30080 disabled");
    fixture_fini(&f);
}

static void test_local_node_with_terminating_not_serving_endpoint_is_absent(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed_nodes(&f);
    add_service(&f, seed_service(true));
    proto_endpoint_slice *slice = seed_slice();
    fx_endpoint(slice, "192.168.25.134", "k8s-cluster-worker", FX_TERMINATING_NOT_SERVING);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "");
    fixture_fini(&f);
}

static void test_local_without_endpoints_has_no_servers(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed_nodes(&f);
    add_service(&f, seed_service(true));
    add_slice(&f, seed_slice()); /* a slice with no endpoints at all */
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "");
    fixture_fini(&f);
}

static void test_local_endpoint_on_unknown_node_is_absent(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed_nodes(&f);
    add_service(&f, seed_service(true));
    proto_endpoint_slice *slice = seed_slice();
    fx_endpoint(slice, "192.168.25.134", "node-not-listed", FX_READY);
    fx_endpoint(slice, "192.168.25.140", NULL, FX_READY);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "");
    fixture_fini(&f);
}

static void test_deleting_node_is_disabled_then_absent_once_deleted(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed_nodes(&f);
    proto_node *worker = fx_node("k8s-cluster-worker", "10.0.0.2", NULL);
    worker->deleting = true;
    add_node(&f, worker);
    add_service(&f, seed_service(false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "k8s-cluster-master 10.0.0.1:30080 enabled, "
                                                     "k8s-cluster-worker 10.0.0.2:30080 disabled");
    store_delete_node(f.store, "k8s-cluster-worker");
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "k8s-cluster-master 10.0.0.1:30080 enabled");
    fixture_fini(&f);
}

static void test_node_tainted_to_be_deleted_is_disabled(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    add_node(&f, fx_node("k8s-cluster-master", "10.0.0.1", NULL));
    proto_node *worker = fx_node("k8s-cluster-worker", "10.0.0.2", NULL);
    worker->to_be_deleted = true;
    add_node(&f, worker);
    add_service(&f, seed_service(true));
    proto_endpoint_slice *slice = seed_slice();
    fx_endpoint(slice, "192.168.25.134", "k8s-cluster-worker", FX_READY);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "k8s-cluster-worker 10.0.0.2:30080 disabled");
    fixture_fini(&f);
}

static void test_local_deleting_node_without_endpoints_stays_absent(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    proto_node *master = fx_node("k8s-cluster-master", "10.0.0.1", NULL);
    master->deleting = true;
    add_node(&f, master);
    add_node(&f, fx_node("k8s-cluster-worker", "10.0.0.2", NULL));
    add_service(&f, seed_service(true));
    proto_endpoint_slice *slice = seed_slice();
    fx_endpoint(slice, "192.168.25.134", "k8s-cluster-worker", FX_READY);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "k8s-cluster-worker 10.0.0.2:30080 enabled");
    fixture_fini(&f);
}

/* ---- candidacy ---------------------------------------------------------- */

static void test_exclusion_label_excludes_unless_its_value_is_false(void **state)
{
    (void)state;
    static const char *const excluding[] = {"true", "", "yes"};
    for (size_t i = 0; i < 3; i++) {
        fixture f;
        fixture_init(&f, fx_node_port_config());
        add_node(&f, fx_node("a", "10.0.0.1", NULL));
        proto_node *b = fx_node("b", "10.0.0.2", NULL);
        fx_node_label(b, "node.kubernetes.io/exclude-from-external-load-balancers", excluding[i]);
        add_node(&f, b);
        add_service(&f, seed_service(false));
        assert_string_equal(servers_of(&f, SEED_KEY, 0), "a 10.0.0.1:30080 enabled");
        fixture_fini(&f);
    }
    fixture f;
    fixture_init(&f, fx_node_port_config());
    add_node(&f, fx_node("a", "10.0.0.1", NULL));
    proto_node *b = fx_node("b", "10.0.0.2", NULL);
    fx_node_label(b, "node.kubernetes.io/exclude-from-external-load-balancers", "false");
    add_node(&f, b);
    add_service(&f, seed_service(false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "a 10.0.0.1:30080 enabled, b 10.0.0.2:30080 enabled");
    fixture_fini(&f);
}

static void test_node_selector_labels_must_all_match(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config("clusterName: k8s\nserviceType: NodePort\n"
                               "nodeSelectorLabels:\n  role: edge\n  zone: a\n"));
    proto_node *both = fx_node("both", "10.0.0.1", NULL);
    fx_node_label(both, "role", "edge");
    fx_node_label(both, "zone", "a");
    add_node(&f, both);
    proto_node *one = fx_node("one", "10.0.0.2", NULL);
    fx_node_label(one, "role", "edge");
    add_node(&f, one);
    proto_node *wrong = fx_node("wrong", "10.0.0.3", NULL);
    fx_node_label(wrong, "role", "edge");
    fx_node_label(wrong, "zone", "b");
    add_node(&f, wrong);
    add_node(&f, fx_node("none", "10.0.0.4", NULL));
    add_service(&f, seed_service(false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "both 10.0.0.1:30080 enabled");
    fixture_fini(&f);
}

/* The config's side of the family rule, with a dual-stack Service so that
 * only ipFamily decides. */
static void test_node_without_address_of_the_family_is_skipped(void **state)
{
    (void)state;
    fixture f;
    /* V4 (default): the IPv6-only node has nothing to offer. */
    fixture_init(&f, fx_node_port_config());
    add_node(&f, fx_node("v4", "10.0.0.1", NULL));
    add_node(&f, fx_node("v6", NULL, "fd00::2"));
    add_node(&f, fx_node("dual", "10.0.0.3", "fd00::3"));
    add_service(&f, seed_service_of_families(false, true, true));
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "dual 10.0.0.3:30080 enabled, v4 10.0.0.1:30080 enabled");
    fixture_fini(&f);

    fixture_init(&f, fx_config(V6_CONFIG));
    add_node(&f, fx_node("v4", "10.0.0.1", NULL));
    add_node(&f, fx_node("v6", NULL, "fd00::2"));
    add_node(&f, fx_node("dual", "10.0.0.3", "fd00::3"));
    add_service(&f, seed_service_of_families(false, true, true));
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "dual [fd00::3]:30080 enabled, v6 [fd00::2]:30080 enabled");
    fixture_fini(&f);

    /* V4_V6: IPv4 when the node has one, else IPv6; one server per node. */
    fixture_init(&f, fx_config(V4_V6_CONFIG));
    add_node(&f, fx_node("v4", "10.0.0.1", NULL));
    add_node(&f, fx_node("v6", NULL, "fd00::2"));
    add_node(&f, fx_node("dual", "10.0.0.3", "fd00::3"));
    add_node(&f, fx_node("neither", NULL, NULL));
    add_service(&f, seed_service_of_families(false, true, true));
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "dual 10.0.0.3:30080 enabled, v4 10.0.0.1:30080 enabled, "
                        "v6 [fd00::2]:30080 enabled");
    fixture_fini(&f);
}

/* ---- the Service's ipFamilies (AKO's PopulateServersForNodePort) -------- */

/* Nodes of every kind of addressing, for the family tests below. */
static void mixed_nodes(fixture *f)
{
    add_node(f, fx_node("dual", "10.0.0.3", "fd00::3"));
    add_node(f, fx_node("v4", "10.0.0.1", NULL));
    add_node(f, fx_node("v6", NULL, "fd00::2"));
}

static void test_ipv6_only_service_under_v4_v6_gets_the_ipv6_address_of_dual_stack_nodes(
    void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config(V4_V6_CONFIG));
    mixed_nodes(&f);
    add_service(&f, seed_service_of_families(false, false, true));
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "dual [fd00::3]:30080 enabled, v6 [fd00::2]:30080 enabled");
    fixture_fini(&f);
}

static void test_dual_stack_service_under_v4_v6_prefers_ipv4_whatever_the_order(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config(V4_V6_CONFIG));
    mixed_nodes(&f);
    /* ["IPv6","IPv4"] and ["IPv4","IPv6"] project the same. */
    add_service(&f, seed_service_of_families(false, true, true));
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "dual 10.0.0.3:30080 enabled, v4 10.0.0.1:30080 enabled, "
                        "v6 [fd00::2]:30080 enabled");
    fixture_fini(&f);
}

static void test_ipv4_only_service_has_no_server_on_an_ipv6_only_node(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config(V4_V6_CONFIG));
    mixed_nodes(&f);
    add_service(&f, seed_service_of_families(false, true, false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "dual 10.0.0.3:30080 enabled, v4 10.0.0.1:30080 enabled");
    fixture_fini(&f);
}

static void test_ipv4_only_service_under_v6_config_has_no_server(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config(V6_CONFIG));
    mixed_nodes(&f);
    add_service(&f, seed_service_of_families(false, true, false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "");
    fixture_fini(&f);
    /* And the mirror: an IPv6-only Service under V4. */
    fixture_init(&f, fx_node_port_config());
    mixed_nodes(&f);
    add_service(&f, seed_service_of_families(false, false, true));
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "");
    fixture_fini(&f);
}

static void test_service_without_ip_families_counts_as_ipv4(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config(V4_V6_CONFIG));
    mixed_nodes(&f);
    add_service(&f, seed_service_of_families(false, false, false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "dual 10.0.0.3:30080 enabled, v4 10.0.0.1:30080 enabled");
    fixture_fini(&f);
    fixture_init(&f, fx_config(V6_CONFIG));
    mixed_nodes(&f);
    add_service(&f, seed_service_of_families(false, false, false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "");
    fixture_fini(&f);
}

/* Local follows the same family rule; which node and whether enabled still
 * come from the endpoints. */
static void test_local_ipv6_only_service_uses_the_ipv6_address_of_nodes_with_endpoints(
    void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config(V4_V6_CONFIG));
    mixed_nodes(&f);
    add_service(&f, seed_service_of_families(true, false, true));
    proto_endpoint_slice *slice = fx_slice("hostrule-ns", "my-svc-v6", "my-svc", "IPv6");
    fx_slice_port(slice, "", "TCP", 8080);
    fx_endpoint(slice, "fd00:10::1", "dual", FX_READY);
    fx_endpoint(slice, "fd00:10::2", "v6", FX_TERMINATING_SERVING);
    fx_endpoint(slice, "fd00:10::3", "v4", FX_READY);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "dual [fd00::3]:30080 enabled, v6 [fd00::2]:30080 disabled");
    fixture_fini(&f);
}

/* kube-proxy sends each family's NodePort traffic to endpoints of that
 * family only: with Local, a node serves a family only if its endpoints in
 * that family's slices do. IPv4 still comes first when both serve. */
static void test_local_dual_stack_service_uses_the_family_whose_endpoints_serve_on_the_node(
    void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config(V4_V6_CONFIG));
    add_node(&f, fx_node("a", "10.0.0.1", "fd00::1"));
    add_node(&f, fx_node("b", "10.0.0.2", "fd00::2"));
    add_node(&f, fx_node("c", "10.0.0.3", "fd00::3"));
    add_service(&f, seed_service_of_families(true, true, true));
    proto_endpoint_slice *v4 = fx_slice("hostrule-ns", "my-svc-v4", "my-svc", "IPv4");
    fx_slice_port(v4, "", "TCP", 8080);
    fx_endpoint(v4, "10.1.0.1", "a", FX_READY);
    fx_endpoint(v4, "10.1.0.3", "c", FX_TERMINATING_SERVING);
    add_slice(&f, v4);
    proto_endpoint_slice *v6 = fx_slice("hostrule-ns", "my-svc-v6", "my-svc", "IPv6");
    fx_slice_port(v6, "", "TCP", 8080);
    fx_endpoint(v6, "fd00:10::1", "a", FX_READY);
    fx_endpoint(v6, "fd00:10::2", "b", FX_READY); /* b's IPv4 endpoint is not there yet */
    fx_endpoint(v6, "fd00:10::3", "c", FX_READY);
    add_slice(&f, v6);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "a 10.0.0.1:30080 enabled, "
                                                     "b [fd00::2]:30080 enabled, "
                                                     "c 10.0.0.3:30080 disabled");
    fixture_fini(&f);
}

static void test_local_ipv4_service_ignores_endpoints_in_ipv6_slices(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config(V4_V6_CONFIG));
    add_node(&f, fx_node("a", "10.0.0.1", "fd00::1"));
    add_service(&f, seed_service_of_families(true, true, false));
    proto_endpoint_slice *v6 = fx_slice("hostrule-ns", "my-svc-v6", "my-svc", "IPv6");
    fx_slice_port(v6, "", "TCP", 8080);
    fx_endpoint(v6, "fd00:10::1", "a", FX_READY); /* left from when it was dual-stack */
    add_slice(&f, v6);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "");
    fixture_fini(&f);
}

static void test_candidacy_depends_on_the_service_families(void **state)
{
    (void)state;
    kv_config *cfg = fx_config(V4_V6_CONFIG);
    proto_node *v6 = fx_node("v6", NULL, "fd00::2");
    proto_service *ipv4_only = seed_service_of_families(false, true, false);
    proto_service *ipv6_only = seed_service_of_families(false, false, true);
    char address[INET6_ADDRSTRLEN];
    bool ipv6 = false;
    assert_false(pool_servers_node_is_candidate(cfg, ipv4_only, v6));
    assert_true(pool_servers_node_is_candidate(cfg, ipv6_only, v6));
    assert_true(pool_servers_node_address(address, sizeof address, &ipv6, cfg, ipv6_only, v6));
    assert_string_equal(address, "fd00::2");
    assert_true(ipv6);
    proto_service_destroy(&ipv4_only);
    proto_service_destroy(&ipv6_only);
    proto_node_destroy(&v6);
    config_destroy(&cfg);
}

static void test_calico_address_is_preferred_with_internal_ip_as_fallback(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config("clusterName: k8s\nserviceType: NodePort\ncniPlugin: calico\n"));
    proto_node *annotated = fx_node("annotated", "10.0.0.1", NULL);
    annotated->calico_ipv4 = fx_strdup("172.16.0.1");
    add_node(&f, annotated);
    add_node(&f, fx_node("plain", "10.0.0.2", NULL));
    proto_node *garbled = fx_node("garbled", "10.0.0.3", NULL);
    garbled->calico_ipv4 = fx_strdup("not-an-address");
    add_node(&f, garbled);
    add_service(&f, seed_service(false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "annotated 172.16.0.1:30080 enabled, garbled 10.0.0.3:30080 enabled, "
                        "plain 10.0.0.2:30080 enabled");
    fixture_fini(&f);
}

static void test_antrea_transport_address_of_the_family_is_used(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config("clusterName: k8s\nserviceType: NodePort\ncniPlugin: antrea\n"));
    proto_node *node = fx_node("a", "10.0.0.1", NULL);
    node->antrea_transport = fx_strdup("fd00::9, 192.168.9.9,192.168.9.10");
    add_node(&f, node);
    proto_node *v6_only = fx_node("b", "10.0.0.2", NULL);
    v6_only->antrea_transport = fx_strdup("fd00::8");
    add_node(&f, v6_only);
    add_service(&f, seed_service(false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "a 192.168.9.9:30080 enabled, b 10.0.0.2:30080 enabled");
    fixture_fini(&f);
}

/* ---- ports and slices --------------------------------------------------- */

/* Named targetPort "web": pods resolve it to 8080 or 9090, so the
 * controller splits them into two slices; both carry port name "http". A
 * second Service port "metrics" lives only on one node. */
static void test_multi_port_named_target_ports_match_by_port_name_across_slices(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    add_node(&f, fx_node("a", "10.0.0.1", NULL));
    add_node(&f, fx_node("b", "10.0.0.2", NULL));
    add_node(&f, fx_node("c", "10.0.0.3", NULL));
    proto_service *svc = fx_service("shop", "web", "LoadBalancer", true);
    fx_service_port(svc, "http", "TCP", 80, 30080, 0, "web");
    fx_service_port(svc, "metrics", "TCP", 9100, 30091, 9100, NULL);
    add_service(&f, svc);
    proto_endpoint_slice *old = fx_slice("shop", "web-1", "web", "IPv4");
    fx_slice_port(old, "http", "TCP", 8080);
    fx_slice_port(old, "metrics", "TCP", 9100);
    fx_endpoint(old, "192.168.1.1", "a", FX_READY);
    add_slice(&f, old);
    proto_endpoint_slice *new_pods = fx_slice("shop", "web-2", "web", "IPv4");
    fx_slice_port(new_pods, "http", "TCP", 9090);
    fx_endpoint(new_pods, "192.168.2.1", "b", FX_READY);
    add_slice(&f, new_pods);
    /* A slice of the same Service without the port name feeds neither. */
    proto_endpoint_slice *other = fx_slice("shop", "web-3", "web", "IPv4");
    fx_slice_port(other, "admin", "TCP", 7000);
    fx_endpoint(other, "192.168.3.1", "c", FX_READY);
    add_slice(&f, other);
    assert_string_equal(servers_of(&f, "shop/web", 0),
                        "a 10.0.0.1:30080 enabled, b 10.0.0.2:30080 enabled");
    assert_string_equal(servers_of(&f, "shop/web", 1), "a 10.0.0.1:30091 enabled");
    fixture_fini(&f);
}

static void test_slice_port_with_other_protocol_does_not_match(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    add_node(&f, fx_node("a", "10.0.0.1", NULL));
    add_service(&f, seed_service(true));
    proto_endpoint_slice *slice = fx_slice("hostrule-ns", "udp", "my-svc", "IPv4");
    fx_slice_port(slice, "", "UDP", 8080);
    fx_endpoint(slice, "192.168.25.134", "a", FX_READY);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "");
    fixture_fini(&f);
}

static void test_endpoint_in_two_slices_gives_one_server_and_ready_wins(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    add_node(&f, fx_node("a", "10.0.0.1", NULL));
    add_service(&f, seed_service(true));
    proto_endpoint_slice *first = fx_slice("hostrule-ns", "s1", "my-svc", "IPv4");
    fx_slice_port(first, "", "TCP", 8080);
    fx_endpoint(first, "192.168.25.134", "a", FX_TERMINATING_SERVING);
    add_slice(&f, first);
    proto_endpoint_slice *second = fx_slice("hostrule-ns", "s2", "my-svc", "IPv4");
    fx_slice_port(second, "", "TCP", 8080);
    fx_endpoint(second, "192.168.25.134", "a", FX_READY);
    add_slice(&f, second);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "a 10.0.0.1:30080 enabled");
    fixture_fini(&f);
}

static void test_port_without_node_port_has_no_servers(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    add_node(&f, fx_node("a", "10.0.0.1", NULL));
    proto_service *svc = fx_service("ns", "no-np", "LoadBalancer", false);
    fx_service_port(svc, "", "TCP", 80, 0, 8080, NULL);
    add_service(&f, svc);
    assert_string_equal(servers_of(&f, "ns/no-np", 0), "");
    fixture_fini(&f);
}

/* ---- one server per address ---------------------------------------------- */

static void test_nodes_sharing_one_address_give_one_server(void **state)
{
    (void)state;
    fixture f;
    char name[32];
    fixture_init(&f, fx_node_port_config());
    for (int i = 0; i < 104; i++) {
        snprintf(name, sizeof name, "node-%03d", i);
        add_node(&f, fx_node(name, "10.0.0.9", NULL));
    }
    add_service(&f, seed_service(false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "node-000 10.0.0.9:30080 enabled");
    fixture_fini(&f);
}

static void test_shared_address_is_enabled_when_any_of_its_nodes_serves(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    proto_node *draining = fx_node("a-draining", "10.0.0.9", NULL);
    draining->deleting = true;
    add_node(&f, draining);
    add_node(&f, fx_node("b-serving", "10.0.0.9", NULL));
    add_node(&f, fx_node("c-other", "10.0.0.3", NULL));
    add_service(&f, seed_service(false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "b-serving 10.0.0.9:30080 enabled, c-other 10.0.0.3:30080 enabled");
    fixture_fini(&f);
}

static void test_shared_address_is_disabled_only_when_all_its_nodes_drain(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    add_node(&f, fx_node("a", "10.0.0.9", NULL));
    add_node(&f, fx_node("b", "10.0.0.9", NULL));
    add_service(&f, seed_service(true));
    proto_endpoint_slice *slice = seed_slice();
    fx_endpoint(slice, "192.168.25.134", "a", FX_TERMINATING_SERVING);
    fx_endpoint(slice, "192.168.25.135", "b", FX_TERMINATING_SERVING);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, SEED_KEY, 0), "a 10.0.0.9:30080 disabled");
    fixture_fini(&f);
}

static void test_servers_are_sorted_by_node_then_address(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    static const char *const names[] = {"n3", "n10", "n1", "n2", "n20"};
    for (size_t i = 0; i < 5; i++) {
        char address[32];
        snprintf(address, sizeof address, "10.0.0.%zu", 10 - i);
        add_node(&f, fx_node(names[i], address, NULL));
    }
    add_service(&f, seed_service(false));
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "n1 10.0.0.8:30080 enabled, n10 10.0.0.9:30080 enabled, "
                        "n2 10.0.0.7:30080 enabled, n20 10.0.0.6:30080 enabled, "
                        "n3 10.0.0.10:30080 enabled");
    fixture_fini(&f);
}

static void test_node_change_that_no_pool_can_see_is_equivalent(void **state)
{
    (void)state;
    kv_config *cfg = fx_config("clusterName: k8s\nserviceType: NodePort\n"
                               "nodeSelectorLabels:\n  role: edge\n");
    proto_node *before = fx_node("a", "10.0.0.1", "fd00::1");
    fx_node_label(before, "role", "edge");
    proto_node *relabelled = fx_node("a", "10.0.0.1", "fd00::2");
    fx_node_label(relabelled, "role", "edge");
    fx_node_label(relabelled, "kubernetes.io/os", "linux");
    assert_true(pool_servers_node_equivalent(cfg, before, relabelled));

    proto_node *moved = fx_node("a", "10.0.0.9", NULL);
    fx_node_label(moved, "role", "edge");
    assert_false(pool_servers_node_equivalent(cfg, before, moved));
    proto_node *draining = fx_node("a", "10.0.0.1", NULL);
    fx_node_label(draining, "role", "edge");
    draining->to_be_deleted = true;
    assert_false(pool_servers_node_equivalent(cfg, before, draining));
    proto_node *deselected = fx_node("a", "10.0.0.1", NULL);
    assert_false(pool_servers_node_equivalent(cfg, before, deselected));
    /* Outside every pool before and after: nothing to see. */
    proto_node *other = fx_node("a", "10.0.0.7", NULL);
    other->deleting = true;
    assert_true(pool_servers_node_equivalent(cfg, deselected, other));

    proto_node *all[] = {before, relabelled, moved, draining, deselected, other};
    for (size_t i = 0; i < 6; i++)
        proto_node_destroy(&all[i]);
    config_destroy(&cfg);
}

/* Under V4_V6 an IPv6-only Service uses a dual-stack node's IPv6 address
 * while a dual-stack one uses its IPv4: a change of either family is seen
 * by some pool, even when the other family stays. */
static void test_node_change_of_either_enabled_family_is_not_equivalent(void **state)
{
    (void)state;
    kv_config *cfg = fx_config(V4_V6_CONFIG);
    proto_node *v4 = fx_node("a", "10.0.0.1", NULL);
    proto_node *dual = fx_node("a", "10.0.0.1", "fd00::1");
    proto_node *renumbered_v6 = fx_node("a", "10.0.0.1", "fd00::9");
    proto_node *renumbered_v4 = fx_node("a", "10.0.0.9", "fd00::1");
    proto_node *relabelled = fx_node("a", "10.0.0.1", "fd00::1");
    fx_node_label(relabelled, "kubernetes.io/os", "linux");
    proto_node *v6 = fx_node("a", NULL, "fd00::1");
    proto_node *draining_v6 = fx_node("a", NULL, "fd00::1");
    draining_v6->deleting = true;

    assert_false(pool_servers_node_equivalent(cfg, v4, dual));  /* gains IPv6 */
    assert_false(pool_servers_node_equivalent(cfg, dual, v4));  /* loses IPv6 */
    assert_false(pool_servers_node_equivalent(cfg, dual, renumbered_v6));
    assert_false(pool_servers_node_equivalent(cfg, dual, renumbered_v4));
    assert_false(pool_servers_node_equivalent(cfg, dual, v6));  /* loses IPv4 */
    assert_false(pool_servers_node_equivalent(cfg, v6, draining_v6));
    assert_true(pool_servers_node_equivalent(cfg, dual, relabelled));
    config_destroy(&cfg);

    /* A family ipFamily does not enable is seen by no pool. */
    cfg = fx_config(V6_CONFIG);
    assert_true(pool_servers_node_equivalent(cfg, dual, renumbered_v4));
    assert_true(pool_servers_node_equivalent(cfg, dual, v6));
    assert_false(pool_servers_node_equivalent(cfg, dual, renumbered_v6));
    assert_false(pool_servers_node_equivalent(cfg, dual, v4));
    config_destroy(&cfg);
    cfg = fx_node_port_config();
    assert_true(pool_servers_node_equivalent(cfg, v4, dual));
    assert_true(pool_servers_node_equivalent(cfg, dual, renumbered_v6));
    /* IPv6 only under V4: in no pool before, in none after. */
    assert_true(pool_servers_node_equivalent(cfg, v6, draining_v6));

    proto_node *all[] = {v4, dual, renumbered_v6, renumbered_v4, relabelled, v6, draining_v6};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        proto_node_destroy(&all[i]);
    config_destroy(&cfg);
}

/* ---- ClusterIP mode ----------------------------------------------------- */

static void test_clusterip_mode_uses_endpoint_addresses_and_target_ports(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config("clusterName: k8s\nserviceType: ClusterIP\n"));
    add_node(&f, fx_node("a", "10.0.0.1", NULL));
    add_service(&f, seed_service(true));
    proto_endpoint_slice *slice = seed_slice();
    fx_endpoint(slice, "192.168.0.1", "a", FX_READY);
    fx_endpoint(slice, "192.168.0.2", "a", FX_TERMINATING_SERVING);
    fx_endpoint(slice, "192.168.0.3", "a", FX_NOT_READY);
    fx_endpoint(slice, "192.168.0.4", "a", FX_TERMINATING_NOT_SERVING);
    fx_endpoint(slice, "192.168.0.5", NULL, FX_READY);
    add_slice(&f, slice);
    /* A second slice repeats one endpoint: still one server. */
    proto_endpoint_slice *dup = fx_slice("hostrule-ns", "dup", "my-svc", "IPv4");
    fx_slice_port(dup, "", "TCP", 8080);
    fx_endpoint(dup, "192.168.0.2", "a", FX_READY);
    add_slice(&f, dup);
    /* IPv6 slices are not for an IPv4 cluster. */
    proto_endpoint_slice *v6 = fx_slice("hostrule-ns", "v6", "my-svc", "IPv6");
    fx_slice_port(v6, "", "TCP", 8080);
    fx_endpoint(v6, "fd00::1", "a", FX_READY);
    add_slice(&f, v6);
    assert_string_equal(servers_of(&f, SEED_KEY, 0),
                        "- 192.168.0.5:8080 enabled, a 192.168.0.1:8080 enabled, "
                        "a 192.168.0.2:8080 enabled");
    fixture_fini(&f);
}

static void test_clusterip_mode_ignores_deleting_nodes_and_node_ports(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config("clusterName: k8s\nserviceType: ClusterIP\n"));
    proto_node *node = fx_node("a", "10.0.0.1", NULL);
    node->deleting = true;
    add_node(&f, node);
    proto_service *svc = fx_service("ns", "s", "LoadBalancer", false);
    fx_service_port(svc, "", "TCP", 80, 0, 8080, NULL);
    add_service(&f, svc);
    proto_endpoint_slice *slice = fx_slice("ns", "s-1", "s", "IPv4");
    fx_slice_port(slice, "", "TCP", 8080);
    fx_endpoint(slice, "192.168.0.1", "a", FX_TERMINATING_SERVING);
    add_slice(&f, slice);
    assert_string_equal(servers_of(&f, "ns/s", 0), "a 192.168.0.1:8080 disabled");
    fixture_fini(&f);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_policy_puts_every_node_enabled),
        cmocka_unit_test(test_cluster_policy_without_any_endpoint_still_lists_every_node),
        cmocka_unit_test(test_local_node_with_ready_endpoint_is_enabled),
        cmocka_unit_test(test_local_node_with_ready_and_terminating_endpoints_is_enabled),
        cmocka_unit_test(test_local_node_with_only_not_ready_endpoint_is_absent),
        cmocka_unit_test(test_local_node_with_only_terminating_serving_endpoint_is_disabled),
        cmocka_unit_test(test_local_node_with_terminating_not_serving_endpoint_is_absent),
        cmocka_unit_test(test_local_without_endpoints_has_no_servers),
        cmocka_unit_test(test_local_endpoint_on_unknown_node_is_absent),
        cmocka_unit_test(test_deleting_node_is_disabled_then_absent_once_deleted),
        cmocka_unit_test(test_node_tainted_to_be_deleted_is_disabled),
        cmocka_unit_test(test_local_deleting_node_without_endpoints_stays_absent),
        cmocka_unit_test(test_exclusion_label_excludes_unless_its_value_is_false),
        cmocka_unit_test(test_node_selector_labels_must_all_match),
        cmocka_unit_test(test_node_without_address_of_the_family_is_skipped),
        cmocka_unit_test(
            test_ipv6_only_service_under_v4_v6_gets_the_ipv6_address_of_dual_stack_nodes),
        cmocka_unit_test(test_dual_stack_service_under_v4_v6_prefers_ipv4_whatever_the_order),
        cmocka_unit_test(test_ipv4_only_service_has_no_server_on_an_ipv6_only_node),
        cmocka_unit_test(test_ipv4_only_service_under_v6_config_has_no_server),
        cmocka_unit_test(test_service_without_ip_families_counts_as_ipv4),
        cmocka_unit_test(
            test_local_ipv6_only_service_uses_the_ipv6_address_of_nodes_with_endpoints),
        cmocka_unit_test(
            test_local_dual_stack_service_uses_the_family_whose_endpoints_serve_on_the_node),
        cmocka_unit_test(test_local_ipv4_service_ignores_endpoints_in_ipv6_slices),
        cmocka_unit_test(test_candidacy_depends_on_the_service_families),
        cmocka_unit_test(test_calico_address_is_preferred_with_internal_ip_as_fallback),
        cmocka_unit_test(test_antrea_transport_address_of_the_family_is_used),
        cmocka_unit_test(test_multi_port_named_target_ports_match_by_port_name_across_slices),
        cmocka_unit_test(test_slice_port_with_other_protocol_does_not_match),
        cmocka_unit_test(test_endpoint_in_two_slices_gives_one_server_and_ready_wins),
        cmocka_unit_test(test_port_without_node_port_has_no_servers),
        cmocka_unit_test(test_servers_are_sorted_by_node_then_address),
        cmocka_unit_test(test_nodes_sharing_one_address_give_one_server),
        cmocka_unit_test(test_shared_address_is_enabled_when_any_of_its_nodes_serves),
        cmocka_unit_test(test_shared_address_is_disabled_only_when_all_its_nodes_drain),
        cmocka_unit_test(test_node_change_that_no_pool_can_see_is_equivalent),
        cmocka_unit_test(test_node_change_of_either_enabled_family_is_not_equivalent),
        cmocka_unit_test(test_clusterip_mode_uses_endpoint_addresses_and_target_ports),
        cmocka_unit_test(test_clusterip_mode_ignores_deleting_nodes_and_node_ports),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
