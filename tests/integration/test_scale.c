/* test_scale.c — issue 12, "Correct at scale": the real three processes on
 * a generated cluster of thousands of Services, every pool on the
 * controller compared with an oracle that shares no code with kavi.
 *
 * tests/scale/gen_cluster.py writes the cluster (seeded, so a failure
 * replays) and its churn; tests/scale/expect_pools.py computes, from the
 * recording alone, what the controller must then hold (DESIGN.md §3). Both
 * write into the pipeline's scratch directory.
 *
 * Sizes. The plain run is the proof: 2,000 Services over 500 nodes, plus
 * churn (a rolling update of 100 replicas, a drain, nodes added and
 * removed, resourceVersion-only updates). The fault runs (each stage
 * SIGKILLed mid-run; each stage frozen past the bus's silence and snapshot
 * timeouts; a snapshot forced to be asked again) use 300 Services over 100
 * nodes so that the whole program fits a CI budget on two cores under
 * ASan; the kavi-run one-shot runs at the plain size. (At 2,000 Services,
 * release build, the SIGKILL variant also fails today: the restarted
 * planner's snapshot reaches the syncer with 480 of 2,000 models and the
 * syncer deletes the rest. Run it so with KAVI_SCALE_FAULT_SERVICES=2000
 * KAVI_SCALE_FAULT_NODES=500.) KAVI_SCALE_SERVICES / _NODES (plain),
 * KAVI_SCALE_FAULT_SERVICES / _FAULT_NODES and KAVI_SCALE_DEADLINE_S
 * change them; KAVI_SCALE_SEED the seed.
 *
 * Every wait is on an event (a view equal to the oracle's, a line in a
 * stage's log, a counter of the simulator) bounded by a deadline; the only
 * timed waits are the freezes themselves, whose length is the fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/bus.h"
#include "common/clock.h"
#include "tests/kit/kit.h"

#define PLAIN_SERVICES 2000
#define PLAIN_NODES 500
#define FAULT_SERVICES 300
#define FAULT_NODES 100
#define ENDPOINTS_PER_SERVICE 3
#define DEADLINE_S 600 /* per wait; the ASan initial sync at 2,000 Services takes ~2 min */
#define CHURN "rolling,drain,nodes,noop"
#define CHUNKS 3 /* parts of the churn, appended one at a time */
/* Room for 65,000 VIPs: the simulator's default range holds 100. */
#define VIP_RANGE "10.100.0.1-10.100.254.254"

static long env_long(const char *name, long fallback)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : fallback;
}

static int64_t deadline_ms(void) { return env_long("KAVI_SCALE_DEADLINE_S", DEADLINE_S) * 1000; }

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *python(void)
{
    const char *p = getenv("KAVI_PYTHON");
    if (p && *p)
        return p;
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

/* ---- the cluster and its oracle ------------------------------------------ */

typedef struct {
    kit_pipeline p;
    char base[320];             /* the cluster */
    char chunk[CHUNKS][320];    /* its churn: the rolling update; the drain; nodes and no-ops */
    char expect_path[CHUNKS + 1][320]; /* the oracle after base, base+chunk 1, ... */
    json_t *allowed_empty;      /* pools the oracle ever leaves empty: {name: true} */
    json_t *pool_servers;       /* servers of each pool's last write: {name: n} */
    int services, nodes;
    long pools;                 /* in the oracle's view of the base */
    unsigned long long log_seq; /* the simulator's request log read so far */
    char audit[2048];           /* the first violation seen, "" when none */
    long audited_writes;
} scale;

static void run_or_fail(const char *cmd)
{
    int status = system(cmd);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("command failed (status %d): %s", status, cmd);
}

/* Runs the oracle on the base and the first `chunks` parts of the churn. */
static void oracle(scale *s, int chunks)
{
    char cmd[2048];
    snprintf(s->expect_path[chunks], sizeof s->expect_path[chunks], "%s/expected-%d.json",
             s->p.dir, chunks);
    int n = snprintf(cmd, sizeof cmd, "%s tests/scale/expect_pools.py '%s'", python(), s->base);
    for (int c = 0; c < chunks; c++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " '%s'", s->chunk[c]);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " > '%s'", s->expect_path[chunks]);
    run_or_fail(cmd);
}

/* The oracle's view at a checkpoint (owned); loaded when needed, since
 * each holds every server of the cluster. */
static json_t *expectation(scale *s, int chunks)
{
    json_error_t err;
    json_t *view = json_load_file(s->expect_path[chunks], 0, &err);
    if (!view)
        fail_msg("%s: %s", s->expect_path[chunks], err.text);
    return view;
}

static size_t count_servers(const json_t *view)
{
    size_t n = 0;
    const char *name;
    json_t *servers;
    json_object_foreach((json_t *)json_object_get(view, "pool"), name, servers)
        n += json_array_size(servers);
    return n;
}

/* Objects the oracle expects: the least number of creations to get there. */
static size_t count_objects(const json_t *view)
{
    size_t n = 0;
    const char *type;
    json_t *slot;
    json_object_foreach((json_t *)view, type, slot)
        n += json_is_object(slot) ? json_object_size(slot) : json_array_size(slot);
    return n;
}

/* Starts the pipeline, generates the cluster into its scratch directory and
 * asks the oracle for every checkpoint. */
static void scale_start(scale *s, int services, int nodes)
{
    memset(s, 0, sizeof *s);
    s->services = services;
    s->nodes = nodes;
    avisim_options_t sim = {.vip_range = VIP_RANGE};
    assert_int_equal(kit_pipeline_start_sim(&s->p, NULL, &sim), 0);

    int64_t t0 = clock_now_ms();
    char cmd[2048];
    snprintf(s->base, sizeof s->base, "%s/base.ndjson", s->p.dir);
    for (int c = 0; c < CHUNKS; c++)
        snprintf(s->chunk[c], sizeof s->chunk[c], "%s/churn-%d.ndjson", s->p.dir, c + 1);
    snprintf(cmd, sizeof cmd,
             "%s tests/scale/gen_cluster.py --seed %ld --nodes %d --services %d --endpoints %d "
             "--churn %s --churn-parts %d --out '%s' --churn-out '%s/churn-%%d.ndjson'",
             python(), env_long("KAVI_SCALE_SEED", 1), nodes, services,
             services * ENDPOINTS_PER_SERVICE, CHURN, CHUNKS, s->base, s->p.dir);
    run_or_fail(cmd);
    s->allowed_empty = json_object();
    s->pool_servers = json_object();
    size_t pools = 0, servers_total = 0;
    for (int c = 0; c <= CHUNKS; c++) {
        oracle(s, c);
        json_t *view = expectation(s, c);
        const char *name;
        json_t *servers;
        json_object_foreach(json_object_get(view, "pool"), name, servers)
            if (json_array_size(servers) == 0)
                json_object_set_new(s->allowed_empty, name, json_true());
        if (c == 0) {
            pools = json_object_size(json_object_get(view, "pool"));
            servers_total = count_servers(view);
            s->pools = (long)pools;
        }
        json_decref(view);
    }
    printf("scale: %d Services over %d nodes: %zu pools, %zu servers; generated and "
           "oracle in %.1f s (dir %s)\n",
           services, nodes, pools, servers_total, (double)(clock_now_ms() - t0) / 1000.0,
           s->p.dir);
    fflush(stdout);
}

/* Stops the stages and checks they exit cleanly (sanitizers included). */
static void scale_stop(scale *s)
{
    char why[512] = "";
    if (!kit_pipeline_stop(&s->p, why, sizeof why))
        fail_msg("%s", why);
}

static int scale_setup(void **state)
{
    *state = calloc(1, sizeof(scale));
    return *state ? 0 : -1;
}

/* After a failure too: no stage outlives its test. */
static int scale_teardown(void **state)
{
    scale *s = *state;
    char why[512];
    if (s->p.sim)
        (void)kit_pipeline_stop(&s->p, why, sizeof why);
    json_decref(s->allowed_empty);
    json_decref(s->pool_servers);
    free(s);
    return 0;
}

/* ---- what the controller was told ----------------------------------------- */

static bool is_write(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
}

/* Reads the request log since the last call and notes the first write that
 * deleted a kavi object or emptied a pool (no servers after some) that the
 * oracle never leaves empty. Called often enough that the simulator's ring (20,000 requests)
 * never wraps between calls; if it did, that is a violation too, since
 * then nothing can be said of the writes lost. */
static void audit_writes(scale *s)
{
    json_t *log = kit_sim_log(&s->p, s->log_seq);
    if (!log) {
        if (!s->audit[0])
            snprintf(s->audit, sizeof s->audit, "cannot read the simulator's request log");
        return;
    }
    size_t i;
    json_t *entry;
    json_array_foreach(log, i, entry) {
        unsigned long long seq = (unsigned long long)json_integer_value(json_object_get(entry, "seq"));
        if (seq != s->log_seq + 1 && !s->audit[0])
            snprintf(s->audit, sizeof s->audit,
                     "the request log wrapped: requests %llu to %llu were not audited",
                     s->log_seq + 1, seq - 1);
        s->log_seq = seq;
        const char *method = json_string_value(json_object_get(entry, "method"));
        const char *type = json_string_value(json_object_get(entry, "type"));
        const char *name = json_string_value(json_object_get(entry, "name"));
        if (!method || !type || !is_write(method) || strcmp(type, "login") == 0 ||
            strcmp(type, "logout") == 0)
            continue;
        s->audited_writes++;
        bool deleted = strcmp(method, "DELETE") == 0;
        bool emptied = false;
        if (!deleted && strcmp(type, "pool") == 0 && name) {
            /* Emptied: written with no servers after it held some. A pool
             * created empty is not: its Service may come before its
             * EndpointSlice, and then empty was right at that moment. */
            size_t servers =
                json_array_size(json_object_get(json_object_get(entry, "body"), "servers"));
            size_t before = (size_t)json_integer_value(json_object_get(s->pool_servers, name));
            emptied = servers == 0 && before > 0 && !json_object_get(s->allowed_empty, name);
            json_object_set_new(s->pool_servers, name, json_integer((json_int_t)servers));
        }
        if ((deleted || emptied) && !s->audit[0]) {
            char *text = json_dumps(entry, JSON_COMPACT);
            snprintf(s->audit, sizeof s->audit, "%s: %.1500s",
                     deleted ? "deleted" : "emptied a pool the oracle never empties",
                     text ? text : "?");
            free(text);
        }
    }
    json_decref(log);
}

/* Waits until the controller holds exactly `expected`, auditing the log as
 * it goes; fails with a summary of the difference. Returns the ms taken.
 * A view of half a million servers takes seconds under ASan, so one is
 * taken only when something was written since the last one and the
 * writes have paused for a moment (or 30 s passed): the view, not the
 * pause, decides. */
static int64_t wait_for(scale *s, const json_t *expected, const char *what)
{
    int64_t start = clock_now_ms();
    int64_t until = start + deadline_ms();
    int64_t last_view = 0;
    long viewed_at_writes = -1, previous_writes = -1;
    int views = 0;
    json_t *actual = NULL;
    for (;;) {
        audit_writes(s);
        long writes = s->audited_writes;
        bool paused = writes == previous_writes;
        bool stale = clock_now_ms() - last_view > 30000;
        bool late = clock_now_ms() > until;
        previous_writes = writes;
        if (writes != viewed_at_writes && (paused || stale || late)) {
            json_decref(actual);
            actual = kit_controller_view(&s->p);
            views++;
            last_view = clock_now_ms();
            viewed_at_writes = writes;
            if (json_equal(actual, (json_t *)expected))
                break;
        }
        if (late) {
            char diff[3072];
            if (!actual)
                actual = kit_controller_view(&s->p);
            kit_view_diff(expected, actual, diff, sizeof diff);
            json_decref(actual);
            kit_dump_logs(&s->p);
            fail_msg("%s: the controller does not match the oracle after %lld s: %s", what,
                     (long long)(clock_now_ms() - start) / 1000, diff);
        }
        sleep_ms(250);
    }
    json_decref(actual);
    int64_t ms = clock_now_ms() - start;
    printf("scale: %s: matched the oracle in %.1f s (%d views)\n", what, (double)ms / 1000.0,
           views);
    fflush(stdout);
    return ms;
}

/* wait_for at a checkpoint of the oracle. */
static void wait_for_checkpoint(scale *s, int chunks, const char *what)
{
    json_t *expected = expectation(s, chunks);
    wait_for(s, expected, what);
    json_decref(expected);
}

static void assert_audit_clean(scale *s)
{
    audit_writes(s);
    if (s->audit[0])
        fail_msg("%s", s->audit);
}

/* Waits, at most `ms`, until the simulator counted `at_least` "POST pool". */
static void wait_for_pool_posts(scale *s, long at_least, int64_t ms)
{
    int64_t until = clock_now_ms() + ms;
    while (kit_sim_counter(&s->p, "POST pool") < at_least && clock_now_ms() < until) {
        audit_writes(s);
        sleep_ms(100);
    }
}

/* A fault lasting `ms`: the log is audited meanwhile, nothing waited on. */
static void hold_fault(scale *s, int64_t ms)
{
    int64_t until = clock_now_ms() + ms;
    while (clock_now_ms() < until) {
        audit_writes(s);
        sleep_ms(200);
    }
}

static void print_writes(scale *s, const char *what, int chunks)
{
    json_t *expected = expectation(s, chunks);
    printf("scale: %s: %ld POST, %ld PUT, %ld DELETE of pools; %ld writes audited; "
           "%zu objects expected (the least creations)\n",
           what, kit_sim_counter(&s->p, "POST pool"), kit_sim_counter(&s->p, "PUT pool"),
           kit_sim_counter(&s->p, "DELETE pool"), s->audited_writes, count_objects(expected));
    fflush(stdout);
    json_decref(expected);
}

static void append(scale *s, const char *path) { assert_int_equal(kit_append_file(&s->p, path), 0); }

/* ---- the tests ------------------------------------------------------------ */

/* The proof of issue 12: the whole cluster, then its churn, all there. */
static void test_plain_2000_services_500_nodes_every_pool_matches_the_oracle(void **state)
{
    scale *s = *state;
    scale_start(s, (int)env_long("KAVI_SCALE_SERVICES", PLAIN_SERVICES),
                (int)env_long("KAVI_SCALE_NODES", PLAIN_NODES));
    append(s, s->base);
    wait_for_checkpoint(s, 0, "plain: initial sync");
    print_writes(s, "plain: initial sync", 0);
    for (int c = 0; c < CHUNKS; c++)
        append(s, s->chunk[c]);
    wait_for_checkpoint(s, CHUNKS, "plain: after the churn");
    print_writes(s, "plain: after the churn", CHUNKS);
    assert_audit_clean(s);
    scale_stop(s);
}

/* Each stage is SIGKILLed while the initial sync is under way (a quarter,
 * a half, three quarters of the pools created), restarted, and everything
 * still converges, with nothing deleted or emptied on the way. */
static void test_each_stage_killed_mid_run_converges(void **state)
{
    scale *s = *state;
    scale_start(s, (int)env_long("KAVI_SCALE_FAULT_SERVICES", FAULT_SERVICES),
                (int)env_long("KAVI_SCALE_FAULT_NODES", FAULT_NODES));
    long pools = s->pools;
    int64_t t0 = clock_now_ms();
    append(s, s->base);
    for (int stage = KIT_WATCHER; stage <= KIT_SYNCER; stage++) {
        /* Progress is the trigger, not a condition: a stage that loses
         * updates may never get there, and the final check says so. */
        wait_for_pool_posts(s, pools * (stage + 1) / 4, deadline_ms() / 4);
        kit_stage_kill(&s->p, (kit_stage)stage);
        assert_int_equal(kit_stage_start(&s->p, (kit_stage)stage), 0);
        printf("scale: killed: %s restarted at %ld pools created (%.1f s in)\n",
               stage == KIT_WATCHER ? "watcher" : stage == KIT_PLANNER ? "planner" : "syncer",
               kit_sim_counter(&s->p, "POST pool"), (double)(clock_now_ms() - t0) / 1000.0);
    }
    wait_for_checkpoint(s, 0, "killed: converged after three restarts");
    for (int c = 0; c < CHUNKS; c++)
        append(s, s->chunk[c]);
    wait_for_checkpoint(s, CHUNKS, "killed: after the churn");
    assert_audit_clean(s);
    printf("scale: killed: whole variant %.1f s\n", (double)(clock_now_ms() - t0) / 1000.0);
    scale_stop(s);
}

/* Each stage in turn is frozen (SIGSTOP) longer than its subscribers'
 * silence timeout plus a snapshot timeout while a third of the churn
 * arrives, then resumed: the controller reaches the oracle's state and at
 * no moment was anything deleted or a pool emptied. */
static void test_each_stage_frozen_past_snapshot_timeout_deletes_and_empties_nothing(void **state)
{
    static const char *const names[] = {"watcher", "planner", "syncer"};
    scale *s = *state;
    scale_start(s, (int)env_long("KAVI_SCALE_FAULT_SERVICES", FAULT_SERVICES),
                (int)env_long("KAVI_SCALE_FAULT_NODES", FAULT_NODES));
    int64_t t0 = clock_now_ms();
    append(s, s->base);
    wait_for_checkpoint(s, 0, "frozen: initial sync");
    for (int stage = KIT_WATCHER; stage <= KIT_SYNCER; stage++) {
        /* The subscriber of the frozen stage's stream notices the silence. */
        kit_stage downstream = stage == KIT_SYNCER ? KIT_SYNCER : (kit_stage)(stage + 1);
        long from = kit_log_size(&s->p, downstream);
        kit_stage_freeze(&s->p, (kit_stage)stage);
        append(s, s->chunk[stage]);
        hold_fault(s, BUS_SILENCE_MS + BUS_SNAPSHOT_TIMEOUT_MS + 1000);
        bool noticed = stage != KIT_SYNCER &&
                       kit_wait_for_log(&s->p, downstream, "asking for a snapshot", from, NULL, 0);
        kit_stage_thaw(&s->p, (kit_stage)stage);
        char what[96];
        snprintf(what, sizeof what, "frozen: %s resumed after %d ms%s", names[stage],
                 BUS_SILENCE_MS + BUS_SNAPSHOT_TIMEOUT_MS + 1000,
                 stage == KIT_SYNCER ? ""
                 : noticed           ? " (its subscriber asked for a snapshot)"
                                     : " (its subscriber did not ask for a snapshot)");
        wait_for_checkpoint(s, stage + 1, what);
        assert_audit_clean(s);
    }
    printf("scale: frozen: whole variant %.1f s\n", (double)(clock_now_ms() - t0) / 1000.0);
    scale_stop(s);
}

/* A subscriber started while its publisher is frozen gets no snapshot
 * reply, asks again after BUS_SNAPSHOT_TIMEOUT_MS, and once the publisher
 * resumes has the whole state: planner ← frozen watcher, then syncer ←
 * frozen planner, each time with churn arriving meanwhile. */
static void test_snapshot_asked_again_while_publisher_frozen_converges(void **state)
{
    scale *s = *state;
    scale_start(s, (int)env_long("KAVI_SCALE_FAULT_SERVICES", FAULT_SERVICES),
                (int)env_long("KAVI_SCALE_FAULT_NODES", FAULT_NODES));
    int64_t t0 = clock_now_ms();
    append(s, s->base);
    wait_for_checkpoint(s, 0, "snapshot retry: initial sync");
    for (int k = 0; k < 2; k++) {
        kit_stage publisher = k == 0 ? KIT_WATCHER : KIT_PLANNER;
        kit_stage subscriber = k == 0 ? KIT_PLANNER : KIT_SYNCER;
        kit_stage_kill(&s->p, subscriber);
        kit_stage_freeze(&s->p, publisher);
        long from = kit_log_size(&s->p, subscriber);
        assert_int_equal(kit_stage_start(&s->p, subscriber), 0);
        append(s, s->chunk[k]);
        if (!kit_wait_for_log(&s->p, subscriber, "no snapshot reply, asking again", from, NULL,
                              BUS_SNAPSHOT_TIMEOUT_MS * 5L)) {
            kit_stage_thaw(&s->p, publisher);
            kit_dump_logs(&s->p);
            fail_msg("kavi-%s never asked again for the snapshot its frozen publisher did "
                     "not send",
                     k == 0 ? "planner" : "syncer");
        }
        audit_writes(s);
        kit_stage_thaw(&s->p, publisher);
        wait_for_checkpoint(s, k + 1,
                 k == 0 ? "snapshot retry: planner after the frozen watcher"
                        : "snapshot retry: syncer after the frozen planner");
        assert_audit_clean(s);
    }
    append(s, s->chunk[2]);
    wait_for_checkpoint(s, CHUNKS, "snapshot retry: after the rest of the churn");
    assert_audit_clean(s);
    printf("scale: snapshot retry: whole variant %.1f s\n",
           (double)(clock_now_ms() - t0) / 1000.0);
    scale_stop(s);
}

/* scripts/kavi-run on the whole recording: exit 0 means everything is on
 * the controller already, so the view is read once, not polled. */
static void test_oneshot_kavi_run_exits_zero_with_every_pool(void **state)
{
    scale *s = *state;
    /* At the plain size: this is where today's bus loses models
     * silently (kavi-run exits 0 with a sixth of the pools missing). */
    scale_start(s, (int)env_long("KAVI_SCALE_SERVICES", PLAIN_SERVICES),
                (int)env_long("KAVI_SCALE_NODES", PLAIN_NODES));
    /* The kit's stages would fight kavi-run's for the controller: only
     * its simulator and scratch directory are used. */
    for (int stage = KIT_WATCHER; stage <= KIT_SYNCER; stage++)
        kit_stage_kill(&s->p, (kit_stage)stage);
    json_decref(kit_sim_log(&s->p, 0));

    char recording[320], config[320], output[320], cmd[2048];
    snprintf(recording, sizeof recording, "%s/whole.ndjson", s->p.dir);
    snprintf(config, sizeof config, "%s/oneshot.yaml", s->p.dir);
    snprintf(output, sizeof output, "%s/kavi-run.log", s->p.dir);
    snprintf(cmd, sizeof cmd, "cat '%s' '%s' '%s' '%s' > '%s'", s->base, s->chunk[0], s->chunk[1],
             s->chunk[2], recording);
    run_or_fail(cmd);
    /* Ports x5..x9 of this pid's slot; test_oneshot takes x0..x4. */
    int base = 10005 + (int)(getpid() % 1000) * 10;
    FILE *f = fopen(config, "w");
    assert_non_null(f);
    fprintf(f,
            "clusterName: kavi\nserviceType: NodePort\n"
            "controllerHost: http://127.0.0.1:%d\n"
            "vipNetworkList:\n  - networkName: vip-net\n"
            "credentials:\n  username: admin\n  password: avi123\n"
            "bus:\n  k8sPublish: tcp://127.0.0.1:%d\n  k8sSnapshot: tcp://127.0.0.1:%d\n"
            "  modelPublish: tcp://127.0.0.1:%d\n  modelSnapshot: tcp://127.0.0.1:%d\n"
            "  status: tcp://127.0.0.1:%d\n",
            avisim_port(s->p.sim), base, base + 1, base + 2, base + 3, base + 4);
    assert_int_equal(fclose(f), 0);
    snprintf(cmd, sizeof cmd, "scripts/kavi-run --config '%s' --replay '%s' --timeout %lld > '%s' 2>&1",
             config, recording, (long long)deadline_ms() / 1000, output);
    int64_t t0 = clock_now_ms();
    int status = system(cmd);
    int64_t ms = clock_now_ms() - t0;
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(cmd, sizeof cmd, "tail -n 30 '%s' 1>&2", output);
        if (system(cmd) != 0)
            fprintf(stderr, "(no kavi-run output)\n");
        fail_msg("kavi-run exited with status %d after %.1f s", status, (double)ms / 1000.0);
    }
    json_t *actual = kit_controller_view(&s->p);
    char diff[3072];
    json_t *expected = expectation(s, CHUNKS);
    size_t differing = kit_view_diff(expected, actual, diff, sizeof diff);
    json_decref(expected);
    json_decref(actual);
    printf("scale: oneshot: kavi-run exited 0 in %.1f s; %zu objects differ from the oracle\n",
           (double)ms / 1000.0, differing);
    if (differing)
        fail_msg("kavi-run exited 0 but the controller differs from the oracle: %s", diff);
    scale_stop(s);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_2000_services_500_nodes_every_pool_matches_the_oracle, scale_setup, scale_teardown),
        cmocka_unit_test_setup_teardown(test_each_stage_killed_mid_run_converges, scale_setup, scale_teardown),
        cmocka_unit_test_setup_teardown(test_each_stage_frozen_past_snapshot_timeout_deletes_and_empties_nothing, scale_setup, scale_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_asked_again_while_publisher_frozen_converges, scale_setup, scale_teardown),
        cmocka_unit_test_setup_teardown(test_oneshot_kavi_run_exits_zero_with_every_pool, scale_setup, scale_teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
