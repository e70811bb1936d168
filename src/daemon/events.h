/*
 * The events bus: lifecycle changes and operations, numbered, the last
 * EVENTS_KEPT kept for subscribers that ask from an earlier id
 * (Last-Event-ID), and streamed to subscribers as server-sent events.  A
 * subscriber's reader never blocks: with nothing to send it asks its
 * connection to sleep (MHD_suspend_connection), and the next event or
 * keepalive wakes it.
 */
#ifndef CASULO_DAEMON_EVENTS_H
#define CASULO_DAEMON_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EVENTS_KEPT 256
#define EVENT_LIFECYCLE 1u
#define EVENT_OPERATION 2u

struct events;
struct event_sub;

struct events *events_new(void);
void events_free(struct events *ev);

/* Publish: type EVENT_*, the event's JSON object without its id and
 * time (taken; they are added). */
struct json_object;
void events_publish(struct events *ev, unsigned type, struct json_object *event);

/* A subscriber for the types (a mask), from after event last_id (0: only
 * new ones).  sleep(conn) and wake(conn) suspend and resume its
 * connection. */
struct event_sub *events_subscribe(struct events *ev, unsigned types, uint64_t last_id, void *conn,
				   void (*sleep)(void *conn), void (*wake)(void *conn));
void events_unsubscribe(struct events *ev, struct event_sub *s);
/* Up to max bytes of SSE text for the subscriber: 0 (and its connection
 * put to sleep) when there is nothing. */
ssize_t events_read(struct events *ev, struct event_sub *s, char *buf, size_t max);
/* Every subscriber gets a comment line (at its next read). */
void events_ping(struct events *ev);

#endif
