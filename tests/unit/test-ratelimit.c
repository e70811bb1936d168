/* Token-bucket rate limiters (src/common/ratelimit.c) on a fake clock. */
#include <errno.h>
#include <string.h>

#include "common/ratelimit.h"
#include "test.h"

#define MS 1000000ULL
#define SEC 1000000000ULL
#define MIB (1ULL << 20)

static struct ratelimit_config bw(uint64_t size, uint64_t refill_ms, uint64_t burst)
{
	return (struct ratelimit_config){.bandwidth = {.size = size, .one_time_burst = burst, .refill_ms = refill_ms}};
}

/* Serve requests of `bytes` back to back for `seconds` of fake time, each
 * one as soon as the limiter lets it; returns the bytes served. */
static uint64_t serve_for(struct ratelimit *rl, uint64_t *now, uint64_t bytes, bool op, uint64_t seconds)
{
	uint64_t end = *now + seconds * SEC, served = 0;

	while (*now < end) {
		uint64_t wait = ratelimit_consume(rl, bytes, op, *now);
		if (wait) {
			*now += wait;
			continue;
		}
		served += bytes;
	}
	return served;
}

TEST(no_limit_lets_everything_through)
{
	struct ratelimit_config c = {0};
	struct ratelimit rl;

	CHECK(!ratelimit_config_enabled(&c));
	ratelimit_init(&rl, &c, 0);
	for (int i = 0; i < 1000; i++)
		CHECK_INT(ratelimit_consume(&rl, 1ULL << 40, true, 0), ==, 0);
}

TEST(full_bucket_allows_its_size_then_waits)
{
	struct ratelimit_config c = bw(10 * MIB, 1000, 0);
	struct ratelimit rl;
	uint64_t wait;

	ratelimit_init(&rl, &c, 5 * SEC);
	for (int i = 0; i < 10; i++)
		CHECK_INT(ratelimit_consume(&rl, MIB, false, 5 * SEC), ==, 0);
	wait = ratelimit_consume(&rl, MIB, false, 5 * SEC);
	/* 1 MiB at 10 MiB/s: 100 ms. */
	CHECK_INT(wait, ==, 100 * MS);
	/* A little early: still not; on time: yes. */
	CHECK(ratelimit_consume(&rl, MIB, false, 5 * SEC + wait - 1) > 0);
	CHECK_INT(ratelimit_consume(&rl, MIB, false, 5 * SEC + wait), ==, 0);
}

TEST(steady_rate_is_exact)
{
	struct ratelimit_config c = bw(10 * MIB, 1000, 0);
	struct ratelimit rl;
	uint64_t now = 0, served;

	ratelimit_init(&rl, &c, now);
	/* Drain the initial bucket, then measure 10 s of 4 KiB requests. */
	serve_for(&rl, &now, 4096, true, 1);
	served = serve_for(&rl, &now, 4096, true, 10);
	CHECK_INT(served, >=, 100 * MIB - 4096);
	CHECK_INT(served, <=, 100 * MIB + 4096);
}

TEST(ops_bucket_limits_requests_whatever_their_size)
{
	struct ratelimit_config c = {.ops = {.size = 500, .refill_ms = 1000}};
	struct ratelimit rl;
	uint64_t now = 0, served;

	ratelimit_init(&rl, &c, now);
	serve_for(&rl, &now, 1, true, 1);
	served = serve_for(&rl, &now, 1, true, 10);
	CHECK_INT(served, >=, 4999);
	CHECK_INT(served, <=, 5001);
	/* Bytes without an operation are not its business. */
	CHECK_INT(ratelimit_consume(&rl, 1ULL << 30, false, now), ==, 0);
}

TEST(both_buckets_or_neither)
{
	struct ratelimit_config c = {.bandwidth = {.size = 1000, .refill_ms = 1000},
				     .ops = {.size = 2, .refill_ms = 1000}};
	struct ratelimit rl;

	ratelimit_init(&rl, &c, 0);
	CHECK_INT(ratelimit_consume(&rl, 100, true, 0), ==, 0);
	CHECK_INT(ratelimit_consume(&rl, 100, true, 0), ==, 0);
	/* The ops bucket is empty: the bandwidth one must keep its 800. */
	CHECK_INT(ratelimit_consume(&rl, 100, true, 0), ==, 500 * MS);
	CHECK_INT(ratelimit_consume(&rl, 800, false, 0), ==, 0);
	CHECK(ratelimit_consume(&rl, 1, false, 0) > 0);
}

TEST(one_time_burst_is_spent_first_and_never_refilled)
{
	struct ratelimit_config c = bw(MIB, 1000, 4 * MIB);
	struct ratelimit rl;
	uint64_t now = 0;

	ratelimit_init(&rl, &c, now);
	/* 4 MiB of burst plus the full 1 MiB bucket at once. */
	for (int i = 0; i < 5; i++)
		CHECK_INT(ratelimit_consume(&rl, MIB, false, now), ==, 0);
	CHECK(ratelimit_consume(&rl, MIB, false, now) > 0);
	/* After an idle minute only the bucket is back, not the burst. */
	now += 60 * SEC;
	CHECK_INT(ratelimit_consume(&rl, MIB, false, now), ==, 0);
	CHECK_INT(ratelimit_consume(&rl, 1, false, now), ==, 1000 * MS / MIB + 1);
}

TEST(oversized_request_passes_on_a_full_bucket_and_leaves_debt)
{
	struct ratelimit_config c = bw(MIB, 1000, 0);
	struct ratelimit rl;
	uint64_t now = 0;

	ratelimit_init(&rl, &c, now);
	CHECK_INT(ratelimit_consume(&rl, 3 * MIB, false, now), ==, 0);
	/* 2 MiB of debt plus the next 1 KiB: a little over 2 s at 1 MiB/s. */
	CHECK_INT(ratelimit_consume(&rl, 1024, false, now), ==, 2 * SEC + 1000 * MS / 1024 + 1); /* rounded up */
	/* And a steady stream of oversized requests keeps the rate. */
	now += 10 * SEC;
	ratelimit_init(&rl, &c, now);
	serve_for(&rl, &now, 3 * MIB, false, 1);
	CHECK_INT(serve_for(&rl, &now, 3 * MIB, false, 30), ==, 30 * MIB);
}

TEST(idle_time_never_overfills)
{
	struct ratelimit_config c = bw(1000, 100, 0);
	struct ratelimit rl;

	ratelimit_init(&rl, &c, 0);
	CHECK_INT(ratelimit_consume(&rl, 1000, false, 3600 * SEC), ==, 0);
	CHECK(ratelimit_consume(&rl, 1, false, 3600 * SEC) > 0);
}

TEST(clock_going_backwards_adds_nothing)
{
	struct ratelimit_config c = bw(1000, 1000, 0);
	struct ratelimit rl;

	ratelimit_init(&rl, &c, 10 * SEC);
	CHECK_INT(ratelimit_consume(&rl, 1000, false, 10 * SEC), ==, 0);
	CHECK(ratelimit_consume(&rl, 500, false, 9 * SEC) > 0);
	CHECK_INT(ratelimit_consume(&rl, 500, false, 10 * SEC + 500 * MS), ==, 0);
	/* An earlier time again (a caller's cached clock): the half second
	 * since 10 s is not counted twice. */
	CHECK(ratelimit_consume(&rl, 1, false, 10 * SEC + 100 * MS) > 0);
	CHECK(ratelimit_consume(&rl, 1, false, 10 * SEC + 500 * MS) > 0);
	CHECK_INT(ratelimit_consume(&rl, 1, false, 10 * SEC + 501 * MS), ==, 0);
}

TEST(largest_values_do_not_overflow)
{
	struct ratelimit_config c = bw(RATELIMIT_MAX_SIZE, RATELIMIT_MAX_REFILL_MS, RATELIMIT_MAX_SIZE);
	struct ratelimit rl;

	ratelimit_init(&rl, &c, 0);
	CHECK_INT(ratelimit_consume(&rl, RATELIMIT_MAX_SIZE * 2, false, UINT64_MAX / 2), ==, 0);
	CHECK(ratelimit_consume(&rl, UINT64_MAX, false, UINT64_MAX / 2) > 0);
	CHECK_INT(ratelimit_consume(&rl, 1, false, UINT64_MAX), ==, 0);
}

static void check_parse(const char *spec, const char *canonical)
{
	struct ratelimit_config c, again;
	char why[128] = "", text[128];

	CHECK_INT(ratelimit_config_parse(spec, &c, why, sizeof(why)), ==, 0);
	ratelimit_config_format(&c, text, sizeof(text));
	CHECK_STR(text, canonical);
	CHECK_INT(ratelimit_config_parse(text, &again, why, sizeof(why)), ==, 0);
	CHECK(memcmp(&c, &again, sizeof(c)) == 0);
}

TEST(spec_parses_and_formats_back)
{
	struct ratelimit_config c;
	char why[128];

	check_parse("off", "off");
	check_parse("10M/s", "10M/1s");
	check_parse("1000ops/s", "1000ops/1s");
	check_parse("1M/100ms+64M", "1M/100ms+64M");
	check_parse("500ops/250ms+100ops:10M/2s", "10M/2s:500ops/250ms+100ops");
	check_parse("1000/1s", "1000/1s");
	check_parse("100ops/1s+7", "100ops/1s+7ops");
	CHECK_INT(ratelimit_config_parse("10M/1s+20M:200ops/1s", &c, why, sizeof(why)), ==, 0);
	CHECK_INT(c.bandwidth.size, ==, 10 * MIB);
	CHECK_INT(c.bandwidth.one_time_burst, ==, 20 * MIB);
	CHECK_INT(c.bandwidth.refill_ms, ==, 1000);
	CHECK_INT(c.ops.size, ==, 200);
}

static void check_refused(const char *spec, const char *reason)
{
	struct ratelimit_config c;
	char why[128] = "";

	CHECK_INT(ratelimit_config_parse(spec, &c, why, sizeof(why)), ==, -EINVAL);
	CHECK_CONTAINS(why, reason);
	CHECK(!ratelimit_config_enabled(&c));
}

TEST(bad_specs_are_refused_with_a_reason)
{
	check_refused("", "empty");
	check_refused("10M", "AMOUNT/PERIOD");
	check_refused("0/1s", "above 0");
	check_refused("10Q/1s", "not a size");
	check_refused("xops/1s", "operations");
	check_refused("10M/1x", "refill time '1x'");
	check_refused("10M/0s", "refill time");
	check_refused("10M/1500us", "whole milliseconds");
	check_refused("10M/1s+5ops", "counts operations");
	check_refused("10M/1s+lots", "burst 'lots'");
	check_refused("10M/1s:20M/1s", "bandwidth bucket is given twice");
	check_refused("1ops/1s:2ops/1s", "operations bucket is given twice");
	check_refused("10M/1s:", "AMOUNT/PERIOD");
	check_refused("2048T/1s", "2^50");
	check_refused("1M/2d", "refill time");
	check_refused("1M/25h", "one day");
}
