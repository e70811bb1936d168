/*
 * guest-tool: what the device tests run inside the guest, where busybox
 * has no vsock.  Built static and put in an extra initramfs archive
 * (tests/guest-tools/mkcpio.py) that the tests append to the default
 * guest's initrd.
 *
 *   guest-tool vsock-listen PORT        echo every connection on PORT (forks)
 *   guest-tool vsock-connect CID PORT   stdin to the connection, the
 *                                       connection to stdout; half-closes
 *                                       at the end of stdin
 *   guest-tool memtouch MIB             write every page of MIB MiB, then free them
 *   guest-tool mmap-write FILE TEXT     write TEXT at the start of FILE through a
 *                                       shared mapping (msync), print what it replaced
 *   guest-tool outl PORT VALUE          a 32-bit port write (the exit status
 *                                       port 0x604, before a reboot -f)
 *   guest-tool disk-read DEV BS SECONDS [THREADS]
 *                                       read DEV with O_DIRECT, BS bytes at a time,
 *                                       one after the other (wrapping), for SECONDS,
 *                                       in THREADS threads (default 1)
 *   guest-tool tcp-send IP PORT SECONDS write to a TCP peer for SECONDS
 *   guest-tool tcp-recv IP PORT SECONDS read from a TCP peer for SECONDS
 *     (the last three print "PROGRESS MS BYTES OPS" every 200 ms, counted
 *     from the first request, and "DONE MS BYTES OPS" at the end)
 *
 * Errors print "guest-tool: ACTION: strerror" and exit 1.
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define CHUNK (64 * 1024)

static int fail(const char *what)
{
	fprintf(stderr, "guest-tool: %s: %s\n", what, strerror(errno));
	return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void echo(int fd)
{
	static char buf[CHUNK];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write_all(fd, buf, (size_t)n) < 0)
			break;
	shutdown(fd, SHUT_WR);
	close(fd);
}

static int vsock_listen(unsigned port)
{
	struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd < 0)
		return fail("socket");
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return fail("bind");
	if (listen(fd, 16) < 0)
		return fail("listen");
	signal(SIGCHLD, SIG_IGN);
	printf("listening on %u\n", port);
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			return fail("accept");
		}
		if (fork() == 0) {
			close(fd);
			echo(c);
			_exit(0);
		}
		close(c);
	}
}

/* Both directions at once: an echo peer stops reading when we stop. */
static int vsock_connect(unsigned cid, unsigned port)
{
	struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	static char in[CHUNK], out[CHUNK];
	size_t in_len = 0, in_off = 0;
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	int stdin_open = 1, sock_open = 1;

	if (fd < 0)
		return fail("socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return fail("connect");
	while (sock_open) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN | (in_len > in_off ? POLLOUT : 0)},
				      {.fd = stdin_open && in_len == in_off ? 0 : -1, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return fail("poll");
		}
		if (p[1].revents) {
			ssize_t n = read(0, in, sizeof(in));
			if (n < 0)
				return fail("read stdin");
			if (n == 0) {
				stdin_open = 0;
				shutdown(fd, SHUT_WR);
			}
			in_len = (size_t)n;
			in_off = 0;
		}
		if ((p[0].revents & POLLOUT) && in_len > in_off) {
			ssize_t n = send(fd, in + in_off, in_len - in_off, MSG_DONTWAIT);
			if (n < 0 && errno != EAGAIN)
				return fail("send");
			if (n > 0)
				in_off += (size_t)n;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(fd, out, sizeof(out), MSG_DONTWAIT);
			if (n < 0 && errno != EAGAIN)
				return fail("recv");
			if (n == 0)
				sock_open = 0;
			if (n > 0 && write_all(1, out, (size_t)n) < 0)
				return fail("write stdout");
		}
	}
	close(fd);
	return 0;
}

static int memtouch(unsigned long mib)
{
	size_t len = mib << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return fail("mmap");
	for (size_t off = 0; off < len; off += 4096)
		p[off] = 1;
	munmap(p, len);
	return 0;
}

/* A file's page, changed through a MAP_SHARED mapping: what virtio-fs
 * must carry back to the host without DAX. */
static int mmap_write(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_RDWR);
	char *p;

	if (fd < 0)
		return fail("open");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap");
	printf("replaced: %.*s\n", (int)len, p);
	memcpy(p, text, len);
	if (msync(p, len, MS_SYNC) < 0)
		return fail("msync");
	munmap(p, len);
	close(fd);
	return 0;
}

static int port_write(unsigned long port, unsigned long value)
{
	if (port > 0xfffc || ioperm(port, 4, 1) < 0)
		return fail("ioperm");
	outl((unsigned)value, (unsigned short)port);
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Progress of a transfer for the host to read off the console. */
struct progress {
	uint64_t start, next, bytes, ops;
};

static void progress_start(struct progress *p)
{
	p->start = mono_ms();
	p->next = p->start + 200;
	p->bytes = p->ops = 0;
}

/* Print the counts when due; returns false once `seconds` have passed. */
static int progress_tick(struct progress *p, unsigned seconds)
{
	uint64_t now = mono_ms();

	if (now >= p->next) {
		printf("PROGRESS %llu %llu %llu\n", (unsigned long long)(now - p->start), (unsigned long long)p->bytes,
		       (unsigned long long)p->ops);
		fflush(stdout);
		p->next += 200;
	}
	if (now - p->start >= seconds * 1000ULL) {
		printf("DONE %llu %llu %llu\n", (unsigned long long)(now - p->start), (unsigned long long)p->bytes,
		       (unsigned long long)p->ops);
		fflush(stdout);
		return 0;
	}
	return 1;
}

/* One more request done. */
static int progress_add(struct progress *p, uint64_t bytes, unsigned seconds)
{
	p->bytes += bytes;
	p->ops++;
	return progress_tick(p, seconds);
}

/* disk-read: each thread reads its own stretch of the disk, one block
 * after the other, so that `threads` requests are in flight at once: the
 * device's queue never runs dry for want of a slow guest's next request. */
struct reader {
	int fd;
	size_t bs;
	off_t start, size;
	uint64_t bytes, ops; /* atomics */
	int failed;
};

static void *reader_thread(void *arg)
{
	struct reader *r = arg;
	void *buf;
	off_t off = r->start;

	if (posix_memalign(&buf, 4096, r->bs) != 0) {
		r->failed = ENOMEM;
		return NULL;
	}
	for (;;) {
		if (off + (off_t)r->bs > r->size)
			off = 0;
		if (pread(r->fd, buf, r->bs, off) != (ssize_t)r->bs) {
			r->failed = errno ? errno : EIO;
			return NULL;
		}
		off += (off_t)r->bs;
		__atomic_add_fetch(&r->bytes, r->bs, __ATOMIC_RELAXED);
		__atomic_add_fetch(&r->ops, 1, __ATOMIC_RELAXED);
	}
}

static int disk_read(const char *dev, size_t bs, unsigned seconds, unsigned threads)
{
	int fd = open(dev, O_RDONLY | O_DIRECT);
	struct reader r[64];
	struct progress p;
	pthread_t t;
	off_t size;

	if (fd < 0)
		return fail("open");
	size = lseek(fd, 0, SEEK_END);
	if (size < (off_t)bs || bs == 0 || bs % 512 || threads == 0 || threads > 64)
		return fail("disk size, block size or thread count");
	progress_start(&p);
	for (unsigned i = 0; i < threads; i++) {
		r[i] = (struct reader){fd, bs, (off_t)(size / threads * i / (off_t)bs * (off_t)bs), size, 0, 0, 0};
		if (pthread_create(&t, NULL, reader_thread, &r[i]) != 0)
			return fail("pthread_create");
	}
	/* Sum up what the readers did, every 10 ms. */
	do {
		usleep(10000);
		p.bytes = p.ops = 0;
		for (unsigned i = 0; i < threads; i++) {
			if (r[i].failed) {
				errno = r[i].failed;
				return fail("pread");
			}
			p.bytes += __atomic_load_n(&r[i].bytes, __ATOMIC_RELAXED);
			p.ops += __atomic_load_n(&r[i].ops, __ATOMIC_RELAXED);
		}
	} while (progress_tick(&p, seconds));
	_exit(0); /* the readers are still reading */
}

static int tcp_stream(int sending, const char *ip, unsigned port, unsigned seconds)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	static char buf[CHUNK];
	struct progress p;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;

	if (fd < 0)
		return fail("socket");
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return fail("address");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail("connect");
	memset(buf, 'x', sizeof(buf));
	progress_start(&p);
	do {
		n = sending ? write(fd, buf, sizeof(buf)) : read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			n = 0;
		if (n < 0)
			return fail(sending ? "write" : "read");
		if (n == 0 && !sending)
			break;
	} while (progress_add(&p, (uint64_t)n, seconds));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "disk-read") == 0)
		return disk_read(argv[2], strtoul(argv[3], NULL, 0), (unsigned)strtoul(argv[4], NULL, 10),
				 argc == 6 ? (unsigned)strtoul(argv[5], NULL, 10) : 1);
	if (argc == 5 && (strcmp(argv[1], "tcp-send") == 0 || strcmp(argv[1], "tcp-recv") == 0))
		return tcp_stream(argv[1][4] == 's', argv[2], (unsigned)strtoul(argv[3], NULL, 10),
				  (unsigned)strtoul(argv[4], NULL, 10));
	if (argc == 3 && strcmp(argv[1], "vsock-listen") == 0)
		return vsock_listen((unsigned)strtoul(argv[2], NULL, 10));
	if (argc == 4 && strcmp(argv[1], "vsock-connect") == 0)
		return vsock_connect((unsigned)strtoul(argv[2], NULL, 10), (unsigned)strtoul(argv[3], NULL, 10));
	if (argc == 3 && strcmp(argv[1], "memtouch") == 0)
		return memtouch(strtoul(argv[2], NULL, 10));
	if (argc == 4 && strcmp(argv[1], "mmap-write") == 0)
		return mmap_write(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "outl") == 0)
		return port_write(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0));
	fprintf(
	    stderr,
	    "usage: guest-tool vsock-listen PORT | vsock-connect CID PORT | memtouch MIB | "
	    "mmap-write FILE TEXT | outl PORT VALUE | disk-read DEV BS SECONDS [THREADS] | tcp-send IP PORT SECONDS | "
	    "tcp-recv IP PORT SECONDS\n");
	return 2;
}
