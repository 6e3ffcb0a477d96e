/*
 * Construction and teardown of the simulator, and the state dump. The
 * options are copied, so the caller's strings need not outlive avisim_new().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#define MAX_OPTION_LEN 1024
#define MAX_PEM_BYTES (1024 * 1024)

static int read_file(const char *path, char **out)
{
    struct avisim_buf b;
    char chunk[4096];
    size_t n;
    int rc = 0;
    FILE *f = fopen(path, "rb");

    *out = NULL;
    if (!f)
        return -EIO;
    avisim_buf_init(&b, MAX_PEM_BYTES);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && !rc)
        rc = avisim_buf_add(&b, chunk, n);
    if (ferror(f) || !b.data)
        rc = rc ? rc : -EIO;
    fclose(f);
    if (rc) {
        avisim_buf_free(&b);
        return rc == -E2BIG ? -EINVAL : rc;
    }
    *out = b.data;
    return 0;
}

static char *copy_option(const char *value, const char *fallback, int *rc)
{
    const char *v = value ? value : fallback;
    if (strlen(v) > MAX_OPTION_LEN) {
        *rc = -EINVAL;
        return NULL;
    }
    char *s = strdup(v);
    if (!s)
        *rc = -ENOMEM;
    return s;
}

int avisim_new(avisim_t **out, const avisim_options_t *opts)
{
    static const avisim_options_t defaults = {0};
    const avisim_options_t *o = opts ? opts : &defaults;
    struct avisim *sim = NULL;
    int rc = 0;
    int cmp;

    *out = NULL;
    if (o->port < 0 || o->port > 65535 || o->idle_timeout_s < 0 ||
        o->idle_timeout_s > 7 * 24 * 3600 || !o->tls_cert_file != !o->tls_key_file)
        return -EINVAL;
    sim = calloc(1, sizeof(*sim));
    if (!sim)
        return -ENOMEM;
    pthread_mutex_init(&sim->lock, NULL);
    avisim_faults_clear(&sim->faults);
    rc = avisim_log_init(&sim->log);
    if (rc)
        goto out_destroy;
    sim->username = copy_option(o->username, "admin", &rc);
    sim->password = copy_option(o->password, "avi123", &rc);
    sim->version = copy_option(o->version, "22.1.3", &rc);
    if (rc)
        goto out_destroy;
    if (avisim_version_cmp(sim->version, sim->version, &cmp)) {
        rc = -EINVAL;
        goto out_destroy;
    }
    sim->allow_basic_auth = o->allow_basic_auth;
    sim->sessions.idle_ms = (int64_t)(o->idle_timeout_s ? o->idle_timeout_s : 900) * 1000;
    if (o->tls_cert_file) {
        sim->tls = true;
        rc = read_file(o->tls_cert_file, &sim->tls_cert_pem);
        if (!rc)
            rc = read_file(o->tls_key_file, &sim->tls_key_pem);
        if (rc)
            goto out_destroy;
    }
    struct avisim_seed_opts seed = {
        .tenants = o->tenants ? o->tenants : "",
        .vip_network = o->vip_network ? o->vip_network : "vip-net",
        .vip_range = o->vip_range ? o->vip_range : "10.10.10.100-10.10.10.199",
    };
    if (strlen(seed.tenants) > 64 * 1024) {
        rc = -EINVAL;
        goto out_destroy;
    }
    if (o->faults) {
        /* Same rules as POST /_sim/faults; a bad setting refuses to start. */
        char err[AVISIM_ERR_LEN];
        struct avisim_session_faults once; /* no session exists yet */
        json_t *cfg = strlen(o->faults) <= MAX_OPTION_LEN ? json_loads(o->faults, 0, NULL) : NULL;
        int bad = !cfg || avisim_faults_set(&sim->faults, cfg, &once, err, sizeof(err));
        json_decref(cfg);
        if (bad) {
            rc = -EINVAL;
            goto out_destroy;
        }
    }
    rc = avisim_seed(&sim->store, &seed);
    if (rc)
        goto out_destroy;
    rc = avisim_http_start(sim, o->port);
    if (rc)
        goto out_destroy;
    *out = sim;
    return 0;

out_destroy:
    avisim_destroy(&sim);
    return rc;
}

int avisim_port(const avisim_t *sim)
{
    return sim ? sim->port : -1;
}

char *avisim_state_json(avisim_t *sim)
{
    char *base = avisim_default_base(sim);
    char *text = NULL;
    if (!base)
        return NULL;
    pthread_mutex_lock(&sim->lock);
    json_t *state = avisim_store_state(&sim->store, base);
    if (state)
        text = json_dumps(state, JSON_INDENT(2));
    json_decref(state);
    pthread_mutex_unlock(&sim->lock);
    free(base);
    return text;
}

json_t *avisim_state(avisim_t *sim)
{
    char *base = avisim_default_base(sim);
    if (!base)
        return NULL;
    pthread_mutex_lock(&sim->lock);
    json_t *state = avisim_store_state(&sim->store, base);
    pthread_mutex_unlock(&sim->lock);
    free(base);
    return state;
}

void avisim_destroy(avisim_t **simp)
{
    struct avisim *sim = simp ? *simp : NULL;
    if (!sim)
        return;
    avisim_http_stop(sim);
    avisim_session_end_all(&sim->sessions);
    avisim_store_fini(&sim->store);
    avisim_log_fini(&sim->log);
    free(sim->username);
    free(sim->password);
    free(sim->version);
    free(sim->tls_cert_pem);
    free(sim->tls_key_pem);
    pthread_mutex_destroy(&sim->lock);
    free(sim);
    *simp = NULL;
}
