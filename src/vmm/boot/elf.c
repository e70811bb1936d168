/*
 * ELF64 vmlinux parser.  A vmlinux is entered either at its PVH entry
 * (the Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY: 32-bit protected mode, no
 * paging, %ebx = hvm_start_info) when it has one, or at e_entry, the
 * physical address of startup_64, in 64-bit mode with %rsi = boot_params.
 */
#include "vmm/boot/kernel-image.h"

#include <elf.h>
#include <string.h>

#include "vmm/arch/x86/layout.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* Walk the notes in [p, p+len) looking for the Xen PVH entry. */
static int find_pvh_entry(const uint8_t *p, uint64_t len, uint64_t *entry)
{
	uint64_t off = 0;

	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name_len, desc_len, desc_off;

		memcpy(&nh, p + off, sizeof(nh));
		name_len = ALIGN_UP((uint64_t)nh.n_namesz, 4);
		desc_len = ALIGN_UP((uint64_t)nh.n_descsz, 4);
		desc_off = off + sizeof(nh) + name_len;
		if (desc_off > len || desc_len > len - desc_off)
			return 0;
		if (nh.n_namesz == 4 && memcmp(p + off + sizeof(nh), "Xen", 4) == 0 &&
		    nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY) {
			if (nh.n_descsz == 4) {
				uint32_t v;
				memcpy(&v, p + desc_off, 4);
				*entry = v;
				return 1;
			}
			if (nh.n_descsz == 8) {
				uint64_t v;
				memcpy(&v, p + desc_off, 8);
				*entry = v;
				return 1;
			}
			return 0;
		}
		off = desc_off + desc_len;
	}
	return 0;
}

int elf_kernel_parse(const uint8_t *buf, size_t len, struct kernel_image *img, struct err **e)
{
	Elf64_Ehdr eh;
	uint64_t lo = UINT64_MAX, hi = 0, pvh_entry = 0;
	bool has_pvh = false, entry_loaded = false;

	memset(img, 0, sizeof(*img));
	if (len < sizeof(eh))
		return err_setx(e, ENOEXEC, "truncated: %zu bytes is too short for an ELF header", len);
	memcpy(&eh, buf, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
		return err_setx(e, ENOEXEC, "bad magic: not an ELF file");
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
		return err_setx(e, ENOEXEC, "not a 64-bit little-endian ELF");
	if (eh.e_machine != EM_X86_64)
		return err_setx(e, ENOEXEC, "ELF machine %u is not x86_64", eh.e_machine);
	if (eh.e_type != ET_EXEC)
		return err_setx(e, ENOEXEC, "ELF type %u is not an executable", eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0)
		return err_setx(e, ENOEXEC, "ELF has no usable program headers");
	if (eh.e_phoff > len || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
		return err_setx(e, ENOEXEC, "truncated: program headers lie past the end of the file");

	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, buf + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_NOTE) {
			if (ph.p_offset <= len && ph.p_filesz <= len - ph.p_offset && !has_pvh)
				has_pvh = find_pvh_entry(buf + ph.p_offset, ph.p_filesz, &pvh_entry);
			continue;
		}
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (img->nsegments == KERNEL_MAX_SEGMENTS)
			return err_setx(e, ENOEXEC, "ELF has more than %d loadable segments", KERNEL_MAX_SEGMENTS);
		if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
			return err_setx(e, ENOEXEC, "truncated: segment %u runs past the end of the file", i);
		if (ph.p_filesz > ph.p_memsz)
			return err_setx(e, ENOEXEC, "segment %u: file size exceeds memory size", i);
		if (ph.p_paddr > UINT64_MAX - ph.p_memsz)
			return err_setx(e, ENOEXEC, "segment %u: address range wraps around", i);
		if (ph.p_paddr < LAYOUT_HIGH_MEM_START)
			return err_setx(e, ENOEXEC, "segment %u: loads at 0x%llx, below 1 MiB where the boot data lives",
					i, (unsigned long long)ph.p_paddr);
		img->segments[img->nsegments++] = (struct kernel_segment){
			.file_offset = ph.p_offset, .paddr = ph.p_paddr,
			.file_size = ph.p_filesz, .mem_size = ph.p_memsz,
		};
		lo = MIN(lo, ph.p_paddr);
		hi = MAX(hi, ph.p_paddr + ph.p_memsz);
		if (eh.e_entry >= ph.p_paddr && eh.e_entry - ph.p_paddr < ph.p_memsz)
			entry_loaded = true;
	}
	if (img->nsegments == 0)
		return err_setx(e, ENOEXEC, "ELF has no loadable segments");

	img->format = KERNEL_FORMAT_ELF;
	img->load_start = lo;
	img->load_end = hi;
	img->initrd_addr_max = LAYOUT_MMIO_HOLE_START - 1;
	img->cmdline_max = LAYOUT_CMDLINE_MAX - 1;
	if (has_pvh) {
		if (pvh_entry < lo || pvh_entry >= hi)
			return err_setx(e, ENOEXEC, "PVH entry 0x%llx lies outside the loaded segments",
					(unsigned long long)pvh_entry);
		img->entry_kind = KERNEL_ENTRY_PVH;
		img->entry = pvh_entry;
	} else {
		if (!entry_loaded)
			return err_setx(e, ENOEXEC, "entry point 0x%llx lies outside the loaded segments",
					(unsigned long long)eh.e_entry);
		img->entry_kind = KERNEL_ENTRY_64BIT;
		img->entry = eh.e_entry;
	}
	return 0;
}
