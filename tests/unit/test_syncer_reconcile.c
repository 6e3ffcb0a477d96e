/* Reconciling models against the in-process Avi Controller simulator:
 * order of writes, zero-cost re-applies, updates, shrinking, deletion,
 * adoption, recovery from a controller that changed behind our back, and
 * garbage collection.
 *   test_syncer_reconcile [test-name-glob] */
#include "tests/unit/test_syncer_kit.h"

static const int port_80[] = {80};
static const int ports_80_443[] = {80, 443};

static void test_model_objects_are_created_leaves_first(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    proto_model *m = kit_l4_model("ns", "svc", ports_80_443, 2, "10.0.0.3:31080,10.0.0.4:31080");
    reconcile_held held = {0};
    reconcile_outcome o = {0};

    kit_apply_expect(&env, m, &held, KV_OK, &o);

    char *log = kit_write_log(&env);
    long pool80 = kit_position(log, "POST pool kavi--ns-svc-TCP-80 201");
    long pool443 = kit_position(log, "POST pool kavi--ns-svc-TCP-443 201");
    long l4 = kit_position(log, "POST l4policyset kavi--ns-svc 201");
    long vsvip = kit_position(log, "POST vsvip kavi--ns-svc 201");
    long vs = kit_position(log, "POST virtualservice kavi--ns-svc 201");
    assert_true(pool80 < l4 && pool443 < l4);
    assert_true(l4 < vsvip);
    assert_true(vsvip < vs);
    assert_int_equal(kit_writes(&env), 5);
    /* The VIP the controller allocated, for the Service's status. */
    assert_int_equal(o.n_vips, 1);
    assert_string_equal(o.vips[0], "10.10.10.100");
    assert_int_equal(held.n, 5);

    free(log);
    reconcile_outcome_clear(&o);
    reconcile_held_clear(&held);
    proto_model_destroy(&m);
    kit_env_stop(&env);
}

static void test_unchanged_model_costs_no_writes_even_after_restart(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    proto_model *m = kit_l4_model("ns", "svc", port_80, 1, "10.0.0.3:31080");
    reconcile_held held = {0};
    reconcile_outcome o = {0};
    kit_apply_expect(&env, m, &held, KV_OK, NULL);
    kit_reset_log(&env);

    kit_apply_expect(&env, m, &held, KV_OK, NULL);
    assert_int_equal(kit_writes(&env), 0);
    json_t *counters = kit_http(env.port, "GET", "/_sim/counters", NULL, NULL);
    assert_int_equal(json_integer_value(json_object_get(counters, "total")), 0); /* no GET either */
    json_decref(counters);

    /* A restarted syncer: fresh cache from the controller, same answer. */
    avi_cache_destroy(&env.cache);
    assert_int_equal(avi_cache_new(&env.cache, KIT_CLUSTER, KIT_CREATED_BY, KIT_PREFIX), KV_OK);
    assert_int_equal(avi_cache_load(env.cache, env.session), KV_OK);
    reconcile_held fresh = {0};
    kit_apply_expect(&env, m, &fresh, KV_OK, &o);
    assert_int_equal(kit_writes(&env), 0);
    assert_int_equal(o.n_vips, 1);
    assert_string_equal(o.vips[0], "10.10.10.100");

    reconcile_outcome_clear(&o);
    reconcile_held_clear(&fresh);
    reconcile_held_clear(&held);
    proto_model_destroy(&m);
    kit_env_stop(&env);
}

static void test_changed_pool_costs_exactly_one_put(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    proto_model *v1 = kit_l4_model("ns", "svc", port_80, 1, "10.0.0.3:31080");
    proto_model *v2 = kit_l4_model("ns", "svc", port_80, 1, "10.0.0.3:31080,10.0.0.4:31080");
    reconcile_held held = {0};
    kit_apply_expect(&env, v1, &held, KV_OK, NULL);
    kit_reset_log(&env);

    kit_apply_expect(&env, v2, &held, KV_OK, NULL);

    assert_int_equal(kit_writes(&env), 1);
    assert_int_equal(kit_count(&env, "PUT pool"), 1);
    json_t *pool = kit_state_object(&env, "pool", "kavi--ns-svc-TCP-80");
    assert_int_equal(json_array_size(json_object_get(pool, "servers")), 2);
    assert_string_equal(
        json_string_value(json_object_get(pool, "cloud_config_cksum")),
        kit_model_find(v2, "pool", "kavi--ns-svc-TCP-80")->checksum);

    json_decref(pool);
    reconcile_held_clear(&held);
    proto_model_destroy(&v1);
    proto_model_destroy(&v2);
    kit_env_stop(&env);
}

static void test_shrunk_model_deletes_removed_objects_referrers_first(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    /* v1: two ports, the 443 pool watched by a health monitor of its own. */
    proto_model *v1 = kit_l4_model("ns", "svc", ports_80_443, 2, "10.0.0.3:31080");
    kit_model_add(v1, "healthmonitor", "kavi--ns-svc-hm",
                  json_pack("{s:s, s:i}", "type", "HEALTH_MONITOR_HTTP", "monitor_port", 30111));
    json_t *pool443 = kit_model_find(v1, "pool", "kavi--ns-svc-TCP-443")->body;
    json_object_set_new(pool443, "health_monitor_refs",
                        json_pack("[s]", "/api/healthmonitor/?name=kavi--ns-svc-hm"));
    proto_model *v2 = kit_l4_model("ns", "svc", port_80, 1, "10.0.0.3:31080");
    reconcile_held held = {0};
    kit_apply_expect(&env, v1, &held, KV_OK, NULL);
    assert_true(kit_exists(&env, "healthmonitor", "kavi--ns-svc-hm"));
    kit_reset_log(&env);

    kit_apply_expect(&env, v2, &held, KV_OK, NULL);

    char *log = kit_write_log(&env);
    long put_l4 = kit_position(log, "PUT l4policyset kavi--ns-svc 200");
    long del_pool = kit_position(log, "DELETE pool kavi--ns-svc-TCP-443 204");
    long del_hm = kit_position(log, "DELETE healthmonitor kavi--ns-svc-hm 204");
    assert_true(put_l4 < del_pool); /* the policy stops pointing at it first */
    assert_true(del_pool < del_hm); /* the referrer goes before what it refers to */
    assert_false(kit_exists(&env, "pool", "kavi--ns-svc-TCP-443"));
    assert_false(kit_exists(&env, "healthmonitor", "kavi--ns-svc-hm"));
    assert_true(kit_exists(&env, "pool", "kavi--ns-svc-TCP-80"));
    assert_int_equal(held.n, 4);

    free(log);
    reconcile_held_clear(&held);
    proto_model_destroy(&v1);
    proto_model_destroy(&v2);
    kit_env_stop(&env);
}

static void test_deleted_model_removes_all_its_objects_and_nothing_else(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    kit_create(&env, "pool", "{\"name\": \"users-own-pool\"}");
    proto_model *a = kit_l4_model("ns", "a", port_80, 1, "10.0.0.3:31080");
    proto_model *b = kit_l4_model("ns", "b", port_80, 1, "10.0.0.3:31081");
    reconcile_held held_a = {0};
    reconcile_held held_b = {0};
    reconcile_outcome o = {0};
    kit_apply_expect(&env, a, &held_a, KV_OK, NULL);
    kit_apply_expect(&env, b, &held_b, KV_OK, NULL);
    kit_reset_log(&env);

    assert_int_equal(reconcile_delete(&o, env.session, env.cache, &held_a), KV_OK);

    char *log = kit_write_log(&env);
    long vs = kit_position(log, "DELETE virtualservice kavi--ns-a 204");
    long vsvip = kit_position(log, "DELETE vsvip kavi--ns-a 204");
    long l4 = kit_position(log, "DELETE l4policyset kavi--ns-a 204");
    long pool = kit_position(log, "DELETE pool kavi--ns-a-TCP-80 204");
    assert_true(vs < vsvip && vsvip < l4 && l4 < pool);
    assert_int_equal(kit_writes(&env), 4);
    assert_int_equal(held_a.n, 0);
    assert_false(kit_exists(&env, "virtualservice", "kavi--ns-a"));
    assert_true(kit_exists(&env, "virtualservice", "kavi--ns-b"));
    assert_true(kit_exists(&env, "pool", "kavi--ns-b-TCP-80"));
    assert_true(kit_exists(&env, "pool", "users-own-pool"));

    free(log);
    reconcile_outcome_clear(&o);
    reconcile_held_clear(&held_a);
    reconcile_held_clear(&held_b);
    proto_model_destroy(&a);
    proto_model_destroy(&b);
    kit_env_stop(&env);
}

static void test_existing_object_with_the_same_name_is_adopted(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    /* Left by an earlier run whose cache we never saw (another created_by). */
    kit_create(&env, "pool", "{\"name\": \"kavi--ns-svc-TCP-80\", \"created_by\": \"someone\"}");
    proto_model *m = kit_l4_model("ns", "svc", port_80, 1, "10.0.0.3:31080");
    reconcile_held held = {0};
    kit_reset_log(&env);

    kit_apply_expect(&env, m, &held, KV_OK, NULL);

    char *log = kit_write_log(&env);
    long conflict = kit_position(log, "POST pool kavi--ns-svc-TCP-80 409");
    long put = kit_position(log, "PUT pool kavi--ns-svc-TCP-80 200");
    assert_true(conflict < put);
    assert_int_equal(kit_count(&env, "GET pool"), 1); /* read by name */
    json_t *pool = kit_state_object(&env, "pool", "kavi--ns-svc-TCP-80");
    assert_string_equal(json_string_value(json_object_get(pool, "created_by")), KIT_CREATED_BY);
    assert_string_equal(json_string_value(json_object_get(pool, "cloud_config_cksum")),
                        kit_model_find(m, "pool", "kavi--ns-svc-TCP-80")->checksum);
    assert_true(kit_exists(&env, "virtualservice", "kavi--ns-svc"));

    json_decref(pool);
    free(log);
    reconcile_held_clear(&held);
    proto_model_destroy(&m);
    kit_env_stop(&env);
}

static void test_object_deleted_behind_our_back_is_recreated(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    proto_model *v1 = kit_model_new("kavi--lonely", "Service/ns/lonely");
    kit_model_add(v1, "pool", "kavi--lonely", json_pack("{s:s}", "description", "v1"));
    proto_model *v2 = kit_model_new("kavi--lonely", "Service/ns/lonely");
    kit_model_add(v2, "pool", "kavi--lonely", json_pack("{s:s}", "description", "v2"));
    reconcile_held held = {0};
    kit_apply_expect(&env, v1, &held, KV_OK, NULL);
    kit_delete(&env, "pool", "kavi--lonely");
    kit_reset_log(&env);

    kit_apply_expect(&env, v2, &held, KV_OK, NULL);

    char *log = kit_write_log(&env);
    long put = kit_position(log, "PUT pool kavi--lonely 404");
    long post = kit_position(log, "POST pool kavi--lonely 201");
    assert_true(put < post);
    json_t *pool = kit_state_object(&env, "pool", "kavi--lonely");
    assert_non_null(pool);
    assert_string_equal(json_string_value(json_object_get(pool, "description")), "v2");

    json_decref(pool);
    free(log);
    reconcile_held_clear(&held);
    proto_model_destroy(&v1);
    proto_model_destroy(&v2);
    kit_env_stop(&env);
}

static void test_object_changed_behind_our_back_is_reread_and_written_once(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    proto_model *v1 = kit_model_new("kavi--edited", NULL);
    kit_model_add(v1, "pool", "kavi--edited", json_pack("{s:s}", "description", "v1"));
    proto_model *v2 = kit_model_new("kavi--edited", NULL);
    kit_model_add(v2, "pool", "kavi--edited", json_pack("{s:s}", "description", "v2"));
    reconcile_held held = {0};
    kit_apply_expect(&env, v1, &held, KV_OK, NULL);
    /* Someone edits the pool: its _last_modified moves past our cache's. */
    avi_session_t *other = NULL;
    assert_int_equal(avi_session_new(&other, env.cfg, NULL), KV_OK);
    char path[256];
    snprintf(path, sizeof path, "/api/pool/%s",
             avi_cache_get(env.cache, "pool", "kavi--edited")->uuid);
    json_t *edit = json_pack("{s:s, s:s}", "name", "kavi--edited", "description", "by hand");
    assert_int_equal(avi_session_request(other, "PUT", path, edit, NULL, NULL), KV_OK);
    kit_reset_log(&env);

    kit_apply_expect(&env, v2, &held, KV_OK, NULL);

    char *log = kit_write_log(&env);
    long stale = kit_position(log, "PUT pool kavi--edited 412");
    long fresh = kit_position(log, "PUT pool kavi--edited 200");
    assert_true(stale < fresh);
    json_t *pool = kit_state_object(&env, "pool", "kavi--edited");
    assert_string_equal(json_string_value(json_object_get(pool, "description")), "v2");

    json_decref(pool);
    json_decref(edit);
    free(log);
    avi_session_destroy(&other);
    reconcile_held_clear(&held);
    proto_model_destroy(&v1);
    proto_model_destroy(&v2);
    kit_env_stop(&env);
}

static void test_expired_session_during_reconcile_is_transparent(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    proto_model *v1 = kit_l4_model("ns", "svc", port_80, 1, "10.0.0.3:31080");
    proto_model *v2 = kit_l4_model("ns", "svc", port_80, 1, "10.0.0.5:31080");
    reconcile_held held = {0};
    kit_apply_expect(&env, v1, &held, KV_OK, NULL);
    kit_faults(&env, "{\"expire_sessions\": true}");

    kit_apply_expect(&env, v2, &held, KV_OK, NULL);

    assert_int_equal(avi_session_logins(env.session), 2);
    json_t *pool = kit_state_object(&env, "pool", "kavi--ns-svc-TCP-80");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(json_object_get(pool, "servers"), 0),
                                            "ip"),
                            "addr")),
                        "10.0.0.5");
    json_decref(pool);
    reconcile_held_clear(&held);
    proto_model_destroy(&v1);
    proto_model_destroy(&v2);
    kit_env_stop(&env);
}

static void test_flaky_controller_converges_through_retries(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    proto_model *m = kit_l4_model("ns", "svc", ports_80_443, 2, "10.0.0.3:31080");
    reconcile_held held = {0};
    reconcile_outcome o = {0};
    kit_faults(&env, "{\"error_rate\": 0.5, \"error_status\": 503}");

    int rc = KV_ERR_AGAIN;
    int passes = 0;
    for (; passes < 50 && rc != KV_OK; passes++) {
        rc = reconcile_apply(&o, env.session, env.cache, m, &held);
        /* Every failure under 503s is transient, never a refusal. */
        assert_true(rc == KV_OK || o.result == RECONCILE_TRANSIENT);
    }
    assert_int_equal(rc, KV_OK);
    kit_faults(&env, NULL);

    /* Converged to exactly one copy of each object. */
    assert_true(kit_exists(&env, "virtualservice", "kavi--ns-svc"));
    assert_true(kit_exists(&env, "pool", "kavi--ns-svc-TCP-443"));
    assert_int_equal(o.n_vips, 1);
    kit_reset_log(&env);
    kit_apply_expect(&env, m, &held, KV_OK, NULL);
    assert_int_equal(kit_writes(&env), 0);

    reconcile_outcome_clear(&o);
    reconcile_held_clear(&held);
    proto_model_destroy(&m);
    kit_env_stop(&env);
}

static void test_invalid_object_is_refused_with_the_controllers_message(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    proto_model *bad = kit_l4_model("ns", "bad", port_80, 1, "10.0.0.3:70000");
    proto_model *good = kit_l4_model("ns", "good", port_80, 1, "10.0.0.3:31080");
    reconcile_held held_bad = {0};
    reconcile_held held_good = {0};
    reconcile_outcome o = {0};

    kit_apply_expect(&env, bad, &held_bad, KV_ERR_HTTP, &o);
    assert_int_equal(o.result, RECONCILE_REFUSED);
    assert_non_null(strstr(o.error, "servers[0].port"));
    assert_int_equal(kit_count(&env, "POST pool"), 1);  /* no retry of a 400 */
    assert_int_equal(kit_count(&env, "POST virtualservice"), 0); /* stopped there */

    kit_apply_expect(&env, good, &held_good, KV_OK, NULL);
    assert_true(kit_exists(&env, "virtualservice", "kavi--ns-good"));

    reconcile_outcome_clear(&o);
    reconcile_held_clear(&held_bad);
    reconcile_held_clear(&held_good);
    proto_model_destroy(&bad);
    proto_model_destroy(&good);
    kit_env_stop(&env);
}

static void test_exhausted_vip_pool_is_transient_not_refused(void **state)
{
    (void)state;
    kit_env env;
    avisim_options_t opts = {.vip_range = "10.10.10.100-10.10.10.100"};
    kit_env_start(&env, &opts);
    proto_model *a = kit_l4_model("ns", "a", port_80, 1, "10.0.0.3:31080");
    proto_model *b = kit_l4_model("ns", "b", port_80, 1, "10.0.0.3:31081");
    reconcile_held held_a = {0};
    reconcile_held held_b = {0};
    reconcile_outcome o = {0};
    kit_apply_expect(&env, a, &held_a, KV_OK, NULL);

    kit_apply_expect(&env, b, &held_b, KV_ERR_AGAIN, &o);
    assert_int_equal(o.result, RECONCILE_TRANSIENT);
    assert_non_null(strstr(o.error, "No available free IPs"));

    /* Once a's VIP is released, b lands. */
    assert_int_equal(reconcile_delete(&o, env.session, env.cache, &held_a), KV_OK);
    kit_apply_expect(&env, b, &held_b, KV_OK, &o);
    assert_string_equal(o.vips[0], "10.10.10.100");

    reconcile_outcome_clear(&o);
    reconcile_held_clear(&held_a);
    reconcile_held_clear(&held_b);
    proto_model_destroy(&a);
    proto_model_destroy(&b);
    kit_env_stop(&env);
}

/* GC's notion of "wanted": the objects of the models passed as payload. */
typedef struct {
    proto_model **models;
    size_t n;
} wanted_models;

static bool wanted_by_models(const char *type, const char *name, void *payload)
{
    const wanted_models *w = payload;
    for (size_t i = 0; i < w->n; i++)
        if (kit_model_find(w->models[i], type, name))
            return true;
    return false;
}

static void test_gc_deletes_unwanted_owned_objects_referrers_first(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    kit_create(&env, "pool", "{\"name\": \"users-own-pool\"}");
    proto_model *keep = kit_l4_model("ns", "keep", port_80, 1, "10.0.0.3:31080");
    proto_model *gone = kit_l4_model("ns", "gone", port_80, 1, "10.0.0.3:31081");
    reconcile_held held_keep = {0};
    reconcile_held held_gone = {0};
    reconcile_outcome o = {0};
    kit_apply_expect(&env, keep, &held_keep, KV_OK, NULL);
    kit_apply_expect(&env, gone, &held_gone, KV_OK, NULL);
    /* A restarted syncer knows only what the controller lists. */
    avi_cache_destroy(&env.cache);
    assert_int_equal(avi_cache_new(&env.cache, KIT_CLUSTER, KIT_CREATED_BY, KIT_PREFIX), KV_OK);
    assert_int_equal(avi_cache_load(env.cache, env.session), KV_OK);
    kit_reset_log(&env);

    wanted_models w = {.models = &keep, .n = 1};
    assert_int_equal(reconcile_gc(&o, env.session, env.cache, wanted_by_models, &w), KV_OK);

    char *log = kit_write_log(&env);
    long vs = kit_position(log, "DELETE virtualservice kavi--ns-gone 204");
    long vsvip = kit_position(log, "DELETE vsvip kavi--ns-gone 204");
    long l4 = kit_position(log, "DELETE l4policyset kavi--ns-gone 204");
    long pool = kit_position(log, "DELETE pool kavi--ns-gone-TCP-80 204");
    assert_true(vs < vsvip && vsvip < l4 && l4 < pool);
    assert_int_equal(kit_writes(&env), 4);
    assert_true(kit_exists(&env, "virtualservice", "kavi--ns-keep"));
    assert_true(kit_exists(&env, "pool", "users-own-pool"));

    free(log);
    reconcile_outcome_clear(&o);
    reconcile_held_clear(&held_keep);
    reconcile_held_clear(&held_gone);
    proto_model_destroy(&keep);
    proto_model_destroy(&gone);
    kit_env_stop(&env);
}

/* A model with a health monitor as the planner writes one for ETP Local:
 * neither HealthMonitor nor L4PolicySet has a checksum field. */
static proto_model *model_with_monitor(int send_interval)
{
    proto_model *m = kit_l4_model("ns", "hc", port_80, 1, "10.0.0.3:31080");
    kit_model_add(m, "healthmonitor", "kavi--ns-hc-hc",
                  json_pack("{s:s, s:i, s:i, s:{s:s, s:[s]}, s:s}", "type", "HEALTH_MONITOR_HTTP",
                            "monitor_port", 32000, "send_interval", send_interval, "http_monitor",
                            "http_request", "GET /healthz HTTP/1.0", "http_response_code",
                            "HTTP_2XX", "tenant_ref", "/api/tenant/?name=admin"));
    return m;
}

static void restart_cache(kit_env *env)
{
    avi_cache_destroy(&env->cache);
    assert_int_equal(avi_cache_new(&env->cache, KIT_CLUSTER, KIT_CREATED_BY, KIT_PREFIX), KV_OK);
    assert_int_equal(avi_cache_load(env->cache, env->session), KV_OK);
}

static void test_types_without_checksum_field_cost_no_writes_after_restart(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    proto_model *m = model_with_monitor(5);
    reconcile_held held = {0};
    kit_apply_expect(&env, m, &held, KV_OK, NULL);
    json_t *hm = kit_state_object(&env, "healthmonitor", "kavi--ns-hc-hc");
    assert_null(json_object_get(hm, "cloud_config_cksum"));
    assert_null(json_object_get(hm, "created_by"));
    json_decref(hm);

    restart_cache(&env);
    kit_reset_log(&env);
    reconcile_held fresh = {0};
    kit_apply_expect(&env, m, &fresh, KV_OK, NULL);
    assert_int_equal(kit_writes(&env), 0);

    /* A changed monitor is one PUT, after a restart as before one. */
    proto_model *changed = model_with_monitor(10);
    restart_cache(&env);
    kit_reset_log(&env);
    kit_apply_expect(&env, changed, &fresh, KV_OK, NULL);
    assert_int_equal(kit_writes(&env), 1);
    assert_int_equal(kit_count(&env, "PUT healthmonitor"), 1);
    kit_reset_log(&env);
    kit_apply_expect(&env, changed, &fresh, KV_OK, NULL);
    assert_int_equal(kit_writes(&env), 0);

    reconcile_held_clear(&fresh);
    reconcile_held_clear(&held);
    proto_model_destroy(&changed);
    proto_model_destroy(&m);
    kit_env_stop(&env);
}

static bool nothing_wanted(const char *type, const char *name, void *payload)
{
    (void)type;
    (void)name;
    (void)payload;
    return false;
}

/* Names like kavi's, but without this cluster's identity: made by hand, or
 * another cluster's. Garbage collection (and so deleteConfig) leaves them. */
static void test_gc_leaves_hand_made_objects_with_kavi_names_alone(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    kit_create(&env, "vsvip", "{\"name\": \"kavi--ns-hand\"}");
    kit_create(&env, "healthmonitor",
               "{\"name\": \"kavi--ns-hand-hc\", \"type\": \"HEALTH_MONITOR_TCP\","
               " \"markers\": [{\"key\": \"clustername\", \"values\": [\"kavi-\"]}]}");
    kit_create(&env, "pool", "{\"name\": \"kavi--ns-hand-TCP-80\", \"created_by\": \"ako-kavi\"}");
    kit_create(&env, "l4policyset",
               "{\"name\": \"kavi--ns-hand\", \"created_by\": \"admin\", " KIT_MARKERS "}");
    kit_create(&env, "pool",
               "{\"name\": \"kavi--ns-mine-TCP-80\", \"created_by\": \"ako-kavi\", " KIT_MARKERS
               "}");
    restart_cache(&env);
    assert_int_equal(avi_cache_size(env.cache), 1);
    kit_reset_log(&env);

    reconcile_outcome o = {0};
    assert_int_equal(reconcile_gc(&o, env.session, env.cache, nothing_wanted, NULL), KV_OK);

    assert_int_equal(kit_writes(&env), 1);
    assert_false(kit_exists(&env, "pool", "kavi--ns-mine-TCP-80"));
    assert_true(kit_exists(&env, "vsvip", "kavi--ns-hand"));
    assert_true(kit_exists(&env, "healthmonitor", "kavi--ns-hand-hc"));
    assert_true(kit_exists(&env, "pool", "kavi--ns-hand-TCP-80"));
    assert_true(kit_exists(&env, "l4policyset", "kavi--ns-hand"));
    reconcile_outcome_clear(&o);
    kit_env_stop(&env);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_objects_are_created_leaves_first),
        cmocka_unit_test(test_unchanged_model_costs_no_writes_even_after_restart),
        cmocka_unit_test(test_types_without_checksum_field_cost_no_writes_after_restart),
        cmocka_unit_test(test_gc_leaves_hand_made_objects_with_kavi_names_alone),
        cmocka_unit_test(test_changed_pool_costs_exactly_one_put),
        cmocka_unit_test(test_shrunk_model_deletes_removed_objects_referrers_first),
        cmocka_unit_test(test_deleted_model_removes_all_its_objects_and_nothing_else),
        cmocka_unit_test(test_existing_object_with_the_same_name_is_adopted),
        cmocka_unit_test(test_object_deleted_behind_our_back_is_recreated),
        cmocka_unit_test(test_object_changed_behind_our_back_is_reread_and_written_once),
        cmocka_unit_test(test_expired_session_during_reconcile_is_transparent),
        cmocka_unit_test(test_flaky_controller_converges_through_retries),
        cmocka_unit_test(test_invalid_object_is_refused_with_the_controllers_message),
        cmocka_unit_test(test_exhausted_vip_pool_is_transient_not_refused),
        cmocka_unit_test(test_gc_deletes_unwanted_owned_objects_referrers_first),
    };
    KIT_RUN(tests, argc, argv);
}
