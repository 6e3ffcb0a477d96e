/*
 * k8ssim watch streams.
 *
 * Each watch is a libmicrohttpd callback response of unknown size, so it goes
 * out chunked. The daemon runs one thread per connection, so the content
 * reader may block: it sleeps on sim->wake until its backlog has bytes, a
 * bookmark or the timeout is due, or a fault or shutdown needs it. Writers
 * (apply, delete, status patches) render each event into the backlog of every
 * open watch of that resource while holding the lock, so a watch never misses
 * an event between its catch-up from history and going live, and forgetting
 * the history later does not touch watches already open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utlist.h>

#include "k8ssim_internal.h"

#define WATCH_BLOCK_SIZE (32 * 1024)
#define CUT_PIECE_MAX 200
#define HANGUP_CHECK_MS 250

struct k8ssim_watch {
    struct k8ssim *sim;
    struct MHD_Connection *connection;
    int resource;
    struct k8ssim_filter filter;
    bool bookmarks;
    int64_t deadline_ms; /* 0: no timeoutSeconds */
    int64_t next_bookmark_ms;
    char *buf; /* rendered events not yet handed to libmicrohttpd */
    size_t off, len, cap;
    bool open;       /* on sim->watches, receiving events */
    bool ending;     /* end cleanly once the backlog is sent */
    bool dropped;    /* k8ssim_drop_watches(), or backlog overflow */
    bool abort_next; /* a cut piece went out as a normal chunk; abort now */
    unsigned pieces; /* split-writes sequence */
    struct k8ssim_watch *prev, *next;
};

static int backlog_add(struct k8ssim_watch *w, const char *data, size_t len)
{
    if (w->off && w->off == w->len) {
        w->off = 0;
        w->len = 0;
    }
    if (w->len + len > K8SSIM_WATCH_BACKLOG_MAX)
        return -ENOSPC;
    if (w->len + len > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + len)
            cap *= 2;
        char *grown = realloc(w->buf, cap);
        if (!grown)
            return -ENOMEM;
        w->buf = grown;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, data, len);
    w->len += len;
    return 0;
}

/* One line {"type":T,"object":{...}}\n, compact like the apiserver's encoder. */
static int backlog_add_event(struct k8ssim_watch *w, const char *type, const json_t *object)
{
    char *text = json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *line = text ? k8ssim_strdupf("{\"type\":\"%s\",\"object\":%s}\n", type, text) : NULL;
    int rc = line ? backlog_add(w, line, strlen(line)) : -ENOMEM;
    free(line);
    free(text);
    return rc;
}

/* A BOOKMARK object carries only kind, apiVersion and resourceVersion. */
static int backlog_add_bookmark(struct k8ssim_watch *w, long rv)
{
    const struct k8ssim_resource *res = &k8ssim_resources[w->resource];
    char api_version[128], rv_text[32];
    if (*res->group)
        snprintf(api_version, sizeof(api_version), "%s/%s", res->group, res->version);
    else
        snprintf(api_version, sizeof(api_version), "%s", res->version);
    snprintf(rv_text, sizeof(rv_text), "%ld", rv);
    json_t *object = json_pack("{s:s,s:s,s:{s:s}}", "kind", res->kind, "apiVersion", api_version,
                               "metadata", "resourceVersion", rv_text);
    int rc = object ? backlog_add_event(w, "BOOKMARK", object) : -ENOMEM;
    json_decref(object);
    return rc;
}

static void watch_close_locked(struct k8ssim_watch *w)
{
    if (w->open) {
        DL_DELETE(w->sim->watches, w);
        w->open = false;
    }
}

/* A selector turns an object that starts matching into ADDED and one that
 * stops matching into DELETED, as the apiserver does. NULL: not for us. */
static const char *event_type_for(const struct k8ssim_watch *w, const struct k8ssim_event *ev)
{
    bool before = ev->previous && k8ssim_filter_match(&w->filter, ev->previous);
    if (!strcmp(ev->type, "DELETED"))
        return before ? "DELETED" : NULL;
    bool now = k8ssim_filter_match(&w->filter, ev->object);
    if (now)
        return before ? "MODIFIED" : "ADDED";
    return before ? "DELETED" : NULL;
}

static int watch_deliver_locked(struct k8ssim_watch *w, const struct k8ssim_event *ev)
{
    if (ev->resource != w->resource)
        return 0;
    const char *type = event_type_for(w, ev);
    return type ? backlog_add_event(w, type, ev->object) : 0;
}

void k8ssim_watch_fan_out_locked(struct k8ssim *sim, const struct k8ssim_event *ev)
{
    struct k8ssim_watch *w, *tmp;
    DL_FOREACH_SAFE(sim->watches, w, tmp)
    {
        /* A watcher that cannot keep up is cut off, as the apiserver does. */
        if (watch_deliver_locked(w, ev) < 0) {
            watch_close_locked(w);
            w->dropped = true;
        }
    }
    pthread_cond_broadcast(&sim->wake);
}

void k8ssim_watch_drop_all_locked(struct k8ssim *sim)
{
    struct k8ssim_watch *w, *tmp;
    DL_FOREACH_SAFE(sim->watches, w, tmp)
    {
        watch_close_locked(w);
        w->dropped = true;
    }
}

/* With split writes on, pieces alternate between a few bytes (so events
 * straddle chunk boundaries) and everything pending (so several events share
 * a chunk). */
static size_t next_piece_len(struct k8ssim_watch *w, size_t pending, size_t max)
{
    size_t n = pending < max ? pending : max;
    if (w->sim->split && (w->pieces++ % 2) == 0) {
        size_t small = 1 + (w->pieces * 7) % 13;
        if (small < n)
            n = small;
    }
    return n;
}

static void wait_until(struct k8ssim *sim, int64_t until_ms)
{
    struct timespec ts = {.tv_sec = until_ms / 1000, .tv_nsec = (long)(until_ms % 1000) * 1000000};
    pthread_cond_timedwait(&sim->wake, &sim->lock, &ts);
}

/* libmicrohttpd only notices a client that went away when it next writes, and
 * an idle watch writes nothing; so the writer looks at the socket itself. */
static bool peer_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info)
        return false;
    struct pollfd pfd = {.fd = info->connect_fd, .events = POLLRDHUP};
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static ssize_t watch_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct k8ssim_watch *w = cls;
    struct k8ssim *sim = w->sim;
    char cut[CUT_PIECE_MAX + 32];
    size_t cut_len = 0, cut_data_len = 0;
    ssize_t result;
    (void)pos;

    pthread_mutex_lock(&sim->lock);
    for (;;) {
        int64_t now = k8ssim_now_ms();
        int64_t until = 0;
        if (sim->shutting_down || w->abort_next) {
            result = MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        if (w->dropped) {
            /* Cut mid-event: a chunk header announcing more bytes than follow,
             * then half of the next event (or of a made-up one). */
            static const char filler[] = "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Service\"";
            const char *data = filler;
            size_t len = sizeof(filler) - 1;
            if (w->len > w->off) {
                data = w->buf + w->off;
                len = (w->len - w->off + 1) / 2;
            }
            if (len > CUT_PIECE_MAX)
                len = CUT_PIECE_MAX;
            int head = snprintf(cut, sizeof(cut), "%zx\r\n", len * 2 + 64);
            memcpy(cut + head, data, len);
            cut_len = (size_t)head + len;
            cut_data_len = len;
            result = MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        if (!sim->stalled) {
            if (w->open && w->deadline_ms && now >= w->deadline_ms) {
                watch_close_locked(w);
                /* The apiserver tries to send a bookmark just before a timeout. */
                if (w->bookmarks)
                    backlog_add_bookmark(w, sim->rv);
                w->ending = true;
            }
            if (w->len > w->off) {
                size_t n = next_piece_len(w, w->len - w->off, max);
                memcpy(out, w->buf + w->off, n);
                w->off += n;
                result = (ssize_t)n;
                break;
            }
            if (w->ending) {
                result = MHD_CONTENT_READER_END_OF_STREAM;
                break;
            }
            if (w->bookmarks && now >= w->next_bookmark_ms) {
                /* The backlog is empty: every event up to sim->rv went out. */
                backlog_add_bookmark(w, sim->rv);
                w->next_bookmark_ms = now + sim->bookmark_interval_ms;
                continue;
            }
            if (w->bookmarks)
                until = w->next_bookmark_ms;
            if (w->deadline_ms && (!until || w->deadline_ms < until))
                until = w->deadline_ms;
        }
        if (peer_gone(w->connection)) {
            result = MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        if (!until || until > now + HANGUP_CHECK_MS)
            until = now + HANGUP_CHECK_MS;
        wait_until(sim, until);
    }
    bool tls = sim->tls;
    pthread_mutex_unlock(&sim->lock);

    if (cut_len && k8ssim_tls_raw_write(w->connection, tls, cut, cut_len) < 0) {
        /* No raw access: send the half event as an ordinary chunk instead and
         * abort on the next call. */
        size_t n = cut_data_len < max ? cut_data_len : max;
        memcpy(out, cut + (cut_len - cut_data_len), n);
        pthread_mutex_lock(&sim->lock);
        w->abort_next = true;
        pthread_mutex_unlock(&sim->lock);
        return (ssize_t)n;
    }
    return result;
}

static void watch_free(void *cls)
{
    struct k8ssim_watch *w = cls;
    pthread_mutex_lock(&w->sim->lock);
    watch_close_locked(w);
    pthread_mutex_unlock(&w->sim->lock);
    k8ssim_filter_free(&w->filter);
    free(w->buf);
    free(w);
}

static enum MHD_Result reply_too_large(struct MHD_Connection *conn, long wanted, long current)
{
    char message[128];
    snprintf(message, sizeof(message), "Too large resource version: %ld, current: %ld", wanted,
             current);
    json_t *status = k8ssim_status_new(504, "Timeout", message);
    json_object_set_new(status, "details",
                        json_pack("{s:[{s:s,s:s}],s:i}", "causes", "type",
                                  "ResourceVersionTooLarge", "message",
                                  "Too large resource version", "retryAfterSeconds", 1));
    return k8ssim_reply_json(conn, 504, status, "1");
}

enum MHD_Result k8ssim_watch_start(struct k8ssim *sim, struct MHD_Connection *conn,
                                   const struct k8ssim_resource *res,
                                   struct k8ssim_filter *filter, const char *rv_text,
                                   bool bookmarks, long timeout_s, int *status)
{
    struct k8ssim_watch *w = NULL;
    struct MHD_Response *response = NULL;
    long from = 0;
    bool from_now = !rv_text || !*rv_text || !strcmp(rv_text, "0");
    int rc = 0;

    if (!from_now) {
        char *end = NULL;
        errno = 0;
        from = strtol(rv_text, &end, 10);
        if (errno || !end || *end || from < 0) {
            k8ssim_filter_free(filter);
            *status = 400;
            return k8ssim_reply_json(conn, 400,
                                     k8ssim_status_new(400, "BadRequest",
                                                       "invalid resourceVersion"),
                                     NULL);
        }
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        k8ssim_filter_free(filter);
        return MHD_NO;
    }
    w->sim = sim;
    w->connection = conn;
    w->resource = (int)(res - k8ssim_resources);
    w->filter = *filter;
    memset(filter, 0, sizeof(*filter));
    w->bookmarks = bookmarks;

    pthread_mutex_lock(&sim->lock);
    long current = sim->rv;
    int64_t now = k8ssim_now_ms();
    w->deadline_ms = timeout_s > 0 ? now + timeout_s * 1000 : 0;
    w->next_bookmark_ms = now + sim->bookmark_interval_ms;
    if (!from_now && from > current) {
        pthread_mutex_unlock(&sim->lock);
        watch_free(w);
        *status = 504;
        return reply_too_large(conn, from, current);
    }
    if (from_now) {
        /* "Start at most recent": synthetic ADDED for what exists now. */
        struct k8ssim_item *items = NULL;
        size_t count = 0;
        rc = k8ssim_snapshot_locked(sim, w->resource, current, &w->filter, &items, &count);
        for (size_t i = 0; rc == 0 && i < count; i++)
            rc = backlog_add_event(w, "ADDED", items[i].object);
        free(items);
        w->open = true;
    } else if (from < sim->history_start_rv) {
        /* Admitted, then one ERROR event and the end: the apiserver reports
         * post-admission watch failures in the stream, not as a status. */
        char message[128];
        snprintf(message, sizeof(message), "too old resource version: %ld (%ld)", from,
                 sim->history_start_rv);
        json_t *err = k8ssim_status_new(410, "Expired", message);
        rc = err ? backlog_add_event(w, "ERROR", err) : -ENOMEM;
        json_decref(err);
        w->ending = true;
    } else if (sim->end_watches_at_once) {
        w->ending = true; /* 200, then the end: no event, no bookmark */
    } else {
        for (size_t i = 0; rc == 0 && i < sim->history_len; i++) {
            const struct k8ssim_event *ev = k8ssim_history_at(sim, i);
            if (ev->rv > from)
                rc = watch_deliver_locked(w, ev);
        }
        w->open = true;
    }
    if (rc == 0 && w->open)
        DL_APPEND(sim->watches, w);
    else
        w->open = false;
    pthread_mutex_unlock(&sim->lock);
    if (rc < 0) {
        watch_free(w);
        return MHD_NO;
    }

    response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, WATCH_BLOCK_SIZE, watch_read,
                                                 w, watch_free);
    if (!response) {
        watch_free(w);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, private");
    *status = 200;
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return ret;
}
