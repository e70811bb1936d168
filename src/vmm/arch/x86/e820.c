#include "vmm/arch/x86/e820.h"

#include "vmm/arch/x86/layout.h"

unsigned e820_build(const struct guest_memory *mem, struct e820_entry_desc out[E820_MAX])
{
	uint64_t low_end = guest_memory_low_end(mem);
	unsigned n = 0;

	out[n++] = (struct e820_entry_desc){0, LAYOUT_EBDA_ADDR, E820_TYPE_RAM};
	out[n++] = (struct e820_entry_desc){LAYOUT_EBDA_ADDR, 0xa0000 - LAYOUT_EBDA_ADDR, E820_TYPE_RESERVED};
	/* The BIOS area holds our ACPI tables (Linux scans it for the RSDP) and the reset vector. */
	out[n++] =
	    (struct e820_entry_desc){LAYOUT_ACPI_ADDR, LAYOUT_HIGH_MEM_START - LAYOUT_ACPI_ADDR, E820_TYPE_RESERVED};
	out[n++] = (struct e820_entry_desc){LAYOUT_HIGH_MEM_START, low_end - LAYOUT_HIGH_MEM_START, E820_TYPE_RAM};
	for (unsigned i = 1; i < mem->nregions; i++)
		out[n++] = (struct e820_entry_desc){mem->regions[i].gpa, mem->regions[i].size, E820_TYPE_RAM};
	return n;
}
