/*
 * The forked side of starting a container process: the setup child (joins
 * and unshares namespaces, forks the container process) and the container
 * process itself (rootfs, hooks, terminal, limits, user, capabilities,
 * seccomp, then execve).  Failures travel to the runtime as SYNC_ERROR.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/sigsafe.h"
#include "oci/cgroups.h"
#include "oci/container.h"
#include "oci/state.h"
#include "oci/sync.h"
#include "oci/util.h"

/* init_clone_alone's clone3 call is written for x86-64; ASan keeps its
 * own view of our stacks, which a child on a stack of its own in our
 * memory would confuse. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define ALONE_CLONE 1
#else
#define ALONE_CLONE 0
#endif

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
	bool have_hooks = s->n_hooks[HOOK_PRESTART] || s->n_hooks[HOOK_CREATE_RUNTIME], cwd_later = true;

	if (!c->exec_mode) {
		/* A mount namespace, new or joined, gets the rootfs set up in it
		 * (runc); without one, nothing is mounted in the host's and the
		 * process is only chrooted. */
		bool mntns = s->ns[NS_MOUNT].present;
		if (mntns && (r = rootfs_setup(c, e)) < 0)
			return r;
		log_debug("container '%s': mounts done in '%s' (%zu)", c->id, c->rootfs, s->n_mounts);
		if (have_hooks) {
			if ((r = sync_send(sock, SYNC_HOOKS, NULL, 0, -1)) < 0)
				return err_set(e, -r, "hooks: ask runtime");
			if ((r = sync_expect(sock, SYNC_HOOKS_DONE, NULL, 0, NULL, NULL, "hooks", e)) < 0)
				return r;
		}
		if (s->n_hooks[HOOK_CREATE_CONTAINER]) {
			_cleanup_free_ char *st = state_hook_json(c->id, STATUS_CREATING, host_pid, c->bundle, s);
			/* runc runs them from the container's rootfs. */
			if (chdir(c->rootfs) < 0)
				return err_set(e, errno, "rootfs '%s': chdir for the createContainer hooks", c->rootfs);
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
	/* With privilege first (runc's order): a cwd the user reaches only
	 * through its own rights (a volume chowned to it, root squashed) is
	 * tried again as the user, below. */
	if (chdir(p->cwd) == 0)
		cwd_later = false;
	else if (errno != EACCES && errno != EPERM)
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
	if (cwd_later && chdir(p->cwd) < 0)
		return err_set(e, errno, "process.cwd '%s': chdir as uid %u", p->cwd, p->user.uid);
	if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_set(e, errno, "process.noNewPrivileges: prctl");
	/* With no_new_privs the filter goes on once the process is set up,
	 * before it reports ready and waits for start: the startContainer
	 * hooks run inside it, as runc runs them (container_process); a
	 * listener must reach the runtime, so a filter with SCMP_ACT_NOTIFY is
	 * loaded now. */
	if (*scp && s->seccomp->uses_notify && (r = load_seccomp(sock, scp, e)) < 0)
		return r;
	umask(p->user.umask);
	return 0;
}

/* The bind sources the runtime opened for us (rootfs_send_bind_sources),
 * until the first other message, which is left for the caller. */
static int receive_mount_sources(struct run_ctx *c, struct err **e)
{
	for (;;) {
		uint32_t type, idx = 0;
		char buf[16];
		size_t len = 0;
		int fd = -1, r;
		struct pollfd p = {c->child_sock, POLLIN, 0};

		while ((r = poll(&p, 1, -1)) < 0 && errno == EINTR)
			;
		/* Peek at the type without taking a message meant for later. */
		if (recv(c->child_sock, &type, sizeof(type), MSG_PEEK) != sizeof(type) || type != SYNC_MOUNT_SOURCE)
			return 0;
		if ((r = sync_recv(c->child_sock, &type, buf, sizeof(buf), &len, &fd)) < 0)
			return err_set(e, -r, "mount sources: receive");
		if (len >= sizeof(idx))
			memcpy(&idx, buf, sizeof(idx));
		if (fd < 0 || idx >= c->spec->n_mounts)
			return err_setx(e, EPROTO, "mount sources: bad message");
		if (c->bind_src_fds == NULL) {
			c->bind_src_fds = malloc(c->spec->n_mounts * sizeof(int));
			if (c->bind_src_fds == NULL)
				return err_set(e, ENOMEM, "mount sources");
			for (size_t i = 0; i < c->spec->n_mounts; i++)
				c->bind_src_fds[i] = -1;
		}
		c->bind_src_fds[idx] = fd;
	}
}

/* A container process that set up alone for too long ends with a status
 * of its own, which the runtime reads as a timeout. */
static void alone_timeout(int sig)
{
	(void)sig;
	_exit(ALONE_TIMEOUT_STATUS);
}

/* Nobody waits on a container process setting up alone with a bound: this
 * timer is it.  A POSIX timer, which execve deletes (an alarm would
 * outlive it, and a seccomp filter could refuse to cancel one); with a
 * handler, since the init of a new PID namespace ignores a signal it has
 * none for. */
static void alone_arm_timeout(void)
{
	struct sigaction sa = {.sa_handler = alone_timeout};
	struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM};
	struct itimerspec when = {.it_value = {.tv_sec = CHILD_STEP_TIMEOUT_MS / 1000}};
	timer_t t;

	sigaction(SIGALRM, &sa, NULL);
	if (timer_create(CLOCK_MONOTONIC, &ev, &t) == 0)
		(void)timer_settime(t, 0, &when, NULL);
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

	if (c->alone) {
		host_pid = c->alone_pid;
		alone_arm_timeout();
	} else {
		if (receive_mount_sources(c, &e) < 0)
			goto fail;
		if (sync_expect(sock, SYNC_INIT_GO, buf, sizeof(buf), &len, NULL, "container init", &e) < 0)
			_exit(1);
		if (len == sizeof(host_pid))
			memcpy(&host_pid, buf, sizeof(host_pid));
	}
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
	if (scp && load_seccomp(sock, &scp, &e) < 0)
		goto fail;
	if (c->spec->seccomp)
		sync_use_read_write(true);
	if (c->alone) {
		/* run: set up, and started at once. */
	} else if ((r = sync_send(sock, SYNC_READY, NULL, 0, -1)) < 0) {
		err_set(&e, -r, "container init: report ready");
		goto fail;
	} else if (c->wait_fifo) {
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
	log_debug("container '%s': exec '%s'", c->id, exe);
	if (c->alone)
		c->alone_execing = true;
	execve(exe, c->proc->args, env);
	c->alone_execing = false;
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
	if (pid > 0 && cgfd >= 0 && cgroup_enter_dir(cgdir, pid, e) < 0) {
		kill(pid, SIGKILL);
		return -err_code(*e);
	}
	return pid;
}

/* One debug line: each namespace new, joined, or the runtime's. */
static void log_namespaces(const struct run_ctx *c)
{
	char buf[256];
	size_t n = 0;

	buf[0] = '\0';
	for (int k = 0; k < NS_KIND_MAX; k++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - MIN(n, sizeof(buf)), "%s%s=%s", n ? " " : "",
				      oci_ns_info[k].spec_name,
				      c->ns_new[k]	  ? "new"
				      : c->ns_fds[k] >= 0 ? "joined"
							  : "host");
	log_debug("container '%s': namespaces entered: %s", c->id, buf);
}

/* What each child of the runtime does first: the container starts with
 * default signal dispositions and an empty mask, and without the state
 * lock. */
static void child_reset(struct run_ctx *c)
{
	sigset_t none;

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
	if (c->record && c->record->record_fd >= 0)
		close(c->record->record_fd);
}

__attribute__((noreturn)) void init_setup_child(struct run_ctx *c)
{
	struct err *e = NULL;
	int cgfd = -1, r;
	pid_t pid;

	child_reset(c);
	/* Cgroups first, while our paths and credentials are the runtime's. */
	if (c->cg && cgroup_enter_self(c->cg, c->ns_new[NS_USER] || c->ns_fds[NS_USER] >= 0, &cgfd, &e) < 0) {
		/* exec: its cgroups (exec --cgroup's sub-cgroups) named as runc does. */
		if (c->exec_mode)
			err_wrap(&e, "error adding pid %d to cgroups", (int)getpid());
		goto fail;
	}
	if (c->cg)
		log_debug("container '%s': setup child %d joined the cgroups (%s)", c->id, (int)getpid(), c->cg->rel);
	if (ns_enter(c, &e) < 0)
		goto fail;
	if (log_get_level() >= LOG_DEBUG)
		log_namespaces(c);
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

/* Whether one clone from the runtime can make the container process, and
 * *flags, the namespaces it makes: every new one but user (its id maps
 * need the runtime between unshare and the rest), cgroup (made once the
 * process sits in its cgroups) and time (its offsets are written before
 * a process enters it).  Not when something needs the setup child: a
 * namespace joined by path (setns of a pid or time namespace only moves
 * children), a user or time namespace, exec. */
bool init_single_clone(const struct run_ctx *c, int *flags)
{
	*flags = 0;
	if (c->exec_mode || c->ns_new[NS_USER] || c->ns_new[NS_TIME])
		return false;
	for (int k = 0; k < NS_KIND_MAX; k++) {
		if (c->ns_fds[k] >= 0)
			return false;
		if (k != NS_CGROUP && c->ns_new[k])
			*flags |= oci_ns_info[k].clone_flag;
	}
	return true;
}

/* The container process made by one clone from the runtime itself, its new
 * namespaces made by that clone (init_single_clone): it joins its v1
 * cgroups (writing 0 spares the kernel's global threadgroup lock), and its
 * cgroup2 one when the clone could not place it there. */
__attribute__((noreturn)) void init_container_child(struct run_ctx *c, bool in_unified)
{
	struct err *e = NULL;
	int cgfd = -1;

	if (c->alone && c->record) {
		/* The runtime sleeps until our execve: our pid goes on record
		 * now, where a delete finds it should the runtime die meanwhile. */
		c->record->pid = c->alone_pid;
		c->record->start_time = proc_start_time(c->alone_pid);
		if (state_record(c->record, NULL) < 0)
			log_debug("container '%s': could not record pid %d", c->id, (int)c->alone_pid);
	}
	child_reset(c);
	if (c->cg && cgroup_enter_self(c->cg, !in_unified, &cgfd, &e) < 0) {
		sync_send_error(c->child_sock, e);
		_exit(1);
	}
	if (cgfd >= 0)
		close(cgfd);
	if (c->cg)
		log_debug("container '%s': container process joined the cgroups (%s)", c->id, c->cg->rel);
	if (log_get_level() >= LOG_DEBUG)
		log_namespaces(c);
	container_process(c);
}

bool init_alone_ok(const struct run_ctx *c)
{
	const struct oci_spec *s = c->spec;

#if !ALONE_CLONE
	(void)s;
	return false;
#else
	/* Nothing the runtime must do while the process sets up: no hooks
	 * (they run in the runtime or are waited for), no terminal or seccomp
	 * listener to forward, no network devices or bind sources to hand,
	 * no wait for `start` (create).  (An OOM score it writes stays its
	 * own: the kernel copies a score to the other processes sharing the
	 * writer's memory, unless the writer is a vfork child, as it is.) */
	return !c->wait_fifo && !c->exec_mode && !c->console_needed && !s->n_hooks[HOOK_PRESTART] &&
	       !s->n_hooks[HOOK_CREATE_RUNTIME] && !s->n_hooks[HOOK_CREATE_CONTAINER] &&
	       !s->n_hooks[HOOK_START_CONTAINER] && !(s->seccomp && s->seccomp->uses_notify) && s->n_net_devices == 0 &&
	       !rootfs_needs_bind_sources(c);
#endif
}

#if ALONE_CLONE
struct alone_start {
	struct run_ctx *c;
	bool in_unified;
};

static void alone_entry(void *arg)
{
	struct alone_start *a = arg;

	close(a->c->sock); /* the runtime's end (only the descriptor: the memory is the runtime's) */
	init_container_child(a->c, a->in_unified);
}

/* clone3 whose child runs fn(arg) on the stack the args give, never
 * returning (the libc has no clone3 wrapper: a child sharing our memory
 * cannot return through our stack frames).  rax, rcx and r11 are the
 * registers the syscall does not keep; r12 and r13 carry fn and arg. */
static long clone3_run(struct clone_args *args, void (*fn)(void *), void *arg)
{
	register void (*r12)(void *) __asm__("r12") = fn;
	register void *r13 __asm__("r13") = arg;
	long ret;

	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "mov %%r13, %%rdi\n\t"
			 "call *%%r12\n\t"
			 "ud2\n"
			 "1:"
			 : "=a"(ret)
			 : "0"((long)SYS_clone3), "D"(args), "S"(sizeof(*args)), "r"(r12), "r"(r13)
			 : "rcx", "r11", "memory");
	return ret;
}
#endif

#if ALONE_CLONE
/*
 * We resumed before the child's execve: it exited.  At one of its own
 * _exit()s our shared memory is whole.  Killed by a signal, or ended by
 * its setup bound's handler, it may have stopped anywhere, inside malloc
 * with the heap's lock held among others: nothing of the heap or stdio is
 * safe to use any more, and a lock it held would hang us.  Then we only
 * say so with write() and end; the state left is what `delete --force`
 * removes, as after a runtime killed in the middle of a create.
 */
static void alone_check_death(struct run_ctx *c, pid_t pid)
{
	siginfo_t si = {0};
	char msg[512];
	size_t n = 0;

	/* It is past its memory's release, not yet a zombie maybe: wait
	 * for it, without reaping (the caller does). */
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	if (si.si_pid != pid || (si.si_code == CLD_EXITED && si.si_status != ALONE_TIMEOUT_STATUS))
		return;
	sigsafe_append(msg, sizeof(msg), &n, "casulo-runtime: container '");
	sigsafe_append(msg, sizeof(msg), &n, c->id);
	if (si.si_code == CLD_EXITED) {
		sigsafe_append(msg, sizeof(msg), &n, "': its process did not finish its setup within ");
		sigsafe_append_long(msg, sizeof(msg), &n, CHILD_STEP_TIMEOUT_MS / 1000);
		sigsafe_append(msg, sizeof(msg), &n, " s");
	} else {
		sigsafe_append(msg, sizeof(msg), &n, "': its process was killed by signal ");
		sigsafe_append_long(msg, sizeof(msg), &n, si.si_status);
		sigsafe_append(msg, sizeof(msg), &n, " during its setup");
	}
	sigsafe_append(msg, sizeof(msg), &n, "; 'casulo-runtime delete --force ");
	sigsafe_append(msg, sizeof(msg), &n, c->id);
	sigsafe_append(msg, sizeof(msg), &n, "' removes what is left\n");
	(void)!write(STDERR_FILENO, msg, n);
	_exit(1);
}

#endif

pid_t init_clone_alone(struct run_ctx *c, struct clone_args *args, bool in_unified)
{
#if ALONE_CLONE
	/* The child's own stack, a guard page below it: made once and kept
	 * for the next clone (the child is done with it when we resume), as
	 * unmapping it would cost a TLB shootdown, dear on a virtualized
	 * host (about 0.3 ms of a run here). */
	static char *stack;
	const size_t stack_size = 2 << 20, guard = 4096;
	struct alone_start a = {c, in_unified};
	int dumpable;
	long pid;

	if (stack == NULL) {
		char *m = mmap(NULL, stack_size + guard, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
		if (m == MAP_FAILED)
			return -errno;
		if (mprotect(m, guard, PROT_NONE) < 0) {
			pid = -errno;
			munmap(m, stack_size + guard);
			return (pid_t)pid;
		}
		stack = m;
	}
	dumpable = prctl(PR_GET_DUMPABLE);
	c->alone_pid = 0;
	c->alone_execing = false;
	args->flags |= CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID;
	args->parent_tid = (uint64_t)(uintptr_t)&c->alone_pid;
	args->stack = (uint64_t)(uintptr_t)(stack + guard);
	args->stack_size = stack_size;
	pid = clone3_run(args, alone_entry, &a);
	if (pid > 0 && !c->alone_execing)
		alone_check_death(c, (pid_t)pid);
	/* A change of user in the child marked the memory not dumpable. */
	if (dumpable > 0 && prctl(PR_GET_DUMPABLE) == 0)
		(void)prctl(PR_SET_DUMPABLE, 1);
	/* The child may have loaded a seccomp filter and switched the sync
	 * socket to plain reads and writes: in our shared memory. */
	sync_use_read_write(false);
	return (pid_t)pid;
#else
	(void)c, (void)args, (void)in_unified;
	return -ENOSYS;
#endif
}
