/* Sessions the host opens with the agent, through the VMM's vsock socket
 * (docs/vmm.md: "CONNECT <port>", answered "OK <host port>"). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "vmc/internal.h"

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

int vmc_agent_connect(const char *state_dir, int timeout_ms, struct err **e)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	long long deadline = now_ms() + timeout_ms;
	char line[64], req[32];
	size_t got = 0;
	int dir, fd, r;

	/* The state directory may be longer than sun_path: reach the socket
	 * through a descriptor of it. */
	dir = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return err_set(e, errno, "container state '%s'", state_dir);
	snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d/%s", dir, VMC_VSOCK);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = err_set(e, errno, "the container's VM: connect to its vsock socket");
		close(dir);
		if (fd >= 0)
			close(fd);
		return r;
	}
	close(dir);
	snprintf(req, sizeof(req), "CONNECT %u\n", VMC_AGENT_PORT);
	if ((r = write_full(fd, req, strlen(req))) < 0) {
		close(fd);
		return err_set(e, -r, "the container's VM: vsock");
	}
	/* The answer line, byte by byte: what follows it is the agent's. */
	while (got < sizeof(line) - 1) {
		struct pollfd p = {fd, POLLIN, 0};
		long long left = deadline - now_ms();
		ssize_t n;
		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			close(fd);
			return err_setx(e, ETIMEDOUT, "the container's VM: no answer from its agent within %d ms",
					timeout_ms);
		}
		n = read(fd, line + got, 1);
		if (n <= 0) {
			close(fd);
			return err_setx(e, ECONNREFUSED,
					"the container's VM: its agent does not answer (the VM is "
					"stopping?)");
		}
		if (line[got++] == '\n')
			break;
	}
	line[got] = '\0';
	if (strncmp(line, "OK ", 3) != 0) {
		close(fd);
		return err_setx(e, EPROTO, "the container's VM: unexpected vsock answer");
	}
	return fd;
}

int vmc_agent_call(const char *state_dir, const struct vmc_request *req, int timeout_ms, struct vmc_reply *reply,
		   struct err **e)
{
	_cleanup_free_ char *text = vmc_request_format(req);
	int fd, r;

	if (text == NULL)
		return err_set(e, ENOMEM, "request");
	if ((fd = vmc_agent_connect(state_dir, timeout_ms, e)) < 0)
		return fd;
	r = vmc_call(fd, text, timeout_ms, reply, e);
	close(fd);
	return r;
}
