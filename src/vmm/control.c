/*
 * The control socket: a Unix stream socket on the VMM thread's event
 * loop.  A client writes commands, one per line, and reads one reply line
 * each, "OK ..." or "ERROR <why>":
 *
 *   balloon             OK target=BYTES actual=BYTES released=BYTES
 *   balloon SIZE        OK target=BYTES            (SIZE as in 128M, 0 deflates)
 *   balloon-stats       OK ... age=SECONDS free-memory=BYTES ...  (and asks for fresh ones)
 *   help                OK commands: ...
 *
 * It is a socket rather than a signal because commands take arguments and
 * answer (an error, the statistics), and because the API will keep the
 * same shape: a typed request from a client, a reply.  It is deliberately
 * tiny: the API issue replaces it.
 */
#include "vmm/control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "common/log.h"
#include "common/parse.h"
#include "vmm/devices/virtio/balloon.h"
#include "vmm/vm.h"

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_LINE_MAX 256
#define CONTROL_REPLY_MAX 1024

struct control_client {
	struct control *ctl;
	int fd;
	size_t len;
	char buf[CONTROL_LINE_MAX];
};

struct control {
	struct vm *vm;
	int listen_fd;
	char *path;
	struct control_client *clients[CONTROL_MAX_CLIENTS];
};

static void reply_balloon(struct vm *vm, bool stats, char *reply, size_t len)
{
	struct balloon_info info;
	size_t n;

	virtio_balloon_query(vm->balloon, &info);
	n = (size_t)snprintf(reply, len, "OK target=%llu actual=%llu released=%llu",
			     (unsigned long long)info.target, (unsigned long long)info.actual,
			     (unsigned long long)info.released);
	if (stats && !info.stats_valid) {
		n += (size_t)snprintf(reply + n, len - MIN(n, len), " stats=none");
	} else if (stats) {
		n += (size_t)snprintf(reply + n, len - MIN(n, len), " age=%.1f", info.stats_age);
		for (unsigned t = 0; t < BALLOON_STATS_MAX && n < len; t++)
			if (info.stats_present & (1u << t))
				n += (size_t)snprintf(reply + n, len - n, " %s=%llu", virtio_balloon_stat_name(t),
						      (unsigned long long)info.stats[t]);
	}
	if (n + 2 <= len)
		memcpy(reply + n, "\n", 2);
}

void control_execute(struct vm *vm, const char *line, char *reply, size_t len)
{
	char cmd[32] = "", arg[64] = "", extra[2] = "";
	int words = sscanf(line, "%31s %63s %1s", cmd, arg, extra);
	struct err *e = NULL;
	uint64_t size;

	if (words <= 0) {
		snprintf(reply, len, "ERROR empty command (try help)\n");
	} else if (strcmp(cmd, "help") == 0) {
		snprintf(reply, len, "OK commands: balloon [SIZE], balloon-stats, help\n");
	} else if (strcmp(cmd, "balloon") != 0 && strcmp(cmd, "balloon-stats") != 0) {
		snprintf(reply, len, "ERROR unknown command '%s' (try help)\n", cmd);
	} else if (vm->balloon == NULL) {
		snprintf(reply, len, "ERROR this VM has no balloon (--balloon)\n");
	} else if (words > 2 || (words == 2 && strcmp(cmd, "balloon-stats") == 0)) {
		snprintf(reply, len, "ERROR %s: too many arguments\n", cmd);
	} else if (words == 1) {
		reply_balloon(vm, strcmp(cmd, "balloon-stats") == 0, reply, len);
	} else if (parse_size(arg, &size) < 0) {
		snprintf(reply, len, "ERROR balloon: '%s' is not a size (e.g. 128M)\n", arg);
	} else if (virtio_balloon_set_target(vm->balloon, size, &e) < 0) {
		snprintf(reply, len, "ERROR %s\n", e->msg);
		err_free(&e);
	} else {
		snprintf(reply, len, "OK target=%llu\n", (unsigned long long)ALIGN_DOWN(size, 4096ULL));
	}
}

static void client_close(struct control_client *cl)
{
	struct control *ctl = cl->ctl;

	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (ctl->clients[i] == cl)
			ctl->clients[i] = NULL;
	event_loop_remove(&ctl->vm->loop, cl->fd);
	close(cl->fd);
	free(cl);
}

/* Answer every complete line; false when the client must go. */
static bool client_serve_lines(struct control_client *cl)
{
	char reply[CONTROL_REPLY_MAX];
	char *nl;

	while ((nl = memchr(cl->buf, '\n', cl->len)) != NULL) {
		size_t line_len = (size_t)(nl - cl->buf);
		ssize_t w;

		*nl = '\0';
		if (line_len > 0 && cl->buf[line_len - 1] == '\r')
			cl->buf[line_len - 1] = '\0';
		control_execute(cl->ctl->vm, cl->buf, reply, sizeof(reply));
		/* A client that does not read its replies is not worth waiting for. */
		w = send(cl->fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w != (ssize_t)strlen(reply))
			return false;
		cl->len -= line_len + 1;
		memmove(cl->buf, nl + 1, cl->len);
	}
	if (cl->len == sizeof(cl->buf)) {
		static const char too_long[] = "ERROR line too long\n";
		(void)!send(cl->fd, too_long, sizeof(too_long) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		return false;
	}
	return true;
}

static void on_client(void *opaque, uint32_t events)
{
	struct control_client *cl = opaque;
	ssize_t n;

	(void)events;
	n = read(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(cl);
		return;
	}
	cl->len += (size_t)n;
	if (!client_serve_lines(cl))
		client_close(cl);
}

static void on_accept(void *opaque, uint32_t events)
{
	struct control *ctl = opaque;
	struct control_client *cl;
	struct err *e = NULL;
	unsigned slot = 0;
	int fd;

	(void)events;
	fd = accept4(ctl->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	while (slot < CONTROL_MAX_CLIENTS && ctl->clients[slot])
		slot++;
	cl = slot < CONTROL_MAX_CLIENTS ? calloc(1, sizeof(*cl)) : NULL;
	if (cl == NULL) {
		static const char busy[] = "ERROR too many clients\n";
		(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return;
	}
	cl->ctl = ctl;
	cl->fd = fd;
	if (event_loop_add(&ctl->vm->loop, fd, EPOLLIN, on_client, cl, &e) < 0) {
		log_warn("control socket '%s': %s", ctl->path, e->msg);
		err_free(&e);
		close(fd);
		free(cl);
		return;
	}
	ctl->clients[slot] = cl;
}

int control_create(struct vm *vm, const char *path, struct control **ret, struct err **e)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	int r;

	if (ctl == NULL || (ctl->path = strdup(path)) == NULL) {
		free(ctl);
		return err_set(e, ENOMEM, "control socket '%s'", path);
	}
	ctl->vm = vm;
	ctl->listen_fd = unix_listen(path, 4);
	if (ctl->listen_fd < 0) {
		r = err_set(e, -ctl->listen_fd, "control socket '%s': listen", path);
		free(ctl->path);
		free(ctl);
		return r;
	}
	r = event_loop_add(&vm->loop, ctl->listen_fd, EPOLLIN, on_accept, ctl, e);
	if (r < 0) {
		control_destroy(ctl);
		return r;
	}
	*ret = ctl;
	return 0;
}

void control_destroy(struct control *ctl)
{
	if (ctl == NULL)
		return;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (ctl->clients[i])
			client_close(ctl->clients[i]);
	event_loop_remove(&ctl->vm->loop, ctl->listen_fd);
	close(ctl->listen_fd);
	unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}
