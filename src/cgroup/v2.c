/* Cgroup v2 resource files, with runc's conversions from the v1-shaped
 * fields (shares -> weight, quota+period -> cpu.max, ...). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup/cgroup-internal.h"
#include "common/file.h"
#include "common/log.h"
#include "common/macro.h"

uint64_t cgroup_shares_to_weight(uint64_t shares)
{
	/* runc's mapping of shares [2, 262144] onto weight [1, 10000]. */
	uint64_t s = shares < 2 ? 2 : shares > 262144 ? 262144 : shares;

	return 1 + ((s - 2) * 9999) / 262142;
}

uint64_t cgroup_weight_to_shares(uint64_t weight)
{
	uint64_t w = weight < 1 ? 1 : weight > 10000 ? 10000 : weight;

	return 2 + ((w - 1) * 262142 + 9998) / 9999;
}

unsigned cgroup_blkio_to_io_weight(unsigned blkio_weight)
{
	unsigned w = blkio_weight < 10 ? 10 : blkio_weight > 1000 ? 1000 : blkio_weight;

	return 1 + (w - 10) * 9999 / 990;
}

/* Enable every available controller in each ancestor's subtree_control,
 * from the mount point down to dir's parent (failures are left to the
 * write that needs the controller, which names it). */
static void enable_controllers(const struct cgroup *cg, const char *dir)
{
	char path[4200];
	_cleanup_free_ char *avail = NULL;
	const char *mnt = cg->unified.mountpoint;

	if (mnt == NULL || strncmp(dir, mnt, strlen(mnt)) != 0 || cgroup_read(mnt, "cgroup.controllers", &avail) < 0)
		return;
	for (size_t p = strlen(mnt); dir[p]; p++) {
		char *copy, *save = NULL;

		if (dir[p] != '/')
			continue;
		snprintf(path, sizeof(path), "%.*s/cgroup.subtree_control", (int)p, dir);
		copy = strdup(avail);
		for (char *t = copy ? strtok_r(copy, " \n", &save) : NULL; t; t = strtok_r(NULL, " \n", &save)) {
			char want[64];
			snprintf(want, sizeof(want), "+%s", t);
			(void)write_file_str(path, want);
		}
		free(copy);
	}
}

/* Write a file that a controller provides: its absence names the controller. */
static int write2(const char *dir, const char *file, const char *value, const char *field, struct err **e)
{
	int r;

	if (!cgroup_has_file(dir, file)) {
		const char *dot = strchr(file, '.');
		return err_setx(e, ENOTSUP, "cgroup '%s': %s: %s is missing (is the %.*s controller enabled?)", dir,
				field, file, dot ? (int)(dot - file) : (int)strlen(file), file);
	}
	r = cgroup_write(dir, file, value, NULL);
	if (r < 0)
		return err_set(e, -r, "cgroup '%s': %s: write '%s' to %s", dir, field, value, file);
	return 0;
}

static void limit_or_max(char *v, size_t n, int64_t limit)
{
	if (limit < 0)
		snprintf(v, n, "max");
	else
		snprintf(v, n, "%lld", (long long)limit);
}

static int set_hugetlb(const char *dir, const struct cgroup_resources *r, struct err **e)
{
	for (size_t i = 0; i < r->n_hugepages; i++) {
		char file[96], v[32];
		snprintf(file, sizeof(file), "hugetlb.%s.max", r->hugepages[i].page_size);
		snprintf(v, sizeof(v), "%llu", (unsigned long long)r->hugepages[i].limit);
		if (write2(dir, file, v, "hugepageLimits", e) < 0)
			return -err_code(*e);
	}
	return 0;
}

static int set_memory(const char *dir, const struct cgroup_resources *r, struct err **e)
{
	int64_t limit = r->mem_limit;
	bool has_swap = r->has_mem_swap;
	int64_t swap = r->mem_swap;
	char v[32];

	if (has_swap && swap != -1 && !r->has_mem_limit) {
		/* OCI's swap is memory+swap: converting it needs the limit. */
		_cleanup_free_ char *cur = NULL;
		limit = cgroup_read(dir, "memory.max", &cur) < 0 || strncmp(cur, "max", 3) == 0
			    ? -1
			    : strtoll(cur, NULL, 10);
	}
	if (r->has_mem_limit && r->mem_limit == -1 && !has_swap)
		has_swap = true, swap = -1; /* unlimited memory lifts swap too (runc) */
	if (has_swap && swap != -1 && limit < 0)
		return err_setx(e, EINVAL, "cgroup '%s': memory.swap: unable to set swap limit without memory limit",
				dir);
	if (has_swap && swap != -1 && swap < limit)
		return err_setx(e, EINVAL, "cgroup '%s': memory.swap: memory+swap limit should be >= memory limit",
				dir);
	if (r->has_mem_limit) {
		limit_or_max(v, sizeof(v), r->mem_limit);
		if (write2(dir, "memory.max", v, "memory.limit", e) < 0)
			return -err_code(*e);
	}
	/* memory.swap.max is swap alone; a host without swap accounting has
	 * no file, which matters only for a real limit. */
	if (has_swap && (swap != -1 || cgroup_has_file(dir, "memory.swap.max"))) {
		limit_or_max(v, sizeof(v), swap == -1 ? -1 : swap - limit);
		if (write2(dir, "memory.swap.max", v, "memory.swap", e) < 0)
			return -err_code(*e);
	}
	if (r->has_mem_reservation) {
		limit_or_max(v, sizeof(v), r->mem_reservation);
		if (write2(dir, "memory.low", v, "memory.reservation", e) < 0)
			return -err_code(*e);
	}
	if (r->has_mem_kernel || r->has_mem_kernel_tcp)
		log_warn("cgroup '%s': memory.kernel*: not supported on cgroup v2, ignored", dir);
	if (r->has_mem_swappiness)
		return err_setx(e, ENOTSUP, "cgroup '%s': memory.swappiness: not supported on cgroup v2", dir);
	if (r->has_mem_disable_oom_killer && r->mem_disable_oom_killer)
		return err_setx(e, ENOTSUP, "cgroup '%s': memory.disableOOMKiller: not supported on cgroup v2", dir);
	return 0;
}

static int set_cpu(const char *dir, const struct cgroup_resources *r, struct err **e)
{
	char v[64];

	if (r->has_cpu_shares || r->has_cpu_weight) {
		uint64_t w = r->has_cpu_weight ? r->cpu_weight : cgroup_shares_to_weight(r->cpu_shares);
		snprintf(v, sizeof(v), "%llu", (unsigned long long)w);
		if (write2(dir, "cpu.weight", v, r->has_cpu_weight ? "cpu.weight" : "cpu.shares", e) < 0)
			return -err_code(*e);
	}
	if (r->has_cpu_quota || r->has_cpu_period) {
		_cleanup_free_ char *cur = NULL;
		char quota[32] = "max";
		unsigned long long period = 100000;
		/* One of the two alone keeps the other's current value. */
		if (cgroup_read(dir, "cpu.max", &cur) == 0)
			sscanf(cur, "%31s %llu", quota, &period);
		if (r->has_cpu_period)
			period = r->cpu_period;
		if (r->has_cpu_quota && r->cpu_quota < 0)
			strcpy(quota, "max");
		else if (r->has_cpu_quota)
			snprintf(quota, sizeof(quota), "%lld", (long long)r->cpu_quota);
		snprintf(v, sizeof(v), "%s %llu", quota, period);
		if (write2(dir, "cpu.max", v, "cpu.quota", e) < 0)
			return -err_code(*e);
	}
	if (r->has_cpu_burst) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)r->cpu_burst);
		if (write2(dir, "cpu.max.burst", v, "cpu.burst", e) < 0)
			return -err_code(*e);
	}
	if (r->has_cpu_idle) {
		snprintf(v, sizeof(v), "%lld", (long long)r->cpu_idle);
		if (write2(dir, "cpu.idle", v, "cpu.idle", e) < 0)
			return -err_code(*e);
	}
	if (r->has_cpu_rt_period || r->has_cpu_rt_runtime)
		return err_setx(e, ENOTSUP, "cgroup '%s': cpu.realtime*: not supported on cgroup v2", dir);
	if (r->cpu_cpus && *r->cpu_cpus && write2(dir, "cpuset.cpus", r->cpu_cpus, "cpu.cpus", e) < 0)
		return -err_code(*e);
	if (r->cpu_mems && *r->cpu_mems && write2(dir, "cpuset.mems", r->cpu_mems, "cpu.mems", e) < 0)
		return -err_code(*e);
	return 0;
}

static int set_io(const char *dir, const struct cgroup_resources *r, struct err **e)
{
	static const char *const keys[CGROUP_THROTTLE_KINDS] = {"rbps", "wbps", "riops", "wiops"};
	bool bfq = cgroup_has_file(dir, "io.bfq.weight");
	char v[96];

	if (r->has_blkio_weight) {
		/* BFQ takes the blkio scale; io.weight its own. */
		if (bfq)
			snprintf(v, sizeof(v), "%u", r->blkio_weight);
		else
			snprintf(v, sizeof(v), "default %u", cgroup_blkio_to_io_weight(r->blkio_weight));
		if (write2(dir, bfq ? "io.bfq.weight" : "io.weight", v, "blockIO.weight", e) < 0)
			return -err_code(*e);
	}
	for (size_t i = 0; i < r->n_blkio_weight_devices; i++) {
		const struct cgroup_weight_device *w = &r->blkio_weight_devices[i];
		if (!w->has_weight)
			continue;
		snprintf(v, sizeof(v), "%lld:%lld %u", (long long)w->major, (long long)w->minor,
			 bfq ? w->weight : cgroup_blkio_to_io_weight(w->weight));
		if (write2(dir, bfq ? "io.bfq.weight" : "io.weight", v, "blockIO.weightDevice", e) < 0)
			return -err_code(*e);
	}
	for (int t = 0; t < CGROUP_THROTTLE_KINDS; t++) {
		for (size_t i = 0; i < r->n_blkio_throttle[t]; i++) {
			const struct cgroup_throttle *th = &r->blkio_throttle[t][i];
			snprintf(v, sizeof(v), "%lld:%lld %s=%llu", (long long)th->major, (long long)th->minor, keys[t],
				 (unsigned long long)th->rate);
			if (write2(dir, "io.max", v, "blockIO.throttle", e) < 0)
				return -err_code(*e);
		}
	}
	return 0;
}

int cgroup_v2_set(struct cgroup *cg, const char *dir, const struct cgroup_resources *r, bool hybrid, struct err **e)
{
	char v[32];
	int rc;

	enable_controllers(cg, dir);
	if (hybrid) {
		/* Only what the v1 side cannot take: hugetlb, unified keys. */
		if (r->n_hugepages && cgroup_v1_dir(cg, "hugetlb") == NULL && (rc = set_hugetlb(dir, r, e)) < 0)
			return rc;
	} else {
		if ((rc = set_memory(dir, r, e)) < 0 || (rc = set_cpu(dir, r, e)) < 0 || (rc = set_io(dir, r, e)) < 0 ||
		    (rc = set_hugetlb(dir, r, e)) < 0)
			return rc;
		if (r->has_pids_limit) {
			limit_or_max(v, sizeof(v), r->pids_limit > 0 ? r->pids_limit : -1);
			if (write2(dir, "pids.max", v, "pids.limit", e) < 0)
				return -err_code(*e);
		}
		if (r->has_net_class_id)
			log_warn("cgroup '%s': network.classID: not supported on cgroup v2, ignored", dir);
	}
	for (size_t i = 0; i < r->n_unified; i++) {
		char field[300];
		snprintf(field, sizeof(field), "unified.%s", r->unified[i].key);
		if (write2(dir, r->unified[i].key, r->unified[i].value, field, e) < 0)
			return -err_code(*e);
	}
	return 0;
}
