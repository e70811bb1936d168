#ifndef CASULO_VMM_DEVICES_RTC_H
#define CASULO_VMM_DEVICES_RTC_H
#include "vmm/devices/device.h"
extern const struct device_type rtc_type;
#endif
