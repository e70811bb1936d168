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
 *
 * Errors print "guest-tool: ACTION: strerror" and exit 1.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
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
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	static char in[CHUNK], out[CHUNK];
	size_t in_len = 0, in_off = 0;
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	int stdin_open = 1, sock_open = 1;

	if (fd < 0)
		return fail("socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return fail("connect");
	while (sock_open) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN | (in_len > in_off ? POLLOUT : 0) },
				       { .fd = stdin_open && in_len == in_off ? 0 : -1, .events = POLLIN } };
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

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "vsock-listen") == 0)
		return vsock_listen((unsigned)strtoul(argv[2], NULL, 10));
	if (argc == 4 && strcmp(argv[1], "vsock-connect") == 0)
		return vsock_connect((unsigned)strtoul(argv[2], NULL, 10), (unsigned)strtoul(argv[3], NULL, 10));
	if (argc == 3 && strcmp(argv[1], "memtouch") == 0)
		return memtouch(strtoul(argv[2], NULL, 10));
	fprintf(stderr, "usage: guest-tool vsock-listen PORT | vsock-connect CID PORT | memtouch MIB\n");
	return 2;
}
