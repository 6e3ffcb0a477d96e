/* syncer.c — see syncer.h.
 *
 * Invariants:
 *  - a model entry exists for every model key seen since start (until its
 *    deletion is applied or it is found stale while "!complete" holds);
 *  - `owners`/`vips`/`error` of an entry describe its last applied or
 *    refused version, never a version still pending, so a Service's status
 *    changes only when the controller did;
 *  - an owner's status is the union of the VIPs of every model listing it,
 *    and the first error among them. */
#include "syncer/syncer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <zmq.h>

#include "common/backoff.h"
#include "common/bus.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/envelope.h"
#include "proto/model.h"
#include "proto/status.h"
#include "syncer/avi_cache.h"
#include "syncer/avi_session.h"
#include "syncer/avi_types.h"
#include "syncer/reconcile.h"

#define SYNCER_PROGRESS_EVERY_MS 5000
#define SYNCER_STATUS_EVERY_MS 60000
#define SYNCER_BACKOFF_INITIAL_MS 500
#define SYNCER_BACKOFF_MAX_MS 30000
#define SYNCER_GC_EVERY_MS 600000 /* retry deletions the controller refused earlier */
#define SYNCER_IDLE_WAIT_MS 1000 /* upper bound on one poll, so no wait is unbounded */
#define SYNCER_STREAM_MAX 256
#define SYNCER_JOBS_PER_REQUEST 4 /* model jobs per request slot on the wire */
#define SYNCER_EVENT_BATCH 500 /* bus events handled per loop turn */

typedef enum {
    MODEL_PENDING = 0,
    MODEL_APPLIED = 1,
    MODEL_REFUSED = 2,
} syncer_model_state;

typedef struct syncer_model {
    char *name;
    struct syncer *syncer;
    proto_model *desired; /* newest version; NULL once deleted */
    uint8_t *raw;         /* its encoded bytes, to spot an identical re-send */
    size_t raw_len;
    uint64_t fingerprint; /* proto_model_fingerprint of name + raw */
    bool deleting;        /* the planner deleted it: remove all it holds */
    bool stale;           /* not seen since the last RESET */
    syncer_model_state state;
    uint64_t received;    /* arrival number of the newest version */
    int64_t due_ms;       /* earliest next attempt */
    backoff_t backoff;
    reconcile_held held;
    /* The attempt on the wire: its job, the version it writes (owned here
     * once a newer version replaced it as `desired`), and `received` when
     * it started, to tell a superseded outcome. */
    reconcile_job_t *job;
    proto_model *applying;
    bool applying_owned;
    uint64_t job_received;
    reconcile_outcome outcome;
    /* What the owners are told: from the last applied or refused version. */
    char **owners;
    size_t n_owners;
    char **vips;
    size_t n_vips;
    char *error;
    UT_hash_handle hh;
} syncer_model;

/* A model the planner could not publish ("!refused/<model>"): the object
 * it is for and why. */
typedef struct {
    char *key;
    char *owner;
    char *error;
    UT_hash_handle hh;
} syncer_refusal;

/* A set of strings (owners, "type/name" keys). */
typedef struct {
    char *key;
    UT_hash_handle hh;
} syncer_name;

struct syncer {
    const kv_config *cfg;
    char *tenant;
    void *zmq_ctx;
    bus_sub_t *sub;
    void *status_push;
    avi_session_t *session;
    avi_cache_t *cache;
    syncer_model *models;
    syncer_refusal *refusals; /* the planner's "!refused/" markers in view */
    bool more_events;         /* the last turn stopped at SYNCER_EVENT_BATCH */
    volatile sig_atomic_t *stop;
    unsigned jobs;      /* model jobs on the wire */
    unsigned max_jobs;  /* controllerParallelRequests × SYNCER_JOBS_PER_REQUEST */
    reconcile_job_t *gc_job;
    reconcile_outcome gc_outcome;

    bool cache_loaded;
    bool cache_suspect; /* reload before the next model */
    int64_t cache_due_ms;
    backoff_t cache_backoff;

    bool complete;      /* "!complete" is in the current view */
    bool credentials_refused; /* login answered "Invalid credentials": stop */
    uint64_t eos_seen;  /* run id of "!eos" in the current view, 0 if none */
    uint32_t eos_models; /* the models the planner says the stream holds then */
    uint64_t eos_digest;
    uint64_t eos_received; /* arrival number of that marker */
    uint64_t eos_reached;  /* run id last logged as reached */
    uint64_t arrivals;

    bool gc_due;
    int64_t gc_due_ms;
    int64_t next_gc_ms;  /* the periodic pass */
    backoff_t gc_backoff;
    unsigned gc_runs;

    int64_t backoff_initial_ms;
    int64_t backoff_max_ms;

    char *last_error;   /* most recent refusal */
    bool initial_push_done;
    int64_t next_status_ms;
    int64_t next_progress_ms;
    bool progress_sent;
    proto_progress last_progress; /* what was sent last; last_error owned */
};

/* ---- string sets ------------------------------------------------------------- */

static int name_set_add(syncer_name **set, const char *key)
{
    syncer_name *n = NULL;
    HASH_FIND_STR(*set, key, n);
    if (n)
        return KV_OK;
    n = calloc(1, sizeof *n);
    if (!n)
        return KV_ERR_NOMEM;
    n->key = strdup(key);
    if (!n->key) {
        free(n);
        return KV_ERR_NOMEM;
    }
    HASH_ADD_KEYPTR(hh, *set, n->key, strlen(n->key), n);
    return KV_OK;
}

static bool name_set_has(const syncer_name *set, const char *key)
{
    syncer_name *n = NULL;
    HASH_FIND_STR(set, key, n);
    return n != NULL;
}

static void name_set_clear(syncer_name **set)
{
    syncer_name *n, *tmp;
    HASH_ITER(hh, *set, n, tmp) {
        HASH_DEL(*set, n);
        free(n->key);
        free(n);
    }
}

static void strings_free(char ***items, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*items)[i]);
    free(*items);
    *items = NULL;
    *n = 0;
}

static int strings_copy(char ***out, size_t *n_out, char *const *items, size_t n)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return KV_OK;
    char **copy = calloc(n, sizeof *copy);
    if (!copy)
        return KV_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        copy[i] = strdup(items[i]);
        if (!copy[i]) {
            strings_free(&copy, &i);
            return KV_ERR_NOMEM;
        }
    }
    *out = copy;
    *n_out = n;
    return KV_OK;
}

/* ---- model entries ------------------------------------------------------------ */

static void model_free(syncer_model *m)
{
    reconcile_job_cancel(&m->job);
    reconcile_outcome_clear(&m->outcome);
    if (m->applying_owned)
        proto_model_destroy(&m->applying);
    free(m->name);
    proto_model_destroy(&m->desired);
    free(m->raw);
    reconcile_held_clear(&m->held);
    strings_free(&m->owners, &m->n_owners);
    strings_free(&m->vips, &m->n_vips);
    free(m->error);
    free(m);
}

/* The desired version goes, unless a job on the wire still writes it: then
 * the entry keeps it as `applying` until the job ends. */
static void model_drop_desired(syncer_model *m)
{
    if (m->job && m->desired == m->applying) {
        m->applying_owned = true;
        m->desired = NULL;
        return;
    }
    proto_model_destroy(&m->desired);
}

static syncer_model *model_get(syncer_t *s, const char *name)
{
    syncer_model *m = NULL;
    HASH_FIND_STR(s->models, name, m);
    return m;
}

/* Does this model need the controller's attention? */
static bool model_is_pending(const syncer_model *m)
{
    return m->state == MODEL_PENDING && (m->deleting || (!m->stale && m->desired));
}

/* ---- status out ------------------------------------------------------------------ */

static void syncer_send(syncer_t *s, void *data, size_t len)
{
    /* Never block: with no watcher the message waits in the queue up to
     * the high-water mark, beyond that it is dropped, and the periodic
     * re-push repairs the loss. */
    if (zmq_send(s->status_push, data, len, ZMQ_DONTWAIT) < 0 && errno != EAGAIN)
        log_warn("status: send failed: %s", zmq_strerror(errno));
    free(data);
}

static int vips_add_unique(char ***vips, size_t *n, char *const *add, size_t n_add)
{
    for (size_t i = 0; i < n_add; i++) {
        bool seen = false;
        for (size_t j = 0; j < *n && !seen; j++)
            seen = strcmp((*vips)[j], add[i]) == 0;
        if (seen)
            continue;
        char **grown = realloc(*vips, (*n + 1) * sizeof *grown);
        if (!grown)
            return KV_ERR_NOMEM;
        *vips = grown;
        grown[*n] = add[i]; /* borrowed */
        (*n)++;
    }
    return KV_OK;
}

/* Computes and pushes the status of one Kubernetes object. */
static void syncer_push_owner(syncer_t *s, const char *owner)
{
    char **vips = NULL; /* borrowed strings */
    size_t n_vips = 0;
    const char *error = NULL;
    for (syncer_model *m = s->models; m; m = m->hh.next) {
        bool listed = false;
        for (size_t i = 0; i < m->n_owners && !listed; i++)
            listed = strcmp(m->owners[i], owner) == 0;
        if (!listed)
            continue;
        if (vips_add_unique(&vips, &n_vips, m->vips, m->n_vips) < 0)
            break;
        if (!error && m->error)
            error = m->error;
    }
    for (const syncer_refusal *r = s->refusals; r; r = r->hh.next)
        if (strcmp(r->owner, owner) == 0)
            error = r->error; /* its current model is not even on the stream */
    proto_object_status st = {
        .object = (char *)owner,
        .tenant = s->tenant,
        .vips = vips,
        .n_vips = n_vips,
        .error = (char *)error,
    };
    void *data = NULL;
    size_t len = 0;
    if (proto_object_status_encode(&st, &data, &len) == KV_OK)
        syncer_send(s, data, len);
    log_debug("status %s: %zu vips%s%s", owner, n_vips, error ? ", error: " : "",
              error ? error : "");
    free(vips);
}

static void syncer_push_owners(syncer_t *s, syncer_name *owners)
{
    for (syncer_name *n = owners; n; n = n->hh.next)
        syncer_push_owner(s, n->key);
}

static void syncer_push_all(syncer_t *s)
{
    syncer_name *owners = NULL;
    for (syncer_model *m = s->models; m; m = m->hh.next)
        for (size_t i = 0; i < m->n_owners; i++)
            if (name_set_add(&owners, m->owners[i]) < 0)
                break;
    for (const syncer_refusal *r = s->refusals; r; r = r->hh.next)
        name_set_add(&owners, r->owner);
    syncer_push_owners(s, owners);
    log_debug("status: re-pushed %u objects", HASH_COUNT(owners));
    name_set_clear(&owners);
}

static void syncer_owners_of(syncer_name **set, const syncer_model *m)
{
    for (size_t i = 0; i < m->n_owners; i++)
        name_set_add(set, m->owners[i]);
}

/* ---- progress ------------------------------------------------------------------------ */

/* Where the models stand, counted in one pass. */
typedef struct {
    unsigned pending;
    unsigned failed;
    unsigned pending_before_eos; /* pending and arrived before "!eos" */
    uint32_t applied;            /* applied and current: the set the planner published */
    uint64_t applied_digest;
} syncer_tally;

static void syncer_count(const syncer_t *s, syncer_tally *t)
{
    memset(t, 0, sizeof *t);
    for (const syncer_model *m = s->models; m; m = m->hh.next) {
        if (model_is_pending(m)) {
            t->pending++;
            t->pending_before_eos += m->received < s->eos_received;
        } else if (m->stale || m->deleting || !m->desired) {
            continue;
        } else if (m->state == MODEL_REFUSED) {
            t->failed++;
        } else if (m->state == MODEL_APPLIED) {
            t->applied++;
            t->applied_digest += m->fingerprint;
        }
    }
    t->failed += HASH_COUNT(s->refusals);
}

static void syncer_counts(const syncer_t *s, unsigned *pending, unsigned *failed)
{
    syncer_tally t;
    syncer_count(s, &t);
    *pending = t.pending;
    *failed = t.failed;
}

static bool syncer_gc_allowed(const syncer_t *s)
{
    return s->cache_loaded && s->complete && bus_sub_is_consistent(s->sub);
}

/* The "!eos" run in view is reached when every model that arrived before
 * the marker has been applied or refused, and the garbage collection a
 * complete view calls for is done; 0 while it is not (or none is in view,
 * e.g. after a reset), so a report never pairs an old end with new work. */
static uint64_t syncer_eos_reached(syncer_t *s, const syncer_tally *t)
{
    if (!s->eos_seen || !s->cache_loaded || !bus_sub_is_consistent(s->sub))
        return 0;
    if (s->gc_due && syncer_gc_allowed(s))
        return 0;
    if (t->pending_before_eos)
        return 0;
    if (s->eos_reached != s->eos_seen)
        log_info("end of stream: run %llu reached: %u of the %u models published applied, %u "
                 "refused",
                 (unsigned long long)s->eos_seen, t->applied, s->eos_models, t->failed);
    s->eos_reached = s->eos_seen;
    return s->eos_seen;
}

static bool str_equal(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Sends the progress when it changed or is due; t counts the models now. */
static void syncer_progress(syncer_t *s, int64_t now, const syncer_tally *t)
{
    proto_progress p = {.tenant = s->tenant, .last_error = s->last_error};
    p.pending = t->pending;
    p.failed = t->failed;
    p.eos_run = syncer_eos_reached(s, t);
    p.published_models = s->eos_models; /* of the "!eos" in view, reached or not */
    p.published_digest = s->eos_digest;
    p.applied_models = t->applied;
    p.applied_digest = t->applied_digest;
    bool changed = !s->progress_sent || p.pending != s->last_progress.pending ||
                   p.failed != s->last_progress.failed ||
                   p.eos_run != s->last_progress.eos_run ||
                   p.published_models != s->last_progress.published_models ||
                   p.published_digest != s->last_progress.published_digest ||
                   p.applied_models != s->last_progress.applied_models ||
                   p.applied_digest != s->last_progress.applied_digest ||
                   !str_equal(p.last_error, s->last_progress.last_error);
    if (!changed && now < s->next_progress_ms)
        return;
    void *data = NULL;
    size_t len = 0;
    if (proto_progress_encode(&p, &data, &len) == KV_OK)
        syncer_send(s, data, len);
    if (changed)
        log_info("progress: %u applied, %u pending, %u failed, eos run %llu", p.applied_models,
                 p.pending, p.failed, (unsigned long long)p.eos_run);
    free(s->last_progress.last_error);
    s->last_progress = p;
    s->last_progress.tenant = NULL;
    s->last_progress.last_error = p.last_error ? strdup(p.last_error) : NULL;
    s->progress_sent = true;
    s->next_progress_ms = now + SYNCER_PROGRESS_EVERY_MS;
}

/* ---- bus events ---------------------------------------------------------------------- */

static void refusal_free(syncer_refusal *r)
{
    free(r->key);
    free(r->owner);
    free(r->error);
    free(r);
}

static void refusals_clear(syncer_t *s)
{
    syncer_refusal *r, *tmp;
    HASH_ITER(hh, s->refusals, r, tmp) {
        HASH_DEL(s->refusals, r);
        refusal_free(r);
    }
}

static void syncer_on_reset(syncer_t *s)
{
    log_info("model stream reset: waiting for a fresh snapshot (nothing is deleted)");
    s->complete = false;
    s->eos_seen = 0;
    for (syncer_model *m = s->models; m; m = m->hh.next)
        m->stale = true;
    refusals_clear(s); /* the snapshot brings those still standing */
}

static void syncer_remember_error(syncer_t *s, const char *error)
{
    free(s->last_error);
    s->last_error = error ? strdup(error) : NULL;
}

/* "!refused/<model>" came or went: remember it and tell the object's status. */
static void syncer_on_refusal(syncer_t *s, const bus_event *ev)
{
    syncer_refusal *r = NULL;
    HASH_FIND_STR(s->refusals, ev->env.key, r);
    char *owner = r ? strdup(r->owner) : NULL;
    if (r) {
        HASH_DEL(s->refusals, r);
        refusal_free(r);
    }
    if (ev->type == BUS_PUT) {
        proto_status st;
        int rc = proto_status_decode(&st, ev->env.body, ev->env.body_len);
        if (rc < 0 || st.type != PROTO_STATUS_OBJECT || !st.object.object ||
            !st.object.error) {
            log_warn("marker %s: cannot decode it (%s); ignored", ev->env.key,
                     rc < 0 ? kv_strerror(rc) : "not an object status with an error");
        } else if ((r = calloc(1, sizeof *r)) && (r->key = strdup(ev->env.key)) &&
                   (r->owner = strdup(st.object.object)) && (r->error = strdup(st.object.error))) {
            HASH_ADD_KEYPTR(hh, s->refusals, r->key, strlen(r->key), r);
            log_warn("%s: the planner refused its model: %s", r->owner, r->error);
            syncer_remember_error(s, r->error);
            free(owner);
            owner = strdup(r->owner);
        } else if (r) {
            refusal_free(r);
        }
        if (rc == KV_OK)
            proto_status_clear(&st);
    }
    if (owner)
        syncer_push_owner(s, owner);
    free(owner);
}

static void syncer_on_marker(syncer_t *s, const bus_event *ev)
{
    const char *key = ev->env.key;
    bool put = ev->type == BUS_PUT;
    if (strncmp(key, PROTO_KEY_REFUSED_PREFIX, strlen(PROTO_KEY_REFUSED_PREFIX)) == 0) {
        syncer_on_refusal(s, ev);
    } else if (strcmp(key, PROTO_KEY_COMPLETE) == 0) {
        if (put && !s->complete)
            s->gc_due = true;
        s->complete = put;
    } else if (strcmp(key, PROTO_KEY_EOS) == 0) {
        proto_eos eos = {0};
        int rc = put ? proto_eos_decode(&eos, ev->env.body, ev->env.body_len) : KV_OK;
        if (rc < 0) {
            log_warn("marker %s: cannot decode it (%s); ignored", key, kv_strerror(rc));
            return;
        }
        if (put && !eos.has_models)
            log_warn("marker %s: no model count (not from a planner?); the run cannot be "
                     "verified",
                     key);
        s->eos_seen = eos.run_id;
        s->eos_models = eos.models;
        s->eos_digest = eos.digest;
        s->eos_received = ++s->arrivals;
    }
}

static void syncer_on_put(syncer_t *s, const bus_event *ev, int64_t now)
{
    const char *key = ev->env.key;
    syncer_model *m = model_get(s, key);
    if (m && m->desired && !m->deleting && m->raw_len == ev->env.body_len &&
        (m->raw_len == 0 || memcmp(m->raw, ev->env.body, m->raw_len) == 0)) {
        m->stale = false; /* the same version again (a snapshot after a reset) */
        return;
    }
    proto_model *model = NULL;
    int rc = proto_model_decode(&model, ev->env.body, ev->env.body_len);
    if (rc < 0) {
        log_warn("model %s: cannot decode (%s); skipped", key, kv_strerror(rc));
        return;
    }
    if (!model->name || strcmp(model->name, key) != 0)
        log_warn("model %s: body names it '%s'; using the key", key,
                 model->name ? model->name : "");
    uint8_t *raw = malloc(ev->env.body_len ? ev->env.body_len : 1);
    if (!raw) {
        proto_model_destroy(&model);
        return;
    }
    if (ev->env.body_len)
        memcpy(raw, ev->env.body, ev->env.body_len);
    if (!m) {
        m = calloc(1, sizeof *m);
        if (!m || !(m->name = strdup(key))) {
            free(m);
            free(raw);
            proto_model_destroy(&model);
            return;
        }
        m->syncer = s;
        HASH_ADD_KEYPTR(hh, s->models, m->name, strlen(m->name), m);
    }
    model_drop_desired(m);
    free(m->raw);
    m->desired = model;
    m->raw = raw;
    m->raw_len = ev->env.body_len;
    m->fingerprint = proto_model_fingerprint(key, raw, m->raw_len);
    m->deleting = false;
    m->stale = false;
    m->state = MODEL_PENDING;
    m->received = ++s->arrivals;
    m->due_ms = now;
    backoff_init(&m->backoff, s->backoff_initial_ms, s->backoff_max_ms);
}

static void syncer_on_delete(syncer_t *s, const bus_event *ev, int64_t now)
{
    syncer_model *m = model_get(s, ev->env.key);
    if (!m) {
        /* Never seen since we started: whatever it left on the controller
         * is a leftover for the next garbage collection. */
        s->gc_due = true;
        return;
    }
    log_info("model %s deleted by the planner", m->name);
    /* Everything the last version wanted may exist (an attempt may have
     * been cut short); deleting what was never created costs nothing, as
     * only cached objects are deleted. */
    for (size_t i = 0; m->desired && i < m->desired->n_objects; i++) {
        const proto_avi_object *obj = &m->desired->objects[i];
        if (obj->type && obj->name &&
            reconcile_held_add(&m->held, obj->type, obj->name,
                               avi_type_rank(obj->type, obj->body)) < 0)
            log_warn("model %s: out of memory; %s %s left to garbage collection", m->name,
                     obj->type, obj->name);
    }
    model_drop_desired(m);
    free(m->raw);
    m->raw = NULL;
    m->raw_len = 0;
    m->deleting = true;
    m->state = MODEL_PENDING;
    m->received = ++s->arrivals;
    m->due_ms = now;
    backoff_init(&m->backoff, s->backoff_initial_ms, s->backoff_max_ms);
}

static void syncer_on_event(syncer_t *s, const bus_event *ev, int64_t now)
{
    switch (ev->type) {
    case BUS_RESET:
        syncer_on_reset(s);
        break;
    case BUS_CONSISTENT: {
        unsigned stale = 0;
        for (const syncer_model *m = s->models; m; m = m->hh.next)
            stale += m->stale;
        log_info("model stream consistent: %u models (%u from before a reset, not in the "
                 "snapshot)",
                 HASH_COUNT(s->models) - stale, stale);
        s->gc_due = true;
        break;
    }
    case BUS_PUT:
    case BUS_DELETE:
        if (!ev->env.key)
            break;
        if (ev->env.key[0] == '!')
            syncer_on_marker(s, ev);
        else if (ev->type == BUS_PUT)
            syncer_on_put(s, ev, now);
        else
            syncer_on_delete(s, ev, now);
        break;
    }
}

/* ---- controller work ----------------------------------------------------------------- */


static void syncer_load_cache(syncer_t *s, int64_t now)
{
    int rc = avi_cache_load(s->cache, s->session);
    if (rc < 0) {
        const char *why = avi_session_error(s->session)[0] ? avi_session_error(s->session)
                                                            : kv_strerror(rc);
        /* Progress carries it, so a one-shot run that times out says why. */
        syncer_remember_error(s, why);
        /* As AKO: refused credentials do not get better by retrying. */
        if (strstr(avi_session_message(s->session), "Invalid credentials")) {
            log_error("the controller refused the credentials (%s); fix them and restart", why);
            s->credentials_refused = true;
            return;
        }
        int64_t wait = backoff_next_ms(&s->cache_backoff);
        log_warn("cannot list the controller's objects (%s); retry in %lld ms", why,
                 (long long)wait);
        s->cache_due_ms = now + wait;
        return;
    }
    backoff_reset(&s->cache_backoff);
    s->cache_loaded = true;
    s->cache_suspect = false;
    s->gc_due = true;
}

static syncer_model *syncer_next_model(syncer_t *s, int64_t now, int64_t *next_due)
{
    syncer_model *best = NULL;
    *next_due = INT64_MAX;
    for (syncer_model *m = s->models; m; m = m->hh.next) {
        if (!model_is_pending(m) || m->job)
            continue;
        if (m->due_ms > now) {
            if (m->due_ms < *next_due)
                *next_due = m->due_ms;
            continue;
        }
        if (!best || m->due_ms < best->due_ms ||
            (m->due_ms == best->due_ms && m->received < best->received))
            best = m;
    }
    return best;
}


static void syncer_retry_later(syncer_t *s, syncer_model *m, const reconcile_outcome *o,
                               int64_t now)
{
    int64_t wait = backoff_next_ms(&m->backoff);
    m->due_ms = now + wait;
    if (o->cache_suspect)
        s->cache_suspect = true;
    /* Progress carries it: a run that times out on a model retried for
     * ever ("No available free IPs") says why. */
    if (o->error)
        syncer_remember_error(s, o->error);
    log_warn("model %s: not applied (%s); retry in %lld ms", m->name,
             o->error ? o->error : "transient failure", (long long)wait);
}

/* A model's job ended: true when its outcome still speaks for the model,
 * false when a newer version (or the planner's delete) arrived while it
 * ran, which is pending already and owns the next attempt. */
static bool syncer_job_ended(syncer_t *s, syncer_model *m)
{
    m->job = NULL;
    s->jobs--;
    if (m->applying_owned)
        proto_model_destroy(&m->applying);
    m->applying = NULL;
    m->applying_owned = false;
    if (m->received == m->job_received)
        return true;
    if (m->outcome.cache_suspect)
        s->cache_suspect = true;
    log_debug("model %s: a newer version arrived while the last was written", m->name);
    reconcile_outcome_clear(&m->outcome);
    return false;
}

static void syncer_on_delete_done(void *payload, int rc)
{
    syncer_model *m = payload;
    syncer_t *s = m->syncer;
    int64_t now = clock_now_ms();
    reconcile_outcome o = m->outcome; /* taken */
    memset(&m->outcome, 0, sizeof m->outcome);
    if (!syncer_job_ended(s, m)) {
        reconcile_outcome_clear(&o);
        return;
    }
    if (rc < 0 && o.result != RECONCILE_REFUSED) {
        syncer_retry_later(s, m, &o, now);
        reconcile_outcome_clear(&o);
        return;
    }
    if (rc < 0)
        log_warn("model %s: some objects could not be deleted (%s); left to garbage "
                 "collection", m->name, o.error ? o.error : "refused");
    else
        log_info("model %s: deleted from the controller", m->name);
    syncer_name *owners = NULL;
    syncer_owners_of(&owners, m);
    HASH_DEL(s->models, m);
    model_free(m);
    syncer_push_owners(s, owners);
    name_set_clear(&owners);
    reconcile_outcome_clear(&o);
}

static void syncer_on_apply_done(void *payload, int rc)
{
    syncer_model *m = payload;
    syncer_t *s = m->syncer;
    int64_t now = clock_now_ms();
    reconcile_outcome o = m->outcome; /* taken */
    memset(&m->outcome, 0, sizeof m->outcome);
    if (!syncer_job_ended(s, m)) {
        reconcile_outcome_clear(&o);
        return;
    }
    if (rc < 0 && o.result != RECONCILE_REFUSED) {
        syncer_retry_later(s, m, &o, now);
        reconcile_outcome_clear(&o);
        return;
    }
    /* Applied or refused: the owners learn the outcome. The old owners
     * are told too, in case this version dropped one of them. */
    syncer_name *owners = NULL;
    syncer_owners_of(&owners, m);
    strings_free(&m->owners, &m->n_owners);
    if (strings_copy(&m->owners, &m->n_owners, m->desired->owners, m->desired->n_owners) < 0)
        log_warn("model %s: out of memory recording owners", m->name);
    syncer_owners_of(&owners, m);
    free(m->error);
    m->error = NULL;
    if (rc == KV_OK) {
        m->state = MODEL_APPLIED;
        strings_free(&m->vips, &m->n_vips);
        m->vips = o.vips; /* taken */
        m->n_vips = o.n_vips;
        o.vips = NULL;
        o.n_vips = 0;
    } else {
        /* Not retried until a newer version arrives. The VIPs of the
         * version that last landed are still what the controller serves. */
        m->state = MODEL_REFUSED;
        m->error = o.error ? strdup(o.error) : strdup("refused by the controller");
        syncer_remember_error(s, m->error);
        log_warn("model %s: refused by the controller: %s", m->name, m->error ? m->error : "");
    }
    syncer_push_owners(s, owners);
    name_set_clear(&owners);
    reconcile_outcome_clear(&o);
}

/* Objects wanted by a live model: the desired version's objects, and what
 * a model not yet applied may still refer to (its held set). */
static int syncer_wanted_set(syncer_t *s, syncer_name **set)
{
    char key[600];
    for (syncer_model *m = s->models; m; m = m->hh.next) {
        if (m->stale || m->deleting || !m->desired)
            continue;
        for (size_t i = 0; i < m->desired->n_objects; i++) {
            snprintf(key, sizeof key, "%s/%s", m->desired->objects[i].type,
                     m->desired->objects[i].name);
            if (name_set_add(set, key) < 0)
                return KV_ERR_NOMEM;
        }
        for (size_t i = 0; i < m->held.n; i++) {
            snprintf(key, sizeof key, "%s/%s", m->held.refs[i].type, m->held.refs[i].name);
            if (name_set_add(set, key) < 0)
                return KV_ERR_NOMEM;
        }
    }
    return KV_OK;
}

static bool syncer_is_wanted(const char *type, const char *name, void *payload)
{
    char key[600];
    snprintf(key, sizeof key, "%s/%s", type, name);
    return name_set_has(payload, key);
}

/* Models the planner no longer has (stale since a reset, and "!complete"
 * now says the view is whole) are forgotten; GC removes their objects. */
static void syncer_forget_stale(syncer_t *s)
{
    syncer_name *owners = NULL;
    syncer_model *m, *tmp;
    HASH_ITER(hh, s->models, m, tmp) {
        if (!m->stale || m->deleting)
            continue;
        log_info("model %s: gone from the planner's snapshot", m->name);
        syncer_owners_of(&owners, m);
        HASH_DEL(s->models, m);
        model_free(m);
    }
    syncer_push_owners(s, owners);
    name_set_clear(&owners);
}

static void syncer_on_gc_done(void *payload, int rc)
{
    syncer_t *s = payload;
    int64_t now = clock_now_ms();
    reconcile_outcome o = s->gc_outcome; /* taken */
    memset(&s->gc_outcome, 0, sizeof s->gc_outcome);
    s->gc_job = NULL;
    if (rc < 0) {
        int64_t wait = backoff_next_ms(&s->gc_backoff);
        log_warn("gc: interrupted (%s); retry in %lld ms", o.error ? o.error : kv_strerror(rc),
                 (long long)wait);
        s->gc_due_ms = now + wait;
        if (o.cache_suspect)
            s->cache_suspect = true;
    } else {
        backoff_reset(&s->gc_backoff);
        s->gc_due = false;
        s->gc_runs++;
        if (o.writes)
            log_info("gc: %u leftover objects deleted", o.writes);
    }
    reconcile_outcome_clear(&o);
}

/* Starts the models' jobs: one per model, at most max_jobs at once. */
static void syncer_start_model(syncer_t *s, syncer_model *m)
{
    int rc;
    m->job_received = m->received;
    s->jobs++;
    if (m->deleting) {
        rc = reconcile_start_delete(&m->job, &m->outcome, s->session, s->cache, &m->held,
                                    syncer_on_delete_done, m);
        if (rc < 0)
            syncer_on_delete_done(m, rc);
        return;
    }
    m->applying = m->desired;
    m->applying_owned = false;
    rc = reconcile_start_apply(&m->job, &m->outcome, s->session, s->cache, m->desired, &m->held,
                               syncer_on_apply_done, m);
    if (rc < 0)
        syncer_on_apply_done(m, rc); /* an invalid model: refused without a request */
}

static void syncer_collect_garbage(syncer_t *s)
{
    syncer_name *wanted = NULL;
    syncer_forget_stale(s);
    int rc = syncer_wanted_set(s, &wanted);
    if (rc == KV_OK)
        rc = reconcile_start_gc(&s->gc_job, &s->gc_outcome, s->session, s->cache,
                                syncer_is_wanted, wanted, syncer_on_gc_done, s);
    name_set_clear(&wanted); /* asked at the start only */
    if (rc < 0) {
        s->gc_outcome.result = RECONCILE_TRANSIENT;
        s->gc_job = NULL;
        syncer_on_gc_done(s, rc); /* retried after the GC backoff */
    }
}

/* ---- the step ------------------------------------------------------------------------------ */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* What controller work is possible now; *wait_ms says when the next is. */
typedef enum { WORK_NONE, WORK_CACHE, WORK_MODEL, WORK_GC } syncer_work;

static syncer_work syncer_pick_work(syncer_t *s, int64_t now, syncer_model **model,
                                    int64_t *wait_ms)
{
    int64_t next_due;
    *model = NULL;
    *wait_ms = INT64_MAX;
    /* The cache is (re)loaded and GC runs with nothing else on the wire;
     * the jobs that are end first, and their answers wake the loop. */
    bool idle = s->jobs == 0 && !s->gc_job;
    if (!s->cache_loaded || s->cache_suspect) {
        if (!idle)
            return WORK_NONE;
        if (now >= s->cache_due_ms)
            return WORK_CACHE;
        *wait_ms = s->cache_due_ms - now;
        return WORK_NONE;
    }
    if (s->gc_job || s->jobs >= s->max_jobs)
        return WORK_NONE;
    *model = syncer_next_model(s, now, &next_due);
    if (*model)
        return WORK_MODEL;
    if (next_due != INT64_MAX)
        *wait_ms = next_due - now;
    /* GC runs between retries, never before a model that is due. */
    if (idle && s->gc_due && syncer_gc_allowed(s)) {
        if (now >= s->gc_due_ms)
            return WORK_GC;
        *wait_ms = min64(*wait_ms, s->gc_due_ms - now);
    }
    return WORK_NONE;
}

/* One loop: the bus sockets and curl's sockets in one zmq_poll (curl's are
 * raw fds), woken by whichever is first of the bus timers, curl's timer,
 * the session's retry and pause timers and the models' backoff. */
int syncer_step(syncer_t *s, int64_t max_wait_ms)
{
    zmq_pollitem_t items[2 + AVI_SESSION_MAX_POLLITEMS];
    int64_t now = clock_now_ms();
    syncer_model *model;
    int64_t work_wait;
    syncer_work work = syncer_pick_work(s, now, &model, &work_wait);

    int64_t timeout = work != WORK_NONE || s->more_events ? 0 : work_wait;
    timeout = min64(timeout, bus_sub_timeout_ms(s->sub, now));
    timeout = min64(timeout, avi_session_timeout_ms(s->session, now));
    timeout = min64(timeout, s->next_progress_ms - now);
    timeout = min64(timeout, s->next_status_ms - now);
    timeout = min64(timeout, SYNCER_IDLE_WAIT_MS);
    if (max_wait_ms >= 0)
        timeout = min64(timeout, max_wait_ms);
    if (timeout < 0)
        timeout = 0;

    int n = bus_sub_pollitems(s->sub, items);
    n += avi_session_pollitems(s->session, items + n, AVI_SESSION_MAX_POLLITEMS);
    if (zmq_poll(items, n, (long)timeout) < 0) {
        if (errno == EINTR)
            return KV_OK;
        if (errno == ETERM)
            return KV_ERR_IO;
        log_error("zmq_poll: %s", zmq_strerror(errno));
        return KV_ERR_IO;
    }
    now = clock_now_ms();
    bus_event ev;
    /* A bounded batch per turn, so a snapshot of thousands of models never
     * keeps the loop from the controller's answers or from SIGTERM. */
    int events = 0;
    while (events < SYNCER_EVENT_BATCH && bus_sub_next(s->sub, &ev, now) == 1) {
        syncer_on_event(s, &ev, now);
        bus_event_clear(&ev);
        events++;
        if (s->stop && *s->stop)
            break;
    }
    s->more_events = events == SYNCER_EVENT_BATCH;
    if (s->stop && *s->stop)
        return KV_OK;

    /* Answers first: they end jobs and free their places. */
    avi_session_step(s->session, clock_now_ms());

    /* Then every job that may start: models up to the bound, or the
     * cache load or GC alone. */
    for (bool more = true; more;) {
        now = clock_now_ms();
        work = syncer_pick_work(s, now, &model, &work_wait);
        more = work == WORK_MODEL;
        switch (work) {
        case WORK_CACHE:
            syncer_load_cache(s, now);
            if (s->credentials_refused) {
                syncer_tally tally;
                syncer_count(s, &tally);
                syncer_progress(s, now, &tally); /* the watcher learns why */
                return KV_ERR_HTTP;
            }
            break;
        case WORK_MODEL:
            syncer_start_model(s, model);
            break;
        case WORK_GC:
            syncer_collect_garbage(s);
            break;
        case WORK_NONE:
            break;
        }
    }

    now = clock_now_ms();
    syncer_tally tally; /* one pass over the models, for the push and the progress */
    syncer_count(s, &tally);
    if (!s->initial_push_done && s->cache_loaded && bus_sub_is_consistent(s->sub) &&
        tally.pending == 0) {
        /* Start-up reconcile finished: tell the watcher everything once. */
        s->initial_push_done = true;
        syncer_push_all(s);
        s->next_status_ms = now + SYNCER_STATUS_EVERY_MS;
    }
    if (now >= s->next_gc_ms) {
        s->gc_due = true;
        s->next_gc_ms = now + SYNCER_GC_EVERY_MS;
    }
    if (now >= s->next_status_ms) {
        syncer_push_all(s);
        s->next_status_ms = now + SYNCER_STATUS_EVERY_MS;
    }
    syncer_progress(s, now, &tally);
    return KV_OK;
}

/* ---- life cycle -------------------------------------------------------------------------------- */

int syncer_new(syncer_t **out, const kv_config *cfg, const char *tenant, void *zmq_ctx)
{
    char stream[SYNCER_STREAM_MAX];
    int rc;
    *out = NULL;
    if (!tenant)
        tenant = cfg->tenant_name;
    rc = snprintf(stream, sizeof stream, "%s%s", PROTO_STREAM_MODEL_PREFIX, tenant);
    if (rc < 0 || (size_t)rc >= sizeof stream)
        return KV_ERR_TOO_LARGE;
    syncer_t *s = calloc(1, sizeof *s);
    if (!s)
        return KV_ERR_NOMEM;
    s->cfg = cfg;
    s->zmq_ctx = zmq_ctx;
    /* More models than requests on the wire: a model whose call waits out
     * a retry holds no connection, and the session queues the rest. */
    s->max_jobs = (cfg->controller_parallel > 0 ? (unsigned)cfg->controller_parallel : 1) *
                  SYNCER_JOBS_PER_REQUEST;
    s->backoff_initial_ms = SYNCER_BACKOFF_INITIAL_MS;
    s->backoff_max_ms = SYNCER_BACKOFF_MAX_MS;
    backoff_init(&s->cache_backoff, s->backoff_initial_ms, s->backoff_max_ms);
    backoff_init(&s->gc_backoff, s->backoff_initial_ms, s->backoff_max_ms);
    s->tenant = strdup(tenant);
    if (!s->tenant) {
        rc = KV_ERR_NOMEM;
        goto fail_destroy;
    }
    rc = avi_session_new(&s->session, cfg, tenant);
    if (rc < 0)
        goto fail_destroy;
    rc = avi_cache_new(&s->cache, cfg->cluster_name, config_created_by(cfg),
                       config_name_prefix(cfg));
    if (rc < 0)
        goto fail_destroy;
    rc = bus_sub_new(&s->sub, zmq_ctx, cfg->model_publish, cfg->model_snapshot, stream);
    if (rc < 0) {
        log_error("cannot subscribe to %s at %s / %s: %s", stream, cfg->model_publish,
                  cfg->model_snapshot, kv_strerror(rc));
        goto fail_destroy;
    }
    s->status_push = bus_socket_connect(zmq_ctx, ZMQ_PUSH, cfg->status_endpoint);
    if (!s->status_push) {
        log_error("cannot connect status PUSH to %s: %s", cfg->status_endpoint,
                  zmq_strerror(errno));
        rc = KV_ERR_IO;
        goto fail_destroy;
    }
    int64_t now = clock_now_ms();
    s->next_progress_ms = now;
    s->next_status_ms = now + SYNCER_STATUS_EVERY_MS;
    s->next_gc_ms = now + SYNCER_GC_EVERY_MS;
    log_info("syncer: tenant %s, controller %s, stream %s", s->tenant,
             avi_session_base(s->session), stream);
    *out = s;
    return KV_OK;

fail_destroy:
    syncer_destroy(&s);
    return rc;
}

void syncer_destroy(syncer_t **syncer)
{
    syncer_t *s = *syncer;
    if (!s)
        return;
    /* Jobs go before the session they run on. */
    reconcile_job_cancel(&s->gc_job);
    reconcile_outcome_clear(&s->gc_outcome);
    syncer_model *m, *tmp;
    HASH_ITER(hh, s->models, m, tmp) {
        HASH_DEL(s->models, m);
        model_free(m);
    }
    refusals_clear(s);
    bus_sub_destroy(&s->sub);
    bus_socket_close(&s->status_push);
    avi_cache_destroy(&s->cache);
    avi_session_destroy(&s->session);
    free(s->last_progress.last_error);
    free(s->last_error);
    free(s->tenant);
    free(s);
    *syncer = NULL;
}

void syncer_set_stop_flag(syncer_t *s, volatile sig_atomic_t *flag)
{
    s->stop = flag;
    avi_session_set_abort_flag(s->session, flag);
}

void syncer_set_backoff(syncer_t *s, int64_t initial_ms, int64_t max_ms)
{
    s->backoff_initial_ms = initial_ms;
    s->backoff_max_ms = max_ms;
    backoff_init(&s->cache_backoff, initial_ms, max_ms);
    backoff_init(&s->gc_backoff, initial_ms, max_ms);
    avi_session_set_retry(s->session, 4, initial_ms / 2 ? initial_ms / 2 : 1, max_ms);
}

void syncer_get_stats(const syncer_t *s, syncer_stats *out)
{
    memset(out, 0, sizeof *out);
    out->cache_loaded = s->cache_loaded;
    out->consistent = bus_sub_is_consistent(s->sub);
    out->complete = s->complete;
    out->models = HASH_COUNT(s->models);
    syncer_counts(s, &out->pending, &out->failed);
    out->eos_run = s->last_progress.eos_run;
    out->applied = s->last_progress.applied_models;
    out->gc_runs = s->gc_runs;
}
