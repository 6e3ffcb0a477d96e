/* planner.h — the planner's state machine, without sockets.
 *
 * Input: the events of stream "k8s" (bus_event), applied in order.
 * Output: models on stream "model.<tenant>" through a sink (the bus
 * publisher in the program, a map in tests).
 *
 *  - Nothing is published until "!synced/Node", "!synced/Service" and
 *    "!synced/EndpointSlice" are all present and the subscriber's view is
 *    consistent: a half-listed cluster would empty pools.
 *  - The first flush after that (and the first after every RESET)
 *    recomputes every Service, deletes the models no Service produces any
 *    more, and puts "!complete" (syncers may garbage-collect from then on).
 *  - A RESET forgets the store and waits for the snapshot; the models
 *    already published stay, so a restarting watcher never empties a pool.
 *  - After that, each event marks the Services it affects (store indexes)
 *    and a flush recomputes only those. Bursts are coalesced: a flush is due
 *    when no event came for PLANNER_QUIET_MS, or PLANNER_MAX_DELAY_MS after
 *    the first pending change.
 *  - "!eos" from the watcher is passed on to every model stream after the
 *    flush that follows it, so a syncer reaching it knows every model up to
 *    the watcher's end of stream was published; the copy also says how many
 *    models the stream holds and their digest (envelope.h), which the
 *    syncer echoes in its progress for the watcher to check.
 *  - A flush recomputes at most PLANNER_FLUSH_SLICE Services per call and
 *    stays due (timeout 0) until the last: the loop polls in between, so a
 *    full recompute of a large cluster never stops snapshots, heartbeats
 *    or a stop request. Markers go out after the last slice. */
#ifndef KAVI_PLANNER_PLANNER_H
#define KAVI_PLANNER_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bus.h"
#include "common/config.h"
#include "planner/store.h"

#define PLANNER_QUIET_MS 20
#define PLANNER_MAX_DELAY_MS 200
#define PLANNER_FLUSH_SLICE 500 /* Services recomputed per planner_flush call at most */

/* Where models go. put/remove return 1 when the stream changed, 0 when it
 * already held that (or lacked the key), negative on error. */
typedef struct {
    int (*put)(void *ctx, const char *stream, const char *key, const void *body, size_t len);
    int (*remove)(void *ctx, const char *stream, const char *key);
    void (*foreach_key)(void *ctx, const char *stream, bus_key_fn fn, void *payload);
    void *ctx;
} planner_sink;

/* A sink publishing on a bus publisher (borrowed). */
planner_sink planner_sink_for_bus(bus_pub_t *pub);

typedef struct planner planner_t;

/* cfg and the sink's context are borrowed and must outlive the planner. */
int planner_new(planner_t **out, const kv_config *cfg, const planner_sink *sink);
void planner_destroy(planner_t **planner);

/* Applies one event of stream "k8s". A malformed object is logged (naming
 * its key) and skipped. */
void planner_apply(planner_t *planner, const bus_event *ev, int64_t now_ms);

/* Milliseconds until planner_flush has work to do; -1 when it has none
 * until the next event. */
int64_t planner_timeout_ms(const planner_t *planner, int64_t now_ms);

/* Publishes what is due (see planner_timeout_ms), one slice at most.
 * Returns the number of stream changes made (models put or deleted,
 * markers), or a negative kv_err when the sink failed. */
int planner_flush(planner_t *planner, int64_t now_ms);

/* True between the first and the last slice of a flush. */
bool planner_is_flushing(const planner_t *planner);
/* Flush calls that returned with part of their work left (for tests). */
unsigned long planner_slices(const planner_t *planner);

/* True once every kind is synced and the view is consistent. */
bool planner_is_ready(const planner_t *planner);
const store_t *planner_store(const planner_t *planner);
/* The stream this planner publishes to: "model.<tenant>". */
const char *planner_stream(const planner_t *planner);

#endif
