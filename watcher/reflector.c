/* reflector.c — see reflector.h. Invariants:
 *  - a reflector has at most one request in flight (list page or watch);
 *    when it has none, `next_ms` says when its next action starts;
 *  - what the publisher holds under "<Kind>/..." is the projection of the
 *    newest valid state seen for that key; a rejected object changes
 *    nothing, and a relist never deletes a key whose object it saw, even
 *    if that object was rejected;
 *  - `rv` is only moved forward by the server's own answers (list RV,
 *    event RV), so a re-watch never skips an event;
 *  - a relist (after 410) publishes nothing until its last page: then its
 *    changes and deletions go out together, so subscribers never see a mix
 *    of the old and the new state of a kind, even when a page fails. */
#define _GNU_SOURCE
#include "watcher/reflector.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/envelope.h"
#include "watcher/projection.h"

typedef struct {
    const char *kind;
    const char *group; /* "" for the core group */
    const char *version;
    const char *resource;
    bool namespaced;
    const char *field_selector; /* URL-encoded, or NULL */
} reflector_kind;

static const reflector_kind reflector_kinds[] = {
    {"Node", "", "v1", "nodes", false, NULL},
    {"Service", "", "v1", "services", true, NULL},
    {"EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", true, NULL},
    {"Namespace", "", "v1", "namespaces", false, NULL},
    /* Only TLS secrets: the others are none of kavi's business. */
    {"Secret", "", "v1", "secrets", true, "type%3Dkubernetes.io%2Ftls"},
    {"Ingress", "networking.k8s.io", "v1", "ingresses", true, NULL},
    {"IngressClass", "networking.k8s.io", "v1", "ingressclasses", false, NULL},
    {"Route", "route.openshift.io", "v1", "routes", true, NULL},
    {"GatewayClass", "gateway.networking.k8s.io", "v1", "gatewayclasses", false, NULL},
    {"Gateway", "gateway.networking.k8s.io", "v1", "gateways", true, NULL},
    {"HTTPRoute", "gateway.networking.k8s.io", "v1", "httproutes", true, NULL},
};
#define N_KINDS (sizeof reflector_kinds / sizeof reflector_kinds[0])

typedef enum {
    REFLECTOR_WAIT_DISCOVERY = 0, /* its group may be absent */
    REFLECTOR_IDLE,               /* next action at next_ms */
    REFLECTOR_LISTING,
    REFLECTOR_WATCHING,
    REFLECTOR_ABSENT, /* group not served: skipped */
} reflector_state;

typedef enum { ACTION_LIST = 0, ACTION_WATCH } reflector_action;

typedef struct {
    char *key;
    void *body; /* owned; during a relist, the projection to publish at its end */
    size_t len;
    UT_hash_handle hh;
} seen_key;

typedef struct reflector {
    reflector_set_t *set;
    const reflector_kind *kind;
    char api_version[96];   /* "v1" or "group/version" */
    char base_path[160];    /* collection path */
    char prefix[64];        /* "<Kind>/" */
    reflector_state state;
    reflector_action next_action;
    int64_t next_ms;
    kube_request_t *request;
    backoff_t backoff;

    char *rv;            /* last resourceVersion: of the list, then of each event */
    char *continue_token; /* of the list in progress; NULL on its first page */
    seen_key *seen;      /* keys the list in progress has seen */
    unsigned long list_items, list_pages;
    bool synced;         /* the first list has completed */
    bool relisting;      /* this list follows a 410 */

    kube_lines lines;
    int64_t watch_start_ms, last_event_ms;
    unsigned long watch_events;
    bool relist_needed; /* the watch said 410 */
    bool watch_error;   /* the watch sent an ERROR other than 410 */
} reflector;

struct reflector_set {
    kube_client_t *client;
    bus_pub_t *pub;
    record_t *record;
    int64_t idle_ms;
    unsigned seed;
    reflector kinds[N_KINDS];
    /* discovery of API groups (GET /apis) */
    kube_request_t *discovery;
    bool discovered;
    int64_t discovery_next_ms;
    backoff_t discovery_backoff;
    /* An absent group (a CRD not installed yet) is looked for again. */
    int64_t rediscover_ms;
    int64_t rediscovery_next_ms;
};

static void reflector_start_list(reflector *r);
static void reflector_start_watch(reflector *r);

/* ---- small helpers ---------------------------------------------------------------- */

static void set_string(char **slot, const char *value)
{
    char *copy = value ? strdup(value) : NULL;
    if (value && !copy)
        return; /* keep the old value rather than lose it */
    free(*slot);
    *slot = copy;
}

static void seen_clear(reflector *r)
{
    seen_key *s, *tmp;
    HASH_ITER(hh, r->seen, s, tmp) {
        HASH_DEL(r->seen, s);
        free(s->key);
        free(s->body);
        free(s);
    }
}

static seen_key *seen_add(reflector *r, const char *key)
{
    seen_key *s = NULL;
    HASH_FIND_STR(r->seen, key, s);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s || !(s->key = strdup(key))) {
        free(s);
        return NULL;
    }
    HASH_ADD_KEYPTR(hh, r->seen, s->key, strlen(s->key), s);
    return s;
}

/* Keeps a relisted object's projection for the end of the relist; false
 * when memory is short (the caller then publishes at once). */
static bool hold_back(seen_key *s, const projection *p)
{
    void *copy = s ? malloc(p->len ? p->len : 1) : NULL;
    if (!copy)
        return false;
    if (p->len)
        memcpy(copy, p->body, p->len);
    free(s->body);
    s->body = copy;
    s->len = p->len;
    return true;
}

/* Percent-encodes a query value (continue tokens are base64 with '=' and '/'). */
static char *url_encode(const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(value);
    char *out = malloc(n * 3 + 1), *p = out;
    if (!out)
        return NULL;
    for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '_' || *s == '.' || *s == '~') {
            *p++ = (char)*s;
        } else {
            *p++ = '%';
            *p++ = hex[*s >> 4];
            *p++ = hex[*s & 15];
        }
    }
    *p = '\0';
    return out;
}

static const char *object_rv(const json_t *object)
{
    return json_string_value(json_object_get(json_object_get(object, "metadata"), "resourceVersion"));
}

static void publish_failed(const char *key, int rc)
{
    if (rc == KV_ERR_IO)
        log_debug("bus: %s stored, live send dropped", key);
    else
        log_error("bus: cannot publish %s: %s", key, kv_strerror(rc));
}

/* Projects and puts one object. When `seen` is set, remembers its key
 * (even for a rejected object: its last good state stays published). */
static void apply_object(reflector *r, const json_t *object, bool seen)
{
    char err[PROJECTION_ERR_MAX] = "";
    projection p;
    int rc = projection_of(&p, object, r->kind->kind, err, sizeof err);
    if (rc == KV_OK) {
        seen_key *s = seen ? seen_add(r, p.key) : NULL;
        if (!(r->relisting && hold_back(s, &p))) {
            int put = bus_pub_put(r->set->pub, PROTO_STREAM_K8S, p.key, p.body, p.len);
            if (put < 0)
                publish_failed(p.key, put);
        }
        projection_clear(&p);
        return;
    }
    if (rc == PROJECTION_IGNORED)
        return;
    char key[PROJECTION_KEY_MAX];
    char ignored[PROJECTION_ERR_MAX];
    if (seen && projection_key_of(key, sizeof key, object, r->kind->kind, ignored,
                                  sizeof ignored) == KV_OK)
        seen_add(r, key);
    log_warn("%s; kept what was published before", err[0] ? err : kv_strerror(rc));
}

static void delete_object(reflector *r, const json_t *object)
{
    char key[PROJECTION_KEY_MAX];
    char err[PROJECTION_ERR_MAX] = "";
    int rc = projection_key_of(key, sizeof key, object, r->kind->kind, err, sizeof err);
    if (rc == KV_OK) {
        rc = bus_pub_delete(r->set->pub, PROTO_STREAM_K8S, key);
        if (rc < 0)
            publish_failed(key, rc);
    } else if (rc < 0) {
        log_warn("%s; DELETED event skipped", err[0] ? err : kv_strerror(rc));
    }
}

static void schedule(reflector *r, reflector_action action, int64_t delay_ms)
{
    r->state = REFLECTOR_IDLE;
    r->next_action = action;
    r->next_ms = clock_now_ms() + (delay_ms > 0 ? delay_ms : 0);
}

/* The delay after a failure: the backoff, or the server's Retry-After if longer. */
static int64_t failure_delay(reflector *r, int64_t retry_after_ms)
{
    int64_t delay = backoff_next_ms(&r->backoff);
    return retry_after_ms > delay ? retry_after_ms : delay;
}

/* Why a reply failed, for a log line: the Status message when there is one. */
static void describe_failure(char *buf, size_t len, const kube_response *resp)
{
    if (resp->curl_code != 0) {
        snprintf(buf, len, "%s", resp->error ? resp->error : "transfer failed");
        return;
    }
    json_t *status = json_loadb(resp->body, resp->body_len, 0, NULL);
    const char *message = json_string_value(json_object_get(status, "message"));
    snprintf(buf, len, "HTTP %ld%s%s", resp->status, message ? ": " : "", message ? message : "");
    json_decref(status);
}

/* ---- list ------------------------------------------------------------------------- */

typedef struct {
    reflector *r;
    unsigned long deleted;
} prune_ctx;

/* Records a DELETED event with only the identity the key holds. */
static void record_deleted_key(reflector *r, const char *key)
{
    const char *rest = key + strlen(r->prefix);
    const char *slash = r->kind->namespaced ? strchr(rest, '/') : NULL;
    json_t *object = NULL;
    if (r->kind->namespaced && !slash)
        return;
    if (slash)
        object = json_pack("{s:{s:s,s:s%}}", "metadata", "name", slash + 1, "namespace", rest,
                           (size_t)(slash - rest));
    else
        object = json_pack("{s:{s:s}}", "metadata", "name", rest);
    if (object)
        record_event(r->set->record, "DELETED", object, r->kind->kind, r->api_version);
    json_decref(object);
}

static void prune_key(const char *key, void *payload)
{
    prune_ctx *ctx = payload;
    reflector *r = ctx->r;
    seen_key *s = NULL;
    if (strncmp(key, r->prefix, strlen(r->prefix)) != 0)
        return;
    HASH_FIND_STR(r->seen, key, s);
    if (s)
        return;
    record_deleted_key(r, key);
    char copy[PROJECTION_KEY_MAX];
    snprintf(copy, sizeof copy, "%s", key); /* the key is freed by the delete */
    int rc = bus_pub_delete(r->set->pub, PROTO_STREAM_K8S, copy);
    if (rc < 0)
        publish_failed(copy, rc);
    else
        ctx->deleted += (unsigned long)rc;
}

/* The end of a relist: what it held back goes out, then the deletions. */
static void publish_held_back(reflector *r)
{
    seen_key *s, *tmp;
    HASH_ITER(hh, r->seen, s, tmp) {
        if (!s->body)
            continue;
        int put = bus_pub_put(r->set->pub, PROTO_STREAM_K8S, s->key, s->body, s->len);
        if (put < 0)
            publish_failed(s->key, put);
        free(s->body);
        s->body = NULL;
    }
}

static void list_complete(reflector *r, const char *list_rv)
{
    prune_ctx ctx = {.r = r};
    publish_held_back(r);
    bus_pub_foreach_key(r->set->pub, PROTO_STREAM_K8S, prune_key, &ctx);
    record_flush(r->set->record);
    log_info("%s: %slisted %lu objects in %lu page(s) at resourceVersion %s; %lu gone since",
             r->kind->kind, r->relisting ? "re" : "", r->list_items, r->list_pages,
             list_rv ? list_rv : "?", ctx.deleted);
    seen_clear(r);
    set_string(&r->rv, list_rv);
    set_string(&r->continue_token, NULL);
    r->relisting = false;
    if (!r->synced) {
        char key[96];
        snprintf(key, sizeof key, "%s%s", PROTO_KEY_SYNCED_PREFIX, r->kind->kind);
        int rc = bus_pub_put(r->set->pub, PROTO_STREAM_K8S, key, "", 0);
        if (rc < 0)
            publish_failed(key, rc);
        r->synced = true;
    }
    backoff_reset(&r->backoff);
    reflector_start_watch(r);
}

static void restart_list(reflector *r, bool after_expiry)
{
    seen_clear(r);
    set_string(&r->continue_token, NULL);
    r->list_items = 0;
    r->list_pages = 0;
    if (after_expiry)
        r->relisting = true;
}

static void on_list_done(void *payload, const kube_response *resp)
{
    reflector *r = payload;
    char why[512];
    r->request = NULL;

    if (resp->curl_code == 0 && resp->status == 410) {
        /* The snapshot of the continue token is gone: list again from the start. */
        log_info("%s: list expired (410); listing again from the start", r->kind->kind);
        restart_list(r, true);
        reflector_start_list(r);
        return;
    }
    if (resp->curl_code != 0 || resp->status < 200 || resp->status >= 300) {
        describe_failure(why, sizeof why, resp);
        int64_t delay = failure_delay(r, resp->retry_after_ms);
        if (resp->status == 403)
            log_warn("%s: list forbidden (%s): check the RBAC rules of kavi's account; "
                     "retrying in %lld ms", r->kind->kind, why, (long long)delay);
        else
            log_warn("%s: list failed (%s); retrying in %lld ms", r->kind->kind, why,
                     (long long)delay);
        schedule(r, ACTION_LIST, delay);
        return;
    }

    json_error_t jerr;
    json_t *list = json_loadb(resp->body, resp->body_len, 0, &jerr);
    const json_t *items = json_object_get(list, "items");
    const json_t *metadata = json_object_get(list, "metadata");
    if (!json_is_object(list) || (items && !json_is_null(items) && !json_is_array(items))) {
        int64_t delay = failure_delay(r, -1);
        log_warn("%s: list reply is not a list (%s); retrying in %lld ms", r->kind->kind,
                 list ? "no items array" : jerr.text, (long long)delay);
        json_decref(list);
        schedule(r, ACTION_LIST, delay);
        return;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(items, i, item) {
        if (!json_is_object(item))
            continue;
        record_event(r->set->record, "ADDED", item, r->kind->kind, r->api_version);
        apply_object(r, item, true);
        r->list_items++;
    }
    r->list_pages++;
    record_flush(r->set->record);
    const char *list_rv = json_string_value(json_object_get(metadata, "resourceVersion"));
    const char *next = json_string_value(json_object_get(metadata, "continue"));
    if (next && *next) {
        /* The only end of a list is an empty continue: a page may be short or empty. */
        set_string(&r->continue_token, next);
        reflector_start_list(r);
    } else {
        list_complete(r, list_rv);
    }
    json_decref(list);
}

static void reflector_start_list(reflector *r)
{
    char path[4096];
    char *token = r->continue_token ? url_encode(r->continue_token) : NULL;
    int n = snprintf(path, sizeof path, "%s?limit=%d%s%s%s%s", r->base_path, REFLECTOR_PAGE_LIMIT,
                     r->kind->field_selector ? "&fieldSelector=" : "",
                     r->kind->field_selector ? r->kind->field_selector : "",
                     token ? "&continue=" : "", token ? token : "");
    free(token);
    if (n < 0 || (size_t)n >= sizeof path || (r->continue_token && !token)) {
        /* A continue token that does not fit: take the whole list again. */
        log_warn("%s: continue token too long; listing again from the start", r->kind->kind);
        restart_list(r, false);
        schedule(r, ACTION_LIST, failure_delay(r, -1));
        return;
    }
    kube_request_spec spec = {.path = path, .on_done = on_list_done, .payload = r};
    if (!r->continue_token)
        r->list_items = r->list_pages = 0;
    if (kube_client_start(r->set->client, &spec, &r->request) < 0) {
        schedule(r, ACTION_LIST, failure_delay(r, -1));
        return;
    }
    r->state = REFLECTOR_LISTING;
}

/* ---- watch ------------------------------------------------------------------------- */

static int on_watch_line(void *payload, char *line, size_t len)
{
    reflector *r = payload;
    json_error_t jerr;
    json_t *event = json_loadb(line, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(event, "type"));
    const json_t *object = json_object_get(event, "object");

    if (!type || !json_is_object(object)) {
        log_warn("%s: watch event skipped: %s", r->kind->kind,
                 event ? "no type or no object" : jerr.text);
        json_decref(event);
        return KV_OK;
    }
    r->last_event_ms = clock_now_ms();
    if (r->watch_events++ == 0)
        backoff_reset(&r->backoff); /* the server answers: the path works again */
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(object, "code"));
        const char *message = json_string_value(json_object_get(object, "message"));
        if (code == 410) {
            log_info("%s: watch from resourceVersion %s expired (%s); relisting", r->kind->kind,
                     r->rv ? r->rv : "?", message ? message : "410");
            r->relist_needed = true;
        } else {
            log_warn("%s: watch error %lld: %s", r->kind->kind, (long long)code,
                     message ? message : "(no message)");
            r->watch_error = true;
        }
        json_decref(event);
        return KV_OK;
    }
    const char *rv = object_rv(object);
    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        record_event(r->set->record, type, object, r->kind->kind, r->api_version);
        apply_object(r, object, false);
    } else if (strcmp(type, "DELETED") == 0) {
        record_event(r->set->record, type, object, r->kind->kind, r->api_version);
        delete_object(r, object);
    } else if (strcmp(type, "BOOKMARK") != 0) {
        log_warn("%s: watch event of unknown type %s skipped", r->kind->kind, type);
    }
    if (rv && *rv)
        set_string(&r->rv, rv);
    json_decref(event);
    return KV_OK;
}

static int on_watch_data(void *payload, const char *data, size_t len)
{
    reflector *r = payload;
    int rc = kube_lines_feed(&r->lines, data, len, on_watch_line, r);
    record_flush(r->set->record);
    if (rc < 0)
        log_warn("%s: watch stream: %s; dropping the watch", r->kind->kind,
                 rc == KV_ERR_TOO_LARGE ? "an event over 16 MiB" : kv_strerror(rc));
    return rc;
}

static void on_watch_done(void *payload, const kube_response *resp)
{
    reflector *r = payload;
    int64_t lived = clock_now_ms() - r->watch_start_ms;
    char why[512];
    r->request = NULL;
    kube_lines_reset(&r->lines); /* a cut-off event is not an event */

    if (r->relist_needed || (resp->curl_code == 0 && resp->status == 410)) {
        r->relist_needed = false;
        restart_list(r, true);
        reflector_start_list(r);
        return;
    }
    if (resp->curl_code == 0 && resp->status >= 200 && resp->status < 300 && !r->watch_error) {
        if (r->watch_events == 0 && lived < REFLECTOR_SHORT_WATCH_MS) {
            int64_t delay = failure_delay(r, -1);
            log_warn("%s: watch ended after %lld ms without an event; watching again in %lld ms",
                     r->kind->kind, (long long)lived, (long long)delay);
            schedule(r, ACTION_WATCH, delay);
        } else {
            log_debug("%s: watch ended after %lld ms; watching again from %s", r->kind->kind,
                      (long long)lived, r->rv ? r->rv : "?");
            reflector_start_watch(r);
        }
        return;
    }
    if (r->watch_error && resp->curl_code == 0 && resp->status >= 200 && resp->status < 300)
        snprintf(why, sizeof why, "the server sent an ERROR event");
    else
        describe_failure(why, sizeof why, resp);
    r->watch_error = false;
    int64_t delay = failure_delay(r, resp->retry_after_ms);
    if (resp->status == 403)
        log_warn("%s: watch forbidden (%s): check the RBAC rules of kavi's account; retrying "
                 "in %lld ms", r->kind->kind, why, (long long)delay);
    else
        log_warn("%s: watch ended (%s); watching again from resourceVersion %s in %lld ms",
                 r->kind->kind, why, r->rv ? r->rv : "?", (long long)delay);
    schedule(r, ACTION_WATCH, delay);
}

static void reflector_start_watch(reflector *r)
{
    char path[1024];
    int timeout_s = REFLECTOR_WATCH_TIMEOUT_MIN_S +
                    rand_r(&r->set->seed) %
                        (REFLECTOR_WATCH_TIMEOUT_MAX_S - REFLECTOR_WATCH_TIMEOUT_MIN_S + 1);
    char *rv = url_encode(r->rv ? r->rv : "");
    if (!rv) {
        schedule(r, ACTION_WATCH, failure_delay(r, -1));
        return;
    }
    snprintf(path, sizeof path,
             "%s?watch=true&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%d%s%s",
             r->base_path, rv, timeout_s, r->kind->field_selector ? "&fieldSelector=" : "",
             r->kind->field_selector ? r->kind->field_selector : "");
    free(rv);
    kube_request_spec spec = {.path = path,
                              .streaming = true,
                              .on_data = on_watch_data,
                              .on_done = on_watch_done,
                              .payload = r};
    r->watch_events = 0;
    r->relist_needed = false;
    r->watch_error = false;
    kube_lines_reset(&r->lines);
    if (kube_client_start(r->set->client, &spec, &r->request) < 0) {
        schedule(r, ACTION_WATCH, failure_delay(r, -1));
        return;
    }
    r->state = REFLECTOR_WATCHING;
    r->watch_start_ms = r->last_event_ms = clock_now_ms();
}

/* ---- discovery ------------------------------------------------------------------- */

static bool group_served(const json_t *groups, const char *group, const char *version)
{
    size_t i, j;
    const json_t *g, *v;
    json_array_foreach(groups, i, g) {
        if (!json_is_string(json_object_get(g, "name")) ||
            strcmp(json_string_value(json_object_get(g, "name")), group) != 0)
            continue;
        json_array_foreach(json_object_get(g, "versions"), j, v) {
            const char *name = json_string_value(json_object_get(v, "version"));
            if (name && strcmp(name, version) == 0)
                return true;
        }
    }
    return false;
}

static void on_discovery_done(void *payload, const kube_response *resp)
{
    reflector_set_t *set = payload;
    json_t *doc = NULL;
    const json_t *groups = NULL;
    set->discovery = NULL;
    if (resp->curl_code == 0 && resp->status == 200) {
        doc = json_loadb(resp->body, resp->body_len, 0, NULL);
        groups = json_object_get(doc, "groups");
    }
    if (!json_is_array(groups) && set->discovered) {
        /* Looking again for absent groups: the kinds already watched are
         * unaffected, so simply look again later. */
        log_debug("API discovery (GET /apis) failed; looking again in %lld ms",
                  (long long)set->rediscover_ms);
        set->rediscovery_next_ms = clock_now_ms() + set->rediscover_ms;
        json_decref(doc);
        return;
    }
    if (!json_is_array(groups)) {
        char why[512];
        describe_failure(why, sizeof why, resp);
        int64_t delay = backoff_next_ms(&set->discovery_backoff);
        if (resp->retry_after_ms > delay)
            delay = resp->retry_after_ms;
        log_warn("API discovery (GET /apis) failed (%s); retrying in %lld ms",
                 resp->curl_code || resp->status != 200 ? why : "no groups list",
                 (long long)delay);
        set->discovery_next_ms = clock_now_ms() + delay;
        json_decref(doc);
        return;
    }
    set->discovered = true;
    set->rediscovery_next_ms = clock_now_ms() + set->rediscover_ms;
    const char *absent_group = NULL, *new_group = NULL;
    for (size_t i = 0; i < N_KINDS; i++) {
        reflector *r = &set->kinds[i];
        if (r->state != REFLECTOR_WAIT_DISCOVERY && r->state != REFLECTOR_ABSENT)
            continue;
        bool served = group_served(groups, r->kind->group, r->kind->version);
        if (served && r->state == REFLECTOR_ABSENT &&
            (!new_group || strcmp(new_group, r->kind->group) != 0)) {
            log_info("API group %s/%s is served now; its kinds are listed and watched",
                     r->kind->group, r->kind->version);
            new_group = r->kind->group;
        }
        if (served) {
            reflector_start_list(r);
            continue;
        }
        if (r->state == REFLECTOR_ABSENT)
            continue; /* still absent, said so already */
        /* One line per absent group; its kinds are complete and empty. */
        if (!absent_group || strcmp(absent_group, r->kind->group) != 0) {
            log_info("API group %s/%s is not served by this cluster; its kinds are skipped",
                     r->kind->group, r->kind->version);
            absent_group = r->kind->group;
        }
        r->state = REFLECTOR_ABSENT;
        r->synced = true;
        char key[96];
        snprintf(key, sizeof key, "%s%s", PROTO_KEY_SYNCED_PREFIX, r->kind->kind);
        int rc = bus_pub_put(set->pub, PROTO_STREAM_K8S, key, "", 0);
        if (rc < 0)
            publish_failed(key, rc);
    }
    json_decref(doc);
}

static void start_discovery(reflector_set_t *set)
{
    kube_request_spec spec = {.path = "/apis", .on_done = on_discovery_done, .payload = set};
    if (kube_client_start(set->client, &spec, &set->discovery) < 0) {
        set->discovery_next_ms = clock_now_ms() + backoff_next_ms(&set->discovery_backoff);
        set->rediscovery_next_ms = clock_now_ms() + set->rediscover_ms;
    } else
        set->discovery_next_ms = INT64_MAX;
}

/* ---- the set ---------------------------------------------------------------------- */

static int64_t idle_from_env(void)
{
    const char *text = getenv("KAVI_WATCH_IDLE_MS");
    char *end = NULL;
    long long ms = text && *text ? strtoll(text, &end, 10) : 0;
    if (text && *text && (*end || ms <= 0)) {
        log_warn("KAVI_WATCH_IDLE_MS=%s is not a positive number of ms; using %d", text,
                 REFLECTOR_IDLE_MS);
        ms = 0;
    }
    return ms > 0 ? ms : REFLECTOR_IDLE_MS;
}

int reflector_set_new(reflector_set_t **out, const reflector_options *options)
{
    reflector_set_t *set = calloc(1, sizeof *set);
    *out = NULL;
    if (!set)
        return KV_ERR_NOMEM;
    set->client = options->client;
    set->pub = options->pub;
    set->record = options->record;
    set->idle_ms = options->idle_ms > 0 ? options->idle_ms : idle_from_env();
    set->rediscover_ms =
        options->rediscover_ms > 0 ? options->rediscover_ms : REFLECTOR_REDISCOVER_MS;
    set->seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    backoff_init(&set->discovery_backoff, REFLECTOR_BACKOFF_INITIAL_MS, REFLECTOR_BACKOFF_MAX_MS);
    set->discovery_next_ms = 0;
    for (size_t i = 0; i < N_KINDS; i++) {
        reflector *r = &set->kinds[i];
        const reflector_kind *k = &reflector_kinds[i];
        r->set = set;
        r->kind = k;
        if (k->group[0]) {
            snprintf(r->api_version, sizeof r->api_version, "%s/%s", k->group, k->version);
            snprintf(r->base_path, sizeof r->base_path, "/apis/%s/%s/%s", k->group, k->version,
                     k->resource);
            r->state = REFLECTOR_WAIT_DISCOVERY;
        } else {
            snprintf(r->api_version, sizeof r->api_version, "%s", k->version);
            snprintf(r->base_path, sizeof r->base_path, "/api/%s/%s", k->version, k->resource);
            schedule(r, ACTION_LIST, 0); /* the core group is always there */
        }
        snprintf(r->prefix, sizeof r->prefix, "%s/", k->kind);
        backoff_init(&r->backoff, REFLECTOR_BACKOFF_INITIAL_MS, REFLECTOR_BACKOFF_MAX_MS);
        kube_lines_init(&r->lines, REFLECTOR_LINE_MAX);
    }
    *out = set;
    return KV_OK;
}

void reflector_set_destroy(reflector_set_t **set_p)
{
    reflector_set_t *set = *set_p;
    if (!set)
        return;
    kube_client_cancel(set->client, &set->discovery);
    for (size_t i = 0; i < N_KINDS; i++) {
        reflector *r = &set->kinds[i];
        kube_client_cancel(set->client, &r->request);
        seen_clear(r);
        free(r->rv);
        free(r->continue_token);
        kube_lines_free(&r->lines);
    }
    free(set);
    *set_p = NULL;
}

static bool any_absent(const reflector_set_t *set)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (set->kinds[i].state == REFLECTOR_ABSENT)
            return true;
    return false;
}

int64_t reflector_set_step(reflector_set_t *set, int64_t now_ms)
{
    int64_t wait = INT64_MAX;
    if (!set->discovered && !set->discovery) {
        if (now_ms >= set->discovery_next_ms)
            start_discovery(set);
        if (!set->discovery && set->discovery_next_ms - now_ms < wait)
            wait = set->discovery_next_ms - now_ms;
    } else if (set->discovered && !set->discovery && any_absent(set)) {
        if (now_ms >= set->rediscovery_next_ms)
            start_discovery(set);
        if (!set->discovery && set->rediscovery_next_ms - now_ms < wait)
            wait = set->rediscovery_next_ms - now_ms;
    }
    for (size_t i = 0; i < N_KINDS; i++) {
        reflector *r = &set->kinds[i];
        if (r->state == REFLECTOR_IDLE && now_ms >= r->next_ms) {
            if (r->next_action == ACTION_LIST)
                reflector_start_list(r);
            else
                reflector_start_watch(r);
        }
        if (r->state == REFLECTOR_WATCHING && now_ms - r->last_event_ms >= set->idle_ms) {
            /* Silence past the bound: the path is dead even if TCP says otherwise. */
            kube_client_cancel(set->client, &r->request);
            kube_lines_reset(&r->lines);
            int64_t delay = failure_delay(r, -1);
            log_warn("%s: no event or bookmark for %lld ms; watching again from "
                     "resourceVersion %s in %lld ms",
                     r->kind->kind, (long long)(now_ms - r->last_event_ms), r->rv ? r->rv : "?",
                     (long long)delay);
            schedule(r, ACTION_WATCH, delay);
        }
        int64_t due = INT64_MAX;
        if (r->state == REFLECTOR_IDLE)
            due = r->next_ms - now_ms;
        else if (r->state == REFLECTOR_WATCHING)
            due = r->last_event_ms + set->idle_ms - now_ms;
        if (due < wait)
            wait = due;
    }
    return wait > 0 ? wait : 0;
}

bool reflector_set_synced(const reflector_set_t *set)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (!set->kinds[i].synced)
            return false;
    return true;
}
