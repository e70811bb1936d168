/* Kernel image parsers against hand-built good and hostile images. */
#include <elf.h>
#include <string.h>

#include "test.h"
#include "vmm/arch/x86/layout.h"
#include "vmm/boot/kernel-image.h"

#define IMG_SIZE 8192

/* A minimal bzImage: 1 setup sector + header, protocol 2.15, 64-bit. */
static void make_bzimage(uint8_t *b, size_t len)
{
	memset(b, 0x90, len);
	memset(b, 0, 1024);
	b[0x1f1] = 1;
	b[0x1fe] = 0x55;
	b[0x1ff] = 0xaa;
	b[0x200] = 0xeb;
	b[0x201] = 0x6a;
	memcpy(b + 0x202, "HdrS", 4);
	b[0x206] = 0x0f;
	b[0x207] = 0x02;
	b[0x211] = 0x01; /* LOADED_HIGH */
	b[0x236] = 0x03; /* XLF_KERNEL_64 | above 4G */
	b[0x238] = 0xff; /* cmdline_size 0x7ff */
	b[0x239] = 0x07;
	b[0x22c] = 0xff;
	b[0x22d] = 0xff;
	b[0x22e] = 0xff;
	b[0x22f] = 0x7f; /* initrd_addr_max */
	b[0x25b] = 0x01; /* pref_address 0x1000000 */
	b[0x262] = 0x10; /* init_size 0x100000 */
}

TEST(bzimage_valid_header)
{
	static uint8_t b[IMG_SIZE];
	struct kernel_image img;
	struct err *e = NULL;

	make_bzimage(b, sizeof(b));
	CHECK_INT(kernel_image_parse(b, sizeof(b), &img, &e), ==, 0);
	CHECK_INT(img.format, ==, KERNEL_FORMAT_BZIMAGE);
	CHECK_INT(img.entry_kind, ==, KERNEL_ENTRY_64BIT);
	CHECK_INT(img.protocol, ==, 0x020f);
	CHECK_INT(img.entry, ==, 0x1000200);
	CHECK_INT(img.segments[0].file_offset, ==, 1024);
	CHECK_INT(img.segments[0].file_size, ==, IMG_SIZE - 1024);
	CHECK_INT(img.load_end, ==, 0x1000000 + 0x100000);
	CHECK_INT(img.cmdline_max, ==, 0x7ff);
	CHECK_INT(img.hdr_len, ==, 0x26c - 0x1f1);
	CHECK(img.initrd_above_4g);
	err_free(&e);
}

static void expect_bzimage_error(const uint8_t *b, size_t len, const char *needle)
{
	struct kernel_image img;
	struct err *e = NULL;

	CHECK_INT(kernel_image_parse(b, len, &img, &e), <, 0);
	CHECK(e != NULL);
	if (e)
		CHECK_CONTAINS(e->msg, needle);
	err_free(&e);
}

TEST(bzimage_rejects_truncation_everywhere)
{
	static uint8_t b[IMG_SIZE];

	make_bzimage(b, sizeof(b));
	/* Every prefix shorter than setup + entry must fail cleanly. */
	for (size_t len = 0; len <= 1024 + 0x200; len += 7) {
		struct kernel_image img;
		struct err *e = NULL;
		CHECK_INT(kernel_image_parse(b, len, &img, &e), <, 0);
		err_free(&e);
	}
	expect_bzimage_error(b, 600, "truncated");
	expect_bzimage_error(b, 1024 + 0x100, "truncated");
}

TEST(bzimage_rejects_bad_magic_and_old_protocols)
{
	static uint8_t b[IMG_SIZE];

	make_bzimage(b, sizeof(b));
	b[0x1fe] = 0;
	expect_bzimage_error(b, sizeof(b), "boot flag");
	make_bzimage(b, sizeof(b));
	b[0x206] = 0x05; /* 2.05 */
	expect_bzimage_error(b, sizeof(b), "older than 2.06");
	make_bzimage(b, sizeof(b));
	b[0x236] = 0; /* no 64-bit entry */
	expect_bzimage_error(b, sizeof(b), "64-bit");
	make_bzimage(b, sizeof(b));
	b[0x211] = 0; /* zImage */
	expect_bzimage_error(b, sizeof(b), "zImage");
	make_bzimage(b, sizeof(b));
	b[0x1f1] = 200; /* setup larger than the file */
	expect_bzimage_error(b, sizeof(b), "truncated");
	memset(b, 0, sizeof(b));
	expect_bzimage_error(b, sizeof(b), "bad magic");
}

TEST(bzimage_rejects_payload_past_end)
{
	static uint8_t b[IMG_SIZE];

	make_bzimage(b, sizeof(b));
	/* payload_offset 0x100, payload_length 0x10000 > file */
	b[0x248] = 0x00;
	b[0x249] = 0x01;
	b[0x24c] = 0x00;
	b[0x24d] = 0x00;
	b[0x24e] = 0x01;
	expect_bzimage_error(b, sizeof(b), "payload");
}

struct test_elf {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[3];
	uint8_t note[32];
	uint8_t body[4096];
};

static void make_elf(struct test_elf *t, int with_pvh)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->eh.e_ident, ELFMAG, SELFMAG);
	t->eh.e_ident[EI_CLASS] = ELFCLASS64;
	t->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	t->eh.e_type = ET_EXEC;
	t->eh.e_machine = EM_X86_64;
	t->eh.e_entry = 0x1000000;
	t->eh.e_phoff = offsetof(struct test_elf, ph);
	t->eh.e_phentsize = sizeof(Elf64_Phdr);
	t->eh.e_phnum = with_pvh ? 2 : 1;
	t->ph[0].p_type = PT_LOAD;
	t->ph[0].p_offset = offsetof(struct test_elf, body);
	t->ph[0].p_paddr = 0x1000000;
	t->ph[0].p_filesz = sizeof(t->body);
	t->ph[0].p_memsz = 0x10000;
	if (with_pvh) {
		uint32_t hdr[3] = {4, 4, 18}, entry = 0x1000040;
		t->ph[1].p_type = PT_NOTE;
		t->ph[1].p_offset = offsetof(struct test_elf, note);
		t->ph[1].p_filesz = 20;
		memcpy(t->note, hdr, 12);
		memcpy(t->note + 12, "Xen", 4);
		memcpy(t->note + 16, &entry, 4);
	}
}

TEST(elf_64bit_entry)
{
	struct test_elf t;
	struct kernel_image img;
	struct err *e = NULL;

	make_elf(&t, 0);
	CHECK_INT(kernel_image_parse((uint8_t *)&t, sizeof(t), &img, &e), ==, 0);
	CHECK_INT(img.format, ==, KERNEL_FORMAT_ELF);
	CHECK_INT(img.entry_kind, ==, KERNEL_ENTRY_64BIT);
	CHECK_INT(img.entry, ==, 0x1000000);
	CHECK_INT(img.load_end, ==, 0x1010000);
	CHECK_INT(img.nsegments, ==, 1);
}

TEST(elf_pvh_note_wins)
{
	struct test_elf t;
	struct kernel_image img;
	struct err *e = NULL;

	make_elf(&t, 1);
	CHECK_INT(kernel_image_parse((uint8_t *)&t, sizeof(t), &img, &e), ==, 0);
	CHECK_INT(img.entry_kind, ==, KERNEL_ENTRY_PVH);
	CHECK_INT(img.entry, ==, 0x1000040);
}

static void expect_elf_error(struct test_elf *t, size_t len, const char *needle)
{
	struct kernel_image img;
	struct err *e = NULL;

	CHECK_INT(kernel_image_parse((uint8_t *)t, len, &img, &e), <, 0);
	if (e)
		CHECK_CONTAINS(e->msg, needle);
	else
		CHECK(e != NULL);
	err_free(&e);
}

TEST(elf_rejects_hostile_headers)
{
	struct test_elf t;

	make_elf(&t, 0);
	expect_elf_error(&t, 40, "truncated");
	make_elf(&t, 0);
	expect_elf_error(&t, offsetof(struct test_elf, ph) + 10, "program headers");
	make_elf(&t, 0);
	expect_elf_error(&t, offsetof(struct test_elf, body) + 100, "past the end");
	make_elf(&t, 0);
	t.eh.e_machine = EM_386;
	expect_elf_error(&t, sizeof(t), "x86_64");
	make_elf(&t, 0);
	t.eh.e_ident[EI_CLASS] = ELFCLASS32;
	expect_elf_error(&t, sizeof(t), "64-bit");
	make_elf(&t, 0);
	t.ph[0].p_filesz = 0x20000;
	expect_elf_error(&t, sizeof(t), "");
	make_elf(&t, 0);
	t.ph[0].p_paddr = 0x1000;
	expect_elf_error(&t, sizeof(t), "below 1 MiB");
	make_elf(&t, 0);
	t.ph[0].p_paddr = UINT64_MAX - 10;
	expect_elf_error(&t, sizeof(t), "wraps");
	make_elf(&t, 0);
	t.eh.e_entry = 0x5000000;
	expect_elf_error(&t, sizeof(t), "entry point");
	make_elf(&t, 0);
	t.eh.e_phoff = UINT64_MAX - 8;
	expect_elf_error(&t, sizeof(t), "program headers");
	make_elf(&t, 0);
	t.eh.e_type = ET_DYN;
	expect_elf_error(&t, sizeof(t), "executable");
}

TEST(elf_note_walk_survives_bad_sizes)
{
	struct test_elf t;
	struct kernel_image img;
	struct err *e = NULL;
	uint32_t huge = 0xfffffff0;

	make_elf(&t, 1);
	memcpy(t.note, &huge, 4); /* n_namesz far past the note */
	CHECK_INT(kernel_image_parse((uint8_t *)&t, sizeof(t), &img, &e), ==, 0);
	CHECK_INT(img.entry_kind, ==, KERNEL_ENTRY_64BIT);
	make_elf(&t, 1);
	t.ph[1].p_filesz = 0xffffffffff;
	CHECK_INT(kernel_image_parse((uint8_t *)&t, sizeof(t), &img, &e), ==, 0);
	err_free(&e);
}

/* --- multiboot v1 --- */
#include "vmm/boot/multiboot.h"

#define MB_AOUT_FLAGS 0x10003

/* A flat multiboot image of len bytes with its header at hdr_off (as much
 * of it as fits). */
static void make_mb_aout_in(uint8_t *b, size_t len, size_t hdr_off, uint32_t flags, uint32_t load_addr,
			    uint32_t load_end, uint32_t bss_end, uint32_t entry)
{
	uint32_t h[8] = {
	    MULTIBOOT_HEADER_MAGIC, flags, 0, (uint32_t)(load_addr + hdr_off), load_addr, load_end, bss_end, entry};

	h[2] = -(h[0] + h[1]);
	memset(b, 0xcc, len);
	memcpy(b + hdr_off, h, MIN(sizeof(h), len - hdr_off));
}

#define make_mb_aout(b, ...) make_mb_aout_in(b, sizeof(b), __VA_ARGS__)

static void expect_mb_error(const uint8_t *b, size_t len, const char *needle)
{
	struct kernel_image img;
	struct err *e = NULL;

	CHECK_INT(kernel_image_parse(b, len, &img, &e), <, 0);
	if (e)
		CHECK_CONTAINS(e->msg, needle);
	else
		CHECK(e != NULL);
	err_free(&e);
}

TEST(multiboot_aout_kludge_places_the_image)
{
	static uint8_t b[IMG_SIZE];
	struct kernel_image img;
	struct err *e = NULL;

	/* Header 0x100 into the file; the image starts 0x40 into it. */
	make_mb_aout(b, 0x100, MB_AOUT_FLAGS, 0x200000, 0x200000 + 0x1000, 0x200000 + 0x3000, 0x200010);
	((uint32_t *)(b + 0x100))[3] = 0x200000 + 0xc0; /* header_addr: file offset 0x40 is load_addr */
	CHECK_INT(kernel_image_parse(b, sizeof(b), &img, &e), ==, 0);
	CHECK_INT(img.format, ==, KERNEL_FORMAT_MULTIBOOT);
	CHECK_INT(img.entry_kind, ==, KERNEL_ENTRY_MULTIBOOT);
	CHECK_INT(img.entry, ==, 0x200010);
	CHECK_INT(img.nsegments, ==, 1);
	CHECK_INT(img.segments[0].file_offset, ==, 0x40);
	CHECK_INT(img.segments[0].paddr, ==, 0x200000);
	CHECK_INT(img.segments[0].file_size, ==, 0x1000);
	CHECK_INT(img.segments[0].mem_size, ==, 0x3000);
	CHECK_INT(img.load_end, ==, 0x203000);
	CHECK_INT(img.multiboot_flags, ==, MB_AOUT_FLAGS);
	/* load_end_addr 0: to the end of the file; bss_end_addr 0: no bss. */
	make_mb_aout(b, 0, MB_AOUT_FLAGS, 0x100000, 0, 0, 0x100000);
	CHECK_INT(kernel_image_parse(b, sizeof(b), &img, &e), ==, 0);
	CHECK_INT(img.segments[0].file_size, ==, IMG_SIZE);
	CHECK_INT(img.segments[0].mem_size, ==, IMG_SIZE);
	err_free(&e);
}

TEST(multiboot_header_is_searched_in_the_first_8k)
{
	static uint8_t b[3 * IMG_SIZE];
	size_t off = 0;

	/* make_mb_aout fills with 0xcc: zero the rest of the buffer first. */
	memset(b, 0, sizeof(b));
	CHECK_INT(multiboot_find_header(b, sizeof(b), &off), ==, 0);
	make_mb_aout(b, 8192 - 12, MB_AOUT_FLAGS, 0x100000, 0, 0, 0x100000);
	CHECK_INT(multiboot_find_header(b, sizeof(b), &off), ==, 1);
	CHECK_INT(off, ==, 8192 - 12);
	/* Not 4-byte aligned, or past 8 KiB: not a header. */
	memset(b, 0, sizeof(b));
	make_mb_aout(b, 8192, MB_AOUT_FLAGS, 0x100000, 0, 0, 0x100000);
	CHECK_INT(multiboot_find_header(b, sizeof(b), &off), ==, 0);
	memset(b, 0, sizeof(b));
	make_mb_aout(b, 0x102, MB_AOUT_FLAGS, 0x100000, 0, 0, 0x100000);
	CHECK_INT(multiboot_find_header(b, sizeof(b), &off), ==, 0);
	/* A magic with a bad checksum before a good header: the good one counts. */
	memset(b, 0, sizeof(b));
	make_mb_aout(b, 0x200, MB_AOUT_FLAGS, 0x100000, 0, 0, 0x100000);
	memcpy(b + 0x100, b + 0x200, 12);
	b[0x108] ^= 1;
	CHECK_INT(multiboot_find_header(b, sizeof(b), &off), ==, 1);
	CHECK_INT(off, ==, 0x200);
	b[0x208] ^= 1;
	CHECK_INT(multiboot_find_header(b, sizeof(b), &off), ==, -1);
	CHECK_INT(off, ==, 0x100);
	/* A header cut by the end of the file. */
	CHECK_INT(multiboot_find_header(b, 0x108, &off), ==, 0);
}

TEST(multiboot_rejects_bad_headers)
{
	static uint8_t b[IMG_SIZE];

	make_mb_aout(b, 0, MB_AOUT_FLAGS, 0x100000, 0, 0, 0x100000);
	b[8] ^= 0x10;
	expect_mb_error(b, sizeof(b), "bad checksum");
	make_mb_aout(b, 0, MB_AOUT_FLAGS | 0x4, 0x100000, 0, 0, 0x100000);
	expect_mb_error(b, sizeof(b), "video mode");
	make_mb_aout(b, 0, MB_AOUT_FLAGS | 0x8000, 0x100000, 0, 0, 0x100000);
	expect_mb_error(b, sizeof(b), "requires flag 15");
	make_mb_aout(b, 0, 0x3, 0x100000, 0, 0, 0x100000);
	expect_mb_error(b, sizeof(b), "no address fields");
	make_mb_aout(b, IMG_SIZE - 20, MB_AOUT_FLAGS, 0x100000, 0, 0, 0x100000);
	expect_mb_error(b, sizeof(b), "truncated");
	/* header_addr below load_addr, or further than the file holds. */
	make_mb_aout(b, 0x10, MB_AOUT_FLAGS, 0x100000, 0, 0, 0x100000);
	((uint32_t *)(b + 0x10))[3] = 0xff000;
	expect_mb_error(b, sizeof(b), "header_addr");
	make_mb_aout(b, 0x10, MB_AOUT_FLAGS, 0x100000, 0, 0, 0x100000);
	((uint32_t *)(b + 0x10))[3] = 0x100020;
	expect_mb_error(b, sizeof(b), "header_addr");
	make_mb_aout(b, 0, MB_AOUT_FLAGS, 0x100000, 0xfff00, 0, 0x100000);
	expect_mb_error(b, sizeof(b), "below load_addr");
	make_mb_aout(b, 0, MB_AOUT_FLAGS, 0x100000, 0x100000 + IMG_SIZE + 1, 0, 0x100000);
	expect_mb_error(b, sizeof(b), "past the end of the file");
	make_mb_aout(b, 0, MB_AOUT_FLAGS, 0x100000, 0x101000, 0x100800, 0x100000);
	expect_mb_error(b, sizeof(b), "bss_end_addr");
	make_mb_aout(b, 0, MB_AOUT_FLAGS, 0x100000, 0, 0, 0x100000 + IMG_SIZE);
	expect_mb_error(b, sizeof(b), "entry_addr");
	make_mb_aout(b, 0, MB_AOUT_FLAGS, 0x100000, 0x100000, 0, 0x100000);
	expect_mb_error(b, sizeof(b), "loads nothing");
	make_mb_aout(b, 0, MB_AOUT_FLAGS, 0x9f000, 0, 0, 0x9f000);
	expect_mb_error(b, sizeof(b), "below 1 MiB");
	make_mb_aout(b, 0, MB_AOUT_FLAGS, 0xbffff000, 0, 0, 0xbffff000);
	expect_mb_error(b, sizeof(b), "MMIO hole");
	make_mb_aout(b, 0, MB_AOUT_FLAGS, 0xfffff000, 0, 0, 0xfffff000);
	expect_mb_error(b, sizeof(b), "MMIO hole");
}

/* An ELF32 multiboot kernel, linked higher-half: e_entry is virtual. */
struct test_elf32 {
	Elf32_Ehdr eh;
	Elf32_Phdr ph[1];
	uint32_t mb[3];
	uint8_t body[4096];
};

static void make_mb_elf32(struct test_elf32 *t)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->eh.e_ident, ELFMAG, SELFMAG);
	t->eh.e_ident[EI_CLASS] = ELFCLASS32;
	t->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	t->eh.e_type = ET_EXEC;
	t->eh.e_machine = EM_386;
	t->eh.e_entry = 0xc0100020;
	t->eh.e_phoff = offsetof(struct test_elf32, ph);
	t->eh.e_phentsize = sizeof(Elf32_Phdr);
	t->eh.e_phnum = 1;
	t->ph[0].p_type = PT_LOAD;
	t->ph[0].p_offset = offsetof(struct test_elf32, body);
	t->ph[0].p_vaddr = 0xc0100000;
	t->ph[0].p_paddr = 0x100000;
	t->ph[0].p_filesz = sizeof(t->body);
	t->ph[0].p_memsz = 0x8000;
	t->mb[0] = MULTIBOOT_HEADER_MAGIC;
	t->mb[1] = 0x3;
	t->mb[2] = -(t->mb[0] + t->mb[1]);
}

TEST(multiboot_elf32_and_elf64)
{
	struct test_elf32 t32;
	struct test_elf t64;
	struct kernel_image img;
	struct err *e = NULL;
	uint32_t mb[3] = {MULTIBOOT_HEADER_MAGIC, 0x3, -(MULTIBOOT_HEADER_MAGIC + 0x3)};

	make_mb_elf32(&t32);
	CHECK_INT(kernel_image_parse((uint8_t *)&t32, sizeof(t32), &img, &e), ==, 0);
	CHECK_INT(img.format, ==, KERNEL_FORMAT_MULTIBOOT);
	CHECK_INT(img.entry, ==, 0x100020); /* e_entry made physical */
	CHECK_INT(img.segments[0].paddr, ==, 0x100000);
	CHECK_INT(img.load_end, ==, 0x108000);
	t32.eh.e_entry = 0x50000000;
	expect_mb_error((uint8_t *)&t32, sizeof(t32), "entry point");
	make_mb_elf32(&t32);
	t32.eh.e_machine = EM_X86_64;
	expect_mb_error((uint8_t *)&t32, sizeof(t32), "not i386");
	make_mb_elf32(&t32);
	t32.ph[0].p_paddr = 0xbfffc000;
	expect_mb_error((uint8_t *)&t32, sizeof(t32), "MMIO hole");
	make_mb_elf32(&t32);
	t32.ph[0].p_filesz = 0x100000;
	expect_mb_error((uint8_t *)&t32, sizeof(t32), "past the end");

	/* An ELF64 with a header is multiboot too; without one, a vmlinux. */
	make_elf(&t64, 0);
	memcpy(t64.note, mb, sizeof(mb));
	CHECK_INT(kernel_image_parse((uint8_t *)&t64, sizeof(t64), &img, &e), ==, 0);
	CHECK_INT(img.format, ==, KERNEL_FORMAT_MULTIBOOT);
	CHECK_INT(img.entry_kind, ==, KERNEL_ENTRY_MULTIBOOT);
	CHECK_INT(img.entry, ==, 0x1000000);
	make_elf(&t64, 0);
	CHECK_INT(kernel_image_parse((uint8_t *)&t64, sizeof(t64), &img, &e), ==, 0);
	CHECK_INT(img.format, ==, KERNEL_FORMAT_ELF);
	err_free(&e);
}

TEST(bzimage_wins_over_a_multiboot_header)
{
	static uint8_t b[IMG_SIZE];
	struct kernel_image img;
	struct err *e = NULL;
	uint32_t mb[3] = {MULTIBOOT_HEADER_MAGIC, 0x10003, -(MULTIBOOT_HEADER_MAGIC + 0x10003)};

	make_bzimage(b, sizeof(b));
	memcpy(b + 0x400, mb, sizeof(mb));
	CHECK_INT(kernel_image_parse(b, sizeof(b), &img, &e), ==, 0);
	CHECK_INT(img.format, ==, KERNEL_FORMAT_BZIMAGE);
	err_free(&e);
}
