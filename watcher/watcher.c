/* watcher.c — see watcher.h. Invariants:
 *  - what the publisher holds under a key is the projection of the last
 *    valid event for that key; a rejected event changes nothing;
 *  - the markers are published once, after every event before the first end
 *    of file has been applied, so a subscriber that sees "!synced/<Kind>"
 *    has the recorded initial state whole;
 *  - the status file always holds a complete JSON document (tmp + rename). */
#include "watcher/watcher.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/envelope.h"
#include "proto/status.h"
#include "watcher/kube_status.h"
#include "watcher/projection.h"
#include "watcher/record.h"
#include "watcher/reflector.h"
#include "watcher/replay.h"

#define WATCHER_LINE_MAX 1024

/* Every kind the watcher projects gets its "!synced/<Kind>" marker at the
 * first end of file: a recording is the whole state, and a kind it does
 * not mention has no objects (as an API group that is not installed). */
static const char *const watcher_kinds[] = {"Node",         "Service",      "EndpointSlice",
                                            "Namespace",    "Secret",       "Ingress",
                                            "IngressClass", "Route",        "GatewayClass",
                                            "Gateway",      "HTTPRoute"};

typedef struct {
    char *object; /* "Service/<ns>/<name>", the hash key */
    char *tenant;
    char **vips;
    size_t n_vips;
    char *error; /* NULL when fine */
    UT_hash_handle hh;
} watcher_object_status;

typedef struct {
    char *tenant;        /* the hash key */
    proto_progress last; /* the latest report; tenant NULL, last_error owned */
    int64_t since_ms;    /* when it last changed */
    UT_hash_handle hh;
} watcher_progress;

struct watcher {
    const kv_config *cfg; /* borrowed */
    bus_pub_t *pub;
    void *status_pull;
    replay_t *replay;           /* replay source */
    kube_client_t *kube;        /* live source: the API client, */
    reflector_set_t *reflectors; /* the list+watch of every kind, */
    kube_status_t *kube_status; /* the Service status writer, */
    record_t *record;           /* and --record */
    bool follow;
    size_t batch;
    char *status_file;
    char *status_tmp;

    int64_t next_replay_ms; /* INT64_MAX once a non-followed file is done */
    bool markers_published;

    watcher_object_status *objects;
    watcher_progress *progress;
    bool status_dirty;
    int64_t next_status_write_ms;

    unsigned long n_published, n_deleted, n_rejected;
};

/* ---- replay → publisher ------------------------------------------------ */

static void publish_failed(const char *key, int rc)
{
    /* A PUB past its high-water mark drops; the entry is stored all the
     * same and the subscriber's gap check recovers it from a snapshot. */
    if (rc == KV_ERR_IO)
        log_debug("bus: %s stored, live send dropped", key);
    else
        log_error("bus: cannot publish %s: %s", key, kv_strerror(rc));
}

static void apply_event(watcher_t *w, const replay_event *ev)
{
    char err[PROJECTION_ERR_MAX] = "";
    const char *path = replay_path(w->replay);
    int rc;

    if (ev->type == REPLAY_DELETED) {
        char key[PROJECTION_KEY_MAX];
        rc = projection_key_of(key, sizeof key, ev->object, NULL, err, sizeof err);
        if (rc == KV_OK) {
            rc = bus_pub_delete(w->pub, PROTO_STREAM_K8S, key);
            if (rc < 0)
                publish_failed(key, rc);
            else
                w->n_deleted += (unsigned long)rc;
        }
    } else {
        projection p;
        rc = projection_of(&p, ev->object, NULL, err, sizeof err);
        if (rc == KV_OK) {
            rc = bus_pub_put(w->pub, PROTO_STREAM_K8S, p.key, p.body, p.len);
            if (rc < 0)
                publish_failed(p.key, rc);
            else
                w->n_published += (unsigned long)rc;
            projection_clear(&p);
        }
    }
    if (rc < 0 && err[0]) {
        w->n_rejected++;
        log_warn("%s:%lu: %s; %s event skipped", path, ev->line, err,
                 replay_event_type_name(ev->type));
    }
}

static void publish_markers(watcher_t *w)
{
    char key[64];
    int rc;
    for (size_t i = 0; i < sizeof watcher_kinds / sizeof watcher_kinds[0]; i++) {
        snprintf(key, sizeof key, "%s%s", PROTO_KEY_SYNCED_PREFIX, watcher_kinds[i]);
        rc = bus_pub_put(w->pub, PROTO_STREAM_K8S, key, "", 0);
        if (rc < 0)
            publish_failed(key, rc);
    }
    if (!w->follow) {
        proto_eos eos = {.run_id = bus_pub_epoch(w->pub)};
        void *body = NULL;
        size_t len = 0;
        rc = proto_eos_encode(&eos, &body, &len);
        rc = rc ?: bus_pub_put(w->pub, PROTO_STREAM_K8S, PROTO_KEY_EOS, body, len);
        if (rc < 0)
            publish_failed(PROTO_KEY_EOS, rc);
        free(body);
    }
    w->markers_published = true;
    log_info("replay %s: initial state published (objects: %lu changed, %lu deleted, %lu "
             "rejected; %lu lines or documents skipped)%s",
             replay_path(w->replay), w->n_published, w->n_deleted, w->n_rejected,
             replay_errors(w->replay), w->follow ? "; following the file" : "; end of stream");
}

/* Replays up to one batch; returns true when more events may be waiting. */
static bool replay_batch(watcher_t *w)
{
    replay_event ev;
    for (size_t i = 0; i < w->batch; i++) {
        int rc = replay_next(w->replay, &ev);
        if (rc <= 0)
            return false; /* the end for now, or a read error already logged */
        apply_event(w, &ev);
        replay_event_clear(&ev);
    }
    return true;
}

/* ---- status from syncers ------------------------------------------------- */

/* "Service/ns/name" → "Service ns/name", the way kubectl users read it. */
static void display_name(char *buf, size_t len, const char *object)
{
    const char *slash = strchr(object, '/');
    if (slash)
        snprintf(buf, len, "%.*s %s", (int)(slash - object), object, slash + 1);
    else
        snprintf(buf, len, "%s", object);
}

static bool same_string(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_status(const watcher_object_status *cur, const proto_object_status *st)
{
    if (cur->n_vips != st->n_vips || !same_string(cur->error, st->error) ||
        !same_string(cur->tenant, st->tenant))
        return false;
    for (size_t i = 0; i < cur->n_vips; i++)
        if (strcmp(cur->vips[i], st->vips[i]) != 0)
            return false;
    return true;
}

static void log_object_status(const watcher_object_status *cur)
{
    char name[WATCHER_LINE_MAX / 2];
    char line[WATCHER_LINE_MAX] = "";
    size_t used = 0;
    display_name(name, sizeof name, cur->object);
    for (size_t i = 0; i < cur->n_vips && used < sizeof line; i++) {
        int n = snprintf(line + used, sizeof line - used, "%s ip %s",
                         i == 0 ? "loadBalancer.ingress" : ",", cur->vips[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    if (cur->n_vips == 0 && !cur->error)
        snprintf(line, sizeof line, "loadBalancer.ingress cleared");
    if (cur->error && used < sizeof line)
        snprintf(line + used, sizeof line - used, "%serror %s", used ? "; " : "", cur->error);
    log_info("status %s: %s", name, line);
}

static void object_status_free(watcher_object_status *cur)
{
    for (size_t i = 0; i < cur->n_vips; i++)
        free(cur->vips[i]);
    free(cur->vips);
    free(cur->tenant);
    free(cur->error);
    free(cur->object);
    free(cur);
}

/* Keeps st's strings (they are moved out of st). */
static void apply_object_status(watcher_t *w, proto_object_status *st)
{
    watcher_object_status *cur = NULL;
    HASH_FIND_STR(w->objects, st->object, cur);
    if (cur && same_status(cur, st))
        return;
    /* A tenant letting go of an object (no VIP, no error) does not clear
     * what another tenant reported: the namespace moved to that tenant,
     * whose syncer speaks for the object now, in whatever order the two
     * reports arrive. */
    if (cur && st->n_vips == 0 && !st->error && !same_string(cur->tenant, st->tenant) &&
        (cur->n_vips > 0 || cur->error))
        return;
    if (!cur) {
        cur = calloc(1, sizeof *cur);
        if (!cur)
            return;
        cur->object = st->object;
        st->object = NULL;
        HASH_ADD_KEYPTR(hh, w->objects, cur->object, strlen(cur->object), cur);
    }
    for (size_t i = 0; i < cur->n_vips; i++)
        free(cur->vips[i]);
    free(cur->vips);
    free(cur->tenant);
    free(cur->error);
    cur->vips = st->vips;
    cur->n_vips = st->n_vips;
    cur->tenant = st->tenant;
    cur->error = st->error;
    st->vips = NULL;
    st->n_vips = 0;
    st->tenant = NULL;
    st->error = NULL;
    log_object_status(cur);
    if (w->kube_status)
        kube_status_set(w->kube_status, cur->object, cur->vips, cur->n_vips);
    w->status_dirty = true;
}

static bool same_progress(const proto_progress *a, const proto_progress *b)
{
    return a->eos_run == b->eos_run && a->pending == b->pending && a->failed == b->failed &&
           a->published_models == b->published_models &&
           a->published_digest == b->published_digest && a->applied_models == b->applied_models &&
           a->applied_digest == b->applied_digest && same_string(a->last_error, b->last_error);
}

/* Keeps p's last_error (moved out of p). */
static void apply_progress(watcher_t *w, proto_progress *p)
{
    watcher_progress *cur = NULL;
    HASH_FIND_STR(w->progress, p->tenant, cur);
    if (cur && same_progress(&cur->last, p))
        return;
    if (!cur) {
        cur = calloc(1, sizeof *cur);
        if (!cur)
            return;
        cur->tenant = p->tenant;
        p->tenant = NULL;
        HASH_ADD_KEYPTR(hh, w->progress, cur->tenant, strlen(cur->tenant), cur);
    }
    uint64_t run = bus_pub_epoch(w->pub);
    if (p->eos_run == run && cur->last.eos_run != run)
        log_info("tenant %s: the syncer reached the end of this replay: %u of %u models "
                 "applied (%u pending, %u failed)",
                 cur->tenant, p->applied_models, p->published_models, p->pending, p->failed);
    else
        log_debug("tenant %s: progress: %u applied, %u pending, %u failed", cur->tenant,
                  p->applied_models, p->pending, p->failed);
    free(cur->last.last_error);
    cur->last = *p;
    cur->last.tenant = NULL;
    p->last_error = NULL;
    cur->since_ms = clock_now_ms();
}

static void receive_status(watcher_t *w)
{
    for (int i = 0; i < WATCHER_STATUS_PER_STEP; i++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, w->status_pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        bool multipart = zmq_msg_more(&msg);
        proto_status st;
        int rc = KV_ERR_PROTOCOL;
        if (!multipart)
            rc = proto_status_decode(&st, zmq_msg_data(&msg), zmq_msg_size(&msg));
        while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, w->status_pull, 0) >= 0)
            ;
        zmq_msg_close(&msg);
        if (rc < 0) {
            log_warn("status: dropped a malformed message: %s", kv_strerror(rc));
            continue;
        }
        if (st.type == PROTO_STATUS_OBJECT)
            apply_object_status(w, &st.object);
        else
            apply_progress(w, &st.progress);
        proto_status_clear(&st);
    }
}

/* ---- status file ---------------------------------------------------------- */

static json_t *status_document(const watcher_t *w)
{
    json_t *root = json_object();
    const watcher_object_status *cur, *tmp;
    if (!root)
        return NULL;
    HASH_ITER(hh, w->objects, cur, tmp) {
        json_t *ingress = json_array();
        json_t *entry = json_object();
        for (size_t i = 0; ingress && i < cur->n_vips; i++)
            json_array_append_new(ingress, json_pack("{s:s}", "ip", cur->vips[i]));
        if (!ingress || !entry ||
            json_object_set_new(entry, "ingress", ingress) != 0 ||
            json_object_set_new(entry, "error",
                                cur->error ? json_string(cur->error) : json_null()) != 0 ||
            json_object_set_new(root, cur->object, entry) != 0) {
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

/* Writes the whole status set to a temporary file and renames it over the
 * status file, so a reader never sees half a document. */
static int write_status_file(const watcher_t *w)
{
    json_t *doc = status_document(w);
    FILE *file = NULL;
    int rc = KV_ERR_NOMEM;
    if (!doc)
        return rc;
    file = fopen(w->status_tmp, "w");
    rc = file ? KV_OK : KV_ERR_IO;
    if (rc == KV_OK && (json_dumpf(doc, file, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 ||
                        fputc('\n', file) == EOF))
        rc = KV_ERR_IO;
    if (file && fclose(file) != 0)
        rc = KV_ERR_IO;
    if (rc == KV_OK && rename(w->status_tmp, w->status_file) != 0)
        rc = KV_ERR_IO;
    if (rc < 0) {
        log_warn("status file %s: cannot write: %s", w->status_file, strerror(errno));
        unlink(w->status_tmp);
    }
    json_decref(doc);
    return rc;
}

/* ---- the step ------------------------------------------------------------ */

static int64_t min_wait(int64_t a, int64_t b) { return a < b ? a : b; }

int64_t watcher_step(watcher_t *w, int64_t now_ms)
{
    int64_t wait = BUS_HEARTBEAT_MS;

    bus_pub_serve(w->pub);
    receive_status(w);
    if (w->kube) {
        kube_client_step(w->kube, now_ms);
        wait = min_wait(wait, reflector_set_step(w->reflectors, now_ms));
        wait = min_wait(wait, kube_status_step(w->kube_status, now_ms));
    } else if (now_ms >= w->next_replay_ms) {
        if (replay_batch(w))
            w->next_replay_ms = now_ms; /* more waiting: come back at once */
        else if (w->follow)
            w->next_replay_ms = now_ms + WATCHER_FOLLOW_POLL_MS;
        else if (replay_reached_end(w->replay))
            w->next_replay_ms = INT64_MAX;
        else
            w->next_replay_ms = now_ms + WATCHER_FOLLOW_POLL_MS; /* a read error: retry */
    }
    if (w->replay && !w->markers_published && replay_reached_end(w->replay))
        publish_markers(w);
    /* The timers below are checked against the clock after that work. */
    int64_t after = clock_now_ms();
    if (after > now_ms)
        now_ms = after;
    if (w->kube && !w->markers_published && reflector_set_synced(w->reflectors)) {
        w->markers_published = true;
        log_info("initial state of every kind published; watching for changes");
    }
    if (w->status_file && w->status_dirty && now_ms >= w->next_status_write_ms) {
        if (write_status_file(w) == KV_OK)
            w->status_dirty = false;
        else
            w->next_status_write_ms = now_ms + WATCHER_STATUS_RETRY_MS;
    }
    wait = min_wait(wait, bus_pub_tick(w->pub, now_ms));
    if (w->kube)
        wait = min_wait(wait, kube_client_timeout_ms(w->kube, now_ms));
    else if (w->next_replay_ms != INT64_MAX)
        wait = min_wait(wait, w->next_replay_ms - now_ms);
    if (w->status_file && w->status_dirty)
        wait = min_wait(wait, w->next_status_write_ms - now_ms);
    return wait > 0 ? wait : 0;
}

int watcher_pollitems(watcher_t *w, zmq_pollitem_t *items)
{
    items[0] = (zmq_pollitem_t){.socket = bus_pub_snapshot_socket(w->pub), .events = ZMQ_POLLIN};
    items[1] = (zmq_pollitem_t){.socket = w->status_pull, .events = ZMQ_POLLIN};
    if (!w->kube)
        return 2;
    return 2 + kube_client_pollitems(w->kube, items + 2, WATCHER_POLLITEMS - 2);
}

uint64_t watcher_run_id(const watcher_t *w) { return bus_pub_epoch(w->pub); }

bool watcher_replay_done(const watcher_t *w) { return w->markers_published; }

/* ---- verdicts ------------------------------------------------------------ */

static const watcher_progress *progress_of(const watcher_t *w, const char *tenant)
{
    watcher_progress *cur = NULL;
    HASH_FIND_STR(w->progress, tenant, cur);
    return cur;
}

watcher_verdict watcher_verdict_of(const watcher_t *w, const char *tenant, int64_t now_ms)
{
    const watcher_progress *cur = progress_of(w, tenant);
    /* eos_run is this run's id only while the syncer has applied (or had
     * refused) every model up to the planner's "!eos", which follows ours. */
    if (!cur || !w->markers_published || w->follow || cur->last.eos_run != watcher_run_id(w) ||
        cur->last.pending > 0)
        return WATCHER_RUNNING;
    if (proto_progress_applied_all(&cur->last))
        return WATCHER_CAUGHT_UP;
    if (cur->last.failed > 0)
        return WATCHER_FAILED; /* refused: nothing changes that until new input */
    /* Models lost on the way: the bus re-snapshots on a gap it sees, so
     * give it the time to; a report that stays short is a failure. */
    return now_ms - cur->since_ms >= WATCHER_VERIFY_GRACE_MS ? WATCHER_FAILED : WATCHER_RUNNING;
}

static int compare_objects(const void *a, const void *b)
{
    return strcmp((*(watcher_object_status *const *)a)->object,
                  (*(watcher_object_status *const *)b)->object);
}

/* What the applied set lacks against the published one, in words. */
static void describe_shortfall(const proto_progress *p, const char *tenant, char *buf,
                               size_t len)
{
    char why[WATCHER_LINE_MAX / 2];
    if (p->last_error)
        snprintf(why, sizeof why, "last controller error: %s", p->last_error);
    else
        snprintf(why, sizeof why, "the controller refused none: %s",
                 p->failed ? "(no message)" : "they never reached the syncer");
    if (p->applied_models < p->published_models)
        snprintf(buf, len, "tenant %s applied %u of %u models; %u missing; %s", tenant,
                 p->applied_models, p->published_models, p->published_models - p->applied_models,
                 why);
    else if (p->applied_models > p->published_models)
        snprintf(buf, len, "tenant %s applied %u models but the planner published %u; %s",
                 tenant, p->applied_models, p->published_models, why);
    else
        snprintf(buf, len,
                 "tenant %s applied %u models, but not all in the versions the planner "
                 "published; %s",
                 tenant, p->applied_models, why);
}

void watcher_print_failures(const watcher_t *w, const char *tenant, FILE *out)
{
    const watcher_progress *cur = progress_of(w, tenant);
    watcher_object_status *obj, *tmp;
    size_t n = 0, count = HASH_COUNT(w->objects);
    watcher_object_status **failed = calloc(count ? count : 1, sizeof *failed);
    char line[WATCHER_LINE_MAX];

    HASH_ITER(hh, w->objects, obj, tmp) {
        if (failed && obj->error && same_string(obj->tenant, tenant))
            failed[n++] = obj;
    }
    if (failed)
        qsort(failed, n, sizeof *failed, compare_objects);
    for (size_t i = 0; i < n; i++) {
        char name[WATCHER_LINE_MAX / 2];
        display_name(name, sizeof name, failed[i]->object);
        fprintf(out, "kavi-watcher: %s: %s\n", name, failed[i]->error);
    }
    free(failed);
    /* Last, the line that sums it up. */
    if (cur) {
        describe_shortfall(&cur->last, tenant, line, sizeof line);
        fprintf(out, "kavi-watcher: %s\n", line);
    }
}

void watcher_describe_lag(const watcher_t *w, const char *tenant, char *buf, size_t len)
{
    const watcher_progress *cur = progress_of(w, tenant);
    const proto_progress *p = cur ? &cur->last : NULL;
    char error[WATCHER_LINE_MAX / 2] = "";

    if (p && p->last_error)
        snprintf(error, sizeof error, ", last error: %s", p->last_error);
    if (w->kube)
        snprintf(buf, len, "watching the API server has no end%s",
                 w->markers_published ? "" : " (and not every kind is listed yet)");
    else if (!w->markers_published)
        snprintf(buf, len, "the replay of %s has not reached its end", replay_path(w->replay));
    else if (w->follow)
        snprintf(buf, len, "following %s has no end", replay_path(w->replay));
    else if (!p)
        snprintf(buf, len, "no progress from the syncer of tenant %s", tenant);
    else if (p->eos_run != watcher_run_id(w) && p->published_models)
        snprintf(buf, len,
                 "the syncer of tenant %s has not reached the end of this replay: %u of %u "
                 "model(s) applied, %u pending, %u failed%s",
                 tenant, p->applied_models, p->published_models, p->pending, p->failed, error);
    else if (p->eos_run != watcher_run_id(w))
        snprintf(buf, len,
                 "the syncer of tenant %s has not reached the end of this replay "
                 "(%u model(s) applied, %u pending, %u failed%s)",
                 tenant, p->applied_models, p->pending, p->failed, error);
    else if (p->pending == 0 && !proto_progress_applied_all(p))
        describe_shortfall(p, tenant, buf, len);
    else
        snprintf(buf, len, "tenant %s: %u of %u model(s) applied, %u pending, %u failed%s",
                 tenant, p->applied_models, p->published_models, p->pending, p->failed, error);
}

/* ---- life cycle ------------------------------------------------------------ */

/* The live source: the API client (taking options->kube), the reflectors
 * publishing through w->pub, the Service status writer, the recorder. */
static int watcher_open_live(watcher_t *w, const watcher_options *options, char *err,
                             size_t err_len)
{
    int rc;
    if (options->record_file) {
        rc = record_open(&w->record, options->record_file, err, err_len);
        if (rc < 0) {
            kube_config *kube = options->kube;
            kube_config_destroy(&kube);
            return rc;
        }
    }
    rc = kube_client_new(&w->kube, options->kube, err, err_len);
    if (rc < 0)
        return rc;
    reflector_options ropts = {.client = w->kube,
                               .pub = w->pub,
                               .record = w->record,
                               .idle_ms = options->watch_idle_ms,
                               .rediscover_ms = options->rediscover_ms};
    rc = reflector_set_new(&w->reflectors, &ropts);
    rc = rc ?: kube_status_new(&w->kube_status, w->kube);
    if (rc < 0)
        snprintf(err, err_len, "%s", kv_strerror(rc));
    return rc;
}

int watcher_new(watcher_t **out, void *zmq_ctx, const kv_config *cfg,
                const watcher_options *options, char *err, size_t err_len)
{
    watcher_t *w = calloc(1, sizeof *w);
    kube_config *kube = options->kube;
    replay_options replay_opts = {.follow = options->follow, .max_line = options->max_line};
    int rc;

    *out = NULL;
    if (!w) {
        kube_config_destroy(&kube);
        return KV_ERR_NOMEM;
    }
    w->cfg = cfg;
    w->follow = options->follow || options->kube; /* live has no end of stream */
    w->batch = options->batch ? options->batch : WATCHER_BATCH;
    rc = bus_pub_new(&w->pub, zmq_ctx, cfg->k8s_publish, cfg->k8s_snapshot);
    if (rc < 0) {
        snprintf(err, err_len, "cannot bind %s and %s: %s", cfg->k8s_publish, cfg->k8s_snapshot,
                 zmq_strerror(errno));
        goto out_destroy;
    }
    w->status_pull = bus_socket_bind(zmq_ctx, ZMQ_PULL, cfg->status_endpoint);
    if (!w->status_pull) {
        rc = KV_ERR_IO;
        snprintf(err, err_len, "cannot bind %s: %s", cfg->status_endpoint, zmq_strerror(errno));
        goto out_destroy;
    }
    if (options->kube) {
        rc = watcher_open_live(w, options, err, err_len);
        kube = NULL; /* taken */
        if (rc < 0)
            goto out_destroy;
    } else if ((rc = replay_open(&w->replay, options->replay_file, &replay_opts)) < 0) {
        snprintf(err, err_len, "cannot open replay file %s: %s", options->replay_file,
                 strerror(errno));
        goto out_destroy;
    }
    if (options->status_file) {
        size_t n = strlen(options->status_file) + sizeof ".tmp";
        w->status_file = strdup(options->status_file);
        w->status_tmp = malloc(n);
        if (!w->status_file || !w->status_tmp) {
            rc = KV_ERR_NOMEM;
            snprintf(err, err_len, "%s", kv_strerror(rc));
            goto out_destroy;
        }
        snprintf(w->status_tmp, n, "%s.tmp", options->status_file);
    }
    if (w->kube)
        log_info("watching %s (%s); run id %llu", kube_client_config(w->kube)->server,
                 kube_client_config(w->kube)->origin, (unsigned long long)bus_pub_epoch(w->pub));
    else
        log_info("replaying %s%s; run id %llu", options->replay_file,
                 w->follow ? " (following)" : "", (unsigned long long)bus_pub_epoch(w->pub));
    *out = w;
    return KV_OK;

out_destroy:
    kube_config_destroy(&kube);
    watcher_destroy(&w);
    return rc;
}

void watcher_destroy(watcher_t **watcher_p)
{
    watcher_t *w = *watcher_p;
    if (!w)
        return;
    watcher_object_status *object, *object_tmp;
    HASH_ITER(hh, w->objects, object, object_tmp) {
        HASH_DEL(w->objects, object);
        object_status_free(object);
    }
    watcher_progress *progress, *progress_tmp;
    HASH_ITER(hh, w->progress, progress, progress_tmp) {
        HASH_DEL(w->progress, progress);
        free(progress->tenant);
        free(progress->last.last_error);
        free(progress);
    }
    replay_destroy(&w->replay);
    kube_status_destroy(&w->kube_status);
    reflector_set_destroy(&w->reflectors);
    kube_client_destroy(&w->kube);
    record_close(&w->record);
    bus_socket_close(&w->status_pull);
    bus_pub_destroy(&w->pub);
    free(w->status_file);
    free(w->status_tmp);
    free(w);
    *watcher_p = NULL;
}
