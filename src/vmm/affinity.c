#include "vmm/affinity.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cpulist.h"
#include "common/parse.h"
#include "vmm/vcpu.h"

int vm_affinity_init(struct vm_affinity *a, struct err **e)
{
	memset(a, 0, sizeof(*a));
	if (sched_getaffinity(0, sizeof(a->host), &a->host) < 0)
		return err_set(e, errno, "sched_getaffinity");
	return 0;
}

int vm_affinity_check_set(const struct vm_affinity *a, const cpu_set_t *set, const char *what, struct err **e)
{
	char have[256];
	int outside;

	if (CPU_COUNT(set) == 0)
		return err_setx(e, EINVAL, "%s: no host CPU", what);
	outside = cpulist_first_outside(set, &a->host);
	if (outside >= 0) {
		cpulist_format(&a->host, have, sizeof(have));
		return err_setx(e, EINVAL, "%s: host CPU %d is not one this VMM may run on (%s)", what, outside, have);
	}
	return 0;
}

static int parse_set(const struct vm_affinity *a, const char *text, const char *what, cpu_set_t *set, struct err **e)
{
	int r = cpulist_parse(text, set);

	if (r == -ERANGE)
		return err_setx(e, EINVAL, "%s: host CPU number too large", what);
	if (r < 0)
		return err_setx(e, EINVAL, "%s: not a host CPU list (0-3,8)", what);
	return vm_affinity_check_set(a, set, what, e);
}

/* "VCPU:CPUS;VCPU:CPUS": each vCPU's set. */
static int parse_pins(struct vm_affinity *a, char *text, unsigned ncpus, struct err **e)
{
	char *save = NULL;

	for (char *pin = strtok_r(text, ";", &save); pin; pin = strtok_r(NULL, ";", &save)) {
		char what[96], *colon = strchr(pin, ':');
		uint64_t id;

		snprintf(what, sizeof(what), "--cpus affinity '%.40s'", pin);
		if (colon == NULL)
			return err_setx(e, EINVAL, "%s: expected VCPU:HOST_CPUS (0:2-3)", what);
		*colon = '\0';
		if (parse_u64(pin, &id) < 0 || id >= ncpus)
			return err_setx(e, EINVAL, "%s: vCPU '%s' does not exist (the VM has %u: 0-%u)", what, pin,
					ncpus, ncpus - 1);
		if (a->has_vcpu[id])
			return err_setx(e, EINVAL, "%s: vCPU %llu is pinned twice", what, (unsigned long long)id);
		if (parse_set(a, colon + 1, what, &a->vcpu[id], e) < 0)
			return -EINVAL;
		a->has_vcpu[id] = true;
	}
	return 0;
}

struct cpus_walk {
	struct vm_affinity *a;
	const char *spec;
	unsigned *ncpus;
	struct err **e;
};

/* One --cpus item: the number first, then key=value. */
static int cpus_item(void *opaque, unsigned index, const char *key, const char *value)
{
	struct cpus_walk *w = opaque;
	char what[96];
	uint64_t n;

	if (index == 0) {
		snprintf(what, sizeof(what), "--cpus '%.40s'", key);
		if (value || parse_u64(key, &n) < 0)
			return err_setx(w->e, EINVAL, "--cpus '%.40s': not a number of vCPUs (1-%d)", w->spec,
					VM_MAX_CPUS);
		if (vm_config_check_cpus(n, what, w->e) < 0)
			return -EINVAL;
		*w->ncpus = (unsigned)n;
		return 0;
	}
	if (value == NULL)
		return err_setx(w->e, EINVAL, "--cpus: '%s': expected KEY=VALUE after the number of vCPUs", key);
	if (strcmp(key, "affinity") == 0) {
		char *pins = strdup(value);
		int r = pins ? parse_pins(w->a, pins, *w->ncpus, w->e) : err_set(w->e, ENOMEM, "--cpus");
		free(pins);
		return r;
	}
	if (strcmp(key, "vmm-affinity") == 0) {
		snprintf(what, sizeof(what), "--cpus vmm-affinity '%.40s'", value);
		if (parse_set(w->a, value, what, &w->a->vmm, w->e) < 0)
			return -EINVAL;
		w->a->has_vmm = true;
		return 0;
	}
	return err_setx(w->e, EINVAL, "--cpus: unknown key '%s' (affinity, vmm-affinity)", key);
}

int vm_affinity_parse_cpus(struct vm_affinity *a, const char *spec, unsigned *ncpus, struct err **e)
{
	static const char *const lists[] = {"affinity", "vmm-affinity", NULL};
	struct cpus_walk w = {a, spec, ncpus, e};
	int r;

	if (*spec == '\0')
		return err_setx(e, EINVAL, "--cpus '': not a number of vCPUs (1-%d)", VM_MAX_CPUS);
	r = parse_options_with_lists(spec, lists, cpus_item, &w);
	if (r == -ENOMEM && (e == NULL || *e == NULL))
		return err_set(e, ENOMEM, "--cpus");
	return r;
}

int vm_affinity_enter_vmm(const struct vm_affinity *a, struct err **e)
{
	if (a->has_vmm && sched_setaffinity(0, sizeof(a->vmm), &a->vmm) < 0)
		return err_set(e, errno, "VMM thread: sched_setaffinity");
	return 0;
}

int vm_affinity_enter_vcpu(const struct vm_affinity *a, struct vcpu *vcpu, struct err **e)
{
	const cpu_set_t *set = NULL;

	atomic_store(&vcpu->tid, (int)gettid());
	if (vcpu->id < VM_MAX_CPUS && a->has_vcpu[vcpu->id])
		set = &a->vcpu[vcpu->id];
	else if (a->has_vmm)
		set = &a->host; /* not the VMM set it inherited */
	if (set && sched_setaffinity(0, sizeof(*set), set) < 0)
		return err_set(e, errno, "vcpu %u: sched_setaffinity", vcpu->id);
	return 0;
}

int vm_affinity_set_vcpu(struct vm_affinity *a, struct vcpu *vcpus, unsigned nvcpus, unsigned id, const cpu_set_t *set,
			 struct err **e)
{
	int tid;

	if (id >= nvcpus || vcpus == NULL)
		return err_setx(e, EINVAL, "vCPU %u does not exist (the VM has %u)", id, nvcpus);
	tid = atomic_load(&vcpus[id].tid);
	if (tid <= 0)
		return err_setx(e, EAGAIN, "vCPU %u: its thread has not started", id);
	if (sched_setaffinity(tid, sizeof(*set), set) < 0)
		return err_set(e, errno, "vCPU %u (thread %d): sched_setaffinity", id, tid);
	a->vcpu[id] = *set;
	a->has_vcpu[id] = true;
	return 0;
}

static bool is_vcpu_thread(struct vcpu *vcpus, unsigned nvcpus, int tid)
{
	for (unsigned i = 0; vcpus && i < nvcpus; i++)
		if (atomic_load(&vcpus[i].tid) == tid)
			return true;
	return false;
}

int vm_affinity_set_vmm(struct vm_affinity *a, struct vcpu *vcpus, unsigned nvcpus, const cpu_set_t *set,
			struct err **e)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int r = 0;

	if (d == NULL)
		return err_set(e, errno, "/proc/self/task");
	while (r == 0 && (de = readdir(d)) != NULL) {
		int tid = atoi(de->d_name);
		/* A thread that ended meanwhile (ESRCH) needs no set. */
		if (tid > 0 && !is_vcpu_thread(vcpus, nvcpus, tid) && sched_setaffinity(tid, sizeof(*set), set) < 0 &&
		    errno != ESRCH)
			r = err_set(e, errno, "VMM thread %d: sched_setaffinity", tid);
	}
	closedir(d);
	if (r == 0) {
		a->vmm = *set;
		a->has_vmm = true;
	}
	return r;
}

int vm_affinity_get(struct vcpu *vcpus, unsigned nvcpus, int vcpu, cpu_set_t *set, struct err **e)
{
	int tid = 0;

	if (vcpu >= 0) {
		if ((unsigned)vcpu >= nvcpus || vcpus == NULL)
			return err_setx(e, EINVAL, "vCPU %d does not exist", vcpu);
		tid = atomic_load(&vcpus[vcpu].tid);
		if (tid <= 0)
			return err_setx(e, EAGAIN, "vCPU %d: its thread has not started", vcpu);
	}
	if (sched_getaffinity(tid, sizeof(*set), set) < 0)
		return err_set(e, errno, "sched_getaffinity(%d)", tid);
	return 0;
}
