#ifndef CASULO_VMM_DEVICES_SERIAL_H
#define CASULO_VMM_DEVICES_SERIAL_H
#include "vmm/devices/device.h"
extern const struct device_type serial_type;
#endif
