/*
 * libcasulo-vmc: containers in their own VM (docs/vm-containers.md).
 *
 * casulo-runtime runs a bundle inside a microVM when its config.json asks
 * (annotation io.casulo.vm=on) or when VM mode is its default (started as
 * casulo-runtime-vm, or with --vm).  The state is the runtime's own
 * (src/oci/state.h): the same directory, state.json, pids record, lock and
 * exec.fifo, so that `state`, `list`, `start`, `pause` and `resume` are
 * the plain runtime's; `vm.json` beside them marks a VM container and
 * records its VMM.  The container's pid, as callers see it, is its
 * monitor: a process of ours that started casulo-vmm, relays the
 * container's stdio over vsock, forwards signals, and exits with the
 * container's exit status.
 */
#ifndef CASULO_VMC_VMC_H
#define CASULO_VMC_VMC_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/err.h"
#include "oci/oci.h"

/* Where the VMM and the guest are: each NULL is looked for beside the
 * running program (casulo-vmm in its directory, the guest in the VMM's
 * directory's guest/, as casulo-vmm itself looks), or given by the
 * environment: CASULO_VMM, CASULO_GUEST_DIR. */
struct vmc_options {
	bool default_vm; /* casulo-runtime-vm, or --vm */
	const char *vmm;
	const char *guest_dir;
};

/* Does the bundle's container run in a VM? */
int vmc_wanted(const struct vmc_options *vo, const char *bundle, const char *config, bool *vm,
	       struct err **e) MUST_CHECK;
/* Is the existing container id one in a VM? */
bool vmc_is_vm(const struct oci_global *g, const char *id);

int vmc_create(const struct oci_global *g, const struct vmc_options *vo, const char *id,
	       const struct oci_create_opts *o, struct err **e) MUST_CHECK;
int vmc_run(const struct oci_global *g, const struct vmc_options *vo, const char *id, const struct oci_create_opts *o,
	    int *status, struct err **e) MUST_CHECK;
int vmc_kill(const struct oci_global *g, const char *id, int sig, bool all, struct err **e) MUST_CHECK;
int vmc_delete(const struct oci_global *g, const char *id, bool force, struct err **e) MUST_CHECK;
int vmc_exec(const struct oci_global *g, const char *id, const struct oci_exec_opts *o, int *status,
	     struct err **e) MUST_CHECK;
/* ps: the container's processes in its VM (guest pids); the table of the
 * guest's ps, or the pids as JSON. */
int vmc_ps(const struct oci_global *g, const char *id, bool json, char *const *args, size_t n_args, FILE *out,
	   struct err **e) MUST_CHECK;
int vmc_update(const struct oci_global *g, const char *id, const struct cgroup_resources *r, struct err **e) MUST_CHECK;

#endif
