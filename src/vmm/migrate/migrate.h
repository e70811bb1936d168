/*
 * Live migration, pre-copy over TCP.  The source sends guest memory while
 * the guest runs, then round after round the pages dirtied meanwhile (KVM's
 * dirty log for the vCPUs' writes, the VMM's own bitmap for the devices'),
 * until what is left fits the downtime target; it then pauses the VM,
 * sends the last pages and the VM's state (the snapshot sections), and
 * waits for the destination to say the VM runs there.  Only then does the
 * source VMM exit; any failure before that resumes the VM on the source.
 * docs/migration.md has the protocol.
 */
#ifndef CASULO_VMM_MIGRATE_MIGRATE_H
#define CASULO_VMM_MIGRATE_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

struct vm;
struct vm_config;
struct migration;

#define MIGRATE_MAGIC "CASULOMG"
#define MIGRATE_VERSION 1
#define MIGRATE_DEFAULT_DOWNTIME_MS 100

enum migration_state { MIGRATION_NONE, MIGRATION_RUNNING, MIGRATION_COMPLETED, MIGRATION_FAILED };

/* Where a migration stands; final once state is not MIGRATION_RUNNING. */
struct migration_progress {
	enum migration_state state;
	char destination[256];
	uint32_t rounds;
	uint64_t bytes_sent, pages_sent, remaining_pages;
	double total_ms;
	double downtime_ms; /* MIGRATION_COMPLETED */
	char error[512];    /* MIGRATION_FAILED */
};

struct migrate_send_params {
	const char *destination; /* "tcp:HOST:PORT" */
	uint32_t downtime_ms;	 /* the target; 0: MIGRATE_DEFAULT_DOWNTIME_MS */
	/* Called on the migration's thread once its progress is final (the
	 * VM runs here again after a failure), before a completed migration
	 * ends the VM (VM_EXIT_MIGRATED).  Optional. */
	void (*done)(void *opaque, const struct migration_progress *final);
	void *done_opaque;
};

/* VMM thread, the VM running: start sending it on a thread of its own,
 * which pauses and resumes the VM through vm_call(). */
int migrate_send_start(struct vm *vm, const struct migrate_send_params *params, struct migration **ret,
		       struct err **e) MUST_CHECK;
/* Any thread: where the migration stands. */
void migrate_progress(struct migration *m, struct migration_progress *p);
/* Wait for the migration's thread to end, then free it (NULL is fine).
 * Never on the VMM thread while the migration runs: it may be waiting
 * for that thread to pause the VM. */
void migrate_free(struct migration *m);
const char *migration_state_name(enum migration_state state);

/*
 * Destination: listen on "tcp:ADDR:PORT", take one migration into the
 * waiting VM (machine_create_waiting), and tell the source it runs.  Host-local
 * resources (disks, nets) come from host when it names them.  Returns once
 * the VM is ready for vm_run(), or on failure.
 */
int migrate_receive(struct vm *vm, const char *listen_spec, const struct vm_config *host, struct err **e) MUST_CHECK;

#endif
