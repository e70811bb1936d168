#include "common/cpulist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One decimal CPU number at *p, advancing *p past it. */
static int cpu_number(const char **p, unsigned long *ret)
{
	char *end;

	if (**p < '0' || **p > '9')
		return -EINVAL;
	errno = 0;
	*ret = strtoul(*p, &end, 10);
	if (errno == ERANGE || *ret >= CPU_SETSIZE)
		return -ERANGE;
	*p = end;
	return 0;
}

int cpulist_parse(const char *text, cpu_set_t *set)
{
	const char *p = text;

	CPU_ZERO(set);
	if (*p == '\0')
		return -EINVAL;
	for (;;) {
		unsigned long first, last;
		int r = cpu_number(&p, &first);

		if (r < 0)
			return r;
		last = first;
		if (*p == '-') {
			p++;
			if ((r = cpu_number(&p, &last)) < 0)
				return r;
			if (last < first)
				return -EINVAL;
		}
		for (unsigned long c = first; c <= last; c++)
			CPU_SET(c, set);
		if (*p == '\0')
			return 0;
		if (*p++ != ',')
			return -EINVAL;
	}
}

void cpulist_format(const cpu_set_t *set, char *buf, size_t len)
{
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (int c = 0; c < CPU_SETSIZE; c++) {
		int last = c;
		int n;

		if (!CPU_ISSET(c, set))
			continue;
		while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, set))
			last++;
		n = last == c ? snprintf(buf + used, len - used, "%s%d", used ? "," : "", c)
			      : snprintf(buf + used, len - used, "%s%d-%d", used ? "," : "", c, last);
		if (n < 0 || (size_t)n >= len - used) {
			buf[used] = '\0'; /* cut after the last whole item */
			return;
		}
		used += (size_t)n;
		c = last;
	}
}

int cpulist_first_outside(const cpu_set_t *a, const cpu_set_t *b)
{
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, a) && !CPU_ISSET(c, b))
			return c;
	return -1;
}
