/*
 * virtio-fs driven by a fake guest driver, inline: FUSE requests built by
 * hand in guest memory, the way Linux's virtiofs driver frames them (the
 * request readable, the reply writable), against a real directory.  Half
 * of the tests are what a hostile guest would send.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/fuse.h>
#include <linux/virtio_fs.h>

#include "test.h"
#include "virtio-driver.h"
#include "vmm/devices/device.h"
#include "vmm/devices/virtio/fs.h"

#define REQ_MAX (2u << 20)
#define HIPRIO 0
#define REQUESTS 1

struct fs_test {
	struct vdrv d;
	char base[PATH_MAX]; /* share/ and outside/ */
	char share[PATH_MAX + 16];
	uint64_t req, rep; /* guest buffers for one request and its reply */
	uint64_t unique;
};

/* Arguments, built piece by piece. */
struct args {
	uint8_t b[8192];
	size_t n;
};

static void put(struct args *a, const void *p, size_t len)
{
	CHECK(a->n + len <= sizeof(a->b));
	memcpy(a->b + a->n, p, len);
	a->n += len;
}

static void put_str(struct args *a, const char *s)
{
	put(a, s, strlen(s) + 1);
}

static void host_write(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0);
	CHECK_INT(write(fd, data, strlen(data)), ==, (long long)strlen(data));
	close(fd);
}

static char *host_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

static char *at(struct fs_test *t, const char *rel)
{
	static char path[2][PATH_MAX * 2];
	static int i;

	i ^= 1;
	snprintf(path[i], sizeof(path[i]), "%s/%s", t->base, rel);
	return path[i];
}

/*
 * One request on queue q: the header and args in one readable buffer
 * (request_len bytes of it, 0: all), then a writable buffer of reply_len
 * bytes.  Returns the used length; the reply is at t->rep.
 */
static uint32_t raw_call(struct fs_test *t, unsigned q, const struct fuse_in_header *h, const struct args *a,
			 uint32_t request_len, uint32_t reply_len)
{
	uint8_t *req = vdrv_ptr(&t->d, t->req, REQ_MAX);
	struct vdrv_seg segs[2];
	unsigned n = 0;
	uint16_t id, head;
	uint32_t len;

	memcpy(req, h, sizeof(*h));
	if (a)
		memcpy(req + sizeof(*h), a->b, a->n);
	memset(vdrv_ptr(&t->d, t->rep, REQ_MAX), 0xee, reply_len ? reply_len : 1);
	segs[n++] =
	    (struct vdrv_seg){t->req, request_len ? request_len : (uint32_t)(sizeof(*h) + (a ? a->n : 0)), false};
	if (reply_len)
		segs[n++] = (struct vdrv_seg){t->rep, reply_len, true};
	head = vdrv_post(&t->d, q, segs, n);
	vdrv_kick(&t->d, q);
	CHECK(vdrv_used(&t->d, q, &id, &len));
	CHECK_INT(id, ==, head);
	CHECK(!vdrv_needs_reset(&t->d));
	return len;
}

/* A well-formed request; returns the reply's error (0 or -errno) and
 * copies its payload (at most max bytes) to out, its length to *out_len. */
static int call(struct fs_test *t, uint32_t opcode, uint64_t nodeid, const struct args *a, void *out, size_t max,
		size_t *out_len)
{
	struct fuse_in_header h = {.len = (uint32_t)(sizeof(h) + (a ? a->n : 0)),
				   .opcode = opcode,
				   .unique = ++t->unique,
				   .nodeid = nodeid,
				   .uid = 1000,
				   .gid = 1000,
				   .pid = 1};
	struct fuse_out_header oh;
	uint32_t len = raw_call(t, REQUESTS, &h, a, 0, (uint32_t)(sizeof(oh) + 256 * 1024));

	CHECK_INT(len, >=, sizeof(oh));
	memcpy(&oh, vdrv_ptr(&t->d, t->rep, sizeof(oh)), sizeof(oh));
	CHECK_INT(oh.unique, ==, h.unique);
	CHECK_INT(oh.len, ==, len);
	if (oh.error == 0) {
		size_t payload = len - sizeof(oh);
		CHECK_INT(payload, <=, max);
		if (out && payload)
			memcpy(out, vdrv_ptr(&t->d, t->rep + sizeof(oh), payload), MIN(payload, max));
		if (out_len)
			*out_len = payload;
	} else {
		CHECK_INT(len, ==, sizeof(oh)); /* errors carry nothing */
	}
	return oh.error;
}

static int do_init(struct fs_test *t, struct fuse_init_out *out)
{
	struct fuse_init_in in = {.major = 7,
				  .minor = 38,
				  .max_readahead = 131072,
				  .flags = FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES | FUSE_ASYNC_READ | FUSE_POSIX_LOCKS};
	struct args a = {.n = 0};

	put(&a, &in, sizeof(in));
	return call(t, FUSE_INIT, 0, &a, out, sizeof(*out), NULL);
}

static void fs_start(struct fs_test *t, bool readonly, bool init)
{
	struct vm *vm = vdrv_fake_vm();
	struct fs_config c = {.tag = "share", .readonly = readonly};
	struct err *e = NULL;
	const char *tmp = getenv("TMPDIR");
	struct fuse_init_out io;

	memset(t, 0, sizeof(*t));
	snprintf(t->base, sizeof(t->base), "%s/casulo-fs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	CHECK(mkdtemp(t->base) != NULL);
	snprintf(t->share, sizeof(t->share), "%s/share", t->base);
	CHECK_INT(mkdir(t->share, 0755), ==, 0);
	CHECK_INT(mkdir(at(t, "outside"), 0755), ==, 0);
	host_write(at(t, "outside/secret"), "host secret\n");
	host_write(at(t, "share/hello"), "hello, guest\n");
	c.path = t->share;
	CHECK_INT(virtio_fs_create(vm, &c, &e), ==, 0);
	if (e)
		fprintf(stderr, "# %s\n", e->msg);
	vdrv_init(&t->d, vm, 0, 2);
	t->req = vdrv_alloc(&t->d, REQ_MAX);
	t->rep = vdrv_alloc(&t->d, REQ_MAX);
	if (init)
		CHECK_INT(do_init(t, &io), ==, 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void fs_stop(struct fs_test *t)
{
	vdrv_free_vm(t->d.vm);
	nftw(t->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int lookup(struct fs_test *t, uint64_t dir, const char *name, struct fuse_entry_out *eo)
{
	struct args a = {.n = 0};

	put_str(&a, name);
	memset(eo, 0, sizeof(*eo));
	return call(t, FUSE_LOOKUP, dir, &a, eo, sizeof(*eo), NULL);
}

static int open_node(struct fs_test *t, uint32_t opcode, uint64_t node, uint32_t flags, uint64_t *fh)
{
	struct fuse_open_in in = {.flags = flags};
	struct fuse_open_out oo;
	struct args a = {.n = 0};
	int r;

	put(&a, &in, sizeof(in));
	r = call(t, opcode, node, &a, &oo, sizeof(oo), NULL);
	*fh = oo.fh;
	return r;
}

static int read_file(struct fs_test *t, uint64_t node, uint64_t fh, uint64_t off, uint32_t size, char *out, size_t *len)
{
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = size};
	struct args a = {.n = 0};

	put(&a, &in, sizeof(in));
	return call(t, FUSE_READ, node, &a, out, 256 * 1024, len);
}

static int write_file(struct fs_test *t, uint64_t node, uint64_t fh, uint64_t off, const char *data)
{
	struct fuse_write_in in = {.fh = fh, .offset = off, .size = (uint32_t)strlen(data)};
	struct fuse_write_out wo;
	struct args a = {.n = 0};
	int r;

	put(&a, &in, sizeof(in));
	put(&a, data, strlen(data));
	r = call(t, FUSE_WRITE, node, &a, &wo, sizeof(wo), NULL);
	if (r == 0)
		CHECK_INT(wo.size, ==, strlen(data));
	return r;
}

static int create(struct fs_test *t, uint64_t dir, const char *name, uint32_t flags, struct fuse_entry_out *eo,
		  uint64_t *fh)
{
	struct fuse_create_in in = {.flags = flags | O_CREAT, .mode = S_IFREG | 0640};
	struct {
		struct fuse_entry_out eo;
		struct fuse_open_out oo;
	} rep;
	struct args a = {.n = 0};
	int r;

	put(&a, &in, sizeof(in));
	put_str(&a, name);
	r = call(t, FUSE_CREATE, dir, &a, &rep, sizeof(rep), NULL);
	*eo = rep.eo;
	*fh = rep.oo.fh;
	return r;
}

static int mkdir_in(struct fs_test *t, uint64_t dir, const char *name, struct fuse_entry_out *eo)
{
	struct fuse_mkdir_in in = {.mode = 0750};
	struct args a = {.n = 0};

	put(&a, &in, sizeof(in));
	put_str(&a, name);
	return call(t, FUSE_MKDIR, dir, &a, eo, sizeof(*eo), NULL);
}

static int name_op(struct fs_test *t, uint32_t opcode, uint64_t dir, const char *name)
{
	struct args a = {.n = 0};

	put_str(&a, name);
	return call(t, opcode, dir, &a, NULL, 0, NULL);
}

static int release(struct fs_test *t, uint32_t opcode, uint64_t node, uint64_t fh)
{
	struct fuse_release_in in = {.fh = fh};
	struct args a = {.n = 0};

	put(&a, &in, sizeof(in));
	return call(t, opcode, node, &a, NULL, 0, NULL);
}

static void forget(struct fs_test *t, uint64_t node, uint64_t n)
{
	struct fuse_in_header h = {.len = sizeof(h) + sizeof(struct fuse_forget_in),
				   .opcode = FUSE_FORGET,
				   .unique = ++t->unique,
				   .nodeid = node};
	struct fuse_forget_in in = {.nlookup = n};
	struct args a = {.n = 0};

	put(&a, &in, sizeof(in));
	/* On the high-priority queue, with no reply buffer, as Linux sends it. */
	CHECK_INT(raw_call(t, HIPRIO, &h, &a, 0, 0), ==, 0);
}

TEST(fs_device_and_init)
{
	struct fs_test t;
	struct fuse_init_out io;
	struct virtio_fs_config cfg;

	fs_start(&t, false, false);
	CHECK_INT(vdrv_read32(&t.d, 0x008), ==, 26); /* VIRTIO_ID_FS */
	for (unsigned i = 0; i < sizeof(cfg); i += 4) {
		uint32_t v = vdrv_read32(&t.d, 0x100 + i);
		memcpy((uint8_t *)&cfg + i, &v, MIN(4, sizeof(cfg) - i));
	}
	CHECK(memcmp(cfg.tag, "share\0", 6) == 0);
	CHECK_INT(cfg.num_request_queues, ==, 1);
	/* Nothing is served before INIT. */
	{
		struct fuse_entry_out eo;
		CHECK_INT(lookup(&t, FUSE_ROOT_ID, "hello", &eo), ==, -EIO);
	}
	/* A kernel older than virtio-fs is refused. */
	{
		struct fuse_init_in in = {.major = 7, .minor = 26};
		struct args a = {.n = 0};
		put(&a, &in, 16);
		CHECK_INT(call(&t, FUSE_INIT, 0, &a, &io, sizeof(io), NULL), ==, -EPROTO);
	}
	CHECK_INT(do_init(&t, &io), ==, 0);
	CHECK_INT(io.major, ==, 7);
	CHECK_INT(io.minor, ==, 38);
	CHECK_INT(io.max_write, ==, 1 << 20);
	CHECK_INT(io.max_pages, ==, 256);
	CHECK(io.flags & FUSE_DO_READDIRPLUS);
	CHECK(io.flags & FUSE_MAX_PAGES);
	CHECK(!(io.flags & FUSE_POSIX_LOCKS)); /* locks stay in the guest */
	fs_stop(&t);
}

TEST(fs_lookup_read_and_forget)
{
	struct fs_test t;
	struct fuse_entry_out eo;
	struct fuse_attr_out ao;
	struct fuse_getattr_in gi = {0};
	struct args a = {.n = 0};
	char buf[256];
	size_t len;
	uint64_t fh;

	fs_start(&t, false, true);
	CHECK_INT(lookup(&t, FUSE_ROOT_ID, "hello", &eo), ==, 0);
	CHECK(eo.nodeid > FUSE_ROOT_ID);
	CHECK_INT(eo.attr.size, ==, 13);
	CHECK(S_ISREG(eo.attr.mode));
	put(&a, &gi, sizeof(gi));
	CHECK_INT(call(&t, FUSE_GETATTR, eo.nodeid, &a, &ao, sizeof(ao), NULL), ==, 0);
	CHECK_INT(ao.attr.ino, ==, eo.attr.ino);
	CHECK_INT(open_node(&t, FUSE_OPEN, eo.nodeid, O_RDONLY, &fh), ==, 0);
	CHECK_INT(read_file(&t, eo.nodeid, fh, 0, 4096, buf, &len), ==, 0);
	CHECK_INT(len, ==, 13);
	CHECK(memcmp(buf, "hello, guest\n", 13) == 0);
	CHECK_INT(read_file(&t, eo.nodeid, fh, 7, 5, buf, &len), ==, 0);
	CHECK_INT(len, ==, 5);
	CHECK(memcmp(buf, "guest", 5) == 0);
	CHECK_INT(read_file(&t, eo.nodeid, fh, 1000, 10, buf, &len), ==, 0);
	CHECK_INT(len, ==, 0);
	CHECK_INT(release(&t, FUSE_RELEASE, eo.nodeid, fh), ==, 0);
	/* The handle is gone once released. */
	CHECK_INT(read_file(&t, eo.nodeid, fh, 0, 10, buf, &len), ==, -EBADF);
	/* A second lookup names the same node; two forgets drop it. */
	{
		struct fuse_entry_out again;
		CHECK_INT(lookup(&t, FUSE_ROOT_ID, "hello", &again), ==, 0);
		CHECK_INT(again.nodeid, ==, eo.nodeid);
	}
	forget(&t, eo.nodeid, 1);
	CHECK_INT(call(&t, FUSE_GETATTR, eo.nodeid, &a, &ao, sizeof(ao), NULL), ==, 0);
	forget(&t, eo.nodeid, 1);
	CHECK_INT(call(&t, FUSE_GETATTR, eo.nodeid, &a, &ao, sizeof(ao), NULL), ==, -ESTALE);
	/* The root is never forgotten. */
	forget(&t, FUSE_ROOT_ID, 100);
	CHECK_INT(call(&t, FUSE_GETATTR, FUSE_ROOT_ID, &a, &ao, sizeof(ao), NULL), ==, 0);
	CHECK(S_ISDIR(ao.attr.mode));
	fs_stop(&t);
}

TEST(fs_create_write_rename_remove)
{
	struct fs_test t;
	struct fuse_entry_out eo, dir, link, sym;
	struct fuse_rename_in rn;
	struct fuse_link_in li;
	struct args a = {.n = 0};
	struct stat st;
	char buf[256];
	size_t len;
	uint64_t fh;

	fs_start(&t, false, true);
	CHECK_INT(create(&t, FUSE_ROOT_ID, "new", O_RDWR, &eo, &fh), ==, 0);
	CHECK(S_ISREG(eo.attr.mode));
	CHECK_INT(eo.attr.mode & 0777, ==, 0640);
	CHECK_INT(write_file(&t, eo.nodeid, fh, 0, "written by the guest"), ==, 0);
	CHECK_INT(write_file(&t, eo.nodeid, fh, 8, "BY"), ==, 0);
	CHECK_STR(host_read(at(&t, "share/new"), buf, sizeof(buf)), "written BY the guest");
	if (geteuid() == 0) {
		/* New files belong to the guest's caller. */
		CHECK_INT(stat(at(&t, "share/new"), &st), ==, 0);
		CHECK_INT(st.st_uid, ==, 1000);
		CHECK_INT(st.st_gid, ==, 1000);
	}
	/* O_EXCL on an existing name fails; without it the file is opened. */
	{
		struct fuse_entry_out e2;
		uint64_t fh2;
		CHECK_INT(create(&t, FUSE_ROOT_ID, "new", O_RDWR | O_EXCL, &e2, &fh2), ==, -EEXIST);
		CHECK_INT(create(&t, FUSE_ROOT_ID, "new", O_RDONLY, &e2, &fh2), ==, 0);
		CHECK_INT(e2.nodeid, ==, eo.nodeid);
		CHECK_INT(release(&t, FUSE_RELEASE, e2.nodeid, fh2), ==, 0);
	}
	CHECK_INT(release(&t, FUSE_RELEASE, eo.nodeid, fh), ==, 0);

	CHECK_INT(mkdir_in(&t, FUSE_ROOT_ID, "dir", &dir), ==, 0);
	CHECK(S_ISDIR(dir.attr.mode));
	rn.newdir = dir.nodeid;
	put(&a, &rn, sizeof(rn));
	put_str(&a, "new");
	put_str(&a, "moved");
	CHECK_INT(call(&t, FUSE_RENAME, FUSE_ROOT_ID, &a, NULL, 0, NULL), ==, 0);
	CHECK_STR(host_read(at(&t, "share/dir/moved"), buf, sizeof(buf)), "written BY the guest");
	CHECK(access(at(&t, "share/new"), F_OK) < 0);

	/* A hard link and a symlink. */
	a.n = 0;
	li.oldnodeid = eo.nodeid;
	put(&a, &li, sizeof(li));
	put_str(&a, "linked");
	CHECK_INT(call(&t, FUSE_LINK, FUSE_ROOT_ID, &a, &link, sizeof(link), NULL), ==, 0);
	CHECK_INT(link.nodeid, ==, eo.nodeid);
	CHECK_INT(link.attr.nlink, ==, 2);
	{
		/* Linking a file the caller does not own leaves its owner alone. */
		struct fuse_entry_out hello, l2;
		CHECK_INT(lookup(&t, FUSE_ROOT_ID, "hello", &hello), ==, 0);
		a.n = 0;
		li.oldnodeid = hello.nodeid;
		put(&a, &li, sizeof(li));
		put_str(&a, "hello2");
		CHECK_INT(call(&t, FUSE_LINK, dir.nodeid, &a, &l2, sizeof(l2), NULL), ==, 0);
		CHECK_INT(l2.attr.uid, ==, geteuid());
		CHECK_INT(stat(at(&t, "share/hello"), &st), ==, 0);
		CHECK_INT(st.st_uid, ==, geteuid());
		CHECK_INT(st.st_nlink, ==, 2);
		CHECK_INT(name_op(&t, FUSE_UNLINK, dir.nodeid, "hello2"), ==, 0);
	}
	a.n = 0;
	put_str(&a, "sym");
	put_str(&a, "dir/moved");
	CHECK_INT(call(&t, FUSE_SYMLINK, FUSE_ROOT_ID, &a, &sym, sizeof(sym), NULL), ==, 0);
	CHECK(S_ISLNK(sym.attr.mode));
	CHECK_INT(call(&t, FUSE_READLINK, sym.nodeid, NULL, buf, sizeof(buf), &len), ==, 0);
	CHECK_INT(len, ==, 9);
	CHECK(memcmp(buf, "dir/moved", 9) == 0);
	CHECK_INT(readlink(at(&t, "share/sym"), buf, sizeof(buf)), ==, 9);

	/* Truncate through SETATTR, then remove everything. */
	{
		struct fuse_setattr_in sa = {.valid = FATTR_SIZE | FATTR_MODE, .size = 7, .mode = 0600};
		struct fuse_attr_out ao;
		a.n = 0;
		put(&a, &sa, sizeof(sa));
		CHECK_INT(call(&t, FUSE_SETATTR, eo.nodeid, &a, &ao, sizeof(ao), NULL), ==, 0);
		CHECK_INT(ao.attr.size, ==, 7);
		CHECK_INT(ao.attr.mode & 0777, ==, 0600);
		CHECK_STR(host_read(at(&t, "share/linked"), buf, sizeof(buf)), "written");
	}
	CHECK_INT(name_op(&t, FUSE_RMDIR, FUSE_ROOT_ID, "dir"), ==, -ENOTEMPTY);
	CHECK_INT(name_op(&t, FUSE_UNLINK, dir.nodeid, "moved"), ==, 0);
	CHECK_INT(name_op(&t, FUSE_UNLINK, FUSE_ROOT_ID, "linked"), ==, 0);
	CHECK_INT(name_op(&t, FUSE_UNLINK, FUSE_ROOT_ID, "sym"), ==, 0);
	CHECK_INT(name_op(&t, FUSE_RMDIR, FUSE_ROOT_ID, "dir"), ==, 0);
	CHECK(access(at(&t, "share/dir"), F_OK) < 0);
	fs_stop(&t);
}

/* Is name one of the space-separated names? */
static bool has_name(const char *names, const char *name)
{
	char padded[1100], want[300];

	snprintf(padded, sizeof(padded), " %s ", names);
	snprintf(want, sizeof(want), " %s ", name);
	return strstr(padded, want) != NULL;
}

/* Names in a READDIR(PLUS) reply, joined with spaces. */
static void dir_names(const uint8_t *buf, size_t len, bool plus, char *out, size_t max, int *nodes)
{
	size_t pos = 0;

	*out = '\0';
	*nodes = 0;
	while (pos < len) {
		const struct fuse_entry_out *eo = (const void *)(buf + pos);
		const struct fuse_dirent *de = (const void *)(buf + pos + (plus ? sizeof(*eo) : 0));
		size_t rec = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + de->namelen) + (plus ? sizeof(*eo) : 0);

		if (plus && eo->nodeid)
			(*nodes)++;
		snprintf(out + strlen(out), max - strlen(out), "%s%.*s", *out ? " " : "", (int)de->namelen, de->name);
		pos += rec;
	}
}

TEST(fs_readdir_and_readdirplus)
{
	struct fs_test t;
	struct fuse_read_in in = {.size = 4096};
	struct args a = {.n = 0};
	static uint8_t buf[8192];
	char names[1024];
	size_t len;
	uint64_t fh;
	int nodes;

	fs_start(&t, false, true);
	host_write(at(&t, "share/b"), "b");
	CHECK_INT(mkdir(at(&t, "share/c"), 0755), ==, 0);
	CHECK_INT(open_node(&t, FUSE_OPENDIR, FUSE_ROOT_ID, O_RDONLY, &fh), ==, 0);
	in.fh = fh;
	put(&a, &in, sizeof(in));
	CHECK_INT(call(&t, FUSE_READDIR, FUSE_ROOT_ID, &a, buf, sizeof(buf), &len), ==, 0);
	dir_names(buf, len, false, names, sizeof(names), &nodes);
	CHECK(has_name(names, "hello"));
	CHECK(has_name(names, "b"));
	CHECK(has_name(names, "c"));
	CHECK(has_name(names, ".."));
	CHECK(!has_name(names, "outside"));
	CHECK_INT(call(&t, FUSE_READDIRPLUS, FUSE_ROOT_ID, &a, buf, sizeof(buf), &len), ==, 0);
	dir_names(buf, len, true, names, sizeof(names), &nodes);
	CHECK_INT(nodes, ==, 3); /* hello, b, c looked up; "." and ".." not */
	/* A small buffer takes a few entries; the next call goes on from the last offset. */
	{
		struct fuse_read_in small = {.fh = fh, .size = 64};
		char all[1024] = "";
		uint64_t off = 0;
		for (int i = 0; i < 10; i++) {
			const struct fuse_dirent *de;
			size_t pos = 0;
			small.offset = off;
			a.n = 0;
			put(&a, &small, sizeof(small));
			CHECK_INT(call(&t, FUSE_READDIR, FUSE_ROOT_ID, &a, buf, sizeof(buf), &len), ==, 0);
			CHECK_INT(len, <=, 64);
			if (len == 0)
				break;
			while (pos < len) {
				de = (const void *)(buf + pos);
				snprintf(all + strlen(all), sizeof(all) - strlen(all), "/%.*s", (int)de->namelen,
					 de->name);
				off = de->off;
				pos += FUSE_DIRENT_SIZE(de);
			}
		}
		CHECK_CONTAINS(all, "/hello");
		CHECK_CONTAINS(all, "/b");
		CHECK_CONTAINS(all, "/c");
	}
	CHECK_INT(release(&t, FUSE_RELEASEDIR, FUSE_ROOT_ID, fh), ==, 0);
	fs_stop(&t);
}

TEST(fs_names_that_leave_the_directory_are_refused)
{
	struct fs_test t;
	struct fuse_entry_out eo;
	static const char *const bad[] = {"..", ".", "", "../outside", "outside/secret", "/etc", "a/b"};
	char longname[300];

	fs_start(&t, false, true);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK_INT(lookup(&t, FUSE_ROOT_ID, bad[i], &eo), ==, -EINVAL);
		CHECK_INT(name_op(&t, FUSE_UNLINK, FUSE_ROOT_ID, bad[i]), ==, -EINVAL);
		CHECK_INT(mkdir_in(&t, FUSE_ROOT_ID, bad[i], &eo), ==, -EINVAL);
	}
	memset(longname, 'x', sizeof(longname) - 1);
	longname[256] = '\0';
	CHECK_INT(lookup(&t, FUSE_ROOT_ID, longname, &eo), ==, -ENAMETOOLONG);
	longname[256] = 'x';
	longname[sizeof(longname) - 1] = '\0';
	CHECK_INT(lookup(&t, FUSE_ROOT_ID, longname, &eo), ==, -EINVAL);
	/* A name with no NUL before the end of the request. */
	{
		struct args a = {.n = 0};
		put(&a, "hello", 5);
		CHECK_INT(call(&t, FUSE_LOOKUP, FUSE_ROOT_ID, &a, &eo, sizeof(eo), NULL), ==, -EINVAL);
	}
	/* A rename whose second name escapes, and one into a file. */
	{
		struct fuse_rename_in rn = {.newdir = FUSE_ROOT_ID};
		struct args a = {.n = 0};
		put(&a, &rn, sizeof(rn));
		put_str(&a, "hello");
		put_str(&a, "../outside/hello");
		CHECK_INT(call(&t, FUSE_RENAME, FUSE_ROOT_ID, &a, NULL, 0, NULL), ==, -EINVAL);
		CHECK_INT(lookup(&t, FUSE_ROOT_ID, "hello", &eo), ==, 0);
		a.n = 0;
		rn.newdir = eo.nodeid;
		put(&a, &rn, sizeof(rn));
		put_str(&a, "hello");
		put_str(&a, "x");
		CHECK_INT(call(&t, FUSE_RENAME, FUSE_ROOT_ID, &a, NULL, 0, NULL), ==, -ENOTDIR);
	}
	CHECK(access(at(&t, "outside/hello"), F_OK) < 0);
	CHECK(access(at(&t, "share/hello"), F_OK) == 0);
	fs_stop(&t);
}

TEST(fs_symlinks_are_never_followed)
{
	struct fs_test t;
	struct fuse_entry_out eo, in;
	char buf[256];
	size_t len;
	uint64_t fh;

	fs_start(&t, false, true);
	/* Planted on the host (a guest could make them too): absolute and relative escapes. */
	CHECK_INT(symlink(at(&t, "outside"), at(&t, "share/abs")), ==, 0);
	CHECK_INT(symlink("../outside/secret", at(&t, "share/rel")), ==, 0);
	CHECK_INT(symlink("/etc/passwd", at(&t, "share/passwd")), ==, 0);
	CHECK_INT(lookup(&t, FUSE_ROOT_ID, "abs", &eo), ==, 0);
	CHECK(S_ISLNK(eo.attr.mode)); /* the link itself, not the directory it names */
	CHECK_INT(lookup(&t, eo.nodeid, "secret", &in), ==, -ENOTDIR);
	CHECK_INT(open_node(&t, FUSE_OPENDIR, eo.nodeid, O_RDONLY, &fh), ==, -ENOTDIR);
	CHECK_INT(open_node(&t, FUSE_OPEN, eo.nodeid, O_RDONLY, &fh), ==, -ELOOP);
	{
		struct fuse_create_in ci = {.flags = O_RDWR | O_CREAT, .mode = S_IFREG | 0644};
		struct args a = {.n = 0};
		put(&a, &ci, sizeof(ci));
		put_str(&a, "x");
		CHECK_INT(call(&t, FUSE_CREATE, eo.nodeid, &a, buf, sizeof(buf), NULL), ==, -ENOTDIR);
	}
	CHECK_INT(lookup(&t, FUSE_ROOT_ID, "rel", &eo), ==, 0);
	CHECK(S_ISLNK(eo.attr.mode));
	CHECK_INT(open_node(&t, FUSE_OPEN, eo.nodeid, O_RDONLY, &fh), ==, -ELOOP);
	CHECK_INT(call(&t, FUSE_READLINK, eo.nodeid, NULL, buf, sizeof(buf), &len), ==, 0);
	CHECK(len == 17 && memcmp(buf, "../outside/secret", 17) == 0); /* text for the guest to resolve */
	/* Creating over a symlink's name does not write through it. */
	{
		struct fuse_entry_out ce;
		CHECK_INT(create(&t, FUSE_ROOT_ID, "passwd", O_WRONLY | O_TRUNC, &ce, &fh), ==, -ELOOP);
	}
	/* Nor does setting times, owner or xattrs on one reach its target. */
	{
		struct fuse_setattr_in sa = {.valid = FATTR_MODE, .mode = 0777};
		struct args a = {.n = 0};
		struct stat st;
		put(&a, &sa, sizeof(sa));
		CHECK_INT(call(&t, FUSE_SETATTR, eo.nodeid, &a, buf, sizeof(buf), NULL), ==, -EOPNOTSUPP);
		CHECK_INT(stat(at(&t, "outside/secret"), &st), ==, 0);
		CHECK_INT(st.st_mode & 0777, ==, 0644);
	}
	CHECK_STR(host_read(at(&t, "outside/secret"), buf, sizeof(buf)), "host secret\n");
	fs_stop(&t);
}

TEST(fs_unknown_nodeids_handles_and_opcodes)
{
	struct fs_test t;
	struct fuse_entry_out eo;
	struct fuse_attr_out ao;
	struct fuse_getattr_in gi = {.getattr_flags = FUSE_GETATTR_FH, .fh = 12345};
	struct args a = {.n = 0};
	static const uint64_t bogus[] = {0, 2, 3, 1ULL << 32, (1ULL << 32) | 1, (7ULL << 32) | 2, UINT64_MAX};
	char buf[64];
	size_t len;
	uint64_t fh;

	fs_start(&t, false, true);
	put(&a, &gi, sizeof(gi));
	for (size_t i = 0; i < ARRAY_SIZE(bogus); i++) {
		CHECK_INT(call(&t, FUSE_GETATTR, bogus[i], &a, &ao, sizeof(ao), NULL), ==, -ESTALE);
		CHECK_INT(lookup(&t, bogus[i], "hello", &eo), ==, -ESTALE);
		CHECK_INT(open_node(&t, FUSE_OPEN, bogus[i], O_RDONLY, &fh), ==, -ESTALE);
		CHECK_INT(read_file(&t, FUSE_ROOT_ID, bogus[i], 0, 10, buf, &len), ==, -EBADF);
		CHECK_INT(release(&t, FUSE_RELEASE, FUSE_ROOT_ID, bogus[i]), ==, -EBADF);
		forget(&t, bogus[i], 1);
	}
	/* An unknown fh with FUSE_GETATTR_FH falls back to the node. */
	CHECK_INT(call(&t, FUSE_GETATTR, FUSE_ROOT_ID, &a, &ao, sizeof(ao), NULL), ==, 0);
	/* A directory handle is not a file handle, nor the reverse. */
	CHECK_INT(open_node(&t, FUSE_OPENDIR, FUSE_ROOT_ID, O_RDONLY, &fh), ==, 0);
	CHECK_INT(read_file(&t, FUSE_ROOT_ID, fh, 0, 10, buf, &len), ==, -EBADF);
	CHECK_INT(release(&t, FUSE_RELEASE, FUSE_ROOT_ID, fh), ==, -EBADF);
	CHECK_INT(release(&t, FUSE_RELEASEDIR, FUSE_ROOT_ID, fh), ==, 0);
	CHECK_INT(release(&t, FUSE_RELEASEDIR, FUSE_ROOT_ID, fh), ==, -EBADF); /* twice */
	/* Opcodes this server does not serve, and ones nobody defined. */
	CHECK_INT(call(&t, FUSE_GETLK, FUSE_ROOT_ID, NULL, NULL, 0, NULL), ==, -ENOSYS);
	CHECK_INT(call(&t, FUSE_SETUPMAPPING, FUSE_ROOT_ID, NULL, NULL, 0, NULL), ==, -ENOSYS);
	CHECK_INT(call(&t, 7, FUSE_ROOT_ID, NULL, NULL, 0, NULL), ==, -ENOSYS);
	CHECK_INT(call(&t, 4096, FUSE_ROOT_ID, NULL, NULL, 0, NULL), ==, -ENOSYS);
	CHECK_INT(call(&t, UINT32_MAX, FUSE_ROOT_ID, NULL, NULL, 0, NULL), ==, -ENOSYS);
	/* A node that is not a directory is no parent. */
	CHECK_INT(lookup(&t, FUSE_ROOT_ID, "hello", &eo), ==, 0);
	CHECK_INT(lookup(&t, eo.nodeid, "x", &eo), ==, -ENOTDIR);
	fs_stop(&t);
}

TEST(fs_bad_lengths_and_offsets)
{
	struct fs_test t;
	struct fuse_entry_out eo;
	struct fuse_in_header h = {.opcode = FUSE_LOOKUP, .unique = 77, .nodeid = FUSE_ROOT_ID};
	struct fuse_out_header oh;
	struct args a = {.n = 0};
	char buf[64];
	size_t len;
	uint64_t fh;

	fs_start(&t, false, true);
	put_str(&a, "hello");
	/* The header claims more than the buffers hold, or less than itself. */
	h.len = 4096;
	CHECK_INT(raw_call(&t, REQUESTS, &h, &a, 0, 512), ==, sizeof(oh));
	memcpy(&oh, vdrv_ptr(&t.d, t.rep, sizeof(oh)), sizeof(oh));
	CHECK_INT(oh.error, ==, -EINVAL);
	CHECK_INT(oh.unique, ==, 77);
	h.len = 10;
	CHECK_INT(raw_call(&t, REQUESTS, &h, &a, 0, 512), ==, sizeof(oh));
	memcpy(&oh, vdrv_ptr(&t.d, t.rep, sizeof(oh)), sizeof(oh));
	CHECK_INT(oh.error, ==, -EINVAL);
	/* A request shorter than a header: answered, with unique 0. */
	h.len = sizeof(h) + (uint32_t)a.n;
	CHECK_INT(raw_call(&t, REQUESTS, &h, &a, 12, 512), ==, sizeof(oh));
	memcpy(&oh, vdrv_ptr(&t.d, t.rep, sizeof(oh)), sizeof(oh));
	CHECK_INT(oh.error, ==, -EINVAL);
	CHECK_INT(oh.unique, ==, 0);
	/* No room for a reply: nothing is done (no lookup the guest cannot forget). */
	CHECK_INT(raw_call(&t, REQUESTS, &h, &a, 0, 0), ==, 0);
	CHECK_INT(raw_call(&t, REQUESTS, &h, &a, 0, 10), ==, 0);
	CHECK_INT(raw_call(&t, REQUESTS, &h, &a, 0, sizeof(oh) + 8), ==, sizeof(oh));
	memcpy(&oh, vdrv_ptr(&t.d, t.rep, sizeof(oh)), sizeof(oh));
	CHECK_INT(oh.error, ==, -EINVAL);
	CHECK_INT(lookup(&t, FUSE_ROOT_ID, "hello", &eo), ==, 0);
	CHECK_INT(open_node(&t, FUSE_OPEN, eo.nodeid, O_RDWR, &fh), ==, 0);
	forget(&t, eo.nodeid, 1);
	{
		/* One forget freed it: the refused requests counted no lookup. */
		struct fuse_entry_out again;
		CHECK_INT(lookup(&t, FUSE_ROOT_ID, "hello", &again), ==, 0);
		CHECK(again.nodeid != eo.nodeid);
		forget(&t, again.nodeid, 1);
	}
	/* Truncated arguments. */
	CHECK_INT(call(&t, FUSE_READ, FUSE_ROOT_ID, &(struct args){.n = 8}, NULL, 0, NULL), ==, -EINVAL);
	CHECK_INT(call(&t, FUSE_INIT, 0, &(struct args){.n = 4}, NULL, 0, NULL), ==, -EINVAL);
	/* Offsets and sizes no file has. */
	CHECK_INT(read_file(&t, FUSE_ROOT_ID, fh, 1ULL << 63, 10, buf, &len), ==, -EINVAL);
	CHECK_INT(read_file(&t, FUSE_ROOT_ID, fh, UINT64_MAX, 10, buf, &len), ==, -EINVAL);
	CHECK_INT(read_file(&t, FUSE_ROOT_ID, fh, INT64_MAX - 4, 10, buf, &len), ==, -EINVAL);
	CHECK_INT(write_file(&t, FUSE_ROOT_ID, fh, INT64_MAX - 1, "0123456789"), ==, -EINVAL);
	{
		/* WRITE whose size is more than the data it carries, or than max_write. */
		struct fuse_write_in wi = {.fh = fh, .size = 100};
		a.n = 0;
		put(&a, &wi, sizeof(wi));
		put(&a, "short", 5);
		CHECK_INT(call(&t, FUSE_WRITE, FUSE_ROOT_ID, &a, NULL, 0, NULL), ==, -EINVAL);
		wi.size = (1u << 20) + 1;
		a.n = 0;
		put(&a, &wi, sizeof(wi));
		CHECK_INT(call(&t, FUSE_WRITE, FUSE_ROOT_ID, &a, NULL, 0, NULL), ==, -EINVAL);
	}
	{
		/* A huge READ is cut to the reply buffer (and max_write), never beyond. */
		struct fuse_in_header rh = {
		    .len = sizeof(rh) + sizeof(struct fuse_read_in), .opcode = FUSE_READ, .unique = 5};
		struct fuse_read_in ri = {.fh = fh, .size = UINT32_MAX};
		a.n = 0;
		put(&a, &ri, sizeof(ri));
		CHECK_INT(raw_call(&t, REQUESTS, &rh, &a, 0, sizeof(oh) + 5), ==, sizeof(oh) + 5);
	}
	{
		/* BATCH_FORGET counting more entries than it carries. */
		struct fuse_in_header bh = {.opcode = FUSE_BATCH_FORGET, .unique = 6};
		struct fuse_batch_forget_in bf = {.count = UINT32_MAX};
		struct fuse_forget_one one = {.nodeid = FUSE_ROOT_ID, .nlookup = 5};
		a.n = 0;
		put(&a, &bf, sizeof(bf));
		put(&a, &one, sizeof(one));
		bh.len = sizeof(bh) + (uint32_t)a.n;
		CHECK_INT(raw_call(&t, HIPRIO, &bh, &a, 0, 0), ==, 0);
	}
	{
		/* SETXATTR whose value size is past the request, and a huge one. */
		uint32_t sx[2] = {1000, 0};
		a.n = 0;
		put(&a, sx, sizeof(sx));
		put_str(&a, "user.x");
		put(&a, "v", 1);
		CHECK_INT(call(&t, FUSE_SETXATTR, FUSE_ROOT_ID, &a, NULL, 0, NULL), ==, -EINVAL);
		sx[0] = UINT32_MAX;
		memcpy(a.b, sx, sizeof(sx));
		CHECK_INT(call(&t, FUSE_SETXATTR, FUSE_ROOT_ID, &a, NULL, 0, NULL), ==, -EINVAL);
	}
	{
		/* Arguments larger than any request has: refused before they are copied. */
		struct fuse_in_header bh = {
		    .len = REQ_MAX, .opcode = FUSE_SETXATTR, .unique = 9, .nodeid = FUSE_ROOT_ID};
		CHECK_INT(raw_call(&t, REQUESTS, &bh, NULL, REQ_MAX, 512), ==, sizeof(oh));
		memcpy(&oh, vdrv_ptr(&t.d, t.rep, sizeof(oh)), sizeof(oh));
		CHECK_INT(oh.error, ==, -EINVAL);
	}
	{
		struct fuse_lseek_in li = {.fh = fh, .offset = 0, .whence = 77};
		a.n = 0;
		put(&a, &li, sizeof(li));
		CHECK_INT(call(&t, FUSE_LSEEK, FUSE_ROOT_ID, &a, buf, sizeof(buf), NULL), ==, -EINVAL);
	}
	{
		struct fuse_fallocate_in fi = {.fh = fh, .offset = UINT64_MAX - 1, .length = 10};
		a.n = 0;
		put(&a, &fi, sizeof(fi));
		CHECK_INT(call(&t, FUSE_FALLOCATE, FUSE_ROOT_ID, &a, NULL, 0, NULL), ==, -EINVAL);
		fi = (struct fuse_fallocate_in){.fh = fh, .length = 10, .mode = 0x80};
		memcpy(a.b, &fi, sizeof(fi));
		CHECK_INT(call(&t, FUSE_FALLOCATE, FUSE_ROOT_ID, &a, NULL, 0, NULL), ==, -EOPNOTSUPP);
	}
	{
		/* Device nodes cannot be made; fifos can. */
		struct fuse_mknod_in mi = {.mode = S_IFCHR | 0666, .rdev = 0x0103};
		a.n = 0;
		put(&a, &mi, sizeof(mi));
		put_str(&a, "null");
		CHECK_INT(call(&t, FUSE_MKNOD, FUSE_ROOT_ID, &a, &eo, sizeof(eo), NULL), ==, -EPERM);
		mi.mode = S_IFBLK | 0600;
		memcpy(a.b, &mi, sizeof(mi));
		CHECK_INT(call(&t, FUSE_MKNOD, FUSE_ROOT_ID, &a, &eo, sizeof(eo), NULL), ==, -EPERM);
		mi.mode = S_IFIFO | 0600;
		memcpy(a.b, &mi, sizeof(mi));
		CHECK_INT(call(&t, FUSE_MKNOD, FUSE_ROOT_ID, &a, &eo, sizeof(eo), NULL), ==, 0);
		CHECK(S_ISFIFO(eo.attr.mode));
		CHECK_INT(open_node(&t, FUSE_OPEN, eo.nodeid, O_RDONLY, &fh), ==, -EACCES);
	}
	/* Flags that would make device nodes or follow links are refused. */
	{
		struct fuse_rename2_in r2 = {.newdir = FUSE_ROOT_ID, .flags = RENAME_WHITEOUT};
		a.n = 0;
		put(&a, &r2, sizeof(r2));
		put_str(&a, "hello");
		put_str(&a, "h2");
		CHECK_INT(call(&t, FUSE_RENAME2, FUSE_ROOT_ID, &a, NULL, 0, NULL), ==, -EINVAL);
		r2.flags = RENAME_NOREPLACE;
		memcpy(a.b, &r2, sizeof(r2));
		CHECK_INT(call(&t, FUSE_RENAME2, FUSE_ROOT_ID, &a, NULL, 0, NULL), ==, 0);
		CHECK(access(at(&t, "share/h2"), F_OK) == 0);
	}
	fs_stop(&t);
}

/* Post a chain of readable then writable buffers on the request queue;
 * returns the used length. */
static uint32_t post_chain(struct fs_test *t, const struct vdrv_seg *segs, unsigned n)
{
	uint16_t id, head = vdrv_post(&t->d, REQUESTS, segs, n);
	uint32_t len;

	vdrv_kick(&t->d, REQUESTS);
	CHECK(vdrv_used(&t->d, REQUESTS, &id, &len));
	CHECK_INT(id, ==, head);
	return len;
}

TEST(fs_large_io_through_many_buffers)
{
	struct fs_test t;
	struct fuse_entry_out eo;
	struct fuse_in_header h = {.opcode = FUSE_WRITE, .unique = 1};
	struct fuse_write_in wi = {.size = 1 << 20};
	struct fuse_read_in ri = {.size = 1 << 20};
	struct fuse_out_header oh;
	struct vdrv_seg segs[40];
	uint64_t data, back, hdr, rep, fh;
	unsigned n = 0;
	struct stat st;
	uint8_t *p;

	fs_start(&t, false, true);
	CHECK_INT(create(&t, FUSE_ROOT_ID, "big", O_RDWR, &eo, &fh), ==, 0);
	hdr = vdrv_alloc(&t.d, 4096);
	rep = vdrv_alloc(&t.d, 4096);
	data = vdrv_alloc(&t.d, 1 << 20);
	back = vdrv_alloc(&t.d, 1 << 20);
	p = vdrv_ptr(&t.d, data, 1 << 20);
	for (unsigned i = 0; i < (1u << 20); i++)
		p[i] = (uint8_t)(i * 7 + i / 4096);
	/* 1 MiB of data in 32 buffers after the header's (the fake driver's
	 * queue has 64 entries; Linux sends one per page, indirect). */
	h.len = sizeof(h) + sizeof(wi) + wi.size;
	h.nodeid = eo.nodeid;
	wi.fh = fh;
	memcpy(vdrv_ptr(&t.d, hdr, 4096), &h, sizeof(h));
	memcpy(vdrv_ptr(&t.d, hdr + sizeof(h), sizeof(wi)), &wi, sizeof(wi));
	segs[n++] = (struct vdrv_seg){hdr, sizeof(h) + sizeof(wi), false};
	for (unsigned i = 0; i < 32; i++)
		segs[n++] = (struct vdrv_seg){data + i * 32768ULL, 32768, false};
	segs[n++] = (struct vdrv_seg){rep, sizeof(oh) + sizeof(struct fuse_write_out), true};
	CHECK_INT(post_chain(&t, segs, n), ==, sizeof(oh) + sizeof(struct fuse_write_out));
	memcpy(&oh, vdrv_ptr(&t.d, rep, sizeof(oh)), sizeof(oh));
	CHECK_INT(oh.error, ==, 0);
	CHECK_INT(*(uint32_t *)vdrv_ptr(&t.d, rep + sizeof(oh), 4), ==, 1 << 20);
	CHECK_INT(stat(at(&t, "share/big"), &st), ==, 0);
	CHECK_INT(st.st_size, ==, 1 << 20);

	/* Read it back into 32 other buffers, the reply header alone in the first. */
	n = 0;
	h = (struct fuse_in_header){
	    .len = sizeof(h) + sizeof(ri), .opcode = FUSE_READ, .unique = 2, .nodeid = eo.nodeid};
	ri.fh = fh;
	memcpy(vdrv_ptr(&t.d, hdr, 4096), &h, sizeof(h));
	memcpy(vdrv_ptr(&t.d, hdr + sizeof(h), sizeof(ri)), &ri, sizeof(ri));
	segs[n++] = (struct vdrv_seg){hdr, sizeof(h) + sizeof(ri), false};
	segs[n++] = (struct vdrv_seg){rep, sizeof(oh), true};
	for (unsigned i = 0; i < 32; i++)
		segs[n++] = (struct vdrv_seg){back + i * 32768ULL, 32768, true};
	CHECK_INT(post_chain(&t, segs, n), ==, sizeof(oh) + (1 << 20));
	CHECK(memcmp(vdrv_ptr(&t.d, back, 1 << 20), p, 1 << 20) == 0);
	fs_stop(&t);
}

TEST(fs_readonly_refuses_every_change)
{
	struct fs_test t;
	struct fuse_entry_out eo, ne;
	struct args a = {.n = 0};
	char buf[256];
	size_t len;
	uint64_t fh;

	fs_start(&t, true, true);
	CHECK_INT(lookup(&t, FUSE_ROOT_ID, "hello", &eo), ==, 0);
	CHECK_INT(open_node(&t, FUSE_OPEN, eo.nodeid, O_RDONLY, &fh), ==, 0);
	CHECK_INT(read_file(&t, eo.nodeid, fh, 0, 100, buf, &len), ==, 0);
	CHECK_INT(len, ==, 13);
	CHECK_INT(write_file(&t, eo.nodeid, fh, 0, "x"), ==, -EROFS);
	CHECK_INT(open_node(&t, FUSE_OPEN, eo.nodeid, O_WRONLY, &fh), ==, -EROFS);
	CHECK_INT(open_node(&t, FUSE_OPEN, eo.nodeid, O_RDWR, &fh), ==, -EROFS);
	CHECK_INT(open_node(&t, FUSE_OPEN, eo.nodeid, O_RDONLY | O_TRUNC, &fh), ==, -EROFS);
	CHECK_INT(create(&t, FUSE_ROOT_ID, "new", O_RDWR, &ne, &fh), ==, -EROFS);
	CHECK_INT(mkdir_in(&t, FUSE_ROOT_ID, "d", &ne), ==, -EROFS);
	CHECK_INT(name_op(&t, FUSE_UNLINK, FUSE_ROOT_ID, "hello"), ==, -EROFS);
	CHECK_INT(name_op(&t, FUSE_RMDIR, FUSE_ROOT_ID, "hello"), ==, -EROFS);
	CHECK_INT(name_op(&t, FUSE_REMOVEXATTR, eo.nodeid, "user.x"), ==, -EROFS);
	{
		struct fuse_setattr_in sa = {.valid = FATTR_SIZE, .size = 0};
		put(&a, &sa, sizeof(sa));
		CHECK_INT(call(&t, FUSE_SETATTR, eo.nodeid, &a, buf, sizeof(buf), NULL), ==, -EROFS);
	}
	{
		struct fuse_rename_in rn = {.newdir = FUSE_ROOT_ID};
		a.n = 0;
		put(&a, &rn, sizeof(rn));
		put_str(&a, "hello");
		put_str(&a, "bye");
		CHECK_INT(call(&t, FUSE_RENAME, FUSE_ROOT_ID, &a, NULL, 0, NULL), ==, -EROFS);
	}
	{
		uint32_t sx[2] = {1, 0};
		a.n = 0;
		put(&a, sx, sizeof(sx));
		put_str(&a, "user.x");
		put(&a, "v", 1);
		CHECK_INT(call(&t, FUSE_SETXATTR, eo.nodeid, &a, NULL, 0, NULL), ==, -EROFS);
	}
	CHECK_STR(host_read(at(&t, "share/hello"), buf, sizeof(buf)), "hello, guest\n");
	CHECK(access(at(&t, "share/new"), F_OK) < 0);
	fs_stop(&t);
}

TEST(fs_xattrs_only_in_the_guest_namespaces)
{
	struct fs_test t;
	struct fuse_entry_out eo;
	struct fuse_getxattr_in gi = {.size = 64};
	struct args a = {.n = 0};
	char buf[256];
	size_t len;
	uint32_t sx[2] = {5, 0};

	fs_start(&t, false, true);
	CHECK_INT(lookup(&t, FUSE_ROOT_ID, "hello", &eo), ==, 0);
	put(&a, sx, sizeof(sx));
	put_str(&a, "user.color");
	put(&a, "green", 5);
	if (call(&t, FUSE_SETXATTR, eo.nodeid, &a, NULL, 0, NULL) == -EOPNOTSUPP) {
		fs_stop(&t);
		test_skip("%s has no user xattrs", t.base);
	}
	a.n = 0;
	put(&a, &gi, sizeof(gi));
	put_str(&a, "user.color");
	CHECK_INT(call(&t, FUSE_GETXATTR, eo.nodeid, &a, buf, sizeof(buf), &len), ==, 0);
	CHECK(len == 5 && memcmp(buf, "green", 5) == 0);
	CHECK_INT(getxattr(at(&t, "share/hello"), "user.color", buf, sizeof(buf)), ==, 5);
	/* Size query. */
	gi.size = 0;
	memcpy(a.b, &gi, sizeof(gi));
	{
		struct fuse_getxattr_out go;
		CHECK_INT(call(&t, FUSE_GETXATTR, eo.nodeid, &a, &go, sizeof(go), NULL), ==, 0);
		CHECK_INT(go.size, ==, 5);
	}
	/* trusted.* is the host's (overlayfs keeps its state there). */
	a.n = 0;
	sx[0] = 1;
	put(&a, sx, sizeof(sx));
	put_str(&a, "trusted.overlay.opaque");
	put(&a, "y", 1);
	CHECK_INT(call(&t, FUSE_SETXATTR, eo.nodeid, &a, NULL, 0, NULL), ==, -EPERM);
	if (geteuid() == 0 && setxattr(at(&t, "share/hello"), "trusted.host", "h", 1, 0) == 0) {
		a.n = 0;
		gi.size = 64;
		put(&a, &gi, sizeof(gi));
		put_str(&a, "trusted.host");
		CHECK_INT(call(&t, FUSE_GETXATTR, eo.nodeid, &a, buf, sizeof(buf), NULL), ==, -ENODATA);
	}
	a.n = 0;
	gi.size = 256;
	put(&a, &gi, sizeof(gi));
	CHECK_INT(call(&t, FUSE_LISTXATTR, eo.nodeid, &a, buf, sizeof(buf), &len), ==, 0);
	CHECK(len == 11 && memcmp(buf, "user.color", 11) == 0);
	CHECK_INT(name_op(&t, FUSE_REMOVEXATTR, eo.nodeid, "user.color"), ==, 0);
	CHECK_INT(getxattr(at(&t, "share/hello"), "user.color", buf, sizeof(buf)), <, 0);
	fs_stop(&t);
}

TEST(fs_fd_budget_bounds_lookups)
{
	struct fs_test t;
	struct rlimit rl = {600, 600};
	struct fuse_entry_out eo;
	char name[32];
	int ok = 0, refused = 0;

	/* With 600 fds the tables get 300: a guest cannot take them all. */
	CHECK_INT(setrlimit(RLIMIT_NOFILE, &rl), ==, 0);
	fs_start(&t, false, true);
	for (int i = 0; i < 400; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "share/f%d", i);
		host_write(at(&t, rel), "");
	}
	for (int i = 0; i < 400; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		int r = lookup(&t, FUSE_ROOT_ID, name, &eo);
		ok += r == 0;
		refused += r == -ENFILE;
	}
	CHECK_INT(ok, ==, 299); /* the root holds one */
	CHECK_INT(refused, ==, 101);
	/* Forgetting gives room back. */
	forget(&t, ((uint64_t)1 << 32) | 2, 1);
	CHECK_INT(lookup(&t, FUSE_ROOT_ID, "f399", &eo), ==, 0);
	fs_stop(&t);
}

TEST(fs_reset_and_destroy_forget_everything)
{
	struct fs_test t;
	struct fuse_entry_out eo;
	struct fuse_attr_out ao;
	struct fuse_getattr_in gi = {0};
	struct args a = {.n = 0};
	struct fuse_init_out io;
	uint64_t fh;

	fs_start(&t, false, true);
	put(&a, &gi, sizeof(gi));
	CHECK_INT(lookup(&t, FUSE_ROOT_ID, "hello", &eo), ==, 0);
	CHECK_INT(open_node(&t, FUSE_OPEN, eo.nodeid, O_RDONLY, &fh), ==, 0);
	CHECK_INT(call(&t, FUSE_DESTROY, 0, NULL, NULL, 0, NULL), ==, 0);
	CHECK_INT(call(&t, FUSE_GETATTR, eo.nodeid, &a, &ao, sizeof(ao), NULL), ==, -EIO); /* not mounted */
	CHECK_INT(do_init(&t, &io), ==, 0);
	CHECK_INT(call(&t, FUSE_GETATTR, eo.nodeid, &a, &ao, sizeof(ao), NULL), ==, -ESTALE);
	CHECK_INT(release(&t, FUSE_RELEASE, eo.nodeid, fh), ==, -EBADF);
	CHECK_INT(lookup(&t, FUSE_ROOT_ID, "hello", &eo), ==, 0);
	vdrv_reinit(&t.d);
	CHECK_INT(do_init(&t, &io), ==, 0);
	CHECK_INT(call(&t, FUSE_GETATTR, eo.nodeid, &a, &ao, sizeof(ao), NULL), ==, -ESTALE);
	fs_stop(&t);
}

TEST(fs_device_refuses_snapshot_and_migration)
{
	struct fs_test t;
	struct err *e = NULL;

	fs_start(&t, false, false);
	CHECK_INT(devices_check_movable(t.d.vm->devices, &e), ==, -EOPNOTSUPP);
	CHECK_CONTAINS(e->msg, "virtio-fs 'share': ");
	CHECK_CONTAINS(e->msg, "cannot be saved or moved");
	err_free(&e);
	fs_stop(&t);
}

TEST(fs_missing_directory_is_a_clear_error)
{
	struct vm *vm = vdrv_fake_vm();
	struct fs_config c = {.tag = "gone", .path = "/nonexistent/casulo-share"};
	struct err *e = NULL;

	CHECK_INT(virtio_fs_create(vm, &c, &e), ==, -ENOENT);
	CHECK_STR(e->msg, "virtio-fs 'gone': directory '/nonexistent/casulo-share': No such file or directory");
	err_free(&e);
	c.path = "/proc/version";
	CHECK_INT(virtio_fs_create(vm, &c, &e), ==, -ENOTDIR);
	err_free(&e);
	vdrv_free_vm(vm);
}

TEST(fs_option)
{
	struct vm_config cfg;
	struct err *e = NULL;
	static const struct {
		const char *spec, *error;
	} bad[] = {
	    {"path=/srv", "--fs 'path=/srv': give both tag=TAG and path=DIR"},
	    {"tag=a", "--fs 'tag=a': give both tag=TAG and path=DIR"},
	    {"tag=a b,path=/srv", "--fs 'tag=a b,path=/srv': tag 'a b' must be 1-36 letters, digits, '.', '_' or '-'"},
	    {"tag=0123456789012345678901234567890123456,path=/srv",
	     "--fs 'tag=0123456789012345678901234567890123456,path=/srv': tag '0123456789012345678901234567890123456' "
	     "must be 1-36 letters, digits, '.', '_' or '-'"},
	    {"tag=a,path=/srv,readonly=maybe",
	     "--fs 'tag=a,path=/srv,readonly=maybe': readonly 'maybe' is not on or off"},
	    {"tag=a,path=/srv,cache=none", "--fs 'tag=a,path=/srv,cache=none': unknown key 'cache'"},
	    {"tag=,path=/srv", "--fs 'tag=,path=/srv': 'tag' needs a value"},
	    {"tag=root,path=/x", "--fs 'tag=root,path=/x': tag 'root' is given twice"},
	};

	vm_config_defaults(&cfg);
	CHECK_INT(vm_config_add_fs(&cfg, "tag=root,path=/srv/rootfs,readonly=on", &e), ==, 0);
	CHECK_INT(cfg.nfs, ==, 1);
	CHECK_STR(cfg.fs[0].tag, "root");
	CHECK_STR(cfg.fs[0].path, "/srv/rootfs");
	CHECK(cfg.fs[0].readonly);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK_INT(vm_config_add_fs(&cfg, bad[i].spec, &e), ==, -EINVAL);
		CHECK_STR(e ? e->msg : NULL, bad[i].error);
		err_free(&e);
	}
	CHECK_INT(cfg.nfs, ==, 1);
	vm_config_free(&cfg);
}
