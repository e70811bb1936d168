#include "vmm/landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/landlock.h"
#include "common/log.h"
#include "common/macro.h"

static bool enforced;
static struct {
	dev_t dev;
	ino_t ino;
} snapshot_dirs[VMM_MAX_SNAPSHOT_DIRS];
static unsigned nsnapshot_dirs;

/* Read-only system files the VMM opens after start-up: the kernel's views
 * of the CPUs, the free hugepages and NUMA nodes, and urandom.  No library
 * directory and no resolver file: casulo-vmm is static, libmicrohttpd is
 * linked in (src/api/meson.build), and a migration's address is numeric
 * (migrate/stream.c). */
static const char *const system_read[] = {
    "/sys/devices/system/cpu",
    /* the free hugepages and NUMA nodes the machine's build checks
     * (memory-config.c), after the confinement */
    "/sys/kernel/mm/hugepages",
    "/sys/devices/system/node",
    "/dev/urandom",
};

/* path's directory into buf (path itself when it has no slash: ".") */
static const char *parent_of(const char *path, char *buf, size_t size)
{
	snprintf(buf, size, "%s", path);
	return dirname(buf);
}

static int allow_parent(struct landlock *ll, const char *path, unsigned access, struct err **e)
{
	char buf[PATH_MAX];

	return landlock_allow(ll, parent_of(path, buf, sizeof(buf)), access, true, e);
}

/* A file the VM writes: created empty now if missing (creating it later
 * would need the right to create files in its whole directory). */
static int allow_created_file(struct landlock *ll, const char *path, unsigned rights, mode_t mode, struct err **e)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

	if (fd >= 0)
		close(fd);
	else if (errno == ENOENT)
		return 0; /* no directory: the file's own open says so */
	else if (errno != EEXIST)
		return err_set(e, errno, "landlock: create '%s'", path);
	return landlock_allow(ll, path, rights, false, e);
}

static int allow_output_file(struct landlock *ll, const char *path, struct err **e)
{
	return allow_created_file(ll, path, LL_WRITE, 0644, e);
}

/* A path of the configuration that does not exist gets no rule: the
 * code that opens it later says so as without Landlock. */
static int allow_config(struct landlock *ll, const struct vm_config *cfg, struct err **e)
{
	int r = 0;

	if (cfg->kernel_path)
		r = landlock_allow(ll, cfg->kernel_path, LL_READ, true, e);
	if (r == 0 && cfg->initrd_path)
		r = landlock_allow(ll, cfg->initrd_path, LL_READ, true, e);
	for (unsigned i = 0; r == 0 && i < cfg->nmodules; i++)
		r = landlock_allow(ll, cfg->modules[i].path, LL_READ, true, e);
	for (unsigned i = 0; r == 0 && i < cfg->ndisks; i++)
		r = landlock_allow(ll, cfg->disks[i].path, cfg->disks[i].readonly ? LL_READ : LL_READ | LL_WRITE, true,
				   e);
	for (unsigned i = 0; r == 0 && i < cfg->nfs; i++)
		r = landlock_allow(ll, cfg->fs[i].path, cfg->fs[i].readonly ? LL_READ : LL_TREE, true, e);
	for (unsigned i = 0; r == 0 && i < cfg->nnets; i++)
		if (cfg->nets[i].tap)
			r = landlock_allow(ll, "/dev/net/tun", LL_READ | LL_WRITE, true, e);
	/* guest RAM in a file: created empty here when missing, which the
	 * memory code then sizes as it does a file it creates (memory.c) */
	if (r == 0 && cfg->mem.backend == MEMORY_BACKEND_FILE && cfg->mem.path)
		r = allow_created_file(ll, cfg->mem.path, LL_READ | LL_WRITE, 0600, e);
	if (r == 0 && cfg->console == CONSOLE_FILE && cfg->console_path)
		r = allow_output_file(ll, cfg->console_path, e);
	if (r == 0 && cfg->console2.kind == CONSOLE2_FILE)
		r = allow_output_file(ll, cfg->console2.path, e);
	if (r == 0 && cfg->console2.kind == CONSOLE2_SOCKET)
		r = allow_parent(ll, cfg->console2.path, LL_SOCKETS, e);
	if (r == 0 && cfg->console2.kind == CONSOLE2_PTY) {
		r = landlock_allow(ll, "/dev/ptmx", LL_READ | LL_WRITE, true, e);
		if (r == 0)
			r = landlock_allow(ll, "/dev/pts", LL_READ | LL_WRITE, true, e);
	}
	/* PATH is bound here; PATH_<port> is only connected to (not a Landlock right) */
	if (r == 0 && cfg->vsock.enabled && cfg->vsock.socket)
		r = allow_parent(ll, cfg->vsock.socket, LL_SOCKETS, e);
	return r;
}

/* What a VM restored with --restore opens of its snapshot's
 * configuration: its disks, shared directories, memory file and vsock
 * socket (kernel and initrd are in its memory already; console settings
 * and TAP names are the command line's).  Nothing is created: a missing
 * file is the restore's own error. */
static int allow_restored(struct landlock *ll, const struct vm_config *cfg, struct err **e)
{
	int r = 0;

	for (unsigned i = 0; r == 0 && i < cfg->ndisks; i++)
		r = landlock_allow(ll, cfg->disks[i].path, cfg->disks[i].readonly ? LL_READ : LL_READ | LL_WRITE, true,
				   e);
	for (unsigned i = 0; r == 0 && i < cfg->nfs; i++)
		r = landlock_allow(ll, cfg->fs[i].path, cfg->fs[i].readonly ? LL_READ : LL_TREE, true, e);
	if (r == 0 && cfg->mem.backend == MEMORY_BACKEND_FILE && cfg->mem.path)
		r = landlock_allow(ll, cfg->mem.path, LL_READ | LL_WRITE, true, e);
	if (r == 0 && cfg->vsock.enabled && cfg->vsock.socket)
		r = allow_parent(ll, cfg->vsock.socket, LL_SOCKETS, e);
	return r;
}

static int keep_snapshot_dir(const char *dir, struct err **e)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return err_set(e, errno, "--snapshot-dir '%s'", dir);
	if (!S_ISDIR(st.st_mode))
		return err_setx(e, ENOTDIR, "--snapshot-dir '%s': not a directory", dir);
	snapshot_dirs[nsnapshot_dirs].dev = st.st_dev;
	snapshot_dirs[nsnapshot_dirs++].ino = st.st_ino;
	return 0;
}

int vmm_landlock_apply(const struct vm_config *cfg, const struct vmm_landlock_paths *p, bool in_cgroup, struct err **e)
{
	struct landlock *ll = NULL;
	char self[64];
	int r;

	if (landlock_new(&ll, e) < 0) {
		int code = err_code(*e);

		if (code != ENOSYS && code != EOPNOTSUPP)
			return -code;
		log_info("landlock: not available in this kernel (%s): file access is not confined", strerror(code));
		err_free(e);
		return 0;
	}
	r = landlock_allow(ll, "/dev/kvm", LL_READ | LL_WRITE, true, e);
	if (r == 0)
		r = landlock_allow(ll, "/dev/null", LL_READ | LL_WRITE, true, e);
	for (unsigned i = 0; r == 0 && i < ARRAY_SIZE(system_read); i++)
		r = landlock_allow(ll, system_read[i], LL_READ, true, e);
	/* this process's own /proc entries (its threads' names and status) */
	snprintf(self, sizeof(self), "/proc/%d", (int)getpid());
	if (r == 0)
		r = landlock_allow(ll, self, LL_READ | LL_WRITE, false, e);
	if (r == 0)
		r = allow_config(ll, cfg, e);
	if (r == 0 && p->api_socket)
		r = allow_parent(ll, p->api_socket, LL_SOCKETS, e);
	if (r == 0 && in_cgroup)
		r = landlock_allow(ll, "/sys/fs/cgroup", LL_TREE, true, e);
	if (r == 0 && p->restore_dir)
		r = landlock_allow(ll, p->restore_dir, LL_READ, true, e);
	if (r == 0 && p->restored)
		r = allow_restored(ll, p->restored, e);
	if (r == 0 && p->devices_from_state)
		r = landlock_allow(ll, "/dev/net/tun", LL_READ | LL_WRITE, true, e);
	for (unsigned i = 0; r == 0 && i < p->nsnapshot_dirs; i++) {
		r = landlock_allow(ll, p->snapshot_dirs[i], LL_TREE, false, e);
		if (r < 0)
			err_wrap(e, "--snapshot-dir");
		else
			r = keep_snapshot_dir(p->snapshot_dirs[i], e);
	}
	if (r == 0)
		r = landlock_enforce(ll, e);
	landlock_free(ll);
	if (r == 0) {
		enforced = true;
		log_info("landlock: file access confined to the configuration's paths (ABI %d)", landlock_abi());
	}
	return r;
}

bool vmm_landlock_enforced(void)
{
	return enforced;
}

/* Whether the directory open at fd (taken) is one of the snapshot
 * directories or beneath one: walks up through "..", by device and inode,
 * so that symlinks and relative paths decide nothing.  Only openat() and
 * fstat(), which the VMM thread's seccomp list has. */
static bool dir_is_beneath_snapshot_dir(int fd)
{
	struct stat st, up_st;
	bool found = false;

	for (int depth = 0; fd >= 0 && !found && depth < 4096; depth++) {
		int up;

		if (fstat(fd, &st) < 0)
			break;
		for (unsigned i = 0; i < nsnapshot_dirs; i++)
			found |= st.st_dev == snapshot_dirs[i].dev && st.st_ino == snapshot_dirs[i].ino;
		up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = up;
		if (fd < 0 || fstat(fd, &up_st) < 0 || (up_st.st_dev == st.st_dev && up_st.st_ino == st.st_ino))
			break; /* the root: ".." is itself */
	}
	if (fd >= 0)
		close(fd);
	return found;
}

int vmm_landlock_check_snapshot(const char *path, struct err **e)
{
	char buf[PATH_MAX];
	int fd;

	if (!enforced)
		return 0;
	/* the directory itself, or where it is to be created */
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = open(parent_of(path, buf, sizeof(buf)), O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && dir_is_beneath_snapshot_dir(fd))
		return 0;
	return err_setx(e, EACCES,
			"snapshot '%s': outside the directories this VMM may use (Landlock: give the directory with "
			"--snapshot-dir)",
			path);
}
