/* base64.h — RFC 4648 base64 decoding (standard alphabet).
 *
 * Strict: what the API server writes in a Secret's data — padded to whole
 * quads, line breaks (CR, LF) skipped as Go's decoder does, nothing else.
 * Lenient: what people paste into a kubeconfig's *-data fields — spaces
 * and tabs skipped too, and the final padding may be left off. */
#ifndef KAVI_COMMON_BASE64_H
#define KAVI_COMMON_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Decodes len bytes of text into a malloc'd, NUL-terminated *out (owned by
 * the caller) of *out_len bytes. KV_ERR_INVALID for a foreign byte, a
 * symbol after padding, or a bad length; *out is NULL then. */
int base64_decode(char **out, size_t *out_len, const char *text, size_t len, bool strict);

#endif
