/* manifest.h — YAML text → jansson trees, one per document, typed the way a
 * Kubernetes manifest means it.
 *
 * Plain (unquoted, untagged) scalars are resolved with the YAML 1.2 core
 * schema: null, Null, NULL, ~ and the empty scalar → null; true/false (any of
 * the three spellings) → boolean; decimal, 0o octal and 0x hex integers →
 * integer; decimal floats → real. Quoted and block scalars, and anything
 * tagged !!str or !, stay strings, so `port: "80"` is the string "80" and
 * `port: 80` the integer 80. YAML 1.1 spellings (yes, on, 0777 as octal) are
 * not special. .inf and .nan stay strings: JSON cannot hold them.
 *
 * Aliases share the anchored tree (one reference more, no copy); aliases,
 * nesting depth and mapping keys that are not scalars are limited or
 * refused so that no input makes the conversion unbounded. */
#ifndef KAVI_WATCHER_MANIFEST_H
#define KAVI_WATCHER_MANIFEST_H

#include <jansson.h>
#include <stddef.h>

#define MANIFEST_MAX_DEPTH 128
#define MANIFEST_MAX_ALIASES 10000

typedef struct {
    unsigned long line; /* 0-based line in the text */
    char reason[256];
} manifest_error;

/* Receives each document's root (the callee owns it; NULL for a document
 * with no content) and the 0-based line where the document starts.
 * A negative return stops the parse and is returned by manifest_parse. */
typedef int (*manifest_document_fn)(json_t *root, unsigned long line, void *payload);

/* Parses every document of text. Returns 0, KV_ERR_INVALID with *error
 * filled for malformed YAML, or the callback's negative return. Documents
 * before a malformed one have already been delivered. */
int manifest_parse(const char *text, size_t len, manifest_document_fn fn, void *payload,
                   manifest_error *error);

#endif
