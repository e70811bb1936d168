#include "vmm/snapshot/kvm-state.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "common/log.h"

#define MAX_MSRS 512

/* --- field tables: explicit offsets, never a struct copy --- */

static const size_t regs_fields[] = {
    offsetof(struct kvm_regs, rax), offsetof(struct kvm_regs, rbx), offsetof(struct kvm_regs, rcx),
    offsetof(struct kvm_regs, rdx), offsetof(struct kvm_regs, rsi), offsetof(struct kvm_regs, rdi),
    offsetof(struct kvm_regs, rsp), offsetof(struct kvm_regs, rbp), offsetof(struct kvm_regs, r8),
    offsetof(struct kvm_regs, r9),  offsetof(struct kvm_regs, r10), offsetof(struct kvm_regs, r11),
    offsetof(struct kvm_regs, r12), offsetof(struct kvm_regs, r13), offsetof(struct kvm_regs, r14),
    offsetof(struct kvm_regs, r15), offsetof(struct kvm_regs, rip), offsetof(struct kvm_regs, rflags),
};

static void put_u64_fields(struct snap_writer *w, const void *base, const size_t *offs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v;
		memcpy(&v, (const char *)base + offs[i], 8);
		snap_put_u64(w, v);
	}
}

static void get_u64_fields(struct snap_section *s, void *base, const size_t *offs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = snap_get_u64(s);
		memcpy((char *)base + offs[i], &v, 8);
	}
}

static void put_segment(struct snap_writer *w, const struct kvm_segment *g)
{
	snap_put_u64(w, g->base);
	snap_put_u32(w, g->limit);
	snap_put_u16(w, g->selector);
	snap_put_u8(w, g->type);
	snap_put_u8(w, g->present);
	snap_put_u8(w, g->dpl);
	snap_put_u8(w, g->db);
	snap_put_u8(w, g->s);
	snap_put_u8(w, g->l);
	snap_put_u8(w, g->g);
	snap_put_u8(w, g->avl);
	snap_put_u8(w, g->unusable);
}

static void get_segment(struct snap_section *s, struct kvm_segment *g)
{
	g->base = snap_get_u64(s);
	g->limit = snap_get_u32(s);
	g->selector = snap_get_u16(s);
	g->type = snap_get_u8(s);
	g->present = snap_get_u8(s);
	g->dpl = snap_get_u8(s);
	g->db = snap_get_u8(s);
	g->s = snap_get_u8(s);
	g->l = snap_get_u8(s);
	g->g = snap_get_u8(s);
	g->avl = snap_get_u8(s);
	g->unusable = snap_get_u8(s);
}

static void put_sregs(struct snap_writer *w, const struct kvm_sregs *r)
{
	const struct kvm_segment *segs[] = {&r->cs, &r->ds, &r->es, &r->fs, &r->gs, &r->ss, &r->tr, &r->ldt};

	for (size_t i = 0; i < ARRAY_SIZE(segs); i++)
		put_segment(w, segs[i]);
	snap_put_u64(w, r->gdt.base);
	snap_put_u16(w, r->gdt.limit);
	snap_put_u64(w, r->idt.base);
	snap_put_u16(w, r->idt.limit);
	snap_put_u64(w, r->cr0);
	snap_put_u64(w, r->cr2);
	snap_put_u64(w, r->cr3);
	snap_put_u64(w, r->cr4);
	snap_put_u64(w, r->cr8);
	snap_put_u64(w, r->efer);
	snap_put_u64(w, r->apic_base);
	for (size_t i = 0; i < ARRAY_SIZE(r->interrupt_bitmap); i++)
		snap_put_u64(w, r->interrupt_bitmap[i]);
}

static void get_sregs(struct snap_section *s, struct kvm_sregs *r)
{
	struct kvm_segment *segs[] = {&r->cs, &r->ds, &r->es, &r->fs, &r->gs, &r->ss, &r->tr, &r->ldt};

	for (size_t i = 0; i < ARRAY_SIZE(segs); i++)
		get_segment(s, segs[i]);
	r->gdt.base = snap_get_u64(s);
	r->gdt.limit = snap_get_u16(s);
	r->idt.base = snap_get_u64(s);
	r->idt.limit = snap_get_u16(s);
	r->cr0 = snap_get_u64(s);
	r->cr2 = snap_get_u64(s);
	r->cr3 = snap_get_u64(s);
	r->cr4 = snap_get_u64(s);
	r->cr8 = snap_get_u64(s);
	r->efer = snap_get_u64(s);
	r->apic_base = snap_get_u64(s);
	for (size_t i = 0; i < ARRAY_SIZE(r->interrupt_bitmap); i++)
		r->interrupt_bitmap[i] = snap_get_u64(s);
}

static void put_events(struct snap_writer *w, const struct kvm_vcpu_events *ev)
{
	snap_put_u8(w, ev->exception.injected);
	snap_put_u8(w, ev->exception.nr);
	snap_put_u8(w, ev->exception.has_error_code);
	snap_put_u8(w, ev->exception.pending);
	snap_put_u32(w, ev->exception.error_code);
	snap_put_u8(w, ev->interrupt.injected);
	snap_put_u8(w, ev->interrupt.nr);
	snap_put_u8(w, ev->interrupt.soft);
	snap_put_u8(w, ev->interrupt.shadow);
	snap_put_u8(w, ev->nmi.injected);
	snap_put_u8(w, ev->nmi.pending);
	snap_put_u8(w, ev->nmi.masked);
	snap_put_u32(w, ev->sipi_vector);
	snap_put_u32(w, ev->flags);
	snap_put_u8(w, ev->smi.smm);
	snap_put_u8(w, ev->smi.pending);
	snap_put_u8(w, ev->smi.smm_inside_nmi);
	snap_put_u8(w, ev->smi.latched_init);
	snap_put_u8(w, ev->triple_fault.pending);
	snap_put_u8(w, ev->exception_has_payload);
	snap_put_u64(w, ev->exception_payload);
}

static void get_events(struct snap_section *s, struct kvm_vcpu_events *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->exception.injected = snap_get_u8(s);
	ev->exception.nr = snap_get_u8(s);
	ev->exception.has_error_code = snap_get_u8(s);
	ev->exception.pending = snap_get_u8(s);
	ev->exception.error_code = snap_get_u32(s);
	ev->interrupt.injected = snap_get_u8(s);
	ev->interrupt.nr = snap_get_u8(s);
	ev->interrupt.soft = snap_get_u8(s);
	ev->interrupt.shadow = snap_get_u8(s);
	ev->nmi.injected = snap_get_u8(s);
	ev->nmi.pending = snap_get_u8(s);
	ev->nmi.masked = snap_get_u8(s);
	ev->sipi_vector = snap_get_u32(s);
	ev->flags = snap_get_u32(s);
	ev->smi.smm = snap_get_u8(s);
	ev->smi.pending = snap_get_u8(s);
	ev->smi.smm_inside_nmi = snap_get_u8(s);
	ev->smi.latched_init = snap_get_u8(s);
	ev->triple_fault.pending = snap_get_u8(s);
	ev->exception_has_payload = snap_get_u8(s);
	ev->exception_payload = snap_get_u64(s);
}

/* --- MSRs: every one KVM lists, minus those it will not read back --- */

/* KVM_GET_MSRS/KVM_SET_MSRS stop at the first MSR they refuse: run the
 * request again from the one after it, until the list is done.  Entries
 * that went through are compacted to the front; returns how many. */
static unsigned msrs_ioctl_all(int fd, unsigned long req, struct kvm_msrs *msrs, struct kvm_msrs *part)
{
	unsigned done = 0, n = msrs->nmsrs;

	for (unsigned start = 0; start < n;) {
		int got;
		part->nmsrs = n - start;
		memcpy(part->entries, msrs->entries + start, part->nmsrs * sizeof(struct kvm_msr_entry));
		got = ioctl(fd, req, part);
		if (got < 0)
			got = 0;
		memmove(msrs->entries + done, part->entries, (size_t)got * sizeof(struct kvm_msr_entry));
		done += (unsigned)got;
		start += (unsigned)got + 1;
	}
	msrs->nmsrs = done;
	return done;
}

static struct kvm_msrs *msrs_alloc(unsigned n)
{
	return calloc(1, sizeof(struct kvm_msrs) + (n ? n : 1) * sizeof(struct kvm_msr_entry));
}

int kvm_state_prepare(struct vm *vm, struct err **e)
{
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + MAX_MSRS * sizeof(uint32_t));
	struct kvm_msrs *msrs = NULL, *part = NULL;
	int n = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	vm->xsave_size = n > (int)sizeof(struct kvm_xsave) ? n : (int)sizeof(struct kvm_xsave);
	if (list == NULL)
		return err_set(e, ENOMEM, "/dev/kvm: MSR list");
	list->nmsrs = MAX_MSRS;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		int saved = errno;
		free(list);
		return err_set(e, saved, "/dev/kvm: KVM_GET_MSR_INDEX_LIST");
	}
	msrs = msrs_alloc(list->nmsrs);
	part = msrs_alloc(list->nmsrs);
	vm->msr_indices = calloc(list->nmsrs ? list->nmsrs : 1, sizeof(uint32_t));
	if (msrs == NULL || part == NULL || vm->msr_indices == NULL) {
		free(list);
		free(msrs);
		free(part);
		return err_set(e, ENOMEM, "/dev/kvm: MSR list");
	}
	msrs->nmsrs = list->nmsrs;
	for (unsigned i = 0; i < list->nmsrs; i++)
		msrs->entries[i].index = list->indices[i];
	/* Probe on vCPU 0: every vCPU has the same MSRs. */
	vm->nmsrs = msrs_ioctl_all(vm->vcpus[0].fd, KVM_GET_MSRS, msrs, part);
	for (unsigned i = 0; i < vm->nmsrs; i++)
		vm->msr_indices[i] = msrs->entries[i].index;
	free(list);
	free(msrs);
	free(part);
	return 0;
}

static int read_msrs(struct vcpu *vcpu, struct kvm_msrs **ret, struct err **e)
{
	struct vm *vm = vcpu->vm;
	struct kvm_msrs *msrs = msrs_alloc(vm->nmsrs), *part;
	int got;

	if (msrs == NULL)
		return err_set(e, ENOMEM, "vcpu %u: MSRs", vcpu->id);
	msrs->nmsrs = vm->nmsrs;
	for (unsigned i = 0; i < vm->nmsrs; i++)
		msrs->entries[i] = (struct kvm_msr_entry){.index = vm->msr_indices[i]};
	/* One ioctl for the lot: the list holds only MSRs known to read back. */
	got = ioctl(vcpu->fd, KVM_GET_MSRS, msrs);
	if (got < 0 || (unsigned)got != msrs->nmsrs) {
		part = msrs_alloc(vm->nmsrs);
		if (part == NULL) {
			free(msrs);
			return err_set(e, ENOMEM, "vcpu %u: MSRs", vcpu->id);
		}
		msrs->nmsrs = vm->nmsrs;
		for (unsigned i = 0; i < vm->nmsrs; i++)
			msrs->entries[i] = (struct kvm_msr_entry){.index = vm->msr_indices[i]};
		msrs_ioctl_all(vcpu->fd, KVM_GET_MSRS, msrs, part);
		free(part);
	}
	*ret = msrs;
	return 0;
}

static bool msr_known(const struct vm *vm, uint32_t index)
{
	for (unsigned i = 0; i < vm->nmsrs; i++)
		if (vm->msr_indices[i] == index)
			return true;
	return false;
}

#define MSR_IA32_TSC 0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0

/* Move the entry for index to position pos (if present). */
static void msr_move(struct kvm_msrs *msrs, uint32_t index, unsigned pos)
{
	for (unsigned i = 0; i < msrs->nmsrs; i++) {
		if (msrs->entries[i].index == index) {
			struct kvm_msr_entry ent = msrs->entries[i];
			memmove(&msrs->entries[i], &msrs->entries[i + 1], (msrs->nmsrs - i - 1) * sizeof(ent));
			memmove(&msrs->entries[pos + 1], &msrs->entries[pos], (msrs->nmsrs - 1 - pos) * sizeof(ent));
			msrs->entries[pos] = ent;
			return;
		}
	}
}

static int write_msrs(struct vcpu *vcpu, struct kvm_msrs *msrs, struct err **e)
{
	struct kvm_msrs *part;
	unsigned n = 0, total = msrs->nmsrs;
	int set;

	/* Keep what this host's KVM handles: a snapshot from another host may
	 * carry MSRs this one does not have. */
	for (unsigned i = 0; i < total; i++)
		if (msr_known(vcpu->vm, msrs->entries[i].index))
			msrs->entries[n++] = msrs->entries[i];
	/* The TSC deadline is an absolute TSC value that KVM turns into a
	 * timer when it is written: the TSC must be right by then.  TSC
	 * first, deadline last. */
	msrs->nmsrs = n;
	if (n > 0) {
		msr_move(msrs, MSR_IA32_TSC, 0);
		msr_move(msrs, MSR_IA32_TSC_DEADLINE, n - 1);
	}
	if (n < total)
		log_debug("vcpu %u: %u saved MSRs are unknown here, skipped", vcpu->id, total - n);
	msrs->nmsrs = n;
	set = ioctl(vcpu->fd, KVM_SET_MSRS, msrs);
	if (set < 0)
		return err_set(e, errno, "vcpu %u: KVM_SET_MSRS", vcpu->id);
	if ((unsigned)set == n)
		return 0;
	part = msrs_alloc(n);
	if (part == NULL)
		return err_set(e, ENOMEM, "vcpu %u: MSRs", vcpu->id);
	log_debug("vcpu %u: KVM refused MSR 0x%x on restore", vcpu->id, msrs->entries[set].index);
	msrs_ioctl_all(vcpu->fd, KVM_SET_MSRS, msrs, part);
	free(part);
	return 0;
}

/* --- one vCPU --- */

static int xsave_size(struct vm *vm)
{
	return vm->xsave_size;
}

int kvm_state_save_vcpu(struct vcpu *vcpu, struct snap_writer *w, struct err **e)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dbg;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_cpuid2 *cpuid;
	struct kvm_msrs *msrs = NULL;
	int xs = xsave_size(vcpu->vm);
	struct kvm_xsave *xsave = calloc(1, (size_t)xs);
	char name[SNAP_NAME_MAX];
	int tsc_khz, r;

	if (xsave == NULL)
		return err_set(e, ENOMEM, "vcpu %u", vcpu->id);
	cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(cpuid->entries[0]));
	if (cpuid == NULL) {
		free(xsave);
		return err_set(e, ENOMEM, "vcpu %u", vcpu->id);
	}
	cpuid->nent = 256;
#define GET(req, arg, what)                                                                                            \
	if (ioctl(vcpu->fd, req, arg) < 0) {                                                                           \
		r = err_set(e, errno, "vcpu %u: " what, vcpu->id);                                                     \
		goto out;                                                                                              \
	}
	GET(KVM_GET_REGS, &regs, "KVM_GET_REGS");
	GET(KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	GET(xs > (int)sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave, "KVM_GET_XSAVE");
	GET(KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS");
	GET(KVM_GET_DEBUGREGS, &dbg, "KVM_GET_DEBUGREGS");
	GET(KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
	GET(KVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS");
	GET(KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE");
	GET(KVM_GET_CPUID2, cpuid, "KVM_GET_CPUID2");
#undef GET
	r = read_msrs(vcpu, &msrs, e);
	if (r < 0)
		goto out;
	tsc_khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);

	snprintf(name, sizeof(name), "vcpu.%u", vcpu->id);
	snap_section_begin(w, name, SNAP_VCPU_VERSION);
	put_u64_fields(w, &regs, regs_fields, ARRAY_SIZE(regs_fields));
	put_sregs(w, &sregs);
	snap_put_u32(w, (uint32_t)xs);
	snap_put_bytes(w, xsave, (size_t)xs);
	snap_put_u32(w, xcrs.nr_xcrs);
	snap_put_u32(w, xcrs.flags);
	for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++) {
		snap_put_u32(w, xcrs.xcrs[i].xcr);
		snap_put_u64(w, xcrs.xcrs[i].value);
	}
	for (int i = 0; i < 4; i++)
		snap_put_u64(w, dbg.db[i]);
	snap_put_u64(w, dbg.dr6);
	snap_put_u64(w, dbg.dr7);
	snap_put_u32(w, dbg.flags);
	snap_put_bytes(w, lapic.regs, sizeof(lapic.regs));
	put_events(w, &events);
	snap_put_u32(w, mp.mp_state);
	snap_put_u32(w, msrs->nmsrs);
	for (uint32_t i = 0; i < msrs->nmsrs; i++) {
		snap_put_u32(w, msrs->entries[i].index);
		snap_put_u64(w, msrs->entries[i].data);
	}
	snap_put_u32(w, cpuid->nent);
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *c = &cpuid->entries[i];
		snap_put_u32(w, c->function);
		snap_put_u32(w, c->index);
		snap_put_u32(w, c->flags);
		snap_put_u32(w, c->eax);
		snap_put_u32(w, c->ebx);
		snap_put_u32(w, c->ecx);
		snap_put_u32(w, c->edx);
	}
	snap_put_u32(w, tsc_khz > 0 ? (uint32_t)tsc_khz : 0);
	snap_section_end(w);
	r = 0;
out:
	free(xsave);
	free(cpuid);
	free(msrs);
	return r;
}

int kvm_state_restore_vcpu(struct vcpu *vcpu, struct snap_section *s, struct err **e)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dbg;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_cpuid2 *cpuid = NULL;
	struct kvm_msrs *msrs = NULL;
	struct kvm_xsave *xsave = NULL;
	uint32_t xs, n, tsc_khz;
	int r = 0;

	if (s->version != SNAP_VCPU_VERSION)
		return err_setx(e, EINVAL, "section '%s': version %u is not supported", s->name, s->version);
	memset(&regs, 0, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	memset(&xcrs, 0, sizeof(xcrs));
	memset(&dbg, 0, sizeof(dbg));
	get_u64_fields(s, &regs, regs_fields, ARRAY_SIZE(regs_fields));
	get_sregs(s, &sregs);
	xs = snap_get_u32(s);
	if (xs < sizeof(struct kvm_xsave) || xs > (1u << 20) || (int)xs > xsave_size(vcpu->vm))
		return err_setx(e, EINVAL, "section '%s': XSAVE area of %u bytes does not fit this host (%d)", s->name,
				xs, xsave_size(vcpu->vm));
	xsave = calloc(1, (size_t)xsave_size(vcpu->vm));
	if (xsave == NULL)
		return err_set(e, ENOMEM, "vcpu %u", vcpu->id);
	snap_get_bytes(s, xsave, xs);
	xcrs.nr_xcrs = snap_get_u32(s);
	xcrs.flags = snap_get_u32(s);
	if (xcrs.nr_xcrs > KVM_MAX_XCRS) {
		r = snap_bad_section(s, e);
		goto out;
	}
	for (uint32_t i = 0; i < xcrs.nr_xcrs; i++) {
		xcrs.xcrs[i].xcr = snap_get_u32(s);
		xcrs.xcrs[i].value = snap_get_u64(s);
	}
	for (int i = 0; i < 4; i++)
		dbg.db[i] = snap_get_u64(s);
	dbg.dr6 = snap_get_u64(s);
	dbg.dr7 = snap_get_u64(s);
	dbg.flags = snap_get_u32(s);
	snap_get_bytes(s, lapic.regs, sizeof(lapic.regs));
	get_events(s, &events);
	mp.mp_state = snap_get_u32(s);
	n = snap_get_u32(s);
	if (n > MAX_MSRS) {
		r = snap_bad_section(s, e);
		goto out;
	}
	msrs = calloc(1, sizeof(*msrs) + n * sizeof(struct kvm_msr_entry));
	if (msrs == NULL) {
		r = err_set(e, ENOMEM, "vcpu %u", vcpu->id);
		goto out;
	}
	msrs->nmsrs = n;
	for (uint32_t i = 0; i < n; i++) {
		msrs->entries[i].index = snap_get_u32(s);
		msrs->entries[i].data = snap_get_u64(s);
	}
	n = snap_get_u32(s);
	if (n > 256) {
		r = snap_bad_section(s, e);
		goto out;
	}
	cpuid = calloc(1, sizeof(*cpuid) + n * sizeof(cpuid->entries[0]));
	if (cpuid == NULL) {
		r = err_set(e, ENOMEM, "vcpu %u", vcpu->id);
		goto out;
	}
	cpuid->nent = n;
	for (uint32_t i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *c = &cpuid->entries[i];
		c->function = snap_get_u32(s);
		c->index = snap_get_u32(s);
		c->flags = snap_get_u32(s);
		c->eax = snap_get_u32(s);
		c->ebx = snap_get_u32(s);
		c->ecx = snap_get_u32(s);
		c->edx = snap_get_u32(s);
	}
	tsc_khz = snap_get_u32(s);
	if (!snap_section_ok(s)) {
		r = snap_bad_section(s, e);
		goto out;
	}

	/* The order matters: CPUID first (MSRs and XSAVE depend on it), the
	 * LAPIC after the APIC base in sregs, events last. */
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0) {
		r = err_set(e, errno, "vcpu %u: KVM_SET_CPUID2 (this host's CPU lacks features the guest had)",
			    vcpu->id);
		goto out;
	}
	if (tsc_khz && ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0) != (int)tsc_khz &&
	    ioctl(vcpu->fd, KVM_SET_TSC_KHZ, (unsigned long)tsc_khz) < 0)
		log_warn("vcpu %u: cannot set the guest's TSC to %u kHz: its clock may drift", vcpu->id, tsc_khz);
#define SET(req, arg, what)                                                                                            \
	if (ioctl(vcpu->fd, req, arg) < 0) {                                                                           \
		r = err_set(e, errno, "vcpu %u: " what, vcpu->id);                                                     \
		goto out;                                                                                              \
	}
	SET(KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE");
	SET(KVM_SET_REGS, &regs, "KVM_SET_REGS");
	SET(KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	SET(KVM_SET_XSAVE, xsave, "KVM_SET_XSAVE");
	SET(KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS");
	SET(KVM_SET_DEBUGREGS, &dbg, "KVM_SET_DEBUGREGS");
	SET(KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
#undef SET
	r = write_msrs(vcpu, msrs, e);
	if (r == 0 && ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &events) < 0)
		r = err_set(e, errno, "vcpu %u: KVM_SET_VCPU_EVENTS", vcpu->id);
out:
	free(xsave);
	free(cpuid);
	free(msrs);
	return r;
}

/* --- the VM: interrupt controllers, PIT, clock --- */

static void put_pic(struct snap_writer *w, const struct kvm_pic_state *p)
{
	const uint8_t f[] = {p->last_irr,
			     p->irr,
			     p->imr,
			     p->isr,
			     p->priority_add,
			     p->irq_base,
			     p->read_reg_select,
			     p->poll,
			     p->special_mask,
			     p->init_state,
			     p->auto_eoi,
			     p->rotate_on_auto_eoi,
			     p->special_fully_nested_mode,
			     p->init4,
			     p->elcr,
			     p->elcr_mask};

	snap_put_bytes(w, f, sizeof(f));
}

static void get_pic(struct snap_section *s, struct kvm_pic_state *p)
{
	uint8_t f[16];

	snap_get_bytes(s, f, sizeof(f));
	p->last_irr = f[0];
	p->irr = f[1];
	p->imr = f[2];
	p->isr = f[3];
	p->priority_add = f[4];
	p->irq_base = f[5];
	p->read_reg_select = f[6];
	p->poll = f[7];
	p->special_mask = f[8];
	p->init_state = f[9];
	p->auto_eoi = f[10];
	p->rotate_on_auto_eoi = f[11];
	p->special_fully_nested_mode = f[12];
	p->init4 = f[13];
	p->elcr = f[14];
	p->elcr_mask = f[15];
}

int kvm_state_save_vm(struct vm *vm, struct snap_writer *w, struct err **e)
{
	struct kvm_irqchip chips[3] = {
	    {.chip_id = KVM_IRQCHIP_PIC_MASTER}, {.chip_id = KVM_IRQCHIP_PIC_SLAVE}, {.chip_id = KVM_IRQCHIP_IOAPIC}};
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = {0};

	for (int i = 0; i < 3; i++)
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chips[i]) < 0)
			return err_set(e, errno, "irqchip %d: KVM_GET_IRQCHIP", i);
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return err_set(e, errno, "PIT: KVM_GET_PIT2");
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return err_set(e, errno, "kvmclock: KVM_GET_CLOCK");

	snap_section_begin(w, "irqchip", SNAP_IRQCHIP_VERSION);
	put_pic(w, &chips[0].chip.pic);
	put_pic(w, &chips[1].chip.pic);
	snap_put_u64(w, chips[2].chip.ioapic.base_address);
	snap_put_u32(w, chips[2].chip.ioapic.ioregsel);
	snap_put_u32(w, chips[2].chip.ioapic.id);
	snap_put_u32(w, chips[2].chip.ioapic.irr);
	snap_put_u32(w, KVM_IOAPIC_NUM_PINS);
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		snap_put_u64(w, chips[2].chip.ioapic.redirtbl[i].bits);
	snap_section_end(w);

	snap_section_begin(w, "pit", SNAP_PIT_VERSION);
	for (int i = 0; i < 3; i++) {
		const struct kvm_pit_channel_state *c = &pit.channels[i];
		snap_put_u32(w, c->count);
		snap_put_u16(w, c->latched_count);
		snap_put_u8(w, c->count_latched);
		snap_put_u8(w, c->status_latched);
		snap_put_u8(w, c->status);
		snap_put_u8(w, c->read_state);
		snap_put_u8(w, c->write_state);
		snap_put_u8(w, c->write_latch);
		snap_put_u8(w, c->rw_mode);
		snap_put_u8(w, c->mode);
		snap_put_u8(w, c->bcd);
		snap_put_u8(w, c->gate);
		snap_put_u64(w, (uint64_t)c->count_load_time);
	}
	snap_put_u32(w, pit.flags);
	snap_section_end(w);

	snap_section_begin(w, "clock", SNAP_CLOCK_VERSION);
	snap_put_u64(w, clock.clock);
	snap_section_end(w);
	return 0;
}

#define PIT_MODE_UNPROGRAMMED 0xff

/* A field of a section outside the range KVM itself ever gives it: a
 * snapshot with valid checksums may still hold anything. */
static int field_in_range(const char *section, int unit, const char *field, uint64_t v, uint64_t max, struct err **e)
{
	if (v <= max)
		return 0;
	if (unit >= 0)
		return err_setx(e, EINVAL, "section '%s': %s %d: %s %llu is out of range (at most %llu)", section,
				strcmp(section, "pit") == 0 ? "channel" : "pic", unit, field, (unsigned long long)v,
				(unsigned long long)max);
	return err_setx(e, EINVAL, "section '%s': %s %llu is out of range (at most %llu)", section, field,
			(unsigned long long)v, (unsigned long long)max);
}

/* The PIC's flags are bits and its init state one of four steps, as
 * KVM's i8259 keeps them. */
static int check_pic(const struct kvm_pic_state *p, int unit, struct err **e)
{
	const struct {
		const char *name;
		uint8_t v, max;
	} f[] = {
	    {"priority_add", p->priority_add, 7},
	    {"read_reg_select", p->read_reg_select, 1},
	    {"poll", p->poll, 1},
	    {"special_mask", p->special_mask, 1},
	    {"init_state", p->init_state, 3},
	    {"auto_eoi", p->auto_eoi, 1},
	    {"rotate_on_auto_eoi", p->rotate_on_auto_eoi, 1},
	    {"special_fully_nested_mode", p->special_fully_nested_mode, 1},
	    {"init4", p->init4, 1},
	};

	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		if (field_in_range("irqchip", unit, f[i].name, f[i].v, f[i].max, e) < 0)
			return -EINVAL;
	return 0;
}

/* A PIT channel as KVM's i8254 keeps it: a count of at most 0x10000, the
 * read/write states of the 8254's byte sequencing (1-4), mode 0-5, or
 * 0xff for a channel never programmed since reset. */
static int check_pit_channel(const struct kvm_pit_channel_state *c, int ch, struct err **e)
{
	const struct {
		const char *name;
		uint64_t v, max;
	} f[] = {
	    {"count", c->count, 0x10000},
	    {"count_latched", c->count_latched, 3},
	    {"status_latched", c->status_latched, 1},
	    {"read_state", c->read_state, 4},
	    {"write_state", c->write_state, 4},
	    {"rw_mode", c->rw_mode, 3},
	    {"mode", c->mode == PIT_MODE_UNPROGRAMMED ? 0 : c->mode, 5},
	    {"bcd", c->bcd, 1},
	    {"gate", c->gate, 1},
	};

	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		if (field_in_range("pit", ch, f[i].name, f[i].v, f[i].max, e) < 0)
			return -EINVAL;
	return 0;
}

#define IOAPIC_BASE 0xfec00000ULL
#define PIT_KNOWN_FLAGS (KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON)
#define CLOCK_MAX_NS (1ULL << 62) /* 146 years of guest time */

static int read_irqchip(const struct snap_reader *r, struct kvm_irqchip chips[3], struct err **e)
{
	struct snap_section s;

	if (!snap_find(r, "irqchip", &s) || s.version != SNAP_IRQCHIP_VERSION)
		return err_setx(e, EINVAL, "section 'irqchip' is missing or of an unknown version");
	get_pic(&s, &chips[0].chip.pic);
	get_pic(&s, &chips[1].chip.pic);
	chips[2].chip.ioapic.base_address = snap_get_u64(&s);
	chips[2].chip.ioapic.ioregsel = snap_get_u32(&s);
	chips[2].chip.ioapic.id = snap_get_u32(&s);
	chips[2].chip.ioapic.irr = snap_get_u32(&s);
	if (snap_get_u32(&s) != KVM_IOAPIC_NUM_PINS)
		return snap_bad_section(&s, e);
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		chips[2].chip.ioapic.redirtbl[i].bits = snap_get_u64(&s);
	if (!snap_section_ok(&s))
		return snap_bad_section(&s, e);
	if (check_pic(&chips[0].chip.pic, 0, e) < 0 || check_pic(&chips[1].chip.pic, 1, e) < 0)
		return -EINVAL;
	if (chips[2].chip.ioapic.base_address != IOAPIC_BASE)
		return err_setx(e, EINVAL, "section 'irqchip': ioapic base_address 0x%llx is not the IOAPIC's (0x%llx)",
				(unsigned long long)chips[2].chip.ioapic.base_address, IOAPIC_BASE);
	return field_in_range("irqchip", -1, "ioapic id", chips[2].chip.ioapic.id, 15, e);
}

static int read_pit(const struct snap_reader *r, struct kvm_pit_state2 *pit, struct err **e)
{
	struct snap_section s;

	if (!snap_find(r, "pit", &s) || s.version != SNAP_PIT_VERSION)
		return err_setx(e, EINVAL, "section 'pit' is missing or of an unknown version");
	memset(pit, 0, sizeof(*pit));
	for (int i = 0; i < 3; i++) {
		struct kvm_pit_channel_state *c = &pit->channels[i];
		c->count = snap_get_u32(&s);
		c->latched_count = snap_get_u16(&s);
		c->count_latched = snap_get_u8(&s);
		c->status_latched = snap_get_u8(&s);
		c->status = snap_get_u8(&s);
		c->read_state = snap_get_u8(&s);
		c->write_state = snap_get_u8(&s);
		c->write_latch = snap_get_u8(&s);
		c->rw_mode = snap_get_u8(&s);
		c->mode = snap_get_u8(&s);
		c->bcd = snap_get_u8(&s);
		c->gate = snap_get_u8(&s);
		c->count_load_time = (int64_t)snap_get_u64(&s);
	}
	pit->flags = snap_get_u32(&s);
	if (!snap_section_ok(&s))
		return snap_bad_section(&s, e);
	for (int i = 0; i < 3; i++)
		if (check_pit_channel(&pit->channels[i], i, e) < 0)
			return -EINVAL;
	if (pit->flags & ~(uint32_t)PIT_KNOWN_FLAGS)
		return err_setx(e, EINVAL, "section 'pit': flags 0x%x hold bits KVM does not know (0x%x)", pit->flags,
				pit->flags & ~(uint32_t)PIT_KNOWN_FLAGS);
	return 0;
}

static int read_clock(const struct snap_reader *r, struct kvm_clock_data *clock, struct err **e)
{
	struct snap_section s;

	if (!snap_find(r, "clock", &s) || s.version != SNAP_CLOCK_VERSION)
		return err_setx(e, EINVAL, "section 'clock' is missing or of an unknown version");
	memset(clock, 0, sizeof(*clock));
	clock->clock = snap_get_u64(&s);
	if (!snap_section_ok(&s))
		return snap_bad_section(&s, e);
	if (clock->clock > CLOCK_MAX_NS)
		return err_setx(e, EINVAL,
				"section 'clock': clock %llu ns is more than any guest has run (at most 2^62 ns)",
				(unsigned long long)clock->clock);
	return 0;
}

static int read_vm_state(const struct snap_reader *r, struct kvm_irqchip chips[3], struct kvm_pit_state2 *pit,
			 struct kvm_clock_data *clock, struct err **e)
{
	if (read_irqchip(r, chips, e) < 0 || read_pit(r, pit, e) < 0 || read_clock(r, clock, e) < 0)
		return -EINVAL;
	return 0;
}

int kvm_state_check_vm(const struct snap_reader *r, struct err **e)
{
	struct kvm_irqchip chips[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;

	memset(chips, 0, sizeof(chips));
	return read_vm_state(r, chips, &pit, &clock, e);
}

int kvm_state_restore_vm(struct vm *vm, const struct snap_reader *r, struct err **e)
{
	struct kvm_irqchip chips[3] = {
	    {.chip_id = KVM_IRQCHIP_PIC_MASTER}, {.chip_id = KVM_IRQCHIP_PIC_SLAVE}, {.chip_id = KVM_IRQCHIP_IOAPIC}};
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;

	if (read_vm_state(r, chips, &pit, &clock, e) < 0)
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chips[i]) < 0)
			return err_set(e, errno, "irqchip %d: KVM_SET_IRQCHIP", i);
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return err_set(e, errno, "PIT: KVM_SET_PIT2");
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return err_set(e, errno, "kvmclock: KVM_SET_CLOCK");
	return 0;
}
