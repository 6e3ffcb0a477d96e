#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

static const char *log_program = "kavi";
static log_level log_threshold = LOG_INFO;

static const char *const log_level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_init(const char *program, log_level level)
{
    log_program = program;
    log_threshold = level;
}

void log_set_level(log_level level) { log_threshold = level; }

log_level log_get_level(void) { return log_threshold; }

int log_level_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i <= LOG_ERROR; i++)
        if (strcasecmp(name, log_level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "WARNING") == 0)
        return LOG_WARN;
    return -1;
}

void log_write(log_level level, const char *fmt, ...)
{
    if (level < log_threshold)
        return;
    struct timespec now;
    struct tm utc;
    char stamp[32];
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);

    /* One fprintf per line keeps lines whole when stages share a terminal. */
    char message[2048];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    fprintf(stderr, "%s.%03ldZ %s %s %s\n", stamp, now.tv_nsec / 1000000L, log_program,
            log_level_names[level], message);
}
