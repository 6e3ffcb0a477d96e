/* reconcile.h — make the controller hold what one model says (DESIGN §4).
 *
 * reconcile_apply() writes a model's objects leaves first (avi_type_rank),
 * skipping every object whose stored checksum already matches, then deletes
 * what the model held before but no longer holds, referrers first.
 * reconcile_delete() removes everything a model held, referrers first.
 * reconcile_gc() removes owned objects that no model wants.
 *
 * A model's "held" set is every object that may exist on the controller on
 * its behalf: the objects of its last applied version plus whatever a later,
 * unfinished attempt created. The caller keeps it per model between calls;
 * these functions update it.
 *
 * Results (the return value, and outcome->result):
 *   KV_OK         applied; outcome->vips are the addresses of the model's
 *                 vsvip as the controller returned them
 *   KV_ERR_AGAIN  transient (5xx, 429, timeout, 401 after re-login, 403
 *                 upgrade in progress, 400 no free IPs, ...): try again later
 *   KV_ERR_HTTP   refused (any other 4xx): do not retry until the model
 *                 changes; outcome->error holds the controller's message
 * Any other negative code is an internal failure, to be treated as
 * transient. */
#ifndef KAVI_SYNCER_RECONCILE_H
#define KAVI_SYNCER_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/model.h"
#include "syncer/avi_cache.h"
#include "syncer/avi_session.h"

typedef struct {
    char *type;
    char *name;
    int rank;
} reconcile_ref;

/* A set of (type, name); small, so a flat array. Owns its strings. */
typedef struct {
    reconcile_ref *refs;
    size_t n;
    size_t cap;
} reconcile_held;

int reconcile_held_add(reconcile_held *held, const char *type, const char *name, int rank);
bool reconcile_held_has(const reconcile_held *held, const char *type, const char *name);
void reconcile_held_remove(reconcile_held *held, const char *type, const char *name);
void reconcile_held_clear(reconcile_held *held);

typedef enum {
    RECONCILE_APPLIED = 0,
    RECONCILE_TRANSIENT = 1,
    RECONCILE_REFUSED = 2,
} reconcile_result;

typedef struct {
    reconcile_result result;
    char *error;       /* controller's message when not applied; owned */
    char **vips;       /* applied: the model's VIP addresses; owned */
    size_t n_vips;
    unsigned writes;   /* POST/PUT/DELETE requests that succeeded */
    bool cache_suspect;/* the controller contradicted the cache: reload it */
} reconcile_outcome;

void reconcile_outcome_clear(reconcile_outcome *outcome);

/* Is (type, name) wanted by some model? */
typedef bool (*reconcile_wanted_fn)(const char *type, const char *name, void *payload);

/* ---- jobs: the same work without blocking --------------------------------------
 *
 * A job runs on the session's asynchronous calls, driven by the owner's
 * loop (avi_session_step). It ends by calling fn(payload, rc) with the
 * result the blocking form would return; outcome, cache and held are
 * updated by then. fn may run before reconcile_start_* returns (a model
 * whose checksums all match needs no request), and *out is valid until fn
 * runs: pass the owner's own handle as out and clear it in fn. The model,
 * held set and outcome are borrowed until then. A start that fails
 * (invalid object, no memory) returns the error and never calls fn. */
typedef struct reconcile_job reconcile_job_t;
typedef void (*reconcile_done_fn)(void *payload, int rc);

int reconcile_start_apply(reconcile_job_t **out, reconcile_outcome *outcome,
                          avi_session_t *session, avi_cache_t *cache, const proto_model *model,
                          reconcile_held *held, reconcile_done_fn fn, void *payload);
int reconcile_start_delete(reconcile_job_t **out, reconcile_outcome *outcome,
                           avi_session_t *session, avi_cache_t *cache, reconcile_held *held,
                           reconcile_done_fn fn, void *payload);
/* `wanted` is asked once per cached object, at the start. */
int reconcile_start_gc(reconcile_job_t **out, reconcile_outcome *outcome, avi_session_t *session,
                       avi_cache_t *cache, reconcile_wanted_fn wanted, void *wanted_payload,
                       reconcile_done_fn fn, void *payload);
/* Stops a job without calling its fn (its call on the wire is dropped). */
void reconcile_job_cancel(reconcile_job_t **job);

/* ---- blocking forms (tests, one-shot tools): start a job and drive the
 * session until it ends ------------------------------------------------------------ */

int reconcile_apply(reconcile_outcome *outcome, avi_session_t *session, avi_cache_t *cache,
                    const proto_model *model, reconcile_held *held);

int reconcile_delete(reconcile_outcome *outcome, avi_session_t *session, avi_cache_t *cache,
                     reconcile_held *held);

/* Deletes, in reverse rank order, every cached object that `wanted` does not
 * claim. Refused deletions are logged and skipped; a transient failure stops
 * the pass (KV_ERR_AGAIN). */
int reconcile_gc(reconcile_outcome *outcome, avi_session_t *session, avi_cache_t *cache,
                 reconcile_wanted_fn wanted, void *payload);

#endif
