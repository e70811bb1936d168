/*
 * x86 bzImage parser.  Casulo enters the kernel at its 64-bit entry point
 * (startup_64, 0x200 bytes into the protected-mode part), so the real-mode
 * setup code is never run and only the setup header is needed.
 * Documentation/arch/x86/boot.rst is the reference.
 */
#include "vmm/boot/kernel-image.h"
#include "vmm/boot/multiboot.h"

#include <string.h>

#include "vmm/arch/x86/layout.h"

#define SETUP_HEADER_OFFSET 0x1f1
#define HDRS_MAGIC 0x53726448 /* "HdrS" */
#define BOOT_FLAG_MAGIC 0xaa55
#define STARTUP_64_OFFSET 0x200
#define DEFAULT_SETUP_SECTS 4

static uint32_t le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int bzimage_parse(const uint8_t *buf, size_t len, struct kernel_image *img, struct err **e)
{
	const struct setup_header *hdr;
	size_t setup_size, hdr_end, payload_len;
	uint64_t load, need;
	unsigned sects;

	memset(img, 0, sizeof(*img));
	if (len < SETUP_HEADER_OFFSET + sizeof(struct setup_header))
		return err_setx(e, ENOEXEC, "truncated: %zu bytes is too short for a bzImage header", len);
	hdr = (const struct setup_header *)(buf + SETUP_HEADER_OFFSET);
	if (le32_at((const uint8_t *)&hdr->header) != HDRS_MAGIC)
		return err_setx(e, ENOEXEC, "bad magic: no 'HdrS' setup header (not a bzImage)");
	if (hdr->boot_flag != BOOT_FLAG_MAGIC)
		return err_setx(e, ENOEXEC, "bad magic: boot flag is 0x%04x, not 0xaa55", hdr->boot_flag);
	img->protocol = hdr->version;
	if (hdr->version < BZIMAGE_MIN_PROTOCOL)
		return err_setx(e, ENOEXEC, "boot protocol %u.%02u is older than 2.06", hdr->version >> 8,
				hdr->version & 0xff);
	if (!(hdr->loadflags & LOADED_HIGH))
		return err_setx(e, ENOEXEC, "not a bzImage: zImage kernels (loaded low) are not supported");
	if (hdr->version >= 0x020c && !(hdr->xloadflags & XLF_KERNEL_64))
		return err_setx(e, ENOEXEC, "kernel has no 64-bit entry point (XLF_KERNEL_64 clear)");

	sects = hdr->setup_sects ? hdr->setup_sects : DEFAULT_SETUP_SECTS;
	setup_size = ((size_t)sects + 1) * 512;
	if (setup_size >= len)
		return err_setx(e, ENOEXEC, "truncated: setup code (%zu bytes) fills the whole %zu-byte file",
				setup_size, len);
	payload_len = len - setup_size;
	if (payload_len <= STARTUP_64_OFFSET)
		return err_setx(e, ENOEXEC, "truncated: protected-mode part of %zu bytes has no 64-bit entry",
				payload_len);
	if (hdr->version >= 0x0208 && hdr->payload_length != 0 &&
	    (uint64_t)hdr->payload_offset + hdr->payload_length > payload_len)
		return err_setx(e, ENOEXEC, "truncated: compressed payload runs %llu bytes past the end of the file",
				(unsigned long long)hdr->payload_offset + hdr->payload_length - payload_len);

	/* The header ends where the jump at 0x200 lands: 0x202 + its offset byte. */
	hdr_end = 0x202 + (size_t)buf[0x201];
	if (hdr_end < SETUP_HEADER_OFFSET + offsetof(struct setup_header, jump) ||
	    hdr_end > SETUP_HEADER_OFFSET + sizeof(struct setup_header))
		hdr_end = SETUP_HEADER_OFFSET + sizeof(struct setup_header);
	img->hdr_len = hdr_end - SETUP_HEADER_OFFSET;
	memcpy(&img->hdr, hdr, img->hdr_len);

	if (hdr->version >= 0x020a && hdr->pref_address >= LAYOUT_HIGH_MEM_START &&
	    hdr->pref_address < LAYOUT_MMIO_HOLE_START)
		load = hdr->pref_address;
	else
		load = LAYOUT_HIGH_MEM_START;
	/* init_size covers the decompressor's working area and the unpacked kernel. */
	need = payload_len;
	if (hdr->version >= 0x020a && hdr->init_size > need)
		need = hdr->init_size;

	img->format = KERNEL_FORMAT_BZIMAGE;
	img->entry_kind = KERNEL_ENTRY_64BIT;
	img->entry = load + STARTUP_64_OFFSET;
	img->nsegments = 1;
	img->segments[0] = (struct kernel_segment){
	    .file_offset = setup_size,
	    .paddr = load,
	    .file_size = payload_len,
	    .mem_size = payload_len,
	};
	img->load_start = load;
	img->load_end = load + need;
	img->initrd_addr_max = hdr->version >= 0x0203 ? hdr->initrd_addr_max : 0x37ffffff;
	img->cmdline_max = hdr->version >= 0x0206 ? hdr->cmdline_size : 255;
	img->initrd_above_4g = hdr->version >= 0x020c && (hdr->xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G);
	return 0;
}

const char *kernel_format_name(enum kernel_format f)
{
	return f == KERNEL_FORMAT_BZIMAGE ? "bzImage" : f == KERNEL_FORMAT_MULTIBOOT ? "multiboot" : "ELF";
}

int kernel_image_parse(const uint8_t *buf, size_t len, struct kernel_image *img, struct err **e)
{
	size_t mb_offset;

	/* The "HdrS" magic sits at 0x202, ahead of the header's end: a
	 * truncated bzImage is still recognised as one. */
	if (len >= 0x206 && le32_at(buf + 0x202) == HDRS_MAGIC &&
	    memcmp(buf,
		   "\x7f"
		   "ELF",
		   4) != 0)
		return bzimage_parse(buf, len, img, e);
	/* A multiboot header says how the kernel wants to be booted, even in
	 * an ELF (a vmlinux never has one). */
	if (multiboot_find_header(buf, len, &mb_offset) != 0)
		return multiboot_parse(buf, len, img, e);
	if (len >= 4 && memcmp(buf,
			       "\x7f"
			       "ELF",
			       4) == 0)
		return elf_kernel_parse(buf, len, img, e);
	if (len < 4)
		return err_setx(e, ENOEXEC, "truncated: %zu bytes is not a kernel image", len);
	return err_setx(e, ENOEXEC, "bad magic: neither a bzImage ('HdrS'), an ELF vmlinux nor a multiboot image");
}
