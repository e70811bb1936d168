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

#include "cli.h"
#include "common/log.h"

static bool log_to_file;
struct vmc_options cli_vm;

static const struct {
	const char *name;
	int (*fn)(const struct oci_global *g, int argc, char **argv);
} verbs[] = {
    {"create", cmd_create},   {"start", cmd_start},
    {"run", cmd_run},	      {"state", cmd_state},
    {"kill", cmd_kill},	      {"delete", cmd_delete},
    {"events", cmd_events},   {"exec", cmd_exec},
    {"list", cmd_list},	      {"ps", cmd_ps},
    {"pause", cmd_pause},     {"resume", cmd_resume},
    {"update", cmd_update},   {"features", cmd_features},
    {"spec", cmd_spec},	      {"checkpoint", cmd_checkpoint},
    {"restore", cmd_restore},
};

bool cli_bool(const char *arg)
{
	return arg == NULL || strcmp(arg, "true") == 0 || strcmp(arg, "1") == 0 || strcmp(arg, "yes") == 0;
}

/* The longest error message printed: a longer one (a very long name in
 * it) loses its middle, never its end, where the cause is. */
#define CLI_MESSAGE_MAX 4096

int cli_fail_with(struct err *e, int status, const char *prefix)
{
	static char msg[CLI_MESSAGE_MAX];
	char *full = NULL;
	const char *m = e && e->msg ? e->msg : "unknown error";

	if (prefix && asprintf(&full, "%s%s", prefix, m) >= 0)
		m = full;
	err_fit(msg, sizeof(msg), m);
	free(full);
	log_error("%s", msg);
	if (log_to_file)
		fprintf(stderr, "%s\n", msg);
	err_free(&e);
	return status;
}

int cli_fail(struct err *e)
{
	return cli_fail_with(e, 1, NULL);
}

int cli_usage(const char *verb, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	log_error("%s%s%s", verb ? verb : "", verb ? ": " : "", msg ? msg : fmt);
	if (log_to_file)
		fprintf(stderr, "%s%s%s\n", verb ? verb : "", verb ? ": " : "", msg ? msg : fmt);
	free(msg);
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
		OPT_CGROUP_MANAGER,
		OPT_VM,
		OPT_VMM,
		OPT_GUEST_DIR
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
	    {"vm", optional_argument, NULL, OPT_VM},
	    {"vmm", required_argument, NULL, OPT_VMM},
	    {"guest-dir", required_argument, NULL, OPT_GUEST_DIR},
	    {"version", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct oci_global g = {.root = OCI_DEFAULT_ROOT};
	const char *log_path = NULL, *log_format = "text";
	int c, idx;

	/* Started under the name that makes VM mode the default (a link). */
	{
		const char *base = strrchr(argv[0], '/');
		cli_vm.default_vm = strcmp(base ? base + 1 : argv[0], "casulo-runtime-vm") == 0;
	}
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
		case OPT_VM:
			cli_vm.default_vm = cli_bool(optarg);
			break;
		case OPT_VMM:
			cli_vm.vmm = optarg;
			break;
		case OPT_GUEST_DIR:
			cli_vm.guest_dir = optarg;
			break;
		case OPT_CRIU:
			g.criu = optarg;
			break;
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
			cli_version(stdout);
			return 0;
		case 'h':
			cli_help(stdout);
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
	if (!log_path || !*log_path) {
		/* The log stays on the runtime's stderr in the children too, after
		 * a container process has made a pseudoterminal its stderr. */
		int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
		if (fd >= 0)
			log_set_fd(fd);
	}
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
		cli_help(stderr);
		return 1;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(argv[optind], verbs[i].name) != 0)
			continue;
		/* --help (or -h) among the verb's options: its help, as urfave/cli. */
		for (int a = optind + 1; a < argc && argv[a][0] == '-'; a++)
			if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0)
				return cli_help_verb(verbs[i].name, stdout);
		return verbs[i].fn(&g, argc - optind, argv + optind);
	}
	if (strcmp(argv[optind], "help") == 0 || strcmp(argv[optind], "h") == 0) {
		if (optind + 1 >= argc) {
			cli_help(stdout);
			return 0;
		}
		return cli_help_verb(argv[optind + 1], stdout);
	}
	return cli_usage(NULL, "unknown command '%s'", argv[optind]);
}
