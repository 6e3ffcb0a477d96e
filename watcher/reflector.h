/* reflector.h — list+watch of every kind kavi reads, like client-go's
 * Reflector, publishing projections onto stream "k8s".
 *
 * One reflector per kind, all on one kube_client (one curl multi handle) in
 * the watcher's thread. Each one:
 *   1. waits for API discovery when its group is not core (GET /apis): an
 *      absent group (Routes off OpenShift, Gateway API not installed) is
 *      skipped with one info line and its kind counts as synced and empty;
 *   2. lists in pages (limit 500, following metadata.continue until it is
 *      empty, the same query with only continue changed), puts every item's
 *      projection, then deletes exactly the keys of its kind the publisher
 *      holds that the list did not have, then puts "!synced/<Kind>" (once);
 *   3. watches from the list's resourceVersion with bookmarks and a random
 *      timeoutSeconds in [300, 600], parsing the body as a byte stream;
 *      every event moves the last resourceVersion on;
 *   4. re-watches from the last resourceVersion after a clean end; backs off
 *      (800 ms doubling to 30 s, jittered; Retry-After honoured) after a
 *      dropped connection, 429, 5xx, 401 (credentials re-read), 403, or a
 *      watch that ended within 1 s with no event; relists after 410 (an
 *      ERROR event or a 410 reply); aborts a watch that brought no event or
 *      bookmark for idle_ms and watches again. */
#ifndef KAVI_WATCHER_REFLECTOR_H
#define KAVI_WATCHER_REFLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bus.h"
#include "watcher/kube_client.h"
#include "watcher/record.h"

#define REFLECTOR_PAGE_LIMIT 500
#define REFLECTOR_IDLE_MS 90000          /* default; env KAVI_WATCH_IDLE_MS overrides */
#define REFLECTOR_LINE_MAX ((size_t)16 << 20)
#define REFLECTOR_BACKOFF_INITIAL_MS 800
#define REFLECTOR_BACKOFF_MAX_MS 30000
#define REFLECTOR_REDISCOVER_MS 300000 /* an absent API group is looked for again this often */
#define REFLECTOR_SHORT_WATCH_MS 1000    /* a watch shorter than this with no event failed */
#define REFLECTOR_WATCH_TIMEOUT_MIN_S 300
#define REFLECTOR_WATCH_TIMEOUT_MAX_S 600

typedef struct reflector_set reflector_set_t;

typedef struct {
    kube_client_t *client; /* borrowed */
    bus_pub_t *pub;        /* borrowed */
    record_t *record;      /* borrowed; NULL: no recording */
    int64_t idle_ms;       /* 0: KAVI_WATCH_IDLE_MS, else REFLECTOR_IDLE_MS */
    int64_t rediscover_ms; /* 0: REFLECTOR_REDISCOVER_MS */
} reflector_options;

int reflector_set_new(reflector_set_t **out, const reflector_options *options);
void reflector_set_destroy(reflector_set_t **set);

/* Starts what is due (discovery, lists, watches after their backoff) and
 * aborts idle watches; returns ms until something is due again. */
int64_t reflector_set_step(reflector_set_t *set, int64_t now_ms);

/* Every kind has been listed once, or skipped as absent. */
bool reflector_set_synced(const reflector_set_t *set);

#endif
