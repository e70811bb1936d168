/*
 * Fuzz target: the split-virtqueue walker and virtio-blk's request parser,
 * driven as a hostile guest would (fuzz/virtio-harness.h).  The device
 * runs inline against an in-memory 1 MiB image.
 */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "virtio-harness.h"
#include "vmm/devices/virtio/blk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm *vm;
static struct virtio_dev *vd;

static void setup(void)
{
	struct err *e = NULL;
	struct disk_config d = {.path = NULL};
	char path[64];
	int fd;

	vm = fuzz_vm_new();
	fd = memfd_create("fuzz-disk", 0);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	d.path = path;
	if (virtio_blk_create(vm, &d, 0, &e) < 0)
		abort();
	vd = (struct virtio_dev *)vm->devices;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (vm == NULL)
		setup();
	if (fuzz_drive(vm, vd, 0, data, size) < 0)
		return 0;
	for (int i = 0; i < 4; i++)
		virtio_dev_process_queue(vd, 0);
	return 0;
}
