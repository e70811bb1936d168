/*
 * ACPI tables for the guest: RSDP, XSDT, FADT (hardware-reduced, with
 * sleep and reset registers on Casulo's platform ports), MADT (one local
 * APIC per vCPU, the IOAPIC, the ISA overrides) and a DSDT whose device
 * list the VM's devices write.  Debian's cloud kernel needs the MADT for
 * SMP and the DSDT to find virtio-mmio devices.
 */
#ifndef CASULO_VMM_ARCH_X86_ACPI_H
#define CASULO_VMM_ARCH_X86_ACPI_H

#include <stdint.h>

#include "common/err.h"
#include "vmm/arch/x86/aml.h"
#include "vmm/memory.h"

struct acpi_config {
	unsigned ncpus;
	/* Writes Device() objects into the \_SB scope. */
	void (*describe_devices)(void *opaque, struct aml *aml);
	void *opaque;
};

/* Build every table into guest memory; *ret_rsdp gets the RSDP address. */
int acpi_build(const struct guest_memory *mem, const struct acpi_config *cfg, uint64_t *ret_rsdp,
	       struct err **e) MUST_CHECK;

/* Sum of bytes, as ACPI checksums are defined (the table sums to 0). */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

#define ACPI_MAX_CPUS 254

#endif
