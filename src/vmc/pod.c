/*
 * One VM per pod (docs/vm-containers.md, "Pods"): a CRI sandbox in VM
 * mode boots the pod's VM; each application container of the pod joins
 * it.  Its files are bound into the sandbox VMM's share (a tmpfs in the
 * VMM's own mount namespace) under c/<id>/ while the VM runs, and the
 * sandbox's agent creates and runs it by id.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "oci/state.h"
#include "oci/util.h"
#include "vmc/internal.h"

int vmc_pod_find(const struct oci_global *g, const char *sandbox, const char *id, struct vmc_pod *pod)
{
	struct vmc_record rec;
	char *dir = NULL;

	memset(pod, 0, sizeof(*pod));
	if (sandbox == NULL || strcmp(sandbox, id) == 0 || !vmc_is_vm(g, sandbox) ||
	    state_dir_path(g->root, sandbox, &dir, NULL) < 0)
		return 0;
	if (vmc_record_load(dir, &rec, NULL) < 0) {
		free(dir);
		return 0;
	}
	/* A sandbox whose VM runs, not itself a pod's container. */
	if (rec.sandbox == NULL && rec.vmm_pid > 0 && rec.guest_pid > 0 && proc_alive(rec.vmm_pid, rec.vmm_start)) {
		pod->dir = dir;
		pod->vmm_pid = rec.vmm_pid;
		pod->guest_pid = rec.guest_pid;
		snprintf(pod->sandbox, sizeof(pod->sandbox), "%s", sandbox);
		dir = NULL;
	}
	vmc_record_clear(&rec);
	free(dir);
	return pod->dir != NULL;
}

void vmc_pod_free(struct vmc_pod *pod)
{
	free(pod->dir);
	pod->dir = NULL;
}

int vmc_agent_dir(const struct oci_global *g, const char *state_dir, char **dir, struct err **e)
{
	struct vmc_record rec;
	int r = 0;

	*dir = NULL;
	if (vmc_record_load(state_dir, &rec, NULL) == 0 && rec.sandbox)
		r = state_dir_path(g->root, rec.sandbox, dir, e);
	else if ((*dir = strdup(state_dir)) == NULL)
		r = err_set(e, ENOMEM, "state '%s'", state_dir);
	vmc_record_clear(&rec);
	return r;
}

/* In a child: enter the VMM's mount namespace (a forked child: setns
 * would move the caller). */
static int enter_vmm_mounts(pid_t vmm, char *msg, size_t size)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)vmm);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNS) < 0) {
		snprintf(msg, size, "the VM's mount namespace (%s): %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* The child's work: each share cloned here, then attached in the VMM's
 * namespace below <sandbox>/shared. */
static const char *child_share(const struct vmc_pod *pod, const void *arg, char *msg, size_t size)
{
	const struct vmc_plan *plan = arg;
	int *trees = calloc(plan->n_shares ? plan->n_shares : 1, sizeof(int)); /* the child's: goes with it */

	if (trees == NULL)
		return "out of memory";
	for (size_t i = 0; i < plan->n_shares; i++) {
		const struct vmc_share *s = &plan->shares[i];
		trees[i] = open_tree(AT_FDCWD, s->host,
				     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (s->recursive ? AT_RECURSIVE : 0));
		if (trees[i] < 0) {
			snprintf(msg, size, "bind '%s': open_tree: %s", s->host, strerror(errno));
			return msg;
		}
	}
	if (enter_vmm_mounts(pod->vmm_pid, msg, size) < 0)
		return msg;
	for (size_t i = 0; i < plan->n_shares; i++) {
		const struct vmc_share *s = &plan->shares[i];
		char target[PATH_MAX];
		char *slash;

		if ((size_t)snprintf(target, sizeof(target), "%s/%s/%s", pod->dir, VMC_SHARED, s->guest) >=
		    sizeof(target)) {
			snprintf(msg, size, "'%s': path too long", s->guest);
			return msg;
		}
		slash = strrchr(target, '/');
		*slash = '\0';
		if (mkdir_p(target, 0755) < 0) {
			snprintf(msg, size, "mkdir '%s': %s", target, strerror(errno));
			return msg;
		}
		*slash = '/';
		if (vmc_share_place(s, target, trees[i], msg, size))
			return msg;
	}
	return NULL;
}

/* Fork fn's child and wait for it; its message (if any) is the error. */
static int in_child(const char *(*fn)(const struct vmc_pod *, const void *, char *, size_t), const struct vmc_pod *pod,
		    const void *arg, const char *what, struct err **e)
{
	char msg[1024];
	int p[2], ws = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(e, errno, "%s: pipe", what);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return err_set(e, errno, "%s: fork", what);
	}
	if (pid == 0) {
		const char *fail;
		close(p[0]);
		fail = fn(pod, arg, msg, sizeof(msg));
		if (fail && write(p[1], fail, strlen(fail)) < 0)
			_exit(2);
		_exit(fail ? 1 : 0);
	}
	close(p[1]);
	n = read(p[0], msg, sizeof(msg) - 1);
	close(p[0]);
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (n > 0) {
		msg[n] = '\0';
		return err_setx(e, EIO, "%s: %s", what, msg);
	}
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
		return err_setx(e, EIO, "%s: the helper failed", what);
	return 0;
}

int vmc_pod_share(const struct vmc_pod *pod, const struct vmc_plan *plan, struct err **e)
{
	return in_child(child_share, pod, plan, "the container's files in its pod's VM", e);
}

/* The container's binds, deepest first (lazily: the guest may still hold
 * a file open), then its directory in the share. */
static const char *child_unshare(const struct vmc_pod *pod, const void *arg, char *msg, size_t size)
{
	const char *id = arg;
	char dir[PATH_MAX], path[PATH_MAX + 300];
	DIR *d;
	struct dirent *de;

	if (enter_vmm_mounts(pod->vmm_pid, msg, size) < 0)
		return msg;
	snprintf(dir, sizeof(dir), "%s/%s/c/%s/mnt", pod->dir, VMC_SHARED, id);
	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			(void)umount2(path, MNT_DETACH);
			if (unlink(path) < 0)
				(void)rmdir(path);
		}
		closedir(d);
		(void)rmdir(dir);
	}
	snprintf(path, sizeof(path), "%s/%s/c/%s/rootfs", pod->dir, VMC_SHARED, id);
	(void)umount2(path, MNT_DETACH);
	(void)rmdir(path);
	snprintf(path, sizeof(path), "%s/%s/c/%s", pod->dir, VMC_SHARED, id);
	(void)rmdir(path);
	return NULL;
}

void vmc_pod_unshare(const struct vmc_pod *pod, const char *id)
{
	struct err *e = NULL;

	if (in_child(child_unshare, pod, id, "unshare", &e) < 0) {
		log_debug("container '%s': %s", id, e->msg);
		err_free(&e);
	}
}
