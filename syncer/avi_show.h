/* avi_show.h — `kavi-syncer --show`: what the controller holds for this
 * cluster, as a person reads it at a glance:
 *
 *   Virtual service  kavi-demo--ns-my-svc   VIP 10.10.10.100   TCP/80
 *     pool kavi-demo--ns-my-svc-TCP-80   health monitor System-TCP
 *       10.0.0.3:31080   k8s-cluster-worker   enabled
 *
 * virtual service → VIP (its vsvip) → pools (pool_ref, pool group members,
 * L4 policy rules, HTTP policy switching rules) → servers. Owned objects no
 * virtual service reaches are listed at the end. */
#ifndef KAVI_SYNCER_AVI_SHOW_H
#define KAVI_SYNCER_AVI_SHOW_H

#include <stdio.h>

#include "common/config.h"
#include "syncer/avi_session.h"

/* Reads the controller through `session` and prints to `out`. Returns 0, or
 * the failing request's kv_err (avi_session_error() says which). */
int avi_show_print(FILE *out, avi_session_t *session, const kv_config *cfg);

#endif
