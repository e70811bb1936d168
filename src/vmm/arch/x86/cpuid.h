/*
 * Guest CPUID: KVM_GET_SUPPORTED_CPUID, then completed per vCPU with what
 * only the VMM knows (APIC IDs, topology, the hypervisor bit) and filtered
 * of what Casulo does not emulate (the PMU).
 */
#ifndef CASULO_VMM_ARCH_X86_CPUID_H
#define CASULO_VMM_ARCH_X86_CPUID_H

#include <stdint.h>
#include <linux/kvm.h>

#include "common/err.h"

#define CPUID_MAX_ENTRIES 256

/* Ask KVM what it supports; free() the result. */
int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **ret, struct err **e) MUST_CHECK;

/* Copy src and complete it for vCPU vcpu_id of ncpus; free() the result. */
struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *src, unsigned vcpu_id, unsigned ncpus);

/* Find leaf/subleaf in c, or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index);

#endif
