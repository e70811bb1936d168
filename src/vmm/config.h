/* What a VM is made of: the validated form of casulo-vmm's command line. */
#ifndef CASULO_VMM_CONFIG_H
#define CASULO_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

enum console_mode { CONSOLE_STDIO, CONSOLE_NONE, CONSOLE_FILE };
enum disk_cache { DISK_CACHE_WRITEBACK, DISK_CACHE_NONE };

#define VM_MAX_DISKS 8
#define VM_MAX_NETS 8

struct disk_config {
	const char *path;
	const char *id;      /* serial the guest reads (GET_ID); default "diskN" */
	bool readonly;
	enum disk_cache cache;
	bool irq_coalescing; /* adaptive interrupt coalescing (default on) */
};

struct net_config {
	const char *tap; /* TAP interface to attach to, or NULL with fd */
	int fd;          /* an open TAP fd (IFF_VNET_HDR), or -1 */
	uint8_t mac[6];
	bool has_mac;    /* otherwise a random locally administered one */
};

/* --- virtio-rng, virtio-console, virtio-vsock, virtio-balloon --- */
enum console2_kind { CONSOLE2_NONE, CONSOLE2_FILE, CONSOLE2_SOCKET, CONSOLE2_PTY };

struct console2_config {
	enum console2_kind kind;
	const char *path; /* CONSOLE2_FILE, CONSOLE2_SOCKET */
};

struct vsock_config {
	bool enabled;
	uint32_t cid;       /* the guest's context ID, 3 and up */
	const char *socket; /* host side: PATH (host connects), PATH_<port> (guest connects) */
};

struct balloon_config {
	bool enabled;
	uint64_t target;          /* bytes the guest should give back at boot */
	bool deflate_on_oom;
	bool free_page_reporting;
	unsigned stats_interval;  /* seconds between statistics refreshes, 0: on demand */
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
	struct net_config nets[VM_MAX_NETS];
	unsigned nnets;
	bool rng;
	struct console2_config console2;
	struct vsock_config vsock;
	struct balloon_config balloon;
	const char *control_socket; /* one-line commands (src/vmm/control.c), or NULL */
	char *owned[32];          /* option strings the config points into */
	unsigned nowned;
};

void vm_config_defaults(struct vm_config *cfg);
void vm_config_free(struct vm_config *cfg);
/* "path=FILE[,readonly=on][,id=NAME][,cache=none|writeback][,irq-coalescing=on|off]" */
int vm_config_add_disk(struct vm_config *cfg, const char *spec, struct err **e);
/* "tap=NAME[,mac=MAC]" or "fd=N[,mac=MAC]" */
int vm_config_add_net(struct vm_config *cfg, const char *spec, struct err **e);
/* "on" or "off" */
int vm_config_set_rng(struct vm_config *cfg, const char *spec, struct err **e);
/* "file:PATH", "socket:PATH", "pty" or "none" */
int vm_config_set_console2(struct vm_config *cfg, const char *spec, struct err **e);
/* "cid=N,socket=PATH" */
int vm_config_set_vsock(struct vm_config *cfg, const char *spec, struct err **e);
/* "on" or "[target=SIZE][,deflate-on-oom=on][,free-page-reporting=on][,stats=SECONDS]" */
int vm_config_set_balloon(struct vm_config *cfg, const char *spec, struct err **e);
struct json_object;
/* The configuration as the API shows it and snapshots keep it. */
struct json_object *vm_config_to_json(const struct vm_config *cfg);
/* Fill cfg (defaults first) from such JSON; strings are owned by cfg. */
int vm_config_from_json(struct vm_config *cfg, struct json_object *o, struct err **e);
/* Keep a private copy of s in cfg (freed with it); NULL when full. */
const char *vm_config_own(struct vm_config *cfg, const char *s);

/* "52:54:00:12:34:56" */
int parse_mac(const char *s, uint8_t mac[6]);

#endif
