/* events: the container's statistics once (--stats), or a stream of them
 * at an interval with OOM events between, in runc's JSON (one object per
 * line), from libcasulo-cgroup's stats and OOM watch. */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "oci/cgroups.h"
#include "oci/oci.h"
#include "oci/state.h"
#include "oci/util.h"

/* Go's encoding/json leaves out a field tagged omitempty when it is 0. */
static void add_u64(json_object *o, const char *key, uint64_t v, bool omitempty)
{
	if (v || !omitempty)
		json_object_object_add(o, key, json_object_new_uint64(v));
}

static json_object *u64_array(const uint64_t *v, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_uint64(v[i]));
	return a;
}

static json_object *u16_array(const uint16_t *v, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_int(v[i]));
	return a;
}

static json_object *cpu_json(const struct cgroup_stats *s)
{
	json_object *cpu = json_object_new_object(), *usage = json_object_new_object(), *thr = json_object_new_object();

	add_u64(usage, "total", s->cpu_total_ns, true);
	if (s->n_cpus) {
		json_object_object_add(usage, "percpu", u64_array(s->percpu_ns, s->n_cpus));
		if (s->percpu_kernel_ns)
			json_object_object_add(usage, "percpu_kernel", u64_array(s->percpu_kernel_ns, s->n_cpus));
		if (s->percpu_user_ns)
			json_object_object_add(usage, "percpu_user", u64_array(s->percpu_user_ns, s->n_cpus));
	}
	add_u64(usage, "kernel", s->cpu_kernel_ns, false);
	add_u64(usage, "user", s->cpu_user_ns, false);
	add_u64(thr, "periods", s->cpu_periods, true);
	add_u64(thr, "throttledPeriods", s->cpu_throttled_periods, true);
	add_u64(thr, "throttledTime", s->cpu_throttled_ns, true);
	json_object_object_add(cpu, "usage", usage);
	json_object_object_add(cpu, "throttling", thr);
	return cpu;
}

static json_object *cpuset_json(const struct cgroup_stats *s)
{
	static const char *const flags[] = {"cpu_exclusive",   "mem_hardwall",	     "mem_exclusive",
					    "memory_migrate",  "memory_spread_page", "memory_spread_slab",
					    "memory_pressure", "sched_load_balance"};
	json_object *o = json_object_new_object();

	if (s->n_cpuset_cpus)
		json_object_object_add(o, "cpus", u16_array(s->cpuset_cpus, s->n_cpuset_cpus));
	add_u64(o, flags[0], s->cpuset_flags[0], false);
	if (s->n_cpuset_mems)
		json_object_object_add(o, "mems", u16_array(s->cpuset_mems, s->n_cpuset_mems));
	for (size_t i = 1; i < ARRAY_SIZE(flags); i++)
		add_u64(o, flags[i], s->cpuset_flags[i], false);
	json_object_object_add(o, "sched_relax_domain_level", json_object_new_int64(s->cpuset_relax_domain_level));
	return o;
}

static json_object *mem_entry(const struct cgroup_mem_entry *m)
{
	json_object *o = json_object_new_object();

	add_u64(o, "limit", m->limit, false);
	add_u64(o, "usage", m->usage, true);
	add_u64(o, "max", m->max_usage, true);
	add_u64(o, "failcnt", m->failcnt, false);
	return o;
}

static int cmp_kv(const void *a, const void *b)
{
	return strcmp(((const struct cgroup_u64_kv *)a)->key, ((const struct cgroup_u64_kv *)b)->key);
}

static json_object *memory_json(struct cgroup_stats *s)
{
	json_object *o = json_object_new_object();

	add_u64(o, "cache", s->mem_cache, true);
	json_object_object_add(o, "usage", mem_entry(&s->mem));
	json_object_object_add(o, "swap", mem_entry(&s->swap));
	json_object_object_add(o, "kernel", mem_entry(&s->kernel));
	json_object_object_add(o, "kernelTCP", mem_entry(&s->kernel_tcp));
	if (s->n_mem_raw) {
		json_object *raw = json_object_new_object();
		/* Go writes a map's keys sorted. */
		qsort(s->mem_raw, s->n_mem_raw, sizeof(*s->mem_raw), cmp_kv);
		for (size_t i = 0; i < s->n_mem_raw; i++)
			json_object_object_add(raw, s->mem_raw[i].key, json_object_new_uint64(s->mem_raw[i].value));
		json_object_object_add(o, "raw", raw);
	}
	return o;
}

static json_object *blkio_json(const struct cgroup_stats *s)
{
	static const char *const names[CGROUP_BLKIO_KINDS] = {
	    [CGROUP_BLKIO_SERVICE_BYTES] = "ioServiceBytesRecursive",
	    [CGROUP_BLKIO_SERVICED] = "ioServicedRecursive",
	    [CGROUP_BLKIO_QUEUED] = "ioQueueRecursive",
	    [CGROUP_BLKIO_SERVICE_TIME] = "ioServiceTimeRecursive",
	    [CGROUP_BLKIO_WAIT_TIME] = "ioWaitTimeRecursive",
	    [CGROUP_BLKIO_MERGED] = "ioMergedRecursive",
	    [CGROUP_BLKIO_TIME] = "ioTimeRecursive",
	    [CGROUP_BLKIO_SECTORS] = "sectorsRecursive",
	};
	json_object *o = json_object_new_object();

	for (int k = 0; k < CGROUP_BLKIO_KINDS; k++) {
		json_object *a;
		if (s->n_blkio[k] == 0)
			continue;
		a = json_object_new_array();
		for (size_t i = 0; i < s->n_blkio[k]; i++) {
			const struct cgroup_blkio_entry *b = &s->blkio[k][i];
			json_object *x = json_object_new_object();
			add_u64(x, "major", b->major, true);
			add_u64(x, "minor", b->minor, true);
			if (b->op[0])
				json_object_object_add(x, "op", json_object_new_string(b->op));
			add_u64(x, "value", b->value, true);
			json_object_array_add(a, x);
		}
		json_object_object_add(o, names[k], a);
	}
	return o;
}

/* The "data" of a stats event: runc's types.Stats. */
static json_object *stats_json(struct cgroup_stats *s)
{
	json_object *d = json_object_new_object(), *pids = json_object_new_object(), *huge = json_object_new_object();

	json_object_object_add(d, "cpu", cpu_json(s));
	json_object_object_add(d, "cpuset", cpuset_json(s));
	json_object_object_add(d, "memory", memory_json(s));
	add_u64(pids, "current", s->pids_current, true);
	add_u64(pids, "limit", s->pids_limit, true);
	json_object_object_add(d, "pids", pids);
	json_object_object_add(d, "blkio", blkio_json(s));
	for (size_t i = 0; i < s->n_hugetlb; i++) {
		json_object *h = json_object_new_object();
		add_u64(h, "usage", s->hugetlb[i].usage, true);
		add_u64(h, "max", s->hugetlb[i].max_usage, true);
		add_u64(h, "failcnt", s->hugetlb[i].failcnt, false);
		json_object_object_add(huge, s->hugetlb[i].page_size, h);
	}
	json_object_object_add(d, "hugetlb", huge);
	json_object_object_add(d, "intel_rdt", json_object_new_object());
	json_object_object_add(d, "network_interfaces", NULL);
	return d;
}

static void emit(FILE *out, const char *type, const char *id, json_object *data)
{
	json_object *ev = json_object_new_object();

	json_object_object_add(ev, "type", json_object_new_string(type));
	json_object_object_add(ev, "id", json_object_new_string(id));
	if (data)
		json_object_object_add(ev, "data", data);
	fprintf(out, "%s\n",
		json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(out);
	json_object_put(ev);
}

/* One stats event; -ENOENT (quietly) once the cgroup is gone. */
static int emit_stats(FILE *out, const struct oci_state *st, struct err **e)
{
	struct cgroup_stats s;
	int r = cgroup_stats_read(st->cg, &s, e);

	if (r < 0)
		return r;
	emit(out, "stats", st->id, stats_json(&s));
	cgroup_stats_clear(&s);
	return 0;
}

int oci_events(const struct oci_global *g, const char *id, bool stats_only, uint64_t interval_ns, FILE *out,
	       struct err **e)
{
	struct cgroup_oom_watch *w = NULL;
	struct oci_state *st;
	long long interval_ms = (long long)MAX(interval_ns / 1000000, (uint64_t)1), next;
	int r = state_load(g->root, id, &st, e);

	if (r < 0)
		return r;
	if (state_status(st) == STATUS_STOPPED) {
		r = err_setx(e, ESRCH, "container with id %s is not running", id);
		goto out;
	}
	if (st->cg == NULL) {
		r = err_setx(e, ENOTSUP, "container '%s': no cgroup (--cgroup-manager disabled)", id);
		goto out;
	}
	if (stats_only) {
		r = emit_stats(out, st, e);
		goto out;
	}
	/* Without a memory controller there are no OOM events to wait for. */
	if (cgroup_oom_watch_open(st->cg, &w, e) < 0) {
		log_debug("%s", (*e)->msg);
		err_free(e);
	}
	next = monotonic_ms() + interval_ms;
	for (;;) {
		struct pollfd p = {w ? cgroup_oom_watch_fd(w) : -1, POLLIN, 0};
		long long left = next - monotonic_ms();
		uint64_t ooms = 0;

		if (left > 0 && poll(&p, 1, (int)MIN(left, 1000LL)) > 0) {
			if (cgroup_oom_watch_read(w, &ooms) == -ENOENT)
				break; /* the cgroup is gone: the stream ends, as runc's */
			for (uint64_t i = 0; i < ooms; i++)
				emit(out, "oom", id, NULL);
			continue;
		}
		if (monotonic_ms() < next)
			continue;
		next += interval_ms;
		if (emit_stats(out, st, e) < 0) {
			if (err_code(*e) == ENOENT)
				break;
			/* runc logs a failed read and goes on */
			log_error("%s", (*e)->msg);
			err_free(e);
		}
	}
	err_free(e);
	r = 0;
out:
	cgroup_oom_watch_close(w);
	state_free(st);
	return r;
}
