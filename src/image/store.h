/*
 * The content-addressed store.  Under its root (default /var/lib/casulo):
 *
 *   store/            an OCI image layout: oci-layout, index.json (names to
 *                     manifests, annotation org.opencontainers.image.ref.name),
 *                     blobs/sha256/HEX
 *   ingest/           partial downloads (HEX.partial) and their locks (HEX.lock)
 *   layers/HEX        unpacked layers by diff_id, for overlay rootfs
 *   containers/ID     containers made by `casulo run`
 *   tmp/              scratch space of imports and unpacks
 *   lock, gc.lock     the index lock; the garbage collector's lock
 *
 * A blob enters only through a blob_writer, which checks its size and
 * digest, fsyncs it, renames it into place and fsyncs the directory: a
 * crash leaves at most a partial file in ingest/, never a wrong blob.
 * index.json is rewritten the same way under `lock`.  Every command holds
 * gc.lock shared; prune holds it exclusive, so that it never collects a
 * blob that a running pull has written but not yet named.
 */
#ifndef CASULO_IMAGE_STORE_H
#define CASULO_IMAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "image/digest.h"
#include "image/manifest.h"

#define STORE_DEFAULT_ROOT "/var/lib/casulo"

struct store {
	char *root;
	int root_fd, blobs_fd, ingest_fd, layers_fd, tmp_fd, containers_fd;
	int gc_lock_fd;
};

enum store_mode { STORE_SHARED, STORE_EXCLUSIVE };

int store_open(struct store *s, const char *root, enum store_mode mode, struct err **e);
void store_close(struct store *s);

/* Is the blob present (with this size, when size >= 0)? */
bool store_has_blob(struct store *s, const char *digest, int64_t size);
/* "ROOT/store/blobs/sha256/HEX" into buf. */
const char *store_blob_path(struct store *s, const char *digest, char *buf, size_t size);
/* Open a blob for reading after checking its size (size < 0: any). */
int store_open_blob(struct store *s, const char *digest, int64_t size, int *fd, struct err **e);
/* Read a small blob whole, checking size and digest again. */
int store_read_blob(struct store *s, const char *digest, int64_t size, size_t max, char **buf, size_t *len,
		    struct err **e);

struct blob_writer {
	struct store *s;
	int fd, lock_fd;
	char tmp_name[96];
	struct hasher h;
	char expect[DIGEST_BUF]; /* "" when unknown */
	int64_t expect_size;	 /* -1 when unknown */
	uint64_t offset;	 /* bytes already written (and hashed) */
	const char *what;	 /* "blob" or "layer", for messages */
};

/*
 * Start writing the blob digest of size bytes (-1: unknown).  Waits for
 * another process writing the same blob.  Returns 1 when the blob is
 * already stored (w is then closed), 0 when w is ready; with resume, a
 * partial download left in ingest/ is kept and w->offset says how much of
 * it there is.
 */
int blob_writer_begin(struct store *s, const char *digest, int64_t size, bool resume, struct blob_writer *w,
		      struct err **e);
/* Start writing a blob whose digest is not known yet. */
int blob_writer_begin_anon(struct store *s, struct blob_writer *w, struct err **e);
int blob_writer_write(struct blob_writer *w, const void *data, size_t len, struct err **e);
/* Throw away what was written (a server ignored a range request). */
int blob_writer_restart(struct blob_writer *w, struct err **e);
/* Check size and digest, then make the blob durable and visible.  out
 * (optional) receives the digest.  Closes w either way; on a mismatch the
 * partial file is removed and the error names both digests. */
int blob_writer_commit(struct blob_writer *w, char out[DIGEST_BUF], struct err **e);
/* Close without storing; keep_partial leaves a resumable partial file. */
void blob_writer_abort(struct blob_writer *w, bool keep_partial);

/* Store a buffer (a manifest, a config) as a blob. */
int store_put_blob(struct store *s, const void *data, size_t len, const char *expect, char out[DIGEST_BUF],
		   struct err **e);

/* One name of the index. */
struct store_image {
	char *name;
	struct descriptor manifest;
};

int store_list(struct store *s, struct store_image **images, size_t *n, struct err **e);
void store_images_free(struct store_image *images, size_t n);
/* Point name at a manifest (replacing what it named). */
int store_tag(struct store *s, const char *name, const struct descriptor *manifest, struct err **e);
/* Remove names; each must exist. */
int store_untag(struct store *s, const char *name, struct err **e);
/*
 * Find an image by what a user typed: a name as given or normalized
 * ("busybox" is docker.io/library/busybox:latest), a manifest digest, or
 * at least 6 hex digits of one.  Returns -ENOENT with a message when none.
 */
int store_find(struct store *s, const char *what, struct store_image *out, struct err **e);

/* An image read back from the store: its manifest and config, verified. */
struct store_loaded {
	struct descriptor desc;
	struct manifest manifest;
	struct image_config config;
	char *config_json; /* raw, for inspect */
	size_t config_len;
	char *manifest_json;
	size_t manifest_len;
};
int store_load(struct store *s, const struct descriptor *manifest, struct store_loaded *out, struct err **e);
void store_loaded_free(struct store_loaded *l);

struct prune_report {
	uint64_t blobs, blob_bytes, partials, layers, tmp;
};
/* Remove what no name reaches: blobs, unused unpacked layers, partial
 * downloads and scratch files.  Needs STORE_EXCLUSIVE. */
int store_prune(struct store *s, struct prune_report *rep, struct err **e);

/* fsync a directory by fd. */
int fsync_dir(int dirfd);

#endif
