/* File and path helpers of the runtime (everything returns 0 or -errno). */
#ifndef CASULO_OCI_UTIL_H
#define CASULO_OCI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/file.h"

/* Create or replace a regular file atomically (temp file + rename). */
int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode);
/* mkdir -p. */
int mkdir_p(const char *path, mode_t mode);

/* openat2(RESOLVE_IN_ROOT): resolve path as if rootfd were '/', so that
 * symlinks in a container's rootfs cannot lead outside it. */
int open_in_root(int rootfd, const char *path, int flags, mode_t mode);
/* Create path (and its parents) under rootfd, safely; the last component
 * is a directory, or an empty file when as_file.  Returns an O_PATH fd. */
int mkdir_in_root(int rootfd, const char *path, mode_t mode, bool as_file);

/* "/proc/self/fd/N" into buf (at least 32 bytes). */
const char *fd_path(int fd, char *buf, size_t size);

/* Start time of a process (field 22 of /proc/PID/stat), 0 if none. */
unsigned long long proc_start_time(pid_t pid);
/* Is pid alive and (when start_time != 0) the same process? */
bool proc_alive(pid_t pid, unsigned long long start_time);

/* Remove a directory and what it holds. */
int rm_rf_dir(const char *dir);

#endif
