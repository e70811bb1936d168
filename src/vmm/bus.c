#include "vmm/bus.h"

#include <stdlib.h>
#include <string.h>

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

void bus_destroy(struct bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->count = bus->cap = 0;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_handler_fn handler, void *opaque, const char *owner,
		 struct err **e)
{
	unsigned pos = 0;

	if (len == 0 || base + len < base)
		return err_setx(e, EINVAL, "%s: bad range 0x%llx+0x%llx for %s", bus->name, (unsigned long long)base,
				(unsigned long long)len, owner);
	while (pos < bus->count && bus->ranges[pos].base < base)
		pos++;
	if ((pos > 0 && bus->ranges[pos - 1].base + bus->ranges[pos - 1].len > base) ||
	    (pos < bus->count && base + len > bus->ranges[pos].base)) {
		const struct bus_range *other = (pos > 0 && bus->ranges[pos - 1].base + bus->ranges[pos - 1].len > base)
						    ? &bus->ranges[pos - 1]
						    : &bus->ranges[pos];
		return err_setx(e, EBUSY, "%s: range 0x%llx+0x%llx for %s overlaps %s", bus->name,
				(unsigned long long)base, (unsigned long long)len, owner, other->owner);
	}
	if (bus->count == bus->cap) {
		unsigned cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_range *r = realloc(bus->ranges, cap * sizeof(*r));
		if (r == NULL)
			return err_set(e, ENOMEM, "%s: register %s", bus->name, owner);
		bus->ranges = r;
		bus->cap = cap;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos], (bus->count - pos) * sizeof(*bus->ranges));
	bus->ranges[pos] = (struct bus_range){base, len, handler, opaque, owner};
	bus->count++;
	return 0;
}

bool bus_dispatch(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	unsigned lo = 0, hi = bus->count;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (addr < r->base) {
			hi = mid;
		} else if (addr - r->base >= r->len) {
			lo = mid + 1;
		} else {
			/* An access straddling the end of a range is clipped: the
			 * device sees only its own bytes, the rest read as ones. */
			uint64_t off = addr - r->base;
			uint32_t n = (uint32_t)MIN((uint64_t)len, r->len - off);
			if (!is_write && n < len)
				memset(data + n, 0xff, len - n);
			r->handler(r->opaque, off, data, n, is_write);
			return true;
		}
	}
	return false;
}
