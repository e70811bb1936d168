#include "test.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 512
#define SKIP_STATUS 77

static struct {
	const char *name;
	test_fn fn;
} tests[MAX_TESTS];
static unsigned test_count;
static int current_failed;
unsigned test_timeout_seconds = 60;

void test_register(const char *name, test_fn fn)
{
	if (test_count < MAX_TESTS) {
		tests[test_count].name = name;
		tests[test_count].fn = fn;
		test_count++;
	}
}

void test_fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "# %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	current_failed = 1;
}

void test_skip(const char *fmt, ...)
{
	char reason[512];
	va_list ap;
	int fd;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	/* The parent reads the reason back from this pipe-like file. */
	fd = 3;
	if (write(fd, reason, strlen(reason)) < 0) {
		/* Nothing more to do: the skip status still counts. */
	}
	fflush(stdout);
	_exit(SKIP_STATUS);
}

static int run_one(unsigned idx, unsigned number)
{
	int pipefd[2];
	char reason[512] = "";
	pid_t pid;
	int status;
	ssize_t n;

	fflush(stdout);
	if (pipe(pipefd) < 0) {
		printf("not ok %u - %s # pipe: %s\n", number, tests[idx].name, strerror(errno));
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		printf("not ok %u - %s # fork: %s\n", number, tests[idx].name, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(pipefd[0]);
		if (pipefd[1] != 3) {
			dup2(pipefd[1], 3);
			close(pipefd[1]);
		}
		alarm(test_timeout_seconds);
		current_failed = 0;
		tests[idx].fn();
		fflush(stdout);
		_exit(current_failed ? 1 : 0);
	}
	close(pipefd[1]);
	n = read(pipefd[0], reason, sizeof(reason) - 1);
	if (n > 0)
		reason[n] = '\0';
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("ok %u - %s\n", number, tests[idx].name);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == SKIP_STATUS) {
		printf("ok %u - %s # SKIP %s\n", number, tests[idx].name, reason);
		return 0;
	}
	if (WIFSIGNALED(status))
		printf("# %s: killed by signal %d%s\n", tests[idx].name, WTERMSIG(status),
		       WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
	printf("not ok %u - %s\n", number, tests[idx].name);
	return 1;
}

int main(void)
{
	const char *filter = getenv("TEST_FILTER"), *done_env = getenv("CASULO_TAP_DONE");
	unsigned selected[MAX_TESTS], nsel = 0, done = done_env ? (unsigned)strtoul(done_env, NULL, 10) : 0;
	int failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned i = 0; i < test_count; i++)
		if (!filter || strstr(tests[i].name, filter))
			selected[nsel++] = i;
	/* tests/lab/run --tap booted a dead lab again: the plan and the first
	 * `done` results are already printed, so resume after them. */
	if (done == 0)
		printf("TAP version 13\n1..%u\n", nsel);
	for (unsigned i = done; i < nsel; i++)
		failed |= run_one(selected[i], i + 1);
	return failed ? 1 : 0;
}
