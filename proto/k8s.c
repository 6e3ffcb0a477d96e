#include "proto/k8s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "proto/envelope.h"
#include "proto/wire.h"

/* Hard caps well above anything the API server allows, so a hostile message
 * cannot make the planner allocate without bound. */
#define MAX_LABELS 1024
#define MAX_PORTS 1024
#define MAX_ENDPOINTS 4096
#define MAX_RULES 1024    /* Ingress rules, HTTPRoute rules (the API allows 16) */
#define MAX_PATHS 1024    /* paths of one Ingress rule */
#define MAX_HOSTS 1024    /* hosts of one Ingress tls entry, HTTPRoute hostnames (16) */
#define MAX_TLS 1024      /* Ingress tls entries */
#define MAX_BACKENDS 256  /* Route alternateBackends (3), backendRefs of a rule (16) */
#define MAX_REFS 256      /* parentRefs (32), certificateRefs (64), addresses (16) */
#define MAX_LISTENERS 256 /* Gateway listeners (64) */
#define MAX_MATCHES 256   /* matches of one HTTPRoute rule (64) */
#define MAX_HEADERS 256   /* header matches of one HTTPRoute match (16) */
/* A Secret holds at most 1 MiB in all; no certificate or key is larger. */
#define MAX_PEM (1u << 20)

static void pw_header(proto_writer *w, size_t fields, proto_k8s_kind kind)
{
    pw_map(w, fields + 2);
    pw_str(w, "v");
    pw_uint(w, PROTO_VERSION);
    pw_str(w, "kind");
    pw_uint(w, (uint64_t)kind);
}

static void pw_kstr(proto_writer *w, const char *key, const char *value)
{
    pw_str(w, key);
    pw_str(w, value);
}

static void pw_kint(proto_writer *w, const char *key, int64_t value)
{
    pw_str(w, key);
    pw_int(w, value);
}

static void pw_kbool(proto_writer *w, const char *key, bool value)
{
    pw_str(w, key);
    pw_bool(w, value);
}

int proto_node_encode(const proto_node *node, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_header(&w, 9, PROTO_K8S_NODE);
    pw_kstr(&w, "name", node->name);
    pw_kstr(&w, "ipv4", node->internal_ipv4);
    pw_kstr(&w, "ipv6", node->internal_ipv6);
    pw_kstr(&w, "calico4", node->calico_ipv4);
    pw_kstr(&w, "calico6", node->calico_ipv6);
    pw_kstr(&w, "antrea", node->antrea_transport);
    pw_kbool(&w, "deleting", node->deleting);
    pw_kbool(&w, "tbd", node->to_be_deleted);
    pw_str(&w, "labels");
    pw_array(&w, node->n_labels * 2);
    for (size_t i = 0; i < node->n_labels; i++) {
        pw_str(&w, node->labels[i].key);
        pw_str(&w, node->labels[i].value);
    }
    return proto_writer_finish(&w, out, out_len);
}

int proto_service_encode(const proto_service *svc, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_header(&w, 10, PROTO_K8S_SERVICE);
    pw_kstr(&w, "ns", svc->namespace);
    pw_kstr(&w, "name", svc->name);
    pw_kstr(&w, "type", svc->type);
    pw_kstr(&w, "lbclass", svc->load_balancer_class);
    pw_kbool(&w, "local", svc->external_traffic_local);
    pw_kint(&w, "hcport", svc->health_check_node_port);
    pw_kbool(&w, "fam4", svc->family_ipv4);
    pw_kbool(&w, "fam6", svc->family_ipv6);
    pw_kstr(&w, "lbip", svc->load_balancer_ip);
    pw_str(&w, "ports");
    pw_array(&w, svc->n_ports);
    for (size_t i = 0; i < svc->n_ports; i++) {
        const proto_service_port *p = &svc->ports[i];
        pw_map(&w, 6);
        pw_kstr(&w, "name", p->name);
        pw_kstr(&w, "proto", p->protocol);
        pw_kint(&w, "port", p->port);
        pw_kint(&w, "nodeport", p->node_port);
        pw_kint(&w, "target", p->target_port);
        pw_kstr(&w, "targetname", p->target_port_name);
    }
    return proto_writer_finish(&w, out, out_len);
}

int proto_endpoint_slice_encode(const proto_endpoint_slice *slice, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_header(&w, 6, PROTO_K8S_ENDPOINT_SLICE);
    pw_kstr(&w, "ns", slice->namespace);
    pw_kstr(&w, "name", slice->name);
    pw_kstr(&w, "service", slice->service_name);
    pw_kstr(&w, "addrtype", slice->address_type);
    pw_str(&w, "ports");
    pw_array(&w, slice->n_ports);
    for (size_t i = 0; i < slice->n_ports; i++) {
        pw_map(&w, 3);
        pw_kstr(&w, "name", slice->ports[i].name);
        pw_kstr(&w, "proto", slice->ports[i].protocol);
        pw_kint(&w, "port", slice->ports[i].port);
    }
    pw_str(&w, "endpoints");
    pw_array(&w, slice->n_endpoints);
    for (size_t i = 0; i < slice->n_endpoints; i++) {
        const proto_endpoint *e = &slice->endpoints[i];
        pw_map(&w, 5);
        pw_kstr(&w, "addr", e->address);
        pw_kstr(&w, "node", e->node_name);
        pw_kbool(&w, "ready", e->ready);
        pw_kbool(&w, "serving", e->serving);
        pw_kbool(&w, "terminating", e->terminating);
    }
    return proto_writer_finish(&w, out, out_len);
}

/* ---- helpers shared by the kinds below ---------------------------------- */

static void pw_kstrs(proto_writer *w, const char *key, char *const *items, size_t n)
{
    pw_str(w, key);
    pw_array(w, n);
    for (size_t i = 0; i < n; i++)
        pw_str(w, items[i]);
}

/* Labels go flat, key then value, as in the Node message. */
static void pw_klabels(proto_writer *w, const char *key, const proto_label *labels, size_t n)
{
    pw_str(w, key);
    pw_array(w, n * 2);
    for (size_t i = 0; i < n; i++) {
        pw_str(w, labels[i].key);
        pw_str(w, labels[i].value);
    }
}

int proto_namespace_encode(const proto_namespace *ns, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_header(&w, 3, PROTO_K8S_NAMESPACE);
    pw_kstr(&w, "name", ns->name);
    pw_kstr(&w, "tenant", ns->tenant);
    pw_klabels(&w, "labels", ns->labels, ns->n_labels);
    return proto_writer_finish(&w, out, out_len);
}

int proto_secret_encode(const proto_secret *secret, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_header(&w, 6, PROTO_K8S_SECRET);
    pw_kstr(&w, "ns", secret->namespace);
    pw_kstr(&w, "name", secret->name);
    pw_kstr(&w, "crt", secret->cert);
    pw_kstr(&w, "key", secret->key);
    pw_kstr(&w, "altcrt", secret->alt_cert);
    pw_kstr(&w, "altkey", secret->alt_key);
    return proto_writer_finish(&w, out, out_len);
}

static void pw_ingress_backend(proto_writer *w, const char *key, const proto_ingress_backend *b)
{
    pw_str(w, key);
    pw_map(w, 3);
    pw_kstr(w, "svc", b->service);
    pw_kint(w, "port", b->port);
    pw_kstr(w, "portname", b->port_name);
}

int proto_ingress_encode(const proto_ingress *ing, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_header(&w, 7, PROTO_K8S_INGRESS);
    pw_kstr(&w, "ns", ing->namespace);
    pw_kstr(&w, "name", ing->name);
    pw_kstr(&w, "class", ing->class_name);
    pw_kstr(&w, "classanno", ing->class_annotation);
    pw_ingress_backend(&w, "default", &ing->default_backend);
    pw_str(&w, "rules");
    pw_array(&w, ing->n_rules);
    for (size_t i = 0; i < ing->n_rules; i++) {
        const proto_ingress_rule *rule = &ing->rules[i];
        pw_map(&w, 2);
        pw_kstr(&w, "host", rule->host);
        pw_str(&w, "paths");
        pw_array(&w, rule->n_paths);
        for (size_t j = 0; j < rule->n_paths; j++) {
            pw_map(&w, 3);
            pw_kstr(&w, "path", rule->paths[j].path);
            pw_kstr(&w, "type", rule->paths[j].path_type);
            pw_ingress_backend(&w, "backend", &rule->paths[j].backend);
        }
    }
    pw_str(&w, "tls");
    pw_array(&w, ing->n_tls);
    for (size_t i = 0; i < ing->n_tls; i++) {
        pw_map(&w, 2);
        pw_kstrs(&w, "hosts", ing->tls[i].hosts, ing->tls[i].n_hosts);
        pw_kstr(&w, "secret", ing->tls[i].secret_name);
    }
    return proto_writer_finish(&w, out, out_len);
}

int proto_ingress_class_encode(const proto_ingress_class *cls, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_header(&w, 3, PROTO_K8S_INGRESS_CLASS);
    pw_kstr(&w, "name", cls->name);
    pw_kstr(&w, "controller", cls->controller);
    pw_kbool(&w, "default", cls->is_default);
    return proto_writer_finish(&w, out, out_len);
}

static void pw_route_backend(proto_writer *w, const proto_route_backend *b)
{
    pw_map(w, 3);
    pw_kstr(w, "kind", b->kind);
    pw_kstr(w, "name", b->name);
    pw_kint(w, "weight", b->weight);
}

int proto_route_encode(const proto_route *route, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_header(&w, 15, PROTO_K8S_ROUTE);
    pw_kstr(&w, "ns", route->namespace);
    pw_kstr(&w, "name", route->name);
    pw_kstr(&w, "host", route->host);
    pw_kstr(&w, "path", route->path);
    pw_str(&w, "to");
    pw_route_backend(&w, &route->to);
    pw_str(&w, "alt");
    pw_array(&w, route->n_alternate_backends);
    for (size_t i = 0; i < route->n_alternate_backends; i++)
        pw_route_backend(&w, &route->alternate_backends[i]);
    pw_kint(&w, "target", route->target_port);
    pw_kstr(&w, "targetname", route->target_port_name);
    pw_kstr(&w, "wildcard", route->wildcard_policy);
    pw_kstr(&w, "termination", route->tls_termination);
    pw_kstr(&w, "crt", route->tls_certificate);
    pw_kstr(&w, "key", route->tls_key);
    pw_kstr(&w, "cacrt", route->tls_ca_certificate);
    pw_kstr(&w, "destcacrt", route->tls_destination_ca_certificate);
    pw_kstr(&w, "insecure", route->tls_insecure_edge_policy);
    return proto_writer_finish(&w, out, out_len);
}

int proto_gateway_class_encode(const proto_gateway_class *cls, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_header(&w, 2, PROTO_K8S_GATEWAY_CLASS);
    pw_kstr(&w, "name", cls->name);
    pw_kstr(&w, "controller", cls->controller_name);
    return proto_writer_finish(&w, out, out_len);
}

int proto_gateway_encode(const proto_gateway *gw, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_header(&w, 5, PROTO_K8S_GATEWAY);
    pw_kstr(&w, "ns", gw->namespace);
    pw_kstr(&w, "name", gw->name);
    pw_kstr(&w, "class", gw->class_name);
    pw_str(&w, "listeners");
    pw_array(&w, gw->n_listeners);
    for (size_t i = 0; i < gw->n_listeners; i++) {
        const proto_gateway_listener *l = &gw->listeners[i];
        pw_map(&w, 7);
        pw_kstr(&w, "name", l->name);
        pw_kstr(&w, "hostname", l->hostname);
        pw_kint(&w, "port", l->port);
        pw_kstr(&w, "proto", l->protocol);
        pw_kstr(&w, "tlsmode", l->tls_mode);
        pw_kstr(&w, "from", l->allowed_routes_from);
        pw_str(&w, "certs");
        pw_array(&w, l->n_certificate_refs);
        for (size_t j = 0; j < l->n_certificate_refs; j++) {
            const proto_gateway_cert_ref *ref = &l->certificate_refs[j];
            pw_map(&w, 4);
            pw_kstr(&w, "group", ref->group);
            pw_kstr(&w, "kind", ref->kind);
            pw_kstr(&w, "ns", ref->namespace);
            pw_kstr(&w, "name", ref->name);
        }
    }
    pw_str(&w, "addresses");
    pw_array(&w, gw->n_addresses);
    for (size_t i = 0; i < gw->n_addresses; i++) {
        pw_map(&w, 2);
        pw_kstr(&w, "type", gw->addresses[i].type);
        pw_kstr(&w, "value", gw->addresses[i].value);
    }
    return proto_writer_finish(&w, out, out_len);
}

static void pw_http_match(proto_writer *w, const proto_http_match *m)
{
    pw_map(w, 4);
    pw_kstr(w, "pathtype", m->path_type);
    pw_kstr(w, "path", m->path_value);
    pw_kstr(w, "method", m->method);
    pw_str(w, "headers");
    pw_array(w, m->n_headers);
    for (size_t i = 0; i < m->n_headers; i++) {
        pw_map(w, 3);
        pw_kstr(w, "type", m->headers[i].type);
        pw_kstr(w, "name", m->headers[i].name);
        pw_kstr(w, "value", m->headers[i].value);
    }
}

static void pw_backend_ref(proto_writer *w, const proto_backend_ref *b)
{
    pw_map(w, 6);
    pw_kstr(w, "group", b->group);
    pw_kstr(w, "kind", b->kind);
    pw_kstr(w, "ns", b->namespace);
    pw_kstr(w, "name", b->name);
    pw_kint(w, "port", b->port);
    pw_kint(w, "weight", b->weight);
}

int proto_http_route_encode(const proto_http_route *route, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_header(&w, 5, PROTO_K8S_HTTP_ROUTE);
    pw_kstr(&w, "ns", route->namespace);
    pw_kstr(&w, "name", route->name);
    pw_str(&w, "parents");
    pw_array(&w, route->n_parent_refs);
    for (size_t i = 0; i < route->n_parent_refs; i++) {
        const proto_parent_ref *ref = &route->parent_refs[i];
        pw_map(&w, 6);
        pw_kstr(&w, "group", ref->group);
        pw_kstr(&w, "kind", ref->kind);
        pw_kstr(&w, "ns", ref->namespace);
        pw_kstr(&w, "name", ref->name);
        pw_kstr(&w, "section", ref->section_name);
        pw_kint(&w, "port", ref->port);
    }
    pw_kstrs(&w, "hostnames", route->hostnames, route->n_hostnames);
    pw_str(&w, "rules");
    pw_array(&w, route->n_rules);
    for (size_t i = 0; i < route->n_rules; i++) {
        const proto_http_rule *rule = &route->rules[i];
        pw_map(&w, 3);
        pw_kstr(&w, "name", rule->name);
        pw_str(&w, "matches");
        pw_array(&w, rule->n_matches);
        for (size_t j = 0; j < rule->n_matches; j++)
            pw_http_match(&w, &rule->matches[j]);
        pw_str(&w, "backends");
        pw_array(&w, rule->n_backend_refs);
        for (size_t j = 0; j < rule->n_backend_refs; j++)
            pw_backend_ref(&w, &rule->backend_refs[j]);
    }
    return proto_writer_finish(&w, out, out_len);
}

static int decode_node(const msgpack_object *root, proto_node **out)
{
    proto_node *node = calloc(1, sizeof *node);
    const msgpack_object *labels;
    size_t n_labels;
    int rc;

    if (!node)
        return KV_ERR_NOMEM;
    rc = pr_str(root, "name", true, &node->name);
    rc = rc ?: pr_str(root, "ipv4", false, &node->internal_ipv4);
    rc = rc ?: pr_str(root, "ipv6", false, &node->internal_ipv6);
    rc = rc ?: pr_str(root, "calico4", false, &node->calico_ipv4);
    rc = rc ?: pr_str(root, "calico6", false, &node->calico_ipv6);
    rc = rc ?: pr_str(root, "antrea", false, &node->antrea_transport);
    rc = rc ?: pr_bool(root, "deleting", false, &node->deleting);
    rc = rc ?: pr_bool(root, "tbd", false, &node->to_be_deleted);
    rc = rc ?: pr_array(root, "labels", false, &labels, &n_labels);
    if (rc == 0 && (n_labels % 2 != 0 || n_labels / 2 > MAX_LABELS))
        rc = KV_ERR_INVALID;
    if (rc == 0 && n_labels) {
        node->labels = calloc(n_labels / 2, sizeof *node->labels);
        rc = node->labels ? 0 : KV_ERR_NOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n_labels / 2; i++) {
        node->n_labels = i + 1;
        rc = pr_str_of(&labels[2 * i], &node->labels[i].key);
        rc = rc ?: pr_str_of(&labels[2 * i + 1], &node->labels[i].value);
    }
    if (rc < 0) {
        proto_node_destroy(&node);
        return rc;
    }
    *out = node;
    return KV_OK;
}

static int decode_service(const msgpack_object *root, proto_service **out)
{
    proto_service *svc = calloc(1, sizeof *svc);
    const msgpack_object *ports;
    size_t n_ports;
    int rc;

    if (!svc)
        return KV_ERR_NOMEM;
    rc = pr_str(root, "ns", true, &svc->namespace);
    rc = rc ?: pr_str(root, "name", true, &svc->name);
    rc = rc ?: pr_str(root, "type", true, &svc->type);
    rc = rc ?: pr_str(root, "lbclass", false, &svc->load_balancer_class);
    rc = rc ?: pr_bool(root, "local", false, &svc->external_traffic_local);
    rc = rc ?: pr_int32(root, "hcport", false, &svc->health_check_node_port);
    /* Absent (a body from before the field) reads as "none listed", which
     * is what an absent spec.ipFamilies gives too. */
    rc = rc ?: pr_bool(root, "fam4", false, &svc->family_ipv4);
    rc = rc ?: pr_bool(root, "fam6", false, &svc->family_ipv6);
    rc = rc ?: pr_str(root, "lbip", false, &svc->load_balancer_ip);
    rc = rc ?: pr_array(root, "ports", false, &ports, &n_ports);
    if (rc == 0 && n_ports > MAX_PORTS)
        rc = KV_ERR_INVALID;
    if (rc == 0 && n_ports) {
        svc->ports = calloc(n_ports, sizeof *svc->ports);
        rc = svc->ports ? 0 : KV_ERR_NOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n_ports; i++) {
        proto_service_port *p = &svc->ports[i];
        svc->n_ports = i + 1;
        rc = pr_str(&ports[i], "name", true, &p->name);
        rc = rc ?: pr_str(&ports[i], "proto", true, &p->protocol);
        rc = rc ?: pr_int32(&ports[i], "port", true, &p->port);
        rc = rc ?: pr_int32(&ports[i], "nodeport", false, &p->node_port);
        rc = rc ?: pr_int32(&ports[i], "target", false, &p->target_port);
        rc = rc ?: pr_str(&ports[i], "targetname", false, &p->target_port_name);
    }
    if (rc < 0) {
        proto_service_destroy(&svc);
        return rc;
    }
    *out = svc;
    return KV_OK;
}

static int decode_slice(const msgpack_object *root, proto_endpoint_slice **out)
{
    proto_endpoint_slice *slice = calloc(1, sizeof *slice);
    const msgpack_object *ports, *endpoints;
    size_t n_ports, n_endpoints;
    int rc;

    if (!slice)
        return KV_ERR_NOMEM;
    rc = pr_str(root, "ns", true, &slice->namespace);
    rc = rc ?: pr_str(root, "name", true, &slice->name);
    rc = rc ?: pr_str(root, "service", false, &slice->service_name);
    rc = rc ?: pr_str(root, "addrtype", true, &slice->address_type);
    rc = rc ?: pr_array(root, "ports", false, &ports, &n_ports);
    rc = rc ?: pr_array(root, "endpoints", false, &endpoints, &n_endpoints);
    if (rc == 0 && (n_ports > MAX_PORTS || n_endpoints > MAX_ENDPOINTS))
        rc = KV_ERR_INVALID;
    if (rc == 0 && n_ports) {
        slice->ports = calloc(n_ports, sizeof *slice->ports);
        rc = slice->ports ? 0 : KV_ERR_NOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n_ports; i++) {
        slice->n_ports = i + 1;
        rc = pr_str(&ports[i], "name", true, &slice->ports[i].name);
        rc = rc ?: pr_str(&ports[i], "proto", true, &slice->ports[i].protocol);
        rc = rc ?: pr_int32(&ports[i], "port", true, &slice->ports[i].port);
    }
    if (rc == 0 && n_endpoints) {
        slice->endpoints = calloc(n_endpoints, sizeof *slice->endpoints);
        rc = slice->endpoints ? 0 : KV_ERR_NOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n_endpoints; i++) {
        proto_endpoint *e = &slice->endpoints[i];
        slice->n_endpoints = i + 1;
        rc = pr_str(&endpoints[i], "addr", true, &e->address);
        rc = rc ?: pr_str(&endpoints[i], "node", false, &e->node_name);
        rc = rc ?: pr_bool(&endpoints[i], "ready", true, &e->ready);
        rc = rc ?: pr_bool(&endpoints[i], "serving", true, &e->serving);
        rc = rc ?: pr_bool(&endpoints[i], "terminating", true, &e->terminating);
    }
    if (rc < 0) {
        proto_endpoint_slice_destroy(&slice);
        return rc;
    }
    *out = slice;
    return KV_OK;
}

/* An array of n zeroed items, or NULL when n is 0 or rc already failed. */
static void *items_new(size_t n, size_t size, int *rc)
{
    if (*rc < 0 || n == 0)
        return NULL;
    void *items = calloc(n, size);
    if (!items)
        *rc = KV_ERR_NOMEM;
    return items;
}

/* map[key] as an array of at most max items, each a map (checked by the
 * pr_* reads that follow) or, for pr_strs, a string. */
static int pr_items(const msgpack_object *map, const char *key, size_t max,
                    const msgpack_object **items, size_t *n)
{
    int rc = pr_array(map, key, false, items, n);
    return rc == 0 && *n > max ? KV_ERR_INVALID : rc;
}

static int pr_strs(const msgpack_object *map, const char *key, size_t max, char ***out,
                   size_t *n_out)
{
    const msgpack_object *items;
    size_t n;
    int rc = pr_items(map, key, max, &items, &n);
    *out = items_new(n, sizeof **out, &rc);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        *n_out = i + 1;
        rc = pr_str_of(&items[i], &(*out)[i]);
    }
    return rc;
}

static int pr_labels(const msgpack_object *map, const char *key, proto_label **out,
                     size_t *n_out)
{
    const msgpack_object *items;
    size_t n;
    int rc = pr_array(map, key, false, &items, &n);
    if (rc == 0 && (n % 2 != 0 || n / 2 > MAX_LABELS))
        rc = KV_ERR_INVALID;
    *out = items_new(n / 2, sizeof **out, &rc);
    for (size_t i = 0; rc == 0 && i < n / 2; i++) {
        *n_out = i + 1;
        rc = pr_str_of(&items[2 * i], &(*out)[i].key);
        rc = rc ?: pr_str_of(&items[2 * i + 1], &(*out)[i].value);
    }
    return rc;
}

/* PEM text: a string no larger than a Secret can be. */
static int pr_pem(const msgpack_object *map, const char *key, bool required, char **out)
{
    const char *ptr = NULL;
    size_t len = 0;
    int rc = pr_bytes(map, key, required, &ptr, &len);
    if (rc == 0 && len > MAX_PEM)
        rc = KV_ERR_TOO_LARGE;
    return rc ?: pr_str(map, key, required, out);
}

static void free_strs(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static void free_labels(proto_label *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(labels[i].key);
        free(labels[i].value);
    }
    free(labels);
}

static int decode_namespace(const msgpack_object *root, proto_namespace **out)
{
    proto_namespace *ns = calloc(1, sizeof *ns);
    int rc;

    if (!ns)
        return KV_ERR_NOMEM;
    rc = pr_str(root, "name", true, &ns->name);
    rc = rc ?: pr_str(root, "tenant", false, &ns->tenant);
    rc = rc ?: pr_labels(root, "labels", &ns->labels, &ns->n_labels);
    if (rc < 0) {
        proto_namespace_destroy(&ns);
        return rc;
    }
    *out = ns;
    return KV_OK;
}

static int decode_secret(const msgpack_object *root, proto_secret **out)
{
    proto_secret *secret = calloc(1, sizeof *secret);
    int rc;

    if (!secret)
        return KV_ERR_NOMEM;
    rc = pr_str(root, "ns", true, &secret->namespace);
    rc = rc ?: pr_str(root, "name", true, &secret->name);
    rc = rc ?: pr_pem(root, "crt", true, &secret->cert);
    rc = rc ?: pr_pem(root, "key", true, &secret->key);
    rc = rc ?: pr_pem(root, "altcrt", false, &secret->alt_cert);
    rc = rc ?: pr_pem(root, "altkey", false, &secret->alt_key);
    if (rc < 0) {
        proto_secret_destroy(&secret);
        return rc;
    }
    *out = secret;
    return KV_OK;
}

static int decode_ingress_backend(const msgpack_object *map, const char *key,
                                  proto_ingress_backend *b)
{
    const msgpack_object *obj = pr_get(map, key);
    if (!obj || obj->type != MSGPACK_OBJECT_MAP)
        return KV_ERR_INVALID;
    int rc = pr_str(obj, "svc", false, &b->service);
    rc = rc ?: pr_int32(obj, "port", false, &b->port);
    return rc ?: pr_str(obj, "portname", false, &b->port_name);
}

static int decode_ingress_rule(const msgpack_object *item, proto_ingress_rule *rule)
{
    const msgpack_object *paths;
    size_t n_paths;
    int rc = pr_str(item, "host", true, &rule->host);
    rc = rc ?: pr_items(item, "paths", MAX_PATHS, &paths, &n_paths);
    rule->paths = items_new(n_paths, sizeof *rule->paths, &rc);
    for (size_t i = 0; rc == 0 && i < n_paths; i++) {
        proto_ingress_path *path = &rule->paths[i];
        rule->n_paths = i + 1;
        rc = pr_str(&paths[i], "path", true, &path->path);
        rc = rc ?: pr_str(&paths[i], "type", true, &path->path_type);
        rc = rc ?: decode_ingress_backend(&paths[i], "backend", &path->backend);
    }
    return rc;
}

static int decode_ingress(const msgpack_object *root, proto_ingress **out)
{
    proto_ingress *ing = calloc(1, sizeof *ing);
    const msgpack_object *rules, *tls;
    size_t n_rules = 0, n_tls = 0;
    int rc;

    if (!ing)
        return KV_ERR_NOMEM;
    rc = pr_str(root, "ns", true, &ing->namespace);
    rc = rc ?: pr_str(root, "name", true, &ing->name);
    rc = rc ?: pr_str(root, "class", false, &ing->class_name);
    rc = rc ?: pr_str(root, "classanno", false, &ing->class_annotation);
    rc = rc ?: decode_ingress_backend(root, "default", &ing->default_backend);
    rc = rc ?: pr_items(root, "rules", MAX_RULES, &rules, &n_rules);
    rc = rc ?: pr_items(root, "tls", MAX_TLS, &tls, &n_tls);
    ing->rules = items_new(n_rules, sizeof *ing->rules, &rc);
    for (size_t i = 0; rc == 0 && i < n_rules; i++) {
        ing->n_rules = i + 1;
        rc = decode_ingress_rule(&rules[i], &ing->rules[i]);
    }
    ing->tls = items_new(n_tls, sizeof *ing->tls, &rc);
    for (size_t i = 0; rc == 0 && i < n_tls; i++) {
        ing->n_tls = i + 1;
        rc = pr_strs(&tls[i], "hosts", MAX_HOSTS, &ing->tls[i].hosts, &ing->tls[i].n_hosts);
        rc = rc ?: pr_str(&tls[i], "secret", false, &ing->tls[i].secret_name);
    }
    if (rc < 0) {
        proto_ingress_destroy(&ing);
        return rc;
    }
    *out = ing;
    return KV_OK;
}

static int decode_ingress_class(const msgpack_object *root, proto_ingress_class **out)
{
    proto_ingress_class *cls = calloc(1, sizeof *cls);
    int rc;

    if (!cls)
        return KV_ERR_NOMEM;
    rc = pr_str(root, "name", true, &cls->name);
    rc = rc ?: pr_str(root, "controller", true, &cls->controller);
    rc = rc ?: pr_bool(root, "default", true, &cls->is_default);
    if (rc < 0) {
        proto_ingress_class_destroy(&cls);
        return rc;
    }
    *out = cls;
    return KV_OK;
}

static int decode_route_backend(const msgpack_object *item, proto_route_backend *b)
{
    int rc = pr_str(item, "kind", true, &b->kind);
    rc = rc ?: pr_str(item, "name", true, &b->name);
    return rc ?: pr_int32(item, "weight", true, &b->weight);
}

static int decode_route(const msgpack_object *root, proto_route **out)
{
    proto_route *route = calloc(1, sizeof *route);
    const msgpack_object *to, *alt;
    size_t n_alt = 0;
    int rc;

    if (!route)
        return KV_ERR_NOMEM;
    rc = pr_str(root, "ns", true, &route->namespace);
    rc = rc ?: pr_str(root, "name", true, &route->name);
    rc = rc ?: pr_str(root, "host", true, &route->host);
    rc = rc ?: pr_str(root, "path", true, &route->path);
    to = pr_get(root, "to");
    rc = rc ?: decode_route_backend(to, &route->to);
    rc = rc ?: pr_items(root, "alt", MAX_BACKENDS, &alt, &n_alt);
    route->alternate_backends = items_new(n_alt, sizeof *route->alternate_backends, &rc);
    for (size_t i = 0; rc == 0 && i < n_alt; i++) {
        route->n_alternate_backends = i + 1;
        rc = decode_route_backend(&alt[i], &route->alternate_backends[i]);
    }
    rc = rc ?: pr_int32(root, "target", false, &route->target_port);
    rc = rc ?: pr_str(root, "targetname", false, &route->target_port_name);
    rc = rc ?: pr_str(root, "wildcard", true, &route->wildcard_policy);
    rc = rc ?: pr_str(root, "termination", false, &route->tls_termination);
    rc = rc ?: pr_pem(root, "crt", false, &route->tls_certificate);
    rc = rc ?: pr_pem(root, "key", false, &route->tls_key);
    rc = rc ?: pr_pem(root, "cacrt", false, &route->tls_ca_certificate);
    rc = rc ?: pr_pem(root, "destcacrt", false, &route->tls_destination_ca_certificate);
    rc = rc ?: pr_str(root, "insecure", false, &route->tls_insecure_edge_policy);
    if (rc < 0) {
        proto_route_destroy(&route);
        return rc;
    }
    *out = route;
    return KV_OK;
}

static int decode_gateway_class(const msgpack_object *root, proto_gateway_class **out)
{
    proto_gateway_class *cls = calloc(1, sizeof *cls);
    int rc;

    if (!cls)
        return KV_ERR_NOMEM;
    rc = pr_str(root, "name", true, &cls->name);
    rc = rc ?: pr_str(root, "controller", true, &cls->controller_name);
    if (rc < 0) {
        proto_gateway_class_destroy(&cls);
        return rc;
    }
    *out = cls;
    return KV_OK;
}

static int decode_gateway_listener(const msgpack_object *item, proto_gateway_listener *l)
{
    const msgpack_object *certs;
    size_t n_certs = 0;
    int rc = pr_str(item, "name", true, &l->name);
    rc = rc ?: pr_str(item, "hostname", false, &l->hostname);
    rc = rc ?: pr_int32(item, "port", true, &l->port);
    rc = rc ?: pr_str(item, "proto", true, &l->protocol);
    rc = rc ?: pr_str(item, "tlsmode", false, &l->tls_mode);
    rc = rc ?: pr_str(item, "from", true, &l->allowed_routes_from);
    rc = rc ?: pr_items(item, "certs", MAX_REFS, &certs, &n_certs);
    l->certificate_refs = items_new(n_certs, sizeof *l->certificate_refs, &rc);
    for (size_t i = 0; rc == 0 && i < n_certs; i++) {
        proto_gateway_cert_ref *ref = &l->certificate_refs[i];
        l->n_certificate_refs = i + 1;
        rc = pr_str(&certs[i], "group", true, &ref->group);
        rc = rc ?: pr_str(&certs[i], "kind", true, &ref->kind);
        rc = rc ?: pr_str(&certs[i], "ns", true, &ref->namespace);
        rc = rc ?: pr_str(&certs[i], "name", true, &ref->name);
    }
    return rc;
}

static int decode_gateway(const msgpack_object *root, proto_gateway **out)
{
    proto_gateway *gw = calloc(1, sizeof *gw);
    const msgpack_object *listeners, *addresses;
    size_t n_listeners = 0, n_addresses = 0;
    int rc;

    if (!gw)
        return KV_ERR_NOMEM;
    rc = pr_str(root, "ns", true, &gw->namespace);
    rc = rc ?: pr_str(root, "name", true, &gw->name);
    rc = rc ?: pr_str(root, "class", true, &gw->class_name);
    rc = rc ?: pr_items(root, "listeners", MAX_LISTENERS, &listeners, &n_listeners);
    rc = rc ?: pr_items(root, "addresses", MAX_REFS, &addresses, &n_addresses);
    gw->listeners = items_new(n_listeners, sizeof *gw->listeners, &rc);
    for (size_t i = 0; rc == 0 && i < n_listeners; i++) {
        gw->n_listeners = i + 1;
        rc = decode_gateway_listener(&listeners[i], &gw->listeners[i]);
    }
    gw->addresses = items_new(n_addresses, sizeof *gw->addresses, &rc);
    for (size_t i = 0; rc == 0 && i < n_addresses; i++) {
        gw->n_addresses = i + 1;
        rc = pr_str(&addresses[i], "type", true, &gw->addresses[i].type);
        rc = rc ?: pr_str(&addresses[i], "value", true, &gw->addresses[i].value);
    }
    if (rc < 0) {
        proto_gateway_destroy(&gw);
        return rc;
    }
    *out = gw;
    return KV_OK;
}

static int decode_http_match(const msgpack_object *item, proto_http_match *m)
{
    const msgpack_object *headers;
    size_t n_headers = 0;
    int rc = pr_str(item, "pathtype", true, &m->path_type);
    rc = rc ?: pr_str(item, "path", true, &m->path_value);
    rc = rc ?: pr_str(item, "method", false, &m->method);
    rc = rc ?: pr_items(item, "headers", MAX_HEADERS, &headers, &n_headers);
    m->headers = items_new(n_headers, sizeof *m->headers, &rc);
    for (size_t i = 0; rc == 0 && i < n_headers; i++) {
        m->n_headers = i + 1;
        rc = pr_str(&headers[i], "type", true, &m->headers[i].type);
        rc = rc ?: pr_str(&headers[i], "name", true, &m->headers[i].name);
        rc = rc ?: pr_str(&headers[i], "value", true, &m->headers[i].value);
    }
    return rc;
}

static int decode_backend_ref(const msgpack_object *item, proto_backend_ref *b)
{
    int rc = pr_str(item, "group", true, &b->group);
    rc = rc ?: pr_str(item, "kind", true, &b->kind);
    rc = rc ?: pr_str(item, "ns", true, &b->namespace);
    rc = rc ?: pr_str(item, "name", true, &b->name);
    rc = rc ?: pr_int32(item, "port", false, &b->port);
    return rc ?: pr_int32(item, "weight", true, &b->weight);
}

static int decode_http_rule(const msgpack_object *item, proto_http_rule *rule)
{
    const msgpack_object *matches, *backends;
    size_t n_matches = 0, n_backends = 0;
    int rc = pr_str(item, "name", false, &rule->name);
    rc = rc ?: pr_items(item, "matches", MAX_MATCHES, &matches, &n_matches);
    rc = rc ?: pr_items(item, "backends", MAX_BACKENDS, &backends, &n_backends);
    rule->matches = items_new(n_matches, sizeof *rule->matches, &rc);
    for (size_t i = 0; rc == 0 && i < n_matches; i++) {
        rule->n_matches = i + 1;
        rc = decode_http_match(&matches[i], &rule->matches[i]);
    }
    rule->backend_refs = items_new(n_backends, sizeof *rule->backend_refs, &rc);
    for (size_t i = 0; rc == 0 && i < n_backends; i++) {
        rule->n_backend_refs = i + 1;
        rc = decode_backend_ref(&backends[i], &rule->backend_refs[i]);
    }
    return rc;
}

static int decode_http_route(const msgpack_object *root, proto_http_route **out)
{
    proto_http_route *route = calloc(1, sizeof *route);
    const msgpack_object *parents, *rules;
    size_t n_parents = 0, n_rules = 0;
    int rc;

    if (!route)
        return KV_ERR_NOMEM;
    rc = pr_str(root, "ns", true, &route->namespace);
    rc = rc ?: pr_str(root, "name", true, &route->name);
    rc = rc ?: pr_items(root, "parents", MAX_REFS, &parents, &n_parents);
    rc = rc ?: pr_strs(root, "hostnames", MAX_HOSTS, &route->hostnames, &route->n_hostnames);
    rc = rc ?: pr_items(root, "rules", MAX_RULES, &rules, &n_rules);
    route->parent_refs = items_new(n_parents, sizeof *route->parent_refs, &rc);
    for (size_t i = 0; rc == 0 && i < n_parents; i++) {
        proto_parent_ref *ref = &route->parent_refs[i];
        route->n_parent_refs = i + 1;
        rc = pr_str(&parents[i], "group", true, &ref->group);
        rc = rc ?: pr_str(&parents[i], "kind", true, &ref->kind);
        rc = rc ?: pr_str(&parents[i], "ns", true, &ref->namespace);
        rc = rc ?: pr_str(&parents[i], "name", true, &ref->name);
        rc = rc ?: pr_str(&parents[i], "section", false, &ref->section_name);
        rc = rc ?: pr_int32(&parents[i], "port", false, &ref->port);
    }
    route->rules = items_new(n_rules, sizeof *route->rules, &rc);
    for (size_t i = 0; rc == 0 && i < n_rules; i++) {
        route->n_rules = i + 1;
        rc = decode_http_rule(&rules[i], &route->rules[i]);
    }
    if (rc < 0) {
        proto_http_route_destroy(&route);
        return rc;
    }
    *out = route;
    return KV_OK;
}

int proto_k8s_decode(proto_k8s_object *out, const void *data, size_t len)
{
    msgpack_unpacked up;
    uint64_t version = 0, kind = 0;
    int rc;

    memset(out, 0, sizeof *out);
    msgpack_unpacked_init(&up);
    rc = proto_unpack(&up, data, len);
    rc = rc ?: pr_uint(&up.data, "v", true, &version);
    if (rc == 0 && version != PROTO_VERSION)
        rc = KV_ERR_VERSION;
    rc = rc ?: pr_uint(&up.data, "kind", true, &kind);
    if (rc == 0) {
        switch (kind) {
        case PROTO_K8S_NODE:
            rc = decode_node(&up.data, &out->node);
            break;
        case PROTO_K8S_SERVICE:
            rc = decode_service(&up.data, &out->service);
            break;
        case PROTO_K8S_ENDPOINT_SLICE:
            rc = decode_slice(&up.data, &out->slice);
            break;
        case PROTO_K8S_NAMESPACE:
            rc = decode_namespace(&up.data, &out->namespace);
            break;
        case PROTO_K8S_SECRET:
            rc = decode_secret(&up.data, &out->secret);
            break;
        case PROTO_K8S_INGRESS:
            rc = decode_ingress(&up.data, &out->ingress);
            break;
        case PROTO_K8S_INGRESS_CLASS:
            rc = decode_ingress_class(&up.data, &out->ingress_class);
            break;
        case PROTO_K8S_ROUTE:
            rc = decode_route(&up.data, &out->route);
            break;
        case PROTO_K8S_GATEWAY_CLASS:
            rc = decode_gateway_class(&up.data, &out->gateway_class);
            break;
        case PROTO_K8S_GATEWAY:
            rc = decode_gateway(&up.data, &out->gateway);
            break;
        case PROTO_K8S_HTTP_ROUTE:
            rc = decode_http_route(&up.data, &out->http_route);
            break;
        default:
            rc = KV_ERR_INVALID;
        }
        out->kind = (proto_k8s_kind)kind;
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

void proto_k8s_object_clear(proto_k8s_object *obj)
{
    proto_node_destroy(&obj->node);
    proto_service_destroy(&obj->service);
    proto_endpoint_slice_destroy(&obj->slice);
    proto_namespace_destroy(&obj->namespace);
    proto_secret_destroy(&obj->secret);
    proto_ingress_destroy(&obj->ingress);
    proto_ingress_class_destroy(&obj->ingress_class);
    proto_route_destroy(&obj->route);
    proto_gateway_class_destroy(&obj->gateway_class);
    proto_gateway_destroy(&obj->gateway);
    proto_http_route_destroy(&obj->http_route);
}

void proto_node_destroy(proto_node **node_p)
{
    proto_node *node = *node_p;
    if (!node)
        return;
    for (size_t i = 0; i < node->n_labels; i++) {
        free(node->labels[i].key);
        free(node->labels[i].value);
    }
    free(node->labels);
    free(node->name);
    free(node->internal_ipv4);
    free(node->internal_ipv6);
    free(node->calico_ipv4);
    free(node->calico_ipv6);
    free(node->antrea_transport);
    free(node);
    *node_p = NULL;
}

void proto_service_destroy(proto_service **svc_p)
{
    proto_service *svc = *svc_p;
    if (!svc)
        return;
    for (size_t i = 0; i < svc->n_ports; i++) {
        free(svc->ports[i].name);
        free(svc->ports[i].protocol);
        free(svc->ports[i].target_port_name);
    }
    free(svc->ports);
    free(svc->namespace);
    free(svc->name);
    free(svc->type);
    free(svc->load_balancer_class);
    free(svc->load_balancer_ip);
    free(svc);
    *svc_p = NULL;
}

void proto_endpoint_slice_destroy(proto_endpoint_slice **slice_p)
{
    proto_endpoint_slice *slice = *slice_p;
    if (!slice)
        return;
    for (size_t i = 0; i < slice->n_ports; i++) {
        free(slice->ports[i].name);
        free(slice->ports[i].protocol);
    }
    for (size_t i = 0; i < slice->n_endpoints; i++) {
        free(slice->endpoints[i].address);
        free(slice->endpoints[i].node_name);
    }
    free(slice->ports);
    free(slice->endpoints);
    free(slice->namespace);
    free(slice->name);
    free(slice->service_name);
    free(slice->address_type);
    free(slice);
    *slice_p = NULL;
}

void proto_namespace_destroy(proto_namespace **ns_p)
{
    proto_namespace *ns = *ns_p;
    if (!ns)
        return;
    free_labels(ns->labels, ns->n_labels);
    free(ns->name);
    free(ns->tenant);
    free(ns);
    *ns_p = NULL;
}

void proto_secret_destroy(proto_secret **secret_p)
{
    proto_secret *secret = *secret_p;
    if (!secret)
        return;
    free(secret->namespace);
    free(secret->name);
    free(secret->cert);
    free(secret->key);
    free(secret->alt_cert);
    free(secret->alt_key);
    free(secret);
    *secret_p = NULL;
}

static void free_ingress_backend(proto_ingress_backend *b)
{
    free(b->service);
    free(b->port_name);
}

void proto_ingress_destroy(proto_ingress **ing_p)
{
    proto_ingress *ing = *ing_p;
    if (!ing)
        return;
    for (size_t i = 0; i < ing->n_rules; i++) {
        proto_ingress_rule *rule = &ing->rules[i];
        for (size_t j = 0; j < rule->n_paths; j++) {
            free(rule->paths[j].path);
            free(rule->paths[j].path_type);
            free_ingress_backend(&rule->paths[j].backend);
        }
        free(rule->paths);
        free(rule->host);
    }
    for (size_t i = 0; i < ing->n_tls; i++) {
        free_strs(ing->tls[i].hosts, ing->tls[i].n_hosts);
        free(ing->tls[i].secret_name);
    }
    free(ing->rules);
    free(ing->tls);
    free_ingress_backend(&ing->default_backend);
    free(ing->namespace);
    free(ing->name);
    free(ing->class_name);
    free(ing->class_annotation);
    free(ing);
    *ing_p = NULL;
}

void proto_ingress_class_destroy(proto_ingress_class **cls_p)
{
    proto_ingress_class *cls = *cls_p;
    if (!cls)
        return;
    free(cls->name);
    free(cls->controller);
    free(cls);
    *cls_p = NULL;
}

static void free_route_backend(proto_route_backend *b)
{
    free(b->kind);
    free(b->name);
}

void proto_route_destroy(proto_route **route_p)
{
    proto_route *route = *route_p;
    if (!route)
        return;
    for (size_t i = 0; i < route->n_alternate_backends; i++)
        free_route_backend(&route->alternate_backends[i]);
    free(route->alternate_backends);
    free_route_backend(&route->to);
    free(route->namespace);
    free(route->name);
    free(route->host);
    free(route->path);
    free(route->target_port_name);
    free(route->wildcard_policy);
    free(route->tls_termination);
    free(route->tls_certificate);
    free(route->tls_key);
    free(route->tls_ca_certificate);
    free(route->tls_destination_ca_certificate);
    free(route->tls_insecure_edge_policy);
    free(route);
    *route_p = NULL;
}

void proto_gateway_class_destroy(proto_gateway_class **cls_p)
{
    proto_gateway_class *cls = *cls_p;
    if (!cls)
        return;
    free(cls->name);
    free(cls->controller_name);
    free(cls);
    *cls_p = NULL;
}

void proto_gateway_destroy(proto_gateway **gw_p)
{
    proto_gateway *gw = *gw_p;
    if (!gw)
        return;
    for (size_t i = 0; i < gw->n_listeners; i++) {
        proto_gateway_listener *l = &gw->listeners[i];
        for (size_t j = 0; j < l->n_certificate_refs; j++) {
            free(l->certificate_refs[j].group);
            free(l->certificate_refs[j].kind);
            free(l->certificate_refs[j].namespace);
            free(l->certificate_refs[j].name);
        }
        free(l->certificate_refs);
        free(l->name);
        free(l->hostname);
        free(l->protocol);
        free(l->tls_mode);
        free(l->allowed_routes_from);
    }
    for (size_t i = 0; i < gw->n_addresses; i++) {
        free(gw->addresses[i].type);
        free(gw->addresses[i].value);
    }
    free(gw->listeners);
    free(gw->addresses);
    free(gw->namespace);
    free(gw->name);
    free(gw->class_name);
    free(gw);
    *gw_p = NULL;
}

static void free_http_rule(proto_http_rule *rule)
{
    for (size_t i = 0; i < rule->n_matches; i++) {
        proto_http_match *m = &rule->matches[i];
        for (size_t j = 0; j < m->n_headers; j++) {
            free(m->headers[j].type);
            free(m->headers[j].name);
            free(m->headers[j].value);
        }
        free(m->headers);
        free(m->path_type);
        free(m->path_value);
        free(m->method);
    }
    for (size_t i = 0; i < rule->n_backend_refs; i++) {
        proto_backend_ref *b = &rule->backend_refs[i];
        free(b->group);
        free(b->kind);
        free(b->namespace);
        free(b->name);
    }
    free(rule->matches);
    free(rule->backend_refs);
    free(rule->name);
}

void proto_http_route_destroy(proto_http_route **route_p)
{
    proto_http_route *route = *route_p;
    if (!route)
        return;
    for (size_t i = 0; i < route->n_parent_refs; i++) {
        proto_parent_ref *ref = &route->parent_refs[i];
        free(ref->group);
        free(ref->kind);
        free(ref->namespace);
        free(ref->name);
        free(ref->section_name);
    }
    for (size_t i = 0; i < route->n_rules; i++)
        free_http_rule(&route->rules[i]);
    free(route->parent_refs);
    free(route->rules);
    free_strs(route->hostnames, route->n_hostnames);
    free(route->namespace);
    free(route->name);
    free(route);
    *route_p = NULL;
}

int proto_k8s_key(char *buf, size_t buf_len, const char *kind, const char *ns, const char *name)
{
    int n;
    if (ns && *ns)
        n = snprintf(buf, buf_len, "%s/%s/%s", kind, ns, name);
    else
        n = snprintf(buf, buf_len, "%s/%s", kind, name);
    return n < 0 || (size_t)n >= buf_len ? -1 : n;
}
