/*
 * casulo-direct: the casulo commands that act without casulod: `vm` (one
 * VM's API socket), `image` and `run`.  `casulo` executes it for them
 * (main.c says why); it can be run as it is too.
 */
#include <stdio.h>
#include <string.h>

#include "casulo.h"

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "vm") == 0)
		return casulo_vm(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "image") == 0)
		return casulo_image(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return casulo_run(argc - 1, argv + 1);
	fprintf(stderr, "Usage: casulo-direct vm|image|run ... (casulo --help)\n");
	return 2;
}
