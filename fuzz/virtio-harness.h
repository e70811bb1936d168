/*
 * Shared set-up of the virtio fuzz targets: a VM with no KVM behind it
 * (devices run inline), and a driver that configures queue q of a device
 * from fuzz input the way a hostile guest would.  The input's first 8
 * bytes choose the queue size and the low feature bits; the rest becomes
 * the 64 KiB of guest memory at GPA 0x10000 that holds the rings and
 * buffers.
 */
#ifndef CASULO_FUZZ_VIRTIO_HARNESS_H
#define CASULO_FUZZ_VIRTIO_HARNESS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include "common/log.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/vm.h"

#define FUZZ_WINDOW 0x10000ULL
#define FUZZ_WINDOW_SIZE 0x10000ULL

static inline struct vm *fuzz_vm_new(void)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct err *e = NULL;

	log_set_level(LOG_ERROR); /* needs-reset warnings are the expected outcome */
	vm->vm_fd = vm->kvm_fd = -1;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	if (guest_memory_create(&vm->mem, 32ULL << 20, &e) < 0)
		abort();
	return vm;
}

static inline void fuzz_wr(struct virtio_dev *vd, uint64_t off, uint32_t v)
{
	virtio_mmio_access(vd, off, (uint8_t *)&v, 4, true);
}

/* Load the input past its 8-byte header as guest memory and pick the
 * queue size it asks for; -1 when the input is too short. */
static inline int fuzz_load(struct vm *vm, const uint8_t *data, size_t size, uint32_t *qsize)
{
	uint8_t *window = guest_memory_ptr(&vm->mem, FUZZ_WINDOW, FUZZ_WINDOW_SIZE);

	if (size < 8)
		return -1;
	*qsize = 1u << (data[0] % 9); /* 1..256, sometimes beyond the maximum */
	if (data[1] & 0x80)
		*qsize = data[1] | (uint32_t)data[2] << 8; /* anything at all */
	memset(window, 0, FUZZ_WINDOW_SIZE);
	memcpy(window, data + 8, size - 8 < FUZZ_WINDOW_SIZE ? size - 8 : FUZZ_WINDOW_SIZE);
	return 0;
}

/* Reset, then negotiate VERSION_1 and the low feature bits in data[4..7]. */
static inline void fuzz_negotiate(struct virtio_dev *vd, const uint8_t *data)
{
	uint32_t features_low;

	memcpy(&features_low, data + 4, 4);
	fuzz_wr(vd, VIRTIO_MMIO_STATUS, 0);
	fuzz_wr(vd, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	fuzz_wr(vd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	fuzz_wr(vd, VIRTIO_MMIO_DRIVER_FEATURES, features_low);
	fuzz_wr(vd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fuzz_wr(vd, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	fuzz_wr(vd, VIRTIO_MMIO_STATUS, 0xb);
}

/* Queue sel with its rings from desc on, as a driver would set them. */
static inline void fuzz_setup_queue(struct virtio_dev *vd, unsigned sel, uint32_t qsize, uint64_t desc)
{
	uint64_t avail = desc + 16ULL * (qsize & 0xffff);
	uint64_t used = (avail + 6 + 2ULL * (qsize & 0xffff) + 3) & ~3ULL;

	fuzz_wr(vd, VIRTIO_MMIO_QUEUE_SEL, sel);
	fuzz_wr(vd, VIRTIO_MMIO_QUEUE_NUM, qsize);
	fuzz_wr(vd, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	fuzz_wr(vd, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
	fuzz_wr(vd, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
	fuzz_wr(vd, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* Reset the device, load the input as guest memory, set up queue q and
 * DRIVER_OK.  Returns 0, or -1 when the input is too short. */
static inline int fuzz_drive(struct vm *vm, struct virtio_dev *vd, unsigned q, const uint8_t *data, size_t size)
{
	uint32_t qsize;

	if (fuzz_load(vm, data, size, &qsize) < 0)
		return -1;
	fuzz_negotiate(vd, data);
	/* Sometimes a queue other than the one under test. */
	fuzz_setup_queue(vd, (data[3] & 1) ? q ^ 1 : q, qsize, FUZZ_WINDOW);
	fuzz_wr(vd, VIRTIO_MMIO_STATUS, 0xf);
	return 0;
}

/* For devices with several queues: queue i (of nqueues) is set up when
 * bit i of data[3] is set, its rings at FUZZ_WINDOW + i * 4 KiB (they
 * overlap beyond 128 entries, as a hostile guest's may). */
#define FUZZ_QUEUE_STRIDE 0x1000ULL
static inline int fuzz_drive_queues(struct vm *vm, struct virtio_dev *vd, unsigned nqueues, const uint8_t *data,
				    size_t size)
{
	uint32_t qsize;

	if (fuzz_load(vm, data, size, &qsize) < 0)
		return -1;
	fuzz_negotiate(vd, data);
	for (unsigned i = 0; i < nqueues; i++)
		if (data[3] & (1u << i))
			fuzz_setup_queue(vd, i, qsize, FUZZ_WINDOW + i * FUZZ_QUEUE_STRIDE);
	fuzz_wr(vd, VIRTIO_MMIO_STATUS, 0xf);
	return 0;
}

#endif
