#include "vmm/devices/virtio/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_ring.h>

void virtq_reset(struct virtq *q)
{
	uint16_t max = q->max_size;

	memset(q, 0, sizeof(*q));
	q->max_size = max;
	q->size = max;
}

int virtq_enable(struct virtq *q, const struct guest_memory *mem, bool event_idx)
{
	uint64_t n = q->size;
	uint64_t desc_len = 16 * n;
	uint64_t avail_len = 6 + 2 * n; /* flags, idx, ring[n], used_event */
	uint64_t used_len = 6 + 8 * n;	/* flags, idx, ring[n], avail_event */

	if (n == 0 || n > q->max_size || (n & (n - 1)) != 0)
		return -EINVAL;
	/* Alignment from the spec: 16 for descriptors, 2 and 4 for the rings. */
	if ((q->desc_addr & 15) || (q->avail_addr & 1) || (q->used_addr & 3))
		return -EINVAL;
	q->desc = guest_memory_ptr(mem, q->desc_addr, desc_len);
	q->avail = guest_memory_ptr(mem, q->avail_addr, avail_len);
	q->used = guest_memory_ptr(mem, q->used_addr, used_len);
	if (!q->desc || !q->avail || !q->used) {
		q->desc = NULL;
		q->avail = NULL;
		q->used = NULL;
		return -EINVAL;
	}
	q->mem = mem;
	q->event_idx = event_idx;
	q->last_avail = 0;
	q->used_idx = 0;
	q->signalled_valid = false;
	q->ready = true;
	return 0;
}

static uint16_t load_acquire16(volatile uint16_t *p)
{
	return __atomic_load_n((uint16_t *)p, __ATOMIC_ACQUIRE);
}

static void store_release16(volatile uint16_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE);
}

bool virtq_has_work(const struct virtq *q)
{
	return q->ready && load_acquire16(&q->avail->idx) != q->last_avail;
}

struct virtq_req *virtq_req_new(unsigned cap)
{
	struct virtq_req *req = calloc(1, sizeof(*req) + 2 * (size_t)cap * sizeof(struct iovec));

	if (req == NULL)
		return NULL;
	req->cap = cap;
	req->out = (struct iovec *)(req + 1);
	req->in = req->out + cap;
	return req;
}

void virtq_req_free(struct virtq_req *req)
{
	free(req);
}

static int add_segment(struct virtq_req *req, void *base, uint32_t len, bool writable)
{
	if (writable) {
		if (req->n_in == req->cap)
			return -EINVAL;
		req->in[req->n_in++] = (struct iovec){base, len};
		req->in_len += len;
	} else {
		/* Readable buffers must all come before writable ones. */
		if (req->n_in > 0 || req->n_out == req->cap)
			return -EINVAL;
		req->out[req->n_out++] = (struct iovec){base, len};
		req->out_len += len;
	}
	return 0;
}

int virtq_pop(struct virtq *q, struct virtq_req *req)
{
	volatile struct vring_desc *table = q->desc;
	uint32_t table_size = q->size, seen = 0, i;
	uint16_t avail_idx, head;
	bool indirect = false;

	if (!q->ready)
		return 0;
	avail_idx = load_acquire16(&q->avail->idx);
	if (avail_idx == q->last_avail)
		return 0;
	/* The driver cannot have more than size requests outstanding. */
	if ((uint16_t)(avail_idx - q->last_avail) > q->size)
		return -EINVAL;
	head = q->avail->ring[q->last_avail & (q->size - 1)];
	if (head >= q->size)
		return -EINVAL;
	q->last_avail++;

	req->head = head;
	req->n_out = req->n_in = 0;
	req->out_len = req->in_len = 0;
	i = head;
	for (;;) {
		struct vring_desc d;
		void *buf;

		/* Copy once: the guest may change the table while we read it. */
		d.addr = table[i].addr;
		d.len = table[i].len;
		d.flags = table[i].flags;
		d.next = table[i].next;
		/* A chain visits each descriptor of its table at most once. */
		if (++seen > table_size)
			return -EINVAL;
		if (d.flags & VRING_DESC_F_INDIRECT) {
			uint64_t n = d.len / sizeof(struct vring_desc);
			if (indirect || (d.flags & VRING_DESC_F_NEXT) || d.len == 0 ||
			    d.len % sizeof(struct vring_desc) != 0 || n > VIRTQ_MAX_SIZE)
				return -EINVAL;
			table = guest_memory_ptr(q->mem, d.addr, d.len);
			if (table == NULL)
				return -EINVAL;
			table_size = (uint32_t)n;
			indirect = true;
			seen = 0;
			i = 0;
			continue;
		}
		buf = guest_memory_ptr(q->mem, d.addr, d.len);
		if (buf == NULL)
			return -EINVAL;
		if (add_segment(req, buf, d.len, d.flags & VRING_DESC_F_WRITE) < 0)
			return -EINVAL;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		i = d.next;
		if (i >= table_size)
			return -EINVAL;
	}
	return 1;
}

void virtq_complete(struct virtq *q, const struct virtq_req *req, uint32_t len)
{
	uint64_t left = len;

	for (unsigned i = 0; i < req->n_in && left > 0; i++) {
		uint64_t n = MIN(left, (uint64_t)req->in[i].iov_len);
		guest_memory_mark_dirty(q->mem, req->in[i].iov_base, n);
		left -= n;
	}
	virtq_push(q, req->head, len);
}

void virtq_unpop(struct virtq *q)
{
	q->last_avail--;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	volatile struct vring_used_elem *e = &q->used->ring[q->used_idx & (q->size - 1)];

	e->id = head;
	e->len = len;
	guest_memory_mark_dirty(q->mem, (const void *)e, sizeof(*e));
	guest_memory_mark_dirty(q->mem, (const void *)&q->used->idx, sizeof(q->used->idx));
	q->used_idx++;
	/* The element must be visible before the index that publishes it. */
	store_release16(&q->used->idx, q->used_idx);
}

bool virtq_should_notify(struct virtq *q)
{
	uint16_t old, event;
	bool notify;

	/* Order the used index store before reading the driver's wishes. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx)
		return !(q->avail->flags & VRING_AVAIL_F_NO_INTERRUPT);
	event = q->avail->ring[q->size]; /* used_event */
	old = q->signalled_used;
	notify = !q->signalled_valid || vring_need_event(event, q->used_idx, old);
	q->signalled_used = q->used_idx;
	q->signalled_valid = true;
	return notify;
}

bool virtq_enable_kicks(struct virtq *q)
{
	uint16_t seen;

	if (!q->ready)
		return false;
	/* Ask for a kick when the driver publishes beyond what is there now
	 * (not beyond what was consumed: a device waiting for more buffers
	 * than are available must hear about the next ones). */
	seen = load_acquire16(&q->avail->idx);
	if (q->event_idx) {
		store_release16((volatile uint16_t *)&q->used->ring[q->size], seen); /* avail_event */
		guest_memory_mark_dirty(q->mem, (const void *)&q->used->ring[q->size], 2);
	} else
		store_release16(&q->used->flags, 0);
	guest_memory_mark_dirty(q->mem, (const void *)&q->used->flags, 2);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load_acquire16(&q->avail->idx) != seen || q->last_avail != seen;
}

void virtq_disable_kicks(struct virtq *q)
{
	if (q->ready && !q->event_idx) {
		store_release16(&q->used->flags, VRING_USED_F_NO_NOTIFY);
		guest_memory_mark_dirty(q->mem, (const void *)&q->used->flags, 2);
	}
}

size_t iov_copy_from(const struct iovec *iov, unsigned n, size_t offset, void *dst, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t take;
		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		take = MIN(iov[i].iov_len - offset, len - done);
		memcpy((char *)dst + done, (char *)iov[i].iov_base + offset, take);
		done += take;
		offset = 0;
	}
	return done;
}

size_t iov_copy_to(const struct iovec *iov, unsigned n, size_t offset, const void *src, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t take;
		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		take = MIN(iov[i].iov_len - offset, len - done);
		memcpy((char *)iov[i].iov_base + offset, (const char *)src + done, take);
		done += take;
		offset = 0;
	}
	return done;
}

unsigned iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len, struct iovec *out, unsigned cap)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len > 0 && k < cap; i++) {
		size_t take;
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		take = MIN(iov[i].iov_len - off, len);
		out[k++] = (struct iovec){(char *)iov[i].iov_base + off, take};
		len -= take;
		off = 0;
	}
	return k;
}
