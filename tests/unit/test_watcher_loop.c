/* The watcher loop over a real (inproc) bus: what a subscriber of stream
 * "k8s" sees after a replay, the markers, follow mode, and the status that
 * syncers push back (log lines, status file, exit verdict). Every wait polls
 * with a deadline; nothing sleeps a fixed time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zmq.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/envelope.h"
#include "proto/k8s.h"
#include "proto/status.h"
#include "watcher/watcher.h"

#define DATA_DIR "tests/data/replay/"
#define DEADLINE_MS 10000
#define VIEW_MAX 64

/* ---- log capture ------------------------------------------------------- */

static int saved_stderr = -1;
static FILE *capture_file;

static void capture_begin(void)
{
    fflush(stderr);
    capture_file = tmpfile();
    assert_non_null(capture_file);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fileno(capture_file), STDERR_FILENO);
}

static char *capture_end(void)
{
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    long len = ftell(capture_file);
    char *text = calloc(1, (size_t)len + 1);
    rewind(capture_file);
    if (len > 0 && fread(text, 1, (size_t)len, capture_file) != (size_t)len)
        fail_msg("cannot read the captured log");
    fclose(capture_file);
    fputs(text, stderr);
    return text;
}

/* ---- a subscriber's view of stream "k8s" ---------------------------------- */

typedef struct {
    char *keys[VIEW_MAX];
    uint8_t *bodies[VIEW_MAX];
    size_t lens[VIEW_MAX];
    size_t n;
} view;

static int view_find(const view *v, const char *key)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], key) == 0)
            return (int)i;
    return -1;
}

static void view_clear(view *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->keys[i]);
        free(v->bodies[i]);
    }
    v->n = 0;
}

static void view_remove(view *v, int i)
{
    free(v->keys[i]);
    free(v->bodies[i]);
    v->n--;
    v->keys[i] = v->keys[v->n];
    v->bodies[i] = v->bodies[v->n];
    v->lens[i] = v->lens[v->n];
}

/* Takes the key and body out of ev. */
static void view_apply(view *v, bus_event *ev)
{
    int i;
    switch (ev->type) {
    case BUS_RESET:
        view_clear(v);
        break;
    case BUS_PUT:
        i = view_find(v, ev->env.key);
        if (i >= 0)
            view_remove(v, i);
        assert_true(v->n < VIEW_MAX);
        v->keys[v->n] = ev->env.key;
        v->bodies[v->n] = ev->env.body;
        v->lens[v->n] = ev->env.body_len;
        v->n++;
        ev->env.key = NULL;
        ev->env.body = NULL;
        break;
    case BUS_DELETE:
        i = view_find(v, ev->env.key);
        if (i >= 0)
            view_remove(v, i);
        break;
    case BUS_CONSISTENT:
        break;
    }
}

/* ---- fixture ---------------------------------------------------------------- */

typedef struct {
    void *ctx;
    kv_config *cfg;
    watcher_t *w;
    bus_sub_t *sub;
    void *push; /* stands in for a syncer */
    view view;
    char status_file[128];
} fixture;

static int endpoint_counter;

static void fixture_start(fixture *f, const char *replay_file, bool follow, size_t batch)
{
    char yaml[512], err[512];
    int n = ++endpoint_counter;
    memset(f, 0, sizeof *f);
    snprintf(yaml, sizeof yaml,
             "clusterName: test\n"
             "tenantName: admin\n"
             "bus:\n"
             "  k8sPublish: inproc://k8s-pub-%d\n"
             "  k8sSnapshot: inproc://k8s-snap-%d\n"
             "  status: inproc://status-%d\n",
             n, n, n);
    if (config_load_string(&f->cfg, yaml, "test", err, sizeof err) < 0)
        fail_msg("%s", err);
    snprintf(f->status_file, sizeof f->status_file, "/tmp/kavi-test-status-%ld-%d.json",
             (long)getpid(), n);
    unlink(f->status_file);
    f->ctx = zmq_ctx_new();
    watcher_options options = {.replay_file = replay_file, .follow = follow, .batch = batch,
                               .status_file = f->status_file};
    if (watcher_new(&f->w, f->ctx, f->cfg, &options, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_int_equal(bus_sub_new(&f->sub, f->ctx, f->cfg->k8s_publish, f->cfg->k8s_snapshot,
                                 PROTO_STREAM_K8S),
                     0);
    f->push = bus_socket_connect(f->ctx, ZMQ_PUSH, f->cfg->status_endpoint);
    assert_non_null(f->push);
}

static void fixture_stop(fixture *f)
{
    view_clear(&f->view);
    bus_socket_close(&f->push);
    bus_sub_destroy(&f->sub);
    watcher_destroy(&f->w);
    zmq_ctx_term(f->ctx);
    config_destroy(&f->cfg);
    unlink(f->status_file);
}

typedef bool (*condition_fn)(fixture *f, const void *arg);

/* Runs the watcher and the subscriber until cond holds; false at the deadline. */
static bool pump_until(fixture *f, condition_fn cond, const void *arg)
{
    int64_t deadline = clock_now_ms() + DEADLINE_MS;
    zmq_pollitem_t items[WATCHER_POLLITEMS + 2];
    for (;;) {
        int64_t now = clock_now_ms();
        int64_t wait = watcher_step(f->w, now);
        bus_event ev;
        while (bus_sub_next(f->sub, &ev, now) == 1) {
            view_apply(&f->view, &ev);
            bus_event_clear(&ev);
        }
        if (cond(f, arg))
            return true;
        if (now >= deadline)
            return false;
        int64_t sub_wait = bus_sub_timeout_ms(f->sub, now);
        if (sub_wait < wait)
            wait = sub_wait;
        if (wait > 50)
            wait = 50;
        int n = watcher_pollitems(f->w, items);
        n += bus_sub_pollitems(f->sub, items + n);
        zmq_poll(items, n, (long)wait);
    }
}

static bool has_key(fixture *f, const void *key)
{
    return bus_sub_is_consistent(f->sub) && view_find(&f->view, key) >= 0;
}

static bool replay_done(fixture *f, const void *arg)
{
    (void)arg;
    return watcher_replay_done(f->w);
}

static void send_tenant_status(fixture *f, const char *tenant, const char *object,
                               const char *vip, const char *error)
{
    char *vips[] = {(char *)vip};
    proto_object_status st = {.object = (char *)object, .tenant = (char *)tenant,
                              .vips = vip ? vips : NULL, .n_vips = vip ? 1 : 0,
                              .error = (char *)error};
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(proto_object_status_encode(&st, &data, &len), 0);
    assert_int_equal(zmq_send(f->push, data, len, 0), (int)len);
    free(data);
}

static void send_object_status(fixture *f, const char *object, const char *vip, const char *error)
{
    send_tenant_status(f, "admin", object, vip, error);
}

/* Sets of models as a progress states them: count and digest. */
typedef struct {
    uint32_t models;
    uint64_t digest;
} model_set;

#define WHOLE ((model_set){3, 0x5eed})

static void send_progress_of(fixture *f, const char *tenant, uint64_t eos_run, uint32_t pending,
                             uint32_t failed, const char *last_error, model_set published,
                             model_set applied)
{
    proto_progress p = {.tenant = (char *)tenant, .eos_run = eos_run, .pending = pending,
                        .failed = failed, .last_error = (char *)last_error,
                        .published_models = published.models,
                        .published_digest = published.digest,
                        .applied_models = applied.models,
                        .applied_digest = applied.digest};
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(proto_progress_encode(&p, &data, &len), 0);
    assert_int_equal(zmq_send(f->push, data, len, 0), (int)len);
    free(data);
}

/* A progress whose applied set is the published one. */
static void send_progress(fixture *f, const char *tenant, uint64_t eos_run, uint32_t pending,
                          uint32_t failed, const char *last_error)
{
    send_progress_of(f, tenant, eos_run, pending, failed, last_error, WHOLE, WHOLE);
}

static bool lag_contains(fixture *f, const void *text);

/* ---- publishing ------------------------------------------------------------ */

static void test_replay_publishes_projections_and_markers_a_subscriber_sees(void **state)
{
    (void)state;
    fixture f;
    capture_begin();
    fixture_start(&f, DATA_DIR "watch-with-bad-line.ndjson", false, 0);
    bool done = pump_until(&f, has_key, PROTO_KEY_EOS);
    char *log = capture_end();
    assert_true(done);

    /* Every projected kind is marked synced: the recording is the whole state. */
    static const char *const expected[] = {
        "Node/worker-1",        "Service/default/web",   "EndpointSlice/default/web-abc12",
        "!synced/Node",         "!synced/Service",       "!synced/EndpointSlice",
        "!synced/Namespace",    "!synced/Secret",        "!synced/Ingress",
        "!synced/IngressClass", "!synced/Route",         "!synced/GatewayClass",
        "!synced/Gateway",      "!synced/HTTPRoute",     PROTO_KEY_EOS,
    };
    assert_int_equal(f.view.n, sizeof expected / sizeof expected[0]);
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (view_find(&f.view, expected[i]) < 0)
            fail_msg("the subscriber has no %s", expected[i]);

    /* MODIFIED replaced the Service; the rejected one left nothing behind. */
    int i = view_find(&f.view, "Service/default/web");
    proto_k8s_object svc;
    assert_int_equal(proto_k8s_decode(&svc, f.view.bodies[i], f.view.lens[i]), 0);
    assert_int_equal(svc.service->ports[0].node_port, 30090);
    assert_true(svc.service->external_traffic_local);
    proto_k8s_object_clear(&svc);

    i = view_find(&f.view, "!synced/Node");
    assert_int_equal(f.view.lens[i], 0);
    i = view_find(&f.view, PROTO_KEY_EOS);
    proto_eos eos;
    assert_int_equal(proto_eos_decode(&eos, f.view.bodies[i], f.view.lens[i]), 0);
    assert_true(eos.run_id == watcher_run_id(f.w));
    assert_false(eos.has_models); /* the planner adds those on its copies */

    assert_non_null(strstr(log, "watch-with-bad-line.ndjson:3: invalid JSON"));
    assert_non_null(strstr(log, "watch-with-bad-line.ndjson:7: Service default/bad: "
                                "spec.ports[0].port must be an integer; ADDED event skipped"));
    free(log);
    fixture_stop(&f);
}

static void test_a_rejected_modification_keeps_the_previous_state(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "/tmp/kavi-test-loop-%ld-reject.ndjson", (long)getpid());
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs("{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\",\"apiVersion\":\"v1\","
          "\"metadata\":{\"name\":\"s\",\"namespace\":\"d\"},\"spec\":{\"type\":\"NodePort\","
          "\"ports\":[{\"port\":80,\"nodePort\":30001}]}}}\n"
          "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Service\",\"apiVersion\":\"v1\","
          "\"metadata\":{\"name\":\"s\",\"namespace\":\"d\"},\"spec\":{\"type\":\"NodePort\","
          "\"ports\":[{\"port\":80,\"nodePort\":\"30002\"}]}}}\n"
          "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Service\",\"apiVersion\":\"v1\","
          "\"metadata\":{\"name\":\"gone\",\"namespace\":\"d\"}}}\n",
          file);
    fclose(file);
    fixture f;
    capture_begin();
    fixture_start(&f, path, false, 0);
    bool done = pump_until(&f, has_key, PROTO_KEY_EOS);
    char *log = capture_end();
    assert_true(done);
    int i = view_find(&f.view, "Service/d/s");
    assert_true(i >= 0);
    proto_k8s_object svc;
    assert_int_equal(proto_k8s_decode(&svc, f.view.bodies[i], f.view.lens[i]), 0);
    assert_int_equal(svc.service->ports[0].node_port, 30001);
    proto_k8s_object_clear(&svc);
    assert_non_null(strstr(log, ":2: Service d/s: spec.ports[0].nodePort must be an integer; "
                                "MODIFIED event skipped"));
    free(log);
    fixture_stop(&f);
    unlink(path);
}

static void test_replay_reads_in_batches_and_marks_synced_after_the_last_event(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, DATA_DIR "watch-with-bad-line.ndjson", false, 2);
    /* Twelve lines at two events a step: the first steps ask to come back
     * at once and publish no marker. */
    assert_int_equal(watcher_step(f.w, clock_now_ms()), 0);
    assert_false(watcher_replay_done(f.w));
    assert_int_equal(watcher_step(f.w, clock_now_ms()), 0);
    assert_false(watcher_replay_done(f.w));
    assert_true(pump_until(&f, replay_done, NULL));
    assert_true(pump_until(&f, has_key, PROTO_KEY_EOS));
    assert_true(view_find(&f.view, "Node/worker-1") >= 0);
    fixture_stop(&f);
}

static void test_follow_marks_synced_without_eos_and_publishes_appended_events(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "/tmp/kavi-test-loop-%ld-follow.ndjson", (long)getpid());
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs("{\"type\":\"ADDED\",\"object\":{\"kind\":\"Node\",\"metadata\":{\"name\":\"a\"}}}\n",
          file);
    fclose(file);
    fixture f;
    fixture_start(&f, path, true, 0);
    assert_true(pump_until(&f, has_key, "!synced/EndpointSlice"));
    assert_true(view_find(&f.view, "Node/a") >= 0);
    assert_true(view_find(&f.view, PROTO_KEY_EOS) < 0);

    file = fopen(path, "a");
    fputs("{\"type\":\"ADDED\",\"object\":{\"kind\":\"Node\",\"metadata\":{\"name\":\"b\"}}}\n"
          "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Node\",\"metadata\":{\"name\":\"a\"}}}\n",
          file);
    fclose(file);
    assert_true(pump_until(&f, has_key, "Node/b"));
    assert_true(view_find(&f.view, "Node/a") < 0);
    assert_true(view_find(&f.view, PROTO_KEY_EOS) < 0);
    /* Following has no end, so it is never "caught up". */
    send_progress(&f, "admin", watcher_run_id(f.w), 0, 0, NULL);
    assert_true(pump_until(&f, lag_contains, "has no end"));
    assert_int_equal(watcher_verdict_of(f.w, "admin", clock_now_ms()), WATCHER_RUNNING);
    fixture_stop(&f);
    unlink(path);
}

/* ---- status ----------------------------------------------------------------- */

static bool status_file_equals(fixture *f, const void *expected_text)
{
    json_error_t error;
    json_t *expected = json_loads(expected_text, 0, &error);
    json_t *got = json_load_file(f->status_file, 0, &error);
    bool same = got && json_equal(got, expected);
    json_decref(expected);
    json_decref(got);
    return same;
}

static void test_object_status_is_logged_and_written_to_the_status_file(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, DATA_DIR "watch-with-bad-line.ndjson", false, 0);
    capture_begin();
    send_object_status(&f, "Service/hostrule-ns/my-svc", "10.10.10.100", NULL);
    bool written = pump_until(
        &f, status_file_equals,
        "{\"Service/hostrule-ns/my-svc\":{\"ingress\":[{\"ip\":\"10.10.10.100\"}],"
        "\"error\":null}}");
    char *log = capture_end();
    assert_true(written);
    assert_non_null(
        strstr(log, "status Service hostrule-ns/my-svc: loadBalancer.ingress ip 10.10.10.100"));
    free(log);

    capture_begin();
    zmq_send(f.push, "\x93\x01\x02", 3, 0); /* not a status message */
    send_object_status(&f, "Service/ns/x", NULL, "Pool ns-x-TCP-80: port 0 is invalid");
    send_object_status(&f, "Service/hostrule-ns/my-svc", NULL, NULL);
    written = pump_until(
        &f, status_file_equals,
        "{\"Service/hostrule-ns/my-svc\":{\"ingress\":[],\"error\":null},"
        "\"Service/ns/x\":{\"ingress\":[],\"error\":\"Pool ns-x-TCP-80: port 0 is invalid\"}}");
    log = capture_end();
    assert_true(written);
    assert_non_null(strstr(log, "status: dropped a malformed message"));
    assert_non_null(strstr(log, "status Service ns/x: error Pool ns-x-TCP-80: port 0 is invalid"));
    assert_non_null(strstr(log, "status Service hostrule-ns/my-svc: loadBalancer.ingress cleared"));
    /* The temporary file was renamed over the status file, not left behind. */
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", f.status_file);
    assert_int_equal(access(tmp, F_OK), -1);
    free(log);
    fixture_stop(&f);
}

static void test_the_same_status_again_is_not_logged_again(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, DATA_DIR "watch-with-bad-line.ndjson", false, 0);
    capture_begin();
    send_object_status(&f, "Service/a/b", "10.0.0.1", NULL);
    send_object_status(&f, "Service/a/b", "10.0.0.1", NULL);
    send_object_status(&f, "Service/a/c", "10.0.0.2", NULL);
    bool written = pump_until(
        &f, status_file_equals,
        "{\"Service/a/b\":{\"ingress\":[{\"ip\":\"10.0.0.1\"}],\"error\":null},"
        "\"Service/a/c\":{\"ingress\":[{\"ip\":\"10.0.0.2\"}],\"error\":null}}");
    char *log = capture_end();
    assert_true(written);
    const char *first = strstr(log, "status Service a/b:");
    assert_non_null(first);
    assert_null(strstr(first + 1, "status Service a/b:"));
    free(log);
    fixture_stop(&f);
}

/* A namespace moves from admin to team-b: team-b's VIP stands whether
 * admin's "let go" arrives before or after it; a real clear from the
 * tenant holding the object still clears. */
static void test_a_tenant_letting_go_does_not_clear_another_tenants_status(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, DATA_DIR "watch-with-bad-line.ndjson", false, 0);
    send_tenant_status(&f, "admin", "Service/a/b", "10.0.0.1", NULL);
    send_tenant_status(&f, "team-b", "Service/a/b", "10.0.0.9", NULL);
    send_tenant_status(&f, "admin", "Service/a/b", NULL, NULL);
    send_tenant_status(&f, "admin", "Service/a/c", "10.0.0.2", NULL);
    send_tenant_status(&f, "admin", "Service/a/c", NULL, NULL);
    send_tenant_status(&f, "team-b", "Service/a/c", "10.0.0.8", NULL);
    assert_true(pump_until(&f, status_file_equals,
                           "{\"Service/a/b\":{\"ingress\":[{\"ip\":\"10.0.0.9\"}],\"error\":null},"
                           "\"Service/a/c\":{\"ingress\":[{\"ip\":\"10.0.0.8\"}],\"error\":null}}"));
    send_tenant_status(&f, "team-b", "Service/a/b", NULL, NULL);
    assert_true(pump_until(&f, status_file_equals,
                           "{\"Service/a/b\":{\"ingress\":[],\"error\":null},"
                           "\"Service/a/c\":{\"ingress\":[{\"ip\":\"10.0.0.8\"}],\"error\":null}}"));
    fixture_stop(&f);
}

/* ---- verdicts -------------------------------------------------------------- */

typedef struct {
    const char *tenant;
    watcher_verdict verdict;
} verdict_arg;

static bool verdict_is(fixture *f, const void *arg)
{
    const verdict_arg *want = arg;
    return watcher_verdict_of(f->w, want->tenant, clock_now_ms()) == want->verdict;
}

static bool lag_contains(fixture *f, const void *text)
{
    char lag[512];
    watcher_describe_lag(f->w, "admin", lag, sizeof lag);
    return strstr(lag, text) != NULL;
}

static void print_failures(fixture *f, char *text, size_t len)
{
    FILE *out = tmpfile();
    assert_non_null(out);
    watcher_print_failures(f->w, "admin", out);
    rewind(out);
    size_t n = fread(text, 1, len - 1, out);
    text[n] = '\0';
    fclose(out);
}

static void test_caught_up_only_when_the_tenant_applied_this_runs_end(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, DATA_DIR "watch-with-bad-line.ndjson", false, 0);
    assert_true(pump_until(&f, replay_done, NULL));
    assert_true(pump_until(&f, lag_contains, "no progress from the syncer of tenant admin"));

    uint64_t run = watcher_run_id(f.w);
    send_progress(&f, "admin", run - 1, 0, 0, NULL); /* a previous run's end */
    send_progress(&f, "other", run, 0, 0, NULL);     /* another tenant */
    send_progress(&f, "admin", 0, 3, 0, NULL);
    assert_true(pump_until(&f, lag_contains,
                           "the syncer of tenant admin has not reached the end of this replay: "
                           "3 of 3 model(s) applied, 3 pending, 0 failed"));
    assert_int_equal(watcher_verdict_of(f.w, "admin", clock_now_ms()), WATCHER_RUNNING);

    send_progress(&f, "admin", run, 0, 0, NULL);
    verdict_arg want = {"admin", WATCHER_CAUGHT_UP};
    assert_true(pump_until(&f, verdict_is, &want));
    fixture_stop(&f);
}

static void test_models_refused_by_the_controller_fail_the_run_with_one_line_each(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, DATA_DIR "watch-with-bad-line.ndjson", false, 0);
    assert_true(pump_until(&f, replay_done, NULL));
    send_object_status(&f, "Service/ns/x", NULL, "Invalid port 0");
    send_object_status(&f, "Service/ns/ok", "10.0.0.9", NULL);
    send_progress_of(&f, "admin", watcher_run_id(f.w), 0, 1, "Invalid port 0",
                     (model_set){2, 0xab}, (model_set){1, 0xa});
    verdict_arg want = {"admin", WATCHER_FAILED};
    assert_true(pump_until(&f, verdict_is, &want));

    char text[1024];
    print_failures(&f, text, sizeof text);
    /* The last line says how many are missing and why. */
    assert_string_equal(text,
                        "kavi-watcher: Service ns/x: Invalid port 0\n"
                        "kavi-watcher: tenant admin applied 1 of 2 models; 1 missing; "
                        "last controller error: Invalid port 0\n");
    fixture_stop(&f);
}

static bool progress_applied_is(fixture *f, const void *count)
{
    char lag[512], want[64];
    watcher_describe_lag(f->w, "admin", lag, sizeof lag);
    snprintf(want, sizeof want, "applied %u", *(const unsigned *)count);
    return strstr(lag, want) != NULL;
}

/* The syncer reached the end with nothing pending or refused, but what it
 * applied is not what the planner published (a model lost on the way, or
 * an older version): never success; a failure once the bus had the time
 * to repair it, saying what is missing. */
static void test_an_applied_set_short_of_the_published_one_is_not_success(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, DATA_DIR "watch-with-bad-line.ndjson", false, 0);
    assert_true(pump_until(&f, replay_done, NULL));
    uint64_t run = watcher_run_id(f.w);

    /* Same count, another digest: a model in a version not published. */
    send_progress_of(&f, "admin", run, 0, 0, NULL, (model_set){5, 0x1111}, (model_set){5, 0x2222});
    unsigned five = 5;
    assert_true(pump_until(&f, progress_applied_is, &five));
    int64_t now = clock_now_ms();
    assert_int_equal(watcher_verdict_of(f.w, "admin", now), WATCHER_RUNNING);
    assert_int_equal(watcher_verdict_of(f.w, "admin", now + WATCHER_VERIFY_GRACE_MS + 1000),
                     WATCHER_FAILED);
    char text[1024];
    print_failures(&f, text, sizeof text);
    assert_non_null(strstr(text, "tenant admin applied 5 models, but not all in the versions "
                                 "the planner published"));

    /* A fifth lost on the way: the line counts them. */
    send_progress_of(&f, "admin", run, 0, 0, NULL, (model_set){1000, 0x1}, (model_set){800, 0x2});
    unsigned eight_hundred = 800;
    assert_true(pump_until(&f, progress_applied_is, &eight_hundred));
    now = clock_now_ms();
    assert_int_equal(watcher_verdict_of(f.w, "admin", now), WATCHER_RUNNING);
    assert_int_equal(watcher_verdict_of(f.w, "admin", now + WATCHER_VERIFY_GRACE_MS + 1000),
                     WATCHER_FAILED);
    print_failures(&f, text, sizeof text);
    assert_string_equal(text, "kavi-watcher: tenant admin applied 800 of 1000 models; 200 "
                              "missing; the controller refused none: they never reached the "
                              "syncer\n");

    /* The bus re-sent them and the syncer applied them: success. */
    send_progress_of(&f, "admin", run, 0, 0, NULL, (model_set){1000, 0x1}, (model_set){1000, 0x1});
    verdict_arg want = {"admin", WATCHER_CAUGHT_UP};
    assert_true(pump_until(&f, verdict_is, &want));
    fixture_stop(&f);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_publishes_projections_and_markers_a_subscriber_sees),
        cmocka_unit_test(test_a_rejected_modification_keeps_the_previous_state),
        cmocka_unit_test(test_replay_reads_in_batches_and_marks_synced_after_the_last_event),
        cmocka_unit_test(test_follow_marks_synced_without_eos_and_publishes_appended_events),
        cmocka_unit_test(test_object_status_is_logged_and_written_to_the_status_file),
        cmocka_unit_test(test_the_same_status_again_is_not_logged_again),
        cmocka_unit_test(test_a_tenant_letting_go_does_not_clear_another_tenants_status),
        cmocka_unit_test(test_caught_up_only_when_the_tenant_applied_this_runs_end),
        cmocka_unit_test(test_models_refused_by_the_controller_fail_the_run_with_one_line_each),
        cmocka_unit_test(test_an_applied_set_short_of_the_published_one_is_not_success),
    };
    log_init("test_watcher_loop", LOG_INFO);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
