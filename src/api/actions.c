#include "api/actions.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "casulo-config.h"
#include "common/cpulist.h"
#include "common/log.h"
#include "common/ratelimit-json.h"
#include "common/parse.h"
#include "vmm/devices/device.h"
#include "vmm/devices/power-button.h"
#include "vmm/devices/virtio/balloon.h"
#include "vmm/devices/virtio/throttle.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/migrate/migrate.h"
#include "vmm/landlock.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/vcpu.h"

struct vm_actions {
	struct vm *vm;
	struct migration *migration; /* the current or last outgoing one (VMM thread) */
	pthread_mutex_t lock;	     /* waiters */
	struct vm_action *waiters;   /* PUT /migration/send with "wait", answered at its end */
};

/* What vm_call() carries to the VMM thread. */
struct action_call {
	struct vm_actions *acts;
	struct vm_action *a;
};

#define STATE_BIT(s) (1u << (s))
#define ANY_STATE                                                                                                      \
	(STATE_BIT(VM_STATE_NOT_STARTED) | STATE_BIT(VM_STATE_RUNNING) | STATE_BIT(VM_STATE_PAUSED) |                  \
	 STATE_BIT(VM_STATE_STOPPED))
#define LIVE (STATE_BIT(VM_STATE_RUNNING) | STATE_BIT(VM_STATE_PAUSED))

/* The one table of what each action needs: the VM states that allow it,
 * and whether it may run beside an outgoing migration (the others would
 * change the VM under the migration's feet). */
static const struct {
	const char *name;
	unsigned states;
	bool while_migrating;
} action_rules[VM_ACTION__MAX] = {
    [VM_ACTION_INFO] = {"info", ANY_STATE, true},
    [VM_ACTION_PAUSE] = {"pause", LIVE, false},
    [VM_ACTION_RESUME] = {"resume", LIVE, false},
    [VM_ACTION_SHUTDOWN] = {"shutdown", STATE_BIT(VM_STATE_RUNNING), false},
    [VM_ACTION_STOP] = {"stop", LIVE | STATE_BIT(VM_STATE_NOT_STARTED), true},
    [VM_ACTION_SNAPSHOT_CREATE] = {"snapshot create", LIVE, false},
    [VM_ACTION_SNAPSHOT_LOAD] = {"snapshot load", STATE_BIT(VM_STATE_NOT_STARTED), false},
    [VM_ACTION_MIGRATE] = {"migration", STATE_BIT(VM_STATE_RUNNING), false},
    [VM_ACTION_MIGRATION_INFO] = {"migration info", ANY_STATE, true},
    [VM_ACTION_BALLOON_SET] = {"balloon", LIVE, false},
    [VM_ACTION_BALLOON_STATS] = {"balloon statistics", LIVE, true},
    [VM_ACTION_METRICS] = {"metrics", ANY_STATE, true},
    [VM_ACTION_RATE_LIMITS] = {"rate limits", ANY_STATE, true},
    [VM_ACTION_RATE_LIMIT_SET] = {"rate limit", LIVE, false},
    [VM_ACTION_AFFINITY_GET] = {"affinity", LIVE, true},
    [VM_ACTION_AFFINITY_SET] = {"affinity change", LIVE, true},
};

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

/* The configuration, its memory as built: the backend, page size and
 * sharing actually mapped (a restore maps a snapshot's file, a hugetlbfs
 * file has that mount's pages), not only what was asked. */
static json_object *config_as_built(const struct vm *vm)
{
	json_object *cfg = vm_config_to_json(&vm->cfg), *mem;

	if (vm->mem.base && json_object_object_get_ex(cfg, "memory", &mem)) {
		json_object_object_add(mem, "backend", json_object_new_string(memory_backend_name(vm->mem.backend)));
		json_object_object_add(mem, "shared", json_object_new_boolean(vm->mem.shared));
		json_object_object_add(mem, "page_kib", json_object_new_int64((int64_t)(vm->mem.page_size >> 10)));
		json_object_object_add(mem, "from_snapshot", json_object_new_boolean(vm->mem.from_snapshot));
	}
	return cfg;
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
	json_object_object_add(o, "config", config_as_built(vm));
	answer(a, 200, json_take(o));
}

static void do_snapshot_create(struct vm *vm, struct vm_action *a)
{
	struct err *e = NULL;

	/* Under Landlock the kernel would refuse it too, with a bare EACCES. */
	if (vmm_landlock_check_snapshot(a->path, &e) < 0)
		answer(a, 400, vm_action_error_json("%s", e->msg));
	else if (vm_snapshot_create(vm, a->path, &e) < 0)
		answer(a,
		       err_code(e) == EEXIST	   ? 400
		       : err_code(e) == EOPNOTSUPP ? 409
						   : 500,
		       vm_action_error_json("%s", e->msg));
	else
		answer(a, 204, NULL);
	err_free(&e);
}

static void do_snapshot_load(struct vm *vm, struct vm_action *a)
{
	struct vm_config host = vm->cfg;
	struct err *e = NULL;
	bool built;

	if (vmm_landlock_check_snapshot(a->path, &e) < 0) {
		answer(a, 400, vm_action_error_json("%s", e->msg));
	} else if (vm_snapshot_load(vm, a->path, &host, &built, &e) < 0) {
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

static void do_metrics(struct vm *vm, struct vm_action *a)
{
	json_object *o = json_object_new_object(), *vcpus = json_object_new_array(), *devs = json_object_new_array();
	json_object *mem = json_object_new_object();

	for (unsigned i = 0; i < vm->nvcpus && vm->vcpus; i++) {
		json_object *v = json_object_new_object(), *exits = json_object_new_object();
		for (unsigned r = 0; r < VCPU_EXIT_SLOTS; r++) {
			uint64_t n = __atomic_load_n(&vm->vcpus[i].exits[r], __ATOMIC_RELAXED);
			if (n)
				json_object_object_add(
				    exits, r == VCPU_EXIT_SLOT_INTERRUPTED ? "interrupted" : vcpu_exit_name(r),
				    json_object_new_int64((int64_t)n));
		}
		json_object_object_add(v, "id", json_object_new_int((int)i));
		json_object_object_add(v, "exits", exits);
		json_object_array_add(vcpus, v);
	}
	for (struct device *d = vm->devices; d; d = d->next) {
		json_object *dj = json_object_new_object(), *c = json_object_new_object();
		json_object_object_add(dj, "name", json_object_new_string(d->name));
		json_object_object_add(dj, "kind", json_object_new_string(device_kind(d)));
		if (d->id && d->id[0])
			json_object_object_add(dj, "id", json_object_new_string(d->id));
		if (d->ops->metrics)
			d->ops->metrics(d, c);
		json_object_object_add(dj, "counters", c);
		json_object_array_add(devs, dj);
	}
	json_object_object_add(mem, "guest_mib", json_object_new_int64((int64_t)(vm->mem.size >> 20)));
	json_object_object_add(mem, "vmm_rss_kib", json_object_new_int64(proc_self_status("VmRSS", 10, 0)));
	json_object_object_add(o, "vcpus", vcpus);
	json_object_object_add(o, "devices", devs);
	json_object_object_add(o, "memory", mem);
	answer(a, 200, json_take(o));
}

static json_object *cpus_json(const cpu_set_t *set)
{
	char text[1024];

	cpulist_format(set, text, sizeof(text));
	return json_object_new_string(text);
}

/* GET /vm/affinity: where each thread runs now (the kernel's answer). */
static void affinity_report(struct vm *vm, struct vm_action *a)
{
	json_object *o = json_object_new_object(), *vcpus = json_object_new_array(), *vmm = json_object_new_object();
	struct vm_affinity *aff = &vm->affinity;
	struct err *e = NULL;
	cpu_set_t now;

	for (unsigned i = 0; i < vm->nvcpus; i++) {
		json_object *v = json_object_new_object();
		json_object_object_add(v, "id", json_object_new_int((int)i));
		json_object_object_add(v, "thread_id", json_object_new_int(atomic_load(&vm->vcpus[i].tid)));
		if (vm_affinity_get(vm->vcpus, vm->nvcpus, (int)i, &now, &e) == 0)
			json_object_object_add(v, "host_cpus", cpus_json(&now));
		err_free(&e);
		json_object_object_add(v, "pinned", json_object_new_boolean(aff->has_vcpu[i]));
		json_object_array_add(vcpus, v);
	}
	if (vm_affinity_get(vm->vcpus, vm->nvcpus, -1, &now, &e) == 0)
		json_object_object_add(vmm, "host_cpus", cpus_json(&now));
	err_free(&e);
	json_object_object_add(vmm, "pinned", json_object_new_boolean(aff->has_vmm));
	json_object_object_add(o, "host_cpus", cpus_json(&aff->host));
	json_object_object_add(o, "vcpus", vcpus);
	json_object_object_add(o, "vmm", vmm);
	answer(a, 200, json_take(o));
}

/* PATCH /vm/affinity: every change checked before the first is made. */
static void do_affinity(struct vm *vm, struct vm_action *a)
{
	struct err *e = NULL;
	char what[64];
	int r = 0;

	if (a->kind == VM_ACTION_AFFINITY_GET) {
		affinity_report(vm, a);
		return;
	}
	for (unsigned i = 0; r == 0 && i < a->n_affinity; i++) {
		const struct affinity_change *c = &a->affinity[i];
		if (c->vcpu >= 0 && (unsigned)c->vcpu >= vm->nvcpus)
			r = err_setx(&e, EINVAL, "vCPU %d does not exist (the VM has %u)", c->vcpu, vm->nvcpus);
		snprintf(what, sizeof(what), c->vcpu < 0 ? "the VMM threads" : "vCPU %d", c->vcpu);
		if (r == 0)
			r = vm_affinity_check_set(&vm->affinity, &c->cpus, what, &e);
	}
	for (unsigned i = 0; r == 0 && i < a->n_affinity; i++) {
		const struct affinity_change *c = &a->affinity[i];
		r = c->vcpu < 0
			? vm_affinity_set_vmm(&vm->affinity, vm->vcpus, vm->nvcpus, &c->cpus, &e)
			: vm_affinity_set_vcpu(&vm->affinity, vm->vcpus, vm->nvcpus, (unsigned)c->vcpu, &c->cpus, &e);
	}
	if (r < 0)
		answer(a, err_code(e) == EINVAL ? 400 : 500, vm_action_error_json("%s", e->msg));
	else
		affinity_report(vm, a);
	err_free(&e);
}

/* PUT /balloon, GET /balloon/statistics: the --balloon device. */
static void do_balloon(struct vm *vm, struct vm_action *a)
{
	struct virtio_dev *balloon = virtio_balloon_find(vm);
	struct balloon_info info;
	struct err *e = NULL;
	json_object *o, *stats;

	if (balloon == NULL) {
		answer(a, 409, vm_action_error_json("this VM has no balloon (--balloon)"));
		return;
	}
	if (a->kind == VM_ACTION_BALLOON_SET) {
		if (virtio_balloon_set_target(balloon, a->balloon_target, &e) < 0) {
			answer(a, 400, vm_action_error_json("%s", e->msg));
			err_free(&e);
		} else {
			answer(a, 204, NULL);
		}
		return;
	}
	/* Also asks the guest for fresh statistics, for the next call. */
	virtio_balloon_query(balloon, &info);
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

/* GET /rate-limits: every device that has a rate limiter, and its limits now. */
static void do_rate_limits(struct vm *vm, struct vm_action *a)
{
	json_object *o = json_object_new_object(), *devs = json_object_new_array();

	for (struct device *d = vm->devices; d; d = d->next) {
		struct virtio_dev *vd = (struct virtio_dev *)d;
		json_object *dj = NULL;
		if (!virtio_dev_is(d))
			continue;
		for (unsigned i = 0; i < VIRTIO_MAX_THROTTLES; i++) {
			struct ratelimit_config cfg;
			if (vd->throttles[i] == NULL)
				continue;
			if (dj == NULL) {
				dj = json_object_new_object();
				json_object_object_add(dj, "device", json_object_new_string(vd->id));
				json_object_object_add(dj, "kind", json_object_new_string(vd->ops->name));
			}
			throttle_get(vd->throttles[i], &cfg);
			json_object_object_add(dj, vd->throttles[i]->name, ratelimit_config_to_json(&cfg));
		}
		if (dj)
			json_object_array_add(devs, dj);
	}
	json_object_object_add(o, "devices", devs);
	answer(a, 200, json_take(o));
}

/* PUT /rate-limits: new limits for one device, all or none of them. */
static void do_rate_limit_set(struct vm *vm, struct vm_action *a)
{
	struct virtio_dev *vd = virtio_dev_find_id(vm, a->device);
	struct throttle *t[ARRAY_SIZE(a->rates)];

	if (vd == NULL) {
		answer(a, 404, vm_action_error_json("rate limit: this VM has no device '%s'", a->device));
		return;
	}
	for (unsigned i = 0; i < a->nrates; i++) {
		t[i] = throttle_find(vd, a->rates[i].name);
		if (t[i] == NULL) {
			answer(a, 400,
			       vm_action_error_json("rate limit: device '%s' (%s) has no limit '%s' (%s)", a->device,
						    vd->ops->name, a->rates[i].name,
						    strcmp(vd->ops->name, "virtio-blk") == 0 ? "a disk has \"rate\""
						    : strcmp(vd->ops->name, "virtio-net") == 0
							? "a network interface has "
							  "\"rx_rate\" and \"tx_rate\""
							: "it has none"));
			return;
		}
	}
	for (unsigned i = 0; i < a->nrates; i++) {
		struct ratelimit_config *saved = vm_config_rate_of(&vm->cfg, a->device, a->rates[i].name);
		throttle_set(t[i], &a->rates[i].cfg);
		/* GET /vm and snapshots show the limits in force. */
		if (saved)
			*saved = a->rates[i].cfg;
	}
	answer(a, 204, NULL);
}

/* --- the outgoing migration --- */

static bool migration_running(const struct vm_actions *acts)
{
	struct migration_progress p;

	if (acts->migration == NULL)
		return false;
	migrate_progress(acts->migration, &p);
	return p.state == MIGRATION_RUNNING;
}

/* GET /migration */
static json_object *migration_json(const struct migration_progress *p)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "state", json_object_new_string(migration_state_name(p->state)));
	if (p->state == MIGRATION_NONE)
		return o;
	json_object_object_add(o, "destination", json_object_new_string(p->destination));
	json_object_object_add(o, "rounds", json_object_new_int((int)p->rounds));
	json_object_object_add(o, "bytes_sent", json_object_new_int64((int64_t)p->bytes_sent));
	json_object_object_add(o, "pages_sent", json_object_new_int64((int64_t)p->pages_sent));
	json_object_object_add(o, "remaining_pages", json_object_new_int64((int64_t)p->remaining_pages));
	json_object_object_add(o, "total_ms", json_object_new_double(p->total_ms));
	if (p->state == MIGRATION_COMPLETED)
		json_object_object_add(o, "downtime_ms", json_object_new_double(p->downtime_ms));
	if (p->state == MIGRATION_FAILED)
		json_object_object_add(o, "error", json_object_new_string(p->error));
	return o;
}

static void finish(struct vm_action *a)
{
	pthread_mutex_lock(&a->lock);
	a->done = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

/* The answer to a request that waited for the migration's end. */
static void answer_migration_end(struct vm_action *a, const struct migration_progress *p)
{
	if (p->state == MIGRATION_COMPLETED)
		answer(a, 200, json_take(migration_json(p)));
	else
		answer(a, 500, vm_action_error_json("%s", p->error[0] ? p->error : "migration failed"));
}

/* The migration's thread, once its progress is final. */
static void migration_done(void *opaque, const struct migration_progress *p)
{
	struct vm_actions *acts = opaque;
	struct vm_action *a;

	pthread_mutex_lock(&acts->lock);
	a = acts->waiters;
	acts->waiters = NULL;
	pthread_mutex_unlock(&acts->lock);
	while (a) {
		struct vm_action *next = a->next;
		answer_migration_end(a, p);
		finish(a);
		a = next;
	}
}

/* PUT /migration/send; returns false when a waits for the migration's end. */
static bool do_migrate(struct vm_actions *acts, struct vm_action *a)
{
	struct migrate_send_params params = {
	    .destination = a->destination,
	    .downtime_ms = a->downtime_ms,
	    .done = migration_done,
	    .done_opaque = acts,
	};
	struct migration_progress p;
	struct err *e = NULL;
	bool answered = true;

	/* The last one has ended (migrations run one at a time). */
	migrate_free(acts->migration);
	acts->migration = NULL;
	if (migrate_send_start(acts->vm, &params, &acts->migration, &e) < 0) {
		/* EOPNOTSUPP: a device whose state cannot move (virtio-fs). */
		answer(a, err_code(e) == EOPNOTSUPP ? 409 : 500, vm_action_error_json("%s", e->msg));
		err_free(&e);
		return true;
	}
	if (!a->wait) {
		answer(a, 202, NULL);
		return true;
	}
	/* Under the lock, so that migration_done() either finds a or has
	 * already made the progress final. */
	pthread_mutex_lock(&acts->lock);
	migrate_progress(acts->migration, &p);
	if (p.state == MIGRATION_RUNNING) {
		a->next = acts->waiters;
		acts->waiters = a;
		answered = false;
	}
	pthread_mutex_unlock(&acts->lock);
	if (answered)
		answer_migration_end(a, &p);
	return answered;
}

/* VMM thread: carry a out; false when its answer comes later. */
static bool do_action(struct vm_actions *acts, struct vm_action *a)
{
	struct vm *vm = acts->vm;
	struct migration_progress progress = {.state = MIGRATION_NONE};

	if (migration_running(acts) && !action_rules[a->kind].while_migrating) {
		answer(a, 409,
		       vm_action_error_json("%s is not possible while a migration runs", vm_action_name(a->kind)));
		return true;
	}
	if (!vm_action_allowed(a->kind, vm->state)) {
		answer(a, 409,
		       vm_action_error_json("%s is not possible while the VM is %s", vm_action_name(a->kind),
					    vm_state_name(vm->state)));
		return true;
	}
	switch (a->kind) {
	case VM_ACTION_INFO:
		do_info(vm, a);
		return true;
	case VM_ACTION_PAUSE:
		if (vm_pause(vm) < 0)
			answer(a, 500, vm_action_error_json("pause failed"));
		else
			answer(a, 204, NULL);
		return true;
	case VM_ACTION_RESUME:
		if (vm_resume(vm) < 0)
			answer(a, 500, vm_action_error_json("resume failed"));
		else
			answer(a, 204, NULL);
		return true;
	case VM_ACTION_SHUTDOWN:
		power_button_press(vm);
		answer(a, 204, NULL);
		return true;
	case VM_ACTION_STOP:
		vm_request_exit(vm, VM_EXIT_STOPPED);
		answer(a, 204, NULL);
		return true;
	case VM_ACTION_METRICS:
		do_metrics(vm, a);
		return true;
	case VM_ACTION_MIGRATE:
		return do_migrate(acts, a);
	case VM_ACTION_MIGRATION_INFO:
		if (acts->migration)
			migrate_progress(acts->migration, &progress);
		answer(a, 200, json_take(migration_json(&progress)));
		return true;
	case VM_ACTION_SNAPSHOT_CREATE:
		do_snapshot_create(vm, a);
		return true;
	case VM_ACTION_SNAPSHOT_LOAD:
		do_snapshot_load(vm, a);
		return true;
	case VM_ACTION_BALLOON_SET:
	case VM_ACTION_BALLOON_STATS:
		do_balloon(vm, a);
		return true;
	case VM_ACTION_RATE_LIMITS:
		do_rate_limits(vm, a);
		return true;
	case VM_ACTION_RATE_LIMIT_SET:
		do_rate_limit_set(vm, a);
		return true;
	case VM_ACTION_AFFINITY_GET:
	case VM_ACTION_AFFINITY_SET:
		do_affinity(vm, a);
		return true;
	default:
		answer(a, 501, vm_action_error_json("%s is not implemented yet", vm_action_name(a->kind)));
		return true;
	}
}

static int action_on_vmm_thread(struct vm *vm, void *arg)
{
	struct action_call *call = arg;

	(void)vm;
	vm_action_execute(call->acts, call->a);
	return 0;
}

void vm_action_execute(struct vm_actions *acts, struct vm_action *a)
{
	if (do_action(acts, a))
		finish(a);
}

void vm_action_run(struct vm_actions *acts, struct vm_action *a)
{
	struct action_call call = {acts, a};

	if (vm_call(acts->vm, action_on_vmm_thread, &call) < 0) {
		answer(a, 503, vm_action_error_json("the VM has stopped"));
		return;
	}
	pthread_mutex_lock(&a->lock);
	while (!a->done)
		pthread_cond_wait(&a->cond, &a->lock);
	pthread_mutex_unlock(&a->lock);
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
	free(a->affinity);
	a->affinity = NULL;
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
}

int vm_actions_create(struct vm *vm, struct vm_actions **ret, struct err **e)
{
	struct vm_actions *acts = calloc(1, sizeof(*acts));

	if (acts == NULL)
		return err_set(e, ENOMEM, "vm actions");
	acts->vm = vm;
	pthread_mutex_init(&acts->lock, NULL);
	*ret = acts;
	return 0;
}

void vm_actions_destroy(struct vm_actions *acts)
{
	if (acts == NULL)
		return;
	/* Its end answers whoever waits for it. */
	migrate_free(acts->migration);
	pthread_mutex_destroy(&acts->lock);
	free(acts);
}
