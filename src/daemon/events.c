#include "daemon/events.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "daemon/internal.h"

struct event {
	uint64_t id;
	unsigned type;
	char *text; /* "id: N\nevent: T\ndata: JSON\n\n" */
};

struct event_sub {
	unsigned types;
	uint64_t next;	   /* the next event id to send */
	size_t pending_at; /* bytes of the current event already sent */
	bool ping, lost, asleep;
	void *conn;
	void (*sleep)(void *conn);
	void (*wake)(void *conn);
	struct event_sub *prev, *nxt;
};

struct events {
	pthread_mutex_t lock;
	struct event ring[EVENTS_KEPT];
	uint64_t next_id; /* the id the next event gets */
	struct event_sub *subs;
};

struct events *events_new(void)
{
	struct events *ev = calloc(1, sizeof(*ev));

	if (ev == NULL)
		return NULL;
	pthread_mutex_init(&ev->lock, NULL);
	ev->next_id = 1;
	return ev;
}

void events_free(struct events *ev)
{
	if (ev == NULL)
		return;
	for (size_t i = 0; i < EVENTS_KEPT; i++)
		free(ev->ring[i].text);
	while (ev->subs)
		events_unsubscribe(ev, ev->subs);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}

void events_publish(struct events *ev, unsigned type, json_object *event)
{
	struct event *slot;
	char *text;
	int len;

	pthread_mutex_lock(&ev->lock);
	json_object_object_add(event, "id", json_object_new_int64((int64_t)ev->next_id));
	json_object_object_add(event, "time", json_object_new_double(proc_now()));
	json_object_object_add(event, "type",
			       json_object_new_string(type == EVENT_LIFECYCLE ? "lifecycle" : "operation"));
	len = asprintf(&text, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)ev->next_id,
		       type == EVENT_LIFECYCLE ? "lifecycle" : "operation",
		       json_object_to_json_string_ext(event, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(event);
	if (len < 0) {
		pthread_mutex_unlock(&ev->lock);
		return;
	}
	slot = &ev->ring[ev->next_id % EVENTS_KEPT];
	free(slot->text);
	*slot = (struct event){.id = ev->next_id, .type = type, .text = text};
	ev->next_id++;
	for (struct event_sub *s = ev->subs; s; s = s->nxt)
		if (s->asleep && (s->types & type)) {
			s->asleep = false;
			s->wake(s->conn);
		}
	pthread_mutex_unlock(&ev->lock);
}

struct event_sub *events_subscribe(struct events *ev, unsigned types, uint64_t last_id, void *conn,
				   void (*sleep)(void *conn), void (*wake)(void *conn))
{
	struct event_sub *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->types = types;
	s->conn = conn;
	s->sleep = sleep;
	s->wake = wake;
	pthread_mutex_lock(&ev->lock);
	s->next = ev->next_id;
	if (last_id > 0 && last_id < ev->next_id) {
		uint64_t oldest = ev->next_id > EVENTS_KEPT ? ev->next_id - EVENTS_KEPT : 1;
		s->next = last_id + 1;
		if (s->next < oldest) {
			s->next = oldest;
			s->lost = true;
		}
	}
	s->nxt = ev->subs;
	if (ev->subs)
		ev->subs->prev = s;
	ev->subs = s;
	pthread_mutex_unlock(&ev->lock);
	return s;
}

void events_unsubscribe(struct events *ev, struct event_sub *s)
{
	pthread_mutex_lock(&ev->lock);
	if (s->prev)
		s->prev->nxt = s->nxt;
	else
		ev->subs = s->nxt;
	if (s->nxt)
		s->nxt->prev = s->prev;
	pthread_mutex_unlock(&ev->lock);
	free(s);
}

/* Copy as much of text (from *at) as fits; true when all of it went. */
static bool copy_part(const char *text, size_t *at, char *buf, size_t max, size_t *used)
{
	size_t len = strlen(text) - *at, n = MIN(len, max - *used);

	memcpy(buf + *used, text + *at, n);
	*used += n;
	*at += n;
	return n == len;
}

ssize_t events_read(struct events *ev, struct event_sub *s, char *buf, size_t max)
{
	size_t used = 0, at;

	pthread_mutex_lock(&ev->lock);
	if (s->lost) {
		static const char lost[] = ": some events were lost (too far behind)\n\n";
		at = 0;
		if (max >= sizeof(lost)) {
			copy_part(lost, &at, buf, max, &used);
			s->lost = false;
		}
	}
	if (s->ping && used + 16 <= max) {
		at = 0;
		copy_part(": keepalive\n\n", &at, buf, max, &used);
		s->ping = false;
	}
	/* An event that fell out of the ring while the subscriber was slow is
	 * lost for it; it goes on from the oldest kept. */
	if (ev->next_id > EVENTS_KEPT && s->next < ev->next_id - EVENTS_KEPT) {
		s->next = ev->next_id - EVENTS_KEPT;
		s->pending_at = 0;
	}
	while (s->next < ev->next_id && used < max) {
		struct event *e = &ev->ring[s->next % EVENTS_KEPT];
		if (!(e->type & s->types)) {
			s->next++;
			continue;
		}
		at = s->pending_at;
		if (!copy_part(e->text, &at, buf, max, &used)) {
			s->pending_at = at;
			break;
		}
		s->pending_at = 0;
		s->next++;
	}
	if (used == 0) {
		s->asleep = true;
		s->sleep(s->conn);
	}
	pthread_mutex_unlock(&ev->lock);
	return (ssize_t)used;
}

void events_ping(struct events *ev)
{
	pthread_mutex_lock(&ev->lock);
	for (struct event_sub *s = ev->subs; s; s = s->nxt) {
		s->ping = true;
		if (s->asleep) {
			s->asleep = false;
			s->wake(s->conn);
		}
	}
	pthread_mutex_unlock(&ev->lock);
}

/* ---- the daemon's events ---- */

void event_lifecycle(struct daemon *d, const char *action, struct instance *inst)
{
	json_object *o = json_object_new_object();

	pthread_mutex_lock(&d->lock);
	json_object_object_add(o, "action", json_object_new_string(action));
	json_object_object_add(o, "instance", json_object_new_string(inst->name));
	json_object_object_add(o, "instance_type", json_object_new_string(instance_type_name(inst->type)));
	json_object_object_add(o, "state", json_object_new_string(instance_state_name(inst->state)));
	if (inst->has_exit && inst->state == STATE_STOPPED) {
		json_object_object_add(o, "exit_status", json_object_new_int(inst->exit_status));
		json_object_object_add(o, "exit_reason", json_object_new_string(inst->exit_reason));
	}
	pthread_mutex_unlock(&d->lock);
	events_publish(d->events, EVENT_LIFECYCLE, o);
}

void event_operation(struct daemon *d, const char *action, json_object *op_json)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "action", json_object_new_string(action));
	json_object_object_add(o, "operation", op_json);
	events_publish(d->events, EVENT_OPERATION, o);
}

void events_keepalive(struct daemon *d)
{
	events_ping(d->events);
}
