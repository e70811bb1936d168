/* Run a program for a test: feed stdin, capture stdout and stderr, time out. */
#ifndef CASULO_TESTS_PROC_H
#define CASULO_TESTS_PROC_H

#include <stddef.h>
#include <sys/types.h>

struct proc_result {
	int exited;	/* 1 if it exited normally */
	int status;	/* exit status, or the signal number when !exited */
	int timed_out;	/* killed after the timeout */
	double seconds; /* wall time */
	char *out;	/* stdout, NUL-terminated */
	char *err;	/* stderr, NUL-terminated */
};

struct proc_opts {
	const char *stdin_data; /* NULL: /dev/null */
	size_t stdin_len;	/* 0: strlen(stdin_data) */
	double timeout;		/* seconds; 0: 60 */
	/* Send this signal once stdout contains this text (for stop tests). */
	const char *signal_after;
	int signal;
	double signal_delay; /* seconds to wait after the text appears */
};

int proc_run(char *const argv[], const struct proc_opts *opts, struct proc_result *res);
void proc_result_free(struct proc_result *res);

/* Path of a file the build gives to the tests, from an environment
 * variable set by meson (skips the test when unset). */
const char *test_env_path(const char *var);

#endif
