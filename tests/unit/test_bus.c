/* The Clone-pattern bus: a subscriber ends up holding exactly the
 * publisher's state through snapshots, restarts, lost updates and gaps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <unistd.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/error.h"
#include "proto/envelope.h"
#include "proto/wire.h"

#define PUB_EP "inproc://test-pub"
#define SNAP_EP "inproc://test-snap"
#define DEADLINE_MS 10000

/* What the consumer holds: key → value, as a test consumer applies events. */
typedef struct held {
    char *key;
    char *value;
    UT_hash_handle hh;
} held;

typedef struct {
    held *map;
    int resets, consistents, puts, deletes;
} consumer;

static void consumer_clear(consumer *c)
{
    held *h, *tmp;
    HASH_ITER(hh, c->map, h, tmp) {
        HASH_DEL(c->map, h);
        free(h->key);
        free(h->value);
        free(h);
    }
}

static void consumer_apply(consumer *c, const bus_event *ev)
{
    held *h = NULL;
    switch (ev->type) {
    case BUS_RESET:
        consumer_clear(c);
        c->resets++;
        break;
    case BUS_CONSISTENT:
        c->consistents++;
        break;
    case BUS_PUT:
        c->puts++;
        HASH_FIND_STR(c->map, ev->env.key, h);
        if (!h) {
            h = calloc(1, sizeof *h);
            h->key = strdup(ev->env.key);
            HASH_ADD_KEYPTR(hh, c->map, h->key, strlen(h->key), h);
        }
        free(h->value);
        h->value = strndup((const char *)ev->env.body, ev->env.body_len);
        break;
    case BUS_DELETE:
        c->deletes++;
        HASH_FIND_STR(c->map, ev->env.key, h);
        if (h) {
            HASH_DEL(c->map, h);
            free(h->key);
            free(h->value);
            free(h);
        }
        break;
    }
}

static const char *consumer_get(consumer *c, const char *key)
{
    held *h = NULL;
    HASH_FIND_STR(c->map, key, h);
    return h ? h->value : NULL;
}

/* Runs one poll round of the publisher (may be NULL) and the subscriber. */
static void pump(bus_pub_t *pub, bus_sub_t *sub, consumer *c)
{
    zmq_pollitem_t items[3];
    int n = bus_sub_pollitems(sub, items);
    if (pub)
        items[n++] = (zmq_pollitem_t){.socket = bus_pub_snapshot_socket(pub), .events = ZMQ_POLLIN};
    int64_t now = clock_now_ms();
    long timeout = (long)bus_sub_timeout_ms(sub, now);
    if (timeout > 20)
        timeout = 20;
    zmq_poll(items, n, timeout);
    now = clock_now_ms();
    if (pub) {
        bus_pub_serve(pub);
        bus_pub_tick(pub, now);
    }
    bus_event ev;
    while (bus_sub_next(sub, &ev, now) == 1) {
        consumer_apply(c, &ev);
        bus_event_clear(&ev);
    }
}

#define PUMP_UNTIL(pub, sub, c, cond)                                                             \
    do {                                                                                          \
        int64_t until_ = clock_now_ms() + DEADLINE_MS;                                            \
        while (!(cond) && clock_now_ms() < until_)                                                \
            pump(pub, sub, c);                                                                    \
        assert_true(cond);                                                                        \
    } while (0)

static void put(bus_pub_t *pub, const char *key, const char *value)
{
    assert_true(bus_pub_put(pub, "k8s", key, value, strlen(value)) >= 0);
}

static void test_late_subscriber_gets_snapshot_then_live_updates(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    bus_pub_t *pub = NULL;
    bus_sub_t *sub = NULL;
    consumer c = {0};
    assert_int_equal(bus_pub_new(&pub, ctx, PUB_EP, SNAP_EP), 0);
    for (int i = 0; i < 300; i++) {
        char key[32];
        snprintf(key, sizeof key, "Node/n%d", i);
        put(pub, key, "v1");
    }
    assert_int_equal(bus_sub_new(&sub, ctx, PUB_EP, SNAP_EP, "k8s"), 0);
    PUMP_UNTIL(pub, sub, &c, bus_sub_is_consistent(sub));
    assert_int_equal(HASH_COUNT(c.map), 300);
    assert_int_equal(c.resets, 0);

    put(pub, "Node/n1", "v2");
    assert_int_equal(bus_pub_delete(pub, "k8s", "Node/n2"), 1);
    put(pub, "Node/new", "v1");
    PUMP_UNTIL(pub, sub, &c, consumer_get(&c, "Node/new") != NULL);
    assert_string_equal(consumer_get(&c, "Node/n1"), "v2");
    assert_null(consumer_get(&c, "Node/n2"));
    assert_int_equal(HASH_COUNT(c.map), 300);
    assert_int_equal(c.consistents, 1);

    consumer_clear(&c);
    bus_sub_destroy(&sub);
    bus_pub_destroy(&pub);
    zmq_ctx_term(ctx);
}

static void test_unchanged_put_publishes_nothing(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    bus_pub_t *pub = NULL;
    assert_int_equal(bus_pub_new(&pub, ctx, PUB_EP, SNAP_EP), 0);
    assert_int_equal(bus_pub_put(pub, "k8s", "a", "x", 1), 1);
    assert_int_equal(bus_pub_put(pub, "k8s", "a", "x", 1), 0);
    assert_int_equal(bus_pub_put(pub, "k8s", "a", "y", 1), 1);
    assert_int_equal(bus_pub_delete(pub, "k8s", "missing"), 0);
    /* Markers: empty bodies, passed as NULL. */
    assert_int_equal(bus_pub_put(pub, "k8s", "!synced/Node", NULL, 0), 1);
    assert_int_equal(bus_pub_put(pub, "k8s", "!synced/Node", NULL, 0), 0);
    size_t len = 0;
    assert_memory_equal(bus_pub_get(pub, "k8s", "a", &len), "y", 1);
    bus_pub_destroy(&pub);
    zmq_ctx_term(ctx);
}

/* Over tcp, as in production: inproc connections do not survive their binder. */
#define TCP_PUB_EP "tcp://127.0.0.1:17571"
#define TCP_SNAP_EP "tcp://127.0.0.1:17572"

static void test_publisher_restart_resets_subscriber_to_new_state(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    bus_pub_t *pub = NULL;
    bus_sub_t *sub = NULL;
    consumer c = {0};
    assert_int_equal(bus_pub_new(&pub, ctx, TCP_PUB_EP, TCP_SNAP_EP), 0);
    put(pub, "old", "1");
    assert_int_equal(bus_sub_new(&sub, ctx, TCP_PUB_EP, TCP_SNAP_EP, "k8s"), 0);
    PUMP_UNTIL(pub, sub, &c, consumer_get(&c, "old") && bus_sub_is_consistent(sub));
    uint64_t first_epoch = bus_sub_epoch(sub);

    bus_pub_destroy(&pub);
    /* zmq_close is asynchronous: the endpoint frees up shortly after. */
    int64_t until = clock_now_ms() + DEADLINE_MS;
    while (bus_pub_new(&pub, ctx, TCP_PUB_EP, TCP_SNAP_EP) < 0 && clock_now_ms() < until)
        pump(NULL, sub, &c);
    assert_non_null(pub);
    put(pub, "new", "2");
    PUMP_UNTIL(pub, sub, &c,
               c.resets == 1 && bus_sub_is_consistent(sub) && consumer_get(&c, "new"));
    assert_null(consumer_get(&c, "old"));
    assert_true(bus_sub_epoch(sub) != first_epoch);

    consumer_clear(&c);
    bus_sub_destroy(&sub);
    bus_pub_destroy(&pub);
    zmq_ctx_term(ctx);
}

static void test_streams_are_separate(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    bus_pub_t *pub = NULL;
    bus_sub_t *sub = NULL;
    consumer c = {0};
    assert_int_equal(bus_pub_new(&pub, ctx, PUB_EP, SNAP_EP), 0);
    assert_int_equal(bus_pub_put(pub, "model.admin2", "vs-other", "x", 1), 1);
    assert_int_equal(bus_pub_put(pub, "model.admin", "vs", "y", 1), 1);
    assert_int_equal(bus_sub_new(&sub, ctx, PUB_EP, SNAP_EP, "model.admin"), 0);
    PUMP_UNTIL(pub, sub, &c, bus_sub_is_consistent(sub));
    assert_int_equal(bus_pub_put(pub, "model.admin2", "vs-other2", "x", 1), 1);
    assert_int_equal(bus_pub_put(pub, "model.admin", "vs2", "z", 1), 1);
    PUMP_UNTIL(pub, sub, &c, consumer_get(&c, "vs2") != NULL);
    assert_int_equal(HASH_COUNT(c.map), 2);
    assert_null(consumer_get(&c, "vs-other"));
    assert_null(consumer_get(&c, "vs-other2"));
    consumer_clear(&c);
    bus_sub_destroy(&sub);
    bus_pub_destroy(&pub);
    zmq_ctx_term(ctx);
}

/* A hand-driven publisher, to produce what a healthy one never does. */
typedef struct {
    void *pub;
    void *router;
    uint64_t epoch;
} raw_publisher;

static void raw_send(raw_publisher *raw, proto_kind kind, uint64_t seq, const char *key)
{
    char topic[] = "k8s";
    proto_envelope env = {.kind = kind, .epoch = raw->epoch, .seq = seq, .stream = "k8s",
                          .key = (char *)key, .body = (uint8_t *)"v", .body_len = key ? 1 : 0};
    void *data;
    size_t len;
    assert_int_equal(proto_envelope_encode(&env, &data, &len), 0);
    zmq_send(raw->pub, topic, sizeof topic, ZMQ_SNDMORE);
    zmq_send(raw->pub, data, len, 0);
    free(data);
}

/* Answers one snapshot request with `key` and END at seq; returns false if none came. */
/* Answers one snapshot request with one entry and an end marker claiming
 * `claimed` entries (1 is the truth; more is a snapshot cut in transit). */
static bool raw_serve_claiming(raw_publisher *raw, const char *key, uint64_t seq,
                               uint64_t claimed)
{
    zmq_msg_t id, req;
    zmq_msg_init(&id);
    zmq_msg_init(&req);
    bool served = false;
    if (zmq_msg_recv(&id, raw->router, ZMQ_DONTWAIT) >= 0) {
        zmq_msg_recv(&req, raw->router, 0);
        proto_envelope request;
        assert_int_equal(proto_envelope_decode(&request, zmq_msg_data(&req), zmq_msg_size(&req)), 0);
        proto_envelope reply = {.kind = PROTO_PUT, .epoch = raw->epoch, .stream = "k8s",
                                .request_id = request.request_id, .key = (char *)key,
                                .body = (uint8_t *)"v", .body_len = 1};
        void *data;
        size_t len;
        for (int i = 0; i < 2; i++) {
            assert_int_equal(proto_envelope_encode(&reply, &data, &len), 0);
            zmq_send(raw->router, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE);
            zmq_send(raw->router, data, len, 0);
            free(data);
            reply = (proto_envelope){.kind = PROTO_SNAPSHOT_END, .epoch = raw->epoch,
                                     .stream = "k8s", .request_id = request.request_id,
                                     .seq = seq, .count = claimed,
                                     .digest = proto_entry_digest(key, "v", 1)};
        }
        proto_envelope_clear(&request);
        served = true;
    }
    zmq_msg_close(&id);
    zmq_msg_close(&req);
    return served;
}

static bool raw_serve(raw_publisher *raw, const char *key, uint64_t seq)
{
    return raw_serve_claiming(raw, key, seq, 1);
}

static void test_sequence_gap_triggers_reset_and_new_snapshot(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    raw_publisher raw = {.pub = bus_socket_bind(ctx, ZMQ_PUB, PUB_EP),
                         .router = bus_socket_bind(ctx, ZMQ_ROUTER, SNAP_EP), .epoch = 77};
    bus_sub_t *sub = NULL;
    consumer c = {0};
    assert_int_equal(bus_sub_new(&sub, ctx, PUB_EP, SNAP_EP, "k8s"), 0);
    int served = 0;
    PUMP_UNTIL(NULL, sub, &c, (served += raw_serve(&raw, "snap1", 5)) && bus_sub_is_consistent(sub));
    assert_non_null(consumer_get(&c, "snap1"));

    raw_send(&raw, PROTO_PUT, 4, "stale"); /* at or below the snapshot: dropped */
    raw_send(&raw, PROTO_PUT, 6, "live6");
    PUMP_UNTIL(NULL, sub, &c, consumer_get(&c, "live6") != NULL);
    assert_null(consumer_get(&c, "stale"));

    raw_send(&raw, PROTO_PUT, 8, "after-gap"); /* 7 was lost */
    PUMP_UNTIL(NULL, sub, &c, (served += raw_serve(&raw, "snap2", 8)) == 2 && c.resets == 1 &&
                                  bus_sub_is_consistent(sub));
    assert_null(consumer_get(&c, "after-gap"));
    assert_null(consumer_get(&c, "live6"));
    assert_non_null(consumer_get(&c, "snap2"));
    consumer_clear(&c);
    bus_sub_destroy(&sub);
    bus_socket_close(&raw.pub);
    bus_socket_close(&raw.router);
    zmq_ctx_term(ctx);
}

static void test_heartbeat_ahead_of_last_seq_means_lost_updates(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    raw_publisher raw = {.pub = bus_socket_bind(ctx, ZMQ_PUB, PUB_EP),
                         .router = bus_socket_bind(ctx, ZMQ_ROUTER, SNAP_EP), .epoch = 5};
    bus_sub_t *sub = NULL;
    consumer c = {0};
    assert_int_equal(bus_sub_new(&sub, ctx, PUB_EP, SNAP_EP, "k8s"), 0);
    int served = 0;
    PUMP_UNTIL(NULL, sub, &c, (served += raw_serve(&raw, "a", 3)) && bus_sub_is_consistent(sub));
    raw_send(&raw, PROTO_HEARTBEAT, 3, NULL); /* in step: nothing happens */
    raw_send(&raw, PROTO_HEARTBEAT, 9, NULL); /* 4..9 never arrived */
    PUMP_UNTIL(NULL, sub, &c, (served += raw_serve(&raw, "b", 9)) == 2 && c.resets == 1 &&
                                  bus_sub_is_consistent(sub));
    assert_non_null(consumer_get(&c, "b"));
    assert_null(consumer_get(&c, "a"));
    consumer_clear(&c);
    bus_sub_destroy(&sub);
    bus_socket_close(&raw.pub);
    bus_socket_close(&raw.router);
    zmq_ctx_term(ctx);
}

static void test_silent_publisher_triggers_new_snapshot(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    raw_publisher raw = {.pub = bus_socket_bind(ctx, ZMQ_PUB, PUB_EP),
                         .router = bus_socket_bind(ctx, ZMQ_ROUTER, SNAP_EP), .epoch = 9};
    bus_sub_t *sub = NULL;
    consumer c = {0};
    assert_int_equal(bus_sub_new(&sub, ctx, PUB_EP, SNAP_EP, "k8s"), 0);
    int served = 0;
    PUMP_UNTIL(NULL, sub, &c, (served += raw_serve(&raw, "a", 1)) && bus_sub_is_consistent(sub));
    /* No heartbeat for BUS_SILENCE_MS: the subscriber asks again by itself. */
    PUMP_UNTIL(NULL, sub, &c, (served += raw_serve(&raw, "a", 1)) == 2);
    PUMP_UNTIL(NULL, sub, &c, bus_sub_is_consistent(sub));
    assert_int_equal(c.resets, 1);
    assert_non_null(consumer_get(&c, "a"));
    consumer_clear(&c);
    bus_sub_destroy(&sub);
    bus_socket_close(&raw.pub);
    bus_socket_close(&raw.router);
    zmq_ctx_term(ctx);
}

static void test_second_publisher_on_same_tcp_endpoint_fails(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    bus_pub_t *first = NULL, *second = NULL;
    assert_int_equal(bus_pub_new(&first, ctx, "tcp://127.0.0.1:17561", "tcp://127.0.0.1:17562"), 0);
    assert_true(bus_pub_new(&second, ctx, "tcp://127.0.0.1:17561", "tcp://127.0.0.1:17562") < 0);
    assert_null(second);
    bus_pub_destroy(&first);
    zmq_ctx_term(ctx);
}

/* More entries than any default high-water mark, over tcp, to a subscriber
 * that connects late: every one arrives, and the view is whole. */
static void test_snapshot_larger_than_high_water_marks_arrives_whole(void **state)
{
    (void)state;
    char pub_ep[64], snap_ep[64];
    int base = 20000 + (int)(getpid() % 20000);
    snprintf(pub_ep, sizeof pub_ep, "tcp://127.0.0.1:%d", base);
    snprintf(snap_ep, sizeof snap_ep, "tcp://127.0.0.1:%d", base + 1);
    void *ctx = zmq_ctx_new();
    bus_pub_t *pub = NULL;
    bus_sub_t *sub = NULL;
    consumer c = {0};
    assert_int_equal(bus_pub_new(&pub, ctx, pub_ep, snap_ep), 0);
    char key[32], value[600];
    memset(value, 'x', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "Service/ns/s%d", i);
        put(pub, key, value);
    }
    assert_int_equal(bus_sub_new(&sub, ctx, pub_ep, snap_ep, "k8s"), 0);
    PUMP_UNTIL(pub, sub, &c, bus_sub_is_consistent(sub));
    assert_int_equal(HASH_COUNT(c.map), 5000);
    assert_int_equal(c.resets, 0);
    assert_int_equal(bus_pub_snapshots_in_flight(pub), 0);
    consumer_clear(&c);
    bus_sub_destroy(&sub);
    bus_pub_destroy(&pub);
    zmq_ctx_term(ctx);
}

/* The publisher changes its state while a big snapshot is still being sent:
 * the snapshot reflects the moment of the request, the live updates after it
 * follow, and the subscriber ends with exactly the publisher's state. */
static void test_changes_during_a_snapshot_are_not_lost(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    bus_pub_t *pub = NULL;
    bus_sub_t *sub = NULL;
    consumer c = {0};
    char key[32];
    assert_int_equal(bus_pub_new(&pub, ctx, PUB_EP, SNAP_EP), 0);
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put(pub, key, "v1");
    }
    assert_int_equal(bus_sub_new(&sub, ctx, PUB_EP, SNAP_EP, "k8s"), 0);
    PUMP_UNTIL(pub, sub, &c, c.puts > 0);
    assert_false(bus_sub_is_consistent(sub));
    for (int i = 0; i < 3000; i += 2) {
        snprintf(key, sizeof key, "k%d", i);
        if (i % 4 == 0)
            assert_int_equal(bus_pub_delete(pub, "k8s", key), 1);
        else
            put(pub, key, "v2");
    }
    put(pub, "last", "v1");
    PUMP_UNTIL(pub, sub, &c, bus_sub_is_consistent(sub) && consumer_get(&c, "last") != NULL);
    assert_int_equal(HASH_COUNT(c.map), 3000 - 750 + 1);
    assert_null(consumer_get(&c, "k0"));
    assert_string_equal(consumer_get(&c, "k2"), "v2");
    assert_string_equal(consumer_get(&c, "k1"), "v1");
    assert_int_equal(c.resets, 0);
    consumer_clear(&c);
    bus_sub_destroy(&sub);
    bus_pub_destroy(&pub);
    zmq_ctx_term(ctx);
}

/* An end marker that claims more than arrived is a cut snapshot: the
 * subscriber never reports it consistent, tells the consumer to forget it,
 * and asks again. */
static void test_cut_snapshot_is_never_taken_for_whole(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    raw_publisher raw = {.pub = bus_socket_bind(ctx, ZMQ_PUB, PUB_EP),
                         .router = bus_socket_bind(ctx, ZMQ_ROUTER, SNAP_EP), .epoch = 5};
    bus_sub_t *sub = NULL;
    consumer c = {0};
    assert_int_equal(bus_sub_new(&sub, ctx, PUB_EP, SNAP_EP, "k8s"), 0);
    int served = 0;
    PUMP_UNTIL(NULL, sub, &c, (served += raw_serve_claiming(&raw, "a", 3, 2)) == 1 && c.puts == 1);
    PUMP_UNTIL(NULL, sub, &c, (served += raw_serve(&raw, "b", 3)) == 2 && bus_sub_is_consistent(sub));
    assert_int_equal(c.consistents, 1);
    assert_int_equal(c.resets, 1);
    assert_null(consumer_get(&c, "a"));
    assert_non_null(consumer_get(&c, "b"));
    consumer_clear(&c);
    bus_sub_destroy(&sub);
    bus_socket_close(&raw.pub);
    bus_socket_close(&raw.router);
    zmq_ctx_term(ctx);
}

/* A body too big for one bus message is refused alone: nothing is stored or
 * sent for it, and the link carries every later update. */
static void test_oversized_put_is_refused_and_the_link_lives(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    bus_pub_t *pub = NULL;
    bus_sub_t *sub = NULL;
    consumer c = {0};
    assert_int_equal(bus_pub_new(&pub, ctx, PUB_EP, SNAP_EP), 0);
    put(pub, "first", "v1");
    assert_int_equal(bus_sub_new(&sub, ctx, PUB_EP, SNAP_EP, "k8s"), 0);
    PUMP_UNTIL(pub, sub, &c, bus_sub_is_consistent(sub));
    size_t huge_len = PROTO_MAX_MESSAGE;
    char *huge = calloc(1, huge_len);
    assert_non_null(huge);
    assert_int_equal(bus_pub_put(pub, "k8s", "huge", huge, huge_len), KV_ERR_TOO_LARGE);
    free(huge);
    size_t len = 0;
    assert_null(bus_pub_get(pub, "k8s", "huge", &len));
    put(pub, "after", "v1");
    PUMP_UNTIL(pub, sub, &c, consumer_get(&c, "after") != NULL);
    assert_null(consumer_get(&c, "huge"));
    assert_int_equal(c.resets, 0);
    consumer_clear(&c);
    bus_sub_destroy(&sub);
    bus_pub_destroy(&pub);
    zmq_ctx_term(ctx);
}

static void count_key(const char *key, void *payload)
{
    (void)key;
    (*(int *)payload)++;
}

/* Asking for a stream nobody publishes answers an empty snapshot and creates
 * no stream (which would be heartbeated forever). */
static void test_snapshot_of_unknown_stream_creates_nothing(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    bus_pub_t *pub = NULL;
    bus_sub_t *sub = NULL;
    consumer c = {0};
    assert_int_equal(bus_pub_new(&pub, ctx, PUB_EP, SNAP_EP), 0);
    assert_int_equal(bus_sub_new(&sub, ctx, PUB_EP, SNAP_EP, "made-up"), 0);
    PUMP_UNTIL(pub, sub, &c, bus_sub_is_consistent(sub));
    assert_int_equal(HASH_COUNT(c.map), 0);
    int keys = 0;
    bus_pub_foreach_key(pub, "made-up", count_key, &keys);
    assert_int_equal(keys, 0);
    /* A stream that exists would be heartbeated; a made-up one is not. */
    put(pub, "real", "v1");
    assert_int_equal(bus_pub_snapshots_in_flight(pub), 0);
    consumer_clear(&c);
    bus_sub_destroy(&sub);
    bus_pub_destroy(&pub);
    zmq_ctx_term(ctx);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_late_subscriber_gets_snapshot_then_live_updates),
        cmocka_unit_test(test_unchanged_put_publishes_nothing),
        cmocka_unit_test(test_publisher_restart_resets_subscriber_to_new_state),
        cmocka_unit_test(test_streams_are_separate),
        cmocka_unit_test(test_sequence_gap_triggers_reset_and_new_snapshot),
        cmocka_unit_test(test_heartbeat_ahead_of_last_seq_means_lost_updates),
        cmocka_unit_test(test_silent_publisher_triggers_new_snapshot),
        cmocka_unit_test(test_second_publisher_on_same_tcp_endpoint_fails),
        cmocka_unit_test(test_snapshot_larger_than_high_water_marks_arrives_whole),
        cmocka_unit_test(test_changes_during_a_snapshot_are_not_lost),
        cmocka_unit_test(test_cut_snapshot_is_never_taken_for_whole),
        cmocka_unit_test(test_oversized_put_is_refused_and_the_link_lives),
        cmocka_unit_test(test_snapshot_of_unknown_stream_creates_nothing),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
