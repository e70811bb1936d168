#include "vmm/migrate/stream.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
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

/*
 * "tcp:HOST:PORT" as a socket address.  HOST is an IPv4 or [IPv6] address,
 * or empty (any address to listen on, loopback to connect to): the VMM
 * resolves no names, since a confined process that reads the resolver's
 * files and parses DNS answers only widens what a compromised VMM can
 * reach; the casulo CLI resolves a name before it calls the API.
 */
static int socket_address(const char *spec, bool passive, struct sockaddr_storage *ss, socklen_t *len, char *why,
			  size_t why_len)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	char host[256], port[16], *end;
	unsigned long n;

	memset(ss, 0, sizeof(*ss));
	if (split_spec(spec, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(why, why_len, "'%s' is not tcp:HOST:PORT", spec);
		return -EINVAL;
	}
	errno = 0;
	n = strtoul(port, &end, 10);
	if (port[0] < '0' || port[0] > '9' || *end != '\0' || errno != 0 || n > 65535) {
		snprintf(why, why_len, "'%s': the port must be a number from 0 to 65535", spec);
		return -EINVAL;
	}
	if (host[0] == '\0') {
		v4->sin_family = AF_INET;
		v4->sin_addr.s_addr = htonl(passive ? INADDR_ANY : INADDR_LOOPBACK);
	} else if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
	} else {
		snprintf(why, why_len, "'%s': '%s' is not an IPv4 or IPv6 address (casulo-vmm resolves no names)", spec,
			 host);
		return -EINVAL;
	}
	if (ss->ss_family == AF_INET) {
		v4->sin_port = htons((uint16_t)n);
		*len = sizeof(*v4);
	} else {
		v6->sin6_port = htons((uint16_t)n);
		*len = sizeof(*v6);
	}
	return 0;
}

int stream_connect(const char *spec, int timeout_s, char *why, size_t why_len)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, r;

	if ((r = socket_address(spec, false, &ss, &len, why, why_len)) < 0)
		return r;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(why, why_len, "'%s': socket: %s", spec, strerror(-r));
		return r;
	}
	stream_set_timeout(fd, timeout_s);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		r = -errno;
		snprintf(why, why_len, "'%s': connect: %s", spec, strerror(-r));
		close(fd);
		return r;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	return fd;
}

int stream_listen(const char *spec, char *why, size_t why_len)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, r;

	if ((r = socket_address(spec, true, &ss, &len, why, why_len)) < 0)
		return r;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(why, why_len, "'%s': socket: %s", spec, strerror(-r));
		return r;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1) < 0) {
		r = -errno;
		snprintf(why, why_len, "'%s': listen: %s", spec, strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}
