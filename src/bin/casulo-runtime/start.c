/* start: let a created container's process run. */
#include "cli.h"

static int no_opts(int c, const char *arg, void *data)
{
	(void)c, (void)arg, (void)data;
	return -1;
}

VERB(start)
{
	static const struct option opts[] = {{0}};
	struct err *e = NULL;
	const char *id;

	if (cli_one_id("start", argc, argv, cli_getopt("start", argc, argv, opts, no_opts, NULL), &id) < 0)
		return 1;
	if (oci_start(g, id, &e) < 0)
		return cli_fail(e);
	return 0;
}
