/* Builders for the planner's tests: projections as the watcher would send
 * them, written in C so each test reads like the cluster it sets up.
 * Every builder aborts the test on allocation failure (assert), and every
 * object is owned by the caller until handed to the store. */
#ifndef KAVI_TEST_PLANNER_FIXTURES_H
#define KAVI_TEST_PLANNER_FIXTURES_H

/* cmocka.h needs these three first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "proto/k8s.h"

static inline char *fx_strdup(const char *s)
{
    if (!s)
        return NULL;
    char *copy = strdup(s);
    assert_non_null(copy);
    return copy;
}

static inline kv_config *fx_config(const char *yaml)
{
    char err[256] = "";
    kv_config *cfg = NULL;
    int rc = config_load_string(&cfg, yaml, "test", err, sizeof err);
    if (rc != 0)
        fail_msg("config: %s", err);
    return cfg;
}

/* NodePort mode, cluster "k8s", tenant admin, defaults elsewhere. */
static inline kv_config *fx_node_port_config(void)
{
    return fx_config("clusterName: k8s\nserviceType: NodePort\n");
}

static inline proto_node *fx_node(const char *name, const char *ipv4, const char *ipv6)
{
    proto_node *node = calloc(1, sizeof *node);
    assert_non_null(node);
    node->name = fx_strdup(name);
    node->internal_ipv4 = fx_strdup(ipv4);
    node->internal_ipv6 = fx_strdup(ipv6);
    return node;
}

static inline void fx_node_label(proto_node *node, const char *key, const char *value)
{
    node->labels = realloc(node->labels, (node->n_labels + 1) * sizeof *node->labels);
    assert_non_null(node->labels);
    node->labels[node->n_labels].key = fx_strdup(key);
    node->labels[node->n_labels].value = fx_strdup(value);
    node->n_labels++;
}

static inline proto_service *fx_service(const char *ns, const char *name, const char *type,
                                        bool local)
{
    proto_service *svc = calloc(1, sizeof *svc);
    assert_non_null(svc);
    svc->namespace = fx_strdup(ns);
    svc->name = fx_strdup(name);
    svc->type = fx_strdup(type);
    svc->external_traffic_local = local;
    return svc;
}

static inline void fx_service_port(proto_service *svc, const char *name, const char *protocol,
                                   int32_t port, int32_t node_port, int32_t target_port,
                                   const char *target_port_name)
{
    svc->ports = realloc(svc->ports, (svc->n_ports + 1) * sizeof *svc->ports);
    assert_non_null(svc->ports);
    proto_service_port *p = &svc->ports[svc->n_ports++];
    memset(p, 0, sizeof *p);
    p->name = fx_strdup(name);
    p->protocol = fx_strdup(protocol);
    p->port = port;
    p->node_port = node_port;
    p->target_port = target_port;
    p->target_port_name = fx_strdup(target_port_name);
}

static inline proto_endpoint_slice *fx_slice(const char *ns, const char *name,
                                             const char *service_name, const char *address_type)
{
    proto_endpoint_slice *slice = calloc(1, sizeof *slice);
    assert_non_null(slice);
    slice->namespace = fx_strdup(ns);
    slice->name = fx_strdup(name);
    slice->service_name = fx_strdup(service_name);
    slice->address_type = fx_strdup(address_type);
    return slice;
}

static inline void fx_slice_port(proto_endpoint_slice *slice, const char *name,
                                 const char *protocol, int32_t port)
{
    slice->ports = realloc(slice->ports, (slice->n_ports + 1) * sizeof *slice->ports);
    assert_non_null(slice->ports);
    proto_slice_port *p = &slice->ports[slice->n_ports++];
    p->name = fx_strdup(name);
    p->protocol = fx_strdup(protocol);
    p->port = port;
}

/* Conditions as the EndpointSlice controller writes them. */
#define FX_READY true, true, false
#define FX_NOT_READY false, false, false
#define FX_TERMINATING_SERVING false, true, true
#define FX_TERMINATING_NOT_SERVING false, false, true

static inline void fx_endpoint(proto_endpoint_slice *slice, const char *address,
                               const char *node_name, bool ready, bool serving, bool terminating)
{
    slice->endpoints =
        realloc(slice->endpoints, (slice->n_endpoints + 1) * sizeof *slice->endpoints);
    assert_non_null(slice->endpoints);
    proto_endpoint *e = &slice->endpoints[slice->n_endpoints++];
    e->address = fx_strdup(address);
    e->node_name = fx_strdup(node_name);
    e->ready = ready;
    e->serving = serving;
    e->terminating = terminating;
}

#endif
