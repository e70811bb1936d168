/* config.json: linux.resources (also read alone by `update --resources`). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/json-doc.h"
#include "oci/json-util.h"
#include "oci/spec-internal.h"

#define BAD(e, ...) err_setx(e, EINVAL, "config.json: " __VA_ARGS__)

/* runc takes any combination of r, w and m, in any order and with repeats
 * ("mr", "rwmw"); kept as the subset of "rwm" in that order, which the v1
 * files (three characters at most) and the eBPF program both take. */
static int device_access(const char *in, char out[4])
{
	bool r = false, w = false, m = false;
	size_t n = 0;

	if (*in == '\0')
		return -EINVAL;
	for (; *in; in++) {
		if (*in == 'r')
			r = true;
		else if (*in == 'w')
			w = true;
		else if (*in == 'm')
			m = true;
		else
			return -EINVAL;
	}
	if (r)
		out[n++] = 'r';
	if (w)
		out[n++] = 'w';
	if (m)
		out[n++] = 'm';
	out[n] = '\0';
	return 0;
}

static int device_rule_item(json_object *o, const char *where, void *elem, void *ctx, struct err **e)
{
	struct cgroup_device_rule *d = elem;
	_cleanup_free_ char *type = NULL, *access = NULL;
	bool has_allow = false, has_major = false, has_minor = false;
	int rc;

	(void)ctx;
	if ((rc = ju_bool(o, where, "allow", &d->allow, &has_allow, e)) < 0 ||
	    (rc = ju_string(o, where, "type", &type, e)) < 0 ||
	    (rc = ju_int64(o, where, "major", &d->major, &has_major, e)) < 0 ||
	    (rc = ju_int64(o, where, "minor", &d->minor, &has_minor, e)) < 0 ||
	    (rc = ju_string(o, where, "access", &access, e)) < 0)
		return rc;
	if (!has_allow)
		return BAD(e, "%s.allow: required", where);
	d->type = type ? type[0] : 'a';
	if (type && (strlen(type) != 1 || strchr("acb", type[0]) == NULL))
		return BAD(e, "%s.type: must be a, c or b, got '%s'", where, type);
	if (!has_major)
		d->major = -1;
	if (!has_minor)
		d->minor = -1;
	if (d->major < -1 || d->minor < -1)
		return BAD(e, "%s: negative device numbers other than -1 (any) are invalid", where);
	if (access == NULL)
		strcpy(d->access, "rwm");
	else if (device_access(access, d->access) < 0)
		return BAD(e, "%s.access: '%s' is not a combination of r, w and m", where, access);
	return 0;
}

static int parse_device_rules(json_object *res, const char *path, struct cgroup_resources *r, struct err **e)
{
	r->has_devices = ju_get(res, "devices") != NULL;
	return ju_object_array(res, path, "devices", sizeof(*r->devices), (void **)&r->devices, &r->n_devices,
			       device_rule_item, NULL, e);
}

static int parse_memory(json_object *res, const char *path, struct cgroup_resources *r, struct err **e)
{
	json_object *m;
	char where[96];
	int rc = ju_object(res, path, "memory", &m, e);

	if (rc < 0 || m == NULL)
		return rc;
	snprintf(where, sizeof(where), "%s.memory", path);
	if ((rc = ju_int64(m, where, "limit", &r->mem_limit, &r->has_mem_limit, e)) < 0 ||
	    (rc = ju_int64(m, where, "reservation", &r->mem_reservation, &r->has_mem_reservation, e)) < 0 ||
	    (rc = ju_int64(m, where, "swap", &r->mem_swap, &r->has_mem_swap, e)) < 0 ||
	    (rc = ju_int64(m, where, "kernel", &r->mem_kernel, &r->has_mem_kernel, e)) < 0 ||
	    (rc = ju_int64(m, where, "kernelTCP", &r->mem_kernel_tcp, &r->has_mem_kernel_tcp, e)) < 0 ||
	    (rc = ju_uint64(m, where, "swappiness", &r->mem_swappiness, &r->has_mem_swappiness, e)) < 0 ||
	    (rc = ju_bool(m, where, "disableOOMKiller", &r->mem_disable_oom_killer, &r->has_mem_disable_oom_killer,
			  e)) < 0 ||
	    (rc = ju_bool(m, where, "useHierarchy", &r->mem_use_hierarchy, &r->has_mem_use_hierarchy, e)) < 0 ||
	    (rc = ju_bool(m, where, "checkBeforeUpdate", &r->mem_check_before_update, &r->has_mem_check_before_update,
			  e)) < 0)
		return rc;
	if (r->has_mem_limit && r->mem_limit < -1)
		return BAD(e, "%s.limit: %lld is not a limit (-1 for none)", where, (long long)r->mem_limit);
	if (r->has_mem_swap && r->mem_swap < -1)
		return BAD(e, "%s.swap: %lld is not a limit (-1 for none)", where, (long long)r->mem_swap);
	if (r->has_mem_limit && r->has_mem_swap && r->mem_limit > 0 && r->mem_swap > 0 && r->mem_swap < r->mem_limit)
		return BAD(e, "%s.swap: memory+swap limit %lld is below the memory limit %lld", where,
			   (long long)r->mem_swap, (long long)r->mem_limit);
	if (r->has_mem_swappiness && r->mem_swappiness > 100)
		return BAD(e, "%s.swappiness: %llu is not in 0..100", where, (unsigned long long)r->mem_swappiness);
	return 0;
}

static int parse_cpu(json_object *res, const char *path, struct cgroup_resources *r, struct err **e)
{
	json_object *c;
	char where[96];
	int rc = ju_object(res, path, "cpu", &c, e);

	if (rc < 0 || c == NULL)
		return rc;
	snprintf(where, sizeof(where), "%s.cpu", path);
	if ((rc = ju_uint64(c, where, "shares", &r->cpu_shares, &r->has_cpu_shares, e)) < 0 ||
	    (rc = ju_int64(c, where, "quota", &r->cpu_quota, &r->has_cpu_quota, e)) < 0 ||
	    (rc = ju_uint64(c, where, "burst", &r->cpu_burst, &r->has_cpu_burst, e)) < 0 ||
	    (rc = ju_uint64(c, where, "period", &r->cpu_period, &r->has_cpu_period, e)) < 0 ||
	    (rc = ju_int64(c, where, "realtimeRuntime", &r->cpu_rt_runtime, &r->has_cpu_rt_runtime, e)) < 0 ||
	    (rc = ju_uint64(c, where, "realtimePeriod", &r->cpu_rt_period, &r->has_cpu_rt_period, e)) < 0 ||
	    (rc = ju_string(c, where, "cpus", &r->cpu_cpus, e)) < 0 ||
	    (rc = ju_string(c, where, "mems", &r->cpu_mems, e)) < 0 ||
	    (rc = ju_int64(c, where, "idle", &r->cpu_idle, &r->has_cpu_idle, e)) < 0)
		return rc;
	if (r->has_cpu_period && r->cpu_period != 0 && (r->cpu_period < 1000 || r->cpu_period > 1000000))
		return BAD(e, "%s.period: %llu is not in 1000..1000000 microseconds", where,
			   (unsigned long long)r->cpu_period);
	if (r->has_cpu_quota && r->cpu_quota != -1 && r->cpu_quota > 0 && r->cpu_quota < 1000)
		return BAD(e, "%s.quota: %lld is below 1000 microseconds", where, (long long)r->cpu_quota);
	if (r->cpu_cpus && r->cpu_cpus[0] && strspn(r->cpu_cpus, "0123456789,- ") != strlen(r->cpu_cpus))
		return BAD(e, "%s.cpus: '%s' is not a CPU list", where, r->cpu_cpus);
	if (r->cpu_mems && r->cpu_mems[0] && strspn(r->cpu_mems, "0123456789,- ") != strlen(r->cpu_mems))
		return BAD(e, "%s.mems: '%s' is not a node list", where, r->cpu_mems);
	return 0;
}

static int throttle_item(json_object *o, const char *where, void *elem, void *ctx, struct err **e)
{
	struct cgroup_throttle *t = elem;
	bool hm = false, hn = false, hr = false;
	int rc;

	(void)ctx;
	if ((rc = ju_int64(o, where, "major", &t->major, &hm, e)) < 0 ||
	    (rc = ju_int64(o, where, "minor", &t->minor, &hn, e)) < 0 ||
	    (rc = ju_uint64(o, where, "rate", &t->rate, &hr, e)) < 0)
		return rc;
	if (!hm || !hn || !hr)
		return BAD(e, "%s: major, minor and rate are required", where);
	return 0;
}

static int parse_weight16(json_object *o, const char *where, const char *key, uint16_t *ret, bool *present,
			  struct err **e)
{
	uint32_t v;
	bool p = false;
	int rc = ju_uint32(o, where, key, &v, &p, e);

	if (rc < 0 || !p)
		return rc;
	if (v != 0 && (v < 10 || v > 1000))
		return BAD(e, "%s.%s: %u is not in 10..1000", where, key, v);
	*ret = (uint16_t)v;
	*present = true;
	return 0;
}

static int weight_device_item(json_object *o, const char *where, void *elem, void *ctx, struct err **e)
{
	struct cgroup_weight_device *w = elem;
	bool hm = false, hn = false;
	int rc;

	(void)ctx;
	if ((rc = ju_int64(o, where, "major", &w->major, &hm, e)) < 0 ||
	    (rc = ju_int64(o, where, "minor", &w->minor, &hn, e)) < 0 ||
	    (rc = parse_weight16(o, where, "weight", &w->weight, &w->has_weight, e)) < 0 ||
	    (rc = parse_weight16(o, where, "leafWeight", &w->leaf_weight, &w->has_leaf_weight, e)) < 0)
		return rc;
	if (!hm || !hn)
		return BAD(e, "%s: major and minor are required", where);
	return 0;
}

static int parse_blkio(json_object *res, const char *path, struct cgroup_resources *r, struct err **e)
{
	static const char *const throttle_keys[CGROUP_THROTTLE_KINDS] = {
	    "throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"};
	json_object *b;
	char where[96];
	int rc = ju_object(res, path, "blockIO", &b, e);

	if (rc < 0 || b == NULL)
		return rc;
	snprintf(where, sizeof(where), "%s.blockIO", path);
	if ((rc = parse_weight16(b, where, "weight", &r->blkio_weight, &r->has_blkio_weight, e)) < 0 ||
	    (rc = parse_weight16(b, where, "leafWeight", &r->blkio_leaf_weight, &r->has_blkio_leaf_weight, e)) < 0)
		return rc;
	for (int i = 0; i < CGROUP_THROTTLE_KINDS; i++)
		if ((rc = ju_object_array(b, where, throttle_keys[i], sizeof(struct cgroup_throttle),
					  (void **)&r->blkio_throttle[i], &r->n_blkio_throttle[i], throttle_item, NULL,
					  e)) < 0)
			return rc;
	return ju_object_array(b, where, "weightDevice", sizeof(*r->blkio_weight_devices),
			       (void **)&r->blkio_weight_devices, &r->n_blkio_weight_devices, weight_device_item, NULL,
			       e);
}

static int hugepage_item(json_object *o, const char *where, void *elem, void *ctx, struct err **e)
{
	struct cgroup_hugepage *h = elem;
	bool hl = false;
	size_t n;
	int rc;

	(void)ctx;
	if ((rc = ju_string(o, where, "pageSize", &h->page_size, e)) < 0 ||
	    (rc = ju_uint64(o, where, "limit", &h->limit, &hl, e)) < 0)
		return rc;
	if (h->page_size == NULL || !hl)
		return BAD(e, "%s: pageSize and limit are required", where);
	n = strspn(h->page_size, "0123456789");
	if (n == 0 ||
	    (strcmp(h->page_size + n, "KB") && strcmp(h->page_size + n, "MB") && strcmp(h->page_size + n, "GB")))
		return BAD(e, "%s.pageSize: '%s' is not a size like 2MB", where, h->page_size);
	return 0;
}

static int parse_hugepages(json_object *res, const char *path, struct cgroup_resources *r, struct err **e)
{
	return ju_object_array(res, path, "hugepageLimits", sizeof(*r->hugepages), (void **)&r->hugepages,
			       &r->n_hugepages, hugepage_item, NULL, e);
}

/* cgroup2 files, written as given. */
static int parse_unified(json_object *res, const char *path, struct cgroup_resources *r, struct err **e)
{
	struct oci_kv *kv = NULL;
	size_t n = 0;
	int rc = ju_string_map(res, path, "unified", &kv, &n, e);

	if (rc < 0)
		return rc;
	if (n && (r->unified = calloc(n, sizeof(*r->unified))) == NULL) {
		spec_kv_free(kv, n);
		return err_set(e, ENOMEM, "%s.unified", path);
	}
	for (size_t i = 0; i < n; i++)
		r->unified[i] = (struct cgroup_kv){kv[i].key, kv[i].value};
	r->n_unified = n;
	free(kv);
	return 0;
}

int spec_resources_from_json(json_object *res, const char *path, struct cgroup_resources *r, struct err **e)
{
	json_object *pids, *net;
	char where[96];
	int rc;

	if ((rc = parse_device_rules(res, path, r, e)) < 0 || (rc = parse_memory(res, path, r, e)) < 0 ||
	    (rc = parse_cpu(res, path, r, e)) < 0 || (rc = parse_blkio(res, path, r, e)) < 0 ||
	    (rc = parse_hugepages(res, path, r, e)) < 0 || (rc = parse_unified(res, path, r, e)) < 0)
		return rc;
	for (size_t i = 0; i < r->n_unified; i++)
		if (strchr(r->unified[i].key, '/') || strchr(r->unified[i].key, '.') == NULL)
			return BAD(e, "%s.unified.%s: not a cgroup file name", path, r->unified[i].key);
	if ((rc = ju_object(res, path, "pids", &pids, e)) < 0)
		return rc;
	if (pids) {
		snprintf(where, sizeof(where), "%s.pids", path);
		if ((rc = ju_int64(pids, where, "limit", &r->pids_limit, &r->has_pids_limit, e)) < 0)
			return rc;
	}
	if ((rc = ju_object(res, path, "network", &net, e)) < 0)
		return rc;
	if (net) {
		snprintf(where, sizeof(where), "%s.network", path);
		if ((rc = ju_uint32(net, where, "classID", &r->net_class_id, &r->has_net_class_id, e)) < 0)
			return rc;
	}
	return 0;
}

int spec_parse_resources(const char *text, size_t len, struct cgroup_resources *ret, struct err **e)
{
	json_object *root;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if ((rc = json_doc_parse(text, len, "resources", &root, e)) < 0)
		return rc;
	if (json_object_get_type(root) != json_type_object) {
		json_object_put(root);
		return err_setx(e, EINVAL, "resources: expected an object");
	}
	rc = spec_resources_from_json(root, "resources", ret, e);
	json_object_put(root);
	if (rc < 0)
		cgroup_resources_clear(ret);
	return rc;
}
