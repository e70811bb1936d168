/*
 * Saving and restoring what KVM holds for a VM: each vCPU's registers,
 * FPU/XSAVE, control and debug registers, MSRs (TSC and kvmclock
 * included), LAPIC, pending events and MP state; the in-kernel PICs,
 * IOAPIC and PIT; the kvmclock.  Encoded field by field into snapshot
 * sections (format.h).  The vCPUs must be paused.
 */
#ifndef CASULO_VMM_SNAPSHOT_KVM_STATE_H
#define CASULO_VMM_SNAPSHOT_KVM_STATE_H

#include "common/err.h"
#include "vmm/snapshot/format.h"
#include "vmm/vm.h"

#define SNAP_VCPU_VERSION 1
#define SNAP_IRQCHIP_VERSION 1
#define SNAP_PIT_VERSION 1
#define SNAP_CLOCK_VERSION 1

/* Find which MSRs can be saved and the XSAVE area size (vm_build). */
int kvm_state_prepare(struct vm *vm, struct err **e) MUST_CHECK;
int kvm_state_save_vcpu(struct vcpu *vcpu, struct snap_writer *w, struct err **e) MUST_CHECK;
int kvm_state_restore_vcpu(struct vcpu *vcpu, struct snap_section *s, struct err **e) MUST_CHECK;
int kvm_state_save_vm(struct vm *vm, struct snap_writer *w, struct err **e) MUST_CHECK;
int kvm_state_restore_vm(struct vm *vm, const struct snap_reader *r, struct err **e) MUST_CHECK;
/* Read the irqchip, pit and clock sections and check each field against
 * what KVM itself ever holds there, without a VM (the restore does the
 * same before its ioctls). */
int kvm_state_check_vm(const struct snap_reader *r, struct err **e) MUST_CHECK;

#endif
