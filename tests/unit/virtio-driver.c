#include "virtio-driver.h"

#include <stdlib.h>
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#include "test.h"

#define RINGS 0x100000ULL
#define RING_STRIDE 0x10000ULL
#define HEAP 0x400000ULL

struct vm *vdrv_fake_vm(void)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct err *e = NULL;

	vm->vm_fd = vm->kvm_fd = -1;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	CHECK_INT(guest_memory_create(&vm->mem, VDRV_MEM, &e), ==, 0);
	return vm;
}

void vdrv_free_vm(struct vm *vm)
{
	devices_destroy_all(&vm->devices);
	bus_destroy(&vm->mmio);
	bus_destroy(&vm->pio);
	guest_memory_destroy(&vm->mem);
	free(vm);
}

uint32_t vdrv_read32(struct vdrv *d, uint64_t off)
{
	uint32_t v;

	virtio_mmio_access(d->vd, off, (uint8_t *)&v, 4, false);
	return v;
}

void vdrv_write32(struct vdrv *d, uint64_t off, uint32_t v)
{
	virtio_mmio_access(d->vd, off, (uint8_t *)&v, 4, true);
}

static void negotiate(struct vdrv *d)
{
	const uint32_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

	vdrv_write32(d, VIRTIO_MMIO_STATUS, 0);
	vdrv_write32(d, VIRTIO_MMIO_STATUS, s);
	vdrv_write32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vdrv_write32(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)d->features);
	vdrv_write32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vdrv_write32(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(d->features >> 32));
	vdrv_write32(d, VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK(vdrv_read32(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	for (unsigned i = 0; i < d->nq; i++) {
		struct vdrv_queue *q = &d->q[i];
		memset(q, 0, sizeof(*q));
		q->desc = RINGS + i * RING_STRIDE;
		q->avail = q->desc + 16 * VDRV_QSIZE;
		q->used = q->desc + 0x8000;
		memset(vdrv_ptr(d, q->desc, RING_STRIDE), 0, RING_STRIDE);
		vdrv_write32(d, VIRTIO_MMIO_QUEUE_SEL, i);
		vdrv_write32(d, VIRTIO_MMIO_QUEUE_NUM, VDRV_QSIZE);
		vdrv_write32(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q->desc);
		vdrv_write32(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)q->avail);
		vdrv_write32(d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)q->used);
		vdrv_write32(d, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	vdrv_write32(d, VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
}

void vdrv_init(struct vdrv *d, struct vm *vm, uint64_t features, unsigned nq)
{
	memset(d, 0, sizeof(*d));
	d->vm = vm;
	d->vd = (struct virtio_dev *)vm->devices;
	d->nq = nq;
	d->features = features | (1ULL << VIRTIO_F_VERSION_1);
	d->heap = HEAP;
	negotiate(d);
	CHECK(d->vd->active);
}

void vdrv_reinit(struct vdrv *d)
{
	negotiate(d);
}

uint64_t vdrv_alloc(struct vdrv *d, uint64_t len)
{
	uint64_t gpa = d->heap;

	d->heap += ALIGN_UP(len, 4096ULL);
	CHECK(d->heap <= VDRV_MEM);
	return gpa;
}

void *vdrv_ptr(struct vdrv *d, uint64_t gpa, uint64_t len)
{
	void *p = guest_memory_ptr(&d->vm->mem, gpa, len);

	CHECK(p != NULL);
	return p;
}

uint16_t vdrv_post(struct vdrv *d, unsigned qi, const struct vdrv_seg *segs, unsigned n)
{
	struct vdrv_queue *q = &d->q[qi];
	struct vring_desc *table = vdrv_ptr(d, q->desc, 16 * VDRV_QSIZE);
	struct vring_avail *avail = vdrv_ptr(d, q->avail, 6 + 2 * VDRV_QSIZE);
	int idx[VDRV_QSIZE];
	unsigned found = 0;

	for (unsigned i = 0; i < VDRV_QSIZE && found < n; i++)
		if (!q->busy[i])
			idx[found++] = (int)i;
	CHECK_INT(found, ==, n);
	for (unsigned k = 0; k < n; k++) {
		struct vring_desc *x = &table[idx[k]];
		q->busy[idx[k]] = 1;
		x->addr = segs[k].gpa;
		x->len = segs[k].len;
		x->flags =
		    (uint16_t)((segs[k].writable ? VRING_DESC_F_WRITE : 0) | (k + 1 < n ? VRING_DESC_F_NEXT : 0));
		x->next = (uint16_t)(k + 1 < n ? idx[k + 1] : 0);
	}
	avail->ring[q->avail_idx % VDRV_QSIZE] = (uint16_t)idx[0];
	__atomic_store_n(&avail->idx, ++q->avail_idx, __ATOMIC_RELEASE);
	return (uint16_t)idx[0];
}

uint16_t vdrv_post_one(struct vdrv *d, unsigned q, uint64_t gpa, uint32_t len, bool writable)
{
	struct vdrv_seg s = {gpa, len, writable};

	return vdrv_post(d, q, &s, 1);
}

void vdrv_kick(struct vdrv *d, unsigned q)
{
	virtio_dev_process_queue(d->vd, q);
}

bool vdrv_used(struct vdrv *d, unsigned qi, uint16_t *id, uint32_t *len)
{
	struct vdrv_queue *q = &d->q[qi];
	struct vring_used *used = vdrv_ptr(d, q->used, 4 + 8 * VDRV_QSIZE);
	struct vring_desc *table = vdrv_ptr(d, q->desc, 16 * VDRV_QSIZE);
	unsigned i;

	if (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) == q->last_used)
		return false;
	*id = (uint16_t)used->ring[q->last_used % VDRV_QSIZE].id;
	*len = used->ring[q->last_used % VDRV_QSIZE].len;
	q->last_used++;
	CHECK(*id < VDRV_QSIZE);
	for (i = *id;; i = table[i].next) {
		q->busy[i] = 0;
		if (!(table[i].flags & VRING_DESC_F_NEXT))
			break;
	}
	return true;
}

bool vdrv_needs_reset(struct vdrv *d)
{
	return (vdrv_read32(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET) != 0;
}
