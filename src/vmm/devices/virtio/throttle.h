/*
 * A rate limiter on a virtio device's queue (virtio-blk's requests,
 * virtio-net's receive and transmit): the token buckets of
 * common/ratelimit.h with a timerfd on the device thread.
 *
 * Before serving a request the device asks throttle_admit() with its
 * size.  When the buckets lack the tokens the throttle arms its timer for
 * the moment they will hold them and the device stops serving that queue,
 * leaving the request in the ring (or, for a received frame, in its
 * buffer): the guest sees a queue that does not move, nothing is dropped.
 * When the timer fires the throttle calls the device's resume function,
 * which serves the queue again.
 *
 * The limits change at run time from the VMM thread (throttle_set()): new
 * full buckets, as Firecracker's PATCH does, and a device that waits is
 * woken at once to try them.
 */
#ifndef CASULO_VMM_DEVICES_VIRTIO_THROTTLE_H
#define CASULO_VMM_DEVICES_VIRTIO_THROTTLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ratelimit.h"

struct virtio_dev;
struct throttle;

/* Device thread: tokens are back (or the limits changed); serve again. */
typedef void (*throttle_resume_fn)(struct virtio_dev *vd, struct throttle *t);

struct throttle {
	struct virtio_dev *vd;
	const char *name; /* the limit's name in the API: "rate", "rx_rate", "tx_rate" */
	throttle_resume_fn resume;
	int timer_fd;
	bool waiting; /* device thread: the queue waits for the timer */

	pthread_mutex_t lock; /* cfg and rl: the VMM thread changes them */
	bool enabled;	      /* written under lock; read without it on the fast path */
	struct ratelimit_config cfg;
	struct ratelimit rl;
	uint64_t clock_ns;    /* the clock, read once a round (see throttle_round()) */
	bool clock_fresh;     /* clock_ns was read in this round */
	uint64_t min_wait_ns; /* a throttled queue waits at least this long */

	uint64_t throttled; /* requests that had to wait, for GET /metrics */
};

/* Set up t for vd with the limits of cfg (none when it limits nothing):
 * its timerfd, watched on the device thread.  name is static text; what
 * names the device in errors ("disk 'a.img'"). */
int throttle_init(struct throttle *t, struct virtio_dev *vd, const struct ratelimit_config *cfg,
		  throttle_resume_fn resume, const char *name, const char *what, struct err **e) MUST_CHECK;
/* Any thread: vd's limiter called name, or NULL. */
struct throttle *throttle_find(struct virtio_dev *vd, const char *name);
void throttle_destroy(struct throttle *t);

/* Device thread: may a request of `bytes` bytes (one operation) be served
 * now?  true: its tokens are taken.  false: the queue must wait; the
 * timer will call resume. */
bool throttle_admit(struct throttle *t, uint64_t bytes);
/* Device thread: a new round of serving the queue begins (a kick, the
 * timer, the TAP): the round's first throttle_admit() reads the clock and
 * the others take that time, so that a busy queue pays one clock read a
 * round, not one a request.  A request counted as a little earlier than
 * it is only has its refill come later. */
static inline void throttle_round(struct throttle *t)
{
	t->clock_fresh = false;
}
/* Device thread: is the queue waiting for the timer? */
static inline bool throttle_waiting(const struct throttle *t)
{
	return t->waiting;
}

/* Any thread: the limits now and from now on. */
void throttle_get(struct throttle *t, struct ratelimit_config *cfg);
void throttle_set(struct throttle *t, const struct ratelimit_config *cfg);

#endif
