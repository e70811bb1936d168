/*
 * virtio-vsock with the host side on Unix sockets (Firecracker's scheme).
 *
 *  - The guest connects to host port P: the device connects to the Unix
 *    socket PATH_P and answers RESPONSE, or RST when nobody listens there.
 *  - A host program connects to PATH and writes "CONNECT <port>\n": the
 *    device picks a free host port H (from 2^30 up), sends the guest a
 *    REQUEST from H to <port>, and on the guest's RESPONSE writes
 *    "OK <H>\n" to the program; from then on the stream is the guest's.
 *    A guest RST (nobody listening), a malformed line or no answer within
 *    VSOCK_CONNECT_TIMEOUT_MS closes the program's socket, with no line.
 *
 * Flow control is credit-based in both directions, and nothing is
 * buffered without bound:
 *  - host -> guest: the Unix socket is read straight into a receive
 *    buffer the guest posted, never more than the guest's credit
 *    (buf_alloc - (tx_cnt - fwd_cnt)); without credit or buffers the
 *    socket is left unread and its writer blocks.
 *  - guest -> host: payloads are written to the socket straight from guest
 *    memory; what the socket does not take waits in a per-connection
 *    buffer of VSOCK_BUF_ALLOC bytes, which is exactly the credit this
 *    device advertises.  fwd_cnt only counts bytes the socket took, so a
 *    slow reader stops the guest, and a guest that sends beyond its credit
 *    is reset (RST), never buffered.
 *
 * Connections follow the virtio 1.2 state machine (5.10.6): REQUEST,
 * RESPONSE, RW, CREDIT_UPDATE/REQUEST, SHUTDOWN (half-close maps to
 * shutdown(2) on the Unix socket), RST.  Control packets a connection owes
 * the guest wait as flags on it until a receive buffer comes; replies to
 * packets for no connection wait in a small ring.  A chain that breaks the
 * framing rules (short header, payload longer than the chain or than
 * 64 KiB, a writable transmit buffer) is a driver bug: needs-reset.
 * Protocol errors on one connection (unknown op or type, data beyond
 * credit, data before RESPONSE) reset that connection only.
 *
 * The Unix sockets live in the device's own epoll set, edge-triggered,
 * with the connection as their event data: connections freed while that
 * set's events are being handled are only freed once the batch is done.
 */
#include <endian.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>

#include "common/fdutil.h"
#include "common/log.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/devices/virtio/vsock.h"
#include "vmm/vm.h"

#define VSOCK_QUEUE_SIZE 128
#define VSOCK_RXQ 0
#define VSOCK_TXQ 1
#define VSOCK_EVQ 2
#define VSOCK_REQ_SEGS 64
#define VSOCK_HOST_CID 2
#define VSOCK_HDR ((uint32_t)sizeof(struct virtio_vsock_hdr)) /* 44 */
#define VSOCK_MAX_PAYLOAD (64 * 1024)  /* Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE */
#define VSOCK_BUF_ALLOC (256 * 1024)   /* our receive window per connection */
#define VSOCK_OUT_CAP (VSOCK_BUF_ALLOC + 32) /* the window, and the "OK <port>" line */
#define VSOCK_MAX_CONNS 256
#define VSOCK_HASH 256
#define VSOCK_LINE_MAX 32
#define VSOCK_ORPHAN_RSTS 64
#define VSOCK_FIRST_EPHEMERAL (1u << 30)
#define VSOCK_CONNECT_TIMEOUT_MS 2000
#define VSOCK_CLOSE_TIMEOUT_MS 5000
#define VSOCK_TICK_MS 250
#define VSOCK_EDGE (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

enum conn_state {
	CONN_LINE,        /* host program connected to PATH; reading "CONNECT <port>\n" */
	CONN_CONNECTING,  /* REQUEST for the guest, waiting for its RESPONSE */
	CONN_ESTABLISHED,
	CONN_CLOSING,     /* both sides shut down; waiting for the last RST or flush */
	CONN_RST,         /* socket closed; an RST still owed to the guest */
	CONN_DEAD,        /* freed once the current event batch is done */
};

/* Control packets a connection owes the guest. */
enum {
	OWE_REQUEST = 1 << 0,
	OWE_RESPONSE = 1 << 1,
	OWE_SHUTDOWN = 1 << 2,
	OWE_CREDIT_UPDATE = 1 << 3,
	OWE_CREDIT_REQUEST = 1 << 4,
	OWE_RST = 1 << 5,
};

struct conn {
	enum conn_state state;
	int fd;
	uint32_t host_port, guest_port;
	uint64_t deadline; /* ms on CLOCK_MONOTONIC, 0 for none */
	unsigned owe;      /* OWE_* */
	uint32_t shutdown_sent; /* VIRTIO_VSOCK_SHUTDOWN_* told to the guest */

	/* Credit: the guest's window, and what we sent into it. */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	bool credit_requested;
	/* Our window: bytes received from the guest, and forwarded to the socket. */
	uint32_t rx_cnt, fwd_cnt, fwd_cnt_told;

	bool in_ready, out_ready; /* the socket's edge-triggered readiness */
	bool host_eof;            /* the program will send no more */
	bool host_hup;            /* ... nor receive */
	bool guest_no_send, guest_no_recv;
	bool shut_wr;             /* shutdown(SHUT_WR) done */

	uint8_t *out;             /* guest -> host bytes the socket has not taken */
	size_t out_start, out_len;
	size_t out_line;          /* of which the "OK" line, first: not guest data */

	bool queued;              /* in the rx list */
	struct conn *rx_next;
	struct conn *hash_next;
	struct conn *all_next, **all_prev; /* every live connection */
	struct conn *dead_next;
};

struct orphan_rst {
	uint32_t host_port, guest_port;
};

struct vsock {
	struct virtio_dev *vd;
	uint64_t guest_cid;
	char *path;
	int listen_fd;
	int epfd;
	int timer_fd;
	bool timer_armed;

	struct conn *hash[VSOCK_HASH];
	struct conn *all;
	unsigned nconns;
	uint32_t next_port;
	struct conn *rx_head, *rx_tail;
	struct orphan_rst orphans[VSOCK_ORPHAN_RSTS];
	unsigned orphan_head, orphan_len;
	bool event_owed; /* a TRANSPORT_RESET event for the event queue */

	/* GET /metrics: written by the device thread, read anywhere. */
	uint64_t bytes_to_guest, bytes_from_guest, connections, resets;

	bool in_batch;
	struct conn *dead;
	struct virtq_req *req;
	struct iovec slice[VSOCK_REQ_SEGS];
};

/* The listening socket and the timer in the epoll set: their event data. */
static char vsock_tag_listen, vsock_tag_timer;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The part [off, off + len) of an iovec array, as another one. */
static unsigned iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len, struct iovec *out,
			  unsigned cap)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len > 0 && k < cap; i++) {
		size_t take;
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		take = MIN(iov[i].iov_len - off, len);
		out[k++] = (struct iovec){ (char *)iov[i].iov_base + off, take };
		len -= take;
		off = 0;
	}
	return k;
}

/* --- connections --- */

static unsigned conn_bucket(uint32_t host_port, uint32_t guest_port)
{
	return (host_port * 2654435761u ^ guest_port * 40503u) % VSOCK_HASH;
}

static struct conn *conn_find(struct vsock *v, uint32_t host_port, uint32_t guest_port)
{
	for (struct conn *c = v->hash[conn_bucket(host_port, guest_port)]; c; c = c->hash_next)
		if (c->host_port == host_port && c->guest_port == guest_port && c->state != CONN_LINE)
			return c;
	return NULL;
}

static void conn_hash_add(struct vsock *v, struct conn *c)
{
	unsigned b = conn_bucket(c->host_port, c->guest_port);

	c->hash_next = v->hash[b];
	v->hash[b] = c;
}

static void conn_hash_remove(struct vsock *v, struct conn *c)
{
	for (struct conn **p = &v->hash[conn_bucket(c->host_port, c->guest_port)]; *p; p = &(*p)->hash_next) {
		if (*p == c) {
			*p = c->hash_next;
			return;
		}
	}
}

static struct conn *conn_new(struct vsock *v, int fd, enum conn_state state)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = VSOCK_EDGE };

	if (c == NULL)
		return NULL;
	c->fd = fd;
	c->state = state;
	ev.data.ptr = c;
	if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(c);
		return NULL;
	}
	c->in_ready = c->out_ready = true;
	__atomic_add_fetch(&v->connections, 1, __ATOMIC_RELAXED);
	c->all_next = v->all;
	if (v->all)
		v->all->all_prev = &c->all_next;
	c->all_prev = &v->all;
	v->all = c;
	__atomic_add_fetch(&v->nconns, 1, __ATOMIC_RELAXED); /* GET /metrics reads it */
	return c;
}

static void conn_close_fd(struct conn *c)
{
	if (c->fd >= 0) {
		close(c->fd); /* leaves the epoll set with it */
		c->fd = -1;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = 0;
	c->out_line = 0;
}

/* Forget a connection; its memory goes in vsock_reap(). */
static void conn_free(struct vsock *v, struct conn *c)
{
	if (c->state == CONN_DEAD)
		return;
	conn_close_fd(c);
	conn_hash_remove(v, c);
	*c->all_prev = c->all_next;
	if (c->all_next)
		c->all_next->all_prev = c->all_prev;
	c->state = CONN_DEAD;
	__atomic_sub_fetch(&v->nconns, 1, __ATOMIC_RELAXED);
	c->dead_next = v->dead;
	v->dead = c;
}

static void vsock_rx_unlink_head(struct vsock *v)
{
	struct conn *c = v->rx_head;

	v->rx_head = c->rx_next;
	if (v->rx_head == NULL)
		v->rx_tail = NULL;
	c->queued = false;
}

/* Free the connections that went away, once nothing can point at them:
 * not during an event batch, and not from the rx list. */
static void vsock_reap(struct vsock *v)
{
	struct conn **p;

	if (v->in_batch || v->dead == NULL)
		return;
	v->rx_tail = NULL;
	for (p = &v->rx_head; *p;) {
		if ((*p)->state == CONN_DEAD) {
			(*p)->queued = false;
			*p = (*p)->rx_next;
		} else {
			v->rx_tail = *p;
			p = &(*p)->rx_next;
		}
	}
	while (v->dead) {
		struct conn *c = v->dead;
		v->dead = c->dead_next;
		free(c);
	}
}

static void vsock_arm_timer(struct vsock *v)
{
	struct itimerspec its = { .it_interval = { .tv_nsec = VSOCK_TICK_MS * 1000000L },
				  .it_value = { .tv_nsec = VSOCK_TICK_MS * 1000000L } };

	if (!v->timer_armed && timerfd_settime(v->timer_fd, 0, &its, NULL) == 0)
		v->timer_armed = true;
}

static void conn_set_deadline(struct vsock *v, struct conn *c, unsigned ms)
{
	c->deadline = now_ms() + ms;
	vsock_arm_timer(v);
}

static uint32_t conn_peer_credit(const struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Does the connection have something for the guest's receive queue? */
static bool conn_wants_rx(const struct conn *c)
{
	if (c->owe)
		return true;
	return c->state == CONN_ESTABLISHED && c->in_ready && !c->host_eof && !c->guest_no_recv &&
	       conn_peer_credit(c) > 0;
}

static void conn_schedule(struct vsock *v, struct conn *c)
{
	if (c->queued || c->state == CONN_DEAD || !conn_wants_rx(c))
		return;
	c->queued = true;
	c->rx_next = NULL;
	if (v->rx_tail)
		v->rx_tail->rx_next = c;
	else
		v->rx_head = c;
	v->rx_tail = c;
}

/* Close the socket and owe the guest an RST (sent, then the connection
 * goes).  A guest that never heard of the connection, or has no driver
 * running (it starts from nothing), is owed nothing. */
static void conn_reset(struct vsock *v, struct conn *c)
{
	if (c->state == CONN_DEAD || c->state == CONN_RST)
		return;
	if (c->state == CONN_LINE || (c->owe & OWE_REQUEST) || !v->vd->active) {
		conn_free(v, c);
		return;
	}
	conn_close_fd(c);
	c->state = CONN_RST;
	c->owe = OWE_RST;
	__atomic_add_fetch(&v->resets, 1, __ATOMIC_RELAXED);
	conn_schedule(v, c);
}

static void vsock_orphan_rst(struct vsock *v, uint32_t host_port, uint32_t guest_port)
{
	if (v->orphan_len == VSOCK_ORPHAN_RSTS) {
		log_debug("virtio-vsock '%s': RST for %u->%u dropped, too many pending", v->vd->id, guest_port, host_port);
		return;
	}
	v->orphans[(v->orphan_head + v->orphan_len++) % VSOCK_ORPHAN_RSTS] =
		(struct orphan_rst){ host_port, guest_port };
}

/* After guest data drained or a shutdown: what the connection does next. */
static void conn_progress(struct vsock *v, struct conn *c)
{
	if (c->state != CONN_ESTABLISHED && c->state != CONN_CLOSING)
		return;
	if (c->out_len == 0 && c->guest_no_send && !c->shut_wr) {
		(void)shutdown(c->fd, SHUT_WR);
		c->shut_wr = true;
	}
	/* The guest is done both ways and has nothing left for the program. */
	if (c->guest_no_send && c->guest_no_recv && c->out_len == 0) {
		conn_reset(v, c);
		return;
	}
	/* Tell the guest about forwarded bytes once it believes half its
	 * credit is used (data packets to it carry fwd_cnt anyway): often
	 * enough that a guest streaming to a fast reader never waits. */
	if (c->fwd_cnt != c->fwd_cnt_told && c->rx_cnt - c->fwd_cnt_told >= VSOCK_BUF_ALLOC / 2)
		c->owe |= OWE_CREDIT_UPDATE;
	conn_schedule(v, c);
}

/* Write what waits for the program. */
static void conn_flush(struct vsock *v, struct conn *c)
{
	while (c->out_len > 0 && c->out_ready && c->fd >= 0) {
		ssize_t n = send(c->fd, c->out + c->out_start, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			c->out_ready = false;
			break;
		}
		if (n <= 0) {
			conn_reset(v, c); /* the program is gone */
			return;
		}
		c->out_start += (size_t)n;
		c->out_len -= (size_t)n;
		/* The "OK" line is not guest data: only count what the guest sent. */
		if (c->out_line > 0) {
			size_t line = MIN((size_t)n, c->out_line);
			c->out_line -= line;
			n -= (ssize_t)line;
		}
		c->fwd_cnt += (uint32_t)n;
	}
	if (c->out_len == 0)
		c->out_start = 0;
	conn_progress(v, c);
}

/* Queue bytes for the program (they fit: the guest's credit bounds them). */
static bool conn_queue_out(struct conn *c, const struct iovec *iov, unsigned n, size_t len)
{
	if (c->out == NULL && (c->out = malloc(VSOCK_OUT_CAP)) == NULL)
		return false;
	if (c->out_start + c->out_len + len > VSOCK_OUT_CAP) {
		memmove(c->out, c->out + c->out_start, c->out_len);
		c->out_start = 0;
	}
	if (c->out_start + c->out_len + len > VSOCK_OUT_CAP)
		return false;
	iov_copy_from(iov, n, 0, c->out + c->out_start + c->out_len, len);
	c->out_len += len;
	return true;
}

/* --- guest -> host: the transmit queue --- */

static void conn_update_credit(struct vsock *v, struct conn *c, const struct virtio_vsock_hdr *h)
{
	uint32_t before = conn_peer_credit(c);

	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	if (conn_peer_credit(c) > before)
		c->credit_requested = false;
	conn_schedule(v, c);
}

/* Payload of an RW packet for connection c (len bytes at iov). */
static void conn_guest_data(struct vsock *v, struct conn *c, const struct iovec *iov, unsigned n, uint32_t len)
{
	uint32_t buffered = c->rx_cnt - c->fwd_cnt;
	size_t done = 0;

	if (c->guest_no_send || len > VSOCK_BUF_ALLOC - MIN(buffered, (uint32_t)VSOCK_BUF_ALLOC)) {
		log_debug("virtio-vsock '%s': %u->%u: %u bytes %s", v->vd->id, c->guest_port, c->host_port, len,
			  c->guest_no_send ? "after SHUTDOWN" : "beyond the credit given");
		conn_reset(v, c);
		return;
	}
	c->rx_cnt += len;
	__atomic_add_fetch(&v->bytes_from_guest, len, __ATOMIC_RELAXED);
	if (c->out_len == 0 && c->out_ready) {
		ssize_t w = sendmsg(c->fd, &(struct msghdr){ .msg_iov = (struct iovec *)iov, .msg_iovlen = n },
				    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			conn_reset(v, c);
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
		if (!conn_queue_out(c, rest, k, len - done)) {
			conn_reset(v, c);
			return;
		}
	}
	conn_progress(v, c);
}

static int vsock_unix_connect(const char *base, uint32_t port)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
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
	if (fd >= 0 && (c = conn_new(v, fd, CONN_ESTABLISHED)) == NULL)
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
	conn_hash_add(v, c);
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
		conn_set_deadline(v, c, VSOCK_CLOSE_TIMEOUT_MS);
	}
	conn_progress(v, c);
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
	c = conn_find(v, host_port, guest_port);
	if (op == VIRTIO_VSOCK_OP_RST) {
		/* Never answer an RST; the connection just ends. */
		if (c && c->state != CONN_RST)
			conn_free(v, c);
		return;
	}
	if (le64toh(h->dst_cid) != VSOCK_HOST_CID || le16toh(h->type) != VIRTIO_VSOCK_TYPE_STREAM) {
		if (c)
			conn_reset(v, c);
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
			conn_reset(v, c);
			break;
		}
		c->state = CONN_ESTABLISHED;
		c->deadline = 0;
		snprintf(line, sizeof(line), "OK %u\n", c->host_port);
		if (!conn_queue_out(c, &(struct iovec){ line, strlen(line) }, 1, strlen(line))) {
			conn_reset(v, c);
			break;
		}
		c->out_line = strlen(line);
		conn_flush(v, c);
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state != CONN_ESTABLISHED)
			conn_reset(v, c);
		else
			conn_guest_data(v, c, payload, npayload, le32toh(h->len));
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (c->state != CONN_ESTABLISHED && c->state != CONN_CLOSING)
			conn_reset(v, c);
		else
			vsock_guest_shutdown(v, c, le32toh(h->flags));
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break; /* the credit fields were all it carried */
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->owe |= OWE_CREDIT_UPDATE;
		conn_schedule(v, c);
		break;
	default: /* INVALID, a second REQUEST, anything unknown */
		conn_reset(v, c);
		break;
	}
}

static enum virtio_served vsock_serve_tx(struct virtio_dev *vd, unsigned q, struct virtq_req *req,
					 uint32_t *written)
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

/* --- host -> guest: the receive queue --- */

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
		{ OWE_RST, VIRTIO_VSOCK_OP_RST },
		{ OWE_REQUEST, VIRTIO_VSOCK_OP_REQUEST },
		{ OWE_RESPONSE, VIRTIO_VSOCK_OP_RESPONSE },
		{ OWE_CREDIT_REQUEST, VIRTIO_VSOCK_OP_CREDIT_REQUEST },
		{ OWE_CREDIT_UPDATE, VIRTIO_VSOCK_OP_CREDIT_UPDATE },
		{ OWE_SHUTDOWN, VIRTIO_VSOCK_OP_SHUTDOWN },
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
static void conn_host_eof(struct vsock *v, struct conn *c)
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
		conn_set_deadline(v, c, VSOCK_CLOSE_TIMEOUT_MS);
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
	if (!conn_wants_rx(c))
		return 0;
	room = (uint32_t)MIN(req->in_len - VSOCK_HDR, (uint64_t)VSOCK_MAX_PAYLOAD);
	want = MIN(room, conn_peer_credit(c));
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
		conn_host_eof(v, c);
	else
		conn_reset(v, c);
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
		if (v->rx_head->state != CONN_DEAD && conn_wants_rx(v->rx_head))
			return v->rx_head;
		vsock_rx_unlink_head(v);
	}
	return NULL;
}

static void vsock_rx(struct vsock *v)
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
				conn_free(v, c); /* its RST went out */
			else
				conn_schedule(v, c);
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

/* --- the host side: the listening socket, programs, timeouts --- */

/* "CONNECT <port>\n", peeked so that bytes after the line stay in the
 * socket for the guest.  Returns 1 when handled, 0 to wait for more. */
static int conn_read_line(struct vsock *v, struct conn *c)
{
	char buf[VSOCK_LINE_MAX + 1], *nl, *end;
	unsigned long port;
	ssize_t n = recv(c->fd, buf, VSOCK_LINE_MAX, MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		c->in_ready = false;
		return 0;
	}
	if (n <= 0) {
		conn_free(v, c);
		return 1;
	}
	buf[n] = '\0';
	nl = memchr(buf, '\n', (size_t)n);
	if (nl == NULL) {
		if (n == VSOCK_LINE_MAX)
			goto bad;
		c->in_ready = false; /* the rest comes with the next edge */
		return 0;
	}
	(void)!recv(c->fd, buf, (size_t)(nl - buf) + 1, MSG_DONTWAIT);
	*nl = '\0';
	if (nl > buf && nl[-1] == '\r')
		nl[-1] = '\0';
	if (strncmp(buf, "CONNECT ", 8) != 0 || buf[8] < '0' || buf[8] > '9')
		goto bad;
	errno = 0;
	port = strtoul(buf + 8, &end, 10);
	if (errno || *end != '\0' || port > UINT32_MAX)
		goto bad;
	/* A host port no other connection to this guest port uses. */
	for (unsigned tries = 0;; tries++) {
		uint32_t p = v->next_port++;
		if (v->next_port == UINT32_MAX) /* VMADDR_PORT_ANY */
			v->next_port = VSOCK_FIRST_EPHEMERAL;
		if (conn_find(v, p, (uint32_t)port) == NULL) {
			c->host_port = p;
			break;
		}
		if (tries > VSOCK_MAX_CONNS)
			goto bad;
	}
	c->guest_port = (uint32_t)port;
	c->state = CONN_CONNECTING;
	c->owe = OWE_REQUEST;
	c->in_ready = true; /* whatever followed the line */
	conn_hash_add(v, c);
	conn_set_deadline(v, c, VSOCK_CONNECT_TIMEOUT_MS);
	conn_schedule(v, c);
	return 1;
bad:
	log_debug("virtio-vsock '%s': %s: not a \"CONNECT <port>\" line, closing", v->vd->id, v->path);
	conn_free(v, c);
	return 1;
}

static void conn_on_event(struct vsock *v, struct conn *c, uint32_t events)
{
	if (c->state == CONN_DEAD || c->state == CONN_RST)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->in_ready = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->out_ready = true;
	if (events & (EPOLLHUP | EPOLLERR)) {
		c->host_hup = true;
		if (c->host_eof)
			conn_host_eof(v, c); /* now it will not receive either */
	}
	if (c->state == CONN_LINE) {
		if (c->in_ready)
			conn_read_line(v, c);
		return;
	}
	conn_flush(v, c);
	if (c->state != CONN_DEAD)
		conn_schedule(v, c);
}

static void vsock_accept(struct vsock *v)
{
	for (;;) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;
		if (v->nconns >= VSOCK_MAX_CONNS || (c = conn_new(v, fd, CONN_LINE)) == NULL) {
			log_debug("virtio-vsock '%s': %s: too many connections, refusing one", v->vd->id, v->path);
			close(fd);
			continue;
		}
		conn_set_deadline(v, c, VSOCK_CONNECT_TIMEOUT_MS);
		conn_read_line(v, c);
	}
}

static void vsock_tick(struct vsock *v)
{
	uint64_t now = now_ms(), expirations;
	bool pending = false;

	(void)!read(v->timer_fd, &expirations, sizeof(expirations));
	for (struct conn *c = v->all, *next; c; c = next) {
		next = c->all_next;
		if (c->deadline == 0)
			continue;
		if (c->deadline > now) {
			pending = true;
			continue;
		}
		c->deadline = 0;
		log_debug("virtio-vsock '%s': host port %u, guest port %u: timed out", v->vd->id, c->host_port,
			  c->guest_port);
		conn_reset(v, c);
	}
	if (!pending) {
		struct itimerspec off = { { 0, 0 }, { 0, 0 } };
		(void)timerfd_settime(v->timer_fd, 0, &off, NULL);
		v->timer_armed = false;
	}
}

void virtio_vsock_poll_host(struct virtio_dev *vd)
{
	struct vsock *v = vd->priv;
	struct epoll_event evs[32];
	int n = epoll_wait(v->epfd, evs, 32, 0);

	v->in_batch = true;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.ptr == &vsock_tag_listen)
			vsock_accept(v);
		else if (evs[i].data.ptr == &vsock_tag_timer)
			vsock_tick(v);
		else
			conn_on_event(v, evs[i].data.ptr, evs[i].events);
	}
	vsock_rx(v);
	v->in_batch = false;
	vsock_reap(v);
}

static void vsock_on_host(struct virtio_dev *vd, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	virtio_vsock_poll_host(vd);
}

/* --- the event queue, resets --- */

static void vsock_deliver_event(struct vsock *v)
{
	struct virtio_dev *vd = v->vd;
	struct virtq *q = &vd->queues[VSOCK_EVQ];
	struct virtio_vsock_event ev = { .id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET) };
	int got;

	if (!v->event_owed || !vd->active || vd->broken)
		return;
	got = virtq_pop(q, v->req);
	if (got < 0) {
		virtio_dev_fail(vd, "malformed descriptor chain in the event queue");
		return;
	}
	if (got == 0)
		return; /* delivered when the guest posts a buffer */
	if (v->req->n_out > 0 || v->req->in_len < sizeof(ev)) {
		virtio_dev_fail(vd, "event buffer %u is not a device-writable 4-byte buffer", v->req->head);
		return;
	}
	iov_copy_to(v->req->in, v->req->n_in, 0, &ev, sizeof(ev));
	virtq_complete(q, v->req, sizeof(ev));
	v->event_owed = false;
	virtio_dev_notify_queue(vd, VSOCK_EVQ);
}

/* Drop every connection without a word to the guest (it forgets them too). */
static void vsock_drop_all(struct vsock *v)
{
	while (v->all)
		conn_free(v, v->all);
	v->orphan_len = 0;
	vsock_reap(v);
}

void virtio_vsock_transport_reset(struct virtio_dev *vd)
{
	struct vsock *v = vd->priv;

	vsock_drop_all(v);
	v->event_owed = true;
	vsock_deliver_event(v);
}

static void vsock_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct vsock *v = vd->priv;

	if (q == VSOCK_TXQ) {
		virtio_dev_serve_queue(vd, q, v->req, vsock_serve_tx);
		vsock_rx(v); /* replies, and data the guest's credit updates let through */
	} else if (q == VSOCK_RXQ)
		vsock_rx(v);
	else
		vsock_deliver_event(v);
	vsock_reap(v);
}

/* A restored guest had connections to sockets of another process: tell it
 * they are gone (as Firecracker does), once its driver runs again. */
static int vsock_restore(struct virtio_dev *vd, struct snap_section *s, struct err **e)
{
	struct vsock *v = vd->priv;

	(void)s;
	(void)e;
	v->event_owed = true;
	return 0;
}

/* Also after a restore (the event waits for a running driver). */
static int vsock_activate(struct virtio_dev *vd)
{
	vsock_deliver_event(vd->priv);
	return 0;
}

static void vsock_reset(struct virtio_dev *vd)
{
	struct vsock *v = vd->priv;

	vsock_drop_all(v);
	v->event_owed = false;
}

static void vsock_destroy(struct virtio_dev *vd)
{
	struct vsock *v = vd->priv;

	if (v == NULL)
		return;
	if (v->vd)
		vsock_drop_all(v);
	if (v->listen_fd >= 0) {
		close(v->listen_fd);
		unlink(v->path);
	}
	if (v->timer_fd >= 0)
		close(v->timer_fd);
	if (v->epfd >= 0)
		close(v->epfd);
	virtq_req_free(v->req);
	free(v->path);
	free(v);
}

static void vsock_metric(json_object *o, const char *name, uint64_t *counter)
{
	json_object_object_add(o, name, json_object_new_int64((int64_t)__atomic_load_n(counter, __ATOMIC_RELAXED)));
}

static void vsock_metrics(struct virtio_dev *vd, json_object *o)
{
	struct vsock *v = vd->priv;

	json_object_object_add(o, "connections_open",
			       json_object_new_int64(__atomic_load_n(&v->nconns, __ATOMIC_RELAXED)));
	vsock_metric(o, "connections", &v->connections);
	vsock_metric(o, "resets_sent", &v->resets);
	vsock_metric(o, "bytes_to_guest", &v->bytes_to_guest);
	vsock_metric(o, "bytes_from_guest", &v->bytes_from_guest);
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "virtio-vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.nqueues = 3,
	.queue_size = VSOCK_QUEUE_SIZE,
	.activate = vsock_activate,
	.reset = vsock_reset,
	.restore = vsock_restore,
	.metrics = vsock_metrics,
	.queue_notify = vsock_queue_notify,
	.destroy = vsock_destroy,
};

static int vsock_open(struct vsock *v, const struct vsock_config *c, struct err **e)
{
	struct epoll_event ev = { .events = EPOLLIN };

	v->epfd = epoll_create1(EPOLL_CLOEXEC);
	v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (v->epfd < 0 || v->timer_fd < 0)
		return err_set(e, errno, "vsock: epoll");
	v->listen_fd = unix_listen(c->socket, 64);
	if (v->listen_fd < 0)
		return err_set(e, -v->listen_fd, "vsock socket '%s': listen", c->socket);
	/* Edge-triggered: accept() drains the backlog on each edge. */
	ev.events = EPOLLIN | EPOLLET;
	ev.data.ptr = &vsock_tag_listen;
	if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->listen_fd, &ev) < 0)
		return err_set(e, errno, "vsock: epoll");
	ev.events = EPOLLIN;
	ev.data.ptr = &vsock_tag_timer;
	if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->timer_fd, &ev) < 0)
		return err_set(e, errno, "vsock: epoll");
	return 0;
}

int virtio_vsock_create(struct vm *vm, const struct vsock_config *c, struct err **e)
{
	struct virtio_vsock_config cfg = { .guest_cid = htole64(c->cid) };
	struct virtio_dev *vd;
	struct vsock *v = calloc(1, sizeof(*v));
	int r;

	if (v == NULL || (v->req = virtq_req_new(VSOCK_REQ_SEGS)) == NULL || (v->path = strdup(c->socket)) == NULL) {
		if (v)
			virtq_req_free(v->req);
		free(v);
		return err_set(e, ENOMEM, "virtio-vsock 'vsock0'");
	}
	v->guest_cid = c->cid;
	v->next_port = VSOCK_FIRST_EPHEMERAL;
	v->listen_fd = v->epfd = v->timer_fd = -1;
	r = vsock_open(v, c, e);
	if (r < 0) {
		vsock_destroy(&(struct virtio_dev){ .priv = v });
		return r;
	}
	/* From here on the VM owns v. */
	r = virtio_dev_create(vm, &vsock_ops, "vsock0", 0, &cfg, sizeof(cfg), v, &vd, e);
	if (r < 0)
		return r;
	v->vd = vd;
	return virtio_dev_watch(vd, v->epfd, EPOLLIN, vsock_on_host, e);
}
