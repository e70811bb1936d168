/*
 * Fuzz target: what restore checks in a snapshot whose checksums are all
 * valid (vm_snapshot_check(): vm.config against the command line's
 * limits, duplicate and contradictory sections, the irqchip, pit and
 * clock fields).  The input is a list of sections, written with valid
 * CRCs so that every input reaches the checks:
 *
 *   repeated: u8 which (the low 4 bits pick a name from names[], bit 7
 *             makes the section's version 2), u16 length (little-endian),
 *             that many bytes of contents (fewer at the end of the input)
 *
 * vm.config's contents become its length-prefixed string.  A state the
 * check passes must keep every limit; a refused one must say why in one
 * line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config.h"
#include "vmm/snapshot/format.h"
#include "vmm/snapshot/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
    "vm.config", "irqchip", "pit",	  "clock", "vcpu.0",  "vcpu.1",
    "vcpu.2",	 "vcpu.00", "dev.serial", "vcpu.", "vcpu.-1", "vcpu.254",
};

#define MAX_SECTIONS 64

static void put_sections(struct snap_writer *w, const uint8_t *data, size_t size)
{
	size_t pos = 0;

	for (int n = 0; n < MAX_SECTIONS && pos + 3 <= size; n++) {
		uint8_t which = data[pos];
		size_t len = (size_t)data[pos + 1] | (size_t)data[pos + 2] << 8;
		const char *name = names[(which & 0x0f) % (sizeof(names) / sizeof(names[0]))];

		pos += 3;
		if (len > size - pos)
			len = size - pos;
		snap_section_begin(w, name, which & 0x80 ? 2 : 1);
		if (strcmp(name, "vm.config") == 0)
			snap_put_u32(w, (uint32_t)len);
		snap_put_bytes(w, data + pos, len);
		snap_section_end(w);
		pos += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_writer w;
	struct snap_reader r;
	struct vm_config cfg;
	struct err *e = NULL;

	snap_writer_init(&w, "fuzz");
	put_sections(&w, data, size);
	if (snap_writer_finish(&w) < 0) {
		snap_writer_free(&w);
		return 0; /* out of memory */
	}
	if (snap_reader_parse(&r, w.buf, w.len, &e) < 0)
		abort(); /* the writer's own output must read back */
	if (vm_snapshot_check(&r, &cfg, &e) == 0) {
		if (e != NULL || cfg.cpus < 1 || cfg.cpus > VM_MAX_CPUS || cfg.memory < (32ULL << 20) ||
		    cfg.memory % (2ULL << 20) || cfg.memory > vm_config_max_memory())
			abort();
		vm_config_free(&cfg);
	} else if (e == NULL || e->msg[0] == '\0' || strchr(e->msg, '\n')) {
		abort();
	}
	err_free(&e);
	snap_reader_free(&r);
	snap_writer_free(&w);
	return 0;
}
