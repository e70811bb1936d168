/* virtio-rng: --rng on|off */
#ifndef CASULO_VMM_DEVICES_VIRTIO_RNG_H
#define CASULO_VMM_DEVICES_VIRTIO_RNG_H

#include "common/err.h"
#include "vmm/devices/device.h"

struct vm;

int virtio_rng_create(struct vm *vm, struct err **e) MUST_CHECK;

/* Its instances from the configuration (machine.c's virtio table). */
extern const struct device_type virtio_rng_type;

#endif
