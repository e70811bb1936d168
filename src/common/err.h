/*
 * Error objects for control paths (after crun's libcrun_error_t).
 *
 * A failing function fills *e with a positive errno-style code and a
 * message of the form "object 'name': action: cause", and returns the
 * negative code.  Callers add context with err_wrap() and only main() or
 * an API handler prints the message, once.  Hot paths (vCPU exits,
 * virtqueues) return plain -errno instead and allocate nothing.
 */
#ifndef CASULO_COMMON_ERR_H
#define CASULO_COMMON_ERR_H

#include <stdio.h>
#include "common/macro.h"

struct err {
	int code;  /* positive errno value, or EINVAL for bad input */
	char *msg; /* full message, cause included */
};

/*
 * Record an error.  When code is an errno value, ": strerror(code)" is
 * appended.  Pass code 0 for a failure that has no errno cause: the
 * message is kept as is and the code becomes EINVAL.  Returns -code.
 * If *e already holds an error, the older one is replaced.
 */
int err_set(struct err **e, int code, const char *fmt, ...) PRINTF_FMT(3, 4);

/* Same as err_set() but never appends strerror(): for messages that
 * already say the cause, with code still carried for exit statuses. */
int err_setx(struct err **e, int code, const char *fmt, ...) PRINTF_FMT(3, 4);

/* Prepend "context: " to the message in *e.  Returns -code. */
int err_wrap(struct err **e, const char *fmt, ...) PRINTF_FMT(2, 3);

/* The code carried by *e, or EIO if none was set. */
int err_code(const struct err *e);

/*
 * Copy msg into buf (cap bytes, NUL included) for a channel of fixed size.
 * A message too long for it keeps its start (what failed) and its end (the
 * cause) and loses its middle (where the long names are), marked " ... ".
 * Returns the length copied.
 */
size_t err_fit(char *buf, size_t cap, const char *msg);

/* Print "prog: message" on stream. */
void err_print(const struct err *e, const char *prog, FILE *stream);

void err_free(struct err **e);

#define _cleanup_err_ __attribute__((cleanup(err_free)))

#endif
