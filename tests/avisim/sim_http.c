/*
 * The HTTP face of the simulator: libmicrohttpd plumbing, path
 * normalisation, the session (or Basic auth)/CSRF/version/tenant gate in
 * front of /api, /login and /logout, the unauthenticated /api/cluster/status
 * probe, the /_sim/ control endpoints, fault injection and the request log.
 *
 * Each connection has its own thread (so injected latency delays only that
 * client); all simulator state is touched under sim->lock, and sleeping or
 * socket I/O never happens while holding it.
 */
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sim_internal.h"

#define MAX_PATH 2048
#define MAX_CRED 1024
#define CONNECTION_TIMEOUT_S 300
#define CONNECTION_LIMIT 512
#define LOG_BODY_MAX (256u * 1024u)

struct conn_ctx {
    struct avisim_buf body;
    bool too_large;
};

enum route { ROUTE_NONE, ROUTE_LOGIN, ROUTE_LOGOUT, ROUTE_API, ROUTE_SIM };

/* Everything one request needs, gathered before taking the lock. */
struct request {
    struct avisim *sim;
    struct MHD_Connection *conn;
    const char *method;
    char path[MAX_PATH + 1];
    enum route route;
    const char *body;
    size_t body_len;
    bool too_large;
    json_t *json; /* parsed body, NULL when empty or not JSON */
    bool json_bad;
    char json_error[160];
    char base[AVISIM_MAX_HOST + 16];
    struct avisim_arg args[AVISIM_MAX_ARGS];
    size_t n_args;
    bool too_many_args;
    const char *api_version; /* X-Avi-Version as sent */
    bool basic_auth;         /* authenticated by Authorization: Basic, no session */
    char session_id[33];     /* the session that passed the gate, "" if none */
    char log_type[64];
    json_t *log_body; /* what the log records as the request body */
};

struct cookie_set {
    char *items[3];
};

/* ---- small helpers ------------------------------------------------------ */

static const char *header(const struct request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

static const char *cookie(const struct request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, name);
}

static bool is_write(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
}

/* Collapses "//" (the Go SDK joins "https://host/" and "/api/...") and drops
 * a trailing slash (AKO posts to "/api/pool/"). */
static int normalise_path(const char *url, char *out, size_t outsz)
{
    size_t o = 0;
    if (strlen(url) >= outsz)
        return -1;
    for (const char *p = url; *p; p++) {
        if (*p == '/' && o > 0 && out[o - 1] == '/')
            continue;
        out[o++] = *p;
    }
    if (o > 1 && out[o - 1] == '/')
        o--;
    out[o] = '\0';
    return 0;
}

static bool host_ok(const char *h)
{
    size_t n = h ? strlen(h) : 0;
    if (n == 0 || n > AVISIM_MAX_HOST)
        return false;
    return strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == n;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct request *rq = cls;
    (void)kind;
    if (rq->n_args == AVISIM_MAX_ARGS) {
        rq->too_many_args = true;
        return MHD_NO;
    }
    struct avisim_arg *a = &rq->args[rq->n_args];
    a->key = strdup(key ? key : "");
    a->value = value ? strdup(value) : NULL;
    if (!a->key || (value && !a->value)) {
        free(a->key);
        free(a->value);
        rq->too_many_args = true;
        return MHD_NO;
    }
    rq->n_args++;
    return MHD_YES;
}

static const char *reason(int status)
{
    switch (status) {
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    default:
        return "Service Unavailable";
    }
}

/* ---- login / logout ------------------------------------------------------ */

/* username/password/token from a JSON (Go SDK) or form-encoded (Python SDK)
 * body, as a JSON object either way. */
static json_t *login_fields(const struct request *rq)
{
    if (json_is_object(rq->json))
        return json_incref(rq->json);
    json_t *o = json_object();
    const char *p = rq->body;
    const char *end = rq->body + rq->body_len;
    while (o && p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        char key[64], val[MAX_CRED + 1];
        if (eq && (size_t)(eq - p) < sizeof(key) &&
            avisim_url_decode(p, (size_t)(eq - p), key, sizeof(key), true) == 0 &&
            avisim_url_decode(eq + 1, (size_t)(stop - eq - 1), val, sizeof(val), true) == 0)
            json_object_set_new(o, key, json_string(val));
        p = amp ? amp + 1 : NULL;
    }
    return o;
}

/* As recorded: the session cookies live 24 h and are sent again on every
 * authenticated answer (a sliding expiry), csrftoken a year and only at
 * login. Secure only over HTTPS, where a real controller always is: a
 * client's cookie engine rightly drops Secure cookies sent over HTTP. */
static void set_session_cookies(struct cookie_set *cs, const char *session_id, bool tls)
{
    const char *secure = tls ? "; Secure" : "";
    cs->items[1] = avisim_strdupf("avi-sessionid=%s; HttpOnly; Max-Age=86400; Path=/%s",
                                  session_id, secure);
    cs->items[2] = avisim_strdupf("sessionid=%s; HttpOnly; Max-Age=86400; Path=/%s", session_id,
                                  secure);
}

static void set_login_cookies(struct cookie_set *cs, const struct avisim_session *s, bool tls)
{
    cs->items[0] = avisim_strdupf("csrftoken=%s; Max-Age=31449600; Path=/%s", s->csrf,
                                  tls ? "; Secure" : "");
    set_session_cookies(cs, s->id, tls);
}

static void handle_login(struct request *rq, struct avisim_reply *rp, struct cookie_set *cs)
{
    struct avisim *sim = rq->sim;
    json_t *f = login_fields(rq);
    const char *user = json_string_value(json_object_get(f, "username"));
    const char *pass = json_string_value(json_object_get(f, "password"));
    const char *token = json_string_value(json_object_get(f, "token"));
    struct avisim_session *s = NULL;

    json_decref(rq->log_body);
    rq->log_body = json_incref(f);
    if (strcmp(rq->method, "POST") != 0) {
        avisim_reply_json(rp, 405, json_pack("{s:s}", "detail", "Method not allowed."));
        goto out_free_fields;
    }
    /* A token login is accepted when it carries the configured password:
     * the simulator has exactly one credential. */
    const char *secret = pass ? pass : token;
    if (!user || !secret || strcmp(user, sim->username) || strcmp(secret, sim->password)) {
        avisim_reply_error(rp, 401, "Invalid credentials");
        goto out_free_fields;
    }
    if (avisim_session_create(&sim->sessions, avisim_mono_ms(), &s)) {
        avisim_reply_error(rp, 500, "cannot create session");
        goto out_free_fields;
    }
    set_login_cookies(cs, s, sim->tls);
    rp->log_name = strdup(user);

    json_t *tenants = json_array();
    struct avisim_obj *t, *tmp;
    HASH_ITER(hh, sim->store.objs[AVISIM_T_TENANT], t, tmp)
    {
        char *url = avisim_strdupf("%s/api/tenant/%s", rq->base, t->uuid);
        json_array_append_new(tenants, json_pack("{s:s?, s:s, s:s}", "url", url, "uuid", t->uuid,
                                                 "name", avisim_obj_name(t)));
        free(url);
    }
    char *default_tenant = avisim_strdupf("%s/api/tenant/admin", rq->base);
    avisim_reply_json(rp, 200,
                      json_pack("{s:{s:s}, s:{s:s, s:s?}, s:o, s:{s:{s:b}}, s:s}", "version",
                                "Version", sim->version, "user", "username", user,
                                "default_tenant_ref", default_tenant, "tenants", tenants,
                                "system_config", "portal_configuration",
                                "allow_basic_authentication", sim->allow_basic_auth,
                                "session_cookie_name", "avi-sessionid"));
    free(default_tenant);
out_free_fields:
    json_decref(f);
}

static void handle_logout(struct request *rq, struct avisim_reply *rp)
{
    if (strcmp(rq->method, "POST") != 0) {
        avisim_reply_json(rp, 405, json_pack("{s:s}", "detail", "Method not allowed."));
        return;
    }
    avisim_session_end(&rq->sim->sessions, cookie(rq, "avi-sessionid"));
    avisim_session_end(&rq->sim->sessions, cookie(rq, "sessionid"));
    avisim_reply_json(rp, 200, json_object());
}

/* ---- /api ---------------------------------------------------------------- */

/* The faults that stand in front of the whole application (throttle, busy
 * controller). false with rp filled when one answers. */
static bool api_faults_pass(struct request *rq, struct avisim_reply *rp)
{
    struct avisim *sim = rq->sim;

    if (avisim_faults_rate_limited(&sim->faults, avisim_mono_ms())) {
        avisim_reply_error(rp, 429, "Too many requests");
        return false;
    }
    if (avisim_faults_roll(&sim->faults, sim->faults.error_rate)) {
        avisim_reply_error(rp, sim->faults.error_status, "%s",
                           reason(sim->faults.error_status));
        return false;
    }
    return true;
}

/*
 * "Authorization: Basic base64(user:pass)" (research §1.6): accepted on any
 * call without login or CSRF when the controller allows it, which it does
 * not by default. Returns 0 when authenticated, or 401 with rp filled.
 */
static int basic_auth_check(struct request *rq, const char *authorization,
                            struct avisim_reply *rp)
{
    struct avisim *sim = rq->sim;
    char decoded[2 * MAX_CRED + 2];
    const char *b64 = authorization + strlen("Basic ");

    if (!sim->allow_basic_auth) {
        avisim_reply_error(rp, 401, "Basic authentication is not enabled.");
        return 401;
    }
    while (*b64 == ' ')
        b64++;
    char *colon = NULL;
    if (strlen(b64) <= 4 * ((sizeof(decoded) - 1) / 3) &&
        avisim_base64_decode(b64, decoded, sizeof(decoded)) == 0)
        colon = strchr(decoded, ':');
    if (!colon) {
        avisim_reply_error(rp, 401, "Invalid basic auth header");
        return 401;
    }
    *colon = '\0';
    if (strcmp(decoded, sim->username) != 0 || strcmp(colon + 1, sim->password) != 0) {
        avisim_reply_error(rp, 401, "Invalid credentials");
        return 401;
    }
    rq->basic_auth = true;
    return 0;
}

/* The checks every /api request passes, in the controller's order: faults
 * in front of the application, then session (or Basic auth, which needs no
 * CSRF), CSRF, version and tenant. Returns the tenant, or NULL with rp
 * filled. */
static struct avisim_obj *api_gate(struct request *rq, struct avisim_reply *rp)
{
    struct avisim *sim = rq->sim;
    int64_t now = avisim_mono_ms();
    struct avisim_session *s = NULL;

    if (!api_faults_pass(rq, rp))
        return NULL;
    const char *authorization = header(rq, "Authorization");
    if (authorization && strncasecmp(authorization, "Basic ", 6) == 0) {
        if (basic_auth_check(rq, authorization, rp))
            return NULL;
    } else {
        s = avisim_session_use(&sim->sessions, cookie(rq, "avi-sessionid"), now);
        if (!s)
            s = avisim_session_use(&sim->sessions, cookie(rq, "sessionid"), now);
        if (!s) {
            avisim_reply_error(rp, 401, "Authentication credentials were not provided.");
            return NULL;
        }
        if (s->invalidated) {
            /* Wording unverified; the code is what clients act on. */
            avisim_session_end(&sim->sessions, s->id);
            avisim_reply_error(rp, 419, "Session has been invalidated; log in again.");
            return NULL;
        }
        memcpy(rq->session_id, s->id, sizeof(rq->session_id));
    }
    if (is_write(rq->method) && !rq->basic_auth) {
        /* Django's rule: the header must repeat the csrftoken cookie. The
         * body is bare text although the type says JSON, as observed. */
        const char *h = header(rq, "X-CSRFToken");
        const char *c = cookie(rq, "csrftoken");
        if (!h || !c || !*h || strcmp(h, c) != 0) {
            rp->status = 401;
            rp->content_type = "application/json";
            rp->body = strdup("CSRF token missing or incorrect.");
            return NULL;
        }
    }
    if (rq->api_version) {
        int cmp = 0;
        if (avisim_version_cmp(rq->api_version, sim->version, &cmp) || cmp > 0) {
            avisim_reply_error(rp, 400, "Invalid version %.64s, controller version is %s",
                               rq->api_version, sim->version);
            return NULL;
        }
    }
    struct avisim_obj *tenant = sim->store.admin;
    const char *tname = header(rq, "X-Avi-Tenant");
    const char *tuuid = header(rq, "X-Avi-Tenant-UUID");
    if (tname) {
        tenant = avisim_store_tenant_by_name(&sim->store, tname);
    } else if (tuuid) {
        tenant = avisim_store_get(&sim->store, AVISIM_T_TENANT, tuuid);
        tname = tuuid;
    }
    if (!tenant) {
        avisim_reply_error(rp, 403, "Tenant '%.128s' does not exist!", tname);
        return NULL;
    }
    if (is_write(rq->method) && sim->faults.upgrade_in_progress) {
        avisim_reply_error(rp, 403, "Configuration is disallowed during upgrade");
        return NULL;
    }
    return tenant;
}

static void handle_api(struct request *rq, struct avisim_reply *rp)
{
    struct avisim *sim = rq->sim;
    const char *seg1 = rq->path + strlen("/api/");
    size_t len1 = strcspn(seg1, "/");
    const char *seg2 = seg1[len1] ? seg1 + len1 + 1 : NULL;

    bool get = strcmp(rq->method, "GET") == 0;
    if (get && seg2 && strcmp(rq->log_type, "cluster") == 0 && strcmp(seg2, "status") == 0) {
        /* The Go SDK's liveness probe, sent without credentials: only the
         * busy-controller faults apply (the SDK waits out 500/502/503). */
        if (api_faults_pass(rq, rp))
            avisim_reply_json(rp, 200, json_pack("{s:{s:s}}", "cluster_state", "state",
                                                 "CLUSTER_UP_NO_HA"));
        return;
    }
    struct avisim_obj *tenant = api_gate(rq, rp);
    if (!tenant)
        return;
    if (seg2 && strchr(seg2, '/')) {
        avisim_reply_error(rp, 404, "Not found");
        return;
    }
    if (rq->json_bad && is_write(rq->method) && strcmp(rq->method, "DELETE") != 0) {
        avisim_reply_error(rp, 400, "Invalid JSON: %s", rq->json_error);
        return;
    }
    if (get && !seg2 && strcmp(rq->log_type, "initial-data") == 0) {
        avisim_reply_json(rp, 200, json_pack("{s:{s:s}}", "version", "Version", sim->version));
        return;
    }
    if (get && seg2 && strcmp(rq->log_type, "cluster") == 0 && strcmp(seg2, "runtime") == 0) {
        avisim_reply_json(rp, 200,
                          json_pack("{s:{s:s}}", "cluster_state", "state", "CLUSTER_UP_NO_HA"));
        return;
    }
    if (get && !seg2 && strcmp(rq->log_type, "systemconfiguration") == 0) {
        avisim_reply_json(rp, 200,
                          json_pack("{s:s, s:{s:b}}", "default_license_tier", "ENTERPRISE",
                                    "portal_configuration", "allow_basic_authentication",
                                    sim->allow_basic_auth));
        return;
    }
    int type = avisim_type_from_path(seg1, len1);
    if (type < 0) {
        avisim_reply_error(rp, 404, "Not found");
        return;
    }
    const char *name = json_string_value(json_object_get(rq->json, "name"));
    if ((strcmp(rq->method, "POST") == 0 || strcmp(rq->method, "PUT") == 0) && name &&
        sim->faults.refuse_name[0] && strcmp(name, sim->faults.refuse_name) == 0) {
        avisim_reply_error(rp, 400, "%s", sim->faults.refuse_message);
        return;
    }
    struct avisim_api_request arq = {
        .method = rq->method,
        .type = type,
        .uuid = seg2,
        .tenant = tenant,
        .base = rq->base,
        .args = rq->args,
        .n_args = rq->n_args,
        .body = rq->json,
        .slug = header(rq, "Slug"),
        .delete_referenced_status = sim->faults.delete_referenced_status,
    };
    avisim_api_handle(&sim->store, &arq, rp);
}

/* ---- /_sim ------------------------------------------------------------- */

static void handle_sim(struct request *rq, struct avisim_reply *rp)
{
    struct avisim *sim = rq->sim;
    const char *what = rq->path + strlen("/_sim/");
    bool get = strcmp(rq->method, "GET") == 0;
    bool del = strcmp(rq->method, "DELETE") == 0;
    char err[AVISIM_ERR_LEN];

    if (strcmp(what, "state") == 0 && get) {
        char *base = avisim_default_base(sim);
        avisim_reply_json(rp, 200, base ? avisim_store_state(&sim->store, base) : NULL);
        free(base);
    } else if (strcmp(what, "log") == 0 && get) {
        const char *since = avisim_args_get(rq->args, rq->n_args, "since");
        avisim_reply_json(rp, 200,
                          avisim_log_json(&sim->log, since ? strtoull(since, NULL, 10) : 0));
    } else if (strcmp(what, "log") == 0 && del) {
        avisim_log_clear(&sim->log);
        avisim_reply_json(rp, 200, json_object());
    } else if (strcmp(what, "counters") == 0 && get) {
        avisim_reply_json(rp, 200, avisim_log_counters_json(&sim->log));
    } else if (strcmp(what, "counters") == 0 && del) {
        json_object_clear(sim->log.counters);
        sim->log.total = 0;
        avisim_reply_json(rp, 200, json_object());
    } else if (strcmp(what, "sessions") == 0 && get) {
        avisim_reply_json(rp, 200,
                          json_pack("{s:i}", "active",
                                    (int)avisim_session_active(&sim->sessions, avisim_mono_ms())));
    } else if (strcmp(what, "faults") == 0 && get) {
        avisim_reply_json(rp, 200, avisim_faults_json(&sim->faults));
    } else if (strcmp(what, "faults") == 0 && del) {
        avisim_faults_clear(&sim->faults);
        avisim_reply_json(rp, 200, avisim_faults_json(&sim->faults));
    } else if (strcmp(what, "faults") == 0 && strcmp(rq->method, "POST") == 0) {
        struct avisim_session_faults once = {0};
        json_t *cfg = rq->json ? json_incref(rq->json) : json_object();
        int rc = rq->json_bad ? 400 : avisim_faults_set(&sim->faults, cfg, &once, err, sizeof(err));
        json_decref(cfg);
        if (rq->json_bad)
            snprintf(err, sizeof(err), "Invalid JSON: %s", rq->json_error);
        if (rc) {
            avisim_reply_error(rp, rc, "%s", err);
            return;
        }
        if (once.expire)
            avisim_session_end_all(&sim->sessions);
        if (once.invalidate)
            avisim_session_invalidate_all(&sim->sessions);
        avisim_reply_json(rp, 200, avisim_faults_json(&sim->faults));
    } else {
        avisim_reply_error(rp, 404, "Not found");
    }
}

/* ---- MHD plumbing --------------------------------------------------------- */

static enum MHD_Result send_reply(struct request *rq, const struct avisim_reply *rp,
                                  const struct cookie_set *cs)
{
    size_t len = rp->body ? strlen(rp->body) : 0;
    char *copy = len ? malloc(len) : NULL;
    if (len && !copy)
        return MHD_NO;
    if (len)
        memcpy(copy, rp->body, len);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, copy, len ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(copy);
        return MHD_NO;
    }
    if (rp->status != 204)
        MHD_add_response_header(r, "Content-Type",
                                rp->content_type ? rp->content_type : "application/json");
    if (rp->location)
        MHD_add_response_header(r, "Location", rp->location);
    if (rq->route == ROUTE_API || rq->route == ROUTE_LOGIN)
        MHD_add_response_header(r, "AVI_API_VERSION",
                                rq->api_version ? rq->api_version : rq->sim->version);
    for (int i = 0; cs && i < 3; i++)
        if (cs->items[i])
            MHD_add_response_header(r, "Set-Cookie", cs->items[i]);
    if (rq->basic_auth) /* as recorded: a Basic-auth call gets no session */
        MHD_add_response_header(r, "Set-Cookie", "sessionid=None; HttpOnly; Path=/");
    enum MHD_Result ret = MHD_queue_response(rq->conn, (unsigned)rp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void request_parse(struct request *rq, const char *url, struct conn_ctx *ctx)
{
    struct avisim *sim = rq->sim;
    const char *host = header(rq, "Host");

    if (host_ok(host))
        snprintf(rq->base, sizeof(rq->base), "%s://%s", sim->tls ? "https" : "http", host);
    else
        snprintf(rq->base, sizeof(rq->base), "%s://127.0.0.1:%d", sim->tls ? "https" : "http",
                 sim->port);
    rq->too_large = ctx->too_large;
    rq->body = ctx->body.data ? ctx->body.data : "";
    rq->body_len = ctx->body.len;
    if (normalise_path(url, rq->path, sizeof(rq->path)))
        rq->path[0] = '\0';
    if (strcmp(rq->path, "/login") == 0)
        rq->route = ROUTE_LOGIN;
    else if (strcmp(rq->path, "/logout") == 0)
        rq->route = ROUTE_LOGOUT;
    else if (strncmp(rq->path, "/api/", 5) == 0 && rq->path[5])
        rq->route = ROUTE_API;
    else if (strncmp(rq->path, "/_sim/", 6) == 0)
        rq->route = ROUTE_SIM;
    if (rq->route == ROUTE_API) {
        const char *seg1 = rq->path + strlen("/api/");
        size_t len1 = strcspn(seg1, "/");
        snprintf(rq->log_type, sizeof(rq->log_type), "%.*s", (int)(len1 < 63 ? len1 : 63), seg1);
    } else if (rq->route == ROUTE_LOGIN || rq->route == ROUTE_LOGOUT) {
        snprintf(rq->log_type, sizeof(rq->log_type), "%s", rq->path + 1);
    }
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, collect_arg, rq);
    rq->api_version = header(rq, "X-Avi-Version");
    if (rq->api_version && strlen(rq->api_version) > 64)
        rq->api_version = "invalid";
    if (rq->body_len && !rq->too_large) {
        json_error_t je;
        rq->json = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
        if (!rq->json) {
            rq->json_bad = true;
            snprintf(rq->json_error, sizeof(rq->json_error), "%.120s", je.text);
        }
    }
    rq->log_body = json_incref(rq->json);
}

static void request_free(struct request *rq)
{
    for (size_t i = 0; i < rq->n_args; i++) {
        free(rq->args[i].key);
        free(rq->args[i].value);
    }
    json_decref(rq->json);
    json_decref(rq->log_body);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Drops and latency apply to /login and /logout too; everything else only
 * to /api. */
static enum MHD_Result handle(struct avisim *sim, struct MHD_Connection *conn, const char *url,
                              const char *method, struct conn_ctx *ctx)
{
    struct request rq = {.sim = sim, .conn = conn, .method = method};
    struct avisim_reply rp = {0};
    struct cookie_set cs = {{NULL}};
    enum MHD_Result ret;
    bool faultable;
    bool drop = false;
    bool drop_response = false;
    int latency = 0;

    request_parse(&rq, url, ctx);
    faultable = rq.route == ROUTE_API || rq.route == ROUTE_LOGIN || rq.route == ROUTE_LOGOUT;
    if (faultable) {
        pthread_mutex_lock(&sim->lock);
        drop = avisim_faults_roll(&sim->faults, sim->faults.drop_rate);
        drop_response = !drop && avisim_faults_roll(&sim->faults, sim->faults.drop_response_rate);
        latency = sim->faults.latency_ms;
        pthread_mutex_unlock(&sim->lock);
    }
    if (latency > 0)
        sleep_ms(latency);

    pthread_mutex_lock(&sim->lock);
    if (drop) {
        rp.status = 0;
    } else if (rq.too_large) {
        avisim_reply_error(&rp, 413, "Request body larger than %u bytes", AVISIM_MAX_BODY);
    } else if (rq.too_many_args) {
        avisim_reply_error(&rp, 400, "More than %d query parameters", AVISIM_MAX_ARGS);
    } else if (rq.route == ROUTE_LOGIN) {
        handle_login(&rq, &rp, &cs);
    } else if (rq.route == ROUTE_LOGOUT) {
        handle_logout(&rq, &rp);
    } else if (rq.route == ROUTE_API) {
        handle_api(&rq, &rp);
        if (rq.session_id[0])
            set_session_cookies(&cs, rq.session_id, sim->tls);
    } else if (rq.route == ROUTE_SIM) {
        handle_sim(&rq, &rp);
    } else {
        avisim_reply_error(&rp, 404, "Not found");
    }
    if (faultable) {
        /* The ring keeps AVISIM_LOG_CAP bodies; huge ones are summarised so
         * the log's memory stays bounded. */
        if (rq.body_len > LOG_BODY_MAX) {
            char note[64];
            snprintf(note, sizeof(note), "<%zu bytes omitted>", rq.body_len);
            json_decref(rq.log_body);
            rq.log_body = json_string(note);
        }
        avisim_log_add(&sim->log, method, rq.log_type, rp.log_name, rp.log_uuid, rp.status,
                       rq.log_body);
    }
    pthread_mutex_unlock(&sim->lock);

    /* MHD_NO closes the connection without an answer. */
    ret = drop || drop_response ? MHD_NO : send_reply(&rq, &rp, &cs);
    for (int i = 0; i < 3; i++)
        free(cs.items[i]);
    avisim_reply_free(&rp);
    request_free(&rq);
    return ret;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    struct conn_ctx *ctx = *con_cls;
    (void)version;
    if (!ctx) {
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
            return MHD_NO;
        avisim_buf_init(&ctx->body, AVISIM_MAX_BODY);
        *con_cls = ctx;
        return MHD_YES;
    }
    if (*upload_size) {
        /* Past the cap the rest is read and discarded, then answered 413. */
        if (!ctx->too_large && avisim_buf_add(&ctx->body, upload, *upload_size)) {
            ctx->too_large = true;
            avisim_buf_free(&ctx->body);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return handle(cls, conn, url, method, ctx);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_ctx *ctx = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (ctx) {
        avisim_buf_free(&ctx->body);
        free(ctx);
        *con_cls = NULL;
    }
}

char *avisim_default_base(const struct avisim *sim)
{
    return avisim_strdupf("%s://127.0.0.1:%d", sim->tls ? "https" : "http", sim->port);
}

int avisim_http_start(struct avisim *sim, int port)
{
    struct sockaddr_in addr = {0};
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;

    sim->port = port;
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (sim->tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
            return -ENOTSUP;
        sim->daemon = MHD_start_daemon(
            flags | MHD_USE_TLS, 0, NULL, NULL, access_cb, sim, MHD_OPTION_SOCK_ADDR, &addr,
            MHD_OPTION_NOTIFY_COMPLETED, completed_cb, sim, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)CONNECTION_LIMIT, MHD_OPTION_HTTPS_MEM_KEY, sim->tls_key_pem,
            MHD_OPTION_HTTPS_MEM_CERT, sim->tls_cert_pem, MHD_OPTION_END);
    } else {
        sim->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, access_cb, sim, MHD_OPTION_SOCK_ADDR, &addr,
            MHD_OPTION_NOTIFY_COMPLETED, completed_cb, sim, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)CONNECTION_LIMIT, MHD_OPTION_END);
    }
    if (!sim->daemon)
        return -EIO;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(sim->daemon, MHD_DAEMON_INFO_BIND_PORT);
    sim->port = info ? info->port : port;
    return 0;
}

void avisim_http_stop(struct avisim *sim)
{
    if (sim->daemon) {
        MHD_stop_daemon(sim->daemon);
        sim->daemon = NULL;
    }
}
