/*
 * avisim — an in-process simulator of the Avi Controller (NSX Advanced Load
 * Balancer) REST API, for kavi's tests.
 *
 * It serves the subset of the API a Kubernetes load-balancer controller uses:
 * session login with CSRF, tenants, CRUD on the config object types kavi
 * writes, paged and filtered collections, reference integrity, VIP allocation,
 * and fault injection. Behaviour follows the facts recorded in
 * shared/research/avi_api.md. Test hooks live under /_sim/ (no auth).
 *
 * All functions returning int return 0 on success or a negative errno value.
 */
#ifndef AVISIM_H
#define AVISIM_H

#include <jansson.h>
#include <stdbool.h>

typedef struct avisim avisim_t;

typedef struct {
    int port;                 /* 0 = ephemeral; read back with avisim_port() */
    const char *username;     /* default "admin" */
    const char *password;     /* default "avi123" */
    const char *version;      /* controller version, default "22.1.3" */
    const char *tenants;      /* extra tenants, comma-separated, e.g. "team-a,team-b"; admin always exists */
    const char *vip_network;  /* name of the seeded VIP Network, default "vip-net" */
    const char *vip_range;    /* "10.10.10.100-10.10.10.199" default; static_ip_ranges of that network */
    int idle_timeout_s;       /* session idle timeout, default 900 */
    bool allow_basic_auth;    /* accept "Authorization: Basic" on every call (off, as on
                                 a real controller: portal_configuration.allow_basic_authentication) */
    const char *tls_cert_file, *tls_key_file; /* both set → HTTPS, else HTTP */
    const char *faults;       /* faults for the whole run, the JSON POST /_sim/faults takes
                                 ({"error_rate":0.1,"latency_ms":200}); NULL = none */
    const char *model_file;   /* the Avi object model every write is checked against (400 on
                                 a field, type, enum value or range the controller would
                                 refuse); NULL = AVISIM_MODEL_DEFAULT, "" = no model checks */
} avisim_options_t;

/* Relative to the working directory, the repository root for every test. */
#define AVISIM_MODEL_DEFAULT "tests/data/avi_models.json"


/* Starts serving on 127.0.0.1 (libmicrohttpd internal thread). opts may be
 * NULL for all defaults. On failure *out is NULL and the return value is
 * -EINVAL (bad option or malformed model), -EIO (TLS or model file
 * unreadable / listener failed) or -ENOMEM; a model that cannot be loaded
 * is also reported on stderr, naming the file. */
int avisim_new(avisim_t **out, const avisim_options_t *opts);

/* The bound TCP port. */
int avisim_port(const avisim_t *sim);

/* malloc'd JSON {"<tenant>": {"<type>": [objects sorted by name]}} of every
 * object that is not a seed object; refs rendered absolute with #name.
 * NULL on allocation failure. The caller frees it. */
char *avisim_state_json(avisim_t *sim);

/* The same state as a JSON tree (owned), without the round trip through
 * text: at tens of thousands of objects the dump and parse dominate. */
json_t *avisim_state(avisim_t *sim);

/* Stops the listener and frees everything; sets *sim to NULL. NULL-safe. */
void avisim_destroy(avisim_t **sim);

#endif
