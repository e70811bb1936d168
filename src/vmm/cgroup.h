/*
 * casulo-vmm --cgroup: the whole VMM in a cgroup with limits, made on
 * libcasulo-cgroup (src/cgroup/, the runtime's cgroup code) on any layout
 * (v2, v1, or the hybrid one).  The process moves in before it maps guest
 * memory, so that the memory is charged there; when the VM ends it moves
 * back and removes the cgroup if it made it.
 */
#ifndef CASULO_VMM_CGROUP_H
#define CASULO_VMM_CGROUP_H

#include <stdint.h>

#include "common/err.h"

/* The least memory limit a VM needs beside its RAM: the VMM's own memory,
 * KVM's page tables and memory-slot tables (about 1/256 of guest RAM). */
#define VMM_CGROUP_OVERHEAD(guest_bytes) ((32ULL << 20) + (guest_bytes) / 256)

struct vmm_cgroup;

/*
 * spec: "PATH[,KEY=VALUE...]" with the limits of cgroup_limits_parse()
 * (memory=, cpu-quota=, cpu-weight=, cpus=, io-read-bps=...).  A relative
 * PATH is under the VMM's own cgroup.  guest_bytes (0: not known yet)
 * must fit in a memory limit with VMM_CGROUP_OVERHEAD, else EINVAL before
 * anything is made.  Creates the cgroup if needed, writes the limits and
 * moves the calling, still single-threaded process in.
 */
int vmm_cgroup_enter(const char *spec, uint64_t guest_bytes, struct vmm_cgroup **ret, struct err **e) MUST_CHECK;
/* The memory check of vmm_cgroup_enter() once guest_bytes is known (a
 * restored VM's size comes from its snapshot). */
int vmm_cgroup_check_memory(const struct vmm_cgroup *vc, uint64_t guest_bytes, struct err **e) MUST_CHECK;
/* The cgroup's path as given. */
const char *vmm_cgroup_path(const struct vmm_cgroup *vc);
/* Back to the cgroup the process came from; the cgroup is removed when
 * this VMM made it.  Failures are warnings. */
void vmm_cgroup_leave(struct vmm_cgroup *vc);

#endif
