#include "image/manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "image/jsonx.h"

bool media_type_is_index(const char *mt)
{
	return mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0);
}

bool media_type_is_manifest(const char *mt)
{
	return mt && (strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0);
}

bool media_type_is_layer(const char *mt)
{
	static const char *const types[] = {
	    MT_OCI_LAYER,
	    MT_OCI_LAYER_GZIP,
	    MT_OCI_LAYER_ZSTD,
	    MT_DOCKER_LAYER_GZIP,
	    "application/vnd.oci.image.layer.nondistributable.v1.tar",
	    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	};

	for (size_t i = 0; mt && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(mt, types[i]) == 0)
			return true;
	return false;
}

void descriptor_free(struct descriptor *d)
{
	free(d->media_type);
	free(d->os);
	free(d->arch);
	free(d->variant);
	free(d->ref_name);
	memset(d, 0, sizeof(*d));
}

static char *strdup_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int descriptor_copy(struct descriptor *dst, const struct descriptor *src)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->digest, src->digest, sizeof(dst->digest));
	dst->size = src->size;
	dst->media_type = strdup_null(src->media_type);
	dst->os = strdup_null(src->os);
	dst->arch = strdup_null(src->arch);
	dst->variant = strdup_null(src->variant);
	dst->ref_name = strdup_null(src->ref_name);
	if ((src->media_type && !dst->media_type) || (src->os && !dst->os) || (src->arch && !dst->arch) ||
	    (src->variant && !dst->variant) || (src->ref_name && !dst->ref_name)) {
		descriptor_free(dst);
		return -ENOMEM;
	}
	return 0;
}

static int parse_descriptor(json_object *o, const char *what, const char *field, struct descriptor *d, struct err **e)
{
	char f[128], *digest = NULL;
	json_object *platform, *annotations;
	int r;

	memset(d, 0, sizeof(*d));
	if (!json_object_is_type(o, json_type_object))
		return err_setx(e, EINVAL, "%s: %s: expected an object", what, field);
	snprintf(f, sizeof(f), "%s.mediaType", field);
	if ((r = jx_string(o, "mediaType", true, what, f, &d->media_type, e)) < 0)
		return r;
	snprintf(f, sizeof(f), "%s.digest", field);
	if ((r = jx_string(o, "digest", true, what, f, &digest, e)) < 0)
		return r;
	{
		char where[256];
		snprintf(where, sizeof(where), "%s: %s", what, f);
		r = digest_check(digest, where, e);
	}
	if (r == 0)
		memcpy(d->digest, digest, DIGEST_BUF);
	free(digest);
	if (r < 0)
		return r;
	snprintf(f, sizeof(f), "%s.size", field);
	if ((r = jx_int64(o, "size", true, what, f, &d->size, e)) < 0)
		return r;
	if (d->size < 0)
		return err_setx(e, EINVAL, "%s: %s: negative size %lld", what, f, (long long)d->size);
	snprintf(f, sizeof(f), "%s.platform", field);
	if ((r = jx_object(o, "platform", what, f, &platform, e)) < 0)
		return r;
	if (platform) {
		snprintf(f, sizeof(f), "%s.platform.os", field);
		if ((r = jx_string(platform, "os", true, what, f, &d->os, e)) < 0)
			return r;
		snprintf(f, sizeof(f), "%s.platform.architecture", field);
		if ((r = jx_string(platform, "architecture", true, what, f, &d->arch, e)) < 0)
			return r;
		snprintf(f, sizeof(f), "%s.platform.variant", field);
		if ((r = jx_string(platform, "variant", false, what, f, &d->variant, e)) < 0)
			return r;
	}
	snprintf(f, sizeof(f), "%s.annotations", field);
	if ((r = jx_object(o, "annotations", what, f, &annotations, e)) < 0)
		return r;
	if (annotations) {
		snprintf(f, sizeof(f), "%s.annotations[\"%s\"]", field, ANNOTATION_REF_NAME);
		if ((r = jx_string(annotations, ANNOTATION_REF_NAME, false, what, f, &d->ref_name, e)) < 0)
			return r;
	}
	return 0;
}

static int parse_descriptors(json_object *doc, const char *key, const char *what, struct descriptor **ret, size_t *n,
			     struct err **e)
{
	json_object *a;
	size_t len;
	int r = jx_array(doc, key, what, key, &a, e);

	*ret = NULL;
	*n = 0;
	if (r < 0)
		return r;
	if (a == NULL)
		return err_setx(e, EINVAL, "%s: %s: missing (expected an array)", what, key);
	len = json_object_array_length(a);
	*ret = calloc(len + 1, sizeof(**ret));
	if (*ret == NULL)
		return err_set(e, ENOMEM, "%s: %s", what, key);
	for (size_t i = 0; i < len; i++) {
		char field[64];
		snprintf(field, sizeof(field), "%s[%zu]", key, i);
		*n = i + 1; /* so that the caller frees what was filled */
		if ((r = parse_descriptor(json_object_array_get_idx(a, i), what, field, &(*ret)[i], e)) < 0)
			return r;
	}
	*n = len;
	return 0;
}

int manifest_parse(const char *buf, size_t len, const char *what, struct manifest *m, struct err **e)
{
	json_object *doc, *v;
	int64_t schema = 0;
	int r;

	memset(m, 0, sizeof(*m));
	if (len > MANIFEST_MAX_SIZE)
		return err_setx(e, EFBIG, "%s: %zu bytes, more than the %d a manifest may have", what, len,
				MANIFEST_MAX_SIZE);
	doc = jx_parse(buf, len, what, e);
	if (doc == NULL)
		return -EINVAL;
	if (!json_object_is_type(doc, json_type_object)) {
		json_object_put(doc);
		return err_setx(e, EINVAL, "%s: expected a JSON object", what);
	}
	r = jx_int64(doc, "schemaVersion", true, what, "schemaVersion", &schema, e);
	if (r == 0 && schema != 2)
		r = err_setx(e, EINVAL, "%s: schemaVersion %lld is not supported (only 2; schema 1 is obsolete)", what,
			     (long long)schema);
	if (r == 0)
		r = jx_string(doc, "mediaType", false, what, "mediaType", &m->media_type, e);
	if (r < 0)
		goto out;
	/* The media type is optional in OCI documents: tell them by shape. */
	if (media_type_is_index(m->media_type) || (m->media_type == NULL && jx_get(doc, "manifests"))) {
		m->kind = MANIFEST_INDEX;
		r = parse_descriptors(doc, "manifests", what, &m->manifests, &m->n_manifests, e);
	} else if (m->media_type == NULL || media_type_is_manifest(m->media_type)) {
		m->kind = MANIFEST_IMAGE;
		v = jx_get(doc, "config");
		if (v == NULL) {
			r = err_setx(e, EINVAL, "%s: config: missing (expected a descriptor)", what);
			goto out;
		}
		if ((r = parse_descriptor(v, what, "config", &m->config, e)) < 0)
			goto out;
		r = parse_descriptors(doc, "layers", what, &m->layers, &m->n_layers, e);
		for (size_t i = 0; r == 0 && i < m->n_layers; i++)
			if (!media_type_is_layer(m->layers[i].media_type))
				r = err_setx(e, EINVAL, "%s: layers[%zu]: unsupported layer media type '%s'", what, i,
					     m->layers[i].media_type);
	} else {
		r = err_setx(e, EINVAL, "%s: unsupported media type '%s'", what, m->media_type);
	}
out:
	json_object_put(doc);
	if (r < 0)
		manifest_free(m);
	return r;
}

void manifest_free(struct manifest *m)
{
	free(m->media_type);
	descriptor_free(&m->config);
	for (size_t i = 0; m->layers && i < m->n_layers; i++)
		descriptor_free(&m->layers[i]);
	free(m->layers);
	for (size_t i = 0; m->manifests && i < m->n_manifests; i++)
		descriptor_free(&m->manifests[i]);
	free(m->manifests);
	memset(m, 0, sizeof(*m));
}

int manifest_select_platform(const struct manifest *idx, const char *os, const char *arch, const char *variant,
			     struct err **e)
{
	char have[512] = "";
	size_t used = 0;

	for (size_t i = 0; i < idx->n_manifests; i++) {
		const struct descriptor *d = &idx->manifests[i];
		if (!media_type_is_manifest(d->media_type) || !d->os || !d->arch)
			continue;
		if (strcmp(d->os, os) == 0 && strcmp(d->arch, arch) == 0 &&
		    (variant == NULL || (d->variant && strcmp(d->variant, variant) == 0)))
			return (int)i;
		if (used < sizeof(have))
			used += (size_t)snprintf(have + used, sizeof(have) - used, "%s%s/%s%s%s", used ? ", " : "",
						 d->os, d->arch, d->variant ? "/" : "", d->variant ? d->variant : "");
	}
	return err_setx(e, ENOENT, "image index: no manifest for %s/%s%s%s (it has: %s)", os, arch, variant ? "/" : "",
			variant ? variant : "", used ? have : "none");
}

static int parse_labels(json_object *cfg, const char *what, struct image_config *c, struct err **e)
{
	json_object *labels;
	int r = jx_object(cfg, "Labels", what, "config.Labels", &labels, e);
	size_t n = 0;

	if (r < 0 || labels == NULL)
		return r;
	c->labels = calloc((size_t)json_object_object_length(labels) + 1, sizeof(*c->labels));
	if (c->labels == NULL)
		return err_set(e, ENOMEM, "%s: config.Labels", what);
	json_object_object_foreach(labels, key, val)
	{
		if (val && !json_object_is_type(val, json_type_string))
			return err_setx(e, EINVAL, "%s: config.Labels[\"%s\"]: expected a string", what, key);
		c->labels[n].key = strdup(key);
		c->labels[n].value = strdup(val ? json_object_get_string(val) : "");
		c->n_labels = ++n;
		if (!c->labels[n - 1].key || !c->labels[n - 1].value)
			return err_set(e, ENOMEM, "%s: config.Labels", what);
	}
	return 0;
}

static int parse_history(json_object *doc, const char *what, struct image_config *c, struct err **e)
{
	json_object *a, *v;
	int r = jx_array(doc, "history", what, "history", &a, e);
	size_t len;

	if (r < 0 || a == NULL)
		return r;
	len = json_object_array_length(a);
	c->history = calloc(len + 1, sizeof(*c->history));
	if (c->history == NULL)
		return err_set(e, ENOMEM, "%s: history", what);
	for (size_t i = 0; i < len; i++) {
		json_object *h = json_object_array_get_idx(a, i);
		char field[64];
		snprintf(field, sizeof(field), "history[%zu].created_by", i);
		c->n_history = i + 1;
		if (!json_object_is_type(h, json_type_object))
			return err_setx(e, EINVAL, "%s: history[%zu]: expected an object", what, i);
		if ((r = jx_string(h, "created_by", false, what, field, &c->history[i].created_by, e)) < 0)
			return r;
		v = jx_get(h, "empty_layer");
		if (v && !json_object_is_type(v, json_type_boolean))
			return err_setx(e, EINVAL, "%s: history[%zu].empty_layer: expected a boolean", what, i);
		c->history[i].empty_layer = v && json_object_get_boolean(v);
	}
	return 0;
}

int image_config_parse(const char *buf, size_t len, const char *what, struct image_config *c, struct err **e)
{
	json_object *doc, *cfg = NULL, *rootfs = NULL;
	char **diff_ids = NULL;
	size_t n_diff = 0;
	int r;

	memset(c, 0, sizeof(*c));
	if (len > CONFIG_MAX_SIZE)
		return err_setx(e, EFBIG, "%s: %zu bytes, more than the %d an image config may have", what, len,
				CONFIG_MAX_SIZE);
	doc = jx_parse(buf, len, what, e);
	if (doc == NULL)
		return -EINVAL;
	if (!json_object_is_type(doc, json_type_object)) {
		r = err_setx(e, EINVAL, "%s: expected a JSON object", what);
		goto out;
	}
	if ((r = jx_string(doc, "os", false, what, "os", &c->os, e)) < 0 ||
	    (r = jx_string(doc, "architecture", false, what, "architecture", &c->arch, e)) < 0 ||
	    (r = jx_string(doc, "variant", false, what, "variant", &c->variant, e)) < 0 ||
	    (r = jx_object(doc, "config", what, "config", &cfg, e)) < 0 ||
	    (r = jx_object(doc, "rootfs", what, "rootfs", &rootfs, e)) < 0)
		goto out;
	if (cfg &&
	    ((r = jx_string(cfg, "User", false, what, "config.User", &c->user, e)) < 0 ||
	     (r = jx_strv(cfg, "Env", what, "config.Env", &c->env, &c->n_env, e)) < 0 ||
	     (r = jx_strv(cfg, "Entrypoint", what, "config.Entrypoint", &c->entrypoint, &c->n_entrypoint, e)) < 0 ||
	     (r = jx_strv(cfg, "Cmd", what, "config.Cmd", &c->cmd, &c->n_cmd, e)) < 0 ||
	     (r = jx_string(cfg, "WorkingDir", false, what, "config.WorkingDir", &c->working_dir, e)) < 0 ||
	     (r = jx_string(cfg, "StopSignal", false, what, "config.StopSignal", &c->stop_signal, e)) < 0 ||
	     (r = parse_labels(cfg, what, c, e)) < 0))
		goto out;
	if (rootfs == NULL) {
		r = err_setx(e, EINVAL, "%s: rootfs: missing (expected an object with diff_ids)", what);
		goto out;
	}
	if ((r = jx_strv(rootfs, "diff_ids", what, "rootfs.diff_ids", &diff_ids, &n_diff, e)) < 0)
		goto out;
	c->diff_ids = calloc(n_diff + 1, sizeof(*c->diff_ids));
	if (c->diff_ids == NULL) {
		r = err_set(e, ENOMEM, "%s: rootfs.diff_ids", what);
		goto out;
	}
	for (size_t i = 0; i < n_diff; i++) {
		char field[64];
		snprintf(field, sizeof(field), "%s: rootfs.diff_ids[%zu]", what, i);
		if ((r = digest_check(diff_ids[i], field, e)) < 0)
			goto out;
		memcpy(c->diff_ids[i], diff_ids[i], DIGEST_BUF);
	}
	c->n_diff_ids = n_diff;
	r = parse_history(doc, what, c, e);
out:
	strv_free(diff_ids);
	json_object_put(doc);
	if (r < 0)
		image_config_free(c);
	return r;
}

void image_config_free(struct image_config *c)
{
	free(c->os);
	free(c->arch);
	free(c->variant);
	free(c->user);
	strv_free(c->env);
	strv_free(c->entrypoint);
	strv_free(c->cmd);
	free(c->working_dir);
	free(c->stop_signal);
	for (size_t i = 0; c->labels && i < c->n_labels; i++) {
		free(c->labels[i].key);
		free(c->labels[i].value);
	}
	free(c->labels);
	free(c->diff_ids);
	for (size_t i = 0; c->history && i < c->n_history; i++)
		free(c->history[i].created_by);
	free(c->history);
	memset(c, 0, sizeof(*c));
}

int platform_parse(const char *s, char **os, char **arch, char **variant, struct err **e)
{
	char a[64] = "", b[64] = "", v[64] = "";
	int n = sscanf(s, "%63[^/]/%63[^/]/%63s", a, b, v);

	*os = *arch = *variant = NULL;
	if (n < 2 || !*a || !*b)
		return err_setx(e, EINVAL, "platform '%s': expected OS/ARCH[/VARIANT], e.g. linux/amd64", s);
	*os = strdup(a);
	*arch = strdup(b);
	*variant = n == 3 ? strdup(v) : NULL;
	if (!*os || !*arch || (n == 3 && !*variant))
		return err_set(e, ENOMEM, "platform '%s'", s);
	return 0;
}

const char *platform_host_arch(void)
{
	static const struct {
		const char *uname, *oci;
	} map[] = {
	    {"x86_64", "amd64"}, {"aarch64", "arm64"},	 {"i686", "386"},    {"i386", "386"},
	    {"armv7l", "arm"},	 {"ppc64le", "ppc64le"}, {"s390x", "s390x"}, {"riscv64", "riscv64"},
	};
	static char arch[65];
	struct utsname u;

	if (arch[0])
		return arch;
	if (uname(&u) == 0)
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcmp(u.machine, map[i].uname) == 0)
				return strcpy(arch, map[i].oci);
	return "amd64";
}
