/* record.c — see record.h. */
#include "watcher/record.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"

struct record {
    char *path;
    FILE *file;
    bool failed; /* a write failed: logged once, nothing more written */
};

int record_open(record_t **out, const char *path, char *err, size_t err_len)
{
    record_t *r = calloc(1, sizeof *r);
    *out = NULL;
    if (!r)
        return KV_ERR_NOMEM;
    r->path = strdup(path);
    r->file = fopen(path, "w");
    if (!r->path || !r->file) {
        snprintf(err, err_len, "cannot create record file %s: %s", path, strerror(errno));
        record_close(&r);
        return KV_ERR_IO;
    }
    *out = r;
    return KV_OK;
}

void record_close(record_t **record_p)
{
    record_t *r = *record_p;
    if (!r)
        return;
    if (r->file && fclose(r->file) != 0 && !r->failed)
        log_error("record %s: %s", r->path, strerror(errno));
    free(r->path);
    free(r);
    *record_p = NULL;
}

static void record_failed(record_t *r)
{
    if (!r->failed)
        log_error("record %s: cannot write: %s; recording stops", r->path, strerror(errno));
    r->failed = true;
}

int record_event(record_t *r, const char *type, const json_t *object, const char *kind,
                 const char *api_version)
{
    json_t *copy = NULL, *event = NULL;
    int rc = KV_OK;

    if (!r || r->failed)
        return KV_OK;
    copy = json_copy((json_t *)object); /* shallow: only the top level changes */
    if (!copy)
        return KV_ERR_NOMEM;
    if (kind && !json_is_string(json_object_get(copy, "kind")))
        json_object_set_new(copy, "kind", json_string(kind));
    if (api_version && !json_is_string(json_object_get(copy, "apiVersion")))
        json_object_set_new(copy, "apiVersion", json_string(api_version));
    event = json_pack("{s:s,s:o}", "type", type, "object", copy);
    if (!event)
        return KV_ERR_NOMEM;
    if (json_dumpf(event, r->file, JSON_COMPACT) != 0 || fputc('\n', r->file) == EOF) {
        record_failed(r);
        rc = KV_ERR_IO;
    }
    json_decref(event);
    return rc;
}

void record_flush(record_t *r)
{
    if (r && !r->failed && fflush(r->file) != 0)
        record_failed(r);
}
