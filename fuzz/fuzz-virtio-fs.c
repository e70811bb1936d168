/*
 * Fuzz target: virtio-fs's FUSE server, as a hostile guest would drive
 * it, against a small real directory that is put back as it was before
 * every input.  The input's first byte chooses the way in:
 *
 *  - even: a session of requests straight to the server, each record
 *    [u16 request length][u16 reply buffer length][u8 split][request],
 *    the request split in two buffers (and the reply after its header
 *    when split's top bit is set), so that framing across buffers is
 *    exercised too;
 *  - odd: the rest is fuzz/virtio-harness.h's layout for the device's two
 *    queues (hiprio and requests), served through the virtqueues.
 *
 * Every reply must fit the buffers given; ASan and UBSan do the rest.
 * Inputs write and preallocate at will, so the directory is on a small
 * tmpfs of the fuzzer's own (bounded_fs()), never on the machine's disk.
 */
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtio-harness.h"
#include "vmm/devices/virtio/fs-server.h"
#include "vmm/devices/virtio/fs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REPLY (256 * 1024)

static struct vm *vm;
static struct virtio_dev *vd;
static struct fs_server *server;
static char base[64], share[80];
static uint8_t *request, *reply;

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag;
	return ftw->level > 0 ? remove(path) : 0; /* the share itself stays */
}

static void file(const char *rel, const char *data)
{
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", share, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, strlen(data)) < 0) {
		perror(path);
		abort();
	}
	close(fd);
}

/* The directory every input starts from, and a file beside it that no
 * input may reach. */
static void build_tree(void)
{
	char path[160];

	nftw(share, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	file("hello", "hello, guest\n");
	snprintf(path, sizeof(path), "%s/dir", share);
	mkdir(path, 0755);
	file("dir/inner", "inner\n");
	snprintf(path, sizeof(path), "%s/up", share);
	symlink("../outside", path);
	snprintf(path, sizeof(path), "%s/abs", share);
	symlink("/etc", path);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);

	if (fd >= 0) {
		(void)!write(fd, text, strlen(text));
		close(fd);
	}
}

/* A 64 MiB tmpfs at base, in a mount namespace of this process (a user
 * namespace too when not root).  Failing that, a file size limit bounds
 * writes, though not preallocation. */
static void bounded_fs(void)
{
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();

	signal(SIGXFSZ, SIG_IGN);
	if (unshare(CLONE_NEWNS) < 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0) {
		write_file("/proc/self/setgroups", "deny");
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
		write_file("/proc/self/uid_map", map);
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
		write_file("/proc/self/gid_map", map);
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("casulo-fuzz", base, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,nr_inodes=8192,mode=0700") < 0) {
		struct rlimit rl = {64 << 20, 64 << 20};
		perror("fuzz-virtio-fs: no tmpfs of its own; files are limited to 64 MiB");
		setrlimit(RLIMIT_FSIZE, &rl);
	}
}

static void cleanup(void)
{
	char path[96];

	nftw(share, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	rmdir(share);
	snprintf(path, sizeof(path), "%s/outside", base);
	unlink(path);
	umount2(base, MNT_DETACH);
	rmdir(base);
}

static void setup(void)
{
	struct fs_config c = {.tag = "fuzz", .path = share};
	struct err *e = NULL;
	char path[96];
	int fd;

	snprintf(base, sizeof(base), "/tmp/casulo-fuzz-fs-%d", getpid());
	snprintf(share, sizeof(share), "%s/share", base);
	if (mkdir(base, 0700) < 0)
		abort();
	bounded_fs();
	if (mkdir(share, 0755) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/outside", base);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd < 0)
		abort();
	close(fd);
	atexit(cleanup);
	vm = fuzz_vm_new();
	if (virtio_fs_create(vm, &c, &e) < 0 || fs_server_new("fuzz", share, false, &server, &e) < 0)
		abort();
	vd = (struct virtio_dev *)vm->devices;
	request = malloc(65536);
	reply = malloc(MAX_REPLY);
	if (request == NULL || reply == NULL)
		abort();
}

static void session(const uint8_t *data, size_t size)
{
	fs_server_reset(server);
	while (size >= 5) {
		size_t len = (size_t)(data[0] | data[1] << 8), rep = (size_t)(data[2] | data[3] << 8) * 4;
		uint8_t split = data[4];
		struct iovec out[2], in[2];
		unsigned nin = 0;
		size_t cut;
		uint32_t written;

		data += 5;
		size -= 5;
		len = MIN(len, size);
		rep = MIN(rep, (size_t)MAX_REPLY);
		/* The request at the end of its buffer: reading past it is caught. */
		memcpy(request + 65536 - len, data, len);
		cut = len ? split % (len + 1) : 0;
		out[0] = (struct iovec){request + 65536 - len, cut};
		out[1] = (struct iovec){request + 65536 - len + cut, len - cut};
		if ((split & 0x80) && rep > 16) {
			in[nin++] = (struct iovec){reply + MAX_REPLY - rep, 16};
			in[nin++] = (struct iovec){reply + MAX_REPLY - rep + 16, rep - 16};
		} else {
			in[nin++] = (struct iovec){reply + MAX_REPLY - rep, rep};
		}
		written = fs_server_handle(server, out, 2, in, nin);
		if (written > rep)
			abort();
		data += len;
		size -= len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (vm == NULL)
		setup();
	if (size < 1)
		return 0;
	build_tree();
	if ((data[0] & 1) == 0) {
		session(data + 1, size - 1);
		return 0;
	}
	if (fuzz_drive_queues(vm, vd, 2, data + 1, size - 1) < 0)
		return 0;
	for (int round = 0; round < 2; round++) {
		virtio_dev_process_queue(vd, 1);
		virtio_dev_process_queue(vd, 0);
	}
	return 0;
}
