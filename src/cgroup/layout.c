/* Where a cgroup lives: the host's layout (v1, hybrid, v2), the
 * hierarchies from /proc/self/mountinfo, the caller's own cgroup in each
 * from /proc/self/cgroup, and the paths made from them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>

#include "cgroup/cgroup.h"
#include "common/file.h"
#include "common/macro.h"

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

const char *cgroup_mode_name(enum cgroup_mode mode)
{
	return mode == CGROUP_MODE_V2 ? "v2" : mode == CGROUP_MODE_HYBRID ? "hybrid" : "v1";
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

/* The caller's own cgroup in the hierarchy named ctrls ("" = cgroup2). */
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
		/* Relative: under the caller's cgroup, seen from the mount root. */
		base = own;
		if (strncmp(own, mount_root, strlen(mount_root)) == 0 && strcmp(mount_root, "/") != 0)
			base = own + strlen(mount_root);
		if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", base, rel) >= sizeof(buf))
			return -ENAMETOOLONG;
	} else if ((size_t)snprintf(buf, sizeof(buf), "%s", rel) >= sizeof(buf)) {
		return -ENAMETOOLONG;
	}
	clean_path(buf);
	if (asprintf(ret, "%s%s", mountpoint, strcmp(buf, "/") == 0 ? "" : buf) < 0)
		return -ENOMEM;
	return 0;
}

static int add_unified(struct cgroup *cg, const char *mnt, const char *root, const char *proc_cgroup)
{
	_cleanup_free_ char *own = NULL;
	int r;

	if ((r = own_cgroup(proc_cgroup, "", &own)) < 0 ||
	    (r = cgroup_path_join(mnt, root, own, cg->rel, &cg->unified.path)) < 0)
		return r;
	if ((cg->unified.mountpoint = strdup(mnt)) == NULL || (cg->unified.controllers = strdup("")) == NULL)
		return -ENOMEM;
	return 0;
}

static int add_v1(struct cgroup *cg, const char *mnt, const char *root, const char *opts, const char *proc_cgroup)
{
	_cleanup_free_ char *own = NULL, *ctrls = controllers_of(opts);
	struct cgroup_dir *d;
	int r;

	if (ctrls == NULL)
		return -ENOMEM;
	if (*ctrls == '\0' || cg->n_v1 == CGROUP_V1_MAX)
		return 0;
	for (size_t i = 0; i < cg->n_v1; i++)
		if (strcmp(cg->v1[i].controllers, ctrls) == 0)
			return 0; /* the same hierarchy mounted twice */
	if ((r = own_cgroup(proc_cgroup, ctrls, &own)) < 0)
		return r;
	d = &cg->v1[cg->n_v1++];
	d->controllers = TAKE_PTR(ctrls);
	if ((d->mountpoint = strdup(mnt)) == NULL)
		return -ENOMEM;
	return cgroup_path_join(mnt, root, own, cg->rel, &d->path);
}

int cgroup_resolve_from(enum cgroup_mode mode, const char *mountinfo, const char *proc_cgroup, const char *path,
			struct cgroup **ret, struct err **e)
{
	_cleanup_free_ char *text = strdup(mountinfo);
	struct cgroup *cg = calloc(1, sizeof(*cg));
	char *save = NULL;
	int r = 0;

	if (cg == NULL || text == NULL || (cg->rel = strdup(path)) == NULL) {
		cgroup_free(cg);
		return err_set(e, ENOMEM, "cgroup '%s'", path);
	}
	cg->mode = mode;
	for (char *line = strtok_r(text, "\n", &save); line && r == 0; line = strtok_r(NULL, "\n", &save)) {
		char root[4096], mnt[4096], *sep = strstr(line, " - "), fstype[64], source[256], opts[1024];

		if (sep == NULL || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
		    sscanf(sep + 3, "%63s %255s %1023s", fstype, source, opts) != 3)
			continue;
		unescape_octal(root);
		unescape_octal(mnt);
		if (strcmp(fstype, "cgroup2") == 0) {
			/* v2: the one at /sys/fs/cgroup; hybrid: the first one. */
			if (cg->unified.path || mode == CGROUP_MODE_V1 ||
			    (mode == CGROUP_MODE_V2 && strcmp(mnt, "/sys/fs/cgroup") != 0))
				continue;
			r = add_unified(cg, mnt, root, proc_cgroup);
		} else if (strcmp(fstype, "cgroup") == 0 && mode != CGROUP_MODE_V2) {
			r = add_v1(cg, mnt, root, opts, proc_cgroup);
		}
	}
	if (r < 0) {
		cgroup_free(cg);
		return err_set(e, -r, "cgroup '%s'", path);
	}
	if (mode == CGROUP_MODE_V2 && cg->unified.path == NULL) {
		cgroup_free(cg);
		return err_setx(e, ENOENT, "cgroup '%s': no cgroup2 mount at /sys/fs/cgroup", path);
	}
	if (cg->n_v1 == 0 && cg->unified.path == NULL) {
		cgroup_free(cg);
		return err_setx(e, ENOENT, "cgroup '%s': no cgroup hierarchy is mounted", path);
	}
	*ret = cg;
	return 0;
}

int cgroup_resolve(const char *path, struct cgroup **ret, struct err **e)
{
	_cleanup_free_ char *mountinfo = NULL, *proc_cgroup = NULL;
	int r;

	if ((r = read_file("/proc/self/mountinfo", &mountinfo, NULL)) < 0)
		return err_set(e, -r, "cgroup '%s': read /proc/self/mountinfo", path);
	if ((r = read_file("/proc/self/cgroup", &proc_cgroup, NULL)) < 0)
		return err_set(e, -r, "cgroup '%s': read /proc/self/cgroup", path);
	return cgroup_resolve_from(cgroup_detect_mode(), mountinfo, proc_cgroup, path, ret, e);
}

/* Does the controller list ctrls ("memory,pids") name one of d's? */
static bool names_dir(const char *ctrls, const struct cgroup_dir *d)
{
	char *copy = strdup(d->controllers), *save = NULL;
	bool found = false;

	for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && !found; t = strtok_r(NULL, ",", &save)) {
		const char *p = strstr(ctrls, t);
		size_t n = strlen(t);
		while (p && !found) {
			found = (p == ctrls || p[-1] == ',') && (p[n] == ',' || p[n] == '\0');
			p = strstr(p + 1, t);
		}
	}
	free(copy);
	return found;
}

static int dir_copy(struct cgroup_dir *to, const struct cgroup_dir *from)
{
	to->controllers = from->controllers ? strdup(from->controllers) : NULL;
	to->mountpoint = from->mountpoint ? strdup(from->mountpoint) : NULL;
	to->path = from->path ? strdup(from->path) : NULL;
	return (from->controllers && !to->controllers) || (from->mountpoint && !to->mountpoint) ||
		       (from->path && !to->path)
		   ? -ENOMEM
		   : 0;
}

static int dir_descend(struct cgroup_dir *d, const char *sub)
{
	char *p;

	if (asprintf(&p, "%s/%s", d->path, sub) < 0)
		return -ENOMEM;
	clean_path(p);
	free(d->path);
	d->path = p;
	return 0;
}

int cgroup_child(const struct cgroup *cg, const char *controllers, const char *sub, struct cgroup **ret, struct err **e)
{
	_cleanup_free_ char *clean = NULL;
	struct cgroup *c;
	bool all = controllers == NULL || *controllers == '\0';
	int depth = 0, r = 0;

	if (sub[0] == '/' || (clean = malloc(strlen(sub) + 2)) == NULL)
		return sub[0] == '/'
			   ? err_setx(e, EINVAL, "cgroup '%s': sub-cgroup '%s': not a relative path", cg->rel, sub)
			   : err_set(e, ENOMEM, "cgroup '%s'", cg->rel);
	/* Cleaned from a root of its own: what climbs out ends above it. */
	snprintf(clean, strlen(sub) + 2, "/%s", sub);
	clean_path(clean);
	/* "a/../b" stays inside; "../x" or "a/../../x" would not. */
	for (const char *p = sub; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			depth--;
		else if (n > 0 && !(n == 1 && p[0] == '.'))
			depth++;
		if (depth < 0)
			return err_setx(e, EINVAL, "cgroup '%s': sub-cgroup '%s': climbs out of the cgroup", cg->rel,
					sub);
		p += n + (p[n] == '/');
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return err_set(e, ENOMEM, "cgroup '%s'", cg->rel);
	c->mode = cg->mode;
	c->n_v1 = cg->n_v1;
	if (asprintf(&c->rel, "%s/%s", cg->rel, clean + 1) < 0)
		c->rel = NULL, r = -ENOMEM;
	for (size_t i = 0; i < cg->n_v1 && r == 0; i++) {
		r = dir_copy(&c->v1[i], &cg->v1[i]);
		if (r == 0 && (all || names_dir(controllers, &cg->v1[i])))
			r = dir_descend(&c->v1[i], clean + 1);
	}
	if (r == 0 && cg->unified.path) {
		r = dir_copy(&c->unified, &cg->unified);
		/* The cgroup2 side is named "" in /proc/self/cgroup: a list
		 * reaches it only by runc's name "unified" on a hybrid host. */
		if (r == 0 && (all || names_dir(controllers, &(struct cgroup_dir){.controllers = "unified"})))
			r = dir_descend(&c->unified, clean + 1);
	}
	if (r < 0) {
		cgroup_free(c);
		return err_set(e, -r, "cgroup '%s'", cg->rel);
	}
	*ret = c;
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

size_t cgroup_n_dirs(const struct cgroup *cg)
{
	return cg->n_v1 + (cg->unified.path ? 1 : 0);
}

const char *cgroup_dir_at(const struct cgroup *cg, size_t i)
{
	return i < cg->n_v1 ? cg->v1[i].path : cg->unified.path;
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
