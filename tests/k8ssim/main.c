/*
 * k8ssim — the Kubernetes API simulator as a program, for running the watcher
 * against it from a shell or another test:
 *
 *   k8ssim --port N --port-file F [--tls-cert F --tls-key F] [--client-ca F]
 *          [--token T] [--objects FILE.ndjson] [--serve-routes]
 *          [--serve-gateway-api] [--history-limit N] [--bookmark-interval-ms N]
 *
 * Serves until SIGTERM or SIGINT. --objects applies one object per line
 * (blank lines and lines starting with '#' are skipped). --port-file receives
 * the bound port once the simulator serves, written atomically.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/k8ssim/k8ssim.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: k8ssim --port N --port-file F [--tls-cert F --tls-key F] "
                 "[--client-ca F] [--token T] [--objects FILE.ndjson] [--serve-routes] "
                 "[--serve-gateway-api] [--history-limit N] [--bookmark-interval-ms N]\n");
}

static int load_objects(k8ssim_t *sim, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    if (!f) {
        fprintf(stderr, "k8ssim: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        const char *p = line + strspn(line, " \t\r\n");
        if (!*p || *p == '#')
            continue;
        if (k8ssim_apply(sim, p) < 0) {
            fprintf(stderr, "k8ssim: %s:%ld: not an object k8ssim serves\n", path, lineno);
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%d\n", port) > 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"port", required_argument, NULL, 'p'},
        {"port-file", required_argument, NULL, 'f'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"client-ca", required_argument, NULL, 'a'},
        {"token", required_argument, NULL, 't'},
        {"objects", required_argument, NULL, 'o'},
        {"serve-routes", no_argument, NULL, 'r'},
        {"serve-gateway-api", no_argument, NULL, 'g'},
        {"history-limit", required_argument, NULL, 'H'},
        {"bookmark-interval-ms", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    k8ssim_options_t opts = {0};
    const char *port_file = NULL, *objects = NULL;
    k8ssim_t *sim = NULL;
    sigset_t signals;
    int opt, sig = 0, rc;

    while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (opt) {
        case 'p':
            opts.port = atoi(optarg);
            break;
        case 'f':
            port_file = optarg;
            break;
        case 'c':
            opts.tls_cert_file = optarg;
            break;
        case 'k':
            opts.tls_key_file = optarg;
            break;
        case 'a':
            opts.client_ca_file = optarg;
            break;
        case 't':
            opts.token = optarg;
            break;
        case 'o':
            objects = optarg;
            break;
        case 'r':
            opts.serve_routes = true;
            break;
        case 'g':
            opts.serve_gateway_api = true;
            break;
        case 'H':
            opts.history_limit = atoi(optarg);
            break;
        case 'B':
            opts.bookmark_interval_ms = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    /* Blocked before any thread starts, so every thread inherits the mask
     * and sigwait() below receives them. */
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);

    rc = k8ssim_new(&sim, &opts);
    if (rc < 0) {
        fprintf(stderr, "k8ssim: cannot start: %s\n", strerror(-rc));
        return 1;
    }
    if (objects && load_objects(sim, objects) < 0) {
        k8ssim_destroy(&sim);
        return 1;
    }
    if (port_file && write_port_file(port_file, k8ssim_port(sim)) < 0) {
        fprintf(stderr, "k8ssim: cannot write %s\n", port_file);
        k8ssim_destroy(&sim);
        return 1;
    }
    fprintf(stderr, "k8ssim: serving %s://127.0.0.1:%d\n", opts.tls_cert_file ? "https" : "http",
            k8ssim_port(sim));
    sigwait(&signals, &sig);
    k8ssim_destroy(&sim);
    return 0;
}
