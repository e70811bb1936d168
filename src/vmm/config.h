/* What a VM is made of: the validated form of casulo-vmm's command line. */
#ifndef CASULO_VMM_CONFIG_H
#define CASULO_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

enum console_mode { CONSOLE_STDIO, CONSOLE_NONE, CONSOLE_FILE };

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
};

void vm_config_defaults(struct vm_config *cfg);

#endif
