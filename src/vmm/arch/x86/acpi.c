#include "vmm/arch/x86/acpi.h"

#include <string.h>

#include "vmm/arch/x86/layout.h"

#define ACPI_OEM_ID "CASULO"
#define ACPI_OEM_TABLE_ID "CASULOVM"
#define ACPI_CREATOR_ID "CSLO"

#define HEADER_LEN 36
#define RSDP_LEN 36
#define FADT_LEN 276
#define FADT_REVISION 6
#define FADT_MINOR 5

#define FADT_F_PWR_BUTTON (1u << 4)
#define FADT_F_SLP_BUTTON (1u << 5)
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED_ACPI (1u << 20)
#define IAPC_BOOT_VGA_NOT_PRESENT (1u << 2)
#define IAPC_BOOT_MSI_NOT_SUPPORTED (1u << 3)

#define MADT_TYPE_LAPIC 0
#define MADT_TYPE_IOAPIC 1
#define MADT_TYPE_ISO 2
#define MADT_TYPE_LAPIC_NMI 4

#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1

struct table_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

static void put8(uint8_t *p, size_t off, uint8_t v)
{
	p[off] = v;
}
static void put16(uint8_t *p, size_t off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, size_t off, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return sum;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t, 4, len);
	put8(t, 8, rev);
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	put32(t, 24, 1);
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	put32(t, 32, 1);
}

static void finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = (uint8_t)(0 - acpi_checksum(t, len));
}

static void gas_io(uint8_t *p, size_t off, uint16_t port)
{
	put8(p, off, GAS_SYSTEM_IO);
	put8(p, off + 1, 8);
	put8(p, off + 2, 0);
	put8(p, off + 3, GAS_ACCESS_BYTE);
	put64(p, off + 4, port);
}

static void build_fadt(uint8_t *t, uint64_t dsdt)
{
	memset(t, 0, FADT_LEN);
	header(t, "FACP", FADT_LEN, FADT_REVISION);
	put32(t, 40, (uint32_t)dsdt);
	put8(t, 108, 0x32); /* CMOS century register */
	put16(t, 109, IAPC_BOOT_VGA_NOT_PRESENT | IAPC_BOOT_MSI_NOT_SUPPORTED);
	put32(t, 112, FADT_F_HW_REDUCED_ACPI | FADT_F_RESET_REG_SUP | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON);
	gas_io(t, 116, PORT_ACPI_RESET);
	put8(t, 128, ACPI_RESET_VALUE);
	put8(t, 131, FADT_MINOR);
	put64(t, 140, dsdt);
	gas_io(t, 244, PORT_ACPI_SLEEP_CONTROL);
	gas_io(t, 256, PORT_ACPI_SLEEP_STATUS);
	memcpy(t + 268, "CASULOVM", 8);
	finish(t, FADT_LEN);
}

static size_t madt_len(unsigned ncpus)
{
	return HEADER_LEN + 8 + ncpus * 8 + 12 + 10 + 6;
}

static void build_madt(uint8_t *t, unsigned ncpus)
{
	size_t len = madt_len(ncpus), off = HEADER_LEN;

	memset(t, 0, len);
	header(t, "APIC", (uint32_t)len, 5);
	put32(t, off, (uint32_t)LAYOUT_LAPIC_ADDR);
	put32(t, off + 4, 0); /* no dual 8259 setup to describe */
	off += 8;
	for (unsigned i = 0; i < ncpus; i++) {
		put8(t, off, MADT_TYPE_LAPIC);
		put8(t, off + 1, 8);
		put8(t, off + 2, (uint8_t)i); /* ACPI processor UID */
		put8(t, off + 3, (uint8_t)i); /* APIC ID, as CPUID reports it */
		put32(t, off + 4, 1);	      /* enabled */
		off += 8;
	}
	put8(t, off, MADT_TYPE_IOAPIC);
	put8(t, off + 1, 12);
	put8(t, off + 2, 0); /* matches the in-kernel IOAPIC's ID register */
	put32(t, off + 4, (uint32_t)LAYOUT_IOAPIC_ADDR);
	put32(t, off + 8, 0); /* GSI base */
	off += 12;
	/* ISA IRQ 0 (the PIT) arrives on IOAPIC pin 2, as on every PC. */
	put8(t, off, MADT_TYPE_ISO);
	put8(t, off + 1, 10);
	put8(t, off + 2, 0);
	put8(t, off + 3, 0);
	put32(t, off + 4, 2);
	put16(t, off + 8, 0);
	off += 10;
	put8(t, off, MADT_TYPE_LAPIC_NMI);
	put8(t, off + 1, 6);
	put8(t, off + 2, 0xff); /* all processors */
	put16(t, off + 3, 0);
	put8(t, off + 5, 1); /* LINT1 */
	finish(t, (uint32_t)len);
}

static void build_dsdt_body(struct aml *a, const struct acpi_config *cfg)
{
	aml_scope(a, "\\_SB_");
	if (cfg->describe_devices)
		cfg->describe_devices(cfg->opaque, a);
	aml_end(a);

	/* \_S5: the sleep type that the sleep control register turns into poweroff. */
	aml_name_decl(a, "\\_S5_");
	aml_package(a, 2);
	aml_integer(a, ACPI_S5_SLEEP_TYPE);
	aml_integer(a, 0);
	aml_end(a);
}

int acpi_build(const struct guest_memory *mem, const struct acpi_config *cfg, uint64_t *ret_rsdp, struct err **e)
{
	const uint64_t rsdp = LAYOUT_ACPI_ADDR, xsdt = rsdp + 0x40;
	const unsigned ntables = 2;
	uint64_t fadt = ALIGN_UP(xsdt + HEADER_LEN + 8 * ntables, 16ULL);
	uint64_t madt = ALIGN_UP(fadt + FADT_LEN, 16ULL);
	uint64_t dsdt = ALIGN_UP(madt + madt_len(cfg->ncpus), 16ULL);
	uint64_t end;
	uint8_t *base = guest_memory_ptr(mem, LAYOUT_ACPI_ADDR, LAYOUT_ACPI_SIZE);
	struct aml a;
	uint8_t *t;

	if (base == NULL)
		return err_setx(e, EFAULT, "ACPI tables: area outside guest memory");
	if (cfg->ncpus == 0 || cfg->ncpus > ACPI_MAX_CPUS)
		return err_setx(e, EINVAL, "ACPI tables: %u vCPUs is out of range 1-%d", cfg->ncpus, ACPI_MAX_CPUS);
	memset(base, 0, LAYOUT_ACPI_SIZE);

	aml_init(&a);
	build_dsdt_body(&a, cfg);
	if (a.failed || a.depth != 0) {
		aml_free(&a);
		return err_setx(e, ENOMEM, "ACPI tables: building the DSDT failed");
	}
	end = dsdt + HEADER_LEN + a.len;
	if (end > LAYOUT_ACPI_ADDR + LAYOUT_ACPI_SIZE) {
		aml_free(&a);
		return err_setx(e, E2BIG, "ACPI tables: %llu bytes do not fit the %llu-byte area",
				(unsigned long long)(end - LAYOUT_ACPI_ADDR), LAYOUT_ACPI_SIZE);
	}
	t = base + (dsdt - LAYOUT_ACPI_ADDR);
	header(t, "DSDT", (uint32_t)(HEADER_LEN + a.len), 2);
	memcpy(t + HEADER_LEN, a.buf, a.len);
	finish(t, (uint32_t)(HEADER_LEN + a.len));
	aml_free(&a);

	build_fadt(base + (fadt - LAYOUT_ACPI_ADDR), dsdt);
	build_madt(base + (madt - LAYOUT_ACPI_ADDR), cfg->ncpus);

	t = base + (xsdt - LAYOUT_ACPI_ADDR);
	header(t, "XSDT", HEADER_LEN + 8 * ntables, 1);
	put64(t, HEADER_LEN, fadt);
	put64(t, HEADER_LEN + 8, madt);
	finish(t, HEADER_LEN + 8 * ntables);

	t = base;
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, ACPI_OEM_ID, 6);
	put8(t, 15, 2); /* ACPI 2.0+: XSDT */
	put32(t, 16, 0);
	put32(t, 20, RSDP_LEN);
	put64(t, 24, xsdt);
	t[8] = (uint8_t)(0 - acpi_checksum(t, 20));
	t[32] = (uint8_t)(0 - acpi_checksum(t, RSDP_LEN));
	*ret_rsdp = rsdp;
	return 0;
}
