#include "vmm/config.h"

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
