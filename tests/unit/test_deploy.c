/* deploy/ as a user applies it: every manifest parses, kustomize finds every
 * file it is given and no manifest is left out, the ConfigMap's config loads
 * with kavi's own loader, the ClusterRole grants what the watcher does and
 * nothing more, the Deployment runs the programs `make install` installs on
 * the mounted config and Secret, and the image installs the libraries the
 * programs link. Paths are relative to the repository root (tests/run cds
 * there). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/config.h"
#include "common/error.h"
#include "watcher/manifest.h"

#define DEPLOY_DIR "deploy"
#define MAX_FILE_BYTES (1024 * 1024)
#define MAX_FILES 64
/* Where `make install` puts the programs (Makefile, target install). */
#define INSTALL_DIR "/usr/local/bin"

/* Every kind the live watcher lists and watches: watcher/reflector.c,
 * reflector_kinds[] (static there). test_watched_kinds_match_the_reflector_table
 * reads that table from the source so that this list cannot fall behind. */
typedef struct {
    const char *group; /* "" for the core group */
    const char *resource;
} api_resource;

static const api_resource watched_kinds[] = {
    {"", "nodes"},
    {"", "services"},
    {"discovery.k8s.io", "endpointslices"},
    {"", "namespaces"},
    {"", "secrets"},
    {"networking.k8s.io", "ingresses"},
    {"networking.k8s.io", "ingressclasses"},
    {"route.openshift.io", "routes"},
    {"gateway.networking.k8s.io", "gatewayclasses"},
    {"gateway.networking.k8s.io", "gateways"},
    {"gateway.networking.k8s.io", "httproutes"},
};
#define N_WATCHED (sizeof watched_kinds / sizeof watched_kinds[0])

/* The status writer: PATCH /api/v1/namespaces/<ns>/services/<name>/status
 * (watcher/kube_status.c). */
static const api_resource status_resource = {"", "services/status"};
static const char *const status_verb = "patch";

/* ---- reading deploy/ --------------------------------------------------------- */

typedef struct {
    char path[512];
    json_t *docs; /* array of every non-empty document */
} deploy_file;

typedef struct {
    deploy_file files[MAX_FILES];
    size_t n;
    char error[1024];
} deploy_tree;

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = malloc(MAX_FILE_BYTES + 1);
    size_t n = text ? fread(text, 1, MAX_FILE_BYTES + 1, f) : 0;
    fclose(f);
    if (!text || n > MAX_FILE_BYTES) {
        free(text);
        return NULL;
    }
    text[n] = '\0';
    if (len)
        *len = n;
    return text;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_yaml_name(const char *name)
{
    return has_suffix(name, ".yaml") || has_suffix(name, ".yml");
}

static int collect_document(json_t *root, unsigned long line, void *payload)
{
    (void)line;
    if (root)
        json_array_append_new((json_t *)payload, root);
    return 0;
}

static int tree_add_file(deploy_tree *t, const char *path)
{
    if (t->n == MAX_FILES) {
        snprintf(t->error, sizeof t->error, "more than %d YAML files under %s", MAX_FILES,
                 DEPLOY_DIR);
        return -1;
    }
    size_t len = 0;
    char *text = read_text(path, &len);
    if (!text) {
        snprintf(t->error, sizeof t->error, "%s: cannot read", path);
        return -1;
    }
    deploy_file *f = &t->files[t->n++];
    snprintf(f->path, sizeof f->path, "%s", path);
    f->docs = json_array();
    manifest_error err = {0};
    int rc = manifest_parse(text, len, collect_document, f->docs, &err);
    free(text);
    if (rc < 0) {
        snprintf(t->error, sizeof t->error, "%s:%lu: %s", path, err.line + 1, err.reason);
        return -1;
    }
    if (json_array_size(f->docs) == 0) {
        snprintf(t->error, sizeof t->error, "%s: no YAML document in it", path);
        return -1;
    }
    return 0;
}

static int tree_walk(deploy_tree *t, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(t->error, sizeof t->error, "%s: cannot open the directory", dir);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = tree_walk(t, path);
        else if (S_ISREG(st.st_mode) && is_yaml_name(e->d_name))
            rc = tree_add_file(t, path);
    }
    closedir(d);
    return rc;
}

static void tree_free(deploy_tree *t)
{
    for (size_t i = 0; i < t->n; i++)
        json_decref(t->files[i].docs);
    free(t);
}

/* Loads every YAML file under deploy/ or fails the test with the first
 * problem, naming the file and line. */
static deploy_tree *tree_load(void)
{
    deploy_tree *t = calloc(1, sizeof *t);
    assert_non_null(t);
    if (tree_walk(t, DEPLOY_DIR) < 0) {
        char error[sizeof t->error];
        memcpy(error, t->error, sizeof error);
        tree_free(t);
        fail_msg("%s", error);
    }
    return t;
}

static const char *str_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static const char *kind_of(const json_t *doc) { return str_at(doc, "kind"); }

static const char *name_of(const json_t *doc)
{
    return str_at(json_object_get(doc, "metadata"), "name");
}

static bool is_top_level(const deploy_file *f)
{
    return strchr(f->path + strlen(DEPLOY_DIR "/"), '/') == NULL;
}

/* The one document of `kind` among the base manifests (the files directly in deploy/);
 * fails the test when there is none or more than one. */
static json_t *base_doc(const deploy_tree *t, const char *kind)
{
    json_t *found = NULL;
    for (size_t i = 0; i < t->n; i++) {
        if (!is_top_level(&t->files[i]))
            continue;
        size_t j;
        json_t *doc;
        json_array_foreach(t->files[i].docs, j, doc) {
            const char *k = kind_of(doc);
            if (k && strcmp(k, kind) == 0) {
                if (found)
                    fail_msg("more than one %s in %s/", kind, DEPLOY_DIR);
                found = doc;
            }
        }
    }
    if (!found)
        fail_msg("no %s in %s/*.yaml", kind, DEPLOY_DIR);
    return found;
}

static bool json_array_has_string(const json_t *array, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v) {
        if (json_string_value(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* ---- the pieces the Deployment and the config share ------------------------ */

typedef struct {
    json_t *deployment, *configmap, *secret, *pod; /* borrowed from the tree */
    const char *configmap_volume;                /* pod volume holding the ConfigMap */
    const char *secret_volume;                   /* pod volume holding the Secret */
} deploy_parts;

static deploy_parts parts_of(const deploy_tree *t)
{
    deploy_parts p = {0};
    p.deployment = base_doc(t, "Deployment");
    p.configmap = base_doc(t, "ConfigMap");
    p.secret = base_doc(t, "Secret");
    p.pod = json_object_get(json_object_get(json_object_get(p.deployment, "spec"), "template"),
                            "spec");
    assert_non_null(p.pod);
    size_t i;
    json_t *vol;
    json_array_foreach(json_object_get(p.pod, "volumes"), i, vol) {
        const char *cm = str_at(json_object_get(vol, "configMap"), "name");
        const char *secret = str_at(json_object_get(vol, "secret"), "secretName");
        if (cm && strcmp(cm, name_of(p.configmap)) == 0)
            p.configmap_volume = str_at(vol, "name");
        if (secret && strcmp(secret, name_of(p.secret)) == 0) {
            p.secret_volume = str_at(vol, "name");
            if (json_object_get(json_object_get(vol, "secret"), "items"))
                fail_msg("volume %s: items are not expected; each Secret key is a file",
                         p.secret_volume);
        }
    }
    if (!p.configmap_volume)
        fail_msg("the Deployment has no volume of ConfigMap %s", name_of(p.configmap));
    if (!p.secret_volume)
        fail_msg("the Deployment has no volume of Secret %s", name_of(p.secret));
    return p;
}

static const char *mount_path(const json_t *container, const char *volume)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(container, "volumeMounts"), i, m) {
        const char *name = str_at(m, "name");
        if (name && strcmp(name, volume) == 0)
            return str_at(m, "mountPath");
    }
    return NULL;
}

/* The value of a Secret key as a pod sees it (stringData, or data in
 * base64); NULL when the key is not there or not base64. Owned by the
 * caller. */
static char *secret_value(const json_t *secret, const char *key)
{
    const char *plain = str_at(json_object_get(secret, "stringData"), key);
    if (plain)
        return strdup(plain);
    const char *encoded = str_at(json_object_get(secret, "data"), key);
    char *decoded = NULL;
    size_t len = 0;
    if (encoded && base64_decode(&decoded, &len, encoded, strlen(encoded), true) < 0)
        return NULL; /* not base64: kubectl would refuse it */
    return decoded;
}

/* ---- 1. every document parses ---------------------------------------------- */

static void test_every_yaml_document_in_deploy_parses(void **state)
{
    (void)state;
    deploy_tree *t = tree_load();
    bool root_kustomization = false;
    for (size_t i = 0; i < t->n; i++) {
        const deploy_file *f = &t->files[i];
        if (strcmp(f->path, DEPLOY_DIR "/kustomization.yaml") == 0)
            root_kustomization = true;
        size_t j;
        json_t *doc;
        json_array_foreach(f->docs, j, doc) {
            if (!json_is_object(doc))
                fail_msg("%s: document %zu is not a mapping", f->path, j + 1);
            if (!str_at(doc, "apiVersion") || !kind_of(doc))
                fail_msg("%s: document %zu has no apiVersion or kind", f->path, j + 1);
            bool kustomize = strcmp(kind_of(doc), "Kustomization") == 0 ||
                             strcmp(kind_of(doc), "Component") == 0;
            if (!kustomize && (!name_of(doc) || !*name_of(doc)))
                fail_msg("%s: %s has no metadata.name", f->path, kind_of(doc));
        }
    }
    assert_true(root_kustomization);
    /* namespace, account, rbac, config, secret, deployment, kustomization */
    assert_true(t->n >= 7);
    tree_free(t);
}

/* ---- 2. kustomizations name exactly the files there ------------------------- */

static bool path_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Checks one entry of resources/patches/components and marks the file it
 * names as referenced. */
static void check_entry(const char *kustomization, const char *dir, const char *field,
                        const char *entry, json_t *referenced)
{
    char path[1024];
    if (!entry)
        fail_msg("%s: an entry of %s is not a string", kustomization, field);
    snprintf(path, sizeof path, "%s/%s", dir, entry);
    if (json_object_get(referenced, entry))
        fail_msg("%s: %s lists %s twice", kustomization, field, entry);
    json_object_set_new(referenced, entry, json_true());
    if (strcmp(field, "patches") != 0 && path_is_dir(path)) {
        char inner[1100];
        snprintf(inner, sizeof inner, "%s/kustomization.yaml", path);
        if (!path_is_file(inner))
            fail_msg("%s: %s entry %s is a directory without kustomization.yaml",
                     kustomization, field, entry);
        return;
    }
    if (strcmp(field, "components") == 0 || !path_is_file(path))
        fail_msg("%s: %s lists %s, which does not exist", kustomization, field, entry);
}

static void check_kustomization(const deploy_file *f)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", f->path);
    *strrchr(dir, '/') = '\0';
    json_t *k = json_array_get(f->docs, 0);
    json_t *referenced = json_object();
    static const char *const fields[] = {"resources", "components", "patches"};

    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        json_t *list = json_object_get(k, fields[i]);
        size_t j;
        json_t *entry;
        json_array_foreach(list, j, entry) {
            const char *name = json_is_object(entry) ? str_at(entry, "path")
                                                     : json_string_value(entry);
            check_entry(f->path, dir, fields[i], name, referenced);
        }
    }
    /* Every manifest beside the kustomization is one it uses: a file left
     * out is a file `kubectl apply -k` silently skips. */
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!is_yaml_name(e->d_name) || strcmp(e->d_name, "kustomization.yaml") == 0 ||
            !path_is_file(path))
            continue;
        if (!json_object_get(referenced, e->d_name)) {
            closedir(d);
            fail_msg("%s is listed in no field of %s: kubectl apply -k would skip it", path,
                     f->path);
        }
    }
    closedir(d);
    json_decref(referenced);
}

static void test_kustomizations_list_exactly_the_files_there(void **state)
{
    (void)state;
    deploy_tree *t = tree_load();
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (!has_suffix(t->files[i].path, "/kustomization.yaml"))
            continue;
        check_kustomization(&t->files[i]);
        n++;
    }
    assert_true(n >= 1);
    /* The root lists the six manifests of the pod and its rights. */
    json_t *root = NULL;
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->files[i].path, DEPLOY_DIR "/kustomization.yaml") == 0)
            root = json_array_get(t->files[i].docs, 0);
    assert_non_null(root);
    assert_true(json_array_size(json_object_get(root, "resources")) >= 6);
    tree_free(t);
}

/* ---- 3. the ConfigMap's config loads --------------------------------------- */

/* Copy of text with every `from` replaced by `to`. */
static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t from_len = strlen(from), to_len = strlen(to), n = 0;
    for (const char *p = strstr(text, from); p; p = strstr(p + from_len, from))
        n++;
    char *out = malloc(strlen(text) + n * to_len + 1);
    assert_non_null(out);
    char *w = out;
    const char *r = text;
    for (const char *p = strstr(r, from); p; p = strstr(r, from)) {
        memcpy(w, r, (size_t)(p - r));
        w += p - r;
        memcpy(w, to, to_len);
        w += to_len;
        r = p + from_len;
    }
    memcpy(w, r, strlen(r) + 1);
    return out;
}

/* Loads config text as kavi-syncer would see it: the Secret's keys are
 * written as files into a scratch directory that stands for the Secret's
 * mount, the mount path in the text is pointed there, and the credential
 * files are read as the syncer reads them at start. The directory is gone on return, so a
 * failing load leaves nothing behind. Returns 0 or negative with err set. */
static int load_as_mounted(kv_config **cfg, const char *text, const char *origin,
                           const json_t *secret, const char *secret_mount, char *err,
                           size_t err_len)
{
    char dir[] = "/tmp/kavi-test-deploy-XXXXXX";
    if (!mkdtemp(dir)) {
        snprintf(err, err_len, "mkdtemp failed");
        return KV_ERR_IO;
    }
    json_t *keys = json_object();
    json_object_update(keys, json_object_get(secret, "data"));
    json_object_update(keys, json_object_get(secret, "stringData"));
    int rc = json_object_size(keys) ? KV_OK : KV_ERR_NOT_FOUND;
    if (rc < 0)
        snprintf(err, err_len, "Secret %s has no keys", name_of(secret));
    const char *key;
    json_t *value;
    json_object_foreach(keys, key, value) {
        char path[512];
        char *content = secret_value(secret, key);
        snprintf(path, sizeof path, "%s/%s", dir, key);
        FILE *f = content ? fopen(path, "w") : NULL;
        if (!f || fputs(content, f) < 0) {
            snprintf(err, err_len, "Secret %s: key %s is not base64 or cannot be written",
                     name_of(secret), key);
            rc = KV_ERR_IO;
        }
        if (f && fclose(f) != 0)
            rc = KV_ERR_IO;
        free(content);
    }
    if (rc == KV_OK) {
        char from[512], to[512];
        snprintf(from, sizeof from, "%s/", secret_mount);
        snprintf(to, sizeof to, "%s/", dir);
        char *mounted = replace_all(text, from, to);
        rc = config_load_string(cfg, mounted, origin, err, err_len);
        rc = rc ?: config_read_credentials(*cfg, err, err_len);
        free(mounted);
    }
    json_object_foreach(keys, key, value) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, key);
        unlink(path);
    }
    rmdir(dir);
    json_decref(keys);
    return rc;
}

static void test_configmap_config_loads_with_kavi_loader(void **state)
{
    (void)state;
    deploy_tree *t = tree_load();
    deploy_parts p = parts_of(t);
    json_t *containers = json_object_get(p.pod, "containers");
    const json_t *syncer = NULL;
    size_t index;
    json_t *c;
    json_array_foreach(containers, index, c) {
        const char *cmd = json_string_value(json_array_get(json_object_get(c, "command"), 0));
        const char *base = cmd ? strrchr(cmd, '/') : NULL;
        if (base && strcmp(base, "/kavi-syncer") == 0)
            syncer = c;
    }
    if (!syncer)
        fail_msg("the pod runs no kavi-syncer");
    const char *secret_mount = mount_path(syncer, p.secret_volume);
    if (!secret_mount)
        fail_msg("container %s does not mount the Secret", str_at(syncer, "name"));

    size_t n_configs = 0;
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(p.configmap, "data"), key, value) {
        if (!is_yaml_name(key))
            continue;
        n_configs++;
        kv_config *cfg = NULL;
        char err[1024] = "";
        if (load_as_mounted(&cfg, json_string_value(value), key, p.secret, secret_mount, err,
                            sizeof err) < 0)
            fail_msg("ConfigMap %s, %s: %s", name_of(p.configmap), key, err);
        /* In a pod the watcher reads the cluster through its service account. */
        assert_int_equal(cfg->source, CONFIG_SOURCE_IN_CLUSTER);
        /* What kavi-syncer requires at start (syncer/main.c). */
        assert_non_null(cfg->controller_host);
        assert_true(*cfg->controller_host != '\0');
        assert_non_null(cfg->username);
        assert_true(cfg->password || cfg->auth_token);
        char *username = secret_value(p.secret, "username");
        if (username)
            assert_string_equal(cfg->username, username);
        free(username);
        /* The containers share the pod's loopback. */
        const char *endpoints[] = {cfg->k8s_publish, cfg->k8s_snapshot, cfg->model_publish,
                                   cfg->model_snapshot, cfg->status_endpoint};
        for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++)
            if (strncmp(endpoints[i], "tcp://127.0.0.1:", 16) != 0)
                fail_msg("%s: bus endpoint %s is not loopback TCP", key, endpoints[i]);
        config_destroy(&cfg);
    }
    assert_true(n_configs >= 1);
    tree_free(t);
}

/* ---- 4. the ClusterRole ----------------------------------------------------- */

static bool is_watched(const char *group, const char *resource)
{
    for (size_t i = 0; i < N_WATCHED; i++)
        if (strcmp(watched_kinds[i].group, group) == 0 &&
            strcmp(watched_kinds[i].resource, resource) == 0)
            return true;
    return false;
}

static bool rule_grants(const json_t *rule, const api_resource *r, const char *verb)
{
    return json_array_has_string(json_object_get(rule, "apiGroups"), r->group) &&
           json_array_has_string(json_object_get(rule, "resources"), r->resource) &&
           json_array_has_string(json_object_get(rule, "verbs"), verb);
}

static bool role_grants(const json_t *role, const api_resource *r, const char *verb)
{
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(role, "rules"), i, rule) {
        if (rule_grants(rule, r, verb))
            return true;
    }
    return false;
}

static void test_clusterrole_grants_list_and_watch_on_every_watched_kind(void **state)
{
    (void)state;
    deploy_tree *t = tree_load();
    json_t *role = base_doc(t, "ClusterRole");
    static const char *const verbs[] = {"list", "watch"};
    for (size_t i = 0; i < N_WATCHED; i++)
        for (size_t v = 0; v < 2; v++)
            if (!role_grants(role, &watched_kinds[i], verbs[v]))
                fail_msg("ClusterRole %s does not grant %s on %s (group '%s'): the watcher "
                         "would get 403 and never sync that kind",
                         name_of(role), verbs[v], watched_kinds[i].resource,
                         watched_kinds[i].group);
    if (!role_grants(role, &status_resource, status_verb))
        fail_msg("ClusterRole %s does not grant %s on services/status: the watcher could not "
                 "write LoadBalancer VIPs back",
                 name_of(role), status_verb);
    tree_free(t);
}

static void test_clusterrole_grants_nothing_the_watcher_does_not_use(void **state)
{
    (void)state;
    deploy_tree *t = tree_load();
    json_t *role = base_doc(t, "ClusterRole");
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(role, "rules"), i, rule) {
        if (json_object_get(rule, "nonResourceURLs"))
            fail_msg("ClusterRole rule %zu grants nonResourceURLs", i + 1);
        size_t gi, ri, vi;
        json_t *g, *r, *v;
        json_array_foreach(json_object_get(rule, "apiGroups"), gi, g) {
            json_array_foreach(json_object_get(rule, "resources"), ri, r) {
                json_array_foreach(json_object_get(rule, "verbs"), vi, v) {
                    const char *group = json_string_value(g), *resource = json_string_value(r),
                               *verb = json_string_value(v);
                    assert_non_null(group);
                    assert_non_null(resource);
                    assert_non_null(verb);
                    bool reads = is_watched(group, resource) &&
                                 (strcmp(verb, "get") == 0 || strcmp(verb, "list") == 0 ||
                                  strcmp(verb, "watch") == 0);
                    bool status = strcmp(group, status_resource.group) == 0 &&
                                  strcmp(resource, status_resource.resource) == 0 &&
                                  strcmp(verb, status_verb) == 0;
                    if (!reads && !status)
                        fail_msg("ClusterRole rule %zu grants %s on %s (group '%s'), which the "
                                 "watcher does not use",
                                 i + 1, verb, resource, group);
                }
            }
        }
    }
    tree_free(t);
}

static void test_clusterrole_is_bound_to_the_pods_service_account(void **state)
{
    (void)state;
    deploy_tree *t = tree_load();
    json_t *role = base_doc(t, "ClusterRole");
    json_t *binding = base_doc(t, "ClusterRoleBinding");
    json_t *account = base_doc(t, "ServiceAccount");
    deploy_parts p = parts_of(t);
    json_t *ref = json_object_get(binding, "roleRef");
    assert_string_equal(str_at(ref, "kind"), "ClusterRole");
    assert_string_equal(str_at(ref, "name"), name_of(role));
    assert_string_equal(str_at(p.pod, "serviceAccountName"), name_of(account));
    const char *account_ns = str_at(json_object_get(account, "metadata"), "namespace");
    assert_non_null(account_ns);
    assert_string_equal(str_at(json_object_get(p.deployment, "metadata"), "namespace"),
                        account_ns);
    bool bound = false;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(binding, "subjects"), i, s) {
        const char *kind = str_at(s, "kind"), *name = str_at(s, "name"),
                   *ns = str_at(s, "namespace");
        if (kind && name && ns && strcmp(kind, "ServiceAccount") == 0 &&
            strcmp(name, name_of(account)) == 0 && strcmp(ns, account_ns) == 0)
            bound = true;
    }
    assert_true(bound);
    tree_free(t);
}

/* Collects the quoted strings of one line of C, in order. */
static size_t quoted_strings(const char *line, char out[][96], size_t max)
{
    size_t n = 0;
    const char *p = line;
    while (n < max && (p = strchr(p, '"')) != NULL) {
        const char *end = strchr(p + 1, '"');
        if (!end)
            break;
        snprintf(out[n++], 96, "%.*s", (int)(end - p - 1), p + 1);
        p = end + 1;
    }
    return n;
}

static void test_watched_kinds_match_the_reflector_table(void **state)
{
    (void)state;
    char *source = read_text("watcher/reflector.c", NULL);
    assert_non_null(source);
    char *table = strstr(source, "reflector_kinds[] = {");
    if (!table)
        fail_msg("watcher/reflector.c: reflector_kinds[] not found; update this test");
    char *end = strstr(table, "\n};");
    assert_non_null(end);
    *end = '\0';
    size_t rows = 0;
    for (char *line = strtok(strchr(table, '\n'), "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ')
            line++;
        if (line[0] != '{')
            continue;
        /* {"Kind", "group", "version", "resource", namespaced, selector} */
        char s[5][96];
        if (quoted_strings(line, s, 5) < 4)
            fail_msg("watcher/reflector.c: cannot read the row '%s'", line);
        if (!is_watched(s[1], s[3]))
            fail_msg("the watcher watches %s (group '%s') but watched_kinds[] here, and so "
                     "perhaps deploy/rbac.yaml, lacks it",
                     s[3], s[1]);
        rows++;
    }
    free(source);
    assert_int_equal(rows, N_WATCHED);
}

/* ---- 5. the Deployment ------------------------------------------------------ */

typedef struct {
    const char *program;
    const char *const *flags;     /* every option its main.c accepts */
    const char *const *not_here;  /* options that end the program or replace the live source */
} program_flags;

static const char *const watcher_flags[] = {"--config", "--replay", "--follow", "--status-file",
                                            "--record", "--exit-when-done", "--timeout", NULL};
static const char *const watcher_not_here[] = {"--replay", "--exit-when-done", "--timeout",
                                               NULL};
static const char *const planner_flags[] = {"--config", NULL};
static const char *const syncer_flags[] = {"--config", "--tenant", "--show", NULL};
static const char *const syncer_not_here[] = {"--show", NULL};
static const char *const none[] = {NULL};

/* watcher/main.c, planner/main.c, syncer/main.c */
static const program_flags programs[] = {
    {"kavi-watcher", watcher_flags, watcher_not_here},
    {"kavi-planner", planner_flags, none},
    {"kavi-syncer", syncer_flags, syncer_not_here},
};
#define N_PROGRAMS (sizeof programs / sizeof programs[0])

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static bool flag_takes_value(const char *flag)
{
    return strcmp(flag, "--follow") != 0 && strcmp(flag, "--exit-when-done") != 0 &&
           strcmp(flag, "--show") != 0;
}

/* The program a container runs; fails unless it is an installed one. */
static const program_flags *program_of(const json_t *c)
{
    const char *name = str_at(c, "name");
    json_t *command = json_object_get(c, "command");
    const char *cmd = json_string_value(json_array_get(command, 0));
    if (!cmd || json_array_size(command) != 1)
        fail_msg("container %s: command must be the program alone", name);
    if (strncmp(cmd, INSTALL_DIR "/", strlen(INSTALL_DIR) + 1) != 0)
        fail_msg("container %s: %s is not in %s, where make install puts the programs", name,
                 cmd, INSTALL_DIR);
    for (size_t i = 0; i < N_PROGRAMS; i++)
        if (strcmp(cmd + strlen(INSTALL_DIR) + 1, programs[i].program) == 0)
            return &programs[i];
    fail_msg("container %s: %s is not a kavi program", name, cmd);
    return NULL;
}

/* Returns the --config value, after checking every argument. */
static const char *config_arg(const json_t *c, const program_flags *prog)
{
    const char *name = str_at(c, "name"), *config = NULL;
    json_t *args = json_object_get(c, "args");
    for (size_t i = 0; i < json_array_size(args); i++) {
        const char *arg = json_string_value(json_array_get(args, i));
        char flag[64];
        const char *value = NULL;
        assert_non_null(arg);
        const char *eq = strchr(arg, '=');
        snprintf(flag, sizeof flag, "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
        if (!in_list(prog->flags, flag))
            fail_msg("container %s: %s has no option %s", name, prog->program, flag);
        if (in_list(prog->not_here, flag))
            fail_msg("container %s: %s with %s does not run as a live stage", name,
                     prog->program, flag);
        if (eq)
            value = eq + 1;
        else if (flag_takes_value(flag))
            value = json_string_value(json_array_get(args, ++i));
        if (flag_takes_value(flag) && !value)
            fail_msg("container %s: %s needs a value", name, flag);
        if (strcmp(flag, "--config") == 0)
            config = value;
    }
    if (!config)
        fail_msg("container %s: no --config", name);
    return config;
}

/* The credential files the config names (credentials.*File). */
static json_t *credential_files(const char *config_text)
{
    json_t *docs = json_array();
    manifest_error err = {0};
    assert_int_equal(manifest_parse(config_text, strlen(config_text), collect_document, docs,
                                    &err),
                     0);
    json_t *files = json_array();
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(json_array_get(docs, 0), "credentials"), key, value) {
        if (has_suffix(key, "File"))
            json_array_append(files, value);
    }
    json_decref(docs);
    return files;
}

static void check_security(const json_t *c, const json_t *pod)
{
    const char *name = str_at(c, "name");
    json_t *sc = json_object_get(c, "securityContext");
    json_t *pod_sc = json_object_get(pod, "securityContext");
    if (!json_is_true(json_object_get(sc, "runAsNonRoot")) &&
        !json_is_true(json_object_get(pod_sc, "runAsNonRoot")))
        fail_msg("container %s: runAsNonRoot is not set", name);
    if (!json_is_true(json_object_get(sc, "readOnlyRootFilesystem")))
        fail_msg("container %s: readOnlyRootFilesystem is not true", name);
    if (!json_is_false(json_object_get(sc, "allowPrivilegeEscalation")))
        fail_msg("container %s: allowPrivilegeEscalation is not false", name);
    if (!json_array_has_string(json_object_get(json_object_get(sc, "capabilities"), "drop"),
                               "ALL"))
        fail_msg("container %s: capabilities are not all dropped", name);
    json_t *res = json_object_get(c, "resources");
    static const char *const needed[][2] = {
        {"requests", "cpu"}, {"requests", "memory"}, {"limits", "memory"}};
    for (size_t i = 0; i < 3; i++)
        if (!json_object_get(json_object_get(res, needed[i][0]), needed[i][1]))
            fail_msg("container %s: no resources.%s.%s", name, needed[i][0], needed[i][1]);
}

/* One container of the pod, or added to it by a patch: the program, its
 * config in the ConfigMap, the Secret where the config looks for the
 * credentials, the hardening. */
static const program_flags *check_container(const json_t *c, const deploy_parts *p)
{
    const char *name = str_at(c, "name");
    const program_flags *prog = program_of(c);
    const char *config = config_arg(c, prog);

    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(c, "volumeMounts"), i, m) {
        bool known = false;
        size_t j;
        json_t *vol;
        json_array_foreach(json_object_get(p->pod, "volumes"), j, vol) {
            const char *vol_name = str_at(vol, "name"), *mount_name = str_at(m, "name");
            if (vol_name && mount_name && strcmp(vol_name, mount_name) == 0)
                known = true;
        }
        if (!known)
            fail_msg("container %s mounts volume %s, which the pod does not have", name,
                     str_at(m, "name"));
    }

    const char *config_dir = mount_path(c, p->configmap_volume);
    if (!config_dir)
        fail_msg("container %s does not mount ConfigMap %s", name, name_of(p->configmap));
    size_t dir_len = strlen(config_dir);
    if (strncmp(config, config_dir, dir_len) != 0 || config[dir_len] != '/')
        fail_msg("container %s: --config %s is not under the ConfigMap's mount %s", name,
                 config, config_dir);
    const char *text = str_at(json_object_get(p->configmap, "data"), config + dir_len + 1);
    if (!text)
        fail_msg("container %s: --config %s: ConfigMap %s has no key %s", name, config,
                 name_of(p->configmap), config + dir_len + 1);

    /* Only kavi-syncer reads the credential files (config_read_credentials);
     * the others must not be able to read the controller's password. */
    const char *secret_dir = mount_path(c, p->secret_volume);
    if (strcmp(prog->program, "kavi-syncer") != 0) {
        if (secret_dir)
            fail_msg("container %s mounts the Avi credentials it never reads", name);
        check_security(c, p->pod);
        return prog;
    }
    json_t *files = credential_files(text);
    assert_true(json_array_size(files) > 0);
    json_t *file;
    json_array_foreach(files, i, file) {
        const char *path = json_string_value(file);
        assert_non_null(path);
        if (!secret_dir)
            fail_msg("container %s: the config reads %s but the Secret is not mounted", name,
                     path);
        size_t n = strlen(secret_dir);
        if (strncmp(path, secret_dir, n) != 0 || path[n] != '/')
            fail_msg("container %s: the config reads %s, outside the Secret's mount %s", name,
                     path, secret_dir);
        char *value = secret_value(p->secret, path + n + 1);
        if (!value)
            fail_msg("the config reads %s but Secret %s has no key %s", path,
                     name_of(p->secret), path + n + 1);
        free(value);
    }
    json_decref(files);
    check_security(c, p->pod);
    return prog;
}

static void test_deployment_runs_the_installed_programs_on_the_mounted_config(void **state)
{
    (void)state;
    deploy_tree *t = tree_load();
    deploy_parts p = parts_of(t);
    json_t *spec = json_object_get(p.deployment, "spec");

    /* One active instance (no leader election), never two during a rollout. */
    assert_int_equal(json_integer_value(json_object_get(spec, "replicas")), 1);
    assert_string_equal(str_at(json_object_get(spec, "strategy"), "type"), "Recreate");

    json_t *containers = json_object_get(p.pod, "containers");
    assert_int_equal(json_array_size(containers), N_PROGRAMS);
    size_t runs[N_PROGRAMS] = {0};
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        runs[check_container(c, &p) - programs]++;
    }
    for (size_t k = 0; k < N_PROGRAMS; k++)
        if (runs[k] != 1)
            fail_msg("the pod runs %s %zu times, not once", programs[k].program, runs[k]);

    /* Containers that patches add (a syncer per tenant) meet the same terms. */
    for (size_t f = 0; f < t->n; f++) {
        if (is_top_level(&t->files[f]))
            continue;
        size_t j;
        json_t *doc;
        json_array_foreach(t->files[f].docs, j, doc) {
            if (!kind_of(doc) || strcmp(kind_of(doc), "Deployment") != 0)
                continue;
            json_t *pod = json_object_get(
                json_object_get(json_object_get(doc, "spec"), "template"), "spec");
            json_array_foreach(json_object_get(pod, "containers"), i, c) {
                check_container(c, &p);
            }
        }
    }

    /* make install puts exactly these programs in INSTALL_DIR. */
    char *makefile = read_text("Makefile", NULL);
    assert_non_null(makefile);
    char *install = strstr(makefile, "\ninstall:");
    assert_non_null(install);
    char *recipe_end = strstr(install + 1, "\n\n");
    if (recipe_end)
        *recipe_end = '\0';
    if (!strstr(install, "$(DESTDIR)" INSTALL_DIR))
        fail_msg("Makefile: make install no longer installs into %s", INSTALL_DIR);
    for (size_t k = 0; k < N_PROGRAMS; k++) {
        char built[64];
        snprintf(built, sizeof built, "$(B)/bin/%s", programs[k].program);
        if (!strstr(install, built))
            fail_msg("Makefile: make install does not install %s", programs[k].program);
    }
    free(makefile);
    tree_free(t);
}

/* ---- the image -------------------------------------------------------------- */

/* pkg-config modules of the Makefile's PKGS → the Debian 12 package holding
 * the shared library (dpkg -S of each library the programs link). */
static const char *const runtime_packages[][2] = {
    {"libzmq", "libzmq5"},          {"$(MSGPACK_PKG)", "libmsgpackc2"},
    {"libcurl", "libcurl4"},        {"jansson", "libjansson4"},
    {"yaml-0.1", "libyaml-0-2"},
};

static bool has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        bool start = p == text || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n';
        bool end = p[n] == ' ' || p[n] == '\t' || p[n] == '\n' || p[n] == '\\' || !p[n];
        if (start && end)
            return true;
    }
    return false;
}

static void test_image_installs_the_libraries_the_programs_link(void **state)
{
    (void)state;
    char *dockerfile = read_text(DEPLOY_DIR "/Dockerfile", NULL);
    char *makefile = read_text("Makefile", NULL);
    assert_non_null(dockerfile);
    assert_non_null(makefile);
    char *runtime = NULL;
    size_t stages = 0;
    for (char *p = strstr(dockerfile, "\nFROM "); p; p = strstr(p + 1, "\nFROM ")) {
        if (strncmp(p + 6, "debian:bookworm", 15) != 0)
            fail_msg("deploy/Dockerfile: a stage is not based on Debian bookworm");
        runtime = p;
        stages++;
    }
    assert_int_equal(stages, 2);
    *runtime = '\0'; /* dockerfile: the build stage; runtime + 1: the runtime stage */
    runtime++;
    assert_non_null(strstr(dockerfile, "make deps"));
    assert_non_null(strstr(dockerfile, "make VARIANT=release install DESTDIR="));

    char *pkgs = strstr(makefile, "\nPKGS ");
    assert_non_null(pkgs);
    pkgs = strstr(pkgs, ":=");
    assert_non_null(pkgs);
    char *eol = strchr(pkgs, '\n');
    assert_non_null(eol);
    *eol = '\0';
    for (char *module = strtok(pkgs + 2, " \t"); module; module = strtok(NULL, " \t")) {
        const char *package = NULL;
        for (size_t i = 0; i < sizeof runtime_packages / sizeof runtime_packages[0]; i++)
            if (strcmp(runtime_packages[i][0], module) == 0)
                package = runtime_packages[i][1];
        if (!package)
            fail_msg("Makefile PKGS has %s: add its runtime package to deploy/Dockerfile and "
                     "to runtime_packages[] here",
                     module);
        if (!has_word(runtime, package))
            fail_msg("deploy/Dockerfile: the runtime stage does not install %s (for %s)",
                     package, module);
    }
    assert_true(has_word(runtime, "ca-certificates"));
    char *user = strstr(runtime, "\nUSER ");
    assert_non_null(user);
    if (strncmp(user + 6, "0", 1) == 0 || strncmp(user + 6, "root", 4) == 0)
        fail_msg("deploy/Dockerfile: the image runs as root");
    free(makefile);
    free(dockerfile);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_yaml_document_in_deploy_parses),
        cmocka_unit_test(test_kustomizations_list_exactly_the_files_there),
        cmocka_unit_test(test_configmap_config_loads_with_kavi_loader),
        cmocka_unit_test(test_clusterrole_grants_list_and_watch_on_every_watched_kind),
        cmocka_unit_test(test_clusterrole_grants_nothing_the_watcher_does_not_use),
        cmocka_unit_test(test_clusterrole_is_bound_to_the_pods_service_account),
        cmocka_unit_test(test_watched_kinds_match_the_reflector_table),
        cmocka_unit_test(test_deployment_runs_the_installed_programs_on_the_mounted_config),
        cmocka_unit_test(test_image_installs_the_libraries_the_programs_link),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
