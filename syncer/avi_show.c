/* avi_show.c — see avi_show.h. Reads every owned object once (paged GETs
 * with include_name, so each ref ends in "#<name>"), then walks from the
 * virtual services down. Refs to objects kavi does not own (System-TCP, a
 * user's pool) are fetched one by one when a name is not enough. */
#include "syncer/avi_show.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "common/error.h"
#include "common/log.h"
#include "syncer/avi_types.h"

#define SHOW_PATH_MAX 4096
#define SHOW_LINE_MAX 1024

typedef struct {
    char *uuid;
    json_t *object; /* owned reference */
    bool owned;     /* carries this cluster's identity (avi_type_is_ours) */
    bool used;      /* reached from a virtual service */
    UT_hash_handle hh;
} show_object;

/* The types the walk reads, in the order unreferenced ones are listed. */
static const char *const show_types[] = {
    "virtualservice", "vsvip",       "poolgroup",   "pool",
    "l4policyset",    "httppolicyset", "healthmonitor", "sslkeyandcertificate",
};
#define SHOW_N_TYPES (sizeof show_types / sizeof show_types[0])

typedef struct {
    avi_session_t *session;
    show_object *by_type[SHOW_N_TYPES];
} show_state;

typedef struct {
    show_state *st;
    size_t type;
    const kv_config *cfg;
} show_loader;

static int show_type_index(const char *type)
{
    for (size_t i = 0; i < SHOW_N_TYPES; i++)
        if (strcmp(show_types[i], type) == 0)
            return (int)i;
    return -1;
}

static const char *show_str(const json_t *object, const char *field)
{
    const json_t *v = json_object_get(object, field);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int show_add(show_state *st, size_t type, const json_t *object, bool owned,
                    show_object **out)
{
    const char *uuid = show_str(object, "uuid");
    if (out)
        *out = NULL;
    if (!uuid)
        return KV_OK;
    show_object *o = NULL;
    HASH_FIND_STR(st->by_type[type], uuid, o);
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o || !(o->uuid = strdup(uuid))) {
            free(o);
            return KV_ERR_NOMEM;
        }
        o->object = json_incref((json_t *)object);
        HASH_ADD_KEYPTR(hh, st->by_type[type], o->uuid, strlen(o->uuid), o);
    }
    o->owned = o->owned || owned;
    if (out)
        *out = o;
    return KV_OK;
}

static int show_take_listed(const json_t *object, void *payload)
{
    show_loader *ld = payload;
    /* The listing narrows by created_by or name prefix; the identity
     * decides (another cluster "a-" has names starting "a--" too). */
    avi_identity id = {ld->cfg->cluster_name, config_created_by(ld->cfg),
                       config_name_prefix(ld->cfg)};
    bool ours = avi_type_is_ours(show_types[ld->type], object, &id);
    return show_add(ld->st, ld->type, object, ours, NULL);
}

/* The uuid of a ref "https://h/api/pool/pool-1234#name" into buf. */
static const char *show_ref_uuid(const char *ref, char *buf, size_t len)
{
    const char *end = strchr(ref, '#');
    if (!end)
        end = ref + strlen(ref);
    const char *query = memchr(ref, '?', (size_t)(end - ref));
    if (query)
        end = query;
    while (end > ref && end[-1] == '/')
        end--;
    const char *start = end;
    while (start > ref && start[-1] != '/')
        start--;
    snprintf(buf, len, "%.*s", (int)(end - start), start);
    return buf;
}

/* The name a ref carries after '#', or its uuid. */
static const char *show_ref_name(const char *ref, char *buf, size_t len)
{
    const char *hash = strchr(ref, '#');
    if (hash && hash[1]) {
        snprintf(buf, len, "%s", hash + 1);
        return buf;
    }
    return show_ref_uuid(ref, buf, len);
}

/* The object a ref points to, fetched when it is not one of ours. NULL
 * when it cannot be read (a line then says so). */
static show_object *show_resolve(show_state *st, const char *type, const char *ref)
{
    char uuid[256];
    char path[SHOW_PATH_MAX];
    int t = show_type_index(type);
    if (t < 0 || !ref)
        return NULL;
    show_ref_uuid(ref, uuid, sizeof uuid);
    show_object *o = NULL;
    HASH_FIND_STR(st->by_type[t], uuid, o);
    if (o)
        return o;
    int n = snprintf(path, sizeof path, "/api/%s/%s?include_name=true", type, uuid);
    if (n < 0 || (size_t)n >= sizeof path)
        return NULL;
    json_t *object = NULL;
    long status;
    if (avi_session_request(st->session, "GET", path, NULL, &status, &object) < 0) {
        log_warn("show: %s", avi_session_error(st->session));
        json_decref(object);
        return NULL;
    }
    show_add(st, (size_t)t, object, false, &o);
    json_decref(object);
    return o;
}

static void show_mark_used(show_object *o)
{
    if (o)
        o->used = true;
}

/* ---- pools of a virtual service ------------------------------------------------ */

typedef struct {
    show_object *pool;
    const char *group; /* pool group name, NULL when referenced directly */
    json_int_t ratio;
} show_pool_use;

typedef struct {
    show_pool_use *items;
    size_t n;
    size_t cap;
} show_pool_list;

static void show_pool_add(show_pool_list *list, show_object *pool, const char *group,
                          json_int_t ratio)
{
    if (!pool)
        return;
    for (size_t i = 0; i < list->n; i++)
        if (list->items[i].pool == pool)
            return;
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 8;
        show_pool_use *grown = realloc(list->items, cap * sizeof *grown);
        if (!grown)
            return;
        list->items = grown;
        list->cap = cap;
    }
    pool->used = true;
    list->items[list->n++] = (show_pool_use){pool, group, ratio};
}

static void show_add_group(show_state *st, show_pool_list *list, const char *group_ref)
{
    show_object *group = show_resolve(st, "poolgroup", group_ref);
    if (!group)
        return;
    group->used = true;
    const char *group_name = show_str(group->object, "name");
    size_t index;
    const json_t *member;
    json_array_foreach(json_object_get(group->object, "members"), index, member) {
        const json_t *ratio = json_object_get(member, "ratio");
        show_pool_add(list, show_resolve(st, "pool", show_str(member, "pool_ref")), group_name,
                      json_is_integer(ratio) ? json_integer_value(ratio) : 1);
    }
}

/* pool_ref / pool_group_ref of any object (VS, rule action). */
static void show_add_targets(show_state *st, show_pool_list *list, const json_t *holder)
{
    const char *pool_ref = show_str(holder, "pool_ref");
    const char *group_ref = show_str(holder, "pool_group_ref");
    if (pool_ref)
        show_pool_add(list, show_resolve(st, "pool", pool_ref), NULL, 0);
    if (group_ref)
        show_add_group(st, list, group_ref);
}

static void show_collect_pools(show_state *st, const json_t *vs, show_pool_list *list)
{
    size_t i, j;
    const json_t *item, *rule;
    show_add_targets(st, list, vs);
    json_array_foreach(json_object_get(vs, "l4_policies"), i, item) {
        show_object *set = show_resolve(st, "l4policyset", show_str(item, "l4_policy_set_ref"));
        if (!set)
            continue;
        set->used = true;
        const json_t *rules =
            json_object_get(json_object_get(set->object, "l4_connection_policy"), "rules");
        json_array_foreach(rules, j, rule) {
            show_add_targets(st, list,
                             json_object_get(json_object_get(rule, "action"), "select_pool"));
        }
    }
    json_array_foreach(json_object_get(vs, "http_policies"), i, item) {
        show_object *set =
            show_resolve(st, "httppolicyset", show_str(item, "http_policy_set_ref"));
        if (!set)
            continue;
        set->used = true;
        const json_t *rules =
            json_object_get(json_object_get(set->object, "http_request_policy"), "rules");
        json_array_foreach(rules, j, rule) {
            show_add_targets(st, list, json_object_get(rule, "switching_action"));
        }
    }
}

/* ---- printing -------------------------------------------------------------------- */

/* "10.10.10.100, fd00::1" from a vsvip's vip[]. */
static void show_vips(const json_t *vsvip, char *buf, size_t len)
{
    size_t used = 0;
    size_t index;
    const json_t *vip;
    buf[0] = '\0';
    json_array_foreach(json_object_get(vsvip, "vip"), index, vip) {
        static const char *const families[] = {"ip_address", "ip6_address"};
        for (size_t f = 0; f < 2; f++) {
            const char *addr = show_str(json_object_get(vip, families[f]), "addr");
            if (!addr || used >= len)
                continue;
            int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", addr);
            if (n > 0)
                used += (size_t)n;
        }
    }
    if (!buf[0])
        snprintf(buf, len, "(none yet)");
}

static const char *show_protocol(const char *profile_ref)
{
    if (profile_ref && strstr(profile_ref, "UDP"))
        return "UDP";
    if (profile_ref && strstr(profile_ref, "SCTP"))
        return "SCTP";
    return "TCP";
}

/* "TCP/80, TCP/443 (SSL)" from services[]. */
static void show_services(const json_t *vs, char *buf, size_t len)
{
    size_t used = 0;
    size_t index;
    const json_t *svc;
    const char *vs_profile = show_str(vs, "network_profile_ref");
    buf[0] = '\0';
    json_array_foreach(json_object_get(vs, "services"), index, svc) {
        const char *profile = show_str(svc, "override_network_profile_ref");
        json_int_t port = json_integer_value(json_object_get(svc, "port"));
        json_int_t end = json_integer_value(json_object_get(svc, "port_range_end"));
        char range[32] = "";
        if (end > port)
            snprintf(range, sizeof range, "-%" JSON_INTEGER_FORMAT, end);
        if (used >= len)
            break;
        int n = snprintf(buf + used, len - used, "%s%s/%" JSON_INTEGER_FORMAT "%s%s",
                         used ? ", " : "", show_protocol(profile ? profile : vs_profile), port,
                         range, json_is_true(json_object_get(svc, "enable_ssl")) ? " (SSL)" : "");
        if (n > 0)
            used += (size_t)n;
    }
}

static void show_monitors(show_state *st, const json_t *pool, char *buf, size_t len)
{
    char name[256];
    size_t used = 0;
    size_t index;
    const json_t *ref;
    buf[0] = '\0';
    json_array_foreach(json_object_get(pool, "health_monitor_refs"), index, ref) {
        if (!json_is_string(ref) || used >= len)
            continue;
        int t = show_type_index("healthmonitor");
        char uuid[256];
        show_object *hm = NULL;
        show_ref_uuid(json_string_value(ref), uuid, sizeof uuid);
        HASH_FIND_STR(st->by_type[t], uuid, hm);
        show_mark_used(hm);
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
                         show_ref_name(json_string_value(ref), name, sizeof name));
        if (n > 0)
            used += (size_t)n;
    }
    if (!buf[0])
        snprintf(buf, len, "none");
}

typedef struct {
    int addr; /* "ip:port" column */
    int host; /* hostname column */
} show_widths;

/* "ip:port" of a server, the pool's default port when it has none. */
static const char *show_server_addr(const json_t *pool, const json_t *server, char *buf,
                                    size_t len)
{
    const char *ip = show_str(json_object_get(server, "ip"), "addr");
    json_int_t port = json_integer_value(json_object_get(server, "port"));
    if (!port)
        port = json_integer_value(json_object_get(pool, "default_server_port"));
    snprintf(buf, len, "%s:%" JSON_INTEGER_FORMAT, ip ? ip : "?", port);
    return buf;
}

/* Widens w to fit every server of pool, so columns line up across the
 * pools of one virtual service. */
static void show_measure_servers(const json_t *pool, show_widths *w)
{
    char addr[128];
    size_t index;
    const json_t *server;
    json_array_foreach(json_object_get(pool, "servers"), index, server) {
        const char *host = show_str(server, "hostname");
        int a = (int)strlen(show_server_addr(pool, server, addr, sizeof addr));
        int h = host ? (int)strlen(host) : 0;
        w->addr = a > w->addr ? a : w->addr;
        w->host = h > w->host ? h : w->host;
    }
}

static void show_servers(FILE *out, const json_t *pool, const show_widths *w)
{
    char addr[128];
    size_t index;
    const json_t *server;
    const json_t *servers = json_object_get(pool, "servers");
    if (json_array_size(servers) == 0) {
        fprintf(out, "    (no servers)\n");
        return;
    }
    json_array_foreach(servers, index, server) {
        const char *host = show_str(server, "hostname");
        fprintf(out, "    %-*s   %-*s   %s\n", w->addr,
                show_server_addr(pool, server, addr, sizeof addr), w->host, host ? host : "",
                json_is_false(json_object_get(server, "enabled")) ? "disabled" : "enabled");
    }
}

static int show_by_name(const void *a, const void *b)
{
    const show_object *x = *(show_object *const *)a;
    const show_object *y = *(show_object *const *)b;
    const char *nx = show_str(x->object, "name");
    const char *ny = show_str(y->object, "name");
    return strcmp(nx ? nx : "", ny ? ny : "");
}

/* The owned objects of one type, sorted by name; free() the array. */
static show_object **show_sorted(show_state *st, size_t type, size_t *n)
{
    size_t count = 0;
    for (show_object *o = st->by_type[type]; o; o = o->hh.next)
        count += o->owned;
    show_object **list = calloc(count ? count : 1, sizeof *list);
    *n = 0;
    if (!list)
        return NULL;
    for (show_object *o = st->by_type[type]; o; o = o->hh.next)
        if (o->owned)
            list[(*n)++] = o;
    qsort(list, *n, sizeof *list, show_by_name);
    return list;
}

/* The VIP column of a virtual service: its vsvip's addresses, or why not. */
static void show_vip_column(show_state *st, const json_t *vs, char *buf, size_t len)
{
    const char *vsvip_ref = show_str(vs, "vsvip_ref");
    show_object *vsvip = vsvip_ref ? show_resolve(st, "vsvip", vsvip_ref) : NULL;
    show_mark_used(vsvip);
    if (vsvip)
        show_vips(vsvip->object, buf, len);
    else
        snprintf(buf, len, "%s", vsvip_ref ? "(vsvip unreadable)" : "(none)");
}

static void show_virtual_service(FILE *out, show_state *st, show_object *vs, int name_width,
                                 int vip_width)
{
    char vips[SHOW_LINE_MAX];
    char services[SHOW_LINE_MAX];
    char monitors[SHOW_LINE_MAX];
    char ref_name[256];
    const json_t *body = vs->object;
    const char *name = show_str(body, "name");
    const char *vsvip_ref = show_str(body, "vsvip_ref");
    const char *parent_ref = show_str(body, "vh_parent_vs_ref");
    vs->used = true;

    show_services(body, services, sizeof services);
    if (vsvip_ref) {
        show_vip_column(st, body, vips, sizeof vips);
        fprintf(out, "Virtual service  %-*s   VIP %-*s   %s\n", name_width, name ? name : "?",
                vip_width, vips, services);
    } else if (parent_ref) {
        fprintf(out, "Virtual service  %-*s   child of %s\n", name_width, name ? name : "?",
                show_ref_name(parent_ref, ref_name, sizeof ref_name));
    } else {
        fprintf(out, "Virtual service  %-*s   no VIP   %s\n", name_width, name ? name : "?",
                services);
    }
    if (json_is_false(json_object_get(body, "enabled")))
        fprintf(out, "  (disabled)\n");

    show_pool_list pools = {0};
    show_collect_pools(st, body, &pools);
    int pool_width = 0;
    show_widths widths = {0, 0};
    for (size_t i = 0; i < pools.n; i++) {
        const char *p = show_str(pools.items[i].pool->object, "name");
        int w = p ? (int)strlen(p) : 1;
        pool_width = w > pool_width ? w : pool_width;
        show_measure_servers(pools.items[i].pool->object, &widths);
    }
    if (pools.n == 0)
        fprintf(out, "  (no pools)\n");
    for (size_t i = 0; i < pools.n; i++) {
        const json_t *pool = pools.items[i].pool->object;
        const char *pool_name = show_str(pool, "name");
        show_monitors(st, pool, monitors, sizeof monitors);
        if (pools.items[i].group)
            fprintf(out,
                    "  pool %-*s   health monitor %s   (group %s, ratio %" JSON_INTEGER_FORMAT
                    ")\n",
                    pool_width, pool_name ? pool_name : "?", monitors, pools.items[i].group,
                    pools.items[i].ratio);
        else
            fprintf(out, "  pool %-*s   health monitor %s\n", pool_width,
                    pool_name ? pool_name : "?", monitors);
        show_servers(out, pool, &widths);
    }
    free(pools.items);
}

static void show_free(show_state *st)
{
    for (size_t t = 0; t < SHOW_N_TYPES; t++) {
        show_object *o, *tmp;
        HASH_ITER(hh, st->by_type[t], o, tmp) {
            HASH_DEL(st->by_type[t], o);
            json_decref(o->object);
            free(o->uuid);
            free(o);
        }
    }
}

int avi_show_print(FILE *out, avi_session_t *session, const kv_config *cfg)
{
    show_state st = {.session = session};
    char value[1024];
    char path[SHOW_PATH_MAX];
    int rc = KV_OK;

    for (size_t t = 0; t < SHOW_N_TYPES; t++) {
        bool by_name = avi_type_found_by_name(show_types[t]);
        rc = avi_session_escape(value, sizeof value,
                                by_name ? config_name_prefix(cfg) : config_created_by(cfg));
        if (rc < 0)
            goto out_free_state;
        rc = snprintf(path, sizeof path, "/api/%s?%s=%s&include_name=true&page_size=200",
                      show_types[t], by_name ? "name.contains" : "created_by", value);
        if (rc < 0 || (size_t)rc >= sizeof path) {
            rc = KV_ERR_TOO_LARGE;
            goto out_free_state;
        }
        show_loader ld = {.st = &st, .type = t, .cfg = cfg};
        rc = avi_session_list(session, path, show_take_listed, &ld);
        if (rc < 0)
            goto out_free_state;
    }

    size_t n_vs = 0;
    show_object **vses = show_sorted(&st, 0, &n_vs);
    if (!vses) {
        rc = KV_ERR_NOMEM;
        goto out_free_state;
    }
    int name_width = 0;
    int vip_width = 0;
    for (size_t i = 0; i < n_vs; i++) {
        char vips[SHOW_LINE_MAX];
        const char *name = show_str(vses[i]->object, "name");
        int w = name ? (int)strlen(name) : 1;
        name_width = w > name_width ? w : name_width;
        if (show_str(vses[i]->object, "vsvip_ref")) {
            show_vip_column(&st, vses[i]->object, vips, sizeof vips);
            w = (int)strlen(vips);
            vip_width = w > vip_width ? w : vip_width;
        }
    }
    if (n_vs == 0)
        fprintf(out, "No virtual services owned by %s in tenant %s on %s.\n",
                config_created_by(cfg), avi_session_tenant(session), avi_session_base(session));
    for (size_t i = 0; i < n_vs; i++) {
        if (i > 0)
            fputc('\n', out);
        show_virtual_service(out, &st, vses[i], name_width, vip_width);
    }
    free(vses);

    /* Owned objects nothing above reached: leftovers, or parts of a model
     * the controller refused. */
    bool header = false;
    for (size_t t = 1; t < SHOW_N_TYPES; t++) {
        size_t n = 0;
        show_object **list = show_sorted(&st, t, &n);
        if (!list) {
            rc = KV_ERR_NOMEM;
            goto out_free_state;
        }
        for (size_t i = 0; i < n; i++) {
            if (list[i]->used)
                continue;
            const char *name = show_str(list[i]->object, "name");
            if (!header) {
                fprintf(out, "\nNot used by any virtual service:\n");
                header = true;
            }
            fprintf(out, "  %-20s %s\n", show_types[t], name ? name : "?");
        }
        free(list);
    }
    rc = KV_OK;

out_free_state:
    show_free(&st);
    return rc;
}
