/* syscall-probe NR...: make each raw syscall, its arguments zero, and print
 * "NR=result" (OK, or the errno's name): how a seccomp filter answers a
 * syscall it does not name.  Static, so that it runs in any rootfs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *errno_name(int e)
{
	switch (e) {
	case EPERM:
		return "EPERM";
	case ENOSYS:
		return "ENOSYS";
	case EINVAL:
		return "EINVAL";
	case EBADF:
		return "EBADF";
	case EFAULT:
		return "EFAULT";
	case EACCES:
		return "EACCES";
	default:
		return "other";
	}
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		long nr = strtol(argv[i], NULL, 10);
		long r = syscall(nr, 0, 0, 0, 0, 0, 0);
		printf("%ld=%s\n", nr, r < 0 ? errno_name(errno) : "OK");
	}
	return 0;
}
