/*
 * The `kvm` suite: casulo-vmm boots the tiny test guest (tests/kvm/guest/)
 * in each boot format and checks what the guest reports.  Runs on any
 * /dev/kvm, including the instruction-emulating kvm_pvm.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "test.h"

static void need_kvm(void)
{
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		test_skip("/dev/kvm is not usable: %s", strerror(errno));
}

static int host_is_kvm_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

static const char *guest(const char *name)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/%s", test_env_path("TEST_GUEST_DIR"), name);
	return path;
}

/* Run casulo-vmm with the given arguments (NULL-terminated). */
static void vmm(struct proc_result *res, const struct proc_opts *opts, ...)
{
	char *argv[32];
	int n = 0;
	va_list ap;

	argv[n++] = (char *)test_env_path("CASULO_VMM");
	va_start(ap, opts);
	for (char *a; n < 31 && (a = va_arg(ap, char *)) != NULL;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	CHECK_INT(proc_run(argv, opts, res), ==, 0);
	if (res->timed_out)
		test_fail_at(__FILE__, __LINE__, "casulo-vmm timed out; stdout: %s stderr: %s", res->out, res->err);
}

static void boot_hello(const char *image, const char *expect_mode)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest(image), "--cmdline", "test=hello status=42", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 42);
	CHECK_CONTAINS(r.out, expect_mode);
	CHECK_CONTAINS(r.out, "cmdline 'test=hello status=42'");
	CHECK_CONTAINS(r.out, "hello from the test guest");
	CHECK_STR(r.err, "");
	proc_result_free(&r);
}

TEST(boot_elf_64bit_entry) { boot_hello("test-guest.elf", "boot 64bit"); }
TEST(boot_elf_pvh_entry) { boot_hello("test-guest-pvh.elf", "boot pvh"); }
TEST(boot_bzimage_64bit_entry) { boot_hello("test-guest.bzimage", "boot 64bit"); }

TEST(e820_map_below_4g)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=e820", "--memory", "256M", NULL);
	CHECK_INT(r.status, ==, 0);
	CHECK_CONTAINS(r.out, "e820: 0x0 0x9fc00 type 1");
	CHECK_CONTAINS(r.out, "e820: 0x100000 0xff00000 type 1");
	/* 256 MiB minus the 385 KiB of EBDA and BIOS area. */
	CHECK_CONTAINS(r.out, "ram-kib: 261759\r\n");
	proc_result_free(&r);
}

TEST(e820_map_4g_guest_splits_around_hole)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=e820", "--memory", "4G", NULL);
	CHECK_INT(r.status, ==, 0);
	CHECK_CONTAINS(r.out, "e820: 0x100000 0xbff00000 type 1");
	CHECK_CONTAINS(r.out, "e820: 0x100000000 0x40000000 type 1");
	CHECK_CONTAINS(r.out, "ram-kib: 4193919\r\n");
	proc_result_free(&r);
}

static void initrd_round_trip(const char *image)
{
	char path[] = "/tmp/casulo-initrd-XXXXXX", expect[96];
	unsigned char data[100000];
	uint32_t sum = 0;
	struct proc_result r;
	int fd;

	need_kvm();
	srand((unsigned)time(NULL));
	for (size_t i = 0; i < sizeof(data); i++) {
		data[i] = (unsigned char)rand();
		sum = sum * 31 + data[i];
	}
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, data, sizeof(data)), ==, sizeof(data));
	close(fd);
	vmm(&r, NULL, "--kernel", guest(image), "--initrd", path, "--cmdline", "test=initrd", NULL);
	unlink(path);
	CHECK_INT(r.status, ==, 0);
	snprintf(expect, sizeof(expect), "initrd: size %zu sum 0x%x aligned 1", sizeof(data), sum);
	CHECK_CONTAINS(r.out, expect);
	proc_result_free(&r);
}

TEST(initrd_via_boot_params) { initrd_round_trip("test-guest.elf"); }
TEST(initrd_via_bzimage) { initrd_round_trip("test-guest.bzimage"); }
TEST(initrd_via_pvh_modlist) { initrd_round_trip("test-guest-pvh.elf"); }

TEST(cpuid_reports_hypervisor_and_apic_id)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=cpuid", NULL);
	CHECK_CONTAINS(r.out, "apic-id: 0 hypervisor: 1 signature: KVMKVMKVM");
	proc_result_free(&r);
}

TEST(acpi_tables_checksum_and_madt)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=acpi", "--cpus", "3", NULL);
	CHECK_CONTAINS(r.out, "acpi: tables ok dsdt ok cpus 3");
	proc_result_free(&r);
}

TEST(smp_all_vcpus_start)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=smp cpus=4", "--cpus", "4", NULL);
	CHECK_INT(r.status, ==, 0);
	/* Three APs came up, with APIC IDs 1, 2 and 3. */
	CHECK_CONTAINS(r.out, "smp: cpus up 4 ap-bitmap 0xe");
	proc_result_free(&r);
}

TEST(serial_input_reaches_guest)
{
	struct proc_opts o = { .stdin_data = "hello world\n" };
	struct proc_result r;

	need_kvm();
	vmm(&r, &o, "--kernel", guest("test-guest.elf"), "--cmdline", "test=echo status=5", NULL);
	CHECK_INT(r.status, ==, 5);
	CHECK_CONTAINS(r.out, "HELLO WORLD");
	proc_result_free(&r);
}

TEST(rtc_shows_host_utc_time)
{
	struct proc_result r;
	struct tm tm = { 0 };
	const char *p;
	time_t guest_t;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=rtc", NULL);
	p = strstr(r.out, "rtc: ");
	CHECK(p != NULL);
	if (p) {
		CHECK_INT(sscanf(p, "rtc: %d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
				 &tm.tm_min, &tm.tm_sec), ==, 6);
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		guest_t = timegm(&tm);
		CHECK_INT(llabs((long long)(guest_t - time(NULL))), <=, 5);
		CHECK_CONTAINS(p, "regb 0x2 regd 0x80"); /* 24-hour BCD, valid RAM */
	}
	proc_result_free(&r);
}

TEST(unclaimed_ports_and_mmio_read_all_ones)
{
	struct proc_result r;

	need_kvm();
	/* The guest reads 0xd0000000, the first virtio-mmio window: no virtio-rng there. */
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=ports", "--rng=off", NULL);
	CHECK_INT(r.status, ==, 0);
	CHECK_CONTAINS(r.out, "ports: com2-lsr 0xff unclaimed 0xff mmio 0xffffffff");
	proc_result_free(&r);
}

TEST(reboot_through_keyboard_controller_ends_vm)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=reboot-kbd status=7", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 7);
	proc_result_free(&r);
}

TEST(reboot_through_acpi_reset_register_ends_vm)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=reboot-acpi status=8", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 8);
	proc_result_free(&r);
}

TEST(poweroff_without_status_exits_zero)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=hello", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 0);
	proc_result_free(&r);
}

TEST(triple_fault_ends_vm_as_reboot)
{
	struct proc_result r;

	need_kvm();
	if (host_is_kvm_pvm())
		test_skip("kvm_pvm reports a triple fault as an emulation failure, not a shutdown exit");
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=triple-fault", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 0);
	CHECK_CONTAINS(r.err, "triple fault");
	proc_result_free(&r);
}

TEST(fatal_exit_reports_registers)
{
	struct proc_result r;

	need_kvm();
	/* Executing from unbacked MMIO is something KVM cannot emulate. */
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=exec-mmio", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 1);
	CHECK_CONTAINS(r.err, "casulo-vmm: vcpu 0: ");
	CHECK_CONTAINS(r.err, "rip=0x00000000d0000000");
	CHECK_CONTAINS(r.err, "cr0=");
	proc_result_free(&r);
}

static void stop_by_signal(int sig)
{
	struct proc_opts o = { .signal_after = "hang: waiting forever", .signal = sig, .signal_delay = 0.2,
			       .timeout = 20 };
	struct proc_result r;

	need_kvm();
	vmm(&r, &o, "--kernel", guest("test-guest.elf"), "--cmdline", "test=hang", "--cpus", "2", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 128 + sig);
	proc_result_free(&r);
}

TEST(sigterm_stops_vm) { stop_by_signal(SIGTERM); }
TEST(sigint_stops_vm) { stop_by_signal(SIGINT); }

TEST(console_escape_quits)
{
	struct proc_opts o = { .stdin_data = "\001x", .timeout = 20 };
	struct proc_result r;

	need_kvm();
	vmm(&r, &o, "--kernel", guest("test-guest.elf"), "--cmdline", "test=hang", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 0);
	proc_result_free(&r);
}

TEST(console_to_file)
{
	char path[] = "/tmp/casulo-console-XXXXXX", buf[4096] = "";
	struct proc_result r;
	char opt[64];
	int fd;

	need_kvm();
	fd = mkstemp(path);
	close(fd);
	snprintf(opt, sizeof(opt), "file:%s", path);
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=hello status=3", "--console", opt, NULL);
	CHECK_INT(r.status, ==, 3);
	CHECK_STR(r.out, "");
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	unlink(path);
	CHECK_CONTAINS(buf, "hello from the test guest");
	proc_result_free(&r);
}

TEST(console_none_discards_output)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=hello status=4", "--console", "none",
	    NULL);
	CHECK_INT(r.status, ==, 4);
	CHECK_STR(r.out, "");
	proc_result_free(&r);
}
