/*
 * The devices of a VM: a list, newest first, whose head struct vm holds.
 * What is done to every device (start, pause, describe, save, restore,
 * destroy) goes through here, in one order; which devices exist is the
 * machine builder's business (machine.c).
 */
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>

#include "vmm/devices/device.h"
#include "vmm/snapshot/format.h"

void device_list_add(struct device **list, struct device *dev)
{
	if (dev->name[0] == '\0')
		snprintf(dev->name, sizeof(dev->name), "%s", dev->ops->name);
	dev->next = *list;
	*list = dev;
}

void device_counters_add(json_object *counters, const struct device_counter *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_object_object_add(counters, c[i].name,
				       json_object_new_int64((int64_t)__atomic_load_n(c[i].value, __ATOMIC_RELAXED)));
}

const char *device_kind(const struct device *dev)
{
	return dev->kind ? dev->kind : dev->ops->name;
}

struct device *devices_find(struct device *list, const char *kind)
{
	for (struct device *dev = list; dev; dev = dev->next)
		if (strcmp(device_kind(dev), kind) == 0)
			return dev;
	return NULL;
}

int devices_start(struct device *list, struct err **e)
{
	for (struct device *dev = list; dev; dev = dev->next) {
		int r = dev->ops->start ? dev->ops->start(dev, e) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

void devices_pause(struct device *list)
{
	for (struct device *dev = list; dev; dev = dev->next)
		if (dev->ops->pause)
			dev->ops->pause(dev);
}

void devices_resume(struct device *list)
{
	for (struct device *dev = list; dev; dev = dev->next)
		if (dev->ops->resume)
			dev->ops->resume(dev);
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
		return err_setx(e, EINVAL, "section '%s' is missing (was the snapshot taken with other devices?)",
				name);
	if (s->version == 0 || s->version > max_version)
		return err_setx(e, EINVAL, "section '%s': version %u is newer than this VMM reads (%u)", name,
				s->version, max_version);
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

int devices_check_movable(struct device *list, struct err **e)
{
	for (struct device *dev = list; dev; dev = dev->next)
		if (dev->unmovable)
			return err_setx(e, EOPNOTSUPP, "%s", dev->unmovable);
	return 0;
}

void devices_save(struct device *list, struct snap_writer *w)
{
	save_in_order(list, w);
}

int devices_restore(struct device *list, const struct snap_reader *r, struct err **e)
{
	for (struct device *dev = list; dev; dev = dev->next) {
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

void devices_describe_acpi(void *list, struct aml *aml)
{
	describe_in_order(list, aml);
}

void devices_destroy_all(struct device **list)
{
	while (*list) {
		struct device *dev = *list;
		*list = dev->next;
		dev->ops->destroy(dev);
	}
}
