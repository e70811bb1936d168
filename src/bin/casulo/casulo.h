#ifndef CASULO_BIN_CASULO_H
#define CASULO_BIN_CASULO_H

#include "common/macro.h"

/* Print "casulo: MESSAGE" and a hint; returns the usage exit status, 2. */
int casulo_usage_error(const char *fmt, ...) PRINTF_FMT(1, 2);

int casulo_vm(int argc, char **argv);

#endif
