/* status.h — what syncers report back to the watcher (PUSH → PULL).
 *
 * A PUSH socket loses what is in flight when its peer dies, so every status
 * message is the whole state of one object, syncers re-send their full set at
 * start and every minute, and the watcher writes only what differs.
 *
 *  - object status: the VIPs a Kubernetes object now has on the controller,
 *    or the controller's error for it; an empty VIP list with no error means
 *    the object no longer has a virtual service.
 *  - progress: how far a syncer has got — the replay run whose end it has
 *    reached (eos_run), how many models are still pending or failed, and
 *    the set of models the planner published for that end (echoed from its
 *    "!eos") beside the set the syncer has applied, so the watcher can
 *    tell a whole run from one that lost models on the way.
 *
 * Version 2 (PROTO_STATUS_VERSION) added the published and applied sets. */
#ifndef KAVI_PROTO_STATUS_H
#define KAVI_PROTO_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_STATUS_VERSION 2

typedef enum {
    PROTO_STATUS_OBJECT = 1,
    PROTO_STATUS_PROGRESS = 2,
} proto_status_type;

typedef struct {
    char *object;  /* "Service/<ns>/<name>" */
    char *tenant;
    char **vips;   /* addresses, owned */
    size_t n_vips;
    char *error;   /* controller's message, NULL when fine */
} proto_object_status;

typedef struct {
    char *tenant;
    uint64_t eos_run;   /* run id of the end-of-stream reached and applied, 0 if none */
    uint32_t pending;   /* models not yet applied */
    uint32_t failed;    /* models the controller refused (4xx) */
    char *last_error;   /* the most recent refusal, NULL if none */
    /* Sets of models as count + sum of proto_model_fingerprint (model.h):
     * what the planner's "!eos" in the syncer's view says the stream holds
     * (zero when none; the one of eos_run once it is reached), and what is
     * applied on the controller now (refused models, and versions not yet
     * applied, excluded). */
    uint32_t published_models;
    uint64_t published_digest;
    uint32_t applied_models;
    uint64_t applied_digest;
} proto_progress;

typedef struct {
    proto_status_type type;
    proto_object_status object; /* when type == PROTO_STATUS_OBJECT */
    proto_progress progress;    /* when type == PROTO_STATUS_PROGRESS */
} proto_status;

int proto_object_status_encode(const proto_object_status *st, void **out, size_t *out_len);
int proto_progress_encode(const proto_progress *p, void **out, size_t *out_len);
int proto_status_decode(proto_status *out, const void *data, size_t len);
/* True when the models applied are exactly the models published for the
 * end reached: same count, same digest. Says nothing of eos_run. */
bool proto_progress_applied_all(const proto_progress *p);
void proto_status_clear(proto_status *st);

#endif
