/*
 * The shim: one small process per running VM or container, between
 * casulod and the workload (casulo-vmm, or casulo-runtime run), so that
 * workloads outlive casulod.  casulod starts it detached (its own session,
 * reparented to init); the shim starts the workload, keeps its console
 * and records how it ended:
 *
 *   DIR/shim.pid      "shim PID START\nworkload PID START\nboot BOOT_ID\n",
 *                     written once the workload runs (START: field 22 of
 *                     /proc/PID/stat; with the boot id, a process's
 *                     identity, which a reused pid does not have)
 *   DIR/console.sock  the console: what the workload writes (stdout, and
 *                     stderr unless --stderr) goes to every client; what a
 *                     client writes goes to its stdin.  casulod is the
 *                     client and decides who may write.
 *   LOG               the console's output, appended (rotated to LOG.1 at
 *                     --log-max), for `casulo logs`
 *   DIR/exit          "STATUS\n" once the workload has ended (its exit
 *                     status, 128+N for signal N), written atomically;
 *                     then the shim exits
 *
 * The workload gets PR_SET_PDEATHSIG(SIGKILL): a shim killed outright
 * takes its workload with it rather than leave it unsupervised.  SIGTERM,
 * SIGINT and SIGHUP do not end the shim; it ends with its workload.
 */
#ifndef CASULO_DAEMON_SHIM_H
#define CASULO_DAEMON_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "daemon/proc.h"

#define SHIM_STATE_FILE "shim.pid"
#define SHIM_EXIT_FILE "exit"
#define SHIM_CONSOLE_SOCKET "console.sock"
#define SHIM_LOG_MAX_DEFAULT (1u << 20)

struct shim_opts {
	const char *dir;	    /* DIR above */
	const char *log;	    /* LOG above */
	uint64_t log_max;	    /* bytes before LOG is rotated */
	const char *stderr_file;    /* the workload's stderr, or NULL: the console */
	const char *overlay_target; /* mount an overlay here first, in a mount namespace of the shim's own */
	const char *overlay_options;
	int ready_fd; /* gets "ok PID\n" once the workload runs, or "error MESSAGE\n" */
	char **argv;  /* the workload */
};

/* The shim's whole life (casulod-shim's main): returns its exit status. */
int shim_main(const struct shim_opts *o);

/* Parse casulod-shim's command line into o (argv kept, not copied). */
int shim_parse_args(int argc, char **argv, struct shim_opts *o, struct err **e) MUST_CHECK;

/* casulod's side: start the shim binary detached with o (ready_fd unused),
 * wait until it says the workload runs (at most timeout_s), *shim_pid
 * being its pid.  A shim or workload that fails to start is an error with
 * its message. */
int shim_spawn(const char *shim_binary, const struct shim_opts *o, double timeout_s, pid_t *shim_pid,
	       struct err **e) MUST_CHECK;

struct shim_state {
	pid_t shim_pid, workload_pid;
	uint64_t shim_start, workload_start;
	char boot_id[BOOT_ID_LEN];
};

/* Read DIR/shim.pid: 0, -ENOENT when there is none, -EINVAL when garbled. */
int shim_read_state(const char *dir, struct shim_state *st);

/* Read DIR/exit: 0 and *status, or -ENOENT. */
int shim_read_exit(const char *dir, int *status);

#endif
