#ifndef CASULO_VMM_DEVICES_PLATFORM_H
#define CASULO_VMM_DEVICES_PLATFORM_H
#include "vmm/devices/device.h"
extern const struct device_type platform_type;
#endif
