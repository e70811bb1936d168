/*
 * casulo-vmm --selinux-label (sVirt): see svirt.h.
 *
 * The VMM cannot put its disks' labels back once it runs confined (its
 * domain may not relabel), so the process that chose the label stays as a
 * small parent: it labels, starts the VMM again in the chosen context and
 * waits for it, then relabels back.
 */
#include "vmm/svirt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <selinux/context.h>
#include <selinux/selinux.h>

#include "common/log.h"
#include "common/macro.h"
#include "security/selinux.h"
#include "vmm/snapshot/snapshot.h"

#define PROG "casulo-vmm"
#define LOCK_PATH "/run/casulo/selinux-mcs.lock"

int vmm_svirt_parse(const char *arg, struct err **e)
{
	if (strcmp(arg, "dynamic") == 0 || sel_context_well_formed(arg))
		return 0;
	return err_setx(e, EINVAL, "--selinux-label '%s': expected dynamic or USER:ROLE:TYPE:LEVEL", arg);
}

int vmm_svirt_is_child(struct err **e)
{
	const char *want = getenv(VMM_SVIRT_ENV);
	char *now = NULL;
	int same;

	if (want == NULL)
		return 0;
	if (getcon(&now) < 0)
		return err_set(e, errno, "--selinux-label: read this process's context");
	same = strcmp(now, want) == 0;
	if (!same)
		err_setx(e, EPERM, "--selinux-label: the VMM runs as '%s', not as '%s' chosen for it", now, want);
	freecon(now);
	unsetenv(VMM_SVIRT_ENV);
	return same ? 1 : -1;
}

static unsigned random_unsigned(void)
{
	unsigned v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (unsigned)rand();
	return v;
}

/* The process's and the images' contexts: a fresh pair (dynamic) or the
 * level of the label given.  With dynamic, *lock_fd is held until the VMM
 * runs in its pair. */
static int choose_contexts(const char *label, char **proc_ctx, char **image_ctx, int *lock_fd, struct err **e)
{
	char *domain = NULL, *image = NULL;
	int r = -1;

	if (sel_virt_contexts(&domain, &image, e) < 0)
		return -1;
	if (strcmp(label, "dynamic") == 0) {
		struct sel_pair *used = NULL, pair;
		size_t nused = 0;

		*lock_fd = sel_pair_lock(LOCK_PATH, e);
		if (*lock_fd < 0)
			goto out;
		if (sel_pairs_in_use("/proc", &used, &nused, e) < 0) {
			free(used);
			goto out;
		}
		r = sel_pair_pick(used, nused, random_unsigned, &pair);
		free(used);
		if (r < 0) {
			r = err_set(e, -r, "--selinux-label dynamic: no free category pair");
			goto out;
		}
		r = -1;
		if (sel_context_with_pair(domain, &pair, proc_ctx, e) < 0 ||
		    sel_context_with_pair(image, &pair, image_ctx, e) < 0)
			goto out;
	} else {
		context_t c = NULL;
		const char *level;

		if (sel_context_check("--selinux-label", label, e) < 0)
			goto out;
		/* The images take the process's level: its categories. */
		if ((c = context_new(label)) == NULL || (level = context_range_get(c)) == NULL) {
			if (c)
				context_free(c);
			err_setx(e, EINVAL, "--selinux-label '%s': no level", label);
			goto out;
		}
		r = sel_context_with_level(image, level, image_ctx, e);
		context_free(c);
		if (r < 0)
			goto out;
		r = -1;
		if ((*proc_ctx = strdup(label)) == NULL) {
			err_set(e, ENOMEM, "--selinux-label");
			goto out;
		}
	}
	r = 0;
out:
	free(domain);
	free(image);
	return r;
}

/* Fork and exec the VMM again in proc_ctx; returns its pid once the exec
 * happened (the pipe closed on exec) or -1 with *e.  Signals are blocked
 * in the caller, unblocked in the child before exec. */
static pid_t start_child(const char *proc_ctx, char **argv, const sigset_t *old_mask, struct err **e)
{
	int pfd[2], child_errno = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_set(e, errno, "--selinux-label: pipe");
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return err_set(e, errno, "--selinux-label: fork");
	}
	if (pid == 0) {
		int code;

		close(pfd[0]);
		sigprocmask(SIG_SETMASK, old_mask, NULL);
		if (setenv(VMM_SVIRT_ENV, proc_ctx, 1) < 0 || setexeccon(proc_ctx) < 0) {
			code = errno;
		} else {
			execv("/proc/self/exe", argv);
			code = errno;
		}
		(void)!write(pfd[1], &code, sizeof(code));
		_exit(127);
	}
	close(pfd[1]);
	do
		n = read(pfd[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n > 0) {
		waitpid(pid, NULL, 0);
		return err_set(e, child_errno ? child_errno : EIO, "--selinux-label: start the VMM as '%s'", proc_ctx);
	}
	return pid;
}

/* Forward the stop signals to the child until it ends: its exit status. */
static int wait_child(pid_t pid)
{
	sigset_t set;
	int status;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		pid_t w;

		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			/* A terminal's ^C reaches the child itself already. */
			if (!(sig == SIGINT && si.si_code == SI_KERNEL))
				kill(pid, sig);
			continue;
		}
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static int label_disks(struct sel_relabel *labels, const struct vm_config *cfg, const char *image_ctx, struct err **e)
{
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		char what[600];

		snprintf(what, sizeof(what), "--selinux-label: disk '%s'", cfg->disks[i].path);
		if (sel_relabel_file(labels, what, cfg->disks[i].path, image_ctx, e) < 0)
			return -1;
	}
	return 0;
}

/* A snapshot's files are only read (its memory is mapped private): they
 * get the content context every VM may read, at s0, so that one snapshot
 * restores into several labelled VMs at once.  Once a VMM ran they keep
 * it, as libvirt leaves its read-only shared images: a VM that ends must
 * not take it from another one that is starting. */
static int label_snapshot(struct sel_relabel *labels, const char *dir, struct err **e)
{
	static const char *const files[] = {SNAP_STATE_FILE, SNAP_MEMORY_FILE};
	char *content = NULL;
	int r = 0;

	if (sel_virt_content_context(&content, e) < 0)
		return err_wrap(e, "--selinux-label: snapshot '%s'", dir);
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(files); i++) {
		char path[PATH_MAX], what[PATH_MAX + 64];
		char *now = NULL;

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		/* Without DIR/memory the snapshot's memory is a file of its
		 * own (backend=file,shared=on): the restore says so if not. */
		if (strcmp(files[i], SNAP_MEMORY_FILE) == 0 && access(path, F_OK) < 0 && errno == ENOENT)
			continue;
		if (getfilecon(path, &now) >= 0 && strcmp(now, content) == 0) {
			freecon(now);
			continue;
		}
		if (now)
			freecon(now);
		snprintf(what, sizeof(what), "--selinux-label: snapshot file '%s'", path);
		r = sel_relabel_file(labels, what, path, content, e);
	}
	free(content);
	return r;
}

int vmm_svirt_run(const char *label, const struct vm_config *cfg, const char *restore_dir, bool incoming, char **argv)
{
	struct vm_config restored = {0};
	struct sel_relabel snapshot_labels = {0};
	const struct vm_config *disks;
	char *proc_ctx = NULL, *image_ctx = NULL;
	struct sel_relabel labels = {0};
	struct err *e = NULL;
	sigset_t stop, old_mask;
	int lock_fd = -1, status = 1;
	pid_t pid = -1;

	if (!sel_enabled()) {
		fprintf(stderr, PROG ": --selinux-label: SELinux is not enabled on this host\n");
		return 1;
	}
	/* Blocked from before the first label changes until the VMM runs: a
	 * SIGTERM meanwhile waits, and goes to the VMM or ends a failed start
	 * with every label put back. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	sigaddset(&stop, SIGCHLD);
	sigprocmask(SIG_BLOCK, &stop, &old_mask);
	if (choose_contexts(label, &proc_ctx, &image_ctx, &lock_fd, &e) < 0)
		goto fail;
	/* A restore's disks are its snapshot's, or all of them replaced by
	 * the command line's (vm_snapshot_config_from_json); an incoming
	 * VM's the same, but its source's are known only once they come. */
	if (incoming && cfg->ndisks == 0)
		log_msg(LOG_WARN,
			"--selinux-label with --incoming and no --disk: disks the source names are opened with the "
			"labels they have (give them with --disk to label them with the VM's pair)");
	if (restore_dir && cfg->ndisks == 0 && vm_snapshot_read_config(restore_dir, &restored, &e) < 0)
		goto fail;
	disks = cfg->ndisks ? cfg : &restored;
	if (label_disks(&labels, disks, image_ctx, &e) < 0)
		goto fail;
	if (restore_dir && label_snapshot(&snapshot_labels, restore_dir, &e) < 0)
		goto fail;
	log_msg(LOG_INFO, "--selinux-label: the VMM runs as '%s', its %u disk(s) are '%s'", proc_ctx, disks->ndisks,
		image_ctx);
	pid = start_child(proc_ctx, argv, &old_mask, &e);
	/* The VMM runs in its pair now: /proc shows it to the next start. */
	if (lock_fd >= 0)
		close(lock_fd);
	lock_fd = -1;
	if (pid < 0)
		goto fail;
	sel_relabel_keep(&snapshot_labels);
	status = wait_child(pid);
	goto out;
fail:
	err_print(e, PROG, stderr);
	err_free(&e);
	status = 1;
out:
	if (lock_fd >= 0)
		close(lock_fd);
	if (sel_relabel_restore(&labels) + sel_relabel_restore(&snapshot_labels) > 0 && status == 0)
		status = 1;
	vm_config_free(&restored);
	free(proc_ctx);
	free(image_ctx);
	return status;
}
