/*
 * libcasulo-security's SELinux helpers (src/security/selinux.h) and
 * casulo-vmm's --selinux-label form (src/vmm/svirt.h): what needs no
 * SELinux on the host.  The labels themselves: tests/linux/selinux_tests.py.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "security/selinux.h"
#include "test.h"
#include "vmm/svirt.h"

TEST(context_pair_is_read_from_the_level)
{
	struct sel_pair p = {0, 0};

	CHECK(sel_context_pair("system_u:system_r:svirt_t:s0:c3,c1023", &p));
	CHECK_INT(p.a, ==, 3);
	CHECK_INT(p.b, ==, 1023);
	/* Not a pair: no categories, one, a range, out of range, unordered,
	 * a missing level, something after the pair. */
	CHECK(!sel_context_pair("system_u:system_r:kernel_t:s0", &p));
	CHECK(!sel_context_pair("u:r:t:s0:c3", &p));
	CHECK(!sel_context_pair("u:r:t:s0-s0:c0.c1023", &p));
	CHECK(!sel_context_pair("u:r:t:s0:c3,c1024", &p));
	CHECK(!sel_context_pair("u:r:t:s0:c7,c3", &p));
	CHECK(!sel_context_pair("u:r:t:s0:c3,c3", &p));
	CHECK(!sel_context_pair("u:r:t", &p));
	CHECK(!sel_context_pair("u:r:t:s0:c1,c2,c3", &p));
	CHECK(!sel_context_pair("unconfined", &p));
}

TEST(context_form)
{
	CHECK(sel_context_well_formed("system_u:system_r:svirt_t:s0:c1,c2"));
	CHECK(sel_context_well_formed("u:r:t:s0"));
	CHECK(!sel_context_well_formed("dynamic"));
	CHECK(!sel_context_well_formed("u:r:t"));
	CHECK(!sel_context_well_formed("u:r:t:"));
	CHECK(!sel_context_well_formed("u::t:s0"));
	CHECK(!sel_context_well_formed(":r:t:s0"));
	CHECK(!sel_context_well_formed("u:r:t:s0 x"));
	CHECK(!sel_context_well_formed("u:r:t:s0\n"));
}

TEST(context_gets_the_pair_as_its_level)
{
	struct sel_pair p = {17, 900};
	struct err *e = NULL;
	char *out = NULL;

	CHECK_INT(sel_context_with_pair("system_u:object_r:svirt_image_t:s0", &p, &out, &e), ==, 0);
	CHECK_STR(out, "system_u:object_r:svirt_image_t:s0:c17,c900");
	free(out);
	CHECK_INT(sel_context_with_level("system_u:system_r:svirt_t:s0:c1,c2", "s0:c5,c6", &out, &e), ==, 0);
	CHECK_STR(out, "system_u:system_r:svirt_t:s0:c5,c6");
	free(out);
	CHECK(sel_context_with_level("not a context", "s0", &out, &e) < 0);
	CHECK_CONTAINS(e->msg, "not a context");
	err_free(&e);
}

/* A fake random source: the numbers of seq, then 0s. */
static const unsigned *seq;
static size_t seq_len, seq_at;
static unsigned fake_rand(void)
{
	return seq_at < seq_len ? seq[seq_at++] : 0;
}

TEST(pair_pick_skips_pairs_in_use)
{
	/* The first random pair (5, 9) and the second (9, 5: the same pair)
	 * are in use, a == b is no pair, the fourth (2, 3) is free. */
	static const unsigned nums[] = {5, 9, 9, 5, 4, 4, 3, 2};
	struct sel_pair used[] = {{5, 9}, {1, 2}}, got = {0, 0};

	seq = nums, seq_len = 8, seq_at = 0;
	CHECK_INT(sel_pair_pick(used, 2, fake_rand, &got), ==, 0);
	CHECK_INT(got.a, ==, 2);
	CHECK_INT(got.b, ==, 3);
}

TEST(pair_pick_finds_the_last_free_pair_and_says_when_none_is)
{
	size_t n = 0, total = SEL_CATEGORIES * (SEL_CATEGORIES - 1) / 2;
	struct sel_pair *used = malloc(total * sizeof(*used)), got = {0, 0};

	for (unsigned a = 0; a < SEL_CATEGORIES; a++)
		for (unsigned b = a + 1; b < SEL_CATEGORIES; b++)
			if (!(a == 700 && b == 701))
				used[n++] = (struct sel_pair){a, b};
	seq = NULL, seq_len = 0, seq_at = 0;
	CHECK_INT(sel_pair_pick(used, n, fake_rand, &got), ==, 0);
	CHECK_INT(got.a, ==, 700);
	CHECK_INT(got.b, ==, 701);
	used[n++] = (struct sel_pair){700, 701};
	CHECK_INT(sel_pair_pick(used, n, fake_rand, &got), ==, -EAGAIN);
	free(used);
}

static void write_attr(const char *root, const char *pid, const char *ctx)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, pid);
	CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/%s/attr", root, pid);
	CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/%s/attr/current", root, pid);
	CHECK((f = fopen(path, "w")) != NULL);
	/* As the kernel writes it: with its NUL. */
	fwrite(ctx, 1, strlen(ctx) + 1, f);
	fclose(f);
}

TEST(pairs_in_use_come_from_every_process)
{
	char root[] = "/tmp/casulo-selinux-XXXXXX";
	struct sel_pair *used = NULL;
	size_t nused = 0;
	struct err *e = NULL;
	char cmd[600];

	CHECK(mkdtemp(root) != NULL);
	write_attr(root, "1", "system_u:system_r:init_t:s0");
	write_attr(root, "40", "system_u:system_r:svirt_t:s0:c10,c20");
	write_attr(root, "41", "system_u:system_r:svirt_t:s0:c30,c40\n");
	write_attr(root, "self", "system_u:system_r:svirt_t:s0:c50,c60");
	CHECK_INT(sel_pairs_in_use(root, &used, &nused, &e), ==, 0);
	CHECK_INT(nused, ==, 2);
	CHECK((used[0].a == 10 && used[1].a == 30) || (used[0].a == 30 && used[1].a == 10));
	free(used);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	CHECK(system(cmd) == 0);
	used = NULL, nused = 0;
	CHECK(sel_pairs_in_use("/nonexistent-proc", &used, &nused, &e) < 0);
	CHECK_CONTAINS(e->msg, "/nonexistent-proc");
	err_free(&e);
}

TEST(relabel_without_selinux_names_the_file)
{
	struct sel_relabel r = {0};
	struct err *e = NULL;

	CHECK(sel_relabel_file(&r, "disk 'x'", "/nonexistent/x.img", "u:object_r:t:s0", &e) < 0);
	CHECK_CONTAINS(e->msg, "disk 'x'");
	CHECK_INT(r.n, ==, 0);
	err_free(&e);
	CHECK_INT(sel_relabel_restore(&r), ==, 0);
}

TEST(vmm_label_option_form)
{
	struct err *e = NULL;

	CHECK_INT(vmm_svirt_parse("dynamic", &e), ==, 0);
	CHECK_INT(vmm_svirt_parse("system_u:system_r:svirt_t:s0:c1,c2", &e), ==, 0);
	CHECK(vmm_svirt_parse("static", &e) < 0);
	CHECK_STR(e->msg, "--selinux-label 'static': expected dynamic or USER:ROLE:TYPE:LEVEL");
	err_free(&e);
}
