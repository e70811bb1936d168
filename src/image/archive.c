/*
 * Import and export.  Three sources: an OCI image layout directory, an
 * OCI archive (a tar of one), and a docker-archive tar (`docker save`,
 * `podman save`: manifest.json, configs and layer tars).  Every blob goes
 * through a blob_writer, so its digest is checked against its name (OCI)
 * or computed (docker-archive files), and the manifests that name it
 * agree on sizes.  Export writes an OCI layout.
 */
#include <ctype.h>
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "image/image.h"
#include "image/jsonx.h"
#include "image/layer.h"
#include "image/progress.h"
#include "image/ref.h"
#include "image/tarpath.h"
#include "oci/util.h"

#define SMALL_FILE_MAX (8 * 1024 * 1024)

struct import_ctx {
	struct store *s;
	const char *path;
	const char *name; /* given by the user */
	bool any_name;	  /* unnamed images are named localhost/<source>:<n> */
	struct progress *p;
	int layout_fd;	     /* a layout directory, or -1 */
	struct strmap files; /* archive member -> struct member */
	char *index_json, *manifest_json;
	size_t index_len, manifest_len;
	char **names;
	size_t n_names;
};

struct member {
	char digest[DIGEST_BUF];
	int64_t size;
	char *link; /* a symlink member's target path */
};

static void member_free(void *p)
{
	struct member *m = p;

	if (m)
		free(m->link);
	free(m);
}

static int add_name(struct import_ctx *c, const char *name, struct err **e)
{
	char **n = realloc(c->names, (c->n_names + 2) * sizeof(*n));

	if (n == NULL)
		return err_set(e, ENOMEM, "import");
	c->names = n;
	n[c->n_names] = strdup(name);
	if (n[c->n_names] == NULL)
		return err_set(e, ENOMEM, "import");
	n[++c->n_names] = NULL;
	return 0;
}

typedef ssize_t (*read_fn)(void *src, char *buf, size_t len, struct err **e);

/* Everything src yields into the writer, with progress. */
static int pump(struct blob_writer *w, read_fn rd, void *src, struct progress *p, int id, struct err **e)
{
	static __thread char buf[512 * 1024];

	for (;;) {
		ssize_t n = rd(src, buf, sizeof(buf), e);
		int r;
		if (n <= 0)
			return (int)n;
		if ((r = blob_writer_write(w, buf, (size_t)n, e)) < 0)
			return r;
		progress_update(p, id, w->offset);
	}
}

struct fd_source {
	int fd;
	const char *what;
};

static ssize_t read_fd(void *src, char *buf, size_t len, struct err **e)
{
	struct fd_source *f = src;

	for (;;) {
		ssize_t n = read(f->fd, buf, len);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return err_set(e, errno, "%s: read", f->what);
	}
}

struct archive_source {
	struct archive *a;
	const char *what;
};

static ssize_t read_archive_data(void *src, char *buf, size_t len, struct err **e)
{
	struct archive_source *s = src;
	la_ssize_t n = archive_read_data(s->a, buf, len);

	return n < 0 ? err_setx(e, EIO, "%s: %s", s->what, archive_error_string(s->a)) : (ssize_t)n;
}

/* Copy a blob of a layout directory into the store, verified. */
static int copy_layout_blob(struct import_ctx *c, const struct descriptor *d, struct err **e)
{
	struct blob_writer w;
	char rel[128], what[4200];
	struct fd_source src;
	int fd, r, id;

	r = blob_writer_begin(c->s, d->digest, d->size, false, &w, e);
	if (r != 0)
		return r < 0 ? r : 0;
	snprintf(rel, sizeof(rel), "blobs/sha256/%s", digest_hex(d->digest));
	fd = openat(c->layout_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = err_set(e, errno, "layout '%s': blob %s", c->path, d->digest);
		blob_writer_abort(&w, false);
		return r;
	}
	snprintf(what, sizeof(what), "layout '%s': blob %s", c->path, d->digest);
	src = (struct fd_source){.fd = fd, .what = what};
	id = progress_add(c->p, "import", d->digest, (uint64_t)d->size, 0);
	r = pump(&w, read_fd, &src, c->p, id, e);
	close(fd);
	if (r == 0)
		r = blob_writer_commit(&w, NULL, e);
	else
		blob_writer_abort(&w, false);
	progress_done(c->p, id, r < 0 ? "failed" : "done");
	return r;
}

/* The blob is in the store (an archive put it there) with its size. */
static int ensure_blob(struct import_ctx *c, const struct descriptor *d, struct err **e)
{
	if (c->layout_fd >= 0)
		return copy_layout_blob(c, d, e);
	if (store_has_blob(c->s, d->digest, d->size))
		return 0;
	if (store_has_blob(c->s, d->digest, -1))
		return err_setx(e, EIO, "'%s': blob %s: size mismatch with its descriptor (%lld bytes)", c->path,
				d->digest, (long long)d->size);
	return err_setx(e, ENOENT, "'%s': blob %s is missing", c->path, d->digest);
}

/* The name an OCI layout's ref.name gives: a full reference as is, a
 * bare tag (what skopeo writes) on localhost/<source name>. */
static int layout_name(struct import_ctx *c, const char *ref_name, char **out, struct err **e)
{
	struct image_ref ref;
	char base[256], *copy;
	int r;

	if (strchr(ref_name, '/') || strchr(ref_name, '@')) {
		if ((r = ref_parse(ref_name, &ref, e)) < 0)
			return r;
		*out = strdup(ref.name);
		ref_free(&ref);
		return *out ? 0 : err_set(e, ENOMEM, "import");
	}
	copy = strdup(c->path);
	if (copy == NULL)
		return err_set(e, ENOMEM, "import");
	snprintf(base, sizeof(base), "%s", basename(copy));
	free(copy);
	/* A repository component is lowercase letters and digits joined by
	 * separators, starting and ending with a letter or digit: a single '_'
	 * between two of them stays (my_layout), every other run of characters
	 * becomes one '-'. */
	{
		char *w = base;
		for (const char *p = base; *p; p++) {
			char ch = (char)tolower((unsigned char)*p);
			if (isalnum((unsigned char)ch) && (unsigned char)ch < 0x80)
				*w++ = ch;
			else if (ch == '_' && w > base && isalnum((unsigned char)w[-1]) && isalnum((unsigned char)p[1]))
				*w++ = ch;
			else if (w > base && w[-1] != '-')
				*w++ = '-';
		}
		if (w > base && w[-1] == '-')
			w--;
		*w = '\0';
	}
	{
		char full[600];
		snprintf(full, sizeof(full), "localhost/%s:%s", base[0] ? base : "imported", ref_name);
		if ((r = ref_parse(full, &ref, e)) < 0)
			return err_wrap(e, "'%s': ref.name '%s'", c->path, ref_name);
	}
	*out = strdup(ref.name);
	ref_free(&ref);
	return *out ? 0 : err_set(e, ENOMEM, "import");
}

/* One image manifest of an OCI source: its blobs into the store, then
 * the manifest, then the name. */
static int import_manifest(struct import_ctx *c, const struct descriptor *d, const char *name, struct err **e)
{
	struct store_loaded l;
	struct manifest m;
	char *body = NULL, what[128];
	size_t len;
	int r;

	if ((r = ensure_blob(c, d, e)) < 0)
		return r;
	if ((r = store_read_blob(c->s, d->digest, d->size, MANIFEST_MAX_SIZE, &body, &len, e)) < 0)
		return r;
	snprintf(what, sizeof(what), "manifest %s", d->digest);
	r = manifest_parse(body, len, what, &m, e);
	free(body);
	if (r < 0)
		return r;
	if (m.kind == MANIFEST_INDEX) {
		/* A multi-platform image: this machine's platform. */
		int i = manifest_select_platform(&m, "linux", platform_host_arch(), NULL, e);
		if (i >= 0)
			r = import_manifest(c, &m.manifests[i], name, e);
		else
			r = i;
		manifest_free(&m);
		return r;
	}
	r = ensure_blob(c, &m.config, e);
	for (size_t i = 0; r == 0 && i < m.n_layers; i++)
		r = ensure_blob(c, &m.layers[i], e);
	manifest_free(&m);
	if (r < 0)
		return r;
	if ((r = store_load(c->s, d, &l, e)) < 0)
		return r;
	{
		struct descriptor desc = {0};
		desc.media_type = (char *)(d->media_type ? d->media_type : MT_OCI_MANIFEST);
		memcpy(desc.digest, d->digest, DIGEST_BUF);
		desc.size = d->size;
		desc.os = l.config.os;
		desc.arch = l.config.arch;
		r = store_tag(c->s, name, &desc, e);
	}
	store_loaded_free(&l);
	if (r == 0)
		r = add_name(c, name, e);
	if (r == 0)
		progress_note(c->p, "imported", "image", name, "digest", d->digest, NULL);
	return r;
}

static int import_oci_index(struct import_ctx *c, const char *json, size_t len, struct err **e)
{
	struct manifest idx;
	char what[4200];
	int r;

	snprintf(what, sizeof(what), "'%s': index.json", c->path);
	if ((r = manifest_parse(json, len, what, &idx, e)) < 0)
		return r;
	if (idx.kind != MANIFEST_INDEX) {
		manifest_free(&idx);
		return err_setx(e, EINVAL, "%s: not an image index", what);
	}
	if (idx.n_manifests == 0)
		r = err_setx(e, EINVAL, "%s: no image in it", what);
	else if (c->name && idx.n_manifests > 1)
		r = err_setx(e, EINVAL, "'%s': %zu images; a name applies to one", c->path, idx.n_manifests);
	for (size_t i = 0; r == 0 && i < idx.n_manifests; i++) {
		char *name = NULL;
		const struct descriptor *d = &idx.manifests[i];
		if (c->name)
			name = strdup(c->name);
		else if (d->ref_name)
			r = layout_name(c, d->ref_name, &name, e);
		else if (c->any_name) {
			char tag[32];
			snprintf(tag, sizeof(tag), "image-%zu", i);
			r = layout_name(c, tag, &name, e);
		} else
			r = err_setx(e, EINVAL, "'%s': image %s has no name (ref.name); give one", c->path, d->digest);
		if (r == 0 && name == NULL)
			r = err_set(e, ENOMEM, "import");
		if (r == 0)
			r = import_manifest(c, d, name, e);
		free(name);
	}
	manifest_free(&idx);
	return r;
}

static int import_layout_dir(struct import_ctx *c, struct err **e)
{
	_cleanup_free_ char *layout = NULL, *index = NULL;
	size_t len;
	int r;

	if ((r = read_file_at(c->layout_fd, "oci-layout", &layout, &len)) < 0)
		return err_set(e, -r, "'%s': not an OCI image layout: oci-layout", c->path);
	if (strstr(layout, "imageLayoutVersion") == NULL)
		return err_setx(e, EINVAL, "'%s': oci-layout: no imageLayoutVersion", c->path);
	if ((r = read_file_at(c->layout_fd, "index.json", &index, &len)) < 0)
		return err_set(e, -r, "'%s': index.json", c->path);
	return import_oci_index(c, index, len, e);
}

/* --- archives --- */

static int read_small(struct archive *a, const char *name, int64_t size, char **out, size_t *len, struct err **e)
{
	char *buf;
	la_ssize_t n;

	if (size < 0 || size > SMALL_FILE_MAX)
		return err_setx(e, EFBIG, "archive member '%s': %lld bytes, too large", name, (long long)size);
	buf = malloc((size_t)size + 1);
	if (buf == NULL)
		return err_set(e, ENOMEM, "archive member '%s'", name);
	n = archive_read_data(a, buf, (size_t)size);
	if (n != size) {
		free(buf);
		return err_setx(e, EIO, "archive member '%s': %s", name, n < 0 ? archive_error_string(a) : "truncated");
	}
	buf[size] = '\0';
	*out = buf;
	*len = (size_t)size;
	return 0;
}

/* A member that is a blob (OCI: named by digest) or a docker-archive
 * file (config, layer): into the store, verified. */
static int store_member(struct import_ctx *c, struct archive *a, const char *path, int64_t size, struct err **e)
{
	struct blob_writer w;
	struct member *m;
	char digest[DIGEST_BUF], expect[DIGEST_BUF] = "";
	int r, id;

	if (strncmp(path, "blobs/sha256/", 13) == 0) {
		if (strlen(path + 13) != DIGEST_HEX_LEN)
			return err_setx(e, EINVAL, "'%s': member '%s': not a sha256 digest name", c->path, path);
		memcpy(expect, "sha256:", 7);
		memcpy(expect + 7, path + 13, DIGEST_HEX_LEN + 1);
	}
	if (expect[0] && !digest_valid(expect))
		return err_setx(e, EINVAL, "'%s': member '%s': not a sha256 digest name", c->path, path);
	if (expect[0]) {
		r = blob_writer_begin(c->s, expect, size, false, &w, e);
		if (r < 0)
			return r;
		if (r == 1) { /* already stored: skip its data */
			snprintf(digest, sizeof(digest), "%s", expect);
			goto record;
		}
	} else if ((r = blob_writer_begin_anon(c->s, &w, e)) < 0) {
		return r;
	}
	id = progress_add(c->p, "import", expect[0] ? expect : path, (uint64_t)size, 0);
	{
		char what[4200];
		struct archive_source src = {.a = a, .what = what};
		snprintf(what, sizeof(what), "'%s': member '%s'", c->path, path);
		r = pump(&w, read_archive_data, &src, c->p, id, e);
	}
	if (r == 0)
		r = blob_writer_commit(&w, digest, e);
	else
		blob_writer_abort(&w, false);
	progress_done(c->p, id, r < 0 ? "failed" : "done");
	if (r < 0)
		return err_wrap(e, "'%s': member '%s'", c->path, path);
record:
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return err_set(e, ENOMEM, "import");
	memcpy(m->digest, digest, DIGEST_BUF);
	m->size = size;
	if (strmap_put(&c->files, path, m, NULL) < 0) {
		free(m);
		return err_set(e, ENOMEM, "import");
	}
	return 0;
}

static int read_archive(struct import_ctx *c, struct err **e)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	int r = 0, rc;

	if (a == NULL)
		return err_set(e, ENOMEM, "import");
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	if (archive_read_open_filename(a, c->path, 256 * 1024) != ARCHIVE_OK) {
		r = err_setx(e, EIO, "'%s': %s", c->path, archive_error_string(a));
		archive_read_free(a);
		return r;
	}
	while (r == 0 && (rc = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		char path[4096];
		const char *raw = archive_entry_pathname(ent);
		int64_t size = archive_entry_size(ent);

		if (raw == NULL || tarpath_clean(raw, path, sizeof(path)) < 0) {
			r = err_setx(e, EINVAL, "'%s': member '%s': bad name", c->path, raw ? raw : "");
			break;
		}
		if (archive_entry_filetype(ent) == AE_IFLNK) {
			/* docker save links repeated layers to the first copy */
			struct member *m = calloc(1, sizeof(*m));
			char parent[4096], joined[8192];
			const char *name;
			tarpath_split(path, parent, sizeof(parent), &name);
			snprintf(joined, sizeof(joined), "%s%s%s", parent, parent[0] ? "/" : "",
				 archive_entry_symlink(ent) ? archive_entry_symlink(ent) : "");
			if (m == NULL || (m->link = malloc(4096)) == NULL) {
				member_free(m);
				r = err_set(e, ENOMEM, "import");
				break;
			}
			/* Resolve "a/../b" lexically, refusing an escape. */
			{
				char norm[4096] = "";
				size_t o = 0;
				char *save = NULL, *tok;
				bool bad = false;
				for (tok = strtok_r(joined, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
					if (strcmp(tok, ".") == 0)
						continue;
					if (strcmp(tok, "..") == 0) {
						char *sl = strrchr(norm, '/');
						if (o == 0) {
							bad = true;
							break;
						}
						o = sl ? (size_t)(sl - norm) : 0;
						norm[o] = '\0';
						continue;
					}
					o += (size_t)snprintf(norm + o, sizeof(norm) - o, "%s%s", o ? "/" : "", tok);
				}
				if (bad || o >= sizeof(norm)) {
					member_free(m);
					r = err_setx(e, EINVAL, "'%s': member '%s': link leaves the archive", c->path,
						     path);
					break;
				}
				snprintf(m->link, 4096, "%s", norm);
			}
			if (strmap_put(&c->files, path, m, NULL) < 0) {
				member_free(m);
				r = err_set(e, ENOMEM, "import");
			}
			continue;
		}
		if (archive_entry_filetype(ent) != AE_IFREG)
			continue;
		if (strcmp(path, "index.json") == 0)
			r = read_small(a, path, size, &c->index_json, &c->index_len, e);
		else if (strcmp(path, "manifest.json") == 0)
			r = read_small(a, path, size, &c->manifest_json, &c->manifest_len, e);
		else if (strcmp(path, "oci-layout") == 0 || strcmp(path, "repositories") == 0)
			continue;
		else
			r = store_member(c, a, path, size, e);
	}
	if (r == 0 && rc != ARCHIVE_EOF)
		r = err_setx(e, EIO, "'%s': %s", c->path, archive_error_string(a));
	archive_read_free(a);
	return r;
}

static struct member *find_member(struct import_ctx *c, const char *path)
{
	char clean[4096];
	struct member *m;

	if (tarpath_clean(path, clean, sizeof(clean)) < 0)
		return NULL;
	m = strmap_get(&c->files, clean);
	for (int depth = 0; m && m->link && depth < 8; depth++)
		m = strmap_get(&c->files, m->link);
	return m && !m->link ? m : NULL;
}

static int docker_layer_media_type(struct import_ctx *c, const char *digest, const char **mt, struct err **e)
{
	unsigned char head[4];
	int fd, r;
	ssize_t n;

	if ((r = store_open_blob(c->s, digest, -1, &fd, e)) < 0)
		return r;
	n = read(fd, head, sizeof(head));
	close(fd);
	switch (layer_sniff(head, n > 0 ? (size_t)n : 0)) {
	case LAYER_GZIP:
		*mt = MT_OCI_LAYER_GZIP;
		break;
	case LAYER_ZSTD:
		*mt = MT_OCI_LAYER_ZSTD;
		break;
	default:
		*mt = MT_OCI_LAYER;
		break;
	}
	return 0;
}

/* docker-archive: build an OCI manifest for each entry of manifest.json. */
static int import_docker(struct import_ctx *c, struct err **e)
{
	json_object *doc, *m;
	char what[4200];
	int r = 0;

	snprintf(what, sizeof(what), "'%s': manifest.json", c->path);
	doc = jx_parse(c->manifest_json, c->manifest_len, what, e);
	if (doc == NULL)
		return -EINVAL;
	if (!json_object_is_type(doc, json_type_array) || json_object_array_length(doc) == 0) {
		json_object_put(doc);
		return err_setx(e, EINVAL, "%s: expected a non-empty array", what);
	}
	if (c->name && json_object_array_length(doc) > 1) {
		json_object_put(doc);
		return err_setx(e, EINVAL, "'%s': %zu images; a name applies to one", c->path,
				json_object_array_length(doc));
	}
	for (size_t i = 0; r == 0 && i < json_object_array_length(doc); i++) {
		char *config = NULL, **layers = NULL, **tags = NULL, mdigest[DIGEST_BUF], field[64];
		size_t n_layers = 0, n_tags = 0;
		struct member *cm;
		json_object *man = json_object_new_object(), *jl = json_object_new_array(), *jc;
		const char *text;

		m = json_object_array_get_idx(doc, i);
		snprintf(field, sizeof(field), "[%zu].Config", i);
		r = jx_string(m, "Config", true, what, field, &config, e);
		snprintf(field, sizeof(field), "[%zu].Layers", i);
		if (r == 0)
			r = jx_strv(m, "Layers", what, field, &layers, &n_layers, e);
		snprintf(field, sizeof(field), "[%zu].RepoTags", i);
		if (r == 0)
			r = jx_strv(m, "RepoTags", what, field, &tags, &n_tags, e);
		if (r == 0 && (cm = find_member(c, config)) == NULL)
			r = err_setx(e, ENOENT, "%s: config '%s' is not in the archive", what, config);
		if (r == 0) {
			jc = json_object_new_object();
			json_object_object_add(jc, "mediaType", json_object_new_string(MT_OCI_CONFIG));
			json_object_object_add(jc, "digest", json_object_new_string(cm->digest));
			json_object_object_add(jc, "size", json_object_new_int64(cm->size));
			json_object_object_add(man, "config", jc);
		}
		for (size_t j = 0; r == 0 && j < n_layers; j++) {
			struct member *lm = find_member(c, layers[j]);
			const char *mt = NULL;
			json_object *d;
			if (lm == NULL) {
				r = err_setx(e, ENOENT, "%s: layer '%s' is not in the archive", what, layers[j]);
				break;
			}
			if ((r = docker_layer_media_type(c, lm->digest, &mt, e)) < 0)
				break;
			d = json_object_new_object();
			json_object_object_add(d, "mediaType", json_object_new_string(mt));
			json_object_object_add(d, "digest", json_object_new_string(lm->digest));
			json_object_object_add(d, "size", json_object_new_int64(lm->size));
			json_object_array_add(jl, d);
		}
		json_object_object_add(man, "schemaVersion", json_object_new_int(2));
		json_object_object_add(man, "mediaType", json_object_new_string(MT_OCI_MANIFEST));
		json_object_object_add(man, "layers", jl);
		text = json_object_to_json_string_ext(man, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (r == 0 && (r = store_put_blob(c->s, text, strlen(text), NULL, mdigest, e)) == 0) {
			struct descriptor d = {.media_type = MT_OCI_MANIFEST, .size = (int64_t)strlen(text)};
			memcpy(d.digest, mdigest, DIGEST_BUF);
			if (c->name) {
				r = import_manifest(c, &d, c->name, e);
			} else if (n_tags == 0 && c->any_name) {
				char tag[32], *name = NULL;
				snprintf(tag, sizeof(tag), "image-%zu", i);
				if ((r = layout_name(c, tag, &name, e)) == 0)
					r = import_manifest(c, &d, name, e);
				free(name);
			} else if (n_tags == 0) {
				r = err_setx(e, EINVAL, "'%s': image %zu has no RepoTags; give a name", c->path, i);
			}
			for (size_t t = 0; r == 0 && !c->name && t < n_tags; t++) {
				struct image_ref ref;
				if ((r = ref_parse(tags[t], &ref, e)) < 0)
					break;
				r = import_manifest(c, &d, ref.name, e);
				ref_free(&ref);
			}
		}
		json_object_put(man);
		free(config);
		strv_free(layers);
		strv_free(tags);
	}
	json_object_put(doc);
	return r;
}

static int import(struct store *s, const char *path, const char *name, bool any_name, struct progress *p, char ***names,
		  struct err **e)
{
	struct import_ctx c = {.s = s, .path = path, .name = name, .p = p, .layout_fd = -1, .any_name = any_name};
	struct stat st;
	int r;

	*names = NULL;
	strmap_init(&c.files);
	if (name) {
		struct image_ref ref;
		if ((r = ref_parse(name, &ref, e)) < 0)
			return r;
		c.name = strdup(ref.name);
		ref_free(&ref);
		if (c.name == NULL)
			return err_set(e, ENOMEM, "import");
	}
	if (stat(path, &st) < 0) {
		r = err_set(e, errno, "import '%s'", path);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		c.layout_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = c.layout_fd < 0 ? err_set(e, errno, "import '%s'", path) : import_layout_dir(&c, e);
	} else {
		r = read_archive(&c, e);
		if (r == 0 && c.index_json)
			r = import_oci_index(&c, c.index_json, c.index_len, e);
		else if (r == 0 && c.manifest_json)
			r = import_docker(&c, e);
		else if (r == 0)
			r = err_setx(e, EINVAL,
				     "'%s': neither an OCI archive (index.json) nor a docker archive (manifest.json)",
				     path);
	}
out:
	if (c.layout_fd >= 0)
		close(c.layout_fd);
	strmap_free(&c.files, member_free);
	free(c.index_json);
	free(c.manifest_json);
	free((char *)(name ? c.name : NULL));
	if (r < 0) {
		for (size_t i = 0; i < c.n_names; i++)
			free(c.names[i]);
		free(c.names);
		return r;
	}
	*names = c.names;
	return 0;
}

int image_import(struct store *s, const char *path, const char *name, struct progress *p, char ***names, struct err **e)
{
	return import(s, path, name, false, p, names, e);
}

int image_import_any(struct store *s, const char *path, struct progress *p, char ***names, struct err **e)
{
	return import(s, path, NULL, true, p, names, e);
}

/* --- export --- */

static int export_blob(struct store *s, int blobs_fd, const struct descriptor *d, struct err **e)
{
	static __thread char buf[512 * 1024];
	const char *hex = digest_hex(d->digest);
	int in, out, r = 0;

	if (linkat(s->blobs_fd, hex, blobs_fd, hex, 0) == 0 || errno == EEXIST)
		return 0;
	if ((r = store_open_blob(s, d->digest, d->size, &in, e)) < 0)
		return r;
	out = openat(blobs_fd, hex, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		r = err_set(e, errno, "export: blob %s", d->digest);
		close(in);
		return r;
	}
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				r = err_set(e, errno, "export: read blob %s", d->digest);
			break;
		}
		if ((r = write_full(out, buf, (size_t)n)) < 0) {
			r = err_set(e, -r, "export: write blob %s", d->digest);
			break;
		}
	}
	close(in);
	if (fsync(out) < 0 && r == 0)
		r = err_set(e, errno, "export: fsync blob %s", d->digest);
	close(out);
	return r;
}

int image_export(struct store *s, const char *what, const char *dir, struct err **e)
{
	struct store_image im;
	struct store_loaded l;
	struct image_ref ref;
	char path[4096];
	int dfd = -1, bfd = -1, r;

	if ((r = store_find(s, what, &im, e)) < 0)
		return r;
	if ((r = store_load(s, &im.manifest, &l, e)) < 0)
		goto out_im;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		r = err_set(e, errno, "export '%s'", dir);
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || (mkdirat(dfd, "blobs", 0755) < 0 && errno != EEXIST) ||
	    (mkdirat(dfd, "blobs/sha256", 0755) < 0 && errno != EEXIST) ||
	    (bfd = openat(dfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = err_set(e, errno, "export '%s'", dir);
		goto out;
	}
	r = export_blob(s, bfd, &l.manifest.config, e);
	for (size_t i = 0; r == 0 && i < l.manifest.n_layers; i++)
		r = export_blob(s, bfd, &l.manifest.layers[i], e);
	if (r == 0)
		r = export_blob(s, bfd, &im.manifest, e);
	if (r < 0)
		goto out;
	fsync_dir(bfd);
	snprintf(path, sizeof(path), "%s/oci-layout", dir);
	if ((r = write_file_atomic(path, "{\"imageLayoutVersion\":\"1.0.0\"}", 30, 0644)) < 0) {
		r = err_set(e, -r, "export '%s': oci-layout", dir);
		goto out;
	}
	{
		/* ref.name is the tag, as skopeo and umoci read a layout. */
		json_object *doc = json_object_new_object(), *list = json_object_new_array(),
			    *d = json_object_new_object();
		json_object *ann = json_object_new_object();
		const char *text;
		memset(&ref, 0, sizeof(ref));
		(void)ref_parse(im.name, &ref, NULL);
		json_object_object_add(
		    d, "mediaType",
		    json_object_new_string(im.manifest.media_type ? im.manifest.media_type : MT_OCI_MANIFEST));
		json_object_object_add(d, "digest", json_object_new_string(im.manifest.digest));
		json_object_object_add(d, "size", json_object_new_int64(im.manifest.size));
		json_object_object_add(ann, ANNOTATION_REF_NAME, json_object_new_string(ref.tag ? ref.tag : "latest"));
		json_object_object_add(d, "annotations", ann);
		json_object_array_add(list, d);
		json_object_object_add(doc, "schemaVersion", json_object_new_int(2));
		json_object_object_add(doc, "mediaType", json_object_new_string(MT_OCI_INDEX));
		json_object_object_add(doc, "manifests", list);
		text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
		snprintf(path, sizeof(path), "%s/index.json", dir);
		r = write_file_atomic(path, text, strlen(text), 0644);
		json_object_put(doc);
		ref_free(&ref);
		if (r < 0)
			r = err_set(e, -r, "export '%s': index.json", dir);
	}
out:
	if (bfd >= 0)
		close(bfd);
	if (dfd >= 0)
		close(dfd);
	store_loaded_free(&l);
out_im:
	free(im.name);
	descriptor_free(&im.manifest);
	return r;
}
