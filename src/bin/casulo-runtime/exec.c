/* exec [options] ID COMMAND [ARGS...]: run a process in a container. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/parse.h"

enum {
	OPT_CONSOLE = 256,
	OPT_CWD,
	OPT_PIDFILE,
	OPT_LABEL,
	OPT_APPARMOR,
	OPT_NNP,
	OPT_PRESERVE,
	OPT_CGROUP,
	OPT_IGNORE_PAUSED,
	OPT_ENV = 'e',
	OPT_TTY = 't',
	OPT_USER = 'u',
	OPT_GIDS = 'g',
	OPT_PROCESS = 'p',
	OPT_DETACH = 'd',
	OPT_CAP = 'c'
};

static int push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(char *));

	if (nv == NULL)
		return -1;
	*v = nv;
	nv[(*n)++] = (char *)s;
	nv[*n] = NULL;
	return 0;
}

static int handle(int c, const char *arg, void *data)
{
	struct oci_exec_opts *o = data;
	uint32_t n;

	switch (c) {
	case OPT_CONSOLE:
		o->console_socket = arg;
		break;
	case OPT_CWD:
		o->cwd = arg;
		break;
	case OPT_PIDFILE:
		o->pid_file = arg;
		break;
	case OPT_LABEL:
		o->process_label = arg;
		break;
	case OPT_APPARMOR:
		o->apparmor = arg;
		break;
	case OPT_NNP:
		o->no_new_privs = cli_bool(arg);
		break;
	case OPT_CGROUP:
		return push(&o->cgroups, &o->n_cgroups, arg);
	case OPT_IGNORE_PAUSED:
		o->ignore_paused = cli_bool(arg);
		break;
	case OPT_ENV:
		return push(&o->env, &o->n_env, arg);
	case OPT_TTY:
		o->tty = cli_bool(arg), o->has_tty = true;
		break;
	case OPT_USER:
		o->user = arg;
		break;
	case OPT_GIDS:
		return push(&o->additional_gids, &o->n_additional_gids, arg);
	case OPT_PROCESS:
		o->process_file = arg;
		break;
	case OPT_DETACH:
		o->detach = cli_bool(arg);
		break;
	case OPT_CAP:
		return push(&o->caps, &o->n_caps, arg);
	case OPT_PRESERVE:
		if (parse_u32(arg, &n) < 0)
			return -cli_usage("exec", "--preserve-fds '%s': not a number", arg);
		o->preserve_fds = n;
		break;
	default:
		return -1;
	}
	return 0;
}

VERB(exec)
{
	static const struct option opts[] = {
	    {"console-socket", required_argument, NULL, OPT_CONSOLE},
	    {"cwd", required_argument, NULL, OPT_CWD},
	    {"env", required_argument, NULL, OPT_ENV},
	    {"tty", optional_argument, NULL, OPT_TTY},
	    {"user", required_argument, NULL, OPT_USER},
	    {"additional-gids", required_argument, NULL, OPT_GIDS},
	    {"process", required_argument, NULL, OPT_PROCESS},
	    {"detach", optional_argument, NULL, OPT_DETACH},
	    {"pid-file", required_argument, NULL, OPT_PIDFILE},
	    {"process-label", required_argument, NULL, OPT_LABEL},
	    {"apparmor", required_argument, NULL, OPT_APPARMOR},
	    {"no-new-privs", optional_argument, NULL, OPT_NNP},
	    {"cap", required_argument, NULL, OPT_CAP},
	    {"preserve-fds", required_argument, NULL, OPT_PRESERVE},
	    {"cgroup", required_argument, NULL, OPT_CGROUP},
	    {"ignore-paused", optional_argument, NULL, OPT_IGNORE_PAUSED},
	    {0},
	};
	struct oci_exec_opts o;
	struct err *e = NULL;
	int first, status = 0, r;

	memset(&o, 0, sizeof(o));
	first = cli_getopt("exec", argc, argv, opts, handle, &o);
	if (first < 0)
		goto fail;
	if (first >= argc) {
		cli_usage("exec", "requires the container id");
		goto fail;
	}
	if (o.process_file == NULL && first + 1 >= argc) {
		cli_usage("exec", "requires a command (or --process)");
		goto fail;
	}
	o.args = argv + first + 1;
	o.n_args = (size_t)(argc - first - 1);
	r = vmc_is_vm(g, argv[first]) ? vmc_exec(g, argv[first], &o, &status, &e)
				      : oci_exec(g, argv[first], &o, &status, &e);
	free(o.env);
	free(o.additional_gids);
	free(o.caps);
	free(o.cgroups);
	/* runc: whatever fails once the arguments are read is 255, so that a
	 * caller tells it from the process's own status. */
	if (r < 0)
		return cli_fail_with(e, 255, "exec failed: ");
	return status;
fail:
	free(o.env);
	free(o.additional_gids);
	free(o.caps);
	free(o.cgroups);
	return 1;
}
