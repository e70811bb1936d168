/*
 * Which host CPUs the VM's threads run on: each vCPU thread pinned to its
 * own set, and the VMM's other threads (the VMM thread, device threads,
 * the API's) to one set, at start (--cpus N,affinity=...,vmm-affinity=...)
 * and at run time (the API's PATCH /vm/affinity).
 *
 * At start the VMM thread takes the VMM set before it makes any thread,
 * so every thread it makes inherits it; each vCPU thread then sets its
 * own (its pinned set, else the CPUs the process had at start).  At run
 * time a vCPU's set is changed by its thread id, and the VMM set on
 * every thread of the process that is not a vCPU's.
 */
#ifndef CASULO_VMM_AFFINITY_H
#define CASULO_VMM_AFFINITY_H

#include <sched.h>
#include <stdbool.h>

#include "common/err.h"
#include "vmm/config.h"

struct vcpu;

struct vm_affinity {
	cpu_set_t host; /* the CPUs the process had at start: an unpinned thread's */
	bool has_vmm;
	cpu_set_t vmm;
	bool has_vcpu[VM_MAX_CPUS];
	cpu_set_t vcpu[VM_MAX_CPUS];
};

/* Nothing pinned; host is read from the calling thread. */
int vm_affinity_init(struct vm_affinity *a, struct err **e) MUST_CHECK;

/*
 * --cpus "N[,affinity=VCPU:CPUS;VCPU:CPUS...][,vmm-affinity=CPUS]", CPUS a
 * host CPU list ("0-3,8": its commas are allowed).  *ncpus gets N.  Every
 * host CPU must be one the process may run on; a vCPU pinned twice, one
 * beyond N, or a bad list is refused, the message naming the item.
 */
int vm_affinity_parse_cpus(struct vm_affinity *a, const char *spec, unsigned *ncpus, struct err **e) MUST_CHECK;
/* A set asked for the VM (what names it in the message): not empty, and
 * within the CPUs the process had at start. */
int vm_affinity_check_set(const struct vm_affinity *a, const cpu_set_t *set, const char *what,
			  struct err **e) MUST_CHECK;

/* The calling thread (the VMM thread, before it makes threads) takes the
 * VMM set, when there is one. */
int vm_affinity_enter_vmm(const struct vm_affinity *a, struct err **e) MUST_CHECK;
/* The vCPU's own thread, first thing: records its thread id and takes its
 * set; an error is a message for the VM's failure. */
int vm_affinity_enter_vcpu(const struct vm_affinity *a, struct vcpu *vcpu, struct err **e) MUST_CHECK;

/* Run time, any thread, on the VM's vCPUs: change a vCPU's set (its thread
 * started) or the VMM set; the new set is kept in a for the record. */
int vm_affinity_set_vcpu(struct vm_affinity *a, struct vcpu *vcpus, unsigned nvcpus, unsigned vcpu,
			 const cpu_set_t *set, struct err **e) MUST_CHECK;
int vm_affinity_set_vmm(struct vm_affinity *a, struct vcpu *vcpus, unsigned nvcpus, const cpu_set_t *set,
			struct err **e) MUST_CHECK;
/* What a vCPU's thread runs on now (the kernel's answer), or the calling
 * thread's for vcpu == -1. */
int vm_affinity_get(struct vcpu *vcpus, unsigned nvcpus, int vcpu, cpu_set_t *set, struct err **e) MUST_CHECK;

#endif
