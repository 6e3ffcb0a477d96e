/* watcher.h — the watcher's state and one step of its loop.
 *
 * A watcher owns the k8s stream publisher (PUB + snapshot ROUTER), the PULL
 * socket syncers push status to, and its source: the replay reader, or (live)
 * a Kubernetes API client with one reflector per kind and the writer of
 * Service status. Live, each step drives the client's sockets and timers;
 * "!synced/<Kind>" comes from each kind's first list and there is no end of
 * stream. Replay: each step answers
 * snapshot requests, takes the status messages waiting, replays at most one
 * batch of events (so snapshots and heartbeats are served in between) and
 * sends due heartbeats. When the replay first reaches the end of its file it
 * publishes "!synced/<Kind>" for every kind and, unless following, "!eos"
 * with this run's id (the publisher's epoch).
 *
 * Status: the latest status per Kubernetes object (logged when it changes,
 * and written atomically to the status file when one is configured) and the
 * latest progress per tenant, from which the program decides whether the
 * pipeline has caught up with the replay. */
#ifndef KAVI_WATCHER_WATCHER_H
#define KAVI_WATCHER_WATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <zmq.h>

#include "common/config.h"
#include "watcher/kube_client.h"
#include "watcher/kube_config.h"

#define WATCHER_BATCH 500          /* events replayed per step */
#define WATCHER_FOLLOW_POLL_MS 100 /* how often a followed file is checked */
#define WATCHER_STATUS_PER_STEP 1000
#define WATCHER_STATUS_RETRY_MS 1000 /* a failed status file write is retried */
#define WATCHER_VERIFY_GRACE_MS 5000 /* BUS_SILENCE_MS: a lost model is re-sent by then */
/* The bus sockets, then the sockets of the live client. */
#define WATCHER_POLLITEMS (2 + KUBE_CLIENT_MAX_POLLITEMS)

typedef struct watcher watcher_t;

typedef struct {
    kube_config *kube;       /* set: live from the API server (taken, even on failure) */
    const char *record_file; /* live only: write what is seen in the replay format */
    int64_t watch_idle_ms;   /* live only; 0: KAVI_WATCH_IDLE_MS or 90 s */
    int64_t rediscover_ms;   /* live only; 0: every 5 min while an API group is absent */
    const char *replay_file; /* required without kube */
    bool follow;
    const char *status_file; /* NULL: none */
    size_t max_line;         /* 0: REPLAY_MAX_LINE */
    size_t batch;            /* 0: WATCHER_BATCH */
} watcher_options;

/* Binds the sockets of cfg (k8s_publish, k8s_snapshot, status_endpoint) and
 * opens the replay file. On failure returns a negative kv_err and one line
 * saying what failed in err. cfg is borrowed and must outlive the watcher. */
int watcher_new(watcher_t **out, void *zmq_ctx, const kv_config *cfg,
                const watcher_options *options, char *err, size_t err_len);
void watcher_destroy(watcher_t **watcher);

/* Fills up to WATCHER_POLLITEMS items to wait on; returns how many. */
int watcher_pollitems(watcher_t *w, zmq_pollitem_t *items);

/* Does everything due at now_ms; returns the milliseconds until the next
 * step is due even if no socket becomes readable (0: at once). */
int64_t watcher_step(watcher_t *w, int64_t now_ms);

/* The id of this run, carried by "!eos" and echoed back by syncers. */
uint64_t watcher_run_id(const watcher_t *w);
/* The replay reached the end of its file and the markers are published;
 * live: every kind has been listed once (or skipped as absent). */
bool watcher_replay_done(const watcher_t *w);

typedef enum {
    WATCHER_RUNNING = 0,   /* the syncer of the tenant has not caught up yet */
    WATCHER_CAUGHT_UP = 1, /* everything up to this run's end applied */
    WATCHER_FAILED = 2,    /* end reached, some models refused by the controller */
} watcher_verdict;

/* A run is caught up only when the syncer has reached this run's end with
 * nothing pending and the models it applied are exactly those the planner
 * published for that end (count and digest, status.h). Short of that with
 * refusals it has failed; short without any (models lost between the
 * stages) it fails once the report has stayed so WATCHER_VERIFY_GRACE_MS,
 * time for the bus to notice a gap and re-snapshot. */
watcher_verdict watcher_verdict_of(const watcher_t *w, const char *tenant, int64_t now_ms);

/* WATCHER_FAILED: every object of the tenant with a controller error, one
 * line each, then, last, one line saying how many models are missing and
 * why ("tenant admin applied 818 of 1000 models; 182 missing; last
 * controller error: ..."), each prefixed "kavi-watcher: ". */
void watcher_print_failures(const watcher_t *w, const char *tenant, FILE *out);

/* One line saying what has not caught up, for a timeout. */
void watcher_describe_lag(const watcher_t *w, const char *tenant, char *buf, size_t len);

#endif
