/*
 * The debug-exit port (--debug-exit), QEMU's isa-debug-exit: a guest
 * write of value V to the port ends the VM with exit status (V << 1) | 1
 * (the low 8 bits, as every exit status), so a test kernel reports pass
 * or fail through the VMM's exit status.  Off unless asked for.
 */
#ifndef CASULO_VMM_DEVICES_DEBUG_EXIT_H
#define CASULO_VMM_DEVICES_DEBUG_EXIT_H

#include <stdint.h>

#include "vmm/config.h"
#include "vmm/devices/device.h"

/* The exit status a write of value V asks for. */
static inline int debug_exit_status(uint32_t v)
{
	return (int)((((uint64_t)v << 1) | 1) & 0xff);
}

/* --debug-exit: none unless the configuration asks for it. */
extern const struct device_type debug_exit_type;

#endif
