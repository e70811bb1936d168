#include "vmm/vcpu.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "common/log.h"
#include "common/thread.h"
#include "vmm/arch/x86/cpuid.h"
#include "vmm/arch/x86/regs.h"

static const char *const exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "unknown", [KVM_EXIT_EXCEPTION] = "exception", [KVM_EXIT_IO] = "io",
	[KVM_EXIT_HYPERCALL] = "hypercall", [KVM_EXIT_DEBUG] = "debug", [KVM_EXIT_HLT] = "hlt",
	[KVM_EXIT_MMIO] = "mmio", [KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open", [KVM_EXIT_SHUTDOWN] = "shutdown",
	[KVM_EXIT_FAIL_ENTRY] = "fail_entry", [KVM_EXIT_INTR] = "intr", [KVM_EXIT_SET_TPR] = "set_tpr",
	[KVM_EXIT_TPR_ACCESS] = "tpr_access", [KVM_EXIT_S390_SIEIC] = "s390_sieic", [KVM_EXIT_S390_RESET] = "s390_reset",
	[KVM_EXIT_DCR] = "dcr", [KVM_EXIT_NMI] = "nmi", [KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	[KVM_EXIT_OSI] = "osi", [KVM_EXIT_PAPR_HCALL] = "papr_hcall", [KVM_EXIT_S390_UCONTROL] = "s390_ucontrol",
	[KVM_EXIT_WATCHDOG] = "watchdog", [KVM_EXIT_S390_TSCH] = "s390_tsch", [KVM_EXIT_EPR] = "epr",
	[KVM_EXIT_SYSTEM_EVENT] = "system_event", [KVM_EXIT_S390_STSI] = "s390_stsi",
	[KVM_EXIT_IOAPIC_EOI] = "ioapic_eoi", [KVM_EXIT_HYPERV] = "hyperv",
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
		return err_set(e, errno, "sigaction(SIGUSR1)");
	return 0;
}

int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned id, struct err **e)
{
	struct kvm_cpuid2 *cpuid;
	void *run;
	int r;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0) {
		vcpu->fd = -1;
		return err_set(e, errno, "vcpu %u: KVM_CREATE_VCPU", id);
	}
	run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (run == MAP_FAILED)
		return err_set(e, errno, "vcpu %u: mmap kvm_run", id);
	vcpu->run = run;

	cpuid = cpuid_for_vcpu(vm->supported_cpuid, id, vm->nvcpus);
	if (cpuid == NULL)
		return err_set(e, ENOMEM, "vcpu %u: CPUID", id);
	r = ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid);
	free(cpuid);
	if (r < 0)
		return err_set(e, errno, "vcpu %u: KVM_SET_CPUID2", id);
	r = regs_setup_msrs(vcpu->fd, id, e);
	if (r == 0)
		r = regs_setup_fpu(vcpu->fd, e);
	if (r == 0)
		r = regs_setup_lapic(vcpu->fd, e);
	if (r < 0)
		return err_wrap(e, "vcpu %u", id);
	return 0;
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

	if (run->io.data_offset >= vcpu->vm->run_size || (uint64_t)size * count > vcpu->vm->run_size - run->io.data_offset)
		return;
	/* String I/O (rep ins/outs) arrives as count back-to-back accesses. */
	for (uint32_t i = 0; i < count; i++, data += size) {
		if (!bus_dispatch(&vcpu->vm->pio, run->io.port, data, size, is_write)) {
			if (!is_write)
				memset(data, 0xff, size);
			if (i == 0)
				log_debug("vcpu %u: unclaimed port %s 0x%x (%u bytes)", vcpu->id, is_write ? "write" : "read",
					  run->io.port, size);
		}
	}
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = MIN(run->mmio.len, (uint32_t)sizeof(run->mmio.data));

	if (!bus_dispatch(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write)) {
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xff, len);
		log_debug("vcpu %u: unclaimed MMIO %s 0x%llx (%u bytes)", vcpu->id, run->mmio.is_write ? "write" : "read",
			  (unsigned long long)run->mmio.phys_addr, len);
	}
}

/* Report a fatal exit with the registers, and end the VM. */
static void fatal_exit(struct vcpu *vcpu, const char *what)
{
	regs_dump(vcpu->fd, vcpu->id, stderr);
	vm_fail(vcpu->vm, "vcpu %u: %s", vcpu->id, what);
}

/* Returns false when the vCPU must stop. */
static bool handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[160];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vcpu);
		vcpu->io_pending = true;
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu);
		vcpu->io_pending = true;
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_HLT: /* the in-kernel LAPIC handles HLT; a stray one just re-enters */
		return true;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault resets a real PC: treat it as a reboot. */
		log_warn("vcpu %u: triple fault: the guest resets, which ends the VM", vcpu->id);
		if (log_get_level() >= LOG_DEBUG)
			regs_dump(vcpu->fd, vcpu->id, stderr);
		vm_request_exit(vcpu->vm, VM_EXIT_REBOOT);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			vm_request_exit(vcpu->vm, VM_EXIT_POWEROFF);
			return false;
		case KVM_SYSTEM_EVENT_RESET:
			vm_request_exit(vcpu->vm, VM_EXIT_REBOOT);
			return false;
		default:
			snprintf(what, sizeof(what), "system event %u (guest crash)", run->system_event.type);
			fatal_exit(vcpu, what);
			return false;
		}
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "KVM could not enter the guest (hardware reason 0x%llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		fatal_exit(vcpu, what);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error (suberror %u)", run->internal.suberror);
		fatal_exit(vcpu, what);
		return false;
	default:
		snprintf(what, sizeof(what), "unexpected KVM exit '%s' (%u)", vcpu_exit_name(run->exit_reason),
			 run->exit_reason);
		fatal_exit(vcpu, what);
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (!atomic_load(&vm->stopping)) {
		if (__atomic_load_n(&vm->pause_requested, __ATOMIC_ACQUIRE) && !vcpu->io_pending) {
			vm_vcpu_park(vm, vcpu);
			continue;
		}
		/* With a pause pending, immediate_exit is set: this KVM_RUN only
		 * completes the last I/O exit (so the saved registers hold its
		 * result) and returns EINTR. */
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			vcpu->io_pending = false;
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_add_fetch(&vcpu->exits[VCPU_EXIT_SLOT_INTERRUPTED], 1, __ATOMIC_RELAXED);
				continue;
			}
			vm_fail(vm, "vcpu %u: KVM_RUN: %s", vcpu->id, strerror(errno));
			break;
		}
		vcpu->io_pending = false;
		__atomic_add_fetch(&vcpu->exits[MIN(vcpu->run->exit_reason, VCPU_EXIT_SLOT_INTERRUPTED - 1)], 1,
				   __ATOMIC_RELAXED);
		if (!handle_exit(vcpu))
			break;
	}
	vm_vcpu_exited(vm, vcpu);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu, struct err **e)
{
	int r = thread_start(&vcpu->thread, vcpu_thread, vcpu);

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
		munmap(vcpu->run, vcpu->vm->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}
