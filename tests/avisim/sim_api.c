/*
 * CRUD on /api/<type>[/<uuid>] once the request is authenticated and its
 * tenant known. Every write runs one pipeline, in the order a client can
 * observe on the real controller: defaults and validation (400), reference
 * resolution (404), name uniqueness (409), VIP allocation (400), then the
 * store. Nothing is changed unless every step passes.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#define MAX_SLUG 128

void avisim_reply_json(struct avisim_reply *r, int status, json_t *body_take)
{
    free(r->body);
    r->status = status;
    r->content_type = "application/json";
    r->body = body_take ? json_dumps(body_take, JSON_COMPACT) : NULL;
    if (body_take && !r->body)
        r->status = 500;
    json_decref(body_take);
}

void avisim_reply_error(struct avisim_reply *r, int status, const char *fmt, ...)
{
    char msg[AVISIM_ERR_LEN * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    avisim_reply_json(r, status, json_pack("{s:s}", "error", msg));
}

void avisim_reply_free(struct avisim_reply *r)
{
    free(r->body);
    free(r->location);
    free(r->log_name);
    free(r->log_uuid);
    memset(r, 0, sizeof(*r));
}

static void note(struct avisim_reply *rp, const char *name, const char *uuid)
{
    if (name && !rp->log_name)
        rp->log_name = strdup(name);
    if (uuid && !rp->log_uuid)
        rp->log_uuid = strdup(uuid);
}

static const char *model(int type)
{
    return avisim_type_info(type)->model;
}

static void not_allowed(struct avisim_reply *rp, const char *method)
{
    char msg[64];
    snprintf(msg, sizeof(msg), "Method '%.16s' not allowed.", method);
    avisim_reply_json(rp, 405, json_pack("{s:s}", "detail", msg));
}

/* The object a write may touch: visible and owned by the request tenant. */
static struct avisim_obj *writable(struct avisim_store *st, const struct avisim_api_request *rq)
{
    struct avisim_obj *o = avisim_store_get(st, rq->type, rq->uuid);
    return o && o->tenant == rq->tenant ? o : NULL;
}

static void strip_read_only(json_t *body)
{
    json_object_del(body, "uuid");
    json_object_del(body, "url");
    json_object_del(body, "_last_modified");
    json_object_del(body, "tenant_ref");
}

/* The common write pipeline; body is taken. */
static void write_object(struct avisim_store *st, const struct avisim_api_request *rq,
                         struct avisim_obj *existing, json_t *body, const char *uuid_hint,
                         struct avisim_reply *rp)
{
    char err[AVISIM_ERR_LEN];
    struct avisim_obj *obj = NULL;
    int rc;

    /* The controller refuses a body outside its object model, read-only
     * fields included: only those the model has may be echoed back. */
    rc = avisim_schema_check(st->schema, avisim_type_info(rq->type)->path, body, err,
                             sizeof(err));
    if (rc)
        goto out_error;
    strip_read_only(body);
    rc = avisim_model_prepare(st, rq->type, body, err, sizeof(err));
    if (rc)
        goto out_error;
    if (rq->type != AVISIM_T_TENANT) {
        /* A Tenant has no tenant_ref in the object model. */
        char *tenant_ref = avisim_strdupf("/api/tenant/%s", rq->tenant->uuid);
        json_object_set_new(body, "tenant_ref", json_string(tenant_ref ? tenant_ref : ""));
        free(tenant_ref);
    }
    rc = avisim_store_resolve_refs(st, rq->tenant, body, err, sizeof(err));
    if (rc)
        goto out_error;
    rc = avisim_store_check_unique(st, rq->type, rq->tenant, body, existing, err, sizeof(err));
    if (rc)
        goto out_error;
    if (rq->type == AVISIM_T_SSLKEYANDCERTIFICATE && existing && !json_object_get(body, "key") &&
        json_object_get(existing->body, "key")) {
        /* Keys are never returned, so a GET-modify-PUT must not lose it. */
        json_object_set(body, "key", json_object_get(existing->body, "key"));
    }
    if (rq->type == AVISIM_T_VSVIP) {
        rc = avisim_vip_prepare(st, existing, body, err, sizeof(err));
        if (rc)
            goto out_error;
    }
    rc = avisim_store_put(st, existing, rq->type, rq->tenant, body, uuid_hint, false, &obj);
    body = NULL;
    if (rc || !obj) {
        avisim_reply_error(rp, 500, "out of memory");
        return;
    }
    note(rp, NULL, obj->uuid);
    json_t *out = avisim_store_render(st, obj, rq->base, true);
    if (!existing)
        rp->location = json_string_value(json_object_get(out, "url"))
                           ? strdup(json_string_value(json_object_get(out, "url")))
                           : NULL;
    avisim_reply_json(rp, existing ? 200 : 201, out);
    return;

out_error:
    json_decref(body);
    avisim_reply_error(rp, rc, "%s", err);
}

static bool slug_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_SLUG)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

static void create(struct avisim_store *st, const struct avisim_api_request *rq,
                   struct avisim_reply *rp)
{
    if (rq->slug && !slug_ok(rq->slug)) {
        avisim_reply_error(rp, 400, "Slug: invalid uuid '%.64s'", rq->slug);
        return;
    }
    if (rq->slug && avisim_store_get(st, rq->type, rq->slug)) {
        avisim_reply_error(rp, 409, "%s with this Uuid already exists.",
                           avisim_type_info(rq->type)->verbose);
        return;
    }
    write_object(st, rq, NULL, json_deep_copy(rq->body), rq->slug, rp);
}

static void replace(struct avisim_store *st, const struct avisim_api_request *rq,
                    struct avisim_obj *obj, struct avisim_reply *rp)
{
    const char *sent = json_string_value(json_object_get(rq->body, "_last_modified"));
    const char *have = json_string_value(json_object_get(obj->body, "_last_modified"));
    if (json_object_get(rq->body, "_last_modified") && (!sent || !have || strcmp(sent, have))) {
        avisim_reply_error(rp, 412, "Need to reload object data %s", model(rq->type));
        return;
    }
    write_object(st, rq, obj, json_deep_copy(rq->body), NULL, rp);
}

/* Every key of want is in have with an equal (or, for objects, subset) value. */
static bool subset_match(const json_t *want, const json_t *have)
{
    if (!json_is_object(want) || !json_is_object(have))
        return json_equal(want, have);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)want, key, val)
    {
        if (!subset_match(val, json_object_get(have, key)))
            return false;
    }
    return true;
}

static void patch_delete(struct avisim_store *st, const struct avisim_api_request *rq,
                         json_t *merged, const char *key, const json_t *val)
{
    char err[AVISIM_ERR_LEN];
    json_t *cur = json_object_get(merged, key);
    if (!json_is_array(cur)) {
        /* Unsetting a scalar; the defaults step puts back a default, if any. */
        json_object_del(merged, key);
        return;
    }
    /* Entries name references however the client likes; compare them in the
     * stored (canonical) spelling. Unresolvable ones simply match nothing. */
    json_t *wrap = json_object();
    json_t *list = json_is_array(val) ? json_deep_copy(val) : json_pack("[o]", json_deep_copy(val));
    if (!wrap || !list || json_object_set_new(wrap, key, list)) {
        json_decref(wrap);
        return;
    }
    avisim_store_resolve_refs(st, rq->tenant, wrap, err, sizeof(err));
    json_t *entries = json_object_get(wrap, key);
    for (size_t i = json_array_size(cur); i-- > 0;) {
        size_t j;
        json_t *e;
        json_array_foreach(entries, j, e)
        {
            if (subset_match(e, json_array_get(cur, i))) {
                json_array_remove(cur, i);
                break;
            }
        }
    }
    if (json_array_size(cur) == 0)
        json_object_del(merged, key);
    json_decref(wrap);
}

static void patch(struct avisim_store *st, const struct avisim_api_request *rq,
                  struct avisim_obj *obj, struct avisim_reply *rp)
{
    static const char *const ops[] = {"add", "replace", "delete"};
    json_t *merged = json_deep_copy(obj->body);
    bool any = false;

    for (size_t k = 0; k < 3; k++) {
        json_t *op = json_object_get(rq->body, ops[k]);
        if (!op)
            continue;
        if (!json_is_object(op)) {
            json_decref(merged);
            avisim_reply_error(rp, 400, "%s: must be an object", ops[k]);
            return;
        }
        any = true;
        const char *key;
        json_t *val;
        json_object_foreach(op, key, val)
        {
            json_t *cur = json_object_get(merged, key);
            if (k == 2) {
                patch_delete(st, rq, merged, key, val);
            } else if (k == 0 && json_is_array(cur)) {
                if (json_is_array(val)) {
                    json_t *copy = json_deep_copy(val);
                    json_array_extend(cur, copy);
                    json_decref(copy);
                } else {
                    json_array_append_new(cur, json_deep_copy(val));
                }
            } else {
                json_object_set_new(merged, key, json_deep_copy(val));
            }
        }
    }
    if (!any) {
        json_decref(merged);
        avisim_reply_error(rp, 400, "PATCH body must contain one of add, replace or delete");
        return;
    }
    write_object(st, rq, obj, merged, NULL, rp);
}

static void delete_object(struct avisim_store *st, const struct avisim_api_request *rq,
                          struct avisim_obj *obj, struct avisim_reply *rp)
{
    if (obj->seed) {
        avisim_reply_error(rp, 403, "Cannot delete system default object");
        return;
    }
    if (HASH_COUNT(obj->referrers) > 0) {
        char *list = avisim_store_referrer_list(obj);
        avisim_reply_error(rp, rq->delete_referenced_status,
                           "Cannot delete, object is referred by: %s", list ? list : "[]");
        free(list);
        return;
    }
    avisim_store_remove(st, obj);
    rp->status = 204;
    rp->content_type = "application/json";
}

void avisim_api_handle(struct avisim_store *st, const struct avisim_api_request *rq,
                       struct avisim_reply *rp)
{
    bool is_write = strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0 &&
                    strcmp(rq->method, "DELETE") != 0;

    note(rp, json_string_value(json_object_get(rq->body, "name")), rq->uuid);
    if (is_write && !json_is_object(rq->body)) {
        avisim_reply_error(rp, 400, "Request body must be a JSON object");
        return;
    }
    if (!rq->uuid) {
        if (strcmp(rq->method, "GET") == 0) {
            char err[AVISIM_ERR_LEN];
            json_t *out = NULL;
            int rc = avisim_query_list(st, rq->type, rq->tenant, rq->args, rq->n_args, rq->base,
                                       &out, err, sizeof(err));
            if (rc == 200)
                avisim_reply_json(rp, 200, out);
            else
                avisim_reply_error(rp, rc, "%s", err);
        } else if (strcmp(rq->method, "POST") == 0) {
            create(st, rq, rp);
        } else {
            not_allowed(rp, rq->method);
        }
        return;
    }

    struct avisim_obj *obj = strcmp(rq->method, "GET") == 0
                                 ? avisim_store_get(st, rq->type, rq->uuid)
                                 : writable(st, rq);
    if (obj && !avisim_obj_visible(obj, rq->tenant))
        obj = NULL;
    if (strcmp(rq->method, "POST") == 0) {
        not_allowed(rp, rq->method);
        return;
    }
    if (!obj && (strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "PUT") == 0 ||
                 strcmp(rq->method, "PATCH") == 0 || strcmp(rq->method, "DELETE") == 0)) {
        avisim_reply_error(rp, 404, "%s object not found!", model(rq->type));
        return;
    }
    if (obj)
        note(rp, avisim_obj_name(obj), NULL);
    if (strcmp(rq->method, "GET") == 0)
        avisim_reply_json(rp, 200,
                          avisim_store_render(st, obj, rq->base,
                                              avisim_args_flag(rq->args, rq->n_args,
                                                               "include_name")));
    else if (strcmp(rq->method, "PUT") == 0)
        replace(st, rq, obj, rp);
    else if (strcmp(rq->method, "PATCH") == 0)
        patch(st, rq, obj, rp);
    else if (strcmp(rq->method, "DELETE") == 0)
        delete_object(st, rq, obj, rp);
    else
        not_allowed(rp, rq->method);
}
