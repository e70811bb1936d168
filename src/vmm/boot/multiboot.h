/*
 * Multiboot version 1: the kernel's header (multiboot.c parses it) and
 * the information structure the boot loader hands over (loader.c writes
 * it).  The Multiboot Specification 0.6.96, sections 3.1 and 3.3.
 */
#ifndef CASULO_VMM_BOOT_MULTIBOOT_H
#define CASULO_VMM_BOOT_MULTIBOOT_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/boot/kernel-image.h"

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002 /* in %eax at the entry */
#define MULTIBOOT_SEARCH_LEN 8192

/* Header flags: 0-15 are requirements, 16-31 optional features. */
#define MULTIBOOT_FLAG_PAGE_ALIGN 0x00000001u
#define MULTIBOOT_FLAG_MEMORY_INFO 0x00000002u
#define MULTIBOOT_FLAG_VIDEO_MODE 0x00000004u
#define MULTIBOOT_FLAG_AOUT_KLUDGE 0x00010000u
#define MULTIBOOT_REQUIRED_MASK 0x0000ffffu

/* Information structure flags: which fields are valid. */
#define MULTIBOOT_INFO_MEMORY 0x00000001u
#define MULTIBOOT_INFO_CMDLINE 0x00000004u
#define MULTIBOOT_INFO_MODS 0x00000008u
#define MULTIBOOT_INFO_MEM_MAP 0x00000040u
#define MULTIBOOT_INFO_BOOT_LOADER_NAME 0x00000200u

/* The information structure (all fields little-endian, 32-bit). */
struct multiboot_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper; /* KiB below 640 KiB, and from 1 MiB to the first hole */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe[6];
	uint32_t framebuffer[7];
} __attribute__((packed));

struct multiboot_module {
	uint32_t mod_start, mod_end; /* [start, end) */
	uint32_t string;	     /* its command line */
	uint32_t reserved;
} __attribute__((packed));

/* A memory map entry: size counts the bytes after itself (20). */
struct multiboot_mmap_entry {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

/* Where a valid header (magic and checksum) sits in the first 8 KiB:
 * 1 and *offset; -1 and the first magic's *offset when every magic found
 * has a bad checksum; 0 when there is no magic at all. */
int multiboot_find_header(const uint8_t *buf, size_t len, size_t *offset);
/* Parse a multiboot kernel into img (format KERNEL_FORMAT_MULTIBOOT). */
int multiboot_parse(const uint8_t *buf, size_t len, struct kernel_image *img, struct err **e);

#endif
