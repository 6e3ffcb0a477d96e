/* kit.h — what integration tests need to drive the real programs:
 * a pipeline of the three kavi processes on a recorded stream that the test
 * extends as it goes, against an in-process Avi Controller simulator, and a
 * normalised view of the controller's state to compare with expectations.
 *
 * Scenario files (tests/data/scenarios/NAME.scenario) are read line by line:
 *   # comment                      ignored
 *   {"type":"ADDED",...}           appended to the stream the watcher follows
 *   @expect <json>                 wait until the controller holds exactly this
 *   @status <json>                 wait until the watcher reports these statuses:
 *                                  {"Service/ns/name": [VIPs] | "error: <message>"}
 *   @kill <stage>                  SIGKILL watcher|planner|syncer|syncer-team-b
 *   @start <stage>                 start it (again)
 *   @mark                          clear the simulator's request log
 *   @writes-only METHOD PREFIX     every write since @mark is METHOD on an
 *                                  object whose name starts with PREFIX
 *   @no-empty-pool-writes          no pool written with zero servers since @mark
 *   @faults <json>                 POST it to the simulator's /_sim/faults
 *   @config <yaml line>            (leading lines only) extra configuration
 *   @reconfigure <yaml line>       add it to the config of stages started later
 * Expectations name every kavi object on the controller:
 *   {"virtualservice":[names], "vsvip":[names], ..., "pool":{name:[servers]}}
 * with names of the admin tenant plain and others' as "<tenant>/<name>";
 * where a server reads "<hostname> <addr>:<port> enabled|disabled". */
#ifndef KAVI_TESTS_KIT_H
#define KAVI_TESTS_KIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "tests/avisim/avisim.h"

#define KIT_DEADLINE_MS 45000

/* The three stages start with the pipeline; a second syncer, for the
 * simulator's extra tenant team-b, starts only when a scenario asks. */
typedef enum {
    KIT_WATCHER = 0,
    KIT_PLANNER = 1,
    KIT_SYNCER = 2,
    KIT_SYNCER_TEAM_B = 3,
    KIT_STAGES = 4
} kit_stage;

typedef struct {
    avisim_t *sim;
    char dir[256];         /* scratch directory of this pipeline */
    char config_path[300];
    char stream_path[300];
    char status_path[300];
    pid_t pids[KIT_STAGES];
    int starts[KIT_STAGES];
    bool borrows_sim;      /* sim belongs to another pipeline: not destroyed here */
} kit_pipeline;

/* Starts the simulator, writes a config (clusterName "kavi", NodePort mode,
 * plus `extra_config` lines) and starts the three stages on an empty
 * followed stream. */
int kit_pipeline_start(kit_pipeline *p, const char *extra_config);
/* The same with the watcher on a live API server named by a kubeconfig
 * (NULL: the followed stream). */
int kit_pipeline_start_from(kit_pipeline *p, const char *extra_config, const char *kubeconfig);
/* A second cluster beside another: the pipeline runs with clusterName
 * `cluster_name` against `sim` (another pipeline's simulator, which must
 * outlive this pipeline; NULL: its own), on a followed stream. */
int kit_pipeline_start_beside(kit_pipeline *p, avisim_t *sim, const char *cluster_name,
                              const char *extra_config);
/* The same on the followed stream with the simulator's options (a VIP range
 * wide enough for thousands of Services, say); NULL: the defaults. */
int kit_pipeline_start_sim(kit_pipeline *p, const char *extra_config,
                           const avisim_options_t *sim_options);
/* Stops every stage with SIGTERM; false (reason in why) if one did not exit 0
 * — under the sanitizers, a leak or an error at exit. */
bool kit_pipeline_stop(kit_pipeline *p, char *why, size_t why_len);

int kit_stage_start(kit_pipeline *p, kit_stage stage);
void kit_stage_kill(kit_pipeline *p, kit_stage stage);
int kit_stage_parse(const char *name);
/* SIGSTOP / SIGCONT: the stage keeps its sockets but answers nothing. */
void kit_stage_freeze(kit_pipeline *p, kit_stage stage);
void kit_stage_thaw(kit_pipeline *p, kit_stage stage);
/* Waits until the stage's log holds `needle` (from byte `from` on) or
 * deadline_ms passes; the log's size goes to *end when found. */
bool kit_wait_for_log(kit_pipeline *p, kit_stage stage, const char *needle, long from,
                      long *end, int64_t deadline_ms);
long kit_log_size(kit_pipeline *p, kit_stage stage);

/* Appends one line to the followed stream. */
int kit_append(kit_pipeline *p, const char *line);
/* Appends a whole recording in one write, so the watcher sees it at once. */
int kit_append_file(kit_pipeline *p, const char *path);

/* The controller's kavi objects in the expectation format (owned). */
json_t *kit_controller_view(kit_pipeline *p);
/* Polls until the view equals `expected` or the deadline passes; on failure
 * writes both into `why`. */
bool kit_wait_for_view(kit_pipeline *p, const json_t *expected, char *why, size_t why_len);
bool kit_wait_for_status(kit_pipeline *p, const json_t *expected, char *why, size_t why_len);

/* The same with a deadline in ms from now; the poll interval grows with the
 * time one view takes (a view of 500,000 servers is not free). The failure
 * text is a summary of the difference, not both views whole. */
bool kit_wait_for_view_within(kit_pipeline *p, const json_t *expected, int64_t deadline_ms,
                              char *why, size_t why_len);
/* Counts what differs between two views into `out` ("12 pools missing,
 * 3 wrong: ..."); returns the number of differing objects. */
size_t kit_view_diff(const json_t *expected, const json_t *actual, char *out, size_t out_len);

/* The simulator's request log after sequence number `since` (owned array
 * of {seq, method, type, name, status, body}), and its counter of
 * "METHOD type" requests (e.g. "POST pool"; -1 when unreadable). */
json_t *kit_sim_log(kit_pipeline *p, unsigned long long since);
long kit_sim_counter(kit_pipeline *p, const char *method_type);

/* Runs a whole scenario file; false with the failing line in `why`. */
bool kit_run_scenario(const char *path, char *why, size_t why_len);

/* Path of a kavi program: $KAVI_BIN_DIR/<name>, default build/asan/bin. */
const char *kit_bin(const char *name, char *buf, size_t len);

/* Prints the last lines of every stage's log to stderr (after a failure). */
void kit_dump_logs(kit_pipeline *p);

#endif
