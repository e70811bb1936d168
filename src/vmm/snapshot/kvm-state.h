/*
 * Saving and restoring what KVM holds for a VM: each vCPU's registers,
 * FPU/XSAVE, control and debug registers, MSRs (TSC and kvmclock
 * included), LAPIC, pending events and MP state; the in-kernel PICs,
 * IOAPIC and PIT; the kvmclock.  Encoded field by field into snapshot
 * sections (format.h).  The vCPUs must be paused.
 */
#ifndef CASULO_VMM_SNAPSHOT_KVM_STATE_H
#define CASULO_VMM_SNAPSHOT_KVM_STATE_H

#include "vmm/snapshot/format.h"
#include "vmm/vm.h"

#define SNAP_VCPU_VERSION 1
#define SNAP_IRQCHIP_VERSION 1
#define SNAP_PIT_VERSION 1
#define SNAP_CLOCK_VERSION 1

/* Find which MSRs can be saved and the XSAVE area size (vm_build). */
int kvm_state_prepare(struct vm *vm, struct err **e);
int kvm_state_save_vcpu(struct vcpu *vcpu, struct snap_writer *w, struct err **e);
int kvm_state_restore_vcpu(struct vcpu *vcpu, struct snap_section *s, struct err **e);
int kvm_state_save_vm(struct vm *vm, struct snap_writer *w, struct err **e);
int kvm_state_restore_vm(struct vm *vm, const struct snap_reader *r, struct err **e);

#endif
