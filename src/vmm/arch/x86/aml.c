#include "vmm/arch/x86/aml.h"

#include <stdlib.h>
#include <string.h>

#define AML_SCOPE_OP 0x10
#define AML_NAME_OP 0x08
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_METHOD_OP 0x14
#define AML_NOTIFY_OP 0x86
#define AML_EXT_PREFIX 0x5b
#define AML_DEVICE_OP 0x82
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_ROOT_CHAR '\\'
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	aml_init(a);
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->failed)
		return;
	if (a->len + n > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		uint8_t *nb;
		while (cap < a->len + n)
			cap *= 2;
		nb = realloc(a->buf, cap);
		if (nb == NULL) {
			a->failed = 1;
			return;
		}
		a->buf = nb;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void name_seg(struct aml *a, const char *seg, size_t n)
{
	char s[4] = {'_', '_', '_', '_'};

	memcpy(s, seg, n > 4 ? 4 : n);
	aml_bytes(a, s, 4);
}

void aml_name(struct aml *a, const char *path)
{
	const char *segs[8];
	size_t lens[8];
	unsigned n = 0;
	const char *p = path;

	if (*p == AML_ROOT_CHAR) {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	}
	while (*p && n < 8) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		segs[n] = p;
		lens[n] = l;
		n++;
		p += l;
		if (*p == '.')
			p++;
	}
	if (n == 2)
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	else if (n > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)n);
	}
	for (unsigned i = 0; i < n; i++)
		name_seg(a, segs[i], lens[i]);
	if (n == 0)
		aml_byte(a, 0); /* NullName */
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t b[9];
	unsigned n;

	if (v == 0) {
		aml_byte(a, AML_ZERO_OP);
		return;
	}
	if (v == 1) {
		aml_byte(a, AML_ONE_OP);
		return;
	}
	if (v <= 0xff) {
		b[0] = AML_BYTE_PREFIX;
		n = 1;
	} else if (v <= 0xffff) {
		b[0] = AML_WORD_PREFIX;
		n = 2;
	} else if (v <= 0xffffffff) {
		b[0] = AML_DWORD_PREFIX;
		n = 4;
	} else {
		b[0] = AML_QWORD_PREFIX;
		n = 8;
	}
	for (unsigned i = 0; i < n; i++)
		b[1 + i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, n + 1);
}

void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v;
	uint8_t c1 = (uint8_t)(id[0] - '@'), c2 = (uint8_t)(id[1] - '@'), c3 = (uint8_t)(id[2] - '@');
	uint16_t prod = (uint16_t)strtoul(id + 3, NULL, 16);

	/* Three 5-bit letters then a 16-bit product id, stored big-endian. */
	v = (uint32_t)((c1 & 0x1f) << 26 | (c2 & 0x1f) << 21 | (c3 & 0x1f) << 16 | prod);
	aml_byte(a, AML_DWORD_PREFIX);
	aml_byte(a, (uint8_t)(v >> 24));
	aml_byte(a, (uint8_t)(v >> 16));
	aml_byte(a, (uint8_t)(v >> 8));
	aml_byte(a, (uint8_t)v);
}

static void open_pkg(struct aml *a)
{
	if (a->depth == AML_MAX_DEPTH) {
		a->failed = 1;
		return;
	}
	a->open[a->depth++] = a->len;
}

void aml_end(struct aml *a)
{
	size_t start, body;
	uint8_t enc[4];
	unsigned n;

	if (a->failed)
		return;
	if (a->depth == 0) {
		a->failed = 1;
		return;
	}
	start = a->open[--a->depth];
	body = a->len - start;
	/* PkgLength counts its own bytes: pick the smallest encoding. */
	if (body + 1 < 0x40) {
		enc[0] = (uint8_t)(body + 1);
		n = 1;
	} else {
		size_t total;
		n = body + 2 < 0x1000 ? 2 : (body + 3 < 0x100000 ? 3 : 4);
		total = body + n;
		enc[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
		for (unsigned i = 1; i < n; i++)
			enc[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	aml_bytes(a, enc, n); /* grow the buffer, then shift the body up */
	if (a->failed)
		return;
	memmove(a->buf + start + n, a->buf + start, body);
	memcpy(a->buf + start, enc, n);
}

void aml_scope(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE_OP);
	open_pkg(a);
	aml_name(a, path);
}

void aml_device(struct aml *a, const char *name)
{
	aml_byte(a, AML_EXT_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	open_pkg(a);
	aml_name(a, name);
}

void aml_package(struct aml *a, uint8_t nelems)
{
	aml_byte(a, AML_PACKAGE_OP);
	open_pkg(a);
	aml_byte(a, nelems);
}

void aml_method(struct aml *a, const char *name, uint8_t nargs)
{
	aml_byte(a, AML_METHOD_OP);
	open_pkg(a);
	aml_name(a, name);
	aml_byte(a, nargs & 7); /* MethodFlags: argument count, not serialized, sync level 0 */
}

void aml_notify(struct aml *a, const char *object, uint8_t value)
{
	aml_byte(a, AML_NOTIFY_OP);
	aml_name(a, object);
	aml_integer(a, value);
}

void aml_name_decl(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME_OP);
	aml_name(a, name);
}

/* Resource templates are Buffers: BufferOp PkgLength BufferSize Bytes.
 * The size is known only at the end, so it is written as a DWord
 * placeholder and patched in aml_crs_end(). */
void aml_crs_begin(struct aml *a)
{
	aml_name_decl(a, "_CRS");
	aml_byte(a, AML_BUFFER_OP);
	open_pkg(a);
	aml_byte(a, AML_DWORD_PREFIX);
	aml_bytes(a, "\0\0\0\0", 4);
}

void aml_crs_io(struct aml *a, uint16_t base, uint8_t len)
{
	uint8_t d[8] = {0x47, 0x01, (uint8_t)base, (uint8_t)(base >> 8), (uint8_t)base, (uint8_t)(base >> 8), 1, len};
	aml_bytes(a, d, sizeof(d));
}

void aml_crs_irq(struct aml *a, uint8_t irq)
{
	uint16_t mask = (uint16_t)(1u << (irq & 15));
	uint8_t d[3] = {0x22, (uint8_t)mask, (uint8_t)(mask >> 8)};
	aml_bytes(a, d, sizeof(d));
}

void aml_crs_mem32(struct aml *a, uint32_t base, uint32_t len)
{
	uint8_t d[12] = {0x86, 9, 0, 1 /* read-write */};
	for (int i = 0; i < 4; i++) {
		d[4 + i] = (uint8_t)(base >> (8 * i));
		d[8 + i] = (uint8_t)(len >> (8 * i));
	}
	aml_bytes(a, d, sizeof(d));
}

void aml_crs_ext_irq(struct aml *a, uint32_t gsi, int edge)
{
	/* Flags: bit0 consumer, bit1 edge, bit2 active-low, bit3 shared. */
	uint8_t d[9] = {0x89, 6, 0, (uint8_t)(0x01 | (edge ? 0x02 : 0)), 1};
	for (int i = 0; i < 4; i++)
		d[5 + i] = (uint8_t)(gsi >> (8 * i));
	aml_bytes(a, d, sizeof(d));
}

void aml_crs_end(struct aml *a)
{
	size_t start, size;
	uint8_t end_tag[2] = {0x79, 0x00};

	aml_bytes(a, end_tag, sizeof(end_tag));
	if (a->failed || a->depth == 0)
		return;
	start = a->open[a->depth - 1];
	size = a->len - start - 5; /* bytes after the DWord size field */
	for (int i = 0; i < 4; i++)
		a->buf[start + 1 + i] = (uint8_t)(size >> (8 * i));
	aml_end(a);
}
