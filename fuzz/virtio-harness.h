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

/* Reset the device, load the input as guest memory, set up queue q and
 * DRIVER_OK.  Returns 0, or -1 when the input is too short. */
static inline int fuzz_drive(struct vm *vm, struct virtio_dev *vd, unsigned q, const uint8_t *data, size_t size)
{
	uint8_t *window = guest_memory_ptr(&vm->mem, FUZZ_WINDOW, FUZZ_WINDOW_SIZE);
	uint32_t qsize, features_low;
	uint64_t desc, avail, used;

	if (size < 8)
		return -1;
	qsize = 1u << (data[0] % 9); /* 1..256, sometimes beyond the maximum */
	if (data[1] & 0x80)
		qsize = data[1] | (uint32_t)data[2] << 8; /* anything at all */
	memcpy(&features_low, data + 4, 4);
	memset(window, 0, FUZZ_WINDOW_SIZE);
	memcpy(window, data + 8, size - 8 < FUZZ_WINDOW_SIZE ? size - 8 : FUZZ_WINDOW_SIZE);
	desc = FUZZ_WINDOW;
	avail = desc + 16ULL * (qsize & 0xffff);
	used = (avail + 6 + 2ULL * (qsize & 0xffff) + 3) & ~3ULL;

	fuzz_wr(vd, VIRTIO_MMIO_STATUS, 0);
	fuzz_wr(vd, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	fuzz_wr(vd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	fuzz_wr(vd, VIRTIO_MMIO_DRIVER_FEATURES, features_low);
	fuzz_wr(vd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fuzz_wr(vd, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	fuzz_wr(vd, VIRTIO_MMIO_STATUS, 0xb);
	/* Sometimes a queue other than the one under test. */
	fuzz_wr(vd, VIRTIO_MMIO_QUEUE_SEL, (data[3] & 1) ? q ^ 1 : q);
	fuzz_wr(vd, VIRTIO_MMIO_QUEUE_NUM, qsize);
	fuzz_wr(vd, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	fuzz_wr(vd, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
	fuzz_wr(vd, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
	fuzz_wr(vd, VIRTIO_MMIO_QUEUE_READY, 1);
	fuzz_wr(vd, VIRTIO_MMIO_STATUS, 0xf);
	return 0;
}

#endif
