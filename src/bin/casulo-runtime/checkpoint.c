/* checkpoint ID and restore ID: through CRIU, with runc's options. */
#include <string.h>

#include "cli.h"

enum {
	OPT_IMAGE = 256,
	OPT_WORK,
	OPT_PARENT,
	OPT_LEAVE,
	OPT_TCP,
	OPT_EXT_UNIX,
	OPT_SHELL,
	OPT_LAZY,
	OPT_LOCKS,
	OPT_PRE_DUMP,
	OPT_CGROUPS_MODE,
	OPT_EMPTY_NS,
	OPT_DEDUP,
	OPT_STATUS_FD,
	OPT_PAGE_SERVER,
	OPT_CONSOLE,
	OPT_PIDFILE,
	OPT_NOSUBREAPER,
	OPT_NOPIVOT,
	OPT_BUNDLE = 'b',
	OPT_DETACH = 'd',
};

struct criu_args {
	struct oci_criu_opts o;
	struct oci_create_opts c;
};

static int handle(int c, const char *arg, void *data)
{
	struct criu_args *a = data;

	switch (c) {
	case OPT_IMAGE:
		a->o.image_path = arg;
		break;
	case OPT_WORK:
		a->o.work_path = arg;
		break;
	case OPT_PARENT:
		a->o.parent_path = arg;
		break;
	case OPT_LEAVE:
		a->o.leave_running = cli_bool(arg);
		break;
	case OPT_TCP:
		a->o.tcp_established = cli_bool(arg);
		break;
	case OPT_EXT_UNIX:
		a->o.ext_unix_sk = cli_bool(arg);
		break;
	case OPT_SHELL:
		a->o.shell_job = cli_bool(arg);
		break;
	case OPT_LAZY:
		a->o.lazy_pages = cli_bool(arg);
		break;
	case OPT_LOCKS:
		a->o.file_locks = cli_bool(arg);
		break;
	case OPT_PRE_DUMP:
		a->o.pre_dump = cli_bool(arg);
		break;
	case OPT_CGROUPS_MODE:
		a->o.manage_cgroups_mode = arg;
		break;
	case OPT_EMPTY_NS:
		a->o.empty_ns = arg;
		break;
	case OPT_DEDUP:
		a->o.auto_dedup = cli_bool(arg);
		break;
	case OPT_STATUS_FD:
	case OPT_PAGE_SERVER:
		return -cli_usage(NULL, "--status-fd and --page-server (lazy migration) are not supported");
	case OPT_CONSOLE:
		a->c.console_socket = arg;
		break;
	case OPT_PIDFILE:
		a->c.pid_file = arg;
		break;
	case OPT_NOSUBREAPER:
		break; /* accepted, as run takes it */
	case OPT_NOPIVOT:
		a->c.no_pivot = cli_bool(arg);
		break;
	case OPT_BUNDLE:
		a->c.bundle = arg;
		break;
	case OPT_DETACH:
		a->c.detach = cli_bool(arg);
		break;
	default:
		return -1;
	}
	return 0;
}

#define CRIU_OPTS                                                                                                      \
	{"image-path", required_argument, NULL, OPT_IMAGE}, {"work-path", required_argument, NULL, OPT_WORK},          \
	    {"tcp-established", optional_argument, NULL, OPT_TCP},                                                     \
	    {"ext-unix-sk", optional_argument, NULL, OPT_EXT_UNIX}, {"shell-job", optional_argument, NULL, OPT_SHELL}, \
	    {"lazy-pages", optional_argument, NULL, OPT_LAZY}, {"file-locks", optional_argument, NULL, OPT_LOCKS},     \
	    {"manage-cgroups-mode", required_argument, NULL, OPT_CGROUPS_MODE},                                        \
	    {"empty-ns", required_argument, NULL, OPT_EMPTY_NS},                                                       \
	{                                                                                                              \
		"auto-dedup", optional_argument, NULL, OPT_DEDUP                                                       \
	}

VERB(checkpoint)
{
	static const struct option opts[] = {
	    CRIU_OPTS,
	    {"parent-path", required_argument, NULL, OPT_PARENT},
	    {"leave-running", optional_argument, NULL, OPT_LEAVE},
	    {"pre-dump", optional_argument, NULL, OPT_PRE_DUMP},
	    {"status-fd", required_argument, NULL, OPT_STATUS_FD},
	    {"page-server", required_argument, NULL, OPT_PAGE_SERVER},
	    {0},
	};
	struct criu_args a;
	struct err *e = NULL;
	const char *id;

	memset(&a, 0, sizeof(a));
	if (cli_one_id("checkpoint", argc, argv, cli_getopt("checkpoint", argc, argv, opts, handle, &a), &id) < 0)
		return 1;
	if (oci_checkpoint(g, id, &a.o, &e) < 0)
		return cli_fail(e);
	return 0;
}

VERB(restore)
{
	static const struct option opts[] = {
	    CRIU_OPTS,
	    {"console-socket", required_argument, NULL, OPT_CONSOLE},
	    {"pid-file", required_argument, NULL, OPT_PIDFILE},
	    {"no-subreaper", optional_argument, NULL, OPT_NOSUBREAPER},
	    {"no-pivot", optional_argument, NULL, OPT_NOPIVOT},
	    {"bundle", required_argument, NULL, OPT_BUNDLE},
	    {"detach", optional_argument, NULL, OPT_DETACH},
	    {0},
	};
	struct criu_args a;
	struct err *e = NULL;
	const char *id;
	int status = 0;

	memset(&a, 0, sizeof(a));
	if (cli_one_id("restore", argc, argv, cli_getopt("restore", argc, argv, opts, handle, &a), &id) < 0)
		return 1;
	if (oci_restore(g, id, &a.c, &a.o, &status, &e) < 0)
		return cli_fail(e);
	return status;
}
