/* Text built with nothing but stores, for where neither the heap nor stdio
 * may be used: a signal handler, or a process whose memory a child that
 * shared it may have left mid-update.  Each call appends to buf (of size
 * bytes, *len used) what fits, keeping room for a final NUL the caller
 * may add; nothing is allocated or locked. */
#ifndef CASULO_COMMON_SIGSAFE_H
#define CASULO_COMMON_SIGSAFE_H

#include <stddef.h>

void sigsafe_append(char *buf, size_t size, size_t *len, const char *s);
/* v in decimal, a '-' first when negative (LONG_MIN too). */
void sigsafe_append_long(char *buf, size_t size, size_t *len, long v);

#endif
