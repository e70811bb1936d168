/*
 * casulo-jailer: run casulo-vmm confined to a per-VM directory
 * (docs/jailer.md).  Only command-line parsing lives here; the jailer is
 * src/jailer/.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/close_range.h>
#include <sys/syscall.h>

#include "common/err.h"
#include "common/parse.h"
#include "jailer/jailer.h"

#define PROG "casulo-jailer"

static void usage(FILE *f)
{
	fprintf(f, "Usage: " PROG " --id ID --exec-file PATH --uid UID --gid GID [OPTIONS] [-- ARGS...]\n"
		   "       " PROG " --cleanup ID [--chroot-base DIR] [--exec-file PATH] [--parent-cgroup PATH]\n"
		   "Run PATH (casulo-vmm) confined: in <chroot-base>/<exec name>/<ID>/root holding only\n"
		   "the files given, its libraries and /dev/kvm, /dev/net/tun, /dev/urandom; in new\n"
		   "mount, PID, IPC and UTS namespaces and the cgroup /<parent-cgroup>/<ID>; as UID:GID\n"
		   "with no capabilities and no_new_privs.  ARGS go to the program; the paths they name\n"
		   "are inside the jail (a file given as /a/b/disk.img is /disk.img there; /run is its\n"
		   "one writable directory).  The jailer waits for it and removes the directory and the\n"
		   "cgroup when it ends; its exit status is the program's (128+N when killed by signal N).\n"
		   "\n"
		   "Options:\n"
		   "  --id ID              the jail's name: letters, digits, '-', '_' (64 at most)\n"
		   "  --exec-file PATH     the program to run (at /<its name> in the jail)\n"
		   "  --uid UID, --gid GID numeric ids the program runs as\n"
		   "  --chroot-base DIR    where jails are made (default " JAIL_DEFAULT_BASE ")\n"
		   "  --file PATH          a file the program reads (kernel, initrd, read-only disk):\n"
		   "                       bind-mounted read-only at /<its name> (repeatable)\n"
		   "  --rw-file PATH       a file it writes (a disk): bind-mounted writable at /<its\n"
		   "                       name) and chowned to UID:GID (repeatable)\n"
		   "  --lib NAME           a shared library the program opens at run time (a soname or\n"
		   "                       a path), with its own libraries; casulo-vmm's API needs\n"
		   "                       libmicrohttpd.so.12 (repeatable)\n"
		   "  --netns PATH         join this network namespace (e.g. /var/run/netns/NAME)\n"
		   "  --parent-cgroup PATH the cgroup jails go under (default " JAIL_DEFAULT_CGROUP ")\n"
		   "  --limits KEY=VALUE,...  cgroup limits as casulo-vmm --cgroup takes them:\n"
		   "                       " CGROUP_LIMIT_KEYS "\n"
		   "  --memory SIZE        cgroup memory limit (e.g. 512M): --limits memory=SIZE\n"
		   "  --cpus N             cgroup CPU quota in CPUs (e.g. 1.5: 150 ms per 100 ms)\n"
		   "  --pids N             cgroup limit on processes and threads: --limits pids=N\n"
		   "  --rlimit-nofile N    open files (default 4096)\n"
		   "  --rlimit-fsize SIZE  largest file the program may write (default unlimited)\n"
		   "  --cleanup ID         kill what is left of jail ID and remove its directory and\n"
		   "                       cgroup (when the jailer itself was killed)\n"
		   "  -h, --help           this text\n");
}

static int parse_id(const char *what, const char *s, unsigned *ret)
{
	uint32_t v;
	if (parse_u32(s, &v) < 0 || v == UINT32_MAX) {
		fprintf(stderr, PROG ": %s '%s': not a numeric id (0 to 4294967294)\n", what, s);
		return -1;
	}
	*ret = v;
	return 0;
}

/* "1.5" CPUs into thousandths. */
static int parse_cpus(const char *s, uint64_t *milli)
{
	char *end;
	double v;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0.0009) || v > 4096)
		return -1;
	*milli = (uint64_t)(v * 1000 + 0.5);
	return 0;
}

static int add_file(struct jail_config *c, const char *path, bool rw)
{
	const char *name = strrchr(path, '/');
	struct jail_file *f = realloc(c->files, (c->n_files + 1) * sizeof(*f));

	if (f == NULL)
		return -1;
	c->files = f;
	name = name ? name + 1 : path;
	if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		fprintf(stderr, PROG ": file '%s': names no file\n", path);
		return -1;
	}
	f[c->n_files].src = (char *)path;
	if (asprintf(&f[c->n_files].dest, "/%s", name) < 0)
		return -1;
	f[c->n_files].rw = rw;
	c->n_files++;
	return 0;
}

enum {
	OPT_ID = 256,
	OPT_EXEC,
	OPT_UID,
	OPT_GID,
	OPT_BASE,
	OPT_FILE,
	OPT_RW_FILE,
	OPT_LIB,
	OPT_NETNS,
	OPT_CGROUP,
	OPT_LIMITS,
	OPT_MEMORY,
	OPT_CPUS,
	OPT_PIDS,
	OPT_NOFILE,
	OPT_FSIZE,
	OPT_CLEANUP,
};

/* --limits SPEC, --memory SIZE, --pids N and --cpus N, each appended to
 * *spec as cgroup_limits_parse() items (a key given twice is refused
 * there).  -1 after printing why. */
static int add_limit(char **spec, int opt, const char *value)
{
	uint64_t milli;
	char *item = NULL, *joined = NULL;
	int r;

	if (opt != OPT_LIMITS && (strchr(value, ',') || strchr(value, '='))) {
		fprintf(stderr, PROG ": --%s '%s': one value (--limits takes several)\n",
			opt == OPT_MEMORY ? "memory"
			: opt == OPT_PIDS ? "pids"
					  : "cpus",
			value);
		return -1;
	}
	if (opt == OPT_CPUS) {
		if (parse_cpus(value, &milli) < 0) {
			fprintf(stderr, PROG ": --cpus '%s': not a number of CPUs (0.001 to 4096)\n", value);
			return -1;
		}
		r = asprintf(&item, "cpu-period=100000,cpu-quota=%llu", (unsigned long long)(100 * milli));
	} else {
		r = asprintf(&item, "%s%s", opt == OPT_MEMORY ? "memory=" : opt == OPT_PIDS ? "pids=" : "", value);
	}
	if (r < 0 || asprintf(&joined, "%s%s%s", *spec ? *spec : "", *spec ? "," : "", item) < 0) {
		fprintf(stderr, PROG ": cgroup limits: out of memory\n");
		free(item);
		return -1;
	}
	free(item);
	free(*spec);
	*spec = joined;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"id", required_argument, NULL, OPT_ID},
	    {"exec-file", required_argument, NULL, OPT_EXEC},
	    {"uid", required_argument, NULL, OPT_UID},
	    {"gid", required_argument, NULL, OPT_GID},
	    {"chroot-base", required_argument, NULL, OPT_BASE},
	    {"file", required_argument, NULL, OPT_FILE},
	    {"rw-file", required_argument, NULL, OPT_RW_FILE},
	    {"lib", required_argument, NULL, OPT_LIB},
	    {"netns", required_argument, NULL, OPT_NETNS},
	    {"parent-cgroup", required_argument, NULL, OPT_CGROUP},
	    {"limits", required_argument, NULL, OPT_LIMITS},
	    {"memory", required_argument, NULL, OPT_MEMORY},
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"pids", required_argument, NULL, OPT_PIDS},
	    {"rlimit-nofile", required_argument, NULL, OPT_NOFILE},
	    {"rlimit-fsize", required_argument, NULL, OPT_FSIZE},
	    {"cleanup", required_argument, NULL, OPT_CLEANUP},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct jail_config c = {.chroot_base = JAIL_DEFAULT_BASE, .parent_cgroup = JAIL_DEFAULT_CGROUP};
	const char *cleanup = NULL;
	bool has_uid = false, has_gid = false;
	_cleanup_err_ struct err *e = NULL;
	unsigned id;
	char *limits = NULL; /* cgroup_limits_parse()'s "KEY=VALUE,..." */
	int opt, r;

	/* Nothing the caller left open reaches the jail, nor its environment. */
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	clearenv();

	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_ID:
			c.id = optarg;
			break;
		case OPT_EXEC:
			c.exec_file = optarg;
			break;
		case OPT_UID:
			if (parse_id("uid", optarg, &id) < 0)
				return 2;
			c.uid = id;
			has_uid = true;
			break;
		case OPT_GID:
			if (parse_id("gid", optarg, &id) < 0)
				return 2;
			c.gid = id;
			has_gid = true;
			break;
		case OPT_BASE:
			c.chroot_base = optarg;
			break;
		case OPT_FILE:
		case OPT_RW_FILE:
			if (add_file(&c, optarg, opt == OPT_RW_FILE) < 0)
				return 2;
			break;
		case OPT_LIB: {
			char **l = realloc(c.libs, (c.n_libs + 1) * sizeof(*l));
			if (l == NULL)
				return 1;
			c.libs = l;
			l[c.n_libs++] = optarg;
			break;
		}
		case OPT_NETNS:
			c.netns = optarg;
			break;
		case OPT_CGROUP:
			c.parent_cgroup = optarg;
			break;
		case OPT_LIMITS:
		case OPT_MEMORY:
		case OPT_PIDS:
		case OPT_CPUS:
			if (add_limit(&limits, opt, optarg) < 0)
				return 2;
			break;
		case OPT_NOFILE:
			if (parse_u64(optarg, &c.rlimit_nofile) < 0 || c.rlimit_nofile == 0) {
				fprintf(stderr, PROG ": --rlimit-nofile '%s': not a positive number\n", optarg);
				return 2;
			}
			break;
		case OPT_FSIZE:
			if (parse_size(optarg, &c.rlimit_fsize) < 0 || c.rlimit_fsize == 0) {
				fprintf(stderr, PROG ": --rlimit-fsize '%s': not a size\n", optarg);
				return 2;
			}
			break;
		case OPT_CLEANUP:
			cleanup = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (cleanup) {
		r = jail_cleanup(c.chroot_base, c.exec_file ? c.exec_file : "casulo-vmm", c.parent_cgroup, cleanup, &e);
		if (r < 0) {
			err_print(e, PROG, stderr);
			return 1;
		}
		return 0;
	}
	if (!c.id || !c.exec_file || !has_uid || !has_gid) {
		fprintf(stderr, PROG ": --id, --exec-file, --uid and --gid are required (--help says more)\n");
		return 2;
	}
	if (getuid() != 0 && geteuid() != 0) {
		fprintf(stderr, PROG ": jail '%s': must run as root (it makes namespaces, mounts and a cgroup)\n",
			c.id);
		return 1;
	}
	if (limits && cgroup_limits_parse(limits, NULL, NULL, &c.limits, &e) < 0) {
		err_wrap(&e, "cgroup limits");
		err_print(e, PROG, stderr);
		free(limits);
		return 2;
	}
	free(limits);
	c.argv = argv + optind;
	r = jail_run(&c, &e);
	cgroup_resources_clear(&c.limits);
	if (r < 0) {
		err_print(e, PROG, stderr);
		return 1;
	}
	return r;
}
