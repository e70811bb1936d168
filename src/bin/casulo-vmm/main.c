/*
 * casulo-vmm: boot one virtual machine and run it until it stops.
 * Only command-line parsing lives here; the VMM is src/vmm/.
 */
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "casulo-config.h"
#include "common/err.h"
#include "common/log.h"
#include "common/parse.h"
#include "api/server.h"
#include "vmm/affinity.h"
#include "vmm/cgroup.h"
#include "vmm/machine.h"
#include "vmm/migrate/migrate.h"
#include "vmm/landlock.h"
#include "vmm/seccomp.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/svirt.h"
#include "vmm/vm.h"

#define PROG "casulo-vmm"
#define EXIT_USAGE 2
#define EXIT_VMM_ERROR 1

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [OPTIONS]\n"
		"Boot a virtual machine on KVM and run it until the guest powers off or\n"
		"reboots. The exit status is the one the guest's init reported (casulo-init\n"
		"writes it to I/O port 0x604), or 0 if none was reported.\n"
		"\n"
		"Options:\n"
		"  --kernel PATH       kernel: a bzImage (boot protocol 2.06+), an ELF\n"
		"                      vmlinux (PVH entry when it has one) or a multiboot\n"
		"                      (v1) image. Default: the project's guest, <dir of\n"
		"                      this binary>/guest/vmlinuz (or $CASULO_GUEST_DIR/vmlinuz)\n"
		"  --initrd PATH       initial ramdisk (a multiboot kernel's module 0).\n"
		"                      Default: with the default kernel, its initrd.img;\n"
		"                      otherwise none\n"
		"  --module PATH[,cmdline=STR]\n"
		"                      a multiboot module after the initrd (repeatable, up\n"
		"                      to 15); its string is \"PATH STR\"\n"
		"  --cmdline STR       kernel command line (default: \"%s\")\n"
		"  --cpus N[,affinity=VCPU:CPUS;...][,vmm-affinity=CPUS]\n"
		"                      number of vCPUs, 1-254 (default: %d); affinity pins\n"
		"                      vCPU threads to host CPUs (\"0:2-3;1:4,6\"), and\n"
		"                      vmm-affinity the VMM's other threads. Both can be\n"
		"                      changed at run time (PATCH /vm/affinity)\n"
		"  --memory SIZE       guest RAM, e.g. 256M, 4G (a bare number is bytes); a\n"
		"                      multiple of 2 MiB, at least 32 MiB (default: 256M)\n"
		"  --memory size=SIZE[,backend=anon|memfd|file:PATH][,hugepages=off|2M|1G]\n"
		"           [,shared=on][,mergeable=on][,prefault=on]\n"
		"           [,host-nodes=LIST,policy=bind|preferred|interleave]\n"
		"                      what backs guest RAM: memfd is shared; a file is\n"
		"                      mapped private unless shared=on (then the file is\n"
		"                      the memory: snapshots do not copy it); hugepages are\n"
		"                      reserved at start (never a SIGBUS later); mergeable\n"
		"                      lets KSM merge pages; prefault allocates all at start;\n"
		"                      LIST is 1, 0-3 or 0:2 (host NUMA nodes, mbind(2))\n"
		"  --cgroup PATH[,memory=SIZE][,cpu-quota=US][,cpu-period=US][,cpu-weight=N]\n"
		"         [,cpus=LIST][,mems=LIST][,pids=N][,io-weight=N][,io-read-bps=MAJ:MIN:RATE]...\n"
		"                      run the whole VMM in cgroup PATH (v1, hybrid or v2;\n"
		"                      relative: under this process's cgroup), made if\n"
		"                      missing and removed at the end; memory must cover\n"
		"                      guest RAM plus 32 MiB and 1/256 of it for the VMM\n"
		"  --console MODE      stdio (default), none, or file:PATH\n"
		"  --disk SPEC         add a virtio-blk disk (repeatable, up to 8):\n"
		"                      path=FILE[,readonly=on][,id=NAME][,cache=none|writeback]\n"
		"                      [,irq-coalescing=on|off][,lock=off][,rate=LIMIT]\n"
		"                      a raw image or block device; readonly=on refuses guest\n"
		"                      writes; id is the serial the guest sees (20 chars max);\n"
		"                      cache=none bypasses the host page cache (O_DIRECT);\n"
		"                      irq-coalescing=off signals every completion at once\n"
		"                      (default on: adaptive, see docs/vmm.md)\n"
		"                      The image is locked (shared with readonly=on,\n"
		"                      exclusive otherwise): a second writer, in this VMM\n"
		"                      or another, is refused; lock=off takes no lock\n"
		"                      rate=LIMIT throttles the disk: BYTES/REFILL[+BURST] and/or\n"
		"                      Nops/REFILL[+BURST], joined by ':' (10M/s:500ops/s)\n"
		"  --net SPEC          add a virtio-net interface (repeatable, up to 8):\n"
		"                      tap=NAME[,mac=MAC] attaches to TAP interface NAME;\n"
		"                      fd=N[,mac=MAC] uses an open TAP fd (IFF_TAP|IFF_NO_PI|\n"
		"                      IFF_VNET_HDR). Default MAC: random, locally administered\n"
		"                      [,rx-rate=LIMIT][,tx-rate=LIMIT] throttle each direction\n"
		"                      (LIMIT as --disk rate=; docs/vmm.md, Rate limits)\n"
		"  --rng=on|off        a virtio-rng entropy device fed by getrandom()\n"
		"                      (guest /dev/hwrng); on by default\n"
		"  --console2 SPEC     a virtio-console port (guest /dev/hvc0): file:PATH\n"
		"                      (output only), socket:PATH (listens; one client at a\n"
		"                      time, both ways), pty (path in the log) or none\n"
		"  --vsock SPEC        a virtio-vsock device: cid=N,socket=PATH. The guest\n"
		"                      connecting to host port P reaches a listener on\n"
		"                      PATH_P; a host program connects to PATH and writes\n"
		"                      \"CONNECT <port>\\n\", reads \"OK <host-port>\\n\", then\n"
		"                      talks to the guest listening on that port\n"
		"  --balloon SPEC      a virtio-balloon device: on, or [target=SIZE]\n"
		"                      [,deflate-on-oom=on][,free-page-reporting=on]\n"
		"                      [,stats=SECONDS]; memory the guest gives back is\n"
		"                      returned to the host\n"
		"  --fs SPEC           share a host directory (virtio-fs, repeatable, up to 8):\n"
		"                      tag=TAG,path=DIR[,readonly=on]; the guest mounts it\n"
		"                      with mount -t virtiofs TAG /mnt. readonly=on refuses\n"
		"                      every change. A VM with one cannot be snapshotted or\n"
		"                      migrated\n"
		"  --debug-exit [port=0xf4][,size=4]\n"
		"                      a debug-exit port (QEMU's isa-debug-exit): the guest\n"
		"                      writing V there ends the VM with status (V << 1) | 1\n"
		"  --api-socket PATH   serve the control API (HTTP/JSON, docs/api.yaml) on a\n"
		"                      Unix socket at PATH\n"
		"  --restore DIR       run the VM in snapshot DIR (docs/snapshot-format.md)\n"
		"                      instead of booting a kernel; --disk and --net, if\n"
		"                      given, replace the snapshot's (same number of each);\n"
		"                      --memory is refused: the memory is the snapshot's\n"
		"  --wait              boot nothing: serve the API until PUT /snapshot/load\n"
		"  --incoming tcp:ADDR:PORT\n"
		"                      boot nothing: wait for a live migration on ADDR:PORT\n"
		"                      and run the VM it brings (--disk, --net as --restore)\n"
		"  --log-level LEVEL   error, warning (default), info or debug (to stderr)\n"
		"  --seccomp MODE      on: each thread keeps to its syscall list and any\n"
		"                      other syscall ends the VMM (SIGSYS); log: the kernel\n"
		"                      logs such syscalls and lets them run; off. Default: on\n"
		"  --landlock MODE     on (default): the VMM can open only the files its\n"
		"                      options (or --restore's snapshot) name, where the\n"
		"                      kernel has Landlock; off\n"
		"  --selinux-label dynamic|USER:ROLE:TYPE:LEVEL\n"
		"                      run the VMM in its own SELinux MCS category pair\n"
		"                      (dynamic: one no running process has), its disks\n"
		"                      labelled with the same pair while it runs (sVirt;\n"
		"                      with --restore, the snapshot's disks too)\n"
		"  --snapshot-dir DIR  where API snapshots may be written and loaded from\n"
		"                      under Landlock (repeatable, up to 8)\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n"
		"\n"
		"Console: with --console stdio the guest's serial port (COM1) is this\n"
		"terminal, in raw mode. Type Ctrl-A then x to stop the VM; Ctrl-A Ctrl-A\n"
		"sends a Ctrl-A to the guest.\n"
		"\n"
		"Exit status: the guest's reported status after poweroff or reboot (0 when\n"
		"it reported none or quit with Ctrl-A x); 128+N when stopped by signal N\n"
		"(SIGINT, SIGTERM, SIGHUP); 1 when the VMM failed (a bad kernel, a KVM\n"
		"error, a fatal guest exit: the message says which); 2 for a bad option.\n",
		VM_DEFAULT_CMDLINE, VM_DEFAULT_CPUS);
}

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_CONSOLE,
	OPT_LOG_LEVEL,
	OPT_DISK,
	OPT_NET,
	OPT_API_SOCKET,
	OPT_RESTORE,
	OPT_SECCOMP,
	OPT_LANDLOCK,
	OPT_SNAPSHOT_DIR,
	OPT_WAIT,
	OPT_INCOMING,
	OPT_RNG,
	OPT_CONSOLE2,
	OPT_VSOCK,
	OPT_BALLOON,
	OPT_FS,
	OPT_DEBUG_EXIT,
	OPT_MODULE,
	OPT_CGROUP,
	OPT_SELINUX_LABEL
};

static const struct option options[] = {
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"module", required_argument, NULL, OPT_MODULE},
    {"cmdline", required_argument, NULL, OPT_CMDLINE},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"cgroup", required_argument, NULL, OPT_CGROUP},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"console", required_argument, NULL, OPT_CONSOLE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"seccomp", required_argument, NULL, OPT_SECCOMP},
    {"landlock", required_argument, NULL, OPT_LANDLOCK},
    {"selinux-label", required_argument, NULL, OPT_SELINUX_LABEL},
    {"snapshot-dir", required_argument, NULL, OPT_SNAPSHOT_DIR},
    {"disk", required_argument, NULL, OPT_DISK},
    {"net", required_argument, NULL, OPT_NET},
    {"rng", optional_argument, NULL, OPT_RNG},
    {"console2", required_argument, NULL, OPT_CONSOLE2},
    {"vsock", required_argument, NULL, OPT_VSOCK},
    {"balloon", required_argument, NULL, OPT_BALLOON},
    {"fs", required_argument, NULL, OPT_FS},
    {"debug-exit", optional_argument, NULL, OPT_DEBUG_EXIT},
    {"api-socket", required_argument, NULL, OPT_API_SOCKET},
    {"restore", required_argument, NULL, OPT_RESTORE},
    {"wait", no_argument, NULL, OPT_WAIT},
    {"incoming", required_argument, NULL, OPT_INCOMING},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Print a bad option's message; cfg's own strings go with it. */
static int bad_option(struct vm_config *cfg, const char *fmt, ...) PRINTF_FMT(2, 3);
static int bad_option(struct vm_config *cfg, const char *fmt, ...)
{
	va_list ap;

	vm_config_free(cfg);

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help'.\n");
	return EXIT_USAGE;
}

/* An option's parser failed: its message, and cfg's strings go. */
static int option_error(struct vm_config *cfg, struct err **e)
{
	fprintf(stderr, PROG ": %s\nTry '" PROG " --help'.\n", (*e)->msg);
	err_free(e);
	vm_config_free(cfg);
	return EXIT_USAGE;
}

/* The default guest sits next to the binary: build/guest/ for build/casulo-vmm. */
static int default_guest_path(const char *file, char *out, size_t len)
{
	const char *dir = getenv("CASULO_GUEST_DIR");
	char exe[PATH_MAX];
	ssize_t n;

	if (dir && *dir)
		return snprintf(out, len, "%s/%s", dir, file) < (int)len ? 0 : -1;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	if (strrchr(exe, '/'))
		*strrchr(exe, '/') = '\0';
	return snprintf(out, len, "%s/guest/%s", exe, file) < (int)len ? 0 : -1;
}

static int parse_log_level(const char *s, enum log_level *ret)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};

	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* --memory, checked against the limits a snapshot's is. */
static int parse_memory_option(struct vm_config *cfg, const char *arg, struct err **e)
{
	return vm_config_set_memory(cfg, arg, e);
}

/* The options of the virtio-rng, -console, -vsock, -fs and -balloon devices
 * and of the debug-exit port. */
static int set_device_option(struct vm_config *cfg, int opt, const char *arg, struct err **e)
{
	switch (opt) {
	case OPT_RNG:
		return vm_config_set_rng(cfg, arg ? arg : "on", e);
	case OPT_CONSOLE2:
		return vm_config_set_console2(cfg, arg, e);
	case OPT_VSOCK:
		return vm_config_set_vsock(cfg, arg, e);
	case OPT_FS:
		return vm_config_add_fs(cfg, arg, e);
	case OPT_DEBUG_EXIT:
		return vm_config_set_debug_exit(cfg, arg, e);
	default:
		return vm_config_set_balloon(cfg, arg, e);
	}
}

/* What main() hands run_vm() besides the configuration. */
struct run_options {
	const char *api_socket, *restore_dir, *incoming;
	bool wait_for_snapshot;
	enum vmm_seccomp_mode seccomp;
	const struct vmm_cgroup *cgroup;
	bool landlock;
	struct vmm_landlock_paths confine;
};

/* Landlock, before the first thread starts (machine_create() starts the
 * device threads): they all inherit it.  A VM restored with --restore
 * opens what its snapshot names: that configuration is read first. */
static int confine_files(const struct vm_config *cfg, const struct run_options *o, struct err **e)
{
	struct vmm_landlock_paths paths = o->confine;
	struct vm_config restored;
	int r;

	if (o->restore_dir == NULL)
		return vmm_landlock_apply(cfg, &paths, o->cgroup != NULL, e);
	r = vm_snapshot_read_config(o->restore_dir, &restored, e);
	if (r < 0)
		return r;
	paths.restored = &restored;
	r = vmm_landlock_apply(cfg, &paths, o->cgroup != NULL, e);
	vm_config_free(&restored);
	return r;
}

/* Build the VM (booted, restored, incoming or waiting), serve its API and
 * run it to its end: the process's exit status.  cfg's strings go. */
static int run_vm(struct vm_config *cfgp, const struct vm_affinity *affinity, const struct run_options *o)
{
	static char kernel_buf[PATH_MAX], initrd_buf[PATH_MAX];
	struct vm_config cfg = *cfgp;
	struct err *e = NULL;
	struct vm *vm = NULL;
	struct api_server *api = NULL;
	const char *api_socket = o->api_socket, *restore_dir = o->restore_dir, *incoming = o->incoming;
	bool wait_for_snapshot = o->wait_for_snapshot, built;
	int status;

	if (restore_dir || wait_for_snapshot || incoming) {
		if (cfg.kernel_path || cfg.initrd_path || cfg.nmodules)
			return bad_option(
			    &cfg, "%s",
			    "--kernel, --initrd and --module do not go with --restore, --wait or --incoming");
	} else if (cfg.kernel_path == NULL) {
		if (default_guest_path("vmlinuz", kernel_buf, sizeof(kernel_buf)) < 0)
			return bad_option(&cfg, "%s", "no --kernel given and the default guest path is unknown");
		cfg.kernel_path = kernel_buf;
		if (access(kernel_buf, R_OK) != 0) {
			fprintf(stderr, PROG ": default kernel '%s': not built (run 'make guest') or give --kernel\n",
				kernel_buf);
			return EXIT_VMM_ERROR;
		}
		if (cfg.initrd_path == NULL && default_guest_path("initrd.img", initrd_buf, sizeof(initrd_buf)) == 0)
			cfg.initrd_path = initrd_buf;
	}
	if (vm_affinity_enter_vmm(affinity, &e) < 0 ||
	    ((restore_dir || wait_for_snapshot || incoming) && machine_create_waiting(&vm, &cfg, &e) < 0) ||
	    /* A restore makes KVM's VM while the rest of the process is set up
	     * and the snapshot is read and checked.  That thread runs before
	     * seccomp and Landlock (only the threads made after them inherit
	     * them): it opens /dev/kvm, makes the VM and ends, and nothing the
	     * guest or the snapshot says reaches it. */
	    (restore_dir && machine_start_kvm(vm, &e) < 0) || vmm_seccomp_init(o->seccomp, &e) < 0 ||
	    (o->landlock && confine_files(&cfg, o, &e) < 0)) {
		err_print(e, PROG, stderr);
		err_free(&e);
		machine_destroy(vm);
		vm_config_free(&cfg);
		return EXIT_VMM_ERROR;
	}
	log_step("seccomp and Landlock set up");
	/* Every thread's filter compiled while the VM is built. */
	vmm_seccomp_prepare_start();
	if ((restore_dir || wait_for_snapshot || incoming) &&
	    ((restore_dir && vm_snapshot_load(vm, restore_dir, &cfg, &built, &e) < 0) ||
	     (incoming && migrate_receive(vm, incoming, &cfg, &e) < 0))) {
		err_print(e, PROG, stderr);
		err_free(&e);
		machine_destroy(vm);
		vm_config_free(&cfg);
		return EXIT_VMM_ERROR;
	}

	if (vm == NULL && machine_create(&vm, &cfg, &e) < 0) {
		err_print(e, PROG, stderr);
		err_free(&e);
		vm_config_free(&cfg);
		return EXIT_VMM_ERROR;
	}
	/* A restored or incoming VM's size is known only now. */
	if (vmm_cgroup_check_memory(o->cgroup, vm->mem.size, &e) < 0) {
		err_print(e, PROG, stderr);
		err_free(&e);
		machine_destroy(vm);
		vm_config_free(&cfg);
		return EXIT_USAGE;
	}
	vm->affinity = *affinity;
	if (api_socket && api_server_start(vm, api_socket, &api, &e) < 0) {
		err_print(e, PROG, stderr);
		err_free(&e);
		machine_destroy(vm);
		vm_config_free(&cfg);
		return EXIT_VMM_ERROR;
	}
	status = vm_run(vm, &e);
	api_server_stop(api);
	machine_destroy(vm);
	vm_config_free(&cfg);
	if (status < 0) {
		err_print(e, PROG, stderr);
		err_free(&e);
		return EXIT_VMM_ERROR;
	}
	return status;
}

int main(int argc, char **argv)
{
	struct vm_config cfg;
	struct err *e = NULL;
	const char *api_socket = NULL, *restore_dir = NULL, *incoming = NULL;
	bool wait_for_snapshot = false;
	enum log_level level;
	/* Pins given with --cpus: ~32 KiB, not for the stack. */
	static struct vm_affinity affinity;
	struct vmm_cgroup *cgroup = NULL;
	const char *cgroup_spec = NULL;
	struct run_options opts;
	enum vmm_seccomp_mode seccomp = VMM_SECCOMP_ON;
	struct vmm_landlock_paths confine = {0};
	bool landlock = true, memory_given = false;
	const char *selinux_label = NULL;
	int opt, status;

	log_clock_start();
	log_set_ident(PROG);
	vm_config_defaults(&cfg);
	if (vm_affinity_init(&affinity, &e) < 0)
		return option_error(&cfg, &e);
	while ((opt = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
		switch (opt) {
		case OPT_KERNEL:
			cfg.kernel_path = optarg;
			break;
		case OPT_INITRD:
			cfg.initrd_path = optarg;
			break;
		case OPT_CMDLINE:
			cfg.cmdline = optarg;
			break;
		case OPT_CPUS:
			if (vm_affinity_parse_cpus(&affinity, optarg, &cfg.cpus, &e) < 0)
				return option_error(&cfg, &e);
			break;
		case OPT_MEMORY:
			if (parse_memory_option(&cfg, optarg, &e) < 0)
				return option_error(&cfg, &e);
			memory_given = true;
			break;
		case OPT_CGROUP:
			cgroup_spec = optarg;
			break;
		case OPT_CONSOLE:
			if (strcmp(optarg, "stdio") == 0)
				cfg.console = CONSOLE_STDIO;
			else if (strcmp(optarg, "none") == 0)
				cfg.console = CONSOLE_NONE;
			else if (strncmp(optarg, "file:", 5) == 0 && optarg[5])
				cfg.console = CONSOLE_FILE, cfg.console_path = optarg + 5;
			else
				return bad_option(&cfg, "--console '%s': expected stdio, none or file:PATH", optarg);
			break;
		case OPT_DISK:
		case OPT_NET:
		case OPT_MODULE:
			if ((opt == OPT_DISK  ? vm_config_add_disk(&cfg, optarg, &e)
			     : opt == OPT_NET ? vm_config_add_net(&cfg, optarg, &e)
					      : vm_config_add_module(&cfg, optarg, &e)) < 0) {
				return option_error(&cfg, &e);
			}
			break;
		case OPT_RNG:
		case OPT_CONSOLE2:
		case OPT_VSOCK:
		case OPT_BALLOON:
		case OPT_FS:
		case OPT_DEBUG_EXIT:
			/* "--debug-exit port=0x501": its optional value may be the next word. */
			if (opt == OPT_DEBUG_EXIT && optarg == NULL && optind < argc &&
			    (strncmp(argv[optind], "port=", 5) == 0 || strncmp(argv[optind], "size=", 5) == 0 ||
			     strcmp(argv[optind], "on") == 0 || strcmp(argv[optind], "off") == 0))
				optarg = argv[optind++];
			if (set_device_option(&cfg, opt, optarg, &e) < 0) {
				return option_error(&cfg, &e);
			}
			break;
		case OPT_API_SOCKET:
			api_socket = optarg;
			break;
		case OPT_RESTORE:
			restore_dir = optarg;
			break;
		case OPT_WAIT:
			wait_for_snapshot = true;
			break;
		case OPT_INCOMING:
			incoming = optarg;
			break;
		case OPT_LANDLOCK:
			if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
				return bad_option(&cfg, "--landlock '%s': expected on or off", optarg);
			landlock = strcmp(optarg, "on") == 0;
			break;
		case OPT_SELINUX_LABEL:
			if (vmm_svirt_parse(optarg, &e) < 0)
				return option_error(&cfg, &e);
			selinux_label = optarg;
			break;
		case OPT_SNAPSHOT_DIR:
			if (confine.nsnapshot_dirs == VMM_MAX_SNAPSHOT_DIRS)
				return bad_option(&cfg, "--snapshot-dir '%s': at most %d", optarg,
						  VMM_MAX_SNAPSHOT_DIRS);
			confine.snapshot_dirs[confine.nsnapshot_dirs++] = optarg;
			break;
		case OPT_SECCOMP:
			if (vmm_seccomp_parse_mode(optarg, &seccomp) < 0)
				return bad_option(&cfg, "--seccomp '%s': expected on, log or off", optarg);
			break;
		case OPT_LOG_LEVEL:
			if (parse_log_level(optarg, &level) < 0)
				return bad_option(&cfg, "--log-level '%s': expected error, warning, info or debug",
						  optarg);
			log_set_level(level);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf(PROG " %s\n", CASULO_VERSION);
			return 0;
		default:
			fprintf(stderr, "Try '" PROG " --help'.\n");
			return EXIT_USAGE;
		}
	}
	log_step("options parsed");
	if (optind < argc)
		return bad_option(&cfg, "unexpected argument '%s'", argv[optind]);
	if (!!restore_dir + wait_for_snapshot + !!incoming > 1)
		return bad_option(&cfg, "%s", "--restore, --wait and --incoming exclude each other");
	/* The snapshot's (or the source's) configuration sizes and backs the
	 * memory: a --memory here would be silently ignored. */
	if (memory_given && (restore_dir || wait_for_snapshot || incoming))
		return bad_option(&cfg, "%s",
				  "--memory does not go with --restore, --wait or --incoming: the memory is "
				  "the snapshot's or the source VM's");
	if (confine.nsnapshot_dirs && !landlock)
		return bad_option(
		    &cfg, "%s",
		    "--snapshot-dir does not go with --landlock off (without Landlock any directory will do)");
	if (wait_for_snapshot && api_socket == NULL)
		return bad_option(&cfg, "%s", "--wait needs --api-socket (the snapshot comes through the API)");
	/* --selinux-label: this process labels the disks and stays as the
	 * VMM's parent; the VMM it starts runs below with the marker set. */
	if (selinux_label && wait_for_snapshot)
		return bad_option(&cfg, "%s",
				  "--selinux-label does not go with --wait: the snapshot it loads, and its disks, are "
				  "known only once the VMM runs");
	if (selinux_label) {
		int child = vmm_svirt_is_child(&e);

		if (child < 0) {
			err_print(e, PROG, stderr);
			err_free(&e);
			vm_config_free(&cfg);
			return EXIT_VMM_ERROR;
		}
		if (child == 0) {
			status = vmm_svirt_run(selinux_label, &cfg, restore_dir, incoming != NULL, argv);
			vm_config_free(&cfg);
			return status;
		}
	}
	/* What the host lacks for --memory, refused before anything starts (a
	 * restored or received VM's memory is checked when it is built). */
	if (!restore_dir && !wait_for_snapshot && !incoming && vm_config_check_memory_host(&cfg, NULL, &e) < 0) {
		err_print(e, PROG, stderr);
		err_free(&e);
		vm_config_free(&cfg);
		return EXIT_VMM_ERROR;
	}
	/* Into the cgroup before guest memory is mapped (it is charged there),
	 * and the VMM's threads on their CPUs before any is made. */
	if (cgroup_spec && vmm_cgroup_enter(cgroup_spec, restore_dir || wait_for_snapshot || incoming ? 0 : cfg.memory,
					    &cgroup, &e) < 0) {
		if (err_code(e) == EINVAL)
			return option_error(&cfg, &e);
		err_print(e, PROG, stderr);
		err_free(&e);
		vm_config_free(&cfg);
		return EXIT_VMM_ERROR;
	}
	confine.api_socket = api_socket;
	confine.restore_dir = restore_dir;
	confine.devices_from_state = restore_dir || wait_for_snapshot || incoming;
	opts = (struct run_options){api_socket, restore_dir, incoming, wait_for_snapshot,
				    seccomp,	cgroup,	     landlock, confine};
	status = run_vm(&cfg, &affinity, &opts);
	vmm_cgroup_leave(cgroup);
	return status;
}
