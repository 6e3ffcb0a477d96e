/* scripts/kavi-run, the documented one-shot command: exits 0 once the
 * controller holds everything up to the end of the recording, and non-zero
 * with a message a user can act on otherwise. */
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
#include <unistd.h>

#include "tests/kit/kit.h"

typedef struct {
    char dir[256];
    char config[300];
    char output[300];
} oneshot;

static void oneshot_config(oneshot *o, int controller_port, const char *password)
{
    static int counter;
    snprintf(o->dir, sizeof o->dir, "/tmp/kavi-oneshot-%d-%d", (int)getpid(), ++counter);
    mkdir(o->dir, 0755);
    snprintf(o->config, sizeof o->config, "%s/kavi.yaml", o->dir);
    snprintf(o->output, sizeof o->output, "%s/output.txt", o->dir);
    int base = 10000 + (int)(getpid() % 1000) * 10; /* below the ephemeral range */
    FILE *f = fopen(o->config, "w");
    assert_non_null(f);
    fprintf(f,
            "clusterName: kavi\nserviceType: NodePort\n"
            "controllerHost: http://127.0.0.1:%d\n"
            "vipNetworkList:\n  - networkName: vip-net\n"
            "credentials:\n  username: admin\n  password: %s\n"
            "bus:\n  k8sPublish: tcp://127.0.0.1:%d\n  k8sSnapshot: tcp://127.0.0.1:%d\n"
            "  modelPublish: tcp://127.0.0.1:%d\n  modelSnapshot: tcp://127.0.0.1:%d\n"
            "  status: tcp://127.0.0.1:%d\n",
            controller_port, password, base, base + 1, base + 2, base + 3, base + 4);
    fclose(f);
}

/* Runs kavi-run and returns its exit status; its output goes to o->output. */
static int oneshot_run(oneshot *o, const char *recording, int timeout_s)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "scripts/kavi-run --config '%s' --replay '%s' --timeout %d >'%s' 2>&1",
             o->config, recording, timeout_s, o->output);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool output_contains(oneshot *o, const char *needle)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(o->output, "r");
    if (!f)
        return false;
    ssize_t n = getdelim(&text, &len, '\0', f);
    fclose(f);
    bool found = n > 0 && strstr(text, needle) != NULL;
    if (!found)
        fprintf(stderr, "kavi-run output (looking for '%s'):\n%s\n", needle, n > 0 ? text : "");
    free(text);
    return found;
}

static void test_seed_recording_is_applied_and_run_exits_zero(void **state)
{
    (void)state;
    avisim_t *sim = NULL;
    avisim_options_t opts = {0};
    assert_int_equal(avisim_new(&sim, &opts), 0);
    oneshot o;
    oneshot_config(&o, avisim_port(sim), "avi123");
    assert_int_equal(oneshot_run(&o, "tests/data/seed/two-node-local.ndjson", 120), 0);

    /* Exit 0 means it is all there already: no polling here. */
    kit_pipeline view = {.sim = sim};
    json_t *actual = kit_controller_view(&view);
    json_t *expected = json_loads(
        "{\"virtualservice\":[\"kavi--hostrule-ns-my-svc\"],\"vsvip\":[\"kavi--hostrule-ns-my-svc\"],"
        "\"l4policyset\":[\"kavi--hostrule-ns-my-svc\"],\"healthmonitor\":[\"kavi--hostrule-ns-my-svc-hc\"],"
        "\"pool\":{\"kavi--hostrule-ns-my-svc-TCP-80\":[\"k8s-cluster-worker 10.0.0.3:31080 enabled\"]}}",
        0, NULL);
    if (!json_equal(actual, expected)) {
        char *text = json_dumps(actual, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("controller holds %s", text);
    }
    json_decref(actual);
    json_decref(expected);
    avisim_destroy(&sim);
}

/* The last line of what kavi-run printed. */
static void output_last_line(oneshot *o, char *line, size_t len)
{
    char buf[1024];
    line[0] = '\0';
    FILE *f = fopen(o->output, "r");
    if (!f)
        return;
    while (fgets(buf, sizeof buf, f))
        if (buf[0] && buf[0] != '\n')
            snprintf(line, len, "%.1023s", buf);
    fclose(f);
}

/* The controller refuses one of two Services' objects: not a success,
 * and the last line says how many models are missing and the controller's
 * own words. */
static void test_a_model_the_controller_refuses_fails_the_run_naming_what_is_missing(void **state)
{
    (void)state;
    avisim_t *sim = NULL;
    avisim_options_t opts = {
        .faults = "{\"refuse_name\":\"kavi--hostrule-ns-other-svc\","
                  "\"refuse_message\":\"Invalid virtual service: tier 3 is not licensed\"}"};
    assert_int_equal(avisim_new(&sim, &opts), 0);
    oneshot o;
    oneshot_config(&o, avisim_port(sim), "avi123");
    assert_int_equal(oneshot_run(&o, "tests/data/replay/two-lb-services.ndjson", 120), 1);
    char last[1100];
    output_last_line(&o, last, sizeof last);
    if (!strstr(last, "tenant admin applied 1 of 2 models; 1 missing; last controller error: "
                      "Invalid virtual service: tier 3 is not licensed"))
        fail_msg("last line: %s", last);
    assert_true(output_contains(&o, "Service hostrule-ns/other-svc: Invalid virtual service"));
    avisim_destroy(&sim);
}

/* The controller has one free IP for two Services: the second is retried
 * (the pool may free up), so the run times out, and its last line says how
 * far it got and the controller's words. */
static void test_exhausted_ip_pool_times_out_saying_how_many_are_applied(void **state)
{
    (void)state;
    avisim_t *sim = NULL;
    avisim_options_t opts = {.vip_range = "10.10.10.100-10.10.10.100"};
    assert_int_equal(avisim_new(&sim, &opts), 0);
    oneshot o;
    oneshot_config(&o, avisim_port(sim), "avi123");
    assert_int_equal(oneshot_run(&o, "tests/data/replay/two-lb-services.ndjson", 12), 1);
    char last[1100];
    output_last_line(&o, last, sizeof last);
    if (!strstr(last, "timed out after 12 s: the syncer of tenant admin has not reached the end "
                      "of this replay: 1 of 2 model(s) applied, 1 pending, 0 failed, last error: "
                      "No available free IPs"))
        fail_msg("last line: %s", last);
    avisim_destroy(&sim);
}

static void test_refused_credentials_exit_nonzero_with_reason(void **state)
{
    (void)state;
    avisim_t *sim = NULL;
    avisim_options_t opts = {0};
    assert_int_equal(avisim_new(&sim, &opts), 0);
    oneshot o;
    oneshot_config(&o, avisim_port(sim), "wrong-password");
    assert_int_not_equal(oneshot_run(&o, "tests/data/seed/two-node-local.ndjson", 20), 0);
    assert_true(output_contains(&o, "Invalid credentials"));
    avisim_destroy(&sim);
}

static void test_unreachable_controller_exits_nonzero_with_reason(void **state)
{
    (void)state;
    oneshot o;
    oneshot_config(&o, 1, "avi123"); /* nothing listens on port 1 */
    assert_int_not_equal(oneshot_run(&o, "tests/data/seed/two-node-local.ndjson", 15), 0);
    assert_true(output_contains(&o, "127.0.0.1:1"));
}

static void test_missing_recording_is_one_line(void **state)
{
    (void)state;
    oneshot o;
    oneshot_config(&o, 1, "avi123");
    assert_int_equal(oneshot_run(&o, "/nonexistent.ndjson", 5), 2);
    assert_true(output_contains(&o, "cannot read /nonexistent.ndjson"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_recording_is_applied_and_run_exits_zero),
        cmocka_unit_test(test_a_model_the_controller_refuses_fails_the_run_naming_what_is_missing),
        cmocka_unit_test(test_exhausted_ip_pool_times_out_saying_how_many_are_applied),
        cmocka_unit_test(test_refused_credentials_exit_nonzero_with_reason),
        cmocka_unit_test(test_unreachable_controller_exits_nonzero_with_reason),
        cmocka_unit_test(test_missing_recording_is_one_line),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
