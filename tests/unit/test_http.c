/* The non-blocking HTTP core (common/http.c), over real HTTP to the
 * in-process Avi Controller simulator:
 *   test_http [test-name-glob] */
#include "common/http.h"

#include "tests/unit/test_syncer_kit.h"

typedef struct {
    int done;
    long status;
    int curl_code;
    bool too_large;
    size_t body_len;
    bool saw_header;
} answer;

static void on_done(void *payload, const http_response *r)
{
    answer *a = payload;
    a->done++;
    a->status = r->status;
    a->curl_code = r->curl_code;
    a->too_large = r->body_too_large;
    a->body_len = r->body_len;
}

static void on_header(void *payload, const char *line, size_t len)
{
    answer *a = payload;
    if (len >= 13 && strncasecmp(line, "content-type:", 13) == 0)
        a->saw_header = true;
}

static void start_get(http_client_t *c, int port, const char *path, answer *a, size_t body_max,
                      http_request_t **out)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    http_request_spec spec = {
        .url = url,
        .body_max = body_max,
        .timeout_ms = 10000,
        .on_header = on_header,
        .on_done = on_done,
        .payload = a,
    };
    assert_int_equal(http_client_start(c, &spec, out), KV_OK);
}

static void run_until_idle(http_client_t *c)
{
    int64_t deadline = clock_now_ms() + KIT_DEADLINE_MS;
    while (http_client_pending(c) > 0) {
        if (clock_now_ms() > deadline)
            fail_msg("requests did not finish");
        http_client_wait(c, 100);
    }
}

static void test_many_requests_run_at_once_and_each_is_answered_once(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    http_client_t *c = NULL;
    assert_int_equal(http_client_new(&c, 8), KV_OK);
    answer a[12] = {0};

    /* Unauthenticated calls: the simulator answers 401, which is all the
     * core needs to see (it knows nothing of logins). */
    for (int i = 0; i < 12; i++)
        start_get(c, env.port, "/api/pool", &a[i], 0, NULL);
    assert_int_equal(http_client_pending(c), 12);
    run_until_idle(c);

    for (int i = 0; i < 12; i++) {
        assert_int_equal(a[i].done, 1);
        assert_int_equal(a[i].curl_code, CURLE_OK);
        assert_int_equal(a[i].status, 401);
        assert_true(a[i].saw_header);
    }
    assert_int_equal(kit_count(&env, "GET pool"), 12);
    http_client_destroy(&c);
    assert_null(c);
    kit_env_stop(&env);
}

static void test_body_over_its_cap_aborts_the_transfer(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    http_client_t *c = NULL;
    assert_int_equal(http_client_new(&c, 0), KV_OK);
    answer small = {0}, roomy = {0};

    /* The simulator's faults document is a few hundred bytes. */
    start_get(c, env.port, "/_sim/faults", &small, 16, NULL);
    start_get(c, env.port, "/_sim/faults", &roomy, 0, NULL);
    run_until_idle(c);

    assert_int_equal(small.done, 1);
    assert_true(small.too_large);
    assert_int_not_equal(small.curl_code, CURLE_OK);
    assert_true(small.body_len <= 16);
    assert_int_equal(roomy.done, 1);
    assert_false(roomy.too_large);
    assert_int_equal(roomy.status, 200);
    assert_true(roomy.body_len > 16);
    http_client_destroy(&c);
    kit_env_stop(&env);
}

static void test_cancelled_request_gets_no_answer(void **state)
{
    (void)state;
    avisim_options_t opts = {.faults = "{\"latency_ms\": 300}"};
    kit_env env;
    kit_env_start(&env, &opts);
    http_client_t *c = NULL;
    assert_int_equal(http_client_new(&c, 0), KV_OK);
    answer kept = {0}, dropped = {0};
    http_request_t *handle = NULL;

    start_get(c, env.port, "/api/pool", &dropped, 0, &handle);
    start_get(c, env.port, "/api/pool", &kept, 0, NULL);
    http_client_wait(c, 10);
    http_client_cancel(c, &handle);
    assert_null(handle);
    run_until_idle(c);

    assert_int_equal(kept.done, 1);
    assert_int_equal(dropped.done, 0);
    http_client_destroy(&c);
    kit_env_stop(&env);
}

static void test_unreachable_server_is_a_transport_error(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    int port = env.port;
    avisim_destroy(&env.sim); /* nothing listens there now */
    http_client_t *c = NULL;
    assert_int_equal(http_client_new(&c, 0), KV_OK);
    answer a = {0};

    start_get(c, port, "/api/pool", &a, 0, NULL);
    run_until_idle(c);

    assert_int_equal(a.done, 1);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.curl_code, CURLE_COULDNT_CONNECT);
    http_client_destroy(&c);
    kit_env_stop(&env);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_requests_run_at_once_and_each_is_answered_once),
        cmocka_unit_test(test_body_over_its_cap_aborts_the_transfer),
        cmocka_unit_test(test_cancelled_request_gets_no_answer),
        cmocka_unit_test(test_unreachable_server_is_a_transport_error),
    };
    KIT_RUN(tests, argc, argv);
}
