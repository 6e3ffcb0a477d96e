/* Round trips of every proto/ message, and decoders facing hostile input:
 * truncated, mistyped, oversized claims, wrong versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "proto/envelope.h"
#include "proto/k8s.h"
#include "proto/model.h"
#include "proto/status.h"
#include "proto/wire.h"

static void test_envelope_round_trip_keeps_every_field(void **state)
{
    (void)state;
    uint8_t body[] = {1, 2, 3, 0, 255};
    proto_envelope in = {.kind = PROTO_PUT, .epoch = 0xdeadbeefcafe, .seq = 42, .request_id = 7,
                         .credit = 512, .count = 2100, .digest = 0xfedcba9876543210,
                         .stream = "model.admin", .key = "kavi--ns-svc", .body = body,
                         .body_len = sizeof body};
    void *data;
    size_t len;
    assert_int_equal(proto_envelope_encode(&in, &data, &len), 0);
    proto_envelope out;
    assert_int_equal(proto_envelope_decode(&out, data, len), 0);
    assert_int_equal(out.kind, PROTO_PUT);
    assert_true(out.epoch == in.epoch);
    assert_int_equal(out.seq, 42);
    assert_int_equal(out.request_id, 7);
    assert_int_equal(out.credit, 512);
    assert_int_equal(out.count, 2100);
    assert_true(out.digest == in.digest);
    assert_string_equal(out.stream, "model.admin");
    assert_string_equal(out.key, "kavi--ns-svc");
    assert_int_equal(out.body_len, sizeof body);
    assert_memory_equal(out.body, body, sizeof body);
    proto_envelope_clear(&out);
    free(data);
}

static void test_envelope_decoder_rejects_every_truncation(void **state)
{
    (void)state;
    proto_envelope in = {.kind = PROTO_HEARTBEAT, .epoch = 1, .seq = 2, .stream = "k8s"};
    void *data;
    size_t len;
    assert_int_equal(proto_envelope_encode(&in, &data, &len), 0);
    for (size_t cut = 0; cut < len; cut++) {
        proto_envelope out;
        assert_true(proto_envelope_decode(&out, data, cut) < 0);
        assert_null(out.stream);
    }
    free(data);
}

static void test_envelope_with_future_version_is_refused(void **state)
{
    (void)state;
    proto_writer w;
    proto_writer_init(&w);
    pw_map(&w, 5);
    pw_str(&w, "v");
    pw_uint(&w, PROTO_ENVELOPE_VERSION + 1);
    pw_str(&w, "kind");
    pw_uint(&w, PROTO_PUT);
    pw_str(&w, "epoch");
    pw_uint(&w, 1);
    pw_str(&w, "seq");
    pw_uint(&w, 1);
    pw_str(&w, "stream");
    pw_str(&w, "k8s");
    void *data;
    size_t len;
    assert_int_equal(proto_writer_finish(&w, &data, &len), 0);
    proto_envelope out;
    assert_int_equal(proto_envelope_decode(&out, data, len), KV_ERR_VERSION);
    free(data);
}

static void test_hostile_container_header_is_rejected_before_allocation(void **state)
{
    (void)state;
    /* array32 claiming 4 G elements: msgpack-c alone would try ~96 GB. */
    const uint8_t array_bomb[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    const uint8_t map_bomb[] = {0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 'k'};
    proto_envelope env;
    assert_int_equal(proto_envelope_decode(&env, array_bomb, sizeof array_bomb), KV_ERR_INVALID);
    assert_int_equal(proto_envelope_decode(&env, map_bomb, sizeof map_bomb), KV_ERR_INVALID);
    assert_int_equal(proto_msgpack_check(array_bomb, sizeof array_bomb, 32), -1);
}

static void test_nesting_deeper_than_limit_is_rejected(void **state)
{
    (void)state;
    uint8_t deep[64];
    memset(deep, 0x91, sizeof deep); /* 63 nested one-element arrays */
    deep[sizeof deep - 1] = 0xc0;
    assert_int_equal(proto_msgpack_check(deep, sizeof deep, PROTO_MAX_DEPTH), -1);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(proto_unpack(&up, deep, sizeof deep), KV_ERR_INVALID);
    msgpack_unpacked_destroy(&up);
}

static void test_trailing_bytes_after_a_message_are_rejected(void **state)
{
    (void)state;
    const uint8_t two_values[] = {0x80, 0x80};
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(proto_unpack(&up, two_values, sizeof two_values), KV_ERR_INVALID);
    msgpack_unpacked_destroy(&up);
}

static void test_node_round_trip(void **state)
{
    (void)state;
    proto_label labels[] = {{"kubernetes.io/hostname", "w1"}, {"role", "edge"}};
    proto_node in = {.name = "w1", .internal_ipv4 = "10.0.0.3", .calico_ipv4 = "192.168.1.3",
                     .labels = labels, .n_labels = 2, .deleting = true, .to_be_deleted = false};
    void *data;
    size_t len;
    assert_int_equal(proto_node_encode(&in, &data, &len), 0);
    proto_k8s_object out;
    assert_int_equal(proto_k8s_decode(&out, data, len), 0);
    assert_int_equal(out.kind, PROTO_K8S_NODE);
    assert_string_equal(out.node->name, "w1");
    assert_string_equal(out.node->internal_ipv4, "10.0.0.3");
    assert_null(out.node->internal_ipv6);
    assert_string_equal(out.node->calico_ipv4, "192.168.1.3");
    assert_int_equal(out.node->n_labels, 2);
    assert_string_equal(out.node->labels[1].key, "role");
    assert_string_equal(out.node->labels[1].value, "edge");
    assert_true(out.node->deleting);
    assert_false(out.node->to_be_deleted);
    proto_k8s_object_clear(&out);
    free(data);
}

static void test_service_round_trip_with_named_target_port(void **state)
{
    (void)state;
    proto_service_port ports[] = {
        {.name = "http", .protocol = "TCP", .port = 80, .node_port = 31080, .target_port_name = "web"},
        {.name = "dns", .protocol = "UDP", .port = 53, .node_port = 31053, .target_port = 5353},
    };
    proto_service in = {.namespace = "hostrule-ns", .name = "my-svc", .type = "LoadBalancer",
                        .external_traffic_local = true, .health_check_node_port = 32000,
                        .family_ipv6 = true, .load_balancer_ip = "fd00::150", .ports = ports,
                        .n_ports = 2};
    void *data;
    size_t len;
    assert_int_equal(proto_service_encode(&in, &data, &len), 0);
    proto_k8s_object out;
    assert_int_equal(proto_k8s_decode(&out, data, len), 0);
    proto_service *svc = out.service;
    assert_non_null(svc);
    assert_string_equal(svc->namespace, "hostrule-ns");
    assert_string_equal(svc->type, "LoadBalancer");
    assert_null(svc->load_balancer_class);
    assert_true(svc->external_traffic_local);
    assert_int_equal(svc->health_check_node_port, 32000);
    assert_false(svc->family_ipv4);
    assert_true(svc->family_ipv6);
    assert_string_equal(svc->load_balancer_ip, "fd00::150");
    assert_int_equal(svc->n_ports, 2);
    assert_string_equal(svc->ports[0].target_port_name, "web");
    assert_int_equal(svc->ports[0].target_port, 0);
    assert_int_equal(svc->ports[1].target_port, 5353);
    assert_int_equal(svc->ports[1].node_port, 31053);
    proto_k8s_object_clear(&out);
    free(data);
}

static void test_service_round_trip_keeps_both_families_of_a_dual_stack_service(void **state)
{
    (void)state;
    proto_service in = {.namespace = "ns", .name = "dual", .type = "LoadBalancer",
                        .family_ipv4 = true, .family_ipv6 = true};
    void *data;
    size_t len;
    assert_int_equal(proto_service_encode(&in, &data, &len), 0);
    proto_k8s_object out;
    assert_int_equal(proto_k8s_decode(&out, data, len), 0);
    assert_true(out.service->family_ipv4);
    assert_true(out.service->family_ipv6);
    proto_k8s_object_clear(&out);
    free(data);
}

/* A Service body as the watcher wrote it before families were projected,
 * plus `extra` more key/value pairs the caller appends. */
static void write_service_without_families(proto_writer *w, size_t extra)
{
    pw_map(w, 5 + extra);
    pw_str(w, "v");
    pw_uint(w, PROTO_VERSION);
    pw_str(w, "kind");
    pw_uint(w, PROTO_K8S_SERVICE);
    pw_str(w, "ns");
    pw_str(w, "ns");
    pw_str(w, "name");
    pw_str(w, "old");
    pw_str(w, "type");
    pw_str(w, "LoadBalancer");
}

static void test_service_without_families_decodes_as_none_listed(void **state)
{
    (void)state;
    proto_writer w;
    void *data;
    size_t len;
    proto_k8s_object out;
    proto_writer_init(&w);
    write_service_without_families(&w, 0);
    assert_int_equal(proto_writer_finish(&w, &data, &len), 0);
    assert_int_equal(proto_k8s_decode(&out, data, len), 0);
    assert_false(out.service->family_ipv4);
    assert_false(out.service->family_ipv6);
    proto_k8s_object_clear(&out);
    free(data);
}

static void test_service_with_mistyped_family_is_refused(void **state)
{
    (void)state;
    proto_writer w;
    void *data;
    size_t len;
    proto_k8s_object out;
    proto_writer_init(&w);
    write_service_without_families(&w, 1);
    pw_str(&w, "fam6");
    pw_str(&w, "IPv6");
    assert_int_equal(proto_writer_finish(&w, &data, &len), 0);
    assert_int_equal(proto_k8s_decode(&out, data, len), KV_ERR_INVALID);
    assert_null(out.service);
    proto_k8s_object_clear(&out);
    free(data);
}

static void test_endpoint_slice_round_trip_keeps_conditions(void **state)
{
    (void)state;
    proto_slice_port ports[] = {{.name = "", .protocol = "TCP", .port = 8080}};
    proto_endpoint endpoints[] = {
        {.address = "192.168.25.134", .node_name = "k8s-cluster-worker", .ready = false,
         .serving = true, .terminating = true},
        {.address = "192.168.25.135", .node_name = NULL, .ready = true, .serving = true},
    };
    proto_endpoint_slice in = {.namespace = "ns", .name = "s-abc", .service_name = "s",
                               .address_type = "IPv4", .ports = ports, .n_ports = 1,
                               .endpoints = endpoints, .n_endpoints = 2};
    void *data;
    size_t len;
    assert_int_equal(proto_endpoint_slice_encode(&in, &data, &len), 0);
    proto_k8s_object out;
    assert_int_equal(proto_k8s_decode(&out, data, len), 0);
    proto_endpoint_slice *s = out.slice;
    assert_string_equal(s->service_name, "s");
    assert_string_equal(s->ports[0].name, "");
    assert_int_equal(s->n_endpoints, 2);
    assert_false(s->endpoints[0].ready);
    assert_true(s->endpoints[0].serving);
    assert_true(s->endpoints[0].terminating);
    assert_null(s->endpoints[1].node_name);
    proto_k8s_object_clear(&out);
    free(data);
}

static void test_projection_decoder_survives_every_truncation(void **state)
{
    (void)state;
    proto_endpoint endpoints[] = {{.address = "10.1.1.1", .node_name = "n", .ready = true,
                                   .serving = true}};
    proto_endpoint_slice in = {.namespace = "ns", .name = "s", .address_type = "IPv4",
                               .endpoints = endpoints, .n_endpoints = 1};
    void *data;
    size_t len;
    assert_int_equal(proto_endpoint_slice_encode(&in, &data, &len), 0);
    for (size_t cut = 0; cut < len; cut++) {
        proto_k8s_object out;
        assert_true(proto_k8s_decode(&out, data, cut) < 0);
        proto_k8s_object_clear(&out);
    }
    free(data);
}

static void test_model_round_trip_keeps_json_bodies_exactly(void **state)
{
    (void)state;
    json_error_t err;
    json_t *pool = json_loads("{\"name\":\"p\",\"servers\":[{\"ip\":{\"addr\":\"10.0.0.3\","
                              "\"type\":\"V4\"},\"port\":31080,\"enabled\":false,\"ratio\":1.5}],"
                              "\"markers\":[],\"description\":null}",
                              0, &err);
    assert_non_null(pool);
    char *owner = "Service/ns/svc";
    proto_avi_object objects[] = {{.type = "pool", .name = "p", .checksum = "123", .body = pool}};
    proto_model in = {.tenant = "admin", .name = "vs", .owners = &owner, .n_owners = 1,
                      .objects = objects, .n_objects = 1};
    void *data;
    size_t len;
    assert_int_equal(proto_model_encode(&in, &data, &len), 0);
    proto_model *out = NULL;
    assert_int_equal(proto_model_decode(&out, data, len), 0);
    assert_string_equal(out->tenant, "admin");
    assert_string_equal(out->owners[0], "Service/ns/svc");
    assert_string_equal(out->objects[0].checksum, "123");
    assert_true(json_equal(out->objects[0].body, pool));
    proto_model_destroy(&out);
    assert_null(out);
    json_decref(pool);
    free(data);
}

static void test_status_and_progress_round_trip(void **state)
{
    (void)state;
    char *vips[] = {"10.10.10.100"};
    proto_object_status st = {.object = "Service/ns/svc", .tenant = "admin", .vips = vips,
                              .n_vips = 1};
    void *data;
    size_t len;
    assert_int_equal(proto_object_status_encode(&st, &data, &len), 0);
    proto_status out;
    assert_int_equal(proto_status_decode(&out, data, len), 0);
    assert_int_equal(out.type, PROTO_STATUS_OBJECT);
    assert_string_equal(out.object.vips[0], "10.10.10.100");
    assert_null(out.object.error);
    proto_status_clear(&out);
    free(data);

    proto_progress p = {.tenant = "admin", .eos_run = 99, .pending = 2, .failed = 1,
                        .last_error = "Pool object not found!"};
    assert_int_equal(proto_progress_encode(&p, &data, &len), 0);
    assert_int_equal(proto_status_decode(&out, data, len), 0);
    assert_int_equal(out.type, PROTO_STATUS_PROGRESS);
    assert_int_equal(out.progress.eos_run, 99);
    assert_int_equal(out.progress.pending, 2);
    assert_string_equal(out.progress.last_error, "Pool object not found!");
    proto_status_clear(&out);
    free(data);
}

/* Version 2 carries the set the planner published for the end reached and
 * the set applied; a version 1 progress (without them) is refused. */
static void test_progress_carries_the_published_and_applied_sets(void **state)
{
    (void)state;
    proto_progress p = {.tenant = "admin", .eos_run = 7, .published_models = 1000,
                        .published_digest = 0x0123456789abcdefull, .applied_models = 818,
                        .applied_digest = 0xfedcba9876543210ull};
    void *data;
    size_t len;
    proto_status out;
    assert_int_equal(proto_progress_encode(&p, &data, &len), 0);
    assert_int_equal(proto_status_decode(&out, data, len), 0);
    assert_int_equal(out.progress.published_models, 1000);
    assert_true(out.progress.published_digest == 0x0123456789abcdefull);
    assert_int_equal(out.progress.applied_models, 818);
    assert_true(out.progress.applied_digest == 0xfedcba9876543210ull);
    proto_status_clear(&out);
    free(data);

    proto_writer w;
    proto_writer_init(&w);
    pw_map(&w, 5);
    pw_str(&w, "v");
    pw_uint(&w, 1);
    pw_str(&w, "type");
    pw_uint(&w, PROTO_STATUS_PROGRESS);
    pw_str(&w, "tenant");
    pw_str(&w, "admin");
    pw_str(&w, "pending");
    pw_uint(&w, 0);
    pw_str(&w, "failed");
    pw_uint(&w, 0);
    assert_int_equal(proto_writer_finish(&w, &data, &len), 0);
    assert_int_equal(proto_status_decode(&out, data, len), KV_ERR_VERSION);
    free(data);
}

/* Success is the applied set equal to the published one: a count that
 * matches with another digest (a model in another version, or one lost and
 * another applied twice) is not. */
static void test_progress_whose_applied_digest_differs_is_not_applied_all(void **state)
{
    (void)state;
    uint64_t a = proto_model_fingerprint("kavi--ns-a", "body-a", 6);
    uint64_t b = proto_model_fingerprint("kavi--ns-b", "body-b", 6);
    uint64_t b2 = proto_model_fingerprint("kavi--ns-b", "body-B", 6);
    proto_progress p = {.published_models = 2, .published_digest = a + b,
                        .applied_models = 2, .applied_digest = b + a};
    assert_true(proto_progress_applied_all(&p)); /* order does not matter */
    p.applied_digest = a + b2;
    assert_false(proto_progress_applied_all(&p));
    p.applied_models = 1;
    p.applied_digest = a;
    assert_false(proto_progress_applied_all(&p));
    /* Key and body are told apart: moving bytes between them shows. */
    assert_true(proto_model_fingerprint("ab", "c", 1) != proto_model_fingerprint("a", "bc", 2));
}

/* The watcher's end of stream names the run only; the planner's copy adds
 * the models of the stream. */
static void test_eos_round_trip_with_and_without_models(void **state)
{
    (void)state;
    void *data;
    size_t len;
    proto_eos out;
    proto_eos watcher = {.run_id = 42};
    assert_int_equal(proto_eos_encode(&watcher, &data, &len), 0);
    assert_int_equal(proto_eos_decode(&out, data, len), 0);
    assert_true(out.run_id == 42 && !out.has_models);
    free(data);
    proto_eos planner = {.run_id = 42, .has_models = true, .models = 3, .digest = 99};
    assert_int_equal(proto_eos_encode(&planner, &data, &len), 0);
    assert_int_equal(proto_eos_decode(&out, data, len), 0);
    assert_true(out.run_id == 42 && out.has_models && out.models == 3 && out.digest == 99);
    free(data);

    proto_writer w;
    proto_writer_init(&w);
    pw_map(&w, 2);
    pw_str(&w, "v");
    pw_uint(&w, 1);
    pw_str(&w, "run");
    pw_uint(&w, 42);
    assert_int_equal(proto_writer_finish(&w, &data, &len), 0);
    assert_int_equal(proto_eos_decode(&out, data, len), KV_ERR_VERSION);
    free(data);
}

static void test_string_with_embedded_nul_is_rejected(void **state)
{
    (void)state;
    proto_writer w;
    proto_writer_init(&w);
    pw_map(&w, 3);
    pw_str(&w, "v");
    pw_uint(&w, PROTO_VERSION);
    pw_str(&w, "kind");
    pw_uint(&w, PROTO_K8S_NODE);
    pw_str(&w, "name");
    pw_strn(&w, "a\0b", 3);
    void *data;
    size_t len;
    assert_int_equal(proto_writer_finish(&w, &data, &len), 0);
    proto_k8s_object out;
    assert_int_equal(proto_k8s_decode(&out, data, len), KV_ERR_INVALID);
    proto_k8s_object_clear(&out);
    free(data);
}

static void test_k8s_key_forms(void **state)
{
    (void)state;
    char key[64];
    assert_int_equal(proto_k8s_key(key, sizeof key, "Node", NULL, "w1"), 7);
    assert_string_equal(key, "Node/w1");
    proto_k8s_key(key, sizeof key, "Service", "ns", "svc");
    assert_string_equal(key, "Service/ns/svc");
    assert_int_equal(proto_k8s_key(key, 8, "Service", "ns", "svc"), -1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_round_trip_keeps_every_field),
        cmocka_unit_test(test_envelope_decoder_rejects_every_truncation),
        cmocka_unit_test(test_envelope_with_future_version_is_refused),
        cmocka_unit_test(test_hostile_container_header_is_rejected_before_allocation),
        cmocka_unit_test(test_nesting_deeper_than_limit_is_rejected),
        cmocka_unit_test(test_trailing_bytes_after_a_message_are_rejected),
        cmocka_unit_test(test_node_round_trip),
        cmocka_unit_test(test_service_round_trip_with_named_target_port),
        cmocka_unit_test(test_service_round_trip_keeps_both_families_of_a_dual_stack_service),
        cmocka_unit_test(test_service_without_families_decodes_as_none_listed),
        cmocka_unit_test(test_service_with_mistyped_family_is_refused),
        cmocka_unit_test(test_endpoint_slice_round_trip_keeps_conditions),
        cmocka_unit_test(test_projection_decoder_survives_every_truncation),
        cmocka_unit_test(test_model_round_trip_keeps_json_bodies_exactly),
        cmocka_unit_test(test_status_and_progress_round_trip),
        cmocka_unit_test(test_progress_carries_the_published_and_applied_sets),
        cmocka_unit_test(test_progress_whose_applied_digest_differs_is_not_applied_all),
        cmocka_unit_test(test_eos_round_trip_with_and_without_models),
        cmocka_unit_test(test_string_with_embedded_nul_is_rejected),
        cmocka_unit_test(test_k8s_key_forms),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
