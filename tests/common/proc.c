#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *d, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int proc_run(char *const argv[], const struct proc_opts *opts, struct proc_result *res)
{
	static const struct proc_opts defaults = {0};
	int in[2], out[2], errp[2];
	struct buf bo = {0}, be = {0};
	const char *sin;
	size_t sin_len, sin_off = 0;
	double start = now(), timeout, signal_at = 0;
	int status = 0, open_fds = 2, signalled = 0;
	pid_t pid;

	if (opts == NULL)
		opts = &defaults;
	memset(res, 0, sizeof(*res));
	sin = opts->stdin_data;
	sin_len = sin ? (opts->stdin_len ? opts->stdin_len : strlen(sin)) : 0;
	timeout = opts->timeout > 0 ? opts->timeout : 60;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(errp[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(errp[1]);
	if (sin == NULL) {
		close(in[1]);
		in[1] = -1;
	} else {
		fcntl(in[1], F_SETFL, O_NONBLOCK);
	}
	while (open_fds > 0) {
		struct pollfd pfd[3] = {{out[0], POLLIN, 0}, {errp[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
		double left = start + timeout - now();
		int n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			res->timed_out = 1;
			break;
		}
		if (signal_at > 0 && now() >= signal_at && !signalled) {
			kill(pid, opts->signal);
			signalled = 1;
		}
		n = poll(pfd, in[1] >= 0 && sin_off < sin_len ? 3 : 2, 50);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (pfd[i].fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP))) {
				char tmp[4096];
				ssize_t got = read(pfd[i].fd, tmp, sizeof(tmp));
				if (got > 0) {
					buf_add(i == 0 ? &bo : &be, tmp, (size_t)got);
				} else {
					close(pfd[i].fd);
					if (i == 0)
						out[0] = -1;
					else
						errp[0] = -1;
					open_fds--;
				}
			}
		}
		if (in[1] >= 0 && sin_off < sin_len && (pfd[2].revents & POLLOUT)) {
			ssize_t w = write(in[1], sin + sin_off, sin_len - sin_off);
			if (w > 0)
				sin_off += (size_t)w;
			if (w < 0 && errno != EAGAIN) {
				close(in[1]);
				in[1] = -1;
			}
		}
		if (in[1] >= 0 && sin_off >= sin_len && sin_len > 0) {
			/* All input given: close so the program sees EOF. */
			close(in[1]);
			in[1] = -1;
		}
		if (opts->signal_after && !signal_at && bo.p && strstr(bo.p, opts->signal_after))
			signal_at = now() + opts->signal_delay;
	}
	if (out[0] >= 0)
		close(out[0]);
	if (errp[0] >= 0)
		close(errp[0]);
	if (in[1] >= 0)
		close(in[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	res->seconds = now() - start;
	if (WIFEXITED(status)) {
		res->exited = 1;
		res->status = WEXITSTATUS(status);
	} else {
		res->status = WTERMSIG(status);
	}
	res->out = bo.p ? bo.p : strdup("");
	res->err = be.p ? be.p : strdup("");
	return 0;
}

void proc_result_free(struct proc_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}

const char *test_env_path(const char *var)
{
	const char *v = getenv(var);

	if (v == NULL || *v == '\0')
		test_skip("%s is not set (run through meson test)", var);
	return v;
}
