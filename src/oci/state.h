/*
 * Container state on disk: <root>/<id>/state.json (ours), config.json (the
 * spec as created) and exec.fifo (present while "created").  The status is
 * derived from the init process, the fifo and the freezer, as runc does.
 */
#ifndef CASULO_OCI_STATE_H
#define CASULO_OCI_STATE_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"

struct cgroup;
struct oci_spec;

enum oci_status { STATUS_CREATING, STATUS_CREATED, STATUS_RUNNING, STATUS_PAUSED, STATUS_STOPPED };
extern const char *const oci_status_names[];

struct oci_state {
	char *id;
	char *dir; /* <root>/<id> */
	pid_t pid;
	unsigned long long start_time; /* of pid, against pid reuse */
	char *bundle;
	char *rootfs;
	char *created; /* RFC 3339 with nanoseconds */
	char *owner;
	bool systemd_cgroup;
	struct cgroup *cg;
	struct oci_spec *spec; /* loaded from dir/config.json on demand */
	int lock_fd;
};

/* Is id acceptable as a container id (runc: [\w+-.]+, no "." or ".."). */
int state_check_id(const char *id, struct err **e) MUST_CHECK;
/* <root>/<id>, creating <root> as needed. */
int state_dir_path(const char *root, const char *id, char **ret, struct err **e) MUST_CHECK;

int state_load(const char *root, const char *id, struct oci_state **ret, struct err **e) MUST_CHECK;
int state_save(const struct oci_state *s, struct err **e) MUST_CHECK;
/* Load the spec stored beside the state. */
int state_load_spec(struct oci_state *s, struct err **e);
void state_free(struct oci_state *s);

/* Exclusive lock on the container's directory (flock). */
int state_lock(struct oci_state *s, struct err **e) MUST_CHECK;

enum oci_status state_status(const struct oci_state *s);

/* The OCI state document (ociVersion, id, status, pid, bundle,
 * annotations) as hooks and seccomp listeners get it, compact. */
char *state_hook_json(const char *id, enum oci_status st, pid_t pid, const char *bundle, const struct oci_spec *spec);

/* runc's `state` output: indented, with rootfs, created and owner. */
struct json_object *state_runc_object(const struct oci_state *s, enum oci_status st);
char *state_runc_json(const struct oci_state *s, enum oci_status st);

/* "2006-01-02T15:04:05.999999999Z" for now. */
void state_now_rfc3339(char *buf, size_t size);

#endif
