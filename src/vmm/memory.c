#include "vmm/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/memfd.h> /* MFD_HUGE_*, and HUGETLB_FLAG_ENCODE_* for MAP_HUGE_* */
#include <linux/mempolicy.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/arch/x86/layout.h"

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB HUGETLB_FLAG_ENCODE_2MB
#define MAP_HUGE_1GB HUGETLB_FLAG_ENCODE_1GB
#endif

void guest_memory_layout(struct guest_memory *mem, uint64_t size)
{
	uint64_t low = MIN(size, LAYOUT_MMIO_HOLE_START);

	memset(mem, 0, sizeof(*mem));
	mem->size = size;
	mem->regions[0] = (struct guest_region){.gpa = 0, .size = low};
	mem->nregions = 1;
	if (size > low) {
		mem->regions[1] = (struct guest_region){.gpa = LAYOUT_MMIO_HOLE_END, .size = size - low};
		mem->nregions = 2;
	}
}

/*
 * KVM maps guest memory with huge pages only where the host address and
 * the guest address agree modulo the huge page size: align the mapping to
 * 2 MiB (every region starts at a 2 MiB multiple), or to the hugetlb page
 * size.  This reserves the addresses (PROT_NONE, NORESERVE: it costs
 * nothing); the backing is mapped over them with MAP_FIXED.
 */
static void *reserve_aligned(uint64_t size, uint64_t align)
{
	uint8_t *p = mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *aligned;

	if (p == MAP_FAILED)
		return MAP_FAILED;
	aligned = (uint8_t *)ALIGN_UP((uintptr_t)p, (uintptr_t)align);
	if (aligned > p)
		munmap(p, (size_t)(aligned - p));
	munmap(aligned + size, (size_t)(p + align - aligned));
	return aligned;
}

static int check_size(uint64_t size, struct err **e)
{
	if (size < LAYOUT_MIN_MEMORY)
		return err_setx(e, EINVAL, "memory: %llu MiB is too small (at least %llu MiB)",
				(unsigned long long)(size >> 20), LAYOUT_MIN_MEMORY >> 20);
	if (!IS_ALIGNED(size, 4096ULL))
		return err_setx(e, EINVAL, "memory: size %llu is not a multiple of 4 KiB", (unsigned long long)size);
	return 0;
}

static void set_region_addresses(struct guest_memory *mem, uint8_t *base)
{
	mem->base = base;
	mem->regions[0].hva = base;
	if (mem->nregions > 1)
		mem->regions[1].hva = base + mem->regions[0].size;
}

static int hugetlb_flags(uint64_t page_size)
{
	return page_size == 0 ? 0 : MAP_HUGETLB | (page_size == GiB ? MAP_HUGE_1GB : MAP_HUGE_2MB);
}

/* The memfd or the file behind the memory, sized; its fd in mem. */
static int open_backing(struct guest_memory *mem, const struct memory_config *cfg, uint64_t size, struct err **e)
{
	struct statfs sfs;
	struct stat st;
	int fd;

	if (cfg->backend == MEMORY_BACKEND_MEMFD) {
		unsigned flags = MFD_CLOEXEC;
		if (cfg->hugepage_size)
			flags |= MFD_HUGETLB | (cfg->hugepage_size == GiB ? MFD_HUGE_1GB : MFD_HUGE_2MB);
		fd = memfd_create("casulo-guest-ram", flags);
		if (fd < 0)
			return err_set(e, errno, "memory: memfd_create");
		if (ftruncate(fd, (off_t)size) < 0) {
			int saved = errno;
			close(fd);
			return err_set(e, saved, "memory: memfd: size %llu MiB", (unsigned long long)(size >> 20));
		}
	} else {
		fd = open(cfg->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return err_set(e, errno, "memory: backend file '%s'", cfg->path);
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fstatfs(fd, &sfs) < 0) {
			close(fd);
			return err_setx(e, EINVAL, "memory: backend file '%s' is not a regular file", cfg->path);
		}
		if (st.st_size == 0 && ftruncate(fd, (off_t)size) < 0) {
			int saved = errno;
			close(fd);
			return err_set(e, saved, "memory: backend file '%s': size %llu MiB", cfg->path,
				       (unsigned long long)(size >> 20));
		} else if (st.st_size != 0 && (uint64_t)st.st_size < size) {
			close(fd);
			return err_setx(e, EINVAL,
					"memory: backend file '%s' is %llu bytes, smaller than the guest's %llu MiB",
					cfg->path, (unsigned long long)st.st_size, (unsigned long long)(size >> 20));
		}
		/* A file on hugetlbfs has that mount's page size. */
		if (sfs.f_type == HUGETLBFS_MAGIC)
			mem->page_size = (uint64_t)sfs.f_bsize;
	}
	mem->fd = fd;
	mem->has_fd = true;
	return 0;
}

bool guest_memory_restores_lazily(const struct memory_config *cfg)
{
	return cfg->backend == MEMORY_BACKEND_ANON && !cfg->shared && cfg->hugepage_size == 0;
}

bool guest_memory_is_file_shared(const struct memory_config *cfg)
{
	return cfg->backend == MEMORY_BACKEND_FILE && cfg->shared;
}

/* mbind(2): glibc has no wrapper (libnuma has one; this is all we need of it). */
static int bind_nodes(struct guest_memory *mem, const struct memory_config *cfg, struct err **e)
{
	static const int modes[] = {
	    [MEMORY_POLICY_BIND] = MPOL_BIND,
	    [MEMORY_POLICY_PREFERRED] = MPOL_PREFERRED,
	    [MEMORY_POLICY_INTERLEAVE] = MPOL_INTERLEAVE,
	};
	unsigned long mask = (unsigned long)cfg->host_nodes;

	_Static_assert(sizeof(unsigned long) * 8 >= MEMORY_MAX_NODES, "one word of nodes");
	/* maxnode counts one more than the mask's bits, as the kernel reads it. */
	if (syscall(SYS_mbind, mem->base, (unsigned long)mem->size, modes[cfg->policy], &mask,
		    (unsigned long)MEMORY_MAX_NODES + 1, 0UL) < 0)
		return err_set(e, errno, "memory: mbind %s to host nodes %#llx", memory_policy_name(cfg->policy),
			       (unsigned long long)cfg->host_nodes);
	return 0;
}

/* Allocate every page now; an error here (ENOMEM, EFAULT when a hugetlb
 * pool on the bound nodes runs dry) is one the guest never meets. */
static int prefault(struct guest_memory *mem, struct err **e)
{
	volatile uint8_t *p = mem->base;

	if (madvise(mem->base, mem->size, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno != EINVAL) /* EINVAL: a kernel before 5.14 */
		return err_set(e, errno, "memory: prefault %llu MiB", (unsigned long long)(mem->size >> 20));
	for (uint64_t off = 0; off < mem->size; off += mem->page_size)
		p[off] = p[off];
	return 0;
}

int guest_memory_apply_policy(struct guest_memory *mem, const struct memory_config *cfg, struct err **e)
{
	if (cfg->host_nodes && bind_nodes(mem, cfg, e) < 0)
		return -EINVAL;
	if (cfg->mergeable && madvise(mem->base, mem->size, MADV_MERGEABLE) < 0)
		return err_set(e, errno, "memory: mergeable=on: madvise(MADV_MERGEABLE)");
	/* Transparent huge pages cut EPT/NPT misses for large guests; KSM
	 * merges only 4 KiB pages, so mergeable memory goes without. */
	if (mem->page_size == GUEST_PAGE_SIZE && !mem->shared)
		(void)madvise(mem->base, mem->size, cfg->mergeable ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
	/* hugetlb reservations are not per node: under a node policy, only
	 * taking the pages now makes sure the bound nodes have them. */
	if ((cfg->prefault || (cfg->hugepage_size && cfg->host_nodes)) && prefault(mem, e) < 0)
		return -ENOMEM;
	return 0;
}

int guest_memory_create_backed(struct guest_memory *mem, uint64_t size, const struct memory_config *cfg, struct err **e)
{
	uint64_t align = MAX(GUEST_MEMORY_ALIGN, cfg->hugepage_size);
	int flags = cfg->shared || cfg->backend == MEMORY_BACKEND_MEMFD ? MAP_SHARED : MAP_PRIVATE;
	void *base, *p;

	if (check_size(size, e) < 0)
		return -EINVAL;
	if (cfg->hugepage_size && !IS_ALIGNED(size, cfg->hugepage_size))
		return err_setx(e, EINVAL, "memory: %llu MiB is not a multiple of the hugepage size",
				(unsigned long long)(size >> 20));
	guest_memory_layout(mem, size);
	mem->backend = cfg->backend;
	mem->shared = flags == MAP_SHARED;
	mem->page_size = cfg->hugepage_size ? cfg->hugepage_size : GUEST_PAGE_SIZE;
	if (cfg->backend != MEMORY_BACKEND_ANON && open_backing(mem, cfg, size, e) < 0)
		return -EINVAL;
	base = reserve_aligned(size, MAX(align, mem->page_size));
	if (base == MAP_FAILED) {
		int saved = errno;
		guest_memory_destroy(mem);
		return err_set(e, saved, "memory: map %llu MiB", (unsigned long long)(size >> 20));
	}
	/* hugetlb without MAP_NORESERVE: the mapping reserves its pages from
	 * the pool now, so a pool too small fails here, not in the guest. */
	if (cfg->backend == MEMORY_BACKEND_ANON)
		flags |= MAP_ANONYMOUS | hugetlb_flags(cfg->hugepage_size) | (cfg->hugepage_size ? 0 : MAP_NORESERVE);
	p = mmap(base, size, PROT_READ | PROT_WRITE, flags | MAP_FIXED, mem->has_fd ? mem->fd : -1, 0);
	if (p == MAP_FAILED) {
		int saved = errno;
		munmap(base, size);
		guest_memory_destroy(mem);
		if (saved == ENOMEM && cfg->hugepage_size)
			return err_setx(e, ENOMEM, "memory: the host's %llu KiB hugepage pool cannot reserve %llu MiB",
					(unsigned long long)(cfg->hugepage_size >> 10),
					(unsigned long long)(size >> 20));
		return err_set(e, saved, "memory: map %llu MiB (%s)", (unsigned long long)(size >> 20),
			       memory_backend_name(cfg->backend));
	}
	set_region_addresses(mem, base);
	if (guest_memory_apply_policy(mem, cfg, e) < 0) {
		guest_memory_destroy(mem);
		return -EINVAL;
	}
	return 0;
}

int guest_memory_create(struct guest_memory *mem, uint64_t size, struct err **e)
{
	static const struct memory_config anonymous;

	return guest_memory_create_backed(mem, size, &anonymous, e);
}

int guest_memory_map_file(struct guest_memory *mem, uint64_t size, int fd, struct err **e)
{
	uint64_t off = 0;
	void *base;

	guest_memory_layout(mem, size);
	mem->page_size = GUEST_PAGE_SIZE;
	mem->from_snapshot = true;
	base = reserve_aligned(size, GUEST_MEMORY_ALIGN);
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

int guest_memory_fill_from_file(struct guest_memory *mem, int fd, struct err **e)
{
	off_t data = 0, hole;

	/* Only the file's data: its holes are zero pages, and fresh memory is zero. */
	while ((data = lseek(fd, data, SEEK_DATA)) >= 0 && (uint64_t)data < mem->size) {
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > mem->size)
			hole = (off_t)mem->size;
		while (data < hole) {
			ssize_t n = pread(fd, mem->base + data, (size_t)(hole - data), data);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return err_set(e, n < 0 ? errno : EIO, "memory: read the snapshot's memory file");
			data += n;
		}
	}
	if (data < 0 && errno != ENXIO) /* ENXIO: no data after the offset */
		return err_set(e, errno, "memory: the snapshot's memory file: seek");
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
	if (mem->has_fd)
		close(mem->fd);
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

bool guest_page_is_zero(const void *p)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < GUEST_PAGE_SIZE / 8; i++)
		if (w[i])
			return false;
	return true;
}
