#include "common/err.h"
#include "common/parse.h"
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
