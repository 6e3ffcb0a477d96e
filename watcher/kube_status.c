/* kube_status.c — see kube_status.h. Invariant: an entry is dirty exactly
 * while `desired` differs from `written`; at most one write per entry is in
 * flight, and what it carries is kept in `sending` until the reply. */
#include "watcher/kube_status.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#define SERVICE_PREFIX "Service/"

typedef struct kube_status_entry {
    char *object; /* "Service/<ns>/<name>", the hash key */
    char *path;   /* .../namespaces/<ns>/services/<name>/status */
    char *desired; /* merge patch body */
    char *written; /* last body the server accepted; NULL: none yet */
    char *sending; /* body of the write in flight */
    kube_request_t *request;
    backoff_t backoff;
    int64_t next_ms;
    kube_status_t *owner;
    UT_hash_handle hh;
} kube_status_entry;

struct kube_status {
    kube_client_t *client;
    kube_status_entry *entries;
    int in_flight;
    unsigned long written;
};

static bool same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

int kube_status_new(kube_status_t **out, kube_client_t *client)
{
    kube_status_t *s = calloc(1, sizeof *s);
    *out = s;
    if (!s)
        return KV_ERR_NOMEM;
    s->client = client;
    return KV_OK;
}

static void entry_free(kube_status_entry *e)
{
    free(e->object);
    free(e->path);
    free(e->desired);
    free(e->written);
    free(e->sending);
    free(e);
}

void kube_status_destroy(kube_status_t **status_p)
{
    kube_status_t *s = *status_p;
    kube_status_entry *e, *tmp;
    if (!s)
        return;
    HASH_ITER(hh, s->entries, e, tmp) {
        HASH_DEL(s->entries, e);
        kube_client_cancel(s->client, &e->request);
        entry_free(e);
    }
    free(s);
    *status_p = NULL;
}

static char *patch_body(char *const *vips, size_t n_vips)
{
    json_t *ingress = json_array();
    for (size_t i = 0; ingress && i < n_vips; i++)
        if (json_array_append_new(ingress, json_pack("{s:s}", "ip", vips[i])) != 0) {
            json_decref(ingress);
            return NULL;
        }
    json_t *doc = ingress ? json_pack("{s:{s:{s:o}}}", "status", "loadBalancer", "ingress", ingress)
                          : NULL;
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}

void kube_status_set(kube_status_t *s, const char *object, char *const *vips, size_t n_vips)
{
    kube_status_entry *e = NULL;
    if (strncmp(object, SERVICE_PREFIX, strlen(SERVICE_PREFIX)) != 0)
        return;
    const char *ns = object + strlen(SERVICE_PREFIX);
    const char *slash = strchr(ns, '/');
    if (!slash || slash == ns || !slash[1] || strchr(slash + 1, '/'))
        return;
    char *body = patch_body(vips, n_vips);
    if (!body)
        return;
    HASH_FIND_STR(s->entries, object, e);
    if (!e) {
        e = calloc(1, sizeof *e);
        size_t n = strlen(object) + 64;
        if (e) {
            e->object = strdup(object);
            e->path = malloc(n);
        }
        if (!e || !e->object || !e->path) {
            if (e)
                entry_free(e);
            free(body);
            return;
        }
        snprintf(e->path, n, "/api/v1/namespaces/%.*s/services/%s/status", (int)(slash - ns), ns,
                 slash + 1);
        e->owner = s;
        backoff_init(&e->backoff, 800, 30000);
        HASH_ADD_KEYPTR(hh, s->entries, e->object, strlen(e->object), e);
    }
    free(e->desired);
    e->desired = body;
}

static void on_patch_done(void *payload, const kube_response *resp)
{
    kube_status_entry *e = payload;
    kube_status_t *s = e->owner;
    e->request = NULL;
    s->in_flight--;
    if (resp->curl_code == 0 && resp->status >= 200 && resp->status < 300) {
        free(e->written);
        e->written = e->sending;
        e->sending = NULL;
        backoff_reset(&e->backoff);
        s->written++;
        log_info("status %s: written to the API server", e->object);
        return;
    }
    if (resp->curl_code == 0 && resp->status == 404) {
        /* The Service is gone: nothing to write any more. */
        log_info("status %s: the Service no longer exists; not written", e->object);
        free(e->written);
        e->written = e->sending;
        e->sending = NULL;
        return;
    }
    int64_t delay = backoff_next_ms(&e->backoff);
    if (resp->retry_after_ms > delay)
        delay = resp->retry_after_ms;
    e->next_ms = clock_now_ms() + delay;
    free(e->sending);
    e->sending = NULL;
    if (resp->curl_code)
        log_warn("status %s: PATCH failed (%s); retrying in %lld ms", e->object,
                 resp->error ? resp->error : "transfer failed", (long long)delay);
    else
        log_warn("status %s: PATCH answered HTTP %ld; retrying in %lld ms", e->object,
                 resp->status, (long long)delay);
}

int64_t kube_status_step(kube_status_t *s, int64_t now_ms)
{
    int64_t wait = INT64_MAX;
    kube_status_entry *e, *tmp;
    HASH_ITER(hh, s->entries, e, tmp) {
        if (e->request || same(e->desired, e->written))
            continue;
        if (now_ms < e->next_ms) {
            if (e->next_ms - now_ms < wait)
                wait = e->next_ms - now_ms;
            continue;
        }
        if (s->in_flight >= KUBE_STATUS_MAX_IN_FLIGHT)
            continue; /* a reply will wake the loop */
        e->sending = strdup(e->desired);
        if (!e->sending)
            continue;
        kube_request_spec spec = {.method = "PATCH",
                                  .path = e->path,
                                  .body = e->sending,
                                  .content_type = "application/merge-patch+json",
                                  .on_done = on_patch_done,
                                  .payload = e};
        if (kube_client_start(s->client, &spec, &e->request) < 0) {
            free(e->sending);
            e->sending = NULL;
            e->next_ms = now_ms + backoff_next_ms(&e->backoff);
            continue;
        }
        s->in_flight++;
    }
    return wait;
}

unsigned long kube_status_written(const kube_status_t *s) { return s->written; }
