#ifndef CASULO_BIN_CASULO_H
#define CASULO_BIN_CASULO_H

#include "common/macro.h"

/* Print "casulo: MESSAGE" and a hint; returns the usage exit status, 2. */
int casulo_usage_error(const char *fmt, ...) PRINTF_FMT(1, 2);

int casulo_vm(int argc, char **argv);
int casulo_image(int argc, char **argv);
int casulo_run(int argc, char **argv);
/* casulod's verbs (ls, create, start, ...): argv[0] is the verb. */
int casulo_instances(int argc, char **argv);

#endif
