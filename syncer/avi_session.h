/* avi_session.h — a REST client for one Avi Controller and one tenant, on
 * the non-blocking HTTP core (common/http.h).
 *
 * The session is the controller's glue: login, the cookie jar (session id,
 * csrftoken) shared by every transfer, X-CSRFToken, Referer, X-Avi-Version
 * and X-Avi-Tenant. Several requests are in flight at once (a configurable
 * bound); the others wait in a queue. Retries are scheduled on timers,
 * never slept:
 *   - 401/419 (session expired, controller restarted): one fresh login for
 *     the whole session, then every waiting request is replayed; a request
 *     refused again after its own replay is answered 401;
 *   - 429 and 403 "Configuration is disallowed during upgrade" (and any 5xx
 *     with Retry-After): the whole session backs off on one timer, then
 *     sends a single probe and opens up again by one call per success, so
 *     a throttled controller is not met by a burst;
 *   - other 5xx and transport errors: that request alone is retried with
 *     backoff, a few attempts, then answered transient.
 *
 * Answers (avi_answer.rc, and the return of the blocking calls)
 *   KV_OK          2xx; status and response (parsed body, NULL if empty)
 *   KV_ERR_HTTP    any other final status: the request reached the
 *                  controller and was answered (4xx, or 401 again after a
 *                  fresh login); status and response are filled
 *   KV_ERR_AGAIN   5xx, 429, transport error or timeout, still failing after
 *                  the attempts (status 0 when no answer)
 *   KV_ERR_TOO_LARGE  the answer passed the body cap
 * with a one-line description ("POST /api/pool → 400: <controller text>")
 * and the controller's own text alone.
 *
 * The owner's loop drives the session: avi_session_pollitems and
 * avi_session_timeout_ms for its zmq_poll, then avi_session_step. The
 * blocking calls (avi_session_request, avi_session_list, avi_session_login)
 * drive it themselves, for the cache load, --show and tests. */
#ifndef KAVI_SYNCER_AVI_SESSION_H
#define KAVI_SYNCER_AVI_SESSION_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "common/config.h"

#define AVI_SESSION_MAX_BODY (64u << 20) /* hard cap on one response body */
#define AVI_SESSION_MAX_POLLITEMS 64     /* sockets the session may ask to watch */

typedef struct avi_session avi_session_t;
typedef struct avi_call avi_call_t;

typedef struct {
    int rc;              /* see the header comment */
    long status;         /* 0 when no answer came */
    json_t *response;    /* parsed body, borrowed for the callback (NULL if none) */
    const char *error;   /* one line: method, path, status, text ("" on success) */
    const char *message; /* the controller's text alone ("" if none) */
} avi_answer;

/* Runs from avi_session_step (or a blocking call); may start and cancel
 * requests. */
typedef void (*avi_answer_fn)(void *payload, const avi_answer *answer);

/* Builds the session for cfg's controller and `tenant` (borrowed; copied).
 * Fails with KV_ERR_INVALID (and a line in the log) when controllerHost or
 * the credentials are missing. Does not contact the controller. */
int avi_session_new(avi_session_t **out, const kv_config *cfg, const char *tenant);
void avi_session_destroy(avi_session_t **session);

/* Logs in now (drops any old cookies first); blocks until answered. */
int avi_session_login(avi_session_t *session);

/* Queues one REST call; `fn` gets the answer later, exactly once, unless
 * the call is cancelled or the session destroyed first. `body` is
 * borrowed (serialised now). *out (optional) is a handle for
 * avi_session_cancel, valid until fn runs. */
int avi_session_start(avi_session_t *session, const char *method, const char *path,
                      const json_t *body, avi_answer_fn fn, void *payload, avi_call_t **out);
/* Drops a call without calling its fn; sets *call to NULL. */
void avi_session_cancel(avi_session_t *session, avi_call_t **call);

/* Requests on the wire at once (default 8, AKO's LARGE shard's workers). */
void avi_session_set_parallel(avi_session_t *session, unsigned max_in_flight);
/* Calls queued or on the wire. */
unsigned avi_session_pending(const avi_session_t *session);

/* The loop's part: raw-fd poll items (up to max), the wait until the next
 * timer (INT64_MAX: none), and the step that drives transfers, timers and
 * answers. */
int avi_session_pollitems(const avi_session_t *session, zmq_pollitem_t *items, int max);
int64_t avi_session_timeout_ms(const avi_session_t *session, int64_t now_ms);
void avi_session_step(avi_session_t *session, int64_t now_ms);
/* Drives the session itself until *done becomes true (false: the abort
 * flag was raised first). */
bool avi_session_run_until(avi_session_t *session, const bool *done);

/* One blocking REST call; see the header comment for the results. `path` starts with
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
/* When *flag becomes non-zero (a signal handler sets it) the blocking
 * calls stop early with KV_ERR_AGAIN. */
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
/* Times the whole session backed off (429, upgrade in progress). */
unsigned avi_session_pauses(const avi_session_t *session);

#endif
