/* The fw_cfg register model (src/vmm/devices/fw-cfg.h), driven through
 * its port handler as a guest would, with DMA into a small guest memory. */
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "vmm/devices/fw-cfg.h"
#include "vmm/memory.h"

#define DESC 0x1000ULL /* where the tests put their FWCfgDmaAccess */
#define BUF 0x2000ULL  /* and the DMA's target */

static struct guest_memory mem;
static struct fw_cfg *f;

static void setup(void)
{
	struct err *e = NULL;

	CHECK_INT(guest_memory_create(&mem, 32ULL << 20, &e), ==, 0);
	f = fw_cfg_new(&mem);
	CHECK(f != NULL);
	CHECK_INT(fw_cfg_set_item(f, 0x05, "\x03\x00", 2), ==, 0);
	CHECK_INT(fw_cfg_set_item(f, 0x15, "hello", 6), ==, 0);
	CHECK_INT(fw_cfg_add_file(f, "etc/test", "abcdefgh", 8, &e), ==, 0);
	err_free(&e);
}

static void teardown(void)
{
	fw_cfg_free(f);
	guest_memory_destroy(&mem);
}

static void port_write(uint64_t port, uint32_t v, uint32_t len)
{
	uint8_t d[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	fw_cfg_io(f, port - FW_CFG_PORT_SELECTOR, d, len, true);
}

static uint8_t data_byte(void)
{
	uint8_t b = 0xee;

	fw_cfg_io(f, FW_CFG_PORT_DATA - FW_CFG_PORT_SELECTOR, &b, 1, false);
	return b;
}

static void read_item(uint16_t key, void *out, size_t len)
{
	port_write(FW_CFG_PORT_SELECTOR, key, 2);
	for (size_t i = 0; i < len; i++)
		((uint8_t *)out)[i] = data_byte();
}

static uint32_t be32(uint32_t v)
{
	return __builtin_bswap32(v);
}

/* Write a descriptor at DESC and run it; returns the control word written back. */
static uint32_t dma(uint32_t control, uint32_t len, uint64_t addr)
{
	uint32_t d[4] = {be32(control), be32(len), be32((uint32_t)(addr >> 32)), be32((uint32_t)addr)};

	CHECK_INT(guest_memory_write(&mem, DESC, d, sizeof(d)), ==, 0);
	port_write(FW_CFG_PORT_DMA, be32(0), 4);
	port_write(FW_CFG_PORT_DMA + 4, be32((uint32_t)DESC), 4);
	CHECK_INT(guest_memory_read(&mem, DESC, d, 4), ==, 0);
	return be32(d[0]);
}

TEST(fw_cfg_items_by_port)
{
	char sig[5] = {0}, cmdline[6];
	uint8_t id[4], cpus[2], past[3];

	setup();
	read_item(0x00, sig, 4);
	CHECK_STR(sig, "QEMU");
	read_item(0x01, id, 4);
	CHECK_INT(id[0], ==, FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA);
	read_item(0x05, cpus, 2);
	CHECK_INT(cpus[0], ==, 3);
	read_item(0x15, cmdline, 6);
	CHECK_STR(cmdline, "hello");
	/* Past the end, and for keys with no item: zeros. */
	for (int i = 0; i < 3; i++)
		past[i] = data_byte();
	CHECK(past[0] == 0 && past[1] == 0 && past[2] == 0);
	read_item(0x7fff, past, 3);
	CHECK(past[0] == 0 && past[1] == 0 && past[2] == 0);
	read_item(0x8000 | 0x00, past, 3); /* an x86-local key: none */
	CHECK(past[0] == 0);
	/* Selecting again starts over; the write channel bit selects the same item. */
	read_item(0x00, sig, 2);
	read_item(0x4000 | 0x00, sig, 4);
	CHECK_STR(sig, "QEMU");
	teardown();
}

TEST(fw_cfg_writes_change_nothing)
{
	char sig[5] = {0};
	uint8_t x = 'X';

	setup();
	port_write(FW_CFG_PORT_SELECTOR, 0x00, 2);
	fw_cfg_io(f, FW_CFG_PORT_DATA - FW_CFG_PORT_SELECTOR, &x, 1, true);
	port_write(FW_CFG_PORT_SELECTOR, 0x01, 1); /* a byte is not a selector write */
	for (int i = 0; i < 4; i++)
		sig[i] = (char)data_byte();
	CHECK_STR(sig, "QEMU");
	CHECK_INT(dma(0x00 << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE, 4, BUF), ==, FW_CFG_DMA_ERROR);
	read_item(0x00, sig, 4);
	CHECK_STR(sig, "QEMU");
	teardown();
}

TEST(fw_cfg_file_directory)
{
	uint8_t dir[4 + 64], data[8];

	setup();
	read_item(FW_CFG_FILE_DIR, dir, sizeof(dir));
	CHECK_INT(be32(*(uint32_t *)dir), ==, 1);
	CHECK_INT(be32(*(uint32_t *)(dir + 4)), ==, 8);
	CHECK_INT(dir[8] << 8 | dir[9], ==, FW_CFG_FILE_FIRST);
	CHECK_STR((char *)dir + 12, "etc/test");
	read_item(FW_CFG_FILE_FIRST, data, 8);
	CHECK(memcmp(data, "abcdefgh", 8) == 0);
	teardown();
}

TEST(fw_cfg_dma_signature_and_reads)
{
	uint8_t sig[8];
	char buf[16];

	setup();
	for (int i = 0; i < 8; i++)
		fw_cfg_io(f, FW_CFG_PORT_DMA - FW_CFG_PORT_SELECTOR + (uint64_t)i, &sig[i], 1, false);
	CHECK(memcmp(sig, "QEMU CFG", 8) == 0);
	/* Select and read past the end: the rest is zeros; then skip and read. */
	memset(guest_memory_ptr(&mem, BUF, 16), 0x55, 16);
	CHECK_INT(dma(0x15 << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 10, BUF), ==, 0);
	CHECK_INT(guest_memory_read(&mem, BUF, buf, 16), ==, 0);
	CHECK(memcmp(buf, "hello\0\0\0\0\0", 10) == 0 && (uint8_t)buf[10] == 0x55);
	CHECK_INT(dma(0x15 << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_SKIP, 2, 0), ==, 0);
	CHECK_INT(dma(FW_CFG_DMA_READ, 3, BUF), ==, 0);
	CHECK_INT(guest_memory_read(&mem, BUF, buf, 3), ==, 0);
	CHECK(memcmp(buf, "llo", 3) == 0);
	/* No operation bit: nothing moves, no error. */
	CHECK_INT(dma(0, 100, BUF), ==, 0);
	teardown();
}

TEST(fw_cfg_dma_checks_guest_addresses)
{
	uint32_t d[4] = {0};

	setup();
	/* Targets outside RAM, wrapping, or straddling its end fail with the error bit. */
	CHECK_INT(dma(0x00 << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4, 0xd0000000), ==, FW_CFG_DMA_ERROR);
	CHECK_INT(dma(0x00 << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 0x2000, UINT64_MAX - 0xfff), ==,
		  FW_CFG_DMA_ERROR);
	CHECK_INT(dma(0x00 << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 0x1000, (32ULL << 20) - 0x800), ==,
		  FW_CFG_DMA_ERROR);
	CHECK_INT(dma(0x00 << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 0xffffffff, BUF), ==, FW_CFG_DMA_ERROR);
	/* A descriptor outside RAM (or cut by its end) is ignored. */
	port_write(FW_CFG_PORT_DMA, be32(0x12), 4);
	port_write(FW_CFG_PORT_DMA + 4, be32(0x34), 4);
	port_write(FW_CFG_PORT_DMA, be32(0), 4);
	port_write(FW_CFG_PORT_DMA + 4, be32((32u << 20) - 8), 4);
	CHECK_INT(guest_memory_read(&mem, (32ULL << 20) - 8, d, 8), ==, 0);
	CHECK_INT(d[0], ==, 0);
	teardown();
}

TEST(fw_cfg_file_item_that_shrinks_reads_zeros)
{
	char path[] = "/tmp/casulo-fwcfg-XXXXXX", buf[8];
	int fd = mkstemp(path);

	setup();
	CHECK(fd >= 0);
	CHECK_INT(write(fd, "0123456789abcdef", 16), ==, 16);
	CHECK_INT(fw_cfg_set_item_file(f, 0x12, fd, 16), ==, 0);
	read_item(0x12, buf, 4);
	CHECK(memcmp(buf, "0123", 4) == 0);
	CHECK_INT(truncate(path, 6), ==, 0);
	/* Selecting again reads the file anew (the data port reads a block ahead). */
	read_item(0x12, buf, 8);
	CHECK(memcmp(buf, "012345\0\0", 8) == 0);
	memset(guest_memory_ptr(&mem, BUF, 8), 0x55, 8);
	CHECK_INT(dma(0x12 << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 8, BUF), ==, 0);
	CHECK_INT(guest_memory_read(&mem, BUF, buf, 8), ==, 0);
	CHECK(memcmp(buf, "012345\0\0", 8) == 0);
	unlink(path);
	teardown();
}
