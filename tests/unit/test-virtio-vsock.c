/*
 * virtio-vsock, driven inline by a fake guest driver, against real Unix
 * sockets: the connection state machine, credit in both directions, the
 * CONNECT protocol, and hostile packets.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/virtio_vsock.h>

#include "test.h"
#include "virtio-driver.h"
#include "vmm/devices/virtio/vsock.h"

#define RXQ 0
#define TXQ 1
#define EVQ 2
#define HDR ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define CID 3
#define RXBUF 4096

struct vs {
	struct vdrv d;
	char path[96];
	uint64_t rx_gpa[VDRV_QSIZE]; /* receive buffer of each head */
};

static void make_vsock(struct vs *t)
{
	struct vsock_config c = {.enabled = true, .cid = CID};
	struct vm *vm = vdrv_fake_vm();
	struct err *e = NULL;

	snprintf(t->path, sizeof(t->path), "/tmp/casulo-vsock-%d", getpid());
	c.socket = t->path;
	CHECK_INT(virtio_vsock_create(vm, &c, &e), ==, 0);
	if (e)
		test_fail_at(__FILE__, __LINE__, "%s", e->msg);
	vdrv_init(&t->d, vm, 0, 3);
	CHECK_INT(vdrv_read32(&t->d, 0x100), ==, CID); /* guest_cid in config space */
}

/* Receive buffers as Linux 6.1 posts them: header and payload apart. */
static void post_rx(struct vs *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = vdrv_alloc(&t->d, HDR + RXBUF + 64);
		struct vdrv_seg segs[2] = {{gpa, HDR, true}, {gpa + 64, RXBUF, true}};
		t->rx_gpa[vdrv_post(&t->d, RXQ, segs, 2)] = gpa;
	}
	vdrv_kick(&t->d, RXQ);
}

struct pkt {
	struct virtio_vsock_hdr h;
	uint8_t data[RXBUF];
	uint32_t len;
};

static bool recv_pkt(struct vs *t, struct pkt *p)
{
	uint16_t id;
	uint32_t len;

	if (!vdrv_used(&t->d, RXQ, &id, &len))
		return false;
	CHECK(len >= HDR);
	memcpy(&p->h, vdrv_ptr(&t->d, t->rx_gpa[id], HDR), HDR);
	p->len = len - HDR;
	CHECK_INT(p->len, ==, p->h.len);
	memcpy(p->data, vdrv_ptr(&t->d, t->rx_gpa[id] + 64, RXBUF), p->len);
	return true;
}

static struct virtio_vsock_hdr hdr(uint16_t op, uint32_t guest_port, uint32_t host_port)
{
	return (struct virtio_vsock_hdr){.src_cid = CID,
					 .dst_cid = 2,
					 .src_port = guest_port,
					 .dst_port = host_port,
					 .type = VIRTIO_VSOCK_TYPE_STREAM,
					 .op = op,
					 .buf_alloc = 256 * 1024};
}

/* Transmit one packet (header and payload in separate descriptors). */
static void send_pkt(struct vs *t, struct virtio_vsock_hdr h, const void *data, uint32_t len)
{
	uint64_t gpa = vdrv_alloc(&t->d, HDR + len + 64);
	struct vdrv_seg segs[2] = {{gpa, HDR, false}, {gpa + 64, len, false}};
	uint16_t id;
	uint32_t used;

	h.len = len;
	memcpy(vdrv_ptr(&t->d, gpa, HDR), &h, HDR);
	if (len)
		memcpy(vdrv_ptr(&t->d, gpa + 64, len), data, len);
	vdrv_post(&t->d, TXQ, segs, len ? 2 : 1);
	vdrv_kick(&t->d, TXQ);
	if (!vdrv_needs_reset(&t->d))
		CHECK(vdrv_used(&t->d, TXQ, &id, &used));
}

static int host_listen(struct vs *t, unsigned port)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", t->path, port);
	unlink(a.sun_path);
	CHECK_INT(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
	CHECK_INT(listen(fd, 4), ==, 0);
	return fd;
}

static int host_connect(struct vs *t)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", t->path);
	CHECK_INT(connect(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
	return fd;
}

static void cleanup(struct vs *t, int listen_fd, unsigned port)
{
	char p[128];

	if (listen_fd >= 0) {
		close(listen_fd);
		snprintf(p, sizeof(p), "%s_%u", t->path, port);
		unlink(p);
	}
	vdrv_free_vm(t->d.vm);
}

/* The guest connects to port 1234, where the test listens; returns the accepted socket. */
static int guest_connects(struct vs *t, int lfd)
{
	struct pkt p;
	int fd;

	send_pkt(t, hdr(VIRTIO_VSOCK_OP_REQUEST, 5000, 1234), NULL, 0);
	CHECK(recv_pkt(t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_RESPONSE);
	CHECK_INT(p.h.src_cid, ==, 2);
	CHECK_INT(p.h.dst_cid, ==, CID);
	CHECK_INT(p.h.src_port, ==, 1234);
	CHECK_INT(p.h.dst_port, ==, 5000);
	CHECK_INT(p.h.buf_alloc, ==, 256 * 1024);
	fd = accept(lfd, NULL, NULL);
	CHECK(fd >= 0);
	return fd;
}

TEST(vsock_guest_connect_to_nobody_is_reset)
{
	struct vs t;
	struct pkt p;

	make_vsock(&t);
	post_rx(&t, 4);
	send_pkt(&t, hdr(VIRTIO_VSOCK_OP_REQUEST, 5000, 4321), NULL, 0);
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_RST);
	CHECK_INT(p.h.src_port, ==, 4321);
	CHECK_INT(p.h.dst_port, ==, 5000);
	CHECK(!vdrv_needs_reset(&t.d));
	cleanup(&t, -1, 0);
}

TEST(vsock_guest_connection_carries_data_both_ways)
{
	struct vs t;
	struct pkt p;
	char buf[64] = "";
	int lfd, fd;

	make_vsock(&t);
	lfd = host_listen(&t, 1234);
	post_rx(&t, 8);
	fd = guest_connects(&t, lfd);
	send_pkt(&t, hdr(VIRTIO_VSOCK_OP_RW, 5000, 1234), "hello", 5);
	CHECK_INT(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), ==, 5);
	CHECK_STR(buf, "hello");
	CHECK_INT(send(fd, "world!", 6, 0), ==, 6);
	virtio_vsock_poll_host(t.d.vd);
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_RW);
	CHECK_INT(p.len, ==, 6);
	CHECK(memcmp(p.data, "world!", 6) == 0);
	/* The program half-closes: the guest hears SHUTDOWN(SEND), can still send. */
	shutdown(fd, SHUT_WR);
	virtio_vsock_poll_host(t.d.vd);
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_SHUTDOWN);
	CHECK_INT(p.h.flags, ==, VIRTIO_VSOCK_SHUTDOWN_SEND);
	send_pkt(&t, hdr(VIRTIO_VSOCK_OP_RW, 5000, 1234), "late", 4);
	CHECK_INT(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), ==, 4);
	/* The guest shuts down both ways: the device closes and sends RST. */
	{
		struct virtio_vsock_hdr h = hdr(VIRTIO_VSOCK_OP_SHUTDOWN, 5000, 1234);
		h.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
		send_pkt(&t, h, NULL, 0);
	}
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_RST);
	CHECK_INT(recv(fd, buf, sizeof(buf), 0), ==, 0); /* EOF for the program */
	close(fd);
	cleanup(&t, lfd, 1234);
}

TEST(vsock_host_data_never_exceeds_guest_credit)
{
	struct vs t;
	struct pkt p;
	static char big[10000];
	uint32_t got = 0;
	int lfd, fd;

	make_vsock(&t);
	lfd = host_listen(&t, 1234);
	post_rx(&t, 16);
	{
		/* A guest with a 3000-byte window. */
		struct virtio_vsock_hdr h = hdr(VIRTIO_VSOCK_OP_REQUEST, 5000, 1234);
		h.buf_alloc = 3000;
		send_pkt(&t, h, NULL, 0);
	}
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_RESPONSE);
	fd = accept(lfd, NULL, NULL);
	CHECK_INT(send(fd, big, sizeof(big), 0), ==, sizeof(big));
	virtio_vsock_poll_host(t.d.vd);
	while (recv_pkt(&t, &p)) {
		if (p.h.op == VIRTIO_VSOCK_OP_RW)
			got += p.len;
	}
	CHECK_INT(got, ==, 3000);
	/* The guest read 2000 of it: 2000 more may come. */
	{
		struct virtio_vsock_hdr h = hdr(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 5000, 1234);
		h.buf_alloc = 3000;
		h.fwd_cnt = 2000;
		post_rx(&t, 8);
		send_pkt(&t, h, NULL, 0);
	}
	got = 0;
	while (recv_pkt(&t, &p))
		if (p.h.op == VIRTIO_VSOCK_OP_RW)
			got += p.len;
	CHECK_INT(got, ==, 2000);
	close(fd);
	cleanup(&t, lfd, 1234);
}

TEST(vsock_guest_beyond_credit_is_reset)
{
	struct vs t;
	struct pkt p;
	static char chunk[60000];
	bool reset = false;
	int lfd, fd;

	make_vsock(&t);
	lfd = host_listen(&t, 1234);
	post_rx(&t, 32);
	fd = guest_connects(&t, lfd);
	/* The program reads nothing; the guest ignores the credit it was given.
	 * The socket takes a few hundred KiB, the device its 256 KiB window,
	 * then it resets the connection instead of buffering more. */
	for (int i = 0; i < 40 && !reset; i++) {
		send_pkt(&t, hdr(VIRTIO_VSOCK_OP_RW, 5000, 1234), chunk, sizeof(chunk));
		while (recv_pkt(&t, &p))
			reset |= p.h.op == VIRTIO_VSOCK_OP_RST;
	}
	CHECK(reset);
	CHECK(!vdrv_needs_reset(&t.d));
	close(fd);
	cleanup(&t, lfd, 1234);
}

TEST(vsock_host_program_connects_with_a_line)
{
	struct vs t;
	struct pkt p;
	char buf[64] = "";
	uint32_t host_port;
	int fd;

	make_vsock(&t);
	post_rx(&t, 8);
	fd = host_connect(&t);
	/* The line and the first data in one write. */
	CHECK_INT(send(fd, "CONNECT 52\nearly", 16, 0), ==, 16);
	virtio_vsock_poll_host(t.d.vd);
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_REQUEST);
	CHECK_INT(p.h.dst_port, ==, 52);
	host_port = p.h.src_port;
	CHECK_INT(host_port, >=, 1u << 30);
	CHECK(!recv_pkt(&t, &p)); /* no data before the guest accepts */
	send_pkt(&t, hdr(VIRTIO_VSOCK_OP_RESPONSE, 52, host_port), NULL, 0);
	CHECK_INT(recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT), ==, (ssize_t)strlen("OK 1073741824\n"));
	CHECK_STR(buf, "OK 1073741824\n");
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_RW);
	CHECK(p.len == 5 && memcmp(p.data, "early", 5) == 0);
	/* Guest data reaches the program after the OK line. */
	send_pkt(&t, hdr(VIRTIO_VSOCK_OP_RW, 52, host_port), "pong", 4);
	memset(buf, 0, sizeof(buf));
	CHECK_INT(recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT), ==, 4);
	CHECK_STR(buf, "pong");
	/* The program closes: SHUTDOWN both ways, the guest answers RST. */
	close(fd);
	virtio_vsock_poll_host(t.d.vd);
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_SHUTDOWN);
	CHECK_INT(p.h.flags, ==, VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	send_pkt(&t, hdr(VIRTIO_VSOCK_OP_RST, 52, host_port), NULL, 0);
	CHECK(!recv_pkt(&t, &p)); /* an RST is never answered */
	cleanup(&t, -1, 0);
}

/* A guest that honours credit streams 2 MiB to a program that reads in
 * small bites: everything arrives in order, and the credit the device
 * gives (fwd_cnt) follows what the program took. */
TEST(vsock_guest_stream_follows_host_credit)
{
	static uint8_t chunk[4096], got[4096];
	const uint32_t total = 2 << 20;
	uint32_t sent = 0, received = 0, buf_alloc = 0, fwd_cnt = 0;
	unsigned updates = 0;
	struct vs t;
	struct pkt p;
	int lfd, fd;

	make_vsock(&t);
	lfd = host_listen(&t, 1234);
	post_rx(&t, 8);
	fd = guest_connects(&t, lfd);
	buf_alloc = 256 * 1024;
	while (received < total) {
		/* The guest sends what its view of our credit allows. */
		while (sent < total && buf_alloc - (sent - fwd_cnt) >= sizeof(chunk)) {
			for (size_t i = 0; i < sizeof(chunk); i++)
				chunk[i] = (uint8_t)((sent + i) * 7 / 3);
			send_pkt(&t, hdr(VIRTIO_VSOCK_OP_RW, 5000, 1234), chunk, sizeof(chunk));
			sent += sizeof(chunk);
		}
		/* The program reads a little. */
		ssize_t n = recv(fd, got, 1000, MSG_DONTWAIT);
		CHECK(n > 0);
		for (ssize_t i = 0; i < n; i++)
			if (got[i] != (uint8_t)((received + i) * 7 / 3))
				test_fail_at(__FILE__, __LINE__, "byte %u differs", (unsigned)(received + i));
		received += (uint32_t)n;
		virtio_vsock_poll_host(t.d.vd); /* the socket has room again */
		while (recv_pkt(&t, &p)) {
			CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
			CHECK_INT(p.h.fwd_cnt, <=, sent);
			buf_alloc = p.h.buf_alloc;
			fwd_cnt = p.h.fwd_cnt;
			updates++;
			post_rx(&t, 1);
		}
		CHECK(!vdrv_needs_reset(&t.d));
	}
	CHECK(updates > 0);
	close(fd);
	cleanup(&t, lfd, 1234);
}

/* A host program whose guest never answers hears "ERR timeout" after 2 s. */
TEST(vsock_host_connect_times_out)
{
	struct vs t;
	struct pkt p;
	char buf[16];
	int fd;

	make_vsock(&t);
	post_rx(&t, 4);
	fd = host_connect(&t);
	CHECK_INT(send(fd, "CONNECT 9\n", 10, 0), ==, 10);
	virtio_vsock_poll_host(t.d.vd);
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_REQUEST);
	usleep(2600 * 1000);
	virtio_vsock_poll_host(t.d.vd);
	CHECK_INT(recv(fd, buf, sizeof(buf), 0), ==, 12);
	CHECK(memcmp(buf, "ERR timeout\n", 12) == 0);
	CHECK_INT(recv(fd, buf, sizeof(buf), 0), ==, 0);
	CHECK(recv_pkt(&t, &p)); /* and the guest is told to forget it */
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_RST);
	close(fd);
	cleanup(&t, -1, 0);
}

TEST(vsock_host_connect_refused_by_guest_closes)
{
	static const char *const bad[] = {
	    "CONNECT\n",     "CONNECT x\n",	      "connect 5\n",
	    "CONNECT 5 6\n", "CONNECT 99999999999\n", "0123456789012345678901234567890123456789"};
	struct vs t;
	struct pkt p;
	char buf[16];
	ssize_t n;
	int fd;

	make_vsock(&t);
	post_rx(&t, 8);
	fd = host_connect(&t);
	CHECK_INT(send(fd, "CONNECT 77\n", 11, 0), ==, 11);
	virtio_vsock_poll_host(t.d.vd);
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_REQUEST);
	send_pkt(&t, hdr(VIRTIO_VSOCK_OP_RST, 77, p.h.src_port), NULL, 0);
	CHECK_INT(recv(fd, buf, sizeof(buf), 0), ==, 12); /* why, then closed */
	CHECK(memcmp(buf, "ERR refused\n", 12) == 0);
	CHECK_INT(recv(fd, buf, sizeof(buf), 0), ==, 0);
	close(fd);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = host_connect(&t);
		CHECK_INT(send(fd, bad[i], strlen(bad[i]), 0), ==, (ssize_t)strlen(bad[i]));
		virtio_vsock_poll_host(t.d.vd);
		/* "ERR bad line", closed; with the unread rest of a long line,
		 * closed by a reset that may lose the line. */
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0) {
			CHECK_INT(n, ==, 13);
			CHECK(memcmp(buf, "ERR bad line\n", 13) == 0);
			n = recv(fd, buf, sizeof(buf), 0);
		}
		CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
		close(fd);
	}
	CHECK(!recv_pkt(&t, &p));
	cleanup(&t, -1, 0);
}

TEST(vsock_protocol_errors_reset_the_connection_only)
{
	struct vs t;
	struct pkt p;
	char buf[16];
	int lfd, fd;

	make_vsock(&t);
	lfd = host_listen(&t, 1234);
	post_rx(&t, 16);
	fd = guest_connects(&t, lfd);
	/* Unknown op on a live connection: RST, socket closed. */
	send_pkt(&t, hdr(99, 5000, 1234), NULL, 0);
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_RST);
	CHECK_INT(recv(fd, buf, sizeof(buf), 0), ==, 0);
	close(fd);
	/* Data for a connection that does not exist: RST. */
	send_pkt(&t, hdr(VIRTIO_VSOCK_OP_RW, 5001, 1234), "x", 1);
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_RST);
	/* Seqpacket type, and another CID as destination: RST. */
	{
		struct virtio_vsock_hdr h = hdr(VIRTIO_VSOCK_OP_REQUEST, 5002, 1234);
		h.type = VIRTIO_VSOCK_TYPE_SEQPACKET;
		send_pkt(&t, h, NULL, 0);
		CHECK(recv_pkt(&t, &p));
		CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_RST);
		h = hdr(VIRTIO_VSOCK_OP_REQUEST, 5002, 1234);
		h.dst_cid = 7;
		send_pkt(&t, h, NULL, 0);
		CHECK(recv_pkt(&t, &p));
		CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_RST);
		/* A spoofed source CID: dropped without a word. */
		h = hdr(VIRTIO_VSOCK_OP_REQUEST, 5002, 1234);
		h.src_cid = 9;
		send_pkt(&t, h, NULL, 0);
		CHECK(!recv_pkt(&t, &p));
	}
	/* Data before RESPONSE on a host-initiated connection: RST. */
	fd = host_connect(&t);
	CHECK_INT(send(fd, "CONNECT 80\n", 11, 0), ==, 11);
	virtio_vsock_poll_host(t.d.vd);
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_REQUEST);
	send_pkt(&t, hdr(VIRTIO_VSOCK_OP_RW, 80, p.h.src_port), "x", 1);
	CHECK(recv_pkt(&t, &p));
	CHECK_INT(p.h.op, ==, VIRTIO_VSOCK_OP_RST);
	CHECK_INT(recv(fd, buf, sizeof(buf), 0), ==, 10);
	CHECK(memcmp(buf, "ERR reset\n", 10) == 0);
	CHECK_INT(recv(fd, buf, sizeof(buf), 0), ==, 0);
	close(fd);
	CHECK(!vdrv_needs_reset(&t.d));
	cleanup(&t, lfd, 1234);
}

TEST(vsock_malformed_chains_need_reset)
{
	struct vs t;
	uint64_t gpa;
	struct virtio_vsock_hdr h;

	make_vsock(&t);
	gpa = vdrv_alloc(&t.d, 4096);
	/* Shorter than a header. */
	vdrv_post_one(&t.d, TXQ, gpa, HDR - 1, false);
	vdrv_kick(&t.d, TXQ);
	CHECK(vdrv_needs_reset(&t.d));
	/* A length beyond the chain. */
	vdrv_reinit(&t.d);
	h = hdr(VIRTIO_VSOCK_OP_RW, 1, 2);
	h.len = 100;
	memcpy(vdrv_ptr(&t.d, gpa, HDR), &h, HDR);
	vdrv_post_one(&t.d, TXQ, gpa, HDR + 50, false);
	vdrv_kick(&t.d, TXQ);
	CHECK(vdrv_needs_reset(&t.d));
	/* An oversized packet, even if the chain holds it. */
	vdrv_reinit(&t.d);
	gpa = vdrv_alloc(&t.d, 128 * 1024);
	h.len = 65 * 1024;
	memcpy(vdrv_ptr(&t.d, gpa, HDR), &h, HDR);
	vdrv_post_one(&t.d, TXQ, gpa, HDR + 65 * 1024, false);
	vdrv_kick(&t.d, TXQ);
	CHECK(vdrv_needs_reset(&t.d));
	/* A writable transmit buffer; a readable receive buffer. */
	vdrv_reinit(&t.d);
	vdrv_post_one(&t.d, TXQ, gpa, HDR, true);
	vdrv_kick(&t.d, TXQ);
	CHECK(vdrv_needs_reset(&t.d));
	vdrv_reinit(&t.d);
	vdrv_post_one(&t.d, RXQ, gpa, 4096, false);
	send_pkt(&t, hdr(VIRTIO_VSOCK_OP_REQUEST, 5000, 4321), NULL, 0); /* owes an RST */
	CHECK(vdrv_needs_reset(&t.d));
	/* A receive buffer too small for a header. */
	vdrv_reinit(&t.d);
	vdrv_post_one(&t.d, RXQ, gpa, 20, true);
	send_pkt(&t, hdr(VIRTIO_VSOCK_OP_REQUEST, 5000, 4321), NULL, 0);
	CHECK(vdrv_needs_reset(&t.d));
	cleanup(&t, -1, 0);
}

TEST(vsock_transport_reset_event_drops_connections)
{
	struct vs t;
	uint64_t ev;
	uint16_t id;
	uint32_t len, *id_field;
	char buf[8];
	int lfd, fd;

	make_vsock(&t);
	lfd = host_listen(&t, 1234);
	post_rx(&t, 8);
	fd = guest_connects(&t, lfd);
	ev = vdrv_alloc(&t.d, 4096);
	id_field = vdrv_ptr(&t.d, ev, 4);
	*id_field = 0xffffffff;
	vdrv_post_one(&t.d, EVQ, ev, 4, true);
	vdrv_kick(&t.d, EVQ);
	CHECK(!vdrv_used(&t.d, EVQ, &id, &len)); /* kept until there is news */
	virtio_vsock_transport_reset(t.d.vd);
	CHECK(vdrv_used(&t.d, EVQ, &id, &len));
	CHECK_INT(len, ==, 4);
	CHECK_INT(*id_field, ==, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	CHECK_INT(recv(fd, buf, sizeof(buf), 0), ==, 0);
	close(fd);
	/* A driver reset drops connections too. */
	fd = guest_connects(&t, lfd);
	vdrv_reinit(&t.d);
	CHECK_INT(recv(fd, buf, sizeof(buf), 0), ==, 0);
	close(fd);
	cleanup(&t, lfd, 1234);
}

TEST(vsock_option)
{
	struct vm_config cfg;
	struct err *e = NULL;
	char spec[200];

	vm_config_defaults(&cfg);
	CHECK_INT(vm_config_set_vsock(&cfg, "cid=3,socket=/run/v.sock", &e), ==, 0);
	CHECK(cfg.vsock.enabled);
	CHECK_INT(cfg.vsock.cid, ==, 3);
	CHECK_STR(cfg.vsock.socket, "/run/v.sock");
	CHECK_INT(vm_config_set_vsock(&cfg, "cid=2,socket=/x", &e), <, 0);
	CHECK_STR(e->msg, "--vsock 'cid=2,socket=/x': cid '2' is not a number from 3 to 4294967294");
	CHECK_INT(vm_config_set_vsock(&cfg, "cid=4294967295,socket=/x", &e), <, 0);
	CHECK_INT(vm_config_set_vsock(&cfg, "cid=5", &e), <, 0);
	CHECK_STR(e->msg, "--vsock 'cid=5': give both cid=N and socket=PATH");
	CHECK_INT(vm_config_set_vsock(&cfg, "cid=5,socket=/x,port=3", &e), <, 0);
	CHECK_STR(e->msg, "--vsock 'cid=5,socket=/x,port=3': unknown key 'port'");
	snprintf(spec, sizeof(spec), "cid=5,socket=/%0100d", 0);
	CHECK_INT(vm_config_set_vsock(&cfg, spec, &e), <, 0);
	CHECK_CONTAINS(e->msg, "socket path longer than 96 bytes");
	err_free(&e);
	vm_config_free(&cfg);
}
