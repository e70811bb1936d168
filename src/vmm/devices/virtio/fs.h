/* virtio-fs: --fs tag=TAG,path=DIR[,readonly=on] */
#ifndef CASULO_VMM_DEVICES_VIRTIO_FS_H
#define CASULO_VMM_DEVICES_VIRTIO_FS_H

#include "common/err.h"
#include "vmm/devices/device.h"

struct vm;
struct fs_config;

int virtio_fs_create(struct vm *vm, const struct fs_config *c, struct err **e) MUST_CHECK;

/* Its instances from the configuration (machine.c's virtio table). */
extern const struct device_type virtio_fs_type;

#endif
