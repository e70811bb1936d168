/* events [--interval D] [--stats] ID: the container's statistics and OOM
 * events, as runc prints them. */
#include <errno.h>
#include <stdio.h>

#include "cli.h"
#include "common/parse.h"

struct events_args {
	bool stats;
	uint64_t interval_ns;
};

static int handle(int c, const char *arg, void *data)
{
	struct events_args *a = data;

	if (c == 's') {
		a->stats = cli_bool(arg);
		return 0;
	}
	if (c != 'i')
		return -1;
	if (parse_duration_ns(arg, &a->interval_ns) < 0)
		return -cli_usage("events", "invalid value \"%s\" for flag -interval: parse error", arg);
	return 0;
}

VERB(events)
{
	static const struct option opts[] = {
	    {"interval", required_argument, NULL, 'i'},
	    {"stats", optional_argument, NULL, 's'},
	    {0},
	};
	struct events_args a = {false, 5000000000ULL};
	struct err *e = NULL;
	const char *id;

	if (cli_one_id("events", argc, argv, cli_getopt("events", argc, argv, opts, handle, &a), &id) < 0)
		return 1;
	if (a.interval_ns == 0)
		return cli_usage(NULL, "duration interval must be greater than 0");
	if (oci_events(g, id, a.stats, a.interval_ns, stdout, &e) < 0)
		return cli_fail(e);
	return 0;
}
