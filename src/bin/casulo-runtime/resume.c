/* resume: thaw a paused container. */
#include "cli.h"

static int no_opts(int c, const char *arg, void *data)
{
	(void)c, (void)arg, (void)data;
	return -1;
}

VERB(resume)
{
	static const struct option opts[] = {{0}};
	struct err *e = NULL;
	const char *id;

	if (cli_one_id("resume", argc, argv, cli_getopt("resume", argc, argv, opts, no_opts, NULL), &id) < 0)
		return 1;
	if (oci_resume(g, id, &e) < 0)
		return cli_fail(e);
	return 0;
}
