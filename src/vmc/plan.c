#include "vmc/plan.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/parse.h"
#include "oci/spec.h"

static const char *annotation(const struct oci_spec *s, const char *key)
{
	for (size_t i = 0; i < s->n_annotations; i++)
		if (strcmp(s->annotations[i].key, key) == 0)
			return s->annotations[i].value;
	return NULL;
}

/* The longest container id a pod's VM names in its share. */
#define VMC_ID_MAX_PLAN 255

int vmc_plan_wanted(const struct oci_spec *s, bool default_vm, bool *vm, struct err **e)
{
	const char *v = annotation(s, VMC_ANNOTATION);

	if (v) {
		if (strcmp(v, "on") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			*vm = true;
		else if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
			*vm = false;
		else
			return err_setx(e, EINVAL, "config.json: annotations.%s: '%s' is not on or off", VMC_ANNOTATION,
					v);
		return 0;
	}
	/* A CRI sandbox boots its pod's VM, which the pod's containers join
	 * (container.c): the same default as theirs. */
	*vm = default_vm;
	return 0;
}

bool vmc_plan_is_sandbox(const struct oci_spec *s)
{
	const char *kind = annotation(s, "io.kubernetes.cri.container-type");

	return kind && strcmp(kind, "sandbox") == 0;
}

const char *vmc_plan_sandbox(const struct oci_spec *s)
{
	const char *kind = annotation(s, "io.kubernetes.cri.container-type"),
		   *sandbox = annotation(s, "io.kubernetes.cri.sandbox-id");

	return kind && strcmp(kind, "container") == 0 && sandbox && sandbox[0] ? sandbox : NULL;
}

int vmc_plan_parse_memory(const char *s, uint64_t *mib)
{
	uint64_t bytes;

	if (parse_size(s, &bytes) < 0 || bytes == 0 || bytes > 1024ULL * 1024 * 1024 * 1024)
		return -EINVAL;
	*mib = (bytes + (1 << 20) - 1) >> 20;
	*mib = (*mib + 1) & ~1ULL;
	return 0;
}

/* containerd 1.7 tells a sandbox its pod's summed limits in annotations
 * (1.6 does not): the size of the pod's VM when no io.casulo.vm.*
 * annotation gives it.  0 when absent or not a number. */
static uint64_t sandbox_limit(const struct oci_spec *s, const char *key)
{
	const char *v = annotation(s, key);
	uint64_t n;

	return v && parse_u64(v, &n) == 0 ? n : 0;
}

static int plan_cpus(const struct oci_spec *s, const struct vmc_host *h, unsigned *cpus, struct err **e)
{
	const char *v = annotation(s, VMC_ANNOTATION_CPUS);
	const struct cgroup_resources *r = &s->resources;

	if (v) {
		uint32_t n;
		if (parse_u32(v, &n) < 0 || n < 1 || n > VMC_MAX_CPUS)
			return err_setx(e, EINVAL, "config.json: annotations.%s: '%s' is not a number of vCPUs (1-%d)",
					VMC_ANNOTATION_CPUS, v, VMC_MAX_CPUS);
		*cpus = n;
		return 0;
	}
	uint64_t quota = 0, period = 100000;

	*cpus = 1;
	if (s->has_resources && r->has_cpu_quota && r->cpu_quota > 0) {
		quota = (uint64_t)r->cpu_quota;
		if (r->has_cpu_period && r->cpu_period > 0)
			period = r->cpu_period;
	} else if ((quota = sandbox_limit(s, "io.kubernetes.cri.sandbox-cpu-quota")) > 0 &&
		   sandbox_limit(s, "io.kubernetes.cri.sandbox-cpu-period") > 0) {
		period = sandbox_limit(s, "io.kubernetes.cri.sandbox-cpu-period");
	}
	/* A CPU quota rounded up to whole vCPUs: 150000/100000 is 2. */
	if (quota > 0) {
		uint64_t n = (quota + period - 1) / period;
		*cpus = (unsigned)(n > VMC_MAX_CPUS ? VMC_MAX_CPUS : n);
	}
	if (h->cpus && *cpus > h->cpus)
		*cpus = h->cpus;
	return 0;
}

static int plan_memory(const struct oci_spec *s, uint64_t *mib, struct err **e)
{
	const char *v = annotation(s, VMC_ANNOTATION_MEMORY);
	const struct cgroup_resources *r = &s->resources;

	if (v) {
		if (vmc_plan_parse_memory(v, mib) < 0 || *mib < VMC_MIN_MEMORY_MIB)
			return err_setx(e, EINVAL,
					"config.json: annotations.%s: '%s' is not a memory size of at least %d MiB "
					"(512M, 2G)",
					VMC_ANNOTATION_MEMORY, v, VMC_MIN_MEMORY_MIB);
		return 0;
	}
	uint64_t bytes = s->has_resources && r->has_mem_limit && r->mem_limit > 0
			     ? (uint64_t)r->mem_limit
			     : sandbox_limit(s, "io.kubernetes.cri.sandbox-memory");

	*mib = VMC_DEFAULT_MEMORY_MIB;
	if (bytes > 0 && bytes <= (1ULL << 50)) {
		uint64_t limit = (bytes + (1 << 20) - 1) >> 20;
		*mib = (limit + VMC_GUEST_OVERHEAD_MIB + 1) & ~1ULL;
		if (*mib < VMC_MIN_MEMORY_MIB)
			*mib = VMC_MIN_MEMORY_MIB;
	}
	return 0;
}

static int warn(struct vmc_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int warn(struct vmc_plan *p, const char *fmt, ...)
{
	char **nw = realloc(p->warnings, (p->n_warnings + 1) * sizeof(char *));
	va_list ap;
	int n;

	if (nw == NULL)
		return -ENOMEM;
	p->warnings = nw;
	va_start(ap, fmt);
	n = vasprintf(&nw[p->n_warnings], fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	p->n_warnings++;
	return 0;
}

static int add_share(struct vmc_plan *p, const char *host, const char *guest, bool is_dir, bool ro, bool rec)
{
	struct vmc_share *ns = realloc(p->shares, (p->n_shares + 1) * sizeof(*ns));

	if (ns == NULL)
		return -ENOMEM;
	p->shares = ns;
	ns[p->n_shares] = (struct vmc_share){
	    .host = strdup(host), .guest = strdup(guest), .is_dir = is_dir, .readonly = ro, .recursive = rec};
	if (ns[p->n_shares].host == NULL || ns[p->n_shares].guest == NULL) {
		free(ns[p->n_shares].host);
		free(ns[p->n_shares].guest);
		return -ENOMEM;
	}
	p->n_shares++;
	return 0;
}

static bool has_option(const struct oci_mount *m, const char *opt)
{
	for (size_t i = 0; i < m->n_options; i++)
		if (strcmp(m->options[i], opt) == 0)
			return true;
	return false;
}

/* Is the last of "ro" and "rw" in the options "ro"? */
static bool is_readonly(const struct oci_mount *m)
{
	bool ro = false;

	for (size_t i = 0; i < m->n_options; i++) {
		if (strcmp(m->options[i], "ro") == 0)
			ro = true;
		else if (strcmp(m->options[i], "rw") == 0)
			ro = false;
	}
	return ro;
}

/* Bind mounts: their sources become paths in the share. */
static int plan_mounts(json_object *gs, const struct oci_spec *s, const char *bundle, const struct vmc_host *h,
		       const char *prefix, struct vmc_plan *p, struct err **e)
{
	json_object *mounts;

	if (!json_object_object_get_ex(gs, "mounts", &mounts) || json_object_get_type(mounts) != json_type_array)
		return 0;
	if (json_object_array_length(mounts) != s->n_mounts)
		return err_setx(e, EINVAL, "config.json: mounts: not the array the runtime validated");
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct oci_mount *m = &s->mounts[i];
		bool bind =
		    (m->type && strcmp(m->type, "bind") == 0) || has_option(m, "bind") || has_option(m, "rbind");
		char host[8192], guest[512], where[640];
		unsigned type;
		json_object *jm = json_object_array_get_idx(mounts, i);

		if (!bind)
			continue;
		if (m->source == NULL || m->source[0] == '\0')
			return err_setx(e, EINVAL, "config.json: mounts[%zu]: a bind mount needs a source", i);
		if (m->source[0] == '/')
			snprintf(host, sizeof(host), "%s", m->source);
		else
			snprintf(host, sizeof(host), "%s/%s", bundle, m->source);
		type = h->file_type(host, h->ctx);
		if (type == 0)
			return err_setx(e, ENOENT, "mount '%s': bind '%s': No such file or directory",
					m->destination ? m->destination : "", host);
		if (type != S_IFDIR && type != S_IFREG)
			return err_setx(e, EINVAL,
					"config.json: mounts[%zu]: bind mount of '%s', a %s: only directories and "
					"regular files can be shared with a VM",
					i, host,
					type == S_IFCHR || type == S_IFBLK ? "device node"
					: type == S_IFSOCK		   ? "socket"
					: type == S_IFIFO		   ? "FIFO"
									   : "special file");
		snprintf(guest, sizeof(guest), "%smnt/%zu", prefix, i);
		if (add_share(p, host, guest, type == S_IFDIR, is_readonly(m), has_option(m, "rbind")) < 0)
			return err_set(e, ENOMEM, "plan");
		snprintf(where, sizeof(where), VMC_GUEST_SHARE "/%s", guest);
		json_object_object_add(jm, "source", json_object_new_string(where));
	}
	return 0;
}

/* The name of a namespace type under /proc/PID/ns. */
static const char *ns_proc_name(const char *type)
{
	static const char *const names[][2] = {{"network", "net"},   {"ipc", "ipc"},   {"uts", "uts"},
					       {"pid", "pid"},	     {"mount", "mnt"}, {"user", "user"},
					       {"cgroup", "cgroup"}, {"time", "time"}};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(type, names[i][0]) == 0)
			return names[i][1];
	return NULL;
}

/* Namespaces given by path are the host's: the guest makes its own; in a
 * pod's VM, they are the pod's, which the sandbox's init holds there. */
static int plan_namespaces(json_object *gs, const struct vmc_host *h, struct vmc_plan *p, struct err **e)
{
	json_object *lx, *nss;

	if (!json_object_object_get_ex(gs, "linux", &lx) || !json_object_object_get_ex(lx, "namespaces", &nss) ||
	    json_object_get_type(nss) != json_type_array)
		return 0;
	for (size_t i = 0; i < json_object_array_length(nss); i++) {
		json_object *ns = json_object_array_get_idx(nss, i), *type, *path;
		const char *t;

		if (!json_object_object_get_ex(ns, "type", &type))
			continue;
		t = json_object_get_string(type);
		if (strcmp(t, "network") == 0)
			p->own_netns = true;
		if (!json_object_object_get_ex(ns, "path", &path))
			continue;
		if (h->sandbox_guest_pid > 0 && ns_proc_name(t)) {
			char where[64];
			snprintf(where, sizeof(where), "/proc/%d/ns/%s", h->sandbox_guest_pid, ns_proc_name(t));
			json_object_object_add(ns, "path", json_object_new_string(where));
			continue;
		}
		if (strcmp(t, "network") == 0) {
			if ((p->netns = strdup(json_object_get_string(path))) == NULL)
				return err_set(e, ENOMEM, "plan");
		} else if (warn(p,
				"the %s namespace given by path is the host's: the container gets a new one in its VM",
				t) < 0) {
			return err_set(e, ENOMEM, "plan");
		}
		json_object_object_del(ns, "path");
	}
	return 0;
}

int vmc_plan_make(json_object *config, const struct oci_spec *spec, const char *id, const char *bundle,
		  const char *rootfs, const struct vmc_host *host, struct vmc_plan *p, struct err **e)
{
	static const char *const host_hooks[] = {"prestart", "createRuntime", "poststart", "poststop"};
	json_object *gs = NULL, *root, *lx, *hooks, *seccomp, *v;
	int r;

	char prefix[VMC_ID_MAX_PLAN + 8] = "", where[VMC_ID_MAX_PLAN + 64];

	memset(p, 0, sizeof(*p));
	if (host->sandbox_guest_pid > 0) {
		if (id == NULL || strlen(id) > VMC_ID_MAX_PLAN || strchr(id, '/'))
			return err_setx(e, EINVAL, "container id '%s': not one a pod's VM can hold", id ? id : "");
		snprintf(prefix, sizeof(prefix), "c/%s/", id);
	}
	if (spec->n_net_devices)
		return err_setx(e, EINVAL,
				"config.json: linux.netDevices: a host's network device cannot be moved into a VM");
	if (spec->seccomp && spec->seccomp->listener_path)
		return err_setx(e, EINVAL,
				"config.json: linux.seccomp.listenerPath: a seccomp agent on the host cannot serve a "
				"process in a VM");
	if ((r = plan_cpus(spec, host, &p->cpus, e)) < 0 || (r = plan_memory(spec, &p->memory_mib, e)) < 0)
		return r;
	if (json_object_deep_copy(config, &gs, NULL) < 0 || gs == NULL)
		return err_set(e, ENOMEM, "plan");
	p->guest_spec = gs;
	snprintf(where, sizeof(where), "%srootfs", prefix);
	if (add_share(p, rootfs, where, true, false, false) < 0) {
		r = err_set(e, ENOMEM, "plan");
		goto fail;
	}
	snprintf(where, sizeof(where), VMC_GUEST_SHARE "/%srootfs", prefix);
	if (json_object_object_get_ex(gs, "root", &root))
		json_object_object_add(root, "path", json_object_new_string(where));
	if ((r = plan_mounts(gs, spec, bundle, host, prefix, p, e)) < 0 || (r = plan_namespaces(gs, host, p, e)) < 0)
		goto fail;
	/* The host runs the hooks that run in the runtime's namespace; the
	 * guest those that run in the container's. */
	if (json_object_object_get_ex(gs, "hooks", &hooks))
		for (size_t i = 0; i < sizeof(host_hooks) / sizeof(host_hooks[0]); i++)
			json_object_object_del(hooks, host_hooks[i]);
	if (json_object_object_get_ex(gs, "linux", &lx)) {
		/* The guest's cgroups are its own: the default path, the id. */
		json_object_object_del(lx, "cgroupsPath");
		if (json_object_object_get_ex(lx, "seccomp", &seccomp) &&
		    json_object_object_get_ex(seccomp, "listenerPath", &v))
			json_object_object_del(seccomp, "listenerPath");
	}
	return 0;
fail:
	vmc_plan_free(p);
	return r;
}

void vmc_plan_free(struct vmc_plan *p)
{
	for (size_t i = 0; i < p->n_shares; i++) {
		free(p->shares[i].host);
		free(p->shares[i].guest);
	}
	free(p->shares);
	for (size_t i = 0; i < p->n_warnings; i++)
		free(p->warnings[i]);
	free(p->warnings);
	free(p->netns);
	json_object_put(p->guest_spec);
	memset(p, 0, sizeof(*p));
}

static void add_i64(json_object *o, const char *key, bool has, int64_t v)
{
	if (has)
		json_object_object_add(o, key, json_object_new_int64(v));
}

static void add_u64(json_object *o, const char *key, bool has, uint64_t v)
{
	if (has)
		json_object_object_add(o, key, json_object_new_uint64(v));
}

static void add_if_filled(json_object *parent, const char *key, json_object *o)
{
	if (json_object_object_length(o))
		json_object_object_add(parent, key, o);
	else
		json_object_put(o);
}

json_object *vmc_resources_json(const struct cgroup_resources *r)
{
	json_object *o = json_object_new_object(), *mem = json_object_new_object(), *cpu = json_object_new_object(),
		    *pids = json_object_new_object(), *blk = json_object_new_object();

	add_i64(mem, "limit", r->has_mem_limit, r->mem_limit);
	add_i64(mem, "reservation", r->has_mem_reservation, r->mem_reservation);
	add_i64(mem, "swap", r->has_mem_swap, r->mem_swap);
	add_i64(mem, "kernel", r->has_mem_kernel, r->mem_kernel);
	add_i64(mem, "kernelTCP", r->has_mem_kernel_tcp, r->mem_kernel_tcp);
	add_u64(mem, "swappiness", r->has_mem_swappiness, r->mem_swappiness);
	if (r->has_mem_disable_oom_killer)
		json_object_object_add(mem, "disableOOMKiller", json_object_new_boolean(r->mem_disable_oom_killer));
	add_u64(cpu, "shares", r->has_cpu_shares, r->cpu_shares);
	add_i64(cpu, "quota", r->has_cpu_quota, r->cpu_quota);
	add_u64(cpu, "burst", r->has_cpu_burst, r->cpu_burst);
	add_u64(cpu, "period", r->has_cpu_period, r->cpu_period);
	add_i64(cpu, "realtimeRuntime", r->has_cpu_rt_runtime, r->cpu_rt_runtime);
	add_u64(cpu, "realtimePeriod", r->has_cpu_rt_period, r->cpu_rt_period);
	add_i64(cpu, "idle", r->has_cpu_idle, r->cpu_idle);
	if (r->cpu_cpus)
		json_object_object_add(cpu, "cpus", json_object_new_string(r->cpu_cpus));
	if (r->cpu_mems)
		json_object_object_add(cpu, "mems", json_object_new_string(r->cpu_mems));
	add_i64(pids, "limit", r->has_pids_limit, r->pids_limit);
	add_u64(blk, "weight", r->has_blkio_weight, r->blkio_weight);
	add_if_filled(o, "memory", mem);
	add_if_filled(o, "cpu", cpu);
	add_if_filled(o, "pids", pids);
	add_if_filled(o, "blockIO", blk);
	if (r->n_unified) {
		json_object *u = json_object_new_object();
		for (size_t i = 0; i < r->n_unified; i++)
			json_object_object_add(u, r->unified[i].key, json_object_new_string(r->unified[i].value));
		json_object_object_add(o, "unified", u);
	}
	if (r->has_devices) {
		json_object *a = json_object_new_array();
		for (size_t i = 0; i < r->n_devices; i++) {
			const struct cgroup_device_rule *d = &r->devices[i];
			json_object *dv = json_object_new_object();
			char type[2] = {d->type, 0};
			json_object_object_add(dv, "allow", json_object_new_boolean(d->allow));
			json_object_object_add(dv, "type", json_object_new_string(type));
			if (d->major >= 0)
				json_object_object_add(dv, "major", json_object_new_int64(d->major));
			if (d->minor >= 0)
				json_object_object_add(dv, "minor", json_object_new_int64(d->minor));
			json_object_object_add(dv, "access", json_object_new_string(d->access));
			json_object_array_add(a, dv);
		}
		json_object_object_add(o, "devices", a);
	}
	return o;
}
