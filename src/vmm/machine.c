/*
 * The machine builder (machine.h): the only place that knows every
 * device type, in the two tables below.
 */
#include "vmm/machine.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "casulo-config.h"
#include "common/log.h"
#include "common/thread.h"
#include "vmm/arch/x86/acpi.h"
#include "vmm/arch/x86/cpuid.h"
#include "vmm/arch/x86/layout.h"
#include "vmm/arch/x86/regs.h"
#include "vmm/arch/x86/reset-vector.h"
#include "vmm/boot/kernel-image.h"
#include "vmm/boot/loader.h"
#include "vmm/console.h"
#include "vmm/devices/debug-exit.h"
#include "vmm/devices/device.h"
#include "vmm/devices/fw-cfg.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/pci-host.h"
#include "vmm/devices/platform.h"
#include "vmm/devices/power-button.h"
#include "vmm/devices/rtc.h"
#include "vmm/devices/serial.h"
#include "vmm/devices/virtio/balloon.h"
#include "vmm/devices/virtio/blk.h"
#include "vmm/devices/virtio/console.h"
#include "vmm/devices/virtio/fs.h"
#include "vmm/devices/virtio/net.h"
#include "vmm/devices/virtio/rng.h"
#include "vmm/devices/virtio/vsock.h"
#include "vmm/snapshot/kvm-state.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

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
	    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
	    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
	    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
	    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
	    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
	};
	int version, mmap_size;

	vm->kvm_fd = open(KVM_DEVICE, O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return err_set(e, errno, "%s: open", KVM_DEVICE);
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION)
		return err_setx(e, ENOTSUP, "%s: API version %d, expected %d", KVM_DEVICE, version, KVM_API_VERSION);
	for (size_t i = 0; i < ARRAY_SIZE(required); i++)
		if (kvm_check_cap(vm, required[i].cap, required[i].name, e) < 0)
			return -ENOTSUP;
	mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run))
		return err_set(e, errno, "%s: KVM_GET_VCPU_MMAP_SIZE", KVM_DEVICE);
	vm->run_size = (size_t)mmap_size;
	return cpuid_get_supported(vm->kvm_fd, &vm->supported_cpuid, e);
}

/* The configuration's vCPUs, within what this KVM takes. */
static int kvm_check_vcpus(struct vm *vm, struct err **e)
{
	int max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);

	if (max_vcpus <= 0)
		max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max_vcpus > 0 && vm->cfg.cpus > (unsigned)max_vcpus)
		return err_setx(e, EINVAL, "cpus: %u vCPUs exceed this host's KVM limit of %d", vm->cfg.cpus,
				max_vcpus);
	return 0;
}

static int kvm_create_vm(struct vm *vm, struct err **e)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};

	do {
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	} while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0)
		return err_set(e, errno, "%s: KVM_CREATE_VM", KVM_DEVICE);
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0)
		return err_set(e, errno, "vm: KVM_SET_TSS_ADDR");
	{
		uint64_t identity = LAYOUT_KVM_IDENTITY_MAP;
		if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
			return err_set(e, errno, "vm: KVM_SET_IDENTITY_MAP_ADDR");
	}
	/* PIC, IOAPIC and LAPICs in the kernel: interrupts never round-trip
	 * through this process. */
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return err_set(e, errno, "vm: KVM_CREATE_IRQCHIP");
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return err_set(e, errno, "vm: KVM_CREATE_PIT2");
	return 0;
}

/*
 * A snapshot's memory file: anonymous private 4 KiB memory maps it
 * privately (pages load as the guest touches them, and VMs restored from
 * one snapshot share its clean pages); memory backed otherwise (hugetlb,
 * memfd, shared) is built as the configuration says and filled from it.
 */
static int restore_memory(struct vm *vm, int memory_fd, struct err **e)
{
	const struct memory_config *mc = &vm->cfg.mem;

	if (guest_memory_restores_lazily(mc)) {
		if (guest_memory_map_file(&vm->mem, vm->cfg.memory, memory_fd, e) < 0)
			return -EINVAL;
		vm->mem.backend = mc->backend;
		return guest_memory_apply_policy(&vm->mem, mc, e);
	}
	if (guest_memory_create_backed(&vm->mem, vm->cfg.memory, mc, e) < 0)
		return -EINVAL;
	return guest_memory_fill_from_file(&vm->mem, memory_fd, e);
}

/* Guest memory mapped in this process: no KVM VM needed yet. */
static int map_memory(struct vm *vm, int memory_fd, struct err **e)
{
	int r = vm_config_check_memory_host(&vm->cfg, NULL, e);

	if (r == 0)
		r = memory_fd >= 0 ? restore_memory(vm, memory_fd, e)
				   : guest_memory_create_backed(&vm->mem, vm->cfg.memory, &vm->cfg.mem, e);
	return r;
}

/* The mapped memory, given to the KVM VM. */
static int register_memory(struct vm *vm, struct err **e)
{
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

/* The guest's files, opened and checked before any KVM work so that a
 * bad kernel or initrd is reported without touching /dev/kvm. */
struct guest_files {
	struct blob kernel;
	struct blob initrd;
	struct blob modules[VM_MAX_MODULES];
	char module_strings[VM_MAX_MODULES][4096];
	struct boot_module boot_modules[VM_MAX_MODULES];
	struct kernel_image img;
};

static void guest_files_release(struct guest_files *f)
{
	mapped_file_release(&f->kernel);
	mapped_file_release(&f->initrd);
	for (unsigned i = 0; i < VM_MAX_MODULES; i++)
		mapped_file_release(&f->modules[i]);
}

/* --module files, for a multiboot kernel only. */
static int guest_modules_open(struct guest_files *f, const struct vm_config *cfg, struct err **e)
{
	if (cfg->nmodules && f->img.format != KERNEL_FORMAT_MULTIBOOT)
		return err_setx(e, EINVAL, "--module: kernel '%s' is a%s %s, and only multiboot kernels take modules",
				cfg->kernel_path, f->img.format == KERNEL_FORMAT_ELF ? "n" : "",
				kernel_format_name(f->img.format));
	for (unsigned i = 0; i < cfg->nmodules; i++) {
		int r = mapped_file_open(&f->modules[i], "module", cfg->modules[i].path, cfg->memory, e);
		if (r < 0)
			return r;
		if (vm_config_module_string(&cfg->modules[i], f->module_strings[i], sizeof(f->module_strings[i])) < 0)
			return err_setx(e, ENAMETOOLONG, "module '%s': its path and command line exceed %zu bytes",
					cfg->modules[i].path, sizeof(f->module_strings[i]) - 1);
		f->boot_modules[i] = (struct boot_module){cfg->modules[i].path, f->module_strings[i], &f->modules[i]};
	}
	return 0;
}

static int guest_files_open(struct guest_files *f, const struct vm_config *cfg, struct err **e)
{
	struct guest_memory layout;
	int r;

	memset(f, 0, sizeof(*f));
	f->kernel.fd = f->initrd.fd = -1;
	for (unsigned i = 0; i < VM_MAX_MODULES; i++)
		f->modules[i].fd = -1;
	r = mapped_file_open(&f->kernel, "kernel", cfg->kernel_path, cfg->memory, e);
	if (r < 0)
		return r;
	r = kernel_image_parse(f->kernel.data, f->kernel.len, &f->img, e);
	if (r < 0)
		return err_wrap(e, "kernel '%s'", cfg->kernel_path);
	guest_memory_layout(&layout, cfg->memory);
	r = boot_check_kernel_fits(&layout, &f->img, cfg->kernel_path, e);
	if (r == 0)
		r = guest_modules_open(f, cfg, e);
	if (r < 0)
		return r;
	if (cfg->initrd_path)
		return mapped_file_open(&f->initrd, "initrd", cfg->initrd_path, cfg->memory, e);
	return 0;
}

static int load_guest(struct vm *vm, const struct guest_files *files, struct err **e)
{
	struct boot_config boot;
	struct boot_entry entry;
	struct acpi_config acpi = {
	    .ncpus = vm->nvcpus, .describe_devices = devices_describe_acpi, .opaque = vm->devices};
	uint64_t rsdp;
	int r;

	r = acpi_build(&vm->mem, &acpi, &rsdp, e);
	if (r == 0)
		r = reset_vector_write(&vm->mem, e);
	if (r < 0)
		return r;
	boot = (struct boot_config){
	    .kernel_name = vm->cfg.kernel_path,
	    .initrd_name = vm->cfg.initrd_path,
	    .cmdline = vm->cfg.cmdline,
	    .initrd = files->initrd.data ? &files->initrd : NULL,
	    .rsdp_addr = rsdp,
	    .modules = files->boot_modules,
	    .nmodules = vm->cfg.nmodules,
	    .loader_name = "casulo-vmm " CASULO_VERSION,
	};
	r = boot_load(&vm->mem, &files->img, &files->kernel, &boot, &entry, e);
	if (r == 0)
		r = regs_setup_boot_tables(&vm->mem, e);
	if (r == 0)
		r = regs_write_gdt(&vm->mem, entry.kind, e);
	if (r == 0)
		r = vcpu_setup_boot(&vm->vcpus[0], &entry, e);
	if (r == 0)
		fw_cfg_set_boot(vm, entry.cmdline_addr, entry.initrd_addr);
	if (r == 0)
		log_debug("boot: %s kernel, %s entry at 0x%llx", kernel_format_name(files->img.format),
			  entry.kind == KERNEL_ENTRY_PVH	 ? "PVH"
			  : entry.kind == KERNEL_ENTRY_MULTIBOOT ? "multiboot 32-bit"
								 : "64-bit",
			  (unsigned long long)entry.entry);
	return r;
}

static int validate_config(const struct vm_config *cfg, struct err **e)
{
	if (cfg->kernel_path == NULL)
		return err_setx(e, EINVAL, "kernel: no kernel given");
	if (vm_config_check_cpus(cfg->cpus, "cpus", e) < 0 || vm_config_check_memory(cfg->memory, "memory", e) < 0)
		return -EINVAL;
	return 0;
}

/* The devices every VM has, in this order. */
static const struct device_type *const builtin_devices[] = {
    &serial_type, &rtc_type, &i8042_type, &platform_type, &pci_host_type, &power_button_type, &fw_cfg_type,
};

/* The virtio devices the configuration asks for, in this order: it gives
 * them their MMIO windows and interrupt lines, and a snapshot finds them
 * again by it.  A new virtio device is one line here. */
static const struct device_type *const virtio_devices[] = {
    &virtio_blk_type,	&virtio_net_type,     &virtio_rng_type, &virtio_console_type,
    &virtio_vsock_type, &virtio_balloon_type, &virtio_fs_type,
};

/* The devices the configuration may ask for beside the virtio ones. */
static const struct device_type *const optional_devices[] = {
    &debug_exit_type,
};

static int create_builtin_devices(struct vm *vm, struct err **e)
{
	for (size_t i = 0; i < ARRAY_SIZE(builtin_devices); i++) {
		int r = builtin_devices[i]->create(vm, &vm->cfg, e);
		if (r < 0)
			return err_wrap(e, "device '%s'", builtin_devices[i]->name);
	}
	return 0;
}

/* Their own messages name them ("virtio-blk 'disk0': ..."). */
static int create_devices(struct vm *vm, const struct device_type *const *types, size_t n, struct err **e)
{
	for (size_t i = 0; i < n; i++) {
		int r = types[i]->create(vm, &vm->cfg, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static void console_quit(void *opaque)
{
	vm_request_exit(opaque, VM_EXIT_USER);
}

static int create_vcpus(struct vm *vm, struct err **e)
{
	struct vcpu_setup setup = {
	    .vm = vm,
	    .vm_fd = vm->vm_fd,
	    .run_size = vm->run_size,
	    .supported_cpuid = vm->supported_cpuid,
	    .ncpus = vm->nvcpus,
	    .pio = &vm->pio,
	    .mmio = &vm->mmio,
	};
	int r = 0;

	vm->vcpus = calloc(vm->nvcpus, sizeof(*vm->vcpus));
	if (vm->vcpus == NULL)
		return err_set(e, ENOMEM, "vm: %u vcpus", vm->nvcpus);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vm->vcpus[i].fd = -1;
	for (unsigned i = 0; r == 0 && i < vm->nvcpus; i++)
		r = vcpu_create(&vm->vcpus[i], &setup, i, e);
	return r;
}

static int kvm_open_and_create(struct vm *vm, struct err **e)
{
	int r = kvm_open(vm, e);

	if (r == 0)
		r = kvm_create_vm(vm, e);
	if (r == 0)
		log_step("machine: KVM VM created (/dev/kvm, irqchip, PIT)");
	return r;
}

static void *kvm_thread(void *opaque)
{
	struct vm *vm = opaque;

	vm->kvm_thread_result = kvm_open_and_create(vm, &vm->kvm_thread_err);
	return NULL;
}

int machine_start_kvm(struct vm *vm, struct err **e)
{
	int r = thread_start(&vm->kvm_thread, kvm_thread, vm);

	if (r != 0)
		return err_set(e, r, "vm: start the KVM set-up thread");
	vm->kvm_thread_started = true;
	log_step("machine: KVM set-up thread started");
	return 0;
}

/* machine_start_kvm()'s result, once its thread is done. */
static int kvm_join(struct vm *vm, struct err **e)
{
	if (!vm->kvm_thread_started)
		return 0;
	pthread_join(vm->kvm_thread, NULL);
	vm->kvm_thread_started = false;
	if (vm->kvm_thread_result < 0) {
		err_free(e);
		*e = vm->kvm_thread_err;
		vm->kvm_thread_err = NULL;
	}
	return vm->kvm_thread_result;
}

/* The KVM VM: made by machine_start_kvm()'s thread, or here. */
static int kvm_ready(struct vm *vm, struct err **e)
{
	int r = vm->kvm_thread_started ? kvm_join(vm, e) : vm->vm_fd >= 0 ? 0 : kvm_open_and_create(vm, e);

	return r == 0 ? kvm_check_vcpus(vm, e) : r;
}

int machine_build(struct vm *vm, int memory_fd, struct err **e)
{
	const struct vm_config *cfg = &vm->cfg;
	int r;

	vm->nvcpus = cfg->cpus;
	r = map_memory(vm, memory_fd, e);
	if (r == 0) {
		log_step("machine: guest memory mapped (%llu MiB)", (unsigned long long)(vm->mem.size >> 20));
		r = kvm_ready(vm, e);
	}
	if (r == 0)
		r = register_memory(vm, e);
	if (r == 0) {
		log_step("machine: guest memory given to KVM");
		r = console_create(&(struct console_setup){.mode = cfg->console,
							   .path = cfg->console_path,
							   .loop = &vm->loop,
							   .quit = console_quit,
							   .quit_opaque = vm},
				   &vm->console, e);
	}
	if (r == 0)
		r = create_builtin_devices(vm, e);
	if (r == 0)
		r = create_devices(vm, virtio_devices, ARRAY_SIZE(virtio_devices), e);
	if (r == 0)
		r = create_devices(vm, optional_devices, ARRAY_SIZE(optional_devices), e);
	if (r == 0) {
		log_step("machine: devices created");
		r = create_vcpus(vm, e);
	}
	if (r == 0) {
		log_step("machine: %u vCPUs created", vm->nvcpus);
		r = kvm_state_prepare(vm, e);
	}
	if (r == 0)
		log_step("machine: built");
	return r;
}

int machine_create(struct vm **ret, const struct vm_config *cfg, struct err **e)
{
	struct guest_files files;
	struct vm *vm;
	int r;

	r = validate_config(cfg, e);
	if (r < 0)
		return r;
	r = guest_files_open(&files, cfg, e);
	if (r == 0)
		r = vm_new(&vm, cfg, e);
	if (r < 0) {
		guest_files_release(&files);
		return r;
	}
	r = machine_build(vm, -1, e);
	if (r == 0)
		r = load_guest(vm, &files, e);
	if (r == 0)
		r = devices_start(vm->devices, e);
	guest_files_release(&files);
	if (r < 0) {
		machine_destroy(vm);
		return r;
	}
	*ret = vm;
	return 0;
}

int machine_create_waiting(struct vm **ret, const struct vm_config *cfg, struct err **e)
{
	int r = vm_new(ret, cfg, e);

	if (r == 0)
		(*ret)->state = VM_STATE_NOT_STARTED;
	return r;
}

void machine_destroy(struct vm *vm)
{
	struct err *e = NULL;

	if (vm == NULL)
		return;
	(void)kvm_join(vm, &e);
	err_free(&e);
	/* vm_run() joined the vCPU threads before it returned. */
	for (unsigned i = 0; vm->vcpus && i < vm->nvcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
	devices_destroy_all(&vm->devices);
	console_destroy(vm->console);
	guest_memory_destroy(&vm->mem);
	free(vm->supported_cpuid);
	free(vm->msr_indices);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm_free(vm);
}
