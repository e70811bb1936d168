/* virtio-net's receive path with a fake guest driver and a real TAP, in a
 * network namespace of the test's own: frames sent into the TAP's
 * interface (a packet socket) land in the guest's mergeable buffers whole
 * and in order, over as many buffers as each needs; a guest short of
 * buffers has a frame held back until it posts more; a frame that could
 * never fit is dropped and the next one delivered.  Needs root
 * (CAP_NET_ADMIN, CAP_SYS_ADMIN for the namespace) and /dev/net/tun;
 * skipped without them. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>

#include "common/file.h"
#include "common/macro.h"
#include "test.h"
#include "virtio-driver.h"
#include "vmm/devices/virtio/net.h"

#define F_VERSION_1 (1ULL << 32)
#define F_MRG (1ULL << VIRTIO_NET_F_MRG_RXBUF)
#define RXQ 0
#define HDR 12
#define ETHERTYPE_TEST 0x88b5 /* IEEE local experimental: nothing else sends it */
#define TAP "vnet-test0"
#define MAX_FRAMES 8

struct rig {
	struct vdrv d;
	int packet_fd, ifindex;
	unsigned sent;
	uint64_t gpa_of[VDRV_QSIZE]; /* a posted buffer's address, by head */
};

static int if_ioctl(unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r = s < 0 ? -1 : ioctl(s, req, ifr);

	if (s >= 0)
		close(s);
	return r;
}

/* Its own network namespace (once), the device on a new TAP there, the
 * interface up with a 64 KiB MTU, a packet socket bound to it. */
static void rig_up(struct rig *g)
{
	static bool unshared;
	struct net_config c = {.tap = TAP, .fd = -1};
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE_TEST)};
	struct ifreq ifr;
	struct err *e = NULL;
	struct vm *vm;

	if (geteuid() != 0)
		test_skip("needs root: a TAP in a network namespace of its own");
	if (!unshared && unshare(CLONE_NEWNET) < 0)
		test_skip("unshare(CLONE_NEWNET): %s", strerror(errno));
	unshared = true;
	/* No IPv6 on the new interface: its router solicitations would come
	 * out of the TAP between the test's frames (they are skipped anyway). */
	(void)write_file_str("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	memset(g, 0, sizeof(*g));
	vm = vdrv_fake_vm();
	if (virtio_net_create(vm, &c, 0, &e) < 0) {
		if (e->code == ENOENT || e->code == ENODEV)
			test_skip("%s", e->msg);
		test_fail_at(__FILE__, __LINE__, "%s", e->msg);
	}
	vdrv_init(&g->d, vm, F_VERSION_1 | F_MRG, 2);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TAP);
	ifr.ifr_mtu = 65000;
	CHECK_INT(if_ioctl(SIOCSIFMTU, &ifr), ==, 0);
	CHECK_INT(if_ioctl(SIOCGIFFLAGS, &ifr), ==, 0);
	ifr.ifr_flags |= IFF_UP;
	CHECK_INT(if_ioctl(SIOCSIFFLAGS, &ifr), ==, 0);
	g->ifindex = (int)if_nametoindex(TAP);
	CHECK(g->ifindex > 0);
	g->packet_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETHERTYPE_TEST));
	CHECK(g->packet_fd >= 0);
	sll.sll_ifindex = g->ifindex;
	CHECK_INT(bind(g->packet_fd, (struct sockaddr *)&sll, sizeof(sll)), ==, 0);
	CHECK_INT(setsockopt(g->packet_fd, SOL_PACKET, PACKET_QDISC_BYPASS, &(int){1}, sizeof(int)), ==, 0);
}

static void rig_down(struct rig *g)
{
	close(g->packet_fd);
	vdrv_free_vm(g->d.vm); /* closes the TAP: the interface goes */
}

static uint8_t pattern(unsigned frame, size_t i)
{
	return (uint8_t)(frame * 31 + i * 7 + (i >> 8));
}

/* Send the test's frame number `frame`, len bytes with its Ethernet
 * header, out of the interface: into the TAP, for the device to read. */
static void send_frame(struct rig *g, unsigned frame, size_t len)
{
	uint8_t *buf = malloc(len);

	CHECK(buf != NULL && len >= ETH_HLEN);
	memset(buf, 0xff, ETH_ALEN); /* broadcast */
	memset(buf + ETH_ALEN, 0x02, ETH_ALEN);
	buf[12] = ETHERTYPE_TEST >> 8;
	buf[13] = ETHERTYPE_TEST & 0xff;
	for (size_t i = ETH_HLEN; i < len; i++)
		buf[i] = pattern(frame, i);
	/* Past the qdisc (PACKET_QDISC_BYPASS): in the TAP's queue when
	 * send() returns. */
	CHECK_INT(send(g->packet_fd, buf, len, 0), ==, (ssize_t)len);
	free(buf);
	g->sent++;
}

/* Post n receive buffers of size bytes each. */
static void post_buffers(struct rig *g, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = vdrv_alloc(&g->d, size);
		uint16_t head = vdrv_post_one(&g->d, RXQ, gpa, size, true);

		g->gpa_of[head] = gpa;
	}
}

/* The next frame of the test's ethertype the guest got: its length (0 if
 * none), its bytes (Ethernet header on) in out, how many buffers it took. */
static size_t next_frame(struct rig *g, uint8_t *out, size_t cap, unsigned *nbufs)
{
	for (;;) {
		struct virtio_net_hdr_mrg_rxbuf hdr;
		uint16_t id;
		uint32_t len;
		size_t total = 0;

		if (!vdrv_used(&g->d, RXQ, &id, &len))
			return 0;
		CHECK(len >= HDR);
		memcpy(&hdr, vdrv_ptr(&g->d, g->gpa_of[id], HDR), HDR);
		CHECK(hdr.num_buffers >= 1);
		*nbufs = hdr.num_buffers;
		for (unsigned b = 0; b < hdr.num_buffers; b++) {
			size_t skip = b == 0 ? HDR : 0;

			if (b > 0)
				CHECK(vdrv_used(&g->d, RXQ, &id, &len));
			CHECK(total + len - skip <= cap);
			memcpy(out + total, (uint8_t *)vdrv_ptr(&g->d, g->gpa_of[id], len) + skip, len - skip);
			total += len - skip;
		}
		if (total >= ETH_HLEN && out[12] == (ETHERTYPE_TEST >> 8) && out[13] == (ETHERTYPE_TEST & 0xff))
			return total;
	}
}

static void check_frame(struct rig *g, unsigned frame, size_t len, unsigned *nbufs)
{
	static uint8_t got[70000];
	size_t n = next_frame(g, got, sizeof(got), nbufs);

	if (n != len)
		test_fail_at(__FILE__, __LINE__, "frame %u: %zu bytes delivered, %zu sent", frame, n, len);
	for (size_t i = ETH_HLEN; i < len; i++)
		if (got[i] != pattern(frame, i)) {
			test_fail_at(__FILE__, __LINE__, "frame %u: byte %zu is 0x%02x, sent 0x%02x", frame, i, got[i],
				     pattern(frame, i));
			return;
		}
}

TEST(rx_frames_of_every_size_arrive_whole_in_order)
{
	/* Small, full-size and larger ones, each over as many 1536-byte
	 * buffers as it needs, in one round of the receive queue. */
	static const size_t sizes[] = {60, 1514, 9000, 30000, 100, 4000};
	struct rig g;
	unsigned nbufs;

	rig_up(&g);
	post_buffers(&g, 48, 1536);
	for (unsigned i = 0; i < ARRAY_SIZE(sizes); i++)
		send_frame(&g, i, sizes[i]);
	vdrv_kick(&g.d, RXQ);
	for (unsigned i = 0; i < ARRAY_SIZE(sizes); i++) {
		check_frame(&g, i, sizes[i], &nbufs);
		CHECK_INT(nbufs, ==, (sizes[i] + HDR + 1535) / 1536);
	}
	/* The largest frame the MTU allows, over 43 buffers. */
	post_buffers(&g, 48, 1536);
	send_frame(&g, 9, 65000 + ETH_HLEN);
	vdrv_kick(&g.d, RXQ);
	check_frame(&g, 9, 65000 + ETH_HLEN, &nbufs);
	CHECK_INT(nbufs, ==, 43);
	CHECK(!vdrv_needs_reset(&g.d));
	rig_down(&g);
}

TEST(rx_frame_waits_for_buffers)
{
	struct rig g;
	unsigned nbufs;
	uint8_t none[64];

	rig_up(&g);
	/* 6 KiB posted, a 20000-byte frame: it waits, nothing is used. */
	post_buffers(&g, 4, 1536);
	send_frame(&g, 1, 20000);
	vdrv_kick(&g.d, RXQ);
	CHECK_INT(next_frame(&g, none, sizeof(none), &nbufs), ==, 0);
	/* More buffers: the same frame, whole, then the next one. */
	post_buffers(&g, 20, 1536);
	send_frame(&g, 2, 3000);
	vdrv_kick(&g.d, RXQ);
	check_frame(&g, 1, 20000, &nbufs);
	CHECK_INT(nbufs, ==, 14);
	check_frame(&g, 2, 3000, &nbufs);
	CHECK(!vdrv_needs_reset(&g.d));
	rig_down(&g);
}

TEST(rx_frame_that_never_fits_is_dropped)
{
	struct rig g;
	unsigned nbufs;

	rig_up(&g);
	/* 64 buffers of 64 bytes hold 4 KiB: a 9000-byte frame never fits
	 * (the device takes at most 64 buffers a frame), the next one does. */
	post_buffers(&g, 64, 64);
	send_frame(&g, 1, 9000);
	send_frame(&g, 2, 1000);
	vdrv_kick(&g.d, RXQ);
	check_frame(&g, 2, 1000, &nbufs);
	CHECK_INT(nbufs, ==, (1000 + HDR + 63) / 64);
	CHECK(!vdrv_needs_reset(&g.d));
	rig_down(&g);
}
