/* The instance table and the lifecycle: load and reattach at start-up,
 * create, start, stop, kill, pause, resume, restart, delete, autostart. */
#include <errno.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "common/log.h"
#include "common/migration-address.h"
#include "common/strv.h"
#include "daemon/internal.h"
#include "daemon/shim.h"
#include "oci/util.h"

#define START_SHIM_TIMEOUT_S 30
#define STOP_TIMEOUT_DEFAULT_S 30
#define KILL_WAIT_S 10

const char *instance_type_name(enum instance_type t)
{
	return t == INSTANCE_VM ? "vm" : "container";
}

const char *instance_state_name(enum instance_state s)
{
	static const char *const names[] = {"stopped", "starting", "running", "paused", "stopping"};

	return names[s];
}

const struct backend *backend_of(const struct instance *inst)
{
	return inst->type == INSTANCE_VM ? &backend_vm : &backend_container;
}

char *instance_log_path(struct daemon *d, const char *name)
{
	char *p = NULL;

	return asprintf(&p, "%s/logs/%s.log", d->state_dir, name) < 0 ? NULL : p;
}

static char *run_dir_of(struct daemon *d, const char *name)
{
	char *p = NULL;

	return asprintf(&p, "%s/instances/%s", d->run_dir, name) < 0 ? NULL : p;
}

/* ---- the table ---- */

static void instance_free(struct instance *inst)
{
	console_free(inst->console);
	json_object_put(inst->def);
	pthread_cond_destroy(&inst->changed);
	free(inst->name);
	free(inst->run_dir);
	free(inst->api_socket);
	free(inst->cgroup);
	free(inst);
}

void instance_put(struct instance *inst)
{
	bool last;

	if (inst == NULL)
		return;
	pthread_mutex_lock(&inst->d->lock);
	last = --inst->refs == 0;
	pthread_mutex_unlock(&inst->d->lock);
	if (last)
		instance_free(inst);
}

static struct instance *find_locked(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->n_instances; i++)
		if (strcmp(d->instances[i]->name, name) == 0)
			return d->instances[i];
	return NULL;
}

struct instance *instance_get(struct daemon *d, const char *name)
{
	struct instance *inst;

	pthread_mutex_lock(&d->lock);
	inst = find_locked(d, name);
	if (inst)
		inst->refs++;
	pthread_mutex_unlock(&d->lock);
	return inst;
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct instance *const *)a)->name, (*(struct instance *const *)b)->name);
}

struct instance **instances_snapshot(struct daemon *d, size_t *n)
{
	struct instance **list;

	pthread_mutex_lock(&d->lock);
	list = calloc(d->n_instances + 1, sizeof(*list));
	*n = 0;
	if (list) {
		for (size_t i = 0; i < d->n_instances; i++) {
			list[i] = d->instances[i];
			list[i]->refs++;
		}
		*n = d->n_instances;
	}
	pthread_mutex_unlock(&d->lock);
	if (list)
		qsort(list, *n, sizeof(*list), by_name);
	return list;
}

void instances_put(struct instance **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		instance_put(list[i]);
	free(list);
}

static int table_add_locked(struct daemon *d, struct instance *inst)
{
	if (d->n_instances == d->cap_instances) {
		size_t cap = d->cap_instances ? d->cap_instances * 2 : 64;
		struct instance **n = realloc(d->instances, cap * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		d->instances = n;
		d->cap_instances = cap;
	}
	d->instances[d->n_instances++] = inst;
	inst->refs++;
	return 0;
}

static void table_remove_locked(struct daemon *d, struct instance *inst)
{
	for (size_t i = 0; i < d->n_instances; i++)
		if (d->instances[i] == inst) {
			d->instances[i] = d->instances[--d->n_instances];
			inst->refs--;
			return;
		}
}

json_object *json_copy(json_object *o)
{
	json_object *copy = NULL;

	if (o == NULL || json_object_deep_copy(o, &copy, NULL) < 0)
		return NULL;
	return copy;
}

static struct instance *instance_new(struct daemon *d, const char *name, enum instance_type type, json_object *def)
{
	struct instance *inst = calloc(1, sizeof(*inst));
	pthread_condattr_t ca;

	if (inst == NULL)
		return NULL;
	inst->d = d;
	inst->name = strdup(name);
	inst->type = type;
	inst->def = def;
	inst->shim_pidfd = -1;
	inst->run_dir = run_dir_of(d, name);
	if (type == INSTANCE_VM)
		asprintf(&inst->api_socket, "%s/api.sock", inst->run_dir);
	else
		asprintf(&inst->cgroup, "/casulod/%s", name);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&inst->changed, &ca);
	pthread_condattr_destroy(&ca);
	inst->refs = 1;
	if (inst->name == NULL || inst->run_dir == NULL || (type == INSTANCE_VM ? !inst->api_socket : !inst->cgroup)) {
		inst->def = NULL;
		instance_free(inst);
		return NULL;
	}
	return inst;
}

/* Wait (d->lock held) until inst has no shim, at most seconds. */
/* Until record_end() has cleaned up after the last run (d->lock held). */
static void wait_end_recorded_locked(struct instance *inst)
{
	while (inst->recording_end)
		pthread_cond_wait(&inst->changed, &inst->d->lock);
}

static bool wait_stopped_locked(struct instance *inst, double seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)seconds;
	ts.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (inst->shim_pidfd >= 0 || inst->recording_end)
		if (pthread_cond_timedwait(&inst->changed, &inst->d->lock, &ts) == ETIMEDOUT)
			break;
	return inst->shim_pidfd < 0 && !inst->recording_end;
}

static bool wait_stopped(struct instance *inst, double seconds)
{
	bool ok;

	pthread_mutex_lock(&inst->d->lock);
	ok = wait_stopped_locked(inst, seconds);
	pthread_mutex_unlock(&inst->d->lock);
	return ok;
}

static void set_state(struct instance *inst, enum instance_state s)
{
	pthread_mutex_lock(&inst->d->lock);
	inst->state = s;
	pthread_cond_broadcast(&inst->changed);
	pthread_mutex_unlock(&inst->d->lock);
}

/* ---- JSON ---- */

static json_object *num_or_null(double v)
{
	return v > 0 ? json_object_new_double(v) : NULL;
}

json_object *instance_to_json(struct instance *inst)
{
	json_object *o = json_object_new_object(), *a = json_object_new_object();

	pthread_mutex_lock(&inst->d->lock);
	json_object_object_add(o, "name", json_object_new_string(inst->name));
	json_object_object_add(o, "type", json_object_new_string(instance_type_name(inst->type)));
	json_object_object_add(o, "state", json_object_new_string(instance_state_name(inst->state)));
	/* A copy: the answer is freed on another thread than the next one's. */
	json_object_object_add(o, "definition", json_copy(inst->def));
	json_object_object_add(a, "enabled", json_object_new_boolean(inst->autostart.enabled));
	json_object_object_add(a, "order", json_object_new_int(inst->autostart.order));
	json_object_object_add(a, "delay_s", json_object_new_double(inst->autostart.delay_s));
	json_object_object_add(o, "autostart", a);
	json_object_object_add(o, "created_at", json_object_new_double(inst->created_at));
	json_object_object_add(o, "started_at", num_or_null(inst->started_at));
	json_object_object_add(o, "stopped_at", num_or_null(inst->stopped_at));
	json_object_object_add(
	    o, "exit_status", inst->has_exit && inst->exit_status >= 0 ? json_object_new_int(inst->exit_status) : NULL);
	json_object_object_add(o, "exit_reason", inst->has_exit ? json_object_new_string(inst->exit_reason) : NULL);
	json_object_object_add(o, "pid", inst->shim_pidfd >= 0 ? json_object_new_int(inst->workload_pid) : NULL);
	json_object_object_add(o, "operation", inst->op ? json_object_new_string(op_id(inst->op)) : NULL);
	if (inst->usage.valid && inst->shim_pidfd >= 0) {
		json_object *u = json_object_new_object();
		json_object_object_add(u, "cpu_seconds", json_object_new_double((double)inst->usage.cpu_ns / 1e9));
		json_object_object_add(u, "cpu_percent", json_object_new_double(inst->usage.cpu_percent));
		json_object_object_add(u, "memory_bytes", json_object_new_int64((int64_t)inst->usage.memory_bytes));
		if (inst->usage.has_io) {
			json_object_object_add(u, "disk_read_bytes",
					       json_object_new_int64((int64_t)inst->usage.disk_read_bytes));
			json_object_object_add(u, "disk_write_bytes",
					       json_object_new_int64((int64_t)inst->usage.disk_write_bytes));
			json_object_object_add(u, "net_rx_bytes",
					       json_object_new_int64((int64_t)inst->usage.net_rx_bytes));
			json_object_object_add(u, "net_tx_bytes",
					       json_object_new_int64((int64_t)inst->usage.net_tx_bytes));
		}
		json_object_object_add(o, "usage", u);
	}
	pthread_mutex_unlock(&inst->d->lock);
	return o;
}

/* ---- the end of a run ---- */

/* Record how inst ended (status < 0: unknown) and clean up after it. */
static void record_end(struct instance *inst, int status, const char *reason)
{
	struct daemon *d = inst->d;
	struct err *e = NULL;
	double now = proc_now();

	pthread_mutex_lock(&d->lock);
	inst->recording_end = true;
	if (inst->shim_pidfd >= 0)
		close(inst->shim_pidfd);
	inst->shim_pidfd = -1;
	inst->shim_pid = inst->workload_pid = 0;
	inst->has_exit = true;
	inst->exit_status = status;
	snprintf(inst->exit_reason, sizeof(inst->exit_reason), "%s", reason);
	inst->state = STATE_STOPPED;
	inst->stopped_at = now;
	inst->usage.valid = false;
	inst->prev_sample = 0;
	inst->ending_requested = inst->killed = false;
	pthread_mutex_unlock(&d->lock);
	if (store_db_set_exit(d->db, inst->name, status, reason, now, &e) < 0 && err_code(e) != ENOENT)
		log_warn("%s", e->msg);
	err_free(&e);
	backend_of(inst)->cleanup(inst);
	rm_rf_dir(inst->run_dir);
	pthread_mutex_lock(&d->lock);
	inst->recording_end = false;
	pthread_cond_broadcast(&inst->changed);
	pthread_mutex_unlock(&d->lock);
	event_lifecycle(d, "instance-stopped", inst);
}

void instance_ended(struct instance *inst)
{
	const char *reason;
	int status = -1;
	bool killed;

	pthread_mutex_lock(&inst->d->lock);
	killed = inst->killed;
	pthread_mutex_unlock(&inst->d->lock);
	if (shim_read_exit(inst->run_dir, &status) < 0) {
		reason = "supervisor-lost";
		status = -1;
	} else {
		reason = killed ? "killed" : "exited";
	}
	log_info("instance '%s' ended (%s, status %d)", inst->name, reason, status);
	record_end(inst, status, reason);
}

/* ---- start-up: load and reattach ---- */

static int kill_pid_checked(pid_t pid, uint64_t start)
{
	int fd = proc_pidfd_checked(pid, start), r = 0;

	if (fd < 0)
		return fd;
	if (syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Find the shim of inst again: 1 when it runs (watched from now on), 0
 * when nothing runs (an end that happened meanwhile is recorded). */
static int reattach(struct instance *inst, bool *lost)
{
	struct daemon *d = inst->d;
	struct shim_state st;
	struct stat sb;
	int r, fd, status;

	*lost = false;
	r = shim_read_state(inst->run_dir, &st);
	/* An exit file: it has ended, whether its shim is gone yet or not. */
	if (r == 0 && shim_read_exit(inst->run_dir, &status) < 0 && strcmp(st.boot_id, d->boot_id) == 0 &&
	    (fd = proc_pidfd_checked(st.shim_pid, st.shim_start)) >= 0) {
		pthread_mutex_lock(&d->lock);
		inst->shim_pidfd = fd;
		inst->shim_pid = st.shim_pid;
		inst->shim_start = st.shim_start;
		inst->workload_pid = st.workload_pid;
		inst->workload_start = st.workload_start;
		inst->state = STATE_RUNNING;
		pthread_mutex_unlock(&d->lock);
		loop_watch(d->loop, inst);
		return 1;
	}
	if (stat(inst->run_dir, &sb) == 0) {
		/* It ended while casulod was away, or its start was cut short
		 * before the shim recorded itself: what that start left runs
		 * unrecorded, and goes (a start is whole or nothing). */
		if (r != 0 && proc_kill_mentioning(inst->run_dir) > 0)
			log_info("instance '%s': killed what a start cut short left", inst->name);
		if (shim_read_exit(inst->run_dir, &status) == 0) {
			record_end(inst, status, "exited");
		} else {
			/* The shim died without a word: what it ran is killed
			 * (PR_SET_PDEATHSIG did, unless the shim had not set it). */
			if (r == 0 && strcmp(st.boot_id, d->boot_id) == 0)
				kill_pid_checked(st.workload_pid, st.workload_start);
			record_end(inst, -1,
				   r == 0 && strcmp(st.boot_id, d->boot_id) != 0 ? "host-rebooted" : "supervisor-lost");
		}
		*lost = true;
	} else if (inst->started_at > inst->stopped_at) {
		/* It ran when the host went down: the run directory went with it. */
		record_end(inst, -1, "host-rebooted");
		*lost = true;
	}
	return 0;
}

/* Leftovers of what no definition names any more: a create or delete
 * interrupted by a kill -9. */
static void sweep(struct daemon *d, const char *dir, bool running)
{
	DIR *dd = opendir(dir);
	struct dirent *de;

	while (dd && (de = readdir(dd))) {
		char *path = NULL, name[256];
		struct instance *inst;
		if (de->d_name[0] == '.')
			continue;
		snprintf(name, sizeof(name), "%s", de->d_name);
		/* STATE/instances/NAME.tmp-X: a create killed midway. */
		if (!running && strchr(name, '.'))
			*strchr(name, '.') = '\0';
		inst = instance_get(d, name);
		if (inst && strcmp(name, de->d_name) == 0) {
			instance_put(inst);
			continue;
		}
		instance_put(inst);
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
			continue;
		if (running) {
			struct shim_state st;
			if (shim_read_state(path, &st) == 0 && strcmp(st.boot_id, d->boot_id) == 0) {
				kill_pid_checked(st.shim_pid, st.shim_start);
				kill_pid_checked(st.workload_pid, st.workload_start);
			}
			proc_kill_mentioning(path);
		} else {
			container_remove_files(d, de->d_name);
		}
		log_info("removing '%s', which no definition names", path);
		rm_rf_dir(path);
		free(path);
	}
	if (dd)
		closedir(dd);
}

static int type_of(const char *s, enum instance_type *t)
{
	if (strcmp(s, "vm") == 0)
		*t = INSTANCE_VM;
	else if (strcmp(s, "container") == 0)
		*t = INSTANCE_CONTAINER;
	else
		return -EINVAL;
	return 0;
}

int instances_load(struct daemon *d, struct err **e)
{
	struct store_row *rows = NULL;
	size_t n = 0;
	char *dir = NULL;
	int r;

	if ((r = store_db_list(d->db, &rows, &n, e)) < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		json_object *def = json_tokener_parse(rows[i].spec);
		enum instance_type t;
		struct instance *inst;
		if (def == NULL || type_of(rows[i].type, &t) < 0 ||
		    (inst = instance_new(d, rows[i].name, t, def)) == NULL) {
			log_error("instance '%s': its definition cannot be read; skipped", rows[i].name);
			json_object_put(def);
			continue;
		}
		inst->autostart =
		    (struct autostart){rows[i].autostart, rows[i].autostart_order, rows[i].autostart_delay};
		inst->created_at = rows[i].created_at;
		inst->started_at = rows[i].started_at;
		inst->stopped_at = rows[i].stopped_at;
		inst->has_exit = rows[i].has_exit;
		inst->exit_status = rows[i].exit_status;
		snprintf(inst->exit_reason, sizeof(inst->exit_reason), "%s",
			 rows[i].exit_reason ? rows[i].exit_reason : "");
		pthread_mutex_lock(&d->lock);
		table_add_locked(d, inst);
		pthread_mutex_unlock(&d->lock);
		instance_put(inst);
	}
	for (size_t i = 0; i < n; i++)
		store_row_clear(&rows[i]);
	free(rows);

	/* Reattach: what still runs is watched again, what ended is recorded. */
	{
		struct instance **list;
		size_t count;
		list = instances_snapshot(d, &count);
		for (size_t i = 0; i < count; i++) {
			bool lost;
			if (reattach(list[i], &lost) > 0) {
				d->reattach.found++;
				event_lifecycle(d, "instance-reattached", list[i]);
			} else if (lost) {
				d->reattach.lost++;
			}
		}
		instances_put(list, count);
	}
	if (asprintf(&dir, "%s/instances", d->run_dir) >= 0)
		sweep(d, dir, true);
	free(dir);
	if (asprintf(&dir, "%s/instances", d->state_dir) >= 0)
		sweep(d, dir, false);
	free(dir);
	return 0;
}

/* ---- operations on instances ---- */

struct action_arg {
	struct instance *inst;
	int timeout_s;
	char *text; /* snapshot path, migration destination */
	int number;
	bool start_after; /* create: then start */
	json_object *body;
};

static void action_arg_free(void *p)
{
	struct action_arg *a = p;

	instance_put(a->inst);
	free(a->text);
	json_object_put(a->body);
	free(a);
}

/* The operation is done with the instance. */
static void release_op(struct instance *inst, struct op *op)
{
	pthread_mutex_lock(&inst->d->lock);
	if (inst->op == op) {
		inst->op = NULL;
		inst->op_epoch++;
		op_put(op);
	}
	pthread_mutex_unlock(&inst->d->lock);
}

uint64_t instance_op_epoch(struct instance *inst)
{
	uint64_t epoch;

	pthread_mutex_lock(&inst->d->lock);
	epoch = inst->op_epoch;
	pthread_mutex_unlock(&inst->d->lock);
	return epoch;
}

void instance_workload_state(struct instance *inst, uint64_t epoch, const char *state)
{
	pthread_mutex_lock(&inst->d->lock);
	if (inst->op == NULL && inst->op_epoch == epoch) {
		if (inst->state == STATE_RUNNING && strcmp(state, "paused") == 0)
			inst->state = STATE_PAUSED;
		else if (inst->state == STATE_PAUSED && strcmp(state, "running") == 0)
			inst->state = STATE_RUNNING;
	}
	pthread_mutex_unlock(&inst->d->lock);
}

static int stop_timeout_of(struct instance *inst)
{
	json_object *v;

	if (json_object_object_get_ex(inst->def, "stop_timeout_s", &v))
		return json_object_get_int(v);
	return STOP_TIMEOUT_DEFAULT_S;
}

/* The last lines of the console log, for an error message. */
static void log_tail(struct instance *inst, char *out, size_t size)
{
	char *path = instance_log_path(inst->d, inst->name), buf[2048];
	FILE *f = path ? fopen(path, "re") : NULL;
	size_t n = 0;
	char *p;

	out[0] = '\0';
	free(path);
	if (f == NULL)
		return;
	if (fseek(f, -(long)(sizeof(buf) - 1), SEEK_END) < 0)
		fseek(f, 0, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	p = strrchr(buf, '\n');
	snprintf(out, size, "%s", p ? p + 1 : buf);
}

static int do_start(struct op *op, struct instance *inst, struct err **e)
{
	struct daemon *d = inst->d;
	const struct backend *b = backend_of(inst);
	struct shim_opts so = {.log_max = SHIM_LOG_MAX_DEFAULT, .ready_fd = -1};
	char **argv = NULL, *ot = NULL, *oo = NULL, *se = NULL, *log = NULL, tail[2100];
	struct shim_state st;
	pid_t shim_pid = 0;
	int r, fd = -1;

	pthread_mutex_lock(&d->lock);
	wait_end_recorded_locked(inst);
	if (inst->state != STATE_STOPPED) {
		pthread_mutex_unlock(&d->lock);
		return 0; /* restart after a stop that found it running again: nothing to do */
	}
	inst->state = STATE_STARTING;
	pthread_mutex_unlock(&d->lock);
	event_lifecycle(d, "instance-starting", inst);
	op_progress(op, 10, "checking the definition", 0, 0);
	r = b->check(d, inst->name, inst->def, e);
	if (r == 0) {
		rm_rf_dir(inst->run_dir);
		if (mkdir(inst->run_dir, 0700) < 0)
			r = err_set(e, errno, "instance '%s': mkdir %s", inst->name, inst->run_dir);
	}
	if (r == 0)
		r = b->prepare(inst, &argv, &ot, &oo, &se, e);
	if (r == 0 && (log = instance_log_path(d, inst->name)) == NULL)
		r = err_set(e, ENOMEM, "instance '%s'", inst->name);
	if (r == 0) {
		so.dir = inst->run_dir;
		so.log = log;
		so.overlay_target = ot;
		so.overlay_options = oo;
		so.stderr_file = se;
		so.argv = argv;
		op_progress(op, 30, "starting", 0, 0);
		r = shim_spawn(d->shim, &so, START_SHIM_TIMEOUT_S, &shim_pid, e);
		if (r < 0)
			err_wrap(e, "instance '%s'", inst->name);
	}
	strv_free(argv);
	free(ot);
	free(oo);
	free(se);
	free(log);
	if (r == 0 && (shim_read_state(inst->run_dir, &st) < 0 || st.shim_pid != shim_pid ||
		       (fd = proc_pidfd_checked(st.shim_pid, st.shim_start)) < 0)) {
		/* It ran and ended already: its status tells why. */
		int status = -1;
		shim_read_exit(inst->run_dir, &status);
		log_tail(inst, tail, sizeof(tail));
		r = err_setx(e, EIO, "instance '%s': ended as it started (status %d)%s%s", inst->name, status,
			     tail[0] ? ": " : "", tail);
	}
	if (r < 0) {
		record_end(inst, -1, "failed-to-start");
		return r;
	}
	pthread_mutex_lock(&d->lock);
	inst->shim_pidfd = fd;
	inst->shim_pid = st.shim_pid;
	inst->shim_start = st.shim_start;
	inst->workload_pid = st.workload_pid;
	inst->workload_start = st.workload_start;
	inst->started_at = proc_now();
	pthread_mutex_unlock(&d->lock);
	loop_watch(d->loop, inst);
	op_progress(op, 60, "waiting for it to run", 0, 0);
	r = b->wait_ready(inst, e);
	if (r < 0) {
		/* It will not serve: it goes, and the error says why. */
		b->kill(inst, NULL);
		wait_stopped(inst, KILL_WAIT_S);
		log_tail(inst, tail, sizeof(tail));
		if (tail[0] && e && *e) {
			char *msg = strdup((*e)->msg);
			r = err_setx(e, err_code(*e), "%s; its last output: %s", msg ? msg : "", tail);
			free(msg);
		}
		return r;
	}
	pthread_mutex_lock(&d->lock);
	if (inst->shim_pidfd >= 0 && inst->state == STATE_STARTING)
		inst->state = STATE_RUNNING;
	r = inst->state == STATE_RUNNING ? 0 : -1;
	pthread_cond_broadcast(&inst->changed);
	pthread_mutex_unlock(&d->lock);
	if (r < 0) {
		log_tail(inst, tail, sizeof(tail));
		return err_setx(e, EIO, "instance '%s': ended as it started%s%s", inst->name, tail[0] ? ": " : "",
				tail);
	}
	{
		struct err *e2 = NULL;
		if (store_db_set_started(d->db, inst->name, inst->started_at, &e2) < 0)
			log_warn("%s", e2->msg);
		err_free(&e2);
	}
	event_lifecycle(d, "instance-started", inst);
	return 0;
}

/* Stop: gently, then at once after timeout_s, then SIGKILL. */
static int do_stop(struct op *op, struct instance *inst, int timeout_s, struct err **e)
{
	struct daemon *d = inst->d;
	const struct backend *b = backend_of(inst);
	struct err *ignored = NULL;

	pthread_mutex_lock(&d->lock);
	if (inst->shim_pidfd < 0) {
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	inst->state = STATE_STOPPING;
	inst->ending_requested = true;
	pthread_mutex_unlock(&d->lock);
	event_lifecycle(d, "instance-stopping", inst);
	op_progress(op, 10, "asking it to stop", 0, 0);
	if (b->stop_gently(inst, &ignored) < 0) {
		log_info("%s", ignored->msg);
		err_free(&ignored);
	}
	if (wait_stopped(inst, timeout_s))
		return 0;
	op_progress(op, 60, "stopping it at once", 0, 0);
	if (b->stop_now(inst, &ignored) < 0) {
		log_info("%s", ignored->msg);
		err_free(&ignored);
	}
	if (wait_stopped(inst, KILL_WAIT_S))
		return 0;
	op_progress(op, 80, "killing it", 0, 0);
	pthread_mutex_lock(&d->lock);
	inst->killed = true;
	pthread_mutex_unlock(&d->lock);
	if (b->kill(inst, e) < 0)
		return -err_code(*e);
	if (wait_stopped(inst, KILL_WAIT_S))
		return 0;
	return err_setx(e, ETIMEDOUT, "instance '%s': still running after SIGKILL", inst->name);
}

static int do_kill(struct instance *inst, struct err **e)
{
	pthread_mutex_lock(&inst->d->lock);
	if (inst->shim_pidfd < 0) {
		wait_end_recorded_locked(inst);
		pthread_mutex_unlock(&inst->d->lock);
		return 0;
	}
	inst->ending_requested = inst->killed = true;
	inst->state = STATE_STOPPING;
	pthread_mutex_unlock(&inst->d->lock);
	if (backend_of(inst)->kill(inst, e) < 0)
		return -err_code(*e);
	if (wait_stopped(inst, KILL_WAIT_S))
		return 0;
	return err_setx(e, ETIMEDOUT, "instance '%s': still running %d s after SIGKILL", inst->name, KILL_WAIT_S);
}

static int do_pause(struct instance *inst, bool pause, struct err **e)
{
	int r = backend_of(inst)->pause(inst, pause, e);

	if (r < 0)
		return r;
	set_state(inst, pause ? STATE_PAUSED : STATE_RUNNING);
	event_lifecycle(inst->d, pause ? "instance-paused" : "instance-resumed", inst);
	return 0;
}

static int delete_now(struct instance *inst, struct err **e);

static int run_action(struct op *op, void *p, struct err **e)
{
	struct action_arg *a = p;
	const char *type = a->text ? a->text : "";
	struct instance *inst = a->inst;
	int r;

	if (strcmp(type, "start") == 0)
		r = do_start(op, inst, e);
	else if (strcmp(type, "stop") == 0)
		r = do_stop(op, inst, a->timeout_s, e);
	else if (strcmp(type, "restart") == 0)
		r = do_stop(op, inst, a->timeout_s, e) < 0 ? -err_code(*e) : do_start(op, inst, e);
	else if (strcmp(type, "kill") == 0)
		r = do_kill(inst, e);
	else if (strcmp(type, "pause") == 0 || strcmp(type, "resume") == 0)
		r = do_pause(inst, strcmp(type, "pause") == 0, e);
	else if (strcmp(type, "delete") == 0) {
		r = do_kill(inst, e);
		release_op(inst, op);
		if (r == 0)
			return delete_now(inst, e);
	} else
		r = err_setx(e, EINVAL, "unknown action '%s'", type);
	release_op(inst, op);
	if (r == 0)
		op_set_result(op, instance_to_json(inst));
	return r;
}

/* Take inst for a new operation of type; -EBUSY/-EINVAL with a message
 * when its state or another operation does not allow it. */
static int begin_op(struct instance *inst, const char *type, op_fn fn, struct action_arg *a, struct op **ret,
		    struct err **e)
{
	struct daemon *d = inst->d;
	enum instance_state s;
	bool kill = strcmp(type, "kill") == 0, ok;
	struct op *busy, *op;

	pthread_mutex_lock(&d->lock);
	s = inst->state;
	busy = inst->op;
	if (inst->deleted) {
		pthread_mutex_unlock(&d->lock);
		return err_setx(e, ENOENT, "instance '%s' does not exist", inst->name);
	}
	if (busy && !kill) {
		char id[17];
		snprintf(id, sizeof(id), "%s", op_id(busy));
		pthread_mutex_unlock(&d->lock);
		return err_setx(e, EBUSY, "instance '%s' is busy: operation %s is at work on it", inst->name, id);
	}
	if (strcmp(type, "start") == 0)
		ok = s == STATE_STOPPED;
	else if (strcmp(type, "stop") == 0)
		ok = s == STATE_RUNNING || s == STATE_PAUSED;
	else if (strcmp(type, "pause") == 0 || strcmp(type, "snapshot") == 0 || strcmp(type, "migrate") == 0)
		ok = s == STATE_RUNNING;
	else if (strcmp(type, "resume") == 0)
		ok = s == STATE_PAUSED;
	else if (kill)
		ok = inst->shim_pidfd >= 0;
	else
		ok = true; /* restart, delete */
	if (!ok) {
		pthread_mutex_unlock(&d->lock);
		return err_setx(e, EBUSY, "instance '%s' is %s: it cannot %s", inst->name, instance_state_name(s),
				type);
	}
	op = op_create(d, type, inst->name);
	if (op == NULL) {
		pthread_mutex_unlock(&d->lock);
		action_arg_free(a);
		return err_set(e, ENOMEM, "instance '%s': operation", inst->name);
	}
	inst->refs++;
	a->inst = inst;
	if (!kill) {
		inst->op = op_ref(op);
		inst->op_epoch++;
	}
	pthread_mutex_unlock(&d->lock);
	op_run(op, fn, a, action_arg_free);
	*ret = op;
	return 0;
}

static struct action_arg *new_arg(const char *type)
{
	struct action_arg *a = calloc(1, sizeof(*a));

	if (a && (a->text = strdup(type)) == NULL) {
		free(a);
		a = NULL;
	}
	return a;
}

int instance_action(struct instance *inst, const char *action, int timeout_s, struct op **op, struct err **e)
{
	struct action_arg *a = new_arg(action);

	if (a == NULL)
		return err_set(e, ENOMEM, "instance '%s'", inst->name);
	a->timeout_s = timeout_s >= 0 ? timeout_s : stop_timeout_of(inst);
	return begin_op(inst, action, run_action, a, op, e);
}

/* ---- delete ---- */

static int delete_now(struct instance *inst, struct err **e)
{
	struct daemon *d = inst->d;
	char *log, *old = NULL;
	int r;

	pthread_mutex_lock(&d->lock);
	wait_end_recorded_locked(inst);
	if (inst->shim_pidfd >= 0 || inst->op != NULL || inst->deleted) {
		bool gone = inst->deleted;
		pthread_mutex_unlock(&d->lock);
		if (gone)
			return err_setx(e, ENOENT, "instance '%s' does not exist", inst->name);
		return err_setx(e, EBUSY, "instance '%s' is %s: stop it first (or delete with force)", inst->name,
				inst->op ? "busy" : "running");
	}
	inst->deleted = true;
	pthread_mutex_unlock(&d->lock);
	/* The definition goes first, in one transaction: what is left after
	 * a kill -9 here is swept at the next start. */
	r = store_db_delete(d->db, inst->name, e);
	if (r < 0 && r != -ENOENT) {
		pthread_mutex_lock(&d->lock);
		inst->deleted = false;
		pthread_mutex_unlock(&d->lock);
		return r;
	}
	err_free(e);
	pthread_mutex_lock(&d->lock);
	table_remove_locked(d, inst);
	pthread_mutex_unlock(&d->lock);
	if (inst->type == INSTANCE_CONTAINER)
		container_remove_files(d, inst->name);
	rm_rf_dir(inst->run_dir);
	log = instance_log_path(d, inst->name);
	if (log && asprintf(&old, "%s.1", log) >= 0)
		unlink(old);
	if (log)
		unlink(log);
	free(log);
	free(old);
	event_lifecycle(d, "instance-deleted", inst);
	return 0;
}

int instance_delete(struct instance *inst, bool force, struct op **op, struct err **e)
{
	bool running;

	pthread_mutex_lock(&inst->d->lock);
	running = inst->shim_pidfd >= 0 || inst->op != NULL;
	pthread_mutex_unlock(&inst->d->lock);
	if (!running || !force) {
		int r = delete_now(inst, e);
		return r;
	}
	{
		struct action_arg *a = new_arg("delete");
		int r;
		if (a == NULL)
			return err_set(e, ENOMEM, "instance '%s'", inst->name);
		r = begin_op(inst, "delete", run_action, a, op, e);
		return r < 0 ? r : 1;
	}
}

/* ---- autostart ---- */

static void autostart_from_json(json_object *j, struct autostart *a)
{
	json_object *v;

	if (json_object_object_get_ex(j, "enabled", &v))
		a->enabled = json_object_get_boolean(v);
	if (json_object_object_get_ex(j, "order", &v))
		a->order = json_object_get_int(v);
	if (json_object_object_get_ex(j, "delay_s", &v))
		a->delay_s = json_object_get_double(v);
}

int instance_set_autostart(struct instance *inst, json_object *j, struct err **e)
{
	struct autostart a;
	int r;

	pthread_mutex_lock(&inst->d->lock);
	a = inst->autostart;
	pthread_mutex_unlock(&inst->d->lock);
	autostart_from_json(j, &a);
	if ((r = store_db_set_autostart(inst->d->db, inst->name, a.enabled, a.order, a.delay_s, e)) < 0)
		return r;
	pthread_mutex_lock(&inst->d->lock);
	inst->autostart = a;
	pthread_mutex_unlock(&inst->d->lock);
	event_lifecycle(inst->d, "instance-updated", inst);
	return 0;
}

static int by_autostart(const void *pa, const void *pb)
{
	const struct instance *a = *(struct instance *const *)pa, *b = *(struct instance *const *)pb;

	if (a->autostart.order != b->autostart.order)
		return a->autostart.order < b->autostart.order ? -1 : 1;
	return strcmp(a->name, b->name);
}

void instances_autostart(struct daemon *d)
{
	struct instance **list;
	size_t n;

	list = instances_snapshot(d, &n);
	qsort(list, n, sizeof(*list), by_autostart);
	for (size_t i = 0; i < n && !atomic_load(&d->stopping); i++) {
		struct instance *inst = list[i];
		struct err *e = NULL;
		struct op *op = NULL;
		if (!inst->autostart.enabled || inst->state != STATE_STOPPED)
			continue;
		log_info("autostart: starting '%s' (order %d)", inst->name, inst->autostart.order);
		if (instance_action(inst, "start", -1, &op, &e) < 0) {
			log_warn("autostart: %s", e->msg);
			err_free(&e);
			continue;
		}
		/* The next waits for this start to end, then the delay. */
		while (op_status(op) == OP_RUNNING && !atomic_load(&d->stopping))
			usleep(20 * 1000);
		op_put(op);
		for (double end = proc_monotonic() + inst->autostart.delay_s;
		     proc_monotonic() < end && !atomic_load(&d->stopping);)
			usleep(20 * 1000);
	}
	instances_put(list, n);
}

/* ---- create ---- */

static int reserve_name(struct daemon *d, const char *name, struct err **e)
{
	int r = 0;

	pthread_mutex_lock(&d->lock);
	if (find_locked(d, name))
		r = err_setx(e, EEXIST, "instance '%s' exists", name);
	pthread_mutex_unlock(&d->lock);
	return r;
}

/* Write the definition and add the instance: the one step that makes it
 * exist. */
static int define(struct daemon *d, const char *name, enum instance_type type, json_object *def, json_object *autostart,
		  struct instance **ret, struct err **e)
{
	struct store_row row = {0};
	struct instance *inst;
	int r;

	json_object *own = json_copy(def);

	inst = own ? instance_new(d, name, type, own) : NULL;
	if (inst == NULL) {
		json_object_put(own);
		return err_set(e, ENOMEM, "instance '%s'", name);
	}
	if (autostart)
		autostart_from_json(autostart, &inst->autostart);
	inst->created_at = proc_now();
	row.name = inst->name;
	row.type = (char *)instance_type_name(type);
	row.spec = (char *)json_object_to_json_string_ext(def, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	row.autostart = inst->autostart.enabled;
	row.autostart_order = inst->autostart.order;
	row.autostart_delay = inst->autostart.delay_s;
	row.created_at = inst->created_at;
	pthread_mutex_lock(&d->lock);
	if (find_locked(d, name)) {
		pthread_mutex_unlock(&d->lock);
		instance_put(inst);
		return err_setx(e, EEXIST, "instance '%s' exists", name);
	}
	/* In the table before the transaction, so that no second create
	 * of the name races it; out again if the write fails. */
	table_add_locked(d, inst);
	pthread_mutex_unlock(&d->lock);
	r = store_db_insert(d->db, &row, e);
	if (r < 0) {
		pthread_mutex_lock(&d->lock);
		table_remove_locked(d, inst);
		pthread_mutex_unlock(&d->lock);
		instance_put(inst);
		return r;
	}
	event_lifecycle(d, "instance-created", inst);
	*ret = inst;
	return 0;
}

/* The definition kept: the body's spec of its type and stop_timeout_s. */
static json_object *definition_of(json_object *body, const char *type)
{
	json_object *def = json_object_new_object(), *v;

	if (json_object_object_get_ex(body, type, &v))
		json_object_object_add(def, type, json_object_get(v));
	else
		json_object_object_add(def, type, json_object_new_object());
	if (json_object_object_get_ex(body, "stop_timeout_s", &v))
		json_object_object_add(def, "stop_timeout_s", json_object_get(v));
	return def;
}

static int create_image_op(struct op *op, void *p, struct err **e)
{
	struct action_arg *a = p;
	struct daemon *d = op_daemon(op);
	json_object *name, *type, *autostart = NULL, *spec, *def;
	struct instance *inst = NULL;
	int r;

	json_object_object_get_ex(a->body, "name", &name);
	json_object_object_get_ex(a->body, "type", &type);
	json_object_object_get_ex(a->body, "autostart", &autostart);
	def = definition_of(a->body, "container");
	json_object_object_get_ex(def, "container", &spec);
	r = container_prepare_image(d, json_object_get_string(name), spec, op, e);
	if (r == 0)
		r = define(d, json_object_get_string(name), INSTANCE_CONTAINER, def, autostart, &inst, e);
	else
		json_object_put(def);
	if (r < 0) {
		if (r != -EEXIST)
			container_remove_files(d, json_object_get_string(name));
		return r;
	}
	if (a->start_after) {
		struct op *start = NULL;
		r = instance_action(inst, "start", -1, &start, e);
		if (r == 0) {
			while (op_status(start) == OP_RUNNING)
				usleep(10 * 1000);
			if (op_status(start) == OP_FAILURE) {
				json_object *j = op_to_json(start), *msg;
				r = err_setx(e, EIO, "%s",
					     json_object_object_get_ex(j, "error", &msg) ? json_object_get_string(msg)
											 : "start failed");
				json_object_put(j);
			}
			op_put(start);
		}
	}
	op_set_result(op, instance_to_json(inst));
	instance_put(inst);
	return r;
}

int instance_create(struct daemon *d, json_object *body, struct instance **ret, struct op **retop, struct err **e)
{
	json_object *name_j, *type_j, *spec = NULL, *other = NULL, *autostart = NULL, *v;
	const char *name, *type;
	bool start = false, image;
	enum instance_type t = INSTANCE_VM;
	json_object *def;
	int r;

	*ret = NULL;
	*retop = NULL;
	json_object_object_get_ex(body, "name", &name_j);
	json_object_object_get_ex(body, "type", &type_j);
	name = json_object_get_string(name_j);
	type = json_object_get_string(type_j);
	type_of(type, &t);
	json_object_object_get_ex(body, type, &spec);
	json_object_object_get_ex(body, t == INSTANCE_VM ? "container" : "vm", &other);
	json_object_object_get_ex(body, "autostart", &autostart);
	if (json_object_object_get_ex(body, "start", &v))
		start = json_object_get_boolean(v);
	if (other)
		return err_setx(e, EINVAL, "field '%s' does not go with type '%s'",
				t == INSTANCE_VM ? "container" : "vm", type);
	if (t == INSTANCE_CONTAINER) {
		json_object *img = NULL, *bundle = NULL;
		if (spec) {
			json_object_object_get_ex(spec, "image", &img);
			json_object_object_get_ex(spec, "bundle", &bundle);
		}
		if ((img == NULL) == (bundle == NULL))
			return err_setx(e, EINVAL, "field 'container' needs exactly one of 'image' and 'bundle'");
	}
	if ((r = reserve_name(d, name, e)) < 0)
		return r;
	def = definition_of(body, type);
	image = t == INSTANCE_CONTAINER && spec && json_object_object_get_ex(spec, "image", &v);
	if (image) {
		struct action_arg *a = calloc(1, sizeof(*a));
		json_object_put(def);
		if (a == NULL || (a->body = json_copy(body)) == NULL) { /* the operation's thread's own */
			free(a);
			return err_set(e, ENOMEM, "instance '%s'", name);
		}
		a->start_after = start;
		*retop = op_start(d, "create", name, create_image_op, a, action_arg_free);
		return *retop ? 1 : err_set(e, ENOMEM, "instance '%s': operation", name);
	}
	{
		json_object *s;
		json_object_object_get_ex(def, type, &s);
		r = (t == INSTANCE_VM ? &backend_vm : &backend_container)->check(d, NULL, def, e);
		if (r == 0 && t == INSTANCE_CONTAINER)
			r = container_prepare_bundle(d, name, s, e);
	}
	if (r < 0) {
		json_object_put(def);
		return r;
	}
	r = define(d, name, t, def, autostart, ret, e);
	if (r < 0) {
		if (t == INSTANCE_CONTAINER && r != -EEXIST)
			container_remove_files(d, name);
		return r;
	}
	if (start) {
		r = instance_action(*ret, "start", -1, retop, e);
		return r < 0 ? r : 1;
	}
	return 0;
}

/* ---- VM operations: snapshot, migrate ---- */

static int run_snapshot(struct op *op, void *p, struct err **e)
{
	struct action_arg *a = p;
	json_object *body = json_object_new_object();
	char *resp = NULL;
	int status, r;

	json_object_object_add(body, "path", json_object_new_string(a->text));
	op_progress(op, -1, "writing the snapshot", 0, 0);
	r = vm_api(a->inst, "PUT", "/snapshot/create", json_object_to_json_string(body), 3600, &status, &resp, e);
	json_object_put(body);
	if (r == 0 && status >= 300)
		r = err_setx(e, EIO, "instance '%s': snapshot: %s", a->inst->name, resp ? resp : "failed");
	free(resp);
	release_op(a->inst, op);
	return r;
}

int instance_snapshot(struct instance *inst, const char *path, struct op **op, struct err **e)
{
	struct action_arg *a;

	if (inst->type != INSTANCE_VM)
		return err_setx(e, EINVAL, "instance '%s' is a container: snapshots are for VMs", inst->name);
	if ((a = new_arg(path)) == NULL)
		return err_set(e, ENOMEM, "instance '%s'", inst->name);
	return begin_op(inst, "snapshot", run_snapshot, a, op, e);
}

static int run_migrate(struct op *op, void *p, struct err **e)
{
	struct action_arg *a = p;
	json_object *body, *info = NULL, *v;
	char *resp = NULL, to[512];
	int status, r;

	/* casulo-vmm takes numeric addresses only: a name is resolved here,
	 * in the operation's thread (a slow resolver holds no HTTP request). */
	if (migration_address_resolve(a->text, to, sizeof(to), e) < 0) {
		release_op(a->inst, op);
		return err_wrap(e, "instance '%s'", a->inst->name);
	}
	body = json_object_new_object();
	json_object_object_add(body, "destination", json_object_new_string(to));
	json_object_object_add(body, "downtime_ms", json_object_new_int(a->number));
	r = vm_api(a->inst, "PUT", "/migration/send", json_object_to_json_string(body), 30, &status, &resp, e);
	json_object_put(body);
	if (r == 0 && status >= 300)
		r = err_setx(e, EIO, "instance '%s': migration: %s", a->inst->name, resp ? resp : "refused");
	free(resp);
	/* Progress from the VMM's GET /migration until it ends. */
	while (r == 0) {
		const char *st;
		resp = NULL;
		if (vm_api(a->inst, "GET", "/migration", NULL, 10, &status, &resp, NULL) < 0 || status != 200 ||
		    (info = json_tokener_parse(resp)) == NULL) {
			/* The source VMM exits (0) once the guest runs on the
			 * destination: that is the answer when it is gone. */
			free(resp);
			if (!wait_stopped(a->inst, KILL_WAIT_S) || a->inst->exit_status != 0) {
				r = err_setx(e, EIO, "instance '%s': the VMM went away during the migration",
					     a->inst->name);
			} else {
				info = json_object_new_object();
				json_object_object_add(info, "state", json_object_new_string("completed"));
				op_set_result(op, info);
			}
			break;
		}
		free(resp);
		st = json_object_object_get_ex(info, "state", &v) ? json_object_get_string(v) : "";
		if (strcmp(st, "running") == 0) {
			uint64_t sent =
			    json_object_object_get_ex(info, "bytes_sent", &v) ? (uint64_t)json_object_get_int64(v) : 0;
			uint64_t left = json_object_object_get_ex(info, "remaining_pages", &v)
					    ? (uint64_t)json_object_get_int64(v) * 4096
					    : 0;
			op_progress(op, sent + left ? 100.0 * (double)sent / (double)(sent + left) : -1,
				    "copying memory", sent, sent + left);
		} else {
			if (strcmp(st, "failed") == 0)
				r = err_setx(e, EIO, "instance '%s': migration failed: %s", a->inst->name,
					     json_object_object_get_ex(info, "error", &v) ? json_object_get_string(v)
											  : "?");
			else
				op_set_result(op, json_object_get(info));
			json_object_put(info);
			break;
		}
		json_object_put(info);
		usleep(200 * 1000);
	}
	if (r == 0)
		wait_stopped(a->inst, KILL_WAIT_S); /* the source ends once the guest is on the destination */
	release_op(a->inst, op);
	return r;
}

int instance_migrate(struct instance *inst, const char *destination, int downtime_ms, struct op **op, struct err **e)
{
	struct action_arg *a;

	if (inst->type != INSTANCE_VM)
		return err_setx(e, EINVAL, "instance '%s' is a container: migration is for VMs", inst->name);
	if ((a = new_arg(destination)) == NULL)
		return err_set(e, ENOMEM, "instance '%s'", inst->name);
	a->number = downtime_ms;
	return begin_op(inst, "migrate", run_migrate, a, op, e);
}
