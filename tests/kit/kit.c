/* kit.c — see kit.h. Processes are started with posix_spawn, each writing
 * its log to <dir>/<stage>.log; every wait polls with a deadline. */
#include "tests/kit/kit.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

extern char **environ;

static const char *const stage_names[KIT_STAGES] = {"watcher", "planner", "syncer",
                                                    "syncer-team-b"};
#define KIT_EXTRA_TENANT "team-b"
static int pipeline_counter;

const char *kit_bin(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("KAVI_BIN_DIR");
    snprintf(buf, len, "%s/%s", dir ? dir : "build/asan/bin", name);
    return buf;
}

int kit_stage_parse(const char *name)
{
    for (int i = 0; i < KIT_STAGES; i++)
        if (strcmp(name, stage_names[i]) == 0)
            return i;
    return -1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int kit_stage_start(kit_pipeline *p, kit_stage stage)
{
    char bin[256], log_path[320], program[32];
    snprintf(program, sizeof program, "kavi-%s",
             stage == KIT_SYNCER_TEAM_B ? "syncer" : stage_names[stage]);
    kit_bin(program, bin, sizeof bin);
    snprintf(log_path, sizeof log_path, "%s/%s.log", p->dir, stage_names[stage]);

    char *argv[12];
    int argc = 0;
    argv[argc++] = bin;
    argv[argc++] = "--config";
    argv[argc++] = p->config_path;
    if (stage == KIT_WATCHER) {
        argv[argc++] = "--status-file";
        argv[argc++] = p->status_path;
    }
    if (stage == KIT_SYNCER_TEAM_B) {
        argv[argc++] = "--tenant";
        argv[argc++] = KIT_EXTRA_TENANT;
    }
    argv[argc] = NULL;

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    int rc = posix_spawn(&p->pids[stage], bin, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        fprintf(stderr, "kit: cannot start %s: %s\n", bin, strerror(rc));
        p->pids[stage] = 0;
        return -1;
    }
    p->starts[stage]++;
    return 0;
}

/* Signals a stage and reaps it; returns its exit status (-1 if it had to
 * be killed or was not running normally). */
static int stage_wait(kit_pipeline *p, kit_stage stage, int signal_number)
{
    if (p->pids[stage] <= 0)
        return 0;
    kill(p->pids[stage], signal_number);
    kill(p->pids[stage], SIGCONT); /* a frozen stage gets its signal too */
    /* Generous: a stage holding a large cluster frees it all (and the
     * leak checker scans it) on the way out under the sanitizers. */
    int64_t until = clock_now_ms() + 60000;
    int status = 0;
    pid_t done;
    while ((done = waitpid(p->pids[stage], &status, WNOHANG)) == 0) {
        if (clock_now_ms() > until) {
            kill(p->pids[stage], SIGKILL);
            waitpid(p->pids[stage], &status, 0);
            p->pids[stage] = 0;
            return -1;
        }
        sleep_ms(10);
    }
    p->pids[stage] = 0;
    if (done < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

void kit_stage_kill(kit_pipeline *p, kit_stage stage) { (void)stage_wait(p, stage, SIGKILL); }

void kit_stage_freeze(kit_pipeline *p, kit_stage stage)
{
    if (p->pids[stage] > 0)
        kill(p->pids[stage], SIGSTOP);
}

void kit_stage_thaw(kit_pipeline *p, kit_stage stage)
{
    if (p->pids[stage] > 0)
        kill(p->pids[stage], SIGCONT);
}

long kit_log_size(kit_pipeline *p, kit_stage stage)
{
    char path[320];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s.log", p->dir, stage_names[stage]);
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Whether the log holds needle past byte `from`; the size read goes to *end. */
static bool log_holds(kit_pipeline *p, kit_stage stage, const char *needle, long from, long *end)
{
    char path[320];
    snprintf(path, sizeof path, "%s/%s.log", p->dir, stage_names[stage]);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool found = false;
    char *line = NULL;
    size_t cap = 0;
    if (fseek(f, from, SEEK_SET) == 0)
        while (!found && getline(&line, &cap, f) > 0)
            found = strstr(line, needle) != NULL;
    if (found && end)
        *end = ftell(f);
    free(line);
    fclose(f);
    return found;
}

bool kit_wait_for_log(kit_pipeline *p, kit_stage stage, const char *needle, long from,
                      long *end, int64_t deadline_ms)
{
    int64_t until = clock_now_ms() + deadline_ms;
    for (;;) {
        if (log_holds(p, stage, needle, from, end))
            return true;
        if (clock_now_ms() > until)
            return false;
        sleep_ms(50);
    }
}

int kit_pipeline_start(kit_pipeline *p, const char *extra_config)
{
    return kit_pipeline_start_from(p, extra_config, NULL);
}

static int pipeline_start(kit_pipeline *p, avisim_t *sim, const char *cluster_name,
                          const char *extra_config, const char *kubeconfig,
                          const avisim_options_t *sim_options);

int kit_pipeline_start_from(kit_pipeline *p, const char *extra_config, const char *kubeconfig)
{
    return pipeline_start(p, NULL, "kavi", extra_config, kubeconfig, NULL);
}

int kit_pipeline_start_beside(kit_pipeline *p, avisim_t *sim, const char *cluster_name,
                              const char *extra_config)
{
    return pipeline_start(p, sim, cluster_name, extra_config, NULL, NULL);
}

int kit_pipeline_start_sim(kit_pipeline *p, const char *extra_config,
                           const avisim_options_t *sim_options)
{
    return pipeline_start(p, NULL, "kavi", extra_config, NULL, sim_options);
}

static int pipeline_start(kit_pipeline *p, avisim_t *sim, const char *cluster_name,
                          const char *extra_config, const char *kubeconfig,
                          const avisim_options_t *sim_options)
{
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "%s/kavi-it-%d-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid(), ++pipeline_counter);
    mkdir(p->dir, 0755);
    snprintf(p->config_path, sizeof p->config_path, "%s/kavi.yaml", p->dir);
    snprintf(p->stream_path, sizeof p->stream_path, "%s/stream.ndjson", p->dir);
    snprintf(p->status_path, sizeof p->status_path, "%s/status.json", p->dir);

    avisim_options_t opts = {.tenants = KIT_EXTRA_TENANT};
    if (sim_options) {
        opts = *sim_options;
        if (!opts.tenants)
            opts.tenants = KIT_EXTRA_TENANT;
    }
    p->borrows_sim = sim != NULL;
    p->sim = sim;
    if (!sim && avisim_new(&p->sim, &opts) != 0)
        return -1;

    /* Bus ports unique to this test process and pipeline. */
    /* Below the kernel's ephemeral range (32768+), where an outgoing
     * connection could hold the port first. */
    int base = 20000 + (int)(getpid() % 1200) * 10 + (pipeline_counter % 2) * 5;
    FILE *cfg = fopen(p->config_path, "w");
    FILE *stream = fopen(p->stream_path, "w");
    if (!cfg || !stream) {
        if (cfg)
            fclose(cfg);
        if (stream)
            fclose(stream);
        return -1;
    }
    fclose(stream);
    fprintf(cfg,
            "clusterName: %s\n"
            "serviceType: NodePort\n"
            "controllerHost: http://127.0.0.1:%d\n"
            "logLevel: INFO\n"
            "vipNetworkList:\n  - networkName: vip-net\n"
            "credentials:\n  username: admin\n  password: avi123\n"
            "kubernetes:\n  source: %s\n  %s: %s\n%s"
            "bus:\n"
            "  k8sPublish: tcp://127.0.0.1:%d\n  k8sSnapshot: tcp://127.0.0.1:%d\n"
            "  modelPublish: tcp://127.0.0.1:%d\n  modelSnapshot: tcp://127.0.0.1:%d\n"
            "  status: tcp://127.0.0.1:%d\n"
            "%s",
            cluster_name, avisim_port(p->sim), kubeconfig ? "kubeconfig" : "replay",
            kubeconfig ? "kubeconfig" : "replayFile", kubeconfig ? kubeconfig : p->stream_path,
            kubeconfig ? "" : "  follow: true\n", base, base + 1, base + 2, base + 3, base + 4,
            extra_config ? extra_config : "");
    fclose(cfg);
    for (int s = 0; s <= KIT_SYNCER; s++)
        if (kit_stage_start(p, (kit_stage)s) != 0)
            return -1;
    return 0;
}

bool kit_pipeline_stop(kit_pipeline *p, char *why, size_t why_len)
{
    bool clean = true;
    for (int s = 0; s < KIT_STAGES; s++) {
        int rc = stage_wait(p, (kit_stage)s, SIGTERM);
        if (rc != 0 && clean) {
            snprintf(why, why_len, "kavi-%s did not exit cleanly on SIGTERM (status %d)",
                     stage_names[s], rc);
            clean = false;
        }
    }
    if (!p->borrows_sim)
        avisim_destroy(&p->sim);
    p->sim = NULL;
    return clean;
}

int kit_append(kit_pipeline *p, const char *line)
{
    FILE *f = fopen(p->stream_path, "a");
    if (!f)
        return -1;
    fprintf(f, "%s\n", line);
    fclose(f);
    return 0;
}

int kit_append_file(kit_pipeline *p, const char *path)
{
    FILE *in = fopen(path, "r");
    FILE *out = in ? fopen(p->stream_path, "a") : NULL;
    char buf[1 << 16];
    size_t n;
    int rc = in && out ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in && ferror(in))
        rc = -1;
    if (out && fclose(out) != 0)
        rc = -1;
    if (in)
        fclose(in);
    return rc;
}

void kit_dump_logs(kit_pipeline *p)
{
    for (int s = 0; s < KIT_STAGES; s++) {
        char cmd[400];
        fprintf(stderr, "---- %s (last 25 lines) ----\n", stage_names[s]);
        snprintf(cmd, sizeof cmd, "tail -n 25 '%s/%s.log' 1>&2", p->dir, stage_names[s]);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
    }
}

/* ---- controller view ------------------------------------------------------ */

static int compare_strings(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static json_t *sorted(json_t *array)
{
    size_t n = json_array_size(array);
    json_t **items = calloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(array, i));
    qsort(items, n, sizeof *items, compare_strings);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, items[i]);
    free(items);
    json_decref(array);
    return out;
}

static json_t *server_strings(const json_t *pool)
{
    json_t *out = json_array();
    size_t i;
    json_t *server;
    json_array_foreach(json_object_get(pool, "servers"), i, server) {
        const json_t *enabled = json_object_get(server, "enabled");
        json_array_append_new(
            out, json_sprintf("%s %s:%lld %s", json_string_value(json_object_get(server, "hostname")),
                              json_string_value(json_object_get(json_object_get(server, "ip"), "addr")),
                              (long long)json_integer_value(json_object_get(server, "port")),
                              enabled && json_is_false(enabled) ? "disabled" : "enabled"));
    }
    return sorted(out);
}

/* The slot of `type` in the view: an object of pools, else a name list. */
static json_t *view_slot(json_t *view, const char *type)
{
    json_t *slot = json_object_get(view, type);
    if (!slot) {
        slot = strcmp(type, "pool") == 0 ? json_object() : json_array();
        json_object_set_new(view, type, slot);
    }
    return slot;
}

json_t *kit_controller_view(kit_pipeline *p)
{
    json_t *state = avisim_state(p->sim);
    json_t *view = json_object();
    const char *tenant, *type;
    json_t *types, *objects;
    json_object_foreach(state, tenant, types) {
        bool admin = strcmp(tenant, "admin") == 0;
        json_object_foreach(types, type, objects) {
            size_t i;
            json_t *object;
            json_array_foreach(objects, i, object) {
                const char *name = json_string_value(json_object_get(object, "name"));
                if (!name || strncmp(name, "kavi--", 6) != 0)
                    continue;
                char shown[512];
                snprintf(shown, sizeof shown, "%s%s%s", admin ? "" : tenant, admin ? "" : "/",
                         name);
                json_t *slot = view_slot(view, type);
                if (json_is_object(slot))
                    json_object_set_new(slot, shown, server_strings(object));
                else
                    json_array_append_new(slot, json_string(shown));
            }
        }
    }
    json_t *slot;
    json_object_foreach(view, type, slot) {
        if (json_is_array(slot))
            json_object_set_new(view, type, sorted(json_incref(slot)));
    }
    json_decref(state);
    return view;
}

static bool wait_until_equal(json_t *(*read)(kit_pipeline *), kit_pipeline *p,
                             const json_t *expected, char *why, size_t why_len)
{
    int64_t until = clock_now_ms() + KIT_DEADLINE_MS;
    json_t *actual = NULL;
    for (;;) {
        json_decref(actual);
        actual = read(p);
        if (json_equal(actual, (json_t *)expected)) {
            json_decref(actual);
            return true;
        }
        if (clock_now_ms() > until)
            break;
        sleep_ms(50);
    }
    char *want = json_dumps(expected, JSON_COMPACT | JSON_SORT_KEYS);
    char *got = json_dumps(actual, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(why, why_len, "timed out after %d ms\n  expected %s\n  actual   %s", KIT_DEADLINE_MS,
             want, got);
    free(want);
    free(got);
    json_decref(actual);
    return false;
}

bool kit_wait_for_view(kit_pipeline *p, const json_t *expected, char *why, size_t why_len)
{
    return wait_until_equal(kit_controller_view, p, expected, why, why_len);
}

/* The watcher's status file reduced to {object: [ips]} or {object: "error"}. */
static json_t *status_view(kit_pipeline *p)
{
    json_t *file = json_load_file(p->status_path, 0, NULL);
    json_t *view = json_object();
    const char *object;
    json_t *st;
    json_object_foreach(file, object, st) {
        const json_t *error = json_object_get(st, "error");
        if (json_is_string(error)) {
            /* "error: <what the controller said>", so a scenario names it. */
            char text[1024];
            snprintf(text, sizeof text, "error: %s", json_string_value(error));
            json_object_set_new(view, object, json_string(text));
            continue;
        }
        json_t *ips = json_array();
        size_t i;
        json_t *entry;
        json_array_foreach(json_object_get(st, "ingress"), i, entry)
            json_array_append(ips, json_object_get(entry, "ip"));
        json_object_set_new(view, object, ips);
    }
    json_decref(file);
    return view;
}

bool kit_wait_for_status(kit_pipeline *p, const json_t *expected, char *why, size_t why_len)
{
    return wait_until_equal(status_view, p, expected, why, why_len);
}

/* ---- simulator control over HTTP ------------------------------------------- */

static size_t collect(char *data, size_t size, size_t n, void *user)
{
    FILE *f = user;
    return fwrite(data, size, n, f);
}

static json_t *sim_call(kit_pipeline *p, const char *method, const char *path, const char *body)
{
    char url[256];
    char *text = NULL;
    size_t text_len = 0;
    FILE *out = open_memstream(&text, &text_len);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", avisim_port(p->sim), path);
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
    if (body)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    fclose(out);
    json_t *reply = rc == CURLE_OK ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    free(text);
    return reply;
}

static bool is_write(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
}

/* Checks every write in the request log since @mark. With `only_method`
 * set, each write must be that method on an object whose name starts with
 * `only_name`; otherwise (empty-pool check) no pool may be written with
 * zero servers. */
static bool check_log(kit_pipeline *p, const char *only_method, const char *only_name, char *why,
                      size_t why_len)
{
    json_t *log = sim_call(p, "GET", "/_sim/log", NULL);
    size_t i;
    json_t *entry;
    bool ok = true;
    json_array_foreach(log, i, entry) {
        const char *method = json_string_value(json_object_get(entry, "method"));
        const char *type = json_string_value(json_object_get(entry, "type"));
        const char *name = json_string_value(json_object_get(entry, "name"));
        /* Sessions are not configuration: only object writes count. */
        if (!method || !is_write(method) || !type || strcmp(type, "login") == 0 ||
            strcmp(type, "logout") == 0)
            continue;
        if (only_method) {
            if (strcmp(method, only_method) == 0 && name &&
                strncmp(name, only_name, strlen(only_name)) == 0)
                continue;
        } else {
            const json_t *servers = json_object_get(json_object_get(entry, "body"), "servers");
            if (strcmp(type, "pool") != 0 || strcmp(method, "DELETE") == 0 ||
                json_array_size(servers) > 0)
                continue;
        }
        char *line = json_dumps(entry, JSON_COMPACT);
        snprintf(why, why_len, "unexpected write: %.900s", line);
        free(line);
        ok = false;
        break;
    }
    if (!log) {
        snprintf(why, why_len, "cannot read the simulator's request log");
        ok = false;
    }
    json_decref(log);
    return ok;
}

json_t *kit_sim_log(kit_pipeline *p, unsigned long long since)
{
    char path[64];
    snprintf(path, sizeof path, "/_sim/log?since=%llu", since);
    return sim_call(p, "GET", path, NULL);
}

long kit_sim_counter(kit_pipeline *p, const char *method_type)
{
    json_t *counters = sim_call(p, "GET", "/_sim/counters", NULL);
    const json_t *requests = json_object_get(counters, "requests");
    long n = requests ? (long)json_integer_value(json_object_get(requests, method_type)) : -1;
    json_decref(counters);
    return n;
}

/* ---- views at scale ---------------------------------------------------------- */

/* Appends to out (at *used) without passing out_len. */
__attribute__((format(printf, 4, 5))) static void diff_note(char *out, size_t out_len,
                                                            size_t *used, const char *fmt, ...)
{
    if (*used >= out_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *used, out_len - *used, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used += (size_t)n < out_len - *used ? (size_t)n : out_len - *used;
}

#define DIFF_EXAMPLES 5

size_t kit_view_diff(const json_t *expected, const json_t *actual, char *out, size_t out_len)
{
    size_t used = 0, differing = 0;
    size_t missing = 0, extra = 0, wrong = 0, wrong_servers = 0, names_missing = 0,
           names_extra = 0;
    char examples[2048] = "";
    size_t examples_used = 0;
    int shown = 0;
    const json_t *want_pools = json_object_get(expected, "pool");
    const json_t *have_pools = json_object_get(actual, "pool");
    const char *name;
    json_t *want;
    json_object_foreach((json_t *)want_pools, name, want) {
        const json_t *have = json_object_get(have_pools, name);
        if (!have) {
            missing++;
            if (shown++ < DIFF_EXAMPLES)
                diff_note(examples, sizeof examples, &examples_used, "\n    missing pool %s", name);
        } else if (!json_equal(want, (json_t *)have)) {
            wrong++;
            size_t w = json_array_size(want), h = json_array_size(have);
            wrong_servers += w > h ? w - h : h - w;
            if (shown++ < DIFF_EXAMPLES) {
                char *a = json_dumps(want, JSON_COMPACT), *b = json_dumps(have, JSON_COMPACT);
                char detail[400];
                snprintf(detail, sizeof detail, "%.150s, holds %.150s", a ? a : "?",
                         b ? b : "?");
                diff_note(examples, sizeof examples, &examples_used,
                          "\n    wrong pool %s: expected %s", name, detail);
                free(a);
                free(b);
            }
        }
    }
    json_object_foreach((json_t *)have_pools, name, want) {
        if (!json_object_get(want_pools, name)) {
            extra++;
            if (shown++ < DIFF_EXAMPLES)
                diff_note(examples, sizeof examples, &examples_used, "\n    extra pool %s", name);
        }
    }
    /* The name lists (virtualservice, vsvip, ...), both ways. */
    const json_t *views[2] = {expected, actual};
    for (int side = 0; side < 2; side++) {
        const char *type;
        json_t *names;
        json_object_foreach((json_t *)views[side], type, names) {
            if (!json_is_array(names))
                continue;
            json_t *other = json_object(); /* the other side's names, as a set */
            size_t i;
            json_t *item;
            json_array_foreach(json_object_get(views[1 - side], type), i, item)
                json_object_set(other, json_string_value(item), json_true());
            json_array_foreach(names, i, item) {
                if (json_object_get(other, json_string_value(item)))
                    continue;
                side == 0 ? names_missing++ : names_extra++;
                if (shown++ < DIFF_EXAMPLES)
                    diff_note(examples, sizeof examples, &examples_used,
                              side == 0 ? "\n    missing %s %s" : "\n    extra %s %s", type,
                              json_string_value(item));
            }
            json_decref(other);
        }
    }
    differing = missing + extra + wrong + names_missing + names_extra;
    char counts[512];
    snprintf(counts, sizeof counts,
             "%zu of %zu pools missing, %zu wrong (%zu servers apart), %zu extra; "
             "%zu other objects missing, %zu extra",
             missing, json_object_size(want_pools), wrong, wrong_servers, extra, names_missing,
             names_extra);
    diff_note(out, out_len, &used, "%s%s", counts, examples);
    return differing;
}

bool kit_wait_for_view_within(kit_pipeline *p, const json_t *expected, int64_t deadline_ms,
                              char *why, size_t why_len)
{
    int64_t start = clock_now_ms();
    int64_t until = start + deadline_ms;
    json_t *actual = NULL;
    for (;;) {
        int64_t before = clock_now_ms();
        json_decref(actual);
        actual = kit_controller_view(p);
        if (json_equal(actual, (json_t *)expected)) {
            json_decref(actual);
            return true;
        }
        int64_t took = clock_now_ms() - before;
        if (clock_now_ms() > until)
            break;
        /* Leave the pipeline most of the (shared) CPU. */
        sleep_ms(took * 2 > 50 ? took * 2 : 50);
    }
    char diff[3072];
    kit_view_diff(expected, actual, diff, sizeof diff);
    snprintf(why, why_len, "timed out after %lld ms: %s", (long long)(clock_now_ms() - start),
             diff);
    json_decref(actual);
    return false;
}

/* ---- scenarios -------------------------------------------------------------- */

static bool run_directive(kit_pipeline *p, const char *line, char *why, size_t why_len)
{
    char word[32] = "";
    const char *arg = line + 1;
    size_t n = strcspn(arg, " \t");
    snprintf(word, sizeof word, "%.*s", (int)n, arg);
    arg += n;
    arg += strspn(arg, " \t");

    if (strcmp(word, "expect") == 0 || strcmp(word, "status") == 0) {
        json_error_t err;
        json_t *expected = json_loads(arg, 0, &err);
        if (!expected) {
            snprintf(why, why_len, "bad JSON: %s", err.text);
            return false;
        }
        bool ok = word[0] == 'e' ? kit_wait_for_view(p, expected, why, why_len)
                                 : kit_wait_for_status(p, expected, why, why_len);
        json_decref(expected);
        return ok;
    }
    if (strcmp(word, "kill") == 0 || strcmp(word, "start") == 0) {
        int stage = kit_stage_parse(arg);
        if (stage < 0) {
            snprintf(why, why_len, "unknown stage '%s'", arg);
            return false;
        }
        if (word[0] == 'k')
            kit_stage_kill(p, (kit_stage)stage);
        else if (kit_stage_start(p, (kit_stage)stage) != 0) {
            snprintf(why, why_len, "cannot start %s", arg);
            return false;
        }
        return true;
    }
    if (strcmp(word, "mark") == 0) {
        json_decref(sim_call(p, "DELETE", "/_sim/log", NULL));
        return true;
    }
    if (strcmp(word, "writes-only") == 0) {
        char method[16] = "", name[256] = "";
        if (sscanf(arg, "%15s %255s", method, name) != 2) {
            snprintf(why, why_len, "@writes-only needs METHOD NAME-PREFIX");
            return false;
        }
        return check_log(p, method, name, why, why_len);
    }
    if (strcmp(word, "no-empty-pool-writes") == 0)
        return check_log(p, NULL, NULL, why, why_len);
    if (strcmp(word, "reconfigure") == 0) {
        /* Stages started from now on read the line too. */
        FILE *f = fopen(p->config_path, "a");
        bool ok = f && fprintf(f, "%s\n", arg) > 0;
        if (f && fclose(f) != 0)
            ok = false;
        if (!ok)
            snprintf(why, why_len, "cannot append to %s", p->config_path);
        return ok;
    }
    if (strcmp(word, "faults") == 0) {
        json_decref(sim_call(p, "POST", "/_sim/faults", arg));
        return true;
    }
    snprintf(why, why_len, "unknown directive @%s", word);
    return false;
}

bool kit_run_scenario(const char *path, char *why, size_t why_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, why_len, "cannot open %s", path);
        return false;
    }
    kit_pipeline p;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int line_number = 0;
    bool ok = true;
    char detail[4096] = "";
    char config[2048] = "";

    /* Leading "@config <yaml line>" lines (among comments) extend the configuration. */
    while ((len = getline(&line, &cap, f)) > 0 &&
           (line[0] == '#' || strncmp(line, "@config ", 8) == 0)) {
        line_number++;
        if (line[0] == '@')
            strncat(config, line + 8, sizeof config - strlen(config) - 1);
    }
    if (kit_pipeline_start(&p, config) != 0) {
        snprintf(why, why_len, "%s: cannot start the pipeline", path);
        free(line);
        fclose(f);
        kit_pipeline_stop(&p, detail, sizeof detail);
        return false;
    }
    for (; len > 0 && ok; len = getline(&line, &cap, f)) {
        line_number++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (line[0] == '@')
            ok = run_directive(&p, line, detail, sizeof detail);
        else
            ok = kit_append(&p, line) == 0;
    }
    if (!ok) {
        snprintf(why, why_len, "%s:%d: %s", path, line_number, detail);
        kit_dump_logs(&p);
    }
    free(line);
    fclose(f);
    if (!kit_pipeline_stop(&p, detail, sizeof detail) && ok) {
        snprintf(why, why_len, "%s: %s", path, detail);
        kit_dump_logs(&p);
        ok = false;
    }
    return ok;
}
