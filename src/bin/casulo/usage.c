/* What both casulo binaries share. */
#include <stdarg.h>
#include <stdio.h>

#include "casulo.h"

int casulo_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "casulo: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'casulo --help'.\n");
	return 2;
}
