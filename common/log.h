/* log.h — one-line log records on stderr: "prog[pid]: LEVEL message".
 * Debug records are printed only when BERTH_DEBUG is set in the environment.
 * No state: the program name comes from program_invocation_short_name. */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

enum berth_log_level { BERTH_LOG_DEBUG, BERTH_LOG_INFO, BERTH_LOG_WARN, BERTH_LOG_ERROR };

void berth_log(enum berth_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) berth_log(BERTH_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) berth_log(BERTH_LOG_INFO, __VA_ARGS__)
#define log_warn(...) berth_log(BERTH_LOG_WARN, __VA_ARGS__)
#define log_error(...) berth_log(BERTH_LOG_ERROR, __VA_ARGS__)

#endif
