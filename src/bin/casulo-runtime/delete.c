/* delete [--force] ID: remove a stopped container (--force: any). */
#include "cli.h"

static int handle(int c, const char *arg, void *data)
{
	if (c != 'f')
		return -1;
	*(bool *)data = cli_bool(arg);
	return 0;
}

VERB(delete)
{
	static const struct option opts[] = {{"force", optional_argument, NULL, 'f'}, {0}};
	struct err *e = NULL;
	bool force = false;
	const char *id;

	if (cli_one_id("delete", argc, argv, cli_getopt("delete", argc, argv, opts, handle, &force), &id) < 0)
		return 1;
	if ((vmc_is_vm(g, id) ? vmc_delete(g, id, force, &e) : oci_delete(g, id, force, &e)) < 0)
		return cli_fail(e);
	return 0;
}
