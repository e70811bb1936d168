/* Hooks: each runs with the container state on its stdin, its timeout
 * enforced; the first failure stops the list. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "common/log.h"
#include "common/macro.h"
#include "oci/util.h"
#include "oci/container.h"

static int run_one(const struct oci_hook *h, const char *kind, size_t index, const char *state, struct err **e)
{
	extern char **environ;
	char *argv_default[] = {h->path, NULL};
	int in[2], status = 0;
	pid_t pid;
	int pidfd;
	long long deadline = h->timeout > 0 ? monotonic_ms() + h->timeout * 1000LL : 0;

	if (pipe2(in, O_CLOEXEC) < 0)
		return err_set(e, errno, "hook %s[%zu] '%s': pipe", kind, index, h->path);
	pid = fork();
	if (pid < 0) {
		close(in[0]);
		close(in[1]);
		return err_set(e, errno, "hook %s[%zu] '%s': fork", kind, index, h->path);
	}
	if (pid == 0) {
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		if (dup2(in[0], 0) < 0)
			_exit(127);
		/* The hook's stdout joins stderr: stdout may be the container's. */
		/* No env: the runtime's own, as runc (Go's exec.Cmd) passes it. */
		execve(h->path, h->args ? h->args : argv_default, h->env ? h->env : environ);
		fprintf(stderr, "casulo-runtime: hook %s[%zu] '%s': exec: %s\n", kind, index, h->path, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	/* A hook that does not read its stdin must not block us: ignore EPIPE. */
	{
		struct sigaction old, ign = {.sa_handler = SIG_IGN};
		sigaction(SIGPIPE, &ign, &old);
		(void)write_full(in[1], state, strlen(state));
		sigaction(SIGPIPE, &old, NULL);
	}
	close(in[1]);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	for (;;) {
		pid_t w = waitpid(pid, &status, deadline ? WNOHANG : 0);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			if (pidfd >= 0)
				close(pidfd);
			return err_set(e, errno, "hook %s[%zu] '%s': wait", kind, index, h->path);
		}
		if (w == 0) {
			long long left = deadline - monotonic_ms();
			if (left <= 0) {
				kill(pid, SIGKILL);
				waitpid(pid, NULL, 0);
				if (pidfd >= 0)
					close(pidfd);
				return err_setx(e, ETIMEDOUT, "hook %s[%zu] '%s': timed out after %d s", kind, index,
						h->path, h->timeout);
			}
			if (pidfd >= 0) {
				struct pollfd p = {pidfd, POLLIN, 0};
				poll(&p, 1, (int)MIN(left, 1000LL));
			} else {
				msleep(10);
			}
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		return err_setx(e, EIO, "hook %s[%zu] '%s': exited with status %d", kind, index, h->path,
				WEXITSTATUS(status));
	return err_setx(e, EIO, "hook %s[%zu] '%s': killed by signal %d", kind, index, h->path, WTERMSIG(status));
}

int hooks_run(const struct oci_spec *s, enum oci_hook_kind kind, const char *state_json, struct err **e)
{
	for (size_t i = 0; i < s->n_hooks[kind]; i++) {
		int r = run_one(&s->hooks[kind][i], oci_hook_names[kind], i, state_json ? state_json : "{}", e);
		if (r < 0)
			return r;
		log_debug("hook %s[%zu] '%s': ok", oci_hook_names[kind], i, s->hooks[kind][i].path);
	}
	return 0;
}

long long hooks_timeout_ms(const struct oci_spec *s, enum oci_hook_kind kind)
{
	long long total = 0;

	for (size_t i = 0; i < s->n_hooks[kind]; i++) {
		if (s->hooks[kind][i].timeout <= 0)
			return -1;
		total += s->hooks[kind][i].timeout * 1000LL;
	}
	return total;
}
