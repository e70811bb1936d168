#include "vmm/actions.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "casulo-config.h"
#include "common/log.h"
#include "vmm/devices/device.h"
#include "vmm/devices/virtio/balloon.h"
#include "vmm/devices/power-button.h"
#include "vmm/migrate/migrate.h"
#include "vmm/vcpu.h"
#include "vmm/snapshot/snapshot.h"

#define STATE_BIT(s) (1u << (s))
#define ANY_STATE (STATE_BIT(VM_STATE_NOT_STARTED) | STATE_BIT(VM_STATE_RUNNING) | STATE_BIT(VM_STATE_PAUSED) | \
		   STATE_BIT(VM_STATE_STOPPED))
#define LIVE (STATE_BIT(VM_STATE_RUNNING) | STATE_BIT(VM_STATE_PAUSED))

static const struct {
	const char *name;
	unsigned states; /* where the action is allowed */
} action_rules[VM_ACTION__MAX] = {
	[VM_ACTION_INFO] = { "info", ANY_STATE },
	[VM_ACTION_PAUSE] = { "pause", LIVE },
	[VM_ACTION_RESUME] = { "resume", LIVE },
	[VM_ACTION_SHUTDOWN] = { "shutdown", STATE_BIT(VM_STATE_RUNNING) },
	[VM_ACTION_STOP] = { "stop", LIVE | STATE_BIT(VM_STATE_NOT_STARTED) },
	[VM_ACTION_SNAPSHOT_CREATE] = { "snapshot create", LIVE },
	[VM_ACTION_SNAPSHOT_LOAD] = { "snapshot load", STATE_BIT(VM_STATE_NOT_STARTED) },
	[VM_ACTION_MIGRATE] = { "migration", STATE_BIT(VM_STATE_RUNNING) },
	[VM_ACTION_MIGRATION_INFO] = { "migration info", ANY_STATE },
	[VM_ACTION_BALLOON_SET] = { "balloon", LIVE },
	[VM_ACTION_BALLOON_STATS] = { "balloon statistics", LIVE },
	[VM_ACTION_METRICS] = { "metrics", ANY_STATE },
	[VM_ACTION_MIGRATION_PAUSE] = { "migration pause", STATE_BIT(VM_STATE_RUNNING) },
	[VM_ACTION_MIGRATION_RESUME] = { "migration resume", LIVE },
};

/* While a migration runs, only these go through: the rest would change
 * the VM under the migration's feet. */
static bool allowed_while_migrating(enum vm_action_kind kind)
{
	switch (kind) {
	case VM_ACTION_INFO:
	case VM_ACTION_MIGRATION_INFO:
	case VM_ACTION_METRICS:
	case VM_ACTION_BALLOON_STATS:
	case VM_ACTION_MIGRATION_PAUSE:
	case VM_ACTION_MIGRATION_RESUME:
	case VM_ACTION_STOP:
		return true;
	default:
		return false;
	}
}

bool vm_action_allowed(enum vm_action_kind kind, enum vm_state state)
{
	return kind < VM_ACTION__MAX && (action_rules[kind].states & STATE_BIT(state));
}

const char *vm_action_name(enum vm_action_kind kind)
{
	return kind < VM_ACTION__MAX ? action_rules[kind].name : "unknown";
}

char *vm_action_error_json(const char *fmt, ...)
{
	char msg[1024];
	json_object *o = json_object_new_object();
	char *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(msg));
	text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return text;
}

static char *json_take(json_object *o)
{
	char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return text;
}

static void answer(struct vm_action *a, int status, char *body)
{
	a->http_status = status;
	a->body = body;
}

static void do_info(struct vm *vm, struct vm_action *a)
{
	json_object *o = json_object_new_object();
	struct timespec now;
	double uptime = 0;

	if (vm->state != VM_STATE_NOT_STARTED) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		uptime = (double)(now.tv_sec - vm->started.tv_sec) + (double)(now.tv_nsec - vm->started.tv_nsec) / 1e9;
	}
	json_object_object_add(o, "state", json_object_new_string(vm_state_name(vm->state)));
	json_object_object_add(o, "uptime_seconds", json_object_new_double(uptime));
	json_object_object_add(o, "vmm_version", json_object_new_string(CASULO_VERSION));
	json_object_object_add(o, "config", vm_config_to_json(&vm->cfg));
	answer(a, 200, json_take(o));
}

static void do_snapshot_create(struct vm *vm, struct vm_action *a)
{
	struct err *e = NULL;

	if (vm_snapshot_create(vm, a->path, &e) < 0)
		answer(a, err_code(e) == EEXIST ? 400 : 500, vm_action_error_json("%s", e->msg));
	else
		answer(a, 204, NULL);
	err_free(&e);
}

static void do_snapshot_load(struct vm *vm, struct vm_action *a)
{
	struct vm_config host = vm->cfg;
	struct err *e = NULL;
	bool built;

	if (vm_snapshot_load(vm, a->path, &host, &built, &e) < 0) {
		if (built) {
			/* Half built: this VMM cannot go on. */
			answer(a, 500, vm_action_error_json("%s", e->msg));
			vm_fail(vm, "%s", e->msg);
		} else {
			answer(a, 422, vm_action_error_json("%s", e->msg));
		}
	} else {
		answer(a, 204, NULL);
	}
	err_free(&e);
}

static long self_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void do_metrics(struct vm *vm, struct vm_action *a)
{
	json_object *o = json_object_new_object(), *vcpus = json_object_new_array(), *devs = json_object_new_array();
	json_object *mem = json_object_new_object();

	for (unsigned i = 0; i < vm->nvcpus && vm->vcpus; i++) {
		json_object *v = json_object_new_object(), *exits = json_object_new_object();
		for (unsigned r = 0; r < VCPU_EXIT_SLOTS; r++) {
			uint64_t n = __atomic_load_n(&vm->vcpus[i].exits[r], __ATOMIC_RELAXED);
			if (n)
				json_object_object_add(exits, r == VCPU_EXIT_SLOT_INTERRUPTED ? "interrupted"
												 : vcpu_exit_name(r),
						       json_object_new_int64((int64_t)n));
		}
		json_object_object_add(v, "id", json_object_new_int((int)i));
		json_object_object_add(v, "exits", exits);
		json_object_array_add(vcpus, v);
	}
	for (struct device *d = vm->devices; d; d = d->next) {
		json_object *dj = json_object_new_object(), *c = json_object_new_object();
		json_object_object_add(dj, "name", json_object_new_string(d->name));
		json_object_object_add(dj, "kind", json_object_new_string(d->kind ? d->kind : d->ops->name));
		if (d->ops->metrics)
			d->ops->metrics(d, c);
		json_object_object_add(dj, "counters", c);
		json_object_array_add(devs, dj);
	}
	json_object_object_add(mem, "guest_mib", json_object_new_int64((int64_t)(vm->mem.size >> 20)));
	json_object_object_add(mem, "vmm_rss_kib", json_object_new_int64(self_rss_kib()));
	json_object_object_add(o, "vcpus", vcpus);
	json_object_object_add(o, "devices", devs);
	json_object_object_add(o, "memory", mem);
	answer(a, 200, json_take(o));
}

/* PUT /balloon, GET /balloon/statistics: the --balloon device. */
static void do_balloon(struct vm *vm, struct vm_action *a)
{
	struct balloon_info info;
	struct err *e = NULL;
	json_object *o, *stats;

	if (vm->balloon == NULL) {
		answer(a, 409, vm_action_error_json("this VM has no balloon (--balloon)"));
		return;
	}
	if (a->kind == VM_ACTION_BALLOON_SET) {
		if (virtio_balloon_set_target(vm->balloon, a->balloon_target, &e) < 0) {
			answer(a, 400, vm_action_error_json("%s", e->msg));
			err_free(&e);
		} else {
			answer(a, 204, NULL);
		}
		return;
	}
	/* Also asks the guest for fresh statistics, for the next call. */
	virtio_balloon_query(vm->balloon, &info);
	o = json_object_new_object();
	json_object_object_add(o, "target_mib", json_object_new_int64((int64_t)(info.target >> 20)));
	json_object_object_add(o, "actual_mib", json_object_new_int64((int64_t)(info.actual >> 20)));
	json_object_object_add(o, "released_mib", json_object_new_int64((int64_t)(info.released >> 20)));
	if (info.stats_valid) {
		stats = json_object_new_object();
		for (unsigned t = 0; t < BALLOON_STATS_MAX; t++) {
			char key[32];
			if (!(info.stats_present & (1u << t)))
				continue;
			snprintf(key, sizeof(key), "%s", virtio_balloon_stat_name(t));
			for (char *c = key; *c; c++)
				*c = *c == '-' ? '_' : *c;
			json_object_object_add(stats, key, json_object_new_int64((int64_t)info.stats[t]));
		}
		json_object_object_add(o, "stats", stats);
		json_object_object_add(o, "stats_age_seconds", json_object_new_double(info.stats_age));
	}
	answer(a, 200, json_take(o));
}

static void do_action(struct vm *vm, struct vm_action *a)
{
	if (migrate_running(vm) && !allowed_while_migrating(a->kind)) {
		answer(a, 409, vm_action_error_json("%s is not possible while a migration runs", vm_action_name(a->kind)));
		return;
	}
	if (!vm_action_allowed(a->kind, vm->state)) {
		answer(a, 409, vm_action_error_json("%s is not possible while the VM is %s", vm_action_name(a->kind),
						    vm_state_name(vm->state)));
		return;
	}
	switch (a->kind) {
	case VM_ACTION_INFO:
		do_info(vm, a);
		return;
	case VM_ACTION_PAUSE:
		if (vm_pause(vm) < 0)
			answer(a, 500, vm_action_error_json("pause failed"));
		else
			answer(a, 204, NULL);
		return;
	case VM_ACTION_RESUME:
		if (vm_resume(vm) < 0)
			answer(a, 500, vm_action_error_json("resume failed"));
		else
			answer(a, 204, NULL);
		return;
	case VM_ACTION_SHUTDOWN:
		power_button_press(vm);
		answer(a, 204, NULL);
		return;
	case VM_ACTION_STOP:
		vm_request_exit(vm, VM_EXIT_STOPPED);
		answer(a, 204, NULL);
		return;
	case VM_ACTION_METRICS:
		do_metrics(vm, a);
		return;
	case VM_ACTION_MIGRATE: {
		struct err *e = NULL;
		if (migrate_send_start(vm, a->destination, a->downtime_ms, &e) < 0)
			answer(a, err_code(e) == EBUSY ? 409 : 500, vm_action_error_json("%s", e->msg));
		else
			answer(a, 202, NULL);
		err_free(&e);
		return;
	}
	case VM_ACTION_MIGRATION_INFO:
		answer(a, 200, json_take(migrate_info(vm)));
		return;
	case VM_ACTION_MIGRATION_PAUSE:
		answer(a, vm_pause(vm) < 0 ? 500 : 204, NULL);
		return;
	case VM_ACTION_MIGRATION_RESUME:
		answer(a, vm_resume(vm) < 0 ? 500 : 204, NULL);
		return;
	case VM_ACTION_SNAPSHOT_CREATE:
		do_snapshot_create(vm, a);
		return;
	case VM_ACTION_SNAPSHOT_LOAD:
		do_snapshot_load(vm, a);
		return;
	case VM_ACTION_BALLOON_SET:
	case VM_ACTION_BALLOON_STATS:
		do_balloon(vm, a);
		return;
	default:
		answer(a, 501, vm_action_error_json("%s is not implemented yet", vm_action_name(a->kind)));
		return;
	}
}

static void finish(struct vm_action *a)
{
	pthread_mutex_lock(&a->lock);
	a->done = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

/* VMM thread: run everything queued. */
static void on_actions(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t v;

	(void)events;
	(void)!read(vm->action_fd, &v, sizeof(v));
	for (;;) {
		struct vm_action *a;

		pthread_mutex_lock(&vm->action_lock);
		a = vm->action_head;
		if (a) {
			vm->action_head = a->next;
			if (vm->action_head == NULL)
				vm->action_tail = NULL;
		}
		pthread_mutex_unlock(&vm->action_lock);
		if (a == NULL)
			break;
		do_action(vm, a);
		finish(a);
	}
}

int vm_actions_init(struct vm *vm, struct err **e)
{
	pthread_mutex_init(&vm->action_lock, NULL);
	vm->action_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->action_fd < 0)
		return err_set(e, errno, "actions: eventfd");
	return event_loop_add(&vm->loop, vm->action_fd, EPOLLIN, on_actions, vm, e);
}

/* After the VM stopped: answer what is queued and refuse what comes. */
void vm_actions_destroy(struct vm *vm)
{
	struct vm_action *a;

	if (vm->action_fd < 0)
		return;
	pthread_mutex_lock(&vm->action_lock);
	vm->actions_closed = true;
	a = vm->action_head;
	vm->action_head = vm->action_tail = NULL;
	pthread_mutex_unlock(&vm->action_lock);
	while (a) {
		struct vm_action *next = a->next;
		answer(a, 503, vm_action_error_json("the VM has stopped"));
		finish(a);
		a = next;
	}
	close(vm->action_fd);
	vm->action_fd = -1;
}

void vm_action_init(struct vm_action *a, enum vm_action_kind kind)
{
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
}

void vm_action_release(struct vm_action *a)
{
	free(a->body);
	a->body = NULL;
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
}

void vm_action_run(struct vm *vm, struct vm_action *a)
{
	uint64_t one = 1;

	pthread_mutex_lock(&vm->action_lock);
	if (vm->actions_closed) {
		pthread_mutex_unlock(&vm->action_lock);
		answer(a, 503, vm_action_error_json("the VM has stopped"));
		return;
	}
	a->next = NULL;
	if (vm->action_tail)
		vm->action_tail->next = a;
	else
		vm->action_head = a;
	vm->action_tail = a;
	pthread_mutex_unlock(&vm->action_lock);
	(void)!write(vm->action_fd, &one, sizeof(one));
	pthread_mutex_lock(&a->lock);
	while (!a->done)
		pthread_cond_wait(&a->cond, &a->lock);
	pthread_mutex_unlock(&a->lock);
}
