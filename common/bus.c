/* bus.c — see bus.h for the protocol. Invariants:
 *  - a publisher's stream seq only grows, by one per published PUT/DELETE;
 *  - a subscriber in SUB_LIVE has applied exactly seqs 1..last_seq of epoch;
 *  - every message the subscriber cannot place in that order sends it back
 *    to a snapshot, and the consumer sees RESET before the snapshot's data. */
#include "common/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uthash.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/wire.h"

#define BUS_PUB_HWM 100000
#define BUS_TOPIC_MAX 256
#define BUS_SEND_RETRY_MS 200

typedef struct {
    char *key;
    uint8_t *body;
    size_t len;
    UT_hash_handle hh;
} bus_entry;

typedef struct {
    char *name;
    uint64_t seq;
    bus_entry *entries;
    UT_hash_handle hh;
} bus_stream;

struct bus_pub {
    void *pub;            /* PUB: live updates and heartbeats */
    void *router;         /* ROUTER: snapshot requests */
    uint64_t epoch;
    bus_stream *streams;
    int64_t next_heartbeat_ms;
};

typedef enum { SUB_NEED_SNAPSHOT, SUB_SNAPSHOTTING, SUB_LIVE } sub_state;

struct bus_sub {
    void *sub;
    void *dealer;
    char *stream;
    sub_state state;
    uint64_t epoch;
    uint64_t stale_epoch;  /* the publisher we left; its queued messages are dropped */
    uint64_t last_seq;
    uint64_t request_id;
    bool request_sent;
    bool reset_pending;    /* consumer has not yet been told RESET for this cycle */
    bool delivered;        /* anything given to the consumer since the last RESET */
    int64_t deadline_ms;   /* snapshot: ask again; live: heartbeat silence */
};

/* ---- sockets ------------------------------------------------------------ */

static void *bus_socket_new(void *zmq_ctx, int type)
{
    void *socket = zmq_socket(zmq_ctx, type);
    if (!socket)
        return NULL;
    int linger = 0;
    int64_t max_message = PROTO_MAX_MESSAGE;
    zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_message, sizeof max_message);
    return socket;
}

void *bus_socket_bind(void *zmq_ctx, int type, const char *endpoint)
{
    void *socket = bus_socket_new(zmq_ctx, type);
    if (socket && zmq_bind(socket, endpoint) != 0) {
        int saved = errno;
        zmq_close(socket);
        errno = saved;
        return NULL;
    }
    return socket;
}

void *bus_socket_connect(void *zmq_ctx, int type, const char *endpoint)
{
    void *socket = bus_socket_new(zmq_ctx, type);
    if (socket && zmq_connect(socket, endpoint) != 0) {
        int saved = errno;
        zmq_close(socket);
        errno = saved;
        return NULL;
    }
    return socket;
}

void bus_socket_close(void **socket)
{
    if (socket && *socket) {
        zmq_close(*socket);
        *socket = NULL;
    }
}

/* Sends an encoded envelope as the last frame of a message. */
static int send_envelope(void *socket, const proto_envelope *env, int flags)
{
    void *data = NULL;
    size_t len = 0;
    int rc = proto_envelope_encode(env, &data, &len);
    if (rc < 0)
        return rc;
    rc = zmq_send(socket, data, len, flags) < 0 ? KV_ERR_IO : KV_OK;
    free(data);
    return rc;
}

/* ---- publisher ---------------------------------------------------------- */

static uint64_t random_epoch(void)
{
    uint64_t epoch = 0;
    while (epoch == 0)
        if (getrandom(&epoch, sizeof epoch, 0) != sizeof epoch)
            epoch = (uint64_t)clock_now_ms() ^ ((uint64_t)rand() << 32);
    return epoch;
}

int bus_pub_new(bus_pub_t **out, void *zmq_ctx, const char *publish_endpoint,
                const char *snapshot_endpoint)
{
    bus_pub_t *pub = calloc(1, sizeof *pub);
    *out = NULL;
    if (!pub)
        return KV_ERR_NOMEM;
    pub->epoch = random_epoch();
    pub->pub = bus_socket_bind(zmq_ctx, ZMQ_PUB, publish_endpoint);
    if (!pub->pub)
        goto out_fail;
    int hwm = BUS_PUB_HWM;
    zmq_setsockopt(pub->pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    pub->router = bus_socket_bind(zmq_ctx, ZMQ_ROUTER, snapshot_endpoint);
    if (!pub->router)
        goto out_fail;
    /* A ROUTER drops replies past its high-water mark; a snapshot must not. */
    int unlimited = 0;
    zmq_setsockopt(pub->router, ZMQ_SNDHWM, &unlimited, sizeof unlimited);
    *out = pub;
    return KV_OK;

out_fail:;
    int saved = errno;
    bus_pub_destroy(&pub);
    errno = saved;
    return KV_ERR_IO;
}

static void entry_free(bus_entry *entry)
{
    free(entry->key);
    free(entry->body);
    free(entry);
}

void bus_pub_destroy(bus_pub_t **pub_p)
{
    bus_pub_t *pub = *pub_p;
    if (!pub)
        return;
    bus_stream *stream, *stream_tmp;
    HASH_ITER(hh, pub->streams, stream, stream_tmp) {
        bus_entry *entry, *entry_tmp;
        HASH_ITER(hh, stream->entries, entry, entry_tmp) {
            HASH_DEL(stream->entries, entry);
            entry_free(entry);
        }
        HASH_DEL(pub->streams, stream);
        free(stream->name);
        free(stream);
    }
    bus_socket_close(&pub->pub);
    bus_socket_close(&pub->router);
    free(pub);
    *pub_p = NULL;
}

static bus_stream *stream_get(bus_pub_t *pub, const char *name, bool create)
{
    bus_stream *stream = NULL;
    HASH_FIND_STR(pub->streams, name, stream);
    if (stream || !create)
        return stream;
    stream = calloc(1, sizeof *stream);
    if (!stream)
        return NULL;
    stream->name = strdup(name);
    if (!stream->name) {
        free(stream);
        return NULL;
    }
    HASH_ADD_KEYPTR(hh, pub->streams, stream->name, strlen(stream->name), stream);
    return stream;
}

static int publish(bus_pub_t *pub, bus_stream *stream, proto_kind kind, const char *key,
                   const void *body, size_t len)
{
    char topic[BUS_TOPIC_MAX];
    int topic_len = proto_topic(topic, sizeof topic, stream->name);
    if (topic_len < 0)
        return KV_ERR_TOO_LARGE;
    proto_envelope env = {
        .kind = kind,
        .epoch = pub->epoch,
        .seq = kind == PROTO_HEARTBEAT ? stream->seq : ++stream->seq,
        .stream = stream->name,
        .key = (char *)key,
        .body = (uint8_t *)body,
        .body_len = len,
    };
    if (zmq_send(pub->pub, topic, (size_t)topic_len, ZMQ_SNDMORE) < 0)
        return KV_ERR_IO;
    /* PUB never blocks: past its high-water mark it drops, and the
     * subscriber's gap check turns that into a snapshot. */
    return send_envelope(pub->pub, &env, ZMQ_DONTWAIT);
}

int bus_pub_put(bus_pub_t *pub, const char *stream_name, const char *key, const void *body,
                size_t len)
{
    bus_stream *stream = stream_get(pub, stream_name, true);
    bus_entry *entry = NULL;
    if (!stream)
        return KV_ERR_NOMEM;
    HASH_FIND_STR(stream->entries, key, entry);
    /* Markers have empty bodies, often NULL: memcmp/memcpy must not see NULL. */
    if (entry && entry->len == len && (len == 0 || memcmp(entry->body, body, len) == 0))
        return 0;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return KV_ERR_NOMEM;
    if (len)
        memcpy(copy, body, len);
    if (!entry) {
        entry = calloc(1, sizeof *entry);
        if (!entry || !(entry->key = strdup(key))) {
            free(entry);
            free(copy);
            return KV_ERR_NOMEM;
        }
        HASH_ADD_KEYPTR(hh, stream->entries, entry->key, strlen(entry->key), entry);
    }
    free(entry->body);
    entry->body = copy;
    entry->len = len;
    int rc = publish(pub, stream, PROTO_PUT, key, body, len);
    return rc < 0 ? rc : 1;
}

int bus_pub_delete(bus_pub_t *pub, const char *stream_name, const char *key)
{
    bus_stream *stream = stream_get(pub, stream_name, false);
    bus_entry *entry = NULL;
    if (stream)
        HASH_FIND_STR(stream->entries, key, entry);
    if (!entry)
        return 0;
    HASH_DEL(stream->entries, entry);
    int rc = publish(pub, stream, PROTO_DELETE, key, NULL, 0);
    entry_free(entry);
    return rc < 0 ? rc : 1;
}

const void *bus_pub_get(const bus_pub_t *pub, const char *stream_name, const char *key,
                        size_t *len)
{
    bus_stream *stream = NULL;
    bus_entry *entry = NULL;
    HASH_FIND_STR(pub->streams, stream_name, stream);
    if (stream)
        HASH_FIND_STR(stream->entries, key, entry);
    if (!entry)
        return NULL;
    *len = entry->len;
    return entry->body;
}

void bus_pub_foreach_key(bus_pub_t *pub, const char *stream_name, bus_key_fn fn, void *payload)
{
    bus_stream *stream = stream_get(pub, stream_name, false);
    bus_entry *entry, *tmp;
    if (!stream)
        return;
    HASH_ITER(hh, stream->entries, entry, tmp) fn(entry->key, payload);
}

void *bus_pub_snapshot_socket(bus_pub_t *pub) { return pub->router; }

uint64_t bus_pub_epoch(const bus_pub_t *pub) { return pub->epoch; }

/* Sends [identity][envelope] to one snapshot requester. */
static int send_to_peer(bus_pub_t *pub, const zmq_msg_t *identity, const proto_envelope *env)
{
    if (zmq_send(pub->router, zmq_msg_data((zmq_msg_t *)identity),
                 zmq_msg_size((zmq_msg_t *)identity), ZMQ_SNDMORE) < 0)
        return KV_ERR_IO;
    return send_envelope(pub->router, env, 0);
}

static void serve_one(bus_pub_t *pub, const zmq_msg_t *identity, const proto_envelope *request)
{
    bus_stream *stream = stream_get(pub, request->stream, true);
    if (!stream)
        return;
    bus_entry *entry, *tmp;
    proto_envelope reply = {.epoch = pub->epoch, .request_id = request->request_id,
                            .stream = stream->name};
    HASH_ITER(hh, stream->entries, entry, tmp) {
        reply.kind = PROTO_PUT;
        reply.key = entry->key;
        reply.body = entry->body;
        reply.body_len = entry->len;
        if (send_to_peer(pub, identity, &reply) < 0)
            return; /* peer gone; it will ask again */
    }
    reply.kind = PROTO_SNAPSHOT_END;
    reply.seq = stream->seq;
    reply.key = NULL;
    reply.body = NULL;
    reply.body_len = 0;
    send_to_peer(pub, identity, &reply);
    log_debug("bus: snapshot of %s at seq %llu served", stream->name,
              (unsigned long long)stream->seq);
}

int bus_pub_serve(bus_pub_t *pub)
{
    for (;;) {
        zmq_msg_t identity, request;
        zmq_msg_init(&identity);
        zmq_msg_init(&request);
        if (zmq_msg_recv(&identity, pub->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&identity);
            zmq_msg_close(&request);
            return errno == EAGAIN ? KV_OK : KV_ERR_IO;
        }
        int more = zmq_msg_more(&identity);
        if (more && zmq_msg_recv(&request, pub->router, 0) >= 0) {
            proto_envelope env;
            if (proto_envelope_decode(&env, zmq_msg_data(&request), zmq_msg_size(&request)) ==
                    0 &&
                env.kind == PROTO_SNAPSHOT_REQUEST)
                serve_one(pub, &identity, &env);
            else
                log_warn("bus: ignored a malformed snapshot request");
            proto_envelope_clear(&env);
        }
        /* Drop any further frames of a malformed request. */
        while (zmq_msg_more(&request) && zmq_msg_recv(&request, pub->router, 0) >= 0)
            ;
        zmq_msg_close(&identity);
        zmq_msg_close(&request);
    }
}

int64_t bus_pub_tick(bus_pub_t *pub, int64_t now_ms)
{
    if (now_ms >= pub->next_heartbeat_ms) {
        bus_stream *stream, *tmp;
        HASH_ITER(hh, pub->streams, stream, tmp) publish(pub, stream, PROTO_HEARTBEAT, NULL, NULL, 0);
        pub->next_heartbeat_ms = now_ms + BUS_HEARTBEAT_MS;
    }
    return pub->next_heartbeat_ms - now_ms;
}

/* ---- subscriber --------------------------------------------------------- */

int bus_sub_new(bus_sub_t **out, void *zmq_ctx, const char *publish_endpoint,
                const char *snapshot_endpoint, const char *stream)
{
    char topic[BUS_TOPIC_MAX];
    int topic_len = proto_topic(topic, sizeof topic, stream);
    bus_sub_t *sub = calloc(1, sizeof *sub);
    *out = NULL;
    if (!sub)
        return KV_ERR_NOMEM;
    if (topic_len < 0) {
        free(sub);
        return KV_ERR_TOO_LARGE;
    }
    sub->stream = strdup(stream);
    sub->sub = bus_socket_connect(zmq_ctx, ZMQ_SUB, publish_endpoint);
    sub->dealer = bus_socket_connect(zmq_ctx, ZMQ_DEALER, snapshot_endpoint);
    if (!sub->stream || !sub->sub || !sub->dealer) {
        bus_sub_destroy(&sub);
        return KV_ERR_IO;
    }
    /* Unbounded receive queues: updates wait there while a snapshot loads. */
    int unlimited = 0, immediate = 1;
    zmq_setsockopt(sub->sub, ZMQ_RCVHWM, &unlimited, sizeof unlimited);
    zmq_setsockopt(sub->dealer, ZMQ_RCVHWM, &unlimited, sizeof unlimited);
    /* Do not queue snapshot requests for a publisher that is not there. */
    zmq_setsockopt(sub->dealer, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
    /* Subscribe first, snapshot second: nothing falls between the two. */
    zmq_setsockopt(sub->sub, ZMQ_SUBSCRIBE, topic, (size_t)topic_len);
    sub->state = SUB_NEED_SNAPSHOT;
    *out = sub;
    return KV_OK;
}

void bus_sub_destroy(bus_sub_t **sub_p)
{
    bus_sub_t *sub = *sub_p;
    if (!sub)
        return;
    bus_socket_close(&sub->sub);
    bus_socket_close(&sub->dealer);
    free(sub->stream);
    free(sub);
    *sub_p = NULL;
}

int bus_sub_pollitems(bus_sub_t *sub, zmq_pollitem_t *items)
{
    items[0] = (zmq_pollitem_t){.socket = sub->dealer, .events = ZMQ_POLLIN};
    if (sub->state != SUB_LIVE)
        return 1; /* live updates wait in the SUB queue during a snapshot */
    items[1] = (zmq_pollitem_t){.socket = sub->sub, .events = ZMQ_POLLIN};
    return 2;
}

bool bus_sub_is_consistent(const bus_sub_t *sub) { return sub->state == SUB_LIVE; }

uint64_t bus_sub_epoch(const bus_sub_t *sub) { return sub->state == SUB_LIVE ? sub->epoch : 0; }

int64_t bus_sub_timeout_ms(const bus_sub_t *sub, int64_t now_ms)
{
    if (sub->state == SUB_NEED_SNAPSHOT || sub->reset_pending)
        return 0;
    int64_t left = sub->deadline_ms - now_ms;
    return left > 0 ? left : 0;
}

static void restart_snapshot(bus_sub_t *sub, const char *why)
{
    if (sub->state == SUB_LIVE)
        log_info("bus: %s: %s, asking for a snapshot", sub->stream, why);
    sub->state = SUB_NEED_SNAPSHOT;
}

/* Sends a snapshot request; false when the publisher is not connected yet. */
static bool request_snapshot(bus_sub_t *sub, int64_t now_ms)
{
    proto_envelope request = {.kind = PROTO_SNAPSHOT_REQUEST,
                              .request_id = ++sub->request_id,
                              .stream = sub->stream};
    sub->request_sent = send_envelope(sub->dealer, &request, ZMQ_DONTWAIT) == KV_OK;
    sub->deadline_ms = now_ms + (sub->request_sent ? BUS_SNAPSHOT_TIMEOUT_MS : BUS_SEND_RETRY_MS);
    return sub->request_sent;
}

/* Receives one frame-set; for SUB the topic frame is skipped. Returns 1 with
 * *env decoded, 0 when nothing is waiting, 2 for an undecodable message. */
static int receive(void *socket, bool has_topic, proto_envelope *env)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return 0;
    }
    if (has_topic && zmq_msg_more(&msg))
        zmq_msg_recv(&msg, socket, 0);
    int rc = proto_envelope_decode(env, zmq_msg_data(&msg), zmq_msg_size(&msg));
    while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, socket, 0) >= 0)
        ;
    zmq_msg_close(&msg);
    if (rc < 0) {
        log_warn("bus: dropped a malformed message: %s", kv_strerror(rc));
        return 2;
    }
    return 1;
}

static int deliver(bus_sub_t *sub, bus_event *ev, bus_event_type type, proto_envelope *env)
{
    ev->type = type;
    ev->env = *env;
    memset(env, 0, sizeof *env);
    sub->delivered = true;
    return 1;
}

/* Snapshot phase: the DEALER carries the reply to our latest request. */
static int next_from_snapshot(bus_sub_t *sub, bus_event *ev, int64_t now_ms)
{
    proto_envelope env;
    for (;;) {
        int got = receive(sub->dealer, false, &env);
        if (got == 0)
            break;
        if (got == 2)
            continue;
        if (env.request_id != sub->request_id || strcmp(env.stream, sub->stream) != 0) {
            proto_envelope_clear(&env); /* reply to an older request */
            continue;
        }
        sub->deadline_ms = now_ms + BUS_SNAPSHOT_TIMEOUT_MS;
        if (env.kind == PROTO_PUT)
            return deliver(sub, ev, BUS_PUT, &env);
        if (env.kind == PROTO_SNAPSHOT_END) {
            sub->state = SUB_LIVE;
            if (sub->epoch != env.epoch)
                sub->stale_epoch = sub->epoch;
            sub->epoch = env.epoch;
            sub->last_seq = env.seq;
            sub->deadline_ms = now_ms + BUS_SILENCE_MS;
            log_debug("bus: %s consistent at seq %llu", sub->stream,
                      (unsigned long long)env.seq);
            return deliver(sub, ev, BUS_CONSISTENT, &env);
        }
        proto_envelope_clear(&env);
    }
    if (now_ms >= sub->deadline_ms) {
        if (sub->request_sent)
            log_info("bus: %s: no snapshot reply, asking again", sub->stream);
        sub->state = SUB_NEED_SNAPSHOT;
    }
    return 0;
}

/* Live phase: place each update in sequence, or go back to a snapshot. */
static int next_from_live(bus_sub_t *sub, bus_event *ev, int64_t now_ms)
{
    proto_envelope env;
    /* Replies to abandoned snapshot requests may still arrive: drop them. */
    while (receive(sub->dealer, false, &env) == 1)
        proto_envelope_clear(&env);
    for (;;) {
        int got = receive(sub->sub, true, &env);
        if (got == 0)
            break;
        if (got == 2)
            continue;
        if (env.epoch == sub->stale_epoch) {
            proto_envelope_clear(&env); /* queued before we moved on */
            continue;
        }
        if (env.epoch != sub->epoch) {
            proto_envelope_clear(&env);
            sub->stale_epoch = sub->epoch;
            restart_snapshot(sub, "publisher restarted");
            return 0;
        }
        if (env.kind == PROTO_HEARTBEAT) {
            uint64_t seq = env.seq;
            proto_envelope_clear(&env);
            sub->deadline_ms = now_ms + BUS_SILENCE_MS;
            if (seq > sub->last_seq) {
                restart_snapshot(sub, "updates were lost");
                return 0;
            }
            continue;
        }
        if (env.seq <= sub->last_seq) {
            proto_envelope_clear(&env); /* already in the snapshot */
            continue;
        }
        if (env.seq != sub->last_seq + 1 || (env.kind != PROTO_PUT && env.kind != PROTO_DELETE)) {
            proto_envelope_clear(&env);
            restart_snapshot(sub, "sequence gap");
            return 0;
        }
        sub->last_seq = env.seq;
        return deliver(sub, ev, env.kind == PROTO_PUT ? BUS_PUT : BUS_DELETE, &env);
    }
    if (now_ms >= sub->deadline_ms)
        restart_snapshot(sub, "publisher silent");
    return 0;
}

int bus_sub_next(bus_sub_t *sub, bus_event *ev, int64_t now_ms)
{
    memset(ev, 0, sizeof *ev);
    for (int round = 0; round < 4; round++) {
        if (sub->state == SUB_NEED_SNAPSHOT) {
            /* Only a consumer that was given something needs to forget it. */
            if (sub->delivered)
                sub->reset_pending = true;
            request_snapshot(sub, now_ms);
            sub->state = SUB_SNAPSHOTTING;
        }
        if (sub->reset_pending) {
            sub->reset_pending = false;
            sub->delivered = false;
            ev->type = BUS_RESET;
            return 1;
        }
        if (sub->state == SUB_SNAPSHOTTING) {
            if (!sub->request_sent && now_ms >= sub->deadline_ms)
                request_snapshot(sub, now_ms);
            int rc = next_from_snapshot(sub, ev, now_ms);
            if (rc || sub->state == SUB_SNAPSHOTTING)
                return rc;
            if (sub->state == SUB_NEED_SNAPSHOT)
                return 0; /* timed out; the next call asks again */
        }
        if (sub->state == SUB_LIVE) {
            int rc = next_from_live(sub, ev, now_ms);
            if (rc || sub->state == SUB_LIVE)
                return rc;
        }
    }
    return 0;
}

void bus_event_clear(bus_event *ev) { proto_envelope_clear(&ev->env); }
