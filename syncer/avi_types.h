/* avi_types.h — the little the syncer knows about Avi object types: the
 * order they must be written in, and where each keeps kavi's checksum.
 * Everything else about an object is the planner's business (DESIGN §2). */
#ifndef KAVI_SYNCER_AVI_TYPES_H
#define KAVI_SYNCER_AVI_TYPES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Creation rank: an object is written after every object of lower rank in
 * its model (what it refers to), and deleted before them.
 *   sslkeyandcertificate 0, healthmonitor 1, pool 2, poolgroup 3,
 *   httppolicyset / l4policyset 4, vsvip 5, virtualservice 6, and 7 for a
 *   virtualservice with vh_parent_vs_ref (an SNI/EVH child refers to its
 *   parent). `body` may be NULL (then a virtualservice ranks 6). */
int avi_type_rank(const char *type, const json_t *body);

/* The body field holding kavi's checksum: "vsvip_cloud_config_cksum" for a
 * vsvip, "cloud_config_cksum" otherwise. */
const char *avi_type_checksum_field(const char *type);

/* The types kavi owns on the controller, in creation order. */
extern const char *const avi_type_owned[];
extern const size_t avi_type_owned_count;

/* True for a type the controller has no created_by on (vsvip): those are
 * found by their name prefix instead. */
bool avi_type_found_by_name(const char *type);

#endif
