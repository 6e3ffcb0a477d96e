#include "common/base64.h"

#include <stdint.h>
#include <stdlib.h>

#include "common/error.h"

static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int base64_decode(char **out, size_t *out_len, const char *text, size_t len, bool strict)
{
    char *buf = malloc(len / 4 * 3 + 4);
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0, pad = 0, symbols = 0;

    *out = NULL;
    *out_len = 0;
    if (!buf)
        return KV_ERR_NOMEM;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\r' || c == '\n' || (!strict && (c == ' ' || c == '\t')))
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = base64_value(c);
        if (v < 0 || pad > 0)
            goto out_invalid; /* not base64, or a symbol after padding */
        symbols++;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    /* One symbol alone cannot carry a byte; padding completes a quad. */
    if (symbols % 4 == 1 || pad > 2 || (pad && (symbols + pad) % 4 != 0))
        goto out_invalid;
    if (strict && (symbols + pad) % 4 != 0)
        goto out_invalid;
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return KV_OK;

out_invalid:
    free(buf);
    return KV_ERR_INVALID;
}
