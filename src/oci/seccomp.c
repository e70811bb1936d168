/*
 * linux.seccomp through libseccomp: every action (errno, kill, trap,
 * trace, log, notify with listenerPath), argument comparisons, the
 * architectures and the filter flags.  The filter is built (and so
 * checked) before the container reports ready, and loaded at the end.
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

#include "common/log.h"
#include "common/macro.h"
#include "oci/container.h"
#include "oci/state.h"
#include "oci/sync.h"

struct seccomp_prepared {
	scmp_filter_ctx ctx;
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
	*ret = p;
	return 0;
fail_attr:
	seccomp_prepared_free(p);
	return err_set(e, -r, "linux.seccomp: set filter attribute");
}

int seccomp_load_prepared(struct seccomp_prepared *p, int *notify_fd, struct err **e)
{
	int r = seccomp_load(p->ctx);

	*notify_fd = -1;
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
		return err_set(e, errno, "linux.seccomp.listenerPath '%s': connect", sc->listener_path);
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
