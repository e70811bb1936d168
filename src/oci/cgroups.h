/*
 * A container's cgroup: what the OCI spec and runc's command line say,
 * translated for libcasulo-cgroup (src/cgroup/cgroup.h), which does the
 * work.  Here live runc's cgroupsPath rules (the container id when none is
 * given; the systemd form refused without systemd), runc's meaning of 0
 * in linux.resources (unset), runc's default device rules, runc's wording
 * of the errors its callers look for, and the cgroup's record in the
 * container's state.
 */
#ifndef CASULO_OCI_CGROUPS_H
#define CASULO_OCI_CGROUPS_H

#include <stdbool.h>
#include <stddef.h>

#include "cgroup/cgroup.h"
#include "common/err.h"

struct json_object;
struct oci_device;

/* Resolve cgroupsPath (NULL or "": the container id) into the container's
 * directories, creating nothing yet: the state records them first, so
 * that a create killed at any step leaves delete what it needs.
 * systemd: the "slice:prefix:name" form, refused clearly without systemd. */
int cgroups_resolve(const char *cgroups_path, const char *id, bool systemd, struct cgroup **ret,
		    struct err **e) MUST_CHECK;
/* Create the directories with runc's checks and messages: a frozen
 * cgroup is refused ("container's cgroup unexpectedly frozen"); one that
 * holds processes already is used with runc's warning. */
int cgroups_make(struct cgroup *cg, const char *id, struct err **e) MUST_CHECK;
/* Is linux.resources writable on this host at all (unified keys on v1 or
 * hybrid are not)?  Before anything is made. */
int cgroups_check(const struct cgroup *cg, const struct cgroup_resources *r, struct err **e) MUST_CHECK;
/* Write linux.resources (r may be NULL) and the device rules: all of them
 * at create; at update only what r gives, devices only when r has them. */
int cgroups_apply(struct cgroup *cg, const struct cgroup_resources *r, const struct oci_device *devs, size_t n_devs,
		  bool updating, struct err **e) MUST_CHECK;

/* The device rules a container gets, as runc makes them: the spec's
 * (deny-all when there is none), then the defaults runc allows (null,
 * zero, full, tty, random, urandom, console, ptmx, pts, tun, mknod of
 * any), but for a default whose path linux.devices lists.  linux.devices
 * adds no rule of its own. */
int cgroups_device_rules(const struct cgroup_resources *r, const struct oci_device *devs, size_t n_devs,
			 struct cgroup_device_rule **ret, size_t *n);

/* exec --cgroup, given n times: "path" (alone) or "ctrl[,ctrl]:path",
 * checked with runc's wording; *ret is cg with the sub-cgroups put in. */
int cgroups_for_exec(const struct cgroup *cg, char *const *args, size_t n, struct cgroup **ret,
		     struct err **e) MUST_CHECK;

/* Saved in the container's state. */
struct json_object *cgroups_to_json(const struct cgroup *cg);
int cgroups_from_json(struct json_object *o, struct cgroup **ret, struct err **e) MUST_CHECK;

#endif
