/* pool_servers.c — DESIGN.md §3.
 *
 * NodePort mode, for a candidate node N (nodeSelectorLabels all match, not
 * labelled exclude-from-external-load-balancers with a value other than
 * "false", has an address of a family both ipFamily and S's ipFamilies
 * allow; IPv4 first, one server per node, one per address: see the end):
 *
 *   ETP      endpoints of S:P on N                       server for N
 *   Cluster  any                                         present, enabled
 *   Local    ≥1 ready                                    present, enabled
 *   Local    none ready, ≥1 serving and terminating      present, disabled (drain)
 *   Local    otherwise                                   absent
 *   any      N deleting / ToBeDeletedByClusterAutoscaler present (if it would be), disabled
 *
 * The Local rows mirror what kube-proxy does with traffic arriving on N's
 * NodePort (k8s.md §4.1): local ready endpoints first, else local serving
 * terminating endpoints, else drop. "Endpoints of S:P on N" are those of
 * every slice of S having a port named P.name with P's protocol, whose
 * nodeName is N, in the slices of the family of N's server address (each
 * family is proxied to its own endpoints only; IPv4 is tried first). The
 * same endpoint may sit in two slices for a moment; for a per-node verdict
 * that needs no deduplication (any ready copy makes the node ready), while
 * ClusterIP mode merges copies by address, ready winning.
 *
 * A node being deleted (or about to be, by the cluster autoscaler) stays as
 * a disabled server so open connections can finish, and disappears with the
 * Node object — the same signal kube-proxy's /healthz gives (KEP-3836).
 *
 * A pool never holds the same address:port twice (the controller keys
 * servers by it). Nodes that share an address (a NAT, a copied VM, a CNI
 * reporting one transport address) give one server, named after one of
 * them, and a warning names them all. It is enabled when any of them is:
 * the address receives traffic for all of them alike, and one node that can
 * serve it is reason enough to send it; disabled only when every one of
 * them drains. */
#include "planner/pool_servers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "common/error.h"
#include "common/log.h"

#define EXCLUDE_LABEL "node.kubernetes.io/exclude-from-external-load-balancers"

typedef enum { SERVER_ABSENT = 0, SERVER_DISABLED = 1, SERVER_ENABLED = 2 } server_state;

/* ---- list --------------------------------------------------------------- */

void pool_server_list_clear(pool_server_list *list)
{
    free(list->items);
    memset(list, 0, sizeof *list);
}

static pool_server *list_append(pool_server_list *list)
{
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 8;
        pool_server *items = realloc(list->items, cap * sizeof *items);
        if (!items)
            return NULL;
        list->items = items;
        list->cap = cap;
    }
    pool_server *server = &list->items[list->n++];
    memset(server, 0, sizeof *server);
    return server;
}

static int compare_servers(const void *a, const void *b)
{
    const pool_server *x = a, *y = b;
    int by_node = strcmp(x->node_name ? x->node_name : "", y->node_name ? y->node_name : "");
    return by_node ? by_node : strcmp(x->address, y->address);
}

/* ---- addresses ---------------------------------------------------------- */

/* Copies `text` (n bytes) into buf when it is an address of the family. */
static bool take_address(char *buf, size_t buf_len, const char *text, size_t n, bool ipv6)
{
    char copy[INET6_ADDRSTRLEN];
    unsigned char bytes[sizeof(struct in6_addr)];
    if (!text || n == 0 || n >= sizeof copy || n >= buf_len)
        return false;
    memcpy(copy, text, n);
    copy[n] = '\0';
    if (inet_pton(ipv6 ? AF_INET6 : AF_INET, copy, bytes) != 1)
        return false;
    memcpy(buf, copy, n + 1);
    return true;
}

static bool take_string_address(char *buf, size_t buf_len, const char *text, bool ipv6)
{
    return text && take_address(buf, buf_len, text, strlen(text), ipv6);
}

/* node.antrea.io/transport-addresses: a comma list; the first of the family. */
static bool take_antrea_address(char *buf, size_t buf_len, const char *list, bool ipv6)
{
    const char *p = list;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *start = p;
        while (n && (*start == ' ' || *start == '\t')) {
            start++;
            n--;
        }
        while (n && (start[n - 1] == ' ' || start[n - 1] == '\t'))
            n--;
        if (take_address(buf, buf_len, start, n, ipv6))
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* One family: the CNI's own view of the node first, then InternalIP. */
static bool node_address_of_family(char *buf, size_t buf_len, const kv_config *cfg,
                                   const proto_node *node, bool ipv6)
{
    const char *cni = cfg->cni_plugin ? cfg->cni_plugin : "";
    if (strcmp(cni, "calico") == 0 &&
        take_string_address(buf, buf_len, ipv6 ? node->calico_ipv6 : node->calico_ipv4, ipv6))
        return true;
    if (strcmp(cni, "antrea") == 0 &&
        take_antrea_address(buf, buf_len, node->antrea_transport, ipv6))
        return true;
    return take_string_address(buf, buf_len, ipv6 ? node->internal_ipv6 : node->internal_ipv4,
                               ipv6);
}

static bool config_enables(const kv_config *cfg, bool ipv6)
{
    const char *family = cfg->ip_family ? cfg->ip_family : "V4";
    return strcmp(family, ipv6 ? "V4" : "V6") != 0;
}

/* AKO (PopulateServersForNodePort) reads a Service without ipFamilies as
 * IPv4. The API server fills the list on every Service but ExternalName,
 * so only hand-written manifests and bodies from before the field get
 * here. This is AKO's policy, not an API default, hence decided here and
 * nowhere else: the projection keeps "none listed". */
static bool service_wants(const proto_service *svc, bool ipv6)
{
    if (!svc->family_ipv4 && !svc->family_ipv6)
        return !ipv6;
    return ipv6 ? svc->family_ipv6 : svc->family_ipv4;
}

/* What a node's endpoints allow, per family: [0] IPv4, [1] IPv6. */
static const server_state every_family[2] = {SERVER_ENABLED, SERVER_ENABLED};

/* One server per node, IPv4 first, as AKO: the first family the config and
 * the Service allow, the node has an address of, and the node's endpoints
 * of that family serve (`state`). kube-proxy sends a family's NodePort
 * traffic only to endpoints of the same family, so with Local an IPv4
 * address in front of IPv6-only local endpoints would drop. A dual-stack
 * Service on a dual-stack node under V4_V6 gets the IPv4 address. */
static bool address_for(char *buf, size_t buf_len, bool *ipv6, const kv_config *cfg,
                        const proto_service *svc, const proto_node *node,
                        const server_state state[2])
{
    for (int family = 0; family < 2; family++) {
        bool v6 = family == 1;
        if (state[family] != SERVER_ABSENT && config_enables(cfg, v6) &&
            service_wants(svc, v6) && node_address_of_family(buf, buf_len, cfg, node, v6)) {
            *ipv6 = v6;
            return true;
        }
    }
    return false;
}

bool pool_servers_node_address(char *buf, size_t buf_len, bool *ipv6, const kv_config *cfg,
                               const proto_service *svc, const proto_node *node)
{
    return address_for(buf, buf_len, ipv6, cfg, svc, node, every_family);
}

/* ---- candidates --------------------------------------------------------- */

static const char *node_label(const proto_node *node, const char *key)
{
    for (size_t i = 0; i < node->n_labels; i++)
        if (node->labels[i].key && strcmp(node->labels[i].key, key) == 0)
            return node->labels[i].value ? node->labels[i].value : "";
    return NULL;
}

static bool node_matches_selector(const kv_config *cfg, const proto_node *node)
{
    for (size_t i = 0; i < cfg->n_node_selector; i++) {
        const char *value = node_label(node, cfg->node_selector[i].key);
        if (!value || strcmp(value, cfg->node_selector[i].value) != 0)
            return false;
    }
    return true;
}

/* Implementations disagree on this label (k8s.md §4.7): presence excludes
 * for MetalLB and AWS, an unparsable value excludes for cloud-provider.
 * Only an explicit "false" keeps the node, which is both cautious and what
 * a user who wrote "false" means. */
static bool node_is_excluded(const proto_node *node)
{
    const char *value = node_label(node, EXCLUDE_LABEL);
    return value && strcmp(value, "false") != 0;
}

/* Selected and not excluded: what makes a node a candidate whatever the
 * Service, before the address families are looked at. */
static bool node_is_eligible(const kv_config *cfg, const proto_node *node)
{
    return node_matches_selector(cfg, node) && !node_is_excluded(node);
}

/* The address a candidate node serves svc on; false when it is no candidate. */
static bool candidate_address(char *buf, size_t buf_len, bool *ipv6, const kv_config *cfg,
                              const proto_service *svc, const proto_node *node)
{
    return node_is_eligible(cfg, node) &&
           pool_servers_node_address(buf, buf_len, ipv6, cfg, svc, node);
}

bool pool_servers_node_is_candidate(const kv_config *cfg, const proto_service *svc,
                                    const proto_node *node)
{
    char address[INET6_ADDRSTRLEN];
    bool ipv6;
    return candidate_address(address, sizeof address, &ipv6, cfg, svc, node);
}

static bool node_is_draining(const proto_node *node)
{
    return node->deleting || node->to_be_deleted;
}

/* All that any Service's pool can see of a node: its address of each
 * family the config enables (each Service picks one of them), "" when it
 * has none or is no candidate, and its drain state. */
typedef struct {
    char ipv4[INET6_ADDRSTRLEN];
    char ipv6[INET6_ADDRSTRLEN];
    bool draining;
} node_view;

static void node_view_of(node_view *view, const kv_config *cfg, const proto_node *node)
{
    memset(view, 0, sizeof *view);
    if (!node_is_eligible(cfg, node))
        return;
    if (config_enables(cfg, false) &&
        !node_address_of_family(view->ipv4, sizeof view->ipv4, cfg, node, false))
        view->ipv4[0] = '\0';
    if (config_enables(cfg, true) &&
        !node_address_of_family(view->ipv6, sizeof view->ipv6, cfg, node, true))
        view->ipv6[0] = '\0';
    view->draining = node_is_draining(node);
}

bool pool_servers_node_equivalent(const kv_config *cfg, const proto_node *a, const proto_node *b)
{
    node_view view_a, view_b;
    node_view_of(&view_a, cfg, a);
    node_view_of(&view_b, cfg, b);
    bool in_a_pool_a = view_a.ipv4[0] || view_a.ipv6[0];
    bool in_a_pool_b = view_b.ipv4[0] || view_b.ipv6[0];
    if (!in_a_pool_a && !in_a_pool_b)
        return true; /* in no pool before, in none after */
    /* Both families count even though a Service uses one: an IPv6-only
     * Service sees a new IPv6 address on a node whose IPv4 stays. */
    return strcmp(view_a.ipv4, view_b.ipv4) == 0 && strcmp(view_a.ipv6, view_b.ipv6) == 0 &&
           view_a.draining == view_b.draining;
}

/* ---- slices ------------------------------------------------------------- */

static const proto_slice_port *slice_port_for(const proto_endpoint_slice *slice,
                                              const proto_service_port *port)
{
    for (size_t i = 0; i < slice->n_ports; i++) {
        const proto_slice_port *p = &slice->ports[i];
        if (p->name && port->name && strcmp(p->name, port->name) == 0 && p->protocol &&
            port->protocol && strcmp(p->protocol, port->protocol) == 0)
            return p;
    }
    return NULL;
}

static server_state endpoint_state(const proto_endpoint *endpoint)
{
    if (endpoint->ready)
        return SERVER_ENABLED;
    if (endpoint->serving && endpoint->terminating)
        return SERVER_DISABLED; /* drain: finish open connections, take no new ones */
    return SERVER_ABSENT;
}

/* ---- NodePort mode ------------------------------------------------------ */

typedef struct node_verdict {
    const char *node_name; /* borrowed from a slice in the store */
    server_state state[2]; /* per family of the slices: [0] IPv4, [1] IPv6 */
    UT_hash_handle hh;
} node_verdict;

typedef struct {
    const proto_service_port *port;
    node_verdict *verdicts;
    int rc;
} local_scan;

/* Best state of the endpoints of S:P on each node. */
static void scan_local_slice(const proto_endpoint_slice *slice, void *payload)
{
    local_scan *scan = payload;
    if (scan->rc < 0 || !slice_port_for(slice, scan->port))
        return;
    if (slice->address_type && strcmp(slice->address_type, "FQDN") == 0)
        return; /* kube-proxy ignores FQDN slices */
    int family = slice->address_type && strcmp(slice->address_type, "IPv6") == 0;
    for (size_t i = 0; i < slice->n_endpoints; i++) {
        const proto_endpoint *endpoint = &slice->endpoints[i];
        node_verdict *verdict = NULL;
        if (!endpoint->node_name)
            continue;
        HASH_FIND_STR(scan->verdicts, endpoint->node_name, verdict);
        if (!verdict) {
            verdict = calloc(1, sizeof *verdict);
            if (!verdict) {
                scan->rc = KV_ERR_NOMEM;
                return;
            }
            verdict->node_name = endpoint->node_name;
            HASH_ADD_KEYPTR(hh, scan->verdicts, verdict->node_name, strlen(verdict->node_name),
                            verdict);
        }
        server_state state = endpoint_state(endpoint);
        if (state > verdict->state[family])
            verdict->state[family] = state;
    }
}

static int add_node_server(pool_server_list *out, const kv_config *cfg, const proto_service *svc,
                           const proto_node *node, int32_t node_port,
                           const server_state state_of_family[2])
{
    char address[INET6_ADDRSTRLEN];
    bool ipv6 = false;
    if (!node_is_eligible(cfg, node) ||
        !address_for(address, sizeof address, &ipv6, cfg, svc, node, state_of_family))
        return KV_OK;
    server_state state = state_of_family[ipv6];
    pool_server *server = list_append(out);
    if (!server)
        return KV_ERR_NOMEM;
    memcpy(server->address, address, sizeof address);
    server->ipv6 = ipv6;
    server->port = node_port;
    server->node_name = node->name;
    server->enabled = state == SERVER_ENABLED && !node_is_draining(node);
    return KV_OK;
}

typedef struct {
    pool_server_list *out;
    const kv_config *cfg;
    const proto_service *svc;
    int32_t node_port;
    int rc;
} cluster_scan;

static void add_cluster_node(const proto_node *node, void *payload)
{
    cluster_scan *scan = payload;
    if (scan->rc == 0)
        scan->rc =
            add_node_server(scan->out, scan->cfg, scan->svc, node, scan->node_port, every_family);
}

static int servers_for_node_port(pool_server_list *out, const kv_config *cfg, const store_t *store,
                                 const char *service_key, const proto_service *svc,
                                 const proto_service_port *port)
{
    if (port->node_port == 0)
        return KV_OK; /* nothing to send traffic to; the translator says so */
    if (!svc->external_traffic_local) {
        cluster_scan scan = {.out = out, .cfg = cfg, .svc = svc, .node_port = port->node_port};
        store_foreach_node(store, add_cluster_node, &scan);
        return scan.rc;
    }
    local_scan scan = {.port = port};
    store_foreach_slice_of(store, service_key, scan_local_slice, &scan);
    node_verdict *verdict, *tmp;
    HASH_ITER(hh, scan.verdicts, verdict, tmp) {
        const proto_node *node = store_node(store, verdict->node_name);
        if (scan.rc == 0 && node)
            scan.rc = add_node_server(out, cfg, svc, node, port->node_port, verdict->state);
        HASH_DEL(scan.verdicts, verdict);
        free(verdict);
    }
    return scan.rc;
}

/* ---- ClusterIP mode ----------------------------------------------------- */

typedef struct endpoint_pick {
    char address[INET6_ADDRSTRLEN];
    bool ipv6;
    int32_t port;
    const char *node_name;
    server_state state;
    UT_hash_handle hh;
} endpoint_pick;

typedef struct {
    const kv_config *cfg;
    const proto_service_port *port;
    endpoint_pick *picks;
    int rc;
} endpoint_scan;

static bool slice_family_wanted(const kv_config *cfg, const char *address_type, bool *ipv6)
{
    const char *family = cfg->ip_family ? cfg->ip_family : "V4";
    if (!address_type)
        return false;
    if (strcmp(address_type, "IPv4") == 0) {
        *ipv6 = false;
        return strcmp(family, "V6") != 0;
    }
    if (strcmp(address_type, "IPv6") == 0) {
        *ipv6 = true;
        return strcmp(family, "V4") != 0;
    }
    return false; /* FQDN: nothing an Avi pool server can hold */
}

static void scan_endpoint_slice(const proto_endpoint_slice *slice, void *payload)
{
    endpoint_scan *scan = payload;
    const proto_slice_port *slice_port = slice_port_for(slice, scan->port);
    bool ipv6 = false;
    if (scan->rc < 0 || !slice_port || !slice_family_wanted(scan->cfg, slice->address_type, &ipv6))
        return;
    for (size_t i = 0; i < slice->n_endpoints; i++) {
        const proto_endpoint *endpoint = &slice->endpoints[i];
        server_state state = endpoint_state(endpoint);
        char address[INET6_ADDRSTRLEN];
        endpoint_pick *pick = NULL;
        if (state == SERVER_ABSENT ||
            !take_string_address(address, sizeof address, endpoint->address, ipv6))
            continue;
        HASH_FIND_STR(scan->picks, address, pick);
        if (pick) {
            /* The same endpoint in two slices: the better condition wins;
             * on a tie the lower port, so the choice is stable. */
            if (state < pick->state || (state == pick->state && slice_port->port >= pick->port))
                continue;
        } else {
            pick = calloc(1, sizeof *pick);
            if (!pick) {
                scan->rc = KV_ERR_NOMEM;
                return;
            }
            memcpy(pick->address, address, sizeof address);
            HASH_ADD_STR(scan->picks, address, pick);
        }
        pick->ipv6 = ipv6;
        pick->port = slice_port->port;
        pick->state = state;
        if (endpoint->node_name || !pick->node_name)
            pick->node_name = endpoint->node_name;
    }
}

static int servers_for_endpoints(pool_server_list *out, const kv_config *cfg, const store_t *store,
                                 const char *service_key, const proto_service_port *port)
{
    endpoint_scan scan = {.cfg = cfg, .port = port};
    store_foreach_slice_of(store, service_key, scan_endpoint_slice, &scan);
    endpoint_pick *pick, *tmp;
    HASH_ITER(hh, scan.picks, pick, tmp) {
        pool_server *server = scan.rc == 0 ? list_append(out) : NULL;
        if (server) {
            memcpy(server->address, pick->address, sizeof pick->address);
            server->ipv6 = pick->ipv6;
            server->port = pick->port;
            server->node_name = pick->node_name;
            server->enabled = pick->state == SERVER_ENABLED;
        } else if (scan.rc == 0) {
            scan.rc = KV_ERR_NOMEM;
        }
        HASH_DEL(scan.picks, pick);
        free(pick);
    }
    return scan.rc;
}

/* ---- one server per address --------------------------------------------- */

/* Address, port, then the server that stands for the group first: enabled
 * before disabled, then by node name. */
static int compare_by_address(const void *a, const void *b)
{
    const pool_server *x = a, *y = b;
    int c = strcmp(x->address, y->address);
    if (c)
        return c;
    if (x->port != y->port)
        return x->port < y->port ? -1 : 1;
    if (x->enabled != y->enabled)
        return x->enabled ? -1 : 1;
    return strcmp(x->node_name ? x->node_name : "", y->node_name ? y->node_name : "");
}

static bool same_endpoint(const pool_server *a, const pool_server *b)
{
    return a->port == b->port && strcmp(a->address, b->address) == 0;
}

#define SHARED_NAMES_SHOWN 5

static void warn_shared(const pool_server *group, size_t n, const proto_service *svc,
                        const proto_service_port *port)
{
    char names[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && i < SHARED_NAMES_SHOWN; i++) {
        int w = snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                         group[i].node_name ? group[i].node_name : "?");
        if (w < 0 || (size_t)w >= sizeof names - used)
            break;
        used += (size_t)w;
    }
    if (n > SHARED_NAMES_SHOWN)
        snprintf(names + used, sizeof names - used, " and %zu more", n - SHARED_NAMES_SHOWN);
    log_warn("Service %s/%s port %d: nodes %s share the address %s; they give one server "
             "(%s, %s)",
             svc->namespace, svc->name, (int)port->port, names, group[0].address,
             group[0].node_name ? group[0].node_name : "?",
             group[0].enabled ? "enabled: one of them can serve" : "disabled: all drain");
}

/* Keeps one server per address:port; list is left sorted by address. */
static void merge_shared_addresses(pool_server_list *list, const proto_service *svc,
                                   const proto_service_port *port)
{
    size_t kept = 0;
    qsort(list->items, list->n, sizeof *list->items, compare_by_address);
    for (size_t i = 0; i < list->n;) {
        size_t end = i + 1;
        while (end < list->n && same_endpoint(&list->items[i], &list->items[end]))
            end++;
        if (end - i > 1)
            warn_shared(&list->items[i], end - i, svc, port);
        list->items[kept++] = list->items[i];
        i = end;
    }
    list->n = kept;
}

/* ---- entry point -------------------------------------------------------- */

int pool_servers_compute(pool_server_list *out, const kv_config *cfg, const store_t *store,
                         const proto_service *svc, const proto_service_port *port)
{
    char service_key[512];
    int rc;
    if (store_key(service_key, sizeof service_key, svc->namespace, svc->name) < 0)
        return KV_ERR_TOO_LARGE;
    if (cfg->node_port_mode)
        rc = servers_for_node_port(out, cfg, store, service_key, svc, port);
    else
        rc = servers_for_endpoints(out, cfg, store, service_key, port);
    if (rc < 0) {
        pool_server_list_clear(out);
        return rc;
    }
    if (out->n > 1) {
        merge_shared_addresses(out, svc, port);
        qsort(out->items, out->n, sizeof *out->items, compare_servers);
    }
    return KV_OK;
}
