/*
 * Places a parsed kernel, its initrd and command line into guest memory
 * and writes the boot information its entry point expects: boot_params
 * (the "zero page") for the 64-bit entry, hvm_start_info for PVH, the
 * multiboot information (with the modules) for a multiboot kernel.
 */
#ifndef CASULO_VMM_BOOT_LOADER_H
#define CASULO_VMM_BOOT_LOADER_H

#include "common/err.h"
#include "vmm/boot/blob.h"
#include "vmm/boot/kernel-image.h"
#include "vmm/memory.h"

#define BOOT_MAX_MODULES 16

/* A multiboot module: --initrd is module 0, then each --module. */
struct boot_module {
	const char *name;   /* for messages */
	const char *string; /* its command line in the multiboot information */
	const struct blob *data;
};

struct boot_config {
	const char *kernel_name; /* for messages */
	const char *initrd_name;
	const char *cmdline;
	const struct blob *initrd; /* NULL for none */
	uint64_t rsdp_addr;	   /* 0 if the guest has no ACPI tables */
	/* Multiboot kernels only: the modules, the initrd first when there is one. */
	const struct boot_module *modules;
	unsigned nmodules;
	const char *loader_name; /* the multiboot boot_loader_name */
};

struct boot_entry {
	enum kernel_entry kind;
	uint64_t entry;	      /* rip */
	uint64_t boot_info;   /* %rsi (boot_params), %ebx (hvm_start_info, multiboot information) */
	uint64_t initrd_addr; /* 0 when there is no initrd */
	uint64_t cmdline_addr;
};

/* Does the kernel fit the RAM below the MMIO hole?  mem may be a layout
 * only (guest_memory_layout()), to check before building the VM. */
int boot_check_kernel_fits(const struct guest_memory *mem, const struct kernel_image *img, const char *name,
			   struct err **e);
int boot_load(const struct guest_memory *mem, const struct kernel_image *img, const struct blob *kernel,
	      const struct boot_config *cfg, struct boot_entry *ret, struct err **e) MUST_CHECK;

/* PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h). */
#define HVM_START_MAGIC 0x336ec578
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};
struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

#endif
