/* Whole files by path (proc, sysfs and cgroupfs files above all), and the
 * monotonic clock in milliseconds.  Everything returns 0 or -errno. */
#ifndef CASULO_COMMON_FILE_H
#define CASULO_COMMON_FILE_H

#include <stddef.h>

/* Whole file into a NUL-terminated buffer (*len without the NUL). */
int read_file(const char *path, char **ret, size_t *len);
int read_file_at(int dirfd, const char *path, char **ret, size_t *len);
/* Write into an existing file: open O_WRONLY, one write(2), since proc,
 * sysfs and cgroup files take one value per write. */
int write_file(const char *path, const char *data, size_t len);
int write_file_at(int dirfd, const char *path, const char *data, size_t len);
int write_file_str(const char *path, const char *s);

/* Remove the tree name below dirfd (a file, or a directory and all it
 * holds; ENOENT is success) without following any symlink or entering a
 * directory of another mount (-EXDEV is reported, the rest still goes):
 * safe on a tree that someone else made, a jailed program or an image.
 * remove_tree_path() does the same by path. */
int remove_tree_at(int dirfd, const char *name);
int remove_tree_path(const char *path);

/* Undo the octal escapes of /proc/self/mountinfo's fields (\040 for a
 * space), in place. */
void unescape_octal(char *s);

/* CLOCK_MONOTONIC in milliseconds. */
long long monotonic_ms(void);
/* Sleep in milliseconds (EINTR resumes the sleep). */
void msleep(unsigned ms);

#endif
