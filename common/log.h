/* Leveled logging to stderr, one line per call:
 *   2026-11-24T13:45:01.123Z kavi-planner INFO <message>
 * The level is set once at start from the config (logLevel) and may be
 * changed later; messages below it cost one comparison. */
#ifndef KAVI_COMMON_LOG_H
#define KAVI_COMMON_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level;

void log_init(const char *program, log_level level);
void log_set_level(log_level level);
log_level log_get_level(void);
/* Parses "DEBUG", "INFO", "WARN"/"WARNING", "ERROR" (any case); -1 if unknown. */
int log_level_parse(const char *name);

void log_write(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
