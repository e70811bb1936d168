/* config.json: top level, process, mounts, hooks and the linux section
 * (resources and seccomp live in spec-resources.c and spec-seccomp.c). */
#include "oci/spec.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>

#include "common/json-doc.h"
#include <linux/personality.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/log.h"
#include "oci/json-util.h"
#include "oci/spec-internal.h"
#include "oci/util.h"

#define BAD(e, ...) err_setx(e, EINVAL, "config.json: " __VA_ARGS__)

static int idmap_item(json_object *m, const char *where, void *elem, void *ctx, struct err **e)
{
	struct oci_idmap *map = elem;
	bool has_c = false, has_h = false, has_s = false;
	int r;

	(void)ctx;
	if ((r = ju_uint32(m, where, "containerID", &map->container_id, &has_c, e)) < 0 ||
	    (r = ju_uint32(m, where, "hostID", &map->host_id, &has_h, e)) < 0 ||
	    (r = ju_uint32(m, where, "size", &map->size, &has_s, e)) < 0)
		return r;
	if (!has_c || !has_h || !has_s)
		return BAD(e, "%s: containerID, hostID and size are required", where);
	if (map->size == 0)
		return BAD(e, "%s.size: must be greater than 0", where);
	return 0;
}

static int parse_idmaps(json_object *parent, const char *path, const char *key, struct oci_idmap **ret, size_t *n,
			struct err **e)
{
	return ju_object_array(parent, path, key, sizeof(**ret), (void **)ret, n, idmap_item, NULL, e);
}

static int parse_user(json_object *proc, struct oci_user *u, struct err **e)
{
	json_object *user, *gids;
	bool has_uid = false, has_gid = false;
	uint32_t umask_v;
	int r;

	if ((r = ju_object(proc, "process", "user", &user, e)) < 0)
		return r;
	if (user == NULL)
		return 0;
	if ((r = ju_uint32(user, "process.user", "uid", &u->uid, &has_uid, e)) < 0 ||
	    (r = ju_uint32(user, "process.user", "gid", &u->gid, &has_gid, e)) < 0 ||
	    (r = ju_uint32(user, "process.user", "umask", &umask_v, &u->has_umask, e)) < 0)
		return r;
	if (u->has_umask) {
		if (umask_v > 07777)
			return BAD(e, "process.user.umask: %u is not a file mode", umask_v);
		u->umask = umask_v;
	}
	if (ju_get(user, "username"))
		return BAD(e, "process.user.username: only valid on Windows");
	if ((r = ju_array(user, "process.user", "additionalGids", &gids, e)) < 0)
		return r;
	if (gids) {
		size_t len = json_object_array_length(gids);
		u->additional_gids = calloc(len + 1, sizeof(gid_t));
		if (u->additional_gids == NULL)
			return err_set(e, ENOMEM, "config.json: process.user.additionalGids");
		for (size_t i = 0; i < len; i++) {
			char where[64];
			int64_t v;
			snprintf(where, sizeof(where), "process.user.additionalGids[%zu]", i);
			if ((r = ju_node_int64(json_object_array_get_idx(gids, i), where, &v, e)) < 0)
				return r;
			if (v < 0 || v > UINT32_MAX)
				return BAD(e, "%s: %lld is not a gid", where, (long long)v);
			u->additional_gids[i] = (gid_t)v;
		}
		u->n_additional_gids = len;
	}
	return 0;
}

static int parse_caps(json_object *proc, struct oci_process *p, struct err **e)
{
	static const char *const set_names[CAP_SET_MAX] = {
	    [CAP_SET_BOUNDING] = "bounding",   [CAP_SET_EFFECTIVE] = "effective", [CAP_SET_INHERITABLE] = "inheritable",
	    [CAP_SET_PERMITTED] = "permitted", [CAP_SET_AMBIENT] = "ambient",
	};
	json_object *caps;
	int r;

	if ((r = ju_object(proc, "process", "capabilities", &caps, e)) < 0)
		return r;
	if (caps == NULL)
		return 0;
	p->has_caps = true;
	for (int s = 0; s < CAP_SET_MAX; s++) {
		char **names = NULL;
		size_t n = 0;
		if ((r = ju_string_array(caps, "process.capabilities", set_names[s], &names, &n, e)) < 0)
			return r;
		for (size_t i = 0; i < n; i++) {
			int cap = spec_cap_from_name(names[i]);
			/* runc ignores what it does not know (a capability newer
			 * than it), with a warning: so do we. */
			if (cap < 0 || cap > 63) {
				log_warn("config.json: process.capabilities.%s[%zu]: unknown capability '%s', ignored",
					 set_names[s], i, names[i]);
				continue;
			}
			p->caps[s] |= 1ULL << cap;
		}
		strv_free(names);
	}
	return 0;
}

static int rlimit_item(json_object *o, const char *where, void *elem, void *ctx, struct err **e)
{
	struct oci_rlimit *rl = elem, *all = *(struct oci_rlimit **)ctx;
	_cleanup_free_ char *type = NULL;
	bool has_soft = false, has_hard = false;
	int r;

	if ((r = ju_string(o, where, "type", &type, e)) < 0)
		return r;
	if (type == NULL)
		return BAD(e, "%s.type: required", where);
	rl->resource = spec_rlimit_from_name(type);
	if (rl->resource < 0)
		return BAD(e, "%s.type: unknown rlimit '%s'", where, type);
	for (struct oci_rlimit *p = all; p < rl; p++)
		if (p->resource == rl->resource)
			return BAD(e, "%s.type: '%s' is given twice", where, type);
	if ((r = ju_uint64(o, where, "soft", &rl->soft, &has_soft, e)) < 0 ||
	    (r = ju_uint64(o, where, "hard", &rl->hard, &has_hard, e)) < 0)
		return r;
	if (!has_soft || !has_hard)
		return BAD(e, "%s: soft and hard are required", where);
	if (rl->soft > rl->hard)
		return BAD(e, "%s: soft limit %llu is above hard limit %llu", where, (unsigned long long)rl->soft,
			   (unsigned long long)rl->hard);
	return 0;
}

static int parse_rlimits(json_object *proc, struct oci_process *p, struct err **e)
{
	return ju_object_array(proc, "process", "rlimits", sizeof(*p->rlimits), (void **)&p->rlimits, &p->n_rlimits,
			       rlimit_item, &p->rlimits, e);
}

static int parse_io_sched(json_object *proc, struct oci_process *p, struct err **e)
{
	static const char *const classes[] = {"IOPRIO_CLASS_NONE", "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE",
					      "IOPRIO_CLASS_IDLE"};
	static const char *const policies[] = {"SCHED_OTHER", "SCHED_FIFO", "SCHED_RR",	     "SCHED_BATCH",
					       "SCHED_ISO",   "SCHED_IDLE", "SCHED_DEADLINE"};
	json_object *io, *sched;
	int r;

	if ((r = ju_object(proc, "process", "ioPriority", &io, e)) < 0)
		return r;
	if (io) {
		_cleanup_free_ char *cls = NULL;
		int32_t prio = 0;
		if ((r = ju_string(io, "process.ioPriority", "class", &cls, e)) < 0 ||
		    (r = ju_int32(io, "process.ioPriority", "priority", &prio, NULL, e)) < 0)
			return r;
		p->io_priority_class = -1;
		for (int i = 0; cls && i < 4; i++)
			if (strcmp(cls, classes[i]) == 0)
				p->io_priority_class = i;
		if (p->io_priority_class < 0)
			return BAD(e, "process.ioPriority.class: unknown class '%s'", cls ? cls : "");
		if (prio < 0 || prio > 7)
			return BAD(e, "process.ioPriority.priority: %d is not in 0..7", prio);
		p->io_priority = prio;
		p->has_io_priority = true;
	}
	if ((r = ju_object(proc, "process", "scheduler", &sched, e)) < 0)
		return r;
	if (sched) {
		_cleanup_free_ char *pol = NULL;
		char **flags = NULL;
		size_t nflags = 0;
		int32_t nice = 0, prio = 0;
		if ((r = ju_string(sched, "process.scheduler", "policy", &pol, e)) < 0 ||
		    (r = ju_int32(sched, "process.scheduler", "nice", &nice, NULL, e)) < 0 ||
		    (r = ju_int32(sched, "process.scheduler", "priority", &prio, NULL, e)) < 0 ||
		    (r = ju_uint64(sched, "process.scheduler", "runtime", &p->sched_runtime, NULL, e)) < 0 ||
		    (r = ju_uint64(sched, "process.scheduler", "deadline", &p->sched_deadline, NULL, e)) < 0 ||
		    (r = ju_uint64(sched, "process.scheduler", "period", &p->sched_period, NULL, e)) < 0 ||
		    (r = ju_string_array(sched, "process.scheduler", "flags", &flags, &nflags, e)) < 0)
			return r;
		for (size_t i = 0; i < nflags; i++) {
			static const char *const names[] = {"SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM",
							    "SCHED_FLAG_DL_OVERRUN",	"SCHED_FLAG_KEEP_POLICY",
							    "SCHED_FLAG_KEEP_PARAMS",	"SCHED_FLAG_UTIL_CLAMP_MIN",
							    "SCHED_FLAG_UTIL_CLAMP_MAX"};
			int bit = -1;
			for (int j = 0; j < 7; j++)
				if (strcmp(flags[i], names[j]) == 0)
					bit = j;
			if (bit < 0) {
				r = BAD(e, "process.scheduler.flags[%zu]: unknown flag '%s'", i, flags[i]);
				strv_free(flags);
				return r;
			}
			p->sched_flags |= 1ULL << bit;
		}
		strv_free(flags);
		p->sched_policy = -1;
		for (int i = 0; pol && i < 7; i++)
			if (strcmp(pol, policies[i]) == 0)
				p->sched_policy = i;
		if (p->sched_policy < 0 || p->sched_policy == 4)
			return BAD(e, "process.scheduler.policy: unknown or unsupported policy '%s'", pol ? pol : "");
		if (nice < -20 || nice > 19)
			return BAD(e, "process.scheduler.nice: %d is not in -20..19", nice);
		p->sched_nice = nice;
		p->sched_priority = prio;
		if (p->sched_policy == 6) { /* SCHED_DEADLINE */
			if (p->sched_runtime == 0)
				return BAD(e, "process.scheduler: SCHED_DEADLINE requires runtime");
			if (p->sched_deadline == 0)
				return BAD(e, "process.scheduler: SCHED_DEADLINE requires deadline");
			if (p->sched_runtime > p->sched_deadline ||
			    (p->sched_period && p->sched_deadline > p->sched_period))
				return BAD(e, "process.scheduler: SCHED_DEADLINE needs runtime <= deadline <= period");
		}
		p->has_scheduler = true;
	}
	return 0;
}

static int parse_process_obj(json_object *proc, struct oci_process *p, struct err **e)
{
	json_object *cs;
	int r;

	if ((r = ju_bool(proc, "process", "terminal", &p->terminal, NULL, e)) < 0)
		return r;
	if ((r = ju_object(proc, "process", "consoleSize", &cs, e)) < 0)
		return r;
	if (cs) {
		uint32_t h = 0, w = 0;
		if ((r = ju_uint32(cs, "process.consoleSize", "height", &h, NULL, e)) < 0 ||
		    (r = ju_uint32(cs, "process.consoleSize", "width", &w, NULL, e)) < 0)
			return r;
		p->console_height = h;
		p->console_width = w;
	}
	if ((r = parse_user(proc, &p->user, e)) < 0 ||
	    (r = ju_string_array(proc, "process", "args", &p->args, &p->n_args, e)) < 0 ||
	    (r = ju_string_array(proc, "process", "env", &p->env, &p->n_env, e)) < 0 ||
	    (r = ju_string(proc, "process", "cwd", &p->cwd, e)) < 0 || (r = parse_caps(proc, p, e)) < 0 ||
	    (r = parse_rlimits(proc, p, e)) < 0 ||
	    (r = ju_bool(proc, "process", "noNewPrivileges", &p->no_new_privileges, NULL, e)) < 0 ||
	    (r = ju_string(proc, "process", "apparmorProfile", &p->apparmor_profile, e)) < 0 ||
	    (r = ju_int32(proc, "process", "oomScoreAdj", &p->oom_score_adj, &p->has_oom_score_adj, e)) < 0 ||
	    (r = ju_string(proc, "process", "selinuxLabel", &p->selinux_label, e)) < 0 ||
	    (r = parse_io_sched(proc, p, e)) < 0)
		return r;
	if (ju_get(proc, "commandLine"))
		return BAD(e, "process.commandLine: only valid on Windows");
	if (p->args == NULL || p->n_args == 0 || p->args[0][0] == '\0')
		return BAD(e, "process.args: required, with at least the program to run");
	if (p->cwd == NULL)
		return BAD(e, "process.cwd: required");
	if (p->cwd[0] != '/')
		return BAD(e, "process.cwd: '%s' is not an absolute path", p->cwd);
	for (size_t i = 0; i < p->n_env; i++)
		if (strchr(p->env[i], '=') == NULL || p->env[i][0] == '=')
			return BAD(e, "process.env[%zu]: '%s' is not KEY=value", i, p->env[i]);
	if (p->has_oom_score_adj && (p->oom_score_adj < -1000 || p->oom_score_adj > 1000))
		return BAD(e, "process.oomScoreAdj: %d is not in -1000..1000", p->oom_score_adj);
	return 0;
}

static int mount_item(json_object *o, const char *where, void *elem, void *ctx, struct err **e)
{
	struct oci_mount *m = elem;
	int r;

	(void)ctx;
	if ((r = ju_string(o, where, "destination", &m->destination, e)) < 0 ||
	    (r = ju_string(o, where, "source", &m->source, e)) < 0 ||
	    (r = ju_string(o, where, "type", &m->type, e)) < 0 ||
	    (r = ju_string_array(o, where, "options", &m->options, &m->n_options, e)) < 0 ||
	    (r = parse_idmaps(o, where, "uidMappings", &m->uid_map, &m->n_uid_map, e)) < 0 ||
	    (r = parse_idmaps(o, where, "gidMappings", &m->gid_map, &m->n_gid_map, e)) < 0)
		return r;
	if (m->destination == NULL || m->destination[0] == '\0')
		return BAD(e, "%s.destination: required", where);
	if (m->destination[0] != '/')
		return BAD(e, "%s.destination: '%s' is not an absolute path", where, m->destination);
	if (!!m->n_uid_map != !!m->n_gid_map)
		return BAD(e, "%s: uidMappings and gidMappings must be given together", where);
	return 0;
}

static int parse_mounts(json_object *root, struct oci_spec *s, struct err **e)
{
	return ju_object_array(root, "", "mounts", sizeof(*s->mounts), (void **)&s->mounts, &s->n_mounts, mount_item,
			       NULL, e);
}

static int hook_item(json_object *o, const char *where, void *elem, void *ctx, struct err **e)
{
	struct oci_hook *h = elem;
	bool has_timeout = false;
	int32_t timeout = 0;
	int r;

	(void)ctx;
	if ((r = ju_string(o, where, "path", &h->path, e)) < 0 ||
	    (r = ju_string_array(o, where, "args", &h->args, NULL, e)) < 0 ||
	    (r = ju_string_array(o, where, "env", &h->env, NULL, e)) < 0 ||
	    (r = ju_int32(o, where, "timeout", &timeout, &has_timeout, e)) < 0)
		return r;
	if (h->path == NULL)
		return BAD(e, "%s.path: required", where);
	if (h->path[0] != '/')
		return BAD(e, "%s.path: '%s' is not an absolute path", where, h->path);
	if (has_timeout && timeout <= 0)
		return BAD(e, "%s.timeout: must be greater than zero, got %d", where, timeout);
	h->timeout = timeout;
	return 0;
}

static int parse_hooks(json_object *root, struct oci_spec *s, struct err **e)
{
	json_object *hooks;
	int r = ju_object(root, "", "hooks", &hooks, e);

	if (r < 0 || hooks == NULL)
		return r;
	for (int k = 0; k < HOOK_KIND_MAX; k++)
		if ((r = ju_object_array(hooks, "hooks", oci_hook_names[k], sizeof(struct oci_hook),
					 (void **)&s->hooks[k], &s->n_hooks[k], hook_item, NULL, e)) < 0)
			return r;
	return 0;
}

static int parse_namespaces(json_object *linux_o, struct oci_spec *s, struct err **e)
{
	json_object *arr;
	int r = ju_array(linux_o, "linux", "namespaces", &arr, e);

	if (r < 0 || arr == NULL)
		return r;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		_cleanup_free_ char *type = NULL;
		char where[64];
		int kind = -1;

		snprintf(where, sizeof(where), "linux.namespaces[%zu]", i);
		if (json_object_get_type(o) != json_type_object)
			return ju_type_error(e, where, NULL, "an object", o);
		if ((r = ju_string(o, where, "type", &type, e)) < 0)
			return r;
		if (type == NULL)
			return BAD(e, "%s.type: required", where);
		for (int k = 0; k < NS_KIND_MAX; k++)
			if (strcmp(type, oci_ns_info[k].spec_name) == 0)
				kind = k;
		if (kind < 0)
			return BAD(e, "%s.type: unknown namespace type '%s'", where, type);
		if (s->ns[kind].present)
			return BAD(e, "%s.type: duplicate namespace '%s'", where, type);
		s->ns[kind].present = true;
		if ((r = ju_string(o, where, "path", &s->ns[kind].path, e)) < 0)
			return r;
		if (s->ns[kind].path && s->ns[kind].path[0] != '/')
			return BAD(e, "%s.path: '%s' is not an absolute path", where, s->ns[kind].path);
	}
	return 0;
}

static int device_item(json_object *o, const char *where, void *elem, void *ctx, struct err **e)
{
	struct oci_device *d = elem;
	_cleanup_free_ char *type = NULL;
	bool has_major = false, has_minor = false;
	uint32_t mode;
	int r;

	(void)ctx;
	if ((r = ju_string(o, where, "path", &d->path, e)) < 0 || (r = ju_string(o, where, "type", &type, e)) < 0 ||
	    (r = ju_int64(o, where, "major", &d->major, &has_major, e)) < 0 ||
	    (r = ju_int64(o, where, "minor", &d->minor, &has_minor, e)) < 0 ||
	    (r = ju_uint32(o, where, "fileMode", &mode, &d->has_mode, e)) < 0 ||
	    (r = ju_uint32(o, where, "uid", &d->uid, &d->has_uid, e)) < 0 ||
	    (r = ju_uint32(o, where, "gid", &d->gid, &d->has_gid, e)) < 0)
		return r;
	d->mode = mode;
	for (size_t n = d->path ? strlen(d->path) : 0; n > 1 && d->path[n - 1] == '/'; n--)
		d->path[n - 1] = '\0';
	if (d->path == NULL || d->path[0] != '/')
		return BAD(e, "%s.path: required, an absolute path", where);
	if (type == NULL || strlen(type) != 1 || strchr("cbup", type[0]) == NULL)
		return BAD(e, "%s.type: must be one of c, b, u, p, got '%s'", where, type ? type : "");
	d->type = type[0];
	if (d->type != 'p' && (!has_major || !has_minor))
		return BAD(e, "%s: major and minor are required for type '%c'", where, d->type);
	if (d->major < 0 || d->minor < 0 || d->major > 0xfff || d->minor > 0xfffff)
		return BAD(e, "%s: device number %lld:%lld is out of range", where, (long long)d->major,
			   (long long)d->minor);
	if (d->has_mode && (mode & ~07777u))
		return BAD(e, "%s.fileMode: %o has bits other than permissions", where, mode);
	return 0;
}

static int parse_devices(json_object *linux_o, struct oci_spec *s, struct err **e)
{
	return ju_object_array(linux_o, "linux", "devices", sizeof(*s->devices), (void **)&s->devices, &s->n_devices,
			       device_item, NULL, e);
}

static int parse_paths(json_object *linux_o, const char *key, char ***ret, size_t *n, struct err **e)
{
	int r = ju_string_array(linux_o, "linux", key, ret, n, e);

	if (r < 0)
		return r;
	for (size_t i = 0; i < *n; i++)
		if ((*ret)[i][0] != '/')
			return BAD(e, "linux.%s[%zu]: '%s' is not an absolute path", key, i, (*ret)[i]);
	return 0;
}

static int parse_personality(json_object *linux_o, struct oci_spec *s, struct err **e)
{
	json_object *pers;
	_cleanup_free_ char *domain = NULL;
	char **flags = NULL;
	size_t nflags = 0;
	int r = ju_object(linux_o, "linux", "personality", &pers, e);

	if (r < 0 || pers == NULL)
		return r;
	if ((r = ju_string(pers, "linux.personality", "domain", &domain, e)) < 0 ||
	    (r = ju_string_array(pers, "linux.personality", "flags", &flags, &nflags, e)) < 0)
		return r;
	strv_free(flags);
	if (domain == NULL)
		return BAD(e, "linux.personality.domain: required");
	if (strcmp(domain, "LINUX") == 0)
		s->personality = PER_LINUX;
	else if (strcmp(domain, "LINUX32") == 0)
		s->personality = PER_LINUX32;
	else
		return BAD(e, "linux.personality.domain: unknown domain '%s' (LINUX or LINUX32)", domain);
	if (nflags)
		return BAD(e, "linux.personality.flags: no flags are supported");
	s->has_personality = true;
	return 0;
}

static int parse_time_offsets(json_object *linux_o, struct oci_spec *s, struct err **e)
{
	json_object *offs;
	int r = ju_object(linux_o, "linux", "timeOffsets", &offs, e);

	if (r < 0 || offs == NULL)
		return r;
	json_object_object_foreach(offs, key, val)
	{
		struct oci_time_offset *t;
		char where[96];

		if (strcmp(key, "monotonic") == 0)
			t = &s->time_monotonic;
		else if (strcmp(key, "boottime") == 0)
			t = &s->time_boottime;
		else
			return BAD(e, "linux.timeOffsets.%s: unknown clock (monotonic or boottime)", key);
		snprintf(where, sizeof(where), "linux.timeOffsets.%s", key);
		if (json_object_get_type(val) != json_type_object)
			return ju_type_error(e, where, NULL, "an object", val);
		if ((r = ju_int64(val, where, "secs", &t->secs, NULL, e)) < 0 ||
		    (r = ju_uint32(val, where, "nanosecs", &t->nanosecs, NULL, e)) < 0)
			return r;
		if (t->nanosecs >= 1000000000u)
			return BAD(e, "%s.nanosecs: %u is not below one second", where, t->nanosecs);
		t->present = true;
	}
	return 0;
}

static bool valid_ifname(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len >= 16 || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
		return false;
	for (const char *p = n; *p; p++)
		if (*p == '/' || *p == ':' || *p == ' ' || *p == '\t' || *p == '\n')
			return false;
	return true;
}

static int parse_net_devices(json_object *linux_o, struct oci_spec *s, struct err **e)
{
	json_object *devs;
	size_t n = 0;
	int r = ju_object(linux_o, "linux", "netDevices", &devs, e);

	if (r < 0 || devs == NULL)
		return r;
	s->net_devices = calloc((size_t)json_object_object_length(devs) + 1, sizeof(*s->net_devices));
	if (s->net_devices == NULL)
		return err_set(e, ENOMEM, "config.json: linux.netDevices");
	json_object_object_foreach(devs, host, val)
	{
		char where[64];
		_cleanup_free_ char *name = NULL;

		snprintf(where, sizeof(where), "linux.netDevices.%.40s", host);
		if (json_object_get_type(val) != json_type_object)
			return ju_type_error(e, where, NULL, "an object", val);
		if ((r = ju_string(val, where, "name", &name, e)) < 0)
			return r;
		if (!valid_ifname(host))
			return BAD(e, "%s: '%s' is not a network device name", where, host);
		if (name && *name && !valid_ifname(name))
			return BAD(e, "%s.name: '%s' is not a network device name", where, name);
		s->net_devices[n].key = strdup(host);
		s->net_devices[n].value = strdup(name ? name : "");
		s->n_net_devices = ++n;
		if (s->net_devices[n - 1].key == NULL || s->net_devices[n - 1].value == NULL)
			return err_set(e, ENOMEM, "config.json: linux.netDevices");
		for (size_t i = 0; i + 1 < n; i++) {
			const char *a = s->net_devices[i].value[0] ? s->net_devices[i].value : s->net_devices[i].key;
			const char *b = s->net_devices[n - 1].value[0] ? s->net_devices[n - 1].value : host;
			if (strcmp(a, b) == 0)
				return BAD(e, "%s: two devices would be named '%s' in the container", where, b);
		}
	}
	return 0;
}

/* "0-3,5" into a node bit mask. */
static int parse_node_list(const char *text, unsigned long *mask, size_t bits)
{
	const char *p = text;

	while (*p) {
		char *end;
		unsigned long a = strtoul(p, &end, 10), b = a;
		if (end == p)
			return -1;
		if (*end == '-') {
			p = end + 1;
			b = strtoul(p, &end, 10);
			if (end == p || b < a)
				return -1;
		}
		if (b >= bits)
			return -1;
		for (unsigned long n = a; n <= b; n++)
			mask[n / (8 * sizeof(*mask))] |= 1UL << (n % (8 * sizeof(*mask)));
		if (*end == ',')
			end++;
		else if (*end != '\0')
			return -1;
		p = end;
	}
	return 0;
}

static int parse_memory_policy(json_object *linux_o, struct oci_spec *s, struct err **e)
{
	static const char *const modes[] = {
	    "MPOL_DEFAULT",	   "MPOL_PREFERRED",	      "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_LOCAL",
	    "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE"};
	static const struct {
		const char *name;
		unsigned bit;
	} flags[] = {{"MPOL_F_NUMA_BALANCING", 1u << 13},
		     {"MPOL_F_RELATIVE_NODES", 1u << 14},
		     {"MPOL_F_STATIC_NODES", 1u << 15}};
	json_object *mp;
	_cleanup_free_ char *mode = NULL, *nodes = NULL;
	char **fl = NULL;
	size_t nfl = 0;
	int r = ju_object(linux_o, "linux", "memoryPolicy", &mp, e);

	if (r < 0 || mp == NULL)
		return r;
	if ((r = ju_string(mp, "linux.memoryPolicy", "mode", &mode, e)) < 0 ||
	    (r = ju_string(mp, "linux.memoryPolicy", "nodes", &nodes, e)) < 0 ||
	    (r = ju_string_array(mp, "linux.memoryPolicy", "flags", &fl, &nfl, e)) < 0)
		return r;
	s->mempolicy_mode = -1;
	for (int i = 0; mode && i < (int)ARRAY_SIZE(modes); i++)
		if (strcmp(mode, modes[i]) == 0)
			s->mempolicy_mode = i;
	for (size_t i = 0; i < nfl; i++) {
		bool known = false;
		for (size_t j = 0; j < ARRAY_SIZE(flags); j++)
			if (strcmp(fl[i], flags[j].name) == 0)
				s->mempolicy_flags |= flags[j].bit, known = true;
		if (!known) {
			r = BAD(e, "linux.memoryPolicy.flags[%zu]: unknown flag '%s'", i, fl[i]);
			strv_free(fl);
			return r;
		}
	}
	strv_free(fl);
	if (s->mempolicy_mode < 0)
		return BAD(e, "linux.memoryPolicy.mode: %s '%s'", mode ? "unknown mode" : "required", mode ? mode : "");
	if (nodes && *nodes && parse_node_list(nodes, s->mempolicy_nodes, 1024) < 0)
		return BAD(e, "linux.memoryPolicy.nodes: '%s' is not a node list like 0-3,5", nodes);
	if ((s->mempolicy_mode == 0 || s->mempolicy_mode == 4) && nodes && *nodes)
		return BAD(e, "linux.memoryPolicy.nodes: %s takes no nodes", mode);
	if (s->mempolicy_mode != 0 && s->mempolicy_mode != 4 && s->mempolicy_mode != 1 && (!nodes || !*nodes))
		return BAD(e, "linux.memoryPolicy.nodes: %s needs nodes", mode);
	s->has_mempolicy = true;
	return 0;
}

static int parse_linux(json_object *root, struct oci_spec *s, struct err **e)
{
	json_object *l, *res;
	int r = ju_object(root, "", "linux", &l, e);

	if (r < 0 || l == NULL)
		return r;
	if ((r = parse_namespaces(l, s, e)) < 0 ||
	    (r = parse_idmaps(l, "linux", "uidMappings", &s->uid_mappings, &s->n_uid_mappings, e)) < 0 ||
	    (r = parse_idmaps(l, "linux", "gidMappings", &s->gid_mappings, &s->n_gid_mappings, e)) < 0 ||
	    (r = parse_time_offsets(l, s, e)) < 0 || (r = parse_devices(l, s, e)) < 0 ||
	    (r = ju_string(l, "linux", "cgroupsPath", &s->cgroups_path, e)) < 0 ||
	    (r = ju_string_map(l, "linux", "sysctl", &s->sysctl, &s->n_sysctl, e)) < 0 ||
	    (r = ju_string(l, "linux", "rootfsPropagation", &s->rootfs_propagation, e)) < 0 ||
	    (r = parse_paths(l, "maskedPaths", &s->masked_paths, &s->n_masked_paths, e)) < 0 ||
	    (r = parse_paths(l, "readonlyPaths", &s->readonly_paths, &s->n_readonly_paths, e)) < 0 ||
	    (r = ju_string(l, "linux", "mountLabel", &s->mount_label, e)) < 0 || (r = parse_personality(l, s, e)) < 0 ||
	    (r = parse_memory_policy(l, s, e)) < 0 || (r = parse_net_devices(l, s, e)) < 0)
		return r;
	if ((r = ju_object(l, "linux", "resources", &res, e)) < 0)
		return r;
	if (res) {
		s->has_resources = true;
		if ((r = spec_resources_from_json(res, "linux.resources", &s->resources, e)) < 0)
			return r;
	}
	if ((r = spec_seccomp_from_json(l, s, e)) < 0)
		return r;
	if (ju_get(l, "intelRdt"))
		return BAD(e, "linux.intelRdt: Intel RDT is not supported by this runtime");
	if (s->rootfs_propagation) {
		static const char *const ok[] = {"shared",  "slave",  "private",  "unbindable",
						 "rshared", "rslave", "rprivate", "runbindable"};
		bool found = false;
		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			found |= strcmp(s->rootfs_propagation, ok[i]) == 0;
		if (!found)
			return BAD(e, "linux.rootfsPropagation: unknown propagation '%s'", s->rootfs_propagation);
	}
	return 0;
}

static int validate(struct oci_spec *s, struct err **e)
{
	bool new_userns = s->ns[NS_USER].present && s->ns[NS_USER].path == NULL;

	if (s->oci_version == NULL)
		return BAD(e, "ociVersion: required");
	if (strncmp(s->oci_version, "1.", 2) != 0)
		return BAD(e, "ociVersion: version '%s' is not supported (1.x)", s->oci_version);
	if (s->root_path == NULL || s->root_path[0] == '\0')
		return BAD(e, "root.path: required");
	if (new_userns && (s->n_uid_mappings == 0 || s->n_gid_mappings == 0))
		return BAD(e, "linux.uidMappings: a new user namespace needs uidMappings and gidMappings");
	if (!s->ns[NS_USER].present && (s->n_uid_mappings || s->n_gid_mappings))
		return BAD(e, "linux.uidMappings: mappings are given but no user namespace is configured");
	if (s->hostname && s->hostname[0] && !s->ns[NS_UTS].present)
		return BAD(e, "hostname: setting the hostname needs a uts namespace");
	if (s->domainname && s->domainname[0] && !s->ns[NS_UTS].present)
		return BAD(e, "domainname: setting the domainname needs a uts namespace");
	if (s->n_net_devices && (!s->ns[NS_NET].present || s->ns[NS_NET].path))
		return BAD(e, "linux.netDevices: moving devices needs a new network namespace");
	if ((s->time_monotonic.present || s->time_boottime.present) && (!s->ns[NS_TIME].present || s->ns[NS_TIME].path))
		return BAD(e, "linux.timeOffsets: offsets need a new time namespace");
	for (size_t i = 0; i < s->n_sysctl; i++) {
		const char *k = s->sysctl[i].key;
		if (k[0] == '\0' || strstr(k, "..") || k[0] == '/' || k[0] == '.')
			return BAD(e, "linux.sysctl.%s: not a sysctl name", k);
		if (strncmp(k, "net.", 4) == 0 && !s->ns[NS_NET].present)
			return BAD(e, "linux.sysctl.%s: needs a network namespace", k);
		if ((strncmp(k, "kernel.msg", 10) == 0 || strncmp(k, "kernel.sem", 10) == 0 ||
		     strncmp(k, "kernel.shm", 10) == 0 || strncmp(k, "fs.mqueue.", 10) == 0) &&
		    !s->ns[NS_IPC].present)
			return BAD(e, "linux.sysctl.%s: needs an ipc namespace", k);
		if ((strcmp(k, "kernel.hostname") == 0 || strcmp(k, "kernel.domainname") == 0) &&
		    !s->ns[NS_UTS].present)
			return BAD(e, "linux.sysctl.%s: needs a uts namespace", k);
		if (strcmp(k, "kernel.hostname") == 0 && s->hostname && strcmp(s->hostname, s->sysctl[i].value))
			return BAD(e, "linux.sysctl.%s: '%s' conflicts with hostname '%s'", k, s->sysctl[i].value,
				   s->hostname);
		if (strcmp(k, "kernel.domainname") == 0 && s->domainname && strcmp(s->domainname, s->sysctl[i].value))
			return BAD(e, "linux.sysctl.%s: '%s' conflicts with domainname '%s'", k, s->sysctl[i].value,
				   s->domainname);
	}
	if (s->has_process && s->process.user.has_umask == false)
		s->process.user.umask = 022;
	return 0;
}

int spec_parse(const char *text, size_t len, struct oci_spec **ret, struct err **e)
{
	json_object *root, *rootfs, *proc;
	struct oci_spec *s;
	int r;

	if ((r = json_doc_parse(text, len, "config.json", &root, e)) < 0)
		return r;
	if (json_object_get_type(root) != json_type_object) {
		r = ju_type_error(e, "(top level)", NULL, "an object", root);
		json_object_put(root);
		return r;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		json_object_put(root);
		return err_set(e, ENOMEM, "config.json");
	}
	if ((r = ju_string(root, "", "ociVersion", &s->oci_version, e)) < 0)
		goto fail;
	if ((r = ju_object(root, "", "root", &rootfs, e)) < 0)
		goto fail;
	if (rootfs && ((r = ju_string(rootfs, "root", "path", &s->root_path, e)) < 0 ||
		       (r = ju_bool(rootfs, "root", "readonly", &s->root_readonly, NULL, e)) < 0))
		goto fail;
	if ((r = ju_string(root, "", "hostname", &s->hostname, e)) < 0 ||
	    (r = ju_string(root, "", "domainname", &s->domainname, e)) < 0 || (r = parse_mounts(root, s, e)) < 0 ||
	    (r = parse_hooks(root, s, e)) < 0 ||
	    (r = ju_string_map(root, "", "annotations", &s->annotations, &s->n_annotations, e)) < 0)
		goto fail;
	if ((r = ju_object(root, "", "process", &proc, e)) < 0)
		goto fail;
	if (proc) {
		s->has_process = true;
		if ((r = parse_process_obj(proc, &s->process, e)) < 0)
			goto fail;
	}
	if ((r = parse_linux(root, s, e)) < 0 || (r = validate(s, e)) < 0)
		goto fail;
	json_object_put(root);
	*ret = s;
	return 0;
fail:
	json_object_put(root);
	spec_free(s);
	return r;
}

int spec_load(const char *path, struct oci_spec **ret, struct err **e)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_file(path, &text, &len);

	if (r < 0)
		return err_set(e, -r, "config '%s': read", path);
	r = spec_parse(text, len, ret, e);
	if (r < 0)
		return err_wrap(e, "bundle config '%s'", path);
	return 0;
}

int spec_parse_process(const char *text, size_t len, struct oci_process *ret, struct err **e)
{
	json_object *root;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = json_doc_parse(text, len, "process.json", &root, e)) < 0)
		return r;
	if (json_object_get_type(root) != json_type_object) {
		json_object_put(root);
		return err_setx(e, EINVAL, "process.json: expected an object");
	}
	r = parse_process_obj(root, ret, e);
	json_object_put(root);
	if (r < 0) {
		spec_process_clear(ret);
		return r;
	}
	if (!ret->user.has_umask)
		ret->user.umask = 022;
	return 0;
}

void spec_process_clear(struct oci_process *p)
{
	free(p->user.additional_gids);
	strv_free(p->args);
	strv_free(p->env);
	free(p->cwd);
	free(p->rlimits);
	free(p->apparmor_profile);
	free(p->selinux_label);
	memset(p, 0, sizeof(*p));
}

static void kv_free(struct oci_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

void spec_free(struct oci_spec *s)
{
	if (s == NULL)
		return;
	free(s->oci_version);
	free(s->root_path);
	free(s->hostname);
	free(s->domainname);
	for (size_t i = 0; i < s->n_mounts; i++) {
		free(s->mounts[i].destination);
		free(s->mounts[i].source);
		free(s->mounts[i].type);
		strv_free(s->mounts[i].options);
		free(s->mounts[i].uid_map);
		free(s->mounts[i].gid_map);
	}
	free(s->mounts);
	spec_process_clear(&s->process);
	for (int k = 0; k < HOOK_KIND_MAX; k++) {
		for (size_t i = 0; i < s->n_hooks[k]; i++) {
			free(s->hooks[k][i].path);
			strv_free(s->hooks[k][i].args);
			strv_free(s->hooks[k][i].env);
		}
		free(s->hooks[k]);
	}
	kv_free(s->annotations, s->n_annotations);
	for (int k = 0; k < NS_KIND_MAX; k++)
		free(s->ns[k].path);
	free(s->uid_mappings);
	free(s->gid_mappings);
	for (size_t i = 0; i < s->n_devices; i++)
		free(s->devices[i].path);
	free(s->devices);
	free(s->cgroups_path);
	cgroup_resources_clear(&s->resources);
	kv_free(s->sysctl, s->n_sysctl);
	kv_free(s->net_devices, s->n_net_devices);
	spec_seccomp_free(s->seccomp);
	free(s->rootfs_propagation);
	strv_free(s->masked_paths);
	strv_free(s->readonly_paths);
	free(s->mount_label);
	free(s);
}

void spec_kv_free(struct oci_kv *kv, size_t n)
{
	kv_free(kv, n);
}
