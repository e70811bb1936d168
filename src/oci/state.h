/*
 * Container state on disk: <root>/<id>/state.json (ours), config.json (the
 * spec as created) and exec.fifo (present while "created").  The status is
 * derived from the init process, the fifo and the freezer, as runc does.
 *
 * state.json is written once, when a create starts (with the cgroup paths,
 * before any cgroup directory exists); the processes go to <root>/<id>/pids,
 * one line rewritten in place as the create goes: the runtime's pid, the
 * setup child's once forked, the container process's once cloned, then
 * "created".  So when a create is killed at any step, `state` and `list` say
 * "stopped" and `delete` (--force or not) finds all it left.  The state
 * lock (flock on the directory) is held by the create until it ends, so a
 * verb that locks first sees either its outcome or its debris.
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
	/* While the create has not finished: the runtime doing it, and the
	 * setup child it forked (0 until then). */
	bool creating;
	pid_t creator_pid, setup_pid;
	unsigned long long creator_start, setup_start;
	struct cgroup *cg;
	struct oci_spec *spec; /* loaded from dir/config.json on demand */
	int lock_fd;
	int record_fd; /* the create's: <dir>/pids */
};

/* Zeroed, with no file open. */
struct oci_state *state_new(void);

/* The longest container id: it names directories (NAME_MAX). */
#define OCI_ID_MAX 255

/* Is id acceptable as a container id (runc: [\w+-.]+, no "." or ".."; at
 * most OCI_ID_MAX characters), checked before any use. */
int state_check_id(const char *id, struct err **e) MUST_CHECK;
/* <root>/<id>, creating <root> as needed. */
int state_dir_path(const char *root, const char *id, char **ret, struct err **e) MUST_CHECK;

/* A directory without state.json (a create killed before its first
 * record) loads as a stopped container that only `delete` can free. */
int state_load(const char *root, const char *id, struct oci_state **ret, struct err **e) MUST_CHECK;
/* The same, with the state lock taken before reading: waits for a create
 * of the container to finish (or die). */
int state_load_locked(const char *root, const char *id, struct oci_state **ret, struct err **e) MUST_CHECK;
/* state.json: what does not change, cgroup paths included. */
int state_save(const struct oci_state *s, struct err **e) MUST_CHECK;
/* <dir>/pids: the stage (creating, created) and the processes' pids. */
int state_record(struct oci_state *s, struct err **e) MUST_CHECK;
/* Load the spec stored beside the state. */
int state_load_spec(struct oci_state *s, struct err **e);
void state_free(struct oci_state *s);

/* Exclusive lock on the container's directory (flock). */
int state_lock(struct oci_state *s, struct err **e) MUST_CHECK;
void state_unlock(struct oci_state *s);

/* creating while the runtime creating it lives; stopped once it died. */
enum oci_status state_status(const struct oci_state *s);

/* The OCI state document (ociVersion, id, status, pid, bundle,
 * annotations) as hooks and seccomp listeners get it, compact. */
char *state_hook_json(const char *id, enum oci_status st, pid_t pid, const char *bundle, const struct oci_spec *spec);

/* runc's `state` output: indented, with rootfs, created and owner. */
struct json_object *state_runc_object(const struct oci_state *s, enum oci_status st);
char *state_runc_json(const struct oci_state *s, enum oci_status st);

/* "2006-01-02T15:04:05.999999999Z" for now, or for ts. */
void state_now_rfc3339(char *buf, size_t size);
struct timespec;
void state_time_rfc3339(const struct timespec *ts, char *buf, size_t size);

#endif
