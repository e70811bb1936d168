/*
 * A fake guest driver for unit tests of virtio device models: a VM with
 * guest memory but no KVM, the device negotiated through its MMIO
 * registers, split queues the test fills, and the device run inline (its
 * thread never starts), so every kick is handled before it returns.
 */
#ifndef CASULO_TESTS_VIRTIO_DRIVER_H
#define CASULO_TESTS_VIRTIO_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/devices/virtio/virtio.h"
#include "vmm/vm.h"

#define VDRV_MEM (64ULL << 20)
#define VDRV_QSIZE 64

struct vdrv_queue {
	uint64_t desc, avail, used;
	uint16_t avail_idx, last_used;
	uint8_t busy[VDRV_QSIZE];
};

struct vdrv {
	struct vm *vm;
	struct virtio_dev *vd;
	unsigned nq;
	uint64_t features;
	struct vdrv_queue q[VIRTIO_MAX_QUEUES];
	uint64_t heap; /* next free guest address for buffers */
};

struct vdrv_seg {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

struct vm *vdrv_fake_vm(void);
void vdrv_free_vm(struct vm *vm);
/* Drive the VM's newest device to DRIVER_OK with features and nq queues. */
void vdrv_init(struct vdrv *d, struct vm *vm, uint64_t features, unsigned nq);
/* Reset the device (status 0), then negotiate again. */
void vdrv_reinit(struct vdrv *d);
/* len bytes of guest memory, page-aligned; returns its address. */
uint64_t vdrv_alloc(struct vdrv *d, uint64_t len);
void *vdrv_ptr(struct vdrv *d, uint64_t gpa, uint64_t len);
/* Make a chain available on queue q; returns its head.  No kick. */
uint16_t vdrv_post(struct vdrv *d, unsigned q, const struct vdrv_seg *segs, unsigned n);
/* One buffer, readable (out) or writable (in), posted; returns its head. */
uint16_t vdrv_post_one(struct vdrv *d, unsigned q, uint64_t gpa, uint32_t len, bool writable);
void vdrv_kick(struct vdrv *d, unsigned q);
/* The next used element of queue q, if any (its descriptors are freed). */
bool vdrv_used(struct vdrv *d, unsigned q, uint16_t *id, uint32_t *len);
bool vdrv_needs_reset(struct vdrv *d);
uint32_t vdrv_read32(struct vdrv *d, uint64_t off);
void vdrv_write32(struct vdrv *d, uint64_t off, uint32_t v);

#endif
