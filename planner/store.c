/* store.c — see store.h. Invariants:
 *  - a slice entry is attached to the service entry named by its
 *    service-name label (or to none), and appears in that entry's list;
 *  - for every (node, service) pair, node_ref.count equals the number of
 *    endpoints of that service's slices whose nodeName is the node;
 *  - a service entry exists while it holds a Service or a slice, a node
 *    entry while it holds a Node or a node_ref; then it is freed;
 *  - a service entry is in node_wide iff node_port_mode and its Service is
 *    a LoadBalancer with externalTrafficPolicy Cluster. */
#include "planner/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <utlist.h>

#include "common/error.h"
#include "common/log.h"

/* Namespace (63) + name (253) + separator, with room to spare; a longer key
 * is hostile input and the object is refused. */
#define STORE_KEY_MAX 512

typedef struct service_entry service_entry;

typedef struct slice_entry {
    char *key; /* "ns/name" */
    proto_endpoint_slice *slice;
    service_entry *service; /* the entry it is attached to, or NULL */
    struct slice_entry *prev, *next;
    UT_hash_handle hh;
} slice_entry;

struct service_entry {
    char *key;          /* "ns/name" */
    proto_service *svc; /* NULL while only slices name it */
    slice_entry *slices;
    bool node_wide;
    UT_hash_handle hh;
    UT_hash_handle hh_node_wide;
};

typedef struct node_ref {
    char *service_key;
    size_t count; /* endpoints of the service on the node */
    UT_hash_handle hh;
} node_ref;

typedef struct node_entry {
    char *name;
    proto_node *node; /* NULL while only endpoints name it */
    node_ref *services;
    UT_hash_handle hh;
} node_entry;

typedef struct dirty_key {
    char *key;
    UT_hash_handle hh;
} dirty_key;

struct store {
    bool node_port_mode;
    service_entry *services;
    service_entry *node_wide; /* by hh_node_wide */
    slice_entry *slices;
    node_entry *nodes;
    dirty_key *dirty;
};

int store_key(char *buf, size_t buf_len, const char *ns, const char *name)
{
    int n = snprintf(buf, buf_len, "%s/%s", ns ? ns : "", name ? name : "");
    return n < 0 || (size_t)n >= buf_len ? -1 : n;
}

int store_new(store_t **out, bool node_port_mode)
{
    store_t *store = calloc(1, sizeof *store);
    *out = store;
    if (!store)
        return KV_ERR_NOMEM;
    store->node_port_mode = node_port_mode;
    return KV_OK;
}

/* ---- dirty set ---------------------------------------------------------- */

int store_mark_dirty(store_t *store, const char *key)
{
    dirty_key *d = NULL;
    HASH_FIND_STR(store->dirty, key, d);
    if (d)
        return KV_OK;
    d = calloc(1, sizeof *d);
    if (!d || !(d->key = strdup(key))) {
        free(d);
        return KV_ERR_NOMEM;
    }
    HASH_ADD_KEYPTR(hh, store->dirty, d->key, strlen(d->key), d);
    return KV_OK;
}

bool store_is_dirty(const store_t *store, const char *key)
{
    dirty_key *d = NULL;
    HASH_FIND_STR(store->dirty, key, d);
    return d != NULL;
}

size_t store_dirty_count(const store_t *store) { return HASH_COUNT(store->dirty); }

int store_mark_all_dirty(store_t *store)
{
    service_entry *entry, *tmp;
    HASH_ITER(hh, store->services, entry, tmp) {
        if (entry->svc && store_mark_dirty(store, entry->key) < 0)
            return KV_ERR_NOMEM;
    }
    return KV_OK;
}

int store_mark_namespace_dirty(store_t *store, const char *ns)
{
    size_t n = strlen(ns);
    service_entry *entry, *tmp;
    HASH_ITER(hh, store->services, entry, tmp) {
        if (entry->svc && strncmp(entry->key, ns, n) == 0 && entry->key[n] == '/' &&
            store_mark_dirty(store, entry->key) < 0)
            return KV_ERR_NOMEM;
    }
    return KV_OK;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_take_dirty(store_t *store, char ***keys_out, size_t *n_out)
{
    size_t n = HASH_COUNT(store->dirty), i = 0;
    char **keys = NULL;
    *keys_out = NULL;
    *n_out = 0;
    if (n == 0)
        return KV_OK;
    keys = calloc(n, sizeof *keys);
    if (!keys)
        return KV_ERR_NOMEM;
    dirty_key *d, *tmp;
    HASH_ITER(hh, store->dirty, d, tmp) {
        HASH_DEL(store->dirty, d);
        keys[i++] = d->key; /* the string moves to the caller */
        free(d);
    }
    qsort(keys, n, sizeof *keys, compare_keys);
    *keys_out = keys;
    *n_out = n;
    return KV_OK;
}

void store_free_keys(char ***keys, size_t n)
{
    if (!*keys)
        return;
    for (size_t i = 0; i < n; i++)
        free((*keys)[i]);
    free(*keys);
    *keys = NULL;
}

static bool is_load_balancer(const proto_service *svc)
{
    return svc && svc->type && strcmp(svc->type, "LoadBalancer") == 0;
}

/* Node events matter only to Services that have a model. */
static int mark_if_modelled(store_t *store, const service_entry *entry)
{
    if (entry && is_load_balancer(entry->svc))
        return store_mark_dirty(store, entry->key);
    return KV_OK;
}

/* Slice events matter to the pools that follow endpoints: every one in
 * ClusterIP mode, only Local ones in NodePort mode (a Cluster Service lists
 * every candidate node whatever its endpoints, so recomputing it would
 * only cost time). */
static int mark_if_endpoints_matter(store_t *store, const service_entry *entry)
{
    if (entry && !entry->node_wide)
        return mark_if_modelled(store, entry);
    return KV_OK;
}

/* ---- entries ------------------------------------------------------------ */

static service_entry *service_entry_get(store_t *store, const char *key, bool create)
{
    service_entry *entry = NULL;
    HASH_FIND_STR(store->services, key, entry);
    if (entry || !create)
        return entry;
    entry = calloc(1, sizeof *entry);
    if (!entry || !(entry->key = strdup(key))) {
        free(entry);
        return NULL;
    }
    HASH_ADD_KEYPTR(hh, store->services, entry->key, strlen(entry->key), entry);
    return entry;
}

static void service_entry_release_if_empty(store_t *store, service_entry *entry)
{
    if (entry->svc || entry->slices)
        return;
    if (entry->node_wide)
        HASH_DELETE(hh_node_wide, store->node_wide, entry);
    HASH_DEL(store->services, entry);
    free(entry->key);
    free(entry);
}

static node_entry *node_entry_get(store_t *store, const char *name, bool create)
{
    node_entry *entry = NULL;
    HASH_FIND_STR(store->nodes, name, entry);
    if (entry || !create)
        return entry;
    entry = calloc(1, sizeof *entry);
    if (!entry || !(entry->name = strdup(name))) {
        free(entry);
        return NULL;
    }
    HASH_ADD_KEYPTR(hh, store->nodes, entry->name, strlen(entry->name), entry);
    return entry;
}

static void node_entry_release_if_empty(store_t *store, node_entry *entry)
{
    if (entry->node || entry->services)
        return;
    HASH_DEL(store->nodes, entry);
    free(entry->name);
    free(entry);
}

static int node_ref_add(store_t *store, const char *node_name, const char *service_key)
{
    node_entry *entry = node_entry_get(store, node_name, true);
    node_ref *ref = NULL;
    if (!entry)
        return KV_ERR_NOMEM;
    HASH_FIND_STR(entry->services, service_key, ref);
    if (!ref) {
        ref = calloc(1, sizeof *ref);
        if (!ref || !(ref->service_key = strdup(service_key))) {
            free(ref);
            node_entry_release_if_empty(store, entry);
            return KV_ERR_NOMEM;
        }
        HASH_ADD_KEYPTR(hh, entry->services, ref->service_key, strlen(ref->service_key), ref);
    }
    ref->count++;
    return KV_OK;
}

static void node_ref_remove(store_t *store, const char *node_name, const char *service_key)
{
    node_entry *entry = node_entry_get(store, node_name, false);
    node_ref *ref = NULL;
    if (!entry)
        return;
    HASH_FIND_STR(entry->services, service_key, ref);
    if (ref && --ref->count == 0) {
        HASH_DEL(entry->services, ref);
        free(ref->service_key);
        free(ref);
    }
    node_entry_release_if_empty(store, entry);
}

/* ---- slices ------------------------------------------------------------- */

/* Undoes what slice_attach did: index entries and list membership. */
static void slice_detach(store_t *store, slice_entry *entry)
{
    service_entry *service = entry->service;
    if (!service)
        return;
    for (size_t i = 0; i < entry->slice->n_endpoints; i++) {
        const char *node_name = entry->slice->endpoints[i].node_name;
        if (node_name)
            node_ref_remove(store, node_name, service->key);
    }
    DL_DELETE(service->slices, entry);
    entry->service = NULL;
    service_entry_release_if_empty(store, service);
}

static int slice_attach(store_t *store, slice_entry *entry)
{
    char key[STORE_KEY_MAX];
    const proto_endpoint_slice *slice = entry->slice;
    if (!slice->service_name)
        return KV_OK; /* a slice of no Service feeds no pool */
    if (store_key(key, sizeof key, slice->namespace, slice->service_name) < 0)
        return KV_ERR_TOO_LARGE;
    service_entry *service = service_entry_get(store, key, true);
    if (!service)
        return KV_ERR_NOMEM;
    DL_APPEND(service->slices, entry);
    entry->service = service;
    for (size_t i = 0; i < slice->n_endpoints; i++) {
        const char *node_name = slice->endpoints[i].node_name;
        if (node_name && node_ref_add(store, node_name, service->key) < 0) {
            /* Roll back the endpoints already counted, then the list. */
            for (size_t j = 0; j < i; j++)
                if (slice->endpoints[j].node_name)
                    node_ref_remove(store, slice->endpoints[j].node_name, service->key);
            DL_DELETE(service->slices, entry);
            entry->service = NULL;
            service_entry_release_if_empty(store, service);
            return KV_ERR_NOMEM;
        }
    }
    return KV_OK;
}

static void slice_entry_free(slice_entry *entry)
{
    proto_endpoint_slice_destroy(&entry->slice);
    free(entry->key);
    free(entry);
}

int store_put_slice_take(store_t *store, proto_endpoint_slice **slice_p)
{
    char key[STORE_KEY_MAX];
    proto_endpoint_slice *slice = *slice_p;
    slice_entry *entry = NULL;
    int rc;

    *slice_p = NULL;
    if (store_key(key, sizeof key, slice->namespace, slice->name) < 0) {
        proto_endpoint_slice_destroy(&slice);
        return KV_ERR_TOO_LARGE;
    }
    HASH_FIND_STR(store->slices, key, entry);
    if (entry) {
        /* The old service may lose its endpoints (the label moved). */
        mark_if_endpoints_matter(store, entry->service);
        slice_detach(store, entry);
        proto_endpoint_slice_destroy(&entry->slice);
    } else {
        entry = calloc(1, sizeof *entry);
        if (!entry || !(entry->key = strdup(key))) {
            free(entry);
            proto_endpoint_slice_destroy(&slice);
            return KV_ERR_NOMEM;
        }
        HASH_ADD_KEYPTR(hh, store->slices, entry->key, strlen(entry->key), entry);
    }
    entry->slice = slice;
    rc = slice_attach(store, entry);
    if (rc < 0) {
        HASH_DEL(store->slices, entry);
        slice_entry_free(entry);
        return rc;
    }
    return mark_if_endpoints_matter(store, entry->service);
}

void store_delete_slice(store_t *store, const char *key)
{
    slice_entry *entry = NULL;
    HASH_FIND_STR(store->slices, key, entry);
    if (!entry)
        return;
    mark_if_endpoints_matter(store, entry->service);
    slice_detach(store, entry);
    HASH_DEL(store->slices, entry);
    slice_entry_free(entry);
}

void store_foreach_slice_of(const store_t *store, const char *key, store_slice_fn fn, void *payload)
{
    service_entry *service = NULL;
    slice_entry *entry;
    HASH_FIND_STR(store->services, key, service);
    if (!service)
        return;
    DL_FOREACH(service->slices, entry)
        fn(entry->slice, payload);
}

/* ---- services ----------------------------------------------------------- */

static void service_set_node_wide(store_t *store, service_entry *entry)
{
    bool node_wide = store->node_port_mode && is_load_balancer(entry->svc) &&
                     !entry->svc->external_traffic_local;
    if (node_wide == entry->node_wide)
        return;
    if (node_wide)
        HASH_ADD_KEYPTR(hh_node_wide, store->node_wide, entry->key, strlen(entry->key), entry);
    else
        HASH_DELETE(hh_node_wide, store->node_wide, entry);
    entry->node_wide = node_wide;
}

int store_put_service_take(store_t *store, proto_service **svc_p)
{
    char key[STORE_KEY_MAX];
    proto_service *svc = *svc_p;

    *svc_p = NULL;
    if (store_key(key, sizeof key, svc->namespace, svc->name) < 0) {
        proto_service_destroy(&svc);
        return KV_ERR_TOO_LARGE;
    }
    service_entry *entry = service_entry_get(store, key, true);
    if (!entry) {
        proto_service_destroy(&svc);
        return KV_ERR_NOMEM;
    }
    proto_service_destroy(&entry->svc);
    entry->svc = svc;
    service_set_node_wide(store, entry);
    return store_mark_dirty(store, entry->key);
}

void store_delete_service(store_t *store, const char *key)
{
    service_entry *entry = NULL;
    HASH_FIND_STR(store->services, key, entry);
    if (!entry || !entry->svc)
        return;
    /* Marked even if it was not a LoadBalancer: marking is cheap and the
     * planner then drops whatever model the key may still own. */
    store_mark_dirty(store, key);
    proto_service_destroy(&entry->svc);
    service_set_node_wide(store, entry);
    service_entry_release_if_empty(store, entry);
}

const proto_service *store_service(const store_t *store, const char *key)
{
    service_entry *entry = NULL;
    HASH_FIND_STR(store->services, key, entry);
    return entry ? entry->svc : NULL;
}

/* ---- nodes -------------------------------------------------------------- */

/* A node event changes the pools of the Services that use every node and of
 * those with endpoints on it; in ClusterIP mode pools hold endpoint
 * addresses and no node event matters. */
static int mark_node_dependents(store_t *store, const node_entry *entry)
{
    if (!store->node_port_mode)
        return KV_OK;
    service_entry *service, *tmp;
    HASH_ITER(hh_node_wide, store->node_wide, service, tmp) {
        if (store_mark_dirty(store, service->key) < 0)
            return KV_ERR_NOMEM;
    }
    node_ref *ref, *ref_tmp;
    HASH_ITER(hh, entry->services, ref, ref_tmp) {
        service_entry *dependent = NULL;
        HASH_FIND_STR(store->services, ref->service_key, dependent);
        if (mark_if_modelled(store, dependent) < 0)
            return KV_ERR_NOMEM;
    }
    return KV_OK;
}

static int node_put(store_t *store, proto_node **node_p, bool mark)
{
    proto_node *node = *node_p;
    *node_p = NULL;
    if (!node->name || strlen(node->name) >= STORE_KEY_MAX) {
        proto_node_destroy(&node);
        return KV_ERR_TOO_LARGE;
    }
    node_entry *entry = node_entry_get(store, node->name, true);
    if (!entry) {
        proto_node_destroy(&node);
        return KV_ERR_NOMEM;
    }
    proto_node_destroy(&entry->node);
    entry->node = node;
    return mark ? mark_node_dependents(store, entry) : KV_OK;
}

int store_put_node_take(store_t *store, proto_node **node_p)
{
    return node_put(store, node_p, true);
}

int store_put_node_take_unmarked(store_t *store, proto_node **node_p)
{
    return node_put(store, node_p, false);
}

void store_delete_node(store_t *store, const char *name)
{
    node_entry *entry = node_entry_get(store, name, false);
    if (!entry || !entry->node)
        return;
    mark_node_dependents(store, entry);
    proto_node_destroy(&entry->node);
    node_entry_release_if_empty(store, entry);
}

const proto_node *store_node(const store_t *store, const char *name)
{
    node_entry *entry = NULL;
    HASH_FIND_STR(store->nodes, name, entry);
    return entry ? entry->node : NULL;
}

size_t store_node_count(const store_t *store)
{
    size_t n = 0;
    node_entry *entry, *tmp;
    HASH_ITER(hh, store->nodes, entry, tmp)
        n += entry->node != NULL;
    return n;
}

void store_foreach_node(const store_t *store, store_node_fn fn, void *payload)
{
    node_entry *entry, *tmp;
    HASH_ITER(hh, store->nodes, entry, tmp) {
        if (entry->node)
            fn(entry->node, payload);
    }
}

/* ---- lifetime ----------------------------------------------------------- */

void store_clear(store_t *store)
{
    slice_entry *slice, *slice_tmp;
    HASH_ITER(hh, store->slices, slice, slice_tmp) {
        HASH_DEL(store->slices, slice);
        slice_entry_free(slice);
    }
    HASH_CLEAR(hh_node_wide, store->node_wide);
    service_entry *service, *service_tmp;
    HASH_ITER(hh, store->services, service, service_tmp) {
        HASH_DEL(store->services, service);
        proto_service_destroy(&service->svc);
        free(service->key);
        free(service);
    }
    node_entry *node, *node_tmp;
    HASH_ITER(hh, store->nodes, node, node_tmp) {
        node_ref *ref, *ref_tmp;
        HASH_ITER(hh, node->services, ref, ref_tmp) {
            HASH_DEL(node->services, ref);
            free(ref->service_key);
            free(ref);
        }
        HASH_DEL(store->nodes, node);
        proto_node_destroy(&node->node);
        free(node->name);
        free(node);
    }
    dirty_key *d, *d_tmp;
    HASH_ITER(hh, store->dirty, d, d_tmp) {
        HASH_DEL(store->dirty, d);
        free(d->key);
        free(d);
    }
}

void store_destroy(store_t **store_p)
{
    if (!*store_p)
        return;
    store_clear(*store_p);
    free(*store_p);
    *store_p = NULL;
}
