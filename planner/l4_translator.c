/* l4_translator.c — see l4_translator.h. Bodies are built key by key in a
 * fixed order: jansson keeps insertion order, so the same input encodes to
 * the same bytes and the bus publishes nothing when nothing changed. */
#include "planner/l4_translator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "planner/model_builder.h"
#include "planner/pool_servers.h"

#define AKO_LB_CLASS "ako.vmware.com/avi-lb"
#define AVI_NAME_MAX 255 /* the controller refuses longer names (ako.md §2.1) */
#define NAME_BUF 512

typedef struct {
    const char *name;            /* in pool names: TCP, UDP, SCTP */
    const char *match;           /* L4 policy rule protocol */
    const char *health_monitor;  /* default monitor of the pool */
    const char *network_profile; /* VS network profile */
} l4_protocol;

/* AKO's choices (ako.md §2.2, §2.6). System-TCP-Proxy, not Fast-Path: kavi
 * assumes an Enterprise license, as AKO does when it can tell. */
static const l4_protocol l4_protocols[] = {
    {"TCP", "PROTOCOL_TCP", "System-TCP", "System-TCP-Proxy"},
    {"UDP", "PROTOCOL_UDP", "System-UDP", "System-UDP-Fast-Path"},
    {"SCTP", "PROTOCOL_SCTP", "System-SCTP", "System-SCTP-Proxy"},
};

static const l4_protocol *protocol_of(const char *name)
{
    for (size_t i = 0; i < sizeof l4_protocols / sizeof l4_protocols[0]; i++)
        if (name && strcmp(name, l4_protocols[i].name) == 0)
            return &l4_protocols[i];
    return NULL;
}

bool l4_service_is_ours(const proto_service *svc)
{
    return svc->type && strcmp(svc->type, "LoadBalancer") == 0 &&
           (!svc->load_balancer_class || strcmp(svc->load_balancer_class, AKO_LB_CLASS) == 0);
}

int l4_vs_name(char *buf, size_t buf_len, const kv_config *cfg, const char *ns, const char *name)
{
    int n = snprintf(buf, buf_len, "%s%s-%s", config_name_prefix(cfg), ns, name);
    return n < 0 || (size_t)n >= buf_len ? -1 : n;
}

/* Everything the object builders share for one Service. */
typedef struct {
    const kv_config *cfg;
    const store_t *store;
    const proto_service *svc;
    const char *tenant; /* the Avi tenant of every object */
    char vs_name[NAME_BUF];
    char hm_name[NAME_BUF]; /* "" when the Service gets no HTTP monitor */
    char service_metadata[NAME_BUF];
    l4_summary *summary;
} l4_context;

/* One RoleFilterMatchLabel {key, values: [value]}. */
static int append_marker(json_t *list, const char *key, const char *value)
{
    return json_array_append_new(list, json_pack("{s:s, s:[s]}", "key", key, "values", value));
}

/* AKO's markers (lib.GetAllMarkers): clustername first, then, on objects of
 * one Service, Namespace and ServiceName, then Port (pools) and Protocol
 * (policy sets), in the order of AKO's AviObjectMarkers. NULL skips one. */
static json_t *markers(const l4_context *ctx, bool of_service, const char *port,
                       const char *protocol)
{
    json_t *list = json_array();
    int rc = list ? append_marker(list, "clustername", ctx->cfg->cluster_name) : -1;
    if (rc == 0 && of_service)
        rc = append_marker(list, "Namespace", ctx->svc->namespace)
                 ?: append_marker(list, "ServiceName", ctx->svc->name);
    if (rc == 0 && port)
        rc = append_marker(list, "Port", port);
    if (rc == 0 && protocol)
        rc = append_marker(list, "Protocol", protocol);
    if (rc != 0) {
        json_decref(list);
        return NULL;
    }
    return list;
}

static json_t *ref_to(const char *type, const char *name)
{
    return json_sprintf("/api/%s/?name=%s", type, name);
}

/* Sets body[key] = value, stealing value; sticky failure in *failed. */
static void put(json_t *body, const char *key, json_t *value, bool *failed)
{
    if (json_object_set_new(body, key, value) != 0)
        *failed = true;
}

/* What makes an object kavi's, as AKO marks its own (DESIGN.md §2): the
 * created_by of types that have one, and the markers. */
static void put_ownership(json_t *body, const l4_context *ctx, bool has_created_by,
                          json_t *markers_list, bool *failed)
{
    if (has_created_by)
        put(body, "created_by", json_string(config_created_by(ctx->cfg)), failed);
    put(body, "markers", markers_list, failed);
}

static int pool_name(char *buf, size_t buf_len, const l4_context *ctx,
                     const proto_service_port *port)
{
    int n = snprintf(buf, buf_len, "%s-%s-%d", ctx->vs_name, port->protocol, (int)port->port);
    return n < 0 || (size_t)n >= buf_len || n > AVI_NAME_MAX ? -1 : n;
}

static json_t *health_monitor_body(const l4_context *ctx)
{
    bool failed = false;
    json_t *body = json_object();
    if (!body)
        return NULL;
    put(body, "name", json_string(ctx->hm_name), &failed);
    put(body, "type", json_string("HEALTH_MONITOR_HTTP"), &failed);
    put(body, "monitor_port", json_integer(ctx->svc->health_check_node_port), &failed);
    put(body, "send_interval", json_integer(5), &failed);
    put(body, "receive_timeout", json_integer(4), &failed);
    put(body, "successful_checks", json_integer(2), &failed);
    put(body, "failed_checks", json_integer(2), &failed);
    /* kube-proxy answers 200 on this port only on nodes with local ready
     * endpoints (k8s.md §4.2): the data plane follows the pods even before
     * the next model reaches the controller. */
    put(body, "http_monitor",
        json_pack("{s:s, s:[s]}", "http_request", "GET /healthz HTTP/1.0", "http_response_code",
                  "HTTP_2XX"),
        &failed);
    put(body, "tenant_ref", ref_to("tenant", ctx->tenant), &failed);
    /* A HealthMonitor has no created_by field: the markers tell it. */
    put_ownership(body, ctx, false, markers(ctx, true, NULL, NULL), &failed);
    if (failed) {
        json_decref(body);
        return NULL;
    }
    return body;
}

static json_t *server_json(const pool_server *server)
{
    const char *hostname = server->node_name ? server->node_name : server->address;
    json_t *uuid = json_sprintf("%s:%d", server->address, (int)server->port);
    return json_pack("{s:{s:s, s:s}, s:i, s:s, s:b, s:o}", "ip", "addr", server->address, "type",
                     server->ipv6 ? "V6" : "V4", "port", (int)server->port, "hostname", hostname,
                     "enabled", server->enabled, "external_uuid", uuid);
}

/* nodeNetworkList → one PlacementNetwork per network and CIDR, as AKO's
 * pool builder (ako.md §2.6): the network by uuid when given, else by
 * name. */
static json_t *placement_networks(const kv_config *cfg)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < cfg->n_node_networks; i++) {
        const config_node_network *net = &cfg->node_networks[i];
        for (size_t c = 0; c < net->n_cidrs; c++) {
            const config_cidr *cidr = &net->cidrs[c];
            json_t *ref = net->network_uuid && *net->network_uuid
                              ? json_sprintf("/api/network/%s", net->network_uuid)
                              : ref_to("network", net->network_name);
            json_t *entry =
                json_pack("{s:o, s:{s:{s:s, s:s}, s:i}}", "network_ref", ref, "subnet", "ip_addr",
                          "addr", cidr->addr, "type", cidr->ipv6 ? "V6" : "V4", "mask", cidr->mask);
            if (json_array_append_new(list, entry) != 0) {
                json_decref(list);
                return NULL;
            }
        }
    }
    return list;
}

static json_t *pool_body(const l4_context *ctx, const char *name, const proto_service_port *port,
                         const l4_protocol *protocol, int *rc)
{
    pool_server_list servers = {0};
    char port_text[16];
    bool failed = false;
    json_t *body = NULL, *list = NULL;

    *rc = pool_servers_compute(&servers, ctx->cfg, ctx->store, ctx->svc, port);
    if (*rc < 0)
        return NULL;
    list = json_array();
    for (size_t i = 0; list && i < servers.n; i++)
        if (json_array_append_new(list, server_json(&servers.items[i])) != 0)
            failed = true;
    ctx->summary->servers += servers.n;
    pool_server_list_clear(&servers);

    body = json_object();
    if (!body || !list || failed) {
        json_decref(body);
        json_decref(list);
        *rc = KV_ERR_NOMEM;
        return NULL;
    }
    put(body, "name", json_string(name), &failed);
    put(body, "tenant_ref", ref_to("tenant", ctx->tenant), &failed);
    put(body, "cloud_ref", ref_to("cloud", ctx->cfg->cloud_name), &failed);
    /* An empty list keeps the pool: the VS stays, and the listening port
     * goes down (remove_listening_port_on_vs_down) instead of the VIP. */
    put(body, "servers", list, &failed);
    put(body, "health_monitor_refs",
        json_pack("[o]", ref_to("healthmonitor",
                                ctx->hm_name[0] ? ctx->hm_name : protocol->health_monitor)),
        &failed);
    /* A disabled server (a draining node) keeps its open connections this
     * many minutes; without it the controller's default applies. */
    put(body, "graceful_disable_timeout", json_integer(ctx->cfg->pool_graceful_disable_timeout),
        &failed);
    if (ctx->cfg->n_node_networks > 0)
        put(body, "placement_networks", placement_networks(ctx->cfg), &failed);
    snprintf(port_text, sizeof port_text, "%d", (int)port->port);
    put_ownership(body, ctx, true, markers(ctx, true, port_text, NULL), &failed);
    put(body, "service_metadata", json_string(ctx->service_metadata), &failed);
    if (failed) {
        json_decref(body);
        *rc = KV_ERR_NOMEM;
        return NULL;
    }
    return body;
}

/* AKO's Protocol marker of a policy set: the ports' protocols, sorted,
 * without repeats, joined by commas ("TCP,UDP"). */
static void protocols_of(char *buf, size_t buf_len, const proto_service *svc)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t p = 0; p < sizeof l4_protocols / sizeof l4_protocols[0]; p++) {
        bool present = false;
        for (size_t i = 0; i < svc->n_ports && !present; i++)
            present = protocol_of(svc->ports[i].protocol) == &l4_protocols[p];
        if (!present)
            continue;
        int n = snprintf(buf + used, buf_len - used, "%s%s", used ? "," : "", l4_protocols[p].name);
        if (n > 0 && (size_t)n < buf_len - used)
            used += (size_t)n;
    }
}

static json_t *policy_set_body(const l4_context *ctx, char (*pool_names)[NAME_BUF])
{
    char protocols[32];
    bool failed = false;
    protocols_of(protocols, sizeof protocols, ctx->svc);
    json_t *body = json_object(), *rules = json_array();
    if (!body || !rules) {
        json_decref(body);
        json_decref(rules);
        return NULL;
    }
    for (size_t i = 0; i < ctx->svc->n_ports; i++) {
        const proto_service_port *port = &ctx->svc->ports[i];
        json_t *match = json_pack("{s:{s:s, s:[i]}, s:{s:s, s:s}}", "port", "match_criteria",
                                  "IS_IN", "ports", (int)port->port, "protocol", "match_criteria",
                                  "IS_IN", "protocol", protocol_of(port->protocol)->match);
        json_t *action =
            json_pack("{s:{s:s, s:o}}", "select_pool", "action_type", "L4_RULE_ACTION_SELECT_POOL",
                      "pool_ref", ref_to("pool", pool_names[i]));
        /* "o" steals match and action, also when packing fails. */
        json_t *rule = json_pack("{s:s, s:i, s:b, s:o, s:o}", "name", pool_names[i], "index",
                                 (int)i + 1, "enable", 1, "match", match, "action", action);
        if (json_array_append_new(rules, rule) != 0)
            failed = true;
    }
    put(body, "name", json_string(ctx->vs_name), &failed);
    put(body, "tenant_ref", ref_to("tenant", ctx->tenant), &failed);
    put_ownership(body, ctx, true, markers(ctx, true, NULL, protocols), &failed);
    put(body, "l4_connection_policy", json_pack("{s:o}", "rules", rules), &failed);
    if (failed) {
        json_decref(body);
        return NULL;
    }
    return body;
}

static json_t *vsvip_body(const l4_context *ctx)
{
    bool failed = false;
    json_t *body = json_object();
    json_t *vip = json_pack("{s:s, s:b}", "vip_id", "0", "auto_allocate_ip", 1);
    if (!body || !vip) {
        json_decref(body);
        json_decref(vip);
        return NULL;
    }
    /* A preferred VIP still asks IPAM (auto_allocate_ip), as AKO: the
     * controller takes that address or refuses it. IPv6 has its own field. */
    const char *preferred = ctx->svc->load_balancer_ip;
    if (preferred && strchr(preferred, ':')) {
        put(vip, "ip6_address", json_pack("{s:s, s:s}", "addr", preferred, "type", "V6"),
            &failed);
        put(vip, "auto_allocate_ip_type", json_string("V6_ONLY"), &failed);
    } else if (preferred) {
        put(vip, "ip_address", json_pack("{s:s, s:s}", "addr", preferred, "type", "V4"),
            &failed);
    }
    if (ctx->cfg->n_vip_networks > 0)
        put(vip, "ipam_network_subnet",
            json_pack("{s:o}", "network_ref",
                      ref_to("network", ctx->cfg->vip_networks[0].network_name)),
            &failed);
    put(body, "name", json_string(ctx->vs_name), &failed);
    put(body, "tenant_ref", ref_to("tenant", ctx->tenant), &failed);
    put(body, "cloud_ref", ref_to("cloud", ctx->cfg->cloud_name), &failed);
    put(body, "vip", json_pack("[o]", vip), &failed);
    /* A VsVip has no created_by field; AKO marks it with clustername only
     * (lib.GetMarkers). */
    put_ownership(body, ctx, false, markers(ctx, false, NULL, NULL), &failed);
    if (failed) {
        json_decref(body);
        return NULL;
    }
    return body;
}

/* The VS network profile: the one protocol's, or TCP's with a per-port
 * override for the other protocols (ako.md §2.2). */
static const l4_protocol *vs_protocol(const proto_service *svc)
{
    const l4_protocol *first = protocol_of(svc->ports[0].protocol);
    for (size_t i = 1; i < svc->n_ports; i++)
        if (protocol_of(svc->ports[i].protocol) != first)
            return &l4_protocols[0];
    return first;
}

static json_t *virtual_service_body(const l4_context *ctx)
{
    bool failed = false;
    const l4_protocol *vs_proto = vs_protocol(ctx->svc);
    json_t *body = json_object(), *services = json_array();
    if (!body || !services) {
        json_decref(body);
        json_decref(services);
        return NULL;
    }
    for (size_t i = 0; i < ctx->svc->n_ports; i++) {
        const proto_service_port *port = &ctx->svc->ports[i];
        const l4_protocol *protocol = protocol_of(port->protocol);
        json_t *service = json_pack("{s:i, s:i, s:b}", "port", (int)port->port, "port_range_end",
                                    (int)port->port, "enable_ssl", 0);
        if (service && protocol != vs_proto)
            put(service, "override_network_profile_ref",
                ref_to("networkprofile", protocol->network_profile), &failed);
        if (json_array_append_new(services, service) != 0)
            failed = true;
    }
    put(body, "name", json_string(ctx->vs_name), &failed);
    put(body, "tenant_ref", ref_to("tenant", ctx->tenant), &failed);
    put(body, "cloud_ref", ref_to("cloud", ctx->cfg->cloud_name), &failed);
    put(body, "se_group_ref", ref_to("serviceenginegroup", ctx->cfg->se_group_name), &failed);
    put(body, "vsvip_ref", ref_to("vsvip", ctx->vs_name), &failed);
    put(body, "application_profile_ref", ref_to("applicationprofile", "System-L4-Application"),
        &failed);
    put(body, "network_profile_ref", ref_to("networkprofile", vs_proto->network_profile), &failed);
    put(body, "services", services, &failed);
    put(body, "l4_policies",
        json_pack("[{s:i, s:o}]", "index", 1, "l4_policy_set_ref",
                  ref_to("l4policyset", ctx->vs_name)),
        &failed);
    put(body, "remove_listening_port_on_vs_down", json_true(), &failed);
    put(body, "traffic_enabled", json_true(), &failed);
    put_ownership(body, ctx, true, markers(ctx, true, NULL, NULL), &failed);
    put(body, "service_metadata", json_string(ctx->service_metadata), &failed);
    if (failed) {
        json_decref(body);
        return NULL;
    }
    return body;
}

/* Checks what would make the model wrong rather than merely empty, and
 * fills the names. Returns false with summary->note set. */
static bool context_init(l4_context *ctx, char (*pool_names)[NAME_BUF])
{
    const proto_service *svc = ctx->svc;
    l4_summary *summary = ctx->summary;
    int n = l4_vs_name(ctx->vs_name, sizeof ctx->vs_name, ctx->cfg, svc->namespace, svc->name);
    if (n < 0 || n > AVI_NAME_MAX) {
        snprintf(summary->note, sizeof summary->note,
                 "the virtual service name would pass %d characters; no model", AVI_NAME_MAX);
        return false;
    }
    for (size_t i = 0; i < svc->n_ports; i++) {
        if (!protocol_of(svc->ports[i].protocol)) {
            snprintf(summary->note, sizeof summary->note,
                     "port %d has protocol %.32s, which an L4 virtual service cannot serve; "
                     "no model",
                     (int)svc->ports[i].port,
                     svc->ports[i].protocol ? svc->ports[i].protocol : "?");
            return false;
        }
        if (pool_name(pool_names[i], NAME_BUF, ctx, &svc->ports[i]) < 0) {
            snprintf(summary->note, sizeof summary->note,
                     "the pool name of port %d would pass %d characters; no model",
                     (int)svc->ports[i].port, AVI_NAME_MAX);
            return false;
        }
    }
    ctx->hm_name[0] = '\0';
    n = 0;
    if (ctx->cfg->node_port_mode && svc->external_traffic_local && svc->health_check_node_port)
        n = snprintf(ctx->hm_name, sizeof ctx->hm_name, "%s-hc", ctx->vs_name);
    if (n < 0 || n > AVI_NAME_MAX) {
        snprintf(summary->note, sizeof summary->note,
                 "the health monitor name would pass %d characters; no model", AVI_NAME_MAX);
        return false;
    }
    return true;
}

/* AKO's service_metadata: a JSON string naming the Service. */
static int service_metadata_init(l4_context *ctx)
{
    char owner[NAME_BUF];
    json_t *meta = NULL;
    char *text = NULL;
    int rc = KV_ERR_NOMEM;
    if (store_key(owner, sizeof owner, ctx->svc->namespace, ctx->svc->name) < 0)
        return KV_ERR_TOO_LARGE;
    meta = json_pack("{s:[s]}", "namespace_svc_name", owner);
    text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    if (text && strlen(text) < sizeof ctx->service_metadata) {
        memcpy(ctx->service_metadata, text, strlen(text) + 1);
        rc = KV_OK;
    } else if (text) {
        rc = KV_ERR_TOO_LARGE;
    }
    free(text);
    json_decref(meta);
    return rc;
}

/* Notes a port that cannot get servers because of the Service itself. */
static void note_missing_node_ports(const l4_context *ctx)
{
    if (!ctx->cfg->node_port_mode)
        return;
    for (size_t i = 0; i < ctx->svc->n_ports; i++) {
        const proto_service_port *port = &ctx->svc->ports[i];
        if (port->node_port == 0) {
            snprintf(ctx->summary->note, sizeof ctx->summary->note,
                     "port %d/%.8s has no nodePort (allocateLoadBalancerNodePorts: false?); "
                     "its pool has no servers",
                     (int)port->port, port->protocol);
            return;
        }
    }
}

int l4_translate(proto_model **out, l4_summary *summary, const kv_config *cfg, const store_t *store,
                 const proto_service *svc, const char *tenant)
{
    char owner[NAME_BUF];
    char(*pool_names)[NAME_BUF] = NULL;
    proto_model *model = NULL;
    l4_context ctx = {
        .cfg = cfg, .store = store, .svc = svc, .tenant = tenant, .summary = summary};
    int rc;

    *out = NULL;
    memset(summary, 0, sizeof *summary);
    if (!l4_service_is_ours(svc) || svc->n_ports == 0)
        return KV_OK;
    pool_names = calloc(svc->n_ports, sizeof *pool_names);
    if (!pool_names)
        return KV_ERR_NOMEM;
    if (!context_init(&ctx, pool_names)) {
        rc = KV_OK;
        goto out_free_names;
    }
    rc = service_metadata_init(&ctx);
    if (rc == KV_OK && proto_k8s_key(owner, sizeof owner, "Service", svc->namespace, svc->name) < 0)
        rc = KV_ERR_TOO_LARGE;
    if (rc == KV_ERR_TOO_LARGE) {
        snprintf(summary->note, sizeof summary->note, "names too long; no model");
        rc = KV_OK;
        goto out_free_names;
    }
    rc = rc ?: model_builder_new(&model, tenant, ctx.vs_name, owner);
    if (rc < 0)
        goto out_free_names;
    note_missing_node_ports(&ctx);

    if (ctx.hm_name[0])
        rc = model_builder_add_take(model, "healthmonitor", ctx.hm_name, health_monitor_body(&ctx),
                                    NULL);
    for (size_t i = 0; rc == 0 && i < svc->n_ports; i++) {
        json_t *body = pool_body(&ctx, pool_names[i], &svc->ports[i],
                                 protocol_of(svc->ports[i].protocol), &rc);
        if (rc == 0)
            rc = model_builder_add_take(model, "pool", pool_names[i], body, "cloud_config_cksum");
        summary->pools += rc == 0;
    }
    rc = rc
             ?: model_builder_add_take(model, "l4policyset", ctx.vs_name,
                                       policy_set_body(&ctx, pool_names), NULL);
    rc = rc
             ?: model_builder_add_take(model, "vsvip", ctx.vs_name, vsvip_body(&ctx),
                                       "vsvip_cloud_config_cksum");
    rc = rc
             ?: model_builder_add_take(model, "virtualservice", ctx.vs_name,
                                       virtual_service_body(&ctx), "cloud_config_cksum");
    if (rc < 0) {
        proto_model_destroy(&model);
        goto out_free_names;
    }
    *out = model;

out_free_names:
    free(pool_names);
    return rc;
}
