/* config.c — YAML configuration, validated against a table of known keys.
 *
 * The file is loaded with libyaml's document API (aliases resolved, scalars
 * are untyped strings) and walked against `config_schema`: each entry names a
 * key, how to read it and where it goes in kv_config. A key that is not in
 * the table is an error, so a typo never silently falls back to a default. */
#include "common/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/error.h"

#define CONFIG_MAX_FILE_BYTES (1024 * 1024)
#define CONFIG_MAX_SECRET_BYTES 4096

typedef enum {
    FIELD_STRING,
    FIELD_BOOL,
    FIELD_PARALLEL,
    FIELD_SERVICE_TYPE,
    FIELD_SHARD_SIZE,
    FIELD_IP_FAMILY,
    FIELD_LOG_LEVEL,
    FIELD_SOURCE,
    FIELD_LABELS,
    FIELD_VIP_NETWORKS,
    FIELD_NODE_NETWORKS,
    FIELD_GRACEFUL_TIMEOUT,
    FIELD_SECTION,
} field_type;

typedef struct config_field {
    const char *key;
    field_type type;
    size_t offset;
    const struct config_field *section; /* FIELD_SECTION: its keys */
} config_field;

#define AT(member) offsetof(kv_config, member)

static const config_field kubernetes_section[] = {
    {"source", FIELD_SOURCE, AT(source), NULL},
    {"replayFile", FIELD_STRING, AT(replay_file), NULL},
    {"follow", FIELD_BOOL, AT(replay_follow), NULL},
    {"kubeconfig", FIELD_STRING, AT(kubeconfig), NULL},
    {NULL, 0, 0, NULL},
};

static const config_field credentials_section[] = {
    {"username", FIELD_STRING, AT(username), NULL},
    {"password", FIELD_STRING, AT(password), NULL},
    {"authToken", FIELD_STRING, AT(auth_token), NULL},
    /* Paths only: config_read_credentials() reads them, in the syncer. */
    {"usernameFile", FIELD_STRING, AT(username_file), NULL},
    {"passwordFile", FIELD_STRING, AT(password_file), NULL},
    {"authTokenFile", FIELD_STRING, AT(auth_token_file), NULL},
    {NULL, 0, 0, NULL},
};

static const config_field bus_section[] = {
    {"k8sPublish", FIELD_STRING, AT(k8s_publish), NULL},
    {"k8sSnapshot", FIELD_STRING, AT(k8s_snapshot), NULL},
    {"modelPublish", FIELD_STRING, AT(model_publish), NULL},
    {"modelSnapshot", FIELD_STRING, AT(model_snapshot), NULL},
    {"status", FIELD_STRING, AT(status_endpoint), NULL},
    {NULL, 0, 0, NULL},
};

static const config_field config_schema[] = {
    {"clusterName", FIELD_STRING, AT(cluster_name), NULL},
    {"serviceType", FIELD_SERVICE_TYPE, AT(node_port_mode), NULL},
    {"nodeSelectorLabels", FIELD_LABELS, AT(node_selector), NULL},
    {"shardVSSize", FIELD_SHARD_SIZE, AT(shard_count), NULL},
    {"cniPlugin", FIELD_STRING, AT(cni_plugin), NULL},
    {"ipFamily", FIELD_IP_FAMILY, AT(ip_family), NULL},
    {"controllerHost", FIELD_STRING, AT(controller_host), NULL},
    {"controllerVersion", FIELD_STRING, AT(controller_version), NULL},
    {"tenantName", FIELD_STRING, AT(tenant_name), NULL},
    {"cloudName", FIELD_STRING, AT(cloud_name), NULL},
    {"serviceEngineGroupName", FIELD_STRING, AT(se_group_name), NULL},
    {"vipNetworkList", FIELD_VIP_NETWORKS, AT(vip_networks), NULL},
    {"nodeNetworkList", FIELD_NODE_NETWORKS, AT(node_networks), NULL},
    {"poolGracefulDisableTimeout", FIELD_GRACEFUL_TIMEOUT, AT(pool_graceful_disable_timeout), NULL},
    {"logLevel", FIELD_LOG_LEVEL, AT(log_level), NULL},
    {"deleteConfig", FIELD_BOOL, AT(delete_config), NULL},
    {"controllerCAFile", FIELD_STRING, AT(controller_ca_file), NULL},
    {"controllerParallelRequests", FIELD_PARALLEL, AT(controller_parallel), NULL},
    {"runtimeDir", FIELD_STRING, AT(runtime_dir), NULL},
    {"kubernetes", FIELD_SECTION, 0, kubernetes_section},
    {"credentials", FIELD_SECTION, 0, credentials_section},
    {"bus", FIELD_SECTION, 0, bus_section},
    {NULL, 0, 0, NULL},
};

/* Everything the walk needs to report an error in one line. */
typedef struct {
    yaml_document_t *doc;
    const char *origin;
    char *err;
    size_t err_len;
    char *name_prefix;
    char *created_by;
} config_loader;

static int config_fail(config_loader *ld, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int config_fail(config_loader *ld, const yaml_node_t *node, const char *fmt, ...)
{
    char reason[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(reason, sizeof reason, fmt, args);
    va_end(args);
    if (node)
        snprintf(ld->err, ld->err_len, "config %s: line %lu: %s", ld->origin,
                 (unsigned long)node->start_mark.line + 1, reason);
    else
        snprintf(ld->err, ld->err_len, "config %s: %s", ld->origin, reason);
    return KV_ERR_INVALID;
}

static const char *scalar_of(const yaml_node_t *node)
{
    return node && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

static int read_string(config_loader *ld, const char *key, const yaml_node_t *node, char **out)
{
    const char *value = scalar_of(node);
    if (!value)
        return config_fail(ld, node, "key '%s' must be a string", key);
    char *copy = strdup(value);
    if (!copy)
        return KV_ERR_NOMEM;
    free(*out);
    *out = copy;
    return KV_OK;
}

static int read_bool(config_loader *ld, const char *key, const yaml_node_t *node, bool *out)
{
    const char *value = scalar_of(node);
    if (value && (strcasecmp(value, "true") == 0 || strcmp(value, "yes") == 0)) {
        *out = true;
        return KV_OK;
    }
    if (value && (strcasecmp(value, "false") == 0 || strcmp(value, "no") == 0)) {
        *out = false;
        return KV_OK;
    }
    return config_fail(ld, node, "key '%s' must be true or false", key);
}

/* The syncer's requests on the wire at once: 1 to CONFIG_PARALLEL_MAX. */
static int read_parallel(config_loader *ld, const char *key, const yaml_node_t *node, int *out)
{
    const char *value = scalar_of(node);
    char *end = NULL;
    long n = value ? strtol(value, &end, 10) : 0;
    if (!value || end == value || *end || n < 1 || n > CONFIG_PARALLEL_MAX)
        return config_fail(ld, node, "key '%s' must be a whole number from 1 to %d", key,
                           CONFIG_PARALLEL_MAX);
    *out = (int)n;
    return KV_OK;
}

/* Reads a scalar that must be one of `choices`; returns its index. */
static int read_choice(config_loader *ld, const char *key, const yaml_node_t *node,
                       const char *const *choices, int *index)
{
    const char *value = scalar_of(node);
    for (int i = 0; value && choices[i]; i++) {
        if (strcasecmp(value, choices[i]) == 0) {
            *index = i;
            return KV_OK;
        }
    }
    char allowed[256] = "";
    for (int i = 0; choices[i]; i++) {
        strncat(allowed, i ? ", " : "", sizeof allowed - strlen(allowed) - 1);
        strncat(allowed, choices[i], sizeof allowed - strlen(allowed) - 1);
    }
    return config_fail(ld, node, "key '%s' must be one of %s", key, allowed);
}

static int read_labels(config_loader *ld, const char *key, const yaml_node_t *node,
                       kv_config *cfg)
{
    if (node->type != YAML_MAPPING_NODE)
        return config_fail(ld, node, "key '%s' must be a map of label: value", key);
    size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    config_label *labels = calloc(n ? n : 1, sizeof *labels);
    if (!labels)
        return KV_ERR_NOMEM;
    cfg->node_selector = labels;
    size_t i = 0;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++, i++) {
        const yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        if (!scalar_of(k) || !scalar_of(v))
            return config_fail(ld, v ? v : k, "key '%s': labels must be string: string", key);
        labels[i].key = strdup(scalar_of(k));
        labels[i].value = strdup(scalar_of(v));
        cfg->n_node_selector = i + 1;
        if (!labels[i].key || !labels[i].value)
            return KV_ERR_NOMEM;
    }
    return KV_OK;
}

static int read_vip_networks(config_loader *ld, const char *key, const yaml_node_t *node,
                             kv_config *cfg)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return config_fail(ld, node, "key '%s' must be a list of {networkName, cidr}", key);
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    config_vip_network *nets = calloc(n ? n : 1, sizeof *nets);
    if (!nets)
        return KV_ERR_NOMEM;
    cfg->vip_networks = nets;
    size_t i = 0;
    for (yaml_node_item_t *it = node->data.sequence.items.start;
         it < node->data.sequence.items.top; it++, i++) {
        const yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
        cfg->n_vip_networks = i + 1;
        if (item->type != YAML_MAPPING_NODE)
            return config_fail(ld, item, "key '%s': each entry must be a map", key);
        for (yaml_node_pair_t *p = item->data.mapping.pairs.start;
             p < item->data.mapping.pairs.top; p++) {
            const yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
            const yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
            const char *name = scalar_of(k);
            int rc;
            if (name && strcmp(name, "networkName") == 0)
                rc = read_string(ld, "vipNetworkList.networkName", v, &nets[i].network_name);
            else if (name && strcmp(name, "cidr") == 0)
                rc = read_string(ld, "vipNetworkList.cidr", v, &nets[i].cidr);
            else
                rc = config_fail(ld, k, "unknown key 'vipNetworkList.%s'", name ? name : "?");
            if (rc < 0)
                return rc;
        }
        if (!nets[i].network_name)
            return config_fail(ld, item, "key 'vipNetworkList': entry %zu has no networkName", i);
    }
    return KV_OK;
}

/* An integer in [low, high]. */
static int read_int(config_loader *ld, const char *key, const yaml_node_t *node, long low,
                    long high, int *out)
{
    const char *value = scalar_of(node);
    char *end = NULL;
    errno = 0;
    long n = value ? strtol(value, &end, 10) : 0;
    if (!value || !*value || *end || errno || n < low || n > high)
        return config_fail(ld, node, "key '%s' must be an integer from %ld to %ld", key, low, high);
    *out = (int)n;
    return KV_OK;
}

/* "10.0.0.1/24" → network address 10.0.0.0, mask 24 (AKO sends the network
 * of the CIDR, as Go's net.ParseCIDR gives it). */
static bool parse_cidr(const char *text, config_cidr *out)
{
    char addr[64];
    unsigned char bytes[16];
    const char *slash = strchr(text, '/');
    char *end = NULL;
    if (!slash || (size_t)(slash - text) >= sizeof addr)
        return false;
    memcpy(addr, text, (size_t)(slash - text));
    addr[slash - text] = '\0';
    out->ipv6 = strchr(addr, ':') != NULL;
    int family = out->ipv6 ? AF_INET6 : AF_INET;
    int bits = out->ipv6 ? 128 : 32;
    errno = 0;
    long mask = strtol(slash + 1, &end, 10);
    if (!slash[1] || *end || errno || mask < 0 || mask > bits ||
        inet_pton(family, addr, bytes) != 1)
        return false;
    for (int i = 0; i < bits / 8; i++) {
        int keep = (int)mask - 8 * i;
        if (keep <= 0)
            bytes[i] = 0;
        else if (keep < 8)
            bytes[i] &= (unsigned char)(0xff << (8 - keep));
    }
    out->mask = (int)mask;
    return inet_ntop(family, bytes, out->addr, sizeof out->addr) != NULL;
}

static int read_cidrs(config_loader *ld, const yaml_node_t *node, config_node_network *net)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return config_fail(ld, node, "key 'nodeNetworkList.cidrs' must be a list of CIDRs");
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    net->cidrs = calloc(n ? n : 1, sizeof *net->cidrs);
    if (!net->cidrs)
        return KV_ERR_NOMEM;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        const yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
        const char *text = scalar_of(item);
        if (!text || !parse_cidr(text, &net->cidrs[net->n_cidrs]))
            return config_fail(ld, item,
                               "key 'nodeNetworkList.cidrs': '%s' is not an address/prefix",
                               text ? text : "?");
        net->n_cidrs++;
    }
    return KV_OK;
}

static int read_node_networks(config_loader *ld, const char *key, const yaml_node_t *node,
                              kv_config *cfg)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return config_fail(ld, node,
                           "key '%s' must be a list of {networkName or networkUUID, cidrs}", key);
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n > CONFIG_NODE_NETWORKS_MAX)
        return config_fail(ld, node, "key '%s': at most %d entries, as AKO", key,
                           CONFIG_NODE_NETWORKS_MAX);
    config_node_network *nets = calloc(n ? n : 1, sizeof *nets);
    if (!nets)
        return KV_ERR_NOMEM;
    cfg->node_networks = nets;
    size_t i = 0;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++, i++) {
        const yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
        cfg->n_node_networks = i + 1;
        if (item->type != YAML_MAPPING_NODE)
            return config_fail(ld, item, "key '%s': each entry must be a map", key);
        for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top;
             p++) {
            const yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
            const yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
            const char *name = scalar_of(k);
            int rc;
            if (name && strcmp(name, "networkName") == 0)
                rc = read_string(ld, "nodeNetworkList.networkName", v, &nets[i].network_name);
            else if (name && strcmp(name, "networkUUID") == 0)
                rc = read_string(ld, "nodeNetworkList.networkUUID", v, &nets[i].network_uuid);
            else if (name && strcmp(name, "cidrs") == 0 && !nets[i].cidrs)
                rc = read_cidrs(ld, v, &nets[i]);
            else
                rc = config_fail(ld, k, "unknown key 'nodeNetworkList.%s'", name ? name : "?");
            if (rc < 0)
                return rc;
        }
        if ((!nets[i].network_name || !*nets[i].network_name) &&
            (!nets[i].network_uuid || !*nets[i].network_uuid))
            return config_fail(
                ld, item, "key '%s': entry %zu has neither networkName nor networkUUID", key, i);
    }
    return KV_OK;
}

static int read_field(config_loader *ld, kv_config *cfg, const config_field *field,
                      const char *path, const yaml_node_t *node);

static int read_mapping(config_loader *ld, kv_config *cfg, const config_field *schema,
                        const char *parent, const yaml_node_t *node)
{
    if (node->type != YAML_MAPPING_NODE)
        return config_fail(ld, node, "key '%s' must be a map", parent ? parent : "(top level)");
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        const char *name = scalar_of(k);
        char path[128];
        snprintf(path, sizeof path, "%s%s%s", parent ? parent : "", parent ? "." : "",
                 name ? name : "?");
        const config_field *field = NULL;
        for (const config_field *f = schema; name && f->key; f++)
            if (strcmp(f->key, name) == 0)
                field = f;
        if (!field)
            return config_fail(ld, k, "unknown key '%s'", path);
        int rc = read_field(ld, cfg, field, path, v);
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

static int read_field(config_loader *ld, kv_config *cfg, const config_field *field,
                      const char *path, const yaml_node_t *node)
{
    static const char *const service_types[] = {"ClusterIP", "NodePort", NULL};
    static const char *const shard_sizes[] = {"LARGE", "MEDIUM", "SMALL", "DEDICATED", NULL};
    static const int shard_counts[] = {8, 4, 1, 0};
    static const char *const ip_families[] = {"V4", "V6", "V4_V6", NULL};
    static const char *const log_levels[] = {"DEBUG", "INFO", "WARN", "ERROR", NULL};
    static const char *const sources[] = {"replay", "kubeconfig", "inCluster", NULL};
    char *base = (char *)cfg;
    int index = 0;
    int rc;

    switch (field->type) {
    case FIELD_STRING:
        return read_string(ld, path, node, (char **)(base + field->offset));
    case FIELD_BOOL:
        return read_bool(ld, path, node, (bool *)(base + field->offset));
    case FIELD_PARALLEL:
        return read_parallel(ld, path, node, (int *)(base + field->offset));
    case FIELD_SERVICE_TYPE:
        if (scalar_of(node) && strcmp(scalar_of(node), "NodePortLocal") == 0)
            return config_fail(ld, node, "key '%s': NodePortLocal is not supported by kavi", path);
        rc = read_choice(ld, path, node, service_types, &index);
        cfg->node_port_mode = index == 1;
        return rc;
    case FIELD_SHARD_SIZE:
        rc = read_choice(ld, path, node, shard_sizes, &index);
        cfg->shard_count = shard_counts[index];
        return rc;
    case FIELD_IP_FAMILY:
        rc = read_choice(ld, path, node, ip_families, &index);
        if (rc == KV_OK) {
            free(cfg->ip_family);
            cfg->ip_family = strdup(ip_families[index]);
        }
        return rc;
    case FIELD_LOG_LEVEL:
        rc = read_choice(ld, path, node, log_levels, &index);
        cfg->log_level = (log_level)index;
        return rc;
    case FIELD_SOURCE:
        rc = read_choice(ld, path, node, sources, &index);
        cfg->source = (config_source)index;
        return rc;
    case FIELD_LABELS:
        return read_labels(ld, path, node, cfg);
    case FIELD_VIP_NETWORKS:
        return read_vip_networks(ld, path, node, cfg);
    case FIELD_NODE_NETWORKS:
        return read_node_networks(ld, path, node, cfg);
    case FIELD_GRACEFUL_TIMEOUT:
        /* The controller's range (minutes), with its two special values:
         * 0 cuts connections at once, -1 waits for them forever. */
        return read_int(ld, path, node, -1, 7200, (int *)(base + field->offset));
    case FIELD_SECTION:
        return read_mapping(ld, cfg, field->section, path, node);
    }
    return KV_ERR_INVALID;
}

static int set_default(char **field, const char *value)
{
    if (*field)
        return KV_OK;
    *field = strdup(value);
    return *field ? KV_OK : KV_ERR_NOMEM;
}

static bool cluster_name_is_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
            return false;
    return true;
}

static int config_finish(config_loader *ld, kv_config *cfg)
{
    if (!cfg->cluster_name)
        return config_fail(ld, NULL, "key 'clusterName' is required");
    if (!cluster_name_is_valid(cfg->cluster_name))
        return config_fail(ld, NULL,
                           "key 'clusterName': '%s' must be 1-32 characters of [A-Za-z0-9_-]",
                           cfg->cluster_name);
    if (cfg->source == CONFIG_SOURCE_KUBECONFIG && !cfg->kubeconfig)
        return config_fail(ld, NULL, "key 'kubernetes.kubeconfig' is required with source kubeconfig");
    int rc = KV_OK;
    rc = rc ?: set_default(&cfg->ip_family, "V4");
    rc = rc ?: set_default(&cfg->cni_plugin, "");
    rc = rc ?: set_default(&cfg->controller_version, "22.1.3");
    rc = rc ?: set_default(&cfg->tenant_name, "admin");
    rc = rc ?: set_default(&cfg->cloud_name, "Default-Cloud");
    rc = rc ?: set_default(&cfg->se_group_name, "Default-Group");
    rc = rc ?: set_default(&cfg->k8s_publish, "tcp://127.0.0.1:5561");
    rc = rc ?: set_default(&cfg->k8s_snapshot, "tcp://127.0.0.1:5562");
    rc = rc ?: set_default(&cfg->model_publish, "tcp://127.0.0.1:5563");
    rc = rc ?: set_default(&cfg->model_snapshot, "tcp://127.0.0.1:5564");
    rc = rc ?: set_default(&cfg->status_endpoint, "tcp://127.0.0.1:5565");
    rc = rc ?: set_default(&cfg->runtime_dir, "/tmp/kavi");
    if (rc < 0)
        return rc;
    size_t prefix_len = strlen(cfg->cluster_name) + 3;
    ld->name_prefix = malloc(prefix_len);
    ld->created_by = malloc(prefix_len + 2);
    if (!ld->name_prefix || !ld->created_by)
        return KV_ERR_NOMEM;
    snprintf(ld->name_prefix, prefix_len, "%s--", cfg->cluster_name);
    snprintf(ld->created_by, prefix_len + 2, "ako-%s", cfg->cluster_name);
    return KV_OK;
}

/* kv_config is followed in memory by the two derived strings. */
typedef struct {
    kv_config cfg;
    char *name_prefix;
    char *created_by;
} config_with_derived;

const char *config_name_prefix(const kv_config *cfg)
{
    return ((const config_with_derived *)cfg)->name_prefix;
}

const char *config_created_by(const kv_config *cfg)
{
    return ((const config_with_derived *)cfg)->created_by;
}

int config_load_string(kv_config **out, const char *yaml, const char *origin, char *err,
                       size_t err_len)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    config_loader ld = {.doc = &doc, .origin = origin, .err = err, .err_len = err_len};
    config_with_derived *whole = calloc(1, sizeof *whole);
    int rc = KV_OK;

    *out = NULL;
    if (!whole)
        return KV_ERR_NOMEM;
    whole->cfg.log_level = LOG_INFO;
    whole->cfg.shard_count = 8;
    whole->cfg.controller_parallel = CONFIG_PARALLEL_DEFAULT;
    whole->cfg.node_port_mode = false;
    whole->cfg.pool_graceful_disable_timeout = 1; /* AKO's, fixed there */
    if (!yaml_parser_initialize(&parser)) {
        free(whole);
        return KV_ERR_NOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, strlen(yaml));
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, err_len, "config %s: line %lu: %s", origin,
                 (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "YAML syntax error");
        yaml_parser_delete(&parser);
        config_destroy((kv_config **)&whole);
        return KV_ERR_INVALID;
    }
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        rc = config_fail(&ld, NULL, "the file is empty");
    else
        rc = read_mapping(&ld, &whole->cfg, config_schema, NULL, root);
    if (rc == KV_OK)
        rc = config_finish(&ld, &whole->cfg);
    whole->name_prefix = ld.name_prefix;
    whole->created_by = ld.created_by;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc < 0) {
        if (rc == KV_ERR_NOMEM)
            snprintf(err, err_len, "config %s: out of memory", origin);
        config_destroy((kv_config **)&whole);
        return rc;
    }
    *out = &whole->cfg;
    return KV_OK;
}

int config_load(kv_config **out, const char *path, char *err, size_t err_len)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "config %s: cannot open: %s", path, strerror(errno));
        return KV_ERR_IO;
    }
    char *text = malloc(CONFIG_MAX_FILE_BYTES + 1);
    if (!text) {
        fclose(f);
        return KV_ERR_NOMEM;
    }
    size_t n = fread(text, 1, CONFIG_MAX_FILE_BYTES + 1, f);
    fclose(f);
    if (n > CONFIG_MAX_FILE_BYTES) {
        snprintf(err, err_len, "config %s: larger than %d bytes", path, CONFIG_MAX_FILE_BYTES);
        free(text);
        return KV_ERR_TOO_LARGE;
    }
    text[n] = '\0';
    int rc = config_load_string(out, text, path, err, err_len);
    free(text);
    return rc;
}

/* One credential file: its content, trailing whitespace trimmed. */
static int read_secret_file(const char *key, const char *path, char **out, char *err,
                            size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "credentials.%s: cannot read %s: %s", key, path, strerror(errno));
        return KV_ERR_IO;
    }
    char buf[CONFIG_MAX_SECRET_BYTES + 1];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (n > CONFIG_MAX_SECRET_BYTES) {
        snprintf(err, err_len, "credentials.%s: %s is larger than %d bytes", key, path,
                 CONFIG_MAX_SECRET_BYTES);
        return KV_ERR_INVALID;
    }
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        n--;
    buf[n] = '\0';
    char *copy = strdup(buf);
    memset(buf, 0, sizeof buf);
    if (!copy)
        return KV_ERR_NOMEM;
    free(*out);
    *out = copy;
    return KV_OK;
}

int config_read_credentials(kv_config *cfg, char *err, size_t err_len)
{
    struct {
        const char *key;
        const char *path;
        char **out;
    } files[] = {
        {"usernameFile", cfg->username_file, &cfg->username},
        {"passwordFile", cfg->password_file, &cfg->password},
        {"authTokenFile", cfg->auth_token_file, &cfg->auth_token},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        int rc = files[i].path ? read_secret_file(files[i].key, files[i].path, files[i].out, err,
                                                  err_len)
                               : KV_OK;
        if (rc < 0)
            return rc;
    }
    return KV_OK;
}

void config_destroy(kv_config **cfg_p)
{
    if (!cfg_p || !*cfg_p)
        return;
    config_with_derived *whole = (config_with_derived *)*cfg_p;
    kv_config *cfg = &whole->cfg;
    for (size_t i = 0; i < cfg->n_node_selector; i++) {
        free(cfg->node_selector[i].key);
        free(cfg->node_selector[i].value);
    }
    free(cfg->node_selector);
    for (size_t i = 0; i < cfg->n_vip_networks; i++) {
        free(cfg->vip_networks[i].network_name);
        free(cfg->vip_networks[i].cidr);
    }
    free(cfg->vip_networks);
    for (size_t i = 0; i < cfg->n_node_networks; i++) {
        free(cfg->node_networks[i].network_name);
        free(cfg->node_networks[i].network_uuid);
        free(cfg->node_networks[i].cidrs);
    }
    free(cfg->node_networks);
    char **strings[] = {&cfg->cluster_name, &cfg->cni_plugin, &cfg->ip_family,
                        &cfg->controller_host, &cfg->controller_version, &cfg->tenant_name,
                        &cfg->cloud_name, &cfg->se_group_name, &cfg->replay_file,
                        &cfg->kubeconfig, &cfg->username, &cfg->password, &cfg->auth_token,
                        &cfg->username_file, &cfg->password_file, &cfg->auth_token_file,
                        &cfg->controller_ca_file, &cfg->k8s_publish, &cfg->k8s_snapshot,
                        &cfg->model_publish, &cfg->model_snapshot, &cfg->status_endpoint,
                        &cfg->runtime_dir, &whole->name_prefix, &whole->created_by};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        free(*strings[i]);
    free(whole);
    *cfg_p = NULL;
}
