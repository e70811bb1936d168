/*
 * casulo: the user's command line.  `casulo ls`, `create`, `start`... ask
 * casulod (instances.c).  The commands that act directly, without casulod
 * (`casulo vm ...` on one VM's API socket, `casulo image ...`, `casulo
 * run`), are build/casulo-direct (direct.c), which this binary executes:
 * they link libcurl, libarchive and their TLS and XML stacks, whose
 * loading alone costs about 40 ms, which `casulo ls` should not pay.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "casulo-config.h"
#include "casulo.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: casulo COMMAND ...\n"
		   "\n"
		   "Commands (casulod's VMs and containers; casulo ls --help):\n"
		   "  ls [--type vm|container]    VMs and containers, with CPU and memory\n"
		   "  create vm|container NAME    define one (casulo create --help)\n"
		   "  start, stop, restart, kill, pause, resume, rm NAME...\n"
		   "  info NAME                   state, usage, definition\n"
		   "  console NAME                the console (Ctrl-] detaches)\n"
		   "  logs [-n N] [-f] NAME       what its console wrote\n"
		   "  top                         live CPU and memory\n"
		   "  autostart on|off NAME       start it when the host boots\n"
		   "\n"
		   "Other commands:\n"
		   "  vm VERB --api-socket PATH   control one casulo-vmm directly (casulo vm --help)\n"
		   "  image VERB ...              pull, import, audit, unpack images (casulo image --help)\n"
		   "  run [OPTIONS] IMAGE [CMD]   run an image as a container (casulo run --help)\n"
		   "  version                     print the version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("casulo %s\n", CASULO_VERSION);
		return 0;
	}
	static const char *const instance_verbs[] = {"ls",	"create", "start",  "stop",	"restart",
						     "kill",	"pause",  "resume", "rm",	"info",
						     "console", "logs",	  "top",    "autostart"};
	for (size_t i = 0; i < sizeof(instance_verbs) / sizeof(instance_verbs[0]); i++)
		if (strcmp(argv[1], instance_verbs[i]) == 0)
			return casulo_instances(argc - 1, argv + 1);
	if (strcmp(argv[1], "vm") == 0 || strcmp(argv[1], "image") == 0 || strcmp(argv[1], "run") == 0) {
		char self[PATH_MAX], *slash;
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 16);
		if (n <= 0 || (slash = memrchr(self, '/', (size_t)n)) == NULL) {
			fprintf(stderr, "casulo: cannot find casulo-direct: /proc/self/exe: %s\n", strerror(errno));
			return 1;
		}
		strcpy(slash + 1, "casulo-direct");
		argv[0] = self;
		execv(self, argv);
		fprintf(stderr, "casulo: %s: %s\n", self, strerror(errno));
		return 1;
	}
	return casulo_usage_error("unknown command '%s'", argv[1]);
}
