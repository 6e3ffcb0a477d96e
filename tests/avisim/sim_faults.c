/*
 * Fault injection, configured through POST /_sim/faults. Each POST replaces
 * the whole configuration, so a test states every fault it wants and {}
 * returns to normal. Randomness comes from a seedable xorshift generator so
 * a failing test run can be replayed with the same "seed".
 *
 * Two kinds of dropped connection: drop_rate closes the connection before
 * the request is looked at (nothing happened), drop_response_rate carries
 * the request out and then closes it unanswered, so a client cannot tell
 * whether its write landed and must cope with the retry's 409, 412 or 404.
 *
 * refuse_name makes the controller refuse, with 400 and refuse_message
 * (default "Refused by fault injection"), every create or update of an
 * object of that name: a permanent refusal, as a real controller gives an
 * object it finds invalid.
 */
#include <stdio.h>
#include <string.h>

#include "sim_internal.h"

#define RATE_LIMIT_REFILL_PER_S 32.0 /* the controller's default API throttle */
#define MAX_LATENCY_MS 60000
#define MAX_BURST 1000000

void avisim_faults_clear(struct avisim_faults *f)
{
    uint64_t seed = (uint64_t)avisim_now_us() | 1;
    memset(f, 0, sizeof(*f));
    f->error_status = 503;
    f->delete_referenced_status = 403;
    f->rng = seed;
}

static uint64_t next_random(struct avisim_faults *f)
{
    uint64_t x = f->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    f->rng = x;
    return x;
}

bool avisim_faults_roll(struct avisim_faults *f, double rate)
{
    if (rate <= 0)
        return false;
    if (rate >= 1)
        return true;
    return (double)(next_random(f) >> 11) / (double)(1ull << 53) < rate;
}

bool avisim_faults_rate_limited(struct avisim_faults *f, int64_t now_ms)
{
    if (f->rate_limit_burst <= 0)
        return false;
    double refill = (double)(now_ms - f->tokens_ms) * RATE_LIMIT_REFILL_PER_S / 1000.0;
    f->tokens_ms = now_ms;
    f->tokens += refill;
    if (f->tokens > f->rate_limit_burst)
        f->tokens = f->rate_limit_burst;
    if (f->tokens < 1.0)
        return true;
    f->tokens -= 1.0;
    return false;
}

static int get_rate(const json_t *cfg, const char *key, double *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(cfg, key);
    if (!v)
        return 0;
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
        snprintf(err, errlen, "%s: must be a number between 0 and 1", key);
        return 400;
    }
    *out = json_number_value(v);
    return 0;
}

static int get_int(const json_t *cfg, const char *key, long lo, long hi, int *out, char *err,
                   size_t errlen)
{
    json_t *v = json_object_get(cfg, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(err, errlen, "%s: must be an integer between %ld and %ld", key, lo, hi);
        return 400;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

int avisim_faults_set(struct avisim_faults *f, const json_t *cfg,
                      struct avisim_session_faults *once, char *err, size_t errlen)
{
    static const char *const known[] = {
        "error_rate",          "error_status",     "latency_ms",
        "drop_rate",           "drop_response_rate", "expire_sessions",
        "upgrade_in_progress", "rate_limit_burst", "delete_referenced_status",
        "seed",                "invalidate_sessions", "refuse_name",
        "refuse_message",
    };
    struct avisim_faults n;
    int rc;

    memset(once, 0, sizeof(*once));
    if (!json_is_object(cfg)) {
        snprintf(err, errlen, "faults: body must be a JSON object");
        return 400;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)cfg, key, val)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok = ok || strcmp(key, known[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "%.64s: unknown fault", key);
            return 400;
        }
    }
    avisim_faults_clear(&n);
    if ((rc = get_rate(cfg, "error_rate", &n.error_rate, err, errlen)) ||
        (rc = get_rate(cfg, "drop_rate", &n.drop_rate, err, errlen)) ||
        (rc = get_rate(cfg, "drop_response_rate", &n.drop_response_rate, err, errlen)) ||
        (rc = get_int(cfg, "error_status", 500, 503, &n.error_status, err, errlen)) ||
        (rc = get_int(cfg, "latency_ms", 0, MAX_LATENCY_MS, &n.latency_ms, err, errlen)) ||
        (rc = get_int(cfg, "rate_limit_burst", 0, MAX_BURST, &n.rate_limit_burst, err, errlen)) ||
        (rc = get_int(cfg, "delete_referenced_status", 400, 403, &n.delete_referenced_status, err,
                      errlen)))
        return rc;
    if (n.error_status == 501 ||
        (n.delete_referenced_status != 400 && n.delete_referenced_status != 403)) {
        snprintf(err, errlen, "error_status must be 500, 502 or 503; "
                              "delete_referenced_status 400 or 403");
        return 400;
    }
    json_t *refuse = json_object_get(cfg, "refuse_name");
    json_t *message = json_object_get(cfg, "refuse_message");
    if ((refuse && (!json_is_string(refuse) ||
                    json_string_length(refuse) >= sizeof n.refuse_name)) ||
        (message && (!json_is_string(message) ||
                     json_string_length(message) >= sizeof n.refuse_message))) {
        snprintf(err, errlen, "refuse_name, refuse_message: must be strings under %zu bytes",
                 sizeof n.refuse_name);
        return 400;
    }
    snprintf(n.refuse_name, sizeof n.refuse_name, "%s", refuse ? json_string_value(refuse) : "");
    snprintf(n.refuse_message, sizeof n.refuse_message, "%s",
             message ? json_string_value(message) : "Refused by fault injection");
    json_t *seed = json_object_get(cfg, "seed");
    if (seed && !json_is_integer(seed)) {
        snprintf(err, errlen, "seed: must be an integer");
        return 400;
    }
    if (seed) {
        n.seed = (uint64_t)json_integer_value(seed);
        /* xorshift must not start at zero. */
        n.rng = n.seed * 0x9E3779B97F4A7C15ull | 1;
    }
    json_t *up = json_object_get(cfg, "upgrade_in_progress");
    json_t *exp = json_object_get(cfg, "expire_sessions");
    json_t *inv = json_object_get(cfg, "invalidate_sessions");
    if ((up && !json_is_boolean(up)) || (exp && !json_is_boolean(exp)) ||
        (inv && !json_is_boolean(inv))) {
        snprintf(err, errlen,
                 "upgrade_in_progress, expire_sessions, invalidate_sessions: must be booleans");
        return 400;
    }
    n.upgrade_in_progress = json_is_true(up);
    once->expire = json_is_true(exp);
    once->invalidate = json_is_true(inv);
    n.tokens = n.rate_limit_burst;
    n.tokens_ms = avisim_mono_ms();
    *f = n;
    return 0;
}

json_t *avisim_faults_json(const struct avisim_faults *f)
{
    return json_pack("{s:f, s:i, s:i, s:f, s:f, s:b, s:i, s:i, s:I, s:s, s:s}", "error_rate",
                     f->error_rate, "error_status", f->error_status, "latency_ms", f->latency_ms,
                     "drop_rate", f->drop_rate, "drop_response_rate", f->drop_response_rate,
                     "upgrade_in_progress", f->upgrade_in_progress,
                     "rate_limit_burst", f->rate_limit_burst, "delete_referenced_status",
                     f->delete_referenced_status, "seed", (json_int_t)f->seed, "refuse_name",
                     f->refuse_name, "refuse_message", f->refuse_message);
}
