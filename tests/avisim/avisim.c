/*
 * Construction and teardown of the simulator, and the state dump. The
 * options are copied, so the caller's strings need not outlive avisim_new().
 */
#include <errno.h>
#include <pthread.h>
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

/*
 * Parsing the 1 MB object model costs about 200 ms under ASan and a test
 * program may start a hundred simulators, so each model file is parsed once
 * per process and shared: a schema is immutable, and the cache keeps it
 * reachable until exit.
 */
struct model_cache {
    char *path;
    struct avisim_schema *schema;
    struct model_cache *next;
};
static pthread_mutex_t model_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct model_cache *model_cache;

static int model_get(const char *path, const struct avisim_schema **out)
{
    char err[AVISIM_ERR_LEN];
    struct model_cache *m;
    int rc = 0;

    pthread_mutex_lock(&model_cache_lock);
    for (m = model_cache; m && strcmp(m->path, path) != 0; m = m->next)
        ;
    if (!m) {
        struct avisim_schema *schema = NULL;
        rc = avisim_schema_load(&schema, path, err, sizeof(err));
        if (rc) {
            fprintf(stderr, "avisim: object model: %s\n", err);
            goto out_unlock;
        }
        m = calloc(1, sizeof(*m));
        if (m)
            m->path = strdup(path);
        if (!m || !m->path) {
            free(m);
            avisim_schema_destroy(&schema);
            rc = -ENOMEM;
            goto out_unlock;
        }
        m->schema = schema;
        m->next = model_cache;
        model_cache = m;
    }
    *out = m->schema;
out_unlock:
    pthread_mutex_unlock(&model_cache_lock);
    return rc;
}

/* The model file every write is checked against; "" starts without one. */
static int load_model(struct avisim *sim, const char *path)
{
    const char *file = path ? path : AVISIM_MODEL_DEFAULT;

    if (!*file)
        return 0;
    if (strlen(file) > MAX_OPTION_LEN)
        return -EINVAL;
    int rc = model_get(file, &sim->schema);
    if (!rc)
        sim->store.schema = sim->schema;
    return rc;
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
    rc = load_model(sim, o->model_file);
    if (rc)
        goto out_destroy;
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
