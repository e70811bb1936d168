/* The per-thread seccomp lists (src/vmm/seccomp.c): each case runs in a
 * child process that installs a list on a thread, makes one syscall and
 * reports; a syscall outside the list must end the child by SIGSYS with
 * the message naming the thread kind and the syscall. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/thread.h"
#include "test.h"
#include "vmm/seccomp.h"

enum probe {
	PROBE_PERSONALITY,
	PROBE_GETPID,
	PROBE_IOCTL_FIONREAD,
	PROBE_IOCTL_TUNSETIFF,
	PROBE_MMAP_EXEC,
	PROBE_IOCTL_KVM_RUN,	  /* a vCPU's fast path (seccomp.c) */
	PROBE_IOCTL_KVM_RUN_NEXT, /* the request after it: not on any list */
	PROBE_IOCTL_KVM_GET_REGS, /* on the vCPU's list, behind the fast path */
};

struct job {
	enum vmm_thread_kind kind;
	enum probe probe;
};

static void *filtered_thread(void *arg)
{
	struct job *j = arg;
	struct err *e = NULL;
	int n = 0;

	if (vmm_seccomp_install(j->kind, &e) < 0) {
		fprintf(stderr, "install: %s\n", e->msg);
		_exit(90);
	}
	switch (j->probe) {
	case PROBE_PERSONALITY:
		syscall(SYS_personality, 0xffffffffUL);
		break;
	case PROBE_GETPID:
		syscall(SYS_getpid);
		break;
	case PROBE_IOCTL_FIONREAD:
		ioctl(0, FIONREAD, &n);
		break;
	case PROBE_IOCTL_TUNSETIFF:
		ioctl(0, TUNSETIFF, NULL);
		break;
	case PROBE_MMAP_EXEC:
		mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		break;
	/* on stdin, not a vCPU: the kernel answers ENOTTY if the filter lets
	 * the call through */
	case PROBE_IOCTL_KVM_RUN:
		ioctl(0, KVM_RUN, 0);
		break;
	case PROBE_IOCTL_KVM_RUN_NEXT:
		ioctl(0, KVM_RUN + 1, 0);
		break;
	case PROBE_IOCTL_KVM_GET_REGS:
		ioctl(0, KVM_GET_REGS, NULL);
		break;
	}
	return NULL;
}

/* Run body(arg) in a child process whose stderr is collected: returns
 * the child's wait status, its stderr in err.  body ends with _exit(). */
static int run_child(void (*body)(const void *arg), const void *arg, char *err, size_t len)
{
	int pipefd[2], status = 0;
	ssize_t got = 0, n;
	pid_t pid;

	CHECK_INT(pipe(pipefd), ==, 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], 2);
		body(arg);
		_exit(0);
	}
	close(pipefd[1]);
	while ((size_t)got + 1 < len && (n = read(pipefd[0], err + got, len - 1 - (size_t)got)) > 0)
		got += n;
	err[got] = '\0';
	close(pipefd[0]);
	CHECK_INT(waitpid(pid, &status, 0), ==, pid);
	return status;
}

struct probe_run {
	enum vmm_seccomp_mode mode;
	struct job job;
};

static void probe_child(const void *arg)
{
	const struct probe_run *run = arg;
	struct job j = run->job;
	struct err *e = NULL;
	pthread_t t;

	if (vmm_seccomp_init(run->mode, &e) < 0 || thread_start(&t, filtered_thread, &j) != 0)
		_exit(91);
	pthread_join(t, NULL);
	_exit(0);
}

/* Run the probe on a thread of kind in a child with the given mode:
 * returns the child's wait status, its stderr in err. */
static int run_probe(enum vmm_seccomp_mode mode, enum vmm_thread_kind kind, enum probe probe, char *err, size_t len)
{
	struct probe_run run = {mode, {kind, probe}};

	return run_child(probe_child, &run, err, len);
}

static void check_killed(int status, const char *err, const char *want)
{
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
		test_fail_at(__FILE__, __LINE__, "status 0x%x, expected death by SIGSYS; stderr: %s", status, err);
	CHECK_CONTAINS(err, want);
}

static void check_ran(int status, const char *err)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		test_fail_at(__FILE__, __LINE__, "status 0x%x, expected exit 0; stderr: %s", status, err);
}

TEST(syscall_outside_the_list_ends_the_process_with_its_name)
{
	char err[512];

	check_killed(run_probe(VMM_SECCOMP_ON, VMM_THREAD_VCPU, PROBE_PERSONALITY, err, sizeof(err)), err,
		     "casulo-vmm: seccomp: the vcpu thread made a system call outside its list: personality (135)");
	check_killed(run_probe(VMM_SECCOMP_ON, VMM_THREAD_FS, PROBE_PERSONALITY, err, sizeof(err)), err,
		     "the virtio-fs thread made a system call outside its list: personality");
}

TEST(syscall_on_the_list_runs)
{
	char err[512];

	for (unsigned k = 0; k < VMM_THREAD_KINDS; k++)
		check_ran(run_probe(VMM_SECCOMP_ON, k, PROBE_GETPID, err, sizeof(err)), err);
}

TEST(ioctl_is_filtered_by_request)
{
	char err[512];

	/* virtio-vsock may ask how much a socket holds, never configure a TAP. */
	check_ran(run_probe(VMM_SECCOMP_ON, VMM_THREAD_VSOCK, PROBE_IOCTL_FIONREAD, err, sizeof(err)), err);
	check_killed(run_probe(VMM_SECCOMP_ON, VMM_THREAD_VSOCK, PROBE_IOCTL_TUNSETIFF, err, sizeof(err)), err,
		     "the virtio-vsock thread made a system call outside its list: ioctl (16)");
	check_killed(run_probe(VMM_SECCOMP_ON, VMM_THREAD_VCPU, PROBE_IOCTL_TUNSETIFF, err, sizeof(err)), err,
		     "the vcpu thread made a system call outside its list: ioctl (16)");
}

TEST(vcpu_fast_path_allows_only_kvm_run)
{
	char err[512];

	check_ran(run_probe(VMM_SECCOMP_ON, VMM_THREAD_VCPU, PROBE_IOCTL_KVM_RUN, err, sizeof(err)), err);
	check_ran(run_probe(VMM_SECCOMP_ON, VMM_THREAD_VCPU, PROBE_IOCTL_KVM_GET_REGS, err, sizeof(err)), err);
	check_killed(run_probe(VMM_SECCOMP_ON, VMM_THREAD_VCPU, PROBE_IOCTL_KVM_RUN_NEXT, err, sizeof(err)), err,
		     "the vcpu thread made a system call outside its list: ioctl (16)");
	/* the fast path is the vCPU's only */
	check_killed(run_probe(VMM_SECCOMP_ON, VMM_THREAD_VSOCK, PROBE_IOCTL_KVM_RUN, err, sizeof(err)), err,
		     "the virtio-vsock thread made a system call outside its list: ioctl (16)");
	check_killed(run_probe(VMM_SECCOMP_ON, VMM_THREAD_API, PROBE_IOCTL_KVM_RUN, err, sizeof(err)), err,
		     "the api thread made a system call outside its list: ioctl (16)");
}

TEST(no_kind_maps_executable_memory)
{
	char err[512];

	for (unsigned k = 0; k < VMM_THREAD_KINDS; k++)
		check_killed(run_probe(VMM_SECCOMP_ON, k, PROBE_MMAP_EXEC, err, sizeof(err)), err, "mmap (9)");
}

/* glibc's malloc may open a file in any thread (seccomp.c): a ninth arena
 * counts the CPUs, a trimmed heap reads the overcommit mode.  Sixteen
 * device threads (a list without openat) allocate at once, each growing
 * and freeing a heap of its own: the child must live. */
#define MALLOC_THREADS 16
static pthread_barrier_t malloc_barrier;

static void *malloc_thread(void *arg)
{
	struct err *e = NULL;
	void *blocks[64];

	(void)arg;
	if (vmm_seccomp_install(VMM_THREAD_DEVICE, &e) < 0)
		_exit(90);
	pthread_barrier_wait(&malloc_barrier);
	for (int round = 0; round < 20; round++) {
		for (unsigned i = 0; i < 64; i++)
			if ((blocks[i] = malloc(16384)) != NULL)
				memset(blocks[i], 1, 16384);
		for (unsigned i = 0; i < 64; i++)
			free(blocks[i]);
	}
	pthread_barrier_wait(&malloc_barrier);
	return NULL;
}

static void malloc_child(const void *arg)
{
	pthread_t t[MALLOC_THREADS];
	struct err *e = NULL;

	(void)arg;
	pthread_barrier_init(&malloc_barrier, NULL, MALLOC_THREADS);
	if (vmm_seccomp_init(VMM_SECCOMP_ON, &e) < 0)
		_exit(91);
	for (unsigned i = 0; i < MALLOC_THREADS; i++)
		if (thread_start(&t[i], malloc_thread, NULL) != 0)
			_exit(92);
	for (unsigned i = 0; i < MALLOC_THREADS; i++)
		pthread_join(t[i], NULL);
	_exit(0);
}

TEST(malloc_in_filtered_threads_opens_nothing)
{
	char err[512];

	check_ran(run_child(malloc_child, NULL, err, sizeof(err)), err);
}

TEST(log_and_off_let_the_syscall_run)
{
	char err[512];

	check_ran(run_probe(VMM_SECCOMP_LOG, VMM_THREAD_VCPU, PROBE_PERSONALITY, err, sizeof(err)), err);
	check_ran(run_probe(VMM_SECCOMP_OFF, VMM_THREAD_VCPU, PROBE_PERSONALITY, err, sizeof(err)), err);
}

TEST(modes_parse)
{
	enum vmm_seccomp_mode m;

	CHECK_INT(vmm_seccomp_parse_mode("on", &m), ==, 0);
	CHECK_INT(m, ==, VMM_SECCOMP_ON);
	CHECK_INT(vmm_seccomp_parse_mode("log", &m), ==, 0);
	CHECK_INT(m, ==, VMM_SECCOMP_LOG);
	CHECK_INT(vmm_seccomp_parse_mode("off", &m), ==, 0);
	CHECK_INT(m, ==, VMM_SECCOMP_OFF);
	CHECK_INT(vmm_seccomp_parse_mode("On", &m), ==, -1);
	CHECK_INT(vmm_seccomp_parse_mode("", &m), ==, -1);
}

/* The narrow kinds stay narrower than the VMM thread's, and no list grows
 * past the counts in docs/vmm.md (beside Firecracker's) unnoticed: a
 * syscall added changes this test and the document together. */
/* sigaltstack and sched_yield: what the sanitizers' runtime adds to the
 * base list in an ASan build (seccomp.c) */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_SYSCALLS 2
#else
#define SANITIZER_SYSCALLS 0
#endif

TEST(list_sizes)
{
	static const unsigned ceiling[VMM_THREAD_KINDS] = {
	    [VMM_THREAD_VCPU] = 24, [VMM_THREAD_DEVICE] = 29,	 [VMM_THREAD_NET] = 24,
	    [VMM_THREAD_BLK] = 32,  [VMM_THREAD_VSOCK] = 35,	 [VMM_THREAD_FS] = 69,
	    [VMM_THREAD_API] = 51,  [VMM_THREAD_MIGRATION] = 43, [VMM_THREAD_VMM] = 89,
	};

	for (unsigned k = 0; k < VMM_THREAD_KINDS; k++) {
		printf("# %s: %u syscalls\n", vmm_thread_kind_name(k), vmm_seccomp_count(k));
		CHECK(vmm_seccomp_count(k) <= ceiling[k] + SANITIZER_SYSCALLS);
	}
	CHECK(vmm_seccomp_count(VMM_THREAD_VCPU) < vmm_seccomp_count(VMM_THREAD_VMM));
	CHECK(vmm_seccomp_count(VMM_THREAD_NET) <= vmm_seccomp_count(VMM_THREAD_VCPU));
	CHECK(vmm_seccomp_count(VMM_THREAD_API) < vmm_seccomp_count(VMM_THREAD_VMM));
}
