/*
 * Fuzz target: fw_cfg's registers as a hostile guest drives them.  The
 * input is a list of port accesses (a byte for which register and size, up
 * to four bytes of value) and the contents of a small guest memory that
 * the DMA descriptors and their targets point into.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "vmm/devices/fw-cfg.h"
#include "vmm/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_memory mem;
	static int ready;
	struct err *e = NULL;
	struct fw_cfg *f;
	size_t ops = size / 2;

	if (!ready) {
		if (guest_memory_create(&mem, 32ULL << 20, &e) < 0)
			return 0;
		ready = 1;
	}
	/* The second half of the input is the first page of guest memory. */
	memset(mem.base, 0, 8192);
	memcpy(mem.base, data + ops, MIN(size - ops, (size_t)8192));
	f = fw_cfg_new(&mem);
	if (f == NULL)
		return 0;
	fw_cfg_set_item(f, 0x15, "console=ttyS0", 14);
	(void)fw_cfg_add_file(f, "etc/e820", data, (uint32_t)MIN(ops, (size_t)80), &e);
	err_free(&e);
	for (size_t i = 0; i + 5 <= ops; i += 5) {
		uint8_t op = data[i], buf[4];
		uint32_t len = 1u << (op & 3) > 4 ? 4 : 1u << (op & 3);
		uint64_t offset = (op >> 2) % FW_CFG_PORTS;

		memcpy(buf, data + i + 1, 4);
		if (offset + len > FW_CFG_PORTS)
			continue;
		fw_cfg_io(f, offset, buf, len, op & 0x80);
	}
	fw_cfg_free(f);
	return 0;
}
