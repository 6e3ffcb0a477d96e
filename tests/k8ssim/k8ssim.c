/*
 * k8ssim: lifecycle, the object store and its history, selectors, faults and
 * the request log. HTTP lives in k8ssim_http.c, watch streams in
 * k8ssim_watch.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utlist.h>

#include "k8ssim_internal.h"

#define DEFAULT_HISTORY_LIMIT 1000
#define DEFAULT_BOOKMARK_INTERVAL_MS 1000

const struct k8ssim_resource k8ssim_resources[] = {
    {"", "v1", "nodes", "node", "Node", false, K8SSIM_CORE},
    {"", "v1", "services", "service", "Service", true, K8SSIM_CORE},
    {"", "v1", "namespaces", "namespace", "Namespace", false, K8SSIM_CORE},
    {"", "v1", "secrets", "secret", "Secret", true, K8SSIM_CORE},
    {"discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", true,
     K8SSIM_CORE},
    {"networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", true, K8SSIM_CORE},
    {"networking.k8s.io", "v1", "ingressclasses", "ingressclass", "IngressClass", false,
     K8SSIM_CORE},
    {"route.openshift.io", "v1", "routes", "route", "Route", true, K8SSIM_ROUTES},
    {"gateway.networking.k8s.io", "v1", "gatewayclasses", "gatewayclass", "GatewayClass", false,
     K8SSIM_GATEWAY},
    {"gateway.networking.k8s.io", "v1", "gateways", "gateway", "Gateway", true, K8SSIM_GATEWAY},
    {"gateway.networking.k8s.io", "v1", "httproutes", "httproute", "HTTPRoute", true,
     K8SSIM_GATEWAY},
};
const size_t k8ssim_resource_count = sizeof(k8ssim_resources) / sizeof(k8ssim_resources[0]);

/* ---- small helpers ------------------------------------------------------ */

char *k8ssim_strdupf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

int64_t k8ssim_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *k8ssim_object_key(int resource, const char *ns, const char *name)
{
    return k8ssim_strdupf("%02d/%s/%s", resource, ns ? ns : "", name);
}

const struct k8ssim_resource *k8ssim_resource_find(const char *group, const char *version,
                                                   const char *plural)
{
    for (size_t i = 0; i < k8ssim_resource_count; i++) {
        const struct k8ssim_resource *r = &k8ssim_resources[i];
        if (!strcmp(r->group, group) && !strcmp(r->version, version) && !strcmp(r->plural, plural))
            return r;
    }
    return NULL;
}

bool k8ssim_resource_served(const struct k8ssim *sim, const struct k8ssim_resource *res)
{
    switch (res->feature) {
    case K8SSIM_ROUTES:
        return sim->serve_routes;
    case K8SSIM_GATEWAY:
        return sim->serve_gateway_api;
    default:
        return true;
    }
}

/* The resource an object belongs to, from its apiVersion and kind. */
static int resource_of(const char *api_version, const char *kind)
{
    for (size_t i = 0; i < k8ssim_resource_count; i++) {
        const struct k8ssim_resource *r = &k8ssim_resources[i];
        char gv[128];
        if (*r->group)
            snprintf(gv, sizeof(gv), "%s/%s", r->group, r->version);
        else
            snprintf(gv, sizeof(gv), "%s", r->version);
        if (!strcmp(gv, api_version) && !strcmp(r->kind, kind))
            return (int)i;
    }
    return -1;
}

static int resource_of_kind(const char *kind)
{
    for (size_t i = 0; i < k8ssim_resource_count; i++)
        if (!strcmp(k8ssim_resources[i].kind, kind))
            return (int)i;
    return -1;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && size < (1 << 20) && fseek(f, 0, SEEK_SET) == 0) {
            data = malloc((size_t)size + 1);
            if (data && fread(data, 1, (size_t)size, f) == (size_t)size) {
                data[size] = '\0';
            } else {
                free(data);
                data = NULL;
            }
        }
    }
    fclose(f);
    return data;
}

/* ---- selectors ---------------------------------------------------------- */

void k8ssim_selector_free(struct k8ssim_selector *sel)
{
    for (size_t i = 0; i < sel->count; i++) {
        free(sel->terms[i].key);
        free(sel->terms[i].value);
    }
    free(sel->terms);
    sel->terms = NULL;
    sel->count = 0;
}

void k8ssim_filter_free(struct k8ssim_filter *filter)
{
    free(filter->ns);
    filter->ns = NULL;
    k8ssim_selector_free(&filter->fields);
    k8ssim_selector_free(&filter->labels);
}

static char *trimmed(const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return strndup(s, len);
}

/* Equality-based selectors only ("a=b,c!=d,e==f,g,!h"); set-based ones
 * ("in (...)") are refused with -EINVAL, which the caller answers 400. */
int k8ssim_selector_parse(struct k8ssim_selector *out, const char *text)
{
    memset(out, 0, sizeof(*out));
    if (!text || !*text)
        return 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        struct k8ssim_selector_term term = {0};
        const char *op = memchr(p, '=', len);
        if (memchr(p, '(', len)) {
            k8ssim_selector_free(out);
            return -EINVAL;
        }
        if (op) {
            size_t key_len = (size_t)(op - p);
            const char *value = op + 1;
            if (key_len && p[key_len - 1] == '!') {
                term.negate = true;
                key_len--;
            }
            if (*value == '=' && value < p + len)
                value++;
            term.key = trimmed(p, key_len);
            term.value = trimmed(value, (size_t)(p + len - value));
        } else {
            const char *k = p;
            size_t key_len = len;
            while (key_len && *k == ' ') {
                k++;
                key_len--;
            }
            if (key_len && *k == '!') {
                term.negate = true;
                k++;
                key_len--;
            }
            term.key = trimmed(k, key_len);
        }
        struct k8ssim_selector_term *grown =
            realloc(out->terms, (out->count + 1) * sizeof(*out->terms));
        if (!term.key || (op && !term.value) || !*term.key || !grown) {
            free(term.key);
            free(term.value);
            if (grown)
                out->terms = grown;
            k8ssim_selector_free(out);
            return grown ? -EINVAL : -ENOMEM;
        }
        out->terms = grown;
        out->terms[out->count++] = term;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* A field path such as "metadata.name" or "type" rendered as text. */
static const char *field_text(const json_t *object, const char *path, char *buf, size_t size)
{
    const json_t *v = object;
    char part[128];
    const char *p = path;
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len >= sizeof(part))
            return NULL;
        memcpy(part, p, len);
        part[len] = '\0';
        v = json_object_get(v, part);
        p = dot ? dot + 1 : p + len;
    }
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    if (json_is_integer(v)) {
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    return NULL;
}

static bool selector_match(const struct k8ssim_selector *sel, const json_t *object, bool labels)
{
    const json_t *label_map = json_object_get(json_object_get(object, "metadata"), "labels");
    for (size_t i = 0; i < sel->count; i++) {
        const struct k8ssim_selector_term *t = &sel->terms[i];
        char buf[32];
        const char *have;
        if (labels)
            have = json_string_value(json_object_get(label_map, t->key));
        else
            have = field_text(object, t->key, buf, sizeof(buf));
        bool ok;
        if (!t->value)
            ok = have != NULL;
        else
            ok = have ? !strcmp(have, t->value) : !labels && !*t->value;
        if (t->negate)
            ok = !ok;
        if (!ok)
            return false;
    }
    return true;
}

bool k8ssim_filter_match(const struct k8ssim_filter *filter, const json_t *object)
{
    if (!object)
        return false;
    if (filter->ns) {
        const char *ns =
            json_string_value(json_object_get(json_object_get(object, "metadata"), "namespace"));
        if (!ns || strcmp(ns, filter->ns))
            return false;
    }
    return selector_match(&filter->fields, object, false) &&
           selector_match(&filter->labels, object, true);
}

/* ---- store and history -------------------------------------------------- */

const struct k8ssim_event *k8ssim_history_at(const struct k8ssim *sim, size_t i)
{
    return &sim->history[(sim->history_head + i) % (size_t)sim->history_limit];
}

static void event_clear(struct k8ssim_event *ev)
{
    free(ev->key);
    json_decref(ev->object);
    json_decref(ev->previous);
    memset(ev, 0, sizeof(*ev));
}

static void history_forget_all_locked(struct k8ssim *sim)
{
    for (size_t i = 0; i < sim->history_len; i++)
        event_clear(&sim->history[(sim->history_head + i) % (size_t)sim->history_limit]);
    sim->history_head = 0;
    sim->history_len = 0;
}

/* Appends an event (taking key, object and previous), evicting the oldest
 * when the ring is full. */
static void history_push_locked(struct k8ssim *sim, struct k8ssim_event *ev)
{
    size_t limit = (size_t)sim->history_limit;
    if (sim->history_len == limit) {
        struct k8ssim_event *oldest = &sim->history[sim->history_head];
        sim->history_start_rv = oldest->rv;
        event_clear(oldest);
        sim->history_head = (sim->history_head + 1) % limit;
        sim->history_len--;
    }
    sim->history[(sim->history_head + sim->history_len) % limit] = *ev;
    sim->history_len++;
}

static void set_resource_version(json_t *object, long rv)
{
    char text[32];
    snprintf(text, sizeof(text), "%ld", rv);
    json_object_set_new(json_object_get(object, "metadata"), "resourceVersion",
                        json_string(text));
}

long k8ssim_store_put_locked(struct k8ssim *sim, int resource, json_t *object)
{
    json_t *meta = json_object_get(object, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    char *key = k8ssim_object_key(resource, ns, name);
    char *event_key = key ? strdup(key) : NULL;
    struct k8ssim_object *entry = NULL;
    if (!key || !event_key) {
        free(key);
        free(event_key);
        json_decref(object);
        return -ENOMEM;
    }
    HASH_FIND_STR(sim->objects, key, entry);
    if (!entry) {
        entry = calloc(1, sizeof(*entry));
        if (!entry) {
            free(key);
            free(event_key);
            json_decref(object);
            return -ENOMEM;
        }
        entry->key = key;
        entry->resource = resource;
        HASH_ADD_KEYPTR(hh, sim->objects, entry->key, strlen(entry->key), entry);
    } else {
        free(key);
    }
    long rv = ++sim->rv;
    set_resource_version(object, rv);
    struct k8ssim_event ev = {
        .rv = rv,
        .resource = resource,
        .type = entry->object ? "MODIFIED" : "ADDED",
        .key = event_key,
        .object = json_incref(object),
        .previous = entry->object, /* the store's reference moves to the history */
    };
    entry->object = object;
    history_push_locked(sim, &ev);
    k8ssim_watch_fan_out_locked(sim, k8ssim_history_at(sim, sim->history_len - 1));
    return rv;
}

static long store_delete_locked(struct k8ssim *sim, int resource, const char *key)
{
    struct k8ssim_object *entry = NULL;
    HASH_FIND_STR(sim->objects, key, entry);
    if (!entry)
        return -ENOENT;
    json_t *last = json_deep_copy(entry->object);
    char *event_key = strdup(key);
    if (!last || !event_key) {
        json_decref(last);
        free(event_key);
        return -ENOMEM;
    }
    long rv = ++sim->rv;
    set_resource_version(last, rv);
    struct k8ssim_event ev = {
        .rv = rv,
        .resource = resource,
        .type = "DELETED",
        .key = event_key,
        .object = last,
        .previous = entry->object,
    };
    HASH_DEL(sim->objects, entry);
    free(entry->key);
    free(entry);
    history_push_locked(sim, &ev);
    k8ssim_watch_fan_out_locked(sim, k8ssim_history_at(sim, sim->history_len - 1));
    return rv;
}

struct snapshot_entry {
    const char *key;
    json_t *object; /* borrowed; NULL: absent at the snapshot */
    UT_hash_handle hh;
};

static int compare_by_key(const void *a, const void *b)
{
    const struct k8ssim_item *x = a, *y = b;
    return strcmp(x->key, y->key);
}

static struct snapshot_entry *snapshot_entry(struct snapshot_entry **entries, const char *key)
{
    struct snapshot_entry *e = NULL;
    HASH_FIND_STR(*entries, key, e);
    if (e)
        return e;
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->key = key;
    HASH_ADD_KEYPTR(hh, *entries, e->key, strlen(e->key), e);
    return e;
}

/* The state at rv is the current state with every later write undone: for a
 * key written after rv, the earliest such event's `previous`. */
int k8ssim_snapshot_locked(struct k8ssim *sim, int resource, long rv,
                           const struct k8ssim_filter *filter, struct k8ssim_item **out,
                           size_t *count)
{
    struct snapshot_entry *entries = NULL, *e, *tmp;
    struct k8ssim_object *obj, *otmp;
    struct k8ssim_item *items = NULL;
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    *count = 0;
    if (rv < sim->history_start_rv || rv > sim->rv)
        return -ESTALE;
    HASH_ITER(hh, sim->objects, obj, otmp)
    {
        if (obj->resource != resource)
            continue;
        if (!(e = snapshot_entry(&entries, obj->key))) {
            rc = -ENOMEM;
            goto out_free_entries;
        }
        e->object = obj->object;
    }
    for (size_t i = sim->history_len; i-- > 0;) {
        const struct k8ssim_event *ev = k8ssim_history_at(sim, i);
        if (ev->rv <= rv)
            break;
        if (ev->resource != resource)
            continue;
        if (!(e = snapshot_entry(&entries, ev->key))) {
            rc = -ENOMEM;
            goto out_free_entries;
        }
        e->object = ev->previous;
    }
    items = calloc(HASH_COUNT(entries) + 1, sizeof(*items));
    if (!items) {
        rc = -ENOMEM;
        goto out_free_entries;
    }
    HASH_ITER(hh, entries, e, tmp)
    {
        if (e->object && k8ssim_filter_match(filter, e->object)) {
            items[n].key = e->key;
            items[n].object = e->object;
            n++;
        }
    }
    qsort(items, n, sizeof(*items), compare_by_key);
    *out = items;
    *count = n;
out_free_entries:
    HASH_ITER(hh, entries, e, tmp)
    {
        HASH_DEL(entries, e);
        free(e);
    }
    return rc;
}

/* ---- public API --------------------------------------------------------- */

int k8ssim_new(k8ssim_t **out, const k8ssim_options_t *opts)
{
    k8ssim_options_t defaults = {0};
    struct k8ssim *sim = NULL;
    pthread_condattr_t attr;
    int rc = -ENOMEM;

    *out = NULL;
    if (!opts)
        opts = &defaults;
    if (!opts->tls_cert_file != !opts->tls_key_file)
        return -EINVAL;
    if (opts->client_ca_file && !opts->tls_cert_file)
        return -EINVAL;
    sim = calloc(1, sizeof(*sim));
    if (!sim)
        return -ENOMEM;
    pthread_mutex_init(&sim->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&sim->wake, &attr);
    pthread_condattr_destroy(&attr);
    sim->history_limit = opts->history_limit > 0 ? opts->history_limit : DEFAULT_HISTORY_LIMIT;
    sim->bookmark_interval_ms =
        opts->bookmark_interval_ms > 0 ? opts->bookmark_interval_ms : DEFAULT_BOOKMARK_INTERVAL_MS;
    sim->serve_routes = opts->serve_routes;
    sim->retry_after_http_date = opts->retry_after_http_date;
    sim->serve_gateway_api = opts->serve_gateway_api;
    sim->history = calloc((size_t)sim->history_limit, sizeof(*sim->history));
    if (!sim->history)
        goto out_destroy;
    if (opts->token && !(sim->token = strdup(opts->token)))
        goto out_destroy;
    if (opts->tls_cert_file) {
        rc = -EIO;
        sim->tls = true;
        sim->tls_cert_pem = read_file(opts->tls_cert_file);
        sim->tls_key_pem = read_file(opts->tls_key_file);
        if (!sim->tls_cert_pem || !sim->tls_key_pem)
            goto out_destroy;
        if (opts->client_ca_file) {
            sim->client_ca = true;
            sim->client_ca_pem = read_file(opts->client_ca_file);
            if (!sim->client_ca_pem)
                goto out_destroy;
        }
    }
    rc = k8ssim_http_start(sim, opts->port);
    if (rc < 0)
        goto out_destroy;
    *out = sim;
    return 0;
out_destroy:
    k8ssim_destroy(&sim);
    return rc;
}

int k8ssim_port(const k8ssim_t *sim)
{
    return sim ? sim->port : -EINVAL;
}

long k8ssim_apply(k8ssim_t *sim, const char *object_json)
{
    json_error_t err;
    json_t *object = json_loads(object_json ? object_json : "", 0, &err);
    json_t *meta = json_object_get(object, "metadata");
    const char *api_version = json_string_value(json_object_get(object, "apiVersion"));
    const char *kind = json_string_value(json_object_get(object, "kind"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    int resource = api_version && kind ? resource_of(api_version, kind) : -1;
    if (!sim || !json_is_object(meta) || resource < 0 || !name || !*name) {
        json_decref(object);
        return -EINVAL;
    }
    if (k8ssim_resources[resource].namespaced && (!ns || !*ns)) {
        json_decref(object);
        return -EINVAL;
    }
    if (!k8ssim_resources[resource].namespaced)
        json_object_del(meta, "namespace");

    pthread_mutex_lock(&sim->lock);
    char *key = k8ssim_object_key(resource, json_string_value(json_object_get(meta, "namespace")),
                                  name);
    struct k8ssim_object *existing = NULL;
    if (key)
        HASH_FIND_STR(sim->objects, key, existing);
    free(key);
    if (!json_object_get(meta, "uid")) {
        json_t *old_uid =
            existing ? json_object_get(json_object_get(existing->object, "metadata"), "uid") : NULL;
        if (old_uid) {
            json_object_set(meta, "uid", old_uid);
        } else {
            unsigned long n = ++sim->uids;
            char uid[40];
            snprintf(uid, sizeof(uid), "6b8a5e1c-0000-4000-8000-%012lx", n);
            json_object_set_new(meta, "uid", json_string(uid));
        }
    }
    if (!json_object_get(meta, "creationTimestamp")) {
        json_t *old_ts = existing ? json_object_get(json_object_get(existing->object, "metadata"),
                                                    "creationTimestamp")
                                  : NULL;
        if (old_ts) {
            json_object_set(meta, "creationTimestamp", old_ts);
        } else {
            char ts[32];
            time_t now = time(NULL);
            struct tm tm;
            gmtime_r(&now, &tm);
            strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
            json_object_set_new(meta, "creationTimestamp", json_string(ts));
        }
    }
    long rv = k8ssim_store_put_locked(sim, resource, object);
    pthread_mutex_unlock(&sim->lock);
    return rv;
}

long k8ssim_delete(k8ssim_t *sim, const char *kind, const char *ns, const char *name)
{
    int resource = sim && kind && name ? resource_of_kind(kind) : -1;
    if (resource < 0)
        return -EINVAL;
    char *key = k8ssim_object_key(resource, k8ssim_resources[resource].namespaced ? ns : NULL,
                                  name);
    if (!key)
        return -ENOMEM;
    pthread_mutex_lock(&sim->lock);
    long rv = store_delete_locked(sim, resource, key);
    pthread_mutex_unlock(&sim->lock);
    free(key);
    return rv;
}

/* Compaction in etcd terms. The counter moves on by one so that every
 * resourceVersion and continue token handed out before is now too old, while
 * those handed out after are good. */
void k8ssim_expire_history(k8ssim_t *sim)
{
    if (!sim)
        return;
    pthread_mutex_lock(&sim->lock);
    history_forget_all_locked(sim);
    sim->rv++;
    sim->history_start_rv = sim->rv;
    pthread_mutex_unlock(&sim->lock);
}

void k8ssim_drop_watches(k8ssim_t *sim)
{
    if (!sim)
        return;
    pthread_mutex_lock(&sim->lock);
    k8ssim_watch_drop_all_locked(sim);
    pthread_cond_broadcast(&sim->wake);
    pthread_mutex_unlock(&sim->lock);
}

void k8ssim_serve_groups(k8ssim_t *sim, bool routes, bool gateway_api)
{
    if (!sim)
        return;
    sim->serve_routes = routes;
    sim->serve_gateway_api = gateway_api;
}

void k8ssim_end_watches_at_once(k8ssim_t *sim, bool on)
{
    if (!sim)
        return;
    pthread_mutex_lock(&sim->lock);
    sim->end_watches_at_once = on;
    pthread_mutex_unlock(&sim->lock);
}

void k8ssim_stall_watches(k8ssim_t *sim, bool stall)
{
    if (!sim)
        return;
    pthread_mutex_lock(&sim->lock);
    sim->stalled = stall;
    pthread_cond_broadcast(&sim->wake);
    pthread_mutex_unlock(&sim->lock);
}

void k8ssim_split_writes(k8ssim_t *sim, bool split)
{
    if (!sim)
        return;
    pthread_mutex_lock(&sim->lock);
    sim->split = split;
    pthread_mutex_unlock(&sim->lock);
}

void k8ssim_fail_next(k8ssim_t *sim, int status, int retry_after_s, int count)
{
    if (!sim)
        return;
    pthread_mutex_lock(&sim->lock);
    sim->fail_status = status;
    sim->fail_retry_after_s = retry_after_s;
    sim->fail_count = count > 0 ? count : 0;
    sim->fail_query[0] = '\0';
    pthread_mutex_unlock(&sim->lock);
}

void k8ssim_fail_matching(k8ssim_t *sim, const char *query_contains, int status, int count)
{
    if (!sim)
        return;
    pthread_mutex_lock(&sim->lock);
    sim->fail_status = status;
    sim->fail_retry_after_s = 0;
    sim->fail_count = count > 0 ? count : 0;
    snprintf(sim->fail_query, sizeof sim->fail_query, "%s", query_contains ? query_contains : "");
    pthread_mutex_unlock(&sim->lock);
}

void k8ssim_set_token(k8ssim_t *sim, const char *token)
{
    if (!sim)
        return;
    char *copy = token ? strdup(token) : NULL;
    pthread_mutex_lock(&sim->lock);
    free(sim->token);
    sim->token = copy;
    pthread_mutex_unlock(&sim->lock);
}

char *k8ssim_requests_json(k8ssim_t *sim)
{
    if (!sim)
        return NULL;
    json_t *list = json_array();
    pthread_mutex_lock(&sim->lock);
    for (size_t i = 0; list && i < sim->request_count; i++) {
        const struct k8ssim_request *r = &sim->requests[i];
        json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:i}", "method", r->method, "path",
                                              r->path, "query", r->query, "auth", r->auth,
                                              "status", r->status));
    }
    pthread_mutex_unlock(&sim->lock);
    char *text = list ? json_dumps(list, JSON_COMPACT) : NULL;
    json_decref(list);
    return text;
}

size_t k8ssim_count_requests(k8ssim_t *sim, const char *path_prefix, const char *query_contains)
{
    size_t n = 0;
    if (!sim)
        return 0;
    pthread_mutex_lock(&sim->lock);
    for (size_t i = 0; i < sim->request_count; i++) {
        const struct k8ssim_request *r = &sim->requests[i];
        if (path_prefix && strncmp(r->path, path_prefix, strlen(path_prefix)))
            continue;
        if (query_contains && !strstr(r->query, query_contains))
            continue;
        n++;
    }
    pthread_mutex_unlock(&sim->lock);
    return n;
}

void k8ssim_destroy(k8ssim_t **psim)
{
    struct k8ssim *sim = psim ? *psim : NULL;
    struct k8ssim_object *obj, *tmp;
    if (!sim)
        return;
    /* Blocked watch writers see shutting_down and end, so that stopping the
     * daemon (which joins every connection thread) cannot hang. */
    pthread_mutex_lock(&sim->lock);
    sim->shutting_down = true;
    pthread_cond_broadcast(&sim->wake);
    pthread_mutex_unlock(&sim->lock);
    k8ssim_http_stop(sim);

    HASH_ITER(hh, sim->objects, obj, tmp)
    {
        HASH_DEL(sim->objects, obj);
        free(obj->key);
        json_decref(obj->object);
        free(obj);
    }
    if (sim->history)
        history_forget_all_locked(sim);
    free(sim->history);
    for (size_t i = 0; i < sim->request_count; i++) {
        free(sim->requests[i].method);
        free(sim->requests[i].path);
        free(sim->requests[i].query);
        free(sim->requests[i].auth);
    }
    free(sim->requests);
    free(sim->token);
    free(sim->tls_cert_pem);
    free(sim->tls_key_pem);
    free(sim->client_ca_pem);
    pthread_cond_destroy(&sim->wake);
    pthread_mutex_destroy(&sim->lock);
    free(sim);
    *psim = NULL;
}
