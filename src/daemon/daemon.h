/*
 * casulod: one management service for VMs and containers (docs/casulod.md).
 *
 * It keeps definitions in SQLite (store.h), runs each VM as its own
 * casulo-vmm and each container as a casulo-runtime container, each under
 * a shim that outlives casulod (shim.h), and serves the API of
 * docs/casulod-api.yaml on a Unix socket and, optionally, TCP with TLS.
 * A casulod started again (after SIGKILL, say) finds the shims through
 * their files in the run directory and takes them back.
 */
#ifndef CASULO_DAEMON_DAEMON_H
#define CASULO_DAEMON_DAEMON_H

#include <stdbool.h>

#include "common/err.h"

#define DAEMON_DEFAULT_STATE_DIR "/var/lib/casulod"
#define DAEMON_DEFAULT_RUN_DIR "/run/casulod"
#define DAEMON_SOCKET_NAME "casulod.sock"

struct daemon_config {
	const char *state_dir;	 /* definitions (casulod.db), container bundles, console logs */
	const char *run_dir;	 /* sockets and shims' files: a tmpfs, gone at reboot */
	const char *socket_path; /* default RUN_DIR/casulod.sock */
	const char *group;	 /* the socket's group (members may use the API); NULL: "casulo" if it exists */
	const char *image_root;	 /* libcasulo-image's store, default /var/lib/casulo */
	const char *listen;	 /* "HOST:PORT" for HTTPS, or NULL */
	const char *tls_cert, *tls_key, *token_file;
	const char *vmm, *runtime, *shim; /* the programs run; default beside casulod's own */
	const char *guest_dir;		  /* the default guest (VMs without a kernel) */
	const char
	    *snapshot_dir; /* where VM snapshots may go (each VMM's --snapshot-dir); default STATE_DIR/snapshots */
	const char *dashboard_dir; /* the web dashboard's files, or NULL for none */
	double exec_time;	   /* CLOCK_MONOTONIC when casulod was executed, for the reattach time */
};

/* Run until SIGTERM or SIGINT (instances keep running).  Fails with the
 * reason when it cannot start: another casulod holds the state directory,
 * a socket cannot be made, TLS without its files... */
int daemon_run(const struct daemon_config *c, struct err **e) MUST_CHECK;

#endif
