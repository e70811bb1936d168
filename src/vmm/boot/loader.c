#include "vmm/boot/loader.h"

#include <string.h>

#include "vmm/arch/x86/e820.h"
#include "vmm/arch/x86/layout.h"
#include "vmm/boot/multiboot.h"

#define LOADER_TYPE_UNDEFINED 0xff

int boot_check_kernel_fits(const struct guest_memory *mem, const struct kernel_image *img, const char *name,
			   struct err **e)
{
	uint64_t low_end = guest_memory_low_end(mem);

	if (img->load_end > low_end)
		return err_setx(
		    e, EFBIG, "kernel '%s': needs guest memory up to %llu MiB, the guest has %llu MiB below 3 GiB",
		    name, (unsigned long long)((img->load_end + MiB - 1) >> 20), (unsigned long long)(low_end >> 20));
	return 0;
}

static int load_segments(const struct guest_memory *mem, const struct kernel_image *img, const struct blob *kernel,
			 const struct boot_config *cfg, struct err **e)
{
	int r = boot_check_kernel_fits(mem, img, cfg->kernel_name, e);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < img->nsegments; i++) {
		const struct kernel_segment *s = &img->segments[i];
		uint8_t *dst = guest_memory_ptr(mem, s->paddr, s->mem_size);

		if (dst == NULL || s->file_offset > kernel->len || s->file_size > kernel->len - s->file_offset)
			return err_setx(e, EFBIG, "kernel '%s': segment at 0x%llx (%llu bytes) is outside guest memory",
					cfg->kernel_name, (unsigned long long)s->paddr,
					(unsigned long long)s->mem_size);
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
		mm[i] = (struct hvm_memmap_table_entry){.addr = map[i].addr, .size = map[i].size, .type = map[i].type};
	si->memmap_paddr = LAYOUT_PVH_MEMMAP_ADDR;
	si->memmap_entries = n;
	if (initrd_addr) {
		*mod = (struct hvm_modlist_entry){.paddr = initrd_addr, .size = cfg->initrd->len};
		si->nr_modules = 1;
		si->modlist_paddr = LAYOUT_PVH_MODLIST_ADDR;
	}
	return 0;
}

/* The multiboot information area: the structure, the memory map, the
 * module list, then the strings, each 8-byte aligned. */
struct mb_area {
	uint8_t *base;
	uint64_t used;
};

static uint64_t mb_alloc(struct mb_area *a, uint64_t len)
{
	uint64_t off = ALIGN_UP(a->used, 8ULL);

	if (off > LAYOUT_MULTIBOOT_INFO_SIZE || len > LAYOUT_MULTIBOOT_INFO_SIZE - off)
		return 0;
	a->used = off + len;
	return LAYOUT_MULTIBOOT_INFO_ADDR + off;
}

static uint32_t mb_string(struct mb_area *a, const char *s)
{
	uint64_t at = mb_alloc(a, strlen(s) + 1);

	if (at)
		memcpy(a->base + (at - LAYOUT_MULTIBOOT_INFO_ADDR), s, strlen(s) + 1);
	return (uint32_t)at;
}

/* Modules go above the kernel, each on its own pages (header flag 0 or not). */
static int load_modules(const struct guest_memory *mem, const struct kernel_image *img, const struct boot_module *mods,
			unsigned nmods, struct multiboot_module *list, struct err **e)
{
	uint64_t at = ALIGN_UP(img->load_end, 4096ULL), limit = guest_memory_low_end(mem);

	for (unsigned i = 0; i < nmods; i++) {
		const struct boot_module *m = &mods[i];
		uint64_t len = m->data->len;
		void *dst = len <= limit && at <= limit - len ? guest_memory_ptr(mem, at, len) : NULL;
		int r;

		if (dst == NULL)
			return err_setx(e, EFBIG,
					"module '%s': %llu KiB do not fit in guest memory above the kernel (at 0x%llx)",
					m->name, (unsigned long long)((len + 1023) >> 10), (unsigned long long)at);
		r = blob_copy(m->data, 0, dst, len);
		if (r < 0)
			return err_set(e, -r, "module '%s': read", m->name);
		list[i].mod_start = (uint32_t)at;
		list[i].mod_end = (uint32_t)(at + len);
		at = ALIGN_UP(at + len, 4096ULL);
	}
	return 0;
}

/* The multiboot information, the modules (the initrd first) and the entry. */
static int load_multiboot(const struct guest_memory *mem, const struct kernel_image *img, const struct boot_config *cfg,
			  struct boot_entry *ret, struct err **e)
{
	struct mb_area a = {guest_memory_ptr(mem, LAYOUT_MULTIBOOT_INFO_ADDR, LAYOUT_MULTIBOOT_INFO_SIZE), 0};
	struct boot_module all[BOOT_MAX_MODULES + 1];
	struct multiboot_module mods[BOOT_MAX_MODULES + 1] = {0};
	struct e820_entry_desc map[E820_MAX];
	unsigned n = e820_build(mem, map), nmods = 0;
	struct multiboot_info info = {0};
	uint64_t info_at, mmap_at, mods_at;
	int r;

	if (a.base == NULL)
		return err_setx(e, EFAULT, "multiboot information: outside guest memory");
	if (cfg->nmodules > BOOT_MAX_MODULES)
		return err_setx(e, E2BIG, "multiboot: %u modules, at most %d", cfg->nmodules, BOOT_MAX_MODULES);
	/* --initrd is module 0, its string the file's name. */
	if (cfg->initrd)
		all[nmods++] = (struct boot_module){cfg->initrd_name, cfg->initrd_name, cfg->initrd};
	for (unsigned i = 0; i < cfg->nmodules; i++)
		all[nmods++] = cfg->modules[i];
	memset(a.base, 0, LAYOUT_MULTIBOOT_INFO_SIZE);
	r = load_modules(mem, img, all, nmods, mods, e);
	if (r < 0)
		return r;
	info_at = mb_alloc(&a, sizeof(info));
	mmap_at = mb_alloc(&a, n * sizeof(struct multiboot_mmap_entry));
	mods_at = mb_alloc(&a, nmods * sizeof(struct multiboot_module));
	for (unsigned i = 0; i < n; i++) {
		struct multiboot_mmap_entry m = {
		    .size = sizeof(m) - 4, .addr = map[i].addr, .len = map[i].size, .type = map[i].type};
		memcpy(a.base + (mmap_at - LAYOUT_MULTIBOOT_INFO_ADDR) + i * sizeof(m), &m, sizeof(m));
	}
	for (unsigned i = 0; i < nmods; i++) {
		mods[i].string = mb_string(&a, all[i].string ? all[i].string : all[i].name);
		if (mods[i].string == 0)
			return err_setx(e, E2BIG, "multiboot: the modules' command lines take more than %llu KiB",
					LAYOUT_MULTIBOOT_INFO_SIZE >> 10);
	}
	if (nmods)
		memcpy(a.base + (mods_at - LAYOUT_MULTIBOOT_INFO_ADDR), mods, nmods * sizeof(mods[0]));
	/* Lower memory ends at the EBDA; upper memory runs from 1 MiB to the hole. */
	info.flags = MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE | MULTIBOOT_INFO_MODS | MULTIBOOT_INFO_MEM_MAP |
		     MULTIBOOT_INFO_BOOT_LOADER_NAME;
	info.mem_lower = (uint32_t)(LAYOUT_EBDA_ADDR >> 10);
	info.mem_upper = (uint32_t)((guest_memory_low_end(mem) - LAYOUT_HIGH_MEM_START) >> 10);
	info.cmdline = (uint32_t)LAYOUT_CMDLINE_ADDR;
	info.mods_count = nmods;
	info.mods_addr = (uint32_t)mods_at;
	info.mmap_length = (uint32_t)(n * sizeof(struct multiboot_mmap_entry));
	info.mmap_addr = (uint32_t)mmap_at;
	info.boot_loader_name = mb_string(&a, cfg->loader_name ? cfg->loader_name : "casulo-vmm");
	if (info_at == 0 || mmap_at == 0 || (nmods && mods_at == 0) || info.boot_loader_name == 0)
		return err_setx(e, E2BIG, "multiboot information: more than %llu KiB",
				LAYOUT_MULTIBOOT_INFO_SIZE >> 10);
	memcpy(a.base + (info_at - LAYOUT_MULTIBOOT_INFO_ADDR), &info, sizeof(info));
	ret->kind = KERNEL_ENTRY_MULTIBOOT;
	ret->entry = img->entry;
	ret->boot_info = info_at;
	ret->initrd_addr = cfg->initrd ? mods[0].mod_start : 0;
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
	ret->cmdline_addr = LAYOUT_CMDLINE_ADDR;
	if (img->entry_kind == KERNEL_ENTRY_MULTIBOOT)
		return load_multiboot(mem, img, cfg, ret, e);
	if (cfg->nmodules > 0)
		return err_setx(e, EINVAL, "kernel '%s': %s kernels take no modules (only multiboot kernels do)",
				cfg->kernel_name, kernel_format_name(img->format));
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
