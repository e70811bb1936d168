/*
 * Host CPU lists as Linux writes them in sysfs and cpuset files
 * ("0-3,8,10-11"), to and from a cpu_set_t.
 */
#ifndef CASULO_COMMON_CPULIST_H
#define CASULO_COMMON_CPULIST_H

#include <sched.h>
#include <stddef.h>

/* 0; -EINVAL for text that is not a list (empty, "3-1", "a"); -ERANGE
 * for a CPU number beyond CPU_SETSIZE. */
int cpulist_parse(const char *text, cpu_set_t *set);
/* The shortest list for set ("" when empty), cut to len. */
void cpulist_format(const cpu_set_t *set, char *buf, size_t len);
/* The first CPU of a that is not in b, or -1 when a is within b. */
int cpulist_first_outside(const cpu_set_t *a, const cpu_set_t *b);

#endif
