/*
 * libcasulo-oci: an OCI runtime (runc's command line) as a library.  Each
 * verb of casulo-runtime is one call here; errors come back as struct err
 * and the caller prints them once.
 */
#ifndef CASULO_OCI_OCI_H
#define CASULO_OCI_OCI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/err.h"

struct cgroup_resources;

/* Global options (before the verb). */
struct oci_global {
	const char *root; /* state directory root, default /run/casulo-runtime */
	bool systemd_cgroup;
	bool no_cgroups; /* crun's --cgroup-manager=disabled */
	bool debug;
	const char *criu; /* --criu: the criu binary (default: "criu" in PATH) */
};

#define OCI_DEFAULT_ROOT "/run/casulo-runtime"

/* create and run. */
struct oci_create_opts {
	const char *bundle; /* default: current directory */
	const char *config; /* crun's --config: the config file, relative to the bundle */
	const char *console_socket;
	const char *pid_file;
	bool no_pivot;
	bool no_new_keyring;
	unsigned preserve_fds;
	bool detach; /* run: return once started */
	bool keep;   /* run: keep the stopped container */
};

int oci_create(const struct oci_global *g, const char *id, const struct oci_create_opts *o, struct err **e) MUST_CHECK;
/* Foreground run fills *status with the container's exit status (128+N
 * for a signal), as runc's exit code. */
int oci_run(const struct oci_global *g, const char *id, const struct oci_create_opts *o, int *status,
	    struct err **e) MUST_CHECK;
int oci_start(const struct oci_global *g, const char *id, struct err **e) MUST_CHECK;
/* The state as runc prints it (indented JSON). */
int oci_state(const struct oci_global *g, const char *id, char **json, struct err **e) MUST_CHECK;
int oci_kill(const struct oci_global *g, const char *id, int sig, bool all, struct err **e) MUST_CHECK;
int oci_delete(const struct oci_global *g, const char *id, bool force, struct err **e) MUST_CHECK;
int oci_pause(const struct oci_global *g, const char *id, struct err **e) MUST_CHECK;
int oci_resume(const struct oci_global *g, const char *id, struct err **e) MUST_CHECK;

enum oci_list_format { OCI_LIST_TABLE, OCI_LIST_JSON, OCI_LIST_QUIET };
int oci_list(const struct oci_global *g, enum oci_list_format f, FILE *out, struct err **e) MUST_CHECK;

/* Pids of the container's processes (host pid namespace). */
int oci_pids(const struct oci_global *g, const char *id, pid_t **pids, size_t *n, struct err **e) MUST_CHECK;

/* ps's table: `ps ARGS` (`ps -ef` without any) filtered to the rows of
 * pids; args are checked to be plain option words. */
int oci_ps_table(const pid_t *pids, size_t n, char *const *args, size_t n_args, FILE *out, struct err **e) MUST_CHECK;
/* events: the statistics once (stats_only), or a stream of them every
 * interval_ns with OOM events between, until the container's cgroup is
 * gone; runc's JSON, one object per line on out. */
int oci_events(const struct oci_global *g, const char *id, bool stats_only, uint64_t interval_ns, FILE *out,
	       struct err **e) MUST_CHECK;

/* update: r holds only what changes. */
int oci_update(const struct oci_global *g, const char *id, const struct cgroup_resources *r, struct err **e) MUST_CHECK;

struct oci_exec_opts {
	const char *process_file; /* --process: a process JSON */
	const char *console_socket;
	const char *pid_file;
	const char *cwd;
	char **env; /* extra KEY=value, appended */
	size_t n_env;
	bool tty, has_tty;
	const char *user; /* "uid[:gid]" */
	char **additional_gids;
	size_t n_additional_gids;
	char **caps; /* added to all sets but ambient */
	size_t n_caps;
	const char *apparmor, *process_label;
	bool no_new_privs;
	char **cgroups; /* exec --cgroup: "path" or "ctrl[,ctrl]:path" sub-cgroups */
	size_t n_cgroups;
	bool detach;
	bool ignore_paused;
	unsigned preserve_fds;
	char **args; /* command, when no --process */
	size_t n_args;
};
int oci_exec(const struct oci_global *g, const char *id, const struct oci_exec_opts *o, int *status,
	     struct err **e) MUST_CHECK;

/* checkpoint and restore through CRIU, with runc's options. */
struct oci_criu_opts {
	const char *image_path;		 /* default: ./checkpoint */
	const char *work_path;		 /* default: the image path */
	const char *parent_path;	 /* checkpoint: the pre-dump before, relative to the image path */
	const char *manage_cgroups_mode; /* soft, full, strict, ignore */
	const char *empty_ns;		 /* "network" */
	bool leave_running, pre_dump, tcp_established, ext_unix_sk, shell_job, file_locks, auto_dedup, lazy_pages;
};
int oci_checkpoint(const struct oci_global *g, const char *id, const struct oci_criu_opts *o,
		   struct err **e) MUST_CHECK;
/* co: the bundle, --pid-file, --detach, ...; in the foreground *status is
 * the restored process's exit status. */
int oci_restore(const struct oci_global *g, const char *id, const struct oci_create_opts *co,
		const struct oci_criu_opts *o, int *status, struct err **e) MUST_CHECK;

/* features: the runtime-spec features document. */
int oci_features(char **json, struct err **e) MUST_CHECK;
/* spec: a default config.json (rootless: with a user namespace). */
int oci_spec_default(bool rootless, char **json, struct err **e) MUST_CHECK;

#endif
