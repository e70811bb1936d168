/* virtio-vsock with the host side on Unix sockets: --vsock cid=N,socket=PATH */
#ifndef CASULO_VMM_DEVICES_VIRTIO_VSOCK_H
#define CASULO_VMM_DEVICES_VIRTIO_VSOCK_H

#include "common/err.h"
#include "vmm/devices/device.h"
#include "vmm/config.h"

struct vm;
struct virtio_dev;

int virtio_vsock_create(struct vm *vm, const struct vsock_config *c, struct err **e) MUST_CHECK;
/* Serve the host side (Unix sockets, timers) once, without blocking: the
 * device thread does this on its own; tests of an inline device call it. */
void virtio_vsock_poll_host(struct virtio_dev *vd);
/* Device thread (or inline): drop every connection and tell the guest
 * with a TRANSPORT_RESET event, as after the VM's identity changed. */
void virtio_vsock_transport_reset(struct virtio_dev *vd);

/* Its instances from the configuration (machine.c's virtio table). */
extern const struct device_type virtio_vsock_type;

#endif
