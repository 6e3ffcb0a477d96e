/* kavi-syncer — keeps one Avi tenant matching the planner's models.
 *
 *   kavi-syncer --config FILE [--tenant NAME]          run
 *   kavi-syncer --config FILE --show [--tenant NAME]   print what the controller holds
 *
 * Exit status: 0 on SIGTERM/SIGINT or after --show, 1 when the controller
 * cannot be read for --show or the loop fails, 2 on bad usage or config. */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "syncer/avi_session.h"
#include "syncer/avi_show.h"
#include "syncer/syncer.h"

static volatile sig_atomic_t syncer_stop;

static void on_signal(int sig)
{
    (void)sig;
    syncer_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: kavi-syncer --config FILE [--tenant NAME] [--show]\n");
}

typedef struct {
    const char *config_path;
    const char *tenant;
    bool show;
} options;

static int parse_options(options *opts, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"tenant", required_argument, NULL, 't'},
        {"show", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(opts, 0, sizeof *opts);
    int c;
    while ((c = getopt_long(argc, argv, "c:t:sh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            opts->config_path = optarg;
            break;
        case 't':
            opts->tenant = optarg;
            break;
        case 's':
            opts->show = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return KV_ERR_INVALID;
        }
    }
    if (optind != argc || !opts->config_path)
        return KV_ERR_INVALID;
    if (opts->tenant && (!*opts->tenant || strlen(opts->tenant) > 128))
        return KV_ERR_INVALID;
    return KV_OK;
}

/* The syncer cannot do anything without a controller and credentials:
 * say so in one line before anything starts. */
static int check_controller_config(const kv_config *cfg, const char *path)
{
    if (!cfg->controller_host || !*cfg->controller_host) {
        fprintf(stderr, "config %s: key 'controllerHost' is required by kavi-syncer\n", path);
        return KV_ERR_INVALID;
    }
    if (!cfg->username || (!cfg->password && !cfg->auth_token)) {
        fprintf(stderr,
                "config %s: keys 'credentials.username' and 'credentials.password' (or "
                "'credentials.authToken') are required by kavi-syncer\n",
                path);
        return KV_ERR_INVALID;
    }
    return KV_OK;
}

static int run_show(const kv_config *cfg, const char *tenant)
{
    avi_session_t *session = NULL;
    int rc = avi_session_new(&session, cfg, tenant);
    if (rc < 0)
        return 2;
    avi_session_set_abort_flag(session, &syncer_stop);
    rc = avi_session_login(session);
    if (rc == KV_OK)
        rc = avi_show_print(stdout, session, cfg);
    if (rc < 0)
        fprintf(stderr, "kavi-syncer --show: %s\n",
                avi_session_error(session)[0] ? avi_session_error(session) : kv_strerror(rc));
    avi_session_destroy(&session);
    return rc < 0 ? 1 : 0;
}

static int run_loop(const kv_config *cfg, const char *tenant)
{
    void *zmq_ctx = zmq_ctx_new();
    syncer_t *syncer = NULL;
    int status = 0;
    if (!zmq_ctx) {
        log_error("zmq_ctx_new failed");
        return 1;
    }
    int rc = syncer_new(&syncer, cfg, tenant, zmq_ctx);
    if (rc < 0) {
        status = rc == KV_ERR_INVALID ? 2 : 1;
        goto out_term_ctx;
    }
    syncer_set_stop_flag(syncer, &syncer_stop);
    while (!syncer_stop) {
        rc = syncer_step(syncer, -1);
        if (rc < 0) {
            log_error("stopped: %s", kv_strerror(rc));
            status = 1;
            break;
        }
    }
    if (syncer_stop)
        log_info("stopping on signal");
    syncer_destroy(&syncer);
out_term_ctx:
    zmq_ctx_term(zmq_ctx);
    return status;
}

int main(int argc, char **argv)
{
    options opts;
    kv_config *cfg = NULL;
    char err[512];

    if (parse_options(&opts, argc, argv) < 0) {
        usage(stderr);
        return 2;
    }
    if (config_load(&cfg, opts.config_path, err, sizeof err) < 0 ||
        config_read_credentials(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        config_destroy(&cfg);
        return 2;
    }
    if (check_controller_config(cfg, opts.config_path) < 0) {
        config_destroy(&cfg);
        return 2;
    }
    log_init("kavi-syncer", cfg->log_level);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "kavi-syncer: curl_global_init failed\n");
        config_destroy(&cfg);
        return 1;
    }
    const char *tenant = opts.tenant ? opts.tenant : cfg->tenant_name;
    int status = opts.show ? run_show(cfg, tenant) : run_loop(cfg, tenant);
    curl_global_cleanup();
    config_destroy(&cfg);
    return status;
}
