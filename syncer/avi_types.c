#include "syncer/avi_types.h"

#include <string.h>

typedef struct {
    const char *type;
    int rank;
} avi_type_rank_entry;

/* Types the planner may emit beyond the core set get the rank of what
 * refers to them in AKO's graphs: string groups are referenced by HTTP
 * policy sets, datascripts by the VS, profiles by pools. */
static const avi_type_rank_entry avi_type_ranks[] = {
    {"sslkeyandcertificate", 0},
    {"pkiprofile", 0},
    {"healthmonitor", 1},
    {"applicationpersistenceprofile", 1},
    {"pool", 2},
    {"poolgroup", 3},
    {"stringgroup", 3},
    {"httppolicyset", 4},
    {"l4policyset", 4},
    {"vsdatascriptset", 4},
    {"vsvip", 5},
    {"virtualservice", 6},
};

/* Unknown types are treated as leaves: created early, deleted late. */
#define AVI_TYPE_RANK_UNKNOWN 1
#define AVI_TYPE_RANK_CHILD_VS 7

const char *const avi_type_owned[] = {
    "sslkeyandcertificate", "healthmonitor", "pool",  "poolgroup",
    "httppolicyset",        "l4policyset",   "vsvip", "virtualservice",
};
const size_t avi_type_owned_count = sizeof avi_type_owned / sizeof avi_type_owned[0];

int avi_type_rank(const char *type, const json_t *body)
{
    if (strcmp(type, "virtualservice") == 0) {
        const json_t *parent = body ? json_object_get(body, "vh_parent_vs_ref") : NULL;
        return json_is_string(parent) && json_string_length(parent) > 0 ? AVI_TYPE_RANK_CHILD_VS
                                                                       : 6;
    }
    for (size_t i = 0; i < sizeof avi_type_ranks / sizeof avi_type_ranks[0]; i++)
        if (strcmp(avi_type_ranks[i].type, type) == 0)
            return avi_type_ranks[i].rank;
    return AVI_TYPE_RANK_UNKNOWN;
}

const char *avi_type_checksum_field(const char *type)
{
    return strcmp(type, "vsvip") == 0 ? "vsvip_cloud_config_cksum" : "cloud_config_cksum";
}

bool avi_type_found_by_name(const char *type)
{
    return strcmp(type, "vsvip") == 0;
}
