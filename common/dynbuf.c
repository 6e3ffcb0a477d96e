#include "common/dynbuf.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define DYNBUF_KEEP_BYTES (1024 * 1024)

void dynbuf_init(dynbuf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

int dynbuf_append(dynbuf *b, const void *data, size_t len)
{
    if (len > b->max || b->len > b->max - len)
        return KV_ERR_TOO_LARGE;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return KV_ERR_NOMEM;
        b->data = grown;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return KV_OK;
}

void dynbuf_reset(dynbuf *b)
{
    b->len = 0;
    if (b->cap > DYNBUF_KEEP_BYTES) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    } else if (b->data) {
        b->data[0] = '\0';
    }
}

void dynbuf_free(dynbuf *b)
{
    free(b->data);
    dynbuf_init(b, b->max);
}
