/* A stage stays responsive however large the cluster: the real kavi-planner,
 * fed 10,000 Services by this test (playing the watcher) and read by it
 * (playing a syncer), stops on SIGTERM in the middle of its first full
 * recompute. The wait for its exit is bounded generously, never a sleep:
 * the point is that it exits, cleanly, long before a recompute that ran to
 * its end would let it.
 *   integration_test_responsive [test-name-glob] */
#include "tests/unit/test_planner_fixtures.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/envelope.h"
#include "proto/k8s.h"
#include "tests/kit/kit.h"

#define SERVICES 10000
#define DEADLINE_MS 60000
#define EXIT_DEADLINE_MS 10000

extern char **environ;

typedef struct {
    char dir[256], config[300], log[300];
    char k8s_pub[300], k8s_snap[300], model_pub[300], model_snap[300];
    void *ctx;
    bus_pub_t *watcher;
    bus_sub_t *syncer;
    pid_t planner;
    unsigned models_seen;
    bool complete_seen;
} fixture;

static void fixture_config(fixture *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/kavi-responsive-%d", (int)getpid());
    mkdir(f->dir, 0755);
    snprintf(f->config, sizeof f->config, "%s/kavi.yaml", f->dir);
    snprintf(f->log, sizeof f->log, "%s/planner.log", f->dir);
    snprintf(f->k8s_pub, sizeof f->k8s_pub, "ipc://%s/k8s-pub", f->dir);
    snprintf(f->k8s_snap, sizeof f->k8s_snap, "ipc://%s/k8s-snap", f->dir);
    snprintf(f->model_pub, sizeof f->model_pub, "ipc://%s/model-pub", f->dir);
    snprintf(f->model_snap, sizeof f->model_snap, "ipc://%s/model-snap", f->dir);
    FILE *out = fopen(f->config, "w");
    assert_non_null(out);
    fprintf(out,
            "clusterName: k8s\nserviceType: NodePort\nlogLevel: WARN\n"
            "bus:\n  k8sPublish: %s\n  k8sSnapshot: %s\n"
            "  modelPublish: %s\n  modelSnapshot: %s\n  status: ipc://%s/status\n",
            f->k8s_pub, f->k8s_snap, f->model_pub, f->model_snap, f->dir);
    fclose(out);
}

static void publish(fixture *f, const char *key, void *body, size_t len)
{
    assert_true(bus_pub_put(f->watcher, PROTO_STREAM_K8S, key, body ? body : "", len) >= 0);
    free(body);
}

static void publish_node(fixture *f, const char *name, const char *ipv4)
{
    char key[64];
    void *body;
    size_t len;
    proto_node *node = fx_node(name, ipv4, NULL);
    assert_int_equal(proto_node_encode(node, &body, &len), 0);
    proto_node_destroy(&node);
    proto_k8s_key(key, sizeof key, "Node", NULL, name);
    publish(f, key, body, len);
}

static void publish_service(fixture *f, int i)
{
    char name[32], key[64];
    void *body;
    size_t len;
    snprintf(name, sizeof name, "svc-%05d", i);
    proto_service *svc = fx_service("big", name, "LoadBalancer", false);
    fx_service_port(svc, "http", "TCP", 80, 30080, 8080, NULL);
    assert_int_equal(proto_service_encode(svc, &body, &len), 0);
    proto_service_destroy(&svc);
    proto_k8s_key(key, sizeof key, "Service", "big", name);
    publish(f, key, body, len);
}

/* The watcher's whole recorded state, end of stream included. */
static void publish_large_cluster(fixture *f)
{
    publish_node(f, "a", "10.0.0.1");
    publish_node(f, "b", "10.0.0.2");
    for (int i = 0; i < SERVICES; i++)
        publish_service(f, i);
    static const char *const kinds[] = {"Node", "Service", "EndpointSlice", "Namespace"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s%s", PROTO_KEY_SYNCED_PREFIX, kinds[i]);
        publish(f, key, NULL, 0);
    }
}

static void planner_start(fixture *f)
{
    char bin[256];
    kit_bin("kavi-planner", bin, sizeof bin);
    char *argv[] = {bin, "--config", f->config, NULL};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, f->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    int rc = posix_spawn(&f->planner, bin, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        fail_msg("cannot start %s: %s", bin, strerror(rc));
}

/* One round of the watcher's snapshots and heartbeats, and what the
 * syncer's side receives. */
static void pump(fixture *f)
{
    zmq_pollitem_t items[3];
    int n = bus_sub_pollitems(f->syncer, items);
    items[n++] = (zmq_pollitem_t){.socket = bus_pub_snapshot_socket(f->watcher),
                                  .events = ZMQ_POLLIN};
    zmq_poll(items, n, 20);
    int64_t now = clock_now_ms();
    bus_pub_serve(f->watcher);
    bus_pub_tick(f->watcher, now);
    bus_event ev;
    while (bus_sub_next(f->syncer, &ev, now) == 1) {
        if (ev.type == BUS_PUT && ev.env.key[0] != '!')
            f->models_seen++;
        if (ev.type == BUS_PUT && strcmp(ev.env.key, PROTO_KEY_COMPLETE) == 0)
            f->complete_seen = true;
        bus_event_clear(&ev);
    }
}

static void fixture_stop(fixture *f)
{
    if (f->planner > 0) {
        kill(f->planner, SIGKILL);
        waitpid(f->planner, NULL, 0);
    }
    bus_sub_destroy(&f->syncer);
    bus_pub_destroy(&f->watcher);
    zmq_ctx_term(f->ctx);
    const char *sockets[] = {"k8s-pub", "k8s-snap", "model-pub", "model-snap", "status"};
    for (size_t i = 0; i < sizeof sockets / sizeof sockets[0]; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s", f->dir, sockets[i]);
        unlink(path);
    }
}

static void test_sigterm_during_a_large_recompute_stops_the_planner_promptly(void **state)
{
    (void)state;
    fixture f;
    memset(&f, 0, sizeof f);
    fixture_config(&f);
    f.ctx = zmq_ctx_new();
    assert_non_null(f.ctx);
    assert_int_equal(bus_pub_new(&f.watcher, f.ctx, f.k8s_pub, f.k8s_snap), 0);
    publish_large_cluster(&f);
    assert_int_equal(bus_sub_new(&f.syncer, f.ctx, f.model_pub, f.model_snap, "model.admin"), 0);
    planner_start(&f);

    /* The first models are out: the full recompute is under way. */
    int64_t until = clock_now_ms() + DEADLINE_MS;
    while (f.models_seen == 0 && clock_now_ms() < until)
        pump(&f);
    if (f.models_seen == 0)
        fail_msg("the planner published nothing (log: %s)", f.log);
    bool mid_recompute = !f.complete_seen;
    kill(f.planner, SIGTERM);

    int status = 0;
    pid_t done = 0;
    until = clock_now_ms() + EXIT_DEADLINE_MS;
    while ((done = waitpid(f.planner, &status, WNOHANG)) == 0 && clock_now_ms() < until)
        pump(&f);
    if (done != f.planner)
        fail_msg("kavi-planner still running %d ms after SIGTERM (%u of %d models out)",
                 EXIT_DEADLINE_MS, f.models_seen, SERVICES);
    f.planner = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    fprintf(stderr, "SIGTERM arrived %s (%u of %d models out)\n",
            mid_recompute ? "during the full recompute" : "after the full recompute",
            f.models_seen, SERVICES);
    fixture_stop(&f);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_during_a_large_recompute_stops_the_planner_promptly),
    };
    log_set_level(LOG_WARN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
