/*
 * The `kvm` suite: casulo-vmm boots the tiny test guest (tests/kvm/guest/)
 * in each boot format and checks what the guest reports.  Runs on any
 * /dev/kvm, including the instruction-emulating kvm_pvm, and in the lab
 * (tests/lab/run --any-kvm) where the host has none.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "test.h"

static void need_kvm(void)
{
	/* tests/lab/run --or-skip: neither this host's KVM nor the lab works. */
	const char *why = getenv("CASULO_NO_KVM");

	if (why != NULL && *why != '\0')
		test_skip("%s", why);
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

TEST(boot_elf_64bit_entry)
{
	boot_hello("test-guest.elf", "boot 64bit");
}
TEST(boot_elf_pvh_entry)
{
	boot_hello("test-guest-pvh.elf", "boot pvh");
}
TEST(boot_bzimage_64bit_entry)
{
	boot_hello("test-guest.bzimage", "boot 64bit");
}

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

TEST(initrd_via_boot_params)
{
	initrd_round_trip("test-guest.elf");
}
TEST(initrd_via_bzimage)
{
	initrd_round_trip("test-guest.bzimage");
}
TEST(initrd_via_pvh_modlist)
{
	initrd_round_trip("test-guest-pvh.elf");
}

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
	struct proc_opts o = {.stdin_data = "hello world\n"};
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
	struct tm tm = {0};
	const char *p;
	time_t guest_t;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=rtc", NULL);
	p = strstr(r.out, "rtc: ");
	CHECK(p != NULL);
	if (p) {
		CHECK_INT(sscanf(p, "rtc: %d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
				 &tm.tm_min, &tm.tm_sec),
			  ==, 6);
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

TEST(reboot_through_reset_control_register_ends_vm)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=reboot-cf9 status=9", "--log-level",
	    "info", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 9);
	CHECK_CONTAINS(r.err, "reset control register 0xcf9");
	proc_result_free(&r);
}

static void debug_exit(const char *option, const char *guest_args, int want_status, const char *want_out)
{
	char cmdline[128];
	struct proc_result r;

	need_kvm();
	snprintf(cmdline, sizeof(cmdline), "test=debug-exit status=3 %s", guest_args);
	if (option)
		vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", cmdline, "--debug-exit", option,
		    "--log-level", "info", NULL);
	else
		vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", cmdline, "--log-level", "info", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, want_status);
	CHECK_CONTAINS(r.out, want_out);
	proc_result_free(&r);
}

/* (V << 1) | 1, as QEMU's isa-debug-exit: 0x20 -> 65, 0 -> 1; the low 8 bits. */
TEST(debug_exit_ends_vm_with_status)
{
	debug_exit("on", "value=0x20", 65, "debug-exit: writing 0x20");
	debug_exit("port=0xf4", "value=0", 1, "debug-exit: writing 0x0");
	debug_exit("on", "value=0x1ff", 0xff, "debug-exit: writing 0x1ff");
}

TEST(debug_exit_port_and_size_are_chosen)
{
	debug_exit("port=0x501,size=2", "value=3 port=0x501 size=2", 7, "writing 0x3");
	/* The last port of the range counts too; one past it is unclaimed. */
	debug_exit("port=0x501,size=2", "value=3 port=0x502 size=1", 7, "writing 0x3");
	debug_exit("port=0x501,size=2", "value=3 port=0x503 size=1", 3, "debug-exit: still running");
}

TEST(debug_exit_is_off_by_default)
{
	debug_exit(NULL, "value=0x20", 3, "debug-exit: still running");
}

TEST(debug_exit_on_a_taken_port_is_refused)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--debug-exit", "port=0x3f8", NULL);
	CHECK_INT(r.status, ==, 1);
	CHECK_CONTAINS(r.err, "overlaps serial");
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

static void halt_for_good(const char *cpus)
{
	struct proc_opts o = {.timeout = 20};
	struct proc_result r;

	need_kvm();
	/* With 2 vCPUs the AP, never started, waits for a SIPI nobody sends. */
	vmm(&r, &o, "--kernel", guest("test-guest.elf"), "--cmdline", "test=halt status=6", "--cpus", cpus,
	    "--log-level", "info", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 6);
	CHECK_CONTAINS(r.out, "halt: halting with interrupts off");
	CHECK_CONTAINS(r.err, "every vCPU halted with interrupts disabled");
	/* Two looks half a second apart, plus the boot. */
	CHECK(r.seconds < 5);
	proc_result_free(&r);
}

TEST(halt_with_interrupts_off_ends_vm)
{
	halt_for_good("1");
}
TEST(halt_with_an_ap_never_started_ends_vm)
{
	halt_for_good("2");
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
	struct proc_opts o = {
	    .signal_after = "hang: waiting forever", .signal = sig, .signal_delay = 0.2, .timeout = 20};
	struct proc_result r;

	need_kvm();
	vmm(&r, &o, "--kernel", guest("test-guest.elf"), "--cmdline", "test=hang", "--cpus", "2", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 128 + sig);
	proc_result_free(&r);
}

TEST(sigterm_stops_vm)
{
	stop_by_signal(SIGTERM);
}
TEST(sigint_stops_vm)
{
	stop_by_signal(SIGINT);
}

TEST(console_escape_quits)
{
	struct proc_opts o = {.stdin_data = "\001x", .timeout = 20};
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

/* --- multiboot images, fw_cfg, debug-exit --- */

static const char *const multiboot_images[] = {"test-guest-mb.elf", "test-guest-mb32.elf", "test-guest-mb.bin"};

/* A file of len pseudo-random bytes; *sum is the guest's data_sum() of it. */
static char *data_file(size_t len, uint32_t *sum)
{
	char *path = strdup("/tmp/casulo-mb-XXXXXX");
	unsigned char *data = malloc(len);
	int fd = mkstemp(path);

	*sum = 0;
	for (size_t i = 0; i < len; i++) {
		data[i] = (unsigned char)rand();
		*sum = *sum * 31 + data[i];
	}
	CHECK(fd >= 0);
	CHECK_INT(write(fd, data, len), ==, (ssize_t)len);
	close(fd);
	free(data);
	return path;
}

TEST(boot_multiboot_elf64_elf32_and_aout)
{
	for (size_t i = 0; i < sizeof(multiboot_images) / sizeof(multiboot_images[0]); i++)
		boot_hello(multiboot_images[i], "boot multiboot");
}

TEST(multiboot_entry_state)
{
	struct proc_result r;

	need_kvm();
	for (size_t i = 0; i < sizeof(multiboot_images) / sizeof(multiboot_images[0]); i++) {
		vmm(&r, NULL, "--kernel", guest(multiboot_images[i]), "--cmdline", "test=mb-entry", NULL);
		CHECK_INT(r.status, ==, 0);
		/* flags: memory, cmdline, modules, memory map, boot loader name; 256 MiB: 255 above 1 MiB. */
		CHECK_CONTAINS(r.out,
			       "mb-entry: eax 0x2badb002 ebx-is-info 1 cr0.pe 1 cr0.pg 0 eflags.if 0 eflags.vm 0 "
			       "flags 0x24d mem_lower 639 mem_upper 261120 loader 'casulo-vmm ");
		proc_result_free(&r);
	}
}

TEST(multiboot_memory_map_is_the_e820_map)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest-mb.elf"), "--cmdline", "test=e820", "--memory", "4G", NULL);
	CHECK_INT(r.status, ==, 0);
	CHECK_CONTAINS(r.out,
		       "e820: 0x0 0x9fc00 type 1\r\ne820: 0x9fc00 0x400 type 2\r\ne820: 0xe0000 0x20000 type 2\r\n"
		       "e820: 0x100000 0xbff00000 type 1\r\ne820: 0x100000000 0x40000000 type 1\r\n");
	CHECK_CONTAINS(r.out, "ram-kib: 4193919\r\n");
	proc_result_free(&r);
}

TEST(multiboot_modules_initrd_first)
{
	uint32_t s0, s1, s2;
	char *initrd = data_file(100000, &s0), *m1 = data_file(5000, &s1), *m2 = data_file(1, &s2);
	char opt1[256], want[512];
	struct proc_result r;

	need_kvm();
	snprintf(opt1, sizeof(opt1), "%s,cmdline=first arg=1,2", m1);
	vmm(&r, NULL, "--kernel", guest("test-guest-mb.bin"), "--cmdline", "test=modules", "--initrd", initrd,
	    "--module", opt1, "--module", m2, NULL);
	CHECK_INT(r.status, ==, 0);
	CHECK_CONTAINS(r.out, "modules: 3\r\n");
	snprintf(want, sizeof(want), "module 0: size 100000 sum 0x%x page-aligned 1 above-kernel 1 string '%s'\r\n", s0,
		 initrd);
	CHECK_CONTAINS(r.out, want);
	snprintf(want, sizeof(want),
		 "module 1: size 5000 sum 0x%x page-aligned 1 above-kernel 1 string '%s first arg=1,2'\r\n", s1, m1);
	CHECK_CONTAINS(r.out, want);
	snprintf(want, sizeof(want), "module 2: size 1 sum 0x%x page-aligned 1 above-kernel 1 string '%s'\r\n", s2, m2);
	CHECK_CONTAINS(r.out, want);
	proc_result_free(&r);
	/* The initrd alone, where test=initrd finds it: module 0. */
	vmm(&r, NULL, "--kernel", guest("test-guest-mb32.elf"), "--cmdline", "test=initrd", "--initrd", initrd, NULL);
	snprintf(want, sizeof(want), "initrd: size 100000 sum 0x%x aligned 1", s0);
	CHECK_CONTAINS(r.out, want);
	proc_result_free(&r);
	unlink(initrd);
	unlink(m1);
	unlink(m2);
	free(initrd);
	free(m1);
	free(m2);
}

/* The test kernel: a multiboot image that reads its configuration
 * from fw_cfg and reports through the debug-exit port. */
TEST(fw_cfg_by_port_then_debug_exit)
{
	uint32_t sum;
	char *initrd = data_file(30000, &sum), want[256];
	const char *cmdline = "test=fw-cfg debug-exit=0x15";
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest-mb.elf"), "--cmdline", cmdline, "--cpus", "2", "--initrd", initrd,
	    "--debug-exit", NULL);
	CHECK_INT(r.status, ==, (0x15 << 1) | 1);
	CHECK_CONTAINS(r.out, "fw-cfg: signature QEMU id 0x3 dma-signature 0x51454d5520434647 cpus 2 max-cpus 2 "
			      "ram 0x10000000 nographic 1\r\n");
	snprintf(want, sizeof(want), "fw-cfg: cmdline-size %zu cmdline '%s' at 0x20000 same-as-boot 1\r\n",
		 strlen(cmdline) + 1, cmdline);
	CHECK_CONTAINS(r.out, want);
	snprintf(want, sizeof(want), "fw-cfg: initrd-size 30000 sum 0x%x addr-is-boot 1\r\n", sum);
	CHECK_CONTAINS(r.out, want);
	CHECK_CONTAINS(r.out, "fw-cfg: etc/e820 select 0x20 size 80\r\n"
			      "fw-cfg: e820 0x0 0x9fc00 type 1\r\nfw-cfg: e820 0x9fc00 0x400 type 2\r\n"
			      "fw-cfg: e820 0xe0000 0x20000 type 2\r\nfw-cfg: e820 0x100000 0xff00000 type 1\r\n");
	CHECK_CONTAINS(r.out, "fw-cfg: past-end 0 after-write QEMU unknown-key 0x0 file-dir-missing 1\r\n");
	proc_result_free(&r);
	unlink(initrd);
	free(initrd);
}

TEST(fw_cfg_by_dma)
{
	uint32_t sum;
	char *initrd = data_file(70000, &sum), want[256];
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest-mb.bin"), "--cmdline", "test=fw-cfg-dma abcdefgh", "--cpus", "3",
	    "--memory", "512M", "--initrd", initrd, NULL);
	CHECK_INT(r.status, ==, 0);
	CHECK_CONTAINS(r.out,
		       "fw-cfg-dma: id 0x3 cpus 3 ram 0x20000000 control 0x0 cmdline 'test=fw-cfg-dma abcdefgh'\r\n");
	/* "test=fw-cfg-dma..." with 5 bytes skipped. */
	CHECK_CONTAINS(r.out, "fw-cfg-dma: skip-then-read 'fw-c' signature-then-zeros QEMU0 control 0x0\r\n");
	snprintf(want, sizeof(want), "fw-cfg-dma: initrd-size 70000 sum 0x%x control 0x0\r\n", sum);
	CHECK_CONTAINS(r.out, want);
	CHECK_CONTAINS(r.out, "fw-cfg-dma: to-the-hole 0x1 past-4g 0x1 write 0x1 descriptor-outside-ram survived\r\n");
	proc_result_free(&r);
	unlink(initrd);
	free(initrd);
}

TEST(debug_exit_from_a_multiboot_kernel)
{
	struct proc_result r;

	need_kvm();
	vmm(&r, NULL, "--kernel", guest("test-guest-mb32.elf"), "--cmdline", "test=hello debug-exit=3", "--debug-exit",
	    "port=0xf4,size=4", NULL);
	CHECK_INT(r.status, ==, 7);
	CHECK_CONTAINS(r.out, "hello from the test guest");
	proc_result_free(&r);
}

/* --- disk images are locked (issue 17) --- */

static char *temp_disk(void)
{
	char *path = strdup("/tmp/casulo-disk-XXXXXX");
	int fd = mkstemp(path);

	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	close(fd);
	return path;
}

TEST(one_image_on_two_disks_is_refused)
{
	char *img = temp_disk(), ro[4200], rw[4200], off[4200], want[4400];
	struct proc_result r;

	need_kvm();
	snprintf(rw, sizeof(rw), "path=%s", img);
	snprintf(ro, sizeof(ro), "path=%s,readonly=on", img);
	snprintf(off, sizeof(off), "path=%s,lock=off", img);
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=hello status=7", "--disk", rw, "--disk",
	    rw, NULL);
	CHECK_INT(r.status, ==, 1);
	snprintf(want, sizeof(want), "disk '%s': in use: another disk or process holds a lock on it", img);
	CHECK_CONTAINS(r.err, want);
	CHECK(strchr(r.err, '\n') == r.err + strlen(r.err) - 1);
	proc_result_free(&r);
	/* Readers share the image; lock=off takes no lock. */
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=hello status=7", "--disk", ro, "--disk",
	    ro, NULL);
	CHECK_INT(r.status, ==, 7);
	proc_result_free(&r);
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=hello status=7", "--disk", rw, "--disk",
	    off, NULL);
	CHECK_INT(r.status, ==, 7);
	proc_result_free(&r);
	unlink(img);
	free(img);
}

TEST(an_image_another_vmm_writes_is_refused)
{
	char *img = temp_disk(), rw[4200];
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	struct proc_result r;
	int fd;

	need_kvm();
	/* The lock another VMM holds on its disk: an exclusive OFD lock. */
	fd = open(img, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0);
	snprintf(rw, sizeof(rw), "path=%s,readonly=on", img);
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=hello status=7", "--disk", rw, NULL);
	CHECK_INT(r.status, ==, 1);
	CHECK_CONTAINS(r.err, "in use: another disk or process holds a write lock on it");
	proc_result_free(&r);
	close(fd);
	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--cmdline", "test=hello status=7", "--disk", rw, NULL);
	CHECK_INT(r.status, ==, 7);
	proc_result_free(&r);
	unlink(img);
	free(img);
}

/* --- seccomp: every thread under its list (src/vmm/seccomp.c) --- */

/* CASULO_SECCOMP_PROBE=KIND (a test hook of non-release builds) makes
 * each thread of that kind try personality(), in no list, right after its
 * filter is in.  extra: the options (NULL-terminated, at most 4) that give
 * the VM a thread of that kind. */
static void run_probe(struct proc_result *r, const char *mode, char *const *extra)
{
	char *argv[16];
	int n = 0;

	argv[n++] = (char *)test_env_path("CASULO_VMM");
	argv[n++] = "--kernel";
	argv[n++] = (char *)guest("test-guest.elf");
	argv[n++] = "--cmdline";
	argv[n++] = "test=hello status=42";
	for (; extra && *extra && n < 13; extra++)
		argv[n++] = *extra;
	if (mode) {
		argv[n++] = "--seccomp";
		argv[n++] = (char *)mode;
	}
	argv[n] = NULL;
	CHECK_INT(proc_run(argv, NULL, r), ==, 0);
	if (r->timed_out)
		test_fail_at(__FILE__, __LINE__, "casulo-vmm timed out; stderr: %s", r->err);
}

static void probe_ends_vmm_with(const char *kind, char *const *extra)
{
	struct proc_result r;
	char want[128];

	need_kvm();
	setenv("CASULO_SECCOMP_PROBE", kind, 1);
	/* on is the default: no --seccomp at all */
	run_probe(&r, NULL, extra);
	CHECK(!r.exited);
	CHECK_INT(r.status, ==, SIGSYS);
	snprintf(want, sizeof(want),
		 "casulo-vmm: seccomp: the %s thread made a system call outside its list: personality (%d)", kind, 135);
	CHECK_CONTAINS(r.err, want);
	proc_result_free(&r);

	/* The same probe with the filters off or logging only: the VM runs to its end. */
	run_probe(&r, "log", extra);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 42);
	proc_result_free(&r);
	run_probe(&r, "off", extra);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 42);
	proc_result_free(&r);
	unsetenv("CASULO_SECCOMP_PROBE");
}

static void probe_ends_vmm(const char *kind, const char *api_socket)
{
	char *extra[] = {"--api-socket", (char *)api_socket, NULL};

	probe_ends_vmm_with(kind, api_socket ? extra : NULL);
}

TEST(seccomp_forbidden_syscall_on_a_vcpu_thread_ends_vmm)
{
	probe_ends_vmm("vcpu", NULL);
}
TEST(seccomp_forbidden_syscall_on_the_vmm_thread_ends_vmm)
{
	probe_ends_vmm("vmm", NULL);
}
TEST(seccomp_forbidden_syscall_on_a_device_thread_ends_vmm)
{
	probe_ends_vmm("device", NULL);
}

TEST(seccomp_forbidden_syscall_on_an_api_thread_ends_vmm)
{
	char dir[] = "/run/casulo-seccomp-XXXXXX", sock[64];

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/api.sock", dir);
	probe_ends_vmm("api", sock);
	unlink(sock);
	rmdir(dir);
}

TEST(seccomp_forbidden_syscall_on_a_virtio_blk_thread_ends_vmm)
{
	char dir[] = "/run/casulo-seccomp-XXXXXX", disk[128], spec[160];
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(disk, sizeof(disk), "%s/disk.img", dir);
	fd = open(disk, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_INT(ftruncate(fd, 1 << 20), ==, 0);
	close(fd);
	snprintf(spec, sizeof(spec), "path=%s", disk);
	probe_ends_vmm_with("virtio-blk", (char *[]){"--disk", spec, NULL});
	unlink(disk);
	rmdir(dir);
}

TEST(seccomp_forbidden_syscall_on_a_virtio_net_thread_ends_vmm)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	char spec[64];
	int fd;

	need_kvm();
	/* a persistent TAP of our own for the VMM to attach to */
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		test_skip("/dev/net/tun: %s", strerror(errno));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "cseccomp%d", (int)getpid() % 10000);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0) {
		int err = errno;

		close(fd);
		test_skip("a TAP interface: %s", strerror(err));
	}
	close(fd);
	snprintf(spec, sizeof(spec), "tap=%s", ifr.ifr_name);
	probe_ends_vmm_with("virtio-net", (char *[]){"--net", spec, NULL});
	/* take the persistent TAP down again */
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_INT(ioctl(fd, TUNSETIFF, &ifr), ==, 0);
	CHECK_INT(ioctl(fd, TUNSETPERSIST, 0), ==, 0);
	close(fd);
}

TEST(seccomp_forbidden_syscall_on_a_virtio_vsock_thread_ends_vmm)
{
	char dir[] = "/run/casulo-seccomp-XXXXXX", sock[64], spec[96];

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/vsock", dir);
	snprintf(spec, sizeof(spec), "cid=3,socket=%s", sock);
	probe_ends_vmm_with("virtio-vsock", (char *[]){"--vsock", spec, NULL});
	unlink(sock);
	rmdir(dir);
}

TEST(seccomp_forbidden_syscall_on_a_virtio_fs_thread_ends_vmm)
{
	char dir[] = "/run/casulo-seccomp-XXXXXX", spec[96];

	CHECK(mkdtemp(dir) != NULL);
	snprintf(spec, sizeof(spec), "tag=share,path=%s", dir);
	probe_ends_vmm_with("virtio-fs", (char *[]){"--fs", spec, NULL});
	rmdir(dir);
}

TEST(seccomp_bad_mode_is_refused)
{
	struct proc_result r;

	vmm(&r, NULL, "--kernel", guest("test-guest.elf"), "--seccomp", "strict", NULL);
	CHECK(r.exited);
	CHECK_INT(r.status, ==, 2);
	CHECK_CONTAINS(r.err, "--seccomp 'strict': expected on, log or off");
	proc_result_free(&r);
}

/* Each thread's "Seccomp:" line in /proc/PID/task/TID/status: 2 is a
 * filter.  Returns the number of threads, their names in names. */
static int thread_seccomp_modes(pid_t pid, char *names, size_t names_len, int *unfiltered)
{
	char path[300], line[256], name[32];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (dir == NULL)
		return -1;
	*unfiltered = 0;
	names[0] = '\0';
	while ((d = readdir(dir)) != NULL) {
		FILE *f;
		int mode = -1;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, d->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		name[0] = '\0';
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "Name: %31s", name) == 1)
				continue;
			sscanf(line, "Seccomp: %d", &mode);
		}
		fclose(f);
		n++;
		if (mode != 2)
			(*unfiltered)++;
		snprintf(names + strlen(names), names_len - strlen(names), "%s=%d ", name, mode);
	}
	closedir(dir);
	return n;
}

TEST(seccomp_every_thread_of_a_running_vm_is_filtered)
{
	char dir[] = "/run/casulo-seccomp-XXXXXX", sock[64], names[1024] = "", reply[512];
	const char request[] = "GET /vm HTTP/1.1\r\nHost: localhost\r\n\r\n";
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int conn = -1, threads = 0, unfiltered = 0, status;
	pid_t pid;

	need_kvm();
	CHECK(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/api.sock", dir);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		execl(test_env_path("CASULO_VMM"), "casulo-vmm", "--kernel", guest("test-guest.elf"), "--cmdline",
		      "test=hang", "--cpus", "2", "--api-socket", sock, "--seccomp", "on", (char *)NULL);
		_exit(127);
	}
	/* A client keeps its connection thread alive while the threads are read. */
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock);
	for (int i = 0; i < 300 && conn < 0; i++) {
		conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (conn >= 0 && connect(conn, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			close(conn);
			conn = -1;
			usleep(100000);
		}
	}
	CHECK(conn >= 0);
	CHECK(write(conn, request, sizeof(request) - 1) == (ssize_t)(sizeof(request) - 1));
	CHECK(read(conn, reply, sizeof(reply) - 1) > 0);
	/* main, 2 vCPUs, virtio-rng's device thread and the API's pool of
	 * threads (4). */
	for (int i = 0; i < 100; i++) {
		threads = thread_seccomp_modes(pid, names, sizeof(names), &unfiltered);
		if (threads >= 6)
			break;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(conn);
	unlink(sock);
	rmdir(dir);
	if (threads < 6 || unfiltered != 0)
		test_fail_at(__FILE__, __LINE__, "threads (name=Seccomp): %s", names);
	CHECK_CONTAINS(names, "vcpu0=2 ");
	CHECK_CONTAINS(names, "vcpu1=2 ");
	CHECK_CONTAINS(names, "rng0=2 ");
}

/* --- Landlock: the VMM confined to its configuration's paths (src/vmm/landlock.c) --- */

/* One HTTP request on the API socket: the status, the reply in reply. */
static int api_request(const char *sock, const char *method, const char *path, const char *body, char *reply,
		       size_t size)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char req[1024];
	size_t got = 0;
	int fd, status = -1, len;
	ssize_t n;

	len = snprintf(req, sizeof(req),
		       "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n"
		       "Content-Length: %zu\r\n\r\n%s",
		       method, path, strlen(body), body);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || write(fd, req, (size_t)len) != len) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (got + 1 < size && (n = read(fd, reply + got, size - 1 - got)) > 0)
		got += (size_t)n;
	reply[got] = '\0';
	close(fd);
	if (sscanf(reply, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	return status;
}

static void need_landlock(void)
{
	if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1U /* LANDLOCK_CREATE_RULESET_VERSION */) < 0)
		test_skip("this kernel has no Landlock (%s): see its /sys/kernel/security/lsm", strerror(errno));
}

TEST(landlock_api_refuses_a_snapshot_outside_snapshot_dir)
{
	char dir[] = "/run/casulo-landlock-XXXXXX", sock[64], snaps[64], inside[96], body[256], reply[2048];
	char outside[64], escape[96], errpath[96], *err;
	struct stat st;
	int status, code;
	pid_t pid;

	need_kvm();
	need_landlock();
	CHECK(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/api.sock", dir);
	snprintf(snaps, sizeof(snaps), "%s/snaps", dir);
	snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
	snprintf(outside, sizeof(outside), "/var/tmp/casulo-landlock-%d", (int)getpid());
	CHECK_INT(mkdir(snaps, 0700), ==, 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR), errfd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(null, 0);
		dup2(null, 1);
		dup2(errfd, 2);
		execl(test_env_path("CASULO_VMM"), "casulo-vmm", "--kernel", guest("test-guest.elf"), "--cmdline",
		      "test=hang", "--memory", "64M", "--api-socket", sock, "--landlock", "on", "--snapshot-dir", snaps,
		      "--log-level", "info", (char *)NULL);
		_exit(127);
	}
	code = -1;
	for (int i = 0; i < 300 && code < 0; i++) {
		code = api_request(sock, "GET", "/vm", "", reply, sizeof(reply));
		if (code < 0)
			usleep(100000);
	}
	CHECK_INT(code, ==, 200);

	/* outside every --snapshot-dir: refused, named, nothing written */
	snprintf(body, sizeof(body), "{\"path\": \"%s\"}", outside);
	code = api_request(sock, "PUT", "/snapshot/create", body, reply, sizeof(reply));
	CHECK_INT(code, ==, 400);
	CHECK_CONTAINS(reply, "outside the directories this VMM may use");
	CHECK_CONTAINS(reply, "--snapshot-dir");
	CHECK(stat(outside, &st) < 0 && errno == ENOENT);

	/* a symlink beneath it that leads outside: refused too */
	snprintf(escape, sizeof(escape), "%s/escape", snaps);
	CHECK_INT(symlink("/var/tmp", escape), ==, 0);
	snprintf(body, sizeof(body), "{\"path\": \"%s/snap\"}", escape);
	CHECK_INT(api_request(sock, "PUT", "/snapshot/create", body, reply, sizeof(reply)), ==, 400);

	/* beneath it: written */
	snprintf(inside, sizeof(inside), "%s/snap1", snaps);
	snprintf(body, sizeof(body), "{\"path\": \"%s\"}", inside);
	code = api_request(sock, "PUT", "/snapshot/create", body, reply, sizeof(reply));
	CHECK_INT(code, ==, 204);
	CHECK(stat(inside, &st) == 0 && S_ISDIR(st.st_mode));

	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	err = calloc(1, 4096);
	{
		FILE *f = fopen(errpath, "r");

		CHECK(f != NULL && err != NULL);
		CHECK(fread(err, 1, 4095, f) > 0);
		fclose(f);
	}
	CHECK(err != NULL);
	CHECK_CONTAINS(err, "landlock: file access confined");
	free(err);
	{
		char cmd[160];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		CHECK_INT(system(cmd), ==, 0);
	}
}
