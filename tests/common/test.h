/*
 * A small TAP test harness for C tests (after systemd's TEST()).
 *
 *   TEST(parse_size_accepts_suffixes) { CHECK(parse_size("1M", &v) == 0); }
 *
 * Each test runs in a forked child with a timeout, so a crash or a hang
 * fails that test alone.  Output is TAP, one "ok"/"not ok" line per test,
 * which meson reads with protocol: 'tap'.  test_skip() marks a test
 * skipped with its reason.  Run one test with TEST_FILTER=substring.
 */
#ifndef CASULO_TESTS_TEST_H
#define CASULO_TESTS_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void test_fail_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Per-test timeout in seconds (default 60); set in main-less tests via a TEST_SETUP. */
extern unsigned test_timeout_seconds;

#define TEST(name)                                                                                                     \
	static void test_##name(void);                                                                                 \
	__attribute__((constructor)) static void test_register_##name(void)                                            \
	{                                                                                                              \
		test_register(#name, test_##name);                                                                     \
	}                                                                                                              \
	static void test_##name(void)

#define CHECK(cond)                                                                                                    \
	do {                                                                                                           \
		if (!(cond))                                                                                           \
			test_fail_at(__FILE__, __LINE__, "check failed: %s", #cond);                                   \
	} while (0)

#define CHECK_INT(a, op, b)                                                                                            \
	do {                                                                                                           \
		long long _a = (long long)(a), _b = (long long)(b);                                                    \
		if (!(_a op _b))                                                                                       \
			test_fail_at(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op, #b, _a, _b);               \
	} while (0)

#define CHECK_STR(a, b)                                                                                                \
	do {                                                                                                           \
		const char *_a = (a), *_b = (b);                                                                       \
		if (_a == NULL || _b == NULL || strcmp(_a, _b) != 0)                                                   \
			test_fail_at(__FILE__, __LINE__, "%s == %s: '%s' vs '%s'", #a, #b, _a ? _a : "(null)",         \
				     _b ? _b : "(null)");                                                              \
	} while (0)

/* Does s contain needle? */
#define CHECK_CONTAINS(s, needle)                                                                                      \
	do {                                                                                                           \
		const char *_s = (s), *_n = (needle);                                                                  \
		if (_s == NULL || strstr(_s, _n) == NULL)                                                              \
			test_fail_at(__FILE__, __LINE__, "'%s' does not contain '%s'", _s ? _s : "(null)", _n);        \
	} while (0)

#endif
