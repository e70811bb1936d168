#include "image/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <isa-l/igzip_lib.h>
#include <zstd.h>

#define IN_SIZE (256 * 1024)
#define OUT_SIZE (512 * 1024)

enum layer_compression layer_sniff(const unsigned char *buf, size_t len)
{
	if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b)
		return LAYER_GZIP;
	if (len >= 4 && buf[0] == 0x28 && buf[1] == 0xb5 && buf[2] == 0x2f && buf[3] == 0xfd)
		return LAYER_ZSTD;
	return LAYER_TAR;
}

static int fill_input(struct layer_reader *r)
{
	ssize_t n;

	if (r->in_pos < r->in_len || r->in_eof)
		return 0;
	do
		n = read(r->fd, r->in, IN_SIZE);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	r->in_pos = 0;
	r->in_len = (size_t)n;
	if (n == 0)
		r->in_eof = true;
	else if (r->blob_digest[0])
		hasher_update(&r->blob_hash, r->in, (size_t)n);
	r->compressed_read += (uint64_t)n;
	return 0;
}

static void __attribute__((format(printf, 2, 3))) set_error(struct layer_reader *r, const char *fmt, ...)
{
	va_list ap;

	free(r->error);
	va_start(ap, fmt);
	if (vasprintf(&r->error, fmt, ap) < 0)
		r->error = NULL;
	va_end(ap);
}

/* Produce the next chunk of uncompressed tar into r->out. */
static ssize_t produce(struct layer_reader *r)
{
	int rc;

	for (;;) {
		if ((rc = fill_input(r)) < 0) {
			set_error(r, "read: %s", strerror(-rc));
			return -1;
		}
		if (r->compression == LAYER_TAR) {
			size_t n = r->in_len - r->in_pos;
			if (n == 0)
				return 0;
			r->chunk = r->in + r->in_pos; /* no copy for plain tar */
			r->in_pos += n;
			return (ssize_t)n;
		}
		if (r->stream_end) {
			/* Concatenated gzip members and zstd frames are legal;
			 * anything else after the end is garbage. */
			if (r->in_pos == r->in_len)
				return 0;
			if (r->compression == LAYER_GZIP) {
				struct inflate_state *st = r->zs;
				isal_inflate_reset(st);
				st->crc_flag = ISAL_GZIP;
			}
			r->stream_end = false;
		}
		if (r->in_pos == r->in_len && r->in_eof) {
			set_error(r, "%s stream truncated", r->compression == LAYER_GZIP ? "gzip" : "zstd");
			return -1;
		}
		if (r->compression == LAYER_GZIP) {
			/* ISA-L's inflate: two to three times zlib's speed */
			struct inflate_state *st = r->zs;
			st->next_in = r->in + r->in_pos;
			st->avail_in = (uint32_t)(r->in_len - r->in_pos);
			st->next_out = r->out;
			st->avail_out = (uint32_t)r->out_size;
			rc = isal_inflate(st);
			r->in_pos = r->in_len - st->avail_in;
			if (rc < 0) {
				set_error(r, "gzip: %s",
					  rc == ISAL_INCORRECT_CHECKSUM ? "bad checksum" : "corrupt data");
				return -1;
			}
			if (st->block_state == ISAL_BLOCK_FINISH)
				r->stream_end = true;
			r->chunk = r->out;
			if (st->avail_out < r->out_size)
				return (ssize_t)(r->out_size - st->avail_out);
		} else {
			ZSTD_inBuffer zin = {r->in, r->in_len, r->in_pos};
			ZSTD_outBuffer zout = {r->out, r->out_size, 0};
			size_t zr = ZSTD_decompressStream(r->zs, &zout, &zin);
			r->in_pos = zin.pos;
			if (ZSTD_isError(zr)) {
				set_error(r, "zstd: %s", ZSTD_getErrorName(zr));
				return -1;
			}
			if (zr == 0)
				r->stream_end = true;
			r->chunk = r->out;
			if (zout.pos)
				return (ssize_t)zout.pos;
		}
	}
}

static la_ssize_t read_cb(struct archive *a, void *data, const void **buf)
{
	struct layer_reader *r = data;
	ssize_t n = produce(r);

	(void)a;
	if (n < 0) {
		archive_set_error(a, EIO, "%s", r->error ? r->error : "read error");
		return -1;
	}
	if (r->diff_id[0])
		hasher_update(&r->diff_hash, r->chunk, (size_t)n);
	*buf = r->chunk;
	return n;
}

int layer_open(struct layer_reader *r, int fd, const char *blob_digest, const char *diff_id, struct err **e)
{
	ssize_t n;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->in = malloc(IN_SIZE);
	r->out_size = OUT_SIZE;
	r->out = malloc(OUT_SIZE);
	if (!r->in || !r->out || hasher_init(&r->blob_hash) < 0 || hasher_init(&r->diff_hash) < 0)
		goto nomem;
	snprintf(r->blob_digest, sizeof(r->blob_digest), "%s", blob_digest ? blob_digest : "");
	snprintf(r->diff_id, sizeof(r->diff_id), "%s", diff_id ? diff_id : "");
	/* Sniff from the first bytes, which stay in the input buffer. */
	if (fill_input(r) < 0) {
		layer_close(r);
		return err_set(e, errno, "layer %s: read", blob_digest ? blob_digest : "");
	}
	n = (ssize_t)r->in_len;
	r->compression = layer_sniff(r->in, (size_t)n);
	if (r->compression == LAYER_GZIP) {
		struct inflate_state *st = malloc(sizeof(*st));
		if (st == NULL)
			goto nomem;
		isal_inflate_init(st);
		st->crc_flag = ISAL_GZIP;
		r->zs = st;
	} else if (r->compression == LAYER_ZSTD) {
		r->zs = ZSTD_createDStream();
		if (r->zs == NULL)
			goto nomem;
	}
	r->ar = archive_read_new();
	if (r->ar == NULL)
		goto nomem;
	archive_read_support_format_tar(r->ar);
	archive_read_support_format_gnutar(r->ar);
	if (archive_read_open(r->ar, r, NULL, read_cb, NULL) != ARCHIVE_OK) {
		int rc = err_setx(e, EIO, "layer %s: %s", blob_digest ? blob_digest : "",
				  r->error ? r->error : archive_error_string(r->ar));
		layer_close(r);
		return rc;
	}
	return 0;
nomem:
	layer_close(r);
	return err_set(e, ENOMEM, "layer %s", blob_digest ? blob_digest : "");
}

/* After the tar's end marker: read the rest, so that the digests cover
 * the whole blob and the whole uncompressed stream. */
static int drain(struct layer_reader *r, struct err **e)
{
	for (;;) {
		ssize_t n = produce(r);
		if (n < 0)
			return err_setx(e, EIO, "layer %s: %s", r->blob_digest, r->error ? r->error : "read error");
		if (n == 0)
			return 0;
		if (r->diff_id[0])
			hasher_update(&r->diff_hash, r->chunk, (size_t)n);
	}
}

static int verify(struct layer_reader *r, struct err **e)
{
	char got[DIGEST_BUF];

	if (r->blob_digest[0]) {
		hasher_final(&r->blob_hash, got);
		if (strcmp(got, r->blob_digest) != 0)
			return err_setx(e, EIO, "layer %s: digest mismatch: expected %s, got %s", r->blob_digest,
					r->blob_digest, got);
	}
	if (r->diff_id[0]) {
		hasher_final(&r->diff_hash, got);
		if (strcmp(got, r->diff_id) != 0)
			return err_setx(e, EIO, "layer %s: diff_id mismatch: the config says %s, the content is %s",
					r->blob_digest, r->diff_id, got);
	}
	return 0;
}

int layer_next(struct layer_reader *r, struct archive_entry **entry, struct err **e)
{
	int rc = archive_read_next_header(r->ar, entry);

	if (rc == ARCHIVE_OK || rc == ARCHIVE_WARN)
		return 1;
	if (rc == ARCHIVE_EOF) {
		if ((rc = drain(r, e)) < 0)
			return rc;
		return verify(r, e);
	}
	/* Our own decompression error says more than libarchive's. */
	return err_setx(e, EIO, "layer %s: %s", r->blob_digest, r->error ? r->error : archive_error_string(r->ar));
}

ssize_t layer_read_data(struct layer_reader *r, void *buf, size_t len, struct err **e)
{
	la_ssize_t n = archive_read_data(r->ar, buf, len);

	if (n < 0)
		return err_setx(e, EIO, "layer %s: %s", r->blob_digest, archive_error_string(r->ar));
	return (ssize_t)n;
}

void layer_close(struct layer_reader *r)
{
	if (r->ar)
		archive_read_free(r->ar);
	if (r->compression == LAYER_GZIP && r->zs) {
		free(r->zs);
	} else if (r->compression == LAYER_ZSTD && r->zs) {
		ZSTD_freeDStream(r->zs);
	}
	if (r->blob_hash.ctx)
		hasher_free(&r->blob_hash);
	if (r->diff_hash.ctx)
		hasher_free(&r->diff_hash);
	free(r->in);
	free(r->out);
	free(r->error);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}
