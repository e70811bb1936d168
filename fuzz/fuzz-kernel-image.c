/*
 * Fuzz target: the kernel image parsers (bzImage setup header, ELF64
 * program headers and notes) and, for images they accept, the loader
 * that copies them into a small guest memory.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/boot/kernel-image.h"
#include "vmm/boot/loader.h"
#include "vmm/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_memory mem;
	static int ready;
	struct kernel_image img;
	struct boot_entry entry;
	struct err *e = NULL;
	struct blob blob = blob_from_buffer(data, size);
	struct boot_config cfg = {"fuzz", "fuzz-initrd", "console=ttyS0", &blob, 0xe0000};

	if (!ready) {
		if (guest_memory_create(&mem, 64ULL << 20, &e) < 0)
			return 0;
		ready = 1;
	}
	if (kernel_image_parse(data, size, &img, &e) == 0)
		(void)!boot_load(&mem, &img, &blob, &cfg, &entry, &e); /* errors are expected outcomes */
	err_free(&e);
	return 0;
}
