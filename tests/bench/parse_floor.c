/* parse_floor FILE — the read+parse floor of a recorded stream: read it line
 * by line and parse each line with jansson, as the watcher must at least do,
 * and nothing else. Prints "lines seconds". The scale benchmark compares
 * the pipeline's initial sync with this figure, measured in the same run. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/clock.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: parse_floor FILE\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    long lines = 0, bad = 0;
    int64_t start = clock_now_ms();
    while (getline(&line, &cap, in) > 0) {
        json_error_t err;
        json_t *doc = json_loads(line, 0, &err);
        if (!doc)
            bad++;
        json_decref(doc);
        lines++;
    }
    double seconds = (double)(clock_now_ms() - start) / 1000.0;
    free(line);
    fclose(in);
    printf("%ld %.3f\n", lines, seconds);
    return bad ? 1 : 0;
}
