/* The whole syncer loop: an in-test bus publisher plays the planner, a PULL
 * socket plays the watcher's status receiver, and the simulator plays the
 * controller.
 *   test_syncer_loop [test-name-glob] */
#include "tests/unit/test_syncer_kit.h"

#include <zmq.h>

#include "common/bus.h"
#include "proto/envelope.h"
#include "proto/status.h"
#include "syncer/syncer.h"

#define STREAM "model.admin"
#define MAX_OWNERS 16

static const int port_80[] = {80};

typedef struct {
    char *object;
    char **vips;
    size_t n_vips;
    char *error;
    unsigned received;
} owner_status;

typedef struct {
    kit_env env;
    void *ctx;
    bus_pub_t *pub;
    void *pull;
    syncer_t *syncer;
    char pub_ep[96], snap_ep[96], status_ep[96];
    owner_status owners[MAX_OWNERS];
    size_t n_owners;
    proto_progress progress; /* latest received */
    unsigned progress_count;
} loop_fx;

static int fx_counter;

static void fx_start_pub(loop_fx *fx)
{
    assert_int_equal(bus_pub_new(&fx->pub, fx->ctx, fx->pub_ep, fx->snap_ep), KV_OK);
}

static void fx_start(loop_fx *fx, const avisim_options_t *opts)
{
    char yaml[512];
    memset(fx, 0, sizeof *fx);
    kit_env_start(&fx->env, opts);
    int n = fx_counter++;
    /* ipc, not inproc: a restarted publisher must be reachable again by
     * the subscriber's existing connection (inproc ones do not survive
     * their binder). The pid keeps parallel test runs apart. */
    snprintf(fx->pub_ep, sizeof fx->pub_ep, "ipc:///tmp/kavi-syncer-test-%d-%d-pub", (int)getpid(),
             n);
    snprintf(fx->snap_ep, sizeof fx->snap_ep, "ipc:///tmp/kavi-syncer-test-%d-%d-snap",
             (int)getpid(), n);
    snprintf(fx->status_ep, sizeof fx->status_ep, "ipc:///tmp/kavi-syncer-test-%d-%d-status",
             (int)getpid(), n);
    snprintf(yaml, sizeof yaml, "bus:\n  modelPublish: %s\n  modelSnapshot: %s\n  status: %s\n",
             fx->pub_ep, fx->snap_ep, fx->status_ep);
    config_destroy(&fx->env.cfg);
    fx->env.cfg = kit_config(fx->env.port, yaml);
    fx->ctx = zmq_ctx_new();
    assert_non_null(fx->ctx);
    fx_start_pub(fx);
    fx->pull = bus_socket_bind(fx->ctx, ZMQ_PULL, fx->status_ep);
    assert_non_null(fx->pull);
    assert_int_equal(syncer_new(&fx->syncer, fx->env.cfg, NULL, fx->ctx), KV_OK);
    syncer_set_backoff(fx->syncer, 20, 200);
}

static void owner_status_clear(owner_status *o)
{
    free(o->object);
    for (size_t i = 0; i < o->n_vips; i++)
        free(o->vips[i]);
    free(o->vips);
    free(o->error);
    memset(o, 0, sizeof *o);
}

static void fx_stop(loop_fx *fx)
{
    syncer_destroy(&fx->syncer);
    bus_pub_destroy(&fx->pub);
    bus_socket_close(&fx->pull);
    zmq_ctx_term(fx->ctx);
    for (size_t i = 0; i < fx->n_owners; i++)
        owner_status_clear(&fx->owners[i]);
    free(fx->progress.tenant);
    free(fx->progress.last_error);
    kit_env_stop(&fx->env);
}

static void fx_take_status(loop_fx *fx, proto_status *st)
{
    if (st->type == PROTO_STATUS_PROGRESS) {
        free(fx->progress.tenant);
        free(fx->progress.last_error);
        fx->progress = st->progress;
        memset(&st->progress, 0, sizeof st->progress);
        fx->progress_count++;
        return;
    }
    owner_status *o = NULL;
    for (size_t i = 0; i < fx->n_owners && !o; i++)
        if (strcmp(fx->owners[i].object, st->object.object) == 0)
            o = &fx->owners[i];
    if (!o) {
        assert_true(fx->n_owners < MAX_OWNERS);
        o = &fx->owners[fx->n_owners++];
    }
    unsigned received = o->received;
    owner_status_clear(o);
    o->object = st->object.object;
    o->vips = st->object.vips;
    o->n_vips = st->object.n_vips;
    o->error = st->object.error;
    o->received = received + 1;
    st->object.object = NULL;
    st->object.vips = NULL;
    st->object.n_vips = 0;
    st->object.error = NULL;
}

/* One round of everyone's work: the planner's heartbeats and snapshots,
 * one syncer step, and whatever status arrived. */
static void fx_round(loop_fx *fx)
{
    bus_pub_tick(fx->pub, clock_now_ms());
    bus_pub_serve(fx->pub);
    assert_int_equal(syncer_step(fx->syncer, 10), KV_OK);
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, fx->pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            break;
        }
        proto_status st;
        if (proto_status_decode(&st, zmq_msg_data(&msg), zmq_msg_size(&msg)) == KV_OK)
            fx_take_status(fx, &st);
        proto_status_clear(&st);
        zmq_msg_close(&msg);
    }
}

typedef bool (*fx_predicate)(loop_fx *fx, const void *arg);

static void fx_run_until(loop_fx *fx, fx_predicate done, const void *arg, const char *what)
{
    int64_t deadline = clock_now_ms() + KIT_DEADLINE_MS;
    while (!done(fx, arg)) {
        if (clock_now_ms() > deadline)
            fail_msg("timed out waiting for %s", what);
        fx_round(fx);
    }
}

/* Runs the loop for a while when the point is that nothing happens. */
static void fx_run_for(loop_fx *fx, int64_t ms)
{
    int64_t end = clock_now_ms() + ms;
    while (clock_now_ms() < end)
        fx_round(fx);
}

static const owner_status *fx_owner(const loop_fx *fx, const char *object)
{
    for (size_t i = 0; i < fx->n_owners; i++)
        if (strcmp(fx->owners[i].object, object) == 0)
            return &fx->owners[i];
    return NULL;
}

static bool owner_has_vip(loop_fx *fx, const void *arg)
{
    const owner_status *o = fx_owner(fx, arg);
    return o && o->n_vips > 0;
}

static bool owner_has_no_vip(loop_fx *fx, const void *arg)
{
    const owner_status *o = fx_owner(fx, arg);
    return o && o->n_vips == 0 && !o->error;
}

static bool owner_has_error(loop_fx *fx, const void *arg)
{
    const owner_status *o = fx_owner(fx, arg);
    return o && o->error;
}

static bool nothing_pending(loop_fx *fx, const void *arg)
{
    (void)arg;
    syncer_stats st;
    syncer_get_stats(fx->syncer, &st);
    /* The last progress received must agree with the syncer: one sent
     * earlier with the same pending count may still be the latest here. */
    return st.consistent && st.cache_loaded && st.pending == 0 && fx->progress_count > 0 &&
           fx->progress.pending == 0 && fx->progress.failed == st.failed;
}

static bool eos_reached(loop_fx *fx, const void *arg)
{
    return fx->progress.eos_run == *(const uint64_t *)arg;
}

static bool gc_ran(loop_fx *fx, const void *arg)
{
    (void)arg;
    syncer_stats st;
    syncer_get_stats(fx->syncer, &st);
    return st.gc_runs > 0;
}

static bool view_reset_and_consistent(loop_fx *fx, const void *arg)
{
    (void)arg;
    syncer_stats st;
    syncer_get_stats(fx->syncer, &st);
    return st.consistent && !st.complete;
}

static void fx_publish_model(loop_fx *fx, proto_model *m)
{
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(proto_model_encode(m, &data, &len), KV_OK);
    assert_int_equal(bus_pub_put(fx->pub, STREAM, m->name, data, len), 1);
    free(data);
}

typedef struct {
    bus_pub_t *pub;
    uint32_t models;
    uint64_t digest;
} published_set;

static void add_to_set(const char *key, void *payload)
{
    published_set *set = payload;
    size_t len = 0;
    const void *body = bus_pub_get(set->pub, STREAM, key, &len);
    if (key[0] == '!' || !body)
        return;
    set->models++;
    set->digest += proto_model_fingerprint(key, body, len);
}

/* As the planner does: "!eos" carries the models the stream holds. */
static void fx_publish_marker(loop_fx *fx, const char *key, uint64_t eos_run)
{
    void *data = NULL;
    size_t len = 0;
    if (eos_run) {
        published_set set = {.pub = fx->pub};
        bus_pub_foreach_key(fx->pub, STREAM, add_to_set, &set);
        proto_eos eos = {.run_id = eos_run, .has_models = true, .models = set.models,
                         .digest = set.digest};
        assert_int_equal(proto_eos_encode(&eos, &data, &len), KV_OK);
    }
    /* Not NULL for an empty body: bus_pub_put memcpy()s it (UBSan). */
    static const char empty = 0;
    bus_pub_put(fx->pub, STREAM, key, data ? data : &empty, len);
    free(data);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_models_from_the_bus_are_applied_and_reported(void **state)
{
    (void)state;
    loop_fx fx;
    fx_start(&fx, NULL);
    proto_model *a = kit_l4_model("ns", "a", port_80, 1, "10.0.0.3:31080");
    fx_publish_model(&fx, a);
    fx_publish_marker(&fx, PROTO_KEY_COMPLETE, 0);
    fx_publish_marker(&fx, PROTO_KEY_EOS, 7);

    uint64_t run = 7;
    fx_run_until(&fx, eos_reached, &run, "end of stream 7");

    const owner_status *o = fx_owner(&fx, "Service/ns/a");
    assert_non_null(o);
    assert_int_equal(o->n_vips, 1);
    assert_string_equal(o->vips[0], "10.10.10.100");
    assert_null(o->error);
    assert_int_equal(fx.progress.pending, 0);
    assert_int_equal(fx.progress.failed, 0);
    assert_string_equal(fx.progress.tenant, "admin");
    /* It echoes what the planner published for that end beside what it
     * applied: the same one model. */
    assert_int_equal(fx.progress.published_models, 1);
    assert_int_equal(fx.progress.applied_models, 1);
    assert_true(proto_progress_applied_all(&fx.progress));
    assert_true(kit_exists(&fx.env, "virtualservice", "kavi--ns-a"));

    /* The planner deletes the model: its objects go, the owner learns. */
    bus_pub_delete(fx.pub, STREAM, a->name);
    fx_run_until(&fx, owner_has_no_vip, "Service/ns/a", "Service/ns/a without VIP");
    assert_false(kit_exists(&fx.env, "virtualservice", "kavi--ns-a"));
    assert_false(kit_exists(&fx.env, "pool", "kavi--ns-a-TCP-80"));
    assert_false(kit_exists(&fx.env, "vsvip", "kavi--ns-a"));

    proto_model_destroy(&a);
    fx_stop(&fx);
}

static void test_refused_model_is_reported_not_retried_and_others_still_applied(void **state)
{
    (void)state;
    loop_fx fx;
    fx_start(&fx, NULL);
    proto_model *bad = kit_l4_model("ns", "bad", port_80, 1, "10.0.0.3:70000");
    proto_model *good = kit_l4_model("ns", "good", port_80, 1, "10.0.0.3:31080");
    fx_publish_model(&fx, bad);
    fx_publish_model(&fx, good);

    fx_run_until(&fx, owner_has_error, "Service/ns/bad", "an error for Service/ns/bad");
    fx_run_until(&fx, owner_has_vip, "Service/ns/good", "a VIP for Service/ns/good");
    fx_run_until(&fx, nothing_pending, NULL, "nothing pending");

    assert_non_null(strstr(fx_owner(&fx, "Service/ns/bad")->error, "servers[0].port"));
    assert_int_equal(fx.progress.failed, 1);
    assert_non_null(fx.progress.last_error);
    assert_non_null(strstr(fx.progress.last_error, "servers[0].port"));
    /* At the end of the stream, the refused model is not in the applied
     * set: one of the two published. */
    fx_publish_marker(&fx, PROTO_KEY_EOS, 3);
    uint64_t run = 3;
    fx_run_until(&fx, eos_reached, &run, "end of stream 3");
    assert_int_equal(fx.progress.published_models, 2);
    assert_int_equal(fx.progress.applied_models, 1);
    assert_false(proto_progress_applied_all(&fx.progress));
    /* Well past several backoff periods (20 ms doubling to 200 ms): not
     * one more attempt at the refused model. */
    int posts = kit_count(&fx.env, "POST pool");
    fx_run_for(&fx, 800);
    assert_int_equal(kit_count(&fx.env, "POST pool"), posts);

    /* A corrected version is a new desired state: it lands. */
    proto_model *fixed = kit_l4_model("ns", "bad", port_80, 1, "10.0.0.3:31090");
    fx_publish_model(&fx, fixed);
    fx_run_until(&fx, owner_has_vip, "Service/ns/bad", "a VIP for Service/ns/bad");
    assert_null(fx_owner(&fx, "Service/ns/bad")->error);
    fx_run_until(&fx, nothing_pending, NULL, "nothing pending");
    assert_int_equal(fx.progress.failed, 0);
    /* The planner restates its end with the new version: whole again. */
    fx_publish_marker(&fx, PROTO_KEY_EOS, 4);
    run = 4;
    fx_run_until(&fx, eos_reached, &run, "end of stream 4");
    assert_int_equal(fx.progress.applied_models, 2);
    assert_true(proto_progress_applied_all(&fx.progress));

    proto_model_destroy(&fixed);
    proto_model_destroy(&bad);
    proto_model_destroy(&good);
    fx_stop(&fx);
}

/* The planner could not publish a model (too large for the bus): its
 * "!refused/" marker becomes the Service's status and a failed model in
 * progress; when the marker goes, so does the error. */
static void test_planner_refusal_is_the_services_status_and_a_failure(void **state)
{
    (void)state;
    loop_fx fx;
    fx_start(&fx, NULL);
    proto_model *good = kit_l4_model("ns", "good", port_80, 1, "10.0.0.3:31080");
    fx_publish_model(&fx, good);
    proto_object_status refusal = {.object = "Service/ns/huge", .tenant = "admin",
                                   .error = "model kavi--ns-huge is 70000000 bytes, past the "
                                            "bus's 64 MiB message cap"};
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(proto_object_status_encode(&refusal, &data, &len), KV_OK);
    assert_int_equal(bus_pub_put(fx.pub, STREAM, PROTO_KEY_REFUSED_PREFIX "kavi--ns-huge", data, len), 1);
    free(data);

    fx_run_until(&fx, owner_has_error, "Service/ns/huge", "an error for Service/ns/huge");
    assert_non_null(strstr(fx_owner(&fx, "Service/ns/huge")->error, "64 MiB message cap"));
    fx_run_until(&fx, owner_has_vip, "Service/ns/good", "a VIP for Service/ns/good");
    fx_run_until(&fx, nothing_pending, NULL, "nothing pending");
    assert_int_equal(fx.progress.failed, 1);
    assert_non_null(strstr(fx.progress.last_error, "64 MiB message cap"));
    assert_false(kit_exists(&fx.env, "pool", "kavi--ns-huge-TCP-80"));

    assert_int_equal(bus_pub_delete(fx.pub, STREAM, PROTO_KEY_REFUSED_PREFIX "kavi--ns-huge"), 1);
    fx_run_until(&fx, owner_has_no_vip, "Service/ns/huge", "Service/ns/huge without error");
    assert_null(fx_owner(&fx, "Service/ns/huge")->error);
    proto_model_destroy(&good);
    fx_stop(&fx);
}

static void test_transient_failures_are_retried_until_the_model_lands(void **state)
{
    (void)state;
    loop_fx fx;
    fx_start(&fx, NULL);
    proto_model *a = kit_l4_model("ns", "a", port_80, 1, "10.0.0.3:31080");
    kit_faults(&fx.env, "{\"upgrade_in_progress\": true}");
    fx_publish_model(&fx, a);

    /* Writes are refused with 403 "disallowed during upgrade": transient. */
    int64_t deadline = clock_now_ms() + KIT_DEADLINE_MS;
    while (kit_count(&fx.env, "POST pool") < 3) {
        assert_true(clock_now_ms() < deadline);
        fx_round(&fx);
    }
    syncer_stats st;
    syncer_get_stats(fx.syncer, &st);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.failed, 0);
    assert_null(fx_owner(&fx, "Service/ns/a"));

    kit_faults(&fx.env, NULL);
    fx_run_until(&fx, owner_has_vip, "Service/ns/a", "a VIP for Service/ns/a");
    assert_true(kit_exists(&fx.env, "virtualservice", "kavi--ns-a"));

    proto_model_destroy(&a);
    fx_stop(&fx);
}

static bool pool_attempted_with(loop_fx *fx, const void *arg)
{
    return kit_count_with_checksum(&fx->env, "POST", "pool", arg) > 0;
}

static void test_latest_version_wins_over_one_still_waiting(void **state)
{
    (void)state;
    loop_fx fx;
    fx_start(&fx, NULL);
    proto_model *other = kit_l4_model("ns", "other", port_80, 1, "10.0.0.3:31080");
    fx_publish_model(&fx, other);
    fx_run_until(&fx, nothing_pending, NULL, "the first model");
    kit_reset_log(&fx.env);

    /* v1 waits in backoff: the controller refuses writes for now. Then v2
     * arrives and is tried in its place. */
    proto_model *v1 = kit_l4_model("ns", "a", port_80, 1, "10.0.0.3:31081");
    proto_model *v2 = kit_l4_model("ns", "a", port_80, 1, "10.0.0.4:31081");
    const char *v1_sum = kit_model_find(v1, "pool", "kavi--ns-a-TCP-80")->checksum;
    const char *v2_sum = kit_model_find(v2, "pool", "kavi--ns-a-TCP-80")->checksum;
    kit_faults(&fx.env, "{\"upgrade_in_progress\": true}");
    fx_publish_model(&fx, v1);
    fx_run_until(&fx, pool_attempted_with, v1_sum, "a refused attempt at v1");
    fx_publish_model(&fx, v2);
    fx_run_until(&fx, pool_attempted_with, v2_sum, "a refused attempt at v2");

    kit_faults(&fx.env, NULL);
    kit_reset_log(&fx.env);
    fx_run_until(&fx, owner_has_vip, "Service/ns/a", "a VIP for Service/ns/a");

    /* Once writes are allowed, only v2 is ever written, once. */
    assert_int_equal(kit_count(&fx.env, "POST pool"), 1);
    assert_int_equal(kit_count(&fx.env, "PUT pool"), 0);
    assert_int_equal(kit_count_with_checksum(&fx.env, "POST", "pool", v1_sum), 0);
    json_t *pool = kit_state_object(&fx.env, "pool", "kavi--ns-a-TCP-80");
    assert_string_equal(json_string_value(json_object_get(pool, "cloud_config_cksum")), v2_sum);

    json_decref(pool);
    proto_model_destroy(&v1);
    proto_model_destroy(&v2);
    proto_model_destroy(&other);
    fx_stop(&fx);
}

static void test_leftovers_are_deleted_only_once_the_planner_is_complete(void **state)
{
    (void)state;
    loop_fx fx;
    fx_start(&fx, NULL);
    /* Left on the controller by an earlier run: a whole VS and a pool. */
    proto_model *old = kit_l4_model("ns", "old", port_80, 1, "10.0.0.9:31080");
    reconcile_held held = {0};
    kit_apply_expect(&fx.env, old, &held, KV_OK, NULL);
    kit_create(&fx.env, "pool",
               "{\"name\": \"kavi--stray\", \"created_by\": \"ako-kavi\", " KIT_MARKERS "}");
    kit_create(&fx.env, "pool", "{\"name\": \"users-own-pool\"}");

    proto_model *a = kit_l4_model("ns", "a", port_80, 1, "10.0.0.3:31080");
    fx_publish_model(&fx, a);
    fx_run_until(&fx, nothing_pending, NULL, "model a applied");
    fx_run_for(&fx, 300);
    assert_true(kit_exists(&fx.env, "virtualservice", "kavi--ns-old"));
    assert_true(kit_exists(&fx.env, "pool", "kavi--stray"));

    fx_publish_marker(&fx, PROTO_KEY_COMPLETE, 0);
    fx_run_until(&fx, gc_ran, NULL, "garbage collection");

    assert_false(kit_exists(&fx.env, "virtualservice", "kavi--ns-old"));
    assert_false(kit_exists(&fx.env, "vsvip", "kavi--ns-old"));
    assert_false(kit_exists(&fx.env, "pool", "kavi--ns-old-TCP-80"));
    assert_false(kit_exists(&fx.env, "pool", "kavi--stray"));
    assert_true(kit_exists(&fx.env, "virtualservice", "kavi--ns-a"));
    assert_true(kit_exists(&fx.env, "pool", "users-own-pool"));

    reconcile_held_clear(&held);
    proto_model_destroy(&old);
    proto_model_destroy(&a);
    fx_stop(&fx);
}

static void test_planner_restart_deletes_nothing_until_complete_again(void **state)
{
    (void)state;
    loop_fx fx;
    fx_start(&fx, NULL);
    proto_model *a = kit_l4_model("ns", "a", port_80, 1, "10.0.0.3:31080");
    proto_model *b = kit_l4_model("ns", "b", port_80, 1, "10.0.0.3:31081");
    fx_publish_model(&fx, a);
    fx_publish_model(&fx, b);
    fx_publish_marker(&fx, PROTO_KEY_COMPLETE, 0);
    fx_publish_marker(&fx, PROTO_KEY_EOS, 5);
    /* The progress saying run 5 is done follows every status the syncer
     * sent up to then (one socket, in order): the count below is settled. */
    uint64_t run = 5;
    fx_run_until(&fx, eos_reached, &run, "end of stream 5");
    assert_true(gc_ran(&fx, NULL));
    unsigned status_count = fx_owner(&fx, "Service/ns/a")->received;

    /* The planner restarts: a new publisher with an empty snapshot. */
    bus_pub_destroy(&fx.pub);
    fx_start_pub(&fx);
    fx_run_until(&fx, view_reset_and_consistent, NULL, "a fresh, incomplete view");
    fx_run_for(&fx, 300);
    assert_true(kit_exists(&fx.env, "virtualservice", "kavi--ns-a"));
    assert_true(kit_exists(&fx.env, "virtualservice", "kavi--ns-b"));
    const owner_status *oa = fx_owner(&fx, "Service/ns/a");
    assert_true(oa->received == status_count && oa->n_vips == 1); /* no flap to "no VIP" */

    /* It publishes a again, then says it is complete: b is a leftover. */
    fx_publish_model(&fx, a);
    fx_publish_marker(&fx, PROTO_KEY_COMPLETE, 0);
    fx_run_until(&fx, owner_has_no_vip, "Service/ns/b", "Service/ns/b without VIP");
    int64_t deadline = clock_now_ms() + KIT_DEADLINE_MS;
    while (kit_exists(&fx.env, "virtualservice", "kavi--ns-b")) {
        assert_true(clock_now_ms() < deadline);
        fx_round(&fx);
    }
    assert_true(kit_exists(&fx.env, "virtualservice", "kavi--ns-a"));
    assert_int_equal(fx_owner(&fx, "Service/ns/a")->n_vips, 1);

    proto_model_destroy(&a);
    proto_model_destroy(&b);
    fx_stop(&fx);
}

/* As AKO: a controller that refuses the credentials will not change its
 * mind; the syncer stops, and its last progress says why. */
static void test_refused_credentials_stop_the_syncer_and_say_why(void **state)
{
    (void)state;
    loop_fx fx;
    avisim_options_t opts = {.password = "not-what-the-config-says"};
    fx_start(&fx, &opts);
    int64_t until = clock_now_ms() + 10000;
    int rc = KV_OK;
    while (rc == KV_OK && clock_now_ms() < until) {
        bus_pub_tick(fx.pub, clock_now_ms());
        bus_pub_serve(fx.pub);
        rc = syncer_step(fx.syncer, 10);
    }
    assert_int_equal(rc, KV_ERR_HTTP);
    until = clock_now_ms() + 5000;
    while (!(fx.progress.last_error && strstr(fx.progress.last_error, "Invalid credentials")) &&
           clock_now_ms() < until) {
        zmq_pollitem_t item = {.socket = fx.pull, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, 50) > 0) {
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, fx.pull, ZMQ_DONTWAIT) >= 0) {
                proto_status st;
                if (proto_status_decode(&st, zmq_msg_data(&msg), zmq_msg_size(&msg)) == KV_OK)
                    fx_take_status(&fx, &st);
                proto_status_clear(&st);
            }
            zmq_msg_close(&msg);
        }
    }
    assert_non_null(fx.progress.last_error);
    assert_non_null(strstr(fx.progress.last_error, "Invalid credentials"));
    fx_stop(&fx);
}

static void test_models_of_different_services_are_written_side_by_side(void **state)
{
    (void)state;
    loop_fx fx;
    fx_start(&fx, NULL);
    static const char *const names[] = {"a", "b", "c", "d"};
    proto_model *models[4];
    for (int i = 0; i < 4; i++) {
        models[i] = kit_l4_model("ns", names[i], port_80, 1, "10.0.0.3:31080");
        fx_publish_model(&fx, models[i]);
    }
    fx_publish_marker(&fx, PROTO_KEY_COMPLETE, 0);
    fx_run_until(&fx, nothing_pending, NULL, "every model applied");

    /* Each model's first write went out before any model reached its VS
     * (one model at a time would write a's VS before b's pool), and each
     * model kept its own order, leaves first. */
    char *log = kit_write_log(&fx.env);
    long first_vs = kit_position(log, "POST virtualservice");
    for (int i = 0; i < 4; i++) {
        char pool[96], l4[96], vsvip[96], vs[96];
        snprintf(pool, sizeof pool, "POST pool kavi--ns-%s-TCP-80 201", names[i]);
        snprintf(l4, sizeof l4, "POST l4policyset kavi--ns-%s 201", names[i]);
        snprintf(vsvip, sizeof vsvip, "POST vsvip kavi--ns-%s 201", names[i]);
        snprintf(vs, sizeof vs, "POST virtualservice kavi--ns-%s 201", names[i]);
        assert_true(kit_position(log, pool) < first_vs);
        assert_true(kit_position(log, pool) < kit_position(log, l4));
        assert_true(kit_position(log, l4) < kit_position(log, vsvip));
        assert_true(kit_position(log, vsvip) < kit_position(log, vs));
        proto_model_destroy(&models[i]);
    }
    assert_int_equal(kit_count(&fx.env, "POST virtualservice"), 4);
    free(log);
    fx_stop(&fx);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_of_different_services_are_written_side_by_side),
        cmocka_unit_test(test_models_from_the_bus_are_applied_and_reported),
        cmocka_unit_test(test_refused_model_is_reported_not_retried_and_others_still_applied),
        cmocka_unit_test(test_planner_refusal_is_the_services_status_and_a_failure),
        cmocka_unit_test(test_transient_failures_are_retried_until_the_model_lands),
        cmocka_unit_test(test_latest_version_wins_over_one_still_waiting),
        cmocka_unit_test(test_leftovers_are_deleted_only_once_the_planner_is_complete),
        cmocka_unit_test(test_planner_restart_deletes_nothing_until_complete_again),
        cmocka_unit_test(test_refused_credentials_stop_the_syncer_and_say_why),
    };
    KIT_RUN(tests, argc, argv);
}
