/* avi_cache.h — what the controller holds that kavi owns, per type:
 * name → {uuid, checksum, _last_modified}, plus the VIP addresses of each
 * vsvip (for status) and each object's write rank (for deletion order).
 *
 * The cache is the syncer's belief about the controller. It is built once
 * by listing the owned types (by created_by = ako-<cluster> where the type
 * has the field, else by name prefix) and keeping only the objects that
 * carry this cluster's identity (avi_type_is_ours: the clustername marker,
 * and created_by where the type has it), whatever their names; afterwards
 * every write response keeps it true, so an unchanged object costs no
 * request at all. When the belief turns out wrong (404 on PUT, 409 on POST)
 * the reconciler corrects the one entry involved. Garbage collection and
 * deleteConfig delete only what is in the cache.
 *
 * The checksum of an entry is kavi's checksum of the body the controller
 * holds. Where the type has a checksum field, the controller echoes it.
 * Where it has none (healthmonitor, l4policyset), a write records the
 * checksum of the body written, and a listed object keeps the controller's
 * copy (`object`) until avi_type_holds() finds it holding a model's body;
 * then that body's checksum is recorded (avi_cache_set_checksum). */
#ifndef KAVI_SYNCER_AVI_CACHE_H
#define KAVI_SYNCER_AVI_CACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "syncer/avi_session.h"

typedef struct {
    char *type;
    char *name;
    char *uuid;
    char *checksum;      /* "" when not known (see above) */
    char *last_modified; /* NULL when unknown */
    int rank;            /* avi_type_rank() of the stored body */
    char **vips;         /* vsvip: every vip[].ip_address.addr / ip6_address.addr */
    size_t n_vips;
    json_t *object;      /* the controller's copy, for a type without checksum field
                            whose checksum is not known yet; else NULL */
} avi_cache_entry;

typedef struct avi_cache avi_cache_t;

/* cluster_name, created_by and name_prefix are copied (clusterName,
 * config_created_by(), config_name_prefix()). */
int avi_cache_new(avi_cache_t **out, const char *cluster_name, const char *created_by,
                  const char *name_prefix);
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
/* The same for the answer to a write of a body whose checksum is
 * `written`: a type without checksum field records it. */
int avi_cache_update_written(avi_cache_t *cache, const char *type, const json_t *object,
                             const char *written);
/* Records that the entry's controller copy holds a body of `checksum`. */
int avi_cache_set_checksum(avi_cache_t *cache, const char *type, const char *name,
                           const char *checksum);
/* Is the controller's copy (as cached) this cluster's? See avi_types.h. */
bool avi_cache_is_ours(const avi_cache_t *cache, const char *type, const json_t *object);
void avi_cache_remove(avi_cache_t *cache, const char *type, const char *name);
size_t avi_cache_size(const avi_cache_t *cache);

/* Every entry, borrowed, sorted by descending rank then type and name (the
 * order to delete them in). The array is malloc'd; free() it. Entries stay
 * valid until the cache changes. */
int avi_cache_list(const avi_cache_t *cache, const avi_cache_entry ***out, size_t *n);

/* The checksum of a body as stored for `type` ("" when absent, or when the
 * type has no checksum field); numbers are rendered in decimal. Writes into
 * buf. */
const char *avi_cache_checksum_of(const char *type, const json_t *body, char *buf,
                                  size_t buf_len);

#endif
