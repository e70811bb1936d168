/* Asynchronous operations: each on a thread of its own, followed through
 * GET /v1/operations and the events stream, kept 10 minutes once ended. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <json-c/json.h>

#include "daemon/internal.h"

#define OP_KEEP_SECONDS 600
#define OP_PROGRESS_EVENTS_PER_SECOND 4

struct waiter {
	void (*fn)(void *);
	void *arg;
	struct waiter *next;
};

struct op {
	struct daemon *d;
	char id[17];
	char type[16];
	char *instance;
	enum op_status status;
	bool has_progress;
	double percent;
	char stage[96];
	uint64_t done, total;
	double last_progress_event;
	char *error;
	json_object *result;
	double created_at, updated_at, ended_mono;
	int refs;
	struct waiter *waiters;
	op_fn fn;
	void *arg;
	void (*free_arg)(void *);
	struct op *next;
};

struct ops {
	pthread_mutex_t lock;
	struct op *list; /* newest first */
};

struct ops *ops_new(struct daemon *d)
{
	struct ops *ops = calloc(1, sizeof(*ops));

	(void)d;
	if (ops)
		pthread_mutex_init(&ops->lock, NULL);
	return ops;
}

static void op_free(struct op *op)
{
	free(op->instance);
	free(op->error);
	json_object_put(op->result);
	free(op);
}

void ops_free(struct ops *ops)
{
	if (ops == NULL)
		return;
	/* Operations still running keep their references: their threads end
	 * with the process. */
	pthread_mutex_destroy(&ops->lock);
	free(ops);
}

struct daemon *op_daemon(const struct op *op)
{
	return op->d;
}

const char *op_id(const struct op *op)
{
	return op->id;
}

static const char *status_name(enum op_status s)
{
	return s == OP_RUNNING ? "running" : s == OP_SUCCESS ? "success" : "failure";
}

/* With ops->lock held. */
static json_object *to_json_locked(struct op *op)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(op->id));
	json_object_object_add(o, "type", json_object_new_string(op->type));
	json_object_object_add(o, "instance", op->instance ? json_object_new_string(op->instance) : NULL);
	json_object_object_add(o, "status", json_object_new_string(status_name(op->status)));
	if (op->has_progress) {
		json_object *p = json_object_new_object();
		if (op->percent >= 0)
			json_object_object_add(p, "percent", json_object_new_double(op->percent));
		if (op->stage[0])
			json_object_object_add(p, "stage", json_object_new_string(op->stage));
		if (op->total) {
			json_object_object_add(p, "bytes_done", json_object_new_int64((int64_t)op->done));
			json_object_object_add(p, "bytes_total", json_object_new_int64((int64_t)op->total));
		}
		json_object_object_add(o, "progress", p);
	}
	json_object_object_add(o, "error", op->error ? json_object_new_string(op->error) : NULL);
	json_object_object_add(o, "result", json_copy(op->result));
	json_object_object_add(o, "created_at", json_object_new_double(op->created_at));
	json_object_object_add(o, "updated_at", json_object_new_double(op->updated_at));
	return o;
}

json_object *op_to_json(struct op *op)
{
	json_object *o;

	pthread_mutex_lock(&op->d->ops->lock);
	o = to_json_locked(op);
	pthread_mutex_unlock(&op->d->ops->lock);
	return o;
}

enum op_status op_status(struct op *op)
{
	enum op_status s;

	pthread_mutex_lock(&op->d->ops->lock);
	s = op->status;
	pthread_mutex_unlock(&op->d->ops->lock);
	return s;
}

void op_put(struct op *op)
{
	struct ops *ops;
	bool last;

	if (op == NULL)
		return;
	ops = op->d->ops;
	pthread_mutex_lock(&ops->lock);
	last = --op->refs == 0;
	pthread_mutex_unlock(&ops->lock);
	if (last)
		op_free(op);
}

struct op *op_get(struct daemon *d, const char *id)
{
	struct op *found = NULL;

	pthread_mutex_lock(&d->ops->lock);
	for (struct op *op = d->ops->list; op; op = op->next)
		if (strcmp(op->id, id) == 0) {
			found = op;
			op->refs++;
			break;
		}
	pthread_mutex_unlock(&d->ops->lock);
	return found;
}

json_object *ops_list_json(struct daemon *d)
{
	json_object *a = json_object_new_array();

	pthread_mutex_lock(&d->ops->lock);
	for (struct op *op = d->ops->list; op; op = op->next)
		json_object_array_add(a, to_json_locked(op));
	pthread_mutex_unlock(&d->ops->lock);
	return a;
}

int ops_running(struct daemon *d)
{
	int n = 0;

	pthread_mutex_lock(&d->ops->lock);
	for (struct op *op = d->ops->list; op; op = op->next)
		n += op->status == OP_RUNNING;
	pthread_mutex_unlock(&d->ops->lock);
	return n;
}

void op_progress(struct op *op, double percent, const char *stage, uint64_t done, uint64_t total)
{
	json_object *event = NULL;
	double now = proc_monotonic();

	pthread_mutex_lock(&op->d->ops->lock);
	op->has_progress = true;
	op->percent = percent > 100 ? 100 : percent;
	if (stage)
		snprintf(op->stage, sizeof(op->stage), "%s", stage);
	op->done = done;
	op->total = total;
	op->updated_at = proc_now();
	if (now - op->last_progress_event >= 1.0 / OP_PROGRESS_EVENTS_PER_SECOND) {
		op->last_progress_event = now;
		event = to_json_locked(op);
	}
	pthread_mutex_unlock(&op->d->ops->lock);
	if (event)
		event_operation(op->d, "operation-progress", event);
}

void op_set_result(struct op *op, json_object *result)
{
	pthread_mutex_lock(&op->d->ops->lock);
	json_object_put(op->result);
	op->result = result;
	pthread_mutex_unlock(&op->d->ops->lock);
}

void op_on_done(struct op *op, void (*fn)(void *), void *arg)
{
	struct waiter *w;

	pthread_mutex_lock(&op->d->ops->lock);
	if (op->status != OP_RUNNING || (w = calloc(1, sizeof(*w))) == NULL) {
		pthread_mutex_unlock(&op->d->ops->lock);
		fn(arg);
		return;
	}
	w->fn = fn;
	w->arg = arg;
	w->next = op->waiters;
	op->waiters = w;
	pthread_mutex_unlock(&op->d->ops->lock);
}

bool op_forget(struct op *op, void *arg)
{
	bool found = false;

	pthread_mutex_lock(&op->d->ops->lock);
	for (struct waiter **w = &op->waiters; *w; w = &(*w)->next)
		if ((*w)->arg == arg) {
			struct waiter *gone = *w;
			*w = gone->next;
			free(gone);
			found = true;
			break;
		}
	pthread_mutex_unlock(&op->d->ops->lock);
	return found;
}

static void *op_thread(void *arg)
{
	struct op *op = arg;
	struct err *e = NULL;
	struct waiter *w;
	json_object *done;
	int r;

	r = op->fn(op, op->arg, &e);
	if (op->free_arg)
		op->free_arg(op->arg);
	pthread_mutex_lock(&op->d->ops->lock);
	op->status = r < 0 ? OP_FAILURE : OP_SUCCESS;
	if (r < 0)
		op->error = strdup(e && e->msg ? e->msg : "failed");
	if (r >= 0 && op->has_progress)
		op->percent = 100;
	op->updated_at = proc_now();
	op->ended_mono = proc_monotonic();
	w = op->waiters;
	op->waiters = NULL;
	done = to_json_locked(op);
	pthread_mutex_unlock(&op->d->ops->lock);
	err_free(&e);
	event_operation(op->d, "operation-done", done);
	while (w) {
		struct waiter *next = w->next;
		w->fn(w->arg);
		free(w);
		w = next;
	}
	op_put(op);
	return NULL;
}

struct op *op_create(struct daemon *d, const char *type, const char *instance)
{
	struct op *op = calloc(1, sizeof(*op));
	unsigned char rnd[8];

	if (op == NULL)
		return NULL;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		memset(rnd, 0x5a, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(op->id + 2 * i, 3, "%02x", rnd[i]);
	snprintf(op->type, sizeof(op->type), "%s", type);
	op->d = d;
	op->instance = instance ? strdup(instance) : NULL;
	op->status = OP_RUNNING;
	op->created_at = op->updated_at = proc_now();
	op->refs = 2; /* the list, the caller */
	pthread_mutex_lock(&d->ops->lock);
	op->next = d->ops->list;
	d->ops->list = op;
	pthread_mutex_unlock(&d->ops->lock);
	return op;
}

struct op *op_ref(struct op *op)
{
	pthread_mutex_lock(&op->d->ops->lock);
	op->refs++;
	pthread_mutex_unlock(&op->d->ops->lock);
	return op;
}

void op_run(struct op *op, op_fn fn, void *arg, void (*free_arg)(void *))
{
	pthread_t t;

	op->fn = fn;
	op->arg = arg;
	op->free_arg = free_arg;
	op_ref(op); /* the thread's */
	event_operation(op->d, "operation-created", op_to_json(op));
	/* The default stack, not the VMM's small one: a pull runs libcurl
	 * and OpenSSL, an unpack libarchive. */
	if (pthread_create(&t, NULL, op_thread, op) != 0) {
		op_thread(op); /* no thread: it runs here */
		return;
	}
	pthread_detach(t);
}

struct op *op_start(struct daemon *d, const char *type, const char *instance, op_fn fn, void *arg,
		    void (*free_arg)(void *))
{
	struct op *op = op_create(d, type, instance);

	if (op == NULL) {
		if (free_arg)
			free_arg(arg);
		return NULL;
	}
	op_run(op, fn, arg, free_arg);
	return op;
}

void ops_gc(struct daemon *d)
{
	double now = proc_monotonic();
	struct op *gone = NULL;

	pthread_mutex_lock(&d->ops->lock);
	for (struct op **p = &d->ops->list; *p;) {
		struct op *op = *p;
		if (op->status != OP_RUNNING && now - op->ended_mono > OP_KEEP_SECONDS) {
			*p = op->next;
			op->next = gone;
			gone = op;
		} else {
			p = &op->next;
		}
	}
	pthread_mutex_unlock(&d->ops->lock);
	while (gone) {
		struct op *next = gone->next;
		op_put(gone);
		gone = next;
	}
}
