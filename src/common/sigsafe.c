#include "common/sigsafe.h"

void sigsafe_append(char *buf, size_t size, size_t *len, const char *s)
{
	while (*s && *len + 1 < size)
		buf[(*len)++] = *s++;
}

void sigsafe_append_long(char *buf, size_t size, size_t *len, long v)
{
	/* the magnitude unsigned: -LONG_MIN does not fit a long */
	unsigned long m = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
	char digits[24];
	int n = 0;

	if (v < 0)
		sigsafe_append(buf, size, len, "-");
	do
		digits[n++] = (char)('0' + m % 10);
	while ((m /= 10) > 0 && n < (int)sizeof(digits));
	while (n > 0 && *len + 1 < size)
		buf[(*len)++] = digits[--n];
}
