/* Guest memory, boot loader, ACPI tables, CPUID and buses: no KVM needed. */
#include <stdlib.h>
#include <string.h>

#include <asm/bootparam.h>

#include "test.h"
#include "vmm/arch/x86/acpi.h"
#include "vmm/arch/x86/aml.h"
#include "vmm/arch/x86/cpuid.h"
#include "vmm/arch/x86/e820.h"
#include "vmm/arch/x86/layout.h"
#include "vmm/boot/loader.h"
#include "vmm/bus.h"
#include "vmm/console.h"
#include "vmm/memory.h"

TEST(memory_layout_splits_at_3g)
{
	struct guest_memory m;

	guest_memory_layout(&m, 2ULL << 30);
	CHECK_INT(m.nregions, ==, 1);
	CHECK_INT(m.regions[0].size, ==, 2ULL << 30);
	guest_memory_layout(&m, 5ULL << 30);
	CHECK_INT(m.nregions, ==, 2);
	CHECK_INT(m.regions[0].size, ==, 3ULL << 30);
	CHECK_INT(m.regions[1].gpa, ==, 4ULL << 30);
	CHECK_INT(m.regions[1].size, ==, 2ULL << 30);
}

TEST(memory_ptr_checks_every_range)
{
	struct guest_memory m;
	struct err *e = NULL;

	CHECK_INT(guest_memory_create(&m, 64 * MiB, &e), ==, 0);
	CHECK(guest_memory_ptr(&m, 0, 64 * MiB) == m.base);
	CHECK(guest_memory_ptr(&m, 64 * MiB - 1, 1) != NULL);
	CHECK(guest_memory_ptr(&m, 64 * MiB - 1, 2) == NULL);
	CHECK(guest_memory_ptr(&m, 64 * MiB, 1) == NULL);
	CHECK(guest_memory_ptr(&m, UINT64_MAX, 2) == NULL);
	CHECK(guest_memory_ptr(&m, 4096, UINT64_MAX) == NULL);
	CHECK(guest_memory_ptr(&m, UINT64_MAX - 4095, 4096) == NULL);
	CHECK(guest_memory_ptr(&m, LAYOUT_IOAPIC_ADDR, 4) == NULL);
	CHECK_INT(guest_memory_write(&m, 64 * MiB - 2, "abcd", 4), ==, -EFAULT);
	guest_memory_destroy(&m);
	CHECK_INT(guest_memory_create(&m, 1 * MiB, &e), <, 0);
	CHECK_CONTAINS(e->msg, "too small");
	err_free(&e);
}

TEST(memory_above_4g_is_reachable)
{
	struct guest_memory m;
	struct err *e = NULL;
	uint8_t *p;

	CHECK_INT(guest_memory_create(&m, 3ULL * GiB + 64 * MiB, &e), ==, 0);
	p = guest_memory_ptr(&m, 4ULL << 30, 4096);
	CHECK(p == m.base + 3ULL * GiB);
	CHECK(guest_memory_ptr(&m, (4ULL << 30) + 64 * MiB - 8, 8) != NULL);
	CHECK(guest_memory_ptr(&m, (4ULL << 30) + 64 * MiB - 8, 16) == NULL);
	CHECK(guest_memory_ptr(&m, 3ULL * GiB, 1) == NULL); /* the hole */
	guest_memory_destroy(&m);
}

TEST(e820_covers_all_ram_once)
{
	struct guest_memory m;
	struct e820_entry_desc map[E820_MAX];
	uint64_t ram = 0;
	unsigned n;

	guest_memory_layout(&m, 6ULL << 30);
	n = e820_build(&m, map);
	for (unsigned i = 0; i < n; i++) {
		if (map[i].type == E820_TYPE_RAM)
			ram += map[i].size;
		if (i > 0)
			CHECK(map[i].addr >= map[i - 1].addr + map[i - 1].size);
	}
	CHECK_INT(ram, ==, (6ULL << 30) - (0x100000 - LAYOUT_EBDA_ADDR));
}

static void fake_image(struct kernel_image *img, uint8_t *kernel, size_t len)
{
	memset(img, 0, sizeof(*img));
	memset(kernel, 0xcc, len);
	img->format = KERNEL_FORMAT_BZIMAGE;
	img->entry_kind = KERNEL_ENTRY_64BIT;
	img->entry = 0x1000200;
	img->nsegments = 1;
	img->segments[0] = (struct kernel_segment){0, 0x1000000, len, len};
	img->load_start = 0x1000000;
	img->load_end = 0x1000000 + 4 * MiB;
	img->initrd_addr_max = 0x7fffffff;
	img->cmdline_max = 2047;
	img->hdr_len = sizeof(img->hdr);
	img->hdr.version = 0x020f;
}

TEST(loader_places_initrd_high_and_fills_boot_params)
{
	struct guest_memory m;
	struct kernel_image img;
	struct boot_entry entry;
	struct err *e = NULL;
	static uint8_t kernel[8192], initrd[10000];
	struct blob kblob = blob_from_buffer(kernel, sizeof(kernel)), iblob = blob_from_buffer(initrd, sizeof(initrd));
	struct boot_config cfg = {"k", "i", "console=ttyS0", &iblob, LAYOUT_ACPI_ADDR};
	struct boot_params *bp;

	CHECK_INT(guest_memory_create(&m, 128 * MiB, &e), ==, 0);
	fake_image(&img, kernel, sizeof(kernel));
	memset(initrd, 0x5a, sizeof(initrd));
	CHECK_INT(boot_load(&m, &img, &kblob, &cfg, &entry, &e), ==, 0);
	CHECK_INT(entry.entry, ==, 0x1000200);
	CHECK_INT(entry.boot_info, ==, LAYOUT_ZERO_PAGE_ADDR);
	CHECK_INT(entry.initrd_addr % 4096, ==, 0);
	CHECK_INT(entry.initrd_addr + sizeof(initrd), <=, 128 * MiB);
	CHECK_INT(entry.initrd_addr, >=, 128 * MiB - 4 * 4096);
	bp = guest_memory_ptr(&m, LAYOUT_ZERO_PAGE_ADDR, sizeof(*bp));
	CHECK_INT(bp->hdr.cmd_line_ptr, ==, LAYOUT_CMDLINE_ADDR);
	CHECK_STR((char *)guest_memory_ptr(&m, LAYOUT_CMDLINE_ADDR, 1), "console=ttyS0");
	CHECK_INT(bp->hdr.ramdisk_image, ==, entry.initrd_addr);
	CHECK_INT(bp->hdr.ramdisk_size, ==, sizeof(initrd));
	CHECK_INT(bp->hdr.type_of_loader, ==, 0xff);
	CHECK_INT(bp->acpi_rsdp_addr, ==, LAYOUT_ACPI_ADDR);
	CHECK_INT(bp->e820_entries, ==, 4);
	CHECK_INT(*(uint8_t *)guest_memory_ptr(&m, 0x1000000, 1), ==, 0xcc);
	guest_memory_destroy(&m);
}

TEST(loader_rejects_what_does_not_fit)
{
	struct guest_memory m;
	struct kernel_image img;
	struct boot_entry entry;
	struct err *e = NULL;
	static uint8_t kernel[8192];
	uint8_t *big_initrd = malloc(40 * MiB);
	char cmdline[3000];
	struct blob kblob = blob_from_buffer(kernel, sizeof(kernel)), iblob = blob_from_buffer(big_initrd, 40 * MiB);
	struct boot_config cfg = {"k", "i", "", &iblob, 0};

	CHECK_INT(guest_memory_create(&m, 48 * MiB, &e), ==, 0);
	fake_image(&img, kernel, sizeof(kernel));
	CHECK_INT(boot_load(&m, &img, &kblob, &cfg, &entry, &e), <, 0);
	CHECK_CONTAINS(e->msg, "initrd 'i': 40 MiB does not fit");
	memset(cmdline, 'a', sizeof(cmdline) - 1);
	cmdline[sizeof(cmdline) - 1] = '\0';
	cfg = (struct boot_config){"k", NULL, cmdline, NULL, 0};
	CHECK_INT(boot_load(&m, &img, &kblob, &cfg, &entry, &e), <, 0);
	CHECK_CONTAINS(e->msg, "command line: 2999 bytes exceed the kernel's limit of 2047");
	img.load_end = 60 * MiB;
	cfg.cmdline = "";
	CHECK_INT(boot_load(&m, &img, &kblob, &cfg, &entry, &e), <, 0);
	CHECK_CONTAINS(e->msg, "kernel 'k': needs guest memory up to 60 MiB");
	err_free(&e);
	free(big_initrd);
	guest_memory_destroy(&m);
}

TEST(loader_writes_pvh_start_info)
{
	struct guest_memory m;
	struct kernel_image img;
	struct boot_entry entry;
	struct err *e = NULL;
	static uint8_t kernel[4096], initrd[4096];
	struct blob kblob = blob_from_buffer(kernel, sizeof(kernel)), iblob = blob_from_buffer(initrd, sizeof(initrd));
	struct boot_config cfg = {"k", "i", "x", &iblob, 0xe0000};
	struct hvm_start_info *si;
	struct hvm_modlist_entry *mod;

	CHECK_INT(guest_memory_create(&m, 64 * MiB, &e), ==, 0);
	fake_image(&img, kernel, sizeof(kernel));
	img.format = KERNEL_FORMAT_ELF;
	img.entry_kind = KERNEL_ENTRY_PVH;
	CHECK_INT(boot_load(&m, &img, &kblob, &cfg, &entry, &e), ==, 0);
	CHECK_INT(entry.boot_info, ==, LAYOUT_PVH_INFO_ADDR);
	si = guest_memory_ptr(&m, LAYOUT_PVH_INFO_ADDR, sizeof(*si));
	CHECK_INT(si->magic, ==, HVM_START_MAGIC);
	CHECK_INT(si->version, ==, 1);
	CHECK_INT(si->nr_modules, ==, 1);
	CHECK_INT(si->rsdp_paddr, ==, 0xe0000);
	CHECK_INT(si->memmap_entries, ==, 4);
	mod = guest_memory_ptr(&m, si->modlist_paddr, sizeof(*mod));
	CHECK_INT(mod->paddr, ==, entry.initrd_addr);
	CHECK_INT(mod->size, ==, sizeof(initrd));
	guest_memory_destroy(&m);
}

/* ACPI fields are unaligned: read them with memcpy. */
static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static const uint8_t *find_table(const uint8_t *xsdt, const struct guest_memory *m, const char *sig)
{
	uint32_t len = get32(xsdt + 4);

	for (uint32_t off = 36; off + 8 <= len; off += 8) {
		uint64_t addr = get64(xsdt + off);
		const uint8_t *t = guest_memory_ptr(m, addr, 36);
		if (t && memcmp(t, sig, 4) == 0)
			return t;
	}
	return NULL;
}

static void describe_test_device(void *opaque, struct aml *a)
{
	(void)opaque;
	aml_device(a, "VIO0");
	aml_name_decl(a, "_HID");
	aml_string(a, "LNRO0005");
	aml_crs_begin(a);
	aml_crs_mem32(a, 0xd0000000, 0x1000);
	aml_crs_ext_irq(a, 16, 1);
	aml_crs_end(a);
	aml_end(a);
}

TEST(acpi_tables_are_consistent)
{
	struct guest_memory m;
	struct err *e = NULL;
	struct acpi_config cfg = {.ncpus = 8, .describe_devices = describe_test_device};
	const uint8_t *rsdp, *xsdt, *madt, *fadt, *dsdt;
	uint64_t rsdp_addr;
	unsigned lapics = 0;

	CHECK_INT(guest_memory_create(&m, 64 * MiB, &e), ==, 0);
	CHECK_INT(acpi_build(&m, &cfg, &rsdp_addr, &e), ==, 0);
	rsdp = guest_memory_ptr(&m, rsdp_addr, 36);
	CHECK(memcmp(rsdp, "RSD PTR ", 8) == 0);
	CHECK_INT(acpi_checksum(rsdp, 20), ==, 0);
	CHECK_INT(acpi_checksum(rsdp, 36), ==, 0);
	xsdt = guest_memory_ptr(&m, get64(rsdp + 24), 36);
	CHECK(xsdt && memcmp(xsdt, "XSDT", 4) == 0);
	CHECK_INT(acpi_checksum(xsdt, get32(xsdt + 4)), ==, 0);
	madt = find_table(xsdt, &m, "APIC");
	fadt = find_table(xsdt, &m, "FACP");
	CHECK(madt && fadt);
	if (!madt || !fadt)
		return;
	CHECK_INT(acpi_checksum(madt, get32(madt + 4)), ==, 0);
	CHECK_INT(acpi_checksum(fadt, get32(fadt + 4)), ==, 0);
	for (uint32_t off = 44; off < get32(madt + 4); off += madt[off + 1])
		if (madt[off] == 0)
			CHECK_INT(madt[off + 3], ==, lapics++);
	CHECK_INT(lapics, ==, 8);
	CHECK(get32(fadt + 112) & (1u << 20)); /* hardware-reduced */
	CHECK_INT(get64(fadt + 244 + 4), ==, PORT_ACPI_SLEEP_CONTROL);
	CHECK_INT(get64(fadt + 116 + 4), ==, PORT_ACPI_RESET);
	dsdt = guest_memory_ptr(&m, get64(fadt + 140), 36);
	CHECK(dsdt && memcmp(dsdt, "DSDT", 4) == 0);
	CHECK_INT(acpi_checksum(dsdt, get32(dsdt + 4)), ==, 0);
	CHECK(memmem(dsdt, get32(dsdt + 4), "_S5_", 4) != NULL);
	CHECK(memmem(dsdt, get32(dsdt + 4), "LNRO0005", 8) != NULL);
	cfg.ncpus = 0;
	CHECK_INT(acpi_build(&m, &cfg, &rsdp_addr, &e), <, 0);
	err_free(&e);
	guest_memory_destroy(&m);
}

TEST(aml_package_lengths)
{
	struct aml a;
	uint8_t body[5000];

	memset(body, 0xab, sizeof(body));
	/* 1-byte encoding: body of 10 -> PkgLength 11. */
	aml_init(&a);
	aml_scope(&a, "ABCD");
	aml_bytes(&a, body, 6);
	aml_end(&a);
	CHECK_INT(a.buf[0], ==, 0x10);
	CHECK_INT(a.buf[1], ==, 11);
	CHECK(memcmp(a.buf + 2, "ABCD", 4) == 0);
	aml_free(&a);
	/* 2-byte encoding: body of 100 -> total 102 = 0x66 -> 0x46 0x06. */
	aml_init(&a);
	aml_scope(&a, "ABCD");
	aml_bytes(&a, body, 96);
	aml_end(&a);
	CHECK_INT(a.buf[1], ==, 0x46);
	CHECK_INT(a.buf[2], ==, 0x06);
	CHECK_INT(a.len, ==, 1 + 2 + 100);
	aml_free(&a);
	/* 3-byte encoding: body 4996 + 3 = 4999 = 0x1387 -> 0x87 0x38 0x01. */
	aml_init(&a);
	aml_scope(&a, "ABCD");
	aml_bytes(&a, body, 4992);
	aml_end(&a);
	CHECK_INT(a.buf[1], ==, 0x87);
	CHECK_INT(a.buf[2], ==, 0x38);
	CHECK_INT(a.buf[3], ==, 0x01);
	aml_free(&a);
	/* Unbalanced nesting is reported, not crashed on. */
	aml_init(&a);
	aml_end(&a);
	CHECK(a.failed);
	aml_free(&a);
}

TEST(aml_names_and_integers)
{
	struct aml a;

	aml_init(&a);
	aml_name(&a, "\\_SB_.COM1");
	CHECK_INT(a.len, ==, 10);
	CHECK_INT(a.buf[0], ==, '\\');
	CHECK_INT(a.buf[1], ==, 0x2e);
	aml_free(&a);
	aml_init(&a);
	aml_eisaid(&a, "PNP0501");
	CHECK_INT(a.buf[0], ==, 0x0c);
	CHECK_INT(a.buf[1], ==, 0x41);
	CHECK_INT(a.buf[2], ==, 0xd0);
	CHECK_INT(a.buf[3], ==, 0x05);
	CHECK_INT(a.buf[4], ==, 0x01);
	aml_free(&a);
	aml_init(&a);
	aml_integer(&a, 0x12345);
	CHECK_INT(a.buf[0], ==, 0x0c);
	CHECK_INT(a.len, ==, 5);
	aml_free(&a);
}

static struct kvm_cpuid2 *fake_cpuid(const char *vendor)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 8 * sizeof(c->entries[0]));
	c->nent = 7;
	c->entries[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0x1f};
	memcpy(&c->entries[0].ebx, vendor, 4);
	memcpy(&c->entries[0].edx, vendor + 4, 4);
	memcpy(&c->entries[0].ecx, vendor + 8, 4);
	c->entries[1] = (struct kvm_cpuid_entry2){.function = 1, .ebx = 0xff00ff00, .edx = 0};
	c->entries[2] =
	    (struct kvm_cpuid_entry2){.function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
	c->entries[3] =
	    (struct kvm_cpuid_entry2){.function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
	c->entries[4] = (struct kvm_cpuid_entry2){.function = 0xa, .eax = 0x07300403};
	c->entries[5] = (struct kvm_cpuid_entry2){.function = 0x80000008, .ecx = 0xffff};
	c->entries[6] = (struct kvm_cpuid_entry2){
	    .function = 4, .index = 3, .eax = (3 << 5) | 0x3, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
	return c;
}

TEST(cpuid_topology_per_vcpu)
{
	struct kvm_cpuid2 *src = fake_cpuid("GenuineIntel"), *c = cpuid_for_vcpu(src, 5, 6);
	struct kvm_cpuid_entry2 *ent;

	ent = cpuid_find(c, 1, 0);
	CHECK_INT(ent->ebx >> 24, ==, 5);
	CHECK_INT((ent->ebx >> 16) & 0xff, ==, 6);
	CHECK(ent->ecx & (1u << 31));
	CHECK(ent->edx & (1u << 28));
	ent = cpuid_find(c, 0xb, 1);
	CHECK_INT(ent->eax, ==, 3); /* 6 CPUs need 3 bits */
	CHECK_INT(ent->ebx, ==, 6);
	CHECK_INT(ent->edx, ==, 5);
	CHECK_INT((ent->ecx >> 8) & 0xff, ==, 2);
	ent = cpuid_find(c, 0xb, 0);
	CHECK_INT(ent->ebx, ==, 1);
	CHECK_INT(cpuid_find(c, 0xa, 0)->eax, ==, 0);
	ent = cpuid_find(c, 4, 3);
	CHECK_INT(ent->eax >> 26, ==, 5);
	CHECK_INT((ent->eax >> 14) & 0xfff, ==, 5); /* L3 shared by all six */
	/* Intel: AMD's core-count leaf is left alone. */
	CHECK_INT(cpuid_find(c, 0x80000008, 0)->ecx, ==, 0xffff);
	free(c);
	free(src);
	src = fake_cpuid("AuthenticAMD");
	c = cpuid_for_vcpu(src, 0, 1);
	CHECK_INT(cpuid_find(c, 0x80000008, 0)->ecx & 0xff, ==, 0);
	CHECK(!(cpuid_find(c, 1, 0)->edx & (1u << 28)));
	free(c);
	free(src);
}

static int hits;
static void count_handler(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)is_write;
	hits++;
	*(uint64_t *)opaque = offset;
	for (uint32_t i = 0; i < len; i++)
		data[i] = 0x11;
}

TEST(bus_register_and_dispatch)
{
	struct bus b;
	struct err *e = NULL;
	uint64_t last = 0;
	uint8_t data[4];

	bus_init(&b, "pio");
	CHECK_INT(bus_register(&b, 0x3f8, 8, count_handler, &last, "serial", &e), ==, 0);
	CHECK_INT(bus_register(&b, 0x70, 2, count_handler, &last, "rtc", &e), ==, 0);
	CHECK_INT(bus_register(&b, 0x3fc, 8, count_handler, &last, "other", &e), <, 0);
	CHECK_CONTAINS(e->msg, "overlaps serial");
	CHECK_INT(bus_register(&b, 0x60, 0x11, count_handler, &last, "wide", &e), <, 0);
	CHECK_CONTAINS(e->msg, "overlaps rtc");
	CHECK_INT(bus_register(&b, UINT64_MAX, 2, count_handler, &last, "wrap", &e), <, 0);
	CHECK(bus_dispatch(&b, 0x3fd, data, 1, false));
	CHECK_INT(last, ==, 5);
	CHECK(!bus_dispatch(&b, 0x400, data, 1, false));
	CHECK(!bus_dispatch(&b, 0x6f, data, 1, false));
	/* A 4-byte read at the last port: the device sees 1 byte, the rest are ones. */
	CHECK(bus_dispatch(&b, 0x3ff, data, 4, false));
	CHECK_INT(data[0], ==, 0x11);
	CHECK_INT(data[1], ==, 0xff);
	CHECK_INT(data[3], ==, 0xff);
	err_free(&e);
	bus_destroy(&b);
}

TEST(console_escape_filter)
{
	uint8_t out[16];
	int pending = 0, quit = 0;
	size_t n;

	n = console_filter_input(&pending, (const uint8_t *)"ab", 2, out, &quit);
	CHECK_INT(n, ==, 2);
	n = console_filter_input(&pending, (const uint8_t *)"\001\001c", 3, out, &quit);
	CHECK_INT(n, ==, 2);
	CHECK_INT(out[0], ==, 1);
	CHECK_INT(out[1], ==, 'c');
	/* The escape split across two reads still works. */
	n = console_filter_input(&pending, (const uint8_t *)"z\001", 2, out, &quit);
	CHECK_INT(n, ==, 1);
	CHECK(pending);
	n = console_filter_input(&pending, (const uint8_t *)"x", 1, out, &quit);
	CHECK_INT(n, ==, 0);
	CHECK(quit);
	pending = quit = 0;
	n = console_filter_input(&pending, (const uint8_t *)"\001q", 2, out, &quit);
	CHECK_INT(n, ==, 2);
	CHECK(!quit);
}

TEST(memory_is_huge_page_aligned)
{
	struct guest_memory m;
	struct err *e = NULL;

	CHECK_INT(guest_memory_create(&m, 34 * MiB, &e), ==, 0);
	CHECK_INT((uintptr_t)m.base % GUEST_MEMORY_ALIGN, ==, 0);
	guest_memory_destroy(&m);
}

/* --- multiboot --- */
#include "vmm/boot/multiboot.h"

TEST(loader_writes_multiboot_information)
{
	struct guest_memory m;
	struct kernel_image img = {0};
	struct boot_entry entry;
	struct err *e = NULL;
	static uint8_t kernel[8192], initrd[5000], mod1[100];
	struct blob kblob = blob_from_buffer(kernel, sizeof(kernel)), iblob = blob_from_buffer(initrd, sizeof(initrd)),
		    m1blob = blob_from_buffer(mod1, sizeof(mod1));
	struct boot_module mods[] = {{"m1", "m1 arg=1", &m1blob}};
	struct boot_config cfg = {"k", "initrd.img", "hello", &iblob, 0, mods, 1, "casulo-vmm test"};
	const struct multiboot_info *info;
	const struct multiboot_module *ml;
	const struct multiboot_mmap_entry *mm;
	struct e820_entry_desc map[E820_MAX];
	unsigned n;

	CHECK_INT(guest_memory_create(&m, 64 * MiB, &e), ==, 0);
	memset(kernel, 0xcc, sizeof(kernel));
	memset(initrd, 0x11, sizeof(initrd));
	memset(mod1, 0x22, sizeof(mod1));
	img.format = KERNEL_FORMAT_MULTIBOOT;
	img.entry_kind = KERNEL_ENTRY_MULTIBOOT;
	img.entry = 0x100010;
	img.nsegments = 1;
	img.segments[0] = (struct kernel_segment){
	    .file_offset = 0, .paddr = 0x100000, .file_size = sizeof(kernel), .mem_size = 0x3001};
	img.load_start = 0x100000;
	img.load_end = 0x103001;
	img.cmdline_max = 1000;
	CHECK_INT(boot_load(&m, &img, &kblob, &cfg, &entry, &e), ==, 0);
	CHECK_INT(entry.kind, ==, KERNEL_ENTRY_MULTIBOOT);
	CHECK_INT(entry.entry, ==, 0x100010);
	info = guest_memory_ptr(&m, entry.boot_info, sizeof(*info));
	CHECK(info != NULL);
	CHECK_INT(info->flags, ==,
		  MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE | MULTIBOOT_INFO_MODS | MULTIBOOT_INFO_MEM_MAP |
		      MULTIBOOT_INFO_BOOT_LOADER_NAME);
	CHECK_INT(info->mem_lower, ==, 639);
	CHECK_INT(info->mem_upper, ==, 63 * 1024);
	CHECK_STR((char *)guest_memory_ptr(&m, info->cmdline, 6), "hello");
	CHECK_STR((char *)guest_memory_ptr(&m, info->boot_loader_name, 16), "casulo-vmm test");
	/* The initrd is module 0 (its string the file name), then --module. */
	CHECK_INT(info->mods_count, ==, 2);
	ml = guest_memory_ptr(&m, info->mods_addr, 2 * sizeof(*ml));
	CHECK_INT(ml[0].mod_start, ==, 0x104000); /* the page after the kernel's bss */
	CHECK_INT(ml[0].mod_end - ml[0].mod_start, ==, sizeof(initrd));
	CHECK_INT(entry.initrd_addr, ==, ml[0].mod_start);
	CHECK_INT(ml[1].mod_start, ==, 0x106000);
	CHECK_INT(ml[1].mod_end, ==, 0x106000 + sizeof(mod1));
	CHECK_STR((char *)guest_memory_ptr(&m, ml[0].string, 11), "initrd.img");
	CHECK_STR((char *)guest_memory_ptr(&m, ml[1].string, 9), "m1 arg=1");
	CHECK_INT(*(uint8_t *)guest_memory_ptr(&m, ml[1].mod_start, 1), ==, 0x22);
	CHECK_INT(*(uint8_t *)guest_memory_ptr(&m, 0x103000, 1), ==, 0); /* bss zeroed */
	/* The memory map is the e820 map. */
	n = e820_build(&m, map);
	CHECK_INT(info->mmap_length, ==, n * sizeof(*mm));
	mm = guest_memory_ptr(&m, info->mmap_addr, info->mmap_length);
	for (unsigned i = 0; mm && i < n; i++) {
		CHECK_INT(mm[i].size, ==, 20);
		CHECK_INT(mm[i].addr, ==, map[i].addr);
		CHECK_INT(mm[i].len, ==, map[i].size);
		CHECK_INT(mm[i].type, ==, map[i].type);
	}
	guest_memory_destroy(&m);
}

TEST(loader_rejects_modules_that_do_not_fit)
{
	struct guest_memory m;
	struct kernel_image img = {0};
	struct boot_entry entry;
	struct err *e = NULL;
	static uint8_t kernel[4096];
	uint8_t *big = calloc(1, 40 * MiB);
	char *long_string = malloc(70000);
	struct blob kblob = blob_from_buffer(kernel, sizeof(kernel)), bblob = blob_from_buffer(big, 40 * MiB),
		    sblob = blob_from_buffer(kernel, 16);
	struct boot_module mods[] = {{"big", "big", &bblob}};
	struct boot_config cfg = {"k", NULL, "", NULL, 0, mods, 1, NULL};

	CHECK_INT(guest_memory_create(&m, 32 * MiB, &e), ==, 0);
	img.format = KERNEL_FORMAT_MULTIBOOT;
	img.entry_kind = KERNEL_ENTRY_MULTIBOOT;
	img.nsegments = 1;
	img.segments[0] = (struct kernel_segment){0, 0x100000, sizeof(kernel), sizeof(kernel)};
	img.load_end = 0x101000;
	img.cmdline_max = 100;
	CHECK_INT(boot_load(&m, &img, &kblob, &cfg, &entry, &e), <, 0);
	CHECK_CONTAINS(e->msg, "module 'big': 40960 KiB do not fit in guest memory");
	err_free(&e);
	memset(long_string, 'x', 69999);
	long_string[69999] = '\0';
	mods[0] = (struct boot_module){"small", long_string, &sblob};
	CHECK_INT(boot_load(&m, &img, &kblob, &cfg, &entry, &e), <, 0);
	CHECK_CONTAINS(e->msg, "command lines take more than 64 KiB");
	err_free(&e);
	/* Other kernels take no modules. */
	img.format = KERNEL_FORMAT_ELF;
	img.entry_kind = KERNEL_ENTRY_64BIT;
	CHECK_INT(boot_load(&m, &img, &kblob, &cfg, &entry, &e), <, 0);
	CHECK_CONTAINS(e->msg, "take no modules");
	err_free(&e);
	free(big);
	free(long_string);
	guest_memory_destroy(&m);
}
