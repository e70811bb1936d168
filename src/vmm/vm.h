/*
 * The running VM, the core of the VMM library: the KVM VM, its memory,
 * vCPUs, buses and device list, its state, pause and resume, exit
 * requests and interrupt lines.  One struct vm per process; nothing about
 * it lives in globals.  The machine builder (machine.h) fills it from a
 * configuration; this core knows no device model.
 *
 * Threads: the caller of vm_run() becomes the VMM thread and runs its
 * event loop (exit requests, signals, console input, vm_call()s); each
 * vCPU runs KVM_RUN in its own thread (vcpu.h) and parks there while the
 * VM is paused.  A guest poweroff or reboot, a fatal vCPU error, a signal
 * or a stop request ends vm_run().  Other threads act on the VM only
 * through vm_call().
 */
#ifndef CASULO_VMM_VM_H
#define CASULO_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/affinity.h"
#include "vmm/bus.h"
#include "vmm/config.h"
#include "vmm/event-loop.h"
#include "vmm/halt-watch.h"
#include "vmm/image-lock.h"
#include "vmm/memory.h"
#include "vmm/vcpu.h"

struct kvm_cpuid2;
struct device;
struct console;
struct vm_call;

enum vm_exit_reason {
	VM_EXIT_NONE = 0,
	VM_EXIT_POWEROFF,   /* guest powered off */
	VM_EXIT_REBOOT,	    /* guest rebooted (or triple-faulted) */
	VM_EXIT_ERROR,	    /* a vCPU hit something fatal; see vm->error */
	VM_EXIT_SIGNAL,	    /* SIGINT/SIGTERM */
	VM_EXIT_USER,	    /* the console escape sequence */
	VM_EXIT_STOPPED,    /* stopped through the API */
	VM_EXIT_MIGRATED,   /* the VM runs on the migration's destination now */
	VM_EXIT_DEBUG_EXIT, /* the guest wrote to the debug-exit port (status in guest_status) */
};

enum vm_state {
	VM_STATE_NOT_STARTED, /* waiting for a snapshot to load (--api-socket without a guest) */
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,
	VM_STATE_STOPPED, /* the guest powered off or the VM was stopped */
};

struct vm {
	struct vm_config cfg;
	bool owns_cfg; /* cfg's strings belong to the VM (restored ones) */
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
	unsigned virtio_count;	/* virtio-mmio slots handed out */
	struct console *console;
	struct event_loop loop;
	int exit_eventfd; /* vCPU threads signal exit requests here */
	int signal_fd;

	atomic_int exit_reason;	 /* enum vm_exit_reason, first one wins */
	atomic_bool stopping;	 /* vCPU threads leave KVM_RUN for good */
	atomic_int guest_status; /* last status written to the exit port */
	atomic_bool guest_status_set;
	int exit_signal;
	struct halt_watch halt_watch; /* ends a VM whose vCPUs all halted for good */
	char *error;		      /* message for VM_EXIT_ERROR */
	pthread_mutex_t error_lock;

	/* Pausing: vCPU threads park at the top of their loop while
	 * pause_requested is set.  run_lock protects these. */
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond;
	bool pause_requested;
	unsigned parked_vcpus;
	enum vm_state state;	 /* changed by the VMM thread only */
	struct timespec started; /* CLOCK_MONOTONIC at vm_run() */

	/* Calls from other threads (vm_call()), run by the VMM thread. */
	int call_fd;
	pthread_mutex_t call_lock;
	pthread_cond_t call_done;
	struct vm_call *call_head, *call_tail;
	bool calls_closed;

	/* What saving vCPU state needs, worked out once when the VM is built
	 * so that a migration's downtime does not pay for it. */
	uint32_t *msr_indices; /* MSRs this KVM lists and reads back */
	unsigned nmsrs;
	int xsave_size;

	/* machine_start_kvm()'s thread: kvm_fd and vm_fd are its until joined. */
	pthread_t kvm_thread;
	bool kvm_thread_started;
	int kvm_thread_result;
	struct err *kvm_thread_err;

	/* Host CPUs of the vCPU threads and the others (affinity.h): set by
	 * the caller before vm_run(), changed by the API. */
	struct vm_affinity affinity;

	/* Its disks' image locks (image-lock.h), each disk's own; changed by
	 * the VMM thread or before it runs.  defer_image_locks: a VM built for
	 * an incoming migration opens its images without them, and takes them
	 * once its source has let them go. */
	struct image_lock *image_locks;
	bool defer_image_locks;
};

/* A VM with its core and nothing else: the VMM thread's loop, signals,
 * exit requests.  The machine builder (machine.h) gives it KVM, memory,
 * devices and vCPUs; vm_free() releases only what vm_new() made. */
int vm_new(struct vm **ret, const struct vm_config *cfg, struct err **e) MUST_CHECK;
void vm_free(struct vm *vm);
/* Start the vCPUs and run the VMM thread's loop until the VM stops;
 * returns the process exit status to use.  Every vCPU thread has been
 * joined when it returns.  A VM without vCPUs yet (waiting for a
 * snapshot) runs its loop until it gets them. */
int vm_run(struct vm *vm, struct err **e) MUST_CHECK;

/*
 * Any thread but the VMM thread (the API's, the migration's): run
 * fn(vm, arg) on the VMM thread, between two rounds of its loop, and
 * wait for it.  This is the one way another thread acts on a running VM
 * (reads its state, pauses it, changes it).  Returns fn's result, or
 * -ESHUTDOWN when the VM has stopped (fn did not run).
 */
typedef int (*vm_call_fn)(struct vm *vm, void *arg);
int vm_call(struct vm *vm, vm_call_fn fn, void *arg) MUST_CHECK;

/* Called from any thread: ask the VMM loop to end the VM.  Only the
 * first request counts. */
void vm_request_exit(struct vm *vm, enum vm_exit_reason reason);
/* A vCPU or device thread reports a fatal error (message is copied). */
void vm_fail(struct vm *vm, const char *fmt, ...) PRINTF_FMT(2, 3);
/* Add a created device to the VM (which destroys it). */
void vm_add_device(struct vm *vm, struct device *dev);
/* Assert (level 1) or deassert an interrupt line (GSI). */
void vm_set_irq(struct vm *vm, unsigned gsi, int level);

const char *vm_exit_reason_name(enum vm_exit_reason r);
const char *vm_state_name(enum vm_state s);

/* VMM thread: stop every vCPU (and device thread) where it is, so that
 * the VM's state can be read or written; resume lets them go again.
 * Both return 0 or -errno; pausing a paused VM does nothing. */
int vm_pause(struct vm *vm) MUST_CHECK;
int vm_resume(struct vm *vm) MUST_CHECK;

#endif
