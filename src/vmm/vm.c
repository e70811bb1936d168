#include "vmm/vm.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "common/log.h"
#include "vmm/actions.h"
#include "vmm/arch/x86/acpi.h"
#include "vmm/arch/x86/cpuid.h"
#include "vmm/arch/x86/layout.h"
#include "vmm/arch/x86/regs.h"
#include "vmm/boot/kernel-image.h"
#include "vmm/boot/loader.h"
#include "vmm/console.h"
#include "vmm/control.h"
#include "vmm/devices/device.h"
#include "vmm/devices/virtio/balloon.h"
#include "vmm/devices/virtio/blk.h"
#include "vmm/devices/virtio/console.h"
#include "vmm/devices/virtio/net.h"
#include "vmm/devices/virtio/rng.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/devices/virtio/vsock.h"
#include "vmm/migrate/migrate.h"
#include "vmm/snapshot/kvm-state.h"
#include "vmm/vcpu.h"

#define KVM_DEVICE "/dev/kvm"

/* Map a kernel or initrd for parsing; its bulk is later read with pread()
 * into guest memory, so only the header pages ever become resident. */
static void mapped_file_release(struct blob *f)
{
	if (f->data && f->len)
		munmap((void *)f->data, f->len);
	if (f->fd >= 0)
		close(f->fd);
	*f = blob_from_buffer(NULL, 0);
}

static int mapped_file_open(struct blob *f, const char *what, const char *path, uint64_t max_len, struct err **e)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	void *p;

	*f = blob_from_buffer(NULL, 0);
	if (fd < 0)
		return err_set(e, errno, "%s '%s': open", what, path);
	if (fstat(fd, &st) < 0)
		return err_set(e, errno, "%s '%s': stat", what, path);
	if (!S_ISREG(st.st_mode))
		return err_setx(e, EINVAL, "%s '%s': not a regular file", what, path);
	if (st.st_size == 0)
		return err_setx(e, EINVAL, "%s '%s': file is empty", what, path);
	if ((uint64_t)st.st_size > max_len)
		return err_setx(e, EFBIG, "%s '%s': %llu MiB is larger than guest memory (%llu MiB)", what, path,
				(unsigned long long)(((uint64_t)st.st_size + MiB - 1) >> 20),
				(unsigned long long)(max_len >> 20));
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return err_set(e, errno, "%s '%s': mmap", what, path);
	f->data = p;
	f->len = (size_t)st.st_size;
	f->fd = TAKE_FD(fd);
	return 0;
}

static int kvm_check_cap(struct vm *vm, int cap, const char *name, struct err **e)
{
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, cap) <= 0)
		return err_setx(e, ENOTSUP, "%s: KVM lacks %s", KVM_DEVICE, name);
	return 0;
}

static int kvm_open(struct vm *vm, struct err **e)
{
	static const struct {
		int cap;
		const char *name;
	} required[] = {
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },       { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" }, { KVM_CAP_PIT2, "KVM_CAP_PIT2" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" }, { KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	};
	int version, mmap_size, max_vcpus;

	vm->kvm_fd = open(KVM_DEVICE, O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return err_set(e, errno, "%s: open", KVM_DEVICE);
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION)
		return err_setx(e, ENOTSUP, "%s: API version %d, expected %d", KVM_DEVICE, version, KVM_API_VERSION);
	for (size_t i = 0; i < ARRAY_SIZE(required); i++)
		if (kvm_check_cap(vm, required[i].cap, required[i].name, e) < 0)
			return -ENOTSUP;
	max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_vcpus <= 0)
		max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max_vcpus > 0 && vm->cfg.cpus > (unsigned)max_vcpus)
		return err_setx(e, EINVAL, "cpus: %u vCPUs exceed this host's KVM limit of %d", vm->cfg.cpus, max_vcpus);
	mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run))
		return err_set(e, errno, "%s: KVM_GET_VCPU_MMAP_SIZE", KVM_DEVICE);
	vm->run_size = (size_t)mmap_size;
	return cpuid_get_supported(vm->kvm_fd, &vm->supported_cpuid, e);
}

static int kvm_create_vm(struct vm *vm, struct err **e)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	do {
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	} while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0)
		return err_set(e, errno, "%s: KVM_CREATE_VM", KVM_DEVICE);
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0)
		return err_set(e, errno, "KVM_SET_TSS_ADDR");
	{
		uint64_t identity = LAYOUT_KVM_IDENTITY_MAP;
		if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
			return err_set(e, errno, "KVM_SET_IDENTITY_MAP_ADDR");
	}
	/* PIC, IOAPIC and LAPICs in the kernel: interrupts never round-trip
	 * through this process. */
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return err_set(e, errno, "KVM_CREATE_IRQCHIP");
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return err_set(e, errno, "KVM_CREATE_PIT2");
	return 0;
}

static int setup_memory(struct vm *vm, int memory_fd, struct err **e)
{
	int r = memory_fd >= 0 ? guest_memory_map_file(&vm->mem, vm->cfg.memory, memory_fd, e)
			       : guest_memory_create(&vm->mem, vm->cfg.memory, e);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct guest_region *reg = &vm->mem.regions[i];
		struct kvm_userspace_memory_region region = {
			.slot = i,
			.guest_phys_addr = reg->gpa,
			.memory_size = reg->size,
			.userspace_addr = (uint64_t)(uintptr_t)reg->hva,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
			return err_set(e, errno, "memory: KVM_SET_USER_MEMORY_REGION slot %u", i);
	}
	return 0;
}

static int setup_events(struct vm *vm, struct err **e)
{
	sigset_t set;

	vm->exit_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->exit_eventfd < 0)
		return err_set(e, errno, "eventfd");
	/* SIGINT and SIGTERM end the VM through the loop, never mid-exit. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return err_set(e, errno, "pthread_sigmask");
	vm->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (vm->signal_fd < 0)
		return err_set(e, errno, "signalfd");
	signal(SIGPIPE, SIG_IGN);
	if (event_loop_init(&vm->loop, e) < 0)
		return -err_code(*e);
	return vm_actions_init(vm, e);
}

/* The guest's files, opened and checked before any KVM work so that a
 * bad kernel or initrd is reported without touching /dev/kvm. */
struct guest_files {
	struct blob kernel;
	struct blob initrd;
	struct kernel_image img;
};

static void guest_files_release(struct guest_files *f)
{
	mapped_file_release(&f->kernel);
	mapped_file_release(&f->initrd);
}

static int guest_files_open(struct guest_files *f, const struct vm_config *cfg, struct err **e)
{
	int r;

	memset(f, 0, sizeof(*f));
	f->kernel.fd = f->initrd.fd = -1;
	r = mapped_file_open(&f->kernel, "kernel", cfg->kernel_path, cfg->memory, e);
	if (r < 0)
		return r;
	r = kernel_image_parse(f->kernel.data, f->kernel.len, &f->img, e);
	if (r < 0)
		return err_wrap(e, "kernel '%s'", cfg->kernel_path);
	if (cfg->initrd_path)
		return mapped_file_open(&f->initrd, "initrd", cfg->initrd_path, cfg->memory, e);
	return 0;
}

static int load_guest(struct vm *vm, const struct guest_files *files, struct err **e)
{
	struct boot_config boot;
	struct boot_entry entry;
	struct acpi_config acpi = { .ncpus = vm->nvcpus, .describe_devices = devices_describe_acpi, .opaque = vm };
	uint64_t rsdp;
	int r;

	r = acpi_build(&vm->mem, &acpi, &rsdp, e);
	if (r < 0)
		return r;
	boot = (struct boot_config){
		.kernel_name = vm->cfg.kernel_path,
		.initrd_name = vm->cfg.initrd_path,
		.cmdline = vm->cfg.cmdline,
		.initrd = files->initrd.data ? &files->initrd : NULL,
		.rsdp_addr = rsdp,
	};
	r = boot_load(&vm->mem, &files->img, &files->kernel, &boot, &entry, e);
	if (r == 0)
		r = regs_setup_boot_tables(&vm->mem, e);
	if (r == 0)
		r = regs_write_gdt(&vm->mem, entry.kind, e);
	if (r == 0)
		r = vcpu_setup_boot(&vm->vcpus[0], &entry, e);
	if (r == 0)
		log_debug("boot: %s kernel, %s entry at 0x%llx", kernel_format_name(files->img.format),
			  entry.kind == KERNEL_ENTRY_PVH ? "PVH" : "64-bit", (unsigned long long)entry.entry);
	return r;
}

static int validate_config(const struct vm_config *cfg, struct err **e)
{
	if (cfg->kernel_path == NULL)
		return err_setx(e, EINVAL, "kernel: no kernel given");
	if (cfg->cpus == 0 || cfg->cpus > ACPI_MAX_CPUS)
		return err_setx(e, EINVAL, "cpus: %u is out of range 1-%d", cfg->cpus, ACPI_MAX_CPUS);
	if (cfg->memory < LAYOUT_MIN_MEMORY)
		return err_setx(e, EINVAL, "memory: %llu MiB is too small (at least %llu MiB)",
				(unsigned long long)(cfg->memory >> 20), LAYOUT_MIN_MEMORY >> 20);
	if (!IS_ALIGNED(cfg->memory, 2 * MiB))
		return err_setx(e, EINVAL, "memory: %llu bytes is not a multiple of 2 MiB",
				(unsigned long long)cfg->memory);
	return 0;
}

/* virtio-rng, -console, -vsock and -balloon, after the disks and NICs. */
static int create_extra_virtio_devices(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	int r = 0;

	if (cfg->rng)
		r = virtio_rng_create(vm, e);
	if (r == 0 && cfg->console2.kind != CONSOLE2_NONE)
		r = virtio_console_create(vm, &cfg->console2, e);
	if (r == 0 && cfg->vsock.enabled)
		r = virtio_vsock_create(vm, &cfg->vsock, e);
	if (r == 0 && cfg->balloon.enabled)
		r = virtio_balloon_create(vm, &cfg->balloon, &vm->balloon, e);
	return r;
}

/* A VM with its event loop, signals and action queue, and nothing else
 * yet: vm_build() gives it KVM, memory, devices and vCPUs. */
static int vm_alloc(struct vm **ret, const struct vm_config *cfg, struct err **e)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int r;

	if (vm == NULL)
		return err_set(e, ENOMEM, "vm");
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = vm->exit_eventfd = vm->signal_fd = vm->action_fd = -1;
	vm->loop.epfd = -1;
	vm->nvcpus = cfg->cpus;
	pthread_mutex_init(&vm->error_lock, NULL);
	pthread_mutex_init(&vm->run_lock, NULL);
	pthread_cond_init(&vm->run_cond, NULL);
	bus_init(&vm->pio, "port I/O");
	bus_init(&vm->mmio, "MMIO");
	r = setup_events(vm, e);
	if (r < 0) {
		vm_destroy(vm);
		return r;
	}
	*ret = vm;
	return 0;
}

int vm_build(struct vm *vm, int memory_fd, struct err **e)
{
	const struct vm_config *cfg = &vm->cfg;
	int r;

	vm->nvcpus = cfg->cpus;
	r = kvm_open(vm, e);
	if (r == 0)
		r = kvm_create_vm(vm, e);
	if (r == 0)
		r = setup_memory(vm, memory_fd, e);
	if (r == 0)
		r = console_create(vm, cfg->console, cfg->console_path, &vm->console, e);
	if (r == 0)
		r = devices_create_builtin(vm, e);
	for (unsigned i = 0; r == 0 && i < cfg->ndisks; i++)
		r = virtio_blk_create(vm, &cfg->disks[i], i, e);
	for (unsigned i = 0; r == 0 && i < cfg->nnets; i++)
		r = virtio_net_create(vm, &cfg->nets[i], i, e);
	if (r == 0)
		r = create_extra_virtio_devices(vm, cfg, e);
	if (r == 0 && cfg->control_socket)
		r = control_create(vm, cfg->control_socket, &vm->control, e);
	if (r == 0) {
		vm->vcpus = calloc(vm->nvcpus, sizeof(*vm->vcpus));
		if (vm->vcpus == NULL)
			r = err_set(e, ENOMEM, "vcpus");
		for (unsigned i = 0; vm->vcpus && i < vm->nvcpus; i++)
			vm->vcpus[i].fd = -1;
		for (unsigned i = 0; r == 0 && i < vm->nvcpus; i++)
			r = vcpu_create(vm, &vm->vcpus[i], i, e);
	}
	if (r == 0)
		r = kvm_state_prepare(vm, e);
	return r;
}

int vm_create(struct vm **ret, const struct vm_config *cfg, struct err **e)
{
	struct guest_files files;
	struct vm *vm;
	int r;

	r = validate_config(cfg, e);
	if (r < 0)
		return r;
	r = guest_files_open(&files, cfg, e);
	if (r == 0)
		r = vm_alloc(&vm, cfg, e);
	if (r < 0) {
		guest_files_release(&files);
		return r;
	}
	r = vm_build(vm, -1, e);
	if (r == 0)
		r = load_guest(vm, &files, e);
	if (r == 0)
		r = virtio_devices_start(vm, e);
	guest_files_release(&files);
	if (r < 0) {
		vm_destroy(vm);
		return r;
	}
	*ret = vm;
	return 0;
}

int vm_create_waiting(struct vm **ret, const struct vm_config *cfg, struct err **e)
{
	int r = vm_alloc(ret, cfg, e);

	if (r == 0)
		(*ret)->state = VM_STATE_NOT_STARTED;
	return r;
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason reason)
{
	int expected = VM_EXIT_NONE;
	uint64_t one = 1;

	if (atomic_compare_exchange_strong(&vm->exit_reason, &expected, (int)reason))
		(void)!write(vm->exit_eventfd, &one, sizeof(one));
}

void vm_fail(struct vm *vm, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	pthread_mutex_lock(&vm->error_lock);
	if (vm->error == NULL && atomic_load(&vm->exit_reason) == VM_EXIT_NONE) {
		vm->error = msg;
		msg = NULL;
	}
	pthread_mutex_unlock(&vm->error_lock);
	free(msg);
	vm_request_exit(vm, VM_EXIT_ERROR);
}

void vm_set_irq(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_debug("KVM_IRQ_LINE %u=%d: %s", gsi, level, strerror(errno));
}

const char *vm_exit_reason_name(enum vm_exit_reason r)
{
	switch (r) {
	case VM_EXIT_NONE: return "running";
	case VM_EXIT_POWEROFF: return "poweroff";
	case VM_EXIT_REBOOT: return "reboot";
	case VM_EXIT_ERROR: return "error";
	case VM_EXIT_SIGNAL: return "signal";
	case VM_EXIT_USER: return "quit";
	case VM_EXIT_STOPPED: return "stopped";
	case VM_EXIT_MIGRATED: return "migrated";
	}
	return "unknown";
}

static void on_exit_event(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t v;

	(void)events;
	(void)!read(vm->exit_eventfd, &v, sizeof(v));
}

static void on_signal(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	struct signalfd_siginfo si;
	int signo;

	(void)events;
	if (read(vm->signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return;
	signo = (int)si.ssi_signo;
	if (atomic_load(&vm->exit_reason) == VM_EXIT_NONE)
		vm->exit_signal = signo;
	vm_request_exit(vm, VM_EXIT_SIGNAL);
}

void vm_vcpu_park(struct vm *vm, struct vcpu *vcpu)
{
	(void)vcpu;
	pthread_mutex_lock(&vm->run_lock);
	vm->parked_vcpus++;
	pthread_cond_broadcast(&vm->run_cond);
	while (vm->pause_requested && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->run_cond, &vm->run_lock);
	vm->parked_vcpus--;
	pthread_mutex_unlock(&vm->run_lock);
}

void vm_vcpu_exited(struct vm *vm, struct vcpu *vcpu)
{
	pthread_mutex_lock(&vm->run_lock);
	vcpu->exited = true;
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
}

static unsigned exited_vcpus_locked(const struct vm *vm)
{
	unsigned n = 0;

	for (unsigned i = 0; i < vm->nvcpus; i++)
		n += vm->vcpus[i].exited;
	return n;
}

int vm_pause(struct vm *vm)
{
	if (vm->state == VM_STATE_PAUSED)
		return 0;
	if (vm->state != VM_STATE_RUNNING)
		return -EINVAL;
	pthread_mutex_lock(&vm->run_lock);
	__atomic_store_n(&vm->pause_requested, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vm->run_lock);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	pthread_mutex_lock(&vm->run_lock);
	while (vm->parked_vcpus + exited_vcpus_locked(vm) < vm->nvcpus)
		pthread_cond_wait(&vm->run_cond, &vm->run_lock);
	pthread_mutex_unlock(&vm->run_lock);
	virtio_devices_pause(vm);
	vm->state = VM_STATE_PAUSED;
	log_debug("vm: paused");
	return 0;
}

int vm_resume(struct vm *vm)
{
	if (vm->state == VM_STATE_RUNNING)
		return 0;
	if (vm->state != VM_STATE_PAUSED)
		return -EINVAL;
	virtio_devices_resume(vm);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_unkick(&vm->vcpus[i]);
	pthread_mutex_lock(&vm->run_lock);
	__atomic_store_n(&vm->pause_requested, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	vm->state = VM_STATE_RUNNING;
	log_debug("vm: running %u vCPUs", vm->nvcpus);
	log_debug("vm: resumed");
	return 0;
}

const char *vm_state_name(enum vm_state st)
{
	switch (st) {
	case VM_STATE_NOT_STARTED: return "not-started";
	case VM_STATE_RUNNING: return "running";
	case VM_STATE_PAUSED: return "paused";
	case VM_STATE_STOPPED: return "stopped";
	}
	return "unknown";
}

static void stop_vcpus(struct vm *vm)
{
	atomic_store(&vm->stopping, true);
	pthread_mutex_lock(&vm->run_lock);
	pthread_cond_broadcast(&vm->run_cond); /* parked vCPUs leave too */
	pthread_mutex_unlock(&vm->run_lock);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_join(&vm->vcpus[i]);
}

int vm_run(struct vm *vm, struct err **e)
{
	enum vm_exit_reason reason;
	int r;

	r = vcpu_install_kick_handler(e);
	if (r == 0)
		r = event_loop_add(&vm->loop, vm->exit_eventfd, EPOLLIN, on_exit_event, vm, e);
	if (r == 0)
		r = event_loop_add(&vm->loop, vm->signal_fd, EPOLLIN, on_signal, vm, e);
	/* A waiting VM serves its API until a snapshot is loaded into it. */
	while (r == 0 && vm->vcpus == NULL && atomic_load(&vm->exit_reason) == VM_EXIT_NONE)
		r = event_loop_run_once(&vm->loop) < 0 ? err_set(e, errno, "event loop: epoll_wait") : 0;
	if (r == 0 && vm->vcpus == NULL)
		goto stopped;
	clock_gettime(CLOCK_MONOTONIC, &vm->started);
	for (unsigned i = 0; r == 0 && i < vm->nvcpus; i++)
		r = vcpu_start(&vm->vcpus[i], e);
	if (r < 0) {
		stop_vcpus(vm);
		return r;
	}
	vm->state = VM_STATE_RUNNING;
	log_debug("vm: running %u vCPUs", vm->nvcpus);
	while (atomic_load(&vm->exit_reason) == VM_EXIT_NONE) {
		r = event_loop_run_once(&vm->loop);
		if (r < 0) {
			stop_vcpus(vm);
			return err_set(e, -r, "event loop: epoll_wait");
		}
		console_poll(vm->console);
	}
	stop_vcpus(vm);
stopped:
	vm->state = VM_STATE_STOPPED;
	vm_actions_destroy(vm);

	reason = (enum vm_exit_reason)atomic_load(&vm->exit_reason);
	log_info("vm: stopped: %s", vm_exit_reason_name(reason));
	switch (reason) {
	case VM_EXIT_POWEROFF:
	case VM_EXIT_REBOOT:
		return atomic_load(&vm->guest_status_set) ? (atomic_load(&vm->guest_status) & 0xff) : 0;
	case VM_EXIT_SIGNAL:
		return 128 + vm->exit_signal;
	case VM_EXIT_USER:
	case VM_EXIT_STOPPED:
	case VM_EXIT_MIGRATED:
		return 0;
	case VM_EXIT_ERROR:
	default:
		return err_setx(e, EIO, "%s", vm->error ? vm->error : "vm: stopped on an error");
	}
}

void vm_destroy(struct vm *vm)
{
	if (vm == NULL)
		return;
	if (vm->vcpus) {
		stop_vcpus(vm);
		for (unsigned i = 0; i < vm->nvcpus; i++)
			vcpu_destroy(&vm->vcpus[i]);
		free(vm->vcpus);
	}
	control_destroy(vm->control);
	vm_actions_destroy(vm);
	migrate_cleanup(vm);
	if (vm->loop.epfd >= 0)
		event_loop_destroy(&vm->loop);
	devices_destroy_all(vm);
	console_destroy(vm->console);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	guest_memory_destroy(&vm->mem);
	free(vm->supported_cpuid);
	free(vm->msr_indices);
	if (vm->signal_fd >= 0)
		close(vm->signal_fd);
	if (vm->exit_eventfd >= 0)
		close(vm->exit_eventfd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	free(vm->error);
	if (vm->owns_cfg)
		vm_config_free(&vm->cfg);
	pthread_mutex_destroy(&vm->error_lock);
	pthread_mutex_destroy(&vm->run_lock);
	pthread_cond_destroy(&vm->run_cond);
	free(vm);
}
