/* projection.c — see projection.h. Every field read goes through one of the
 * typed getters below, which name the field's full path in the rejection
 * line; absent and JSON null read the same ("not set"), as the API server
 * omits or nulls unset optional fields interchangeably. Defaults follow the
 * API server's own defaulting, so a hand-written manifest and the object the
 * server would store project the same. */
#include "watcher/projection.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"

/* The decoders in proto/k8s.c refuse more than this; refusing here names the
 * object instead of leaving the planner with an undecodable body. */
#define PROJECTION_MAX_LABELS 1024
#define PROJECTION_MAX_PORTS 1024
#define PROJECTION_MAX_ENDPOINTS 4096

#define PROJECTION_PATH_MAX 320
#define PROJECTION_PREFIX_MAX 64 /* "spec.ports[1023]" and the like */

#define API_CORE_V1 "v1"
#define API_DISCOVERY_V1 "discovery.k8s.io/v1"

#define LABEL_SERVICE_NAME "kubernetes.io/service-name"
#define ANNOTATION_CALICO_IPV4 "projectcalico.org/IPv4Address"
#define ANNOTATION_CALICO_IPV6 "projectcalico.org/IPv6Address"
#define ANNOTATION_ANTREA_TRANSPORT "node.antrea.io/transport-addresses"
#define TAINT_TO_BE_DELETED "ToBeDeletedByClusterAutoscaler"

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

/* "spec" + "type" → "spec.type"; map keys that are not identifiers are
 * quoted: metadata.labels["kubernetes.io/service-name"]. */
static const char *path_join(char *buf, size_t len, const char *prefix, const char *key)
{
    bool plain = strpbrk(key, "./\"[] ") == NULL;
    if (!*prefix)
        snprintf(buf, len, plain ? "%s%s" : "%s[\"%s\"]", prefix, key);
    else
        snprintf(buf, len, plain ? "%s.%s" : "%s[\"%s\"]", prefix, key);
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
