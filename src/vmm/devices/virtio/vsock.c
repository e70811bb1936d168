#include "vmm/devices/virtio/vsock.h"
int virtio_vsock_create(struct vm *vm, const struct vsock_config *c, struct err **e){(void)vm;(void)c;return err_setx(e,ENOSYS,"vsock: todo");}
