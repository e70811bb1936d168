/*
 * virtio-console with one port (no MULTIPORT): the guest's /dev/hvc0,
 * a second console beside the serial port.
 *
 * Output (transmit queue) is taken from the guest at once, always:
 * Linux's virtio_console spins in the kernel until the host returns a
 * transmit buffer, so holding buffers back would stall a guest CPU.  What
 * the backend cannot take right away waits in a bounded buffer
 * (VCON_PENDING_MAX); beyond it output is dropped, as a serial line
 * without flow control would.  With no reader (a socket without client)
 * output is discarded.
 *
 * Input (receive queue) is read from the backend only into buffers the
 * guest posted: a guest that does not read leaves the data in the
 * socket or pty, and the writer waits.  Nothing is buffered here.
 *
 * Backend fds sit in the device's own epoll set, edge-triggered: the
 * device remembers that an fd is readable or writable until a read or
 * write says EAGAIN, so a backend it cannot serve yet never makes the
 * thread spin.  Its events carry a tag, not a pointer, so a client closed
 * while events for it are pending is harmless.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>
#include <json-c/json.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>

#include "common/fdutil.h"
#include "common/log.h"
#include "vmm/devices/virtio/console.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/vm.h"

#define VCON_QUEUE_SIZE 64
#define VCON_RXQ 0
#define VCON_TXQ 1
#define VCON_REQ_SEGS 64
#define VCON_PENDING_MAX (64 * 1024)
#define VCON_EDGE (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

enum vcon_tag { VCON_TAG_LISTEN = 1, VCON_TAG_IO };

struct vcon {
	struct virtio_dev *vd;
	enum console2_kind kind;
	char *path;
	int epfd;	    /* the backend's fds */
	int listen_fd;	    /* socket: the listening socket */
	int io_fd;	    /* socket client, pty master or file; -1 if none */
	int pty_slave;	    /* held open so the master never hangs up */
	bool in_ready;	    /* io_fd may have input */
	bool out_ready;	    /* io_fd may take output */
	bool writes_failed; /* the reader went away: discard until it is replaced */
	uint8_t pending[VCON_PENDING_MAX];
	size_t pending_len;
	uint64_t dropped;
	uint64_t out_bytes, in_bytes; /* from and to the guest */
	struct virtq_req *req;
};

static bool vcon_has_input(const struct vcon *c)
{
	return c->kind == CONSOLE2_SOCKET || c->kind == CONSOLE2_PTY;
}

static void vcon_close_client(struct vcon *c);

/* A socket reader that went away must not raise SIGPIPE (tests and
 * embedders may not ignore it as casulo-vmm does). */
static ssize_t vcon_writev(struct vcon *c, const struct iovec *iov, unsigned n)
{
	struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = MIN(n, (unsigned)IOV_MAX)};

	if (c->kind == CONSOLE2_SOCKET)
		return sendmsg(c->io_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	return writev(c->io_fd, iov, (int)msg.msg_iovlen);
}

/* Write what waits in pending; keeps out_ready accurate. */
static void vcon_flush(struct vcon *c)
{
	while (c->pending_len > 0 && c->out_ready) {
		ssize_t n = vcon_writev(c, &(struct iovec){c->pending, c->pending_len}, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			c->out_ready = false;
			return;
		}
		if (n <= 0) {
			/* The reader is gone; its end of file reaches the input side. */
			c->writes_failed = true;
			c->pending_len = 0;
			return;
		}
		c->pending_len -= (size_t)n;
		memmove(c->pending, c->pending + n, c->pending_len);
	}
}

/* One transmit buffer: straight to the backend when nothing waits, the
 * rest into pending, what does not fit there is dropped. */
static void vcon_output(struct vcon *c, const struct virtq_req *req)
{
	size_t off = 0, room;

	if (c->io_fd < 0 || c->writes_failed)
		return;
	vcon_flush(c); /* a file has no readiness events: older bytes go first, now */
	if (c->pending_len == 0 && c->out_ready) {
		ssize_t n = vcon_writev(c, req->out, req->n_out);
		if (n >= 0)
			off = (size_t)n;
		else if (errno == EAGAIN)
			c->out_ready = false;
		else if (errno != EINTR)
			c->writes_failed = true;
		if (c->writes_failed || off == req->out_len)
			return;
		if (n >= 0 && c->kind != CONSOLE2_FILE)
			c->out_ready = false; /* a short write: the backend is full */
	}
	room = VCON_PENDING_MAX - c->pending_len;
	if (req->out_len - off > room)
		__atomic_add_fetch(&c->dropped, req->out_len - off - room, __ATOMIC_RELAXED);
	c->pending_len += iov_copy_from(req->out, req->n_out, off, c->pending + c->pending_len,
					(size_t)MIN(req->out_len - off, (uint64_t)room));
}

static enum virtio_served vcon_serve_tx(struct virtio_dev *vd, unsigned q, struct virtq_req *req, uint32_t *written)
{
	struct vcon *c = vd->priv;

	(void)q;
	(void)written;
	if (req->n_in > 0) {
		virtio_dev_fail(vd, "transmit buffer %u is device-writable", req->head);
		return VIRTIO_FAILED;
	}
	vcon_output(c, req);
	__atomic_add_fetch(&c->out_bytes, req->out_len, __ATOMIC_RELAXED);
	return VIRTIO_SERVED;
}

/* Move backend input into the guest's receive buffers while both exist. */
static void vcon_rx(struct vcon *c)
{
	struct virtio_dev *vd = c->vd;
	struct virtq *q = &vd->queues[VCON_RXQ];
	bool pushed = false, eof = false;

	while (c->in_ready && c->io_fd >= 0 && vcon_has_input(c)) {
		ssize_t n;
		int got;

		if (!vd->active || vd->broken) {
			/* No driver to give input to: drain it, so a leaving client is noticed. */
			uint8_t sink[4096];
			n = read(c->io_fd, sink, sizeof(sink));
		} else {
			got = virtq_pop(q, c->req);
			if (got < 0) {
				virtio_dev_fail(vd, "malformed descriptor chain in the receive queue");
				return;
			}
			if (got == 0) {
				uint8_t peek;
				/* Ask for a kick when buffers come; if some came meanwhile, go on. */
				if (virtq_enable_kicks(q))
					continue;
				/* A client that left with nothing unread is let go now, so the next can come. */
				if (c->kind == CONSOLE2_SOCKET &&
				    recv(c->io_fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
					eof = true;
				break;
			}
			if (c->req->n_out > 0 || c->req->in_len == 0) {
				virtio_dev_fail(vd, "receive buffer %u is not device-writable", c->req->head);
				return;
			}
			n = readv(c->io_fd, c->req->in, (int)MIN(c->req->n_in, (unsigned)IOV_MAX));
			if (n > 0) {
				__atomic_add_fetch(&c->in_bytes, (uint64_t)n, __ATOMIC_RELAXED);
				virtq_complete(q, c->req, (uint32_t)n);
				pushed = true;
				continue;
			}
			virtq_unpop(q);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			c->in_ready = false;
			break;
		}
		if (n <= 0) {
			eof = true;
			break;
		}
	}
	if (pushed)
		virtio_dev_notify_queue(vd, VCON_RXQ);
	if (eof)
		vcon_close_client(c);
}

static void vcon_on_io(struct vcon *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->in_ready = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->out_ready = true;
	vcon_flush(c);
	vcon_rx(c);
}

static int vcon_watch(struct vcon *c, int fd, uint32_t events, enum vcon_tag tag)
{
	struct epoll_event ev = {.events = events, .data.u32 = tag};

	return epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void vcon_accept(struct vcon *c)
{
	int fd, r;

	if (c->io_fd >= 0 || c->listen_fd < 0)
		return;
	fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	r = vcon_watch(c, fd, VCON_EDGE, VCON_TAG_IO);
	if (r < 0) {
		log_warn("console2 socket '%s': watch client: %s", c->path, strerror(-r));
		close(fd);
		return;
	}
	c->io_fd = fd;
	c->in_ready = c->out_ready = true;
	c->writes_failed = false;
	c->pending_len = 0;
	vcon_rx(c);
}

static void vcon_close_client(struct vcon *c)
{
	if (c->kind != CONSOLE2_SOCKET || c->io_fd < 0)
		return;
	close(c->io_fd); /* leaves the epoll set with it */
	c->io_fd = -1;
	c->in_ready = c->out_ready = false;
	c->pending_len = 0;
	/* The next client waited in the backlog. */
	vcon_accept(c);
}

/* Device thread: the backend's epoll set has events. */
static void vcon_on_backend(struct virtio_dev *vd, int fd, uint32_t events)
{
	struct vcon *c = vd->priv;
	struct epoll_event evs[4];
	int n;

	(void)events;
	n = epoll_wait(fd, evs, 4, 0);
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u32 == VCON_TAG_LISTEN)
			vcon_accept(c);
		else if (c->io_fd >= 0)
			vcon_on_io(c, evs[i].events);
	}
}

static void vcon_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct vcon *c = vd->priv;

	if (q == VCON_TXQ)
		virtio_dev_serve_queue(vd, q, c->req, vcon_serve_tx);
	else
		vcon_rx(c); /* new receive buffers: input may flow again */
}

void virtio_console_poll_backend(struct virtio_dev *vd)
{
	struct vcon *c = vd->priv;

	vcon_on_backend(vd, c->epfd, EPOLLIN);
}

static void vcon_metrics(struct virtio_dev *vd, json_object *o)
{
	struct vcon *c = vd->priv;
	const struct device_counter counters[] = {
	    {"output_bytes", &c->out_bytes},
	    {"output_dropped", &c->dropped},
	    {"input_bytes", &c->in_bytes},
	};

	device_counters_add(o, counters, ARRAY_SIZE(counters));
}

static void vcon_destroy(struct virtio_dev *vd)
{
	struct vcon *c = vd->priv;

	if (c == NULL)
		return;
	if (c->dropped)
		log_info("virtio-console '%s': %llu output bytes dropped (no room in the backend)",
			 c->path ? c->path : "pty", (unsigned long long)c->dropped);
	if (c->io_fd >= 0)
		close(c->io_fd);
	if (c->pty_slave >= 0)
		close(c->pty_slave);
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->path);
	}
	if (c->epfd >= 0)
		close(c->epfd);
	virtq_req_free(c->req);
	free(c->path);
	free(c);
}

static const struct virtio_dev_ops vcon_ops = {
    .name = "virtio-console",
    .device_id = VIRTIO_ID_CONSOLE,
    .nqueues = 2,
    .queue_size = VCON_QUEUE_SIZE,
    .queue_notify = vcon_queue_notify,
    .destroy = vcon_destroy,
    .metrics = vcon_metrics,
};

/* A pty in raw mode whose slave we hold, so that it never reads as hung up. */
static int vcon_open_pty(struct vcon *c, struct err **e)
{
	struct termios t;
	char name[64];

	c->io_fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (c->io_fd < 0 || grantpt(c->io_fd) < 0 || unlockpt(c->io_fd) < 0 ||
	    ptsname_r(c->io_fd, name, sizeof(name)) != 0)
		return err_set(e, errno, "virtio-console pty: open");
	c->pty_slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (c->pty_slave < 0)
		return err_set(e, errno, "virtio-console pty '%s': open", name);
	if (tcgetattr(c->pty_slave, &t) == 0) {
		cfmakeraw(&t);
		(void)tcsetattr(c->pty_slave, TCSANOW, &t);
	}
	c->path = strdup(name);
	/* Said at the default log level: whoever connects needs the name. */
	log_warn("virtio-console 'console0': guest /dev/hvc0 is on %s", name);
	return 0;
}

static int vcon_open_backend(struct vcon *c, const struct console2_config *cfg, struct err **e)
{
	switch (cfg->kind) {
	case CONSOLE2_FILE:
		c->path = strdup(cfg->path);
		c->io_fd = open(cfg->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->io_fd < 0)
			return err_set(e, errno, "console2 file '%s': open", cfg->path);
		c->out_ready = true;
		return 0;
	case CONSOLE2_SOCKET:
		c->path = strdup(cfg->path);
		c->listen_fd = unix_listen(cfg->path, 4);
		if (c->listen_fd < 0)
			return err_set(e, -c->listen_fd, "console2 socket '%s': listen", cfg->path);
		return 0;
	case CONSOLE2_PTY:
		return vcon_open_pty(c, e);
	default:
		return err_setx(e, EINVAL, "console2: no backend");
	}
}

int virtio_console_create(struct vm *vm, const struct console2_config *cfg, struct err **e)
{
	struct virtio_console_config config = {.max_nr_ports = 1};
	struct virtio_dev *vd;
	struct vcon *c = calloc(1, sizeof(*c));
	int r;

	if (c == NULL || (c->req = virtq_req_new(VCON_REQ_SEGS)) == NULL) {
		free(c);
		return err_set(e, ENOMEM, "virtio-console 'console0'");
	}
	c->kind = cfg->kind;
	c->listen_fd = c->io_fd = c->pty_slave = -1;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	r = c->epfd < 0 ? err_set(e, errno, "virtio-console: epoll") : vcon_open_backend(c, cfg, e);
	if (r == 0) {
		int w = 0;
		if (c->listen_fd >= 0)
			w = vcon_watch(c, c->listen_fd, EPOLLIN | EPOLLET, VCON_TAG_LISTEN);
		else if (c->kind == CONSOLE2_PTY)
			w = vcon_watch(c, c->io_fd, VCON_EDGE, VCON_TAG_IO);
		if (w < 0)
			r = err_set(e, -w, "virtio-console: epoll");
	}
	if (r < 0) {
		vcon_destroy(&(struct virtio_dev){.priv = c});
		return r;
	}
	/* From here on the VM owns c. */
	r = virtio_dev_create(vm, &vcon_ops, "console0", 0, &config, sizeof(config), c, &vd, e);
	if (r < 0)
		return r;
	c->vd = vd;
	if (c->kind == CONSOLE2_PTY)
		c->in_ready = c->out_ready = true;
	return virtio_dev_watch(vd, c->epfd, EPOLLIN, vcon_on_backend, e);
}

static int virtio_console_create_from(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	return cfg->console2.kind != CONSOLE2_NONE ? virtio_console_create(vm, &cfg->console2, e) : 0;
}

const struct device_type virtio_console_type = {.name = "virtio-console", .create = virtio_console_create_from};
