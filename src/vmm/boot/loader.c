#include "vmm/boot/loader.h"

#include <string.h>

#include "vmm/arch/x86/e820.h"
#include "vmm/arch/x86/layout.h"

#define LOADER_TYPE_UNDEFINED 0xff

static int load_segments(const struct guest_memory *mem, const struct kernel_image *img, const struct blob *kernel,
			 const struct boot_config *cfg, struct err **e)
{
	uint64_t low_end = guest_memory_low_end(mem);

	if (img->load_end > low_end)
		return err_setx(e, EFBIG, "kernel '%s': needs guest memory up to %llu MiB, the guest has %llu MiB below 3 GiB",
				cfg->kernel_name, (unsigned long long)((img->load_end + MiB - 1) >> 20),
				(unsigned long long)(low_end >> 20));
	for (unsigned i = 0; i < img->nsegments; i++) {
		const struct kernel_segment *s = &img->segments[i];
		uint8_t *dst = guest_memory_ptr(mem, s->paddr, s->mem_size);

		int r;

		if (dst == NULL || s->file_offset > kernel->len || s->file_size > kernel->len - s->file_offset)
			return err_setx(e, EFBIG, "kernel '%s': segment at 0x%llx (%llu bytes) is outside guest memory",
					cfg->kernel_name, (unsigned long long)s->paddr, (unsigned long long)s->mem_size);
		r = blob_copy(kernel, s->file_offset, dst, s->file_size);
		if (r < 0)
			return err_set(e, -r, "kernel '%s': read", cfg->kernel_name);
		memset(dst + s->file_size, 0, s->mem_size - s->file_size);
	}
	return 0;
}

/* Put the initrd as high as the kernel allows, page-aligned. */
static int load_initrd(const struct guest_memory *mem, const struct kernel_image *img, const struct boot_config *cfg,
		       uint64_t *ret_addr, struct err **e)
{
	uint64_t limit = guest_memory_low_end(mem), addr, len = cfg->initrd->len;
	void *dst;
	int r;

	if (img->initrd_addr_max + 1 < limit)
		limit = img->initrd_addr_max + 1;
	if (len == 0)
		return err_setx(e, EINVAL, "initrd '%s': file is empty", cfg->initrd_name);
	if (len > limit || ALIGN_DOWN(limit - len, 4096ULL) < ALIGN_UP(img->load_end, 4096ULL))
		return err_setx(e, EFBIG, "initrd '%s': %llu MiB does not fit in guest memory above the kernel",
				cfg->initrd_name, (unsigned long long)((len + MiB - 1) >> 20));
	addr = ALIGN_DOWN(limit - len, 4096ULL);
	dst = guest_memory_ptr(mem, addr, len);
	if (dst == NULL)
		return err_setx(e, EFBIG, "initrd '%s': does not fit in guest memory", cfg->initrd_name);
	r = blob_copy(cfg->initrd, 0, dst, len);
	if (r < 0)
		return err_set(e, -r, "initrd '%s': read", cfg->initrd_name);
	*ret_addr = addr;
	return 0;
}

static int write_boot_params(const struct guest_memory *mem, const struct kernel_image *img,
			     const struct boot_config *cfg, uint64_t initrd_addr, struct err **e)
{
	struct boot_params *bp = guest_memory_ptr(mem, LAYOUT_ZERO_PAGE_ADDR, sizeof(*bp));
	struct e820_entry_desc map[E820_MAX];
	unsigned n = e820_build(mem, map);

	if (bp == NULL)
		return err_setx(e, EFAULT, "boot_params: outside guest memory");
	memset(bp, 0, sizeof(*bp));
	if (img->format == KERNEL_FORMAT_BZIMAGE) {
		memcpy(&bp->hdr, &img->hdr, img->hdr_len);
	} else {
		/* A vmlinux has no setup header: describe ourselves as protocol 2.15. */
		bp->hdr.boot_flag = 0xaa55;
		bp->hdr.header = 0x53726448;
		bp->hdr.version = 0x020f;
		bp->hdr.kernel_alignment = 0x1000000;
	}
	bp->hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
	bp->hdr.loadflags |= LOADED_HIGH | CAN_USE_HEAP | KEEP_SEGMENTS;
	bp->hdr.heap_end_ptr = 0xfe00;
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE_ADDR;
	bp->ext_cmd_line_ptr = 0;
	bp->hdr.cmdline_size = (uint32_t)strlen(cfg->cmdline) + 1;
	if (initrd_addr) {
		bp->hdr.ramdisk_image = (uint32_t)initrd_addr;
		bp->ext_ramdisk_image = (uint32_t)(initrd_addr >> 32);
		bp->hdr.ramdisk_size = (uint32_t)cfg->initrd->len;
		bp->ext_ramdisk_size = (uint32_t)((uint64_t)cfg->initrd->len >> 32);
	}
	bp->acpi_rsdp_addr = cfg->rsdp_addr;
	for (unsigned i = 0; i < n; i++) {
		bp->e820_table[i].addr = map[i].addr;
		bp->e820_table[i].size = map[i].size;
		bp->e820_table[i].type = map[i].type;
	}
	bp->e820_entries = (uint8_t)n;
	return 0;
}

static int write_pvh_info(const struct guest_memory *mem, const struct boot_config *cfg, uint64_t initrd_addr,
			  struct err **e)
{
	struct hvm_start_info *si = guest_memory_ptr(mem, LAYOUT_PVH_INFO_ADDR, sizeof(*si));
	struct hvm_memmap_table_entry *mm =
		guest_memory_ptr(mem, LAYOUT_PVH_MEMMAP_ADDR, sizeof(*mm) * LAYOUT_PVH_MEMMAP_MAX);
	struct hvm_modlist_entry *mod = guest_memory_ptr(mem, LAYOUT_PVH_MODLIST_ADDR, sizeof(*mod));
	struct e820_entry_desc map[E820_MAX];
	unsigned n = e820_build(mem, map);

	if (si == NULL || mm == NULL || mod == NULL)
		return err_setx(e, EFAULT, "hvm_start_info: outside guest memory");
	memset(si, 0, sizeof(*si));
	si->magic = HVM_START_MAGIC;
	si->version = 1; /* version 1 carries the memory map */
	si->cmdline_paddr = LAYOUT_CMDLINE_ADDR;
	si->rsdp_paddr = cfg->rsdp_addr;
	for (unsigned i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_table_entry){ .addr = map[i].addr, .size = map[i].size, .type = map[i].type };
	si->memmap_paddr = LAYOUT_PVH_MEMMAP_ADDR;
	si->memmap_entries = n;
	if (initrd_addr) {
		*mod = (struct hvm_modlist_entry){ .paddr = initrd_addr, .size = cfg->initrd->len };
		si->nr_modules = 1;
		si->modlist_paddr = LAYOUT_PVH_MODLIST_ADDR;
	}
	return 0;
}

int boot_load(const struct guest_memory *mem, const struct kernel_image *img, const struct blob *kernel,
	      const struct boot_config *cfg, struct boot_entry *ret, struct err **e)
{
	size_t cmdline_len = strlen(cfg->cmdline);
	uint64_t initrd_addr = 0;
	int r;

	if (cmdline_len > img->cmdline_max || cmdline_len >= LAYOUT_CMDLINE_MAX)
		return err_setx(e, E2BIG, "command line: %zu bytes exceed the kernel's limit of %u", cmdline_len,
				img->cmdline_max);
	r = load_segments(mem, img, kernel, cfg, e);
	if (r < 0)
		return r;
	if (guest_memory_write(mem, LAYOUT_CMDLINE_ADDR, cfg->cmdline, cmdline_len + 1) < 0)
		return err_setx(e, EFAULT, "command line: outside guest memory");
	if (cfg->initrd) {
		r = load_initrd(mem, img, cfg, &initrd_addr, e);
		if (r < 0)
			return r;
	}
	if (img->entry_kind == KERNEL_ENTRY_PVH) {
		r = write_pvh_info(mem, cfg, initrd_addr, e);
		ret->boot_info = LAYOUT_PVH_INFO_ADDR;
	} else {
		r = write_boot_params(mem, img, cfg, initrd_addr, e);
		ret->boot_info = LAYOUT_ZERO_PAGE_ADDR;
	}
	if (r < 0)
		return r;
	ret->kind = img->entry_kind;
	ret->entry = img->entry;
	ret->initrd_addr = initrd_addr;
	return 0;
}
