#include "vmm/devices/debug-exit.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vmm/vm.h"

struct debug_exit {
	struct device dev;
	struct vm *vm;
};

static void debug_exit_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct debug_exit *d = opaque;
	uint32_t v = 0;

	(void)offset;
	if (!is_write) {
		memset(data, 0xff, len);
		return;
	}
	memcpy(&v, data, MIN(len, 4u));
	log_info("debug-exit: the guest wrote 0x%x: exit status %d", v, debug_exit_status(v));
	/* The status wins over one written to the exit-status port before. */
	atomic_store(&d->vm->guest_status, debug_exit_status(v));
	atomic_store(&d->vm->guest_status_set, true);
	vm_request_exit(d->vm, VM_EXIT_DEBUG_EXIT);
}

static void debug_exit_destroy(struct device *dev)
{
	free(dev);
}

/* No state: the port and size are the VM's configuration. */
static const struct device_ops debug_exit_ops = {
    .name = "debug-exit",
    .destroy = debug_exit_destroy,
};

static int debug_exit_create(struct vm *vm, const struct vm_config *vm_cfg, struct err **e)
{
	const struct debug_exit_config *cfg = &vm_cfg->debug_exit;
	struct debug_exit *d;

	if (!cfg->enabled)
		return 0;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return err_set(e, ENOMEM, "debug-exit");
	d->dev.ops = &debug_exit_ops;
	d->vm = vm;
	vm_add_device(vm, &d->dev);
	return bus_register(&vm->pio, cfg->port, cfg->size, debug_exit_io, d, "debug-exit", e);
}

const struct device_type debug_exit_type = {.name = "debug-exit", .create = debug_exit_create};
