/* Adaptive interrupt coalescing (src/vmm/devices/virtio/coalesce.c) on a fake clock. */
#include "test.h"
#include "vmm/devices/virtio/coalesce.h"

#define US 1000ULL

static uint64_t fake_now = 1000000 * US;
static unsigned clock_reads;

static uint64_t fake_clock(void)
{
	clock_reads++;
	return fake_now;
}

/* A steady stream: one request every gap, each completing at once. */
static void arrive(struct coalesce *c, uint64_t gap)
{
	fake_now += gap;
	coalesce_arrival(c, fake_clock);
}

static void warm_up(struct coalesce *c, uint64_t gap)
{
	for (int i = 0; i < 20; i++)
		arrive(c, gap);
}

TEST(coalescing_off_signals_every_completion)
{
	struct coalesce c;

	coalesce_init(&c, false);
	warm_up(&c, 50 * US);
	for (int i = 0; i < 100; i++)
		CHECK(coalesce_completed(&c, fake_clock, 1));
	CHECK_INT(coalesce_deadline(&c), ==, 0);
	CHECK_INT(c.holds, ==, 0);
}

TEST(slow_stream_is_never_held)
{
	struct coalesce c;

	coalesce_init(&c, true);
	CHECK(coalesce_completed(&c, fake_clock, 1)); /* nothing known yet */
	warm_up(&c, 2000 * US);
	for (int i = 0; i < 10; i++) {
		arrive(&c, 2000 * US);
		CHECK(coalesce_completed(&c, fake_clock, 1));
	}
	CHECK_INT(c.holds, ==, 0);
}

TEST(busy_stream_holds_until_sixteen_completions)
{
	struct coalesce c;

	coalesce_init(&c, true);
	warm_up(&c, 50 * US);
	/* Completions in batches of four, well within the quiet time. */
	for (int i = 0; i < 3; i++) {
		CHECK(!coalesce_completed(&c, fake_clock, 4));
		CHECK_INT(coalesce_deadline(&c), >, fake_now);
		arrive(&c, 10 * US);
	}
	CHECK(coalesce_completed(&c, fake_clock, 4));
	CHECK_INT(coalesce_deadline(&c), ==, 0);
	CHECK_INT(c.holds, ==, 1);
	CHECK_INT(c.holds_wasted, ==, 0);
}

TEST(steady_stream_shares_an_interrupt_among_about_eight)
{
	struct coalesce c;
	unsigned held = 0;

	coalesce_init(&c, true);
	warm_up(&c, 50 * US);
	/* One request every 50 us: the hold lasts at most 4 quiet times of 100 us. */
	CHECK(!coalesce_completed(&c, fake_clock, 1));
	held = 1;
	for (;;) {
		uint64_t deadline = coalesce_deadline(&c);
		if (fake_now + 50 * US > deadline) {
			fake_now = deadline;
			CHECK(coalesce_expired(&c, fake_now));
			break;
		}
		arrive(&c, 50 * US);
		CHECK(!coalesce_completed(&c, fake_clock, 1));
		held++;
	}
	CHECK_INT(held, >=, 7);
	CHECK_INT(held, <=, 9);
	CHECK_INT(c.holds_wasted, ==, 0);
}

TEST(hold_ends_when_the_guest_goes_quiet)
{
	struct coalesce c;
	uint64_t deadline;

	coalesce_init(&c, true);
	warm_up(&c, 50 * US);
	CHECK(!coalesce_completed(&c, fake_clock, 1));
	arrive(&c, 40 * US); /* the guest still submits: the hold goes on */
	CHECK(!coalesce_completed(&c, fake_clock, 1));
	deadline = coalesce_deadline(&c);
	/* The quiet time is twice the mean gap (about 100 us here). */
	CHECK_INT(deadline - fake_now, >=, 80 * US);
	CHECK_INT(deadline - fake_now, <=, 110 * US);
	fake_now = deadline - 1;
	CHECK(!coalesce_expired(&c, fake_now));
	fake_now = deadline;
	CHECK(coalesce_expired(&c, fake_now));
	CHECK_INT(c.holds_wasted, ==, 0);		    /* two completions shared an interrupt */
	CHECK(!coalesce_expired(&c, fake_now + 1000 * US)); /* nothing held any more */
}

TEST(hold_has_a_hard_cap_while_requests_keep_coming)
{
	struct coalesce c;
	uint64_t start;

	coalesce_init(&c, true);
	warm_up(&c, 200 * US);
	start = fake_now;
	CHECK(!coalesce_completed(&c, fake_clock, 1));
	/* Requests keep arriving but never complete (a slow disk). */
	for (int i = 0; i < 100 && !coalesce_expired(&c, fake_now); i++)
		arrive(&c, 100 * US);
	CHECK_INT(fake_now - start, <=, COALESCE_HOLD_MAX_NS + 100 * US);
	CHECK_INT(coalesce_deadline(&c), ==, 0);
}

TEST(queue_depth_one_backs_off_exponentially)
{
	struct coalesce c;
	unsigned holds_before;

	coalesce_init(&c, true);
	warm_up(&c, 300 * US);
	/* The guest waits for each completion before the next request. */
	CHECK(!coalesce_completed(&c, fake_clock, 1));
	fake_now = coalesce_deadline(&c);
	CHECK(coalesce_expired(&c, fake_now));
	CHECK_INT(c.holds_wasted, ==, 1);
	/* The next 16 completions are signalled at once, without a clock read. */
	clock_reads = 0;
	for (int i = 0; i < COALESCE_BACKOFF_MIN; i++) {
		coalesce_arrival(&c, fake_clock);
		CHECK(coalesce_completed(&c, fake_clock, 1));
	}
	CHECK_INT(clock_reads, ==, 0);
	/* Then one more try, wasted again: now 32 at once. */
	warm_up(&c, 300 * US);
	CHECK(!coalesce_completed(&c, fake_clock, 1));
	fake_now = coalesce_deadline(&c);
	CHECK(coalesce_expired(&c, fake_now));
	CHECK_INT(c.signal_at_once, ==, 2 * COALESCE_BACKOFF_MIN);
	/* However long it goes on, at most one hold per 1024 completions. */
	holds_before = (unsigned)c.holds;
	for (int i = 0; i < 20000; i++) {
		arrive(&c, 300 * US);
		if (!coalesce_completed(&c, fake_clock, 1)) {
			fake_now = coalesce_deadline(&c);
			CHECK(coalesce_expired(&c, fake_now));
		}
	}
	CHECK_INT(c.holds - holds_before, <=, 20000 / COALESCE_BACKOFF_MAX + 6);
	CHECK_INT(c.backoff, ==, COALESCE_BACKOFF_MAX);
}

TEST(a_hold_that_pays_resets_the_backoff)
{
	struct coalesce c;

	coalesce_init(&c, true);
	warm_up(&c, 100 * US);
	CHECK(!coalesce_completed(&c, fake_clock, 1));
	fake_now = coalesce_deadline(&c);
	CHECK(coalesce_expired(&c, fake_now));
	CHECK_INT(c.backoff, ==, 2 * COALESCE_BACKOFF_MIN);
	for (int i = 0; i < COALESCE_BACKOFF_MIN; i++)
		CHECK(coalesce_completed(&c, fake_clock, 1));
	warm_up(&c, 100 * US);
	CHECK(!coalesce_completed(&c, fake_clock, 1));
	arrive(&c, 50 * US);
	CHECK(!coalesce_completed(&c, fake_clock, 1));
	fake_now = coalesce_deadline(&c);
	CHECK(coalesce_expired(&c, fake_now));
	CHECK_INT(c.backoff, ==, COALESCE_BACKOFF_MIN);
	CHECK_INT(c.signal_at_once, ==, 0);
}

TEST(an_idle_pause_forgets_the_rate)
{
	struct coalesce c;

	coalesce_init(&c, true);
	warm_up(&c, 50 * US);
	arrive(&c, 20000 * US); /* 20 ms of nothing */
	CHECK(coalesce_completed(&c, fake_clock, 1));
	CHECK_INT(c.holds, ==, 0);
}

TEST(an_interrupt_raised_for_another_reason_ends_the_hold)
{
	struct coalesce c;

	coalesce_init(&c, true);
	warm_up(&c, 50 * US);
	CHECK(!coalesce_completed(&c, fake_clock, 1));
	coalesce_signalled(&c);
	CHECK_INT(coalesce_deadline(&c), ==, 0);
	CHECK(!coalesce_expired(&c, fake_now + 1000 * US));
	CHECK_INT(c.holds_wasted, ==, 0);
	/* Nothing new completed and nothing held: nothing to hold either. */
	CHECK(coalesce_completed(&c, fake_clock, 0));
}

TEST(reset_forgets_the_stream_but_keeps_the_counters)
{
	struct coalesce c;

	coalesce_init(&c, true);
	warm_up(&c, 50 * US);
	CHECK(!coalesce_completed(&c, fake_clock, 1));
	coalesce_reset(&c);
	CHECK_INT(coalesce_deadline(&c), ==, 0);
	CHECK_INT(c.holds, ==, 1);
	CHECK(c.enabled);
	CHECK(coalesce_completed(&c, fake_clock, 1)); /* the rate is unknown again */
}
