/*
 * Snapshots of a whole VM: DIR/state (the sectioned state file: the
 * configuration, every vCPU, the in-kernel interrupt controllers, PIT and
 * clock, every device) and DIR/memory (guest RAM, sparse: pages that are
 * zero are holes).  docs/snapshot-format.md describes both.
 */
#ifndef CASULO_VMM_SNAPSHOT_SNAPSHOT_H
#define CASULO_VMM_SNAPSHOT_SNAPSHOT_H

#include <stdbool.h>

#include "common/err.h"
#include "vmm/snapshot/format.h"

struct vm;
struct vm_config;

#define SNAP_STATE_FILE "state"
#define SNAP_MEMORY_FILE "memory"
#define SNAP_CONFIG_VERSION 1

/* VMM thread.  A running VM is paused for it and resumed after. */
int vm_snapshot_create(struct vm *vm, const char *dir, struct err **e);

/* Serialize the state (not memory) of a paused VM into w. */
int vm_snapshot_write_state(struct vm *vm, struct snap_writer *w, struct err **e);

/*
 * Turn a waiting VM (vm_create_waiting) into the one in the snapshot:
 * configuration, KVM state, devices; memory is mapped from DIR/memory and
 * loads page by page as the guest touches it, so this does not grow with
 * guest memory.  Console settings come from host (vm->cfg); host-local
 * resources (disks, nets) from host when it names them, else from the
 * snapshot.  vm_run() then starts the vCPUs.  A snapshot that does not
 * check out is refused before anything is built (*built stays false:
 * the VM can wait for another); a failure after that leaves *built true
 * and the VM unusable.
 */
int vm_snapshot_load(struct vm *vm, const char *dir, const struct vm_config *host, bool *built, struct err **e);

/* Set vm->cfg from a configuration in JSON (as in section vm.config),
 * host-local resources from host when it names them. */
int vm_snapshot_config_from_json(struct vm *vm, const char *json, const struct vm_config *host, struct err **e);
/* Load the KVM and device state into a built VM whose memory is in place,
 * and start its device threads. */
int vm_snapshot_restore_state(struct vm *vm, const struct snap_reader *r, struct err **e);
/* Configuration, build and state in one, with memory mapped from memory_fd. */
int vm_snapshot_read_state(struct vm *vm, const struct snap_reader *r, const struct vm_config *host,
			   int memory_fd, struct err **e);

#endif
