#include "planner/model_builder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* Objects per model: an L4 VS has one pool per port (Kubernetes allows 100s
 * of ports at most) plus four objects; this only bounds a runaway. */
#define MODEL_MAX_OBJECTS 4096

int model_builder_new(proto_model **out, const char *tenant, const char *name, const char *owner)
{
    proto_model *model = calloc(1, sizeof *model);
    *out = NULL;
    if (!model)
        return KV_ERR_NOMEM;
    model->tenant = strdup(tenant);
    model->name = strdup(name);
    model->owners = calloc(1, sizeof *model->owners);
    if (model->owners) {
        model->owners[0] = strdup(owner);
        model->n_owners = 1; /* proto_model_destroy frees it, NULL or not */
    }
    if (!model->tenant || !model->name || !model->owners || !model->owners[0]) {
        proto_model_destroy(&model);
        return KV_ERR_NOMEM;
    }
    *out = model;
    return KV_OK;
}

uint32_t model_builder_fnv1a(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        hash ^= p[i];
        hash *= 16777619u;
    }
    return hash;
}

int model_builder_checksum(char **out, const json_t *body)
{
    char digits[16];
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    *out = NULL;
    if (!text)
        return KV_ERR_NOMEM;
    snprintf(digits, sizeof digits, "%u", (unsigned)model_builder_fnv1a(text, strlen(text)));
    free(text);
    *out = strdup(digits);
    return *out ? KV_OK : KV_ERR_NOMEM;
}

int model_builder_add_take(proto_model *model, const char *type, const char *name, json_t *body,
                           const char *checksum_field)
{
    char *checksum = NULL;
    proto_avi_object *objects;
    proto_avi_object *object;
    int rc;

    if (!body)
        return KV_ERR_NOMEM;
    if (model->n_objects >= MODEL_MAX_OBJECTS) {
        rc = KV_ERR_TOO_LARGE;
        goto out_drop_body;
    }
    if (checksum_field)
        json_object_del(body, checksum_field); /* never part of its own sum */
    rc = model_builder_checksum(&checksum, body);
    if (rc < 0)
        goto out_drop_body;
    if (checksum_field && json_object_set_new(body, checksum_field, json_string(checksum)) != 0) {
        rc = KV_ERR_NOMEM;
        goto out_free_checksum;
    }
    objects = realloc(model->objects, (model->n_objects + 1) * sizeof *objects);
    if (!objects) {
        rc = KV_ERR_NOMEM;
        goto out_free_checksum;
    }
    model->objects = objects;
    object = &objects[model->n_objects];
    memset(object, 0, sizeof *object);
    object->type = strdup(type);
    object->name = strdup(name);
    if (!object->type || !object->name) {
        free(object->type);
        free(object->name);
        rc = KV_ERR_NOMEM;
        goto out_free_checksum;
    }
    object->checksum = checksum;
    object->body = body;
    model->n_objects++;
    return KV_OK;

out_free_checksum:
    free(checksum);
out_drop_body:
    json_decref(body);
    return rc;
}
