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
#include "vmm/memory-backend.h"

#define GUEST_MEMORY_MAX_REGIONS 2
#define GUEST_MEMORY_ALIGN (2ULL << 20)

struct guest_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_memory {
	uint8_t *base; /* start of the host mapping */
	uint64_t size; /* total RAM in bytes */
	unsigned nregions;
	struct guest_region regions[GUEST_MEMORY_MAX_REGIONS];
	/* Pages the VMM itself wrote (device models), one bit per 4 KiB page
	 * of the host mapping, kept only while tracking is on (migration):
	 * KVM's dirty log sees the vCPUs' writes, not ours. */
	uint64_t *dirty;
	int tracking;
	/* What backs it, as built (GET /vm shows this, not the request). */
	enum memory_backend backend;
	uint64_t page_size; /* 4 KiB, or the hugetlb page size */
	bool shared;
	bool from_snapshot; /* mapped privately from a snapshot's memory file */
	bool has_fd;
	int fd; /* the memfd or the backing file, when has_fd */
};

#define GUEST_PAGE_SIZE 4096ULL

/* Lay out size bytes of RAM (low part below the hole, the rest above 4 GiB)
 * and map them.  size must be page-aligned. */
int guest_memory_create(struct guest_memory *mem, uint64_t size, struct err **e) MUST_CHECK;
/* The same, backed as cfg says (--memory): hugetlb pages are reserved by
 * the mapping itself (no MAP_NORESERVE), so a pool too small fails here
 * with ENOMEM instead of a SIGBUS in the guest later; 4 KiB anonymous
 * memory is MAP_NORESERVE (overcommit: untouched pages cost nothing). */
int guest_memory_create_backed(struct guest_memory *mem, uint64_t size, const struct memory_config *cfg,
			       struct err **e) MUST_CHECK;
/* Whether a snapshot of memory backed so maps the snapshot's file
 * privately on restore (anonymous 4 KiB private memory) or must fill
 * memory backed as cfg says. */
bool guest_memory_restores_lazily(const struct memory_config *cfg);
/* Memory that is the backing file itself (backend=file,shared=on):
 * snapshots record the file instead of copying it. */
bool guest_memory_is_file_shared(const struct memory_config *cfg);
/* The policy, KSM and prefault parts of cfg, on memory already mapped. */
int guest_memory_apply_policy(struct guest_memory *mem, const struct memory_config *cfg, struct err **e) MUST_CHECK;
/* The same layout, backed by a file's contents (a snapshot's memory):
 * mapped privately, so pages are read when the guest first touches them. */
int guest_memory_map_file(struct guest_memory *mem, uint64_t size, int fd, struct err **e) MUST_CHECK;
/* Copy a snapshot's memory file (size bytes, holes read as zeros and
 * skipped) into memory already mapped. */
int guest_memory_fill_from_file(struct guest_memory *mem, int fd, struct err **e) MUST_CHECK;
/* Only compute the layout (regions with hva NULL); for tests and planning. */
void guest_memory_layout(struct guest_memory *mem, uint64_t size);
void guest_memory_destroy(struct guest_memory *mem);

/* Host pointer for [gpa, gpa+len) if it lies wholly in RAM, else NULL. */
void *guest_memory_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len);
int guest_memory_write(const struct guest_memory *mem, uint64_t gpa, const void *src, uint64_t len) MUST_CHECK;
int guest_memory_read(const struct guest_memory *mem, uint64_t gpa, void *dst, uint64_t len) MUST_CHECK;
/* Record that the VMM wrote [hva, hva+len) (a no-op unless tracking). */
void guest_memory_mark_dirty(const struct guest_memory *mem, const void *hva, uint64_t len);
/* Start or stop tracking the VMM's own writes. */
int guest_memory_track_dirty(struct guest_memory *mem, bool on) MUST_CHECK;
/* Move the VMM-side dirty bits into out (one bit per page of the mapping,
 * OR-ed in) and clear them. */
void guest_memory_collect_dirty(struct guest_memory *mem, uint64_t *out);
/* Is the page at p (GUEST_PAGE_SIZE bytes, 8-byte aligned: guest RAM
 * is) all zeros?  Snapshots leave such pages out, migration sends a
 * record instead. */
bool guest_page_is_zero(const void *p);
/* End of the RAM below the MMIO hole. */
uint64_t guest_memory_low_end(const struct guest_memory *mem);

#endif
