/* virtio-console, one port: --console2 file:PATH|socket:PATH|pty|none */
#ifndef CASULO_VMM_DEVICES_VIRTIO_CONSOLE_H
#define CASULO_VMM_DEVICES_VIRTIO_CONSOLE_H

#include "common/err.h"
#include "vmm/devices/device.h"
#include "vmm/config.h"

struct vm;
struct virtio_dev;

int virtio_console_create(struct vm *vm, const struct console2_config *c, struct err **e) MUST_CHECK;
/* The backend's fds are serviced by the device thread; a device run
 * inline (tests) has none, so the test services them with this. */
void virtio_console_poll_backend(struct virtio_dev *vd);

/* Its instances from the configuration (machine.c's virtio table). */
extern const struct device_type virtio_console_type;

#endif
