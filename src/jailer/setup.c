/*
 * The jailed child, between fork and exec: cgroup, namespaces, the jail's
 * mounts, pivot_root, limits, the user switch, exec.  It runs as root in a
 * new PID namespace (its parent unshared it), so the program it execs is
 * PID 1 there and everything it starts dies with it.
 *
 * Files come into the jail as bind mounts made in the child's own mount
 * namespace: they work across filesystems (a hard link does not), the
 * host's mount table never sees them, and they vanish with the namespace.
 * On the host the jail holds only the empty files and directories they are
 * mounted on, and /run, the program's one writable directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "jailer/jailer.h"

/* The device nodes a VM needs, made in the jail's own /dev (a tmpfs), so
 * that giving them to uid:gid changes nothing on the host. */
static const struct jail_device {
	const char *path;
	unsigned major, minor;
	mode_t mode;
	bool owned; /* given to uid:gid */
} jail_devices[] = {
    {"/dev/kvm", 10, 232, 0600, true},
    {"/dev/net/tun", 10, 200, 0600, true},
    {"/dev/urandom", 1, 9, 0666, false},
};

/* mkdir -p of path's directories under root (path absolute, inside). */
static int make_parents(const char *root, const char *path, struct err **e)
{
	char buf[PATH_MAX];
	size_t rl = strlen(root);

	if (snprintf(buf, sizeof(buf), "%s%s", root, path) >= (int)sizeof(buf))
		return err_set(e, ENAMETOOLONG, "jail path '%s'", path);
	for (char *p = buf + rl + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return err_set(e, errno, "jail directory '%s': mkdir", buf);
		*p = '/';
	}
	return 0;
}

static int bind_file(const char *root, const struct jail_file *f, bool exec, struct err **e)
{
	char dest[PATH_MAX];
	unsigned long flags =
	    MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | (f->rw ? 0 : MS_RDONLY) | (exec ? 0 : MS_NOEXEC);
	int fd, r;

	if ((r = make_parents(root, f->dest, e)) < 0)
		return r;
	snprintf(dest, sizeof(dest), "%s%s", root, f->dest);
	fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, errno, "jail file '%s' (for '%s'): create", f->dest, f->src);
	close(fd);
	if (mount(f->src, dest, NULL, MS_BIND, NULL) < 0)
		return err_set(e, errno, "file '%s': bind mount on '%s'", f->src, dest);
	if (mount(NULL, dest, NULL, flags, NULL) < 0)
		return err_set(e, errno, "file '%s': remount", f->src);
	return 0;
}

static int make_dev(const char *root, uid_t uid, gid_t gid, struct err **e)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/dev", root);
	if (mkdir(path, 0755) < 0 || mount("dev", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
		return err_set(e, errno, "jail '%s': /dev", path);
	snprintf(path, sizeof(path), "%s/dev/net", root);
	if (mkdir(path, 0755) < 0)
		return err_set(e, errno, "jail '%s': mkdir", path);
	for (size_t i = 0; i < sizeof(jail_devices) / sizeof(jail_devices[0]); i++) {
		const struct jail_device *d = &jail_devices[i];
		snprintf(path, sizeof(path), "%s%s", root, d->path);
		if (mknod(path, S_IFCHR | d->mode, makedev(d->major, d->minor)) < 0 || chmod(path, d->mode) < 0 ||
		    (d->owned && chown(path, uid, gid) < 0))
			return err_set(e, errno, "device '%s' in the jail", d->path);
	}
	snprintf(path, sizeof(path), "%s/dev", root);
	if (mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
		return err_set(e, errno, "jail '%s': remount read-only", path);
	return 0;
}

static int make_root(const struct jail_plan *p, struct err **e)
{
	const char *root = p->root;
	char path[PATH_MAX];
	int r;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return err_set(e, errno, "mount propagation of / (private)");
	if (mount(root, root, NULL, MS_BIND, NULL) < 0)
		return err_set(e, errno, "jail root '%s': bind mount", root);
	for (size_t i = 0; i < p->n_mounts; i++) {
		const struct jail_file *f = &p->mounts[i];
		/* The program and its libraries are mapped executable. */
		bool exec = i >= p->c->n_files;
		if ((r = bind_file(root, f, exec, e)) < 0)
			return r;
	}
	if ((r = make_dev(root, p->c->uid, p->c->gid, e)) < 0)
		return r;
	/* The program reads /proc/self (its fds, its status): a proc of its
	 * own PID namespace, where it sees only itself. */
	snprintf(path, sizeof(path), "%s/proc", root);
	if (mkdir(path, 0555) < 0 || mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return err_set(e, errno, "jail '%s': proc", path);
	/* /run stays writable (sockets, snapshots); the rest is read-only. */
	snprintf(path, sizeof(path), "%s/run", root);
	if (mount(path, path, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return err_set(e, errno, "jail '%s': bind mount", path);
	if (mount(NULL, root, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		return err_set(e, errno, "jail root '%s': remount read-only", root);
	if (chdir(root) < 0)
		return err_set(e, errno, "jail root '%s': chdir", root);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return err_set(e, errno, "jail root '%s': pivot_root", root);
	/* The old root is stacked on the new one: detach it. */
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		return err_set(e, errno, "jail root '%s': detach the old root", root);
	return 0;
}

static int set_limits(const struct jail_config *c, struct err **e)
{
	struct rlimit core = {0, 0};
	rlim_t nofile = c->rlimit_nofile ? c->rlimit_nofile : 4096;
	rlim_t fsize = c->rlimit_fsize ? c->rlimit_fsize : RLIM_INFINITY;
	struct rlimit nf = {nofile, nofile}, fs = {fsize, fsize};

	/* No core dump: it would hold the guest's memory. */
	if (setrlimit(RLIMIT_CORE, &core) < 0)
		return err_set(e, errno, "rlimit core");
	if (setrlimit(RLIMIT_NOFILE, &nf) < 0)
		return err_set(e, errno, "rlimit nofile %llu", (unsigned long long)nofile);
	if (setrlimit(RLIMIT_FSIZE, &fs) < 0)
		return err_set(e, errno, "rlimit fsize %llu", (unsigned long long)fsize);
	return 0;
}

/* Become uid:gid with no capability in any set and no_new_privs. */
static int drop_privileges(uid_t uid, gid_t gid, struct err **e)
{
	cap_t none;

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return err_set(e, errno, "ambient capabilities: clear");
	for (cap_value_t cap = 0; cap <= (cap_value_t)cap_max_bits() - 1; cap++)
		if (cap_drop_bound(cap) < 0 && errno != EINVAL)
			return err_set(e, errno, "capability bounding set: drop %d", (int)cap);
	if (setgroups(0, NULL) < 0)
		return err_set(e, errno, "supplementary groups: clear");
	if (setresgid(gid, gid, gid) < 0)
		return err_set(e, errno, "gid %u: setresgid", (unsigned)gid);
	if (setresuid(uid, uid, uid) < 0)
		return err_set(e, errno, "uid %u: setresuid", (unsigned)uid);
	none = cap_init();
	if (none == NULL || cap_set_proc(none) < 0) {
		int saved = errno;
		cap_free(none);
		return err_set(e, saved, "capabilities: clear");
	}
	cap_free(none);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_set(e, errno, "no_new_privs");
	return 0;
}

int jail_child(const struct jail_plan *p, struct err **e)
{
	const struct jail_config *c = p->c;
	char exec_path[PATH_MAX];
	char *const envp[] = {NULL};
	char **argv;
	size_t argc = 0;
	int unified_fd = -1, r;

	if ((r = cgroup_enter_self(p->cg, true, &unified_fd, e)) < 0)
		return r;
	if (unified_fd >= 0)
		close(unified_fd);
	if (p->netns_fd >= 0 && setns(p->netns_fd, CLONE_NEWNET) < 0)
		return err_set(e, errno, "network namespace '%s': setns", c->netns);
	if (p->netns_fd >= 0)
		close(p->netns_fd);
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		return err_set(e, errno, "unshare mount, IPC and UTS namespaces");
	if (sethostname(c->id, strlen(c->id)) < 0)
		return err_set(e, errno, "hostname '%s'", c->id);
	if ((r = make_root(p, e)) < 0)
		return r;
	if ((r = set_limits(c, e)) < 0)
		return r;
	if ((r = drop_privileges(c->uid, c->gid, e)) < 0)
		return r;
	while (c->argv && c->argv[argc])
		argc++;
	argv = calloc(argc + 2, sizeof(*argv));
	if (argv == NULL)
		return err_set(e, ENOMEM, "arguments");
	snprintf(exec_path, sizeof(exec_path), "/%s", p->exec_name);
	argv[0] = exec_path;
	for (size_t i = 0; i < argc; i++)
		argv[i + 1] = c->argv[i];
	execve(exec_path, argv, envp);
	r = err_set(e, errno, "exec file '%s' (as %s in the jail): execve", c->exec_file, exec_path);
	free(argv);
	return r;
}
