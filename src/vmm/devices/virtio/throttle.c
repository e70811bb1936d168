#include "vmm/devices/virtio/throttle.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "vmm/devices/virtio/virtio.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A throttled queue waits at least 2 ms, so that each wake-up serves
 * several requests at high request rates (a wake-up per token would cost
 * more than the requests), but never long enough for a bucket to fill up
 * meanwhile: the tokens are counted, not lost, so the rate holds. */
#define THROTTLE_MIN_WAIT_NS 2000000ULL

static void limits_set(struct throttle *t, const struct ratelimit_config *cfg)
{
	uint64_t refill_ms = UINT64_MAX;

	t->cfg = *cfg;
	ratelimit_init(&t->rl, cfg, now_ns());
	if (cfg->bandwidth.size)
		refill_ms = cfg->bandwidth.refill_ms;
	if (cfg->ops.size)
		refill_ms = MIN(refill_ms, cfg->ops.refill_ms);
	t->min_wait_ns = MIN(THROTTLE_MIN_WAIT_NS, refill_ms == UINT64_MAX ? 0 : refill_ms * 1000000ULL / 2);
	__atomic_store_n(&t->enabled, ratelimit_config_enabled(cfg), __ATOMIC_RELAXED);
}

static int arm_at(int fd, uint64_t at_ns)
{
	struct itimerspec its = {.it_value = {(time_t)(at_ns / 1000000000ULL), (long)(at_ns % 1000000000ULL)}};

	return timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_timer(struct virtio_dev *vd, int fd, uint32_t events)
{
	struct throttle *t = NULL;
	uint64_t v;

	(void)events;
	(void)!read(fd, &v, sizeof(v));
	/* The device's watch carries the fd; find its throttle through the
	 * model, which registered it with its own resume function. */
	for (struct throttle *const *p = vd->throttles; p < vd->throttles + VIRTIO_MAX_THROTTLES; p++)
		if (*p && (*p)->timer_fd == fd)
			t = *p;
	if (t == NULL || !t->waiting)
		return;
	t->waiting = false;
	if (vd->active && !vd->broken && !vd->paused)
		t->resume(vd, t);
}

int throttle_init(struct throttle *t, struct virtio_dev *vd, const struct ratelimit_config *cfg,
		  throttle_resume_fn resume, const char *name, const char *what, struct err **e)
{
	unsigned slot;
	int r;

	memset(t, 0, sizeof(*t));
	t->timer_fd = -1;
	pthread_mutex_init(&t->lock, NULL);
	t->vd = vd;
	t->name = name;
	t->resume = resume;
	limits_set(t, cfg);
	for (slot = 0; slot < VIRTIO_MAX_THROTTLES && vd->throttles[slot]; slot++)
		;
	if (slot == VIRTIO_MAX_THROTTLES)
		return err_setx(e, E2BIG, "%s: too many rate limiters on one device", what);
	/* Always there, so that a limit set at run time needs nothing new. */
	t->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->timer_fd < 0)
		return err_set(e, errno, "%s: timerfd for the rate limiter", what);
	r = virtio_dev_watch(vd, t->timer_fd, EPOLLIN, on_timer, e);
	if (r < 0)
		return r;
	vd->throttles[slot] = t;
	return 0;
}

struct throttle *throttle_find(struct virtio_dev *vd, const char *name)
{
	for (unsigned i = 0; i < VIRTIO_MAX_THROTTLES; i++)
		if (vd->throttles[i] && strcmp(vd->throttles[i]->name, name) == 0)
			return vd->throttles[i];
	return NULL;
}

void throttle_destroy(struct throttle *t)
{
	if (t->timer_fd >= 0)
		close(t->timer_fd);
	t->timer_fd = -1;
	pthread_mutex_destroy(&t->lock);
}

bool throttle_admit(struct throttle *t, uint64_t bytes)
{
	uint64_t now, wait;

	if (t->waiting)
		return false;
	if (!__atomic_load_n(&t->enabled, __ATOMIC_RELAXED))
		return true;
	pthread_mutex_lock(&t->lock);
	/* One clock read a round (throttle_round()): it is not cheap
	 * everywhere (450 ns with kvm-clock in a VM, far more under TCG). */
	if (!t->clock_fresh) {
		t->clock_ns = now_ns();
		t->clock_fresh = true;
	}
	wait = ratelimit_consume(&t->rl, bytes, true, t->clock_ns);
	if (wait) {
		/* Late in a long round: the time now may have the tokens. */
		t->clock_ns = now_ns();
		wait = ratelimit_consume(&t->rl, bytes, true, t->clock_ns);
	}
	now = t->clock_ns;
	if (wait) {
		wait = MAX(wait, t->min_wait_ns);
		/* Armed under the lock: a throttle_set() after it wakes us sooner. */
		if (t->timer_fd >= 0 && arm_at(t->timer_fd, now + wait) == 0) {
			t->waiting = true;
			__atomic_add_fetch(&t->throttled, 1, __ATOMIC_RELAXED);
		} else {
			/* No timer to wake us (an inline device, or a failure):
			 * better to let it through than to stall the queue forever. */
			wait = 0;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return wait == 0;
}

void throttle_get(struct throttle *t, struct ratelimit_config *cfg)
{
	pthread_mutex_lock(&t->lock);
	*cfg = t->cfg;
	pthread_mutex_unlock(&t->lock);
}

void throttle_set(struct throttle *t, const struct ratelimit_config *cfg)
{
	pthread_mutex_lock(&t->lock);
	limits_set(t, cfg);
	/* Wake a device that waits, to try the new limits now. */
	if (t->timer_fd >= 0 && arm_at(t->timer_fd, 1) < 0)
		log_warn("rate limiter: timerfd_settime: %s", strerror(errno));
	pthread_mutex_unlock(&t->lock);
}
