/* A LoadBalancer Service → its Avi model: the exact JSON of each object for
 * the seed example (ako_external_traffic_policy_local.md, step 6), AKO's
 * names, checksums that are stable and move with the servers, and the
 * Services that are not ours. */
#include "test_planner_fixtures.h"

#include <jansson.h>

#include "planner/l4_translator.h"
#include "planner/store.h"
#include "proto/model.h"

typedef struct {
    kv_config *cfg;
    store_t *store;
} fixture;

static void fixture_init(fixture *f, kv_config *cfg)
{
    f->cfg = cfg;
    assert_int_equal(store_new(&f->store, cfg->node_port_mode), 0);
}

static void fixture_fini(fixture *f)
{
    store_destroy(&f->store);
    config_destroy(&f->cfg);
}

static void add_service(fixture *f, proto_service *svc)
{
    assert_int_equal(store_put_service_take(f->store, &svc), 0);
}

static void add_node(fixture *f, proto_node *node)
{
    assert_int_equal(store_put_node_take(f->store, &node), 0);
}

static void add_slice(fixture *f, proto_endpoint_slice *slice)
{
    assert_int_equal(store_put_slice_take(f->store, &slice), 0);
}

/* The seed: two nodes, LoadBalancer my-svc with ETP Local and
 * healthCheckNodePort 32000, its one pod ready on the worker. */
static void seed(fixture *f, bool pod_ready)
{
    add_node(f, fx_node("k8s-cluster-master", "10.0.0.1", NULL));
    add_node(f, fx_node("k8s-cluster-worker", "10.0.0.2", NULL));
    proto_service *svc = fx_service("hostrule-ns", "my-svc", "LoadBalancer", true);
    svc->health_check_node_port = 32000;
    fx_service_port(svc, "", "TCP", 80, 30080, 8080, NULL);
    add_service(f, svc);
    proto_endpoint_slice *slice = fx_slice("hostrule-ns", "my-svc-x7k2p", "my-svc", "IPv4");
    fx_slice_port(slice, "", "TCP", 8080);
    if (pod_ready)
        fx_endpoint(slice, "192.168.25.134", "k8s-cluster-worker", FX_READY);
    else
        fx_endpoint(slice, "192.168.25.134", "k8s-cluster-worker", FX_TERMINATING_SERVING);
    add_slice(f, slice);
}

static proto_model *translate(fixture *f, const char *key, l4_summary *summary)
{
    proto_model *model = NULL;
    l4_summary local;
    const proto_service *svc = store_service(f->store, key);
    assert_non_null(svc);
    assert_int_equal(l4_translate(&model, summary ? summary : &local, f->cfg, f->store, svc,
                                  f->cfg->tenant_name),
                     0);
    return model;
}

/* FNV-1a 32, written again here so the test does not trust the code. */
static char *expected_checksum(const json_t *body)
{
    static char digits[16];
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    uint32_t hash = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        hash ^= *p;
        hash *= 16777619u;
    }
    free(text);
    snprintf(digits, sizeof digits, "%u", (unsigned)hash);
    return digits;
}

/* Object `index` is `type`/`name` and its body equals `expected` (JSON
 * text without the checksum field) plus the right checksum, in
 * checksum_field unless the type has none (NULL). */
static void assert_object(const proto_model *model, size_t index, const char *type,
                          const char *name, const char *checksum_field, const char *expected)
{
    json_error_t error;
    assert_true(index < model->n_objects);
    const proto_avi_object *object = &model->objects[index];
    assert_string_equal(object->type, type);
    assert_string_equal(object->name, name);
    json_t *want = json_loads(expected, 0, &error);
    if (!want)
        fail_msg("expected JSON of %s: %s at %d", name, error.text, error.line);
    const char *sum = expected_checksum(want);
    assert_string_equal(object->checksum, sum);
    if (checksum_field)
        json_object_set_new(want, checksum_field, json_string(sum));
    if (!json_equal(want, object->body)) {
        char *got = json_dumps(object->body, JSON_SORT_KEYS | JSON_INDENT(1));
        char *exp = json_dumps(want, JSON_SORT_KEYS | JSON_INDENT(1));
        print_error("got:\n%s\nwant:\n%s\n", got, exp);
        free(got);
        free(exp);
        json_decref(want);
        fail_msg("body of %s %s differs", type, name);
    }
    json_decref(want);
}

#define CLUSTER_MARKER "{\"key\": \"clustername\", \"values\": [\"k8s\"]}"
/* AKO's markers of an object of the seed's Service; VsVips get only the
 * cluster's. */
#define SERVICE_MARKERS                                                                            \
    CLUSTER_MARKER ", {\"key\": \"Namespace\", \"values\": [\"hostrule-ns\"]},"                    \
                   " {\"key\": \"ServiceName\", \"values\": [\"my-svc\"]}"
#define MARKERS "\"markers\": [" SERVICE_MARKERS "]"
#define METADATA                                                                                   \
    "\"service_metadata\": \"{\\\"namespace_svc_name\\\":[\\\"hostrule-ns/my-svc\\\"]}\""

static void test_seed_service_model_has_the_exact_objects(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed(&f, true);
    l4_summary summary;
    proto_model *model = translate(&f, "hostrule-ns/my-svc", &summary);
    assert_non_null(model);
    assert_string_equal(model->tenant, "admin");
    assert_string_equal(model->name, "k8s--hostrule-ns-my-svc");
    assert_int_equal(model->n_owners, 1);
    assert_string_equal(model->owners[0], "Service/hostrule-ns/my-svc");
    assert_int_equal(model->n_objects, 5);
    assert_int_equal(summary.pools, 1);
    assert_int_equal(summary.servers, 1);
    assert_string_equal(summary.note, "");

    assert_object(model, 0, "healthmonitor", "k8s--hostrule-ns-my-svc-hc", NULL,
                  "{\"name\": \"k8s--hostrule-ns-my-svc-hc\", \"type\": \"HEALTH_MONITOR_HTTP\","
                  " \"monitor_port\": 32000, \"send_interval\": 5, \"receive_timeout\": 4,"
                  " \"successful_checks\": 2, \"failed_checks\": 2,"
                  " \"http_monitor\": {\"http_request\": \"GET /healthz HTTP/1.0\","
                  "   \"http_response_code\": [\"HTTP_2XX\"]},"
                  " \"tenant_ref\": \"/api/tenant/?name=admin\", " MARKERS "}");
    assert_object(
        model, 1, "pool", "k8s--hostrule-ns-my-svc-TCP-80", "cloud_config_cksum",
        "{\"name\": \"k8s--hostrule-ns-my-svc-TCP-80\","
        " \"tenant_ref\": \"/api/tenant/?name=admin\","
        " \"cloud_ref\": \"/api/cloud/?name=Default-Cloud\","
        " \"servers\": [{\"ip\": {\"addr\": \"10.0.0.2\", \"type\": \"V4\"}, \"port\": 30080,"
        "   \"hostname\": \"k8s-cluster-worker\", \"enabled\": true,"
        "   \"external_uuid\": \"10.0.0.2:30080\"}],"
        " \"health_monitor_refs\": [\"/api/healthmonitor/?name=k8s--hostrule-ns-my-svc-hc\"],"
        " \"graceful_disable_timeout\": 1,"
        " \"created_by\": \"ako-k8s\","
        " \"markers\": [" SERVICE_MARKERS ", {\"key\": \"Port\", \"values\": [\"80\"]}], " METADATA
        "}");
    assert_object(
        model, 2, "l4policyset", "k8s--hostrule-ns-my-svc", NULL,
        "{\"name\": \"k8s--hostrule-ns-my-svc\", \"tenant_ref\": \"/api/tenant/?name=admin\","
        " \"created_by\": \"ako-k8s\","
        " \"markers\": [" SERVICE_MARKERS ", {\"key\": \"Protocol\", \"values\": [\"TCP\"]}],"
        " \"l4_connection_policy\": {\"rules\": [{\"name\": \"k8s--hostrule-ns-my-svc-TCP-80\","
        "   \"index\": 1, \"enable\": true,"
        "   \"match\": {\"port\": {\"match_criteria\": \"IS_IN\", \"ports\": [80]},"
        "     \"protocol\": {\"match_criteria\": \"IS_IN\", \"protocol\": \"PROTOCOL_TCP\"}},"
        "   \"action\": {\"select_pool\": {\"action_type\": \"L4_RULE_ACTION_SELECT_POOL\","
        "     \"pool_ref\": \"/api/pool/?name=k8s--hostrule-ns-my-svc-TCP-80\"}}}]}}");
    assert_object(
        model, 3, "vsvip", "k8s--hostrule-ns-my-svc", "vsvip_cloud_config_cksum",
        "{\"name\": \"k8s--hostrule-ns-my-svc\", \"tenant_ref\": \"/api/tenant/?name=admin\","
        " \"cloud_ref\": \"/api/cloud/?name=Default-Cloud\","
        " \"vip\": [{\"vip_id\": \"0\", \"auto_allocate_ip\": true}],"
        " \"markers\": [" CLUSTER_MARKER "]}");
    assert_object(
        model, 4, "virtualservice", "k8s--hostrule-ns-my-svc", "cloud_config_cksum",
        "{\"name\": \"k8s--hostrule-ns-my-svc\", \"tenant_ref\": \"/api/tenant/?name=admin\","
        " \"cloud_ref\": \"/api/cloud/?name=Default-Cloud\","
        " \"se_group_ref\": \"/api/serviceenginegroup/?name=Default-Group\","
        " \"vsvip_ref\": \"/api/vsvip/?name=k8s--hostrule-ns-my-svc\","
        " \"application_profile_ref\": \"/api/applicationprofile/?name=System-L4-Application\","
        " \"network_profile_ref\": \"/api/networkprofile/?name=System-TCP-Proxy\","
        " \"services\": [{\"port\": 80, \"port_range_end\": 80, \"enable_ssl\": false}],"
        " \"l4_policies\": [{\"index\": 1,"
        "   \"l4_policy_set_ref\": \"/api/l4policyset/?name=k8s--hostrule-ns-my-svc\"}],"
        " \"remove_listening_port_on_vs_down\": true, \"traffic_enabled\": true,"
        " \"created_by\": \"ako-k8s\", " MARKERS ", " METADATA "}");
    proto_model_destroy(&model);
    fixture_fini(&f);
}

static void test_pool_names_carry_protocol_and_port_in_service_port_order(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config("clusterName: prod-1\nserviceType: NodePort\ntenantName: team\n"));
    proto_service *svc = fx_service("dns", "resolver", "LoadBalancer", false);
    fx_service_port(svc, "dns-udp", "UDP", 53, 30053, 53, NULL);
    fx_service_port(svc, "dns-tcp", "TCP", 53, 30054, 53, NULL);
    fx_service_port(svc, "sctp", "SCTP", 9000, 30900, 9000, NULL);
    add_service(&f, svc);
    proto_model *model = translate(&f, "dns/resolver", NULL);
    assert_non_null(model);
    assert_string_equal(model->tenant, "team");
    const char *want[][2] = {
        {"pool", "prod-1--dns-resolver-UDP-53"},    {"pool", "prod-1--dns-resolver-TCP-53"},
        {"pool", "prod-1--dns-resolver-SCTP-9000"}, {"l4policyset", "prod-1--dns-resolver"},
        {"vsvip", "prod-1--dns-resolver"},          {"virtualservice", "prod-1--dns-resolver"},
    };
    assert_int_equal(model->n_objects, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(model->objects[i].type, want[i][0]);
        assert_string_equal(model->objects[i].name, want[i][1]);
    }
    /* Cluster policy: the pools use the protocol's own monitor. */
    json_t *hm = json_object_get(model->objects[0].body, "health_monitor_refs");
    assert_string_equal(json_string_value(json_array_get(hm, 0)),
                        "/api/healthmonitor/?name=System-UDP");
    hm = json_object_get(model->objects[1].body, "health_monitor_refs");
    assert_string_equal(json_string_value(json_array_get(hm, 0)),
                        "/api/healthmonitor/?name=System-TCP");
    /* Mixed protocols: TCP proxy on the VS, UDP/SCTP ports overridden. */
    json_t *vs = model->objects[5].body;
    assert_string_equal(json_string_value(json_object_get(vs, "network_profile_ref")),
                        "/api/networkprofile/?name=System-TCP-Proxy");
    json_t *services = json_object_get(vs, "services");
    assert_int_equal(json_array_size(services), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(services, 0),
                                                          "override_network_profile_ref")),
                        "/api/networkprofile/?name=System-UDP-Fast-Path");
    assert_null(json_object_get(json_array_get(services, 1), "override_network_profile_ref"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(services, 2),
                                                          "override_network_profile_ref")),
                        "/api/networkprofile/?name=System-SCTP-Proxy");
    /* Policy rules select each pool by port and protocol, in order. */
    json_t *rules =
        json_object_get(json_object_get(model->objects[3].body, "l4_connection_policy"), "rules");
    assert_int_equal(json_array_size(rules), 3);
    json_t *rule = json_array_get(rules, 0);
    assert_int_equal(json_integer_value(json_object_get(rule, "index")), 1);
    json_t *match = json_object_get(rule, "match");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(match, "protocol"), "protocol")),
        "PROTOCOL_UDP");
    proto_model_destroy(&model);
    fixture_fini(&f);
}

/* A draining node: its server is disabled, and the pool says how long the
 * controller lets its open connections finish (AKO's 1 minute). */
static void test_draining_pool_has_the_disabled_server_and_a_graceful_timeout(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed(&f, false);
    proto_model *model = translate(&f, "hostrule-ns/my-svc", NULL);
    json_t *pool = model->objects[1].body;
    assert_string_equal(model->objects[1].type, "pool");
    json_t *server = json_array_get(json_object_get(pool, "servers"), 0);
    assert_int_equal(json_array_size(json_object_get(pool, "servers")), 1);
    assert_string_equal(json_string_value(json_object_get(server, "hostname")),
                        "k8s-cluster-worker");
    assert_true(json_is_false(json_object_get(server, "enabled")));
    assert_int_equal(json_integer_value(json_object_get(pool, "graceful_disable_timeout")), 1);
    proto_model_destroy(&model);
    fixture_fini(&f);
}

static void test_graceful_disable_timeout_comes_from_the_config(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config("clusterName: k8s\nserviceType: NodePort\n"
                               "poolGracefulDisableTimeout: -1\n"));
    seed(&f, false);
    proto_model *model = translate(&f, "hostrule-ns/my-svc", NULL);
    assert_int_equal(
        json_integer_value(json_object_get(model->objects[1].body, "graceful_disable_timeout")),
        -1);
    proto_model_destroy(&model);
    fixture_fini(&f);
}

/* nodeNetworkList: one placement network per network and CIDR, by uuid when
 * given (AKO), the network address of each CIDR. */
static void test_node_network_list_gives_pools_placement_networks(void **state)
{
    (void)state;
    json_error_t error;
    fixture f;
    fixture_init(&f, fx_config("clusterName: k8s\nserviceType: NodePort\n"
                               "nodeNetworkList:\n"
                               "  - networkName: node-net\n"
                               "    cidrs: [10.0.0.1/24, 10.1.0.0/16]\n"
                               "  - networkName: ignored-for-uuid\n"
                               "    networkUUID: dvportgroup-42-cloud-1\n"
                               "    cidrs: ['fd00::5/64']\n"));
    seed(&f, true);
    proto_model *model = translate(&f, "hostrule-ns/my-svc", NULL);
    json_t *want = json_loads(
        "[{\"network_ref\": \"/api/network/?name=node-net\","
        "  \"subnet\": {\"ip_addr\": {\"addr\": \"10.0.0.0\", \"type\": \"V4\"}, \"mask\": 24}},"
        " {\"network_ref\": \"/api/network/?name=node-net\","
        "  \"subnet\": {\"ip_addr\": {\"addr\": \"10.1.0.0\", \"type\": \"V4\"}, \"mask\": 16}},"
        " {\"network_ref\": \"/api/network/dvportgroup-42-cloud-1\","
        "  \"subnet\": {\"ip_addr\": {\"addr\": \"fd00::\", \"type\": \"V6\"}, \"mask\": 64}}]",
        0, &error);
    assert_non_null(want);
    assert_true(json_equal(want, json_object_get(model->objects[1].body, "placement_networks")));
    json_decref(want);
    proto_model_destroy(&model);
    fixture_fini(&f);
}

static void test_pools_have_no_placement_networks_without_node_networks(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed(&f, true);
    proto_model *model = translate(&f, "hostrule-ns/my-svc", NULL);
    assert_null(json_object_get(model->objects[1].body, "placement_networks"));
    proto_model_destroy(&model);
    fixture_fini(&f);
}

/* AKO's Protocol marker on the policy set: the protocols, sorted, once. */
static void test_policy_set_marks_every_protocol_once(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    proto_service *svc = fx_service("ns", "dns", "LoadBalancer", false);
    fx_service_port(svc, "dns-udp", "UDP", 53, 30053, 53, NULL);
    fx_service_port(svc, "dns-tcp", "TCP", 53, 30054, 53, NULL);
    fx_service_port(svc, "metrics", "TCP", 9153, 30055, 9153, NULL);
    add_service(&f, svc);
    proto_model *model = translate(&f, "ns/dns", NULL);
    const proto_avi_object *policy = &model->objects[model->n_objects - 3];
    assert_string_equal(policy->type, "l4policyset");
    json_t *last = json_array_get(json_object_get(policy->body, "markers"), 3);
    assert_string_equal(json_string_value(json_object_get(last, "key")), "Protocol");
    assert_string_equal(json_string_value(json_array_get(json_object_get(last, "values"), 0)),
                        "TCP,UDP");
    proto_model_destroy(&model);
    fixture_fini(&f);
}

static void test_udp_only_service_uses_udp_fast_path(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    proto_service *svc = fx_service("ns", "syslog", "LoadBalancer", false);
    fx_service_port(svc, "", "UDP", 514, 30514, 514, NULL);
    add_service(&f, svc);
    proto_model *model = translate(&f, "ns/syslog", NULL);
    json_t *vs = model->objects[model->n_objects - 1].body;
    assert_string_equal(json_string_value(json_object_get(vs, "network_profile_ref")),
                        "/api/networkprofile/?name=System-UDP-Fast-Path");
    assert_null(json_object_get(json_array_get(json_object_get(vs, "services"), 0),
                                "override_network_profile_ref"));
    proto_model_destroy(&model);
    fixture_fini(&f);
}

static void test_vip_network_comes_from_the_first_vip_network(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config("clusterName: k8s\nserviceType: NodePort\n"
                               "vipNetworkList:\n  - networkName: vip-net\n"
                               "  - networkName: other\n"));
    seed(&f, true);
    proto_model *model = translate(&f, "hostrule-ns/my-svc", NULL);
    json_t *vip = json_array_get(json_object_get(model->objects[3].body, "vip"), 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(vip, "ipam_network_subnet"), "network_ref")),
                        "/api/network/?name=vip-net");
    proto_model_destroy(&model);
    fixture_fini(&f);
}

/* A preferred VIP goes in the VsVip's address, IPAM still asked, as AKO. */
static void test_preferred_vip_is_the_vsvip_address(void **state)
{
    (void)state;
    static const struct {
        const char *ip, *field, *type;
    } cases[] = {{"10.10.10.150", "ip_address", "V4"}, {"fd00::150", "ip6_address", "V6"}};
    for (size_t i = 0; i < 2; i++) {
        fixture f;
        fixture_init(&f, fx_node_port_config());
        add_node(&f, fx_node("k8s-cluster-worker", "10.0.0.2", NULL));
        proto_service *svc = fx_service("hostrule-ns", "my-svc", "LoadBalancer", false);
        svc->load_balancer_ip = strdup(cases[i].ip);
        fx_service_port(svc, "", "TCP", 80, 30080, 8080, NULL);
        add_service(&f, svc);
        proto_model *model = translate(&f, "hostrule-ns/my-svc", NULL);
        const proto_avi_object *vsvip = &model->objects[2];
        assert_string_equal(vsvip->type, "vsvip");
        json_t *vip = json_array_get(json_object_get(vsvip->body, "vip"), 0);
        json_t *address = json_object_get(vip, cases[i].field);
        assert_string_equal(json_string_value(json_object_get(address, "addr")), cases[i].ip);
        assert_string_equal(json_string_value(json_object_get(address, "type")), cases[i].type);
        assert_true(json_is_true(json_object_get(vip, "auto_allocate_ip")));
        const char *only = json_string_value(json_object_get(vip, "auto_allocate_ip_type"));
        if (i == 1)
            assert_string_equal(only, "V6_ONLY");
        else
            assert_null(only);
        proto_model_destroy(&model);
        fixture_fini(&f);
    }
}

static char *encode(const proto_model *model, size_t *len)
{
    void *body = NULL;
    assert_int_equal(proto_model_encode(model, &body, len), 0);
    return body;
}

static void test_same_input_encodes_to_the_same_bytes(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed(&f, true);
    proto_model *first = translate(&f, "hostrule-ns/my-svc", NULL);
    proto_model *second = translate(&f, "hostrule-ns/my-svc", NULL);
    size_t len1, len2;
    char *bytes1 = encode(first, &len1), *bytes2 = encode(second, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(bytes1, bytes2, len1);
    free(bytes1);
    free(bytes2);
    proto_model_destroy(&first);
    proto_model_destroy(&second);
    fixture_fini(&f);
}

static void test_pool_checksum_changes_with_servers_and_only_the_pool_changes(void **state)
{
    (void)state;
    fixture ready, draining;
    fixture_init(&ready, fx_node_port_config());
    fixture_init(&draining, fx_node_port_config());
    seed(&ready, true);
    seed(&draining, false);
    proto_model *a = translate(&ready, "hostrule-ns/my-svc", NULL);
    proto_model *b = translate(&draining, "hostrule-ns/my-svc", NULL);
    assert_int_equal(a->n_objects, b->n_objects);
    for (size_t i = 0; i < a->n_objects; i++) {
        bool is_pool = strcmp(a->objects[i].type, "pool") == 0;
        if (is_pool)
            assert_string_not_equal(a->objects[i].checksum, b->objects[i].checksum);
        else
            assert_string_equal(a->objects[i].checksum, b->objects[i].checksum);
    }
    /* Draining: the worker stays, disabled. */
    json_t *server = json_array_get(json_object_get(b->objects[1].body, "servers"), 0);
    assert_false(json_is_true(json_object_get(server, "enabled")));
    proto_model_destroy(&a);
    proto_model_destroy(&b);
    fixture_fini(&ready);
    fixture_fini(&draining);
}

static void test_pool_without_servers_is_kept_with_an_empty_list(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    seed(&f, true);
    store_delete_slice(f.store, "hostrule-ns/my-svc-x7k2p");
    l4_summary summary;
    proto_model *model = translate(&f, "hostrule-ns/my-svc", &summary);
    assert_non_null(model);
    assert_int_equal(summary.servers, 0);
    json_t *servers = json_object_get(model->objects[1].body, "servers");
    assert_true(json_is_array(servers));
    assert_int_equal(json_array_size(servers), 0);
    proto_model_destroy(&model);
    fixture_fini(&f);
}

static void test_services_that_are_not_ours_yield_no_model(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    proto_service *other_class = fx_service("ns", "metallb", "LoadBalancer", false);
    other_class->load_balancer_class = fx_strdup("metallb.io/metallb");
    fx_service_port(other_class, "", "TCP", 80, 30080, 80, NULL);
    add_service(&f, other_class);
    proto_service *node_port = fx_service("ns", "np", "NodePort", true);
    fx_service_port(node_port, "", "TCP", 80, 30081, 80, NULL);
    add_service(&f, node_port);
    proto_service *cluster_ip = fx_service("ns", "cip", "ClusterIP", false);
    fx_service_port(cluster_ip, "", "TCP", 80, 0, 80, NULL);
    add_service(&f, cluster_ip);
    proto_service *no_ports = fx_service("ns", "empty", "LoadBalancer", false);
    add_service(&f, no_ports);
    static const char *const keys[] = {"ns/metallb", "ns/np", "ns/cip", "ns/empty"};
    for (size_t i = 0; i < 4; i++) {
        l4_summary summary;
        assert_null(translate(&f, keys[i], &summary));
        assert_string_equal(summary.note, "");
    }
    fixture_fini(&f);
}

static void test_ako_load_balancer_class_is_ours(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    proto_service *svc = fx_service("ns", "avi", "LoadBalancer", false);
    svc->load_balancer_class = fx_strdup("ako.vmware.com/avi-lb");
    fx_service_port(svc, "", "TCP", 80, 30080, 80, NULL);
    add_service(&f, svc);
    proto_model *model = translate(&f, "ns/avi", NULL);
    assert_non_null(model);
    proto_model_destroy(&model);
    fixture_fini(&f);
}

static void
test_health_monitor_only_for_local_with_health_check_port_in_node_port_mode(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_config("clusterName: k8s\nserviceType: ClusterIP\n"));
    seed(&f, true);
    proto_model *model = translate(&f, "hostrule-ns/my-svc", NULL);
    assert_string_equal(model->objects[0].type, "pool");
    json_t *hm = json_object_get(model->objects[0].body, "health_monitor_refs");
    assert_string_equal(json_string_value(json_array_get(hm, 0)),
                        "/api/healthmonitor/?name=System-TCP");
    /* ClusterIP mode: the pod itself, on its target port. */
    json_t *server = json_array_get(json_object_get(model->objects[0].body, "servers"), 0);
    assert_string_equal(json_string_value(json_object_get(server, "external_uuid")),
                        "192.168.25.134:8080");
    assert_string_equal(json_string_value(json_object_get(server, "hostname")),
                        "k8s-cluster-worker");
    proto_model_destroy(&model);
    fixture_fini(&f);

    fixture_init(&f, fx_node_port_config());
    proto_service *svc = fx_service("ns", "local-no-hc", "LoadBalancer", true);
    fx_service_port(svc, "", "TCP", 80, 30080, 80, NULL);
    add_service(&f, svc);
    model = translate(&f, "ns/local-no-hc", NULL);
    assert_string_equal(model->objects[0].type, "pool");
    proto_model_destroy(&model);
    fixture_fini(&f);
}

static void test_port_without_node_port_is_told_and_keeps_an_empty_pool(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    add_node(&f, fx_node("a", "10.0.0.1", NULL));
    proto_service *svc = fx_service("ns", "no-np", "LoadBalancer", false);
    fx_service_port(svc, "", "TCP", 80, 0, 80, NULL);
    add_service(&f, svc);
    l4_summary summary;
    proto_model *model = translate(&f, "ns/no-np", &summary);
    assert_non_null(model);
    assert_non_null(strstr(summary.note, "no nodePort"));
    assert_int_equal(summary.servers, 0);
    proto_model_destroy(&model);
    fixture_fini(&f);
}

static void test_overlong_names_yield_no_model_and_say_why(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, fx_node_port_config());
    char name[260];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    proto_service *svc = fx_service("ns", name, "LoadBalancer", false);
    fx_service_port(svc, "", "TCP", 80, 30080, 80, NULL);
    add_service(&f, svc);
    char key[300];
    snprintf(key, sizeof key, "ns/%s", name);
    l4_summary summary;
    assert_null(translate(&f, key, &summary));
    assert_non_null(strstr(summary.note, "255"));
    fixture_fini(&f);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_service_model_has_the_exact_objects),
        cmocka_unit_test(test_pool_names_carry_protocol_and_port_in_service_port_order),
        cmocka_unit_test(test_draining_pool_has_the_disabled_server_and_a_graceful_timeout),
        cmocka_unit_test(test_graceful_disable_timeout_comes_from_the_config),
        cmocka_unit_test(test_node_network_list_gives_pools_placement_networks),
        cmocka_unit_test(test_pools_have_no_placement_networks_without_node_networks),
        cmocka_unit_test(test_policy_set_marks_every_protocol_once),
        cmocka_unit_test(test_udp_only_service_uses_udp_fast_path),
        cmocka_unit_test(test_vip_network_comes_from_the_first_vip_network),
        cmocka_unit_test(test_preferred_vip_is_the_vsvip_address),
        cmocka_unit_test(test_same_input_encodes_to_the_same_bytes),
        cmocka_unit_test(test_pool_checksum_changes_with_servers_and_only_the_pool_changes),
        cmocka_unit_test(test_pool_without_servers_is_kept_with_an_empty_list),
        cmocka_unit_test(test_services_that_are_not_ours_yield_no_model),
        cmocka_unit_test(test_ako_load_balancer_class_is_ours),
        cmocka_unit_test(
            test_health_monitor_only_for_local_with_health_check_port_in_node_port_mode),
        cmocka_unit_test(test_port_without_node_port_is_told_and_keeps_an_empty_pool),
        cmocka_unit_test(test_overlong_names_yield_no_model_and_say_why),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
