/* kavi-watcher — the Kubernetes I/O stage. It publishes the cluster onto
 * the "k8s" bus stream, live from the API server (kubernetes.source
 * kubeconfig or inCluster) or from a recorded stream (replay: watch events
 * or YAML manifests), and collects the status syncers push back, writing
 * Service status to the API server when live.
 *
 *   kavi-watcher --config FILE [--replay FILE] [--follow] [--status-file FILE]
 *                [--record FILE] [--exit-when-done] [--timeout SECONDS]
 *
 * Exit status: 0 on SIGTERM/SIGINT or, with --exit-when-done, when the
 * syncer of the configured tenant has applied everything up to the end of
 * this replay, and applied exactly the models the planner published for it;
 * 1 when models are missing (refused by the controller, or lost), on a
 * timeout, or when
 * a socket or the replay file cannot be opened; 2 for bad usage or bad
 * configuration (a bad kubeconfig, no in-cluster environment). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "watcher/kube_config.h"
#include "watcher/watcher.h"

#define DEFAULT_DONE_TIMEOUT_S 300
#define MAX_TIMEOUT_S (7L * 24 * 3600)

typedef struct {
    const char *config_path;
    const char *replay_file;
    const char *status_file;
    const char *record_file;
    bool follow;
    bool exit_when_done;
    long timeout_s; /* 0: none */
} watcher_args;

static volatile sig_atomic_t stop_signal;

static void on_signal(int signo) { stop_signal = signo; }

static void usage(FILE *out)
{
    fprintf(out,
            "usage: kavi-watcher --config FILE [--replay FILE] [--follow] [--status-file FILE]\n"
            "                    [--record FILE] [--exit-when-done] [--timeout SECONDS]\n"
            "  --replay FILE       recorded stream to publish (overrides kubernetes.replayFile\n"
            "                      and kubernetes.source)\n"
            "  --record FILE       live: write every event seen, in the replay format\n"
            "  --follow            keep reading what is appended to the file (kubernetes.follow)\n"
            "  --status-file FILE  write the status of every object there as JSON\n"
            "  --exit-when-done    exit once the syncer of tenantName has applied the replay\n"
            "  --timeout SECONDS   give up after this long (default %d with --exit-when-done)\n",
            DEFAULT_DONE_TIMEOUT_S);
}

/* Returns 0, 1 when --help was answered, or -1 after printing the problem. */
static int parse_args(watcher_args *args, int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"replay", required_argument, NULL, 'r'},
        {"follow", no_argument, NULL, 'f'},
        {"status-file", required_argument, NULL, 's'},
        {"record", required_argument, NULL, 'R'},
        {"exit-when-done", no_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *end = NULL;
    int opt;

    memset(args, 0, sizeof *args);
    while ((opt = getopt_long(argc, argv, "c:r:fs:R:et:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': args->config_path = optarg; break;
        case 'r': args->replay_file = optarg; break;
        case 'f': args->follow = true; break;
        case 's': args->status_file = optarg; break;
        case 'R': args->record_file = optarg; break;
        case 'e': args->exit_when_done = true; break;
        case 't':
            errno = 0;
            args->timeout_s = strtol(optarg, &end, 10);
            if (errno || !*optarg || *end || args->timeout_s <= 0 ||
                args->timeout_s > MAX_TIMEOUT_S) {
                fprintf(stderr, "kavi-watcher: --timeout %s: expected seconds, 1 to %ld\n",
                        optarg, MAX_TIMEOUT_S);
                return -1;
            }
            break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kavi-watcher: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!args->config_path) {
        fprintf(stderr, "kavi-watcher: --config FILE is required\n");
        return -1;
    }
    if (args->exit_when_done && !args->timeout_s)
        args->timeout_s = DEFAULT_DONE_TIMEOUT_S;
    return 0;
}

static void install_signal_handlers(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal; /* no SA_RESTART: zmq_poll returns EINTR */
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
}

/* The loop: every step computes how long it may sleep, so no wait is ever
 * unbounded. Returns the exit status. */
static int watcher_run(watcher_t *w, const kv_config *cfg, const watcher_args *args)
{
    const char *tenant = cfg->tenant_name;
    int64_t deadline = args->timeout_s ? clock_now_ms() + args->timeout_s * 1000 : INT64_MAX;
    zmq_pollitem_t items[WATCHER_POLLITEMS];

    for (;;) {
        if (stop_signal) {
            log_info("signal %d: stopping", (int)stop_signal);
            return 0;
        }
        int64_t wait = watcher_step(w, clock_now_ms());
        int64_t now = clock_now_ms(); /* after the step's work, for every timer below */
        if (args->exit_when_done) {
            watcher_verdict verdict = watcher_verdict_of(w, tenant, now);
            if (verdict == WATCHER_CAUGHT_UP) {
                log_info("tenant %s has applied the whole replay", tenant);
                return 0;
            }
            if (verdict == WATCHER_FAILED) {
                watcher_print_failures(w, tenant, stderr);
                return 1;
            }
        }
        if (now >= deadline) {
            char lag[1024];
            watcher_describe_lag(w, tenant, lag, sizeof lag);
            fprintf(stderr, "kavi-watcher: timed out after %ld s: %s\n", args->timeout_s, lag);
            return 1;
        }
        if (deadline - now < wait)
            wait = deadline - now;
        int n = watcher_pollitems(w, items);
        if (zmq_poll(items, n, (long)wait) < 0 && errno != EINTR) {
            log_error("zmq_poll: %s", zmq_strerror(errno));
            return 1;
        }
    }
}

static const char *source_name(config_source source)
{
    switch (source) {
    case CONFIG_SOURCE_REPLAY: return "replay";
    case CONFIG_SOURCE_KUBECONFIG: return "kubeconfig";
    case CONFIG_SOURCE_IN_CLUSTER: return "inCluster";
    }
    return "?";
}

int main(int argc, char **argv)
{
    watcher_args args;
    kv_config *cfg = NULL;
    watcher_t *w = NULL;
    void *ctx = NULL;
    char err[1024];
    int status = 2;

    int rc = parse_args(&args, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (config_load(&cfg, args.config_path, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    log_init("kavi-watcher", cfg->log_level);
    watcher_options options = {
        .replay_file = args.replay_file ? args.replay_file : cfg->replay_file,
        .follow = args.follow || cfg->replay_follow,
        .status_file = args.status_file,
    };
    bool live = cfg->source != CONFIG_SOURCE_REPLAY && !args.replay_file;
    if (live) {
        rc = cfg->source == CONFIG_SOURCE_IN_CLUSTER
                 ? kube_config_in_cluster(&options.kube, err, sizeof err)
                 : kube_config_load(&options.kube, cfg->kubeconfig, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "kavi-watcher: kubernetes.source %s: %s\n", source_name(cfg->source),
                    err);
            goto out_free_config;
        }
        options.record_file = args.record_file;
        options.follow = false;
    } else if (args.record_file) {
        fprintf(stderr, "kavi-watcher: --record needs a live kubernetes.source (kubeconfig or "
                        "inCluster)\n");
        goto out_free_config;
    }
    if (!live && !options.replay_file) {
        fprintf(stderr, "kavi-watcher: no stream to replay: set kubernetes.replayFile or pass "
                        "--replay FILE\n");
        goto out_free_config;
    }
    if (args.exit_when_done && (options.follow || live))
        log_warn("--exit-when-done with a followed file or a live source: there is no end of "
                 "stream to reach; "
                 "only --timeout ends the run");

    install_signal_handlers();
    status = 1;
    ctx = zmq_ctx_new();
    if (!ctx) {
        fprintf(stderr, "kavi-watcher: zmq_ctx_new: %s\n", zmq_strerror(errno));
        kube_config_destroy(&options.kube);
        goto out_free_config;
    }
    if (watcher_new(&w, ctx, cfg, &options, err, sizeof err) < 0) {
        fprintf(stderr, "kavi-watcher: %s\n", err);
        goto out_term_context;
    }
    status = watcher_run(w, cfg, &args);
    watcher_destroy(&w);

out_term_context:
    zmq_ctx_term(ctx);
out_free_config:
    config_destroy(&cfg);
    return status;
}
