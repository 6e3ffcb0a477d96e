#include "proto/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "proto/wire.h"

int proto_envelope_encode(const proto_envelope *env, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_map(&w, 11);
    pw_str(&w, "v");
    pw_uint(&w, PROTO_ENVELOPE_VERSION);
    pw_str(&w, "kind");
    pw_uint(&w, (uint64_t)env->kind);
    pw_str(&w, "epoch");
    pw_uint(&w, env->epoch);
    pw_str(&w, "seq");
    pw_uint(&w, env->seq);
    pw_str(&w, "req");
    pw_uint(&w, env->request_id);
    pw_str(&w, "credit");
    pw_uint(&w, env->credit);
    pw_str(&w, "count");
    pw_uint(&w, env->count);
    pw_str(&w, "digest");
    pw_uint(&w, env->digest);
    pw_str(&w, "stream");
    pw_str(&w, env->stream);
    pw_str(&w, "key");
    pw_str(&w, env->key);
    pw_str(&w, "body");
    if (env->body)
        pw_bin(&w, env->body, env->body_len);
    else
        pw_nil(&w);
    return proto_writer_finish(&w, out, out_len);
}

int proto_envelope_decode(proto_envelope *env, const void *data, size_t len)
{
    msgpack_unpacked up;
    uint64_t version = 0, kind = 0;
    const char *body = NULL;
    size_t body_len = 0;
    int rc;

    memset(env, 0, sizeof *env);
    msgpack_unpacked_init(&up);
    rc = proto_unpack(&up, data, len);
    if (rc < 0)
        goto done;
    const msgpack_object *root = &up.data;
    rc = pr_uint(root, "v", true, &version);
    if (rc == 0 && version != PROTO_ENVELOPE_VERSION)
        rc = KV_ERR_VERSION;
    rc = rc ?: pr_uint(root, "kind", true, &kind);
    rc = rc ?: pr_uint(root, "epoch", true, &env->epoch);
    rc = rc ?: pr_uint(root, "seq", true, &env->seq);
    rc = rc ?: pr_uint(root, "req", false, &env->request_id);
    rc = rc ?: pr_uint(root, "credit", false, &env->credit);
    rc = rc ?: pr_uint(root, "count", false, &env->count);
    rc = rc ?: pr_uint(root, "digest", false, &env->digest);
    rc = rc ?: pr_str(root, "stream", true, &env->stream);
    rc = rc ?: pr_str(root, "key", false, &env->key);
    rc = rc ?: pr_bytes(root, "body", false, &body, &body_len);
    if (rc < 0)
        goto done;
    if (kind < PROTO_PUT || kind > PROTO_SNAPSHOT_CREDIT) {
        rc = KV_ERR_INVALID;
        goto done;
    }
    env->kind = (proto_kind)kind;
    if (body) {
        /* Copy: the unpacked tree borrows `data`, which the caller may free. */
        env->body = malloc(body_len ? body_len : 1);
        if (!env->body) {
            rc = KV_ERR_NOMEM;
            goto done;
        }
        memcpy(env->body, body, body_len);
        env->body_len = body_len;
    }
    if ((env->kind == PROTO_PUT || env->kind == PROTO_DELETE) && !env->key)
        rc = KV_ERR_INVALID;
done:
    msgpack_unpacked_destroy(&up);
    if (rc < 0)
        proto_envelope_clear(env);
    return rc;
}

void proto_envelope_clear(proto_envelope *env)
{
    free(env->stream);
    free(env->key);
    free(env->body);
    memset(env, 0, sizeof *env);
}

uint64_t proto_entry_digest(const char *key, const void *body, size_t body_len)
{
    uint64_t hash = 14695981039346656037ull;
    const uint8_t *bytes = (const uint8_t *)key;
    for (size_t i = 0, n = strlen(key) + 1; i < n; i++) /* the NUL separates key and body */
        hash = (hash ^ bytes[i]) * 1099511628211ull;
    bytes = body;
    for (size_t i = 0; i < body_len; i++)
        hash = (hash ^ bytes[i]) * 1099511628211ull;
    return hash;
}

int proto_topic(char *buf, size_t buf_len, const char *stream)
{
    size_t n = strlen(stream);
    if (n + 1 > buf_len)
        return -1;
    memcpy(buf, stream, n);
    buf[n] = '\0';
    return (int)n + 1;
}

int proto_eos_encode(const proto_eos *eos, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_map(&w, eos->has_models ? 4 : 2);
    pw_str(&w, "v");
    pw_uint(&w, PROTO_EOS_VERSION);
    pw_str(&w, "run");
    pw_uint(&w, eos->run_id);
    if (eos->has_models) {
        pw_str(&w, "models");
        pw_uint(&w, eos->models);
        pw_str(&w, "digest");
        pw_uint(&w, eos->digest);
    }
    return proto_writer_finish(&w, out, out_len);
}

int proto_eos_decode(proto_eos *eos, const void *data, size_t len)
{
    msgpack_unpacked up;
    uint64_t version = 0, models = 0;
    memset(eos, 0, sizeof *eos);
    msgpack_unpacked_init(&up);
    int rc = proto_unpack(&up, data, len);
    rc = rc ?: pr_uint(&up.data, "v", true, &version);
    if (rc == 0 && version != PROTO_EOS_VERSION)
        rc = KV_ERR_VERSION;
    rc = rc ?: pr_uint(&up.data, "run", true, &eos->run_id);
    rc = rc ?: pr_uint(&up.data, "models", false, &models);
    rc = rc ?: pr_uint(&up.data, "digest", false, &eos->digest);
    if (rc == 0 && pr_get(&up.data, "models")) {
        if (models > UINT32_MAX || !pr_get(&up.data, "digest"))
            rc = KV_ERR_INVALID;
        eos->has_models = true;
        eos->models = (uint32_t)models;
    }
    msgpack_unpacked_destroy(&up);
    if (rc < 0)
        memset(eos, 0, sizeof *eos);
    return rc;
}
