/* What the kernel counts for a cgroup (cpu, cpuset, memory, pids, block
 * I/O, hugetlb), v1 and v2 files read into one shape; and OOM
 * notifications (v1: cgroup.event_control with an eventfd; v2: inotify
 * on memory.events). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cgroup/cgroup-internal.h"
#include "common/macro.h"

/* ---- parsers ---- */

static int add_raw(struct cgroup_stats *s, const char *key, size_t klen, uint64_t v)
{
	struct cgroup_u64_kv *n = realloc(s->mem_raw, (s->n_mem_raw + 1) * sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	s->mem_raw = n;
	n[s->n_mem_raw].key = strndup(key, klen);
	if (n[s->n_mem_raw].key == NULL)
		return -ENOMEM;
	n[s->n_mem_raw++].value = v;
	return 0;
}

/* "key value" lines: calls fn for each; malformed lines are skipped. */
static int each_key_value(const char *text, int (*fn)(const char *key, size_t klen, uint64_t v, void *ctx), void *ctx)
{
	for (const char *p = text; p && *p;) {
		const char *end = strchr(p, '\n'), *sp = strchr(p, ' ');
		int r;

		if (end == NULL)
			end = p + strlen(p);
		if (sp && sp < end) {
			char *num_end;
			unsigned long long v = strtoull(sp + 1, &num_end, 10);
			if (num_end > sp + 1 && (r = fn(p, (size_t)(sp - p), v, ctx)) < 0)
				return r;
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

static bool key_is(const char *key, size_t klen, const char *want)
{
	return strlen(want) == klen && strncmp(key, want, klen) == 0;
}

static int memory_stat_item(const char *key, size_t klen, uint64_t v, void *ctx)
{
	struct cgroup_stats *s = ctx;

	/* v1 counts the page cache as "cache", v2 as "file". */
	if (key_is(key, klen, "cache") || key_is(key, klen, "file"))
		s->mem_cache = v;
	return add_raw(s, key, klen, v);
}

int cgroup_stats_parse_memory_stat(const char *text, struct cgroup_stats *s)
{
	return each_key_value(text, memory_stat_item, s);
}

static int memory_events_item(const char *key, size_t klen, uint64_t v, void *ctx)
{
	struct cgroup_stats *s = ctx;

	if (key_is(key, klen, "low"))
		s->mem_events_low = v;
	else if (key_is(key, klen, "high"))
		s->mem_events_high = v;
	else if (key_is(key, klen, "max"))
		s->mem_events_max = v;
	else if (key_is(key, klen, "oom"))
		s->mem_events_oom = v;
	else if (key_is(key, klen, "oom_kill"))
		s->mem_events_oom_kill = v;
	/* v1's memory.oom_control */
	else if (key_is(key, klen, "under_oom"))
		s->mem_under_oom = v != 0;
	else if (key_is(key, klen, "oom_kill_disable"))
		s->mem_oom_kill_disable = v != 0;
	return 0;
}

int cgroup_stats_parse_memory_events(const char *text, struct cgroup_stats *s)
{
	return each_key_value(text, memory_events_item, s);
}

struct cpu_stat_ctx {
	struct cgroup_stats *s;
	uint64_t scale; /* v2's counters are in microseconds */
};

static int cpu_stat_item(const char *key, size_t klen, uint64_t v, void *ctx)
{
	struct cpu_stat_ctx *c = ctx;
	struct cgroup_stats *s = c->s;

	if (key_is(key, klen, "nr_periods"))
		s->cpu_periods = v;
	else if (key_is(key, klen, "nr_throttled"))
		s->cpu_throttled_periods = v;
	else if (key_is(key, klen, "throttled_time") || key_is(key, klen, "throttled_usec"))
		s->cpu_throttled_ns = v * c->scale;
	else if (key_is(key, klen, "usage_usec"))
		s->cpu_total_ns = v * c->scale;
	else if (key_is(key, klen, "user_usec"))
		s->cpu_user_ns = v * c->scale;
	else if (key_is(key, klen, "system_usec"))
		s->cpu_kernel_ns = v * c->scale;
	return 0;
}

int cgroup_stats_parse_cpu_stat(const char *text, bool v2, struct cgroup_stats *s)
{
	struct cpu_stat_ctx c = {s, v2 ? 1000 : 1};

	return each_key_value(text, cpu_stat_item, &c);
}

static int add_blkio(struct cgroup_stats *s, enum cgroup_blkio_kind kind, uint64_t major, uint64_t minor,
		     const char *op, uint64_t value)
{
	struct cgroup_blkio_entry *n = realloc(s->blkio[kind], (s->n_blkio[kind] + 1) * sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	s->blkio[kind] = n;
	n += s->n_blkio[kind]++;
	n->major = major;
	n->minor = minor;
	snprintf(n->op, sizeof(n->op), "%s", op);
	n->value = value;
	return 0;
}

int cgroup_stats_parse_blkio(const char *text, enum cgroup_blkio_kind kind, struct cgroup_stats *s)
{
	for (const char *p = text; p && *p;) {
		unsigned long long major, minor, value;
		char op[16];
		int r;

		/* "8:0 Read 4096", or "8:0 4096" (blkio.time, blkio.sectors);
		 * the closing "Total N" line sums the others. */
		if (sscanf(p, "%llu:%llu %15s %llu", &major, &minor, op, &value) == 4) {
			if ((r = add_blkio(s, kind, major, minor, op, value)) < 0)
				return r;
		} else if (sscanf(p, "%llu:%llu %llu", &major, &minor, &value) == 3) {
			if ((r = add_blkio(s, kind, major, minor, "", value)) < 0)
				return r;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return 0;
}

int cgroup_stats_parse_io_stat(const char *text, struct cgroup_stats *s)
{
	static const struct {
		const char *key;
		enum cgroup_blkio_kind kind;
		const char *op;
	} keys[] = {
	    {"rbytes", CGROUP_BLKIO_SERVICE_BYTES, "Read"},
	    {"wbytes", CGROUP_BLKIO_SERVICE_BYTES, "Write"},
	    {"rios", CGROUP_BLKIO_SERVICED, "Read"},
	    {"wios", CGROUP_BLKIO_SERVICED, "Write"},
	};

	for (const char *p = text; p && *p;) {
		const char *end = strchr(p, '\n');
		unsigned long long major, minor;
		int used = 0;

		if (end == NULL)
			end = p + strlen(p);
		/* "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" */
		if (sscanf(p, "%llu:%llu%n", &major, &minor, &used) == 2) {
			for (const char *f = p + used; f < end;) {
				while (f < end && *f == ' ')
					f++;
				const char *eq = memchr(f, '=', (size_t)(end - f));
				size_t flen = strcspn(f, " \n");
				if (eq == NULL || eq > f + flen)
					break;
				for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
					int r;
					if (!key_is(f, (size_t)(eq - f), keys[i].key))
						continue;
					if ((r = add_blkio(s, keys[i].kind, major, minor, keys[i].op,
							   strtoull(eq + 1, NULL, 10))) < 0)
						return r;
				}
				f += flen;
			}
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

int cgroup_stats_parse_percpu(const char *text, uint64_t **ret, size_t *n)
{
	uint64_t *v = NULL;
	size_t k = 0;
	const char *p = text;

	for (;;) {
		char *end;
		unsigned long long x;
		while (*p == ' ' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		x = strtoull(p, &end, 10);
		if (end == p) {
			free(v);
			return -EINVAL;
		}
		uint64_t *nv = realloc(v, (k + 1) * sizeof(*nv));
		if (nv == NULL) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		v[k++] = x;
		p = end;
	}
	*ret = v;
	*n = k;
	return 0;
}

int cgroup_stats_parse_list(const char *text, uint16_t **ret, size_t *n)
{
	uint16_t *v = NULL;
	size_t k = 0;
	const char *p = text;

	*ret = NULL;
	*n = 0;
	while (*p && *p != '\n') {
		char *end;
		unsigned long a = strtoul(p, &end, 10), b;
		if (end == p || a > 65535)
			goto bad;
		b = a;
		p = end;
		if (*p == '-') {
			b = strtoul(p + 1, &end, 10);
			if (end == p + 1 || b < a || b > 65535)
				goto bad;
			p = end;
		}
		uint16_t *nv = realloc(v, (k + (b - a) + 1) * sizeof(*nv));
		if (nv == NULL) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		for (unsigned long x = a; x <= b; x++)
			v[k++] = (uint16_t)x;
		if (*p == ',')
			p++;
		else if (*p && *p != '\n')
			goto bad;
	}
	*ret = v;
	*n = k;
	return 0;
bad:
	free(v);
	return -EINVAL;
}

/* ---- reading a cgroup ---- */

/* A file holding one number ("max" reads as UINT64_MAX); false when it
 * cannot be read. */
static bool read_u64(const char *dir, const char *file, uint64_t *v)
{
	_cleanup_free_ char *text = NULL;
	char *end;

	if (cgroup_read(dir, file, &text) < 0)
		return false;
	if (strncmp(text, "max", 3) == 0) {
		*v = UINT64_MAX;
		return true;
	}
	*v = strtoull(text, &end, 10);
	return end != text;
}

/* A file of "key value" lines: the value of key, or 0. */
static uint64_t read_key(const char *dir, const char *file, const char *key)
{
	_cleanup_free_ char *text = NULL;
	size_t klen = strlen(key);

	if (cgroup_read(dir, file, &text) < 0)
		return 0;
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
			return strtoull(p + klen + 1, NULL, 10);
	return 0;
}

/* v1's "prefix.usage_in_bytes", "prefix.max_usage_in_bytes", ... */
static bool v1_mem_entry(const char *dir, const char *prefix, struct cgroup_mem_entry *m)
{
	char f[96];
	bool ok;

	snprintf(f, sizeof(f), "%s.usage_in_bytes", prefix);
	ok = read_u64(dir, f, &m->usage);
	snprintf(f, sizeof(f), "%s.max_usage_in_bytes", prefix);
	(void)read_u64(dir, f, &m->max_usage);
	snprintf(f, sizeof(f), "%s.limit_in_bytes", prefix);
	ok |= read_u64(dir, f, &m->limit);
	snprintf(f, sizeof(f), "%s.failcnt", prefix);
	(void)read_u64(dir, f, &m->failcnt);
	return ok;
}

static int read_memory_stat_file(const char *dir, struct cgroup_stats *s)
{
	_cleanup_free_ char *text = NULL;

	if (cgroup_read(dir, "memory.stat", &text) < 0)
		return 0;
	return cgroup_stats_parse_memory_stat(text, s);
}

static int v1_memory(const char *dir, struct cgroup_stats *s)
{
	_cleanup_free_ char *oom = NULL;

	s->has_memory = v1_mem_entry(dir, "memory", &s->mem);
	if (!s->has_memory)
		return -ENOENT;
	s->has_swap = v1_mem_entry(dir, "memory.memsw", &s->swap);
	s->has_kernel = v1_mem_entry(dir, "memory.kmem", &s->kernel);
	s->has_kernel_tcp = v1_mem_entry(dir, "memory.kmem.tcp", &s->kernel_tcp);
	if (cgroup_read(dir, "memory.oom_control", &oom) == 0)
		(void)cgroup_stats_parse_memory_events(oom, s);
	s->mem_events_max = s->mem.failcnt;
	return read_memory_stat_file(dir, s);
}

static int v2_memory(const char *dir, struct cgroup_stats *s)
{
	_cleanup_free_ char *events = NULL;

	if (!read_u64(dir, "memory.current", &s->mem.usage))
		return 0;
	s->has_memory = true;
	(void)read_u64(dir, "memory.max", &s->mem.limit);
	(void)read_u64(dir, "memory.peak", &s->mem.max_usage);
	if (cgroup_read(dir, "memory.events", &events) == 0)
		(void)cgroup_stats_parse_memory_events(events, s);
	s->mem.failcnt = s->mem_events_max;
	/* As v1 shows it: swap as memory+swap. */
	if (read_u64(dir, "memory.swap.current", &s->swap.usage)) {
		s->has_swap = true;
		s->swap.usage += s->mem.usage;
		(void)read_u64(dir, "memory.swap.max", &s->swap.limit);
		if (s->swap.limit != UINT64_MAX && s->mem.limit != UINT64_MAX)
			s->swap.limit += s->mem.limit;
		else
			s->swap.limit = UINT64_MAX;
		(void)read_u64(dir, "memory.swap.peak", &s->swap.max_usage);
		s->swap.failcnt = read_key(dir, "memory.swap.events", "max");
	}
	return read_memory_stat_file(dir, s);
}

static int v1_cpu(const struct cgroup *cg, struct cgroup_stats *s)
{
	const char *acct = cgroup_v1_dir(cg, "cpuacct"), *cpu = cgroup_v1_dir(cg, "cpu");
	_cleanup_free_ char *text = NULL;
	long hz = sysconf(_SC_CLK_TCK);
	int r;

	if (acct) {
		s->has_cpu = read_u64(acct, "cpuacct.usage", &s->cpu_total_ns);
		if (cgroup_read(acct, "cpuacct.usage_percpu", &text) == 0 &&
		    (r = cgroup_stats_parse_percpu(text, &s->percpu_ns, &s->n_cpus)) < 0)
			return r;
		free(text);
		text = NULL;
		/* "cpu user system" then one line per cpu, in nanoseconds. */
		if (cgroup_read(acct, "cpuacct.usage_all", &text) == 0 && s->n_cpus) {
			s->percpu_user_ns = calloc(s->n_cpus, sizeof(uint64_t));
			s->percpu_kernel_ns = calloc(s->n_cpus, sizeof(uint64_t));
			if (s->percpu_user_ns == NULL || s->percpu_kernel_ns == NULL)
				return -ENOMEM;
			for (const char *p = strchr(text, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
				unsigned long long c, u, k;
				if (sscanf(p + 1, "%llu %llu %llu", &c, &u, &k) == 3 && c < s->n_cpus)
					s->percpu_user_ns[c] = u, s->percpu_kernel_ns[c] = k;
			}
		}
		/* user and system in clock ticks. */
		if (hz > 0) {
			s->cpu_user_ns = read_key(acct, "cpuacct.stat", "user") * (1000000000ULL / (uint64_t)hz);
			s->cpu_kernel_ns = read_key(acct, "cpuacct.stat", "system") * (1000000000ULL / (uint64_t)hz);
		}
	}
	if (cpu) {
		free(text);
		text = NULL;
		if (cgroup_read(cpu, "cpu.stat", &text) == 0) {
			s->has_cpu = true;
			return cgroup_stats_parse_cpu_stat(text, false, s);
		}
	}
	return 0;
}

static int v1_cpuset(const char *dir, struct cgroup_stats *s)
{
	static const char *const flags[] = {"cpuset.cpu_exclusive",	 "cpuset.mem_hardwall",
					    "cpuset.mem_exclusive",	 "cpuset.memory_migrate",
					    "cpuset.memory_spread_page", "cpuset.memory_spread_slab",
					    "cpuset.memory_pressure",	 "cpuset.sched_load_balance"};
	_cleanup_free_ char *cpus = NULL, *mems = NULL, *level = NULL;
	int r;

	if (cgroup_read(dir, "cpuset.cpus", &cpus) < 0 || cgroup_read(dir, "cpuset.mems", &mems) < 0)
		return 0;
	s->has_cpuset = true;
	if ((r = cgroup_stats_parse_list(cpus, &s->cpuset_cpus, &s->n_cpuset_cpus)) == -ENOMEM ||
	    (r = cgroup_stats_parse_list(mems, &s->cpuset_mems, &s->n_cpuset_mems)) == -ENOMEM)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		(void)read_u64(dir, flags[i], &s->cpuset_flags[i]);
	if (cgroup_read(dir, "cpuset.sched_relax_domain_level", &level) == 0)
		s->cpuset_relax_domain_level = strtoll(level, NULL, 10);
	return 0;
}

static int v1_blkio(const char *dir, struct cgroup_stats *s)
{
	/* CFQ's files first; without a proportional scheduler the
	 * throttling layer's count (as runc falls back to). */
	static const struct {
		const char *file, *fallback;
		enum cgroup_blkio_kind kind;
	} files[] = {
	    {"blkio.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive",
	     CGROUP_BLKIO_SERVICE_BYTES},
	    {"blkio.io_serviced_recursive", "blkio.throttle.io_serviced_recursive", CGROUP_BLKIO_SERVICED},
	    {"blkio.io_queued_recursive", NULL, CGROUP_BLKIO_QUEUED},
	    {"blkio.io_service_time_recursive", NULL, CGROUP_BLKIO_SERVICE_TIME},
	    {"blkio.io_wait_time_recursive", NULL, CGROUP_BLKIO_WAIT_TIME},
	    {"blkio.io_merged_recursive", NULL, CGROUP_BLKIO_MERGED},
	    {"blkio.time_recursive", NULL, CGROUP_BLKIO_TIME},
	    {"blkio.sectors_recursive", NULL, CGROUP_BLKIO_SECTORS},
	};
	bool cfq = cgroup_has_file(dir, files[0].file);

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *text = NULL;
		const char *f = cfq ? files[i].file : files[i].fallback;
		int r;
		if (f == NULL || cgroup_read(dir, f, &text) < 0)
			continue;
		if ((r = cgroup_stats_parse_blkio(text, files[i].kind, s)) < 0)
			return r;
	}
	return 0;
}

static int add_hugetlb(struct cgroup_stats *s, const char *size, uint64_t usage, uint64_t max, uint64_t failcnt)
{
	struct cgroup_hugetlb_stat *n = realloc(s->hugetlb, (s->n_hugetlb + 1) * sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	s->hugetlb = n;
	n += s->n_hugetlb++;
	snprintf(n->page_size, sizeof(n->page_size), "%s", size);
	n->usage = usage;
	n->max_usage = max;
	n->failcnt = failcnt;
	return 0;
}

/* "hugepages-2048kB" -> "2MB", as the cgroup files name the sizes. */
static bool hugepage_name(const char *dirent, char *buf, size_t size)
{
	unsigned long long kb;

	if (sscanf(dirent, "hugepages-%llukB", &kb) != 1)
		return false;
	if (kb >= (1 << 20) && kb % (1 << 20) == 0)
		snprintf(buf, size, "%lluGB", kb >> 20);
	else if (kb >= 1024 && kb % 1024 == 0)
		snprintf(buf, size, "%lluMB", kb >> 10);
	else
		snprintf(buf, size, "%lluKB", kb);
	return true;
}

static int hugetlb(const char *dir, bool v2, struct cgroup_stats *s)
{
	DIR *d = opendir("/sys/kernel/mm/hugepages");
	struct dirent *de;
	int r = 0;

	if (d == NULL)
		return 0;
	while (r == 0 && (de = readdir(d))) {
		char size[24], f[96];
		uint64_t usage = 0, max = 0, failcnt = 0;
		if (!hugepage_name(de->d_name, size, sizeof(size)))
			continue;
		if (v2) {
			snprintf(f, sizeof(f), "hugetlb.%s.current", size);
			if (!read_u64(dir, f, &usage))
				continue;
			snprintf(f, sizeof(f), "hugetlb.%s.events", size);
			failcnt = read_key(dir, f, "max");
		} else {
			snprintf(f, sizeof(f), "hugetlb.%s.usage_in_bytes", size);
			if (!read_u64(dir, f, &usage))
				continue;
			snprintf(f, sizeof(f), "hugetlb.%s.max_usage_in_bytes", size);
			(void)read_u64(dir, f, &max);
			snprintf(f, sizeof(f), "hugetlb.%s.failcnt", size);
			(void)read_u64(dir, f, &failcnt);
		}
		r = add_hugetlb(s, size, usage, max, failcnt);
	}
	closedir(d);
	return r;
}

static void pids(const char *dir, struct cgroup_stats *s)
{
	s->has_pids = read_u64(dir, "pids.current", &s->pids_current);
	if (s->has_pids && read_u64(dir, "pids.max", &s->pids_limit) && s->pids_limit == UINT64_MAX)
		s->pids_limit = 0;
}

static int read_v2(const char *dir, struct cgroup_stats *s)
{
	_cleanup_free_ char *text = NULL, *io = NULL;
	int r;

	if (cgroup_read(dir, "cpu.stat", &text) == 0) {
		s->has_cpu = true;
		if ((r = cgroup_stats_parse_cpu_stat(text, true, s)) < 0)
			return r;
	}
	if ((r = v2_memory(dir, s)) < 0)
		return r;
	pids(dir, s);
	if (cgroup_read(dir, "io.stat", &io) == 0 && (r = cgroup_stats_parse_io_stat(io, s)) < 0)
		return r;
	return hugetlb(dir, true, s);
}

static int read_v1(const struct cgroup *cg, struct cgroup_stats *s)
{
	const char *dir;
	int r;

	if ((r = v1_cpu(cg, s)) < 0)
		return r;
	if ((dir = cgroup_v1_dir(cg, "cpuset")) && (r = v1_cpuset(dir, s)) < 0)
		return r;
	if ((dir = cgroup_v1_dir(cg, "memory")) && (r = v1_memory(dir, s)) < 0 && r != -ENOENT)
		return r;
	if ((dir = cgroup_v1_dir(cg, "pids")))
		pids(dir, s);
	if ((dir = cgroup_v1_dir(cg, "blkio")) && (r = v1_blkio(dir, s)) < 0)
		return r;
	if ((dir = cgroup_v1_dir(cg, "hugetlb")))
		return hugetlb(dir, false, s);
	/* A hybrid host may keep hugetlb on its cgroup2 side. */
	if (cg->unified.path)
		return hugetlb(cg->unified.path, true, s);
	return 0;
}

int cgroup_stats_read(const struct cgroup *cg, struct cgroup_stats *s, struct err **e)
{
	const char *first = cgroup_n_dirs(cg) ? cgroup_dir_at(cg, 0) : NULL;
	int r;

	memset(s, 0, sizeof(*s));
	if (first == NULL || access(first, F_OK) < 0)
		return err_setx(e, ENOENT, "cgroup '%s': does not exist", cg->rel);
	r = cg->mode == CGROUP_MODE_V2 ? read_v2(cg->unified.path, s) : read_v1(cg, s);
	if (r < 0) {
		cgroup_stats_clear(s);
		return err_set(e, -r, "cgroup '%s': read statistics", cg->rel);
	}
	return 0;
}

void cgroup_stats_clear(struct cgroup_stats *s)
{
	free(s->percpu_ns);
	free(s->percpu_user_ns);
	free(s->percpu_kernel_ns);
	free(s->cpuset_cpus);
	free(s->cpuset_mems);
	for (size_t i = 0; i < s->n_mem_raw; i++)
		free(s->mem_raw[i].key);
	free(s->mem_raw);
	for (int k = 0; k < CGROUP_BLKIO_KINDS; k++)
		free(s->blkio[k]);
	free(s->hugetlb);
	memset(s, 0, sizeof(*s));
}

/* ---- OOM notifications ---- */

struct cgroup_oom_watch {
	int fd;	   /* eventfd (v1) or inotify (v2) */
	char *dir; /* the memory cgroup */
	bool v2;
	uint64_t last; /* v2: oom_kill count last seen */
	bool has_count;
};

static bool oom_kill_count(const struct cgroup_oom_watch *w, uint64_t *v)
{
	_cleanup_free_ char *text = NULL;
	const char *p;

	if (cgroup_read(w->dir, w->v2 ? "memory.events" : "memory.oom_control", &text) < 0)
		return false;
	p = strstr(text, "oom_kill ");
	if (p == NULL || (p != text && p[-1] != '\n'))
		return false;
	*v = strtoull(p + 9, NULL, 10);
	return true;
}

int cgroup_oom_watch_open(const struct cgroup *cg, struct cgroup_oom_watch **ret, struct err **e)
{
	struct cgroup_oom_watch *w = calloc(1, sizeof(*w));
	const char *dir = cg->mode == CGROUP_MODE_V2 ? cg->unified.path : cgroup_v1_dir(cg, "memory");

	if (w == NULL)
		return err_set(e, ENOMEM, "cgroup '%s': OOM watch", cg->rel);
	w->fd = -1;
	if (dir == NULL) {
		free(w);
		return err_setx(e, ENOTSUP, "cgroup '%s': OOM watch: no memory controller", cg->rel);
	}
	w->v2 = cg->mode == CGROUP_MODE_V2;
	w->dir = strdup(dir);
	if (w->dir == NULL)
		goto fail;
	if (w->v2) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/memory.events", dir);
		w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (w->fd < 0 || inotify_add_watch(w->fd, path, IN_MODIFY) < 0)
			goto fail;
	} else {
		char path[4200], v[64];
		_cleanup_close_ int ctl = -1;
		snprintf(path, sizeof(path), "%s/memory.oom_control", dir);
		ctl = open(path, O_RDONLY | O_CLOEXEC);
		w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (ctl < 0 || w->fd < 0)
			goto fail;
		/* The kernel keeps its own reference to oom_control's file. */
		snprintf(v, sizeof(v), "%d %d", w->fd, ctl);
		if (cgroup_write(dir, "cgroup.event_control", v, e) < 0) {
			cgroup_oom_watch_close(w);
			return -err_code(*e);
		}
	}
	w->has_count = oom_kill_count(w, &w->last);
	*ret = w;
	return 0;
fail:
	err_set(e, errno ? errno : ENOMEM, "cgroup '%s': OOM watch on '%s'", cg->rel, dir);
	cgroup_oom_watch_close(w);
	return -err_code(*e);
}

int cgroup_oom_watch_fd(const struct cgroup_oom_watch *w)
{
	return w->fd;
}

int cgroup_oom_watch_read(struct cgroup_oom_watch *w, uint64_t *count)
{
	char buf[4096];
	uint64_t now = 0, events = 0;
	ssize_t n;

	*count = 0;
	/* Drain what woke us. */
	while ((n = read(w->fd, buf, sizeof(buf))) > 0)
		if (!w->v2 && n == sizeof(uint64_t))
			memcpy(&events, buf, sizeof(events));
	if (access(w->dir, F_OK) < 0)
		return -ENOENT; /* v1 signals the eventfd when the cgroup goes */
	/* v1 signals each OOM (killed or not, with the OOM killer off);
	 * v2's memory.events changes for other reasons too: its count says. */
	if (!w->v2) {
		*count = events;
	} else if (w->has_count && oom_kill_count(w, &now)) {
		*count = now - w->last;
		w->last = now;
	}
	return 0;
}

void cgroup_oom_watch_close(struct cgroup_oom_watch *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->dir);
	free(w);
}
