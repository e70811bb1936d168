/*
 * The running VM: its state, the vCPU threads (park on pause, leave on
 * stop), the VMM thread's loop, exit requests, interrupt lines and the
 * device list.  What a VM is built from is the machine builder's
 * (machine.c); this file knows no device model.
 */
#include "vmm/vm.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "casulo-config.h"
#include "common/log.h"
#include "vmm/console.h"
#include "vmm/devices/device.h"
#include "vmm/halt-watch.h"
#include "vmm/seccomp.h"
#include "vmm/vcpu.h"

/* A vm_call() waiting for the VMM thread; lives on the caller's stack. */
struct vm_call {
	vm_call_fn fn;
	void *arg;
	int result;
	bool done;
	struct vm_call *next;
};

/* VMM thread: run every call queued. */
static void on_calls(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t v;

	(void)events;
	(void)!read(vm->call_fd, &v, sizeof(v));
	for (;;) {
		struct vm_call *c;
		int result;

		pthread_mutex_lock(&vm->call_lock);
		c = vm->call_head;
		if (c) {
			vm->call_head = c->next;
			if (vm->call_head == NULL)
				vm->call_tail = NULL;
		}
		pthread_mutex_unlock(&vm->call_lock);
		if (c == NULL)
			break;
		result = c->fn(vm, c->arg);
		pthread_mutex_lock(&vm->call_lock);
		c->result = result;
		c->done = true;
		pthread_cond_broadcast(&vm->call_done);
		pthread_mutex_unlock(&vm->call_lock);
	}
}

/* The VM has stopped: what is queued fails, and so will every later call. */
static void close_calls(struct vm *vm)
{
	pthread_mutex_lock(&vm->call_lock);
	vm->calls_closed = true;
	for (struct vm_call *c = vm->call_head; c; c = c->next) {
		c->result = -ESHUTDOWN;
		c->done = true;
	}
	vm->call_head = vm->call_tail = NULL;
	pthread_cond_broadcast(&vm->call_done);
	pthread_mutex_unlock(&vm->call_lock);
}

int vm_call(struct vm *vm, vm_call_fn fn, void *arg)
{
	struct vm_call c = {.fn = fn, .arg = arg};
	uint64_t one = 1;

	pthread_mutex_lock(&vm->call_lock);
	if (vm->calls_closed) {
		pthread_mutex_unlock(&vm->call_lock);
		return -ESHUTDOWN;
	}
	if (vm->call_tail)
		vm->call_tail->next = &c;
	else
		vm->call_head = &c;
	vm->call_tail = &c;
	(void)!write(vm->call_fd, &one, sizeof(one));
	while (!c.done)
		pthread_cond_wait(&vm->call_done, &vm->call_lock);
	pthread_mutex_unlock(&vm->call_lock);
	return c.result;
}

/* The VMM thread's loop, the exit eventfd and the signals that end the VM. */
static int setup_events(struct vm *vm, struct err **e)
{
	sigset_t set;

	vm->exit_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->exit_eventfd < 0)
		return err_set(e, errno, "vm: exit eventfd");
	/* SIGINT and SIGTERM end the VM through the loop, never mid-exit. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return err_set(e, errno, "vm: block SIGINT, SIGTERM, SIGHUP");
	vm->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (vm->signal_fd < 0)
		return err_set(e, errno, "vm: signalfd");
	signal(SIGPIPE, SIG_IGN);
	if (event_loop_init(&vm->loop, e) < 0)
		return -err_code(*e);
	vm->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->call_fd < 0)
		return err_set(e, errno, "vm: calls eventfd");
	return event_loop_add(&vm->loop, vm->call_fd, EPOLLIN, on_calls, vm, e);
}

int vm_new(struct vm **ret, const struct vm_config *cfg, struct err **e)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int r;

	if (vm == NULL)
		return err_set(e, ENOMEM, "vm: allocate");
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = vm->exit_eventfd = vm->signal_fd = vm->call_fd = vm->halt_watch.timer_fd = -1;
	vm->loop.epfd = -1;
	vm->nvcpus = cfg->cpus;
	pthread_mutex_init(&vm->call_lock, NULL);
	pthread_cond_init(&vm->call_done, NULL);
	pthread_mutex_init(&vm->error_lock, NULL);
	pthread_mutex_init(&vm->run_lock, NULL);
	pthread_cond_init(&vm->run_cond, NULL);
	bus_init(&vm->pio, "port I/O");
	bus_init(&vm->mmio, "MMIO");
	r = vm_affinity_init(&vm->affinity, e);
	if (r == 0)
		r = setup_events(vm, e);
	if (r < 0) {
		vm_free(vm);
		return r;
	}
	*ret = vm;
	return 0;
}

void vm_free(struct vm *vm)
{
	if (vm == NULL)
		return;
	close_calls(vm);
	halt_watch_stop(&vm->halt_watch);
	if (vm->loop.epfd >= 0)
		event_loop_destroy(&vm->loop);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	if (vm->signal_fd >= 0)
		close(vm->signal_fd);
	if (vm->exit_eventfd >= 0)
		close(vm->exit_eventfd);
	if (vm->call_fd >= 0)
		close(vm->call_fd);
	free(vm->error);
	if (vm->owns_cfg)
		vm_config_free(&vm->cfg);
	pthread_mutex_destroy(&vm->error_lock);
	pthread_mutex_destroy(&vm->run_lock);
	pthread_cond_destroy(&vm->run_cond);
	pthread_mutex_destroy(&vm->call_lock);
	pthread_cond_destroy(&vm->call_done);
	free(vm);
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

void vm_add_device(struct vm *vm, struct device *dev)
{
	device_list_add(&vm->devices, dev);
}

void vm_set_irq(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level irq = {.irq = gsi, .level = (uint32_t)level};

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_debug("KVM_IRQ_LINE %u=%d: %s", gsi, level, strerror(errno));
}

const char *vm_exit_reason_name(enum vm_exit_reason r)
{
	switch (r) {
	case VM_EXIT_NONE:
		return "running";
	case VM_EXIT_POWEROFF:
		return "poweroff";
	case VM_EXIT_REBOOT:
		return "reboot";
	case VM_EXIT_ERROR:
		return "error";
	case VM_EXIT_SIGNAL:
		return "signal";
	case VM_EXIT_USER:
		return "quit";
	case VM_EXIT_STOPPED:
		return "stopped";
	case VM_EXIT_MIGRATED:
		return "migrated";
	case VM_EXIT_DEBUG_EXIT:
		return "debug-exit";
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

/* vCPU thread: wait here while a pause is requested. */
static void vcpu_park(struct vm *vm)
{
	pthread_mutex_lock(&vm->run_lock);
	vm->parked_vcpus++;
	pthread_cond_broadcast(&vm->run_cond);
	while (vm->pause_requested && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->run_cond, &vm->run_lock);
	vm->parked_vcpus--;
	pthread_mutex_unlock(&vm->run_lock);
}

/* The vCPU thread: enter the guest until the VM stops, parking while it
 * is paused.  What ends the guest becomes an exit request. */
static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	char why[192];
	bool running = true, first_exit = true;
	struct err *e = NULL;

	vcpu_thread_init(vcpu);
	if (vm_affinity_enter_vcpu(&vm->affinity, vcpu, &e) < 0 || vmm_seccomp_install(VMM_THREAD_VCPU, &e) < 0) {
		vm_fail(vm, "vcpu %u: %s", vcpu->id, e->msg);
		err_free(&e);
		return NULL;
	}
	log_step("vcpu %u: first KVM_RUN", vcpu->id);
	/* Once the VM's end is asked for (a reset or poweroff register, a
	 * signal...), the guest runs no further: a kernel that goes on to its
	 * next reboot method (a triple fault after 0xcf9) would only add noise. */
	while (running && !atomic_load(&vm->stopping) && atomic_load(&vm->exit_reason) == VM_EXIT_NONE) {
		if (__atomic_load_n(&vm->pause_requested, __ATOMIC_ACQUIRE) && !vcpu->io_pending) {
			vcpu_park(vm);
			continue;
		}
		enum vcpu_event ev = vcpu_run(vcpu, why, sizeof(why));

		if (unlikely(first_exit)) {
			log_step("vcpu %u: first exit from the guest (%s)", vcpu->id,
				 ev == VCPU_EVENT_INTERRUPTED ? "interrupted" : vcpu_exit_name(vcpu->run->exit_reason));
			first_exit = false;
		}
		switch (ev) {
		case VCPU_EVENT_CONTINUE:
			break;
		case VCPU_EVENT_INTERRUPTED:
			halt_watch_answer(&vm->halt_watch, vcpu);
			break;
		case VCPU_EVENT_POWEROFF:
			vm_request_exit(vm, VM_EXIT_POWEROFF);
			running = false;
			break;
		case VCPU_EVENT_REBOOT:
			vm_request_exit(vm, VM_EXIT_REBOOT);
			running = false;
			break;
		case VCPU_EVENT_FATAL:
			vm_fail(vm, "%s", why);
			running = false;
			break;
		}
	}
	pthread_mutex_lock(&vm->run_lock);
	vcpu->exited = true;
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	return NULL;
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
	devices_pause(vm->devices);
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
	devices_resume(vm->devices);
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
	case VM_STATE_NOT_STARTED:
		return "not-started";
	case VM_STATE_RUNNING:
		return "running";
	case VM_STATE_PAUSED:
		return "paused";
	case VM_STATE_STOPPED:
		return "stopped";
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

static bool vm_is_running(void *opaque)
{
	const struct vm *vm = opaque;

	return vm->state == VM_STATE_RUNNING;
}

static void guest_stopped_for_good(void *opaque)
{
	vm_request_exit(opaque, VM_EXIT_POWEROFF);
}

static int start_halt_watch(struct vm *vm, struct err **e)
{
	struct halt_watch *w = &vm->halt_watch;

	w->loop = &vm->loop;
	w->vcpus = vm->vcpus;
	w->nvcpus = vm->nvcpus;
	w->running = vm_is_running;
	w->stopped = guest_stopped_for_good;
	w->opaque = vm;
	return halt_watch_start(w, e);
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
	/* A restored VM's vCPU count comes from its snapshot. */
	for (unsigned i = vm->nvcpus; r == 0 && i < VM_MAX_CPUS; i++)
		if (vm->affinity.has_vcpu[i])
			r = err_setx(e, EINVAL, "--cpus affinity: vCPU %u does not exist (the VM has %u)", i,
				     vm->nvcpus);
	clock_gettime(CLOCK_MONOTONIC, &vm->started);
	for (unsigned i = 0; r == 0 && i < vm->nvcpus; i++)
		r = vcpu_start(&vm->vcpus[i], vcpu_thread, e);
	if (r == 0) {
		log_step("vm: %u vCPU threads started", vm->nvcpus);
		r = start_halt_watch(vm, e);
	}
	/* After the threads it starts for good (the vCPUs), before the first
	 * event from a running guest. */
	if (r == 0)
		r = vmm_seccomp_install(VMM_THREAD_VMM, e);
	vmm_seccomp_prepare_join();
	if (r < 0) {
		stop_vcpus(vm);
		close_calls(vm);
		return r;
	}
	vm->state = VM_STATE_RUNNING;
	log_step("vm: running %u vCPUs", vm->nvcpus);
	while (atomic_load(&vm->exit_reason) == VM_EXIT_NONE) {
		r = event_loop_run_once(&vm->loop);
		if (r < 0) {
			stop_vcpus(vm);
			close_calls(vm); /* nobody runs them any more */
			return err_set(e, -r, "event loop: epoll_wait");
		}
		console_poll(vm->console);
	}
	stop_vcpus(vm);
	halt_watch_stop(&vm->halt_watch);
stopped:
	vm->state = VM_STATE_STOPPED;
	close_calls(vm);

	reason = (enum vm_exit_reason)atomic_load(&vm->exit_reason);
	log_info("vm: stopped: %s", vm_exit_reason_name(reason));
	switch (reason) {
	case VM_EXIT_POWEROFF:
	case VM_EXIT_REBOOT:
	case VM_EXIT_DEBUG_EXIT:
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
