/*
 * One vCPU: its KVM fd and shared kvm_run page, its boot registers, and
 * one KVM_RUN with the dispatch of the exit that ended it.  Port I/O and
 * MMIO exits go to the buses the vCPU was given; everything that ends the
 * guest (poweroff, reset, a fatal exit) is returned to the caller, the
 * vCPU thread of vm.c, which owns pausing, parking and stopping.  Nothing
 * here knows struct vm.
 */
#ifndef CASULO_VMM_VCPU_H
#define CASULO_VMM_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/boot/loader.h"
#include "vmm/bus.h"

struct vm;
struct kvm_run;
struct kvm_cpuid2;

/* The signal that kicks a vCPU thread out of KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

#define VCPU_EXIT_SLOTS 64
#define VCPU_EXIT_SLOT_INTERRUPTED (VCPU_EXIT_SLOTS - 1)

/* The vCPU's answer to the halt watch's last question (halt-watch.h),
 * written by its thread. */
struct halt_answer {
	atomic_uint round;   /* the last look answered */
	atomic_bool stopped; /* what it found */
};

struct vcpu {
	struct vm *vm; /* the VM it belongs to (vm.c and the snapshot code use it) */
	unsigned id;
	int fd;
	struct kvm_run *run;
	size_t run_size; /* mmap size of struct kvm_run */
	struct bus *pio;
	struct bus *mmio;
	pthread_t thread;
	atomic_int tid; /* its thread's id once running (affinity.c), else 0 */
	bool thread_started;
	bool exited;	 /* the thread left its loop (under vm->run_lock) */
	bool io_pending; /* the last exit was I/O that KVM completes on re-entry */
	/* Exits by KVM exit reason (the last slot counts KVM_RUN returning
	 * EINTR: kicks and signals), for GET /metrics.  Only this vCPU's
	 * thread writes them. */
	uint64_t exits[VCPU_EXIT_SLOTS];
	struct halt_answer halt_answer; /* the halt watch's question, answered (halt-watch.h) */
};

/* What a new vCPU needs from the VM it joins. */
struct vcpu_setup {
	struct vm *vm;
	int vm_fd;
	size_t run_size;
	const struct kvm_cpuid2 *supported_cpuid;
	unsigned ncpus;
	struct bus *pio;
	struct bus *mmio;
};

/* What one KVM_RUN ended with. */
enum vcpu_event {
	VCPU_EVENT_CONTINUE,	/* handled: run again */
	VCPU_EVENT_INTERRUPTED, /* a kick or a signal took it out of the guest: run again */
	VCPU_EVENT_POWEROFF,	/* the guest powered off */
	VCPU_EVENT_REBOOT,	/* the guest reset (or triple-faulted) */
	VCPU_EVENT_FATAL,	/* something the VM cannot survive; the message says what */
};

int vcpu_create(struct vcpu *vcpu, const struct vcpu_setup *setup, unsigned id, struct err **e) MUST_CHECK;
/* Registers of the boot vCPU at the kernel's entry point. */
int vcpu_setup_boot(struct vcpu *vcpu, const struct boot_entry *entry, struct err **e) MUST_CHECK;
/* vCPU thread: enter the guest once and handle the exit.  On
 * VCPU_EVENT_FATAL, why holds the message (the registers went to stderr). */
enum vcpu_event vcpu_run(struct vcpu *vcpu, char *why, size_t why_len);
/* Start fn(vcpu) on a thread of its own (the vCPU thread of vm.c). */
int vcpu_start(struct vcpu *vcpu, void *(*fn)(void *), struct err **e) MUST_CHECK;
/* Make the thread leave KVM_RUN (and not enter it again until unkicked). */
void vcpu_kick(struct vcpu *vcpu);
/* Let a kicked vCPU run again (before resuming it). */
void vcpu_unkick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);
/* Install the no-op kick handler (once per process). */
int vcpu_install_kick_handler(struct err **e) MUST_CHECK;
/* Let the kick signal in during KVM_RUN only: the first thing a vCPU
 * thread does. */
void vcpu_thread_init(struct vcpu *vcpu);

const char *vcpu_exit_name(unsigned reason);

#endif
