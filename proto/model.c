#include "proto/model.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "proto/envelope.h"

#define MAX_OWNERS 1024
#define MAX_OBJECTS 4096

void pw_json(proto_writer *w, const json_t *value)
{
    const char *key;
    json_t *item;
    size_t index;

    switch (json_typeof(value)) {
    case JSON_OBJECT:
        pw_map(w, json_object_size(value));
        json_object_foreach((json_t *)value, key, item) {
            pw_str(w, key);
            pw_json(w, item);
        }
        break;
    case JSON_ARRAY:
        pw_array(w, json_array_size(value));
        json_array_foreach(value, index, item) pw_json(w, item);
        break;
    case JSON_STRING:
        pw_strn(w, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER:
        pw_int(w, json_integer_value(value));
        break;
    case JSON_REAL:
        if (!w->failed && msgpack_pack_double(&w->pk, json_real_value(value)) != 0)
            w->failed = KV_ERR_NOMEM;
        break;
    case JSON_TRUE:
        pw_bool(w, true);
        break;
    case JSON_FALSE:
        pw_bool(w, false);
        break;
    case JSON_NULL:
        pw_nil(w);
        break;
    }
}

static int json_from_msgpack_at(json_t **out, const msgpack_object *obj, int depth)
{
    json_t *value = NULL;
    *out = NULL;
    if (depth > PROTO_MAX_DEPTH)
        return KV_ERR_INVALID;
    switch (obj->type) {
    case MSGPACK_OBJECT_NIL:
        value = json_null();
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        value = json_boolean(obj->via.boolean);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (obj->via.u64 > (uint64_t)INT64_MAX)
            return KV_ERR_INVALID;
        value = json_integer((json_int_t)obj->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        value = json_integer((json_int_t)obj->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        value = json_real(obj->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        value = json_stringn(obj->via.str.ptr, obj->via.str.size);
        if (!value)
            return KV_ERR_INVALID; /* not UTF-8, or embedded NUL */
        break;
    case MSGPACK_OBJECT_ARRAY:
        value = json_array();
        for (uint32_t i = 0; value && i < obj->via.array.size; i++) {
            json_t *item;
            int rc = json_from_msgpack_at(&item, &obj->via.array.ptr[i], depth + 1);
            if (rc < 0) {
                json_decref(value);
                return rc;
            }
            json_array_append_new(value, item);
        }
        break;
    case MSGPACK_OBJECT_MAP:
        value = json_object();
        for (uint32_t i = 0; value && i < obj->via.map.size; i++) {
            const msgpack_object *k = &obj->via.map.ptr[i].key;
            json_t *item;
            if (k->type != MSGPACK_OBJECT_STR) {
                json_decref(value);
                return KV_ERR_INVALID;
            }
            int rc = json_from_msgpack_at(&item, &obj->via.map.ptr[i].val, depth + 1);
            if (rc < 0) {
                json_decref(value);
                return rc;
            }
            if (json_object_setn_new(value, k->via.str.ptr, k->via.str.size, item) != 0) {
                json_decref(value);
                return KV_ERR_INVALID;
            }
        }
        break;
    default:
        return KV_ERR_INVALID;
    }
    if (!value)
        return KV_ERR_NOMEM;
    *out = value;
    return KV_OK;
}

int proto_json_from_msgpack(json_t **out, const msgpack_object *obj)
{
    return json_from_msgpack_at(out, obj, 0);
}

int proto_model_encode(const proto_model *model, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_map(&w, 5);
    pw_str(&w, "v");
    pw_uint(&w, PROTO_VERSION);
    pw_str(&w, "tenant");
    pw_str(&w, model->tenant);
    pw_str(&w, "name");
    pw_str(&w, model->name);
    pw_str(&w, "owners");
    pw_array(&w, model->n_owners);
    for (size_t i = 0; i < model->n_owners; i++)
        pw_str(&w, model->owners[i]);
    pw_str(&w, "objects");
    pw_array(&w, model->n_objects);
    for (size_t i = 0; i < model->n_objects; i++) {
        const proto_avi_object *o = &model->objects[i];
        pw_map(&w, 4);
        pw_str(&w, "type");
        pw_str(&w, o->type);
        pw_str(&w, "name");
        pw_str(&w, o->name);
        pw_str(&w, "cksum");
        pw_str(&w, o->checksum);
        pw_str(&w, "body");
        pw_json(&w, o->body);
    }
    return proto_writer_finish(&w, out, out_len);
}

int proto_model_decode(proto_model **out, const void *data, size_t len)
{
    msgpack_unpacked up;
    proto_model *model = calloc(1, sizeof *model);
    const msgpack_object *owners, *objects;
    size_t n_owners = 0, n_objects = 0;
    uint64_t version = 0;
    int rc;

    *out = NULL;
    if (!model)
        return KV_ERR_NOMEM;
    msgpack_unpacked_init(&up);
    rc = proto_unpack(&up, data, len);
    rc = rc ?: pr_uint(&up.data, "v", true, &version);
    if (rc == 0 && version != PROTO_VERSION)
        rc = KV_ERR_VERSION;
    rc = rc ?: pr_str(&up.data, "tenant", true, &model->tenant);
    rc = rc ?: pr_str(&up.data, "name", true, &model->name);
    rc = rc ?: pr_array(&up.data, "owners", false, &owners, &n_owners);
    rc = rc ?: pr_array(&up.data, "objects", true, &objects, &n_objects);
    if (rc == 0 && (n_owners > MAX_OWNERS || n_objects > MAX_OBJECTS))
        rc = KV_ERR_INVALID;
    if (rc == 0 && n_owners) {
        model->owners = calloc(n_owners, sizeof *model->owners);
        rc = model->owners ? 0 : KV_ERR_NOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n_owners; i++) {
        model->n_owners = i + 1;
        rc = pr_str_of(&owners[i], &model->owners[i]);
    }
    if (rc == 0 && n_objects) {
        model->objects = calloc(n_objects, sizeof *model->objects);
        rc = model->objects ? 0 : KV_ERR_NOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n_objects; i++) {
        proto_avi_object *o = &model->objects[i];
        const msgpack_object *body = pr_get(&objects[i], "body");
        model->n_objects = i + 1;
        rc = pr_str(&objects[i], "type", true, &o->type);
        rc = rc ?: pr_str(&objects[i], "name", true, &o->name);
        rc = rc ?: pr_str(&objects[i], "cksum", true, &o->checksum);
        if (rc == 0 && (!body || body->type != MSGPACK_OBJECT_MAP))
            rc = KV_ERR_INVALID;
        rc = rc ?: proto_json_from_msgpack(&o->body, body);
    }
    msgpack_unpacked_destroy(&up);
    if (rc < 0) {
        proto_model_destroy(&model);
        return rc;
    }
    *out = model;
    return KV_OK;
}

void proto_model_destroy(proto_model **model_p)
{
    proto_model *model = *model_p;
    if (!model)
        return;
    for (size_t i = 0; i < model->n_owners; i++)
        free(model->owners[i]);
    for (size_t i = 0; i < model->n_objects; i++) {
        free(model->objects[i].type);
        free(model->objects[i].name);
        free(model->objects[i].checksum);
        json_decref(model->objects[i].body);
    }
    free(model->owners);
    free(model->objects);
    free(model->tenant);
    free(model->name);
    free(model);
    *model_p = NULL;
}

uint64_t proto_model_fingerprint(const char *key, const void *body, size_t len)
{
    /* The same digest the bus verifies snapshots with: one hash, one place. */
    return proto_entry_digest(key ? key : "", body, len);
}
