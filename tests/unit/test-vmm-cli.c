/*
 * casulo-vmm's command line and its answers to bad input.  These fail
 * before /dev/kvm is opened, so they run anywhere (and under ASan).
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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
	static const char *const opts[] = {"--kernel", "--initrd",  "--cmdline", "--cpus",
					   "--memory", "--console", "Ctrl-A",	 "0x604"};

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
	uint8_t hdr[0x300] = {0};
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

/* --cpus pins and --cgroup limits: refused before anything is made. */
TEST(bad_affinity_and_cgroup_options)
{
	struct proc_result r;

	vmm(&r, "--cpus", "2,affinity=0:0;2:0", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "--cpus affinity '2:0': vCPU '2' does not exist (the VM has 2: 0-1)");
	vmm(&r, "--cpus", "2,affinity=0:0;0:0", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "vCPU 0 is pinned twice");
	vmm(&r, "--cpus", "1,affinity=0:99999", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "--cpus affinity '0:99999': host CPU number too large");
	vmm(&r, "--cpus", "1,affinity=0:1000", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "host CPU 1000 is not one this VMM may run on");
	vmm(&r, "--cpus", "1,affinity=0", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "expected VCPU:HOST_CPUS");
	vmm(&r, "--cpus", "1,vmm-affinity=3-1", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "--cpus vmm-affinity '3-1': not a host CPU list");
	vmm(&r, "--cpus", "1,pin=0", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "--cpus: unknown key 'pin'");
	/* A memory limit below guest RAM and the VMM's share: nothing is made. */
	vmm(&r, "--memory", "256M", "--cgroup", "casulo-cli-test,memory=200M", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2,
		     "--cgroup 'casulo-cli-test': memory=200 MiB is below what the VM needs: 256 MiB of guest RAM "
		     "and 33 MiB for the VMM (at least 289 MiB)");
	vmm(&r, "--cgroup", "casulo-cli-test,memory=lots", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "--cgroup: memory 'lots': not a size");
	vmm(&r, "--cgroup", "memory=1G", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "no cgroup path");
	vmm(&r, "--cgroup", "x,cpu-weight=0", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "cpu-weight '0': expected a number from 1 to 10000");
}

TEST(bad_options)
{
	struct proc_result r;

	/* Every bad --cpus and --memory exits 2, naming the unit and the limit. */
	vmm(&r, "--cpus", "0", NULL);
	expect_error(&r, 2, "--cpus '0': 0 vCPUs is out of range: 1-254 vCPUs");
	vmm(&r, "--cpus", "255", NULL);
	expect_error(&r, 2, "--cpus '255': 255 vCPUs is out of range: 1-254 vCPUs");
	vmm(&r, "--cpus", "many", NULL);
	expect_error(&r, 2, "--cpus 'many': not a number of vCPUs (1-254)");
	vmm(&r, "--cpus", "300", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "--cpus '300': 300 vCPUs is out of range");
	vmm(&r, "--memory", "12X", NULL);
	expect_error(&r, 2, "--memory '12X': not a size: bytes, or a number with K, M, G or T");
	vmm(&r, "--memory", "-1", NULL);
	expect_error(&r, 2, "--memory '-1': not a size");
	vmm(&r, "--memory", "0", NULL);
	expect_error(&r, 2, "--memory '0': 0 bytes is too small: guest RAM is at least 32 MiB");
	vmm(&r, "--memory", "256", NULL);
	expect_error(&r, 2,
		     "--memory '256': 256 bytes is too small: guest RAM is at least 32 MiB (a size "
		     "without K, M, G or T is in bytes: 256M is 256 MiB)");
	vmm(&r, "--memory", "100000001", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "--memory '100000001': 100000001 bytes is not a multiple of 2 MiB");
	vmm(&r, "--memory", "8M", "--kernel", "/dev/null", NULL);
	expect_error(&r, 2, "--memory '8M': 8 MiB is too small: guest RAM is at least 32 MiB");
	/* 1 TiB and the 1 GiB hole need 41 address bits: more than most hosts
	 * (and the lab) have; 64 TiB more than any x86 host's user space. */
	vmm(&r, "--memory", "64T", NULL);
	expect_error(&r, 2, "--memory '64T': 67108864 MiB is more than this host can map: at most");
	vmm(&r, "--memory", "99999999999T", NULL);
	expect_error(&r, 2, "--memory '99999999999T': too large: at most");
	vmm(&r, "--console", "tty", NULL);
	expect_error(&r, 2, "--console 'tty'");
	vmm(&r, "--bogus", NULL);
	expect_error(&r, 2, "Try 'casulo-vmm --help'");
	vmm(&r, "extra", NULL);
	expect_error(&r, 2, "unexpected argument 'extra'");
}

/* --- the options of virtio-rng, -console, -vsock and -balloon --- */

TEST(device_options_in_help)
{
	static const char *const opts[] = {"--rng",	     "--console2", "--vsock",
					   "CONNECT <port>", "--balloon",  "free-page-reporting"};
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

	/* A key given twice: which one would count? */
	vmm(&r, "--disk", "path=/tmp/a.img,path=/tmp/b.img", NULL);
	expect_error(&r, 2, "--disk 'path=/tmp/a.img,path=/tmp/b.img': 'path' is given twice");
	vmm(&r, "--disk", "path=/tmp/a.img,lock=maybe", NULL);
	expect_error(&r, 2, "--disk 'path=/tmp/a.img,lock=maybe': lock 'maybe' is not on or off");
	vmm(&r, "--net", "tap=t0,mac=52:54:00:12:34:56,mac=52:54:00:12:34:57", NULL);
	expect_error(&r, 2, "'mac' is given twice");
	vmm(&r, "--fs", "tag=a,path=/tmp,tag=b", NULL);
	expect_error(&r, 2, "'tag' is given twice");
	vmm(&r, "--vsock", "cid=3,socket=/tmp/v,cid=4", NULL);
	expect_error(&r, 2, "'cid' is given twice");
	vmm(&r, "--balloon", "stats=1,stats=2", NULL);
	expect_error(&r, 2, "'stats' is given twice");
	vmm(&r, "--debug-exit", "port=0x501,port=0x502", NULL);
	expect_error(&r, 2, "'port' is given twice");

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

/* --- multiboot images, --module and --debug-exit --- */

TEST(multiboot_options_in_help)
{
	static const char *const opts[] = {"multiboot", "--module PATH[,cmdline=STR]", "--debug-exit", "(V << 1) | 1"};
	struct proc_result r;

	vmm(&r, "--help", NULL);
	CHECK_INT(r.status, ==, 0);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		CHECK_CONTAINS(r.out, opts[i]);
	proc_result_free(&r);
}

/* A flat multiboot image (a.out kludge) of 8 KiB loading at 1 MiB: header
 * at offset 0x40, flags and address fields as given. */
static char *multiboot_image(uint32_t flags, uint32_t load_addr, uint32_t load_end, uint32_t bss_end, uint32_t entry,
			     int bad_checksum)
{
	uint32_t h[8] = {0x1BADB002, flags, 0, load_addr + 0x40, load_addr, load_end, bss_end, entry};
	uint8_t img[8192] = {0};

	h[2] = -(h[0] + h[1]) + (bad_checksum ? 1 : 0);
	memcpy(img + 0x40, h, sizeof(h));
	return temp_file(img, sizeof(img), 0);
}

static void expect_multiboot_error(uint32_t flags, uint32_t load_addr, uint32_t load_end, uint32_t bss_end,
				   uint32_t entry, int bad_checksum, const char *needle)
{
	char *k = multiboot_image(flags, load_addr, load_end, bss_end, entry, bad_checksum), want[256];
	struct proc_result r;

	vmm(&r, "--kernel", k, NULL);
	/* One line that names the file and the cause. */
	snprintf(want, sizeof(want), "casulo-vmm: kernel '%s': ", k);
	CHECK_CONTAINS(r.err, want);
	expect_error(&r, 1, needle);
	unlink(k);
	free(k);
}

TEST(multiboot_bad_headers)
{
	const uint32_t aout = 0x10003, mib = 0x100000;

	expect_multiboot_error(aout, mib, 0, 0, mib + 0x100, 1, "bad checksum");
	expect_multiboot_error(aout | 0x4, mib, 0, 0, mib + 0x100, 0, "video mode (flag 2)");
	expect_multiboot_error(aout | 0x20, mib, 0, 0, mib + 0x100, 0, "requires flag 5");
	expect_multiboot_error(0x3, mib, 0, 0, mib + 0x100, 0, "not an ELF and has no address fields");
	expect_multiboot_error(aout, 0x80000, 0, 0, 0x80100, 0, "below 1 MiB");
	expect_multiboot_error(aout, 0xbffff000, 0, 0xc0100000, 0xbffff100, 0, "in the MMIO hole");
	expect_multiboot_error(aout, mib, mib + 0x10000, 0, mib + 0x100, 0, "past the end of the file");
	expect_multiboot_error(aout, mib, mib + 0x1000, mib + 0x800, mib + 0x100, 0, "bss_end_addr");
	expect_multiboot_error(aout, mib, 0, 0, mib + 0x3000, 0, "entry_addr 0x103000 lies outside the image");
	expect_multiboot_error(aout, 0x80000000, 0, 0, 0x80000100, 0, "needs guest memory up to 2049 MiB");
}

TEST(multiboot_modules_are_checked)
{
	char *k = multiboot_image(0x10003, 0x100000, 0, 0, 0x100100, 0), *empty = temp_file(NULL, 0, 0);
	const char *guest_dir = getenv("TEST_GUEST_DIR");
	char elf[4096];
	struct proc_result r;

	vmm(&r, "--kernel", k, "--module", "/nonexistent.mod,cmdline=a b", NULL);
	expect_error(&r, 1, "module '/nonexistent.mod': open: No such file or directory");
	vmm(&r, "--kernel", k, "--module", empty, NULL);
	expect_error(&r, 1, "file is empty");
	vmm(&r, "--kernel", k, "--module", ",cmdline=x", NULL);
	expect_error(&r, 2, "--module ',cmdline=x': no path given");
	if (guest_dir) {
		snprintf(elf, sizeof(elf), "%s/test-guest.elf", guest_dir);
		vmm(&r, "--kernel", elf, "--module", k, NULL);
		expect_error(&r, 1, "only multiboot kernels take modules");
	}
	vmm(&r, "--restore", "/tmp", "--module", k, NULL);
	expect_error(&r, 2, "--module do not go with --restore");
	vmm(&r, "--restore", "/tmp", "--memory", "512M", NULL);
	expect_error(&r, 2, "--memory does not go with --restore, --wait or --incoming");
	vmm(&r, "--incoming", "tcp:127.0.0.1:1", "--memory", "size=256M,hugepages=2M", NULL);
	expect_error(&r, 2, "the memory is the snapshot's or the source VM's");
	unlink(k);
	unlink(empty);
	free(k);
	free(empty);
}

TEST(bad_debug_exit_options)
{
	struct proc_result r;

	vmm(&r, "--debug-exit", "size=3", NULL);
	expect_error(&r, 2, "--debug-exit 'size=3': size '3' is not 1, 2 or 4");
	vmm(&r, "--debug-exit=port=0x10000", NULL);
	expect_error(&r, 2, "port '0x10000' is not a port number");
	vmm(&r, "--debug-exit", "port=0xfffe", NULL);
	expect_error(&r, 2, "ports 0xfffe-0x10001 run past 0xffff");
	vmm(&r, "--debug-exit=colour=red", NULL);
	expect_error(&r, 2, "unknown key 'colour'");
}

/* --landlock and --snapshot-dir: bad values are refused before any work;
 * under Landlock a missing kernel is named as without it. */
TEST(landlock_options)
{
	struct proc_result r;

	vmm(&r, "--landlock", "maybe", NULL);
	expect_error(&r, 2, "--landlock 'maybe': expected on or off");
	vmm(&r, "--landlock", "on", "--kernel", "/nonexistent/vmlinuz", NULL);
	expect_error(&r, 1, "/nonexistent/vmlinuz");
	vmm(&r, "--landlock", "on", "--snapshot-dir", "/nonexistent/snaps", "--kernel", "/nonexistent/vmlinuz", NULL);
	if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1U) >= 0)
		expect_error(&r, 1, "--snapshot-dir: landlock: '/nonexistent/snaps': No such file or directory");
	else
		proc_result_free(&r);
	vmm(&r, "--landlock", "off", "--snapshot-dir", "/tmp", "--kernel", "/nonexistent/vmlinuz", NULL);
	expect_error(&r, 2, "--snapshot-dir does not go with --landlock off");
	/* on by default: --snapshot-dir alone is checked as with --landlock on */
	vmm(&r, "--snapshot-dir", "/nonexistent/snaps", "--kernel", "/nonexistent/vmlinuz", NULL);
	if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1U) >= 0)
		expect_error(&r, 1, "--snapshot-dir: landlock: '/nonexistent/snaps': No such file or directory");
	else
		proc_result_free(&r);
	/* --restore: the snapshot's configuration is read before the
	 * confinement, so a missing one is named then */
	vmm(&r, "--restore", "/nonexistent/snap", NULL);
	expect_error(&r, 1, "/nonexistent/snap");
	vmm(&r, "--help", NULL);
	CHECK_CONTAINS(r.out, "--landlock MODE     on (default)");
	CHECK_CONTAINS(r.out, "--snapshot-dir DIR");
	CHECK_CONTAINS(r.out, "off. Default: on");
	proc_result_free(&r);
}

/* --memory: the combinations no host serves exit 2; what this host lacks
 * exits 1; both before any KVM work, in one line. */
TEST(bad_memory_options)
{
	struct proc_result r;
	char *small = temp_file(NULL, 4096, 0);
	char spec[256];

	vmm(&r, "--memory", "size=256M,mergeable=on,hugepages=2M", NULL);
	expect_error(&r, 2, "mergeable=on with hugepages: KSM merges only 4 KiB anonymous pages");
	vmm(&r, "--memory", "size=256M,mergeable=on,shared=on", NULL);
	expect_error(&r, 2, "mergeable=on with shared memory");
	vmm(&r, "--memory", "size=256M,backend=memfd,mergeable=on", NULL);
	expect_error(&r, 2, "mergeable=on with shared memory");
	vmm(&r, "--memory", "size=256M,host-nodes=0", NULL);
	expect_error(&r, 2, "host-nodes= needs policy=bind, preferred or interleave");
	vmm(&r, "--memory", "size=256M,policy=bind", NULL);
	expect_error(&r, 2, "policy=bind needs host-nodes=");
	vmm(&r, "--memory", "size=256M,host-nodes=0-1,policy=preferred", NULL);
	expect_error(&r, 2, "policy=preferred takes one node");
	vmm(&r, "--memory", "size=258M,hugepages=1G", NULL);
	expect_error(&r, 2, "258 MiB is not a multiple of the 1G hugepage size");
	vmm(&r, "--memory", "size=256M,hugepages=4M", NULL);
	expect_error(&r, 2, "hugepages '4M': expected off, 2M or 1G");
	vmm(&r, "--memory", "size=256M,backend=disk", NULL);
	expect_error(&r, 2, "backend 'disk': expected anon, memfd or file:PATH");
	vmm(&r, "--memory", "backend=memfd", NULL);
	expect_error(&r, 2, "size= is missing");
	vmm(&r, "--memory", "size=256M,size=512M", NULL);
	expect_error(&r, 2, "'size' is given twice");
	vmm(&r, "--memory", "size=256M,host-nodes=64,policy=bind", NULL);
	expect_error(&r, 2, "host-nodes '64': expected node numbers 0-63");
	vmm(&r, "--memory", "size=256M,colour=red", NULL);
	expect_error(&r, 2, "unknown key 'colour'");

	/* The host's part. */
	snprintf(spec, sizeof(spec), "size=256M,backend=file:%s,shared=on", small);
	vmm(&r, "--memory", spec, "--kernel", "/dev/null", NULL);
	expect_error(&r, 1, "is 4096 bytes, smaller than the guest's 256 MiB");
	vmm(&r, "--memory", "size=256M,backend=file:/tmp,shared=on", "--kernel", "/dev/null", NULL);
	expect_error(&r, 1, "backend file '/tmp' is not a regular file");
	vmm(&r, "--memory", "size=256M,host-nodes=63,policy=bind", "--kernel", "/dev/null", NULL);
	expect_error(&r, 1, "host-nodes: node 63 does not exist on this host");
	/* No host has a 64 TiB pool of free 1G pages. */
	vmm(&r, "--memory", "size=16T,hugepages=1G", "--kernel", "/dev/null", NULL);
	CHECK(r.exited && r.status != 0);
	proc_result_free(&r);
	if (access("/sys/kernel/mm/hugepages/hugepages-1048576kB", F_OK) != 0) {
		vmm(&r, "--memory", "size=1G,hugepages=1G", "--kernel", "/dev/null", NULL);
		expect_error(&r, 1, "hugepages=1G: this host has no 1G pages");
	} else {
		vmm(&r, "--memory", "size=1T,hugepages=1G", "--kernel", "/dev/null", NULL);
		expect_error(&r, 1, "free 1G pages, the host's pool has");
	}
	unlink(small);
	free(small);
}

/* --selinux-label: a malformed value is a bad option (2); asking for a
 * label where SELinux is off is a one-line error (1), before any file is
 * touched.  With SELinux on: tests/linux/selinux_tests.py. */
TEST(selinux_label_option)
{
	struct proc_result r;

	vmm(&r, "--selinux-label", "static", NULL);
	expect_error(&r, 2, "casulo-vmm: --selinux-label 'static': expected dynamic or USER:ROLE:TYPE:LEVEL");
	vmm(&r, "--selinux-label", "dynamic", "--wait", "--api-socket", "/nonexistent/api.sock", NULL);
	expect_error(&r, 2, "--selinux-label does not go with --wait");
	if (access("/sys/fs/selinux/enforce", F_OK) == 0)
		test_skip("SELinux is enabled here: its labels are tests/linux/selinux_tests.py's");
	vmm(&r, "--selinux-label", "dynamic", "--restore", "/nonexistent/snap", NULL);
	expect_error(&r, 1, "casulo-vmm: --selinux-label: SELinux is not enabled on this host");
	vmm(&r, "--selinux-label", "dynamic", "--incoming", "tcp:127.0.0.1:1", NULL);
	expect_error(&r, 1, "casulo-vmm: --selinux-label: SELinux is not enabled on this host");
	vmm(&r, "--selinux-label", "dynamic", "--disk", "path=/nonexistent/disk.img", NULL);
	expect_error(&r, 1, "casulo-vmm: --selinux-label: SELinux is not enabled on this host");
	vmm(&r, "--selinux-label", "system_u:system_r:svirt_t:s0:c1,c2", NULL);
	expect_error(&r, 1, "casulo-vmm: --selinux-label: SELinux is not enabled on this host");
}
