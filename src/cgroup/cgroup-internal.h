/* Between the files of libcasulo-cgroup. */
#ifndef CASULO_CGROUP_INTERNAL_H
#define CASULO_CGROUP_INTERNAL_H

#include "cgroup/cgroup.h"

/* dir/file into *ret (NUL-terminated); 0 or -errno. */
int cgroup_read(const char *dir, const char *file, char **ret);
bool cgroup_has_file(const char *dir, const char *file);

/* Resource writers per version (v1.c, v2.c). */
int cgroup_v1_set(struct cgroup *cg, const struct cgroup_resources *r, struct err **e);
/* dir: the cgroup2 directory; hybrid: only what the v1 side cannot take. */
int cgroup_v2_set(struct cgroup *cg, const char *dir, const struct cgroup_resources *r, bool hybrid, struct err **e);

/* runc's conversions between v1 and v2 units. */
uint64_t cgroup_shares_to_weight(uint64_t shares);
uint64_t cgroup_weight_to_shares(uint64_t weight);
unsigned cgroup_blkio_to_io_weight(unsigned blkio_weight);

/* Attach the eBPF device program of rules to a cgroup2 directory (bpf.c). */
int cgroup_bpf_devices_attach(const char *dir, const struct cgroup_device_rule *rules, size_t n, struct err **e);

#endif
