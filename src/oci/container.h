/*
 * The runtime's internal context for starting a process in a container,
 * shared by create/run (a new container) and exec (a process joining one),
 * and the interfaces of the modules that set the process up.
 *
 * Process tree: the runtime forks a setup child that joins and unshares
 * namespaces (user first) and forks the container process with
 * CLONE_PARENT, so that the container process is the runtime's child and
 * pid 1 of a new pid namespace; the setup child then exits.
 */
#ifndef CASULO_OCI_CONTAINER_H
#define CASULO_OCI_CONTAINER_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"
#include "oci/oci.h"
#include "oci/spec.h"

struct cgroup;
struct oci_state;

struct run_ctx {
	const struct oci_global *g;
	const char *id;
	struct oci_spec *spec;
	const struct oci_process *proc; /* the process to start */
	char *bundle;			/* absolute */
	char *rootfs;			/* absolute */
	char *state_dir;
	bool no_pivot;
	bool no_new_keyring;
	unsigned preserve_fds;
	bool exec_mode; /* joining a running container */
	bool wait_fifo; /* create: wait on exec.fifo; else on SYNC_START */
	int ns_fds[NS_KIND_MAX];
	bool ns_new[NS_KIND_MAX];
	int sock;	  /* sync socket: our end */
	int child_sock;	  /* sync socket: the children's end */
	int fifo_fd;	  /* create: exec.fifo opened O_RDWR */
	int exec_root_fd; /* exec: /proc/PID/root of the container */
	struct cgroup *cg;
	bool console_needed; /* terminal and a console socket or a proxy */
	bool apply_container_seccomp;
	const char *process_label;
	int lock_fd;		  /* the runtime's state lock: closed in the children */
	bool allow_frozen;	  /* exec --ignore-paused: a frozen cgroup is waited for */
	struct oci_state *record; /* create: where the children's pids are recorded */
	int *bind_src_fds;	  /* per mount: its bind source opened before a user namespace, or -1 */
	/* run without a setup child nor anything the runtime does during
	 * setup (init_alone_ok): the container process shares the runtime's
	 * memory until its execve (CLONE_VM | CLONE_VFORK) and sets up alone. */
	bool alone;
	pid_t alone_pid;	     /* its pid, written by the clone (CLONE_PARENT_SETTID) */
	volatile bool alone_execing; /* set just before its execve */
};

/* namespaces.c */
int ns_open_paths(struct run_ctx *c, struct err **e) MUST_CHECK;
/* Exec: open the /proc/PID/ns files of the container for each namespace that
 * differs from ours. */
int ns_open_of_pid(struct run_ctx *c, pid_t pid, struct err **e) MUST_CHECK;
void ns_close_all(struct run_ctx *c);
/* In the setup child: setns all joined, unshare user, sync maps, unshare rest. */
int ns_enter(struct run_ctx *c, struct err **e) MUST_CHECK;
/* In the runtime: write /proc/PID/{uid,gid}_map. */
int ns_write_idmaps(const struct oci_spec *s, pid_t pid, struct err **e) MUST_CHECK;

/* mounts.c */
int rootfs_setup(struct run_ctx *c, struct err **e) MUST_CHECK; /* before pivot_root */
/* A container with a user namespace may not reach the sources of its bind
 * mounts: as runc does, a helper of the runtime enters the container's
 * mount namespace with the runtime's credentials, opens them, and sends
 * them to the container process (c->bind_src_fds there) before it starts
 * its setup. */
bool rootfs_needs_bind_sources(const struct run_ctx *c);
int rootfs_send_bind_sources(struct run_ctx *c, pid_t pid, struct err **e) MUST_CHECK;
int rootfs_pivot(struct run_ctx *c, struct err **e) MUST_CHECK;
/* After pivot_root: read-only root and propagation (rootfs_finalize), then,
 * after sysctls, the read-only and masked paths (rootfs_protect). */
int rootfs_finalize(struct run_ctx *c, struct err **e) MUST_CHECK;
int rootfs_protect(struct run_ctx *c, struct err **e) MUST_CHECK;
/* mount flags parsing (also for unit tests) */
struct mount_opts {
	unsigned long flags; /* MS_* to set */
	unsigned long clear; /* MS_* the options clear */
	unsigned long propagation;
	unsigned long long attr_set, attr_clr; /* recursive MOUNT_ATTR_* */
	bool bind, rbind, tmpcopyup, idmap;
	char *data; /* the options for the filesystem, comma separated */
};
int mount_opts_parse(char *const *options, size_t n, struct mount_opts *ret, struct err **e) MUST_CHECK;
void mount_opts_clear(struct mount_opts *m);

/* devices.c */
int devices_setup(struct run_ctx *c, int rootfd, bool dev_is_bind, struct err **e) MUST_CHECK;
int devices_symlinks(int rootfd, struct err **e) MUST_CHECK;

/* caps.c: drop the bounding set, switch uid/gid, set the other sets. */
int caps_apply_user(const struct oci_process *p, bool has_caps, struct err **e) MUST_CHECK;

/* seccomp.c */
struct seccomp_prepared;
int seccomp_prepare(const struct oci_seccomp *sc, struct seccomp_prepared **ret, struct err **e) MUST_CHECK;
/* Load; *notify_fd gets the listener (or -1). */
int seccomp_load_prepared(struct seccomp_prepared *p, int *notify_fd, struct err **e) MUST_CHECK;
void seccomp_prepared_free(struct seccomp_prepared *p);
/* Runtime side: send the listener to listenerPath with the process state. */
int seccomp_send_listener(const struct oci_seccomp *sc, int fd, const char *id, pid_t pid, const char *bundle,
			  const struct oci_spec *spec, struct err **e) MUST_CHECK;

/* hooks.c: run each hook with the state on stdin; stops at the first failure. */
int hooks_run(const struct oci_spec *s, enum oci_hook_kind kind, const char *state_json, struct err **e) MUST_CHECK;
/* How long the hooks of a kind may take at most, in ms: the sum of their
 * timeouts; -1 when one of them has none. */
long long hooks_timeout_ms(const struct oci_spec *s, enum oci_hook_kind kind);

/* terminal.c */
/* In the container: a new pty whose slave becomes the controlling
 * terminal and stdio; returns the master. */
int terminal_setup(const struct oci_process *p, bool mount_console, int *master, struct err **e) MUST_CHECK;
int terminal_send(const char *socket_path, int master, struct err **e) MUST_CHECK;
/* Foreground without a console socket: copy between our stdio and the
 * master until the child exits; returns its wait status. */
int terminal_proxy(int master, pid_t child, int *wstatus);

/* process.c */
/* Look up args[0] in the container's PATH (after pivot_root). */
int process_find_exec(const struct oci_process *p, char **ret, struct err **e) MUST_CHECK;
/* rlimits, oom score, personality, io priority, scheduler, umask. */
int process_limits(const struct oci_spec *s, const struct oci_process *p, pid_t pid, struct err **e) MUST_CHECK;
/* LSM labels for the next exec. */
int process_labels(const char *apparmor, const char *selinux, struct err **e) MUST_CHECK;
/* Give stdio to the process's user (not /dev/null), as runc does, so that
 * a non-root process can use its console and pipes. */
int process_fix_stdio(uid_t uid, struct err **e) MUST_CHECK;
/* Mark every fd from 3 + preserve on close-on-exec. */
void process_close_fds(unsigned preserve);
/* The environment, with HOME added when missing (runc does). */
char **process_env(const struct oci_process *p);

/* netdev.c: in a new network namespace, lo comes up (as runc does). */
int netdev_loopback_up(struct err **e) MUST_CHECK;
/* netdev.c: move linux.netDevices into pid's network namespace. */
int netdev_move_all(const struct oci_spec *s, pid_t pid, struct err **e) MUST_CHECK;

/* init.c: the two child processes; never return. */
__attribute__((noreturn)) void init_setup_child(struct run_ctx *c);
/* How long the setup child and the container process may take to answer
 * when none of the user's hooks runs meanwhile (they do kernel work:
 * cgroups, namespaces, mounts). */
#define CHILD_STEP_TIMEOUT_MS 120000
/* The exit status of a container process that set up alone and did not
 * finish within CHILD_STEP_TIMEOUT_MS (never one of its own before its
 * execve: those follow a SYNC_ERROR). */
#define ALONE_TIMEOUT_STATUS (128 + SIGALRM)

/* The one-clone path (no setup child) and its child's side. */
bool init_single_clone(const struct run_ctx *c, int *flags);
__attribute__((noreturn)) void init_container_child(struct run_ctx *c, bool in_unified);
/* Whether the container process can set up alone (c->alone), and the
 * clone that makes it so: it returns once the child has called execve or
 * exited; its pid, or -errno. */
bool init_alone_ok(const struct run_ctx *c);
struct clone_args;
pid_t init_clone_alone(struct run_ctx *c, struct clone_args *args, bool in_unified);

/* container.c */
/* A container being made: create, run and restore share the making
 * (config, state, cgroups) and differ in how its process starts. */
struct created {
	struct run_ctx c;
	struct oci_state *st;
	pid_t pid;
	int console_master;
};
/* Starts the container's process once its state and cgroups exist: *pid,
 * and the console's master where there is one (or -1). */
typedef int (*container_start_fn)(struct run_ctx *c, void *arg, pid_t *pid, int *console_master, struct err **e);
int container_create(const struct oci_global *g, const char *id, const struct oci_create_opts *o, bool run_mode,
		     container_start_fn start, void *arg, struct created *out, struct err **e) MUST_CHECK;
void container_created_free(struct created *cr);
/* The foreground end of run and restore: waits for the process (the state
 * unlocked meanwhile) and removes the container unless keep; returns the
 * process's status, *r the removal's result. */
int container_wait_remove(struct created *cr, bool keep, int *r, struct err **e);
/* Start the container or exec process; returns its pid.  On failure
 * everything started is killed. */
int container_spawn(struct run_ctx *c, pid_t *pid, int *console_master, const char *console_socket,
		    struct err **e) MUST_CHECK;
/* run and exec: let the process exec, and wait until it did (or failed). */
int container_start_sync(struct run_ctx *c, struct err **e) MUST_CHECK;
/* Remove processes, cgroups and state, then run the poststop hooks.
 * stuck: the init cannot die yet (SIGKILL pending, frozen elsewhere); a
 * cgroup it still holds is left with a warning instead of an error. */
struct oci_state;
int container_destroy(struct oci_state *st, bool stuck, struct err **e);
/* Until pid (not our child) has exited, at most timeout_ms; 0 or -ETIMEDOUT. */
int container_wait_gone(pid_t pid, unsigned long long start_time, int timeout_ms);
/* SIGKILL a child of ours and reap it, waiting a moment at most: one
 * frozen by a v1 freezer cannot die until its cgroup is thawed (removing
 * the cgroup does that), and is then reaped when we exit. */
void container_kill_child(pid_t pid);
/* Hold every signal but the synchronous ones (our children unblock). */
void container_block_signals(sigset_t *old);
/* --pid-file: pid written atomically (nothing when path is NULL). */
int container_write_pid_file(const char *path, pid_t pid, struct err **e) MUST_CHECK;
/* Wait for a child, forwarding signals; returns the runc exit code. */
int container_wait(pid_t pid, int console_master);

#endif
