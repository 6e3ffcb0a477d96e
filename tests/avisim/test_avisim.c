/*
 * Tests of the Avi Controller simulator, driven in-process over real HTTP
 * with libcurl, the way kavi's syncer talks to a controller. Each test starts
 * its own simulator, so tests are independent and can run alone:
 *   test_avisim [test-name-glob]
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "avisim.h"

/* argv[0], to find the standalone program built beside this test. */
static const char *test_argv0;

/* ---- HTTP client --------------------------------------------------------- */

struct tbuf {
    char *data;
    size_t len;
};

struct client {
    CURL *curl;
    int port;
    bool tls;
    char csrf[64];
    char sid[64];
    const char *tenant;      /* X-Avi-Tenant */
    const char *tenant_uuid; /* X-Avi-Tenant-UUID */
    const char *version;     /* X-Avi-Version */
    const char *authorization; /* Authorization header value */
    const char *csrf_override;
    bool no_csrf;
    bool form;
    long status;
    CURLcode rc;
    struct tbuf body;
    struct tbuf headers;
    json_t *json;
};

struct fx {
    avisim_t *sim;
    struct client c;
};

static size_t tbuf_write(char *p, size_t size, size_t n, void *ud)
{
    struct tbuf *b = ud;
    size_t add = size * n;
    char *d = realloc(b->data, b->len + add + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, add);
    b->data = d;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

static void client_init(struct client *c, int port, bool tls)
{
    memset(c, 0, sizeof(*c));
    c->curl = curl_easy_init();
    assert_non_null(c->curl);
    c->port = port;
    c->tls = tls;
}

static void client_reset_response(struct client *c)
{
    free(c->body.data);
    free(c->headers.data);
    memset(&c->body, 0, sizeof(c->body));
    memset(&c->headers, 0, sizeof(c->headers));
    json_decref(c->json);
    c->json = NULL;
    c->status = 0;
}

static void client_fini(struct client *c)
{
    client_reset_response(c);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    c->curl = NULL;
}

/* Value of a Set-Cookie in the last response, or false. */
static bool set_cookie(const struct client *c, const char *name, char *out, size_t outsz)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "Set-Cookie: %s=", name);
    const char *p = c->headers.data ? strstr(c->headers.data, pat) : NULL;
    if (!p)
        return false;
    p += strlen(pat);
    size_t n = strcspn(p, ";\r\n");
    if (n >= outsz)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static bool has_header(const struct client *c, const char *line)
{
    return c->headers.data && strstr(c->headers.data, line) != NULL;
}

/* One request; path may be absolute (a "next" link). Returns the status. */
static long req(struct client *c, const char *method, const char *path, const char *body)
{
    char url[4096], hdr[256];
    struct curl_slist *h = NULL;

    client_reset_response(c);
    if (strncmp(path, "http", 4) == 0)
        snprintf(url, sizeof(url), "%s", path);
    else
        snprintf(url, sizeof(url), "%s://127.0.0.1:%d%s", c->tls ? "https" : "http", c->port,
                 path);
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, tbuf_write);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &c->body);
    curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, tbuf_write);
    curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &c->headers);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 0L);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    h = curl_slist_append(h, c->form ? "Content-Type: application/x-www-form-urlencoded"
                                     : "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    if (c->sid[0]) {
        snprintf(hdr, sizeof(hdr), "Cookie: csrftoken=%s; sessionid=%s; avi-sessionid=%s",
                 c->csrf, c->sid, c->sid);
        h = curl_slist_append(h, hdr);
    }
    if (!c->no_csrf && (c->csrf[0] || c->csrf_override)) {
        snprintf(hdr, sizeof(hdr), "X-CSRFToken: %s",
                 c->csrf_override ? c->csrf_override : c->csrf);
        h = curl_slist_append(h, hdr);
    }
    if (c->tenant) {
        snprintf(hdr, sizeof(hdr), "X-Avi-Tenant: %s", c->tenant);
        h = curl_slist_append(h, hdr);
    }
    if (c->tenant_uuid) {
        snprintf(hdr, sizeof(hdr), "X-Avi-Tenant-UUID: %s", c->tenant_uuid);
        h = curl_slist_append(h, hdr);
    }
    if (c->version) {
        snprintf(hdr, sizeof(hdr), "X-Avi-Version: %s", c->version);
        h = curl_slist_append(h, hdr);
    }
    if (c->authorization) {
        snprintf(hdr, sizeof(hdr), "Authorization: %s", c->authorization);
        h = curl_slist_append(h, hdr);
    }
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
    c->rc = curl_easy_perform(c->curl);
    curl_slist_free_all(h);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
    if (c->body.data)
        c->json = json_loads(c->body.data, 0, NULL);
    char v[64];
    if (set_cookie(c, "csrftoken", v, sizeof(v)))
        snprintf(c->csrf, sizeof(c->csrf), "%s", v);
    if (set_cookie(c, "sessionid", v, sizeof(v)))
        snprintf(c->sid, sizeof(c->sid), "%s", v);
    return c->status;
}

static long reqf(struct client *c, const char *method, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static long reqf(struct client *c, const char *method, const char *path, const char *fmt, ...)
{
    char body[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    return req(c, method, path, body);
}

static void login(struct client *c)
{
    assert_int_equal(req(c, "POST", "/login", "{\"username\":\"admin\",\"password\":\"avi123\"}"),
                     200);
}

/* ---- assertions ------------------------------------------------------------ */

static const char *jstr(const json_t *j, const char *path)
{
    /* Dotted path with numeric list indexes: "results.0.name". */
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    const json_t *cur = j;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok))
                                 : json_object_get(cur, tok);
    return json_string_value(cur);
}

static const json_t *jget(const json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    const json_t *cur = j;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok))
                                 : json_object_get(cur, tok);
    return cur;
}

static long jint(const json_t *j, const char *path)
{
    const json_t *v = jget(j, path);
    assert_true(json_is_integer(v));
    return (long)json_integer_value(v);
}

/* The last response had this status and an {"error": ...} containing text. */
static void expect_error(const struct client *c, long status, const char *text)
{
    if (c->status != status || !c->body.data || !strstr(c->body.data, text))
        fail_msg("expected %ld with '%s', got %ld: %s", status, text, c->status,
                 c->body.data ? c->body.data : "(no body)");
}

static void expect_status(const struct client *c, long status)
{
    if (c->status != status)
        fail_msg("expected %ld, got %ld: %s", status, c->status,
                 c->body.data ? c->body.data : "(no body)");
}

/* POSTs and returns the new uuid (static buffer rotated over four calls). */
static const char *create(struct client *c, const char *type, const char *body)
{
    static char uuids[4][128];
    static int next;
    char path[128];
    snprintf(path, sizeof(path), "/api/%s", type);
    req(c, "POST", path, body);
    expect_status(c, 201);
    char *u = uuids[next++ % 4];
    snprintf(u, 128, "%s", jstr(c->json, "uuid"));
    return u;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = s ? strlen(s) : 0, b = strlen(suffix);
    return s && a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- fixtures --------------------------------------------------------------- */

static int start(struct fx *f, const avisim_options_t *opts)
{
    if (avisim_new(&f->sim, opts))
        return -1;
    client_init(&f->c, avisim_port(f->sim), opts && opts->tls_cert_file);
    return 0;
}

static void stop(struct fx *f)
{
    client_fini(&f->c);
    avisim_destroy(&f->sim);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    avisim_options_t o = {.tenants = "team-a,team-b"};
    if (!f || start(f, &o)) {
        free(f);
        return -1;
    }
    login(&f->c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    stop(f);
    free(f);
    return 0;
}

/* Replaces the fixture's simulator with one built from opts, logged in. */
static void restart(struct fx *f, const avisim_options_t *opts)
{
    stop(f);
    assert_int_equal(start(f, opts), 0);
    login(&f->c);
}

static void sim_faults(struct fx *f, const char *json)
{
    struct client ctl;
    client_init(&ctl, f->c.port, f->c.tls);
    assert_int_equal(req(&ctl, "POST", "/_sim/faults", json), 200);
    client_fini(&ctl);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

#define POOL(name) "{\"name\":\"" name "\",\"servers\":[{\"ip\":{\"addr\":\"10.0.0.1\",\"type\":\"V4\"},\"port\":8080}]}"

/* ---- session and authentication -------------------------------------------- */

static void test_login_json_returns_version_tenants_and_cookies(void **state)
{
    struct fx *f = *state;
    struct client c;
    char v[64];
    client_init(&c, f->c.port, false);
    login(&c);
    assert_string_equal(jstr(c.json, "version.Version"), "22.1.3");
    assert_string_equal(jstr(c.json, "user.username"), "admin");
    assert_true(ends_with(jstr(c.json, "user.default_tenant_ref"), "/api/tenant/admin"));
    assert_string_equal(jstr(c.json, "session_cookie_name"), "avi-sessionid");
    assert_int_equal(json_array_size(jget(c.json, "tenants")), 3);
    assert_true(set_cookie(&c, "csrftoken", v, sizeof(v)));
    assert_int_equal(strlen(v), 32);
    assert_true(set_cookie(&c, "avi-sessionid", v, sizeof(v)));
    assert_int_equal(strlen(v), 32);
    assert_string_equal(v, c.sid);
    assert_true(has_header(&c, "HttpOnly"));
    /* As recorded, less Secure: this listener is plain HTTP. */
    assert_true(has_header(&c, "Set-Cookie: csrftoken="));
    assert_true(has_header(&c, "; Max-Age=31449600; Path=/\r\n"));
    assert_true(has_header(&c, "; HttpOnly; Max-Age=86400; Path=/\r\n"));
    assert_false(has_header(&c, "Secure"));
    client_fini(&c);
}

/* Every authenticated answer sends the session cookies again (a sliding
 * expiry), but not csrftoken. */
static void test_api_answers_send_session_cookies_again(void **state)
{
    struct fx *f = *state;
    char v[64];
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    assert_true(set_cookie(&f->c, "avi-sessionid", v, sizeof(v)));
    assert_string_equal(v, f->c.sid);
    assert_true(set_cookie(&f->c, "sessionid", v, sizeof(v)));
    assert_false(set_cookie(&f->c, "csrftoken", v, sizeof(v)));
    req(&f->c, "GET", "/api/pool/pool-nope", NULL);
    expect_error(&f->c, 404, "Pool object not found!");
    assert_true(set_cookie(&f->c, "avi-sessionid", v, sizeof(v)));
}

static void test_login_form_encoded_ok(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_init(&c, f->c.port, false);
    c.form = true;
    assert_int_equal(req(&c, "POST", "/login", "username=admin&password=avi123"), 200);
    assert_int_equal(strlen(c.sid), 32);
    c.form = false;
    assert_int_equal(req(&c, "GET", "/api/pool", NULL), 200);
    client_fini(&c);
}

static void test_login_bad_credentials_401(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_init(&c, f->c.port, false);
    req(&c, "POST", "/login", "{\"username\":\"admin\",\"password\":\"nope\"}");
    expect_error(&c, 401, "Invalid credentials");
    req(&c, "POST", "/login", "{\"username\":\"root\",\"password\":\"avi123\"}");
    expect_error(&c, 401, "Invalid credentials");
    req(&c, "POST", "/login", "{}");
    expect_error(&c, 401, "Invalid credentials");
    client_fini(&c);
}

static void test_login_with_token(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_init(&c, f->c.port, false);
    assert_int_equal(req(&c, "POST", "/login", "{\"username\":\"admin\",\"token\":\"avi123\"}"), 200);
    client_fini(&c);
}

static void test_api_without_session_401(void **state)
{
    struct fx *f = *state;
    struct client c;
    client_init(&c, f->c.port, false);
    req(&c, "GET", "/api/pool", NULL);
    expect_error(&c, 401, "Authentication credentials were not provided.");
    snprintf(c.sid, sizeof(c.sid), "%s", "0123456789abcdef0123456789abcdef");
    req(&c, "GET", "/api/pool", NULL);
    expect_error(&c, 401, "Authentication credentials were not provided.");
    client_fini(&c);
}

static void test_write_without_csrf_401_plain_text(void **state)
{
    struct fx *f = *state;
    f->c.no_csrf = true;
    req(&f->c, "POST", "/api/pool", POOL("p"));
    expect_status(&f->c, 401);
    assert_string_equal(f->c.body.data, "CSRF token missing or incorrect.");
    req(&f->c, "DELETE", "/api/pool/pool-x", NULL);
    expect_status(&f->c, 401);
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200); /* reads need no CSRF */
    f->c.no_csrf = false;
    f->c.csrf_override = "ffffffffffffffffffffffffffffffff";
    req(&f->c, "POST", "/api/pool", POOL("p"));
    expect_status(&f->c, 401);
    assert_string_equal(f->c.body.data, "CSRF token missing or incorrect.");
    f->c.csrf_override = NULL;
    assert_int_equal(req(&f->c, "POST", "/api/pool", POOL("p")), 201);
}

static void test_logout_ends_session(void **state)
{
    struct fx *f = *state;
    assert_int_equal(req(&f->c, "POST", "/logout", ""), 200);
    req(&f->c, "GET", "/api/pool", NULL);
    expect_error(&f->c, 401, "Authentication credentials were not provided.");
    login(&f->c);
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
}

static void test_idle_session_expires(void **state)
{
    struct fx *f = *state;
    avisim_options_t o = {.idle_timeout_s = 1};
    struct client ctl;
    restart(f, &o);
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    /* Watch the session through the control API (which does not touch it)
     * until it has gone idle, with a deadline. */
    client_init(&ctl, f->c.port, false);
    long deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        assert_int_equal(req(&ctl, "GET", "/_sim/sessions", NULL), 200);
        if (jint(ctl.json, "active") == 0)
            break;
        sleep_ms(50);
    }
    assert_int_equal(jint(ctl.json, "active"), 0);
    client_fini(&ctl);
    req(&f->c, "GET", "/api/pool", NULL);
    expect_error(&f->c, 401, "Authentication credentials were not provided.");
}

/* ---- tenants and versions ---------------------------------------------------- */

static void test_unknown_tenant_403(void **state)
{
    struct fx *f = *state;
    f->c.tenant = "nosuch";
    req(&f->c, "GET", "/api/pool", NULL);
    expect_error(&f->c, 403, "Tenant 'nosuch' does not exist!");
    f->c.tenant = NULL;
    f->c.tenant_uuid = "tenant-nosuch";
    req(&f->c, "GET", "/api/pool", NULL);
    expect_error(&f->c, 403, "Tenant 'tenant-nosuch' does not exist!");
}

static void test_tenant_isolation(void **state)
{
    struct fx *f = *state;
    char path[256];
    f->c.tenant = "team-a";
    const char *uuid = create(&f->c, "pool", POOL("shared-name"));
    char a_uuid[128];
    snprintf(a_uuid, sizeof(a_uuid), "%s", uuid);
    assert_true(ends_with(jstr(f->c.json, "tenant_ref"), "/api/tenant/tenant-team-a#team-a"));

    f->c.tenant = NULL; /* admin */
    assert_int_equal(req(&f->c, "GET", "/api/pool?name=shared-name", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 0);
    snprintf(path, sizeof(path), "/api/pool/%s", a_uuid);
    req(&f->c, "GET", path, NULL);
    expect_error(&f->c, 404, "Pool object not found!");
    req(&f->c, "DELETE", path, NULL);
    expect_error(&f->c, 404, "Pool object not found!");
    /* Same name in another tenant is no conflict. */
    create(&f->c, "pool", POOL("shared-name"));

    f->c.tenant_uuid = "tenant-team-a"; /* by uuid header */
    assert_int_equal(req(&f->c, "GET", "/api/pool?name=shared-name", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1);
    assert_string_equal(jstr(f->c.json, "results.0.uuid"), a_uuid);
    f->c.tenant_uuid = NULL;

    f->c.tenant = "team-b";
    assert_int_equal(req(&f->c, "GET", path, NULL), 404);
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 0);
}

static void test_admin_objects_referenced_by_name_from_tenant(void **state)
{
    struct fx *f = *state;
    create(&f->c, "pool", POOL("admin-pool"));
    f->c.tenant = "team-a";
    req(&f->c, "POST", "/api/poolgroup",
        "{\"name\":\"pg\",\"members\":[{\"pool_ref\":\"/api/pool?name=admin-pool\"}]}");
    expect_status(&f->c, 201);
    assert_true(ends_with(jstr(f->c.json, "members.0.pool_ref"), "#admin-pool"));
    /* Seed objects are readable from any tenant. */
    assert_int_equal(req(&f->c, "GET", "/api/cloud?name=Default-Cloud", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1);
    assert_string_equal(jstr(f->c.json, "results.0.vtype"), "CLOUD_NONE");
}

static void test_newer_api_version_refused(void **state)
{
    struct fx *f = *state;
    f->c.version = "30.2.1";
    req(&f->c, "GET", "/api/pool", NULL);
    expect_error(&f->c, 400, "Invalid version");
    f->c.version = "banana";
    req(&f->c, "GET", "/api/pool", NULL);
    expect_error(&f->c, 400, "Invalid version");
    f->c.version = "20.1.1";
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    assert_true(has_header(&f->c, "AVI_API_VERSION: 20.1.1"));
    f->c.version = "22.1.3";
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
}

/* ---- paths and collections --------------------------------------------------- */

static void test_trailing_and_double_slash(void **state)
{
    struct fx *f = *state;
    assert_int_equal(req(&f->c, "POST", "/api/pool/", POOL("p1")), 201);
    char path[256];
    snprintf(path, sizeof(path), "//api/pool/%s/?include_name", jstr(f->c.json, "uuid"));
    assert_int_equal(req(&f->c, "GET", path, NULL), 200);
    assert_true(ends_with(jstr(f->c.json, "url"), "#p1"));
    assert_int_equal(req(&f->c, "GET", "//api/pool/", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1);
}

static void test_unknown_type_and_method(void **state)
{
    struct fx *f = *state;
    assert_int_equal(req(&f->c, "GET", "/api/nosuchtype", NULL), 404);
    assert_int_equal(req(&f->c, "GET", "/nothing", NULL), 404);
    req(&f->c, "DELETE", "/api/pool", NULL);
    expect_status(&f->c, 405);
    assert_non_null(strstr(f->c.body.data, "Method 'DELETE' not allowed."));
}

static void test_misc_endpoints(void **state)
{
    struct fx *f = *state;
    assert_int_equal(req(&f->c, "GET", "/api/initial-data", NULL), 200);
    assert_string_equal(jstr(f->c.json, "version.Version"), "22.1.3");
    assert_int_equal(req(&f->c, "GET", "/api/cluster/runtime", NULL), 200);
    assert_string_equal(jstr(f->c.json, "cluster_state.state"), "CLUSTER_UP_NO_HA");
    assert_int_equal(req(&f->c, "GET", "/api/systemconfiguration", NULL), 200);
    assert_string_equal(jstr(f->c.json, "default_license_tier"), "ENTERPRISE");
}

static void test_paging_follows_next(void **state)
{
    struct fx *f = *state;
    char body[256];
    for (int i = 0; i < 30; i++) {
        snprintf(body, sizeof(body), "{\"name\":\"pool-%02d\"}", i);
        assert_int_equal(req(&f->c, "POST", "/api/pool", body), 201);
    }
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 30);
    assert_int_equal(json_array_size(jget(f->c.json, "results")), 25);
    const char *next = jstr(f->c.json, "next");
    assert_non_null(next);
    char abs_prefix[128];
    snprintf(abs_prefix, sizeof(abs_prefix), "http://127.0.0.1:%d/api/pool?", f->c.port);
    assert_true(strncmp(next, abs_prefix, strlen(abs_prefix)) == 0); /* absolute */
    assert_non_null(strstr(next, "page=2"));
    char next_url[512];
    snprintf(next_url, sizeof(next_url), "%s", next);
    assert_int_equal(req(&f->c, "GET", next_url, NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 30);
    assert_int_equal(json_array_size(jget(f->c.json, "results")), 5);
    assert_null(jget(f->c.json, "next"));
    assert_string_equal(jstr(f->c.json, "results.4.name"), "pool-29");

    /* page_size and its bounds; filters are kept in next. */
    assert_int_equal(req(&f->c, "GET", "/api/pool?name.contains=pool-1&page_size=4", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 10);
    assert_int_equal(json_array_size(jget(f->c.json, "results")), 4);
    assert_non_null(strstr(jstr(f->c.json, "next"), "name.contains=pool-1"));
    assert_int_equal(req(&f->c, "GET", "/api/pool?page_size=200", NULL), 200);
    assert_int_equal(json_array_size(jget(f->c.json, "results")), 30);
    req(&f->c, "GET", "/api/pool?page_size=0", NULL);
    expect_error(&f->c, 400, "page_size");
    req(&f->c, "GET", "/api/pool?page_size=201", NULL);
    expect_error(&f->c, 400, "page_size");
    req(&f->c, "GET", "/api/pool?page=0", NULL);
    expect_error(&f->c, 400, "page");
    assert_int_equal(req(&f->c, "GET", "/api/pool?page=9", NULL), 200);
    assert_int_equal(json_array_size(jget(f->c.json, "results")), 0);
}

static void test_filter_name_and_name_contains(void **state)
{
    struct fx *f = *state;
    create(&f->c, "pool", "{\"name\":\"web-a\"}");
    create(&f->c, "pool", "{\"name\":\"web-b\"}");
    create(&f->c, "pool", "{\"name\":\"db\"}");
    assert_int_equal(req(&f->c, "GET", "/api/pool?name=web-a", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1);
    assert_string_equal(jstr(f->c.json, "results.0.name"), "web-a");
    assert_int_equal(req(&f->c, "GET", "/api/pool?name=web", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 0);
    assert_int_equal(req(&f->c, "GET", "/api/pool?name.contains=web", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 2);
}

static void test_filter_uuid_in(void **state)
{
    struct fx *f = *state;
    char a[128], b[128], path[512];
    snprintf(a, sizeof(a), "%s", create(&f->c, "pool", "{\"name\":\"a\"}"));
    snprintf(b, sizeof(b), "%s", create(&f->c, "pool", "{\"name\":\"b\"}"));
    create(&f->c, "pool", "{\"name\":\"c\"}");
    snprintf(path, sizeof(path), "/api/pool?uuid.in=%s,%s", a, b);
    assert_int_equal(req(&f->c, "GET", path, NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 2);
}

static void test_filter_field_equality_created_by(void **state)
{
    struct fx *f = *state;
    create(&f->c, "pool", "{\"name\":\"mine\",\"created_by\":\"ako-x\"}");
    create(&f->c, "pool", "{\"name\":\"theirs\",\"created_by\":\"ako-y\"}");
    create(&f->c, "pool", "{\"name\":\"nobody\"}");
    create(&f->c, "pool", "{\"name\":\"off\",\"enabled\":false}");
    assert_int_equal(req(&f->c, "GET", "/api/pool?created_by=ako-x", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1);
    assert_string_equal(jstr(f->c.json, "results.0.name"), "mine");
    assert_int_equal(req(&f->c, "GET", "/api/pool?enabled=false", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1);
    /* Unknown keys that are no field are ignored. */
    assert_int_equal(req(&f->c, "GET", "/api/pool?frobnicate=1&skip_default=true", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 4);
    /* Seed objects have no created_by, so an owner query never returns them. */
    assert_int_equal(req(&f->c, "GET", "/api/healthmonitor?created_by=ako-x", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 0);
}

static void test_filter_cloud_ref_name(void **state)
{
    struct fx *f = *state;
    create(&f->c, "pool", "{\"name\":\"p\"}");
    create(&f->c, "cloud", "{\"name\":\"other\",\"vtype\":\"CLOUD_NONE\"}");
    create(&f->c, "pool", "{\"name\":\"q\",\"cloud_ref\":\"/api/cloud?name=other\"}");
    assert_int_equal(req(&f->c, "GET", "/api/pool?cloud_ref.name=Default-Cloud", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1);
    assert_string_equal(jstr(f->c.json, "results.0.name"), "p");
    assert_int_equal(req(&f->c, "GET", "/api/pool?cloud_ref.name=other", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1);
    assert_int_equal(req(&f->c, "GET", "/api/pool?cloud_ref.name=none", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 0);
}

static void test_filter_refers_to_and_referred_by(void **state)
{
    struct fx *f = *state;
    char pool[128], vs[128], path[256];
    snprintf(pool, sizeof(pool), "%s", create(&f->c, "pool", POOL("p")));
    create(&f->c, "pool", POOL("unused"));
    snprintf(vs, sizeof(vs), "%s",
             create(&f->c, "virtualservice",
                    "{\"name\":\"vs\",\"services\":[{\"port\":80}],\"pool_ref\":\"/api/pool?name=p\"}"));
    snprintf(path, sizeof(path), "/api/virtualservice?refers_to=pool:%s", pool);
    assert_int_equal(req(&f->c, "GET", path, NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1);
    assert_string_equal(jstr(f->c.json, "results.0.name"), "vs");
    snprintf(path, sizeof(path), "/api/pool?referred_by=virtualservice:%s", vs);
    assert_int_equal(req(&f->c, "GET", path, NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1);
    assert_string_equal(jstr(f->c.json, "results.0.name"), "p");
    assert_int_equal(req(&f->c, "GET", "/api/pool?referred_by=virtualservice:nosuch", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 0);
}

static void test_filter_fields_and_include_name(void **state)
{
    struct fx *f = *state;
    create(&f->c, "pool", POOL("p"));
    assert_int_equal(req(&f->c, "GET", "/api/pool?fields=cloud_ref,enabled", NULL), 200);
    const json_t *r = jget(f->c.json, "results.0");
    assert_int_equal(json_object_size(r), 5); /* name, url, uuid + 2 */
    assert_non_null(json_object_get(r, "cloud_ref"));
    assert_null(json_object_get(r, "servers"));
    assert_false(ends_with(jstr(r, "cloud_ref"), "#Default-Cloud"));
    assert_false(ends_with(jstr(r, "url"), "#p"));

    assert_int_equal(req(&f->c, "GET", "/api/pool?include_name", NULL), 200);
    assert_true(ends_with(jstr(f->c.json, "results.0.url"), "#p"));
    assert_true(ends_with(jstr(f->c.json, "results.0.cloud_ref"), "#Default-Cloud"));
    assert_true(ends_with(jstr(f->c.json, "results.0.tenant_ref"), "#admin"));
    assert_int_equal(req(&f->c, "GET", "/api/pool?include_name=true", NULL), 200);
    assert_true(ends_with(jstr(f->c.json, "results.0.cloud_ref"), "#Default-Cloud"));
    /* Nested refs too. */
    create(&f->c, "poolgroup", "{\"name\":\"pg\",\"members\":[{\"pool_ref\":\"/api/pool?name=p\"}]}");
    assert_int_equal(req(&f->c, "GET", "/api/poolgroup?include_name", NULL), 200);
    assert_true(ends_with(jstr(f->c.json, "results.0.members.0.pool_ref"), "#p"));
    assert_int_equal(req(&f->c, "GET", "/api/poolgroup", NULL), 200);
    assert_false(ends_with(jstr(f->c.json, "results.0.members.0.pool_ref"), "#p"));
}

/* ---- writes ------------------------------------------------------------------- */

static void test_post_pool_defaults_and_echo(void **state)
{
    struct fx *f = *state;
    req(&f->c, "POST", "/api/pool",
        "{\"name\":\"p\",\"servers\":[{\"ip\":{\"addr\":\"10.1.1.1\",\"type\":\"V4\"},\"port\":80},"
        "{\"ip\":{\"addr\":\"10.1.1.2\",\"type\":\"V4\"},\"port\":80,\"ratio\":5,\"enabled\":false,"
        "\"hostname\":\"h2\"}],\"cloud_config_cksum\":\"abc\",\"markers\":[{\"key\":\"k\","
        "\"values\":[\"v\"]}],\"created_by\":\"kavi-1\",\"service_metadata\":\"{\\\"x\\\":1}\","
        "\"description\":\"d\",\"conn_pool_properties\":{"
        "\"upstream_connpool_server_max_cache\":2}}");
    expect_status(&f->c, 201);
    const json_t *p = f->c.json;
    const char *uuid = jstr(p, "uuid");
    assert_true(strncmp(uuid, "pool-", 5) == 0);
    assert_int_equal(strlen(uuid), 5 + 36);
    char expect_url[256];
    snprintf(expect_url, sizeof(expect_url), "http://127.0.0.1:%d/api/pool/%s#p", f->c.port, uuid);
    assert_string_equal(jstr(p, "url"), expect_url);
    assert_true(has_header(&f->c, "Location: http://127.0.0.1:"));
    assert_non_null(jstr(p, "_last_modified"));
    assert_true(strtoll(jstr(p, "_last_modified"), NULL, 10) > 1600000000000000LL);
    assert_true(ends_with(jstr(p, "tenant_ref"), "/api/tenant/admin#admin"));
    assert_true(ends_with(jstr(p, "cloud_ref"), "/api/cloud/cloud-default#Default-Cloud"));
    assert_true(ends_with(jstr(p, "vrf_ref"), "#global"));
    assert_string_equal(jstr(p, "lb_algorithm"), "LB_ALGORITHM_LEAST_CONNECTIONS");
    assert_true(json_is_true(jget(p, "enabled")));
    assert_int_equal(jint(p, "servers.0.ratio"), 1);
    assert_true(json_is_true(jget(p, "servers.0.enabled")));
    assert_string_equal(jstr(p, "servers.0.hostname"), "10.1.1.1");
    assert_int_equal(jint(p, "servers.1.ratio"), 5);
    assert_true(json_is_false(jget(p, "servers.1.enabled")));
    assert_string_equal(jstr(p, "servers.1.hostname"), "h2");
    assert_string_equal(jstr(p, "cloud_config_cksum"), "abc");
    assert_string_equal(jstr(p, "markers.0.values.0"), "v");
    assert_string_equal(jstr(p, "created_by"), "kavi-1");
    assert_string_equal(jstr(p, "service_metadata"), "{\"x\":1}");
    assert_string_equal(jstr(p, "description"), "d");
    /* A field the simulator does not interpret is kept as sent. */
    assert_int_equal(jint(p, "conn_pool_properties.upstream_connpool_server_max_cache"), 2);
}

static void test_post_vs_defaults(void **state)
{
    struct fx *f = *state;
    req(&f->c, "POST", "/api/virtualservice",
        "{\"name\":\"vs\",\"services\":[{\"port\":443,\"enable_ssl\":true}],"
        "\"vsvip_cloud_config_cksum\":\"77\"}");
    expect_status(&f->c, 201);
    const json_t *v = f->c.json;
    assert_true(strncmp(jstr(v, "uuid"), "virtualservice-", 15) == 0);
    assert_true(ends_with(jstr(v, "se_group_ref"), "#Default-Group"));
    assert_true(ends_with(jstr(v, "vrf_context_ref"), "#global"));
    assert_true(ends_with(jstr(v, "cloud_ref"), "#Default-Cloud"));
    assert_true(json_is_true(jget(v, "enabled")));
    assert_true(json_is_true(jget(v, "traffic_enabled")));
    assert_string_equal(jstr(v, "vsvip_cloud_config_cksum"), "77");
    /* A plain GET renders refs without the name. */
    char path[256];
    snprintf(path, sizeof(path), "/api/virtualservice/%s", jstr(v, "uuid"));
    assert_int_equal(req(&f->c, "GET", path, NULL), 200);
    assert_true(ends_with(jstr(f->c.json, "se_group_ref"), "/api/serviceenginegroup/serviceenginegroup-default-group"));
}

static void test_post_vsvip_defaults(void **state)
{
    struct fx *f = *state;
    req(&f->c, "POST", "/api/vsvip",
        "{\"name\":\"v\",\"vip\":[{\"ip_address\":{\"addr\":\"192.168.1.1\",\"type\":\"V4\"}}]}");
    expect_status(&f->c, 201);
    assert_string_equal(jstr(f->c.json, "vip.0.vip_id"), "0");
    assert_true(json_is_true(jget(f->c.json, "vip.0.enabled")));
    assert_string_equal(jstr(f->c.json, "vip.0.ip_address.addr"), "192.168.1.1");
    assert_true(ends_with(jstr(f->c.json, "cloud_ref"), "#Default-Cloud"));
    assert_true(ends_with(jstr(f->c.json, "vrf_context_ref"), "#global"));
    assert_true(ends_with(jstr(f->c.json, "tenant_ref"), "/api/tenant/admin#admin"));
    /* A second vip is numbered after the first. */
    req(&f->c, "POST", "/api/vsvip",
        "{\"name\":\"w\",\"vip\":[{\"ip_address\":{\"addr\":\"192.168.1.2\",\"type\":\"V4\"}},"
        "{\"ip_address\":{\"addr\":\"192.168.1.3\",\"type\":\"V4\"}}]}");
    expect_status(&f->c, 201);
    assert_string_equal(jstr(f->c.json, "vip.0.vip_id"), "0");
    assert_string_equal(jstr(f->c.json, "vip.1.vip_id"), "1");
}

static void test_put_replaces_and_changes_last_modified(void **state)
{
    struct fx *f = *state;
    char path[256], lm[64];
    create(&f->c, "pool", "{\"name\":\"p\",\"description\":\"old\",\"created_by\":\"k\"}");
    snprintf(path, sizeof(path), "/api/pool/%s", jstr(f->c.json, "uuid"));
    snprintf(lm, sizeof(lm), "%s", jstr(f->c.json, "_last_modified"));
    reqf(&f->c, "PUT", path, "{\"name\":\"p2\",\"_last_modified\":\"%s\"}", lm);
    expect_status(&f->c, 200);
    assert_string_equal(jstr(f->c.json, "name"), "p2");
    assert_null(jget(f->c.json, "description")); /* replaced, not merged */
    assert_string_equal(jstr(f->c.json, "lb_algorithm"), "LB_ALGORITHM_LEAST_CONNECTIONS");
    assert_true(ends_with(jstr(f->c.json, "url"), "#p2"));
    assert_string_not_equal(jstr(f->c.json, "_last_modified"), lm);
    /* Without _last_modified the PUT is accepted. */
    assert_int_equal(req(&f->c, "PUT", path, "{\"name\":\"p3\"}"), 200);
}

static void test_put_stale_last_modified_412(void **state)
{
    struct fx *f = *state;
    char path[256], lm[64];
    create(&f->c, "vsvip", "{\"name\":\"v\"}");
    snprintf(path, sizeof(path), "/api/vsvip/%s", jstr(f->c.json, "uuid"));
    snprintf(lm, sizeof(lm), "%s", jstr(f->c.json, "_last_modified"));
    assert_int_equal(reqf(&f->c, "PUT", path, "{\"name\":\"v\",\"_last_modified\":\"%s\"}", lm), 200);
    reqf(&f->c, "PUT", path, "{\"name\":\"v\",\"_last_modified\":\"%s\"}", lm);
    expect_error(&f->c, 412, "Need to reload object data VsVip");
}

static void test_put_missing_object_404(void **state)
{
    struct fx *f = *state;
    req(&f->c, "PUT", "/api/pool/pool-nosuch", "{\"name\":\"x\"}");
    expect_error(&f->c, 404, "Pool object not found!");
    req(&f->c, "PATCH", "/api/pool/pool-nosuch", "{\"add\":{}}");
    expect_error(&f->c, 404, "Pool object not found!");
    req(&f->c, "GET", "/api/virtualservice/virtualservice-nosuch", NULL);
    expect_error(&f->c, 404, "VirtualService object not found!");
}

static void test_patch_add_replace_delete(void **state)
{
    struct fx *f = *state;
    char path[256];
    create(&f->c, "pool",
           "{\"name\":\"p\",\"description\":\"d\",\"servers\":[{\"ip\":{\"addr\":\"10.0.0.1\","
           "\"type\":\"V4\"},\"port\":80}]}");
    snprintf(path, sizeof(path), "/api/pool/%s", jstr(f->c.json, "uuid"));

    req(&f->c, "PATCH", path,
        "{\"add\":{\"servers\":[{\"ip\":{\"addr\":\"10.0.0.2\",\"type\":\"V4\"},\"port\":80}],"
        "\"health_monitor_refs\":[\"/api/healthmonitor?name=System-TCP\"],\"lb_algorithm\":"
        "\"LB_ALGORITHM_ROUND_ROBIN\"}}");
    expect_status(&f->c, 200);
    assert_int_equal(json_array_size(jget(f->c.json, "servers")), 2);
    assert_string_equal(jstr(f->c.json, "servers.1.hostname"), "10.0.0.2");
    assert_string_equal(jstr(f->c.json, "lb_algorithm"), "LB_ALGORITHM_ROUND_ROBIN");
    assert_true(ends_with(jstr(f->c.json, "health_monitor_refs.0"), "#System-TCP"));

    req(&f->c, "PATCH", path,
        "{\"replace\":{\"servers\":[{\"ip\":{\"addr\":\"10.0.0.9\",\"type\":\"V4\"}}],"
        "\"description\":\"new\"}}");
    expect_status(&f->c, 200);
    assert_int_equal(json_array_size(jget(f->c.json, "servers")), 1);
    assert_string_equal(jstr(f->c.json, "servers.0.ip.addr"), "10.0.0.9");
    assert_string_equal(jstr(f->c.json, "description"), "new");

    req(&f->c, "PATCH", path,
        "{\"add\":{\"servers\":[{\"ip\":{\"addr\":\"10.0.0.10\",\"type\":\"V4\"}}]}}");
    expect_status(&f->c, 200);
    req(&f->c, "PATCH", path,
        "{\"delete\":{\"servers\":[{\"ip\":{\"addr\":\"10.0.0.9\",\"type\":\"V4\"}}],"
        "\"health_monitor_refs\":[\"/api/healthmonitor/?name=System-TCP\"],\"description\":\"x\"}}");
    expect_status(&f->c, 200);
    assert_int_equal(json_array_size(jget(f->c.json, "servers")), 1);
    assert_string_equal(jstr(f->c.json, "servers.0.ip.addr"), "10.0.0.10");
    assert_null(jget(f->c.json, "health_monitor_refs"));
    assert_null(jget(f->c.json, "description"));
    /* Deleting a defaulted scalar resets it to the default. */
    assert_int_equal(req(&f->c, "PATCH", path, "{\"delete\":{\"lb_algorithm\":null}}"), 200);
    assert_string_equal(jstr(f->c.json, "lb_algorithm"), "LB_ALGORITHM_LEAST_CONNECTIONS");
    req(&f->c, "PATCH", path, "{\"frob\":{}}");
    expect_error(&f->c, 400, "add, replace or delete");
}

static void test_delete_204_then_404(void **state)
{
    struct fx *f = *state;
    char path[256];
    create(&f->c, "pool", POOL("p"));
    snprintf(path, sizeof(path), "/api/pool/%s", jstr(f->c.json, "uuid"));
    assert_int_equal(req(&f->c, "DELETE", path, NULL), 204);
    assert_int_equal(f->c.body.len, 0);
    req(&f->c, "DELETE", path, NULL);
    expect_error(&f->c, 404, "Pool object not found!");
    /* The name is free again. */
    create(&f->c, "pool", POOL("p"));
}

static void test_delete_referenced_403_lists_referrers(void **state)
{
    struct fx *f = *state;
    char path[256];
    create(&f->c, "pool", POOL("p"));
    snprintf(path, sizeof(path), "/api/pool/%s", jstr(f->c.json, "uuid"));
    create(&f->c, "poolgroup", "{\"name\":\"pg\",\"members\":[{\"pool_ref\":\"/api/pool?name=p\"}]}");
    create(&f->c, "virtualservice",
           "{\"name\":\"vs\",\"services\":[{\"port\":80}],\"pool_ref\":\"/api/pool?name=p\"}");
    req(&f->c, "DELETE", path, NULL);
    expect_error(&f->c, 403,
                 "Cannot delete, object is referred by: ['PoolGroup pg', 'VirtualService vs']");

    sim_faults(f, "{\"delete_referenced_status\":400}");
    req(&f->c, "DELETE", path, NULL);
    expect_error(&f->c, 400, "Cannot delete, object is referred by: ['PoolGroup pg',");

    /* Deleting referrers in AKO's order frees the pool. */
    assert_int_equal(req(&f->c, "GET", "/api/virtualservice?name=vs", NULL), 200);
    char vs[256];
    snprintf(vs, sizeof(vs), "/api/virtualservice/%s", jstr(f->c.json, "results.0.uuid"));
    assert_int_equal(req(&f->c, "DELETE", vs, NULL), 204);
    assert_int_equal(req(&f->c, "GET", "/api/poolgroup?name=pg", NULL), 200);
    char pg[256];
    snprintf(pg, sizeof(pg), "/api/poolgroup/%s", jstr(f->c.json, "results.0.uuid"));
    assert_int_equal(req(&f->c, "DELETE", pg, NULL), 204);
    assert_int_equal(req(&f->c, "DELETE", path, NULL), 204);
}

static void test_delete_seed_object_refused(void **state)
{
    struct fx *f = *state;
    req(&f->c, "DELETE", "/api/healthmonitor/healthmonitor-system-tcp", NULL);
    expect_error(&f->c, 403, "Cannot delete system default object");
    req(&f->c, "DELETE", "/api/cloud/cloud-default", NULL);
    expect_error(&f->c, 403, "Cannot delete system default object");
}

/* Regression: cloud_ref by name, then another by-name ref of a cloud-scoped
 * type in the same body (as kavi's VS bodies are) read freed memory. */
static void test_cloud_ref_by_name_with_other_cloud_scoped_refs(void **state)
{
    struct fx *f = *state;
    create(&f->c, "vsvip", "{\"name\":\"vip1\",\"cloud_ref\":\"/api/cloud/?name=Default-Cloud\"}");
    req(&f->c, "POST", "/api/virtualservice",
        "{\"name\":\"vs1\",\"cloud_ref\":\"/api/cloud/?name=Default-Cloud\","
        "\"vsvip_ref\":\"/api/vsvip/?name=vip1\",\"se_group_ref\":"
        "\"/api/serviceenginegroup/?name=Default-Group\",\"services\":[{\"port\":80}]}");
    expect_status(&f->c, 201);
    assert_true(ends_with(jstr(f->c.json, "vsvip_ref"), "#vip1"));
    assert_true(ends_with(jstr(f->c.json, "cloud_ref"), "#Default-Cloud"));
}

static void test_reference_spellings_resolve(void **state)
{
    struct fx *f = *state;
    char pool[128], body[2048];
    snprintf(pool, sizeof(pool), "%s", create(&f->c, "pool", POOL("p")));
    /* {prefix, uuid or not, suffix} */
    static const struct {
        const char *before;
        bool uuid;
        const char *after;
    } spellings[] = {
        {"/api/pool/", true, ""},
        {"/api/pool?name=p", false, ""},
        {"/api/pool/?name=p", false, ""},
        {"https://ctrl.example:9443/api/pool/", true, "#p"},
        {"https://ctrl.example/api/pool/?name=p", false, ""},
    };
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        char ref[256], name[32];
        snprintf(ref, sizeof(ref), "%s%s%s", spellings[i].before, spellings[i].uuid ? pool : "",
                 spellings[i].after);
        snprintf(name, sizeof(name), "pg%zu", i);
        snprintf(body, sizeof(body), "{\"name\":\"%s\",\"members\":[{\"pool_ref\":\"%s\"}]}", name,
                 ref);
        req(&f->c, "POST", "/api/poolgroup", body);
        expect_status(&f->c, 201);
        assert_non_null(strstr(jstr(f->c.json, "members.0.pool_ref"), pool));
    }
    /* Deeply nested refs: L4 rule action and vip network. */
    req(&f->c, "POST", "/api/l4policyset",
        "{\"name\":\"l4\",\"l4_connection_policy\":{\"rules\":[{\"name\":\"r\",\"index\":1,"
        "\"action\":{\"select_pool\":{\"action_type\":\"L4_RULE_ACTION_SELECT_POOL\","
        "\"pool_ref\":\"/api/pool?name=p\"}}}]}}");
    expect_status(&f->c, 201);
    assert_true(ends_with(jstr(f->c.json, "l4_connection_policy.rules.0.action.select_pool.pool_ref"),
                          "#p"));
    req(&f->c, "POST", "/api/vsvip",
        "{\"name\":\"v\",\"vip\":[{\"auto_allocate_ip\":true,\"ipam_network_subnet\":"
        "{\"network_ref\":\"/api/network/?name=vip-net\"}}]}");
    expect_status(&f->c, 201);
    assert_true(ends_with(jstr(f->c.json, "vip.0.ipam_network_subnet.network_ref"), "#vip-net"));
}

static void test_missing_reference_404(void **state)
{
    struct fx *f = *state;
    req(&f->c, "POST", "/api/poolgroup",
        "{\"name\":\"pg\",\"members\":[{\"pool_ref\":\"/api/pool?name=ghost\"}]}");
    expect_error(&f->c, 404, "Pool object not found!");
    req(&f->c, "POST", "/api/virtualservice",
        "{\"name\":\"vs\",\"services\":[{\"port\":80}],\"vsvip_ref\":\"/api/vsvip/vsvip-ghost\"}");
    expect_error(&f->c, 404, "VsVip object not found!");
    req(&f->c, "POST", "/api/pool",
        "{\"name\":\"p\",\"health_monitor_refs\":[\"/api/healthmonitor?name=System-TCP\","
        "\"/api/healthmonitor?name=ghost\"]}");
    expect_error(&f->c, 404, "HealthMonitor object not found!");
    /* Nothing was created along the way. */
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 0);
}

static void test_duplicate_name_409(void **state)
{
    struct fx *f = *state;
    create(&f->c, "pool", POOL("p"));
    req(&f->c, "POST", "/api/pool", POOL("p"));
    expect_error(&f->c, 409, "Pool with this Name, Tenant ref and Cloud ref already exists.");
    create(&f->c, "vrfcontext", "{\"name\":\"blue\"}");
    req(&f->c, "POST", "/api/vrfcontext", "{\"name\":\"blue\"}");
    expect_error(&f->c, 409, "Vrf context with this Name, Tenant ref and Cloud ref already exists.");
    create(&f->c, "healthmonitor", "{\"name\":\"hm\",\"type\":\"HEALTH_MONITOR_TCP\"}");
    req(&f->c, "POST", "/api/healthmonitor", "{\"name\":\"hm\",\"type\":\"HEALTH_MONITOR_TCP\"}");
    expect_error(&f->c, 409, "Health monitor with this Name and Tenant ref already exists.");
    /* Renaming onto another object's name is a conflict too. */
    create(&f->c, "pool", POOL("q"));
    char path[256];
    snprintf(path, sizeof(path), "/api/pool/%s", jstr(f->c.json, "uuid"));
    req(&f->c, "PUT", path, POOL("p"));
    expect_error(&f->c, 409, "Pool with this Name");
}

static void test_validation_400s(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *type, *body, *field;
    } cases[] = {
        {"pool", "{\"description\":\"no name\"}", "name"},
        {"pool", "{\"name\":\"\"}", "name"},
        {"pool", "{\"name\":\"p\",\"servers\":[{\"port\":80}]}", "servers[0].ip.addr"},
        {"pool", "{\"name\":\"p\",\"servers\":[{\"ip\":{\"addr\":\"1.1.1.1\"}}]}",
         "servers[0].ip.type"},
        {"pool",
         "{\"name\":\"p\",\"servers\":[{\"ip\":{\"addr\":\"1.1.1.1\",\"type\":\"V4\"},\"port\":0}]}",
         "servers[0].port"},
        {"pool",
         "{\"name\":\"p\",\"servers\":[{\"ip\":{\"addr\":\"1.1.1.1\",\"type\":\"V4\"},\"port\":65536}]}",
         "servers[0].port"},
        {"virtualservice", "{\"name\":\"vs\"}", "services"},
        {"virtualservice", "{\"name\":\"vs\",\"services\":[]}", "services"},
        {"virtualservice", "{\"name\":\"vs\",\"services\":[{\"port\":70000}]}", "services[0].port"},
        {"l4policyset", "{\"name\":\"l\",\"l4_connection_policy\":{\"rules\":[{\"index\":1}]}}",
         "l4_connection_policy.rules[0].name"},
        {"l4policyset", "{\"name\":\"l\",\"l4_connection_policy\":{\"rules\":[{\"name\":\"r\"}]}}",
         "l4_connection_policy.rules[0].index"},
        {"httppolicyset",
         "{\"name\":\"h\",\"http_request_policy\":{\"rules\":[{\"name\":\"a\",\"index\":1},"
         "{\"index\":2}]}}",
         "http_request_policy.rules[1].name"},
        {"healthmonitor", "{\"name\":\"hm\"}", "type"},
        {"pool", "[1,2]", "JSON object"},
        {"pool", "{\"name\":", "Invalid JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/api/%s", cases[i].type);
        req(&f->c, "POST", path, cases[i].body);
        expect_error(&f->c, 400, cases[i].field);
    }
}

static void test_vip_allocation_exhaustion_and_release(void **state)
{
    struct fx *f = *state;
    avisim_options_t o = {.vip_range = "10.9.0.10-10.9.0.11", .vip_network = "small"};
    char first[128], path[256];
    restart(f, &o);
    create(&f->c, "vsvip", "{\"name\":\"a\",\"vip\":[{\"auto_allocate_ip\":true}]}");
    assert_string_equal(jstr(f->c.json, "vip.0.ip_address.addr"), "10.9.0.10");
    assert_string_equal(jstr(f->c.json, "vip.0.ip_address.type"), "V4");
    snprintf(first, sizeof(first), "%s", jstr(f->c.json, "uuid"));
    create(&f->c, "vsvip", "{\"name\":\"b\",\"vip\":[{\"auto_allocate_ip\":true}]}");
    assert_string_equal(jstr(f->c.json, "vip.0.ip_address.addr"), "10.9.0.11");
    req(&f->c, "POST", "/api/vsvip", "{\"name\":\"c\",\"vip\":[{\"auto_allocate_ip\":true}]}");
    expect_error(&f->c, 400, "No available free IPs");
    snprintf(path, sizeof(path), "/api/vsvip/%s", first);
    assert_int_equal(req(&f->c, "DELETE", path, NULL), 204);
    create(&f->c, "vsvip", "{\"name\":\"c\",\"vip\":[{\"auto_allocate_ip\":true}]}");
    assert_string_equal(jstr(f->c.json, "vip.0.ip_address.addr"), "10.9.0.10");
}

static void test_vip_kept_on_put_and_change_refused(void **state)
{
    struct fx *f = *state;
    char path[256];
    create(&f->c, "vsvip", "{\"name\":\"v\",\"vip\":[{\"auto_allocate_ip\":true}]}");
    assert_string_equal(jstr(f->c.json, "vip.0.ip_address.addr"), "10.10.10.100");
    snprintf(path, sizeof(path), "/api/vsvip/%s", jstr(f->c.json, "uuid"));
    /* Re-sending the same spec keeps the address. */
    req(&f->c, "PUT", path, "{\"name\":\"v\",\"vip\":[{\"auto_allocate_ip\":true}]}");
    expect_status(&f->c, 200);
    assert_string_equal(jstr(f->c.json, "vip.0.ip_address.addr"), "10.10.10.100");
    req(&f->c, "PUT", path,
        "{\"name\":\"v\",\"vip\":[{\"ip_address\":{\"addr\":\"10.10.10.150\",\"type\":\"V4\"}}]}");
    expect_error(&f->c, 400, "Changing an existing VIP's vip_id is not supported. If a new "
                             "preferred IP is needed, please recreate the VIP");
    req(&f->c, "PUT", path, "{\"name\":\"v\",\"vip\":[{\"vip_id\":\"7\",\"auto_allocate_ip\":true}]}");
    expect_error(&f->c, 400, "Changing an existing VIP's vip_id is not supported.");
    /* The refused PUTs left the allocation alone. */
    create(&f->c, "vsvip", "{\"name\":\"w\",\"vip\":[{\"auto_allocate_ip\":true}]}");
    assert_string_equal(jstr(f->c.json, "vip.0.ip_address.addr"), "10.10.10.101");
}

static void test_vip_from_named_network(void **state)
{
    struct fx *f = *state;
    create(&f->c, "network",
           "{\"name\":\"net2\",\"configured_subnets\":[{\"prefix\":{\"ip_addr\":{\"addr\":"
           "\"172.16.0.0\",\"type\":\"V4\"},\"mask\":24},\"static_ip_ranges\":[{\"range\":"
           "{\"begin\":{\"addr\":\"172.16.0.5\",\"type\":\"V4\"},\"end\":{\"addr\":"
           "\"172.16.0.6\",\"type\":\"V4\"}},\"type\":\"STATIC_IPS_FOR_VIP\"}]}]}");
    create(&f->c, "vsvip",
           "{\"name\":\"v\",\"vip\":[{\"auto_allocate_ip\":true,\"ipam_network_subnet\":"
           "{\"network_ref\":\"/api/network?name=net2\"}}]}");
    assert_string_equal(jstr(f->c.json, "vip.0.ip_address.addr"), "172.16.0.5");
    /* A preferred address in the range is reserved as well. */
    create(&f->c, "vsvip", "{\"name\":\"w\",\"vip\":[{\"auto_allocate_ip\":true,\"ip_address\":"
                           "{\"addr\":\"10.10.10.100\",\"type\":\"V4\"}}]}");
    create(&f->c, "vsvip", "{\"name\":\"x\",\"vip\":[{\"auto_allocate_ip\":true}]}");
    assert_string_equal(jstr(f->c.json, "vip.0.ip_address.addr"), "10.10.10.101");
}

static void test_ssl_key_never_returned(void **state)
{
    struct fx *f = *state;
    char path[256];
    req(&f->c, "POST", "/api/sslkeyandcertificate",
        "{\"name\":\"cert\",\"key\":\"-----BEGIN PRIVATE KEY-----secret\",\"key_passphrase\":"
        "\"pp\",\"certificate\":{\"certificate\":\"-----BEGIN CERTIFICATE-----x\"}}");
    expect_status(&f->c, 201);
    assert_null(jget(f->c.json, "key"));
    assert_null(jget(f->c.json, "key_passphrase"));
    assert_null(strstr(f->c.body.data, "secret"));
    snprintf(path, sizeof(path), "/api/sslkeyandcertificate/%s", jstr(f->c.json, "uuid"));
    assert_int_equal(req(&f->c, "GET", path, NULL), 200);
    assert_null(strstr(f->c.body.data, "secret"));
    assert_string_equal(jstr(f->c.json, "certificate.certificate"), "-----BEGIN CERTIFICATE-----x");
    assert_int_equal(req(&f->c, "GET", "/api/sslkeyandcertificate", NULL), 200);
    assert_null(strstr(f->c.body.data, "secret"));
    char *state_json = avisim_state_json(f->sim);
    assert_null(strstr(state_json, "secret"));
    free(state_json);
    struct client ctl;
    client_init(&ctl, f->c.port, false);
    assert_int_equal(req(&ctl, "GET", "/_sim/log", NULL), 200);
    assert_null(strstr(ctl.body.data, "secret"));
    client_fini(&ctl);
}

/* ---- faults --------------------------------------------------------------------- */

static void test_fault_error_rate_500_502_503(void **state)
{
    struct fx *f = *state;
    sim_faults(f, "{\"error_rate\":1.0}");
    for (int i = 0; i < 5; i++) {
        req(&f->c, "GET", "/api/pool", NULL);
        expect_error(&f->c, 503, "Service Unavailable");
    }
    req(&f->c, "POST", "/api/pool", POOL("p"));
    expect_error(&f->c, 503, "Service Unavailable");
    login(&f->c); /* /login is not subject to error_rate */
    sim_faults(f, "{\"error_rate\":1.0,\"error_status\":502}");
    req(&f->c, "GET", "/api/pool", NULL);
    expect_error(&f->c, 502, "Bad Gateway");
    sim_faults(f, "{\"error_rate\":1.0,\"error_status\":500}");
    req(&f->c, "PUT", "/api/pool/pool-x", POOL("p"));
    expect_error(&f->c, 500, "Internal Server Error");
    sim_faults(f, "{}");
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 0); /* the faulted POST did nothing */
}

static void test_fault_partial_error_rate_is_seeded(void **state)
{
    struct fx *f = *state;
    int first[40], second[40];
    for (int run = 0; run < 2; run++) {
        sim_faults(f, "{\"error_rate\":0.5,\"seed\":42}");
        for (int i = 0; i < 40; i++)
            (run ? second : first)[i] = (int)req(&f->c, "GET", "/api/pool", NULL);
    }
    int errors = 0;
    for (int i = 0; i < 40; i++) {
        assert_int_equal(first[i], second[i]);
        errors += first[i] == 503;
        assert_true(first[i] == 503 || first[i] == 200);
    }
    assert_in_range(errors, 5, 35);
}

static void test_fault_expire_sessions_401(void **state)
{
    struct fx *f = *state;
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    sim_faults(f, "{\"expire_sessions\":true}");
    req(&f->c, "GET", "/api/pool", NULL);
    expect_error(&f->c, 401, "Authentication credentials were not provided.");
    login(&f->c); /* one-shot: new sessions live */
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
}

/* A session invalidated (the user's password changed) answers 419 once,
 * and is gone after: the client must log in again. */
static void test_fault_invalidate_sessions_419(void **state)
{
    struct fx *f = *state;
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    sim_faults(f, "{\"invalidate_sessions\":true}");
    req(&f->c, "GET", "/api/pool", NULL);
    expect_error(&f->c, 419, "Session has been invalidated; log in again.");
    req(&f->c, "GET", "/api/pool", NULL);
    expect_error(&f->c, 401, "Authentication credentials were not provided.");
    login(&f->c); /* one-shot: new sessions live */
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
}

static void test_fault_upgrade_in_progress_403(void **state)
{
    struct fx *f = *state;
    sim_faults(f, "{\"upgrade_in_progress\":true}");
    req(&f->c, "POST", "/api/pool", POOL("p"));
    expect_error(&f->c, 403, "Configuration is disallowed during upgrade");
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    assert_int_equal(req(&f->c, "DELETE", "/_sim/faults", NULL), 200);
    assert_int_equal(req(&f->c, "POST", "/api/pool", POOL("p")), 201);
}

static void test_fault_refuse_name_400(void **state)
{
    struct fx *f = *state;
    sim_faults(f, "{\"refuse_name\":\"p\",\"refuse_message\":\"Pool p is not allowed\"}");
    req(&f->c, "POST", "/api/pool", POOL("p"));
    expect_error(&f->c, 400, "Pool p is not allowed");
    assert_int_equal(req(&f->c, "POST", "/api/pool", POOL("q")), 201);
    sim_faults(f, "{\"refuse_name\":\"q\"}");
    char path[256];
    snprintf(path, sizeof(path), "/api/pool/%s", jstr(f->c.json, "uuid"));
    req(&f->c, "PUT", path, POOL("q"));
    expect_error(&f->c, 400, "Refused by fault injection");
    sim_faults(f, "{}");
    assert_int_equal(req(&f->c, "POST", "/api/pool", POOL("p")), 201);
}

/* The simulator holds kavi to the real controller's object model
 * (tests/data/avi_models.json): every refusal names the field and why. */
static void test_body_outside_the_object_model_is_refused_naming_the_field(void **state)
{
    struct fx *f = *state;
    req(&f->c, "POST", "/api/healthmonitor",
        "{\"name\":\"hm\",\"type\":\"HEALTH_MONITOR_HTTP\",\"created_by\":\"ako-kavi\"}");
    expect_error(&f->c, 400, "healthmonitor: field \\\"created_by\\\" is not in the HealthMonitor model");
    req(&f->c, "POST", "/api/l4policyset", "{\"name\":\"l4\",\"cloud_config_cksum\":\"1\"}");
    expect_error(&f->c, 400, "l4policyset: field \\\"cloud_config_cksum\\\" is not in the L4PolicySet model");
    req(&f->c, "POST", "/api/pool",
        "{\"name\":\"p\",\"servers\":[{\"ip\":{\"addr\":\"10.0.0.1\",\"type\":\"V4\"},"
        "\"port\":8080,\"bogus\":1}]}");
    expect_error(&f->c, 400, "pool: field \\\"servers[0].bogus\\\" is not in the Server model");
    req(&f->c, "POST", "/api/pool", "{\"name\":\"p\",\"lb_algorithm\":\"LB_ALGORITHM_DICE\"}");
    expect_error(&f->c, 400, "pool: field \\\"lb_algorithm\\\" has value \\\"LB_ALGORITHM_DICE\\\"");
    req(&f->c, "POST", "/api/pool", "{\"name\":\"p\",\"graceful_disable_timeout\":99999}");
    expect_error(&f->c, 400, "pool: field \\\"graceful_disable_timeout\\\" is 99999, outside the allowed values");
    req(&f->c, "POST", "/api/pool", "{\"name\":\"p\",\"servers\":{}}");
    expect_error(&f->c, 400, "pool: field \\\"servers\\\" must be a list");
    /* Nothing refused was stored; a body in the model is. */
    assert_int_equal(req(&f->c, "POST", "/api/pool", POOL("p")), 201);
}

static void test_fault_rate_limit_429(void **state)
{
    struct fx *f = *state;
    int ok = 0;
    sim_faults(f, "{\"rate_limit_burst\":5}");
    /* The burst is granted at once; past it requests faster than the 32/s
     * refill are refused. Bounded in count rather than time so a slow
     * machine only makes the loop longer. */
    for (int i = 0; i < 500; i++) {
        long s = req(&f->c, "GET", "/api/pool", NULL);
        if (s == 429)
            break;
        assert_int_equal(s, 200);
        ok++;
    }
    assert_true(ok >= 5);
    expect_error(&f->c, 429, "Too many requests");
    /* Tokens refill at 32/s: the client gets through again soon. */
    long deadline = now_ms() + 5000;
    while (req(&f->c, "GET", "/api/pool", NULL) == 429 && now_ms() < deadline)
        sleep_ms(10);
    expect_status(&f->c, 200);
    /* Writes are throttled the same way and do nothing when refused. */
    sim_faults(f, "{\"rate_limit_burst\":1}");
    assert_int_equal(req(&f->c, "POST", "/api/pool", POOL("p")), 201);
    for (int i = 0; i < 500 && f->c.status != 429; i++)
        req(&f->c, "POST", "/api/pool", POOL("q"));
    expect_error(&f->c, 429, "Too many requests");
    sim_faults(f, "{}");
    assert_int_equal(req(&f->c, "GET", "/api/pool?name=p", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1);
}

static void test_fault_drop_and_latency(void **state)
{
    struct fx *f = *state;
    sim_faults(f, "{\"drop_rate\":1.0}");
    req(&f->c, "GET", "/api/pool", NULL);
    assert_int_not_equal(f->c.rc, CURLE_OK);
    req(&f->c, "POST", "/login", "{\"username\":\"admin\",\"password\":\"avi123\"}");
    assert_int_not_equal(f->c.rc, CURLE_OK);
    sim_faults(f, "{\"latency_ms\":150}");
    long t0 = now_ms();
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    assert_true(now_ms() - t0 >= 150);
    /* Control endpoints are never delayed or dropped. */
    sim_faults(f, "{\"drop_rate\":1.0,\"latency_ms\":1000}");
    t0 = now_ms();
    assert_int_equal(req(&f->c, "GET", "/_sim/counters", NULL), 200);
    assert_true(now_ms() - t0 < 900);
    assert_int_equal(req(&f->c, "DELETE", "/_sim/faults", NULL), 200);
}

static void test_faults_set_for_the_whole_run(void **state)
{
    struct fx *f = *state;
    avisim_options_t o = {.faults = "{\"upgrade_in_progress\":true,\"latency_ms\":5}"};
    restart(f, &o);
    req(&f->c, "POST", "/api/pool", POOL("p"));
    expect_error(&f->c, 403, "Configuration is disallowed during upgrade");
    assert_int_equal(req(&f->c, "GET", "/_sim/faults", NULL), 200);
    assert_int_equal(jint(f->c.json, "latency_ms"), 5);
    assert_int_equal(req(&f->c, "DELETE", "/_sim/faults", NULL), 200); /* runtime wins */
    assert_int_equal(req(&f->c, "POST", "/api/pool", POOL("p")), 201);
}

static void test_fault_config_validated(void **state)
{
    struct fx *f = *state;
    req(&f->c, "POST", "/_sim/faults", "{\"error_rate\":2}");
    expect_error(&f->c, 400, "error_rate");
    req(&f->c, "POST", "/_sim/faults", "{\"error_status\":404}");
    expect_error(&f->c, 400, "error_status");
    req(&f->c, "POST", "/_sim/faults", "{\"nonsense\":1}");
    expect_error(&f->c, 400, "nonsense");
    req(&f->c, "POST", "/_sim/faults", "{\"drop_response_rate\":-0.5}");
    expect_error(&f->c, 400, "drop_response_rate");
    req(&f->c, "POST", "/_sim/faults", "{\"rate_limit_burst\":-1}");
    expect_error(&f->c, 400, "rate_limit_burst");
    assert_int_equal(req(&f->c, "GET", "/_sim/faults", NULL), 200);
    assert_int_equal(jint(f->c.json, "delete_referenced_status"), 403);
}

/* ---- observability and limits -------------------------------------------------- */

static void test_counters_and_log(void **state)
{
    struct fx *f = *state;
    struct client ctl;
    client_init(&ctl, f->c.port, false);
    create(&f->c, "pool", POOL("p"));
    char uuid[128];
    snprintf(uuid, sizeof(uuid), "%s", jstr(f->c.json, "uuid"));
    req(&f->c, "POST", "/api/pool", POOL("p")); /* 409 */
    req(&f->c, "GET", "/api/pool", NULL);
    req(&f->c, "GET", "/api/pool?name=p", NULL);

    assert_int_equal(req(&ctl, "GET", "/_sim/counters", NULL), 200);
    assert_int_equal(jint(ctl.json, "requests.POST pool"), 2);
    assert_int_equal(jint(ctl.json, "requests.GET pool"), 2);
    assert_int_equal(jint(ctl.json, "requests.POST login"), 1);
    assert_int_equal(jint(ctl.json, "total"), 5);

    assert_int_equal(req(&ctl, "GET", "/_sim/log", NULL), 200);
    assert_int_equal(json_array_size(ctl.json), 5);
    const json_t *e = json_array_get(ctl.json, 1);
    assert_string_equal(jstr(e, "method"), "POST");
    assert_string_equal(jstr(e, "type"), "pool");
    assert_string_equal(jstr(e, "name"), "p");
    assert_string_equal(jstr(e, "uuid"), uuid);
    assert_int_equal(jint(e, "status"), 201);
    assert_string_equal(jstr(e, "body.servers.0.ip.addr"), "10.0.0.1");
    assert_int_equal(jint(ctl.json, "2.status"), 409);
    assert_true(json_is_null(jget(ctl.json, "3.body")));
    assert_string_equal(jstr(ctl.json, "0.body.password"), "<sensitive>");
    assert_true(jint(ctl.json, "4.seq") > jint(ctl.json, "3.seq"));

    assert_int_equal(req(&ctl, "DELETE", "/_sim/log", NULL), 200);
    assert_int_equal(req(&ctl, "GET", "/_sim/log", NULL), 200);
    assert_int_equal(json_array_size(ctl.json), 0);
    client_fini(&ctl);
}

static void test_state_dump_excludes_seeds_sorted_by_name(void **state)
{
    struct fx *f = *state;
    create(&f->c, "pool", POOL("zeta"));
    create(&f->c, "pool", POOL("alpha"));
    f->c.tenant = "team-b";
    create(&f->c, "healthmonitor", "{\"name\":\"hm\",\"type\":\"HEALTH_MONITOR_HTTP\"}");
    char *text = avisim_state_json(f->sim);
    json_t *s = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(s);
    assert_int_equal(json_object_size(s), 2);
    assert_string_equal(jstr(s, "admin.pool.0.name"), "alpha");
    assert_string_equal(jstr(s, "admin.pool.1.name"), "zeta");
    assert_true(ends_with(jstr(s, "admin.pool.0.cloud_ref"), "#Default-Cloud"));
    assert_null(jget(s, "admin.cloud"));
    assert_string_equal(jstr(s, "team-b.healthmonitor.0.name"), "hm");
    struct client ctl;
    client_init(&ctl, f->c.port, false);
    assert_int_equal(req(&ctl, "GET", "/_sim/state", NULL), 200);
    assert_true(json_equal(ctl.json, s));
    client_fini(&ctl);
    json_decref(s);
}

static void test_body_too_large_413(void **state)
{
    struct fx *f = *state;
    size_t n = 9u * 1024 * 1024;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    req(&f->c, "POST", "/api/pool", big);
    free(big);
    expect_error(&f->c, 413, "larger than");
}

struct worker {
    int port;
    int id;
    int created;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct client c;
    client_init(&c, w->port, false);
    if (req(&c, "POST", "/login", "{\"username\":\"admin\",\"password\":\"avi123\"}") != 200)
        goto out;
    for (int i = 0; i < 25; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"name\":\"w%d-%d\"}", w->id, i);
        if (req(&c, "POST", "/api/pool", body) == 201)
            w->created++;
        req(&c, "GET", "/api/pool?page_size=5", NULL);
    }
out:
    client_fini(&c);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    struct fx *f = *state;
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.port = f->c.port, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].created, 25);
    }
    assert_int_equal(req(&f->c, "GET", "/api/pool?page_size=1", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 100);
}

static void test_https_listener(void **state)
{
    struct fx *f = *state;
    char dir[] = "/tmp/avisim-tls-XXXXXX", cmd[1024], cert[128], key[128];
    if (!mkdtemp(dir))
        skip();
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
             "-subj /CN=127.0.0.1 >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) {
        rmdir(dir);
        skip();
    }
    avisim_options_t o = {.tls_cert_file = cert, .tls_key_file = key};
    restart(f, &o);
    create(&f->c, "pool", POOL("p"));
    assert_true(strncmp(jstr(f->c.json, "url"), "https://", 8) == 0);
    /* Over HTTPS the cookies are Secure, as a real controller's. */
    assert_true(has_header(&f->c, "; HttpOnly; Max-Age=86400; Path=/; Secure\r\n"));
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

static void test_bad_options_rejected(void **state)
{
    (void)state;
    avisim_t *sim = NULL;
    avisim_options_t bad[] = {
        {.vip_range = "10.0.0.9-10.0.0.1"},
        {.vip_range = "nonsense"},
        {.tenants = "ok,bad name"},
        {.version = "x.y"},
        {.port = 70000},
        {.tls_cert_file = "/nonexistent"},
        {.tls_cert_file = "/nonexistent", .tls_key_file = "/nonexistent"},
        {.faults = "{\"error_rate\":2}"},
        {.faults = "not json"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_true(avisim_new(&sim, &bad[i]) < 0);
        assert_null(sim);
    }
    avisim_destroy(&sim); /* NULL-safe */
}

/* ---- basic auth, liveness probe, seeds ------------------------------------------ */

/* "Basic base64(user:pass)" for the Authorization header. */
static void basic_credential(const char *user_pass, char *out, size_t outsz)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(user_pass), o = (size_t)snprintf(out, outsz, "Basic ");
    for (size_t i = 0; i < n && o + 5 < outsz; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)user_pass[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)user_pass[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint32_t)(unsigned char)user_pass[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
}

static void test_basic_auth_when_enabled_needs_no_login_or_csrf(void **state)
{
    struct fx *f = *state;
    avisim_options_t o = {.allow_basic_auth = true};
    char cred[128], path[256];
    restart(f, &o);
    assert_true(json_is_true(jget(f->c.json, "system_config.portal_configuration."
                                              "allow_basic_authentication")));
    struct client c; /* never logs in */
    client_init(&c, f->c.port, false);
    basic_credential("admin:avi123", cred, sizeof(cred));
    c.authorization = cred;
    assert_int_equal(req(&c, "GET", "/api/pool", NULL), 200);
    assert_true(has_header(&c, "Set-Cookie: sessionid=None"));
    req(&c, "POST", "/api/pool", POOL("p")); /* no X-CSRFToken, no cookie */
    expect_status(&c, 201);
    snprintf(path, sizeof(path), "/api/pool/%s", jstr(c.json, "uuid"));
    assert_int_equal(req(&c, "DELETE", path, NULL), 204);
    assert_int_equal(req(&c, "GET", "/api/systemconfiguration", NULL), 200);
    assert_true(json_is_true(jget(c.json, "portal_configuration.allow_basic_authentication")));
    /* The credential is checked on every call. */
    basic_credential("admin:wrong", cred, sizeof(cred));
    req(&c, "GET", "/api/pool", NULL);
    expect_error(&c, 401, "Invalid credentials");
    basic_credential("root:avi123", cred, sizeof(cred));
    req(&c, "POST", "/api/pool", POOL("q"));
    expect_error(&c, 401, "Invalid credentials");
    c.authorization = "Basic !!!not-base64";
    req(&c, "GET", "/api/pool", NULL);
    expect_status(&c, 401);
    client_fini(&c);
    /* Sessions still work alongside. */
    assert_int_equal(req(&f->c, "POST", "/api/pool", POOL("s")), 201);
}

static void test_basic_auth_off_by_default_401(void **state)
{
    struct fx *f = *state;
    char cred[128];
    struct client c;
    assert_int_equal(req(&f->c, "GET", "/api/systemconfiguration", NULL), 200);
    assert_true(json_is_false(jget(f->c.json, "portal_configuration.allow_basic_authentication")));
    client_init(&c, f->c.port, false);
    basic_credential("admin:avi123", cred, sizeof(cred));
    c.authorization = cred;
    req(&c, "GET", "/api/pool", NULL);
    expect_error(&c, 401, "Basic authentication is not enabled.");
    req(&c, "POST", "/api/pool", POOL("p"));
    expect_error(&c, 401, "Basic authentication is not enabled.");
    client_fini(&c);
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 0);
}

static void test_cluster_status_needs_no_auth(void **state)
{
    struct fx *f = *state;
    struct client c; /* no session, no credentials, as the Go SDK's probe */
    client_init(&c, f->c.port, false);
    assert_int_equal(req(&c, "GET", "/api/cluster/status", NULL), 200);
    assert_string_equal(jstr(c.json, "cluster_state.state"), "CLUSTER_UP_NO_HA");
    assert_int_equal(req(&c, "GET", "//api/cluster/status/", NULL), 200);
    /* Other endpoints still want a session. */
    req(&c, "GET", "/api/cluster/runtime", NULL);
    expect_error(&c, 401, "Authentication credentials were not provided.");
    /* A busy controller answers the probe with the injected status: that is
     * what the SDK waits out. */
    sim_faults(f, "{\"error_rate\":1.0,\"error_status\":502}");
    req(&c, "GET", "/api/cluster/status", NULL);
    expect_error(&c, 502, "Bad Gateway");
    sim_faults(f, "{}");
    assert_int_equal(req(&c, "GET", "/api/cluster/status", NULL), 200);
    client_fini(&c);
}

static void test_seed_objects_present_and_visible_from_tenants(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *type, *name;
    } seeds[] = {
        {"tenant", "admin"},
        {"tenant", "team-a"},
        {"tenant", "team-b"},
        {"cloud", "Default-Cloud"},
        {"vrfcontext", "global"},
        {"vrfcontext", "management"},
        {"serviceenginegroup", "Default-Group"},
        {"network", "vip-net"},
        {"applicationprofile", "System-HTTP"},
        {"applicationprofile", "System-Secure-HTTP"},
        {"applicationprofile", "System-L4-Application"},
        {"applicationprofile", "System-SSL-Application"},
        {"networkprofile", "System-TCP-Proxy"},
        {"networkprofile", "System-TCP-Fast-Path"},
        {"networkprofile", "System-UDP-Fast-Path"},
        {"networkprofile", "System-SCTP-Proxy"},
        {"sslprofile", "System-Standard"},
        {"analyticsprofile", "System-Analytics-Profile"},
        {"healthmonitor", "System-TCP"},
        {"healthmonitor", "System-UDP"},
        {"healthmonitor", "System-SCTP"},
        {"healthmonitor", "System-HTTP"},
        {"healthmonitor", "System-Ping"},
    };
    const char *tenants[] = {NULL, "team-a"};
    for (size_t t = 0; t < 2; t++) {
        f->c.tenant = tenants[t];
        for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
            char path[256];
            snprintf(path, sizeof(path), "/api/%s?name=%s", seeds[i].type, seeds[i].name);
            assert_int_equal(req(&f->c, "GET", path, NULL), 200);
            if (jint(f->c.json, "count") != 1)
                fail_msg("seed %s %s missing (tenant %s)", seeds[i].type, seeds[i].name,
                         tenants[t] ? tenants[t] : "admin");
        }
    }
    /* The admin tenant's uuid is literally "admin"; seeds belong to it. */
    assert_int_equal(req(&f->c, "GET", "/api/tenant/admin", NULL), 200);
    assert_string_equal(jstr(f->c.json, "name"), "admin");
    assert_int_equal(req(&f->c, "GET", "/api/vrfcontext?name=global", NULL), 200);
    assert_true(ends_with(jstr(f->c.json, "results.0.cloud_ref"), "/api/cloud/cloud-default"));
    assert_true(json_is_true(jget(f->c.json, "results.0.system_default")));
    /* A tenant's objects may use them by name. */
    create(&f->c, "virtualservice",
           "{\"name\":\"vs\",\"services\":[{\"port\":443}],\"ssl_profile_ref\":"
           "\"/api/sslprofile?name=System-Standard\",\"analytics_profile_ref\":"
           "\"/api/analyticsprofile/?name=System-Analytics-Profile\"}");
    assert_true(ends_with(jstr(f->c.json, "ssl_profile_ref"), "#System-Standard"));
    assert_true(ends_with(jstr(f->c.json, "tenant_ref"), "#team-a"));
}

static void test_tenant_uuid_header_selects_tenant_for_writes(void **state)
{
    struct fx *f = *state;
    f->c.tenant_uuid = "tenant-team-b";
    create(&f->c, "pool", POOL("by-uuid"));
    assert_true(ends_with(jstr(f->c.json, "tenant_ref"), "/api/tenant/tenant-team-b#team-b"));
    f->c.tenant_uuid = "admin";
    assert_int_equal(req(&f->c, "GET", "/api/pool?name=by-uuid", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 0);
    f->c.tenant_uuid = NULL;
    f->c.tenant = "team-b";
    assert_int_equal(req(&f->c, "GET", "/api/pool?name=by-uuid", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1);
    /* The version is echoed on every answer; without one, the controller's. */
    f->c.tenant = NULL;
    assert_int_equal(req(&f->c, "GET", "/api/pool", NULL), 200);
    assert_true(has_header(&f->c, "AVI_API_VERSION: 22.1.3"));
}

static void test_fault_drop_response_carries_out_the_write(void **state)
{
    struct fx *f = *state;
    sim_faults(f, "{\"drop_response_rate\":1.0}");
    req(&f->c, "POST", "/api/pool", POOL("landed"));
    assert_int_not_equal(f->c.rc, CURLE_OK); /* no answer */
    sim_faults(f, "{}");
    assert_int_equal(req(&f->c, "GET", "/api/pool?name=landed", NULL), 200);
    assert_int_equal(jint(f->c.json, "count"), 1); /* but it happened */
    /* A client retrying blindly learns about it from the 409. */
    req(&f->c, "POST", "/api/pool", POOL("landed"));
    expect_error(&f->c, 409, "already exists");
    struct client ctl;
    client_init(&ctl, f->c.port, false);
    assert_int_equal(req(&ctl, "GET", "/_sim/log", NULL), 200);
    size_t n = json_array_size(ctl.json);
    assert_true(n >= 3);
    assert_string_equal(jstr(ctl.json, "1.name"), "landed");
    assert_int_equal(jint(ctl.json, "1.status"), 201); /* the log knows */
    client_fini(&ctl);
}

/* ---- the standalone program --------------------------------------------------- */

static bool wait_for_file(const char *path, long timeout_ms)
{
    struct stat st;
    long deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        if (stat(path, &st) == 0 && st.st_size > 0)
            return true;
        sleep_ms(20);
    }
    return false;
}

static void test_program_serves_and_dumps_state_on_exit(void **state)
{
    (void)state;
    char bin[1024], dir[] = "/tmp/avisim-prog-XXXXXX", port_file[128], dump_file[128];
    char cred[128], text[64];
    const char *slash = strrchr(test_argv0, '/');
    snprintf(bin, sizeof(bin), "%.*s/../bin/avisim", slash ? (int)(slash - test_argv0) : 1,
             slash ? test_argv0 : ".");
    if (access(bin, X_OK) != 0)
        skip(); /* built by "make" (build/<variant>/bin/avisim) */
    assert_non_null(mkdtemp(dir));
    snprintf(port_file, sizeof(port_file), "%s/port", dir);
    snprintf(dump_file, sizeof(dump_file), "%s/state.json", dir);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execl(bin, bin, "--port", "0", "--port-file", port_file, "--dump-state-on-exit",
              dump_file, "--basic-auth", "--tenants", "team-x", "--faults",
              "{\"latency_ms\":1,\"delete_referenced_status\":400}", (char *)NULL);
        _exit(127);
    }
    assert_true(wait_for_file(port_file, 10000));
    FILE *pf = fopen(port_file, "r");
    assert_non_null(pf);
    assert_non_null(fgets(text, sizeof(text), pf));
    fclose(pf);

    struct client c;
    client_init(&c, atoi(text), false);
    basic_credential("admin:avi123", cred, sizeof(cred));
    c.authorization = cred; /* --basic-auth took effect */
    c.tenant = "team-x";    /* --tenants took effect */
    assert_int_equal(req(&c, "POST", "/api/pool", POOL("from-cli")), 201);
    c.authorization = NULL;
    c.tenant = NULL;
    assert_int_equal(req(&c, "GET", "/_sim/faults", NULL), 200); /* --faults took effect */
    assert_int_equal(jint(c.json, "latency_ms"), 1);
    assert_int_equal(jint(c.json, "delete_referenced_status"), 400);
    assert_int_equal(req(&c, "GET", "/_sim/state", NULL), 200);
    json_t *live = json_incref(c.json);
    client_fini(&c);

    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = 0;
    long deadline = now_ms() + 10000;
    pid_t done = 0;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
        sleep_ms(20);
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("avisim did not exit on SIGTERM");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    json_t *dump = json_load_file(dump_file, 0, NULL);
    assert_non_null(dump);
    assert_string_equal(jstr(dump, "team-x.pool.0.name"), "from-cli");
    assert_true(json_equal(dump, live));
    json_decref(dump);
    json_decref(live);
    unlink(port_file);
    unlink(dump_file);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_login_json_returns_version_tenants_and_cookies),
        T(test_api_answers_send_session_cookies_again),
        T(test_login_form_encoded_ok),
        T(test_login_bad_credentials_401),
        T(test_login_with_token),
        T(test_api_without_session_401),
        T(test_write_without_csrf_401_plain_text),
        T(test_logout_ends_session),
        T(test_idle_session_expires),
        T(test_unknown_tenant_403),
        T(test_tenant_isolation),
        T(test_admin_objects_referenced_by_name_from_tenant),
        T(test_newer_api_version_refused),
        T(test_trailing_and_double_slash),
        T(test_unknown_type_and_method),
        T(test_misc_endpoints),
        T(test_paging_follows_next),
        T(test_filter_name_and_name_contains),
        T(test_filter_uuid_in),
        T(test_filter_field_equality_created_by),
        T(test_filter_cloud_ref_name),
        T(test_filter_refers_to_and_referred_by),
        T(test_filter_fields_and_include_name),
        T(test_post_pool_defaults_and_echo),
        T(test_post_vs_defaults),
        T(test_post_vsvip_defaults),
        T(test_put_replaces_and_changes_last_modified),
        T(test_put_stale_last_modified_412),
        T(test_put_missing_object_404),
        T(test_patch_add_replace_delete),
        T(test_delete_204_then_404),
        T(test_delete_referenced_403_lists_referrers),
        T(test_delete_seed_object_refused),
        T(test_reference_spellings_resolve),
        T(test_cloud_ref_by_name_with_other_cloud_scoped_refs),
        T(test_missing_reference_404),
        T(test_duplicate_name_409),
        T(test_validation_400s),
        T(test_vip_allocation_exhaustion_and_release),
        T(test_vip_kept_on_put_and_change_refused),
        T(test_vip_from_named_network),
        T(test_ssl_key_never_returned),
        T(test_fault_error_rate_500_502_503),
        T(test_fault_partial_error_rate_is_seeded),
        T(test_fault_expire_sessions_401),
        T(test_fault_invalidate_sessions_419),
        T(test_fault_upgrade_in_progress_403),
        T(test_fault_refuse_name_400),
        T(test_body_outside_the_object_model_is_refused_naming_the_field),
        T(test_fault_rate_limit_429),
        T(test_fault_drop_and_latency),
        T(test_faults_set_for_the_whole_run),
        T(test_fault_config_validated),
        T(test_counters_and_log),
        T(test_state_dump_excludes_seeds_sorted_by_name),
        T(test_body_too_large_413),
        T(test_concurrent_clients),
        T(test_https_listener),
        T(test_basic_auth_when_enabled_needs_no_login_or_csrf),
        T(test_basic_auth_off_by_default_401),
        T(test_cluster_status_needs_no_auth),
        T(test_seed_objects_present_and_visible_from_tenants),
        T(test_tenant_uuid_header_selects_tenant_for_writes),
        T(test_fault_drop_response_carries_out_the_write),
        cmocka_unit_test(test_bad_options_rejected),
        cmocka_unit_test(test_program_serves_and_dumps_state_on_exit),
#undef T
    };
    test_argv0 = argv[0];
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
