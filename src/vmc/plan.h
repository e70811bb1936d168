/*
 * What a container in a VM needs, decided from its bundle before anything
 * is made (pure functions, unit-tested and fuzzed): whether it runs in a
 * VM at all, the VM's size, what the host shares with the guest, and the
 * config.json the guest's runtime gets.
 */
#ifndef CASULO_VMC_PLAN_H
#define CASULO_VMC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct json_object;
struct oci_spec;
struct cgroup_resources;

#define VMC_ANNOTATION "io.casulo.vm"
#define VMC_ANNOTATION_CPUS "io.casulo.vm.cpus"
#define VMC_ANNOTATION_MEMORY "io.casulo.vm.memory"
/* The guest's RAM beyond the container's memory limit: its kernel, the
 * agent and the page cache of the shared files (docs/vm-containers.md has
 * the measurement). */
#define VMC_GUEST_OVERHEAD_MIB 64
/* The host cgroup's memory limit beyond the guest's RAM: the VMM's own
 * (its threads, device buffers, page tables), which shares that cgroup. */
#define VMC_VMM_OVERHEAD_MIB 64
/* The guest's RAM when the container has no memory limit: untouched
 * guest RAM costs the host nothing. */
#define VMC_DEFAULT_MEMORY_MIB 512
#define VMC_MIN_MEMORY_MIB 64
#define VMC_MAX_CPUS 254

/* Where the guest finds what the host shares (the one virtio-fs tag). */
#define VMC_SHARE_TAG "casulo"
#define VMC_GUEST_SHARE "/run/casulo/shared"

/*
 * Does this container run in a VM?  The annotation io.casulo.vm ("on",
 * "off", "true", "false", "1", "0") decides; without it, default_vm (the
 * runtime was started as casulo-runtime-vm, or with --vm).  A CRI sandbox
 * (io.kubernetes.cri.container-type "sandbox": the pause process) in a VM
 * boots its pod's VM, and the pod's containers join it.
 */
int vmc_plan_wanted(const struct oci_spec *s, bool default_vm, bool *vm, struct err **e) MUST_CHECK;

/* A CRI pod's application container (io.kubernetes.cri.container-type
 * "container"): the id of its sandbox (io.kubernetes.cri.sandbox-id),
 * whose VM it joins when that one runs in a VM; NULL otherwise. */
const char *vmc_plan_sandbox(const struct oci_spec *s);
/* A CRI sandbox (io.kubernetes.cri.container-type "sandbox")? */
bool vmc_plan_is_sandbox(const struct oci_spec *s);

/* A host path the guest sees below VMC_GUEST_SHARE. */
struct vmc_share {
	char *host;  /* absolute host path (the rootfs, a bind mount's source) */
	char *guest; /* relative to the share: "rootfs", "mnt/3" */
	bool is_dir;
	bool readonly;
	bool recursive; /* rbind */
};

struct vmc_plan {
	unsigned cpus;
	uint64_t memory_mib;
	struct vmc_share *shares; /* [0] is the rootfs */
	size_t n_shares;
	char *netns;	/* the network namespace the VM's interface goes in, or NULL */
	bool own_netns; /* the container asked for a network namespace */
	struct json_object *guest_spec;
	char **warnings; /* what was changed for the guest, for the log */
	size_t n_warnings;
};

/* Facts about the host a plan depends on, passed in so that planning
 * stays pure: how many CPUs it has, and what kind of file a bind mount's
 * source is (S_IFDIR, S_IFREG...; 0 when it does not exist). */
struct vmc_host {
	unsigned cpus;
	/* A pod's container joining its sandbox's VM: the sandbox's init in
	 * the guest (0: a VM of its own).  Its shares go under c/<id>/, the
	 * namespaces given by path become the sandbox's in the guest, and no
	 * network namespace is plugged (the sandbox's VM has it). */
	int sandbox_guest_pid;
	unsigned (*file_type)(const char *path, void *ctx);
	void *ctx;
};

/*
 * Plan the VM of a container: config is config.json as parsed by json-c,
 * spec the same validated by libcasulo-oci, bundle and rootfs absolute.
 * Errors name the field: "mounts[3]: a bind mount of a device node
 * ('/dev/sda') cannot be shared with a VM".
 */
int vmc_plan_make(struct json_object *config, const struct oci_spec *spec, const char *id, const char *bundle,
		  const char *rootfs, const struct vmc_host *host, struct vmc_plan *p, struct err **e) MUST_CHECK;
void vmc_plan_free(struct vmc_plan *p);

/* "512M", "2G", "1073741824" (bytes) into MiB, rounded up to 2 MiB. */
int vmc_plan_parse_memory(const char *s, uint64_t *mib);

/* The OCI linux.resources object of r (update's flags, for the guest). */
struct json_object *vmc_resources_json(const struct cgroup_resources *r);

#endif
