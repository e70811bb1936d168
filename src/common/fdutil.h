/* File-descriptor helpers that retry on EINTR and short transfers. */
#ifndef CASULO_COMMON_FDUTIL_H
#define CASULO_COMMON_FDUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Read exactly len bytes at offset (pread) or fail: returns 0, -errno, or
 * -ENODATA when the file ends first. */
int pread_full(int fd, void *buf, size_t len, off_t offset);
/* Write all of buf at offset (pwrite); returns 0 or -errno. */
int pwrite_full(int fd, const void *buf, size_t len, off_t offset);
/* Write all of buf; returns 0 or -errno. */
int write_full(int fd, const void *buf, size_t len);
/* Read up to len bytes, looping until EOF or len; returns count or -errno. */
ssize_t read_all(int fd, void *buf, size_t len);
/* Set or clear O_NONBLOCK. */
int fd_set_nonblock(int fd, int on);
/* Point stdin, stdout and stderr at /dev/null (a process that must not
 * hold its caller's pipes or terminal); returns 0 or -errno. */
int fd_stdio_to_null(void);
/* Listen on a Unix stream socket at path: non-blocking, close-on-exec.
 * A socket file left at path (by an earlier run) is replaced; any other
 * file there is -EEXIST.  Returns the fd or -errno (-ENAMETOOLONG when
 * path does not fit sockaddr_un). */
int unix_listen(const char *path, int backlog);

#endif
