/* avi_session.c — the Avi Controller's glue on the HTTP core.
 *
 * What the controller expects (shared/research/avi_api.md §1): POST /login
 * with {"username", "password"|"token"} sets the session cookies and a
 * csrftoken cookie; every later request carries the cookies, X-CSRFToken
 * (the csrftoken value), Referer, X-Avi-Version and X-Avi-Tenant. A session
 * dies after 15 idle minutes or a controller restart: the answer is 401 and
 * the cure is one fresh login.
 *
 * Invariants:
 *  - every call is in exactly one place: the waiting queue, on the wire
 *    (call->http set), or being answered; it is freed once, after its fn;
 *  - `logged_in` is true only after a 200 from /login and false again as
 *    soon as a call sent under the current login sees 401/419; at most one
 *    login is on the wire, and no call goes out while none succeeded;
 *  - all transfers share one cookie jar (a curl share handle), so a login
 *    serves every connection;
 *  - nothing sleeps: a wait is a due time (call->due_ms, paused_until_ms)
 *    that avi_session_timeout_ms reports to the loop. */
#include "syncer/avi_session.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/http.h"
#include "common/log.h"

#define SESSION_URL_MAX 8192
#define SESSION_CSRF_MAX 256
#define SESSION_MESSAGE_MAX 512
#define SESSION_ERROR_MAX 1024
#define SESSION_CONNECT_TIMEOUT_MS 5000L
#define SESSION_TIMEOUT_MS 30000L
#define SESSION_DEFAULT_PARALLEL CONFIG_PARALLEL_DEFAULT
#define SESSION_PAUSE_INITIAL_MS 500
#define SESSION_PAUSE_MAX_MS 10000
#define SESSION_WAIT_SLICE_MS 100 /* blocking calls look at the abort flag this often */
#define SESSION_THROTTLED_MAX 16  /* 429s one call sits out before it is answered transient */

typedef struct {
    avi_call_t *head;
    avi_call_t *tail;
} call_list;

struct avi_call {
    avi_session_t *session;
    char *method;
    char *path;
    char *body;          /* serialised JSON, NULL for none */
    avi_answer_fn fn;
    void *payload;
    unsigned attempts;   /* transient answers so far */
    unsigned throttled;  /* 429s so far: the session's wait, not this call's failure */
    bool replayed;       /* sent again after a fresh login */
    unsigned generation; /* the login it went out under */
    int64_t due_ms;      /* not before (its own retry backoff) */
    backoff_t backoff;
    http_request_t *http; /* on the wire */
    avi_call_t *prev;
    avi_call_t *next;
};

struct avi_session {
    http_client_t *http;
    CURLSH *share;      /* the cookie jar every transfer uses */
    CURL *jar;          /* an idle handle on the share, to read and clear the jar */
    char *base;         /* "<scheme>://host[:port]" */
    char *referer;      /* base + "/" */
    char *tenant;
    char *username;
    char *password;     /* NULL when logging in with a token */
    char *token;
    char *version;
    char *ca_file;
    char csrf[SESSION_CSRF_MAX];
    char header_csrf[SESSION_CSRF_MAX]; /* csrftoken seen in a Set-Cookie header */

    bool logged_in;
    unsigned generation; /* counts successful logins */
    unsigned logins;
    http_request_t *login; /* the login on the wire */
    long login_status;     /* status of the last /login answer, 0 if none */
    bool login_refused;    /* the last login was answered with a final 4xx */
    char login_error[SESSION_ERROR_MAX]; /* why the last login failed */

    call_list waiting;
    call_list wire;
    unsigned n_wire;
    unsigned max_in_flight;
    bool pumping;
    bool pump_again;

    int64_t paused_until_ms; /* the whole session waits (429, upgrade, login failing) */
    unsigned window;         /* calls allowed on the wire: 1 after a pause, +1 per success */
    backoff_t pause_backoff;
    unsigned pauses;

    char error[SESSION_ERROR_MAX];     /* of the last blocking call */
    char message[SESSION_MESSAGE_MAX];
    unsigned attempts;
    int64_t retry_initial_ms;
    int64_t retry_max_ms;
    volatile sig_atomic_t *abort_flag;
};

/* ---- call lists ------------------------------------------------------------ */

static void list_push_back(call_list *l, avi_call_t *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void list_push_front(call_list *l, avi_call_t *c)
{
    c->prev = NULL;
    c->next = l->head;
    if (l->head)
        l->head->prev = c;
    else
        l->tail = c;
    l->head = c;
}

static void list_remove(call_list *l, avi_call_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

static void call_free(avi_call_t *c)
{
    free(c->method);
    free(c->path);
    free(c->body);
    free(c);
}

/* ---- construction ---------------------------------------------------------- */

static char *session_base_url(const char *host)
{
    size_t len = strlen(host);
    while (len > 0 && host[len - 1] == '/')
        len--;
    bool has_scheme = strncmp(host, "http://", 7) == 0 || strncmp(host, "https://", 8) == 0;
    size_t total = len + (has_scheme ? 0 : 8) + 1;
    char *base = malloc(total);
    if (!base)
        return NULL;
    snprintf(base, total, "%s%.*s", has_scheme ? "" : "https://", (int)len, host);
    return base;
}

static char *session_strdup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int avi_session_new(avi_session_t **out, const kv_config *cfg, const char *tenant)
{
    *out = NULL;
    if (!cfg->controller_host || !*cfg->controller_host) {
        log_error("avi session: key 'controllerHost' is required");
        return KV_ERR_INVALID;
    }
    bool have_password = cfg->username && cfg->password;
    bool have_token = cfg->username && cfg->auth_token;
    if (!have_password && !have_token) {
        log_error("avi session: credentials.username with credentials.password or "
                  "credentials.authToken are required");
        return KV_ERR_INVALID;
    }
    avi_session_t *s = calloc(1, sizeof *s);
    if (!s)
        return KV_ERR_NOMEM;
    s->attempts = 4;
    s->retry_initial_ms = 250;
    s->retry_max_ms = 2000;
    s->max_in_flight = cfg->controller_parallel > 0 ? (unsigned)cfg->controller_parallel
                                                    : SESSION_DEFAULT_PARALLEL;
    backoff_init(&s->pause_backoff, SESSION_PAUSE_INITIAL_MS, SESSION_PAUSE_MAX_MS);
    s->window = s->max_in_flight;
    s->base = session_base_url(cfg->controller_host);
    s->tenant = strdup(tenant ? tenant : (cfg->tenant_name ? cfg->tenant_name : "admin"));
    s->username = strdup(cfg->username);
    /* A token wins over a password when both are configured: tokens are
     * what a rotated secret holds. */
    s->token = session_strdup_or_null(cfg->auth_token);
    s->password = cfg->auth_token ? NULL : session_strdup_or_null(cfg->password);
    s->version = strdup(cfg->controller_version ? cfg->controller_version : "22.1.3");
    s->ca_file = session_strdup_or_null(cfg->controller_ca_file);
    if (!s->base || !s->tenant || !s->username || !s->version ||
        (cfg->auth_token && !s->token) || (!cfg->auth_token && !s->password) ||
        (cfg->controller_ca_file && !s->ca_file))
        goto fail_destroy;
    size_t referer_len = strlen(s->base) + 2;
    s->referer = malloc(referer_len);
    if (!s->referer)
        goto fail_destroy;
    snprintf(s->referer, referer_len, "%s/", s->base);
    /* As many connections as requests on the wire, and one for the login. */
    if (http_client_new(&s->http, (long)s->max_in_flight + 1) < 0)
        goto fail_destroy;
    s->share = curl_share_init();
    s->jar = curl_easy_init();
    if (!s->share || !s->jar)
        goto fail_destroy;
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
    curl_easy_setopt(s->jar, CURLOPT_SHARE, s->share);
    curl_easy_setopt(s->jar, CURLOPT_COOKIEFILE, "");
    *out = s;
    return KV_OK;

fail_destroy:
    avi_session_destroy(&s);
    return KV_ERR_NOMEM;
}

static void session_drop_list(call_list *l)
{
    while (l->head) {
        avi_call_t *c = l->head;
        list_remove(l, c);
        call_free(c);
    }
}

void avi_session_destroy(avi_session_t **session)
{
    avi_session_t *s = *session;
    if (!s)
        return;
    /* Transfers first: they use the share. */
    http_client_destroy(&s->http);
    session_drop_list(&s->waiting);
    session_drop_list(&s->wire);
    if (s->jar)
        curl_easy_cleanup(s->jar);
    if (s->share)
        curl_share_cleanup(s->share);
    free(s->base);
    free(s->referer);
    free(s->tenant);
    free(s->username);
    if (s->password)
        memset(s->password, 0, strlen(s->password));
    free(s->password);
    if (s->token)
        memset(s->token, 0, strlen(s->token));
    free(s->token);
    free(s->version);
    free(s->ca_file);
    free(s);
    *session = NULL;
}

const char *avi_session_base(const avi_session_t *s) { return s->base; }
const char *avi_session_tenant(const avi_session_t *s) { return s->tenant; }
const char *avi_session_error(const avi_session_t *s) { return s->error; }
const char *avi_session_message(const avi_session_t *s) { return s->message; }
unsigned avi_session_logins(const avi_session_t *s) { return s->logins; }
unsigned avi_session_pauses(const avi_session_t *s) { return s->pauses; }
unsigned avi_session_pending(const avi_session_t *s)
{
    unsigned n = s->n_wire;
    for (const avi_call_t *c = s->waiting.head; c; c = c->next)
        n++;
    return n;
}

void avi_session_set_retry(avi_session_t *s, unsigned attempts, int64_t initial_ms,
                           int64_t max_ms)
{
    s->attempts = attempts ? attempts : 1;
    s->retry_initial_ms = initial_ms;
    s->retry_max_ms = max_ms;
    /* Tests shorten every timer, the session's pause too. */
    backoff_init(&s->pause_backoff, initial_ms, max_ms);
}

void avi_session_set_parallel(avi_session_t *s, unsigned max_in_flight)
{
    s->max_in_flight = max_in_flight ? max_in_flight : 1;
    s->window = s->max_in_flight;
}

void avi_session_set_abort_flag(avi_session_t *s, volatile sig_atomic_t *flag)
{
    s->abort_flag = flag;
}

static bool session_aborted(const avi_session_t *s)
{
    return s->abort_flag && *s->abort_flag;
}

/* ---- one transfer ------------------------------------------------------------ */

/* Every transfer: TLS as configured, the shared cookie jar. */
static int session_setup(void *payload, CURL *easy)
{
    avi_session_t *s = payload;
    curl_easy_setopt(easy, CURLOPT_SHARE, s->share);
    curl_easy_setopt(easy, CURLOPT_COOKIEFILE, ""); /* in-memory cookie engine */
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->ca_file)
        curl_easy_setopt(easy, CURLOPT_CAINFO, s->ca_file);
    return KV_OK;
}

static struct curl_slist *session_headers(const avi_session_t *s, bool with_csrf)
{
    char line[SESSION_CSRF_MAX + 512];
    struct curl_slist *list = NULL;
    struct curl_slist *next;
#define SESSION_ADD_HEADER(...)                                                   \
    do {                                                                          \
        int n_ = snprintf(line, sizeof line, __VA_ARGS__);                        \
        if (n_ < 0 || (size_t)n_ >= sizeof line)                                  \
            goto fail_free_list;                                                  \
        next = curl_slist_append(list, line);                                     \
        if (!next)                                                                \
            goto fail_free_list;                                                  \
        list = next;                                                              \
    } while (0)
    SESSION_ADD_HEADER("Content-Type: application/json");
    SESSION_ADD_HEADER("Accept: application/json");
    SESSION_ADD_HEADER("X-Avi-Version: %s", s->version);
    SESSION_ADD_HEADER("X-Avi-Tenant: %s", s->tenant);
    SESSION_ADD_HEADER("Referer: %s", s->referer);
    SESSION_ADD_HEADER("Expect:"); /* no 100-continue round trip on large bodies */
    if (with_csrf && s->csrf[0])
        SESSION_ADD_HEADER("X-CSRFToken: %s", s->csrf);
#undef SESSION_ADD_HEADER
    return list;

fail_free_list:
    curl_slist_free_all(list);
    return NULL;
}

/* Starts one transfer to base + path. */
static int session_send(avi_session_t *s, const char *method, const char *path, const char *body,
                        bool with_csrf, http_header_fn on_header, http_done_fn on_done,
                        void *payload, http_request_t **out)
{
    char url[SESSION_URL_MAX];
    int n = snprintf(url, sizeof url, "%s%s", s->base, path);
    if (n < 0 || (size_t)n >= sizeof url)
        return KV_ERR_TOO_LARGE;
    struct curl_slist *headers = session_headers(s, with_csrf);
    if (!headers)
        return KV_ERR_NOMEM;
    http_request_spec spec = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .body_max = AVI_SESSION_MAX_BODY,
        .connect_timeout_ms = SESSION_CONNECT_TIMEOUT_MS,
        .timeout_ms = SESSION_TIMEOUT_MS,
        .on_header = on_header,
        .setup = session_setup,
        .setup_payload = s,
        .on_done = on_done,
        .payload = payload,
    };
    return http_client_start(s->http, &spec, out);
}

/* ---- reading answers ----------------------------------------------------------- */

/* The controller's text out of an error body: {"error": ...}, {"detail":
 * ...}, a JSON string, or the bare text ("CSRF token missing or
 * incorrect."). Whitespace at the end is dropped; the result is cut to fit
 * and kept on one line. */
static void session_message_of(char *out, size_t out_len, const json_t *parsed, const char *body,
                               size_t body_len)
{
    const char *text = NULL;
    size_t len = 0;
    if (json_is_object(parsed)) {
        const json_t *e = json_object_get(parsed, "error");
        if (!json_is_string(e))
            e = json_object_get(parsed, "detail");
        if (json_is_string(e)) {
            text = json_string_value(e);
            len = json_string_length(e);
        }
    } else if (json_is_string(parsed)) {
        text = json_string_value(parsed);
        len = json_string_length(parsed);
    }
    if (!text && body_len > 0) {
        text = body;
        len = body_len;
    }
    out[0] = '\0';
    if (!text)
        return;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (len >= out_len)
        len = out_len - 1;
    memcpy(out, text, len);
    out[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (out[i] == '\n' || out[i] == '\r')
            out[i] = ' ';
}

static json_t *session_parse(const http_response *r)
{
    if (r->body_len == 0)
        return NULL;
    json_error_t jerr;
    return json_loadb(r->body, r->body_len, JSON_DECODE_ANY, &jerr);
}

/* Remembers a csrftoken from Set-Cookie, in case the cookie engine declines
 * to store it (a Secure cookie over plain HTTP, for one). */
static void session_login_header(void *payload, const char *ptr, size_t n)
{
    avi_session_t *s = payload;
    static const char prefix[] = "set-cookie:";
    if (n <= sizeof prefix - 1 || strncasecmp(ptr, prefix, sizeof prefix - 1) != 0)
        return;
    size_t i = sizeof prefix - 1;
    while (i < n && (ptr[i] == ' ' || ptr[i] == '\t'))
        i++;
    static const char name[] = "csrftoken=";
    if (n - i < sizeof name - 1 || strncmp(ptr + i, name, sizeof name - 1) != 0)
        return;
    i += sizeof name - 1;
    size_t start = i;
    while (i < n && ptr[i] != ';' && ptr[i] != '\r' && ptr[i] != '\n')
        i++;
    size_t len = i - start;
    if (len > 0 && len < sizeof s->header_csrf) {
        memcpy(s->header_csrf, ptr + start, len);
        s->header_csrf[len] = '\0';
    }
}

/* Reads csrftoken from the shared cookie jar (or the header seen at login). */
static void session_take_csrf(avi_session_t *s)
{
    struct curl_slist *cookies = NULL;
    s->csrf[0] = '\0';
    if (curl_easy_getinfo(s->jar, CURLINFO_COOKIELIST, &cookies) == CURLE_OK) {
        /* Netscape format: domain, tailmatch, path, secure, expires, name, value. */
        for (struct curl_slist *c = cookies; c; c = c->next) {
            const char *field = c->data;
            for (int i = 0; i < 5 && field; i++) {
                field = strchr(field, '\t');
                if (field)
                    field++;
            }
            if (!field || strncmp(field, "csrftoken\t", 10) != 0)
                continue;
            snprintf(s->csrf, sizeof s->csrf, "%s", field + 10);
        }
        curl_slist_free_all(cookies);
    }
    if (!s->csrf[0] && s->header_csrf[0])
        snprintf(s->csrf, sizeof s->csrf, "%s", s->header_csrf);
}

/* ---- answering calls --------------------------------------------------------------- */

static void session_pump(avi_session_t *s);

/* Takes c out of its list and gives fn the answer; c is freed after. */
static void session_answer(avi_session_t *s, avi_call_t *c, call_list *from, int rc, long status,
                           json_t *response, const char *message)
{
    char error[SESSION_ERROR_MAX] = "";
    (void)s; /* every caller names the session the call is in */
    list_remove(from, c);
    if (rc != KV_OK) {
        if (status)
            snprintf(error, sizeof error, "%s %.200s → %ld: %s", c->method, c->path, status,
                     message);
        else
            snprintf(error, sizeof error, "%s %.200s: %s", c->method, c->path, message);
    }
    avi_answer a = {
        .rc = rc,
        .status = status,
        .response = response,
        .error = error,
        .message = rc == KV_OK ? "" : message,
    };
    c->fn(c->payload, &a);
    call_free(c);
}

/* Every waiting call is answered with the same failure. */
static void session_answer_all_waiting(avi_session_t *s, int rc, long status, const char *message)
{
    while (s->waiting.head)
        session_answer(s, s->waiting.head, &s->waiting, rc, status, NULL, message);
}

/* The whole session waits; the first call after the wait goes alone. */
static void session_pause(avi_session_t *s, int64_t now, int64_t retry_after_ms, const char *why)
{
    int64_t wait = backoff_next_ms(&s->pause_backoff);
    if (retry_after_ms > wait)
        wait = retry_after_ms;
    if (now + wait > s->paused_until_ms) {
        s->paused_until_ms = now + wait;
        s->pauses++;
        log_warn("avi session: %s; holding every request for %lld ms", why, (long long)wait);
    }
    s->window = 1; /* then one probe, and more as calls get through */
}

static bool session_is_upgrade(long status, const char *message)
{
    return status == 403 && strstr(message, "Configuration is disallowed during upgrade");
}

static void session_on_login(void *payload, const http_response *r)
{
    avi_session_t *s = payload;
    char message[SESSION_MESSAGE_MAX];
    int64_t now = clock_now_ms();
    s->login = NULL;
    s->login_status = r->status;
    s->login_refused = false;
    if (r->curl_code == CURLE_OK && r->status == 200) {
        session_take_csrf(s);
        if (!s->csrf[0])
            log_warn("avi session: login to %s gave no csrftoken cookie; writes may be refused",
                     s->base);
        s->logged_in = true;
        s->generation++;
        s->logins++;
        log_info("avi session: logged in to %s as %s (tenant %s)", s->base, s->username,
                 s->tenant);
        session_pump(s);
        return;
    }
    json_t *parsed = session_parse(r);
    if (r->curl_code != CURLE_OK)
        snprintf(message, sizeof message, "%s", r->error ? r->error : "transfer failed");
    else
        session_message_of(message, sizeof message, parsed, r->body, r->body_len);
    json_decref(parsed);
    char text[SESSION_MESSAGE_MAX + 256];
    snprintf(text, sizeof text, "login as %s: %s", s->username, message);
    if (r->status)
        snprintf(s->login_error, sizeof s->login_error, "POST /login as %s → %ld: %s",
                 s->username, r->status, message);
    else
        snprintf(s->login_error, sizeof s->login_error, "POST /login as %s: %s", s->username,
                 message);
    bool transient = r->curl_code != CURLE_OK || r->status >= 500 || r->status == 429;
    if (!transient) {
        /* Wrong credentials: retrying now will not help. */
        s->login_refused = true;
        log_warn("avi session: POST /login as %s → %ld: %s", s->username, r->status, message);
        session_answer_all_waiting(s, KV_ERR_HTTP, r->status, text);
        session_pump(s);
        return;
    }
    /* The controller is away or busy: each waiting call spends an attempt,
     * and the session waits before the next login. */
    for (avi_call_t *c = s->waiting.head, *next; c; c = next) {
        next = c->next;
        if (++c->attempts >= s->attempts || session_aborted(s))
            session_answer(s, c, &s->waiting, KV_ERR_AGAIN, r->status, NULL, text);
    }
    session_pause(s, now, r->retry_after_ms, text);
    session_pump(s);
}

static int session_start_login(avi_session_t *s)
{
    json_t *body = NULL;
    char *payload = NULL;
    int rc = KV_ERR_NOMEM;
    s->logged_in = false;
    s->csrf[0] = '\0';
    s->header_csrf[0] = '\0';
    curl_easy_setopt(s->jar, CURLOPT_COOKIELIST, "ALL"); /* old session cookies go */
    body = json_pack("{s:s, s:s}", "username", s->username, s->token ? "token" : "password",
                     s->token ? s->token : s->password);
    if (body)
        payload = json_dumps(body, JSON_COMPACT);
    if (payload)
        rc = session_send(s, "POST", "/login", payload, false, session_login_header,
                          session_on_login, s, &s->login);
    if (payload) {
        memset(payload, 0, strlen(payload)); /* it holds the password */
        free(payload);
    }
    json_decref(body);
    return rc;
}

static void session_on_call_done(void *payload, const http_response *r);

static int session_launch(avi_session_t *s, avi_call_t *c)
{
    int rc = session_send(s, c->method, c->path, c->body, true, NULL, session_on_call_done, c,
                          &c->http);
    if (rc < 0)
        return rc;
    c->generation = s->generation;
    list_remove(&s->waiting, c);
    list_push_back(&s->wire, c);
    s->n_wire++;
    return KV_OK;
}

static avi_call_t *session_first_due(avi_session_t *s, int64_t now)
{
    for (avi_call_t *c = s->waiting.head; c; c = c->next)
        if (c->due_ms <= now)
            return c;
    return NULL;
}

/* Calls allowed on the wire now. */
static unsigned session_window(const avi_session_t *s)
{
    return s->window < s->max_in_flight ? s->window : s->max_in_flight;
}

/* Sends what may go now: a login when none holds, then due calls up to the
 * window (the bound; one probe after a pause, opening up again as calls
 * get through, so a throttled controller is not met by a burst). Re-entered from answers: the
 * outer run loops again instead. */
static void session_pump(avi_session_t *s)
{
    if (s->pumping) {
        s->pump_again = true;
        return;
    }
    s->pumping = true;
    do {
        s->pump_again = false;
        int64_t now = clock_now_ms();
        if (!s->waiting.head || now < s->paused_until_ms)
            break;
        if (!s->logged_in) {
            if (!s->login && session_start_login(s) < 0)
                session_answer_all_waiting(s, KV_ERR_NOMEM, 0, "cannot start the login");
            continue;
        }
        for (;;) {
            if (s->n_wire >= session_window(s))
                break;
            avi_call_t *c = session_first_due(s, now);
            if (!c)
                break;
            int rc = session_launch(s, c);
            if (rc < 0)
                session_answer(s, c, &s->waiting, rc, 0, NULL, kv_strerror(rc));
        }
    } while (s->pump_again);
    s->pumping = false;
}

/* Back into the queue: a replay goes first, a retry waits its backoff. */
static void session_requeue(avi_session_t *s, avi_call_t *c, bool front, int64_t due_ms)
{
    list_remove(&s->wire, c);
    c->due_ms = due_ms;
    if (front)
        list_push_front(&s->waiting, c);
    else
        list_push_back(&s->waiting, c);
}

static void session_on_call_done(void *payload, const http_response *r)
{
    avi_call_t *c = payload;
    avi_session_t *s = c->session;
    char message[SESSION_MESSAGE_MAX];
    int64_t now = clock_now_ms();
    long status = r->status;
    json_t *parsed = NULL;

    c->http = NULL;
    s->n_wire--;
    if (r->body_too_large) {
        snprintf(message, sizeof message, "response larger than %u bytes", AVI_SESSION_MAX_BODY);
        session_answer(s, c, &s->wire, KV_ERR_TOO_LARGE, 0, NULL, message);
        goto out_pump;
    }
    if (r->curl_code != CURLE_OK) {
        /* No answer: this call alone is retried after its backoff. */
        snprintf(message, sizeof message, "%s", r->error ? r->error : "transfer failed");
        status = 0;
        goto out_transient;
    }
    parsed = session_parse(r);
    if (status >= 200 && status < 300) {
        if (s->window < s->max_in_flight)
            s->window++;
        backoff_reset(&s->pause_backoff);
        session_answer(s, c, &s->wire, KV_OK, status, parsed, "");
        goto out_pump;
    }
    session_message_of(message, sizeof message, parsed, r->body, r->body_len);
    if (status == 401 || status == 419) {
        if (c->generation == s->generation && s->logged_in) {
            /* Session expired or the controller restarted: one login for
             * the session, then the waiting calls go out again. */
            log_info("avi session: %s %s → %ld, logging in again", c->method, c->path, status);
            s->logged_in = false;
        }
        if (!c->replayed) {
            c->replayed = true;
            session_requeue(s, c, true, now);
            goto out_pump;
        }
        s->logged_in = false; /* still refused after a fresh login */
        session_answer(s, c, &s->wire, KV_ERR_HTTP, status, parsed, message);
        goto out_pump;
    }
    if (session_is_upgrade(status, message)) {
        /* Nothing can be written until the upgrade ends: the session
         * waits, and this call's model is retried by its owner. */
        session_pause(s, now, r->retry_after_ms, message);
        session_answer(s, c, &s->wire, KV_ERR_HTTP, status, parsed, message);
        goto out_pump;
    }
    if (status == 429 || (status >= 500 && r->retry_after_ms >= 0)) {
        session_pause(s, now, r->retry_after_ms, message);
        if (++c->throttled >= SESSION_THROTTLED_MAX) {
            session_answer(s, c, &s->wire, KV_ERR_AGAIN, status, parsed, message);
            goto out_pump;
        }
        session_requeue(s, c, true, now);
        goto out_pump;
    }
    if (status >= 500)
        goto out_transient;
    if (s->window < s->max_in_flight)
        s->window++; /* the controller answered: a refusal is not a pause */
    session_answer(s, c, &s->wire, KV_ERR_HTTP, status, parsed, message);
    goto out_pump;

out_transient:
    if (++c->attempts >= s->attempts || session_aborted(s)) {
        session_answer(s, c, &s->wire, KV_ERR_AGAIN, status, parsed, message);
    } else {
        int64_t wait = backoff_next_ms(&c->backoff);
        log_warn("avi session: %s %.200s → %ld: %s; retry %u/%u in %lld ms", c->method, c->path,
                 status, message, c->attempts, s->attempts - 1, (long long)wait);
        session_requeue(s, c, false, now + wait);
    }
out_pump:
    json_decref(parsed);
    session_pump(s);
}

/* ---- the asynchronous interface ------------------------------------------------------- */

int avi_session_start(avi_session_t *s, const char *method, const char *path, const json_t *body,
                      avi_answer_fn fn, void *payload, avi_call_t **out)
{
    if (out)
        *out = NULL;
    avi_call_t *c = calloc(1, sizeof *c);
    if (!c)
        return KV_ERR_NOMEM;
    c->session = s;
    c->method = strdup(method);
    c->path = strdup(path);
    c->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    c->fn = fn;
    c->payload = payload;
    backoff_init(&c->backoff, s->retry_initial_ms, s->retry_max_ms);
    if (!c->method || !c->path || (body && !c->body)) {
        call_free(c);
        return KV_ERR_NOMEM;
    }
    if (strlen(s->base) + strlen(path) >= SESSION_URL_MAX) {
        call_free(c);
        return KV_ERR_TOO_LARGE;
    }
    list_push_back(&s->waiting, c);
    if (out)
        *out = c;
    session_pump(s);
    return KV_OK;
}

void avi_session_cancel(avi_session_t *s, avi_call_t **call)
{
    avi_call_t *c = *call;
    *call = NULL;
    if (!c)
        return;
    if (c->http) {
        http_client_cancel(s->http, &c->http);
        list_remove(&s->wire, c);
        s->n_wire--;
    } else {
        list_remove(&s->waiting, c);
    }
    call_free(c);
    session_pump(s);
}

int avi_session_pollitems(const avi_session_t *s, zmq_pollitem_t *items, int max)
{
    return http_client_pollitems(s->http, items, max);
}

int64_t avi_session_timeout_ms(const avi_session_t *s, int64_t now)
{
    int64_t wait = http_client_timeout_ms(s->http, now);
    if (!s->waiting.head)
        return wait;
    int64_t due = INT64_MAX;
    if (now < s->paused_until_ms) {
        due = s->paused_until_ms;
    } else if (s->logged_in && s->n_wire < session_window(s)) {
        for (const avi_call_t *c = s->waiting.head; c; c = c->next)
            if (c->due_ms < due)
                due = c->due_ms;
    }
    if (due != INT64_MAX) {
        int64_t until = due > now ? due - now : 0;
        if (until < wait)
            wait = until;
    }
    return wait;
}

void avi_session_step(avi_session_t *s, int64_t now)
{
    http_client_step(s->http, now);
    session_pump(s); /* retries whose time came, the end of a pause */
}

/* ---- the blocking interface ----------------------------------------------------------- */

typedef struct {
    bool done;
    int rc;
    long status;
    json_t *response;
    avi_session_t *session;
} session_wait;

static void session_on_blocking_answer(void *payload, const avi_answer *a)
{
    session_wait *w = payload;
    w->done = true;
    w->rc = a->rc;
    w->status = a->status;
    w->response = json_incref(a->response);
    snprintf(w->session->error, sizeof w->session->error, "%s", a->error);
    snprintf(w->session->message, sizeof w->session->message, "%s", a->message);
}

bool avi_session_run_until(avi_session_t *s, const bool *done)
{
    while (!*done) {
        if (session_aborted(s))
            return false;
        int64_t wait = avi_session_timeout_ms(s, clock_now_ms());
        if (wait > SESSION_WAIT_SLICE_MS)
            wait = SESSION_WAIT_SLICE_MS;
        http_client_wait(s->http, wait);
        session_pump(s);
    }
    return true;
}

int avi_session_request(avi_session_t *s, const char *method, const char *path,
                        const json_t *body, long *status_out, json_t **response)
{
    session_wait w = {.session = s};
    avi_call_t *call = NULL;
    if (response)
        *response = NULL;
    if (status_out)
        *status_out = 0;
    s->error[0] = '\0';
    s->message[0] = '\0';
    int rc = avi_session_start(s, method, path, body, session_on_blocking_answer, &w, &call);
    if (rc < 0) {
        snprintf(s->error, sizeof s->error, "%s %.200s: %s", method, path, kv_strerror(rc));
        return rc;
    }
    if (!avi_session_run_until(s, &w.done)) {
        avi_session_cancel(s, &call);
        snprintf(s->error, sizeof s->error, "%s %.200s: interrupted", method, path);
        return KV_ERR_AGAIN;
    }
    if (status_out)
        *status_out = w.status;
    if (response)
        *response = w.response;
    else
        json_decref(w.response);
    return w.rc;
}

int avi_session_login(avi_session_t *s)
{
    s->error[0] = '\0';
    s->message[0] = '\0';
    if (s->login)
        http_client_cancel(s->http, &s->login);
    unsigned logins = s->logins;
    /* A queued call is what makes the pump log in; the login alone is
     * started here and waited for. */
    int rc = session_start_login(s);
    if (rc < 0)
        return rc;
    while (s->login) {
        if (session_aborted(s)) {
            http_client_cancel(s->http, &s->login);
            snprintf(s->error, sizeof s->error, "POST /login: interrupted");
            return KV_ERR_AGAIN;
        }
        http_client_wait(s->http, SESSION_WAIT_SLICE_MS);
    }
    if (s->logins != logins)
        return KV_OK;
    snprintf(s->error, sizeof s->error, "%s", s->login_error);
    return s->login_refused ? KV_ERR_HTTP : KV_ERR_AGAIN;
}

int avi_session_escape(char *out, size_t out_len, const char *in)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
                     *p == '~';
        size_t need = plain ? 1 : 3;
        if (n + need >= out_len)
            return KV_ERR_TOO_LARGE;
        if (plain) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    if (out_len == 0)
        return KV_ERR_TOO_LARGE;
    out[n] = '\0';
    return (int)n;
}

#define SESSION_MAX_PAGES 100000 /* 20 M objects at 200 a page: beyond, the controller loops */

int avi_session_list(avi_session_t *s, const char *first_path, avi_session_object_fn fn,
                     void *payload)
{
    char path[SESSION_URL_MAX];
    int rc = snprintf(path, sizeof path, "%s", first_path);
    if (rc < 0 || (size_t)rc >= sizeof path)
        return KV_ERR_TOO_LARGE;
    for (int page = 0; page < SESSION_MAX_PAGES; page++) {
        json_t *body = NULL;
        long status;
        rc = avi_session_request(s, "GET", path, NULL, &status, &body);
        if (rc < 0) {
            json_decref(body);
            return rc;
        }
        const json_t *results = json_object_get(body, "results");
        size_t index;
        const json_t *object;
        json_array_foreach(results, index, object) {
            rc = fn(object, payload);
            if (rc < 0) {
                json_decref(body);
                return rc;
            }
        }
        /* `next` is absolute ("https://host/api/pool?page=2&..."); only
         * its path and query are ours to follow. */
        const json_t *next = json_object_get(body, "next");
        const char *next_path = json_is_string(next) ? strstr(json_string_value(next), "/api/")
                                                     : NULL;
        if (!next_path || strcmp(next_path, path) == 0) {
            json_decref(body);
            return KV_OK;
        }
        rc = snprintf(path, sizeof path, "%s", next_path);
        json_decref(body);
        if (rc < 0 || (size_t)rc >= sizeof path)
            return KV_ERR_TOO_LARGE;
    }
    snprintf(s->error, sizeof s->error, "GET %.200s: listing did not end after %d pages",
             first_path, SESSION_MAX_PAGES);
    return KV_ERR_PROTOCOL;
}
