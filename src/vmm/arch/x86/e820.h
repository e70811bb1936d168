/* The e820 memory map handed to the guest (boot_params or PVH memmap). */
#ifndef CASULO_VMM_ARCH_X86_E820_H
#define CASULO_VMM_ARCH_X86_E820_H

#include <stdint.h>

#include "vmm/memory.h"

#define E820_TYPE_RAM 1
#define E820_TYPE_RESERVED 2
#define E820_MAX 8

struct e820_entry_desc {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* Fill out[] (E820_MAX entries) for mem; returns the number of entries. */
unsigned e820_build(const struct guest_memory *mem, struct e820_entry_desc out[E820_MAX]);

#endif
