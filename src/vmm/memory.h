/*
 * Guest RAM: one anonymous host mapping split into KVM memory slots
 * around the 3-4 GiB MMIO hole.  Every access the VMM makes on behalf of
 * the guest goes through guest_memory_ptr(), which checks that the whole
 * range lies inside one slot (guest addresses are untrusted).
 */
#ifndef CASULO_VMM_MEMORY_H
#define CASULO_VMM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define GUEST_MEMORY_MAX_REGIONS 2
#define GUEST_MEMORY_ALIGN (2ULL << 20)

struct guest_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_memory {
	uint8_t *base;   /* start of the host mapping */
	uint64_t size;   /* total RAM in bytes */
	unsigned nregions;
	struct guest_region regions[GUEST_MEMORY_MAX_REGIONS];
	/* Pages the VMM itself wrote (device models), one bit per 4 KiB page
	 * of the host mapping, kept only while tracking is on (migration):
	 * KVM's dirty log sees the vCPUs' writes, not ours. */
	uint64_t *dirty;
	int tracking;
};

#define GUEST_PAGE_SIZE 4096ULL

/* Lay out size bytes of RAM (low part below the hole, the rest above 4 GiB)
 * and map them.  size must be page-aligned. */
int guest_memory_create(struct guest_memory *mem, uint64_t size, struct err **e);
/* The same layout, backed by a file's contents (a snapshot's memory):
 * mapped privately, so pages are read when the guest first touches them. */
int guest_memory_map_file(struct guest_memory *mem, uint64_t size, int fd, struct err **e);
/* Only compute the layout (regions with hva NULL); for tests and planning. */
void guest_memory_layout(struct guest_memory *mem, uint64_t size);
void guest_memory_destroy(struct guest_memory *mem);

/* Host pointer for [gpa, gpa+len) if it lies wholly in RAM, else NULL. */
void *guest_memory_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len);
int guest_memory_write(const struct guest_memory *mem, uint64_t gpa, const void *src, uint64_t len);
int guest_memory_read(const struct guest_memory *mem, uint64_t gpa, void *dst, uint64_t len);
/* Record that the VMM wrote [hva, hva+len) (a no-op unless tracking). */
void guest_memory_mark_dirty(const struct guest_memory *mem, const void *hva, uint64_t len);
/* Start or stop tracking the VMM's own writes. */
int guest_memory_track_dirty(struct guest_memory *mem, bool on);
/* Move the VMM-side dirty bits into out (one bit per page of the mapping,
 * OR-ed in) and clear them. */
void guest_memory_collect_dirty(struct guest_memory *mem, uint64_t *out);
/* End of the RAM below the MMIO hole. */
uint64_t guest_memory_low_end(const struct guest_memory *mem);

#endif
