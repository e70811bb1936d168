#include "vmm/arch/x86/reset-vector.h"

#include <string.h>

#include "vmm/arch/x86/layout.h"

int reset_vector_write(const struct guest_memory *mem, struct err **e)
{
	/* Real mode, at f000:fff0. */
	static const uint8_t code[] = {
	    0xb0,
	    ACPI_RESET_VALUE, /* mov al, 1 */
	    0xba,
	    PORT_ACPI_RESET & 0xff,
	    PORT_ACPI_RESET >> 8, /* mov dx, 0x602 */
	    0xee,		  /* out dx, al */
	    0xfa,
	    0xf4, /* 1: cli; hlt */
	    0xeb,
	    0xfc, /* jmp 1b */
	};
	uint8_t *p = guest_memory_ptr(mem, LAYOUT_RESET_VECTOR, LAYOUT_HIGH_MEM_START - LAYOUT_RESET_VECTOR);

	if (p == NULL)
		return err_setx(e, EFAULT, "reset vector: 0x%llx is outside guest memory", LAYOUT_RESET_VECTOR);
	memset(p, 0, LAYOUT_HIGH_MEM_START - LAYOUT_RESET_VECTOR);
	memcpy(p, code, sizeof(code));
	return 0;
}
