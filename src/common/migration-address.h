/* Migration destinations ("tcp:HOST:PORT", "unix:PATH") named by a person:
 * casulo-vmm takes numeric addresses only (it resolves no name: it is
 * static and confined, src/vmm/migrate/stream.c), so the programs in front
 * of it, the casulo CLI and casulod, resolve the name first. */
#ifndef CASULO_COMMON_MIGRATION_ADDRESS_H
#define CASULO_COMMON_MIGRATION_ADDRESS_H

#include <stddef.h>

#include "common/err.h"

/* "tcp:NAME:PORT" into "tcp:ADDRESS:PORT" (or "tcp:[ADDRESS6]:PORT") with
 * NAME's first address; anything else (numeric, bracketed, unix:) is
 * copied as it is, for casulo-vmm to check.  -errno with e set when the
 * name does not resolve or the result does not fit len. */
int migration_address_resolve(const char *to, char *out, size_t len, struct err **e);

#endif
