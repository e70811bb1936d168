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

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct vm;
struct aml;
struct device;
struct snap_writer;
struct snap_reader;
struct json_object;

struct device_ops {
	const char *name;
	/* Write this device's Device() object into the DSDT's \_SB scope. */
	void (*describe_acpi)(struct device *dev, struct aml *aml);
	/* Release everything; called once, also on half-built VMs. */
	void (*destroy)(struct device *dev);
	/* Snapshots (optional for a device with no state of its own): write
	 * the device's state as section "dev.<name>"; read it back into a
	 * device created with the same configuration.  The VM is paused. */
	void (*save)(struct device *dev, struct snap_writer *w);
	/* Add counters ("reads": 12, ...) to a JSON object for GET /metrics
	 * (optional). */
	void (*metrics)(struct device *dev, struct json_object *counters);
	int (*restore)(struct device *dev, const struct snap_reader *r, struct err **e);
};

#define DEVICE_NAME_MAX 24

struct device {
	const struct device_ops *ops;
	struct device *next;
	char name[DEVICE_NAME_MAX]; /* unique in the VM; ops->name when left empty */
	const char *kind;           /* what it is, for GET /metrics; ops->name when NULL */
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
/* Save or restore every device that has state. */
void devices_save(struct vm *vm, struct snap_writer *w);
int devices_restore(struct vm *vm, const struct snap_reader *r, struct err **e);
/* The section name of a device: "dev.<name>". */
void device_section_name(const struct device *dev, char *out, size_t len);
/* Start writing dev's section; restore: find it, refuse versions above
 * max_version, return a cursor in *s. */
void device_save_begin(const struct device *dev, struct snap_writer *w, uint32_t version);
struct snap_section;
int device_restore_begin(const struct device *dev, const struct snap_reader *r, uint32_t max_version,
			 struct snap_section *s, struct err **e);

#endif
