/*
 * The jailer's parent side: check the input, make the per-VM directory and
 * the cgroup, fork the child (setup.c) into a new PID namespace, report
 * its setup errors, then reap it and remove what was made.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "common/file.h"
#include "jailer/jailer.h"

int jail_check_id(const char *id, struct err **e)
{
	size_t len = strlen(id);

	if (len == 0 || len > JAIL_ID_MAX)
		return err_set(e, 0, "jail id '%s': must be 1 to %d characters", id, JAIL_ID_MAX);
	for (size_t i = 0; i < len; i++) {
		char ch = id[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      ch == '_'))
			return err_set(e, 0, "jail id '%s': only letters, digits, '-' and '_' are allowed", id);
	}
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

char *jail_dir(const char *chroot_base, const char *exec_file, const char *id)
{
	char *p;
	if (asprintf(&p, "%s/%s/%s", chroot_base, base_name(exec_file), id) < 0)
		return NULL;
	return p;
}

static int jail_cgroup(const char *parent, const char *id, struct cgroup **cg, struct err **e)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/%s/%s", parent, id);
	return cgroup_resolve(path, cg, e);
}

/* mkdir -p, 0755. */
static int make_dirs(char *path)
{
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		int r = mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0;
		*p = saved;
		if (r < 0 || saved == '\0')
			return r;
	}
}

/* Everything the child binds, in order: the given files, the program,
 * then its libraries. */
static int plan_mounts(const struct jail_config *c, char **libs, size_t n_libs, struct jail_file **ret, size_t *n,
		       struct err **e)
{
	size_t count = c->n_files + 1 + n_libs;
	struct jail_file *m = calloc(count, sizeof(*m));

	if (m == NULL)
		return err_set(e, ENOMEM, "jail files");
	for (size_t i = 0; i < c->n_files; i++)
		m[i] = c->files[i];
	m[c->n_files].src = (char *)c->exec_file;
	m[c->n_files].dest = NULL; /* set by the caller */
	for (size_t i = 0; i < n_libs; i++) {
		m[c->n_files + 1 + i].src = libs[i];
		m[c->n_files + 1 + i].dest = libs[i];
	}
	*ret = m;
	*n = count;
	return 0;
}

/* Every check that needs nothing made: files, names, uid, netns. */
static int check_input(const struct jail_config *c, int *netns_fd, struct err **e)
{
	struct stat st;
	int r;

	if ((r = jail_check_id(c->id, e)) < 0)
		return r;
	if (c->chroot_base[0] != '/')
		return err_set(e, 0, "chroot base '%s': must be an absolute path", c->chroot_base);
	/* A missing one is made (and kept, as <base>/<exec name> is). */
	if (stat(c->chroot_base, &st) < 0) {
		if (errno != ENOENT)
			return err_set(e, errno, "chroot base '%s'", c->chroot_base);
	} else if (!S_ISDIR(st.st_mode)) {
		return err_set(e, ENOTDIR, "chroot base '%s'", c->chroot_base);
	}
	if (c->parent_cgroup[0] == '\0' || strstr(c->parent_cgroup, ".."))
		return err_set(e, 0, "parent cgroup '%s': must be a path without '..'", c->parent_cgroup);
	if (stat(c->exec_file, &st) < 0)
		return err_set(e, errno, "exec file '%s'", c->exec_file);
	if (!S_ISREG(st.st_mode) || access(c->exec_file, X_OK) < 0)
		return err_set(e, EACCES, "exec file '%s': not an executable file", c->exec_file);
	if (c->uid == (uid_t)-1 || c->gid == (gid_t)-1)
		return err_set(e, 0, "uid/gid %u:%u: -1 is not an id", (unsigned)c->uid, (unsigned)c->gid);
	for (size_t i = 0; i < c->n_files; i++) {
		const struct jail_file *f = &c->files[i];
		if (stat(f->src, &st) < 0)
			return err_set(e, errno, "file '%s'", f->src);
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
			return err_set(e, 0, "file '%s': not a regular file or block device", f->src);
		if (strcmp(f->dest, "/run") == 0 || strcmp(f->dest, "/dev") == 0 || strcmp(f->dest, "/proc") == 0 ||
		    strcmp(f->dest + 1, base_name(c->exec_file)) == 0)
			return err_set(e, 0, "file '%s': its name is taken in the jail (%s)", f->src, f->dest);
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->files[j].dest, f->dest) == 0)
				return err_set(e, 0, "files '%s' and '%s': both would be %s in the jail",
					       c->files[j].src, f->src, f->dest);
	}
	*netns_fd = -1;
	if (c->netns) {
		*netns_fd = open(c->netns, O_RDONLY | O_CLOEXEC);
		if (*netns_fd < 0)
			return err_set(e, errno, "network namespace '%s'", c->netns);
	}
	return 0;
}

static int set_resources(const struct jail_config *c, struct cgroup *cg, struct err **e)
{
	int r;

	if ((r = cgroup_check(cg, &c->limits, e)) < 0)
		return r;
	return cgroup_set(cg, &c->limits, e);
}

static volatile sig_atomic_t child_pid, pending_signal;

/* Installed before the fork: a signal that comes before the child exists
 * is kept and sent once it does (the child's copy does nothing: its
 * child_pid is 0, and exec resets the handler). */
static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
	else
		pending_signal = sig;
}

static void forward_signals(void)
{
	struct sigaction sa = {.sa_handler = forward_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
}

static int wait_child(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Fork the child in a new PID namespace; its setup error, if any, comes
 * back through a close-on-exec pipe (EOF without a message: it exec'd). */
static int start_child(const struct jail_plan *p, pid_t *ret, struct err **e)
{
	char msg[1024];
	int pipefd[2];
	ssize_t n = 0, r;
	pid_t pid = 0;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return err_set(e, errno, "pipe");
	if (unshare(CLONE_NEWPID) < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return err_set(e, errno, "unshare PID namespace");
	}
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return err_set(e, errno, "fork");
	}
	if (pid == 0) {
		struct err *ce = NULL;
		close(pipefd[0]);
		(void)jail_child(p, &ce);
		const char *m = ce && ce->msg ? ce->msg : "setup failed";
		if (write(pipefd[1], m, strlen(m)) < 0)
			_exit(126);
		_exit(126);
	}
	close(pipefd[1]);
	while ((r = read(pipefd[0], msg + n, sizeof(msg) - 1 - (size_t)n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (n += r) == (ssize_t)sizeof(msg) - 1)
			break;
	}
	close(pipefd[0]);
	if (n > 0) {
		msg[n] = '\0';
		(void)wait_child(pid);
		return err_setx(e, EPERM, "jail '%s': %s", p->c->id, msg);
	}
	*ret = pid;
	return 0;
}

int jail_run(const struct jail_config *c, struct err **e)
{
	char *dir = NULL, *root = NULL, *run = NULL, **libs = NULL;
	struct jail_file *mounts = NULL;
	struct cgroup *cg = NULL;
	size_t n_libs = 0, n_mounts = 0;
	bool made_dir = false, made_cg = false;
	int netns_fd = -1, status = 0, r;
	char exec_dest[PATH_MAX];
	pid_t pid = 0;

	if ((r = check_input(c, &netns_fd, e)) < 0)
		goto out;
	if ((r = jail_find_libs(c->exec_file, c->libs, c->n_libs, &libs, &n_libs, e)) < 0)
		goto out;
	if ((r = plan_mounts(c, libs, n_libs, &mounts, &n_mounts, e)) < 0)
		goto out;
	snprintf(exec_dest, sizeof(exec_dest), "/%s", base_name(c->exec_file));
	mounts[c->n_files].dest = exec_dest;
	if ((r = jail_cgroup(c->parent_cgroup, c->id, &cg, e)) < 0)
		goto out;
	if (cgroup_n_dirs(cg) == 0) {
		r = err_setx(e, ENOENT, "jail '%s': no cgroup hierarchy is mounted at /sys/fs/cgroup", c->id);
		goto out;
	}
	dir = jail_dir(c->chroot_base, c->exec_file, c->id);
	if (dir == NULL || asprintf(&root, "%s/root", dir) < 0 || asprintf(&run, "%s/run", root) < 0) {
		r = err_set(e, ENOMEM, "jail paths");
		goto out;
	}
	/* <base>/<exec name>, shared by every jail of that program. */
	*strrchr(dir, '/') = '\0';
	if ((r = make_dirs(dir)) < 0) {
		r = err_set(e, -r, "jail directory '%s': mkdir", dir);
		goto out;
	}
	dir[strlen(dir)] = '/';
	if (mkdir(dir, 0755) < 0) {
		r = errno == EEXIST ? err_setx(e, EEXIST,
					       "jail '%s': '%s' already exists (a jail with this id runs, or "
					       "was not cleaned up: casulo-jailer --cleanup %s)",
					       c->id, dir, c->id)
				    : err_set(e, errno, "jail directory '%s': mkdir", dir);
		goto out;
	}
	made_dir = true;
	for (size_t i = 0; i < cgroup_n_dirs(cg); i++) {
		struct stat st;
		if (stat(cgroup_dir_at(cg, i), &st) == 0) {
			r = err_setx(e, EEXIST, "jail '%s': cgroup '%s' already exists", c->id, cgroup_dir_at(cg, i));
			goto out;
		}
	}
	if (mkdir(root, 0755) < 0 || mkdir(run, 0700) < 0 || chown(run, c->uid, c->gid) < 0) {
		r = err_set(e, errno, "jail directory '%s'", run);
		goto out;
	}
	if ((r = cgroup_make(cg, NULL, e)) < 0)
		goto out;
	made_cg = true;
	if ((r = set_resources(c, cg, e)) < 0)
		goto out;
	/* A writable file is the jailed user's, as Firecracker's jailer
	 * gives it its hard links: the program opens it as that user. */
	for (size_t i = 0; i < c->n_files; i++)
		if (c->files[i].rw && chown(c->files[i].src, c->uid, c->gid) < 0) {
			r = err_set(e, errno, "file '%s': chown to %u:%u", c->files[i].src, (unsigned)c->uid,
				    (unsigned)c->gid);
			goto out;
		}

	struct jail_plan plan = {.c = c,
				 .root = root,
				 .exec_name = base_name(c->exec_file),
				 .mounts = mounts,
				 .n_mounts = n_mounts,
				 .netns_fd = netns_fd,
				 .cg = cg};
	forward_signals();
	if ((r = start_child(&plan, &pid, e)) < 0)
		goto out;
	if (netns_fd >= 0) {
		close(netns_fd);
		netns_fd = -1;
	}
	child_pid = pid;
	if (pending_signal)
		kill(pid, pending_signal);
	status = wait_child(pid);
	child_pid = 0;
	r = status;

out:
	if (netns_fd >= 0)
		close(netns_fd);
	if (made_cg) {
		struct err *ce = NULL;
		if (cgroup_destroy(cg, &ce) < 0 && r >= 0) {
			*e = ce;
			ce = NULL;
			r = -err_code(*e);
		}
		err_free(&ce);
	}
	if (made_dir) {
		int rr = remove_tree_path(dir);
		if (rr < 0 && r >= 0)
			r = err_set(e, -rr, "jail directory '%s': remove", dir);
	}
	for (size_t i = 0; i < n_libs; i++)
		free(libs[i]);
	free(libs);
	free(mounts);
	cgroup_free(cg);
	free(run);
	free(root);
	free(dir);
	return r;
}

int jail_cleanup(const char *chroot_base, const char *exec_file, const char *parent_cgroup, const char *id,
		 struct err **e)
{
	struct cgroup *cg = NULL;
	char *dir;
	bool found = false;
	struct stat st;
	int r;

	if ((r = jail_check_id(id, e)) < 0)
		return r;
	if ((r = jail_cgroup(parent_cgroup, id, &cg, e)) < 0)
		return r;
	for (size_t i = 0; i < cgroup_n_dirs(cg); i++)
		if (stat(cgroup_dir_at(cg, i), &st) == 0)
			found = true;
	/* Kill first: the program must not write under the directory while
	 * it is removed. */
	if (found && (r = cgroup_destroy(cg, e)) < 0) {
		cgroup_free(cg);
		return r;
	}
	cgroup_free(cg);
	dir = jail_dir(chroot_base, exec_file, id);
	if (dir == NULL)
		return err_set(e, ENOMEM, "jail path");
	if (lstat(dir, &st) == 0) {
		found = true;
		if ((r = remove_tree_path(dir)) < 0) {
			r = err_set(e, -r, "jail directory '%s': remove", dir);
			free(dir);
			return r;
		}
	}
	if (!found)
		r = err_setx(e, ENOENT, "jail '%s': nothing to clean up (no '%s', no cgroup)", id, dir);
	free(dir);
	return r;
}
