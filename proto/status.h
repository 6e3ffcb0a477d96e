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
 *    reached (eos_run), and how many models are still pending or failed. */
#ifndef KAVI_PROTO_STATUS_H
#define KAVI_PROTO_STATUS_H

#include <stddef.h>
#include <stdint.h>

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
} proto_progress;

typedef struct {
    proto_status_type type;
    proto_object_status object; /* when type == PROTO_STATUS_OBJECT */
    proto_progress progress;    /* when type == PROTO_STATUS_PROGRESS */
} proto_status;

int proto_object_status_encode(const proto_object_status *st, void **out, size_t *out_len);
int proto_progress_encode(const proto_progress *p, void **out, size_t *out_len);
int proto_status_decode(proto_status *out, const void *data, size_t len);
void proto_status_clear(proto_status *st);

#endif
