/*
 * Fuzz target: the multiboot header parser (header search, flags, the
 * a.out kludge's address fields, ELF32/ELF64 segments) and, for images it
 * accepts, the loader that places them with an initrd and a module and
 * writes the multiboot information into a small guest memory.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/boot/loader.h"
#include "vmm/boot/multiboot.h"
#include "vmm/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_memory mem;
	static int ready;
	struct kernel_image img;
	struct boot_entry entry;
	struct err *e = NULL;
	struct blob blob = blob_from_buffer(data, size), part = blob_from_buffer(data, size < 64 ? size : 64);
	struct boot_module mods[] = {{"fuzz-module", "fuzz-module arg", &part}};
	struct boot_config cfg = {"fuzz",  "fuzz-initrd", "console=ttyS0", size ? &part : NULL,
				  0xe0000, mods,	  size ? 1 : 0,	   "fuzz"};

	if (!ready) {
		if (guest_memory_create(&mem, 64ULL << 20, &e) < 0)
			return 0;
		ready = 1;
	}
	if (multiboot_parse(data, size, &img, &e) == 0)
		(void)!boot_load(&mem, &img, &blob, &cfg, &entry, &e);
	err_free(&e);
	return 0;
}
