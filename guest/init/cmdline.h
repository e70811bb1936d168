/*
 * Reading the kernel command line the way the kernel splits it: words
 * separated by spaces, double quotes grouping spaces into a word (and
 * removed), options before a lone "--" for the kernel, words after it for
 * init.  Pure functions: no I/O, unit-tested in tests/unit/.
 */
#ifndef CASULO_GUEST_CMDLINE_H
#define CASULO_GUEST_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Find option key ("key" or "key=value") before "--"; the last one wins,
 * as in the kernel.  On a match copies the unquoted value ("" for a bare
 * key) into val (or copies nothing when val is NULL) and returns 1; returns 0 when
 * absent and -ENAMETOOLONG when the value does not fit.
 */
int cmdline_get(const char *cmdline, const char *key, char *val, size_t size);

/* Is option key present before "--" (as "key" or "key=...")? */
bool cmdline_has(const char *cmdline, const char *key);

/* How many words follow a lone "--" (0 if there is none). */
int cmdline_count_after_dashes(const char *cmdline);

#endif
