#include "vmm/devices/virtio/coalesce.h"

#include <string.h>

/* A pause longer than this starts a new stream: the old mean says nothing. */
#define COALESCE_IDLE_NS 10000000ULL

void coalesce_reset(struct coalesce *c)
{
	/* Field by field: the counters stay (and are read by other threads). */
	c->last_arrival = c->gap_ewma = 0;
	c->holding = c->arrived_in_hold = false;
	c->hold_start = c->hold_quiet_until = 0;
	c->held = c->signal_at_once = 0;
	c->backoff = COALESCE_BACKOFF_MIN;
}

void coalesce_init(struct coalesce *c, bool enabled)
{
	memset(c, 0, sizeof(*c));
	c->enabled = enabled;
	coalesce_reset(c);
}

static uint64_t quiet_time(const struct coalesce *c)
{
	uint64_t q = 2 * c->gap_ewma;

	if (q < COALESCE_QUIET_MIN_NS)
		return COALESCE_QUIET_MIN_NS;
	return q > COALESCE_QUIET_MAX_NS ? COALESCE_QUIET_MAX_NS : q;
}

void coalesce_arrival(struct coalesce *c, coalesce_clock_fn clock)
{
	uint64_t now;

	if (!c->enabled)
		return;
	if (c->signal_at_once > 0 && !c->holding) {
		/* No hold can start for a while: spare the clock, and let the
		 * gap measurement start afresh afterwards. */
		c->last_arrival = 0;
		return;
	}
	now = clock();
	if (c->last_arrival != 0 && now >= c->last_arrival) {
		uint64_t gap = now - c->last_arrival;

		if (gap > COALESCE_IDLE_NS)
			c->gap_ewma = 0;
		else if (c->gap_ewma == 0)
			c->gap_ewma = gap;
		else
			c->gap_ewma = c->gap_ewma - c->gap_ewma / 8 + gap / 8;
	}
	c->last_arrival = now;
	if (c->holding) {
		c->arrived_in_hold = true;
		c->hold_quiet_until = now + quiet_time(c);
	}
}

/* The hold is over: was it worth its delay? */
static void end_hold(struct coalesce *c)
{
	if (!c->arrived_in_hold && c->held <= 1) {
		/* The guest was waiting on this one request. */
		__atomic_add_fetch(&c->holds_wasted, 1, __ATOMIC_RELAXED);
		c->signal_at_once = c->backoff;
		if (c->backoff < COALESCE_BACKOFF_MAX)
			c->backoff *= 2;
	} else {
		c->backoff = COALESCE_BACKOFF_MIN;
	}
	c->holding = false;
	c->held = 0;
}

bool coalesce_completed(struct coalesce *c, coalesce_clock_fn clock, unsigned n)
{
	uint64_t now;

	if (n == 0)
		return !c->holding;
	if (c->holding) {
		c->held += n;
		if (c->held < COALESCE_MAX_HELD)
			return false;
		end_hold(c);
		return true;
	}
	if (!c->enabled || c->gap_ewma == 0 || c->gap_ewma > COALESCE_GAP_MAX_NS)
		return true;
	if (c->signal_at_once > 0) {
		c->signal_at_once = c->signal_at_once > n ? c->signal_at_once - n : 0;
		return true;
	}
	now = clock();
	c->holding = true;
	__atomic_add_fetch(&c->holds, 1, __ATOMIC_RELAXED);
	c->hold_start = now;
	c->hold_quiet_until = now + quiet_time(c);
	c->held = n;
	c->arrived_in_hold = false;
	if (c->held >= COALESCE_MAX_HELD) {
		end_hold(c);
		return true;
	}
	return false;
}

uint64_t coalesce_deadline(const struct coalesce *c)
{
	uint64_t cap;

	if (!c->holding)
		return 0;
	cap = 4 * quiet_time(c);
	if (cap > COALESCE_HOLD_MAX_NS)
		cap = COALESCE_HOLD_MAX_NS;
	cap += c->hold_start;
	return c->hold_quiet_until < cap ? c->hold_quiet_until : cap;
}

bool coalesce_expired(struct coalesce *c, uint64_t now)
{
	if (!c->holding || now < coalesce_deadline(c))
		return false;
	end_hold(c);
	return true;
}

void coalesce_signalled(struct coalesce *c)
{
	/* Not a verdict on the hold: something else needed the interrupt. */
	c->holding = false;
	c->held = 0;
}
