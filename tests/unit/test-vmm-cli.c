/*
 * casulo-vmm's command line and its answers to bad input.  These fail
 * before /dev/kvm is opened, so they run anywhere (and under ASan).
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
#include "test.h"

static void vmm(struct proc_result *res, ...)
{
	char *argv[32];
	int n = 0;
	va_list ap;

	argv[n++] = (char *)test_env_path("CASULO_VMM");
	va_start(ap, res);
	for (char *a; n < 31 && (a = va_arg(ap, char *)) != NULL;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	CHECK_INT(proc_run(argv, NULL, res), ==, 0);
	CHECK(!res->timed_out);
}

/* Write len bytes of pattern (or of src, when given) to a temp file. */
static char *temp_file(const void *src, size_t len, int pattern)
{
	char *path = strdup("/tmp/casulo-cli-XXXXXX");
	int fd = mkstemp(path);
	char *buf = malloc(len ? len : 1);

	if (src)
		memcpy(buf, src, len);
	else
		memset(buf, pattern, len);
	CHECK(fd >= 0 && write(fd, buf, len) == (ssize_t)len);
	close(fd);
	free(buf);
	return path;
}

/* One line on stderr, naming the object and the cause; exit status 1. */
static void expect_error(struct proc_result *r, int status, const char *needle)
{
	CHECK(r->exited);
	CHECK_INT(r->status, ==, status);
	CHECK_CONTAINS(r->err, needle);
	CHECK_STR(r->out, "");
	if (status == 1) {
		const char *nl = strchr(r->err, '\n');
		CHECK(nl != NULL && nl[1] == '\0');
	}
	proc_result_free(r);
}

TEST(help_documents_every_option)
{
	struct proc_result r;
	static const char *const opts[] = { "--kernel", "--initrd", "--cmdline", "--cpus", "--memory",
					    "--console", "Ctrl-A", "0x604" };

	vmm(&r, "--help", NULL);
	CHECK_INT(r.status, ==, 0);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		CHECK_CONTAINS(r.out, opts[i]);
	proc_result_free(&r);
}

TEST(missing_kernel_file)
{
	struct proc_result r;

	vmm(&r, "--kernel", "/nonexistent/bzImage", NULL);
	expect_error(&r, 1, "casulo-vmm: kernel '/nonexistent/bzImage': open: No such file or directory");
}

TEST(kernel_with_wrong_magic)
{
	struct proc_result r;
	char *k = temp_file(NULL, 4096, 'A');

	vmm(&r, "--kernel", k, NULL);
	expect_error(&r, 1, "bad magic");
	unlink(k);
	free(k);
}

TEST(truncated_bzimage)
{
	uint8_t hdr[0x300] = { 0 };
	struct proc_result r;
	char *k;

	hdr[0x1f1] = 4;
	hdr[0x1fe] = 0x55;
	hdr[0x1ff] = 0xaa;
	memcpy(hdr + 0x202, "HdrS", 4);
	hdr[0x206] = 0x0f;
	hdr[0x207] = 0x02;
	hdr[0x211] = 1;
	hdr[0x236] = 1;
	k = temp_file(hdr, sizeof(hdr), 0);
	vmm(&r, "--kernel", k, NULL);
	expect_error(&r, 1, "truncated");
	unlink(k);
	free(k);
}

TEST(truncated_elf)
{
	struct proc_result r;
	char *k = temp_file("\177ELF\2\1\1", 7, 0);

	vmm(&r, "--kernel", k, NULL);
	expect_error(&r, 1, "truncated");
	unlink(k);
	free(k);
}

TEST(empty_kernel)
{
	struct proc_result r;
	char *k = temp_file(NULL, 0, 0);

	vmm(&r, "--kernel", k, NULL);
	expect_error(&r, 1, "file is empty");
	unlink(k);
	free(k);
}

TEST(kernel_larger_than_guest_memory)
{
	struct proc_result r;
	char *k = temp_file(NULL, 40 << 20, 0);

	vmm(&r, "--kernel", k, "--memory", "32M", NULL);
	expect_error(&r, 1, "is larger than guest memory");
	unlink(k);
	free(k);
}

TEST(kernel_is_a_directory)
{
	struct proc_result r;

	vmm(&r, "--kernel", "/tmp", NULL);
	expect_error(&r, 1, "not a regular file");
}

TEST(bad_initrd)
{
	struct proc_result r;
	char *k = temp_file("\177ELF", 4, 0), *empty = temp_file(NULL, 0, 0);

	/* The kernel is checked first; use a valid test guest when there is one. */
	const char *guest_dir = getenv("TEST_GUEST_DIR");
	char kernel[4096];

	if (!guest_dir)
		test_skip("TEST_GUEST_DIR is not set");
	snprintf(kernel, sizeof(kernel), "%s/test-guest.elf", guest_dir);
	vmm(&r, "--kernel", kernel, "--initrd", "/nonexistent.img", NULL);
	expect_error(&r, 1, "initrd '/nonexistent.img': open: No such file or directory");
	vmm(&r, "--kernel", kernel, "--initrd", empty, NULL);
	expect_error(&r, 1, "file is empty");
	unlink(k);
	unlink(empty);
	free(k);
	free(empty);
}

TEST(bad_options)
{
	struct proc_result r;

	vmm(&r, "--cpus", "0", NULL);
	expect_error(&r, 2, "--cpus '0'");
	vmm(&r, "--cpus", "many", NULL);
	expect_error(&r, 2, "--cpus 'many'");
	vmm(&r, "--cpus", "300", "--kernel", "/dev/null", NULL);
	expect_error(&r, 1, "cpus: 300 is out of range");
	vmm(&r, "--memory", "12X", NULL);
	expect_error(&r, 2, "--memory '12X': not a size");
	vmm(&r, "--memory", "100000001", "--kernel", "/dev/null", NULL);
	expect_error(&r, 1, "not a multiple of 2 MiB");
	vmm(&r, "--memory", "8M", "--kernel", "/dev/null", NULL);
	expect_error(&r, 1, "too small");
	vmm(&r, "--console", "tty", NULL);
	expect_error(&r, 2, "--console 'tty'");
	vmm(&r, "--bogus", NULL);
	expect_error(&r, 2, "Try 'casulo-vmm --help'");
	vmm(&r, "extra", NULL);
	expect_error(&r, 2, "unexpected argument 'extra'");
}

/* --- the options of virtio-rng, -console, -vsock, -balloon and the control socket --- */

TEST(device_options_in_help)
{
	static const char *const opts[] = { "--rng", "--console2", "--vsock", "CONNECT <port>", "--balloon",
					    "free-page-reporting", "--control-socket" };
	struct proc_result r;

	vmm(&r, "--help", NULL);
	CHECK_INT(r.status, ==, 0);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		CHECK_CONTAINS(r.out, opts[i]);
	proc_result_free(&r);
}

TEST(bad_device_options)
{
	struct proc_result r;

	vmm(&r, "--rng=maybe", NULL);
	expect_error(&r, 2, "--rng 'maybe': expected on or off");
	vmm(&r, "--console2", "serial", NULL);
	expect_error(&r, 2, "--console2 'serial': expected file:PATH, socket:PATH, pty or none");
	vmm(&r, "--vsock", "cid=1,socket=/tmp/v", NULL);
	expect_error(&r, 2, "--vsock 'cid=1,socket=/tmp/v': cid '1' is not a number from 3 to 4294967294");
	vmm(&r, "--vsock", "socket=/tmp/v", NULL);
	expect_error(&r, 2, "give both cid=N and socket=PATH");
	vmm(&r, "--balloon", "target=lots", NULL);
	expect_error(&r, 2, "--balloon 'target=lots': target 'lots' is not a size");
	vmm(&r, "--balloon", "stats=1,color=red", NULL);
	expect_error(&r, 2, "unknown key 'color'");
}
