/* virtio-net over a TAP device: --net tap=NAME[,mac=MAC] or fd=N[,mac=MAC] */
#ifndef CASULO_VMM_DEVICES_VIRTIO_NET_H
#define CASULO_VMM_DEVICES_VIRTIO_NET_H

#include "common/err.h"
#include "vmm/devices/device.h"
#include "vmm/config.h"

struct vm;

int virtio_net_create(struct vm *vm, const struct net_config *n, unsigned index, struct err **e) MUST_CHECK;

/* Its instances from the configuration (machine.c's virtio table). */
extern const struct device_type virtio_net_type;

#endif
