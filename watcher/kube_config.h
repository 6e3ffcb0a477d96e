/* kube_config.h — how to reach the Kubernetes API server and who to be
 * there: from the pod's service account (in-cluster) or from kubeconfig
 * files, the way client-go's loading rules read them.
 *
 * In-cluster: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT (an IPv6
 * host is bracketed), the CA bundle and the bearer token under
 * /var/run/secrets/kubernetes.io/serviceaccount/ (KAVI_SERVICEACCOUNT_DIR
 * overrides the directory, for tests).
 *
 * kubeconfig: an explicit path, else $KUBECONFIG (several files separated
 * by ':', merged so that the first file to define a cluster, user or context
 * name wins, and current-context comes from the first file that sets it),
 * else ~/.kube/config. Relative paths inside a file are resolved against the
 * directory of that file; *-data fields are base64 and decoded here.
 *
 * Credentials change while the watcher runs: the kubelet rewrites the
 * service-account token, exec plugins hand out tokens that expire. So the
 * token is read through kube_config_refresh(), which re-reads a token file at
 * least every minute (re-opening the path: the kubelet swaps a symlink) and
 * re-runs an exec plugin when its credential expires; after a 401 the
 * caller forces both with kube_config_invalidate(). The live client uses
 * kube_config_refresh_async(), so a plugin that takes seconds never stalls
 * the watches already running. */
#ifndef KAVI_WATCHER_KUBE_CONFIG_H
#define KAVI_WATCHER_KUBE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define KUBE_SERVICEACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBE_TOKEN_REREAD_MS 60000  /* a token file is read again at least this often */
#define KUBE_EXEC_TIMEOUT_MS 30000  /* an exec plugin that runs longer is killed */
#define KUBE_EXEC_OUTPUT_MAX (1 << 20)
#define KUBE_EXEC_RETRY_MS 5000     /* a plugin that failed is not run again sooner */
#define KUBE_FILE_MAX (16 << 20)    /* kubeconfig, token, CA and key files */
#define KUBE_MAX_FILES 16           /* entries of $KUBECONFIG */

typedef struct {
    char *data; /* owned, NUL-terminated (PEM is text) */
    size_t len;
} kube_blob;

/* An exec credential plugin (users[].user.exec). */
typedef struct {
    char *command;
    char **args; /* n_args entries */
    size_t n_args;
    char **env; /* "NAME=value", n_env entries */
    size_t n_env;
    char *api_version; /* client.authentication.k8s.io/v1 or v1beta1 */
    char *dir;         /* the kubeconfig's directory, for a relative command */
} kube_exec;

typedef struct {
    char *origin; /* "in-cluster" or the kubeconfig file the context came from */
    char *server; /* "https://host:port", no trailing slash */

    /* Server verification: a CA file or CA data (PEM), else the system store. */
    char *ca_file;
    kube_blob ca_data;
    bool insecure_skip_tls_verify;
    char *tls_server_name; /* verify and send SNI for this name instead of the URL's */

    /* Client identity: any of these. */
    char *token;      /* current bearer token (static, from a file or from exec) */
    char *token_file; /* re-read at least every KUBE_TOKEN_REREAD_MS */
    char *client_cert_file, *client_key_file;
    kube_blob client_cert_data, client_key_data; /* from the kubeconfig or exec */
    kube_exec *exec;

    /* State of the refresh. */
    int64_t token_read_ms; /* when token_file was last read; INT64_MIN: never */
    time_t exec_expiry;    /* wall clock; 0: none given; -1: never ran */
    bool stale;            /* a 401 was seen: re-read everything */
    struct kube_exec_run *exec_run; /* the plugin while it runs, else NULL (owned) */
    int64_t exec_retry_ms;          /* after a failed run, no new one before this */
} kube_config;

/* In-cluster settings. KV_ERR_NOT_FOUND when the environment variables are
 * missing ("not running in a cluster"); reads the token once. */
int kube_config_in_cluster(kube_config **out, char *err, size_t err_len);

/* kubeconfig settings. `path` NULL: $KUBECONFIG, else ~/.kube/config. On a
 * bad file, one line naming the file, the key and the reason in err. Runs
 * an exec plugin or reads a token file once, so a broken credential is
 * reported at start. */
int kube_config_load(kube_config **out, const char *path, char *err, size_t err_len);

/* Makes the token current: re-reads the token file when it is older than a
 * minute and re-runs the exec plugin when its credential expired (or both,
 * after kube_config_invalidate). A failure keeps the previous credential
 * and is logged once with the reason in err. */
int kube_config_refresh(kube_config *cfg, int64_t now_ms, char *err, size_t err_len);

/* The same without waiting for an exec plugin: KV_ERR_AGAIN while one runs
 * (started now or before). The caller polls kube_config_exec_fd() until
 * kube_config_exec_deadline() and calls kube_config_exec_step(), which
 * returns KV_ERR_AGAIN until the plugin is done, then its result. */
int kube_config_refresh_async(kube_config *cfg, int64_t now_ms, char *err, size_t err_len);
int kube_config_exec_fd(const kube_config *cfg);               /* -1: no plugin running */
int64_t kube_config_exec_deadline(const kube_config *cfg);     /* INT64_MAX: none */
int kube_config_exec_step(kube_config *cfg, char *err, size_t err_len);
/* The server said 401: the next refresh re-reads every credential. */
void kube_config_invalidate(kube_config *cfg);

void kube_config_destroy(kube_config **cfg);


/* Runs the exec plugin and takes its ExecCredential (test hook too). */
int kube_config_run_exec(kube_config *cfg, char *err, size_t err_len);

#endif
