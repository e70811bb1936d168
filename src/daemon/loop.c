/* The supervisor thread: an epoll loop over the shims' pidfds, the
 * consoles' connections to their shims and the websockets of console
 * viewers.  Other threads hand it work through loop_post(). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/internal.h"

struct loop_source {
	int fd;
	void (*fn)(void *ctx, uint32_t events);
	void *ctx;
	bool dead;
	struct loop_source *next_dead;
};

struct posted {
	void (*fn)(void *);
	void *arg;
	struct posted *next;
};

struct loop {
	struct daemon *d;
	int epfd, wake_fd;
	pthread_mutex_t lock;
	struct posted *head, *tail;
	struct loop_source *dead; /* freed at the end of an iteration */
	bool stop;
};

struct loop *loop_new(struct daemon *d, struct err **e)
{
	struct loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = {.events = EPOLLIN};

	if (l == NULL)
		return err_set(e, ENOMEM, "loop"), NULL;
	l->d = d;
	pthread_mutex_init(&l->lock, NULL);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epfd < 0 || l->wake_fd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0) {
		err_set(e, errno, "loop: epoll");
		loop_free(l);
		return NULL;
	}
	return l;
}

void loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	while (l->dead) {
		struct loop_source *n = l->dead->next_dead;
		free(l->dead);
		l->dead = n;
	}
	pthread_mutex_destroy(&l->lock);
	free(l);
}

void loop_post(struct loop *l, void (*fn)(void *), void *arg)
{
	struct posted *p = calloc(1, sizeof(*p));
	uint64_t one = 1;

	if (p == NULL) {
		log_error("loop: out of memory: a task is lost");
		return;
	}
	p->fn = fn;
	p->arg = arg;
	pthread_mutex_lock(&l->lock);
	if (l->tail)
		l->tail->next = p;
	else
		l->head = p;
	l->tail = p;
	pthread_mutex_unlock(&l->lock);
	if (write(l->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("loop: wake: %s", strerror(errno));
}

static void run_posted(struct loop *l)
{
	struct posted *p;
	uint64_t n;

	if (read(l->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&l->lock);
	p = l->head;
	l->head = l->tail = NULL;
	pthread_mutex_unlock(&l->lock);
	while (p) {
		struct posted *next = p->next;
		p->fn(p->arg);
		free(p);
		p = next;
	}
}

struct loop_source *loop_add_fd(struct loop *l, int fd, uint32_t events, void (*fn)(void *ctx, uint32_t events),
				void *ctx)
{
	struct loop_source *s = calloc(1, sizeof(*s));
	struct epoll_event ev = {.events = events};

	if (s == NULL)
		return NULL;
	s->fd = fd;
	s->fn = fn;
	s->ctx = ctx;
	ev.data.ptr = s;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_warn("loop: watch fd %d: %s", fd, strerror(errno));
		free(s);
		return NULL;
	}
	return s;
}

void loop_mod_fd(struct loop *l, struct loop_source *s, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = s};

	if (s && !s->dead)
		epoll_ctl(l->epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

/* The source is freed after the current iteration: an event for it may
 * still be in this round's list. */
void loop_del_fd(struct loop *l, struct loop_source *s)
{
	if (s == NULL || s->dead)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	s->dead = true;
	s->next_dead = l->dead;
	l->dead = s;
}

void loop_run(struct loop *l)
{
	while (!l->stop) {
		struct epoll_event evs[64];
		int n = epoll_wait(l->epfd, evs, 64, 1000);

		for (int i = 0; i < n; i++) {
			struct loop_source *s = evs[i].data.ptr;
			if (s == NULL)
				run_posted(l);
			else if (!s->dead)
				s->fn(s->ctx, evs[i].events);
		}
		while (l->dead) {
			struct loop_source *next = l->dead->next_dead;
			free(l->dead);
			l->dead = next;
		}
	}
}

static void set_stop(void *arg)
{
	((struct loop *)arg)->stop = true;
}

void loop_stop(struct loop *l)
{
	loop_post(l, set_stop, l);
}

/* ---- watching a running instance ---- */

struct watch {
	struct instance *inst;
	struct loop_source *src;
};

static void on_shim_exit(void *ctx, uint32_t events)
{
	struct watch *w = ctx;
	struct instance *inst = w->inst;

	(void)events;
	loop_del_fd(inst->d->loop, w->src);
	if (inst->console)
		console_end(inst->console);
	instance_ended(inst);
	instance_put(inst);
	free(w);
}

static void watch_now(void *arg)
{
	struct instance *inst = arg;
	struct watch *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		log_error("instance '%s': out of memory: its end will not be seen", inst->name);
		instance_put(inst);
		return;
	}
	w->inst = inst;
	if (inst->console == NULL)
		inst->console = console_new(inst);
	if (inst->console)
		console_connect(inst->console);
	w->src = loop_add_fd(inst->d->loop, inst->shim_pidfd, EPOLLIN, on_shim_exit, w);
	if (w->src == NULL) {
		log_error("instance '%s': cannot watch its shim: its end will not be seen", inst->name);
		instance_put(inst);
		free(w);
	}
}

void loop_watch(struct loop *l, struct instance *inst)
{
	pthread_mutex_lock(&inst->d->lock);
	inst->refs++;
	pthread_mutex_unlock(&inst->d->lock);
	loop_post(l, watch_now, inst);
}
