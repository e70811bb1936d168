/* update: change a running container's resources, from --resources FILE
 * ("-" for stdin, the OCI linux.resources object) or runc 1.1's flags.
 * As in runc, the flags are ignored when a file is given, values are
 * parsed as runc parses them (sizes as docker's RAMInBytes), and 0 leaves
 * a value as it is. */
#include <ctype.h>
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
	OPT_IDLE,
	OPT_L3,
	OPT_MEMBW
};

struct update_args {
	const char *resources;
	struct cgroup_resources r;
};

/* docker's units.RAMInBytes, which runc uses: "512m", "1.5g", "2 GiB";
 * binary units, any case. */
static int ram_in_bytes(const char *s, int64_t *ret)
{
	static const char units[] = "kmgtp";
	char *end;
	double v;
	const char *u;
	size_t i = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	v = strtod(s, &end);
	if (end == s || v != v)
		return -EINVAL;
	if (*end == ' ')
		end++;
	if (*end && (u = strchr(units, tolower((unsigned char)*end)))) {
		for (const char *k = units; k <= u; k++)
			v *= 1024;
		end++;
		i = 1;
	}
	if (i && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end || v >= 9.2e18)
		return -EINVAL;
	*ret = (int64_t)v;
	return 0;
}

static int size_arg(const char *flag, const char *arg, int64_t *v, bool *has)
{
	if (strcmp(arg, "-1") == 0)
		*v = -1;
	else if (ram_in_bytes(arg, v) < 0)
		return -cli_usage(NULL, "invalid value for %s: invalid size: '%s'", flag, arg);
	*has = true;
	return 0;
}

static int unsigned_arg(const char *flag, const char *arg, uint64_t *v, bool *has)
{
	if (parse_u64(arg, v) < 0 || !isdigit((unsigned char)*arg))
		return -cli_usage(NULL, "invalid value for %s: strconv.ParseUint: parsing \"%s\": invalid syntax", flag,
				  arg);
	*has = true;
	return 0;
}

static int signed_arg(const char *flag, const char *arg, int64_t *v, bool *has)
{
	char *end;

	errno = 0;
	*v = strtoll(arg, &end, 10);
	if (errno || end == arg || *end)
		return -cli_usage(NULL, "invalid value for %s: strconv.ParseInt: parsing \"%s\": invalid syntax", flag,
				  arg);
	*has = true;
	return 0;
}

static int replace(char **s, const char *arg)
{
	free(*s);
	*s = strdup(arg);
	return *s ? 0 : -cli_usage("update", "out of memory");
}

static int handle(int c, const char *arg, void *data)
{
	struct update_args *a = data;
	struct cgroup_resources *r = &a->r;
	uint64_t u = 0;
	bool has = false;

	switch (c) {
	case OPT_RESOURCES:
		a->resources = arg;
		return 0;
	case OPT_MEMORY:
		return size_arg("memory", arg, &r->mem_limit, &r->has_mem_limit);
	case OPT_MEM_RES:
		return size_arg("memory-reservation", arg, &r->mem_reservation, &r->has_mem_reservation);
	case OPT_SWAP:
		return size_arg("memory-swap", arg, &r->mem_swap, &r->has_mem_swap);
	case OPT_KMEM:
		return size_arg("kernel-memory", arg, &r->mem_kernel, &r->has_mem_kernel);
	case OPT_KMEM_TCP:
		return size_arg("kernel-memory-tcp", arg, &r->mem_kernel_tcp, &r->has_mem_kernel_tcp);
	case OPT_CPUS:
		return replace(&r->cpu_cpus, arg);
	case OPT_MEMS:
		return replace(&r->cpu_mems, arg);
	case OPT_CPU_PERIOD:
		return unsigned_arg("cpu-period", arg, &r->cpu_period, &r->has_cpu_period);
	case OPT_RT_PERIOD:
		return unsigned_arg("cpu-rt-period", arg, &r->cpu_rt_period, &r->has_cpu_rt_period);
	case OPT_CPU_SHARE:
		return unsigned_arg("cpu-share", arg, &r->cpu_shares, &r->has_cpu_shares);
	case OPT_CPU_QUOTA:
		return signed_arg("cpu-quota", arg, &r->cpu_quota, &r->has_cpu_quota);
	case OPT_RT_RUNTIME:
		return signed_arg("cpu-rt-runtime", arg, &r->cpu_rt_runtime, &r->has_cpu_rt_runtime);
	case OPT_IDLE:
		return signed_arg("cpu-idle", arg, &r->cpu_idle, &r->has_cpu_idle);
	case OPT_PIDS:
		return signed_arg("pids-limit", arg, &r->pids_limit, &r->has_pids_limit);
	case OPT_BLKIO:
		if (unsigned_arg("blkio-weight", arg, &u, &has) < 0)
			return -1;
		if (u != 0 && (u < 10 || u > 1000))
			return -cli_usage(NULL, "invalid value for blkio-weight: %llu is not in 10..1000",
					  (unsigned long long)u);
		r->blkio_weight = (uint16_t)u, r->has_blkio_weight = true;
		return 0;
	case OPT_L3:
		return -cli_usage(NULL, "Intel RDT/CAT: l3 cache schema is not enabled");
	case OPT_MEMBW:
		return -cli_usage(NULL, "Intel RDT/MBA: memory bandwidth schema is not enabled");
	}
	return -1;
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

/* --resources: the file (or stdin) replaces the flags, as in runc. */
static int read_resources(const char *path, struct cgroup_resources *r)
{
	struct err *e = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	int rc;

	if (f == NULL || read_stream(f, &text, &len) < 0) {
		rc = errno;
		if (f && f != stdin)
			fclose(f);
		return -cli_usage("update", "--resources '%s': read: %s", path, strerror(rc));
	}
	if (f != stdin)
		fclose(f);
	cgroup_resources_clear(r);
	rc = spec_parse_resources(text, len, r, &e);
	free(text);
	return rc < 0 ? -cli_fail(e) : 0;
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
	    {"cpu-idle", required_argument, NULL, OPT_IDLE},
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
	if (cli_one_id("update", argc, argv, cli_getopt("update", argc, argv, opts, handle, &a), &id) < 0 ||
	    (a.resources && read_resources(a.resources, &a.r) < 0)) {
		cgroup_resources_clear(&a.r);
		return 1;
	}
	r = vmc_is_vm(g, id) ? vmc_update(g, id, &a.r, &e) : oci_update(g, id, &a.r, &e);
	cgroup_resources_clear(&a.r);
	if (r < 0)
		return cli_fail(e);
	return 0;
}
