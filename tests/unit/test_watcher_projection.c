/* Projections: Kubernetes objects shaped exactly as the API server returns
 * them (the JSON files in tests/data/replay) → what the planner decodes from the bus.
 * Every assertion decodes the published body, so it checks what a consumer
 * of stream "k8s" will see. Rejections come from
 * tests/data/replay/rejected-objects.ndjson: one object per line with the
 * exact error line it must produce. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/error.h"
#include "common/log.h"
#include "proto/k8s.h"
#include "watcher/projection.h"

#define DATA_DIR "tests/data/replay/"

/* ---- helpers ----------------------------------------------------------- */

static json_t *load_fixture(const char *name)
{
    json_error_t error;
    char path[256];
    snprintf(path, sizeof path, DATA_DIR "%s", name);
    json_t *object = json_load_file(path, 0, &error);
    if (!object)
        fail_msg("%s: %s (run the tests from the repository root)", path, error.text);
    return object;
}

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *object = json_loads(text, 0, &error);
    if (!object)
        fail_msg("bad test JSON: %s", error.text);
    return object;
}

/* Projects, checks the key, and decodes the body as the planner would. */
static void project(const json_t *object, const char *expected_key, proto_k8s_object *decoded)
{
    projection p;
    char err[PROJECTION_ERR_MAX] = "";
    int rc = projection_of(&p, object, NULL, err, sizeof err);
    if (rc != 0)
        fail_msg("projection failed (%d): %s", rc, err);
    assert_string_equal(p.key, expected_key);
    assert_int_equal(proto_k8s_decode(decoded, p.body, p.len), 0);
    projection_clear(&p);
}

/* Captures what the code under test writes to stderr (the log). */
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

/* Returns the captured text (free it) and echoes it to the real stderr. */
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

/* ---- Node ------------------------------------------------------------------ */

static void test_node_projection_keeps_first_internal_ip_per_family_cni_addresses_and_marks(
    void **state)
{
    (void)state;
    json_t *object = load_fixture("node-worker-1.json");
    proto_k8s_object got;
    project(object, "Node/worker-1", &got);
    assert_int_equal(got.kind, PROTO_K8S_NODE);
    proto_node *node = got.node;
    assert_string_equal(node->name, "worker-1");
    /* ExternalIP and Hostname are not pool addresses; the second IPv4
     * InternalIP is not the node's primary one. */
    assert_string_equal(node->internal_ipv4, "172.18.0.11");
    assert_string_equal(node->internal_ipv6, "fc00:f853:ccd:e793::11");
    assert_string_equal(node->calico_ipv4, "10.0.0.11");
    assert_string_equal(node->calico_ipv6, "fd00:10::11");
    assert_string_equal(node->antrea_transport, "192.168.50.11,fd00:50::11");
    assert_true(node->deleting);
    assert_true(node->to_be_deleted);
    assert_int_equal(node->n_labels, 5);
    assert_string_equal(node->labels[0].key, "beta.kubernetes.io/arch");
    assert_string_equal(node->labels[2].key, "kubernetes.io/os");
    assert_string_equal(node->labels[3].key,
                        "node.kubernetes.io/exclude-from-external-load-balancers");
    assert_string_equal(node->labels[3].value, "false");
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_node_without_deletion_taint_or_cni_annotations_is_plain(void **state)
{
    (void)state;
    json_t *object = parse("{\"kind\":\"Node\",\"apiVersion\":\"v1\","
                           "\"metadata\":{\"name\":\"w2\",\"deletionTimestamp\":null,"
                           "\"annotations\":{\"projectcalico.org/IPv4Address\":\"\"}},"
                           "\"spec\":{\"taints\":[{\"key\":\"node.kubernetes.io/not-ready\","
                           "\"effect\":\"NoExecute\"}]},"
                           "\"status\":{\"addresses\":[{\"type\":\"InternalIP\","
                           "\"address\":\"10.0.0.2\"}]}}");
    proto_k8s_object got;
    project(object, "Node/w2", &got);
    assert_string_equal(got.node->internal_ipv4, "10.0.0.2");
    assert_null(got.node->internal_ipv6);
    assert_null(got.node->calico_ipv4);
    assert_null(got.node->antrea_transport);
    assert_false(got.node->deleting);
    assert_false(got.node->to_be_deleted);
    assert_int_equal(got.node->n_labels, 0);
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_node_labels_in_another_order_publish_the_same_body(void **state)
{
    (void)state;
    json_t *a = parse("{\"kind\":\"Node\",\"metadata\":{\"name\":\"n\","
                      "\"labels\":{\"b\":\"2\",\"a\":\"1\",\"c\":\"3\"}}}");
    json_t *b = parse("{\"kind\":\"Node\",\"metadata\":{\"name\":\"n\","
                      "\"labels\":{\"c\":\"3\",\"a\":\"1\",\"b\":\"2\"}}}");
    projection pa, pb;
    char err[PROJECTION_ERR_MAX];
    assert_int_equal(projection_of(&pa, a, NULL, err, sizeof err), 0);
    assert_int_equal(projection_of(&pb, b, NULL, err, sizeof err), 0);
    assert_int_equal(pa.len, pb.len);
    assert_memory_equal(pa.body, pb.body, pa.len);
    projection_clear(&pa);
    projection_clear(&pb);
    json_decref(a);
    json_decref(b);
}

/* ---- Service --------------------------------------------------------------- */

static void test_lb_service_with_local_policy_health_check_port_and_named_target_port(
    void **state)
{
    (void)state;
    json_t *object = load_fixture("service-lb-local.json");
    proto_k8s_object got;
    project(object, "Service/hostrule-ns/my-svc", &got);
    proto_service *svc = got.service;
    assert_string_equal(svc->namespace, "hostrule-ns");
    assert_string_equal(svc->name, "my-svc");
    assert_string_equal(svc->type, "LoadBalancer");
    assert_null(svc->load_balancer_class);
    assert_true(svc->external_traffic_local);
    assert_int_equal(svc->health_check_node_port, 32456);
    assert_int_equal(svc->n_ports, 3);

    assert_string_equal(svc->ports[0].name, "http");
    assert_string_equal(svc->ports[0].protocol, "TCP");
    assert_int_equal(svc->ports[0].port, 80);
    assert_int_equal(svc->ports[0].node_port, 31080);
    assert_int_equal(svc->ports[0].target_port, 0);
    assert_string_equal(svc->ports[0].target_port_name, "web");

    assert_int_equal(svc->ports[1].target_port, 8443);
    assert_null(svc->ports[1].target_port_name);

    /* No targetPort: the API server defaults it to the port. */
    assert_string_equal(svc->ports[2].protocol, "UDP");
    assert_int_equal(svc->ports[2].port, 53);
    assert_int_equal(svc->ports[2].target_port, 53);
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_service_defaults_type_protocol_port_name_and_reads_only_local(void **state)
{
    (void)state;
    json_t *object = parse("{\"kind\":\"Service\",\"apiVersion\":\"v1\","
                           "\"metadata\":{\"name\":\"old\",\"namespace\":\"ns\"},"
                           "\"spec\":{\"externalTrafficPolicy\":\"OnlyLocal\","
                           "\"loadBalancerClass\":\"example.com/other\","
                           "\"ports\":[{\"port\":8080,\"targetPort\":0}]}}");
    proto_k8s_object got;
    project(object, "Service/ns/old", &got);
    assert_string_equal(got.service->type, "ClusterIP");
    assert_true(got.service->external_traffic_local);
    assert_string_equal(got.service->load_balancer_class, "example.com/other");
    assert_int_equal(got.service->health_check_node_port, 0);
    assert_string_equal(got.service->ports[0].name, "");
    assert_string_equal(got.service->ports[0].protocol, "TCP");
    assert_int_equal(got.service->ports[0].target_port, 8080);
    assert_int_equal(got.service->ports[0].node_port, 0);
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_service_with_cluster_policy_is_not_local(void **state)
{
    (void)state;
    json_t *object = parse("{\"kind\":\"Service\",\"metadata\":{\"name\":\"c\",\"namespace\":"
                           "\"ns\"},\"spec\":{\"type\":\"NodePort\",\"externalTrafficPolicy\":"
                           "\"Cluster\",\"ports\":null}}");
    proto_k8s_object got;
    project(object, "Service/ns/c", &got);
    assert_false(got.service->external_traffic_local);
    assert_int_equal(got.service->n_ports, 0);
    proto_k8s_object_clear(&got);
    json_decref(object);
}

/* ---- EndpointSlice ----------------------------------------------------------- */

static void test_endpoint_slice_conditions_node_names_and_addressless_endpoint(void **state)
{
    (void)state;
    json_t *object = load_fixture("endpointslice-my-svc.json");
    proto_k8s_object got;
    capture_begin();
    project(object, "EndpointSlice/hostrule-ns/my-svc-x7k2p", &got);
    char *log = capture_end();
    assert_non_null(strstr(
        log, "EndpointSlice hostrule-ns/my-svc-x7k2p: endpoints[4] has no addresses, skipped"));
    free(log);

    proto_endpoint_slice *slice = got.slice;
    assert_string_equal(slice->service_name, "my-svc");
    assert_string_equal(slice->address_type, "IPv4");
    assert_int_equal(slice->n_ports, 3);
    assert_string_equal(slice->ports[0].name, "http");
    assert_int_equal(slice->ports[0].port, 8080);
    assert_string_equal(slice->ports[2].name, ""); /* null name: the unnamed port */
    assert_string_equal(slice->ports[2].protocol, "TCP");
    assert_int_equal(slice->ports[2].port, 9000);

    assert_int_equal(slice->n_endpoints, 4);
    const proto_endpoint *e = slice->endpoints;
    assert_string_equal(e[0].address, "10.244.1.5");
    assert_string_equal(e[0].node_name, "worker-1");
    assert_true(e[0].ready);
    assert_true(e[0].serving);
    assert_false(e[0].terminating);

    assert_string_equal(e[1].node_name, "worker-2");
    assert_false(e[1].ready);
    assert_true(e[1].serving);
    assert_true(e[1].terminating);

    /* Conditions left out, or null: ready and serving true, terminating false. */
    for (int i = 2; i < 4; i++) {
        assert_true(e[i].ready);
        assert_true(e[i].serving);
        assert_false(e[i].terminating);
    }
    assert_string_equal(e[2].node_name, "worker-3");
    assert_null(e[3].node_name);
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_endpoint_slice_with_null_endpoints_and_ports_is_empty(void **state)
{
    (void)state;
    json_t *object = parse("{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\","
                           "\"metadata\":{\"name\":\"e\",\"namespace\":\"ns\"},"
                           "\"addressType\":\"IPv6\",\"endpoints\":null,\"ports\":null}");
    proto_k8s_object got;
    project(object, "EndpointSlice/ns/e", &got);
    assert_null(got.slice->service_name);
    assert_string_equal(got.slice->address_type, "IPv6");
    assert_int_equal(got.slice->n_endpoints, 0);
    assert_int_equal(got.slice->n_ports, 0);
    proto_k8s_object_clear(&got);
    json_decref(object);
}

/* ---- kinds ---------------------------------------------------------------- */

static void test_other_kinds_and_other_versions_are_ignored(void **state)
{
    (void)state;
    static const char *const objects[] = {
        "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"c\"}}",
        "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"p\",\"namespace\":"
        "\"d\"}}",
        "{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1beta1\","
        "\"metadata\":{\"name\":\"e\",\"namespace\":\"d\"},\"addressType\":\"IPv4\"}",
        "{\"kind\":\"Service\",\"apiVersion\":\"serving.knative.dev/v1\","
        "\"metadata\":{\"name\":\"s\",\"namespace\":\"d\"}}",
    };
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        json_t *object = parse(objects[i]);
        projection p;
        char key[PROJECTION_KEY_MAX];
        char err[PROJECTION_ERR_MAX];
        assert_int_equal(projection_of(&p, object, NULL, err, sizeof err), PROJECTION_IGNORED);
        assert_null(p.body);
        assert_int_equal(projection_key_of(key, sizeof key, object, NULL, err, sizeof err),
                         PROJECTION_IGNORED);
        json_decref(object);
    }
}

static void test_list_item_without_kind_is_projected_with_the_kind_given(void **state)
{
    (void)state;
    json_t *object = parse("{\"metadata\":{\"name\":\"n9\"}}");
    projection p;
    char err[PROJECTION_ERR_MAX];
    assert_int_equal(projection_of(&p, object, "Node", err, sizeof err), 0);
    assert_string_equal(p.key, "Node/n9");
    projection_clear(&p);
    json_decref(object);
}

/* ---- rejections ------------------------------------------------------------ */

static void test_every_rejected_field_names_the_object_and_the_field(void **state)
{
    (void)state;
    FILE *file = fopen(DATA_DIR "rejected-objects.ndjson", "r");
    char line[8192];
    int cases = 0;
    assert_non_null(file);
    while (fgets(line, sizeof line, file)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        json_t *entry = parse(line);
        const char *expect = json_string_value(json_object_get(entry, "expect"));
        const json_t *object = json_object_get(entry, "object");
        projection p;
        char err[PROJECTION_ERR_MAX] = "";
        int rc = projection_of(&p, object, NULL, err, sizeof err);
        if (rc != KV_ERR_INVALID || strcmp(err, expect) != 0)
            fail_msg("expected \"%s\", got %d \"%s\"", expect, rc, err);
        assert_null(p.body);
        json_decref(entry);
        cases++;
    }
    fclose(file);
    assert_true(cases >= 40);
}

static void test_deletion_needs_only_the_identity_of_the_object(void **state)
{
    (void)state;
    json_t *object = parse("{\"kind\":\"Service\",\"apiVersion\":\"v1\","
                           "\"metadata\":{\"name\":\"foo\",\"namespace\":\"default\"},"
                           "\"spec\":{\"ports\":[{\"port\":\"http\"}]}}");
    char key[PROJECTION_KEY_MAX];
    char err[PROJECTION_ERR_MAX] = "";
    assert_int_equal(projection_key_of(key, sizeof key, object, NULL, err, sizeof err), 0);
    assert_string_equal(key, "Service/default/foo");
    json_decref(object);

    object = parse("{\"kind\":\"Node\",\"metadata\":{}}");
    assert_int_equal(projection_key_of(key, sizeof key, object, NULL, err, sizeof err),
                     KV_ERR_INVALID);
    assert_string_equal(err, "Node (unnamed): metadata.name is required");
    json_decref(object);
}

static void test_a_name_too_long_for_a_key_is_rejected(void **state)
{
    (void)state;
    char name[600];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    json_t *object = json_pack("{s:s, s:{s:s, s:s}, s:{}}", "kind", "Service", "metadata",
                               "name", name, "namespace", "ns", "spec");
    projection p;
    char err[PROJECTION_ERR_MAX] = "";
    assert_int_equal(projection_of(&p, object, NULL, err, sizeof err), KV_ERR_INVALID);
    assert_non_null(strstr(err, "too long for a stream key"));
    json_decref(object);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_node_projection_keeps_first_internal_ip_per_family_cni_addresses_and_marks),
        cmocka_unit_test(test_node_without_deletion_taint_or_cni_annotations_is_plain),
        cmocka_unit_test(test_node_labels_in_another_order_publish_the_same_body),
        cmocka_unit_test(
            test_lb_service_with_local_policy_health_check_port_and_named_target_port),
        cmocka_unit_test(test_service_defaults_type_protocol_port_name_and_reads_only_local),
        cmocka_unit_test(test_service_with_cluster_policy_is_not_local),
        cmocka_unit_test(test_endpoint_slice_conditions_node_names_and_addressless_endpoint),
        cmocka_unit_test(test_endpoint_slice_with_null_endpoints_and_ports_is_empty),
        cmocka_unit_test(test_other_kinds_and_other_versions_are_ignored),
        cmocka_unit_test(test_list_item_without_kind_is_projected_with_the_kind_given),
        cmocka_unit_test(test_every_rejected_field_names_the_object_and_the_field),
        cmocka_unit_test(test_deletion_needs_only_the_identity_of_the_object),
        cmocka_unit_test(test_a_name_too_long_for_a_key_is_rejected),
    };
    log_init("test_watcher_projection", LOG_INFO);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
