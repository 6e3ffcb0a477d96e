/* The live watcher's pieces that need no API server: kubeconfig variants
 * (fixtures under tests/data/kubeconfig/), in-cluster settings, token file
 * and exec plugin refresh, base64, and the watch-stream line splitter fed
 * in every split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/base64.h"
#include "common/error.h"
#include "watcher/kube_client.h"
#include "watcher/kube_config.h"

#define DIR "tests/data/kubeconfig/"

static char err[1024];

static kube_config *load_ok(const char *path)
{
    kube_config *cfg = NULL;
    int rc = kube_config_load(&cfg, path, err, sizeof err);
    if (rc != KV_OK)
        fail_msg("%s: %s", path, err);
    assert_non_null(cfg);
    return cfg;
}

static void load_fails(const char *path, const char *expected)
{
    kube_config *cfg = NULL;
    assert_true(kube_config_load(&cfg, path, err, sizeof err) < 0);
    assert_null(cfg);
    if (!strstr(err, expected))
        fail_msg("error \"%s\" does not contain \"%s\"", err, expected);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, c;
    if (!f)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* ---- base64 -------------------------------------------------------------------- */

static void test_base64_decodes_padded_unpadded_and_wrapped(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},          {"Zg==", "f"},      {"Zm8=", "fo"},   {"Zm9v", "foo"},
        {"Zg", "f"},       {"Zm8", "fo"},      {"Zm9vYg==", "foob"},
        {"Zm9v\nYmFy\n", "foobar"}, {"  Zm9vYmE=  ", "fooba"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        size_t len = 0;
        assert_int_equal(base64_decode(&out, &len, cases[i].in, strlen(cases[i].in), false), KV_OK);
        assert_int_equal(len, strlen(cases[i].out));
        assert_memory_equal(out, cases[i].out, len);
        assert_int_equal(out[len], '\0');
        free(out);
    }
}

static void test_base64_rejects_foreign_bytes_and_bad_padding(void **state)
{
    (void)state;
    static const char *bad[] = {"Zm9v*", "Z", "Zm9vY", "Zg=a", "Zg===", "Z===", "-_-_"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = (char *)1;
        size_t len = 1;
        assert_int_equal(base64_decode(&out, &len, bad[i], strlen(bad[i]), false), KV_ERR_INVALID);
        assert_null(out);
    }
}

/* ---- line splitter ----------------------------------------------------------------- */

typedef struct {
    char lines[8][64];
    int n;
} collected;

static int collect(void *payload, char *line, size_t len)
{
    collected *c = payload;
    assert_true(c->n < 8);
    assert_int_equal(strlen(line), len);
    snprintf(c->lines[c->n++], sizeof c->lines[0], "%s", line);
    return KV_OK;
}

static void test_lines_split_at_every_position_give_the_same_events(void **state)
{
    (void)state;
    const char *stream = "{\"type\":\"ADDED\"}\n{\"type\":\"MODIFIED\"}\r\n\n{\"type\":\"BOOKMARK\"}\n";
    size_t len = strlen(stream);
    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b++) {
            kube_lines lines;
            collected c = {.n = 0};
            kube_lines_init(&lines, 1024);
            assert_int_equal(kube_lines_feed(&lines, stream, a, collect, &c), KV_OK);
            assert_int_equal(kube_lines_feed(&lines, stream + a, b - a, collect, &c), KV_OK);
            assert_int_equal(kube_lines_feed(&lines, stream + b, len - b, collect, &c), KV_OK);
            assert_int_equal(c.n, 3);
            assert_string_equal(c.lines[0], "{\"type\":\"ADDED\"}");
            assert_string_equal(c.lines[1], "{\"type\":\"MODIFIED\"}");
            assert_string_equal(c.lines[2], "{\"type\":\"BOOKMARK\"}");
            assert_int_equal(lines.partial.len, 0);
            kube_lines_free(&lines);
        }
    }
}

static void test_lines_byte_by_byte_and_partial_tail_kept(void **state)
{
    (void)state;
    const char *stream = "one\ntwo\nthr";
    kube_lines lines;
    collected c = {.n = 0};
    kube_lines_init(&lines, 1024);
    for (size_t i = 0; i < strlen(stream); i++)
        assert_int_equal(kube_lines_feed(&lines, stream + i, 1, collect, &c), KV_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(lines.partial.len, 3); /* "thr" waits for its newline */
    assert_int_equal(kube_lines_feed(&lines, "ee\n", 3, collect, &c), KV_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.lines[2], "three");
    kube_lines_free(&lines);
}

static void test_lines_over_the_cap_are_refused(void **state)
{
    (void)state;
    char big[100];
    kube_lines lines;
    collected c = {.n = 0};
    memset(big, 'x', sizeof big);
    kube_lines_init(&lines, 64);
    /* Whole line in one read, and a line growing across reads. */
    assert_int_equal(kube_lines_feed(&lines, big, sizeof big, collect, &c), KV_ERR_TOO_LARGE);
    kube_lines_reset(&lines);
    assert_int_equal(kube_lines_feed(&lines, "x\n", 2, collect, &c), KV_OK);
    char line[101];
    memcpy(line, big, 100);
    line[100] = '\n';
    assert_int_equal(kube_lines_feed(&lines, line, sizeof line, collect, &c), KV_ERR_TOO_LARGE);
    assert_int_equal(c.n, 1);
    kube_lines_free(&lines);
}

/* ---- kubeconfig ---------------------------------------------------------------------- */

static void test_kubeconfig_token_ca_data_and_tls_server_name(void **state)
{
    (void)state;
    kube_config *cfg = load_ok(DIR "token.yaml");
    assert_string_equal(cfg->server, "https://127.0.0.1:6443"); /* trailing '/' dropped */
    assert_string_equal(cfg->token, "static-token");
    assert_non_null(cfg->ca_data.data);
    assert_non_null(strstr(cfg->ca_data.data, "fake ca"));
    assert_string_equal(cfg->tls_server_name, "kubernetes.default");
    assert_false(cfg->insecure_skip_tls_verify);
    assert_null(cfg->exec);
    assert_string_equal(cfg->origin, DIR "token.yaml");
    kube_config_destroy(&cfg);
    assert_null(cfg);
}

static void test_kubeconfig_relative_paths_resolve_against_its_directory(void **state)
{
    (void)state;
    kube_config *cfg = load_ok(DIR "token-file.yaml");
    assert_string_equal(cfg->server, "https://[::1]:6443");
    assert_string_equal(cfg->ca_file, DIR "ca.crt");
    assert_string_equal(cfg->token_file, DIR "token.txt");
    assert_string_equal(cfg->token, "token-from-file"); /* read at load, newline trimmed */
    assert_true(cfg->insecure_skip_tls_verify);
    kube_config_destroy(&cfg);
}

static void test_kubeconfig_client_certificate_data_is_decoded(void **state)
{
    (void)state;
    kube_config *cfg = load_ok(DIR "client-cert-data.yaml");
    assert_non_null(strstr(cfg->client_cert_data.data, "BEGIN CERTIFICATE"));
    assert_non_null(strstr(cfg->client_key_data.data, "BEGIN PRIVATE KEY"));
    assert_null(cfg->token);
    kube_config_destroy(&cfg);
}

static void test_kubeconfig_exec_plugin_gives_the_token(void **state)
{
    (void)state;
    chmod(DIR "exec-credential.sh", 0755);
    kube_config *cfg = load_ok(DIR "exec.yaml");
    assert_non_null(cfg->exec);
    assert_string_equal(cfg->token, "exec-token");
    kube_config_destroy(&cfg);
}

static void test_exec_credential_cached_until_expiry_and_rerun_after_401(void **state)
{
    (void)state;
    char dir[] = "/tmp/kavi-exec-XXXXXX", count[128], token[128];
    assert_non_null(mkdtemp(dir));
    snprintf(count, sizeof count, "%s/count", dir);
    snprintf(token, sizeof token, "%s/token", dir);
    write_text(token, "first");
    setenv("EXEC_COUNT_FILE", count, 1);
    setenv("EXEC_TOKEN_FILE", token, 1);
    kube_config *cfg = load_ok(DIR "exec.yaml");
    assert_string_equal(cfg->token, "first");
    assert_int_equal(count_lines(count), 1);

    /* No expiry: cached. */
    write_text(token, "second");
    assert_int_equal(kube_config_refresh(cfg, 120000, err, sizeof err), KV_OK);
    assert_string_equal(cfg->token, "first");
    assert_int_equal(count_lines(count), 1);

    /* A 401: the plugin runs again. */
    kube_config_invalidate(cfg);
    assert_int_equal(kube_config_refresh(cfg, 120001, err, sizeof err), KV_OK);
    assert_string_equal(cfg->token, "second");
    assert_int_equal(count_lines(count), 2);
    kube_config_destroy(&cfg);

    /* An expired credential is fetched again at every refresh. */
    setenv("EXEC_EXPIRY", "2000-01-01T00:00:00Z", 1);
    cfg = load_ok(DIR "exec.yaml");
    assert_int_equal(count_lines(count), 3);
    assert_int_equal(kube_config_refresh(cfg, 0, err, sizeof err), KV_OK);
    assert_int_equal(count_lines(count), 4);
    kube_config_destroy(&cfg);
    /* One far in the future is not. */
    setenv("EXEC_EXPIRY", "2999-01-01T00:00:00.5+02:00", 1);
    cfg = load_ok(DIR "exec.yaml");
    assert_int_equal(kube_config_refresh(cfg, 0, err, sizeof err), KV_OK);
    assert_int_equal(count_lines(count), 5);
    kube_config_destroy(&cfg);

    unsetenv("EXEC_EXPIRY");
    unsetenv("EXEC_COUNT_FILE");
    unsetenv("EXEC_TOKEN_FILE");
    unlink(count);
    unlink(token);
    rmdir(dir);
}

static void test_kubeconfig_list_merges_first_name_wins(void **state)
{
    (void)state;
    kube_config *cfg = NULL;
    setenv("KUBECONFIG", DIR "merge-first.yaml:/nonexistent/kubeconfig:" DIR "merge-second.yaml",
           1);
    int rc = kube_config_load(&cfg, NULL, err, sizeof err);
    unsetenv("KUBECONFIG");
    if (rc != KV_OK)
        fail_msg("%s", err);
    /* current-context from the second file (the first sets none), but the
     * cluster and user from the first file that defines them. */
    assert_string_equal(cfg->server, "https://first.example:6443");
    assert_string_equal(cfg->token, "first-token");
    assert_string_equal(cfg->origin, DIR "merge-second.yaml");
    kube_config_destroy(&cfg);
}

static void test_bad_kubeconfigs_name_file_key_and_reason(void **state)
{
    (void)state;
    load_fails(DIR "bad-base64.yaml",
               "kubeconfig " DIR "bad-base64.yaml: users[0].user.client-certificate-data: not "
               "valid base64");
    load_fails(DIR "missing-cluster.yaml",
               "kubeconfig " DIR "missing-cluster.yaml: contexts[0].context.cluster: no cluster "
               "named \"absent\"");
    load_fails(DIR "bad-exec-version.yaml", "users[0].user.exec: apiVersion "
                                            "client.authentication.k8s.io/v1alpha1");
    load_fails(DIR "bad-yaml.yaml", "kubeconfig " DIR "bad-yaml.yaml: line ");
    load_fails(DIR "does-not-exist.yaml", "kubeconfig " DIR "does-not-exist.yaml: cannot read");
    setenv("KUBECONFIG", "/nonexistent/a:/nonexistent/b", 1);
    load_fails(NULL, "none of the files exists");
    unsetenv("KUBECONFIG");
}

static void test_exec_plugin_failure_is_reported_at_load(void **state)
{
    (void)state;
    char path[] = "/tmp/kavi-kubeconfig-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_text(path, "current-context: x\n"
                     "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                     "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
                     "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1,"
                     " command: /bin/false}}}]\n");
    load_fails(path, "exec /bin/false: exited with status 1");
    unlink(path);
}

/* ---- in-cluster ---------------------------------------------------------------------- */

static void test_in_cluster_reads_env_brackets_ipv6_and_rereads_token(void **state)
{
    (void)state;
    char dir[] = "/tmp/kavi-sa-XXXXXX", path[128];
    kube_config *cfg = NULL;
    assert_non_null(mkdtemp(dir));
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(kube_config_in_cluster(&cfg, err, sizeof err), KV_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));

    snprintf(path, sizeof path, "%s/ca.crt", dir);
    write_text(path, "ca");
    snprintf(path, sizeof path, "%s/token", dir);
    write_text(path, "token-1\n");
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    setenv("KAVI_SERVICEACCOUNT_DIR", dir, 1);
    assert_int_equal(kube_config_in_cluster(&cfg, err, sizeof err), KV_OK);
    assert_string_equal(cfg->server, "https://[fd00::1]:443");
    assert_string_equal(cfg->token, "token-1");

    /* Within the minute: the old token; after it, or after a 401: the new. */
    write_text(path, "token-2\n");
    assert_int_equal(kube_config_refresh(cfg, 30000, err, sizeof err), KV_OK);
    assert_string_equal(cfg->token, "token-1");
    assert_int_equal(kube_config_refresh(cfg, KUBE_TOKEN_REREAD_MS, err, sizeof err), KV_OK);
    assert_string_equal(cfg->token, "token-2");
    write_text(path, "token-3\n");
    kube_config_invalidate(cfg);
    assert_int_equal(kube_config_refresh(cfg, KUBE_TOKEN_REREAD_MS + 1, err, sizeof err), KV_OK);
    assert_string_equal(cfg->token, "token-3");

    /* A token file that vanished keeps the last token. */
    unlink(path);
    kube_config_invalidate(cfg);
    assert_true(kube_config_refresh(cfg, KUBE_TOKEN_REREAD_MS + 2, err, sizeof err) < 0);
    assert_string_equal(cfg->token, "token-3");
    kube_config_destroy(&cfg);

    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    unsetenv("KAVI_SERVICEACCOUNT_DIR");
    snprintf(path, sizeof path, "%s/ca.crt", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_decodes_padded_unpadded_and_wrapped),
        cmocka_unit_test(test_base64_rejects_foreign_bytes_and_bad_padding),
        cmocka_unit_test(test_lines_split_at_every_position_give_the_same_events),
        cmocka_unit_test(test_lines_byte_by_byte_and_partial_tail_kept),
        cmocka_unit_test(test_lines_over_the_cap_are_refused),
        cmocka_unit_test(test_kubeconfig_token_ca_data_and_tls_server_name),
        cmocka_unit_test(test_kubeconfig_relative_paths_resolve_against_its_directory),
        cmocka_unit_test(test_kubeconfig_client_certificate_data_is_decoded),
        cmocka_unit_test(test_kubeconfig_exec_plugin_gives_the_token),
        cmocka_unit_test(test_exec_credential_cached_until_expiry_and_rerun_after_401),
        cmocka_unit_test(test_kubeconfig_list_merges_first_name_wins),
        cmocka_unit_test(test_bad_kubeconfigs_name_file_key_and_reason),
        cmocka_unit_test(test_exec_plugin_failure_is_reported_at_load),
        cmocka_unit_test(test_in_cluster_reads_env_brackets_ipv6_and_rereads_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
