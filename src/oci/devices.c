/* /dev in the container: the default devices and linux.devices (mknod, or
 * a bind mount of the host's node inside a user namespace), and the
 * standard symlinks. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/macro.h"
#include "oci/container.h"
#include "oci/util.h"

static const struct oci_device default_devices[] = {
    {"/dev/null", 'c', 1, 3, true, false, false, 0666, 0, 0},
    {"/dev/zero", 'c', 1, 5, true, false, false, 0666, 0, 0},
    {"/dev/full", 'c', 1, 7, true, false, false, 0666, 0, 0},
    {"/dev/random", 'c', 1, 8, true, false, false, 0666, 0, 0},
    {"/dev/urandom", 'c', 1, 9, true, false, false, 0666, 0, 0},
    {"/dev/tty", 'c', 5, 0, true, false, false, 0666, 0, 0},
};

static int make_device(int rootfd, const struct oci_device *d, bool bind, struct err **e)
{
	char parent[4096], name[256], target[64];
	_cleanup_close_ int dirfd = -1, fd = -1;
	const char *slash = strrchr(d->path, '/');
	mode_t mode = d->has_mode ? d->mode : 0666;
	mode_t type;

	if (slash == NULL || strlen(slash + 1) >= sizeof(name) || slash[1] == '\0')
		return err_setx(e, EINVAL, "device '%s': not a device path", d->path);
	snprintf(parent, sizeof(parent), "%.*s", (int)(slash - d->path), d->path);
	snprintf(name, sizeof(name), "%s", slash + 1);
	dirfd = mkdir_in_root(rootfd, parent[0] ? parent : "/", 0755, false);
	if (dirfd < 0)
		return err_set(e, -dirfd, "device '%s': create directory '%s'", d->path, parent);
	{
		/* O_PATH fds cannot be used with mknodat: reopen as a directory. */
		int real = open_in_root(rootfd, parent[0] ? parent : "/", O_RDONLY | O_DIRECTORY, 0);
		if (real < 0)
			return err_set(e, -real, "device '%s': open directory '%s'", d->path, parent);
		close(dirfd);
		dirfd = real;
	}
	if (bind) {
		fd = openat(dirfd, name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0000);
		if (fd < 0 && errno != EEXIST)
			return err_set(e, errno, "device '%s': create bind target", d->path);
		if (fd < 0)
			fd = openat(dirfd, name, O_PATH | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return err_set(e, errno, "device '%s': open bind target", d->path);
		fd_path(fd, target, sizeof(target));
		if (mount(d->path, target, NULL, MS_BIND, NULL) < 0)
			return err_set(e, errno, "device '%s': bind the host's node", d->path);
		return 0;
	}
	switch (d->type) {
	case 'b':
		type = S_IFBLK;
		break;
	case 'p':
		type = S_IFIFO;
		break;
	default:
		type = S_IFCHR;
		break;
	}
	if (mknodat(dirfd, name, type | (mode & 07777), d->type == 'p' ? 0 : makedev(d->major, d->minor)) < 0) {
		if (errno == EEXIST)
			return 0;
		return err_set(e, errno, "device '%s': mknod", d->path);
	}
	/* mknod honours the umask: set the mode and owner as asked. */
	if (fchmodat(dirfd, name, mode & 07777, 0) < 0)
		return err_set(e, errno, "device '%s': chmod", d->path);
	if (fchownat(dirfd, name, d->has_uid ? d->uid : 0, d->has_gid ? d->gid : 0, AT_SYMLINK_NOFOLLOW) < 0)
		return err_set(e, errno, "device '%s': chown", d->path);
	return 0;
}

int devices_setup(struct run_ctx *c, int rootfd, bool dev_is_bind, struct err **e)
{
	bool bind = c->ns_new[NS_USER] || c->spec->ns[NS_USER].path;
	int r;

	if (!dev_is_bind) {
		for (size_t i = 0; i < ARRAY_SIZE(default_devices); i++) {
			bool configured = false;
			for (size_t j = 0; j < c->spec->n_devices; j++)
				configured |= strcmp(c->spec->devices[j].path, default_devices[i].path) == 0;
			if (!configured && (r = make_device(rootfd, &default_devices[i], bind, e)) < 0)
				return r;
		}
	}
	for (size_t i = 0; i < c->spec->n_devices; i++) {
		const struct oci_device *d = &c->spec->devices[i];
		if ((r = make_device(rootfd, d, bind && d->type != 'p', e)) < 0)
			return err_wrap(e, "linux.devices[%zu]", i);
	}
	return 0;
}

int devices_symlinks(int rootfd, struct err **e)
{
	static const struct {
		const char *target, *link;
	} links[] = {
	    {"/proc/self/fd", "dev/fd"},       {"/proc/self/fd/0", "dev/stdin"}, {"/proc/self/fd/1", "dev/stdout"},
	    {"/proc/self/fd/2", "dev/stderr"}, {"/proc/kcore", "dev/core"},
	};
	_cleanup_close_ int devfd = open_in_root(rootfd, "/dev", O_RDONLY | O_DIRECTORY, 0);
	struct stat st;

	if (devfd < 0)
		return err_set(e, -devfd, "rootfs: open /dev");
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		if (i == 4 && access("/proc/kcore", F_OK) < 0)
			continue;
		if (symlinkat(links[i].target, devfd, links[i].link + 4) < 0 && errno != EEXIST)
			return err_set(e, errno, "rootfs: symlink /%s -> %s", links[i].link, links[i].target);
	}
	/* /dev/ptmx -> pts/ptmx when the container has its own devpts. */
	if (fstatat(devfd, "pts/ptmx", &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (unlinkat(devfd, "ptmx", 0) < 0 && errno != ENOENT)
			return err_set(e, errno, "rootfs: remove /dev/ptmx");
		if (symlinkat("pts/ptmx", devfd, "ptmx") < 0)
			return err_set(e, errno, "rootfs: symlink /dev/ptmx -> pts/ptmx");
	}
	return 0;
}
