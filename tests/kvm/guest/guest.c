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
	struct { uint64_t addr, size; uint32_t type; } e820[16];
};

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

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
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

static uint64_t parse_num(const char *s)
{
	uint64_t v = 0;
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

	bi->cmdline = (const char *)(uintptr_t)*(const uint32_t *)(bp + 0x228);
	bi->initrd_addr = *(const uint32_t *)(bp + 0x218) | (uint64_t)*(const uint32_t *)(bp + 0x0c0) << 32;
	bi->initrd_size = *(const uint32_t *)(bp + 0x21c) | (uint64_t)*(const uint32_t *)(bp + 0x0c4) << 32;
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

static void test_initrd(const struct bootinfo *bi)
{
	const uint8_t *p = (const uint8_t *)(uintptr_t)bi->initrd_addr;
	uint32_t sum = 0;

	/* Fletcher-style sum, recomputed by the host test. */
	for (uint64_t i = 0; i < bi->initrd_size; i++)
		sum = sum * 31 + p[i];
	puts_serial("initrd: size ");
	put_dec(bi->initrd_size);
	puts_serial(" sum ");
	put_hex(sum);
	puts_serial(" aligned ");
	put_dec((bi->initrd_addr & 0xfff) == 0);
	puts_serial("\n");
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

static inline void lapic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(LAPIC_BASE + reg) = v; }
static inline uint32_t lapic_read(uint32_t reg) { return *(volatile uint32_t *)(LAPIC_BASE + reg); }

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

static unsigned bcd(uint8_t v) { return (v >> 4) * 10 + (v & 15); }

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
	struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idt = { 0, 0 };

	__asm__ volatile("lidt %0; int3" : : "m"(idt));
	for (;;)
		;
}

void guest_main(uintptr_t info, int kind);
void guest_main(uintptr_t info, int kind)
{
	struct bootinfo bi = { 0 };
	char test[32], val[32];
	uint32_t status = 0;

	if (kind == 1) {
		if (read_pvh_info((const uint8_t *)info, &bi) < 0) {
			puts_serial("boot: bad hvm_start_info magic\n");
			finish(3);
		}
	} else {
		read_boot_params((const uint8_t *)info, &bi);
	}
	puts_serial("guest: boot ");
	puts_serial(kind == 1 ? "pvh" : "64bit");
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
	} else if (streq(test, "reboot-acpi")) {
		outl(PORT_EXIT_STATUS, status);
		outb(PORT_ACPI_RESET, 1);
	} else if (streq(test, "triple-fault")) {
		triple_fault();
	} else if (streq(test, "hang")) {
		puts_serial("hang: waiting forever\n");
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
	} else if (streq(test, "exec-mmio")) {
		((void (*)(void))0xd0000000UL)();
	} else {
		puts_serial("unknown test\n");
		finish(2);
	}
	finish(status);
}
