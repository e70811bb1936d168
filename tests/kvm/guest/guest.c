/*
 * A tiny freestanding guest for the `kvm` test suite.  It runs on any
 * /dev/kvm, even the instruction-emulating kvm_pvm, because it executes
 * only a few thousand instructions.  The kernel command line picks what
 * it does: "test=NAME [arg=...]".  It prints over COM1, reports a status
 * on the exit port (0x604) and powers off through the ACPI sleep port,
 * exactly as casulo-init does in a Linux guest.
 */
#include <stddef.h>
#include <stdint.h>

#define COM1 0x3f8
#define PORT_ACPI_SLEEP_CONTROL 0x600
#define PORT_ACPI_RESET 0x602
#define PORT_EXIT_STATUS 0x604
#define LAPIC_BASE 0xfee00000UL

struct bootinfo {
	const char *cmdline;
	uint64_t initrd_addr, initrd_size;
	unsigned n_e820;
	struct {
		uint64_t addr, size;
		uint32_t type;
	} e820[16];
	/* multiboot only */
	uint32_t mb_flags, mem_lower, mem_upper;
	const char *loader_name;
	unsigned n_mods;
	struct {
		uint32_t start, end;
		const char *string;
	} mods[8];
};

/* Kept by mb_start (start.S) for test=mb-entry. */
extern uint32_t mb_entry_eax, mb_entry_ebx, mb_entry_cr0, mb_entry_eflags;
extern const uint8_t _bss_end[]; /* the end of the image (guest.ld) */

/* The compiler may emit calls to these even with -ffreestanding. */
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memset(void *dst, int c, size_t n);

void *memcpy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

void *memset(void *dst, int c, size_t n)
{
	uint8_t *d = dst;
	while (n--)
		*d++ = (uint8_t)c;
	return dst;
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void putc_serial(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, (uint8_t)c);
}

static void puts_serial(const char *s)
{
	while (*s) {
		if (*s == '\n')
			putc_serial('\r');
		putc_serial(*s++);
	}
}

static void put_hex(uint64_t v)
{
	char buf[19] = "0x";
	int started = 0, n = 2;

	for (int shift = 60; shift >= 0; shift -= 4) {
		unsigned d = (v >> shift) & 0xf;
		if (d || started || shift == 0) {
			buf[n++] = "0123456789abcdef"[d];
			started = 1;
		}
	}
	buf[n] = '\0';
	puts_serial(buf);
}

static void put_dec(uint64_t v)
{
	char buf[21];
	int n = 20;

	buf[n] = '\0';
	do {
		buf[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_serial(buf + n);
}

static __attribute__((noreturn)) void finish(uint32_t status)
{
	outl(PORT_EXIT_STATUS, status);
	outb(PORT_ACPI_SLEEP_CONTROL, (5 << 2) | 0x20); /* S5 + SLP_EN */
	for (;;)
		__asm__ volatile("cli; hlt");
}

static size_t str_len(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* Value of "key=" in the command line, up to the next space; NULL if absent. */
static const char *arg(const char *cmdline, const char *key, char *out, size_t cap)
{
	size_t klen = str_len(key);

	for (const char *p = cmdline; *p; p++) {
		if ((p == cmdline || p[-1] == ' ') && !memcmp(p, key, klen) && p[klen] == '=') {
			size_t n = 0;
			p += klen + 1;
			while (p[n] && p[n] != ' ' && n + 1 < cap) {
				out[n] = p[n];
				n++;
			}
			out[n] = '\0';
			return out;
		}
	}
	return NULL;
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* Decimal, or hexadecimal after "0x". */
static uint64_t parse_num(const char *s)
{
	uint64_t v = 0;

	if (s[0] == '0' && s[1] == 'x') {
		for (s += 2;; s++) {
			unsigned d = *s >= '0' && *s <= '9'   ? (unsigned)(*s - '0')
				     : *s >= 'a' && *s <= 'f' ? (unsigned)(*s - 'a' + 10)
							      : 16;
			if (d == 16)
				return v;
			v = v * 16 + d;
		}
	}
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (uint64_t)(*s++ - '0');
	return v;
}

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* --- boot information, from either boot ABI --- */

static void read_boot_params(const uint8_t *bp, struct bootinfo *bi)
{
	uint8_t n = bp[0x1e8];

	bi->cmdline = (const char *)(uintptr_t) * (const uint32_t *)(bp + 0x228);
	bi->initrd_addr = *(const uint32_t *)(bp + 0x218) | (uint64_t) * (const uint32_t *)(bp + 0x0c0) << 32;
	bi->initrd_size = *(const uint32_t *)(bp + 0x21c) | (uint64_t) * (const uint32_t *)(bp + 0x0c4) << 32;
	bi->n_e820 = n > 16 ? 16 : n;
	for (unsigned i = 0; i < bi->n_e820; i++) {
		const uint8_t *ent = bp + 0x2d0 + 20 * i;
		bi->e820[i].addr = *(const uint64_t *)ent;
		bi->e820[i].size = *(const uint64_t *)(ent + 8);
		bi->e820[i].type = *(const uint32_t *)(ent + 16);
	}
}

static int read_pvh_info(const uint8_t *si, struct bootinfo *bi)
{
	if (*(const uint32_t *)si != 0x336ec578)
		return -1;
	bi->cmdline = (const char *)(uintptr_t) * (const uint64_t *)(si + 0x18);
	if (*(const uint32_t *)(si + 0x0c)) {
		const uint8_t *mod = (const uint8_t *)(uintptr_t) * (const uint64_t *)(si + 0x10);
		bi->initrd_addr = *(const uint64_t *)mod;
		bi->initrd_size = *(const uint64_t *)(mod + 8);
	}
	bi->n_e820 = *(const uint32_t *)(si + 0x30);
	if (bi->n_e820 > 16)
		bi->n_e820 = 16;
	for (unsigned i = 0; i < bi->n_e820; i++) {
		const uint8_t *ent = (const uint8_t *)(uintptr_t) * (const uint64_t *)(si + 0x28) + 24 * i;
		bi->e820[i].addr = *(const uint64_t *)ent;
		bi->e820[i].size = *(const uint64_t *)(ent + 8);
		bi->e820[i].type = *(const uint32_t *)(ent + 16);
	}
	return 0;
}

/* The multiboot information (the Multiboot Specification, 3.3). */
static void read_multiboot_info(const uint8_t *mbi, struct bootinfo *bi)
{
	const uint32_t *w = (const uint32_t *)mbi;

	bi->mb_flags = w[0];
	if (w[0] & 0x1) {
		bi->mem_lower = w[1];
		bi->mem_upper = w[2];
	}
	if (w[0] & 0x4)
		bi->cmdline = (const char *)(uintptr_t)w[4];
	if (w[0] & 0x8) {
		const uint32_t *m = (const uint32_t *)(uintptr_t)w[6];
		bi->n_mods = w[5] > 8 ? 8 : w[5];
		for (unsigned i = 0; i < bi->n_mods; i++) {
			bi->mods[i].start = m[4 * i];
			bi->mods[i].end = m[4 * i + 1];
			bi->mods[i].string = (const char *)(uintptr_t)m[4 * i + 2];
		}
		if (bi->n_mods) {
			bi->initrd_addr = bi->mods[0].start;
			bi->initrd_size = bi->mods[0].end - bi->mods[0].start;
		}
	}
	if (w[0] & 0x40) {
		/* Each entry: size (of the rest), base, length, type. */
		const uint8_t *p = (const uint8_t *)(uintptr_t)w[12], *end = p + w[11];
		while (p < end && bi->n_e820 < 16) {
			uint32_t size = *(const uint32_t *)p;
			bi->e820[bi->n_e820].addr = *(const uint64_t *)(p + 4);
			bi->e820[bi->n_e820].size = *(const uint64_t *)(p + 12);
			bi->e820[bi->n_e820].type = *(const uint32_t *)(p + 20);
			bi->n_e820++;
			p += size + 4;
		}
	}
	if (w[0] & 0x200)
		bi->loader_name = (const char *)(uintptr_t)w[16];
}

/* --- tests --- */

static void test_e820(const struct bootinfo *bi)
{
	uint64_t ram = 0;

	for (unsigned i = 0; i < bi->n_e820; i++) {
		puts_serial("e820: ");
		put_hex(bi->e820[i].addr);
		puts_serial(" ");
		put_hex(bi->e820[i].size);
		puts_serial(" type ");
		put_dec(bi->e820[i].type);
		puts_serial("\n");
		if (bi->e820[i].type == 1)
			ram += bi->e820[i].size;
	}
	puts_serial("ram-kib: ");
	put_dec(ram >> 10);
	puts_serial("\n");
}

/* The sum the host tests recompute over files they hand the guest. */
static uint32_t data_sum(const uint8_t *p, uint64_t len)
{
	uint32_t sum = 0;

	for (uint64_t i = 0; i < len; i++)
		sum = sum * 31 + p[i];
	return sum;
}

static void test_initrd(const struct bootinfo *bi)
{
	uint32_t sum = data_sum((const uint8_t *)(uintptr_t)bi->initrd_addr, bi->initrd_size);

	puts_serial("initrd: size ");
	put_dec(bi->initrd_size);
	puts_serial(" sum ");
	put_hex(sum);
	puts_serial(" aligned ");
	put_dec((bi->initrd_addr & 0xfff) == 0);
	puts_serial("\n");
}

static void put_str_n(const char *s, uint32_t n)
{
	for (uint32_t i = 0; i < n && s[i]; i++)
		putc_serial(s[i]);
}

/* Entry state of a multiboot boot, as mb_start kept it. */
static void test_mb_entry(const struct bootinfo *bi, uintptr_t info)
{
	puts_serial("mb-entry: eax ");
	put_hex(mb_entry_eax);
	puts_serial(" ebx-is-info ");
	put_dec(mb_entry_ebx == info);
	puts_serial(" cr0.pe ");
	put_dec(mb_entry_cr0 & 1);
	puts_serial(" cr0.pg ");
	put_dec(mb_entry_cr0 >> 31);
	puts_serial(" eflags.if ");
	put_dec((mb_entry_eflags >> 9) & 1);
	puts_serial(" eflags.vm ");
	put_dec((mb_entry_eflags >> 17) & 1);
	puts_serial(" flags ");
	put_hex(bi->mb_flags);
	puts_serial(" mem_lower ");
	put_dec(bi->mem_lower);
	puts_serial(" mem_upper ");
	put_dec(bi->mem_upper);
	puts_serial(" loader '");
	puts_serial(bi->loader_name ? bi->loader_name : "");
	puts_serial("'\n");
}

static void test_modules(const struct bootinfo *bi)
{
	puts_serial("modules: ");
	put_dec(bi->n_mods);
	puts_serial("\n");
	for (unsigned i = 0; i < bi->n_mods; i++) {
		puts_serial("module ");
		put_dec(i);
		puts_serial(": size ");
		put_dec(bi->mods[i].end - bi->mods[i].start);
		puts_serial(" sum ");
		put_hex(data_sum((const uint8_t *)(uintptr_t)bi->mods[i].start, bi->mods[i].end - bi->mods[i].start));
		puts_serial(" page-aligned ");
		put_dec((bi->mods[i].start & 0xfff) == 0);
		puts_serial(" above-kernel ");
		put_dec(bi->mods[i].start >= (uintptr_t)_bss_end);
		puts_serial(" string '");
		puts_serial(bi->mods[i].string);
		puts_serial("'\n");
	}
}

/* --- fw_cfg (QEMU's docs/specs/fw_cfg.rst) --- */
#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_DMA_HIGH 0x514
#define FW_CFG_DMA_LOW 0x518
#define FW_CFG_DMA_BUF 0x4000000UL /* 64 MiB: RAM no test image uses */

static void fw_select(uint16_t key)
{
	outw(FW_CFG_SELECTOR, key);
}

static void fw_read(void *buf, uint32_t len)
{
	uint8_t *p = buf;

	while (len--)
		*p++ = inb(FW_CFG_DATA);
}

static uint64_t fw_item(uint16_t key, unsigned len)
{
	uint64_t v = 0;

	fw_select(key);
	fw_read(&v, len);
	return v;
}

/* One DMA transfer; returns the control word the device wrote back. */
static uint32_t fw_dma(uint32_t control, uint64_t addr, uint32_t len)
{
	static volatile struct {
		uint32_t control, length;
		uint64_t address;
	} __attribute__((aligned(16))) d;
	uint64_t at = (uintptr_t)&d;

	d.control = __builtin_bswap32(control);
	d.length = __builtin_bswap32(len);
	d.address = __builtin_bswap64(addr);
	outl(FW_CFG_DMA_HIGH, __builtin_bswap32((uint32_t)(at >> 32)));
	outl(FW_CFG_DMA_LOW, __builtin_bswap32((uint32_t)at));
	return __builtin_bswap32(d.control);
}

#define DMA_ERROR 0x01
#define DMA_READ 0x02
#define DMA_SKIP 0x04
#define DMA_SELECT 0x08
#define DMA_WRITE 0x10

static uint64_t fw_dma_item(uint16_t key, unsigned len)
{
	uint64_t *buf = (uint64_t *)FW_CFG_DMA_BUF;

	*buf = 0;
	fw_dma((uint32_t)key << 16 | DMA_SELECT | DMA_READ, FW_CFG_DMA_BUF, len);
	return *buf;
}

/* The file directory's entry for name: its size and selector. */
static int fw_find_file(const char *name, uint32_t *size, uint16_t *select)
{
	uint32_t count;

	fw_select(0x19);
	fw_read(&count, 4);
	count = __builtin_bswap32(count);
	for (uint32_t i = 0; i < count; i++) {
		uint8_t ent[64];
		fw_read(ent, 64);
		if (!memcmp(ent + 8, name, str_len(name) + 1)) {
			*size = __builtin_bswap32(*(uint32_t *)ent);
			*select = (uint16_t)(ent[4] << 8 | ent[5]);
			return 1;
		}
	}
	return 0;
}

static void test_fw_cfg(const struct bootinfo *bi)
{
	char sig[5] = {0}, cmdline[256] = {0};
	uint8_t past[4] = {1, 1, 1, 1}, again[4];
	uint32_t size, cmdline_size, initrd_size, e820_size, sum = 0;
	uint16_t select;

	fw_select(0x00);
	fw_read(sig, 4);
	puts_serial("fw-cfg: signature ");
	puts_serial(sig);
	puts_serial(" id ");
	put_hex(fw_item(0x01, 4));
	puts_serial(" dma-signature ");
	put_hex((uint64_t)__builtin_bswap32(inl(FW_CFG_DMA_HIGH)) << 32 | __builtin_bswap32(inl(FW_CFG_DMA_LOW)));
	puts_serial(" cpus ");
	put_dec(fw_item(0x05, 2));
	puts_serial(" max-cpus ");
	put_dec(fw_item(0x0f, 2));
	puts_serial(" ram ");
	put_hex(fw_item(0x03, 8));
	puts_serial(" nographic ");
	put_dec(fw_item(0x04, 2));
	puts_serial("\n");

	cmdline_size = (uint32_t)fw_item(0x14, 4);
	fw_select(0x15);
	fw_read(cmdline, cmdline_size < sizeof(cmdline) ? cmdline_size : sizeof(cmdline) - 1);
	puts_serial("fw-cfg: cmdline-size ");
	put_dec(cmdline_size);
	puts_serial(" cmdline '");
	puts_serial(cmdline);
	puts_serial("' at ");
	put_hex(fw_item(0x13, 4));
	puts_serial(" same-as-boot ");
	put_dec(bi->cmdline && !memcmp(cmdline, bi->cmdline, str_len(bi->cmdline) + 1));
	puts_serial("\n");

	initrd_size = (uint32_t)fw_item(0x0b, 4);
	fw_select(0x12);
	for (uint32_t i = 0; i < initrd_size; i++)
		sum = sum * 31 + inb(FW_CFG_DATA);
	puts_serial("fw-cfg: initrd-size ");
	put_dec(initrd_size);
	puts_serial(" sum ");
	put_hex(sum);
	puts_serial(" addr-is-boot ");
	put_dec(fw_item(0x0a, 4) == bi->initrd_addr);
	puts_serial("\n");

	/* etc/e820 through the directory; past its end, zeros. */
	if (fw_find_file("etc/e820", &e820_size, &select)) {
		puts_serial("fw-cfg: etc/e820 select ");
		put_hex(select);
		puts_serial(" size ");
		put_dec(e820_size);
		puts_serial("\n");
		fw_select(select);
		for (uint32_t off = 0; off + 20 <= e820_size; off += 20) {
			uint8_t ent[20];
			fw_read(ent, 20);
			puts_serial("fw-cfg: e820 ");
			put_hex(*(uint64_t *)ent);
			puts_serial(" ");
			put_hex(*(uint64_t *)(ent + 8));
			puts_serial(" type ");
			put_dec(*(uint32_t *)(ent + 16));
			puts_serial("\n");
		}
		fw_read(past, 4);
	} else {
		puts_serial("fw-cfg: no etc/e820\n");
	}
	puts_serial("fw-cfg: past-end ");
	put_dec(past[0] | past[1] | past[2] | past[3]);
	/* A write to the data port changes nothing. */
	fw_select(0x00);
	outb(FW_CFG_DATA, 'X');
	fw_select(0x00);
	fw_read(again, 4);
	puts_serial(" after-write ");
	put_str_n((const char *)again, 4);
	puts_serial(" unknown-key ");
	put_hex(fw_item(0x7777, 4));
	puts_serial(" file-dir-missing ");
	put_dec(!fw_find_file("no/such/file", &size, &select));
	puts_serial("\n");
}

static void test_fw_cfg_dma(void)
{
	char *buf = (char *)FW_CFG_DMA_BUF;
	uint32_t initrd_size, control;

	puts_serial("fw-cfg-dma: id ");
	put_hex(fw_dma_item(0x01, 4));
	puts_serial(" cpus ");
	put_dec(fw_dma_item(0x05, 2));
	puts_serial(" ram ");
	put_hex(fw_dma_item(0x03, 8));
	memset(buf, 0x55, 300);
	control = fw_dma(0x15 << 16 | DMA_SELECT | DMA_READ, FW_CFG_DMA_BUF, (uint32_t)fw_dma_item(0x14, 4));
	puts_serial(" control ");
	put_hex(control);
	puts_serial(" cmdline '");
	puts_serial(buf);
	puts_serial("'\n");

	/* Skip 5 bytes of the command line, read 4, then 4 past the end of the signature. */
	memset(buf, 0, 16);
	fw_dma(0x15 << 16 | DMA_SELECT | DMA_SKIP, 0, 5);
	fw_dma(DMA_READ, FW_CFG_DMA_BUF, 4);
	puts_serial("fw-cfg-dma: skip-then-read '");
	put_str_n(buf, 4);
	memset(buf, 0x55, 8);
	control = fw_dma(0x00 << 16 | DMA_SELECT | DMA_READ, FW_CFG_DMA_BUF, 8);
	puts_serial("' signature-then-zeros ");
	put_str_n(buf, 4);
	put_dec(buf[4] | buf[5] | buf[6] | buf[7]);
	puts_serial(" control ");
	put_hex(control);
	puts_serial("\n");

	initrd_size = (uint32_t)fw_dma_item(0x0b, 4);
	control = fw_dma(0x12 << 16 | DMA_SELECT | DMA_READ, FW_CFG_DMA_BUF, initrd_size);
	puts_serial("fw-cfg-dma: initrd-size ");
	put_dec(initrd_size);
	puts_serial(" sum ");
	put_hex(data_sum((const uint8_t *)buf, initrd_size));
	puts_serial(" control ");
	put_hex(control);
	puts_serial("\n");

	/* Hostile requests: a target in the MMIO hole, a write, a descriptor outside RAM. */
	puts_serial("fw-cfg-dma: to-the-hole ");
	put_hex(fw_dma(0x00 << 16 | DMA_SELECT | DMA_READ, 0xd0000000UL, 4));
	puts_serial(" past-4g ");
	put_hex(fw_dma(0x00 << 16 | DMA_SELECT | DMA_READ, 0xfffffffffffff000UL, 0x2000));
	puts_serial(" write ");
	put_hex(fw_dma(0x00 << 16 | DMA_SELECT | DMA_WRITE, FW_CFG_DMA_BUF, 4));
	outl(FW_CFG_DMA_HIGH, __builtin_bswap32(0x7));
	outl(FW_CFG_DMA_LOW, __builtin_bswap32(0xd0000000));
	puts_serial(" descriptor-outside-ram survived\n");
}

static void test_cpuid(void)
{
	uint32_t r[4];
	char sig[13];

	cpuid(1, 0, r);
	puts_serial("apic-id: ");
	put_dec(r[1] >> 24);
	puts_serial(" hypervisor: ");
	put_dec(r[2] >> 31);
	cpuid(0x40000000, 0, r);
	memcpy(sig, &r[1], 4);
	memcpy(sig + 4, &r[2], 4);
	memcpy(sig + 8, &r[3], 4);
	sig[12] = '\0';
	puts_serial(" signature: ");
	puts_serial(sig);
	puts_serial("\n");
}

static uint8_t sum8(const uint8_t *p, uint32_t len)
{
	uint8_t s = 0;
	for (uint32_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* Walk RSDP -> XSDT -> tables, checking every checksum; count MADT CPUs. */
static void test_acpi(void)
{
	const uint8_t *rsdp = NULL, *xsdt;
	unsigned cpus = 0, tables_ok = 1, ntables, has_dsdt = 0;

	for (uintptr_t a = 0xe0000; a < 0x100000; a += 16)
		if (!memcmp((const void *)a, "RSD PTR ", 8)) {
			rsdp = (const uint8_t *)a;
			break;
		}
	if (!rsdp || sum8(rsdp, 20) || sum8(rsdp, 36)) {
		puts_serial("acpi: no valid RSDP\n");
		finish(1);
	}
	xsdt = (const uint8_t *)(uintptr_t) * (const uint64_t *)(rsdp + 24);
	if (memcmp(xsdt, "XSDT", 4) || sum8(xsdt, *(const uint32_t *)(xsdt + 4)))
		tables_ok = 0;
	ntables = (*(const uint32_t *)(xsdt + 4) - 36) / 8;
	for (unsigned i = 0; i < ntables; i++) {
		const uint8_t *t = (const uint8_t *)(uintptr_t) * (const uint64_t *)(xsdt + 36 + 8 * i);
		uint32_t len = *(const uint32_t *)(t + 4);
		if (sum8(t, len))
			tables_ok = 0;
		if (!memcmp(t, "APIC", 4)) {
			for (uint32_t off = 44; off + 2 <= len; off += t[off + 1] ? t[off + 1] : 1)
				if (t[off] == 0 && (t[off + 4] & 1))
					cpus++;
		}
		if (!memcmp(t, "FACP", 4)) {
			const uint8_t *dsdt = (const uint8_t *)(uintptr_t) * (const uint64_t *)(t + 140);
			if (!memcmp(dsdt, "DSDT", 4) && !sum8(dsdt, *(const uint32_t *)(dsdt + 4)))
				has_dsdt = 1;
		}
	}
	puts_serial("acpi: tables ");
	puts_serial(tables_ok ? "ok" : "BAD");
	puts_serial(" dsdt ");
	puts_serial(has_dsdt ? "ok" : "missing");
	puts_serial(" cpus ");
	put_dec(cpus);
	puts_serial("\n");
}

static inline void lapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(LAPIC_BASE + reg) = v;
}
static inline uint32_t lapic_read(uint32_t reg)
{
	return *(volatile uint32_t *)(LAPIC_BASE + reg);
}

extern const uint8_t ap_trampoline[], ap_trampoline_end[];

static void test_smp(unsigned expected)
{
	volatile uint32_t *count = (volatile uint32_t *)0x71000, *bitmap = (volatile uint32_t *)0x71004;

	memcpy((void *)0x70000, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
	*count = 0;
	*bitmap = 0;
	lapic_write(0xf0, lapic_read(0xf0) | 0x100); /* software-enable the LAPIC */
	lapic_write(0x310, 0);
	lapic_write(0x300, 0x000c4500); /* INIT to all but self */
	for (volatile int i = 0; i < 1000; i++)
		;
	for (int k = 0; k < 2; k++) {
		lapic_write(0x310, 0);
		lapic_write(0x300, 0x000c4600 | 0x70); /* SIPI, vector 0x70 */
		for (volatile int i = 0; i < 1000; i++)
			;
	}
	for (unsigned long spins = 0; *count < expected - 1 && spins < 200000000UL; spins++)
		__asm__ volatile("pause");
	puts_serial("smp: cpus up ");
	put_dec(*count + 1);
	puts_serial(" ap-bitmap ");
	put_hex(*bitmap);
	puts_serial("\n");
}

static void test_echo(void)
{
	/* Read bytes until newline, echo them upper-cased. */
	puts_serial("echo: ready\n");
	for (;;) {
		uint8_t c;
		while (!(inb(COM1 + 5) & 0x01))
			;
		c = inb(COM1);
		if (c >= 'a' && c <= 'z')
			c = (uint8_t)(c - 32);
		if (c == '\n' || c == '\r') {
			puts_serial("\n");
			return;
		}
		putc_serial((char)c);
	}
}

static uint8_t cmos_read(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static unsigned bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 15);
}

static void test_rtc(void)
{
	while (cmos_read(0x0a) & 0x80)
		;
	puts_serial("rtc: ");
	put_dec(bcd(cmos_read(0x32)) * 100 + bcd(cmos_read(0x09)));
	puts_serial("-");
	put_dec(bcd(cmos_read(0x08)));
	puts_serial("-");
	put_dec(bcd(cmos_read(0x07)));
	puts_serial(" ");
	put_dec(bcd(cmos_read(0x04)));
	puts_serial(":");
	put_dec(bcd(cmos_read(0x02)));
	puts_serial(":");
	put_dec(bcd(cmos_read(0x00)));
	puts_serial(" regb ");
	put_hex(cmos_read(0x0b));
	puts_serial(" regd ");
	put_hex(cmos_read(0x0d));
	puts_serial("\n");
}

static __attribute__((noreturn)) void triple_fault(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idt = {0, 0};

	__asm__ volatile("lidt %0; int3" : : "m"(idt));
	for (;;)
		;
}

void guest_main(uintptr_t info, int kind);
void guest_main(uintptr_t info, int kind)
{
	struct bootinfo bi = {0};
	char test[32], val[32];
	uint32_t status = 0;

	if (kind == 2) {
		read_multiboot_info((const uint8_t *)info, &bi);
	} else if (kind == 1) {
		if (read_pvh_info((const uint8_t *)info, &bi) < 0) {
			puts_serial("boot: bad hvm_start_info magic\n");
			finish(3);
		}
	} else {
		read_boot_params((const uint8_t *)info, &bi);
	}
	puts_serial("guest: boot ");
	puts_serial(kind == 2 ? "multiboot" : kind == 1 ? "pvh" : "64bit");
	puts_serial(" cmdline '");
	puts_serial(bi.cmdline ? bi.cmdline : "");
	puts_serial("'\n");
	if (!bi.cmdline || !arg(bi.cmdline, "test", test, sizeof(test)))
		finish(0);
	if (arg(bi.cmdline, "status", val, sizeof(val)))
		status = (uint32_t)parse_num(val);

	if (streq(test, "hello")) {
		puts_serial("hello from the test guest\n");
	} else if (streq(test, "e820")) {
		test_e820(&bi);
	} else if (streq(test, "initrd")) {
		test_initrd(&bi);
	} else if (streq(test, "mb-entry")) {
		test_mb_entry(&bi, info);
	} else if (streq(test, "modules")) {
		test_modules(&bi);
	} else if (streq(test, "fw-cfg")) {
		test_fw_cfg(&bi);
	} else if (streq(test, "fw-cfg-dma")) {
		test_fw_cfg_dma();
	} else if (streq(test, "cpuid")) {
		test_cpuid();
	} else if (streq(test, "acpi")) {
		test_acpi();
	} else if (streq(test, "smp")) {
		test_smp(arg(bi.cmdline, "cpus", val, sizeof(val)) ? (unsigned)parse_num(val) : 1);
	} else if (streq(test, "echo")) {
		test_echo();
	} else if (streq(test, "rtc")) {
		test_rtc();
	} else if (streq(test, "ports")) {
		puts_serial("ports: com2-lsr ");
		put_hex(inb(0x2fd));
		puts_serial(" unclaimed ");
		put_hex(inb(0x5555));
		puts_serial(" mmio ");
		put_hex(*(volatile uint32_t *)0xd0000000UL);
		puts_serial("\n");
	} else if (streq(test, "reboot-kbd")) {
		outl(PORT_EXIT_STATUS, status);
		outb(0x64, 0xfe);
	} else if (streq(test, "debug-exit")) {
		/* value=V [port=P] [size=1|2|4]: one write to the debug-exit port;
		 * if the VM goes on, it powers off with status=. */
		uint32_t v = (uint32_t)parse_num(arg(bi.cmdline, "value", val, sizeof(val)) ? val : "0");
		uint16_t port = (uint16_t)parse_num(arg(bi.cmdline, "port", val, sizeof(val)) ? val : "0xf4");
		unsigned size = arg(bi.cmdline, "size", val, sizeof(val)) ? (unsigned)parse_num(val) : 4;

		puts_serial("debug-exit: writing ");
		put_hex(v);
		puts_serial("\n");
		if (size == 1)
			outb(port, (uint8_t)v);
		else if (size == 2)
			outw(port, (uint16_t)v);
		else
			outl(port, v);
		puts_serial("debug-exit: still running\n");
	} else if (streq(test, "reboot-cf9")) {
		/* As Linux's reboot=pci: SYS_RST first, then RST_CPU. */
		outl(PORT_EXIT_STATUS, status);
		outb(0xcf9, inb(0xcf9) | 0x02);
		outb(0xcf9, inb(0xcf9) | 0x06);
	} else if (streq(test, "reboot-acpi")) {
		outl(PORT_EXIT_STATUS, status);
		outb(PORT_ACPI_RESET, 1);
	} else if (streq(test, "triple-fault")) {
		triple_fault();
	} else if (streq(test, "hang")) {
		/* Interrupts on (none ever comes): with them off the VMM would
		 * see a guest stopped for good and end the VM (test=halt). */
		puts_serial("hang: waiting forever\n");
		for (;;)
			__asm__ volatile("sti; hlt");
	} else if (streq(test, "halt")) {
		/* Stop for good, as Linux does when it cannot power off. */
		outl(PORT_EXIT_STATUS, status);
		puts_serial("halt: halting with interrupts off\n");
		for (;;)
			__asm__ volatile("cli; hlt");
	} else if (streq(test, "counter")) {
		/* A guest that keeps doing something visible: "tick N" lines. */
		uint64_t delay = arg(bi.cmdline, "delay", val, sizeof(val)) ? parse_num(val) : 20000;
		for (uint64_t n = 0;; n++) {
			puts_serial("tick ");
			put_dec(n);
			puts_serial("\n");
			for (volatile uint64_t i = 0; i < delay; i++)
				;
		}
	} else if (streq(test, "pio-loop")) {
		/* count=N port-I/O exits to the VMM (reads of COM2's line status
		 * register, a device model's cheapest answer), timed by the TSC:
		 * bench/exit.sh. */
		uint64_t n = arg(bi.cmdline, "count", val, sizeof(val)) ? parse_num(val) : 100000;
		uint64_t t0, t1;

		puts_serial("pio-loop: start\n");
		t0 = rdtsc();
		for (uint64_t i = 0; i < n; i++)
			(void)inb(0x2fd);
		t1 = rdtsc();
		puts_serial("pio-loop: exits ");
		put_dec(n);
		puts_serial(" tsc ");
		put_dec(t1 - t0);
		puts_serial("\n");
	} else if (streq(test, "exec-mmio")) {
		((void (*)(void))0xd0000000UL)();
	} else {
		puts_serial("unknown test\n");
		finish(2);
	}
	/* debug-exit=V: end through the debug-exit port (--debug-exit) instead. */
	if (arg(bi.cmdline, "debug-exit", val, sizeof(val)))
		outl(0xf4, (uint32_t)parse_num(val));
	finish(status);
}
