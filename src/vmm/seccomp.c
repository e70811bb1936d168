#include "vmm/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/kvm.h>
#include <linux/if_tun.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ucontext.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/sigsafe.h"
#include "common/thread.h"
#include "vmm/syscall-names.h"

/* The lists.  A syscall is here because a thread of that kind makes it
 * (read from the code, checked by --seccomp log runs of the kvm and linux
 * suites);
 * docs/vmm.md says why for each group.  mmap and mprotect are allowed to
 * every kind, never with PROT_EXEC (nothing maps code after start-up);
 * ioctl only with the request numbers of the kind; socket only with the
 * families of the kind. */

/* Every thread: its own life (glibc's pthread exit, malloc arenas, the
 * locks, logging to stderr, the kick signal's return).  Waiting is not
 * here: a vCPU thread waits only in KVM_RUN. */
static const int base_syscalls[] = {
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(close),
    SCMP_SYS(futex),
    SCMP_SYS(madvise),
    SCMP_SYS(munmap),
    SCMP_SYS(brk),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
#if defined(__SANITIZE_ADDRESS__)
    /* the sanitizer's per-thread alternate signal stack, taken down at
     * thread exit, and its allocator's spin lock under contention */
    SCMP_SYS(sigaltstack),
    SCMP_SYS(sched_yield),
#endif
};

/* Threads that wait on an epoll set: every device thread, the VMM
 * thread's loop, libmicrohttpd's pool. */
#define EPOLL_WAIT_SYSCALLS SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait)

/* Threads that poll and sleep: the VMM thread (the API's stop waits for
 * its last answers), the migration (its stream), the API
 * (libmicrohttpd). */
#define POLL_SLEEP_SYSCALLS                                                                                            \
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(sched_yield)

/* Threads that start threads (pthread_create and what the new thread does
 * before its start function). */
#define SPAWN_SYSCALLS SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(set_robust_list), SCMP_SYS(rseq)

static const int vcpu_syscalls[] = {
    SCMP_SYS(ioctl),
    /* the RTC's periodic timer, set by a register write */
    SCMP_SYS(timerfd_settime),
    /* a kick (SIGUSR1) still pending is taken with sigtimedwait() */
    SCMP_SYS(rt_sigtimedwait),
    /* fw_cfg's INITRD_DATA reads the initrd's open file */
    SCMP_SYS(pread64),
    /* a device reset or activation waits for its device thread */
    SCMP_SYS(epoll_ctl),
};
static const unsigned long vcpu_ioctls[] = {
    KVM_RUN,	       KVM_GET_REGS,	    KVM_SET_REGS,	 KVM_GET_SREGS,	    KVM_SET_SREGS,
    KVM_GET_MSRS,      KVM_SET_MSRS,	    KVM_GET_MP_STATE,	 KVM_SET_MP_STATE,  KVM_GET_LAPIC,
    KVM_SET_LAPIC,     KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_GET_FPU,	    KVM_SET_FPU,
    KVM_GET_XSAVE,     KVM_SET_XSAVE,	    KVM_GET_XCRS,	 KVM_SET_XCRS,	    KVM_GET_DEBUGREGS,
    KVM_SET_DEBUGREGS, KVM_IRQ_LINE,	    KVM_SIGNAL_MSI,	 KVM_KVMCLOCK_CTRL,
};

/* Plain device threads: epoll on their eventfds, timers, the guest's
 * entropy (virtio-rng), balloon pages given back (madvise, in base;
 * sysinfo for qsort;
 * fallocate punches them out of a shared memory file), virtio-console on a
 * socket (accept4, sendmsg, recv as recvfrom). */
static const int device_syscalls[] = {
    EPOLL_WAIT_SYSCALLS,
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(getrandom),
    SCMP_SYS(accept4),
    SCMP_SYS(recvfrom),
    SCMP_SYS(sendmsg),
    SCMP_SYS(fallocate),
    /* glibc's qsort() (virtio-balloon sorts each request's page numbers)
     * asks for the RAM size before it allocates its buffer */
    SCMP_SYS(sysinfo),
};

static const int blk_syscalls[] = {
    EPOLL_WAIT_SYSCALLS,	 SCMP_SYS(epoll_ctl), SCMP_SYS(timerfd_settime), SCMP_SYS(io_uring_enter),
    SCMP_SYS(io_uring_register), SCMP_SYS(preadv),    SCMP_SYS(pwritev),	 SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),		 SCMP_SYS(fsync),     SCMP_SYS(fdatasync),	 SCMP_SYS(fallocate),
};

static const int net_syscalls[] = {EPOLL_WAIT_SYSCALLS, SCMP_SYS(epoll_ctl), SCMP_SYS(timerfd_settime),
				   SCMP_SYS(ioctl)};
static const unsigned long net_ioctls[] = {TUNSETOFFLOAD, TUNSETVNETHDRSZ};

static const int vsock_syscalls[] = {
    EPOLL_WAIT_SYSCALLS, SCMP_SYS(epoll_ctl),  SCMP_SYS(timerfd_settime), SCMP_SYS(socket),  SCMP_SYS(connect),
    SCMP_SYS(accept4),	 SCMP_SYS(recvfrom),   SCMP_SYS(sendto),	  SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
    SCMP_SYS(shutdown),	 SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),	  SCMP_SYS(fcntl),   SCMP_SYS(ioctl),
};
static const unsigned long vsock_ioctls[] = {FIONREAD, TIOCOUTQ};
static const int unix_family[] = {AF_UNIX};

/* virtio-fs serves the guest's file system calls on the shared directory:
 * the file syscalls are the device. */
static const int fs_syscalls[] = {
    EPOLL_WAIT_SYSCALLS,
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(openat),
    SCMP_SYS(openat2),
    SCMP_SYS(syncfs),
    SCMP_SYS(newfstatat),
    SCMP_SYS(fstat),
    SCMP_SYS(statx),
    SCMP_SYS(fstatfs),
    SCMP_SYS(getdents64),
    SCMP_SYS(lseek),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(mkdirat),
    SCMP_SYS(mknodat),
    SCMP_SYS(unlinkat),
    SCMP_SYS(renameat),
    SCMP_SYS(renameat2),
    SCMP_SYS(linkat),
    SCMP_SYS(symlinkat),
    SCMP_SYS(readlinkat),
    SCMP_SYS(fchmod),
    SCMP_SYS(fchmodat),
    SCMP_SYS(fchown),
    SCMP_SYS(fchownat),
    SCMP_SYS(utimensat),
    SCMP_SYS(ftruncate),
    SCMP_SYS(fallocate),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(fcntl),
    SCMP_SYS(dup),
    SCMP_SYS(flock),
    SCMP_SYS(copy_file_range),
    SCMP_SYS(fgetxattr),
    SCMP_SYS(fsetxattr),
    SCMP_SYS(flistxattr),
    SCMP_SYS(fremovexattr),
    SCMP_SYS(getxattr),
    SCMP_SYS(setxattr),
    SCMP_SYS(listxattr),
    SCMP_SYS(removexattr),
    SCMP_SYS(lgetxattr),
    SCMP_SYS(lsetxattr),
    SCMP_SYS(llistxattr),
    SCMP_SYS(lremovexattr),
    /* set-ID bits and mode changes through /proc/self/fd/N of an O_PATH fd */
    SCMP_SYS(chmod),
};

/* libmicrohttpd: its pool of threads accepts and serves clients with epoll
 * and hands each action to the VMM thread. */
static const int api_syscalls[] = {
    SPAWN_SYSCALLS,
    EPOLL_WAIT_SYSCALLS,
    POLL_SLEEP_SYSCALLS,
    SCMP_SYS(accept4),
    SCMP_SYS(accept),
    SCMP_SYS(recvfrom),
    SCMP_SYS(sendto),
    SCMP_SYS(recvmsg),
    SCMP_SYS(sendmsg),
    SCMP_SYS(shutdown),
    SCMP_SYS(getsockopt),
    SCMP_SYS(setsockopt),
    SCMP_SYS(getsockname),
    SCMP_SYS(getpeername),
    SCMP_SYS(fcntl),
    SCMP_SYS(select),
    SCMP_SYS(pselect6),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(epoll_create1),
    SCMP_SYS(eventfd2),
    SCMP_SYS(pipe2),
    SCMP_SYS(ioctl),
    SCMP_SYS(prctl),
    /* json-c seeds its hash tables */
    SCMP_SYS(getrandom),
};
static const unsigned long api_ioctls[] = {FIONBIO, FIONREAD};

/* The migration sender: connects to the destination (a numeric address:
 * names are resolved by the client, stream.c), reads dirty logs, writes
 * the stream.  No file is opened: the VM's state it saves is in memory. */
static const int migration_syscalls[] = {
    POLL_SLEEP_SYSCALLS,   SCMP_SYS(socket),	  SCMP_SYS(connect),   SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),
    SCMP_SYS(sendto),	   SCMP_SYS(sendmsg),	  SCMP_SYS(recvfrom),  SCMP_SYS(recvmsg),    SCMP_SYS(shutdown),
    SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(fstat),     SCMP_SYS(newfstatat), SCMP_SYS(fcntl),
    SCMP_SYS(lseek),	   SCMP_SYS(ioctl),	  SCMP_SYS(epoll_ctl), SCMP_SYS(prctl),	     SCMP_SYS(bind),
};
static const int net_families[] = {AF_UNIX, AF_INET, AF_INET6};

/* The VMM thread: its loop (epoll, signalfd, timers), the actions of the
 * control plane (pause, snapshots written and loaded, devices started),
 * the start of a migration, taking the VM down at the end.  The threads
 * it starts after its filter (the migration's) inherit this list. */
static const int vmm_syscalls[] = {
    SPAWN_SYSCALLS,
    EPOLL_WAIT_SYSCALLS,
    POLL_SLEEP_SYSCALLS,
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(timerfd_create),
    SCMP_SYS(eventfd2),
    SCMP_SYS(signalfd4),
    SCMP_SYS(tgkill),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(openat),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(statx),
    SCMP_SYS(lseek),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(ftruncate),
    SCMP_SYS(fallocate),
    SCMP_SYS(mkdirat),
    SCMP_SYS(mkdir),
    SCMP_SYS(unlinkat),
    SCMP_SYS(unlink),
    SCMP_SYS(renameat2),
    SCMP_SYS(rename),
    SCMP_SYS(getdents64),
    SCMP_SYS(fcntl),
    SCMP_SYS(dup),
    SCMP_SYS(pipe2),
    SCMP_SYS(socket),
    SCMP_SYS(connect),
    SCMP_SYS(bind),
    SCMP_SYS(listen),
    SCMP_SYS(accept4),
    SCMP_SYS(setsockopt),
    SCMP_SYS(getsockopt),
    SCMP_SYS(sendto),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvfrom),
    SCMP_SYS(recvmsg),
    SCMP_SYS(shutdown),
    SCMP_SYS(getsockname),
    SCMP_SYS(getpeername),
    SCMP_SYS(uname),
    SCMP_SYS(io_uring_enter),
    SCMP_SYS(io_uring_setup),
    SCMP_SYS(io_uring_register),
    SCMP_SYS(ioctl),
    SCMP_SYS(select),
    SCMP_SYS(pselect6),
    SCMP_SYS(getrandom),
    /* PATCH /vm/affinity moves threads between host CPUs (affinity.c) */
    SCMP_SYS(sched_setaffinity),
    SCMP_SYS(sched_getaffinity),
    /* --cgroup: the cgroup the VMM made goes when the VM has ended (cgroup.c) */
    SCMP_SYS(rmdir),
    /* guest memory built by a snapshot's load (--wait): --memory's memfd,
     * hugetlbfs file (fstatfs), NUMA policy; a file-backed guest's
     * snapshot flushes its file */
    SCMP_SYS(memfd_create),
    SCMP_SYS(mbind),
    SCMP_SYS(fstatfs),
    SCMP_SYS(msync),
    /* the threads it starts (the migration's) name themselves and
     * install their own filter under this one */
    SCMP_SYS(prctl),
    SCMP_SYS(seccomp),
};
static const unsigned long vmm_ioctls[] = {
    /* the VM: devices, interrupts, memory, state of snapshots and migrations */
    KVM_CHECK_EXTENSION,
    KVM_IRQ_LINE,
    KVM_IRQFD,
    KVM_IOEVENTFD,
    KVM_SET_USER_MEMORY_REGION,
    KVM_GET_DIRTY_LOG,
    KVM_GET_IRQCHIP,
    KVM_SET_IRQCHIP,
    KVM_GET_PIT2,
    KVM_SET_PIT2,
    KVM_GET_CLOCK,
    KVM_SET_CLOCK,
    KVM_SIGNAL_MSI,
    /* parked vCPUs' state (snapshots, migration) */
    KVM_GET_REGS,
    KVM_SET_REGS,
    KVM_GET_SREGS,
    KVM_SET_SREGS,
    KVM_GET_MSRS,
    KVM_SET_MSRS,
    KVM_GET_MP_STATE,
    KVM_SET_MP_STATE,
    KVM_GET_LAPIC,
    KVM_SET_LAPIC,
    KVM_GET_VCPU_EVENTS,
    KVM_SET_VCPU_EVENTS,
    KVM_GET_FPU,
    KVM_SET_FPU,
    KVM_GET_XSAVE,
    KVM_SET_XSAVE,
    KVM_GET_XCRS,
    KVM_SET_XCRS,
    KVM_GET_DEBUGREGS,
    KVM_SET_DEBUGREGS,
    KVM_GET_TSC_KHZ,
    KVM_SET_TSC_KHZ,
    KVM_GET_CPUID2,
    KVM_SET_CPUID2,
    /* the console's terminal, TAP offloads, disk sizes */
    TCGETS,
    TCSETS,
    TCSETSW,
    TCSETSF,
    TIOCGWINSZ,
    FIONREAD,
    FIONBIO,
    TUNSETOFFLOAD,
    TUNSETVNETHDRSZ,
};

struct kind_table {
	const char *name;
	const int *syscalls;
	unsigned nsyscalls;
	const unsigned long *ioctls;
	unsigned nioctls;
	const int *families; /* socket(): NULL for any when socket is listed */
	unsigned nfamilies;
};

#define LIST(a) a, ARRAY_SIZE(a)
static const struct kind_table kinds[VMM_THREAD_KINDS] = {
    [VMM_THREAD_DEVICE] = {"device", LIST(device_syscalls), NULL, 0, NULL, 0},
    [VMM_THREAD_VCPU] = {"vcpu", LIST(vcpu_syscalls), LIST(vcpu_ioctls), NULL, 0},
    [VMM_THREAD_API] = {"api", LIST(api_syscalls), LIST(api_ioctls), NULL, 0},
    /* The sender saves the paused VM's device and vCPU state: the VMM's requests. */
    [VMM_THREAD_MIGRATION] = {"migration", LIST(migration_syscalls), LIST(vmm_ioctls), LIST(net_families)},
    [VMM_THREAD_VMM] = {"vmm", LIST(vmm_syscalls), LIST(vmm_ioctls), LIST(net_families)},
    [VMM_THREAD_BLK] = {"virtio-blk", LIST(blk_syscalls), NULL, 0, NULL, 0},
    [VMM_THREAD_NET] = {"virtio-net", LIST(net_syscalls), LIST(net_ioctls), NULL, 0},
    [VMM_THREAD_VSOCK] = {"virtio-vsock", LIST(vsock_syscalls), LIST(vsock_ioctls), LIST(unix_family)},
    [VMM_THREAD_FS] = {"virtio-fs", LIST(fs_syscalls), NULL, 0, NULL, 0},
};

/* The syscall the SIGSYS handler makes to die by the signal: in no list
 * (checked by vmm_seccomp_init()), harmless were it ever allowed. */
#define FATAL_SYSCALL SCMP_SYS(uselib)

#ifdef PR_SET_VMA
#define PR_SET_VMA_ID PR_SET_VMA
#else
#define PR_SET_VMA_ID 0x53564d41
#endif

static enum vmm_seccomp_mode mode = VMM_SECCOMP_OFF;
static bool initialized;
static __thread const char *thread_kind_name;

#ifdef CASULO_TEST_HOOKS
/* Tests: CASULO_SECCOMP_PROBE=KIND makes each thread of that kind try a
 * syscall outside every list (personality(), a query) right after its
 * filter is in: with --seccomp on the VMM must die of it. */
static const char *probe_kind;

static void probe(enum vmm_thread_kind kind)
{
	if (probe_kind && strcmp(probe_kind, kinds[kind].name) == 0)
		syscall(SYS_personality, 0xffffffffUL);
}
#else
static void probe(enum vmm_thread_kind kind)
{
	(void)kind;
}
#endif

int vmm_seccomp_parse_mode(const char *s, enum vmm_seccomp_mode *m)
{
	if (strcmp(s, "on") == 0)
		*m = VMM_SECCOMP_ON;
	else if (strcmp(s, "log") == 0)
		*m = VMM_SECCOMP_LOG;
	else if (strcmp(s, "off") == 0)
		*m = VMM_SECCOMP_OFF;
	else
		return -1;
	return 0;
}

const char *vmm_thread_kind_name(enum vmm_thread_kind kind)
{
	return kind < VMM_THREAD_KINDS ? kinds[kind].name : "?";
}

enum vmm_seccomp_mode vmm_seccomp_mode(void)
{
	return initialized ? mode : VMM_SECCOMP_OFF;
}

static bool listed(const int *list, unsigned n, int nr)
{
	for (unsigned i = 0; i < n; i++)
		if (list[i] == nr)
			return true;
	return false;
}

unsigned vmm_seccomp_count(enum vmm_thread_kind kind)
{
	const struct kind_table *k = &kinds[kind];
	unsigned n = ARRAY_SIZE(base_syscalls) + 2; /* mmap, mprotect */

	for (unsigned i = 0; i < k->nsyscalls; i++)
		n += !listed(base_syscalls, ARRAY_SIZE(base_syscalls), k->syscalls[i]);
	return n;
}

/* A filtered thread made a syscall outside its list: name both, then die
 * by SIGSYS.  The second forbidden syscall, made while SIGSYS is blocked
 * in this handler, makes the kernel deliver the signal with its default
 * action: the process ends as by SECCOMP_RET_KILL_PROCESS, its parent sees
 * 128+31. */
static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	char msg[256];
	size_t len = 0;
	int nr = si->si_syscall;

	(void)sig;
	(void)ctx;
	sigsafe_append(msg, sizeof(msg), &len, "casulo-vmm: seccomp: the ");
	sigsafe_append(msg, sizeof(msg), &len, thread_kind_name ? thread_kind_name : "?");
	sigsafe_append(msg, sizeof(msg), &len, " thread made a system call outside its list: ");
	if (nr >= 0 && nr < VMM_SYSCALL_NAMES && vmm_syscall_names[nr]) {
		sigsafe_append(msg, sizeof(msg), &len, vmm_syscall_names[nr]);
		sigsafe_append(msg, sizeof(msg), &len, " (");
		sigsafe_append_long(msg, sizeof(msg), &len, nr);
		sigsafe_append(msg, sizeof(msg), &len, ")");
#if defined(__x86_64__)
		/* the first argument tells an ioctl's request or a prctl's option */
		sigsafe_append(msg, sizeof(msg), &len, " with first argument ");
		sigsafe_append_long(msg, sizeof(msg), &len, (long)((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RDI]);
#endif
	} else {
		sigsafe_append_long(msg, sizeof(msg), &len, nr);
	}
	sigsafe_append(msg, sizeof(msg), &len, "; the VMM ends (SIGSYS)\n");
	(void)!write(STDERR_FILENO, msg, len);
	syscall(FATAL_SYSCALL, NULL);
	syscall(SYS_exit_group, 128 + SIGSYS); /* not reached */
}

int vmm_seccomp_init(enum vmm_seccomp_mode m, struct err **e)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};

	for (unsigned k = 0; k < VMM_THREAD_KINDS; k++)
		if (listed(kinds[k].syscalls, kinds[k].nsyscalls, FATAL_SYSCALL))
			return err_setx(e, EINVAL, "seccomp: the %s list allows the syscall that ends the VMM",
					kinds[k].name);
	mode = m;
	initialized = true;
	/* glibc reads /etc/localtime at its first time conversion (gmtime_r()
	 * and timegm() too): here, not in a filtered thread. */
	tzset();
	/* glibc's malloc opens files in whichever thread happens to need them,
	 * under that thread's filter (most lists have no openat: the VMM died
	 * of it): /sys/devices/system/cpu/online when a ninth arena is made, to
	 * count the CPUs, and /proc/sys/vm/overcommit_memory the first time a
	 * thread's heap is trimmed.  The arena limit set here, at glibc's own
	 * default, and heaps never trimmed (the VMM's heap is small: guest RAM
	 * is mapped apart, large blocks are mmap()ed and unmapped), malloc
	 * reads nothing later. */
	mallopt(M_ARENA_MAX, 8 * MAX(get_nprocs(), 1));
	mallopt(M_TRIM_THRESHOLD, INT_MAX);
#ifdef CASULO_TEST_HOOKS
	probe_kind = getenv("CASULO_SECCOMP_PROBE");
#endif
	/* no_new_privs once for every thread to come: a thread that installs
	 * its filter under an inherited one (the migration's) needs no prctl. */
	if (mode != VMM_SECCOMP_OFF && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_set(e, errno, "seccomp: no_new_privs");
	if (mode != VMM_SECCOMP_ON)
		return 0;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return err_set(e, errno, "seccomp: SIGSYS handler");
	return 0;
}

/* Filters compiled ahead of their threads: BPF programs for seccomp(2). */
enum prepare_state { NOT_PREPARED, PREPARING, PREPARED };
static pthread_mutex_t prepare_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t prepare_done = PTHREAD_COND_INITIALIZER;
static enum prepare_state prepare_state[VMM_THREAD_KINDS];
static struct sock_fprog prepared[VMM_THREAD_KINDS];

static int add_rules(scmp_filter_ctx ctx, const struct kind_table *k)
{
	int r = 0;

	for (unsigned i = 0; r == 0 && i < ARRAY_SIZE(base_syscalls); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, base_syscalls[i], 0);
	for (unsigned i = 0; r == 0 && i < k->nsyscalls; i++) {
		int nr = k->syscalls[i];

		if (listed(base_syscalls, ARRAY_SIZE(base_syscalls), nr))
			continue;
		if (nr == SCMP_SYS(ioctl)) {
			for (unsigned j = 0; r == 0 && j < k->nioctls; j++)
				r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
						     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, k->ioctls[j]));
		} else if (nr == SCMP_SYS(prctl)) {
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
		} else if (nr == SCMP_SYS(socket) && k->families) {
			for (unsigned j = 0; r == 0 && j < k->nfamilies; j++)
				r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
						     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)k->families[j]));
		} else {
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		}
	}
	/* glibc names the anonymous mappings of a new malloc heap. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_VMA_ID));
	/* No new code: nothing maps or makes executable memory after start-up. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	return r;
}

/* The filter of a kind, as libseccomp builds it; NULL on failure (r). */
static scmp_filter_ctx build_filter(enum vmm_thread_kind kind, int *r)
{
	scmp_filter_ctx ctx = seccomp_init(mode == VMM_SECCOMP_ON ? SCMP_ACT_TRAP : SCMP_ACT_LOG);

	if (ctx == NULL) {
		*r = -ENOMEM;
		return NULL;
	}
	*r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (*r == 0)
		*r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); /* set by vmm_seccomp_init() */
	if (*r == 0)
		*r = add_rules(ctx, &kinds[kind]);
	if (*r < 0) {
		seccomp_release(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * A vCPU thread makes one syscall per guest exit, ioctl(KVM_RUN), and
 * libseccomp's program reaches it last: the plain syscalls come first,
 * then the ioctl requests in descending order, KVM_RUN the smallest (some
 * 65 instructions; 3 us of each exit in the lab, whose L1 kernel runs
 * under TCG).  These instructions in front of that program allow exactly
 * that call at once; anything else falls through to it.  The request is
 * compared on its low 32 bits, as libseccomp's rules do (the kernel takes
 * it as an unsigned int).
 */
#define FAST_PATH_LEN 7
static void fast_path(struct sock_filter out[FAST_PATH_LEN], uint32_t nr, uint32_t request)
{
	const struct sock_filter insns[FAST_PATH_LEN] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 5),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 3),
	    /* x86-64 is little-endian: the argument's low half comes first */
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, request, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};

	memcpy(out, insns, sizeof(insns));
}

/* The BPF program seccomp_load() would load, exported through a memfd;
 * a vCPU's with the fast path in front. */
static int compile_filter(enum vmm_thread_kind kind, struct sock_fprog *prog)
{
	int r, fd;
	scmp_filter_ctx ctx = build_filter(kind, &r);
	off_t size;
	size_t skip = kind == VMM_THREAD_VCPU ? FAST_PATH_LEN : 0;

	if (ctx == NULL)
		return r;
	fd = memfd_create("casulo-seccomp", MFD_CLOEXEC);
	r = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	size = r == 0 ? lseek(fd, 0, SEEK_END) : -1;
	if (r == 0 && (size <= 0 || size % (off_t)sizeof(struct sock_filter) ||
		       size / (off_t)sizeof(struct sock_filter) + (off_t)skip > BPF_MAXINSNS))
		r = -EINVAL;
	if (r == 0) {
		prog->filter = malloc((size_t)size + skip * sizeof(struct sock_filter));
		prog->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter) + (off_t)skip);
		if (prog->filter == NULL || pread(fd, prog->filter + skip, (size_t)size, 0) != size) {
			free(prog->filter);
			prog->filter = NULL;
			r = -EIO;
		} else if (skip) {
			fast_path(prog->filter, SCMP_SYS(ioctl), KVM_RUN);
		}
	}
	if (fd >= 0)
		close(fd);
	return r;
}

static void prepare(enum vmm_thread_kind kind)
{
	struct sock_fprog prog = {0};
	int r;

	pthread_mutex_lock(&prepare_lock);
	if (prepare_state[kind] != NOT_PREPARED) {
		pthread_mutex_unlock(&prepare_lock);
		return;
	}
	prepare_state[kind] = PREPARING;
	pthread_mutex_unlock(&prepare_lock);
	r = compile_filter(kind, &prog);
	pthread_mutex_lock(&prepare_lock);
	prepared[kind] = prog;
	prepare_state[kind] = r == 0 ? PREPARED : NOT_PREPARED;
	pthread_cond_broadcast(&prepare_done);
	pthread_mutex_unlock(&prepare_lock);
}

static void *prepare_thread(void *arg)
{
	(void)arg;
	prepare(VMM_THREAD_VCPU);
	prepare(VMM_THREAD_VMM);
	prepare(VMM_THREAD_DEVICE);
	return NULL;
}

static pthread_t prepare_tid;
static bool prepare_started;

void vmm_seccomp_prepare_start(void)
{
	if (initialized && mode != VMM_SECCOMP_OFF && !prepare_started)
		prepare_started = thread_start(&prepare_tid, prepare_thread, NULL) == 0;
}

void vmm_seccomp_prepare_join(void)
{
	if (prepare_started)
		pthread_join(prepare_tid, NULL);
	prepare_started = false;
}

/* The prepared program of a kind, once it is there; NULL if none is. */
static const struct sock_fprog *prepared_filter(enum vmm_thread_kind kind)
{
	const struct sock_fprog *prog;

	pthread_mutex_lock(&prepare_lock);
	while (prepare_state[kind] == PREPARING)
		pthread_cond_wait(&prepare_done, &prepare_lock);
	prog = prepare_state[kind] == PREPARED ? &prepared[kind] : NULL;
	pthread_mutex_unlock(&prepare_lock);
	return prog;
}

int vmm_seccomp_install(enum vmm_thread_kind kind, struct err **e)
{
	const struct sock_fprog *prog;
	int r;

	if (!initialized || mode == VMM_SECCOMP_OFF)
		return 0;
	if (kind >= VMM_THREAD_KINDS)
		return err_setx(e, EINVAL, "seccomp: no list for thread kind %d", (int)kind);
	prog = prepared_filter(kind);
	thread_kind_name = kinds[kind].name;
	if (prog) {
		r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0 ? -errno : 0;
	} else {
		/* not prepared (its compile failed, or none was started):
		 * compiled here, the same program */
		struct sock_fprog own = {0};

		r = compile_filter(kind, &own);
		if (r == 0)
			r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &own) < 0 ? -errno : 0;
		free(own.filter);
	}
	if (r < 0)
		return err_set(e, -r, "seccomp: %s thread: install filter", kinds[kind].name);
	probe(kind);
	return 0;
}
