/* pool_servers.h — the servers of one pool: Service S, service port P.
 *
 * This is DESIGN.md §3, the heart of kavi. In NodePort mode a server is a
 * candidate node's address with P's nodePort; which nodes appear, and
 * whether enabled, follows S's externalTrafficPolicy and the endpoints of
 * S:P on each node (see pool_servers.c for the table). In ClusterIP mode a
 * server is an endpoint address with its target port.
 *
 * The list is sorted by (node name, address) so that the same cluster state
 * always yields the same bytes. */
#ifndef KAVI_PLANNER_POOL_SERVERS_H
#define KAVI_PLANNER_POOL_SERVERS_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "planner/store.h"
#include "proto/k8s.h"

typedef struct {
    char address[INET6_ADDRSTRLEN];
    bool ipv6;
    int32_t port;
    const char *node_name; /* borrowed from the store; NULL for an endpoint with no node */
    bool enabled;
} pool_server;

typedef struct {
    pool_server *items; /* owned */
    size_t n;
    size_t cap;
} pool_server_list;

/* Fills *out (which must be empty, e.g. {0}) with the servers of the pool
 * for `port` of `svc`. A NodePort-mode port without a nodePort yields no
 * servers; the caller tells the user. Returns 0 or KV_ERR_NOMEM. */
int pool_servers_compute(pool_server_list *out, const kv_config *cfg, const store_t *store,
                         const proto_service *svc, const proto_service_port *port);
void pool_server_list_clear(pool_server_list *list);

/* The parts of the rule, exposed for tests and for other translators. */
bool pool_servers_node_is_candidate(const kv_config *cfg, const proto_service *svc,
                                    const proto_node *node);
/* The node's one address for svc's pools: IPv4 when ipFamily enables it, svc
 * lists it (or lists no family) and the node has one, else IPv6 on the same
 * terms; from the CNI's annotation when cniPlugin says so. False when none. */
bool pool_servers_node_address(char *buf, size_t buf_len, bool *ipv6, const kv_config *cfg,
                               const proto_service *svc, const proto_node *node);

/* True when no pool of any Service can tell `a` from `b`: same candidacy
 * and, for a candidate, the same address of every family ipFamily enables
 * (a Service may pick either) and the same drain state (deleting / to be
 * deleted). A label that no selector reads, for instance, changes nothing. */
bool pool_servers_node_equivalent(const kv_config *cfg, const proto_node *a, const proto_node *b);

#endif
