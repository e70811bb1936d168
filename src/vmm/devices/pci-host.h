#ifndef CASULO_VMM_DEVICES_PCI_HOST_H
#define CASULO_VMM_DEVICES_PCI_HOST_H
#include "vmm/devices/device.h"
extern const struct device_type pci_host_type;
#endif
