/*
 * The one list of built-in device types.  Adding a device: write its
 * file in this folder, export its device_type, add it here (see
 * docs/ARCHITECTURE.md).
 */
#include "vmm/devices/device.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/pci-host.h"
#include "vmm/devices/platform.h"
#include "vmm/devices/rtc.h"
#include "vmm/devices/serial.h"
#include "vmm/vm.h"

static const struct device_type *const builtin_devices[] = {
	&serial_type,
	&rtc_type,
	&i8042_type,
	&platform_type,
	&pci_host_type,
};

int devices_create_builtin(struct vm *vm, struct err **e)
{
	for (size_t i = 0; i < ARRAY_SIZE(builtin_devices); i++) {
		int r = builtin_devices[i]->create(vm, e);
		if (r < 0)
			return err_wrap(e, "device '%s'", builtin_devices[i]->name);
	}
	return 0;
}

void device_attach(struct vm *vm, struct device *dev)
{
	dev->next = vm->devices;
	vm->devices = dev;
}

static void describe_in_order(struct device *dev, struct aml *aml)
{
	/* The list is newest first; describe in creation order. */
	if (dev == NULL)
		return;
	describe_in_order(dev->next, aml);
	if (dev->ops->describe_acpi)
		dev->ops->describe_acpi(dev, aml);
}

void devices_describe_acpi(void *opaque, struct aml *aml)
{
	struct vm *vm = opaque;

	describe_in_order(vm->devices, aml);
}

void devices_destroy_all(struct vm *vm)
{
	while (vm->devices) {
		struct device *dev = vm->devices;
		vm->devices = dev->next;
		dev->ops->destroy(dev);
	}
}
