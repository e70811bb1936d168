/* create: set a container up, its process waiting for start. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/parse.h"

struct create_args {
	struct oci_create_opts *o;
	bool run;
};

enum {
	OPT_BUNDLE = 'b',
	OPT_CONFIG = 'f',
	OPT_CONSOLE = 256,
	OPT_PIDFILE,
	OPT_NOPIVOT,
	OPT_NOKEYRING,
	OPT_PRESERVE,
	OPT_DETACH = 'd',
	OPT_KEEP = 300,
	OPT_NOSUBREAPER
};

static int handle(int c, const char *arg, void *data)
{
	struct create_args *a = data;
	uint32_t n;

	switch (c) {
	case OPT_BUNDLE:
		a->o->bundle = arg;
		break;
	case OPT_CONFIG:
		a->o->config = arg;
		break;
	case OPT_CONSOLE:
		a->o->console_socket = arg;
		break;
	case OPT_PIDFILE:
		a->o->pid_file = arg;
		break;
	case OPT_NOPIVOT:
		a->o->no_pivot = cli_bool(arg);
		break;
	case OPT_NOKEYRING:
		a->o->no_new_keyring = cli_bool(arg);
		break;
	case OPT_DETACH:
	case OPT_KEEP:
	case OPT_NOSUBREAPER:
		if (!a->run)
			return -cli_usage("create", "unknown option (--detach, --keep and --no-subreaper are run's)");
		if (c == OPT_DETACH)
			a->o->detach = cli_bool(arg);
		else if (c == OPT_KEEP)
			a->o->keep = cli_bool(arg);
		break;
	case OPT_PRESERVE:
		if (parse_u32(arg, &n) < 0)
			return -cli_usage(a->run ? "run" : "create", "--preserve-fds '%s': not a number", arg);
		a->o->preserve_fds = n;
		break;
	default:
		return -1;
	}
	return 0;
}

int cli_one_id(const char *verb, int argc, char **argv, int first, const char **id)
{
	if (first < 0)
		return -1;
	if (first >= argc)
		return -cli_usage(verb, "requires exactly 1 argument: the container id");
	if (argc - first > 1)
		return -cli_usage(verb, "requires exactly 1 argument, got %d", argc - first);
	*id = argv[first];
	return 0;
}

int cli_parse_create(const char *verb, int argc, char **argv, bool run, struct oci_create_opts *o, const char **id)
{
	static const struct option opts[] = {
	    {"bundle", required_argument, NULL, OPT_BUNDLE},
	    {"config", required_argument, NULL, OPT_CONFIG}, /* crun's */
	    {"console-socket", required_argument, NULL, OPT_CONSOLE},
	    {"pid-file", required_argument, NULL, OPT_PIDFILE},
	    {"no-pivot", optional_argument, NULL, OPT_NOPIVOT},
	    {"no-new-keyring", optional_argument, NULL, OPT_NOKEYRING},
	    {"preserve-fds", required_argument, NULL, OPT_PRESERVE},
	    {"detach", optional_argument, NULL, OPT_DETACH},
	    {"keep", optional_argument, NULL, OPT_KEEP},
	    {"no-subreaper", optional_argument, NULL, OPT_NOSUBREAPER},
	    {0},
	};
	struct create_args a = {o, run};

	memset(o, 0, sizeof(*o));
	return cli_one_id(verb, argc, argv, cli_getopt(verb, argc, argv, opts, handle, &a), id);
}

int cli_wants_vm(const struct oci_create_opts *o, bool *vm, struct err **e)
{
	char path[4096], buf[65536];
	ssize_t n;
	int fd;

	*vm = false;
	if (!cli_vm.default_vm) {
		/* Most containers are plain: read config.json in full (and
		 * parse it twice) only when it may hold the annotation. */
		snprintf(path, sizeof(path), "%s/%s", o->bundle ? o->bundle : ".",
			 o->config ? o->config : "config.json");
		if (o->config && o->config[0] == '/')
			snprintf(path, sizeof(path), "%s", o->config);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return 0; /* the create says why */
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n >= 0 && (size_t)n < sizeof(buf) - 1) {
			buf[n] = '\0';
			if (strstr(buf, "io.casulo.vm") == NULL)
				return 0;
		}
	}
	return vmc_wanted(&cli_vm, o->bundle, o->config, vm, e);
}

VERB(create)
{
	struct oci_create_opts o;
	struct err *e = NULL;
	const char *id;

	bool vm;

	if (cli_parse_create("create", argc, argv, false, &o, &id) < 0)
		return 1;
	if (cli_wants_vm(&o, &vm, &e) < 0 || (vm ? vmc_create(g, &cli_vm, id, &o, &e) : oci_create(g, id, &o, &e)) < 0)
		return cli_fail(e);
	return 0;
}
