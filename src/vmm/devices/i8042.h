#ifndef CASULO_VMM_DEVICES_I8042_H
#define CASULO_VMM_DEVICES_I8042_H
#include "vmm/devices/device.h"
extern const struct device_type i8042_type;
#endif
