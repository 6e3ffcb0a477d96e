/* model.h — desired state for one Avi virtual service and everything it owns.
 *
 * The planner publishes one model per VS on stream "model.<tenant>" under
 * key <vs name>. Each object is the exact JSON body the controller should
 * hold, with its checksum already in the body where the type has a field
 * for it (cloud_config_cksum, or vsvip_cloud_config_cksum for a VsVip), so
 * the syncer never rewrites an object whose stored checksum matches (types
 * without one are compared by their fields, syncer/avi_types.h). `owners` name the Kubernetes objects
 * the model comes from ("Service/<ns>/<name>"), for status. */
#ifndef KAVI_PROTO_MODEL_H
#define KAVI_PROTO_MODEL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"

typedef struct {
    char *type;     /* Avi object type as in the URL: pool, vsvip, virtualservice, ... */
    char *name;
    char *checksum; /* decimal string, equal to the body's checksum field if any */
    json_t *body;   /* owned reference */
} proto_avi_object;

typedef struct {
    char *tenant;
    char *name;     /* the VS name, also the bus key */
    char **owners;
    size_t n_owners;
    proto_avi_object *objects;
    size_t n_objects;
} proto_model;

int proto_model_encode(const proto_model *model, void **out, size_t *out_len);
int proto_model_decode(proto_model **out, const void *data, size_t len);
void proto_model_destroy(proto_model **model);

/* The fingerprint of one published model: FNV-1a (64 bit) over its key, a
 * NUL byte and its encoded body, exactly as the bus carries it. A set of
 * models is summed up by its count and the sum (mod 2^64) of its members'
 * fingerprints: order does not matter, and adding or removing one member
 * is one addition or subtraction. The planner states the set it published
 * at the end of a stream, the syncer the set it applied; equal sums mean the
 * same models in the same versions. */
uint64_t proto_model_fingerprint(const char *key, const void *body, size_t len);

/* msgpack ↔ JSON for object bodies. Integers, reals, strings, booleans, null,
 * arrays and string-keyed maps; nesting is limited to PROTO_MAX_DEPTH. */
void pw_json(proto_writer *w, const json_t *value);
int proto_json_from_msgpack(json_t **out, const msgpack_object *obj);

#endif
