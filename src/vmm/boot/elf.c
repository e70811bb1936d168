/*
 * ELF parsing: the loadable segments of an x86 executable, 32- or 64-bit
 * (elf_segments(), also for multiboot kernels), and the ELF64 vmlinux.
 * A vmlinux is entered either at its PVH entry (the Xen ELF note
 * XEN_ELFNOTE_PHYS32_ENTRY: 32-bit protected mode, no paging, %ebx =
 * hvm_start_info) when it has one, or at e_entry, the physical address of
 * startup_64, in 64-bit mode with %rsi = boot_params.
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

/* The parts of an ELF header (32- or 64-bit) that loading needs. */
struct elf_header {
	unsigned class;
	uint16_t type, machine;
	uint64_t entry, phoff;
	uint16_t phentsize, phnum;
};

static int read_header(const uint8_t *buf, size_t len, struct elf_header *h, struct err **e)
{
	if (len < EI_NIDENT)
		return err_setx(e, ENOEXEC, "truncated: %zu bytes is too short for an ELF header", len);
	if (memcmp(buf, ELFMAG, SELFMAG) != 0)
		return err_setx(e, ENOEXEC, "bad magic: not an ELF file");
	if (buf[EI_DATA] != ELFDATA2LSB || (buf[EI_CLASS] != ELFCLASS32 && buf[EI_CLASS] != ELFCLASS64))
		return err_setx(e, ENOEXEC, "not a 32- or 64-bit little-endian ELF");
	h->class = buf[EI_CLASS];
	if (h->class == ELFCLASS64) {
		Elf64_Ehdr eh;
		if (len < sizeof(eh))
			return err_setx(e, ENOEXEC, "truncated: %zu bytes is too short for an ELF header", len);
		memcpy(&eh, buf, sizeof(eh));
		*h = (struct elf_header){ELFCLASS64, eh.e_type,	     eh.e_machine, eh.e_entry,
					 eh.e_phoff, eh.e_phentsize, eh.e_phnum};
		if (h->phentsize != sizeof(Elf64_Phdr))
			h->phnum = 0;
	} else {
		Elf32_Ehdr eh;
		if (len < sizeof(eh))
			return err_setx(e, ENOEXEC, "truncated: %zu bytes is too short for an ELF header", len);
		memcpy(&eh, buf, sizeof(eh));
		*h = (struct elf_header){ELFCLASS32, eh.e_type,	     eh.e_machine, eh.e_entry,
					 eh.e_phoff, eh.e_phentsize, eh.e_phnum};
		if (h->phentsize != sizeof(Elf32_Phdr))
			h->phnum = 0;
	}
	if (h->machine != (h->class == ELFCLASS64 ? EM_X86_64 : EM_386))
		return err_setx(e, ENOEXEC, "ELF machine %u is not %s", h->machine,
				h->class == ELFCLASS64 ? "x86_64" : "i386");
	if (h->type != ET_EXEC)
		return err_setx(e, ENOEXEC, "ELF type %u is not an executable", h->type);
	if (h->phnum == 0)
		return err_setx(e, ENOEXEC, "ELF has no usable program headers");
	if (h->phoff > len || (uint64_t)h->phnum * h->phentsize > len - h->phoff)
		return err_setx(e, ENOEXEC, "truncated: program headers lie past the end of the file");
	return 0;
}

/* Program header i, widened to the 64-bit layout; the caller checked it lies in buf. */
static Elf64_Phdr read_phdr(const uint8_t *buf, const struct elf_header *h, unsigned i)
{
	const uint8_t *p = buf + h->phoff + (uint64_t)i * h->phentsize;
	Elf64_Phdr ph;
	Elf32_Phdr p32;

	if (h->class == ELFCLASS64) {
		memcpy(&ph, p, sizeof(ph));
		return ph;
	}
	memcpy(&p32, p, sizeof(p32));
	return (Elf64_Phdr){.p_type = p32.p_type,
			    .p_flags = p32.p_flags,
			    .p_offset = p32.p_offset,
			    .p_vaddr = p32.p_vaddr,
			    .p_paddr = p32.p_paddr,
			    .p_filesz = p32.p_filesz,
			    .p_memsz = p32.p_memsz,
			    .p_align = p32.p_align};
}

int elf_segments(const uint8_t *buf, size_t len, struct kernel_image *img, uint64_t *entry, unsigned *elf_class,
		 struct err **e)
{
	struct elf_header h;
	uint64_t lo = UINT64_MAX, hi = 0;
	bool entry_found = false;
	int r = read_header(buf, len, &h, e);

	if (r < 0)
		return r;
	*entry = h.entry;
	*elf_class = h.class;
	for (unsigned i = 0; i < h.phnum; i++) {
		Elf64_Phdr ph = read_phdr(buf, &h, i);

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
			return err_setx(e, ENOEXEC,
					"segment %u: loads at 0x%llx, below 1 MiB where the boot data lives", i,
					(unsigned long long)ph.p_paddr);
		img->segments[img->nsegments++] = (struct kernel_segment){
		    .file_offset = ph.p_offset,
		    .paddr = ph.p_paddr,
		    .file_size = ph.p_filesz,
		    .mem_size = ph.p_memsz,
		};
		lo = MIN(lo, ph.p_paddr);
		hi = MAX(hi, ph.p_paddr + ph.p_memsz);
		/* e_entry is physical (a vmlinux), or virtual in a segment
		 * linked elsewhere than it loads (a higher-half kernel). */
		if (!entry_found && h.entry - ph.p_paddr < ph.p_memsz) {
			entry_found = true;
		} else if (!entry_found && h.entry - ph.p_vaddr < ph.p_memsz) {
			*entry = h.entry - ph.p_vaddr + ph.p_paddr;
			entry_found = true;
		}
	}
	if (img->nsegments == 0)
		return err_setx(e, ENOEXEC, "ELF has no loadable segments");
	img->load_start = lo;
	img->load_end = hi;
	if (!entry_found)
		*entry = UINT64_MAX; /* the callers say which entry they needed */
	return 0;
}

int elf_kernel_parse(const uint8_t *buf, size_t len, struct kernel_image *img, struct err **e)
{
	struct elf_header h;
	uint64_t pvh_entry = 0, entry;
	unsigned elf_class;
	bool has_pvh = false;
	int r;

	memset(img, 0, sizeof(*img));
	if (len >= EI_NIDENT && memcmp(buf, ELFMAG, SELFMAG) == 0 &&
	    (buf[EI_CLASS] != ELFCLASS64 || buf[EI_DATA] != ELFDATA2LSB))
		return err_setx(e, ENOEXEC, "not a 64-bit little-endian ELF");
	r = read_header(buf, len, &h, e);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < h.phnum && !has_pvh; i++) {
		Elf64_Phdr ph = read_phdr(buf, &h, i);
		if (ph.p_type == PT_NOTE && ph.p_offset <= len && ph.p_filesz <= len - ph.p_offset)
			has_pvh = find_pvh_entry(buf + ph.p_offset, ph.p_filesz, &pvh_entry);
	}
	r = elf_segments(buf, len, img, &entry, &elf_class, e);
	if (r < 0)
		return r;
	img->format = KERNEL_FORMAT_ELF;
	img->initrd_addr_max = LAYOUT_MMIO_HOLE_START - 1;
	img->cmdline_max = LAYOUT_CMDLINE_MAX - 1;
	if (has_pvh) {
		if (pvh_entry < img->load_start || pvh_entry >= img->load_end)
			return err_setx(e, ENOEXEC, "PVH entry 0x%llx lies outside the loaded segments",
					(unsigned long long)pvh_entry);
		img->entry_kind = KERNEL_ENTRY_PVH;
		img->entry = pvh_entry;
	} else {
		if (entry == UINT64_MAX || entry != h.entry)
			return err_setx(e, ENOEXEC, "entry point 0x%llx lies outside the loaded segments",
					(unsigned long long)h.entry);
		img->entry_kind = KERNEL_ENTRY_64BIT;
		img->entry = entry;
	}
	return 0;
}
