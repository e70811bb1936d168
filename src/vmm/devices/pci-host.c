/*
 * A PCI host bridge with nothing behind it, reached through the legacy
 * configuration mechanism #1 (address at 0xcf8, data at 0xcfc).  Linux
 * probes PCI on every boot; with this bridge it finds a sane, empty bus
 * instead of printing "PCI: Fatal: No config space access function
 * found", and `pci=off` is not needed on the command line.  Virtio
 * devices use virtio-mmio, not PCI.
 *
 * A byte access to 0xcf9 is the chipset's Reset Control Register, as on
 * Intel's PCHs and QEMU's PIIX3/ICH9: setting RST_CPU (bit 2) resets the
 * machine, which ends the VM as a reboot.  Linux uses it with reboot=p
 * (reboot=pci) and reboot=q, having found type 1 configuration access.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vmm/devices/device.h"
#include "vmm/devices/pci-host.h"
#include "vmm/snapshot/format.h"
#include "vmm/vm.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_PORTS 8
#define RESET_CONTROL_OFFSET 1 /* 0xcf9 */
#define RCR_SYS_RST 0x02       /* kept: the kind of reset asked for */
#define RCR_RST_CPU 0x04       /* resets */
#define RCR_FULL_RST 0x08      /* kept */
#define CONFIG_ENABLE 0x80000000u
#define CONFIG_SPACE_SIZE 256

/* Red Hat's "QEMU PCIe host bridge" IDs: Linux knows them as a plain host bridge. */
#define HOST_VENDOR_ID 0x1b36
#define HOST_DEVICE_ID 0x0008
#define CLASS_BRIDGE_HOST 0x060000

struct pci_host {
	struct device dev;
	struct vm *vm;
	pthread_mutex_t lock;
	uint32_t address;
	uint8_t reset_control;		   /* not saved in snapshots: it only says which reset comes next */
	uint8_t config[CONFIG_SPACE_SIZE]; /* bus 0, device 0, function 0 */
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void pci_host_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *h = opaque;

	pthread_mutex_lock(&h->lock);
	if (offset == RESET_CONTROL_OFFSET && len == 1) {
		if (!is_write) {
			data[0] = h->reset_control;
		} else if (data[0] & RCR_RST_CPU) {
			log_info("pci-host: reset control register 0xcf9: the guest reboots");
			vm_request_exit(h->vm, VM_EXIT_REBOOT);
		} else {
			h->reset_control = data[0] & (RCR_SYS_RST | RCR_FULL_RST);
		}
	} else if (offset < 4) {
		/* The address register; byte writes (Linux's probe uses one) merge in. */
		for (uint32_t i = 0; i < len && offset + i < 4; i++) {
			unsigned shift = (unsigned)(offset + i) * 8;
			if (is_write)
				h->address = (h->address & ~(0xffu << shift)) | ((uint32_t)data[i] << shift);
			else
				data[i] = (uint8_t)(h->address >> shift);
		}
	} else if (!is_write) {
		uint32_t a = h->address;
		int host = (a & CONFIG_ENABLE) && ((a >> 8) & 0xffff) == 0; /* bus 0, devfn 0 */
		unsigned reg = (a & 0xfc) + (unsigned)(offset - 4);

		for (uint32_t i = 0; i < len; i++)
			data[i] = (host && reg + i < CONFIG_SPACE_SIZE) ? h->config[reg + i] : 0xff;
	}
	/* Configuration writes change nothing: the bridge has no BARs or state. */
	pthread_mutex_unlock(&h->lock);
}

#define PCI_HOST_STATE_VERSION 1

static void pci_host_save(struct device *dev, struct snap_writer *w)
{
	struct pci_host *h = (struct pci_host *)dev;

	pthread_mutex_lock(&h->lock);
	device_save_begin(dev, w, PCI_HOST_STATE_VERSION);
	snap_put_u32(w, h->address);
	snap_section_end(w);
	pthread_mutex_unlock(&h->lock);
}

static int pci_host_restore(struct device *dev, const struct snap_reader *r, struct err **e)
{
	struct pci_host *h = (struct pci_host *)dev;
	struct snap_section s;
	int ret = device_restore_begin(dev, r, PCI_HOST_STATE_VERSION, &s, e);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&h->lock);
	h->address = snap_get_u32(&s);
	pthread_mutex_unlock(&h->lock);
	return snap_section_ok(&s) ? 0 : snap_bad_section(&s, e);
}

static void pci_host_destroy(struct device *dev)
{
	struct pci_host *h = (struct pci_host *)dev;

	pthread_mutex_destroy(&h->lock);
	free(h);
}

static const struct device_ops pci_host_ops = {
    .name = "pci-host",
    .destroy = pci_host_destroy,
    .save = pci_host_save,
    .restore = pci_host_restore,
};

static int pci_host_create(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	struct pci_host *h = calloc(1, sizeof(*h));

	(void)cfg; /* every VM has one */
	if (h == NULL)
		return err_set(e, ENOMEM, "pci-host: allocate");
	h->dev.ops = &pci_host_ops;
	h->vm = vm;
	pthread_mutex_init(&h->lock, NULL);
	put16(h->config + 0x00, HOST_VENDOR_ID);
	put16(h->config + 0x02, HOST_DEVICE_ID);
	h->config[0x09] = (uint8_t)CLASS_BRIDGE_HOST;
	h->config[0x0a] = (uint8_t)(CLASS_BRIDGE_HOST >> 8);
	h->config[0x0b] = (uint8_t)(CLASS_BRIDGE_HOST >> 16);
	put16(h->config + 0x2c, HOST_VENDOR_ID);
	put16(h->config + 0x2e, HOST_DEVICE_ID);
	vm_add_device(vm, &h->dev);
	return bus_register(&vm->pio, PCI_CONFIG_ADDRESS, PCI_CONFIG_PORTS, pci_host_io, h, "pci-host", e);
}

const struct device_type pci_host_type = {.name = "pci-host", .create = pci_host_create};
