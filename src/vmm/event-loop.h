/* A small epoll loop for the VMM thread: fds with callbacks. */
#ifndef CASULO_VMM_EVENT_LOOP_H
#define CASULO_VMM_EVENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

typedef void (*event_fn)(void *opaque, uint32_t events);

struct event_source;

struct event_loop {
	int epfd;
	struct event_source *sources;
	bool stop;
	int timeout_ms; /* -1 blocks; callbacks may lower it for polling */
};

int event_loop_init(struct event_loop *loop, struct err **e) MUST_CHECK;
void event_loop_destroy(struct event_loop *loop);
int event_loop_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn, void *opaque,
		   struct err **e) MUST_CHECK;
void event_loop_remove(struct event_loop *loop, int fd);
/* Modify the events watched on fd (0 pauses it). */
int event_loop_modify(struct event_loop *loop, int fd, uint32_t events);
/* Run one round of waiting; returns 0, or -errno on a loop failure. */
int event_loop_run_once(struct event_loop *loop) MUST_CHECK;

#endif
