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
struct json_object;

#define MIGRATE_MAGIC "CASULOMG"
#define MIGRATE_VERSION 1
#define MIGRATE_DEFAULT_DOWNTIME_MS 100

/* VMM thread: start sending the VM to "tcp:HOST:PORT" on a thread of its own. */
int migrate_send_start(struct vm *vm, const char *destination, uint32_t downtime_ms, struct err **e);
/* Progress of the current or last migration, for GET /migration. */
struct json_object *migrate_info(struct vm *vm);
/* Is a migration running (other actions wait)? */
bool migrate_running(struct vm *vm);
/* Release what a finished migration left (vm_destroy). */
void migrate_cleanup(struct vm *vm);

/*
 * Destination: listen on "tcp:ADDR:PORT", take one migration into the
 * waiting VM (vm_create_waiting), and tell the source it runs.  Host-local
 * resources (disks, nets) come from host when it names them.  Returns once
 * the VM is ready for vm_run(), or on failure.
 */
int migrate_receive(struct vm *vm, const char *listen_spec, const struct vm_config *host, struct err **e);

#endif
