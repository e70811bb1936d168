/*
 * Address-space dispatch for port I/O and MMIO exits.  Devices register
 * ranges while the VM is built; after that the table is read-only, so
 * vCPU threads look ranges up without a lock (devices lock themselves).
 */
#ifndef CASULO_VMM_BUS_H
#define CASULO_VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

/* offset is relative to the registered base; data holds len (1-8) bytes,
 * little-endian; for reads the handler fills it. */
typedef void (*bus_handler_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_handler_fn handler;
	void *opaque;
	const char *owner;
};

struct bus {
	const char *name;	  /* "pio" or "mmio", for messages */
	struct bus_range *ranges; /* sorted by base, non-overlapping */
	unsigned count;
	unsigned cap;
};

void bus_init(struct bus *bus, const char *name);
void bus_destroy(struct bus *bus);
int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_handler_fn handler, void *opaque, const char *owner,
		 struct err **e) MUST_CHECK;
/* Returns false when no device claims addr (the caller decides what an
 * unclaimed access means). */
bool bus_dispatch(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
