/* store.h — the planner's indexed view of the cluster.
 *
 * Holds the projections of Services ("ns/name"), Nodes ("name") and
 * EndpointSlices ("ns/name") received on stream "k8s", and the indexes that
 * let one event recompute only the models it can change:
 *   - service → its slices (by the slice's kubernetes.io/service-name);
 *   - node → the services with endpoints on it (counted per endpoint);
 *   - the LoadBalancer Services with externalTrafficPolicy Cluster, which in
 *     NodePort mode use every node and so depend on every node event.
 *
 * Every put/delete marks the affected services "dirty"; the planner takes
 * the dirty set (store_take_dirty) when it recomputes models. Only
 * LoadBalancer Services are marked by slice and node events (nothing else
 * has a model today), and slice events skip the Services whose pools do
 * not follow endpoints (ETP Cluster in NodePort mode); a Service event
 * always marks its own key, so a type change away from LoadBalancer
 * deletes its model.
 *
 * Ownership: store_put_* take the projection (it is freed when replaced,
 * deleted or when the store is cleared); store_service/store_node/iteration
 * hand out borrowed pointers valid until the next put/delete/clear. */
#ifndef KAVI_PLANNER_STORE_H
#define KAVI_PLANNER_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/k8s.h"

typedef struct store store_t;

/* node_port_mode: whether node events affect pools (serviceType NodePort). */
int store_new(store_t **out, bool node_port_mode);
void store_destroy(store_t **store);
/* Forgets every object and the dirty set (the k8s stream was RESET). */
void store_clear(store_t *store);

/* Take ownership of the projection, replacing (and freeing) what the same
 * key held. On failure the projection is freed too and *proj set NULL, so
 * the caller never keeps a pointer the store may own. */
int store_put_service_take(store_t *store, proto_service **svc);
int store_put_node_take(store_t *store, proto_node **node);
int store_put_slice_take(store_t *store, proto_endpoint_slice **slice);
/* Replaces a Node whose change no pool can see (the caller checked, e.g.
 * with pool_servers_node_equivalent), marking nothing. */
int store_put_node_take_unmarked(store_t *store, proto_node **node);

/* Deletions by store key; deleting an absent key does nothing. */
void store_delete_service(store_t *store, const char *key);
void store_delete_node(store_t *store, const char *name);
void store_delete_slice(store_t *store, const char *key);

/* Writes "ns/name" into buf; -1 when it does not fit. */
int store_key(char *buf, size_t buf_len, const char *ns, const char *name);

const proto_service *store_service(const store_t *store, const char *key);
const proto_node *store_node(const store_t *store, const char *name);
size_t store_node_count(const store_t *store);

typedef void (*store_node_fn)(const proto_node *node, void *payload);
void store_foreach_node(const store_t *store, store_node_fn fn, void *payload);
/* Every slice labelled with the service `key` ("ns/name"), whether or not
 * the Service itself is known yet. */
typedef void (*store_slice_fn)(const proto_endpoint_slice *slice, void *payload);
void store_foreach_slice_of(const store_t *store, const char *key, store_slice_fn fn,
                            void *payload);

/* ---- dirty set: services whose models must be recomputed ---------------- */

int store_mark_dirty(store_t *store, const char *key);
/* Marks every Service the store holds (the first publication, or after a
 * RESET). */
int store_mark_all_dirty(store_t *store);
/* Marks every Service of namespace `ns` (its tenant changed). */
int store_mark_namespace_dirty(store_t *store, const char *ns);
bool store_is_dirty(const store_t *store, const char *key);
size_t store_dirty_count(const store_t *store);
/* Hands the dirty keys to the caller, sorted, and empties the set. The
 * caller owns the array and each string (store_free_keys frees them). */
int store_take_dirty(store_t *store, char ***keys, size_t *n);
void store_free_keys(char ***keys, size_t n);

#endif
