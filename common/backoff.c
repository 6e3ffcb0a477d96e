#include "common/backoff.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void backoff_init(backoff_t *b, int64_t initial_ms, int64_t max_ms)
{
    b->initial_ms = initial_ms;
    b->max_ms = max_ms;
    b->failures = 0;
    b->seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16) ^ (unsigned)(uintptr_t)b;
}

int64_t backoff_next_ms(backoff_t *b)
{
    int64_t delay = b->initial_ms;
    for (unsigned i = 0; i < b->failures && delay < b->max_ms; i++)
        delay *= 2;
    if (delay > b->max_ms)
        delay = b->max_ms;
    b->failures++;
    int64_t half = delay / 2;
    return half + (half > 0 ? rand_r(&b->seed) % (half + 1) : 0);
}

void backoff_reset(backoff_t *b) { b->failures = 0; }
