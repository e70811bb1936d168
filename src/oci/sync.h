/*
 * Messages between the runtime and the processes it forks (the namespace
 * setup child and the container init), over a SOCK_SEQPACKET socketpair:
 * a type, a small payload and at most one passed file descriptor.
 */
#ifndef CASULO_OCI_SYNC_H
#define CASULO_OCI_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum sync_type {
	SYNC_USERNS = 1,   /* child -> runtime: namespaces joined/unshared, set maps and cgroups */
	SYNC_USERNS_DONE,  /* runtime -> child */
	SYNC_PID,	   /* child -> runtime: payload pid of the container init */
	SYNC_INIT_GO,	   /* runtime -> init: start setting up */
	SYNC_HOOKS,	   /* init -> runtime: run prestart and createRuntime hooks */
	SYNC_HOOKS_DONE,   /* runtime -> init */
	SYNC_CONSOLE,	   /* init -> runtime: fd of the pty master */
	SYNC_SECCOMP,	   /* init -> runtime: fd of the seccomp listener */
	SYNC_FD_DONE,	   /* runtime -> init: fd forwarded */
	SYNC_READY,	   /* init -> runtime: set up, waiting for start */
	SYNC_START,	   /* runtime -> init (run, exec): go */
	SYNC_ERROR,	   /* child -> runtime: payload "code" + message */
	SYNC_MOUNT_SOURCE, /* runtime -> init, before SYNC_INIT_GO: payload mount index, fd its bind source */
};

#define SYNC_MAX_PAYLOAD 8192

int sync_send(int fd, uint32_t type, const void *data, size_t len, int pass_fd);
/* Receive one message; -EPIPE when the peer closed its end.  *recv_fd is
 * -1 when no fd came. */
int sync_recv(int fd, uint32_t *type, void *buf, size_t cap, size_t *len, int *recv_fd);
/* Send data with an fd attached, without our header (console socket,
 * seccomp listener). */
int fd_send(int sock, const void *data, size_t len, int fd);
/* From now on, messages without an fd go with write(2) and read(2): the
 * container process calls it once its seccomp filter is on, so that it
 * needs no more than a profile allows whenever it allows anything (as
 * runc's init, which talks over a pipe); SIGPIPE, should the runtime be
 * gone, ends it.  A runtime whose container process shared its memory
 * until execve (CLONE_VM) turns it off again. */
void sync_use_read_write(bool on);
/* Child side: report an error and return. */
void sync_send_error(int fd, const struct err *e);
/* Runtime side: a SYNC_ERROR's payload of n bytes (an int code, then the
 * message) as *e; what names the child when the payload is too short. */
int sync_error_decode(const void *data, size_t n, const char *what, struct err **e);
/* Runtime side: receive and demand type; SYNC_ERROR becomes *e. */
int sync_expect(int fd, uint32_t type, void *buf, size_t cap, size_t *len, int *recv_fd, const char *what,
		struct err **e);

#endif
