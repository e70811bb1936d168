#include "daemon/proc.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/fdutil.h"

static int read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read_all(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	return 0;
}

void proc_boot_id(char out[BOOT_ID_LEN])
{
	char buf[64];

	out[0] = '\0';
	if (read_text("/proc/sys/kernel/random/boot_id", buf, sizeof(buf)) == 0)
		snprintf(out, BOOT_ID_LEN, "%.36s", buf);
}

/* The fields of /proc/PID/stat after the command name, which may hold
 * spaces and parentheses: from field 3 (state) on. */
static int stat_fields(pid_t pid, char *buf, size_t size, char **rest)
{
	char path[64], *p;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((r = read_text(path, buf, size)) < 0)
		return r;
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return -EIO;
	*rest = p + 2;
	return 0;
}

/* Field n (1-based, as proc(5) counts) from the fields after the name. */
static int stat_field(char *rest, int n, unsigned long long *ret)
{
	char *save = NULL, *tok = strtok_r(rest, " ", &save);

	for (int i = 3; tok && i < n; i++)
		tok = strtok_r(NULL, " ", &save);
	if (tok == NULL || sscanf(tok, "%llu", ret) != 1)
		return -EIO;
	return 0;
}

int pid_start_time(pid_t pid, uint64_t *ret)
{
	unsigned long long v;
	char buf[1024], *rest;
	int r;

	if ((r = stat_fields(pid, buf, sizeof(buf), &rest)) < 0 || (r = stat_field(rest, 22, &v)) < 0)
		return r;
	*ret = v;
	return 0;
}

int proc_cpu_ns(pid_t pid, uint64_t *ret)
{
	unsigned long long utime, stime;
	char buf[1024], copy[1024], *rest;
	long hz = sysconf(_SC_CLK_TCK);
	int r;

	if ((r = stat_fields(pid, buf, sizeof(buf), &rest)) < 0)
		return r;
	snprintf(copy, sizeof(copy), "%s", rest);
	if ((r = stat_field(rest, 14, &utime)) < 0 || (r = stat_field(copy, 15, &stime)) < 0)
		return r;
	*ret = (uint64_t)(utime + stime) * (1000000000ull / (uint64_t)(hz > 0 ? hz : 100));
	return 0;
}

int proc_rss_bytes(pid_t pid, uint64_t *ret)
{
	char path[64], buf[4096], *p;
	unsigned long long kib;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((r = read_text(path, buf, sizeof(buf))) < 0)
		return r;
	p = strstr(buf, "\nVmRSS:");
	if (p == NULL || sscanf(p + 7, "%llu", &kib) != 1)
		return -ENODATA; /* a zombie has none */
	*ret = (uint64_t)kib * 1024;
	return 0;
}

int proc_pidfd_checked(pid_t pid, uint64_t start_time)
{
	uint64_t now;
	int fd, r;

	if (pid <= 0)
		return -ESRCH;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	/* Checked after the pidfd is open: the pid cannot change hands now. */
	if ((r = pid_start_time(pid, &now)) < 0 || now != start_time) {
		close(fd);
		return r < 0 ? r : -ESRCH;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

static bool mentions(const char *args, size_t len, const char *path, const char *below)
{
	for (size_t at = 0; at < len; at += strlen(args + at) + 1)
		if (strcmp(args + at, path) == 0 || strstr(args + at, below))
			return true;
	return false;
}

int proc_kill_mentioning(const char *path)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	char below[4200], file[64], args[8192];
	int n = 0;

	snprintf(below, sizeof(below), "%s/", path);
	while (d && (de = readdir(d))) {
		int fd, pid = atoi(de->d_name);
		ssize_t len;
		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(file, sizeof(file), "/proc/%d/cmdline", pid);
		if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		len = read_all(fd, args, sizeof(args) - 1);
		close(fd);
		if (len <= 0)
			continue;
		args[len] = '\0';
		if (mentions(args, (size_t)len, path, below) && kill(pid, SIGKILL) == 0)
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

double proc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double proc_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
