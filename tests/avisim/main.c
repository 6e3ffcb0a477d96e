/*
 * avisim — the Avi Controller simulator as a standalone program, for
 * integration tests that run kavi's real processes against it.
 *
 * It parses options, starts the simulator, publishes the bound port
 * (--port-file, written atomically so a poller never reads half a number),
 * and serves until SIGTERM/SIGINT; --dump-state-on-exit then writes the
 * final object state.
 *
 *   avisim [--port N] [--port-file F] [--username U] [--password P]
 *          [--version V] [--tenants a,b] [--vip-network NAME]
 *          [--vip-range A-B] [--idle-timeout S] [--tls-cert F --tls-key F]
 *          [--basic-auth] [--faults JSON] [--dump-state-on-exit F]
 *          [--model FILE]
 *
 * --faults takes the JSON of POST /_sim/faults and holds for the whole run
 * (until changed through /_sim/faults). --model is the Avi object model
 * every write is checked against, tests/data/avi_models.json (relative to
 * the working directory) by default; --model '' turns the checks off.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "avisim.h"

struct cli {
    avisim_options_t opts;
    const char *port_file;
    const char *dump_file;
};

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !*s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"port-file", required_argument, NULL, 'f'},
        {"username", required_argument, NULL, 'u'},
        {"password", required_argument, NULL, 'w'},
        {"version", required_argument, NULL, 'v'},
        {"tenants", required_argument, NULL, 't'},
        {"vip-network", required_argument, NULL, 'n'},
        {"vip-range", required_argument, NULL, 'r'},
        {"idle-timeout", required_argument, NULL, 'i'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"dump-state-on-exit", required_argument, NULL, 'd'},
        {"basic-auth", no_argument, NULL, 'b'},
        {"faults", required_argument, NULL, 'F'},
        {"model", required_argument, NULL, 'm'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (parse_int(optarg, 0, 65535, &cli->opts.port)) {
                fprintf(stderr, "avisim: --port: invalid port '%s'\n", optarg);
                return -1;
            }
            break;
        case 'i':
            if (parse_int(optarg, 1, 7 * 24 * 3600, &cli->opts.idle_timeout_s)) {
                fprintf(stderr, "avisim: --idle-timeout: invalid seconds '%s'\n", optarg);
                return -1;
            }
            break;
        case 'f':
            cli->port_file = optarg;
            break;
        case 'u':
            cli->opts.username = optarg;
            break;
        case 'w':
            cli->opts.password = optarg;
            break;
        case 'v':
            cli->opts.version = optarg;
            break;
        case 't':
            cli->opts.tenants = optarg;
            break;
        case 'n':
            cli->opts.vip_network = optarg;
            break;
        case 'r':
            cli->opts.vip_range = optarg;
            break;
        case 'c':
            cli->opts.tls_cert_file = optarg;
            break;
        case 'k':
            cli->opts.tls_key_file = optarg;
            break;
        case 'd':
            cli->dump_file = optarg;
            break;
        case 'b':
            cli->opts.allow_basic_auth = true;
            break;
        case 'F':
            cli->opts.faults = optarg;
            break;
        case 'm':
            cli->opts.model_file = optarg;
            break;
        case ':':
            fprintf(stderr, "avisim: option '%s' needs a value\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "avisim: unknown option '%s'\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "avisim: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!cli->opts.tls_cert_file != !cli->opts.tls_key_file) {
        fprintf(stderr, "avisim: --tls-cert and --tls-key must be given together\n");
        return -1;
    }
    return 0;
}

static bool version_ok(const char *v)
{
    size_t n = strlen(v);
    return n > 0 && n <= 64 && strspn(v, "0123456789.") == n && v[0] != '.' &&
           v[n - 1] != '.' && !strstr(v, "..");
}

static bool range_ok(const char *r)
{
    char a[32], b[32];
    struct in_addr x, y;
    const char *dash = strchr(r, '-');
    if (!dash || (size_t)(dash - r) >= sizeof(a) || strlen(dash + 1) >= sizeof(b))
        return false;
    memcpy(a, r, (size_t)(dash - r));
    a[dash - r] = '\0';
    snprintf(b, sizeof(b), "%s", dash + 1);
    return inet_pton(AF_INET, a, &x) == 1 && inet_pton(AF_INET, b, &y) == 1 &&
           ntohl(x.s_addr) <= ntohl(y.s_addr);
}

static bool tenants_ok(const char *t)
{
    for (const char *p = t; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_.,", *p))
            return false;
    return true;
}

static int reject(const char *option, const char *value)
{
    fprintf(stderr, "avisim: %s: invalid value '%.200s'\n", option, value);
    return -1;
}

/* Checks the option values avisim_new() would refuse, so the error can name
 * the option. */
static int check_values(const struct cli *cli)
{
    const avisim_options_t *o = &cli->opts;
    if (o->version && !version_ok(o->version))
        return reject("--version", o->version);
    if (o->vip_range && !range_ok(o->vip_range))
        return reject("--vip-range", o->vip_range);
    if (o->tenants && !tenants_ok(o->tenants))
        return reject("--tenants", o->tenants);
    if (o->vip_network && (!*o->vip_network || strlen(o->vip_network) > 255))
        return reject("--vip-network", o->vip_network);
    if (o->tls_cert_file && access(o->tls_cert_file, R_OK) != 0)
        return reject("--tls-cert", o->tls_cert_file);
    if (o->tls_key_file && access(o->tls_key_file, R_OK) != 0)
        return reject("--tls-key", o->tls_key_file);
    if (o->model_file && *o->model_file && access(o->model_file, R_OK) != 0)
        return reject("--model", o->model_file);
    if (o->faults) {
        json_t *parsed = json_loads(o->faults, 0, NULL);
        bool ok = json_is_object(parsed);
        json_decref(parsed);
        if (!ok)
            return reject("--faults", o->faults);
    }
    return 0;
}

/* Writes text to path through a temporary file and rename(2). */
static int write_atomic(const char *path, const char *text)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int err = errno ? errno : EIO;
        unlink(tmp);
        return -err;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    avisim_t *sim = NULL;
    sigset_t stop;
    int sig = 0;
    int status = 0;
    char port[16];

    if (parse_args(argc, argv, &cli) || check_values(&cli))
        return 2;

    /* Block the stop signals before any thread exists so that only sigwait
     * below receives them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = avisim_new(&sim, &cli.opts);
    if (rc) {
        fprintf(stderr, "avisim: cannot start: %s\n", strerror(-rc));
        return rc == -EINVAL ? 2 : 1;
    }
    snprintf(port, sizeof(port), "%d", avisim_port(sim));
    if (cli.port_file && (rc = write_atomic(cli.port_file, port))) {
        fprintf(stderr, "avisim: --port-file %s: %s\n", cli.port_file, strerror(-rc));
        status = 1;
        goto out_destroy;
    }
    printf("avisim listening on %s://127.0.0.1:%d\n", cli.opts.tls_cert_file ? "https" : "http",
           avisim_port(sim));
    fflush(stdout);

    sigwait(&stop, &sig);

    if (cli.dump_file) {
        char *state = avisim_state_json(sim);
        rc = state ? write_atomic(cli.dump_file, state) : -ENOMEM;
        free(state);
        if (rc) {
            fprintf(stderr, "avisim: --dump-state-on-exit %s: %s\n", cli.dump_file,
                    strerror(-rc));
            status = 1;
        }
    }
out_destroy:
    avisim_destroy(&sim);
    return status;
}
