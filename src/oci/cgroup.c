/* Cgroups: layout detection, cgroupsPath rules, create, enter, freeze,
 * list, signal, destroy.  Resource files are written by cgroup-v1.c and
 * cgroup-v2.c. */
#include "oci/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "oci/spec.h"
#include "oci/util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

enum cgroup_mode cgroup_detect_mode(void)
{
	struct statfs fs;

	if (statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
		return CGROUP_MODE_V2;
	if (statfs("/sys/fs/cgroup/unified", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
		return CGROUP_MODE_HYBRID;
	return CGROUP_MODE_V1;
}

/* Unescape the octal escapes of mountinfo (\040 for a space). */
static void unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] && r[3]) {
			*w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* The v1 controllers in a super-options string: "rw,cpu,cpuacct" -> "cpu,cpuacct". */
static char *controllers_of(const char *superopts)
{
	static const char *const skip[] = {"rw",	  "ro",		"clone_children",	"noprefix",
					   "xattr",	  "nsdelegate", "memory_recursiveprot", "memory_localevents",
					   "favordynmods"};
	char *copy = strdup(superopts), *save = NULL, *out;
	size_t len = 0;

	if (copy == NULL)
		return NULL;
	out = calloc(1, strlen(superopts) + 1);
	if (out == NULL) {
		free(copy);
		return NULL;
	}
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool s = false;
		for (size_t i = 0; i < ARRAY_SIZE(skip); i++)
			s |= strcmp(t, skip[i]) == 0;
		if (s || strncmp(t, "release_agent=", 14) == 0)
			continue;
		if (len)
			out[len++] = ',';
		strcpy(out + len, t);
		len += strlen(t);
	}
	free(copy);
	return out;
}

/* The runtime's own cgroup in the hierarchy named ctrls ("" = cgroup2). */
static int own_cgroup(const char *proc_cgroup, const char *ctrls, char **ret)
{
	const char *line = proc_cgroup;

	while (line && *line) {
		const char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		const char *end = strchr(line, '\n');
		size_t clen, plen;

		if (!c1 || !c2)
			break;
		if (!end)
			end = line + strlen(line);
		clen = (size_t)(c2 - c1 - 1);
		if (clen == strlen(ctrls) && strncmp(c1 + 1, ctrls, clen) == 0) {
			plen = (size_t)(end - c2 - 1);
			*ret = strndup(c2 + 1, plen);
			return *ret ? 0 : -ENOMEM;
		}
		line = *end ? end + 1 : end;
	}
	*ret = strdup("/");
	return *ret ? 0 : -ENOMEM;
}

/* Normalise a path: collapse "//", drop "." and "..", leading '/'. */
static void clean_path(char *p)
{
	char *out = p, *save = NULL, *copy = strdup(p);
	size_t len = 0;

	if (copy == NULL)
		return;
	out[0] = '\0';
	for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (strcmp(t, ".") == 0)
			continue;
		if (strcmp(t, "..") == 0) {
			char *slash = strrchr(out, '/');
			len = slash ? (size_t)(slash - out) : 0;
			out[len] = '\0';
			continue;
		}
		out[len++] = '/';
		strcpy(out + len, t);
		len += strlen(t);
	}
	if (len == 0)
		strcpy(out, "/");
	free(copy);
}

int cgroup_path_join(const char *mountpoint, const char *mount_root, const char *own, const char *rel, char **ret)
{
	char buf[4096];
	const char *base = "";

	if (rel[0] != '/') {
		/* Relative: under the runtime's cgroup, seen from the mount root. */
		base = own;
		if (strncmp(own, mount_root, strlen(mount_root)) == 0 && strcmp(mount_root, "/") != 0)
			base = own + strlen(mount_root);
		snprintf(buf, sizeof(buf), "%s/%s", base, rel);
	} else {
		snprintf(buf, sizeof(buf), "%s", rel);
	}
	clean_path(buf);
	if (asprintf(ret, "%s%s", mountpoint, strcmp(buf, "/") == 0 ? "" : buf) < 0)
		return -ENOMEM;
	return 0;
}

/* mkdir -p that remembers nothing but initialises new cpuset levels. */
static int make_dirs(const char *path, bool cpuset)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(buf, 0755) == 0) {
			if (cpuset) {
				/* A new cpuset cgroup starts empty: inherit the parent's. */
				static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
				for (int i = 0; i < 2; i++) {
					char parent[4096], fpath[4200], *val = NULL;
					snprintf(parent, sizeof(parent), "%s", buf);
					*strrchr(parent, '/') = '\0';
					snprintf(fpath, sizeof(fpath), "%s/%s", parent, files[i]);
					if (read_file(fpath, &val, NULL) == 0) {
						snprintf(fpath, sizeof(fpath), "%s/%s", buf, files[i]);
						(void)write_file_str(fpath, val);
						free(val);
					}
				}
			}
		} else if (errno != EEXIST) {
			return -errno;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	return 0;
}

int cgroup_create(const char *cgroups_path, const char *id, bool systemd, struct cgroup **ret, struct err **e)
{
	_cleanup_free_ char *mountinfo = NULL, *proc_cgroup = NULL;
	struct cgroup *cg;
	char *save = NULL;
	int r;

	if (systemd) {
		if (access("/run/systemd/system", F_OK) < 0)
			return err_setx(e, ENOTSUP,
					"cgroup '%s': --systemd-cgroup: systemd is not running on this host "
					"(no /run/systemd/system); use the cgroupfs driver",
					cgroups_path ? cgroups_path : id);
		return err_setx(e, ENOTSUP, "cgroup '%s': --systemd-cgroup: the systemd driver is not implemented",
				cgroups_path ? cgroups_path : id);
	}
	if (cgroups_path && strchr(cgroups_path, ':') && cgroups_path[0] != '/')
		return err_setx(e, EINVAL,
				"cgroup '%s': linux.cgroupsPath: 'slice:prefix:name' is the systemd form; "
				"pass --systemd-cgroup or use a path",
				cgroups_path);
	if ((r = read_file("/proc/self/mountinfo", &mountinfo, NULL)) < 0)
		return err_set(e, -r, "cgroup: read /proc/self/mountinfo");
	if ((r = read_file("/proc/self/cgroup", &proc_cgroup, NULL)) < 0)
		return err_set(e, -r, "cgroup: read /proc/self/cgroup");
	cg = calloc(1, sizeof(*cg));
	if (cg == NULL)
		return err_set(e, ENOMEM, "cgroup");
	cg->mode = cgroup_detect_mode();
	cg->rel = strdup(cgroups_path && *cgroups_path ? cgroups_path : id);
	if (cg->rel == NULL)
		goto nomem;

	for (char *line = strtok_r(mountinfo, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char root[4096], mnt[4096], *sep = strstr(line, " - "), fstype[64], source[256], opts[1024];
		_cleanup_free_ char *own = NULL, *ctrls = NULL;

		if (sep == NULL || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
		    sscanf(sep + 3, "%63s %255s %1023s", fstype, source, opts) != 3)
			continue;
		unescape(root);
		unescape(mnt);
		if (strcmp(fstype, "cgroup2") == 0) {
			if (cg->unified.path)
				continue;
			if (cg->mode == CGROUP_MODE_V2 && strcmp(mnt, "/sys/fs/cgroup") != 0)
				continue;
			if (cg->mode == CGROUP_MODE_V1)
				continue;
			if (own_cgroup(proc_cgroup, "", &own) < 0 ||
			    cgroup_path_join(mnt, root, own, cg->rel, &cg->unified.path) < 0 ||
			    (cg->unified.mountpoint = strdup(mnt)) == NULL ||
			    (cg->unified.controllers = strdup("")) == NULL)
				goto nomem;
			continue;
		}
		if (strcmp(fstype, "cgroup") != 0 || cg->mode == CGROUP_MODE_V2)
			continue;
		ctrls = controllers_of(opts);
		if (ctrls == NULL)
			goto nomem;
		if (*ctrls == '\0')
			continue;
		bool dup = false;
		for (size_t i = 0; i < cg->n_v1; i++)
			dup |= strcmp(cg->v1[i].controllers, ctrls) == 0;
		if (dup || cg->n_v1 == CGROUP_V1_MAX)
			continue;
		if (own_cgroup(proc_cgroup, ctrls, &own) < 0)
			goto nomem;
		struct cgroup_dir *d = &cg->v1[cg->n_v1++];
		d->controllers = TAKE_PTR(ctrls);
		if ((d->mountpoint = strdup(mnt)) == NULL || cgroup_path_join(mnt, root, own, cg->rel, &d->path) < 0)
			goto nomem;
	}
	if (cg->mode != CGROUP_MODE_V1 && cg->unified.path == NULL && cg->mode == CGROUP_MODE_V2) {
		cgroup_free(cg);
		return err_setx(e, ENOENT, "cgroup '%s': no cgroup2 mount at /sys/fs/cgroup",
				cgroups_path ? cgroups_path : id);
	}

	for (size_t i = 0; i < cg->n_v1; i++) {
		bool cpuset = strstr(cg->v1[i].controllers, "cpuset") != NULL;
		if ((r = make_dirs(cg->v1[i].path, cpuset)) < 0) {
			err_set(e, -r, "cgroup '%s': mkdir", cg->v1[i].path);
			(void)cgroup_destroy(cg, NULL);
			cgroup_free(cg);
			return r;
		}
	}
	if (cg->unified.path) {
		if ((r = make_dirs(cg->unified.path, false)) < 0) {
			err_set(e, -r, "cgroup '%s': mkdir", cg->unified.path);
			(void)cgroup_destroy(cg, NULL);
			cgroup_free(cg);
			return r;
		}
	}
	*ret = cg;
	return 0;
nomem:
	cgroup_free(cg);
	return err_set(e, ENOMEM, "cgroup");
}

int cgroup_write(const char *dir, const char *file, const char *value, struct err **e)
{
	char path[4096];
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	r = write_file_str(path, value);
	if (r < 0)
		return err_set(e, -r, "cgroup '%s': write '%s' to %s", dir, value, file);
	return 0;
}

const char *cgroup_v1_dir(const struct cgroup *cg, const char *controller)
{
	size_t n = strlen(controller);

	for (size_t i = 0; i < cg->n_v1; i++) {
		const char *c = cg->v1[i].controllers;
		while (c && *c) {
			if (strncmp(c, controller, n) == 0 && (c[n] == ',' || c[n] == '\0'))
				return cg->v1[i].path;
			c = strchr(c, ',');
			if (c)
				c++;
		}
	}
	return NULL;
}

int cgroup_set(struct cgroup *cg, const struct oci_resources *r, const struct oci_device *devs, size_t n_devs,
	       bool updating, struct err **e)
{
	static const struct oci_resources empty;
	int rc;

	if (r == NULL)
		r = &empty;
	if (cg->mode == CGROUP_MODE_V2)
		return cgroup_v2_set(cg, cg->unified.path, r, false, updating, e) < 0 ? -err_code(*e)
		       : (updating && !r->has_devices)				      ? 0
						       : cgroup_v2_set_devices(cg->unified.path, r, devs, n_devs, e);
	if ((rc = cgroup_v1_set(cg, r, updating, e)) < 0)
		return rc;
	if (!updating || r->has_devices)
		if ((rc = cgroup_v1_set_devices(cg, r, devs, n_devs, e)) < 0)
			return rc;
	if (cg->mode == CGROUP_MODE_HYBRID && cg->unified.path)
		return cgroup_v2_set(cg, cg->unified.path, r, true, updating, e);
	if (r->n_unified)
		return err_setx(e, EINVAL,
				"cgroup '%s': linux.resources.unified: needs cgroup v2 (this host has v1 only)",
				cg->rel);
	return 0;
}

int cgroup_enter_pid(const char *dir, pid_t pid, struct err **e)
{
	char val[32];

	snprintf(val, sizeof(val), "%d", (int)pid);
	return cgroup_write(dir, "cgroup.procs", val, e);
}

/* Does the controller list ctrls ("memory,pids") name one of d's? */
static bool names_dir(const char *ctrls, const struct cgroup_dir *d)
{
	char *copy = strdup(d->controllers), *save = NULL;
	bool found = false;

	for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && !found; t = strtok_r(NULL, ",", &save)) {
		const char *p = strstr(ctrls, t);
		size_t n = strlen(t);
		found = p && (p == ctrls || p[-1] == ',') && (p[n] == ',' || p[n] == '\0');
	}
	free(copy);
	return found;
}

int cgroup_enter_self(const struct cgroup *cg, const char *sub, bool now, int *unified_fd, struct err **e)
{
	const char *colon = sub ? strchr(sub, ':') : NULL;
	const char *subpath = sub ? (colon ? colon + 1 : sub) : NULL;
	_cleanup_free_ char *ctrls = colon ? strndup(sub, (size_t)(colon - sub)) : NULL;
	char dir[4096];

	*unified_fd = -1;
	if (subpath && (strstr(subpath, "..") || subpath[0] == '\0'))
		return err_setx(e, EINVAL, "exec --cgroup '%s': not a sub-cgroup path: `..` components are not allowed",
				sub);
	for (size_t i = 0; i < cg->n_v1; i++) {
		const struct cgroup_dir *d = &cg->v1[i];
		snprintf(dir, sizeof(dir), "%s", d->path);
		if (subpath && (!ctrls || names_dir(ctrls, d))) {
			snprintf(dir, sizeof(dir), "%s/%s", d->path, subpath);
			/* Without a controller list, the sub-cgroup is optional per hierarchy. */
			if (!ctrls && access(dir, F_OK) < 0)
				snprintf(dir, sizeof(dir), "%s", d->path);
		}
		/* "0" into tasks moves the calling thread, which spares the
		 * kernel's global threadgroup lock (and its RCU grace period)
		 * that a write to cgroup.procs takes. */
		if (cgroup_write(dir, "tasks", "0", e) < 0)
			return -err_code(*e);
	}
	if (cg->unified.path) {
		if (subpath && (cg->mode == CGROUP_MODE_V2 || (ctrls && strstr(ctrls, "unified"))))
			snprintf(dir, sizeof(dir), "%s/%s", cg->unified.path, subpath);
		else
			snprintf(dir, sizeof(dir), "%s", cg->unified.path);
		if (now)
			return cgroup_write(dir, "cgroup.procs", "0", e);
		*unified_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (*unified_fd < 0)
			return err_set(e, errno, "cgroup '%s': open", dir);
	}
	return 0;
}

static int read_pids(const char *dir, pid_t **pids, size_t *n)
{
	char path[4200], *text = NULL, *save = NULL;
	size_t cap = 0;
	int r;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if ((r = read_file(path, &text, NULL)) < 0)
		return r;
	for (char *t = strtok_r(text, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		if (*n == cap) {
			pid_t *np = realloc(*pids, (cap ? cap * 2 : 16) * sizeof(pid_t));
			if (np == NULL) {
				free(text);
				return -ENOMEM;
			}
			*pids = np;
			cap = cap ? cap * 2 : 16;
		}
		(*pids)[(*n)++] = atoi(t);
	}
	free(text);
	return 0;
}

/* The directory to list processes from: one holding every process. */
static const char *procs_dir(const struct cgroup *cg)
{
	static const char *const pref[] = {"freezer", "pids", "memory", "devices", "cpu", "name=systemd"};

	if (cg->mode == CGROUP_MODE_V2)
		return cg->unified.path;
	for (size_t i = 0; i < ARRAY_SIZE(pref); i++) {
		const char *d = cgroup_v1_dir(cg, pref[i]);
		if (d)
			return d;
	}
	return cg->n_v1 ? cg->v1[0].path : cg->unified.path;
}

/* Processes in dir and its sub-cgroups (exec --cgroup puts some there). */
static int read_pids_tree(const char *dir, pid_t **pids, size_t *n)
{
	DIR *d;
	struct dirent *de;
	int r = read_pids(dir, pids, n);

	if (r < 0)
		return r;
	d = opendir(dir);
	if (d == NULL)
		return 0;
	while ((de = readdir(d))) {
		char sub[4200];
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		(void)read_pids_tree(sub, pids, n);
	}
	closedir(d);
	return 0;
}

int cgroup_pids(const struct cgroup *cg, pid_t **pids, size_t *n, struct err **e)
{
	const char *dir = procs_dir(cg);
	int r;

	*pids = NULL;
	*n = 0;
	if (dir == NULL)
		return 0;
	r = read_pids_tree(dir, pids, n);
	if (r < 0 && r != -ENOENT)
		return err_set(e, -r, "cgroup '%s': read cgroup.procs", dir);
	return 0;
}

int cgroup_signal_all(const struct cgroup *cg, int sig, struct err **e)
{
	pid_t *pids = NULL;
	size_t n = 0;
	int r = cgroup_pids(cg, &pids, &n, e);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (kill(pids[i], sig) < 0 && errno != ESRCH) {
			r = err_set(e, errno, "container process %d: kill %d", (int)pids[i], sig);
			break;
		}
	free(pids);
	return r;
}

static int v1_freezer_state(const char *dir, char **state)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/freezer.state", dir);
	return read_file(path, state, NULL);
}

int cgroup_freeze(const struct cgroup *cg, bool freeze, struct err **e)
{
	const char *dir;
	int r;

	if (cg->mode == CGROUP_MODE_V2 || (cgroup_v1_dir(cg, "freezer") == NULL && cg->unified.path)) {
		char path[4200];
		dir = cg->unified.path;
		if ((r = cgroup_write(dir, "cgroup.freeze", freeze ? "1" : "0", e)) < 0)
			return r;
		/* Wait until cgroup.events says the change is done. */
		snprintf(path, sizeof(path), "%s/cgroup.events", dir);
		for (int i = 0; i < 2000; i++) {
			char *ev = NULL;
			if (read_file(path, &ev, NULL) < 0)
				break;
			bool done = strstr(ev, freeze ? "frozen 1" : "frozen 0") != NULL;
			free(ev);
			if (done)
				return 0;
			msleep(1);
		}
		return err_setx(e, ETIMEDOUT, "cgroup '%s': %s: timed out", dir, freeze ? "freeze" : "thaw");
	}
	dir = cgroup_v1_dir(cg, "freezer");
	if (dir == NULL)
		return err_setx(e, ENOTSUP, "cgroup '%s': no freezer controller is mounted", cg->rel);
	if ((r = cgroup_write(dir, "freezer.state", freeze ? "FROZEN" : "THAWED", e)) < 0)
		return r;
	for (int i = 0; i < 2000; i++) {
		char *st = NULL;
		if (v1_freezer_state(dir, &st) < 0)
			break;
		bool done = strncmp(st, freeze ? "FROZEN" : "THAWED", 6) == 0;
		free(st);
		if (done)
			return 0;
		if (freeze && i % 50 == 49) /* FREEZING can stall: ask again */
			(void)cgroup_write(dir, "freezer.state", "FROZEN", NULL);
		msleep(1);
	}
	return err_setx(e, ETIMEDOUT, "cgroup '%s': %s: timed out", dir, freeze ? "freeze" : "thaw");
}

int cgroup_is_frozen(const struct cgroup *cg)
{
	const char *dir = cgroup_v1_dir(cg, "freezer");
	char *st = NULL;
	int r;

	if (cg->mode == CGROUP_MODE_V2 || (dir == NULL && cg->unified.path)) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/cgroup.freeze", cg->unified.path);
		if ((r = read_file(path, &st, NULL)) < 0)
			return r;
		r = st[0] == '1';
		free(st);
		return r;
	}
	if (dir == NULL)
		return 0;
	if ((r = v1_freezer_state(dir, &st)) < 0)
		return r;
	r = strncmp(st, "FROZEN", 6) == 0 || strncmp(st, "FREEZING", 8) == 0;
	free(st);
	return r;
}

/* rmdir a cgroup directory and its sub-cgroups, deepest first, retrying
 * a busy one (an exiting process may linger a moment) tries times. */
static int remove_tree(const char *dir, int tries)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char sub[4200];
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		if (remove_tree(sub, tries) < 0)
			r = -errno;
	}
	closedir(d);
	for (int i = 0; i < tries; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		if (i + 1 < tries)
			msleep(2);
	}
	return r < 0 ? r : -EBUSY;
}

static int destroy(struct cgroup *cg, int tries, struct err **e)
{
	pid_t *pids = NULL;
	size_t n = 0;
	int r = 0;

	/* Processes left over (no pid namespace, or exec'd ones): kill them,
	 * thawing first so that SIGKILL is delivered. */
	if (cgroup_pids(cg, &pids, &n, NULL) == 0 && n > 0) {
		if (cgroup_is_frozen(cg) == 1)
			(void)cgroup_freeze(cg, false, NULL);
		for (int round = 0; round < (tries > 1 ? 200 : 1) && n > 0; round++) {
			for (size_t i = 0; i < n; i++)
				kill(pids[i], SIGKILL);
			free(pids);
			pids = NULL;
			n = 0;
			msleep(round < 10 ? 1 : 5);
			if (cgroup_pids(cg, &pids, &n, NULL) < 0)
				break;
		}
	}
	free(pids);
	for (size_t i = 0; i <= cg->n_v1; i++) {
		const char *path = i < cg->n_v1 ? cg->v1[i].path : cg->unified.path;
		int rr = path ? remove_tree(path, tries) : 0;
		if (rr < 0 && r == 0)
			r = err_set(e, -rr, "cgroup '%s': rmdir", path);
	}
	return r;
}

int cgroup_destroy(struct cgroup *cg, struct err **e)
{
	return destroy(cg, 500, e);
}

int cgroup_destroy_once(struct cgroup *cg, struct err **e)
{
	return destroy(cg, 1, e);
}

static void dir_free(struct cgroup_dir *d)
{
	free(d->controllers);
	free(d->mountpoint);
	free(d->path);
}

void cgroup_free(struct cgroup *cg)
{
	if (cg == NULL)
		return;
	for (size_t i = 0; i < cg->n_v1; i++)
		dir_free(&cg->v1[i]);
	dir_free(&cg->unified);
	free(cg->rel);
	free(cg);
}

static json_object *dir_to_json(const struct cgroup_dir *d)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "controllers", json_object_new_string(d->controllers ? d->controllers : ""));
	json_object_object_add(o, "mountpoint", json_object_new_string(d->mountpoint ? d->mountpoint : ""));
	json_object_object_add(o, "path", json_object_new_string(d->path ? d->path : ""));
	return o;
}

json_object *cgroup_to_json(const struct cgroup *cg)
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

int cgroup_from_json(json_object *o, struct cgroup **ret, struct err **e)
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

int cgroup_device_rules(const struct oci_resources *r, const struct oci_device *devs, size_t n_devs,
			struct oci_device_rule **ret, size_t *n)
{
	static const struct oci_device_rule defaults[] = {
	    {true, 'c', -1, -1, "m"},	 {true, 'b', -1, -1, "m"}, {true, 'c', 1, 3, "rwm"},
	    {true, 'c', 1, 8, "rwm"},	 {true, 'c', 1, 7, "rwm"}, {true, 'c', 5, 0, "rwm"},
	    {true, 'c', 1, 5, "rwm"},	 {true, 'c', 1, 9, "rwm"}, {true, 'c', 5, 1, "rwm"},
	    {true, 'c', 136, -1, "rwm"}, {true, 'c', 5, 2, "rwm"}, {true, 'c', 10, 200, "rwm"},
	};
	size_t nr = r ? r->n_devices : 0;
	size_t total = nr + ARRAY_SIZE(defaults) + n_devs;
	struct oci_device_rule *v = calloc(total + 1, sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	*n = 0;
	/* With no rule at all, runc denies everything but the defaults. */
	if (nr == 0)
		v[(*n)++] = (struct oci_device_rule){false, 'a', -1, -1, "rwm"};
	for (size_t i = 0; i < nr; i++)
		v[(*n)++] = r->devices[i];
	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++)
		v[(*n)++] = defaults[i];
	for (size_t i = 0; i < n_devs; i++) {
		if (devs[i].type == 'p')
			continue;
		v[(*n)++] = (struct oci_device_rule){true, devs[i].type == 'b' ? 'b' : 'c', devs[i].major,
						     devs[i].minor, "rwm"};
	}
	*ret = v;
	return 0;
}
