/* virtio-vsock, guest -> host: the transmit queue (vsock-internal.h). */
#include <endian.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/devices/virtio/vsock-internal.h"

static void conn_update_credit(struct vsock *v, struct conn *c, const struct virtio_vsock_hdr *h)
{
	uint32_t before = vsock_conn_peer_credit(c);

	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	if (vsock_conn_peer_credit(c) > before)
		c->credit_requested = false;
	vsock_conn_schedule(v, c);
}

/* Payload of an RW packet for connection c (len bytes at iov). */
static void conn_guest_data(struct vsock *v, struct conn *c, const struct iovec *iov, unsigned n, uint32_t len)
{
	uint32_t buffered = c->rx_cnt - c->fwd_cnt;
	size_t done = 0;

	if (c->guest_no_send || len > VSOCK_BUF_ALLOC - MIN(buffered, (uint32_t)VSOCK_BUF_ALLOC)) {
		log_debug("virtio-vsock '%s': %u->%u: %u bytes %s", v->vd->id, c->guest_port, c->host_port, len,
			  c->guest_no_send ? "after SHUTDOWN" : "beyond the credit given");
		vsock_conn_reset(v, c);
		return;
	}
	c->rx_cnt += len;
	__atomic_add_fetch(&v->bytes_from_guest, len, __ATOMIC_RELAXED);
	if (c->out_len == 0 && c->out_ready) {
		ssize_t w = sendmsg(c->fd, &(struct msghdr){.msg_iov = (struct iovec *)iov, .msg_iovlen = n},
				    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			vsock_conn_reset(v, c);
			return;
		}
		if (w >= 0) {
			done = (size_t)w;
			c->fwd_cnt += (uint32_t)w;
		}
		if (done < len)
			c->out_ready = false;
	}
	if (done < len) {
		struct iovec rest[VSOCK_REQ_SEGS];
		unsigned k = iov_slice(iov, n, done, len - done, rest, VSOCK_REQ_SEGS);
		if (!vsock_conn_queue_out(c, rest, k, len - done)) {
			vsock_conn_reset(v, c);
			return;
		}
	}
	vsock_conn_progress(v, c);
}

static int vsock_unix_connect(const char *base, uint32_t port)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	if ((size_t)snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%u", base, port) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A Unix stream connect completes at once, or fails (no listener,
	 * backlog full): either way, no EINPROGRESS to wait for. */
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int saved = errno;
		close(fd);
		return -saved;
	}
	return fd;
}

/* The guest connects to a host port. */
static void vsock_guest_request(struct vsock *v, const struct virtio_vsock_hdr *h)
{
	uint32_t host_port = le32toh(h->dst_port), guest_port = le32toh(h->src_port);
	struct conn *c = NULL;
	int fd = -1;

	if (v->nconns < VSOCK_MAX_CONNS)
		fd = vsock_unix_connect(v->path, host_port);
	if (fd >= 0 && (c = vsock_conn_new(v, fd, CONN_ESTABLISHED)) == NULL)
		close(fd);
	if (c == NULL) {
		log_debug("virtio-vsock '%s': guest port %u -> host port %u: %s", v->vd->id, guest_port, host_port,
			  fd < 0 ? strerror(-fd) : "out of memory");
		vsock_orphan_rst(v, host_port, guest_port);
		return;
	}
	c->host_port = host_port;
	c->guest_port = guest_port;
	c->owe = OWE_RESPONSE;
	vsock_conn_hash_add(v, c);
	conn_update_credit(v, c, h);
}

static void vsock_guest_shutdown(struct vsock *v, struct conn *c, uint32_t flags)
{
	if (flags & VIRTIO_VSOCK_SHUTDOWN_RCV) {
		c->guest_no_recv = true;
		(void)shutdown(c->fd, SHUT_RD);
	}
	if (flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
		c->guest_no_send = true;
	if (c->guest_no_recv && c->guest_no_send && c->state == CONN_ESTABLISHED) {
		c->state = CONN_CLOSING;
		vsock_conn_set_deadline(v, c, VSOCK_CLOSE_TIMEOUT_MS);
	}
	vsock_conn_progress(v, c);
}

/* One packet from the guest, its header checked for framing already. */
static void vsock_guest_packet(struct vsock *v, const struct virtio_vsock_hdr *h, const struct iovec *payload,
			       unsigned npayload)
{
	uint32_t host_port = le32toh(h->dst_port), guest_port = le32toh(h->src_port);
	uint16_t op = le16toh(h->op);
	struct conn *c;
	char line[24];

	if (le64toh(h->src_cid) != v->guest_cid) {
		log_debug("virtio-vsock '%s': packet from cid %llu, not the guest's: dropped", v->vd->id,
			  (unsigned long long)le64toh(h->src_cid));
		return;
	}
	c = vsock_conn_find(v, host_port, guest_port);
	if (op == VIRTIO_VSOCK_OP_RST) {
		/* Never answer an RST; the connection just ends. */
		if (c && c->state != CONN_RST) {
			vsock_conn_refuse(v, c, "refused");
			vsock_conn_free(v, c);
		}
		return;
	}
	if (le64toh(h->dst_cid) != VSOCK_HOST_CID || le16toh(h->type) != VIRTIO_VSOCK_TYPE_STREAM) {
		if (c)
			vsock_conn_reset(v, c);
		else
			vsock_orphan_rst(v, host_port, guest_port);
		return;
	}
	if (c == NULL) {
		if (op == VIRTIO_VSOCK_OP_REQUEST)
			vsock_guest_request(v, h);
		else
			vsock_orphan_rst(v, host_port, guest_port);
		return;
	}
	if (c->state == CONN_RST)
		return; /* its RST is on the way */
	conn_update_credit(v, c, h);
	switch (op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state != CONN_CONNECTING) {
			vsock_conn_reset(v, c);
			break;
		}
		c->state = CONN_ESTABLISHED;
		c->deadline = 0;
		snprintf(line, sizeof(line), "OK %u\n", c->host_port);
		if (!vsock_conn_queue_out(c, &(struct iovec){line, strlen(line)}, 1, strlen(line))) {
			vsock_conn_reset(v, c);
			break;
		}
		c->out_line = strlen(line);
		vsock_conn_flush(v, c);
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state != CONN_ESTABLISHED)
			vsock_conn_reset(v, c);
		else
			conn_guest_data(v, c, payload, npayload, le32toh(h->len));
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (c->state != CONN_ESTABLISHED && c->state != CONN_CLOSING)
			vsock_conn_reset(v, c);
		else
			vsock_guest_shutdown(v, c, le32toh(h->flags));
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break; /* the credit fields were all it carried */
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->owe |= OWE_CREDIT_UPDATE;
		vsock_conn_schedule(v, c);
		break;
	default: /* INVALID, a second REQUEST, anything unknown */
		vsock_conn_reset(v, c);
		break;
	}
}

enum virtio_served vsock_serve_tx(struct virtio_dev *vd, unsigned q, struct virtq_req *req, uint32_t *written)
{
	struct vsock *v = vd->priv;
	struct virtio_vsock_hdr h;
	uint32_t len;
	unsigned n;

	(void)q;
	(void)written;
	if (req->n_in > 0 || req->out_len < VSOCK_HDR) {
		virtio_dev_fail(vd, "transmit packet %u: %s", req->head,
				req->n_in > 0 ? "device-writable buffers" : "shorter than its header");
		return VIRTIO_FAILED;
	}
	iov_copy_from(req->out, req->n_out, 0, &h, VSOCK_HDR);
	len = le32toh(h.len);
	if (len > VSOCK_MAX_PAYLOAD || len > req->out_len - VSOCK_HDR) {
		virtio_dev_fail(vd, "transmit packet %u: payload of %u bytes in a %llu-byte chain", req->head, len,
				(unsigned long long)req->out_len);
		return VIRTIO_FAILED;
	}
	n = iov_slice(req->out, req->n_out, VSOCK_HDR, len, v->slice, VSOCK_REQ_SEGS);
	vsock_guest_packet(v, &h, v->slice, n);
	return VIRTIO_SERVED;
}
