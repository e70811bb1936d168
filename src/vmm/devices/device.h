/*
 * The device model interface.  Every device embeds struct device as its
 * first member, joins its VM's device list with vm_add_device(), claims
 * its address ranges on vm->pio / vm->mmio when it is created, and may
 * describe itself to the guest in the DSDT.  The device types are listed
 * explicitly in the machine builder's tables (machine.c), never collected
 * by linker tricks, so nothing vanishes from a static library.
 * docs/ARCHITECTURE.md has the checklist for adding a device.
 */
#ifndef CASULO_VMM_DEVICES_DEVICE_H
#define CASULO_VMM_DEVICES_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct vm;
struct vm_config;
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
	/* Start the device's own thread, once the VM is built or restored
	 * (optional). */
	int (*start)(struct device *dev, struct err **e);
	/* VMM thread, for vm_pause()/vm_resume() (optional): finish what is
	 * in flight and serve nothing more; then go on again. */
	void (*pause)(struct device *dev);
	void (*resume)(struct device *dev);
};

#define DEVICE_NAME_MAX 24

struct device {
	const struct device_ops *ops;
	struct device *next;
	char name[DEVICE_NAME_MAX]; /* unique in the VM; ops->name when left empty */
	const char *kind;	    /* what it is, for GET /metrics; ops->name when NULL */
	const char *id;		    /* the configuration's name for it ("disk0", "net1"), or NULL */
	/* Why the device's state cannot be saved or moved (a snapshot, a
	 * migration), naming the device, or NULL when it can. */
	const char *unmovable;
};

/* A kind of device: create() adds its instances to the VM from the
 * configuration (none when the configuration asks for none).  The
 * machine builder's tables list every type. */
struct device_type {
	const char *name;
	int (*create)(struct vm *vm, const struct vm_config *cfg, struct err **e);
};

/* A counter for GET /metrics: its name and the value one thread updates
 * (read with a relaxed atomic load, from any thread). */
struct device_counter {
	const char *name;
	const uint64_t *value;
};

/* Add n counters to a metrics op's JSON object. */
void device_counters_add(struct json_object *counters, const struct device_counter *c, size_t n);

/* The device list, newest first (struct vm holds its head).  Add a
 * device (its name defaults to ops->name). */
void device_list_add(struct device **list, struct device *dev);
/* What a device is ("virtio-blk"): dev->kind, else ops->name. */
const char *device_kind(const struct device *dev);
/* The first device of that kind, or NULL. */
struct device *devices_find(struct device *list, const char *kind);
int devices_start(struct device *list, struct err **e) MUST_CHECK;
void devices_pause(struct device *list);
void devices_resume(struct device *list);
/* Let every device write its DSDT entry (list: the head, as void *). */
void devices_describe_acpi(void *list, struct aml *aml);
void devices_destroy_all(struct device **list);
/* 0, or -EOPNOTSUPP naming the first device whose state cannot be
 * saved or moved (before a snapshot or migration starts). */
int devices_check_movable(struct device *list, struct err **e) MUST_CHECK;
/* Save or restore every device that has state. */
void devices_save(struct device *list, struct snap_writer *w);
int devices_restore(struct device *list, const struct snap_reader *r, struct err **e) MUST_CHECK;
/* The section name of a device: "dev.<name>". */
void device_section_name(const struct device *dev, char *out, size_t len);
/* Start writing dev's section; restore: find it, refuse versions above
 * max_version, return a cursor in *s. */
void device_save_begin(const struct device *dev, struct snap_writer *w, uint32_t version);
struct snap_section;
int device_restore_begin(const struct device *dev, const struct snap_reader *r, uint32_t max_version,
			 struct snap_section *s, struct err **e) MUST_CHECK;

#endif
