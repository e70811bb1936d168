/* virtio-vsock, host -> guest: the receive queue (vsock-internal.h). */
#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/devices/virtio/vsock-internal.h"

static void vsock_fill_hdr(struct vsock *v, struct virtio_vsock_hdr *h, uint32_t host_port, uint32_t guest_port,
			   uint16_t op)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = htole64(VSOCK_HOST_CID);
	h->dst_cid = htole64(v->guest_cid);
	h->src_port = htole32(host_port);
	h->dst_port = htole32(guest_port);
	h->type = htole16(VIRTIO_VSOCK_TYPE_STREAM);
	h->op = htole16(op);
}

/* The next control packet c owes, with its header filled; 0 if none. */
static uint16_t conn_next_control(struct vsock *v, struct conn *c, struct virtio_vsock_hdr *h)
{
	static const struct {
		unsigned bit;
		uint16_t op;
	} order[] = {
	    {OWE_RST, VIRTIO_VSOCK_OP_RST},
	    {OWE_REQUEST, VIRTIO_VSOCK_OP_REQUEST},
	    {OWE_RESPONSE, VIRTIO_VSOCK_OP_RESPONSE},
	    {OWE_CREDIT_REQUEST, VIRTIO_VSOCK_OP_CREDIT_REQUEST},
	    {OWE_CREDIT_UPDATE, VIRTIO_VSOCK_OP_CREDIT_UPDATE},
	    {OWE_SHUTDOWN, VIRTIO_VSOCK_OP_SHUTDOWN},
	};

	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		if (!(c->owe & order[i].bit))
			continue;
		c->owe &= ~order[i].bit;
		vsock_fill_hdr(v, h, c->host_port, c->guest_port, order[i].op);
		if (order[i].op == VIRTIO_VSOCK_OP_SHUTDOWN)
			h->flags = htole32(c->shutdown_sent);
		return order[i].op;
	}
	return 0;
}

/* The program's side ended (read returned 0): tell the guest. */
void vsock_conn_host_eof(struct vsock *v, struct conn *c)
{
	uint32_t flags = VIRTIO_VSOCK_SHUTDOWN_SEND | (c->host_hup ? VIRTIO_VSOCK_SHUTDOWN_RCV : 0);

	c->host_eof = true;
	if ((flags & ~c->shutdown_sent) == 0)
		return;
	c->shutdown_sent |= flags;
	c->owe |= OWE_SHUTDOWN;
	if (c->shutdown_sent == (VIRTIO_VSOCK_SHUTDOWN_SEND | VIRTIO_VSOCK_SHUTDOWN_RCV)) {
		/* The guest answers with RST; if it never does, we do. */
		c->state = CONN_CLOSING;
		vsock_conn_set_deadline(v, c, VSOCK_CLOSE_TIMEOUT_MS);
	}
}

/* Fill one receive buffer for c: a control packet or data.  Returns the
 * bytes written into the buffer, 0 when c has nothing to send now. */
static uint32_t conn_rx_one(struct vsock *v, struct conn *c, struct virtq_req *req)
{
	struct virtio_vsock_hdr h;
	uint32_t room, want;
	unsigned n;
	ssize_t got;

	if (conn_next_control(v, c, &h) != 0) {
		h.buf_alloc = htole32(VSOCK_BUF_ALLOC);
		h.fwd_cnt = htole32(c->fwd_cnt);
		c->fwd_cnt_told = c->fwd_cnt;
		iov_copy_to(req->in, req->n_in, 0, &h, VSOCK_HDR);
		return VSOCK_HDR;
	}
	if (!vsock_conn_wants_rx(c))
		return 0;
	room = (uint32_t)MIN(req->in_len - VSOCK_HDR, (uint64_t)VSOCK_MAX_PAYLOAD);
	want = MIN(room, vsock_conn_peer_credit(c));
	if (want == 0)
		return 0;
	n = iov_slice(req->in, req->n_in, VSOCK_HDR, want, v->slice, VSOCK_REQ_SEGS);
	got = readv(c->fd, v->slice, (int)n);
	if (got > 0) {
		vsock_fill_hdr(v, &h, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_RW);
		h.len = htole32((uint32_t)got);
		h.buf_alloc = htole32(VSOCK_BUF_ALLOC);
		h.fwd_cnt = htole32(c->fwd_cnt);
		c->fwd_cnt_told = c->fwd_cnt;
		c->tx_cnt += (uint32_t)got;
		__atomic_add_fetch(&v->bytes_to_guest, (uint64_t)got, __ATOMIC_RELAXED);
		iov_copy_to(req->in, req->n_in, 0, &h, VSOCK_HDR);
		return VSOCK_HDR + (uint32_t)got;
	}
	if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
		c->in_ready = errno == EINTR;
		return 0;
	}
	if (got == 0)
		vsock_conn_host_eof(v, c);
	else
		vsock_conn_reset(v, c);
	/* What it owes now goes out with the next buffer. */
	return 0;
}

static bool vsock_rx_orphan(struct vsock *v, struct virtq_req *req)
{
	struct virtio_vsock_hdr h;
	struct orphan_rst o;

	if (v->orphan_len == 0)
		return false;
	o = v->orphans[v->orphan_head];
	v->orphan_head = (v->orphan_head + 1) % VSOCK_ORPHAN_RSTS;
	v->orphan_len--;
	vsock_fill_hdr(v, &h, o.host_port, o.guest_port, VIRTIO_VSOCK_OP_RST);
	iov_copy_to(req->in, req->n_in, 0, &h, VSOCK_HDR);
	return true;
}

/* The first connection in the rx list that has something to send. */
static struct conn *vsock_rx_next(struct vsock *v)
{
	while (v->rx_head) {
		if (v->rx_head->state != CONN_DEAD && vsock_conn_wants_rx(v->rx_head))
			return v->rx_head;
		vsock_rx_unlink_head(v);
	}
	return NULL;
}

void vsock_rx(struct vsock *v)
{
	struct virtio_dev *vd = v->vd;
	struct virtq *q = &vd->queues[VSOCK_RXQ];
	bool pushed = false;
	unsigned idle = 0;

	if (!vd->active || vd->broken)
		return;
	while (v->orphan_len > 0 || vsock_rx_next(v)) {
		struct virtq_req *req = v->req;
		struct conn *c;
		uint32_t len = 0;
		int got = virtq_pop(q, req);

		if (got < 0) {
			virtio_dev_fail(vd, "malformed descriptor chain in the receive queue");
			return;
		}
		if (got == 0) {
			if (virtq_enable_kicks(q))
				continue; /* buffers came meanwhile */
			break;
		}
		virtq_disable_kicks(q);
		if (req->n_out > 0 || req->in_len < VSOCK_HDR) {
			virtio_dev_fail(vd, "receive buffer %u: %s", req->head,
					req->n_out > 0 ? "device-readable" : "smaller than a packet header");
			return;
		}
		if (vsock_rx_orphan(v, req)) {
			len = VSOCK_HDR;
		} else if ((c = vsock_rx_next(v)) != NULL) {
			len = conn_rx_one(v, c, req);
			/* Round robin: the connection goes to the back of the line. */
			vsock_rx_unlink_head(v);
			if (c->state == CONN_RST && !c->owe)
				vsock_conn_free(v, c); /* its RST went out */
			else
				vsock_conn_schedule(v, c);
		}
		if (len == 0) {
			/* Nothing after all (the socket was drained, or ended); each
			 * such turn changes a connection's state, so this ends. */
			virtq_unpop(q);
			if (++idle > v->nconns + 1)
				break;
			continue;
		}
		virtq_complete(q, req, len);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_queue(vd, VSOCK_RXQ);
	vsock_reap(v);
}
