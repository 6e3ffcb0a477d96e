/*
 * k8ssim — an in-process simulator of the Kubernetes API server's list/watch
 * surface, for the watcher's tests (no API server runs here).
 *
 * It serves the collections the watcher reads over real HTTP or HTTPS:
 * paged lists whose pages all show one snapshot, chunked watches resumable
 * from a resourceVersion, bookmarks, Service status merge patches, discovery,
 * bearer-token and client-certificate authentication, and faults on demand
 * (410 Expired, dropped and stalled watches, split writes, 429/5xx). It
 * records every request it got. Wire behaviour follows
 * shared/research/k8s.md §1 and §8.
 *
 * Functions returning int or long return >= 0 on success or a negative errno.
 */
#ifndef K8SSIM_H
#define K8SSIM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct k8ssim k8ssim_t;
typedef struct {
    int port;                   /* 0 = ephemeral, read back with k8ssim_port() */
    const char *tls_cert_file;  /* PEM server cert + key: HTTPS; both NULL: plain HTTP */
    const char *tls_key_file;
    const char *client_ca_file; /* set: a client certificate signed by this CA also authenticates */
    const char *token;          /* set: "Authorization: Bearer <token>" required (unless a valid client cert) */
    int history_limit;          /* watch events kept for resuming; an older resourceVersion gets 410 (default 1000) */
    int bookmark_interval_ms;   /* BOOKMARK on every open watch this often when allowWatchBookmarks=true (default 1000) */
    bool serve_routes;          /* serve route.openshift.io/v1 (OpenShift); default false → 404 and absent from /apis */
    bool serve_gateway_api;     /* serve gateway.networking.k8s.io/v1; default false */
    bool retry_after_http_date; /* Retry-After as an HTTP-date, not delay-seconds */
} k8ssim_options_t;
int  k8ssim_new(k8ssim_t **out, const k8ssim_options_t *opts);   /* serves on 127.0.0.1 */
int  k8ssim_port(const k8ssim_t *sim);
/* Creates or replaces an object given as JSON text exactly as a client would see it (apiVersion, kind,
   metadata.name, metadata.namespace for namespaced kinds). Assigns metadata.resourceVersion (one global
   counter, decimal string) and uid; emits ADDED or MODIFIED to open watches. Returns the new RV or <0. */
long k8ssim_apply(k8ssim_t *sim, const char *object_json);
long k8ssim_delete(k8ssim_t *sim, const char *kind, const char *ns, const char *name); /* DELETED event */
/* Faults, all take effect immediately: */
void k8ssim_expire_history(k8ssim_t *sim);      /* forget watch history: a watch from any older RV gets 200 + one ERROR event {code 410, reason Expired}, a paged list continue token gets HTTP 410 */
void k8ssim_drop_watches(k8ssim_t *sim);        /* close every open watch connection abruptly (mid-chunk if possible) */
void k8ssim_stall_watches(k8ssim_t *sim, bool stall); /* open watches send nothing at all (no events, no bookmarks) while true */
void k8ssim_serve_groups(k8ssim_t *sim, bool routes, bool gateway_api); /* install or remove the optional API groups now */
void k8ssim_end_watches_at_once(k8ssim_t *sim, bool on); /* while true, a watch from a resourceVersion is answered 200 and ends at once with no event (as a proxy cutting it) */
void k8ssim_split_writes(k8ssim_t *sim, bool split);  /* write watch events in small pieces so events straddle chunk boundaries and several share one */
void k8ssim_fail_next(k8ssim_t *sim, int status, int retry_after_s, int count); /* next `count` requests answered `status` (429 with Retry-After, or 5xx) with a metav1.Status body */
void k8ssim_fail_matching(k8ssim_t *sim, const char *query_contains, int status, int count); /* as k8ssim_fail_next, only for requests whose query holds query_contains (e.g. "continue=": every page after the first) */
void k8ssim_set_token(k8ssim_t *sim, const char *token); /* rotate the accepted token; requests with the old one get 401 */
/* What it got: */
char  *k8ssim_requests_json(k8ssim_t *sim);   /* malloc'd [{"method","path","query","auth":"bearer:<token>"|"cert:<CN>"|"none","status"}] */
size_t k8ssim_count_requests(k8ssim_t *sim, const char *path_prefix, const char *query_contains); /* NULL = any */
void   k8ssim_destroy(k8ssim_t **sim);

#endif
