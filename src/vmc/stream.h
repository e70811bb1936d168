/*
 * Framed connections and byte sinks for the poll loops on both sides of
 * the vsock protocol (the host's monitor, the guest's agent): nothing
 * blocks, and what a slow reader cannot take yet waits in a buffer whose
 * size the loop watches (it stops reading the other side meanwhile).
 */
#ifndef CASULO_VMC_STREAM_H
#define CASULO_VMC_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "vmc/proto.h"

/* A loop stops reading a source while its destination holds this much. */
#define VMC_BACKLOG_MAX (256 * 1024)

struct vmc_buf {
	uint8_t *data;
	size_t len, cap;
};
int vmc_buf_append(struct vmc_buf *b, const void *data, size_t len);
void vmc_buf_consume(struct vmc_buf *b, size_t n);
void vmc_buf_free(struct vmc_buf *b);

/* One end of a session: frames in (checked as sent by the peer), frames
 * out (queued, written when the socket takes them). */
struct vmc_conn {
	int fd;
	struct vmc_reader in;
	struct vmc_buf out;
	bool shut_wr; /* shutdown(SHUT_WR) once out is empty */
};
void vmc_conn_init(struct vmc_conn *c, int fd, enum vmc_side peer);
void vmc_conn_close(struct vmc_conn *c);
/* Queue a frame; -ENOMEM is the only failure. */
int vmc_conn_send(struct vmc_conn *c, uint16_t type, const void *data, size_t len);
int vmc_conn_send_u32(struct vmc_conn *c, uint16_t type, uint32_t v);
/* Write what is queued, as far as the socket takes it: 0, or -errno. */
int vmc_conn_flush(struct vmc_conn *c);
/* Read what is there and hand each whole frame to fn (which returns 0 or
 * a negative errno that stops the read).  0: read something (or nothing
 * yet); -EPIPE: the peer closed; -EPROTO with *why: a bad header. */
typedef int (*vmc_frame_fn)(void *ctx, const struct vmc_header *h, const uint8_t *payload);
int vmc_conn_read(struct vmc_conn *c, vmc_frame_fn fn, void *ctx, char *why, size_t why_size);

/* A local file descriptor the loop writes to (a pipe, a pty, stdout). */
struct vmc_sink {
	int fd;
	struct vmc_buf pending;
	bool broken; /* a write failed: what comes is dropped */
};
void vmc_sink_init(struct vmc_sink *s, int fd);
/* Write now what the fd takes, keep the rest; 0 or -ENOMEM. */
int vmc_sink_write(struct vmc_sink *s, const void *data, size_t len);
int vmc_sink_flush(struct vmc_sink *s);
/* Blocking: write everything pending (at most timeout_ms). */
void vmc_sink_drain(struct vmc_sink *s, int timeout_ms);

/* Blocking, for the host's short sessions: send one REQUEST on fd and
 * wait (timeout_ms at most) for the REPLY.  Frames of other types before
 * it are a protocol error. */
int vmc_call(int fd, const char *request, int timeout_ms, struct vmc_reply *reply, struct err **e) MUST_CHECK;
/* Read one whole frame from a blocking fd, within timeout_ms; payload is
 * malloc'd (NUL-terminated).  -ETIMEDOUT, -EPIPE, -EPROTO (with *e). */
int vmc_read_frame(int fd, enum vmc_side peer, int timeout_ms, struct vmc_header *h, char **payload,
		   struct err **e) MUST_CHECK;
int vmc_write_frame(int fd, uint16_t type, const void *data, size_t len) MUST_CHECK;

#endif
