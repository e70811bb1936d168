#include <limits.h>

#include "common/body.h"
#include "common/cpulist.h"
#include "common/migration-address.h"
#include "common/err.h"
#include "common/parse.h"
#include "common/sigsafe.h"
#include "common/strv.h"
#include "test.h"

TEST(parse_size_suffixes)
{
	uint64_t v = 0;

	CHECK_INT(parse_size("256M", &v), ==, 0);
	CHECK_INT(v, ==, 256ULL << 20);
	CHECK_INT(parse_size("4G", &v), ==, 0);
	CHECK_INT(v, ==, 4ULL << 30);
	CHECK_INT(parse_size("4096", &v), ==, 0);
	CHECK_INT(v, ==, 4096);
	CHECK_INT(parse_size("1MiB", &v), ==, 0);
	CHECK_INT(v, ==, 1 << 20);
	CHECK_INT(parse_size("2k", &v), ==, 0);
	CHECK_INT(v, ==, 2048);
}

TEST(parse_size_rejects_garbage)
{
	uint64_t v;

	CHECK_INT(parse_size("", &v), ==, -EINVAL);
	CHECK_INT(parse_size("M", &v), ==, -EINVAL);
	CHECK_INT(parse_size("-1G", &v), ==, -EINVAL);
	CHECK_INT(parse_size("12X", &v), ==, -EINVAL);
	CHECK_INT(parse_size("12MX", &v), ==, -EINVAL);
	CHECK_INT(parse_size("99999999999999999999", &v), ==, -ERANGE);
	CHECK_INT(parse_size("17179869184G", &v), ==, -ERANGE);
}

TEST(parse_duration_as_go)
{
	uint64_t v = 0;

	CHECK_INT(parse_duration_ns("100ms", &v), ==, 0);
	CHECK_INT(v, ==, 100000000);
	CHECK_INT(parse_duration_ns("5s", &v), ==, 0);
	CHECK_INT(v, ==, 5000000000LL);
	CHECK_INT(parse_duration_ns("1m30s", &v), ==, 0);
	CHECK_INT(v, ==, 90000000000LL);
	CHECK_INT(parse_duration_ns("1.5s", &v), ==, 0);
	CHECK_INT(v, ==, 1500000000LL);
	CHECK_INT(parse_duration_ns("250us", &v), ==, 0);
	CHECK_INT(v, ==, 250000);
	CHECK_INT(parse_duration_ns("2h", &v), ==, 0);
	CHECK_INT(v, ==, 7200000000000LL);
	CHECK_INT(parse_duration_ns("0", &v), ==, 0);
	CHECK_INT(v, ==, 0);
	CHECK_INT(parse_duration_ns("5", &v), ==, -EINVAL);
	CHECK_INT(parse_duration_ns("-1s", &v), ==, -EINVAL);
	CHECK_INT(parse_duration_ns("1e3s", &v), ==, -EINVAL);
	CHECK_INT(parse_duration_ns("1.2.3s", &v), ==, -EINVAL);
	CHECK_INT(parse_duration_ns("5 s", &v), ==, -EINVAL);
	CHECK_INT(parse_duration_ns("", &v), ==, -EINVAL);
	CHECK_INT(parse_duration_ns("99999999999h", &v), ==, -ERANGE);
}

TEST(parse_u32_range)
{
	uint32_t v;

	CHECK_INT(parse_u32("4294967295", &v), ==, 0);
	CHECK_INT(parse_u32("4294967296", &v), ==, -ERANGE);
	CHECK_INT(parse_u32("0x10", &v), ==, 0);
	CHECK_INT(v, ==, 16);
	CHECK_INT(parse_u32("10 ", &v), ==, -EINVAL);
}

TEST(parse_options_split)
{
	char buf[] = "path=a.img,readonly=on,flag";
	char *cur = buf, *k, *val;

	CHECK_INT(parse_next_option(&cur, &k, &val), ==, 1);
	CHECK_STR(k, "path");
	CHECK_STR(val, "a.img");
	CHECK_INT(parse_next_option(&cur, &k, &val), ==, 1);
	CHECK_STR(k, "readonly");
	CHECK_STR(val, "on");
	CHECK_INT(parse_next_option(&cur, &k, &val), ==, 1);
	CHECK_STR(k, "flag");
	CHECK(val == NULL);
	CHECK_INT(parse_next_option(&cur, &k, &val), ==, 0);
}

TEST(parse_option_duplicate_keys)
{
	char key[8];

	CHECK_INT(parse_option_duplicate("path=a.img,readonly=on", key, sizeof(key)), ==, 0);
	CHECK_INT(parse_option_duplicate("path=a.img,readonly=on,path=b.img", key, sizeof(key)), ==, 1);
	CHECK_STR(key, "path");
	CHECK_INT(parse_option_duplicate("on,on", key, sizeof(key)), ==, 0);
	CHECK_INT(parse_option_duplicate("irq-coalescing=on,irq-coalescing=off", key, sizeof(key)), ==, 1);
	CHECK_STR(key, "irq-coa");
	CHECK_INT(parse_option_duplicate("", key, sizeof(key)), ==, 0);
}

TEST(err_messages_name_object_and_cause)
{
	struct err *e = NULL;

	CHECK_INT(err_set(&e, ENOENT, "disk '%s': open", "a.img"), ==, -ENOENT);
	CHECK_STR(e->msg, "disk 'a.img': open: No such file or directory");
	CHECK_INT(err_wrap(&e, "vm"), ==, -ENOENT);
	CHECK_STR(e->msg, "vm: disk 'a.img': open: No such file or directory");
	err_free(&e);
	CHECK(e == NULL);
	CHECK_INT(err_setx(&e, 0, "kernel 'k': bad magic"), ==, -EINVAL);
	CHECK_STR(e->msg, "kernel 'k': bad magic");
	CHECK_INT(err_code(e), ==, EINVAL);
	err_free(&e);
}

TEST(err_fit_keeps_the_cause)
{
	char small[64], msg[300], tiny[10];

	CHECK_INT(err_fit(small, sizeof(small), "short: cause"), ==, 12);
	CHECK_STR(small, "short: cause");
	memset(msg, 'n', sizeof(msg));
	memcpy(msg, "disk '", 6);
	strcpy(msg + sizeof(msg) - 30, "': open: No such file");
	CHECK_INT(err_fit(small, sizeof(small), msg), <, (int)sizeof(small));
	CHECK(strncmp(small, "disk 'nnn", 9) == 0);
	CHECK(strstr(small, " ... ") != NULL);
	CHECK(strcmp(small + strlen(small) - 21, "': open: No such file") == 0);
	/* A cut never splits a UTF-8 character. */
	memset(msg, 0, sizeof(msg));
	for (int i = 0; i < 100; i++)
		memcpy(msg + 2 * i, "\xc3\xa9", 2);
	err_fit(small, sizeof(small), msg);
	for (const char *p = small; *p; p++)
		if ((unsigned char)*p == 0xc3)
			CHECK((unsigned char)p[1] == 0xa9);
	CHECK((unsigned char)small[strlen(small) - 1] == 0xa9);
	CHECK_INT(err_fit(tiny, sizeof(tiny), msg), ==, 0); /* no room for both ends */
}

TEST(cpulist_round_trip)
{
	cpu_set_t set;
	char buf[64];

	CHECK_INT(cpulist_parse("0-3,8,10-11", &set), ==, 0);
	CHECK_INT(CPU_COUNT(&set), ==, 7);
	CHECK(CPU_ISSET(8, &set) && !CPU_ISSET(9, &set));
	cpulist_format(&set, buf, sizeof(buf));
	CHECK_STR(buf, "0-3,8,10-11");
	CHECK_INT(cpulist_parse("5,1,2", &set), ==, 0);
	cpulist_format(&set, buf, sizeof(buf));
	CHECK_STR(buf, "1-2,5");
	/* Cut after the last whole item, never inside a number. */
	CHECK_INT(cpulist_parse("1,3,5,7,9,11", &set), ==, 0);
	cpulist_format(&set, buf, 8);
	CHECK_STR(buf, "1,3,5,7");
}

TEST(cpulist_rejects_garbage)
{
	cpu_set_t set, all;

	CHECK_INT(cpulist_parse("", &set), ==, -EINVAL);
	CHECK_INT(cpulist_parse("3-1", &set), ==, -EINVAL);
	CHECK_INT(cpulist_parse("1,", &set), ==, -EINVAL);
	CHECK_INT(cpulist_parse("a", &set), ==, -EINVAL);
	CHECK_INT(cpulist_parse("1;2", &set), ==, -EINVAL);
	CHECK_INT(cpulist_parse("-1", &set), ==, -EINVAL);
	CHECK_INT(cpulist_parse("99999", &set), ==, -ERANGE);
	CHECK_INT(cpulist_parse("0-99999999999999999999", &set), ==, -ERANGE);
	CHECK_INT(cpulist_parse("0-3", &all), ==, 0);
	CHECK_INT(cpulist_parse("2,7", &set), ==, 0);
	CHECK_INT(cpulist_first_outside(&set, &all), ==, 7);
	CHECK_INT(cpulist_first_outside(&all, &all), ==, -1);
}

static int record_item(void *opaque, unsigned index, const char *key, const char *value)
{
	char *out = opaque;
	size_t n = strlen(out);

	snprintf(out + n, 256 - n, "%u:%s=%s;", index, key, value ? value : "(none)");
	return strcmp(key, "stop") == 0 ? -EINTR : 0;
}

TEST(options_with_lists_keep_their_commas)
{
	static const char *const lists[] = {"cpus", NULL};
	char out[256] = "";

	CHECK_INT(parse_options_with_lists("vm,cpus=0-1,4,memory=1G,bare,cpus=2,5", lists, record_item, out), ==, 0);
	CHECK_STR(out, "0:vm=(none);1:cpus=0-1,4;2:memory=1G;3:bare=(none);4:cpus=2,5;");
	out[0] = '\0';
	CHECK_INT(parse_options_with_lists("a=1,stop=2,c=3", lists, record_item, out), ==, -EINTR);
	CHECK_STR(out, "0:a=1;1:stop=2;");
}

/* common/sigsafe.h: the SIGSYS message's and the runtime's heap-free text. */
TEST(sigsafe_text)
{
	char buf[16];
	size_t len = 0;

	sigsafe_append(buf, sizeof(buf), &len, "n=");
	sigsafe_append_long(buf, sizeof(buf), &len, -42);
	buf[len] = '\0';
	CHECK_STR(buf, "n=-42");
	len = 0;
	sigsafe_append_long(buf, sizeof(buf), &len, LONG_MIN);
	buf[len] = '\0';
	CHECK_STR(buf, "-92233720368547"); /* cut to the buffer, room kept for the NUL */
	len = 0;
	sigsafe_append_long(buf, sizeof(buf), &len, 0);
	sigsafe_append(buf, sizeof(buf), &len, " and more text than fits");
	buf[len] = '\0';
	CHECK_INT(len, ==, sizeof(buf) - 1);
	CHECK_STR(buf, "0 and more text");
}

TEST(body_in_chunks_up_to_its_limit)
{
	struct body b = {0};

	CHECK_STR(body_text(&b), "");
	CHECK_INT(body_append(&b, "{\"a\":", 5, 8), ==, 0);
	CHECK_INT(body_append(&b, "1}x", 3, 8), ==, 0); /* exactly the limit */
	CHECK(!b.too_large);
	CHECK_INT(b.len, ==, 8);
	CHECK_STR(body_text(&b), "{\"a\":1}x");
	/* One byte more: too large for good, the text kept as it was. */
	CHECK_INT(body_append(&b, "y", 1, 8), ==, 0);
	CHECK(b.too_large);
	CHECK_INT(body_append(&b, "", 0, 8), ==, 0);
	CHECK(b.too_large);
	CHECK_INT(b.len, ==, 8);
	body_free(&b);
	CHECK_STR(body_text(&b), "");
	/* A chunk longer than the limit on its own, and a huge length. */
	CHECK_INT(body_append(&b, "abcdef", 6, 4), ==, 0);
	CHECK(b.too_large && b.len == 0);
	b.too_large = false;
	CHECK_INT(body_append(&b, "ab", 2, 4), ==, 0);
	CHECK_INT(body_append(&b, "ab", SIZE_MAX, 4), ==, 0);
	CHECK(b.too_large && b.len == 2);
	body_free(&b);
}

TEST(strv_dup_length_free)
{
	char *argv[] = {"sh", "-c", "true", NULL};
	char **copy = strv_dup(argv);

	CHECK(copy != NULL && copy != argv);
	CHECK_INT(strv_length(copy), ==, 3);
	CHECK_STR(copy[2], "true");
	CHECK(copy[2] != argv[2] && copy[3] == NULL);
	strv_free(copy);
	CHECK_INT(strv_length(NULL), ==, 0);
	strv_free(NULL);
}

TEST(migration_address_names_resolved_numbers_kept)
{
	struct err *e = NULL;
	char out[64];

	CHECK_INT(migration_address_resolve("tcp:127.0.0.1:4000", out, sizeof(out), &e), ==, 0);
	CHECK_STR(out, "tcp:127.0.0.1:4000");
	CHECK_INT(migration_address_resolve("tcp:[::1]:4000", out, sizeof(out), &e), ==, 0);
	CHECK_STR(out, "tcp:[::1]:4000");
	CHECK_INT(migration_address_resolve("unix:/run/dest.sock", out, sizeof(out), &e), ==, 0);
	CHECK_STR(out, "unix:/run/dest.sock");
	/* Not tcp:NAME:PORT: as it is, for casulo-vmm to refuse. */
	CHECK_INT(migration_address_resolve("tcp::4000", out, sizeof(out), &e), ==, 0);
	CHECK_STR(out, "tcp::4000");
	/* localhost is in every /etc/hosts. */
	CHECK_INT(migration_address_resolve("tcp:localhost:4000", out, sizeof(out), &e), ==, 0);
	CHECK(strcmp(out, "tcp:127.0.0.1:4000") == 0 || strcmp(out, "tcp:[::1]:4000") == 0);
	CHECK_INT(migration_address_resolve("tcp:127.0.0.1:4000", out, 10, &e), ==, -ENAMETOOLONG);
	CHECK_CONTAINS(e->msg, "migration destination 'tcp:127.0.0.1:4000': too long");
	err_free(&e);
}
