/* What a VM is made of: the validated form of casulo-vmm's command line. */
#ifndef CASULO_VMM_CONFIG_H
#define CASULO_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

enum console_mode { CONSOLE_STDIO, CONSOLE_NONE, CONSOLE_FILE };
enum disk_cache { DISK_CACHE_WRITEBACK, DISK_CACHE_NONE };

#define VM_MAX_DISKS 8

struct disk_config {
	const char *path;
	const char *id;      /* serial the guest reads (GET_ID); default "diskN" */
	bool readonly;
	enum disk_cache cache;
};

#define VM_DEFAULT_CPUS 1
#define VM_DEFAULT_MEMORY (256ULL << 20)
#define VM_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1"

struct vm_config {
	const char *kernel_path;
	const char *initrd_path; /* NULL: none */
	const char *cmdline;
	unsigned cpus;
	uint64_t memory;
	enum console_mode console;
	const char *console_path; /* CONSOLE_FILE */
	struct disk_config disks[VM_MAX_DISKS];
	unsigned ndisks;
	char *owned[32];          /* option strings the config points into */
	unsigned nowned;
};

void vm_config_defaults(struct vm_config *cfg);
void vm_config_free(struct vm_config *cfg);
/* "path=FILE[,readonly=on][,id=NAME][,cache=none|writeback]" */
int vm_config_add_disk(struct vm_config *cfg, const char *spec, struct err **e);

#endif
