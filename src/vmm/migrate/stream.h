/* Buffered, framed I/O on the migration socket. */
#ifndef CASULO_VMM_MIGRATE_STREAM_H
#define CASULO_VMM_MIGRATE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/macro.h"

#define STREAM_BUF (1 << 20)

enum migrate_record {
	REC_PAGE = 1,  /* u64 guest page offset, 4096 bytes */
	REC_ZERO = 2,  /* u64 guest page offset: the page is all zero */
	REC_STATE = 3, /* u64 length, the state file (snapshot format) */
	REC_END = 4,   /* nothing follows; the destination answers */
};

struct stream {
	int fd;
	uint8_t *buf; /* outgoing bytes not yet sent */
	size_t len;
	uint8_t *in; /* incoming bytes read ahead */
	size_t in_pos, in_len;
	uint64_t bytes; /* moved so far */
	int error;	/* first -errno; sticky */
};

int stream_init(struct stream *s, int fd) MUST_CHECK;
void stream_free(struct stream *s);
void stream_put(struct stream *s, const void *p, size_t n);
void stream_put_u32(struct stream *s, uint32_t v);
void stream_put_u64(struct stream *s, uint64_t v);
/* Send what is buffered; returns 0 or -errno. */
int stream_flush(struct stream *s);
/* Read exactly n bytes; returns 0, -errno, or -EPIPE at end of stream. */
int stream_get(struct stream *s, void *p, size_t n);
int stream_get_u32(struct stream *s, uint32_t *v);
int stream_get_u64(struct stream *s, uint64_t *v);

/* "tcp:HOST:PORT" to a connected (or listening) socket. */
int stream_connect(const char *spec, int timeout_s, char *why, size_t why_len) MUST_CHECK;
int stream_listen(const char *spec, char *why, size_t why_len) MUST_CHECK;
/* Give blocking reads and writes on fd a timeout. */
void stream_set_timeout(int fd, int seconds);

#endif
