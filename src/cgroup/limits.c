/*
 * The limits a person gives on a command line (casulo-vmm --cgroup,
 * casulo-jailer), as key=value items, into the OCI vocabulary of
 * struct cgroup_resources that cgroup_set() writes on any layout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup/cgroup.h"
#include "common/cpulist.h"
#include "common/parse.h"

static const char *const throttle_keys[CGROUP_THROTTLE_KINDS] = {
    [CGROUP_THROTTLE_READ_BPS] = "io-read-bps",
    [CGROUP_THROTTLE_WRITE_BPS] = "io-write-bps",
    [CGROUP_THROTTLE_READ_IOPS] = "io-read-iops",
    [CGROUP_THROTTLE_WRITE_IOPS] = "io-write-iops",
};

/* "max" (no limit: -1) or a size ("512M"). */
static int size_or_max(const char *key, const char *value, int64_t *ret, struct err **e)
{
	uint64_t n;

	if (strcmp(value, "max") == 0) {
		*ret = -1;
		return 0;
	}
	if (parse_size(value, &n) < 0 || n > INT64_MAX)
		return err_setx(e, EINVAL, "%s '%s': not a size (512M, 2G) nor max", key, value);
	*ret = (int64_t)n;
	return 0;
}

static int number_in(const char *key, const char *value, uint64_t lo, uint64_t hi, uint64_t *ret, struct err **e)
{
	if (parse_u64(value, ret) < 0 || *ret < lo || *ret > hi)
		return err_setx(e, EINVAL, "%s '%s': expected a number from %llu to %llu", key, value,
				(unsigned long long)lo, (unsigned long long)hi);
	return 0;
}

/* "MAJOR:MINOR:RATE": the device's limit in bytes (a size) or operations per second. */
static int add_throttle(struct cgroup_resources *r, int kind, const char *key, const char *value, struct err **e)
{
	unsigned long long major, minor;
	char rate[32];
	uint64_t n;
	struct cgroup_throttle *t;
	int used = 0;

	if (sscanf(value, "%llu:%llu:%31s%n", &major, &minor, rate, &used) != 3 || value[used] != '\0' ||
	    (kind <= CGROUP_THROTTLE_WRITE_BPS ? parse_size(rate, &n) : parse_u64(rate, &n)) < 0 || major > INT64_MAX ||
	    minor > INT64_MAX)
		return err_setx(e, EINVAL, "%s '%s': expected MAJOR:MINOR:RATE (8:0:10M)", key, value);
	t = realloc(r->blkio_throttle[kind], (r->n_blkio_throttle[kind] + 1) * sizeof(*t));
	if (t == NULL)
		return err_set(e, ENOMEM, "%s", key);
	r->blkio_throttle[kind] = t;
	t[r->n_blkio_throttle[kind]++] = (struct cgroup_throttle){(int64_t)major, (int64_t)minor, n};
	return 0;
}

static int set_cpulist(char **slot, const char *key, const char *value, struct err **e)
{
	cpu_set_t set;

	if (cpulist_parse(value, &set) < 0)
		return err_setx(e, EINVAL, "%s '%s': not a list of numbers (0-3,8)", key, value);
	free(*slot);
	if ((*slot = strdup(value)) == NULL)
		return err_set(e, ENOMEM, "%s", key);
	return 0;
}

static int set_limit(struct cgroup_resources *r, const char *key, const char *value, struct err **e)
{
	uint64_t n;
	int64_t s = 0;

	if (strcmp(key, "cpu-quota") == 0) {
		if (strcmp(value, "max") == 0)
			r->cpu_quota = -1;
		else if (number_in(key, value, 1000, INT64_MAX, &n, e) < 0)
			return -EINVAL;
		else
			r->cpu_quota = (int64_t)n;
		r->has_cpu_quota = true;
	} else if (strcmp(key, "cpu-period") == 0) {
		if (number_in(key, value, 1000, 1000000, &r->cpu_period, e) < 0)
			return -EINVAL;
		r->has_cpu_period = true;
	} else if (strcmp(key, "cpu-weight") == 0) {
		if (number_in(key, value, 1, 10000, &r->cpu_weight, e) < 0)
			return -EINVAL;
		r->has_cpu_weight = true;
	} else if (strcmp(key, "cpus") == 0 || strcmp(key, "mems") == 0) {
		return set_cpulist(key[0] == 'c' ? &r->cpu_cpus : &r->cpu_mems, key, value, e);
	} else if (strcmp(key, "memory") == 0 || strcmp(key, "memory-swap") == 0) {
		if (size_or_max(key, value, &s, e) < 0)
			return -EINVAL;
		if (key[6] == '\0')
			r->mem_limit = s, r->has_mem_limit = true;
		else
			r->mem_swap = s, r->has_mem_swap = true;
	} else if (strcmp(key, "pids") == 0) {
		if (strcmp(value, "max") == 0)
			r->pids_limit = -1;
		else if (number_in(key, value, 1, INT64_MAX, &n, e) < 0)
			return -EINVAL;
		else
			r->pids_limit = (int64_t)n;
		r->has_pids_limit = true;
	} else if (strcmp(key, "io-weight") == 0) {
		if (number_in(key, value, 10, 1000, &n, e) < 0)
			return -EINVAL;
		r->blkio_weight = (uint16_t)n;
		r->has_blkio_weight = true;
	} else {
		for (int k = 0; k < CGROUP_THROTTLE_KINDS; k++)
			if (strcmp(key, throttle_keys[k]) == 0)
				return add_throttle(r, k, key, value, e);
		return err_setx(e, EINVAL, "'%s': not a cgroup limit (%s)", key, CGROUP_LIMIT_KEYS);
	}
	return 0;
}

struct limits_walk {
	struct cgroup_resources *r;
	const char *first_key;
	char **first;
	struct err **e;
	unsigned seen; /* single_keys[] given so far, one bit each */
};

/* The keys that take one value (the io-*-bps and io-*-iops keys repeat,
 * one per device): a second is refused, not silently the winner. */
static const char *const single_keys[] = {"cpu-quota", "cpu-period",  "cpu-weight", "cpus",	"mems",
					  "memory",    "memory-swap", "pids",	    "io-weight"};

static int check_once(struct limits_walk *w, const char *key)
{
	for (unsigned i = 0; i < sizeof(single_keys) / sizeof(single_keys[0]); i++) {
		if (strcmp(key, single_keys[i]) != 0)
			continue;
		if (w->seen & (1U << i))
			return err_setx(w->e, EINVAL, "'%s': given twice", key);
		w->seen |= 1U << i;
	}
	return 0;
}

static int limits_item(void *opaque, unsigned index, const char *key, const char *value)
{
	struct limits_walk *w = opaque;

	if (w->first_key && *w->first == NULL &&
	    ((index == 0 && value == NULL) || (value && strcmp(key, w->first_key) == 0))) {
		/* The leading bare item, or first_key=VALUE: the cgroup's path. */
		if ((*w->first = strdup(value ? value : key)) == NULL)
			return err_set(w->e, ENOMEM, "cgroup limits");
		return 0;
	}
	if (value == NULL)
		return err_setx(w->e, EINVAL, "'%s': expected KEY=VALUE (%s)", key, CGROUP_LIMIT_KEYS);
	if (check_once(w, key) < 0)
		return -EINVAL;
	return set_limit(w->r, key, value, w->e);
}

int cgroup_limits_parse(const char *spec, const char *first_key, char **first, struct cgroup_resources *r,
			struct err **e)
{
	static const char *const lists[] = {"cpus", "mems", NULL};
	char *unused = NULL;
	struct limits_walk w = {r, first_key, first ? first : &unused, e, 0};
	int rc;

	*w.first = NULL;
	rc = parse_options_with_lists(spec, lists, limits_item, &w);
	if (rc == -ENOMEM && (e == NULL || *e == NULL))
		err_set(e, ENOMEM, "cgroup limits");
	if (rc < 0) {
		free(*w.first);
		*w.first = NULL;
		cgroup_resources_clear(r);
	}
	return rc;
}
