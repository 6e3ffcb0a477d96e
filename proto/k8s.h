/* k8s.h — projections of Kubernetes objects: only the fields the planner
 * needs, so the planner's memory and the bus traffic stay small.
 *
 * The watcher publishes them on stream "k8s" under key
 * "<Kind>/<namespace>/<name>" (cluster-scoped kinds: "<Kind>/<name>").
 * Every struct and every string in it is owned by the struct; *_destroy()
 * frees it all. Decoders reject missing or mistyped fields, every list
 * longer than its hard cap (proto/k8s.c, well above the API's own limits)
 * and PEM text larger than a Secret can hold (1 MiB). The API's defaults are
 * applied by the watcher, so a field documented with a default is always
 * set here. Secret and Route key material is never to be logged. */
#ifndef KAVI_PROTO_K8S_H
#define KAVI_PROTO_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    PROTO_K8S_NODE = 1,
    PROTO_K8S_SERVICE = 2,
    PROTO_K8S_ENDPOINT_SLICE = 3,
    PROTO_K8S_NAMESPACE = 4,
    PROTO_K8S_SECRET = 5,
    PROTO_K8S_INGRESS = 6,
    PROTO_K8S_INGRESS_CLASS = 7,
    PROTO_K8S_ROUTE = 8,
    PROTO_K8S_GATEWAY_CLASS = 9,
    PROTO_K8S_GATEWAY = 10,
    PROTO_K8S_HTTP_ROUTE = 11,
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
    /* The families spec.ipFamilies lists, as a set: a dual-stack Service
     * has both. Both false when the list is absent or empty; the planner
     * decides what that means (planner/pool_servers.c). */
    bool family_ipv4;
    bool family_ipv6;
    /* The preferred VIP: annotation ako.vmware.com/load-balancer-ip, else
     * spec.loadBalancerIP (deprecated since 1.24); NULL: allocate one. */
    char *load_balancer_ip;
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

/* ---- Namespace (v1) ---------------------------------------------------- */

typedef struct {
    char *name;
    char *tenant; /* annotation ako.vmware.com/tenant-name, NULL when absent */
    proto_label *labels; /* sorted by key */
    size_t n_labels;
} proto_namespace;

/* ---- Secret (v1, type kubernetes.io/tls only) ---------------------------- */

/* PEM text, decoded from base64. Key material: never log these fields. */
typedef struct {
    char *namespace;
    char *name;
    char *cert;     /* data["tls.crt"] */
    char *key;      /* data["tls.key"] */
    char *alt_cert; /* data["alt.crt"], NULL when absent */
    char *alt_key;  /* data["alt.key"], NULL when absent */
} proto_secret;

/* ---- Ingress, IngressClass (networking.k8s.io/v1) ------------------------ */

typedef struct {
    char *service;   /* backend.service.name; NULL when the backend is not a Service */
    int32_t port;    /* backend.service.port.number, 0 when named */
    char *port_name; /* backend.service.port.name, NULL when numeric */
} proto_ingress_backend;

typedef struct {
    char *path;      /* as written; "" when unset (the API has no default) */
    char *path_type; /* Exact | Prefix | ImplementationSpecific (the default) */
    proto_ingress_backend backend;
} proto_ingress_path;

typedef struct {
    char *host; /* "" when unset: every host */
    proto_ingress_path *paths;
    size_t n_paths;
} proto_ingress_rule;

typedef struct {
    char **hosts;
    size_t n_hosts;
    char *secret_name; /* NULL when unset */
} proto_ingress_tls;

typedef struct {
    char *namespace;
    char *name;
    char *class_name;       /* spec.ingressClassName, NULL when unset */
    char *class_annotation; /* annotation kubernetes.io/ingress.class, NULL when unset */
    proto_ingress_backend default_backend; /* .service NULL when none */
    proto_ingress_rule *rules;
    size_t n_rules;
    proto_ingress_tls *tls;
    size_t n_tls;
} proto_ingress;

typedef struct {
    char *name;
    char *controller; /* spec.controller */
    bool is_default;  /* annotation ingressclass.kubernetes.io/is-default-class == "true" */
} proto_ingress_class;

/* ---- OpenShift Route (route.openshift.io/v1) ------------------------------ */

typedef struct {
    char *kind;     /* "Service" (the default) */
    char *name;
    int32_t weight; /* 0..256, default 100 */
} proto_route_backend;

typedef struct {
    char *namespace;
    char *name;
    char *host;                 /* spec.host, "" when unset */
    char *path;                 /* spec.path, "" when unset */
    proto_route_backend to;
    proto_route_backend *alternate_backends;
    size_t n_alternate_backends;
    int32_t target_port;        /* numeric port.targetPort, 0 when named or unset */
    char *target_port_name;     /* named port.targetPort, NULL when numeric or unset */
    char *wildcard_policy;      /* None (the default) | Subdomain */
    /* spec.tls; termination NULL when the Route is not TLS. The PEM fields
     * are key material: never log them. */
    char *tls_termination;      /* edge | passthrough | reencrypt */
    char *tls_certificate;
    char *tls_key;
    char *tls_ca_certificate;
    char *tls_destination_ca_certificate;
    char *tls_insecure_edge_policy; /* None (the default when tls is set) | Allow | Redirect */
} proto_route;

/* ---- Gateway API (gateway.networking.k8s.io/v1) ---------------------------- */

typedef struct {
    char *name;
    char *controller_name; /* spec.controllerName */
} proto_gateway_class;

/* A listener's certificateRefs entry, defaults applied: group "" (core),
 * kind "Secret", namespace the Gateway's. */
typedef struct {
    char *group;
    char *kind;
    char *namespace;
    char *name;
} proto_gateway_cert_ref;

typedef struct {
    char *name;
    char *hostname;  /* NULL when unset: every host */
    int32_t port;
    char *protocol;  /* HTTP | HTTPS | TLS | TCP | UDP | domain-prefixed */
    char *tls_mode;  /* NULL when the listener has no tls; Terminate (the default) | Passthrough */
    proto_gateway_cert_ref *certificate_refs;
    size_t n_certificate_refs;
    /* allowedRoutes.namespaces.from: Same (the default) | All | Selector */
    char *allowed_routes_from;
} proto_gateway_listener;

typedef struct {
    char *type; /* IPAddress (the default) | Hostname | domain-prefixed */
    char *value;
} proto_gateway_address;

typedef struct {
    char *namespace;
    char *name;
    char *class_name; /* spec.gatewayClassName */
    proto_gateway_listener *listeners;
    size_t n_listeners;
    proto_gateway_address *addresses;
    size_t n_addresses;
} proto_gateway;

/* parentRefs entry, defaults applied: group gateway.networking.k8s.io, kind
 * Gateway, namespace the route's. */
typedef struct {
    char *group;
    char *kind;
    char *namespace;
    char *name;
    char *section_name; /* listener name, NULL when unset */
    int32_t port;       /* 0 when unset */
} proto_parent_ref;

typedef struct {
    char *type; /* Exact (the default) | RegularExpression */
    char *name;
    char *value;
} proto_header_match;

/* One match; a match without a path matches PathPrefix "/". */
typedef struct {
    char *path_type;  /* Exact | PathPrefix (the default) | RegularExpression */
    char *path_value; /* default "/" */
    proto_header_match *headers;
    size_t n_headers;
    char *method;     /* NULL when any */
} proto_http_match;

/* backendRefs entry, defaults applied: group "" (core), kind Service,
 * namespace the route's, weight 1. */
typedef struct {
    char *group;
    char *kind;
    char *namespace;
    char *name;
    int32_t port;   /* 0 when unset */
    int32_t weight; /* 0..1000000 */
} proto_backend_ref;

typedef struct {
    char *name; /* NULL when unset */
    proto_http_match *matches; /* never empty: no match means PathPrefix "/" */
    size_t n_matches;
    proto_backend_ref *backend_refs;
    size_t n_backend_refs;
} proto_http_rule;

typedef struct {
    char *namespace;
    char *name;
    proto_parent_ref *parent_refs;
    size_t n_parent_refs;
    char **hostnames;
    size_t n_hostnames;
    proto_http_rule *rules; /* never empty: no rule means one PathPrefix "/" rule */
    size_t n_rules;
} proto_http_route;

/* A decoded k8s stream body: exactly one of the pointers is set. */
typedef struct {
    proto_k8s_kind kind;
    proto_node *node;
    proto_service *service;
    proto_endpoint_slice *slice;
    proto_namespace *namespace;
    proto_secret *secret;
    proto_ingress *ingress;
    proto_ingress_class *ingress_class;
    proto_route *route;
    proto_gateway_class *gateway_class;
    proto_gateway *gateway;
    proto_http_route *http_route;
} proto_k8s_object;

int proto_node_encode(const proto_node *node, void **out, size_t *out_len);
int proto_service_encode(const proto_service *svc, void **out, size_t *out_len);
int proto_endpoint_slice_encode(const proto_endpoint_slice *slice, void **out, size_t *out_len);
int proto_namespace_encode(const proto_namespace *ns, void **out, size_t *out_len);
int proto_secret_encode(const proto_secret *secret, void **out, size_t *out_len);
int proto_ingress_encode(const proto_ingress *ing, void **out, size_t *out_len);
int proto_ingress_class_encode(const proto_ingress_class *cls, void **out, size_t *out_len);
int proto_route_encode(const proto_route *route, void **out, size_t *out_len);
int proto_gateway_class_encode(const proto_gateway_class *cls, void **out, size_t *out_len);
int proto_gateway_encode(const proto_gateway *gw, void **out, size_t *out_len);
int proto_http_route_encode(const proto_http_route *route, void **out, size_t *out_len);

/* Decodes any k8s stream body; the caller owns *out's pointers. */
int proto_k8s_decode(proto_k8s_object *out, const void *data, size_t len);
void proto_k8s_object_clear(proto_k8s_object *obj);

void proto_node_destroy(proto_node **node);
void proto_service_destroy(proto_service **svc);
void proto_endpoint_slice_destroy(proto_endpoint_slice **slice);
void proto_namespace_destroy(proto_namespace **ns);
void proto_secret_destroy(proto_secret **secret);
void proto_ingress_destroy(proto_ingress **ing);
void proto_ingress_class_destroy(proto_ingress_class **cls);
void proto_route_destroy(proto_route **route);
void proto_gateway_class_destroy(proto_gateway_class **cls);
void proto_gateway_destroy(proto_gateway **gw);
void proto_http_route_destroy(proto_http_route **route);

/* Stream key of an object: "Kind/ns/name", or "Kind/name" when ns is NULL or
 * empty. Returns the length, or -1 when it does not fit. */
int proto_k8s_key(char *buf, size_t buf_len, const char *kind, const char *ns, const char *name);

#endif
