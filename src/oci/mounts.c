/*
 * The container's root filesystem: propagation, the configured mounts
 * (bind, rbind, tmpfs, proc, sysfs, devpts, mqueue, cgroup, ...), devices,
 * pivot_root (or MS_MOVE + chroot with --no-pivot), then masked and
 * read-only paths and the read-only root.  Destinations are resolved with
 * openat2(RESOLVE_IN_ROOT) so that a symlink in the rootfs cannot send a
 * mount outside it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include "common/macro.h"
#include "oci/cgroups.h"
#include "oci/container.h"
#include "oci/sync.h"
#include "oci/util.h"
#include "security/selinux.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

struct opt_def {
	const char *name;
	bool clear;
	unsigned long flag;
};

static const struct opt_def flag_opts[] = {
    {"defaults", false, 0},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"suid", true, MS_NOSUID},
    {"nosuid", false, MS_NOSUID},
    {"dev", true, MS_NODEV},
    {"nodev", false, MS_NODEV},
    {"exec", true, MS_NOEXEC},
    {"noexec", false, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"atime", true, MS_NOATIME},
    {"noatime", false, MS_NOATIME},
    {"diratime", true, MS_NODIRATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"lazytime", false, MS_LAZYTIME},
    {"nolazytime", true, MS_LAZYTIME},
    {"silent", false, MS_SILENT},
    {"loud", true, MS_SILENT},
    {"iversion", false, MS_I_VERSION},
    {"noiversion", true, MS_I_VERSION},
    {"nosymfollow", false, MS_NOSYMFOLLOW},
    {"symfollow", true, MS_NOSYMFOLLOW},
};

static const struct opt_def prop_opts[] = {
    {"private", false, MS_PRIVATE},	  {"rprivate", false, MS_PRIVATE | MS_REC},
    {"shared", false, MS_SHARED},	  {"rshared", false, MS_SHARED | MS_REC},
    {"slave", false, MS_SLAVE},		  {"rslave", false, MS_SLAVE | MS_REC},
    {"unbindable", false, MS_UNBINDABLE}, {"runbindable", false, MS_UNBINDABLE | MS_REC},
};

static const struct {
	const char *name;
	bool clear;
	unsigned long long attr;
} rec_opts[] = {
    {"rro", false, MOUNT_ATTR_RDONLY},
    {"rrw", true, MOUNT_ATTR_RDONLY},
    {"rnosuid", false, MOUNT_ATTR_NOSUID},
    {"rsuid", true, MOUNT_ATTR_NOSUID},
    {"rnodev", false, MOUNT_ATTR_NODEV},
    {"rdev", true, MOUNT_ATTR_NODEV},
    {"rnoexec", false, MOUNT_ATTR_NOEXEC},
    {"rexec", true, MOUNT_ATTR_NOEXEC},
    {"rnodiratime", false, MOUNT_ATTR_NODIRATIME},
    {"rdiratime", true, MOUNT_ATTR_NODIRATIME},
    {"rrelatime", false, MOUNT_ATTR_RELATIME},
    {"rnorelatime", true, MOUNT_ATTR_RELATIME},
    {"rnoatime", false, MOUNT_ATTR_NOATIME},
    {"ratime", true, MOUNT_ATTR_NOATIME},
    {"rstrictatime", false, MOUNT_ATTR_STRICTATIME},
    {"rnostrictatime", true, MOUNT_ATTR_STRICTATIME},
    {"rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW},
    {"rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW},
};

static int append_data(char **data, const char *opt)
{
	char *n;

	if (asprintf(&n, "%s%s%s", *data ? *data : "", *data ? "," : "", opt) < 0)
		return -ENOMEM;
	free(*data);
	*data = n;
	return 0;
}

int mount_opts_parse(char *const *options, size_t n, struct mount_opts *m, struct err **e)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		const char *o = options[i];
		bool done = false;

		for (size_t j = 0; j < ARRAY_SIZE(flag_opts) && !done; j++) {
			if (strcmp(o, flag_opts[j].name) != 0)
				continue;
			if (flag_opts[j].clear) {
				m->flags &= ~flag_opts[j].flag;
				m->clear |= flag_opts[j].flag;
			} else {
				m->flags |= flag_opts[j].flag;
				m->clear &= ~flag_opts[j].flag;
			}
			done = true;
		}
		for (size_t j = 0; j < ARRAY_SIZE(prop_opts) && !done; j++) {
			if (strcmp(o, prop_opts[j].name) == 0) {
				m->propagation = prop_opts[j].flag;
				done = true;
			}
		}
		for (size_t j = 0; j < ARRAY_SIZE(rec_opts) && !done; j++) {
			if (strcmp(o, rec_opts[j].name) != 0)
				continue;
			if (rec_opts[j].clear)
				m->attr_clr |= rec_opts[j].attr;
			else
				m->attr_set |= rec_opts[j].attr;
			done = true;
		}
		if (done)
			continue;
		if (strcmp(o, "bind") == 0)
			m->bind = true;
		else if (strcmp(o, "rbind") == 0)
			m->bind = m->rbind = true;
		else if (strcmp(o, "tmpcopyup") == 0)
			m->tmpcopyup = true;
		else if (strcmp(o, "idmap") == 0)
			m->idmap = true;
		else if (strcmp(o, "ridmap") == 0)
			m->idmap = m->bind = m->rbind = true; /* the whole tree is cloned and idmapped */
		else if (o[0] == '\0')
			continue;
		else if (append_data(&m->data, o) < 0) {
			mount_opts_clear(m);
			return err_set(e, ENOMEM, "mount options");
		}
	}
	return 0;
}

void mount_opts_clear(struct mount_opts *m)
{
	free(m->data);
	m->data = NULL;
}

/* Flags of an existing mount that a remount inside a user namespace must
 * keep (the kernel locks them). */
static unsigned long locked_flags(const char *path)
{
	struct statvfs st;
	unsigned long f = 0;

	if (statvfs(path, &st) < 0)
		return 0;
	if (st.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (st.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (st.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (st.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	if (st.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (st.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (st.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static int remount_bind(const char *target, unsigned long flags, unsigned long clear, const char *what, struct err **e)
{
	unsigned long cur = locked_flags(target);
	unsigned long f = (cur & ~clear) | flags;

	/* An explicit atime choice replaces the current one. */
	if (flags & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME))
		f = (f & ~(MS_NOATIME | MS_RELATIME | MS_STRICTATIME)) |
		    (flags & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME));
	if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | f, NULL) < 0) {
		/* In a user namespace, locked flags must stay: retry with them all. */
		if (errno == EPERM && mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | f | cur, NULL) == 0)
			return 0;
		return err_set(e, errno, "mount '%s': remount bind", what);
	}
	return 0;
}

static int set_recursive_attrs(int fd, const struct mount_opts *o, const char *what, struct err **e)
{
	struct mount_attr attr = {.attr_set = o->attr_set, .attr_clr = o->attr_clr};

	if (!o->attr_set && !o->attr_clr)
		return 0;
	if (attr.attr_set & (MOUNT_ATTR_NOATIME | MOUNT_ATTR_STRICTATIME | MOUNT_ATTR_RELATIME))
		attr.attr_clr |= MOUNT_ATTR__ATIME;
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
		return err_set(e, errno, "mount '%s': mount_setattr (recursive options)", what);
	return 0;
}

/* Copy the tree under src (a directory fd) into dst, for tmpcopyup. */
static int copy_tree(int src, int dst)
{
	DIR *d;
	struct dirent *de;
	int dupfd = fcntl(src, F_DUPFD_CLOEXEC, 3), r = 0;

	if (dupfd < 0)
		return -errno;
	d = fdopendir(dupfd);
	if (d == NULL) {
		close(dupfd);
		return -errno;
	}
	while ((de = readdir(d)) && r == 0) {
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(src, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int s2, d2;
			if (mkdirat(dst, de->d_name, st.st_mode & 07777) < 0 && errno != EEXIST)
				return -errno;
			s2 = openat(src, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			d2 = openat(dst, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			if (s2 >= 0 && d2 >= 0)
				r = copy_tree(s2, d2);
			if (s2 >= 0)
				close(s2);
			if (d2 >= 0)
				close(d2);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlinkat(src, de->d_name, target, sizeof(target) - 1);
			if (n >= 0) {
				target[n] = '\0';
				(void)symlinkat(target, dst, de->d_name);
			}
		} else if (S_ISREG(st.st_mode)) {
			int in = openat(src, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			int out = openat(dst, de->d_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
			char buf[65536];
			ssize_t n;
			while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
				if (write(out, buf, (size_t)n) != n) {
					r = -EIO;
					break;
				}
			if (in >= 0)
				close(in);
			if (out >= 0)
				close(out);
		} else {
			(void)mknodat(dst, de->d_name, st.st_mode, st.st_rdev);
		}
		(void)fchownat(dst, de->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
	}
	closedir(d);
	return r;
}

static bool in_userns(const struct run_ctx *c)
{
	return c->ns_new[NS_USER] || c->spec->ns[NS_USER].path;
}

/* Reopen a destination after something was mounted on it. */
static int reopen(int rootfd, const char *dest, int *fd, char *path, size_t size, struct err **e)
{
	int nfd = open_in_root(rootfd, dest, O_PATH, 0);

	if (nfd < 0)
		return err_set(e, -nfd, "mount '%s': reopen", dest);
	close(*fd);
	*fd = nfd;
	fd_path(nfd, path, size);
	return 0;
}

static int mount_cgroup(struct run_ctx *c, int rootfd, const struct oci_mount *m, const struct mount_opts *o,
			struct err **e);

/* A user namespace with these maps, as an fd, for MOUNT_ATTR_IDMAP: a
 * child is cloned into a new one and tells its pid as /proc sees it (we
 * may be in a new pid namespace while /proc is still the host's); we write
 * its maps, keep the namespace and release the child. */
static int idmap_userns(const struct oci_idmap *u, size_t nu, const struct oci_idmap *g, size_t ng, struct err **e)
{
	int up[2], down[2], fd = -1, r;
	char path[64], buf[4096], procpid[32] = "";
	ssize_t n;
	size_t len;
	pid_t pid;

	if (pipe2(up, O_CLOEXEC) < 0)
		return err_set(e, errno, "idmapped mount: pipe");
	if (pipe2(down, O_CLOEXEC) < 0) {
		close(up[0]);
		close(up[1]);
		return err_set(e, errno, "idmapped mount: pipe");
	}
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, NULL, NULL, 0);
	if (pid == 0) {
		char self[32], x;
		ssize_t k;
		close(down[1]); /* else our own copy keeps the pipe open */
		close(up[0]);
		k = readlink("/proc/self", self, sizeof(self));
		if (k > 0)
			(void)!write(up[1], self, (size_t)k);
		close(up[1]);
		(void)!read(down[0], &x, 1); /* until the parent is done */
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	if (pid < 0) {
		close(up[0]);
		close(down[1]);
		return err_set(e, errno, "idmapped mount: clone a user namespace");
	}
	n = read(up[0], procpid, sizeof(procpid) - 1);
	close(up[0]);
	if (n <= 0) {
		err_setx(e, EIO, "idmapped mount: the helper did not report its pid");
		goto out;
	}
	procpid[n] = '\0';
	for (int which = 0; which < 2; which++) {
		const struct oci_idmap *m = which ? g : u;
		size_t cnt = which ? ng : nu;
		len = 0;
		for (size_t i = 0; i < cnt && len < sizeof(buf) - 40; i++)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", m[i].container_id,
						m[i].host_id, m[i].size);
		snprintf(path, sizeof(path), "/proc/%s/%s", procpid, which ? "gid_map" : "uid_map");
		r = write_file(path, buf, len);
		if (r < 0) {
			err_set(e, -r, "idmapped mount: write %s", which ? "gidMappings" : "uidMappings");
			goto out;
		}
	}
	snprintf(path, sizeof(path), "/proc/%s/ns/user", procpid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		err_set(e, errno, "idmapped mount: open %s", path);
out:
	close(down[1]);
	waitpid(pid, NULL, 0);
	return fd < 0 ? -err_code(*e) : fd;
}

/* Bind source onto target through an idmapped clone of its tree: the
 * mount's own uid/gid maps, or the container's for a bare "idmap". */
static int bind_idmapped(struct run_ctx *c, const struct oci_mount *m, const char *source, int target_fd,
			 bool recursive, struct err **e)
{
	const struct oci_idmap *u = m->uid_map, *g = m->gid_map;
	size_t nu = m->n_uid_map, ng = m->n_gid_map;
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP};
	unsigned rec = recursive ? AT_RECURSIVE : 0;
	_cleanup_close_ int userns = -1, tree = -1;

	if (nu == 0) {
		u = c->spec->uid_mappings, nu = c->spec->n_uid_mappings;
		g = c->spec->gid_mappings, ng = c->spec->n_gid_mappings;
	}
	if (nu == 0 || ng == 0)
		return err_setx(e, EINVAL,
				"mount '%s': idmap needs uidMappings and gidMappings (the mount's or linux.*)",
				m->destination);
	userns = idmap_userns(u, nu, g, ng, e);
	if (userns < 0)
		return err_wrap(e, "mount '%s'", m->destination);
	tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
	if (tree < 0)
		return err_set(e, errno, "mount '%s': open_tree '%s'", m->destination, source);
	attr.userns_fd = (uint64_t)userns;
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | rec, &attr, sizeof(attr)) < 0)
		return err_set(e, errno, "mount '%s': idmap '%s' (does its filesystem support idmapped mounts?)",
			       m->destination, source);
	if (syscall(SYS_move_mount, tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return err_set(e, errno, "mount '%s': move_mount", m->destination);
	return 0;
}

/* Is mount m a bind mount (its source to open on the host side)? */
static bool is_bind_mount(const struct oci_mount *m)
{
	struct mount_opts o;
	struct err *e = NULL;
	bool bind;

	if (mount_opts_parse(m->options, m->n_options, &o, &e) < 0) {
		err_free(&e); /* the mount itself says it, later */
		return false;
	}
	bind = o.bind || (m->type && strcmp(m->type, "bind") == 0);
	mount_opts_clear(&o);
	return bind && m->source;
}

bool rootfs_needs_bind_sources(const struct run_ctx *c)
{
	const struct oci_spec *s = c->spec;

	if (c->exec_mode || !s->ns[NS_MOUNT].present || !(c->ns_new[NS_USER] || s->ns[NS_USER].path))
		return false;
	for (size_t i = 0; i < s->n_mounts; i++)
		if (is_bind_mount(&s->mounts[i]))
			return true;
	return false;
}

/* The helper: in the container's mount namespace with the runtime's
 * credentials, open each bind source and send it to the container process
 * (on the runtime's end of the sync socket).  Writes an error to errfd. */
static __attribute__((noreturn)) void send_bind_sources(struct run_ctx *c, pid_t pid, int errfd)
{
	const struct oci_spec *s = c->spec;
	char path[64], msg[4096];
	int ns, r;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0 || setns(ns, CLONE_NEWNS) < 0) {
		r = snprintf(msg, sizeof(msg), "mounts: enter the container's mount namespace (%s): %s", path,
			     strerror(errno));
		goto fail;
	}
	for (uint32_t i = 0; i < s->n_mounts; i++) {
		const struct oci_mount *m = &s->mounts[i];
		char abs[PATH_MAX];
		int fd;

		if (!is_bind_mount(m))
			continue;
		snprintf(abs, sizeof(abs), "%s%s%s", m->source[0] == '/' ? "" : c->bundle,
			 m->source[0] == '/' ? "" : "/", m->source);
		fd = open(abs, O_PATH | O_CLOEXEC);
		if (fd < 0) {
			r = snprintf(msg, sizeof(msg), "mount '%s': bind source '%s': %s", m->destination, abs,
				     strerror(errno));
			goto fail;
		}
		if ((r = sync_send(c->sock, SYNC_MOUNT_SOURCE, &i, sizeof(i), fd)) < 0) {
			r = snprintf(msg, sizeof(msg), "mount '%s': send its source: %s", m->destination, strerror(-r));
			goto fail;
		}
		close(fd);
	}
	_exit(0);
fail:
	(void)!write(errfd, msg, (size_t)MIN(MAX(r, 0), (int)sizeof(msg) - 1));
	_exit(1);
}

int rootfs_send_bind_sources(struct run_ctx *c, pid_t pid, struct err **e)
{
	char msg[4096] = "";
	int pipefd[2], status = 0;
	ssize_t n;
	pid_t helper;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return err_set(e, errno, "mounts: pipe");
	helper = fork();
	if (helper < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return err_set(e, errno, "mounts: fork");
	}
	if (helper == 0) {
		close(pipefd[0]);
		send_bind_sources(c, pid, pipefd[1]);
	}
	close(pipefd[1]);
	n = read(pipefd[0], msg, sizeof(msg) - 1);
	close(pipefd[0]);
	while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
		;
	if (n > 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_setx(e, EIO, "%s", n > 0 ? msg : "mounts: the bind source helper failed");
	return 0;
}

/* proc and sysfs go on a directory of the rootfs, never through a symlink
 * there (a symlinked /proc has been the way around AppArmor: runc 1.1.5
 * refuses it, and so do we, in its words). */
static int check_ordinary_dir(int rootfd, const char *dest, const char *type, struct err **e)
{
	_cleanup_free_ char *parent = strdup(dest);
	_cleanup_close_ int pfd = -1;
	char *slash = parent ? strrchr(parent, '/') : NULL;
	struct stat st;

	if (slash == NULL)
		return err_set(e, ENOMEM, "mount '%s'", dest);
	*slash = '\0';
	pfd = open_in_root(rootfd, parent[0] ? parent : "/", O_PATH | O_DIRECTORY, 0);
	if (pfd < 0)
		return pfd == -ENOENT ? 0 : err_set(e, -pfd, "mount '%s': open its parent in the rootfs", dest);
	if (fstatat(pfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : err_set(e, errno, "mount '%s': stat", dest);
	if (!S_ISDIR(st.st_mode))
		return err_setx(e, EINVAL,
				"mount '%s': filesystem \"%s\" must be mounted on ordinary directory (it is %s)", dest,
				type, S_ISLNK(st.st_mode) ? "a symlink" : "not a directory");
	return 0;
}

/* A tmpfs (or /dev) asked read-only is mounted read-write, so that what
 * goes below it (devpts, shm, the device nodes) can be made, and made
 * read-only once everything is in place (runc's order). */
static bool ro_later(const struct oci_mount *m, const struct mount_opts *o, bool is_bind)
{
	return (o->flags & MS_RDONLY) && !o->tmpcopyup &&
	       (strcmp(m->destination, "/dev") == 0 || (!is_bind && m->type && strcmp(m->type, "tmpfs") == 0));
}

/* linux.mountLabel: the files of a filesystem the container mounts for
 * itself (tmpfs, devpts, mqueue) get that label (`context=`), as runc
 * gives them; ignored without SELinux on the host, as runc does. */
static int mount_label_option(const char *label, const char *type, char **data, struct err **e)
{
	char opt[512];

	if (label == NULL || *label == '\0' || type == NULL ||
	    (strcmp(type, "tmpfs") != 0 && strcmp(type, "devpts") != 0 && strcmp(type, "mqueue") != 0) ||
	    !sel_enabled())
		return 0;
	if (snprintf(opt, sizeof(opt), "context=\"%s\"", label) >= (int)sizeof(opt))
		return err_setx(e, EINVAL, "linux.mountLabel '%s': too long", label);
	if (append_data(data, opt) < 0)
		return err_set(e, ENOMEM, "linux.mountLabel");
	return 0;
}

static int mount_one(struct run_ctx *c, int rootfd, const struct oci_mount *m, bool *dev_is_bind, struct err **e)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *src_abs = NULL;
	struct mount_opts o;
	const char *type = m->type, *source = m->source, *dest = m->destination;
	char target[64];
	bool is_bind, as_file = false;
	unsigned long flags;
	int r;

	if ((r = mount_opts_parse(m->options, m->n_options, &o, e)) < 0)
		return err_wrap(e, "mount '%s'", dest);
	is_bind = o.bind || (type && strcmp(type, "bind") == 0);
	if (!is_bind && (r = mount_label_option(c->spec->mount_label, type, &o.data, e)) < 0) {
		mount_opts_clear(&o);
		return err_wrap(e, "mount '%s'", dest);
	}
	if ((o.idmap || m->n_uid_map) && !is_bind) {
		mount_opts_clear(&o);
		return err_setx(e, ENOTSUP, "mount '%s': idmapped mounts are bind mounts (type '%s')", dest,
				type ? type : "none");
	}
	if (type && strcmp(type, "cgroup") == 0 && !is_bind) {
		r = mount_cgroup(c, rootfd, m, &o, e);
		mount_opts_clear(&o);
		return r;
	}
	if (is_bind) {
		struct stat st;
		if (source == NULL) {
			mount_opts_clear(&o);
			return err_setx(e, EINVAL, "mount '%s': a bind mount needs a source", dest);
		}
		if (source[0] != '/') {
			if (asprintf(&src_abs, "%s/%s", c->bundle, source) < 0) {
				mount_opts_clear(&o);
				return err_set(e, ENOMEM, "mount '%s'", dest);
			}
			source = src_abs;
		}
		/* Opened before the user namespace, where its user may not
		 * reach it (c->bind_src_fds, runc's way). */
		if (c->bind_src_fds && c->bind_src_fds[m - c->spec->mounts] >= 0) {
			int sfd = c->bind_src_fds[m - c->spec->mounts];
			if (fstat(sfd, &st) < 0) {
				r = err_set(e, errno, "mount '%s': bind source '%s'", dest, source);
				mount_opts_clear(&o);
				return r;
			}
			free(src_abs);
			if (asprintf(&src_abs, "/proc/self/fd/%d", sfd) < 0) {
				mount_opts_clear(&o);
				return err_set(e, ENOMEM, "mount '%s'", dest);
			}
			source = src_abs;
		} else if (stat(source, &st) < 0) {
			r = err_set(e, errno, "mount '%s': bind source '%s'", dest, source);
			mount_opts_clear(&o);
			return r;
		}
		as_file = !S_ISDIR(st.st_mode);
		if (strcmp(dest, "/dev") == 0)
			*dev_is_bind = true;
	}
	if (!is_bind && type && (strcmp(type, "proc") == 0 || strcmp(type, "sysfs") == 0) &&
	    (r = check_ordinary_dir(rootfd, dest, type, e)) < 0) {
		mount_opts_clear(&o);
		return r;
	}
	fd = mkdir_in_root(rootfd, dest, 0755, as_file);
	if (fd < 0) {
		mount_opts_clear(&o);
		return err_set(e, -fd, "mount '%s': create mount point in rootfs", dest);
	}
	fd_path(fd, target, sizeof(target));
	flags = o.flags & ~(MS_REMOUNT);
	if (ro_later(m, &o, is_bind))
		flags &= ~MS_RDONLY;

	if (is_bind) {
		if (o.idmap || m->n_uid_map) {
			if ((r = bind_idmapped(c, m, source, fd, o.rbind, e)) < 0)
				goto out;
		} else if (mount(source, target, NULL, MS_BIND | (o.rbind ? MS_REC : 0), NULL) < 0) {
			r = err_set(e, errno, "mount '%s': bind '%s'", dest, source);
			goto out;
		}
		if ((r = reopen(rootfd, dest, &fd, target, sizeof(target), e)) < 0)
			goto out;
		if ((flags & ~(MS_BIND | MS_REC)) || (o.clear & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)))
			if ((r = remount_bind(target, flags & ~(MS_BIND | MS_REC), o.clear, dest, e)) < 0)
				goto out;
	} else if (o.tmpcopyup && type && strcmp(type, "tmpfs") == 0) {
		/* Mount the tmpfs aside, copy what the directory holds, move it over. */
		char tmpl[] = "/tmp/casulo-tmpcopyup.XXXXXX";
		_cleanup_close_ int srcfd = -1, dstfd = -1;
		if (mkdtemp(tmpl) == NULL) {
			r = err_set(e, errno, "mount '%s': tmpcopyup: mkdtemp", dest);
			goto out;
		}
		if (mount(source ? source : "tmpfs", tmpl, "tmpfs", flags & ~MS_RDONLY, o.data) < 0) {
			r = err_set(e, errno, "mount '%s': mount tmpfs", dest);
			rmdir(tmpl);
			goto out;
		}
		srcfd = open_in_root(rootfd, dest, O_RDONLY | O_DIRECTORY, 0);
		dstfd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (srcfd >= 0 && dstfd >= 0)
			(void)copy_tree(srcfd, dstfd);
		r = mount(tmpl, target, NULL, MS_MOVE, NULL);
		if (r < 0) {
			r = err_set(e, errno, "mount '%s': tmpcopyup: move", dest);
			umount2(tmpl, MNT_DETACH);
			rmdir(tmpl);
			goto out;
		}
		rmdir(tmpl);
		if ((r = reopen(rootfd, dest, &fd, target, sizeof(target), e)) < 0)
			goto out;
		if ((flags & MS_RDONLY) && (r = remount_bind(target, MS_RDONLY, 0, dest, e)) < 0)
			goto out;
	} else {
		if (type == NULL) {
			r = err_setx(e, EINVAL, "mount '%s': type is required for a non-bind mount", dest);
			goto out;
		}
		if (mount(source ? source : type, target, type, flags, o.data) < 0) {
			int saved = errno;
			/* In a user namespace without its own network namespace (or
			 * without an ipc one) sysfs and mqueue cannot be mounted: bind
			 * the host's, as runc does. */
			if (saved == EPERM && in_userns(c) &&
			    (strcmp(type, "sysfs") == 0 || strcmp(type, "mqueue") == 0)) {
				const char *host = strcmp(type, "sysfs") == 0 ? "/sys" : "/dev/mqueue";
				if (mount(host, target, NULL, MS_BIND | MS_REC, NULL) == 0) {
					if ((r = reopen(rootfd, dest, &fd, target, sizeof(target), e)) < 0)
						goto out;
					if ((r = remount_bind(target, flags, o.clear, dest, e)) < 0)
						goto out;
					goto propagation;
				}
			}
			r = err_set(e, saved, "mount '%s': mount %s", dest, type);
			goto out;
		}
		if ((r = reopen(rootfd, dest, &fd, target, sizeof(target), e)) < 0)
			goto out;
	}
propagation:
	if (o.propagation && mount(NULL, target, NULL, o.propagation, NULL) < 0) {
		r = err_set(e, errno, "mount '%s': set propagation", dest);
		goto out;
	}
	r = set_recursive_attrs(fd, &o, dest, e);
out:
	mount_opts_clear(&o);
	return r;
}

/* cgroup: cgroup2 itself (v2 with a cgroup namespace) or, as runc does on
 * v1 and hybrid hosts, a tmpfs holding each hierarchy's container cgroup. */
static int mount_cgroup(struct run_ctx *c, int rootfd, const struct oci_mount *m, const struct mount_opts *o,
			struct err **e)
{
	const struct cgroup *cg = c->cg;
	_cleanup_close_ int fd = -1;
	unsigned long flags = o->flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME | MS_NOATIME);
	bool ro = o->flags & MS_RDONLY, cgns = c->ns_new[NS_CGROUP];
	const char *dest = m->destination;
	char target[64];
	int r;

	if (cg == NULL)
		return err_setx(e, EINVAL, "mount '%s': no cgroup to mount", dest);
	fd = mkdir_in_root(rootfd, dest, 0755, false);
	if (fd < 0)
		return err_set(e, -fd, "mount '%s': create mount point in rootfs", dest);
	fd_path(fd, target, sizeof(target));
	if (cg->mode == CGROUP_MODE_V2) {
		if (cgns) {
			if (mount("cgroup2", target, "cgroup2", flags | (ro ? MS_RDONLY : 0), NULL) < 0)
				return err_set(e, errno, "mount '%s': mount cgroup2", dest);
			return 0;
		}
		if (mount(cg->unified.path, target, NULL, MS_BIND | MS_REC, NULL) < 0)
			return err_set(e, errno, "mount '%s': bind '%s'", dest, cg->unified.path);
		if ((r = reopen(rootfd, dest, &fd, target, sizeof(target), e)) < 0)
			return r;
		return remount_bind(target, flags | (ro ? MS_RDONLY : 0), 0, dest, e);
	}
	if (mount("tmpfs", target, "tmpfs", flags, "mode=755") < 0)
		return err_set(e, errno, "mount '%s': mount tmpfs", dest);
	if ((r = reopen(rootfd, dest, &fd, target, sizeof(target), e)) < 0)
		return r;
	for (size_t i = 0; i <= cg->n_v1; i++) {
		const struct cgroup_dir *d = i < cg->n_v1 ? &cg->v1[i] : &cg->unified;
		const char *name;
		char sub[128];
		int subfd;

		if (d->path == NULL)
			continue;
		name = strrchr(d->mountpoint, '/');
		name = name ? name + 1 : d->mountpoint;
		if (mkdirat(fd, name, 0755) < 0 && errno != EEXIST)
			return err_set(e, errno, "mount '%s': mkdir %s", dest, name);
		subfd = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (subfd < 0)
			return err_set(e, errno, "mount '%s': open %s", dest, name);
		fd_path(subfd, sub, sizeof(sub));
		if (cgns) {
			const char *fstype = d->controllers[0] ? "cgroup" : "cgroup2";
			char data[256];
			if (strncmp(d->controllers, "name=", 5) == 0)
				snprintf(data, sizeof(data), "none,%s", d->controllers);
			else
				snprintf(data, sizeof(data), "%s", d->controllers);
			r = mount(fstype, sub, fstype, flags | (ro ? MS_RDONLY : 0), d->controllers[0] ? data : NULL);
			if (r < 0) {
				r = err_set(e, errno, "mount '%s/%s': mount %s", dest, name, fstype);
				close(subfd);
				return r;
			}
		} else {
			if (mount(d->path, sub, NULL, MS_BIND | MS_REC, NULL) < 0) {
				r = err_set(e, errno, "mount '%s/%s': bind '%s'", dest, name, d->path);
				close(subfd);
				return r;
			}
			char p2[128];
			int fd2 = openat(fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (fd2 >= 0) {
				fd_path(fd2, p2, sizeof(p2));
				r = remount_bind(p2, flags | (ro ? MS_RDONLY : 0), 0, name, e);
				close(fd2);
				if (r < 0) {
					close(subfd);
					return r;
				}
			}
		}
		close(subfd);
		/* Co-mounted controllers: cpu -> cpu,cpuacct. */
		if (strchr(name, ',')) {
			char *copy = strdup(name), *save = NULL;
			for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
				(void)symlinkat(name, fd, t);
			free(copy);
		}
	}
	if (ro && mount(NULL, target, NULL, MS_REMOUNT | MS_RDONLY | flags, "mode=755") < 0)
		return err_set(e, errno, "mount '%s': remount read-only", dest);
	return 0;
}

static unsigned long propagation_flags(const char *name)
{
	for (size_t j = 0; name && j < ARRAY_SIZE(prop_opts); j++)
		if (strcmp(name, prop_opts[j].name) == 0)
			return prop_opts[j].flag;
	return MS_SLAVE | MS_REC;
}

int rootfs_setup(struct run_ctx *c, struct err **e)
{
	unsigned long prop = propagation_flags(c->spec->rootfs_propagation);
	_cleanup_close_ int rootfd = -1;
	bool dev_is_bind = false, has_dev = false;
	int r;

	/* Our mounts must not reach the host: slave (or the configured
	 * propagation) on everything, and a private parent for pivot_root. */
	if (mount(NULL, "/", NULL, (prop & (MS_SHARED | MS_UNBINDABLE)) ? (MS_SLAVE | MS_REC) : prop, NULL) < 0)
		return err_set(e, errno, "rootfs propagation: mount '/'");
	if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		return err_set(e, errno, "rootfs '%s': bind onto itself", c->rootfs);
	rootfd = open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return err_set(e, errno, "rootfs '%s': open", c->rootfs);
	for (size_t i = 0; i < c->spec->n_mounts; i++) {
		has_dev |= strcmp(c->spec->mounts[i].destination, "/dev") == 0;
		if ((r = mount_one(c, rootfd, &c->spec->mounts[i], &dev_is_bind, e)) < 0)
			return r;
	}
	if ((r = devices_setup(c, rootfd, dev_is_bind, e)) < 0)
		return r;
	/* A missing process.cwd is created, as runc does. */
	if (c->proc && c->proc->cwd) {
		int fd = mkdir_in_root(rootfd, c->proc->cwd, 0755, false);
		if (fd < 0)
			return err_set(e, -fd, "process.cwd '%s': create in rootfs", c->proc->cwd);
		close(fd);
	}
	if (!dev_is_bind && has_dev && (r = devices_symlinks(rootfd, e)) < 0)
		return r;
	return 0;
}

/* --no-pivot leaves the host's mounts in the container's mount namespace,
 * out of sight of chroot but not of the kernel: a fully visible host
 * procfs or sysfs there would let a nested user namespace mount a fresh,
 * unmasked one.  runc detaches them first (or covers those it cannot). */
static int hide_host_procfs(const char *rootfs, struct err **e)
{
	_cleanup_free_ char *text = NULL;
	char *save = NULL;
	size_t rlen = strlen(rootfs);
	int r = read_file("/proc/self/mountinfo", &text, NULL);

	if (r < 0)
		return err_set(e, -r, "--no-pivot: read /proc/self/mountinfo");
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char root[4096], mnt[4096], fstype[64], *sep = strstr(line, " - ");
		if (sep == NULL || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		unescape_octal(root);
		unescape_octal(mnt);
		if (strcmp(root, "/") != 0 || (strcmp(fstype, "proc") != 0 && strcmp(fstype, "sysfs") != 0) ||
		    (strncmp(mnt, rootfs, rlen) == 0 && (mnt[rlen] == '/' || mnt[rlen] == '\0')))
			continue;
		if (mount(NULL, mnt, NULL, MS_SLAVE | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue; /* under one detached already */
			return err_set(e, errno, "--no-pivot: host %s at '%s': make it a slave", fstype, mnt);
		}
		if (umount2(mnt, MNT_DETACH) < 0) {
			if (errno != EINVAL && errno != EPERM)
				return err_set(e, errno, "--no-pivot: host %s at '%s': detach", fstype, mnt);
			if (mount("tmpfs", mnt, "tmpfs", 0, NULL) < 0)
				return err_set(e, errno, "--no-pivot: host %s at '%s': cover", fstype, mnt);
		}
	}
	return 0;
}

int rootfs_pivot(struct run_ctx *c, struct err **e)
{
	_cleanup_close_ int oldroot = -1, newroot = -1;

	if (c->no_pivot) {
		int r = hide_host_procfs(c->rootfs, e);
		if (r < 0)
			return r;
		if (chdir(c->rootfs) < 0)
			return err_set(e, errno, "rootfs '%s': chdir", c->rootfs);
		if (mount(c->rootfs, "/", NULL, MS_MOVE, NULL) < 0)
			return err_set(e, errno, "rootfs '%s': move to '/' (--no-pivot)", c->rootfs);
		if (chroot(".") < 0)
			return err_set(e, errno, "rootfs '%s': chroot (--no-pivot)", c->rootfs);
		if (chdir("/") < 0)
			return err_set(e, errno, "rootfs: chdir '/'");
		return 0;
	}
	oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	newroot = open(c->rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (oldroot < 0 || newroot < 0)
		return err_set(e, errno, "rootfs '%s': open", c->rootfs);
	if (fchdir(newroot) < 0)
		return err_set(e, errno, "rootfs '%s': chdir", c->rootfs);
	/* pivot_root(".", "."): the old root ends up stacked under the new
	 * one, then is detached; no directory for it is needed in the rootfs. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return err_set(e, errno, "rootfs '%s': pivot_root", c->rootfs);
	if (fchdir(oldroot) < 0)
		return err_set(e, errno, "rootfs: chdir to the old root");
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return err_set(e, errno, "rootfs: make the old root rslave");
	if (umount2(".", MNT_DETACH) < 0)
		return err_set(e, errno, "rootfs: detach the old root");
	if (chdir("/") < 0)
		return err_set(e, errno, "rootfs: chdir '/'");
	return 0;
}

static int mask_path(const char *path, const char *label, struct err **e)
{
	struct stat st;
	int r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_set(e, errno, "linux.maskedPaths '%s': stat", path);
	if (S_ISDIR(st.st_mode))
		r = mount("tmpfs", path, "tmpfs", MS_RDONLY, label);
	else
		r = mount("/dev/null", path, NULL, MS_BIND, NULL);
	if (r < 0 && errno != ENOENT)
		return err_set(e, errno, "linux.maskedPaths '%s': mount", path);
	return 0;
}

static int readonly_path(const char *path, struct err **e)
{
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return errno == ENOENT ? 0 : err_set(e, errno, "linux.readonlyPaths '%s': bind", path);
	return remount_bind(path, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, path, e) < 0
		   ? err_wrap(e, "linux.readonlyPaths")
		   : 0;
}

/* The read-only tmpfs mounts (and /dev), mounted read-write until now. */
static int remount_readonly_later(struct run_ctx *c, struct err **e)
{
	_cleanup_close_ int rootfd = -1;

	for (size_t i = 0; i < c->spec->n_mounts; i++) {
		const struct oci_mount *m = &c->spec->mounts[i];
		struct mount_opts o;
		_cleanup_close_ int fd = -1;
		char target[64];
		bool is_bind, later;

		if (mount_opts_parse(m->options, m->n_options, &o, e) < 0)
			return err_wrap(e, "mount '%s'", m->destination);
		is_bind = o.bind || (m->type && strcmp(m->type, "bind") == 0);
		later = ro_later(m, &o, is_bind);
		mount_opts_clear(&o);
		if (!later)
			continue;
		if (rootfd < 0 && (rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
			return err_set(e, errno, "rootfs: open '/'");
		fd = open_in_root(rootfd, m->destination, O_PATH | O_DIRECTORY, 0);
		if (fd < 0)
			return err_set(e, -fd, "mount '%s': open to make it read-only", m->destination);
		fd_path(fd, target, sizeof(target));
		if (remount_bind(target, MS_RDONLY, 0, m->destination, e) < 0)
			return -err_code(*e);
	}
	return 0;
}

int rootfs_finalize(struct run_ctx *c, struct err **e)
{
	const struct oci_spec *s = c->spec;
	unsigned long prop = propagation_flags(s->rootfs_propagation);
	int r;

	if ((r = remount_readonly_later(c, e)) < 0)
		return r;
	if (s->root_readonly && remount_bind("/", MS_RDONLY, 0, "/", e) < 0)
		return err_wrap(e, "root.readonly");
	/* Shared and unbindable could not be set before the rootfs was bound
	 * and pivoted onto: now they can. */
	if ((prop & (MS_SHARED | MS_UNBINDABLE)) && mount(NULL, "/", NULL, prop, NULL) < 0)
		return err_set(e, errno, "linux.rootfsPropagation '%s': mount '/'", s->rootfs_propagation);
	return 0;
}

int rootfs_protect(struct run_ctx *c, struct err **e)
{
	const struct oci_spec *s = c->spec;
	char label_opt[512];
	int r;

	snprintf(label_opt, sizeof(label_opt), "context=\"%s\"", s->mount_label ? s->mount_label : "");
	for (size_t i = 0; i < s->n_readonly_paths; i++)
		if ((r = readonly_path(s->readonly_paths[i], e)) < 0)
			return r;
	for (size_t i = 0; i < s->n_masked_paths; i++)
		if ((r = mask_path(s->masked_paths[i],
				   s->mount_label && *s->mount_label && sel_enabled() ? label_opt : NULL, e)) < 0)
			return r;
	return 0;
}
