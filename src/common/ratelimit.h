/*
 * Token-bucket rate limiters, as Firecracker defines them: a limiter has
 * two buckets, bandwidth (bytes) and operations, and each bucket has
 *   - a size: the tokens it holds when full (the largest burst it allows
 *     once it has been idle);
 *   - a refill time: how long an empty bucket takes to fill again, so that
 *     its steady rate is size / refill time;
 *   - a one-time burst: extra tokens spent before the bucket's own, once,
 *     never refilled (a guest that boots reads its root disk fast).
 * A bucket of size 0 does not limit.  A request costs its bytes from the
 * bandwidth bucket and one token from the operations bucket, both or
 * neither; it is let through when both have the tokens, else the caller is
 * told how long to wait.  A request larger than a bucket's size passes
 * when that bucket is full and leaves it in debt, so that the average
 * rate holds for any request size.
 *
 * Pure logic on a clock the caller passes in (nanoseconds, monotonic):
 * unit tests pass a fake one (tests/unit/test-ratelimit.c); the virtio
 * devices wrap it with a timerfd (src/vmm/devices/virtio/throttle.h).
 *
 * The textual form, for options and the CLI (docs/vmm.md, "Rate limits"):
 *   SPEC   := "off" | BUCKET [":" BUCKET]
 *   BUCKET := AMOUNT "/" PERIOD ["+" BURST]
 * where AMOUNT is a size ("10M", binary suffixes) for the bandwidth bucket
 * or a count ending in "ops" ("500ops") for the operations bucket, PERIOD
 * is the refill time ("1s", "100ms", or "s" for one second) and BURST the
 * one-time burst in the bucket's unit ("+50M", "+1000ops").  Examples:
 * "10M/s", "1000ops/s", "10M/s+100M:500ops/100ms".
 */
#ifndef CASULO_COMMON_RATELIMIT_H
#define CASULO_COMMON_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest bucket size and burst (1 PiB, or 2^50 operations), and the
 * longest refill time (one day): the arithmetic below stays in 128 bits. */
#define RATELIMIT_MAX_SIZE (1ULL << 50)
#define RATELIMIT_MAX_REFILL_MS (24ULL * 3600 * 1000)

struct token_bucket_config {
	uint64_t size;		 /* tokens when full; 0: no limit */
	uint64_t one_time_burst; /* spent first, once */
	uint64_t refill_ms;	 /* time to fill an empty bucket; > 0 when size is */
};

struct ratelimit_config {
	struct token_bucket_config bandwidth; /* bytes */
	struct token_bucket_config ops;	      /* operations */
};

struct token_bucket {
	struct token_bucket_config cfg;
	/* Tokens times refill_ns: refills add elapsed_ns * size exactly, with
	 * no rounding; negative after an oversized request (debt). */
	__int128 budget;
	uint64_t burst; /* one-time burst left */
	uint64_t last_ns;
};

struct ratelimit {
	struct token_bucket bandwidth, ops;
};

/* Does the configuration limit anything? */
bool ratelimit_config_enabled(const struct ratelimit_config *c);
/* A bucket's limits checked: NULL when valid, else why not (static text). */
const char *token_bucket_config_invalid(const struct token_bucket_config *c);

/* Parse SPEC (above).  Returns 0, or -EINVAL with a one-line reason in
 * why (which does not repeat the spec). */
int ratelimit_config_parse(const char *spec, struct ratelimit_config *c, char *why, size_t why_len);
/* The textual form of c ("off" when it limits nothing); the parser reads
 * it back to the same configuration. */
void ratelimit_config_format(const struct ratelimit_config *c, char *buf, size_t len);

/* Full buckets, their bursts unspent, from now on. */
void ratelimit_init(struct ratelimit *rl, const struct ratelimit_config *c, uint64_t now_ns);
/*
 * A request of `bytes` bytes (and one operation when op): 0 when it may
 * go, its tokens taken; otherwise how many nanoseconds from now the
 * buckets will hold enough for it (at least 1), nothing taken.
 */
uint64_t ratelimit_consume(struct ratelimit *rl, uint64_t bytes, bool op, uint64_t now_ns);

#endif
