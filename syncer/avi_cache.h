/* avi_cache.h — what the controller holds that kavi owns, per type:
 * name → {uuid, checksum, _last_modified}, plus the VIP addresses of each
 * vsvip (for status) and each object's write rank (for deletion order).
 *
 * The cache is the syncer's belief about the controller. It is built once
 * by listing every owned object (created_by = ako-<cluster>; vsvips, which
 * have no created_by, by name prefix) and afterwards kept true by every
 * write response, so an unchanged object costs no request at all. When the
 * belief turns out wrong (404 on PUT, 409 on POST) the reconciler corrects
 * the one entry involved. */
#ifndef KAVI_SYNCER_AVI_CACHE_H
#define KAVI_SYNCER_AVI_CACHE_H

#include <jansson.h>
#include <stddef.h>

#include "syncer/avi_session.h"

typedef struct {
    char *type;
    char *name;
    char *uuid;
    char *checksum;      /* "" when the controller's copy has none */
    char *last_modified; /* NULL when unknown */
    int rank;            /* avi_type_rank() of the stored body */
    char **vips;         /* vsvip: every vip[].ip_address.addr / ip6_address.addr */
    size_t n_vips;
} avi_cache_entry;

typedef struct avi_cache avi_cache_t;

/* created_by and name_prefix are copied (config_created_by(),
 * config_name_prefix()). */
int avi_cache_new(avi_cache_t **out, const char *created_by, const char *name_prefix);
void avi_cache_destroy(avi_cache_t **cache);

/* Lists every owned object of every owned type with paged GETs and replaces
 * the cache with the result. On failure the old contents stay and the
 * session's error says what failed. */
int avi_cache_load(avi_cache_t *cache, avi_session_t *session);

/* Borrowed; valid until the entry is updated or removed. NULL if absent. */
const avi_cache_entry *avi_cache_get(const avi_cache_t *cache, const char *type,
                                     const char *name);

/* Records an object as the controller returned it (POST/PUT/GET body,
 * borrowed). KV_ERR_INVALID when it has no name or uuid. */
int avi_cache_update(avi_cache_t *cache, const char *type, const json_t *object);
void avi_cache_remove(avi_cache_t *cache, const char *type, const char *name);
size_t avi_cache_size(const avi_cache_t *cache);

/* Every entry, borrowed, sorted by descending rank then type and name (the
 * order to delete them in). The array is malloc'd; free() it. Entries stay
 * valid until the cache changes. */
int avi_cache_list(const avi_cache_t *cache, const avi_cache_entry ***out, size_t *n);

/* The checksum of a body as stored for `type` ("" when absent); numbers are
 * rendered in decimal. Writes into buf. */
const char *avi_cache_checksum_of(const char *type, const json_t *body, char *buf,
                                  size_t buf_len);

#endif
