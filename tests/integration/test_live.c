/* The whole pipeline on a live API server: the Kubernetes API simulator
 * (in process) → kavi-watcher via a kubeconfig → kavi-planner →
 * kavi-syncer → the Avi Controller simulator (in process). Changes made on
 * the API server reach the controller through watches, dropped watches and
 * 410 relists; a watcher restarted after missing a deletion still removes
 * the Service's objects; the VIP is written back to the Service status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/k8ssim/k8ssim.h"
#include "tests/kit/kit.h"

#define SEED_RECORDING "tests/data/seed/two-node-local.ndjson"
#define POOL "kavi--hostrule-ns-my-svc-TCP-80"
#define WORKER "k8s-cluster-worker 10.0.0.3:31080 enabled"
#define MASTER "k8s-cluster-master 10.0.0.2:31080 enabled"
#define TOKEN "live-test-token"

typedef struct {
    k8ssim_t *api;
    kit_pipeline pipeline;
    char kubeconfig[300];
    json_t *slice; /* the seed's EndpointSlice of my-svc, to edit */
} live;

/* Applies every object of the seed recording; keeps my-svc's slice. */
static void load_seed(live *l)
{
    FILE *f = fopen(SEED_RECORDING, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *event = json_loads(line, 0, NULL);
        json_t *object = json_object_get(event, "object");
        char *text = json_dumps(object, JSON_COMPACT);
        assert_true(k8ssim_apply(l->api, text) > 0);
        const char *name = json_string_value(json_object_get(json_object_get(object, "metadata"), "name"));
        if (strcmp(json_string_value(json_object_get(object, "kind")), "EndpointSlice") == 0 &&
            strncmp(name, "my-svc", 6) == 0)
            l->slice = json_deep_copy(object);
        free(text);
        json_decref(event);
    }
    free(line);
    fclose(f);
    assert_non_null(l->slice);
}

/* Puts my-svc's pods on the given nodes (one endpoint each). */
static void place_pods(live *l, const char *const *nodes, size_t n)
{
    json_t *endpoints = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(
            endpoints, json_pack("{s:[s], s:{s:b, s:b, s:b}, s:s}", "addresses",
                                 i ? "192.168.24.7" : "192.168.25.134", "conditions", "ready", 1,
                                 "serving", 1, "terminating", 0, "nodeName", nodes[i]));
    }
    json_object_set_new(l->slice, "endpoints", endpoints);
    char *text = json_dumps(l->slice, JSON_COMPACT);
    assert_true(k8ssim_apply(l->api, text) > 0);
    free(text);
}

static json_t *expected_view(const char *const *servers, size_t n)
{
    json_t *pool = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(pool, json_string(servers[i]));
    json_t *names = json_pack("[s]", "kavi--hostrule-ns-my-svc");
    json_t *view = json_pack("{s:O, s:O, s:O, s:[s], s:{s:o}}", "virtualservice", names, "vsvip",
                             names, "l4policyset", names, "healthmonitor",
                             "kavi--hostrule-ns-my-svc-hc", "pool", POOL, pool);
    json_decref(names);
    return view;
}

static void expect_view(live *l, json_t *expected)
{
    char why[4096];
    bool ok = kit_wait_for_view(&l->pipeline, expected, why, sizeof why);
    json_decref(expected);
    if (!ok) {
        kit_dump_logs(&l->pipeline);
        fail_msg("%s", why);
    }
}

static size_t collect(char *data, size_t size, size_t n, void *user)
{
    return fwrite(data, size, n, (FILE *)user);
}

/* status.loadBalancer.ingress[0].ip of my-svc as the API server holds it. */
static char *service_ingress_ip(live *l)
{
    char url[256], *text = NULL, *ip = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    snprintf(url, sizeof url,
             "http://127.0.0.1:%d/api/v1/namespaces/hostrule-ns/services/my-svc", k8ssim_port(l->api));
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    fclose(out);
    json_t *svc = rc == CURLE_OK ? json_loads(text, 0, NULL) : NULL;
    json_t *ingress = json_array_get(
        json_object_get(json_object_get(json_object_get(svc, "status"), "loadBalancer"), "ingress"), 0);
    if (json_is_string(json_object_get(ingress, "ip")))
        ip = strdup(json_string_value(json_object_get(ingress, "ip")));
    json_decref(svc);
    free(text);
    return ip;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    live *l = calloc(1, sizeof *l);
    k8ssim_options_t opts = {.token = TOKEN};
    if (!l || k8ssim_new(&l->api, &opts) != 0)
        return -1;
    snprintf(l->kubeconfig, sizeof l->kubeconfig, "/tmp/kavi-live-%d.kubeconfig", (int)getpid());
    FILE *f = fopen(l->kubeconfig, "w");
    if (!f)
        return -1;
    fprintf(f,
            "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
            "clusters:\n- name: sim\n  cluster:\n    server: http://127.0.0.1:%d\n"
            "users:\n- name: kavi\n  user:\n    token: %s\n"
            "contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: kavi\n",
            k8ssim_port(l->api), TOKEN);
    fclose(f);
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    live *l = *state;
    k8ssim_destroy(&l->api);
    json_decref(l->slice);
    unlink(l->kubeconfig);
    free(l);
    return 0;
}

static void test_live_cluster_changes_reach_the_controller_and_status_comes_back(void **state)
{
    live *l = *state;
    static const char *const worker[] = {"k8s-cluster-worker"};
    static const char *const master[] = {"k8s-cluster-master"};
    static const char *const both[] = {"k8s-cluster-worker", "k8s-cluster-master"};
    static const char *const master_then_worker[] = {MASTER, WORKER};

    load_seed(l);
    assert_int_equal(kit_pipeline_start_from(&l->pipeline, NULL, l->kubeconfig), 0);
    expect_view(l, expected_view((const char *const[]){WORKER}, 1));

    /* The VIP is written back to the Service on the API server. */
    int64_t until = clock_now_ms() + KIT_DEADLINE_MS;
    char *ip = NULL;
    while (!(ip = service_ingress_ip(l)) && clock_now_ms() < until)
        sleep_ms(50);
    assert_non_null(ip);
    assert_string_equal(ip, "10.10.10.100");
    free(ip);

    /* A watch event: the pod moves to the master. */
    place_pods(l, master, 1);
    expect_view(l, expected_view((const char *const[]){MASTER}, 1));

    /* Watches cut mid-stream: the change still arrives (resumed watch). */
    k8ssim_drop_watches(l->api);
    place_pods(l, both, 2);
    expect_view(l, expected_view(master_then_worker, 2));

    /* History gone and watches cut: a relist publishes the difference. */
    k8ssim_expire_history(l->api);
    k8ssim_drop_watches(l->api);
    place_pods(l, worker, 1);
    expect_view(l, expected_view((const char *const[]){WORKER}, 1));

    /* The watcher misses a deletion while down; its fresh list still
     * removes every Avi object of the Service. */
    kit_stage_kill(&l->pipeline, KIT_WATCHER);
    assert_true(k8ssim_delete(l->api, "Service", "hostrule-ns", "my-svc") > 0);
    assert_int_equal(kit_stage_start(&l->pipeline, KIT_WATCHER), 0);
    expect_view(l, json_object());

    char why[512];
    if (!kit_pipeline_stop(&l->pipeline, why, sizeof why))
        fail_msg("%s", why);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_live_cluster_changes_reach_the_controller_and_status_comes_back, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
