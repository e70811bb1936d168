/* casulod-shim: the process between casulod and one VM or container
 * (src/daemon/shim.h).  casulod starts it; people do not. */
#include <stdio.h>

#include "daemon/shim.h"

int main(int argc, char **argv)
{
	struct shim_opts o;
	struct err *e = NULL;

	if (shim_parse_args(argc, argv, &o, &e) < 0) {
		fprintf(stderr,
			"casulod-shim: %s\n"
			"Usage: casulod-shim --dir DIR --log FILE [--log-max SIZE] [--stderr FILE] [--ready-fd N]\n"
			"                    [--overlay-target DIR --overlay-options OPTS] -- /PROGRAM [ARG]...\n"
			"(started by casulod, one per running VM or container)\n",
			e->msg);
		err_free(&e);
		return 2;
	}
	return shim_main(&o);
}
