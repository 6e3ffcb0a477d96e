/* avi_types.h — the little the syncer knows about Avi object types, in one
 * table (avi_types.c): the order they must be written in, whether the type
 * has a created_by field, and which field (if any) keeps kavi's checksum.
 * From these follow the two questions the syncer asks of a controller's
 * object: is it ours, and does it already hold what a model wants.
 * Everything else about an object is the planner's business (DESIGN §2).
 *
 * Facts from the controller's model (research/avi_models.json):
 *   type                  rank  created_by  checksum field
 *   sslkeyandcertificate  0     yes         -
 *   pkiprofile            0     yes         -
 *   healthmonitor         1     no          -
 *   applicationpersistenceprofile 1 no      -
 *   pool                  2     yes         cloud_config_cksum
 *   poolgroup             3     yes         cloud_config_cksum
 *   stringgroup           3     no          -
 *   httppolicyset         4     yes         cloud_config_cksum
 *   l4policyset           4     yes         -
 *   vsdatascriptset       4     yes         -
 *   vsvip                 5     no          vsvip_cloud_config_cksum
 *   virtualservice        6 (7 for an SNI/EVH child)  yes  cloud_config_cksum */
#ifndef KAVI_SYNCER_AVI_TYPES_H
#define KAVI_SYNCER_AVI_TYPES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Creation rank: an object is written after every object of lower rank in
 * its model (what it refers to), and deleted before them; 7 for a
 * virtualservice with vh_parent_vs_ref (an SNI/EVH child refers to its
 * parent), 1 for a type not in the table. `body` may be NULL (then a
 * virtualservice ranks 6). */
int avi_type_rank(const char *type, const json_t *body);

/* The body field holding kavi's checksum, or NULL when the type has none
 * (then avi_type_holds() compares the fields instead). */
const char *avi_type_checksum_field(const char *type);

/* True when the type has a created_by field. */
bool avi_type_has_created_by(const char *type);

/* The types kavi owns on the controller, in creation order. */
extern const char *const avi_type_owned[];
extern const size_t avi_type_owned_count;

/* True for a type without created_by: the cache lists it by name prefix
 * (name.contains) instead; ownership is still avi_type_is_ours(). */
bool avi_type_found_by_name(const char *type);

/* Who kavi is on the controller: clusterName, "ako-<clusterName>",
 * "<clusterName>--" (config_created_by(), config_name_prefix()). */
typedef struct {
    const char *cluster_name;
    const char *created_by;
    const char *name_prefix;
} avi_identity;

/* Is the controller's `object` this cluster's? Only when it carries the
 * cluster's identity: the marker clustername=<cluster_name> and, where the
 * type has the field, created_by == id->created_by; and its name has the
 * prefix (which alone proves nothing: cluster "a" must not take "a---ns-svc"
 * of cluster "a-", nor anything made by hand; AKO's gateway container marks
 * "ako-gw-<cluster>--..." with the same clustername). */
bool avi_type_is_ours(const char *type, const json_t *object, const avi_identity *id);

/* Does the controller's `actual` copy hold `desired`? True when every field
 * of desired is in actual with an equal value, recursively (objects may have
 * more fields: the controller fills in defaults; arrays must match element
 * by element). A reference kavi writes by name ("/api/pool/?name=x")
 * equals the controller's "https://host/api/pool/pool-uuid#x". */
bool avi_type_holds(const json_t *desired, const json_t *actual);

#endif
