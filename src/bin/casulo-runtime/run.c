/* run: create and start; in the foreground, wait and exit with the
 * container's status, then delete it (unless --keep). */
#include "cli.h"

VERB(run)
{
	struct oci_create_opts o;
	struct err *e = NULL;
	const char *id;
	int status = 0;
	bool vm;

	if (cli_parse_create("run", argc, argv, true, &o, &id) < 0)
		return 1;
	if (cli_wants_vm(&o, &vm, &e) < 0 ||
	    (vm ? vmc_run(g, &cli_vm, id, &o, &status, &e) : oci_run(g, id, &o, &status, &e)) < 0)
		return cli_fail(e);
	return status;
}
