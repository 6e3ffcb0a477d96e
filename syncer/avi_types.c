#include "syncer/avi_types.h"

#include <string.h>

typedef struct {
    const char *type;
    int rank;
    bool has_created_by;
    const char *checksum_field; /* NULL: none in the model */
} avi_type_info;

/* See avi_types.h for the table as prose. Types the planner may emit beyond
 * the core set get the rank of what refers to them in AKO's graphs: string
 * groups are referenced by HTTP policy sets, datascripts by the VS, profiles
 * by pools. */
static const avi_type_info avi_types[] = {
    {"sslkeyandcertificate", 0, true, NULL},
    {"pkiprofile", 0, true, NULL},
    {"healthmonitor", 1, false, NULL},
    {"applicationpersistenceprofile", 1, false, NULL},
    {"pool", 2, true, "cloud_config_cksum"},
    {"poolgroup", 3, true, "cloud_config_cksum"},
    {"stringgroup", 3, false, NULL},
    {"httppolicyset", 4, true, "cloud_config_cksum"},
    {"l4policyset", 4, true, NULL},
    {"vsdatascriptset", 4, true, NULL},
    {"vsvip", 5, false, "vsvip_cloud_config_cksum"},
    {"virtualservice", 6, true, "cloud_config_cksum"},
};

/* Unknown types are treated as leaves: created early, deleted late; with
 * neither created_by nor checksum field, so only markers and fields tell. */
#define AVI_TYPE_RANK_UNKNOWN 1
#define AVI_TYPE_RANK_CHILD_VS 7

const char *const avi_type_owned[] = {
    "sslkeyandcertificate", "healthmonitor", "pool",  "poolgroup",
    "httppolicyset",        "l4policyset",   "vsvip", "virtualservice",
};
const size_t avi_type_owned_count = sizeof avi_type_owned / sizeof avi_type_owned[0];

static const avi_type_info *avi_type_find(const char *type)
{
    for (size_t i = 0; i < sizeof avi_types / sizeof avi_types[0]; i++)
        if (strcmp(avi_types[i].type, type) == 0)
            return &avi_types[i];
    return NULL;
}

int avi_type_rank(const char *type, const json_t *body)
{
    const avi_type_info *info = avi_type_find(type);
    if (info && strcmp(type, "virtualservice") == 0) {
        const json_t *parent = body ? json_object_get(body, "vh_parent_vs_ref") : NULL;
        if (json_is_string(parent) && json_string_length(parent) > 0)
            return AVI_TYPE_RANK_CHILD_VS;
    }
    return info ? info->rank : AVI_TYPE_RANK_UNKNOWN;
}

const char *avi_type_checksum_field(const char *type)
{
    const avi_type_info *info = avi_type_find(type);
    return info ? info->checksum_field : NULL;
}

bool avi_type_has_created_by(const char *type)
{
    const avi_type_info *info = avi_type_find(type);
    return info && info->has_created_by;
}

bool avi_type_found_by_name(const char *type)
{
    return !avi_type_has_created_by(type);
}

/* markers: [{key, values: [...]}, ...] has key with `value` among values. */
static bool has_marker(const json_t *object, const char *key, const char *value)
{
    size_t i, j;
    const json_t *marker, *v;
    json_array_foreach(json_object_get(object, "markers"), i, marker) {
        const json_t *k = json_object_get(marker, "key");
        if (!json_is_string(k) || strcmp(json_string_value(k), key) != 0)
            continue;
        json_array_foreach(json_object_get(marker, "values"), j, v)
            if (json_is_string(v) && strcmp(json_string_value(v), value) == 0)
                return true;
    }
    return false;
}

bool avi_type_is_ours(const char *type, const json_t *object, const avi_identity *id)
{
    const json_t *name = json_object_get(object, "name");
    if (!json_is_string(name) ||
        strncmp(json_string_value(name), id->name_prefix, strlen(id->name_prefix)) != 0)
        return false;
    if (!has_marker(object, "clustername", id->cluster_name))
        return false;
    if (!avi_type_has_created_by(type))
        return true;
    const json_t *by = json_object_get(object, "created_by");
    return json_is_string(by) && strcmp(json_string_value(by), id->created_by) == 0;
}

/* ---- change detection by fields --------------------------------------------- */

/* "/api/<type>/?name=<name>" or "/api/<type>?name=<name>" → type and name
 * spans; false for any other string. */
static bool ref_by_name(const char *s, const char **type, size_t *type_len, const char **name)
{
    if (strncmp(s, "/api/", 5) != 0)
        return false;
    const char *start = s + 5;
    const char *end = start + strcspn(start, "/?");
    const char *rest = *end == '/' ? end + 1 : end;
    if (end == start || strncmp(rest, "?name=", 6) != 0)
        return false;
    *type = start;
    *type_len = (size_t)(end - start);
    *name = rest + 6;
    return true;
}

/* Does the controller's ref `actual` ("https://host/api/<type>/<uuid>#<name>")
 * point at the object kavi's `desired` ref names? */
static bool ref_equal(const char *desired, const char *actual)
{
    const char *type, *name;
    size_t type_len;
    if (strcmp(desired, actual) == 0)
        return true;
    if (!ref_by_name(desired, &type, &type_len, &name))
        return false;
    const char *api = strstr(actual, "/api/");
    const char *hash = strchr(actual, '#');
    if (!api || !hash || strcmp(hash + 1, name) != 0)
        return false;
    api += 5;
    return strncmp(api, type, type_len) == 0 && api[type_len] == '/';
}

bool avi_type_holds(const json_t *desired, const json_t *actual)
{
    /* The controller leaves out empty lists (research avi_api.md §2.4). */
    if (json_is_array(desired) && json_array_size(desired) == 0 && !actual)
        return true;
    if (!desired || !actual)
        return false;
    if (json_is_object(desired)) {
        const char *key;
        const json_t *value;
        if (!json_is_object(actual))
            return false;
        json_object_foreach((json_t *)desired, key, value) {
            if (!avi_type_holds(value, json_object_get(actual, key)))
                return false;
        }
        return true;
    }
    if (json_is_array(desired)) {
        if (!json_is_array(actual) || json_array_size(desired) != json_array_size(actual))
            return false;
        for (size_t i = 0; i < json_array_size(desired); i++)
            if (!avi_type_holds(json_array_get(desired, i), json_array_get(actual, i)))
                return false;
        return true;
    }
    if (json_is_string(desired) && json_is_string(actual))
        return ref_equal(json_string_value(desired), json_string_value(actual));
    return json_equal(desired, actual);
}
