/* record.h — `--record FILE`: what the live watcher sees, written in the
 * replay format, so a cluster's behaviour captured anywhere can be replayed
 * with `--replay` (one {"type":...,"object":...} line per event).
 *
 * List items go in as ADDED and watch events as they came, each object with
 * its kind and apiVersion filled in (list items carry neither). Objects that
 * a relist found gone go in as DELETED with only their identity. BOOKMARK and
 * ERROR events are protocol, not state, and are not written. The file is
 * flushed per batch (a list page, a read of a watch stream), so a reader
 * following it sees whole lines. */
#ifndef KAVI_WATCHER_RECORD_H
#define KAVI_WATCHER_RECORD_H

#include <jansson.h>

typedef struct record record_t;

/* Creates or truncates path. */
int record_open(record_t **out, const char *path, char *err, size_t err_len);
void record_close(record_t **record);

/* Writes one event; object is borrowed. kind and api_version fill in what
 * the object lacks. A write error is logged once and later events dropped. */
int record_event(record_t *record, const char *type, const json_t *object, const char *kind,
                 const char *api_version);
void record_flush(record_t *record);

#endif
