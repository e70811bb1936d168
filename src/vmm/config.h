/* What a VM is made of: the validated form of casulo-vmm's command line. */
#ifndef CASULO_VMM_CONFIG_H
#define CASULO_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ratelimit.h"
#include "vmm/memory-backend.h"

enum console_mode { CONSOLE_STDIO, CONSOLE_NONE, CONSOLE_FILE };
enum disk_cache { DISK_CACHE_WRITEBACK, DISK_CACHE_NONE };

#define VM_MAX_DISKS 8
#define VM_MAX_NETS 8
#define VM_MAX_FS 8
#define FS_TAG_MAX 36	  /* virtio-fs config space: the tag's bytes */
#define VM_MAX_MODULES 15 /* with the initrd as module 0, BOOT_MAX_MODULES */

struct disk_config {
	const char *path;
	const char *id; /* serial the guest reads (GET_ID); default "diskN" */
	bool readonly;
	enum disk_cache cache;
	bool irq_coalescing;	      /* adaptive interrupt coalescing (default on) */
	bool lock;		      /* an OFD lock on the image (default on; lock=off) */
	struct ratelimit_config rate; /* rate=SPEC (default: none) */
};

struct net_config {
	const char *tap; /* TAP interface to attach to, or NULL with fd */
	int fd;		 /* an open TAP fd (IFF_VNET_HDR), or -1 */
	uint8_t mac[6];
	bool has_mac;				  /* otherwise a random locally administered one */
	struct ratelimit_config rx_rate, tx_rate; /* rx-rate=SPEC, tx-rate=SPEC (default: none) */
};

/* --module: a multiboot module after the initrd. */
struct module_config {
	const char *path;
	const char *cmdline; /* NULL: none */
};

/* --- virtio-rng, virtio-console, virtio-vsock, virtio-balloon --- */
enum console2_kind { CONSOLE2_NONE, CONSOLE2_FILE, CONSOLE2_SOCKET, CONSOLE2_PTY };

struct console2_config {
	enum console2_kind kind;
	const char *path; /* CONSOLE2_FILE, CONSOLE2_SOCKET */
};

struct vsock_config {
	bool enabled;
	uint32_t cid;	    /* the guest's context ID, 3 and up */
	const char *socket; /* host side: PATH (host connects), PATH_<port> (guest connects) */
};

struct balloon_config {
	bool enabled;
	uint64_t target; /* bytes the guest should give back at boot */
	bool deflate_on_oom;
	bool free_page_reporting;
	unsigned stats_interval; /* seconds between statistics refreshes, 0: on demand */
};

/* virtio-fs: a host directory the guest mounts by its tag. */
struct fs_config {
	const char *tag;
	const char *path;
	bool readonly;
};

/* --debug-exit: QEMU's isa-debug-exit (devices/debug-exit.h). */
#define DEBUG_EXIT_DEFAULT_PORT 0xf4
#define DEBUG_EXIT_DEFAULT_SIZE 4

struct debug_exit_config {
	bool enabled;
	uint16_t port;
	uint8_t size; /* 1, 2 or 4 ports from port */
};

#define VM_DEFAULT_CPUS 1
#define VM_MAX_CPUS 254 /* ACPI_MAX_CPUS: the MADT's APIC IDs */
#define VM_DEFAULT_MEMORY (256ULL << 20)
#define VM_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1"

struct vm_config {
	const char *kernel_path;
	const char *initrd_path; /* NULL: none */
	struct module_config modules[VM_MAX_MODULES];
	unsigned nmodules;
	const char *cmdline;
	unsigned cpus;
	uint64_t memory;
	struct memory_config mem;
	enum console_mode console;
	const char *console_path; /* CONSOLE_FILE */
	struct disk_config disks[VM_MAX_DISKS];
	unsigned ndisks;
	struct net_config nets[VM_MAX_NETS];
	unsigned nnets;
	bool rng;
	struct console2_config console2;
	struct vsock_config vsock;
	struct balloon_config balloon;
	struct fs_config fs[VM_MAX_FS];
	unsigned nfs;
	struct debug_exit_config debug_exit;
	char *owned[64]; /* option strings the config points into */
	unsigned nowned;
};

void vm_config_defaults(struct vm_config *cfg);

/*
 * The limits of a VM's size, whatever names it (the command line, a
 * snapshot's or a migration's configuration): what names the value in the
 * message ("--cpus '255'", "vm.config: vcpus").  Errors are EINVAL and say
 * the unit and the limit.
 */
int vm_config_check_cpus(uint64_t cpus, const char *what, struct err **e) MUST_CHECK;
int vm_config_check_memory(uint64_t bytes, const char *what, struct err **e) MUST_CHECK;
/* The most guest RAM this host can map: the guest's addresses run to its
 * RAM plus the 1 GiB MMIO hole below 4 GiB, and KVM maps no guest address
 * beyond the host CPU's physical address width. */
uint64_t vm_config_max_memory(void);

void vm_config_free(struct vm_config *cfg);

/* Where the configuration keeps the limit `name` ("rate" of a disk,
 * "rx_rate" or "tx_rate" of a network interface) of the device the VM
 * names dev_id ("disk0" or the disk's id=, "net0"), or NULL. */
struct ratelimit_config *vm_config_rate_of(struct vm_config *cfg, const char *dev_id, const char *name);
/* "SIZE" or "size=SIZE[,backend=anon|memfd|file:PATH][,hugepages=off|2M|1G][,shared=on][,mergeable=on]
 * [,prefault=on][,host-nodes=LIST,policy=bind|preferred|interleave]": the size is checked with
 * vm_config_check_memory(), combinations that cannot work are refused (KSM on hugetlb or shared
 * memory, a policy without nodes).  What depends on the host is vm_config_check_memory_host()'s. */
int vm_config_set_memory(struct vm_config *cfg, const char *spec, struct err **e) MUST_CHECK;
/* What the host must have for cfg->mem: the hugepage size and enough free
 * pages of it, the file at least the guest's size, the NUMA nodes.  Reads
 * /sys (sysfs, a root prefix for tests: NULL is "/sys"); no KVM needed. */
int vm_config_check_memory_host(const struct vm_config *cfg, const char *sysfs, struct err **e) MUST_CHECK;
/* "path=FILE[,readonly=on][,id=NAME][,cache=none|writeback][,irq-coalescing=on|off][,lock=off][,rate=SPEC]"
 * (SPEC: common/ratelimit.h) */
int vm_config_add_disk(struct vm_config *cfg, const char *spec, struct err **e) MUST_CHECK;
/* "tap=NAME[,mac=MAC]" or "fd=N[,mac=MAC]", then [,rx-rate=SPEC][,tx-rate=SPEC] */
int vm_config_add_net(struct vm_config *cfg, const char *spec, struct err **e) MUST_CHECK;
/* "PATH[,cmdline=STR]" (STR may hold commas: it runs to the end) */
int vm_config_add_module(struct vm_config *cfg, const char *spec, struct err **e) MUST_CHECK;
/* The module's string in the multiboot information: its path, then a
 * space and its command line when it has one (as GRUB and QEMU write it).
 * Returns 0, or -ENAMETOOLONG when it does not fit len. */
int vm_config_module_string(const struct module_config *m, char *out, size_t len) MUST_CHECK;
/* "on" or "off" */
int vm_config_set_rng(struct vm_config *cfg, const char *spec, struct err **e) MUST_CHECK;
/* "file:PATH", "socket:PATH", "pty" or "none" */
int vm_config_set_console2(struct vm_config *cfg, const char *spec, struct err **e) MUST_CHECK;
/* "cid=N,socket=PATH" */
int vm_config_set_vsock(struct vm_config *cfg, const char *spec, struct err **e) MUST_CHECK;
/* "on" or "[target=SIZE][,deflate-on-oom=on][,free-page-reporting=on][,stats=SECONDS]" */
int vm_config_set_balloon(struct vm_config *cfg, const char *spec, struct err **e) MUST_CHECK;
/* "tag=TAG,path=DIR[,readonly=on]" */
int vm_config_add_fs(struct vm_config *cfg, const char *spec, struct err **e) MUST_CHECK;
/* NULL, "on", "off" or "[port=N][,size=1|2|4]" */
int vm_config_set_debug_exit(struct vm_config *cfg, const char *spec, struct err **e) MUST_CHECK;
struct json_object;
/* The configuration as the API shows it and snapshots keep it. */
struct json_object *vm_config_to_json(const struct vm_config *cfg);
/* The "memory" object of that JSON; from_json takes NULL (snapshots older
 * than the object: anonymous memory) and checks the combination. */
struct json_object *memory_config_to_json(const struct memory_config *m);
int memory_config_from_json(struct vm_config *cfg, struct json_object *o, struct err **e) MUST_CHECK;
/* Fill cfg (defaults first) from such JSON; strings are owned by cfg. */
int vm_config_from_json(struct vm_config *cfg, struct json_object *o, struct err **e) MUST_CHECK;
/* Keep a private, writable copy of s in cfg (freed with it); NULL when
 * full or out of memory. */
char *vm_config_own(struct vm_config *cfg, const char *s);
/* A private, writable copy of option opt's key=value list spec in *buf,
 * refused when a key is given twice. */
int vm_config_own_option_list(struct vm_config *cfg, const char *opt, const char *spec, char **buf,
			      struct err **e) MUST_CHECK;

/* "52:54:00:12:34:56" */
int parse_mac(const char *s, uint8_t mac[6]) MUST_CHECK;

#endif
