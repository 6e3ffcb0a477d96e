/* Projections: Kubernetes objects shaped exactly as the API server returns
 * them (the JSON files in tests/data/replay) → what the planner decodes from the bus.
 * Every kind kavi watches has a fixture here; the API's defaults are checked
 * on the decoded body, so the planner can rely on them.
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
    assert_true(svc->family_ipv4);
    assert_false(svc->family_ipv6);
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
    /* No ipFamilies: none listed; the planner, not the watcher, reads that
     * as IPv4. */
    assert_false(got.service->family_ipv4);
    assert_false(got.service->family_ipv6);
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_service_ip_families_become_a_set_whatever_their_order(void **state)
{
    (void)state;
    static const struct {
        const char *families;
        bool ipv4, ipv6;
    } cases[] = {
        {"[\"IPv6\"]", false, true},
        {"[\"IPv4\"]", true, false},
        {"[\"IPv6\",\"IPv4\"]", true, true},
        {"[\"IPv4\",\"IPv6\"]", true, true},
        {"[]", false, false},
        {"null", false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"kind\":\"Service\",\"metadata\":{\"name\":\"s\",\"namespace\":"
                 "\"ns\"},\"spec\":{\"type\":\"LoadBalancer\",\"ipFamilies\":%s}}",
                 cases[i].families);
        json_t *object = parse(text);
        proto_k8s_object got;
        project(object, "Service/ns/s", &got);
        if (got.service->family_ipv4 != cases[i].ipv4 ||
            got.service->family_ipv6 != cases[i].ipv6)
            fail_msg("ipFamilies %s: got ipv4=%d ipv6=%d", cases[i].families,
                     got.service->family_ipv4, got.service->family_ipv6);
        proto_k8s_object_clear(&got);
        json_decref(object);
    }
}

/* The preferred VIP: AKO's annotation wins over the deprecated field. */
static void test_service_preferred_vip_from_annotation_else_load_balancer_ip(void **state)
{
    (void)state;
    static const struct {
        const char *annotations, *field, *expected;
    } cases[] = {
        {"{\"ako.vmware.com/load-balancer-ip\":\"10.10.10.150\"}", "\"10.10.10.151\"",
         "10.10.10.150"},
        {"{}", "\"10.10.10.151\"", "10.10.10.151"},
        {"{\"ako.vmware.com/load-balancer-ip\":\"fd00::150\"}", "null", "fd00::150"},
        {"{\"ako.vmware.com/load-balancer-ip\":\"\"}", "\"\"", NULL},
        {"{}", "null", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"kind\":\"Service\",\"metadata\":{\"name\":\"s\",\"namespace\":"
                 "\"ns\",\"annotations\":%s},\"spec\":{\"type\":\"LoadBalancer\","
                 "\"loadBalancerIP\":%s}}",
                 cases[i].annotations, cases[i].field);
        json_t *object = parse(text);
        proto_k8s_object got;
        project(object, "Service/ns/s", &got);
        const char *ip = got.service->load_balancer_ip;
        if (cases[i].expected ? !ip || strcmp(ip, cases[i].expected) != 0 : ip != NULL)
            fail_msg("case %zu: preferred VIP %s, expected %s", i, ip ? ip : "(none)",
                     cases[i].expected ? cases[i].expected : "(none)");
        proto_k8s_object_clear(&got);
        json_decref(object);
    }
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

/* ---- Namespace ---------------------------------------------------------------- */

static void test_namespace_keeps_tenant_annotation_and_sorted_labels(void **state)
{
    (void)state;
    json_t *object = load_fixture("namespace-shop.json");
    proto_k8s_object got;
    project(object, "Namespace/shop", &got);
    assert_int_equal(got.kind, PROTO_K8S_NAMESPACE);
    proto_namespace *ns = got.namespace;
    assert_string_equal(ns->name, "shop");
    assert_string_equal(ns->tenant, "payments");
    assert_int_equal(ns->n_labels, 3);
    assert_string_equal(ns->labels[0].key, "env");
    assert_string_equal(ns->labels[1].key, "kubernetes.io/metadata.name");
    assert_string_equal(ns->labels[2].key, "team");
    assert_string_equal(ns->labels[2].value, "payments");
    proto_k8s_object_clear(&got);
    json_decref(object);

    object = parse("{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"d\"}}");
    project(object, "Namespace/d", &got);
    assert_null(got.namespace->tenant);
    assert_int_equal(got.namespace->n_labels, 0);
    proto_k8s_object_clear(&got);
    json_decref(object);
}

/* ---- Secret --------------------------------------------------------------------- */

static void assert_pem(const char *pem, const char *label, size_t len)
{
    char begin[64], end[64];
    snprintf(begin, sizeof begin, "-----BEGIN %s-----\n", label);
    snprintf(end, sizeof end, "-----END %s-----\n", label);
    assert_non_null(pem);
    assert_int_equal(strlen(pem), len);
    assert_memory_equal(pem, begin, strlen(begin));
    assert_string_equal(pem + len - strlen(end), end);
}

static void test_tls_secret_is_decoded_from_base64_with_its_alt_certificate(void **state)
{
    (void)state;
    json_t *object = load_fixture("secret-tls.json");
    proto_k8s_object got;
    project(object, "Secret/shop/shop-tls", &got);
    assert_int_equal(got.kind, PROTO_K8S_SECRET);
    proto_secret *secret = got.secret;
    assert_string_equal(secret->namespace, "shop");
    assert_string_equal(secret->name, "shop-tls");
    /* Sizes of the PEM files the fixture was made from (openssl, P-256). */
    assert_pem(secret->cert, "CERTIFICATE", 599);
    assert_pem(secret->key, "PRIVATE KEY", 241);
    assert_pem(secret->alt_cert, "CERTIFICATE", 607);
    assert_pem(secret->alt_key, "PRIVATE KEY", 241);
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_secret_base64_padding_line_breaks_and_string_data(void **state)
{
    (void)state;
    static const struct {
        const char *encoded;
        const char *decoded;
    } cases[] = {
        {"", ""}, {"YQ==", "a"}, {"YWI=", "ab"}, {"YWJj", "abc"},
        {"YWJj\r\nZGVm\n", "abcdef"}, {"LS0tLS0K", "-----\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *object = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:{s:s, s:s}}", "kind",
                                   "Secret", "apiVersion", "v1", "metadata", "name", "t",
                                   "namespace", "ns", "type", "kubernetes.io/tls", "data",
                                   "tls.crt", cases[i].encoded, "tls.key", "YQ==");
        proto_secret *secret = NULL;
        char err[PROJECTION_ERR_MAX] = "";
        if (projection_secret(&secret, object, err, sizeof err) != 0)
            fail_msg("\"%s\": %s", cases[i].encoded, err);
        assert_string_equal(secret->cert, cases[i].decoded);
        assert_null(secret->alt_cert);
        proto_secret_destroy(&secret);
        json_decref(object);
    }

    /* A manifest may carry stringData; the API server would merge it over
     * data, so it wins here too. */
    json_t *object = parse("{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
                           "\"t\",\"namespace\":\"ns\"},\"type\":\"kubernetes.io/tls\","
                           "\"data\":{\"tls.crt\":\"YQ==\",\"tls.key\":\"YQ==\"},"
                           "\"stringData\":{\"tls.key\":\"plain key\"}}");
    proto_k8s_object got;
    project(object, "Secret/ns/t", &got);
    assert_string_equal(got.secret->cert, "a");
    assert_string_equal(got.secret->key, "plain key");
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_secrets_of_other_types_are_ignored_on_every_event(void **state)
{
    (void)state;
    static const char *const objects[] = {
        "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"s\",\"namespace\":"
        "\"d\"},\"type\":\"Opaque\",\"data\":{\"password\":\"aHVudGVyMg==\"}}",
        "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"s\",\"namespace\":"
        "\"d\"},\"data\":{\"tls.crt\":\"YQ==\",\"tls.key\":\"YQ==\"}}",
        "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"s\",\"namespace\":"
        "\"d\"},\"type\":\"kubernetes.io/service-account-token\"}",
    };
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        json_t *object = parse(objects[i]);
        projection p;
        proto_secret *secret = NULL;
        char key[PROJECTION_KEY_MAX];
        char err[PROJECTION_ERR_MAX] = "";
        assert_int_equal(projection_of(&p, object, NULL, err, sizeof err), PROJECTION_IGNORED);
        assert_null(p.body);
        assert_int_equal(projection_key_of(key, sizeof key, object, NULL, err, sizeof err),
                         PROJECTION_IGNORED);
        assert_int_equal(projection_secret(&secret, object, err, sizeof err),
                         PROJECTION_IGNORED);
        assert_null(secret);
        json_decref(object);
    }
}

/* What of the fixture's key material could leak: its base64 and its PEM. */
static void assert_no_key_material(const char *text)
{
    static const char *const leaks[] = {"LS0tLS1CRUdJT", "BEGIN", "PRIVATE KEY", "MIG",
                                        "ROUTEKEYMATERIAL", "aHVudGVyMg"};
    for (size_t i = 0; i < sizeof leaks / sizeof leaks[0]; i++)
        if (strstr(text, leaks[i]))
            fail_msg("key material \"%s\" in: %s", leaks[i], text);
}

static void test_secret_and_route_key_material_never_reaches_logs_or_errors(void **state)
{
    (void)state;
    json_t *good = load_fixture("secret-tls.json");
    json_t *route = load_fixture("route-shop-reencrypt.json");
    json_t *bad_base64 = json_deep_copy(good);
    json_t *nul_byte = json_deep_copy(good);
    json_t *no_key = json_deep_copy(good);
    json_t *bad_route = json_deep_copy(route);
    json_t *opaque = parse("{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
                           "\"s\",\"namespace\":\"d\"},\"type\":\"Opaque\",\"data\":"
                           "{\"password\":\"aHVudGVyMg==\"}}");
    json_t *data = json_object_get(bad_base64, "data");
    /* Valid base64 of the key, broken by one character at its end. */
    char *broken = strdup(json_string_value(json_object_get(data, "tls.key")));
    broken[strlen(broken) - 3] = '*';
    json_object_set_new(data, "tls.key", json_string(broken));
    free(broken);
    json_object_set_new(json_object_get(nul_byte, "data"), "tls.crt",
                        json_string("LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tAA=="));
    json_object_del(json_object_get(no_key, "data"), "tls.key");
    json_object_set_new(json_object_get(json_object_get(bad_route, "spec"), "tls"),
                        "termination", json_integer(1));

    const json_t *objects[] = {good, bad_base64, nul_byte, no_key, route, bad_route, opaque};
    log_set_level(LOG_DEBUG);
    capture_begin();
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        projection p;
        char key[PROJECTION_KEY_MAX];
        char err[PROJECTION_ERR_MAX] = "";
        int rc = projection_of(&p, objects[i], NULL, err, sizeof err);
        /* What the watcher does with a rejection: one warning line. */
        if (rc < 0)
            log_warn("%s; event skipped", err);
        projection_clear(&p);
        projection_key_of(key, sizeof key, objects[i], NULL, err, sizeof err);
    }
    char *log = capture_end();
    log_set_level(LOG_INFO);
    assert_non_null(strstr(log, "Secret shop/shop-tls: data[\"tls.key\"] is not valid base64"));
    assert_non_null(strstr(log, "Secret shop/shop-tls: data[\"tls.crt\"] is not PEM text"));
    assert_non_null(strstr(log, "Secret shop/shop-tls: data[\"tls.key\"] is required"));
    assert_non_null(strstr(log, "Route shop/shop: spec.tls.termination must be a string"));
    assert_non_null(strstr(log, "ignored Secret d/s of type Opaque"));
    assert_no_key_material(log);
    free(log);
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++)
        json_decref((json_t *)objects[i]);
}

/* ---- Ingress, IngressClass ------------------------------------------------------------ */

static void test_ingress_rules_paths_backends_tls_and_default_backend(void **state)
{
    (void)state;
    json_t *object = load_fixture("ingress-shop.json");
    proto_k8s_object got;
    project(object, "Ingress/shop/shop", &got);
    assert_int_equal(got.kind, PROTO_K8S_INGRESS);
    proto_ingress *ing = got.ingress;
    assert_string_equal(ing->namespace, "shop");
    assert_string_equal(ing->class_name, "avi-lb");
    assert_string_equal(ing->class_annotation, "avi");
    assert_string_equal(ing->default_backend.service, "shop-default");
    assert_int_equal(ing->default_backend.port, 8080);
    assert_null(ing->default_backend.port_name);

    assert_int_equal(ing->n_rules, 3);
    const proto_ingress_rule *rule = &ing->rules[0];
    assert_string_equal(rule->host, "shop.example.com");
    assert_int_equal(rule->n_paths, 3);
    assert_string_equal(rule->paths[0].path, "/cart");
    assert_string_equal(rule->paths[0].path_type, "Prefix");
    assert_string_equal(rule->paths[0].backend.service, "cart");
    assert_int_equal(rule->paths[0].backend.port, 80);
    assert_string_equal(rule->paths[1].path_type, "Exact");
    assert_string_equal(rule->paths[1].backend.service, "checkout");
    assert_int_equal(rule->paths[1].backend.port, 0);
    assert_string_equal(rule->paths[1].backend.port_name, "http");
    /* A resource backend is kept as a path no Service serves. */
    assert_string_equal(rule->paths[2].path, "/static");
    assert_null(rule->paths[2].backend.service);

    assert_string_equal(ing->rules[1].host, ""); /* no host: every host */
    assert_string_equal(ing->rules[1].paths[0].backend.service, "shop-web");
    assert_string_equal(ing->rules[2].host, "api.shop.example.com");
    assert_int_equal(ing->rules[2].n_paths, 0);

    assert_int_equal(ing->n_tls, 2);
    assert_int_equal(ing->tls[0].n_hosts, 2);
    assert_string_equal(ing->tls[0].hosts[1], "www.shop.example.com");
    assert_string_equal(ing->tls[0].secret_name, "shop-tls");
    assert_string_equal(ing->tls[1].hosts[0], "api.shop.example.com");
    assert_null(ing->tls[1].secret_name);
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_ingress_defaults_path_type_and_keeps_unset_path_and_class_empty(void **state)
{
    (void)state;
    json_t *object = parse("{\"kind\":\"Ingress\",\"apiVersion\":\"networking.k8s.io/v1\","
                           "\"metadata\":{\"name\":\"i\",\"namespace\":\"ns\"},\"spec\":{"
                           "\"rules\":[{\"host\":\"a.example.com\",\"http\":{\"paths\":[{"
                           "\"backend\":{\"service\":{\"name\":\"s\",\"port\":{\"name\":"
                           "\"web\",\"number\":null}}}}]}}],\"tls\":null}}");
    proto_k8s_object got;
    project(object, "Ingress/ns/i", &got);
    assert_null(got.ingress->class_name);
    assert_null(got.ingress->class_annotation);
    assert_null(got.ingress->default_backend.service);
    const proto_ingress_path *path = &got.ingress->rules[0].paths[0];
    assert_string_equal(path->path, "");
    assert_string_equal(path->path_type, "ImplementationSpecific");
    assert_string_equal(path->backend.port_name, "web");
    assert_int_equal(got.ingress->n_tls, 0);
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_ingress_class_is_default_only_when_annotated_exactly_true(void **state)
{
    (void)state;
    json_t *object = load_fixture("ingressclass-avi-lb.json");
    proto_k8s_object got;
    project(object, "IngressClass/avi-lb", &got);
    assert_int_equal(got.kind, PROTO_K8S_INGRESS_CLASS);
    assert_string_equal(got.ingress_class->name, "avi-lb");
    assert_string_equal(got.ingress_class->controller, "ako.vmware.com/avi-lb");
    assert_true(got.ingress_class->is_default);
    proto_k8s_object_clear(&got);
    json_decref(object);

    static const char *const not_default[] = {"\"True\"", "\"yes\"", "\"\"", "null"};
    for (size_t i = 0; i < sizeof not_default / sizeof not_default[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"kind\":\"IngressClass\",\"apiVersion\":\"networking.k8s.io/v1\","
                 "\"metadata\":{\"name\":\"c\",\"annotations\":{"
                 "\"ingressclass.kubernetes.io/is-default-class\":%s}},"
                 "\"spec\":{\"controller\":\"example.com/other\"}}",
                 not_default[i]);
        object = parse(text);
        project(object, "IngressClass/c", &got);
        assert_false(got.ingress_class->is_default);
        proto_k8s_object_clear(&got);
        json_decref(object);
    }
}

/* ---- Route ----------------------------------------------------------------------------- */

static void test_route_reencrypt_with_weighted_backends_and_named_target_port(void **state)
{
    (void)state;
    json_t *object = load_fixture("route-shop-reencrypt.json");
    proto_k8s_object got;
    project(object, "Route/shop/shop", &got);
    assert_int_equal(got.kind, PROTO_K8S_ROUTE);
    proto_route *route = got.route;
    assert_string_equal(route->host, "shop.apps.example.com");
    assert_string_equal(route->path, "/store");
    assert_string_equal(route->to.kind, "Service");
    assert_string_equal(route->to.name, "shop-v1");
    assert_int_equal(route->to.weight, 80);
    assert_int_equal(route->n_alternate_backends, 2);
    assert_string_equal(route->alternate_backends[0].name, "shop-v2");
    assert_int_equal(route->alternate_backends[0].weight, 20);
    /* Unset kind and weight: Service, 100. */
    assert_string_equal(route->alternate_backends[1].kind, "Service");
    assert_string_equal(route->alternate_backends[1].name, "shop-canary");
    assert_int_equal(route->alternate_backends[1].weight, 100);
    assert_int_equal(route->target_port, 0);
    assert_string_equal(route->target_port_name, "https");
    assert_string_equal(route->wildcard_policy, "None");
    assert_string_equal(route->tls_termination, "reencrypt");
    assert_string_equal(route->tls_insecure_edge_policy, "Redirect");
    assert_non_null(strstr(route->tls_certificate, "MIIBroute"));
    assert_non_null(strstr(route->tls_key, "ROUTEKEYMATERIAL"));
    assert_non_null(strstr(route->tls_ca_certificate, "MIIBca"));
    assert_non_null(strstr(route->tls_destination_ca_certificate, "MIIBdest"));
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_route_defaults_without_tls_and_with_numeric_target_port(void **state)
{
    (void)state;
    json_t *object = parse("{\"kind\":\"Route\",\"apiVersion\":\"route.openshift.io/v1\","
                           "\"metadata\":{\"name\":\"r\",\"namespace\":\"ns\"},\"spec\":{"
                           "\"to\":{\"name\":\"s\",\"weight\":0},\"port\":{\"targetPort\":"
                           "8443}}}");
    proto_k8s_object got;
    project(object, "Route/ns/r", &got);
    proto_route *route = got.route;
    assert_string_equal(route->host, "");
    assert_string_equal(route->path, "");
    assert_string_equal(route->to.kind, "Service");
    assert_int_equal(route->to.weight, 0); /* 0 is a weight: no traffic */
    assert_int_equal(route->n_alternate_backends, 0);
    assert_int_equal(route->target_port, 8443);
    assert_null(route->target_port_name);
    assert_string_equal(route->wildcard_policy, "None");
    assert_null(route->tls_termination);
    assert_null(route->tls_insecure_edge_policy);
    assert_null(route->tls_key);
    proto_k8s_object_clear(&got);
    json_decref(object);

    object = parse("{\"kind\":\"Route\",\"apiVersion\":\"route.openshift.io/v1\","
                   "\"metadata\":{\"name\":\"e\",\"namespace\":\"ns\"},\"spec\":{"
                   "\"host\":\"e.example.com\",\"to\":{\"name\":\"s\"},"
                   "\"tls\":{\"termination\":\"edge\"},\"wildcardPolicy\":\"Subdomain\"}}");
    project(object, "Route/ns/e", &got);
    assert_int_equal(got.route->to.weight, 100);
    assert_string_equal(got.route->tls_termination, "edge");
    assert_string_equal(got.route->tls_insecure_edge_policy, "None");
    assert_null(got.route->tls_certificate);
    assert_string_equal(got.route->wildcard_policy, "Subdomain");
    proto_k8s_object_clear(&got);
    json_decref(object);
}

/* ---- Gateway API ------------------------------------------------------------------------- */

static void test_gateway_class_keeps_its_controller_name(void **state)
{
    (void)state;
    json_t *object = load_fixture("gatewayclass-avi-lb.json");
    proto_k8s_object got;
    project(object, "GatewayClass/avi-lb", &got);
    assert_int_equal(got.kind, PROTO_K8S_GATEWAY_CLASS);
    assert_string_equal(got.gateway_class->name, "avi-lb");
    assert_string_equal(got.gateway_class->controller_name, "ako.vmware.com/avi-lb");
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_gateway_listeners_certificate_refs_and_addresses_with_defaults(void **state)
{
    (void)state;
    json_t *object = load_fixture("gateway-shop.json");
    proto_k8s_object got;
    project(object, "Gateway/shop/shop-gw", &got);
    assert_int_equal(got.kind, PROTO_K8S_GATEWAY);
    proto_gateway *gw = got.gateway;
    assert_string_equal(gw->class_name, "avi-lb");
    assert_int_equal(gw->n_listeners, 3);

    const proto_gateway_listener *l = &gw->listeners[0];
    assert_string_equal(l->name, "http");
    assert_string_equal(l->hostname, "*.shop.example.com");
    assert_int_equal(l->port, 80);
    assert_string_equal(l->protocol, "HTTP");
    assert_null(l->tls_mode);
    assert_int_equal(l->n_certificate_refs, 0);
    assert_string_equal(l->allowed_routes_from, "All");

    l = &gw->listeners[1];
    assert_string_equal(l->tls_mode, "Terminate");
    assert_string_equal(l->allowed_routes_from, "Same");
    assert_int_equal(l->n_certificate_refs, 2);
    assert_string_equal(l->certificate_refs[0].group, "");
    assert_string_equal(l->certificate_refs[0].kind, "Secret");
    assert_string_equal(l->certificate_refs[0].namespace, "shop");
    assert_string_equal(l->certificate_refs[0].name, "shop-tls");
    /* Unset group, kind: core Secret; namespace as written. */
    assert_string_equal(l->certificate_refs[1].group, "");
    assert_string_equal(l->certificate_refs[1].kind, "Secret");
    assert_string_equal(l->certificate_refs[1].namespace, "certs");

    /* An empty tls block: Terminate; no hostname, no allowedRoutes: Same. */
    l = &gw->listeners[2];
    assert_null(l->hostname);
    assert_string_equal(l->tls_mode, "Terminate");
    assert_string_equal(l->allowed_routes_from, "Same");

    assert_int_equal(gw->n_addresses, 2);
    assert_string_equal(gw->addresses[0].value, "10.50.0.40");
    assert_string_equal(gw->addresses[1].type, "IPAddress");
    assert_string_equal(gw->addresses[1].value, "10.50.0.41");
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_http_route_parent_refs_matches_and_backend_refs_with_defaults(void **state)
{
    (void)state;
    json_t *object = load_fixture("httproute-shop.json");
    proto_k8s_object got;
    project(object, "HTTPRoute/shop/shop-route", &got);
    assert_int_equal(got.kind, PROTO_K8S_HTTP_ROUTE);
    proto_http_route *route = got.http_route;

    assert_int_equal(route->n_parent_refs, 2);
    const proto_parent_ref *parent = &route->parent_refs[0];
    assert_string_equal(parent->group, "gateway.networking.k8s.io");
    assert_string_equal(parent->kind, "Gateway");
    assert_string_equal(parent->namespace, "shop"); /* the route's own */
    assert_string_equal(parent->name, "shop-gw");
    assert_string_equal(parent->section_name, "https");
    assert_int_equal(parent->port, 0);
    parent = &route->parent_refs[1];
    assert_string_equal(parent->namespace, "infra");
    assert_null(parent->section_name);
    assert_int_equal(parent->port, 443);

    assert_int_equal(route->n_hostnames, 2);
    assert_string_equal(route->hostnames[0], "shop.example.com");

    assert_int_equal(route->n_rules, 2);
    const proto_http_rule *rule = &route->rules[0];
    assert_string_equal(rule->name, "cart");
    assert_int_equal(rule->n_matches, 3);
    const proto_http_match *match = &rule->matches[0];
    assert_string_equal(match->path_type, "PathPrefix");
    assert_string_equal(match->path_value, "/cart");
    assert_string_equal(match->method, "GET");
    assert_int_equal(match->n_headers, 2);
    assert_string_equal(match->headers[0].type, "Exact");
    assert_string_equal(match->headers[0].name, "x-canary");
    assert_string_equal(match->headers[0].value, "true");
    assert_string_equal(match->headers[1].type, "RegularExpression");
    assert_string_equal(rule->matches[1].path_type, "Exact");
    assert_string_equal(rule->matches[1].path_value, "/cart/checkout");
    assert_null(rule->matches[1].method);
    /* A match with headers only still has the default path. */
    assert_string_equal(rule->matches[2].path_type, "PathPrefix");
    assert_string_equal(rule->matches[2].path_value, "/");
    assert_int_equal(rule->matches[2].n_headers, 1);

    assert_int_equal(rule->n_backend_refs, 2);
    const proto_backend_ref *backend = &rule->backend_refs[0];
    assert_string_equal(backend->group, "");
    assert_string_equal(backend->kind, "Service");
    assert_string_equal(backend->namespace, "shop");
    assert_string_equal(backend->name, "cart-v1");
    assert_int_equal(backend->port, 80);
    assert_int_equal(backend->weight, 90);
    assert_string_equal(rule->backend_refs[1].namespace, "shop-canary");
    assert_int_equal(rule->backend_refs[1].port, 8080);

    /* The second rule: no name, no matches (PathPrefix "/"), weight 1. */
    rule = &route->rules[1];
    assert_null(rule->name);
    assert_int_equal(rule->n_matches, 1);
    assert_string_equal(rule->matches[0].path_type, "PathPrefix");
    assert_string_equal(rule->matches[0].path_value, "/");
    assert_int_equal(rule->backend_refs[0].weight, 1);
    proto_k8s_object_clear(&got);
    json_decref(object);
}

static void test_http_route_without_rules_has_one_path_prefix_root_rule(void **state)
{
    (void)state;
    static const char *const specs[] = {"{}", "{\"rules\":null}", "{\"rules\":[]}",
                                        "{\"rules\":[{\"matches\":[{\"path\":{}}]}]}"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"kind\":\"HTTPRoute\",\"apiVersion\":\"gateway.networking.k8s.io/v1\","
                 "\"metadata\":{\"name\":\"r\",\"namespace\":\"ns\"},\"spec\":%s}",
                 specs[i]);
        json_t *object = parse(text);
        proto_k8s_object got;
        project(object, "HTTPRoute/ns/r", &got);
        proto_http_route *route = got.http_route;
        assert_int_equal(route->n_parent_refs, 0);
        assert_int_equal(route->n_hostnames, 0);
        assert_int_equal(route->n_rules, 1);
        assert_int_equal(route->rules[0].n_matches, 1);
        assert_string_equal(route->rules[0].matches[0].path_type, "PathPrefix");
        assert_string_equal(route->rules[0].matches[0].path_value, "/");
        assert_int_equal(route->rules[0].n_backend_refs, 0);
        proto_k8s_object_clear(&got);
        json_decref(object);
    }
}

static void test_new_kinds_of_other_api_versions_are_ignored(void **state)
{
    (void)state;
    static const char *const objects[] = {
        "{\"kind\":\"Ingress\",\"apiVersion\":\"extensions/v1beta1\",\"metadata\":{\"name\":"
        "\"i\",\"namespace\":\"d\"},\"spec\":{}}",
        "{\"kind\":\"Ingress\",\"apiVersion\":\"networking.k8s.io/v1beta1\",\"metadata\":{"
        "\"name\":\"i\",\"namespace\":\"d\"},\"spec\":{}}",
        "{\"kind\":\"Route\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"r\",\"namespace\":"
        "\"d\"},\"spec\":{}}",
        "{\"kind\":\"HTTPRoute\",\"apiVersion\":\"gateway.networking.k8s.io/v1beta1\","
        "\"metadata\":{\"name\":\"h\",\"namespace\":\"d\"},\"spec\":{}}",
        "{\"kind\":\"Gateway\",\"apiVersion\":\"gateway.networking.k8s.io/v1alpha2\","
        "\"metadata\":{\"name\":\"g\",\"namespace\":\"d\"},\"spec\":{}}",
        "{\"kind\":\"GatewayClass\",\"apiVersion\":\"gateway.networking.k8s.io/v1beta1\","
        "\"metadata\":{\"name\":\"g\"},\"spec\":{}}",
        "{\"kind\":\"IngressClass\",\"apiVersion\":\"networking.k8s.io/v1beta1\","
        "\"metadata\":{\"name\":\"c\"},\"spec\":{}}",
        "{\"kind\":\"TLSRoute\",\"apiVersion\":\"gateway.networking.k8s.io/v1alpha2\","
        "\"metadata\":{\"name\":\"t\",\"namespace\":\"d\"},\"spec\":{}}",
    };
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        json_t *object = parse(objects[i]);
        projection p;
        char err[PROJECTION_ERR_MAX];
        assert_int_equal(projection_of(&p, object, NULL, err, sizeof err), PROJECTION_IGNORED);
        assert_null(p.body);
        json_decref(object);
    }
}

static void test_keys_of_every_new_kind_for_deletions_and_list_items(void **state)
{
    (void)state;
    static const struct {
        const char *kind;
        const char *object;
        const char *key;
    } cases[] = {
        {"Namespace", "{\"metadata\":{\"name\":\"shop\"}}", "Namespace/shop"},
        {"Secret", "{\"metadata\":{\"name\":\"t\",\"namespace\":\"shop\"},"
                   "\"type\":\"kubernetes.io/tls\"}", "Secret/shop/t"},
        {"Ingress", "{\"metadata\":{\"name\":\"i\",\"namespace\":\"shop\"}}",
         "Ingress/shop/i"},
        {"IngressClass", "{\"metadata\":{\"name\":\"avi-lb\"}}", "IngressClass/avi-lb"},
        {"Route", "{\"metadata\":{\"name\":\"r\",\"namespace\":\"shop\"}}", "Route/shop/r"},
        {"GatewayClass", "{\"metadata\":{\"name\":\"avi-lb\"}}", "GatewayClass/avi-lb"},
        {"Gateway", "{\"metadata\":{\"name\":\"g\",\"namespace\":\"shop\"}}",
         "Gateway/shop/g"},
        {"HTTPRoute", "{\"metadata\":{\"name\":\"h\",\"namespace\":\"shop\"}}",
         "HTTPRoute/shop/h"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *object = parse(cases[i].object);
        char key[PROJECTION_KEY_MAX];
        char err[PROJECTION_ERR_MAX] = "";
        if (projection_key_of(key, sizeof key, object, cases[i].kind, err, sizeof err) != 0)
            fail_msg("%s: %s", cases[i].kind, err);
        assert_string_equal(key, cases[i].key);
        json_decref(object);
    }
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

static void test_a_field_path_too_long_for_the_line_is_cut_visibly(void **state)
{
    (void)state;
    char key[400];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    json_t *object = json_pack("{s:s, s:s, s:{s:s, s:{s:i}}}", "kind", "Namespace",
                               "apiVersion", "v1", "metadata", "name", "shop", "labels", key, 1);
    projection p;
    char err[PROJECTION_ERR_MAX] = "";
    assert_int_equal(projection_of(&p, object, NULL, err, sizeof err), KV_ERR_INVALID);
    assert_non_null(strstr(err, "Namespace shop: metadata.labels.kkkk"));
    assert_non_null(strstr(err, "kkk... must be a string"));
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
        cmocka_unit_test(test_service_preferred_vip_from_annotation_else_load_balancer_ip),
        cmocka_unit_test(test_service_with_cluster_policy_is_not_local),
        cmocka_unit_test(test_service_ip_families_become_a_set_whatever_their_order),
        cmocka_unit_test(test_endpoint_slice_conditions_node_names_and_addressless_endpoint),
        cmocka_unit_test(test_endpoint_slice_with_null_endpoints_and_ports_is_empty),
        cmocka_unit_test(test_namespace_keeps_tenant_annotation_and_sorted_labels),
        cmocka_unit_test(test_tls_secret_is_decoded_from_base64_with_its_alt_certificate),
        cmocka_unit_test(test_secret_base64_padding_line_breaks_and_string_data),
        cmocka_unit_test(test_secrets_of_other_types_are_ignored_on_every_event),
        cmocka_unit_test(test_secret_and_route_key_material_never_reaches_logs_or_errors),
        cmocka_unit_test(test_ingress_rules_paths_backends_tls_and_default_backend),
        cmocka_unit_test(test_ingress_defaults_path_type_and_keeps_unset_path_and_class_empty),
        cmocka_unit_test(test_ingress_class_is_default_only_when_annotated_exactly_true),
        cmocka_unit_test(test_route_reencrypt_with_weighted_backends_and_named_target_port),
        cmocka_unit_test(test_route_defaults_without_tls_and_with_numeric_target_port),
        cmocka_unit_test(test_gateway_class_keeps_its_controller_name),
        cmocka_unit_test(test_gateway_listeners_certificate_refs_and_addresses_with_defaults),
        cmocka_unit_test(test_http_route_parent_refs_matches_and_backend_refs_with_defaults),
        cmocka_unit_test(test_http_route_without_rules_has_one_path_prefix_root_rule),
        cmocka_unit_test(test_new_kinds_of_other_api_versions_are_ignored),
        cmocka_unit_test(test_keys_of_every_new_kind_for_deletions_and_list_items),
        cmocka_unit_test(test_other_kinds_and_other_versions_are_ignored),
        cmocka_unit_test(test_list_item_without_kind_is_projected_with_the_kind_given),
        cmocka_unit_test(test_every_rejected_field_names_the_object_and_the_field),
        cmocka_unit_test(test_deletion_needs_only_the_identity_of_the_object),
        cmocka_unit_test(test_a_name_too_long_for_a_key_is_rejected),
        cmocka_unit_test(test_a_field_path_too_long_for_the_line_is_cut_visibly),
    };
    log_init("test_watcher_projection", LOG_INFO);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
