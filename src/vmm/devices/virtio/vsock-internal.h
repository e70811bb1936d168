/*
 * virtio-vsock's insides, shared by its files (vsock.c has the design):
 *   vsock.c       the device: its ops, creation, the event queue, resets
 *   vsock-conn.c  connections: the table, their life, what they owe
 *   vsock-tx.c    guest -> host: the transmit queue
 *   vsock-rx.c    host -> guest: the receive queue
 *   vsock-host.c  the host side: the listening socket, programs, timeouts
 * Everything here runs on the device thread (or inline in tests).
 */
#ifndef CASULO_VMM_DEVICES_VIRTIO_VSOCK_INTERNAL_H
#define CASULO_VMM_DEVICES_VIRTIO_VSOCK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <time.h>
#include <linux/virtio_vsock.h>

#include "common/err.h"
#include "vmm/config.h"
#include "vmm/devices/virtio/virtio.h"

#define VSOCK_QUEUE_SIZE 128
#define VSOCK_RXQ 0
#define VSOCK_TXQ 1
#define VSOCK_EVQ 2
#define VSOCK_REQ_SEGS 64
#define VSOCK_HOST_CID 2
#define VSOCK_HDR ((uint32_t)sizeof(struct virtio_vsock_hdr)) /* 44 */
#define VSOCK_MAX_PAYLOAD (64 * 1024)			      /* Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE */
#define VSOCK_BUF_ALLOC (256 * 1024)			      /* our receive window per connection */
#define VSOCK_OUT_CAP (VSOCK_BUF_ALLOC + 32)		      /* the window, and the "OK <port>" line */
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
	CONN_LINE,	 /* host program connected to PATH; reading "CONNECT <port>\n" */
	CONN_CONNECTING, /* REQUEST for the guest, waiting for its RESPONSE */
	CONN_ESTABLISHED,
	CONN_CLOSING, /* both sides shut down; waiting for the last RST or flush */
	CONN_RST,     /* socket closed; an RST still owed to the guest */
	CONN_DEAD,    /* freed once the current event batch is done */
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
	uint64_t deadline;	/* ms on CLOCK_MONOTONIC, 0 for none */
	unsigned owe;		/* OWE_* */
	uint32_t shutdown_sent; /* VIRTIO_VSOCK_SHUTDOWN_* told to the guest */

	/* Credit: the guest's window, and what we sent into it. */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	bool credit_requested;
	/* Our window: bytes received from the guest, and forwarded to the socket. */
	uint32_t rx_cnt, fwd_cnt, fwd_cnt_told;

	bool in_ready, out_ready; /* the socket's edge-triggered readiness */
	bool host_eof;		  /* the program will send no more */
	bool host_hup;		  /* ... nor receive */
	bool guest_no_send, guest_no_recv;
	bool shut_wr; /* shutdown(SHUT_WR) done */
	bool refused; /* its program was told "ERR" */

	uint8_t *out; /* guest -> host bytes the socket has not taken */
	size_t out_start, out_len;
	size_t out_line; /* of which the "OK" line, first: not guest data */

	bool queued; /* in the rx list */
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

static inline uint64_t vsock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- connections (vsock-conn.c) --- */
struct conn *vsock_conn_new(struct vsock *v, int fd, enum conn_state state);
struct conn *vsock_conn_find(struct vsock *v, uint32_t host_port, uint32_t guest_port);
void vsock_conn_hash_add(struct vsock *v, struct conn *c);
/* Forget a connection; its memory goes in vsock_reap(). */
void vsock_conn_free(struct vsock *v, struct conn *c);
void vsock_conn_refuse(struct vsock *v, struct conn *c, const char *why);
/* Free the connections that went away, once nothing can point at them:
 * not during an event batch, and not from the rx list. */
void vsock_reap(struct vsock *v);
void vsock_rx_unlink_head(struct vsock *v);
void vsock_conn_set_deadline(struct vsock *v, struct conn *c, unsigned ms);
uint32_t vsock_conn_peer_credit(const struct conn *c);
/* Does the connection have something for the guest's receive queue? */
bool vsock_conn_wants_rx(const struct conn *c);
void vsock_conn_schedule(struct vsock *v, struct conn *c);
/* Close the socket and owe the guest an RST (sent, then the connection
 * goes).  A guest that never heard of the connection, or has no driver
 * running (it starts from nothing), is owed nothing. */
void vsock_conn_reset(struct vsock *v, struct conn *c);
void vsock_orphan_rst(struct vsock *v, uint32_t host_port, uint32_t guest_port);
/* After guest data drained or a shutdown: what the connection does next. */
void vsock_conn_progress(struct vsock *v, struct conn *c);
/* Write what waits for the program. */
void vsock_conn_flush(struct vsock *v, struct conn *c);
/* Queue bytes for the program (they fit: the guest's credit bounds them). */
bool vsock_conn_queue_out(struct conn *c, const struct iovec *iov, unsigned n, size_t len);

/* --- guest -> host (vsock-tx.c) --- */
enum virtio_served vsock_serve_tx(struct virtio_dev *vd, unsigned q, struct virtq_req *req, uint32_t *written);

/* --- host -> guest (vsock-rx.c) --- */
/* Fill the guest's receive buffers with what connections owe it. */
void vsock_rx(struct vsock *v);
/* The program's side ended (read returned 0): tell the guest. */
void vsock_conn_host_eof(struct vsock *v, struct conn *c);

/* --- the host side (vsock-host.c) --- */
/* The listening socket and the timer, in the device's own epoll set. */
int vsock_host_open(struct vsock *v, const struct vsock_config *c, struct err **e) MUST_CHECK;
/* Device thread: that epoll set is ready. */
void vsock_on_host(struct virtio_dev *vd, int fd, uint32_t events);

#endif
