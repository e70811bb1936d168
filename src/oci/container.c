/* create, run and start; the runtime's side of spawning a container
 * process; waiting for a foreground one; destroying a container. */
#include <errno.h>
#include <fcntl.h>
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
#include "oci/cgroup.h"
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

int container_spawn(struct run_ctx *c, pid_t *pidp, int *console_master, const char *console_socket, struct err **e)
{
	char buf[SYNC_MAX_PAYLOAD + 1];
	pid_t a, b = -1;
	size_t len = 0;
	int sv[2], r, status;

	*console_master = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return err_set(e, errno, "container '%s': socketpair", c->id);
	c->sock = sv[0];
	c->child_sock = sv[1];
	a = fork();
	if (a < 0) {
		r = err_set(e, errno, "container '%s': fork", c->id);
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (a == 0) {
		close(c->sock);
		init_setup_child(c);
	}
	close(c->child_sock);
	c->child_sock = -1;
	ns_close_all(c);

	if ((r = sync_expect(c->sock, SYNC_USERNS, buf, sizeof(buf), &len, NULL, "namespaces", e)) < 0)
		goto fail;
	if (len >= 1 && buf[0] && (r = ns_write_idmaps(c->spec, a, e)) < 0)
		goto fail;
	if ((r = sync_send(c->sock, SYNC_USERNS_DONE, NULL, 0, -1)) < 0) {
		r = err_set(e, -r, "container '%s': sync", c->id);
		goto fail;
	}
	if ((r = sync_expect(c->sock, SYNC_PID, buf, sizeof(buf), &len, NULL, "container process", e)) < 0)
		goto fail;
	if (len == sizeof(b))
		memcpy(&b, buf, sizeof(b));
	if (waitpid(a, &status, 0) == a)
		a = -1;
	if (!c->exec_mode && (r = netdev_move_all(c->spec, b, e)) < 0)
		goto fail;
	if ((r = sync_send(c->sock, SYNC_INIT_GO, &b, sizeof(b), -1)) < 0) {
		r = err_set(e, -r, "container '%s': sync", c->id);
		goto fail;
	}
	for (;;) {
		uint32_t type;
		int fd = -1;

		r = sync_recv(c->sock, &type, buf, sizeof(buf), &len, &fd);
		if (r == -EPIPE) {
			int ws = 0;
			waitpid(b, &ws, 0);
			b = -1;
			r = err_setx(e, EIO, "container '%s': the container process exited during setup (%s %d)", c->id,
				     WIFSIGNALED(ws) ? "signal" : "status",
				     WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
			goto fail;
		}
		if (r < 0) {
			r = err_set(e, -r, "container '%s': sync", c->id);
			goto fail;
		}
		if (type == SYNC_READY)
			break;
		if (type == SYNC_ERROR) {
			int code;
			memcpy(&code, buf, sizeof(code));
			r = err_setx(e, code > 0 ? code : EIO, "%s", buf + sizeof(code));
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
	if (b > 0) {
		kill(b, SIGKILL);
		waitpid(b, NULL, 0);
	}
	if (a > 0) {
		kill(a, SIGKILL);
		waitpid(a, NULL, 0);
	}
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
	int r = sync_send(c->sock, SYNC_START, NULL, 0, -1);

	if (r < 0)
		return err_set(e, -r, "container '%s': start", c->id);
	/* The socket closes on execve (close-on-exec): EOF means started. */
	r = sync_recv(c->sock, &type, buf, sizeof(buf), &len, NULL);
	close(c->sock);
	c->sock = -1;
	if (r == -EPIPE)
		return 0;
	if (r == 0 && type == SYNC_ERROR) {
		int code;
		memcpy(&code, buf, sizeof(code));
		return err_setx(e, code > 0 ? code : EIO, "%s", buf + sizeof(code));
	}
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

static int write_pid_file(const char *path, pid_t pid, struct err **e)
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

struct created {
	struct run_ctx c;
	struct oci_state *st;
	pid_t pid;
	int console_master;
};

static int do_create(const struct oci_global *g, const char *id, const struct oci_create_opts *o, bool run_mode,
		     struct created *out, struct err **e)
{
	_cleanup_free_ char *config_path = NULL, *config_text = NULL, *dir = NULL, *fifo = NULL;
	struct run_ctx *c = &out->c;
	struct oci_state *st = NULL;
	char bundle[PATH_MAX], created[64];
	size_t config_len = 0;
	bool dir_made = false;
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
	if (mkdir(dir, 0711) < 0) {
		r = errno == EEXIST ? err_setx(e, EEXIST, "container '%s': container with id exists", id)
				    : err_set(e, errno, "container '%s': mkdir '%s'", id, dir);
		goto fail;
	}
	dir_made = true;
	c->state_dir = strdup(dir);
	st = calloc(1, sizeof(*st));
	if (st == NULL || c->state_dir == NULL) {
		r = err_set(e, ENOMEM, "container '%s'", id);
		goto fail;
	}
	st->lock_fd = -1;
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
	if ((r = state_lock(st, e)) < 0)
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
	if (!g->no_cgroups && (r = cgroup_create(c->spec->cgroups_path, id, g->systemd_cgroup, &c->cg, e)) < 0)
		goto fail;
	st->systemd_cgroup = g->systemd_cgroup;
	if (c->cg && (r = cgroup_set(c->cg, c->spec->has_resources ? &c->spec->resources : NULL, c->spec->devices,
				     c->spec->n_devices, false, e)) < 0)
		goto fail;
	if ((r = ns_open_paths(c, e)) < 0)
		goto fail;
	c->lock_fd = st->lock_fd;
	if ((r = container_spawn(c, &out->pid, &out->console_master, o->console_socket, e)) < 0)
		goto fail;
	if (c->fifo_fd >= 0) {
		close(c->fifo_fd);
		c->fifo_fd = -1;
	}
	st->pid = out->pid;
	st->start_time = proc_start_time(out->pid);
	st->cg = c->cg;
	c->cg = NULL;
	if ((r = state_save(st, e)) < 0 || (r = write_pid_file(o->pid_file, out->pid, e)) < 0) {
		kill(out->pid, SIGKILL);
		waitpid(out->pid, NULL, 0);
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

static void created_free(struct created *cr)
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
	int r = do_create(g, id, o, false, &cr, e);

	if (r < 0)
		return r;
	if (cr.console_master >= 0)
		close(cr.console_master);
	created_free(&cr);
	return 0;
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
	r = do_create(g, id, o, true, &cr, e);
	*status = 0;
	if (r < 0)
		return r;
	if ((r = container_start_sync(&cr.c, e)) < 0) {
		struct err *e2 = NULL;
		kill(cr.pid, SIGKILL);
		waitpid(cr.pid, NULL, 0);
		if (cr.console_master >= 0)
			close(cr.console_master);
		(void)container_destroy(cr.st, false, &e2);
		err_free(&e2);
		created_free(&cr);
		return r;
	}
	run_poststart(cr.st);
	if (o->detach) {
		if (cr.console_master >= 0)
			close(cr.console_master);
		created_free(&cr);
		return 0;
	}
	*status = container_wait(cr.pid, cr.console_master);
	if (!o->keep)
		r = container_destroy(cr.st, false, e);
	created_free(&cr);
	return r;
}

int oci_start(const struct oci_global *g, const char *id, struct err **e)
{
	_cleanup_free_ char *fifo = NULL;
	struct oci_state *st = NULL;
	enum oci_status s;
	int fd, r;

	if ((r = state_load(g->root, id, &st, e)) < 0)
		return r;
	if ((r = state_lock(st, e)) < 0)
		goto out;
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
