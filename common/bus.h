/* bus.h — reliable state streams over ZeroMQ (the "Clone" pattern of the
 * ZeroMQ guide), used at both stage boundaries: watcher → planner (stream
 * "k8s") and planner → syncers (streams "model.<tenant>").
 *
 * A stream is a map key → body. The publisher keeps the whole map, so it can
 * answer snapshots; every change is published on PUB with a per-stream
 * sequence number; a heartbeat per stream every second carries the
 * publisher's epoch (random per process start) and last sequence number.
 *
 * A subscriber connects SUB first, then asks the publisher's ROUTER for a
 * snapshot over DEALER. It hands its consumer a RESET (forget everything of
 * this stream), the snapshot's entries as PUTs, then CONSISTENT — only when
 * the end marker's entry count and digest match what arrived; otherwise it
 * asks again, and the consumer sees RESET before the next try. From then on
 * live PUT/DELETE in order. Updates at or below the snapshot's sequence are
 * dropped; a gap, a new epoch, or heartbeats that stop (publisher restarted,
 * PUB dropped at its high-water mark) start the cycle again. So a consumer
 * sees every state change or a RESET, never a silent loss.
 *
 * Publishers bind, consumers connect: start order never matters. Every
 * socket has ZMQ_LINGER 0 so shutdown never hangs. */
#ifndef KAVI_COMMON_BUS_H
#define KAVI_COMMON_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "proto/envelope.h"

#define BUS_HEARTBEAT_MS 1000
#define BUS_SILENCE_MS 5000          /* no heartbeat this long → re-snapshot */
#define BUS_SNAPSHOT_TIMEOUT_MS 3000 /* no snapshot reply this long → ask again */
/* Snapshots flow under credit (the ZeroMQ guide's file-transfer pattern):
 * a request grants a window of entries, and the subscriber grants a chunk
 * more each time it has consumed one. Nothing is ever blasted past a
 * high-water mark, and the end marker's count and digest catch any loss. */
#define BUS_SNAPSHOT_WINDOW 512
#define BUS_SNAPSHOT_CHUNK 128
#define BUS_SNAPSHOT_ABANDON_MS 30000 /* no credit this long → requester is gone */
#define BUS_SNAPSHOTS_MAX 64          /* snapshots in flight per publisher */
#define BUS_SERVE_BATCH 256           /* requests handled per bus_pub_serve() */

/* ---- publisher ---------------------------------------------------------- */

typedef struct bus_pub bus_pub_t;

/* Binds PUB at publish_endpoint and ROUTER at snapshot_endpoint. Fails
 * (KV_ERR_IO, with errno) when another process holds either endpoint. */
int bus_pub_new(bus_pub_t **out, void *zmq_ctx, const char *publish_endpoint,
                const char *snapshot_endpoint);
void bus_pub_destroy(bus_pub_t **pub);

/* Stores a copy of body under stream/key and publishes it when it differs
 * from what the key held. Returns 1 when published, 0 when unchanged,
 * KV_ERR_TOO_LARGE (nothing stored or sent) when it would not fit in one
 * bus message. */
int bus_pub_put(bus_pub_t *pub, const char *stream, const char *key, const void *body,
                size_t len);
/* Removes key and publishes the deletion. Returns 1, or 0 if key was absent. */
int bus_pub_delete(bus_pub_t *pub, const char *stream, const char *key);
/* Borrowed view of what key holds, NULL if absent. */
const void *bus_pub_get(const bus_pub_t *pub, const char *stream, const char *key,
                        size_t *len);

/* Calls fn for every key of a stream; fn may delete the key it is given. */
typedef void (*bus_key_fn)(const char *key, void *payload);
void bus_pub_foreach_key(bus_pub_t *pub, const char *stream, bus_key_fn fn, void *payload);

/* The ROUTER socket, to poll for ZMQ_POLLIN. */
void *bus_pub_snapshot_socket(bus_pub_t *pub);
/* Handles waiting snapshot requests and credit, and sends what credit allows. */
int bus_pub_serve(bus_pub_t *pub);
/* Snapshots being sent (a request flood cannot make this pass BUS_SNAPSHOTS_MAX). */
size_t bus_pub_snapshots_in_flight(const bus_pub_t *pub);
/* Sends the heartbeats that are due; returns ms until the next is due. */
int64_t bus_pub_tick(bus_pub_t *pub, int64_t now_ms);
uint64_t bus_pub_epoch(const bus_pub_t *pub);

/* ---- subscriber --------------------------------------------------------- */

typedef struct bus_sub bus_sub_t;

typedef enum {
    BUS_RESET = 1,      /* forget everything known from this stream */
    BUS_PUT = 2,        /* env.key now holds env.body */
    BUS_DELETE = 3,     /* env.key is gone */
    BUS_CONSISTENT = 4, /* a snapshot finished: the consumer's view is whole */
} bus_event_type;

typedef struct {
    bus_event_type type;
    proto_envelope env; /* owned by the event; bus_event_clear() frees it */
} bus_event;

int bus_sub_new(bus_sub_t **out, void *zmq_ctx, const char *publish_endpoint,
                const char *snapshot_endpoint, const char *stream);
void bus_sub_destroy(bus_sub_t **sub);

/* Fills up to 2 poll items with the sockets to wait on; returns how many. */
int bus_sub_pollitems(bus_sub_t *sub, zmq_pollitem_t *items);
/* Next event for the consumer, without blocking: 1 and *ev filled, 0 when
 * there is none now. Call it after every poll until it returns 0. */
int bus_sub_next(bus_sub_t *sub, bus_event *ev, int64_t now_ms);
/* Milliseconds until bus_sub_next() must be called again for its timers. */
int64_t bus_sub_timeout_ms(const bus_sub_t *sub, int64_t now_ms);
/* True between CONSISTENT and the next RESET. */
bool bus_sub_is_consistent(const bus_sub_t *sub);
/* Epoch of the publisher the current view comes from (0 before a snapshot). */
uint64_t bus_sub_epoch(const bus_sub_t *sub);

void bus_event_clear(bus_event *ev);

/* ---- sockets ------------------------------------------------------------ */

/* Creates a socket with kavi's defaults (linger 0, message size cap) and
 * binds or connects it. NULL on failure, errno set. */
void *bus_socket_bind(void *zmq_ctx, int type, const char *endpoint);
void *bus_socket_connect(void *zmq_ctx, int type, const char *endpoint);
void bus_socket_close(void **socket);

#endif
