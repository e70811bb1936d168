/* virtio-vsock: connections, their table and life, what they owe the guest (vsock-internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/devices/virtio/vsock-internal.h"

static unsigned conn_bucket(uint32_t host_port, uint32_t guest_port)
{
	return (host_port * 2654435761u ^ guest_port * 40503u) % VSOCK_HASH;
}

struct conn *vsock_conn_find(struct vsock *v, uint32_t host_port, uint32_t guest_port)
{
	for (struct conn *c = v->hash[conn_bucket(host_port, guest_port)]; c; c = c->hash_next)
		if (c->host_port == host_port && c->guest_port == guest_port && c->state != CONN_LINE)
			return c;
	return NULL;
}

void vsock_conn_hash_add(struct vsock *v, struct conn *c)
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

struct conn *vsock_conn_new(struct vsock *v, int fd, enum conn_state state)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = {.events = VSOCK_EDGE};

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

/* A host program whose "CONNECT" will not be answered "OK" hears why, in
 * one "ERR <why>" line, before its socket is closed: "busy", "bad line",
 * "refused" (nobody listens on the guest port), "timeout" (no answer in
 * VSOCK_CONNECT_TIMEOUT_MS).  Firecracker's programs, which look for "OK ",
 * see a refusal as before. */
void vsock_conn_refuse(struct vsock *v, struct conn *c, const char *why)
{
	char line[VSOCK_LINE_MAX];
	int n;

	if (c->fd < 0 || c->refused || (c->state != CONN_LINE && c->state != CONN_CONNECTING))
		return;
	c->refused = true;
	n = snprintf(line, sizeof(line), "ERR %s\n", why);
	/* The socket is new and empty: a short line always fits. */
	(void)!send(c->fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	log_debug("virtio-vsock '%s': host connection to guest port %u: %s", v->vd->id, c->guest_port, why);
}

/* Forget a connection; its memory goes in vsock_reap(). */
void vsock_conn_free(struct vsock *v, struct conn *c)
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

void vsock_rx_unlink_head(struct vsock *v)
{
	struct conn *c = v->rx_head;

	v->rx_head = c->rx_next;
	if (v->rx_head == NULL)
		v->rx_tail = NULL;
	c->queued = false;
}

/* Free the connections that went away, once nothing can point at them:
 * not during an event batch, and not from the rx list. */
void vsock_reap(struct vsock *v)
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
	struct itimerspec its = {.it_interval = {.tv_nsec = VSOCK_TICK_MS * 1000000L},
				 .it_value = {.tv_nsec = VSOCK_TICK_MS * 1000000L}};

	if (!v->timer_armed && timerfd_settime(v->timer_fd, 0, &its, NULL) == 0)
		v->timer_armed = true;
}

void vsock_conn_set_deadline(struct vsock *v, struct conn *c, unsigned ms)
{
	c->deadline = vsock_now_ms() + ms;
	vsock_arm_timer(v);
}

uint32_t vsock_conn_peer_credit(const struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Does the connection have something for the guest's receive queue? */
bool vsock_conn_wants_rx(const struct conn *c)
{
	if (c->owe)
		return true;
	return c->state == CONN_ESTABLISHED && c->in_ready && !c->host_eof && !c->guest_no_recv &&
	       vsock_conn_peer_credit(c) > 0;
}

void vsock_conn_schedule(struct vsock *v, struct conn *c)
{
	if (c->queued || c->state == CONN_DEAD || !vsock_conn_wants_rx(c))
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
void vsock_conn_reset(struct vsock *v, struct conn *c)
{
	if (c->state == CONN_DEAD || c->state == CONN_RST)
		return;
	vsock_conn_refuse(v, c, "reset");
	if (c->state == CONN_LINE || (c->owe & OWE_REQUEST) || !v->vd->active) {
		vsock_conn_free(v, c);
		return;
	}
	conn_close_fd(c);
	c->state = CONN_RST;
	c->owe = OWE_RST;
	__atomic_add_fetch(&v->resets, 1, __ATOMIC_RELAXED);
	vsock_conn_schedule(v, c);
}

void vsock_orphan_rst(struct vsock *v, uint32_t host_port, uint32_t guest_port)
{
	if (v->orphan_len == VSOCK_ORPHAN_RSTS) {
		log_debug("virtio-vsock '%s': RST for %u->%u dropped, too many pending", v->vd->id, guest_port,
			  host_port);
		return;
	}
	v->orphans[(v->orphan_head + v->orphan_len++) % VSOCK_ORPHAN_RSTS] = (struct orphan_rst){host_port, guest_port};
}

/* After guest data drained or a shutdown: what the connection does next. */
void vsock_conn_progress(struct vsock *v, struct conn *c)
{
	if (c->state != CONN_ESTABLISHED && c->state != CONN_CLOSING)
		return;
	if (c->out_len == 0 && c->guest_no_send && !c->shut_wr) {
		(void)shutdown(c->fd, SHUT_WR);
		c->shut_wr = true;
	}
	/* The guest is done both ways and has nothing left for the program. */
	if (c->guest_no_send && c->guest_no_recv && c->out_len == 0) {
		vsock_conn_reset(v, c);
		return;
	}
	/* Tell the guest about forwarded bytes once it believes half its
	 * credit is used (data packets to it carry fwd_cnt anyway): often
	 * enough that a guest streaming to a fast reader never waits. */
	if (c->fwd_cnt != c->fwd_cnt_told && c->rx_cnt - c->fwd_cnt_told >= VSOCK_BUF_ALLOC / 2)
		c->owe |= OWE_CREDIT_UPDATE;
	vsock_conn_schedule(v, c);
}

/* Write what waits for the program. */
void vsock_conn_flush(struct vsock *v, struct conn *c)
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
			vsock_conn_reset(v, c); /* the program is gone */
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
	vsock_conn_progress(v, c);
}

/* Queue bytes for the program (they fit: the guest's credit bounds them). */
bool vsock_conn_queue_out(struct conn *c, const struct iovec *iov, unsigned n, size_t len)
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
