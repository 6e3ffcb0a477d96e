/* kavi configuration: one YAML file read by all three programs, each taking
 * its part. Keys follow AKO's names where AKO has them (clusterName,
 * serviceType, nodeSelectorLabels, ...); kavi's own keys are grouped under
 * `kubernetes`, `credentials` and `bus`. See docs/configuration.md.
 *
 * config_load() rejects an unknown key, a wrong type or a bad value with one
 * line naming the key (and its line in the file); the program prints it and
 * exits. Every string in kv_config is owned by the config. */
#ifndef KAVI_COMMON_CONFIG_H
#define KAVI_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/log.h"

/* controllerParallelRequests: AKO runs 8 REST workers (GraphLayer, LARGE shard). */
#define CONFIG_PARALLEL_DEFAULT 8
#define CONFIG_PARALLEL_MAX 32

typedef struct {
    char *key;
    char *value;
} config_label;

typedef struct {
    char *network_name; /* Avi Network used for VIP allocation */
    char *cidr;         /* optional subnet inside it */
} config_vip_network;

/* One subnet of a node network, as the pool's placement_networks want it:
 * the network address (host bits cleared) and the prefix length. */
typedef struct {
    char addr[46]; /* INET6_ADDRSTRLEN */
    bool ipv6;
    int mask;
} config_cidr;

/* nodeNetworkList entry: the Avi Network the nodes sit on, by name or
 * (preferred, as AKO) by uuid, and the node subnets in it. */
typedef struct {
    char *network_name;
    char *network_uuid;
    config_cidr *cidrs;
    size_t n_cidrs;
} config_node_network;

#define CONFIG_NODE_NETWORKS_MAX 5 /* AKO's NODE_NETWORK_MAX_ENTRIES */

typedef enum {
    CONFIG_SOURCE_REPLAY = 0, /* a recorded stream file */
    CONFIG_SOURCE_KUBECONFIG, /* a kubeconfig file (issue: live watcher) */
    CONFIG_SOURCE_IN_CLUSTER, /* service account in a pod */
} config_source;

typedef struct {
    /* AKO keys */
    char *cluster_name;              /* clusterName: object prefix "<name>--" */
    bool node_port_mode;             /* serviceType: NodePort (true) | ClusterIP */
    config_label *node_selector;     /* nodeSelectorLabels: all must match */
    size_t n_node_selector;
    int shard_count;                 /* shardVSSize: LARGE 8, MEDIUM 4, SMALL 1, DEDICATED 0 */
    char *cni_plugin;                /* cniPlugin: "" | calico | antrea | ... */
    char *ip_family;                 /* ipFamily: V4 | V6 | V4_V6 */
    char *controller_host;           /* controllerHost: [scheme://]host[:port] */
    char *controller_version;        /* controllerVersion: X-Avi-Version */
    int controller_parallel;         /* controllerParallelRequests: REST calls on the wire */
    char *tenant_name;               /* tenantName */
    char *cloud_name;                /* cloudName */
    char *se_group_name;             /* serviceEngineGroupName */
    config_vip_network *vip_networks;/* vipNetworkList */
    size_t n_vip_networks;
    config_node_network *node_networks; /* nodeNetworkList: pools' placement_networks */
    size_t n_node_networks;
    int pool_graceful_disable_timeout; /* poolGracefulDisableTimeout: minutes, -1 infinite */
    log_level log_level;             /* logLevel */
    bool delete_config;              /* deleteConfig */

    /* kubernetes: where the watcher reads the cluster from */
    config_source source;            /* kubernetes.source */
    char *replay_file;               /* kubernetes.replayFile */
    bool replay_follow;              /* kubernetes.follow: keep reading appended events */
    char *kubeconfig;                /* kubernetes.kubeconfig */

    /* credentials for the Avi Controller: inline or from files */
    char *username;
    char *password;
    char *auth_token;
    char *username_file;             /* usernameFile, passwordFile, authTokenFile: read by */
    char *password_file;             /* config_read_credentials(), so only the program that */
    char *auth_token_file;           /* talks to the controller needs the secret mounted */
    char *controller_ca_file;        /* controllerCAFile: PEM bundle to verify HTTPS */

    /* bus: ZeroMQ endpoints; publishers bind, consumers connect */
    char *k8s_publish;
    char *k8s_snapshot;
    char *model_publish;
    char *model_snapshot;
    char *status_endpoint;

    char *runtime_dir;               /* runtimeDir */
} kv_config;

/* Loads and validates the file at `path`. On error returns a negative
 * kv_err and writes one line naming the key and the reason into `err`. */
int config_load(kv_config **out, const char *path, char *err, size_t err_len);

/* Reads credentials.*File into username, password and auth_token (a file
 * wins over the inline key). Only the syncer calls it: the watcher and the
 * planner never hold the controller's credentials. One line in err. */
int config_read_credentials(kv_config *cfg, char *err, size_t err_len);

/* Same, from a YAML string (tests). `origin` names it in errors. */
int config_load_string(kv_config **out, const char *yaml, const char *origin, char *err,
                       size_t err_len);

/* The name prefix of every Avi object kavi owns: "<clusterName>--". */
const char *config_name_prefix(const kv_config *cfg);
/* created_by value: "ako-<clusterName>". */
const char *config_created_by(const kv_config *cfg);

void config_destroy(kv_config **cfg);

#endif
