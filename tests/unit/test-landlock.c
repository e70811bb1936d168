/* Landlock (src/common/landlock.c, src/vmm/landlock.c): each case confines
 * a child process and reports what it could open.  Skipped where the
 * kernel has no Landlock. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/landlock.h"
#include "test.h"
#include "vmm/landlock.h"

static char dir[] = "/tmp/casulo-landlock-XXXXXX";
static char inside[128], outside_dir[128], outside[128], ro_file[128];

static void need_landlock(void)
{
	if (landlock_abi() <= 0)
		test_skip("this kernel has no Landlock: %s", strerror(errno));
}

static void make_tree(void)
{
	CHECK(mkdtemp(dir) != NULL);
	snprintf(inside, sizeof(inside), "%s/allowed", dir);
	snprintf(outside_dir, sizeof(outside_dir), "%s/other", dir);
	snprintf(outside, sizeof(outside), "%s/other/secret", dir);
	snprintf(ro_file, sizeof(ro_file), "%s/kernel", dir);
	CHECK_INT(mkdir(inside, 0700), ==, 0);
	CHECK_INT(mkdir(outside_dir, 0700), ==, 0);
	for (const char *f = outside; f; f = f == outside ? ro_file : NULL) {
		int fd = open(f, O_WRONLY | O_CREAT, 0600);
		CHECK(fd >= 0);
		close(fd);
	}
}

static void remove_tree(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK_INT(system(cmd), ==, 0);
}

/* errno of open(path, flags) in the confined child, 0 for success */
static int open_errno(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0600);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* The child: confined with common/landlock.h, then it tries; its exit
 * status packs the errnos of four opens (0 or EACCES each). */
static int confined_child(void)
{
	struct landlock *ll = NULL;
	struct err *e = NULL;
	char made[160];

	if (landlock_new(&ll, &e) < 0 || landlock_allow(ll, inside, LL_TREE, false, &e) < 0 ||
	    landlock_allow(ll, ro_file, LL_READ, false, &e) < 0 ||
	    landlock_allow(ll, "/nonexistent/optional", LL_READ, true, &e) < 0 || landlock_enforce(ll, &e) < 0) {
		fprintf(stderr, "%s\n", e->msg);
		return 99;
	}
	landlock_free(ll);
	snprintf(made, sizeof(made), "%s/new-file", inside);
	return (open_errno(made, O_WRONLY | O_CREAT) == 0 ? 0 : 1) |	 /* create beneath the tree */
	       (open_errno(ro_file, O_RDONLY) == 0 ? 0 : 2) |		 /* read the read-only file */
	       (open_errno(ro_file, O_WRONLY) == EACCES ? 0 : 4) |	 /* but not write it */
	       (open_errno(outside, O_RDONLY) == EACCES ? 0 : 8) |	 /* nothing else */
	       (open_errno("/etc/passwd", O_RDONLY) == EACCES ? 0 : 16); /* not even system files */
}

TEST(landlock_confines_a_process_to_its_rules)
{
	int status;
	pid_t pid;

	need_landlock();
	make_tree();
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(confined_child());
	CHECK_INT(waitpid(pid, &status, 0), ==, pid);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), ==, 0);
	/* the parent is not confined */
	CHECK_INT(open_errno(outside, O_RDONLY), ==, 0);
	remove_tree();
}

TEST(landlock_missing_path_is_named)
{
	struct landlock *ll = NULL;
	struct err *e = NULL;

	need_landlock();
	CHECK_INT(landlock_new(&ll, &e), ==, 0);
	CHECK(landlock_allow(ll, "/nonexistent/disk.img", LL_READ, false, &e) < 0);
	CHECK_CONTAINS(e->msg, "landlock: '/nonexistent/disk.img': No such file or directory");
	err_free(&e);
	landlock_free(ll);
}

/* The VMM's rules from a configuration: its disk read-write, its kernel
 * read-only, snapshots only beneath --snapshot-dir; the API's check names
 * the option. */
TEST(vmm_landlock_follows_the_configuration)
{
	int status;
	pid_t pid;

	need_landlock();
	make_tree();
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct vm_config cfg;
		struct vmm_landlock_paths p = {.snapshot_dirs = {inside}, .nsnapshot_dirs = 1};
		struct err *e = NULL;
		char snap[160], link[160];
		int bad = 0, step = 0;
/* the number of the first check that failed becomes the exit status */
#define STEP(cond)                                                                                                     \
	do {                                                                                                           \
		step++;                                                                                                \
		if (!(cond) && bad == 0)                                                                               \
			bad = step;                                                                                    \
	} while (0)

		char ram[160], ram_neighbour[160];

		vm_config_defaults(&cfg);
		cfg.kernel_path = ro_file;
		cfg.disks[cfg.ndisks++] = (struct disk_config){.path = outside};
		/* guest RAM in a file that does not exist yet */
		snprintf(ram, sizeof(ram), "%s/guest-ram", outside_dir);
		snprintf(ram_neighbour, sizeof(ram_neighbour), "%s/other-ram", outside_dir);
		cfg.mem.backend = MEMORY_BACKEND_FILE;
		cfg.mem.path = ram;
		if (vmm_landlock_apply(&cfg, &p, false, &e) < 0) {
			fprintf(stderr, "%s\n", e->msg);
			_exit(99);
		}
		STEP(vmm_landlock_enforced());
		STEP(open_errno(outside, O_RDWR) == 0);
		STEP(open_errno(ro_file, O_RDWR) == EACCES);
		STEP(open_errno(ram, O_RDWR | O_CREAT) == 0 && truncate(ram, 1 << 20) == 0);
		STEP(open_errno(ram_neighbour, O_RDWR | O_CREAT) == EACCES);
		/* no TAP in the configuration, none from a state: no /dev/net/tun */
		STEP(access("/dev/net/tun", F_OK) < 0 || open_errno("/dev/net/tun", O_RDWR) == EACCES);
		snprintf(snap, sizeof(snap), "%s/snap1", inside);
		STEP(vmm_landlock_check_snapshot(snap, &e) == 0);
		STEP(mkdir(snap, 0700) == 0);
		STEP(vmm_landlock_check_snapshot(snap, &e) == 0);
		STEP(vmm_landlock_check_snapshot(outside_dir, &e) < 0);
		STEP(e != NULL && strstr(e->msg, "--snapshot-dir") != NULL);
		err_free(&e);
		snprintf(snap, sizeof(snap), "%s/snap2", outside_dir);
		STEP(mkdir(snap, 0700) < 0 && errno == EACCES);
		/* a symlink inside that points outside is judged by where it leads */
		snprintf(link, sizeof(link), "%s/escape", inside);
		STEP(symlink(outside_dir, link) == 0);
		STEP(vmm_landlock_check_snapshot(link, &e) < 0);
		err_free(&e);
		_exit(bad);
	}
	CHECK_INT(waitpid(pid, &status, 0), ==, pid);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), ==, 0);
	remove_tree();
}

TEST(vmm_landlock_lets_a_restored_vm_open_its_taps)
{
	int status;
	pid_t pid;

	need_landlock();
	if (access("/dev/net/tun", F_OK) < 0)
		test_skip("no /dev/net/tun on this host");
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* --incoming: the TAP devices come with the migration's state */
		struct vm_config cfg;
		struct vmm_landlock_paths p = {.devices_from_state = true};
		struct err *e = NULL;

		vm_config_defaults(&cfg);
		if (vmm_landlock_apply(&cfg, &p, false, &e) < 0) {
			fprintf(stderr, "%s\n", e->msg);
			_exit(99);
		}
		_exit(open_errno("/dev/net/tun", O_RDWR) == EACCES ? 1 : 0);
	}
	CHECK_INT(waitpid(pid, &status, 0), ==, pid);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), ==, 0);
}
