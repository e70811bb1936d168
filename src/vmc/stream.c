#include "vmc/stream.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/fdutil.h"

int vmc_buf_append(struct vmc_buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *nd;
		while (cap < b->len + len)
			cap *= 2;
		nd = realloc(b->data, cap);
		if (nd == NULL)
			return -ENOMEM;
		b->data = nd;
		b->cap = cap;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

void vmc_buf_consume(struct vmc_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		/* A burst leaves no large buffer behind. */
		if (b->cap > VMC_BACKLOG_MAX) {
			free(b->data);
			b->data = NULL;
			b->cap = 0;
		}
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void vmc_buf_free(struct vmc_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void vmc_conn_init(struct vmc_conn *c, int fd, enum vmc_side peer)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	vmc_reader_init(&c->in, peer);
}

void vmc_conn_close(struct vmc_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	vmc_reader_free(&c->in);
	vmc_buf_free(&c->out);
}

int vmc_conn_send(struct vmc_conn *c, uint16_t type, const void *data, size_t len)
{
	uint8_t h[VMC_HEADER_SIZE];
	int r;

	if (len > UINT32_MAX)
		return -EMSGSIZE;
	vmc_header_encode(h, type, (uint32_t)len);
	if ((r = vmc_buf_append(&c->out, h, sizeof(h))) < 0)
		return r;
	return vmc_buf_append(&c->out, data, len);
}

int vmc_conn_send_u32(struct vmc_conn *c, uint16_t type, uint32_t v)
{
	uint8_t p[4];

	vmc_u32_encode(p, v);
	return vmc_conn_send(c, type, p, sizeof(p));
}

int vmc_conn_flush(struct vmc_conn *c)
{
	while (c->out.len) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		vmc_buf_consume(&c->out, (size_t)n);
	}
	if (c->shut_wr)
		(void)shutdown(c->fd, SHUT_WR);
	return 0;
}

int vmc_conn_read(struct vmc_conn *c, vmc_frame_fn fn, void *ctx, char *why, size_t why_size)
{
	uint8_t buf[65536];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	size_t off = 0;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -EPIPE;
	while (off < (size_t)n) {
		struct vmc_header h;
		const uint8_t *payload;
		size_t used;
		int r = vmc_reader_feed(&c->in, buf + off, (size_t)n - off, &used, &h, &payload, why, why_size);
		if (r < 0)
			return r;
		off += used;
		if (r == 1 && (r = fn(ctx, &h, payload)) < 0)
			return r;
	}
	return 0;
}

void vmc_sink_init(struct vmc_sink *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
}

int vmc_sink_flush(struct vmc_sink *s)
{
	while (s->pending.len && !s->broken) {
		ssize_t n = write(s->fd, s->pending.data, s->pending.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			s->broken = true;
			break;
		}
		vmc_buf_consume(&s->pending, (size_t)n);
	}
	if (s->broken)
		vmc_buf_consume(&s->pending, s->pending.len);
	return 0;
}

int vmc_sink_write(struct vmc_sink *s, const void *data, size_t len)
{
	int r;

	if (s->broken || s->fd < 0)
		return 0;
	if ((r = vmc_buf_append(&s->pending, data, len)) < 0)
		return r;
	return vmc_sink_flush(s);
}

void vmc_sink_drain(struct vmc_sink *s, int timeout_ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (s->pending.len && !s->broken) {
		struct pollfd p = {s->fd, POLLOUT, 0};
		long long left;
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000LL + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		vmc_sink_flush(s);
	}
}

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

int vmc_write_frame(int fd, uint16_t type, const void *data, size_t len)
{
	uint8_t h[VMC_HEADER_SIZE];
	int r;

	if (len > UINT32_MAX)
		return -EMSGSIZE;
	vmc_header_encode(h, type, (uint32_t)len);
	if ((r = write_full(fd, h, sizeof(h))) < 0)
		return r;
	return len ? write_full(fd, data, len) : 0;
}

/* Read exactly len bytes before deadline (monotonic ms). */
static int read_exact(int fd, void *buf, size_t len, long long deadline)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {fd, POLLIN, 0};
		long long left = deadline - now_ms();
		ssize_t n;
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		n = read(fd, (uint8_t *)buf + got, len - got);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

int vmc_read_frame(int fd, enum vmc_side peer, int timeout_ms, struct vmc_header *h, char **payload, struct err **e)
{
	long long deadline = now_ms() + timeout_ms;
	uint8_t hb[VMC_HEADER_SIZE];
	char why[128];
	int r;

	*payload = NULL;
	if ((r = read_exact(fd, hb, sizeof(hb), deadline)) < 0)
		return err_set(e, -r, "agent connection: read");
	if (vmc_header_decode(hb, peer, h, why, sizeof(why)) < 0)
		return err_setx(e, EPROTO, "agent connection: %s", why);
	*payload = malloc((size_t)h->len + 1);
	if (*payload == NULL)
		return err_set(e, ENOMEM, "agent connection");
	if ((r = read_exact(fd, *payload, h->len, deadline)) < 0) {
		free(*payload);
		*payload = NULL;
		return err_set(e, -r, "agent connection: read");
	}
	(*payload)[h->len] = '\0';
	return 0;
}

int vmc_call(int fd, const char *request, int timeout_ms, struct vmc_reply *reply, struct err **e)
{
	struct vmc_header h;
	char *payload;
	int r = vmc_write_frame(fd, VMC_REQUEST, request, strlen(request));

	memset(reply, 0, sizeof(*reply));
	if (r < 0)
		return err_set(e, -r, "agent connection: write");
	if ((r = vmc_read_frame(fd, VMC_FROM_GUEST, timeout_ms, &h, &payload, e)) < 0)
		return r;
	if (h.type != VMC_REPLY)
		r = err_setx(e, EPROTO, "agent connection: %s frame where a REPLY was due", vmc_type_name(h.type));
	else
		r = vmc_reply_parse(payload, h.len, reply, e);
	free(payload);
	return r;
}
