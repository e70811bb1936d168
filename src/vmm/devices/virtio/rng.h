/* virtio-rng: --rng on|off */
#ifndef CASULO_VMM_DEVICES_VIRTIO_RNG_H
#define CASULO_VMM_DEVICES_VIRTIO_RNG_H

#include "common/err.h"

struct vm;

int virtio_rng_create(struct vm *vm, struct err **e);

#endif
