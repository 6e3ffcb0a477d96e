/*
 * The Avi Controller's object model as a schema every write is checked
 * against, so a client body the real controller would refuse is refused here
 * too. The model is data (tests/data/avi_models.json, extracted from
 * vmware/alb-sdk go/models; see tests/data/avi_models.md): Go type name →
 * field json name → {type, enum, range, required}.
 *
 * It is parsed once into a hash of types, each with a hash of fields whose
 * nested object types are resolved to pointers, so a check costs one hash
 * lookup per field of the body. The schema is immutable after load, so the
 * HTTP threads may share it without the simulator's lock.
 *
 * What a check refuses (400, the message naming the field's path):
 *  - a field the type does not have;
 *  - a value of the wrong JSON type (strings, integers within the Go type's
 *    bounds, booleans, numbers, nested objects, lists);
 *  - a string not among the field's enum values (unless the list is marked
 *    enum_truncated: alb-sdk cuts some lists at 20 values with "....");
 *  - a number outside the field's "Allowed values are low-high" range.
 * "required" is loaded but not enforced: the model marks fields required
 * that the controller fills in (Vip.vip_id), and kavi's bodies do not carry
 * every one of them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#define MAX_PATH 384  /* field path in messages; longer paths are cut */
#define MAX_DEPTH 64  /* nesting of objects and lists checked */
#define MAX_ENUM_LIST 200 /* characters of allowed values quoted in a message */

enum field_kind {
    KIND_STRING,
    KIND_BOOL,
    KIND_INT32,
    KIND_UINT32,
    KIND_INT64,
    KIND_UINT64,
    KIND_FLOAT,
    KIND_OBJECT,
};

struct schema_type;

struct schema_field {
    char *name;
    enum field_kind kind;
    bool list;
    char *object_name;          /* KIND_OBJECT: the nested type's name */
    struct schema_type *object; /* KIND_OBJECT: resolved after load */
    char **enum_values;
    size_t n_enum;
    bool enum_truncated; /* the SDK's list ends in "....": other values exist */
    bool has_range;
    double low, high;
    bool required;
    UT_hash_handle hh;
};

struct schema_type {
    char *name;     /* Go type name, "HealthMonitor" */
    char *rest_key; /* lower-cased, the REST path segment "healthmonitor" */
    struct schema_field *fields;
    UT_hash_handle hh;     /* by name */
    UT_hash_handle hh_rest; /* by rest_key */
};

struct avisim_schema {
    struct schema_type *types;
    struct schema_type *by_rest;
};

/* ---- load -------------------------------------------------------------- */

static void field_free(struct schema_field *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_enum; i++)
        free(f->enum_values[i]);
    free(f->enum_values);
    free(f->object_name);
    free(f->name);
    free(f);
}

static void type_free(struct schema_type *t)
{
    struct schema_field *f, *tmp;
    HASH_ITER(hh, t->fields, f, tmp)
    {
        HASH_DEL(t->fields, f);
        field_free(f);
    }
    free(t->name);
    free(t->rest_key);
    free(t);
}

void avisim_schema_destroy(struct avisim_schema **schemap)
{
    struct avisim_schema *s = schemap ? *schemap : NULL;
    if (!s)
        return;
    struct schema_type *t, *tmp;
    HASH_CLEAR(hh_rest, s->by_rest);
    HASH_ITER(hh, s->types, t, tmp)
    {
        HASH_DEL(s->types, t);
        type_free(t);
    }
    free(s);
    *schemap = NULL;
}

/* "*string", "[]*Server", "[]string" → kind, list, nested type name. */
static int parse_go_type(const char *go, struct schema_field *f)
{
    static const struct {
        const char *name;
        enum field_kind kind;
    } scalars[] = {
        {"string", KIND_STRING}, {"bool", KIND_BOOL},     {"int32", KIND_INT32},
        {"uint32", KIND_UINT32}, {"int64", KIND_INT64},   {"uint64", KIND_UINT64},
        {"float32", KIND_FLOAT}, {"float64", KIND_FLOAT},
    };
    const char *p = go;
    while (*p == '*' || (p[0] == '[' && p[1] == ']')) {
        if (*p == '[') {
            if (f->list)
                return -EINVAL; /* lists of lists are not in the model */
            f->list = true;
            p += 2;
        } else {
            p++;
        }
    }
    if (!*p)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        if (strcmp(p, scalars[i].name) == 0) {
            f->kind = scalars[i].kind;
            return 0;
        }
    }
    f->kind = KIND_OBJECT;
    f->object_name = strdup(p);
    return f->object_name ? 0 : -ENOMEM;
}

static int field_load(const char *name, const json_t *spec, struct schema_field **out,
                      char *err, size_t errlen)
{
    struct schema_field *f = calloc(1, sizeof(*f));
    const char *go = json_string_value(json_object_get(spec, "type"));
    const json_t *values = json_object_get(spec, "enum");
    const json_t *range = json_object_get(spec, "range");
    int rc = -ENOMEM;

    *out = NULL;
    if (!f)
        return -ENOMEM;
    f->name = strdup(name);
    if (!f->name)
        goto out_free;
    rc = go ? parse_go_type(go, f) : -EINVAL;
    if (rc)
        goto out_bad;
    f->required = json_is_true(json_object_get(spec, "required"));
    f->enum_truncated = json_is_true(json_object_get(spec, "enum_truncated"));
    if (json_is_array(values) && json_array_size(values) > 0) {
        if (f->kind != KIND_STRING)
            goto out_bad;
        f->enum_values = calloc(json_array_size(values), sizeof(char *));
        if (!f->enum_values) {
            rc = -ENOMEM;
            goto out_free;
        }
        size_t i;
        json_t *v;
        json_array_foreach(values, i, v)
        {
            if (!json_is_string(v))
                goto out_bad;
            f->enum_values[f->n_enum] = strdup(json_string_value(v));
            if (!f->enum_values[f->n_enum]) {
                rc = -ENOMEM;
                goto out_free;
            }
            f->n_enum++;
        }
    } else if (values && !json_is_null(values) && !json_is_array(values)) {
        goto out_bad;
    }
    if (json_is_array(range)) {
        if (json_array_size(range) != 2 || !json_is_number(json_array_get(range, 0)) ||
            !json_is_number(json_array_get(range, 1)) || f->kind == KIND_STRING ||
            f->kind == KIND_BOOL || f->kind == KIND_OBJECT)
            goto out_bad;
        f->has_range = true;
        f->low = json_number_value(json_array_get(range, 0));
        f->high = json_number_value(json_array_get(range, 1));
    } else if (range && !json_is_null(range)) {
        goto out_bad;
    }
    *out = f;
    return 0;

out_bad:
    snprintf(err, errlen, "field \"%s\": unreadable spec", name);
    rc = -EINVAL;
out_free:
    field_free(f);
    return rc;
}

static int type_load(struct avisim_schema *s, const char *name, const json_t *fields,
                     char *err, size_t errlen)
{
    struct schema_type *t = calloc(1, sizeof(*t));
    int rc = -ENOMEM;

    if (!t)
        return -ENOMEM;
    t->name = strdup(name);
    t->rest_key = strdup(name);
    if (!t->name || !t->rest_key)
        goto out_free;
    for (char *p = t->rest_key; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    if (!json_is_object(fields)) {
        snprintf(err, errlen, "type %.100s: not an object", name);
        rc = -EINVAL;
        goto out_free;
    }
    const char *key;
    json_t *spec;
    json_object_foreach((json_t *)fields, key, spec)
    {
        struct schema_field *f = NULL;
        char ferr[AVISIM_ERR_LEN];
        rc = field_load(key, spec, &f, ferr, sizeof(ferr));
        if (rc) {
            snprintf(err, errlen, "type %.100s: %s", name, ferr);
            goto out_free;
        }
        HASH_ADD_KEYPTR(hh, t->fields, f->name, strlen(f->name), f);
    }
    struct schema_type *clash = NULL;
    HASH_FIND(hh_rest, s->by_rest, t->rest_key, strlen(t->rest_key), clash);
    if (clash) {
        snprintf(err, errlen, "types %.100s and %.100s differ only in case", name, clash->name);
        rc = -EINVAL;
        goto out_free;
    }
    HASH_ADD_KEYPTR(hh, s->types, t->name, strlen(t->name), t);
    HASH_ADD_KEYPTR(hh_rest, s->by_rest, t->rest_key, strlen(t->rest_key), t);
    return 0;

out_free:
    type_free(t);
    return rc;
}

/* Points every object field at its type; a name the model lacks is an error. */
static int resolve_objects(struct avisim_schema *s, char *err, size_t errlen)
{
    struct schema_type *t, *ttmp;
    HASH_ITER(hh, s->types, t, ttmp)
    {
        struct schema_field *f, *ftmp;
        HASH_ITER(hh, t->fields, f, ftmp)
        {
            if (f->kind != KIND_OBJECT)
                continue;
            HASH_FIND_STR(s->types, f->object_name, f->object);
            if (!f->object) {
                snprintf(err, errlen, "%.100s.%.100s: type %.100s is not in the model", t->name,
                         f->name, f->object_name);
                return -EINVAL;
            }
        }
    }
    return 0;
}

int avisim_schema_load(struct avisim_schema **out, const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    struct avisim_schema *s = NULL;
    json_t *root = NULL;
    int rc;

    *out = NULL;
    root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s: %s (line %d)", path, jerr.text, jerr.line);
        return -EIO;
    }
    if (!json_is_object(root) || json_object_size(root) == 0) {
        snprintf(err, errlen, "%s: not an object of types", path);
        rc = -EINVAL;
        goto out_free;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = -ENOMEM;
        goto out_free;
    }
    const char *name;
    json_t *fields;
    json_object_foreach(root, name, fields)
    {
        rc = type_load(s, name, fields, err, errlen);
        if (rc)
            goto out_free;
    }
    rc = resolve_objects(s, err, errlen);
    if (rc)
        goto out_free;
    json_decref(root);
    *out = s;
    return 0;

out_free:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    avisim_schema_destroy(&s);
    json_decref(root);
    return rc;
}

/* ---- check ------------------------------------------------------------- */

struct check {
    const char *what; /* REST type of the body, "pool", opens every message */
    char *err;
    size_t errlen;
    char path[MAX_PATH];
};

#define REFUSE(c, ...)                                                                             \
    do {                                                                                           \
        refuse(c, __VA_ARGS__);                                                                    \
        return 400;                                                                                \
    } while (0)

static void refuse(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(struct check *c, const char *fmt, ...)
{
    char detail[AVISIM_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: field \"%s\" %s", c->what, c->path, detail);
}

/* Appends ".name" (or "name" at the top) or "[i]" to the path; returns the
 * old length so the caller can cut it back. */
static size_t path_push(struct check *c, const char *name, size_t index, bool is_index)
{
    size_t len = strlen(c->path);
    size_t room = sizeof(c->path) - len;
    if (is_index)
        snprintf(c->path + len, room, "[%zu]", index);
    else
        snprintf(c->path + len, room, "%s%s", len ? "." : "", name);
    return len;
}

static const char *kind_text(enum field_kind k)
{
    switch (k) {
    case KIND_STRING:
        return "a string";
    case KIND_BOOL:
        return "a boolean";
    case KIND_INT32:
    case KIND_INT64:
        return "an integer";
    case KIND_UINT32:
    case KIND_UINT64:
        return "an unsigned integer";
    case KIND_FLOAT:
        return "a number";
    case KIND_OBJECT:
        return "an object";
    }
    return "?";
}

static int check_object(struct check *c, const struct schema_type *t, const json_t *obj,
                        int depth);

static int check_enum(struct check *c, const struct schema_field *f, const char *value)
{
    char allowed[MAX_ENUM_LIST + 8];
    size_t o = 0;

    for (size_t i = 0; i < f->n_enum; i++)
        if (strcmp(f->enum_values[i], value) == 0)
            return 0;
    allowed[0] = '\0';
    for (size_t i = 0; i < f->n_enum; i++) {
        const char *sep = i ? ", " : "";
        if (o + strlen(sep) + strlen(f->enum_values[i]) > MAX_ENUM_LIST) {
            memcpy(allowed + o, ", ...", 6);
            break;
        }
        o += (size_t)snprintf(allowed + o, sizeof(allowed) - o, "%s%s", sep, f->enum_values[i]);
    }
    REFUSE(c, "has value \"%.100s\", not one of the allowed values (%s)", value, allowed);
}

static int check_number(struct check *c, const struct schema_field *f, const json_t *v)
{
    if (f->kind == KIND_FLOAT) {
        if (!json_is_number(v))
            REFUSE(c, "must be %s", kind_text(f->kind));
        double d = json_number_value(v);
        if (f->has_range && (d < f->low || d > f->high))
            REFUSE(c, "is %g, outside the allowed values %g-%g", d, f->low, f->high);
        return 0;
    }
    if (!json_is_integer(v))
        REFUSE(c, "must be %s", kind_text(f->kind));
    json_int_t i = json_integer_value(v);
    bool fits = true;
    switch (f->kind) {
    case KIND_INT32:
        fits = i >= INT32_MIN && i <= INT32_MAX;
        break;
    case KIND_UINT32:
        fits = i >= 0 && i <= (json_int_t)UINT32_MAX;
        break;
    case KIND_UINT64:
        fits = i >= 0;
        break;
    default:
        break;
    }
    if (!fits)
        REFUSE(c, "is %" JSON_INTEGER_FORMAT ", which is not %s of its size", i,
               kind_text(f->kind));
    if (f->has_range && ((double)i < f->low || (double)i > f->high))
        REFUSE(c, "is %" JSON_INTEGER_FORMAT ", outside the allowed values %.0f-%.0f", i, f->low,
               f->high);
    return 0;
}

/* One value of field f (a list's element when f->list). */
static int check_value(struct check *c, const struct schema_field *f, const json_t *v, int depth)
{
    switch (f->kind) {
    case KIND_STRING:
        if (!json_is_string(v))
            REFUSE(c, "must be %s", kind_text(f->kind));
        return f->n_enum && !f->enum_truncated ? check_enum(c, f, json_string_value(v)) : 0;
    case KIND_BOOL:
        if (!json_is_boolean(v))
            REFUSE(c, "must be %s", kind_text(f->kind));
        return 0;
    case KIND_OBJECT:
        if (!json_is_object(v))
            REFUSE(c, "must be an object (%s)", f->object->name);
        return check_object(c, f->object, v, depth + 1);
    default:
        return check_number(c, f, v);
    }
}

static int check_field(struct check *c, const struct schema_field *f, const json_t *v, int depth)
{
    if (!f->list)
        return check_value(c, f, v, depth);
    if (!json_is_array(v))
        REFUSE(c, "must be a list");
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        size_t mark = path_push(c, NULL, i, true);
        int rc = check_value(c, f, e, depth);
        if (rc)
            return rc;
        c->path[mark] = '\0';
    }
    return 0;
}

static int check_object(struct check *c, const struct schema_type *t, const json_t *obj,
                        int depth)
{
    if (depth > MAX_DEPTH)
        REFUSE(c, "is nested too deeply");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        const struct schema_field *f = NULL;
        size_t mark = path_push(c, key, 0, false);
        HASH_FIND_STR(t->fields, key, f);
        if (!f)
            REFUSE(c, "is not in the %s model", t->name);
        int rc = check_field(c, f, v, depth);
        if (rc)
            return rc;
        c->path[mark] = '\0';
    }
    return 0;
}

const char *avisim_schema_type_name(const struct avisim_schema *schema, const char *rest_type)
{
    const struct schema_type *t = NULL;
    if (!schema || !rest_type)
        return NULL;
    HASH_FIND(hh_rest, schema->by_rest, rest_type, strlen(rest_type), t);
    return t ? t->name : NULL;
}

int avisim_schema_check(const struct avisim_schema *schema, const char *rest_type,
                        const json_t *body, char *err, size_t errlen)
{
    struct check c = {.what = rest_type, .err = err, .errlen = errlen};
    const struct schema_type *t = NULL;

    if (!schema)
        return 0;
    HASH_FIND(hh_rest, schema->by_rest, rest_type, strlen(rest_type), t);
    if (!t) {
        snprintf(err, errlen, "%s: no such type in the object model", rest_type);
        return 400;
    }
    if (!json_is_object(body)) {
        snprintf(err, errlen, "%s: body must be an object (%s)", rest_type, t->name);
        return 400;
    }
    return check_object(&c, t, body, 0);
}
