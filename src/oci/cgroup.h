/*
 * Cgroups with the cgroupfs driver: v1, hybrid (v1 controllers plus a
 * cgroup2 mount, usually /sys/fs/cgroup/unified) and v2, with runc's
 * cgroupsPath rules: an absolute path is taken from each hierarchy's root,
 * a relative one (or the container id when none is given) from the
 * runtime's own cgroup.
 */
#ifndef CASULO_OCI_CGROUP_H
#define CASULO_OCI_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

struct json_object;
struct oci_resources;
struct oci_device;

enum cgroup_mode { CGROUP_MODE_V1, CGROUP_MODE_HYBRID, CGROUP_MODE_V2 };

#define CGROUP_V1_MAX 16

struct cgroup_dir {
	char *controllers; /* "memory", "cpu,cpuacct", "name=systemd"; "" for cgroup2 */
	char *mountpoint;  /* "/sys/fs/cgroup/memory" */
	char *path;	   /* the container's directory */
};

struct cgroup {
	enum cgroup_mode mode;
	char *rel; /* path under each hierarchy, e.g. "/libpod_parent/x" */
	struct cgroup_dir v1[CGROUP_V1_MAX];
	size_t n_v1;
	struct cgroup_dir unified; /* path NULL when there is no cgroup2 mount */
};

enum cgroup_mode cgroup_detect_mode(void);

/* runc's cgroupsPath rule for one hierarchy mounted at mountpoint (whose
 * mount root is mount_root): an absolute rel is taken from the hierarchy's
 * root, a relative one from own (the runtime's cgroup there); "." and ".."
 * are cleaned lexically, so a path cannot climb above the mount. */
int cgroup_path_join(const char *mountpoint, const char *mount_root, const char *own, const char *rel, char **ret);

/* Resolve cgroupsPath and create the directories.  systemd: the
 * "slice:prefix:name" form, refused with a clear error without systemd. */
int cgroup_create(const char *cgroups_path, const char *id, bool systemd, struct cgroup **ret,
		  struct err **e) MUST_CHECK;
/* Write resources; updating says a running container is changed. */
int cgroup_set(struct cgroup *cg, const struct oci_resources *r, const struct oci_device *devs, size_t n_devs,
	       bool updating, struct err **e) MUST_CHECK;
/* Move the calling single-threaded process into the container's v1
 * cgroups (or the sub-cgroup sub, "[ctrl[,ctrl]:]path", of exec --cgroup),
 * and open the cgroup2 directory for clone3(CLONE_INTO_CGROUP):
 * *unified_fd, or -1 when there is no cgroup2 side.  With now, join the
 * cgroup2 side at once too (a process about to enter a user namespace
 * could not clone into it later). */
int cgroup_enter_self(const struct cgroup *cg, const char *sub, bool now, int *unified_fd, struct err **e) MUST_CHECK;
/* Write pid into dir/cgroup.procs (the fallback without clone3). */
int cgroup_enter_pid(const char *dir, pid_t pid, struct err **e) MUST_CHECK;
/* Kill what is left, remove every directory. */
int cgroup_destroy(struct cgroup *cg, struct err **e);
/* The same, trying each directory once: for a container whose process
 * cannot die yet (frozen by a freezer that is not ours). */
int cgroup_destroy_once(struct cgroup *cg, struct err **e);
void cgroup_free(struct cgroup *cg);

int cgroup_freeze(const struct cgroup *cg, bool freeze, struct err **e);
/* 1 frozen, 0 not, -errno. */
int cgroup_is_frozen(const struct cgroup *cg);
int cgroup_pids(const struct cgroup *cg, pid_t **pids, size_t *n, struct err **e) MUST_CHECK;
int cgroup_signal_all(const struct cgroup *cg, int sig, struct err **e) MUST_CHECK;

/* Saved in the container's state. */
struct json_object *cgroup_to_json(const struct cgroup *cg);
int cgroup_from_json(struct json_object *o, struct cgroup **ret, struct err **e) MUST_CHECK;

/* Per version resource writers (cgroup-v1.c, cgroup-v2.c). */
int cgroup_v1_set(struct cgroup *cg, const struct oci_resources *r, bool updating, struct err **e);
int cgroup_v1_set_devices(struct cgroup *cg, const struct oci_resources *r, const struct oci_device *devs,
			  size_t n_devs, struct err **e);
int cgroup_v2_set(struct cgroup *cg, const char *dir, const struct oci_resources *r, bool hybrid, bool updating,
		  struct err **e);
int cgroup_v2_set_devices(const char *dir, const struct oci_resources *r, const struct oci_device *devs, size_t n_devs,
			  struct err **e);
/* Hugetlb limits into a cgroup2 directory (v2, and hybrid hosts where
 * hugetlb sits on the cgroup2 mount). */
int cgroup_v2_set_hugetlb(const char *dir, const struct oci_resources *r, struct err **e);

/* Write "value" into dir/file, the error naming both. */
int cgroup_write(const char *dir, const char *file, const char *value, struct err **e);
/* The v1 directory holding a controller, or NULL. */
const char *cgroup_v1_dir(const struct cgroup *cg, const char *controller);

/* The device cgroup rules a container gets: the spec's, then the defaults
 * runc allows (null, zero, full, tty, random, urandom, console, ptmx, pts,
 * tun, mknod of any), then one per configured device. */
struct oci_device_rule;
int cgroup_device_rules(const struct oci_resources *r, const struct oci_device *devs, size_t n_devs,
			struct oci_device_rule **ret, size_t *n);

/* The eBPF device program (cgroup-bpf.c): build it (insns malloc'd, struct
 * bpf_insn), and load and attach it, replacing the programs before it. */
struct bpf_insn;
int cgroup_bpf_build(const struct oci_device_rule *rules, size_t n, struct bpf_insn **ret, size_t *len);
int cgroup_bpf_devices_attach(const char *dir, const struct oci_device_rule *rules, size_t n, struct err **e);

#endif
