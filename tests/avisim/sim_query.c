/*
 * GET /api/<type>: filtering, field selection and paging, with the
 * envelope {"count", "results", "next"} the SDKs and AKO page through.
 *
 * count is the number of matches over all pages; next is an absolute URL
 * (AKO splits it at "/api/<type>" and re-requests the rest) and is absent on
 * the last page.
 */
#define _GNU_SOURCE /* vasprintf, strcasestr */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

/* Parameters that steer the listing itself or that the simulator accepts and
 * ignores (the SDKs send some of them by default). */
static const char *const reserved_keys[] = {
    "page", "page_size", "fields", "include_name", "skip_default", "join_subresources",
    "sort", "search", "isearch", "limit_by", "exclude", "name", "name.contains",
    "name.icontains", "name.in", "uuid.in", "refers_to", "referred_by", "cloud_uuid",
    "include_refs", "assorted", NULL,
};

/* Fields every config object has, filterable even when no object sets them. */
static const char *const common_fields[] = {"created_by", "description", "uuid", NULL};

static bool in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

bool avisim_args_flag(const struct avisim_arg *args, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(args[i].key, key) == 0)
            return !args[i].value || !*args[i].value || strcmp(args[i].value, "true") == 0 ||
                   strcmp(args[i].value, "True") == 0 || strcmp(args[i].value, "1") == 0;
    return false;
}

const char *avisim_args_get(const struct avisim_arg *args, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(args[i].key, key) == 0)
            return args[i].value ? args[i].value : "";
    return NULL;
}

/* "type:uuid" → object, NULL if malformed or missing. */
static struct avisim_obj *typed_target(const struct avisim_store *st, const char *spec)
{
    const char *colon = strchr(spec, ':');
    if (!colon)
        return NULL;
    int type = avisim_type_from_path(spec, (size_t)(colon - spec));
    return avisim_store_get(st, type, colon + 1);
}

static bool refers_to(const struct avisim_obj *obj, const struct avisim_obj *target)
{
    for (size_t i = 0; i < obj->n_refs; i++)
        if (obj->refs[i] == target)
            return true;
    return false;
}

/* <field>_ref.name / <field>_ref.uuid: compares against the referenced object. */
static bool match_ref_attr(const struct avisim_store *st, const struct avisim_obj *obj,
                           const char *key, const char *value)
{
    const char *dot = strrchr(key, '.');
    char field[128];
    size_t flen = (size_t)(dot - key);
    if (flen >= sizeof(field))
        return false;
    memcpy(field, key, flen);
    field[flen] = '\0';
    const struct avisim_obj *t =
        avisim_store_ref_target(st, json_string_value(json_object_get(obj->body, field)));
    if (!t)
        return false;
    return strcmp(dot + 1, "name") == 0 ? strcmp(avisim_obj_name(t), value) == 0
                                        : strcmp(t->uuid, value) == 0;
}

static bool is_ref_attr(const char *key)
{
    const char *dot = strrchr(key, '.');
    if (!dot || (strcmp(dot, ".name") != 0 && strcmp(dot, ".uuid") != 0))
        return false;
    return dot - key > 4 && strncmp(dot - 4, "_ref", 4) == 0;
}

/* Generic top-level field equality; refs compare by target uuid or name. */
static bool match_field(const struct avisim_store *st, const struct avisim_obj *obj,
                        const char *key, const char *value)
{
    json_t *v = json_object_get(obj->body, key);
    if (!v)
        return false;
    if (json_is_string(v) && avisim_ends_with(key, "_ref")) {
        const struct avisim_obj *t = avisim_store_ref_target(st, json_string_value(v));
        if (t)
            return strcmp(t->uuid, value) == 0 || strcmp(avisim_obj_name(t), value) == 0;
    }
    char *text = avisim_json_scalar_text(v);
    bool ok = text && strcmp(text, value) == 0;
    free(text);
    return ok;
}

/* A key the simulator does not reserve counts as a field filter when it is
 * a common field or some object of the type has it; others are ignored, so
 * a client's unrelated parameter never empties a listing. */
static bool is_field_filter(const struct avisim_store *st, int type, const char *key)
{
    if (in_list(common_fields, key))
        return true;
    struct avisim_obj *o, *tmp;
    HASH_ITER(hh, st->objs[type], o, tmp)
    {
        if (json_object_get(o->body, key))
            return true;
    }
    return false;
}

static bool matches(const struct avisim_store *st, const struct avisim_obj *obj,
                    const struct avisim_obj *tenant, const struct avisim_arg *args, size_t n,
                    const bool *field_filter)
{
    if (!avisim_obj_visible(obj, tenant))
        return false;
    const char *name = avisim_obj_name(obj);
    for (size_t i = 0; i < n; i++) {
        const char *k = args[i].key;
        const char *v = args[i].value ? args[i].value : "";
        bool ok = true;
        if (strcmp(k, "name") == 0)
            ok = strcmp(name, v) == 0;
        else if (strcmp(k, "name.contains") == 0)
            ok = strstr(name, v) != NULL;
        else if (strcmp(k, "name.icontains") == 0)
            ok = strcasestr(name, v) != NULL;
        else if (strcmp(k, "name.in") == 0)
            ok = avisim_csv_contains(v, name);
        else if (strcmp(k, "uuid.in") == 0)
            ok = avisim_csv_contains(v, obj->uuid);
        else if (strcmp(k, "cloud_uuid") == 0)
            ok = match_ref_attr(st, obj, "cloud_ref.uuid", v);
        else if (strcmp(k, "refers_to") == 0) {
            const struct avisim_obj *t = typed_target(st, v);
            ok = t && refers_to(obj, t);
        } else if (strcmp(k, "referred_by") == 0) {
            const struct avisim_obj *s = typed_target(st, v);
            ok = s && refers_to(s, obj);
        } else if (is_ref_attr(k))
            ok = match_ref_attr(st, obj, k, v);
        else if (field_filter[i])
            ok = match_field(st, obj, k, v);
        if (!ok)
            return false;
    }
    return true;
}

/* Keeps name, url, uuid and the listed fields. */
static void select_fields(json_t *obj, const char *fields)
{
    const char *key;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, val)
    {
        if (strcmp(key, "name") && strcmp(key, "url") && strcmp(key, "uuid") &&
            !avisim_csv_contains(fields, key))
            json_object_del(obj, key);
    }
}

static int parse_positive(const char *s, long max, long *out)
{
    char *end = NULL;
    if (!s || !*s || strlen(s) > 10)
        return -EINVAL;
    long v = strtol(s, &end, 10);
    if (*end || v < 1 || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static char *next_url(int type, const struct avisim_arg *args, size_t n, const char *base,
                      long next_page)
{
    struct avisim_buf b;
    avisim_buf_init(&b, 64 * 1024);
    int rc = avisim_buf_addf(&b, "%s/api/%s?", base, avisim_type_info(type)->path);
    bool first = true;
    for (size_t i = 0; i < n && !rc; i++) {
        if (strcmp(args[i].key, "page") == 0)
            continue;
        rc = avisim_buf_add(&b, "&", first ? 0 : 1);
        first = false;
        rc = rc ? rc : avisim_buf_add_urlencoded(&b, args[i].key);
        if (!rc && args[i].value) {
            rc = avisim_buf_add(&b, "=", 1);
            rc = rc ? rc : avisim_buf_add_urlencoded(&b, args[i].value);
        }
    }
    if (!rc)
        rc = avisim_buf_addf(&b, "%spage=%ld", first ? "" : "&", next_page);
    if (rc) {
        avisim_buf_free(&b);
        return NULL;
    }
    return b.data;
}

int avisim_query_list(const struct avisim_store *st, int type, const struct avisim_obj *tenant,
                      const struct avisim_arg *args, size_t n_args, const char *base,
                      json_t **out, char *err, size_t errlen)
{
    long page = 1, page_size = AVISIM_PAGE_SIZE_DEFAULT;
    const char *ps = avisim_args_get(args, n_args, "page_size");
    const char *pg = avisim_args_get(args, n_args, "page");
    bool field_filter[AVISIM_MAX_ARGS] = {false};

    if (ps && parse_positive(ps, AVISIM_PAGE_SIZE_MAX, &page_size)) {
        snprintf(err, errlen, "page_size: must be an integer between 1 and %d",
                 AVISIM_PAGE_SIZE_MAX);
        return 400;
    }
    if (pg && parse_positive(pg, 1000000000L, &page)) {
        snprintf(err, errlen, "page: must be a positive integer");
        return 400;
    }
    for (size_t i = 0; i < n_args && i < AVISIM_MAX_ARGS; i++)
        field_filter[i] = !in_list(reserved_keys, args[i].key) && !is_ref_attr(args[i].key) &&
                          is_field_filter(st, type, args[i].key);

    bool include_name = avisim_args_flag(args, n_args, "include_name");
    const char *fields = avisim_args_get(args, n_args, "fields");
    json_t *results = json_array();
    long count = 0, first = (page - 1) * page_size;
    struct avisim_obj *o, *tmp;
    HASH_ITER(hh, st->objs[type], o, tmp)
    {
        if (!matches(st, o, tenant, args, n_args, field_filter))
            continue;
        if (count >= first && count < first + page_size) {
            json_t *j = avisim_store_render(st, o, base, include_name);
            if (fields)
                select_fields(j, fields);
            json_array_append_new(results, j);
        }
        count++;
    }
    json_t *env = json_pack("{s:I, s:o}", "count", (json_int_t)count, "results", results);
    if (env && count > first + page_size) {
        char *next = next_url(type, args, n_args, base, page + 1);
        if (next)
            json_object_set_new(env, "next", json_string(next));
        free(next);
    }
    *out = env;
    return env ? 200 : 500;
}
