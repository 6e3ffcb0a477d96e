/*
 * Internal types shared by the avisim modules. Every non-static symbol is
 * prefixed avisim_ because the library is linked into test binaries together
 * with kavi's own libraries.
 *
 * Locking: struct avisim.lock guards store, sessions, faults and log. Every
 * function below expects the caller to hold it, except the sim_http.c entry
 * points and the util helpers.
 */
#ifndef AVISIM_INTERNAL_H
#define AVISIM_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "avisim.h"

#define AVISIM_MAX_BODY (8u * 1024u * 1024u) /* larger request bodies → 413 */
#define AVISIM_MAX_NAME 255                  /* AKO's AVI_OBJ_NAME_MAX_LENGTH */
#define AVISIM_MAX_REF 2048                  /* longest reference string accepted */
#define AVISIM_MAX_HOST 255
#define AVISIM_MAX_ARGS 64                   /* query parameters per request */
#define AVISIM_LOG_CAP 20000                 /* request log ring size */
#define AVISIM_MAX_SESSIONS 4096
#define AVISIM_PAGE_SIZE_DEFAULT 25
#define AVISIM_PAGE_SIZE_MAX 200
#define AVISIM_ERR_LEN 512

/* ---- sim_util.c ------------------------------------------------------- */

/* Growable byte buffer with a hard maximum, NUL-terminated. */
struct avisim_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};
void avisim_buf_init(struct avisim_buf *b, size_t max);
int avisim_buf_add(struct avisim_buf *b, const void *p, size_t n); /* -E2BIG past max */
int avisim_buf_addf(struct avisim_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int avisim_buf_add_urlencoded(struct avisim_buf *b, const char *s);
void avisim_buf_free(struct avisim_buf *b);

int avisim_random_hex(char *out, size_t nbytes); /* out holds 2*nbytes+1 */
int avisim_uuid4(char out[37]);
int64_t avisim_now_us(void);  /* wall clock, microseconds */
int64_t avisim_mono_ms(void); /* monotonic, milliseconds */
char *avisim_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* %XX decoding (and '+' → ' ' when plus_space); -1 if out is too small. */
int avisim_url_decode(const char *in, size_t len, char *out, size_t outsz, bool plus_space);
bool avisim_csv_contains(const char *csv, const char *item);
bool avisim_ends_with(const char *s, const char *suffix);
int avisim_ipv4_parse(const char *s, uint32_t *out);
void avisim_ipv4_format(uint32_t addr, char out[16]);
/* Compares dotted numeric versions; -EINVAL if either is malformed. */
int avisim_version_cmp(const char *a, const char *b, int *cmp);
/* Scalar JSON rendered as query-string text ("true", "42", "x"); NULL if not scalar. */
char *avisim_json_scalar_text(const json_t *v);
/* NUL-terminated base64 decoding; -1 if malformed or out is too small. */
int avisim_base64_decode(const char *in, char *out, size_t outsz);

/* ---- object types (sim_store.c) --------------------------------------- */

enum avisim_type_id {
    AVISIM_T_VIRTUALSERVICE,
    AVISIM_T_VSVIP,
    AVISIM_T_POOL,
    AVISIM_T_POOLGROUP,
    AVISIM_T_HTTPPOLICYSET,
    AVISIM_T_L4POLICYSET,
    AVISIM_T_SSLKEYANDCERTIFICATE,
    AVISIM_T_HEALTHMONITOR,
    AVISIM_T_APPLICATIONPROFILE,
    AVISIM_T_NETWORKPROFILE,
    AVISIM_T_CLOUD,
    AVISIM_T_SERVICEENGINEGROUP,
    AVISIM_T_TENANT,
    AVISIM_T_VRFCONTEXT,
    AVISIM_T_NETWORK,
    AVISIM_T_SSLPROFILE,
    AVISIM_T_ANALYTICSPROFILE,
    AVISIM_T_COUNT
};

struct avisim_type_info {
    const char *path;    /* URL segment, "pool" */
    const char *model;   /* error text, "Pool object not found!" */
    const char *verbose; /* Django verbose name used in 409 text, "Pool group" */
    bool cloud_scoped;   /* unique per cloud; gets a default cloud_ref */
};
const struct avisim_type_info *avisim_type_info(int type);
int avisim_type_from_path(const char *seg, size_t len); /* -1 if unknown */

/* ---- object store (sim_store.c) --------------------------------------- */

struct avisim_obj;

struct avisim_referrer {
    struct avisim_obj *from;
    unsigned count;
    UT_hash_handle hh;
};

/*
 * A stored config object. body holds every field the client sent plus the
 * defaults, with uuid, name, tenant_ref and _last_modified; references are
 * kept canonical ("/api/<type>/<uuid>") and rendered absolute on output.
 * refs/referrers mirror the references so DELETE can refuse in O(1).
 */
struct avisim_obj {
    char *uuid;
    int type;
    bool seed;
    struct avisim_obj *tenant;
    json_t *body;
    char *name_key;
    struct avisim_obj **refs;
    size_t n_refs;
    struct avisim_referrer *referrers;
    UT_hash_handle hh;
    UT_hash_handle hh_name;
};

struct avisim_ip_use {
    uint32_t addr;
    unsigned count;
    UT_hash_handle hh;
};

struct avisim_store {
    struct avisim_obj *objs[AVISIM_T_COUNT]; /* by uuid, creation order */
    struct avisim_obj *names;                /* by name_key */
    struct avisim_ip_use *ips;               /* VIP addresses in use */
    struct avisim_obj *admin;
    struct avisim_obj *default_cloud;
    struct avisim_obj *default_group;
    struct avisim_obj *global_vrf;
    struct avisim_obj *vip_network;
    int64_t last_modified;
    const struct avisim_schema *schema; /* borrowed from struct avisim; NULL = no checks */
};

void avisim_store_fini(struct avisim_store *st);
struct avisim_obj *avisim_store_get(const struct avisim_store *st, int type, const char *uuid);
struct avisim_obj *avisim_store_tenant_by_name(const struct avisim_store *st, const char *name);
/* Seeds are readable from every tenant; everything else only from its own. */
bool avisim_obj_visible(const struct avisim_obj *obj, const struct avisim_obj *tenant);
const char *avisim_obj_name(const struct avisim_obj *obj);
/* uuid in a canonical "/api/<type>/<uuid>" string, or NULL. */
struct avisim_obj *avisim_store_ref_target(const struct avisim_store *st, const char *canonical);
/* Rewrites every *_ref / *_refs string in body (any depth) to canonical form.
 * Returns 0, or 404 with "<Model> object not found!" in err. */
int avisim_store_resolve_refs(struct avisim_store *st, struct avisim_obj *tenant, json_t *body,
                              char *err, size_t errlen);
/* 409 with message in err when another object would share the name key. */
int avisim_store_check_unique(struct avisim_store *st, int type, const struct avisim_obj *tenant,
                              const json_t *body, const struct avisim_obj *self, char *err,
                              size_t errlen);
/* Stores body (taken) as a new object (existing NULL) or replaces existing's
 * body. uuid_hint forces the uuid of a new object (Slug header, seeds). */
int avisim_store_put(struct avisim_store *st, struct avisim_obj *existing, int type,
                     struct avisim_obj *tenant, json_t *body_take, const char *uuid_hint,
                     bool seed, struct avisim_obj **out);
void avisim_store_remove(struct avisim_store *st, struct avisim_obj *obj);
/* Fresh JSON of obj for a response: url first, refs absolute under base. */
json_t *avisim_store_render(const struct avisim_store *st, const struct avisim_obj *obj,
                            const char *base, bool include_name);
/* "['Pool p1', 'VirtualService vs']" of every referrer, sorted; malloc'd. */
char *avisim_store_referrer_list(const struct avisim_obj *obj);
json_t *avisim_store_state(const struct avisim_store *st, const char *base);

/* ---- seeds (sim_seed.c) ------------------------------------------------ */

struct avisim_seed_opts {
    const char *tenants;
    const char *vip_network;
    const char *vip_range;
};
int avisim_seed(struct avisim_store *st, const struct avisim_seed_opts *o);

/* ---- the Avi object model (sim_schema.c) ----------------------------- */

/* Immutable once loaded; shared by every thread without the lock. */
struct avisim_schema;
/* Loads the model file (tests/data/avi_models.json). -EIO unreadable,
 * -EINVAL malformed, -ENOMEM; err says which. */
int avisim_schema_load(struct avisim_schema **out, const char *path, char *err, size_t errlen);
void avisim_schema_destroy(struct avisim_schema **schema);
/* The model's type name for a REST path segment ("pool" → "Pool"), or NULL. */
const char *avisim_schema_type_name(const struct avisim_schema *schema, const char *rest_type);
/* Checks body, an object of REST type rest_type, against the model: unknown
 * fields, JSON types, enum values and ranges, at any depth. Returns 0, or
 * 400 with a message naming the field's path in err. A NULL schema passes
 * everything. */
int avisim_schema_check(const struct avisim_schema *schema, const char *rest_type,
                        const json_t *body, char *err, size_t errlen);

/* ---- model rules (sim_model.c) ----------------------------------------- */

/* Applies the controller's defaults and validates body for type.
 * Returns 0 or 400 with a message naming the field in err. */
int avisim_model_prepare(const struct avisim_store *st, int type, json_t *body, char *err,
                         size_t errlen);

/* ---- VIP allocation (sim_vip.c) ---------------------------------------- */

/* For a vsvip body about to replace existing (NULL on create): refuses vip
 * address/vip_id changes, keeps allocated addresses, allocates addresses
 * for auto_allocate_ip vips and updates the in-use set. 0 or 400. */
int avisim_vip_prepare(struct avisim_store *st, const struct avisim_obj *existing, json_t *body,
                       char *err, size_t errlen);
void avisim_vip_release(struct avisim_store *st, const json_t *body);

/* ---- collections (sim_query.c) ----------------------------------------- */

struct avisim_arg {
    char *key;
    char *value; /* NULL for a valueless flag such as include_name */
};
bool avisim_args_flag(const struct avisim_arg *args, size_t n, const char *key);
const char *avisim_args_get(const struct avisim_arg *args, size_t n, const char *key);
/* GET /api/<type>: 200 with *out, or 400 with err. */
int avisim_query_list(const struct avisim_store *st, int type, const struct avisim_obj *tenant,
                      const struct avisim_arg *args, size_t n_args, const char *base,
                      json_t **out, char *err, size_t errlen);

/* ---- sessions (sim_session.c) ------------------------------------------ */

struct avisim_session {
    char id[33];
    char csrf[33];
    int64_t last_used_ms;
    bool invalidated; /* answer 419 on next use, as after a password change */
    UT_hash_handle hh;
};

struct avisim_sessions {
    struct avisim_session *map;
    unsigned count;
    int64_t idle_ms;
};

int avisim_session_create(struct avisim_sessions *s, int64_t now_ms, struct avisim_session **out);
/* The live session with that id, touched; NULL if unknown or idle too long. */
struct avisim_session *avisim_session_use(struct avisim_sessions *s, const char *id, int64_t now_ms);
void avisim_session_end(struct avisim_sessions *s, const char *id);
void avisim_session_end_all(struct avisim_sessions *s);
void avisim_session_invalidate_all(struct avisim_sessions *s);
unsigned avisim_session_active(const struct avisim_sessions *s, int64_t now_ms);

/* ---- faults (sim_faults.c) --------------------------------------------- */

struct avisim_faults {
    double error_rate;
    int error_status;
    int latency_ms;
    double drop_rate;
    double drop_response_rate; /* carried out, then the connection closes unanswered */
    bool upgrade_in_progress;
    int rate_limit_burst; /* 0 = off */
    int delete_referenced_status;
    char refuse_name[256];    /* writes of an object so named get 400 refuse_message; "" off */
    char refuse_message[256];
    uint64_t seed;
    uint64_t rng;
    double tokens;
    int64_t tokens_ms;
};

void avisim_faults_clear(struct avisim_faults *f);
/* One-shot faults on the sessions that exist when they are set. */
struct avisim_session_faults {
    bool expire;     /* every session ends: 401 on next use */
    bool invalidate; /* every session answers 419 once, then is gone */
};

/* Replaces the configuration with cfg; *once reports the one-shots. */
int avisim_faults_set(struct avisim_faults *f, const json_t *cfg,
                      struct avisim_session_faults *once, char *err, size_t errlen);
json_t *avisim_faults_json(const struct avisim_faults *f);
bool avisim_faults_roll(struct avisim_faults *f, double rate);
bool avisim_faults_rate_limited(struct avisim_faults *f, int64_t now_ms);

/* ---- request log and counters (sim_log.c) ------------------------------ */

struct avisim_log {
    json_t **ring;
    size_t head; /* index of the oldest entry */
    size_t len;
    uint64_t next_seq;
    json_t *counters; /* {"POST pool": n} */
    uint64_t total;
};

int avisim_log_init(struct avisim_log *l);
void avisim_log_fini(struct avisim_log *l);
/* Appends one request; body is borrowed (copied). */
void avisim_log_add(struct avisim_log *l, const char *method, const char *type, const char *name,
                    const char *uuid, int status, const json_t *body);
void avisim_log_clear(struct avisim_log *l);
json_t *avisim_log_json(const struct avisim_log *l, uint64_t since);
json_t *avisim_log_counters_json(const struct avisim_log *l);

/* ---- API handlers (sim_api.c) ------------------------------------------ */

struct avisim_reply {
    int status;
    char *body;               /* malloc'd, may be NULL */
    const char *content_type; /* static */
    char *location;
    char *log_name;
    char *log_uuid;
};

void avisim_reply_json(struct avisim_reply *r, int status, json_t *body_take);
void avisim_reply_error(struct avisim_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void avisim_reply_free(struct avisim_reply *r);

struct avisim_api_request {
    const char *method;
    int type;
    const char *uuid; /* NULL for the collection */
    struct avisim_obj *tenant;
    const char *base; /* "https://host:port" */
    const struct avisim_arg *args;
    size_t n_args;
    json_t *body; /* parsed JSON body or NULL */
    const char *slug;
    int delete_referenced_status;
};

void avisim_api_handle(struct avisim_store *st, const struct avisim_api_request *rq,
                       struct avisim_reply *rp);

/* ---- the simulator (avisim.c, sim_http.c) ------------------------------ */

struct avisim {
    pthread_mutex_t lock;
    struct MHD_Daemon *daemon;
    int port;
    bool tls;
    char *username;
    char *password;
    char *version;
    bool allow_basic_auth;
    char *tls_cert_pem;
    char *tls_key_pem;
    const struct avisim_schema *schema; /* shared, see avisim.c; NULL = no model */
    struct avisim_store store;
    struct avisim_sessions sessions;
    struct avisim_faults faults;
    struct avisim_log log;
};

int avisim_http_start(struct avisim *sim, int port);
void avisim_http_stop(struct avisim *sim);
/* "<scheme>://127.0.0.1:<port>", for output not tied to a request. */
char *avisim_default_base(const struct avisim *sim);

#endif
