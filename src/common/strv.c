#include "common/strv.h"

#include <stdlib.h>
#include <string.h>

void strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

size_t strv_length(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

char **strv_dup(char *const *v)
{
	size_t n = strv_length(v);
	char **r = calloc(n + 1, sizeof(*r));

	if (r == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		r[i] = strdup(v[i]);
		if (r[i] == NULL) {
			strv_free(r);
			return NULL;
		}
	}
	return r;
}
