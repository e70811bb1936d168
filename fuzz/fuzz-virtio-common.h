/*
 * What the virtio device fuzzers share: a VM with guest memory and no
 * KVM, and a driver that sets up every queue of the device inside a
 * 64 KiB window of guest memory that the fuzz input fills.  Queue i's
 * rings start at WINDOW + i * 4 KiB (they overlap with more than 128
 * entries: a hostile guest may do that too).
 */
#ifndef CASULO_FUZZ_VIRTIO_COMMON_H
#define CASULO_FUZZ_VIRTIO_COMMON_H

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
#define FUZZ_QUEUE_STRIDE 0x1000ULL
#define FUZZ_HEADER 8 /* input bytes before the window */

static inline struct vm *fuzz_vm(void)
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

/*
 * Reset the device, copy the input into the window and negotiate:
 * data[0] picks the queue size (sometimes an invalid one), data[1..2]
 * an arbitrary one, data[3] which queues are enabled, data[4..7] the low
 * feature bits.  Returns false for inputs too short to mean anything.
 */
static inline bool fuzz_drive(struct vm *vm, struct virtio_dev *vd, unsigned nqueues, const uint8_t *data,
			      size_t size)
{
	uint8_t *window = guest_memory_ptr(&vm->mem, FUZZ_WINDOW, FUZZ_WINDOW_SIZE);
	uint32_t qsize, features_low;

	if (size < FUZZ_HEADER)
		return false;
	qsize = 1u << (data[0] % 9); /* 1..256, sometimes beyond the maximum */
	if (data[1] & 0x80)
		qsize = data[1] | (uint32_t)data[2] << 8; /* anything at all */
	memcpy(&features_low, data + 4, 4);
	memset(window, 0, FUZZ_WINDOW_SIZE);
	memcpy(window, data + FUZZ_HEADER, MIN(size - FUZZ_HEADER, FUZZ_WINDOW_SIZE));

	fuzz_wr(vd, VIRTIO_MMIO_STATUS, 0);
	fuzz_wr(vd, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	fuzz_wr(vd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	fuzz_wr(vd, VIRTIO_MMIO_DRIVER_FEATURES, features_low);
	fuzz_wr(vd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fuzz_wr(vd, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	fuzz_wr(vd, VIRTIO_MMIO_STATUS, 0xb);
	for (unsigned i = 0; i < nqueues; i++) {
		uint64_t desc = FUZZ_WINDOW + i * FUZZ_QUEUE_STRIDE;
		uint64_t avail = desc + 16ULL * (qsize & 0xffff);
		uint64_t used = (avail + 6 + 2ULL * (qsize & 0xffff) + 3) & ~3ULL;

		if (!(data[3] & (1u << i)))
			continue;
		fuzz_wr(vd, VIRTIO_MMIO_QUEUE_SEL, i);
		fuzz_wr(vd, VIRTIO_MMIO_QUEUE_NUM, qsize);
		fuzz_wr(vd, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
		fuzz_wr(vd, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
		fuzz_wr(vd, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
		fuzz_wr(vd, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	fuzz_wr(vd, VIRTIO_MMIO_STATUS, 0xf);
	return true;
}

#endif
