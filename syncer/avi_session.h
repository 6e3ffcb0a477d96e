/* avi_session.h — a REST client for one Avi Controller and one tenant.
 *
 * One libcurl easy handle is reused for every request, so the TCP/TLS
 * connection and the cookie jar (session id, csrftoken) live as long as the
 * session. Login is lazy: the first request logs in, and a 401 logs in again
 * once and retries (the controller drops idle sessions after 15 min).
 *
 * avi_session_request() returns
 *   KV_OK          2xx; *status and *response (parsed body, NULL if empty)
 *   KV_ERR_HTTP    any other final status: the request reached the
 *                  controller and was answered (4xx, or 401 again after a
 *                  fresh login); *status and *response are filled
 *   KV_ERR_AGAIN   5xx, 429, transport error or timeout, still failing after
 *                  a few retries with backoff (*status 0 when no answer)
 *   KV_ERR_TOO_LARGE  the answer passed the body cap
 * and leaves a one-line description of the last failure in
 * avi_session_error() ("POST /api/pool → 400: <controller text>") and the
 * controller's own text alone in avi_session_message(). */
#ifndef KAVI_SYNCER_AVI_SESSION_H
#define KAVI_SYNCER_AVI_SESSION_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define AVI_SESSION_MAX_BODY (64u << 20) /* hard cap on one response body */

typedef struct avi_session avi_session_t;

/* Builds the session for cfg's controller and `tenant` (borrowed; copied).
 * Fails with KV_ERR_INVALID (and a line in the log) when controllerHost or
 * the credentials are missing. Does not contact the controller. */
int avi_session_new(avi_session_t **out, const kv_config *cfg, const char *tenant);
void avi_session_destroy(avi_session_t **session);

/* Logs in now (drops any old cookies first). */
int avi_session_login(avi_session_t *session);

/* One REST call; see the header comment for the results. `path` starts with
 * "/" ("/api/pool?name=x"); `body` is borrowed and sent as JSON (NULL: no
 * body). `status` and `response` may be NULL when the caller does not care;
 * *response is owned by the caller. */
int avi_session_request(avi_session_t *session, const char *method, const char *path,
                        const json_t *body, long *status, json_t **response);

/* "<scheme>://host[:port]" without a trailing slash. */
const char *avi_session_base(const avi_session_t *session);
const char *avi_session_tenant(const avi_session_t *session);
/* Last failure, one line naming method, path, status and controller text. */
const char *avi_session_error(const avi_session_t *session);
/* The controller's text from the last failed request ("" if none). */
const char *avi_session_message(const avi_session_t *session);

/* Retry policy for 5xx/429/transport errors: total attempts and backoff.
 * Defaults: 4 attempts, 250 ms doubling to 2 s. */
void avi_session_set_retry(avi_session_t *session, unsigned attempts, int64_t initial_ms,
                           int64_t max_ms);
/* When *flag becomes non-zero (a signal handler sets it) transfers and
 * backoff sleeps stop early with KV_ERR_AGAIN. */
void avi_session_set_abort_flag(avi_session_t *session, volatile sig_atomic_t *flag);

/* Calls fn for every object of a collection, following `next` from page
 * to page (first_path: "/api/pool?created_by=x&page_size=200"). fn returns
 * 0 to go on or a negative kv_err to stop with it. The object is borrowed
 * for the call. */
typedef int (*avi_session_object_fn)(const json_t *object, void *payload);
int avi_session_list(avi_session_t *session, const char *first_path, avi_session_object_fn fn,
                     void *payload);

/* Percent-encodes `in` for a query value into out. Returns the length, or
 * KV_ERR_TOO_LARGE when out is too small. */
int avi_session_escape(char *out, size_t out_len, const char *in);

/* Counters for tests and logs. */
unsigned avi_session_logins(const avi_session_t *session);

#endif
