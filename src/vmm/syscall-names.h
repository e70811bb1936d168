/*
 * This architecture's system call names by number, generated at build
 * time from <sys/syscall.h> (scripts/syscall-names.py): the seccomp
 * SIGSYS handler names the syscall it caught without a lookup at start.
 */
#ifndef CASULO_VMM_SYSCALL_NAMES_H
#define CASULO_VMM_SYSCALL_NAMES_H

#define VMM_SYSCALL_NAMES 512

/* NULL where a number has no syscall. */
extern const char *const vmm_syscall_names[VMM_SYSCALL_NAMES];

#endif
