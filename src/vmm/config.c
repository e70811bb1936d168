#include "vmm/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include <json-c/json.h>

void vm_config_defaults(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cmdline = VM_DEFAULT_CMDLINE;
	cfg->cpus = VM_DEFAULT_CPUS;
	cfg->memory = VM_DEFAULT_MEMORY;
	cfg->console = CONSOLE_STDIO;
	cfg->rng = true; /* costs no measurable boot time (docs/vmm.md) */
}

void vm_config_free(struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nowned; i++)
		free(cfg->owned[i]);
	cfg->nowned = 0;
}

const char *vm_config_own(struct vm_config *cfg, const char *s)
{
	char *copy;

	if (cfg->nowned == sizeof(cfg->owned) / sizeof(cfg->owned[0]))
		return NULL;
	copy = strdup(s);
	if (copy)
		cfg->owned[cfg->nowned++] = copy;
	return copy;
}

/* Keep a private, writable copy of an option string. */
static char *own(struct vm_config *cfg, const char *s)
{
	char *copy;

	if (cfg->nowned == sizeof(cfg->owned) / sizeof(cfg->owned[0]))
		return NULL;
	copy = strdup(s);
	if (copy)
		cfg->owned[cfg->nowned++] = copy;
	return copy;
}

int vm_config_add_disk(struct vm_config *cfg, const char *spec, struct err **e)
{
	struct disk_config d = { .cache = DISK_CACHE_WRITEBACK, .irq_coalescing = true };
	char *buf, *cur, *key, *val;

	if (cfg->ndisks == VM_MAX_DISKS)
		return err_setx(e, E2BIG, "--disk '%s': at most %d disks", spec, VM_MAX_DISKS);
	buf = own(cfg, spec);
	if (buf == NULL)
		return err_set(e, ENOMEM, "--disk '%s'", spec);
	cur = buf;
	if (strchr(buf, '=') == NULL) {
		d.path = buf; /* a bare path */
		cur = buf + strlen(buf);
	}
	while (parse_next_option(&cur, &key, &val)) {
		if (val == NULL) {
			return err_setx(e, EINVAL, "--disk '%s': '%s' needs a value", spec, key);
		} else if (strcmp(key, "path") == 0) {
			d.path = val;
		} else if (strcmp(key, "readonly") == 0) {
			if (parse_bool(val, &d.readonly) < 0)
				return err_setx(e, EINVAL, "--disk '%s': readonly '%s' is not on or off", spec, val);
		} else if (strcmp(key, "id") == 0) {
			if (*val == '\0' || strlen(val) > 20)
				return err_setx(e, EINVAL, "--disk '%s': id '%s' must be 1-20 characters", spec, val);
			d.id = val;
		} else if (strcmp(key, "cache") == 0) {
			if (strcmp(val, "none") == 0)
				d.cache = DISK_CACHE_NONE;
			else if (strcmp(val, "writeback") == 0)
				d.cache = DISK_CACHE_WRITEBACK;
			else
				return err_setx(e, EINVAL, "--disk '%s': cache '%s' is not none or writeback", spec, val);
		} else if (strcmp(key, "irq-coalescing") == 0) {
			if (parse_bool(val, &d.irq_coalescing) < 0)
				return err_setx(e, EINVAL, "--disk '%s': irq-coalescing '%s' is not on or off", spec, val);
		} else {
			return err_setx(e, EINVAL, "--disk '%s': unknown key '%s'", spec, key);
		}
	}
	if (d.path == NULL || *d.path == '\0')
		return err_setx(e, EINVAL, "--disk '%s': no path= given", spec);
	cfg->disks[cfg->ndisks++] = d;
	return 0;
}

int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6 ||
	    strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

int vm_config_add_net(struct vm_config *cfg, const char *spec, struct err **e)
{
	struct net_config n = { .fd = -1 };
	char *buf, *cur, *key, *val;
	uint32_t fd;

	if (cfg->nnets == VM_MAX_NETS)
		return err_setx(e, E2BIG, "--net '%s': at most %d network interfaces", spec, VM_MAX_NETS);
	buf = own(cfg, spec);
	if (buf == NULL)
		return err_set(e, ENOMEM, "--net '%s'", spec);
	cur = buf;
	while (parse_next_option(&cur, &key, &val)) {
		if (val == NULL || *val == '\0')
			return err_setx(e, EINVAL, "--net '%s': '%s' needs a value", spec, key);
		if (strcmp(key, "tap") == 0) {
			if (strlen(val) >= 16)
				return err_setx(e, EINVAL, "--net '%s': interface name '%s' is longer than 15 characters",
						spec, val);
			n.tap = val;
		} else if (strcmp(key, "fd") == 0) {
			if (parse_u32(val, &fd) < 0 || fd > INT32_MAX)
				return err_setx(e, EINVAL, "--net '%s': fd '%s' is not a file descriptor number", spec, val);
			n.fd = (int)fd;
		} else if (strcmp(key, "mac") == 0) {
			if (parse_mac(val, n.mac) < 0)
				return err_setx(e, EINVAL, "--net '%s': mac '%s' is not like 52:54:00:12:34:56", spec, val);
			if (n.mac[0] & 1)
				return err_setx(e, EINVAL, "--net '%s': mac '%s' is a multicast address", spec, val);
			n.has_mac = true;
		} else {
			return err_setx(e, EINVAL, "--net '%s': unknown key '%s'", spec, key);
		}
	}
	if ((n.tap == NULL) == (n.fd < 0))
		return err_setx(e, EINVAL, "--net '%s': give exactly one of tap=NAME or fd=N", spec);
	cfg->nets[cfg->nnets++] = n;
	return 0;
}

/* --- virtio-rng, virtio-console, virtio-vsock, virtio-balloon --- */

/* Unix socket paths must fit sockaddr_un's 108 bytes with their NUL;
 * vsock's PATH also takes "_<port>" (up to 11 more bytes). */
#define CONFIG_SUN_PATH_MAX 107
#define CONFIG_VSOCK_PATH_MAX (CONFIG_SUN_PATH_MAX - 11)

int vm_config_set_rng(struct vm_config *cfg, const char *spec, struct err **e)
{
	if (parse_bool(spec, &cfg->rng) < 0)
		return err_setx(e, EINVAL, "--rng '%s': expected on or off", spec);
	return 0;
}

int vm_config_set_console2(struct vm_config *cfg, const char *spec, struct err **e)
{
	struct console2_config c = { .kind = CONSOLE2_NONE };

	if (strcmp(spec, "none") == 0) {
		c.kind = CONSOLE2_NONE;
	} else if (strcmp(spec, "pty") == 0) {
		c.kind = CONSOLE2_PTY;
	} else if (strncmp(spec, "file:", 5) == 0 && spec[5]) {
		c.kind = CONSOLE2_FILE;
		c.path = spec + 5;
	} else if (strncmp(spec, "socket:", 7) == 0 && spec[7]) {
		c.kind = CONSOLE2_SOCKET;
		c.path = spec + 7;
		if (strlen(c.path) > CONFIG_SUN_PATH_MAX)
			return err_setx(e, EINVAL, "--console2 '%s': socket path longer than %d bytes", spec,
					CONFIG_SUN_PATH_MAX);
	} else {
		return err_setx(e, EINVAL, "--console2 '%s': expected file:PATH, socket:PATH, pty or none", spec);
	}
	cfg->console2 = c;
	return 0;
}

int vm_config_set_vsock(struct vm_config *cfg, const char *spec, struct err **e)
{
	struct vsock_config v = { .enabled = true };
	char *buf = own(cfg, spec), *cur, *key, *val;
	bool has_cid = false;
	uint32_t cid;

	if (buf == NULL)
		return err_set(e, ENOMEM, "--vsock '%s'", spec);
	cur = buf;
	while (parse_next_option(&cur, &key, &val)) {
		if (val == NULL || *val == '\0')
			return err_setx(e, EINVAL, "--vsock '%s': '%s' needs a value", spec, key);
		if (strcmp(key, "cid") == 0) {
			/* 0-2 are the hypervisor, local and host; -1U is "any". */
			if (parse_u32(val, &cid) < 0 || cid < 3 || cid == UINT32_MAX)
				return err_setx(e, EINVAL, "--vsock '%s': cid '%s' is not a number from 3 to %u", spec,
						val, UINT32_MAX - 1);
			v.cid = cid;
			has_cid = true;
		} else if (strcmp(key, "socket") == 0) {
			if (strlen(val) > CONFIG_VSOCK_PATH_MAX)
				return err_setx(e, EINVAL, "--vsock '%s': socket path longer than %d bytes", spec,
						CONFIG_VSOCK_PATH_MAX);
			v.socket = val;
		} else {
			return err_setx(e, EINVAL, "--vsock '%s': unknown key '%s'", spec, key);
		}
	}
	if (!has_cid || v.socket == NULL)
		return err_setx(e, EINVAL, "--vsock '%s': give both cid=N and socket=PATH", spec);
	cfg->vsock = v;
	return 0;
}

int vm_config_set_balloon(struct vm_config *cfg, const char *spec, struct err **e)
{
	struct balloon_config b = { .enabled = true };
	char *buf, *cur, *key, *val;
	bool on;
	uint32_t secs;

	if (parse_bool(spec, &on) == 0) {
		cfg->balloon = (struct balloon_config){ .enabled = on };
		return 0;
	}
	buf = own(cfg, spec);
	if (buf == NULL)
		return err_set(e, ENOMEM, "--balloon '%s'", spec);
	cur = buf;
	while (parse_next_option(&cur, &key, &val)) {
		if (val == NULL || *val == '\0')
			return err_setx(e, EINVAL, "--balloon '%s': '%s' needs a value", spec, key);
		if (strcmp(key, "target") == 0) {
			if (parse_size(val, &b.target) < 0)
				return err_setx(e, EINVAL, "--balloon '%s': target '%s' is not a size (e.g. 128M)", spec,
						val);
		} else if (strcmp(key, "deflate-on-oom") == 0) {
			if (parse_bool(val, &b.deflate_on_oom) < 0)
				return err_setx(e, EINVAL, "--balloon '%s': deflate-on-oom '%s' is not on or off", spec,
						val);
		} else if (strcmp(key, "free-page-reporting") == 0) {
			if (parse_bool(val, &b.free_page_reporting) < 0)
				return err_setx(e, EINVAL, "--balloon '%s': free-page-reporting '%s' is not on or off",
						spec, val);
		} else if (strcmp(key, "stats") == 0) {
			if (parse_u32(val, &secs) < 0 || secs > 86400)
				return err_setx(e, EINVAL, "--balloon '%s': stats '%s' is not a number of seconds (0-86400)",
						spec, val);
			b.stats_interval = secs;
		} else {
			return err_setx(e, EINVAL, "--balloon '%s': unknown key '%s'", spec, key);
		}
	}
	cfg->balloon = b;
	return 0;
}

/* virtio-rng, -console, -vsock and -balloon in the configuration's JSON.
 * A configuration without "rng" is from before virtio-rng: none. */
static const char *const console2_kinds[] = { "none", "file", "socket", "pty" };

static void config_devices_to_json(const struct vm_config *c, json_object *o)
{
	json_object_object_add(o, "rng", json_object_new_boolean(c->rng));
	if (c->console2.kind != CONSOLE2_NONE) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "kind", json_object_new_string(console2_kinds[c->console2.kind]));
		if (c->console2.path)
			json_object_object_add(d, "path", json_object_new_string(c->console2.path));
		json_object_object_add(o, "console2", d);
	}
	if (c->vsock.enabled) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "cid", json_object_new_int64(c->vsock.cid));
		json_object_object_add(d, "socket", json_object_new_string(c->vsock.socket));
		json_object_object_add(o, "vsock", d);
	}
	if (c->balloon.enabled) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "target", json_object_new_int64((int64_t)c->balloon.target));
		json_object_object_add(d, "deflate_on_oom", json_object_new_boolean(c->balloon.deflate_on_oom));
		json_object_object_add(d, "free_page_reporting", json_object_new_boolean(c->balloon.free_page_reporting));
		json_object_object_add(d, "stats_seconds", json_object_new_int((int)c->balloon.stats_interval));
		json_object_object_add(o, "balloon", d);
	}
}

static const char *json_str(json_object *o, const char *key);

static int config_devices_from_json(struct vm_config *cfg, json_object *o, struct err **e)
{
	json_object *d, *v;
	const char *s;

	cfg->rng = json_object_object_get_ex(o, "rng", &v) && json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "console2", &d)) {
		s = json_str(d, "kind");
		for (unsigned k = 1; s && k < ARRAY_SIZE(console2_kinds); k++)
			if (strcmp(s, console2_kinds[k]) == 0)
				cfg->console2.kind = (enum console2_kind)k;
		if (cfg->console2.kind == CONSOLE2_NONE)
			return err_setx(e, EINVAL, "configuration: console2 has no known kind");
		if ((s = json_str(d, "path")) != NULL)
			cfg->console2.path = vm_config_own(cfg, s);
		if (cfg->console2.kind != CONSOLE2_PTY && cfg->console2.path == NULL)
			return err_setx(e, EINVAL, "configuration: console2 has no path (or too many strings)");
	}
	if (json_object_object_get_ex(o, "vsock", &d)) {
		int64_t cid = json_object_object_get_ex(d, "cid", &v) ? json_object_get_int64(v) : 0;
		if (cid < 3 || cid >= UINT32_MAX || (s = json_str(d, "socket")) == NULL)
			return err_setx(e, EINVAL, "configuration: vsock needs a cid from 3 and a socket");
		cfg->vsock = (struct vsock_config){ .enabled = true, .cid = (uint32_t)cid, .socket = vm_config_own(cfg, s) };
		if (cfg->vsock.socket == NULL)
			return err_setx(e, EINVAL, "configuration: too many strings");
	}
	if (json_object_object_get_ex(o, "balloon", &d)) {
		cfg->balloon.enabled = true;
		if (json_object_object_get_ex(d, "target", &v) && json_object_get_int64(v) > 0)
			cfg->balloon.target = (uint64_t)json_object_get_int64(v);
		cfg->balloon.deflate_on_oom = json_object_object_get_ex(d, "deflate_on_oom", &v) && json_object_get_boolean(v);
		cfg->balloon.free_page_reporting =
			json_object_object_get_ex(d, "free_page_reporting", &v) && json_object_get_boolean(v);
		if (json_object_object_get_ex(d, "stats_seconds", &v) && json_object_get_int(v) > 0)
			cfg->balloon.stats_interval = (unsigned)MIN(json_object_get_int(v), 86400);
	}
	return 0;
}

json_object *vm_config_to_json(const struct vm_config *c)
{
	json_object *o = json_object_new_object(), *disks = json_object_new_array(), *nets = json_object_new_array();

	json_object_object_add(o, "vcpus", json_object_new_int((int)c->cpus));
	json_object_object_add(o, "memory_mib", json_object_new_int64((int64_t)(c->memory >> 20)));
	json_object_object_add(o, "kernel", json_object_new_string(c->kernel_path ? c->kernel_path : ""));
	if (c->initrd_path)
		json_object_object_add(o, "initrd", json_object_new_string(c->initrd_path));
	json_object_object_add(o, "cmdline", json_object_new_string(c->cmdline ? c->cmdline : ""));
	for (unsigned i = 0; i < c->ndisks; i++) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "path", json_object_new_string(c->disks[i].path));
		json_object_object_add(d, "readonly", json_object_new_boolean(c->disks[i].readonly));
		if (c->disks[i].id)
			json_object_object_add(d, "id", json_object_new_string(c->disks[i].id));
		json_object_object_add(d, "cache",
				       json_object_new_string(c->disks[i].cache == DISK_CACHE_NONE ? "none" : "writeback"));
		json_object_object_add(d, "irq_coalescing", json_object_new_boolean(c->disks[i].irq_coalescing));
		json_object_array_add(disks, d);
	}
	json_object_object_add(o, "disks", disks);
	for (unsigned i = 0; i < c->nnets; i++) {
		json_object *n = json_object_new_object();
		char mac[18];
		if (c->nets[i].tap)
			json_object_object_add(n, "tap", json_object_new_string(c->nets[i].tap));
		else
			json_object_object_add(n, "fd", json_object_new_int(c->nets[i].fd));
		if (c->nets[i].has_mac) {
			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", c->nets[i].mac[0], c->nets[i].mac[1],
				 c->nets[i].mac[2], c->nets[i].mac[3], c->nets[i].mac[4], c->nets[i].mac[5]);
			json_object_object_add(n, "mac", json_object_new_string(mac));
		}
		json_object_array_add(nets, n);
	}
	json_object_object_add(o, "nets", nets);
	config_devices_to_json(c, o);
	return o;
}

static const char *json_str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v) : NULL;
}

int vm_config_from_json(struct vm_config *cfg, json_object *o, struct err **e)
{
	json_object *v, *arr;
	const char *s;

	vm_config_defaults(cfg);
	if (!json_object_object_get_ex(o, "vcpus", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int(v) < 1)
		return err_setx(e, EINVAL, "configuration: 'vcpus' is missing or wrong");
	cfg->cpus = (unsigned)json_object_get_int(v);
	if (!json_object_object_get_ex(o, "memory_mib", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 1)
		return err_setx(e, EINVAL, "configuration: 'memory_mib' is missing or wrong");
	cfg->memory = (uint64_t)json_object_get_int64(v) << 20;
	if ((s = json_str(o, "kernel")) != NULL)
		cfg->kernel_path = vm_config_own(cfg, s);
	if ((s = json_str(o, "initrd")) != NULL)
		cfg->initrd_path = vm_config_own(cfg, s);
	if ((s = json_str(o, "cmdline")) != NULL)
		cfg->cmdline = vm_config_own(cfg, s);
	if (json_object_object_get_ex(o, "disks", &arr) && json_object_is_type(arr, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(arr) && cfg->ndisks < VM_MAX_DISKS; i++) {
			json_object *d = json_object_array_get_idx(arr, i);
			struct disk_config *dc = &cfg->disks[cfg->ndisks];
			if ((s = json_str(d, "path")) == NULL)
				return err_setx(e, EINVAL, "configuration: disk %zu has no path", i);
			memset(dc, 0, sizeof(*dc));
			dc->path = vm_config_own(cfg, s);
			dc->readonly = json_object_object_get_ex(d, "readonly", &v) && json_object_get_boolean(v);
			if ((s = json_str(d, "id")) != NULL)
				dc->id = vm_config_own(cfg, s);
			dc->cache = (s = json_str(d, "cache")) && strcmp(s, "none") == 0 ? DISK_CACHE_NONE
											: DISK_CACHE_WRITEBACK;
			dc->irq_coalescing = !json_object_object_get_ex(d, "irq_coalescing", &v) ||
					     json_object_get_boolean(v);
			cfg->ndisks++;
		}
	}
	if (json_object_object_get_ex(o, "nets", &arr) && json_object_is_type(arr, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(arr) && cfg->nnets < VM_MAX_NETS; i++) {
			json_object *n = json_object_array_get_idx(arr, i);
			struct net_config *nc = &cfg->nets[cfg->nnets];
			memset(nc, 0, sizeof(*nc));
			nc->fd = -1;
			if ((s = json_str(n, "tap")) != NULL)
				nc->tap = vm_config_own(cfg, s);
			if ((s = json_str(n, "mac")) != NULL && parse_mac(s, nc->mac) == 0)
				nc->has_mac = true;
			cfg->nnets++;
		}
	}
	return config_devices_from_json(cfg, o, e);
}
