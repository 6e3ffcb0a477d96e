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
/* Room the envelope needs around a key and body in one bus message. */
#define BUS_ENVELOPE_OVERHEAD 4096

/* An entry's key and body in one refcounted block: the stream holds one
 * reference, and every snapshot in flight that captured it holds another,
 * so a snapshot reflects exactly the state at its request, however long it
 * takes to send and whatever changes meanwhile. */
typedef struct {
    int refs;
    uint64_t digest; /* proto_entry_digest(key, body) */
    size_t len;
    uint8_t *body;   /* points into data, after the key */
    char data[];     /* key, NUL, body */
} bus_blob;

typedef struct {
    bus_blob *blob;  /* the key is blob->data */
    UT_hash_handle hh;
} bus_entry;

typedef struct {
    char *name;
    uint64_t seq;
    bus_entry *entries;
    UT_hash_handle hh;
} bus_stream;

/* One snapshot being sent to one requester, as far as its credit allows. */
typedef struct bus_snapshot {
    uint8_t identity[256];
    size_t identity_len;
    uint64_t request_id;
    char *stream;
    uint64_t seq, digest;
    bus_blob **blobs;
    size_t count, next;
    uint64_t credit;
    int64_t idle_since_ms;
    struct bus_snapshot *later;
} bus_snapshot;

struct bus_pub {
    void *pub;            /* PUB: live updates and heartbeats */
    void *router;         /* ROUTER: snapshot requests, credit and replies */
    uint64_t epoch;
    bus_stream *streams;
    bus_snapshot *snapshots; /* in flight, at most BUS_SNAPSHOTS_MAX */
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
    int64_t unanswered_since_ms; /* first request of this cycle not yet answered */
    bool reset_pending;    /* consumer has not yet been told RESET for this cycle */
    bool delivered;        /* anything given to the consumer since the last RESET */
    int64_t deadline_ms;   /* snapshot: ask again; live: heartbeat silence */
    /* the snapshot being received: what arrived, to check against its end */
    uint64_t received, received_digest, uncredited;
    unsigned attempts;     /* snapshot requests since the view was last whole */
};

/* ---- sockets ------------------------------------------------------------ */

/* Options must be set before bind/connect: libzmq applies a socket's
 * high-water marks to the pipes it creates then, and a mark set later does
 * not reach connections accepted afterwards (clibs.md; measured: a ROUTER
 * whose SNDHWM was set after bind kept 1,000). */
static void *bus_socket_new(void *zmq_ctx, int type)
{
    void *socket = zmq_socket(zmq_ctx, type);
    if (!socket)
        return NULL;
    int linger = 0, unlimited = 0, pub_hwm = BUS_PUB_HWM, on = 1;
    int64_t max_message = PROTO_MAX_MESSAGE;
    zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_message, sizeof max_message);
    switch (type) {
    case ZMQ_PUB:
        /* PUB drops past its mark; a subscriber's gap check turns that into a snapshot. */
        zmq_setsockopt(socket, ZMQ_SNDHWM, &pub_hwm, sizeof pub_hwm);
        break;
    case ZMQ_ROUTER:
        /* Snapshots are credited, so the mark is never the limit; MANDATORY
         * turns "peer gone" and "pipe full" into errors instead of drops. */
        zmq_setsockopt(socket, ZMQ_SNDHWM, &unlimited, sizeof unlimited);
        zmq_setsockopt(socket, ZMQ_ROUTER_MANDATORY, &on, sizeof on);
        break;
    case ZMQ_SUB:
    case ZMQ_DEALER:
        /* Updates wait in the SUB queue while a snapshot loads. */
        zmq_setsockopt(socket, ZMQ_RCVHWM, &unlimited, sizeof unlimited);
        break;
    default:
        break;
    }
    if (type == ZMQ_DEALER) /* do not queue requests for a publisher that is not there */
        zmq_setsockopt(socket, ZMQ_IMMEDIATE, &on, sizeof on);
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

/* ---- entries ------------------------------------------------------------ */

static bus_blob *blob_new(const char *key, const void *body, size_t len)
{
    size_t key_len = strlen(key);
    bus_blob *blob = malloc(sizeof *blob + key_len + 1 + len);
    if (!blob)
        return NULL;
    blob->refs = 1;
    blob->len = len;
    memcpy(blob->data, key, key_len + 1);
    blob->body = (uint8_t *)blob->data + key_len + 1;
    if (len)
        memcpy(blob->body, body, len);
    blob->digest = proto_entry_digest(key, body, len);
    return blob;
}

static void blob_release(bus_blob **blob_p)
{
    bus_blob *blob = *blob_p;
    if (blob && --blob->refs == 0)
        free(blob);
    *blob_p = NULL;
}

static void entry_free(bus_entry *entry)
{
    blob_release(&entry->blob);
    free(entry);
}

/* ---- publisher ---------------------------------------------------------- */

static uint64_t random_u64(void)
{
    uint64_t value = 0;
    while (value == 0)
        if (getrandom(&value, sizeof value, 0) != sizeof value)
            value = (uint64_t)clock_now_ms() ^ ((uint64_t)rand() << 32);
    return value;
}

int bus_pub_new(bus_pub_t **out, void *zmq_ctx, const char *publish_endpoint,
                const char *snapshot_endpoint)
{
    bus_pub_t *pub = calloc(1, sizeof *pub);
    *out = NULL;
    if (!pub)
        return KV_ERR_NOMEM;
    pub->epoch = random_u64();
    pub->pub = bus_socket_bind(zmq_ctx, ZMQ_PUB, publish_endpoint);
    if (!pub->pub)
        goto out_fail;
    pub->router = bus_socket_bind(zmq_ctx, ZMQ_ROUTER, snapshot_endpoint);
    if (!pub->router)
        goto out_fail;
    *out = pub;
    return KV_OK;

out_fail:;
    int saved = errno;
    bus_pub_destroy(&pub);
    errno = saved;
    return KV_ERR_IO;
}

static void snapshot_free(bus_snapshot **snapshot_p)
{
    bus_snapshot *snapshot = *snapshot_p;
    if (!snapshot)
        return;
    for (size_t i = 0; i < snapshot->count; i++)
        blob_release(&snapshot->blobs[i]);
    free(snapshot->blobs);
    free(snapshot->stream);
    free(snapshot);
    *snapshot_p = NULL;
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
    while (pub->snapshots) {
        bus_snapshot *snapshot = pub->snapshots;
        pub->snapshots = snapshot->later;
        snapshot_free(&snapshot);
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
    /* A message over the subscribers' cap would make libzmq drop their
     * connection, and with it every later update: refuse it here, alone. */
    if (len > PROTO_MAX_MESSAGE - BUS_ENVELOPE_OVERHEAD ||
        strlen(key) > BUS_ENVELOPE_OVERHEAD / 2)
        return KV_ERR_TOO_LARGE;
    bus_stream *stream = stream_get(pub, stream_name, true);
    bus_entry *entry = NULL;
    if (!stream)
        return KV_ERR_NOMEM;
    HASH_FIND_STR(stream->entries, key, entry);
    /* Markers have empty bodies, often NULL: memcmp/memcpy must not see NULL. */
    if (entry && entry->blob->len == len && (len == 0 || memcmp(entry->blob->body, body, len) == 0))
        return 0;
    bus_blob *blob = blob_new(key, body, len);
    if (!blob)
        return KV_ERR_NOMEM;
    if (entry) {
        HASH_DEL(stream->entries, entry); /* its key lives in the blob being replaced */
        blob_release(&entry->blob);
    } else if (!(entry = calloc(1, sizeof *entry))) {
        blob_release(&blob);
        return KV_ERR_NOMEM;
    }
    entry->blob = blob;
    HASH_ADD_KEYPTR(hh, stream->entries, blob->data, strlen(blob->data), entry);
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
    *len = entry->blob->len;
    return entry->blob->body;
}

void bus_pub_foreach_key(bus_pub_t *pub, const char *stream_name, bus_key_fn fn, void *payload)
{
    bus_stream *stream = stream_get(pub, stream_name, false);
    bus_entry *entry, *tmp;
    if (!stream)
        return;
    HASH_ITER(hh, stream->entries, entry, tmp) fn(entry->blob->data, payload);
}

void *bus_pub_snapshot_socket(bus_pub_t *pub) { return pub->router; }

uint64_t bus_pub_epoch(const bus_pub_t *pub) { return pub->epoch; }

size_t bus_pub_snapshots_in_flight(const bus_pub_t *pub)
{
    size_t n = 0;
    for (const bus_snapshot *s = pub->snapshots; s; s = s->later)
        n++;
    return n;
}

/* ---- publisher: snapshots under credit ------------------------------------ */

static bus_snapshot **snapshot_find(bus_pub_t *pub, const zmq_msg_t *identity)
{
    size_t len = zmq_msg_size((zmq_msg_t *)identity);
    bus_snapshot **at = &pub->snapshots;
    for (; *at; at = &(*at)->later)
        if ((*at)->identity_len == len &&
            memcmp((*at)->identity, zmq_msg_data((zmq_msg_t *)identity), len) == 0)
            return at;
    return at;
}

static void snapshot_unlink(bus_pub_t *pub, bus_snapshot *snapshot)
{
    for (bus_snapshot **at = &pub->snapshots; *at; at = &(*at)->later)
        if (*at == snapshot) {
            *at = snapshot->later;
            snapshot_free(&snapshot);
            return;
        }
}

/* Captures the stream as it is now. A stream nobody has published is an
 * empty snapshot, and asking for it creates nothing. */
static bus_snapshot *snapshot_capture(bus_pub_t *pub, const zmq_msg_t *identity,
                                      const proto_envelope *request, int64_t now_ms)
{
    size_t identity_len = zmq_msg_size((zmq_msg_t *)identity);
    bus_snapshot *snapshot = calloc(1, sizeof *snapshot);
    if (!snapshot || identity_len > sizeof snapshot->identity)
        goto out_fail;
    memcpy(snapshot->identity, zmq_msg_data((zmq_msg_t *)identity), identity_len);
    snapshot->identity_len = identity_len;
    snapshot->request_id = request->request_id;
    snapshot->credit = request->credit;
    if (snapshot->credit > BUS_SNAPSHOT_WINDOW)
        snapshot->credit = BUS_SNAPSHOT_WINDOW;
    snapshot->idle_since_ms = now_ms;
    snapshot->stream = strdup(request->stream);
    if (!snapshot->stream)
        goto out_fail;
    bus_stream *stream = stream_get(pub, request->stream, false);
    if (!stream)
        return snapshot;
    snapshot->seq = stream->seq;
    size_t n = HASH_COUNT(stream->entries);
    snapshot->blobs = calloc(n ? n : 1, sizeof *snapshot->blobs);
    if (!snapshot->blobs)
        goto out_fail;
    bus_entry *entry, *tmp;
    HASH_ITER(hh, stream->entries, entry, tmp) {
        entry->blob->refs++;
        snapshot->blobs[snapshot->count++] = entry->blob;
        snapshot->digest += entry->blob->digest;
    }
    return snapshot;

out_fail:
    snapshot_free(&snapshot);
    return NULL;
}

/* Sends [identity][envelope]; KV_ERR_AGAIN when the peer's pipe is full,
 * KV_ERR_IO when the peer is gone. */
static int send_to_peer(bus_pub_t *pub, const bus_snapshot *snapshot, const proto_envelope *env)
{
    if (zmq_send(pub->router, snapshot->identity, snapshot->identity_len,
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? KV_ERR_AGAIN : KV_ERR_IO;
    return send_envelope(pub->router, env, ZMQ_DONTWAIT);
}

/* Sends what the snapshot's credit allows; true when it is finished (sent
 * whole, or its requester is gone). */
static bool snapshot_advance(bus_pub_t *pub, bus_snapshot *snapshot, int64_t now_ms)
{
    proto_envelope reply = {.epoch = pub->epoch, .request_id = snapshot->request_id,
                            .stream = snapshot->stream};
    while (snapshot->next < snapshot->count && snapshot->credit > 0) {
        bus_blob *blob = snapshot->blobs[snapshot->next];
        reply.kind = PROTO_PUT;
        reply.key = blob->data;
        reply.body = blob->body;
        reply.body_len = blob->len;
        int rc = send_to_peer(pub, snapshot, &reply);
        if (rc == KV_ERR_AGAIN)
            return false; /* resumed on the next serve or tick */
        if (rc < 0)
            return true;
        blob_release(&snapshot->blobs[snapshot->next]);
        snapshot->next++;
        snapshot->credit--;
        snapshot->idle_since_ms = now_ms;
    }
    if (snapshot->next < snapshot->count)
        return false; /* waiting for credit */
    reply = (proto_envelope){.kind = PROTO_SNAPSHOT_END, .epoch = pub->epoch,
                             .request_id = snapshot->request_id, .stream = snapshot->stream,
                             .seq = snapshot->seq, .count = snapshot->count,
                             .digest = snapshot->digest};
    int rc = send_to_peer(pub, snapshot, &reply);
    if (rc == KV_ERR_AGAIN)
        return false;
    log_debug("bus: snapshot of %s at seq %llu served, %zu entries", snapshot->stream,
              (unsigned long long)snapshot->seq, snapshot->count);
    return true;
}

static void on_snapshot_request(bus_pub_t *pub, const zmq_msg_t *identity,
                                const proto_envelope *request, int64_t now_ms)
{
    bus_snapshot **at = snapshot_find(pub, identity);
    if (*at) /* a requester asks again: its earlier request is abandoned */
        snapshot_unlink(pub, *at);
    if (bus_pub_snapshots_in_flight(pub) >= BUS_SNAPSHOTS_MAX) {
        log_warn("bus: %d snapshots in flight; dropping the oldest", BUS_SNAPSHOTS_MAX);
        snapshot_unlink(pub, pub->snapshots);
    }
    bus_snapshot *snapshot = snapshot_capture(pub, identity, request, now_ms);
    if (!snapshot) {
        log_error("bus: cannot capture a snapshot of %s: out of memory", request->stream);
        return;
    }
    *snapshot_find(pub, identity) = snapshot;
    if (snapshot_advance(pub, snapshot, now_ms))
        snapshot_unlink(pub, snapshot);
}

static void on_snapshot_credit(bus_pub_t *pub, const zmq_msg_t *identity,
                               const proto_envelope *credit, int64_t now_ms)
{
    bus_snapshot *snapshot = *snapshot_find(pub, identity);
    if (!snapshot || snapshot->request_id != credit->request_id)
        return; /* credit for an abandoned or finished request */
    /* Never more than a window outstanding, whatever a peer claims. */
    snapshot->credit += credit->credit < BUS_SNAPSHOT_WINDOW ? credit->credit : BUS_SNAPSHOT_WINDOW;
    if (snapshot->credit > BUS_SNAPSHOT_WINDOW)
        snapshot->credit = BUS_SNAPSHOT_WINDOW;
    if (snapshot_advance(pub, snapshot, now_ms))
        snapshot_unlink(pub, snapshot);
}

/* Resumes snapshots a full pipe paused and forgets those whose requester
 * went quiet (it will ask again). */
static void snapshots_resume(bus_pub_t *pub, int64_t now_ms)
{
    bus_snapshot *snapshot = pub->snapshots;
    while (snapshot) {
        bus_snapshot *later = snapshot->later;
        if (now_ms - snapshot->idle_since_ms > BUS_SNAPSHOT_ABANDON_MS ||
            snapshot_advance(pub, snapshot, now_ms))
            snapshot_unlink(pub, snapshot);
        snapshot = later;
    }
}

int bus_pub_serve(bus_pub_t *pub)
{
    int64_t now_ms = clock_now_ms();
    for (int handled = 0; handled < BUS_SERVE_BATCH; handled++) {
        zmq_msg_t identity, request;
        zmq_msg_init(&identity);
        zmq_msg_init(&request);
        if (zmq_msg_recv(&identity, pub->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&identity);
            zmq_msg_close(&request);
            snapshots_resume(pub, now_ms);
            return errno == EAGAIN ? KV_OK : KV_ERR_IO;
        }
        int more = zmq_msg_more(&identity);
        if (more && zmq_msg_recv(&request, pub->router, 0) >= 0) {
            proto_envelope env;
            bool valid = proto_envelope_decode(&env, zmq_msg_data(&request),
                                               zmq_msg_size(&request)) == 0 &&
                         !zmq_msg_more(&request);
            if (valid && env.kind == PROTO_SNAPSHOT_REQUEST)
                on_snapshot_request(pub, &identity, &env, now_ms);
            else if (valid && env.kind == PROTO_SNAPSHOT_CREDIT)
                on_snapshot_credit(pub, &identity, &env, now_ms);
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
    snapshots_resume(pub, now_ms);
    return KV_OK;
}

int64_t bus_pub_tick(bus_pub_t *pub, int64_t now_ms)
{
    if (pub->snapshots)
        snapshots_resume(pub, now_ms);
    if (now_ms >= pub->next_heartbeat_ms) {
        bus_stream *stream, *tmp;
        HASH_ITER(hh, pub->streams, stream, tmp) publish(pub, stream, PROTO_HEARTBEAT, NULL, NULL, 0);
        pub->next_heartbeat_ms = now_ms + BUS_HEARTBEAT_MS;
    }
    int64_t wait = pub->next_heartbeat_ms - now_ms;
    /* A snapshot paused on a full pipe is retried soon. */
    for (const bus_snapshot *s = pub->snapshots; s; s = s->later)
        if (s->credit > 0 && wait > BUS_SEND_RETRY_MS / 10)
            wait = BUS_SEND_RETRY_MS / 10;
    return wait;
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
    /* Request ids start anywhere, so no reply to an earlier process's
     * request can pass for one to ours. */
    sub->request_id = random_u64();
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
                              .credit = BUS_SNAPSHOT_WINDOW,
                              .stream = sub->stream};
    sub->received = 0;
    sub->received_digest = 0;
    sub->uncredited = 0;
    sub->attempts++;
    sub->request_sent = send_envelope(sub->dealer, &request, ZMQ_DONTWAIT) == KV_OK;
    sub->deadline_ms = now_ms + (sub->request_sent ? BUS_SNAPSHOT_TIMEOUT_MS : BUS_SEND_RETRY_MS);
    if (!sub->unanswered_since_ms)
        sub->unanswered_since_ms = now_ms;
    /* A publisher that never connects (absent, or frozen before the
     * handshake) is said once per timeout, not at every retry. */
    if (!sub->request_sent && now_ms - sub->unanswered_since_ms >= BUS_SNAPSHOT_TIMEOUT_MS) {
        log_info("bus: %s: no snapshot reply, asking again (publisher not connected)",
                 sub->stream);
        sub->unanswered_since_ms = now_ms;
    }
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

/* Grants the publisher credit for the entries consumed since the last grant,
 * a chunk at a time, so at most a window is ever in flight. */
static void grant_credit(bus_sub_t *sub)
{
    if (sub->uncredited < BUS_SNAPSHOT_CHUNK)
        return;
    proto_envelope credit = {.kind = PROTO_SNAPSHOT_CREDIT,
                             .request_id = sub->request_id,
                             .credit = sub->uncredited,
                             .stream = sub->stream};
    /* A lost grant stalls the snapshot, and the stall deadline asks again. */
    if (send_envelope(sub->dealer, &credit, ZMQ_DONTWAIT) == KV_OK)
        sub->uncredited = 0;
}

/* A snapshot is whole only when its end marker's count and digest match
 * what arrived: ZeroMQ can drop without telling either side. */
static bool snapshot_is_whole(bus_sub_t *sub, const proto_envelope *end)
{
    if (end->count == sub->received && end->digest == sub->received_digest)
        return true;
    log_warn("bus: %s: snapshot incomplete (%llu of %llu entries%s, attempt %u); asking again",
             sub->stream, (unsigned long long)sub->received, (unsigned long long)end->count,
             end->count == sub->received ? ", digest differs" : "", sub->attempts);
    return false;
}

/* Abandons the current request (its stragglers no longer match) and asks
 * again after a backoff that grows with the failed attempts. */
static void retry_snapshot_later(bus_sub_t *sub, int64_t now_ms)
{
    int64_t backoff = BUS_SEND_RETRY_MS;
    for (unsigned i = 1; i < sub->attempts && backoff < BUS_SNAPSHOT_TIMEOUT_MS; i++)
        backoff *= 2;
    if (backoff > BUS_SNAPSHOT_TIMEOUT_MS)
        backoff = BUS_SNAPSHOT_TIMEOUT_MS;
    sub->request_id++;
    sub->request_sent = false;
    if (sub->delivered)
        sub->reset_pending = true;
    sub->state = SUB_SNAPSHOTTING;
    sub->deadline_ms = now_ms + backoff;
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
        sub->unanswered_since_ms = 0;
        if (env.kind == PROTO_PUT) {
            sub->received++;
            sub->received_digest += proto_entry_digest(env.key, env.body, env.body_len);
            sub->uncredited++;
            grant_credit(sub);
            return deliver(sub, ev, BUS_PUT, &env);
        }
        if (env.kind == PROTO_SNAPSHOT_END) {
            if (!snapshot_is_whole(sub, &env)) {
                proto_envelope_clear(&env);
                retry_snapshot_later(sub, now_ms);
                return 0;
            }
            sub->state = SUB_LIVE;
            sub->attempts = 0;
            if (sub->epoch != env.epoch)
                sub->stale_epoch = sub->epoch;
            sub->epoch = env.epoch;
            sub->last_seq = env.seq;
            sub->deadline_ms = now_ms + BUS_SILENCE_MS;
            log_debug("bus: %s consistent at seq %llu, %llu entries", sub->stream,
                      (unsigned long long)env.seq, (unsigned long long)env.count);
            return deliver(sub, ev, BUS_CONSISTENT, &env);
        }
        proto_envelope_clear(&env);
    }
    if (now_ms >= sub->deadline_ms) {
        if (sub->request_sent)
            log_info("bus: %s: no snapshot reply, asking again (%llu entries had arrived)",
                     sub->stream, (unsigned long long)sub->received);
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
