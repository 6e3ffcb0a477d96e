/* The syncer against a misbehaving controller: with each of the simulator's
 * faults on, reconciling must still converge to exactly the state the
 * models ask for (every object once, pools with exactly their servers,
 * nothing left over) without ever creating an object twice.
 *
 * Every test plays the same scenario, driven as the syncer's loop drives
 * reconcile (retry transient failures, reload the cache when the controller
 * contradicted it), with a deadline instead of fixed sleeps:
 *   1. apply model a (ports 80 and 443) and model b;
 *   2. apply a's next version (port 80 only, other servers), delete b.
 *   test_syncer_faults [test-name-glob] */
#include <pthread.h>
#include <time.h>

#include "tests/unit/test_syncer_kit.h"

static const int ports_80_443[] = {80, 443};
static const int port_80[] = {80};

#define A_V1_SERVERS "10.0.0.3:31080,10.0.0.4:31080"
#define A_V2_SERVERS "10.0.0.4:31080,10.0.0.5:31080,10.0.0.6:31080"

typedef struct {
    kit_env env;
    proto_model *a1;
    proto_model *a2;
    proto_model *b;
    reconcile_held held_a;
    reconcile_held held_b;
    char vip_a[64];
    unsigned passes; /* reconcile calls that ended transient */
} scenario;

static void scenario_start(scenario *sc, const avisim_options_t *opts)
{
    memset(sc, 0, sizeof *sc);
    kit_env_start(&sc->env, opts);
    sc->a1 = kit_l4_model("ns", "a", ports_80_443, 2, A_V1_SERVERS);
    sc->a2 = kit_l4_model("ns", "a", port_80, 1, A_V2_SERVERS);
    sc->b = kit_l4_model("ns", "b", port_80, 1, "10.0.1.1:30080");
}

static void scenario_stop(scenario *sc)
{
    reconcile_held_clear(&sc->held_a);
    reconcile_held_clear(&sc->held_b);
    proto_model_destroy(&sc->a1);
    proto_model_destroy(&sc->a2);
    proto_model_destroy(&sc->b);
    kit_env_stop(&sc->env);
}

/* What the syncer does after a pass the controller contradicted. */
static void reload_cache_if_suspect(scenario *sc, const reconcile_outcome *o, int64_t deadline)
{
    if (!o->cache_suspect)
        return;
    while (avi_cache_load(sc->env.cache, sc->env.session) != KV_OK) {
        if (clock_now_ms() > deadline)
            fail_msg("cache reload: %s", avi_session_error(sc->env.session));
    }
}

/* Applies m until it lands; every failure on the way must be transient. */
static void converge_apply(scenario *sc, const proto_model *m, reconcile_held *held,
                           reconcile_outcome *o)
{
    int64_t deadline = clock_now_ms() + KIT_DEADLINE_MS;
    for (;;) {
        int rc = reconcile_apply(o, sc->env.session, sc->env.cache, m, held);
        if (rc == KV_OK)
            return;
        if (o->result != RECONCILE_TRANSIENT)
            fail_msg("apply %s refused under a transient fault: %s", m->name,
                     o->error ? o->error : kv_strerror(rc));
        if (clock_now_ms() > deadline)
            fail_msg("apply %s did not converge: %s", m->name, o->error ? o->error : "");
        sc->passes++;
        reload_cache_if_suspect(sc, o, deadline);
    }
}

static void converge_delete(scenario *sc, reconcile_held *held)
{
    reconcile_outcome o = {0};
    int64_t deadline = clock_now_ms() + KIT_DEADLINE_MS;
    for (;;) {
        int rc = reconcile_delete(&o, sc->env.session, sc->env.cache, held);
        if (rc == KV_OK)
            break;
        if (o.result != RECONCILE_TRANSIENT)
            fail_msg("delete refused under a transient fault: %s", o.error ? o.error : "");
        if (clock_now_ms() > deadline)
            fail_msg("delete did not converge: %s", o.error ? o.error : "");
        sc->passes++;
        reload_cache_if_suspect(sc, &o, deadline);
    }
    reconcile_outcome_clear(&o);
}

static void scenario_phase1(scenario *sc)
{
    reconcile_outcome o = {0};
    converge_apply(sc, sc->a1, &sc->held_a, &o);
    assert_int_equal(o.n_vips, 1);
    snprintf(sc->vip_a, sizeof sc->vip_a, "%s", o.vips[0]);
    reconcile_outcome_clear(&o);
    converge_apply(sc, sc->b, &sc->held_b, &o);
    assert_int_equal(o.n_vips, 1);
    assert_string_not_equal(o.vips[0], sc->vip_a);
    reconcile_outcome_clear(&o);
}

static void scenario_phase2(scenario *sc)
{
    reconcile_outcome o = {0};
    converge_apply(sc, sc->a2, &sc->held_a, &o);
    /* The VIP the Service was given stays: the vsvip was never recreated. */
    assert_int_equal(o.n_vips, 1);
    assert_string_equal(o.vips[0], sc->vip_a);
    reconcile_outcome_clear(&o);
    converge_delete(sc, &sc->held_b);
    assert_int_equal(sc->held_b.n, 0);
    assert_int_equal(sc->held_a.n, sc->a2->n_objects);
}

/* ---- the final state ---------------------------------------------------------- */

static bool server_listed(const json_t *servers, const json_t *want)
{
    const char *addr = json_string_value(json_object_get(json_object_get(want, "ip"), "addr"));
    json_int_t port = json_integer_value(json_object_get(want, "port"));
    size_t i;
    json_t *s;
    json_array_foreach(servers, i, s) {
        const char *a = json_string_value(json_object_get(json_object_get(s, "ip"), "addr"));
        if (a && strcmp(a, addr) == 0 && json_integer_value(json_object_get(s, "port")) == port)
            return true;
    }
    return false;
}

/* The controller holds exactly m's objects (each once, with m's checksum),
 * pools with exactly m's servers, and nothing else in any tenant. */
static void expect_controller_holds_exactly(const kit_env *env, const proto_model *m)
{
    char *text = avisim_state_json(env->sim);
    assert_non_null(text);
    json_t *state = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(state);
    assert_int_equal(json_object_size(state), 1); /* admin only */
    json_t *admin = json_object_get(state, "admin");

    size_t total = 0;
    const char *type;
    json_t *list;
    json_object_foreach(admin, type, list) {
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o) {
            const char *name = json_string_value(json_object_get(o, "name"));
            const proto_avi_object *want = kit_model_find(m, type, name);
            if (!want)
                fail_msg("unexpected %s %s on the controller", type, name);
            /* Lists are sorted by name: a duplicate would sit next to it. */
            const char *next = json_string_value(
                json_object_get(json_array_get(list, i + 1), "name"));
            if (next && strcmp(next, name) == 0)
                fail_msg("%s %s exists twice", type, name);
            /* A type without checksum field must hold the model's body. */
            const char *sum_field = avi_type_checksum_field(type);
            if (sum_field)
                assert_string_equal(json_string_value(json_object_get(o, sum_field)),
                                    want->checksum);
            else if (!avi_type_holds(want->body, o))
                fail_msg("%s %s does not hold the model's body", type, name);
            if (strcmp(type, "pool") == 0) {
                const json_t *have = json_object_get(o, "servers");
                const json_t *servers = json_object_get(want->body, "servers");
                assert_int_equal(json_array_size(have), json_array_size(servers));
                size_t k;
                json_t *srv;
                json_array_foreach(servers, k, srv) {
                    if (!server_listed(have, srv))
                        fail_msg("pool %s lacks a server of the model", name);
                }
            }
            total++;
        }
    }
    assert_int_equal(total, m->n_objects);
    json_decref(state);
}

/* No object was ever created twice: for every object of m, the log holds
 * exactly one successful POST (a retry that found it created gets 409). */
static void expect_each_object_created_once(const kit_env *env, const proto_model *m)
{
    json_t *log = kit_http(env->port, "GET", "/_sim/log", NULL, NULL);
    assert_non_null(log);
    for (size_t i = 0; i < m->n_objects; i++) {
        int created = 0;
        size_t k;
        json_t *e;
        json_array_foreach(log, k, e) {
            const char *method = json_string_value(json_object_get(e, "method"));
            const char *type = json_string_value(json_object_get(e, "type"));
            const char *name = json_string_value(json_object_get(e, "name"));
            if (method && type && name && strcmp(method, "POST") == 0 &&
                strcmp(type, m->objects[i].type) == 0 && strcmp(name, m->objects[i].name) == 0 &&
                json_integer_value(json_object_get(e, "status")) == 201)
                created++;
        }
        if (created != 1)
            fail_msg("%s %s created %d times", m->objects[i].type, m->objects[i].name, created);
    }
    json_decref(log);
}

/* With the faults off, one more pass costs nothing: the cache is true. */
static void expect_converged(scenario *sc)
{
    kit_faults(&sc->env, NULL);
    expect_controller_holds_exactly(&sc->env, sc->a2);
    expect_each_object_created_once(&sc->env, sc->a2);
    kit_reset_log(&sc->env);
    reconcile_outcome o = {0};
    kit_apply_expect(&sc->env, sc->a2, &sc->held_a, KV_OK, &o);
    assert_int_equal(kit_writes(&sc->env), 0);
    json_t *counters = kit_http(sc->env.port, "GET", "/_sim/counters", NULL, NULL);
    assert_int_equal(json_integer_value(json_object_get(counters, "total")), 0);
    json_decref(counters);
    reconcile_outcome_clear(&o);
}

/* How many requests of the log had this status. */
static int log_status_count(const kit_env *env, long status)
{
    json_t *log = kit_http(env->port, "GET", "/_sim/log", NULL, NULL);
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(log, i, e) {
        if (json_integer_value(json_object_get(e, "status")) == status)
            n++;
    }
    json_decref(log);
    return n;
}

/* ---- one test per fault --------------------------------------------------------- */

static void test_converges_with_added_latency(void **state)
{
    (void)state;
    scenario sc;
    scenario_start(&sc, NULL);
    kit_faults(&sc.env, "{\"latency_ms\": 200}");
    int64_t t0 = clock_now_ms();

    scenario_phase1(&sc);
    scenario_phase2(&sc);

    /* The fault was on: every request took at least the added latency. */
    json_t *counters = kit_http(sc.env.port, "GET", "/_sim/counters", NULL, NULL);
    json_int_t requests = json_integer_value(json_object_get(counters, "total"));
    json_decref(counters);
    assert_true(clock_now_ms() - t0 >= 200 * (int64_t)requests);
    assert_int_equal(sc.passes, 0); /* slow is not failing */
    expect_converged(&sc);
    scenario_stop(&sc);
}

static void test_converges_with_dropped_connections(void **state)
{
    (void)state;
    scenario sc;
    scenario_start(&sc, NULL);
    kit_faults(&sc.env, "{\"drop_rate\": 0.3, \"seed\": 11}");

    scenario_phase1(&sc);
    scenario_phase2(&sc);

    assert_true(log_status_count(&sc.env, 0) > 0); /* some were dropped */
    expect_converged(&sc);
    scenario_stop(&sc);
}

/* The harder drop: the write lands but its answer is lost, so the retry
 * meets its own earlier POST (409), PUT (412) or DELETE (404). */
static void test_converges_when_answers_are_lost_after_the_write(void **state)
{
    (void)state;
    scenario sc;
    scenario_start(&sc, NULL);
    kit_faults(&sc.env, "{\"drop_response_rate\": 0.3, \"seed\": 5}");

    scenario_phase1(&sc);
    scenario_phase2(&sc);

    expect_converged(&sc);
    scenario_stop(&sc);
}

static void test_converges_under_rate_limit_429(void **state)
{
    (void)state;
    scenario sc;
    scenario_start(&sc, NULL);
    kit_faults(&sc.env, "{\"rate_limit_burst\": 2}");

    scenario_phase1(&sc);
    scenario_phase2(&sc);

    assert_true(log_status_count(&sc.env, 429) > 0); /* the limit did bite */
    expect_converged(&sc);
    scenario_stop(&sc);
}

static void test_converges_with_502_error_fraction(void **state)
{
    (void)state;
    scenario sc;
    scenario_start(&sc, NULL);
    kit_faults(&sc.env, "{\"error_rate\": 0.3, \"error_status\": 502, \"seed\": 3}");

    scenario_phase1(&sc);
    scenario_phase2(&sc);

    assert_true(log_status_count(&sc.env, 502) > 0);
    expect_converged(&sc);
    scenario_stop(&sc);
}

/* Expires every session from another thread as soon as the controller has
 * seen the first pool written, i.e. in the middle of model a's first pass. */
typedef struct {
    int port;
    int fired; /* 1 expired, -1 gave up */
} expirer;

static long expirer_http(int port, const char *method, const char *path, const char *body,
                         char *out, size_t out_len)
{
    char url[256];
    kit_buffer b = {0};
    long code = 0;
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, kit_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (out && out_len)
        snprintf(out, out_len, "%s", b.data ? b.data : "");
    free(b.data);
    curl_easy_cleanup(c);
    return code;
}

static void *expirer_run(void *arg)
{
    expirer *x = arg;
    int64_t deadline = clock_now_ms() + KIT_DEADLINE_MS;
    char text[4096];
    struct timespec tick = {0, 2 * 1000 * 1000};
    while (clock_now_ms() < deadline) {
        if (expirer_http(x->port, "GET", "/_sim/counters", NULL, text, sizeof text) == 200 &&
            strstr(text, "\"POST pool\"")) {
            x->fired = expirer_http(x->port, "POST", "/_sim/faults",
                                    "{\"latency_ms\": 50, \"expire_sessions\": true}", NULL,
                                    0) == 200
                           ? 1
                           : -1;
            return NULL;
        }
        nanosleep(&tick, NULL);
    }
    x->fired = -1;
    return NULL;
}

static void test_converges_when_the_session_expires_mid_run(void **state)
{
    (void)state;
    scenario sc;
    scenario_start(&sc, NULL);
    /* Latency gives the other thread time to act between two requests. */
    kit_faults(&sc.env, "{\"latency_ms\": 50}");
    expirer x = {.port = sc.env.port};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, expirer_run, &x), 0);

    scenario_phase1(&sc);
    pthread_join(th, NULL);
    assert_int_equal(x.fired, 1);
    /* Once more between the phases, as an idle timeout would. */
    kit_faults(&sc.env, "{\"expire_sessions\": true}");
    scenario_phase2(&sc);

    assert_int_equal(avi_session_logins(sc.env.session), 3); /* one login per expiry */
    assert_true(log_status_count(&sc.env, 401) >= 2);
    assert_int_equal(sc.passes, 0); /* re-login is transparent */
    expect_converged(&sc);
    scenario_stop(&sc);
}

/* A session the controller invalidated (the user's password changed,
 * alb-sdk #1279) answers 419: the syncer logs in again, as on 401. */
static void test_converges_when_the_session_is_invalidated(void **state)
{
    (void)state;
    scenario sc;
    scenario_start(&sc, NULL);
    scenario_phase1(&sc);
    kit_faults(&sc.env, "{\"invalidate_sessions\": true}");
    scenario_phase2(&sc);

    assert_int_equal(avi_session_logins(sc.env.session), 2);
    assert_int_equal(log_status_count(&sc.env, 419), 1);
    assert_int_equal(sc.passes, 0); /* re-login is transparent */
    expect_converged(&sc);
    scenario_stop(&sc);
}

static void test_converges_after_upgrade_in_progress_clears(void **state)
{
    (void)state;
    scenario sc;
    scenario_start(&sc, NULL);
    reconcile_outcome o = {0};
    kit_faults(&sc.env, "{\"upgrade_in_progress\": true}");

    /* Nothing can be written: transient, with the controller's reason. */
    kit_apply_expect(&sc.env, sc.a1, &sc.held_a, KV_ERR_AGAIN, &o);
    assert_int_equal(o.result, RECONCILE_TRANSIENT);
    assert_non_null(strstr(o.error, "Configuration is disallowed during upgrade"));
    assert_int_equal(kit_count(&sc.env, "POST pool"), 1); /* 403s are not hammered */
    assert_false(kit_exists(&sc.env, "pool", "kavi--ns-a-TCP-80"));
    reconcile_outcome_clear(&o);

    kit_faults(&sc.env, NULL);
    scenario_phase1(&sc);

    /* An upgrade starts again: the next version waits, the old one stays. */
    kit_faults(&sc.env, "{\"upgrade_in_progress\": true}");
    kit_apply_expect(&sc.env, sc.a2, &sc.held_a, KV_ERR_AGAIN, &o);
    assert_int_equal(o.result, RECONCILE_TRANSIENT);
    assert_non_null(strstr(o.error, "Configuration is disallowed during upgrade"));
    assert_true(kit_exists(&sc.env, "pool", "kavi--ns-a-TCP-443"));
    reconcile_outcome_clear(&o);
    reconcile_delete(&o, sc.env.session, sc.env.cache, &sc.held_b);
    assert_int_equal(o.result, RECONCILE_TRANSIENT);
    assert_true(kit_exists(&sc.env, "virtualservice", "kavi--ns-b"));
    reconcile_outcome_clear(&o);

    kit_faults(&sc.env, NULL);
    scenario_phase2(&sc);

    assert_true(log_status_count(&sc.env, 403) >= 3);
    expect_converged(&sc);
    scenario_stop(&sc);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_converges_with_added_latency),
        cmocka_unit_test(test_converges_with_dropped_connections),
        cmocka_unit_test(test_converges_when_answers_are_lost_after_the_write),
        cmocka_unit_test(test_converges_under_rate_limit_429),
        cmocka_unit_test(test_converges_with_502_error_fraction),
        cmocka_unit_test(test_converges_when_the_session_expires_mid_run),
        cmocka_unit_test(test_converges_when_the_session_is_invalidated),
        cmocka_unit_test(test_converges_after_upgrade_in_progress_clears),
    };
    KIT_RUN(tests, argc, argv);
}
