/*
 * A virtual machine: the KVM VM, its memory, vCPUs, buses and devices.
 * One struct vm per process; nothing about it lives in globals.
 *
 * Threads: the caller of vm_run() runs the VMM event loop (console input,
 * signals, exit requests); each vCPU runs KVM_RUN in its own thread and
 * handles its exits.  A guest poweroff or reboot, a fatal vCPU error or a
 * signal ends vm_run().
 */
#ifndef CASULO_VMM_VM_H
#define CASULO_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/bus.h"
#include "vmm/config.h"
#include "vmm/event-loop.h"
#include "vmm/memory.h"

struct kvm_run;
struct kvm_cpuid2;
struct device;
struct console;
struct control;
struct virtio_dev;
struct vm_action;
struct migration;

enum vm_exit_reason {
	VM_EXIT_NONE = 0,
	VM_EXIT_POWEROFF,  /* guest powered off */
	VM_EXIT_REBOOT,    /* guest rebooted (or triple-faulted) */
	VM_EXIT_ERROR,     /* a vCPU hit something fatal; see vm->error */
	VM_EXIT_SIGNAL,    /* SIGINT/SIGTERM */
	VM_EXIT_USER,      /* the console escape sequence */
	VM_EXIT_STOPPED,   /* stopped through the API */
	VM_EXIT_MIGRATED,  /* the VM runs on the migration's destination now */
};

#define VCPU_EXIT_SLOTS 64
#define VCPU_EXIT_SLOT_INTERRUPTED (VCPU_EXIT_SLOTS - 1)

enum vm_state {
	VM_STATE_NOT_STARTED, /* waiting for a snapshot to load (--api-socket without a guest) */
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,
	VM_STATE_STOPPED,     /* the guest powered off or the VM was stopped */
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	bool exited;        /* the thread left its loop (under vm->run_lock) */
	bool io_pending;    /* the last exit was I/O that KVM completes on re-entry */
	/* Exits by KVM exit reason (the last slot counts KVM_RUN returning
	 * EINTR: kicks and signals), for GET /metrics.  Only this vCPU's
	 * thread writes them. */
	uint64_t exits[VCPU_EXIT_SLOTS];
};

struct vm {
	struct vm_config cfg;
	bool owns_cfg;           /* cfg's strings belong to the VM (restored ones) */
	int kvm_fd;
	int vm_fd;
	size_t run_size; /* mmap size of struct kvm_run */
	struct guest_memory mem;
	struct kvm_cpuid2 *supported_cpuid;
	unsigned nvcpus;
	struct vcpu *vcpus;
	struct bus pio;
	struct bus mmio;
	struct device *devices; /* created devices, newest first */
	unsigned virtio_count;  /* virtio-mmio slots handed out */
	struct console *console;
	struct virtio_dev *balloon; /* --balloon, for the control socket */
	struct control *control;    /* --control-socket */
	struct event_loop loop;
	int exit_eventfd;       /* vCPU threads signal exit requests here */
	int signal_fd;

	atomic_int exit_reason;  /* enum vm_exit_reason, first one wins */
	atomic_bool stopping;    /* vCPU threads leave KVM_RUN for good */
	atomic_int guest_status; /* last status written to the exit port */
	atomic_bool guest_status_set;
	int exit_signal;
	char *error;             /* message for VM_EXIT_ERROR */
	pthread_mutex_t error_lock;

	/* Pausing: vCPU threads park at the top of their loop while
	 * pause_requested is set.  run_lock protects these. */
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond;
	bool pause_requested;
	unsigned parked_vcpus;
	enum vm_state state;     /* changed by the VMM thread only */
	struct timespec started; /* CLOCK_MONOTONIC at vm_run() */

	/* Actions from other threads (actions.c). */
	int action_fd;
	pthread_mutex_t action_lock;
	struct vm_action *action_head, *action_tail;
	bool actions_closed;
	struct migration *migration; /* the current or last outgoing one */

	/* What saving vCPU state needs, worked out once when the VM is built
	 * so that a migration's downtime does not pay for it. */
	uint32_t *msr_indices;   /* MSRs this KVM lists and reads back */
	unsigned nmsrs;
	int xsave_size;
};

/* Build the whole VM from cfg: memory, vCPUs, devices, kernel.  On
 * failure everything built so far is released. */
int vm_create(struct vm **ret, const struct vm_config *cfg, struct err **e);
/* A VM that only serves its API until a snapshot is loaded into it
 * (PUT /snapshot/load); cfg gives the console. */
int vm_create_waiting(struct vm **ret, const struct vm_config *cfg, struct err **e);
/* Give an allocated VM its KVM VM, memory (anonymous, or the snapshot
 * memory file memory_fd), devices and vCPUs, from vm->cfg. */
int vm_build(struct vm *vm, int memory_fd, struct err **e);
/* Run until the guest stops; returns the process exit status to use. */
int vm_run(struct vm *vm, struct err **e);
void vm_destroy(struct vm *vm);

/* Called from any thread: ask the VMM loop to end the VM.  Only the
 * first request counts. */
void vm_request_exit(struct vm *vm, enum vm_exit_reason reason);
/* A vCPU thread reports a fatal error (message is copied). */
void vm_fail(struct vm *vm, const char *fmt, ...) PRINTF_FMT(2, 3);
/* Assert (level 1) or deassert an interrupt line (GSI). */
void vm_set_irq(struct vm *vm, unsigned gsi, int level);

const char *vm_exit_reason_name(enum vm_exit_reason r);
const char *vm_state_name(enum vm_state s);

/* VMM thread: stop every vCPU (and device thread) where it is, so that
 * the VM's state can be read or written; resume lets them go again.
 * Both return 0 or -errno; pausing a paused VM does nothing. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);

/* vCPU thread: park while a pause is requested (called by the run loop). */
void vm_vcpu_park(struct vm *vm, struct vcpu *vcpu);
void vm_vcpu_exited(struct vm *vm, struct vcpu *vcpu);

#endif
