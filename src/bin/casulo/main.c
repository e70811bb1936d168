/*
 * casulo: the user's command line.  `casulo vm ...` drives one VM through
 * its API socket; each area of commands lives in its own file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "casulo-config.h"
#include "casulo.h"

int casulo_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "casulo: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'casulo --help'.\n");
	return 2;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: casulo COMMAND ...\n"
		"\n"
		"Commands:\n"
		"  vm VERB --api-socket PATH   control a running VM (casulo vm --help)\n"
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
	if (strcmp(argv[1], "vm") == 0)
		return casulo_vm(argc - 1, argv + 1);
	return casulo_usage_error("unknown command '%s'", argv[1]);
}
