#include "vmm/config.h"

#include <cpuid.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/parse.h"
#include "common/ratelimit-json.h"
#include "vmm/arch/x86/acpi.h"
#include "vmm/arch/x86/layout.h"
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

char *vm_config_own(struct vm_config *cfg, const char *s)
{
	char *copy;

	if (cfg->nowned == ARRAY_SIZE(cfg->owned))
		return NULL;
	copy = strdup(s);
	if (copy)
		cfg->owned[cfg->nowned++] = copy;
	return copy;
}

_Static_assert(VM_MAX_CPUS == ACPI_MAX_CPUS, "one vCPU limit");

int vm_config_check_cpus(uint64_t cpus, const char *what, struct err **e)
{
	if (cpus < 1 || cpus > VM_MAX_CPUS)
		return err_setx(e, EINVAL, "%s: %llu vCPUs is out of range: 1-%d vCPUs", what, (unsigned long long)cpus,
				VM_MAX_CPUS);
	return 0;
}

/* The host CPU's physical address width (CPUID 0x80000008), 36 when it
 * does not say. */
static unsigned host_phys_bits(void)
{
	unsigned eax, ebx, ecx, edx;

	if (__get_cpuid(0x80000000, &eax, &ebx, &ecx, &edx) && eax >= 0x80000008 &&
	    __get_cpuid(0x80000008, &eax, &ebx, &ecx, &edx) && (eax & 0xff) >= 32)
		return eax & 0xff;
	return 36;
}

/* The guest address width this host maps: the CPU's physical one, and no
 * more than 46 bits, for the VMM's mapping must fit user space (47). */
static unsigned guest_address_bits(void)
{
	return MIN(host_phys_bits(), 46u);
}

uint64_t vm_config_max_memory(void)
{
	return (1ULL << guest_address_bits()) - (LAYOUT_MMIO_HOLE_END - LAYOUT_MMIO_HOLE_START);
}

int vm_config_check_memory(uint64_t bytes, const char *what, struct err **e)
{
	uint64_t max = vm_config_max_memory();

	if (bytes < LAYOUT_MIN_MEMORY)
		return err_setx(e, EINVAL, "%s: %llu %s is too small: guest RAM is at least %llu MiB%s", what,
				(unsigned long long)(bytes >= MiB ? bytes >> 20 : bytes),
				bytes >= MiB ? "MiB" : "bytes", LAYOUT_MIN_MEMORY >> 20,
				bytes < MiB ? " (a size without K, M, G or T is in bytes: 256M is 256 MiB)" : "");
	if (!IS_ALIGNED(bytes, 2 * MiB))
		return err_setx(e, EINVAL, "%s: %llu bytes is not a multiple of 2 MiB", what,
				(unsigned long long)bytes);
	if (bytes > max)
		return err_setx(e, EINVAL,
				"%s: %llu MiB is more than this host can map: at most %llu MiB (guest "
				"addresses below 2^%u, the 1 GiB hole below 4 GiB included)",
				what, (unsigned long long)(bytes >> 20), (unsigned long long)(max >> 20),
				guest_address_bits());
	return 0;
}

/* A private, writable copy of an option's key=value list, which must not
 * give a key twice ("path=a.img,path=b.img": which one?). */
int vm_config_own_option_list(struct vm_config *cfg, const char *opt, const char *spec, char **buf, struct err **e)
{
	char key[64];
	int r = parse_option_duplicate(spec, key, sizeof(key));

	if (r > 0)
		return err_setx(e, EINVAL, "%s '%s': '%s' is given twice", opt, spec, key);
	*buf = r == 0 ? vm_config_own(cfg, spec) : NULL;
	if (*buf == NULL)
		return err_set(e, ENOMEM, "%s '%s'", opt, spec);
	return 0;
}

static int parse_rate(const char *opt, const char *spec, const char *key, const char *val,
		      struct ratelimit_config *rate, struct err **e)
{
	char why[160];

	if (ratelimit_config_parse(val, rate, why, sizeof(why)) < 0)
		return err_setx(e, EINVAL, "%s '%s': %s '%s': %s", opt, spec, key, val, why);
	return 0;
}

int vm_config_add_disk(struct vm_config *cfg, const char *spec, struct err **e)
{
	struct disk_config d = {.cache = DISK_CACHE_WRITEBACK, .irq_coalescing = true, .lock = true};
	char *buf, *cur, *key, *val;

	if (cfg->ndisks == VM_MAX_DISKS)
		return err_setx(e, E2BIG, "--disk '%s': at most %d disks", spec, VM_MAX_DISKS);
	if (vm_config_own_option_list(cfg, "--disk", spec, &buf, e) < 0)
		return -EINVAL;
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
				return err_setx(e, EINVAL, "--disk '%s': cache '%s' is not none or writeback", spec,
						val);
		} else if (strcmp(key, "irq-coalescing") == 0) {
			if (parse_bool(val, &d.irq_coalescing) < 0)
				return err_setx(e, EINVAL, "--disk '%s': irq-coalescing '%s' is not on or off", spec,
						val);
		} else if (strcmp(key, "lock") == 0) {
			if (parse_bool(val, &d.lock) < 0)
				return err_setx(e, EINVAL, "--disk '%s': lock '%s' is not on or off", spec, val);
		} else if (strcmp(key, "rate") == 0) {
			if (parse_rate("--disk", spec, key, val, &d.rate, e) < 0)
				return -EINVAL;
		} else {
			return err_setx(e, EINVAL, "--disk '%s': unknown key '%s'", spec, key);
		}
	}
	if (d.path == NULL || *d.path == '\0')
		return err_setx(e, EINVAL, "--disk '%s': no path= given", spec);
	cfg->disks[cfg->ndisks++] = d;
	return 0;
}

int vm_config_add_module(struct vm_config *cfg, const char *spec, struct err **e)
{
	struct module_config m = {0};
	char *buf, *at;

	if (cfg->nmodules == VM_MAX_MODULES)
		return err_setx(e, E2BIG, "--module '%s': at most %d modules (the initrd is one more)", spec,
				VM_MAX_MODULES);
	buf = vm_config_own(cfg, spec);
	if (buf == NULL)
		return err_set(e, ENOMEM, "--module '%s'", spec);
	at = strstr(buf, ",cmdline=");
	if (at) {
		*at = '\0';
		m.cmdline = at + strlen(",cmdline=");
	}
	if (*buf == '\0')
		return err_setx(e, EINVAL, "--module '%s': no path given", spec);
	m.path = buf;
	cfg->modules[cfg->nmodules++] = m;
	return 0;
}

int vm_config_module_string(const struct module_config *m, char *out, size_t len)
{
	int n = m->cmdline ? snprintf(out, len, "%s %s", m->path, m->cmdline) : snprintf(out, len, "%s", m->path);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
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
	struct net_config n = {.fd = -1};
	char *buf, *cur, *key, *val;
	uint32_t fd;

	if (cfg->nnets == VM_MAX_NETS)
		return err_setx(e, E2BIG, "--net '%s': at most %d network interfaces", spec, VM_MAX_NETS);
	if (vm_config_own_option_list(cfg, "--net", spec, &buf, e) < 0)
		return -EINVAL;
	cur = buf;
	while (parse_next_option(&cur, &key, &val)) {
		if (val == NULL || *val == '\0')
			return err_setx(e, EINVAL, "--net '%s': '%s' needs a value", spec, key);
		if (strcmp(key, "tap") == 0) {
			if (strlen(val) >= 16)
				return err_setx(e, EINVAL,
						"--net '%s': interface name '%s' is longer than 15 characters", spec,
						val);
			n.tap = val;
		} else if (strcmp(key, "fd") == 0) {
			if (parse_u32(val, &fd) < 0 || fd > INT32_MAX)
				return err_setx(e, EINVAL, "--net '%s': fd '%s' is not a file descriptor number", spec,
						val);
			n.fd = (int)fd;
		} else if (strcmp(key, "mac") == 0) {
			if (parse_mac(val, n.mac) < 0)
				return err_setx(e, EINVAL, "--net '%s': mac '%s' is not like 52:54:00:12:34:56", spec,
						val);
			if (n.mac[0] & 1)
				return err_setx(e, EINVAL, "--net '%s': mac '%s' is a multicast address", spec, val);
			n.has_mac = true;
		} else if (strcmp(key, "rx-rate") == 0 || strcmp(key, "tx-rate") == 0) {
			if (parse_rate("--net", spec, key, val, key[0] == 'r' ? &n.rx_rate : &n.tx_rate, e) < 0)
				return -EINVAL;
		} else {
			return err_setx(e, EINVAL, "--net '%s': unknown key '%s'", spec, key);
		}
	}
	if ((n.tap == NULL) == (n.fd < 0))
		return err_setx(e, EINVAL, "--net '%s': give exactly one of tap=NAME or fd=N", spec);
	cfg->nets[cfg->nnets++] = n;
	return 0;
}

/* A tag is what the guest mounts (mount -t virtiofs TAG DIR): plain
 * characters, so that it survives command lines and fstab. */
static bool fs_tag_ok(const char *tag)
{
	size_t len = strlen(tag);

	if (len == 0 || len > FS_TAG_MAX)
		return false;
	for (const char *c = tag; *c; c++)
		if (!(isalnum((unsigned char)*c) || *c == '_' || *c == '-' || *c == '.'))
			return false;
	return true;
}

int vm_config_add_fs(struct vm_config *cfg, const char *spec, struct err **e)
{
	struct fs_config f = {0};
	char *buf, *cur, *key, *val;

	if (cfg->nfs == VM_MAX_FS)
		return err_setx(e, E2BIG, "--fs '%s': at most %d shared directories", spec, VM_MAX_FS);
	if (vm_config_own_option_list(cfg, "--fs", spec, &buf, e) < 0)
		return -EINVAL;
	cur = buf;
	while (parse_next_option(&cur, &key, &val)) {
		if (val == NULL || *val == '\0')
			return err_setx(e, EINVAL, "--fs '%s': '%s' needs a value", spec, key);
		if (strcmp(key, "tag") == 0) {
			if (!fs_tag_ok(val))
				return err_setx(e, EINVAL,
						"--fs '%s': tag '%s' must be 1-%d letters, digits, '.', '_' or '-'",
						spec, val, FS_TAG_MAX);
			f.tag = val;
		} else if (strcmp(key, "path") == 0) {
			f.path = val;
		} else if (strcmp(key, "readonly") == 0) {
			if (parse_bool(val, &f.readonly) < 0)
				return err_setx(e, EINVAL, "--fs '%s': readonly '%s' is not on or off", spec, val);
		} else {
			return err_setx(e, EINVAL, "--fs '%s': unknown key '%s'", spec, key);
		}
	}
	if (f.tag == NULL || f.path == NULL)
		return err_setx(e, EINVAL, "--fs '%s': give both tag=TAG and path=DIR", spec);
	for (unsigned i = 0; i < cfg->nfs; i++)
		if (strcmp(cfg->fs[i].tag, f.tag) == 0)
			return err_setx(e, EINVAL, "--fs '%s': tag '%s' is given twice", spec, f.tag);
	cfg->fs[cfg->nfs++] = f;
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
	struct console2_config c = {.kind = CONSOLE2_NONE};

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
	struct vsock_config v = {.enabled = true};
	char *buf, *cur, *key, *val;
	bool has_cid = false;
	uint32_t cid;

	if (vm_config_own_option_list(cfg, "--vsock", spec, &buf, e) < 0)
		return -EINVAL;
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
	struct balloon_config b = {.enabled = true};
	char *buf, *cur, *key, *val;
	bool on;
	uint32_t secs;

	if (parse_bool(spec, &on) == 0) {
		cfg->balloon = (struct balloon_config){.enabled = on};
		return 0;
	}
	if (vm_config_own_option_list(cfg, "--balloon", spec, &buf, e) < 0)
		return -EINVAL;
	cur = buf;
	while (parse_next_option(&cur, &key, &val)) {
		if (val == NULL || *val == '\0')
			return err_setx(e, EINVAL, "--balloon '%s': '%s' needs a value", spec, key);
		if (strcmp(key, "target") == 0) {
			if (parse_size(val, &b.target) < 0)
				return err_setx(e, EINVAL, "--balloon '%s': target '%s' is not a size (e.g. 128M)",
						spec, val);
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
				return err_setx(e, EINVAL,
						"--balloon '%s': stats '%s' is not a number of seconds (0-86400)", spec,
						val);
			b.stats_interval = secs;
		} else {
			return err_setx(e, EINVAL, "--balloon '%s': unknown key '%s'", spec, key);
		}
	}
	cfg->balloon = b;
	return 0;
}

int vm_config_set_debug_exit(struct vm_config *cfg, const char *spec, struct err **e)
{
	struct debug_exit_config d = {
	    .enabled = true, .port = DEBUG_EXIT_DEFAULT_PORT, .size = DEBUG_EXIT_DEFAULT_SIZE};
	char *buf, *cur, *key, *val;
	uint32_t n;
	bool on;

	if (spec == NULL || *spec == '\0' || parse_bool(spec, &on) == 0) {
		d.enabled = spec == NULL || *spec == '\0' || on;
		cfg->debug_exit = d;
		return 0;
	}
	if (vm_config_own_option_list(cfg, "--debug-exit", spec, &buf, e) < 0)
		return -EINVAL;
	cur = buf;
	while (parse_next_option(&cur, &key, &val)) {
		if (val == NULL || *val == '\0')
			return err_setx(e, EINVAL, "--debug-exit '%s': '%s' needs a value", spec, key);
		if (strcmp(key, "port") == 0) {
			if (parse_u32(val, &n) < 0 || n > 0xffff)
				return err_setx(e, EINVAL,
						"--debug-exit '%s': port '%s' is not a port number (0-0xffff)", spec,
						val);
			d.port = (uint16_t)n;
		} else if (strcmp(key, "size") == 0) {
			if (parse_u32(val, &n) < 0 || (n != 1 && n != 2 && n != 4))
				return err_setx(e, EINVAL, "--debug-exit '%s': size '%s' is not 1, 2 or 4", spec, val);
			d.size = (uint8_t)n;
		} else {
			return err_setx(e, EINVAL, "--debug-exit '%s': unknown key '%s'", spec, key);
		}
	}
	if ((uint32_t)d.port + d.size > 0x10000)
		return err_setx(e, EINVAL, "--debug-exit '%s': ports 0x%x-0x%x run past 0xffff", spec, d.port,
				(unsigned)d.port + d.size - 1);
	cfg->debug_exit = d;
	return 0;
}

/* virtio-rng, -console, -vsock and -balloon in the configuration's JSON.
 * A configuration without "rng" is from before virtio-rng: none. */
static const char *const console2_kinds[] = {"none", "file", "socket", "pty"};

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
		json_object_object_add(d, "free_page_reporting",
				       json_object_new_boolean(c->balloon.free_page_reporting));
		json_object_object_add(d, "stats_seconds", json_object_new_int((int)c->balloon.stats_interval));
		json_object_object_add(o, "balloon", d);
	}
	if (c->nfs) {
		json_object *arr = json_object_new_array();
		for (unsigned i = 0; i < c->nfs; i++) {
			json_object *d = json_object_new_object();
			json_object_object_add(d, "tag", json_object_new_string(c->fs[i].tag));
			json_object_object_add(d, "path", json_object_new_string(c->fs[i].path));
			json_object_object_add(d, "readonly", json_object_new_boolean(c->fs[i].readonly));
			json_object_array_add(arr, d);
		}
		json_object_object_add(o, "fs", arr);
	}
	if (c->debug_exit.enabled) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "port", json_object_new_int(c->debug_exit.port));
		json_object_object_add(d, "size", json_object_new_int(c->debug_exit.size));
		json_object_object_add(o, "debug_exit", d);
	}
}

static const char *json_str(json_object *o, const char *key);

static int config_devices_from_json(struct vm_config *cfg, json_object *o, struct err **e)
{
	json_object *d, *v;
	const char *s;

	cfg->rng = json_object_object_get_ex(o, "rng", &v) && json_object_get_boolean(v);
	/* Never in a snapshot or migration: virtio-fs refuses both. */
	if (json_object_object_get_ex(o, "fs", &d))
		return err_setx(e, EINVAL, "a virtio-fs device cannot be restored or migrated");
	if (json_object_object_get_ex(o, "console2", &d)) {
		s = json_str(d, "kind");
		for (unsigned k = 1; s && k < ARRAY_SIZE(console2_kinds); k++)
			if (strcmp(s, console2_kinds[k]) == 0)
				cfg->console2.kind = (enum console2_kind)k;
		if (cfg->console2.kind == CONSOLE2_NONE)
			return err_setx(e, EINVAL, "console2 has no known kind");
		if ((s = json_str(d, "path")) != NULL)
			cfg->console2.path = vm_config_own(cfg, s);
		if (cfg->console2.kind != CONSOLE2_PTY && cfg->console2.path == NULL)
			return err_setx(e, EINVAL, "console2 has no path (or too many strings)");
	}
	if (json_object_object_get_ex(o, "vsock", &d)) {
		int64_t cid = json_object_object_get_ex(d, "cid", &v) ? json_object_get_int64(v) : 0;
		if (cid < 3 || cid >= UINT32_MAX || (s = json_str(d, "socket")) == NULL)
			return err_setx(e, EINVAL, "vsock needs a cid from 3 and a socket");
		cfg->vsock =
		    (struct vsock_config){.enabled = true, .cid = (uint32_t)cid, .socket = vm_config_own(cfg, s)};
		if (cfg->vsock.socket == NULL)
			return err_setx(e, EINVAL, "too many strings");
	}
	if (json_object_object_get_ex(o, "balloon", &d)) {
		cfg->balloon.enabled = true;
		if (json_object_object_get_ex(d, "target", &v) && json_object_get_int64(v) > 0)
			cfg->balloon.target = (uint64_t)json_object_get_int64(v);
		cfg->balloon.deflate_on_oom =
		    json_object_object_get_ex(d, "deflate_on_oom", &v) && json_object_get_boolean(v);
		cfg->balloon.free_page_reporting =
		    json_object_object_get_ex(d, "free_page_reporting", &v) && json_object_get_boolean(v);
		if (json_object_object_get_ex(d, "stats_seconds", &v) && json_object_get_int(v) > 0)
			cfg->balloon.stats_interval = (unsigned)MIN(json_object_get_int(v), 86400);
	}
	if (json_object_object_get_ex(o, "debug_exit", &d)) {
		int64_t port = json_object_object_get_ex(d, "port", &v) ? json_object_get_int64(v) : -1;
		int64_t size = json_object_object_get_ex(d, "size", &v) ? json_object_get_int64(v) : 0;
		if (port < 0 || (size != 1 && size != 2 && size != 4) || port + size > 0x10000)
			return err_setx(e, EINVAL, "debug_exit needs a port and a size of 1, 2 or 4");
		cfg->debug_exit =
		    (struct debug_exit_config){.enabled = true, .port = (uint16_t)port, .size = (uint8_t)size};
	}
	return 0;
}

/* --- rate limits --- */

struct ratelimit_config *vm_config_rate_of(struct vm_config *cfg, const char *dev_id, const char *name)
{
	char id[32];

	for (unsigned i = 0; i < cfg->ndisks; i++) {
		snprintf(id, sizeof(id), "disk%u", i);
		if (strcmp(cfg->disks[i].id ? cfg->disks[i].id : id, dev_id) == 0)
			return strcmp(name, "rate") == 0 ? &cfg->disks[i].rate : NULL;
	}
	for (unsigned i = 0; i < cfg->nnets; i++) {
		snprintf(id, sizeof(id), "net%u", i);
		if (strcmp(id, dev_id) != 0)
			continue;
		if (strcmp(name, "rx_rate") == 0)
			return &cfg->nets[i].rx_rate;
		return strcmp(name, "tx_rate") == 0 ? &cfg->nets[i].tx_rate : NULL;
	}
	return NULL;
}

/* A limit saved in a configuration (a snapshot's): kept when it reads back. */
static void rate_from_saved(json_object *o, const char *key, struct ratelimit_config *c)
{
	json_object *v;
	char why[160];

	if (json_object_object_get_ex(o, key, &v) && !ratelimit_config_from_json(v, c, why, sizeof(why)))
		memset(c, 0, sizeof(*c));
}

json_object *vm_config_to_json(const struct vm_config *c)
{
	json_object *o = json_object_new_object(), *disks = json_object_new_array(), *nets = json_object_new_array();

	json_object_object_add(o, "vcpus", json_object_new_int((int)c->cpus));
	json_object_object_add(o, "memory_mib", json_object_new_int64((int64_t)(c->memory >> 20)));
	json_object_object_add(o, "memory", memory_config_to_json(&c->mem));
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
		json_object_object_add(
		    d, "cache", json_object_new_string(c->disks[i].cache == DISK_CACHE_NONE ? "none" : "writeback"));
		json_object_object_add(d, "irq_coalescing", json_object_new_boolean(c->disks[i].irq_coalescing));
		if (ratelimit_config_enabled(&c->disks[i].rate))
			json_object_object_add(d, "rate", ratelimit_config_to_json(&c->disks[i].rate));
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
			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", c->nets[i].mac[0],
				 c->nets[i].mac[1], c->nets[i].mac[2], c->nets[i].mac[3], c->nets[i].mac[4],
				 c->nets[i].mac[5]);
			json_object_object_add(n, "mac", json_object_new_string(mac));
		}
		if (ratelimit_config_enabled(&c->nets[i].rx_rate))
			json_object_object_add(n, "rx_rate", ratelimit_config_to_json(&c->nets[i].rx_rate));
		if (ratelimit_config_enabled(&c->nets[i].tx_rate))
			json_object_object_add(n, "tx_rate", ratelimit_config_to_json(&c->nets[i].tx_rate));
		json_object_array_add(nets, n);
	}
	json_object_object_add(o, "nets", nets);
	if (c->nmodules) {
		json_object *mods = json_object_new_array();
		for (unsigned i = 0; i < c->nmodules; i++) {
			json_object *m = json_object_new_object();
			json_object_object_add(m, "path", json_object_new_string(c->modules[i].path));
			if (c->modules[i].cmdline)
				json_object_object_add(m, "cmdline", json_object_new_string(c->modules[i].cmdline));
			json_object_array_add(mods, m);
		}
		json_object_object_add(o, "modules", mods);
	}
	config_devices_to_json(c, o);
	return o;
}

static const char *json_str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		   ? json_object_get_string(v)
		   : NULL;
}

int vm_config_from_json(struct vm_config *cfg, json_object *o, struct err **e)
{
	json_object *v, *arr;
	const char *s;
	int64_t num;

	vm_config_defaults(cfg);
	if (!json_object_object_get_ex(o, "vcpus", &v) || !json_object_is_type(v, json_type_int))
		return err_setx(e, EINVAL, "'vcpus' is missing or not a number");
	num = json_object_get_int64(v);
	if (vm_config_check_cpus(num < 0 ? 0 : (uint64_t)num, "vcpus", e) < 0)
		return -EINVAL;
	cfg->cpus = (unsigned)num;
	if (!json_object_object_get_ex(o, "memory_mib", &v) || !json_object_is_type(v, json_type_int))
		return err_setx(e, EINVAL, "'memory_mib' is missing or not a number");
	num = json_object_get_int64(v);
	if (num < 0 || (uint64_t)num > (UINT64_MAX >> 20))
		return err_setx(e, EINVAL, "memory_mib: %lld MiB is out of range: at most %llu MiB", (long long)num,
				(unsigned long long)(vm_config_max_memory() >> 20));
	if (vm_config_check_memory((uint64_t)num << 20, "memory_mib", e) < 0)
		return -EINVAL;
	cfg->memory = (uint64_t)num << 20;
	if (memory_config_from_json(cfg, json_object_object_get_ex(o, "memory", &v) ? v : NULL, e) < 0)
		return -EINVAL;
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
				return err_setx(e, EINVAL, "disk %zu has no path", i);
			memset(dc, 0, sizeof(*dc));
			dc->path = vm_config_own(cfg, s);
			dc->readonly = json_object_object_get_ex(d, "readonly", &v) && json_object_get_boolean(v);
			if ((s = json_str(d, "id")) != NULL)
				dc->id = vm_config_own(cfg, s);
			dc->cache = (s = json_str(d, "cache")) && strcmp(s, "none") == 0 ? DISK_CACHE_NONE
											 : DISK_CACHE_WRITEBACK;
			dc->irq_coalescing =
			    !json_object_object_get_ex(d, "irq_coalescing", &v) || json_object_get_boolean(v);
			dc->lock = true; /* this host's choice, never the snapshot's */
			rate_from_saved(d, "rate", &dc->rate);
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
			rate_from_saved(n, "rx_rate", &nc->rx_rate);
			rate_from_saved(n, "tx_rate", &nc->tx_rate);
			cfg->nnets++;
		}
	}
	if (json_object_object_get_ex(o, "modules", &arr) && json_object_is_type(arr, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(arr) && cfg->nmodules < VM_MAX_MODULES; i++) {
			json_object *m = json_object_array_get_idx(arr, i);
			struct module_config *mc = &cfg->modules[cfg->nmodules];
			if ((s = json_str(m, "path")) == NULL)
				return err_setx(e, EINVAL, "module %zu has no path", i);
			mc->path = vm_config_own(cfg, s);
			mc->cmdline = (s = json_str(m, "cmdline")) != NULL ? vm_config_own(cfg, s) : NULL;
			if (mc->path == NULL)
				return err_setx(e, EINVAL, "too many strings");
			cfg->nmodules++;
		}
	}
	return config_devices_from_json(cfg, o, e);
}
