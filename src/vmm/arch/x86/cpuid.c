#include "vmm/arch/x86/cpuid.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_80000001_ECX_CMP_LEGACY (1u << 1)
#define TOPOLOGY_LEVEL_SMT 1
#define TOPOLOGY_LEVEL_CORE 2

int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **ret, struct err **e)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));

	if (c == NULL)
		return err_set(e, ENOMEM, "/dev/kvm: KVM_GET_SUPPORTED_CPUID");
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int saved = errno;
		free(c);
		return err_set(e, saved, "/dev/kvm: KVM_GET_SUPPORTED_CPUID");
	}
	*ret = c;
	return 0;
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *ent = &c->entries[i];
		if (ent->function != function)
			continue;
		if ((ent->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && ent->index != index)
			continue;
		return ent;
	}
	return NULL;
}

/* Bits needed to number n items: 1 -> 0, 2 -> 1, 3..4 -> 2, ... */
static unsigned id_bits(unsigned n)
{
	unsigned bits = 0;

	while ((1u << bits) < n)
		bits++;
	return bits;
}

static int is_amd(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *ent = cpuid_find(c, 0, 0);
	char vendor[13];

	if (ent == NULL)
		return 0;
	memcpy(vendor, &ent->ebx, 4);
	memcpy(vendor + 4, &ent->edx, 4);
	memcpy(vendor + 8, &ent->ecx, 4);
	vendor[12] = '\0';
	return strcmp(vendor, "AuthenticAMD") == 0 || strcmp(vendor, "HygonGenuine") == 0;
}

static void patch_topology_leaf(struct kvm_cpuid_entry2 *ent, unsigned apic_id, unsigned ncpus)
{
	switch (ent->index) {
	case 0: /* SMT level: one thread per core */
		ent->eax = 0;
		ent->ebx = 1;
		ent->ecx = (TOPOLOGY_LEVEL_SMT << 8) | ent->index;
		break;
	case 1: /* core level: every vCPU is a core of one package */
		ent->eax = id_bits(ncpus);
		ent->ebx = ncpus;
		ent->ecx = (TOPOLOGY_LEVEL_CORE << 8) | ent->index;
		break;
	default:
		ent->eax = 0;
		ent->ebx = 0;
		ent->ecx = ent->index;
		break;
	}
	ent->edx = apic_id;
}

struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *src, unsigned vcpu_id, unsigned ncpus)
{
	size_t size = sizeof(*src) + src->nent * sizeof(src->entries[0]);
	struct kvm_cpuid2 *c = malloc(size);
	unsigned apic_id = vcpu_id, bits = id_bits(ncpus);
	int amd;

	if (c == NULL)
		return NULL;
	memcpy(c, src, size);
	amd = is_amd(c);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *ent = &c->entries[i];

		switch (ent->function) {
		case 0x1:
			ent->ebx = (apic_id << 24) | ((ncpus > 255 ? 255 : ncpus) << 16) | (8 << 8);
			ent->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (ncpus > 1)
				ent->edx |= CPUID_1_EDX_HTT;
			else
				ent->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 0x4:
			/* Cores per package; caches are private except the last level. */
			ent->eax &= 0x3fff;
			ent->eax |= (uint32_t)((ncpus > 64 ? 63 : ncpus - 1) << 26);
			if (((ent->eax >> 5) & 7) >= 3)
				ent->eax |= (uint32_t)((ncpus - 1) & 0xfff) << 14;
			break;
		case 0xd:
			/* EBX is the XSAVE area size for the features XCR0 enables.
			 * Report the size for all supported ones, which is what Linux
			 * enables; some KVMs (nested ones seen) do not refresh it when
			 * the guest writes XCR0, and Linux then warns at boot. */
			if (ent->index == 0)
				ent->ebx = ent->ecx;
			break;
		case 0xa:
			/* No virtual PMU: guests would otherwise program perf MSRs. */
			ent->eax = ent->ebx = ent->ecx = ent->edx = 0;
			break;
		case 0xb:
		case 0x1f:
			patch_topology_leaf(ent, apic_id, ncpus);
			break;
		case 0x80000001:
			if (amd && ncpus > 1)
				ent->ecx |= CPUID_80000001_ECX_CMP_LEGACY;
			break;
		case 0x80000008:
			if (amd) {
				ent->ecx &= ~0xf0ffu;
				ent->ecx |= (bits << 12) | ((ncpus - 1) & 0xff);
			}
			break;
		case 0x8000001e:
			ent->eax = apic_id;
			ent->ebx = apic_id & 0xff; /* core id; one thread per core */
			ent->ecx = 0;		   /* node 0, one node */
			break;
		default:
			break;
		}
	}
	return c;
}
