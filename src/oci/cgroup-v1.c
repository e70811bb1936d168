/* Cgroup v1 resource files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "oci/cgroup.h"
#include "oci/spec.h"
#include "oci/util.h"

static bool has_file(const char *dir, const char *file)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

static int need(const struct cgroup *cg, const char *ctrl, const char *field, const char **dir, struct err **e)
{
	*dir = cgroup_v1_dir(cg, ctrl);
	if (*dir == NULL)
		return err_setx(e, ENOTSUP, "cgroup '%s': linux.resources.%s: the %s controller is not mounted",
				cg->rel, field, ctrl);
	return 0;
}

static void fmt_i64(char *buf, size_t n, int64_t v)
{
	snprintf(buf, n, "%lld", (long long)v);
}

static int set_memory(struct cgroup *cg, const struct oci_resources *r, struct err **e)
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
	if (r->has_mem_limit || r->has_mem_swap) {
		bool memsw = has_file(dir, "memory.memsw.limit_in_bytes");
		if (r->has_mem_swap && !memsw && r->mem_swap > 0 && !(r->has_mem_limit && r->mem_swap == r->mem_limit))
			return err_setx(e, ENOTSUP,
					"cgroup '%s': linux.resources.memory.swap: swap accounting is off on this host "
					"(no memory.memsw.limit_in_bytes)",
					dir);
		/* The kernel wants limit <= memsw at every step: raise memsw first
		 * when it grows, lower it last when it shrinks. */
		if (r->has_mem_limit) {
			fmt_i64(v, sizeof(v), r->mem_limit);
			rc = cgroup_write(dir, "memory.limit_in_bytes", v, e);
			if (rc < 0 && !(r->has_mem_swap && memsw))
				return rc;
		} else {
			rc = 0;
		}
		if (r->has_mem_swap && memsw) {
			fmt_i64(v, sizeof(v), r->mem_swap);
			if (cgroup_write(dir, "memory.memsw.limit_in_bytes", v, e) < 0)
				return -err_code(*e);
			if (rc < 0) {
				fmt_i64(v, sizeof(v), r->mem_limit);
				if (cgroup_write(dir, "memory.limit_in_bytes", v, e) < 0)
					return -err_code(*e);
			}
			err_free(e);
		} else if (r->has_mem_limit && r->mem_limit == -1 && memsw && !r->has_mem_swap) {
			/* Unlimited memory with unset swap: lift memsw too, as runc. */
			(void)cgroup_write(dir, "memory.memsw.limit_in_bytes", "-1", NULL);
		}
	}
	if (r->has_mem_reservation) {
		fmt_i64(v, sizeof(v), r->mem_reservation);
		if ((rc = cgroup_write(dir, "memory.soft_limit_in_bytes", v, e)) < 0)
			return rc;
	}
	if (r->has_mem_kernel) {
		/* Deprecated by the kernel; kept where the file still works. */
		fmt_i64(v, sizeof(v), r->mem_kernel);
		if (!has_file(dir, "memory.kmem.limit_in_bytes") ||
		    cgroup_write(dir, "memory.kmem.limit_in_bytes", v, NULL) < 0)
			log_warn("cgroup '%s': linux.resources.memory.kernel: not supported by this kernel, ignored",
				 dir);
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
	if (r->has_mem_disable_oom_killer && r->mem_disable_oom_killer)
		if ((rc = cgroup_write(dir, "memory.oom_control", "1", e)) < 0)
			return rc;
	if (r->has_mem_use_hierarchy && r->mem_use_hierarchy && has_file(dir, "memory.use_hierarchy"))
		(void)cgroup_write(dir, "memory.use_hierarchy", "1", NULL);
	return 0;
}

static int set_cpu(struct cgroup *cg, const struct oci_resources *r, struct err **e)
{
	const char *dir;
	char v[32];
	int rc;

	if (r->has_cpu_shares || r->has_cpu_quota || r->has_cpu_period || r->has_cpu_rt_runtime ||
	    r->has_cpu_rt_period || r->has_cpu_burst || r->has_cpu_idle) {
		if ((rc = need(cg, "cpu", "cpu", &dir, e)) < 0)
			return rc;
		if (r->has_cpu_shares && r->cpu_shares) {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)r->cpu_shares);
			if ((rc = cgroup_write(dir, "cpu.shares", v, e)) < 0)
				return rc;
		}
		if (r->has_cpu_period && r->cpu_period) {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)r->cpu_period);
			if ((rc = cgroup_write(dir, "cpu.cfs_period_us", v, e)) < 0)
				return rc;
		}
		if (r->has_cpu_quota && r->cpu_quota) {
			fmt_i64(v, sizeof(v), r->cpu_quota);
			if ((rc = cgroup_write(dir, "cpu.cfs_quota_us", v, e)) < 0)
				return rc;
		}
		if (r->has_cpu_burst) {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)r->cpu_burst);
			if ((rc = cgroup_write(dir, "cpu.cfs_burst_us", v, e)) < 0)
				return rc;
		}
		if (r->has_cpu_rt_period && r->cpu_rt_period) {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)r->cpu_rt_period);
			if ((rc = cgroup_write(dir, "cpu.rt_period_us", v, e)) < 0)
				return rc;
		}
		if (r->has_cpu_rt_runtime && r->cpu_rt_runtime) {
			fmt_i64(v, sizeof(v), r->cpu_rt_runtime);
			if ((rc = cgroup_write(dir, "cpu.rt_runtime_us", v, e)) < 0)
				return rc;
		}
		if (r->has_cpu_idle) {
			fmt_i64(v, sizeof(v), r->cpu_idle);
			if ((rc = cgroup_write(dir, "cpu.idle", v, e)) < 0)
				return rc;
		}
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

static int set_blkio(struct cgroup *cg, const struct oci_resources *r, struct err **e)
{
	static const char *const throttle_files[4] = {
	    "blkio.throttle.read_bps_device",
	    "blkio.throttle.write_bps_device",
	    "blkio.throttle.read_iops_device",
	    "blkio.throttle.write_iops_device",
	};
	bool any = r->has_blkio_weight || r->has_blkio_leaf_weight || r->n_blkio_weight_devices;
	const char *dir, *weight_file;
	char v[96];
	int rc;

	for (int i = 0; i < 4; i++)
		any |= r->n_blkio_throttle[i] > 0;
	if (!any)
		return 0;
	if ((rc = need(cg, "blkio", "blockIO", &dir, e)) < 0)
		return rc;
	/* CFQ is gone; BFQ names the same knob blkio.bfq.weight. */
	weight_file = has_file(dir, "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
	if (r->has_blkio_weight && r->blkio_weight) {
		if (!has_file(dir, weight_file))
			return err_setx(
			    e, ENOTSUP,
			    "cgroup '%s': linux.resources.blockIO.weight: no blkio.weight or blkio.bfq.weight "
			    "(no proportional I/O scheduler on this host)",
			    dir);
		snprintf(v, sizeof(v), "%u", r->blkio_weight);
		if ((rc = cgroup_write(dir, weight_file, v, e)) < 0)
			return rc;
	}
	if (r->has_blkio_leaf_weight && r->blkio_leaf_weight) {
		snprintf(v, sizeof(v), "%u", r->blkio_leaf_weight);
		if ((rc = cgroup_write(dir, "blkio.leaf_weight", v, e)) < 0)
			return rc;
	}
	for (size_t i = 0; i < r->n_blkio_weight_devices; i++) {
		const struct oci_weight_device *w = &r->blkio_weight_devices[i];
		if (w->has_weight) {
			snprintf(v, sizeof(v), "%lld:%lld %u", (long long)w->major, (long long)w->minor, w->weight);
			if ((rc = cgroup_write(dir,
					       strcmp(weight_file, "blkio.weight") == 0 ? "blkio.weight_device"
											: "blkio.bfq.weight",
					       v, e)) < 0)
				return rc;
		}
	}
	for (int t = 0; t < 4; t++) {
		for (size_t i = 0; i < r->n_blkio_throttle[t]; i++) {
			const struct oci_throttle *th = &r->blkio_throttle[t][i];
			snprintf(v, sizeof(v), "%lld:%lld %llu", (long long)th->major, (long long)th->minor,
				 (unsigned long long)th->rate);
			if ((rc = cgroup_write(dir, throttle_files[t], v, e)) < 0)
				return rc;
		}
	}
	return 0;
}

int cgroup_v1_set(struct cgroup *cg, const struct oci_resources *r, bool updating, struct err **e)
{
	const char *dir;
	char v[64];
	int rc;

	(void)updating;
	if ((rc = set_memory(cg, r, e)) < 0 || (rc = set_cpu(cg, r, e)) < 0 || (rc = set_blkio(cg, r, e)) < 0)
		return rc;
	if (r->has_pids_limit) {
		if ((rc = need(cg, "pids", "pids", &dir, e)) < 0)
			return rc;
		if (r->pids_limit > 0)
			snprintf(v, sizeof(v), "%lld", (long long)r->pids_limit);
		else
			strcpy(v, "max");
		if ((rc = cgroup_write(dir, "pids.max", v, e)) < 0)
			return rc;
	}
	if (r->n_hugepages) {
		dir = cgroup_v1_dir(cg, "hugetlb");
		if (dir) {
			for (size_t i = 0; i < r->n_hugepages; i++) {
				char file[96];
				snprintf(file, sizeof(file), "hugetlb.%s.limit_in_bytes", r->hugepages[i].page_size);
				snprintf(v, sizeof(v), "%llu", (unsigned long long)r->hugepages[i].limit);
				if ((rc = cgroup_write(dir, file, v, e)) < 0)
					return rc;
			}
		} else if (cg->mode != CGROUP_MODE_HYBRID || cg->unified.path == NULL) {
			return err_setx(e, ENOTSUP,
					"cgroup '%s': linux.resources.hugepageLimits: no hugetlb controller", cg->rel);
		}
		/* Hybrid hosts that keep hugetlb on cgroup2: cgroup-v2.c writes it. */
	}
	if (r->has_net_class_id) {
		dir = cgroup_v1_dir(cg, "net_cls");
		if (dir == NULL) {
			log_warn("cgroup '%s': linux.resources.network.classID: net_cls is not mounted, ignored",
				 cg->rel);
		} else {
			snprintf(v, sizeof(v), "%u", r->net_class_id);
			if ((rc = cgroup_write(dir, "net_cls.classid", v, e)) < 0)
				return rc;
		}
	}
	return 0;
}

int cgroup_v1_set_devices(struct cgroup *cg, const struct oci_resources *r, const struct oci_device *devs,
			  size_t n_devs, struct err **e)
{
	const char *dir = cgroup_v1_dir(cg, "devices");
	struct oci_device_rule *rules = NULL;
	size_t n = 0;
	int rc = 0;

	if (dir == NULL)
		return 0;
	if (cgroup_device_rules(r, devs, n_devs, &rules, &n) < 0)
		return err_set(e, ENOMEM, "cgroup '%s': devices", dir);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct oci_device_rule *d = &rules[i];
		char v[96], maj[24], min[24];

		if (d->major < 0)
			strcpy(maj, "*");
		else
			snprintf(maj, sizeof(maj), "%lld", (long long)d->major);
		if (d->minor < 0)
			strcpy(min, "*");
		else
			snprintf(min, sizeof(min), "%lld", (long long)d->minor);
		if (d->type == 'a')
			strcpy(v, "a");
		else
			snprintf(v, sizeof(v), "%c %s:%s %s", d->type, maj, min, d->access[0] ? d->access : "rwm");
		rc = cgroup_write(dir, d->allow ? "devices.allow" : "devices.deny", v, e);
		if (rc < 0)
			err_wrap(e, "linux.resources.devices");
	}
	free(rules);
	return rc;
}
