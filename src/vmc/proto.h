/*
 * The protocol between casulo-runtime (the host) and the guest agent
 * (casulo-init's agent mode) over vsock: framed byte streams, one session
 * per connection.  Shared by both sides (the agent links this file too).
 *
 * A frame is an 8-byte little-endian header, then its payload:
 *
 *     u32 length of the payload    u16 type    u16 flags (0)
 *
 * Each side checks every header before it reads the payload: the type
 * must be one the peer may send, the flags 0, the length within the
 * type's bound (and exact for fixed-size types).  The JSON payloads
 * (REQUEST, REPLY, HELLO) go through json_doc_parse() and the field
 * checks of vmc_request_parse() / vmc_reply_parse(), which name the field
 * that is wrong.
 *
 * Sessions (docs/vm-containers.md has the sequence):
 *   - boot: the agent connects to host port VMC_BOOT_PORT once it is
 *     ready and sends HELLO; the host answers with REQUEST create, then
 *     the session carries the container init's stdio, signals, resizes,
 *     the start request and finally its EXIT.
 *   - others: the host connects to the agent's VMC_AGENT_PORT and sends
 *     one REQUEST (kill, ps, update, exec, delete); the agent sends one
 *     REPLY; an exec session then carries the process's streams up to its
 *     EXIT.  A REQUEST create there (a pod's further container, in its
 *     sandbox's VM) makes it that container's session, as the boot one
 *     is the first's: start, stdio, signals, its OOM and EXIT.
 */
#ifndef CASULO_VMC_PROTO_H
#define CASULO_VMC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define VMC_AGENT_PORT 1024 /* the agent listens here */
#define VMC_BOOT_PORT 1025  /* the host listens here (the VMM's <vsock socket>_1025) */
#define VMC_GUEST_CID 3

#define VMC_HEADER_SIZE 8
#define VMC_DATA_MAX (64 * 1024)   /* STDIN, STDOUT, STDERR payloads */
#define VMC_JSON_MAX (1024 * 1024) /* REQUEST, REPLY, HELLO payloads */

enum vmc_type {
	VMC_HELLO = 1, /* guest -> host: JSON {"agent": "casulo-init", "version": 1} */
	VMC_REQUEST,   /* host -> guest: JSON, {"op": ...} */
	VMC_REPLY,     /* guest -> host: JSON, {"ok": true, ...} or {"error": "..."} */
	VMC_STDIN,     /* host -> guest: bytes; an empty payload ends the input */
	VMC_STDOUT,    /* guest -> host: bytes (a terminal's output too) */
	VMC_STDERR,    /* guest -> host: bytes */
	VMC_RESIZE,    /* host -> guest: u16 rows, u16 columns */
	VMC_SIGNAL,    /* host -> guest: u32 signal number, 1-64 */
	VMC_EXIT,      /* guest -> host: u32 exit status as a shell sees it, 0-255 */
	VMC_OOM,       /* guest -> host: empty; the process's cgroup there had an OOM kill (before its EXIT) */
	VMC_TYPE_MAX
};

/* Who sends a frame: a receiver accepts only its peer's types. */
enum vmc_side { VMC_FROM_HOST, VMC_FROM_GUEST };

struct vmc_header {
	uint32_t len;
	uint16_t type;
	uint16_t flags;
};

const char *vmc_type_name(unsigned type);

void vmc_header_encode(uint8_t out[VMC_HEADER_SIZE], uint16_t type, uint32_t len);
/* Decode and check a header sent by from; on error *why says what is
 * wrong ("frame type 77 unknown") and -EPROTO is returned. */
int vmc_header_decode(const uint8_t in[VMC_HEADER_SIZE], enum vmc_side from, struct vmc_header *h, char *why,
		      size_t why_size);

/* Fixed-size payloads. */
struct vmc_resize {
	uint16_t rows, cols;
};
void vmc_u32_encode(uint8_t out[4], uint32_t v);
uint32_t vmc_u32_decode(const uint8_t in[4]);
/* The payload of a RESIZE, SIGNAL or EXIT frame, checked (len is exact by
 * then); -EPROTO with *why on a value out of range. */
int vmc_signal_decode(const uint8_t *p, int *sig, char *why, size_t why_size);
int vmc_exit_decode(const uint8_t *p, int *status, char *why, size_t why_size);
int vmc_resize_decode(const uint8_t *p, struct vmc_resize *r, char *why, size_t why_size);

/*
 * A frame reader: bytes in, whole frames out.  The buffer grows to the
 * largest frame the peer may send, never beyond.
 */
struct vmc_reader {
	enum vmc_side from;
	uint8_t *buf;
	size_t cap, have;
	struct vmc_header h;
	bool have_header;
};
void vmc_reader_init(struct vmc_reader *r, enum vmc_side from);
void vmc_reader_free(struct vmc_reader *r);
/* Take up to len bytes of data; *used says how many were taken.  Returns 1
 * with *h and *payload set when a whole frame is ready (valid until the
 * next call), 0 when more bytes are needed, -EPROTO with *why on a bad
 * header, -ENOMEM. */
int vmc_reader_feed(struct vmc_reader *r, const uint8_t *data, size_t len, size_t *used, struct vmc_header *h,
		    const uint8_t **payload, char *why, size_t why_size);

/*
 * The requests the host sends and the agent carries out.
 */
/* Every op but create may name the container (id) among the VM's: a
 * pod's VM holds several; without it, the VM's first.  delete (its id
 * required) removes a stopped container of a pod from the guest. */
enum vmc_op { VMC_OP_CREATE = 1, VMC_OP_START, VMC_OP_KILL, VMC_OP_EXEC, VMC_OP_PS, VMC_OP_UPDATE, VMC_OP_DELETE };

/* The network the container gets in the guest: the guest's eth0 moved
 * into its network namespace with the address its host interface had. */
struct vmc_net {
	bool present;
	char address[16]; /* dotted IPv4 */
	unsigned prefix;  /* 0-32 */
	char gateway[16]; /* "" for none */
	unsigned mtu;	  /* 0: the device's */
};

struct vmc_request {
	enum vmc_op op;
	/* create; the others optionally */
	char *id;
	struct json_object *spec; /* the config.json the guest runs, owned */
	struct vmc_net net;
	/* kill */
	int signal;
	bool all;
	/* exec: the process JSON (--process) or the pieces runc's flags give */
	struct json_object *process; /* NULL when not given, owned */
	char **args, **env, **additional_gids, **caps;
	size_t n_args, n_env, n_additional_gids, n_caps;
	char *cwd, *user, *apparmor, *process_label;
	bool tty, has_tty, no_new_privs;
	unsigned rows, cols; /* the terminal's size, 0 when unknown */
	/* ps: ps options ("-o", "pid,comm") */
	char **ps_args;
	size_t n_ps_args;
	/* update */
	struct json_object *resources; /* owned */
};

/* The bounds on what a request may hold. */
#define VMC_ID_MAX 255
#define VMC_STRINGS_MAX 4096 /* entries of args, env, gids, caps */
#define VMC_STRING_MAX 65536

int vmc_request_parse(const char *text, size_t len, struct vmc_request *r, struct err **e) MUST_CHECK;
void vmc_request_clear(struct vmc_request *r);
/* Serialize (malloc'd, NUL-terminated); NULL on ENOMEM. */
char *vmc_request_format(const struct vmc_request *r);

struct vmc_reply {
	bool ok;
	char *error; /* when !ok: the agent's message, control characters replaced */
	int pid;     /* create, exec: the process's pid in the guest, 0 if none */
	int *pids;   /* ps */
	size_t n_pids;
	char *table; /* ps: the table, as ps prints it */
};
#define VMC_PIDS_MAX 65536

int vmc_reply_parse(const char *text, size_t len, struct vmc_reply *r, struct err **e) MUST_CHECK;
void vmc_reply_clear(struct vmc_reply *r);
char *vmc_reply_format(const struct vmc_reply *r);
/* The agent's HELLO: a JSON object with "agent" and "version" 1. */
int vmc_hello_check(const char *text, size_t len, struct err **e) MUST_CHECK;
char *vmc_hello_format(void);

#endif
