/*
 * Kernel image parsers: x86 bzImage (boot protocol 2.06+), ELF64
 * vmlinux and multiboot v1 (multiboot.h).  They work on an in-memory copy of the file and never trust it:
 * every offset and size is checked against the buffer, so they can be
 * fuzzed directly (fuzz/fuzz-kernel-image.c).
 */
#ifndef CASULO_VMM_BOOT_KERNEL_IMAGE_H
#define CASULO_VMM_BOOT_KERNEL_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <asm/bootparam.h>

#include "common/err.h"

enum kernel_format { KERNEL_FORMAT_BZIMAGE, KERNEL_FORMAT_ELF, KERNEL_FORMAT_MULTIBOOT };
/* 64-bit: long mode, %rsi = boot_params.  PVH: 32-bit protected mode,
 * %ebx = hvm_start_info.  Multiboot: 32-bit protected mode, %eax =
 * 0x2BADB002, %ebx = the multiboot information. */
enum kernel_entry { KERNEL_ENTRY_64BIT, KERNEL_ENTRY_PVH, KERNEL_ENTRY_MULTIBOOT };

#define KERNEL_MAX_SEGMENTS 16
#define BZIMAGE_MIN_PROTOCOL 0x0206

struct kernel_segment {
	uint64_t file_offset;
	uint64_t paddr;
	uint64_t file_size;
	uint64_t mem_size;
};

struct kernel_image {
	enum kernel_format format;
	enum kernel_entry entry_kind;
	uint64_t entry; /* guest-physical entry point */
	unsigned nsegments;
	struct kernel_segment segments[KERNEL_MAX_SEGMENTS];
	uint64_t load_start; /* lowest guest-physical byte written */
	uint64_t load_end;   /* one past the highest byte the kernel needs */

	/* bzImage only */
	struct setup_header hdr;  /* copied into boot_params */
	size_t hdr_len;		  /* bytes of setup header the image defines */
	uint16_t protocol;	  /* e.g. 0x020f */
	uint64_t initrd_addr_max; /* highest address the initrd may end at */
	uint32_t cmdline_max;	  /* longest command line, NUL excluded */
	bool initrd_above_4g;	  /* XLF_CAN_BE_LOADED_ABOVE_4G */

	/* multiboot only */
	uint32_t multiboot_flags; /* the header's */
};

/* Guess the format from magic numbers and parse. */
int kernel_image_parse(const uint8_t *buf, size_t len, struct kernel_image *img, struct err **e) MUST_CHECK;
int bzimage_parse(const uint8_t *buf, size_t len, struct kernel_image *img, struct err **e) MUST_CHECK;
int elf_kernel_parse(const uint8_t *buf, size_t len, struct kernel_image *img, struct err **e) MUST_CHECK;
/* An x86 ELF executable's (32- or 64-bit) loadable segments into img
 * (segments, load_start, load_end); *entry is e_entry made physical, or
 * UINT64_MAX when no segment holds it; *elf_class ELFCLASS32 or 64. */
int elf_segments(const uint8_t *buf, size_t len, struct kernel_image *img, uint64_t *entry, unsigned *elf_class,
		 struct err **e) MUST_CHECK;

const char *kernel_format_name(enum kernel_format f);

#endif
