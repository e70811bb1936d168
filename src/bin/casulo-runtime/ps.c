/* ps [--format table|json] ID [ps options]: the container's processes;
 * the table is `ps -ef` (or the given options) filtered to them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int handle(int c, const char *arg, void *data)
{
	if (c != 'f')
		return -1;
	if (strcmp(arg, "json") != 0 && strcmp(arg, "table") != 0)
		return -cli_usage("ps", "--format '%s': table or json", arg);
	*(bool *)data = strcmp(arg, "json") == 0;
	return 0;
}

VERB(ps)
{
	static const struct option opts[] = {{"format", required_argument, NULL, 'f'}, {0}};
	struct err *e = NULL;
	bool json = false;
	pid_t *pids = NULL;
	size_t n = 0;
	int first = cli_getopt("ps", argc, argv, opts, handle, &json), r;

	if (first < 0)
		return 1;
	if (first >= argc)
		return cli_usage("ps", "requires the container id");
	if (vmc_is_vm(g, argv[first]))
		return vmc_ps(g, argv[first], json, argv + first + 1, (size_t)(argc - first - 1), stdout, &e) < 0
			   ? cli_fail(e)
			   : 0;
	if (oci_pids(g, argv[first], &pids, &n, &e) < 0)
		return cli_fail(e);
	if (json) {
		if (n == 0)
			printf("null\n");
		else {
			printf("[");
			for (size_t i = 0; i < n; i++)
				printf("%s%d", i ? "," : "", (int)pids[i]);
			printf("]\n");
		}
		free(pids);
		return 0;
	}
	r = oci_ps_table(pids, n, argv + first + 1, (size_t)(argc - first - 1), stdout, &e);
	free(pids);
	return r < 0 ? cli_fail(e) : 0;
}
