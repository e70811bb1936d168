/* features: what this runtime supports, as the runtime-spec defines it. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

VERB(features)
{
	struct err *e = NULL;
	char *json = NULL;

	(void)g, (void)argv;
	if (argc > 1)
		return cli_usage("features", "takes no arguments");
	if (oci_features(&json, &e) < 0)
		return cli_fail(e);
	printf("%s\n", json);
	free(json);
	return 0;
}
