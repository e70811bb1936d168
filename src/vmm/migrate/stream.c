#include "vmm/migrate/stream.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "common/macro.h"

int stream_init(struct stream *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->buf = malloc(STREAM_BUF);
	s->in = malloc(STREAM_BUF);
	return s->buf && s->in ? 0 : -ENOMEM;
}

void stream_free(struct stream *s)
{
	free(s->buf);
	free(s->in);
	s->buf = s->in = NULL;
}

int stream_flush(struct stream *s)
{
	if (s->error == 0 && s->len > 0) {
		int r = write_full(s->fd, s->buf, s->len);
		if (r < 0)
			s->error = r;
	}
	s->len = 0;
	return s->error;
}

void stream_put(struct stream *s, const void *p, size_t n)
{
	const uint8_t *src = p;

	while (n > 0 && s->error == 0) {
		size_t room = STREAM_BUF - s->len, take = n < room ? n : room;
		memcpy(s->buf + s->len, src, take);
		s->len += take;
		s->bytes += take;
		src += take;
		n -= take;
		if (s->len == STREAM_BUF)
			stream_flush(s);
	}
}

void stream_put_u32(struct stream *s, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	stream_put(s, b, 4);
}

void stream_put_u64(struct stream *s, uint64_t v)
{
	stream_put_u32(s, (uint32_t)v);
	stream_put_u32(s, (uint32_t)(v >> 32));
}

/* Reads go through a buffer: a page record is three fields, and a
 * system call for each would cost more than the copy. */
int stream_get(struct stream *s, void *p, size_t n)
{
	uint8_t *dst = p;

	while (n > 0 && s->error == 0) {
		if (s->in_pos == s->in_len) {
			ssize_t got = read(s->fd, s->in, STREAM_BUF);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				s->error = -errno;
			else if (got == 0)
				s->error = -EPIPE;
			else {
				s->in_pos = 0;
				s->in_len = (size_t)got;
			}
			continue;
		}
		size_t take = MIN(n, s->in_len - s->in_pos);
		memcpy(dst, s->in + s->in_pos, take);
		s->in_pos += take;
		s->bytes += take;
		dst += take;
		n -= take;
	}
	return s->error;
}

int stream_get_u32(struct stream *s, uint32_t *v)
{
	uint8_t b[4];
	int r = stream_get(s, b, 4);

	*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return r;
}

int stream_get_u64(struct stream *s, uint64_t *v)
{
	uint32_t lo, hi;
	int r = stream_get_u32(s, &lo);

	if (r == 0)
		r = stream_get_u32(s, &hi);
	*v = r == 0 ? ((uint64_t)hi << 32 | lo) : 0;
	return r;
}

void stream_set_timeout(int fd, int seconds)
{
	struct timeval tv = {.tv_sec = seconds};

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Split "tcp:HOST:PORT" (HOST may be [v6]) into host and port. */
static int split_spec(const char *spec, char *host, size_t hlen, char *port, size_t plen)
{
	const char *p, *colon;

	if (strncmp(spec, "tcp:", 4) != 0)
		return -EINVAL;
	p = spec + 4;
	colon = strrchr(p, ':');
	if (colon == NULL || colon[1] == '\0' || (size_t)(colon - p) >= hlen || strlen(colon + 1) >= plen)
		return -EINVAL;
	if (*p == '[' && colon > p && colon[-1] == ']')
		snprintf(host, hlen, "%.*s", (int)(colon - p - 2), p + 1);
	else
		snprintf(host, hlen, "%.*s", (int)(colon - p), p);
	snprintf(port, plen, "%s", colon + 1);
	return 0;
}

static int resolve(const char *spec, int passive, struct addrinfo **res, char *why, size_t why_len)
{
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
	char host[256], port[16];
	int r;

	if (split_spec(spec, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(why, why_len, "'%s' is not tcp:HOST:PORT", spec);
		return -EINVAL;
	}
	r = getaddrinfo(*host ? host : NULL, port, &hints, res);
	if (r != 0) {
		snprintf(why, why_len, "'%s': %s", spec, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	return 0;
}

int stream_connect(const char *spec, int timeout_s, char *why, size_t why_len)
{
	struct addrinfo *res, *ai;
	int fd = -1, err = ECONNREFUSED, r;

	if ((r = resolve(spec, 0, &res, why, why_len)) < 0)
		return r;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		stream_set_timeout(fd, timeout_s);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(why, why_len, "'%s': connect: %s", spec, strerror(err));
		return -err;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	return fd;
}

int stream_listen(const char *spec, char *why, size_t why_len)
{
	struct addrinfo *res, *ai;
	int fd = -1, err = EADDRNOTAVAIL, r;

	if ((r = resolve(spec, 1, &res, why, why_len)) < 0)
		return r;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(why, why_len, "'%s': listen: %s", spec, strerror(err));
		return -err;
	}
	return fd;
}
