/* replay.h — reads a recorded Kubernetes stream, one event at a time.
 *
 * Two formats, told apart by the file's first non-blank character:
 *  '{'  newline-delimited watch events, {"type":"ADDED","object":{...}} per
 *       line, exactly what the API server's watch writes (BOOKMARK ignored);
 *  else multi-document YAML manifests: every document is an ADDED, a
 *       document of kind List (or <Kind>List) stands for its items.
 *
 * A malformed line or document is reported as "<file>:<line>: <reason>" and
 * skipped; the rest of the file still applies. Lines (and YAML documents)
 * have a hard size cap; an over-long one is reported and skipped.
 *
 * Reading never blocks: replay_next() returns 0 when nothing more is
 * available now. Without follow, that is the end. With follow, the file
 * stays open and later calls pick up what was appended; a partial last line
 * waits for its newline. A YAML document is applied when the next "---" or
 * "..." line arrives, or when the reader reaches the end of what has been
 * written so far (a follower should append whole documents). */
#ifndef KAVI_WATCHER_REPLAY_H
#define KAVI_WATCHER_REPLAY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define REPLAY_MAX_LINE (16u << 20)

typedef enum {
    REPLAY_ADDED = 1,
    REPLAY_MODIFIED = 2,
    REPLAY_DELETED = 3,
} replay_event_type;

typedef struct {
    replay_event_type type;
    json_t *object;     /* owned by the event: replay_event_clear() */
    unsigned long line; /* where the event's line or document starts */
} replay_event;

typedef struct {
    bool follow;     /* keep reading what is appended after the end */
    size_t max_line; /* 0: REPLAY_MAX_LINE */
} replay_options;

typedef struct replay replay_t;

/* Opens path for reading; KV_ERR_IO (errno set) when it cannot. */
int replay_open(replay_t **out, const char *path, const replay_options *options);
void replay_destroy(replay_t **replay);

/* 1 with *ev filled (the caller owns it), 0 when nothing is available now,
 * or a negative kv_err when reading the file failed. */
int replay_next(replay_t *replay, replay_event *ev);

/* True once the reader has reached the end of the file for the first time
 * and handed out every event before it: the recorded initial state is all
 * out. Stays true while following. */
bool replay_reached_end(const replay_t *replay);

const char *replay_path(const replay_t *replay);
/* How many lines or documents were reported and skipped so far. */
unsigned long replay_errors(const replay_t *replay);

void replay_event_clear(replay_event *ev);

/* "ADDED", "MODIFIED", "DELETED". */
const char *replay_event_type_name(replay_event_type type);

#endif
