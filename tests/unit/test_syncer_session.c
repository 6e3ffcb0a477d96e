/* The syncer's REST session and controller cache, against the in-process
 * Avi Controller simulator:
 *   test_syncer_session [test-name-glob] */
#include "tests/unit/test_syncer_kit.h"

static void test_login_sends_csrf_token_so_writes_are_accepted(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    long status = 0;
    json_t *created = NULL;
    json_t *body = json_pack("{s:s, s:s}", "name", KIT_PREFIX "p", "created_by", KIT_CREATED_BY);

    /* A write needs the session cookie and X-CSRFToken = csrftoken cookie;
     * the simulator answers 401 with bare text otherwise. */
    int rc = avi_session_request(env.session, "POST", "/api/pool", body, &status, &created);
    assert_int_equal(rc, KV_OK);
    assert_int_equal(status, 201);
    assert_string_equal(json_string_value(json_object_get(created, "name")), KIT_PREFIX "p");
    assert_non_null(json_string_value(json_object_get(created, "uuid")));
    assert_int_equal(avi_session_logins(env.session), 1);
    assert_int_equal(kit_count(&env, "POST login"), 1);
    assert_int_equal(kit_count(&env, "POST pool"), 1);

    json_decref(created);
    json_decref(body);
    kit_env_stop(&env);
}

static void test_wrong_password_is_reported_once_not_retried(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    kv_config *cfg = kit_config(env.port, NULL);
    free(cfg->password);
    cfg->password = strdup("wrong");
    avi_session_t *s = NULL;
    assert_int_equal(avi_session_new(&s, cfg, NULL), KV_OK);
    long status = 0;

    int rc = avi_session_request(s, "GET", "/api/pool", NULL, &status, NULL);
    assert_int_equal(rc, KV_ERR_HTTP);
    assert_int_equal(status, 401);
    assert_non_null(strstr(avi_session_error(s), "Invalid credentials"));
    assert_int_equal(kit_count(&env, "POST login"), 1);

    avi_session_destroy(&s);
    config_destroy(&cfg);
    kit_env_stop(&env);
}

static void test_expired_session_logs_in_again_transparently(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    long status = 0;
    assert_int_equal(avi_session_request(env.session, "GET", "/api/pool", NULL, &status, NULL),
                     KV_OK);
    kit_faults(&env, "{\"expire_sessions\": true}");

    json_t *body = json_pack("{s:s}", "name", KIT_PREFIX "after-expiry");
    int rc = avi_session_request(env.session, "POST", "/api/pool", body, &status, NULL);
    assert_int_equal(rc, KV_OK);
    assert_int_equal(status, 201);
    assert_int_equal(avi_session_logins(env.session), 2);
    assert_true(kit_exists(&env, "pool", KIT_PREFIX "after-expiry"));

    json_decref(body);
    kit_env_stop(&env);
}

static void test_controller_error_names_method_path_status_and_text(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    long status = 0;
    json_t *response = NULL;
    json_t *body = json_pack("{s:s, s:[{s:{s:s, s:s}, s:i}]}", "name", KIT_PREFIX "bad",
                             "servers", "ip", "addr", "10.0.0.1", "type", "V4", "port", 70000);

    int rc = avi_session_request(env.session, "POST", "/api/pool", body, &status, &response);
    assert_int_equal(rc, KV_ERR_HTTP);
    assert_int_equal(status, 400);
    const char *error = avi_session_error(env.session);
    assert_non_null(strstr(error, "POST /api/pool"));
    assert_non_null(strstr(error, "400"));
    assert_non_null(strstr(error, "servers[0].port"));
    assert_non_null(strstr(avi_session_message(env.session), "servers[0].port"));
    assert_int_equal(kit_count(&env, "POST pool"), 1); /* a 400 is not retried */

    json_decref(response);
    json_decref(body);
    kit_env_stop(&env);
}

static void test_server_errors_are_retried_then_reported_transient(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    long status = 0;
    assert_int_equal(avi_session_login(env.session), KV_OK);
    kit_faults(&env, "{\"error_rate\": 1.0, \"error_status\": 503}");

    int rc = avi_session_request(env.session, "GET", "/api/pool", NULL, &status, NULL);
    assert_int_equal(rc, KV_ERR_AGAIN);
    assert_int_equal(status, 503);
    assert_int_equal(kit_count(&env, "GET pool"), 4); /* the default: 4 attempts */
    assert_non_null(strstr(avi_session_error(env.session), "503"));

    kit_faults(&env, NULL);
    rc = avi_session_request(env.session, "GET", "/api/pool", NULL, &status, NULL);
    assert_int_equal(rc, KV_OK);
    kit_env_stop(&env);
}

static void test_unreachable_controller_is_transient(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    int port = env.port;
    avisim_destroy(&env.sim); /* nothing listens there now */
    kv_config *cfg = kit_config(port, NULL);
    avi_session_t *s = NULL;
    assert_int_equal(avi_session_new(&s, cfg, NULL), KV_OK);
    avi_session_set_retry(s, 2, 1, 2);
    long status = -1;

    int rc = avi_session_request(s, "GET", "/api/pool", NULL, &status, NULL);
    assert_int_equal(rc, KV_ERR_AGAIN);
    assert_int_equal(status, 0);

    avi_session_destroy(&s);
    config_destroy(&cfg);
    kit_env_stop(&env);
}

static void test_missing_controller_host_or_credentials_is_refused(void **state)
{
    (void)state;
    char err[256];
    kv_config *cfg = NULL;
    avi_session_t *s = NULL;
    kit_log_init();
    assert_int_equal(config_load_string(&cfg, "clusterName: kavi\n", "test", err, sizeof err), 0);
    assert_int_equal(avi_session_new(&s, cfg, NULL), KV_ERR_INVALID);
    config_destroy(&cfg);
    assert_int_equal(config_load_string(&cfg,
                                        "clusterName: kavi\ncontrollerHost: 10.0.0.1\n"
                                        "credentials:\n  username: admin\n",
                                        "test", err, sizeof err),
                     0);
    assert_int_equal(avi_session_new(&s, cfg, NULL), KV_ERR_INVALID);
    assert_null(s);
    config_destroy(&cfg);
}

static void test_host_without_scheme_means_https(void **state)
{
    (void)state;
    char err[256];
    kv_config *cfg = NULL;
    avi_session_t *s = NULL;
    kit_log_init();
    assert_int_equal(config_load_string(&cfg,
                                        "clusterName: kavi\ncontrollerHost: avi.example.com/\n"
                                        "credentials:\n  username: admin\n  password: x\n",
                                        "test", err, sizeof err),
                     0);
    assert_int_equal(avi_session_new(&s, cfg, NULL), KV_OK);
    assert_string_equal(avi_session_base(s), "https://avi.example.com");
    assert_string_equal(avi_session_tenant(s), "admin");
    avi_session_destroy(&s);
    config_destroy(&cfg);
}

static void test_cache_holds_only_owned_objects(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    kit_create(&env, "pool", "{\"name\": \"kavi--mine\", \"created_by\": \"ako-kavi\","
                             " \"cloud_config_cksum\": \"42\", " KIT_MARKERS "}");
    kit_create(&env, "pool", "{\"name\": \"someone-elses\", \"created_by\": \"admin\"}");
    kit_create(&env, "pool", "{\"name\": \"kavi--other-cluster-tool\", \"created_by\": \"ako-x\"}");
    /* created_by alone is not the identity: the marker is missing. */
    kit_create(&env, "pool", "{\"name\": \"kavi--copied\", \"created_by\": \"ako-kavi\"}");
    kit_create(&env, "vsvip", "{\"name\": \"kavi--mine\", \"vsvip_cloud_config_cksum\": \"7\","
                              " \"vip\": [{\"vip_id\": \"0\", \"auto_allocate_ip\": true}], "
                              KIT_MARKERS "}");
    kit_create(&env, "vsvip", "{\"name\": \"x-kavi--lookalike\", " KIT_MARKERS "}");
    kit_create(&env, "vsvip", "{\"name\": \"kavi--hand-made\"}");

    assert_int_equal(avi_cache_load(env.cache, env.session), KV_OK);

    assert_int_equal(avi_cache_size(env.cache), 2);
    const avi_cache_entry *pool = avi_cache_get(env.cache, "pool", "kavi--mine");
    assert_non_null(pool);
    assert_string_equal(pool->checksum, "42");
    assert_non_null(pool->last_modified);
    assert_true(strncmp(pool->uuid, "pool-", 5) == 0);
    const avi_cache_entry *vsvip = avi_cache_get(env.cache, "vsvip", "kavi--mine");
    assert_non_null(vsvip);
    assert_string_equal(vsvip->checksum, "7");
    assert_int_equal(vsvip->n_vips, 1);
    assert_string_equal(vsvip->vips[0], "10.10.10.100");
    assert_null(avi_cache_get(env.cache, "pool", "someone-elses"));
    assert_null(avi_cache_get(env.cache, "pool", "kavi--copied"));
    assert_null(avi_cache_get(env.cache, "vsvip", "kavi--hand-made"));
    /* Nor is the marker without the name (AKO's gateway marks ako-gw-<c>--). */
    assert_null(avi_cache_get(env.cache, "vsvip", "x-kavi--lookalike"));
    kit_env_stop(&env);
}

static void test_cache_follows_next_across_pages(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    char json[256];
    for (int i = 0; i < 450; i++) {
        snprintf(json, sizeof json,
                 "{\"name\": \"kavi--p%03d\", \"created_by\": \"ako-kavi\", " KIT_MARKERS "}", i);
        kit_create(&env, "pool", json);
    }
    kit_reset_log(&env);

    assert_int_equal(avi_cache_load(env.cache, env.session), KV_OK);

    assert_int_equal(avi_cache_size(env.cache), 450);
    assert_non_null(avi_cache_get(env.cache, "pool", "kavi--p000"));
    assert_non_null(avi_cache_get(env.cache, "pool", "kavi--p449"));
    assert_int_equal(kit_count(&env, "GET pool"), 3); /* 200 + 200 + 50 */
    kit_env_stop(&env);
}

/* HTTPS is verified: a controller whose certificate no trusted CA signed is
 * refused with a message naming the certificate; controllerCAFile fixes it. */
static void test_https_is_verified_against_the_configured_ca(void **state)
{
    (void)state;
    char dir[] = "/tmp/kavi-tls-XXXXXX", cmd[1024], cert[128], key[128], yaml[512], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 1 -subj /CN=avi-controller "
             "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             key, cert);
    assert_int_equal(system(cmd), 0);
    kit_log_init();
    avisim_t *sim = NULL;
    avisim_options_t opts = {.tls_cert_file = cert, .tls_key_file = key};
    assert_int_equal(avisim_new(&sim, &opts), 0);

    for (int trusted = 0; trusted <= 1; trusted++) {
        kv_config *cfg = NULL;
        avi_session_t *s = NULL;
        snprintf(yaml, sizeof yaml,
                 "clusterName: kavi\ncontrollerHost: https://127.0.0.1:%d\n%s%s%s"
                 "credentials:\n  username: admin\n  password: avi123\n",
                 avisim_port(sim), trusted ? "controllerCAFile: " : "", trusted ? cert : "",
                 trusted ? "\n" : "");
        assert_int_equal(config_load_string(&cfg, yaml, "test", err, sizeof err), 0);
        assert_int_equal(avi_session_new(&s, cfg, NULL), KV_OK);
        avi_session_set_retry(s, 1, 5, 10);
        int rc = avi_session_login(s);
        if (trusted) {
            assert_int_equal(rc, KV_OK);
        } else {
            assert_true(rc < 0);
            if (!strstr(avi_session_error(s), "certificate"))
                fail_msg("error does not name the certificate: %s", avi_session_error(s));
        }
        avi_session_destroy(&s);
        config_destroy(&cfg);
    }
    avisim_destroy(&sim);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

/* ---- several calls in flight ---------------------------------------------------- */

typedef struct {
    int answered;
    int ok;
    int rc;
    long status;
    char message[256];
} async_answers;

static void on_async_answer(void *payload, const avi_answer *a)
{
    async_answers *t = payload;
    t->answered++;
    t->ok += a->rc == KV_OK;
    t->rc = a->rc;
    t->status = a->status;
    snprintf(t->message, sizeof t->message, "%s", a->message);
}

static void run_session_until_answered(avi_session_t *s, const async_answers *t, int n)
{
    int64_t deadline = clock_now_ms() + KIT_DEADLINE_MS;
    while (t->answered < n) {
        if (clock_now_ms() > deadline)
            fail_msg("only %d of %d calls answered", t->answered, n);
        zmq_pollitem_t items[AVI_SESSION_MAX_POLLITEMS];
        int k = avi_session_pollitems(s, items, AVI_SESSION_MAX_POLLITEMS);
        int64_t wait = avi_session_timeout_ms(s, clock_now_ms());
        zmq_poll(items, k, wait > 100 ? 100 : (long)wait);
        avi_session_step(s, clock_now_ms());
    }
}

static void start_pool_posts(kit_env *env, async_answers *t, const char *stem, int n)
{
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, KIT_PREFIX "%s-%d", stem, i);
        json_t *body = json_pack("{s:s, s:s}", "name", name, "created_by", KIT_CREATED_BY);
        assert_int_equal(avi_session_start(env->session, "POST", "/api/pool", body,
                                           on_async_answer, t, NULL),
                         KV_OK);
        json_decref(body);
    }
}

static void test_calls_wait_for_one_login_then_all_go(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    async_answers t = {0};

    start_pool_posts(&env, &t, "first", 12);
    assert_int_equal(avi_session_pending(env.session), 12);
    run_session_until_answered(env.session, &t, 12);

    assert_int_equal(t.ok, 12);
    assert_int_equal(kit_count(&env, "POST login"), 1);
    assert_int_equal(kit_count(&env, "POST pool"), 12);
    assert_true(kit_exists(&env, "pool", KIT_PREFIX "first-11"));
    assert_int_equal(avi_session_pending(env.session), 0);
    kit_env_stop(&env);
}

static void test_expired_session_logs_in_once_and_replays_the_calls(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    async_answers t = {0};
    assert_int_equal(avi_session_login(env.session), KV_OK);
    kit_faults(&env, "{\"expire_sessions\": true}");

    /* Eight on the wire at once all meet the 401: one login, eight replays. */
    start_pool_posts(&env, &t, "replayed", 8);
    run_session_until_answered(env.session, &t, 8);

    assert_int_equal(t.ok, 8);
    assert_int_equal(avi_session_logins(env.session), 2);
    assert_int_equal(kit_count(&env, "POST login"), 2);
    assert_true(kit_exists(&env, "pool", KIT_PREFIX "replayed-7"));
    kit_env_stop(&env);
}

static void test_upgrade_in_progress_holds_the_session_not_each_call(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    async_answers t = {0};
    avi_session_set_parallel(env.session, 1);
    assert_int_equal(avi_session_login(env.session), KV_OK);
    kit_faults(&env, "{\"upgrade_in_progress\": true}");

    /* One goes out and meets the upgrade; the session holds the rest, then
     * sends them one by one, each answered without a retry of its own. */
    start_pool_posts(&env, &t, "upgrade", 5);
    run_session_until_answered(env.session, &t, 5);

    assert_int_equal(t.ok, 0);
    assert_int_equal(t.status, 403);
    assert_non_null(strstr(t.message, "disallowed during upgrade"));
    assert_int_equal(kit_count(&env, "POST pool"), 5); /* not one more */
    assert_true(avi_session_pauses(env.session) >= 1);

    kit_faults(&env, NULL);
    async_answers after = {0};
    start_pool_posts(&env, &after, "after-upgrade", 3);
    run_session_until_answered(env.session, &after, 3);
    assert_int_equal(after.ok, 3);
    kit_env_stop(&env);
}

static void test_rate_limit_backs_off_the_session_and_every_call_lands(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    async_answers t = {0};
    assert_int_equal(avi_session_login(env.session), KV_OK);
    kit_faults(&env, "{\"rate_limit_burst\": 2}");

    start_pool_posts(&env, &t, "limited", 10);
    run_session_until_answered(env.session, &t, 10);

    assert_int_equal(t.ok, 10);
    assert_true(avi_session_pauses(env.session) >= 1);
    assert_true(kit_exists(&env, "pool", KIT_PREFIX "limited-9"));
    kit_env_stop(&env);
}

static void test_cancelled_call_is_never_answered(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    async_answers kept = {0}, dropped = {0};
    avi_call_t *call = NULL;
    json_t *body = json_pack("{s:s}", "name", KIT_PREFIX "cancelled");
    assert_int_equal(avi_session_start(env.session, "POST", "/api/pool", body, on_async_answer,
                                       &dropped, &call),
                     KV_OK);
    json_decref(body);
    start_pool_posts(&env, &kept, "kept", 1);
    avi_session_cancel(env.session, &call);
    assert_null(call);
    run_session_until_answered(env.session, &kept, 1);

    assert_int_equal(kept.ok, 1);
    assert_int_equal(dropped.answered, 0);
    assert_false(kit_exists(&env, "pool", KIT_PREFIX "cancelled"));
    kit_env_stop(&env);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_sends_csrf_token_so_writes_are_accepted),
        cmocka_unit_test(test_wrong_password_is_reported_once_not_retried),
        cmocka_unit_test(test_expired_session_logs_in_again_transparently),
        cmocka_unit_test(test_controller_error_names_method_path_status_and_text),
        cmocka_unit_test(test_server_errors_are_retried_then_reported_transient),
        cmocka_unit_test(test_unreachable_controller_is_transient),
        cmocka_unit_test(test_missing_controller_host_or_credentials_is_refused),
        cmocka_unit_test(test_host_without_scheme_means_https),
        cmocka_unit_test(test_https_is_verified_against_the_configured_ca),
        cmocka_unit_test(test_cache_holds_only_owned_objects),
        cmocka_unit_test(test_cache_follows_next_across_pages),
        cmocka_unit_test(test_calls_wait_for_one_login_then_all_go),
        cmocka_unit_test(test_expired_session_logs_in_once_and_replays_the_calls),
        cmocka_unit_test(test_upgrade_in_progress_holds_the_session_not_each_call),
        cmocka_unit_test(test_rate_limit_backs_off_the_session_and_every_call_lands),
        cmocka_unit_test(test_cancelled_call_is_never_answered),
    };
    KIT_RUN(tests, argc, argv);
}
