/*
 * The x86 reset vector of a VM without firmware.  A PC's CPU starts at
 * f000:fff0 (0xffff0 below 1 MiB once in real mode), in its BIOS; Linux's
 * BIOS reboot method goes back to real mode and jumps there so that the
 * firmware starts the machine over.  Linux takes that path with
 * `reboot=b`, and by default on Casulo's machine: a hardware-reduced ACPI
 * FADT without EFI makes its default EFI, which falls through to BIOS.
 * Casulo has no BIOS; reset_vector_write() puts 11 bytes of real-mode
 * code there that write the ACPI reset register (port 0x602), so a jump
 * to the reset vector is a reboot, which ends the VM.
 */
#ifndef CASULO_VMM_ARCH_X86_RESET_VECTOR_H
#define CASULO_VMM_ARCH_X86_RESET_VECTOR_H

#include "common/err.h"
#include "vmm/memory.h"

int reset_vector_write(const struct guest_memory *mem, struct err **e);

#endif
