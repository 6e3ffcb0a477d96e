/*
 * k8ssim internals shared by its source files.
 *
 * Model: one mutex (sim->lock) guards everything below, including every
 * jansson refcount change on stored objects; one condition variable
 * (sim->wake, CLOCK_MONOTONIC) wakes the watch writers. Stored objects are
 * immutable once stored: a write stores a new json_t and the history keeps
 * the old one, which is what lets a paged list show the snapshot of its
 * first page and a watch resume from any resourceVersion still in history.
 * Every write takes the next value of one global resourceVersion counter.
 */
#ifndef K8SSIM_INTERNAL_H
#define K8SSIM_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "k8ssim.h"

#define K8SSIM_BODY_MAX (4u << 20)          /* request bodies (status writes) */
#define K8SSIM_WATCH_BACKLOG_MAX (64u << 20) /* unsent bytes per watch before it is cut */

enum k8ssim_feature { K8SSIM_CORE, K8SSIM_ROUTES, K8SSIM_GATEWAY };

struct k8ssim_resource {
    const char *group; /* "" for the core group */
    const char *version;
    const char *plural;
    const char *singular;
    const char *kind;
    bool namespaced;
    enum k8ssim_feature feature;
};

extern const struct k8ssim_resource k8ssim_resources[];
extern const size_t k8ssim_resource_count;

struct k8ssim_object {
    char *key;      /* "<resource index>/<namespace>/<name>": the list order */
    int resource;
    json_t *object; /* owned; immutable, replaced on every write */
    UT_hash_handle hh;
};

struct k8ssim_event {
    long rv;
    int resource;
    const char *type; /* "ADDED", "MODIFIED", "DELETED" */
    char *key;
    json_t *object;   /* after the write (DELETED: last state at the deletion's RV) */
    json_t *previous; /* before the write; NULL for ADDED */
};

/* One term of a label or field selector: key=value, key!=value, key, !key. */
struct k8ssim_selector_term {
    char *key;
    char *value; /* NULL: existence test */
    bool negate;
};

struct k8ssim_selector {
    struct k8ssim_selector_term *terms;
    size_t count;
};

/* What a list or watch asks for besides the resource. */
struct k8ssim_filter {
    char *ns; /* NULL: every namespace */
    struct k8ssim_selector fields;
    struct k8ssim_selector labels;
};

struct k8ssim_request {
    char *method, *path, *query, *auth;
    int status;
};

struct k8ssim_watch;

struct k8ssim {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct MHD_Daemon *daemon;
    int port;
    bool tls;
    bool client_ca;
    char *tls_cert_pem, *tls_key_pem, *client_ca_pem;
    char *token;
    int history_limit;
    int bookmark_interval_ms;
    _Atomic bool serve_routes, serve_gateway_api; /* changed at run time by a test */
    bool retry_after_http_date;
    bool end_watches_at_once;

    long rv;             /* last resourceVersion handed out */
    unsigned long uids;  /* uid counter */
    struct k8ssim_object *objects;
    struct k8ssim_event *history; /* ring of history_limit events */
    size_t history_head, history_len;
    long history_start_rv; /* history holds every event with rv > this */

    struct k8ssim_watch *watches; /* open watches (utlist, doubly linked) */
    bool stalled, split, shutting_down;
    int fail_status, fail_retry_after_s, fail_count;
    char fail_query[128]; /* "": any request; else only those whose query holds it */

    struct k8ssim_request *requests;
    size_t request_count, request_cap;
};

/* k8ssim.c */
const struct k8ssim_resource *k8ssim_resource_find(const char *group, const char *version,
                                                   const char *plural);
bool k8ssim_resource_served(const struct k8ssim *sim, const struct k8ssim_resource *res);
char *k8ssim_object_key(int resource, const char *ns, const char *name);
char *k8ssim_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t k8ssim_now_ms(void);
/* Stores object (stolen) under the resource's key, bumps the RV, records and
 * fans out the event. Lock held. Returns the new RV or <0. */
long k8ssim_store_put_locked(struct k8ssim *sim, int resource, json_t *object);
/* One object of a snapshot; both pointers borrowed from the store or history. */
struct k8ssim_item {
    const char *key;
    json_t *object;
};
/* Snapshot of one resource at rv (<= sim->rv), filtered, sorted by key; the
 * array is malloc'd, its items borrowed (valid while the lock is held).
 * -ESTALE when the history no longer reaches back to rv. Lock held. */
int k8ssim_snapshot_locked(struct k8ssim *sim, int resource, long rv,
                           const struct k8ssim_filter *filter, struct k8ssim_item **out,
                           size_t *count);
const struct k8ssim_event *k8ssim_history_at(const struct k8ssim *sim, size_t i);

/* Selectors */
int k8ssim_selector_parse(struct k8ssim_selector *out, const char *text);
void k8ssim_selector_free(struct k8ssim_selector *sel);
void k8ssim_filter_free(struct k8ssim_filter *filter);
bool k8ssim_filter_match(const struct k8ssim_filter *filter, const json_t *object);

/* k8ssim_http.c */
int k8ssim_http_start(struct k8ssim *sim, int port);
void k8ssim_http_stop(struct k8ssim *sim);
/* A metav1.Status body. Owned by the caller. */
json_t *k8ssim_status_new(int code, const char *reason, const char *message);
/* Queues body (stolen) as JSON with the status; a Retry-After header unless NULL. */
enum MHD_Result k8ssim_reply_json(struct MHD_Connection *conn, int status, json_t *body,
                                  const char *retry_after);

/* k8ssim_watch.c */
/* Starts a watch response for the resource from rv_text ("" / "0" = now, with
 * synthetic ADDED events); takes the filter. Lock NOT held. */
enum MHD_Result k8ssim_watch_start(struct k8ssim *sim, struct MHD_Connection *conn,
                                   const struct k8ssim_resource *res,
                                   struct k8ssim_filter *filter, const char *rv_text,
                                   bool bookmarks, long timeout_s, int *status);
/* Delivers one stored event to every open watch of its resource. Lock held. */
void k8ssim_watch_fan_out_locked(struct k8ssim *sim, const struct k8ssim_event *ev);
void k8ssim_watch_drop_all_locked(struct k8ssim *sim);

/* k8ssim_tls.c: client certificates and raw writes, through the GnuTLS
 * library libmicrohttpd already loaded (looked up at run time, so the
 * program needs no -lgnutls). */
/* The verified client certificate's CN, malloc'd, or NULL. */
char *k8ssim_tls_client_cn(struct MHD_Connection *conn);
/* Writes bytes on the connection behind libmicrohttpd's back (TLS or plain).
 * Returns 0 or <0. */
int k8ssim_tls_raw_write(struct MHD_Connection *conn, bool tls, const char *data, size_t len);

#endif
