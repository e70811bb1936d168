/* libcasulo-vmc's modules: the VMM child (launch.c), the monitor
 * (monitor.c), connections to the agent (client.c). */
#ifndef CASULO_VMC_INTERNAL_H
#define CASULO_VMC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <termios.h>

#include "common/err.h"
#include "vmc/netns.h"
#include "vmc/plan.h"
#include "vmc/stream.h"
#include "vmc/vmc.h"

/* Names in a VM container's state directory (the VMM's working
 * directory: its sockets are named relative to it, so that a long state
 * path never meets sun_path's 108 bytes). */
#define VMC_RECORD "vm.json"
#define VMC_VSOCK "vsock"	  /* the VMM's vsock socket; the agent's boot session is vsock_1025 */
#define VMC_SHARED "shared"	  /* the VMM's share: a tmpfs in its mount namespace */
#define VMC_CONSOLE "console.log" /* the guest's serial console */
#define VMC_VMM_LOG "vmm.log"	  /* casulo-vmm's stderr */
/* How long a VM may take to boot to its agent (the lab is slow). */
#define VMC_BOOT_TIMEOUT_MS 120000
/* The guest's command line: quiet (each console byte is an exit), no
 * crypto self-tests (0.3 s of boot in the lab), a panic reboots at once. */
#define VMC_CMDLINE "console=ttyS0 quiet panic=-1 reboot=k cryptomgr.notests casulo.agent"
/* With CASULO_VM_DEBUG set, the agent says what it does on the console. */
#define VMC_CMDLINE_DEBUG VMC_CMDLINE " casulo.debug"

struct vmc_paths {
	char *vmm, *kernel, *initrd;
};
int vmc_paths_find(const struct vmc_options *vo, struct vmc_paths *p, struct err **e) MUST_CHECK;
void vmc_paths_free(struct vmc_paths *p);

struct vmc_vm {
	pid_t pid;
	int pidfd;
	unsigned long long start_time;
};

/* In the state directory (the caller's working directory): start
 * casulo-vmm with plan's size and shares (bound under VMC_SHARED in a
 * mount namespace of its own, so they go with it), its vsock socket, and
 * the TAP tap_fd (or none, -1) with mac.  It dies with its parent. */
int vmc_vm_start(const struct vmc_paths *paths, const struct vmc_plan *plan, int tap_fd, const uint8_t *mac,
		 struct vmc_vm *vm, struct err **e) MUST_CHECK;

/* In the VMM's mount namespace: share s at target (made here), bound
 * from its host path, or attached from tree (open_tree()'s clone, or -1);
 * NULL or what failed, in msg. */
const char *vmc_share_place(const struct vmc_share *s, const char *target, int tree, char *msg, size_t size);

/* What vm.json holds. */
struct vmc_record {
	pid_t vmm_pid;
	unsigned long long vmm_start;
	char *netns; /* the namespace plugged, and the interface in it */
	char *ifname;
	int guest_pid; /* the container's init in the guest (a pod's sandbox: its namespaces) */
	char *sandbox; /* a pod's container: the sandbox whose VM it is in (no VMM of its own) */
};
int vmc_record_save(const char *state_dir, const struct vmc_record *r, struct err **e) MUST_CHECK;
int vmc_record_load(const char *state_dir, struct vmc_record *r, struct err **e) MUST_CHECK;
void vmc_record_clear(struct vmc_record *r);

/* A pod's VM (pod.c): the sandbox's, which its application containers
 * join. */
struct vmc_pod {
	char sandbox[256]; /* its id */
	char *dir;	   /* its state directory: the VMM's socket and share */
	pid_t vmm_pid;
	int guest_pid; /* the sandbox's init in the guest: the pod's namespaces */
};
/* Is sandbox a container in a VM that id may join?  1 and *pod filled,
 * or 0 (no such sandbox, not in a VM, its VM not running). */
int vmc_pod_find(const struct oci_global *g, const char *sandbox, const char *id, struct vmc_pod *pod);
void vmc_pod_free(struct vmc_pod *pod);
/* The plan's shares bound into the pod VM's share (below c/<id>/). */
int vmc_pod_share(const struct vmc_pod *pod, const struct vmc_plan *plan, struct err **e) MUST_CHECK;
/* ...and taken out again (best effort). */
void vmc_pod_unshare(const struct vmc_pod *pod, const char *id);
/* The state directory whose VMM serves the agent of the container whose
 * state is in state_dir: its own, or its pod's sandbox's (malloc'd). */
int vmc_agent_dir(const struct oci_global *g, const char *state_dir, char **dir, struct err **e) MUST_CHECK;

/* A session with the agent of the container whose state is in state_dir:
 * the VMM's vsock socket, CONNECT VMC_AGENT_PORT. */
int vmc_agent_connect(const char *state_dir, int timeout_ms, struct err **e) MUST_CHECK;
/* One request, one reply, on a session of its own. */
int vmc_agent_call(const char *state_dir, const struct vmc_request *req, int timeout_ms, struct vmc_reply *reply,
		   struct err **e) MUST_CHECK;

/* The local end of a process's stdio, as the monitor relays it. */
struct vmc_stdio {
	int in, out, err; /* -1: none */
	bool terminal;	  /* out carries everything; in is a terminal */
	int winsize_fd;	  /* where SIGWINCH's new size is read, or -1 */
	bool raw;	  /* in was put in raw mode: restore saved */
	struct termios saved;
};
/* For a process with a terminal: a host pty whose master goes to the
 * console socket (the caller's), the slave ours (our controlling
 * terminal, so that resizes come as SIGWINCH), raw; or, without a console
 * socket, our own stdio, a terminal put in raw mode. */
int vmc_stdio_terminal(struct vmc_stdio *io, const char *console_socket, struct err **e) MUST_CHECK;
void vmc_stdio_plain(struct vmc_stdio *io);
void vmc_stdio_restore(struct vmc_stdio *io);

/* The monitor's relay: until the process's EXIT (its status), the end of
 * the VM, or the end of the session.  fifo_fd: create's exec.fifo, read
 * by the monitor (`start` writes it): the agent is then asked to start
 * the container, and the fifo closed once it did (or -1).  start_now:
 * ask at once (run). */
struct vmc_relay {
	const char *id;
	struct vmc_conn conn;
	struct vmc_stdio io;
	int fifo_fd;
	bool start_now;
	struct vmc_vm *vm; /* the VM the process lives in, when we own it */
};
/* Returns the exit status: the process's, or 255 (128+N for a VMM
 * killed by signal N) when the VM or the session ended first, with a
 * message on the process's stderr and in the log. */
int vmc_relay_run(struct vmc_relay *r);

/* Why the VM ended: the guest's panic line in the console, the VMM's
 * status or its last words; *status what the container exits with. */
char *vmc_vm_diagnose(pid_t vmm_pid, int wstatus, int *status);
/* The last line the guest printed on its console (the state directory's
 * console log), control characters blanked; NULL when there is none. */
char *vmc_vm_console_tail(void);

#endif
