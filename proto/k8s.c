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
    pw_header(&w, 7, PROTO_K8S_SERVICE);
    pw_kstr(&w, "ns", svc->namespace);
    pw_kstr(&w, "name", svc->name);
    pw_kstr(&w, "type", svc->type);
    pw_kstr(&w, "lbclass", svc->load_balancer_class);
    pw_kbool(&w, "local", svc->external_traffic_local);
    pw_kint(&w, "hcport", svc->health_check_node_port);
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

int proto_k8s_key(char *buf, size_t buf_len, const char *kind, const char *ns, const char *name)
{
    int n;
    if (ns && *ns)
        n = snprintf(buf, buf_len, "%s/%s/%s", kind, ns, name);
    else
        n = snprintf(buf, buf_len, "%s/%s", kind, name);
    return n < 0 || (size_t)n >= buf_len ? -1 : n;
}
