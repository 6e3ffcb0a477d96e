/* projection.h — Kubernetes objects (jansson trees, exactly as the API server
 * returns them) → the compact projections of proto/k8s.h, encoded and keyed
 * for stream "k8s".
 *
 * Projected: Node, Service, Namespace and Secret (v1; Secrets of type
 * kubernetes.io/tls only), EndpointSlice (discovery.k8s.io/v1), Ingress and
 * IngressClass (networking.k8s.io/v1), Route (route.openshift.io/v1),
 * GatewayClass, Gateway and HTTPRoute (gateway.networking.k8s.io/v1); every
 * other kind, version or Secret type is PROJECTION_IGNORED. Defaults the API
 * server (or the CRD schema) would apply are applied here, so the planner
 * never has to know them. An object
 * with a missing required field or a field of the wrong JSON type is
 * rejected as a whole (KV_ERR_INVALID) with one line naming the object and
 * the field, e.g. "Service default/foo: spec.ports[1].port must be an
 * integer", so the caller can leave what it published before untouched.
 *
 * The replay path and the live client share these functions; list items
 * carry no kind of their own, so every entry point takes the kind as an
 * optional argument (NULL: read it from the object). */
#ifndef KAVI_WATCHER_PROJECTION_H
#define KAVI_WATCHER_PROJECTION_H

#include <jansson.h>
#include <stddef.h>

#include "proto/k8s.h"

/* Returned (positive) for objects kavi does not watch. */
#define PROJECTION_IGNORED 1

/* "EndpointSlice/" + a 63-byte namespace + "/" + a 253-byte name fits. */
#define PROJECTION_KEY_MAX 512

/* Room for one rejection line. */
#define PROJECTION_ERR_MAX 512

typedef struct {
    proto_k8s_kind kind;
    char key[PROJECTION_KEY_MAX]; /* "Node/<name>", "Service/<ns>/<name>", ... */
    void *body;                   /* owned: proto_*_encode output */
    size_t len;
} projection;

/* Projects and encodes `object`. Returns 0 with *out filled (release with
 * projection_clear), PROJECTION_IGNORED, or a negative kv_err with the
 * reason in err. */
int projection_of(projection *out, const json_t *object, const char *kind, char *err,
                  size_t err_len);
void projection_clear(projection *p);

/* Only the stream key, for DELETED events: the last state of a deleted
 * object need not be valid for it to be removed. Same return values. */
int projection_key_of(char *key, size_t key_len, const json_t *object, const char *kind,
                      char *err, size_t err_len);

/* The projections themselves; *out is owned by the caller (proto_*_destroy). */
int projection_node(proto_node **out, const json_t *object, char *err, size_t err_len);
int projection_service(proto_service **out, const json_t *object, char *err, size_t err_len);
int projection_endpoint_slice(proto_endpoint_slice **out, const json_t *object, char *err,
                              size_t err_len);
int projection_namespace(proto_namespace **out, const json_t *object, char *err, size_t err_len);
/* PROJECTION_IGNORED for a Secret that is not of type kubernetes.io/tls.
 * Rejections name the field, never its bytes. */
int projection_secret(proto_secret **out, const json_t *object, char *err, size_t err_len);
int projection_ingress(proto_ingress **out, const json_t *object, char *err, size_t err_len);
int projection_ingress_class(proto_ingress_class **out, const json_t *object, char *err,
                             size_t err_len);
int projection_route(proto_route **out, const json_t *object, char *err, size_t err_len);
int projection_gateway_class(proto_gateway_class **out, const json_t *object, char *err,
                             size_t err_len);
int projection_gateway(proto_gateway **out, const json_t *object, char *err, size_t err_len);
int projection_http_route(proto_http_route **out, const json_t *object, char *err,
                          size_t err_len);

#endif
