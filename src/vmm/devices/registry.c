/*
 * The one list of built-in device types.  Adding a device: write its
 * file in this folder, export its device_type, add it here (see
 * docs/ARCHITECTURE.md).
 */
#include <stdio.h>

#include "vmm/devices/device.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/pci-host.h"
#include "vmm/devices/platform.h"
#include "vmm/devices/power-button.h"
#include "vmm/devices/rtc.h"
#include "vmm/devices/serial.h"
#include "vmm/snapshot/format.h"
#include "vmm/vm.h"

static const struct device_type *const builtin_devices[] = {
	&serial_type,
	&rtc_type,
	&i8042_type,
	&platform_type,
	&pci_host_type,
	&power_button_type,
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
	if (dev->name[0] == '\0')
		snprintf(dev->name, sizeof(dev->name), "%s", dev->ops->name);
	dev->next = vm->devices;
	vm->devices = dev;
}

void device_section_name(const struct device *dev, char *out, size_t len)
{
	snprintf(out, len, "dev.%s", dev->name);
}

void device_save_begin(const struct device *dev, struct snap_writer *w, uint32_t version)
{
	char name[SNAP_NAME_MAX];

	device_section_name(dev, name, sizeof(name));
	snap_section_begin(w, name, version);
}

int device_restore_begin(const struct device *dev, const struct snap_reader *r, uint32_t max_version,
			 struct snap_section *s, struct err **e)
{
	char name[SNAP_NAME_MAX];

	device_section_name(dev, name, sizeof(name));
	if (!snap_find(r, name, s))
		return err_setx(e, EINVAL, "section '%s' is missing (was the snapshot taken with other devices?)", name);
	if (s->version == 0 || s->version > max_version)
		return err_setx(e, EINVAL, "section '%s': version %u is newer than this VMM reads (%u)", name, s->version,
				max_version);
	return 0;
}

static void save_in_order(struct device *dev, struct snap_writer *w)
{
	if (dev == NULL)
		return;
	save_in_order(dev->next, w);
	if (dev->ops->save)
		dev->ops->save(dev, w);
}

void devices_save(struct vm *vm, struct snap_writer *w)
{
	save_in_order(vm->devices, w);
}

int devices_restore(struct vm *vm, const struct snap_reader *r, struct err **e)
{
	for (struct device *dev = vm->devices; dev; dev = dev->next) {
		int ret;
		if (dev->ops->restore == NULL)
			continue;
		ret = dev->ops->restore(dev, r, e);
		if (ret < 0)
			return err_wrap(e, "device '%s'", dev->name);
	}
	return 0;
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
