/* The configuration a user writes: AKO's keys, kavi's sections, and the one
 * line a user gets for every mistake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/error.h"

static const char *full_config =
    "clusterName: demo\n"
    "serviceType: NodePort\n"
    "nodeSelectorLabels:\n"
    "  role: edge\n"
    "  zone: a\n"
    "shardVSSize: SMALL\n"
    "cniPlugin: calico\n"
    "ipFamily: V4\n"
    "controllerHost: http://127.0.0.1:9000\n"
    "controllerVersion: \"22.1.3\"\n"
    "tenantName: team-a\n"
    "cloudName: Default-Cloud\n"
    "serviceEngineGroupName: Default-Group\n"
    "vipNetworkList:\n"
    "  - networkName: vip-net\n"
    "    cidr: 10.10.10.0/24\n"
    "logLevel: DEBUG\n"
    "deleteConfig: false\n"
    "kubernetes:\n"
    "  source: replay\n"
    "  replayFile: /tmp/stream.ndjson\n"
    "  follow: true\n"
    "credentials:\n"
    "  username: admin\n"
    "  password: secret\n"
    "bus:\n"
    "  k8sPublish: tcp://127.0.0.1:7001\n";

static void test_full_config_is_read_into_every_field(void **state)
{
    (void)state;
    kv_config *cfg = NULL;
    char err[256] = "";
    assert_int_equal(config_load_string(&cfg, full_config, "test", err, sizeof err), 0);
    assert_string_equal(cfg->cluster_name, "demo");
    assert_true(cfg->node_port_mode);
    assert_int_equal(cfg->n_node_selector, 2);
    assert_string_equal(cfg->node_selector[1].key, "zone");
    assert_int_equal(cfg->shard_count, 1);
    assert_string_equal(cfg->cni_plugin, "calico");
    assert_string_equal(cfg->controller_host, "http://127.0.0.1:9000");
    assert_string_equal(cfg->tenant_name, "team-a");
    assert_int_equal(cfg->n_vip_networks, 1);
    assert_string_equal(cfg->vip_networks[0].network_name, "vip-net");
    assert_string_equal(cfg->vip_networks[0].cidr, "10.10.10.0/24");
    assert_int_equal(cfg->log_level, LOG_DEBUG);
    assert_int_equal(cfg->source, CONFIG_SOURCE_REPLAY);
    assert_true(cfg->replay_follow);
    assert_string_equal(cfg->password, "secret");
    assert_string_equal(cfg->k8s_publish, "tcp://127.0.0.1:7001");
    assert_string_equal(cfg->k8s_snapshot, "tcp://127.0.0.1:5562"); /* default */
    assert_string_equal(config_name_prefix(cfg), "demo--");
    assert_string_equal(config_created_by(cfg), "ako-demo");
    config_destroy(&cfg);
    assert_null(cfg);
}

static void test_defaults_match_ako(void **state)
{
    (void)state;
    kv_config *cfg = NULL;
    char err[256];
    assert_int_equal(config_load_string(&cfg, "clusterName: c1\n", "test", err, sizeof err), 0);
    assert_false(cfg->node_port_mode); /* AKO's default serviceType is ClusterIP */
    assert_int_equal(cfg->shard_count, 8);
    assert_string_equal(cfg->tenant_name, "admin");
    assert_string_equal(cfg->cloud_name, "Default-Cloud");
    assert_string_equal(cfg->se_group_name, "Default-Group");
    assert_string_equal(cfg->ip_family, "V4");
    assert_int_equal(cfg->log_level, LOG_INFO);
    assert_int_equal(cfg->controller_parallel, 8); /* AKO's REST workers, LARGE shard */
    config_destroy(&cfg);
}

/* Each bad input and the words its one-line error must contain. */
static void assert_rejected(const char *yaml, const char *expected)
{
    kv_config *cfg = NULL;
    char err[256] = "";
    assert_true(config_load_string(&cfg, yaml, "kavi.yaml", err, sizeof err) < 0);
    assert_null(cfg);
    if (!strstr(err, expected))
        fail_msg("error '%s' does not mention '%s'", err, expected);
    assert_null(strchr(err, '\n'));
}

static void test_parallel_requests_are_read_and_bounded(void **state)
{
    (void)state;
    kv_config *cfg = NULL;
    char err[256];
    assert_int_equal(config_load_string(&cfg, "clusterName: c1\ncontrollerParallelRequests: 16\n",
                                        "test", err, sizeof err),
                     0);
    assert_int_equal(cfg->controller_parallel, 16);
    config_destroy(&cfg);
    assert_rejected("clusterName: c\ncontrollerParallelRequests: 0\n",
                    "key 'controllerParallelRequests' must be a whole number from 1 to 32");
    assert_rejected("clusterName: c\ncontrollerParallelRequests: many\n",
                    "controllerParallelRequests");
}

static void test_unknown_key_is_named_with_its_line(void **state)
{
    (void)state;
    assert_rejected("clusterName: c\nclusterNam: x\n", "line 2: unknown key 'clusterNam'");
    assert_rejected("clusterName: c\nbus:\n  k8sPub: x\n", "unknown key 'bus.k8sPub'");
}

static void test_wrong_types_are_named(void **state)
{
    (void)state;
    assert_rejected("clusterName: [a, b]\n", "key 'clusterName' must be a string");
    assert_rejected("clusterName: c\ndeleteConfig: maybe\n", "key 'deleteConfig' must be true or false");
    assert_rejected("clusterName: c\nnodeSelectorLabels: edge\n", "key 'nodeSelectorLabels' must be a map");
    assert_rejected("clusterName: c\nvipNetworkList: vip\n", "key 'vipNetworkList' must be a list");
    assert_rejected("clusterName: c\nkubernetes: replay\n", "key 'kubernetes' must be a map");
}

static void test_bad_values_are_named(void **state)
{
    (void)state;
    assert_rejected("clusterName: c\nserviceType: Foo\n", "key 'serviceType' must be one of ClusterIP, NodePort");
    assert_rejected("clusterName: c\nserviceType: NodePortLocal\n", "NodePortLocal is not supported");
    assert_rejected("clusterName: c\nshardVSSize: HUGE\n", "key 'shardVSSize' must be one of");
    assert_rejected("clusterName: c\nlogLevel: LOUD\n", "key 'logLevel'");
    assert_rejected("serviceType: NodePort\n", "key 'clusterName' is required");
    assert_rejected("clusterName: bad/name\n", "key 'clusterName': 'bad/name' must be");
    assert_rejected("clusterName: c\nvipNetworkList:\n  - cidr: 1.2.3.0/24\n", "has no networkName");
    assert_rejected("clusterName: c\n  : : bad\n", "line");
    assert_rejected("clusterName: c\npoolGracefulDisableTimeout: 7201\n",
                    "key 'poolGracefulDisableTimeout' must be an integer from -1 to 7200");
    assert_rejected("clusterName: c\npoolGracefulDisableTimeout: soon\n",
                    "key 'poolGracefulDisableTimeout' must be an integer");
    assert_rejected("clusterName: c\nnodeNetworkList:\n  - cidrs: [10.0.0.0/24]\n",
                    "has neither networkName nor networkUUID");
    assert_rejected("clusterName: c\nnodeNetworkList:\n  - networkName: n\n    cidrs: [10.0.0.0]\n",
                    "'10.0.0.0' is not an address/prefix");
    assert_rejected("clusterName: c\nnodeNetworkList:\n  - networkName: n\n    cidrs: [10.0.0.0/33]\n",
                    "is not an address/prefix");
    assert_rejected("clusterName: c\nnodeNetworkList:\n  - networkName: n\n    cidr: 10.0.0.0/8\n",
                    "unknown key 'nodeNetworkList.cidr'");
    assert_rejected("clusterName: c\nnodeNetworkList: [{networkName: a}, {networkName: b},"
                    " {networkName: c}, {networkName: d}, {networkName: e}, {networkName: f}]\n",
                    "at most 5 entries");
}

static void test_pool_settings_default_to_akos(void **state)
{
    (void)state;
    kv_config *cfg = NULL;
    char err[256];
    assert_int_equal(config_load_string(&cfg, "clusterName: c\n", "test", err, sizeof err), 0);
    assert_int_equal(cfg->pool_graceful_disable_timeout, 1);
    assert_int_equal(cfg->n_node_networks, 0);
    config_destroy(&cfg);
    assert_int_equal(config_load_string(&cfg,
                                        "clusterName: c\npoolGracefulDisableTimeout: 0\n"
                                        "nodeNetworkList:\n  - networkUUID: net-1\n"
                                        "    cidrs: [192.168.7.9/20]\n",
                                        "test", err, sizeof err),
                     0);
    assert_int_equal(cfg->pool_graceful_disable_timeout, 0);
    assert_int_equal(cfg->n_node_networks, 1);
    assert_string_equal(cfg->node_networks[0].network_uuid, "net-1");
    assert_int_equal(cfg->node_networks[0].n_cidrs, 1);
    assert_string_equal(cfg->node_networks[0].cidrs[0].addr, "192.168.0.0");
    assert_int_equal(cfg->node_networks[0].cidrs[0].mask, 20);
    config_destroy(&cfg);
}

static void test_credentials_are_read_from_files(void **state)
{
    (void)state;
    char path[] = "/tmp/kavi-test-password-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret\n", 7), 7);
    close(fd);
    char yaml[256];
    snprintf(yaml, sizeof yaml, "clusterName: c\ncredentials:\n  passwordFile: %s\n", path);
    kv_config *cfg = NULL;
    char err[256];
    assert_int_equal(config_load_string(&cfg, yaml, "test", err, sizeof err), 0);
    assert_null(cfg->password); /* loading alone never reads a secret */
    assert_int_equal(config_read_credentials(cfg, err, sizeof err), 0);
    assert_string_equal(cfg->password, "s3cret");
    config_destroy(&cfg);

    /* Gone: loading still works (the watcher and planner need no secret);
     * reading says which key and file, in one line. */
    unlink(path);
    assert_int_equal(config_load_string(&cfg, yaml, "test", err, sizeof err), 0);
    assert_int_equal(config_read_credentials(cfg, err, sizeof err), KV_ERR_IO);
    assert_non_null(strstr(err, "credentials.passwordFile: cannot read"));
    assert_non_null(strstr(err, path));
    assert_null(strchr(err, '\n'));
    config_destroy(&cfg);
}

static void test_missing_file_is_one_line(void **state)
{
    (void)state;
    kv_config *cfg = NULL;
    char err[256];
    assert_int_equal(config_load(&cfg, "/nonexistent/kavi.yaml", err, sizeof err), KV_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/kavi.yaml"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config_is_read_into_every_field),
        cmocka_unit_test(test_defaults_match_ako),
        cmocka_unit_test(test_parallel_requests_are_read_and_bounded),
        cmocka_unit_test(test_unknown_key_is_named_with_its_line),
        cmocka_unit_test(test_wrong_types_are_named),
        cmocka_unit_test(test_bad_values_are_named),
        cmocka_unit_test(test_pool_settings_default_to_akos),
        cmocka_unit_test(test_credentials_are_read_from_files),
        cmocka_unit_test(test_missing_file_is_one_line),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
