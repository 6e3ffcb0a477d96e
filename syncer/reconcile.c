/* reconcile.c — see reconcile.h.
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

static int reconcile_fail(reconcile_outcome *o, avi_session_t *session, int rc, long status)
{
    const char *message = avi_session_message(session);
    if (!*message)
        message = avi_session_error(session);
    free(o->error);
    o->error = strdup(*message ? message : kv_strerror(rc));
    o->result = reconcile_classify(rc, status, message);
    if (status == 404)
        o->cache_suspect = true;
    return o->result == RECONCILE_TRANSIENT ? KV_ERR_AGAIN : KV_ERR_HTTP;
}

/* ---- one object ------------------------------------------------------------- */

typedef struct {
    avi_session_t *session;
    avi_cache_t *cache;
    reconcile_outcome *outcome;
    reconcile_held *held;
} reconcile_ctx;

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
                                long status, int rc, avi_session_t *session)
{
    if (rc == KV_OK)
        log_info("%s %s %s → %ld", method, type, name, status);
    else if (status)
        log_warn("%s %s %s → %ld: %s", method, type, name, status,
                 avi_session_message(session));
    else
        log_warn("%s %s %s: %s", method, type, name, avi_session_error(session));
}

/* Does the controller's copy, as cached, already hold obj? By checksum; for
 * a type without checksum field whose checksum is not known yet (listed at
 * start), by its fields, and then the checksum is known. */
static bool reconcile_unchanged(reconcile_ctx *ctx, const proto_avi_object *obj)
{
    const avi_cache_entry *e = avi_cache_get(ctx->cache, obj->type, obj->name);
    if (!e)
        return false;
    if (e->checksum[0])
        return strcmp(e->checksum, obj->checksum) == 0;
    if (!e->object || !avi_type_holds(obj->body, e->object))
        return false;
    /* Out of memory only costs a comparison next time. */
    (void)avi_cache_set_checksum(ctx->cache, obj->type, obj->name, obj->checksum);
    return true;
}

/* Records a write's answer in the cache and the held set. */
static int reconcile_record(reconcile_ctx *ctx, const proto_avi_object *obj,
                            const json_t *response)
{
    int rc = avi_cache_update_written(ctx->cache, obj->type, response, obj->checksum);
    if (rc == KV_ERR_INVALID) {
        /* A 2xx without uuid is not the controller we know; the next pass
         * will see the object by name (409) and adopt it. */
        log_warn("%s %s: the controller's answer has no name or uuid", obj->type, obj->name);
        avi_cache_remove(ctx->cache, obj->type, obj->name);
        rc = KV_OK;
    }
    if (rc < 0)
        return rc;
    return reconcile_held_add(ctx->held, obj->type, obj->name, avi_type_rank(obj->type, obj->body));
}

static int reconcile_post(reconcile_ctx *ctx, const proto_avi_object *obj, int budget);

/* PUT the model's body over the cached object. `budget` bounds the
 * 404 → POST → 409 → PUT → ... chains a confused controller could cause. */
static int reconcile_put(reconcile_ctx *ctx, const proto_avi_object *obj, int budget)
{
    char path[RECONCILE_PATH_MAX];
    json_t *body = NULL;
    json_t *response = NULL;
    long status = 0;
    int rc;

    const avi_cache_entry *e = avi_cache_get(ctx->cache, obj->type, obj->name);
    if (!e)
        return reconcile_post(ctx, obj, budget - 1);
    if (budget <= 0) {
        free(ctx->outcome->error);
        ctx->outcome->error = strdup("the controller keeps contradicting itself; will retry");
        ctx->outcome->result = RECONCILE_TRANSIENT;
        return KV_ERR_AGAIN;
    }
    rc = snprintf(path, sizeof path, "/api/%s/%s", obj->type, e->uuid);
    if (rc < 0 || (size_t)rc >= sizeof path)
        return KV_ERR_TOO_LARGE;
    body = json_copy(obj->body);
    if (!body)
        return KV_ERR_NOMEM;
    /* With _last_modified the controller refuses (412) to overwrite a copy
     * someone changed since we read it; we then re-read and decide again. */
    if (e->last_modified)
        json_object_set_new(body, "_last_modified", json_string(e->last_modified));

    rc = avi_session_request(ctx->session, "PUT", path, body, &status, &response);
    reconcile_log_write("PUT", obj->type, obj->name, status, rc, ctx->session);
    json_decref(body);
    if (rc == KV_OK) {
        ctx->outcome->writes++;
        rc = reconcile_record(ctx, obj, response);
        goto out_free_response;
    }
    if (rc == KV_ERR_HTTP && status == 404) {
        /* Deleted behind our back: forget it and create it again. */
        avi_cache_remove(ctx->cache, obj->type, obj->name);
        rc = reconcile_post(ctx, obj, budget - 1);
        goto out_free_response;
    }
    if (rc == KV_ERR_HTTP && status == 412) {
        /* Changed behind our back: re-read it, then write once more if the
         * fresh copy still differs. */
        json_decref(response);
        response = NULL;
        rc = avi_session_request(ctx->session, "GET", path, NULL, &status, &response);
        if (rc == KV_OK)
            rc = avi_cache_update(ctx->cache, obj->type, response);
        if (rc < 0) {
            rc = reconcile_fail(ctx->outcome, ctx->session, rc, status);
            goto out_free_response;
        }
        if (reconcile_unchanged(ctx, obj)) {
            rc = reconcile_held_add(ctx->held, obj->type, obj->name,
                                    avi_type_rank(obj->type, obj->body));
            goto out_free_response;
        }
        if (budget <= 1) {
            /* Changed again under us right after the re-read. */
            rc = reconcile_fail(ctx->outcome, ctx->session, KV_ERR_HTTP, 412);
            goto out_free_response;
        }
        rc = reconcile_put(ctx, obj, 1); /* one retry only */
        goto out_free_response;
    }
    rc = reconcile_fail(ctx->outcome, ctx->session, rc, status);

out_free_response:
    json_decref(response);
    return rc;
}

/* The object named obj->name already exists (409): read it by name, take it
 * into the cache as ours, and PUT our body if its checksum differs. */
static int reconcile_adopt(reconcile_ctx *ctx, const proto_avi_object *obj, int budget)
{
    char path[RECONCILE_PATH_MAX];
    char escaped[3 * RECONCILE_NAME_MAX + 1];
    json_t *response = NULL;
    long status = 0;
    int rc = avi_session_escape(escaped, sizeof escaped, obj->name);
    if (rc < 0)
        return rc;
    rc = snprintf(path, sizeof path, "/api/%s?name=%s", obj->type, escaped);
    if (rc < 0 || (size_t)rc >= sizeof path)
        return KV_ERR_TOO_LARGE;
    rc = avi_session_request(ctx->session, "GET", path, NULL, &status, &response);
    if (rc < 0) {
        rc = reconcile_fail(ctx->outcome, ctx->session, rc, status);
        goto out_free_response;
    }
    const json_t *found = json_array_get(json_object_get(response, "results"), 0);
    if (!found || avi_cache_update(ctx->cache, obj->type, found) < 0) {
        /* Gone again between the 409 and the GET: a later pass creates it. */
        log_warn("adopt %s %s: 409 on create but not found by name", obj->type, obj->name);
        free(ctx->outcome->error);
        ctx->outcome->error = strdup("object exists but cannot be read by name");
        ctx->outcome->result = RECONCILE_TRANSIENT;
        rc = KV_ERR_AGAIN;
        goto out_free_response;
    }
    log_info("adopt %s %s: exists on the controller, taken over", obj->type, obj->name);
    if (reconcile_unchanged(ctx, obj))
        rc = reconcile_held_add(ctx->held, obj->type, obj->name,
                                avi_type_rank(obj->type, obj->body));
    else
        rc = reconcile_put(ctx, obj, budget - 1);

out_free_response:
    json_decref(response);
    return rc;
}

static int reconcile_post(reconcile_ctx *ctx, const proto_avi_object *obj, int budget)
{
    char path[RECONCILE_PATH_MAX];
    json_t *response = NULL;
    long status = 0;
    if (budget <= 0) {
        free(ctx->outcome->error);
        ctx->outcome->error = strdup("the controller keeps contradicting itself; will retry");
        ctx->outcome->result = RECONCILE_TRANSIENT;
        return KV_ERR_AGAIN;
    }
    int rc = snprintf(path, sizeof path, "/api/%s", obj->type);
    if (rc < 0 || (size_t)rc >= sizeof path)
        return KV_ERR_TOO_LARGE;
    rc = avi_session_request(ctx->session, "POST", path, obj->body, &status, &response);
    reconcile_log_write("POST", obj->type, obj->name, status, rc, ctx->session);
    if (rc == KV_OK) {
        ctx->outcome->writes++;
        rc = reconcile_record(ctx, obj, response);
    } else if (rc == KV_ERR_HTTP && status == 409) {
        rc = reconcile_adopt(ctx, obj, budget - 1);
    } else {
        rc = reconcile_fail(ctx->outcome, ctx->session, rc, status);
    }
    json_decref(response);
    return rc;
}

static int reconcile_object(reconcile_ctx *ctx, const proto_avi_object *obj)
{
    if (reconcile_unchanged(ctx, obj)) {
        log_debug("skip %s %s: checksum %s unchanged", obj->type, obj->name, obj->checksum);
        return reconcile_held_add(ctx->held, obj->type, obj->name,
                                  avi_type_rank(obj->type, obj->body));
    }
    return avi_cache_get(ctx->cache, obj->type, obj->name) ? reconcile_put(ctx, obj, 4)
                                                           : reconcile_post(ctx, obj, 4);
}

/* ---- deletions ------------------------------------------------------------------ */

/* DELETE one cached object. 404 means it is already gone. */
static int reconcile_delete_one(reconcile_outcome *o, avi_session_t *session,
                                avi_cache_t *cache, const char *type, const char *name)
{
    char path[RECONCILE_PATH_MAX];
    long status = 0;
    const avi_cache_entry *e = avi_cache_get(cache, type, name);
    if (!e)
        return KV_OK; /* never created, or already known gone */
    int rc = snprintf(path, sizeof path, "/api/%s/%s", type, e->uuid);
    if (rc < 0 || (size_t)rc >= sizeof path)
        return KV_ERR_TOO_LARGE;
    rc = avi_session_request(session, "DELETE", path, NULL, &status, NULL);
    if (rc == KV_ERR_HTTP && status == 404) {
        log_info("DELETE %s %s → 404 (already gone)", type, name);
        avi_cache_remove(cache, type, name);
        return KV_OK;
    }
    reconcile_log_write("DELETE", type, name, status, rc, session);
    if (rc == KV_OK) {
        o->writes++;
        avi_cache_remove(cache, type, name);
        return KV_OK;
    }
    return reconcile_fail(o, session, rc, status);
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

/* Deletes the held objects `model` does not hold (all of them when model is
 * NULL), referrers first. Refusals are logged, left in held, and reported
 * through *refused; a transient failure stops the pass. */
static int reconcile_delete_unwanted(reconcile_outcome *o, avi_session_t *session,
                                     avi_cache_t *cache, reconcile_held *held,
                                     const proto_model *model, bool *refused)
{
    reconcile_ref *doomed = NULL;
    size_t n_doomed = 0;
    int rc = KV_OK;
    *refused = false;
    if (held->n == 0)
        return KV_OK;
    doomed = calloc(held->n, sizeof *doomed);
    if (!doomed)
        return KV_ERR_NOMEM;
    for (size_t i = 0; i < held->n; i++) {
        bool keep = false;
        for (size_t j = 0; model && j < model->n_objects && !keep; j++)
            keep = strcmp(model->objects[j].type, held->refs[i].type) == 0 &&
                   strcmp(model->objects[j].name, held->refs[i].name) == 0;
        if (!keep)
            doomed[n_doomed++] = held->refs[i]; /* borrowed strings */
    }
    qsort(doomed, n_doomed, sizeof *doomed, reconcile_ref_delete_order);
    for (size_t i = 0; i < n_doomed; i++) {
        rc = reconcile_delete_one(o, session, cache, doomed[i].type, doomed[i].name);
        if (rc == KV_OK) {
            /* Last use of doomed[i]: held_remove frees its strings. */
            reconcile_held_remove(held, doomed[i].type, doomed[i].name);
            continue;
        }
        if (o->result != RECONCILE_REFUSED)
            break; /* transient: the whole model is retried later */
        *refused = true;
        rc = KV_OK;
    }
    free(doomed);
    return rc;
}

/* ---- models ------------------------------------------------------------------- */

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

int reconcile_apply(reconcile_outcome *o, avi_session_t *session, avi_cache_t *cache,
                    const proto_model *model, reconcile_held *held)
{
    const proto_avi_object **order = NULL;
    bool refused_deletion = false;
    int rc = KV_OK;
    reconcile_ctx ctx = {.session = session, .cache = cache, .outcome = o, .held = held};

    reconcile_outcome_clear(o);
    for (size_t i = 0; i < model->n_objects; i++) {
        rc = reconcile_check_object(o, &model->objects[i]);
        if (rc < 0) {
            log_warn("model %s: %s", model->name, o->error);
            return rc;
        }
    }
    order = calloc(model->n_objects ? model->n_objects : 1, sizeof *order);
    if (!order)
        return KV_ERR_NOMEM;
    for (size_t i = 0; i < model->n_objects; i++)
        order[i] = &model->objects[i];
    qsort(order, model->n_objects, sizeof *order, reconcile_rank_order);

    for (size_t i = 0; i < model->n_objects; i++) {
        rc = reconcile_object(&ctx, order[i]);
        if (rc < 0) {
            if (o->result == RECONCILE_APPLIED) {
                /* An internal failure (memory, a too long path) rather than
                 * the controller's answer. */
                o->result = rc == KV_ERR_NOMEM ? RECONCILE_TRANSIENT : RECONCILE_REFUSED;
                free(o->error);
                o->error = strdup(kv_strerror(rc));
            }
            log_warn("model %s: stopped at %s %s (%s): %s", model->name, order[i]->type,
                     order[i]->name,
                     o->result == RECONCILE_TRANSIENT ? "will retry" : "refused",
                     o->error ? o->error : "");
            goto out_free_order;
        }
    }

    rc = reconcile_delete_unwanted(o, session, cache, held, model, &refused_deletion);
    if (rc < 0) {
        log_warn("model %s: removing old objects failed (will retry): %s", model->name,
                 o->error ? o->error : kv_strerror(rc));
        o->result = RECONCILE_TRANSIENT;
        goto out_free_order;
    }
    /* A refused deletion (someone else still refers to the object) does
     * not fail the model: what the model wants is in place. The object
     * stays held and is tried again with the next change. */
    free(o->error);
    o->error = NULL;
    o->result = RECONCILE_APPLIED;
    rc = reconcile_collect_vips(o, cache, model);
    if (rc < 0)
        o->result = RECONCILE_TRANSIENT;
    else if (o->writes)
        log_info("model %s applied (%u writes)", model->name, o->writes);

out_free_order:
    free(order);
    return rc;
}

int reconcile_delete(reconcile_outcome *o, avi_session_t *session, avi_cache_t *cache,
                     reconcile_held *held)
{
    bool refused = false;
    reconcile_outcome_clear(o);
    int rc = reconcile_delete_unwanted(o, session, cache, held, NULL, &refused);
    if (rc < 0) {
        if (o->result == RECONCILE_APPLIED)
            o->result = RECONCILE_TRANSIENT;
        return o->result == RECONCILE_REFUSED ? KV_ERR_HTTP : KV_ERR_AGAIN;
    }
    if (refused) {
        o->result = RECONCILE_REFUSED;
        return KV_ERR_HTTP;
    }
    return KV_OK;
}

int reconcile_gc(reconcile_outcome *o, avi_session_t *session, avi_cache_t *cache,
                 reconcile_wanted_fn wanted, void *payload)
{
    const avi_cache_entry **entries = NULL;
    size_t n = 0;
    unsigned refused = 0;
    reconcile_outcome_clear(o);
    int rc = avi_cache_list(cache, &entries, &n);
    if (rc < 0)
        return rc;
    /* Names are copied before each DELETE: a delete frees its entry. */
    reconcile_ref *doomed = calloc(n ? n : 1, sizeof *doomed);
    size_t n_doomed = 0;
    if (!doomed) {
        free(entries);
        return KV_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (wanted(entries[i]->type, entries[i]->name, payload))
            continue;
        doomed[n_doomed].type = strdup(entries[i]->type);
        doomed[n_doomed].name = strdup(entries[i]->name);
        doomed[n_doomed].rank = entries[i]->rank;
        n_doomed++;
        if (!doomed[n_doomed - 1].type || !doomed[n_doomed - 1].name) {
            rc = KV_ERR_NOMEM;
            goto out_free_doomed;
        }
    }
    free(entries);
    entries = NULL;
    for (size_t i = 0; i < n_doomed; i++) {
        log_info("gc: %s %s is owned but no model wants it", doomed[i].type, doomed[i].name);
        rc = reconcile_delete_one(o, session, cache, doomed[i].type, doomed[i].name);
        if (rc == KV_OK)
            continue;
        if (o->result != RECONCILE_REFUSED) {
            rc = KV_ERR_AGAIN;
            goto out_free_doomed;
        }
        refused++;
        rc = KV_OK;
    }
    if (refused)
        log_warn("gc: %u objects could not be deleted (see above)", refused);
    o->result = RECONCILE_APPLIED;

out_free_doomed:
    for (size_t i = 0; i < n_doomed; i++) {
        free(doomed[i].type);
        free(doomed[i].name);
    }
    free(doomed);
    free(entries);
    return rc;
}
