/*
 * Fuzz target: virtio-balloon's queues (inflate/deflate PFN arrays,
 * statistics, free page reports), driven as a hostile guest would
 * (virtio-harness.h, fuzz_drive_queues(), lays out the input).  Every
 * feature is offered, so the queue numbering follows what the input
 * negotiates.
 */
#include "virtio-harness.h"
#include "vmm/devices/virtio/balloon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm *vm;
static struct virtio_dev *vd;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct balloon_info info;

	if (vm == NULL) {
		struct balloon_config c = {.enabled = true, .deflate_on_oom = true, .free_page_reporting = true};
		struct err *e = NULL;
		vm = fuzz_vm_new();
		if (virtio_balloon_create(vm, &c, &vd, &e) < 0)
			abort();
	}
	if (fuzz_drive_queues(vm, vd, 4, data, size) < 0)
		return 0;
	for (unsigned q = 0; q < 4; q++)
		virtio_dev_process_queue(vd, q);
	virtio_balloon_query(vd, &info); /* hands the statistics buffer back */
	virtio_dev_process_queue(vd, 2);
	return 0;
}
