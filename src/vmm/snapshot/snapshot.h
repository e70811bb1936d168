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
/* 2: vm.config has "memory" (--memory's backend); 1, read as anonymous memory. */
#define SNAP_CONFIG_VERSION 2
#define SNAP_CONFIG_VERSION_ANON 1
#define SNAP_MEMORY_FILE_VERSION 1

/* VMM thread.  A running VM is paused for it and resumed after. */
int vm_snapshot_create(struct vm *vm, const char *dir, struct err **e) MUST_CHECK;

/* Serialize the state (not memory) of a paused VM into w. */
int vm_snapshot_write_state(struct vm *vm, struct snap_writer *w, struct err **e) MUST_CHECK;

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
int vm_snapshot_load(struct vm *vm, const char *dir, const struct vm_config *host, bool *built,
		     struct err **e) MUST_CHECK;

/*
 * Check what can be checked of a snapshot's state without a VM: each
 * section once, vm.config a JSON object whose values keep the command
 * line's limits (its strings without NULs), one vcpu.N section per vCPU
 * and no more, the irqchip, pit and clock fields within what KVM holds.
 * Fills cfg (the caller's to vm_config_free()) on success.  Messages name
 * the section and the field.
 */
int vm_snapshot_check(const struct snap_reader *r, struct vm_config *cfg, struct err **e) MUST_CHECK;
/* The configuration of the snapshot in DIR, read and checked as
 * vm_snapshot_load() does (cfg the caller's to vm_config_free()): what a
 * confinement set before the load must allow. */
int vm_snapshot_read_config(const char *dir, struct vm_config *cfg, struct err **e) MUST_CHECK;
/* Set vm->cfg from a configuration in JSON (as in section vm.config),
 * host-local resources from host when it names them. */
int vm_snapshot_config_from_json(struct vm *vm, const char *json, const struct vm_config *host,
				 struct err **e) MUST_CHECK;
/* Load the KVM and device state into a built VM whose memory is in place,
 * and start its device threads. */
int vm_snapshot_restore_state(struct vm *vm, const struct snap_reader *r, struct err **e) MUST_CHECK;

#endif
