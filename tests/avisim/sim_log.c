/*
 * The request log behind GET /_sim/log and the per-"METHOD type" counters
 * behind GET /_sim/counters, so tests can assert what kavi sent and how
 * often. The log is a ring of the last AVISIM_LOG_CAP requests; counters are
 * never trimmed. Secrets in logged bodies are masked, as the controller's
 * own logs do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

int avisim_log_init(struct avisim_log *l)
{
    memset(l, 0, sizeof(*l));
    l->ring = calloc(AVISIM_LOG_CAP, sizeof(*l->ring));
    l->counters = json_object();
    l->next_seq = 1;
    if (!l->ring || !l->counters) {
        avisim_log_fini(l);
        return -ENOMEM;
    }
    return 0;
}

void avisim_log_clear(struct avisim_log *l)
{
    for (size_t i = 0; i < l->len; i++)
        json_decref(l->ring[(l->head + i) % AVISIM_LOG_CAP]);
    l->head = 0;
    l->len = 0;
}

void avisim_log_fini(struct avisim_log *l)
{
    if (l->ring)
        avisim_log_clear(l);
    free(l->ring);
    json_decref(l->counters);
    memset(l, 0, sizeof(*l));
}

static json_t *masked(const json_t *body)
{
    static const char *const secrets[] = {"password", "token", "key", "key_passphrase"};
    json_t *copy = json_deep_copy(body);
    if (!json_is_object(copy))
        return copy ? copy : json_null();
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (json_object_get(copy, secrets[i]))
            json_object_set_new(copy, secrets[i], json_string("<sensitive>"));
    return copy;
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

void avisim_log_add(struct avisim_log *l, const char *method, const char *type, const char *name,
                    const char *uuid, int status, const json_t *body)
{
    char key[96];
    snprintf(key, sizeof(key), "%.16s %.64s", method, type);
    json_t *c = json_object_get(l->counters, key);
    json_object_set_new(l->counters, key, json_integer(c ? json_integer_value(c) + 1 : 1));
    l->total++;

    json_t *e = json_pack("{s:I, s:s, s:s, s:o, s:o, s:i, s:o}", "seq", (json_int_t)l->next_seq++,
                          "method", method, "type", type, "name", string_or_null(name), "uuid",
                          string_or_null(uuid), "status", status, "body",
                          body ? masked(body) : json_null());
    if (!e)
        return;
    if (l->len == AVISIM_LOG_CAP) {
        json_decref(l->ring[l->head]);
        l->ring[l->head] = e;
        l->head = (l->head + 1) % AVISIM_LOG_CAP;
    } else {
        l->ring[(l->head + l->len) % AVISIM_LOG_CAP] = e;
        l->len++;
    }
}

json_t *avisim_log_json(const struct avisim_log *l, uint64_t since)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->len && a; i++) {
        json_t *e = l->ring[(l->head + i) % AVISIM_LOG_CAP];
        if ((uint64_t)json_integer_value(json_object_get(e, "seq")) > since)
            json_array_append(a, e);
    }
    return a;
}

json_t *avisim_log_counters_json(const struct avisim_log *l)
{
    return json_pack("{s:O, s:I}", "requests", l->counters, "total", (json_int_t)l->total);
}
