/*
 * virtio-blk: a raw disk image (or block device) as the guest's disk.
 *
 * Requests are served on the device's own thread through io_uring, many
 * in flight at once; a slow disk never stalls a vCPU.  Every request is
 * checked before it reaches the file: its framing (header, status byte),
 * its sector range against the disk's capacity, its type against the
 * disk's mode (a read-only disk answers writes with an I/O error and is
 * opened read-only anyway).  FLUSH completes only after fdatasync(); a
 * driver that does not negotiate FLUSH gets write-through semantics.
 * Without io_uring (some sandboxes forbid it) the same requests run
 * synchronously on the device thread.  Completions are signalled to the
 * guest through adaptive interrupt coalescing (coalesce.h) unless the
 * disk says irq-coalescing=off.
 */
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <json-c/json.h>

#include "common/fdutil.h"
#include "common/log.h"
#include "vmm/devices/virtio/blk.h"
#include "vmm/image-lock.h"
#include "vmm/devices/virtio/coalesce.h"
#include "vmm/devices/virtio/throttle.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/vm.h"

#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX 128
#define BLK_REQ_SEGS (BLK_SEG_MAX + 4) /* data plus header and status framing */
#define BLK_SECTOR 512ULL
#define BLK_MAX_DISCARD_SEG 1
#define BLK_MAX_DISCARD_SECTORS (UINT32_MAX / 512)
#define BLK_RING_ENTRIES 256

struct blk_req {
	struct virtq_req *vq;
	struct iovec data[BLK_REQ_SEGS];
	unsigned ndata;
	uint64_t data_len;
	uint8_t *status;
	uint32_t written; /* bytes the device wrote into the request */
	uint32_t type;
	uint64_t sector;
	int pending; /* io_uring operations still running */
	int error;   /* first error, positive errno */
	struct virtio_blk_discard_write_zeroes range;
	struct blk_req *next_free;
};

struct blk {
	struct virtio_dev *vd;
	char *path;
	int fd;	       /* buffered (and the fallback for unaligned buffers) */
	int direct_fd; /* O_DIRECT for cache=none, else -1 */
	bool readonly;
	uint64_t sectors;
	char serial[VIRTIO_BLK_ID_BYTES];
	bool flush_negotiated;

	/* Counters for GET /metrics: written by the device thread only. */
	uint64_t reads, writes, flushes, discards, read_bytes, write_bytes, errors;

	struct io_uring ring;
	bool ring_ok;
	int ring_efd;
	struct blk_req *free_reqs;
	unsigned inflight;
	bool need_notify;
	unsigned unjudged; /* completions coalescing has not seen yet */

	struct coalesce coalesce; /* enabled only once timer_fd is watched */
	int timer_fd;		  /* ends a hold; -1 when coalescing is off */
	bool timer_pending;

	struct throttle rate; /* rate=: the request queue waits while it is throttled */
	bool rate_ready;      /* throttle_init() ran: rate is for destroy to release */

	/* lock=on (the default): the buffered descriptor's lock, on the VM's
	 * list once the device is the VM's (the O_DIRECT one takes none). */
	struct image_lock lock;
	struct vm *locked_in;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Raise the queue's interrupt for everything in the used ring. */
static void blk_signal(struct blk *b)
{
	b->need_notify = false;
	b->unjudged = 0;
	coalesce_signalled(&b->coalesce);
	virtio_dev_notify_queue(b->vd, 0);
}

static void arm_hold_timer(struct blk *b)
{
	uint64_t at = coalesce_deadline(&b->coalesce);
	struct itimerspec its = {.it_value = {(time_t)(at / 1000000000ULL), (long)(at % 1000000000ULL)}};

	if (timerfd_settime(b->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		/* Cannot wait: signal now rather than strand the completions. */
		blk_signal(b);
		return;
	}
	b->timer_pending = true;
}

/* New completions are in the used ring: signal them now or hold them. */
static void blk_completions_ready(struct blk *b)
{
	unsigned n = b->unjudged;

	if (!b->need_notify)
		return;
	b->unjudged = 0;
	if (coalesce_completed(&b->coalesce, now_ns, n))
		blk_signal(b);
	else if (!b->timer_pending)
		arm_hold_timer(b);
}

static void blk_on_hold_timer(struct virtio_dev *vd, int fd, uint32_t events)
{
	struct blk *b = vd->priv;
	uint64_t v;

	(void)events;
	(void)!read(fd, &v, sizeof(v));
	b->timer_pending = false;
	if (coalesce_expired(&b->coalesce, now_ns()))
		blk_signal(b);
	else if (coalesce_deadline(&b->coalesce) != 0)
		arm_hold_timer(b); /* requests kept arriving: the hold goes on */
}

static struct blk_req *req_get(struct blk *b)
{
	struct blk_req *r = b->free_reqs;

	if (r) {
		b->free_reqs = r->next_free;
		return r;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->vq = virtq_req_new(BLK_REQ_SEGS);
	if (r->vq == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

static void req_put(struct blk *b, struct blk_req *r)
{
	r->next_free = b->free_reqs;
	b->free_reqs = r;
}

static void count(uint64_t *counter, uint64_t n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

/* Finish a request: status byte, used ring. */
static void req_complete(struct blk *b, struct blk_req *r, uint8_t status)
{
	if (status != VIRTIO_BLK_S_OK)
		count(&b->errors, 1);
	else if (r->type == VIRTIO_BLK_T_IN)
		count(&b->reads, 1), count(&b->read_bytes, r->data_len);
	else if (r->type == VIRTIO_BLK_T_OUT)
		count(&b->writes, 1), count(&b->write_bytes, r->data_len);
	else if (r->type == VIRTIO_BLK_T_FLUSH)
		count(&b->flushes, 1);
	else if (r->type == VIRTIO_BLK_T_DISCARD || r->type == VIRTIO_BLK_T_WRITE_ZEROES)
		count(&b->discards, 1);
	*r->status = status;
	virtq_complete(&b->vd->queues[0], r->vq, r->written);
	b->need_notify = true;
	b->unjudged++;
	b->inflight--;
	req_put(b, r);
}

static uint8_t status_for(const struct blk_req *r)
{
	if (r->error == 0)
		return VIRTIO_BLK_S_OK;
	return r->error == EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

/* Split the chain into header, data and status.  Returns false when the
 * request has no room for a status byte: nothing can be reported. */
static bool req_frame(struct blk_req *r, struct virtio_blk_outhdr *hdr, bool *hdr_ok)
{
	struct virtq_req *vq = r->vq;
	unsigned last = vq->n_in;
	size_t skip;

	while (last > 0 && vq->in[last - 1].iov_len == 0)
		last--;
	if (last == 0)
		return false;
	r->status = (uint8_t *)vq->in[last - 1].iov_base + vq->in[last - 1].iov_len - 1;
	*hdr_ok = iov_copy_from(vq->out, vq->n_out, 0, hdr, sizeof(*hdr)) == sizeof(*hdr);
	r->type = hdr->type;
	r->sector = hdr->sector;
	r->ndata = 0;
	r->data_len = 0;
	if (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_GET_ID) {
		/* Data is every writable byte but the trailing status. */
		for (unsigned i = 0; i < last; i++) {
			size_t len = vq->in[i].iov_len - (i == last - 1 ? 1 : 0);
			if (len)
				r->data[r->ndata++] = (struct iovec){vq->in[i].iov_base, len};
			r->data_len += len;
		}
	} else {
		/* Data is every readable byte after the 16-byte header. */
		skip = sizeof(*hdr);
		for (unsigned i = 0; i < vq->n_out; i++) {
			size_t len = vq->out[i].iov_len;
			if (skip >= len) {
				skip -= len;
				continue;
			}
			r->data[r->ndata++] = (struct iovec){(char *)vq->out[i].iov_base + skip, len - skip};
			r->data_len += len - skip;
			skip = 0;
		}
	}
	return true;
}

static bool range_ok(const struct blk *b, uint64_t sector, uint64_t nsectors)
{
	return sector <= b->sectors && nsectors <= b->sectors - sector;
}

static bool aligned_for_direct(const struct blk_req *r)
{
	for (unsigned i = 0; i < r->ndata; i++)
		if (((uintptr_t)r->data[i].iov_base | r->data[i].iov_len) & (BLK_SECTOR - 1))
			return false;
	return true;
}

static int io_fd(const struct blk *b, const struct blk_req *r)
{
	return (b->direct_fd >= 0 && aligned_for_direct(r)) ? b->direct_fd : b->fd;
}

/* --- synchronous execution (no io_uring) --- */

static int exec_sync(struct blk *b, struct blk_req *r)
{
	off_t off = (off_t)(r->sector * BLK_SECTOR);
	ssize_t n;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		n = preadv(io_fd(b, r), r->data, (int)r->ndata, off);
		return n < 0 ? errno : ((uint64_t)n != r->data_len ? EIO : 0);
	case VIRTIO_BLK_T_OUT:
		n = pwritev(io_fd(b, r), r->data, (int)r->ndata, off);
		if (n < 0)
			return errno;
		if ((uint64_t)n != r->data_len)
			return EIO;
		if (!b->flush_negotiated && fdatasync(b->fd) < 0)
			return errno;
		return 0;
	case VIRTIO_BLK_T_FLUSH:
		return fdatasync(b->fd) < 0 ? errno : 0;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		int mode = FALLOC_FL_KEEP_SIZE;
		if (r->type == VIRTIO_BLK_T_DISCARD || (r->range.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
			mode |= FALLOC_FL_PUNCH_HOLE;
		else
			mode |= FALLOC_FL_ZERO_RANGE;
		return fallocate(b->fd, mode, (off_t)(r->range.sector * BLK_SECTOR),
				 (off_t)((uint64_t)r->range.num_sectors * BLK_SECTOR)) < 0
			   ? errno
			   : 0;
	}
	default:
		return EOPNOTSUPP;
	}
}

/* --- io_uring execution --- */

static struct io_uring_sqe *get_sqe(struct blk *b)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

	if (sqe == NULL) {
		/* Ring full: push what we have to the kernel and retry. */
		io_uring_submit(&b->ring);
		sqe = io_uring_get_sqe(&b->ring);
	}
	return sqe;
}

static int submit_uring(struct blk *b, struct blk_req *r)
{
	struct io_uring_sqe *sqe = get_sqe(b), *sync;
	off_t off = (off_t)(r->sector * BLK_SECTOR);

	if (sqe == NULL)
		return -EAGAIN;
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		io_uring_prep_readv(sqe, io_fd(b, r), r->data, r->ndata, (uint64_t)off);
		break;
	case VIRTIO_BLK_T_OUT:
		io_uring_prep_writev(sqe, io_fd(b, r), r->data, r->ndata, (uint64_t)off);
		if (!b->flush_negotiated) {
			/* Write-through: the write, then its flush, in order. */
			sqe->flags |= IOSQE_IO_LINK;
			io_uring_sqe_set_data(sqe, r);
			r->pending++;
			sync = get_sqe(b);
			if (sync == NULL)
				return -EAGAIN;
			io_uring_prep_fsync(sync, b->fd, IORING_FSYNC_DATASYNC);
			sqe = sync;
		}
		break;
	case VIRTIO_BLK_T_FLUSH:
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		int mode = FALLOC_FL_KEEP_SIZE;
		if (r->type == VIRTIO_BLK_T_DISCARD || (r->range.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
			mode |= FALLOC_FL_PUNCH_HOLE;
		else
			mode |= FALLOC_FL_ZERO_RANGE;
		io_uring_prep_fallocate(sqe, b->fd, mode, r->range.sector * BLK_SECTOR,
					(uint64_t)r->range.num_sectors * BLK_SECTOR);
		break;
	}
	default:
		return -EOPNOTSUPP;
	}
	io_uring_sqe_set_data(sqe, r);
	r->pending++;
	return 0;
}

/* Check one request and start it; completes it at once when it needs no I/O. */
static void blk_start(struct blk *b, struct blk_req *r)
{
	struct virtio_blk_outhdr hdr;
	bool hdr_ok;
	int err = 0;

	r->pending = 0;
	r->error = 0;
	r->written = 1; /* the status byte */
	if (!req_frame(r, &hdr, &hdr_ok)) {
		virtio_dev_fail(b->vd, "request %u has no status byte", r->vq->head);
		req_put(b, r);
		b->inflight--;
		return;
	}
	if (!hdr_ok) {
		req_complete(b, r, VIRTIO_BLK_S_IOERR);
		return;
	}
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (r->data_len % BLK_SECTOR || !range_ok(b, r->sector, r->data_len / BLK_SECTOR))
			err = EIO;
		else if (r->type == VIRTIO_BLK_T_OUT && b->readonly)
			err = EROFS;
		else if (r->type == VIRTIO_BLK_T_IN)
			r->written += (uint32_t)MIN(r->data_len, (uint64_t)UINT32_MAX - 1);
		break;
	case VIRTIO_BLK_T_FLUSH:
		break;
	case VIRTIO_BLK_T_GET_ID: {
		size_t n = iov_copy_to(r->data, r->ndata, 0, b->serial, MIN(r->data_len, sizeof(b->serial)));
		r->written += (uint32_t)n;
		req_complete(b, r, VIRTIO_BLK_S_OK);
		return;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		/* One segment, as advertised (max_discard_seg = max_write_zeroes_seg = 1). */
		if (r->data_len != sizeof(r->range) ||
		    iov_copy_from(r->data, r->ndata, 0, &r->range, sizeof(r->range)) != sizeof(r->range) ||
		    !range_ok(b, r->range.sector, r->range.num_sectors) ||
		    (r->type == VIRTIO_BLK_T_DISCARD && r->range.flags != 0) ||
		    (r->range.flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
			err = EIO;
		else if (b->readonly)
			err = EROFS;
		break;
	default:
		err = EOPNOTSUPP;
		break;
	}
	if (err) {
		r->error = err;
		req_complete(b, r, status_for(r));
		return;
	}
	/* Inline devices (tests, fuzzers) complete every request at once. */
	if (b->ring_ok && b->vd->thread_started) {
		err = -submit_uring(b, r);
		if (err == 0)
			return;
		if (r->pending > 0) {
			/* Half-queued (the ring was exhausted): let the queued part finish. */
			r->error = err;
			return;
		}
	} else {
		err = exec_sync(b, r);
	}
	r->error = err;
	req_complete(b, r, status_for(r));
}

static void blk_reap(struct blk *b)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		struct blk_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&b->ring, cqe);
		if (r == NULL)
			continue;
		if (res < 0 && r->error == 0)
			r->error = -res;
		else if (res >= 0 && (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT) && res != 0 &&
			 (uint64_t)res != r->data_len && r->error == 0)
			r->error = EIO; /* short transfer: the image shrank under us */
		if (--r->pending == 0)
			req_complete(b, r, status_for(r));
	}
}

/* What a request costs the rate limiter: the bytes it reads or writes
 * (flushes, discards and identification cost one operation only). */
static uint64_t request_bytes(const struct virtq_req *vq)
{
	struct virtio_blk_outhdr hdr;

	if (iov_copy_from(vq->out, vq->n_out, 0, &hdr, sizeof(hdr)) != sizeof(hdr))
		return 0;
	if (hdr.type == VIRTIO_BLK_T_IN)
		return vq->in_len > 0 ? vq->in_len - 1 : 0;
	if (hdr.type == VIRTIO_BLK_T_OUT)
		return vq->out_len > sizeof(hdr) ? vq->out_len - sizeof(hdr) : 0;
	return 0;
}

static void blk_queue_notify(struct virtio_dev *vd, unsigned qi)
{
	struct blk *b = vd->priv;
	struct virtq *q = &vd->queues[qi];

	throttle_round(&b->rate);
	for (;;) {
		virtq_disable_kicks(q);
		while (b->inflight < BLK_QUEUE_SIZE) {
			struct blk_req *r = req_get(b);
			int got;

			if (r == NULL)
				break; /* out of memory: retry on the next kick */
			got = virtq_pop(q, r->vq);
			if (got <= 0) {
				req_put(b, r);
				if (got < 0) {
					virtio_dev_fail(vd, "malformed descriptor chain in the request queue");
					return;
				}
				break;
			}
			if (b->rate_ready && !throttle_admit(&b->rate, request_bytes(r->vq))) {
				/* Left in the ring, kicks off: the timer serves it. */
				virtq_unpop(q);
				req_put(b, r);
				goto throttled;
			}
			b->inflight++;
			coalesce_arrival(&b->coalesce, now_ns);
			blk_start(b, r);
			if (vd->broken)
				return;
		}
		if (!virtq_enable_kicks(q) || b->inflight >= BLK_QUEUE_SIZE)
			break;
	}
throttled:
	if (b->ring_ok && vd->thread_started)
		io_uring_submit(&b->ring);
	blk_completions_ready(b);
}

static void blk_on_completion(struct virtio_dev *vd, int fd, uint32_t events)
{
	struct blk *b = vd->priv;
	uint64_t v;

	(void)events;
	(void)!read(fd, &v, sizeof(v));
	blk_reap(b);
	blk_completions_ready(b);
	/* Slots freed up: take requests that waited for them. */
	if (virtq_has_work(&vd->queues[0]) && !(b->rate_ready && throttle_waiting(&b->rate)))
		blk_queue_notify(vd, 0);
}

/* The rate limiter has tokens again: serve the requests that waited. */
static void blk_on_rate_timer(struct virtio_dev *vd, struct throttle *t)
{
	(void)t;
	blk_queue_notify(vd, 0);
}

static int blk_activate(struct virtio_dev *vd)
{
	struct blk *b = vd->priv;

	b->flush_negotiated = virtio_dev_has_feature(vd, VIRTIO_BLK_F_FLUSH);
	return 0;
}

/* Let every request in flight finish before the rings disappear. */
static void blk_reset(struct virtio_dev *vd)
{
	struct blk *b = vd->priv;

	while (b->ring_ok && b->inflight > 0) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&b->ring, &cqe) < 0)
			break;
		struct blk_req *r = io_uring_cqe_get_data(cqe);
		io_uring_cqe_seen(&b->ring, cqe);
		if (r && --r->pending == 0) {
			b->inflight--;
			req_put(b, r);
		}
	}
	b->inflight = 0;
	b->need_notify = false;
	b->unjudged = 0;
	coalesce_reset(&b->coalesce); /* a pending timer finds nothing held */
}

/* For a pause: complete every request in flight to the guest, so that
 * nothing is half done when the VM's state is saved. */
static void blk_quiesce(struct virtio_dev *vd)
{
	struct blk *b = vd->priv;

	while (b->ring_ok && b->inflight > 0) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&b->ring, &cqe) < 0)
			break;
		blk_reap(b);
	}
	if (b->need_notify)
		blk_signal(b);
}

static void blk_destroy(struct virtio_dev *vd)
{
	struct blk *b = vd->priv;

	if (b == NULL)
		return;
	if (b->locked_in)
		image_locks_remove(&b->locked_in->image_locks, &b->lock);
	if (b->ring_ok)
		io_uring_queue_exit(&b->ring);
	if (b->ring_efd >= 0)
		close(b->ring_efd);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	if (b->rate_ready)
		throttle_destroy(&b->rate);
	while (b->free_reqs) {
		struct blk_req *r = b->free_reqs;
		b->free_reqs = r->next_free;
		virtq_req_free(r->vq);
		free(r);
	}
	if (b->fd >= 0)
		close(b->fd);
	if (b->direct_fd >= 0)
		close(b->direct_fd);
	free(b->path);
	free(b);
}

static void blk_metrics(struct virtio_dev *vd, json_object *c)
{
	struct blk *b = vd->priv;
	const struct device_counter counters[] = {
	    {"reads", &b->reads},
	    {"writes", &b->writes},
	    {"flushes", &b->flushes},
	    {"discards", &b->discards},
	    {"read_bytes", &b->read_bytes},
	    {"write_bytes", &b->write_bytes},
	    {"errors", &b->errors},
	    {"coalesced_holds", &b->coalesce.holds},
	    {"coalesced_holds_wasted", &b->coalesce.holds_wasted},
	    {"throttled", &b->rate.throttled},
	};

	device_counters_add(c, counters, ARRAY_SIZE(counters));
}

static const struct virtio_dev_ops blk_ops = {
    .thread_kind = VMM_THREAD_BLK,
    .metrics = blk_metrics,
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .nqueues = 1,
    .queue_size = BLK_QUEUE_SIZE,
    .activate = blk_activate,
    .reset = blk_reset,
    .quiesce = blk_quiesce,
    .queue_notify = blk_queue_notify,
    .destroy = blk_destroy,
};

static int open_image(struct blk *b, const struct disk_config *d, struct err **e)
{
	int flags = (d->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	uint64_t bytes;

	b->fd = open(d->path, flags);
	if (b->fd < 0)
		return err_set(e, errno, "disk '%s': open", d->path);
	if (fstat(b->fd, &st) < 0)
		return err_set(e, errno, "disk '%s': stat", d->path);
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &bytes) < 0)
			return err_set(e, errno, "disk '%s': BLKGETSIZE64", d->path);
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else {
		return err_setx(e, EINVAL, "disk '%s': not a regular file or block device", d->path);
	}
	if (bytes < BLK_SECTOR)
		return err_setx(e, EINVAL, "disk '%s': %llu bytes is smaller than one 512-byte sector", d->path,
				(unsigned long long)bytes);
	if (bytes % BLK_SECTOR)
		log_warn("disk '%s': size is not a multiple of 512 bytes; the last %llu bytes are not visible", d->path,
			 (unsigned long long)(bytes % BLK_SECTOR));
	b->sectors = bytes / BLK_SECTOR;
	if (d->cache == DISK_CACHE_NONE) {
		b->direct_fd = open(d->path, flags | O_DIRECT);
		if (b->direct_fd < 0)
			return err_set(e, errno, "disk '%s': open with O_DIRECT (cache=none)", d->path);
	}
	return 0;
}

int virtio_blk_create(struct vm *vm, const struct disk_config *d, unsigned index, struct err **e)
{
	struct virtio_blk_config cfg;
	struct virtio_dev *vd;
	struct blk *b = calloc(1, sizeof(*b));
	char id[32], what[320];
	uint64_t features;
	int r;

	if (b == NULL)
		return err_set(e, ENOMEM, "disk '%s'", d->path);
	b->fd = b->direct_fd = b->ring_efd = b->timer_fd = b->rate.timer_fd = -1;
	coalesce_init(&b->coalesce, false);
	b->readonly = d->readonly;
	b->path = strdup(d->path);
	r = open_image(b, d, e);
	/* Locked before it is the VM's: a disk in use elsewhere is refused
	 * first, unless a migration's source still holds it (taken later). */
	b->lock = (struct image_lock){.fd = b->fd, .path = b->path, .exclusive = !d->readonly};
	if (r == 0 && d->lock && !vm->defer_image_locks)
		r = image_lock_take(&b->lock, e);
	if (r < 0) {
		blk_destroy(&(struct virtio_dev){.priv = b});
		return r;
	}
	snprintf(id, sizeof(id), "disk%u", index);
	/* The serial is exactly 20 bytes, NUL-padded only when shorter. */
	{
		const char *serial = d->id ? d->id : id;
		memcpy(b->serial, serial, MIN(strlen(serial), sizeof(b->serial)));
	}

	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = b->sectors;
	cfg.seg_max = BLK_SEG_MAX;
	cfg.blk_size = BLK_SECTOR;
	cfg.num_queues = 1;
	cfg.max_discard_sectors = BLK_MAX_DISCARD_SECTORS;
	cfg.max_discard_seg = BLK_MAX_DISCARD_SEG;
	cfg.discard_sector_alignment = 1;
	cfg.max_write_zeroes_sectors = BLK_MAX_DISCARD_SECTORS;
	cfg.max_write_zeroes_seg = BLK_MAX_DISCARD_SEG;
	cfg.write_zeroes_may_unmap = 1;
	features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH);
	if (d->readonly)
		features |= 1ULL << VIRTIO_BLK_F_RO;
	else
		features |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);

	/* From here on the VM owns b: virtio_dev_create() frees it on failure. */
	r = virtio_dev_create(vm, &blk_ops, d->id ? d->id : id, features, &cfg, sizeof(cfg), b, &vd, e);
	if (r < 0)
		return r;
	b->vd = vd;
	if (d->lock) {
		image_locks_add(&vm->image_locks, &b->lock);
		b->locked_in = vm;
	}
	if (io_uring_queue_init(BLK_RING_ENTRIES, &b->ring, 0) == 0) {
		b->ring_ok = true;
		b->ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (b->ring_efd < 0 || io_uring_register_eventfd(&b->ring, b->ring_efd) < 0)
			return err_set(e, errno, "disk '%s': io_uring eventfd", d->path);
		r = virtio_dev_watch(vd, b->ring_efd, EPOLLIN, blk_on_completion, e);
		if (r < 0)
			return r;
		if (d->irq_coalescing) {
			b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
			if (b->timer_fd < 0)
				return err_set(e, errno, "disk '%s': timerfd for interrupt coalescing", d->path);
			r = virtio_dev_watch(vd, b->timer_fd, EPOLLIN, blk_on_hold_timer, e);
			if (r < 0)
				return r;
			coalesce_init(&b->coalesce, true);
		}
	} else {
		log_info("disk '%s': io_uring unavailable, serving requests synchronously", d->path);
	}
	snprintf(what, sizeof(what), "disk '%s'", d->path);
	r = throttle_init(&b->rate, vd, &d->rate, blk_on_rate_timer, "rate", what, e);
	b->rate_ready = true; /* destroy releases it, set up or not */
	return r;
}

static int virtio_blk_create_all(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		int r = virtio_blk_create(vm, &cfg->disks[i], i, e);
		if (r < 0)
			return r;
	}
	return 0;
}

const struct device_type virtio_blk_type = {.name = "virtio-blk", .create = virtio_blk_create_all};
