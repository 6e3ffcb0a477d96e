#include "proto/wire.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

void proto_writer_init(proto_writer *w)
{
    msgpack_sbuffer_init(&w->buf);
    msgpack_packer_init(&w->pk, &w->buf, msgpack_sbuffer_write);
    w->failed = 0;
}

int proto_writer_finish(proto_writer *w, void **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (w->failed) {
        proto_writer_destroy(w);
        return KV_ERR_NOMEM;
    }
    *out_len = w->buf.size;
    *out = msgpack_sbuffer_release(&w->buf);
    if (!*out) {
        /* An empty buffer releases NULL; give the caller a real allocation. */
        *out = malloc(1);
        if (!*out)
            return KV_ERR_NOMEM;
    }
    return KV_OK;
}

void proto_writer_destroy(proto_writer *w) { msgpack_sbuffer_destroy(&w->buf); }

#define PW_CHECK(w, call)                                                                         \
    do {                                                                                          \
        if (!(w)->failed && (call) != 0)                                                          \
            (w)->failed = KV_ERR_NOMEM;                                                           \
    } while (0)

void pw_map(proto_writer *w, size_t n) { PW_CHECK(w, msgpack_pack_map(&w->pk, n)); }
void pw_array(proto_writer *w, size_t n) { PW_CHECK(w, msgpack_pack_array(&w->pk, n)); }
void pw_uint(proto_writer *w, uint64_t v) { PW_CHECK(w, msgpack_pack_uint64(&w->pk, v)); }
void pw_int(proto_writer *w, int64_t v) { PW_CHECK(w, msgpack_pack_int64(&w->pk, v)); }
void pw_nil(proto_writer *w) { PW_CHECK(w, msgpack_pack_nil(&w->pk)); }

void pw_bool(proto_writer *w, bool v)
{
    PW_CHECK(w, v ? msgpack_pack_true(&w->pk) : msgpack_pack_false(&w->pk));
}

void pw_strn(proto_writer *w, const char *s, size_t n)
{
    PW_CHECK(w, msgpack_pack_str_with_body(&w->pk, s, n));
}

void pw_str(proto_writer *w, const char *s)
{
    if (!s)
        pw_nil(w);
    else
        pw_strn(w, s, strlen(s));
}

void pw_bin(proto_writer *w, const void *data, size_t n)
{
    PW_CHECK(w, msgpack_pack_bin_with_body(&w->pk, data, n));
}

static uint64_t read_big_endian(const uint8_t *p, int n)
{
    uint64_t v = 0;
    while (n--)
        v = v << 8 | *p++;
    return v;
}

long proto_msgpack_check(const uint8_t *data, size_t len, int max_depth)
{
    uint64_t pending[PROTO_MAX_DEPTH + 1];
    int depth = 0;
    size_t i = 0;

    if (max_depth > PROTO_MAX_DEPTH)
        max_depth = PROTO_MAX_DEPTH;
    pending[0] = 1;
    while (depth >= 0) {
        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        if (i >= len)
            return 0;
        pending[depth]--;
        uint8_t tag = data[i++];
        uint64_t body = 0;  /* payload bytes that follow the header */
        uint64_t count = 0; /* child values that follow */
        int length_bytes = 0;

        if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc0 || tag == 0xc2 || tag == 0xc3) {
            /* fixint, nil, bool: no payload */
        } else if (tag >= 0xa0 && tag <= 0xbf) {
            body = tag & 0x1f; /* fixstr */
        } else if (tag >= 0x90 && tag <= 0x9f) {
            count = tag & 0x0f; /* fixarray */
        } else if (tag >= 0x80 && tag <= 0x8f) {
            count = 2u * (tag & 0x0f); /* fixmap */
        } else {
            switch (tag) {
            case 0xcc: case 0xd0: body = 1; break;
            case 0xcd: case 0xd1: body = 2; break;
            case 0xca: case 0xce: case 0xd2: body = 4; break;
            case 0xcb: case 0xcf: case 0xd3: body = 8; break;
            case 0xd4: body = 2; break;
            case 0xd5: body = 3; break;
            case 0xd6: body = 5; break;
            case 0xd7: body = 9; break;
            case 0xd8: body = 17; break;
            case 0xc4: case 0xd9: length_bytes = 1; break;
            case 0xc5: case 0xda: length_bytes = 2; break;
            case 0xc6: case 0xdb: length_bytes = 4; break;
            case 0xc7: length_bytes = 1; body = 1; break; /* ext8: type byte */
            case 0xc8: length_bytes = 2; body = 1; break;
            case 0xc9: length_bytes = 4; body = 1; break;
            case 0xdc: case 0xdd: case 0xde: case 0xdf: {
                int n = (tag == 0xdc || tag == 0xde) ? 2 : 4;
                if (len - i < (size_t)n)
                    return 0;
                count = read_big_endian(data + i, n) * ((tag == 0xde || tag == 0xdf) ? 2 : 1);
                i += (size_t)n;
                break;
            }
            default:
                return -1; /* 0xc1 is never used */
            }
        }
        if (length_bytes) {
            if (len - i < (size_t)length_bytes)
                return 0;
            body += read_big_endian(data + i, length_bytes);
            i += (size_t)length_bytes;
        }
        if (body) {
            if (len - i < body)
                return 0;
            i += body;
        }
        if (count) {
            /* Every child takes at least one byte: a larger claim is hostile. */
            if (count > len - i)
                return -1;
            if (++depth >= max_depth)
                return -1;
            pending[depth] = count;
        }
    }
    return (long)i;
}

int proto_unpack(msgpack_unpacked *up, const void *data, size_t len)
{
    if (len > PROTO_MAX_MESSAGE)
        return KV_ERR_TOO_LARGE;
    long whole = proto_msgpack_check(data, len, PROTO_MAX_DEPTH - 1);
    if (whole == 0)
        return KV_ERR_TRUNCATED;
    if (whole < 0 || (size_t)whole != len)
        return KV_ERR_INVALID;
    size_t offset = 0;
    if (msgpack_unpack_next(up, data, len, &offset) != MSGPACK_UNPACK_SUCCESS)
        return KV_ERR_INVALID;
    return KV_OK;
}

const msgpack_object *pr_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t key_len = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == key_len &&
            memcmp(k->via.str.ptr, key, key_len) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

/* Looks up key; returns 1 when present and not nil, 0 when absent (an error
 * if required), negative on error. */
static int pr_lookup(const msgpack_object *map, const char *key, bool required,
                     const msgpack_object **value)
{
    *value = pr_get(map, key);
    if (!*value || (*value)->type == MSGPACK_OBJECT_NIL)
        return required ? KV_ERR_INVALID : 0;
    return 1;
}

int pr_str_of(const msgpack_object *obj, char **out)
{
    if (obj->type != MSGPACK_OBJECT_STR)
        return KV_ERR_INVALID;
    if (memchr(obj->via.str.ptr, '\0', obj->via.str.size))
        return KV_ERR_INVALID;
    char *copy = malloc(obj->via.str.size + 1);
    if (!copy)
        return KV_ERR_NOMEM;
    memcpy(copy, obj->via.str.ptr, obj->via.str.size);
    copy[obj->via.str.size] = '\0';
    free(*out);
    *out = copy;
    return KV_OK;
}

int pr_str(const msgpack_object *map, const char *key, bool required, char **out)
{
    const msgpack_object *v;
    int rc = pr_lookup(map, key, required, &v);
    return rc <= 0 ? rc : pr_str_of(v, out);
}

int pr_uint(const msgpack_object *map, const char *key, bool required, uint64_t *out)
{
    const msgpack_object *v;
    int rc = pr_lookup(map, key, required, &v);
    if (rc <= 0)
        return rc;
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return KV_ERR_INVALID;
    *out = v->via.u64;
    return KV_OK;
}

int pr_int32(const msgpack_object *map, const char *key, bool required, int32_t *out)
{
    const msgpack_object *v;
    int rc = pr_lookup(map, key, required, &v);
    if (rc <= 0)
        return rc;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT32_MAX)
        *out = (int32_t)v->via.u64;
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && v->via.i64 >= INT32_MIN)
        *out = (int32_t)v->via.i64;
    else
        return KV_ERR_INVALID;
    return KV_OK;
}

int pr_bool(const msgpack_object *map, const char *key, bool required, bool *out)
{
    const msgpack_object *v;
    int rc = pr_lookup(map, key, required, &v);
    if (rc <= 0)
        return rc;
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return KV_ERR_INVALID;
    *out = v->via.boolean;
    return KV_OK;
}

int pr_bytes(const msgpack_object *map, const char *key, bool required, const char **ptr,
             size_t *len)
{
    const msgpack_object *v;
    int rc = pr_lookup(map, key, required, &v);
    if (rc <= 0)
        return rc;
    if (v->type == MSGPACK_OBJECT_BIN) {
        *ptr = v->via.bin.ptr;
        *len = v->via.bin.size;
    } else if (v->type == MSGPACK_OBJECT_STR) {
        *ptr = v->via.str.ptr;
        *len = v->via.str.size;
    } else {
        return KV_ERR_INVALID;
    }
    return KV_OK;
}

int pr_array(const msgpack_object *map, const char *key, bool required,
             const msgpack_object **items, size_t *n)
{
    const msgpack_object *v;
    *items = NULL;
    *n = 0;
    int rc = pr_lookup(map, key, required, &v);
    if (rc <= 0)
        return rc;
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return KV_ERR_INVALID;
    *items = v->via.array.ptr;
    *n = v->via.array.size;
    return KV_OK;
}
