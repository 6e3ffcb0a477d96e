/* l4_translator.h — a Service of type LoadBalancer → one Avi model.
 *
 * The model holds, in the order the syncer creates them: an HTTP health
 * monitor on the healthCheckNodePort (ETP Local, NodePort mode only), one
 * pool per service port, an L4 policy set selecting the pool by port, the
 * VsVip and the virtual service. Names and fields follow AKO
 * (ako.md §2.2, §2.6) so a cluster can move between AKO and kavi. */
#ifndef KAVI_PLANNER_L4_TRANSLATOR_H
#define KAVI_PLANNER_L4_TRANSLATOR_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "planner/store.h"
#include "proto/k8s.h"
#include "proto/model.h"

#define L4_NOTE_MAX 256

/* What one translation produced, for the planner's log lines. */
typedef struct {
    size_t pools;
    size_t servers;
    /* Why the model is absent or a pool is empty because of the Service
     * itself (e.g. a port without a nodePort); "" when there is nothing to
     * tell the user. */
    char note[L4_NOTE_MAX];
} l4_summary;

/* True for type LoadBalancer with loadBalancerClass unset or AKO's. */
bool l4_service_is_ours(const proto_service *svc);

/* The VS name "<clusterName>--<ns>-<name>"; -1 when it does not fit. */
int l4_vs_name(char *buf, size_t buf_len, const kv_config *cfg, const char *ns, const char *name);

/* Builds the model of `svc` in Avi tenant `tenant`. *out is NULL (and 0
 * returned) when the Service yields none: not ours, no ports, or a reason
 * written in summary->note. Negative only when memory runs out. */
int l4_translate(proto_model **out, l4_summary *summary, const kv_config *cfg, const store_t *store,
                 const proto_service *svc, const char *tenant);

#endif
