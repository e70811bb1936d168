/*
 * What /proc says about a process, as casulod needs it: its start time
 * (with the boot's id, a pid's identity: a pid can be reused, a pid with
 * its start time in one boot cannot), its CPU time and resident memory.
 */
#ifndef CASULO_DAEMON_PROC_H
#define CASULO_DAEMON_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/macro.h"

#define BOOT_ID_LEN 37 /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" and NUL */

/* /proc/sys/kernel/random/boot_id, or "" when unreadable. */
void proc_boot_id(char out[BOOT_ID_LEN]);

/* Field 22 of /proc/PID/stat (clock ticks since boot): 0 and -errno
 * (-ESRCH for no such process). */
int pid_start_time(pid_t pid, uint64_t *ret) MUST_CHECK;

/* User plus system CPU time of the process and its threads, in ns. */
int proc_cpu_ns(pid_t pid, uint64_t *ret) MUST_CHECK;

/* VmRSS, in bytes. */
int proc_rss_bytes(pid_t pid, uint64_t *ret) MUST_CHECK;

/* A pidfd for pid, only when the process alive with that pid started at
 * start_time: the fd, or -errno (-ESRCH when it is gone or another
 * process has the pid). */
int proc_pidfd_checked(pid_t pid, uint64_t start_time);

/* SIGKILL every process one of whose arguments is path or names
 * something below it (path/..., --opt=path/...): what a start cut short
 * left running before it could record itself.  Returns how many. */
int proc_kill_mentioning(const char *path);

/* Seconds since the epoch, with fractions. */
double proc_now(void);
/* Seconds of a monotonic clock. */
double proc_monotonic(void);

#endif
