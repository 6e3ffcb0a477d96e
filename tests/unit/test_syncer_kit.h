/* Shared pieces of the syncer's tests: an in-process Avi Controller
 * simulator, a config pointing at it, plain HTTP to its /_sim/ hooks, and
 * model builders that produce what the planner would publish for a
 * LoadBalancer Service (vsvip, pools, L4 policy set, VS).
 *
 * Every helper fails the running test on error, so tests read as the
 * scenario they check. Objects returned are owned by the caller. */
#ifndef KAVI_TEST_SYNCER_KIT_H
#define KAVI_TEST_SYNCER_KIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/model.h"
#include "syncer/avi_cache.h"
#include "syncer/avi_session.h"
#include "syncer/avi_types.h"
#include "syncer/reconcile.h"
#include "tests/avisim/avisim.h"

#define KIT_CLUSTER "kavi"
#define KIT_PREFIX "kavi--"
#define KIT_CREATED_BY "ako-kavi"
/* The identity a kavi object carries besides created_by, as JSON. */
#define KIT_MARKERS "\"markers\": [{\"key\": \"clustername\", \"values\": [\"kavi\"]}]"
#define KIT_DEADLINE_MS 20000

/* ---- the simulator and a config for it ---------------------------------- */

typedef struct {
    avisim_t *sim;
    int port;
    kv_config *cfg;
    avi_session_t *session;
    avi_cache_t *cache;
} kit_env;

static inline void kit_log_init(void)
{
    const char *level = getenv("KAVI_TEST_LOG");
    int parsed = level ? log_level_parse(level) : -1;
    log_init("test-syncer", parsed >= 0 ? (log_level)parsed : LOG_ERROR);
}

static inline kv_config *kit_config(int port, const char *extra_yaml)
{
    char yaml[4096];
    char err[512] = "";
    kv_config *cfg = NULL;
    snprintf(yaml, sizeof yaml,
             "clusterName: " KIT_CLUSTER "\n"
             "controllerHost: http://127.0.0.1:%d\n"
             "credentials:\n"
             "  username: admin\n"
             "  password: avi123\n"
             "%s",
             port, extra_yaml ? extra_yaml : "");
    if (config_load_string(&cfg, yaml, "test", err, sizeof err) != 0)
        fail_msg("config: %s", err);
    return cfg;
}

/* Starts a simulator (opts may be NULL) and a session + empty cache on it. */
static inline void kit_env_start(kit_env *env, const avisim_options_t *opts)
{
    memset(env, 0, sizeof *env);
    kit_log_init();
    assert_int_equal(avisim_new(&env->sim, opts), 0);
    env->port = avisim_port(env->sim);
    env->cfg = kit_config(env->port, NULL);
    assert_int_equal(avi_session_new(&env->session, env->cfg, NULL), KV_OK);
    /* Tests inject faults on purpose: retry fast. */
    avi_session_set_retry(env->session, 4, 5, 40);
    assert_int_equal(avi_cache_new(&env->cache, env->cfg->cluster_name, config_created_by(env->cfg),
                                   config_name_prefix(env->cfg)),
                     KV_OK);
}

static inline void kit_env_stop(kit_env *env)
{
    avi_cache_destroy(&env->cache);
    avi_session_destroy(&env->session);
    config_destroy(&env->cfg);
    avisim_destroy(&env->sim);
}

/* ---- plain HTTP to the simulator (its /_sim/ hooks need no login) --------- */

typedef struct {
    char *data;
    size_t len;
} kit_buffer;

static inline size_t kit_write(char *p, size_t size, size_t n, void *userdata)
{
    kit_buffer *b = userdata;
    size_t add = size * n;
    char *grown = realloc(b->data, b->len + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, p, add);
    b->data = grown;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* method path [body] → parsed JSON answer (NULL if empty); *status. */
static inline json_t *kit_http(int port, const char *method, const char *path, const char *body,
                               long *status)
{
    char url[1024];
    kit_buffer b = {0};
    CURL *c = curl_easy_init();
    assert_non_null(c);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, kit_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (status)
        *status = code;
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    json_t *parsed = b.len ? json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL) : NULL;
    free(b.data);
    return parsed;
}

static inline void kit_faults(const kit_env *env, const char *json)
{
    long status = 0;
    json_t *r = kit_http(env->port, json ? "POST" : "DELETE", "/_sim/faults", json, &status);
    json_decref(r);
    assert_int_equal(status, 200);
}

/* Forgets the request log and counters, so a test counts from here. */
static inline void kit_reset_log(const kit_env *env)
{
    json_decref(kit_http(env->port, "DELETE", "/_sim/log", NULL, NULL));
    json_decref(kit_http(env->port, "DELETE", "/_sim/counters", NULL, NULL));
}

/* How many "METHOD type" requests the simulator saw ("PUT pool"). */
static inline int kit_count(const kit_env *env, const char *what)
{
    json_t *r = kit_http(env->port, "GET", "/_sim/counters", NULL, NULL);
    int n = (int)json_integer_value(json_object_get(json_object_get(r, "requests"), what));
    json_decref(r);
    return n;
}

/* Number of POST + PUT + DELETE requests on /api since the last reset. */
static inline int kit_writes(const kit_env *env)
{
    json_t *r = kit_http(env->port, "GET", "/_sim/counters", NULL, NULL);
    const char *key;
    json_t *value;
    int n = 0;
    json_object_foreach(json_object_get(r, "requests"), key, value) {
        bool write = strncmp(key, "POST ", 5) == 0 || strncmp(key, "PUT ", 4) == 0 ||
                     strncmp(key, "DELETE ", 7) == 0 || strncmp(key, "PATCH ", 6) == 0;
        if (write && strcmp(key, "POST login") != 0)
            n += (int)json_integer_value(value);
    }
    json_decref(r);
    return n;
}

/* The write requests of the log as "METHOD type name status" lines joined
 * by '\n' (GETs and logins left out); malloc'd. */
static inline char *kit_write_log(const kit_env *env)
{
    json_t *log = kit_http(env->port, "GET", "/_sim/log", NULL, NULL);
    size_t cap = 65536;
    char *out = calloc(1, cap);
    size_t used = 0;
    size_t index;
    json_t *e;
    assert_non_null(out);
    json_array_foreach(log, index, e) {
        const char *method = json_string_value(json_object_get(e, "method"));
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *name = json_string_value(json_object_get(e, "name"));
        if (!method || strcmp(method, "GET") == 0 || (type && strcmp(type, "login") == 0))
            continue;
        int n = snprintf(out + used, cap - used, "%s %s %s %d\n", method, type ? type : "?",
                         name ? name : "?", (int)json_integer_value(json_object_get(e, "status")));
        if (n > 0 && (size_t)n < cap - used)
            used += (size_t)n;
    }
    json_decref(log);
    return out;
}

/* How many "METHOD type" requests in the log carried this checksum. */
static inline int kit_count_with_checksum(const kit_env *env, const char *method, const char *type,
                                          const char *checksum)
{
    json_t *log = kit_http(env->port, "GET", "/_sim/log", NULL, NULL);
    size_t index;
    json_t *e;
    int n = 0;
    json_array_foreach(log, index, e) {
        const char *m = json_string_value(json_object_get(e, "method"));
        const char *t = json_string_value(json_object_get(e, "type"));
        const char *sum =
            json_string_value(json_object_get(json_object_get(e, "body"), "cloud_config_cksum"));
        if (m && t && sum && strcmp(m, method) == 0 && strcmp(t, type) == 0 &&
            strcmp(sum, checksum) == 0)
            n++;
    }
    json_decref(log);
    return n;
}

/* Position of needle in haystack, failing the test when absent. */
static inline long kit_position(const char *haystack, const char *needle)
{
    const char *at = strstr(haystack, needle);
    if (!at)
        fail_msg("'%s' not found in:\n%s", needle, haystack);
    return at - haystack;
}

/* The object of type/name as the simulator holds it in the admin tenant,
 * or NULL. Owned by the caller. */
static inline json_t *kit_state_object(const kit_env *env, const char *type, const char *name)
{
    char *text = avisim_state_json(env->sim);
    assert_non_null(text);
    json_t *state = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(state);
    json_t *found = NULL;
    size_t index;
    json_t *o;
    json_array_foreach(json_object_get(json_object_get(state, "admin"), type), index, o) {
        const char *n = json_string_value(json_object_get(o, "name"));
        if (n && strcmp(n, name) == 0) {
            found = json_incref(o);
            break;
        }
    }
    json_decref(state);
    return found;
}

static inline bool kit_exists(const kit_env *env, const char *type, const char *name)
{
    json_t *o = kit_state_object(env, type, name);
    json_decref(o);
    return o != NULL;
}

/* Creates an object directly on the controller (as a person or another
 * tool would), through a session of its own. */
static inline void kit_create(const kit_env *env, const char *type, const char *json)
{
    char path[256];
    long status = 0;
    json_t *body = json_loads(json, 0, NULL);
    assert_non_null(body);
    avi_session_t *s = NULL;
    assert_int_equal(avi_session_new(&s, env->cfg, NULL), KV_OK);
    snprintf(path, sizeof path, "/api/%s", type);
    int rc = avi_session_request(s, "POST", path, body, &status, NULL);
    if (rc != KV_OK)
        fail_msg("creating %s: %s", type, avi_session_error(s));
    json_decref(body);
    avi_session_destroy(&s);
}

/* Deletes type/name directly on the controller. */
static inline void kit_delete(const kit_env *env, const char *type, const char *name)
{
    char path[512];
    long status = 0;
    json_t *found = NULL;
    avi_session_t *s = NULL;
    assert_int_equal(avi_session_new(&s, env->cfg, NULL), KV_OK);
    snprintf(path, sizeof path, "/api/%s?name=%s", type, name);
    assert_int_equal(avi_session_request(s, "GET", path, NULL, &status, &found), KV_OK);
    const char *uuid =
        json_string_value(json_object_get(json_array_get(json_object_get(found, "results"), 0),
                                          "uuid"));
    assert_non_null(uuid);
    snprintf(path, sizeof path, "/api/%s/%s", type, uuid);
    if (avi_session_request(s, "DELETE", path, NULL, &status, NULL) != KV_OK)
        fail_msg("deleting %s %s: %s", type, name, avi_session_error(s));
    json_decref(found);
    avi_session_destroy(&s);
}

/* ---- models --------------------------------------------------------------- */

static inline proto_model *kit_model_new(const char *name, const char *owner)
{
    proto_model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->tenant = strdup("admin");
    m->name = strdup(name);
    if (owner) {
        m->owners = calloc(1, sizeof *m->owners);
        assert_non_null(m->owners);
        m->owners[0] = strdup(owner);
        m->n_owners = 1;
    }
    return m;
}

/* Adds an object; fills name, created_by (where the type has it), the
 * clustername marker and the checksum (FNV-1a of the body's canonical JSON,
 * in the type's checksum field if it has one), as the planner does. */
static inline void kit_model_add(proto_model *m, const char *type, const char *name,
                                 json_t *body_take)
{
    assert_non_null(body_take);
    json_object_set_new(body_take, "name", json_string(name));
    if (avi_type_has_created_by(type))
        json_object_set_new(body_take, "created_by", json_string(KIT_CREATED_BY));
    json_object_set_new(body_take, "markers",
                        json_pack("[{s:s, s:[s]}]", "key", "clustername", "values", KIT_CLUSTER));
    char *text = json_dumps(body_take, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(text);
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 16777619u;
    free(text);
    char sum[16];
    snprintf(sum, sizeof sum, "%u", h);
    if (avi_type_checksum_field(type))
        json_object_set_new(body_take, avi_type_checksum_field(type), json_string(sum));
    proto_avi_object *grown = realloc(m->objects, (m->n_objects + 1) * sizeof *grown);
    assert_non_null(grown);
    m->objects = grown;
    m->objects[m->n_objects++] = (proto_avi_object){
        .type = strdup(type), .name = strdup(name), .checksum = strdup(sum), .body = body_take};
}

static inline const proto_avi_object *kit_model_find(const proto_model *m, const char *type,
                                                     const char *name)
{
    for (size_t i = 0; i < m->n_objects; i++)
        if (strcmp(m->objects[i].type, type) == 0 && strcmp(m->objects[i].name, name) == 0)
            return &m->objects[i];
    return NULL;
}

/* A LoadBalancer Service ns/svc with the given service ports, each served
 * by `servers` (comma-separated "ip:port" list; "" for none), like the
 * planner's L4 translation: one pool per port, an L4 policy set choosing
 * the pool by port, a vsvip allocating from vip-net, and the VS. */
static inline proto_model *kit_l4_model(const char *ns, const char *svc, const int *ports,
                                        size_t n_ports, const char *servers)
{
    char vs_name[256];
    char owner[256];
    char pool_name[300];
    char ref[512];
    snprintf(vs_name, sizeof vs_name, KIT_PREFIX "%s-%s", ns, svc);
    snprintf(owner, sizeof owner, "Service/%s/%s", ns, svc);
    proto_model *m = kit_model_new(vs_name, owner);

    json_t *rules = json_array();
    json_t *services = json_array();
    for (size_t p = 0; p < n_ports; p++) {
        snprintf(pool_name, sizeof pool_name, "%s-TCP-%d", vs_name, ports[p]);
        json_t *list = json_array();
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", servers);
        for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            char *colon = strchr(tok, ':');
            assert_non_null(colon);
            *colon = '\0';
            json_array_append_new(list, json_pack("{s:{s:s, s:s}, s:i, s:b}", "ip", "addr", tok,
                                                  "type", "V4", "port", atoi(colon + 1),
                                                  "enabled", 1));
        }
        kit_model_add(m, "pool", pool_name,
                      json_pack("{s:o, s:[s]}", "servers", list, "health_monitor_refs",
                                "/api/healthmonitor/?name=System-TCP"));
        snprintf(ref, sizeof ref, "/api/pool/?name=%s", pool_name);
        char rule_name[320];
        snprintf(rule_name, sizeof rule_name, "%s-%d", vs_name, (int)p);
        json_array_append_new(
            rules, json_pack("{s:s, s:i, s:b, s:{s:{s:s, s:[i]}, s:{s:s, s:s}}, s:{s:{s:s, s:s}}}",
                             "name", rule_name, "index", (int)p, "enable", 1, "match",
                             "port", "match_criteria", "IS_IN", "ports", ports[p], "protocol",
                             "match_criteria", "IS_IN", "protocol", "PROTOCOL_TCP", "action",
                             "select_pool", "action_type", "L4_RULE_ACTION_SELECT_POOL",
                             "pool_ref", ref));
        json_array_append_new(services, json_pack("{s:i}", "port", ports[p]));
    }
    kit_model_add(m, "l4policyset", vs_name,
                  json_pack("{s:{s:o}}", "l4_connection_policy", "rules", rules));
    kit_model_add(m, "vsvip", vs_name,
                  json_pack("{s:[{s:s, s:b, s:{s:s}}]}", "vip", "vip_id", "0", "auto_allocate_ip",
                            1, "ipam_network_subnet", "network_ref", "/api/network/?name=vip-net"));
    snprintf(ref, sizeof ref, "/api/vsvip/?name=%s", vs_name);
    char l4_ref[512];
    snprintf(l4_ref, sizeof l4_ref, "/api/l4policyset/?name=%s", vs_name);
    kit_model_add(m, "virtualservice", vs_name,
                  json_pack("{s:s, s:o, s:s, s:s, s:[{s:i, s:s}]}", "vsvip_ref", ref, "services",
                            services, "application_profile_ref",
                            "/api/applicationprofile/?name=System-L4-Application",
                            "network_profile_ref", "/api/networkprofile/?name=System-TCP-Proxy",
                            "l4_policies", "index", 0, "l4_policy_set_ref", l4_ref));
    return m;
}

/* Applies a model, failing the test unless the result is `want`. */
static inline void kit_apply_expect(kit_env *env, const proto_model *m, reconcile_held *held,
                                    int want, reconcile_outcome *outcome)
{
    reconcile_outcome local = {0};
    reconcile_outcome *o = outcome ? outcome : &local;
    int rc = reconcile_apply(o, env->session, env->cache, m, held);
    if (rc != want)
        fail_msg("apply %s: got %s (%s), want %s", m->name, kv_strerror(rc),
                 o->error ? o->error : "", kv_strerror(want));
    if (!outcome)
        reconcile_outcome_clear(&local);
}

/* cmocka with an optional test-name filter as argv[1]. */
#define KIT_RUN(tests, argc, argv)                                                                 \
    do {                                                                                           \
        if ((argc) > 1)                                                                            \
            cmocka_set_test_filter((argv)[1]);                                                     \
        return cmocka_run_group_tests(tests, NULL, NULL);                                          \
    } while (0)

#endif
