/* kavi error codes: every function that can fail returns 0 or one of these
 * negative values, and kv_strerror() names it for a log line. Detail about
 * *which* input was bad goes into the log line or an error buffer at the
 * point of failure, never into the code. */
#ifndef KAVI_COMMON_ERROR_H
#define KAVI_COMMON_ERROR_H

typedef enum {
    KV_OK = 0,
    KV_ERR_NOMEM = -1,       /* allocation failed */
    KV_ERR_INVALID = -2,     /* input is malformed or has a wrong type */
    KV_ERR_TRUNCATED = -3,   /* input ended early */
    KV_ERR_TOO_LARGE = -4,   /* input passes a hard size limit */
    KV_ERR_IO = -5,          /* a system call failed; errno tells more */
    KV_ERR_TIMEOUT = -6,     /* a deadline passed */
    KV_ERR_NOT_FOUND = -7,   /* the thing asked for does not exist */
    KV_ERR_PROTOCOL = -8,    /* the peer broke the protocol */
    KV_ERR_VERSION = -9,     /* message version this build does not read */
    KV_ERR_HTTP = -10,       /* a remote answered with an error status */
    KV_ERR_AGAIN = -11,      /* transient: try again later */
} kv_err;

const char *kv_strerror(int err);

#endif
