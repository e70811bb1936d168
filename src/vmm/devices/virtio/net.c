/*
 * virtio-net on a TAP device.
 *
 * The TAP carries the same 12-byte virtio-net header as the rings
 * (IFF_VNET_HDR, TUNSETVNETHDRSZ), so checksum and segmentation offloads
 * pass through untouched: the guest sends 64 KiB TSO frames and the host
 * kernel segments them; the host hands the guest 64 KiB frames that the
 * guest's stack takes whole.  TUNSETOFFLOAD tells the TAP what the guest
 * negotiated.
 *
 * Transmit writes each chain straight from guest memory with writev().
 * Receive reads a frame into a buffer, then spreads it over as many
 * receive buffers as it needs (VIRTIO_NET_F_MRG_RXBUF); a frame that finds
 * no room waits, with the TAP unwatched, until the guest posts buffers: a
 * full guest never makes the VMM drop or spin.
 */
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <json-c/json.h>

#include "common/log.h"
#include "vmm/devices/virtio/net.h"
#include "vmm/devices/virtio/throttle.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/vm.h"

#define NET_QUEUE_SIZE 256
#define NET_RXQ 0
#define NET_TXQ 1
#define NET_HDR_LEN ((uint32_t)sizeof(struct virtio_net_hdr_mrg_rxbuf)) /* 12 */
/* The largest frame: a 64 KiB GSO packet, its Ethernet header and ours. */
#define NET_MAX_FRAME (65536 + 14 + 4 + NET_HDR_LEN)
#define NET_REQ_SEGS 64
#define NET_RX_BATCH 64

struct net {
	struct virtio_dev *vd;
	int tap_fd;
	char ifname[IFNAMSIZ];
	unsigned tap_offloads; /* TUN_F_* the TAP accepted when probed */
	bool mrg_rxbuf;
	bool tap_watched;
	uint32_t tap_events;

	uint8_t *frame;	  /* receive buffer */
	size_t frame_len; /* a frame waiting for guest buffers, or 0 */
	bool frame_paid;  /* the receive limiter let the waiting frame through */
	struct virtq_req *req;
	struct virtq_req *rx_reqs[NET_RX_BATCH];
	bool tx_blocked; /* the TAP refused a write: wait for EPOLLOUT */
	/* Counters for GET /metrics: written by the device thread only. */
	uint64_t tx_packets, tx_bytes, rx_packets, rx_bytes, rx_dropped;

	/* rx-rate=, tx-rate=: a throttled direction stops; a received frame
	 * waits in `frame` with the TAP unwatched, a sent one in the ring. */
	struct throttle rx_rate, tx_rate;
	bool rates_ready;
};

static void count(uint64_t *counter, uint64_t n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

static void tap_watch(struct net *n, uint32_t events)
{
	if (!n->tap_watched || n->tap_events == events)
		return;
	if (virtio_dev_watch_modify(n->vd, n->tap_fd, events) == 0)
		n->tap_events = events;
}

static uint32_t wanted_events(const struct net *n)
{
	return (n->frame_len ? 0 : EPOLLIN) | (n->tx_blocked ? EPOLLOUT : 0);
}

/* --- transmit: guest -> TAP --- */

static void net_tx(struct net *n)
{
	struct virtio_dev *vd = n->vd;
	struct virtq *q = &vd->queues[NET_TXQ];
	bool pushed = false;

	n->tx_blocked = false;
	throttle_round(&n->tx_rate);
	for (;;) {
		virtq_disable_kicks(q);
		for (;;) {
			int got = virtq_pop(q, n->req);
			ssize_t w;

			if (got == 0)
				break;
			if (got < 0) {
				virtio_dev_fail(vd, "malformed descriptor chain in the transmit queue");
				return;
			}
			if (n->req->n_in > 0 || n->req->out_len < NET_HDR_LEN || n->req->out_len > NET_MAX_FRAME) {
				/* Not a frame: give it back unsent rather than guess. */
				virtq_complete(q, n->req, 0);
				pushed = true;
				continue;
			}
			if (n->rates_ready && !throttle_admit(&n->tx_rate, n->req->out_len - NET_HDR_LEN)) {
				/* Kicks stay off: the limiter's timer sends it. */
				virtq_unpop(q);
				goto out;
			}
			w = writev(n->tap_fd, n->req->out, (int)n->req->n_out);
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				virtq_unpop(q);
				n->tx_blocked = true;
				goto out;
			}
			/* Other write errors (e.g. the TAP is down) drop the frame, as a wire would. */
			if (w > 0)
				count(&n->tx_packets, 1), count(&n->tx_bytes, (uint64_t)w - NET_HDR_LEN);
			virtq_complete(q, n->req, 0);
			pushed = true;
		}
		if (!virtq_enable_kicks(q))
			break;
	}
out:
	if (pushed)
		virtio_dev_notify_queue(vd, NET_TXQ);
	tap_watch(n, wanted_events(n));
}

/* --- receive: TAP -> guest --- */

/* Copy the waiting frame into receive buffers.  Returns false if the
 * guest has not posted enough of them (the frame keeps waiting).  A frame
 * that could never fit the buffers the guest posts (too small without
 * mergeable buffers) is dropped, as a real NIC would. */
static bool deliver_frame(struct net *n, bool *pushed)
{
	struct virtio_dev *vd = n->vd;
	struct virtq *q = &vd->queues[NET_RXQ];
	size_t off = 0;
	unsigned used = 0;

	while (off < n->frame_len) {
		struct virtq_req *r;
		int got;

		if (used == NET_RX_BATCH || (!n->mrg_rxbuf && used == 1)) {
			while (used-- > 0)
				virtq_unpop(q);
			log_debug("virtio-net '%s': %zu-byte frame does not fit the receive buffers, dropped",
				  n->ifname, n->frame_len);
			count(&n->rx_dropped, 1);
			n->frame_len = 0;
			return true;
		}
		r = n->rx_reqs[used];
		got = virtq_pop(q, r);
		if (got < 0) {
			virtio_dev_fail(vd, "malformed descriptor chain in the receive queue");
			return false;
		}
		if (got == 0)
			goto no_room;
		used++;
		if (r->n_out > 0 || r->in_len < (used == 1 ? NET_HDR_LEN : 1)) {
			virtio_dev_fail(vd, "receive buffer %u is not writable or too small", r->head);
			return false;
		}
		off += iov_copy_to(r->in, r->n_in, 0, n->frame + off, n->frame_len - off);
	}
	/* Everything fits: record how many buffers the frame took, then publish. */
	{
		uint16_t nbufs = (uint16_t)used;
		iov_copy_to(n->rx_reqs[0]->in, n->rx_reqs[0]->n_in,
			    offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers), &nbufs, sizeof(nbufs));
		off = 0;
		for (unsigned i = 0; i < used; i++) {
			uint32_t len = (uint32_t)MIN(n->rx_reqs[i]->in_len, n->frame_len - off);
			virtq_complete(q, n->rx_reqs[i], len);
			off += len;
		}
	}
	count(&n->rx_packets, 1);
	count(&n->rx_bytes, n->frame_len - NET_HDR_LEN);
	n->frame_len = 0;
	*pushed = true;
	return true;
no_room:
	while (used-- > 0)
		virtq_unpop(q);
	return false;
}

static void net_rx(struct net *n)
{
	struct virtio_dev *vd = n->vd;
	struct virtq *q = &vd->queues[NET_RXQ];
	bool pushed = false;

	throttle_round(&n->rx_rate);
	for (unsigned frames = 0; frames < 256 && !vd->broken; frames++) {
		if (n->frame_len == 0) {
			ssize_t got = read(n->tap_fd, n->frame, NET_MAX_FRAME);
			if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				break;
			if (got <= (ssize_t)NET_HDR_LEN)
				continue; /* an error or a runt: nothing to deliver */
			n->frame_len = (size_t)got;
			n->frame_paid = false;
		}
		if (!n->frame_paid) {
			if (n->rates_ready && !throttle_admit(&n->rx_rate, n->frame_len - NET_HDR_LEN))
				break; /* the frame waits, the TAP unwatched, for the timer */
			n->frame_paid = true;
		}
		if (!deliver_frame(n, &pushed)) {
			/* Ask for a kick when buffers come, then check once more. */
			(void)virtq_enable_kicks(q);
			if (!vd->broken && deliver_frame(n, &pushed))
				continue;
			break;
		}
	}
	if (pushed)
		virtio_dev_notify_queue(vd, NET_RXQ);
	tap_watch(n, wanted_events(n));
}

/* A limiter has tokens again (or new limits): serve its direction. */
static void net_on_rate_timer(struct virtio_dev *vd, struct throttle *t)
{
	struct net *n = vd->priv;

	if (t == &n->tx_rate)
		net_tx(n);
	else
		net_rx(n);
}

static void net_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct net *n = vd->priv;

	if (q == NET_TXQ)
		net_tx(n);
	else
		net_rx(n); /* new receive buffers: deliver what waits */
}

static void net_on_tap(struct virtio_dev *vd, int fd, uint32_t events)
{
	struct net *n = vd->priv;

	(void)fd;
	if (!vd->active || vd->broken) {
		tap_watch(n, 0);
		return;
	}
	if (events & EPOLLOUT)
		net_tx(n);
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		net_rx(n);
}

static unsigned offloads_for(const struct virtio_dev *vd, unsigned supported)
{
	unsigned f = 0;

	if (virtio_dev_has_feature(vd, VIRTIO_NET_F_GUEST_CSUM)) {
		f |= TUN_F_CSUM;
		if (virtio_dev_has_feature(vd, VIRTIO_NET_F_GUEST_TSO4))
			f |= TUN_F_TSO4;
		if (virtio_dev_has_feature(vd, VIRTIO_NET_F_GUEST_TSO6))
			f |= TUN_F_TSO6;
		if (virtio_dev_has_feature(vd, VIRTIO_NET_F_GUEST_ECN))
			f |= TUN_F_TSO_ECN;
		if (virtio_dev_has_feature(vd, VIRTIO_NET_F_GUEST_UFO))
			f |= TUN_F_UFO;
	}
	return f & supported;
}

static int net_activate(struct virtio_dev *vd)
{
	struct net *n = vd->priv;
	struct err *e = NULL;

	n->mrg_rxbuf = virtio_dev_has_feature(vd, VIRTIO_NET_F_MRG_RXBUF);
	if (ioctl(n->tap_fd, TUNSETOFFLOAD, offloads_for(vd, n->tap_offloads)) < 0)
		log_warn("virtio-net '%s': TUNSETOFFLOAD: %s", n->ifname, strerror(errno));
	n->frame_len = 0;
	n->tx_blocked = false;
	if (!n->tap_watched) {
		if (virtio_dev_watch(vd, n->tap_fd, EPOLLIN, net_on_tap, &e) < 0) {
			log_warn("%s", e->msg);
			err_free(&e);
			return -EIO;
		}
		n->tap_watched = true;
		n->tap_events = EPOLLIN;
	}
	tap_watch(n, EPOLLIN);
	return 0;
}

static void net_reset(struct virtio_dev *vd)
{
	struct net *n = vd->priv;

	n->frame_len = 0;
	n->tx_blocked = false;
	tap_watch(n, 0);
}

static void net_destroy(struct virtio_dev *vd)
{
	struct net *n = vd->priv;

	if (n == NULL)
		return;
	if (n->tap_fd >= 0)
		close(n->tap_fd);
	if (n->rates_ready) {
		throttle_destroy(&n->rx_rate);
		throttle_destroy(&n->tx_rate);
	}
	virtq_req_free(n->req);
	for (unsigned i = 0; i < NET_RX_BATCH; i++)
		virtq_req_free(n->rx_reqs[i]);
	free(n->frame);
	free(n);
}

static void net_metrics(struct virtio_dev *vd, json_object *c)
{
	struct net *n = vd->priv;
	const struct device_counter counters[] = {
	    {"tx_packets", &n->tx_packets},	     {"tx_bytes", &n->tx_bytes},
	    {"rx_packets", &n->rx_packets},	     {"rx_bytes", &n->rx_bytes},
	    {"rx_dropped", &n->rx_dropped},	     {"rx_throttled", &n->rx_rate.throttled},
	    {"tx_throttled", &n->tx_rate.throttled},
	};

	device_counters_add(c, counters, ARRAY_SIZE(counters));
}

static const struct virtio_dev_ops net_ops = {
    .thread_kind = VMM_THREAD_NET,
    .metrics = net_metrics,
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .nqueues = 2,
    .queue_size = NET_QUEUE_SIZE,
    .activate = net_activate,
    .reset = net_reset,
    .queue_notify = net_queue_notify,
    .destroy = net_destroy,
};

static int open_tap(struct net *n, const struct net_config *c, struct err **e)
{
	struct ifreq ifr;
	unsigned features = 0;
	int hdr_len = (int)NET_HDR_LEN;

	memset(&ifr, 0, sizeof(ifr));
	if (c->tap) {
		n->tap_fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
		if (n->tap_fd < 0)
			return err_set(e, errno, "net '%s': open /dev/net/tun", c->tap);
		if (ioctl(n->tap_fd, TUNGETFEATURES, &features) == 0 && !(features & IFF_VNET_HDR))
			return err_setx(e, ENOTSUP, "net '%s': this kernel's TAP has no IFF_VNET_HDR", c->tap);
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->tap);
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
		if (ioctl(n->tap_fd, TUNSETIFF, &ifr) < 0)
			return err_set(e, errno, "net '%s': attach to TAP interface", c->tap);
	} else {
		n->tap_fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 3);
		if (n->tap_fd < 0)
			return err_set(e, errno, "net fd %d", c->fd);
		if (ioctl(n->tap_fd, TUNGETIFF, &ifr) < 0)
			return err_set(e, errno, "net fd %d: not a TAP device (TUNGETIFF)", c->fd);
		if (!(ifr.ifr_flags & IFF_TAP) || !(ifr.ifr_flags & IFF_VNET_HDR) || !(ifr.ifr_flags & IFF_NO_PI))
			return err_setx(e, EINVAL,
					"net fd %d: TAP '%s' must be opened with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR", c->fd,
					ifr.ifr_name);
		if (fcntl(n->tap_fd, F_SETFL, fcntl(n->tap_fd, F_GETFL) | O_NONBLOCK) < 0)
			return err_set(e, errno, "net fd %d: O_NONBLOCK", c->fd);
	}
	snprintf(n->ifname, sizeof(n->ifname), "%s", ifr.ifr_name);
	if (ioctl(n->tap_fd, TUNSETVNETHDRSZ, &hdr_len) < 0)
		return err_set(e, errno, "net '%s': TUNSETVNETHDRSZ", n->ifname);
	/* Probe which offloads the TAP takes; UFO is gone from some kernels. */
	n->tap_offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO;
	if (ioctl(n->tap_fd, TUNSETOFFLOAD, n->tap_offloads) < 0) {
		n->tap_offloads &= ~TUN_F_UFO;
		if (ioctl(n->tap_fd, TUNSETOFFLOAD, n->tap_offloads) < 0)
			n->tap_offloads = 0;
	}
	(void)ioctl(n->tap_fd, TUNSETOFFLOAD, 0);
	return 0;
}

int virtio_net_create(struct vm *vm, const struct net_config *c, unsigned index, struct err **e)
{
	struct virtio_net_config cfg;
	struct virtio_dev *vd;
	struct net *n = calloc(1, sizeof(*n));
	uint64_t features;
	char id[32], what[48];
	int r;

	if (n == NULL)
		return err_set(e, ENOMEM, "virtio-net 'net%u'", index);
	n->tap_fd = n->rx_rate.timer_fd = n->tx_rate.timer_fd = -1;
	n->frame = malloc(NET_MAX_FRAME);
	n->req = virtq_req_new(NET_REQ_SEGS);
	for (unsigned i = 0; i < NET_RX_BATCH; i++)
		n->rx_reqs[i] = virtq_req_new(NET_REQ_SEGS);
	if (n->frame == NULL || n->req == NULL || n->rx_reqs[NET_RX_BATCH - 1] == NULL) {
		net_destroy(&(struct virtio_dev){.priv = n});
		return err_set(e, ENOMEM, "virtio-net 'net%u'", index);
	}
	r = open_tap(n, c, e);
	if (r < 0) {
		net_destroy(&(struct virtio_dev){.priv = n});
		return r;
	}
	memset(&cfg, 0, sizeof(cfg));
	if (c->has_mac) {
		memcpy(cfg.mac, c->mac, 6);
	} else {
		/* A random, locally administered, unicast address. */
		if (getrandom(cfg.mac, 6, 0) != 6)
			memset(cfg.mac, index + 1, 6);
		cfg.mac[0] = (uint8_t)((cfg.mac[0] & 0xfe) | 0x02);
	}
	cfg.status = VIRTIO_NET_S_LINK_UP;
	features = (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS) | (1ULL << VIRTIO_NET_F_MRG_RXBUF) |
		   (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO6) |
		   (1ULL << VIRTIO_NET_F_HOST_ECN);
	if (n->tap_offloads & TUN_F_CSUM)
		features |= 1ULL << VIRTIO_NET_F_GUEST_CSUM;
	if (n->tap_offloads & TUN_F_TSO4)
		features |= 1ULL << VIRTIO_NET_F_GUEST_TSO4;
	if (n->tap_offloads & TUN_F_TSO6)
		features |= 1ULL << VIRTIO_NET_F_GUEST_TSO6;
	if (n->tap_offloads & TUN_F_TSO_ECN)
		features |= 1ULL << VIRTIO_NET_F_GUEST_ECN;
	if (n->tap_offloads & TUN_F_UFO)
		features |= (1ULL << VIRTIO_NET_F_GUEST_UFO) | (1ULL << VIRTIO_NET_F_HOST_UFO);
	snprintf(id, sizeof(id), "net%u", index);
	r = virtio_dev_create(vm, &net_ops, id, features, &cfg, offsetof(struct virtio_net_config, mtu), n, &vd, e);
	if (r < 0)
		return r;
	n->vd = vd;
	snprintf(what, sizeof(what), "net '%s'", n->ifname);
	r = throttle_init(&n->rx_rate, vd, &c->rx_rate, net_on_rate_timer, "rx_rate", what, e);
	if (r == 0)
		r = throttle_init(&n->tx_rate, vd, &c->tx_rate, net_on_rate_timer, "tx_rate", what, e);
	n->rates_ready = true; /* both initialised: destroy releases them */
	if (r < 0)
		return r;
	log_debug("virtio-net '%s': TAP '%s', mac %02x:%02x:%02x:%02x:%02x:%02x", id, n->ifname, cfg.mac[0], cfg.mac[1],
		  cfg.mac[2], cfg.mac[3], cfg.mac[4], cfg.mac[5]);
	return 0;
}

static int virtio_net_create_all(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	for (unsigned i = 0; i < cfg->nnets; i++) {
		int r = virtio_net_create(vm, &cfg->nets[i], i, e);
		if (r < 0)
			return r;
	}
	return 0;
}

const struct device_type virtio_net_type = {.name = "virtio-net", .create = virtio_net_create_all};
