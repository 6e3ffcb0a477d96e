/* Replay reader: recorded watch streams and YAML manifests → events.
 * Malformed input must cost only itself and be reported as file:line;
 * following a file must pick up what is appended without ever blocking. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/error.h"
#include "common/log.h"
#include "watcher/replay.h"

#define DATA_DIR "tests/data/replay/"
#define MAX_EVENTS 64

/* ---- helpers ----------------------------------------------------------- */

static int saved_stderr = -1;
static FILE *capture_file;

static void capture_begin(void)
{
    fflush(stderr);
    capture_file = tmpfile();
    assert_non_null(capture_file);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fileno(capture_file), STDERR_FILENO);
}

/* Returns the captured log (free it) and echoes it to the real stderr. */
static char *capture_end(void)
{
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    long len = ftell(capture_file);
    char *text = calloc(1, (size_t)len + 1);
    rewind(capture_file);
    if (len > 0 && fread(text, 1, (size_t)len, capture_file) != (size_t)len)
        fail_msg("cannot read the captured log");
    fclose(capture_file);
    fputs(text, stderr);
    return text;
}

typedef struct {
    replay_event events[MAX_EVENTS];
    size_t n;
} event_list;

/* Reads every event available now. */
static void read_available(replay_t *replay, event_list *list)
{
    replay_event ev;
    int rc;
    while ((rc = replay_next(replay, &ev)) == 1) {
        assert_true(list->n < MAX_EVENTS);
        list->events[list->n++] = ev;
    }
    assert_int_equal(rc, 0);
}

static void event_list_clear(event_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        replay_event_clear(&list->events[i]);
    list->n = 0;
}

static const char *name_of(const replay_event *ev)
{
    return json_string_value(json_object_get(json_object_get(ev->object, "metadata"), "name"));
}

static const char *kind_of(const replay_event *ev)
{
    return json_string_value(json_object_get(ev->object, "kind"));
}

/* A scratch file under /tmp, removed by the test. */
static void temp_path(char *buf, size_t len, const char *suffix)
{
    snprintf(buf, len, "/tmp/kavi-test-replay-%ld-XXXXXX%s", (long)getpid(), suffix);
    int fd = mkstemps(buf, (int)strlen(suffix));
    assert_true(fd >= 0);
    close(fd);
}

static void append(const char *path, const char *text)
{
    FILE *file = fopen(path, "a");
    assert_non_null(file);
    assert_int_equal(fwrite(text, 1, strlen(text), file), strlen(text));
    fclose(file);
}

static const char *const node_line =
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Node\",\"apiVersion\":\"v1\","
    "\"metadata\":{\"name\":\"%s\"}}}\n";

static void append_node(const char *path, const char *name)
{
    char line[256];
    snprintf(line, sizeof line, node_line, name);
    append(path, line);
}

/* ---- watch-event streams --------------------------------------------------- */

static void test_watch_stream_with_a_malformed_line_still_applies_the_others(void **state)
{
    (void)state;
    replay_t *replay = NULL;
    event_list list = {0};
    const char *path = DATA_DIR "watch-with-bad-line.ndjson";
    assert_int_equal(replay_open(&replay, path, NULL), 0);
    capture_begin();
    read_available(replay, &list);
    char *log = capture_end();

    /* Line 3 is cut short, line 4 blank, line 5 a BOOKMARK. */
    static const unsigned long lines[] = {1, 2, 6, 7, 8, 9, 10, 11, 12};
    static const replay_event_type types[] = {REPLAY_ADDED, REPLAY_ADDED,    REPLAY_ADDED,
                                              REPLAY_ADDED, REPLAY_MODIFIED, REPLAY_ADDED,
                                              REPLAY_DELETED, REPLAY_ADDED,  REPLAY_DELETED};
    assert_int_equal(list.n, 9);
    for (size_t i = 0; i < list.n; i++) {
        assert_int_equal(list.events[i].line, lines[i]);
        assert_int_equal(list.events[i].type, types[i]);
    }
    assert_string_equal(name_of(&list.events[0]), "worker-1");
    assert_string_equal(kind_of(&list.events[2]), "EndpointSlice");
    assert_non_null(strstr(log, "tests/data/replay/watch-with-bad-line.ndjson:3: invalid JSON"));
    assert_int_equal(replay_errors(replay), 1);
    assert_true(replay_reached_end(replay));
    free(log);
    event_list_clear(&list);
    replay_destroy(&replay);
    assert_null(replay);
}

static void test_unknown_event_types_and_error_events_are_reported_not_applied(void **state)
{
    (void)state;
    char path[128];
    temp_path(path, sizeof path, ".ndjson");
    append(path, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"message\":\"too old "
                 "resource version\",\"code\":410}}\n"
                 "{\"type\":\"UPSERTED\",\"object\":{}}\n"
                 "{\"type\":\"ADDED\",\"object\":[1]}\n"
                 "[\"not\",\"an\",\"event\"]\n");
    append_node(path, "n1");
    replay_t *replay = NULL;
    event_list list = {0};
    assert_int_equal(replay_open(&replay, path, NULL), 0);
    capture_begin();
    read_available(replay, &list);
    char *log = capture_end();
    assert_int_equal(list.n, 1);
    assert_int_equal(list.events[0].line, 5);
    assert_non_null(strstr(log, ":1: watch ERROR event: too old resource version"));
    assert_non_null(strstr(log, ":2: unknown watch event type \"UPSERTED\""));
    assert_non_null(strstr(log, ":3: ADDED event: \"object\" must be an object"));
    assert_non_null(strstr(log, ":4: not a watch event"));
    free(log);
    event_list_clear(&list);
    replay_destroy(&replay);
    unlink(path);
}

static void test_last_line_without_newline_is_read_when_not_following(void **state)
{
    (void)state;
    char path[128];
    temp_path(path, sizeof path, ".ndjson");
    /* A byte order mark and CRLF line ends, as an editor on another OS may leave. */
    append(path, "\xEF\xBB\xBF\r\n{\"type\":\"ADDED\",\"object\":{\"kind\":\"Node\","
                 "\"metadata\":{\"name\":\"a\"}}}\r\n"
                 "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Node\",\"metadata\":{\"name\":\"b\"}}}");
    replay_t *replay = NULL;
    event_list list = {0};
    assert_int_equal(replay_open(&replay, path, NULL), 0);
    read_available(replay, &list);
    assert_int_equal(list.n, 2);
    assert_string_equal(name_of(&list.events[0]), "a");
    assert_int_equal(list.events[0].line, 2);
    assert_string_equal(name_of(&list.events[1]), "b");
    assert_int_equal(replay_errors(replay), 0);
    event_list_clear(&list);
    replay_destroy(&replay);
    unlink(path);
}

/* ---- line cap ------------------------------------------------------------ */

static void test_a_line_over_the_cap_is_reported_and_skipped(void **state)
{
    (void)state;
    char path[128];
    char long_line[200];
    temp_path(path, sizeof path, ".ndjson");
    append_node(path, "before");
    memset(long_line, 'x', sizeof long_line - 2);
    long_line[0] = '{';
    long_line[sizeof long_line - 2] = '\n';
    long_line[sizeof long_line - 1] = '\0';
    append(path, long_line);
    append_node(path, "after");

    replay_t *replay = NULL;
    event_list list = {0};
    replay_options options = {.max_line = 120};
    assert_int_equal(replay_open(&replay, path, &options), 0);
    capture_begin();
    read_available(replay, &list);
    char *log = capture_end();
    assert_int_equal(list.n, 2);
    assert_string_equal(name_of(&list.events[0]), "before");
    assert_string_equal(name_of(&list.events[1]), "after");
    assert_int_equal(list.events[1].line, 3);
    assert_non_null(strstr(log, ":2: line longer than 120 bytes, skipped"));
    free(log);
    event_list_clear(&list);
    replay_destroy(&replay);
    unlink(path);
}

static void test_the_default_cap_is_16_mib(void **state)
{
    (void)state;
    char path[128];
    temp_path(path, sizeof path, ".ndjson");
    append_node(path, "before");
    FILE *file = fopen(path, "a");
    assert_non_null(file);
    static char block[1 << 16];
    memset(block, ' ', sizeof block);
    fputc('{', file);
    for (size_t written = 1; written <= REPLAY_MAX_LINE; written += sizeof block)
        assert_int_equal(fwrite(block, 1, sizeof block, file), sizeof block);
    fputs("}\n", file);
    fclose(file);
    append_node(path, "after");

    replay_t *replay = NULL;
    event_list list = {0};
    assert_int_equal(replay_open(&replay, path, NULL), 0);
    capture_begin();
    read_available(replay, &list);
    char *log = capture_end();
    assert_int_equal(list.n, 2);
    assert_string_equal(name_of(&list.events[1]), "after");
    assert_non_null(strstr(log, ":2: line longer than 16777216 bytes, skipped"));
    free(log);
    event_list_clear(&list);
    replay_destroy(&replay);
    unlink(path);
}

/* ---- follow ---------------------------------------------------------------- */

static void test_follow_picks_up_appended_lines_and_waits_for_a_partial_line(void **state)
{
    (void)state;
    char path[128];
    temp_path(path, sizeof path, ".ndjson");
    append_node(path, "first");
    replay_t *replay = NULL;
    event_list list = {0};
    replay_options options = {.follow = true};
    assert_int_equal(replay_open(&replay, path, &options), 0);

    read_available(replay, &list);
    assert_int_equal(list.n, 1);
    assert_true(replay_reached_end(replay));
    event_list_clear(&list);

    /* Half a line: nothing yet, and no error. */
    append(path, "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Node\",");
    read_available(replay, &list);
    assert_int_equal(list.n, 0);

    append(path, "\"metadata\":{\"name\":\"first\"}}}\n");
    append_node(path, "second");
    read_available(replay, &list);
    assert_int_equal(list.n, 2);
    assert_int_equal(list.events[0].type, REPLAY_MODIFIED);
    assert_string_equal(name_of(&list.events[0]), "first");
    assert_int_equal(list.events[0].line, 2);
    assert_string_equal(name_of(&list.events[1]), "second");
    assert_int_equal(list.events[1].line, 3);
    assert_int_equal(replay_errors(replay), 0);
    assert_true(replay_reached_end(replay));
    event_list_clear(&list);
    replay_destroy(&replay);
    unlink(path);
}

static void test_follow_of_an_empty_file_waits_for_its_first_line(void **state)
{
    (void)state;
    char path[128];
    temp_path(path, sizeof path, ".ndjson");
    replay_t *replay = NULL;
    event_list list = {0};
    replay_options options = {.follow = true};
    assert_int_equal(replay_open(&replay, path, &options), 0);
    read_available(replay, &list);
    assert_int_equal(list.n, 0);
    assert_true(replay_reached_end(replay)); /* an empty initial state is whole too */
    append_node(path, "late");
    read_available(replay, &list);
    assert_int_equal(list.n, 1);
    event_list_clear(&list);
    replay_destroy(&replay);
    unlink(path);
}

static void test_a_followed_file_rewritten_from_the_start_is_read_again(void **state)
{
    (void)state;
    char path[128];
    temp_path(path, sizeof path, ".ndjson");
    append_node(path, "one");
    append_node(path, "two");
    replay_t *replay = NULL;
    event_list list = {0};
    replay_options options = {.follow = true};
    assert_int_equal(replay_open(&replay, path, &options), 0);
    read_available(replay, &list);
    assert_int_equal(list.n, 2);
    event_list_clear(&list);

    FILE *file = fopen(path, "w"); /* truncates */
    fclose(file);
    capture_begin();
    read_available(replay, &list); /* notices the truncation */
    append_node(path, "three");
    read_available(replay, &list);
    char *log = capture_end();
    assert_int_equal(list.n, 1);
    assert_string_equal(name_of(&list.events[0]), "three");
    assert_int_equal(list.events[0].line, 1);
    assert_non_null(strstr(log, "truncated"));
    free(log);
    event_list_clear(&list);
    replay_destroy(&replay);
    unlink(path);
}

/* ---- YAML manifests ----------------------------------------------------------- */

static const json_t *data_of(const replay_event *ev, const char *key)
{
    return json_object_get(json_object_get(ev->object, "data"), key);
}

static void test_yaml_manifests_with_a_list_and_quoted_versus_plain_scalars(void **state)
{
    (void)state;
    replay_t *replay = NULL;
    event_list list = {0};
    assert_int_equal(replay_open(&replay, DATA_DIR "manifests-with-list.yaml", NULL), 0);
    capture_begin();
    read_available(replay, &list);
    char *log = capture_end();

    /* Service, two Nodes of the List, the EndpointSliceList item, ConfigMap. */
    assert_int_equal(list.n, 5);
    for (size_t i = 0; i < list.n; i++)
        assert_int_equal(list.events[i].type, REPLAY_ADDED);

    const json_t *svc = list.events[0].object;
    assert_int_equal(list.events[0].line, 3);
    assert_string_equal(json_string_value(json_object_get(json_object_get(svc, "metadata"),
                                                          "namespace")),
                        "default");
    const json_t *spec = json_object_get(svc, "spec");
    const json_t *port = json_array_get(json_object_get(spec, "ports"), 0);
    assert_true(json_is_integer(json_object_get(port, "port")));
    assert_int_equal(json_integer_value(json_object_get(port, "port")), 80);
    assert_true(json_is_string(json_object_get(port, "targetPort")));
    assert_string_equal(json_string_value(json_object_get(port, "targetPort")), "8080");
    assert_int_equal(json_integer_value(json_object_get(port, "nodePort")), 32000);
    assert_true(json_is_null(json_object_get(spec, "loadBalancerClass")));
    assert_int_equal(json_integer_value(json_object_get(spec, "healthCheckNodePort")), 32001);

    assert_string_equal(kind_of(&list.events[1]), "Node");
    assert_string_equal(name_of(&list.events[1]), "true");
    const json_t *labels = json_object_get(json_object_get(list.events[1].object, "metadata"),
                                           "labels");
    assert_string_equal(json_string_value(json_object_get(labels, "rack")), "007");
    assert_string_equal(json_string_value(json_object_get(labels, "ingress-ready")), "true");
    assert_string_equal(name_of(&list.events[2]), "n2");

    /* Items of a typed list inherit its kind and apiVersion. */
    assert_string_equal(kind_of(&list.events[3]), "EndpointSlice");
    assert_string_equal(json_string_value(json_object_get(list.events[3].object, "apiVersion")),
                        "discovery.k8s.io/v1");
    const json_t *endpoint =
        json_array_get(json_object_get(list.events[3].object, "endpoints"), 0);
    assert_true(json_is_true(json_object_get(json_object_get(endpoint, "conditions"), "ready")));
    assert_true(
        json_is_false(json_object_get(json_object_get(endpoint, "conditions"), "terminating")));

    const replay_event *cm = &list.events[4];
    assert_string_equal(name_of(cm), "scalars");
    assert_true(json_is_null(data_of(cm, "null_tilde")));
    assert_true(json_is_null(data_of(cm, "null_word")));
    assert_true(json_is_null(data_of(cm, "null_empty")));
    assert_true(json_is_true(data_of(cm, "bool_true")));
    assert_true(json_is_false(data_of(cm, "bool_false")));
    assert_int_equal(json_integer_value(data_of(cm, "int_decimal")), 777);
    assert_int_equal(json_integer_value(data_of(cm, "int_octal")), 15);
    assert_int_equal(json_integer_value(data_of(cm, "int_negative")), -12);
    assert_true(json_is_real(data_of(cm, "float_exponent")));
    assert_true(json_real_value(data_of(cm, "float_exponent")) == 1500.0);
    assert_true(json_real_value(data_of(cm, "float_leading_dot")) == 0.5);
    assert_true(json_real_value(data_of(cm, "version")) == 1.1);
    assert_string_equal(json_string_value(data_of(cm, "yes_word")), "yes");
    assert_string_equal(json_string_value(data_of(cm, "quoted_int")), "42");
    assert_string_equal(json_string_value(data_of(cm, "single_quoted_null")), "null");
    assert_string_equal(json_string_value(data_of(cm, "tagged_str")), "12");
    assert_string_equal(json_string_value(data_of(cm, "inf")), ".inf");
    assert_string_equal(json_string_value(data_of(cm, "literal")), "line one\n");
    assert_true(json_equal(data_of(cm, "alias"), data_of(cm, "anchored")));
    assert_int_equal(json_integer_value(json_object_get(data_of(cm, "alias"), "a")), 1);

    /* The broken flow mapping and the scalar list item cost only themselves. */
    assert_int_equal(replay_errors(replay), 2);
    assert_non_null(strstr(log, "manifests-with-list.yaml:17: items[2] is not a mapping"));
    assert_non_null(strstr(log, "manifests-with-list.yaml:44: YAML: while parsing a flow "
                                "mapping did not find expected ',' or '}'; document skipped"));
    free(log);
    event_list_clear(&list);
    replay_destroy(&replay);
}

static void test_yaml_documents_that_are_not_objects_or_misuse_aliases_are_skipped(void **state)
{
    (void)state;
    char path[128];
    temp_path(path, sizeof path, ".yaml");
    append(path, "- just\n- a list\n"
                 "---\n"
                 "kind: Node\nmetadata: {name: *nowhere}\n"
                 "---\n"
                 "? [complex, key]\n: value\n"
                 "...\n"
                 "%YAML 1.2\n"
                 "---\n"
                 "kind: Node\nmetadata: {name: &n good}\nspec: {copy: *n}\n");
    replay_t *replay = NULL;
    event_list list = {0};
    assert_int_equal(replay_open(&replay, path, NULL), 0);
    capture_begin();
    read_available(replay, &list);
    char *log = capture_end();
    assert_int_equal(list.n, 1);
    assert_string_equal(name_of(&list.events[0]), "good");
    assert_int_equal(list.events[0].line, 10);
    assert_non_null(strstr(log, ":1: the document is not a mapping, skipped"));
    assert_non_null(strstr(log, ":5: alias *nowhere refers to no complete anchor"));
    assert_non_null(strstr(log, ":7: a mapping key must be a scalar"));
    assert_int_equal(replay_errors(replay), 3);
    free(log);
    event_list_clear(&list);
    replay_destroy(&replay);
    unlink(path);
}

static void test_a_yaml_document_with_an_over_long_line_is_skipped_whole(void **state)
{
    (void)state;
    char path[128];
    char long_line[200];
    temp_path(path, sizeof path, ".yaml");
    memset(long_line, 'x', sizeof long_line);
    memcpy(long_line, "  x: ", 5);
    long_line[sizeof long_line - 2] = '\n';
    long_line[sizeof long_line - 1] = '\0';
    append(path, "kind: Node\nmetadata:\n  name: first\n---\nkind: Node\nmetadata:\n");
    append(path, long_line);
    append(path, "  name: cut\n---\n");
    append(path, long_line);
    append(path, "---\nkind: Node\nmetadata: {name: last}\n");
    replay_t *replay = NULL;
    event_list list = {0};
    replay_options options = {.max_line = 120};
    assert_int_equal(replay_open(&replay, path, &options), 0);
    capture_begin();
    read_available(replay, &list);
    char *log = capture_end();
    assert_int_equal(list.n, 2);
    assert_string_equal(name_of(&list.events[0]), "first");
    assert_string_equal(name_of(&list.events[1]), "last");
    assert_int_equal(list.events[1].line, 11);
    assert_non_null(strstr(log, ":7: line longer than 120 bytes; document skipped"));
    assert_non_null(strstr(log, ":10: line longer than 120 bytes; document skipped"));
    assert_int_equal(replay_errors(replay), 2);
    free(log);
    event_list_clear(&list);
    replay_destroy(&replay);
    unlink(path);
}

static void test_yaml_follow_applies_documents_appended_later(void **state)
{
    (void)state;
    char path[128];
    temp_path(path, sizeof path, ".yaml");
    append(path, "kind: Node\nmetadata:\n  name: a\n");
    replay_t *replay = NULL;
    event_list list = {0};
    replay_options options = {.follow = true};
    assert_int_equal(replay_open(&replay, path, &options), 0);
    read_available(replay, &list);
    assert_int_equal(list.n, 1);
    assert_true(replay_reached_end(replay));
    event_list_clear(&list);

    append(path, "---\nkind: Node\nmetadata:\n  name: b\n");
    read_available(replay, &list);
    assert_int_equal(list.n, 1);
    assert_string_equal(name_of(&list.events[0]), "b");
    assert_int_equal(list.events[0].line, 4);
    event_list_clear(&list);
    replay_destroy(&replay);
    unlink(path);
}

static void test_opening_a_missing_file_fails(void **state)
{
    (void)state;
    replay_t *replay = NULL;
    assert_int_equal(replay_open(&replay, "/nonexistent/kavi/replay.ndjson", NULL), KV_ERR_IO);
    assert_null(replay);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_stream_with_a_malformed_line_still_applies_the_others),
        cmocka_unit_test(test_unknown_event_types_and_error_events_are_reported_not_applied),
        cmocka_unit_test(test_last_line_without_newline_is_read_when_not_following),
        cmocka_unit_test(test_a_line_over_the_cap_is_reported_and_skipped),
        cmocka_unit_test(test_the_default_cap_is_16_mib),
        cmocka_unit_test(test_follow_picks_up_appended_lines_and_waits_for_a_partial_line),
        cmocka_unit_test(test_follow_of_an_empty_file_waits_for_its_first_line),
        cmocka_unit_test(test_a_followed_file_rewritten_from_the_start_is_read_again),
        cmocka_unit_test(test_yaml_manifests_with_a_list_and_quoted_versus_plain_scalars),
        cmocka_unit_test(test_yaml_documents_that_are_not_objects_or_misuse_aliases_are_skipped),
        cmocka_unit_test(test_a_yaml_document_with_an_over_long_line_is_skipped_whole),
        cmocka_unit_test(test_yaml_follow_applies_documents_appended_later),
        cmocka_unit_test(test_opening_a_missing_file_fails),
    };
    log_init("test_watcher_replay", LOG_INFO);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
