/* kube_config.c — see kube_config.h. Invariants:
 *  - every path in a kube_config is absolute or as the user wrote it when
 *    it came from the environment; paths from a kubeconfig file are resolved
 *    against that file's directory;
 *  - a refresh failure never drops a credential that worked before: the
 *    server decides with a 401 whether it is still good. */
#define _GNU_SOURCE
#include "watcher/kube_config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/dynbuf.h"
#include "common/base64.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "watcher/manifest.h"

extern char **environ;

/* ---- small helpers ---------------------------------------------------------- */

static void blob_clear(kube_blob *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

static int blob_set(kube_blob *b, const char *data, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return KV_ERR_NOMEM;
    memcpy(copy, data, len);
    copy[len] = '\0';
    blob_clear(b);
    b->data = copy;
    b->len = len;
    return KV_OK;
}

/* Reads a whole file (at most KUBE_FILE_MAX bytes) into a NUL-terminated
 * buffer; opens the path each time, so a swapped symlink is followed. */
static int read_file(char **out, size_t *out_len, const char *path)
{
    dynbuf buf;
    char chunk[8192];
    int rc = KV_OK;
    FILE *file = fopen(path, "rb");

    *out = NULL;
    if (!file)
        return KV_ERR_IO;
    dynbuf_init(&buf, KUBE_FILE_MAX);
    for (;;) {
        size_t n = fread(chunk, 1, sizeof chunk, file);
        if (n > 0)
            rc = dynbuf_append(&buf, chunk, n);
        if (rc < 0 || n < sizeof chunk)
            break;
    }
    if (rc == KV_OK && ferror(file))
        rc = KV_ERR_IO;
    fclose(file);
    if (rc == KV_OK && !buf.data) { /* an empty file */
        buf.data = calloc(1, 1);
        rc = buf.data ? KV_OK : KV_ERR_NOMEM;
    }
    if (rc < 0) {
        dynbuf_free(&buf);
        return rc;
    }
    *out = buf.data;
    if (out_len)
        *out_len = buf.len;
    return KV_OK;
}

/* A token file holds the token and maybe a trailing newline. */
static int read_token_file(char **out, const char *path)
{
    size_t len = 0;
    int rc = read_file(out, &len, path);
    if (rc < 0)
        return rc;
    while (len > 0 && strchr(" \t\r\n", (*out)[len - 1]))
        (*out)[--len] = '\0';
    if (len == 0 || memchr(*out, '\n', len) || memchr(*out, '\r', len)) {
        free(*out);
        *out = NULL;
        return KV_ERR_INVALID;
    }
    return KV_OK;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* A path from a kubeconfig, resolved against the file's directory. */
static char *resolve_path(const char *dir, const char *path)
{
    if (path[0] == '/' || !dir)
        return strdup(path);
    size_t n = strlen(dir) + strlen(path) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, path);
    return out;
}

/* ---- exec credential plugins ---------------------------------------------------- */

static void exec_free(kube_exec **exec_p)
{
    kube_exec *e = *exec_p;
    if (!e)
        return;
    free(e->command);
    for (size_t i = 0; i < e->n_args; i++)
        free(e->args[i]);
    free(e->args);
    for (size_t i = 0; i < e->n_env; i++)
        free(e->env[i]);
    free(e->env);
    free(e->api_version);
    free(e->dir);
    free(e);
    *exec_p = NULL;
}

/* RFC 3339 "2026-11-24T16:00:00Z" (fraction and offset accepted) → time_t. */
static int parse_rfc3339(time_t *out, const char *text)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    long offset = 0;
    if (!rest)
        return KV_ERR_INVALID;
    if (*rest == '.')
        for (rest++; *rest >= '0' && *rest <= '9'; rest++)
            ;
    if (*rest == 'Z' || *rest == 'z') {
        rest++;
    } else if (*rest == '+' || *rest == '-') {
        int hh = 0, mm = 0;
        if (sscanf(rest + 1, "%2d:%2d", &hh, &mm) != 2)
            return KV_ERR_INVALID;
        offset = (hh * 3600L + mm * 60L) * (*rest == '-' ? -1 : 1);
        rest += 6;
    } else {
        return KV_ERR_INVALID;
    }
    if (*rest)
        return KV_ERR_INVALID;
    *out = timegm(&tm) - offset;
    return KV_OK;
}

/* The environment of the plugin: ours, the kubeconfig's env entries (they
 * win), and KUBERNETES_EXEC_INFO. Built before fork: between fork and exec
 * a threaded process may only make async-signal-safe calls. */
static char **plugin_environment(const kube_exec *e, const char *info_entry)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **envp = calloc(n + e->n_env + 2, sizeof *envp);
    size_t used = 0;
    if (!envp)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t name_len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool overridden = strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) == 0;
        for (size_t j = 0; j < e->n_env && !overridden; j++)
            overridden = strncmp(e->env[j], environ[i], name_len) == 0 &&
                         e->env[j][name_len] == '=';
        if (!overridden)
            envp[used++] = environ[i];
    }
    for (size_t j = 0; j < e->n_env; j++)
        envp[used++] = e->env[j];
    envp[used] = (char *)info_entry;
    return envp;
}

/* A plugin run in progress: the loop polls its stdout, so the watcher keeps
 * serving the watches it has while the plugin works (a cloud CLI takes
 * seconds; an SSO prompt longer). Owned by its kube_config. */
struct kube_exec_run {
    pid_t pid;
    int fd; /* read end of the plugin's stdout, non-blocking */
    dynbuf output;
    int64_t deadline_ms;
};

/* Starts the plugin with its stdout on a non-blocking pipe. */
static int plugin_spawn(const kube_exec *e, const char *exec_info, pid_t *pid_out, int *fd_out,
                        char *err, size_t err_len)
{
    int pipefd[2] = {-1, -1};
    char *command = NULL, *info_entry = NULL;
    char **argv = NULL, **envp = NULL;
    int rc = KV_OK;

    /* client-go: a command with a path separator is relative to the kubeconfig. */
    command = strchr(e->command, '/') ? resolve_path(e->dir, e->command) : strdup(e->command);
    size_t info_len = strlen(exec_info) + sizeof "KUBERNETES_EXEC_INFO=";
    info_entry = malloc(info_len);
    argv = calloc(e->n_args + 2, sizeof *argv);
    if (!command || !info_entry || !argv) {
        rc = KV_ERR_NOMEM;
        goto out;
    }
    snprintf(info_entry, info_len, "KUBERNETES_EXEC_INFO=%s", exec_info);
    envp = plugin_environment(e, info_entry);
    if (!envp) {
        rc = KV_ERR_NOMEM;
        goto out;
    }
    argv[0] = command;
    for (size_t i = 0; i < e->n_args; i++)
        argv[i + 1] = e->args[i];
    if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, err_len, "exec %s: pipe: %s", e->command, strerror(errno));
        rc = KV_ERR_IO;
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, err_len, "exec %s: fork: %s", e->command, strerror(errno));
        rc = KV_ERR_IO;
        goto out;
    }
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO); /* dup2 clears O_CLOEXEC on the copy */
        fcntl(STDOUT_FILENO, F_SETFL, 0); /* the plugin writes as it likes: blocking */
        execvpe(command, argv, envp);
        _exit(127);
    }
    *pid_out = pid;
    *fd_out = pipefd[0];
    pipefd[0] = -1;

out:
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    free(command);
    free(info_entry);
    free(argv);
    free(envp);
    return rc;
}

static void exec_run_free(kube_config *cfg, bool kill_child)
{
    struct kube_exec_run *run = cfg->exec_run;
    if (!run)
        return;
    if (kill_child && run->pid > 0) /* never 0: that would be our own group */
        kill(run->pid, SIGKILL);
    if (run->fd >= 0)
        close(run->fd);
    if (run->pid > 0)
        while (waitpid(run->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    dynbuf_free(&run->output);
    free(run);
    cfg->exec_run = NULL;
}

/* Plugin timing runs on the monotonic clock, whatever clock the caller's
 * refresh uses (tests pass their own). */
static int exec_run_start(kube_config *cfg, char *err, size_t err_len)
{
    const kube_exec *e = cfg->exec;
    json_t *info = json_pack("{s:s,s:s,s:{s:b}}", "apiVersion", e->api_version, "kind",
                             "ExecCredential", "spec", "interactive", 0);
    char *info_text = info ? json_dumps(info, JSON_COMPACT) : NULL;
    struct kube_exec_run *run = calloc(1, sizeof *run);
    int rc = info_text && run ? KV_OK : KV_ERR_NOMEM;
    if (rc == KV_OK)
        rc = plugin_spawn(e, info_text, &run->pid, &run->fd, err, err_len);
    json_decref(info);
    free(info_text);
    if (rc < 0) {
        free(run);
        return rc;
    }
    dynbuf_init(&run->output, KUBE_EXEC_OUTPUT_MAX);
    run->deadline_ms = clock_now_ms() + KUBE_EXEC_TIMEOUT_MS;
    cfg->exec_run = run;
    return KV_OK;
}

/* The plugin's ExecCredential (its whole stdout) becomes the credential. */
static int take_credential(kube_config *cfg, const dynbuf *output, int status, char *err,
                           size_t err_len)
{
    const kube_exec *e = cfg->exec;
    json_t *cred = NULL;
    int rc;

    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, err_len, "exec %s: %s %d", e->command,
                 WIFEXITED(status) ? "exited with status" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return KV_ERR_IO;
    }
    json_error_t jerr;
    cred = json_loadb(output->data ? output->data : "", output->len, 0, &jerr);
    const char *api_version = NULL, *kind = NULL, *token = NULL, *cert = NULL, *key = NULL,
               *expiry = NULL;
    if (!cred || json_unpack(cred, "{s?s,s?s,s:{s?s,s?s,s?s,s?s}}", "apiVersion", &api_version,
                             "kind", &kind, "status", "token", &token, "clientCertificateData",
                             &cert, "clientKeyData", &key, "expirationTimestamp", &expiry) != 0) {
        snprintf(err, err_len, "exec %s: the output is not an ExecCredential with a status",
                 e->command);
        rc = KV_ERR_INVALID;
        goto out;
    }
    if (!api_version || strcmp(api_version, e->api_version) != 0) {
        snprintf(err, err_len, "exec %s: ExecCredential apiVersion %s, expected %s", e->command,
                 api_version ? api_version : "(none)", e->api_version);
        rc = KV_ERR_INVALID;
        goto out;
    }
    if (!token && !(cert && key)) {
        snprintf(err, err_len,
                 "exec %s: status has neither token nor clientCertificateData+clientKeyData",
                 e->command);
        rc = KV_ERR_INVALID;
        goto out;
    }
    time_t expires = 0;
    if (expiry && parse_rfc3339(&expires, expiry) < 0) {
        snprintf(err, err_len, "exec %s: status.expirationTimestamp %s is not RFC 3339",
                 e->command, expiry);
        rc = KV_ERR_INVALID;
        goto out;
    }
    if (token) {
        char *copy = strdup(token);
        if (!copy) {
            rc = KV_ERR_NOMEM;
            goto out;
        }
        free(cfg->token);
        cfg->token = copy;
    }
    if (cert && key) {
        /* ExecCredential carries PEM text, not base64. */
        rc = blob_set(&cfg->client_cert_data, cert, strlen(cert));
        rc = rc ?: blob_set(&cfg->client_key_data, key, strlen(key));
        if (rc < 0)
            goto out;
    }
    cfg->exec_expiry = expires;
    rc = KV_OK;

out:
    json_decref(cred);
    return rc;
}

int kube_config_exec_fd(const kube_config *cfg)
{
    return cfg->exec_run ? cfg->exec_run->fd : -1;
}

int64_t kube_config_exec_deadline(const kube_config *cfg)
{
    return cfg->exec_run ? cfg->exec_run->deadline_ms : INT64_MAX;
}

int kube_config_exec_step(kube_config *cfg, char *err, size_t err_len)
{
    int64_t now_ms = clock_now_ms();
    struct kube_exec_run *run = cfg->exec_run;
    const char *command = cfg->exec ? cfg->exec->command : "?";
    int rc = KV_ERR_AGAIN;
    if (!run)
        return KV_OK;
    for (;;) {
        char chunk[4096];
        ssize_t n = read(run->fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) { /* end of its output (or a read error): it is done */
            close(run->fd);
            run->fd = -1;
            int status = 0;
            while (waitpid(run->pid, &status, 0) < 0 && errno == EINTR)
                ;
            run->pid = 0;
            rc = take_credential(cfg, &run->output, status, err, err_len);
            break;
        }
        if (dynbuf_append(&run->output, chunk, (size_t)n) < 0) {
            snprintf(err, err_len, "exec %s: output over %d bytes", command,
                     KUBE_EXEC_OUTPUT_MAX);
            rc = KV_ERR_TOO_LARGE;
            break;
        }
    }
    if (rc == KV_ERR_AGAIN && now_ms >= run->deadline_ms) {
        snprintf(err, err_len, "exec %s: no answer within %d ms", command, KUBE_EXEC_TIMEOUT_MS);
        rc = KV_ERR_TIMEOUT;
    }
    if (rc == KV_ERR_AGAIN)
        return rc;
    exec_run_free(cfg, rc < 0);
    /* A plugin that fails is not run again at once for every request. */
    cfg->exec_retry_ms = rc < 0 ? now_ms + KUBE_EXEC_RETRY_MS : 0;
    /* A 401 seen while it ran came from the credential it replaced. */
    if (rc == KV_OK)
        cfg->stale = false;
    return rc;
}

/* Waits for the run in progress, polling the plugin's stdout. */
static int exec_wait(kube_config *cfg, char *err, size_t err_len)
{
    int rc = KV_ERR_AGAIN;
    while (rc == KV_ERR_AGAIN) {
        int64_t now = clock_now_ms();
        int64_t wait = kube_config_exec_deadline(cfg) - now;
        struct pollfd pfd = {.fd = kube_config_exec_fd(cfg), .events = POLLIN};
        if (wait > 0 && pfd.fd >= 0)
            poll(&pfd, 1, (int)wait);
        rc = kube_config_exec_step(cfg, err, err_len);
    }
    return rc;
}

int kube_config_run_exec(kube_config *cfg, char *err, size_t err_len)
{
    if (!cfg->exec)
        return KV_OK;
    exec_run_free(cfg, true);
    int rc = exec_run_start(cfg, err, err_len);
    return rc < 0 ? rc : exec_wait(cfg, err, err_len);
}

/* ---- refresh ------------------------------------------------------------------ */

int kube_config_refresh_async(kube_config *cfg, int64_t now_ms, char *err, size_t err_len)
{
    int rc = KV_OK;
    bool stale = cfg->stale;

    if (cfg->exec_run)
        return KV_ERR_AGAIN; /* already being fetched */
    cfg->stale = false;
    if (cfg->token_file &&
        (stale || cfg->token_read_ms == INT64_MIN || now_ms - cfg->token_read_ms >= KUBE_TOKEN_REREAD_MS)) {
        char *token = NULL;
        int read_rc = read_token_file(&token, cfg->token_file);
        cfg->token_read_ms = now_ms;
        if (read_rc == KV_OK) {
            free(cfg->token);
            cfg->token = token;
        } else {
            snprintf(err, err_len, "token file %s: %s", cfg->token_file,
                     read_rc == KV_ERR_INVALID ? "empty or more than one line" : strerror(errno));
            rc = read_rc;
        }
    }
    if (cfg->exec) {
        bool expired = cfg->exec_expiry == -1 ||
                       (cfg->exec_expiry > 0 && time(NULL) >= cfg->exec_expiry);
        if ((stale || expired) && clock_now_ms() >= cfg->exec_retry_ms) {
            int exec_rc = exec_run_start(cfg, err, err_len);
            rc = exec_rc < 0 ? exec_rc : KV_ERR_AGAIN;
            if (exec_rc < 0)
                cfg->exec_retry_ms = clock_now_ms() + KUBE_EXEC_RETRY_MS;
        }
    }
    return rc;
}

int kube_config_refresh(kube_config *cfg, int64_t now_ms, char *err, size_t err_len)
{
    int rc = kube_config_refresh_async(cfg, now_ms, err, err_len);
    return rc == KV_ERR_AGAIN ? exec_wait(cfg, err, err_len) : rc;
}

void kube_config_invalidate(kube_config *cfg) { cfg->stale = true; }

void kube_config_destroy(kube_config **cfg_p)
{
    kube_config *cfg = *cfg_p;
    if (!cfg)
        return;
    free(cfg->origin);
    free(cfg->server);
    free(cfg->ca_file);
    blob_clear(&cfg->ca_data);
    free(cfg->tls_server_name);
    free(cfg->token);
    free(cfg->token_file);
    free(cfg->client_cert_file);
    free(cfg->client_key_file);
    blob_clear(&cfg->client_cert_data);
    blob_clear(&cfg->client_key_data);
    exec_run_free(cfg, true);
    exec_free(&cfg->exec);
    free(cfg);
    *cfg_p = NULL;
}

static kube_config *config_alloc(void)
{
    kube_config *cfg = calloc(1, sizeof *cfg);
    if (cfg) {
        cfg->token_read_ms = INT64_MIN;
        cfg->exec_expiry = -1;
    }
    return cfg;
}

/* ---- in-cluster ------------------------------------------------------------------ */

int kube_config_in_cluster(kube_config **out, char *err, size_t err_len)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    const char *dir = getenv("KAVI_SERVICEACCOUNT_DIR");
    kube_config *cfg = NULL;
    char path[4096];
    int rc;

    *out = NULL;
    if (!host || !*host || !port || !*port) {
        snprintf(err, err_len,
                 "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set "
                 "(not running in a pod?)");
        return KV_ERR_NOT_FOUND;
    }
    if (!dir || !*dir)
        dir = KUBE_SERVICEACCOUNT_DIR;
    cfg = config_alloc();
    if (!cfg)
        return KV_ERR_NOMEM;
    size_t n = strlen(host) + strlen(port) + sizeof "https://[]:";
    cfg->server = malloc(n);
    cfg->origin = strdup("in-cluster");
    if (!cfg->server || !cfg->origin) {
        rc = KV_ERR_NOMEM;
        goto out_destroy;
    }
    /* An IPv6 address needs brackets in a URL. */
    snprintf(cfg->server, n, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
    snprintf(path, sizeof path, "%s/ca.crt", dir);
    cfg->ca_file = strdup(path);
    snprintf(path, sizeof path, "%s/token", dir);
    cfg->token_file = strdup(path);
    if (!cfg->ca_file || !cfg->token_file) {
        rc = KV_ERR_NOMEM;
        goto out_destroy;
    }
    if (access(cfg->ca_file, R_OK) != 0) {
        snprintf(err, err_len, "in-cluster: cannot read %s: %s", cfg->ca_file, strerror(errno));
        rc = KV_ERR_IO;
        goto out_destroy;
    }
    rc = kube_config_refresh(cfg, 0, err, err_len);
    if (rc < 0) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", err);
        snprintf(err, err_len, "in-cluster: %s", reason);
        goto out_destroy;
    }
    *out = cfg;
    return KV_OK;

out_destroy:
    kube_config_destroy(&cfg);
    return rc;
}

/* ---- kubeconfig ------------------------------------------------------------------ */

typedef struct {
    char *path;
    char *dir;
    json_t *root; /* the file's document, an object */
} kubeconfig_file;

typedef struct {
    kubeconfig_file files[KUBE_MAX_FILES];
    size_t n_files;
    char *err;
    size_t err_len;
} kubeconfig_set;

/* Where a named entry was found: its file, its index in the list, its body. */
typedef struct {
    const kubeconfig_file *file;
    size_t index;
    const json_t *body;
} kubeconfig_entry;

static int fail(kubeconfig_set *set, const char *file, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(kubeconfig_set *set, const char *file, const char *key, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    snprintf(set->err, set->err_len, "kubeconfig %s: %s: %s", file, key, reason);
    return KV_ERR_INVALID;
}

static int first_document(json_t *root, unsigned long line, void *payload)
{
    (void)line;
    json_t **slot = payload;
    if (*slot) {
        json_decref(root);
        return KV_OK; /* a kubeconfig is one document; later ones are ignored */
    }
    *slot = root;
    return KV_OK;
}

/* Reads and parses one file. Returns KV_ERR_NOT_FOUND when it does not
 * exist (skipped in a $KUBECONFIG list, like client-go). */
static int kubeconfig_read(kubeconfig_set *set, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    manifest_error merr;
    int rc = read_file(&text, &len, path);

    if (rc < 0) {
        if (errno == ENOENT)
            return KV_ERR_NOT_FOUND;
        snprintf(set->err, set->err_len, "kubeconfig %s: cannot read: %s", path,
                 rc == KV_ERR_TOO_LARGE ? "over 16 MiB" : strerror(errno));
        return KV_ERR_IO;
    }
    rc = manifest_parse(text, len, first_document, &root, &merr);
    free(text);
    if (rc < 0) {
        json_decref(root);
        snprintf(set->err, set->err_len, "kubeconfig %s: line %lu: %s", path, merr.line + 1,
                 merr.reason);
        return KV_ERR_INVALID;
    }
    if (!root)
        root = json_object(); /* an empty file defines nothing */
    if (!json_is_object(root)) {
        json_decref(root);
        return fail(set, path, "(top level)", "not a mapping");
    }
    kubeconfig_file *f = &set->files[set->n_files];
    f->path = strdup(path);
    f->dir = dir_of(path);
    f->root = root;
    if (!f->path || !f->dir) {
        free(f->path);
        free(f->dir);
        json_decref(root);
        return KV_ERR_NOMEM;
    }
    set->n_files++;
    return KV_OK;
}

static void kubeconfig_set_clear(kubeconfig_set *set)
{
    for (size_t i = 0; i < set->n_files; i++) {
        free(set->files[i].path);
        free(set->files[i].dir);
        json_decref(set->files[i].root);
    }
    set->n_files = 0;
}

/* Finds `name` in list `list` ("clusters", "users", "contexts") of the
 * files, first file first; the entry's value is under `field`. */
static int kubeconfig_find(kubeconfig_set *set, const char *list, const char *field,
                           const char *name, kubeconfig_entry *out)
{
    char key[128];
    for (size_t f = 0; f < set->n_files; f++) {
        const json_t *items = json_object_get(set->files[f].root, list);
        if (!items || json_is_null(items))
            continue;
        if (!json_is_array(items))
            return fail(set, set->files[f].path, list, "must be a list");
        size_t i;
        const json_t *item;
        json_array_foreach(items, i, item) {
            snprintf(key, sizeof key, "%s[%zu]", list, i);
            if (!json_is_object(item))
                return fail(set, set->files[f].path, key, "must be a mapping");
            const json_t *item_name = json_object_get(item, "name");
            if (!json_is_string(item_name))
                return fail(set, set->files[f].path, key, "name must be a string");
            if (strcmp(json_string_value(item_name), name) != 0)
                continue;
            const json_t *body = json_object_get(item, field);
            if (body && !json_is_null(body) && !json_is_object(body)) {
                snprintf(key, sizeof key, "%s[%zu].%s", list, i, field);
                return fail(set, set->files[f].path, key, "must be a mapping");
            }
            *out = (kubeconfig_entry){.file = &set->files[f], .index = i, .body = body};
            return KV_OK;
        }
    }
    return KV_ERR_NOT_FOUND;
}

/* Optional string member; wrong type → error naming list[i].field.member. */
static int entry_string(kubeconfig_set *set, const kubeconfig_entry *e, const char *list,
                        const char *field, const char *member, const char **out)
{
    const json_t *v = e->body ? json_object_get(e->body, member) : NULL;
    char key[160];
    *out = NULL;
    if (!v || json_is_null(v))
        return KV_OK;
    if (!json_is_string(v)) {
        snprintf(key, sizeof key, "%s[%zu].%s.%s", list, e->index, field, member);
        return fail(set, e->file->path, key, "must be a string");
    }
    *out = json_string_value(v);
    return KV_OK;
}

static int entry_base64(kubeconfig_set *set, const kubeconfig_entry *e, const char *list,
                        const char *field, const char *member, kube_blob *out)
{
    const char *text = NULL;
    char key[160];
    int rc = entry_string(set, e, list, field, member, &text);
    if (rc < 0 || !text)
        return rc;
    blob_clear(out);
    rc = base64_decode(&out->data, &out->len, text, strlen(text), false);
    if (rc == KV_ERR_INVALID || (rc == KV_OK && out->len == 0)) {
        blob_clear(out);
        snprintf(key, sizeof key, "%s[%zu].%s.%s", list, e->index, field, member);
        return fail(set, e->file->path, key, rc == KV_OK ? "empty" : "not valid base64");
    }
    return rc;
}

static int entry_path(kubeconfig_set *set, const kubeconfig_entry *e, const char *list,
                      const char *field, const char *member, char **out)
{
    const char *text = NULL;
    int rc = entry_string(set, e, list, field, member, &text);
    if (rc < 0 || !text || !*text)
        return rc;
    free(*out);
    *out = resolve_path(e->file->dir, text);
    return *out ? KV_OK : KV_ERR_NOMEM;
}

static int load_cluster(kubeconfig_set *set, kube_config *cfg, const kubeconfig_entry *e)
{
    const char *server = NULL, *tls_name = NULL;
    char key[160];
    int rc = entry_string(set, e, "clusters", "cluster", "server", &server);
    if (rc < 0)
        return rc;
    snprintf(key, sizeof key, "clusters[%zu].cluster.server", e->index);
    if (!server || !*server)
        return fail(set, e->file->path, key, "missing");
    if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
        return fail(set, e->file->path, key, "%s is not an http(s) URL", server);
    cfg->server = strdup(server);
    if (!cfg->server)
        return KV_ERR_NOMEM;
    size_t len = strlen(cfg->server);
    while (len > 0 && cfg->server[len - 1] == '/')
        cfg->server[--len] = '\0';
    rc = entry_path(set, e, "clusters", "cluster", "certificate-authority", &cfg->ca_file);
    rc = rc ?: entry_base64(set, e, "clusters", "cluster", "certificate-authority-data",
                            &cfg->ca_data);
    rc = rc ?: entry_string(set, e, "clusters", "cluster", "tls-server-name", &tls_name);
    if (rc < 0)
        return rc;
    if (tls_name && *tls_name && !(cfg->tls_server_name = strdup(tls_name)))
        return KV_ERR_NOMEM;
    const json_t *insecure = json_object_get(e->body, "insecure-skip-tls-verify");
    if (insecure && !json_is_null(insecure)) {
        if (!json_is_boolean(insecure)) {
            snprintf(key, sizeof key, "clusters[%zu].cluster.insecure-skip-tls-verify", e->index);
            return fail(set, e->file->path, key, "must be true or false");
        }
        cfg->insecure_skip_tls_verify = json_is_true(insecure);
    }
    return KV_OK;
}

static int load_exec(kubeconfig_set *set, kube_config *cfg, const kubeconfig_entry *e,
                     const json_t *exec)
{
    char key[200];
    const char *command = NULL, *api_version = NULL;
    const json_t *args = json_object_get(exec, "args");
    const json_t *env = json_object_get(exec, "env");
    kube_exec *x = NULL;

    snprintf(key, sizeof key, "users[%zu].user.exec", e->index);
    if (!json_is_object(exec))
        return fail(set, e->file->path, key, "must be a mapping");
    if (json_unpack((json_t *)exec, "{s?s,s?s}", "command", &command, "apiVersion",
                    &api_version) != 0)
        return fail(set, e->file->path, key, "command and apiVersion must be strings");
    if (!command || !*command)
        return fail(set, e->file->path, key, "command is missing");
    if (!api_version || (strcmp(api_version, "client.authentication.k8s.io/v1") != 0 &&
                         strcmp(api_version, "client.authentication.k8s.io/v1beta1") != 0))
        return fail(set, e->file->path, key,
                    "apiVersion %s: expected client.authentication.k8s.io/v1 or v1beta1",
                    api_version ? api_version : "(missing)");
    if ((args && !json_is_null(args) && !json_is_array(args)) ||
        (env && !json_is_null(env) && !json_is_array(env)))
        return fail(set, e->file->path, key, "args and env must be lists");
    x = calloc(1, sizeof *x);
    if (!x)
        return KV_ERR_NOMEM;
    cfg->exec = x;
    x->command = strdup(command);
    x->api_version = strdup(api_version);
    x->dir = strdup(e->file->dir);
    x->args = calloc(json_array_size(args) + 1, sizeof *x->args);
    x->env = calloc(json_array_size(env) + 1, sizeof *x->env);
    if (!x->command || !x->api_version || !x->dir || !x->args || !x->env)
        return KV_ERR_NOMEM;
    size_t i;
    const json_t *v;
    json_array_foreach(args, i, v) {
        if (!json_is_string(v))
            return fail(set, e->file->path, key, "args[%zu] must be a string", i);
        if (!(x->args[x->n_args++] = strdup(json_string_value(v))))
            return KV_ERR_NOMEM;
    }
    json_array_foreach(env, i, v) {
        const char *name = NULL, *value = NULL;
        if (json_unpack((json_t *)v, "{s:s,s:s}", "name", &name, "value", &value) != 0 || !*name ||
            strchr(name, '='))
            return fail(set, e->file->path, key, "env[%zu] must have a name and a value", i);
        size_t n = strlen(name) + strlen(value) + 2;
        char *entry = malloc(n);
        if (!entry)
            return KV_ERR_NOMEM;
        snprintf(entry, n, "%s=%s", name, value);
        x->env[x->n_env++] = entry;
    }
    return KV_OK;
}

static int load_user(kubeconfig_set *set, kube_config *cfg, const kubeconfig_entry *e)
{
    const char *token = NULL;
    int rc = entry_string(set, e, "users", "user", "token", &token);
    rc = rc ?: entry_path(set, e, "users", "user", "tokenFile", &cfg->token_file);
    rc = rc ?: entry_path(set, e, "users", "user", "client-certificate", &cfg->client_cert_file);
    rc = rc ?: entry_path(set, e, "users", "user", "client-key", &cfg->client_key_file);
    rc = rc ?: entry_base64(set, e, "users", "user", "client-certificate-data",
                            &cfg->client_cert_data);
    rc = rc ?: entry_base64(set, e, "users", "user", "client-key-data", &cfg->client_key_data);
    if (rc < 0)
        return rc;
    if (token && *token && !(cfg->token = strdup(token)))
        return KV_ERR_NOMEM;
    bool has_cert = cfg->client_cert_file || cfg->client_cert_data.data;
    bool has_key = cfg->client_key_file || cfg->client_key_data.data;
    if (has_cert != has_key) {
        char key[160];
        snprintf(key, sizeof key, "users[%zu].user.%s", e->index,
                 has_cert ? "client-key" : "client-certificate");
        return fail(set, e->file->path, key, "missing (a client certificate needs its key)");
    }
    const json_t *exec = e->body ? json_object_get(e->body, "exec") : NULL;
    if (exec && !json_is_null(exec))
        return load_exec(set, cfg, e, exec);
    return KV_OK;
}

static int kubeconfig_resolve(kubeconfig_set *set, kube_config *cfg)
{
    const char *current = NULL, *current_file = NULL;
    const char *cluster_name = NULL, *user_name = NULL;
    kubeconfig_entry context, cluster, user;
    char key[160];
    int rc;

    for (size_t f = 0; f < set->n_files && !current; f++) {
        const json_t *v = json_object_get(set->files[f].root, "current-context");
        if (v && !json_is_null(v) && !json_is_string(v))
            return fail(set, set->files[f].path, "current-context", "must be a string");
        if (json_is_string(v) && *json_string_value(v)) {
            current = json_string_value(v);
            current_file = set->files[f].path;
        }
    }
    if (!current)
        return fail(set, set->files[0].path, "current-context", "not set in any file");
    rc = kubeconfig_find(set, "contexts", "context", current, &context);
    if (rc == KV_ERR_NOT_FOUND)
        return fail(set, current_file, "current-context", "no context named \"%s\"", current);
    rc = rc ?: entry_string(set, &context, "contexts", "context", "cluster", &cluster_name);
    rc = rc ?: entry_string(set, &context, "contexts", "context", "user", &user_name);
    if (rc < 0)
        return rc;
    snprintf(key, sizeof key, "contexts[%zu].context.cluster", context.index);
    if (!cluster_name || !*cluster_name)
        return fail(set, context.file->path, key, "missing");
    rc = kubeconfig_find(set, "clusters", "cluster", cluster_name, &cluster);
    if (rc == KV_ERR_NOT_FOUND)
        return fail(set, context.file->path, key, "no cluster named \"%s\"", cluster_name);
    if (rc < 0)
        return rc;
    if (!cluster.body)
        return fail(set, cluster.file->path, "clusters[].cluster", "missing for \"%s\"",
                    cluster_name);
    cfg->origin = strdup(context.file->path);
    if (!cfg->origin)
        return KV_ERR_NOMEM;
    rc = load_cluster(set, cfg, &cluster);
    if (rc < 0 || !user_name || !*user_name)
        return rc; /* no user: anonymous */
    rc = kubeconfig_find(set, "users", "user", user_name, &user);
    if (rc == KV_ERR_NOT_FOUND) {
        snprintf(key, sizeof key, "contexts[%zu].context.user", context.index);
        return fail(set, context.file->path, key, "no user named \"%s\"", user_name);
    }
    return rc ?: load_user(set, cfg, &user);
}

int kube_config_load(kube_config **out, const char *path, char *err, size_t err_len)
{
    kubeconfig_set set = {.err = err, .err_len = err_len};
    kube_config *cfg = NULL;
    char *list = NULL;
    char fallback[4096];
    int rc = KV_OK;

    *out = NULL;
    err[0] = '\0';
    if (path) {
        rc = kubeconfig_read(&set, path);
        if (rc == KV_ERR_NOT_FOUND)
            snprintf(err, err_len, "kubeconfig %s: cannot read: %s", path, strerror(ENOENT));
    } else if (getenv("KUBECONFIG") && *getenv("KUBECONFIG")) {
        list = strdup(getenv("KUBECONFIG"));
        if (!list)
            return KV_ERR_NOMEM;
        char *save = NULL;
        /* A file of the list that does not exist is skipped, like client-go. */
        for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
            if (set.n_files == KUBE_MAX_FILES) {
                snprintf(err, err_len, "KUBECONFIG: more than %d files", KUBE_MAX_FILES);
                rc = KV_ERR_TOO_LARGE;
                break;
            }
            rc = kubeconfig_read(&set, p);
            if (rc == KV_ERR_NOT_FOUND)
                rc = KV_OK;
            if (rc < 0)
                break;
        }
        if (rc == KV_OK && set.n_files == 0) {
            snprintf(err, err_len, "KUBECONFIG=%s: none of the files exists",
                     getenv("KUBECONFIG"));
            rc = KV_ERR_NOT_FOUND;
        }
    } else {
        const char *home = getenv("HOME");
        snprintf(fallback, sizeof fallback, "%s/.kube/config", home && *home ? home : ".");
        rc = kubeconfig_read(&set, fallback);
        if (rc == KV_ERR_NOT_FOUND)
            snprintf(err, err_len, "kubeconfig %s: cannot read: %s (set KUBECONFIG or "
                     "kubernetes.kubeconfig)", fallback, strerror(ENOENT));
    }
    if (rc < 0)
        goto out;
    cfg = config_alloc();
    if (!cfg) {
        rc = KV_ERR_NOMEM;
        goto out;
    }
    rc = kubeconfig_resolve(&set, cfg);
    if (rc == KV_OK && (cfg->token_file || cfg->exec)) {
        char reason[512] = "";
        rc = kube_config_refresh(cfg, 0, reason, sizeof reason);
        if (rc < 0)
            snprintf(err, err_len, "kubeconfig %s: user: %s", cfg->origin, reason);
    }
    if (rc == KV_ERR_NOMEM && !err[0])
        snprintf(err, err_len, "kubeconfig: %s", kv_strerror(rc));
    if (rc < 0)
        kube_config_destroy(&cfg);

out:
    kubeconfig_set_clear(&set);
    free(list);
    *out = cfg;
    return rc;
}
