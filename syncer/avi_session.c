/* avi_session.c — libcurl REST client for one Avi Controller and tenant.
 *
 * What the controller expects (shared/research/avi_api.md §1): POST /login
 * with {"username", "password"|"token"} sets the session cookies and a
 * csrftoken cookie; every later request carries the cookies, X-CSRFToken
 * (the csrftoken value), Referer, X-Avi-Version and X-Avi-Tenant. A session
 * dies after 15 idle minutes or a controller restart: the answer is 401 and
 * the cure is one fresh login.
 *
 * Invariants: `logged_in` is true only after a 200 from /login and false
 * again as soon as any request sees 401; the response buffer never holds
 * more than AVI_SESSION_MAX_BODY bytes. */
#include "syncer/avi_session.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/dynbuf.h"
#include "common/error.h"
#include "common/log.h"

#define SESSION_URL_MAX 8192
#define SESSION_CSRF_MAX 256
#define SESSION_MESSAGE_MAX 512
#define SESSION_ERROR_MAX 1024
#define SESSION_CONNECT_TIMEOUT_S 5L
#define SESSION_TIMEOUT_S 30L

/* Response body with a hard maximum. */
typedef struct {
    dynbuf bytes;
    bool overflow; /* the body passed AVI_SESSION_MAX_BODY and was cut */
} session_buffer;

struct avi_session {
    CURL *curl;
    char *base;     /* "<scheme>://host[:port]" */
    char *referer;  /* base + "/" */
    char *tenant;
    char *username;
    char *password; /* NULL when logging in with a token */
    char *token;
    char *version;
    char *ca_file;
    char csrf[SESSION_CSRF_MAX];
    char header_csrf[SESSION_CSRF_MAX]; /* csrftoken seen in a Set-Cookie header */
    bool logged_in;
    unsigned logins;
    long login_status; /* status of the last /login answer, 0 if none */
    session_buffer body;
    char curl_error[CURL_ERROR_SIZE];
    char error[SESSION_ERROR_MAX];
    char message[SESSION_MESSAGE_MAX];
    unsigned attempts;
    int64_t retry_initial_ms;
    int64_t retry_max_ms;
    volatile sig_atomic_t *abort_flag;
};

/* ---- buffers and callbacks ----------------------------------------------- */

static size_t session_write_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    session_buffer *b = userdata;
    size_t n = size * nmemb;
    int rc = dynbuf_append(&b->bytes, ptr, n);
    if (rc == KV_ERR_TOO_LARGE)
        b->overflow = true;
    return rc == KV_OK ? n : 0; /* 0 aborts the transfer with CURLE_WRITE_ERROR */
}

/* Remembers a csrftoken from Set-Cookie, in case the cookie engine declines
 * to store it (a Secure cookie over plain HTTP, for one). */
static size_t session_read_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    avi_session_t *s = userdata;
    size_t n = size * nmemb;
    static const char prefix[] = "set-cookie:";
    if (n <= sizeof prefix - 1 || strncasecmp(ptr, prefix, sizeof prefix - 1) != 0)
        return n;
    size_t i = sizeof prefix - 1;
    while (i < n && (ptr[i] == ' ' || ptr[i] == '\t'))
        i++;
    static const char name[] = "csrftoken=";
    if (n - i < sizeof name - 1 || strncmp(ptr + i, name, sizeof name - 1) != 0)
        return n;
    i += sizeof name - 1;
    size_t start = i;
    while (i < n && ptr[i] != ';' && ptr[i] != '\r' && ptr[i] != '\n')
        i++;
    size_t len = i - start;
    if (len > 0 && len < sizeof s->header_csrf) {
        memcpy(s->header_csrf, ptr + start, len);
        s->header_csrf[len] = '\0';
    }
    return n;
}

static int session_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
                            curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    const avi_session_t *s = userdata;
    return s->abort_flag && *s->abort_flag ? 1 : 0;
}

static bool session_aborted(const avi_session_t *s)
{
    return s->abort_flag && *s->abort_flag;
}

/* Sleeps in short slices so that a signal ends the wait promptly. */
static void session_sleep_ms(const avi_session_t *s, int64_t ms)
{
    int64_t deadline = clock_now_ms() + ms;
    for (;;) {
        int64_t left = deadline - clock_now_ms();
        if (left <= 0 || session_aborted(s))
            return;
        if (left > 50)
            left = 50;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
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
    dynbuf_init(&s->body.bytes, AVI_SESSION_MAX_BODY);
    s->attempts = 4;
    s->retry_initial_ms = 250;
    s->retry_max_ms = 2000;
    s->base = session_base_url(cfg->controller_host);
    s->tenant = strdup(tenant ? tenant : (cfg->tenant_name ? cfg->tenant_name : "admin"));
    s->username = strdup(cfg->username);
    /* A token wins over a password when both are configured: tokens are
     * what a rotated secret holds. */
    s->token = session_strdup_or_null(cfg->auth_token);
    s->password = cfg->auth_token ? NULL : session_strdup_or_null(cfg->password);
    s->version = strdup(cfg->controller_version ? cfg->controller_version : "22.1.3");
    s->ca_file = session_strdup_or_null(cfg->controller_ca_file);
    s->curl = curl_easy_init();
    if (!s->base || !s->tenant || !s->username || !s->version || !s->curl ||
        (cfg->auth_token && !s->token) || (!cfg->auth_token && !s->password) ||
        (cfg->controller_ca_file && !s->ca_file))
        goto fail_destroy;
    size_t referer_len = strlen(s->base) + 2;
    s->referer = malloc(referer_len);
    if (!s->referer)
        goto fail_destroy;
    snprintf(s->referer, referer_len, "%s/", s->base);

    CURL *c = s->curl;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_COOKIEFILE, ""); /* in-memory cookie engine */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, SESSION_CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, SESSION_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, session_write_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, session_read_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, session_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->curl_error);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (s->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
    *out = s;
    return KV_OK;

fail_destroy:
    avi_session_destroy(&s);
    return KV_ERR_NOMEM;
}

void avi_session_destroy(avi_session_t **session)
{
    avi_session_t *s = *session;
    if (!s)
        return;
    if (s->curl)
        curl_easy_cleanup(s->curl);
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
    dynbuf_free(&s->body.bytes);
    free(s);
    *session = NULL;
}

const char *avi_session_base(const avi_session_t *s) { return s->base; }
const char *avi_session_tenant(const avi_session_t *s) { return s->tenant; }
const char *avi_session_error(const avi_session_t *s) { return s->error; }
const char *avi_session_message(const avi_session_t *s) { return s->message; }
unsigned avi_session_logins(const avi_session_t *s) { return s->logins; }

void avi_session_set_retry(avi_session_t *s, unsigned attempts, int64_t initial_ms,
                           int64_t max_ms)
{
    s->attempts = attempts ? attempts : 1;
    s->retry_initial_ms = initial_ms;
    s->retry_max_ms = max_ms;
}

void avi_session_set_abort_flag(avi_session_t *s, volatile sig_atomic_t *flag)
{
    s->abort_flag = flag;
}

/* ---- one HTTP exchange --------------------------------------------------- */

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

/* Performs one request. Returns KV_OK with *status when the controller
 * answered; KV_ERR_AGAIN on a transport failure; KV_ERR_TOO_LARGE when the
 * answer passed the cap. The body is in s->body. */
static int session_perform(avi_session_t *s, const char *method, const char *path,
                           const char *payload, bool with_csrf, long *status)
{
    char url[SESSION_URL_MAX];
    *status = 0;
    int n = snprintf(url, sizeof url, "%s%s", s->base, path);
    if (n < 0 || (size_t)n >= sizeof url) {
        snprintf(s->error, sizeof s->error, "%s %.200s: URL longer than %d bytes", method, path,
                 SESSION_URL_MAX);
        return KV_ERR_TOO_LARGE;
    }
    struct curl_slist *headers = session_headers(s, with_csrf);
    if (!headers)
        return KV_ERR_NOMEM;

    dynbuf_reset(&s->body.bytes);
    s->body.overflow = false;
    s->curl_error[0] = '\0';

    CURL *c = s->curl;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    /* The handle is reused: reset the method state left by the last call. */
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
    if (payload) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    else if (strcmp(method, "POST") == 0 && !payload) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }

    CURLcode cc = curl_easy_perform(c);
    /* The handle must not keep pointers to what the caller frees next. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(headers);
    if (s->body.overflow) {
        snprintf(s->error, sizeof s->error, "%s %.200s: response larger than %u bytes", method,
                 path, AVI_SESSION_MAX_BODY);
        snprintf(s->message, sizeof s->message, "response too large");
        return KV_ERR_TOO_LARGE;
    }
    if (cc != CURLE_OK) {
        snprintf(s->error, sizeof s->error, "%s %.200s: %s", method, path,
                 s->curl_error[0] ? s->curl_error : curl_easy_strerror(cc));
        snprintf(s->message, sizeof s->message, "%s",
                 s->curl_error[0] ? s->curl_error : curl_easy_strerror(cc));
        return KV_ERR_AGAIN;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return KV_OK;
}

/* The controller's text out of an error body: {"error": ...}, {"detail":
 * ...}, a JSON string, or the bare text ("CSRF token missing or
 * incorrect."). Whitespace at the end is dropped; the result is cut to fit. */
static void session_take_message(avi_session_t *s, const json_t *parsed)
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
    if (!text && s->body.bytes.len > 0) {
        text = s->body.bytes.data;
        len = s->body.bytes.len;
    }
    if (!text) {
        s->message[0] = '\0';
        return;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (len >= sizeof s->message)
        len = sizeof s->message - 1;
    memcpy(s->message, text, len);
    s->message[len] = '\0';
    /* One line per log entry: newlines in the controller's text become spaces. */
    for (size_t i = 0; i < len; i++)
        if (s->message[i] == '\n' || s->message[i] == '\r')
            s->message[i] = ' ';
}

static json_t *session_parse_body(const avi_session_t *s)
{
    if (s->body.bytes.len == 0)
        return NULL;
    json_error_t jerr;
    return json_loadb(s->body.bytes.data, s->body.bytes.len, JSON_DECODE_ANY, &jerr);
}

/* Reads csrftoken from the cookie jar (or the header seen at login). */
static void session_take_csrf(avi_session_t *s)
{
    struct curl_slist *cookies = NULL;
    s->csrf[0] = '\0';
    if (curl_easy_getinfo(s->curl, CURLINFO_COOKIELIST, &cookies) == CURLE_OK) {
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

int avi_session_login(avi_session_t *s)
{
    json_t *body = NULL;
    char *payload = NULL;
    json_t *parsed = NULL;
    long status = 0;
    int rc;

    s->logged_in = false;
    s->csrf[0] = '\0';
    s->header_csrf[0] = '\0';
    curl_easy_setopt(s->curl, CURLOPT_COOKIELIST, "ALL"); /* old session cookies go */

    body = json_pack("{s:s, s:s}", "username", s->username, s->token ? "token" : "password",
                     s->token ? s->token : s->password);
    if (body)
        payload = json_dumps(body, JSON_COMPACT);
    if (!payload) {
        rc = KV_ERR_NOMEM;
        goto out_free_body;
    }
    rc = session_perform(s, "POST", "/login", payload, false, &status);
    s->login_status = status;
    if (rc < 0)
        goto out_free_payload;
    if (status != 200) {
        parsed = session_parse_body(s);
        session_take_message(s, parsed);
        snprintf(s->error, sizeof s->error, "POST /login as %s → %ld: %s", s->username, status,
                 s->message);
        rc = status >= 500 || status == 429 ? KV_ERR_AGAIN : KV_ERR_HTTP;
        goto out_free_payload;
    }
    session_take_csrf(s);
    if (!s->csrf[0])
        log_warn("avi session: login to %s gave no csrftoken cookie; writes may be refused",
                 s->base);
    s->logged_in = true;
    s->logins++;
    log_info("avi session: logged in to %s as %s (tenant %s)", s->base, s->username, s->tenant);
    rc = KV_OK;

out_free_payload:
    if (payload) {
        memset(payload, 0, strlen(payload)); /* it holds the password */
        free(payload);
    }
out_free_body:
    json_decref(parsed);
    json_decref(body);
    return rc;
}

static bool session_status_is_transient(long status)
{
    return status >= 500 || status == 429;
}

int avi_session_request(avi_session_t *s, const char *method, const char *path,
                        const json_t *body, long *status_out, json_t **response)
{
    char *payload = NULL;
    json_t *parsed = NULL;
    long status = 0;
    bool relogged = false;
    int rc = KV_ERR_AGAIN;
    backoff_t backoff;

    if (response)
        *response = NULL;
    if (status_out)
        *status_out = 0;
    s->error[0] = '\0';
    s->message[0] = '\0';
    if (body) {
        payload = json_dumps(body, JSON_COMPACT);
        if (!payload)
            return KV_ERR_NOMEM;
    }
    backoff_init(&backoff, s->retry_initial_ms, s->retry_max_ms);

    for (unsigned attempt = 1;; attempt++) {
        if (session_aborted(s)) {
            snprintf(s->error, sizeof s->error, "%s %.200s: interrupted", method, path);
            rc = KV_ERR_AGAIN;
            goto out_free_payload;
        }
        if (!s->logged_in) {
            rc = avi_session_login(s);
            if (rc == KV_ERR_HTTP) {
                status = s->login_status;
                goto out_free_payload; /* wrong credentials: retrying now will not help */
            }
            if (rc < 0 && rc != KV_ERR_AGAIN)
                goto out_free_payload;
        }
        if (s->logged_in) {
            json_decref(parsed);
            parsed = NULL;
            rc = session_perform(s, method, path, payload, true, &status);
            if (rc == KV_OK) {
                parsed = session_parse_body(s);
                if ((status == 401 || status == 419) && !relogged) {
                    /* Session expired, or the controller restarted: one new
                     * login, then the same request again (does not count as
                     * an attempt). */
                    log_info("avi session: %s %s → %ld, logging in again", method, path, status);
                    s->logged_in = false;
                    relogged = true;
                    attempt--;
                    continue;
                }
                if (status >= 200 && status < 300) {
                    if (response) {
                        *response = parsed;
                        parsed = NULL;
                    }
                    rc = KV_OK;
                    goto out_free_payload;
                }
                session_take_message(s, parsed);
                snprintf(s->error, sizeof s->error, "%s %.200s → %ld: %s", method, path, status,
                         s->message);
                if (status == 401 || status == 419)
                    s->logged_in = false; /* still refused after a fresh login */
                if (!session_status_is_transient(status)) {
                    rc = KV_ERR_HTTP;
                    goto out_keep_response;
                }
                rc = KV_ERR_AGAIN;
            } else if (rc != KV_ERR_AGAIN) {
                goto out_free_payload; /* too large, out of memory: retrying will not help */
            }
        }
        if (attempt >= s->attempts || session_aborted(s))
            goto out_keep_response;
        int64_t wait = backoff_next_ms(&backoff);
        log_warn("avi session: %s; retry %u/%u in %lld ms", s->error, attempt, s->attempts - 1,
                 (long long)wait);
        session_sleep_ms(s, wait);
    }

out_keep_response:
    if (response) {
        *response = parsed;
        parsed = NULL;
    }
out_free_payload:
    if (status_out)
        *status_out = status;
    json_decref(parsed);
    free(payload);
    return rc;
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
