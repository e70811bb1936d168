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
	b[0x211] = 0x01;              /* LOADED_HIGH */
	b[0x236] = 0x03;              /* XLF_KERNEL_64 | above 4G */
	b[0x238] = 0xff;              /* cmdline_size 0x7ff */
	b[0x239] = 0x07;
	b[0x22c] = 0xff; b[0x22d] = 0xff; b[0x22e] = 0xff; b[0x22f] = 0x7f; /* initrd_addr_max */
	b[0x25b] = 0x01;              /* pref_address 0x1000000 */
	b[0x262] = 0x10;              /* init_size 0x100000 */
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
	b[0x248] = 0x00; b[0x249] = 0x01;
	b[0x24c] = 0x00; b[0x24d] = 0x00; b[0x24e] = 0x01;
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
		uint32_t hdr[3] = { 4, 4, 18 }, entry = 0x1000040;
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
