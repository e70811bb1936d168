#ifndef CASULO_VMM_DEVICES_POWER_BUTTON_H
#define CASULO_VMM_DEVICES_POWER_BUTTON_H
#include "vmm/devices/device.h"
struct vm;
extern const struct device_type power_button_type;
/* Press the button: the guest is asked to shut down. */
void power_button_press(struct vm *vm);
#endif
