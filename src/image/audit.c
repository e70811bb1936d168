/*
 * The audit walk: every layer's entries, in order, into a map of the
 * final filesystem (with the whiteouts and opaque directories of later
 * layers), plus the secrets found in any layer; then the checks over the
 * final state, the config and the history, and the outputs.
 */
#include "image/audit.h"

#include <archive.h>
#include <ctype.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "casulo-config.h"
#include "image/image.h"
#include "image/layer.h"
#include "image/ref.h"
#include "image/tarpath.h"
#include "oci/util.h"

#define SCAN_MAX (256 * 1024) /* content scanned for keys and tokens */
#define SECRET_FILE_MAX (1024 * 1024)
#define CAPTURE_MAX (64 * 1024 * 1024) /* passwd, package databases */

struct fentry {
	uint32_t layer, mode;
	uint64_t size;
};

struct captured {
	size_t layer;
	char *data;
	size_t len;
	char *path;
};

struct hit {
	char *path;
	size_t layer;
	const struct audit_check *check;
	char *detail;
};

struct walk {
	struct audit_report *rep;
	const struct store_loaded *img;
	const struct audit_opts *o;
	struct strmap files, whiteouts, opaques, captured;
	struct captured *dbs; /* every version of the package databases */
	size_t n_dbs;
	struct hit *hits;
	size_t n_hits;
	size_t layer;
	const char *layer_digest;
};

static const char *const captured_paths[] = {
    "etc/passwd", "etc/shadow", "etc/group", "etc/os-release", "usr/lib/os-release",
};
#define DPKG_STATUS "var/lib/dpkg/status"
#define DPKG_STATUS_D "var/lib/dpkg/status.d/"
#define APK_DB "lib/apk/db/installed"

const char *audit_severity_name(enum audit_severity s)
{
	static const char *const names[] = {"none", "info", "low", "medium", "high", "critical"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

int audit_severity_parse(const char *s, enum audit_severity *out)
{
	for (int i = AUDIT_INFO; i <= AUDIT_CRITICAL; i++)
		if (strcasecmp(s, audit_severity_name((enum audit_severity)i)) == 0) {
			*out = (enum audit_severity)i;
			return 0;
		}
	return -EINVAL;
}

int audit_format_parse(const char *s, enum audit_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = AUDIT_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = AUDIT_JSON;
	else if (strcmp(s, "sarif") == 0)
		*out = AUDIT_SARIF;
	else
		return -EINVAL;
	return 0;
}

int audit_ignore_add(struct audit_opts *o, const char *spec, struct err **e)
{
	const char *colon = strchr(spec, ':');
	char id[64];
	struct audit_ignore *n;

	snprintf(id, sizeof(id), "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
	if (audit_check_find(id) == NULL)
		return err_setx(e, EINVAL, "ignore '%s': no check named '%s' (see docs/images.md)", spec, id);
	n = realloc(o->ignores, (o->n_ignores + 1) * sizeof(*n));
	if (n == NULL)
		return err_set(e, ENOMEM, "ignore");
	o->ignores = n;
	n[o->n_ignores].check = strdup(id);
	n[o->n_ignores].glob = colon ? strdup(colon[1] == '/' ? colon + 2 : colon + 1) : NULL;
	o->n_ignores++;
	return 0;
}

int audit_ignore_load(struct audit_opts *o, const char *file, struct err **e)
{
	_cleanup_free_ char *text = NULL;
	char *save = NULL;
	int r = read_file(file, &text, NULL);

	if (r < 0)
		return err_set(e, -r, "ignore file '%s'", file);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char spec[4096], *hash = strchr(line, '#'), *p;
		if (hash)
			*hash = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		for (p = line + strlen(line); p > line && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\r');)
			*--p = '\0';
		if (*line == '\0')
			continue;
		/* "ID PATH-GLOB" or "ID:PATH-GLOB" */
		snprintf(spec, sizeof(spec), "%s", line);
		p = strpbrk(spec, " \t");
		if (p) {
			*p++ = ':';
			while (*p == ' ' || *p == '\t')
				memmove(p, p + 1, strlen(p));
		}
		if ((r = audit_ignore_add(o, spec, e)) < 0)
			return err_wrap(e, "ignore file '%s'", file);
	}
	return 0;
}

void audit_opts_free(struct audit_opts *o)
{
	for (size_t i = 0; i < o->n_ignores; i++) {
		free(o->ignores[i].check);
		free(o->ignores[i].glob);
	}
	free(o->ignores);
	memset(o, 0, sizeof(*o));
}

static bool ignored(const struct audit_opts *o, const struct audit_check *c, const char *evidence)
{
	for (size_t i = 0; o && i < o->n_ignores; i++)
		if (strcmp(o->ignores[i].check, c->id) == 0 &&
		    (o->ignores[i].glob == NULL || fnmatch(o->ignores[i].glob, evidence, 0) == 0))
			return true;
	return false;
}

static void add_finding(struct walk *w, const struct audit_check *c, const char *evidence, const char *detail,
			const char *layer)
{
	struct audit_report *rep = w->rep;
	struct audit_finding *f;

	if (c == NULL)
		return;
	if (ignored(w->o, c, evidence)) {
		rep->ignored++;
		return;
	}
	if (rep->n_findings == rep->cap_findings) {
		size_t cap = rep->cap_findings ? rep->cap_findings * 2 : 16;
		struct audit_finding *n = realloc(rep->findings, cap * sizeof(*n));
		if (n == NULL)
			return;
		rep->findings = n;
		rep->cap_findings = cap;
	}
	f = &rep->findings[rep->n_findings++];
	f->check = c;
	f->evidence = strdup(evidence);
	f->detail = detail ? strdup(detail) : NULL;
	f->layer = layer ? strdup(layer) : NULL;
}

static const char *layer_digest(struct walk *w, size_t layer)
{
	return layer < w->img->manifest.n_layers ? w->img->manifest.layers[layer].digest : NULL;
}

/* --- the walk --- */

static size_t mark_layer(struct strmap *m, const char *path)
{
	return (size_t)(uintptr_t)strmap_get(m, path);
}

/*
 * Layers are read in parallel (decompression and both digests are most of
 * an audit's time), each into a struct layer_scan; the scans are then
 * merged in layer order, which is where whiteouts and replacements act.
 */
enum scan_kind { SCAN_NORMAL, SCAN_WHITEOUT, SCAN_OPAQUE, SCAN_UNSAFE };

struct scan_entry {
	char *path; /* cleaned; the raw name for SCAN_UNSAFE */
	char *link; /* a hard link's cleaned target, or the detail of SCAN_UNSAFE */
	uint8_t kind;
	uint32_t mode;
	uint64_t size;
};

struct layer_scan {
	struct scan_entry *entries;
	size_t n_entries, cap_entries;
	struct hit *hits;
	size_t n_hits;
	struct captured *caps;
	size_t n_caps;
	char *buf;
	size_t layer;
	int rc;
	struct err *err;
};

static int read_entry(struct layer_scan *ls, struct layer_reader *lr, size_t max, size_t *len, struct err **e)
{
	size_t n = 0;

	for (;;) {
		ssize_t r = layer_read_data(lr, ls->buf + n, max - n, e);
		if (r < 0)
			return (int)r;
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == max)
			break;
	}
	*len = n;
	return 0;
}

static int add_hit(struct layer_scan *ls, const char *path, const struct audit_check *c, const char *detail)
{
	struct hit *n = realloc(ls->hits, (ls->n_hits + 1) * sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	ls->hits = n;
	n[ls->n_hits].path = strdup(path);
	n[ls->n_hits].layer = ls->layer;
	n[ls->n_hits].check = c;
	n[ls->n_hits].detail = detail ? strdup(detail) : NULL;
	ls->n_hits++;
	return 0;
}

static bool is_package_db(const char *path)
{
	return strcmp(path, DPKG_STATUS) == 0 || strcmp(path, APK_DB) == 0 ||
	       (strncmp(path, DPKG_STATUS_D, sizeof(DPKG_STATUS_D) - 1) == 0 &&
		!strchr(path + sizeof(DPKG_STATUS_D) - 1, '/'));
}

static bool is_captured(const char *path)
{
	for (size_t i = 0; i < sizeof(captured_paths) / sizeof(captured_paths[0]); i++)
		if (strcmp(path, captured_paths[i]) == 0)
			return true;
	return false;
}

/* A whole small file kept for the checks after the walk. */
static int capture(struct layer_scan *ls, struct layer_reader *lr, const char *path, int64_t size, struct err **e)
{
	struct captured *caps;
	char *data;
	size_t len = 0, cap = size > 0 && size < CAPTURE_MAX ? (size_t)size : 0;

	if (size > CAPTURE_MAX)
		return 0;
	data = malloc(cap + 1);
	if (data == NULL)
		return err_set(e, ENOMEM, "audit");
	for (;;) {
		ssize_t n = layer_read_data(lr, data + len, cap - len, e);
		if (n < 0) {
			free(data);
			return (int)n;
		}
		len += (size_t)n;
		if (n == 0 || len == cap)
			break;
	}
	data[len] = '\0';
	caps = realloc(ls->caps, (ls->n_caps + 1) * sizeof(*caps));
	if (caps == NULL) {
		free(data);
		return err_set(e, ENOMEM, "audit");
	}
	ls->caps = caps;
	caps[ls->n_caps++] = (struct captured){.layer = ls->layer, .data = data, .len = len, .path = strdup(path)};
	return 0;
}

static int scan_file(struct layer_scan *ls, struct layer_reader *lr, const char *path, int64_t size, struct err **e)
{
	/* Documentation and test data of packages hold example keys. */
	const struct audit_check *named = audit_scan_path(path) ? audit_secret_file(path) : NULL, *found;
	const char *kind = NULL;
	size_t len = 0;
	int r;

	if (is_captured(path) || is_package_db(path))
		return capture(ls, lr, path, size, e);
	if (named) {
		if ((r = read_entry(ls, lr, SECRET_FILE_MAX, &len, e)) < 0)
			return r;
		if (audit_secret_file_confirmed(named, path, ls->buf, len))
			return add_hit(ls, path, named,
				       named == audit_check_find("private-key") ? "PEM private key" : NULL);
	} else {
		if (size > SCAN_MAX || size <= 0 || !audit_scan_path(path))
			return 0;
		if ((r = read_entry(ls, lr, SCAN_MAX, &len, e)) < 0)
			return r;
	}
	/* Binary files hold no PEM or tokens worth reporting. */
	if (memchr(ls->buf, '\0', len < 8192 ? len : 8192))
		return 0;
	found = audit_scan_content(ls->buf, len, &kind);
	return found ? add_hit(ls, path, found, kind) : 0;
}

static int add_entry(struct layer_scan *ls, const char *path, const char *link, enum scan_kind kind, uint32_t mode,
		     uint64_t size)
{
	struct scan_entry *se;

	if (ls->n_entries == ls->cap_entries) {
		size_t cap = ls->cap_entries ? ls->cap_entries * 2 : 256;
		struct scan_entry *n = realloc(ls->entries, cap * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		ls->entries = n;
		ls->cap_entries = cap;
	}
	se = &ls->entries[ls->n_entries];
	se->path = strdup(path);
	se->link = link ? strdup(link) : NULL;
	se->kind = (uint8_t)kind;
	se->mode = mode;
	se->size = size;
	if (se->path == NULL || (link && se->link == NULL)) {
		free(se->path);
		free(se->link);
		return -ENOMEM;
	}
	ls->n_entries++;
	return 0;
}

static int scan_entry(struct layer_scan *ls, struct layer_reader *lr, struct archive_entry *ent, struct err **e)
{
	const char *raw = archive_entry_pathname(ent), *link = archive_entry_hardlink(ent);
	char path[4096], target[4096];
	int kind, r;

	if (raw == NULL)
		return 0;
	if (tarpath_clean(raw, path, sizeof(path)) < 0 ||
	    (link && (tarpath_clean(link, target, sizeof(target)) < 0 || target[0] == '\0'))) {
		char detail[4200];
		snprintf(detail, sizeof(detail), "%s '%s' leaves the rootfs", link ? "hard link target" : "entry",
			 link ? link : raw);
		return add_entry(ls, raw, detail, SCAN_UNSAFE, 0, 0) < 0 ? err_set(e, ENOMEM, "audit") : 0;
	}
	kind = tarpath_classify(path, target, sizeof(target));
	if (kind == TARPATH_WHITEOUT || kind == TARPATH_OPAQUE)
		return add_entry(ls, target, NULL, kind == TARPATH_WHITEOUT ? SCAN_WHITEOUT : SCAN_OPAQUE, 0, 0) < 0
			   ? err_set(e, ENOMEM, "audit")
			   : 0;
	if (kind != TARPATH_NORMAL)
		return 0;
	if (link)
		tarpath_clean(link, target, sizeof(target));
	r = add_entry(ls, path, link ? target : NULL, SCAN_NORMAL,
		      link ? (uint32_t)(S_IFREG | (archive_entry_perm(ent) & 07777))
			   : (uint32_t)archive_entry_mode(ent),
		      (uint64_t)archive_entry_size(ent));
	if (r < 0)
		return err_set(e, ENOMEM, "audit");
	if (!link && archive_entry_filetype(ent) == AE_IFREG)
		return scan_file(ls, lr, path, archive_entry_size(ent), e);
	return 0;
}

static int scan_layer(struct store *s, const struct store_loaded *img, struct layer_scan *ls, struct err **e)
{
	const struct descriptor *d = &img->manifest.layers[ls->layer];
	struct layer_reader lr;
	struct archive_entry *ent;
	int fd, r;

	ls->buf = malloc(SECRET_FILE_MAX + 1);
	if (ls->buf == NULL)
		return err_set(e, ENOMEM, "audit");
	if ((r = store_open_blob(s, d->digest, d->size, &fd, e)) < 0)
		return r;
	if ((r = layer_open(&lr, fd, d->digest, img->config.diff_ids[ls->layer], e)) == 0) {
		while ((r = layer_next(&lr, &ent, e)) == 1)
			if ((r = scan_entry(ls, &lr, ent, e)) < 0)
				break;
		layer_close(&lr);
	}
	close(fd);
	free(ls->buf);
	ls->buf = NULL;
	return r;
}

static void layer_scan_free(struct layer_scan *ls)
{
	for (size_t i = 0; i < ls->n_entries; i++) {
		free(ls->entries[i].path);
		free(ls->entries[i].link);
	}
	free(ls->entries);
	for (size_t i = 0; i < ls->n_hits; i++) {
		free(ls->hits[i].path);
		free(ls->hits[i].detail);
	}
	free(ls->hits);
	for (size_t i = 0; i < ls->n_caps; i++) {
		free(ls->caps[i].data);
		free(ls->caps[i].path);
	}
	free(ls->caps);
	free(ls->buf);
	err_free(&ls->err);
}

struct scan_pool {
	struct store *s;
	const struct store_loaded *img;
	struct layer_scan *scans;
	size_t next;
	pthread_mutex_t lock;
};

static void *scan_worker(void *arg)
{
	struct scan_pool *pool = arg;

	for (;;) {
		size_t i;
		pthread_mutex_lock(&pool->lock);
		i = pool->next++;
		pthread_mutex_unlock(&pool->lock);
		if (i >= pool->img->manifest.n_layers)
			return NULL;
		pool->scans[i].rc = scan_layer(pool->s, pool->img, &pool->scans[i], &pool->scans[i].err);
	}
}

/* Scan every layer, up to one thread per CPU. */
static int scan_layers(struct store *s, const struct store_loaded *img, struct layer_scan *scans, struct err **e)
{
	struct scan_pool pool = {.s = s, .img = img, .scans = scans};
	size_t n = img->manifest.n_layers;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t threads = cpus > 1 ? (size_t)cpus : 1;
	pthread_t tids[8];
	size_t started = 0;

	if (threads > 8)
		threads = 8;
	if (threads > n)
		threads = n;
	pthread_mutex_init(&pool.lock, NULL);
	for (size_t i = 0; i < n; i++)
		scans[i].layer = i;
	for (size_t t = 1; t < threads; t++)
		if (pthread_create(&tids[started], NULL, scan_worker, &pool) == 0)
			started++;
	scan_worker(&pool);
	for (size_t t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
	pthread_mutex_destroy(&pool.lock);
	for (size_t i = 0; i < n; i++)
		if (scans[i].rc < 0) {
			err_setx(e, scans[i].err ? scans[i].err->code : EIO, "%s",
				 scans[i].err && scans[i].err->msg ? scans[i].err->msg : "audit: layer scan failed");
			return scans[i].rc;
		}
	return 0;
}

/* Replay one layer's scan onto the final-state maps. */
static int merge_layer(struct walk *w, struct layer_scan *ls)
{
	w->layer = ls->layer;
	w->layer_digest = layer_digest(w, ls->layer);
	for (size_t i = 0; i < ls->n_entries; i++) {
		struct scan_entry *se = &ls->entries[i];
		struct fentry *f;
		void *old = NULL;
		switch (se->kind) {
		case SCAN_UNSAFE:
			add_finding(w, audit_check_find("unsafe-path"), se->path, se->link, w->layer_digest);
			continue;
		case SCAN_WHITEOUT:
		case SCAN_OPAQUE:
			if (strmap_put(se->kind == SCAN_WHITEOUT ? &w->whiteouts : &w->opaques, se->path,
				       (void *)(uintptr_t)(ls->layer + 1), NULL) < 0)
				return -ENOMEM;
			continue;
		}
		w->rep->files++;
		f = malloc(sizeof(*f));
		if (f == NULL)
			return -ENOMEM;
		f->layer = (uint32_t)ls->layer;
		f->mode = se->mode;
		f->size = se->size;
		if (se->link) {
			/* a hard link has the mode of its target */
			struct fentry *t = strmap_get(&w->files, se->link);
			if (t)
				f->mode = t->mode;
		}
		if (strmap_put(&w->files, se->path, f, &old) < 0) {
			free(f);
			return -ENOMEM;
		}
		free(old);
	}
	/* hits and captured files move over */
	if (ls->n_hits) {
		struct hit *n = realloc(w->hits, (w->n_hits + ls->n_hits) * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		w->hits = n;
		memcpy(w->hits + w->n_hits, ls->hits, ls->n_hits * sizeof(*n));
		w->n_hits += ls->n_hits;
		ls->n_hits = 0;
	}
	for (size_t i = 0; i < ls->n_caps; i++) {
		struct captured *c = &ls->caps[i];
		if (is_package_db(c->path)) {
			struct captured *dbs = realloc(w->dbs, (w->n_dbs + 1) * sizeof(*dbs));
			if (dbs == NULL)
				return -ENOMEM;
			w->dbs = dbs;
			w->dbs[w->n_dbs++] = *c;
		} else {
			struct captured *copy = malloc(sizeof(*copy));
			void *old = NULL;
			if (copy == NULL)
				return -ENOMEM;
			*copy = *c;
			if (strmap_put(&w->captured, c->path, copy, &old) < 0) {
				free(copy);
				return -ENOMEM;
			}
			if (old) {
				free(((struct captured *)old)->data);
				free(((struct captured *)old)->path);
				free(old);
			}
		}
		c->data = c->path = NULL;
	}
	return 0;
}

/* Is the version of path that layer wrote still in the final rootfs? */
static bool live(struct walk *w, const char *path, size_t layer)
{
	struct fentry *f = strmap_get(&w->files, path);
	char buf[4096];

	if (f == NULL || f->layer != layer)
		return false;
	if (mark_layer(&w->whiteouts, path) > layer + 1)
		return false;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *slash = strrchr(buf, '/');; slash = strrchr(buf, '/')) {
		struct fentry *a;
		if (slash)
			*slash = '\0';
		else
			buf[0] = '\0';
		if (mark_layer(&w->whiteouts, buf) > layer + 1 || mark_layer(&w->opaques, buf) > layer + 1)
			return false;
		a = strmap_get(&w->files, buf);
		if (a && a->layer > layer && !S_ISDIR(a->mode))
			return false;
		if (buf[0] == '\0')
			return true;
	}
}

static const struct {
	const char *prefix;
	bool (*counts)(const char *rest);
} caches[] = {
    {"var/cache/apt/archives/", NULL}, {"var/lib/apt/lists/", NULL}, {"var/cache/apk/", NULL},
    {"root/.cache/pip/", NULL},	       {"var/cache/yum/", NULL},     {"var/cache/dnf/", NULL},
    {"root/.npm/_cacache/", NULL},
};

static bool cache_file_counts(const char *rest)
{
	/* apt's lock and partial/ are there even in a clean image */
	return strcmp(rest, "lock") != 0 && strncmp(rest, "partial", 7) != 0 && strcmp(rest, "auxfiles") != 0 &&
	       strncmp(rest, "auxfiles/", 9) != 0;
}

struct cache_use {
	uint64_t files, bytes;
	size_t layer;
};

static void final_state_checks(struct walk *w)
{
	struct cache_use use[sizeof(caches) / sizeof(caches[0])];
	bool sudo = false;
	char detail[256];

	memset(use, 0, sizeof(use));
	for (size_t i = 0; i < sizeof(use) / sizeof(use[0]); i++)
		use[i].layer = SIZE_MAX;
	strmap_foreach(&w->files, slot)
	{
		struct fentry *f = slot->value;
		const char *path = slot->key;
		if (!live(w, path, f->layer))
			continue;
		if (S_ISREG(f->mode) && (f->mode & (S_ISUID | S_ISGID))) {
			snprintf(detail, sizeof(detail), "mode %04o (%s%s%s)", f->mode & 07777,
				 f->mode & S_ISUID ? "setuid" : "",
				 (f->mode & S_ISUID) && (f->mode & S_ISGID) ? ", " : "",
				 f->mode & S_ISGID ? "setgid" : "");
			add_finding(w, audit_check_find("setuid"), path, detail, layer_digest(w, f->layer));
		}
		if ((S_ISREG(f->mode) && (f->mode & S_IWOTH)) ||
		    (S_ISDIR(f->mode) && (f->mode & S_IWOTH) && !(f->mode & S_ISVTX))) {
			snprintf(detail, sizeof(detail), "%s, mode %04o",
				 S_ISDIR(f->mode) ? "directory without the sticky bit" : "file", f->mode & 07777);
			add_finding(w, audit_check_find("world-writable"), path, detail, layer_digest(w, f->layer));
		}
		if (!sudo && S_ISREG(f->mode) &&
		    (strcmp(path, "usr/bin/sudo") == 0 || strcmp(path, "bin/sudo") == 0 ||
		     strcmp(path, "usr/sbin/sudo") == 0)) {
			sudo = true;
			add_finding(w, audit_check_find("sudo"), path, "sudo lets a user of the container become root",
				    layer_digest(w, f->layer));
		}
		if (S_ISDIR(f->mode)) {
			const char *b = strrchr(path, '/');
			b = b ? b + 1 : path;
			if (strcmp(b, ".git") == 0 && strstr(path, ".git/") == NULL)
				add_finding(w, audit_check_find("git-directory"), path, "a git repository",
					    layer_digest(w, f->layer));
		}
		if (S_ISREG(f->mode)) {
			for (size_t i = 0; i < sizeof(caches) / sizeof(caches[0]); i++) {
				size_t pl = strlen(caches[i].prefix);
				if (strncmp(path, caches[i].prefix, pl) == 0 && cache_file_counts(path + pl)) {
					use[i].files++;
					use[i].bytes += f->size;
					if (f->layer < use[i].layer)
						use[i].layer = f->layer;
				}
			}
		}
	}
	for (size_t i = 0; i < sizeof(caches) / sizeof(caches[0]); i++) {
		char ev[128];
		if (use[i].files == 0)
			continue;
		snprintf(ev, sizeof(ev), "%.*s", (int)strlen(caches[i].prefix) - 1, caches[i].prefix);
		snprintf(detail, sizeof(detail), "%llu files, %.1f MiB", (unsigned long long)use[i].files,
			 (double)use[i].bytes / (1024.0 * 1024.0));
		add_finding(w, audit_check_find("package-cache"), ev, detail, layer_digest(w, use[i].layer));
	}
}

static void report_hits(struct walk *w)
{
	for (size_t i = 0; i < w->n_hits; i++) {
		struct hit *h = &w->hits[i];
		char detail[512];
		const char *state = "";
		if (!live(w, h->path, h->layer)) {
			struct fentry *f = strmap_get(&w->files, h->path);
			state = f && f->layer > h->layer ? "replaced by a later layer, still shipped in this one"
							 : "deleted by a later layer, still shipped in this one";
		}
		snprintf(detail, sizeof(detail), "%s%s%s", h->detail ? h->detail : h->check->title,
			 state[0] ? "; " : "", state);
		add_finding(w, h->check, h->path, detail, layer_digest(w, h->layer));
	}
}

struct account_ctx {
	struct walk *w;
};

static void emit_account(void *ctx, const struct audit_check *c, const char *evidence, const char *detail)
{
	struct walk *w = ctx;
	struct captured *cap = strmap_get(&w->captured, evidence);

	add_finding(w, c, evidence, detail, cap ? layer_digest(w, cap->layer) : NULL);
}

static const char *live_capture(struct walk *w, const char *path)
{
	struct captured *c = strmap_get(&w->captured, path);

	return c && live(w, path, c->layer) ? c->data : NULL;
}

static void config_checks(struct walk *w)
{
	const struct image_config *c = &w->img->config;
	char ev[512];
	size_t layer = 0;

	if (audit_user_is_root(c->user))
		add_finding(w, audit_check_find("user-root"), "config.User",
			    c->user && *c->user ? "USER is root" : "no USER: the process runs as root", NULL);
	for (size_t i = 0; i < c->n_env; i++) {
		const char *eq = strchr(c->env[i], '=');
		char key[256];
		if (eq == NULL)
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)(eq - c->env[i]), c->env[i]);
		if (audit_secret_var(key, eq + 1)) {
			snprintf(ev, sizeof(ev), "ENV %s", key);
			add_finding(w, audit_check_find("secret-env"), ev,
				    "its value is readable by every user of the image", NULL);
		}
	}
	for (size_t i = 0; i < c->n_labels; i++) {
		if (audit_secret_var(c->labels[i].key, c->labels[i].value)) {
			snprintf(ev, sizeof(ev), "label %s", c->labels[i].key);
			add_finding(w, audit_check_find("secret-label"), ev, NULL, NULL);
		}
	}
	/* History steps that made layers map onto the layers in order. */
	for (size_t i = 0; i < c->n_history; i++) {
		const struct history_entry *h = &c->history[i];
		if (audit_remote_source(h->created_by)) {
			snprintf(ev, sizeof(ev), "history[%zu]", i);
			add_finding(w, audit_check_find("remote-source"), ev, h->created_by,
				    h->empty_layer ? NULL : layer_digest(w, layer));
		}
		if (!h->empty_layer)
			layer++;
	}
	if (w->rep->image) {
		struct image_ref ref;
		if (ref_parse(w->rep->image, &ref, NULL) == 0) {
			if (ref.tag && strcmp(ref.tag, "latest") == 0 && ref.digest[0] == '\0')
				add_finding(w, audit_check_find("latest-tag"), w->rep->image,
					    "'latest' moves: the image checked may not be the one that runs", NULL);
			ref_free(&ref);
		}
	}
}

struct pkg_ctx {
	struct walk *w;
	const char *type;
	size_t layer; /* of this version of the database */
	bool final;   /* the live version: add the packages */
};

static void add_package(void *ctx, const char *name, const char *version, const char *arch, const char *source,
			const char *license)
{
	struct pkg_ctx *p = ctx;
	struct audit_report *rep = p->w->rep;
	struct package *pk;

	for (size_t i = 0; i < rep->n_packages; i++) {
		pk = &rep->packages[i];
		if (strcmp(pk->type, p->type) == 0 && strcmp(pk->name, name) == 0 &&
		    strcmp(pk->version, version) == 0 && strcmp(pk->arch ? pk->arch : "", arch ? arch : "") == 0)
			return;
	}
	if (rep->n_packages == rep->cap_packages) {
		size_t cap = rep->cap_packages ? rep->cap_packages * 2 : 64;
		struct package *n = realloc(rep->packages, cap * sizeof(*n));
		if (n == NULL)
			return;
		rep->packages = n;
		rep->cap_packages = cap;
	}
	pk = &rep->packages[rep->n_packages++];
	memset(pk, 0, sizeof(*pk));
	pk->type = strdup(p->type);
	pk->name = strdup(name);
	pk->version = strdup(version);
	pk->arch = arch && *arch ? strdup(arch) : NULL;
	pk->source = source ? strdup(source) : NULL;
	pk->license = license ? strdup(license) : NULL;
	pk->layer = layer_digest(p->w, p->layer) ? strdup(layer_digest(p->w, p->layer)) : NULL;
}

/* The live database versions give the packages; each is attributed to
 * the earliest layer whose version of a database listed it. */
static void inventory(struct walk *w)
{
	for (size_t i = 0; i < w->n_dbs; i++) {
		struct pkg_ctx p = {.w = w, .layer = w->dbs[i].layer};
		if (!live(w, w->dbs[i].path, w->dbs[i].layer))
			continue;
		p.type = strcmp(w->dbs[i].path, APK_DB) == 0 ? "apk" : "deb";
		if (p.type[0] == 'a')
			sbom_parse_apk(w->dbs[i].data, w->dbs[i].len, add_package, &p);
		else
			sbom_parse_dpkg(w->dbs[i].data, w->dbs[i].len, add_package, &p);
	}
	/* earliest layer: look through the older versions */
	for (size_t k = 0; k < w->rep->n_packages; k++) {
		struct package *pk = &w->rep->packages[k];
		for (size_t i = 0; i < w->n_dbs; i++) {
			char needle[600];
			if (w->dbs[i].layer >= w->img->manifest.n_layers || !pk->layer ||
			    strcmp(layer_digest(w, w->dbs[i].layer), pk->layer) == 0)
				continue;
			snprintf(needle, sizeof(needle), "%s%s\n", pk->type[0] == 'a' ? "P:" : "Package: ", pk->name);
			if (memmem(w->dbs[i].data, w->dbs[i].len, needle, strlen(needle))) {
				/* the dbs are in layer order: the first hit is the earliest */
				free(pk->layer);
				pk->layer = strdup(layer_digest(w, w->dbs[i].layer));
				break;
			}
		}
	}
}

static void os_release(struct walk *w)
{
	const char *text = live_capture(w, "etc/os-release");

	if (text == NULL)
		text = live_capture(w, "usr/lib/os-release");
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		char **dst = strncmp(line, "ID=", 3) == 0	     ? &w->rep->os_id
			     : strncmp(line, "VERSION_ID=", 11) == 0 ? &w->rep->os_version
								     : NULL;
		if (dst && *dst == NULL) {
			const char *v = strchr(line, '=') + 1;
			size_t vl = n - (size_t)(v - line);
			if (vl && *v == '"') {
				v++;
				vl = vl >= 2 ? vl - 2 : 0;
			}
			*dst = strndup(v, vl);
		}
		line = nl ? nl + 1 : NULL;
	}
}

static int compare_findings(const void *a, const void *b)
{
	const struct audit_finding *x = a, *y = b;
	int c;

	if (x->check->severity != y->check->severity)
		return (int)y->check->severity - (int)x->check->severity;
	if ((c = strcmp(x->check->id, y->check->id)) != 0)
		return c;
	return strcmp(x->evidence, y->evidence);
}

static void free_captured(void *p)
{
	struct captured *c = p;

	if (c) {
		free(c->data);
		free(c->path);
	}
	free(c);
}

int audit_loaded(struct store *s, const struct store_loaded *img, const char *name, const struct audit_opts *o,
		 struct audit_report *rep, struct err **e)
{
	struct walk w = {.rep = rep, .img = img, .o = o};
	struct layer_scan *scans;
	int r;

	memset(rep, 0, sizeof(*rep));
	rep->image = name ? strdup(name) : NULL;
	rep->digest = strdup(img->desc.digest);
	rep->layers = img->manifest.n_layers;
	scans = calloc(img->manifest.n_layers + 1, sizeof(*scans));
	if (scans == NULL)
		return err_set(e, ENOMEM, "audit");
	strmap_init(&w.files);
	strmap_init(&w.whiteouts);
	strmap_init(&w.opaques);
	strmap_init(&w.captured);
	r = scan_layers(s, img, scans, e);
	for (size_t i = 0; r == 0 && i < img->manifest.n_layers; i++)
		if (merge_layer(&w, &scans[i]) < 0)
			r = err_set(e, ENOMEM, "audit");
	for (size_t i = 0; i < img->manifest.n_layers; i++)
		layer_scan_free(&scans[i]);
	free(scans);
	if (r == 0) {
		report_hits(&w);
		final_state_checks(&w);
		audit_accounts(live_capture(&w, "etc/passwd"), live_capture(&w, "etc/shadow"),
			       live_capture(&w, "etc/group"), emit_account, &w);
		config_checks(&w);
		os_release(&w);
		inventory(&w);
		if (rep->n_findings)
			qsort(rep->findings, rep->n_findings, sizeof(*rep->findings), compare_findings);
	}
	strmap_free(&w.files, free);
	strmap_free(&w.whiteouts, NULL);
	strmap_free(&w.opaques, NULL);
	strmap_free(&w.captured, free_captured);
	for (size_t i = 0; i < w.n_dbs; i++) {
		free(w.dbs[i].data);
		free(w.dbs[i].path);
	}
	free(w.dbs);
	for (size_t i = 0; i < w.n_hits; i++) {
		free(w.hits[i].path);
		free(w.hits[i].detail);
	}
	free(w.hits);
	if (r < 0)
		audit_report_free(rep);
	return r;
}

static int audit_path(const char *path, const struct audit_opts *o, struct audit_report *rep, struct err **e)
{
	char tmpl[] = "/tmp/casulo-audit-XXXXXX";
	const char *tmpdir = getenv("TMPDIR");
	char dir[4096], **names = NULL;
	struct store scratch;
	int r;

	if (tmpdir && *tmpdir) {
		snprintf(dir, sizeof(dir), "%s/casulo-audit-XXXXXX", tmpdir);
	} else {
		snprintf(dir, sizeof(dir), "%s", tmpl);
	}
	if (mkdtemp(dir) == NULL)
		return err_set(e, errno, "audit: scratch store in '%s'", dir);
	if ((r = store_open(&scratch, dir, STORE_SHARED, e)) == 0) {
		r = image_import_any(&scratch, path, NULL, &names, e);
		if (r == 0 && (names == NULL || names[0] == NULL))
			r = err_setx(e, EINVAL, "'%s': no image in it", path);
		if (r == 0 && names[1])
			r = err_setx(e, EINVAL, "'%s': holds several images; import it and audit each by name", path);
		if (r == 0) {
			struct store_image im;
			struct store_loaded l;
			if ((r = store_find(&scratch, names[0], &im, e)) == 0) {
				if ((r = store_load(&scratch, &im.manifest, &l, e)) == 0) {
					r = audit_loaded(&scratch, &l, names[0], o, rep, e);
					store_loaded_free(&l);
				}
				free(im.name);
				descriptor_free(&im.manifest);
			}
		}
		for (size_t i = 0; names && names[i]; i++)
			free(names[i]);
		free(names);
		store_close(&scratch);
	}
	rm_rf_dir(dir);
	return r;
}

int audit_image(struct store *s, const char *what, const struct audit_opts *o, struct audit_report *rep, struct err **e)
{
	struct store_image im;
	struct store_loaded l;
	struct stat st;
	int r;

	if (stat(what, &st) == 0)
		return audit_path(what, o, rep, e);
	if ((r = store_find(s, what, &im, e)) < 0)
		return r;
	if ((r = store_load(s, &im.manifest, &l, e)) == 0) {
		r = audit_loaded(s, &l, im.name, o, rep, e);
		store_loaded_free(&l);
	}
	free(im.name);
	descriptor_free(&im.manifest);
	return r;
}

void audit_report_free(struct audit_report *rep)
{
	for (size_t i = 0; i < rep->n_findings; i++) {
		free(rep->findings[i].evidence);
		free(rep->findings[i].detail);
		free(rep->findings[i].layer);
	}
	free(rep->findings);
	for (size_t i = 0; i < rep->n_packages; i++) {
		struct package *p = &rep->packages[i];
		free(p->type);
		free(p->name);
		free(p->version);
		free(p->arch);
		free(p->source);
		free(p->license);
		free(p->layer);
	}
	free(rep->packages);
	free(rep->image);
	free(rep->digest);
	free(rep->os_id);
	free(rep->os_version);
	memset(rep, 0, sizeof(*rep));
}

enum audit_severity audit_report_max(const struct audit_report *rep)
{
	enum audit_severity m = AUDIT_SEVERITY_NONE;

	for (size_t i = 0; i < rep->n_findings; i++)
		if (rep->findings[i].check->severity > m)
			m = rep->findings[i].check->severity;
	return m;
}

size_t audit_report_count(const struct audit_report *rep, enum audit_severity at_least)
{
	size_t n = 0;

	for (size_t i = 0; i < rep->n_findings; i++)
		if (rep->findings[i].check->severity >= at_least)
			n++;
	return n;
}

/* --- outputs --- */

static void write_text(const struct audit_report *rep, FILE *out)
{
	size_t counts[AUDIT_CRITICAL + 1] = {0};

	fprintf(out, "image %s (%s): %zu layers, %llu files, %zu packages\n", rep->image ? rep->image : "?",
		rep->digest ? rep->digest : "?", rep->layers, rep->files, rep->n_packages);
	for (size_t i = 0; i < rep->n_findings; i++) {
		const struct audit_finding *f = &rep->findings[i];
		char up[16];
		size_t k;
		for (k = 0; audit_severity_name(f->check->severity)[k] && k + 1 < sizeof(up); k++)
			up[k] = (char)toupper((unsigned char)audit_severity_name(f->check->severity)[k]);
		up[k] = '\0';
		counts[f->check->severity]++;
		fprintf(out, "%-8s %-18s %s\n", up, f->check->id, f->evidence);
		fprintf(out, "         %s%s%s\n", f->check->title, f->detail ? ": " : "", f->detail ? f->detail : "");
		fprintf(out, "         layer: %s\n", f->layer ? f->layer : "(image config)");
		fprintf(out, "         fix: %s\n", f->check->fix);
	}
	fprintf(out, "%zu findings: %zu critical, %zu high, %zu medium, %zu low, %zu info", rep->n_findings,
		counts[AUDIT_CRITICAL], counts[AUDIT_HIGH], counts[AUDIT_MEDIUM], counts[AUDIT_LOW],
		counts[AUDIT_INFO]);
	if (rep->ignored)
		fprintf(out, " (%zu ignored)", rep->ignored);
	fprintf(out, "\n");
}

static json_object *finding_json(const struct audit_finding *f)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "check", json_object_new_string(f->check->id));
	json_object_object_add(j, "severity", json_object_new_string(audit_severity_name(f->check->severity)));
	json_object_object_add(j, "title", json_object_new_string(f->check->title));
	json_object_object_add(j, "evidence", json_object_new_string(f->evidence));
	json_object_object_add(j, "detail", f->detail ? json_object_new_string(f->detail) : NULL);
	json_object_object_add(j, "layer", f->layer ? json_object_new_string(f->layer) : NULL);
	json_object_object_add(j, "fix", json_object_new_string(f->check->fix));
	return j;
}

static json_object *report_json(const struct audit_report *rep)
{
	json_object *j = json_object_new_object(), *list = json_object_new_array(), *sum = json_object_new_object();

	json_object_object_add(j, "image", rep->image ? json_object_new_string(rep->image) : NULL);
	json_object_object_add(j, "digest", rep->digest ? json_object_new_string(rep->digest) : NULL);
	json_object_object_add(j, "layers", json_object_new_int64((int64_t)rep->layers));
	json_object_object_add(j, "files", json_object_new_int64((int64_t)rep->files));
	json_object_object_add(j, "packages", json_object_new_int64((int64_t)rep->n_packages));
	for (size_t i = 0; i < rep->n_findings; i++)
		json_object_array_add(list, finding_json(&rep->findings[i]));
	json_object_object_add(j, "findings", list);
	for (int s = AUDIT_CRITICAL; s >= AUDIT_INFO; s--) {
		size_t n = 0;
		for (size_t i = 0; i < rep->n_findings; i++)
			n += rep->findings[i].check->severity == (enum audit_severity)s;
		json_object_object_add(sum, audit_severity_name((enum audit_severity)s),
				       json_object_new_int64((int64_t)n));
	}
	json_object_object_add(j, "summary", sum);
	json_object_object_add(j, "ignored", json_object_new_int64((int64_t)rep->ignored));
	return j;
}

static const char *sarif_level(enum audit_severity s)
{
	return s >= AUDIT_HIGH ? "error" : s == AUDIT_MEDIUM ? "warning" : "note";
}

static json_object *report_sarif(const struct audit_report *rep)
{
	json_object *doc = json_object_new_object(), *runs = json_object_new_array(), *run = json_object_new_object();
	json_object *tool = json_object_new_object(), *driver = json_object_new_object(),
		    *rules = json_object_new_array();
	json_object *results = json_object_new_array();

	json_object_object_add(doc, "$schema", json_object_new_string("https://json.schemastore.org/sarif-2.1.0.json"));
	json_object_object_add(doc, "version", json_object_new_string("2.1.0"));
	json_object_object_add(driver, "name", json_object_new_string("casulo-audit"));
	json_object_object_add(driver, "version", json_object_new_string(CASULO_VERSION));
	for (const struct audit_check *c = audit_checks; c->id; c++) {
		json_object *r = json_object_new_object(), *sd = json_object_new_object(),
			    *help = json_object_new_object();
		json_object *props = json_object_new_object(), *conf = json_object_new_object();
		json_object_object_add(r, "id", json_object_new_string(c->id));
		json_object_object_add(sd, "text", json_object_new_string(c->title));
		json_object_object_add(r, "shortDescription", sd);
		json_object_object_add(help, "text", json_object_new_string(c->fix));
		json_object_object_add(r, "help", help);
		json_object_object_add(conf, "level", json_object_new_string(sarif_level(c->severity)));
		json_object_object_add(r, "defaultConfiguration", conf);
		json_object_object_add(props, "severity", json_object_new_string(audit_severity_name(c->severity)));
		json_object_object_add(r, "properties", props);
		json_object_array_add(rules, r);
	}
	json_object_object_add(driver, "rules", rules);
	json_object_object_add(tool, "driver", driver);
	json_object_object_add(run, "tool", tool);
	for (size_t i = 0; i < rep->n_findings; i++) {
		const struct audit_finding *f = &rep->findings[i];
		json_object *res = json_object_new_object(), *msg = json_object_new_object(),
			    *locs = json_object_new_array();
		json_object *loc = json_object_new_object(), *phys = json_object_new_object(),
			    *art = json_object_new_object();
		json_object *props = json_object_new_object();
		char text[1024];
		snprintf(text, sizeof(text), "%s: %s%s%s", f->check->title, f->evidence, f->detail ? " (" : "",
			 f->detail ? f->detail : "");
		if (f->detail)
			strncat(text, ")", sizeof(text) - strlen(text) - 1);
		json_object_object_add(res, "ruleId", json_object_new_string(f->check->id));
		json_object_object_add(res, "level", json_object_new_string(sarif_level(f->check->severity)));
		json_object_object_add(msg, "text", json_object_new_string(text));
		json_object_object_add(res, "message", msg);
		json_object_object_add(art, "uri", json_object_new_string(f->evidence));
		json_object_object_add(phys, "artifactLocation", art);
		json_object_object_add(loc, "physicalLocation", phys);
		json_object_array_add(locs, loc);
		json_object_object_add(res, "locations", locs);
		json_object_object_add(props, "severity",
				       json_object_new_string(audit_severity_name(f->check->severity)));
		json_object_object_add(props, "layer", f->layer ? json_object_new_string(f->layer) : NULL);
		json_object_object_add(props, "image", rep->image ? json_object_new_string(rep->image) : NULL);
		json_object_object_add(res, "properties", props);
		json_object_array_add(results, res);
	}
	json_object_object_add(run, "results", results);
	json_object_array_add(runs, run);
	json_object_object_add(doc, "runs", runs);
	return doc;
}

void audit_report_write(const struct audit_report *rep, enum audit_format f, FILE *out)
{
	json_object *j;

	if (f == AUDIT_TEXT) {
		write_text(rep, out);
		return;
	}
	j = f == AUDIT_JSON ? report_json(rep) : report_sarif(rep);
	fprintf(out, "%s\n",
		json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
}
