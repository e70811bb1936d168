/* Per-thread seccomp allowlists of the VMM (libseccomp).
 *
 * Every thread of casulo-vmm installs the filter of its kind in the
 * function that starts it (docs/ARCHITECTURE.md, the thread table), after
 * it named itself and before it touches guest data.  The tables, one per
 * kind, are in seccomp.c and listed with their reasons in docs/vmm.md.
 *
 * A filter stacks on the filters of the thread that created the thread:
 * a thread the VMM thread starts after its own filter is in (the migration
 * thread) can only narrow the VMM thread's list.  vm_run() therefore
 * installs the VMM thread's filter after it started the vCPUs. */
#ifndef CASULO_VMM_SECCOMP_H
#define CASULO_VMM_SECCOMP_H

#include "common/err.h"

enum vmm_seccomp_mode {
	VMM_SECCOMP_ON,	 /* a syscall outside the list kills the process */
	VMM_SECCOMP_LOG, /* allowed, but the kernel logs it (audit type 1326): diagnosis */
	VMM_SECCOMP_OFF, /* no filters (casulo-vmm's default for now: docs/vmm.md) */
};

/* The narrowest first: a virtio model that names no kind gets the plain
 * device list. */
enum vmm_thread_kind {
	VMM_THREAD_DEVICE,    /* a virtio device thread (rng, console, balloon) */
	VMM_THREAD_VCPU,      /* KVM_RUN and exit handling */
	VMM_THREAD_API,	      /* libmicrohttpd's listener and connection threads */
	VMM_THREAD_MIGRATION, /* the outgoing migration's sender */
	VMM_THREAD_VMM,	      /* the VMM thread: event loop, actions, snapshots */
	VMM_THREAD_BLK,	      /* virtio-blk's device thread (io_uring) */
	VMM_THREAD_NET,	      /* virtio-net's device thread (TAP) */
	VMM_THREAD_VSOCK,     /* virtio-vsock's device thread (Unix sockets) */
	VMM_THREAD_FS,	      /* virtio-fs's device thread (the FUSE server) */
	VMM_THREAD_KINDS,
};

/* "on", "log" or "off" into *mode: 0, or -1 for anything else. */
int vmm_seccomp_parse_mode(const char *s, enum vmm_seccomp_mode *mode);

/* Once, before any thread starts: the mode of every later
 * vmm_seccomp_install(), and (mode on) the SIGSYS handler that names the
 * thread and the syscall before the process dies. */
int vmm_seccomp_init(enum vmm_seccomp_mode mode, struct err **e);

enum vmm_seccomp_mode vmm_seccomp_mode(void);

/* The calling thread's filter for its kind (nothing when the mode is off
 * or vmm_seccomp_init() was never called: unit tests).  A filter that
 * vmm_seccomp_prepare_start() compiled is loaded as it is (waiting for it
 * if it is being compiled); any other is compiled here. */
int vmm_seccomp_install(enum vmm_thread_kind kind, struct err **e);

/* After vmm_seccomp_init(): compile, on a thread of its own, the filters
 * of the threads every VM starts (vCPU, VMM, device), so that a vCPU
 * enters the guest without building its filter first (libseccomp takes
 * milliseconds to, tens of them in the lab).  Nothing when the mode is
 * off; a failure here only means install compiles the filter itself. */
void vmm_seccomp_prepare_start(void);
/* That thread gone (the VMM thread, once the VM runs: an unfiltered
 * thread never lingers beside the filtered ones). */
void vmm_seccomp_prepare_join(void);

const char *vmm_thread_kind_name(enum vmm_thread_kind kind);

/* How many syscalls a kind's list allows (docs, tests). */
unsigned vmm_seccomp_count(enum vmm_thread_kind kind);

#endif
