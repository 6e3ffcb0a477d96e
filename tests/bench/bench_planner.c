/* bench_planner — how long the planner takes to turn a cluster into models,
 * and how little it redoes per change (make bench).
 *
 * A synthetic cluster: NODES nodes, SERVICES LoadBalancer Services (half
 * externalTrafficPolicy Local, half Cluster), each with one EndpointSlice of
 * ENDPOINTS pods on pseudo-random nodes. Measured: the first full recompute,
 * one EndpointSlice change, one Node change, and peak memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uthash.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "planner/planner.h"
#include "proto/k8s.h"

#define NODES 1000
#define SERVICES 1000
#define ENDPOINTS 3

/* Counts what a bus publisher would publish: a put whose bytes differ from
 * what the key held (compared by a 64-bit FNV-1a of the body). */
typedef struct published {
    char *key;
    uint64_t hash;
    UT_hash_handle hh;
} published;

typedef struct {
    published *held;
    size_t puts;
    size_t bytes;
} counting_sink;

static uint64_t fnv1a64(const void *data, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ ((const uint8_t *)data)[i]) * 1099511628211ull;
    return h;
}

static int sink_put(void *ctx, const char *stream, const char *key, const void *body, size_t len)
{
    (void)stream;
    counting_sink *s = ctx;
    published *p = NULL;
    uint64_t hash = fnv1a64(body, len);
    HASH_FIND_STR(s->held, key, p);
    if (p && p->hash == hash)
        return 0;
    if (!p) {
        p = calloc(1, sizeof *p);
        p->key = strdup(key);
        HASH_ADD_KEYPTR(hh, s->held, p->key, strlen(p->key), p);
    }
    p->hash = hash;
    s->puts++;
    s->bytes += len;
    return 1;
}

static void sink_free(counting_sink *s)
{
    published *p, *tmp;
    HASH_ITER(hh, s->held, p, tmp) {
        HASH_DEL(s->held, p);
        free(p->key);
        free(p);
    }
}

static int sink_remove(void *ctx, const char *stream, const char *key)
{
    (void)ctx;
    (void)stream;
    (void)key;
    return 0;
}

static void sink_foreach(void *ctx, const char *stream, bus_key_fn fn, void *payload)
{
    (void)ctx;
    (void)stream;
    (void)fn;
    (void)payload;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Hands one PUT to the planner; the event owns copies of key and body. */
static void apply_put(planner_t *planner, const char *key, void *body, size_t len)
{
    bus_event ev = {.type = BUS_PUT};
    ev.env.kind = PROTO_PUT;
    ev.env.stream = strdup("k8s");
    ev.env.key = strdup(key);
    ev.env.body = body;
    ev.env.body_len = len;
    planner_apply(planner, &ev, 0);
    bus_event_clear(&ev);
}

static void put_node(planner_t *planner, int i, const char *extra_label)
{
    char name[32], ip[32];
    snprintf(name, sizeof name, "node-%04d", i);
    snprintf(ip, sizeof ip, "10.%d.%d.%d", i / 65536, (i / 256) % 256, i % 256);
    proto_label labels[] = {{"kubernetes.io/hostname", name}, {"bench", (char *)extra_label}};
    proto_node node = {.name = name, .internal_ipv4 = ip, .labels = labels, .n_labels = 2};
    void *body;
    size_t len;
    char key[64];
    proto_node_encode(&node, &body, &len);
    proto_k8s_key(key, sizeof key, "Node", NULL, name);
    apply_put(planner, key, body, len);
}

static void put_node_deleting(planner_t *planner, int i)
{
    char name[32], ip[32], key[64];
    snprintf(name, sizeof name, "node-%04d", i);
    snprintf(ip, sizeof ip, "10.%d.%d.%d", i / 65536, (i / 256) % 256, i % 256);
    proto_node node = {.name = name, .internal_ipv4 = ip, .deleting = true};
    void *body;
    size_t len;
    proto_node_encode(&node, &body, &len);
    proto_k8s_key(key, sizeof key, "Node", NULL, name);
    apply_put(planner, key, body, len);
}

static void put_service(planner_t *planner, int i)
{
    char name[32];
    snprintf(name, sizeof name, "svc-%04d", i);
    proto_service_port port = {.name = "", .protocol = "TCP", .port = 80,
                               .node_port = 30000 + i % 2000, .target_port = 8080};
    proto_service svc = {.namespace = "bench", .name = name, .type = "LoadBalancer",
                         .external_traffic_local = i % 2 == 0,
                         .health_check_node_port = i % 2 == 0 ? 32000 + i % 700 : 0,
                         .ports = &port, .n_ports = 1};
    void *body;
    size_t len;
    char key[64];
    proto_service_encode(&svc, &body, &len);
    proto_k8s_key(key, sizeof key, "Service", "bench", name);
    apply_put(planner, key, body, len);
}

static void put_slice(planner_t *planner, int i, int shift)
{
    char name[40], service[32], addresses[ENDPOINTS][32], nodes[ENDPOINTS][32];
    proto_endpoint endpoints[ENDPOINTS];
    snprintf(name, sizeof name, "svc-%04d-abcde", i);
    snprintf(service, sizeof service, "svc-%04d", i);
    for (int e = 0; e < ENDPOINTS; e++) {
        int node = (i * 7919 + e * 104729 + shift) % NODES;
        snprintf(addresses[e], sizeof addresses[e], "192.168.%d.%d", (i * ENDPOINTS + e) / 256 % 256,
                 (i * ENDPOINTS + e) % 256);
        snprintf(nodes[e], sizeof nodes[e], "node-%04d", node);
        endpoints[e] = (proto_endpoint){.address = addresses[e], .node_name = nodes[e],
                                        .ready = true, .serving = true};
    }
    proto_slice_port port = {.name = "", .protocol = "TCP", .port = 8080};
    proto_endpoint_slice slice = {.namespace = "bench", .name = name, .service_name = service,
                                  .address_type = "IPv4", .ports = &port, .n_ports = 1,
                                  .endpoints = endpoints, .n_endpoints = ENDPOINTS};
    void *body;
    size_t len;
    char key[80];
    proto_endpoint_slice_encode(&slice, &body, &len);
    proto_k8s_key(key, sizeof key, "EndpointSlice", "bench", name);
    apply_put(planner, key, body, len);
}

/* Flushes until nothing is due; returns the microseconds it took. */
static double flush_all(planner_t *planner)
{
    double start = now_us();
    /* Slice after slice (planner.h) until nothing is due. */
    while (planner_timeout_ms(planner, INT64_MAX / 2) >= 0 &&
           planner_flush(planner, INT64_MAX / 2) >= 0 &&
           (planner_is_flushing(planner) || planner_timeout_ms(planner, INT64_MAX / 2) == 0))
        ;
    return now_us() - start;
}

int main(void)
{
    char err[256];
    kv_config *cfg = NULL;
    log_init("bench", LOG_ERROR);
    if (config_load_string(&cfg, "clusterName: bench\nserviceType: NodePort\n", "bench", err,
                           sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    counting_sink counts = {0};
    planner_sink sink = {sink_put, sink_remove, sink_foreach, &counts};
    planner_t *planner = NULL;
    if (planner_new(&planner, cfg, &sink) != 0)
        return 1;

    double start = now_us();
    for (int i = 0; i < NODES; i++)
        put_node(planner, i, "a");
    for (int i = 0; i < SERVICES; i++) {
        put_service(planner, i);
        put_slice(planner, i, 0);
    }
    static const char *const kinds[] = {"!synced/Node", "!synced/Service", "!synced/EndpointSlice",
                                        "!synced/Namespace"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        apply_put(planner, kinds[k], malloc(1), 0);
    bus_event consistent = {.type = BUS_CONSISTENT};
    planner_apply(planner, &consistent, 0);
    double ingest = now_us() - start;
    double full = flush_all(planner);
    printf("planner: ingest %d nodes, %d services, %d slices: %.1f ms\n", NODES, SERVICES, SERVICES,
           ingest / 1000);
    printf("planner: first full recompute: %.1f ms, %zu models, %.1f MB of model messages\n",
           full / 1000, counts.puts, counts.bytes / 1e6);

    counts.puts = counts.bytes = 0;
    put_slice(planner, 2, 1); /* a Local service's pods move */
    double slice_us = flush_all(planner);
    printf("planner: one EndpointSlice change (Local service): %.0f us, %zu model(s) republished\n",
           slice_us, counts.puts);

    counts.puts = counts.bytes = 0;
    put_node(planner, 17, "b"); /* a label no pool looks at */
    double label_us = flush_all(planner);
    printf("planner: one Node label change no pool depends on: %.0f us, %zu model(s) republished\n",
           label_us, counts.puts);

    counts.puts = counts.bytes = 0;
    put_node_deleting(planner, 17); /* the node starts draining */
    double node_us = flush_all(planner);
    printf("planner: one Node starts deletion: %.1f ms, %zu model(s) republished "
           "(every Cluster service, plus Local ones with pods there)\n",
           node_us / 1000, counts.puts);

    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("planner: peak RSS %.1f MB\n", usage.ru_maxrss / 1024.0);
    planner_destroy(&planner);
    sink_free(&counts);
    config_destroy(&cfg);
    return 0;
}
