/* kube_status.h — writes the VIPs syncers report back into each Service's
 * status.loadBalancer.ingress on the API server.
 *
 * The watcher hands over every object status it receives; for
 * "Service/<ns>/<name>" whose VIP list differs from what was last written,
 * this sends PATCH /api/v1/namespaces/<ns>/services/<name>/status with a
 * JSON merge patch (application/merge-patch+json) that replaces the whole
 * ingress list — an empty list when the VIPs were cleared. A failed write is
 * retried with backoff (Retry-After honoured); a Service that no longer
 * exists (404) is given up with one line. Only the newest wish per Service
 * is kept, so a burst of changes costs one write. */
#ifndef KAVI_WATCHER_KUBE_STATUS_H
#define KAVI_WATCHER_KUBE_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "watcher/kube_client.h"

#define KUBE_STATUS_MAX_IN_FLIGHT 8

typedef struct kube_status kube_status_t;

/* client is borrowed and must outlive the writer. */
int kube_status_new(kube_status_t **out, kube_client_t *client);
void kube_status_destroy(kube_status_t **status);

/* The VIPs object should show; objects other than Services are ignored. */
void kube_status_set(kube_status_t *s, const char *object, char *const *vips, size_t n_vips);

/* Starts the writes that are due; returns ms until one is due again. */
int64_t kube_status_step(kube_status_t *s, int64_t now_ms);

/* Writes acknowledged by the server (tests). */
unsigned long kube_status_written(const kube_status_t *s);

#endif
