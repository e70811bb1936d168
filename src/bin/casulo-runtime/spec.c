/* spec: write a default config.json into the bundle (runc's template). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/fdutil.h"

struct spec_args {
	bool rootless;
	const char *bundle;
};

static int handle(int c, const char *arg, void *data)
{
	struct spec_args *a = data;

	if (c == 'r')
		a->rootless = cli_bool(arg);
	else if (c == 'b')
		a->bundle = arg;
	else
		return -1;
	return 0;
}

VERB(spec)
{
	static const struct option opts[] = {
	    {"rootless", optional_argument, NULL, 'r'},
	    {"bundle", required_argument, NULL, 'b'},
	    {0},
	};
	struct spec_args a = {false, "."};
	struct err *e = NULL;
	char path[PATH_MAX], *json = NULL;
	int first = cli_getopt("spec", argc, argv, opts, handle, &a), fd, r;

	(void)g;
	if (first < 0)
		return 1;
	if (first < argc)
		return cli_usage("spec", "takes no arguments");
	snprintf(path, sizeof(path), "%s/config.json", a.bundle);
	if (access(path, F_OK) == 0)
		return cli_usage("spec", "'%s' exists: remove it first", path);
	if (oci_spec_default(a.rootless, &json, &e) < 0)
		return cli_fail(e);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = errno;
		free(json);
		return cli_usage("spec", "'%s': create: %s", path, strerror(r));
	}
	r = write_full(fd, json, strlen(json));
	close(fd);
	free(json);
	if (r < 0)
		return cli_usage("spec", "'%s': write: %s", path, strerror(-r));
	return 0;
}
