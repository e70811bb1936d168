/*
 * Requests to a running VM from other threads (the API server): each is a
 * struct vm_action handed to the VMM thread, which decides in one place
 * (vm_action_allowed()) whether the VM's state permits it, carries it
 * out, and answers with an HTTP status and a JSON body.  The caller's
 * thread waits; the VMM thread never does.
 */
#ifndef CASULO_VMM_ACTIONS_H
#define CASULO_VMM_ACTIONS_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/vm.h"

enum vm_action_kind {
	VM_ACTION_INFO,            /* GET /vm */
	VM_ACTION_PAUSE,           /* PUT /vm/state {"state":"paused"} */
	VM_ACTION_RESUME,          /* PUT /vm/state {"state":"running"} */
	VM_ACTION_SHUTDOWN,        /* PUT /vm/shutdown: ask the guest to power off */
	VM_ACTION_STOP,            /* PUT /vm/stop: end the VM now */
	VM_ACTION_SNAPSHOT_CREATE, /* PUT /snapshot/create */
	VM_ACTION_SNAPSHOT_LOAD,   /* PUT /snapshot/load */
	VM_ACTION_MIGRATE,         /* PUT /migration/send */
	VM_ACTION_MIGRATION_INFO,  /* GET /migration */
	VM_ACTION_BALLOON_SET,     /* PUT /balloon */
	VM_ACTION_BALLOON_STATS,   /* GET /balloon/statistics */
	VM_ACTION_METRICS,         /* GET /metrics */
	/* Internal: the migration thread's requests. */
	VM_ACTION_MIGRATION_PAUSE,
	VM_ACTION_MIGRATION_RESUME,
	VM_ACTION__MAX,
};

struct vm_action {
	enum vm_action_kind kind;
	/* Arguments, already checked for form by the caller. */
	char path[PATH_MAX];       /* snapshot directory */
	char destination[256];     /* migration target, "tcp:HOST:PORT" */
	uint32_t downtime_ms;      /* migration downtime target */
	bool wait;                 /* migration: answer when it has ended */
	uint64_t balloon_target;   /* bytes */

	/* The answer. */
	int http_status;
	char *body;                /* JSON, malloc'ed; NULL for no body */

	/* Hand-over between threads. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	struct vm_action *next;
};

/* Set up the queue on the VM's event loop (before vm_run). */
int vm_actions_init(struct vm *vm, struct err **e);
void vm_actions_destroy(struct vm *vm);

/* Any thread but the VMM's: run a on the VMM thread and wait for it.
 * Returns 0 with a->http_status/a->body set; a VM that is gone answers 503. */
void vm_action_run(struct vm *vm, struct vm_action *a);
void vm_action_init(struct vm_action *a, enum vm_action_kind kind);
void vm_action_release(struct vm_action *a);

/* The one table of which action is allowed in which VM state. */
bool vm_action_allowed(enum vm_action_kind kind, enum vm_state state);
const char *vm_action_name(enum vm_action_kind kind);

/* A JSON error body {"error": "..."}; malloc'ed. */
char *vm_action_error_json(const char *fmt, ...) PRINTF_FMT(1, 2);

#endif
