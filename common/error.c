#include "common/error.h"

const char *kv_strerror(int err)
{
    switch (err) {
    case KV_OK: return "ok";
    case KV_ERR_NOMEM: return "out of memory";
    case KV_ERR_INVALID: return "invalid input";
    case KV_ERR_TRUNCATED: return "truncated input";
    case KV_ERR_TOO_LARGE: return "input too large";
    case KV_ERR_IO: return "i/o error";
    case KV_ERR_TIMEOUT: return "timed out";
    case KV_ERR_NOT_FOUND: return "not found";
    case KV_ERR_PROTOCOL: return "protocol error";
    case KV_ERR_VERSION: return "unsupported message version";
    case KV_ERR_HTTP: return "http error";
    case KV_ERR_AGAIN: return "try again";
    default: return "unknown error";
    }
}
