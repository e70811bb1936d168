#include "common/file.h"
#include "image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "image/progress.h"
#include "image/tarpath.h"
#include "oci/util.h"

#define OVERLAY_OPAQUE_XATTR "trusted.overlay.opaque"

struct dir_time {
	char *path;
	struct timespec times[2];
};

struct unpack_ctx {
	int rootfd;
	const struct unpack_opts *o;
	struct unpack_stats *st;
	const char *layer;
	struct archive *ar;
	struct strmap written; /* paths this layer wrote, and their parents */
	char parent_path[4096];
	int parent_fd; /* cached O_PATH fd of parent_path */
	struct dir_time *dirs;
	size_t n_dirs, cap_dirs;
	char *buf;
};

static int entry_error(struct unpack_ctx *c, struct err **e, int code, const char *path, const char *what)
{
	if (code < 0)
		code = -code;
	return err_setx(e, code, "layer %s: entry '%s': %s%s%s", c->layer, path, what, code == EINVAL ? "" : ": ",
			code == EINVAL ? "" : strerror(code));
}

/* The parent directory of an entry, created (mode 0755) when missing;
 * resolved inside the rootfs. */
static int parent_fd(struct unpack_ctx *c, const char *parent, bool create, int *fd)
{
	struct stat st;
	int f;

	if (c->parent_fd >= 0 && strcmp(parent, c->parent_path) == 0) {
		*fd = c->parent_fd;
		return 0;
	}
	f = open_in_root(c->rootfd, parent, O_PATH | O_DIRECTORY, 0);
	if (f == -ENOENT && create) {
		f = mkdir_in_root(c->rootfd, parent, 0755, false);
		if (f >= 0 && (fstat(f, &st) < 0 || !S_ISDIR(st.st_mode))) {
			close(f);
			f = -ENOTDIR;
		}
	}
	if (f < 0)
		return f;
	if (c->parent_fd >= 0)
		close(c->parent_fd);
	c->parent_fd = f;
	snprintf(c->parent_path, sizeof(c->parent_path), "%s", parent);
	*fd = f;
	return 0;
}

static void forget_parent(struct unpack_ctx *c)
{
	if (c->parent_fd >= 0)
		close(c->parent_fd);
	c->parent_fd = -1;
	c->parent_path[0] = '\0';
}

/* Remove name in dirfd, whatever it is, never following a symlink. */
static int remove_existing(struct unpack_ctx *c, int dirfd, const char *name)
{
	/* A cached parent below what we remove would dangle; the parent of
	 * what we remove stays. */
	if (c->parent_fd != dirfd)
		forget_parent(c);
	return remove_tree_at(dirfd, name);
}

/* Flat form of an opaque whiteout: empty dir of what the layers below
 * put there, keeping what this layer wrote (whatever the order). */
static int clear_opaque(struct unpack_ctx *c, int dir, const char *path)
{
	DIR *d = fdopendir(dir);
	struct dirent *de;
	int r = 0;

	if (d == NULL) {
		close(dir);
		return -errno;
	}
	while ((de = readdir(d)) && r == 0) {
		char child[4096];
		int sub;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(child, sizeof(child), "%s%s%s", path, path[0] ? "/" : "", de->d_name) >=
		    sizeof(child)) {
			r = -ENAMETOOLONG;
			break;
		}
		if (!strmap_has(&c->written, child)) {
			r = remove_existing(c, dirfd(d), de->d_name);
			continue;
		}
		sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			r = clear_opaque(c, sub, child);
		else if (errno != ENOTDIR && errno != ELOOP)
			r = -errno;
	}
	closedir(d);
	return r;
}

static int apply_whiteout(struct unpack_ctx *c, const char *path, const char *target, struct err **e)
{
	char parent[4096];
	const char *name;
	int pfd, r;

	if (strmap_has(&c->written, target))
		return 0; /* whiteouts hide the layers below, not this one */
	tarpath_split(target, parent, sizeof(parent), &name);
	if (c->o->overlay_form) {
		if ((r = parent_fd(c, parent, true, &pfd)) < 0)
			return entry_error(c, e, r, path, "parent directory");
		if (mknodat(pfd, name, S_IFCHR | 0000, makedev(0, 0)) < 0 && errno != EEXIST)
			return entry_error(c, e, errno, path, "create the overlay whiteout");
		return 0;
	}
	r = parent_fd(c, parent, false, &pfd);
	if (r == -ENOENT || r == -ENOTDIR)
		return 0; /* nothing below to hide */
	if (r < 0)
		return entry_error(c, e, r, path, "parent directory");
	if ((r = remove_existing(c, pfd, name)) < 0)
		return entry_error(c, e, r, path, "apply the whiteout");
	return 0;
}

static int apply_opaque(struct unpack_ctx *c, const char *path, const char *dir, struct err **e)
{
	int fd, r;

	if (strmap_add_with_parents(&c->written, dir) < 0)
		return err_set(e, ENOMEM, "layer %s", c->layer);
	if (c->o->overlay_form) {
		int pfd = mkdir_in_root(c->rootfd, dir, 0755, false);
		if (pfd < 0)
			return entry_error(c, e, pfd, path, "directory");
		fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(pfd);
		if (fd < 0 || fsetxattr(fd, OVERLAY_OPAQUE_XATTR, "y", 1, 0) < 0) {
			r = entry_error(c, e, errno, path, "mark the directory opaque");
			if (fd >= 0)
				close(fd);
			return r;
		}
		close(fd);
		return 0;
	}
	fd = open_in_root(c->rootfd, dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd == -ENOENT || fd == -ENOTDIR)
		return 0;
	if (fd < 0)
		return entry_error(c, e, fd, path, "open the opaque directory");
	forget_parent(c);
	if ((r = clear_opaque(c, fd, dir)) < 0)
		return entry_error(c, e, r, path, "apply the opaque whiteout");
	return 0;
}

static bool xattr_allowed(const char *name)
{
	/* A layer must not steer overlayfs (redirects, opaque marks). */
	return strncmp(name, "trusted.overlay.", 16) != 0;
}

static void apply_xattrs(struct unpack_ctx *c, struct archive_entry *ent, int fd, int pfd, const char *name)
{
	const char *xname;
	const void *value;
	size_t size;

	if (archive_entry_xattr_reset(ent) == 0)
		return;
	while (archive_entry_xattr_next(ent, &xname, &value, &size) == ARCHIVE_OK) {
		if (!xattr_allowed(xname))
			continue;
		if (fd >= 0) {
			(void)fsetxattr(fd, xname, value, size, 0);
		} else {
			char p[64 + 4096];
			snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", pfd, name);
			(void)lsetxattr(p, xname, value, size, 0);
		}
	}
	(void)c;
}

static int set_owner_mode(struct unpack_ctx *c, struct archive_entry *ent, int fd)
{
	if (c->o->as_root) {
		if (fchown(fd, (uid_t)archive_entry_uid(ent), (gid_t)archive_entry_gid(ent)) < 0)
			return -errno;
	} else if (archive_entry_uid(ent) != getuid() || archive_entry_gid(ent) != getgid()) {
		c->st->owners_skipped++;
	}
	/* After chown, which clears setuid and setgid bits. */
	if (fchmod(fd, archive_entry_perm(ent) & 07777) < 0)
		return -errno;
	return 0;
}

/* The entry's data into fd; sparse files keep their holes. */
static int write_data(struct unpack_ctx *c, struct archive_entry *ent, int fd)
{
	const void *block;
	size_t size;
	la_int64_t offset, end = 0;
	int r;

	for (;;) {
		r = archive_read_data_block(c->ar, &block, &size, &offset);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return -EIO;
		if (size &&
		    (r = offset == end ? write_full(fd, block, size) : pwrite_full(fd, block, size, offset)) < 0)
			return r;
		if (offset != end && lseek(fd, offset + (la_int64_t)size, SEEK_SET) < 0)
			return -errno;
		end = offset + (la_int64_t)size;
		c->st->bytes += size;
	}
	if (archive_entry_size_is_set(ent) && end < archive_entry_size(ent) &&
	    ftruncate(fd, archive_entry_size(ent)) < 0)
		return -errno;
	return 0;
}

static void entry_times(struct archive_entry *ent, struct timespec t[2])
{
	t[0].tv_sec = archive_entry_atime_is_set(ent) ? archive_entry_atime(ent) : archive_entry_mtime(ent);
	t[0].tv_nsec = archive_entry_atime_is_set(ent) ? archive_entry_atime_nsec(ent) : archive_entry_mtime_nsec(ent);
	t[1].tv_sec = archive_entry_mtime(ent);
	t[1].tv_nsec = archive_entry_mtime_nsec(ent);
}

static int remember_dir_time(struct unpack_ctx *c, const char *path, struct archive_entry *ent)
{
	if (c->n_dirs == c->cap_dirs) {
		size_t cap = c->cap_dirs ? c->cap_dirs * 2 : 256;
		struct dir_time *n = realloc(c->dirs, cap * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		c->dirs = n;
		c->cap_dirs = cap;
	}
	c->dirs[c->n_dirs].path = strdup(path);
	if (c->dirs[c->n_dirs].path == NULL)
		return -ENOMEM;
	entry_times(ent, c->dirs[c->n_dirs].times);
	c->n_dirs++;
	return 0;
}

static int make_dir(struct unpack_ctx *c, struct archive_entry *ent, const char *path, int pfd, const char *name,
		    struct err **e)
{
	struct stat st;
	int fd, r;

	if (path[0] == '\0') {
		fd = dup(c->rootfd);
	} else {
		if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
		    (r = remove_existing(c, pfd, name)) < 0)
			return entry_error(c, e, r, path, "replace");
		if (mkdirat(pfd, name, 0700) < 0 && errno != EEXIST)
			return entry_error(c, e, errno, path, "mkdir");
		fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return entry_error(c, e, errno, path, "open");
	r = set_owner_mode(c, ent, fd);
	if (r == 0)
		apply_xattrs(c, ent, fd, -1, NULL);
	close(fd);
	if (r < 0)
		return entry_error(c, e, r, path, "set owner and mode");
	if (remember_dir_time(c, path, ent) < 0)
		return err_set(e, ENOMEM, "layer %s", c->layer);
	return 0;
}

static int make_file(struct unpack_ctx *c, struct archive_entry *ent, const char *path, int pfd, const char *name,
		     struct err **e)
{
	struct timespec t[2];
	int fd, r;

	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		if ((r = remove_existing(c, pfd, name)) < 0)
			return entry_error(c, e, r, path, "replace");
		fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return entry_error(c, e, errno, path, "create");
	r = write_data(c, ent, fd);
	if (r == -EIO) {
		close(fd);
		return err_setx(e, EIO, "layer %s: entry '%s': %s", c->layer, path, archive_error_string(c->ar));
	}
	if (r == 0)
		r = set_owner_mode(c, ent, fd);
	if (r == 0) {
		apply_xattrs(c, ent, fd, -1, NULL);
		entry_times(ent, t);
		(void)futimens(fd, t);
	}
	close(fd);
	return r < 0 ? entry_error(c, e, r, path, "write") : 0;
}

/* Symlinks, devices, FIFOs: created by name, owned without following. */
static int make_node(struct unpack_ctx *c, struct archive_entry *ent, const char *path, int pfd, const char *name,
		     struct err **e)
{
	mode_t type = archive_entry_filetype(ent);
	struct timespec t[2];
	struct stat st;
	int r;

	if ((type == AE_IFCHR || type == AE_IFBLK) && !c->o->as_root) {
		c->st->devices_skipped++;
		return 0;
	}
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (r = remove_existing(c, pfd, name)) < 0)
		return entry_error(c, e, r, path, "replace");
	if (type == AE_IFLNK) {
		const char *target = archive_entry_symlink(ent);
		if (target == NULL)
			return entry_error(c, e, EINVAL, path, "symlink without a target");
		if (symlinkat(target, pfd, name) < 0)
			return entry_error(c, e, errno, path, "symlink");
	} else {
		mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
		if (mknodat(pfd, name, kind | (archive_entry_perm(ent) & 0777), archive_entry_rdev(ent)) < 0)
			return entry_error(c, e, errno, path, "mknod");
	}
	if (c->o->as_root &&
	    fchownat(pfd, name, (uid_t)archive_entry_uid(ent), (gid_t)archive_entry_gid(ent), AT_SYMLINK_NOFOLLOW) < 0)
		return entry_error(c, e, errno, path, "chown");
	if (type != AE_IFLNK && fchmodat(pfd, name, archive_entry_perm(ent) & 07777, 0) < 0)
		return entry_error(c, e, errno, path, "chmod");
	apply_xattrs(c, ent, -1, pfd, name);
	entry_times(ent, t);
	(void)utimensat(pfd, name, t, AT_SYMLINK_NOFOLLOW);
	return 0;
}

static int make_hardlink(struct unpack_ctx *c, const char *link, const char *path, int pfd, const char *name,
			 struct err **e)
{
	char target[4096], tparent[4096];
	const char *tname;
	struct stat st;
	int tfd, r;

	if ((r = tarpath_clean(link, target, sizeof(target))) < 0 || target[0] == '\0')
		return err_setx(e, EINVAL, "layer %s: entry '%s': hard link to '%s' leaves the rootfs", c->layer, path,
				link);
	tarpath_split(target, tparent, sizeof(tparent), &tname);
	tfd = open_in_root(c->rootfd, tparent, O_PATH | O_DIRECTORY, 0);
	if (tfd < 0)
		return err_setx(e, -tfd, "layer %s: entry '%s': hard link target '%s': %s", c->layer, path, target,
				strerror(-tfd));
	if (fstatat(tfd, tname, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = errno;
		close(tfd);
		return err_setx(e, r, "layer %s: entry '%s': hard link target '%s': %s%s", c->layer, path, target,
				strerror(r), c->o->overlay_form ? " (in this layer)" : "");
	}
	if (S_ISDIR(st.st_mode)) {
		close(tfd);
		return err_setx(e, EPERM, "layer %s: entry '%s': hard link to the directory '%s'", c->layer, path,
				target);
	}
	if (strcmp(target, path) != 0) {
		struct stat cur;
		if (fstatat(pfd, name, &cur, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !(cur.st_ino == st.st_ino && cur.st_dev == st.st_dev)) {
			r = remove_existing(c, pfd, name);
			/* pfd may have been the cached parent: get it again. */
			if (r == 0) {
				char parent[4096];
				const char *n2;
				tarpath_split(path, parent, sizeof(parent), &n2);
				r = parent_fd(c, parent, true, &pfd);
			}
			if (r < 0) {
				close(tfd);
				return entry_error(c, e, r, path, "replace");
			}
		}
		if (linkat(tfd, tname, pfd, name, 0) < 0 && errno != EEXIST) {
			r = errno;
			close(tfd);
			return entry_error(c, e, r, path, "link");
		}
	}
	close(tfd);
	return 0;
}

static int apply_entry(struct unpack_ctx *c, struct archive_entry *ent, struct err **e)
{
	const char *raw = archive_entry_pathname(ent);
	char path[4096], target[4096], parent[4096];
	const char *name, *link;
	int kind, pfd, r;

	if (raw == NULL)
		return err_setx(e, EINVAL, "layer %s: an entry without a name", c->layer);
	r = tarpath_clean(raw, path, sizeof(path));
	if (r == -EINVAL)
		return err_setx(e, EINVAL, "layer %s: entry '%s': path leaves the rootfs", c->layer, raw);
	if (r < 0)
		return entry_error(c, e, r, raw, "name");
	kind = tarpath_classify(path, target, sizeof(target));
	if (kind < 0)
		return err_setx(e, EINVAL, "layer %s: entry '%s': malformed whiteout", c->layer, raw);
	c->st->entries++;
	if (kind == TARPATH_WHITEOUT)
		return apply_whiteout(c, path, target, e);
	if (kind == TARPATH_OPAQUE)
		return apply_opaque(c, path, target, e);
	if (kind == TARPATH_RESERVED)
		return 0;
	if (strmap_add_with_parents(&c->written, path) < 0)
		return err_set(e, ENOMEM, "layer %s", c->layer);
	link = archive_entry_hardlink(ent);
	if (path[0] == '\0') {
		if (archive_entry_filetype(ent) != AE_IFDIR)
			return err_setx(e, EINVAL, "layer %s: entry '%s': the root must be a directory", c->layer, raw);
		return make_dir(c, ent, path, c->rootfd, ".", e);
	}
	tarpath_split(path, parent, sizeof(parent), &name);
	if ((r = parent_fd(c, parent, true, &pfd)) < 0)
		return entry_error(c, e, r, path, "parent directory");
	if (link)
		return make_hardlink(c, link, path, pfd, name, e);
	switch (archive_entry_filetype(ent)) {
	case AE_IFDIR:
		return make_dir(c, ent, path, pfd, name, e);
	case AE_IFREG:
		return make_file(c, ent, path, pfd, name, e);
	case AE_IFLNK:
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
		return make_node(c, ent, path, pfd, name, e);
	default:
		return err_setx(e, EINVAL, "layer %s: entry '%s': unsupported file type %#o", c->layer, path,
				(unsigned)archive_entry_filetype(ent));
	}
}

/* Directory times last: creating entries inside changes them. */
static void restore_dir_times(struct unpack_ctx *c)
{
	for (size_t i = c->n_dirs; i-- > 0;) {
		int fd = open_in_root(c->rootfd, c->dirs[i].path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
		if (fd >= 0) {
			(void)futimens(fd, c->dirs[i].times);
			close(fd);
		}
		free(c->dirs[i].path);
	}
	free(c->dirs);
	c->dirs = NULL;
	c->n_dirs = c->cap_dirs = 0;
}

int unpack_layer(int rootfd, struct layer_reader *lr, const char *layer_digest, const struct unpack_opts *o,
		 struct unpack_stats *st, struct err **e)
{
	struct unpack_ctx c = {
	    .rootfd = rootfd,
	    .o = o,
	    .st = st,
	    .layer = layer_digest,
	    .ar = lr->ar,
	    .parent_fd = -1,
	};
	struct archive_entry *ent;
	int r;

	strmap_init(&c.written);
	while ((r = layer_next(lr, &ent, e)) == 1)
		if ((r = apply_entry(&c, ent, e)) < 0)
			break;
	forget_parent(&c);
	if (r == 0)
		restore_dir_times(&c);
	for (size_t i = 0; i < c.n_dirs; i++)
		free(c.dirs[i].path);
	free(c.dirs);
	strmap_free(&c.written, NULL);
	return r;
}

static int open_layer(struct store *s, const struct store_loaded *img, size_t i, int *fd, struct layer_reader *lr,
		      struct err **e)
{
	const struct descriptor *d = &img->manifest.layers[i];
	int r = store_open_blob(s, d->digest, d->size, fd, e);

	if (r < 0)
		return r;
	if ((r = layer_open(lr, *fd, d->digest, img->config.diff_ids[i], e)) < 0) {
		close(*fd);
		*fd = -1;
	}
	return r;
}

static bool dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool empty = true;

	if (d == NULL)
		return errno == ENOENT;
	while (empty && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

int unpack_image_flat(struct store *s, const struct store_loaded *img, const char *dest, struct progress *p,
		      struct unpack_stats *st, struct err **e)
{
	struct unpack_opts o = {.overlay_form = false, .as_root = geteuid() == 0};
	int rootfd, r = 0;

	memset(st, 0, sizeof(*st));
	if (!dir_is_empty(dest))
		return err_setx(e, EEXIST, "rootfs '%s': exists and is not empty", dest);
	if (mkdir(dest, 0755) < 0 && errno != EEXIST)
		return err_set(e, errno, "rootfs '%s': mkdir", dest);
	rootfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return err_set(e, errno, "rootfs '%s': open", dest);
	for (size_t i = 0; i < img->manifest.n_layers && r == 0; i++) {
		struct layer_reader lr;
		int fd, id;
		if ((r = open_layer(s, img, i, &fd, &lr, e)) < 0)
			break;
		id = progress_add(p, "unpack", img->manifest.layers[i].digest, (uint64_t)img->manifest.layers[i].size,
				  0);
		r = unpack_layer(rootfd, &lr, img->manifest.layers[i].digest, &o, st, e);
		progress_update(p, id, lr.compressed_read);
		progress_done(p, id, r < 0 ? "failed" : "done");
		layer_close(&lr);
		close(fd);
	}
	close(rootfd);
	if (r < 0) {
		rm_rf_dir(dest);
		return err_wrap(e, "unpack into '%s'", dest);
	}
	return 0;
}

int unpack_image_cached(struct store *s, const struct store_loaded *img, struct progress *p, struct err **e)
{
	struct unpack_opts o = {.overlay_form = true, .as_root = true};

	for (size_t i = 0; i < img->manifest.n_layers; i++) {
		const char *hex = digest_hex(img->config.diff_ids[i]);
		struct layer_reader lr;
		struct unpack_stats st = {0};
		char tmp[128];
		int fd, rootfd, id, r;

		if (faccessat(s->layers_fd, hex, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		snprintf(tmp, sizeof(tmp), ".%s.%d", hex, (int)getpid());
		(void)remove_tree_at(s->layers_fd, tmp);
		if (mkdirat(s->layers_fd, tmp, 0755) < 0)
			return err_set(e, errno, "layer cache '%s/layers/%s'", s->root, tmp);
		rootfd = openat(s->layers_fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			return err_set(e, errno, "layer cache '%s/layers/%s'", s->root, tmp);
		if ((r = open_layer(s, img, i, &fd, &lr, e)) < 0) {
			close(rootfd);
			remove_tree_at(s->layers_fd, tmp);
			return r;
		}
		id = progress_add(p, "unpack", img->manifest.layers[i].digest, (uint64_t)img->manifest.layers[i].size,
				  0);
		r = unpack_layer(rootfd, &lr, img->manifest.layers[i].digest, &o, &st, e);
		progress_update(p, id, lr.compressed_read);
		progress_done(p, id, r < 0 ? "failed" : "done");
		layer_close(&lr);
		close(fd);
		if (r == 0 && syncfs(rootfd) < 0)
			r = err_set(e, errno, "layer cache: sync");
		close(rootfd);
		/* Another process may have cached it meanwhile: keep theirs. */
		if (r == 0 && renameat(s->layers_fd, tmp, s->layers_fd, hex) < 0 && errno != EEXIST &&
		    errno != ENOTEMPTY)
			r = err_set(e, errno, "layer cache '%s/layers/%s'", s->root, hex);
		(void)remove_tree_at(s->layers_fd, tmp);
		if (r < 0)
			return r;
	}
	return fsync_dir(s->layers_fd) < 0 ? err_set(e, errno, "layer cache: fsync") : 0;
}

int unpack_overlay_lowerdir(struct store *s, const struct store_loaded *img, char *out, size_t size, struct err **e)
{
	size_t used = 0;

	if (img->manifest.n_layers == 0)
		return err_setx(e, ENOTSUP, "image without layers: nothing to overlay");
	/* Top layer first. */
	for (size_t i = img->manifest.n_layers; i-- > 0;)
		used += (size_t)snprintf(out + used, used < size ? size - used : 0, "%s%s/layers/%s",
					 i + 1 < img->manifest.n_layers ? ":" : "", s->root,
					 digest_hex(img->config.diff_ids[i]));
	if (used >= size)
		return err_setx(e, ENOTSUP, "overlay: %zu layers do not fit in one mount's options",
				img->manifest.n_layers);
	return 0;
}

int unpack_mount_overlay(struct store *s, const struct store_loaded *img, const char *upper, const char *work,
			 const char *target, struct err **e)
{
	char opts[4096], lower[4096];
	int r;

	if ((r = unpack_overlay_lowerdir(s, img, lower, sizeof(lower), e)) < 0)
		return r;
	if (mkdir(upper, 0755) < 0 && errno != EEXIST)
		return err_set(e, errno, "overlay upper '%s'", upper);
	if (mkdir(work, 0700) < 0 && errno != EEXIST)
		return err_set(e, errno, "overlay work '%s'", work);
	if (mkdir(target, 0755) < 0 && errno != EEXIST)
		return err_set(e, errno, "rootfs '%s'", target);
	if ((size_t)snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work) >=
	    sizeof(opts) - 1)
		return err_setx(e, ENOTSUP, "overlay: %zu layers do not fit in one mount's options",
				img->manifest.n_layers);
	if (mount("overlay", target, "overlay", 0, opts) < 0) {
		r = errno;
		if (r == ENODEV || r == EINVAL || r == EPERM)
			return err_setx(e, ENOTSUP, "overlay mount on '%s': %s", target, strerror(r));
		return err_set(e, r, "overlay mount on '%s'", target);
	}
	return 0;
}
