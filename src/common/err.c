#include "common/err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int err_vset(struct err **e, int code, int with_cause, const char *fmt, va_list ap) PRINTF_FMT(4, 0);
static int err_vset(struct err **e, int code, int with_cause, const char *fmt, va_list ap)
{
	char *text = NULL;
	char *msg = NULL;
	int rc;

	if (code < 0)
		code = -code;
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	if (with_cause && code != 0)
		rc = asprintf(&msg, "%s: %s", text ? text : "error", strerror(code));
	else
		rc = asprintf(&msg, "%s", text ? text : "error");
	if (rc < 0)
		msg = NULL;
	free(text);
	if (code == 0)
		code = EINVAL;
	if (e == NULL) {
		free(msg);
		return -code;
	}
	err_free(e);
	*e = calloc(1, sizeof(**e));
	if (*e == NULL) {
		free(msg);
		return -code;
	}
	(*e)->code = code;
	(*e)->msg = msg;
	return -code;
}

int err_set(struct err **e, int code, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = err_vset(e, code, 1, fmt, ap);
	va_end(ap);
	return rc;
}

int err_setx(struct err **e, int code, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = err_vset(e, code, 0, fmt, ap);
	va_end(ap);
	return rc;
}

int err_wrap(struct err **e, const char *fmt, ...)
{
	char *prefix = NULL;
	char *msg = NULL;
	va_list ap;

	if (e == NULL || *e == NULL)
		return -EIO;
	va_start(ap, fmt);
	if (vasprintf(&prefix, fmt, ap) < 0)
		prefix = NULL;
	va_end(ap);
	if (prefix && asprintf(&msg, "%s: %s", prefix, (*e)->msg ? (*e)->msg : "error") >= 0) {
		free((*e)->msg);
		(*e)->msg = msg;
	}
	free(prefix);
	return -(*e)->code;
}

int err_code(const struct err *e)
{
	return (e && e->code > 0) ? e->code : EIO;
}

/* A UTF-8 continuation byte: not where a cut may fall. */
static bool utf8_inside(char c)
{
	return ((unsigned char)c & 0xc0) == 0x80;
}

size_t err_fit(char *buf, size_t cap, const char *msg)
{
	static const char cut[] = " ... ";
	size_t len = strlen(msg), head, tail;

	if (cap == 0)
		return 0;
	if (len < cap) {
		memcpy(buf, msg, len + 1);
		return len;
	}
	if (cap <= sizeof(cut) + 8) {
		buf[0] = '\0';
		return 0;
	}
	head = (cap - sizeof(cut)) / 3;
	tail = cap - sizeof(cut) - head;
	while (head > 0 && utf8_inside(msg[head]))
		head--;
	while (tail > 0 && utf8_inside(msg[len - tail]))
		tail--;
	memcpy(buf, msg, head);
	memcpy(buf + head, cut, sizeof(cut) - 1);
	memcpy(buf + head + sizeof(cut) - 1, msg + len - tail, tail);
	buf[head + sizeof(cut) - 1 + tail] = '\0';
	return head + sizeof(cut) - 1 + tail;
}

void err_print(const struct err *e, const char *prog, FILE *stream)
{
	const char *msg = (e && e->msg) ? e->msg : "unknown error";

	if (prog)
		fprintf(stream, "%s: %s\n", prog, msg);
	else
		fprintf(stream, "%s\n", msg);
}

void err_free(struct err **e)
{
	if (e == NULL || *e == NULL)
		return;
	free((*e)->msg);
	free(*e);
	*e = NULL;
}
