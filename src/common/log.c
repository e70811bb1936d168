#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level current_level = LOG_WARN;
static enum log_format current_format = LOG_FORMAT_TEXT;
static int current_fd = -1;
static const char *current_ident = NULL;
static struct timespec clock_start;

static const char *const level_names[] = {
    [LOG_ERROR] = "error",
    [LOG_WARN] = "warning",
    [LOG_INFO] = "info",
    [LOG_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	current_level = level;
}
enum log_level log_get_level(void)
{
	return current_level;
}
void log_set_format(enum log_format format)
{
	current_format = format;
}
void log_set_fd(int fd)
{
	current_fd = fd;
}
void log_set_ident(const char *name)
{
	current_ident = name;
}

/* s as a JSON string body (without quotes) into out, which holds at
 * least 6 * strlen(s) + 1 bytes. */
static void json_escape(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else if (c == '\t') {
			out[n++] = '\\';
			out[n++] = 't';
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
}

/* Format into buf when it fits, else into a malloc'd string: *out is what
 * holds the text (NULL when out of memory).  Returns the length or -1. */
static int vformat_into(char *buf, size_t cap, char **out, const char *fmt, va_list ap) PRINTF_FMT(4, 0);
static int vformat_into(char *buf, size_t cap, char **out, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	va_copy(again, ap);
	n = vsnprintf(buf, cap, fmt, ap);
	*out = buf;
	if (n >= 0 && (size_t)n >= cap && vasprintf(out, fmt, again) < 0) {
		*out = NULL;
		n = -1;
	}
	va_end(again);
	return n;
}

static int format_into(char *buf, size_t cap, char **out, const char *fmt, ...) PRINTF_FMT(4, 5);
static int format_into(char *buf, size_t cap, char **out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vformat_into(buf, cap, out, fmt, ap);
	va_end(ap);
	return n;
}

/* A message is never cut: a long name in it must not push its cause out
 * (error messages end with the cause).  Messages of ordinary size stay on
 * the stack, so that logging from a device thread does not allocate. */
void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char oom[] = "(out of memory while formatting a log message)";
	char msg_buf[1024], esc_buf[2048], line_buf[3072], stamp[64];
	char *msg = NULL, *esc = NULL, *line = NULL;
	const char *text, *etext;
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int fd = current_fd >= 0 ? current_fd : STDERR_FILENO;
	int n;

	if (level > current_level)
		return;
	va_start(ap, fmt);
	(void)vformat_into(msg_buf, sizeof(msg_buf), &msg, fmt, ap);
	va_end(ap);
	text = msg ? msg : oom;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	if (current_format != LOG_FORMAT_TEXT) {
		size_t need = strlen(text) * 6 + 1;
		esc = need <= sizeof(esc_buf) ? esc_buf : malloc(need);
		if (esc)
			json_escape(esc, need, text);
	}
	etext = esc ? esc : oom;
	if (current_format == LOG_FORMAT_JSON)
		n = format_into(line_buf, sizeof(line_buf), &line,
				"{\"level\":\"%s\",\"msg\":\"%s\",\"time\":\"%s.%09ldZ\"}\n", level_names[level], etext,
				stamp, ts.tv_nsec);
	else if (current_format == LOG_FORMAT_LOGFMT)
		n = format_into(line_buf, sizeof(line_buf), &line, "time=\"%sZ\" level=%s msg=\"%s\"\n", stamp,
				level_names[level], etext);
	else
		n = format_into(line_buf, sizeof(line_buf), &line, "%s%s%s: %s\n", current_ident ? current_ident : "",
				current_ident ? ": " : "", level_names[level], text);
	/* One write per line keeps lines whole when threads log at once. */
	if (n >= 0 && line)
		(void)!write(fd, line, (size_t)n);
	if (line != line_buf)
		free(line);
	if (esc != esc_buf)
		free(esc);
	if (msg != msg_buf)
		free(msg);
}

void log_clock_start(void)
{
	clock_gettime(CLOCK_MONOTONIC, &clock_start);
}

void log_step_msg(const char *fmt, ...)
{
	char what[512];
	struct timespec now;
	double ms;
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &now);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	ms = (double)(now.tv_sec - clock_start.tv_sec) * 1e3 + (double)(now.tv_nsec - clock_start.tv_nsec) / 1e6;
	log_msg(LOG_DEBUG, "+%.3f ms (monotonic %lld.%09ld s): %s", ms, (long long)now.tv_sec, now.tv_nsec, what);
}
