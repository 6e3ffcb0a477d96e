/* kavi-planner: Kubernetes projections in, Avi models out.
 *
 *   kavi-planner --config FILE
 *
 * Reads stream "k8s" from the watcher, publishes "model.<tenant>" for the
 * syncers. A bad configuration prints one line and exits 2; SIGTERM or
 * SIGINT stop it cleanly (exit 0). */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "common/config.h"
#include "common/log.h"
#include "planner/loop.h"

static atomic_int stop_requested;

static void on_stop_signal(int signo)
{
    (void)signo;
    atomic_store(&stop_requested, 1);
}

static void usage(FILE *to) { fprintf(to, "usage: kavi-planner --config FILE\n"); }

/* Returns the config path, or NULL after printing why there is none. */
static const char *parse_args(int argc, char **argv, int *exit_code)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            *exit_code = 0;
            return NULL;
        } else {
            fprintf(stderr, "kavi-planner: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            *exit_code = 2;
            return NULL;
        }
    }
    if (!path) {
        usage(stderr);
        *exit_code = 2;
    }
    return path;
}

static void install_signal_handlers(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    /* No SA_RESTART: zmq_poll must return EINTR so the loop sees the stop. */
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
    char err[512];
    kv_config *cfg = NULL;
    int exit_code = 0;
    const char *path = parse_args(argc, argv, &exit_code);
    if (!path)
        return exit_code;
    if (config_load(&cfg, path, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    log_init("kavi-planner", cfg->log_level);
    install_signal_handlers();

    void *zmq_ctx = zmq_ctx_new();
    if (!zmq_ctx) {
        log_error("planner: zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        config_destroy(&cfg);
        return 1;
    }
    int rc = planner_loop_run(cfg, zmq_ctx, &stop_requested, NULL);
    zmq_ctx_term(zmq_ctx);
    config_destroy(&cfg);
    if (rc == 0)
        log_info("planner: stopped");
    return rc < 0 ? 1 : 0;
}
