/* virtio-vsock, the host side: the listening socket, programs, timeouts (vsock-internal.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "common/log.h"
#include "vmm/devices/virtio/vsock-internal.h"
#include "vmm/devices/virtio/vsock.h"

/* The listening socket and the timer in the epoll set: their event data. */
static char vsock_tag_listen, vsock_tag_timer;

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
		vsock_conn_free(v, c);
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
		if (vsock_conn_find(v, p, (uint32_t)port) == NULL) {
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
	vsock_conn_hash_add(v, c);
	vsock_conn_set_deadline(v, c, VSOCK_CONNECT_TIMEOUT_MS);
	vsock_conn_schedule(v, c);
	return 1;
bad:
	log_debug("virtio-vsock '%s': %s: not a \"CONNECT <port>\" line, closing", v->vd->id, v->path);
	vsock_conn_refuse(v, c, "bad line");
	vsock_conn_free(v, c);
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
			vsock_conn_host_eof(v, c); /* now it will not receive either */
	}
	if (c->state == CONN_LINE) {
		if (c->in_ready)
			conn_read_line(v, c);
		return;
	}
	vsock_conn_flush(v, c);
	if (c->state != CONN_DEAD)
		vsock_conn_schedule(v, c);
}

static void vsock_accept(struct vsock *v)
{
	for (;;) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;
		if (v->nconns >= VSOCK_MAX_CONNS || (c = vsock_conn_new(v, fd, CONN_LINE)) == NULL) {
			log_debug("virtio-vsock '%s': %s: too many connections, refusing one", v->vd->id, v->path);
			(void)!send(fd, "ERR busy\n", 9, MSG_DONTWAIT | MSG_NOSIGNAL);
			close(fd);
			continue;
		}
		vsock_conn_set_deadline(v, c, VSOCK_CONNECT_TIMEOUT_MS);
		conn_read_line(v, c);
	}
}

/* A connection past its deadline.  A host program's connection that the
 * guest did not answer is worth a warning: whether the request ever
 * reached the guest (it posted no receive buffer) tells a stuck driver
 * from a guest too busy to answer. */
static void conn_timed_out(struct vsock *v, struct conn *c)
{
	if (c->state == CONN_CONNECTING)
		log_warn("virtio-vsock '%s': guest port %u did not answer host port %u within %d ms (%s)", v->vd->id,
			 c->guest_port, c->host_port, VSOCK_CONNECT_TIMEOUT_MS,
			 c->owe & OWE_REQUEST ? "the request waits for a receive buffer" : "the request was delivered");
	else
		log_debug("virtio-vsock '%s': host port %u, guest port %u: timed out", v->vd->id, c->host_port,
			  c->guest_port);
	vsock_conn_refuse(v, c, "timeout");
	vsock_conn_reset(v, c);
}

static void vsock_tick(struct vsock *v)
{
	uint64_t now = vsock_now_ms(), expirations;
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
		conn_timed_out(v, c);
	}
	if (!pending) {
		struct itimerspec off = {{0, 0}, {0, 0}};
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

void vsock_on_host(struct virtio_dev *vd, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	virtio_vsock_poll_host(vd);
}

int vsock_host_open(struct vsock *v, const struct vsock_config *c, struct err **e)
{
	struct epoll_event ev = {.events = EPOLLIN};

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
