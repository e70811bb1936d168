/*
 * The control plane: what the API asks of a running VM.  Each request is
 * a struct vm_action, carried out on the VMM thread (vm_call()), which
 * decides in one place (the action_rules[] table, vm_action_allowed())
 * whether the VM's state permits it, calls the VMM library, and answers
 * with an HTTP status and a JSON body.  The library below returns errors
 * (errno and message) and data; the status codes and the JSON of the
 * answers are chosen here and only here.  The caller's thread waits; the
 * VMM thread never does.
 *
 * The control plane also owns the VM's outgoing migration: it starts it,
 * reports it, and answers a request that waits for its end.
 */
#ifndef CASULO_API_ACTIONS_H
#define CASULO_API_ACTIONS_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <sched.h>

#include "common/err.h"
#include "common/ratelimit.h"
#include "vmm/vm.h"

enum vm_action_kind {
	VM_ACTION_INFO,		   /* GET /vm */
	VM_ACTION_PAUSE,	   /* PUT /vm/state {"state":"paused"} */
	VM_ACTION_RESUME,	   /* PUT /vm/state {"state":"running"} */
	VM_ACTION_SHUTDOWN,	   /* PUT /vm/shutdown: ask the guest to power off */
	VM_ACTION_STOP,		   /* PUT /vm/stop: end the VM now */
	VM_ACTION_SNAPSHOT_CREATE, /* PUT /snapshot/create */
	VM_ACTION_SNAPSHOT_LOAD,   /* PUT /snapshot/load */
	VM_ACTION_MIGRATE,	   /* PUT /migration/send */
	VM_ACTION_MIGRATION_INFO,  /* GET /migration */
	VM_ACTION_BALLOON_SET,	   /* PUT /balloon */
	VM_ACTION_BALLOON_STATS,   /* GET /balloon/statistics */
	VM_ACTION_METRICS,	   /* GET /metrics */
	VM_ACTION_RATE_LIMITS,	   /* GET /rate-limits */
	VM_ACTION_RATE_LIMIT_SET,  /* PUT /rate-limits */
	VM_ACTION_AFFINITY_GET,	   /* GET /vm/affinity */
	VM_ACTION_AFFINITY_SET,	   /* PATCH /vm/affinity */
	VM_ACTION__MAX,
};

/* One change of PATCH /vm/affinity. */
struct affinity_change {
	int vcpu; /* -1: the VMM's other threads */
	cpu_set_t cpus;
};

struct vm_action {
	enum vm_action_kind kind;
	/* Arguments, already checked for form by the caller. */
	char path[PATH_MAX];		  /* snapshot directory */
	char destination[256];		  /* migration target, "tcp:HOST:PORT" */
	uint32_t downtime_ms;		  /* migration downtime target */
	bool wait;			  /* migration: answer when it has ended */
	uint64_t balloon_target;	  /* bytes */
	struct affinity_change *affinity; /* malloc'ed, freed by vm_action_release() */
	unsigned n_affinity;
	char device[32]; /* PUT /rate-limits: the device's name */
	struct {
		const char *name; /* "rate", "rx_rate", "tx_rate" (static) */
		struct ratelimit_config cfg;
	} rates[3];
	unsigned nrates;

	/* The answer. */
	int http_status;
	char *body; /* JSON, malloc'ed; NULL for no body */

	/* Hand-over between threads. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	struct vm_action *next; /* waiting for the migration's end */
};

/* The control plane of one VM. */
struct vm_actions;

int vm_actions_create(struct vm *vm, struct vm_actions **ret, struct err **e) MUST_CHECK;
/* After the VM stopped: waits for an outgoing migration's thread. */
void vm_actions_destroy(struct vm_actions *acts);

/* Any thread but the VMM's: carry a out on the VMM thread and wait for
 * its answer (a->http_status, a->body); a VM that is gone answers 503. */
void vm_action_run(struct vm_actions *acts, struct vm_action *a);
/* Carry a out on this thread as the VMM thread would: for unit tests,
 * whose VMs have no VMM thread. */
void vm_action_execute(struct vm_actions *acts, struct vm_action *a);
void vm_action_init(struct vm_action *a, enum vm_action_kind kind);
void vm_action_release(struct vm_action *a);

/* The one table of which action is allowed in which VM state. */
bool vm_action_allowed(enum vm_action_kind kind, enum vm_state state);
const char *vm_action_name(enum vm_action_kind kind);

/* A JSON error body {"error": "..."}; malloc'ed. */
char *vm_action_error_json(const char *fmt, ...) PRINTF_FMT(1, 2);

#endif
