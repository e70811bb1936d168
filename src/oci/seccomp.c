/*
 * linux.seccomp through libseccomp: every action (errno, kill, trap,
 * trace, log, notify with listenerPath), argument comparisons, the
 * architectures and the filter flags.  The filter is built (and so
 * checked) before the container reports ready, and loaded at the end.
 *
 * As runc does, a filter whose default action refuses gets a stub in
 * front of libseccomp's program: a syscall numbered above every syscall
 * the profile names (for the architecture of the call) fails with ENOSYS,
 * not the default action, so that a program calling a syscall newer than
 * the profile (clone3, say) sees "not implemented" and falls back to the
 * old one, as it would on an older kernel.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <ctype.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "common/log.h"
#include "common/macro.h"
#include "oci/container.h"
#include "oci/state.h"
#include "oci/sync.h"

#define MAX_ARCHES 16

struct seccomp_prepared {
	scmp_filter_ctx ctx;
	bool stub; /* the -ENOSYS stub goes in front */
	uint32_t arch[MAX_ARCHES];
	int32_t last[MAX_ARCHES]; /* the highest syscall number named, per arch; -1: none */
	size_t n_arches;
	unsigned flags; /* SECCOMP_FILTER_FLAG_* */
	bool notify;	/* a rule notifies: the filter comes with a listener */
};

static uint32_t real_action(uint32_t act, bool has_errno, uint32_t errno_ret)
{
	if (act == SCMP_ACT_ERRNO(0))
		return SCMP_ACT_ERRNO(has_errno ? errno_ret : EPERM);
	if (act == SCMP_ACT_TRACE(0))
		return SCMP_ACT_TRACE(has_errno ? errno_ret : EPERM);
	return act;
}

static int add_rule(scmp_filter_ctx ctx, const struct oci_seccomp_rule *rule, uint32_t act, int nr, const char *name,
		    struct err **e)
{
	struct scmp_arg_cmp cmps[6];
	bool repeated = false;
	unsigned seen = 0;
	int r;

	for (size_t i = 0; i < rule->n_args && i < 6; i++) {
		cmps[i] = (struct scmp_arg_cmp){.arg = rule->args[i].index,
						.op = (enum scmp_compare)rule->args[i].op,
						.datum_a = rule->args[i].value,
						.datum_b = rule->args[i].value_two};
		repeated |= seen & (1u << rule->args[i].index);
		seen |= 1u << rule->args[i].index;
	}
	if (rule->n_args > 6)
		return err_setx(e, EINVAL, "linux.seccomp: syscall '%s': more than 6 argument conditions", name);
	if (!repeated) {
		r = seccomp_rule_add_array(ctx, act, nr, (unsigned)rule->n_args, cmps);
	} else {
		/* Several conditions on one argument: one rule each (runc's way). */
		r = 0;
		for (size_t i = 0; i < rule->n_args && r == 0; i++)
			r = seccomp_rule_add_array(ctx, act, nr, 1, &cmps[i]);
	}
	if (r < 0)
		return err_set(e, -r, "linux.seccomp: syscall '%s': add rule", name);
	return 0;
}

static bool refuses(uint32_t def, const struct oci_seccomp *sc)
{
	if (def == SCMP_ACT_ALLOW || def == SCMP_ACT_LOG)
		return false;
	/* A default errno of ENOSYS says it already. */
	return !(sc->has_default_errno && sc->default_errno == ENOSYS && def == SCMP_ACT_ERRNO(ENOSYS));
}

/* The architectures the profile lists, and the highest syscall number it
 * names for each (what libseccomp does not know is left out).  As runc's,
 * a profile that lists no architecture gets no stub. */
static void plan_stub(struct seccomp_prepared *p, const struct oci_seccomp *sc, uint32_t def)
{
	p->n_arches = 0;
	for (size_t i = 0; i < sc->n_architectures && p->n_arches < MAX_ARCHES; i++) {
		char lower[64];
		size_t j;
		const char *a = sc->architectures[i] + 10;
		uint32_t token;
		bool dup = false;
		for (j = 0; a[j] && j < sizeof(lower) - 1; j++)
			lower[j] = (char)tolower((unsigned char)a[j]);
		lower[j] = '\0';
		token = seccomp_arch_resolve_name(lower);
		for (size_t k = 0; k < p->n_arches; k++)
			dup |= p->arch[k] == token;
		if (token && !dup)
			p->arch[p->n_arches++] = token;
	}
	for (size_t k = 0; k < p->n_arches; k++) {
		p->last[k] = -1;
		for (size_t i = 0; i < sc->n_rules; i++)
			for (size_t j = 0; j < sc->rules[i].n_names; j++) {
				int nr = seccomp_syscall_resolve_name_arch(p->arch[k], sc->rules[i].names[j]);
				if (nr >= 0 && nr > p->last[k])
					p->last[k] = nr;
			}
	}
	p->stub = refuses(def, sc);
	p->notify = sc->uses_notify;
}

int seccomp_prepare(const struct oci_seccomp *sc, struct seccomp_prepared **ret, struct err **e)
{
	uint32_t def = real_action(sc->default_action, sc->has_default_errno, sc->default_errno);
	struct seccomp_prepared *p;
	int r;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return err_set(e, ENOMEM, "linux.seccomp");
	p->ctx = seccomp_init(def);
	if (p->ctx == NULL) {
		free(p);
		return err_setx(e, EINVAL, "linux.seccomp: seccomp_init with the default action failed");
	}
	/* No no_new_privs from libseccomp: process.noNewPrivileges decides. */
	if ((r = seccomp_attr_set(p->ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
		goto fail_attr;
	for (size_t i = 0; i < sc->n_architectures; i++) {
		char lower[64];
		size_t j;
		const char *a = sc->architectures[i] + 10;
		for (j = 0; a[j] && j < sizeof(lower) - 1; j++)
			lower[j] = (char)tolower((unsigned char)a[j]);
		lower[j] = '\0';
		r = seccomp_arch_add(p->ctx, seccomp_arch_resolve_name(lower));
		if (r < 0 && r != -EEXIST) {
			seccomp_prepared_free(p);
			return err_set(e, -r, "linux.seccomp.architectures: add '%s'", sc->architectures[i]);
		}
	}
	for (size_t i = 0; i < sc->n_flags; i++) {
		p->flags |= strcmp(sc->flags[i], "SECCOMP_FILTER_FLAG_TSYNC") == 0 ? SECCOMP_FILTER_FLAG_TSYNC
			    : strcmp(sc->flags[i], "SECCOMP_FILTER_FLAG_LOG") == 0 ? SECCOMP_FILTER_FLAG_LOG
										   : SECCOMP_FILTER_FLAG_SPEC_ALLOW;
	}
	for (size_t i = 0; i < sc->n_flags; i++) {
		enum scmp_filter_attr attr =
		    strcmp(sc->flags[i], "SECCOMP_FILTER_FLAG_TSYNC") == 0 ? SCMP_FLTATR_CTL_TSYNC
		    : strcmp(sc->flags[i], "SECCOMP_FILTER_FLAG_LOG") == 0 ? SCMP_FLTATR_CTL_LOG
									   : SCMP_FLTATR_CTL_SSB;
		if ((r = seccomp_attr_set(p->ctx, attr, 1)) < 0) {
			seccomp_prepared_free(p);
			return err_set(e, -r, "linux.seccomp.flags: '%s'", sc->flags[i]);
		}
	}
	for (size_t i = 0; i < sc->n_rules; i++) {
		const struct oci_seccomp_rule *rule = &sc->rules[i];
		uint32_t act = real_action(rule->action, rule->has_errno, rule->errno_ret);

		if (act == def)
			continue; /* libseccomp refuses a rule equal to the default */
		for (size_t j = 0; j < rule->n_names; j++) {
			int nr = seccomp_syscall_resolve_name(rule->names[j]);
			if (nr == __NR_SCMP_ERROR) {
				log_debug("linux.seccomp: unknown syscall '%s', ignored", rule->names[j]);
				continue;
			}
			if ((r = add_rule(p->ctx, rule, act, nr, rule->names[j], e)) < 0) {
				seccomp_prepared_free(p);
				return err_wrap(e, "linux.seccomp.syscalls[%zu]", i);
			}
		}
	}
	plan_stub(p, sc, def);
	*ret = p;
	return 0;
fail_attr:
	seccomp_prepared_free(p);
	return err_set(e, -r, "linux.seccomp: set filter attribute");
}

#define STMT(c, k) ((struct sock_filter){(uint16_t)(c), 0, 0, (uint32_t)(k)})
#define JUMP(c, k, t, f) ((struct sock_filter){(uint16_t)(c), (uint8_t)(t), (uint8_t)(f), (uint32_t)(k)})

/* The stub, then libseccomp's program (exported as BPF), loaded with
 * seccomp(2) itself.  *notify_fd: the listener when the filter notifies. */
static int load_with_stub(struct seccomp_prepared *p, int *notify_fd, struct err **e)
{
	_cleanup_close_ int memfd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
	_cleanup_free_ struct sock_filter *prog = NULL;
	struct sock_fprog fprog;
	struct stat st;
	size_t n = 0, n_arches = 0, orig_len, cap;
	unsigned flags = p->flags;
	int r;

	if (memfd < 0)
		return err_set(e, errno, "linux.seccomp: memfd for the filter");
	if ((r = seccomp_export_bpf(p->ctx, memfd)) < 0)
		return err_set(e, -r, "linux.seccomp: export the filter");
	if (fstat(memfd, &st) < 0 || st.st_size <= 0 || st.st_size % sizeof(struct sock_filter))
		return err_setx(e, EIO, "linux.seccomp: the exported filter is malformed");
	orig_len = (size_t)st.st_size / sizeof(struct sock_filter);
	for (size_t k = 0; k < p->n_arches; k++)
		n_arches += p->last[k] >= 0;
	/* ld arch; a jeq per arch; ja to libseccomp's; per arch: ld nr,
	 * jset (x86_64's x32 bit), jgt; ret ENOSYS. */
	cap = 2 + n_arches * 4 + 1 + orig_len;
	if (cap > BPF_MAXINSNS)
		return err_setx(e, E2BIG, "linux.seccomp: the filter has more than %d instructions", BPF_MAXINSNS);
	prog = calloc(cap, sizeof(*prog));
	if (prog == NULL)
		return err_set(e, ENOMEM, "linux.seccomp");
	{
		size_t jumps = 1, blocks = jumps + n_arches + 1, block = blocks, orig, enosys;
		size_t k2 = 0;
		/* Block sizes first: 3 instructions, 4 with the x32 test. */
		size_t size[MAX_ARCHES];
		for (size_t k = 0; k < p->n_arches; k++)
			if (p->last[k] >= 0)
				size[k2++] = p->arch[k] == SCMP_ARCH_X86_64 ? 3 : 2;
		enosys = blocks;
		for (size_t k = 0; k < k2; k++)
			enosys += size[k];
		orig = enosys + 1;
		prog[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
		k2 = 0;
		for (size_t k = 0; k < p->n_arches; k++) {
			if (p->last[k] < 0)
				continue;
			prog[n] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, p->arch[k], block - n - 1, 0);
			n++;
			block += size[k2++];
		}
		prog[n] = STMT(BPF_JMP | BPF_JA, orig - n - 1);
		n++;
		for (size_t k = 0; k < p->n_arches; k++) {
			if (p->last[k] < 0)
				continue;
			prog[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
			/* x32's calls carry this bit: libseccomp's program judges them. */
			if (p->arch[k] == SCMP_ARCH_X86_64) {
				prog[n] = JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x40000000, orig - n - 1, 0);
				n++;
			}
			prog[n] = JUMP(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)p->last[k], enosys - n - 1, orig - n - 1);
			n++;
		}
		prog[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
	}
	if (pread(memfd, prog + n, orig_len * sizeof(*prog), 0) != (ssize_t)(orig_len * sizeof(*prog)))
		return err_set(e, errno ? errno : EIO, "linux.seccomp: read the exported filter");
	n += orig_len;
	fprog = (struct sock_fprog){.len = (unsigned short)n, .filter = prog};
	if (p->notify)
		flags = (flags & ~SECCOMP_FILTER_FLAG_TSYNC) | SECCOMP_FILTER_FLAG_NEW_LISTENER;
	r = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog);
	if (r < 0)
		return err_set(e, errno, "linux.seccomp: load the filter");
	if (p->notify)
		*notify_fd = r;
	return 0;
}

int seccomp_load_prepared(struct seccomp_prepared *p, int *notify_fd, struct err **e)
{
	bool any = false;
	int r;

	*notify_fd = -1;
	for (size_t k = 0; k < p->n_arches; k++)
		any |= p->last[k] >= 0;
	if (p->stub && any)
		return load_with_stub(p, notify_fd, e);
	r = seccomp_load(p->ctx);
	if (r < 0)
		return err_set(e, -r, "linux.seccomp: load the filter");
	r = seccomp_notify_fd(p->ctx);
	if (r >= 0)
		*notify_fd = r;
	return 0;
}

void seccomp_prepared_free(struct seccomp_prepared *p)
{
	if (p == NULL)
		return;
	seccomp_release(p->ctx);
	free(p);
}

int seccomp_send_listener(const struct oci_seccomp *sc, int fd, const char *id, pid_t pid, const char *bundle,
			  const struct oci_spec *spec, struct err **e)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	_cleanup_free_ char *state = state_hook_json(id, STATUS_CREATING, pid, bundle, spec);
	_cleanup_free_ char *msg = NULL;
	_cleanup_close_ int sock = -1;
	int r;

	if (strlen(sc->listener_path) >= sizeof(addr.sun_path))
		return err_setx(e, ENAMETOOLONG, "linux.seccomp.listenerPath '%s': path too long", sc->listener_path);
	strcpy(addr.sun_path, sc->listener_path);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return err_set(e, errno, "linux.seccomp.listenerPath '%s': socket", sc->listener_path);
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return err_set(e, errno,
			       "failed to connect with seccomp agent specified in the seccomp profile "
			       "(linux.seccomp.listenerPath '%s'): connect",
			       sc->listener_path);
	/* Metadata is opaque text: refuse what would break the JSON. */
	if (sc->listener_metadata && strpbrk(sc->listener_metadata, "\"\\\n"))
		return err_setx(e, EINVAL,
				"linux.seccomp.listenerMetadata: quotes, backslashes and newlines are not supported");
	/* The containerProcessState of the runtime spec. */
	if (asprintf(&msg,
		     "{\"ociVersion\":\"1.1.0\",\"fds\":[\"seccompFd\"],\"pid\":%d,\"metadata\":\"%s\",\"state\":%s}",
		     (int)pid, sc->listener_metadata ? sc->listener_metadata : "", state ? state : "{}") < 0)
		return err_set(e, ENOMEM, "linux.seccomp.listenerPath");
	r = fd_send(sock, msg, strlen(msg), fd);
	if (r < 0)
		return err_set(e, -r, "linux.seccomp.listenerPath '%s': send the listener", sc->listener_path);
	return 0;
}
