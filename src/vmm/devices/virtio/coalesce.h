/*
 * Adaptive interrupt coalescing for a request queue (virtio-blk).
 *
 * Every interrupt costs the guest a VM exit to take it and two more to
 * read and acknowledge the virtio-mmio interrupt status, then an EOI:
 * when the guest keeps many requests in flight and the disk is fast, one
 * interrupt per request makes the guest's vCPU, not the disk, the
 * bottleneck.  The device may delay an interrupt (virtio 1.2, 2.7.7.2),
 * so while the guest is still submitting, completions are held and
 * signalled together.  A hold ends
 *   - when no new request has arrived for a "quiet" time (twice the mean
 *     gap between requests, 10-500 us): the guest has stopped submitting
 *     and may be waiting for us;
 *   - after 4 quiet times, at most 1 ms, whatever happens;
 *   - when 16 completions are held.
 * A hold during which no request arrived was a guest waiting on one
 * request (queue depth 1): it paid a quiet time of latency for nothing,
 * so the next 16 completions are signalled at once, then 32, ... up to
 * 1024 after each such hold in a row.  A request stream slower than one
 * request per millisecond is never held: its interrupts cost little.
 *
 * Pure logic on a clock the caller passes in (nanoseconds, monotonic),
 * read only when a decision needs it (while completions are signalled at
 * once it is not); the unit tests pass a fake one.  The device owns the
 * timer that wakes it at coalesce_deadline().
 */
#ifndef CASULO_VMM_DEVICES_VIRTIO_COALESCE_H
#define CASULO_VMM_DEVICES_VIRTIO_COALESCE_H

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t (*coalesce_clock_fn)(void);

#define COALESCE_GAP_MAX_NS 1000000ULL /* slower streams are never held */
#define COALESCE_QUIET_MIN_NS 10000ULL
#define COALESCE_QUIET_MAX_NS 500000ULL
#define COALESCE_HOLD_MAX_NS 1000000ULL
#define COALESCE_MAX_HELD 16
#define COALESCE_BACKOFF_MIN 16
#define COALESCE_BACKOFF_MAX 1024

struct coalesce {
	bool enabled;
	uint64_t last_arrival; /* 0: none yet */
	uint64_t gap_ewma;     /* mean time between request arrivals; 0: unknown */

	bool holding;
	uint64_t hold_start, hold_quiet_until;
	unsigned held; /* completions waiting for the interrupt */
	bool arrived_in_hold;

	unsigned signal_at_once; /* completions still to signal without holding */
	unsigned backoff;	 /* signal_at_once after the next hold that did not pay */

	/* Counters for GET /metrics. */
	uint64_t holds, holds_wasted;
};

void coalesce_init(struct coalesce *c, bool enabled);
/* Forget the stream (device reset); keeps `enabled`. */
void coalesce_reset(struct coalesce *c);
/* The guest made a new request available. */
void coalesce_arrival(struct coalesce *c, coalesce_clock_fn clock);
/* n requests completed (in the used ring, not signalled yet).  True: raise
 * the interrupt now; false: it is held until coalesce_deadline(). */
bool coalesce_completed(struct coalesce *c, coalesce_clock_fn clock, unsigned n);
/* When the hold in progress must end (0 when none is). */
uint64_t coalesce_deadline(const struct coalesce *c);
/* The timer fired: true when the hold is over and the interrupt is due
 * now; false when the deadline moved on (re-arm for coalesce_deadline())
 * or nothing is held. */
bool coalesce_expired(struct coalesce *c, uint64_t now);
/* The queue's interrupt was raised for another reason: nothing is held. */
void coalesce_signalled(struct coalesce *c);

#endif
