/*
 * k8ssim HTTP: the daemon, authentication, the request log, routing,
 * discovery, lists and status writes. Watches are in k8ssim_watch.c.
 *
 * libmicrohttpd runs an internal polling thread and one thread per
 * connection, so a long-lived watch blocks only its own thread (see
 * k8ssim_watch.c) and lists, discovery and status writes go on beside it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8ssim_internal.h"

#define MAX_SEGMENTS 12

struct request_ctx {
    char *body;
    size_t len;
    bool too_large;
};

/* ---- responses ---------------------------------------------------------- */

static const char *reason_for(int code)
{
    switch (code) {
    case 400:
        return "BadRequest";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 405:
        return "MethodNotAllowed";
    case 409:
        return "Conflict";
    case 410:
        return "Expired";
    case 413:
        return "RequestEntityTooLarge";
    case 415:
        return "UnsupportedMediaType";
    case 422:
        return "Invalid";
    case 429:
        return "TooManyRequests";
    case 503:
        return "ServiceUnavailable";
    case 504:
        return "Timeout";
    default:
        return code >= 500 ? "InternalError" : "Unknown";
    }
}

json_t *k8ssim_status_new(int code, const char *reason, const char *message)
{
    return json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i}", "kind", "Status", "apiVersion", "v1",
                     "metadata", "status", "Failure", "message", message, "reason",
                     reason ? reason : reason_for(code), "code", code);
}

enum MHD_Result k8ssim_reply_json(struct MHD_Connection *conn, int status, json_t *body,
                                  const char *retry_after)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!text)
        return MHD_NO;
    size_t len = strlen(text);
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (retry_after)
        MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, response);
    MHD_destroy_response(response);
    return ret;
}

/* Retry-After in delay-seconds or, when the simulator is told to, as the
 * HTTP-date that many seconds from now (RFC 9110 §10.2.3); NULL for none. */
static const char *retry_after_value(const k8ssim_t *sim, int seconds, char *buf, size_t len)
{
    if (seconds <= 0)
        return NULL;
    if (!sim->retry_after_http_date) {
        snprintf(buf, len, "%d", seconds);
        return buf;
    }
    time_t at = time(NULL) + seconds;
    struct tm tm;
    gmtime_r(&at, &tm);
    strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return buf;
}

static enum MHD_Result reply_status(struct MHD_Connection *conn, int *status, int code,
                                    const char *message)
{
    *status = code;
    return k8ssim_reply_json(conn, code, k8ssim_status_new(code, NULL, message), NULL);
}

static enum MHD_Result reply_not_found(struct MHD_Connection *conn, int *status,
                                       const struct k8ssim_resource *res, const char *name)
{
    char message[512];
    snprintf(message, sizeof(message), "%s%s%s \"%s\" not found", res->plural,
             *res->group ? "." : "", res->group, name);
    json_t *body = k8ssim_status_new(404, "NotFound", message);
    json_object_set_new(body, "details",
                        json_pack("{s:s,s:s,s:s}", "name", name, "group", res->group, "kind",
                                  res->plural));
    *status = 404;
    return k8ssim_reply_json(conn, 404, body, NULL);
}

/* ---- request log and authentication ------------------------------------- */

struct query_builder {
    char *text;
    size_t len;
    bool failed;
};

static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct query_builder *q = cls;
    (void)kind;
    char *part = k8ssim_strdupf("%s%s%s%s", q->len ? "&" : "", key, value ? "=" : "",
                                value ? value : "");
    char *grown = part ? realloc(q->text, q->len + strlen(part) + 1) : NULL;
    if (!grown) {
        free(part);
        q->failed = true;
        return MHD_NO;
    }
    q->text = grown;
    memcpy(q->text + q->len, part, strlen(part) + 1);
    q->len += strlen(part);
    free(part);
    return MHD_YES;
}

/* The query as the arguments libmicrohttpd decoded, in order ("a=1&b=c"). */
static char *query_text(struct MHD_Connection *conn)
{
    struct query_builder q = {0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_query_arg, &q);
    if (q.failed) {
        free(q.text);
        return NULL;
    }
    return q.text ? q.text : strdup("");
}

/* Appends to the log and returns the entry's index, or -1. Lock held. */
static long record_request_locked(struct k8ssim *sim, const char *method, const char *path,
                                  char *query, char *auth)
{
    if (sim->request_count == sim->request_cap) {
        size_t cap = sim->request_cap ? sim->request_cap * 2 : 64;
        struct k8ssim_request *grown = realloc(sim->requests, cap * sizeof(*grown));
        if (!grown)
            return -1;
        sim->requests = grown;
        sim->request_cap = cap;
    }
    struct k8ssim_request *r = &sim->requests[sim->request_count];
    r->method = strdup(method);
    r->path = strdup(path);
    r->query = query;
    r->auth = auth;
    r->status = 0;
    if (!r->method || !r->path) {
        free(r->method);
        free(r->path);
        return -1;
    }
    return (long)sim->request_count++;
}

/* ---- routing ------------------------------------------------------------ */

struct route {
    char *segments[MAX_SEGMENTS];
    size_t count;
    const struct k8ssim_resource *res;
    const char *ns;   /* namespaced path form */
    const char *name; /* item */
    bool status;      /* .../{name}/status */
};

static void route_free(struct route *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->segments[i]);
}

static int route_split(struct route *r, const char *url)
{
    const char *p = url;
    memset(r, 0, sizeof(*r));
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (r->count == MAX_SEGMENTS)
            return -EINVAL;
        if (!(r->segments[r->count] = strndup(p, len)))
            return -ENOMEM;
        r->count++;
        p += len;
    }
    return 0;
}

/* Resolves /api/v1/... and /apis/{group}/{version}/... to a served resource.
 * Returns false when the path names no served resource. */
static bool route_resource(const struct k8ssim *sim, struct route *r)
{
    char **s = r->segments;
    const char *group, *version;
    size_t rest;
    if (r->count >= 3 && !strcmp(s[0], "api")) {
        group = "";
        version = s[1];
        rest = 2;
    } else if (r->count >= 4 && !strcmp(s[0], "apis")) {
        group = s[1];
        version = s[2];
        rest = 3;
    } else {
        return false;
    }
    size_t left = r->count - rest;
    char **t = s + rest;
    /* namespaces/{ns}/{plural}[/{name}[/status]]; "namespaces" alone, with a
     * name or with name/status is the Namespace resource itself. */
    if (left >= 3 && !strcmp(t[0], "namespaces") && strcmp(t[2], "status")) {
        r->ns = t[1];
        t += 2;
        left -= 2;
    }
    if (left < 1 || left > 3)
        return false;
    r->res = k8ssim_resource_find(group, version, t[0]);
    if (!r->res || !k8ssim_resource_served(sim, r->res))
        return false;
    if (r->ns && !r->res->namespaced)
        return false;
    if (left >= 2) {
        /* A namespaced object is only addressable with its namespace. */
        if (r->res->namespaced && !r->ns)
            return false;
        r->name = t[1];
    }
    if (left == 3) {
        if (strcmp(t[2], "status"))
            return false;
        r->status = true;
    }
    return true;
}

/* ---- discovery ---------------------------------------------------------- */

static bool group_served(const struct k8ssim *sim, const char *group, const char *version)
{
    for (size_t i = 0; i < k8ssim_resource_count; i++) {
        const struct k8ssim_resource *r = &k8ssim_resources[i];
        if (!strcmp(r->group, group) && (!version || !strcmp(r->version, version)) &&
            k8ssim_resource_served(sim, r))
            return true;
    }
    return false;
}

static json_t *group_json(const char *group, const char *version)
{
    char gv[160];
    snprintf(gv, sizeof(gv), "%s/%s", group, version);
    return json_pack("{s:s,s:[{s:s,s:s}],s:{s:s,s:s}}", "name", group, "versions", "groupVersion",
                     gv, "version", version, "preferredVersion", "groupVersion", gv, "version",
                     version);
}

static json_t *api_group_list(const struct k8ssim *sim)
{
    json_t *groups = json_array();
    for (size_t i = 0; i < k8ssim_resource_count; i++) {
        const struct k8ssim_resource *r = &k8ssim_resources[i];
        bool seen = false;
        if (!*r->group || !k8ssim_resource_served(sim, r))
            continue;
        for (size_t j = 0; j < i; j++)
            seen |= !strcmp(k8ssim_resources[j].group, r->group);
        if (!seen)
            json_array_append_new(groups, group_json(r->group, r->version));
    }
    return json_pack("{s:s,s:s,s:o}", "kind", "APIGroupList", "apiVersion", "v1", "groups",
                     groups);
}

static json_t *api_resource_list(const struct k8ssim *sim, const char *group, const char *version)
{
    json_t *resources = json_array();
    char gv[160];
    if (*group)
        snprintf(gv, sizeof(gv), "%s/%s", group, version);
    else
        snprintf(gv, sizeof(gv), "%s", version);
    for (size_t i = 0; i < k8ssim_resource_count; i++) {
        const struct k8ssim_resource *r = &k8ssim_resources[i];
        char status_name[96];
        if (strcmp(r->group, group) || strcmp(r->version, version) ||
            !k8ssim_resource_served(sim, r))
            continue;
        json_array_append_new(resources,
                              json_pack("{s:s,s:s,s:b,s:s,s:[s,s,s,s,s,s,s,s]}", "name", r->plural,
                                        "singularName", r->singular, "namespaced", r->namespaced,
                                        "kind", r->kind, "verbs", "create", "delete",
                                        "deletecollection", "get", "list", "patch", "update",
                                        "watch"));
        snprintf(status_name, sizeof(status_name), "%s/status", r->plural);
        json_array_append_new(resources,
                              json_pack("{s:s,s:s,s:b,s:s,s:[s,s,s]}", "name", status_name,
                                        "singularName", "", "namespaced", r->namespaced, "kind",
                                        r->kind, "verbs", "get", "patch", "update"));
    }
    return json_pack("{s:s,s:s,s:s,s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                     "groupVersion", gv, "resources", resources);
}

static enum MHD_Result serve_discovery(struct k8ssim *sim, struct MHD_Connection *conn,
                                       const struct route *r, int *status)
{
    char *const *s = r->segments;
    json_t *body = NULL;
    pthread_mutex_lock(&sim->lock);
    if (r->count == 1 && !strcmp(s[0], "api")) {
        char address[32];
        snprintf(address, sizeof(address), "127.0.0.1:%d", sim->port);
        body = json_pack("{s:s,s:[s],s:[{s:s,s:s}]}", "kind", "APIVersions", "versions", "v1",
                         "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0", "serverAddress",
                         address);
    } else if (r->count == 2 && !strcmp(s[0], "api") && !strcmp(s[1], "v1")) {
        body = api_resource_list(sim, "", "v1");
    } else if (r->count == 1 && !strcmp(s[0], "apis")) {
        body = api_group_list(sim);
    } else if (r->count == 2 && !strcmp(s[0], "apis") && group_served(sim, s[1], NULL)) {
        body = group_json(s[1], "v1");
        json_object_set_new(body, "kind", json_string("APIGroup"));
        json_object_set_new(body, "apiVersion", json_string("v1"));
    } else if (r->count == 3 && !strcmp(s[0], "apis") && group_served(sim, s[1], s[2])) {
        body = api_resource_list(sim, s[1], s[2]);
    } else if (r->count == 1 && !strcmp(s[0], "version")) {
        body = json_pack("{s:s,s:s,s:s,s:s}", "major", "1", "minor", "31", "gitVersion",
                         "v1.31.0-k8ssim", "platform", "linux/amd64");
    }
    pthread_mutex_unlock(&sim->lock);
    if (!body)
        return reply_status(conn, status, 404, "the server could not find the requested resource");
    *status = 200;
    return k8ssim_reply_json(conn, 200, body, NULL);
}

/* ---- lists -------------------------------------------------------------- */

static char *base64url_encode(const char *in, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(len / 3 * 4 + 5);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < len)
            v |= (unsigned char)in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = alphabet[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
    return out;
}

static char *base64url_decode(const char *in)
{
    size_t len = strlen(in);
    char *out = malloc(len * 3 / 4 + 4);
    unsigned v = 0;
    int bits = 0;
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i], d;
        if (c >= 'A' && c <= 'Z')
            d = c - 'A';
        else if (c >= 'a' && c <= 'z')
            d = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            d = c - '0' + 52;
        else if (c == '-' || c == '+')
            d = 62;
        else if (c == '_' || c == '/')
            d = 63;
        else if (c == '=')
            break;
        else {
            free(out);
            return NULL;
        }
        v = (v << 6) | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((v >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return out;
}

/* Shaped like the apiserver's: base64url of {"v":"meta.k8s.io/v1","rv":N,"start":KEY}. */
static char *continue_token(long rv, const char *last_key)
{
    json_t *token = json_pack("{s:s,s:I,s:s}", "v", "meta.k8s.io/v1", "rv", (json_int_t)rv,
                              "start", last_key);
    char *text = token ? json_dumps(token, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    char *encoded = text ? base64url_encode(text, strlen(text)) : NULL;
    json_decref(token);
    free(text);
    return encoded;
}

static int continue_parse(const char *token, long *rv, char **start)
{
    char *text = base64url_decode(token);
    json_t *parsed = text ? json_loads(text, 0, NULL) : NULL;
    json_t *jrv = json_object_get(parsed, "rv");
    const char *key = json_string_value(json_object_get(parsed, "start"));
    int rc = -EINVAL;
    if (json_is_integer(jrv) && key) {
        *rv = (long)json_integer_value(jrv);
        *start = strdup(key);
        rc = *start ? 0 : -ENOMEM;
    }
    json_decref(parsed);
    free(text);
    return rc;
}

static const char *arg(struct MHD_Connection *conn, const char *key)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

static bool arg_true(struct MHD_Connection *conn, const char *key)
{
    const char *v = arg(conn, key);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true"));
}

static bool parse_long(const char *text, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || !end || end == text || *end || v < 0)
        return false;
    *out = v;
    return true;
}

static char *list_kind(const struct k8ssim_resource *res)
{
    return k8ssim_strdupf("%sList", res->kind);
}

/* Items as the apiserver lists them: without kind and apiVersion. */
static json_t *list_item(const json_t *object)
{
    json_t *item = json_copy((json_t *)object);
    json_object_del(item, "kind");
    json_object_del(item, "apiVersion");
    return item;
}

static enum MHD_Result serve_list(struct k8ssim *sim, struct MHD_Connection *conn,
                                  const struct route *r, struct k8ssim_filter *filter, int *status)
{
    const char *limit_text = arg(conn, "limit");
    const char *token = arg(conn, "continue");
    const char *rv_text = arg(conn, "resourceVersion");
    const char *rv_match = arg(conn, "resourceVersionMatch");
    const struct k8ssim_resource *res = r->res;
    int resource = (int)(res - k8ssim_resources);
    long limit = 0, snapshot_rv = -1, exact_rv = 0;
    char *start = NULL, *kind = NULL;
    struct k8ssim_item *items = NULL;
    size_t count = 0;
    json_t *body = NULL;
    enum MHD_Result ret;

    if (limit_text && *limit_text && !parse_long(limit_text, &limit))
        return reply_status(conn, status, 400, "invalid limit");
    if (token && *token) {
        if (rv_match && *rv_match)
            return reply_status(conn, status, 422,
                                "resourceVersionMatch is forbidden when continue is provided");
        if (continue_parse(token, &snapshot_rv, &start) < 0)
            return reply_status(conn, status, 400, "invalid continue token");
    } else if (rv_match && !strcmp(rv_match, "Exact")) {
        if (!rv_text || !parse_long(rv_text, &exact_rv) || exact_rv == 0)
            return reply_status(conn, status, 422,
                                "resourceVersionMatch=Exact needs a non-zero resourceVersion");
        snapshot_rv = exact_rv;
    }

    pthread_mutex_lock(&sim->lock);
    long current = sim->rv;
    if (snapshot_rv < 0)
        snapshot_rv = current;
    int rc = snapshot_rv > current
                 ? -ERANGE
                 : k8ssim_snapshot_locked(sim, resource, snapshot_rv, filter, &items, &count);
    if (rc == -ESTALE) {
        char *fresh = start ? continue_token(current, start) : NULL;
        pthread_mutex_unlock(&sim->lock);
        body = k8ssim_status_new(
            410, "Expired",
            start ? "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use the "
                    "continue token in this response to retrieve the remainder of the results. "
                    "Continuing with the provided token results in an inconsistent list - "
                    "objects that were created, modified, or deleted between the time the first "
                    "chunk was returned and now may show up in the list."
                  : "too old resource version");
        if (fresh)
            json_object_set_new(json_object_get(body, "metadata"), "continue",
                                json_string(fresh));
        free(fresh);
        free(start);
        *status = 410;
        return k8ssim_reply_json(conn, 410, body, NULL);
    }
    if (rc < 0) {
        pthread_mutex_unlock(&sim->lock);
        free(start);
        if (rc == -ERANGE)
            return reply_status(conn, status, 504, "Too large resource version");
        return MHD_NO;
    }

    json_t *list = json_array();
    size_t first = 0, taken = 0;
    if (start)
        while (first < count && strcmp(items[first].key, start) <= 0)
            first++;
    for (size_t i = first; i < count && (limit == 0 || taken < (size_t)limit); i++, taken++)
        json_array_append_new(list, list_item(items[i].object));
    size_t remaining = count - first - taken;
    char rv_out[32];
    snprintf(rv_out, sizeof(rv_out), "%ld", snapshot_rv);
    json_t *meta = json_pack("{s:s}", "resourceVersion", rv_out);
    if (remaining > 0) {
        char *next = continue_token(snapshot_rv, items[first + taken - 1].key);
        json_object_set_new(meta, "continue", json_string(next ? next : ""));
        free(next);
        if (!filter->fields.count && !filter->labels.count)
            json_object_set_new(meta, "remainingItemCount", json_integer((json_int_t)remaining));
    }
    kind = list_kind(res);
    char api_version[128];
    if (*res->group)
        snprintf(api_version, sizeof(api_version), "%s/%s", res->group, res->version);
    else
        snprintf(api_version, sizeof(api_version), "%s", res->version);
    body = json_pack("{s:s,s:s,s:o,s:o}", "kind", kind ? kind : "List", "apiVersion", api_version,
                     "metadata", meta, "items", list);
    pthread_mutex_unlock(&sim->lock);
    free(items);
    free(kind);
    free(start);
    *status = 200;
    ret = k8ssim_reply_json(conn, 200, body, NULL);
    return ret;
}

/* ---- items and status writes -------------------------------------------- */

/* RFC 7386: objects merge member by member, null deletes, anything else
 * (lists included) replaces. Returns a new reference. */
static json_t *merge_patch(json_t *target, json_t *patch)
{
    if (!json_is_object(patch))
        return json_incref(patch);
    json_t *result = json_is_object(target) ? json_deep_copy(target) : json_object();
    const char *key;
    json_t *value;
    json_object_foreach(patch, key, value)
    {
        if (json_is_null(value)) {
            json_object_del(result, key);
        } else {
            json_t *merged = merge_patch(json_object_get(result, key), value);
            json_object_set_new(result, key, merged);
        }
    }
    return result;
}

static struct k8ssim_object *find_object_locked(struct k8ssim *sim, const struct route *r)
{
    struct k8ssim_object *entry = NULL;
    char *key = k8ssim_object_key((int)(r->res - k8ssim_resources), r->ns, r->name);
    if (key)
        HASH_FIND_STR(sim->objects, key, entry);
    free(key);
    return entry;
}

static enum MHD_Result serve_get_item(struct k8ssim *sim, struct MHD_Connection *conn,
                                      const struct route *r, int *status)
{
    pthread_mutex_lock(&sim->lock);
    struct k8ssim_object *entry = find_object_locked(sim, r);
    json_t *body = entry ? json_deep_copy(entry->object) : NULL;
    pthread_mutex_unlock(&sim->lock);
    if (!body)
        return reply_not_found(conn, status, r->res, r->name);
    *status = 200;
    return k8ssim_reply_json(conn, 200, body, NULL);
}

/* PATCH (merge patch) or PUT on .../{name}/status. Only status changes, as on
 * a real status subresource; metadata.resourceVersion in the body is a
 * precondition (409 when stale); a write that changes nothing stores nothing. */
static enum MHD_Result serve_status_write(struct k8ssim *sim, struct MHD_Connection *conn,
                                          const struct route *r, const char *method,
                                          const struct request_ctx *ctx, int *status)
{
    bool patch = !strcmp(method, "PATCH");
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    size_t type_len = type ? strcspn(type, "; ") : 0;
    const char *wanted = patch ? "application/merge-patch+json" : "application/json";
    bool type_ok = type ? type_len == strlen(wanted) && !strncasecmp(type, wanted, type_len)
                        : !patch; /* a PUT without Content-Type is read as JSON */
    if (!type_ok) {
        char message[256];
        snprintf(message, sizeof(message),
                 "the body of the request was in an unknown format - accepted media types "
                 "include: %s",
                 wanted);
        return reply_status(conn, status, 415, message);
    }
    if (ctx->too_large)
        return reply_status(conn, status, 413, "request entity too large");
    json_error_t err;
    json_t *body = ctx->body ? json_loadb(ctx->body, ctx->len, 0, &err) : NULL;
    if (!json_is_object(body)) {
        json_decref(body);
        return reply_status(conn, status, 400, "the request body is not a JSON object");
    }
    const char *want_rv =
        json_string_value(json_object_get(json_object_get(body, "metadata"), "resourceVersion"));

    pthread_mutex_lock(&sim->lock);
    struct k8ssim_object *entry = find_object_locked(sim, r);
    if (!entry) {
        pthread_mutex_unlock(&sim->lock);
        json_decref(body);
        return reply_not_found(conn, status, r->res, r->name);
    }
    const char *have_rv = json_string_value(
        json_object_get(json_object_get(entry->object, "metadata"), "resourceVersion"));
    if (want_rv && have_rv && strcmp(want_rv, have_rv)) {
        char message[512];
        snprintf(message, sizeof(message),
                 "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                 "please apply your changes to the latest version and try again",
                 r->res->plural, r->name);
        pthread_mutex_unlock(&sim->lock);
        json_decref(body);
        return reply_status(conn, status, 409, message);
    }
    json_t *updated = json_deep_copy(entry->object);
    json_t *new_status = NULL;
    if (patch)
        new_status = json_object_get(body, "status")
                         ? merge_patch(json_object_get(updated, "status"),
                                       json_object_get(body, "status"))
                         : json_incref(json_object_get(updated, "status"));
    else
        new_status = json_incref(json_object_get(body, "status"));
    if (new_status && !json_is_null(new_status))
        json_object_set_new(updated, "status", new_status);
    else {
        json_decref(new_status);
        json_object_del(updated, "status");
    }
    json_t *reply;
    if (json_equal(updated, entry->object)) {
        json_decref(updated);
        reply = json_deep_copy(entry->object);
    } else {
        long rv = k8ssim_store_put_locked(sim, (int)(r->res - k8ssim_resources), updated);
        reply = rv < 0 ? NULL : json_deep_copy(find_object_locked(sim, r)->object);
    }
    pthread_mutex_unlock(&sim->lock);
    json_decref(body);
    if (!reply)
        return reply_status(conn, status, 500, "store failed");
    *status = 200;
    return k8ssim_reply_json(conn, 200, reply, NULL);
}

/* ---- dispatch ----------------------------------------------------------- */

static enum MHD_Result serve_resource(struct k8ssim *sim, struct MHD_Connection *conn,
                                      const struct route *r, const char *method,
                                      const struct request_ctx *ctx, int *status)
{
    if (r->status) {
        if (!strcmp(method, "GET"))
            return serve_get_item(sim, conn, r, status);
        if (!strcmp(method, "PATCH") || !strcmp(method, "PUT"))
            return serve_status_write(sim, conn, r, method, ctx, status);
        return reply_status(conn, status, 405, "the server does not allow this method");
    }
    if (strcmp(method, "GET"))
        return reply_status(conn, status, 405, "the server does not allow this method");
    if (r->name)
        return serve_get_item(sim, conn, r, status);

    struct k8ssim_filter filter = {0};
    if (r->ns && !(filter.ns = strdup(r->ns)))
        return MHD_NO;
    if (k8ssim_selector_parse(&filter.fields, arg(conn, "fieldSelector")) < 0 ||
        k8ssim_selector_parse(&filter.labels, arg(conn, "labelSelector")) < 0) {
        k8ssim_filter_free(&filter);
        return reply_status(conn, status, 400, "unable to parse the selector");
    }
    if (arg_true(conn, "watch")) {
        long timeout_s = 0;
        const char *timeout_text = arg(conn, "timeoutSeconds");
        if (timeout_text && *timeout_text && !parse_long(timeout_text, &timeout_s)) {
            k8ssim_filter_free(&filter);
            return reply_status(conn, status, 400, "invalid timeoutSeconds");
        }
        return k8ssim_watch_start(sim, conn, r->res, &filter, arg(conn, "resourceVersion"),
                                  arg_true(conn, "allowWatchBookmarks"), timeout_s, status);
    }
    enum MHD_Result ret = serve_list(sim, conn, r, &filter, status);
    k8ssim_filter_free(&filter);
    return ret;
}

static char *auth_of(struct k8ssim *sim, struct MHD_Connection *conn, const char **bearer)
{
    const char *header = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    *bearer = NULL;
    if (sim->client_ca) {
        char *cn = k8ssim_tls_client_cn(conn);
        if (cn) {
            char *auth = k8ssim_strdupf("cert:%s", cn);
            free(cn);
            return auth;
        }
    }
    if (header && !strncasecmp(header, "Bearer ", 7)) {
        *bearer = header + 7;
        return k8ssim_strdupf("bearer:%s", header + 7);
    }
    return strdup("none");
}

static enum MHD_Result handle(struct k8ssim *sim, struct MHD_Connection *conn, const char *url,
                              const char *method, struct request_ctx *ctx)
{
    struct route r;
    const char *bearer = NULL;
    char *query = query_text(conn);
    char *auth = auth_of(sim, conn, &bearer);
    int status = 0, retry_after = 0, fail = 0;
    bool authenticated;
    enum MHD_Result ret;

    if (!query || !auth) {
        free(query);
        free(auth);
        return MHD_NO;
    }
    bool has_cert = !strncmp(auth, "cert:", 5);
    pthread_mutex_lock(&sim->lock);
    /* The log takes query and auth. */
    long entry = record_request_locked(sim, method, url, query, auth);
    if (entry < 0) {
        free(query);
        free(auth);
    }
    /* Either credential that is configured lets a request in; with neither
     * configured the simulator is open, like an apiserver with anonymous auth. */
    bool cert_ok = sim->client_ca && has_cert;
    bool token_ok = sim->token && bearer && !strcmp(bearer, sim->token);
    authenticated = cert_ok || token_ok || (!sim->token && !sim->client_ca);
    /* Faults hit authenticated requests, as the apiserver's priority and
     * fairness filter runs after authentication. */
    if (authenticated && sim->fail_count > 0 &&
        (!sim->fail_query[0] || strstr(query, sim->fail_query))) {
        sim->fail_count--;
        fail = sim->fail_status;
        retry_after = sim->fail_retry_after_s;
    }
    pthread_mutex_unlock(&sim->lock);

    if (!authenticated) {
        ret = reply_status(conn, &status, 401, "Unauthorized");
    } else if (fail) {
        json_t *body = k8ssim_status_new(fail, NULL,
                                         fail == 429 ? "Too many requests, please try again later."
                                                     : "injected failure");
        if (retry_after > 0)
            json_object_set_new(body, "details",
                                json_pack("{s:i}", "retryAfterSeconds", retry_after));
        status = fail;
        char value[64];
        ret = k8ssim_reply_json(conn, fail, body,
                                retry_after_value(sim, retry_after, value, sizeof value));
    } else if (route_split(&r, url) < 0) {
        ret = reply_status(conn, &status, 404, "the server could not find the requested resource");
    } else {
        if (route_resource(sim, &r))
            ret = serve_resource(sim, conn, &r, method, ctx, &status);
        else if (!strcmp(method, "GET"))
            ret = serve_discovery(sim, conn, &r, &status);
        else
            ret = reply_status(conn, &status, 404,
                               "the server could not find the requested resource");
        route_free(&r);
    }
    if (entry >= 0) {
        pthread_mutex_lock(&sim->lock);
        sim->requests[entry].status = status;
        pthread_mutex_unlock(&sim->lock);
    }
    return ret;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    struct request_ctx *ctx = *con_cls;
    (void)version;
    if (!ctx) {
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
            return MHD_NO;
        *con_cls = ctx;
        return MHD_YES;
    }
    if (*upload_size) {
        /* Past the cap the rest is read and discarded, then answered 413. */
        if (!ctx->too_large && ctx->len + *upload_size > K8SSIM_BODY_MAX) {
            ctx->too_large = true;
            free(ctx->body);
            ctx->body = NULL;
            ctx->len = 0;
        }
        if (!ctx->too_large) {
            char *grown = realloc(ctx->body, ctx->len + *upload_size + 1);
            if (!grown)
                return MHD_NO;
            memcpy(grown + ctx->len, upload, *upload_size);
            ctx->body = grown;
            ctx->len += *upload_size;
            ctx->body[ctx->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return handle(cls, conn, url, method, ctx);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request_ctx *ctx = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (ctx) {
        free(ctx->body);
        free(ctx);
        *con_cls = NULL;
    }
}

int k8ssim_http_start(struct k8ssim *sim, int port)
{
    struct sockaddr_in addr = {0};
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;

    /* poll() rather than select(): no FD_SETSIZE ceiling in a busy test. */
    if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
        flags |= MHD_USE_POLL;
    if (port < 0 || port > 65535)
        return -EINVAL;
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (sim->tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
            return -ENOTSUP;
        if (sim->client_ca)
            sim->daemon = MHD_start_daemon(
                flags | MHD_USE_TLS, 0, NULL, NULL, access_cb, sim, MHD_OPTION_SOCK_ADDR, &addr,
                MHD_OPTION_NOTIFY_COMPLETED, completed_cb, sim, MHD_OPTION_HTTPS_MEM_KEY,
                sim->tls_key_pem, MHD_OPTION_HTTPS_MEM_CERT, sim->tls_cert_pem,
                MHD_OPTION_HTTPS_MEM_TRUST, sim->client_ca_pem, MHD_OPTION_END);
        else
            sim->daemon = MHD_start_daemon(
                flags | MHD_USE_TLS, 0, NULL, NULL, access_cb, sim, MHD_OPTION_SOCK_ADDR, &addr,
                MHD_OPTION_NOTIFY_COMPLETED, completed_cb, sim, MHD_OPTION_HTTPS_MEM_KEY,
                sim->tls_key_pem, MHD_OPTION_HTTPS_MEM_CERT, sim->tls_cert_pem, MHD_OPTION_END);
    } else {
        sim->daemon = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, sim, MHD_OPTION_SOCK_ADDR,
                                       &addr, MHD_OPTION_NOTIFY_COMPLETED, completed_cb, sim,
                                       MHD_OPTION_END);
    }
    if (!sim->daemon)
        return -EIO;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(sim->daemon, MHD_DAEMON_INFO_BIND_PORT);
    sim->port = info ? info->port : port;
    return 0;
}

void k8ssim_http_stop(struct k8ssim *sim)
{
    if (sim->daemon) {
        MHD_stop_daemon(sim->daemon);
        sim->daemon = NULL;
    }
}
