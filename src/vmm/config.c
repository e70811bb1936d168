#include "vmm/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"

void vm_config_defaults(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cmdline = VM_DEFAULT_CMDLINE;
	cfg->cpus = VM_DEFAULT_CPUS;
	cfg->memory = VM_DEFAULT_MEMORY;
	cfg->console = CONSOLE_STDIO;
}

void vm_config_free(struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nowned; i++)
		free(cfg->owned[i]);
	cfg->nowned = 0;
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
	struct disk_config d = { .cache = DISK_CACHE_WRITEBACK };
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
