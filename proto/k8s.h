/* k8s.h — projections of Kubernetes objects: only the fields the planner
 * needs, so the planner's memory and the bus traffic stay small.
 *
 * The watcher publishes them on stream "k8s" under key
 * "<Kind>/<namespace>/<name>" (cluster-scoped kinds: "<Kind>/<name>").
 * Every struct and every string in it is owned by the struct; *_destroy()
 * frees it all. Decoders reject missing or mistyped fields. */
#ifndef KAVI_PROTO_K8S_H
#define KAVI_PROTO_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    PROTO_K8S_NODE = 1,
    PROTO_K8S_SERVICE = 2,
    PROTO_K8S_ENDPOINT_SLICE = 3,
} proto_k8s_kind;

typedef struct {
    char *key;
    char *value;
} proto_label;

typedef struct {
    char *name;
    char *internal_ipv4;    /* first InternalIP of each family, NULL if none */
    char *internal_ipv6;
    char *calico_ipv4;      /* projectcalico.org/IPv4Address without the /mask */
    char *calico_ipv6;      /* projectcalico.org/IPv6Address without the /mask */
    char *antrea_transport; /* node.antrea.io/transport-addresses, comma list */
    proto_label *labels;
    size_t n_labels;
    bool deleting;          /* metadata.deletionTimestamp is set */
    bool to_be_deleted;     /* tainted ToBeDeletedByClusterAutoscaler */
} proto_node;

typedef struct {
    char *name;             /* "" when the Service has one unnamed port */
    char *protocol;         /* TCP | UDP | SCTP */
    int32_t port;
    int32_t node_port;      /* 0 when not allocated */
    int32_t target_port;    /* numeric targetPort, 0 when named */
    char *target_port_name; /* named targetPort, NULL when numeric */
} proto_service_port;

typedef struct {
    char *namespace;
    char *name;
    char *type;                  /* ClusterIP | NodePort | LoadBalancer | ExternalName */
    char *load_balancer_class;   /* NULL when unset */
    bool external_traffic_local; /* externalTrafficPolicy: Local */
    int32_t health_check_node_port; /* 0 when none */
    proto_service_port *ports;
    size_t n_ports;
} proto_service;

typedef struct {
    char *name;     /* "" for a single unnamed port; matches the Service port name */
    char *protocol;
    int32_t port;   /* resolved target port */
} proto_slice_port;

typedef struct {
    char *address;   /* addresses[0] */
    char *node_name; /* NULL when the endpoint has no node */
    bool ready;      /* unset counts as true */
    bool serving;    /* unset counts as true */
    bool terminating;/* unset counts as false */
} proto_endpoint;

typedef struct {
    char *namespace;
    char *name;
    char *service_name; /* label kubernetes.io/service-name, NULL if absent */
    char *address_type; /* IPv4 | IPv6 | FQDN */
    proto_slice_port *ports;
    size_t n_ports;
    proto_endpoint *endpoints;
    size_t n_endpoints;
} proto_endpoint_slice;

/* A decoded k8s stream body: exactly one of the pointers is set. */
typedef struct {
    proto_k8s_kind kind;
    proto_node *node;
    proto_service *service;
    proto_endpoint_slice *slice;
} proto_k8s_object;

int proto_node_encode(const proto_node *node, void **out, size_t *out_len);
int proto_service_encode(const proto_service *svc, void **out, size_t *out_len);
int proto_endpoint_slice_encode(const proto_endpoint_slice *slice, void **out, size_t *out_len);

/* Decodes any k8s stream body; the caller owns *out's pointers. */
int proto_k8s_decode(proto_k8s_object *out, const void *data, size_t len);
void proto_k8s_object_clear(proto_k8s_object *obj);

void proto_node_destroy(proto_node **node);
void proto_service_destroy(proto_service **svc);
void proto_endpoint_slice_destroy(proto_endpoint_slice **slice);

/* Stream key of an object: "Kind/ns/name", or "Kind/name" when ns is NULL or
 * empty. Returns the length, or -1 when it does not fit. */
int proto_k8s_key(char *buf, size_t buf_len, const char *kind, const char *ns, const char *name);

#endif
