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
#include "common/file.h"
#include "common/log.h"
#include "vmc/internal.h"

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* How a "CONNECT" that did not get "OK" ended, *e set only for ASKED_ERROR. */
enum asked { ASKED_ERROR, ASKED_NO_TIME, ASKED_REFUSED };

/* One "CONNECT" through the VMM's socket: the connected descriptor, or -1
 * and how it ended; for ASKED_REFUSED, *why is the VMM's refusal
 * ("timeout", "refused", ...; "" when it closed without a word). */
static int connect_once(const char *state_dir, long long deadline, enum asked *how, char *why, size_t why_size,
			struct err **e)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char line[64], req[32];
	size_t got = 0;
	int dir, fd, r;

	why[0] = '\0';
	*how = ASKED_ERROR;
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
			*how = ASKED_NO_TIME;
			return -1;
		}
		n = read(fd, line + got, 1);
		if (n <= 0)
			break;
		if (line[got++] == '\n')
			break;
	}
	line[got] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strncmp(line, "OK ", 3) == 0)
		return fd;
	close(fd);
	if (got > 0 && strncmp(line, "ERR ", 4) != 0)
		return err_setx(e, EPROTO, "the container's VM: unexpected vsock answer");
	if (got > 0)
		snprintf(why, why_size, "%s", line + 4);
	*how = ASKED_REFUSED;
	return -1;
}

int vmc_agent_connect(const char *state_dir, int timeout_ms, struct err **e)
{
	long long deadline = now_ms() + timeout_ms;
	enum asked how;
	char why[64];
	int fd;

	/* A guest that did not answer in the VMM's 2 s (a host or a lab under
	 * load, a guest just thawed) is asked again while the caller's time
	 * lasts; one that answers "nobody listens" is not. */
	for (unsigned attempt = 1;; attempt++) {
		fd = connect_once(state_dir, deadline, &how, why, sizeof(why), e);
		if (fd >= 0 || how == ASKED_ERROR)
			return fd;
		if (how == ASKED_NO_TIME || now_ms() + 100 >= deadline)
			return err_setx(e, ETIMEDOUT, "the container's VM: no answer from its agent within %d ms%s%s%s",
					timeout_ms, why[0] ? " (the VMM: " : "", why, why[0] ? ")" : "");
		if (strcmp(why, "timeout") != 0 && strcmp(why, "busy") != 0)
			break;
		log_debug("the container's VM: its agent did not answer (%s), attempt %u", why, attempt);
		msleep(attempt < 5 ? 20 * attempt : 100);
	}
	if (strcmp(why, "refused") == 0)
		return err_setx(e, ECONNREFUSED, "the container's VM: its agent does not listen (the VM is stopping?)");
	return err_setx(e, ECONNREFUSED, "the container's VM: its agent does not answer%s%s%s (the VM is stopping?)",
			why[0] ? " (the VMM: " : "", why, why[0] ? ")" : "");
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
