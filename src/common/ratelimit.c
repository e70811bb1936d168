#include "common/ratelimit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/parse.h"

#define NS_PER_MS 1000000ULL

bool ratelimit_config_enabled(const struct ratelimit_config *c)
{
	return c->bandwidth.size > 0 || c->ops.size > 0;
}

const char *token_bucket_config_invalid(const struct token_bucket_config *c)
{
	if (c->size > RATELIMIT_MAX_SIZE || c->one_time_burst > RATELIMIT_MAX_SIZE)
		return "size and burst are at most 2^50";
	if (c->refill_ms > RATELIMIT_MAX_REFILL_MS)
		return "the refill time is at most one day";
	if (c->size > 0 && c->refill_ms == 0)
		return "a bucket with a size needs a refill time of at least 1 ms";
	if (c->size == 0 && c->one_time_burst > 0)
		return "a one-time burst needs a bucket size";
	return NULL;
}

/* --- the textual form --- */

static int why_set(char *why, size_t len, const char *fmt, ...) PRINTF_FMT(3, 4);
static int why_set(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* "ops" at the end of s: cut it off.  Returns whether it was there. */
static bool cut_ops_suffix(char *s)
{
	size_t n = strlen(s);

	if (n >= 3 && strcmp(s + n - 3, "ops") == 0) {
		s[n - 3] = '\0';
		return true;
	}
	return false;
}

static int parse_amount(char *s, bool ops, uint64_t *v)
{
	return ops ? parse_u64(s, v) : parse_size(s, v);
}

static int parse_period_ms(const char *s, uint64_t *ms)
{
	uint64_t ns;

	if (strcmp(s, "s") == 0) {
		*ms = 1000;
		return 0;
	}
	if (parse_duration_ns(s, &ns) < 0 || ns % NS_PER_MS != 0 || ns == 0)
		return -EINVAL;
	*ms = ns / NS_PER_MS;
	return 0;
}

/* One BUCKET (modified in place) into the configuration. */
static int parse_bucket(char *item, struct ratelimit_config *c, bool *seen_bw, bool *seen_ops, char *why, size_t len)
{
	char *slash = strchr(item, '/'), *plus;
	struct token_bucket_config b = {0};
	const char *invalid;
	bool ops;

	if (slash == NULL)
		return why_set(why, len, "'%s' is not AMOUNT/PERIOD", item);
	*slash = '\0';
	plus = strchr(slash + 1, '+');
	if (plus)
		*plus = '\0';
	ops = cut_ops_suffix(item);
	if (parse_amount(item, ops, &b.size) < 0 || b.size == 0)
		return ops ? why_set(why, len, "'%sops' is not a number of operations above 0", item)
			   : why_set(why, len, "'%s' is not a size above 0 (like 10M) or a count like 500ops", item);
	if (parse_period_ms(slash + 1, &b.refill_ms) < 0)
		return why_set(why, len, "refill time '%s' is not a duration in whole milliseconds (1s, 100ms)",
			       slash + 1);
	if (plus) {
		char *burst = plus + 1;
		if (cut_ops_suffix(burst) && !ops)
			return why_set(why, len, "burst '%sops' counts operations in a bandwidth bucket", burst);
		if (parse_amount(burst, ops, &b.one_time_burst) < 0)
			return why_set(why, len, "burst '%s' is not a size or count", burst);
	}
	if ((invalid = token_bucket_config_invalid(&b)) != NULL)
		return why_set(why, len, "%s", invalid);
	if (ops ? *seen_ops : *seen_bw)
		return why_set(why, len, "the %s bucket is given twice", ops ? "operations" : "bandwidth");
	*(ops ? seen_ops : seen_bw) = true;
	*(ops ? &c->ops : &c->bandwidth) = b;
	return 0;
}

int ratelimit_config_parse(const char *spec, struct ratelimit_config *c, char *why, size_t why_len)
{
	bool seen_bw = false, seen_ops = false;
	char *buf, *cur, *item;
	int r = 0;

	memset(c, 0, sizeof(*c));
	if (strcmp(spec, "off") == 0)
		return 0;
	if (*spec == '\0')
		return why_set(why, why_len, "it is empty (give \"off\" for no limit)");
	buf = strdup(spec);
	if (buf == NULL)
		return why_set(why, why_len, "out of memory");
	cur = buf;
	while (r == 0 && (item = strsep(&cur, ":")) != NULL)
		r = parse_bucket(item, c, &seen_bw, &seen_ops, why, why_len);
	free(buf);
	if (r < 0)
		memset(c, 0, sizeof(*c));
	return r;
}

static void format_amount(uint64_t v, bool ops, char *buf, size_t len)
{
	static const char units[] = "KMGTP";
	int u = -1;

	if (ops) {
		snprintf(buf, len, "%llu", (unsigned long long)v);
		return;
	}
	while (v != 0 && u < 4 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu", (unsigned long long)v);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u]);
}

static size_t format_bucket(const struct token_bucket_config *b, bool ops, char *buf, size_t len)
{
	char amount[32], burst[40] = "", period[32];
	int n;

	format_amount(b->size, ops, amount, sizeof(amount));
	if (b->refill_ms % 1000 == 0)
		snprintf(period, sizeof(period), "%llus", (unsigned long long)(b->refill_ms / 1000));
	else
		snprintf(period, sizeof(period), "%llums", (unsigned long long)b->refill_ms);
	if (b->one_time_burst) {
		burst[0] = '+';
		format_amount(b->one_time_burst, ops, burst + 1, sizeof(burst) - 1);
	}
	n = snprintf(buf, len, "%s%s/%s%s%s", amount, ops ? "ops" : "", period, burst,
		     b->one_time_burst && ops ? "ops" : "");
	return n < 0 ? 0 : MIN((size_t)n, len ? len - 1 : 0);
}

void ratelimit_config_format(const struct ratelimit_config *c, char *buf, size_t len)
{
	size_t at = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (!ratelimit_config_enabled(c)) {
		snprintf(buf, len, "off");
		return;
	}
	if (c->bandwidth.size)
		at = format_bucket(&c->bandwidth, false, buf, len);
	if (c->ops.size) {
		if (at > 0 && at + 1 < len)
			buf[at++] = ':';
		format_bucket(&c->ops, true, buf + at, len - at);
	}
}

/* --- the buckets --- */

static void bucket_init(struct token_bucket *b, const struct token_bucket_config *c, uint64_t now_ns)
{
	b->cfg = *c;
	b->budget = (__int128)c->size * (__int128)(c->refill_ms * NS_PER_MS);
	b->burst = c->one_time_burst;
	b->last_ns = now_ns;
}

void ratelimit_init(struct ratelimit *rl, const struct ratelimit_config *c, uint64_t now_ns)
{
	bucket_init(&rl->bandwidth, &c->bandwidth, now_ns);
	bucket_init(&rl->ops, &c->ops, now_ns);
}

static void bucket_refill(struct token_bucket *b, uint64_t now_ns)
{
	__int128 full = (__int128)b->cfg.size * (__int128)(b->cfg.refill_ms * NS_PER_MS);

	/* A time before the last one adds nothing and is not kept: the time
	 * since the last refill is never counted twice. */
	if (now_ns <= b->last_ns)
		return;
	b->budget += (__int128)(now_ns - b->last_ns) * (__int128)b->cfg.size;
	if (b->budget > full)
		b->budget = full;
	b->last_ns = now_ns;
}

/* 0 when the bucket can pay cost now, else the nanoseconds until it can. */
static uint64_t bucket_wait(struct token_bucket *b, uint64_t cost, uint64_t now_ns)
{
	uint64_t need;
	__int128 want, missing;

	if (b->cfg.size == 0 || cost == 0 || cost <= b->burst)
		return 0;
	bucket_refill(b, now_ns);
	need = cost - b->burst;
	/* Oversized: it waits for a full bucket, then leaves it in debt. */
	want = (__int128)MIN(need, b->cfg.size) * (__int128)(b->cfg.refill_ms * NS_PER_MS);
	if (b->budget >= want)
		return 0;
	missing = want - b->budget;
	/* Ceiling division: at that time the refill has covered it (a debt
	 * of years is still a wait that fits). */
	missing = (missing + b->cfg.size - 1) / b->cfg.size;
	return missing > (__int128)(UINT64_MAX / 2) ? UINT64_MAX / 2 : (uint64_t)missing;
}

static void bucket_take(struct token_bucket *b, uint64_t cost)
{
	if (b->cfg.size == 0)
		return;
	if (cost <= b->burst) {
		b->burst -= cost;
		return;
	}
	cost -= b->burst;
	b->burst = 0;
	b->budget -= (__int128)cost * (__int128)(b->cfg.refill_ms * NS_PER_MS);
}

uint64_t ratelimit_consume(struct ratelimit *rl, uint64_t bytes, bool op, uint64_t now_ns)
{
	uint64_t wait_bw = bucket_wait(&rl->bandwidth, bytes, now_ns);
	uint64_t wait_ops = op ? bucket_wait(&rl->ops, 1, now_ns) : 0;

	if (wait_bw || wait_ops)
		return MAX(wait_bw, wait_ops);
	bucket_take(&rl->bandwidth, bytes);
	if (op)
		bucket_take(&rl->ops, 1);
	return 0;
}
