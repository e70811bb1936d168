/*
 * --memory: the option's parser, the combinations that cannot work, and
 * what the host must have for the rest (hugepages, the file, NUMA nodes),
 * all checked before a VM is built so that a bad choice is one line on
 * stderr, never a SIGBUS in a running guest.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <json-c/json.h>

#include "common/macro.h"
#include "common/parse.h"
#include "vmm/config.h"

static const char *hugepage_name(uint64_t size)
{
	return size == 0 ? "off" : size == 2 * MiB ? "2M" : "1G";
}

static int parse_hugepages(const char *s, uint64_t *size)
{
	if (strcmp(s, "off") == 0)
		*size = 0;
	else if (strcmp(s, "2M") == 0 || strcmp(s, "on") == 0)
		*size = 2 * MiB;
	else if (strcmp(s, "1G") == 0)
		*size = GiB;
	else
		return -EINVAL;
	return 0;
}

static int parse_policy(const char *s, enum memory_policy *p)
{
	for (int i = MEMORY_POLICY_BIND; i <= MEMORY_POLICY_INTERLEAVE; i++)
		if (strcmp(s, memory_policy_name((enum memory_policy)i)) == 0) {
			*p = (enum memory_policy)i;
			return 0;
		}
	return -EINVAL;
}

/* "1", "0-3", "0:2:5-7" (colons: commas separate --memory's keys). */
static int parse_node_list(const char *s, uint64_t *mask)
{
	*mask = 0;
	while (*s) {
		char *end;
		unsigned long lo = strtoul(s, &end, 10), hi = lo;
		if (end == s || lo >= MEMORY_MAX_NODES)
			return -EINVAL;
		if (*end == '-') {
			s = end + 1;
			hi = strtoul(s, &end, 10);
			if (end == s || hi >= MEMORY_MAX_NODES || hi < lo)
				return -EINVAL;
		}
		for (unsigned long n = lo; n <= hi; n++)
			*mask |= 1ULL << n;
		if (*end == ':')
			end++;
		else if (*end)
			return -EINVAL;
		s = end;
	}
	return *mask ? 0 : -EINVAL;
}

/* The combinations no host can serve; what names the option in messages. */
static int check_memory_combination(const struct vm_config *cfg, const char *what, struct err **e)
{
	const struct memory_config *m = &cfg->mem;

	if (m->mergeable && m->hugepage_size)
		return err_setx(e, EINVAL, "%s: mergeable=on with hugepages: KSM merges only 4 KiB anonymous pages",
				what);
	if (m->mergeable && (m->shared || m->backend == MEMORY_BACKEND_MEMFD))
		return err_setx(e, EINVAL, "%s: mergeable=on with shared memory: KSM merges only private pages", what);
	if (m->backend == MEMORY_BACKEND_FILE && m->hugepage_size)
		return err_setx(e, EINVAL,
				"%s: hugepages= with backend=file: the file's filesystem sets its page size "
				"(put the file on a hugetlbfs mount)",
				what);
	if (m->host_nodes && m->policy == MEMORY_POLICY_DEFAULT)
		return err_setx(e, EINVAL, "%s: host-nodes= needs policy=bind, preferred or interleave", what);
	if (!m->host_nodes && m->policy != MEMORY_POLICY_DEFAULT)
		return err_setx(e, EINVAL, "%s: policy=%s needs host-nodes=", what, memory_policy_name(m->policy));
	if (m->policy == MEMORY_POLICY_PREFERRED && (m->host_nodes & (m->host_nodes - 1)))
		return err_setx(e, EINVAL, "%s: policy=preferred takes one node", what);
	if (m->hugepage_size && !IS_ALIGNED(cfg->memory, m->hugepage_size))
		return err_setx(e, EINVAL, "%s: %llu MiB is not a multiple of the %s hugepage size", what,
				(unsigned long long)(cfg->memory >> 20), hugepage_name(m->hugepage_size));
	return 0;
}

static int set_memory_size(struct vm_config *cfg, const char *val, const char *what, struct err **e)
{
	uint64_t n;
	int r = parse_size(val, &n);

	if (r == -ERANGE)
		return err_setx(e, EINVAL, "%s: too large: at most %llu MiB on this host", what,
				(unsigned long long)(vm_config_max_memory() >> 20));
	if (r < 0)
		return err_setx(e, EINVAL, "%s: not a size: bytes, or a number with K, M, G or T (256M, 4G)", what);
	if ((r = vm_config_check_memory(n, what, e)) == 0)
		cfg->memory = n;
	return r;
}

static int set_memory_key(struct vm_config *cfg, const char *key, const char *val, const char *what, struct err **e)
{
	struct memory_config *m = &cfg->mem;
	bool *flag = strcmp(key, "shared") == 0	     ? &m->shared
		     : strcmp(key, "mergeable") == 0 ? &m->mergeable
		     : strcmp(key, "prefault") == 0  ? &m->prefault
						     : NULL;

	if (flag)
		return parse_bool(val, flag) < 0 ? err_setx(e, EINVAL, "%s: %s '%s' is not on or off", what, key, val)
						 : 0;
	if (strcmp(key, "size") == 0)
		return set_memory_size(cfg, val, what, e);
	if (strcmp(key, "backend") == 0) {
		if (strcmp(val, "anon") == 0)
			m->backend = MEMORY_BACKEND_ANON;
		else if (strcmp(val, "memfd") == 0)
			m->backend = MEMORY_BACKEND_MEMFD;
		else if (strncmp(val, "file:", 5) == 0 && val[5])
			m->backend = MEMORY_BACKEND_FILE, m->path = val + 5;
		else
			return err_setx(e, EINVAL, "%s: backend '%s': expected anon, memfd or file:PATH", what, val);
		return 0;
	}
	if (strcmp(key, "hugepages") == 0)
		return parse_hugepages(val, &m->hugepage_size) < 0
			   ? err_setx(e, EINVAL, "%s: hugepages '%s': expected off, 2M or 1G", what, val)
			   : 0;
	if (strcmp(key, "host-nodes") == 0)
		return parse_node_list(val, &m->host_nodes) < 0
			   ? err_setx(e, EINVAL,
				      "%s: host-nodes '%s': expected node numbers 0-%d such as 1, 0-3 or 0:2", what,
				      val, MEMORY_MAX_NODES - 1)
			   : 0;
	if (strcmp(key, "policy") == 0)
		return parse_policy(val, &m->policy) < 0
			   ? err_setx(e, EINVAL, "%s: policy '%s': expected bind, preferred or interleave", what, val)
			   : 0;
	return err_setx(e, EINVAL,
			"%s: unknown key '%s' (size, backend, hugepages, shared, mergeable, prefault, host-nodes, "
			"policy)",
			what, key);
}

int vm_config_set_memory(struct vm_config *cfg, const char *spec, struct err **e)
{
	char what[80], *buf, *cur, *key, *val;
	bool sized = false;

	snprintf(what, sizeof(what), "--memory '%.60s'", spec);
	if (strchr(spec, '=') == NULL) /* the plain "--memory 512M" */
		return set_memory_size(cfg, spec, what, e);
	if (vm_config_own_option_list(cfg, "--memory", spec, &buf, e) < 0)
		return -EINVAL;
	cfg->mem = (struct memory_config){0};
	cur = buf;
	while (parse_next_option(&cur, &key, &val)) {
		if (val == NULL)
			return err_setx(e, EINVAL, "%s: '%s' needs a value", what, key);
		if (set_memory_key(cfg, key, val, what, e) < 0)
			return -EINVAL;
		sized |= strcmp(key, "size") == 0;
	}
	if (!sized)
		return err_setx(e, EINVAL, "%s: size= is missing", what);
	if (cfg->mem.backend == MEMORY_BACKEND_MEMFD)
		cfg->mem.shared = true; /* a memfd is mapped shared: that is what it is for */
	return check_memory_combination(cfg, what, e);
}

/* --- the host --- */

static long read_sys_long(const char *sysfs, const char *path)
{
	char full[512];
	long v = -1;
	FILE *f;

	snprintf(full, sizeof(full), "%s/%s", sysfs, path);
	f = fopen(full, "re");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static bool sys_exists(const char *sysfs, const char *path)
{
	char full[512];
	struct stat st;

	snprintf(full, sizeof(full), "%s/%s", sysfs, path);
	return stat(full, &st) == 0;
}

/* Free pages of the pool, on the nodes of mask when it has any. */
static long free_hugepages(const char *sysfs, uint64_t page_kib, uint64_t nodes)
{
	char path[256];
	long total = 0;

	if (nodes == 0) {
		long free_pages, resv;
		snprintf(path, sizeof(path), "kernel/mm/hugepages/hugepages-%llukB/free_hugepages",
			 (unsigned long long)page_kib);
		free_pages = read_sys_long(sysfs, path);
		snprintf(path, sizeof(path), "kernel/mm/hugepages/hugepages-%llukB/resv_hugepages",
			 (unsigned long long)page_kib);
		resv = read_sys_long(sysfs, path);
		return free_pages < 0 ? -1 : free_pages - MAX(resv, 0L);
	}
	for (unsigned n = 0; n < MEMORY_MAX_NODES; n++) {
		long v;
		if (!(nodes & (1ULL << n)))
			continue;
		snprintf(path, sizeof(path), "devices/system/node/node%u/hugepages/hugepages-%llukB/free_hugepages", n,
			 (unsigned long long)page_kib);
		v = read_sys_long(sysfs, path);
		total += MAX(v, 0L);
	}
	return total;
}

static int check_hugepages(const struct vm_config *cfg, const char *sysfs, struct err **e)
{
	const struct memory_config *m = &cfg->mem;
	uint64_t kib = m->hugepage_size >> 10, need = cfg->memory / m->hugepage_size;
	char path[128];
	long avail;

	snprintf(path, sizeof(path), "kernel/mm/hugepages/hugepages-%llukB", (unsigned long long)kib);
	if (!sys_exists(sysfs, path))
		return err_setx(e, EINVAL, "--memory: hugepages=%s: this host has no %s pages (no %s/%s)",
				hugepage_name(m->hugepage_size), hugepage_name(m->hugepage_size), sysfs, path);
	/* Only bind keeps the guest to its nodes' pools. */
	avail = free_hugepages(sysfs, kib, m->policy == MEMORY_POLICY_BIND ? m->host_nodes : 0);
	if (avail < 0 || (uint64_t)avail < need)
		return err_setx(e, ENOMEM,
				"--memory: hugepages=%s: the guest needs %llu free %s pages, the host's pool%s has %ld "
				"(vm.nr_hugepages, or %s/nr_hugepages)",
				hugepage_name(m->hugepage_size), (unsigned long long)need,
				hugepage_name(m->hugepage_size),
				m->policy == MEMORY_POLICY_BIND ? " on the bound nodes" : "", MAX(avail, 0L), path);
	return 0;
}

static int check_nodes(const struct memory_config *m, const char *sysfs, struct err **e)
{
	char path[128];

	for (unsigned n = 0; n < MEMORY_MAX_NODES; n++) {
		if (!(m->host_nodes & (1ULL << n)))
			continue;
		snprintf(path, sizeof(path), "devices/system/node/node%u", n);
		if (!sys_exists(sysfs, path))
			return err_setx(e, ENOENT,
					"--memory: host-nodes: node %u does not exist on this host (no %s/%s)", n,
					sysfs, path);
	}
	return 0;
}

/* A file that exists must be a regular file (or a block device) of at
 * least the guest's size; a missing one is created at that size, and an
 * empty one sized so (memory.c; Landlock's set-up creates it empty). */
static int check_file(const struct vm_config *cfg, struct err **e)
{
	struct stat st;

	if (stat(cfg->mem.path, &st) < 0)
		return errno == ENOENT ? 0 : err_set(e, errno, "--memory: backend file '%s'", cfg->mem.path);
	if (!S_ISREG(st.st_mode))
		return err_setx(e, EINVAL, "--memory: backend file '%s' is not a regular file", cfg->mem.path);
	if (st.st_size != 0 && (uint64_t)st.st_size < cfg->memory)
		return err_setx(e, EINVAL,
				"--memory: backend file '%s' is %llu bytes, smaller than the guest's %llu MiB",
				cfg->mem.path, (unsigned long long)st.st_size, (unsigned long long)(cfg->memory >> 20));
	return 0;
}

int vm_config_check_memory_host(const struct vm_config *cfg, const char *sysfs, struct err **e)
{
	const struct memory_config *m = &cfg->mem;

	if (sysfs == NULL)
		sysfs = "/sys";
	if (m->host_nodes && check_nodes(m, sysfs, e) < 0)
		return -EINVAL;
	if (m->hugepage_size && check_hugepages(cfg, sysfs, e) < 0)
		return -EINVAL;
	if (m->mergeable && !sys_exists(sysfs, "kernel/mm/ksm/run"))
		return err_setx(e, EINVAL,
				"--memory: mergeable=on: this host's kernel has no KSM (no %s/kernel/mm/ksm)", sysfs);
	if (m->backend == MEMORY_BACKEND_FILE && check_file(cfg, e) < 0)
		return -EINVAL;
	return 0;
}

/* --- JSON, as the API shows it and snapshots keep it --- */

json_object *memory_config_to_json(const struct memory_config *m)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "backend", json_object_new_string(memory_backend_name(m->backend)));
	if (m->backend == MEMORY_BACKEND_FILE)
		json_object_object_add(o, "path", json_object_new_string(m->path));
	json_object_object_add(o, "hugepages", json_object_new_string(hugepage_name(m->hugepage_size)));
	json_object_object_add(o, "shared", json_object_new_boolean(m->shared));
	json_object_object_add(o, "mergeable", json_object_new_boolean(m->mergeable));
	json_object_object_add(o, "prefault", json_object_new_boolean(m->prefault));
	if (m->host_nodes) {
		json_object *nodes = json_object_new_array();
		for (unsigned n = 0; n < MEMORY_MAX_NODES; n++)
			if (m->host_nodes & (1ULL << n))
				json_object_array_add(nodes, json_object_new_int((int)n));
		json_object_object_add(o, "host_nodes", nodes);
		json_object_object_add(o, "policy", json_object_new_string(memory_policy_name(m->policy)));
	}
	return o;
}

/* The string at key, def when absent, "" when not a string (refused by the caller). */
static const char *json_string_or(json_object *o, const char *key, const char *def)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return def;
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

static bool json_true(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

int memory_config_from_json(struct vm_config *cfg, json_object *o, struct err **e)
{
	struct memory_config *m = &cfg->mem;
	json_object *v;
	const char *s;

	*m = (struct memory_config){0};
	if (o == NULL) /* snapshots before --memory had keys: anonymous memory */
		return 0;
	if (!json_object_is_type(o, json_type_object))
		return err_setx(e, EINVAL, "memory: not an object");
	s = json_string_or(o, "backend", "anon");
	if (strcmp(s, "file") == 0) {
		if (!json_object_object_get_ex(o, "path", &v) || !json_object_is_type(v, json_type_string) ||
		    !*json_object_get_string(v))
			return err_setx(e, EINVAL, "memory: backend 'file' without a path");
		m->backend = MEMORY_BACKEND_FILE;
		if ((m->path = vm_config_own(cfg, json_object_get_string(v))) == NULL)
			return err_setx(e, ENOMEM, "memory: path");
	} else if (strcmp(s, "memfd") == 0) {
		m->backend = MEMORY_BACKEND_MEMFD;
	} else if (strcmp(s, "anon") != 0) {
		return err_setx(e, EINVAL, "memory: backend '%.40s' is not anon, memfd or file", s);
	}
	if (parse_hugepages((s = json_string_or(o, "hugepages", "off")), &m->hugepage_size) < 0)
		return err_setx(e, EINVAL, "memory: hugepages '%.40s' is not off, 2M or 1G", s);
	m->shared = json_true(o, "shared");
	m->mergeable = json_true(o, "mergeable");
	m->prefault = json_true(o, "prefault");
	if (json_object_object_get_ex(o, "host_nodes", &v)) {
		if (!json_object_is_type(v, json_type_array))
			return err_setx(e, EINVAL, "memory: host_nodes is not an array");
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *node = json_object_array_get_idx(v, i);
			int64_t n = json_object_is_type(node, json_type_int) ? json_object_get_int64(node) : -1;
			if (n < 0 || n >= MEMORY_MAX_NODES)
				return err_setx(e, EINVAL, "memory: host_nodes: node %lld is out of range (0-%d)",
						(long long)n, MEMORY_MAX_NODES - 1);
			m->host_nodes |= 1ULL << n;
		}
		if (parse_policy(json_string_or(o, "policy", ""), &m->policy) < 0)
			return err_setx(e, EINVAL, "memory: policy is not bind, preferred or interleave");
	}
	return check_memory_combination(cfg, "memory", e);
}
