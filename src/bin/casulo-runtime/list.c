/* list: the containers under --root, as a table, JSON or ids. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct list_args {
	enum oci_list_format f;
};

static int handle(int c, const char *arg, void *data)
{
	struct list_args *a = data;

	if (c == 'q') {
		if (cli_bool(arg))
			a->f = OCI_LIST_QUIET;
		return 0;
	}
	if (c == 'f') {
		if (strcmp(arg, "json") == 0)
			a->f = OCI_LIST_JSON;
		else if (strcmp(arg, "table") == 0)
			a->f = OCI_LIST_TABLE;
		else
			return -cli_usage("list", "--format '%s': table or json", arg);
		return 0;
	}
	return -1;
}

VERB(list)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"quiet", optional_argument, NULL, 'q'},
	    {0},
	};
	struct list_args a = {OCI_LIST_TABLE};
	struct err *e = NULL;
	int first = cli_getopt("list", argc, argv, opts, handle, &a);

	if (first < 0)
		return 1;
	if (first < argc)
		return cli_usage("list", "takes no arguments");
	if (oci_list(g, a.f, stdout, &e) < 0)
		return cli_fail(e);
	return 0;
}
