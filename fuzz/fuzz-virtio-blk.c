/*
 * Fuzz target: the split-virtqueue walker and virtio-blk's request parser,
 * driven the way a hostile guest would: the input becomes the guest
 * memory holding the rings and buffers (64 KiB at GPA 0x10000); the first
 * bytes choose the queue size and the negotiated features.  The device
 * runs inline against an in-memory 1 MiB image.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include "common/log.h"
#include "vmm/devices/virtio/blk.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/vm.h"

#define WINDOW 0x10000ULL
#define WINDOW_SIZE 0x10000ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm *vm;
static struct virtio_dev *vd;

static void wr(uint64_t off, uint32_t v)
{
	virtio_mmio_access(vd, off, (uint8_t *)&v, 4, true);
}

static int setup(void)
{
	struct err *e = NULL;
	struct disk_config d = { .path = NULL };
	char path[64];
	int fd;

	log_set_level(LOG_ERROR); /* needs-reset warnings are the expected outcome */
	vm = calloc(1, sizeof(*vm));
	vm->vm_fd = vm->kvm_fd = -1;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	if (guest_memory_create(&vm->mem, 32ULL << 20, &e) < 0)
		return -1;
	fd = memfd_create("fuzz-disk", 0);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	d.path = path;
	if (virtio_blk_create(vm, &d, 0, &e) < 0)
		return -1;
	vd = (struct virtio_dev *)vm->devices;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *window;
	uint32_t qsize, features_low;
	uint64_t desc, avail, used;

	if (vm == NULL && setup() < 0)
		abort();
	if (size < 8)
		return 0;
	qsize = 1u << (data[0] % 9); /* 1..256, sometimes beyond the maximum */
	if (data[1] & 0x80)
		qsize = data[1] | (uint32_t)data[2] << 8; /* anything at all */
	memcpy(&features_low, data + 4, 4);
	window = guest_memory_ptr(&vm->mem, WINDOW, WINDOW_SIZE);
	memset(window, 0, WINDOW_SIZE);
	memcpy(window, data + 8, size - 8 < WINDOW_SIZE ? size - 8 : WINDOW_SIZE);
	desc = WINDOW;
	avail = desc + 16ULL * (qsize & 0xffff);
	used = (avail + 6 + 2ULL * (qsize & 0xffff) + 3) & ~3ULL;

	wr(VIRTIO_MMIO_STATUS, 0);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, features_low);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	wr(VIRTIO_MMIO_STATUS, 0xb);
	wr(VIRTIO_MMIO_QUEUE_SEL, data[3] & 1); /* sometimes a queue that does not exist */
	wr(VIRTIO_MMIO_QUEUE_NUM, qsize);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
	wr(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	wr(VIRTIO_MMIO_STATUS, 0xf);
	for (int i = 0; i < 4; i++)
		virtio_dev_process_queue(vd, 0);
	return 0;
}
