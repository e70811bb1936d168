/*
 * The forked side of starting a container process: the setup child (joins
 * and unshares namespaces, forks the container process) and the container
 * process itself (rootfs, hooks, terminal, limits, user, capabilities,
 * seccomp, then execve).  Failures travel to the runtime as SYNC_ERROR.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/prctl.h>
#include <sys/stat.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"
#include "oci/cgroup.h"
#include "oci/container.h"
#include "oci/state.h"
#include "oci/sync.h"
#include "oci/util.h"

#ifndef KEYCTL_JOIN_SESSION_KEYRING
#define KEYCTL_JOIN_SESSION_KEYRING 1
#endif

static int write_sysctls(const struct oci_spec *s, struct err **e)
{
	for (size_t i = 0; i < s->n_sysctl; i++) {
		char path[512];
		int r;

		snprintf(path, sizeof(path), "/proc/sys/%s", s->sysctl[i].key);
		for (char *p = path + 10; *p; p++)
			if (*p == '.')
				*p = '/';
		r = write_file_str(path, s->sysctl[i].value);
		if (r < 0)
			return err_set(e, -r, "sysctl '%s': write '%s' to %s", s->sysctl[i].key, s->sysctl[i].value,
				       path);
	}
	return 0;
}

static int set_names(const struct oci_spec *s, struct err **e)
{
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
		return err_set(e, errno, "hostname '%s': sethostname", s->hostname);
	if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0)
		return err_set(e, errno, "domainname '%s': setdomainname", s->domainname);
	return 0;
}

static int join_keyring(const char *id, struct err **e)
{
	char name[300];

	snprintf(name, sizeof(name), "_ses.%s", id);
	if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name, 0, 0, 0) < 0 && errno != ENOSYS && errno != EACCES &&
	    errno != EPERM)
		return err_set(e, errno, "session keyring '%s': join", name);
	return 0;
}

/* Send an fd to the runtime and wait until it is forwarded. */
static int hand_fd(int sock, uint32_t type, int fd, const char *what, struct err **e)
{
	int r = sync_send(sock, type, NULL, 0, fd);

	if (r < 0)
		return err_set(e, -r, "%s: send to runtime", what);
	return sync_expect(sock, SYNC_FD_DONE, NULL, 0, NULL, NULL, what, e);
}

/* Load the filter, hand its listener (if any) to the runtime, free it. */
static int load_seccomp(int sock, struct seccomp_prepared **scp, struct err **e)
{
	int nfd = -1, r = seccomp_load_prepared(*scp, &nfd, e);

	seccomp_prepared_free(*scp);
	*scp = NULL;
	if (r < 0)
		return r;
	if (nfd >= 0) {
		r = hand_fd(sock, SYNC_SECCOMP, nfd, "seccomp listener", e);
		close(nfd);
	}
	return r;
}

/* A pty for process.terminal, its master handed to the runtime. */
static int setup_console(struct run_ctx *c, struct err **e)
{
	_cleanup_close_ int master = -1;
	int r;

	if (!c->proc->terminal || !c->console_needed)
		return 0;
	if ((r = terminal_setup(c->proc, !c->exec_mode, &master, e)) < 0)
		return r;
	return hand_fd(c->child_sock, SYNC_CONSOLE, master, "console", e);
}

static int container_process_setup(struct run_ctx *c, pid_t host_pid, char **exe, struct seccomp_prepared **scp,
				   struct err **e)
{
	const struct oci_spec *s = c->spec;
	const struct oci_process *p = c->proc;
	int sock = c->child_sock, r;
	bool have_hooks = s->n_hooks[HOOK_PRESTART] || s->n_hooks[HOOK_CREATE_RUNTIME];

	if (!c->exec_mode) {
		/* A mount namespace, new or joined, gets the rootfs set up in it
		 * (runc); without one, nothing is mounted in the host's and the
		 * process is only chrooted. */
		bool mntns = s->ns[NS_MOUNT].present;
		if (mntns && (r = rootfs_setup(c, e)) < 0)
			return r;
		if (have_hooks) {
			if ((r = sync_send(sock, SYNC_HOOKS, NULL, 0, -1)) < 0)
				return err_set(e, -r, "hooks: ask runtime");
			if ((r = sync_expect(sock, SYNC_HOOKS_DONE, NULL, 0, NULL, NULL, "hooks", e)) < 0)
				return r;
		}
		if (s->n_hooks[HOOK_CREATE_CONTAINER]) {
			_cleanup_free_ char *st = state_hook_json(c->id, STATUS_CREATING, host_pid, c->bundle, s);
			if ((r = hooks_run(s, HOOK_CREATE_CONTAINER, st, e)) < 0)
				return r;
		}
		/* runc's order: pivot, console, read-only root, names, sysctls,
		 * then read-only and masked paths. */
		if (mntns && (r = rootfs_pivot(c, e)) < 0)
			return r;
		if (!mntns && (chdir(c->rootfs) < 0 || chroot(".") < 0 || chdir("/") < 0))
			return err_set(e, errno, "rootfs '%s': chroot (no mount namespace)", c->rootfs);
		if ((r = setup_console(c, e)) < 0)
			return r;
		if (mntns && (r = rootfs_finalize(c, e)) < 0)
			return r;
		if ((r = set_names(s, e)) < 0 || (r = write_sysctls(s, e)) < 0)
			return r;
		if (c->ns_new[NS_NET] && (r = netdev_loopback_up(e)) < 0)
			return r;
		if (mntns && (r = rootfs_protect(c, e)) < 0)
			return r;
	} else {
		if (fchdir(c->exec_root_fd) < 0 || chroot(".") < 0)
			return err_set(e, errno, "container '%s': enter its root", c->id);
		close(c->exec_root_fd);
		if ((r = setup_console(c, e)) < 0)
			return r;
	}
	/* A session of its own (with the terminal, terminal_setup made it);
	 * an exec'd process may already lead one: then setsid fails, harmlessly. */
	if (!(p->terminal && c->console_needed) && setsid() < 0 && !c->exec_mode)
		return err_set(e, errno, "setsid");
	if ((r = process_limits(s, p, host_pid, e)) < 0)
		return r;
	if (!c->no_new_keyring && !c->exec_mode && (r = join_keyring(c->id, e)) < 0)
		return r;
	if ((r = process_labels(p->apparmor_profile, c->process_label ? c->process_label : p->selinux_label, e)) < 0)
		return r;
	if (chdir(p->cwd) < 0 && (errno != EACCES || p->user.uid == 0))
		return err_set(e, errno, "process.cwd '%s': chdir", p->cwd);
	if ((r = process_find_exec(p, exe, e)) < 0)
		return r;
	if (s->seccomp && c->apply_container_seccomp && (r = seccomp_prepare(s->seccomp, scp, e)) < 0)
		return r;
	/* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: do it
	 * while we still have it (runc's order). */
	if (*scp && !p->no_new_privileges && (r = load_seccomp(sock, scp, e)) < 0)
		return r;
	if ((r = process_fix_stdio(p->user.uid, e)) < 0 || (r = caps_apply_user(p, p->has_caps, e)) < 0)
		return r;
	if (p->user.uid != 0 && chdir(p->cwd) < 0)
		return err_set(e, errno, "process.cwd '%s': chdir as uid %u", p->cwd, p->user.uid);
	if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_set(e, errno, "process.noNewPrivileges: prctl");
	/* With no_new_privs the filter goes on as late as possible, right
	 * before execve, so that it need not allow the runtime's own syscalls
	 * (runc does the same); a listener must reach the runtime, so a
	 * filter with SCMP_ACT_NOTIFY is loaded now. */
	if (*scp && s->seccomp->uses_notify && (r = load_seccomp(sock, scp, e)) < 0)
		return r;
	umask(p->user.umask);
	return 0;
}

__attribute__((noreturn)) static void container_process(struct run_ctx *c)
{
	struct err *e = NULL;
	struct seccomp_prepared *scp = NULL;
	_cleanup_free_ char *exe = NULL;
	char **env;
	int sock = c->child_sock, r;
	pid_t host_pid = 0;
	char buf[32];
	size_t len = 0;

	if (sync_expect(sock, SYNC_INIT_GO, buf, sizeof(buf), &len, NULL, "container init", &e) < 0)
		_exit(1);
	if (len == sizeof(host_pid))
		memcpy(&host_pid, buf, sizeof(host_pid));
	/* The cgroup namespace is made here, now that we sit in our cgroups
	 * on every hierarchy, so that they are its root. */
	if (c->ns_new[NS_CGROUP] && unshare(CLONE_NEWCGROUP) < 0) {
		err_set(&e, errno, "namespace cgroup: unshare");
		goto fail;
	}
	if (container_process_setup(c, host_pid, &exe, &scp, &e) < 0)
		goto fail;
	env = process_env(c->proc);
	if (env == NULL) {
		err_set(&e, ENOMEM, "process.env");
		goto fail;
	}
	process_close_fds(c->preserve_fds);
	if ((r = sync_send(sock, SYNC_READY, NULL, 0, -1)) < 0) {
		err_set(&e, -r, "container init: report ready");
		goto fail;
	}
	if (c->wait_fifo) {
		char byte;
		ssize_t n;
		do
			n = read(c->fifo_fd, &byte, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			_exit(1);
		/* The fifo stays open until execve closes it: `start` waits for
		 * that before it runs the poststart hooks. */
	} else if (sync_expect(sock, SYNC_START, NULL, 0, NULL, NULL, "container init", &e) < 0) {
		_exit(1);
	}
	if (c->spec->n_hooks[HOOK_START_CONTAINER] && !c->exec_mode) {
		_cleanup_free_ char *st = state_hook_json(c->id, STATUS_CREATED, host_pid, c->bundle, c->spec);
		if (hooks_run(c->spec, HOOK_START_CONTAINER, st, &e) < 0)
			goto fail_started;
	}
	if (scp && load_seccomp(sock, &scp, &e) < 0)
		goto fail_started;
	execve(exe, c->proc->args, env);
	err_set(&e, errno, "exec '%s'", exe);
fail_started:
	if (!c->wait_fifo)
		sync_send_error(sock, e);
	else
		fprintf(stderr, "casulo-runtime: %s\n", e && e->msg ? e->msg : "container start failed");
	_exit(127);
fail:
	sync_send_error(sock, e);
	_exit(1);
}

/* The container process: a child of the runtime (CLONE_PARENT), born in
 * the cgroup2 directory cgfd when there is one (CLONE_INTO_CGROUP, which
 * takes no global lock).  Returns the pid, 0 in the child, -errno. */
static pid_t clone_container_process(int cgfd, const char *cgdir, struct err **e)
{
	struct clone_args args = {.flags = CLONE_PARENT};
	pid_t pid;

	if (cgfd >= 0) {
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)cgfd;
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid >= 0 || (errno != ENOSYS && errno != E2BIG))
			return pid < 0 ? err_set(e, errno, "cgroup '%s': clone3 into the cgroup", cgdir) : pid;
	}
	pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
	if (pid < 0)
		return err_set(e, errno, "clone the container process");
	/* Kernels without clone3: the child waits for SYNC_INIT_GO, so moving
	 * it now is soon enough. */
	if (pid > 0 && cgfd >= 0 && cgroup_enter_pid(cgdir, pid, e) < 0) {
		kill(pid, SIGKILL);
		return -err_code(*e);
	}
	return pid;
}

__attribute__((noreturn)) void init_setup_child(struct run_ctx *c)
{
	struct err *e = NULL;
	sigset_t none;
	int cgfd = -1, r;
	pid_t pid;

	/* A foreground runtime holds its signals, and its caller may ignore
	 * some (SIGPIPE): the container starts with the defaults. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++) {
		/* The raw call: glibc's sigaction refuses its own two internal
		 * signals (32, 33), which a caller may have left ignored too. */
		struct {
			void (*handler)(int);
			unsigned long flags;
			void (*restorer)(void);
			uint64_t mask;
		} dfl = {SIG_DFL, 0, NULL, 0};
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
	}
	/* The state lock is the runtime's: a child holding it would block
	 * start and delete until it execs. */
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	/* Cgroups first, while our paths and credentials are the runtime's. */
	if (c->cg &&
	    cgroup_enter_self(c->cg, c->exec_cgroup, c->ns_new[NS_USER] || c->ns_fds[NS_USER] >= 0, &cgfd, &e) < 0)
		goto fail;
	if (ns_enter(c, &e) < 0)
		goto fail;
	pid = clone_container_process(cgfd, c->cg ? c->cg->unified.path : NULL, &e);
	if (pid < 0)
		goto fail;
	if (pid == 0)
		container_process(c);
	r = sync_send(c->child_sock, SYNC_PID, &pid, sizeof(pid), -1);
	_exit(r < 0 ? 1 : 0);
fail:
	sync_send_error(c->child_sock, e);
	_exit(1);
}
