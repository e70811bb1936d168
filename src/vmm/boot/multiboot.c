/*
 * Multiboot (version 1) kernel images, as GRUB legacy and QEMU's -kernel
 * load them: a header in the first 8 KiB, 4-byte aligned, whose magic,
 * flags and checksum sum to 0.  The kernel loads either as an ELF (32- or
 * 64-bit; segments at their physical addresses) or, with flag 16 (the
 * "a.out kludge"), from the header's address fields:
 *
 *   header_addr    where the header itself lands; fixes the file offset
 *                  that load_addr comes from
 *   load_addr      start of the image in memory
 *   load_end_addr  end of the bytes loaded from the file (0: to its end)
 *   bss_end_addr   end of the zeroed memory after them (0: none)
 *   entry_addr     where the boot loader jumps
 *
 * Flags 0-15 are requirements: 0 (modules page-aligned) and 1 (memory
 * information) are always honoured, 2 (a video mode) cannot be, and an
 * unknown one must not be ignored (the specification says so).  Like the
 * other image parsers this never trusts the file: pure, fuzzed
 * (fuzz/fuzz-multiboot.c).
 */
#include "vmm/boot/multiboot.h"

#include <elf.h>
#include <string.h>

#include "vmm/arch/x86/layout.h"

#define HEADER_MIN_LEN 12  /* magic, flags, checksum */
#define HEADER_AOUT_LEN 32 /* ... and the five address fields */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int multiboot_find_header(const uint8_t *buf, size_t len, size_t *offset)
{
	size_t end = MIN(len, (size_t)MULTIBOOT_SEARCH_LEN);
	int found = 0;

	for (size_t off = 0; off + HEADER_MIN_LEN <= end; off += 4) {
		if (le32(buf + off) != MULTIBOOT_HEADER_MAGIC)
			continue;
		if ((uint32_t)(le32(buf + off) + le32(buf + off + 4) + le32(buf + off + 8)) == 0) {
			*offset = off;
			return 1;
		}
		if (!found)
			*offset = off;
		found = -1;
	}
	return found;
}

/* The image as the a.out kludge's address fields place it. */
static int parse_aout(const uint8_t *buf, size_t len, size_t hdr_off, struct kernel_image *img, struct err **e)
{
	const uint8_t *h = buf + hdr_off;
	uint64_t header_addr, load_addr, load_end, bss_end, entry, file_off, file_size, mem_size;

	if (len - hdr_off < HEADER_AOUT_LEN)
		return err_setx(e, ENOEXEC,
				"truncated: the multiboot header's address fields lie past the end of the file");
	header_addr = le32(h + 12);
	load_addr = le32(h + 16);
	load_end = le32(h + 20);
	bss_end = le32(h + 24);
	entry = le32(h + 28);
	if (header_addr < load_addr || header_addr - load_addr > hdr_off)
		return err_setx(
		    e, ENOEXEC,
		    "multiboot header_addr 0x%llx and load_addr 0x%llx do not fit the header's file offset 0x%zx",
		    (unsigned long long)header_addr, (unsigned long long)load_addr, hdr_off);
	file_off = hdr_off - (header_addr - load_addr);
	if (load_end == 0) {
		file_size = len - file_off;
	} else {
		if (load_end < load_addr)
			return err_setx(e, ENOEXEC, "multiboot load_end_addr 0x%llx is below load_addr 0x%llx",
					(unsigned long long)load_end, (unsigned long long)load_addr);
		file_size = load_end - load_addr;
		if (file_size > len - file_off)
			return err_setx(e, ENOEXEC,
					"truncated: multiboot load_end_addr 0x%llx lies past the end of the file",
					(unsigned long long)load_end);
	}
	mem_size = file_size;
	if (bss_end != 0) {
		if (bss_end < load_addr + file_size)
			return err_setx(e, ENOEXEC,
					"multiboot bss_end_addr 0x%llx is below the loaded data's end 0x%llx",
					(unsigned long long)bss_end, (unsigned long long)(load_addr + file_size));
		mem_size = bss_end - load_addr;
	}
	if (mem_size == 0)
		return err_setx(e, ENOEXEC, "multiboot image loads nothing");
	if (entry < load_addr || entry - load_addr >= mem_size)
		return err_setx(e, ENOEXEC, "multiboot entry_addr 0x%llx lies outside the image (0x%llx-0x%llx)",
				(unsigned long long)entry, (unsigned long long)load_addr,
				(unsigned long long)(load_addr + mem_size));
	img->segments[0] = (struct kernel_segment){
	    .file_offset = file_off,
	    .paddr = load_addr,
	    .file_size = file_size,
	    .mem_size = mem_size,
	};
	img->nsegments = 1;
	img->load_start = load_addr;
	img->load_end = load_addr + mem_size;
	img->entry = entry;
	return 0;
}

static int parse_elf(const uint8_t *buf, size_t len, struct kernel_image *img, struct err **e)
{
	uint64_t entry;
	unsigned elf_class;
	int r = elf_segments(buf, len, img, &entry, &elf_class, e);

	if (r < 0)
		return r;
	if (entry == UINT64_MAX)
		return err_setx(e, ENOEXEC, "entry point lies outside the loaded segments");
	img->entry = entry;
	return 0;
}

int multiboot_parse(const uint8_t *buf, size_t len, struct kernel_image *img, struct err **e)
{
	size_t off = 0;
	uint32_t flags, unknown;
	int found = multiboot_find_header(buf, len, &off);
	int r;

	memset(img, 0, sizeof(*img));
	if (found == 0)
		return err_setx(e, ENOEXEC, "no multiboot header in the first %d bytes", MULTIBOOT_SEARCH_LEN);
	if (found < 0)
		return err_setx(e, ENOEXEC, "multiboot header at offset 0x%zx: bad checksum", off);
	flags = le32(buf + off + 4);
	if (flags & MULTIBOOT_FLAG_VIDEO_MODE)
		return err_setx(e, ENOTSUP,
				"multiboot header asks for a video mode (flag 2): casulo-vmm has no display");
	unknown = flags & MULTIBOOT_REQUIRED_MASK & ~(MULTIBOOT_FLAG_PAGE_ALIGN | MULTIBOOT_FLAG_MEMORY_INFO);
	if (unknown)
		return err_setx(e, ENOTSUP, "multiboot header requires flag %d, which casulo-vmm does not know",
				__builtin_ctz(unknown));
	if (flags & MULTIBOOT_FLAG_AOUT_KLUDGE)
		r = parse_aout(buf, len, off, img, e);
	else if (len >= 4 && memcmp(buf, ELFMAG, SELFMAG) == 0)
		r = parse_elf(buf, len, img, e);
	else
		return err_setx(e, ENOEXEC, "multiboot image is not an ELF and has no address fields (flag 16)");
	if (r < 0)
		return r;
	/* 32-bit protected mode without paging: everything below the MMIO hole. */
	if (img->load_start < LAYOUT_HIGH_MEM_START)
		return err_setx(e, ENOEXEC, "multiboot image loads at 0x%llx, below 1 MiB where the boot data lives",
				(unsigned long long)img->load_start);
	if (img->load_end > LAYOUT_MMIO_HOLE_START)
		return err_setx(e, ENOEXEC, "multiboot image ends at 0x%llx, in the MMIO hole at 3-4 GiB",
				(unsigned long long)img->load_end);
	img->format = KERNEL_FORMAT_MULTIBOOT;
	img->entry_kind = KERNEL_ENTRY_MULTIBOOT;
	img->multiboot_flags = flags;
	img->initrd_addr_max = LAYOUT_MMIO_HOLE_START - 1;
	img->cmdline_max = LAYOUT_CMDLINE_MAX - 1;
	return 0;
}
