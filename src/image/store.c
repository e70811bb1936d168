#include "common/file.h"
#include "image/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "image/jsonx.h"
#include "image/ref.h"
#include "image/tarpath.h"
#include "oci/util.h"

#define INDEX_FILE "store/index.json"

int fsync_dir(int dirfd)
{
	return fsync(dirfd) < 0 ? -errno : 0;
}

static int open_dir(int parent, const char *name, int *fd, const char *root, struct err **e)
{
	if (mkdirat(parent, name, 0700) < 0 && errno != EEXIST)
		return err_set(e, errno, "store '%s': mkdir %s", root, name);
	*fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return err_set(e, errno, "store '%s': open %s", root, name);
	return 0;
}

int store_open(struct store *s, const char *root, enum store_mode mode, struct err **e)
{
	int store_fd = -1, r;

	memset(s, 0, sizeof(*s));
	s->root_fd = s->blobs_fd = s->ingest_fd = s->layers_fd = s->tmp_fd = s->containers_fd = s->gc_lock_fd = -1;
	s->root = strdup(root);
	if (s->root == NULL)
		return err_set(e, ENOMEM, "store '%s'", root);
	if ((r = mkdir_p(root, 0700)) < 0) {
		err_set(e, -r, "store '%s': mkdir", root);
		goto fail;
	}
	s->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0) {
		r = err_set(e, errno, "store '%s': open", root);
		goto fail;
	}
	s->gc_lock_fd = openat(s->root_fd, "gc.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->gc_lock_fd < 0 || flock(s->gc_lock_fd, mode == STORE_EXCLUSIVE ? LOCK_EX : LOCK_SH) < 0) {
		r = err_set(e, errno, "store '%s': lock gc.lock", root);
		goto fail;
	}
	if ((r = open_dir(s->root_fd, "store", &store_fd, root, e)) < 0)
		goto fail;
	if (mkdirat(store_fd, "blobs", 0700) < 0 && errno != EEXIST) {
		r = err_set(e, errno, "store '%s': mkdir store/blobs", root);
		goto fail;
	}
	if ((r = open_dir(store_fd, "blobs/sha256", &s->blobs_fd, root, e)) < 0 ||
	    (r = open_dir(s->root_fd, "ingest", &s->ingest_fd, root, e)) < 0 ||
	    (r = open_dir(s->root_fd, "layers", &s->layers_fd, root, e)) < 0 ||
	    (r = open_dir(s->root_fd, "containers", &s->containers_fd, root, e)) < 0 ||
	    (r = open_dir(s->root_fd, "tmp", &s->tmp_fd, root, e)) < 0)
		goto fail;
	if (faccessat(store_fd, "oci-layout", F_OK, 0) < 0) {
		static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
		char path[4096];
		snprintf(path, sizeof(path), "%s/store/oci-layout", root);
		if ((r = write_file_atomic(path, layout, sizeof(layout) - 1, 0644)) < 0) {
			err_set(e, -r, "store '%s': write oci-layout", root);
			goto fail;
		}
	}
	close(store_fd);
	return 0;
fail:
	if (store_fd >= 0)
		close(store_fd);
	store_close(s);
	return r < 0 ? r : -EIO;
}

void store_close(struct store *s)
{
	int *fds[] = {&s->root_fd, &s->blobs_fd,      &s->ingest_fd, &s->layers_fd,
		      &s->tmp_fd,  &s->containers_fd, &s->gc_lock_fd};

	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	free(s->root);
	s->root = NULL;
}

const char *store_blob_path(struct store *s, const char *digest, char *buf, size_t size)
{
	snprintf(buf, size, "%s/store/blobs/sha256/%s", s->root, digest_hex(digest));
	return buf;
}

bool store_has_blob(struct store *s, const char *digest, int64_t size)
{
	struct stat st;

	if (!digest_valid(digest) || fstatat(s->blobs_fd, digest_hex(digest), &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	return S_ISREG(st.st_mode) && (size < 0 || st.st_size == size);
}

int store_open_blob(struct store *s, const char *digest, int64_t size, int *fd, struct err **e)
{
	struct stat st;

	*fd = -1;
	if (!digest_valid(digest))
		return err_setx(e, EINVAL, "blob '%.80s': malformed digest", digest);
	*fd = openat(s->blobs_fd, digest_hex(digest), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return err_set(e, errno, "blob %s: not in the store (pull or import the image again)", digest);
	if (fstat(*fd, &st) < 0 || (size >= 0 && st.st_size != size)) {
		int r = err_setx(e, EIO, "blob %s: size mismatch: expected %lld bytes, the store has %lld", digest,
				 (long long)size, (long long)st.st_size);
		close(*fd);
		*fd = -1;
		return r;
	}
	return 0;
}

int store_read_blob(struct store *s, const char *digest, int64_t size, size_t max, char **buf, size_t *len,
		    struct err **e)
{
	_cleanup_close_ int fd = -1;
	char got[DIGEST_BUF];
	struct stat st;
	char *b;
	int r;

	*buf = NULL;
	if ((r = store_open_blob(s, digest, size, &fd, e)) < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return err_set(e, errno, "blob %s: stat", digest);
	if ((uint64_t)st.st_size > max)
		return err_setx(e, EFBIG, "blob %s: %lld bytes, more than the %zu allowed here", digest,
				(long long)st.st_size, max);
	b = malloc((size_t)st.st_size + 1);
	if (b == NULL)
		return err_set(e, ENOMEM, "blob %s", digest);
	if ((r = pread_full(fd, b, (size_t)st.st_size, 0)) < 0) {
		free(b);
		return err_set(e, -r, "blob %s: read", digest);
	}
	b[st.st_size] = '\0';
	digest_buffer(b, (size_t)st.st_size, got);
	if (strcmp(got, digest) != 0) {
		free(b);
		return err_setx(e, EIO, "blob %s: digest mismatch: expected %s, got %s (the store is damaged)", digest,
				digest, got);
	}
	*buf = b;
	*len = (size_t)st.st_size;
	return 0;
}

/* The partial file of a blob is resumable: hash what it holds. */
static int hash_partial(struct blob_writer *w)
{
	static __thread char buf[256 * 1024];

	if (lseek(w->fd, 0, SEEK_SET) < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		hasher_update(&w->h, buf, (size_t)n);
		w->offset += (uint64_t)n;
	}
}

static void writer_reset(struct blob_writer *w, struct store *s)
{
	memset(w, 0, sizeof(*w));
	w->s = s;
	w->fd = w->lock_fd = -1;
	w->expect_size = -1;
	w->what = "blob";
}

int blob_writer_begin(struct store *s, const char *digest, int64_t size, bool resume, struct blob_writer *w,
		      struct err **e)
{
	char lock_name[96];
	int r;

	writer_reset(w, s);
	if ((r = digest_check(digest, "blob", e)) < 0)
		return r;
	snprintf(w->expect, sizeof(w->expect), "%s", digest);
	w->expect_size = size;
	if (store_has_blob(s, digest, size))
		return 1;
	snprintf(lock_name, sizeof(lock_name), "%s.lock", digest_hex(digest));
	w->lock_fd = openat(s->ingest_fd, lock_name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (w->lock_fd < 0 || flock(w->lock_fd, LOCK_EX) < 0) {
		r = err_set(e, errno, "blob %s: lock", digest);
		blob_writer_abort(w, true);
		return r;
	}
	/* Another process may have stored it while we waited. */
	if (store_has_blob(s, digest, size)) {
		blob_writer_abort(w, true);
		return 1;
	}
	snprintf(w->tmp_name, sizeof(w->tmp_name), "%s.partial", digest_hex(digest));
	w->fd = openat(s->ingest_fd, w->tmp_name, O_RDWR | O_CREAT | O_CLOEXEC | (resume ? 0 : O_TRUNC), 0600);
	if (w->fd < 0) {
		r = err_set(e, errno, "blob %s: create %s/ingest/%s", digest, s->root, w->tmp_name);
		blob_writer_abort(w, true);
		return r;
	}
	if (hasher_init(&w->h) < 0) {
		blob_writer_abort(w, true);
		return err_set(e, ENOMEM, "blob %s", digest);
	}
	if (resume && (r = hash_partial(w)) < 0) {
		err_set(e, -r, "blob %s: read partial download", digest);
		blob_writer_abort(w, false);
		return r;
	}
	if (size >= 0 && w->offset > (uint64_t)size) { /* a bad partial: start again */
		if ((r = blob_writer_restart(w, e)) < 0)
			return r;
	}
	return 0;
}

int blob_writer_begin_anon(struct store *s, struct blob_writer *w, struct err **e)
{
	writer_reset(w, s);
	snprintf(w->tmp_name, sizeof(w->tmp_name), "anon-%d-XXXXXX", (int)getpid());
	{
		char path[4096];
		snprintf(path, sizeof(path), "%s/ingest/%s", s->root, w->tmp_name);
		w->fd = mkostemp(path, O_CLOEXEC);
		if (w->fd < 0)
			return err_set(e, errno, "store '%s': create %s", s->root, path);
		snprintf(w->tmp_name, sizeof(w->tmp_name), "%s", strrchr(path, '/') + 1);
	}
	if (hasher_init(&w->h) < 0) {
		blob_writer_abort(w, false);
		return err_set(e, ENOMEM, "blob");
	}
	return 0;
}

int blob_writer_write(struct blob_writer *w, const void *data, size_t len, struct err **e)
{
	int r;

	if (w->expect_size >= 0 && w->offset + len > (uint64_t)w->expect_size)
		return err_setx(e, EIO, "%s %s: size mismatch: more than the expected %lld bytes", w->what,
				w->expect[0] ? w->expect : "", (long long)w->expect_size);
	if ((r = write_full(w->fd, data, len)) < 0)
		return err_set(e, -r, "%s %s: write %s/ingest/%s", w->what, w->expect, w->s->root, w->tmp_name);
	hasher_update(&w->h, data, len);
	w->offset += len;
	return 0;
}

int blob_writer_restart(struct blob_writer *w, struct err **e)
{
	hasher_free(&w->h);
	if (hasher_init(&w->h) < 0 || ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
		return err_set(e, errno ? errno : ENOMEM, "%s %s: restart", w->what, w->expect);
	w->offset = 0;
	return 0;
}

int blob_writer_commit(struct blob_writer *w, char out[DIGEST_BUF], struct err **e)
{
	char got[DIGEST_BUF];
	int r = 0;

	hasher_final(&w->h, got);
	if (w->expect_size >= 0 && w->offset != (uint64_t)w->expect_size) {
		r = err_setx(e, EIO, "%s %s: size mismatch: expected %lld bytes, got %llu (truncated)", w->what,
			     w->expect, (long long)w->expect_size, (unsigned long long)w->offset);
	} else if (w->expect[0] && strcmp(got, w->expect) != 0) {
		r = err_setx(e, EIO, "%s %s: digest mismatch: expected %s, got %s", w->what, w->expect, w->expect, got);
	}
	if (r < 0) {
		blob_writer_abort(w, false);
		return r;
	}
	if (fsync(w->fd) < 0) {
		r = err_set(e, errno, "%s %s: fsync", w->what, got);
		blob_writer_abort(w, true);
		return r;
	}
	if (fchmod(w->fd, 0644) < 0) {
		r = err_set(e, errno, "%s %s: chmod", w->what, got);
		blob_writer_abort(w, true);
		return r;
	}
	if (store_has_blob(w->s, got, -1)) {
		blob_writer_abort(w, false); /* stored meanwhile (anonymous writers do not lock) */
	} else {
		if (renameat(w->s->ingest_fd, w->tmp_name, w->s->blobs_fd, digest_hex(got)) < 0) {
			r = err_set(e, errno, "%s %s: rename into the store", w->what, got);
			blob_writer_abort(w, true);
			return r;
		}
		w->tmp_name[0] = '\0';
		if (fsync_dir(w->s->blobs_fd) < 0) {
			r = err_set(e, errno, "%s %s: fsync the blobs directory", w->what, got);
			blob_writer_abort(w, false);
			return r;
		}
		blob_writer_abort(w, false);
	}
	if (out)
		memcpy(out, got, DIGEST_BUF);
	return 0;
}

void blob_writer_abort(struct blob_writer *w, bool keep_partial)
{
	if (w->fd >= 0)
		close(w->fd);
	if (!keep_partial && w->tmp_name[0] && w->s)
		unlinkat(w->s->ingest_fd, w->tmp_name, 0);
	if (w->lock_fd >= 0)
		close(w->lock_fd); /* releases the flock; the lock file stays for prune */
	if (w->h.ctx)
		hasher_free(&w->h);
	w->fd = w->lock_fd = -1;
	w->tmp_name[0] = '\0';
}

int store_put_blob(struct store *s, const void *data, size_t len, const char *expect, char out[DIGEST_BUF],
		   struct err **e)
{
	struct blob_writer w;
	char digest[DIGEST_BUF];
	int r;

	if (expect) {
		digest_buffer(data, len, digest);
		if (strcmp(digest, expect) != 0)
			return err_setx(e, EIO, "blob %s: digest mismatch: expected %s, got %s", expect, expect,
					digest);
	} else {
		digest_buffer(data, len, digest);
	}
	r = blob_writer_begin(s, digest, (int64_t)len, false, &w, e);
	if (r < 0)
		return r;
	if (r == 0 && ((r = blob_writer_write(&w, data, len, e)) < 0 || (r = blob_writer_commit(&w, NULL, e)) < 0)) {
		blob_writer_abort(&w, false);
		return r;
	}
	if (out)
		memcpy(out, digest, DIGEST_BUF);
	return 0;
}

/* --- the index: names to manifests --- */

static int index_lock(struct store *s, struct err **e)
{
	int fd = openat(s->root_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		int r = err_set(e, errno, "store '%s': lock", s->root);
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd;
}

static int index_read(struct store *s, struct manifest *idx, struct err **e)
{
	_cleanup_free_ char *buf = NULL;
	char what[4200];
	size_t len;
	int r = read_file_at(s->root_fd, INDEX_FILE, &buf, &len);

	memset(idx, 0, sizeof(*idx));
	if (r == -ENOENT) {
		idx->kind = MANIFEST_INDEX;
		return 0;
	}
	if (r < 0)
		return err_set(e, -r, "store '%s': read %s", s->root, INDEX_FILE);
	snprintf(what, sizeof(what), "store '%s': %s", s->root, INDEX_FILE);
	r = manifest_parse(buf, len, what, idx, e);
	if (r == 0 && idx->kind != MANIFEST_INDEX) {
		manifest_free(idx);
		return err_setx(e, EINVAL, "%s: not an image index", what);
	}
	return r;
}

static json_object *descriptor_json(const struct descriptor *d)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "mediaType", json_object_new_string(d->media_type ? d->media_type : MT_OCI_MANIFEST));
	json_object_object_add(o, "digest", json_object_new_string(d->digest));
	json_object_object_add(o, "size", json_object_new_int64(d->size));
	if (d->os && d->arch) {
		json_object *p = json_object_new_object();
		json_object_object_add(p, "architecture", json_object_new_string(d->arch));
		json_object_object_add(p, "os", json_object_new_string(d->os));
		if (d->variant)
			json_object_object_add(p, "variant", json_object_new_string(d->variant));
		json_object_object_add(o, "platform", p);
	}
	if (d->ref_name) {
		json_object *a = json_object_new_object();
		json_object_object_add(a, ANNOTATION_REF_NAME, json_object_new_string(d->ref_name));
		json_object_object_add(o, "annotations", a);
	}
	return o;
}

static int index_write(struct store *s, const struct manifest *idx, struct err **e)
{
	json_object *doc = json_object_new_object(), *list = json_object_new_array();
	char path[4096];
	const char *text;
	int r;

	json_object_object_add(doc, "schemaVersion", json_object_new_int(2));
	json_object_object_add(doc, "mediaType", json_object_new_string(MT_OCI_INDEX));
	for (size_t i = 0; i < idx->n_manifests; i++)
		json_object_array_add(list, descriptor_json(&idx->manifests[i]));
	json_object_object_add(doc, "manifests", list);
	text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	snprintf(path, sizeof(path), "%s/%s", s->root, INDEX_FILE);
	r = write_file_atomic(path, text, strlen(text), 0644);
	json_object_put(doc);
	if (r == 0) {
		int d = openat(s->root_fd, "store", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (d >= 0) {
			r = fsync_dir(d);
			close(d);
		}
	}
	return r < 0 ? err_set(e, -r, "store '%s': write %s", s->root, INDEX_FILE) : 0;
}

int store_list(struct store *s, struct store_image **images, size_t *n, struct err **e)
{
	struct manifest idx;
	int r = index_read(s, &idx, e);

	*images = NULL;
	*n = 0;
	if (r < 0)
		return r;
	*images = calloc(idx.n_manifests + 1, sizeof(**images));
	if (*images == NULL) {
		manifest_free(&idx);
		return err_set(e, ENOMEM, "store index");
	}
	for (size_t i = 0; i < idx.n_manifests; i++) {
		struct store_image *im = &(*images)[*n];
		if (idx.manifests[i].ref_name == NULL)
			continue;
		im->name = strdup(idx.manifests[i].ref_name);
		if (im->name == NULL || descriptor_copy(&im->manifest, &idx.manifests[i]) < 0) {
			manifest_free(&idx);
			free(im->name);
			im->name = NULL;
			return err_set(e, ENOMEM, "store index");
		}
		(*n)++;
	}
	manifest_free(&idx);
	return 0;
}

void store_images_free(struct store_image *images, size_t n)
{
	for (size_t i = 0; images && i < n; i++) {
		free(images[i].name);
		descriptor_free(&images[i].manifest);
	}
	free(images);
}

/* Replace (manifest != NULL) or drop the entry named name. */
static int index_update(struct store *s, const char *name, const struct descriptor *manifest, struct err **e)
{
	struct manifest idx;
	struct descriptor *list;
	size_t n = 0;
	bool found = false;
	int lock = index_lock(s, e), r;

	if (lock < 0)
		return lock;
	if ((r = index_read(s, &idx, e)) < 0) {
		close(lock);
		return r;
	}
	list = calloc(idx.n_manifests + 2, sizeof(*list));
	if (list == NULL) {
		r = err_set(e, ENOMEM, "store index");
		goto out;
	}
	for (size_t i = 0; i < idx.n_manifests; i++) {
		if (idx.manifests[i].ref_name && strcmp(idx.manifests[i].ref_name, name) == 0) {
			found = true;
			descriptor_free(&idx.manifests[i]);
			continue;
		}
		list[n++] = idx.manifests[i];
	}
	if (manifest) {
		struct descriptor *d = &list[n++];
		int rc = descriptor_copy(d, manifest);
		if (rc == 0) {
			free(d->ref_name);
			d->ref_name = strdup(name);
		}
		if (rc < 0 || d->ref_name == NULL) {
			r = err_set(e, ENOMEM, "store index");
			goto swap;
		}
	} else if (!found) {
		r = err_setx(e, ENOENT, "image '%s': no such image in the store", name);
		goto swap;
	}
	{
		struct manifest out = {.kind = MANIFEST_INDEX, .manifests = list, .n_manifests = n};
		r = index_write(s, &out, e);
	}
swap:
	/* idx's surviving entries moved into list: free them through it. */
	free(idx.manifests);
	idx.manifests = list;
	idx.n_manifests = n;
out:
	manifest_free(&idx);
	close(lock);
	return r;
}

int store_tag(struct store *s, const char *name, const struct descriptor *manifest, struct err **e)
{
	return index_update(s, name, manifest, e);
}

int store_untag(struct store *s, const char *name, struct err **e)
{
	return index_update(s, name, NULL, e);
}

static bool all_hex(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

int store_find(struct store *s, const char *what, struct store_image *out, struct err **e)
{
	struct store_image *images;
	struct image_ref ref;
	const char *norm = NULL;
	size_t n, found = SIZE_MAX;
	bool prefix = strlen(what) >= 6 && strlen(what) <= DIGEST_HEX_LEN && all_hex(what);
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_list(s, &images, &n, e)) < 0)
		return r;
	memset(&ref, 0, sizeof(ref));
	if (!prefix && !digest_valid(what) && ref_parse(what, &ref, NULL) == 0)
		norm = ref.name;
	for (size_t i = 0; i < n && found == SIZE_MAX; i++)
		if (strcmp(images[i].name, what) == 0 || (norm && strcmp(images[i].name, norm) == 0))
			found = i;
	for (size_t i = 0; i < n && found == SIZE_MAX; i++)
		if (strcmp(images[i].manifest.digest, what) == 0 ||
		    (prefix && strncmp(digest_hex(images[i].manifest.digest), what, strlen(what)) == 0))
			found = i;
	if (found == SIZE_MAX) {
		r = err_setx(e, ENOENT, "image '%s': not in the store%s%s%s", what, norm ? " (as '" : "",
			     norm ? norm : "", norm ? "')" : "");
	} else {
		*out = images[found];
		memset(&images[found], 0, sizeof(images[found]));
	}
	ref_free(&ref);
	store_images_free(images, n);
	return r;
}

int store_load(struct store *s, const struct descriptor *manifest, struct store_loaded *out, struct err **e)
{
	char what[128];
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = descriptor_copy(&out->desc, manifest)) < 0)
		return err_set(e, ENOMEM, "manifest");
	if ((r = store_read_blob(s, manifest->digest, manifest->size, MANIFEST_MAX_SIZE, &out->manifest_json,
				 &out->manifest_len, e)) < 0)
		goto fail;
	snprintf(what, sizeof(what), "manifest %s", manifest->digest);
	if ((r = manifest_parse(out->manifest_json, out->manifest_len, what, &out->manifest, e)) < 0)
		goto fail;
	if (out->manifest.kind != MANIFEST_IMAGE) {
		r = err_setx(e, EINVAL, "%s: an image index, not an image manifest", what);
		goto fail;
	}
	if ((r = store_read_blob(s, out->manifest.config.digest, out->manifest.config.size, CONFIG_MAX_SIZE,
				 &out->config_json, &out->config_len, e)) < 0)
		goto fail;
	snprintf(what, sizeof(what), "image config %s", out->manifest.config.digest);
	if ((r = image_config_parse(out->config_json, out->config_len, what, &out->config, e)) < 0)
		goto fail;
	if (out->config.n_diff_ids != out->manifest.n_layers) {
		r = err_setx(e, EINVAL, "%s: %zu diff_ids for the manifest's %zu layers", what, out->config.n_diff_ids,
			     out->manifest.n_layers);
		goto fail;
	}
	return 0;
fail:
	store_loaded_free(out);
	return r;
}

void store_loaded_free(struct store_loaded *l)
{
	descriptor_free(&l->desc);
	manifest_free(&l->manifest);
	image_config_free(&l->config);
	free(l->config_json);
	free(l->manifest_json);
	memset(l, 0, sizeof(*l));
}

/* --- garbage collection --- */

static int mark(struct strmap *live, const char *key)
{
	return strmap_put(live, key, NULL, NULL);
}

/* Blobs and unpacked layers reached from the names, and layers a
 * container made by `casulo run` still uses (containers/ID/layers). */
static int mark_live(struct store *s, struct strmap *blobs, struct strmap *layers, struct err **e)
{
	struct store_image *images;
	size_t n;
	int r = store_list(s, &images, &n, e);
	DIR *d;
	struct dirent *de;

	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct store_loaded l;
		if (mark(blobs, digest_hex(images[i].manifest.digest)) < 0) {
			r = err_set(e, ENOMEM, "prune");
			break;
		}
		if (store_load(s, &images[i].manifest, &l, NULL) < 0)
			continue; /* a damaged image keeps its manifest; the rest is collectable */
		r = mark(blobs, digest_hex(l.manifest.config.digest));
		for (size_t j = 0; r == 0 && j < l.manifest.n_layers; j++)
			r = mark(blobs, digest_hex(l.manifest.layers[j].digest));
		for (size_t j = 0; r == 0 && j < l.config.n_diff_ids; j++)
			r = mark(layers, digest_hex(l.config.diff_ids[j]));
		store_loaded_free(&l);
		if (r < 0)
			r = err_set(e, ENOMEM, "prune");
	}
	store_images_free(images, n);
	if (r < 0)
		return r;
	d = fdopendir(dup(s->containers_fd));
	while (d && (de = readdir(d))) {
		char path[512], *list = NULL, *save = NULL;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/layers", de->d_name);
		if (read_file_at(s->containers_fd, path, &list, NULL) < 0)
			continue;
		for (char *l = strtok_r(list, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
			mark(layers, l);
		free(list);
	}
	if (d)
		closedir(d);
	return 0;
}

static uint64_t size_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? (uint64_t)st.st_size : 0;
}

int store_prune(struct store *s, struct prune_report *rep, struct err **e)
{
	struct strmap blobs, layers;
	DIR *d;
	struct dirent *de;
	int r;

	memset(rep, 0, sizeof(*rep));
	strmap_init(&blobs);
	strmap_init(&layers);
	if ((r = mark_live(s, &blobs, &layers, e)) < 0)
		goto out;
	d = fdopendir(dup(s->blobs_fd));
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || strmap_has(&blobs, de->d_name))
			continue;
		uint64_t sz = size_at(s->blobs_fd, de->d_name);
		if (unlinkat(s->blobs_fd, de->d_name, 0) == 0) {
			rep->blobs++;
			rep->blob_bytes += sz;
		}
	}
	if (d)
		closedir(d);
	fsync_dir(s->blobs_fd);
	/* Partial downloads and their locks: no pull runs while we hold
	 * gc.lock exclusive, so none of them is in use. */
	d = fdopendir(dup(s->ingest_fd));
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(s->ingest_fd, de->d_name, 0) == 0 && len > 8 && strcmp(de->d_name + len - 5, ".lock") != 0)
			rep->partials++;
	}
	if (d)
		closedir(d);
	d = fdopendir(dup(s->layers_fd));
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || strmap_has(&layers, de->d_name))
			continue;
		if (remove_tree_at(s->layers_fd, de->d_name) == 0)
			rep->layers++;
	}
	if (d)
		closedir(d);
	d = fdopendir(dup(s->tmp_fd));
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (remove_tree_at(s->tmp_fd, de->d_name) == 0)
			rep->tmp++;
	}
	if (d)
		closedir(d);
out:
	strmap_free(&blobs, NULL);
	strmap_free(&layers, NULL);
	return r;
}
