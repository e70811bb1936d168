/*
 * Fuzz target: virtio-vsock's packet parser and connection state machine,
 * driven as a hostile guest would (virtio-harness.h, fuzz_drive_queues(),
 * lays out the input).  A host program listens on port 1234, so guest connections
 * can succeed; each input starts from a reset device, and connections
 * left from the previous one are closed.
 */
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "virtio-harness.h"
#include "vmm/devices/virtio/vsock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm *vm;
static struct virtio_dev *vd;
static int host_listener = -1;
static char base[64];

static void unlink_sockets(void)
{
	char p[96];

	snprintf(p, sizeof(p), "%s_1234", base);
	unlink(p);
	unlink(base);
}

static void setup(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct vsock_config c = {.enabled = true, .cid = 3, .socket = base};
	struct err *e = NULL;

	snprintf(base, sizeof(base), "/tmp/casulo-fuzz-vsock-%d", getpid());
	vm = fuzz_vm_new();
	if (virtio_vsock_create(vm, &c, &e) < 0)
		abort();
	vd = (struct virtio_dev *)vm->devices;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_1234", base);
	unlink(a.sun_path);
	host_listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (host_listener < 0 || bind(host_listener, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(host_listener, 64) < 0)
		abort();
	atexit(unlink_sockets);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd;

	if (vm == NULL)
		setup();
	if (fuzz_drive_queues(vm, vd, 3, data, size) < 0)
		return 0;
	for (int round = 0; round < 3; round++) {
		virtio_dev_process_queue(vd, 1); /* tx: the guest's packets */
		virtio_dev_process_queue(vd, 0); /* rx: replies */
		virtio_dev_process_queue(vd, 2); /* events */
		virtio_vsock_poll_host(vd);
	}
	if (data[2] & 1)
		virtio_vsock_transport_reset(vd);
	/* Programs on the host side take what reached them and leave. */
	while ((fd = accept(host_listener, NULL, NULL)) >= 0)
		close(fd);
	return 0;
}
