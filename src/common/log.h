/*
 * Process-wide logging: one sink (stderr by default, or a file), text or
 * JSON lines.  Library code logs at debug level only; errors travel up as
 * struct err and are reported once by the caller that owns the operation.
 */
#ifndef CASULO_COMMON_LOG_H
#define CASULO_COMMON_LOG_H

#include "common/macro.h"

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format {
	LOG_FORMAT_TEXT,
	LOG_FORMAT_JSON,
	/* logfmt as Go's logrus writes it (runc's text logs):
	 * time="2006-01-02T15:04:05Z" level=error msg="..." */
	LOG_FORMAT_LOGFMT,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_format(enum log_format format);
/* Log to fd (not closed by the logger); -1 restores stderr. */
void log_set_fd(int fd);
/* Prefix text lines with "name: ". */
void log_set_ident(const char *name);

void log_msg(enum log_level level, const char *fmt, ...) PRINTF_FMT(2, 3);

/* Start-up timing.  log_clock_start() (first thing in main()) records the
 * monotonic clock; log_step() then logs, at debug level, how long after
 * it a step of the start-up ended and that instant on CLOCK_MONOTONIC, so
 * that a benchmark on the same host can place it beside its own clock:
 * "+12.345 ms (monotonic 1234.567890123 s): KVM VM created". */
void log_clock_start(void);
void log_step_msg(const char *fmt, ...) PRINTF_FMT(1, 2);
#define log_step(...)                                                                                                  \
	do {                                                                                                           \
		if (unlikely(log_get_level() >= LOG_DEBUG))                                                            \
			log_step_msg(__VA_ARGS__);                                                                     \
	} while (0)

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                                                 \
	do {                                                                                                           \
		if (unlikely(log_get_level() >= LOG_DEBUG))                                                            \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                                               \
	} while (0)

#endif
