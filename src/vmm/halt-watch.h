/*
 * A guest whose every vCPU has halted with interrupts disabled has
 * stopped for good: only an NMI, INIT or SMI could wake it, and nothing
 * in Casulo's machine sends one.  Linux ends there when it has no way to
 * power off (`poweroff -f` with acpi=off: "reboot: System halted"), and
 * so does a test kernel that means to stop.  Such a VM ends as a poweroff
 * would, instead of hanging.
 *
 * KVM runs HLT inside the kernel (the LAPIC is in-kernel), so the VMM
 * never sees it.  Every HALT_WATCH_PERIOD_MS the VMM thread asks each
 * vCPU thread to look: a signal takes a halted vCPU out of KVM_RUN, and
 * its thread reads its run state (KVM_GET_MP_STATE) and RFLAGS.  A vCPU
 * that was not halted was running in the guest and does not answer.
 * The VM ends when HALT_WATCH_ROUNDS looks in a row find every vCPU
 * halted with IF clear, or waiting for a SIPI that no one can send.
 */
#ifndef CASULO_VMM_HALT_WATCH_H
#define CASULO_VMM_HALT_WATCH_H

#include <stdatomic.h>
#include <stdbool.h>

#include "common/err.h"
#include "common/macro.h"

#define HALT_WATCH_PERIOD_MS 500
#define HALT_WATCH_ROUNDS 2

struct vcpu;
struct event_loop;

/* In struct vm: the VMM thread's side. */
struct halt_watch {
	int timer_fd;
	atomic_uint round;	 /* the look the vCPUs are asked to answer */
	unsigned rounds_stopped; /* looks in a row that found the VM stopped */
	struct event_loop *loop;
	struct vcpu *vcpus;
	unsigned nvcpus;
	/* Whether the vCPUs run now (paused ones answer nothing), and what
	 * to do when the guest has stopped for good. */
	bool (*running)(void *opaque);
	void (*stopped)(void *opaque);
	void *opaque;
};

/* VMM thread, once the vCPUs run: start looking (w's loop, vcpus,
 * nvcpus, running, stopped and opaque set). */
int halt_watch_start(struct halt_watch *w, struct err **e) MUST_CHECK;
void halt_watch_stop(struct halt_watch *w);
/* vCPU thread, after KVM_RUN returned EINTR: answer a pending look. */
void halt_watch_answer(const struct halt_watch *w, struct vcpu *vcpu);

#endif
