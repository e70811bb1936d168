#include "oci/sync.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <stdio.h>
#include <unistd.h>

struct sync_hdr {
	uint32_t type;
	uint32_t len;
};

int fd_send(int sock, const void *data, size_t len, int fd)
{
	struct iovec iov = {(void *)data, len};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c;
	ssize_t r;

	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

/* See sync_use_read_write(). */
static bool plain_io;

void sync_use_read_write(bool on)
{
	plain_io = on;
}

int sync_send(int fd, uint32_t type, const void *data, size_t len, int pass_fd)
{
	struct sync_hdr h = {type, (uint32_t)len};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)data, len}};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	ssize_t r;

	if (len > SYNC_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (plain_io && pass_fd < 0) {
		char buf[sizeof(h) + SYNC_MAX_PAYLOAD];
		memcpy(buf, &h, sizeof(h));
		if (len)
			memcpy(buf + sizeof(h), data, len);
		do
			r = write(fd, buf, sizeof(h) + len);
		while (r < 0 && errno == EINTR);
		return r < 0 ? -errno : 0;
	}
	if (pass_fd >= 0) {
		struct cmsghdr *c;
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	do
		r = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

int sync_recv(int fd, uint32_t *type, void *buf, size_t cap, size_t *len, int *recv_fd)
{
	char data[sizeof(struct sync_hdr) + SYNC_MAX_PAYLOAD];
	struct iovec iov = {data, sizeof(data)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	struct sync_hdr h;
	ssize_t r;

	if (recv_fd)
		*recv_fd = -1;
	do
		r = plain_io && recv_fd == NULL ? read(fd, data, sizeof(data)) : recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -EPIPE;
	if ((size_t)r < sizeof(h))
		return -EBADMSG;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int rfd;
			memcpy(&rfd, CMSG_DATA(c), sizeof(int));
			if (recv_fd)
				*recv_fd = rfd;
			else
				close(rfd);
		}
	}
	memcpy(&h, data, sizeof(h));
	if (h.len != (size_t)r - sizeof(h))
		return -EBADMSG;
	*type = h.type;
	if (buf) {
		size_t n = h.len < cap ? h.len : (cap ? cap - 1 : 0);
		memcpy(buf, data + sizeof(h), n);
		if (cap)
			((char *)buf)[n] = '\0';
		if (len)
			*len = n;
	}
	return 0;
}

void sync_send_error(int fd, const struct err *e)
{
	char buf[SYNC_MAX_PAYLOAD];
	int code = e ? e->code : EIO;
	size_t n;

	memcpy(buf, &code, sizeof(code));
	/* A message longer than a sync message loses its middle, not its cause. */
	n = err_fit(buf + sizeof(code), sizeof(buf) - sizeof(code), e && e->msg ? e->msg : "container init failed");
	(void)sync_send(fd, SYNC_ERROR, buf, sizeof(code) + n, -1);
}

int sync_error_decode(const void *data, size_t n, const char *what, struct err **e)
{
	int code;

	if (n < sizeof(code))
		return err_setx(e, EIO, "%s: child failed", what);
	memcpy(&code, data, sizeof(code));
	return err_setx(e, code > 0 ? code : EIO, "%s", (const char *)data + sizeof(code));
}

int sync_expect(int fd, uint32_t type, void *buf, size_t cap, size_t *len, int *recv_fd, const char *what,
		struct err **e)
{
	char data[SYNC_MAX_PAYLOAD + 1];
	uint32_t got;
	size_t n = 0;
	int r = sync_recv(fd, &got, data, sizeof(data), &n, recv_fd);

	if (r == -EPIPE)
		return err_setx(e, EPIPE, "%s: the child exited before answering", what);
	if (r < 0)
		return err_set(e, -r, "%s: read sync message", what);
	if (got == SYNC_ERROR)
		return sync_error_decode(data, n, what, e);
	if (got != type) {
		if (recv_fd && *recv_fd >= 0)
			close(*recv_fd);
		return err_setx(e, EPROTO, "%s: unexpected sync message %u (wanted %u)", what, got, type);
	}
	if (buf && cap) {
		size_t m = n < cap ? n : cap - 1;
		memcpy(buf, data, m);
		((char *)buf)[m] = '\0';
	}
	if (len)
		*len = n;
	return 0;
}
