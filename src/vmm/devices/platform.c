/*
 * Casulo's platform device: the ACPI sleep and reset registers that the
 * FADT points at (hardware-reduced ACPI has no PM1 blocks), the exit
 * status port that casulo-init writes before powering off, and the POST
 * diagnostic port 0x80 (written by firmware-style code, ignored).
 * Port numbers are in arch/x86/layout.h and docs/guest.md.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vmm/arch/x86/layout.h"
#include "vmm/devices/device.h"
#include "vmm/devices/platform.h"
#include "vmm/snapshot/format.h"
#include "vmm/vm.h"

#define SLEEP_TYPE_SHIFT 2
#define SLEEP_TYPE_MASK 0x1c
#define SLEEP_ENABLE 0x20
#define POST_PORT 0x80
#define PLATFORM_PORTS 8

struct platform {
	struct device dev;
	struct vm *vm;
};

static void platform_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct platform *p = opaque;
	uint64_t port = PORT_ACPI_SLEEP_CONTROL + offset;

	if (!is_write) {
		memset(data, 0, len); /* sleep status: never asleep */
		return;
	}
	if (port == PORT_ACPI_SLEEP_CONTROL && len >= 1) {
		unsigned type = (data[0] & SLEEP_TYPE_MASK) >> SLEEP_TYPE_SHIFT;
		if ((data[0] & SLEEP_ENABLE) && type == ACPI_S5_SLEEP_TYPE) {
			log_info("platform: ACPI sleep state S5: the guest powers off");
			vm_request_exit(p->vm, VM_EXIT_POWEROFF);
		} else if (data[0] & SLEEP_ENABLE)
			log_debug("platform: sleep type %u is not supported, ignoring", type);
	} else if (port == PORT_ACPI_RESET && len >= 1) {
		if (data[0] == ACPI_RESET_VALUE) {
			log_info("platform: ACPI reset register: the guest reboots");
			vm_request_exit(p->vm, VM_EXIT_REBOOT);
		}
	} else if (port == PORT_EXIT_STATUS) {
		uint32_t status = 0;
		memcpy(&status, data, MIN(len, 4u));
		atomic_store(&p->vm->guest_status, (int)status);
		atomic_store(&p->vm->guest_status_set, true);
	}
}

static void post_port_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)opaque;
	(void)offset;
	if (!is_write)
		memset(data, 0xff, len);
}

#define PLATFORM_STATE_VERSION 1

static void platform_save(struct device *dev, struct snap_writer *w)
{
	struct platform *p = (struct platform *)dev;

	device_save_begin(dev, w, PLATFORM_STATE_VERSION);
	snap_put_u8(w, atomic_load(&p->vm->guest_status_set));
	snap_put_u32(w, (uint32_t)atomic_load(&p->vm->guest_status));
	snap_section_end(w);
}

static int platform_restore(struct device *dev, const struct snap_reader *r, struct err **e)
{
	struct platform *p = (struct platform *)dev;
	struct snap_section s;
	int ret = device_restore_begin(dev, r, PLATFORM_STATE_VERSION, &s, e);

	if (ret < 0)
		return ret;
	atomic_store(&p->vm->guest_status_set, snap_get_u8(&s) != 0);
	atomic_store(&p->vm->guest_status, (int)snap_get_u32(&s));
	return snap_section_ok(&s) ? 0 : snap_bad_section(&s, e);
}

static void platform_destroy(struct device *dev)
{
	free(dev);
}

static const struct device_ops platform_ops = {
    .name = "platform",
    .destroy = platform_destroy,
    .save = platform_save,
    .restore = platform_restore,
};

static int platform_create(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	struct platform *p = calloc(1, sizeof(*p));
	int r;

	(void)cfg; /* every VM has one */
	if (p == NULL)
		return err_set(e, ENOMEM, "platform device");
	p->dev.ops = &platform_ops;
	p->vm = vm;
	vm_add_device(vm, &p->dev);
	r = bus_register(&vm->pio, PORT_ACPI_SLEEP_CONTROL, PLATFORM_PORTS, platform_io, p, "platform", e);
	if (r < 0)
		return r;
	return bus_register(&vm->pio, POST_PORT, 1, post_port_io, p, "POST port", e);
}

const struct device_type platform_type = {.name = "platform", .create = platform_create};
