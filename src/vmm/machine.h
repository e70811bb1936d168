/*
 * The machine builder: a VM made from a configuration.  It opens and
 * checks the guest's files, creates the KVM VM with its in-kernel
 * interrupt controllers, maps guest RAM, creates every device (the
 * built-in ones every VM has, then the virtio devices the configuration
 * asks for, from the tables in machine.c), writes the ACPI tables and boot
 * information, creates the vCPUs; and takes it all down again.  This is
 * the only file that knows every device type.  Running the VM is the
 * core's (vm.h); what other threads ask of it, the control plane's
 * (src/api/).
 */
#ifndef CASULO_VMM_MACHINE_H
#define CASULO_VMM_MACHINE_H

#include "common/err.h"
#include "vmm/config.h"

struct vm;

/* Build the whole VM from cfg: memory, devices, vCPUs, kernel.  The
 * kernel and initrd are checked before /dev/kvm is opened.  On failure
 * everything built so far is released. */
int machine_create(struct vm **ret, const struct vm_config *cfg, struct err **e) MUST_CHECK;
/* A VM with nothing built yet, that only serves its API until a
 * snapshot or a migration gives it a machine; cfg gives the console. */
int machine_create_waiting(struct vm **ret, const struct vm_config *cfg, struct err **e) MUST_CHECK;
/* Open /dev/kvm and create the KVM VM (irqchip, PIT) on a thread of its
 * own: the kernel's longest part of a start, which needs nothing of the
 * configuration, done while the caller reads a snapshot.  machine_build()
 * takes it (or does it itself when it was not started), machine_destroy()
 * waits for it. */
int machine_start_kvm(struct vm *vm, struct err **e) MUST_CHECK;
/* Give a waiting VM its KVM VM, memory (anonymous, or the snapshot
 * memory file memory_fd), devices and vCPUs, from vm->cfg; no kernel is
 * loaded and no device thread started (the restored state comes first). */
int machine_build(struct vm *vm, int memory_fd, struct err **e) MUST_CHECK;
/* Take down a VM whose vm_run() has returned (or never ran). */
void machine_destroy(struct vm *vm);

#endif
