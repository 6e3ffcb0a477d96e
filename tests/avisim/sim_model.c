/*
 * Per-type defaults and validation, applied to every POST/PUT/PATCH body
 * before its references are resolved. The defaults are the ones the real
 * controller was observed to fill in (research notes §2.4); the checks are
 * the ones kavi's syncer can trip, each answered with 400 and a message that
 * names the offending field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return 400;                                                                                \
    } while (0)

static void set_default(json_t *obj, const char *key, json_t *value_take)
{
    if (!json_object_get(obj, key))
        json_object_set_new(obj, key, value_take);
    else
        json_decref(value_take);
}

static void set_default_ref(json_t *obj, const char *key, const struct avisim_obj *target)
{
    if (!target || json_object_get(obj, key))
        return;
    char *ref = avisim_strdupf("/api/%s/%s", avisim_type_info(target->type)->path, target->uuid);
    if (ref)
        json_object_set_new(obj, key, json_string(ref));
    free(ref);
}

static bool port_ok(const json_t *port)
{
    return json_is_integer(port) && json_integer_value(port) >= 1 &&
           json_integer_value(port) <= 65535;
}

static int prepare_pool(const struct avisim_store *st, json_t *body, char *err, size_t errlen)
{
    set_default_ref(body, "vrf_ref", st->global_vrf);
    set_default(body, "lb_algorithm", json_string("LB_ALGORITHM_LEAST_CONNECTIONS"));
    set_default(body, "enabled", json_true());
    json_t *servers = json_object_get(body, "servers");
    if (!servers)
        return 0;
    if (!json_is_array(servers))
        FAIL("servers: must be a list");
    size_t i;
    json_t *srv;
    json_array_foreach(servers, i, srv)
    {
        if (!json_is_object(srv))
            FAIL("servers[%zu]: must be an object", i);
        json_t *ip = json_object_get(srv, "ip");
        const char *addr = json_string_value(json_object_get(ip, "addr"));
        if (!addr || !*addr)
            FAIL("servers[%zu].ip.addr: This field is required.", i);
        if (!json_is_string(json_object_get(ip, "type")))
            FAIL("servers[%zu].ip.type: This field is required.", i);
        json_t *port = json_object_get(srv, "port");
        if (port && !port_ok(port))
            FAIL("servers[%zu].port: must be between 1 and 65535", i);
        set_default(srv, "ratio", json_integer(1));
        set_default(srv, "enabled", json_true());
        set_default(srv, "hostname", json_string(addr));
    }
    return 0;
}

static int prepare_vs(const struct avisim_store *st, json_t *body, char *err, size_t errlen)
{
    set_default_ref(body, "se_group_ref", st->default_group);
    set_default_ref(body, "vrf_context_ref", st->global_vrf);
    set_default(body, "enabled", json_true());
    set_default(body, "traffic_enabled", json_true());
    json_t *services = json_object_get(body, "services");
    if (!json_is_array(services) || json_array_size(services) == 0)
        FAIL("services: at least one service is required");
    size_t i;
    json_t *svc;
    json_array_foreach(services, i, svc)
    {
        if (!port_ok(json_object_get(svc, "port")))
            FAIL("services[%zu].port: must be between 1 and 65535", i);
    }
    return 0;
}

static int prepare_vsvip(const struct avisim_store *st, json_t *body, char *err, size_t errlen)
{
    set_default_ref(body, "vrf_context_ref", st->global_vrf);
    json_t *vips = json_object_get(body, "vip");
    if (!vips)
        return 0;
    if (!json_is_array(vips))
        FAIL("vip: must be a list");
    size_t i;
    json_t *vip;
    json_array_foreach(vips, i, vip)
    {
        if (!json_is_object(vip))
            FAIL("vip[%zu]: must be an object", i);
        json_t *id = json_object_get(vip, "vip_id");
        if (json_is_integer(id)) {
            char buf[32];
            snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
            json_object_set_new(vip, "vip_id", json_string(buf));
        } else if (id && !json_is_string(id)) {
            FAIL("vip[%zu].vip_id: must be a string", i);
        } else if (!id) {
            /* The controller numbers vips from "0". */
            char buf[32];
            snprintf(buf, sizeof(buf), "%zu", i);
            json_object_set_new(vip, "vip_id", json_string(buf));
        }
        set_default(vip, "enabled", json_true());
    }
    return 0;
}

static int check_rules(const json_t *body, const char *policy, char *err, size_t errlen)
{
    json_t *rules = json_object_get(json_object_get(body, policy), "rules");
    if (!rules)
        return 0;
    if (!json_is_array(rules))
        FAIL("%s.rules: must be a list", policy);
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        if (!json_is_string(json_object_get(rule, "name")))
            FAIL("%s.rules[%zu].name: This field is required.", policy, i);
        if (!json_is_integer(json_object_get(rule, "index")))
            FAIL("%s.rules[%zu].index: This field is required.", policy, i);
    }
    return 0;
}

int avisim_model_prepare(const struct avisim_store *st, int type, json_t *body, char *err,
                         size_t errlen)
{
    json_t *name = json_object_get(body, "name");
    if (!json_is_string(name) || json_string_length(name) == 0)
        FAIL("name: This field is required.");
    if (json_string_length(name) > AVISIM_MAX_NAME)
        FAIL("name: Ensure this field has no more than %d characters.", AVISIM_MAX_NAME);
    if (avisim_type_info(type)->cloud_scoped)
        set_default_ref(body, "cloud_ref", st->default_cloud);

    switch (type) {
    case AVISIM_T_POOL:
        return prepare_pool(st, body, err, errlen);
    case AVISIM_T_VIRTUALSERVICE:
        return prepare_vs(st, body, err, errlen);
    case AVISIM_T_VSVIP:
        return prepare_vsvip(st, body, err, errlen);
    case AVISIM_T_L4POLICYSET:
        return check_rules(body, "l4_connection_policy", err, errlen);
    case AVISIM_T_HTTPPOLICYSET: {
        static const char *const policies[] = {"http_request_policy", "http_response_policy",
                                               "http_security_policy"};
        for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
            int rc = check_rules(body, policies[i], err, errlen);
            if (rc)
                return rc;
        }
        return 0;
    }
    case AVISIM_T_HEALTHMONITOR:
        if (!json_is_string(json_object_get(body, "type")))
            FAIL("type: This field is required.");
        return 0;
    default:
        return 0;
    }
}
