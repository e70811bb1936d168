/* Cgroup v2 resource files, with runc's conversions from the v1-shaped
 * OCI fields (shares -> weight, quota+period -> cpu.max, ...). */
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

/* Enable every available controller in each ancestor's subtree_control,
 * from the mount point down to dir's parent (failures are left to the
 * write that needs the controller, which names it). */
static void enable_controllers(const struct cgroup *cg, const char *dir)
{
	char path[4200], *avail = NULL;
	const char *mnt = cg->unified.mountpoint;
	size_t mlen;

	if (mnt == NULL || strncmp(dir, mnt, strlen(mnt)) != 0)
		return;
	snprintf(path, sizeof(path), "%s/cgroup.controllers", mnt);
	if (read_file(path, &avail, NULL) < 0)
		return;
	mlen = strlen(mnt);
	for (size_t p = mlen; dir[p]; p++) {
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
	free(avail);
}

static int write2(const char *dir, const char *file, const char *value, const char *field, struct err **e)
{
	char path[4200];
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (access(path, F_OK) < 0) {
		const char *dot = strchr(file, '.');
		return err_setx(e, ENOTSUP, "cgroup '%s': %s: %s is missing (is the %.*s controller enabled?)", dir,
				field, file, dot ? (int)(dot - file) : (int)strlen(file), file);
	}
	r = write_file_str(path, value);
	if (r < 0)
		return err_set(e, -r, "cgroup '%s': %s: write '%s' to %s", dir, field, value, file);
	return 0;
}

int cgroup_v2_set_hugetlb(const char *dir, const struct oci_resources *r, struct err **e)
{
	for (size_t i = 0; i < r->n_hugepages; i++) {
		char file[96], v[32];
		snprintf(file, sizeof(file), "hugetlb.%s.max", r->hugepages[i].page_size);
		snprintf(v, sizeof(v), "%llu", (unsigned long long)r->hugepages[i].limit);
		if (write2(dir, file, v, "linux.resources.hugepageLimits", e) < 0)
			return -err_code(*e);
	}
	return 0;
}

static int set_memory(const char *dir, const struct oci_resources *r, struct err **e)
{
	char v[32];

	if (r->has_mem_swap && !r->has_mem_limit && r->mem_swap != -1 && r->mem_swap != 0) {
		/* runc: a swap limit needs the memory limit to convert it. */
		char path[4200], *cur = NULL;
		snprintf(path, sizeof(path), "%s/memory.max", dir);
		if (read_file(path, &cur, NULL) < 0 || strncmp(cur, "max", 3) == 0) {
			free(cur);
			return err_setx(e, EINVAL,
					"cgroup '%s': linux.resources.memory.swap: on cgroup v2 a swap limit needs a "
					"memory limit",
					dir);
		}
		free(cur);
	}
	if (r->has_mem_limit) {
		if (r->mem_limit == -1 || r->mem_limit == 0)
			strcpy(v, "max");
		else
			snprintf(v, sizeof(v), "%lld", (long long)r->mem_limit);
		if (r->mem_limit != 0 && write2(dir, "memory.max", v, "linux.resources.memory.limit", e) < 0)
			return -err_code(*e);
	}
	if (r->has_mem_swap && r->mem_swap != 0) {
		/* OCI swap is memory+swap; v2 memory.swap.max is swap alone. */
		if (r->mem_swap == -1)
			strcpy(v, "max");
		else if (r->has_mem_limit && r->mem_limit > 0)
			snprintf(v, sizeof(v), "%lld", (long long)(r->mem_swap - r->mem_limit));
		else
			snprintf(v, sizeof(v), "%lld", (long long)r->mem_swap);
		if (write2(dir, "memory.swap.max", v, "linux.resources.memory.swap", e) < 0)
			return -err_code(*e);
	}
	if (r->has_mem_reservation && r->mem_reservation != 0) {
		if (r->mem_reservation == -1)
			strcpy(v, "max");
		else
			snprintf(v, sizeof(v), "%lld", (long long)r->mem_reservation);
		if (write2(dir, "memory.low", v, "linux.resources.memory.reservation", e) < 0)
			return -err_code(*e);
	}
	if (r->has_mem_kernel || r->has_mem_kernel_tcp)
		log_warn("cgroup '%s': linux.resources.memory.kernel*: not supported on cgroup v2, ignored", dir);
	if (r->has_mem_swappiness && r->mem_swappiness != 0)
		return err_setx(e, ENOTSUP,
				"cgroup '%s': linux.resources.memory.swappiness: not supported on cgroup v2", dir);
	return 0;
}

static int set_cpu(const char *dir, const struct oci_resources *r, struct err **e)
{
	char v[64];

	if (r->has_cpu_shares && r->cpu_shares) {
		/* runc's mapping of shares [2, 262144] onto weight [1, 10000]. */
		uint64_t s = r->cpu_shares < 2 ? 2 : r->cpu_shares > 262144 ? 262144 : r->cpu_shares;
		snprintf(v, sizeof(v), "%llu", (unsigned long long)(1 + ((s - 2) * 9999) / 262142));
		if (write2(dir, "cpu.weight", v, "linux.resources.cpu.shares", e) < 0)
			return -err_code(*e);
	}
	if ((r->has_cpu_quota && r->cpu_quota != 0) || (r->has_cpu_period && r->cpu_period)) {
		uint64_t period = r->has_cpu_period && r->cpu_period ? r->cpu_period : 100000;
		if (r->has_cpu_quota && r->cpu_quota > 0)
			snprintf(v, sizeof(v), "%lld %llu", (long long)r->cpu_quota, (unsigned long long)period);
		else if (r->has_cpu_quota)
			snprintf(v, sizeof(v), "max %llu", (unsigned long long)period);
		else {
			/* Period alone keeps the current quota. */
			char path[4200], *cur = NULL, quota[32] = "max";
			snprintf(path, sizeof(path), "%s/cpu.max", dir);
			if (read_file(path, &cur, NULL) == 0)
				sscanf(cur, "%31s", quota);
			free(cur);
			snprintf(v, sizeof(v), "%s %llu", quota, (unsigned long long)period);
		}
		if (write2(dir, "cpu.max", v, "linux.resources.cpu.quota", e) < 0)
			return -err_code(*e);
	}
	if (r->has_cpu_burst) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)r->cpu_burst);
		if (write2(dir, "cpu.max.burst", v, "linux.resources.cpu.burst", e) < 0)
			return -err_code(*e);
	}
	if (r->has_cpu_idle) {
		snprintf(v, sizeof(v), "%lld", (long long)r->cpu_idle);
		if (write2(dir, "cpu.idle", v, "linux.resources.cpu.idle", e) < 0)
			return -err_code(*e);
	}
	if ((r->has_cpu_rt_period && r->cpu_rt_period) || (r->has_cpu_rt_runtime && r->cpu_rt_runtime))
		return err_setx(e, ENOTSUP, "cgroup '%s': linux.resources.cpu.realtime*: not supported on cgroup v2",
				dir);
	if (r->cpu_cpus && *r->cpu_cpus && write2(dir, "cpuset.cpus", r->cpu_cpus, "linux.resources.cpu.cpus", e) < 0)
		return -err_code(*e);
	if (r->cpu_mems && *r->cpu_mems && write2(dir, "cpuset.mems", r->cpu_mems, "linux.resources.cpu.mems", e) < 0)
		return -err_code(*e);
	return 0;
}

static int set_io(const char *dir, const struct oci_resources *r, struct err **e)
{
	static const char *const keys[4] = {"rbps", "wbps", "riops", "wiops"};
	char v[96], path[4200];

	if (r->has_blkio_weight && r->blkio_weight) {
		snprintf(path, sizeof(path), "%s/io.bfq.weight", dir);
		if (access(path, F_OK) == 0) {
			snprintf(v, sizeof(v), "%u", r->blkio_weight);
			if (write2(dir, "io.bfq.weight", v, "linux.resources.blockIO.weight", e) < 0)
				return -err_code(*e);
		} else {
			snprintf(v, sizeof(v), "default %u", 1 + ((unsigned)r->blkio_weight - 10) * 9999 / 990);
			if (write2(dir, "io.weight", v, "linux.resources.blockIO.weight", e) < 0)
				return -err_code(*e);
		}
	}
	for (size_t i = 0; i < r->n_blkio_weight_devices; i++) {
		const struct oci_weight_device *w = &r->blkio_weight_devices[i];
		if (!w->has_weight)
			continue;
		snprintf(v, sizeof(v), "%lld:%lld %u", (long long)w->major, (long long)w->minor,
			 1 + ((unsigned)w->weight - 10) * 9999 / 990);
		if (write2(dir, "io.weight", v, "linux.resources.blockIO.weightDevice", e) < 0)
			return -err_code(*e);
	}
	for (int t = 0; t < 4; t++) {
		for (size_t i = 0; i < r->n_blkio_throttle[t]; i++) {
			const struct oci_throttle *th = &r->blkio_throttle[t][i];
			snprintf(v, sizeof(v), "%lld:%lld %s=%llu", (long long)th->major, (long long)th->minor, keys[t],
				 (unsigned long long)th->rate);
			if (write2(dir, "io.max", v, "linux.resources.blockIO.throttle", e) < 0)
				return -err_code(*e);
		}
	}
	return 0;
}

int cgroup_v2_set(struct cgroup *cg, const char *dir, const struct oci_resources *r, bool hybrid, bool updating,
		  struct err **e)
{
	char v[32];
	int rc;

	(void)updating;
	enable_controllers(cg, dir);
	if (hybrid) {
		/* Only what the v1 side cannot take: hugetlb, unified keys. */
		if (r->n_hugepages && cgroup_v1_dir(cg, "hugetlb") == NULL &&
		    (rc = cgroup_v2_set_hugetlb(dir, r, e)) < 0)
			return rc;
	} else {
		if ((rc = set_memory(dir, r, e)) < 0 || (rc = set_cpu(dir, r, e)) < 0 || (rc = set_io(dir, r, e)) < 0 ||
		    (rc = cgroup_v2_set_hugetlb(dir, r, e)) < 0)
			return rc;
		if (r->has_pids_limit) {
			if (r->pids_limit > 0)
				snprintf(v, sizeof(v), "%lld", (long long)r->pids_limit);
			else
				strcpy(v, "max");
			if (write2(dir, "pids.max", v, "linux.resources.pids.limit", e) < 0)
				return -err_code(*e);
		}
		if (r->has_net_class_id)
			log_warn("cgroup '%s': linux.resources.network: not supported on cgroup v2, ignored", dir);
	}
	for (size_t i = 0; i < r->n_unified; i++) {
		char field[300];
		snprintf(field, sizeof(field), "linux.resources.unified.%s", r->unified[i].key);
		if (write2(dir, r->unified[i].key, r->unified[i].value, field, e) < 0)
			return -err_code(*e);
	}
	return 0;
}

int cgroup_v2_set_devices(const char *dir, const struct oci_resources *r, const struct oci_device *devs, size_t n_devs,
			  struct err **e)
{
	struct oci_device_rule *rules = NULL;
	size_t n = 0;
	int rc;

	if (cgroup_device_rules(r, devs, n_devs, &rules, &n) < 0)
		return err_set(e, ENOMEM, "cgroup '%s': devices", dir);
	rc = cgroup_bpf_devices_attach(dir, rules, n, e);
	free(rules);
	return rc;
}
