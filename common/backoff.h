/* Exponential backoff with full jitter, as client-go's: the n-th retry waits
 * a random time in [delay/2, delay] where delay = min(initial * 2^n, max). */
#ifndef KAVI_COMMON_BACKOFF_H
#define KAVI_COMMON_BACKOFF_H

#include <stdint.h>

typedef struct {
    int64_t initial_ms;   /* first delay */
    int64_t max_ms;       /* cap */
    unsigned failures;    /* consecutive failures so far */
    unsigned seed;        /* rand_r state */
} backoff_t;

void backoff_init(backoff_t *b, int64_t initial_ms, int64_t max_ms);
/* Records one failure and returns how long to wait before the next try. */
int64_t backoff_next_ms(backoff_t *b);
void backoff_reset(backoff_t *b);

#endif
