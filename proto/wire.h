/* wire.h — the msgpack primitives every proto/ message is built from.
 *
 * Writing: a proto_writer wraps msgpack-c's packer and remembers the first
 * failure, so an encoder is a flat list of pw_* calls and one check at the
 * end.
 *
 * Reading: proto_unpack() first runs proto_msgpack_check() over the bytes —
 * msgpack-c pre-allocates whatever count a container header claims (a 5-byte
 * input can ask for ~96 GB, msgpack-c#1013) — so only input whose every
 * container fits in its own length reaches msgpack-c. The decoded tree
 * borrows the input bytes; pr_* accessors copy what they return. */
#ifndef KAVI_PROTO_WIRE_H
#define KAVI_PROTO_WIRE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAX_DEPTH 32            /* msgpack-c's own unpacker stack is 32 */
#define PROTO_MAX_MESSAGE (64u << 20) /* hard cap on any one message */

typedef struct {
    msgpack_sbuffer buf;
    msgpack_packer pk;
    int failed; /* first packing failure, sticky */
} proto_writer;

void proto_writer_init(proto_writer *w);
/* Hands the packed bytes to the caller (free() them) and resets the writer.
 * Returns 0, or KV_ERR_NOMEM if any pw_* call failed (nothing is returned). */
int proto_writer_finish(proto_writer *w, void **out, size_t *out_len);
void proto_writer_destroy(proto_writer *w);

void pw_map(proto_writer *w, size_t n);
void pw_array(proto_writer *w, size_t n);
void pw_str(proto_writer *w, const char *s); /* NULL packs nil */
void pw_strn(proto_writer *w, const char *s, size_t n);
void pw_uint(proto_writer *w, uint64_t v);
void pw_int(proto_writer *w, int64_t v);
void pw_bool(proto_writer *w, bool v);
void pw_bin(proto_writer *w, const void *data, size_t n);
void pw_nil(proto_writer *w);

/* Returns the number of bytes of the first complete msgpack value in data,
 * 0 if the value is incomplete, -1 if it is invalid or claims more items
 * than bytes remain, or nests deeper than max_depth. */
long proto_msgpack_check(const uint8_t *data, size_t len, int max_depth);

/* Validates and unpacks exactly one value filling all of data.
 * KV_ERR_TRUNCATED, KV_ERR_INVALID or KV_ERR_TOO_LARGE on bad input. */
int proto_unpack(msgpack_unpacked *up, const void *data, size_t len);

/* Map lookups on a decoded map (linear; messages are small). NULL if absent
 * or if `map` is not a map. */
const msgpack_object *pr_get(const msgpack_object *map, const char *key);

/* Typed reads of map[key]. A missing key leaves *out unchanged and returns 0
 * unless `required`; a wrong type is always KV_ERR_INVALID. Strings are
 * copied (NUL-terminated, owned by the caller); nil reads as absent. */
int pr_str(const msgpack_object *map, const char *key, bool required, char **out);
int pr_uint(const msgpack_object *map, const char *key, bool required, uint64_t *out);
int pr_int32(const msgpack_object *map, const char *key, bool required, int32_t *out);
int pr_bool(const msgpack_object *map, const char *key, bool required, bool *out);
/* Borrowed view of a bin or str field. */
int pr_bytes(const msgpack_object *map, const char *key, bool required, const char **ptr,
             size_t *len);
/* Array field; *items borrowed, NULL with *n 0 when absent. */
int pr_array(const msgpack_object *map, const char *key, bool required,
             const msgpack_object **items, size_t *n);
/* Copies an str object into a NUL-terminated string. */
int pr_str_of(const msgpack_object *obj, char **out);

#endif
