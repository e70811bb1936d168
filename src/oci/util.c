#include "oci/util.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "common/macro.h"

int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
	char tmp[4096];
	int fd, r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	r = write_full(fd, data, len);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int open_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .mode = (flags & O_CREAT) ? mode : 0,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	while (*path == '/')
		path++;
	if (*path == '\0')
		path = ".";
	fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	if (fd < 0 && errno == EAGAIN)
		fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

/* Walk path one component at a time below rootfd: an existing symlink is
 * resolved inside the root (its target joined with the rest of the path),
 * a missing component is created in the directory resolved so far. */
static int mkdir_in_root_depth(int rootfd, const char *path, mode_t mode, bool as_file, int depth)
{
	char buf[4096], prefix[4096] = "";
	char *comp, *save = NULL;
	int fd = open_in_root(rootfd, path, O_PATH, 0);

	if (fd >= 0 || fd != -ENOENT)
		return fd;
	if (depth > 40)
		return -ELOOP;
	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		char cand[4096];
		const char *rest = save && *save ? save : "";
		bool last = *rest == '\0';
		struct stat st;

		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *slash = strrchr(prefix, '/');
			if (slash)
				*slash = '\0';
			continue;
		}
		if ((size_t)snprintf(cand, sizeof(cand), "%s/%s", prefix, comp) >= sizeof(cand))
			return -ENAMETOOLONG;
		fd = open_in_root(rootfd, cand, O_PATH | O_NOFOLLOW, 0);
		if (fd >= 0) {
			if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
				char target[4096], next[8192];
				ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
				close(fd);
				if (n < 0)
					return -errno;
				target[n] = '\0';
				snprintf(next, sizeof(next), "%s%s%s/%s", target[0] == '/' ? "" : prefix,
					 target[0] == '/' ? "" : "/", target, rest);
				return mkdir_in_root_depth(rootfd, next, mode, as_file, depth + 1);
			}
			close(fd);
		} else if (fd == -ENOENT) {
			int dir = open_in_root(rootfd, prefix[0] ? prefix : "/", O_PATH | O_DIRECTORY, 0);
			int r = 0;
			if (dir < 0)
				return dir;
			if (last && as_file) {
				int f = openat(dir, comp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
				if (f >= 0)
					close(f);
				else if (errno != EEXIST)
					r = -errno;
			} else if (mkdirat(dir, comp, mode) < 0 && errno != EEXIST) {
				r = -errno;
			}
			close(dir);
			if (r < 0)
				return r;
		} else {
			return fd;
		}
		strcpy(prefix, cand);
	}
	return open_in_root(rootfd, prefix[0] ? prefix : "/", O_PATH, 0);
}

int mkdir_in_root(int rootfd, const char *path, mode_t mode, bool as_file)
{
	return mkdir_in_root_depth(rootfd, path, mode, as_file, 0);
}

const char *fd_path(int fd, char *buf, size_t size)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
	return buf;
}

unsigned long long proc_start_time(pid_t pid)
{
	char path[64], *text = NULL, *p;
	unsigned long long start = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, &text, NULL) < 0)
		return 0;
	/* comm may hold spaces and parentheses: fields start after the last ')'. */
	p = strrchr(text, ')');
	if (p) {
		int field = 2;
		for (p++; *p && field < 22; p++)
			if (*p == ' ')
				field++;
		if (field == 22)
			start = strtoull(p, NULL, 10);
	}
	free(text);
	return start;
}

bool proc_alive(pid_t pid, unsigned long long start_time)
{
	char path[64], *text = NULL, *p;
	bool alive;

	if (pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, &text, NULL) < 0)
		return false;
	/* A zombie has exited: it counts as stopped. */
	p = strrchr(text, ')');
	alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	free(text);
	if (alive && start_time)
		alive = proc_start_time(pid) == start_time;
	return alive;
}

int rm_rf_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno == EISDIR) {
			char sub[4096];
			snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
			(void)rm_rf_dir(sub);
		}
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}
