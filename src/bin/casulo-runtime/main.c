/*
 * casulo-runtime: an OCI runtime with runc's command line.
 *
 *   casulo-runtime [global options] VERB [options] [arguments]
 *
 * Global options: --root DIR, --log FILE, --log-format text|json, --debug,
 * --systemd-cgroup.  Errors are reported once, as runc reports them: a log
 * line (logfmt or JSON) and, when the log is a file, the message on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "casulo-config.h"
#include "cli.h"
#include "common/log.h"

static bool log_to_file;

static const struct {
	const char *name;
	int (*fn)(const struct oci_global *g, int argc, char **argv);
	const char *help;
} verbs[] = {
    {"create", cmd_create, "create a container"},
    {"start", cmd_start, "run the user process of a created container"},
    {"run", cmd_run, "create and start a container"},
    {"state", cmd_state, "print the state of a container"},
    {"kill", cmd_kill, "send a signal to the container's init (or all its processes)"},
    {"delete", cmd_delete, "delete a container and what it holds"},
    {"exec", cmd_exec, "run a new process inside a container"},
    {"list", cmd_list, "list the containers"},
    {"ps", cmd_ps, "list the processes of a container"},
    {"pause", cmd_pause, "freeze every process of a container"},
    {"resume", cmd_resume, "thaw a paused container"},
    {"update", cmd_update, "change the resources of a running container"},
    {"features", cmd_features, "print the features this runtime supports (JSON)"},
    {"spec", cmd_spec, "write a default config.json"},
};

bool cli_bool(const char *arg)
{
	return arg == NULL || strcmp(arg, "true") == 0 || strcmp(arg, "1") == 0 || strcmp(arg, "yes") == 0;
}

int cli_fail(struct err *e)
{
	const char *msg = e && e->msg ? e->msg : "unknown error";

	log_error("%s", msg);
	if (log_to_file)
		fprintf(stderr, "%s\n", msg);
	err_free(&e);
	return 1;
}

int cli_usage(const char *verb, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s%s%s", verb ? verb : "", verb ? ": " : "", msg);
	if (log_to_file)
		fprintf(stderr, "%s%s%s\n", verb ? verb : "", verb ? ": " : "", msg);
	return 1;
}

int cli_getopt(const char *verb, int argc, char **argv, const struct option *opts,
	       int (*handle)(int c, const char *arg, void *data), void *data)
{
	char shortopts[64] = "+:";
	size_t n = 2;
	int c, idx;

	for (const struct option *o = opts; o->name; o++) {
		if (o->flag == NULL && o->val > 0 && o->val < 128 && n + 3 < sizeof(shortopts)) {
			shortopts[n++] = (char)o->val;
			if (o->has_arg == required_argument)
				shortopts[n++] = ':';
		}
	}
	shortopts[n] = '\0';
	/* --help (or -h) before the arguments: the verb's options, exit 0. */
	for (int i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("Usage: casulo-runtime [global options] %s [options]%s\n\nOptions:\n", verb,
			       strcmp(verb, "list") && strcmp(verb, "features") && strcmp(verb, "spec") ? " CONTAINER"
													: "");
			for (const struct option *o = opts; o->name; o++)
				printf("  --%s%s\n", o->name, o->has_arg == required_argument ? " VALUE" : "");
			exit(0);
		}
	}
	optind = 1;
	opterr = 0;
	while ((c = getopt_long_only(argc, argv, shortopts, opts, &idx)) != -1) {
		if (c == '?') {
			cli_usage(verb, "unknown option '%s'", argv[optind - 1]);
			return -1;
		}
		if (c == ':') {
			cli_usage(verb, "option '%s' needs a value", argv[optind - 1]);
			return -1;
		}
		if (handle(c, optarg, data) < 0)
			return -1;
	}
	return optind;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: casulo-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug]\n"
		     "                      [--systemd-cgroup] COMMAND [options] [arguments]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(out, "  %-9s %s\n", verbs[i].name, verbs[i].help);
}

int main(int argc, char **argv)
{
	enum {
		OPT_ROOT = 256,
		OPT_LOG,
		OPT_LOG_FORMAT,
		OPT_DEBUG,
		OPT_SYSTEMD,
		OPT_CRIU,
		OPT_ROOTLESS,
		OPT_VERSION,
		OPT_HELP,
		OPT_CGROUP_MANAGER
	};
	static const struct option opts[] = {
	    {"root", required_argument, NULL, OPT_ROOT},
	    {"log", required_argument, NULL, OPT_LOG},
	    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
	    {"debug", optional_argument, NULL, OPT_DEBUG},
	    {"systemd-cgroup", optional_argument, NULL, OPT_SYSTEMD},
	    {"criu", required_argument, NULL, OPT_CRIU},
	    {"rootless", required_argument, NULL, OPT_ROOTLESS},
	    {"cgroup-manager", required_argument, NULL, OPT_CGROUP_MANAGER}, /* crun's */
	    {"version", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct oci_global g = {.root = OCI_DEFAULT_ROOT};
	const char *log_path = NULL, *log_format = "text";
	int c, idx;

	log_set_format(LOG_FORMAT_LOGFMT);
	log_set_level(LOG_WARN);
	opterr = 0;
	while ((c = getopt_long_only(argc, argv, "+:vh", opts, &idx)) != -1) {
		switch (c) {
		case OPT_ROOT:
			g.root = optarg;
			break;
		case OPT_LOG:
			log_path = optarg;
			break;
		case OPT_LOG_FORMAT:
			log_format = optarg;
			break;
		case OPT_DEBUG:
			g.debug = cli_bool(optarg);
			break;
		case OPT_SYSTEMD:
			g.systemd_cgroup = cli_bool(optarg);
			break;
		case OPT_CRIU:
		case OPT_ROOTLESS:
			break; /* accepted for runc compatibility */
		case OPT_CGROUP_MANAGER:
			if (strcmp(optarg, "systemd") == 0)
				g.systemd_cgroup = true;
			else if (strcmp(optarg, "disabled") == 0)
				g.no_cgroups = true;
			else if (strcmp(optarg, "cgroupfs") != 0)
				return cli_usage(NULL, "--cgroup-manager '%s': cgroupfs, systemd or disabled", optarg);
			break;
		case 'v':
			printf("casulo-runtime version %s\nspec: 1.1.0\n", CASULO_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			return cli_usage(NULL, "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage(NULL, "unknown global option '%s'", argv[optind - 1]);
		}
	}
	if (strcmp(log_format, "json") == 0)
		log_set_format(LOG_FORMAT_JSON);
	else if (strcmp(log_format, "text") != 0)
		return cli_usage(NULL, "--log-format: unknown format '%s' (text or json)", log_format);
	if (g.debug)
		log_set_level(LOG_DEBUG);
	if (log_path && *log_path) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "casulo-runtime: --log '%s': open: %s\n", log_path, strerror(errno));
			return 1;
		}
		log_set_fd(fd);
		log_to_file = true;
	}
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(argv[optind], verbs[i].name) == 0)
			return verbs[i].fn(&g, argc - optind, argv + optind);
	if (strcmp(argv[optind], "help") == 0) {
		usage(stdout);
		return 0;
	}
	return cli_usage(NULL, "unknown command '%s'", argv[optind]);
}
