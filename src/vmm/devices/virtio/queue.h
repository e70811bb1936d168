/*
 * Split virtqueues (virtio 1.2, section 2.7), device side.
 *
 * Everything in a queue is written by the guest and untrusted: ring
 * addresses are checked when the queue is enabled, every descriptor's
 * buffer is checked against guest RAM before it is used, chains are
 * bounded (a loop or an over-long chain is an error, not a hang), and an
 * indirect table may not nest.  A malformed queue makes virtq_pop()
 * return -EINVAL; the transport then puts the device in its needs-reset
 * state.  These functions never touch memory outside guest RAM.
 */
#ifndef CASULO_VMM_DEVICES_VIRTIO_QUEUE_H
#define CASULO_VMM_DEVICES_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/macro.h"
#include "vmm/memory.h"

#define VIRTQ_MAX_SIZE 32768

struct vring_desc;
struct vring_avail;
struct vring_used;

struct virtq {
	/* Set by the driver through the transport, before the queue is ready. */
	uint16_t size;
	uint16_t max_size;
	uint64_t desc_addr, avail_addr, used_addr;
	bool ready;

	/* Host views of the rings, valid while ready. */
	const struct guest_memory *mem;
	volatile struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */

	uint16_t last_avail;	 /* next avail entry to consume */
	uint16_t used_idx;	 /* next used entry to fill */
	uint16_t signalled_used; /* used_idx when the driver was last interrupted */
	bool signalled_valid;
};

/*
 * One request: the descriptor chain's buffers split by direction, into
 * iovec arrays the caller provides.  A chain with more buffers than the
 * arrays hold is rejected like any other malformed chain: devices
 * advertise their limit (seg_max) and a driver that honours it never
 * comes near.
 */
struct virtq_req {
	uint16_t head;
	unsigned n_out, n_in;	  /* readable (driver->device), writable */
	unsigned cap;		  /* capacity of each array */
	uint64_t out_len, in_len; /* total bytes in each direction */
	struct iovec *out;
	struct iovec *in;
};

/* Allocate a request with room for cap buffers each way; NULL on ENOMEM. */
struct virtq_req *virtq_req_new(unsigned cap);
void virtq_req_free(struct virtq_req *req);

/* Forget everything (device reset). max_size stays. */
void virtq_reset(struct virtq *q);
/* Check the driver's ring addresses and size and map the rings.
 * Returns 0, or -EINVAL if any ring lies outside guest RAM, is
 * misaligned, or the size is not a power of two up to max_size. */
int virtq_enable(struct virtq *q, const struct guest_memory *mem, bool event_idx) MUST_CHECK;

/* Take the next available request: 1 with *req filled, 0 when the queue is
 * empty, -EINVAL when the driver broke the rules. */
int virtq_pop(struct virtq *q, struct virtq_req *req) MUST_CHECK;
/* Return a request to the driver with len bytes written into its buffers. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* The same for a popped request, recording the pages its first len
 * writable bytes are in as written by the VMM (for live migration).
 * Device models use this one. */
void virtq_complete(struct virtq *q, const struct virtq_req *req, uint32_t len);
/* Give back the last popped request unconsumed (e.g. no room yet). */
void virtq_unpop(struct virtq *q);
/* After pushes: must the driver be interrupted? (event index or flags) */
bool virtq_should_notify(struct virtq *q);
/* Before sleeping: ask the driver to kick when it adds buffers, then
 * check whether the queue has work after all: buffers that arrived
 * meanwhile, or ones not consumed yet.  A device that stops with buffers
 * left (waiting for more, or at its in-flight limit) must not expect a
 * kick for those: it comes back to them itself. */
bool virtq_enable_kicks(struct virtq *q);
/* While busy: tell the driver kicks are not needed. */
void virtq_disable_kicks(struct virtq *q);
bool virtq_has_work(const struct virtq *q);

/* Copy helpers over a request's iovecs: they never exceed the buffers. */
size_t iov_copy_from(const struct iovec *iov, unsigned n, size_t offset, void *dst, size_t len);
size_t iov_copy_to(const struct iovec *iov, unsigned n, size_t offset, const void *src, size_t len);
/* The part [off, off + len) of an iovec array, as another one of at most
 * cap entries; returns how many. */
unsigned iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len, struct iovec *out, unsigned cap);

#endif
