/*
 * The ACPI power button, as an input device: the VMM's "shutdown" presses
 * it (docs/guest.md), Linux's button driver reports KEY_POWER, and
 * casulo-init ends the command and powers off.
 */
#ifndef CASULO_GUEST_POWERBUTTON_H
#define CASULO_GUEST_POWERBUTTON_H

#include <stdbool.h>

/* Open the "Power Button" input device (/dev/input/eventN), or -1 when
 * there is none (no ACPI button, or the button/evdev modules are absent). */
int powerbutton_open(void);
/* Read what is pending on fd; true if it includes a power key press. */
bool powerbutton_pressed(int fd);

#endif
