/* state: the container's state as runc prints it. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static int no_opts(int c, const char *arg, void *data)
{
	(void)c, (void)arg, (void)data;
	return -1;
}

VERB(state)
{
	static const struct option opts[] = {{0}};
	struct err *e = NULL;
	const char *id;
	char *json = NULL;

	if (cli_one_id("state", argc, argv, cli_getopt("state", argc, argv, opts, no_opts, NULL), &id) < 0)
		return 1;
	if (oci_state(g, id, &json, &e) < 0)
		return cli_fail(e);
	printf("%s", json);
	free(json);
	return 0;
}
