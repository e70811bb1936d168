/*
 * virtio-fs: the FUSE server (fs-server.h).  The opcodes a Linux guest
 * needs for a container's root filesystem; locks are left to the guest
 * (GETLK/SETLK answer ENOSYS, so its kernel keeps them locally), and so
 * are permissions (Linux mounts virtio-fs with default_permissions: the
 * guest kernel checks modes and owners itself, and the server acts with
 * the VMM's credentials, giving new files the guest caller's owner).
 */
#include "vmm/devices/virtio/fs-server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/fuse.h>
#include <linux/limits.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/parse.h"
#include "vmm/devices/virtio/fs-nodes.h"
#include "vmm/devices/virtio/queue.h"

/* Oldest FUSE minor version served: 7.31 is where virtio-fs began. */
#define FS_MIN_MINOR 31
/* The arguments of the largest request but WRITE: SETXATTR with a
 * maximal name and value. */
#define FS_MAX_ARGS (FUSE_COMPAT_SETXATTR_IN_SIZE + XATTR_NAME_MAX + 1 + XATTR_SIZE_MAX)
/* The largest READDIR reply built (Linux asks for one page). */
#define FS_MAX_DIR_REPLY (128 * 1024)
#define FS_REPLY_BUF MAX(FS_MAX_DIR_REPLY, XATTR_SIZE_MAX)
#define FS_DIRENT_BUF (64 * 1024)
/* How long the guest may cache names and attributes (seconds): the
 * guest is expected to be the directory's only writer while it runs. */
#define FS_CACHE_SECONDS 1
/* COPY_FILE_RANGE copies at most this much per request (a short copy is
 * fine: the guest asks again). */
#define FS_MAX_COPY (64 * 1024 * 1024)
/* fds kept back from the tables for the rest of the VMM. */
#define FS_FD_RESERVE 512
#define FS_MAX_FDS (1u << 20)

#define OPEN_FLAGS_PASSED (O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC | O_NOATIME)

struct fs_server {
	char *what; /* "virtio-fs 'tag'", for messages */
	struct fs_nodes nodes;
	int proc_fd; /* /proc/self/fd: reopens an O_PATH fd as a real one */
	bool readonly;
	bool initialized;	       /* INIT done, DESTROY not yet */
	bool chown_new;		       /* running as root: new files get the caller's owner */
	mode_t umask;		       /* this process's, which the guest's modes must not get */
	uint8_t *args;		       /* the request (header and arguments), copied out of guest memory */
	uint8_t *reply;		       /* replies built before they are copied to the guest */
	uint8_t *dirents;	       /* getdents64() */
	struct iovec iov[FS_MAX_SEGS]; /* READ and WRITE data within the guest's buffers */
	struct fs_server_stats stats;  /* relaxed atomics */
};

/* One request being served. */
struct fs_req {
	struct fs_server *s;
	struct fuse_in_header h;
	const uint8_t *arg; /* arguments not consumed yet (in s->args) */
	size_t arg_len;
	const struct iovec *out, *in;
	unsigned nout, nin;
	uint64_t out_len, in_len;
	uint32_t written;
};

static void count(uint64_t *c, uint64_t n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

/* --- replies --- */

/*
 * Each operation returns 0 once it has replied (reply_ok()), or -errno:
 * fs_server_handle() answers that error.  Operations check up front that
 * the guest's buffers can take their reply (fs_op.reply_min), so that
 * nothing is done that the guest cannot be told about.
 */

static bool reply_fits(const struct fs_req *r, size_t len)
{
	return r->in_len >= sizeof(struct fuse_out_header) + len;
}

static void reply_header(struct fs_req *r, int err, size_t payload)
{
	struct fuse_out_header oh = {
	    .len = (uint32_t)(sizeof(oh) + payload),
	    .error = -err,
	    .unique = r->h.unique,
	};

	if (!reply_fits(r, payload))
		return; /* not even a header fits: nothing can be said */
	iov_copy_to(r->in, r->nin, 0, &oh, sizeof(oh));
	r->written = oh.len;
	if (err)
		count(&r->s->stats.errors, 1);
}

/* The header and up to two parts (CREATE's entry and open replies). */
static int reply_ok2(struct fs_req *r, const void *a, size_t alen, const void *b, size_t blen)
{
	if (!reply_fits(r, alen + blen))
		return -EINVAL;
	iov_copy_to(r->in, r->nin, sizeof(struct fuse_out_header), a, alen);
	if (blen)
		iov_copy_to(r->in, r->nin, sizeof(struct fuse_out_header) + alen, b, blen);
	reply_header(r, 0, alen + blen);
	return 0;
}

static int reply_ok(struct fs_req *r, const void *a, size_t alen)
{
	return reply_ok2(r, a, alen, NULL, 0);
}

/* A system call's result as the reply of an operation with no data. */
static int reply_call(struct fs_req *r, int ret)
{
	if (ret < 0)
		return -errno;
	reply_header(r, 0, 0);
	return 0;
}

/* --- arguments --- */

static int arg_get(struct fs_req *r, void *dst, size_t len)
{
	if (r->arg_len < len)
		return -EINVAL;
	if (len)
		memcpy(dst, r->arg, len);
	r->arg += len;
	r->arg_len -= len;
	return 0;
}

/* A NUL-terminated string of at most max bytes (without the NUL). */
static const char *arg_str(struct fs_req *r, size_t max)
{
	const char *s = (const char *)r->arg;
	size_t len = strnlen(s, MIN(r->arg_len, max + 1));

	if (len >= r->arg_len || len > max)
		return NULL;
	r->arg += len + 1;
	r->arg_len -= len + 1;
	return s;
}

/* A directory entry name. */
static int arg_name(struct fs_req *r, const char **name)
{
	*name = arg_str(r, NAME_MAX + 1);
	return *name ? fs_name_check(*name) : -EINVAL;
}

/* --- inodes and files --- */

static struct fs_node *req_node(struct fs_req *r, uint64_t nodeid)
{
	return fs_node_get(&r->s->nodes, nodeid);
}

/* A node that must be a directory: its fd, or -errno. */
static int req_dir_fd(struct fs_req *r, uint64_t nodeid)
{
	struct fs_node *n = req_node(r, nodeid);

	if (n == NULL)
		return -ESTALE;
	return n->type == S_IFDIR ? n->fd : -ENOTDIR;
}

/* The arguments of the operations on a name in the header's directory:
 * the fixed part (len bytes into in), then the name. */
static int dir_and_name(struct fs_req *r, void *in, size_t len, int *dirfd, const char **name)
{
	int ret = arg_get(r, in, len);

	if (ret == 0 && (ret = *dirfd = req_dir_fd(r, r->h.nodeid)) >= 0)
		ret = arg_name(r, name);
	return ret < 0 ? ret : 0;
}

/* The arguments of the operations on an open file, whose first field is
 * the handle: the handle, or NULL with *err set. */
static struct fs_handle *file_args(struct fs_req *r, void *in, size_t len, bool dir, int *err)
{
	struct fs_handle *h;
	uint64_t fh;

	if ((*err = arg_get(r, in, len)) < 0)
		return NULL;
	memcpy(&fh, in, sizeof(fh));
	h = fs_handle_get(&r->s->nodes, fh);
	if (h == NULL || h->dir != dir) {
		*err = -EBADF;
		return NULL;
	}
	return h;
}

/* Open an O_PATH fd as a real file (the kernel checks access as for any open). */
static int reopen(struct fs_server *s, int fd, int flags)
{
	char name[16];
	int r;

	snprintf(name, sizeof(name), "%d", fd);
	r = openat(s->proc_fd, name, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
	return r < 0 ? -errno : r;
}

/* The path of an O_PATH fd, for the calls that take no fd (xattrs, chmod). */
static void proc_path(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

static uint32_t encode_dev(dev_t d)
{
	/* The kernel's new_encode_dev(): what the guest decodes. */
	unsigned maj = major(d), min = minor(d);

	return (min & 0xff) | (maj & 0xfff) << 8 | (min & ~0xffu) << 12;
}

static void fill_attr(struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)MIN(st->st_nlink, (nlink_t)UINT32_MAX);
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = encode_dev(st->st_rdev);
	a->blksize = (uint32_t)st->st_blksize;
}

static void fill_entry(struct fuse_entry_out *eo, uint64_t nodeid, const struct stat *st)
{
	memset(eo, 0, sizeof(*eo));
	eo->nodeid = nodeid;
	eo->entry_valid = FS_CACHE_SECONDS;
	eo->attr_valid = FS_CACHE_SECONDS;
	fill_attr(&eo->attr, st);
}

static int stat_node(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int reply_attr(struct fs_req *r, int fd)
{
	struct fuse_attr_out ao = {.attr_valid = FS_CACHE_SECONDS};
	struct stat st;
	int ret = fd >= 0 ? stat_node(fd, &st) : fd;

	if (ret < 0)
		return ret;
	fill_attr(&ao.attr, &st);
	return reply_ok(r, &ao, sizeof(ao));
}

/* The reply to LOOKUP and to what makes a name: one lookup of its inode
 * (fd: O_PATH, taken over). */
static int reply_entry(struct fs_req *r, int fd)
{
	struct fuse_entry_out eo;
	struct stat st;
	uint64_t id;
	int ret = fd < 0 ? fd : fs_node_add_fd(&r->s->nodes, fd, &id, &st);

	if (ret < 0)
		return ret;
	fill_entry(&eo, id, &st);
	return reply_ok(r, &eo, sizeof(eo));
}

/*
 * A file the guest just created (fd: O_PATH) gets what it would have had
 * if the guest caller had created it: the caller's owner (the group of a
 * set-group-ID directory, as Linux does), and the mode bits this
 * process's umask took away (the guest applied its own umask already).
 */
static void adopt_new_file(struct fs_req *r, int dirfd, int fd, mode_t mode)
{
	struct fs_server *s = r->s;
	struct stat dir, st;
	char path[32];

	if (s->chown_new) {
		gid_t gid = r->h.gid;
		if (fstat(dirfd, &dir) == 0 && (dir.st_mode & S_ISGID))
			gid = dir.st_gid;
		if (fchownat(fd, "", r->h.uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			log_debug("%s: chown of a new file to %u:%u: %s", s->what, r->h.uid, gid, strerror(errno));
	}
	if (stat_node(fd, &st) < 0 || S_ISLNK(st.st_mode))
		return;
	/* chown() cleared set-ID bits the caller asked for; put them back too. */
	mode = (st.st_mode & 07777) | (mode & (s->umask | S_ISUID | S_ISGID | S_ISVTX) & 07777);
	if (mode != (st.st_mode & 07777)) {
		proc_path(fd, path, sizeof(path));
		if (chmod(path, mode) < 0)
			log_debug("%s: chmod of a new file: %s", s->what, strerror(errno));
	}
}

/* After mkdir, mknod, symlink (ret: theirs): the new file's inode. */
static int reply_new_entry(struct fs_req *r, int ret, int dirfd, const char *name, mode_t mode)
{
	int fd;

	if (ret < 0)
		return -errno;
	fd = fs_open_beneath(dirfd, name, O_PATH, 0);
	if (fd >= 0)
		adopt_new_file(r, dirfd, fd, mode);
	return reply_entry(r, fd);
}

/* --- names --- */

static int do_lookup(struct fs_req *r)
{
	const char *name;
	int dirfd, ret = dir_and_name(r, NULL, 0, &dirfd, &name);

	return ret < 0 ? ret : reply_entry(r, fs_open_beneath(dirfd, name, O_PATH, 0));
}

static int do_forget(struct fs_req *r)
{
	struct fuse_forget_in in;

	if (arg_get(r, &in, sizeof(in)) == 0)
		fs_node_forget(&r->s->nodes, r->h.nodeid, in.nlookup);
	return 0;
}

static int do_batch_forget(struct fs_req *r)
{
	struct fuse_batch_forget_in in;
	struct fuse_forget_one one;

	/* count is the guest's; the arguments' length bounds the loop. */
	if (arg_get(r, &in, sizeof(in)) == 0)
		for (uint32_t i = 0; i < in.count && arg_get(r, &one, sizeof(one)) == 0; i++)
			fs_node_forget(&r->s->nodes, one.nodeid, one.nlookup);
	return 0;
}

static int do_symlink(struct fs_req *r)
{
	const char *name, *target;
	int dirfd, ret = dir_and_name(r, NULL, 0, &dirfd, &name);

	if (ret < 0)
		return ret;
	/* The target is only text: it is never followed on the host. */
	target = arg_str(r, PATH_MAX - 1);
	if (target == NULL || *target == '\0')
		return target ? -ENOENT : -ENAMETOOLONG;
	return reply_new_entry(r, symlinkat(target, dirfd, name), dirfd, name, 0);
}

static int do_mknod(struct fs_req *r)
{
	struct fuse_mknod_in in;
	const char *name;
	int dirfd, ret = dir_and_name(r, &in, sizeof(in), &dirfd, &name);
	mode_t type, perm;

	if (ret < 0)
		return ret;
	type = in.mode & S_IFMT;
	perm = in.mode & 07777;
	/* A device node in the shared directory would be a host device. */
	if (type == S_IFCHR || type == S_IFBLK)
		return -EPERM;
	if (type != 0 && type != S_IFREG && type != S_IFIFO && type != S_IFSOCK)
		return -EINVAL;
	return reply_new_entry(r, mknodat(dirfd, name, (type ? type : S_IFREG) | perm, 0), dirfd, name, perm);
}

static int do_mkdir(struct fs_req *r)
{
	struct fuse_mkdir_in in;
	const char *name;
	int dirfd, ret = dir_and_name(r, &in, sizeof(in), &dirfd, &name);

	if (ret < 0)
		return ret;
	return reply_new_entry(r, mkdirat(dirfd, name, in.mode & 07777), dirfd, name, in.mode & 07777);
}

static int do_unlink(struct fs_req *r)
{
	const char *name;
	int dirfd, ret = dir_and_name(r, NULL, 0, &dirfd, &name);

	return ret < 0 ? ret : reply_call(r, unlinkat(dirfd, name, r->h.opcode == FUSE_RMDIR ? AT_REMOVEDIR : 0));
}

static int do_rename(struct fs_req *r)
{
	struct fuse_rename2_in in = {0};
	const char *oldname, *newname;
	int olddirfd, newdirfd, ret;

	/* RENAME's arguments are RENAME2's without the flags. */
	ret = dir_and_name(r, &in, r->h.opcode == FUSE_RENAME2 ? sizeof(in) : sizeof(struct fuse_rename_in), &olddirfd,
			   &oldname);
	if (ret < 0 || (ret = arg_name(r, &newname)) < 0)
		return ret;
	if ((newdirfd = req_dir_fd(r, in.newdir)) < 0)
		return newdirfd;
	/* RENAME_WHITEOUT would make a device node (0, 0). */
	if (in.flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	return reply_call(r, (int)syscall(SYS_renameat2, olddirfd, oldname, newdirfd, newname, in.flags));
}

static int do_link(struct fs_req *r)
{
	struct fuse_link_in in;
	struct fs_node *old;
	const char *name;
	char path[32];
	int dirfd, ret = dir_and_name(r, &in, sizeof(in), &dirfd, &name);

	if (ret < 0)
		return ret;
	if ((old = req_node(r, in.oldnodeid)) == NULL)
		return -ESTALE;
	if (old->type == S_IFDIR)
		return -EPERM;
	ret = linkat(old->fd, "", dirfd, name, AT_EMPTY_PATH);
	if (ret < 0 && errno == ENOENT && old->type != S_IFLNK) {
		/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH: the inode through /proc then. */
		proc_path(old->fd, path, sizeof(path));
		ret = linkat(AT_FDCWD, path, dirfd, name, AT_SYMLINK_FOLLOW);
	}
	/* A new name, not a new file: its owner and mode stay. */
	return ret < 0 ? -errno : reply_entry(r, fs_open_beneath(dirfd, name, O_PATH, 0));
}

/* --- attributes --- */

static int do_getattr(struct fs_req *r)
{
	struct fuse_getattr_in in;
	struct fs_handle *fh;
	struct fs_node *n;
	struct stat st;
	struct fuse_attr_out ao = {.attr_valid = FS_CACHE_SECONDS};
	int ret = arg_get(r, &in, sizeof(in));

	if (ret < 0)
		return ret;
	if ((n = req_node(r, r->h.nodeid)) == NULL)
		return -ESTALE;
	if ((in.getattr_flags & FUSE_GETATTR_FH) && (fh = fs_handle_get(&r->s->nodes, in.fh)) != NULL) {
		if (fstat(fh->fd, &st) < 0)
			return -errno;
		fill_attr(&ao.attr, &st);
		return reply_ok(r, &ao, sizeof(ao));
	}
	return reply_attr(r, n->fd);
}

/* Truncate a node: through the guest's open file when it names one. */
static int truncate_node(struct fs_req *r, const struct fs_node *n, const struct fuse_setattr_in *in)
{
	struct fs_handle *h = (in->valid & FATTR_FH) ? fs_handle_get(&r->s->nodes, in->fh) : NULL;
	int fd, ret;

	if (in->size > (uint64_t)INT64_MAX)
		return -EINVAL;
	if (n->type != S_IFREG)
		return n->type == S_IFDIR ? -EISDIR : -EINVAL;
	if (h && !h->dir)
		return ftruncate(h->fd, (off_t)in->size) < 0 ? -errno : 0;
	fd = reopen(r->s, n->fd, O_WRONLY);
	if (fd < 0)
		return fd;
	ret = ftruncate(fd, (off_t)in->size) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

static bool timestamp_ok(const struct timespec *ts)
{
	return ts->tv_nsec == UTIME_NOW || ts->tv_nsec == UTIME_OMIT || (ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L);
}

static int set_times(const struct fs_node *n, const struct fuse_setattr_in *in)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
	char path[32];

	if (in->valid & FATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_ATIME)
		ts[0] = (struct timespec){(time_t)in->atime, in->atimensec};
	if (in->valid & FATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_MTIME)
		ts[1] = (struct timespec){(time_t)in->mtime, in->mtimensec};
	if (!timestamp_ok(&ts[0]) || !timestamp_ok(&ts[1]))
		return -EINVAL;
	if (utimensat(n->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno != EINVAL || n->type == S_IFLNK)
		return -errno;
	/* A kernel without AT_EMPTY_PATH here: the same inode through /proc. */
	proc_path(n->fd, path, sizeof(path));
	return utimensat(AT_FDCWD, path, ts, 0) < 0 ? -errno : 0;
}

static int setattr_node(struct fs_req *r, const struct fs_node *n, const struct fuse_setattr_in *in)
{
	char path[32];
	int ret;

	if (in->valid & FATTR_MODE) {
		if (n->type == S_IFLNK)
			return -EOPNOTSUPP;
		proc_path(n->fd, path, sizeof(path));
		if (chmod(path, in->mode & 07777) < 0)
			return -errno;
	}
	if (in->valid & (FATTR_UID | FATTR_GID)) {
		uid_t uid = (in->valid & FATTR_UID) ? in->uid : (uid_t)-1;
		gid_t gid = (in->valid & FATTR_GID) ? in->gid : (gid_t)-1;
		if (fchownat(n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if ((in->valid & FATTR_SIZE) && (ret = truncate_node(r, n, in)) < 0)
		return ret;
	if (in->valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW))
		return set_times(n, in);
	return 0;
}

static int do_setattr(struct fs_req *r)
{
	struct fuse_setattr_in in;
	struct fs_node *n;
	int ret = arg_get(r, &in, sizeof(in));

	if (ret < 0)
		return ret;
	if ((n = req_node(r, r->h.nodeid)) == NULL)
		return -ESTALE;
	ret = setattr_node(r, n, &in);
	return ret < 0 ? ret : reply_attr(r, n->fd);
}

static int do_readlink(struct fs_req *r)
{
	struct fs_node *n = req_node(r, r->h.nodeid);
	ssize_t len;

	if (n == NULL || n->type != S_IFLNK)
		return n ? -EINVAL : -ESTALE;
	len = readlinkat(n->fd, "", (char *)r->s->reply, PATH_MAX);
	return len < 0 ? -errno : reply_ok(r, r->s->reply, (size_t)len);
}

static int do_statfs(struct fs_req *r)
{
	struct fuse_statfs_out so;
	struct fs_node *n = req_node(r, r->h.nodeid);
	struct statfs st;

	if (n == NULL)
		return -ESTALE;
	if (fstatfs(n->fd, &st) < 0)
		return -errno;
	memset(&so, 0, sizeof(so));
	so.st.blocks = st.f_blocks;
	so.st.bfree = st.f_bfree;
	so.st.bavail = st.f_bavail;
	so.st.files = st.f_files;
	so.st.ffree = st.f_ffree;
	so.st.bsize = (uint32_t)st.f_bsize;
	so.st.namelen = (uint32_t)st.f_namelen;
	so.st.frsize = (uint32_t)st.f_frsize;
	return reply_ok(r, &so, sizeof(so));
}

/* --- open files --- */

static int reply_open(struct fs_req *r, int fd, bool dir)
{
	struct fuse_open_out oo = {0};
	int ret = fd < 0 ? fd : fs_handle_add(&r->s->nodes, fd, dir, &oo.fh);

	return ret < 0 ? ret : reply_ok(r, &oo, sizeof(oo));
}

static int do_open(struct fs_req *r)
{
	struct fuse_open_in in;
	struct fs_node *n;
	bool dir = r->h.opcode == FUSE_OPENDIR;
	int ret = arg_get(r, &in, sizeof(in));

	if (ret < 0)
		return ret;
	if ((n = req_node(r, r->h.nodeid)) == NULL)
		return -ESTALE;
	if (dir)
		return n->type == S_IFDIR ? reply_open(r, reopen(r->s, n->fd, O_RDONLY | O_DIRECTORY), true) : -ENOTDIR;
	/* Special files are opened by the guest's kernel, never here. */
	if (n->type != S_IFREG)
		return n->type == S_IFDIR ? -EISDIR : n->type == S_IFLNK ? -ELOOP : -EACCES;
	if (r->s->readonly && ((in.flags & O_ACCMODE) != O_RDONLY || (in.flags & O_TRUNC)))
		return -EROFS;
	return reply_open(r, reopen(r->s, n->fd, (int)(in.flags & OPEN_FLAGS_PASSED)), false);
}

/* CREATE: the new file's fd, opened O_EXCL first so that only a file made
 * here is given to the caller; *pathfd: an O_PATH fd of it. */
static int create_file(struct fs_req *r, const struct fuse_create_in *in, int dirfd, const char *name, int *pathfd)
{
	int flags = (int)(in->flags & OPEN_FLAGS_PASSED), fd;
	bool created = true;

	fd = fs_open_beneath(dirfd, name, flags | O_CREAT | O_EXCL, in->mode & 07777);
	if (fd == -EEXIST && !(in->flags & O_EXCL)) {
		created = false;
		fd = fs_open_beneath(dirfd, name, flags, 0);
	}
	if (fd < 0)
		return fd;
	*pathfd = reopen(r->s, fd, O_PATH);
	if (*pathfd < 0) {
		close(fd);
		return *pathfd;
	}
	if (created)
		adopt_new_file(r, dirfd, *pathfd, in->mode & 07777);
	return fd;
}

static int do_create(struct fs_req *r)
{
	struct fuse_create_in in;
	struct fuse_entry_out eo;
	struct fuse_open_out oo = {0};
	struct stat st;
	const char *name;
	uint64_t id;
	int dirfd, fd, pathfd, ret = dir_and_name(r, &in, sizeof(in), &dirfd, &name);

	if (ret < 0)
		return ret;
	if ((in.mode & S_IFMT) != S_IFREG && (in.mode & S_IFMT) != 0)
		return -EINVAL;
	fd = create_file(r, &in, dirfd, name, &pathfd);
	if (fd < 0)
		return fd;
	ret = fs_node_add_fd(&r->s->nodes, pathfd, &id, &st);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	ret = fs_handle_add(&r->s->nodes, fd, false, &oo.fh);
	if (ret < 0) {
		fs_node_forget(&r->s->nodes, id, 1);
		return ret;
	}
	fill_entry(&eo, id, &st);
	return reply_ok2(r, &eo, sizeof(eo), &oo, sizeof(oo));
}

/* preadv() or pwritev() of all of s->iov[n] from off: the bytes moved
 * before the end of the file or an error, or -errno when none were. */
static ssize_t transfer(struct fs_server *s, int fd, unsigned n, uint64_t off, bool write)
{
	struct iovec *iov = s->iov;
	size_t done = 0;

	while (n > 0) {
		ssize_t got = write ? pwritev(fd, iov, (int)n, (off_t)(off + done))
				    : preadv(fd, iov, (int)n, (off_t)(off + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (done == 0)
				return got < 0 ? -errno : (write ? -EIO : 0);
			break;
		}
		done += (size_t)got;
		/* Past what moved, for the next round. */
		while (n > 0 && (size_t)got >= iov->iov_len) {
			got -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + got;
			iov->iov_len -= (size_t)got;
		}
	}
	return (ssize_t)done;
}

/* A guest's offset and length as a range a file can have. */
static bool range_ok(uint64_t off, uint64_t len)
{
	return off <= (uint64_t)INT64_MAX && len <= (uint64_t)INT64_MAX - off;
}

static int do_read(struct fs_req *r)
{
	struct fuse_read_in in;
	struct fs_handle *h;
	size_t want;
	ssize_t done;
	int err;

	if ((h = file_args(r, &in, sizeof(in), false, &err)) == NULL)
		return err;
	/* Straight into the guest's buffers after the header, as much as they hold. */
	want = (size_t)MIN((uint64_t)MIN(in.size, (uint32_t)FS_MAX_IO), r->in_len - sizeof(struct fuse_out_header));
	if (!range_ok(in.offset, want))
		return -EINVAL;
	done = transfer(r->s, h->fd,
			iov_slice(r->in, r->nin, sizeof(struct fuse_out_header), want, r->s->iov, FS_MAX_SEGS),
			in.offset, false);
	if (done < 0)
		return (int)done;
	count(&r->s->stats.read_bytes, (uint64_t)done);
	reply_header(r, 0, (size_t)done);
	return 0;
}

static int do_write(struct fs_req *r)
{
	struct fuse_write_in in;
	struct fuse_write_out wo = {0};
	struct fs_handle *h;
	uint64_t data_at = sizeof(struct fuse_in_header) + sizeof(in);
	ssize_t done;
	int err;

	if ((h = file_args(r, &in, sizeof(in), false, &err)) == NULL)
		return err;
	/* The data follows the arguments in the request (h.len counts it). */
	if (in.size > FS_MAX_IO || r->h.len < data_at + in.size || !range_ok(in.offset, in.size))
		return -EINVAL;
	done = transfer(r->s, h->fd, iov_slice(r->out, r->nout, data_at, in.size, r->s->iov, FS_MAX_SEGS), in.offset,
			true);
	if (done < 0)
		return (int)done;
	count(&r->s->stats.write_bytes, (uint64_t)done);
	wo.size = (uint32_t)done;
	return reply_ok(r, &wo, sizeof(wo));
}

static int do_release(struct fs_req *r)
{
	struct fuse_release_in in;
	int err;

	if (file_args(r, &in, sizeof(in), r->h.opcode == FUSE_RELEASEDIR, &err) == NULL)
		return err;
	return reply_call(r, fs_handle_close(&r->s->nodes, in.fh));
}

static int do_fsync(struct fs_req *r)
{
	struct fuse_fsync_in in;
	struct fs_handle *h;
	int err;

	if ((h = file_args(r, &in, sizeof(in), r->h.opcode == FUSE_FSYNCDIR, &err)) == NULL)
		return err;
	return reply_call(r, (in.fsync_flags & FUSE_FSYNC_FDATASYNC) ? fdatasync(h->fd) : fsync(h->fd));
}

static int do_flush(struct fs_req *r)
{
	struct fuse_flush_in in;
	int err;

	/* Nothing is buffered here; locks stay in the guest. */
	if (file_args(r, &in, sizeof(in), false, &err) == NULL)
		return err;
	return reply_call(r, 0);
}

static int do_fallocate(struct fs_req *r)
{
	const uint32_t modes = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
	struct fuse_fallocate_in in;
	struct fs_handle *h;
	int err;

	if ((h = file_args(r, &in, sizeof(in), false, &err)) == NULL)
		return err;
	if (in.mode & ~modes)
		return -EOPNOTSUPP;
	if (!range_ok(in.offset, in.length))
		return -EINVAL;
	return reply_call(r, fallocate(h->fd, (int)in.mode, (off_t)in.offset, (off_t)in.length));
}

static int do_lseek(struct fs_req *r)
{
	struct fuse_lseek_in in;
	struct fuse_lseek_out lo;
	struct fs_handle *h;
	off_t off;
	int err;

	if ((h = file_args(r, &in, sizeof(in), false, &err)) == NULL)
		return err;
	if (in.offset > (uint64_t)INT64_MAX ||
	    (in.whence != SEEK_SET && in.whence != SEEK_END && in.whence != SEEK_DATA && in.whence != SEEK_HOLE))
		return -EINVAL;
	off = lseek(h->fd, (off_t)in.offset, (int)in.whence);
	if (off < 0)
		return -errno;
	lo.offset = (uint64_t)off;
	return reply_ok(r, &lo, sizeof(lo));
}

static int do_copy_file_range(struct fs_req *r)
{
	struct fuse_copy_file_range_in in;
	struct fuse_write_out wo = {0};
	struct fs_handle *src, *dst;
	loff_t off_in, off_out;
	ssize_t n;
	int err;

	if ((src = file_args(r, &in, sizeof(in), false, &err)) == NULL)
		return err;
	if ((dst = fs_handle_get(&r->s->nodes, in.fh_out)) == NULL || dst->dir)
		return -EBADF;
	if (in.flags != 0 || !range_ok(in.off_in, in.len) || !range_ok(in.off_out, in.len))
		return -EINVAL;
	off_in = (loff_t)in.off_in;
	off_out = (loff_t)in.off_out;
	n = copy_file_range(src->fd, &off_in, dst->fd, &off_out, (size_t)MIN(in.len, (uint64_t)FS_MAX_COPY), 0);
	if (n < 0)
		return -errno;
	wo.size = (uint32_t)n;
	return reply_ok(r, &wo, sizeof(wo));
}

/* --- extended attributes: user.* and security.capability only --- */

/*
 * The guest may read and write user.* (applications) and
 * security.capability (file capabilities, which container images carry).
 * Every other namespace is the host's business: trusted.* and security.*
 * drive host mechanisms (overlayfs, LSMs), system.* are ACLs, which the
 * guest does not use (its kernel checks modes itself).
 */
static bool xattr_allowed(const char *name)
{
	return strncmp(name, "user.", 5) == 0 || strcmp(name, "security.capability") == 0;
}

/* The path through which the header node's xattrs are reached: 1, or 0
 * when it has none the guest may see (symlinks, special files), or -errno. */
static int xattr_path(struct fs_req *r, char *path, size_t len)
{
	struct fs_node *n = req_node(r, r->h.nodeid);

	if (n == NULL)
		return -ESTALE;
	if (n->type != S_IFREG && n->type != S_IFDIR)
		return 0;
	proc_path(n->fd, path, len);
	return 1;
}

/* GETXATTR and LISTXATTR: a size query (size 0) or the data. */
static int reply_xattr(struct fs_req *r, uint32_t size, const void *data, size_t len)
{
	struct fuse_getxattr_out go = {.size = (uint32_t)len};

	if (size == 0)
		return reply_ok(r, &go, sizeof(go));
	return len > size ? -ERANGE : reply_ok(r, data, len);
}

static int do_getxattr(struct fs_req *r)
{
	struct fuse_getxattr_in in;
	const char *name;
	char path[32];
	ssize_t len;
	int ret = arg_get(r, &in, sizeof(in));

	if (ret < 0 || (name = arg_str(r, XATTR_NAME_MAX)) == NULL)
		return -EINVAL;
	if ((ret = xattr_path(r, path, sizeof(path))) <= 0 || !xattr_allowed(name))
		return ret < 0 ? ret : -ENODATA;
	len = getxattr(path, name, r->s->reply, MIN(in.size, (uint32_t)XATTR_SIZE_MAX));
	return len < 0 ? -errno : reply_xattr(r, in.size, r->s->reply, (size_t)len);
}

static int do_listxattr(struct fs_req *r)
{
	struct fuse_getxattr_in in;
	char path[32], *list = (char *)r->s->reply;
	size_t kept = 0;
	ssize_t len;
	int ret = arg_get(r, &in, sizeof(in));

	if (ret < 0)
		return ret;
	if ((ret = xattr_path(r, path, sizeof(path))) <= 0)
		return ret < 0 ? ret : reply_xattr(r, in.size, list, 0);
	len = listxattr(path, list, XATTR_SIZE_MAX);
	if (len < 0)
		return errno == ERANGE ? -E2BIG : -errno;
	/* Keep the names the guest may see, in place. */
	for (char *p = list, *end = list + len; p < end;) {
		size_t l = strnlen(p, (size_t)(end - p));
		if (l < (size_t)(end - p) && xattr_allowed(p)) {
			memmove(list + kept, p, l + 1);
			kept += l + 1;
		}
		p += l + 1;
	}
	return reply_xattr(r, in.size, list, kept);
}

static int do_setxattr(struct fs_req *r)
{
	struct fuse_setxattr_in in = {0};
	const char *name;
	const void *value;
	char path[32];
	int ret;

	/* Without FUSE_SETXATTR_EXT the arguments are the 8-byte compat form. */
	if (arg_get(r, &in, FUSE_COMPAT_SETXATTR_IN_SIZE) < 0 || (name = arg_str(r, XATTR_NAME_MAX)) == NULL ||
	    in.size > XATTR_SIZE_MAX || r->arg_len < in.size || (in.flags & ~(uint32_t)(XATTR_CREATE | XATTR_REPLACE)))
		return -EINVAL;
	value = r->arg;
	if ((ret = xattr_path(r, path, sizeof(path))) <= 0 || !xattr_allowed(name))
		return ret < 0 ? ret : -EPERM;
	return reply_call(r, setxattr(path, name, value, in.size, (int)in.flags));
}

static int do_removexattr(struct fs_req *r)
{
	const char *name = arg_str(r, XATTR_NAME_MAX);
	char path[32];
	int ret;

	if (name == NULL)
		return -EINVAL;
	if ((ret = xattr_path(r, path, sizeof(path))) <= 0 || !xattr_allowed(name))
		return ret < 0 ? ret : -EPERM;
	return reply_call(r, removexattr(path, name));
}

/* --- directories --- */

/* One entry of READDIR(PLUS) at out (room for it checked by the caller). */
static void put_dirent(struct fs_req *r, uint8_t *out, const struct dirent64 *d, size_t namelen, bool plus, int dirfd)
{
	struct fuse_dirent de = {
	    .ino = d->d_ino, .off = (uint64_t)d->d_off, .namelen = (uint32_t)namelen, .type = d->d_type};
	size_t at = 0;

	if (plus) {
		struct fuse_entry_out eo;
		struct stat st;
		uint64_t id;

		/* "." and "..", or a name that vanished: a plain entry (nodeid 0). */
		memset(&eo, 0, sizeof(eo));
		if (fs_name_check(d->d_name) == 0 && fs_node_lookup(&r->s->nodes, dirfd, d->d_name, &id, &st) == 0)
			fill_entry(&eo, id, &st);
		memcpy(out, &eo, sizeof(eo));
		at = sizeof(eo);
	}
	memcpy(out + at, &de, FUSE_NAME_OFFSET);
	memcpy(out + at + FUSE_NAME_OFFSET, d->d_name, namelen);
	at += FUSE_NAME_OFFSET + namelen;
	memset(out + at, 0, FUSE_DIRENT_ALIGN(at) - at);
}

/* READDIR and READDIRPLUS. */
static int do_readdir(struct fs_req *r)
{
	struct fs_server *s = r->s;
	bool plus = r->h.opcode == FUSE_READDIRPLUS, full = false;
	struct fuse_read_in in;
	struct fs_handle *h;
	size_t size, used = 0;
	int err;

	if ((h = file_args(r, &in, sizeof(in), true, &err)) == NULL)
		return err;
	size =
	    (size_t)MIN((uint64_t)MIN(in.size, (uint32_t)FS_MAX_DIR_REPLY), r->in_len - sizeof(struct fuse_out_header));
	/* The offset is one a previous entry gave (d_off); the file system judges it. */
	if (in.offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	if (lseek(h->fd, (off_t)in.offset, SEEK_SET) < 0)
		return -errno;
	while (!full) {
		long n = syscall(SYS_getdents64, h->fd, s->dirents, FS_DIRENT_BUF);
		size_t pos = 0;

		if (n < 0 && used == 0)
			return -errno;
		if (n <= 0)
			break;
		while (pos + offsetof(struct dirent64, d_name) < (size_t)n) {
			const struct dirent64 *d = (const struct dirent64 *)(s->dirents + pos);
			size_t reclen = d->d_reclen, namelen, need;

			if (reclen <= offsetof(struct dirent64, d_name) || reclen > (size_t)n - pos)
				break;
			namelen = strnlen(d->d_name, reclen - offsetof(struct dirent64, d_name));
			need =
			    FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen) + (plus ? sizeof(struct fuse_entry_out) : 0);
			if (used + need > size) {
				full = true; /* the guest asks again from the last d_off it got */
				break;
			}
			put_dirent(r, s->reply + used, d, namelen, plus, h->fd);
			used += need;
			pos += reclen;
		}
	}
	return reply_ok(r, s->reply, used);
}

/* --- the file system --- */

static int do_syncfs(struct fs_req *r)
{
	struct fs_node *root = req_node(r, FS_ROOT_NODEID);
	int fd = reopen(r->s, root->fd, O_RDONLY | O_DIRECTORY), ret;

	if (fd < 0)
		return fd;
	ret = syncfs(fd);
	close(fd);
	return reply_call(r, ret);
}

static int do_init(struct fs_req *r)
{
	/* What the server wants of the guest's kernel, if it offers it. */
	const uint32_t wanted = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS |
				FUSE_READDIRPLUS_AUTO | FUSE_AUTO_INVAL_DATA | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS |
				FUSE_PARALLEL_DIROPS;
	struct fuse_init_in in = {0};
	struct fuse_init_out out = {0};

	/* 16 bytes before 7.36, 64 since. */
	if (arg_get(r, &in, offsetof(struct fuse_init_in, flags2)) < 0)
		return -EINVAL;
	if (in.major != FUSE_KERNEL_VERSION || in.minor < FS_MIN_MINOR) {
		log_warn("%s: the guest speaks FUSE %u.%u; %d.%d or newer is needed", r->s->what, in.major, in.minor,
			 FUSE_KERNEL_VERSION, FS_MIN_MINOR);
		return -EPROTO;
	}
	/* A new mount without an unmount before it: start afresh. */
	fs_nodes_reset(&r->s->nodes);
	out.major = FUSE_KERNEL_VERSION;
	out.minor = MIN(in.minor, (uint32_t)FUSE_KERNEL_MINOR_VERSION);
	out.max_readahead = in.max_readahead;
	out.flags = in.flags & wanted;
	out.max_background = 64;
	out.congestion_threshold = 48;
	out.max_write = FS_MAX_IO;
	out.time_gran = 1;
	out.max_pages = FS_MAX_IO / 4096;
	r->s->initialized = true;
	return reply_ok(r, &out, sizeof(out));
}

static int do_destroy(struct fs_req *r)
{
	fs_server_reset(r->s);
	return reply_call(r, 0);
}

/* --- dispatch --- */

enum {
	OP_NO_REPLY = 1 << 0, /* FORGET and BATCH_FORGET: the guest waits for no answer */
	OP_WRITES = 1 << 1,   /* changes the directory: EROFS when read-only */
};

static const struct fs_op {
	int (*fn)(struct fs_req *r);
	unsigned flags;
	uint32_t reply_min; /* the reply's fixed part: the guest's buffers must hold it */
} ops[] = {
    [FUSE_LOOKUP] = {do_lookup, 0, sizeof(struct fuse_entry_out)},
    [FUSE_FORGET] = {do_forget, OP_NO_REPLY, 0},
    [FUSE_GETATTR] = {do_getattr, 0, sizeof(struct fuse_attr_out)},
    [FUSE_SETATTR] = {do_setattr, OP_WRITES, sizeof(struct fuse_attr_out)},
    [FUSE_READLINK] = {do_readlink, 0, 0},
    [FUSE_SYMLINK] = {do_symlink, OP_WRITES, sizeof(struct fuse_entry_out)},
    [FUSE_MKNOD] = {do_mknod, OP_WRITES, sizeof(struct fuse_entry_out)},
    [FUSE_MKDIR] = {do_mkdir, OP_WRITES, sizeof(struct fuse_entry_out)},
    [FUSE_UNLINK] = {do_unlink, OP_WRITES, 0},
    [FUSE_RMDIR] = {do_unlink, OP_WRITES, 0},
    [FUSE_RENAME] = {do_rename, OP_WRITES, 0},
    [FUSE_LINK] = {do_link, OP_WRITES, sizeof(struct fuse_entry_out)},
    [FUSE_OPEN] = {do_open, 0, sizeof(struct fuse_open_out)},
    [FUSE_READ] = {do_read, 0, 0},
    [FUSE_WRITE] = {do_write, OP_WRITES, sizeof(struct fuse_write_out)},
    [FUSE_STATFS] = {do_statfs, 0, sizeof(struct fuse_statfs_out)},
    [FUSE_RELEASE] = {do_release, 0, 0},
    [FUSE_FSYNC] = {do_fsync, 0, 0},
    [FUSE_SETXATTR] = {do_setxattr, OP_WRITES, 0},
    [FUSE_GETXATTR] = {do_getxattr, 0, sizeof(struct fuse_getxattr_out)},
    [FUSE_LISTXATTR] = {do_listxattr, 0, sizeof(struct fuse_getxattr_out)},
    [FUSE_REMOVEXATTR] = {do_removexattr, OP_WRITES, 0},
    [FUSE_FLUSH] = {do_flush, 0, 0},
    [FUSE_INIT] = {do_init, 0, sizeof(struct fuse_init_out)},
    [FUSE_OPENDIR] = {do_open, 0, sizeof(struct fuse_open_out)},
    [FUSE_READDIR] = {do_readdir, 0, 0},
    [FUSE_RELEASEDIR] = {do_release, 0, 0},
    [FUSE_FSYNCDIR] = {do_fsync, 0, 0},
    [FUSE_CREATE] = {do_create, OP_WRITES, sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out)},
    [FUSE_DESTROY] = {do_destroy, 0, 0},
    [FUSE_BATCH_FORGET] = {do_batch_forget, OP_NO_REPLY, 0},
    [FUSE_FALLOCATE] = {do_fallocate, OP_WRITES, 0},
    [FUSE_READDIRPLUS] = {do_readdir, 0, 0},
    [FUSE_RENAME2] = {do_rename, OP_WRITES, 0},
    [FUSE_LSEEK] = {do_lseek, 0, sizeof(struct fuse_lseek_out)},
    [FUSE_COPY_FILE_RANGE] = {do_copy_file_range, OP_WRITES, sizeof(struct fuse_write_out)},
    [FUSE_SYNCFS] = {do_syncfs, 0, 0},
};

/* Check the request's framing and copy its arguments (WRITE's only up
 * to its data) out of guest memory, once.  0 or -errno. */
static int load_request(struct fs_req *r, const struct fs_op *op)
{
	size_t args;

	if (r->h.len < sizeof(r->h) || r->h.len > r->out_len)
		return -EINVAL;
	args = r->h.len - sizeof(r->h);
	if (r->h.opcode == FUSE_WRITE)
		args = MIN(args, sizeof(struct fuse_write_in));
	if (args > FS_MAX_ARGS)
		return -EINVAL;
	r->arg = r->s->args;
	r->arg_len = iov_copy_from(r->out, r->nout, sizeof(r->h), r->s->args, args);
	if (op == NULL)
		return -ENOSYS;
	if (!r->s->initialized && r->h.opcode != FUSE_INIT)
		return -EIO;
	if (r->s->readonly && (op->flags & OP_WRITES))
		return -EROFS;
	return 0;
}

uint32_t fs_server_handle(struct fs_server *s, const struct iovec *out, unsigned nout, const struct iovec *in,
			  unsigned nin)
{
	struct fs_req r = {.s = s, .out = out, .nout = nout, .in = in, .nin = nin};
	const struct fs_op *op;
	int ret;

	for (unsigned i = 0; i < nout; i++)
		r.out_len += out[i].iov_len;
	for (unsigned i = 0; i < nin; i++)
		r.in_len += in[i].iov_len;
	count(&s->stats.requests, 1);
	if (iov_copy_from(out, nout, 0, &r.h, sizeof(r.h)) != sizeof(r.h)) {
		/* No header, so no unique to answer to: an error with unique 0. */
		memset(&r.h, 0, sizeof(r.h));
		reply_header(&r, EINVAL, 0);
		return r.written;
	}
	op = r.h.opcode < ARRAY_SIZE(ops) && ops[r.h.opcode].fn ? &ops[r.h.opcode] : NULL;
	if (op && (op->flags & OP_NO_REPLY)) {
		if (load_request(&r, op) == 0)
			op->fn(&r);
		return 0;
	}
	ret = reply_fits(&r, op ? op->reply_min : 0) ? load_request(&r, op) : -EINVAL;
	if (ret == 0)
		ret = op->fn(&r);
	if (ret < 0)
		reply_header(&r, -ret, 0);
	return r.written;
}

void fs_server_reset(struct fs_server *s)
{
	fs_nodes_reset(&s->nodes);
	s->initialized = false;
}

void fs_server_get_stats(const struct fs_server *s, struct fs_server_stats *st)
{
	st->requests = __atomic_load_n(&s->stats.requests, __ATOMIC_RELAXED);
	st->errors = __atomic_load_n(&s->stats.errors, __ATOMIC_RELAXED);
	st->read_bytes = __atomic_load_n(&s->stats.read_bytes, __ATOMIC_RELAXED);
	st->write_bytes = __atomic_load_n(&s->stats.write_bytes, __ATOMIC_RELAXED);
}

void fs_server_free(struct fs_server *s)
{
	if (s == NULL)
		return;
	fs_nodes_destroy(&s->nodes);
	if (s->proc_fd >= 0)
		close(s->proc_fd);
	free(s->args);
	free(s->reply);
	free(s->dirents);
	free(s->what);
	free(s);
}

/* The tables hold an fd per inode the guest knows: let the process have
 * as many as it may, and give the tables all but a reserve. */
static uint32_t fd_budget(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 256;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? FS_MAX_FDS : MIN(rl.rlim_max, (rlim_t)FS_MAX_FDS);
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur > 2 * FS_FD_RESERVE)
		return (uint32_t)MIN(rl.rlim_cur - FS_FD_RESERVE, (rlim_t)FS_MAX_FDS);
	return (uint32_t)(rl.rlim_cur / 2);
}

int fs_server_new(const char *what, const char *path, bool readonly, struct fs_server **ret, struct err **e)
{
	struct fs_server *s = calloc(1, sizeof(*s));
	struct stat st;
	int root;

	if (s == NULL)
		return err_set(e, ENOMEM, "%s", what);
	s->proc_fd = -1;
	s->readonly = readonly;
	s->what = strdup(what);
	s->args = malloc(FS_MAX_ARGS);
	s->reply = malloc(FS_REPLY_BUF);
	s->dirents = malloc(FS_DIRENT_BUF);
	if (s->what == NULL || s->args == NULL || s->reply == NULL || s->dirents == NULL) {
		fs_server_free(s);
		return err_set(e, ENOMEM, "%s", what);
	}
	root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0 || fstat(root, &st) < 0) {
		int r = err_set(e, errno, "%s: directory '%s'", what, path);
		if (root >= 0)
			close(root);
		fs_server_free(s);
		return r;
	}
	if (fs_nodes_init(&s->nodes, root, fd_budget()) < 0) {
		fs_server_free(s);
		return err_set(e, ENOMEM, "%s", what);
	}
	s->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->proc_fd < 0) {
		int r = err_set(e, errno, "%s: /proc/self/fd (is /proc mounted?)", what);
		fs_server_free(s);
		return r;
	}
	s->chown_new = geteuid() == 0;
	/* Read, not set and reset: other threads may be creating files. */
	s->umask = (mode_t)proc_self_status("Umask", 8, 022) & 0777;
	*ret = s;
	return 0;
}
