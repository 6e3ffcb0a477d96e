/* manifest.c — see manifest.h. Built on libyaml's event API rather than its
 * document API: only events tell a plain `80` from a quoted `"80"` (the
 * document API tags both !!str) and carry the line of every node.
 *
 * The builder keeps a stack of open containers; a value is attached to the
 * container on top (appended to a sequence, or set under the mapping's
 * pending key). Anchors are registered when their node is complete, so an
 * alias can never refer to a container that encloses it: no cycles. */
#include "watcher/manifest.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/error.h"

#define MANIFEST_MAX_ANCHORS 10000

typedef struct {
    json_t *container; /* owned until attached to its parent */
    char *key;         /* mapping: the key waiting for its value (owned) */
    char *anchor;      /* owned; registered when the container ends */
} manifest_frame;

typedef struct {
    char *name;
    json_t *value; /* one reference held by the table */
} manifest_anchor;

typedef struct {
    manifest_frame stack[MANIFEST_MAX_DEPTH];
    int depth;
    json_t *root; /* the finished document's root (owned) */
    unsigned long doc_line;
    manifest_anchor *anchors; /* grows on demand; most manifests have none */
    size_t n_anchors, cap_anchors;
    size_t n_aliases;
    manifest_error *error;
} manifest_builder;

static int manifest_fail(manifest_builder *b, const yaml_mark_t *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int manifest_fail(manifest_builder *b, const yaml_mark_t *mark, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(b->error->reason, sizeof b->error->reason, fmt, args);
    va_end(args);
    b->error->line = (unsigned long)mark->line;
    return KV_ERR_INVALID;
}

/* Forgets the current document: open containers, root and anchors. */
static void builder_reset(manifest_builder *b)
{
    while (b->depth > 0) {
        manifest_frame *frame = &b->stack[--b->depth];
        json_decref(frame->container);
        free(frame->key);
        free(frame->anchor);
    }
    json_decref(b->root);
    b->root = NULL;
    for (size_t i = 0; i < b->n_anchors; i++) {
        free(b->anchors[i].name);
        json_decref(b->anchors[i].value);
    }
    b->n_anchors = 0;
    b->n_aliases = 0;
}

static void builder_destroy(manifest_builder **b_p)
{
    manifest_builder *b = *b_p;
    if (!b)
        return;
    builder_reset(b);
    free(b->anchors);
    free(b);
    *b_p = NULL;
}

/* ---- scalars: YAML 1.2 core schema --------------------------------------- */

static bool is_one_of(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(s, *words) == 0)
            return true;
    return false;
}

static bool all_digits(const char *s, int base)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        bool ok = base == 16 ? isxdigit((unsigned char)*s)
                             : (*s >= '0' && *s < '0' + base);
        if (!ok)
            return false;
    }
    return true;
}

/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static bool is_core_float(const char *p)
{
    if (*p == '+' || *p == '-')
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    } else {
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p == '.')
            for (p++; isdigit((unsigned char)*p); p++)
                ;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

/* A number that does not fit JSON's int64 stays a string: the projection
 * then names the field as mistyped instead of reading a wrapped value. */
static json_t *core_integer(const char *digits, int base, const char *text, size_t len)
{
    char *end = NULL;
    errno = 0;
    long long value = strtoll(digits, &end, base);
    if (errno == ERANGE || !end || *end)
        return json_stringn(text, len);
    return json_integer((json_int_t)value);
}

static json_t *core_scalar(const char *text, size_t len)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};

    if (strlen(text) != len) /* an embedded NUL: not a number or keyword */
        return json_stringn(text, len);
    if (is_one_of(text, nulls))
        return json_null();
    if (is_one_of(text, trues))
        return json_true();
    if (is_one_of(text, falses))
        return json_false();
    const char *digits = text + (text[0] == '+' || text[0] == '-');
    if (all_digits(digits, 10))
        return core_integer(text, 10, text, len);
    if (strncmp(text, "0o", 2) == 0 && all_digits(text + 2, 8))
        return core_integer(text + 2, 8, text, len);
    if (strncmp(text, "0x", 2) == 0 && all_digits(text + 2, 16))
        return core_integer(text + 2, 16, text, len);
    if (is_core_float(text)) {
        double value = strtod(text, NULL);
        json_t *real = json_real(value); /* NULL for inf (1e999): keep the text */
        return real ? real : json_stringn(text, len);
    }
    return json_stringn(text, len);
}

static json_t *scalar_value(const yaml_event_t *event)
{
    const char *text = (const char *)event->data.scalar.value;
    size_t len = event->data.scalar.length;
    const char *tag = (const char *)event->data.scalar.tag;
    bool plain = event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

    if (!tag)
        return plain ? core_scalar(text, len) : json_stringn(text, len);
    if (strcmp(tag, "!") == 0 || strcmp(tag, YAML_STR_TAG) == 0)
        return json_stringn(text, len);
    /* !!int "80" asks for the number even though it is quoted. */
    if (strcmp(tag, YAML_INT_TAG) == 0 || strcmp(tag, YAML_FLOAT_TAG) == 0 ||
        strcmp(tag, YAML_BOOL_TAG) == 0 || strcmp(tag, YAML_NULL_TAG) == 0)
        return core_scalar(text, len);
    /* Application tags (!Ref, !!binary, ...) mean nothing to Kubernetes. */
    return plain ? core_scalar(text, len) : json_stringn(text, len);
}

/* ---- building ------------------------------------------------------------ */

static int register_anchor(manifest_builder *b, const yaml_mark_t *mark, const char *name,
                           json_t *value)
{
    if (!name)
        return KV_OK;
    if (b->n_anchors == MANIFEST_MAX_ANCHORS)
        return manifest_fail(b, mark, "more than %d anchors in one document",
                             MANIFEST_MAX_ANCHORS);
    if (b->n_anchors == b->cap_anchors) {
        size_t cap = b->cap_anchors ? 2 * b->cap_anchors : 16;
        manifest_anchor *grown = realloc(b->anchors, cap * sizeof *grown);
        if (!grown)
            return KV_ERR_NOMEM;
        b->anchors = grown;
        b->cap_anchors = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return KV_ERR_NOMEM;
    b->anchors[b->n_anchors].name = copy;
    b->anchors[b->n_anchors].value = json_incref(value);
    b->n_anchors++;
    return KV_OK;
}

static json_t *find_anchor(const manifest_builder *b, const char *name)
{
    /* Latest definition wins: YAML lets an anchor be redefined. */
    for (size_t i = b->n_anchors; i-- > 0;)
        if (strcmp(b->anchors[i].name, name) == 0)
            return b->anchors[i].value;
    return NULL;
}

static bool awaiting_key(const manifest_builder *b)
{
    const manifest_frame *top = b->depth ? &b->stack[b->depth - 1] : NULL;
    return top && json_is_object(top->container) && !top->key;
}

/* Attaches value (stolen) to the open container, or makes it the root. */
static int attach(manifest_builder *b, const yaml_mark_t *mark, json_t *value)
{
    if (!value)
        return manifest_fail(b, mark, "a scalar cannot be represented in JSON");
    if (b->depth == 0) {
        json_decref(b->root);
        b->root = value;
        return KV_OK;
    }
    manifest_frame *top = &b->stack[b->depth - 1];
    int rc;
    if (json_is_array(top->container)) {
        rc = json_array_append_new(top->container, value);
    } else {
        rc = json_object_set_new(top->container, top->key, value);
        free(top->key);
        top->key = NULL;
    }
    return rc == 0 ? KV_OK : KV_ERR_NOMEM;
}

static int on_scalar(manifest_builder *b, const yaml_event_t *event)
{
    const yaml_mark_t *mark = &event->start_mark;
    const char *anchor = (const char *)event->data.scalar.anchor;
    if (awaiting_key(b)) {
        /* Keys keep their text whatever it looks like: `80:` is "80". */
        manifest_frame *top = &b->stack[b->depth - 1];
        top->key = strndup((const char *)event->data.scalar.value, event->data.scalar.length);
        if (!top->key)
            return KV_ERR_NOMEM;
        json_t *key_value = json_string(top->key);
        int rc = key_value ? register_anchor(b, mark, anchor, key_value) : KV_OK;
        json_decref(key_value);
        return rc;
    }
    json_t *value = scalar_value(event);
    int rc = value ? register_anchor(b, mark, anchor, value) : KV_OK;
    if (rc < 0) {
        json_decref(value);
        return rc;
    }
    return attach(b, mark, value);
}

static int on_alias(manifest_builder *b, const yaml_event_t *event)
{
    const yaml_mark_t *mark = &event->start_mark;
    const char *name = (const char *)event->data.alias.anchor;
    json_t *value = find_anchor(b, name);
    if (!value)
        return manifest_fail(b, mark, "alias *%s refers to no complete anchor", name);
    if (++b->n_aliases > MANIFEST_MAX_ALIASES)
        return manifest_fail(b, mark, "more than %d aliases in one document",
                             MANIFEST_MAX_ALIASES);
    if (awaiting_key(b)) {
        if (!json_is_string(value))
            return manifest_fail(b, mark, "alias *%s used as a key is not a string", name);
        manifest_frame *top = &b->stack[b->depth - 1];
        top->key = strdup(json_string_value(value));
        return top->key ? KV_OK : KV_ERR_NOMEM;
    }
    return attach(b, mark, json_incref(value));
}

static int on_container_start(manifest_builder *b, const yaml_event_t *event, bool mapping)
{
    const yaml_mark_t *mark = &event->start_mark;
    const yaml_char_t *anchor =
        mapping ? event->data.mapping_start.anchor : event->data.sequence_start.anchor;
    if (awaiting_key(b))
        return manifest_fail(b, mark, "a mapping key must be a scalar");
    if (b->depth == MANIFEST_MAX_DEPTH)
        return manifest_fail(b, mark, "nesting deeper than %d levels", MANIFEST_MAX_DEPTH);
    manifest_frame *frame = &b->stack[b->depth];
    memset(frame, 0, sizeof *frame);
    frame->container = mapping ? json_object() : json_array();
    if (anchor)
        frame->anchor = strdup((const char *)anchor);
    if (!frame->container || (anchor && !frame->anchor)) {
        json_decref(frame->container);
        free(frame->anchor);
        return KV_ERR_NOMEM;
    }
    b->depth++;
    return KV_OK;
}

static int on_container_end(manifest_builder *b, const yaml_event_t *event)
{
    const yaml_mark_t *mark = &event->start_mark;
    manifest_frame frame = b->stack[--b->depth];
    free(frame.key); /* a mapping cannot end between key and value; be safe */
    int rc = register_anchor(b, mark, frame.anchor, frame.container);
    free(frame.anchor);
    if (rc < 0) {
        json_decref(frame.container);
        return rc;
    }
    return attach(b, mark, frame.container);
}

static int on_event(manifest_builder *b, const yaml_event_t *event, manifest_document_fn fn,
                    void *payload)
{
    switch (event->type) {
    case YAML_DOCUMENT_START_EVENT:
        builder_reset(b);
        b->doc_line = (unsigned long)event->start_mark.line;
        return KV_OK;
    case YAML_DOCUMENT_END_EVENT: {
        json_t *root = b->root;
        b->root = NULL;
        builder_reset(b);
        return fn(root, b->doc_line, payload);
    }
    case YAML_SCALAR_EVENT:
        return on_scalar(b, event);
    case YAML_ALIAS_EVENT:
        return on_alias(b, event);
    case YAML_SEQUENCE_START_EVENT:
        return on_container_start(b, event, false);
    case YAML_MAPPING_START_EVENT:
        return on_container_start(b, event, true);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_container_end(b, event);
    default:
        return KV_OK;
    }
}

int manifest_parse(const char *text, size_t len, manifest_document_fn fn, void *payload,
                   manifest_error *error)
{
    yaml_parser_t parser;
    yaml_event_t event;
    manifest_builder *b = calloc(1, sizeof *b);
    int rc = KV_OK;
    bool done = false;

    if (!b)
        return KV_ERR_NOMEM;
    b->error = error;
    memset(error, 0, sizeof *error);
    if (!yaml_parser_initialize(&parser)) {
        builder_destroy(&b);
        return KV_ERR_NOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done && rc == KV_OK) {
        if (!yaml_parser_parse(&parser, &event)) {
            const char *problem = parser.problem ? parser.problem : "malformed YAML";
            if (parser.context)
                rc = manifest_fail(b, &parser.problem_mark, "YAML: %s %s", parser.context,
                                   problem);
            else
                rc = manifest_fail(b, &parser.problem_mark, "YAML: %s", problem);
            break;
        }
        done = event.type == YAML_STREAM_END_EVENT;
        rc = on_event(b, &event, fn, payload);
        yaml_event_delete(&event);
    }
    builder_destroy(&b);
    yaml_parser_delete(&parser);
    return rc;
}
