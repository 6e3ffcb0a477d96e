/* envelope.h — the frame every bus message travels in.
 *
 * Live updates go PUB→SUB as two frames: [topic][envelope]; the topic is the
 * stream name followed by one NUL byte, so that subscribing to "model.admin"
 * does not also match "model.admin2" (ZeroMQ filters by byte prefix).
 * Snapshot requests and replies go DEALER↔ROUTER as one frame: [envelope].
 *
 * Keys starting with '!' are markers, not objects: PROTO_KEY_SYNCED_PREFIX
 * + kind ("!synced/Node") once a kind's initial list is published, and
 * PROTO_KEY_EOS when a replay reached the end of its stream. Markers are
 * ordinary stream entries, so a snapshot carries them too. */
#ifndef KAVI_PROTO_ENVELOPE_H
#define KAVI_PROTO_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
/* The envelope's own version: 2 added snapshot credit, count and digest. */
#define PROTO_ENVELOPE_VERSION 2

#define PROTO_KEY_SYNCED_PREFIX "!synced/"
#define PROTO_KEY_EOS "!eos"
/* Planner → syncer: every model of the stream has been published at least
 * once since the planner started; only now may a syncer delete leftovers. */
#define PROTO_KEY_COMPLETE "!complete"
/* Planner → syncer: "!refused/<model name>" says the planner could not
 * publish that model (too large for the bus); the body is the
 * proto_object_status of its Kubernetes object with the reason, which the
 * syncer reports as that object's status and counts as failed. */
#define PROTO_KEY_REFUSED_PREFIX "!refused/"

#define PROTO_STREAM_K8S "k8s"
#define PROTO_STREAM_MODEL_PREFIX "model."

typedef enum {
    PROTO_PUT = 1,              /* key now holds body */
    PROTO_DELETE = 2,           /* key is gone */
    PROTO_HEARTBEAT = 3,        /* publisher alive; seq = last sequence sent */
    PROTO_SNAPSHOT_REQUEST = 4, /* subscriber → publisher: send the stream's state;
                                   credit = entries it may send before more credit */
    PROTO_SNAPSHOT_END = 5,     /* publisher → subscriber: the entries above reflect seq;
                                   count and digest let the subscriber verify them */
    PROTO_SNAPSHOT_CREDIT = 6,  /* subscriber → publisher: credit more entries of request_id */
} proto_kind;

typedef struct {
    proto_kind kind;
    uint64_t epoch;      /* publisher's id, random per process start */
    uint64_t seq;        /* per-stream sequence number */
    uint64_t request_id; /* snapshot request and its replies; 0 on live messages */
    uint64_t credit;     /* snapshot request and credit: entries granted */
    uint64_t count;      /* snapshot end: entries the snapshot holds */
    uint64_t digest;     /* snapshot end: proto_entry_digest() summed over them */
    char *stream;        /* owned */
    char *key;           /* owned; NULL on heartbeat/snapshot control */
    uint8_t *body;       /* owned; NULL when empty */
    size_t body_len;
} proto_envelope;

/* Encodes into a malloc'd buffer the caller frees. */
int proto_envelope_encode(const proto_envelope *env, void **out, size_t *out_len);
/* Decodes into *env (all fields owned); on error *env is left cleared. */
int proto_envelope_decode(proto_envelope *env, const void *data, size_t len);
void proto_envelope_clear(proto_envelope *env);

/* Order-independent digest of one stream entry (FNV-1a 64 of key, NUL, body);
 * a snapshot's digest is the sum of its entries' digests modulo 2^64. */
uint64_t proto_entry_digest(const char *key, const void *body, size_t body_len);

/* The PUB topic frame of a stream: name + NUL. Returns its length or -1 if
 * it does not fit. */
int proto_topic(char *buf, size_t buf_len, const char *stream);

/* Body of the PROTO_KEY_EOS marker. The watcher's (stream "k8s") names the
 * replay run that ended; the planner's copy on each model stream adds the
 * models that stream holds at that end (count and proto_model_fingerprint
 * sum), so a syncer's report can be checked against it. Version 2 added
 * the models. */
#define PROTO_EOS_VERSION 2

typedef struct {
    uint64_t run_id;
    bool has_models; /* the planner's copy: models and digest are set */
    uint32_t models;
    uint64_t digest;
} proto_eos;

int proto_eos_encode(const proto_eos *eos, void **out, size_t *out_len);
/* KV_ERR_VERSION for another version, KV_ERR_INVALID for a bad body. */
int proto_eos_decode(proto_eos *eos, const void *data, size_t len);

#endif
