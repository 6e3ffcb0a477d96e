/*
 * The objects a fresh controller already has: tenant admin (uuid "admin",
 * as on a real controller) and the configured extra tenants, Default-Cloud,
 * VRFs global and management, Default-Group, the VIP network, and the
 * System-* application, network, SSL and analytics profiles and health
 * monitors AKO-like clients reference by name. Seeds get
 * readable uuids ("<type>-<slug of name>") so tests and logs are easy to
 * read, are visible from every tenant, cannot be deleted and are left out of
 * the state dump.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sim_internal.h"

#define MAX_TENANT_NAME 64

static int seed_add(struct avisim_store *st, int type, const char *uuid, json_t *body_take,
                    struct avisim_obj **out)
{
    char err[AVISIM_ERR_LEN];
    char slug[128];
    const char *name = json_string_value(json_object_get(body_take, "name"));

    if (!uuid) {
        size_t o = (size_t)snprintf(slug, sizeof(slug), "%s-", avisim_type_info(type)->path);
        for (const char *p = name; p && *p && o + 1 < sizeof(slug); p++)
            slug[o++] = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '-';
        slug[o] = '\0';
        uuid = slug;
    }
    /* A Tenant has no tenant_ref in the object model. */
    if (type != AVISIM_T_TENANT)
        json_object_set_new(body_take, "tenant_ref", json_string("/api/tenant/admin"));
    /* Seeds obey the object model too, so a client may echo them back. */
    if (avisim_schema_check(st->schema, avisim_type_info(type)->path, body_take, err,
                            sizeof(err)) ||
        avisim_model_prepare(st, type, body_take, err, sizeof(err))) {
        fprintf(stderr, "avisim: seed %s: %s\n", name ? name : "?", err);
        json_decref(body_take);
        return -EINVAL;
    }
    return avisim_store_put(st, NULL, type, st->admin, body_take, uuid, true, out);
}

static bool tenant_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > MAX_TENANT_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

static int seed_tenants(struct avisim_store *st, const char *csv)
{
    /* The admin tenant is its own tenant; a stub stands in while it is stored. */
    struct avisim_obj stub = {.uuid = (char *)"admin"};
    st->admin = &stub;
    int rc = avisim_store_put(st, NULL, AVISIM_T_TENANT, &stub,
                              json_pack("{s:s, s:b}", "name", "admin", "local", 1),
                              "admin", true, &st->admin);
    if (rc) {
        st->admin = NULL;
        return rc;
    }
    st->admin->tenant = st->admin;

    for (const char *p = csv; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[MAX_TENANT_NAME + 1];
        char uuid[MAX_TENANT_NAME + 8];
        if (len) {
            if (!tenant_name_ok(p, len))
                return -EINVAL;
            memcpy(name, p, len);
            name[len] = '\0';
            snprintf(uuid, sizeof(uuid), "tenant-%s", name);
            if (!avisim_store_tenant_by_name(st, name)) {
                rc = seed_add(st, AVISIM_T_TENANT, uuid,
                              json_pack("{s:s, s:b}", "name", name, "local", 1), NULL);
                if (rc)
                    return rc;
            }
        }
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

static int parse_range(const char *range, uint32_t *begin, uint32_t *end)
{
    char a[32], b[32];
    const char *dash = range ? strchr(range, '-') : NULL;
    if (!dash || (size_t)(dash - range) >= sizeof(a) || strlen(dash + 1) >= sizeof(b))
        return -EINVAL;
    memcpy(a, range, (size_t)(dash - range));
    a[dash - range] = '\0';
    strcpy(b, dash + 1);
    if (avisim_ipv4_parse(a, begin) || avisim_ipv4_parse(b, end) || *begin > *end)
        return -EINVAL;
    return 0;
}

/* The VIP network's subnet: the common prefix of the range ends, at most /24. */
static json_t *vip_network_body(const char *name, uint32_t begin, uint32_t end,
                                const struct avisim_obj *vrf)
{
    int mask = 0;
    while (mask < 24 && ((begin ^ end) & (0x80000000u >> mask)) == 0)
        mask++;
    uint32_t net = mask ? begin & (0xffffffffu << (32 - mask)) : 0;
    char nets[16], bs[16], es[16], vrf_ref[128];
    avisim_ipv4_format(net, nets);
    avisim_ipv4_format(begin, bs);
    avisim_ipv4_format(end, es);
    snprintf(vrf_ref, sizeof(vrf_ref), "/api/vrfcontext/%s", vrf->uuid);
    return json_pack("{s:s, s:s, s:b, s:[{s:{s:{s:s, s:s}, s:i}, s:[{s:{s:{s:s, s:s}, s:{s:s, "
                     "s:s}}, s:s}]}]}",
                     "name", name, "vrf_context_ref", vrf_ref, "dhcp_enabled", 0,
                     "configured_subnets", "prefix", "ip_addr", "addr", nets, "type", "V4",
                     "mask", mask, "static_ip_ranges", "range", "begin", "addr", bs, "type",
                     "V4", "end", "addr", es, "type", "V4", "type",
                     "STATIC_IPS_FOR_VIP_AND_SE");
}

int avisim_seed(struct avisim_store *st, const struct avisim_seed_opts *o)
{
    static const struct {
        int type;
        const char *name, *field, *value;
    } profiles[] = {
        {AVISIM_T_APPLICATIONPROFILE, "System-L4-Application", "type",
         "APPLICATION_PROFILE_TYPE_L4"},
        {AVISIM_T_APPLICATIONPROFILE, "System-HTTP", "type", "APPLICATION_PROFILE_TYPE_HTTP"},
        {AVISIM_T_APPLICATIONPROFILE, "System-Secure-HTTP", "type",
         "APPLICATION_PROFILE_TYPE_HTTP"},
        {AVISIM_T_APPLICATIONPROFILE, "System-SSL-Application", "type",
         "APPLICATION_PROFILE_TYPE_SSL"},
        {AVISIM_T_HEALTHMONITOR, "System-TCP", "type", "HEALTH_MONITOR_TCP"},
        {AVISIM_T_HEALTHMONITOR, "System-UDP", "type", "HEALTH_MONITOR_UDP"},
        {AVISIM_T_HEALTHMONITOR, "System-HTTP", "type", "HEALTH_MONITOR_HTTP"},
        {AVISIM_T_HEALTHMONITOR, "System-Ping", "type", "HEALTH_MONITOR_PING"},
        {AVISIM_T_HEALTHMONITOR, "System-SCTP", "type", "HEALTH_MONITOR_SCTP"},
        {AVISIM_T_SSLPROFILE, "System-Standard", "type", "SSL_PROFILE_TYPE_APPLICATION"},
        {AVISIM_T_SSLPROFILE, "System-Standard-Portal", "type", "SSL_PROFILE_TYPE_SYSTEM"},
        {AVISIM_T_ANALYTICSPROFILE, "System-Analytics-Profile", "description",
         "Default analytics profile"},
    };
    static const struct {
        const char *name, *protocol;
    } net_profiles[] = {
        {"System-TCP-Proxy", "PROTOCOL_TYPE_TCP_PROXY"},
        {"System-TCP-Fast-Path", "PROTOCOL_TYPE_TCP_FAST_PATH"},
        {"System-UDP-Fast-Path", "PROTOCOL_TYPE_UDP_FAST_PATH"},
        {"System-SCTP-Proxy", "PROTOCOL_TYPE_SCTP_PROXY"},
    };
    uint32_t begin, end;
    int rc;

    if (parse_range(o->vip_range, &begin, &end))
        return -EINVAL;
    rc = seed_tenants(st, o->tenants);
    if (rc)
        return rc;
    rc = seed_add(st, AVISIM_T_CLOUD, "cloud-default",
                  json_pack("{s:s, s:s}", "name", "Default-Cloud", "vtype", "CLOUD_NONE"),
                  &st->default_cloud);
    if (rc)
        return rc;
    rc = seed_add(st, AVISIM_T_VRFCONTEXT, NULL,
                  json_pack("{s:s, s:b}", "name", "global", "system_default", 1), &st->global_vrf);
    if (rc)
        return rc;
    rc = seed_add(st, AVISIM_T_VRFCONTEXT, NULL,
                  json_pack("{s:s, s:b}", "name", "management", "system_default", 1), NULL);
    if (rc)
        return rc;
    rc = seed_add(st, AVISIM_T_SERVICEENGINEGROUP, NULL,
                  json_pack("{s:s, s:s}", "name", "Default-Group", "ha_mode", "HA_MODE_SHARED"),
                  &st->default_group);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
        rc = seed_add(st, profiles[i].type, NULL,
                      json_pack("{s:s, s:s}", "name", profiles[i].name, profiles[i].field,
                                profiles[i].value),
                      NULL);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < sizeof(net_profiles) / sizeof(net_profiles[0]); i++) {
        rc = seed_add(st, AVISIM_T_NETWORKPROFILE, NULL,
                      json_pack("{s:s, s:{s:s}}", "name", net_profiles[i].name, "profile",
                                "type", net_profiles[i].protocol),
                      NULL);
        if (rc)
            return rc;
    }
    if (strlen(o->vip_network) == 0 || strlen(o->vip_network) > AVISIM_MAX_NAME)
        return -EINVAL;
    return seed_add(st, AVISIM_T_NETWORK, NULL,
                    vip_network_body(o->vip_network, begin, end, st->global_vrf),
                    &st->vip_network);
}
