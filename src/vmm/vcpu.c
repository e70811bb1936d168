#include "vmm/vcpu.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "common/log.h"
#include "common/thread.h"
#include "vmm/arch/x86/cpuid.h"
#include "vmm/arch/x86/regs.h"

static const char *const exit_names[] = {
    [KVM_EXIT_UNKNOWN] = "unknown",
    [KVM_EXIT_EXCEPTION] = "exception",
    [KVM_EXIT_IO] = "io",
    [KVM_EXIT_HYPERCALL] = "hypercall",
    [KVM_EXIT_DEBUG] = "debug",
    [KVM_EXIT_HLT] = "hlt",
    [KVM_EXIT_MMIO] = "mmio",
    [KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
    [KVM_EXIT_SHUTDOWN] = "shutdown",
    [KVM_EXIT_FAIL_ENTRY] = "fail_entry",
    [KVM_EXIT_INTR] = "intr",
    [KVM_EXIT_SET_TPR] = "set_tpr",
    [KVM_EXIT_TPR_ACCESS] = "tpr_access",
    [KVM_EXIT_S390_SIEIC] = "s390_sieic",
    [KVM_EXIT_S390_RESET] = "s390_reset",
    [KVM_EXIT_DCR] = "dcr",
    [KVM_EXIT_NMI] = "nmi",
    [KVM_EXIT_INTERNAL_ERROR] = "internal_error",
    [KVM_EXIT_OSI] = "osi",
    [KVM_EXIT_PAPR_HCALL] = "papr_hcall",
    [KVM_EXIT_S390_UCONTROL] = "s390_ucontrol",
    [KVM_EXIT_WATCHDOG] = "watchdog",
    [KVM_EXIT_S390_TSCH] = "s390_tsch",
    [KVM_EXIT_EPR] = "epr",
    [KVM_EXIT_SYSTEM_EVENT] = "system_event",
    [KVM_EXIT_S390_STSI] = "s390_stsi",
    [KVM_EXIT_IOAPIC_EOI] = "ioapic_eoi",
    [KVM_EXIT_HYPERV] = "hyperv",
};

const char *vcpu_exit_name(unsigned reason)
{
	if (reason < ARRAY_SIZE(exit_names) && exit_names[reason])
		return exit_names[reason];
	return "unrecognized";
}

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN */
}

int vcpu_install_kick_handler(struct err **e)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: KVM_RUN must return EINTR. */
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return err_set(e, errno, "vcpu kick signal: sigaction(SIGUSR1)");
	return 0;
}

int vcpu_create(struct vcpu *vcpu, const struct vcpu_setup *setup, unsigned id, struct err **e)
{
	struct kvm_cpuid2 *cpuid;
	void *run;
	int r;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = setup->vm;
	vcpu->id = id;
	vcpu->run_size = setup->run_size;
	vcpu->pio = setup->pio;
	vcpu->mmio = setup->mmio;
	vcpu->fd = ioctl(setup->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0) {
		vcpu->fd = -1;
		return err_set(e, errno, "vcpu %u: KVM_CREATE_VCPU", id);
	}
	run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (run == MAP_FAILED)
		return err_set(e, errno, "vcpu %u: mmap kvm_run", id);
	vcpu->run = run;

	cpuid = cpuid_for_vcpu(setup->supported_cpuid, id, setup->ncpus);
	if (cpuid == NULL)
		return err_set(e, ENOMEM, "vcpu %u: CPUID", id);
	r = ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid);
	free(cpuid);
	if (r < 0)
		return err_set(e, errno, "vcpu %u: KVM_SET_CPUID2", id);
	r = regs_setup_msrs(vcpu->fd, id, e);
	if (r == 0)
		r = regs_setup_fpu(vcpu->fd, id, e);
	if (r == 0)
		r = regs_setup_lapic(vcpu->fd, id, e);
	return r;
}

int vcpu_setup_boot(struct vcpu *vcpu, const struct boot_entry *entry, struct err **e)
{
	return regs_setup_boot_cpu(vcpu->fd, entry, e);
}

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t size = run->io.size, count = run->io.count;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	if (run->io.data_offset >= vcpu->run_size || (uint64_t)size * count > vcpu->run_size - run->io.data_offset)
		return;
	/* String I/O (rep ins/outs) arrives as count back-to-back accesses. */
	for (uint32_t i = 0; i < count; i++, data += size) {
		if (!bus_dispatch(vcpu->pio, run->io.port, data, size, is_write)) {
			if (!is_write)
				memset(data, 0xff, size);
			if (i == 0)
				log_debug("vcpu %u: unclaimed port %s 0x%x (%u bytes)", vcpu->id,
					  is_write ? "write" : "read", run->io.port, size);
		}
	}
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = MIN(run->mmio.len, (uint32_t)sizeof(run->mmio.data));

	if (!bus_dispatch(vcpu->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write)) {
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xff, len);
		log_debug("vcpu %u: unclaimed MMIO %s 0x%llx (%u bytes)", vcpu->id,
			  run->mmio.is_write ? "write" : "read", (unsigned long long)run->mmio.phys_addr, len);
	}
}

/* A fatal exit: the registers go to stderr, the message to the caller. */
static enum vcpu_event fatal_exit(struct vcpu *vcpu, char *why, size_t why_len, const char *fmt, ...) PRINTF_FMT(4, 5);
static enum vcpu_event fatal_exit(struct vcpu *vcpu, char *why, size_t why_len, const char *fmt, ...)
{
	int n = snprintf(why, why_len, "vcpu %u: ", vcpu->id);
	va_list ap;

	regs_dump(vcpu->fd, vcpu->id, stderr);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < why_len)
		vsnprintf(why + n, why_len - (size_t)n, fmt, ap);
	va_end(ap);
	return VCPU_EVENT_FATAL;
}

static enum vcpu_event handle_exit(struct vcpu *vcpu, char *why, size_t why_len)
{
	struct kvm_run *run = vcpu->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vcpu);
		vcpu->io_pending = true;
		return VCPU_EVENT_CONTINUE;
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu);
		vcpu->io_pending = true;
		return VCPU_EVENT_CONTINUE;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_HLT: /* the in-kernel LAPIC handles HLT; a stray one just re-enters */
		return VCPU_EVENT_CONTINUE;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault resets a real PC: treat it as a reboot. */
		log_warn("vcpu %u: triple fault: the guest resets, which ends the VM", vcpu->id);
		if (log_get_level() >= LOG_DEBUG)
			regs_dump(vcpu->fd, vcpu->id, stderr);
		return VCPU_EVENT_REBOOT;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			return VCPU_EVENT_POWEROFF;
		case KVM_SYSTEM_EVENT_RESET:
			return VCPU_EVENT_REBOOT;
		default:
			return fatal_exit(vcpu, why, why_len, "system event %u (guest crash)", run->system_event.type);
		}
	case KVM_EXIT_FAIL_ENTRY:
		return fatal_exit(vcpu, why, why_len, "KVM could not enter the guest (hardware reason 0x%llx)",
				  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	case KVM_EXIT_INTERNAL_ERROR:
		return fatal_exit(vcpu, why, why_len, "KVM internal error (suberror %u)", run->internal.suberror);
	default:
		return fatal_exit(vcpu, why, why_len, "unexpected KVM exit '%s' (%u)", vcpu_exit_name(run->exit_reason),
				  run->exit_reason);
	}
}

/*
 * The kick signal reaches this thread only inside KVM_RUN: blocked
 * otherwise, unblocked by KVM for the guest's run (KVM_SET_SIGNAL_MASK).
 * A kick that comes while the thread serves an exit stays pending and
 * makes the next KVM_RUN return at once, and never interrupts a device
 * model's system call (the halt watch kicks twice a second).  KVM blocks
 * the signal again before KVM_RUN returns, so it is never delivered:
 * eat_kicks() takes it off the pending set.
 */
static int run_with_kick_signal(struct vcpu *vcpu)
{
	enum { KERNEL_SIGSET_LEN = 8 }; /* the kernel's sigset_t, not glibc's */
	uint32_t buf[(sizeof(struct kvm_signal_mask) + KERNEL_SIGSET_LEN) / 4];
	struct kvm_signal_mask *mask = (struct kvm_signal_mask *)buf;
	sigset_t cur;

	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	sigdelset(&cur, VCPU_KICK_SIGNAL);
	mask->len = KERNEL_SIGSET_LEN;
	memcpy(mask->sigset, &cur, KERNEL_SIGSET_LEN);
	return ioctl(vcpu->fd, KVM_SET_SIGNAL_MASK, mask);
}

static void eat_kicks(void)
{
	static const struct timespec now = {0, 0};
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	while (sigtimedwait(&set, NULL, &now) == VCPU_KICK_SIGNAL)
		;
}

void vcpu_thread_init(struct vcpu *vcpu)
{
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	if (run_with_kick_signal(vcpu) == 0) {
		pthread_sigmask(SIG_BLOCK, &set, NULL);
	} else {
		log_debug("vcpu %u: KVM_SET_SIGNAL_MASK: %s; kicks may interrupt device models", vcpu->id,
			  strerror(errno));
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	}
}

enum vcpu_event vcpu_run(struct vcpu *vcpu, char *why, size_t why_len)
{
	/* With a pause pending, immediate_exit is set: this KVM_RUN only
	 * completes the last I/O exit (so the saved registers hold its
	 * result) and returns EINTR. */
	if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
		vcpu->io_pending = false;
		if (errno == EINTR || errno == EAGAIN) {
			eat_kicks();
			__atomic_add_fetch(&vcpu->exits[VCPU_EXIT_SLOT_INTERRUPTED], 1, __ATOMIC_RELAXED);
			return VCPU_EVENT_INTERRUPTED;
		}
		snprintf(why, why_len, "vcpu %u: KVM_RUN: %s", vcpu->id, strerror(errno));
		return VCPU_EVENT_FATAL;
	}
	vcpu->io_pending = false;
	__atomic_add_fetch(&vcpu->exits[MIN(vcpu->run->exit_reason, VCPU_EXIT_SLOT_INTERRUPTED - 1)], 1,
			   __ATOMIC_RELAXED);
	return handle_exit(vcpu, why, why_len);
}

int vcpu_start(struct vcpu *vcpu, void *(*fn)(void *), struct err **e)
{
	int r = thread_start(&vcpu->thread, fn, vcpu);

	if (r != 0)
		return err_set(e, r, "vcpu %u: start thread", vcpu->id);
	vcpu->thread_started = true;
	return 0;
}

void vcpu_unkick(struct vcpu *vcpu)
{
	if (vcpu->run)
		__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (vcpu->run)
		__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (vcpu->thread_started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *vcpu)
{
	if (vcpu->thread_started) {
		pthread_join(vcpu->thread, NULL);
		vcpu->thread_started = false;
	}
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}
