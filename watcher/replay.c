/* replay.c — see replay.h. The file is read in 64 KiB chunks into a line
 * buffer with a hard cap (curl's dynbuf idea: past the cap the line is
 * dropped, not grown). Complete lines go to the format's handler: a watch
 * event line becomes one event; manifest lines accumulate into a document
 * that is split off at "---"/"..." lines (YAML forbids those at column 0
 * inside any scalar, so splitting there is exact) and parsed on its own, so
 * one malformed document costs only itself. Events wait in a small queue
 * because one List document can stand for many objects. */
#include "watcher/replay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dynbuf.h"
#include "common/error.h"
#include "common/log.h"
#include "watcher/manifest.h"

#define REPLAY_CHUNK (64 * 1024)

typedef enum {
    REPLAY_FORMAT_UNKNOWN = 0, /* nothing but blank lines so far */
    REPLAY_FORMAT_WATCH_EVENTS,
    REPLAY_FORMAT_MANIFESTS,
} replay_format;

struct replay {
    char *path;
    int fd;
    bool follow;
    size_t max_line;
    replay_format format;

    char *chunk; /* REPLAY_CHUNK bytes read from the file */
    size_t chunk_pos, chunk_len;
    off_t offset; /* bytes read from the file so far */

    dynbuf line;           /* the line being assembled, without its '\n' */
    bool line_consumed;    /* line was handed out; clear it before reading on */
    bool line_too_long;    /* dropping the rest of an over-long line */
    unsigned long line_no; /* lines completed so far */

    dynbuf doc;               /* manifest lines of the current document */
    unsigned long doc_line;   /* 1-based line where it starts */
    bool doc_has_content;     /* more than comments, directives and markers */
    bool doc_too_long;        /* dropping the current document */

    replay_event *queue;
    size_t queue_head, queue_len, queue_cap;

    bool reached_end;
    unsigned long errors;
};

static void replay_report(replay_t *r, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One warning per skipped line or document, "<file>:<line>: <reason>". */
static void replay_report(replay_t *r, unsigned long line, const char *fmt, ...)
{
    char reason[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(reason, sizeof reason, fmt, args);
    va_end(args);
    log_warn("%s:%lu: %s", r->path, line, reason);
    r->errors++;
}

/* ---- event queue ---------------------------------------------------------- */

/* Queues an event; takes the reference to object. */
static int enqueue(replay_t *r, replay_event_type type, json_t *object, unsigned long line)
{
    if (r->queue_head == r->queue_len) {
        r->queue_head = 0;
        r->queue_len = 0;
    }
    if (r->queue_len == r->queue_cap) {
        size_t cap = r->queue_cap ? 2 * r->queue_cap : 16;
        replay_event *grown = realloc(r->queue, cap * sizeof *grown);
        if (!grown) {
            json_decref(object);
            return KV_ERR_NOMEM;
        }
        r->queue = grown;
        r->queue_cap = cap;
    }
    r->queue[r->queue_len++] = (replay_event){.type = type, .object = object, .line = line};
    return KV_OK;
}

static bool dequeue(replay_t *r, replay_event *ev)
{
    if (r->queue_head == r->queue_len)
        return false;
    *ev = r->queue[r->queue_head++];
    return true;
}

/* ---- watch events ------------------------------------------------------- */

static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

static int handle_watch_line(replay_t *r, const char *line, size_t len)
{
    json_error_t error;
    const char *type = NULL;
    replay_event_type event_type;
    int rc = KV_OK;

    if (is_blank(line, len))
        return KV_OK;
    json_t *root = json_loadb(line, len, 0, &error);
    if (!root) {
        replay_report(r, r->line_no, "invalid JSON at column %d: %s", error.column, error.text);
        return KV_OK;
    }
    json_t *type_value = json_object_get(root, "type");
    json_t *object = json_object_get(root, "object");
    type = json_string_value(type_value);
    if (!json_is_object(root) || !type) {
        replay_report(r, r->line_no, "not a watch event: \"type\" must be a string");
        goto out_release;
    }
    if (strcmp(type, "BOOKMARK") == 0)
        goto out_release; /* only a resourceVersion; nothing changed */
    if (strcmp(type, "ERROR") == 0) {
        const char *message = json_string_value(json_object_get(object, "message"));
        replay_report(r, r->line_no, "watch ERROR event: %s", message ? message : "(no message)");
        goto out_release;
    }
    if (strcmp(type, "ADDED") == 0) {
        event_type = REPLAY_ADDED;
    } else if (strcmp(type, "MODIFIED") == 0) {
        event_type = REPLAY_MODIFIED;
    } else if (strcmp(type, "DELETED") == 0) {
        event_type = REPLAY_DELETED;
    } else {
        replay_report(r, r->line_no, "unknown watch event type \"%s\"", type);
        goto out_release;
    }
    if (!json_is_object(object)) {
        replay_report(r, r->line_no, "%s event: \"object\" must be an object", type);
        goto out_release;
    }
    rc = enqueue(r, event_type, json_incref(object), r->line_no);

out_release:
    json_decref(root);
    return rc;
}

/* ---- manifests ---------------------------------------------------------- */

/* kubectl puts an object without metadata.namespace into "default"; do the
 * same for the namespaced kinds kavi projects, so a hand-written manifest
 * means what it would mean to `kubectl apply`. */
static int default_namespace(json_t *object)
{
    const char *kind = json_string_value(json_object_get(object, "kind"));
    json_t *metadata = json_object_get(object, "metadata");
    if (!kind || !json_is_object(metadata) || json_object_get(metadata, "namespace"))
        return KV_OK;
    if (strcmp(kind, "Service") != 0 && strcmp(kind, "EndpointSlice") != 0)
        return KV_OK;
    return json_object_set_new(metadata, "namespace", json_string("default")) == 0
               ? KV_OK
               : KV_ERR_NOMEM;
}

/* Items of a typed list (ServiceList) carry no kind or apiVersion of their
 * own: they inherit them from the list. */
static int add_list_items(replay_t *r, json_t *list, const char *list_kind, unsigned long line)
{
    json_t *items = json_object_get(list, "items"), *item;
    json_t *api_version = json_object_get(list, "apiVersion");
    size_t kind_len = strlen(list_kind) - strlen("List");
    size_t i;
    int rc = KV_OK;

    json_array_foreach(items, i, item) {
        if (!json_is_object(item)) {
            replay_report(r, line, "items[%zu] is not a mapping, skipped", i);
            continue;
        }
        if (kind_len && !json_object_get(item, "kind")) {
            rc = json_object_set_new(item, "kind", json_stringn(list_kind, kind_len));
            if (rc == 0 && json_is_string(api_version))
                rc = json_object_set(item, "apiVersion", api_version);
            if (rc != 0)
                return KV_ERR_NOMEM;
        }
        rc = default_namespace(item);
        rc = rc ?: enqueue(r, REPLAY_ADDED, json_incref(item), line);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* manifest_parse callback: one document, root owned here. */
static int on_document(json_t *root, unsigned long line, void *payload)
{
    replay_t *r = payload;
    unsigned long file_line = r->doc_line + line;
    int rc = KV_OK;

    if (!root || json_is_null(root))
        goto out_release; /* an empty document */
    if (!json_is_object(root)) {
        replay_report(r, file_line, "the document is not a mapping, skipped");
        goto out_release;
    }
    const char *kind = json_string_value(json_object_get(root, "kind"));
    if (kind && ends_with(kind, "List") && json_is_array(json_object_get(root, "items"))) {
        rc = add_list_items(r, root, kind, file_line);
        goto out_release;
    }
    rc = default_namespace(root);
    if (rc < 0)
        goto out_release;
    return enqueue(r, REPLAY_ADDED, root, file_line);

out_release:
    json_decref(root);
    return rc;
}

static void document_reset(replay_t *r)
{
    dynbuf_reset(&r->doc);
    r->doc_has_content = false;
    r->doc_too_long = false;
}

static int flush_document(replay_t *r)
{
    manifest_error error;
    int rc = KV_OK;
    if (r->doc_has_content && !r->doc_too_long) {
        rc = manifest_parse(r->doc.data, r->doc.len, on_document, r, &error);
        if (rc == KV_ERR_INVALID) {
            replay_report(r, r->doc_line + error.line, "%s; document skipped", error.reason);
            rc = KV_OK;
        }
    }
    document_reset(r);
    return rc;
}

/* "---" or "..." alone or followed by a space: a document boundary. */
static bool is_marker(const char *line, size_t len, const char *marker)
{
    return len >= 3 && memcmp(line, marker, 3) == 0 &&
           (len == 3 || line[3] == ' ' || line[3] == '\t');
}

/* Whether a line holds YAML content, not just layout. */
static bool has_content(const char *line, size_t len)
{
    size_t i = 0;
    if (is_marker(line, len, "..."))
        return false;
    if (is_marker(line, len, "---"))
        i = 3; /* "--- value" starts a document with content */
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len || line[i] == '#')
        return false;
    return !(i == 0 && line[0] == '%'); /* a directive */
}

static int handle_manifest_line(replay_t *r, const char *line, size_t len)
{
    bool starts = is_marker(line, len, "---");
    bool ends = is_marker(line, len, "...");
    int rc;

    if (starts && (r->doc_has_content || r->doc_too_long)) {
        rc = flush_document(r);
        if (rc < 0)
            return rc;
    }
    if (r->doc.len == 0 && !r->doc_too_long)
        r->doc_line = r->line_no;
    if (!r->doc_too_long) {
        rc = dynbuf_append(&r->doc, line, len);
        rc = rc ?: dynbuf_append(&r->doc, "\n", 1);
        if (rc == KV_ERR_TOO_LARGE) {
            replay_report(r, r->doc_line, "document longer than %zu bytes, skipped",
                          r->max_line);
            dynbuf_reset(&r->doc);
            r->doc_too_long = true;
        } else if (rc < 0) {
            return rc;
        }
    }
    if (has_content(line, len))
        r->doc_has_content = true;
    return ends ? flush_document(r) : KV_OK;
}

/* ---- lines ------------------------------------------------------------ */

static int handle_line(replay_t *r, char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        line[--len] = '\0';
    if (r->line_no == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3; /* a UTF-8 byte order mark */
        len -= 3;
    }
    if (r->format == REPLAY_FORMAT_UNKNOWN) {
        size_t i = 0;
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len)
            return KV_OK;
        r->format = line[i] == '{' ? REPLAY_FORMAT_WATCH_EVENTS : REPLAY_FORMAT_MANIFESTS;
        log_debug("replay %s: %s", r->path,
                  r->format == REPLAY_FORMAT_WATCH_EVENTS ? "watch events" : "YAML manifests");
    }
    if (r->format == REPLAY_FORMAT_WATCH_EVENTS)
        return handle_watch_line(r, line, len);
    return handle_manifest_line(r, line, len);
}

/* Makes the next complete line available in r->line. Returns 1 when there is
 * one, 0 when the file has no more bytes now, or KV_ERR_IO. */
static int next_line(replay_t *r)
{
    if (r->line_consumed) {
        dynbuf_reset(&r->line);
        r->line_consumed = false;
    }
    for (;;) {
        if (r->chunk_pos == r->chunk_len) {
            ssize_t n = read(r->fd, r->chunk, REPLAY_CHUNK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return KV_ERR_IO;
            if (n == 0)
                return 0;
            r->chunk_pos = 0;
            r->chunk_len = (size_t)n;
            r->offset += n;
        }
        char *start = r->chunk + r->chunk_pos;
        size_t avail = r->chunk_len - r->chunk_pos;
        char *newline = memchr(start, '\n', avail);
        size_t take = newline ? (size_t)(newline - start) : avail;
        r->chunk_pos += take + (newline ? 1 : 0);
        if (!r->line_too_long) {
            int rc = dynbuf_append(&r->line, start, take);
            if (rc == KV_ERR_TOO_LARGE) {
                /* A manifest missing a line is another manifest: drop it. */
                bool in_document = r->format == REPLAY_FORMAT_MANIFESTS;
                replay_report(r, r->line_no + 1, "line longer than %zu bytes%s", r->max_line,
                              in_document ? "; document skipped" : ", skipped");
                dynbuf_reset(&r->line);
                r->line_too_long = true;
                if (in_document) {
                    dynbuf_reset(&r->doc);
                    r->doc_too_long = true;
                }
            } else if (rc < 0) {
                return rc;
            }
        }
        if (!newline)
            continue;
        r->line_no++;
        if (r->line_too_long) {
            r->line_too_long = false;
            continue;
        }
        r->line_consumed = true;
        return 1;
    }
}

/* Following a file that was truncated (rewritten from the start): read it
 * again from the top; unchanged objects publish nothing. */
static void check_truncation(replay_t *r)
{
    struct stat st;
    if (fstat(r->fd, &st) != 0 || st.st_size >= r->offset)
        return;
    log_warn("replay %s: the file was truncated, reading it from the start", r->path);
    lseek(r->fd, 0, SEEK_SET);
    r->offset = 0;
    r->chunk_pos = r->chunk_len = 0;
    dynbuf_reset(&r->line);
    r->line_consumed = false;
    r->line_too_long = false;
    r->line_no = 0;
    document_reset(r);
}

int replay_next(replay_t *r, replay_event *ev)
{
    memset(ev, 0, sizeof *ev);
    for (;;) {
        if (dequeue(r, ev))
            return 1;
        int rc = next_line(r);
        if (rc < 0) {
            log_error("replay %s: read failed: %s", r->path, strerror(errno));
            return rc;
        }
        if (rc == 1) {
            rc = handle_line(r, r->line.data, r->line.len);
            if (rc < 0)
                return rc;
            continue;
        }
        /* No more bytes for now. Without follow, a last line without its
         * newline is still a line; with follow, it waits for the rest. */
        if (!r->follow && r->line.len > 0) {
            r->line_no++;
            r->line_consumed = true;
            rc = handle_line(r, r->line.data, r->line.len);
            if (rc < 0)
                return rc;
            continue;
        }
        if (r->format == REPLAY_FORMAT_MANIFESTS && r->line.len == 0) {
            rc = flush_document(r);
            if (rc < 0)
                return rc;
            if (dequeue(r, ev))
                return 1;
        }
        if (!r->reached_end)
            log_debug("replay %s: end of file at line %lu", r->path, r->line_no);
        r->reached_end = true;
        if (r->follow)
            check_truncation(r);
        return 0;
    }
}

int replay_open(replay_t **out, const char *path, const replay_options *options)
{
    replay_t *r = calloc(1, sizeof *r);
    *out = NULL;
    if (!r)
        return KV_ERR_NOMEM;
    r->fd = -1;
    r->follow = options && options->follow;
    r->max_line = options && options->max_line ? options->max_line : REPLAY_MAX_LINE;
    dynbuf_init(&r->line, r->max_line);
    dynbuf_init(&r->doc, r->max_line);
    r->path = strdup(path);
    r->chunk = malloc(REPLAY_CHUNK);
    if (!r->path || !r->chunk) {
        replay_destroy(&r);
        return KV_ERR_NOMEM;
    }
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        int saved = errno;
        replay_destroy(&r);
        errno = saved;
        return KV_ERR_IO;
    }
    *out = r;
    return KV_OK;
}

void replay_destroy(replay_t **replay_p)
{
    replay_t *r = *replay_p;
    if (!r)
        return;
    replay_event ev;
    while (dequeue(r, &ev))
        replay_event_clear(&ev);
    if (r->fd >= 0)
        close(r->fd);
    dynbuf_free(&r->line);
    dynbuf_free(&r->doc);
    free(r->queue);
    free(r->chunk);
    free(r->path);
    free(r);
    *replay_p = NULL;
}

bool replay_reached_end(const replay_t *r) { return r->reached_end; }

const char *replay_path(const replay_t *r) { return r->path; }

unsigned long replay_errors(const replay_t *r) { return r->errors; }

void replay_event_clear(replay_event *ev)
{
    json_decref(ev->object);
    memset(ev, 0, sizeof *ev);
}

const char *replay_event_type_name(replay_event_type type)
{
    switch (type) {
    case REPLAY_ADDED: return "ADDED";
    case REPLAY_MODIFIED: return "MODIFIED";
    case REPLAY_DELETED: return "DELETED";
    }
    return "?";
}
