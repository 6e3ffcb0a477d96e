/* reconcile.c — see reconcile.h.
 *
 * A job is a small state machine over the session's asynchronous calls:
 * one request of a model on the wire at a time (its objects depend on each
 * other), many jobs at once across models. Each answer moves the job on:
 * the next object, an adoption after 409, a re-read after 412, the next
 * deletion, or the end.
 *
 * Every write is logged at info with its answer ("POST pool kavi--ns-svc-
 * TCP-80 → 201"), so the log alone tells what the controller was asked and
 * where a model stopped. Within a model the first failing write stops the
 * pass: later objects refer to earlier ones, and the model as a whole is
 * retried (or reported refused) by the caller. */
#include "syncer/reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/log.h"
#include "syncer/avi_types.h"

#define RECONCILE_PATH_MAX 4096
#define RECONCILE_NAME_MAX 255 /* AKO's AVI_OBJ_NAME_MAX_LENGTH */
#define RECONCILE_TYPE_MAX 64

/* ---- held sets ------------------------------------------------------------ */

static ssize_t held_find(const reconcile_held *held, const char *type, const char *name)
{
    for (size_t i = 0; i < held->n; i++)
        if (strcmp(held->refs[i].type, type) == 0 && strcmp(held->refs[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

bool reconcile_held_has(const reconcile_held *held, const char *type, const char *name)
{
    return held_find(held, type, name) >= 0;
}

int reconcile_held_add(reconcile_held *held, const char *type, const char *name, int rank)
{
    ssize_t at = held_find(held, type, name);
    if (at >= 0) {
        held->refs[at].rank = rank;
        return KV_OK;
    }
    if (held->n == held->cap) {
        size_t cap = held->cap ? held->cap * 2 : 8;
        reconcile_ref *grown = realloc(held->refs, cap * sizeof *grown);
        if (!grown)
            return KV_ERR_NOMEM;
        held->refs = grown;
        held->cap = cap;
    }
    reconcile_ref *ref = &held->refs[held->n];
    ref->type = strdup(type);
    ref->name = strdup(name);
    ref->rank = rank;
    if (!ref->type || !ref->name) {
        free(ref->type);
        free(ref->name);
        return KV_ERR_NOMEM;
    }
    held->n++;
    return KV_OK;
}

void reconcile_held_remove(reconcile_held *held, const char *type, const char *name)
{
    ssize_t at = held_find(held, type, name);
    if (at < 0)
        return;
    free(held->refs[at].type);
    free(held->refs[at].name);
    held->refs[at] = held->refs[held->n - 1];
    held->n--;
}

void reconcile_held_clear(reconcile_held *held)
{
    for (size_t i = 0; i < held->n; i++) {
        free(held->refs[i].type);
        free(held->refs[i].name);
    }
    free(held->refs);
    held->refs = NULL;
    held->n = held->cap = 0;
}

void reconcile_outcome_clear(reconcile_outcome *o)
{
    free(o->error);
    for (size_t i = 0; i < o->n_vips; i++)
        free(o->vips[i]);
    free(o->vips);
    memset(o, 0, sizeof *o);
}

/* ---- classification -------------------------------------------------------- */

/* Which failures time can cure (AKO's isErrorRetryable, research avi_api.md
 * §5): the controller busy or restarting, our session, an upgrade, an
 * exhausted IPAM pool, and references the cache believed in (404). */
static reconcile_result reconcile_classify(int rc, long status, const char *message)
{
    if (rc == KV_ERR_AGAIN || rc == KV_ERR_NOMEM || rc == KV_ERR_TIMEOUT || rc == KV_ERR_IO)
        return RECONCILE_TRANSIENT;
    if (rc != KV_ERR_HTTP)
        return RECONCILE_REFUSED; /* too large, invalid: the same input fails again */
    if (status == 401 || status == 404 || status == 408 || status == 409 || status == 412 ||
        status == 419 || status == 429 || status >= 500)
        return RECONCILE_TRANSIENT;
    if (status == 403 && strstr(message, "Configuration is disallowed during upgrade"))
        return RECONCILE_TRANSIENT;
    if (status == 400 && strstr(message, "No available free IPs"))
        return RECONCILE_TRANSIENT;
    return RECONCILE_REFUSED;
}

/* ---- jobs ------------------------------------------------------------------------ */

typedef enum { JOB_APPLY, JOB_DELETE, JOB_GC } job_kind;

/* The request a job waits for. */
typedef enum { OP_NONE, OP_POST, OP_PUT, OP_ADOPT, OP_REREAD, OP_DELETE } job_op;

struct reconcile_job {
    job_kind kind;
    avi_session_t *session;
    avi_cache_t *cache;
    reconcile_outcome *outcome;
    reconcile_held *held;       /* NULL for GC */
    const proto_model *model;   /* JOB_APPLY */
    const proto_avi_object **order; /* the model's objects, leaves first */
    size_t n_order;
    size_t next;                /* the object being written */
    bool deleting;              /* past the writes: deleting what is unwanted */
    reconcile_ref *doomed;      /* owned copies, referrers first */
    size_t n_doomed;
    size_t next_doomed;
    unsigned refused_deletions;

    job_op op;                  /* what `call` is */
    const proto_avi_object *obj;/* the object of the op */
    int budget;                 /* bounds 404 → POST → 409 → PUT ... chains */
    char path[RECONCILE_PATH_MAX];
    avi_call_t *call;

    int depth;                  /* job functions on the stack */
    bool finished;
    int rc;
    reconcile_done_fn fn;
    void *payload;
};

static void job_free(reconcile_job_t *job)
{
    for (size_t i = 0; i < job->n_doomed; i++) {
        free(job->doomed[i].type);
        free(job->doomed[i].name);
    }
    free(job->doomed);
    free(job->order);
    free(job);
}

/* Job functions run between enter and leave; the owner hears of the end
 * (and the job is freed) only once nothing of the job is on the stack, so
 * an answer that arrives inside avi_session_start cannot pull the job from
 * under the function that started the call. */
static void job_enter(reconcile_job_t *job) { job->depth++; }

static void job_leave(reconcile_job_t *job)
{
    if (--job->depth > 0 || !job->finished)
        return;
    if (job->fn)
        job->fn(job->payload, job->rc);
    job_free(job);
}

static void job_finish(reconcile_job_t *job, int rc)
{
    job->finished = true;
    job->rc = rc;
}

static void job_fail(reconcile_job_t *job, int rc, long status, const char *message)
{
    reconcile_outcome *o = job->outcome;
    free(o->error);
    o->error = strdup(message && *message ? message : kv_strerror(rc));
    o->result = reconcile_classify(rc, status, message ? message : "");
    if (status == 404)
        o->cache_suspect = true;
}

static void job_transient(reconcile_job_t *job, const char *why)
{
    free(job->outcome->error);
    job->outcome->error = strdup(why);
    job->outcome->result = RECONCILE_TRANSIENT;
}

static void job_answer(void *payload, const avi_answer *answer);

static int job_send(reconcile_job_t *job, job_op op, const char *method, const json_t *body)
{
    job->op = op;
    return avi_session_start(job->session, method, job->path, body, job_answer, job, &job->call);
}

static bool reconcile_type_is_valid(const char *type)
{
    size_t n = strlen(type);
    if (n == 0 || n > RECONCILE_TYPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((type[i] >= 'a' && type[i] <= 'z') || (type[i] >= '0' && type[i] <= '9')))
            return false;
    return true;
}

static void reconcile_log_write(const char *method, const char *type, const char *name,
                                const avi_answer *a)
{
    if (a->rc == KV_OK)
        log_info("%s %s %s → %ld", method, type, name, a->status);
    else if (a->status)
        log_warn("%s %s %s → %ld: %s", method, type, name, a->status, a->message);
    else
        log_warn("%s %s %s: %s", method, type, name, a->error);
}

static int job_hold(reconcile_job_t *job, const proto_avi_object *obj)
{
    return reconcile_held_add(job->held, obj->type, obj->name, avi_type_rank(obj->type, obj->body));
}

/* Does the controller's copy, as cached, already hold obj? By checksum; for
 * a type without checksum field whose checksum is not known yet (listed at
 * start), by its fields, and then the checksum is known. */
static bool reconcile_unchanged(avi_cache_t *cache, const proto_avi_object *obj)
{
    const avi_cache_entry *e = avi_cache_get(cache, obj->type, obj->name);
    if (!e)
        return false;
    if (e->checksum[0])
        return strcmp(e->checksum, obj->checksum) == 0;
    if (!e->object || !avi_type_holds(obj->body, e->object))
        return false;
    /* Out of memory only costs a comparison next time. */
    (void)avi_cache_set_checksum(cache, obj->type, obj->name, obj->checksum);
    return true;
}

/* Records a write's answer in the cache and the held set. */
static int job_record(reconcile_job_t *job, const proto_avi_object *obj, const json_t *response)
{
    int rc = avi_cache_update_written(job->cache, obj->type, response, obj->checksum);
    if (rc == KV_ERR_INVALID) {
        /* A 2xx without uuid is not the controller we know; the next pass
         * will see the object by name (409) and adopt it. */
        log_warn("%s %s: the controller's answer has no name or uuid", obj->type, obj->name);
        avi_cache_remove(job->cache, obj->type, obj->name);
        rc = KV_OK;
    }
    if (rc < 0)
        return rc;
    return job_hold(job, obj);
}

/* ---- writes: one object at a time, leaves first ----------------------------------- */

static int job_post(reconcile_job_t *job, const proto_avi_object *obj, int budget);

static int job_contradicted(reconcile_job_t *job)
{
    job_transient(job, "the controller keeps contradicting itself; will retry");
    return KV_ERR_AGAIN;
}

/* PUT the model's body over the cached object. */
static int job_put(reconcile_job_t *job, const proto_avi_object *obj, int budget)
{
    const avi_cache_entry *e = avi_cache_get(job->cache, obj->type, obj->name);
    if (!e)
        return job_post(job, obj, budget - 1);
    if (budget <= 0)
        return job_contradicted(job);
    int rc = snprintf(job->path, sizeof job->path, "/api/%s/%s", obj->type, e->uuid);
    if (rc < 0 || (size_t)rc >= sizeof job->path)
        return KV_ERR_TOO_LARGE;
    json_t *body = json_copy(obj->body);
    if (!body)
        return KV_ERR_NOMEM;
    /* With _last_modified the controller refuses (412) to overwrite a copy
     * someone changed since we read it; we then re-read and decide again. */
    if (e->last_modified)
        json_object_set_new(body, "_last_modified", json_string(e->last_modified));
    job->obj = obj;
    job->budget = budget;
    rc = job_send(job, OP_PUT, "PUT", body);
    json_decref(body);
    return rc;
}

static int job_post(reconcile_job_t *job, const proto_avi_object *obj, int budget)
{
    if (budget <= 0)
        return job_contradicted(job);
    int rc = snprintf(job->path, sizeof job->path, "/api/%s", obj->type);
    if (rc < 0 || (size_t)rc >= sizeof job->path)
        return KV_ERR_TOO_LARGE;
    job->obj = obj;
    job->budget = budget;
    return job_send(job, OP_POST, "POST", obj->body);
}

/* The object named obj->name already exists (409): read it by name. */
static int job_adopt(reconcile_job_t *job, const proto_avi_object *obj, int budget)
{
    char escaped[3 * RECONCILE_NAME_MAX + 1];
    int rc = avi_session_escape(escaped, sizeof escaped, obj->name);
    if (rc < 0)
        return rc;
    rc = snprintf(job->path, sizeof job->path, "/api/%s?name=%s", obj->type, escaped);
    if (rc < 0 || (size_t)rc >= sizeof job->path)
        return KV_ERR_TOO_LARGE;
    job->obj = obj;
    job->budget = budget;
    return job_send(job, OP_ADOPT, "GET", NULL);
}

static int reconcile_ref_delete_order(const void *a, const void *b)
{
    const reconcile_ref *x = a;
    const reconcile_ref *y = b;
    if (x->rank != y->rank)
        return y->rank - x->rank;
    int c = strcmp(x->type, y->type);
    return c ? c : strcmp(x->name, y->name);
}

static int job_doom(reconcile_job_t *job, const char *type, const char *name, int rank)
{
    reconcile_ref *d = &job->doomed[job->n_doomed];
    d->type = strdup(type);
    d->name = strdup(name);
    d->rank = rank;
    if (!d->type || !d->name) {
        free(d->type);
        free(d->name);
        return KV_ERR_NOMEM;
    }
    job->n_doomed++;
    return KV_OK;
}

/* The held objects the model does not hold (all of them when model is
 * NULL), referrers first. */
static int job_doom_unwanted(reconcile_job_t *job, const proto_model *model)
{
    const reconcile_held *held = job->held;
    job->doomed = calloc(held->n ? held->n : 1, sizeof *job->doomed);
    if (!job->doomed)
        return KV_ERR_NOMEM;
    for (size_t i = 0; i < held->n; i++) {
        bool keep = false;
        for (size_t j = 0; model && j < model->n_objects && !keep; j++)
            keep = strcmp(model->objects[j].type, held->refs[i].type) == 0 &&
                   strcmp(model->objects[j].name, held->refs[i].name) == 0;
        if (!keep && job_doom(job, held->refs[i].type, held->refs[i].name, held->refs[i].rank) < 0)
            return KV_ERR_NOMEM;
    }
    qsort(job->doomed, job->n_doomed, sizeof *job->doomed, reconcile_ref_delete_order);
    return KV_OK;
}

static int reconcile_collect_vips(reconcile_outcome *o, const avi_cache_t *cache,
                                  const proto_model *model)
{
    for (size_t i = 0; i < model->n_objects; i++) {
        if (strcmp(model->objects[i].type, "vsvip") != 0)
            continue;
        const avi_cache_entry *e = avi_cache_get(cache, "vsvip", model->objects[i].name);
        if (!e || e->n_vips == 0)
            continue;
        char **grown = realloc(o->vips, (o->n_vips + e->n_vips) * sizeof *grown);
        if (!grown)
            return KV_ERR_NOMEM;
        o->vips = grown;
        for (size_t v = 0; v < e->n_vips; v++) {
            o->vips[o->n_vips] = strdup(e->vips[v]);
            if (!o->vips[o->n_vips])
                return KV_ERR_NOMEM;
            o->n_vips++;
        }
    }
    return KV_OK;
}

/* Every deletion answered (refusals counted): the job's end. */
static void job_complete(reconcile_job_t *job)
{
    reconcile_outcome *o = job->outcome;
    switch (job->kind) {
    case JOB_APPLY: {
        /* A refused deletion (someone else still refers to the object) does
         * not fail the model: what the model wants is in place. The object
         * stays held and is tried again with the next change. */
        free(o->error);
        o->error = NULL;
        o->result = RECONCILE_APPLIED;
        int rc = reconcile_collect_vips(o, job->cache, job->model);
        if (rc < 0)
            o->result = RECONCILE_TRANSIENT;
        else if (o->writes)
            log_info("model %s applied (%u writes)", job->model->name, o->writes);
        job_finish(job, rc);
        return;
    }
    case JOB_DELETE:
        if (job->refused_deletions) {
            o->result = RECONCILE_REFUSED;
            job_finish(job, KV_ERR_HTTP);
            return;
        }
        o->result = RECONCILE_APPLIED;
        job_finish(job, KV_OK);
        return;
    case JOB_GC:
        if (job->refused_deletions)
            log_warn("gc: %u objects could not be deleted (see above)", job->refused_deletions);
        o->result = RECONCILE_APPLIED;
        job_finish(job, KV_OK);
        return;
    }
}

/* A failure that stops the job. */
static void job_stop(reconcile_job_t *job, int rc)
{
    reconcile_outcome *o = job->outcome;
    if (job->kind == JOB_APPLY && !job->deleting) {
        if (o->result == RECONCILE_APPLIED) {
            /* An internal failure (memory, a too long path) rather than
             * the controller's answer. */
            o->result = rc == KV_ERR_NOMEM ? RECONCILE_TRANSIENT : RECONCILE_REFUSED;
            free(o->error);
            o->error = strdup(kv_strerror(rc));
        }
        log_warn("model %s: stopped at %s %s (%s): %s", job->model->name,
                 job->order[job->next]->type, job->order[job->next]->name,
                 o->result == RECONCILE_TRANSIENT ? "will retry" : "refused",
                 o->error ? o->error : "");
        job_finish(job, o->result == RECONCILE_TRANSIENT ? KV_ERR_AGAIN : KV_ERR_HTTP);
        return;
    }
    if (job->kind == JOB_APPLY) {
        log_warn("model %s: removing old objects failed (will retry): %s", job->model->name,
                 o->error ? o->error : kv_strerror(rc));
        o->result = RECONCILE_TRANSIENT;
        job_finish(job, KV_ERR_AGAIN);
        return;
    }
    if (o->result == RECONCILE_APPLIED)
        o->result = RECONCILE_TRANSIENT;
    job_finish(job, o->result == RECONCILE_REFUSED ? KV_ERR_HTTP : KV_ERR_AGAIN);
}

/* Sends the next DELETE, or completes the job. */
static void job_next_delete(reconcile_job_t *job)
{
    while (job->next_doomed < job->n_doomed) {
        const reconcile_ref *d = &job->doomed[job->next_doomed];
        const avi_cache_entry *e = avi_cache_get(job->cache, d->type, d->name);
        if (!e) {
            /* Never created, or already known gone. */
            if (job->held)
                reconcile_held_remove(job->held, d->type, d->name);
            job->next_doomed++;
            continue;
        }
        if (job->kind == JOB_GC)
            log_info("gc: %s %s is owned but no model wants it", d->type, d->name);
        int rc = snprintf(job->path, sizeof job->path, "/api/%s/%s", d->type, e->uuid);
        if (rc < 0 || (size_t)rc >= sizeof job->path)
            rc = KV_ERR_TOO_LARGE;
        else
            rc = job_send(job, OP_DELETE, "DELETE", NULL);
        if (rc < 0) {
            job_fail(job, rc, 0, kv_strerror(rc));
            job_stop(job, rc);
        }
        return;
    }
    job_complete(job);
}

static void job_start_deletes(reconcile_job_t *job)
{
    job->deleting = true;
    int rc = job->kind == JOB_GC ? KV_OK
                                 : job_doom_unwanted(job, job->kind == JOB_APPLY ? job->model : NULL);
    if (rc < 0) {
        job_fail(job, rc, 0, kv_strerror(rc));
        job_stop(job, rc);
        return;
    }
    job_next_delete(job);
}

/* Goes on with the model's objects: skips what the cache already has with
 * the model's checksum, writes the first that differs, deletes at the end. */
static void job_next_object(reconcile_job_t *job)
{
    while (job->next < job->n_order) {
        const proto_avi_object *obj = job->order[job->next];
        int rc;
        if (reconcile_unchanged(job->cache, obj)) {
            log_debug("skip %s %s: checksum %s unchanged", obj->type, obj->name, obj->checksum);
            rc = job_hold(job, obj);
            if (rc == KV_OK) {
                job->next++;
                continue;
            }
        } else {
            bool cached = avi_cache_get(job->cache, obj->type, obj->name) != NULL;
            rc = cached ? job_put(job, obj, 4) : job_post(job, obj, 4);
            if (rc == KV_OK)
                return; /* the answer goes on */
        }
        job_stop(job, rc);
        return;
    }
    job_start_deletes(job);
}

/* The current object is in place. */
static void job_object_done(reconcile_job_t *job, int rc)
{
    if (rc < 0) {
        job_stop(job, rc);
        return;
    }
    job->next++;
    job_next_object(job);
}

static void job_on_post(reconcile_job_t *job, const avi_answer *a)
{
    const proto_avi_object *obj = job->obj;
    reconcile_log_write("POST", obj->type, obj->name, a);
    if (a->rc == KV_OK) {
        job->outcome->writes++;
        job_object_done(job, job_record(job, obj, a->response));
    } else if (a->rc == KV_ERR_HTTP && a->status == 409) {
        int rc = job_adopt(job, obj, job->budget - 1);
        if (rc < 0)
            job_stop(job, rc);
    } else {
        job_fail(job, a->rc, a->status, a->message[0] ? a->message : a->error);
        job_stop(job, KV_ERR_AGAIN);
    }
}

static void job_on_put(reconcile_job_t *job, const avi_answer *a)
{
    const proto_avi_object *obj = job->obj;
    int rc;
    reconcile_log_write("PUT", obj->type, obj->name, a);
    if (a->rc == KV_OK) {
        job->outcome->writes++;
        job_object_done(job, job_record(job, obj, a->response));
        return;
    }
    if (a->rc == KV_ERR_HTTP && a->status == 404) {
        /* Deleted behind our back: forget it and create it again. */
        avi_cache_remove(job->cache, obj->type, obj->name);
        rc = job_post(job, obj, job->budget - 1);
    } else if (a->rc == KV_ERR_HTTP && a->status == 412) {
        /* Changed behind our back: re-read it (same path), then write once
         * more if the fresh copy still differs. */
        rc = job_send(job, OP_REREAD, "GET", NULL);
    } else {
        job_fail(job, a->rc, a->status, a->message[0] ? a->message : a->error);
        rc = KV_ERR_AGAIN;
    }
    if (rc < 0)
        job_stop(job, rc);
}

static void job_on_reread(reconcile_job_t *job, const avi_answer *a)
{
    const proto_avi_object *obj = job->obj;
    int rc = a->rc;
    if (rc == KV_OK)
        rc = avi_cache_update(job->cache, obj->type, a->response);
    if (rc < 0) {
        job_fail(job, rc, a->status, a->message[0] ? a->message : a->error);
        job_stop(job, rc);
        return;
    }
    if (reconcile_unchanged(job->cache, obj)) {
        job_object_done(job, job_hold(job, obj));
        return;
    }
    if (job->budget <= 1) {
        /* Changed again under us right after the re-read. */
        job_fail(job, KV_ERR_HTTP, 412, "changed on the controller while being written");
        job_stop(job, KV_ERR_AGAIN);
        return;
    }
    rc = job_put(job, obj, 1); /* one retry only */
    if (rc < 0)
        job_stop(job, rc);
}

static void job_on_adopt(reconcile_job_t *job, const avi_answer *a)
{
    const proto_avi_object *obj = job->obj;
    if (a->rc < 0) {
        job_fail(job, a->rc, a->status, a->message[0] ? a->message : a->error);
        job_stop(job, a->rc);
        return;
    }
    const json_t *found = json_array_get(json_object_get(a->response, "results"), 0);
    if (!found || avi_cache_update(job->cache, obj->type, found) < 0) {
        /* Gone again between the 409 and the GET: a later pass creates it. */
        log_warn("adopt %s %s: 409 on create but not found by name", obj->type, obj->name);
        job_transient(job, "object exists but cannot be read by name");
        job_stop(job, KV_ERR_AGAIN);
        return;
    }
    log_info("adopt %s %s: exists on the controller, taken over", obj->type, obj->name);
    if (reconcile_unchanged(job->cache, obj)) {
        job_object_done(job, job_hold(job, obj));
        return;
    }
    int rc = job_put(job, obj, job->budget - 1);
    if (rc < 0)
        job_stop(job, rc);
}

static void job_on_delete(reconcile_job_t *job, const avi_answer *a)
{
    const reconcile_ref *d = &job->doomed[job->next_doomed];
    if (a->rc == KV_ERR_HTTP && a->status == 404) {
        log_info("DELETE %s %s → 404 (already gone)", d->type, d->name);
    } else {
        reconcile_log_write("DELETE", d->type, d->name, a);
        if (a->rc < 0) {
            job_fail(job, a->rc, a->status, a->message[0] ? a->message : a->error);
            if (job->outcome->result != RECONCILE_REFUSED) {
                job_stop(job, KV_ERR_AGAIN); /* transient: the whole pass is retried later */
                return;
            }
            /* Refused (someone else refers to it): logged, left held. */
            job->refused_deletions++;
            job->next_doomed++;
            job_next_delete(job);
            return;
        }
        job->outcome->writes++;
    }
    avi_cache_remove(job->cache, d->type, d->name);
    if (job->held)
        reconcile_held_remove(job->held, d->type, d->name);
    job->next_doomed++;
    job_next_delete(job);
}

static void job_answer(void *payload, const avi_answer *a)
{
    reconcile_job_t *job = payload;
    job_op op = job->op;
    job->call = NULL;
    job->op = OP_NONE;
    job_enter(job);
    switch (op) {
    case OP_POST:
        job_on_post(job, a);
        break;
    case OP_PUT:
        job_on_put(job, a);
        break;
    case OP_REREAD:
        job_on_reread(job, a);
        break;
    case OP_ADOPT:
        job_on_adopt(job, a);
        break;
    case OP_DELETE:
        job_on_delete(job, a);
        break;
    case OP_NONE:
        break;
    }
    job_leave(job);
}

/* ---- starting jobs ------------------------------------------------------------------- */

static int reconcile_rank_order(const void *a, const void *b)
{
    const proto_avi_object *x = *(const proto_avi_object *const *)a;
    const proto_avi_object *y = *(const proto_avi_object *const *)b;
    int rx = avi_type_rank(x->type, x->body);
    int ry = avi_type_rank(y->type, y->body);
    if (rx != ry)
        return rx - ry;
    /* Stable for equal ranks: the planner's order. */
    return x < y ? -1 : x > y;
}

static int reconcile_check_object(reconcile_outcome *o, const proto_avi_object *obj)
{
    const char *why = NULL;
    if (!obj->type || !reconcile_type_is_valid(obj->type))
        why = "type must be 1-64 characters of [a-z0-9]";
    else if (!obj->name || !*obj->name || strlen(obj->name) > RECONCILE_NAME_MAX)
        why = "name must be 1-255 characters";
    else if (!json_is_object(obj->body))
        why = "body is not a JSON object";
    else if (!obj->checksum)
        why = "checksum missing";
    if (!why)
        return KV_OK;
    char line[512];
    snprintf(line, sizeof line, "invalid object %.64s %.255s: %s", obj->type ? obj->type : "?",
             obj->name ? obj->name : "?", why);
    free(o->error);
    o->error = strdup(line);
    o->result = RECONCILE_REFUSED;
    return KV_ERR_HTTP;
}

static reconcile_job_t *job_new(job_kind kind, reconcile_outcome *o, avi_session_t *session,
                                avi_cache_t *cache, reconcile_held *held, reconcile_done_fn fn,
                                void *payload)
{
    reconcile_job_t *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->kind = kind;
    job->outcome = o;
    job->session = session;
    job->cache = cache;
    job->held = held;
    job->fn = fn;
    job->payload = payload;
    return job;
}

/* Runs a new job's first step; the owner may hear of its end before this
 * returns. */
static void job_run(reconcile_job_t *job, void (*first)(reconcile_job_t *job))
{
    job_enter(job);
    first(job);
    job_leave(job);
}

int reconcile_start_apply(reconcile_job_t **out, reconcile_outcome *o, avi_session_t *session,
                          avi_cache_t *cache, const proto_model *model, reconcile_held *held,
                          reconcile_done_fn fn, void *payload)
{
    *out = NULL;
    reconcile_outcome_clear(o);
    for (size_t i = 0; i < model->n_objects; i++) {
        int rc = reconcile_check_object(o, &model->objects[i]);
        if (rc < 0) {
            log_warn("model %s: %s", model->name, o->error);
            return rc;
        }
    }
    reconcile_job_t *job = job_new(JOB_APPLY, o, session, cache, held, fn, payload);
    if (!job)
        return KV_ERR_NOMEM;
    job->model = model;
    job->order = calloc(model->n_objects ? model->n_objects : 1, sizeof *job->order);
    if (!job->order) {
        job_free(job);
        return KV_ERR_NOMEM;
    }
    for (size_t i = 0; i < model->n_objects; i++)
        job->order[i] = &model->objects[i];
    job->n_order = model->n_objects;
    qsort(job->order, job->n_order, sizeof *job->order, reconcile_rank_order);
    *out = job;
    job_run(job, job_next_object);
    return KV_OK;
}

int reconcile_start_delete(reconcile_job_t **out, reconcile_outcome *o, avi_session_t *session,
                           avi_cache_t *cache, reconcile_held *held, reconcile_done_fn fn,
                           void *payload)
{
    *out = NULL;
    reconcile_outcome_clear(o);
    reconcile_job_t *job = job_new(JOB_DELETE, o, session, cache, held, fn, payload);
    if (!job)
        return KV_ERR_NOMEM;
    *out = job;
    job_run(job, job_start_deletes);
    return KV_OK;
}

int reconcile_start_gc(reconcile_job_t **out, reconcile_outcome *o, avi_session_t *session,
                       avi_cache_t *cache, reconcile_wanted_fn wanted, void *wanted_payload,
                       reconcile_done_fn fn, void *payload)
{
    const avi_cache_entry **entries = NULL;
    size_t n = 0;
    *out = NULL;
    reconcile_outcome_clear(o);
    int rc = avi_cache_list(cache, &entries, &n);
    if (rc < 0)
        return rc;
    reconcile_job_t *job = job_new(JOB_GC, o, session, cache, NULL, fn, payload);
    if (job)
        job->doomed = calloc(n ? n : 1, sizeof *job->doomed);
    if (!job || !job->doomed) {
        free(entries);
        if (job)
            job_free(job);
        return KV_ERR_NOMEM;
    }
    /* Names are copied: a delete frees its entry. The list comes sorted
     * referrers first. */
    for (size_t i = 0; i < n; i++) {
        if (wanted(entries[i]->type, entries[i]->name, wanted_payload))
            continue;
        if (job_doom(job, entries[i]->type, entries[i]->name, entries[i]->rank) < 0) {
            free(entries);
            job_free(job);
            return KV_ERR_NOMEM;
        }
    }
    free(entries);
    *out = job;
    job_run(job, job_start_deletes);
    return KV_OK;
}

void reconcile_job_cancel(reconcile_job_t **job_p)
{
    reconcile_job_t *job = *job_p;
    *job_p = NULL;
    if (!job)
        return;
    avi_session_cancel(job->session, &job->call);
    job_free(job);
}

/* ---- blocking forms --------------------------------------------------------------------- */

typedef struct {
    bool done;
    int rc;
} reconcile_wait;

static void reconcile_on_wait_done(void *payload, int rc)
{
    reconcile_wait *w = payload;
    w->done = true;
    w->rc = rc;
}

/* Drives the session until the job ends; an abort cancels it (transient). */
static int reconcile_wait_for(reconcile_job_t *job, reconcile_wait *w, avi_session_t *session,
                              reconcile_outcome *o)
{
    if (w->done)
        return w->rc;
    if (avi_session_run_until(session, &w->done))
        return w->rc;
    reconcile_job_cancel(&job);
    free(o->error);
    o->error = strdup("interrupted");
    o->result = RECONCILE_TRANSIENT;
    return KV_ERR_AGAIN;
}

int reconcile_apply(reconcile_outcome *o, avi_session_t *session, avi_cache_t *cache,
                    const proto_model *model, reconcile_held *held)
{
    reconcile_wait w = {0};
    reconcile_job_t *job = NULL;
    int rc = reconcile_start_apply(&job, o, session, cache, model, held, reconcile_on_wait_done,
                                   &w);
    return rc < 0 ? rc : reconcile_wait_for(job, &w, session, o);
}

int reconcile_delete(reconcile_outcome *o, avi_session_t *session, avi_cache_t *cache,
                     reconcile_held *held)
{
    reconcile_wait w = {0};
    reconcile_job_t *job = NULL;
    int rc = reconcile_start_delete(&job, o, session, cache, held, reconcile_on_wait_done, &w);
    return rc < 0 ? rc : reconcile_wait_for(job, &w, session, o);
}

int reconcile_gc(reconcile_outcome *o, avi_session_t *session, avi_cache_t *cache,
                 reconcile_wanted_fn wanted, void *payload)
{
    reconcile_wait w = {0};
    reconcile_job_t *job = NULL;
    int rc = reconcile_start_gc(&job, o, session, cache, wanted, payload, reconcile_on_wait_done,
                                &w);
    return rc < 0 ? rc : reconcile_wait_for(job, &w, session, o);
}
