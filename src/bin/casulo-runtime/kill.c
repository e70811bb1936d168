/* kill ID [SIGNAL]: signal the init (or, with --all, every process). */
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "oci/spec.h"

static int handle(int c, const char *arg, void *data)
{
	if (c != 'a')
		return -1;
	*(bool *)data = cli_bool(arg);
	return 0;
}

VERB(kill)
{
	static const struct option opts[] = {{"all", optional_argument, NULL, 'a'}, {0}};
	struct err *e = NULL;
	bool all = false;
	int first = cli_getopt("kill", argc, argv, opts, handle, &all), sig = SIGTERM;

	if (first < 0)
		return 1;
	if (first >= argc || argc - first > 2)
		return cli_usage("kill", "usage: kill [--all] ID [SIGNAL]");
	if (argc - first == 2) {
		/* 0 asks whether the container lives, as kill(2) does (runc takes it). */
		sig = strcmp(argv[first + 1], "0") == 0 ? 0 : spec_signal_from_name(argv[first + 1]);
		if (sig < 0)
			return cli_usage("kill", "unknown signal '%s'", argv[first + 1]);
	}
	if ((vmc_is_vm(g, argv[first]) ? vmc_kill(g, argv[first], sig, all, &e)
				       : oci_kill(g, argv[first], sig, all, &e)) < 0)
		return cli_fail(e);
	return 0;
}
