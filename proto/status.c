#include "proto/status.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "proto/envelope.h"
#include "proto/wire.h"

#define MAX_VIPS 64

int proto_object_status_encode(const proto_object_status *st, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_map(&w, 6);
    pw_str(&w, "v");
    pw_uint(&w, PROTO_STATUS_VERSION);
    pw_str(&w, "type");
    pw_uint(&w, PROTO_STATUS_OBJECT);
    pw_str(&w, "object");
    pw_str(&w, st->object);
    pw_str(&w, "tenant");
    pw_str(&w, st->tenant);
    pw_str(&w, "vips");
    pw_array(&w, st->n_vips);
    for (size_t i = 0; i < st->n_vips; i++)
        pw_str(&w, st->vips[i]);
    pw_str(&w, "error");
    pw_str(&w, st->error);
    return proto_writer_finish(&w, out, out_len);
}

int proto_progress_encode(const proto_progress *p, void **out, size_t *out_len)
{
    proto_writer w;
    proto_writer_init(&w);
    pw_map(&w, 11);
    pw_str(&w, "v");
    pw_uint(&w, PROTO_STATUS_VERSION);
    pw_str(&w, "type");
    pw_uint(&w, PROTO_STATUS_PROGRESS);
    pw_str(&w, "tenant");
    pw_str(&w, p->tenant);
    pw_str(&w, "eos");
    pw_uint(&w, p->eos_run);
    pw_str(&w, "pending");
    pw_uint(&w, p->pending);
    pw_str(&w, "failed");
    pw_uint(&w, p->failed);
    pw_str(&w, "error");
    pw_str(&w, p->last_error);
    pw_str(&w, "published");
    pw_uint(&w, p->published_models);
    pw_str(&w, "published_digest");
    pw_uint(&w, p->published_digest);
    pw_str(&w, "applied");
    pw_uint(&w, p->applied_models);
    pw_str(&w, "applied_digest");
    pw_uint(&w, p->applied_digest);
    return proto_writer_finish(&w, out, out_len);
}

static int decode_object_status(const msgpack_object *root, proto_object_status *st)
{
    const msgpack_object *vips;
    size_t n_vips;
    int rc = pr_str(root, "object", true, &st->object);
    rc = rc ?: pr_str(root, "tenant", true, &st->tenant);
    rc = rc ?: pr_str(root, "error", false, &st->error);
    rc = rc ?: pr_array(root, "vips", false, &vips, &n_vips);
    if (rc == 0 && n_vips > MAX_VIPS)
        rc = KV_ERR_INVALID;
    if (rc == 0 && n_vips) {
        st->vips = calloc(n_vips, sizeof *st->vips);
        rc = st->vips ? 0 : KV_ERR_NOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n_vips; i++) {
        st->n_vips = i + 1;
        rc = pr_str_of(&vips[i], &st->vips[i]);
    }
    return rc;
}

static int decode_progress(const msgpack_object *root, proto_progress *p)
{
    uint64_t pending = 0, failed = 0, published = 0, applied = 0;
    int rc = pr_str(root, "tenant", true, &p->tenant);
    rc = rc ?: pr_uint(root, "eos", false, &p->eos_run);
    rc = rc ?: pr_uint(root, "pending", true, &pending);
    rc = rc ?: pr_uint(root, "failed", true, &failed);
    rc = rc ?: pr_str(root, "error", false, &p->last_error);
    rc = rc ?: pr_uint(root, "published", true, &published);
    rc = rc ?: pr_uint(root, "published_digest", true, &p->published_digest);
    rc = rc ?: pr_uint(root, "applied", true, &applied);
    rc = rc ?: pr_uint(root, "applied_digest", true, &p->applied_digest);
    if (rc == 0 && (pending > UINT32_MAX || failed > UINT32_MAX || published > UINT32_MAX ||
                    applied > UINT32_MAX))
        rc = KV_ERR_INVALID;
    p->pending = (uint32_t)pending;
    p->failed = (uint32_t)failed;
    p->published_models = (uint32_t)published;
    p->applied_models = (uint32_t)applied;
    return rc;
}

int proto_status_decode(proto_status *out, const void *data, size_t len)
{
    msgpack_unpacked up;
    uint64_t version = 0, type = 0;
    int rc;

    memset(out, 0, sizeof *out);
    msgpack_unpacked_init(&up);
    rc = proto_unpack(&up, data, len);
    rc = rc ?: pr_uint(&up.data, "v", true, &version);
    if (rc == 0 && version != PROTO_STATUS_VERSION)
        rc = KV_ERR_VERSION;
    rc = rc ?: pr_uint(&up.data, "type", true, &type);
    if (rc == 0 && type == PROTO_STATUS_OBJECT)
        rc = decode_object_status(&up.data, &out->object);
    else if (rc == 0 && type == PROTO_STATUS_PROGRESS)
        rc = decode_progress(&up.data, &out->progress);
    else if (rc == 0)
        rc = KV_ERR_INVALID;
    out->type = (proto_status_type)type;
    msgpack_unpacked_destroy(&up);
    if (rc < 0)
        proto_status_clear(out);
    return rc;
}

void proto_status_clear(proto_status *st)
{
    for (size_t i = 0; i < st->object.n_vips; i++)
        free(st->object.vips[i]);
    free(st->object.vips);
    free(st->object.object);
    free(st->object.tenant);
    free(st->object.error);
    free(st->progress.tenant);
    free(st->progress.last_error);
    memset(st, 0, sizeof *st);
}

bool proto_progress_applied_all(const proto_progress *p)
{
    return p->applied_models == p->published_models && p->applied_digest == p->published_digest;
}
