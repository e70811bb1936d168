/* A container's cgroup: runc's rules and words over libcasulo-cgroup. */
#include "oci/cgroups.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "oci/spec.h"

int cgroups_resolve(const char *cgroups_path, const char *id, bool systemd, struct cgroup **ret, struct err **e)
{
	const char *path = cgroups_path && *cgroups_path ? cgroups_path : id;

	if (systemd) {
		if (access("/run/systemd/system", F_OK) < 0)
			return err_setx(e, ENOTSUP,
					"cgroup '%s': --systemd-cgroup: systemd is not running on this host "
					"(no /run/systemd/system); use the cgroupfs driver",
					path);
		return err_setx(e, ENOTSUP, "cgroup '%s': --systemd-cgroup: the systemd driver is not implemented",
				path);
	}
	if (strchr(path, ':') && path[0] != '/')
		return err_setx(e, EINVAL,
				"cgroup '%s': linux.cgroupsPath: 'slice:prefix:name' is the systemd form; "
				"pass --systemd-cgroup or use a path",
				path);
	return cgroup_resolve(path, ret, e);
}

int cgroups_make(struct cgroup *cg, const char *id, struct err **e)
{
	int n_procs = 0;

	if (cgroup_make(cg, &n_procs, e) < 0) {
		if (err_code(*e) == EBUSY && strstr((*e)->msg, "frozen"))
			return err_wrap(
			    e, "container '%s': container's cgroup unexpectedly frozen; thaw it or remove it first",
			    id);
		return err_wrap(e, "container '%s'", id);
	}
	if (n_procs > 0)
		log_warn("container '%s': container's cgroup is not empty: %d process(es) found", id, n_procs);
	return 0;
}

int cgroups_check(const struct cgroup *cg, const struct cgroup_resources *r, struct err **e)
{
	return r && cgroup_check(cg, r, e) < 0 ? err_wrap(e, "linux.resources") : 0;
}

/* runc writes none of these when 0 (an update leaves them as they are);
 * the OOM killer switch and use_hierarchy only when true. */
static void drop_zeros(struct cgroup_resources *r)
{
#define DROP_ZERO(field) r->has_##field = r->has_##field && r->field != 0
	DROP_ZERO(mem_limit);
	DROP_ZERO(mem_reservation);
	DROP_ZERO(mem_swap);
	DROP_ZERO(mem_kernel);
	DROP_ZERO(mem_kernel_tcp);
	DROP_ZERO(mem_disable_oom_killer);
	DROP_ZERO(mem_use_hierarchy);
	DROP_ZERO(cpu_shares);
	DROP_ZERO(cpu_period);
	DROP_ZERO(cpu_quota);
	DROP_ZERO(cpu_rt_period);
	DROP_ZERO(cpu_rt_runtime);
	DROP_ZERO(pids_limit);
	DROP_ZERO(blkio_weight);
	DROP_ZERO(blkio_leaf_weight);
#undef DROP_ZERO
	/* swappiness -1 (as an unsigned number) is runc's "unset" */
	r->has_mem_swappiness = r->has_mem_swappiness && r->mem_swappiness <= 100;
}

int cgroups_apply(struct cgroup *cg, const struct cgroup_resources *r, const struct oci_device *devs, size_t n_devs,
		  bool updating, struct err **e)
{
	static const struct cgroup_resources empty;
	/* A shallow copy: the flags change, what the pointers hold does not. */
	struct cgroup_resources w = r ? *r : empty;
	_cleanup_free_ struct cgroup_device_rule *rules = NULL;
	size_t n = 0;

	drop_zeros(&w);
	if (cgroup_set(cg, &w, e) < 0)
		return err_wrap(e, "linux.resources");
	if (updating && !w.has_devices)
		return 0;
	if (cgroups_device_rules(&w, devs, n_devs, &rules, &n) < 0)
		return err_set(e, ENOMEM, "cgroup '%s': devices", cg->rel);
	if (cgroup_set_devices(cg, rules, n, e) < 0)
		return err_wrap(e, "linux.resources.devices");
	return 0;
}

int cgroups_for_exec(const struct cgroup *cg, char *const *args, size_t n, struct cgroup **ret, struct err **e)
{
	struct cgroup *cur = NULL;

	/* runc's checks of the arguments first, in its words. */
	for (size_t i = 0; i < n; i++) {
		const char *a = args[i], *colon = strchr(a, ':');
		if (colon && strchr(colon + 1, ':'))
			return err_setx(e, EINVAL, "invalid --cgroup argument: %s", a);
		if (colon == NULL && n != 1)
			return err_setx(e, EINVAL, "invalid --cgroup argument: %s (missing <controller>: prefix)", a);
	}
	for (size_t i = 0; i < n; i++) {
		const char *a = args[i], *colon = strchr(a, ':');
		_cleanup_free_ char *ctrls = colon ? strndup(a, (size_t)(colon - a)) : NULL;
		const char *sub = colon ? colon + 1 : a;
		struct cgroup *next = NULL;
		char *save = NULL;

		if (colon && ctrls == NULL)
			goto nomem;
		/* Each controller must be one of the container's (the cgroup2
		 * side has none to name: only the form without one reaches it). */
		for (char *t = ctrls ? strtok_r(ctrls, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
			if (*t && cgroup_v1_dir(cg, t) == NULL) {
				cgroup_free(cur);
				return err_setx(e, EINVAL, "unknown controller %s in SubCgroupPaths", t);
			}
			if (t != ctrls)
				t[-1] = ',';
		}
		while (*sub == '/')
			sub++;
		if (cgroup_child(cur ? cur : cg, ctrls, sub, &next, e) < 0) {
			cgroup_free(cur);
			err_free(e);
			return err_setx(e, EINVAL, "%s is not a sub cgroup path", colon ? colon + 1 : a);
		}
		cgroup_free(cur);
		cur = next;
	}
	*ret = cur;
	return 0;
nomem:
	cgroup_free(cur);
	return err_set(e, ENOMEM, "exec --cgroup");
}

static json_object *dir_to_json(const struct cgroup_dir *d)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "controllers", json_object_new_string(d->controllers ? d->controllers : ""));
	json_object_object_add(o, "mountpoint", json_object_new_string(d->mountpoint ? d->mountpoint : ""));
	json_object_object_add(o, "path", json_object_new_string(d->path ? d->path : ""));
	return o;
}

json_object *cgroups_to_json(const struct cgroup *cg)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();

	json_object_object_add(o, "mode", json_object_new_int(cg->mode));
	json_object_object_add(o, "rel", json_object_new_string(cg->rel));
	for (size_t i = 0; i < cg->n_v1; i++)
		json_object_array_add(arr, dir_to_json(&cg->v1[i]));
	json_object_object_add(o, "v1", arr);
	if (cg->unified.path)
		json_object_object_add(o, "unified", dir_to_json(&cg->unified));
	return o;
}

static int dir_from_json(json_object *o, struct cgroup_dir *d)
{
	json_object *c, *m, *p;

	if (!json_object_object_get_ex(o, "controllers", &c) || !json_object_object_get_ex(o, "mountpoint", &m) ||
	    !json_object_object_get_ex(o, "path", &p))
		return -EINVAL;
	d->controllers = strdup(json_object_get_string(c));
	d->mountpoint = strdup(json_object_get_string(m));
	d->path = strdup(json_object_get_string(p));
	return d->controllers && d->mountpoint && d->path ? 0 : -ENOMEM;
}

int cgroups_from_json(json_object *o, struct cgroup **ret, struct err **e)
{
	json_object *mode, *rel, *arr, *uni;
	struct cgroup *cg = calloc(1, sizeof(*cg));

	if (cg == NULL)
		return err_set(e, ENOMEM, "state: cgroup");
	if (!json_object_object_get_ex(o, "mode", &mode) || !json_object_object_get_ex(o, "rel", &rel) ||
	    !json_object_object_get_ex(o, "v1", &arr))
		goto bad;
	cg->mode = json_object_get_int(mode);
	cg->rel = strdup(json_object_get_string(rel));
	for (size_t i = 0; i < json_object_array_length(arr) && i < CGROUP_V1_MAX; i++) {
		if (dir_from_json(json_object_array_get_idx(arr, i), &cg->v1[i]) < 0)
			goto bad;
		cg->n_v1 = i + 1;
	}
	if (json_object_object_get_ex(o, "unified", &uni) && dir_from_json(uni, &cg->unified) < 0)
		goto bad;
	*ret = cg;
	return 0;
bad:
	cgroup_free(cg);
	return err_setx(e, EINVAL, "state: cgroup: malformed record");
}

int cgroups_device_rules(const struct cgroup_resources *r, const struct oci_device *devs, size_t n_devs,
			 struct cgroup_device_rule **ret, size_t *n)
{
	/* runc's list; one with a path gives way to a linux.devices entry of
	 * the same path (the spec's device takes its place in /dev). */
	static const struct {
		const char *path;
		struct cgroup_device_rule rule;
	} defaults[] = {
	    {NULL, {true, 'c', -1, -1, "m"}},		{NULL, {true, 'b', -1, -1, "m"}},
	    {"/dev/null", {true, 'c', 1, 3, "rwm"}},	{"/dev/random", {true, 'c', 1, 8, "rwm"}},
	    {"/dev/full", {true, 'c', 1, 7, "rwm"}},	{"/dev/tty", {true, 'c', 5, 0, "rwm"}},
	    {"/dev/zero", {true, 'c', 1, 5, "rwm"}},	{"/dev/urandom", {true, 'c', 1, 9, "rwm"}},
	    {"/dev/console", {true, 'c', 5, 1, "rwm"}}, {NULL, {true, 'c', 136, -1, "rwm"}},
	    {NULL, {true, 'c', 5, 2, "rwm"}},		{NULL, {true, 'c', 10, 200, "rwm"}},
	};
	size_t nr = r ? r->n_devices : 0;
	struct cgroup_device_rule *v = calloc(nr + ARRAY_SIZE(defaults) + 1, sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	*n = 0;
	/* With no rule at all, runc denies everything but the defaults. */
	if (nr == 0)
		v[(*n)++] = (struct cgroup_device_rule){false, 'a', -1, -1, "rwm"};
	for (size_t i = 0; i < nr; i++)
		v[(*n)++] = r->devices[i];
	/* linux.devices only makes nodes: access to them is what
	 * linux.resources.devices allows, never more (a node listed there is
	 * not readable under a deny-all rule). */
	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++) {
		bool replaced = false;
		for (size_t j = 0; defaults[i].path && j < n_devs && !replaced; j++)
			replaced = devs[j].path && strcmp(devs[j].path, defaults[i].path) == 0;
		if (!replaced)
			v[(*n)++] = defaults[i].rule;
	}
	*ret = v;
	return 0;
}
