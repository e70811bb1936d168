/* What backs guest RAM (--memory; docs/vmm.md, "Guest memory"): the
 * configuration both the option's parser and guest memory use. */
#ifndef CASULO_VMM_MEMORY_BACKEND_H
#define CASULO_VMM_MEMORY_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

enum memory_backend { MEMORY_BACKEND_ANON, MEMORY_BACKEND_MEMFD, MEMORY_BACKEND_FILE };
enum memory_policy { MEMORY_POLICY_DEFAULT, MEMORY_POLICY_BIND, MEMORY_POLICY_PREFERRED, MEMORY_POLICY_INTERLEAVE };
#define MEMORY_MAX_NODES 64

struct memory_config {
	enum memory_backend backend;
	const char *path;	/* MEMORY_BACKEND_FILE */
	uint64_t hugepage_size; /* 0 (4 KiB pages), 2 MiB or 1 GiB: hugetlb */
	bool shared;		/* MAP_SHARED (memfd always is) */
	bool mergeable;		/* MADV_MERGEABLE: KSM may merge its pages */
	bool prefault;		/* every page allocated at start */
	uint64_t host_nodes;	/* bit N: host NUMA node N */
	enum memory_policy policy;
};

static inline const char *memory_backend_name(enum memory_backend b)
{
	return b == MEMORY_BACKEND_MEMFD ? "memfd" : b == MEMORY_BACKEND_FILE ? "file" : "anon";
}

static inline const char *memory_policy_name(enum memory_policy p)
{
	return p == MEMORY_POLICY_BIND	       ? "bind"
	       : p == MEMORY_POLICY_PREFERRED  ? "preferred"
	       : p == MEMORY_POLICY_INTERLEAVE ? "interleave"
					       : "default";
}

#endif
