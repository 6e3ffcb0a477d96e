/*
 * Login sessions. A session is a random 32-hex id (sent back as both
 * avi-sessionid and sessionid, like the controller) with its own CSRF token,
 * and dies after idle_ms without use, which is how a real controller's
 * api_idle_timeout shows up to clients: a 401 on the next call.
 *
 * The table is capped: a client that logs in for every request must not
 * grow it without bound, so the least recently used session is evicted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

static bool expired(const struct avisim_sessions *s, const struct avisim_session *x,
                    int64_t now_ms)
{
    return now_ms - x->last_used_ms > s->idle_ms;
}

static void drop(struct avisim_sessions *s, struct avisim_session *x)
{
    HASH_DEL(s->map, x);
    free(x);
    s->count--;
}

static void evict(struct avisim_sessions *s, int64_t now_ms)
{
    struct avisim_session *x, *tmp, *oldest = NULL;
    HASH_ITER(hh, s->map, x, tmp)
    {
        if (expired(s, x, now_ms))
            drop(s, x);
        else if (!oldest || x->last_used_ms < oldest->last_used_ms)
            oldest = x;
    }
    if (s->count >= AVISIM_MAX_SESSIONS && oldest)
        drop(s, oldest);
}

int avisim_session_create(struct avisim_sessions *s, int64_t now_ms, struct avisim_session **out)
{
    if (s->count >= AVISIM_MAX_SESSIONS)
        evict(s, now_ms);
    struct avisim_session *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    if (avisim_random_hex(x->id, 16) || avisim_random_hex(x->csrf, 16)) {
        free(x);
        return -EIO;
    }
    x->last_used_ms = now_ms;
    HASH_ADD_STR(s->map, id, x);
    s->count++;
    *out = x;
    return 0;
}

struct avisim_session *avisim_session_use(struct avisim_sessions *s, const char *id, int64_t now_ms)
{
    struct avisim_session *x = NULL;
    if (!id || strlen(id) != 32)
        return NULL;
    HASH_FIND_STR(s->map, id, x);
    if (!x)
        return NULL;
    if (expired(s, x, now_ms)) {
        drop(s, x);
        return NULL;
    }
    x->last_used_ms = now_ms;
    return x;
}

void avisim_session_end(struct avisim_sessions *s, const char *id)
{
    struct avisim_session *x = NULL;
    if (!id || strlen(id) != 32)
        return;
    HASH_FIND_STR(s->map, id, x);
    if (x)
        drop(s, x);
}

void avisim_session_end_all(struct avisim_sessions *s)
{
    struct avisim_session *x, *tmp;
    HASH_ITER(hh, s->map, x, tmp)
    {
        drop(s, x);
    }
}

void avisim_session_invalidate_all(struct avisim_sessions *s)
{
    struct avisim_session *x, *tmp;
    HASH_ITER(hh, s->map, x, tmp)
    {
        x->invalidated = true;
    }
}

unsigned avisim_session_active(const struct avisim_sessions *s, int64_t now_ms)
{
    unsigned n = 0;
    struct avisim_session *x, *tmp;
    HASH_ITER(hh, s->map, x, tmp)
    {
        if (!expired(s, x, now_ms))
            n++;
    }
    return n;
}
