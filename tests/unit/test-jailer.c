/* libcasulo-jailer's pure parts: ids, the per-VM path, the libraries a
 * program needs, and the tree removal that must not leave the jail. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "jailer/jailer.h"
#include "test.h"

static int make_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -errno;
}

TEST(jail_ids)
{
	struct err *e = NULL;
	char long_id[JAIL_ID_MAX + 2];

	CHECK_INT(jail_check_id("vm-1_a", &e), ==, 0);
	CHECK_INT(jail_check_id("", &e), ==, -EINVAL);
	CHECK_CONTAINS(e->msg, "1 to 64 characters");
	CHECK_INT(jail_check_id("../x", &e), ==, -EINVAL);
	CHECK_CONTAINS(e->msg, "jail id '../x'");
	CHECK_INT(jail_check_id("a/b", &e), ==, -EINVAL);
	CHECK_INT(jail_check_id("a.b", &e), ==, -EINVAL);
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	CHECK_INT(jail_check_id(long_id, &e), ==, -EINVAL);
	long_id[JAIL_ID_MAX] = '\0';
	CHECK_INT(jail_check_id(long_id, &e), ==, 0);
	err_free(&e);
}

TEST(jail_dir_is_base_exec_name_id)
{
	char *d = jail_dir("/srv/j", "/usr/local/bin/casulo-vmm", "vm1");
	CHECK_STR(d, "/srv/j/casulo-vmm/vm1");
	free(d);
}

/* A dynamic program's libraries, as its loader resolves them: libc and
 * the loader itself at least; a missing --lib is named. */
TEST(jail_libs_of_a_dynamic_program)
{
	struct err *e = NULL;
	char **libs = NULL;
	size_t n = 0;
	bool libc = false, loader = false;

	if (access("/bin/true", X_OK) != 0)
		test_skip("no /bin/true");
	CHECK_INT(jail_find_libs("/bin/true", NULL, 0, &libs, &n, &e), ==, 0);
	for (size_t i = 0; i < n; i++) {
		CHECK(libs[i][0] == '/');
		libc |= strstr(libs[i], "/libc.so.6") != NULL;
		loader |= strstr(libs[i], "ld-linux") != NULL;
		free(libs[i]);
	}
	free(libs);
	CHECK(libc && loader);
	char *missing[] = {"libnone-such.so.7"};
	CHECK_INT(jail_find_libs("/bin/true", missing, 1, &libs, &n, &e), ==, -ENOENT);
	CHECK_CONTAINS(e->msg, "library 'libnone-such.so.7'");
	err_free(&e);
}

TEST(jail_libs_refuses_what_is_not_elf)
{
	struct err *e = NULL;
	char **libs;
	size_t n;
	char path[] = "/tmp/test-jailer-XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	CHECK_INT(write(fd, "#!/bin/sh\n", 10), ==, 10);
	close(fd);
	CHECK_INT(jail_find_libs(path, NULL, 0, &libs, &n, &e), <, 0);
	CHECK_CONTAINS(e->msg, "not a 64-bit ELF executable");
	unlink(path);
	err_free(&e);
}

/* What the jailed program left under its /run is removed, and a symlink
 * it made to a host directory is removed as a link: the host directory
 * keeps its files. */
TEST(jail_remove_tree_never_follows_a_symlink)
{
	char top[] = "/tmp/test-jailer-XXXXXX", host[] = "/tmp/test-jailer-host-XXXXXX", p[512];

	CHECK(mkdtemp(top) && mkdtemp(host));
	snprintf(p, sizeof(p), "%s/keep", host);
	CHECK_INT(make_file(p, "host file"), ==, 0);
	snprintf(p, sizeof(p), "%s/root", top);
	CHECK_INT(mkdir(p, 0755), ==, 0);
	snprintf(p, sizeof(p), "%s/root/run", top);
	CHECK_INT(mkdir(p, 0700), ==, 0);
	snprintf(p, sizeof(p), "%s/root/run/link", top);
	CHECK_INT(symlink(host, p), ==, 0);
	snprintf(p, sizeof(p), "%s/root/run/file", top);
	CHECK_INT(make_file(p, "x"), ==, 0);
	CHECK_INT(remove_tree_path(top), ==, 0);
	CHECK(access(top, F_OK) != 0);
	snprintf(p, sizeof(p), "%s/keep", host);
	CHECK_INT(access(p, F_OK), ==, 0);
	unlink(p);
	rmdir(host);
	CHECK_INT(remove_tree_path("/tmp/test-jailer-none-such"), ==, 0);
}
