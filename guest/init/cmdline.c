#include "cmdline.h"

#include <errno.h>
#include <string.h>

/*
 * Next word of s: *start and *len delimit it (quotes included), and the
 * return value points past it.  NULL at the end.
 */
static const char *cmdline_next_word(const char *s, const char **start, size_t *len)
{
	bool quoted = false;
	const char *p;

	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	if (*s == '\0')
		return NULL;
	for (p = s; *p != '\0'; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (!quoted && (*p == ' ' || *p == '\t' || *p == '\n'))
			break;
	}
	*start = s;
	*len = (size_t)(p - s);
	return p;
}

static bool cmdline_is_dashes(const char *w, size_t len)
{
	return len == 2 && w[0] == '-' && w[1] == '-';
}

int cmdline_get(const char *cmdline, const char *key, char *val, size_t size)
{
	size_t klen = strlen(key), len;
	const char *w, *s = cmdline;
	int found = 0;

	while ((s = cmdline_next_word(s, &w, &len)) != NULL) {
		if (cmdline_is_dashes(w, len))
			break;
		if (len < klen || strncmp(w, key, klen) != 0 || (len > klen && w[klen] != '='))
			continue;
		found = 1;
		if (val == NULL)
			continue;
		/* Copy the value without its quotes. */
		size_t n = 0;
		for (size_t i = klen + 1; i < len; i++) {
			if (w[i] == '"')
				continue;
			if (n + 1 >= size)
				return -ENAMETOOLONG;
			val[n++] = w[i];
		}
		if (size == 0)
			return -ENAMETOOLONG;
		val[n] = '\0';
	}
	return found;
}

bool cmdline_has(const char *cmdline, const char *key)
{
	return cmdline_get(cmdline, key, NULL, 0) == 1;
}

int cmdline_count_after_dashes(const char *cmdline)
{
	const char *w, *s = cmdline;
	bool after = false;
	size_t len;
	int n = 0;

	while ((s = cmdline_next_word(s, &w, &len)) != NULL) {
		if (after)
			n++;
		else if (cmdline_is_dashes(w, len))
			after = true;
	}
	return n;
}
