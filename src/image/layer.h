/*
 * Reading a layer blob as a stream of tar entries: the blob is read from
 * its fd, its compression (gzip, zstd or none) told by its first bytes,
 * decompressed here, and the tar parsed by libarchive.  Both digests are
 * checked on the way: the blob's (compressed) and the diff_id
 * (uncompressed); layer_next() reports a mismatch when the stream ends.
 */
#ifndef CASULO_IMAGE_LAYER_H
#define CASULO_IMAGE_LAYER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "image/digest.h"

struct archive;
struct archive_entry;

enum layer_compression { LAYER_TAR, LAYER_GZIP, LAYER_ZSTD };

struct layer_reader {
	int fd;
	enum layer_compression compression;
	void *zs; /* z_stream or ZSTD_DStream */
	unsigned char *in, *out;
	const unsigned char *chunk; /* the last chunk produced */
	size_t in_len, in_pos, out_size;
	bool in_eof, stream_end;
	struct hasher blob_hash, diff_hash;
	char blob_digest[DIGEST_BUF], diff_id[DIGEST_BUF]; /* expected; "" to skip */
	struct archive *ar;
	char *error; /* a decompression error, for the message */
	uint64_t compressed_read;
};

/* blob_digest and diff_id may be NULL (not checked). */
int layer_open(struct layer_reader *r, int fd, const char *blob_digest, const char *diff_id, struct err **e);
/* 1 with *entry set, 0 at the end (digests verified), <0 on error. */
int layer_next(struct layer_reader *r, struct archive_entry **entry, struct err **e);
/* Read the current entry's data: returns bytes (0 at its end) or <0. */
ssize_t layer_read_data(struct layer_reader *r, void *buf, size_t len, struct err **e);
void layer_close(struct layer_reader *r);

/* Sniff compression from a file's first bytes. */
enum layer_compression layer_sniff(const unsigned char *buf, size_t len);

#endif
