/* Runs every scenario file in tests/data/scenarios through the real three
 * processes against the simulator (see tests/kit/kit.h for the format).
 * One cmocka test per file; argv[1] filters by file name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/kit/kit.h"

static void run_scenario_file(void **state)
{
    const char *path = *state;
    char why[8192];
    if (!kit_run_scenario(path, why, sizeof why))
        fail_msg("%s", why);
}

int main(int argc, char **argv)
{
    glob_t files;
    const char *dir = getenv("KAVI_SCENARIOS") ? getenv("KAVI_SCENARIOS") : "tests/data/scenarios";
    char pattern[512];
    snprintf(pattern, sizeof pattern, "%s/*.scenario", dir);
    if (glob(pattern, 0, NULL, &files) != 0) {
        fprintf(stderr, "no scenarios match %s\n", pattern);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct CMUnitTest *tests = calloc(files.gl_pathc, sizeof *tests);
    for (size_t i = 0; i < files.gl_pathc; i++) {
        const char *base = strrchr(files.gl_pathv[i], '/');
        tests[i] = (struct CMUnitTest){.name = base ? base + 1 : files.gl_pathv[i],
                                       .test_func = run_scenario_file,
                                       .initial_state = files.gl_pathv[i]};
    }
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    int failed = _cmocka_run_group_tests("scenarios", tests, files.gl_pathc, NULL, NULL);
    free(tests);
    globfree(&files);
    curl_global_cleanup();
    return failed;
}
