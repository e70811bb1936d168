/* The snapshot state file: round trip, and every way it can be broken. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "vmm/snapshot/format.h"

static void build(struct snap_writer *w)
{
	snap_writer_init(w, "casulo-vmm test");
	snap_section_begin(w, "alpha", 3);
	snap_put_u8(w, 0xab);
	snap_put_u16(w, 0x1234);
	snap_put_u32(w, 0xdeadbeef);
	snap_put_u64(w, 0x0102030405060708ULL);
	snap_put_str(w, "hello");
	snap_section_end(w);
	snap_section_begin(w, "beta", 1);
	snap_put_bytes(w, "xyz", 3);
	snap_section_end(w);
	CHECK_INT(snap_writer_finish(w), ==, 0);
}

TEST(snapshot_round_trip)
{
	struct snap_writer w;
	struct snap_reader r;
	struct snap_section s;
	struct err *e = NULL;
	char str[16], bytes[3];

	build(&w);
	CHECK_INT(snap_reader_parse(&r, w.buf, w.len, &e), ==, 0);
	CHECK_INT(r.nsections, ==, 2);
	CHECK_STR(r.writer, "casulo-vmm test");
	CHECK(snap_find(&r, "alpha", &s));
	CHECK_INT(s.version, ==, 3);
	CHECK_INT(snap_get_u8(&s), ==, 0xab);
	CHECK_INT(snap_get_u16(&s), ==, 0x1234);
	CHECK_INT(snap_get_u32(&s), ==, 0xdeadbeef);
	CHECK_INT(snap_get_u64(&s), ==, 0x0102030405060708LL);
	snap_get_str(&s, str, sizeof(str));
	CHECK_STR(str, "hello");
	CHECK(snap_section_ok(&s));
	CHECK(snap_find(&r, "beta", &s));
	snap_get_bytes(&s, bytes, 3);
	CHECK(memcmp(bytes, "xyz", 3) == 0);
	/* Reading past the end is caught, not undefined. */
	CHECK_INT(snap_get_u64(&s), ==, 0);
	CHECK(s.overrun);
	CHECK(!snap_section_ok(&s));
	CHECK(!snap_find(&r, "gamma", &s));
	snap_reader_free(&r);
	snap_writer_free(&w);
}

TEST(snapshot_every_flipped_byte_is_refused)
{
	struct snap_writer w;
	struct err *e = NULL;

	build(&w);
	for (size_t i = 0; i < w.len; i++) {
		struct snap_reader r;
		w.buf[i] ^= 0x40;
		if (snap_reader_parse(&r, w.buf, w.len, &e) == 0) {
			test_fail_at(__FILE__, __LINE__, "a flip at byte %zu went unnoticed", i);
			snap_reader_free(&r);
		}
		w.buf[i] ^= 0x40;
	}
	err_free(&e);
	snap_writer_free(&w);
}

TEST(snapshot_every_truncation_is_refused)
{
	struct snap_writer w;
	struct err *e = NULL;

	build(&w);
	for (size_t len = 0; len < w.len; len++) {
		struct snap_reader r;
		if (snap_reader_parse(&r, w.buf, len, &e) == 0) {
			test_fail_at(__FILE__, __LINE__, "a file cut at %zu bytes was accepted", len);
			snap_reader_free(&r);
		}
	}
	CHECK_INT(snap_reader_parse(&(struct snap_reader){ 0 }, w.buf, 20, &e), <, 0);
	CHECK_CONTAINS(e->msg, "truncated");
	err_free(&e);
	snap_writer_free(&w);
}

TEST(snapshot_foreign_files_are_refused)
{
	struct snap_writer w;
	struct snap_reader r;
	struct err *e = NULL;
	uint8_t junk[200];

	memset(junk, 'A', sizeof(junk));
	CHECK_INT(snap_reader_parse(&r, junk, sizeof(junk), &e), <, 0);
	CHECK_CONTAINS(e->msg, "not a Casulo snapshot");
	build(&w);
	w.buf[8] = 9; /* format major 9 */
	CHECK_INT(snap_reader_parse(&r, w.buf, w.len, &e), <, 0);
	CHECK_CONTAINS(e->msg, "format version 9");
	err_free(&e);
	snap_writer_free(&w);
}

TEST(snapshot_save_and_open_a_file)
{
	char dir[] = "/tmp/casulo-snap-XXXXXX", path[256];
	struct snap_writer w;
	struct snap_reader r;
	struct err *e = NULL;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/state", dir);
	build(&w);
	w.len -= 16; /* save adds its own trailer */
	w.nsections = 2;
	snap_writer_free(&w);
	snap_writer_init(&w, "casulo-vmm test");
	snap_section_begin(&w, "only", 1);
	snap_put_u32(&w, 7);
	snap_section_end(&w);
	CHECK_INT(snap_writer_save(&w, path, &e), ==, 0);
	CHECK_INT(snap_reader_open(&r, path, &e), ==, 0);
	CHECK_INT(r.nsections, ==, 1);
	snap_reader_free(&r);
	CHECK_INT(snap_reader_open(&r, "/nonexistent/state", &e), <, 0);
	CHECK_STR(e->msg, "snapshot '/nonexistent/state': open: No such file or directory");
	err_free(&e);
	snap_writer_free(&w);
	unlink(path);
	rmdir(dir);
}
