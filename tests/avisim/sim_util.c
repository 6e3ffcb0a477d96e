/*
 * Small helpers shared by the simulator modules: a bounded buffer, random
 * ids, clocks, URL coding and IPv4/version parsing. None of them touch
 * simulator state, so none need the lock.
 */
#define _GNU_SOURCE /* vasprintf, strcasestr */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "sim_internal.h"

void avisim_buf_init(struct avisim_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

int avisim_buf_add(struct avisim_buf *b, const void *p, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return -E2BIG;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int avisim_buf_addf(struct avisim_buf *b, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    int rc = avisim_buf_add(b, s, (size_t)n);
    free(s);
    return rc;
}

int avisim_buf_add_urlencoded(struct avisim_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int rc;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            rc = avisim_buf_add(b, s, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = avisim_buf_add(b, esc, 3);
        }
        if (rc)
            return rc;
    }
    return 0;
}

void avisim_buf_free(struct avisim_buf *b)
{
    free(b->data);
    avisim_buf_init(b, b->max);
}

int avisim_random_hex(char *out, size_t nbytes)
{
    unsigned char raw[64];
    if (nbytes > sizeof(raw))
        return -EINVAL;
    if (getrandom(raw, nbytes, 0) != (ssize_t)nbytes)
        return -EIO;
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

int avisim_uuid4(char out[37])
{
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return -EIO;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
             r[13], r[14], r[15]);
    return 0;
}

int64_t avisim_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t avisim_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *avisim_strdupf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int avisim_url_decode(const char *in, size_t len, char *out, size_t outsz, bool plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%' && i + 2 < len && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
            c = (char)(hexval(in[i + 1]) * 16 + hexval(in[i + 2]));
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (o + 1 >= outsz)
            return -1;
        out[o++] = c;
    }
    if (outsz == 0)
        return -1;
    out[o] = '\0';
    return 0;
}

bool avisim_csv_contains(const char *csv, const char *item)
{
    size_t n = strlen(item);
    const char *p = csv;
    while (p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, item, n) == 0)
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

bool avisim_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int avisim_ipv4_parse(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (!s || inet_pton(AF_INET, s, &a) != 1)
        return -EINVAL;
    *out = ntohl(a.s_addr);
    return 0;
}

void avisim_ipv4_format(uint32_t addr, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255,
             addr & 255);
}

/* Up to 8 numeric components, each below 1e6; "22.1.3" or "30.2.1-9000". A
 * trailing non-numeric build suffix after '-' is ignored. */
static int version_split(const char *v, long parts[8], int *n)
{
    *n = 0;
    const char *p = v;
    if (!v || !*v || strlen(v) > 64)
        return -EINVAL;
    while (*p && *p != '-') {
        if (*n == 8 || !isdigit((unsigned char)*p))
            return -EINVAL;
        char *end = NULL;
        long x = strtol(p, &end, 10);
        if (x < 0 || x > 999999)
            return -EINVAL;
        parts[(*n)++] = x;
        p = end;
        if (*p == '.')
            p++;
        else if (*p && *p != '-')
            return -EINVAL;
    }
    return *n ? 0 : -EINVAL;
}

int avisim_version_cmp(const char *a, const char *b, int *cmp)
{
    long pa[8], pb[8];
    int na, nb;
    if (version_split(a, pa, &na) || version_split(b, pb, &nb))
        return -EINVAL;
    *cmp = 0;
    for (int i = 0; i < 8 && (i < na || i < nb); i++) {
        long x = i < na ? pa[i] : 0, y = i < nb ? pb[i] : 0;
        if (x != y) {
            *cmp = x < y ? -1 : 1;
            break;
        }
    }
    return 0;
}

char *avisim_json_scalar_text(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strdup(json_string_value(v));
    case JSON_INTEGER:
        return avisim_strdupf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return avisim_strdupf("%.17g", json_real_value(v));
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    default:
        return NULL;
    }
}

/* Standard base64 (RFC 4648 §4) with padding, as in an HTTP Basic
 * credential; -1 on a malformed input or when out is too small. */
int avisim_base64_decode(const char *in, char *out, size_t outsz)
{
    size_t len = strlen(in);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    size_t pad = 0;

    if (len == 0 || len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        int v;
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z')
            v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9')
            v = ch - '0' + 52;
        else if (ch == '+')
            v = 62;
        else if (ch == '/')
            v = 63;
        else if (ch == '=' && i >= len - 2) {
            pad++;
            continue;
        } else
            return -1;
        if (pad)
            return -1; /* data after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= outsz)
                return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return 0;
}
