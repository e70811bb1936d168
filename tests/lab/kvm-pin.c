/*
 * kvm-pin: run in L1 before the lab's command (docs/lab.md).
 *
 * Holds one KVM VM, with an in-kernel irqchip and one vCPU whose local
 * APIC is hardware-disabled, for the life of the lab.  KVM flips static
 * keys when the first VM appears and the last one goes (the scheduler's
 * preempt notifiers) and when the first LAPIC is disabled or enabled
 * (apic_hw_disabled, apic_sw_disabled); each flip rewrites kernel text
 * that every CPU is executing (text_poke_bp).  Under QEMU's multi-threaded
 * TCG that cross-modification wedged L1 about once in 15 nested VM boots,
 * with a vCPU stuck at the patched jump in __schedule.  Holding the counts
 * above zero means no flip, hence no patching, while tests come and go.
 *
 * Sets everything up, then forks: the parent exits 0 once the pin holds
 * (or 1 with a message), the child keeps the descriptors and sleeps.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MSR_IA32_APICBASE 0x1b
#define APIC_DEFAULT_BASE 0xfee00000ULL /* the enable bit (11) clear */

static int fail(const char *what)
{
	fprintf(stderr, "kvm-pin: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(void)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entry;
	} msrs;
	int kvm, vm, vcpu;
	pid_t pid;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail("open /dev/kvm");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		return fail("KVM_CREATE_IRQCHIP");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return fail("KVM_CREATE_VCPU");
	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = 1;
	msrs.entry.index = MSR_IA32_APICBASE;
	msrs.entry.data = APIC_DEFAULT_BASE;
	if (ioctl(vcpu, KVM_SET_MSRS, &msrs) != 1)
		return fail("KVM_SET_MSRS APIC base");
	pid = fork();
	if (pid < 0)
		return fail("fork");
	if (pid > 0)
		return 0;
	setsid();
	for (;;)
		pause();
}
