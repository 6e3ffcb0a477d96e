/* loop.h — the planner's sockets and poll loop.
 *
 * Subscribes to stream "k8s" (cfg->k8s_publish / k8s_snapshot), binds the
 * model publisher (cfg->model_publish / model_snapshot), and runs one
 * zmq_poll loop that feeds the planner state machine, flushes it when due,
 * answers snapshot requests and sends heartbeats. No wait is longer than
 * PLANNER_LOOP_MAX_WAIT_MS, and no turn does more than one batch of events
 * and one slice of a flush (planner.h), so a stop request, a snapshot
 * request or a due heartbeat is served promptly however large the cluster.
 * Each timer is checked against the clock read after the work before it. */
#ifndef KAVI_PLANNER_LOOP_H
#define KAVI_PLANNER_LOOP_H

#include <stdatomic.h>

#include "common/config.h"

#define PLANNER_LOOP_MAX_WAIT_MS 200
/* Events applied per round before the loop serves snapshots, flushes and
 * heartbeats again: a flood upstream must not starve the rest. */
#define PLANNER_LOOP_EVENT_BATCH 2000

/* What a running loop has done, read by tests from another thread. */
typedef struct {
    atomic_ulong polls_between_slices; /* polls while a flush was under way */
} planner_loop_stats;

/* Runs until *stop becomes nonzero. Returns 0, or a negative kv_err when a
 * socket cannot be set up (the reason is logged). Every socket it opens is
 * closed before it returns; the caller owns zmq_ctx. stats may be NULL. */
int planner_loop_run(const kv_config *cfg, void *zmq_ctx, const atomic_int *stop,
                     planner_loop_stats *stats);

#endif
