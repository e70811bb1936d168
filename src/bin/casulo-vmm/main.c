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
#include "vmm/migrate/migrate.h"
#include "vmm/snapshot/snapshot.h"
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
		"  --kernel PATH       kernel: a bzImage (boot protocol 2.06+) or an ELF\n"
		"                      vmlinux (PVH entry when it has one). Default: the\n"
		"                      project's guest, <dir of this binary>/guest/vmlinuz\n"
		"                      (or $CASULO_GUEST_DIR/vmlinuz)\n"
		"  --initrd PATH       initial ramdisk. Default: with the default kernel,\n"
		"                      its initrd.img; otherwise none\n"
		"  --cmdline STR       kernel command line (default: \"%s\")\n"
		"  --cpus N            number of vCPUs, 1-254 (default: %d)\n"
		"  --memory SIZE       guest RAM, e.g. 256M, 4G; a multiple of 2 MiB (default: 256M)\n"
		"  --console MODE      stdio (default), none, or file:PATH\n"
		"  --disk SPEC         add a virtio-blk disk (repeatable, up to 8):\n"
		"                      path=FILE[,readonly=on][,id=NAME][,cache=none|writeback]\n"
		"                      [,irq-coalescing=on|off]\n"
		"                      a raw image or block device; readonly=on refuses guest\n"
		"                      writes; id is the serial the guest sees (20 chars max);\n"
		"                      cache=none bypasses the host page cache (O_DIRECT);\n"
		"                      irq-coalescing=off signals every completion at once\n"
		"                      (default on: adaptive, see docs/vmm.md)\n"
		"  --net SPEC          add a virtio-net interface (repeatable, up to 8):\n"
		"                      tap=NAME[,mac=MAC] attaches to TAP interface NAME;\n"
		"                      fd=N[,mac=MAC] uses an open TAP fd (IFF_TAP|IFF_NO_PI|\n"
		"                      IFF_VNET_HDR). Default MAC: random, locally administered\n"
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
		"  --control-socket PATH  listen on PATH for one-line commands: \"balloon\n"
		"                      SIZE\", \"balloon\", \"balloon-stats\" (docs/vmm.md)\n"
		"  --api-socket PATH   serve the control API (HTTP/JSON, docs/api.yaml) on a\n"
		"                      Unix socket at PATH\n"
		"  --restore DIR       run the VM in snapshot DIR (docs/snapshot-format.md)\n"
		"                      instead of booting a kernel; --disk and --net, if\n"
		"                      given, replace the snapshot's (same number of each)\n"
		"  --wait              boot nothing: serve the API until PUT /snapshot/load\n"
		"  --incoming tcp:ADDR:PORT\n"
		"                      boot nothing: wait for a live migration on ADDR:PORT\n"
		"                      and run the VM it brings (--disk, --net as --restore)\n"
		"  --log-level LEVEL   error, warning (default), info or debug (to stderr)\n"
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

enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_CONSOLE, OPT_LOG_LEVEL, OPT_DISK, OPT_NET, OPT_API_SOCKET,
       OPT_RESTORE, OPT_WAIT, OPT_INCOMING, OPT_RNG, OPT_CONSOLE2, OPT_VSOCK, OPT_BALLOON, OPT_CONTROL_SOCKET };

static const struct option options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "rng", optional_argument, NULL, OPT_RNG },
	{ "console2", required_argument, NULL, OPT_CONSOLE2 },
	{ "vsock", required_argument, NULL, OPT_VSOCK },
	{ "balloon", required_argument, NULL, OPT_BALLOON },
	{ "control-socket", required_argument, NULL, OPT_CONTROL_SOCKET },
	{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "wait", no_argument, NULL, OPT_WAIT },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static int bad_option(const char *fmt, ...) PRINTF_FMT(1, 2);
static int bad_option(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help'.\n");
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
	static const char *const names[] = { "error", "warning", "info", "debug" };

	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* The options of the virtio-rng, -console, -vsock and -balloon devices. */
static int set_device_option(struct vm_config *cfg, int opt, const char *arg, struct err **e)
{
	switch (opt) {
	case OPT_RNG: return vm_config_set_rng(cfg, arg ? arg : "on", e);
	case OPT_CONSOLE2: return vm_config_set_console2(cfg, arg, e);
	case OPT_VSOCK: return vm_config_set_vsock(cfg, arg, e);
	default: return vm_config_set_balloon(cfg, arg, e);
	}
}

int main(int argc, char **argv)
{
	static char kernel_buf[PATH_MAX], initrd_buf[PATH_MAX];
	struct vm_config cfg;
	struct err *e = NULL;
	struct vm *vm = NULL;
	struct api_server *api = NULL;
	const char *api_socket = NULL, *restore_dir = NULL, *incoming = NULL;
	bool wait_for_snapshot = false, built;
	enum log_level level;
	int opt, status;

	log_set_ident(PROG);
	vm_config_defaults(&cfg);
	while ((opt = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
		switch (opt) {
		case OPT_KERNEL: cfg.kernel_path = optarg; break;
		case OPT_INITRD: cfg.initrd_path = optarg; break;
		case OPT_CMDLINE: cfg.cmdline = optarg; break;
		case OPT_CPUS:
			if (parse_u32(optarg, &cfg.cpus) < 0 || cfg.cpus == 0)
				return bad_option("--cpus '%s': not a number of vCPUs (1-254)", optarg);
			break;
		case OPT_MEMORY:
			if (parse_size(optarg, &cfg.memory) < 0)
				return bad_option("--memory '%s': not a size (e.g. 256M, 4G)", optarg);
			break;
		case OPT_CONSOLE:
			if (strcmp(optarg, "stdio") == 0)
				cfg.console = CONSOLE_STDIO;
			else if (strcmp(optarg, "none") == 0)
				cfg.console = CONSOLE_NONE;
			else if (strncmp(optarg, "file:", 5) == 0 && optarg[5])
				cfg.console = CONSOLE_FILE, cfg.console_path = optarg + 5;
			else
				return bad_option("--console '%s': expected stdio, none or file:PATH", optarg);
			break;
		case OPT_DISK:
		case OPT_NET:
			if ((opt == OPT_DISK ? vm_config_add_disk(&cfg, optarg, &e) : vm_config_add_net(&cfg, optarg, &e)) < 0) {
				fprintf(stderr, PROG ": %s\nTry '" PROG " --help'.\n", e->msg);
				err_free(&e);
				vm_config_free(&cfg);
				return EXIT_USAGE;
			}
			break;
		case OPT_RNG:
		case OPT_CONSOLE2:
		case OPT_VSOCK:
		case OPT_BALLOON:
			if (set_device_option(&cfg, opt, optarg, &e) < 0) {
				fprintf(stderr, PROG ": %s\nTry '" PROG " --help'.\n", e->msg);
				err_free(&e);
				vm_config_free(&cfg);
				return EXIT_USAGE;
			}
			break;
		case OPT_CONTROL_SOCKET: cfg.control_socket = optarg; break;
		case OPT_API_SOCKET: api_socket = optarg; break;
		case OPT_RESTORE: restore_dir = optarg; break;
		case OPT_WAIT: wait_for_snapshot = true; break;
		case OPT_INCOMING: incoming = optarg; break;
		case OPT_LOG_LEVEL:
			if (parse_log_level(optarg, &level) < 0)
				return bad_option("--log-level '%s': expected error, warning, info or debug", optarg);
			log_set_level(level);
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(PROG " %s\n", CASULO_VERSION); return 0;
		default:
			fprintf(stderr, "Try '" PROG " --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return bad_option("unexpected argument '%s'", argv[optind]);
	if (!!restore_dir + wait_for_snapshot + !!incoming > 1)
		return bad_option("%s", "--restore, --wait and --incoming exclude each other");
	if (wait_for_snapshot && api_socket == NULL)
		return bad_option("%s", "--wait needs --api-socket (the snapshot comes through the API)");
	if (restore_dir || wait_for_snapshot || incoming) {
		if (cfg.kernel_path || cfg.initrd_path)
			return bad_option("%s", "--kernel and --initrd do not go with --restore, --wait or --incoming");
		if (vm_create_waiting(&vm, &cfg, &e) < 0 ||
		    (restore_dir && vm_snapshot_load(vm, restore_dir, &cfg, &built, &e) < 0) ||
		    (incoming && migrate_receive(vm, incoming, &cfg, &e) < 0)) {
			err_print(e, PROG, stderr);
			err_free(&e);
			vm_destroy(vm);
			vm_config_free(&cfg);
			return EXIT_VMM_ERROR;
		}
	} else if (cfg.kernel_path == NULL) {
		if (default_guest_path("vmlinuz", kernel_buf, sizeof(kernel_buf)) < 0)
			return bad_option("%s", "no --kernel given and the default guest path is unknown");
		cfg.kernel_path = kernel_buf;
		if (access(kernel_buf, R_OK) != 0) {
			fprintf(stderr, PROG ": default kernel '%s': not built (run 'make guest') or give --kernel\n",
				kernel_buf);
			return EXIT_VMM_ERROR;
		}
		if (cfg.initrd_path == NULL && default_guest_path("initrd.img", initrd_buf, sizeof(initrd_buf)) == 0)
			cfg.initrd_path = initrd_buf;
	}

	if (vm == NULL && vm_create(&vm, &cfg, &e) < 0) {
		err_print(e, PROG, stderr);
		err_free(&e);
		vm_config_free(&cfg);
		return EXIT_VMM_ERROR;
	}
	if (api_socket && api_server_start(vm, api_socket, &api, &e) < 0) {
		err_print(e, PROG, stderr);
		err_free(&e);
		vm_destroy(vm);
		vm_config_free(&cfg);
		return EXIT_VMM_ERROR;
	}
	status = vm_run(vm, &e);
	api_server_stop(api);
	vm_destroy(vm);
	vm_config_free(&cfg);
	if (status < 0) {
		err_print(e, PROG, stderr);
		err_free(&e);
		return EXIT_VMM_ERROR;
	}
	return status;
}
