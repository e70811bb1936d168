#include "vmm/memory.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/arch/x86/layout.h"

void guest_memory_layout(struct guest_memory *mem, uint64_t size)
{
	uint64_t low = MIN(size, LAYOUT_MMIO_HOLE_START);

	memset(mem, 0, sizeof(*mem));
	mem->size = size;
	mem->regions[0] = (struct guest_region){ .gpa = 0, .size = low };
	mem->nregions = 1;
	if (size > low) {
		mem->regions[1] = (struct guest_region){ .gpa = LAYOUT_MMIO_HOLE_END, .size = size - low };
		mem->nregions = 2;
	}
}

/*
 * KVM maps guest memory with huge pages only where the host address and
 * the guest address agree modulo the huge page size: align the mapping to
 * 2 MiB (every region starts at a 2 MiB multiple).  NORESERVE: the
 * guest's untouched pages cost the host nothing.
 */
static void *map_aligned(uint64_t size, uint64_t align)
{
	uint8_t *p = mmap(NULL, size + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			  -1, 0);
	uint8_t *aligned;

	if (p == MAP_FAILED)
		return MAP_FAILED;
	aligned = (uint8_t *)ALIGN_UP((uintptr_t)p, (uintptr_t)align);
	if (aligned > p)
		munmap(p, (size_t)(aligned - p));
	munmap(aligned + size, (size_t)(p + align - aligned));
	return aligned;
}

int guest_memory_create(struct guest_memory *mem, uint64_t size, struct err **e)
{
	void *base;

	if (size < LAYOUT_MIN_MEMORY)
		return err_setx(e, EINVAL, "memory: %llu MiB is too small (at least %llu MiB)",
				(unsigned long long)(size >> 20), LAYOUT_MIN_MEMORY >> 20);
	if (!IS_ALIGNED(size, 4096ULL))
		return err_setx(e, EINVAL, "memory: size %llu is not a multiple of 4 KiB", (unsigned long long)size);
	guest_memory_layout(mem, size);
	base = map_aligned(size, GUEST_MEMORY_ALIGN);
	if (base == MAP_FAILED)
		return err_set(e, errno, "memory: map %llu MiB", (unsigned long long)(size >> 20));
	/* Transparent huge pages cut EPT/NPT misses for large guests. */
	(void)madvise(base, size, MADV_HUGEPAGE);
	mem->base = base;
	mem->regions[0].hva = base;
	if (mem->nregions > 1)
		mem->regions[1].hva = (uint8_t *)base + mem->regions[0].size;
	return 0;
}

int guest_memory_map_file(struct guest_memory *mem, uint64_t size, int fd, struct err **e)
{
	uint64_t off = 0;
	void *base;

	guest_memory_layout(mem, size);
	base = map_aligned(size, GUEST_MEMORY_ALIGN);
	if (base == MAP_FAILED)
		return err_set(e, errno, "memory: map %llu MiB", (unsigned long long)(size >> 20));
	mem->base = base;
	for (unsigned i = 0; i < mem->nregions; i++) {
		uint8_t *hva = (uint8_t *)base + off;
		/* Private: the guest's writes never reach the file; pages load on first touch. */
		if (mmap(hva, mem->regions[i].size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd,
			 (off_t)off) == MAP_FAILED) {
			int saved = errno;
			guest_memory_destroy(mem);
			return err_set(e, saved, "memory: map the snapshot's memory file");
		}
		mem->regions[i].hva = hva;
		off += mem->regions[i].size;
	}
	return 0;
}

void guest_memory_mark_dirty(const struct guest_memory *mem, const void *hva, uint64_t len)
{
	uint64_t first, last;

	if (!__atomic_load_n(&mem->tracking, __ATOMIC_ACQUIRE) || len == 0 || (const uint8_t *)hva < mem->base)
		return;
	first = (uint64_t)((const uint8_t *)hva - mem->base);
	if (first >= mem->size)
		return;
	last = MIN(first + len - 1, mem->size - 1);
	for (uint64_t page = first / GUEST_PAGE_SIZE; page <= last / GUEST_PAGE_SIZE; page++)
		__atomic_fetch_or(&mem->dirty[page / 64], 1ULL << (page % 64), __ATOMIC_RELAXED);
}

int guest_memory_track_dirty(struct guest_memory *mem, bool on)
{
	size_t words = (size_t)((mem->size / GUEST_PAGE_SIZE + 63) / 64);

	if (on && mem->dirty == NULL) {
		mem->dirty = calloc(words, sizeof(uint64_t));
		if (mem->dirty == NULL)
			return -ENOMEM;
	}
	__atomic_store_n(&mem->tracking, on, __ATOMIC_RELEASE);
	return 0;
}

void guest_memory_collect_dirty(struct guest_memory *mem, uint64_t *out)
{
	size_t words = (size_t)((mem->size / GUEST_PAGE_SIZE + 63) / 64);

	if (mem->dirty == NULL)
		return;
	for (size_t i = 0; i < words; i++)
		out[i] |= __atomic_exchange_n(&mem->dirty[i], 0, __ATOMIC_ACQ_REL);
}

void guest_memory_destroy(struct guest_memory *mem)
{
	free(mem->dirty);
	if (mem->base)
		munmap(mem->base, mem->size);
	memset(mem, 0, sizeof(*mem));
}

void *guest_memory_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct guest_region *r = &mem->regions[i];
		/* Written to avoid overflow: gpa and len are guest-controlled. */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa)) {
			if (r->hva == NULL)
				return NULL;
			return r->hva + (gpa - r->gpa);
		}
	}
	return NULL;
}

int guest_memory_write(const struct guest_memory *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = guest_memory_ptr(mem, gpa, len);

	if (p == NULL)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int guest_memory_read(const struct guest_memory *mem, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = guest_memory_ptr(mem, gpa, len);

	if (p == NULL)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

uint64_t guest_memory_low_end(const struct guest_memory *mem)
{
	return mem->regions[0].size;
}
