/* Cgroup v1 resource files. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup/cgroup-internal.h"
#include "common/log.h"
#include "common/macro.h"

static int need(const struct cgroup *cg, const char *ctrl, const char *what, const char **dir, struct err **e)
{
	*dir = cgroup_v1_dir(cg, ctrl);
	if (*dir == NULL)
		return err_setx(e, ENOTSUP, "cgroup '%s': %s: the %s controller is not mounted", cg->rel, what, ctrl);
	return 0;
}

static void fmt_i64(char *buf, size_t n, int64_t v)
{
	snprintf(buf, n, "%lld", (long long)v);
}

/* runc's wording when the kernel refuses a limit below the usage. */
static int memory_limit_busy(const char *dir, int64_t limit, struct err **e)
{
	_cleanup_free_ char *usage = NULL, *peak = NULL;

	if (cgroup_read(dir, "memory.usage_in_bytes", &usage) < 0 ||
	    cgroup_read(dir, "memory.max_usage_in_bytes", &peak) < 0)
		return -EBUSY;
	usage[strcspn(usage, "\n")] = peak[strcspn(peak, "\n")] = '\0';
	return err_setx(e, EBUSY, "cgroup '%s': unable to set memory limit to %lld (current usage: %s, peak usage: %s)",
			dir, (long long)limit, usage, peak);
}

static int write_memory_limit(const char *dir, int64_t limit, struct err **e)
{
	char v[32];
	int r;

	fmt_i64(v, sizeof(v), limit);
	r = cgroup_write(dir, "memory.limit_in_bytes", v, e);
	if (r == -EBUSY && memory_limit_busy(dir, limit, e) != -EBUSY)
		return -EBUSY;
	return r;
}

/* The kernel wants limit <= memsw at every step: raise memsw first when
 * it grows past the current limit, lower it last otherwise (runc's order). */
static int set_memory_and_swap(const char *dir, const struct cgroup_resources *r, struct err **e)
{
	bool memsw = cgroup_has_file(dir, "memory.memsw.limit_in_bytes");
	bool has_swap = r->has_mem_swap;
	int64_t swap = r->mem_swap;
	char v[32];

	if (has_swap && !memsw && swap > 0 && !(r->has_mem_limit && swap == r->mem_limit))
		return err_setx(e, ENOTSUP,
				"cgroup '%s': memory.swap: swap accounting is off on this host "
				"(no memory.memsw.limit_in_bytes)",
				dir);
	if (!memsw)
		has_swap = false;
	else if (r->has_mem_limit && r->mem_limit == -1 && !has_swap)
		has_swap = true, swap = -1; /* unlimited memory lifts swap too */
	if (r->has_mem_limit && has_swap) {
		_cleanup_free_ char *cur = NULL;
		unsigned long long cur_limit = 0;
		if (cgroup_read(dir, "memory.limit_in_bytes", &cur) == 0)
			cur_limit = strtoull(cur, NULL, 10);
		if (swap == -1 || cur_limit < (unsigned long long)swap) {
			fmt_i64(v, sizeof(v), swap);
			if (cgroup_write(dir, "memory.memsw.limit_in_bytes", v, e) < 0)
				return -err_code(*e);
			return write_memory_limit(dir, r->mem_limit, e);
		}
	}
	if (r->has_mem_limit && write_memory_limit(dir, r->mem_limit, e) < 0)
		return -err_code(*e);
	if (has_swap) {
		fmt_i64(v, sizeof(v), swap);
		if (cgroup_write(dir, "memory.memsw.limit_in_bytes", v, e) < 0)
			return -err_code(*e);
	}
	return 0;
}

static int set_memory(struct cgroup *cg, const struct cgroup_resources *r, struct err **e)
{
	const char *dir;
	char v[32];
	int rc;

	if (!(r->has_mem_limit || r->has_mem_swap || r->has_mem_reservation || r->has_mem_kernel ||
	      r->has_mem_kernel_tcp || r->has_mem_swappiness || r->has_mem_disable_oom_killer ||
	      r->has_mem_use_hierarchy))
		return 0;
	if ((rc = need(cg, "memory", "memory", &dir, e)) < 0)
		return rc;
	if ((r->has_mem_limit || r->has_mem_swap) && (rc = set_memory_and_swap(dir, r, e)) < 0)
		return rc;
	if (r->has_mem_reservation) {
		fmt_i64(v, sizeof(v), r->mem_reservation);
		if ((rc = cgroup_write(dir, "memory.soft_limit_in_bytes", v, e)) < 0)
			return rc;
	}
	if (r->has_mem_kernel) {
		/* Deprecated by the kernel; kept where the file still works. */
		fmt_i64(v, sizeof(v), r->mem_kernel);
		if (!cgroup_has_file(dir, "memory.kmem.limit_in_bytes") ||
		    cgroup_write(dir, "memory.kmem.limit_in_bytes", v, NULL) < 0)
			log_warn("cgroup '%s': memory.kernel: not supported by this kernel, ignored", dir);
	}
	if (r->has_mem_kernel_tcp) {
		fmt_i64(v, sizeof(v), r->mem_kernel_tcp);
		if ((rc = cgroup_write(dir, "memory.kmem.tcp.limit_in_bytes", v, e)) < 0)
			return rc;
	}
	if (r->has_mem_swappiness) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)r->mem_swappiness);
		if ((rc = cgroup_write(dir, "memory.swappiness", v, e)) < 0)
			return rc;
	}
	if (r->has_mem_disable_oom_killer &&
	    (rc = cgroup_write(dir, "memory.oom_control", r->mem_disable_oom_killer ? "1" : "0", e)) < 0)
		return rc;
	if (r->has_mem_use_hierarchy && cgroup_has_file(dir, "memory.use_hierarchy"))
		(void)cgroup_write(dir, "memory.use_hierarchy", r->mem_use_hierarchy ? "1" : "0", NULL);
	return 0;
}

/* The cpu controller's numbers and their files, in runc's order. */
#define CPU_FILE(file, field, is_signed)                                                                               \
	{                                                                                                              \
		file, offsetof(struct cgroup_resources, has_cpu_##field),                                              \
		    offsetof(struct cgroup_resources, cpu_##field), is_signed                                          \
	}
static const struct cpu_file {
	const char *file;
	size_t has;   /* offset of the bool that says it was given */
	size_t value; /* offset of the uint64_t, or int64_t when is_signed */
	bool is_signed;
} cpu_files[] = {
    CPU_FILE("cpu.shares", shares, false),
    CPU_FILE("cpu.cfs_period_us", period, false),
    CPU_FILE("cpu.cfs_quota_us", quota, true),
    CPU_FILE("cpu.cfs_burst_us", burst, false),
    CPU_FILE("cpu.rt_period_us", rt_period, false),
    CPU_FILE("cpu.rt_runtime_us", rt_runtime, true),
    CPU_FILE("cpu.idle", idle, true),
};
#undef CPU_FILE

/* The number as the file takes it, or false when it is not given. */
static bool cpu_file_value(const struct cgroup_resources *r, const struct cpu_file *f, char *v, size_t n)
{
	bool has;
	uint64_t u;
	int64_t i;

	memcpy(&has, (const char *)r + f->has, sizeof(has));
	if (!has)
		return false;
	if (f->is_signed) {
		memcpy(&i, (const char *)r + f->value, sizeof(i));
		fmt_i64(v, n, i);
	} else {
		memcpy(&u, (const char *)r + f->value, sizeof(u));
		snprintf(v, n, "%llu", (unsigned long long)u);
	}
	return true;
}

static int set_cpu(struct cgroup *cg, const struct cgroup_resources *r, struct err **e)
{
	const char *dir = NULL;
	bool rt_period_later = false;
	char v[32], rt_period[32] = "";
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(cpu_files); i++) {
		const struct cpu_file *f = &cpu_files[i];
		if (!cpu_file_value(r, f, v, sizeof(v)))
			continue;
		if (dir == NULL && (rc = need(cg, "cpu", "cpu", &dir, e)) < 0)
			return rc;
		rc = cgroup_write(dir, f->file, v, e);
		/* The realtime period and runtime depend on each other: a period
		 * the kernel refuses with the old runtime is tried again after
		 * the new runtime (runc's order). */
		if (rc == -EINVAL && strcmp(f->file, "cpu.rt_period_us") == 0 && r->has_cpu_rt_runtime) {
			err_free(e);
			snprintf(rt_period, sizeof(rt_period), "%s", v);
			rt_period_later = true;
			continue;
		}
		if (rc < 0)
			return rc;
	}
	if (rt_period_later && (rc = cgroup_write(dir, "cpu.rt_period_us", rt_period, e)) < 0)
		return rc;
	if (r->has_cpu_weight && !r->has_cpu_shares) {
		if (dir == NULL && (rc = need(cg, "cpu", "cpu", &dir, e)) < 0)
			return rc;
		snprintf(v, sizeof(v), "%llu", (unsigned long long)cgroup_weight_to_shares(r->cpu_weight));
		if ((rc = cgroup_write(dir, "cpu.shares", v, e)) < 0)
			return rc;
	}
	if ((r->cpu_cpus && *r->cpu_cpus) || (r->cpu_mems && *r->cpu_mems)) {
		if ((rc = need(cg, "cpuset", "cpu.cpus", &dir, e)) < 0)
			return rc;
		if (r->cpu_cpus && *r->cpu_cpus && (rc = cgroup_write(dir, "cpuset.cpus", r->cpu_cpus, e)) < 0)
			return rc;
		if (r->cpu_mems && *r->cpu_mems && (rc = cgroup_write(dir, "cpuset.mems", r->cpu_mems, e)) < 0)
			return rc;
	}
	return 0;
}

static int set_blkio(struct cgroup *cg, const struct cgroup_resources *r, struct err **e)
{
	static const char *const throttle_files[CGROUP_THROTTLE_KINDS] = {
	    "blkio.throttle.read_bps_device",
	    "blkio.throttle.write_bps_device",
	    "blkio.throttle.read_iops_device",
	    "blkio.throttle.write_iops_device",
	};
	bool any = r->has_blkio_weight || r->has_blkio_leaf_weight || r->n_blkio_weight_devices;
	const char *dir, *weight_file;
	char v[96];
	int rc;

	for (int i = 0; i < CGROUP_THROTTLE_KINDS; i++)
		any |= r->n_blkio_throttle[i] > 0;
	if (!any)
		return 0;
	if ((rc = need(cg, "blkio", "blockIO", &dir, e)) < 0)
		return rc;
	/* CFQ is gone; BFQ names the same knob blkio.bfq.weight. */
	weight_file = cgroup_has_file(dir, "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
	if (r->has_blkio_weight) {
		if (!cgroup_has_file(dir, weight_file))
			return err_setx(e, ENOTSUP,
					"cgroup '%s': blockIO.weight: no blkio.weight or blkio.bfq.weight "
					"(no proportional I/O scheduler on this host)",
					dir);
		snprintf(v, sizeof(v), "%u", r->blkio_weight);
		if ((rc = cgroup_write(dir, weight_file, v, e)) < 0)
			return rc;
	}
	if (r->has_blkio_leaf_weight) {
		snprintf(v, sizeof(v), "%u", r->blkio_leaf_weight);
		if ((rc = cgroup_write(dir, "blkio.leaf_weight", v, e)) < 0)
			return rc;
	}
	for (size_t i = 0; i < r->n_blkio_weight_devices; i++) {
		const struct cgroup_weight_device *w = &r->blkio_weight_devices[i];
		if (!w->has_weight)
			continue;
		snprintf(v, sizeof(v), "%lld:%lld %u", (long long)w->major, (long long)w->minor, w->weight);
		if ((rc = cgroup_write(dir,
				       strcmp(weight_file, "blkio.weight") == 0 ? "blkio.weight_device" : weight_file,
				       v, e)) < 0)
			return rc;
	}
	for (int t = 0; t < CGROUP_THROTTLE_KINDS; t++) {
		for (size_t i = 0; i < r->n_blkio_throttle[t]; i++) {
			const struct cgroup_throttle *th = &r->blkio_throttle[t][i];
			snprintf(v, sizeof(v), "%lld:%lld %llu", (long long)th->major, (long long)th->minor,
				 (unsigned long long)th->rate);
			if ((rc = cgroup_write(dir, throttle_files[t], v, e)) < 0)
				return rc;
		}
	}
	return 0;
}

static int set_hugetlb(struct cgroup *cg, const struct cgroup_resources *r, struct err **e)
{
	const char *dir = cgroup_v1_dir(cg, "hugetlb");
	int rc;

	if (r->n_hugepages == 0)
		return 0;
	if (dir == NULL) {
		/* Hybrid hosts may keep hugetlb on cgroup2: v2.c writes it. */
		if (cg->mode == CGROUP_MODE_HYBRID && cg->unified.path)
			return 0;
		return err_setx(e, ENOTSUP, "cgroup '%s': hugepageLimits: no hugetlb controller", cg->rel);
	}
	for (size_t i = 0; i < r->n_hugepages; i++) {
		char file[96], v[32];
		snprintf(file, sizeof(file), "hugetlb.%s.limit_in_bytes", r->hugepages[i].page_size);
		snprintf(v, sizeof(v), "%llu", (unsigned long long)r->hugepages[i].limit);
		if ((rc = cgroup_write(dir, file, v, e)) < 0)
			return rc;
	}
	return 0;
}

int cgroup_v1_set(struct cgroup *cg, const struct cgroup_resources *r, struct err **e)
{
	const char *dir;
	char v[64];
	int rc;

	if ((rc = set_memory(cg, r, e)) < 0 || (rc = set_cpu(cg, r, e)) < 0 || (rc = set_blkio(cg, r, e)) < 0 ||
	    (rc = set_hugetlb(cg, r, e)) < 0)
		return rc;
	if (r->has_pids_limit) {
		if ((rc = need(cg, "pids", "pids", &dir, e)) < 0)
			return rc;
		if (r->pids_limit > 0)
			fmt_i64(v, sizeof(v), r->pids_limit);
		else
			strcpy(v, "max");
		if ((rc = cgroup_write(dir, "pids.max", v, e)) < 0)
			return rc;
	}
	if (r->has_net_class_id) {
		dir = cgroup_v1_dir(cg, "net_cls");
		if (dir == NULL) {
			log_warn("cgroup '%s': network.classID: net_cls is not mounted, ignored", cg->rel);
		} else {
			snprintf(v, sizeof(v), "%u", r->net_class_id);
			if ((rc = cgroup_write(dir, "net_cls.classid", v, e)) < 0)
				return rc;
		}
	}
	return 0;
}
