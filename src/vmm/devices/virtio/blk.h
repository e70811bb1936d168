/* virtio-blk: --disk path=FILE[,readonly=on][,id=NAME][,cache=none|writeback][,irq-coalescing=on|off] */
#ifndef CASULO_VMM_DEVICES_VIRTIO_BLK_H
#define CASULO_VMM_DEVICES_VIRTIO_BLK_H

#include "common/err.h"
#include "vmm/devices/device.h"
#include "vmm/config.h"

struct vm;

/* Open the image and add a virtio-blk device for it. */
int virtio_blk_create(struct vm *vm, const struct disk_config *d, unsigned index, struct err **e) MUST_CHECK;

/* Its instances from the configuration (machine.c's virtio table). */
extern const struct device_type virtio_blk_type;

#endif
