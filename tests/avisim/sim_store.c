/*
 * The object store: every config object by type and uuid, a name index for
 * uniqueness and by-name references, and the reference graph.
 *
 * Invariants:
 *  - body references are canonical "/api/<type>/<uuid>" strings of objects
 *    that exist (references to types the simulator does not model are kept
 *    verbatim and are not part of the graph);
 *  - a->refs lists each distinct object a references (self excluded), and
 *    b->referrers counts a once per such edge, so an object with referrers
 *    cannot be deleted and pointers in refs never dangle;
 *  - name_key is "<type>|<tenant uuid>|<cloud uuid or empty>|<name>" and is
 *    unique, which is the controller's (Name, Tenant ref, Cloud ref) rule.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

static const struct avisim_type_info types[AVISIM_T_COUNT] = {
    [AVISIM_T_VIRTUALSERVICE] = {"virtualservice", "VirtualService", "Virtual service", true},
    [AVISIM_T_VSVIP] = {"vsvip", "VsVip", "Vs vip", true},
    [AVISIM_T_POOL] = {"pool", "Pool", "Pool", true},
    [AVISIM_T_POOLGROUP] = {"poolgroup", "PoolGroup", "Pool group", true},
    [AVISIM_T_HTTPPOLICYSET] = {"httppolicyset", "HTTPPolicySet", "Http policy set", false},
    [AVISIM_T_L4POLICYSET] = {"l4policyset", "L4PolicySet", "L4 policy set", false},
    [AVISIM_T_SSLKEYANDCERTIFICATE] = {"sslkeyandcertificate", "SSLKeyAndCertificate",
                                       "Ssl key and certificate", false},
    [AVISIM_T_HEALTHMONITOR] = {"healthmonitor", "HealthMonitor", "Health monitor", false},
    [AVISIM_T_APPLICATIONPROFILE] = {"applicationprofile", "ApplicationProfile",
                                     "Application profile", false},
    [AVISIM_T_NETWORKPROFILE] = {"networkprofile", "NetworkProfile", "Network profile", false},
    [AVISIM_T_CLOUD] = {"cloud", "Cloud", "Cloud", false},
    [AVISIM_T_SERVICEENGINEGROUP] = {"serviceenginegroup", "ServiceEngineGroup",
                                     "Service engine group", true},
    [AVISIM_T_TENANT] = {"tenant", "Tenant", "Tenant", false},
    [AVISIM_T_VRFCONTEXT] = {"vrfcontext", "VrfContext", "Vrf context", true},
    [AVISIM_T_NETWORK] = {"network", "Network", "Network", true},
    [AVISIM_T_SSLPROFILE] = {"sslprofile", "SSLProfile", "Ssl profile", false},
    [AVISIM_T_ANALYTICSPROFILE] = {"analyticsprofile", "AnalyticsProfile", "Analytics profile",
                                   false},
};

const struct avisim_type_info *avisim_type_info(int type)
{
    return &types[type];
}

int avisim_type_from_path(const char *seg, size_t len)
{
    for (int t = 0; t < AVISIM_T_COUNT; t++)
        if (strlen(types[t].path) == len && strncmp(types[t].path, seg, len) == 0)
            return t;
    return -1;
}

const char *avisim_obj_name(const struct avisim_obj *obj)
{
    const char *n = json_string_value(json_object_get(obj->body, "name"));
    return n ? n : "";
}

struct avisim_obj *avisim_store_get(const struct avisim_store *st, int type, const char *uuid)
{
    struct avisim_obj *o = NULL;
    if (type < 0 || type >= AVISIM_T_COUNT || !uuid)
        return NULL;
    HASH_FIND_STR(st->objs[type], uuid, o);
    return o;
}

struct avisim_obj *avisim_store_tenant_by_name(const struct avisim_store *st, const char *name)
{
    struct avisim_obj *o, *tmp;
    HASH_ITER(hh, st->objs[AVISIM_T_TENANT], o, tmp)
    {
        if (strcmp(avisim_obj_name(o), name) == 0)
            return o;
    }
    return NULL;
}

bool avisim_obj_visible(const struct avisim_obj *obj, const struct avisim_obj *tenant)
{
    return obj->seed || obj->tenant == tenant;
}

/* Splits a canonical "/api/<type>/<uuid>" into type and uuid. */
static int canonical_split(const char *s, int *type, const char **uuid)
{
    if (strncmp(s, "/api/", 5) != 0)
        return -EINVAL;
    const char *seg = s + 5;
    const char *slash = strchr(seg, '/');
    if (!slash || !slash[1] || strchr(slash + 1, '/'))
        return -EINVAL;
    *type = avisim_type_from_path(seg, (size_t)(slash - seg));
    *uuid = slash + 1;
    return *type < 0 ? -EINVAL : 0;
}

struct avisim_obj *avisim_store_ref_target(const struct avisim_store *st, const char *canonical)
{
    int type;
    const char *uuid;
    if (!canonical || canonical_split(canonical, &type, &uuid))
        return NULL;
    return avisim_store_get(st, type, uuid);
}

static const char *body_cloud_uuid(const json_t *body)
{
    int type;
    const char *uuid;
    const char *ref = json_string_value(json_object_get(body, "cloud_ref"));
    if (!ref || canonical_split(ref, &type, &uuid) || type != AVISIM_T_CLOUD)
        return "";
    return uuid;
}

static char *name_key(int type, const char *tenant_uuid, const char *cloud_uuid, const char *name)
{
    return avisim_strdupf("%d|%s|%s|%s", type, tenant_uuid,
                          types[type].cloud_scoped ? cloud_uuid : "", name);
}

static struct avisim_obj *find_by_key(const struct avisim_store *st, int type,
                                      const char *tenant_uuid, const char *cloud_uuid,
                                      const char *name)
{
    struct avisim_obj *o = NULL;
    char *key = name_key(type, tenant_uuid, cloud_uuid, name);
    if (!key)
        return NULL;
    HASH_FIND(hh_name, st->names, key, strlen(key), o);
    free(key);
    return o;
}

/* By-name lookup in one tenant: for cloud-scoped types the preferred cloud
 * first, then any cloud (there is normally only Default-Cloud). */
static struct avisim_obj *find_by_name_in(const struct avisim_store *st, int type,
                                          const struct avisim_obj *tenant, const char *cloud_uuid,
                                          const char *name)
{
    struct avisim_obj *o = find_by_key(st, type, tenant->uuid, cloud_uuid, name);
    if (o || !types[type].cloud_scoped)
        return o;
    struct avisim_obj *cloud, *tmp;
    HASH_ITER(hh, st->objs[AVISIM_T_CLOUD], cloud, tmp)
    {
        o = find_by_key(st, type, tenant->uuid, cloud->uuid, name);
        if (o)
            return o;
    }
    return NULL;
}

/* ---- reference resolution --------------------------------------------- */

struct resolve_ctx {
    struct avisim_store *st;
    struct avisim_obj *tenant;
    const char *cloud_uuid;
    char *err;
    size_t errlen;
};

/*
 * Accepted spellings (all seen in real client traffic): "/api/pool/<uuid>",
 * "/api/pool?name=x", "/api/pool/?name=x", and any of them behind
 * "https://host" with an optional "#name" hint, which is ignored.
 * Returns 1 for a reference to a type the simulator does not model (kept
 * verbatim), 0 with *found set, or 404.
 */
static int resolve_one(struct resolve_ctx *c, json_t *str)
{
    const char *s = json_string_value(str);
    char buf[AVISIM_MAX_REF + 1];
    char name[AVISIM_MAX_REF + 1];
    size_t len = strlen(s);

    if (len > AVISIM_MAX_REF) {
        snprintf(c->err, c->errlen, "Reference too long: %.64s...", s);
        return 400;
    }
    memcpy(buf, s, len + 1);
    char *hash = strchr(buf, '#');
    if (hash)
        *hash = '\0';
    char *p = buf;
    if (strncmp(p, "https://", 8) == 0 || strncmp(p, "http://", 7) == 0) {
        p = strchr(strstr(p, "://") + 3, '/');
        if (!p)
            return 1;
    }
    while (p[0] == '/' && p[1] == '/')
        p++;
    if (strncmp(p, "/api/", 5) != 0)
        return 1;
    char *seg = p + 5;
    size_t seglen = strcspn(seg, "/?");
    int type = avisim_type_from_path(seg, seglen);
    if (type < 0)
        return 1;

    struct avisim_obj *o = NULL;
    char *rest = seg + seglen;
    char *query = strchr(rest, '?');
    name[0] = '\0';
    if (query) {
        /* Find name=<value> among the query parameters. */
        *query = '\0';
        char *q = query + 1;
        while (q && *q) {
            char *amp = strchr(q, '&');
            size_t plen = amp ? (size_t)(amp - q) : strlen(q);
            if (plen > 5 && strncmp(q, "name=", 5) == 0) {
                if (avisim_url_decode(q + 5, plen - 5, name, sizeof(name), true))
                    name[0] = '\0';
                break;
            }
            q = amp ? amp + 1 : NULL;
        }
    }
    if (name[0]) {
        o = find_by_name_in(c->st, type, c->tenant, c->cloud_uuid, name);
        if (!o && c->tenant != c->st->admin)
            o = find_by_name_in(c->st, type, c->st->admin, c->cloud_uuid, name);
    } else if (rest[0] == '/' && rest[1]) {
        char *uuid = rest + 1;
        uuid[strcspn(uuid, "/")] = '\0';
        o = avisim_store_get(c->st, type, uuid);
        if (o && o->tenant != c->tenant && o->tenant != c->st->admin)
            o = NULL;
    }
    if (!o) {
        snprintf(c->err, c->errlen, "%s object not found!", types[type].model);
        return 404;
    }
    char *canon = avisim_strdupf("/api/%s/%s", types[type].path, o->uuid);
    if (!canon || json_string_set(str, canon)) {
        free(canon);
        snprintf(c->err, c->errlen, "out of memory");
        return 500;
    }
    free(canon);
    return 0;
}

typedef int (*ref_visit_fn)(void *ctx, json_t *str);

/* Calls fn on every string under a key ending "_ref", or in an array under a
 * key ending "_refs", at any depth. Stops at the first non-zero return. */
static int walk_refs(json_t *node, ref_visit_fn fn, void *ctx)
{
    if (json_is_object(node)) {
        const char *key;
        json_t *val;
        json_object_foreach(node, key, val)
        {
            int rc = 0;
            if (json_is_string(val) && avisim_ends_with(key, "_ref")) {
                rc = fn(ctx, val);
            } else if (json_is_array(val) && avisim_ends_with(key, "_refs")) {
                size_t i;
                json_t *el;
                json_array_foreach(val, i, el)
                {
                    rc = json_is_string(el) ? fn(ctx, el) : walk_refs(el, fn, ctx);
                    if (rc)
                        break;
                }
            } else if (json_is_object(val) || json_is_array(val)) {
                rc = walk_refs(val, fn, ctx);
            }
            if (rc)
                return rc;
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *el;
        json_array_foreach(node, i, el)
        {
            int rc = walk_refs(el, fn, ctx);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int resolve_visit(void *ctx, json_t *str)
{
    int rc = resolve_one(ctx, str);
    return rc == 1 ? 0 : rc;
}

int avisim_store_resolve_refs(struct avisim_store *st, struct avisim_obj *tenant, json_t *body,
                              char *err, size_t errlen)
{
    char cloud_uuid[256] = "";
    struct resolve_ctx c = {st, tenant, "", err, errlen};
    /* cloud_ref first: by-name references of cloud-scoped types prefer the
     * object's own cloud. */
    json_t *cloud = json_object_get(body, "cloud_ref");
    if (json_is_string(cloud)) {
        int rc = resolve_visit(&c, cloud);
        if (rc)
            return rc;
        /* Copy: the walk below rewrites cloud_ref's string, freeing its buffer. */
        snprintf(cloud_uuid, sizeof cloud_uuid, "%s", body_cloud_uuid(body));
        c.cloud_uuid = cloud_uuid;
    }
    return walk_refs(body, resolve_visit, &c);
}

int avisim_store_check_unique(struct avisim_store *st, int type, const struct avisim_obj *tenant,
                              const json_t *body, const struct avisim_obj *self, char *err,
                              size_t errlen)
{
    const char *name = json_string_value(json_object_get(body, "name"));
    struct avisim_obj *o = find_by_key(st, type, tenant->uuid, body_cloud_uuid(body), name ? name : "");
    if (!o || o == self)
        return 0;
    if (types[type].cloud_scoped)
        snprintf(err, errlen, "%s with this Name, Tenant ref and Cloud ref already exists.",
                 types[type].verbose);
    else
        snprintf(err, errlen, "%s with this Name and Tenant ref already exists.",
                 types[type].verbose);
    return 409;
}

/* ---- reference graph --------------------------------------------------- */

struct collect_ctx {
    const struct avisim_store *st;
    struct avisim_obj *self;
    struct avisim_obj **list;
    size_t n, cap;
    int rc;
};

static int collect_visit(void *ctx, json_t *str)
{
    struct collect_ctx *c = ctx;
    struct avisim_obj *t = avisim_store_ref_target(c->st, json_string_value(str));
    if (!t || t == c->self)
        return 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->list[i] == t)
            return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct avisim_obj **l = realloc(c->list, cap * sizeof(*l));
        if (!l) {
            c->rc = -ENOMEM;
            return -ENOMEM;
        }
        c->list = l;
        c->cap = cap;
    }
    c->list[c->n++] = t;
    return 0;
}

static void edges_drop(struct avisim_obj *obj)
{
    for (size_t i = 0; i < obj->n_refs; i++) {
        struct avisim_obj *t = obj->refs[i];
        struct avisim_referrer *r = NULL;
        HASH_FIND_PTR(t->referrers, &obj, r);
        if (r && --r->count == 0) {
            HASH_DEL(t->referrers, r);
            free(r);
        }
    }
    free(obj->refs);
    obj->refs = NULL;
    obj->n_refs = 0;
}

static int edges_build(struct avisim_store *st, struct avisim_obj *obj)
{
    struct collect_ctx c = {st, obj, NULL, 0, 0, 0};
    walk_refs(obj->body, collect_visit, &c);
    if (c.rc) {
        free(c.list);
        return c.rc;
    }
    obj->refs = c.list;
    obj->n_refs = c.n;
    for (size_t i = 0; i < c.n; i++) {
        struct avisim_obj *t = c.list[i];
        struct avisim_referrer *r = NULL;
        HASH_FIND_PTR(t->referrers, &obj, r);
        if (!r) {
            r = calloc(1, sizeof(*r));
            if (!r) {
                obj->n_refs = i;
                return -ENOMEM;
            }
            r->from = obj;
            HASH_ADD_PTR(t->referrers, from, r);
        }
        r->count++;
    }
    return 0;
}

static void stamp(struct avisim_store *st, json_t *body)
{
    int64_t now = avisim_now_us();
    /* Strictly increasing so that two writes in one microsecond still differ. */
    st->last_modified = now > st->last_modified ? now : st->last_modified + 1;
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", (long long)st->last_modified);
    json_object_set_new(body, "_last_modified", json_string(buf));
}

int avisim_store_put(struct avisim_store *st, struct avisim_obj *existing, int type,
                     struct avisim_obj *tenant, json_t *body_take, const char *uuid_hint,
                     bool seed, struct avisim_obj **out)
{
    int rc = -ENOMEM;
    struct avisim_obj *obj = existing;
    char *key = NULL;

    if (!body_take)
        return -ENOMEM;
    if (!obj) {
        char u[37];
        obj = calloc(1, sizeof(*obj));
        if (!obj)
            goto out_free_body;
        if (uuid_hint) {
            obj->uuid = strdup(uuid_hint);
        } else if (avisim_uuid4(u) == 0) {
            obj->uuid = avisim_strdupf("%s-%s", types[type].path, u);
        }
        if (!obj->uuid)
            goto out_free_obj;
        obj->type = type;
        obj->tenant = tenant;
        obj->seed = seed;
    }
    json_object_set_new(body_take, "uuid", json_string(obj->uuid));
    stamp(st, body_take);
    key = name_key(type, tenant->uuid, body_cloud_uuid(body_take),
                   json_string_value(json_object_get(body_take, "name")));
    if (!key)
        goto out_free_obj;

    if (existing) {
        edges_drop(obj);
        HASH_DELETE(hh_name, st->names, obj);
        free(obj->name_key);
        json_decref(obj->body);
    } else {
        HASH_ADD_KEYPTR(hh, st->objs[type], obj->uuid, strlen(obj->uuid), obj);
    }
    obj->body = body_take;
    obj->name_key = key;
    HASH_ADD_KEYPTR(hh_name, st->names, obj->name_key, strlen(obj->name_key), obj);
    rc = edges_build(st, obj);
    if (out)
        *out = obj;
    return rc;

out_free_obj:
    if (!existing) {
        free(obj->uuid);
        free(obj);
    }
out_free_body:
    json_decref(body_take);
    return rc;
}

static void obj_free(struct avisim_obj *obj)
{
    struct avisim_referrer *r, *tmp;
    HASH_ITER(hh, obj->referrers, r, tmp)
    {
        HASH_DEL(obj->referrers, r);
        free(r);
    }
    free(obj->refs);
    free(obj->name_key);
    free(obj->uuid);
    json_decref(obj->body);
    free(obj);
}

void avisim_store_remove(struct avisim_store *st, struct avisim_obj *obj)
{
    if (obj->type == AVISIM_T_VSVIP)
        avisim_vip_release(st, obj->body);
    edges_drop(obj);
    HASH_DELETE(hh_name, st->names, obj);
    HASH_DELETE(hh, st->objs[obj->type], obj);
    obj_free(obj);
}

void avisim_store_fini(struct avisim_store *st)
{
    /* Referrer pointers are only compared, never followed, so objects can be
     * freed in any order here. The name index goes first: clearing it
     * reads its head object. */
    HASH_CLEAR(hh_name, st->names);
    for (int t = 0; t < AVISIM_T_COUNT; t++) {
        struct avisim_obj *o, *tmp;
        HASH_ITER(hh, st->objs[t], o, tmp)
        {
            HASH_DELETE(hh, st->objs[t], o);
            obj_free(o);
        }
    }
    struct avisim_ip_use *ip, *itmp;
    HASH_ITER(hh, st->ips, ip, itmp)
    {
        HASH_DEL(st->ips, ip);
        free(ip);
    }
    memset(st, 0, sizeof(*st));
}

/* ---- rendering ---------------------------------------------------------- */

static json_t *render_ref(const struct avisim_store *st, const char *s, const char *base,
                          bool include_name)
{
    struct avisim_obj *t = avisim_store_ref_target(st, s);
    if (!t && strncmp(s, "/api/", 5) == 0) {
        /* A type the simulator does not model: still make it absolute. */
        char *abs = avisim_strdupf("%s%s", base, s);
        json_t *j = abs ? json_string(abs) : NULL;
        free(abs);
        return j;
    }
    if (!t)
        return json_string(s);
    char *out = include_name ? avisim_strdupf("%s%s#%s", base, s, avisim_obj_name(t))
                             : avisim_strdupf("%s%s", base, s);
    json_t *j = out ? json_string(out) : NULL;
    free(out);
    return j;
}

static json_t *render_node(const struct avisim_store *st, const json_t *node, const char *base,
                           bool include_name)
{
    if (json_is_object(node)) {
        json_t *o = json_object();
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)node, key, val)
        {
            json_t *copy;
            if (json_is_string(val) && avisim_ends_with(key, "_ref")) {
                copy = render_ref(st, json_string_value(val), base, include_name);
            } else if (json_is_array(val) && avisim_ends_with(key, "_refs")) {
                copy = json_array();
                size_t i;
                json_t *el;
                json_array_foreach(val, i, el)
                {
                    json_array_append_new(copy, json_is_string(el)
                                                    ? render_ref(st, json_string_value(el),
                                                                 base, include_name)
                                                    : render_node(st, el, base, include_name));
                }
            } else {
                copy = render_node(st, val, base, include_name);
            }
            json_object_set_new(o, key, copy);
        }
        return o;
    }
    if (json_is_array(node)) {
        json_t *a = json_array();
        size_t i;
        json_t *el;
        json_array_foreach(node, i, el)
        {
            json_array_append_new(a, render_node(st, el, base, include_name));
        }
        return a;
    }
    return json_deep_copy(node);
}

json_t *avisim_store_render(const struct avisim_store *st, const struct avisim_obj *obj,
                            const char *base, bool include_name)
{
    json_t *out = json_object();
    char *url = include_name ? avisim_strdupf("%s/api/%s/%s#%s", base, types[obj->type].path,
                                              obj->uuid, avisim_obj_name(obj))
                             : avisim_strdupf("%s/api/%s/%s", base, types[obj->type].path,
                                              obj->uuid);
    json_object_set_new(out, "url", json_string(url ? url : ""));
    free(url);
    json_t *rest = render_node(st, obj->body, base, include_name);
    json_object_update(out, rest);
    json_decref(rest);
    if (obj->type == AVISIM_T_SSLKEYANDCERTIFICATE) {
        /* The controller never hands private keys back. */
        json_object_del(out, "key");
        json_object_del(out, "key_passphrase");
    }
    return out;
}

static int referrer_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *avisim_store_referrer_list(const struct avisim_obj *obj)
{
    unsigned n = HASH_COUNT(obj->referrers);
    char **items = calloc(n ? n : 1, sizeof(*items));
    struct avisim_buf b;
    char *result = NULL;
    unsigned i = 0;

    avisim_buf_init(&b, AVISIM_MAX_BODY);
    if (!items)
        return NULL;
    struct avisim_referrer *r, *tmp;
    HASH_ITER(hh, obj->referrers, r, tmp)
    {
        items[i] = avisim_strdupf("%s %s", types[r->from->type].model, avisim_obj_name(r->from));
        if (!items[i])
            goto out_free_items;
        i++;
    }
    qsort(items, n, sizeof(*items), referrer_cmp);
    if (avisim_buf_add(&b, "[", 1))
        goto out_free_items;
    for (i = 0; i < n; i++)
        if (avisim_buf_addf(&b, "%s'%s'", i ? ", " : "", items[i]))
            goto out_free_items;
    if (avisim_buf_add(&b, "]", 1))
        goto out_free_items;
    result = b.data;
    b.data = NULL;
out_free_items:
    for (unsigned k = 0; k < n; k++)
        free(items[k]);
    free(items);
    avisim_buf_free(&b);
    return result;
}

static int by_name_cmp(const void *a, const void *b)
{
    const char *na = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *nb = json_string_value(json_object_get(*(json_t *const *)b, "name"));
    return strcmp(na ? na : "", nb ? nb : "");
}

json_t *avisim_store_state(const struct avisim_store *st, const char *base)
{
    json_t *state = json_object();
    for (int t = 0; t < AVISIM_T_COUNT; t++) {
        struct avisim_obj *o, *tmp;
        HASH_ITER(hh, st->objs[t], o, tmp)
        {
            if (o->seed)
                continue;
            const char *tenant = avisim_obj_name(o->tenant);
            json_t *per_tenant = json_object_get(state, tenant);
            if (!per_tenant) {
                per_tenant = json_object();
                json_object_set_new(state, tenant, per_tenant);
            }
            json_t *list = json_object_get(per_tenant, types[t].path);
            if (!list) {
                list = json_array();
                json_object_set_new(per_tenant, types[t].path, list);
            }
            json_array_append_new(list, avisim_store_render(st, o, base, true));
        }
    }
    /* Sort each list by name so dumps compare stably across runs. */
    const char *tk;
    json_t *per_tenant;
    json_object_foreach(state, tk, per_tenant)
    {
        const char *ty;
        json_t *list;
        json_object_foreach(per_tenant, ty, list)
        {
            size_t n = json_array_size(list);
            json_t **items = calloc(n, sizeof(*items));
            if (!items)
                continue;
            for (size_t i = 0; i < n; i++)
                items[i] = json_incref(json_array_get(list, i));
            qsort(items, n, sizeof(*items), by_name_cmp);
            json_array_clear(list);
            for (size_t i = 0; i < n; i++)
                json_array_append_new(list, items[i]);
            free(items);
        }
    }
    return state;
}
