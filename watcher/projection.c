/* projection.c — see projection.h. Every field read goes through one of the
 * typed getters below, which name the field's full path in the rejection
 * line; absent and JSON null read the same ("not set"), as the API server
 * omits or nulls unset optional fields interchangeably. Defaults follow the
 * API server's own defaulting, so a hand-written manifest and the object the
 * server would store project the same. */
#include "watcher/projection.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/error.h"
#include "common/log.h"

/* The decoders in proto/k8s.c refuse more than this; refusing here names the
 * object instead of leaving the planner with an undecodable body. */
#define PROJECTION_MAX_LABELS 1024
#define PROJECTION_MAX_PORTS 1024
#define PROJECTION_MAX_ENDPOINTS 4096
#define PROJECTION_MAX_RULES 1024
#define PROJECTION_MAX_PATHS 1024
#define PROJECTION_MAX_HOSTS 1024
#define PROJECTION_MAX_TLS 1024
#define PROJECTION_MAX_BACKENDS 256
#define PROJECTION_MAX_REFS 256
#define PROJECTION_MAX_LISTENERS 256
#define PROJECTION_MAX_MATCHES 256
#define PROJECTION_MAX_HEADERS 256
#define PROJECTION_MAX_PEM (1u << 20) /* a whole Secret is at most 1 MiB */

#define PROJECTION_PATH_MAX 320
#define PROJECTION_PREFIX_MAX 64 /* "spec.ports[1023]" and the like */

#define API_CORE_V1 "v1"
#define API_DISCOVERY_V1 "discovery.k8s.io/v1"
#define API_NETWORKING_V1 "networking.k8s.io/v1"
#define API_ROUTE_V1 "route.openshift.io/v1"
#define API_GATEWAY_V1 "gateway.networking.k8s.io/v1"
#define GATEWAY_GROUP "gateway.networking.k8s.io"

#define LABEL_SERVICE_NAME "kubernetes.io/service-name"
#define ANNOTATION_CALICO_IPV4 "projectcalico.org/IPv4Address"
#define ANNOTATION_CALICO_IPV6 "projectcalico.org/IPv6Address"
#define ANNOTATION_ANTREA_TRANSPORT "node.antrea.io/transport-addresses"
#define TAINT_TO_BE_DELETED "ToBeDeletedByClusterAutoscaler"
#define ANNOTATION_TENANT "ako.vmware.com/tenant-name"
#define ANNOTATION_LB_IP "ako.vmware.com/load-balancer-ip"
#define ANNOTATION_INGRESS_CLASS "kubernetes.io/ingress.class"
#define ANNOTATION_DEFAULT_CLASS "ingressclass.kubernetes.io/is-default-class"
#define SECRET_TYPE_TLS "kubernetes.io/tls"
#define SECRET_TLS_CERT "tls.crt"
#define SECRET_TLS_KEY "tls.key"
#define SECRET_ALT_CERT "alt.crt"
#define SECRET_ALT_KEY "alt.key"
#define ROUTE_DEFAULT_WEIGHT 100     /* RouteTargetReference.weight */
#define HTTP_ROUTE_DEFAULT_WEIGHT 1  /* HTTPBackendRef.weight */

/* Who a rejection line is about, and where it goes. */
typedef struct {
    const char *kind;
    bool namespaced;
    const char *ns;   /* borrowed from the object; NULL until known */
    const char *name; /* borrowed from the object; NULL until known */
    char *err;
    size_t err_len;
} projection_ctx;

/* "Service default/foo" or "Node worker-1". Kubernetes names are at most 253
 * bytes; longer (invalid) ones are cut so the reason still fits the line. */
static void describe(const projection_ctx *ctx, char *buf, size_t len)
{
    const char *name = ctx->name && *ctx->name ? ctx->name : "(unnamed)";
    const char *ns = ctx->ns && *ctx->ns ? ctx->ns : "(no namespace)";
    const char *cut = strlen(name) > 253 || strlen(ns) > 63 ? "..." : "";
    if (ctx->namespaced)
        snprintf(buf, len, "%s %.63s/%.253s%s", ctx->kind, ns, name, cut);
    else
        snprintf(buf, len, "%s %.253s%s", ctx->kind, name, cut);
}

static int reject(projection_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int reject(projection_ctx *ctx, const char *fmt, ...)
{
    char who[PROJECTION_KEY_MAX];
    char reason[PROJECTION_PATH_MAX + 64];
    va_list args;
    va_start(args, fmt);
    vsnprintf(reason, sizeof reason, fmt, args);
    va_end(args);
    describe(ctx, who, sizeof who);
    if (ctx->err && ctx->err_len)
        snprintf(ctx->err, ctx->err_len, "%s: %s", who, reason);
    return KV_ERR_INVALID;
}

/* A field path that did not fit its buffer (only a hostile map key or a
 * deeply nested index can do that) ends in "...", so the rejection line
 * still names the object and shows that the path is cut. */
static void mark_if_cut(char *buf, size_t len, int written)
{
    if ((written < 0 || (size_t)written >= len) && len >= 4)
        memcpy(buf + len - 4, "...", 4);
}

/* "spec" + "type" → "spec.type"; map keys that are not identifiers are
 * quoted: metadata.labels["kubernetes.io/service-name"]. */
static const char *path_join(char *buf, size_t len, const char *prefix, const char *key)
{
    bool plain = strpbrk(key, "./\"[] ") == NULL;
    int n;
    if (!*prefix)
        n = snprintf(buf, len, plain ? "%s%s" : "%s[\"%s\"]", prefix, key);
    else
        n = snprintf(buf, len, plain ? "%s.%s" : "%s[\"%s\"]", prefix, key);
    mark_if_cut(buf, len, n);
    return buf;
}

/* Absent and null both mean "not set". */
static const json_t *field_of(const json_t *parent, const char *key)
{
    const json_t *value = json_is_object(parent) ? json_object_get(parent, key) : NULL;
    return json_is_null(value) ? NULL : value;
}

static int missing(projection_ctx *ctx, const char *prefix, const char *key)
{
    char path[PROJECTION_PATH_MAX];
    return reject(ctx, "%s is required", path_join(path, sizeof path, prefix, key));
}

static int get_object(projection_ctx *ctx, const json_t *parent, const char *prefix,
                      const char *key, bool required, const json_t **out)
{
    char path[PROJECTION_PATH_MAX];
    const json_t *value = field_of(parent, key);
    *out = NULL;
    if (!value)
        return required ? missing(ctx, prefix, key) : KV_OK;
    if (!json_is_object(value))
        return reject(ctx, "%s must be an object", path_join(path, sizeof path, prefix, key));
    *out = value;
    return KV_OK;
}

static int get_array(projection_ctx *ctx, const json_t *parent, const char *prefix,
                     const char *key, size_t max_items, const json_t **out)
{
    char path[PROJECTION_PATH_MAX];
    const json_t *value = field_of(parent, key);
    *out = NULL;
    if (!value)
        return KV_OK;
    if (!json_is_array(value))
        return reject(ctx, "%s must be an array", path_join(path, sizeof path, prefix, key));
    if (json_array_size(value) > max_items)
        return reject(ctx, "%s has more than %zu items", path_join(path, sizeof path, prefix, key),
                      max_items);
    *out = value;
    return KV_OK;
}

/* *out is borrowed from the object. */
static int get_string(projection_ctx *ctx, const json_t *parent, const char *prefix,
                      const char *key, bool required, const char **out)
{
    char path[PROJECTION_PATH_MAX];
    const json_t *value = field_of(parent, key);
    if (!value)
        return required ? missing(ctx, prefix, key) : KV_OK;
    if (!json_is_string(value))
        return reject(ctx, "%s must be a string", path_join(path, sizeof path, prefix, key));
    *out = json_string_value(value);
    return KV_OK;
}

static int check_int_range(projection_ctx *ctx, const json_t *value, const char *path,
                           int32_t min, int32_t max, int32_t *out)
{
    if (!json_is_integer(value))
        return reject(ctx, "%s must be an integer", path);
    json_int_t n = json_integer_value(value);
    if (n < min || n > max)
        return reject(ctx, "%s must be between %d and %d, not %lld", path, (int)min, (int)max,
                      (long long)n);
    *out = (int32_t)n;
    return KV_OK;
}

static int get_int(projection_ctx *ctx, const json_t *parent, const char *prefix, const char *key,
                   bool required, int32_t min, int32_t max, int32_t *out)
{
    char path[PROJECTION_PATH_MAX];
    const json_t *value = field_of(parent, key);
    if (!value)
        return required ? missing(ctx, prefix, key) : KV_OK;
    return check_int_range(ctx, value, path_join(path, sizeof path, prefix, key), min, max, out);
}

static int get_bool(projection_ctx *ctx, const json_t *parent, const char *prefix,
                    const char *key, bool *out)
{
    char path[PROJECTION_PATH_MAX];
    const json_t *value = field_of(parent, key);
    if (!value)
        return KV_OK;
    if (!json_is_boolean(value))
        return reject(ctx, "%s must be a boolean", path_join(path, sizeof path, prefix, key));
    *out = json_is_true(value);
    return KV_OK;
}

static int copy_string(char **out, const char *value)
{
    *out = NULL;
    if (!value)
        return KV_OK;
    *out = strdup(value);
    return *out ? KV_OK : KV_ERR_NOMEM;
}

/* Reads kind-independent identity, best effort, so that even the rejection
 * of a malformed metadata block names what it can. */
static void identify(projection_ctx *ctx, const json_t *object)
{
    const json_t *metadata = field_of(object, "metadata");
    const json_t *name = field_of(metadata, "name");
    const json_t *ns = field_of(metadata, "namespace");
    ctx->name = json_is_string(name) ? json_string_value(name) : NULL;
    ctx->ns = json_is_string(ns) ? json_string_value(ns) : NULL;
}

/* metadata.name, and metadata.namespace for namespaced kinds, must be
 * non-empty strings: they are the stream key. */
static int check_identity(projection_ctx *ctx, const json_t *object, const json_t **metadata)
{
    const char *name = NULL, *ns = NULL;
    int rc;
    identify(ctx, object);
    if (!json_is_object(object))
        return reject(ctx, "the object is not a JSON object");
    rc = get_object(ctx, object, "", "metadata", true, metadata);
    rc = rc ?: get_string(ctx, *metadata, "metadata", "name", true, &name);
    if (rc == KV_OK && !*name)
        rc = reject(ctx, "metadata.name is empty");
    if (rc == KV_OK && ctx->namespaced) {
        rc = get_string(ctx, *metadata, "metadata", "namespace", true, &ns);
        if (rc == KV_OK && !*ns)
            rc = reject(ctx, "metadata.namespace is empty");
    }
    return rc;
}

static int compare_labels(const void *a, const void *b)
{
    return strcmp(((const proto_label *)a)->key, ((const proto_label *)b)->key);
}

/* Copies metadata.labels sorted by key, so that the encoded body does not
 * change when only the server's key order does (bus_pub_put compares bytes). */
static int copy_labels(projection_ctx *ctx, const json_t *metadata, proto_label **out,
                       size_t *n_out)
{
    const json_t *labels = NULL;
    const char *key;
    json_t *value;
    char path[PROJECTION_PATH_MAX];
    int rc = get_object(ctx, metadata, "metadata", "labels", false, &labels);
    if (rc < 0 || !labels || json_object_size(labels) == 0)
        return rc;
    if (json_object_size(labels) > PROJECTION_MAX_LABELS)
        return reject(ctx, "metadata.labels has more than %d entries", PROJECTION_MAX_LABELS);
    *out = calloc(json_object_size(labels), sizeof **out);
    if (!*out)
        return KV_ERR_NOMEM;
    json_object_foreach((json_t *)labels, key, value) {
        if (!json_is_string(value))
            return reject(ctx, "%s must be a string",
                          path_join(path, sizeof path, "metadata.labels", key));
        proto_label *label = &(*out)[*n_out];
        (*n_out)++;
        rc = copy_string(&label->key, key);
        rc = rc ?: copy_string(&label->value, json_string_value(value));
        if (rc < 0)
            return rc;
    }
    qsort(*out, *n_out, sizeof **out, compare_labels);
    return KV_OK;
}

/* Calico annotates a node with its tunnel address as a CIDR
 * ("10.0.0.5/24"); a pool server needs the address alone. */
static int copy_without_mask(char **out, const char *cidr)
{
    *out = NULL;
    if (!cidr)
        return KV_OK;
    size_t len = strcspn(cidr, "/");
    if (len == 0)
        return KV_OK;
    *out = strndup(cidr, len);
    return *out ? KV_OK : KV_ERR_NOMEM;
}

static int node_addresses(projection_ctx *ctx, const json_t *object, proto_node *node)
{
    const json_t *status = NULL, *addresses = NULL, *entry;
    char prefix[PROJECTION_PREFIX_MAX];
    size_t i;
    int rc = get_object(ctx, object, "", "status", false, &status);
    rc = rc ?: get_array(ctx, status, "status", "addresses", SIZE_MAX, &addresses);
    if (rc < 0)
        return rc;
    json_array_foreach(addresses, i, entry) {
        const char *type = NULL, *address = NULL;
        snprintf(prefix, sizeof prefix, "status.addresses[%zu]", i);
        if (!json_is_object(entry))
            return reject(ctx, "%s must be an object", prefix);
        rc = get_string(ctx, entry, prefix, "type", true, &type);
        rc = rc ?: get_string(ctx, entry, prefix, "address", true, &address);
        if (rc < 0)
            return rc;
        if (strcmp(type, "InternalIP") != 0)
            continue;
        /* Dual-stack nodes list one InternalIP per family; the first wins. */
        char **slot = strchr(address, ':') ? &node->internal_ipv6 : &node->internal_ipv4;
        if (!*slot && (rc = copy_string(slot, address)) < 0)
            return rc;
    }
    return KV_OK;
}

static int node_annotations(projection_ctx *ctx, const json_t *metadata, proto_node *node)
{
    const json_t *annotations = NULL;
    const char *calico4 = NULL, *calico6 = NULL, *antrea = NULL;
    const char *prefix = "metadata.annotations";
    int rc = get_object(ctx, metadata, "metadata", "annotations", false, &annotations);
    rc = rc ?: get_string(ctx, annotations, prefix, ANNOTATION_CALICO_IPV4, false, &calico4);
    rc = rc ?: get_string(ctx, annotations, prefix, ANNOTATION_CALICO_IPV6, false, &calico6);
    rc = rc ?: get_string(ctx, annotations, prefix, ANNOTATION_ANTREA_TRANSPORT, false, &antrea);
    rc = rc ?: copy_without_mask(&node->calico_ipv4, calico4);
    rc = rc ?: copy_without_mask(&node->calico_ipv6, calico6);
    if (rc == KV_OK && antrea && *antrea)
        rc = copy_string(&node->antrea_transport, antrea);
    return rc;
}

static int node_taints(projection_ctx *ctx, const json_t *object, proto_node *node)
{
    const json_t *spec = NULL, *taints = NULL, *taint;
    char prefix[PROJECTION_PREFIX_MAX];
    size_t i;
    int rc = get_object(ctx, object, "", "spec", false, &spec);
    rc = rc ?: get_array(ctx, spec, "spec", "taints", SIZE_MAX, &taints);
    if (rc < 0)
        return rc;
    json_array_foreach(taints, i, taint) {
        const char *key = NULL;
        snprintf(prefix, sizeof prefix, "spec.taints[%zu]", i);
        if (!json_is_object(taint))
            return reject(ctx, "%s must be an object", prefix);
        rc = get_string(ctx, taint, prefix, "key", true, &key);
        if (rc < 0)
            return rc;
        /* The cluster autoscaler's mark on a node it is about to remove. */
        if (strcmp(key, TAINT_TO_BE_DELETED) == 0)
            node->to_be_deleted = true;
    }
    return KV_OK;
}

int projection_node(proto_node **out, const json_t *object, char *err, size_t err_len)
{
    projection_ctx ctx = {.kind = "Node", .namespaced = false, .err = err, .err_len = err_len};
    const json_t *metadata = NULL;
    proto_node *node = NULL;
    int rc;

    *out = NULL;
    rc = check_identity(&ctx, object, &metadata);
    if (rc < 0)
        return rc;
    node = calloc(1, sizeof *node);
    if (!node)
        return KV_ERR_NOMEM;
    rc = copy_string(&node->name, ctx.name);
    rc = rc ?: node_addresses(&ctx, object, node);
    rc = rc ?: node_annotations(&ctx, metadata, node);
    rc = rc ?: copy_labels(&ctx, metadata, &node->labels, &node->n_labels);
    rc = rc ?: node_taints(&ctx, object, node);
    if (rc < 0)
        goto out_free_node;
    node->deleting = field_of(metadata, "deletionTimestamp") != NULL;
    *out = node;
    return KV_OK;

out_free_node:
    proto_node_destroy(&node);
    return rc;
}

/* targetPort is an IntOrString: a number, or the name of a container port.
 * The API server defaults 0, "" and absent to the Service port itself. */
static int service_target_port(projection_ctx *ctx, const json_t *entry, const char *prefix,
                               proto_service_port *port)
{
    char path[PROJECTION_PATH_MAX];
    const json_t *target = field_of(entry, "targetPort");
    path_join(path, sizeof path, prefix, "targetPort");
    port->target_port = port->port;
    if (!target)
        return KV_OK;
    if (json_is_string(target)) {
        const char *name = json_string_value(target);
        if (!*name)
            return KV_OK;
        port->target_port = 0;
        return copy_string(&port->target_port_name, name);
    }
    if (!json_is_integer(target))
        return reject(ctx, "%s must be an integer or a string", path);
    int32_t number = 0;
    int rc = check_int_range(ctx, target, path, 0, 65535, &number);
    if (rc == KV_OK && number != 0)
        port->target_port = number;
    return rc;
}

static int service_ports(projection_ctx *ctx, const json_t *spec, proto_service *svc)
{
    const json_t *ports = NULL, *entry;
    char prefix[PROJECTION_PREFIX_MAX];
    size_t i;
    int rc = get_array(ctx, spec, "spec", "ports", PROJECTION_MAX_PORTS, &ports);
    if (rc < 0 || !ports || json_array_size(ports) == 0)
        return rc;
    svc->ports = calloc(json_array_size(ports), sizeof *svc->ports);
    if (!svc->ports)
        return KV_ERR_NOMEM;
    json_array_foreach(ports, i, entry) {
        proto_service_port *port = &svc->ports[i];
        const char *name = "", *protocol = "TCP";
        svc->n_ports = i + 1;
        snprintf(prefix, sizeof prefix, "spec.ports[%zu]", i);
        if (!json_is_object(entry))
            return reject(ctx, "%s must be an object", prefix);
        rc = get_string(ctx, entry, prefix, "name", false, &name);
        rc = rc ?: get_string(ctx, entry, prefix, "protocol", false, &protocol);
        rc = rc ?: get_int(ctx, entry, prefix, "port", true, 1, 65535, &port->port);
        rc = rc ?: get_int(ctx, entry, prefix, "nodePort", false, 0, 65535, &port->node_port);
        rc = rc ?: service_target_port(ctx, entry, prefix, port);
        rc = rc ?: copy_string(&port->name, name);
        rc = rc ?: copy_string(&port->protocol, protocol);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

/* spec.ipFamilies: one family, or two (dual stack, primary first), never
 * twice the same (the API server's validation). Only which families are
 * listed reaches the planner, which prefers IPv4 whatever the order. An
 * absent or empty list stays "none listed": reading it as IPv4 is AKO's
 * choice, not an API default, so the planner makes it (pool_servers.c). */
static int service_ip_families(projection_ctx *ctx, const json_t *spec, proto_service *svc)
{
    const json_t *families = NULL, *entry;
    char path[PROJECTION_PREFIX_MAX];
    size_t i;
    int rc = get_array(ctx, spec, "spec", "ipFamilies", 2, &families);
    if (rc < 0)
        return rc;
    json_array_foreach(families, i, entry) {
        const char *family = json_is_string(entry) ? json_string_value(entry) : "";
        bool *listed = NULL;
        snprintf(path, sizeof path, "spec.ipFamilies[%zu]", i);
        if (strcmp(family, "IPv4") == 0)
            listed = &svc->family_ipv4;
        else if (strcmp(family, "IPv6") == 0)
            listed = &svc->family_ipv6;
        else
            return reject(ctx, "%s must be IPv4 or IPv6", path);
        if (*listed)
            return reject(ctx, "%s repeats %s", path, family);
        *listed = true;
    }
    return KV_OK;
}

static int get_annotation(projection_ctx *ctx, const json_t *metadata, const char *key,
                          const char **out);

/* The preferred VIP, as AKO reads it: the annotation (spec.loadBalancerIP
 * is deprecated since Kubernetes 1.24), else the field. */
static int service_preferred_ip(projection_ctx *ctx, const json_t *metadata, const json_t *spec,
                                proto_service *svc)
{
    const char *annotated = NULL, *field = NULL;
    int rc = get_annotation(ctx, metadata, ANNOTATION_LB_IP, &annotated);
    rc = rc ?: get_string(ctx, spec, "spec", "loadBalancerIP", false, &field);
    if (rc < 0)
        return rc;
    const char *ip = annotated && *annotated ? annotated : field && *field ? field : NULL;
    if (!ip)
        return KV_OK;
    unsigned char bytes[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, ip, bytes) != 1 && inet_pton(AF_INET6, ip, bytes) != 1)
        return reject(ctx, "%s %s is not an IP address",
                      ip == annotated ? "metadata.annotations." ANNOTATION_LB_IP
                                      : "spec.loadBalancerIP",
                      ip);
    return copy_string(&svc->load_balancer_ip, ip);
}

int projection_service(proto_service **out, const json_t *object, char *err, size_t err_len)
{
    projection_ctx ctx = {.kind = "Service", .namespaced = true, .err = err, .err_len = err_len};
    const json_t *metadata = NULL, *spec = NULL;
    const char *type = "ClusterIP", *lb_class = NULL, *policy = NULL;
    proto_service *svc = NULL;
    int rc;

    *out = NULL;
    rc = check_identity(&ctx, object, &metadata);
    rc = rc ?: get_object(&ctx, object, "", "spec", true, &spec);
    if (rc < 0)
        return rc;
    svc = calloc(1, sizeof *svc);
    if (!svc)
        return KV_ERR_NOMEM;
    rc = get_string(&ctx, spec, "spec", "type", false, &type);
    rc = rc ?: get_string(&ctx, spec, "spec", "loadBalancerClass", false, &lb_class);
    rc = rc ?: get_string(&ctx, spec, "spec", "externalTrafficPolicy", false, &policy);
    rc = rc ?: get_int(&ctx, spec, "spec", "healthCheckNodePort", false, 0, 65535,
                       &svc->health_check_node_port);
    rc = rc ?: copy_string(&svc->namespace, ctx.ns);
    rc = rc ?: copy_string(&svc->name, ctx.name);
    rc = rc ?: copy_string(&svc->type, type);
    rc = rc ?: copy_string(&svc->load_balancer_class, lb_class);
    rc = rc ?: service_ports(&ctx, spec, svc);
    rc = rc ?: service_ip_families(&ctx, spec, svc);
    rc = rc ?: service_preferred_ip(&ctx, metadata, spec, svc);
    if (rc < 0)
        goto out_free_service;
    /* "OnlyLocal" is the spelling of the alpha annotation era; the API
     * server still accepts and converts it. */
    svc->external_traffic_local =
        policy && (strcmp(policy, "Local") == 0 || strcmp(policy, "OnlyLocal") == 0);
    *out = svc;
    return KV_OK;

out_free_service:
    proto_service_destroy(&svc);
    return rc;
}

static int slice_ports(projection_ctx *ctx, const json_t *object, proto_endpoint_slice *slice)
{
    const json_t *ports = NULL, *entry;
    char prefix[PROJECTION_PREFIX_MAX];
    size_t i;
    int rc = get_array(ctx, object, "", "ports", PROJECTION_MAX_PORTS, &ports);
    if (rc < 0 || !ports || json_array_size(ports) == 0)
        return rc;
    slice->ports = calloc(json_array_size(ports), sizeof *slice->ports);
    if (!slice->ports)
        return KV_ERR_NOMEM;
    json_array_foreach(ports, i, entry) {
        proto_slice_port *port = &slice->ports[i];
        /* A Service's single unnamed port appears with name "" or null. */
        const char *name = "", *protocol = "TCP";
        slice->n_ports = i + 1;
        snprintf(prefix, sizeof prefix, "ports[%zu]", i);
        if (!json_is_object(entry))
            return reject(ctx, "%s must be an object", prefix);
        rc = get_string(ctx, entry, prefix, "name", false, &name);
        rc = rc ?: get_string(ctx, entry, prefix, "protocol", false, &protocol);
        rc = rc ?: get_int(ctx, entry, prefix, "port", true, 1, 65535, &port->port);
        rc = rc ?: copy_string(&port->name, name);
        rc = rc ?: copy_string(&port->protocol, protocol);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

/* Reads one endpoint into *endpoint; returns PROJECTION_IGNORED when it has
 * no address (nothing to send traffic to, but no reason to drop the slice). */
static int slice_endpoint(projection_ctx *ctx, const json_t *entry, const char *prefix,
                          proto_endpoint *endpoint)
{
    const json_t *addresses = NULL, *conditions = NULL;
    const char *node_name = NULL;
    char path[PROJECTION_PATH_MAX];
    int rc;

    if (!json_is_object(entry))
        return reject(ctx, "%s must be an object", prefix);
    rc = get_array(ctx, entry, prefix, "addresses", SIZE_MAX, &addresses);
    if (rc < 0)
        return rc;
    if (!addresses || json_array_size(addresses) == 0)
        return PROJECTION_IGNORED;
    /* The controller writes exactly one address; consumers use the first. */
    const json_t *address = json_array_get(addresses, 0);
    snprintf(path, sizeof path, "%s.addresses[0]", prefix);
    if (!json_is_string(address))
        return reject(ctx, "%s must be a string", path);
    rc = get_string(ctx, entry, prefix, "nodeName", false, &node_name);
    path_join(path, sizeof path, prefix, "conditions");
    rc = rc ?: get_object(ctx, entry, prefix, "conditions", false, &conditions);
    /* Unset ready and serving count as true, unset terminating as false
     * (discovery.k8s.io/v1 EndpointConditions). */
    endpoint->ready = true;
    endpoint->serving = true;
    endpoint->terminating = false;
    rc = rc ?: get_bool(ctx, conditions, path, "ready", &endpoint->ready);
    rc = rc ?: get_bool(ctx, conditions, path, "serving", &endpoint->serving);
    rc = rc ?: get_bool(ctx, conditions, path, "terminating", &endpoint->terminating);
    rc = rc ?: copy_string(&endpoint->address, json_string_value(address));
    rc = rc ?: copy_string(&endpoint->node_name, node_name);
    return rc;
}

static int slice_endpoints(projection_ctx *ctx, const json_t *object, proto_endpoint_slice *slice)
{
    const json_t *endpoints = NULL, *entry;
    char prefix[PROJECTION_PREFIX_MAX];
    size_t i;
    int rc = get_array(ctx, object, "", "endpoints", PROJECTION_MAX_ENDPOINTS, &endpoints);
    if (rc < 0 || !endpoints || json_array_size(endpoints) == 0)
        return rc;
    slice->endpoints = calloc(json_array_size(endpoints), sizeof *slice->endpoints);
    if (!slice->endpoints)
        return KV_ERR_NOMEM;
    json_array_foreach(endpoints, i, entry) {
        proto_endpoint *endpoint = &slice->endpoints[slice->n_endpoints];
        snprintf(prefix, sizeof prefix, "endpoints[%zu]", i);
        rc = slice_endpoint(ctx, entry, prefix, endpoint);
        if (rc == PROJECTION_IGNORED) {
            char who[PROJECTION_KEY_MAX];
            describe(ctx, who, sizeof who);
            log_warn("%s: %s has no addresses, skipped", who, prefix);
            continue;
        }
        /* Counted before the check: a half-filled endpoint is freed too. */
        slice->n_endpoints++;
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

int projection_endpoint_slice(proto_endpoint_slice **out, const json_t *object, char *err,
                              size_t err_len)
{
    projection_ctx ctx = {
        .kind = "EndpointSlice", .namespaced = true, .err = err, .err_len = err_len};
    const json_t *metadata = NULL, *labels = NULL;
    const char *service = NULL, *address_type = NULL;
    proto_endpoint_slice *slice = NULL;
    int rc;

    *out = NULL;
    rc = check_identity(&ctx, object, &metadata);
    rc = rc ?: get_object(&ctx, metadata, "metadata", "labels", false, &labels);
    rc = rc ?: get_string(&ctx, labels, "metadata.labels", LABEL_SERVICE_NAME, false, &service);
    rc = rc ?: get_string(&ctx, object, "", "addressType", true, &address_type);
    if (rc < 0)
        return rc;
    slice = calloc(1, sizeof *slice);
    if (!slice)
        return KV_ERR_NOMEM;
    rc = copy_string(&slice->namespace, ctx.ns);
    rc = rc ?: copy_string(&slice->name, ctx.name);
    rc = rc ?: copy_string(&slice->service_name, service);
    rc = rc ?: copy_string(&slice->address_type, address_type);
    rc = rc ?: slice_ports(&ctx, object, slice);
    rc = rc ?: slice_endpoints(&ctx, object, slice);
    if (rc < 0)
        goto out_free_slice;
    *out = slice;
    return KV_OK;

out_free_slice:
    proto_endpoint_slice_destroy(&slice);
    return rc;
}

/* ---- helpers for the kinds below ------------------------------------------ */

/* *out is the fallback when the field is not set. */
static int copy_or(char **out, const char *value, const char *fallback)
{
    return copy_string(out, value ? value : fallback);
}

/* An array of strings, each copied: "spec.tls[0].hosts[2] must be a string". */
static int get_strings(projection_ctx *ctx, const json_t *parent, const char *prefix,
                       const char *key, size_t max_items, char ***out, size_t *n_out)
{
    const json_t *items = NULL, *item;
    char path[PROJECTION_PATH_MAX], item_path[PROJECTION_PATH_MAX + 32];
    size_t i;
    int rc = get_array(ctx, parent, prefix, key, max_items, &items);
    if (rc < 0 || !items || json_array_size(items) == 0)
        return rc;
    *out = calloc(json_array_size(items), sizeof **out);
    if (!*out)
        return KV_ERR_NOMEM;
    path_join(path, sizeof path, prefix, key);
    json_array_foreach(items, i, item) {
        if (!json_is_string(item)) {
            mark_if_cut(item_path, sizeof item_path,
                        snprintf(item_path, sizeof item_path, "%s[%zu]", path, i));
            return reject(ctx, "%s must be a string", item_path);
        }
        (*n_out)++;
        rc = copy_string(&(*out)[i], json_string_value(item));
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

/* Like get_array, but absent is an error: the API requires the list. */
static int get_required_array(projection_ctx *ctx, const json_t *parent, const char *prefix,
                              const char *key, size_t max_items, const json_t **out)
{
    int rc = get_array(ctx, parent, prefix, key, max_items, out);
    if (rc == KV_OK && !*out)
        return missing(ctx, prefix, key);
    return rc;
}

/* metadata.annotations[key]; annotations are strings or nothing. */
static int get_annotation(projection_ctx *ctx, const json_t *metadata, const char *key,
                          const char **out)
{
    const json_t *annotations = NULL;
    int rc = get_object(ctx, metadata, "metadata", "annotations", false, &annotations);
    return rc ?: get_string(ctx, annotations, "metadata.annotations", key, false, out);
}

/* A PEM field of a Route: kept as written, within the size of a Secret. */
static int get_pem(projection_ctx *ctx, const json_t *parent, const char *prefix,
                   const char *key, char **out)
{
    char path[PROJECTION_PATH_MAX];
    const char *value = NULL;
    int rc = get_string(ctx, parent, prefix, key, false, &value);
    if (rc == KV_OK && value && strlen(value) > PROJECTION_MAX_PEM)
        return reject(ctx, "%s is larger than 1 MiB", path_join(path, sizeof path, prefix, key));
    return rc ?: copy_string(out, value);
}

/* One "prefix[i]" element that must be an object. */
static int get_item(projection_ctx *ctx, const json_t *entry, char *prefix, size_t prefix_len,
                    const char *array_path, size_t i)
{
    mark_if_cut(prefix, prefix_len, snprintf(prefix, prefix_len, "%s[%zu]", array_path, i));
    if (!json_is_object(entry))
        return reject(ctx, "%s must be an object", prefix);
    return KV_OK;
}

/* ---- Namespace ------------------------------------------------------------ */

int projection_namespace(proto_namespace **out, const json_t *object, char *err, size_t err_len)
{
    projection_ctx ctx = {.kind = "Namespace", .namespaced = false, .err = err,
                          .err_len = err_len};
    const json_t *metadata = NULL;
    const char *tenant = NULL;
    proto_namespace *ns = NULL;
    int rc;

    *out = NULL;
    rc = check_identity(&ctx, object, &metadata);
    rc = rc ?: get_annotation(&ctx, metadata, ANNOTATION_TENANT, &tenant);
    if (rc < 0)
        return rc;
    ns = calloc(1, sizeof *ns);
    if (!ns)
        return KV_ERR_NOMEM;
    rc = copy_string(&ns->name, ctx.name);
    rc = rc ?: copy_string(&ns->tenant, tenant);
    rc = rc ?: copy_labels(&ctx, metadata, &ns->labels, &ns->n_labels);
    if (rc < 0)
        goto out_free_namespace;
    *out = ns;
    return KV_OK;

out_free_namespace:
    proto_namespace_destroy(&ns);
    return rc;
}

/* ---- Secret --------------------------------------------------------------- */


/* Only TLS Secrets are watched (the live client selects them by field); any
 * other type is PROJECTION_IGNORED. An unset type is Opaque, the default. */
static int secret_type_is_tls(projection_ctx *ctx, const json_t *object)
{
    const char *type = "Opaque";
    int rc = get_string(ctx, object, "", "type", false, &type);
    if (rc < 0)
        return rc;
    if (strcmp(type, SECRET_TYPE_TLS) != 0) {
        log_debug("projection: ignored Secret %s/%s of type %s", ctx->ns ? ctx->ns : "",
                  ctx->name ? ctx->name : "", type);
        return PROJECTION_IGNORED;
    }
    return KV_OK;
}

/* One certificate or key: stringData[key] as written (what a manifest may
 * carry; the API server merges it into data and never returns it), else
 * data[key] decoded from base64. The bytes themselves are never logged: a
 * rejection names the field only. */
static int secret_pem(projection_ctx *ctx, const json_t *data, const json_t *string_data,
                      const char *key, bool required, char **out)
{
    char path[PROJECTION_PATH_MAX];
    const char *plain = NULL, *encoded = NULL;
    size_t len = 0;
    int rc = get_string(ctx, string_data, "stringData", key, false, &plain);
    if (rc < 0)
        return rc;
    if (plain) {
        if (strlen(plain) > PROJECTION_MAX_PEM)
            return reject(ctx, "%s is larger than 1 MiB",
                          path_join(path, sizeof path, "stringData", key));
        return copy_string(out, plain);
    }
    rc = get_string(ctx, data, "data", key, required, &encoded);
    if (rc < 0 || !encoded)
        return rc;
    path_join(path, sizeof path, "data", key);
    if (strlen(encoded) / 4 * 3 > PROJECTION_MAX_PEM)
        return reject(ctx, "%s is larger than 1 MiB", path);
    rc = base64_decode(out, &len, encoded, strlen(encoded), true);
    if (rc == KV_ERR_INVALID)
        return reject(ctx, "%s is not valid base64", path);
    if (rc == KV_OK && strlen(*out) != len) {
        free(*out);
        *out = NULL;
        return reject(ctx, "%s is not PEM text (it holds a NUL byte)", path);
    }
    return rc;
}

int projection_secret(proto_secret **out, const json_t *object, char *err, size_t err_len)
{
    projection_ctx ctx = {.kind = "Secret", .namespaced = true, .err = err, .err_len = err_len};
    const json_t *metadata = NULL, *data = NULL, *string_data = NULL;
    proto_secret *secret = NULL;
    int rc;

    *out = NULL;
    rc = check_identity(&ctx, object, &metadata);
    rc = rc ?: secret_type_is_tls(&ctx, object);
    rc = rc ?: get_object(&ctx, object, "", "data", false, &data);
    rc = rc ?: get_object(&ctx, object, "", "stringData", false, &string_data);
    if (rc != KV_OK)
        return rc;
    secret = calloc(1, sizeof *secret);
    if (!secret)
        return KV_ERR_NOMEM;
    rc = copy_string(&secret->namespace, ctx.ns);
    rc = rc ?: copy_string(&secret->name, ctx.name);
    rc = rc ?: secret_pem(&ctx, data, string_data, SECRET_TLS_CERT, true, &secret->cert);
    rc = rc ?: secret_pem(&ctx, data, string_data, SECRET_TLS_KEY, true, &secret->key);
    rc = rc ?: secret_pem(&ctx, data, string_data, SECRET_ALT_CERT, false, &secret->alt_cert);
    rc = rc ?: secret_pem(&ctx, data, string_data, SECRET_ALT_KEY, false, &secret->alt_key);
    if (rc < 0)
        goto out_free_secret;
    *out = secret;
    return KV_OK;

out_free_secret:
    proto_secret_destroy(&secret);
    return rc;
}

/* ---- Ingress, IngressClass ---------------------------------------------------- */

/* An IngressBackend: a Service (name + port number or name) or a resource,
 * which kavi cannot send traffic to (service stays NULL). */
static int ingress_backend(projection_ctx *ctx, const json_t *backend, const char *prefix,
                           proto_ingress_backend *out)
{
    char service_path[PROJECTION_PATH_MAX], port_path[PROJECTION_PATH_MAX];
    const json_t *service = NULL, *resource = NULL, *port = NULL;
    const char *name = NULL, *port_name = NULL;
    int rc = get_object(ctx, backend, prefix, "service", false, &service);
    rc = rc ?: get_object(ctx, backend, prefix, "resource", false, &resource);
    if (rc < 0)
        return rc;
    if (!service)
        return resource ? KV_OK : missing(ctx, prefix, "service");
    path_join(service_path, sizeof service_path, prefix, "service");
    path_join(port_path, sizeof port_path, service_path, "port");
    rc = get_string(ctx, service, service_path, "name", true, &name);
    rc = rc ?: get_object(ctx, service, service_path, "port", true, &port);
    rc = rc ?: get_int(ctx, port, port_path, "number", false, 1, 65535, &out->port);
    rc = rc ?: get_string(ctx, port, port_path, "name", false, &port_name);
    if (rc < 0)
        return rc;
    if (port_name && *port_name)
        out->port = 0;
    else if (out->port == 0)
        return reject(ctx, "%s needs a number or a name", port_path);
    rc = copy_string(&out->service, name);
    if (rc == KV_OK && port_name && *port_name)
        rc = copy_string(&out->port_name, port_name);
    return rc;
}

static int ingress_paths(projection_ctx *ctx, const json_t *rule, const char *rule_prefix,
                         proto_ingress_rule *out)
{
    char http_prefix[PROJECTION_PATH_MAX], paths_prefix[PROJECTION_PATH_MAX];
    char prefix[PROJECTION_PATH_MAX + 16], backend_prefix[PROJECTION_PATH_MAX + 32];
    const json_t *http = NULL, *paths = NULL, *entry;
    size_t i;
    int rc = get_object(ctx, rule, rule_prefix, "http", false, &http);
    path_join(http_prefix, sizeof http_prefix, rule_prefix, "http");
    if (rc < 0 || !http)
        return rc;
    rc = get_required_array(ctx, http, http_prefix, "paths", PROJECTION_MAX_PATHS, &paths);
    if (rc < 0 || json_array_size(paths) == 0)
        return rc;
    path_join(paths_prefix, sizeof paths_prefix, http_prefix, "paths");
    out->paths = calloc(json_array_size(paths), sizeof *out->paths);
    if (!out->paths)
        return KV_ERR_NOMEM;
    json_array_foreach(paths, i, entry) {
        proto_ingress_path *path = &out->paths[i];
        const json_t *backend = NULL;
        const char *value = NULL, *type = NULL;
        out->n_paths = i + 1;
        rc = get_item(ctx, entry, prefix, sizeof prefix, paths_prefix, i);
        rc = rc ?: get_string(ctx, entry, prefix, "path", false, &value);
        rc = rc ?: get_string(ctx, entry, prefix, "pathType", false, &type);
        rc = rc ?: get_object(ctx, entry, prefix, "backend", true, &backend);
        path_join(backend_prefix, sizeof backend_prefix, prefix, "backend");
        rc = rc ?: ingress_backend(ctx, backend, backend_prefix, &path->backend);
        /* networking.k8s.io/v1 requires pathType; v1beta1 defaulted it to
         * ImplementationSpecific, which is what a manifest without it meant. */
        rc = rc ?: copy_or(&path->path, value, "");
        rc = rc ?: copy_or(&path->path_type, type, "ImplementationSpecific");
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

static int ingress_rules(projection_ctx *ctx, const json_t *spec, proto_ingress *ing)
{
    const json_t *rules = NULL, *entry;
    char prefix[PROJECTION_PATH_MAX];
    size_t i;
    int rc = get_array(ctx, spec, "spec", "rules", PROJECTION_MAX_RULES, &rules);
    if (rc < 0 || !rules || json_array_size(rules) == 0)
        return rc;
    ing->rules = calloc(json_array_size(rules), sizeof *ing->rules);
    if (!ing->rules)
        return KV_ERR_NOMEM;
    json_array_foreach(rules, i, entry) {
        proto_ingress_rule *rule = &ing->rules[i];
        const char *host = NULL;
        ing->n_rules = i + 1;
        rc = get_item(ctx, entry, prefix, sizeof prefix, "spec.rules", i);
        rc = rc ?: get_string(ctx, entry, prefix, "host", false, &host);
        rc = rc ?: copy_or(&rule->host, host, "");
        rc = rc ?: ingress_paths(ctx, entry, prefix, rule);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

static int ingress_tls(projection_ctx *ctx, const json_t *spec, proto_ingress *ing)
{
    const json_t *tls = NULL, *entry;
    char prefix[PROJECTION_PATH_MAX];
    size_t i;
    int rc = get_array(ctx, spec, "spec", "tls", PROJECTION_MAX_TLS, &tls);
    if (rc < 0 || !tls || json_array_size(tls) == 0)
        return rc;
    ing->tls = calloc(json_array_size(tls), sizeof *ing->tls);
    if (!ing->tls)
        return KV_ERR_NOMEM;
    json_array_foreach(tls, i, entry) {
        proto_ingress_tls *out = &ing->tls[i];
        const char *secret = NULL;
        ing->n_tls = i + 1;
        rc = get_item(ctx, entry, prefix, sizeof prefix, "spec.tls", i);
        rc = rc ?: get_strings(ctx, entry, prefix, "hosts", PROJECTION_MAX_HOSTS, &out->hosts,
                               &out->n_hosts);
        rc = rc ?: get_string(ctx, entry, prefix, "secretName", false, &secret);
        rc = rc ?: copy_string(&out->secret_name, secret);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

int projection_ingress(proto_ingress **out, const json_t *object, char *err, size_t err_len)
{
    projection_ctx ctx = {.kind = "Ingress", .namespaced = true, .err = err, .err_len = err_len};
    const json_t *metadata = NULL, *spec = NULL, *default_backend = NULL;
    const char *class_name = NULL, *class_annotation = NULL;
    proto_ingress *ing = NULL;
    int rc;

    *out = NULL;
    rc = check_identity(&ctx, object, &metadata);
    rc = rc ?: get_annotation(&ctx, metadata, ANNOTATION_INGRESS_CLASS, &class_annotation);
    rc = rc ?: get_object(&ctx, object, "", "spec", true, &spec);
    rc = rc ?: get_string(&ctx, spec, "spec", "ingressClassName", false, &class_name);
    rc = rc ?: get_object(&ctx, spec, "spec", "defaultBackend", false, &default_backend);
    if (rc < 0)
        return rc;
    ing = calloc(1, sizeof *ing);
    if (!ing)
        return KV_ERR_NOMEM;
    rc = copy_string(&ing->namespace, ctx.ns);
    rc = rc ?: copy_string(&ing->name, ctx.name);
    rc = rc ?: copy_string(&ing->class_name, class_name);
    rc = rc ?: copy_string(&ing->class_annotation, class_annotation);
    if (rc == KV_OK && default_backend)
        rc = ingress_backend(&ctx, default_backend, "spec.defaultBackend", &ing->default_backend);
    rc = rc ?: ingress_rules(&ctx, spec, ing);
    rc = rc ?: ingress_tls(&ctx, spec, ing);
    if (rc < 0)
        goto out_free_ingress;
    *out = ing;
    return KV_OK;

out_free_ingress:
    proto_ingress_destroy(&ing);
    return rc;
}

int projection_ingress_class(proto_ingress_class **out, const json_t *object, char *err,
                             size_t err_len)
{
    projection_ctx ctx = {.kind = "IngressClass", .namespaced = false, .err = err,
                          .err_len = err_len};
    const json_t *metadata = NULL, *spec = NULL;
    const char *controller = NULL, *is_default = NULL;
    proto_ingress_class *cls = NULL;
    int rc;

    *out = NULL;
    rc = check_identity(&ctx, object, &metadata);
    rc = rc ?: get_annotation(&ctx, metadata, ANNOTATION_DEFAULT_CLASS, &is_default);
    rc = rc ?: get_object(&ctx, object, "", "spec", true, &spec);
    rc = rc ?: get_string(&ctx, spec, "spec", "controller", true, &controller);
    if (rc < 0)
        return rc;
    cls = calloc(1, sizeof *cls);
    if (!cls)
        return KV_ERR_NOMEM;
    rc = copy_string(&cls->name, ctx.name);
    rc = rc ?: copy_string(&cls->controller, controller);
    if (rc < 0) {
        proto_ingress_class_destroy(&cls);
        return rc;
    }
    /* Kubernetes' own check is exactly this string (IsDefaultIngressClass). */
    cls->is_default = is_default && strcmp(is_default, "true") == 0;
    *out = cls;
    return KV_OK;
}

/* ---- OpenShift Route ---------------------------------------------------------- */

static int route_backend(projection_ctx *ctx, const json_t *entry, const char *prefix,
                         proto_route_backend *out)
{
    const char *kind = NULL, *name = NULL;
    out->weight = ROUTE_DEFAULT_WEIGHT;
    int rc = get_string(ctx, entry, prefix, "kind", false, &kind);
    rc = rc ?: get_string(ctx, entry, prefix, "name", true, &name);
    rc = rc ?: get_int(ctx, entry, prefix, "weight", false, 0, 256, &out->weight);
    rc = rc ?: copy_or(&out->kind, kind, "Service");
    rc = rc ?: copy_string(&out->name, name);
    return rc;
}

static int route_alternate_backends(projection_ctx *ctx, const json_t *spec, proto_route *route)
{
    const json_t *backends = NULL, *entry;
    char prefix[PROJECTION_PATH_MAX];
    size_t i;
    int rc = get_array(ctx, spec, "spec", "alternateBackends", PROJECTION_MAX_BACKENDS,
                       &backends);
    if (rc < 0 || !backends || json_array_size(backends) == 0)
        return rc;
    route->alternate_backends = calloc(json_array_size(backends),
                                       sizeof *route->alternate_backends);
    if (!route->alternate_backends)
        return KV_ERR_NOMEM;
    json_array_foreach(backends, i, entry) {
        route->n_alternate_backends = i + 1;
        rc = get_item(ctx, entry, prefix, sizeof prefix, "spec.alternateBackends", i);
        rc = rc ?: route_backend(ctx, entry, prefix, &route->alternate_backends[i]);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

/* port.targetPort is an IntOrString: a number is the endpoint's port, a
 * string the name of the Service port. */
static int route_target_port(projection_ctx *ctx, const json_t *spec, proto_route *route)
{
    const json_t *port = NULL, *target;
    int rc = get_object(ctx, spec, "spec", "port", false, &port);
    if (rc < 0 || !port)
        return rc;
    target = field_of(port, "targetPort");
    if (!target)
        return missing(ctx, "spec.port", "targetPort");
    if (json_is_string(target)) {
        const char *name = json_string_value(target);
        return *name ? copy_string(&route->target_port_name, name) : KV_OK;
    }
    if (!json_is_integer(target))
        return reject(ctx, "spec.port.targetPort must be an integer or a string");
    return check_int_range(ctx, target, "spec.port.targetPort", 0, 65535, &route->target_port);
}

static int route_tls(projection_ctx *ctx, const json_t *spec, proto_route *route)
{
    const json_t *tls = NULL;
    const char *termination = NULL, *insecure = NULL;
    int rc = get_object(ctx, spec, "spec", "tls", false, &tls);
    if (rc < 0 || !tls)
        return rc;
    rc = get_string(ctx, tls, "spec.tls", "termination", true, &termination);
    rc = rc ?: get_string(ctx, tls, "spec.tls", "insecureEdgeTerminationPolicy", false,
                          &insecure);
    rc = rc ?: copy_string(&route->tls_termination, termination);
    rc = rc ?: copy_or(&route->tls_insecure_edge_policy, insecure, "None");
    rc = rc ?: get_pem(ctx, tls, "spec.tls", "certificate", &route->tls_certificate);
    rc = rc ?: get_pem(ctx, tls, "spec.tls", "key", &route->tls_key);
    rc = rc ?: get_pem(ctx, tls, "spec.tls", "caCertificate", &route->tls_ca_certificate);
    rc = rc ?: get_pem(ctx, tls, "spec.tls", "destinationCACertificate",
                       &route->tls_destination_ca_certificate);
    return rc;
}

int projection_route(proto_route **out, const json_t *object, char *err, size_t err_len)
{
    projection_ctx ctx = {.kind = "Route", .namespaced = true, .err = err, .err_len = err_len};
    const json_t *metadata = NULL, *spec = NULL, *to = NULL;
    const char *host = NULL, *path = NULL, *wildcard = NULL;
    proto_route *route = NULL;
    int rc;

    *out = NULL;
    rc = check_identity(&ctx, object, &metadata);
    rc = rc ?: get_object(&ctx, object, "", "spec", true, &spec);
    rc = rc ?: get_string(&ctx, spec, "spec", "host", false, &host);
    rc = rc ?: get_string(&ctx, spec, "spec", "path", false, &path);
    rc = rc ?: get_string(&ctx, spec, "spec", "wildcardPolicy", false, &wildcard);
    rc = rc ?: get_object(&ctx, spec, "spec", "to", true, &to);
    if (rc < 0)
        return rc;
    route = calloc(1, sizeof *route);
    if (!route)
        return KV_ERR_NOMEM;
    rc = copy_string(&route->namespace, ctx.ns);
    rc = rc ?: copy_string(&route->name, ctx.name);
    rc = rc ?: copy_or(&route->host, host, "");
    rc = rc ?: copy_or(&route->path, path, "");
    rc = rc ?: copy_or(&route->wildcard_policy, wildcard, "None");
    rc = rc ?: route_backend(&ctx, to, "spec.to", &route->to);
    rc = rc ?: route_alternate_backends(&ctx, spec, route);
    rc = rc ?: route_target_port(&ctx, spec, route);
    rc = rc ?: route_tls(&ctx, spec, route);
    if (rc < 0)
        goto out_free_route;
    *out = route;
    return KV_OK;

out_free_route:
    proto_route_destroy(&route);
    return rc;
}

/* ---- Gateway API ------------------------------------------------------------------ */

int projection_gateway_class(proto_gateway_class **out, const json_t *object, char *err,
                             size_t err_len)
{
    projection_ctx ctx = {.kind = "GatewayClass", .namespaced = false, .err = err,
                          .err_len = err_len};
    const json_t *metadata = NULL, *spec = NULL;
    const char *controller = NULL;
    proto_gateway_class *cls = NULL;
    int rc;

    *out = NULL;
    rc = check_identity(&ctx, object, &metadata);
    rc = rc ?: get_object(&ctx, object, "", "spec", true, &spec);
    rc = rc ?: get_string(&ctx, spec, "spec", "controllerName", true, &controller);
    if (rc < 0)
        return rc;
    cls = calloc(1, sizeof *cls);
    if (!cls)
        return KV_ERR_NOMEM;
    rc = copy_string(&cls->name, ctx.name);
    rc = rc ?: copy_string(&cls->controller_name, controller);
    if (rc < 0) {
        proto_gateway_class_destroy(&cls);
        return rc;
    }
    *out = cls;
    return KV_OK;
}

static int gateway_cert_refs(projection_ctx *ctx, const json_t *tls, const char *tls_prefix,
                             proto_gateway_listener *listener)
{
    const json_t *refs = NULL, *entry;
    char refs_prefix[PROJECTION_PATH_MAX], prefix[PROJECTION_PATH_MAX + 16];
    size_t i;
    int rc = get_array(ctx, tls, tls_prefix, "certificateRefs", PROJECTION_MAX_REFS, &refs);
    if (rc < 0 || !refs || json_array_size(refs) == 0)
        return rc;
    path_join(refs_prefix, sizeof refs_prefix, tls_prefix, "certificateRefs");
    listener->certificate_refs = calloc(json_array_size(refs), sizeof *listener->certificate_refs);
    if (!listener->certificate_refs)
        return KV_ERR_NOMEM;
    json_array_foreach(refs, i, entry) {
        proto_gateway_cert_ref *ref = &listener->certificate_refs[i];
        const char *group = NULL, *kind = NULL, *ns = NULL, *name = NULL;
        listener->n_certificate_refs = i + 1;
        rc = get_item(ctx, entry, prefix, sizeof prefix, refs_prefix, i);
        rc = rc ?: get_string(ctx, entry, prefix, "group", false, &group);
        rc = rc ?: get_string(ctx, entry, prefix, "kind", false, &kind);
        rc = rc ?: get_string(ctx, entry, prefix, "namespace", false, &ns);
        rc = rc ?: get_string(ctx, entry, prefix, "name", true, &name);
        /* SecretObjectReference defaults: the core group, Secret, and the
         * Gateway's own namespace. */
        rc = rc ?: copy_or(&ref->group, group, "");
        rc = rc ?: copy_or(&ref->kind, kind, "Secret");
        rc = rc ?: copy_or(&ref->namespace, ns, ctx->ns);
        rc = rc ?: copy_string(&ref->name, name);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

static int gateway_listener(projection_ctx *ctx, const json_t *entry, const char *prefix,
                            proto_gateway_listener *listener)
{
    char tls_prefix[PROJECTION_PATH_MAX], allowed_prefix[PROJECTION_PATH_MAX];
    char namespaces_prefix[PROJECTION_PATH_MAX];
    const json_t *tls = NULL, *allowed = NULL, *namespaces = NULL;
    const char *name = NULL, *hostname = NULL, *protocol = NULL, *mode = NULL, *from = NULL;
    path_join(tls_prefix, sizeof tls_prefix, prefix, "tls");
    path_join(allowed_prefix, sizeof allowed_prefix, prefix, "allowedRoutes");
    path_join(namespaces_prefix, sizeof namespaces_prefix, allowed_prefix, "namespaces");
    int rc = get_string(ctx, entry, prefix, "name", true, &name);
    rc = rc ?: get_string(ctx, entry, prefix, "hostname", false, &hostname);
    rc = rc ?: get_int(ctx, entry, prefix, "port", true, 1, 65535, &listener->port);
    rc = rc ?: get_string(ctx, entry, prefix, "protocol", true, &protocol);
    rc = rc ?: get_object(ctx, entry, prefix, "tls", false, &tls);
    rc = rc ?: get_string(ctx, tls, tls_prefix, "mode", false, &mode);
    rc = rc ?: get_object(ctx, entry, prefix, "allowedRoutes", false, &allowed);
    rc = rc ?: get_object(ctx, allowed, allowed_prefix, "namespaces", false, &namespaces);
    rc = rc ?: get_string(ctx, namespaces, namespaces_prefix, "from", false, &from);
    rc = rc ?: copy_string(&listener->name, name);
    rc = rc ?: copy_string(&listener->hostname, hostname);
    rc = rc ?: copy_string(&listener->protocol, protocol);
    rc = rc ?: copy_or(&listener->allowed_routes_from, from, "Same");
    if (rc == KV_OK && tls)
        rc = copy_or(&listener->tls_mode, mode, "Terminate");
    if (rc == KV_OK && tls)
        rc = gateway_cert_refs(ctx, tls, tls_prefix, listener);
    return rc;
}

static int gateway_listeners(projection_ctx *ctx, const json_t *spec, proto_gateway *gw)
{
    const json_t *listeners = NULL, *entry;
    char prefix[PROJECTION_PATH_MAX];
    size_t i;
    int rc = get_required_array(ctx, spec, "spec", "listeners", PROJECTION_MAX_LISTENERS,
                                &listeners);
    if (rc < 0 || json_array_size(listeners) == 0)
        return rc;
    gw->listeners = calloc(json_array_size(listeners), sizeof *gw->listeners);
    if (!gw->listeners)
        return KV_ERR_NOMEM;
    json_array_foreach(listeners, i, entry) {
        gw->n_listeners = i + 1;
        rc = get_item(ctx, entry, prefix, sizeof prefix, "spec.listeners", i);
        rc = rc ?: gateway_listener(ctx, entry, prefix, &gw->listeners[i]);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

static int gateway_addresses(projection_ctx *ctx, const json_t *spec, proto_gateway *gw)
{
    const json_t *addresses = NULL, *entry;
    char prefix[PROJECTION_PATH_MAX];
    size_t i;
    int rc = get_array(ctx, spec, "spec", "addresses", PROJECTION_MAX_REFS, &addresses);
    if (rc < 0 || !addresses || json_array_size(addresses) == 0)
        return rc;
    gw->addresses = calloc(json_array_size(addresses), sizeof *gw->addresses);
    if (!gw->addresses)
        return KV_ERR_NOMEM;
    json_array_foreach(addresses, i, entry) {
        const char *type = NULL, *value = NULL;
        gw->n_addresses = i + 1;
        rc = get_item(ctx, entry, prefix, sizeof prefix, "spec.addresses", i);
        rc = rc ?: get_string(ctx, entry, prefix, "type", false, &type);
        rc = rc ?: get_string(ctx, entry, prefix, "value", true, &value);
        rc = rc ?: copy_or(&gw->addresses[i].type, type, "IPAddress");
        rc = rc ?: copy_string(&gw->addresses[i].value, value);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

int projection_gateway(proto_gateway **out, const json_t *object, char *err, size_t err_len)
{
    projection_ctx ctx = {.kind = "Gateway", .namespaced = true, .err = err, .err_len = err_len};
    const json_t *metadata = NULL, *spec = NULL;
    const char *class_name = NULL;
    proto_gateway *gw = NULL;
    int rc;

    *out = NULL;
    rc = check_identity(&ctx, object, &metadata);
    rc = rc ?: get_object(&ctx, object, "", "spec", true, &spec);
    rc = rc ?: get_string(&ctx, spec, "spec", "gatewayClassName", true, &class_name);
    if (rc < 0)
        return rc;
    gw = calloc(1, sizeof *gw);
    if (!gw)
        return KV_ERR_NOMEM;
    rc = copy_string(&gw->namespace, ctx.ns);
    rc = rc ?: copy_string(&gw->name, ctx.name);
    rc = rc ?: copy_string(&gw->class_name, class_name);
    rc = rc ?: gateway_listeners(&ctx, spec, gw);
    rc = rc ?: gateway_addresses(&ctx, spec, gw);
    if (rc < 0)
        goto out_free_gateway;
    *out = gw;
    return KV_OK;

out_free_gateway:
    proto_gateway_destroy(&gw);
    return rc;
}

static int http_route_parent_refs(projection_ctx *ctx, const json_t *spec,
                                  proto_http_route *route)
{
    const json_t *refs = NULL, *entry;
    char prefix[PROJECTION_PATH_MAX];
    size_t i;
    int rc = get_array(ctx, spec, "spec", "parentRefs", PROJECTION_MAX_REFS, &refs);
    if (rc < 0 || !refs || json_array_size(refs) == 0)
        return rc;
    route->parent_refs = calloc(json_array_size(refs), sizeof *route->parent_refs);
    if (!route->parent_refs)
        return KV_ERR_NOMEM;
    json_array_foreach(refs, i, entry) {
        proto_parent_ref *ref = &route->parent_refs[i];
        const char *group = NULL, *kind = NULL, *ns = NULL, *name = NULL, *section = NULL;
        route->n_parent_refs = i + 1;
        rc = get_item(ctx, entry, prefix, sizeof prefix, "spec.parentRefs", i);
        rc = rc ?: get_string(ctx, entry, prefix, "group", false, &group);
        rc = rc ?: get_string(ctx, entry, prefix, "kind", false, &kind);
        rc = rc ?: get_string(ctx, entry, prefix, "namespace", false, &ns);
        rc = rc ?: get_string(ctx, entry, prefix, "name", true, &name);
        rc = rc ?: get_string(ctx, entry, prefix, "sectionName", false, &section);
        rc = rc ?: get_int(ctx, entry, prefix, "port", false, 1, 65535, &ref->port);
        /* ParentReference defaults: a Gateway in the route's namespace. */
        rc = rc ?: copy_or(&ref->group, group, GATEWAY_GROUP);
        rc = rc ?: copy_or(&ref->kind, kind, "Gateway");
        rc = rc ?: copy_or(&ref->namespace, ns, ctx->ns);
        rc = rc ?: copy_string(&ref->name, name);
        rc = rc ?: copy_string(&ref->section_name, section);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

/* The match every rule without matches has: PathPrefix "/". */
static int http_default_match(proto_http_match *match)
{
    int rc = copy_string(&match->path_type, "PathPrefix");
    return rc ?: copy_string(&match->path_value, "/");
}

static int http_match_headers(projection_ctx *ctx, const json_t *entry, const char *match_prefix,
                              proto_http_match *match)
{
    const json_t *headers = NULL, *header;
    char headers_prefix[PROJECTION_PATH_MAX], prefix[PROJECTION_PATH_MAX + 16];
    size_t i;
    int rc = get_array(ctx, entry, match_prefix, "headers", PROJECTION_MAX_HEADERS, &headers);
    if (rc < 0 || !headers || json_array_size(headers) == 0)
        return rc;
    path_join(headers_prefix, sizeof headers_prefix, match_prefix, "headers");
    match->headers = calloc(json_array_size(headers), sizeof *match->headers);
    if (!match->headers)
        return KV_ERR_NOMEM;
    json_array_foreach(headers, i, header) {
        const char *type = NULL, *name = NULL, *value = NULL;
        match->n_headers = i + 1;
        rc = get_item(ctx, header, prefix, sizeof prefix, headers_prefix, i);
        rc = rc ?: get_string(ctx, header, prefix, "type", false, &type);
        rc = rc ?: get_string(ctx, header, prefix, "name", true, &name);
        rc = rc ?: get_string(ctx, header, prefix, "value", true, &value);
        rc = rc ?: copy_or(&match->headers[i].type, type, "Exact");
        rc = rc ?: copy_string(&match->headers[i].name, name);
        rc = rc ?: copy_string(&match->headers[i].value, value);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

static int http_rule_matches(projection_ctx *ctx, const json_t *entry, const char *rule_prefix,
                             proto_http_rule *rule)
{
    const json_t *matches = NULL, *match;
    char matches_prefix[PROJECTION_PATH_MAX], prefix[PROJECTION_PATH_MAX + 16];
    char path_prefix[PROJECTION_PATH_MAX + 32];
    size_t i;
    int rc = get_array(ctx, entry, rule_prefix, "matches", PROJECTION_MAX_MATCHES, &matches);
    if (rc < 0)
        return rc;
    /* HTTPRouteRule.matches defaults to one PathPrefix "/" match. */
    size_t n = matches && json_array_size(matches) ? json_array_size(matches) : 1;
    rule->matches = calloc(n, sizeof *rule->matches);
    if (!rule->matches)
        return KV_ERR_NOMEM;
    if (!matches || json_array_size(matches) == 0) {
        rule->n_matches = 1;
        return http_default_match(&rule->matches[0]);
    }
    path_join(matches_prefix, sizeof matches_prefix, rule_prefix, "matches");
    json_array_foreach(matches, i, match) {
        proto_http_match *out = &rule->matches[i];
        const json_t *path = NULL;
        const char *type = NULL, *value = NULL, *method = NULL;
        rule->n_matches = i + 1;
        rc = get_item(ctx, match, prefix, sizeof prefix, matches_prefix, i);
        rc = rc ?: get_object(ctx, match, prefix, "path", false, &path);
        path_join(path_prefix, sizeof path_prefix, prefix, "path");
        rc = rc ?: get_string(ctx, path, path_prefix, "type", false, &type);
        rc = rc ?: get_string(ctx, path, path_prefix, "value", false, &value);
        rc = rc ?: get_string(ctx, match, prefix, "method", false, &method);
        /* HTTPPathMatch defaults: PathPrefix "/", for the match and for
         * each of its fields. */
        rc = rc ?: copy_or(&out->path_type, type, "PathPrefix");
        rc = rc ?: copy_or(&out->path_value, value, "/");
        rc = rc ?: copy_string(&out->method, method);
        rc = rc ?: http_match_headers(ctx, match, prefix, out);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

static int http_rule_backend_refs(projection_ctx *ctx, const json_t *entry,
                                  const char *rule_prefix, proto_http_rule *rule)
{
    const json_t *refs = NULL, *ref_json;
    char refs_prefix[PROJECTION_PATH_MAX], prefix[PROJECTION_PATH_MAX + 16];
    size_t i;
    int rc = get_array(ctx, entry, rule_prefix, "backendRefs", PROJECTION_MAX_BACKENDS, &refs);
    if (rc < 0 || !refs || json_array_size(refs) == 0)
        return rc;
    path_join(refs_prefix, sizeof refs_prefix, rule_prefix, "backendRefs");
    rule->backend_refs = calloc(json_array_size(refs), sizeof *rule->backend_refs);
    if (!rule->backend_refs)
        return KV_ERR_NOMEM;
    json_array_foreach(refs, i, ref_json) {
        proto_backend_ref *ref = &rule->backend_refs[i];
        const char *group = NULL, *kind = NULL, *ns = NULL, *name = NULL;
        rule->n_backend_refs = i + 1;
        ref->weight = HTTP_ROUTE_DEFAULT_WEIGHT;
        rc = get_item(ctx, ref_json, prefix, sizeof prefix, refs_prefix, i);
        rc = rc ?: get_string(ctx, ref_json, prefix, "group", false, &group);
        rc = rc ?: get_string(ctx, ref_json, prefix, "kind", false, &kind);
        rc = rc ?: get_string(ctx, ref_json, prefix, "namespace", false, &ns);
        rc = rc ?: get_string(ctx, ref_json, prefix, "name", true, &name);
        rc = rc ?: get_int(ctx, ref_json, prefix, "port", false, 1, 65535, &ref->port);
        rc = rc ?: get_int(ctx, ref_json, prefix, "weight", false, 0, 1000000, &ref->weight);
        /* BackendObjectReference defaults: a core Service in the route's
         * namespace. */
        rc = rc ?: copy_or(&ref->group, group, "");
        rc = rc ?: copy_or(&ref->kind, kind, "Service");
        rc = rc ?: copy_or(&ref->namespace, ns, ctx->ns);
        rc = rc ?: copy_string(&ref->name, name);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

static int http_route_rules(projection_ctx *ctx, const json_t *spec, proto_http_route *route)
{
    const json_t *rules = NULL, *entry;
    char prefix[PROJECTION_PATH_MAX];
    size_t i;
    int rc = get_array(ctx, spec, "spec", "rules", PROJECTION_MAX_RULES, &rules);
    if (rc < 0)
        return rc;
    /* HTTPRouteSpec.rules defaults to one rule matching PathPrefix "/". */
    size_t n = rules && json_array_size(rules) ? json_array_size(rules) : 1;
    route->rules = calloc(n, sizeof *route->rules);
    if (!route->rules)
        return KV_ERR_NOMEM;
    if (!rules || json_array_size(rules) == 0) {
        route->n_rules = 1;
        route->rules[0].matches = calloc(1, sizeof *route->rules[0].matches);
        if (!route->rules[0].matches)
            return KV_ERR_NOMEM;
        route->rules[0].n_matches = 1;
        return http_default_match(&route->rules[0].matches[0]);
    }
    json_array_foreach(rules, i, entry) {
        proto_http_rule *rule = &route->rules[i];
        const char *name = NULL;
        route->n_rules = i + 1;
        rc = get_item(ctx, entry, prefix, sizeof prefix, "spec.rules", i);
        rc = rc ?: get_string(ctx, entry, prefix, "name", false, &name);
        rc = rc ?: copy_string(&rule->name, name);
        rc = rc ?: http_rule_matches(ctx, entry, prefix, rule);
        rc = rc ?: http_rule_backend_refs(ctx, entry, prefix, rule);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

int projection_http_route(proto_http_route **out, const json_t *object, char *err,
                          size_t err_len)
{
    projection_ctx ctx = {.kind = "HTTPRoute", .namespaced = true, .err = err,
                          .err_len = err_len};
    const json_t *metadata = NULL, *spec = NULL;
    proto_http_route *route = NULL;
    int rc;

    *out = NULL;
    rc = check_identity(&ctx, object, &metadata);
    rc = rc ?: get_object(&ctx, object, "", "spec", true, &spec);
    if (rc < 0)
        return rc;
    route = calloc(1, sizeof *route);
    if (!route)
        return KV_ERR_NOMEM;
    rc = copy_string(&route->namespace, ctx.ns);
    rc = rc ?: copy_string(&route->name, ctx.name);
    rc = rc ?: http_route_parent_refs(&ctx, spec, route);
    rc = rc ?: get_strings(&ctx, spec, "spec", "hostnames", PROJECTION_MAX_HOSTS,
                           &route->hostnames, &route->n_hostnames);
    rc = rc ?: http_route_rules(&ctx, spec, route);
    if (rc < 0)
        goto out_free_route;
    *out = route;
    return KV_OK;

out_free_route:
    proto_http_route_destroy(&route);
    return rc;
}

/* ---- kind dispatch ------------------------------------------------------ */

typedef struct {
    const char *kind;
    const char *api_version;
    proto_k8s_kind proto_kind;
    bool namespaced;
} projection_kind;

static const projection_kind projection_kinds[] = {
    {"Node", API_CORE_V1, PROTO_K8S_NODE, false},
    {"Service", API_CORE_V1, PROTO_K8S_SERVICE, true},
    {"EndpointSlice", API_DISCOVERY_V1, PROTO_K8S_ENDPOINT_SLICE, true},
    {"Namespace", API_CORE_V1, PROTO_K8S_NAMESPACE, false},
    {"Secret", API_CORE_V1, PROTO_K8S_SECRET, true},
    {"Ingress", API_NETWORKING_V1, PROTO_K8S_INGRESS, true},
    {"IngressClass", API_NETWORKING_V1, PROTO_K8S_INGRESS_CLASS, false},
    {"Route", API_ROUTE_V1, PROTO_K8S_ROUTE, true},
    {"GatewayClass", API_GATEWAY_V1, PROTO_K8S_GATEWAY_CLASS, false},
    {"Gateway", API_GATEWAY_V1, PROTO_K8S_GATEWAY, true},
    {"HTTPRoute", API_GATEWAY_V1, PROTO_K8S_HTTP_ROUTE, true},
};

/* Finds the projected kind of an object: 0 with *out set, PROJECTION_IGNORED,
 * or KV_ERR_INVALID when the object does not say what it is. */
static int classify(const json_t *object, const char *kind, const projection_kind **out,
                    char *err, size_t err_len)
{
    projection_ctx ctx = {.kind = "object", .namespaced = true, .err = err, .err_len = err_len};
    const char *api_version = NULL;
    int rc;

    identify(&ctx, object);
    ctx.namespaced = ctx.ns != NULL; /* not known yet: describe it as it says */
    if (!json_is_object(object))
        return reject(&ctx, "the object is not a JSON object");
    if (!kind) {
        rc = get_string(&ctx, object, "", "kind", true, &kind);
        if (rc < 0)
            return rc;
    }
    rc = get_string(&ctx, object, "", "apiVersion", false, &api_version);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < sizeof projection_kinds / sizeof projection_kinds[0]; i++) {
        const projection_kind *known = &projection_kinds[i];
        if (strcmp(kind, known->kind) != 0)
            continue;
        /* Older versions (discovery.k8s.io/v1beta1) have other field names;
         * absent apiVersion means the caller vouches for the version. */
        if (api_version && strcmp(api_version, known->api_version) != 0) {
            log_debug("projection: ignored %s %s/%s of apiVersion %s", kind,
                      ctx.ns ? ctx.ns : "", ctx.name ? ctx.name : "", api_version);
            return PROJECTION_IGNORED;
        }
        if (known->proto_kind == PROTO_K8S_SECRET) {
            /* Decided here so that a DELETED event of another type of
             * Secret is ignored like its ADDED was. */
            projection_ctx secret_ctx = {.kind = "Secret", .namespaced = true, .ns = ctx.ns,
                                         .name = ctx.name, .err = err, .err_len = err_len};
            rc = secret_type_is_tls(&secret_ctx, object);
            if (rc != KV_OK)
                return rc;
        }
        *out = known;
        return KV_OK;
    }
    log_debug("projection: ignored %s %s/%s", kind, ctx.ns ? ctx.ns : "",
              ctx.name ? ctx.name : "");
    return PROJECTION_IGNORED;
}

static int make_key(char *key, size_t key_len, const projection_kind *kind, const char *ns,
                    const char *name, char *err, size_t err_len)
{
    if (proto_k8s_key(key, key_len, kind->kind, kind->namespaced ? ns : NULL, name) >= 0)
        return KV_OK;
    projection_ctx ctx = {.kind = kind->kind, .namespaced = kind->namespaced, .ns = ns,
                          .name = name, .err = err, .err_len = err_len};
    return reject(&ctx, "namespace and name are too long for a stream key");
}

int projection_key_of(char *key, size_t key_len, const json_t *object, const char *kind,
                      char *err, size_t err_len)
{
    const projection_kind *known = NULL;
    const json_t *metadata = NULL;
    int rc = classify(object, kind, &known, err, err_len);
    if (rc != KV_OK)
        return rc;
    projection_ctx ctx = {
        .kind = known->kind, .namespaced = known->namespaced, .err = err, .err_len = err_len};
    rc = check_identity(&ctx, object, &metadata);
    return rc ?: make_key(key, key_len, known, ctx.ns, ctx.name, err, err_len);
}

int projection_of(projection *out, const json_t *object, const char *kind, char *err,
                  size_t err_len)
{
    const projection_kind *known = NULL;
    proto_node *node = NULL;
    proto_service *svc = NULL;
    proto_endpoint_slice *slice = NULL;
    proto_namespace *ns = NULL;
    proto_secret *secret = NULL;
    proto_ingress *ing = NULL;
    proto_ingress_class *ing_class = NULL;
    proto_route *route = NULL;
    proto_gateway_class *gw_class = NULL;
    proto_gateway *gw = NULL;
    proto_http_route *http_route = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    rc = classify(object, kind, &known, err, err_len);
    if (rc != KV_OK)
        return rc;
    out->kind = known->proto_kind;
    switch (known->proto_kind) {
    case PROTO_K8S_NODE:
        rc = projection_node(&node, object, err, err_len);
        rc = rc ?: make_key(out->key, sizeof out->key, known, NULL, node->name, err, err_len);
        rc = rc ?: proto_node_encode(node, &out->body, &out->len);
        proto_node_destroy(&node);
        break;
    case PROTO_K8S_SERVICE:
        rc = projection_service(&svc, object, err, err_len);
        rc = rc ?: make_key(out->key, sizeof out->key, known, svc->namespace, svc->name, err,
                            err_len);
        rc = rc ?: proto_service_encode(svc, &out->body, &out->len);
        proto_service_destroy(&svc);
        break;
    case PROTO_K8S_ENDPOINT_SLICE:
        rc = projection_endpoint_slice(&slice, object, err, err_len);
        rc = rc ?: make_key(out->key, sizeof out->key, known, slice->namespace, slice->name, err,
                            err_len);
        rc = rc ?: proto_endpoint_slice_encode(slice, &out->body, &out->len);
        proto_endpoint_slice_destroy(&slice);
        break;
    case PROTO_K8S_NAMESPACE:
        rc = projection_namespace(&ns, object, err, err_len);
        rc = rc ?: make_key(out->key, sizeof out->key, known, NULL, ns->name, err, err_len);
        rc = rc ?: proto_namespace_encode(ns, &out->body, &out->len);
        proto_namespace_destroy(&ns);
        break;
    case PROTO_K8S_SECRET:
        rc = projection_secret(&secret, object, err, err_len);
        rc = rc ?: make_key(out->key, sizeof out->key, known, secret->namespace, secret->name,
                            err, err_len);
        rc = rc ?: proto_secret_encode(secret, &out->body, &out->len);
        proto_secret_destroy(&secret);
        break;
    case PROTO_K8S_INGRESS:
        rc = projection_ingress(&ing, object, err, err_len);
        rc = rc ?: make_key(out->key, sizeof out->key, known, ing->namespace, ing->name, err,
                            err_len);
        rc = rc ?: proto_ingress_encode(ing, &out->body, &out->len);
        proto_ingress_destroy(&ing);
        break;
    case PROTO_K8S_INGRESS_CLASS:
        rc = projection_ingress_class(&ing_class, object, err, err_len);
        rc = rc ?: make_key(out->key, sizeof out->key, known, NULL, ing_class->name, err,
                            err_len);
        rc = rc ?: proto_ingress_class_encode(ing_class, &out->body, &out->len);
        proto_ingress_class_destroy(&ing_class);
        break;
    case PROTO_K8S_ROUTE:
        rc = projection_route(&route, object, err, err_len);
        rc = rc ?: make_key(out->key, sizeof out->key, known, route->namespace, route->name, err,
                            err_len);
        rc = rc ?: proto_route_encode(route, &out->body, &out->len);
        proto_route_destroy(&route);
        break;
    case PROTO_K8S_GATEWAY_CLASS:
        rc = projection_gateway_class(&gw_class, object, err, err_len);
        rc = rc ?: make_key(out->key, sizeof out->key, known, NULL, gw_class->name, err,
                            err_len);
        rc = rc ?: proto_gateway_class_encode(gw_class, &out->body, &out->len);
        proto_gateway_class_destroy(&gw_class);
        break;
    case PROTO_K8S_GATEWAY:
        rc = projection_gateway(&gw, object, err, err_len);
        rc = rc ?: make_key(out->key, sizeof out->key, known, gw->namespace, gw->name, err,
                            err_len);
        rc = rc ?: proto_gateway_encode(gw, &out->body, &out->len);
        proto_gateway_destroy(&gw);
        break;
    case PROTO_K8S_HTTP_ROUTE:
        rc = projection_http_route(&http_route, object, err, err_len);
        rc = rc ?: make_key(out->key, sizeof out->key, known, http_route->namespace,
                            http_route->name, err, err_len);
        rc = rc ?: proto_http_route_encode(http_route, &out->body, &out->len);
        proto_http_route_destroy(&http_route);
        break;
    }
    if (rc < 0) {
        if (rc != KV_ERR_INVALID && err && err_len)
            snprintf(err, err_len, "%s: %s", known->kind, kv_strerror(rc));
        projection_clear(out);
    }
    return rc;
}

void projection_clear(projection *p)
{
    free(p->body);
    memset(p, 0, sizeof *p);
}
