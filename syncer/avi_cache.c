/* avi_cache.c — see avi_cache.h. Entries live in one uthash keyed
 * "<type>/<name>"; each entry owns all its strings. */
#include "syncer/avi_cache.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "common/error.h"
#include "common/log.h"
#include "syncer/avi_types.h"

#define CACHE_PAGE_SIZE 200
#define CACHE_PATH_MAX 4096
#define CACHE_MAX_VIPS 64

typedef struct {
    avi_cache_entry entry;
    char *key; /* "<type>/<name>" */
    UT_hash_handle hh;
} cache_item;

struct avi_cache {
    cache_item *items;
    char *cluster_name;
    char *created_by;
    char *name_prefix;
};

static void cache_item_free(cache_item *item)
{
    if (!item)
        return;
    free(item->key);
    free(item->entry.type);
    free(item->entry.name);
    free(item->entry.uuid);
    free(item->entry.checksum);
    free(item->entry.last_modified);
    for (size_t i = 0; i < item->entry.n_vips; i++)
        free(item->entry.vips[i]);
    free(item->entry.vips);
    json_decref(item->entry.object);
    free(item);
}

static void cache_clear(cache_item **items)
{
    cache_item *item, *tmp;
    HASH_ITER(hh, *items, item, tmp) {
        HASH_DEL(*items, item);
        cache_item_free(item);
    }
}

int avi_cache_new(avi_cache_t **out, const char *cluster_name, const char *created_by,
                  const char *name_prefix)
{
    *out = NULL;
    avi_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return KV_ERR_NOMEM;
    c->cluster_name = strdup(cluster_name);
    c->created_by = strdup(created_by);
    c->name_prefix = strdup(name_prefix);
    if (!c->cluster_name || !c->created_by || !c->name_prefix) {
        avi_cache_destroy(&c);
        return KV_ERR_NOMEM;
    }
    *out = c;
    return KV_OK;
}

void avi_cache_destroy(avi_cache_t **cache)
{
    avi_cache_t *c = *cache;
    if (!c)
        return;
    cache_clear(&c->items);
    free(c->cluster_name);
    free(c->created_by);
    free(c->name_prefix);
    free(c);
    *cache = NULL;
}

static char *cache_key(const char *type, const char *name)
{
    size_t len = strlen(type) + strlen(name) + 2;
    char *key = malloc(len);
    if (key)
        snprintf(key, len, "%s/%s", type, name);
    return key;
}

const char *avi_cache_checksum_of(const char *type, const json_t *body, char *buf,
                                  size_t buf_len)
{
    const char *field = avi_type_checksum_field(type);
    const json_t *sum = field ? json_object_get(body, field) : NULL;
    if (json_is_string(sum))
        snprintf(buf, buf_len, "%s", json_string_value(sum));
    else if (json_is_integer(sum))
        snprintf(buf, buf_len, "%" JSON_INTEGER_FORMAT, json_integer_value(sum));
    else
        snprintf(buf, buf_len, "%s", "");
    return buf;
}

static const char *cache_string_field(const json_t *object, const char *field)
{
    const json_t *v = json_object_get(object, field);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* vip[].ip_address.addr and vip[].ip6_address.addr, in vip order. */
static int cache_take_vips(avi_cache_entry *e, const json_t *object)
{
    const json_t *vips = json_object_get(object, "vip");
    size_t index;
    const json_t *vip;
    if (!json_is_array(vips))
        return KV_OK;
    e->vips = calloc(CACHE_MAX_VIPS, sizeof *e->vips);
    if (!e->vips)
        return KV_ERR_NOMEM;
    json_array_foreach(vips, index, vip) {
        static const char *const families[] = {"ip_address", "ip6_address"};
        for (size_t f = 0; f < 2 && e->n_vips < CACHE_MAX_VIPS; f++) {
            const char *addr = cache_string_field(json_object_get(vip, families[f]), "addr");
            if (!addr || !*addr)
                continue;
            e->vips[e->n_vips] = strdup(addr);
            if (!e->vips[e->n_vips])
                return KV_ERR_NOMEM;
            e->n_vips++;
        }
    }
    return KV_OK;
}

static int cache_item_from_object(cache_item **out, const char *type, const json_t *object)
{
    char sum[128];
    *out = NULL;
    const char *name = cache_string_field(object, "name");
    const char *uuid = cache_string_field(object, "uuid");
    if (!name || !uuid)
        return KV_ERR_INVALID;
    const char *last_modified = cache_string_field(object, "_last_modified");
    cache_item *item = calloc(1, sizeof *item);
    if (!item)
        return KV_ERR_NOMEM;
    item->key = cache_key(type, name);
    item->entry.type = strdup(type);
    item->entry.name = strdup(name);
    item->entry.uuid = strdup(uuid);
    item->entry.checksum = strdup(avi_cache_checksum_of(type, object, sum, sizeof sum));
    item->entry.last_modified = last_modified ? strdup(last_modified) : NULL;
    item->entry.rank = avi_type_rank(type, object);
    /* Without a checksum field only the fields can tell what it holds. */
    if (!avi_type_checksum_field(type))
        item->entry.object = json_deep_copy(object);
    if ((!avi_type_checksum_field(type) && !item->entry.object) || !item->key ||
        !item->entry.type || !item->entry.name || !item->entry.uuid || !item->entry.checksum ||
        (last_modified && !item->entry.last_modified) ||
        cache_take_vips(&item->entry, object) < 0) {
        cache_item_free(item);
        return KV_ERR_NOMEM;
    }
    *out = item;
    return KV_OK;
}

static void cache_insert(cache_item **items, cache_item *item)
{
    cache_item *old = NULL;
    HASH_REPLACE_STR(*items, key, item, old);
    cache_item_free(old);
}

int avi_cache_update(avi_cache_t *cache, const char *type, const json_t *object)
{
    cache_item *item;
    int rc = cache_item_from_object(&item, type, object);
    if (rc < 0)
        return rc;
    cache_insert(&cache->items, item);
    return KV_OK;
}

int avi_cache_update_written(avi_cache_t *cache, const char *type, const json_t *object,
                             const char *written)
{
    int rc = avi_cache_update(cache, type, object);
    if (rc == KV_OK && !avi_type_checksum_field(type))
        rc = avi_cache_set_checksum(cache, type, json_string_value(json_object_get(object, "name")),
                                    written);
    return rc;
}

static cache_item *cache_find(const avi_cache_t *cache, const char *type, const char *name)
{
    char *key = cache_key(type, name);
    cache_item *item = NULL;
    if (!key)
        return NULL;
    HASH_FIND_STR(cache->items, key, item);
    free(key);
    return item;
}

int avi_cache_set_checksum(avi_cache_t *cache, const char *type, const char *name,
                           const char *checksum)
{
    cache_item *item = name ? cache_find(cache, type, name) : NULL;
    if (!item)
        return KV_ERR_INVALID;
    char *copy = strdup(checksum);
    if (!copy)
        return KV_ERR_NOMEM;
    free(item->entry.checksum);
    item->entry.checksum = copy;
    json_decref(item->entry.object); /* no longer needed */
    item->entry.object = NULL;
    return KV_OK;
}

bool avi_cache_is_ours(const avi_cache_t *cache, const char *type, const json_t *object)
{
    avi_identity id = {cache->cluster_name, cache->created_by, cache->name_prefix};
    return avi_type_is_ours(type, object, &id);
}

const avi_cache_entry *avi_cache_get(const avi_cache_t *cache, const char *type, const char *name)
{
    cache_item *item = cache_find(cache, type, name);
    return item ? &item->entry : NULL;
}

void avi_cache_remove(avi_cache_t *cache, const char *type, const char *name)
{
    char *key = cache_key(type, name);
    cache_item *item = NULL;
    if (!key)
        return;
    HASH_FIND_STR(cache->items, key, item);
    free(key);
    if (item) {
        HASH_DEL(cache->items, item);
        cache_item_free(item);
    }
}

size_t avi_cache_size(const avi_cache_t *cache)
{
    return HASH_COUNT(cache->items);
}

static int cache_entry_delete_order(const void *a, const void *b)
{
    const avi_cache_entry *x = *(const avi_cache_entry *const *)a;
    const avi_cache_entry *y = *(const avi_cache_entry *const *)b;
    if (x->rank != y->rank)
        return y->rank - x->rank;
    int c = strcmp(x->type, y->type);
    return c ? c : strcmp(x->name, y->name);
}

int avi_cache_list(const avi_cache_t *cache, const avi_cache_entry ***out, size_t *n)
{
    size_t count = HASH_COUNT(cache->items);
    *out = NULL;
    *n = 0;
    const avi_cache_entry **list = calloc(count ? count : 1, sizeof *list);
    if (!list)
        return KV_ERR_NOMEM;
    size_t i = 0;
    for (const cache_item *item = cache->items; item; item = item->hh.next)
        list[i++] = &item->entry;
    qsort(list, count, sizeof *list, cache_entry_delete_order);
    *out = list;
    *n = count;
    return KV_OK;
}

/* ---- loading --------------------------------------------------------------- */

typedef struct {
    const avi_cache_t *cache;
    const char *type;
    cache_item **items;
    unsigned not_ours;
} cache_loader;

static int cache_take_listed(const json_t *object, void *payload)
{
    cache_loader *ld = payload;
    /* A listing by created_by or name.contains also finds what only looks
     * like ours: "a---ns-svc" of cluster "a-" for cluster "a", objects made
     * by hand. The cluster's identity decides. */
    if (!avi_cache_is_ours(ld->cache, ld->type, object)) {
        const char *name = cache_string_field(object, "name");
        log_debug("avi cache: %s %s does not carry cluster %s's identity; left alone", ld->type,
                  name ? name : "?", ld->cache->cluster_name);
        ld->not_ours++;
        return KV_OK;
    }
    cache_item *item;
    int rc = cache_item_from_object(&item, ld->type, object);
    if (rc == KV_ERR_INVALID) {
        log_warn("avi cache: skipping a %s without name or uuid", ld->type);
        return KV_OK;
    }
    if (rc < 0)
        return rc;
    cache_insert(ld->items, item);
    return KV_OK;
}

static int cache_load_type(avi_cache_t *cache, avi_session_t *session, const char *type,
                           cache_item **items)
{
    char path[CACHE_PATH_MAX];
    char value[1024];
    bool by_name = avi_type_found_by_name(type);
    int rc = avi_session_escape(value, sizeof value, by_name ? cache->name_prefix : cache->created_by);
    if (rc < 0)
        return rc;
    /* include_name: refs come back as ".../<uuid>#<name>", which
     * avi_type_holds() compares with kavi's by-name refs. */
    rc = snprintf(path, sizeof path, "/api/%s?%s=%s&include_name=true&page_size=%d", type,
                  by_name ? "name.contains" : "created_by", value, CACHE_PAGE_SIZE);
    if (rc < 0 || (size_t)rc >= sizeof path)
        return KV_ERR_TOO_LARGE;
    cache_loader ld = {.cache = cache, .type = type, .items = items};
    rc = avi_session_list(session, path, cache_take_listed, &ld);
    if (rc < 0)
        log_warn("avi cache: listing %s: %s", type, avi_session_error(session));
    else if (ld.not_ours)
        log_info("avi cache: %u %s objects listed do not carry cluster %s's identity; left alone",
                 ld.not_ours, type, cache->cluster_name);
    return rc;
}

int avi_cache_load(avi_cache_t *cache, avi_session_t *session)
{
    cache_item *items = NULL;
    for (size_t i = 0; i < avi_type_owned_count; i++) {
        int rc = cache_load_type(cache, session, avi_type_owned[i], &items);
        if (rc < 0) {
            cache_clear(&items);
            return rc;
        }
    }
    cache_clear(&cache->items);
    cache->items = items;
    log_info("avi cache: %u objects owned by %s on %s (tenant %s)", HASH_COUNT(items),
             cache->created_by, avi_session_base(session), avi_session_tenant(session));
    return KV_OK;
}
