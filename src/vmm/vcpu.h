/* vCPU creation, boot state and the KVM_RUN loop with exit dispatch. */
#ifndef CASULO_VMM_VCPU_H
#define CASULO_VMM_VCPU_H

#include "vmm/boot/loader.h"
#include "vmm/vm.h"

/* The signal that kicks a vCPU thread out of KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned id, struct err **e);
/* Registers of the boot vCPU at the kernel's entry point. */
int vcpu_setup_boot(struct vcpu *vcpu, const struct boot_entry *entry, struct err **e);
int vcpu_start(struct vcpu *vcpu, struct err **e);
/* Make the thread leave KVM_RUN for good; vm->stopping must be set. */
void vcpu_kick(struct vcpu *vcpu);
/* Let a kicked vCPU run again (before resuming it). */
void vcpu_unkick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);
/* Install the no-op kick handler (once per process). */
int vcpu_install_kick_handler(struct err **e);

const char *vcpu_exit_name(unsigned reason);

#endif
