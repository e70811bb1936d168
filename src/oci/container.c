/* create, run and start; the runtime's side of spawning a container
 * process; waiting for a foreground one; destroying a container. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "common/log.h"
#include "common/macro.h"
#include "oci/cgroups.h"
#include "oci/container.h"
#include "oci/state.h"
#include "oci/sync.h"
#include "oci/util.h"

static int forward_fd(struct run_ctx *c, uint32_t type, int fd, const char *console_socket, int *console_master,
		      pid_t pid, struct err **e)
{
	int r = 0;

	if (type == SYNC_CONSOLE) {
		if (console_socket)
			r = terminal_send(console_socket, fd, e);
		else
			*console_master = fd, fd = -1;
	} else {
		r = seccomp_send_listener(c->spec->seccomp, fd, c->id, pid, c->bundle, c->spec, e);
	}
	if (fd >= 0)
		close(fd);
	if (r < 0)
		return r;
	r = sync_send(c->sock, SYNC_FD_DONE, NULL, 0, -1);
	return r < 0 ? err_set(e, -r, "container '%s': sync", c->id) : 0;
}

/* How often a wait on the setup child and the container process looks
 * whether they can run at all. */
#define CHILD_CHECK_MS 100

/* The bound of a step during which hooks of kind run in the children. */
static int step_timeout_ms(const struct run_ctx *c, enum oci_hook_kind kind)
{
	long long hooks = c->exec_mode ? 0 : hooks_timeout_ms(c->spec, kind);

	return hooks < 0 ? -1 : (int)MIN(CHILD_STEP_TIMEOUT_MS + hooks, (long long)INT_MAX);
}

/* Wait until fd (our end of the sync socket, or a child's pidfd) is
 * readable.  A child that cannot run (its cgroup frozen by someone else)
 * would neither answer nor die: look at the cgroup every CHILD_CHECK_MS,
 * and give up after timeout_ms (-1: no limit, while a hook without a
 * timeout runs).  exec --ignore-paused accepts a frozen container: the
 * time it stays frozen does not count. */
static int child_wait(const struct run_ctx *c, int fd, int timeout_ms, const char *step, struct err **e)
{
	long long deadline = timeout_ms >= 0 ? monotonic_ms() + timeout_ms : -1;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		long long left = deadline < 0 ? CHILD_CHECK_MS : deadline - monotonic_ms();
		_cleanup_free_ char *why = NULL;
		int r = poll(&p, 1, (int)MAX(MIN(left, CHILD_CHECK_MS), 0LL));

		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return err_set(e, errno, "container '%s': %s: poll", c->id, step);
		if (c->cg && cgroup_frozen(c->cg, &why)) {
			if (!c->allow_frozen)
				return err_setx(
				    e, EBUSY,
				    "container '%s': %s: the container's cgroup was frozen (%s): its processes "
				    "cannot run",
				    c->id, step, why ? why : "frozen");
			if (deadline >= 0)
				deadline = monotonic_ms() + timeout_ms;
			continue;
		}
		if (deadline >= 0 && monotonic_ms() >= deadline)
			return err_setx(e, ETIMEDOUT,
					"container '%s': %s: no answer from the container's process after %d s", c->id,
					step, timeout_ms / 1000);
	}
}

/* Reap a child of ours within timeout_ms; true when it was reaped. */
static bool reap_child(pid_t pid, int *status, int timeout_ms)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pidfd >= 0) {
		struct pollfd p = {pidfd, POLLIN, 0};
		while (poll(&p, 1, timeout_ms) < 0 && errno == EINTR)
			;
		close(pidfd);
		return waitpid(pid, status, WNOHANG) == pid;
	}
	for (int waited = 0;; waited += 2) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		if (waited >= timeout_ms)
			return false;
		msleep(2);
	}
}

void container_kill_child(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	(void)reap_child(pid, NULL, 1000);
}

/* The setup child exits once it has sent the container process's pid. */
static int reap_setup_child(const struct run_ctx *c, pid_t pid, struct err **e)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), r = 0;

	if (pidfd >= 0) {
		r = child_wait(c, pidfd, CHILD_STEP_TIMEOUT_MS, "setup child exit", e);
		close(pidfd);
	}
	if (r == 0 && !reap_child(pid, NULL, CHILD_STEP_TIMEOUT_MS))
		r = err_setx(e, ETIMEDOUT, "container '%s': the setup child %d did not exit", c->id, (int)pid);
	return r;
}

/* The next message of the children, within timeout_ms (see child_wait). */
static int child_expect(struct run_ctx *c, uint32_t type, void *buf, size_t cap, size_t *len, const char *what,
			struct err **e)
{
	int r = child_wait(c, c->sock, CHILD_STEP_TIMEOUT_MS, what, e);

	return r < 0 ? r : sync_expect(c->sock, type, buf, cap, len, NULL, what, e);
}

/* The container process ended its end of the socket during setup without
 * a word: reap it (*pid = -1 then) and say how it ended. */
static int exited_during_setup(const struct run_ctx *c, pid_t *pid, struct err **e)
{
	int ws = 0;

	if (!reap_child(*pid, &ws, 1000))
		return err_setx(e, EIO, "container '%s': the container process closed its end during setup", c->id);
	*pid = -1;
	/* (A process setting up alone that ran out of time or was killed
	 * never gets here: init.c's alone_check_death() ends the runtime.) */
	return err_setx(e, EIO, "container '%s': the container process exited during setup (%s %d)", c->id,
			WIFSIGNALED(ws) ? "signal" : "status", WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
}

/* A container process that set up alone has called execve or exited by
 * the time its clone returns: an error it sent waits on the socket; else
 * it ran, or died before its execve. */
static int alone_outcome(struct run_ctx *c, pid_t *pid, struct err **e)
{
	char buf[SYNC_MAX_PAYLOAD + 1];
	struct pollfd p = {c->sock, POLLIN, 0};
	uint32_t type;
	size_t len = 0;
	int fd = -1, r;

	if (poll(&p, 1, 0) == 1 && (r = sync_recv(c->sock, &type, buf, sizeof(buf), &len, &fd)) != -EPIPE) {
		if (fd >= 0)
			close(fd);
		if (r == 0 && type == SYNC_ERROR)
			return sync_error_decode(buf, len, "container setup", e);
		return r < 0 ? err_set(e, -r, "container '%s': sync", c->id)
			     : err_setx(e, EPROTO, "container '%s': unexpected sync message %u", c->id, type);
	}
	return c->alone_execing ? 0 : exited_during_setup(c, pid, e);
}

/* Once the children are made: their end of the socket and the namespaces
 * to join are theirs. */
static void close_children_side(struct run_ctx *c)
{
	close(c->child_sock);
	c->child_sock = -1;
	ns_close_all(c);
}

/* Put a child's pid (the setup child's or the container process's) on
 * record, where a delete of a half-made container finds it. */
static int record_child(struct run_ctx *c, bool setup, pid_t pid, struct err **e)
{
	if (c->record == NULL)
		return 0;
	*(setup ? &c->record->setup_pid : &c->record->pid) = pid;
	*(setup ? &c->record->setup_start : &c->record->start_time) = proc_start_time(pid);
	return state_record(c->record, e);
}

/* One clone from the runtime makes the container process and its new
 * namespaces (init_single_clone says when it can), born in the cgroup2
 * directory when there is one (CLONE_INTO_CGROUP); with c->alone, sharing
 * our memory until it has called execve or exited.  Returns its pid, 0
 * in the child (which never returns), or -1 with errno: the caller then
 * takes the way through the setup child, whose errors name each step. */
static pid_t clone_once(struct run_ctx *c, int flags)
{
	struct clone_args args = {.flags = (uint64_t)flags, .exit_signal = SIGCHLD};
	const char *unified = c->cg ? c->cg->unified.path : NULL;
	int cgfd = unified ? open(unified, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	pid_t pid;

	if (cgfd >= 0) {
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)cgfd;
	}
	if (c->alone) {
		pid = init_clone_alone(c, &args, cgfd >= 0 || unified == NULL);
	} else {
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid == 0) {
			close(c->sock);
			init_container_child(c, cgfd >= 0 || unified == NULL);
		}
		pid = pid < 0 ? -errno : pid;
	}
	if (cgfd >= 0)
		close(cgfd);
	if (pid < 0) {
		/* A plain clone, on kernels without clone3: the child joins
		 * its cgroup2 directory itself. */
		c->alone = false;
		if (pid != -ENOSYS && pid != -E2BIG) {
			errno = -pid;
			return -1;
		}
		pid = (pid_t)syscall(SYS_clone, (unsigned long)flags | SIGCHLD, 0, NULL, NULL, 0);
		if (pid == 0) {
			close(c->sock);
			init_container_child(c, unified == NULL);
		}
	}
	return pid;
}

/* The way through a setup child: it joins and makes the namespaces, then
 * forks the container process (init_setup_child).  *setup is the setup
 * child, reaped here once it has said the container process's pid, *pid. */
static int spawn_with_setup_child(struct run_ctx *c, pid_t *setup, pid_t *pid, struct err **e)
{
	char buf[SYNC_MAX_PAYLOAD + 1];
	size_t len = 0;
	pid_t a = fork();
	int r;

	if (a < 0) {
		r = err_set(e, errno, "container '%s': fork", c->id);
		close(c->child_sock);
		c->child_sock = -1;
		return r;
	}
	if (a == 0) {
		close(c->sock);
		init_setup_child(c);
	}
	*setup = a;
	close_children_side(c);
	if ((r = record_child(c, true, a, e)) < 0)
		return r;
	if ((r = child_expect(c, SYNC_USERNS, buf, sizeof(buf), &len, "namespaces", e)) < 0)
		return r;
	if (len >= 1 && buf[0] && (r = ns_write_idmaps(c->spec, a, e)) < 0)
		return r;
	if ((r = sync_send(c->sock, SYNC_USERNS_DONE, NULL, 0, -1)) < 0)
		return err_set(e, -r, "container '%s': sync", c->id);
	if ((r = child_expect(c, SYNC_PID, buf, sizeof(buf), &len, "container process", e)) < 0)
		return r;
	if (len == sizeof(*pid))
		memcpy(pid, buf, sizeof(*pid));
	if ((r = record_child(c, false, *pid, e)) < 0)
		return r;
	if ((r = reap_setup_child(c, a, e)) < 0)
		return r;
	*setup = -1;
	return 0;
}

int container_spawn(struct run_ctx *c, pid_t *pidp, int *console_master, const char *console_socket, struct err **e)
{
	char buf[SYNC_MAX_PAYLOAD + 1];
	pid_t a = -1, b = -1;
	size_t len = 0;
	int sv[2], r, flags;
	bool single;

	*console_master = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return err_set(e, errno, "container '%s': socketpair", c->id);
	c->sock = sv[0];
	c->child_sock = sv[1];
	/* No setup child: one process creation fewer, each costly (page
	 * tables copied, then faulted in again); none at all when the
	 * container process can set up alone. */
	single = init_single_clone(c, &flags);
	c->alone = single && init_alone_ok(c);
	if (single && (b = clone_once(c, flags)) > 0) {
		close_children_side(c);
		/* Alone, it put itself on record. */
		if ((c->alone && (r = alone_outcome(c, &b, e)) < 0) ||
		    (!(c->alone && c->record && c->record->pid == b && c->record->start_time) &&
		     (r = record_child(c, false, b, e)) < 0))
			goto fail;
		if (c->alone) {
			*pidp = b;
			return 0;
		}
	} else if ((r = spawn_with_setup_child(c, &a, &b, e)) < 0) {
		goto fail;
	}
	if (!c->exec_mode && (r = netdev_move_all(c->spec, b, e)) < 0)
		goto fail;
	if (rootfs_needs_bind_sources(c) && (r = rootfs_send_bind_sources(c, b, e)) < 0)
		goto fail;
	if ((r = sync_send(c->sock, SYNC_INIT_GO, &b, sizeof(b), -1)) < 0) {
		r = err_set(e, -r, "container '%s': sync", c->id);
		goto fail;
	}
	for (;;) {
		uint32_t type;
		int fd = -1;

		if ((r = child_wait(c, c->sock, step_timeout_ms(c, HOOK_CREATE_CONTAINER), "container setup", e)) < 0)
			goto fail;
		r = sync_recv(c->sock, &type, buf, sizeof(buf), &len, &fd);
		if (r == -EPIPE) {
			r = exited_during_setup(c, &b, e);
			goto fail;
		}
		if (r < 0) {
			r = err_set(e, -r, "container '%s': sync", c->id);
			goto fail;
		}
		if (type == SYNC_READY)
			break;
		if (type == SYNC_ERROR) {
			r = sync_error_decode(buf, len, "container setup", e);
			goto fail;
		}
		if (type == SYNC_HOOKS) {
			_cleanup_free_ char *st = state_hook_json(c->id, STATUS_CREATING, b, c->bundle, c->spec);
			if ((r = hooks_run(c->spec, HOOK_PRESTART, st, e)) < 0 ||
			    (r = hooks_run(c->spec, HOOK_CREATE_RUNTIME, st, e)) < 0)
				goto fail;
			if ((r = sync_send(c->sock, SYNC_HOOKS_DONE, NULL, 0, -1)) < 0) {
				r = err_set(e, -r, "container '%s': sync", c->id);
				goto fail;
			}
			continue;
		}
		if ((type == SYNC_CONSOLE || type == SYNC_SECCOMP) && fd >= 0) {
			if ((r = forward_fd(c, type, fd, console_socket, console_master, b, e)) < 0)
				goto fail;
			continue;
		}
		if (fd >= 0)
			close(fd);
		r = err_setx(e, EPROTO, "container '%s': unexpected sync message %u", c->id, type);
		goto fail;
	}
	*pidp = b;
	return 0;
fail:
	container_kill_child(b);
	container_kill_child(a);
	if (*console_master >= 0)
		close(*console_master);
	*console_master = -1;
	close(c->sock);
	c->sock = -1;
	return r;
}

int container_start_sync(struct run_ctx *c, struct err **e)
{
	uint32_t type;
	char buf[SYNC_MAX_PAYLOAD + 1];
	size_t len = 0;
	int r;

	if (c->alone) { /* started already */
		close(c->sock);
		c->sock = -1;
		return 0;
	}
	if ((r = sync_send(c->sock, SYNC_START, NULL, 0, -1)) < 0)
		return err_set(e, -r, "container '%s': start", c->id);
	/* The socket closes on execve (close-on-exec): EOF means started. */
	if ((r = child_wait(c, c->sock, step_timeout_ms(c, HOOK_START_CONTAINER), "start", e)) < 0) {
		close(c->sock);
		c->sock = -1;
		return r;
	}
	r = sync_recv(c->sock, &type, buf, sizeof(buf), &len, NULL);
	close(c->sock);
	c->sock = -1;
	if (r == -EPIPE)
		return 0;
	if (r == 0 && type == SYNC_ERROR)
		return sync_error_decode(buf, len, "start", e);
	return err_setx(e, EPROTO, "container '%s': start: unexpected answer", c->id);
}

void container_block_signals(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGFPE);
	sigprocmask(SIG_BLOCK, &all, old);
}

int container_wait(pid_t pid, int console_master)
{
	sigset_t all, old;
	int sfd, ws = 0;

	if (console_master >= 0) {
		terminal_proxy(console_master, pid, &ws);
		close(console_master);
	} else {
		container_block_signals(&old);
		sigfillset(&all);
		sfd = signalfd(-1, &all, SFD_CLOEXEC);
		for (;;) {
			struct signalfd_siginfo si;
			pid_t w = waitpid(pid, &ws, WNOHANG);
			if (w == pid || (w < 0 && errno == ECHILD))
				break;
			if (sfd < 0) {
				if (waitpid(pid, &ws, 0) == pid)
					break;
				continue;
			}
			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGCHLD)
				continue;
			/* Forward everything else to the container (runc does). */
			kill(pid, (int)si.ssi_signo);
		}
		if (sfd >= 0)
			close(sfd);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return WEXITSTATUS(ws);
}

/* Remove what a container left: processes, cgroups, state; then run the
 * poststop hooks (failures only warn, as the spec says). */
int container_destroy(struct oci_state *st, bool stuck, struct err **e)
{
	struct err *hook_err = NULL;
	int r = 0;

	if (st->cg && stuck && cgroup_destroy_once(st->cg, &hook_err) < 0) {
		log_warn("container '%s': %s (its process dies when it is thawed); left behind", st->id, hook_err->msg);
		err_free(&hook_err);
	} else if (st->cg && !stuck && (r = cgroup_destroy(st->cg, e)) < 0) {
		return r;
	}
	if (state_load_spec(st, NULL) == 0 && st->spec->n_hooks[HOOK_POSTSTOP]) {
		_cleanup_free_ char *js = state_hook_json(st->id, STATUS_STOPPED, 0, st->bundle, st->spec);
		if (hooks_run(st->spec, HOOK_POSTSTOP, js, &hook_err) < 0) {
			log_warn("container '%s': %s", st->id, hook_err->msg);
			err_free(&hook_err);
		}
	}
	r = rm_rf_dir(st->dir);
	if (r < 0)
		return err_set(e, -r, "container '%s': remove state directory '%s'", st->id, st->dir);
	return 0;
}

static void run_poststart(struct oci_state *st)
{
	struct err *e = NULL;

	if (state_load_spec(st, NULL) < 0 || st->spec->n_hooks[HOOK_POSTSTART] == 0)
		return;
	_cleanup_free_ char *js = state_hook_json(st->id, STATUS_RUNNING, st->pid, st->bundle, st->spec);
	if (hooks_run(st->spec, HOOK_POSTSTART, js, &e) < 0) {
		log_warn("container '%s': %s", st->id, e->msg);
		err_free(&e);
	}
}

int container_write_pid_file(const char *path, pid_t pid, struct err **e)
{
	char v[32];
	int r;

	if (path == NULL)
		return 0;
	snprintf(v, sizeof(v), "%d", (int)pid);
	r = write_file_atomic(path, v, strlen(v), 0644);
	if (r < 0)
		return err_set(e, -r, "pid file '%s': write", path);
	return 0;
}

/* systemd socket activation, as runc handles it: when LISTEN_PID is us,
 * the LISTEN_FDS descriptors after stdio pass to the container, which is
 * told LISTEN_FDS=N and LISTEN_PID=1. */
static int take_listen_fds(struct run_ctx *c, struct err **e)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	char kv[2][64];
	char *add[3] = {kv[0], kv[1], NULL};
	size_t n;
	char **env;
	long nfds;

	if (fds == NULL || pid == NULL || atol(pid) != (long)getpid())
		return 0;
	nfds = atol(fds);
	if (nfds <= 0 || nfds > 1024)
		return 0;
	if (c->preserve_fds < (unsigned)nfds)
		c->preserve_fds = (unsigned)nfds;
	snprintf(kv[0], sizeof(kv[0]), "LISTEN_FDS=%ld", nfds);
	snprintf(kv[1], sizeof(kv[1]), "LISTEN_PID=1");
	n = c->spec->process.n_env;
	env = realloc(c->spec->process.env, (n + 3) * sizeof(char *));
	if (env == NULL)
		return err_set(e, ENOMEM, "LISTEN_FDS");
	for (int i = 0; i < 2; i++)
		if ((env[n + (size_t)i] = strdup(add[i])) == NULL)
			return err_set(e, ENOMEM, "LISTEN_FDS");
	env[n + 2] = NULL;
	c->spec->process.env = env;
	c->spec->process.n_env = n + 2;
	return 0;
}

static int spawn(struct run_ctx *c, void *arg, pid_t *pid, int *console_master, struct err **e)
{
	return container_spawn(c, pid, console_master, arg, e);
}

int container_create(const struct oci_global *g, const char *id, const struct oci_create_opts *o, bool run_mode,
		     container_start_fn start, void *arg, struct created *out, struct err **e)
{
	_cleanup_free_ char *config_path = NULL, *config_text = NULL, *dir = NULL, *fifo = NULL;
	struct run_ctx *c = &out->c;
	struct oci_state *st = NULL;
	char bundle[PATH_MAX], created[64];
	size_t config_len = 0;
	bool dir_made = false, cg_made = false;
	int r;

	memset(out, 0, sizeof(*out));
	out->console_master = -1;
	c->sock = c->child_sock = c->fifo_fd = c->exec_root_fd = c->lock_fd = -1;
	for (int k = 0; k < NS_KIND_MAX; k++)
		c->ns_fds[k] = -1;
	if ((r = state_check_id(id, e)) < 0)
		return r;
	if (realpath(o->bundle ? o->bundle : ".", bundle) == NULL)
		return err_set(e, errno, "bundle '%s'", o->bundle ? o->bundle : ".");
	if (o->config && o->config[0] == '/'
		? asprintf(&config_path, "%s", o->config) < 0
		: asprintf(&config_path, "%s/%s", bundle, o->config ? o->config : "config.json") < 0)
		return err_set(e, ENOMEM, "bundle '%s'", bundle);
	if ((r = read_file(config_path, &config_text, &config_len)) < 0)
		return err_set(e, -r, "bundle '%s': read config.json", bundle);
	if ((r = spec_parse(config_text, config_len, &c->spec, e)) < 0)
		return err_wrap(e, "bundle '%s'", bundle);
	log_debug("container '%s': config loaded from '%s' (ociVersion %s, %zu mounts)", id, config_path,
		  c->spec->oci_version ? c->spec->oci_version : "?", c->spec->n_mounts);
	c->g = g;
	c->id = id;
	c->proc = &c->spec->process;
	c->no_pivot = o->no_pivot;
	c->no_new_keyring = o->no_new_keyring;
	c->preserve_fds = o->preserve_fds;
	if ((r = take_listen_fds(c, e)) < 0)
		goto fail;
	c->wait_fifo = !run_mode;
	c->apply_container_seccomp = true;
	if (!c->spec->has_process) {
		r = err_setx(e, EINVAL, "bundle '%s': config.json: process: required to create a container", bundle);
		goto fail;
	}
	if ((c->bundle = strdup(bundle)) == NULL) {
		r = err_set(e, ENOMEM, "bundle");
		goto fail;
	}
	{
		char rootfs[PATH_MAX], joined[PATH_MAX * 2];
		const char *rp = c->spec->root_path;
		snprintf(joined, sizeof(joined), "%s%s%s", rp[0] == '/' ? "" : bundle, rp[0] == '/' ? "" : "/", rp);
		if (realpath(joined, rootfs) == NULL) {
			r = err_set(e, errno, "root.path '%s'", joined);
			goto fail;
		}
		struct stat sb;
		if (stat(rootfs, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
			r = err_setx(e, ENOTDIR, "root.path '%s': not a directory", rootfs);
			goto fail;
		}
		if ((c->rootfs = strdup(rootfs)) == NULL) {
			r = err_set(e, ENOMEM, "rootfs");
			goto fail;
		}
	}
	if (c->proc->terminal && o->console_socket == NULL && (!run_mode || o->detach)) {
		r = err_setx(
		    e, EINVAL,
		    "process.terminal: cannot allocate a terminal for a detached container without --console-socket");
		goto fail;
	}
	if (!c->proc->terminal && o->console_socket) {
		r = err_setx(e, EINVAL, "--console-socket: given but process.terminal is false");
		goto fail;
	}
	c->console_needed = c->proc->terminal;

	if ((r = state_dir_path(g->root, id, &dir, e)) < 0)
		goto fail;
	/* The cgroup paths go on record before anything exists. */
	if (!g->no_cgroups && ((r = cgroups_resolve(c->spec->cgroups_path, id, g->systemd_cgroup, &c->cg, e)) < 0 ||
			       (r = cgroups_check(c->cg, c->spec->has_resources ? &c->spec->resources : NULL, e)) < 0))
		goto fail;
	c->state_dir = strdup(dir);
	st = state_new();
	if (st == NULL || c->state_dir == NULL) {
		r = err_set(e, ENOMEM, "container '%s'", id);
		goto fail;
	}
	st->id = strdup(id);
	st->dir = strdup(dir);
	st->bundle = strdup(bundle);
	st->rootfs = strdup(c->rootfs);
	st->owner = strdup("");
	state_now_rfc3339(created, sizeof(created));
	st->created = strdup(created);
	if (!st->id || !st->dir || !st->bundle || !st->rootfs || !st->owner || !st->created) {
		r = err_set(e, ENOMEM, "container '%s'", id);
		goto fail;
	}
	st->creating = true;
	st->creator_pid = getpid();
	st->creator_start = proc_start_time(st->creator_pid);
	st->systemd_cgroup = g->systemd_cgroup;
	if (mkdir(dir, 0711) < 0) {
		r = errno == EEXIST ? err_setx(e, EEXIST, "container '%s': container with id exists", id)
				    : err_set(e, errno, "container '%s': mkdir '%s'", id, dir);
		goto fail;
	}
	dir_made = true;
	if ((r = state_lock(st, e)) < 0 || (r = state_record(st, e)) < 0)
		goto fail;
	st->cg = c->cg; /* lent for the record: the create owns it until it succeeds */
	r = state_save(st, e);
	st->cg = NULL;
	if (r < 0)
		goto fail;
	{
		_cleanup_free_ char *copy = NULL;
		if (asprintf(&copy, "%s/config.json", dir) < 0 ||
		    (r = write_file_atomic(copy, config_text, config_len, 0600)) < 0) {
			r = err_set(e, r < 0 ? -r : ENOMEM, "container '%s': save config.json", id);
			goto fail;
		}
	}
	if (!run_mode) {
		if (asprintf(&fifo, "%s/exec.fifo", dir) < 0) {
			r = err_set(e, ENOMEM, "container '%s'", id);
			goto fail;
		}
		if (mkfifo(fifo, 0622) < 0) {
			r = err_set(e, errno, "container '%s': mkfifo '%s'", id, fifo);
			goto fail;
		}
		/* Read and write: opening does not block, and the container
		 * blocks on read until `start` writes. */
		c->fifo_fd = open(fifo, O_RDWR | O_CLOEXEC);
		if (c->fifo_fd < 0) {
			r = err_set(e, errno, "container '%s': open '%s'", id, fifo);
			goto fail;
		}
	}
	if (c->cg) {
		if ((r = cgroups_make(c->cg, id, e)) < 0)
			goto fail; /* it took back what it made */
		cg_made = true;
	}
	if (c->cg && (r = cgroups_apply(c->cg, c->spec->has_resources ? &c->spec->resources : NULL, c->spec->devices,
					c->spec->n_devices, false, e)) < 0)
		goto fail;
	if (c->cg)
		log_debug("container '%s': cgroups made and set (%s layout): %s%s", id, cgroup_mode_name(c->cg->mode),
			  cgroup_dir_at(c->cg, 0), cgroup_n_dirs(c->cg) > 1 ? " ..." : "");
	if ((r = ns_open_paths(c, e)) < 0)
		goto fail;
	c->lock_fd = st->lock_fd;
	c->record = st;
	if ((r = start(c, arg, &out->pid, &out->console_master, e)) < 0)
		goto fail;
	if (c->fifo_fd >= 0) {
		close(c->fifo_fd);
		c->fifo_fd = -1;
	}
	st->creating = false;
	if (st->pid != out->pid || st->start_time == 0) { /* else on record already */
		st->pid = out->pid;
		st->start_time = proc_start_time(out->pid);
	}
	st->cg = c->cg;
	c->cg = NULL;
	if ((r = state_record(st, e)) < 0 || (r = container_write_pid_file(o->pid_file, out->pid, e)) < 0) {
		container_kill_child(out->pid);
		c->cg = st->cg;
		st->cg = NULL;
		goto fail;
	}
	st->spec = c->spec;
	out->st = st;
	return 0;
fail:
	ns_close_all(c);
	if (c->fifo_fd >= 0)
		close(c->fifo_fd);
	if (c->sock >= 0)
		close(c->sock);
	if (c->cg) {
		if (cg_made)
			(void)cgroup_destroy(c->cg, NULL);
		cgroup_free(c->cg);
		c->cg = NULL;
	}
	if (dir_made)
		(void)rm_rf_dir(dir);
	state_free(st);
	spec_free(c->spec);
	c->spec = NULL;
	free(c->bundle);
	free(c->rootfs);
	free(c->state_dir);
	return r;
}

void container_created_free(struct created *cr)
{
	if (cr->c.sock >= 0)
		close(cr->c.sock);
	free(cr->c.bundle);
	free(cr->c.rootfs);
	free(cr->c.state_dir);
	if (cr->st)
		state_free(cr->st); /* frees the spec too */
	else
		spec_free(cr->c.spec);
}

int oci_create(const struct oci_global *g, const char *id, const struct oci_create_opts *o, struct err **e)
{
	struct created cr;
	int r = container_create(g, id, o, false, spawn, (void *)o->console_socket, &cr, e);

	if (r < 0)
		return r;
	if (cr.console_master >= 0)
		close(cr.console_master);
	container_created_free(&cr);
	return 0;
}

int container_wait_remove(struct created *cr, bool keep, int *r, struct err **e)
{
	int status;

	/* While the container runs others may pause, update or signal it, as
	 * with runc's run: the state lock is taken again to remove it. */
	state_unlock(cr->st);
	cr->c.lock_fd = -1;
	status = container_wait(cr->pid, cr->console_master);
	*r = 0;
	if (!keep) {
		*r = state_lock(cr->st, e);
		if (*r == -ENOENT) {
			err_free(e); /* deleted meanwhile: nothing left to remove */
			*r = 0;
		} else if (*r == 0) {
			*r = container_destroy(cr->st, false, e);
		}
	}
	container_created_free(cr);
	return status;
}

int oci_run(const struct oci_global *g, const char *id, const struct oci_create_opts *o, int *status, struct err **e)
{
	struct created cr;
	sigset_t old;
	int r;

	/* A foreground run forwards signals to the container: hold them from
	 * now on, so that none is lost (or kills us) during setup. */
	if (!o->detach)
		container_block_signals(&old);
	r = container_create(g, id, o, true, spawn, (void *)o->console_socket, &cr, e);
	*status = 0;
	if (r < 0)
		return r;
	if ((r = container_start_sync(&cr.c, e)) < 0) {
		struct err *e2 = NULL;
		container_kill_child(cr.pid);
		if (cr.console_master >= 0)
			close(cr.console_master);
		(void)container_destroy(cr.st, false, &e2);
		err_free(&e2);
		container_created_free(&cr);
		return r;
	}
	run_poststart(cr.st);
	if (o->detach) {
		if (cr.console_master >= 0)
			close(cr.console_master);
		container_created_free(&cr);
		return 0;
	}
	*status = container_wait_remove(&cr, o->keep, &r, e);
	return r;
}

int oci_start(const struct oci_global *g, const char *id, struct err **e)
{
	_cleanup_free_ char *fifo = NULL;
	struct oci_state *st = NULL;
	enum oci_status s;
	int fd, r;

	if ((r = state_load_locked(g->root, id, &st, e)) < 0)
		return r;
	s = state_status(st);
	if (s != STATUS_CREATED) {
		r = err_setx(e, EINVAL, "container '%s': cannot start a container that is %s", id, oci_status_names[s]);
		goto out;
	}
	if (asprintf(&fifo, "%s/exec.fifo", st->dir) < 0) {
		r = err_set(e, ENOMEM, "container '%s'", id);
		goto out;
	}
	fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = errno == ENXIO
			? err_setx(e, ESRCH, "container '%s': the container process is not waiting to start", id)
			: err_set(e, errno, "container '%s': open '%s'", id, fifo);
		goto out;
	}
	r = write(fd, "0", 1) == 1 ? 0 : -errno;
	if (r < 0) {
		close(fd);
		r = err_set(e, -r, "container '%s': write '%s'", id, fifo);
		goto out;
	}
	unlink(fifo);
	/* The container holds the fifo until execve closes it: POLLERR on our
	 * end (no reader left) says the process runs (its startContainer hooks
	 * done), so poststart hooks follow them, as the spec orders. */
	{
		struct pollfd p = {fd, 0, 0};
		(void)poll(&p, 1, 60000);
	}
	close(fd);
	run_poststart(st);
	r = 0;
out:
	state_free(st);
	return r;
}
