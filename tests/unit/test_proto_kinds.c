/* The projections of Namespace, Secret, Ingress, IngressClass, Route,
 * GatewayClass, Gateway and HTTPRoute on the wire: round trips that check
 * every field, and decoders facing hostile input — every truncation, every
 * byte flipped, counts past the hard caps, missing and mistyped fields,
 * oversized key material. The samples double as the fuzz seed corpus:
 * KAVI_WRITE_CORPUS=1 writes them to tests/fuzz/corpus/, and
 * test_fuzz_corpus_holds_a_decodable_sample_of_every_new_kind keeps the
 * committed bytes decodable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "proto/envelope.h"
#include "proto/k8s.h"
#include "proto/wire.h"

#define CORPUS_DIR "tests/fuzz/corpus/"

/* ---- samples ------------------------------------------------------------- */

static int encode_namespace_sample(void **data, size_t *len)
{
    proto_label labels[] = {{"env", "prod"}, {"team", "payments"}};
    proto_namespace ns = {.name = "shop", .tenant = "payments", .labels = labels,
                          .n_labels = 2};
    return proto_namespace_encode(&ns, data, len);
}

static int encode_secret_sample(void **data, size_t *len)
{
    proto_secret secret = {
        .namespace = "shop", .name = "shop-tls",
        .cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        .key = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n",
        .alt_cert = "-----BEGIN CERTIFICATE-----\nALT\n-----END CERTIFICATE-----\n"};
    return proto_secret_encode(&secret, data, len);
}

static int encode_ingress_sample(void **data, size_t *len)
{
    proto_ingress_path paths[] = {
        {.path = "/cart", .path_type = "Prefix",
         .backend = {.service = "cart", .port = 80}},
        {.path = "", .path_type = "ImplementationSpecific",
         .backend = {.service = "web", .port_name = "http"}},
        {.path = "/static", .path_type = "Exact", .backend = {0}},
    };
    proto_ingress_rule rules[] = {
        {.host = "shop.example.com", .paths = paths, .n_paths = 3},
        {.host = ""},
    };
    char *hosts[] = {"shop.example.com", "www.shop.example.com"};
    proto_ingress_tls tls[] = {{.hosts = hosts, .n_hosts = 2, .secret_name = "shop-tls"},
                               {.hosts = NULL, .n_hosts = 0, .secret_name = NULL}};
    proto_ingress ing = {.namespace = "shop", .name = "shop", .class_name = "avi-lb",
                         .default_backend = {.service = "default", .port = 8080},
                         .rules = rules, .n_rules = 2, .tls = tls, .n_tls = 2};
    return proto_ingress_encode(&ing, data, len);
}

static int encode_ingress_class_sample(void **data, size_t *len)
{
    proto_ingress_class cls = {.name = "avi-lb", .controller = "ako.vmware.com/avi-lb",
                               .is_default = true};
    return proto_ingress_class_encode(&cls, data, len);
}

static int encode_route_sample(void **data, size_t *len)
{
    proto_route_backend alt[] = {{.kind = "Service", .name = "shop-v2", .weight = 20},
                                 {.kind = "Service", .name = "shop-v3", .weight = 0}};
    proto_route route = {
        .namespace = "shop", .name = "shop", .host = "shop.apps.example.com", .path = "/store",
        .to = {.kind = "Service", .name = "shop-v1", .weight = 80},
        .alternate_backends = alt, .n_alternate_backends = 2,
        .target_port_name = "https", .wildcard_policy = "None",
        .tls_termination = "reencrypt", .tls_certificate = "CERT", .tls_key = "KEY",
        .tls_ca_certificate = "CA", .tls_destination_ca_certificate = "DESTCA",
        .tls_insecure_edge_policy = "Redirect"};
    return proto_route_encode(&route, data, len);
}

static int encode_gateway_class_sample(void **data, size_t *len)
{
    proto_gateway_class cls = {.name = "avi-lb", .controller_name = "ako.vmware.com/avi-lb"};
    return proto_gateway_class_encode(&cls, data, len);
}

static int encode_gateway_sample(void **data, size_t *len)
{
    proto_gateway_cert_ref certs[] = {
        {.group = "", .kind = "Secret", .namespace = "shop", .name = "shop-tls"},
        {.group = "", .kind = "Secret", .namespace = "certs", .name = "shared"},
    };
    proto_gateway_listener listeners[] = {
        {.name = "http", .hostname = "*.shop.example.com", .port = 80, .protocol = "HTTP",
         .allowed_routes_from = "All"},
        {.name = "https", .port = 443, .protocol = "HTTPS", .tls_mode = "Terminate",
         .certificate_refs = certs, .n_certificate_refs = 2, .allowed_routes_from = "Same"},
    };
    proto_gateway_address addresses[] = {{.type = "IPAddress", .value = "10.50.0.40"}};
    proto_gateway gw = {.namespace = "shop", .name = "shop-gw", .class_name = "avi-lb",
                        .listeners = listeners, .n_listeners = 2, .addresses = addresses,
                        .n_addresses = 1};
    return proto_gateway_encode(&gw, data, len);
}

static int encode_http_route_sample(void **data, size_t *len)
{
    proto_parent_ref parents[] = {
        {.group = "gateway.networking.k8s.io", .kind = "Gateway", .namespace = "shop",
         .name = "shop-gw", .section_name = "https"},
        {.group = "gateway.networking.k8s.io", .kind = "Gateway", .namespace = "infra",
         .name = "edge", .port = 443},
    };
    char *hostnames[] = {"shop.example.com"};
    proto_header_match headers[] = {{.type = "Exact", .name = "x-canary", .value = "true"}};
    proto_http_match matches[] = {
        {.path_type = "PathPrefix", .path_value = "/cart", .headers = headers, .n_headers = 1,
         .method = "GET"},
        {.path_type = "Exact", .path_value = "/cart/checkout"},
    };
    proto_http_match root[] = {{.path_type = "PathPrefix", .path_value = "/"}};
    proto_backend_ref backends[] = {
        {.group = "", .kind = "Service", .namespace = "shop", .name = "cart-v1", .port = 80,
         .weight = 90},
        {.group = "", .kind = "Service", .namespace = "canary", .name = "cart-v2",
         .port = 8080, .weight = 10},
    };
    proto_http_rule rules[] = {
        {.name = "cart", .matches = matches, .n_matches = 2, .backend_refs = backends,
         .n_backend_refs = 2},
        {.matches = root, .n_matches = 1},
    };
    proto_http_route route = {.namespace = "shop", .name = "shop-route", .parent_refs = parents,
                              .n_parent_refs = 2, .hostnames = hostnames, .n_hostnames = 1,
                              .rules = rules, .n_rules = 2};
    return proto_http_route_encode(&route, data, len);
}

typedef struct {
    const char *corpus_name;
    proto_k8s_kind kind;
    int (*encode)(void **data, size_t *len);
} sample;

static const sample samples[] = {
    {"namespace", PROTO_K8S_NAMESPACE, encode_namespace_sample},
    {"secret", PROTO_K8S_SECRET, encode_secret_sample},
    {"ingress", PROTO_K8S_INGRESS, encode_ingress_sample},
    {"ingressclass", PROTO_K8S_INGRESS_CLASS, encode_ingress_class_sample},
    {"route", PROTO_K8S_ROUTE, encode_route_sample},
    {"gatewayclass", PROTO_K8S_GATEWAY_CLASS, encode_gateway_class_sample},
    {"gateway", PROTO_K8S_GATEWAY, encode_gateway_sample},
    {"httproute", PROTO_K8S_HTTP_ROUTE, encode_http_route_sample},
};

#define N_SAMPLES (sizeof samples / sizeof samples[0])

static void decode_sample(const sample *s, proto_k8s_object *out)
{
    void *data;
    size_t len;
    assert_int_equal(s->encode(&data, &len), 0);
    assert_int_equal(proto_k8s_decode(out, data, len), 0);
    assert_int_equal(out->kind, s->kind);
    free(data);
}

/* ---- round trips ----------------------------------------------------------- */

static void test_namespace_round_trip(void **state)
{
    (void)state;
    proto_k8s_object out;
    decode_sample(&samples[0], &out);
    assert_string_equal(out.namespace->name, "shop");
    assert_string_equal(out.namespace->tenant, "payments");
    assert_int_equal(out.namespace->n_labels, 2);
    assert_string_equal(out.namespace->labels[1].key, "team");
    assert_string_equal(out.namespace->labels[1].value, "payments");
    proto_k8s_object_clear(&out);
    assert_null(out.namespace);

    proto_namespace bare = {.name = "d"};
    void *data;
    size_t len;
    assert_int_equal(proto_namespace_encode(&bare, &data, &len), 0);
    assert_int_equal(proto_k8s_decode(&out, data, len), 0);
    assert_null(out.namespace->tenant);
    assert_int_equal(out.namespace->n_labels, 0);
    proto_k8s_object_clear(&out);
    free(data);
}

static void test_secret_round_trip_keeps_pem_text_and_absent_alt_key(void **state)
{
    (void)state;
    proto_k8s_object out;
    decode_sample(&samples[1], &out);
    proto_secret *secret = out.secret;
    assert_string_equal(secret->namespace, "shop");
    assert_string_equal(secret->name, "shop-tls");
    assert_string_equal(secret->cert,
                        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    assert_string_equal(secret->key,
                        "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n");
    assert_non_null(strstr(secret->alt_cert, "ALT"));
    assert_null(secret->alt_key);
    proto_k8s_object_clear(&out);
}

static void test_ingress_round_trip_keeps_rules_paths_backends_and_tls(void **state)
{
    (void)state;
    proto_k8s_object out;
    decode_sample(&samples[2], &out);
    proto_ingress *ing = out.ingress;
    assert_string_equal(ing->namespace, "shop");
    assert_string_equal(ing->class_name, "avi-lb");
    assert_null(ing->class_annotation);
    assert_string_equal(ing->default_backend.service, "default");
    assert_int_equal(ing->default_backend.port, 8080);
    assert_int_equal(ing->n_rules, 2);
    assert_int_equal(ing->rules[0].n_paths, 3);
    assert_string_equal(ing->rules[0].paths[0].path, "/cart");
    assert_string_equal(ing->rules[0].paths[0].backend.service, "cart");
    assert_int_equal(ing->rules[0].paths[0].backend.port, 80);
    assert_null(ing->rules[0].paths[0].backend.port_name);
    assert_string_equal(ing->rules[0].paths[1].path, "");
    assert_string_equal(ing->rules[0].paths[1].path_type, "ImplementationSpecific");
    assert_string_equal(ing->rules[0].paths[1].backend.port_name, "http");
    assert_null(ing->rules[0].paths[2].backend.service);
    assert_string_equal(ing->rules[1].host, "");
    assert_int_equal(ing->rules[1].n_paths, 0);
    assert_int_equal(ing->n_tls, 2);
    assert_string_equal(ing->tls[0].hosts[1], "www.shop.example.com");
    assert_string_equal(ing->tls[0].secret_name, "shop-tls");
    assert_int_equal(ing->tls[1].n_hosts, 0);
    assert_null(ing->tls[1].secret_name);
    proto_k8s_object_clear(&out);
}

static void test_ingress_class_round_trip(void **state)
{
    (void)state;
    proto_k8s_object out;
    decode_sample(&samples[3], &out);
    assert_string_equal(out.ingress_class->name, "avi-lb");
    assert_string_equal(out.ingress_class->controller, "ako.vmware.com/avi-lb");
    assert_true(out.ingress_class->is_default);
    proto_k8s_object_clear(&out);
}

static void test_route_round_trip_keeps_backends_weights_and_tls(void **state)
{
    (void)state;
    proto_k8s_object out;
    decode_sample(&samples[4], &out);
    proto_route *route = out.route;
    assert_string_equal(route->host, "shop.apps.example.com");
    assert_string_equal(route->path, "/store");
    assert_string_equal(route->to.name, "shop-v1");
    assert_int_equal(route->to.weight, 80);
    assert_int_equal(route->n_alternate_backends, 2);
    assert_string_equal(route->alternate_backends[0].name, "shop-v2");
    assert_int_equal(route->alternate_backends[1].weight, 0);
    assert_int_equal(route->target_port, 0);
    assert_string_equal(route->target_port_name, "https");
    assert_string_equal(route->wildcard_policy, "None");
    assert_string_equal(route->tls_termination, "reencrypt");
    assert_string_equal(route->tls_certificate, "CERT");
    assert_string_equal(route->tls_key, "KEY");
    assert_string_equal(route->tls_ca_certificate, "CA");
    assert_string_equal(route->tls_destination_ca_certificate, "DESTCA");
    assert_string_equal(route->tls_insecure_edge_policy, "Redirect");
    proto_k8s_object_clear(&out);

    proto_route plain = {.namespace = "ns", .name = "r", .host = "", .path = "",
                         .to = {.kind = "Service", .name = "s", .weight = 100},
                         .target_port = 8080, .wildcard_policy = "None"};
    void *data;
    size_t len;
    assert_int_equal(proto_route_encode(&plain, &data, &len), 0);
    assert_int_equal(proto_k8s_decode(&out, data, len), 0);
    assert_int_equal(out.route->target_port, 8080);
    assert_null(out.route->target_port_name);
    assert_null(out.route->tls_termination);
    assert_null(out.route->tls_key);
    assert_int_equal(out.route->n_alternate_backends, 0);
    proto_k8s_object_clear(&out);
    free(data);
}

static void test_gateway_class_round_trip(void **state)
{
    (void)state;
    proto_k8s_object out;
    decode_sample(&samples[5], &out);
    assert_string_equal(out.gateway_class->name, "avi-lb");
    assert_string_equal(out.gateway_class->controller_name, "ako.vmware.com/avi-lb");
    proto_k8s_object_clear(&out);
}

static void test_gateway_round_trip_keeps_listeners_cert_refs_and_addresses(void **state)
{
    (void)state;
    proto_k8s_object out;
    decode_sample(&samples[6], &out);
    proto_gateway *gw = out.gateway;
    assert_string_equal(gw->class_name, "avi-lb");
    assert_int_equal(gw->n_listeners, 2);
    assert_string_equal(gw->listeners[0].hostname, "*.shop.example.com");
    assert_int_equal(gw->listeners[0].port, 80);
    assert_null(gw->listeners[0].tls_mode);
    assert_string_equal(gw->listeners[0].allowed_routes_from, "All");
    assert_null(gw->listeners[1].hostname);
    assert_string_equal(gw->listeners[1].protocol, "HTTPS");
    assert_string_equal(gw->listeners[1].tls_mode, "Terminate");
    assert_int_equal(gw->listeners[1].n_certificate_refs, 2);
    assert_string_equal(gw->listeners[1].certificate_refs[1].namespace, "certs");
    assert_string_equal(gw->listeners[1].certificate_refs[1].kind, "Secret");
    assert_string_equal(gw->listeners[1].certificate_refs[1].group, "");
    assert_int_equal(gw->n_addresses, 1);
    assert_string_equal(gw->addresses[0].type, "IPAddress");
    assert_string_equal(gw->addresses[0].value, "10.50.0.40");
    proto_k8s_object_clear(&out);
}

static void test_http_route_round_trip_keeps_parents_matches_and_backends(void **state)
{
    (void)state;
    proto_k8s_object out;
    decode_sample(&samples[7], &out);
    proto_http_route *route = out.http_route;
    assert_int_equal(route->n_parent_refs, 2);
    assert_string_equal(route->parent_refs[0].section_name, "https");
    assert_int_equal(route->parent_refs[0].port, 0);
    assert_null(route->parent_refs[1].section_name);
    assert_int_equal(route->parent_refs[1].port, 443);
    assert_string_equal(route->parent_refs[1].namespace, "infra");
    assert_int_equal(route->n_hostnames, 1);
    assert_string_equal(route->hostnames[0], "shop.example.com");
    assert_int_equal(route->n_rules, 2);
    const proto_http_rule *rule = &route->rules[0];
    assert_string_equal(rule->name, "cart");
    assert_int_equal(rule->n_matches, 2);
    assert_string_equal(rule->matches[0].method, "GET");
    assert_int_equal(rule->matches[0].n_headers, 1);
    assert_string_equal(rule->matches[0].headers[0].name, "x-canary");
    assert_string_equal(rule->matches[1].path_type, "Exact");
    assert_null(rule->matches[1].method);
    assert_int_equal(rule->n_backend_refs, 2);
    assert_string_equal(rule->backend_refs[1].namespace, "canary");
    assert_int_equal(rule->backend_refs[1].port, 8080);
    assert_int_equal(rule->backend_refs[1].weight, 10);
    assert_null(route->rules[1].name);
    assert_string_equal(route->rules[1].matches[0].path_value, "/");
    assert_int_equal(route->rules[1].n_backend_refs, 0);
    proto_k8s_object_clear(&out);
}

/* ---- hostile input ------------------------------------------------------------ */

static void test_every_new_kind_refuses_every_truncation(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SAMPLES; i++) {
        void *data;
        size_t len;
        assert_int_equal(samples[i].encode(&data, &len), 0);
        for (size_t cut = 0; cut < len; cut++) {
            proto_k8s_object out;
            if (proto_k8s_decode(&out, data, cut) >= 0)
                fail_msg("%s cut at %zu of %zu decoded", samples[i].corpus_name, cut, len);
            proto_k8s_object_clear(&out);
        }
        free(data);
    }
}

/* Every byte of every sample replaced by values that change its type or its
 * length: the decoder may accept or refuse, never misbehave (ASan, LSan). */
static void test_every_new_kind_survives_every_byte_replaced(void **state)
{
    (void)state;
    static const uint8_t values[] = {0x00, 0x7f, 0x80, 0x90, 0xa0, 0xc0, 0xc3, 0xcc,
                                     0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
    for (size_t i = 0; i < N_SAMPLES; i++) {
        uint8_t *data;
        size_t len;
        assert_int_equal(samples[i].encode((void **)&data, &len), 0);
        for (size_t at = 0; at < len; at++) {
            uint8_t saved = data[at];
            for (size_t v = 0; v < sizeof values; v++) {
                proto_k8s_object out;
                data[at] = values[v];
                if (proto_k8s_decode(&out, data, len) == 0)
                    assert_true(out.kind >= PROTO_K8S_NODE && out.kind <= PROTO_K8S_HTTP_ROUTE);
                proto_k8s_object_clear(&out);
            }
            data[at] = saved;
        }
        free(data);
    }
}

static void write_header(proto_writer *w, size_t fields, proto_k8s_kind kind)
{
    pw_map(w, fields + 2);
    pw_str(w, "v");
    pw_uint(w, PROTO_VERSION);
    pw_str(w, "kind");
    pw_uint(w, kind);
}

static void write_kstr(proto_writer *w, const char *key, const char *value)
{
    pw_str(w, key);
    pw_str(w, value);
}

/* An array of n empty maps: cheap to write, enough to pass the size check
 * of proto_msgpack_check, so only the decoder's cap can refuse it. */
static void write_maps(proto_writer *w, const char *key, size_t n)
{
    pw_str(w, key);
    pw_array(w, n);
    for (size_t i = 0; i < n; i++)
        pw_map(w, 0);
}

static int decode_written(proto_writer *w)
{
    void *data;
    size_t len;
    proto_k8s_object out;
    assert_int_equal(proto_writer_finish(w, &data, &len), 0);
    int rc = proto_k8s_decode(&out, data, len);
    proto_k8s_object_clear(&out);
    free(data);
    return rc;
}

static int ingress_with(size_t n_rules, size_t n_paths, size_t n_tls, size_t n_hosts)
{
    proto_writer w;
    proto_writer_init(&w);
    write_header(&w, 5, PROTO_K8S_INGRESS);
    write_kstr(&w, "ns", "ns");
    write_kstr(&w, "name", "i");
    pw_str(&w, "default");
    pw_map(&w, 0);
    pw_str(&w, "rules");
    pw_array(&w, n_rules);
    for (size_t i = 0; i < n_rules; i++) {
        pw_map(&w, 2);
        write_kstr(&w, "host", "");
        pw_str(&w, "paths");
        pw_array(&w, i == 0 ? n_paths : 0);
        for (size_t j = 0; i == 0 && j < n_paths; j++) {
            pw_map(&w, 3);
            write_kstr(&w, "path", "/");
            write_kstr(&w, "type", "Prefix");
            pw_str(&w, "backend");
            pw_map(&w, 0);
        }
    }
    pw_str(&w, "tls");
    pw_array(&w, n_tls);
    for (size_t i = 0; i < n_tls; i++) {
        pw_map(&w, 1);
        pw_str(&w, "hosts");
        pw_array(&w, i == 0 ? n_hosts : 0);
        for (size_t j = 0; i == 0 && j < n_hosts; j++)
            pw_str(&w, "h");
    }
    return decode_written(&w);
}

static int http_route_with(size_t n_parents, size_t n_hostnames, size_t n_rules,
                           size_t n_matches, size_t n_headers, size_t n_backends)
{
    proto_writer w;
    proto_writer_init(&w);
    write_header(&w, 5, PROTO_K8S_HTTP_ROUTE);
    write_kstr(&w, "ns", "ns");
    write_kstr(&w, "name", "r");
    pw_str(&w, "parents");
    pw_array(&w, n_parents);
    for (size_t i = 0; i < n_parents; i++) {
        pw_map(&w, 4);
        write_kstr(&w, "group", "g");
        write_kstr(&w, "kind", "Gateway");
        write_kstr(&w, "ns", "ns");
        write_kstr(&w, "name", "gw");
    }
    pw_str(&w, "hostnames");
    pw_array(&w, n_hostnames);
    for (size_t i = 0; i < n_hostnames; i++)
        pw_str(&w, "h");
    pw_str(&w, "rules");
    pw_array(&w, n_rules);
    for (size_t i = 0; i < n_rules; i++) {
        pw_map(&w, 2);
        pw_str(&w, "matches");
        pw_array(&w, i == 0 ? n_matches : 0);
        for (size_t j = 0; i == 0 && j < n_matches; j++) {
            pw_map(&w, 3);
            write_kstr(&w, "pathtype", "PathPrefix");
            write_kstr(&w, "path", "/");
            write_maps(&w, "headers", j == 0 ? n_headers : 0);
        }
        pw_str(&w, "backends");
        pw_array(&w, i == 0 ? n_backends : 0);
        for (size_t j = 0; i == 0 && j < n_backends; j++) {
            pw_map(&w, 5);
            write_kstr(&w, "group", "");
            write_kstr(&w, "kind", "Service");
            write_kstr(&w, "ns", "ns");
            write_kstr(&w, "name", "s");
            pw_str(&w, "weight");
            pw_int(&w, 1);
        }
    }
    return decode_written(&w);
}

static int gateway_with(size_t n_listeners, size_t n_certs, size_t n_addresses)
{
    proto_writer w;
    proto_writer_init(&w);
    write_header(&w, 5, PROTO_K8S_GATEWAY);
    write_kstr(&w, "ns", "ns");
    write_kstr(&w, "name", "g");
    write_kstr(&w, "class", "avi-lb");
    pw_str(&w, "listeners");
    pw_array(&w, n_listeners);
    for (size_t i = 0; i < n_listeners; i++) {
        pw_map(&w, 5);
        write_kstr(&w, "name", "l");
        pw_str(&w, "port");
        pw_int(&w, 80);
        write_kstr(&w, "proto", "HTTP");
        write_kstr(&w, "from", "Same");
        pw_str(&w, "certs");
        pw_array(&w, i == 0 ? n_certs : 0);
        for (size_t j = 0; i == 0 && j < n_certs; j++) {
            pw_map(&w, 4);
            write_kstr(&w, "group", "");
            write_kstr(&w, "kind", "Secret");
            write_kstr(&w, "ns", "ns");
            write_kstr(&w, "name", "s");
        }
    }
    pw_str(&w, "addresses");
    pw_array(&w, n_addresses);
    for (size_t i = 0; i < n_addresses; i++) {
        pw_map(&w, 2);
        write_kstr(&w, "type", "IPAddress");
        write_kstr(&w, "value", "10.0.0.1");
    }
    return decode_written(&w);
}

static int route_with(size_t n_alternate)
{
    proto_writer w;
    proto_writer_init(&w);
    write_header(&w, 7, PROTO_K8S_ROUTE);
    write_kstr(&w, "ns", "ns");
    write_kstr(&w, "name", "r");
    write_kstr(&w, "host", "");
    write_kstr(&w, "path", "");
    write_kstr(&w, "wildcard", "None");
    pw_str(&w, "to");
    pw_map(&w, 3);
    write_kstr(&w, "kind", "Service");
    write_kstr(&w, "name", "s");
    pw_str(&w, "weight");
    pw_int(&w, 100);
    pw_str(&w, "alt");
    pw_array(&w, n_alternate);
    for (size_t i = 0; i < n_alternate; i++) {
        pw_map(&w, 3);
        write_kstr(&w, "kind", "Service");
        write_kstr(&w, "name", "s");
        pw_str(&w, "weight");
        pw_int(&w, 1);
    }
    return decode_written(&w);
}

static int namespace_with_labels(size_t n_labels)
{
    proto_writer w;
    proto_writer_init(&w);
    write_header(&w, 2, PROTO_K8S_NAMESPACE);
    write_kstr(&w, "name", "n");
    pw_str(&w, "labels");
    pw_array(&w, n_labels * 2);
    for (size_t i = 0; i < n_labels * 2; i++)
        pw_str(&w, "x");
    return decode_written(&w);
}

/* Each list at its cap decodes; one more is refused before anything is
 * allocated for it. The caps sit well above what the API server allows
 * (Gateway API: 64 listeners, 16 rules; Route: 3 alternate backends). */
static void test_counts_past_the_hard_caps_are_refused(void **state)
{
    (void)state;
    assert_int_equal(namespace_with_labels(1024), 0);
    assert_int_equal(namespace_with_labels(1025), KV_ERR_INVALID);

    assert_int_equal(ingress_with(1024, 0, 0, 0), 0);
    assert_int_equal(ingress_with(1025, 0, 0, 0), KV_ERR_INVALID);
    assert_int_equal(ingress_with(1, 1024, 0, 0), 0);
    assert_int_equal(ingress_with(1, 1025, 0, 0), KV_ERR_INVALID);
    assert_int_equal(ingress_with(0, 0, 1024, 1024), 0);
    assert_int_equal(ingress_with(0, 0, 1025, 0), KV_ERR_INVALID);
    assert_int_equal(ingress_with(0, 0, 1, 1025), KV_ERR_INVALID);

    assert_int_equal(route_with(256), 0);
    assert_int_equal(route_with(257), KV_ERR_INVALID);

    assert_int_equal(gateway_with(256, 256, 256), 0);
    assert_int_equal(gateway_with(257, 0, 0), KV_ERR_INVALID);
    assert_int_equal(gateway_with(1, 257, 0), KV_ERR_INVALID);
    assert_int_equal(gateway_with(1, 0, 257), KV_ERR_INVALID);

    assert_int_equal(http_route_with(256, 1024, 1024, 256, 0, 256), 0);
    assert_int_equal(http_route_with(257, 0, 0, 0, 0, 0), KV_ERR_INVALID);
    assert_int_equal(http_route_with(0, 1025, 0, 0, 0, 0), KV_ERR_INVALID);
    assert_int_equal(http_route_with(0, 0, 1025, 0, 0, 0), KV_ERR_INVALID);
    assert_int_equal(http_route_with(0, 0, 1, 257, 0, 0), KV_ERR_INVALID);
    assert_int_equal(http_route_with(0, 0, 1, 1, 257, 0), KV_ERR_INVALID);
    assert_int_equal(http_route_with(0, 0, 1, 0, 0, 257), KV_ERR_INVALID);
}

static void test_header_match_without_its_fields_is_refused(void **state)
{
    (void)state;
    /* http_route_with writes header matches as empty maps. */
    assert_int_equal(http_route_with(0, 0, 1, 1, 1, 0), KV_ERR_INVALID);
}

static void test_key_material_larger_than_a_secret_is_refused(void **state)
{
    (void)state;
    size_t big = (1u << 20) + 1;
    char *pem = malloc(big + 1);
    memset(pem, 'A', big);
    pem[big] = '\0';
    proto_secret secret = {.namespace = "ns", .name = "s", .cert = pem, .key = "k"};
    void *data;
    size_t len;
    proto_k8s_object out;
    assert_int_equal(proto_secret_encode(&secret, &data, &len), 0);
    assert_int_equal(proto_k8s_decode(&out, data, len), KV_ERR_TOO_LARGE);
    assert_null(out.secret);
    free(data);

    pem[big - 1] = '\0'; /* exactly 1 MiB */
    assert_int_equal(proto_secret_encode(&secret, &data, &len), 0);
    assert_int_equal(proto_k8s_decode(&out, data, len), 0);
    assert_int_equal(strlen(out.secret->cert), 1u << 20);
    proto_k8s_object_clear(&out);
    free(data);

    proto_route route = {.namespace = "ns", .name = "r", .host = "", .path = "",
                         .to = {.kind = "Service", .name = "s", .weight = 1},
                         .wildcard_policy = "None", .tls_termination = "edge",
                         .tls_key = pem};
    pem[big - 1] = 'A';
    assert_int_equal(proto_route_encode(&route, &data, &len), 0);
    assert_int_equal(proto_k8s_decode(&out, data, len), KV_ERR_TOO_LARGE);
    assert_null(out.route);
    free(data);
    free(pem);
}

static void test_key_material_with_a_nul_byte_is_refused(void **state)
{
    (void)state;
    proto_writer w;
    proto_writer_init(&w);
    write_header(&w, 4, PROTO_K8S_SECRET);
    write_kstr(&w, "ns", "ns");
    write_kstr(&w, "name", "s");
    write_kstr(&w, "crt", "c");
    pw_str(&w, "key");
    pw_strn(&w, "k\0k", 3);
    assert_int_equal(decode_written(&w), KV_ERR_INVALID);
}

/* Only "v" and "kind": every new kind has required fields. */
static void test_every_new_kind_without_its_fields_is_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SAMPLES; i++) {
        proto_writer w;
        proto_writer_init(&w);
        write_header(&w, 0, samples[i].kind);
        if (decode_written(&w) != KV_ERR_INVALID)
            fail_msg("%s without fields decoded", samples[i].corpus_name);
    }
}

static void test_mistyped_fields_of_new_kinds_are_refused(void **state)
{
    (void)state;
    proto_writer w;

    /* IngressClass "default" must be a boolean. */
    proto_writer_init(&w);
    write_header(&w, 3, PROTO_K8S_INGRESS_CLASS);
    write_kstr(&w, "name", "c");
    write_kstr(&w, "controller", "x");
    write_kstr(&w, "default", "true");
    assert_int_equal(decode_written(&w), KV_ERR_INVALID);

    /* Route "to" must be a map. */
    proto_writer_init(&w);
    write_header(&w, 6, PROTO_K8S_ROUTE);
    write_kstr(&w, "ns", "ns");
    write_kstr(&w, "name", "r");
    write_kstr(&w, "host", "");
    write_kstr(&w, "path", "");
    write_kstr(&w, "wildcard", "None");
    write_kstr(&w, "to", "svc");
    assert_int_equal(decode_written(&w), KV_ERR_INVALID);

    /* Ingress "default" backend must be a map. */
    proto_writer_init(&w);
    write_header(&w, 3, PROTO_K8S_INGRESS);
    write_kstr(&w, "ns", "ns");
    write_kstr(&w, "name", "i");
    pw_str(&w, "default");
    pw_nil(&w);
    assert_int_equal(decode_written(&w), KV_ERR_INVALID);

    /* Gateway listeners must be an array of maps. */
    proto_writer_init(&w);
    write_header(&w, 4, PROTO_K8S_GATEWAY);
    write_kstr(&w, "ns", "ns");
    write_kstr(&w, "name", "g");
    write_kstr(&w, "class", "c");
    pw_str(&w, "listeners");
    pw_array(&w, 1);
    pw_str(&w, "http");
    assert_int_equal(decode_written(&w), KV_ERR_INVALID);

    /* A hostname must be a string; a port must fit an int32. */
    proto_writer_init(&w);
    write_header(&w, 3, PROTO_K8S_HTTP_ROUTE);
    write_kstr(&w, "ns", "ns");
    write_kstr(&w, "name", "r");
    pw_str(&w, "hostnames");
    pw_array(&w, 1);
    pw_int(&w, 7);
    assert_int_equal(decode_written(&w), KV_ERR_INVALID);

    proto_writer_init(&w);
    write_header(&w, 5, PROTO_K8S_GATEWAY);
    write_kstr(&w, "ns", "ns");
    write_kstr(&w, "name", "g");
    write_kstr(&w, "class", "c");
    pw_str(&w, "listeners");
    pw_array(&w, 1);
    pw_map(&w, 4);
    write_kstr(&w, "name", "l");
    pw_str(&w, "port");
    pw_uint(&w, 1ull << 40);
    write_kstr(&w, "proto", "HTTP");
    write_kstr(&w, "from", "Same");
    write_maps(&w, "addresses", 0);
    assert_int_equal(decode_written(&w), KV_ERR_INVALID);
}

static void test_unknown_kind_and_future_version_are_refused(void **state)
{
    (void)state;
    proto_writer w;
    proto_writer_init(&w);
    write_header(&w, 1, (proto_k8s_kind)12);
    write_kstr(&w, "name", "x");
    assert_int_equal(decode_written(&w), KV_ERR_INVALID);

    proto_writer_init(&w);
    pw_map(&w, 3);
    pw_str(&w, "v");
    pw_uint(&w, PROTO_VERSION + 1);
    pw_str(&w, "kind");
    pw_uint(&w, PROTO_K8S_GATEWAY_CLASS);
    write_kstr(&w, "name", "x");
    assert_int_equal(decode_written(&w), KV_ERR_VERSION);
}

/* ---- fuzz corpus --------------------------------------------------------------- */

static void write_corpus_file(const sample *s)
{
    char path[256];
    void *data;
    size_t len;
    snprintf(path, sizeof path, CORPUS_DIR "%s", s->corpus_name);
    assert_int_equal(s->encode(&data, &len), 0);
    FILE *file = fopen(path, "wb");
    if (!file)
        fail_msg("cannot write %s (run from the repository root)", path);
    assert_int_equal(fwrite(data, 1, len, file), len);
    fclose(file);
    free(data);
}

static void test_fuzz_corpus_holds_a_decodable_sample_of_every_new_kind(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SAMPLES; i++) {
        char path[256];
        uint8_t data[4096];
        if (getenv("KAVI_WRITE_CORPUS"))
            write_corpus_file(&samples[i]);
        snprintf(path, sizeof path, CORPUS_DIR "%s", samples[i].corpus_name);
        FILE *file = fopen(path, "rb");
        if (!file)
            fail_msg("%s is missing (KAVI_WRITE_CORPUS=1 %s writes it)", path, "test_proto_kinds");
        size_t len = fread(data, 1, sizeof data, file);
        fclose(file);
        proto_k8s_object out;
        if (proto_k8s_decode(&out, data, len) != 0 || out.kind != samples[i].kind)
            fail_msg("%s does not decode as its kind", path);
        proto_k8s_object_clear(&out);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_namespace_round_trip),
        cmocka_unit_test(test_secret_round_trip_keeps_pem_text_and_absent_alt_key),
        cmocka_unit_test(test_ingress_round_trip_keeps_rules_paths_backends_and_tls),
        cmocka_unit_test(test_ingress_class_round_trip),
        cmocka_unit_test(test_route_round_trip_keeps_backends_weights_and_tls),
        cmocka_unit_test(test_gateway_class_round_trip),
        cmocka_unit_test(test_gateway_round_trip_keeps_listeners_cert_refs_and_addresses),
        cmocka_unit_test(test_http_route_round_trip_keeps_parents_matches_and_backends),
        cmocka_unit_test(test_every_new_kind_refuses_every_truncation),
        cmocka_unit_test(test_every_new_kind_survives_every_byte_replaced),
        cmocka_unit_test(test_counts_past_the_hard_caps_are_refused),
        cmocka_unit_test(test_header_match_without_its_fields_is_refused),
        cmocka_unit_test(test_key_material_larger_than_a_secret_is_refused),
        cmocka_unit_test(test_key_material_with_a_nul_byte_is_refused),
        cmocka_unit_test(test_every_new_kind_without_its_fields_is_refused),
        cmocka_unit_test(test_mistyped_fields_of_new_kinds_are_refused),
        cmocka_unit_test(test_unknown_kind_and_future_version_are_refused),
        cmocka_unit_test(test_fuzz_corpus_holds_a_decodable_sample_of_every_new_kind),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
