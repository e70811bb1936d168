#include "vmm/arch/x86/regs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "common/log.h"
#include "vmm/arch/x86/layout.h"
#include "vmm/boot/multiboot.h"

#define X86_CR0_PE (1ULL << 0)
#define X86_CR0_ET (1ULL << 4)
#define X86_CR0_NE (1ULL << 5)
#define X86_CR0_PG (1ULL << 31)
#define X86_CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

#define PTE_PRESENT 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL

#define GDT_ENTRIES 4
#define GDT_SEL_CODE 0x08
#define GDT_SEL_DATA 0x10
#define GDT_SEL_TSS 0x18

enum gdt_kind { GDT_CODE64, GDT_CODE32, GDT_DATA, GDT_TSS };

/* Descriptor words: access byte and flags for each kind. */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
	       (uint64_t)(limit & 0x0000ffffu);
}

static struct kvm_segment segment_from_gdt(uint64_t entry, uint16_t selector)
{
	struct kvm_segment s = {
	    .base = (uint32_t)(((entry >> 16) & 0xffffff) | ((entry >> 32) & 0xff000000u)),
	    .limit = (uint32_t)((entry & 0xffff) | ((entry >> 32) & 0xf0000)),
	    .selector = selector,
	    .type = (uint8_t)((entry >> 40) & 0xf),
	    .present = (uint8_t)((entry >> 47) & 1),
	    .dpl = (uint8_t)((entry >> 45) & 3),
	    .db = (uint8_t)((entry >> 54) & 1),
	    .s = (uint8_t)((entry >> 44) & 1),
	    .l = (uint8_t)((entry >> 53) & 1),
	    .g = (uint8_t)((entry >> 55) & 1),
	};
	if (s.g)
		s.limit = (s.limit << 12) | 0xfff;
	return s;
}

int regs_setup_boot_tables(const struct guest_memory *mem, struct err **e)
{
	uint64_t *pml4 = guest_memory_ptr(mem, LAYOUT_PML4_ADDR, 4096);
	uint64_t *pdpt = guest_memory_ptr(mem, LAYOUT_PDPT_ADDR, 4096);
	uint64_t *pd = guest_memory_ptr(mem, LAYOUT_PD_ADDR, 4 * 4096);

	if (pml4 == NULL || pdpt == NULL || pd == NULL)
		return err_setx(e, EFAULT, "page tables: outside guest memory");
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	/* Identity-map the first 4 GiB with 2 MiB pages: enough for the
	 * kernel, boot_params and command line wherever they sit. */
	pml4[0] = LAYOUT_PDPT_ADDR | PTE_PRESENT | PTE_RW;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD_ADDR + i * 4096) | PTE_PRESENT | PTE_RW;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | PTE_PRESENT | PTE_RW | PTE_PS;
	return 0;
}

static void gdt_for(enum kernel_entry kind, uint64_t gdt[GDT_ENTRIES])
{
	gdt[0] = 0;
	/* 0x08: code (64-bit for the 64-bit entry, 32-bit flat for PVH and multiboot) */
	gdt[1] = kind != KERNEL_ENTRY_64BIT ? gdt_entry(0xc09b, 0, 0xfffff) : gdt_entry(0xa09b, 0, 0xfffff);
	gdt[2] = gdt_entry(0xc093, 0, 0xfffff); /* 0x10: flat data */
	gdt[3] = gdt_entry(0x808b, 0, 0xfffff); /* 0x18: TSS */
}

int regs_setup_boot_cpu(int vcpu_fd, const struct boot_entry *entry, struct err **e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint64_t gdt[GDT_ENTRIES];
	struct kvm_segment code, data, tss;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return err_set(e, errno, "vcpu 0: KVM_GET_SREGS");
	gdt_for(entry->kind, gdt);
	code = segment_from_gdt(gdt[1], GDT_SEL_CODE);
	data = segment_from_gdt(gdt[2], GDT_SEL_DATA);
	tss = segment_from_gdt(gdt[3], GDT_SEL_TSS);
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = tss;
	sregs.gdt.base = LAYOUT_GDT_ADDR;
	sregs.gdt.limit = sizeof(gdt) - 1;
	sregs.idt.base = LAYOUT_IDT_ADDR;
	sregs.idt.limit = 0;

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = entry->entry;
	if (entry->kind != KERNEL_ENTRY_64BIT) {
		/* PVH and multiboot: 32-bit protected mode, paging off, interrupts
		 * off, %ebx -> hvm_start_info or the multiboot information;
		 * multiboot's %eax says who loaded the kernel. */
		sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
		sregs.cr4 = 0;
		sregs.efer = 0;
		regs.rbx = entry->boot_info;
		if (entry->kind == KERNEL_ENTRY_MULTIBOOT)
			regs.rax = MULTIBOOT_BOOTLOADER_MAGIC;
	} else {
		/* 64-bit entry: long mode on our identity map, %rsi -> boot_params. */
		sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
		sregs.cr3 = LAYOUT_PML4_ADDR;
		sregs.cr4 = X86_CR4_PAE;
		sregs.efer = EFER_LME | EFER_LMA;
		regs.rsi = entry->boot_info;
		regs.rsp = regs.rbp = LAYOUT_BOOT_STACK;
	}
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return err_set(e, errno, "vcpu 0: KVM_SET_SREGS");
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return err_set(e, errno, "vcpu 0: KVM_SET_REGS");
	return 0;
}

int regs_write_gdt(const struct guest_memory *mem, enum kernel_entry kind, struct err **e)
{
	uint64_t gdt[GDT_ENTRIES];

	gdt_for(kind, gdt);
	if (guest_memory_write(mem, LAYOUT_GDT_ADDR, gdt, sizeof(gdt)) < 0 ||
	    guest_memory_write(mem, LAYOUT_IDT_ADDR, "\0\0\0\0\0\0\0\0", 8) < 0)
		return err_setx(e, EFAULT, "GDT: outside guest memory");
	return 0;
}

#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define MISC_ENABLE_FAST_STRING 1ULL
#define MTRR_ENABLE (1ULL << 11)
#define MTRR_TYPE_WRBACK 6ULL

static const struct {
	uint32_t index;
	uint64_t value;
} boot_msrs[] = {
    {MSR_IA32_SYSENTER_CS, 0},
    {MSR_IA32_SYSENTER_ESP, 0},
    {MSR_IA32_SYSENTER_EIP, 0},
    {MSR_STAR, 0},
    {MSR_LSTAR, 0},
    {MSR_CSTAR, 0},
    {MSR_SYSCALL_MASK, 0},
    {MSR_KERNEL_GS_BASE, 0},
    {MSR_IA32_TSC, 0},
    {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
    /* Without MTRRs enabled, Linux would treat all RAM as uncached. */
    {MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRBACK},
};

int regs_setup_msrs(int vcpu_fd, unsigned vcpu_id, struct err **e)
{
	const unsigned n = sizeof(boot_msrs) / sizeof(boot_msrs[0]);
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + n * sizeof(struct kvm_msr_entry));
	unsigned start = 0;

	if (msrs == NULL)
		return err_set(e, ENOMEM, "vcpu %u: MSRs", vcpu_id);
	/* KVM_SET_MSRS stops at the first MSR it refuses (some KVMs, such as
	 * kvm_pvm, refuse a few): skip that one and set the rest. */
	while (start < n) {
		int set;

		msrs->nmsrs = n - start;
		for (unsigned i = start; i < n; i++) {
			msrs->entries[i - start].index = boot_msrs[i].index;
			msrs->entries[i - start].data = boot_msrs[i].value;
		}
		set = ioctl(vcpu_fd, KVM_SET_MSRS, msrs);
		if (set < 0) {
			int saved = errno;
			free(msrs);
			return err_set(e, saved, "vcpu %u: KVM_SET_MSRS", vcpu_id);
		}
		if ((unsigned)set < n - start)
			log_debug("vcpu %u: KVM refused MSR 0x%x, ignoring", vcpu_id,
				  boot_msrs[start + (unsigned)set].index);
		start += (unsigned)set + 1;
	}
	free(msrs);
	return 0;
}

int regs_setup_fpu(int vcpu_fd, unsigned vcpu_id, struct err **e)
{
	struct kvm_fpu fpu;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
		return err_set(e, errno, "vcpu %u: KVM_SET_FPU", vcpu_id);
	return 0;
}

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static void lapic_set_lvt_mode(struct kvm_lapic_state *lapic, unsigned reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, lapic->regs + reg, 4);
	v = (v & ~0x700u) | (mode << 8);
	memcpy(lapic->regs + reg, &v, 4);
}

int regs_setup_lapic(int vcpu_fd, unsigned vcpu_id, struct err **e)
{
	struct kvm_lapic_state lapic;

	if (ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) < 0)
		return err_set(e, errno, "vcpu %u: KVM_GET_LAPIC", vcpu_id);
	lapic_set_lvt_mode(&lapic, APIC_LVT0, APIC_MODE_EXTINT);
	lapic_set_lvt_mode(&lapic, APIC_LVT1, APIC_MODE_NMI);
	if (ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic) < 0)
		return err_set(e, errno, "vcpu %u: KVM_SET_LAPIC", vcpu_id);
	return 0;
}

static void dump_segment(FILE *f, const char *name, const struct kvm_segment *s)
{
	fprintf(f, "  %-3s sel=0x%04x base=0x%016llx limit=0x%08x type=%u p=%u dpl=%u db=%u s=%u l=%u g=%u\n", name,
		s->selector, (unsigned long long)s->base, s->limit, s->type, s->present, s->dpl, s->db, s->s, s->l,
		s->g);
}

void regs_dump(int vcpu_fd, unsigned vcpu_id, void *stream)
{
	FILE *f = stream;
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu_fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(f, "vcpu %u: registers unavailable\n", vcpu_id);
		return;
	}
	fprintf(f, "vcpu %u registers:\n", vcpu_id);
	fprintf(f, "  rip=0x%016llx rsp=0x%016llx rflags=0x%016llx\n", r.rip, r.rsp, r.rflags);
	fprintf(f, "  rax=0x%016llx rbx=0x%016llx rcx=0x%016llx rdx=0x%016llx\n", r.rax, r.rbx, r.rcx, r.rdx);
	fprintf(f, "  rsi=0x%016llx rdi=0x%016llx rbp=0x%016llx r8 =0x%016llx\n", r.rsi, r.rdi, r.rbp, r.r8);
	fprintf(f, "  r9 =0x%016llx r10=0x%016llx r11=0x%016llx r12=0x%016llx\n", r.r9, r.r10, r.r11, r.r12);
	fprintf(f, "  r13=0x%016llx r14=0x%016llx r15=0x%016llx\n", r.r13, r.r14, r.r15);
	fprintf(f, "  cr0=0x%016llx cr2=0x%016llx cr3=0x%016llx cr4=0x%016llx efer=0x%llx\n", s.cr0, s.cr2, s.cr3,
		s.cr4, s.efer);
	dump_segment(f, "cs", &s.cs);
	dump_segment(f, "ss", &s.ss);
	dump_segment(f, "ds", &s.ds);
	dump_segment(f, "tr", &s.tr);
	fprintf(f, "  gdt=0x%016llx/0x%x idt=0x%016llx/0x%x\n", s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
}
