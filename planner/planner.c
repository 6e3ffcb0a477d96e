/* planner.c — see planner.h. Invariants:
 *  - `owners` maps every model name this planner has published to the
 *    Service ("ns/name") that produced it and the tenant whose stream holds
 *    it; a second Service that would
 *    produce the same name ("a-b"/"c" and "a"/"b-c" both give "C a-b-c")
 *    waits as a contender and gets the name when the owner lets it go;
 *  - `notes` holds the last problem told about each Service, so a problem
 *    is logged once, not at every recompute;
 *  - `tenants` lists every stream "model.<tenant>" this planner publishes:
 *    the configured tenant's, and those of namespace annotations and of
 *    owners; "!complete" and "!eos" go on each. Each tenant's `published`
 *    mirrors the models its stream holds (every model put and delete goes
 *    through publish_model/delete_model), with their fingerprints summed
 *    in `models`/`digest`: what "!eos" says the stream holds at the end;
 *  - a flush under way (`flushing`) holds the dirty keys it took in
 *    `batch`, recomputes PLANNER_FLUSH_SLICE of them per call, and puts the
 *    markers only after the last: a syncer never sees "!complete" or
 *    "!eos" before every model they vouch for. A RESET drops the batch
 *    (the store it was taken from is gone). */
#include "planner/planner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "common/error.h"
#include "common/log.h"
#include "proto/status.h"
#include "proto/wire.h"
#include "planner/l4_translator.h"
#include "planner/pool_servers.h"
#include "proto/envelope.h"
#include "proto/k8s.h"
#include "proto/model.h"

#define KEY_MAX 512

typedef struct model_owner {
    char *vs_name;
    char *service_key;
    char *tenant; /* whose stream holds the model */
    char **contenders; /* Services waiting for this name, owned strings */
    size_t n_contenders;
    UT_hash_handle hh;
} model_owner;

/* A namespace with the annotation ako.vmware.com/tenant-name (AKO's
 * tenancy): its Services go to that tenant, the others to tenantName. */
typedef struct namespace_tenant {
    char *ns;
    char *tenant;
    UT_hash_handle hh;
} namespace_tenant;

/* One model on a tenant's stream: its key and proto_model_fingerprint. */
typedef struct published_model {
    char *key;
    uint64_t fingerprint;
    UT_hash_handle hh;
} published_model;

typedef struct tenant_stream {
    char *tenant;
    char *stream; /* "model.<tenant>" */
    published_model *published;
    uint32_t models; /* HASH_COUNT(published) */
    uint64_t digest; /* sum of their fingerprints */
    UT_hash_handle hh;
} tenant_stream;

typedef struct service_note {
    char *service_key;
    char *text;
    UT_hash_handle hh;
} service_note;

struct planner {
    const kv_config *cfg;
    planner_sink sink;
    store_t *store;
    char *stream; /* the configured tenant's */
    bool synced_node, synced_service, synced_slice, synced_namespace;
    bool consistent;
    bool need_full;    /* next flush recomputes everything and puts "!complete" */
    bool has_eos;      /* the watcher's "!eos" is in the view, */
    uint64_t eos_run;  /* naming this run */
    bool eos_changed;
    bool flushing;     /* a flush is under way: */
    bool batch_full;   /*   a full recompute, */
    char **batch;      /*   of these keys (owned), */
    size_t batch_n;
    size_t batch_next; /*   done up to here */
    unsigned long slices; /* flush calls that returned with keys left */
    bool has_pending;
    int64_t pending_since_ms;
    int64_t last_event_ms;
    model_owner *owners;
    service_note *notes;
    namespace_tenant *namespaces;
    tenant_stream *tenants;
};

/* ---- sink over the bus -------------------------------------------------- */

static int bus_sink_put(void *ctx, const char *stream, const char *key, const void *body,
                        size_t len)
{
    return bus_pub_put(ctx, stream, key, body, len);
}

static int bus_sink_remove(void *ctx, const char *stream, const char *key)
{
    return bus_pub_delete(ctx, stream, key);
}

static void bus_sink_foreach_key(void *ctx, const char *stream, bus_key_fn fn, void *payload)
{
    bus_pub_foreach_key(ctx, stream, fn, payload);
}

planner_sink planner_sink_for_bus(bus_pub_t *pub)
{
    return (planner_sink){.put = bus_sink_put,
                          .remove = bus_sink_remove,
                          .foreach_key = bus_sink_foreach_key,
                          .ctx = pub};
}

/* ---- tenants ------------------------------------------------------------ */

/* The stream of `tenant`, registered on first use; NULL when memory runs out. */
static const char *stream_of(planner_t *planner, const char *tenant)
{
    tenant_stream *entry = NULL;
    HASH_FIND_STR(planner->tenants, tenant, entry);
    if (entry)
        return entry->stream;
    size_t n = strlen(PROTO_STREAM_MODEL_PREFIX) + strlen(tenant) + 1;
    entry = calloc(1, sizeof *entry);
    char *name = strdup(tenant), *stream = malloc(n);
    if (!entry || !name || !stream) {
        free(entry);
        free(name);
        free(stream);
        return NULL;
    }
    snprintf(stream, n, "%s%s", PROTO_STREAM_MODEL_PREFIX, tenant);
    entry->tenant = name;
    entry->stream = stream;
    HASH_ADD_KEYPTR(hh, planner->tenants, entry->tenant, strlen(entry->tenant), entry);
    return entry->stream;
}

static tenant_stream *tenant_of_stream(const planner_t *planner, const char *stream)
{
    tenant_stream *entry, *tmp;
    HASH_ITER(hh, planner->tenants, entry, tmp) {
        if (strcmp(entry->stream, stream) == 0)
            return entry;
    }
    return NULL;
}

/* The stream now holds body under key (the sink said it changed). */
static void published_put(planner_t *planner, const char *stream, const char *key,
                          const void *body, size_t len)
{
    tenant_stream *tenant = tenant_of_stream(planner, stream);
    published_model *model = NULL;
    if (!tenant)
        return;
    HASH_FIND_STR(tenant->published, key, model);
    if (!model) {
        model = calloc(1, sizeof *model);
        char *copy = model ? strdup(key) : NULL;
        if (!copy) {
            free(model);
            log_error("planner: out of memory counting model %s; its end of stream will not "
                      "match",
                      key);
            return;
        }
        model->key = copy;
        HASH_ADD_KEYPTR(hh, tenant->published, model->key, strlen(model->key), model);
        tenant->models++;
    } else {
        tenant->digest -= model->fingerprint;
    }
    model->fingerprint = proto_model_fingerprint(key, body, len);
    tenant->digest += model->fingerprint;
}

static void published_free(tenant_stream *tenant, published_model *model)
{
    HASH_DEL(tenant->published, model);
    tenant->models--;
    tenant->digest -= model->fingerprint;
    free(model->key);
    free(model);
}

/* The stream no longer holds key. */
static void published_remove(planner_t *planner, const char *stream, const char *key)
{
    tenant_stream *tenant = tenant_of_stream(planner, stream);
    published_model *model = NULL;
    if (tenant)
        HASH_FIND_STR(tenant->published, key, model);
    if (model)
        published_free(tenant, model);
}

/* AKO's tenancy: the namespace's annotation, else the configured tenant. */
static const char *tenant_of(const planner_t *planner, const char *ns)
{
    namespace_tenant *entry = NULL;
    HASH_FIND_STR(planner->namespaces, ns, entry);
    return entry ? entry->tenant : planner->cfg->tenant_name;
}

static void namespace_tenant_free(planner_t *planner, namespace_tenant *entry)
{
    HASH_DEL(planner->namespaces, entry);
    free(entry->ns);
    free(entry->tenant);
    free(entry);
}

static void namespaces_clear(planner_t *planner)
{
    namespace_tenant *entry, *tmp;
    HASH_ITER(hh, planner->namespaces, entry, tmp) {
        namespace_tenant_free(planner, entry);
    }
}

/* Remembers the tenant a namespace names (NULL: none); true when that
 * moves its Services to another tenant. */
static bool namespace_tenant_set(planner_t *planner, const char *ns, const char *tenant)
{
    namespace_tenant *entry = NULL;
    HASH_FIND_STR(planner->namespaces, ns, entry);
    const char *before = entry ? entry->tenant : planner->cfg->tenant_name;
    const char *after = tenant && *tenant ? tenant : planner->cfg->tenant_name;
    bool moved = strcmp(before, after) != 0;
    if (entry)
        namespace_tenant_free(planner, entry);
    if (!tenant || !*tenant || strcmp(tenant, planner->cfg->tenant_name) == 0)
        return moved;
    entry = calloc(1, sizeof *entry);
    char *ns_copy = strdup(ns), *tenant_copy = strdup(tenant);
    if (!entry || !ns_copy || !tenant_copy || !stream_of(planner, tenant)) {
        free(entry);
        free(ns_copy);
        free(tenant_copy);
        log_error("planner: out of memory keeping the tenant of namespace %s", ns);
        return moved;
    }
    entry->ns = ns_copy;
    entry->tenant = tenant_copy;
    HASH_ADD_KEYPTR(hh, planner->namespaces, entry->ns, strlen(entry->ns), entry);
    return moved;
}

/* ---- lifetime ----------------------------------------------------------- */

int planner_new(planner_t **out, const kv_config *cfg, const planner_sink *sink)
{
    char stream[KEY_MAX];
    planner_t *planner = calloc(1, sizeof *planner);
    *out = NULL;
    if (!planner)
        return KV_ERR_NOMEM;
    planner->cfg = cfg;
    planner->sink = *sink;
    planner->need_full = true;
    int n = snprintf(stream, sizeof stream, "%s%s", PROTO_STREAM_MODEL_PREFIX, cfg->tenant_name);
    if (n < 0 || (size_t)n >= sizeof stream) {
        free(planner);
        return KV_ERR_TOO_LARGE;
    }
    planner->stream = strdup(stream);
    if (!planner->stream || store_new(&planner->store, cfg->node_port_mode) < 0 ||
        !stream_of(planner, cfg->tenant_name)) {
        planner_destroy(&planner);
        return KV_ERR_NOMEM;
    }
    if (cfg->delete_config)
        log_warn("planner: deleteConfig is true: no model is published, so every object kavi "
                 "created in tenant %s is deleted; set it to false to program the controller "
                 "again",
                 cfg->tenant_name);
    *out = planner;
    return KV_OK;
}

static void owner_free(model_owner *owner)
{
    for (size_t i = 0; i < owner->n_contenders; i++)
        free(owner->contenders[i]);
    free(owner->contenders);
    free(owner->vs_name);
    free(owner->service_key);
    free(owner->tenant);
    free(owner);
}

void planner_destroy(planner_t **planner_p)
{
    planner_t *planner = *planner_p;
    if (!planner)
        return;
    model_owner *owner, *owner_tmp;
    HASH_ITER(hh, planner->owners, owner, owner_tmp) {
        HASH_DEL(planner->owners, owner);
        owner_free(owner);
    }
    namespaces_clear(planner);
    tenant_stream *tenant, *tenant_tmp;
    HASH_ITER(hh, planner->tenants, tenant, tenant_tmp) {
        published_model *model, *model_tmp;
        HASH_ITER(hh, tenant->published, model, model_tmp) {
            published_free(tenant, model);
        }
        HASH_DEL(planner->tenants, tenant);
        free(tenant->tenant);
        free(tenant->stream);
        free(tenant);
    }
    service_note *note, *note_tmp;
    HASH_ITER(hh, planner->notes, note, note_tmp) {
        HASH_DEL(planner->notes, note);
        free(note->service_key);
        free(note->text);
        free(note);
    }
    store_free_keys(&planner->batch, planner->batch_n);
    store_destroy(&planner->store);
    free(planner->stream);
    free(planner);
    *planner_p = NULL;
}

bool planner_is_ready(const planner_t *planner)
{
    return planner->synced_node && planner->synced_service && planner->synced_slice &&
           planner->synced_namespace && planner->consistent;
}

const store_t *planner_store(const planner_t *planner) { return planner->store; }

const char *planner_stream(const planner_t *planner) { return planner->stream; }

/* ---- applying k8s events ------------------------------------------------ */

static void set_synced(planner_t *planner, const char *kind, bool synced)
{
    if (strcmp(kind, "Node") == 0)
        planner->synced_node = synced;
    else if (strcmp(kind, "Service") == 0)
        planner->synced_service = synced;
    else if (strcmp(kind, "EndpointSlice") == 0)
        planner->synced_slice = synced;
    else if (strcmp(kind, "Namespace") == 0)
        planner->synced_namespace = synced;
}

static void forget_eos(planner_t *planner)
{
    if (planner->has_eos)
        planner->eos_changed = true;
    planner->has_eos = false;
    planner->eos_run = 0;
}

static void remember_eos(planner_t *planner, const bus_event *ev)
{
    proto_eos eos;
    int rc = proto_eos_decode(&eos, ev->env.body, ev->env.body_len);
    if (rc < 0) {
        log_warn("planner: %s from the watcher: %s; ignored", PROTO_KEY_EOS, kv_strerror(rc));
        forget_eos(planner);
        return;
    }
    planner->has_eos = true;
    planner->eos_run = eos.run_id;
    planner->eos_changed = true;
}

/* Drops the flush under way; its keys are marked again by the next one. */
static void flush_abandon(planner_t *planner)
{
    store_free_keys(&planner->batch, planner->batch_n);
    planner->batch_n = 0;
    planner->batch_next = 0;
    planner->flushing = false;
    planner->batch_full = false;
}

static void apply_marker(planner_t *planner, const bus_event *ev)
{
    const char *key = ev->env.key;
    size_t prefix = strlen(PROTO_KEY_SYNCED_PREFIX);
    if (strncmp(key, PROTO_KEY_SYNCED_PREFIX, prefix) == 0)
        set_synced(planner, key + prefix, ev->type == BUS_PUT);
    else if (strcmp(key, PROTO_KEY_EOS) == 0 && ev->type == BUS_PUT)
        remember_eos(planner, ev);
    else if (strcmp(key, PROTO_KEY_EOS) == 0)
        forget_eos(planner);
}

/* The kinds the planner reads; other kinds on the stream are not its. */
static proto_k8s_kind kind_of_key(const char *key, const char **rest)
{
    static const struct {
        const char *prefix;
        proto_k8s_kind kind;
    } kinds[] = {
        {"Node/", PROTO_K8S_NODE},
        {"Service/", PROTO_K8S_SERVICE},
        {"EndpointSlice/", PROTO_K8S_ENDPOINT_SLICE},
        {"Namespace/", PROTO_K8S_NAMESPACE},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncmp(key, kinds[i].prefix, n) == 0) {
            *rest = key + n;
            return kinds[i].kind;
        }
    }
    return 0;
}

/* The key an object belongs under; a body that disagrees with its key
 * would leave a ghost that no DELETE can reach. */
static bool object_matches_key(const proto_k8s_object *obj, const char *key)
{
    char expected[KEY_MAX];
    int n = -1;
    switch (obj->kind) {
    case PROTO_K8S_NODE:
        n = proto_k8s_key(expected, sizeof expected, "Node", NULL, obj->node->name);
        break;
    case PROTO_K8S_SERVICE:
        n = proto_k8s_key(expected, sizeof expected, "Service", obj->service->namespace,
                          obj->service->name);
        break;
    case PROTO_K8S_ENDPOINT_SLICE:
        n = proto_k8s_key(expected, sizeof expected, "EndpointSlice", obj->slice->namespace,
                          obj->slice->name);
        break;
    case PROTO_K8S_NAMESPACE:
        n = proto_k8s_key(expected, sizeof expected, "Namespace", NULL, obj->namespace->name);
        break;
    default: /* not a kind the planner reads */
        break;
    }
    return n >= 0 && strcmp(expected, key) == 0;
}

static void apply_put(planner_t *planner, const bus_event *ev)
{
    const char *key = ev->env.key, *rest = NULL;
    proto_k8s_kind kind = kind_of_key(key, &rest);
    proto_k8s_object obj;
    int rc;

    if (!kind) {
        log_debug("planner: ignored %s (not a kind the planner reads)", key);
        return;
    }
    rc = proto_k8s_decode(&obj, ev->env.body, ev->env.body_len);
    if (rc < 0) {
        log_warn("planner: skipped %s: malformed body (%s)", key, kv_strerror(rc));
        proto_k8s_object_clear(&obj);
        return;
    }
    if (obj.kind != kind || !object_matches_key(&obj, key)) {
        log_warn("planner: skipped %s: its body describes another object", key);
        proto_k8s_object_clear(&obj);
        return;
    }
    switch (kind) {
    case PROTO_K8S_NODE: {
        /* Labels and annotations change often on big clusters; when no
         * pool can see the difference, nothing is recomputed. */
        const proto_node *old = store_node(planner->store, obj.node->name);
        if (old && pool_servers_node_equivalent(planner->cfg, old, obj.node))
            rc = store_put_node_take_unmarked(planner->store, &obj.node);
        else
            rc = store_put_node_take(planner->store, &obj.node);
        break;
    }
    case PROTO_K8S_SERVICE:
        rc = store_put_service_take(planner->store, &obj.service);
        break;
    case PROTO_K8S_ENDPOINT_SLICE:
        rc = store_put_slice_take(planner->store, &obj.slice);
        break;
    case PROTO_K8S_NAMESPACE:
        if (namespace_tenant_set(planner, obj.namespace->name, obj.namespace->tenant))
            rc = store_mark_namespace_dirty(planner->store, obj.namespace->name);
        break;
    default: /* not a kind the planner reads */
        break;
    }
    if (rc < 0)
        log_warn("planner: skipped %s: %s", key, kv_strerror(rc));
    proto_k8s_object_clear(&obj);
}

static void apply_delete(planner_t *planner, const char *key)
{
    const char *rest = NULL;
    switch (kind_of_key(key, &rest)) {
    case PROTO_K8S_NODE:
        store_delete_node(planner->store, rest);
        break;
    case PROTO_K8S_SERVICE:
        store_delete_service(planner->store, rest);
        break;
    case PROTO_K8S_ENDPOINT_SLICE:
        store_delete_slice(planner->store, rest);
        break;
    case PROTO_K8S_NAMESPACE:
        if (namespace_tenant_set(planner, rest, NULL))
            store_mark_namespace_dirty(planner->store, rest);
        break;
    default: /* not a kind the planner reads */
        break;
    }
}

static bool has_work(const planner_t *planner)
{
    return planner->need_full || planner->eos_changed || store_dirty_count(planner->store) > 0;
}

void planner_apply(planner_t *planner, const bus_event *ev, int64_t now_ms)
{
    switch (ev->type) {
    case BUS_RESET:
        /* Forget the inputs, keep the outputs: the models stay published
         * until a whole new view says otherwise. */
        log_info("planner: k8s stream reset; waiting for a full snapshot");
        store_clear(planner->store);
        planner->synced_node = planner->synced_service = planner->synced_slice = false;
        planner->synced_namespace = false;
        namespaces_clear(planner);
        planner->consistent = false;
        planner->need_full = true;
        flush_abandon(planner);
        forget_eos(planner);
        break;
    case BUS_CONSISTENT:
        planner->consistent = true;
        break;
    case BUS_PUT:
    case BUS_DELETE:
        if (!ev->env.key)
            break;
        if (ev->env.key[0] == '!')
            apply_marker(planner, ev);
        else if (ev->type == BUS_PUT)
            apply_put(planner, ev);
        else
            apply_delete(planner, ev->env.key);
        break;
    }
    planner->last_event_ms = now_ms;
    if (!planner->has_pending && has_work(planner)) {
        planner->has_pending = true;
        planner->pending_since_ms = now_ms;
    }
}

int64_t planner_timeout_ms(const planner_t *planner, int64_t now_ms)
{
    if (!planner->has_pending || !planner_is_ready(planner))
        return -1;
    if (planner->flushing)
        return 0; /* the rest of a sliced flush: at once */
    int64_t quiet = planner->last_event_ms + PLANNER_QUIET_MS;
    int64_t latest = planner->pending_since_ms + PLANNER_MAX_DELAY_MS;
    int64_t due = quiet < latest ? quiet : latest;
    return due > now_ms ? due - now_ms : 0;
}

/* ---- recomputing models ------------------------------------------------- */

/* Logs a Service's problem once; "" clears it. */
static void note_update(planner_t *planner, const char *service_key, const char *text)
{
    service_note *note = NULL;
    HASH_FIND_STR(planner->notes, service_key, note);
    if (note && strcmp(note->text, text) == 0)
        return;
    if (!text[0]) {
        if (note) {
            HASH_DEL(planner->notes, note);
            free(note->service_key);
            free(note->text);
            free(note);
        }
        return;
    }
    log_warn("planner: Service %s: %s", service_key, text);
    char *copy = strdup(text);
    if (!copy)
        return;
    if (!note) {
        note = calloc(1, sizeof *note);
        if (!note || !(note->service_key = strdup(service_key))) {
            free(note);
            free(copy);
            return;
        }
        HASH_ADD_KEYPTR(hh, planner->notes, note->service_key, strlen(note->service_key), note);
    }
    free(note->text);
    note->text = copy;
}

static void contender_add(model_owner *owner, const char *service_key)
{
    for (size_t i = 0; i < owner->n_contenders; i++)
        if (strcmp(owner->contenders[i], service_key) == 0)
            return;
    char **grown = realloc(owner->contenders, (owner->n_contenders + 1) * sizeof *grown);
    if (!grown)
        return;
    owner->contenders = grown;
    owner->contenders[owner->n_contenders] = strdup(service_key);
    if (owner->contenders[owner->n_contenders])
        owner->n_contenders++;
}

static void contender_remove(model_owner *owner, const char *service_key)
{
    for (size_t i = 0; i < owner->n_contenders; i++) {
        if (strcmp(owner->contenders[i], service_key) == 0) {
            free(owner->contenders[i]);
            owner->contenders[i] = owner->contenders[--owner->n_contenders];
            return;
        }
    }
}

static model_owner *owner_find(const planner_t *planner, const char *vs_name)
{
    model_owner *owner = NULL;
    HASH_FIND_STR(planner->owners, vs_name, owner);
    return owner;
}

static int owner_add(planner_t *planner, const char *vs_name, const char *service_key,
                     const char *tenant)
{
    model_owner *owner = calloc(1, sizeof *owner);
    if (!owner)
        return KV_ERR_NOMEM;
    owner->vs_name = strdup(vs_name);
    owner->service_key = strdup(service_key);
    owner->tenant = strdup(tenant);
    if (!owner->vs_name || !owner->service_key || !owner->tenant) {
        owner_free(owner);
        return KV_ERR_NOMEM;
    }
    HASH_ADD_KEYPTR(hh, planner->owners, owner->vs_name, strlen(owner->vs_name), owner);
    return KV_OK;
}

/* Publishes one model; a model too big for one bus message is refused for
 * its Service alone (named in a note) and never stops the others. */
/* Puts (error set) or removes (NULL) the "!refused/<model>" marker that
 * tells the syncer, and through it the Service's status, why a model is
 * not on the stream. */
static int mark_refused(planner_t *planner, const char *stream, const char *service_key,
                        const char *vs_name, const char *tenant, const char *error)
{
    char key[KEY_MAX + 16], object[KEY_MAX + 16];
    int n = snprintf(key, sizeof key, "%s%s", PROTO_KEY_REFUSED_PREFIX, vs_name);
    if (n < 0 || (size_t)n >= sizeof key)
        return KV_ERR_TOO_LARGE;
    if (!error)
        return planner->sink.remove(planner->sink.ctx, stream, key);
    snprintf(object, sizeof object, "Service/%s", service_key);
    proto_object_status st = {.object = object, .tenant = (char *)tenant, .error = (char *)error};
    void *body = NULL;
    size_t len = 0;
    int rc = proto_object_status_encode(&st, &body, &len);
    if (rc == KV_OK)
        rc = planner->sink.put(planner->sink.ctx, stream, key, body, len);
    free(body);
    return rc;
}

static int publish_model(planner_t *planner, const char *stream, const char *service_key,
                         const proto_model *model, const l4_summary *summary)
{
    void *body = NULL;
    size_t len = 0;
    int rc = proto_model_encode(model, &body, &len);
    if (rc < 0) {
        log_error("planner: model %s: cannot encode: %s", model->name, kv_strerror(rc));
        return 0;
    }
    rc = planner->sink.put(planner->sink.ctx, stream, model->name, body, len);
    if (rc == 1)
        published_put(planner, stream, model->name, body, len);
    free(body);
    if (rc == KV_ERR_TOO_LARGE) {
        char text[KEY_MAX + 160];
        snprintf(text, sizeof text,
                 "model %s is %zu bytes (%zu servers), past the bus's %u MiB message cap; "
                 "not published, the controller keeps what it had",
                 model->name, len, summary->servers, PROTO_MAX_MESSAGE >> 20);
        note_update(planner, service_key, text);
        rc = mark_refused(planner, stream, service_key, model->name, model->tenant, text);
        return rc < 0 ? rc : 0;
    }
    if (rc >= 0) {
        int cleared = mark_refused(planner, stream, service_key, model->name, model->tenant, NULL);
        if (cleared < 0)
            return cleared;
    }
    if (rc == 1)
        log_info("published model %s in tenant %s (%zu pools, %zu servers)", model->name,
                 model->tenant, summary->pools, summary->servers);
    return rc;
}

static int delete_model(planner_t *planner, const char *stream, const char *vs_name)
{
    int rc = mark_refused(planner, stream, NULL, vs_name, NULL, NULL);
    rc = rc < 0 ? rc : planner->sink.remove(planner->sink.ctx, stream, vs_name);
    if (rc == 1)
        published_remove(planner, stream, vs_name);
    if (rc == 1)
        log_info("deleted model %s from %s", vs_name, stream);
    return rc;
}

static int recompute(planner_t *planner, const char *service_key);

/* The owner of a model name produces no model any more. A contender takes
 * the name over in the same flush (its model replaces the old one, so a
 * syncer never sees the VS deleted in between); with none, the model goes. */
static int release_name(planner_t *planner, model_owner *owner)
{
    char vs_name[KEY_MAX];
    char **contenders = owner->contenders;
    size_t n_contenders = owner->n_contenders;
    const char *stream = stream_of(planner, owner->tenant);
    int rc = 0, changes = 0;

    if (!stream)
        return KV_ERR_NOMEM;
    snprintf(vs_name, sizeof vs_name, "%s", owner->vs_name);
    owner->contenders = NULL;
    owner->n_contenders = 0;
    HASH_DEL(planner->owners, owner);
    owner_free(owner);
    for (size_t i = 0; rc >= 0 && i < n_contenders; i++) {
        rc = recompute(planner, contenders[i]);
        changes += rc > 0 ? rc : 0;
    }
    for (size_t i = 0; i < n_contenders; i++)
        free(contenders[i]);
    free(contenders);
    /* Gone from its tenant unless a contender took the name there. */
    model_owner *heir = owner_find(planner, vs_name);
    if (rc >= 0 && (!heir || stream_of(planner, heir->tenant) != stream)) {
        rc = delete_model(planner, stream, vs_name);
        changes += rc > 0 ? rc : 0;
    }
    return rc < 0 ? rc : changes;
}

/* Recomputes the model of one Service key; returns stream changes (0/1) or
 * a negative sink error. A Service that cannot be translated is logged and
 * skipped: it never stops the others. With deleteConfig (AKO's teardown)
 * no Service has a model: the first full publication is empty and
 * complete, so the syncer deletes everything kavi owns. */
static int recompute(planner_t *planner, const char *service_key)
{
    char ns[KEY_MAX], vs_name[KEY_MAX];
    const char *slash = strchr(service_key, '/');
    const proto_service *svc = store_service(planner->store, service_key);
    proto_model *model = NULL;
    l4_summary summary = {0};
    int rc = 0;

    if (!slash || (size_t)(slash - service_key) >= sizeof ns)
        return 0;
    memcpy(ns, service_key, (size_t)(slash - service_key));
    ns[slash - service_key] = '\0';
    if (l4_vs_name(vs_name, sizeof vs_name, planner->cfg, ns, slash + 1) < 0)
        return 0;
    const char *tenant = tenant_of(planner, ns);
    const char *stream = stream_of(planner, tenant);
    if (!stream)
        return KV_ERR_NOMEM;
    if (svc && !planner->cfg->delete_config &&
        l4_translate(&model, &summary, planner->cfg, planner->store, svc, tenant) < 0) {
        log_error("planner: Service %s: out of memory building its model", service_key);
        return 0; /* keep what is published; the next event retries */
    }
    model_owner *owner = owner_find(planner, vs_name);
    if (model && owner && strcmp(owner->service_key, service_key) != 0) {
        char text[2 * KEY_MAX + 64];
        snprintf(text, sizeof text, "model name %s is already used by Service %s; no model",
                 vs_name, owner->service_key);
        note_update(planner, service_key, text);
        contender_add(owner, service_key);
        proto_model_destroy(&model);
        return 0;
    }
    note_update(planner, service_key, summary.note);
    if (model && owner && strcmp(owner->tenant, tenant) != 0) {
        /* The namespace moved to another tenant: the model leaves the old
         * tenant's stream (that syncer deletes its objects) for the new. */
        char *moved = strdup(tenant);
        const char *old_stream = stream_of(planner, owner->tenant);
        rc = moved && old_stream ? delete_model(planner, old_stream, vs_name) : KV_ERR_NOMEM;
        if (rc < 0) {
            free(moved);
            proto_model_destroy(&model);
            return rc;
        }
        free(owner->tenant);
        owner->tenant = moved;
    }
    if (model) {
        int put = publish_model(planner, stream, service_key, model, &summary);
        if (put >= 0 && !owner && owner_add(planner, vs_name, service_key, tenant) < 0)
            put = KV_ERR_NOMEM;
        proto_model_destroy(&model);
        return put < 0 ? put : rc + put;
    }
    if (owner && strcmp(owner->service_key, service_key) == 0)
        return release_name(planner, owner);
    if (owner) {
        contender_remove(owner, service_key);
    }
    return rc;
}

typedef struct {
    char **keys;
    size_t n;
    bool failed;
} key_list;

static void collect_key(const char *key, void *payload)
{
    key_list *list = payload;
    if (list->failed || key[0] == '!')
        return;
    char **grown = realloc(list->keys, (list->n + 1) * sizeof *grown);
    if (!grown || !(grown[list->n] = strdup(key))) {
        if (grown)
            list->keys = grown;
        list->failed = true;
        return;
    }
    list->keys = grown;
    list->n++;
}

/* After a full recompute: models on a tenant's stream that no Service of
 * that tenant produced. */
static int delete_leftovers(planner_t *planner, const tenant_stream *tenant)
{
    key_list list = {0};
    int changes = 0;
    planner->sink.foreach_key(planner->sink.ctx, tenant->stream, collect_key, &list);
    for (size_t i = 0; i < list.n; i++) {
        const model_owner *owner = owner_find(planner, list.keys[i]);
        if (!owner || strcmp(owner->tenant, tenant->tenant) != 0) {
            int rc = delete_model(planner, tenant->stream, list.keys[i]);
            if (rc < 0) {
                changes = rc;
                break;
            }
            changes += rc;
        }
    }
    store_free_keys(&list.keys, list.n);
    return list.failed && changes >= 0 ? KV_ERR_NOMEM : changes;
}

/* Everything a full recompute covers: every Service in the store and every
 * Service that owns a published model (it may be gone since). */
static int mark_everything(planner_t *planner)
{
    int rc = store_mark_all_dirty(planner->store);
    model_owner *owner, *tmp;
    HASH_ITER(hh, planner->owners, owner, tmp) {
        rc = rc ?: store_mark_dirty(planner->store, owner->service_key);
    }
    return rc;
}

/* Takes the keys a flush recomputes: the dirty ones, or every one. */
static int flush_begin(planner_t *planner)
{
    bool full = planner->need_full;
    int rc = full ? mark_everything(planner) : KV_OK;
    rc = rc ?: store_take_dirty(planner->store, &planner->batch, &planner->batch_n);
    if (rc < 0)
        return rc;
    planner->batch_next = 0;
    planner->batch_full = full;
    planner->flushing = true;
    return KV_OK;
}

/* Recomputes the next slice of the batch; changes made, or a negative
 * sink error after which the keys left are dirty again. */
static int flush_slice(planner_t *planner)
{
    size_t end = planner->batch_next + PLANNER_FLUSH_SLICE;
    int changes = 0;
    if (end > planner->batch_n)
        end = planner->batch_n;
    while (planner->batch_next < end) {
        int rc = recompute(planner, planner->batch[planner->batch_next]);
        if (rc < 0) {
            /* The sink failed: keep the rest for the next flush. */
            for (size_t j = planner->batch_next; j < planner->batch_n; j++)
                store_mark_dirty(planner->store, planner->batch[j]);
            return rc;
        }
        changes += rc;
        planner->batch_next++;
    }
    return changes;
}

/* After the last slice: leftovers of a full recompute, then the markers,
 * "!complete" and "!eos" (with what each stream holds) after the models. */
static int flush_finish(planner_t *planner, bool full)
{
    tenant_stream *tenant, *tmp;
    int changes = 0, rc = 0;
    HASH_ITER(hh, planner->tenants, tenant, tmp) {
        if (rc >= 0 && full) {
            rc = delete_leftovers(planner, tenant);
            changes += rc > 0 ? rc : 0;
        }
    }
    if (rc >= 0 && full)
        planner->need_full = false;
    /* A stream is complete once a full recompute was published; a tenant
     * that appears later is complete from its first model. Unchanged bytes
     * publish nothing, so this costs nothing on later flushes. */
    HASH_ITER(hh, planner->tenants, tenant, tmp) {
        if (rc >= 0 && !planner->need_full) {
            rc = planner->sink.put(planner->sink.ctx, tenant->stream, PROTO_KEY_COMPLETE, "", 0);
            changes += rc > 0 ? rc : 0;
            if (rc == 1)
                log_info("planner: every model of %s published", tenant->stream);
        }
        if (rc >= 0 && planner->has_eos) {
            proto_eos eos = {.run_id = planner->eos_run,
                             .has_models = true,
                             .models = tenant->models,
                             .digest = tenant->digest};
            void *body = NULL;
            size_t len = 0;
            rc = proto_eos_encode(&eos, &body, &len);
            rc = rc ?: planner->sink.put(planner->sink.ctx, tenant->stream, PROTO_KEY_EOS, body,
                                         len);
            free(body);
            if (rc == 1)
                log_info("planner: end of run %llu on %s: %u models",
                         (unsigned long long)eos.run_id, tenant->stream, eos.models);
        } else if (rc >= 0) {
            rc = planner->sink.remove(planner->sink.ctx, tenant->stream, PROTO_KEY_EOS);
        }
        changes += rc > 0 ? rc : 0;
    }
    if (rc >= 0)
        planner->eos_changed = false;
    return rc < 0 ? rc : changes;
}

int planner_flush(planner_t *planner, int64_t now_ms)
{
    int rc = KV_OK;
    if (planner_timeout_ms(planner, now_ms) != 0)
        return 0;
    if (!planner->flushing)
        rc = flush_begin(planner);
    if (rc < 0)
        return rc;
    int changes = flush_slice(planner);
    if (changes >= 0 && planner->batch_next < planner->batch_n) {
        planner->slices++;
        return changes; /* more next turn, after the loop has polled */
    }
    bool full = planner->batch_full;
    flush_abandon(planner); /* the batch is done (or failed): release it */
    rc = changes >= 0 ? flush_finish(planner, full) : changes;
    changes += rc > 0 ? rc : 0;
    planner->has_pending = has_work(planner);
    planner->pending_since_ms = now_ms;
    if (rc < 0)
        planner->last_event_ms = now_ms; /* retry after a quiet period, not in a spin */
    return rc < 0 ? rc : changes;
}

bool planner_is_flushing(const planner_t *planner) { return planner->flushing; }

unsigned long planner_slices(const planner_t *planner) { return planner->slices; }
