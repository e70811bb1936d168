/* The snapshot state file: round trip, and every way it can be broken. */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"
#include "vmm/config.h"
#include "vmm/migrate/stream.h"
#include "vmm/snapshot/format.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/vm.h"

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
	CHECK_INT(snap_reader_parse(&(struct snap_reader){0}, w.buf, 20, &e), <, 0);
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

/* --- what restore checks in a snapshot whose checksums are valid --- */

#define CONFIG_OK "{\"vcpus\":1,\"memory_mib\":64,\"kernel\":\"\",\"cmdline\":\"\",\"disks\":[],\"nets\":[]}"

/* The sections a snapshot of a 1-vCPU VM has (the vCPU's contents are not
 * checked without a VM), pit and clock as fill gives them (0: a freshly
 * reset VM's), and extra, when given, one more section. */
static void write_state(struct snap_writer *w, const char *config, int fill, const char *extra)
{
	uint8_t zeros[16] = {0};

	snap_writer_init(w, "casulo-vmm test");
	if (config) {
		snap_section_begin(w, "vm.config", 1);
		snap_put_str(w, config);
		snap_section_end(w);
	}
	snap_section_begin(w, "irqchip", 1);
	snap_put_bytes(w, zeros, 16);
	snap_put_bytes(w, zeros, 16);
	snap_put_u64(w, 0xfec00000);
	snap_put_u32(w, 0);
	snap_put_u32(w, 0);
	snap_put_u32(w, 0);
	snap_put_u32(w, 24);
	for (int i = 0; i < 24; i++)
		snap_put_u64(w, 0x10000);
	snap_section_end(w);
	snap_section_begin(w, "pit", 1);
	for (int ch = 0; ch < 3; ch++) {
		uint8_t f[10] = {0, 0, 0, 0, 0, 0, 0, 0xff /* mode: never programmed */, 0, ch != 2};
		if (fill)
			memset(f, fill, sizeof(f));
		snap_put_u32(w, fill ? 0xffffffffu : 0x10000);
		snap_put_u16(w, fill ? 0xffff : 0);
		snap_put_bytes(w, f, sizeof(f));
		snap_put_u64(w, fill ? UINT64_MAX : 12345);
	}
	snap_put_u32(w, fill ? 0xffffffffu : 0);
	snap_section_end(w);
	snap_section_begin(w, "clock", 1);
	snap_put_u64(w, fill ? UINT64_MAX : 1000000000ULL);
	snap_section_end(w);
	snap_section_begin(w, "vcpu.0", 1);
	snap_put_u32(w, 0);
	snap_section_end(w);
	if (extra) {
		snap_section_begin(w, extra, 1);
		snap_put_str(w, CONFIG_OK);
		snap_section_end(w);
	}
}

/* vm_snapshot_check() on such a state; its message, or "" when it passes. */
static char *check_state(const char *config, int fill, const char *extra)
{
	struct snap_writer w;
	struct snap_reader r;
	struct vm_config cfg;
	struct err *e = NULL;
	char *msg;

	write_state(&w, config, fill, extra);
	CHECK_INT(snap_writer_finish(&w), ==, 0);
	CHECK_INT(snap_reader_parse(&r, w.buf, w.len, &e), ==, 0);
	if (vm_snapshot_check(&r, &cfg, &e) == 0) {
		CHECK(e == NULL);
		vm_config_free(&cfg);
		msg = strdup("");
	} else {
		CHECK(e != NULL && strchr(e->msg, '\n') == NULL);
		msg = strdup(e->msg);
		err_free(&e);
	}
	snap_reader_free(&r);
	snap_writer_free(&w);
	return msg;
}

#define EXPECT_CHECK(config, fill, extra, needle)                                                                      \
	do {                                                                                                           \
		char *_m = check_state(config, fill, extra);                                                           \
		if (*(needle) == '\0')                                                                                 \
			CHECK_STR(_m, "");                                                                             \
		else                                                                                                   \
			CHECK_CONTAINS(_m, needle);                                                                    \
		free(_m);                                                                                              \
	} while (0)

TEST(snapshot_check_passes_a_sound_state)
{
	EXPECT_CHECK(CONFIG_OK, 0, NULL, "");
}

TEST(snapshot_check_applies_the_command_line_limits)
{
	/* 2^44 + 256 MiB: shifted into bytes it would wrap to 256 MiB. */
	EXPECT_CHECK("{\"vcpus\":1,\"memory_mib\":17592186044672}", 0, NULL,
		     "section 'vm.config': memory_mib: 17592186044672 MiB is out of range");
	EXPECT_CHECK("{\"vcpus\":1,\"memory_mib\":67108864}", 0, NULL,
		     "section 'vm.config': memory_mib: 67108864 MiB is more than this host can map");
	EXPECT_CHECK("{\"vcpus\":1,\"memory_mib\":-5}", 0, NULL,
		     "section 'vm.config': memory_mib: -5 MiB is out of range");
	EXPECT_CHECK("{\"vcpus\":1,\"memory_mib\":8}", 0, NULL,
		     "section 'vm.config': memory_mib: 8 MiB is too small: guest RAM is at least 32 MiB");
	EXPECT_CHECK("{\"vcpus\":1000,\"memory_mib\":64}", 0, NULL,
		     "section 'vm.config': vcpus: 1000 vCPUs is out of range: 1-254 vCPUs");
	EXPECT_CHECK("{\"vcpus\":4294967297,\"memory_mib\":64}", 0, NULL, "vcpus: 4294967297 vCPUs is out of range");
	EXPECT_CHECK("{\"vcpus\":0,\"memory_mib\":64}", 0, NULL, "vcpus: 0 vCPUs is out of range");
}

TEST(snapshot_check_refuses_missing_or_foreign_config)
{
	EXPECT_CHECK(NULL, 0, NULL, "section 'vm.config' is missing");
	EXPECT_CHECK("not json", 0, NULL, "section 'vm.config': not valid JSON");
	EXPECT_CHECK("[1,2]", 0, NULL, "section 'vm.config': not a JSON object");
	EXPECT_CHECK("{\"vcpus\":1,\"memory_mib\":64,\"kernel\":\"/a\\u0000b\"}", 0, NULL,
		     "section 'vm.config': kernel: holds a NUL character");
}

TEST(snapshot_check_refuses_duplicate_and_contradictory_sections)
{
	EXPECT_CHECK(CONFIG_OK, 0, "vm.config", "section 'vm.config' appears twice");
	EXPECT_CHECK(CONFIG_OK, 0, "vcpu.0", "section 'vcpu.0' appears twice");
	EXPECT_CHECK(CONFIG_OK, 0, "vcpu.1", "section 'vcpu.1' contradicts section 'vm.config': vcpus is 1");
	EXPECT_CHECK(CONFIG_OK, 0, "vcpu.01", "section 'vcpu.01' contradicts");
	EXPECT_CHECK("{\"vcpus\":2,\"memory_mib\":64}", 0, NULL, "section 'vcpu.1' is missing (vm.config: vcpus is 2)");
}

TEST(snapshot_check_refuses_ff_filled_pit_and_clock)
{
	EXPECT_CHECK(CONFIG_OK, 0xff, NULL,
		     "section 'pit': channel 0: count 4294967295 is out of range (at most 65536)");
}

/* vm_snapshot_load() on DIR whose state is write_state(config) and whose
 * memory is what make_memory leaves: refused before any VM is built. */
static void expect_load_error(const char *config, int memory_kind, const char *needle)
{
	char dir[] = "/tmp/casulo-snap-XXXXXX", path[512];
	struct vm_config host;
	struct snap_writer w;
	struct err *e = NULL;
	struct vm *vm = calloc(1, sizeof(*vm));
	bool built = true;
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	write_state(&w, config, 0, NULL);
	snprintf(path, sizeof(path), "%s/state", dir);
	CHECK_INT(snap_writer_save(&w, path, &e), ==, 0);
	snap_writer_free(&w);
	snprintf(path, sizeof(path), "%s/memory", dir);
	if (memory_kind == 'd') {
		CHECK_INT(mkdir(path, 0700), ==, 0);
	} else if (memory_kind == 's') {
		fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		CHECK(fd >= 0 && ftruncate(fd, 40) == 0);
		close(fd);
	}
	vm_config_defaults(&host);
	CHECK_INT(vm_snapshot_load(vm, dir, &host, &built, &e), <, 0);
	CHECK(!built);
	CHECK(e != NULL && strchr(e->msg, '\n') == NULL);
	if (e)
		CHECK_CONTAINS(e->msg, needle);
	err_free(&e);
	rmdir(path);
	unlink(path);
	snprintf(path, sizeof(path), "%s/state", dir);
	unlink(path);
	rmdir(dir);
	free(vm);
}

TEST(snapshot_load_names_what_is_wrong)
{
	expect_load_error(NULL, 's', "section 'vm.config' is missing");
	expect_load_error("{\"vcpus\": 1,", 's', "section 'vm.config': not valid JSON");
	expect_load_error(CONFIG_OK, 'd', "memory file '/tmp/casulo-snap-");
	expect_load_error(CONFIG_OK, 'd', "/memory' is a directory, not a regular file");
	expect_load_error(CONFIG_OK, 's',
			  "truncated: the memory file is 40 bytes, section 'vm.config' gives the guest "
			  "64 MiB (67108864 bytes)");
	expect_load_error(CONFIG_OK, 'n', "memory file '/tmp/casulo-snap-");
}

/* A migration's tcp:HOST:PORT: addresses only (casulo-vmm resolves no
 * names), IPv4 and [IPv6], a numeric port; a listener on loopback takes
 * a connection made to the port it got. */
TEST(migration_addresses_are_numeric)
{
	struct sockaddr_in6 bound;
	socklen_t len = sizeof(bound);
	char why[256], spec[64];
	int l, c;

	CHECK_INT(stream_connect("tcp:localhost:7777", 1, why, sizeof(why)), ==, -EINVAL);
	CHECK_CONTAINS(why, "'localhost' is not an IPv4 or IPv6 address (casulo-vmm resolves no names)");
	CHECK_INT(stream_listen("tcp:127.0.0.1:http", why, sizeof(why)), ==, -EINVAL);
	CHECK_CONTAINS(why, "the port must be a number from 0 to 65535");
	CHECK_INT(stream_listen("tcp:127.0.0.1:65536", why, sizeof(why)), ==, -EINVAL);
	CHECK_INT(stream_listen("tcp:127.0.0.1:-1", why, sizeof(why)), ==, -EINVAL);
	CHECK_INT(stream_listen("udp:127.0.0.1:1", why, sizeof(why)), ==, -EINVAL);
	CHECK_CONTAINS(why, "is not tcp:HOST:PORT");

	l = stream_listen("tcp:[::1]:0", why, sizeof(why));
	if (l == -EADDRNOTAVAIL || l == -EAFNOSUPPORT)
		l = stream_listen("tcp:127.0.0.1:0", why, sizeof(why));
	CHECK_INT(l, >=, 0);
	CHECK_INT(getsockname(l, (struct sockaddr *)&bound, &len), ==, 0);
	snprintf(spec, sizeof(spec), bound.sin6_family == AF_INET6 ? "tcp:[::1]:%u" : "tcp:127.0.0.1:%u",
		 ntohs(bound.sin6_port));
	c = stream_connect(spec, 5, why, sizeof(why));
	CHECK_INT(c, >=, 0);
	close(c);
	close(l);
}
