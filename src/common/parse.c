#include "common/parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int parse_u64(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (s == NULL || *s == '\0' || *s == '-' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_u32(const char *s, uint32_t *ret)
{
	uint64_t v;
	int r = parse_u64(s, &v);

	if (r < 0)
		return r;
	if (v > UINT32_MAX)
		return -ERANGE;
	*ret = (uint32_t)v;
	return 0;
}

int parse_size(const char *s, uint64_t *ret)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		shift = 0;
		break;
	case 'B':
		shift = 0;
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end != '\0') {
		end++;
		/* Accept "M", "MB", "MiB" alike: sizes are binary either way. */
		if (shift && (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0))
			end += strlen(end);
		if (*end != '\0')
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret = (uint64_t)v << shift;
	return 0;
}

int parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"on", "yes", "true", "1"};
	static const char *const no[] = {"off", "no", "false", "0"};

	if (s == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

int parse_next_option(char **cursor, char **key, char **value)
{
	char *item = *cursor, *comma, *eq;

	if (item == NULL || *item == '\0')
		return 0;
	comma = strchr(item, ',');
	if (comma) {
		*comma = '\0';
		*cursor = comma + 1;
	} else {
		*cursor = item + strlen(item);
	}
	eq = strchr(item, '=');
	if (eq) {
		*eq = '\0';
		*value = eq + 1;
	} else {
		*value = NULL;
	}
	*key = item;
	return 1;
}

static bool key_in(const char *key, const char *const *keys)
{
	for (; keys && *keys; keys++)
		if (strcmp(key, *keys) == 0)
			return true;
	return false;
}

int parse_options_with_lists(const char *spec, const char *const *list_keys,
			     int (*fn)(void *opaque, unsigned index, const char *key, const char *value), void *opaque)
{
	char *buf = strdup(spec), *cursor = buf, *key, *value;
	char *held_key = NULL, *held_value = NULL; /* a list item, given once it is whole */
	unsigned index = 0;
	int r = 0;

	if (buf == NULL)
		return -ENOMEM;
	while (r == 0 && parse_next_option(&cursor, &key, &value) == 1) {
		if (value == NULL && held_key) {
			size_t n = strlen(held_value) + strlen(key) + 2;
			char *longer = realloc(held_value, n);
			if (longer == NULL) {
				r = -ENOMEM;
				break;
			}
			held_value = longer;
			strcat(strcat(held_value, ","), key);
			continue;
		}
		if (held_key) {
			r = fn(opaque, index++, held_key, held_value);
			free(held_value);
			held_key = held_value = NULL;
			if (r != 0)
				break;
		}
		if (value && key_in(key, list_keys)) {
			held_key = key;
			if ((held_value = strdup(value)) == NULL)
				r = -ENOMEM;
			continue;
		}
		r = fn(opaque, index++, key, value);
	}
	if (r == 0 && held_key)
		r = fn(opaque, index, held_key, held_value);
	free(held_value);
	free(buf);
	return r;
}

int parse_option_duplicate(const char *spec, char *key, size_t len)
{
	char *buf = strdup(spec), *cur = buf, *k, *v;
	const char *seen[64];
	size_t nseen = 0;
	int found = 0;

	if (buf == NULL)
		return -ENOMEM;
	while (!found && parse_next_option(&cur, &k, &v)) {
		if (v == NULL)
			continue;
		for (size_t i = 0; i < nseen && !found; i++)
			found = strcmp(seen[i], k) == 0;
		if (found)
			snprintf(key, len, "%s", k);
		else if (nseen < sizeof(seen) / sizeof(seen[0]))
			seen[nseen++] = k;
	}
	free(buf);
	return found;
}

long proc_self_status(const char *name, int base, long fallback)
{
	FILE *f = fopen("/proc/self/status", "re");
	size_t len = strlen(name);
	char line[256];
	long v = fallback;

	if (f == NULL)
		return fallback;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, len) == 0 && line[len] == ':') {
			char *end;
			long n = strtol(line + len + 1, &end, base);
			if (end != line + len + 1)
				v = n;
			break;
		}
	}
	fclose(f);
	return v;
}

int parse_duration_ns(const char *s, uint64_t *ret)
{
	static const struct {
		const char *unit;
		uint64_t ns;
	} units[] = {{"ns", 1},
		     {"us", 1000},
		     {"\xc2\xb5s", 1000},
		     {"ms", 1000000},
		     {"s", 1000000000ULL},
		     {"m", 60000000000ULL},
		     {"h", 3600000000000ULL}};
	long double total = 0;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	if (strcmp(s, "0") == 0) {
		*ret = 0;
		return 0;
	}
	while (*s) {
		char *end;
		long double v;
		size_t best = 0, best_len = 0;

		/* Digits and one point: no sign, exponent or hex, as Go. */
		size_t digits = strspn(s, "0123456789.");
		if (digits == 0 || memchr(s, '.', digits) != memrchr(s, '.', digits))
			return -EINVAL;
		errno = 0;
		v = strtold(s, &end);
		if (end != s + digits || errno)
			return -EINVAL;
		/* The longest unit that matches ("ms" before "m"). */
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].unit);
			if (strncmp(end, units[i].unit, n) == 0 && n > best_len)
				best = i, best_len = n;
		}
		if (best_len == 0)
			return -EINVAL;
		total += v * (long double)units[best].ns;
		if (total > (long double)UINT64_MAX)
			return -ERANGE;
		s = end + best_len;
	}
	*ret = (uint64_t)total;
	return 0;
}
