/* Two clusters on one controller, named so that one's name prefix is a
 * prefix of the other's: "a" (objects "a--...") and "a-" (objects
 * "a---..."). Each one's garbage collection and deleteConfig must leave the
 * other's objects alone: ownership is the cluster's identity (the
 * clustername marker, created_by where the type has it), never a name.
 * The real three processes of each cluster run against one simulator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/error.h"
#include "syncer/avi_session.h"
#include "tests/kit/kit.h"

#define NODE                                                                                       \
    "{\"type\":\"ADDED\",\"object\":{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{"       \
    "\"name\":\"worker\",\"uid\":\"uid-worker\",\"resourceVersion\":\"10\",\"labels\":{}},"        \
    "\"spec\":{},\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.2\"}],"  \
    "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}}"
#define SERVICE(event, version)                                                                    \
    "{\"type\":\"" event "\",\"object\":{\"apiVersion\":\"v1\",\"kind\":\"Service\","              \
    "\"metadata\":{\"name\":\"shop\",\"namespace\":\"web\",\"uid\":\"uid-shop\","                  \
    "\"resourceVersion\":\"" version "\"},\"spec\":{\"type\":\"LoadBalancer\",\"ports\":[{"        \
    "\"protocol\":\"TCP\",\"port\":80,\"targetPort\":8080,\"nodePort\":31080}],"                   \
    "\"externalTrafficPolicy\":\"Cluster\",\"clusterIP\":\"10.96.0.10\","                          \
    "\"ipFamilies\":[\"IPv4\"]},\"status\":{\"loadBalancer\":{}}}}"

typedef struct {
    kit_pipeline a;      /* cluster "a", owns the simulator */
    kit_pipeline a_dash; /* cluster "a-" */
} clusters;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The clustername marker's first value, or NULL. */
static const char *cluster_of(const json_t *object)
{
    size_t i;
    const json_t *marker;
    json_array_foreach(json_object_get(object, "markers"), i, marker) {
        const json_t *key = json_object_get(marker, "key");
        if (json_is_string(key) && strcmp(json_string_value(key), "clustername") == 0)
            return json_string_value(json_array_get(json_object_get(marker, "values"), 0));
    }
    return NULL;
}

/* "type name uuid" of every object of `cluster` (by marker) and, so that a
 * mistake shows, of every object whose name starts with "a--", sorted. */
static char *view_of(kit_pipeline *p, const char *cluster)
{
    char *text = avisim_state_json(p->sim);
    json_t *state = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    char *lines[64];
    size_t n = 0;
    const char *type;
    json_t *objects;
    json_object_foreach(json_object_get(state, "admin"), type, objects) {
        size_t i;
        json_t *o;
        json_array_foreach(objects, i, o) {
            const char *c = cluster_of(o);
            if (n == 64 || !c || strcmp(c, cluster) != 0)
                continue;
            char line[512];
            snprintf(line, sizeof line, "%s %s %s", type,
                     json_string_value(json_object_get(o, "name")),
                     json_string_value(json_object_get(o, "uuid")));
            lines[n++] = strdup(line);
        }
    }
    json_decref(state);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
            char *t = lines[j];
            lines[j] = lines[j - 1];
            lines[j - 1] = t;
        }
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(lines[i]) + 1;
    char *out = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
        free(lines[i]);
    }
    return out;
}

/* Waits until `cluster` has exactly `count` objects; returns their view. */
static char *wait_for_count(clusters *c, const char *cluster, size_t count)
{
    int64_t until = clock_now_ms() + KIT_DEADLINE_MS;
    for (;;) {
        char *view = view_of(&c->a, cluster);
        size_t lines = 0;
        for (const char *s = view; *s; s++)
            lines += *s == '\n';
        if (lines == count)
            return view;
        if (clock_now_ms() > until) {
            kit_dump_logs(&c->a);
            kit_dump_logs(&c->a_dash);
            fail_msg("cluster %s: want %zu objects, have:\n%s", cluster, count, view);
        }
        free(view);
        sleep_ms(100);
    }
}

/* Leftovers of cluster a- that no object refers to, waiting for a-'s own
 * garbage collection: a VsVip and a health monitor, the types listed by name
 * prefix, so cluster a's listing ("a--") finds them too. */
static void leave_leftovers_of_a_dash(kit_pipeline *p)
{
    static const char *const objects[][2] = {
        {"vsvip", "{\"name\": \"a---web-old\", \"vip\": [{\"vip_id\": \"0\","
                  " \"auto_allocate_ip\": true}], \"markers\": [{\"key\": \"clustername\","
                  " \"values\": [\"a-\"]}]}"},
        {"healthmonitor", "{\"name\": \"a---web-old-hc\", \"type\": \"HEALTH_MONITOR_TCP\","
                          " \"markers\": [{\"key\": \"clustername\", \"values\": [\"a-\"]}]}"},
    };
    char err[256] = "";
    kv_config *cfg = NULL;
    avi_session_t *session = NULL;
    assert_int_equal(config_load(&cfg, p->config_path, err, sizeof err), KV_OK);
    assert_int_equal(avi_session_new(&session, cfg, NULL), KV_OK);
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        char path[64];
        long status = 0;
        json_t *body = json_loads(objects[i][1], 0, NULL);
        assert_non_null(body);
        snprintf(path, sizeof path, "/api/%s", objects[i][0]);
        if (avi_session_request(session, "POST", path, body, &status, NULL) != KV_OK)
            fail_msg("creating %s: %s", objects[i][0], avi_session_error(session));
        json_decref(body);
    }
    avi_session_destroy(&session);
    config_destroy(&cfg);
}

static void append_to(kit_pipeline *p, const char *line)
{
    assert_int_equal(kit_append(p, line), 0);
}

static void reconfigure(kit_pipeline *p, const char *line)
{
    FILE *f = fopen(p->config_path, "a");
    assert_non_null(f);
    fprintf(f, "%s\n", line);
    fclose(f);
}

static void restart(kit_pipeline *p, kit_stage stage)
{
    kit_stage_kill(p, stage);
    assert_int_equal(kit_stage_start(p, stage), 0);
}

/* The other cluster's objects, checked while and after one acts: still all
 * there, with the same uuids (not deleted and made again). */
static void expect_unchanged(clusters *c, const char *cluster, const char *before)
{
    sleep_ms(1500); /* room for a wrong deletion to happen */
    char *now = view_of(&c->a, cluster);
    assert_string_equal(now, before);
    free(now);
}

static void test_gc_and_delete_config_leave_the_other_clusters_objects_alone(void **state)
{
    (void)state;
    clusters c;
    char why[512];
    assert_int_equal(kit_pipeline_start_beside(&c.a, NULL, "a", NULL), 0);
    assert_int_equal(kit_pipeline_start_beside(&c.a_dash, c.a.sim, "a-", NULL), 0);
    append_to(&c.a, NODE);
    append_to(&c.a, SERVICE("ADDED", "11"));
    append_to(&c.a_dash, NODE);
    append_to(&c.a_dash, SERVICE("ADDED", "11"));
    /* pool, L4 policy set, VsVip, VS: "a--web-shop..." and "a---web-shop...". */
    free(wait_for_count(&c, "a", 4));
    free(wait_for_count(&c, "a-", 4));
    leave_leftovers_of_a_dash(&c.a_dash);
    char *theirs = wait_for_count(&c, "a-", 6);
    assert_non_null(strstr(theirs, "vsvip a---web-old "));

    /* GC: cluster a's Service goes while its planner and syncer are down;
     * the restarted syncer lists the controller and deletes its leftovers. */
    kit_stage_kill(&c.a, KIT_SYNCER);
    kit_stage_kill(&c.a, KIT_PLANNER);
    append_to(&c.a, SERVICE("DELETED", "12"));
    assert_int_equal(kit_stage_start(&c.a, KIT_PLANNER), 0);
    assert_int_equal(kit_stage_start(&c.a, KIT_SYNCER), 0);
    free(wait_for_count(&c, "a", 0));
    expect_unchanged(&c, "a-", theirs);

    /* deleteConfig of cluster a: its objects go, a-'s stay. */
    append_to(&c.a, SERVICE("ADDED", "13"));
    free(wait_for_count(&c, "a", 4));
    reconfigure(&c.a, "deleteConfig: true");
    restart(&c.a, KIT_PLANNER);
    free(wait_for_count(&c, "a", 0));
    expect_unchanged(&c, "a-", theirs);
    free(theirs);

    /* And the other way round. */
    reconfigure(&c.a, "deleteConfig: false");
    restart(&c.a, KIT_PLANNER);
    char *ours = wait_for_count(&c, "a", 4);
    restart(&c.a_dash, KIT_SYNCER); /* a- collects its own leftovers, only those */
    free(wait_for_count(&c, "a-", 4));
    expect_unchanged(&c, "a", ours);
    reconfigure(&c.a_dash, "deleteConfig: true");
    restart(&c.a_dash, KIT_PLANNER);
    free(wait_for_count(&c, "a-", 0));
    expect_unchanged(&c, "a", ours);
    free(ours);

    bool clean = kit_pipeline_stop(&c.a_dash, why, sizeof why);
    clean = kit_pipeline_stop(&c.a, why, sizeof why) && clean;
    if (!clean)
        fail_msg("%s", why);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gc_and_delete_config_leave_the_other_clusters_objects_alone),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
