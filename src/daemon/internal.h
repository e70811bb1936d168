/*
 * casulod's insides, shared by its files:
 *
 *   main.c      start-up: locks, database, reattach, autostart, threads
 *   instance.c  the instance table and the lifecycle (start, stop, ...),
 *               with the backends vm.c and container.c
 *   loop.c      the supervisor thread: shims' pidfds, consoles, websockets
 *   console.c   each instance's console: history, viewers, one writer
 *   ops.c       asynchronous operations
 *   events.c    the events bus (server-sent events)
 *   http.c      libmicrohttpd: sockets, TLS, auth, suspend and resume
 *   api.c       the routes of docs/casulod-api.yaml
 *   usage.c     CPU, memory, I/O of instances (the sampler thread)
 *   metrics.c   Prometheus text
 *
 * Locking: d->lock guards the instance list and every instance's state
 * fields; it is never held across I/O that can wait (a VMM's API, a
 * process's end).  Each operation runs on a thread of its own.  Console
 * and websocket file descriptors belong to the loop thread alone; other
 * threads hand it work with loop_post().
 */
#ifndef CASULO_DAEMON_INTERNAL_H
#define CASULO_DAEMON_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "daemon/daemon.h"
#include "daemon/proc.h"
#include "daemon/store.h"

struct json_object;
struct schema_doc;
struct loop;
struct http;
struct console;
struct op;

enum instance_type { INSTANCE_VM, INSTANCE_CONTAINER };

enum instance_state {
	STATE_STOPPED,
	STATE_STARTING,
	STATE_RUNNING,
	STATE_PAUSED,
	STATE_STOPPING,
};

const char *instance_type_name(enum instance_type t);
const char *instance_state_name(enum instance_state s);

struct usage {
	bool valid;
	double sampled_at;
	uint64_t cpu_ns, memory_bytes;
	double cpu_percent;
	bool has_io;
	uint64_t disk_read_bytes, disk_write_bytes, net_rx_bytes, net_tx_bytes;
};

struct autostart {
	bool enabled;
	int order;
	double delay_s;
};

struct instance {
	struct daemon *d;
	char *name;
	enum instance_type type;
	struct json_object *def; /* the definition: {"vm" | "container", "stop_timeout_s"} */
	struct autostart autostart;
	double created_at, started_at, stopped_at;
	bool has_exit;
	int exit_status;
	char exit_reason[24];

	enum instance_state state;
	struct op *op;	   /* the operation at work on it (one at a time) */
	uint64_t op_epoch; /* operations begun and ended: see instance_workload_state() */
	bool deleted;
	/* record_end() at work: the run has ended but its clean-up (the
	 * runtime's delete, the run directory) is under way; a start, kill or
	 * delete waits for it (wait_end_recorded_locked()). */
	bool recording_end;
	int refs;

	/* While it runs (shim_pidfd >= 0). */
	pid_t shim_pid, workload_pid;
	uint64_t shim_start, workload_start;
	int shim_pidfd;
	bool ending_requested; /* a stop or kill: the end is not a crash */
	bool killed;
	char *run_dir;	  /* RUN/instances/NAME */
	char *api_socket; /* a VM's casulo-vmm API */
	char *cgroup;	  /* a container's cgroup path (below each hierarchy's root) */

	bool writer_taken; /* a console writer is attached */
	struct console *console;

	struct usage usage;
	uint64_t prev_cpu_ns;
	double prev_sample;

	pthread_cond_t changed; /* broadcast on every state change */
};

struct reattach_report {
	int found, lost;
	double ms;	/* from casulod's exec to the end of the reattach */
	double load_ms; /* the reattach itself: definitions read, processes found */
};

struct daemon {
	struct daemon_config cfg;
	char *state_dir, *run_dir, *socket_path, *image_root;
	char *vmm, *runtime, *shim, *guest_dir;
	char *snapshot_dir; /* each VMM's --snapshot-dir: its Landlock lets it write snapshots there only */
	struct store_db *db;
	struct schema_doc *schemas;

	pthread_mutex_t lock;
	struct instance **instances;
	size_t n_instances, cap_instances;

	struct loop *loop;
	struct http *http;
	struct ops *ops;
	struct events *events;

	int state_lock_fd;
	char boot_id[BOOT_ID_LEN];
	bool first_start_since_boot;
	double started_at;
	struct reattach_report reattach;
	atomic_bool stopping;
	atomic_ullong http_requests;
	pthread_t sampler;
	bool sampler_started;
};

/* ---- instances (instance.c) ---- */

/* Find by name (a reference the caller puts), or NULL. */
struct instance *instance_get(struct daemon *d, const char *name);
void instance_put(struct instance *inst);
/* The instances sorted by name, each referenced; instances_put() frees. */
struct instance **instances_snapshot(struct daemon *d, size_t *n);
void instances_put(struct instance **list, size_t n);

/* Load the definitions and take back what still runs (at start-up). */
int instances_load(struct daemon *d, struct err **e) MUST_CHECK;
/* Start the autostart instances in their order (first start since boot). */
void instances_autostart(struct daemon *d);

/* A deep copy of o (NULL for NULL, or when memory runs out).  json-c's
 * reference counts are not atomic (Debian builds it without threading):
 * an object that several threads see is copied, never shared through
 * json_object_get(). */
struct json_object *json_copy(struct json_object *o);

/* The instance as the API's Instance object (takes d->lock). */
struct json_object *instance_to_json(struct instance *inst);

/* Create from a checked InstanceCreate body.  A VM or a bundle container
 * is defined at once (*inst set); a container from an image returns 1
 * with *op: an operation pulls and unpacks it. */
int instance_create(struct daemon *d, struct json_object *body, struct instance **inst, struct op **op,
		    struct err **e) MUST_CHECK;
/* Actions of StateRequest: each starts an operation (*op). */
int instance_action(struct instance *inst, const char *action, int timeout_s, struct op **op,
		    struct err **e) MUST_CHECK;
/* Delete a stopped instance now (0), or with force a running one through
 * an operation (1, *op). */
int instance_delete(struct instance *inst, bool force, struct op **op, struct err **e) MUST_CHECK;
int instance_set_autostart(struct instance *inst, struct json_object *autostart, struct err **e) MUST_CHECK;
int instance_snapshot(struct instance *inst, const char *path, struct op **op, struct err **e) MUST_CHECK;
int instance_migrate(struct instance *inst, const char *destination, int downtime_ms, struct op **op,
		     struct err **e) MUST_CHECK;

/* Called by the loop thread when a running instance's shim has ended. */
void instance_ended(struct instance *inst);
/* The workload's own word on its state ("paused", "running": a VM or a
 * container paused or resumed behind casulod's back), read by the usage
 * sampler without the lock.  epoch is instance_op_epoch() from before the
 * reading: a reading older than an operation's start or end is dropped,
 * since the state that operation set is newer (a pause that ended while
 * the sampler's GET /vm was under way must stay a pause). */
uint64_t instance_op_epoch(struct instance *inst);
void instance_workload_state(struct instance *inst, uint64_t epoch, const char *state);

/* The console log's path (STATE/logs/NAME.log). */
char *instance_log_path(struct daemon *d, const char *name);

/* ---- backends (vm.c, container.c) ---- */

struct backend {
	/* Check the definition's files (kernel, disks, bundle): -ENOENT etc.
	 * with the file named; at create (name NULL) and at each start. */
	int (*check)(struct daemon *d, const char *name, struct json_object *def, struct err **e);
	/* The workload's argv (NULL-terminated, malloc'd strings) and shim
	 * options; may prepare files in inst->run_dir. */
	int (*prepare)(struct instance *inst, char ***argv, char **overlay_target, char **overlay_options,
		       char **stderr_file, struct err **e);
	/* Once the shim says it runs: wait until it serves (a VM's API). */
	int (*wait_ready)(struct instance *inst, struct err **e);
	int (*stop_gently)(struct instance *inst, struct err **e);
	int (*stop_now)(struct instance *inst, struct err **e);
	int (*kill)(struct instance *inst, struct err **e);
	int (*pause)(struct instance *inst, bool pause, struct err **e);
	/* After the shim has ended: what the workload left (a container's state). */
	void (*cleanup)(struct instance *inst);
	/* Usage beyond CPU and memory of the workload process. */
	void (*sample)(struct instance *inst, struct usage *u, bool slow);
};

extern const struct backend backend_vm;
extern const struct backend backend_container;
const struct backend *backend_of(const struct instance *inst);

/* container.c: a container from an image, made at create (in an op). */
int container_prepare_image(struct daemon *d, const char *name, struct json_object *spec, struct op *op,
			    struct err **e) MUST_CHECK;
/* container.c: a container from a bundle, made at create (at once). */
int container_prepare_bundle(struct daemon *d, const char *name, struct json_object *spec, struct err **e) MUST_CHECK;
void container_remove_files(struct daemon *d, const char *name);
/* The image store's listing, for GET /v1/images. */
int images_list(struct daemon *d, struct json_object **ret, struct err **e) MUST_CHECK;
int images_pull(struct daemon *d, const char *ref, struct op *op, struct err **e) MUST_CHECK;

/* vm.c: a VMM API request on the instance's socket. */
int vm_api(struct instance *inst, const char *method, const char *path, const char *body, long timeout_s, int *status,
	   char **resp, struct err **e) MUST_CHECK;

/* ---- operations (ops.c) ---- */

enum op_status { OP_RUNNING, OP_SUCCESS, OP_FAILURE };

typedef int (*op_fn)(struct op *op, void *arg, struct err **e);

struct ops *ops_new(struct daemon *d);
void ops_free(struct ops *ops);
/* Start fn(op, arg) on a thread of its own; the operation is referenced
 * once for the caller.  free_arg (optional) runs after fn (and when the
 * operation cannot be made: NULL is then returned). */
struct op *op_start(struct daemon *d, const char *type, const char *instance, op_fn fn, void *arg,
		    void (*free_arg)(void *));
/* The same in two steps, for a caller that records the operation
 * somewhere before it runs. */
struct op *op_create(struct daemon *d, const char *type, const char *instance);
void op_run(struct op *op, op_fn fn, void *arg, void (*free_arg)(void *));
struct op *op_ref(struct op *op);
struct op *op_get(struct daemon *d, const char *id);
void op_put(struct op *op);
const char *op_id(const struct op *op);
struct daemon *op_daemon(const struct op *op);
enum op_status op_status(struct op *op);
struct json_object *op_to_json(struct op *op);
struct json_object *ops_list_json(struct daemon *d);
int ops_running(struct daemon *d);
/* From fn: progress (percent < 0: unknown), and a result object (taken). */
void op_progress(struct op *op, double percent, const char *stage, uint64_t done, uint64_t total);
void op_set_result(struct op *op, struct json_object *result);
/* Call fn(arg) once the operation has ended (at once when it has). */
void op_on_done(struct op *op, void (*fn)(void *), void *arg);
/* Forget a callback registered with op_on_done (a request timed out):
 * false when it is too late (the callback runs, or has run). */
bool op_forget(struct op *op, void *arg);
/* Drop operations that ended more than 10 minutes ago. */
void ops_gc(struct daemon *d);

/* ---- events (events.c) ---- */

/* Publish a lifecycle event for inst (its state as it is; d->lock not held). */
void event_lifecycle(struct daemon *d, const char *action, struct instance *inst);
/* Publish an operation event (takes op_json). */
void event_operation(struct daemon *d, const char *action, struct json_object *op_json);
/* Keep the streams alive (ticker). */
void events_keepalive(struct daemon *d);

/* ---- the loop thread (loop.c) ---- */

struct loop *loop_new(struct daemon *d, struct err **e);
void loop_run(struct loop *l); /* until loop_stop() */
void loop_stop(struct loop *l);
void loop_free(struct loop *l);
/* Run fn(arg) on the loop thread. */
void loop_post(struct loop *l, void (*fn)(void *), void *arg);
/* Watch a running instance: its shim's pidfd and its console (referenced). */
void loop_watch(struct loop *l, struct instance *inst);
/* Register fd with the loop: fn(ctx, events) on the loop thread. */
struct loop_source;
struct loop_source *loop_add_fd(struct loop *l, int fd, uint32_t events, void (*fn)(void *ctx, uint32_t events),
				void *ctx);
void loop_mod_fd(struct loop *l, struct loop_source *s, uint32_t events);
void loop_del_fd(struct loop *l, struct loop_source *s);

/* ---- consoles (console.c), loop thread ---- */

struct console *console_new(struct instance *inst);
/* Connect to the shim's console socket (again, after a restart). */
void console_connect(struct console *c);
/* The instance ended: viewers get the rest and a close. */
void console_end(struct console *c);
void console_free(struct console *c);
/* A websocket handed over by http.c (any thread), for inst (a reference
 * it takes over): fd, what the client sent after its request (extra),
 * writer or viewer (a writer has set inst->writer_taken; it is cleared
 * when it goes).  done(ctx) runs on the loop thread once it is closed. */
void console_attach_instance(struct instance *inst, int fd, const char *extra, size_t extra_len, bool writer,
			     void (*done)(void *ctx), void *ctx);

/* ---- usage (usage.c) ---- */

/* The sampler thread: usage of each running instance every second. */
void *usage_sampler(void *arg);
/* CPU and memory of a container's cgroup (read from the cgroup files;
 * src/cgroup's stats once that library lands). */
int usage_read_cgroup(const char *cgroup, struct usage *u);

/* ---- metrics.c ---- */

char *metrics_text(struct daemon *d);

/* ---- http (http.c) and api (api.c) ---- */

int http_start(struct daemon *d, struct err **e) MUST_CHECK;
void http_stop(struct daemon *d);
/* Is given the TCP listener's token (compared in constant time)? */
bool http_token_matches(struct daemon *d, const char *given);

#endif
