#include "planner/loop.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "planner/planner.h"
#include "proto/envelope.h"

static int64_t earliest(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* Applies what the subscriber has; true when it stopped at the batch limit
 * with more possibly waiting. */
static bool drain_events(bus_sub_t *sub, planner_t *planner, int64_t now)
{
    bus_event ev;
    for (int i = 0; i < PLANNER_LOOP_EVENT_BATCH; i++) {
        if (bus_sub_next(sub, &ev, now) != 1)
            return false;
        planner_apply(planner, &ev, now);
        bus_event_clear(&ev);
    }
    return true;
}

int planner_loop_run(const kv_config *cfg, void *zmq_ctx, const atomic_int *stop,
                     planner_loop_stats *stats)
{
    bus_sub_t *sub = NULL;
    bus_pub_t *pub = NULL;
    planner_t *planner = NULL;
    planner_sink sink;
    bool more_input = false;
    int rc;

    rc = bus_sub_new(&sub, zmq_ctx, cfg->k8s_publish, cfg->k8s_snapshot, PROTO_STREAM_K8S);
    if (rc < 0) {
        log_error("planner: cannot connect to %s / %s: %s", cfg->k8s_publish, cfg->k8s_snapshot,
                  rc == KV_ERR_IO ? strerror(errno) : kv_strerror(rc));
        goto out_close;
    }
    rc = bus_pub_new(&pub, zmq_ctx, cfg->model_publish, cfg->model_snapshot);
    if (rc < 0) {
        log_error("planner: cannot bind %s / %s: %s", cfg->model_publish, cfg->model_snapshot,
                  rc == KV_ERR_IO ? strerror(errno) : kv_strerror(rc));
        goto out_close;
    }
    sink = planner_sink_for_bus(pub);
    rc = planner_new(&planner, cfg, &sink);
    if (rc < 0) {
        log_error("planner: cannot start: %s", kv_strerror(rc));
        goto out_close;
    }
    log_info("planner: reading k8s from %s, publishing %s on %s", cfg->k8s_publish,
             planner_stream(planner), cfg->model_publish);

    while (!atomic_load(stop)) {
        zmq_pollitem_t items[3];
        int64_t now = clock_now_ms();
        int n = bus_sub_pollitems(sub, items);
        items[n++] = (zmq_pollitem_t){.socket = bus_pub_snapshot_socket(pub), .events = ZMQ_POLLIN};
        int64_t wait = earliest(bus_sub_timeout_ms(sub, now), bus_pub_tick(pub, now));
        wait = earliest(wait, planner_timeout_ms(planner, now));
        if (more_input || wait < 0)
            wait = more_input ? 0 : PLANNER_LOOP_MAX_WAIT_MS;
        if (wait > PLANNER_LOOP_MAX_WAIT_MS)
            wait = PLANNER_LOOP_MAX_WAIT_MS;
        if (stats && planner_is_flushing(planner))
            atomic_fetch_add(&stats->polls_between_slices, 1);
        if (zmq_poll(items, n, (long)wait) < 0) {
            if (errno == EINTR)
                continue; /* a signal: the loop condition decides */
            log_error("planner: zmq_poll: %s", zmq_strerror(errno));
            rc = KV_ERR_IO;
            break;
        }
        now = clock_now_ms();
        if (items[n - 1].revents & ZMQ_POLLIN)
            bus_pub_serve(pub);
        more_input = drain_events(sub, planner, now);
        if (planner_flush(planner, clock_now_ms()) < 0)
            log_error("planner: publishing models failed; retrying");
        bus_pub_tick(pub, clock_now_ms());
    }

out_close:
    planner_destroy(&planner);
    bus_pub_destroy(&pub);
    bus_sub_destroy(&sub);
    return rc < 0 ? rc : KV_OK;
}
