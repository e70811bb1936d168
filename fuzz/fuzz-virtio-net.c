/*
 * Fuzz target: virtio-net's transmit path (chains checked, frames written
 * to a TAP) and its receive-buffer handling, driven as a hostile guest
 * would (fuzz/virtio-harness.h).  The TAP is created here and left down:
 * frames written to it are dropped by the host kernel.  Needs
 * /dev/net/tun and CAP_NET_ADMIN; without them the target only returns.
 */
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/if_tun.h>

#include "virtio-harness.h"
#include "vmm/devices/virtio/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm *vm;
static struct virtio_dev *vd;
static int unavailable;

static void setup(void)
{
	struct net_config n = {.fd = -1};
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	struct err *e = NULL;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "fuzz-virtio-net: no TAP device here, nothing to fuzz\n");
		unavailable = 1;
		return;
	}
	vm = fuzz_vm_new();
	n.fd = fd;
	if (virtio_net_create(vm, &n, 0, &e) < 0)
		abort();
	close(fd);
	vd = (struct virtio_dev *)vm->devices;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (vm == NULL && !unavailable)
		setup();
	if (unavailable || size < 1)
		return 0;
	/* The last input byte picks the queue: receive (0) or transmit (1). */
	if (fuzz_drive(vm, vd, data[size - 1] & 1, data, size - 1) < 0)
		return 0;
	for (int i = 0; i < 3; i++)
		virtio_dev_process_queue(vd, data[size - 1] & 1);
	return 0;
}
