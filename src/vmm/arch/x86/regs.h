/*
 * Boot-time CPU state: the identity page tables and GDT the 64-bit entry
 * needs, segment and control registers for 64-bit or PVH (32-bit flat)
 * entry, reset-value MSRs, FPU defaults and the LAPIC's LINT pins.
 */
#ifndef CASULO_VMM_ARCH_X86_REGS_H
#define CASULO_VMM_ARCH_X86_REGS_H

#include <stdint.h>

#include "common/err.h"
#include "vmm/boot/loader.h"
#include "vmm/memory.h"

/* Write the GDT and page tables into guest memory (once per VM). */
int regs_setup_boot_tables(const struct guest_memory *mem, struct err **e) MUST_CHECK;
/* The GDT (and an empty IDT) matching the entry mode, in guest memory. */
int regs_write_gdt(const struct guest_memory *mem, enum kernel_entry kind, struct err **e) MUST_CHECK;
/* Registers of the boot vCPU for entry. */
int regs_setup_boot_cpu(int vcpu_fd, const struct boot_entry *entry, struct err **e) MUST_CHECK;
/* MSRs at their reset values, FPU defaults, LAPIC LINT0=ExtINT LINT1=NMI. */
int regs_setup_msrs(int vcpu_fd, unsigned vcpu_id, struct err **e) MUST_CHECK;
int regs_setup_fpu(int vcpu_fd, unsigned vcpu_id, struct err **e) MUST_CHECK;
int regs_setup_lapic(int vcpu_fd, unsigned vcpu_id, struct err **e) MUST_CHECK;

/* Print the vCPU's registers to stream, for fatal exit reports. */
void regs_dump(int vcpu_fd, unsigned vcpu_id, void *stream);

#endif
