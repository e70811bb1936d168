#include "image/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/jsonx.h"
#include "image/unpack.h"
#include "oci/oci.h"
#include "oci/util.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Docker's default capability set: what images expect of a container. */
static const char *const default_caps[] = {
    "CAP_CHOWN",      "CAP_DAC_OVERRIDE", "CAP_FOWNER",	     "CAP_FSETID",	     "CAP_KILL",
    "CAP_SETGID",     "CAP_SETUID",	  "CAP_SETPCAP",     "CAP_NET_BIND_SERVICE", "CAP_NET_RAW",
    "CAP_SYS_CHROOT", "CAP_MKNOD",	  "CAP_AUDIT_WRITE", "CAP_SETFCAP",
};

static bool parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (*s == '\0' || *s == '-' || *s == '+')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && *end == '\0' && *out <= UINT_MAX - 1;
}

/* Field n (0-based) of a colon-separated line, copied into out. */
static bool field(const char *line, size_t len, int n, char *out, size_t size)
{
	const char *p = line, *end = line + len;

	for (int i = 0; i < n; i++) {
		p = memchr(p, ':', (size_t)(end - p));
		if (p == NULL)
			return false;
		p++;
	}
	const char *q = memchr(p, ':', (size_t)(end - p));
	size_t flen = q ? (size_t)(q - p) : (size_t)(end - p);
	if (flen >= size)
		return false;
	memcpy(out, p, flen);
	out[flen] = '\0';
	return true;
}

/* Find the line of a passwd/group file whose field key_field is key;
 * fills the fields asked for. */
static bool lookup(const char *text, int key_field, const char *key, int want, char *out, size_t size)
{
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char k[256];
		if (len && line[0] != '#' && field(line, len, key_field, k, sizeof(k)) && strcmp(k, key) == 0 &&
		    field(line, len, want, out, size))
			return true;
		line = nl ? nl + 1 : NULL;
	}
	return false;
}

static int add_gid(struct user_ids *u, gid_t g)
{
	gid_t *n;

	for (size_t i = 0; i < u->n_gids; i++)
		if (u->gids[i] == g)
			return 0;
	n = realloc(u->gids, (u->n_gids + 1) * sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	u->gids = n;
	u->gids[u->n_gids++] = g;
	return 0;
}

/* Groups of /etc/group whose member list holds name. */
static int member_groups(const char *group, const char *name, struct user_ids *u)
{
	for (const char *line = group; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char members[4096], gid[32];
		unsigned long g;
		if (len && line[0] != '#' && field(line, len, 3, members, sizeof(members)) &&
		    field(line, len, 2, gid, sizeof(gid)) && parse_id(gid, &g)) {
			char *save = NULL;
			for (char *m = strtok_r(members, ",", &save); m; m = strtok_r(NULL, ",", &save))
				if (strcmp(m, name) == 0 && add_gid(u, (gid_t)g) < 0)
					return -ENOMEM;
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

int user_resolve(const char *spec, const char *passwd, const char *group, struct user_ids *out, struct err **e)
{
	char user[256] = "", grp[256] = "", buf[256], name[256] = "";
	const char *colon = spec ? strchr(spec, ':') : NULL;
	unsigned long id;
	bool have_group = false;

	memset(out, 0, sizeof(*out));
	if (spec == NULL || *spec == '\0')
		spec = "0";
	if (colon) {
		snprintf(user, sizeof(user), "%.*s", (int)(colon - spec), spec);
		snprintf(grp, sizeof(grp), "%s", colon + 1);
		have_group = grp[0] != '\0';
	} else {
		snprintf(user, sizeof(user), "%s", spec);
	}
	if (user[0] == '\0')
		snprintf(user, sizeof(user), "0");
	if (parse_id(user, &id)) {
		char idstr[32];
		out->uid = (uid_t)id;
		snprintf(idstr, sizeof(idstr), "%lu", id);
		/* The gid of its passwd entry, when there is one. */
		if (passwd && lookup(passwd, 2, idstr, 3, buf, sizeof(buf)) && parse_id(buf, &id))
			out->gid = (gid_t)id;
		if (passwd)
			lookup(passwd, 2, idstr, 0, name, sizeof(name));
	} else {
		if (passwd == NULL || !lookup(passwd, 0, user, 2, buf, sizeof(buf)) || !parse_id(buf, &id))
			return err_setx(e, ENOENT, "user '%s': not found in the image's /etc/passwd", user);
		out->uid = (uid_t)id;
		if (lookup(passwd, 0, user, 3, buf, sizeof(buf)) && parse_id(buf, &id))
			out->gid = (gid_t)id;
		snprintf(name, sizeof(name), "%s", user);
	}
	if (have_group) {
		if (parse_id(grp, &id)) {
			out->gid = (gid_t)id;
		} else {
			if (group == NULL || !lookup(group, 0, grp, 2, buf, sizeof(buf)) || !parse_id(buf, &id))
				return err_setx(e, ENOENT, "group '%s': not found in the image's /etc/group", grp);
			out->gid = (gid_t)id;
		}
	} else if (group && name[0] && member_groups(group, name, out) < 0) {
		user_ids_free(out);
		return err_set(e, ENOMEM, "user '%s'", spec);
	}
	return 0;
}

void user_ids_free(struct user_ids *u)
{
	free(u->gids);
	u->gids = NULL;
	u->n_gids = 0;
}

int volume_parse(const char *s, struct volume *v, struct err **e)
{
	char *copy = strdup(s), *first, *second, *mode;
	char abs[PATH_MAX];

	memset(v, 0, sizeof(*v));
	if (copy == NULL)
		return err_set(e, ENOMEM, "volume '%s'", s);
	first = copy;
	second = strchr(first, ':');
	if (second == NULL || second == first || second[1] == '\0') {
		free(copy);
		return err_setx(e, EINVAL, "volume '%s': expected HOST:CONTAINER[:ro]", s);
	}
	*second++ = '\0';
	mode = strchr(second, ':');
	if (mode) {
		*mode++ = '\0';
		if (strcmp(mode, "ro") == 0)
			v->readonly = true;
		else if (strcmp(mode, "rw") != 0) {
			int r = err_setx(e, EINVAL, "volume '%s': mode '%s' (expected ro or rw)", s, mode);
			free(copy);
			return r;
		}
	}
	if (second[0] != '/') {
		free(copy);
		return err_setx(e, EINVAL, "volume '%s': the container path must be absolute", s);
	}
	if (realpath(first, abs) == NULL) {
		int r = err_set(e, errno, "volume '%s': host path '%s'", s, first);
		free(copy);
		return r;
	}
	v->host = strdup(abs);
	v->container = strdup(second);
	free(copy);
	if (!v->host || !v->container) {
		volume_free(v);
		return err_set(e, ENOMEM, "volume '%s'", s);
	}
	return 0;
}

void volume_free(struct volume *v)
{
	free(v->host);
	free(v->container);
	memset(v, 0, sizeof(*v));
}

/* The image's env, then the user's over it (same key replaced). */
static json_object *build_env(const struct image_config *cfg, const struct bundle_opts *o)
{
	json_object *a = json_object_new_array();
	char **all = calloc(cfg->n_env + o->n_env + 3, sizeof(*all));
	size_t n = 0;
	bool has_path = false, has_term = false;

	if (all == NULL || a == NULL) {
		free(all);
		json_object_put(a);
		return NULL;
	}
	for (int pass = 0; pass < 2; pass++) {
		char **src = pass == 0 ? cfg->env : o->env;
		size_t count = pass == 0 ? cfg->n_env : o->n_env;
		for (size_t i = 0; i < count; i++) {
			const char *eq = strchr(src[i], '=');
			size_t kl = eq ? (size_t)(eq - src[i]) : strlen(src[i]);
			size_t j;
			for (j = 0; j < n; j++)
				if (strncmp(all[j], src[i], kl) == 0 && (all[j][kl] == '=' || all[j][kl] == '\0'))
					break;
			all[j] = src[i];
			if (j == n)
				n++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		has_path |= strncmp(all[i], "PATH=", 5) == 0;
		has_term |= strncmp(all[i], "TERM=", 5) == 0;
	}
	if (!has_path)
		json_object_array_add(a, json_object_new_string(DEFAULT_PATH));
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(all[i]));
	if (o->terminal && !has_term)
		json_object_array_add(a, json_object_new_string("TERM=xterm"));
	free(all);
	return a;
}

static json_object *caps_array(void)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < sizeof(default_caps) / sizeof(default_caps[0]); i++)
		json_object_array_add(a, json_object_new_string(default_caps[i]));
	return a;
}

static char *read_in_root(const char *rootfs_dir, const char *path)
{
	int root = open(rootfs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd;
	char *buf = NULL;
	size_t len;

	if (root < 0)
		return NULL;
	fd = open_in_root(root, path, O_RDONLY, 0);
	close(root);
	if (fd < 0)
		return NULL;
	{
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		if (read_file(p, &buf, &len) < 0)
			buf = NULL;
	}
	close(fd);
	return buf;
}

int bundle_write_config(const char *bundle_dir, const char *rootfs_dir, const struct image_config *cfg,
			const struct bundle_opts *o, struct err **e)
{
	char *spec = NULL, *passwd, *group, path[4096];
	struct user_ids ids;
	json_object *doc, *proc, *user, *args, *root, *mounts, *caps, *gids;
	const char *text;
	int r;

	if ((r = oci_spec_default(false, &spec, e)) < 0)
		return r;
	doc = json_tokener_parse(spec);
	free(spec);
	if (doc == NULL)
		return err_setx(e, EINVAL, "default spec: not JSON");
	passwd = read_in_root(rootfs_dir, "/etc/passwd");
	group = read_in_root(rootfs_dir, "/etc/group");
	r = user_resolve(cfg->user, passwd, group, &ids, e);
	free(passwd);
	free(group);
	if (r < 0) {
		json_object_put(doc);
		return err_wrap(e, "image USER");
	}
	args = json_object_new_array();
	for (size_t i = 0; i < cfg->n_entrypoint; i++)
		json_object_array_add(args, json_object_new_string(cfg->entrypoint[i]));
	if (o->n_args)
		for (size_t i = 0; i < o->n_args; i++)
			json_object_array_add(args, json_object_new_string(o->args[i]));
	else
		for (size_t i = 0; i < cfg->n_cmd; i++)
			json_object_array_add(args, json_object_new_string(cfg->cmd[i]));
	if (json_object_array_length(args) == 0 && !o->require_command) {
		json_object_array_add(args, json_object_new_string("sh"));
	} else if (json_object_array_length(args) == 0) {
		json_object_put(args);
		json_object_put(doc);
		user_ids_free(&ids);
		return err_setx(e, EINVAL, "the image has no Entrypoint or Cmd: give a command");
	}
	proc = jx_get(doc, "process");
	json_object_object_add(proc, "terminal", json_object_new_boolean(o->terminal));
	json_object_object_add(proc, "args", args);
	json_object_object_add(proc, "env", build_env(cfg, o));
	json_object_object_add(
	    proc, "cwd",
	    json_object_new_string(cfg->working_dir && cfg->working_dir[0] == '/' ? cfg->working_dir : "/"));
	user = json_object_new_object();
	json_object_object_add(user, "uid", json_object_new_int64(ids.uid));
	json_object_object_add(user, "gid", json_object_new_int64(ids.gid));
	if (ids.n_gids) {
		gids = json_object_new_array();
		for (size_t i = 0; i < ids.n_gids; i++)
			json_object_array_add(gids, json_object_new_int64(ids.gids[i]));
		json_object_object_add(user, "additionalGids", gids);
	}
	user_ids_free(&ids);
	json_object_object_add(proc, "user", user);
	caps = json_object_new_object();
	json_object_object_add(caps, "bounding", caps_array());
	json_object_object_add(caps, "effective", caps_array());
	json_object_object_add(caps, "permitted", caps_array());
	json_object_object_add(proc, "capabilities", caps);
	root = json_object_new_object();
	json_object_object_add(root, "path", json_object_new_string(o->rootfs));
	json_object_object_add(root, "readonly", json_object_new_boolean(false));
	json_object_object_add(doc, "root", root);
	json_object_object_add(doc, "hostname", json_object_new_string(o->hostname ? o->hostname : "casulo"));
	mounts = jx_get(doc, "mounts");
	for (size_t i = 0; mounts && i < o->n_volumes; i++) {
		json_object *m = json_object_new_object(), *opts = json_object_new_array();
		json_object_object_add(m, "destination", json_object_new_string(o->volumes[i].container));
		json_object_object_add(m, "type", json_object_new_string("bind"));
		json_object_object_add(m, "source", json_object_new_string(o->volumes[i].host));
		json_object_array_add(opts, json_object_new_string("rbind"));
		json_object_array_add(opts, json_object_new_string("rprivate"));
		if (o->volumes[i].readonly)
			json_object_array_add(opts, json_object_new_string("ro"));
		json_object_object_add(m, "options", opts);
		json_object_array_add(mounts, m);
	}
	if (cfg->stop_signal) {
		json_object *ann = json_object_new_object();
		json_object_object_add(ann, "org.opencontainers.image.stopSignal",
				       json_object_new_string(cfg->stop_signal));
		json_object_object_add(doc, "annotations", ann);
	}
	text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	snprintf(path, sizeof(path), "%s/config.json", bundle_dir);
	r = write_file_atomic(path, text, strlen(text), 0644);
	json_object_put(doc);
	return r < 0 ? err_set(e, -r, "bundle '%s': write config.json", bundle_dir) : 0;
}

int image_unpack(struct store *s, const char *what, const char *bundle, struct progress *p, struct err **e)
{
	struct store_image im;
	struct store_loaded l;
	struct unpack_stats st;
	struct bundle_opts o = {.rootfs = "rootfs"};
	char rootfs[4096];
	int r;

	if ((r = store_find(s, what, &im, e)) < 0)
		return r;
	r = store_load(s, &im.manifest, &l, e);
	free(im.name);
	descriptor_free(&im.manifest);
	if (r < 0)
		return r;
	if ((r = mkdir_p(bundle, 0755)) < 0) {
		store_loaded_free(&l);
		return err_set(e, -r, "bundle '%s': mkdir", bundle);
	}
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
	r = unpack_image_flat(s, &l, rootfs, p, &st, e);
	if (r == 0 && (r = bundle_write_config(bundle, rootfs, &l.config, &o, e)) < 0)
		rm_rf_dir(rootfs);
	store_loaded_free(&l);
	return r;
}
