#include "vmm/snapshot/format.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/fdutil.h"

#define HEADER_LEN (8 + 2 + 2 + 4 + SNAP_WRITER_MAX + 4)
#define SECTION_HEADER_LEN (SNAP_NAME_MAX + 4 + 4 + 8)
#define TRAILER_LEN (8 + 4 + 4)

static void reserve(struct snap_writer *w, size_t n)
{
	if (w->failed || w->len + n <= w->cap)
		return;
	size_t cap = w->cap ? w->cap : 4096;
	while (cap < w->len + n)
		cap *= 2;
	uint8_t *nb = realloc(w->buf, cap);
	if (nb == NULL) {
		w->failed = true;
		return;
	}
	w->buf = nb;
	w->cap = cap;
}

static void put_le(struct snap_writer *w, uint64_t v, unsigned n)
{
	reserve(w, n);
	if (w->failed)
		return;
	for (unsigned i = 0; i < n; i++)
		w->buf[w->len++] = (uint8_t)(v >> (8 * i));
}

void snap_put_u8(struct snap_writer *w, uint8_t v)
{
	put_le(w, v, 1);
}
void snap_put_u16(struct snap_writer *w, uint16_t v)
{
	put_le(w, v, 2);
}
void snap_put_u32(struct snap_writer *w, uint32_t v)
{
	put_le(w, v, 4);
}
void snap_put_u64(struct snap_writer *w, uint64_t v)
{
	put_le(w, v, 8);
}

void snap_put_bytes(struct snap_writer *w, const void *p, size_t n)
{
	reserve(w, n);
	if (w->failed)
		return;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

void snap_put_str(struct snap_writer *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	snap_put_u32(w, (uint32_t)n);
	snap_put_bytes(w, s ? s : "", n);
}

static void put_fixed_str(struct snap_writer *w, const char *s, size_t field)
{
	char buf[64] = {0};

	snprintf(buf, sizeof(buf), "%s", s);
	snap_put_bytes(w, buf, field);
}

void snap_writer_init(struct snap_writer *w, const char *writer_version)
{
	memset(w, 0, sizeof(*w));
	snap_put_bytes(w, SNAP_MAGIC, 8);
	snap_put_u16(w, SNAP_FORMAT_MAJOR);
	snap_put_u16(w, SNAP_FORMAT_MINOR);
	snap_put_u32(w, SNAP_ARCH_X86_64);
	put_fixed_str(w, writer_version, SNAP_WRITER_MAX);
	snap_put_u32(w, 0); /* section count, patched at save */
}

void snap_section_begin(struct snap_writer *w, const char *name, uint32_t version)
{
	put_fixed_str(w, name, SNAP_NAME_MAX);
	snap_put_u32(w, version);
	snap_put_u32(w, 0); /* flags */
	snap_put_u64(w, 0); /* length, patched at the end */
	w->section_start = w->len;
}

static void patch_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void snap_section_end(struct snap_writer *w)
{
	uint64_t len;

	if (w->failed)
		return;
	len = w->len - w->section_start;
	patch_le(w->buf + w->section_start - 8, len, 8);
	snap_put_u32(w, (uint32_t)crc32(0, w->buf + w->section_start, (uInt)len));
	w->nsections++;
}

int snap_writer_finish(struct snap_writer *w)
{
	if (w->failed)
		return -ENOMEM;
	patch_le(w->buf + HEADER_LEN - 4, w->nsections, 4);
	snap_put_bytes(w, SNAP_TRAILER_MAGIC, 8);
	snap_put_u32(w, w->nsections);
	snap_put_u32(w, (uint32_t)crc32(0, w->buf, (uInt)w->len));
	return w->failed ? -ENOMEM : 0;
}

int snap_writer_save(struct snap_writer *w, const char *path, struct err **e)
{
	char tmp[4096];
	int fd, r;

	if (snap_writer_finish(w) < 0)
		return err_set(e, ENOMEM, "snapshot '%s'", path);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return err_setx(e, ENAMETOOLONG, "snapshot '%s': path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, errno, "snapshot '%s': create", tmp);
	r = write_full(fd, w->buf, w->len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return err_set(e, -r, "snapshot '%s': write", path);
	}
	return 0;
}

void snap_writer_free(struct snap_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

/* --- reading --- */

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int snap_reader_parse(struct snap_reader *r, const uint8_t *buf, size_t len, struct err **e)
{
	size_t off;
	uint32_t file_crc;

	memset(r, 0, sizeof(*r));
	if (len < HEADER_LEN + TRAILER_LEN)
		return err_setx(e, EINVAL, "truncated: %zu bytes is too short for a snapshot", len);
	if (memcmp(buf, SNAP_MAGIC, 8) != 0)
		return err_setx(e, EINVAL, "not a Casulo snapshot (bad magic)");
	r->major = (uint16_t)get_le(buf + 8, 2);
	r->minor = (uint16_t)get_le(buf + 10, 2);
	memcpy(r->writer, buf + 16, SNAP_WRITER_MAX);
	r->writer[SNAP_WRITER_MAX] = '\0';
	if (r->major != SNAP_FORMAT_MAJOR)
		return err_setx(e, EINVAL,
				"format version %u.%u (written by '%s') is not readable by this version (%u.x)",
				r->major, r->minor, r->writer, SNAP_FORMAT_MAJOR);
	if (get_le(buf + 12, 4) != SNAP_ARCH_X86_64)
		return err_setx(e, EINVAL, "written for another architecture (%u)", (unsigned)get_le(buf + 12, 4));
	if (memcmp(buf + len - TRAILER_LEN, SNAP_TRAILER_MAGIC, 8) != 0)
		return err_setx(e, EINVAL, "truncated: the trailer is missing");
	file_crc = (uint32_t)get_le(buf + len - 4, 4);
	if (crc32(0, buf, (uInt)(len - 4)) != file_crc)
		return err_setx(e, EINVAL, "corrupted: the file's checksum does not match");
	r->nsections = (uint32_t)get_le(buf + HEADER_LEN - 4, 4);
	if (r->nsections > SNAP_MAX_SECTIONS || r->nsections != get_le(buf + len - 8, 4))
		return err_setx(e, EINVAL, "corrupted: section count %u is wrong", r->nsections);
	r->buf = malloc(len);
	r->sections = calloc(r->nsections ? r->nsections : 1, sizeof(*r->sections));
	if (r->buf == NULL || r->sections == NULL) {
		snap_reader_free(r);
		return err_set(e, ENOMEM, "snapshot state: %zu bytes", len);
	}
	memcpy(r->buf, buf, len);
	r->len = len;
	off = HEADER_LEN;
	for (uint32_t i = 0; i < r->nsections; i++) {
		struct snap_section *s = &r->sections[i];
		uint64_t slen;

		if (len - TRAILER_LEN - off < SECTION_HEADER_LEN) {
			snap_reader_free(r);
			return err_setx(e, EINVAL, "truncated: section %u header runs past the end", i);
		}
		memcpy(s->name, r->buf + off, SNAP_NAME_MAX);
		s->name[SNAP_NAME_MAX] = '\0';
		s->version = (uint32_t)get_le(r->buf + off + SNAP_NAME_MAX, 4);
		slen = get_le(r->buf + off + SNAP_NAME_MAX + 8, 8);
		off += SECTION_HEADER_LEN;
		if (slen > SNAP_MAX_SECTION_LEN || slen + 4 > len - TRAILER_LEN - off) {
			snap_reader_free(r);
			return err_setx(e, EINVAL, "truncated: section '%s' runs past the end", s->name);
		}
		s->data = r->buf + off;
		s->len = slen;
		if (crc32(0, s->data, (uInt)slen) != get_le(r->buf + off + slen, 4)) {
			snap_reader_free(r);
			return err_setx(e, EINVAL, "corrupted: section '%s' fails its checksum", s->name);
		}
		off += slen + 4;
	}
	if (off != len - TRAILER_LEN) {
		snap_reader_free(r);
		return err_setx(e, EINVAL, "corrupted: %zu unexplained bytes before the trailer",
				len - TRAILER_LEN - off);
	}
	return 0;
}

int snap_reader_open(struct snap_reader *r, const char *path, struct err **e)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	int ret;

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return err_set(e, errno, "snapshot '%s': open", path);
	if (fstat(fd, &st) < 0)
		return err_set(e, errno, "snapshot '%s': stat", path);
	if (st.st_size > (off_t)(SNAP_MAX_SECTION_LEN * 4))
		return err_setx(e, EFBIG, "snapshot '%s': %lld bytes is too large for a state file", path,
				(long long)st.st_size);
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return err_set(e, ENOMEM, "snapshot '%s'", path);
	ret = pread_full(fd, buf, (size_t)st.st_size, 0);
	if (ret < 0) {
		free(buf);
		return err_set(e, -ret, "snapshot '%s': read", path);
	}
	ret = snap_reader_parse(r, buf, (size_t)st.st_size, e);
	free(buf);
	if (ret < 0)
		return err_wrap(e, "snapshot '%s'", path);
	return 0;
}

void snap_reader_free(struct snap_reader *r)
{
	free(r->buf);
	free(r->sections);
	memset(r, 0, sizeof(*r));
}

bool snap_find(const struct snap_reader *r, const char *name, struct snap_section *s)
{
	for (uint32_t i = 0; i < r->nsections; i++) {
		if (strcmp(r->sections[i].name, name) == 0) {
			*s = r->sections[i];
			s->pos = 0;
			s->overrun = false;
			return true;
		}
	}
	return false;
}

static const uint8_t *take(struct snap_section *s, size_t n)
{
	const uint8_t *p;

	if (s->overrun || n > s->len - s->pos) {
		s->overrun = true;
		return NULL;
	}
	p = s->data + s->pos;
	s->pos += n;
	return p;
}

uint8_t snap_get_u8(struct snap_section *s)
{
	const uint8_t *p = take(s, 1);
	return p ? p[0] : 0;
}
uint16_t snap_get_u16(struct snap_section *s)
{
	const uint8_t *p = take(s, 2);
	return p ? (uint16_t)get_le(p, 2) : 0;
}
uint32_t snap_get_u32(struct snap_section *s)
{
	const uint8_t *p = take(s, 4);
	return p ? (uint32_t)get_le(p, 4) : 0;
}
uint64_t snap_get_u64(struct snap_section *s)
{
	const uint8_t *p = take(s, 8);
	return p ? get_le(p, 8) : 0;
}

void snap_get_bytes(struct snap_section *s, void *out, size_t n)
{
	const uint8_t *p = take(s, n);

	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

void snap_get_str(struct snap_section *s, char *out, size_t cap)
{
	uint32_t n = snap_get_u32(s);
	const uint8_t *p;

	out[0] = '\0';
	if (n >= cap) {
		s->overrun = true;
		return;
	}
	p = take(s, n);
	if (p) {
		memcpy(out, p, n);
		out[n] = '\0';
	}
}

bool snap_section_ok(const struct snap_section *s)
{
	return !s->overrun && s->pos == s->len;
}

int snap_bad_section(const struct snap_section *s, struct err **e)
{
	return err_setx(e, EINVAL, "corrupted: section '%s' (version %u) does not parse", s->name, s->version);
}
