/* `kavi-syncer --show`: what a person sees of the controller's state.
 *   test_syncer_show [test-name-glob] */
#include "tests/unit/test_syncer_kit.h"

#include "syncer/avi_show.h"

static const int ports_80_443[] = {80, 443};
static const int port_53[] = {53};

/* Runs --show's printer into a string (malloc'd). */
static char *show_text(kit_env *env)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(avi_show_print(out, env->session, env->cfg), KV_OK);
    fclose(out);
    if (getenv("KAVI_TEST_SHOW")) /* to see the layout while changing it */
        fputs(text, stderr);
    return text;
}

static void apply(kit_env *env, proto_model *m)
{
    reconcile_held held = {0};
    kit_apply_expect(env, m, &held, KV_OK, NULL);
    reconcile_held_clear(&held);
}

static void test_show_prints_vs_vip_pools_and_servers(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    proto_model *m = kit_l4_model("ns", "my-svc", ports_80_443, 2, "10.0.0.3:31080");
    /* One server drained (disabled), as for a terminating local endpoint. */
    json_t *pool443_body = kit_model_find(m, "pool", "kavi--ns-my-svc-TCP-443")->body;
    json_array_append_new(json_object_get(pool443_body, "servers"),
                          json_pack("{s:{s:s, s:s}, s:i, s:b, s:s}", "ip", "addr", "10.0.0.4",
                                    "type", "V4", "port", 31443, "enabled", 0, "hostname",
                                    "k8s-worker-2"));
    apply(&env, m);

    char *text = show_text(&env);

    long vs = kit_position(text, "Virtual service  kavi--ns-my-svc   VIP 10.10.10.100   TCP/80, TCP/443\n");
    long pool80 = kit_position(text, "  pool kavi--ns-my-svc-TCP-80    health monitor System-TCP");
    long server80 = kit_position(text, "    10.0.0.3:31080   10.0.0.3       enabled\n  pool");
    long pool443 = kit_position(text, "  pool kavi--ns-my-svc-TCP-443   health monitor System-TCP");
    long drained = kit_position(text, "    10.0.0.4:31443   k8s-worker-2   disabled");
    assert_true(vs < pool80 && pool80 < server80 && server80 < pool443 && pool443 < drained);
    assert_null(strstr(text, "Not used by any virtual service"));

    free(text);
    proto_model_destroy(&m);
    kit_env_stop(&env);
}

static void test_show_marks_empty_pools_and_lists_unattached_objects(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);
    proto_model *dns = kit_l4_model("kube-system", "dns", port_53, 1, "");
    apply(&env, dns);
    kit_create(&env, "pool",
               "{\"name\": \"kavi--orphan\", \"created_by\": \"ako-kavi\", " KIT_MARKERS "}");
    kit_create(&env, "pool", "{\"name\": \"not-ours\"}");
    kit_create(&env, "pool", "{\"name\": \"kavi--hand-made\", \"created_by\": \"ako-kavi\"}");

    char *text = show_text(&env);

    long pool = kit_position(text, "  pool kavi--kube-system-dns-TCP-53");
    long empty = kit_position(text, "    (no servers)");
    assert_true(pool < empty);
    long section = kit_position(text, "Not used by any virtual service:");
    long orphan = kit_position(text, "  pool                 kavi--orphan");
    assert_true(section < orphan);
    assert_null(strstr(text, "not-ours"));
    assert_null(strstr(text, "kavi--hand-made"));

    free(text);
    proto_model_destroy(&dns);
    kit_env_stop(&env);
}

static void test_show_on_an_empty_controller_says_so(void **state)
{
    (void)state;
    kit_env env;
    kit_env_start(&env, NULL);

    char *text = show_text(&env);

    kit_position(text, "No virtual services owned by ako-kavi in tenant admin");
    free(text);
    kit_env_stop(&env);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_show_prints_vs_vip_pools_and_servers),
        cmocka_unit_test(test_show_marks_empty_pools_and_lists_unattached_objects),
        cmocka_unit_test(test_show_on_an_empty_controller_says_so),
    };
    KIT_RUN(tests, argc, argv);
}
