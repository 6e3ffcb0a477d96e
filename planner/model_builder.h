/* model_builder.h — assembling a proto_model from Avi object bodies.
 *
 * Every object gets a checksum: FNV-1a 32-bit over the body serialised with
 * sorted keys and no whitespace (without the checksum field itself), as a
 * decimal string. Where the type has a field for it, the body carries it too,
 * as AKO stores its own (cloud_config_cksum; vsvip_cloud_config_cksum for a
 * VsVip), so the controller echoes it back and a restarted syncer compares
 * two strings. Types without one (HealthMonitor, L4PolicySet) get no such
 * field: the syncer compares the fields of the body with the controller's
 * copy instead (syncer/avi_types.h). Either way a restart of any stage
 * writes nothing that did not change. */
#ifndef KAVI_PLANNER_MODEL_BUILDER_H
#define KAVI_PLANNER_MODEL_BUILDER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/model.h"

/* A new model with no objects; tenant, name and owner are copied. */
int model_builder_new(proto_model **out, const char *tenant, const char *name, const char *owner);

/* Appends an object, taking the reference to `body` (also on failure).
 * The checksum is computed and, unless checksum_field is NULL (the type has
 * no such field in the Avi model), set in body[checksum_field]. */
int model_builder_add_take(proto_model *model, const char *type, const char *name, json_t *body,
                           const char *checksum_field);

uint32_t model_builder_fnv1a(const void *data, size_t len);

/* The checksum of a body as a decimal string; *out is malloc'd. */
int model_builder_checksum(char **out, const json_t *body);

#endif
