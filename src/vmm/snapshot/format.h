/*
 * The snapshot state file: a header, named sections each with its own
 * version, length and CRC-32, and a trailer with a CRC-32 over the whole
 * file.  Section contents are written field by field, little-endian, in
 * a fixed order per section version; never a memcpy of a C struct.  The
 * reader checks every length, CRC and bound before handing out a byte: a
 * truncated, corrupted or foreign file is refused with a clear message.
 * docs/snapshot-format.md is the reference.
 */
#ifndef CASULO_VMM_SNAPSHOT_FORMAT_H
#define CASULO_VMM_SNAPSHOT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SNAP_MAGIC "CASULOSN"
#define SNAP_TRAILER_MAGIC "CASULOEN"
#define SNAP_FORMAT_MAJOR 1
#define SNAP_FORMAT_MINOR 0
#define SNAP_ARCH_X86_64 62 /* EM_X86_64 */
#define SNAP_NAME_MAX 32
#define SNAP_WRITER_MAX 32
#define SNAP_MAX_SECTIONS 1024
#define SNAP_MAX_SECTION_LEN (64ULL << 20)

/* --- writing --- */

struct snap_writer {
	uint8_t *buf; /* the whole file is built in memory: it is small */
	size_t len, cap;
	size_t section_start; /* offset of the open section's data */
	uint32_t nsections;
	bool failed; /* out of memory */
};

void snap_writer_init(struct snap_writer *w, const char *writer_version);
void snap_section_begin(struct snap_writer *w, const char *name, uint32_t version);
void snap_put_u8(struct snap_writer *w, uint8_t v);
void snap_put_u16(struct snap_writer *w, uint16_t v);
void snap_put_u32(struct snap_writer *w, uint32_t v);
void snap_put_u64(struct snap_writer *w, uint64_t v);
void snap_put_bytes(struct snap_writer *w, const void *p, size_t n);
/* A length-prefixed string (u32 length, bytes, no NUL). */
void snap_put_str(struct snap_writer *w, const char *s);
void snap_section_end(struct snap_writer *w);
/* Add the trailer: buf/len then hold the whole file (for sending). */
int snap_writer_finish(struct snap_writer *w) MUST_CHECK;
/* Add the trailer and write the file (fsync'ed; atomically renamed in). */
int snap_writer_save(struct snap_writer *w, const char *path, struct err **e) MUST_CHECK;
void snap_writer_free(struct snap_writer *w);

/* --- reading --- */

struct snap_section {
	char name[SNAP_NAME_MAX + 1];
	uint32_t version;
	const uint8_t *data;
	uint64_t len;
	uint64_t pos;
	bool overrun; /* a read went past the end: the section is malformed */
};

struct snap_reader {
	uint8_t *buf;
	size_t len;
	uint16_t major, minor;
	char writer[SNAP_WRITER_MAX + 1];
	uint32_t nsections;
	struct snap_section *sections;
};

/* Read and check the whole file; on error *e says what is wrong with it. */
int snap_reader_open(struct snap_reader *r, const char *path, struct err **e) MUST_CHECK;
/* The same from memory (tests, fuzzers, migration). buf is copied. */
int snap_reader_parse(struct snap_reader *r, const uint8_t *buf, size_t len, struct err **e) MUST_CHECK;
void snap_reader_free(struct snap_reader *r);
/* A fresh cursor on the named section, or NULL. */
bool snap_find(const struct snap_reader *r, const char *name, struct snap_section *s);

uint8_t snap_get_u8(struct snap_section *s);
uint16_t snap_get_u16(struct snap_section *s);
uint32_t snap_get_u32(struct snap_section *s);
uint64_t snap_get_u64(struct snap_section *s);
void snap_get_bytes(struct snap_section *s, void *p, size_t n);
/* Copies at most cap-1 bytes and NUL-terminates; a longer string overruns. */
void snap_get_str(struct snap_section *s, char *out, size_t cap);
/* Was the section read exactly to its end without overrun? */
bool snap_section_ok(const struct snap_section *s);

/* Standard error for a section that does not parse. */
int snap_bad_section(const struct snap_section *s, struct err **e) MUST_CHECK;

#endif
