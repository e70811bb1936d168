/*
 * The ACPI power button (PNP0C0C), behind a Generic Event Device
 * (ACPI0013, hardware-reduced ACPI's way to raise events): PUT
 * /vm/shutdown presses it by pulsing the GED's interrupt line; the GED's
 * _EVT method notifies the button (0x80, "pressed"); Linux's button
 * driver turns that into a KEY_POWER input event, on which casulo-init
 * (or systemd-logind in other guests) shuts the guest down.
 */
#include <stdlib.h>

#include "vmm/arch/x86/aml.h"
#include "vmm/arch/x86/layout.h"
#include "vmm/devices/device.h"
#include "vmm/devices/power-button.h"
#include "vmm/vm.h"

#define NOTIFY_BUTTON_PRESSED 0x80

struct power_button {
	struct device dev;
	struct vm *vm;
};

static void power_button_describe_acpi(struct device *dev, struct aml *aml)
{
	(void)dev;
	aml_device(aml, "PWRB");
	aml_name_decl(aml, "_HID");
	aml_eisaid(aml, "PNP0C0C");
	aml_name_decl(aml, "_UID");
	aml_integer(aml, 0);
	aml_end(aml);

	aml_device(aml, "GED0");
	aml_name_decl(aml, "_HID");
	aml_string(aml, "ACPI0013");
	aml_name_decl(aml, "_UID");
	aml_integer(aml, 0);
	aml_crs_begin(aml);
	aml_crs_ext_irq(aml, IRQ_POWER_BUTTON, 1);
	aml_crs_end(aml);
	/* One event source: whatever the GSI argument, it is the button. */
	aml_method(aml, "_EVT", 1);
	aml_notify(aml, "\\_SB_.PWRB", NOTIFY_BUTTON_PRESSED);
	aml_end(aml);
	aml_end(aml);
}

void power_button_press(struct vm *vm)
{
	/* An edge on the GED's line. */
	vm_set_irq(vm, IRQ_POWER_BUTTON, 1);
	vm_set_irq(vm, IRQ_POWER_BUTTON, 0);
}

static void power_button_destroy(struct device *dev)
{
	free(dev);
}

static const struct device_ops power_button_ops = {
    .name = "power-button",
    .describe_acpi = power_button_describe_acpi,
    .destroy = power_button_destroy,
};

static int power_button_create(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	struct power_button *p = calloc(1, sizeof(*p));

	(void)cfg; /* every VM has one */
	if (p == NULL)
		return err_set(e, ENOMEM, "power button");
	p->dev.ops = &power_button_ops;
	p->vm = vm;
	vm_add_device(vm, &p->dev);
	return 0;
}

const struct device_type power_button_type = {.name = "power-button", .create = power_button_create};
