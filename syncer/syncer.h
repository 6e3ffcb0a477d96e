/* syncer.h — the kavi-syncer loop: models in from the bus, REST out to the
 * controller, status back to the watcher.
 *
 * State per model (key = VS name): the newest desired version ("latest
 * wins": an older version still waiting is simply replaced), whether it is
 * pending, applied or refused, its held set (reconcile.h) and the VIPs and
 * error its owners are told about. Models are applied by reconcile jobs,
 * up to controllerParallelRequests at once (one per model: a model's
 * objects go in dependency order); nothing blocks the loop on the
 * controller, so heartbeats and snapshots keep flowing while models are
 * written. The cache (re)load and garbage collection run alone, when no
 * job is on the wire.
 *
 * Deletion is careful: a BUS_RESET forgets "!complete" and marks every model
 * stale but deletes nothing; a model the planner deleted is removed with
 * its objects; leftovers (owned objects no model wants) are deleted only
 * while the view is consistent and holds "!complete". */
#ifndef KAVI_SYNCER_SYNCER_H
#define KAVI_SYNCER_SYNCER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

typedef struct syncer syncer_t;

/* Subscribes to "model.<tenant>" and connects the status PUSH socket.
 * cfg and zmq_ctx are borrowed and must outlive the syncer. */
int syncer_new(syncer_t **out, const kv_config *cfg, const char *tenant, void *zmq_ctx);
void syncer_destroy(syncer_t **syncer);

/* Waits at most max_wait_ms (negative: as long as the loop's own timers
 * allow) for bus traffic or the controller's answers, handles every bus
 * event and every answer that came, starts the controller work that may
 * start (a job per due model up to the bound, or the cache load, or GC)
 * and sends the status that is due. Returns 0, or a negative kv_err when
 * the loop cannot go on. */
int syncer_step(syncer_t *syncer, int64_t max_wait_ms);

/* A signal handler sets *flag: the loop and any blocking REST call (the
 * cache load) stop promptly. */
void syncer_set_stop_flag(syncer_t *syncer, volatile sig_atomic_t *flag);

/* For tests and logs. */
typedef struct {
    bool cache_loaded;
    bool consistent;
    bool complete;
    unsigned models;
    unsigned pending;
    unsigned failed;
    uint64_t eos_run;      /* reported eos run, 0 if none (or not reached) */
    unsigned applied;      /* reported applied models */
    unsigned gc_runs;      /* completed garbage collections */
} syncer_stats;

void syncer_get_stats(const syncer_t *syncer, syncer_stats *out);

/* Test hooks: shorter retry timers (model backoff, REST retries). */
void syncer_set_backoff(syncer_t *syncer, int64_t initial_ms, int64_t max_ms);

#endif
