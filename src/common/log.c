#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level current_level = LOG_WARN;
static enum log_format current_format = LOG_FORMAT_TEXT;
static int current_fd = -1;
static const char *current_ident = NULL;

static const char *const level_names[] = {
	[LOG_ERROR] = "error", [LOG_WARN] = "warning", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_set_level(enum log_level level) { current_level = level; }
enum log_level log_get_level(void) { return current_level; }
void log_set_format(enum log_format format) { current_format = format; }
void log_set_fd(int fd) { current_fd = fd; }
void log_set_ident(const char *name) { current_ident = name; }

/* Append s to out as a JSON string body (without quotes). */
static size_t json_escape(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s && n + 7 < cap; s++) {
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
	return n;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[2048], line[4608], stamp[64];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int fd = current_fd >= 0 ? current_fd : STDERR_FILENO;
	int n;

	if (level > current_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	if (current_format == LOG_FORMAT_JSON) {
		char escaped[4096];
		json_escape(escaped, sizeof(escaped), msg);
		n = snprintf(line, sizeof(line), "{\"level\":\"%s\",\"msg\":\"%s\",\"time\":\"%s.%09ldZ\"}\n",
			     level_names[level], escaped, stamp, ts.tv_nsec);
	} else if (current_format == LOG_FORMAT_LOGFMT) {
		char escaped[4096];
		json_escape(escaped, sizeof(escaped), msg);
		n = snprintf(line, sizeof(line), "time=\"%sZ\" level=%s msg=\"%s\"\n", stamp, level_names[level],
			     escaped);
	} else {
		n = snprintf(line, sizeof(line), "%s%s%s: %s\n", current_ident ? current_ident : "",
			     current_ident ? ": " : "", level_names[level], msg);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* One write per line keeps lines whole when threads log at once. */
	(void)!write(fd, line, (size_t)n);
}
