/* The VMM's Landlock confinement: casulo-vmm restricts its own file
 * access to the paths its configuration names (docs/vmm.md,
 * "Confinement: Landlock"), before its first thread starts. */
#ifndef CASULO_VMM_LANDLOCK_H
#define CASULO_VMM_LANDLOCK_H

#include <stdbool.h>

#include "common/err.h"
#include "vmm/config.h"

#define VMM_MAX_SNAPSHOT_DIRS 8

/* What the command line names besides the VM's configuration. */
struct vmm_landlock_paths {
	const char *api_socket;	 /* its directory: the socket is bound and removed there */
	const char *restore_dir; /* --restore: read */
	/* --restore: the snapshot's configuration (vm_snapshot_read_config),
	 * whose disks, directories and files the restored VM opens */
	const struct vm_config *restored;
	/* --restore, --wait or --incoming: the devices come from the state,
	 * whose TAP interfaces are opened then (/dev/net/tun) */
	bool devices_from_state;
	/* --snapshot-dir: where PUT /snapshot/create may write and
	 * PUT /snapshot/load may read (everything beneath) */
	const char *snapshot_dirs[VMM_MAX_SNAPSHOT_DIRS];
	unsigned nsnapshot_dirs;
};

/* Confine the calling (only) thread and everything it starts to the
 * paths of cfg and p.  Files the VM writes that do not exist yet (the
 * console's) are created empty first.  Without Landlock in the kernel it
 * says so once (info) and returns 0.  in_cgroup (--cgroup): the VMM leaves
 * and removes its cgroup at the end, so cgroupfs stays open to it. */
int vmm_landlock_apply(const struct vm_config *cfg, const struct vmm_landlock_paths *p, bool in_cgroup,
		       struct err **e) MUST_CHECK;

/* Whether the process is confined by vmm_landlock_apply(). */
bool vmm_landlock_enforced(void);

/* A snapshot directory the API names: 0 when the confinement lets the
 * VMM reach it (always, unconfined), otherwise -1 with *e saying so. */
int vmm_landlock_check_snapshot(const char *path, struct err **e) MUST_CHECK;

#endif
