#include "vmm/event-loop.h"

#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct event_source {
	int fd;
	event_fn fn;
	void *opaque;
	struct event_source *next;
};

int event_loop_init(struct event_loop *loop, struct err **e)
{
	loop->sources = NULL;
	loop->stop = false;
	loop->timeout_ms = -1;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		return err_set(e, errno, "event loop: epoll_create1");
	return 0;
}

void event_loop_destroy(struct event_loop *loop)
{
	while (loop->sources) {
		struct event_source *s = loop->sources;
		loop->sources = s->next;
		free(s);
	}
	if (loop->epfd >= 0)
		close(loop->epfd);
	loop->epfd = -1;
}

int event_loop_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn, void *opaque, struct err **e)
{
	struct event_source *s = calloc(1, sizeof(*s));
	struct epoll_event ev = {.events = events};

	if (s == NULL)
		return err_set(e, ENOMEM, "event loop: add fd %d", fd);
	s->fd = fd;
	s->fn = fn;
	s->opaque = opaque;
	ev.data.ptr = s;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int saved = errno;
		free(s);
		return err_set(e, saved, "event loop: watch fd %d", fd);
	}
	s->next = loop->sources;
	loop->sources = s;
	return 0;
}

static struct event_source *find_source(struct event_loop *loop, int fd, struct event_source ***link)
{
	for (struct event_source **p = &loop->sources; *p; p = &(*p)->next) {
		if ((*p)->fd == fd) {
			if (link)
				*link = p;
			return *p;
		}
	}
	return NULL;
}

void event_loop_remove(struct event_loop *loop, int fd)
{
	struct event_source **link, *s = find_source(loop, fd, &link);

	if (s == NULL)
		return;
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	*link = s->next;
	free(s);
}

int event_loop_modify(struct event_loop *loop, int fd, uint32_t events)
{
	struct event_source *s = find_source(loop, fd, NULL);
	struct epoll_event ev = {.events = events};

	if (s == NULL)
		return -ENOENT;
	ev.data.ptr = s;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	return 0;
}

int event_loop_run_once(struct event_loop *loop)
{
	struct epoll_event evs[16];
	int n = epoll_wait(loop->epfd, evs, 16, loop->timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct event_source *s = evs[i].data.ptr;
		s->fn(s->opaque, evs[i].events);
	}
	return 0;
}
