/* update: change a running container's resources, from --resources FILE
 * ("-" for stdin, the OCI linux.resources object) or runc's flags. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/parse.h"
#include "oci/spec.h"

enum {
	OPT_RESOURCES = 'r',
	OPT_BLKIO = 256,
	OPT_CPU_PERIOD,
	OPT_CPU_QUOTA,
	OPT_CPU_SHARE,
	OPT_RT_PERIOD,
	OPT_RT_RUNTIME,
	OPT_CPUS,
	OPT_MEMS,
	OPT_KMEM,
	OPT_KMEM_TCP,
	OPT_MEMORY,
	OPT_MEM_RES,
	OPT_SWAP,
	OPT_PIDS,
	OPT_L3,
	OPT_MEMBW
};

struct update_args {
	const char *resources;
	struct oci_resources r;
	bool flags;
};

static int size_arg(const char *flag, const char *arg, int64_t *v, bool *has)
{
	uint64_t u;

	if (strcmp(arg, "-1") == 0) {
		*v = -1;
	} else if (parse_size(arg, &u) == 0 && u <= INT64_MAX) {
		*v = (int64_t)u;
	} else {
		cli_usage("update", "%s '%s': not a size (like 512M) or -1", flag, arg);
		return -1;
	}
	*has = true;
	return 0;
}

static int num_arg(const char *flag, const char *arg, int64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoll(arg, &end, 10);
	if (errno || end == arg || *end) {
		cli_usage("update", "%s '%s': not a number", flag, arg);
		return -1;
	}
	return 0;
}

static int handle(int c, const char *arg, void *data)
{
	struct update_args *a = data;
	struct oci_resources *r = &a->r;
	int64_t v = 0;

	if (c == OPT_RESOURCES) {
		a->resources = arg;
		return 0;
	}
	a->flags = true;
	switch (c) {
	case OPT_MEMORY:
		return size_arg("--memory", arg, &r->mem_limit, &r->has_mem_limit);
	case OPT_MEM_RES:
		return size_arg("--memory-reservation", arg, &r->mem_reservation, &r->has_mem_reservation);
	case OPT_SWAP:
		return size_arg("--memory-swap", arg, &r->mem_swap, &r->has_mem_swap);
	case OPT_KMEM:
		return size_arg("--kernel-memory", arg, &r->mem_kernel, &r->has_mem_kernel);
	case OPT_KMEM_TCP:
		return size_arg("--kernel-memory-tcp", arg, &r->mem_kernel_tcp, &r->has_mem_kernel_tcp);
	case OPT_CPUS:
		free(r->cpu_cpus);
		r->cpu_cpus = strdup(arg);
		return 0;
	case OPT_MEMS:
		free(r->cpu_mems);
		r->cpu_mems = strdup(arg);
		return 0;
	case OPT_L3:
	case OPT_MEMBW:
		return -cli_usage("update", "Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported");
	}
	if (num_arg("flag", arg, &v) < 0)
		return -1;
	switch (c) {
	case OPT_BLKIO:
		if (v < 10 || v > 1000)
			return -cli_usage("update", "--blkio-weight %lld: not in 10..1000", (long long)v);
		r->blkio_weight = (uint16_t)v, r->has_blkio_weight = true;
		break;
	case OPT_CPU_PERIOD:
		r->cpu_period = (uint64_t)v, r->has_cpu_period = true;
		break;
	case OPT_CPU_QUOTA:
		r->cpu_quota = v, r->has_cpu_quota = true;
		break;
	case OPT_CPU_SHARE:
		r->cpu_shares = (uint64_t)v, r->has_cpu_shares = true;
		break;
	case OPT_RT_PERIOD:
		r->cpu_rt_period = (uint64_t)v, r->has_cpu_rt_period = true;
		break;
	case OPT_RT_RUNTIME:
		r->cpu_rt_runtime = v, r->has_cpu_rt_runtime = true;
		break;
	case OPT_PIDS:
		r->pids_limit = v, r->has_pids_limit = true;
		break;
	default:
		return -1;
	}
	return 0;
}

static int read_stream(FILE *f, char **ret, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return -ENOMEM;
	for (;;) {
		size_t got;
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap *= 2);
			if (nb == NULL) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	buf[n] = '\0';
	*ret = buf;
	*len = n;
	return ferror(f) ? -EIO : 0;
}

VERB(update)
{
	static const struct option opts[] = {
	    {"resources", required_argument, NULL, OPT_RESOURCES},
	    {"blkio-weight", required_argument, NULL, OPT_BLKIO},
	    {"cpu-period", required_argument, NULL, OPT_CPU_PERIOD},
	    {"cpu-quota", required_argument, NULL, OPT_CPU_QUOTA},
	    {"cpu-share", required_argument, NULL, OPT_CPU_SHARE},
	    {"cpu-rt-period", required_argument, NULL, OPT_RT_PERIOD},
	    {"cpu-rt-runtime", required_argument, NULL, OPT_RT_RUNTIME},
	    {"cpuset-cpus", required_argument, NULL, OPT_CPUS},
	    {"cpuset-mems", required_argument, NULL, OPT_MEMS},
	    {"kernel-memory", required_argument, NULL, OPT_KMEM},
	    {"kernel-memory-tcp", required_argument, NULL, OPT_KMEM_TCP},
	    {"memory", required_argument, NULL, OPT_MEMORY},
	    {"memory-reservation", required_argument, NULL, OPT_MEM_RES},
	    {"memory-swap", required_argument, NULL, OPT_SWAP},
	    {"pids-limit", required_argument, NULL, OPT_PIDS},
	    {"l3-cache-schema", required_argument, NULL, OPT_L3},
	    {"mem-bw-schema", required_argument, NULL, OPT_MEMBW},
	    {0},
	};
	struct update_args a;
	struct err *e = NULL;
	const char *id;
	int r;

	memset(&a, 0, sizeof(a));
	if (cli_one_id("update", argc, argv, cli_getopt("update", argc, argv, opts, handle, &a), &id) < 0) {
		spec_resources_clear(&a.r);
		return 1;
	}
	if (a.resources) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = strcmp(a.resources, "-") == 0 ? stdin : fopen(a.resources, "re");
		struct oci_resources fromfile;

		if (f == NULL || read_stream(f, &text, &len) < 0) {
			spec_resources_clear(&a.r);
			return cli_usage("update", "--resources '%s': read: %s", a.resources, strerror(errno));
		}
		if (f != stdin)
			fclose(f);
		r = spec_parse_resources(text, len, &fromfile, &e);
		free(text);
		if (r < 0) {
			spec_resources_clear(&a.r);
			return cli_fail(e);
		}
		/* Flags given beside the file win, as in runc. */
		if (!a.flags) {
			spec_resources_clear(&a.r);
			a.r = fromfile;
		} else {
			spec_resources_clear(&fromfile);
		}
	}
	r = oci_update(g, id, &a.r, &e);
	spec_resources_clear(&a.r);
	if (r < 0)
		return cli_fail(e);
	return 0;
}
