#include "vmm/halt-watch.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "common/log.h"
#include "vmm/event-loop.h"
#include "vmm/vcpu.h"

#define X86_RFLAGS_IF (1ULL << 9)

void halt_watch_answer(const struct halt_watch *w, struct vcpu *vcpu)
{
	unsigned round = atomic_load(&w->round);
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	bool stopped = false;

	if (atomic_load(&vcpu->halt_answer.round) == round)
		return;
	if (ioctl(vcpu->fd, KVM_GET_MP_STATE, &mp) == 0) {
		if (mp.mp_state == KVM_MP_STATE_HALTED)
			stopped = ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0 && !(regs.rflags & X86_RFLAGS_IF);
		else
			/* An AP that was never started (or was sent INIT) waits for a SIPI. */
			stopped =
			    mp.mp_state == KVM_MP_STATE_UNINITIALIZED || mp.mp_state == KVM_MP_STATE_INIT_RECEIVED;
	}
	atomic_store(&vcpu->halt_answer.stopped, stopped);
	atomic_store(&vcpu->halt_answer.round, round);
}

static bool every_vcpu_stopped(const struct halt_watch *w, unsigned round)
{
	for (unsigned i = 0; i < w->nvcpus; i++) {
		struct halt_answer *a = &w->vcpus[i].halt_answer;
		if (atomic_load(&a->round) != round || !atomic_load(&a->stopped))
			return false;
	}
	return true;
}

static void halt_watch_tick(void *opaque, uint32_t events)
{
	struct halt_watch *w = opaque;
	unsigned round = atomic_load(&w->round);
	uint64_t expirations;

	(void)events;
	(void)!read(w->timer_fd, &expirations, sizeof(expirations));
	if (!w->running(w->opaque)) {
		/* Paused vCPUs answer nothing; start over once they run. */
		w->rounds_stopped = 0;
		return;
	}
	w->rounds_stopped = every_vcpu_stopped(w, round) ? w->rounds_stopped + 1 : 0;
	if (w->rounds_stopped >= HALT_WATCH_ROUNDS) {
		log_info("vm: every vCPU halted with interrupts disabled; the guest stopped, which ends the VM");
		w->stopped(w->opaque);
		return;
	}
	atomic_store(&w->round, round + 1);
	/* Not vcpu_kick(): no immediate_exit, a running vCPU just re-enters. */
	for (unsigned i = 0; i < w->nvcpus; i++)
		if (w->vcpus[i].thread_started)
			pthread_kill(w->vcpus[i].thread, VCPU_KICK_SIGNAL);
}

int halt_watch_start(struct halt_watch *w, struct err **e)
{
	struct itimerspec every = {
	    .it_interval = {.tv_nsec = HALT_WATCH_PERIOD_MS * 1000000L},
	    .it_value = {.tv_nsec = HALT_WATCH_PERIOD_MS * 1000000L},
	};
	w->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (w->timer_fd < 0)
		return err_set(e, errno, "halt watch: timerfd_create");
	if (timerfd_settime(w->timer_fd, 0, &every, NULL) < 0)
		return err_set(e, errno, "halt watch: timerfd_settime");
	return event_loop_add(w->loop, w->timer_fd, EPOLLIN, halt_watch_tick, w, e);
}

void halt_watch_stop(struct halt_watch *w)
{
	if (w->timer_fd < 0)
		return;
	if (w->loop && w->loop->epfd >= 0)
		event_loop_remove(w->loop, w->timer_fd);
	close(w->timer_fd);
	w->timer_fd = -1;
}
