/*
 * The device model interface.  Every device embeds struct device as its
 * first member, claims its address ranges on vm->pio / vm->mmio when it is
 * created, and may describe itself to the guest in the DSDT.  The list of
 * device types is explicit (devices/registry.c), never built by linker
 * tricks, so nothing vanishes from a static library.
 * docs/ARCHITECTURE.md has the checklist for adding a device.
 */
#ifndef CASULO_VMM_DEVICES_DEVICE_H
#define CASULO_VMM_DEVICES_DEVICE_H

#include "common/err.h"

struct vm;
struct aml;
struct device;

struct device_ops {
	const char *name;
	/* Write this device's Device() object into the DSDT's \_SB scope. */
	void (*describe_acpi)(struct device *dev, struct aml *aml);
	/* Release everything; called once, also on half-built VMs. */
	void (*destroy)(struct device *dev);
};

struct device {
	const struct device_ops *ops;
	struct device *next;
};

/* A built-in device that every VM has (legacy PC devices). */
struct device_type {
	const char *name;
	int (*create)(struct vm *vm, struct err **e);
};

/* Create every built-in device, in table order. */
int devices_create_builtin(struct vm *vm, struct err **e);
/* Link a created device into vm->devices (the VM destroys it). */
void device_attach(struct vm *vm, struct device *dev);
/* Let every device write its DSDT entry. */
void devices_describe_acpi(void *vm, struct aml *aml);
void devices_destroy_all(struct vm *vm);

#endif
