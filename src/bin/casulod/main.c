/* casulod: the management service for VMs and containers (docs/casulod.md).
 * This file parses the command line; src/daemon/ is the service. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "casulo-config.h"
#include "common/log.h"
#include "daemon/daemon.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: casulod [OPTIONS]\n"
		"Keep VMs and containers: their definitions, their processes (which outlive\n"
		"casulod), an API (docs/casulod-api.yaml), a web dashboard.  `casulo ls`,\n"
		"`casulo create`... are its command line.\n"
		"\n"
		"Options:\n"
		"  --state-dir DIR      definitions, bundles, console logs (default %s)\n"
		"  --run-dir DIR        sockets, shims' files; a tmpfs (default %s)\n"
		"  --socket PATH        the API's Unix socket (default RUN_DIR/%s)\n"
		"  --group NAME         members may use the socket (default: casulo, if it exists)\n"
		"  --image-root DIR     the image store (default /var/lib/casulo)\n"
		"  --listen HOST:PORT   also serve HTTPS there; needs the three below\n"
		"  --tls-cert FILE      PEM certificate\n"
		"  --tls-key FILE       PEM private key\n"
		"  --token-file FILE    the bearer token TCP clients must send (16+ characters)\n"
		"  --vmm PATH           casulo-vmm (default: beside casulod)\n"
		"  --runtime PATH       casulo-runtime (default: beside casulod)\n"
		"  --shim PATH          casulod-shim (default: beside casulod)\n"
		"  --guest-dir DIR      the default guest (default: $CASULO_GUEST_DIR, or guest/ beside casulod)\n"
		"  --snapshot-dir DIR   where VM snapshots may be written (default STATE_DIR/snapshots):\n"
		"                       each VMM is confined by Landlock to it and its own files\n"
		"  --dashboard-dir DIR  the dashboard's files (default: dashboard/ beside casulod)\n"
		"  --no-dashboard       serve no dashboard\n"
		"  --log-level LEVEL    error, warning, info (default), debug\n"
		"  -h, --help, --version\n"
		"\n"
		"SIGTERM or SIGINT stop casulod; VMs and containers keep running, and the\n"
		"next casulod takes them back.\n",
		DAEMON_DEFAULT_STATE_DIR, DAEMON_DEFAULT_RUN_DIR, DAEMON_SOCKET_NAME);
}

static double monotonic_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	enum {
		O_STATE = 256,
		O_RUN,
		O_SOCKET,
		O_GROUP,
		O_IMAGE_ROOT,
		O_LISTEN,
		O_CERT,
		O_KEY,
		O_TOKEN,
		O_VMM,
		O_RUNTIME,
		O_SHIM,
		O_GUEST,
		O_SNAPSHOT_DIR,
		O_DASHBOARD,
		O_NO_DASHBOARD,
		O_LOG_LEVEL,
		O_VERSION,
	};
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, O_STATE},
	    {"run-dir", required_argument, NULL, O_RUN},
	    {"socket", required_argument, NULL, O_SOCKET},
	    {"group", required_argument, NULL, O_GROUP},
	    {"image-root", required_argument, NULL, O_IMAGE_ROOT},
	    {"listen", required_argument, NULL, O_LISTEN},
	    {"tls-cert", required_argument, NULL, O_CERT},
	    {"tls-key", required_argument, NULL, O_KEY},
	    {"token-file", required_argument, NULL, O_TOKEN},
	    {"vmm", required_argument, NULL, O_VMM},
	    {"runtime", required_argument, NULL, O_RUNTIME},
	    {"shim", required_argument, NULL, O_SHIM},
	    {"guest-dir", required_argument, NULL, O_GUEST},
	    {"snapshot-dir", required_argument, NULL, O_SNAPSHOT_DIR},
	    {"dashboard-dir", required_argument, NULL, O_DASHBOARD},
	    {"no-dashboard", no_argument, NULL, O_NO_DASHBOARD},
	    {"log-level", required_argument, NULL, O_LOG_LEVEL},
	    {"version", no_argument, NULL, O_VERSION},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct daemon_config c = {.exec_time = monotonic_now()};
	static char dashboard[4096];
	bool no_dashboard = false;
	struct err *e = NULL;
	int opt;

	log_set_ident("casulod");
	log_set_level(LOG_INFO);
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case O_STATE:
			c.state_dir = optarg;
			break;
		case O_RUN:
			c.run_dir = optarg;
			break;
		case O_SOCKET:
			c.socket_path = optarg;
			break;
		case O_GROUP:
			c.group = optarg;
			break;
		case O_IMAGE_ROOT:
			c.image_root = optarg;
			break;
		case O_LISTEN:
			c.listen = optarg;
			break;
		case O_CERT:
			c.tls_cert = optarg;
			break;
		case O_KEY:
			c.tls_key = optarg;
			break;
		case O_TOKEN:
			c.token_file = optarg;
			break;
		case O_VMM:
			c.vmm = optarg;
			break;
		case O_RUNTIME:
			c.runtime = optarg;
			break;
		case O_SHIM:
			c.shim = optarg;
			break;
		case O_GUEST:
			c.guest_dir = optarg;
			break;
		case O_SNAPSHOT_DIR:
			c.snapshot_dir = optarg;
			break;
		case O_DASHBOARD:
			c.dashboard_dir = optarg;
			break;
		case O_NO_DASHBOARD:
			no_dashboard = true;
			break;
		case O_LOG_LEVEL:
			if (strcmp(optarg, "error") == 0)
				log_set_level(LOG_ERROR);
			else if (strcmp(optarg, "warning") == 0)
				log_set_level(LOG_WARN);
			else if (strcmp(optarg, "info") == 0)
				log_set_level(LOG_INFO);
			else if (strcmp(optarg, "debug") == 0)
				log_set_level(LOG_DEBUG);
			else {
				fprintf(stderr, "casulod: --log-level '%s': error, warning, info or debug\n", optarg);
				return 2;
			}
			break;
		case O_VERSION:
			printf("casulod %s\n", CASULO_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'casulod --help'.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "casulod: unexpected argument '%s'\nTry 'casulod --help'.\n", argv[optind]);
		return 2;
	}
	if (c.listen && (!c.tls_cert || !c.tls_key || !c.token_file)) {
		fprintf(stderr, "casulod: --listen needs --tls-cert, --tls-key and --token-file (no plain or "
				"unauthenticated TCP)\n");
		return 2;
	}
	if (no_dashboard) {
		c.dashboard_dir = NULL;
	} else if (c.dashboard_dir == NULL) {
		/* build/dashboard beside build/casulod, when it was built. */
		ssize_t n = readlink("/proc/self/exe", dashboard, sizeof(dashboard) - 16);
		struct stat st;
		if (n > 0) {
			dashboard[n] = '\0';
			*strrchr(dashboard, '/') = '\0';
			strcat(dashboard, "/dashboard");
			if (stat(dashboard, &st) == 0 && S_ISDIR(st.st_mode))
				c.dashboard_dir = dashboard;
		}
	}
	if (daemon_run(&c, &e) < 0) {
		err_print(e, "casulod", stderr);
		err_free(&e);
		return 1;
	}
	return 0;
}
