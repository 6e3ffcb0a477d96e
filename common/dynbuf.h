/* dynbuf.h — a growable byte buffer with a hard maximum set at init, in the
 * spirit of curl's dynbuf: every buffer filled from the network or a file
 * (watch-stream lines, REST bodies) has one, so hostile or broken input
 * costs an error, never unbounded memory. The content is always followed by
 * a NUL byte, so text can be read as a C string. */
#ifndef KAVI_COMMON_DYNBUF_H
#define KAVI_COMMON_DYNBUF_H

#include <stddef.h>

typedef struct {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes held, without the trailing NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* len never passes this */
} dynbuf;

void dynbuf_init(dynbuf *b, size_t max);
/* Appends len bytes. KV_ERR_TOO_LARGE when the result would pass the
 * maximum, KV_ERR_NOMEM when allocation fails; in both cases the buffer is
 * left as it was. */
int dynbuf_append(dynbuf *b, const void *data, size_t len);
/* Empties the buffer; a large allocation (over 1 MiB) is given back. */
void dynbuf_reset(dynbuf *b);
void dynbuf_free(dynbuf *b);

#endif
