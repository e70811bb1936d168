/* virtio-console with file and socket backends, driven inline. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "test.h"
#include "virtio-driver.h"
#include "vmm/devices/virtio/console.h"

#define RXQ 0
#define TXQ 1

static void make_console(struct vdrv *d, enum console2_kind kind, const char *path)
{
	struct console2_config c = {.kind = kind, .path = path};
	struct vm *vm = vdrv_fake_vm();
	struct err *e = NULL;

	CHECK_INT(virtio_console_create(vm, &c, &e), ==, 0);
	if (e)
		test_fail_at(__FILE__, __LINE__, "%s", e->msg);
	vdrv_init(d, vm, 0, 2);
}

static void guest_write(struct vdrv *d, const char *text)
{
	uint64_t gpa = vdrv_alloc(d, strlen(text) + 1);
	uint16_t id;
	uint32_t len;

	memcpy(vdrv_ptr(d, gpa, strlen(text)), text, strlen(text));
	vdrv_post_one(d, TXQ, gpa, (uint32_t)strlen(text), false);
	vdrv_kick(d, TXQ);
	/* Always returned at once: Linux spins until it is. */
	CHECK(vdrv_used(d, TXQ, &id, &len));
}

static char *temp_path(const char *name)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "/tmp/casulo-vcon-%d-%s", getpid(), name);
	unlink(buf);
	return buf;
}

static int connect_to(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	CHECK_INT(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
	return fd;
}

TEST(console_file_backend_gets_output)
{
	char *path = temp_path("out");
	struct vdrv d;
	char buf[64] = "";
	int fd;

	make_console(&d, CONSOLE2_FILE, path);
	CHECK_INT(vdrv_read32(&d, 0x008), ==, 3); /* VIRTIO_ID_CONSOLE */
	guest_write(&d, "hello ");
	guest_write(&d, "hvc0\n");
	fd = open(path, O_RDONLY);
	CHECK(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	CHECK_STR(buf, "hello hvc0\n");
	vdrv_free_vm(d.vm);
	unlink(path);
}

TEST(console_socket_both_ways)
{
	char *path = strdup(temp_path("sock"));
	struct vdrv d;
	uint64_t rx;
	char buf[64] = "";
	uint16_t id;
	uint32_t len;
	int c;

	make_console(&d, CONSOLE2_SOCKET, path);
	guest_write(&d, "nobody-listens\n"); /* no client: discarded */
	c = connect_to(path);
	virtio_console_poll_backend(d.vd);
	guest_write(&d, "to-host\n");
	CHECK_INT(recv(c, buf, sizeof(buf) - 1, MSG_DONTWAIT), ==, 8);
	CHECK_STR(buf, "to-host\n");
	/* Input waits in the socket until the guest posts a buffer. */
	CHECK_INT(send(c, "abc", 3, 0), ==, 3);
	virtio_console_poll_backend(d.vd);
	CHECK(!vdrv_used(&d, RXQ, &id, &len));
	rx = vdrv_alloc(&d, 4096);
	vdrv_post_one(&d, RXQ, rx, 2, true);
	vdrv_post_one(&d, RXQ, rx + 2, 100, true);
	vdrv_kick(&d, RXQ);
	CHECK(vdrv_used(&d, RXQ, &id, &len));
	CHECK_INT(len, ==, 2);
	CHECK(vdrv_used(&d, RXQ, &id, &len));
	CHECK_INT(len, ==, 1);
	CHECK(memcmp(vdrv_ptr(&d, rx, 3), "abc", 3) == 0);
	CHECK(!vdrv_needs_reset(&d));

	/* The client leaves; the next one takes its place. */
	close(c);
	virtio_console_poll_backend(d.vd);
	c = connect_to(path);
	virtio_console_poll_backend(d.vd);
	guest_write(&d, "again\n");
	memset(buf, 0, sizeof(buf));
	CHECK_INT(recv(c, buf, sizeof(buf) - 1, MSG_DONTWAIT), ==, 6);
	CHECK_STR(buf, "again\n");
	close(c);
	vdrv_free_vm(d.vm);
	CHECK(access(path, F_OK) != 0); /* the socket file goes with the VM */
	free(path);
}

TEST(console_slow_reader_never_holds_guest_buffers)
{
	char *path = strdup(temp_path("slow"));
	static char chunk[60000];
	struct vdrv d;
	size_t total = 0;
	ssize_t n;
	char buf[65536];
	int c;

	make_console(&d, CONSOLE2_SOCKET, path);
	c = connect_to(path);
	virtio_console_poll_backend(d.vd);
	memset(chunk, 'x', sizeof(chunk) - 1);
	/* 3 MB to a client that reads nothing: each buffer is still returned. */
	for (int i = 0; i < 50; i++)
		guest_write(&d, chunk);
	CHECK(!vdrv_needs_reset(&d));
	while ((n = recv(c, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		total += (size_t)n;
	/* What arrived is the socket's buffer plus the bounded pending part. */
	CHECK(total > 0);
	CHECK(total < 50 * (sizeof(chunk) - 1));
	close(c);
	vdrv_free_vm(d.vm);
	free(path);
}

TEST(console_malformed_buffers_need_reset)
{
	char *path = temp_path("bad");
	struct vdrv d;
	uint64_t gpa;

	make_console(&d, CONSOLE2_FILE, path);
	gpa = vdrv_alloc(&d, 4096);
	vdrv_post_one(&d, TXQ, gpa, 10, true); /* transmit buffers are readable */
	vdrv_kick(&d, TXQ);
	CHECK(vdrv_needs_reset(&d));
	vdrv_reinit(&d);
	vdrv_post_one(&d, TXQ, VDRV_MEM - 4, 10, false); /* past the end of RAM */
	vdrv_kick(&d, TXQ);
	CHECK(vdrv_needs_reset(&d));
	vdrv_free_vm(d.vm);
	unlink(path);
}

TEST(console_receive_buffers_must_be_writable)
{
	char *path = strdup(temp_path("rxbad"));
	struct vdrv d;
	int c;

	make_console(&d, CONSOLE2_SOCKET, path);
	c = connect_to(path);
	CHECK_INT(send(c, "x", 1, 0), ==, 1);
	vdrv_post_one(&d, RXQ, vdrv_alloc(&d, 64), 64, false);
	virtio_console_poll_backend(d.vd);
	CHECK(vdrv_needs_reset(&d));
	close(c);
	vdrv_free_vm(d.vm);
	free(path);
}

TEST(console_pty_backend_opens)
{
	struct vdrv d;

	log_set_level(LOG_ERROR); /* the pty's name is announced as a warning */
	make_console(&d, CONSOLE2_PTY, NULL);
	guest_write(&d, "to the pty\n");
	CHECK(!vdrv_needs_reset(&d));
	vdrv_free_vm(d.vm);
}

TEST(console2_option)
{
	struct vm_config cfg;
	struct err *e = NULL;

	vm_config_defaults(&cfg);
	CHECK_INT(cfg.console2.kind, ==, CONSOLE2_NONE);
	CHECK_INT(vm_config_set_console2(&cfg, "socket:/run/c.sock", &e), ==, 0);
	CHECK_INT(cfg.console2.kind, ==, CONSOLE2_SOCKET);
	CHECK_STR(cfg.console2.path, "/run/c.sock");
	CHECK_INT(vm_config_set_console2(&cfg, "pty", &e), ==, 0);
	CHECK_INT(cfg.console2.kind, ==, CONSOLE2_PTY);
	CHECK_INT(vm_config_set_console2(&cfg, "file:", &e), <, 0);
	CHECK_STR(e->msg, "--console2 'file:': expected file:PATH, socket:PATH, pty or none");
	char spec[160] = "socket:/";
	memset(spec + 8, 'a', 120);
	CHECK_INT(vm_config_set_console2(&cfg, spec, &e), <, 0);
	CHECK_CONTAINS(e->msg, "socket path longer than 107 bytes");
	err_free(&e);
}
