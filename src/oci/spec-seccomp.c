/* config.json: linux.seccomp. */
#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "oci/json-util.h"
#include "oci/spec-internal.h"

#define BAD(e, ...) err_setx(e, EINVAL, "config.json: " __VA_ARGS__)

static int parse_action(json_object *o, const char *where, const char *key, uint32_t *ret, bool required,
			struct err **e)
{
	_cleanup_free_ char *name = NULL;
	int r = ju_string(o, where, key, &name, e);

	if (r < 0)
		return r;
	if (name == NULL)
		return required ? BAD(e, "%s.%s: required", where, key) : 0;
	if (spec_seccomp_action_from_name(name, ret) < 0)
		return BAD(e, "%s.%s: unknown action '%s'", where, key, name);
	return 0;
}

static int parse_op(const char *name, int *ret)
{
	static const struct {
		const char *name;
		int op;
	} ops[] = {
	    {"SCMP_CMP_NE", SCMP_CMP_NE},
	    {"SCMP_CMP_LT", SCMP_CMP_LT},
	    {"SCMP_CMP_LE", SCMP_CMP_LE},
	    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
	    {"SCMP_CMP_GE", SCMP_CMP_GE},
	    {"SCMP_CMP_GT", SCMP_CMP_GT},
	    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
	};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(name, ops[i].name) == 0) {
			*ret = ops[i].op;
			return 0;
		}
	}
	return -1;
}

static int arg_item(json_object *a, const char *w, void *elem, void *ctx, struct err **e)
{
	struct oci_seccomp_arg *arg = elem;
	_cleanup_free_ char *op = NULL;
	uint32_t index = 0;
	bool has_index = false, has_value = false;
	int r;

	(void)ctx;
	if ((r = ju_uint32(a, w, "index", &index, &has_index, e)) < 0 ||
	    (r = ju_uint64(a, w, "value", &arg->value, &has_value, e)) < 0 ||
	    (r = ju_uint64(a, w, "valueTwo", &arg->value_two, NULL, e)) < 0 || (r = ju_string(a, w, "op", &op, e)) < 0)
		return r;
	if (!has_index || !has_value || op == NULL)
		return BAD(e, "%s: index, value and op are required", w);
	if (index > 5)
		return BAD(e, "%s.index: %u is not a syscall argument (0..5)", w, index);
	arg->index = index;
	if (parse_op(op, &arg->op) < 0)
		return BAD(e, "%s.op: unknown operator '%s'", w, op);
	return 0;
}

static int rule_item(json_object *o, const char *where, void *elem, void *ctx, struct err **e)
{
	struct oci_seccomp_rule *rule = elem;
	struct oci_seccomp *sc = ctx;
	int r;

	if ((r = ju_string_array(o, where, "names", &rule->names, &rule->n_names, e)) < 0 ||
	    (r = parse_action(o, where, "action", &rule->action, true, e)) < 0 ||
	    (r = ju_uint32(o, where, "errnoRet", &rule->errno_ret, &rule->has_errno, e)) < 0)
		return r;
	if (rule->n_names == 0)
		return BAD(e, "%s.names: required, with at least one syscall", where);
	if (rule->has_errno && rule->action != SCMP_ACT_ERRNO(0) && rule->action != SCMP_ACT_TRACE(0))
		return BAD(e, "%s.errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE", where);
	if (rule->action == SCMP_ACT_NOTIFY) {
		sc->uses_notify = true;
		/* The runtime's own writes would wait for an agent that waits for
		 * the runtime (runc refuses it too, in these words). */
		for (size_t i = 0; i < rule->n_names; i++)
			if (strcmp(rule->names[i], "write") == 0)
				return BAD(e, "%s: SCMP_ACT_NOTIFY cannot be used for the write syscall", where);
	}
	return ju_object_array(o, where, "args", sizeof(*rule->args), (void **)&rule->args, &rule->n_args, arg_item,
			       NULL, e);
}

int spec_seccomp_from_json(json_object *linux_o, struct oci_spec *s, struct err **e)
{
	json_object *o;
	struct oci_seccomp *sc;
	int r = ju_object(linux_o, "linux", "seccomp", &o, e);

	if (r < 0 || o == NULL)
		return r;
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return err_set(e, ENOMEM, "config.json: linux.seccomp");
	s->seccomp = sc;
	if ((r = parse_action(o, "linux.seccomp", "defaultAction", &sc->default_action, true, e)) < 0 ||
	    (r = ju_uint32(o, "linux.seccomp", "defaultErrnoRet", &sc->default_errno, &sc->has_default_errno, e)) < 0 ||
	    (r = ju_string_array(o, "linux.seccomp", "architectures", &sc->architectures, &sc->n_architectures, e)) <
		0 ||
	    (r = ju_string_array(o, "linux.seccomp", "flags", &sc->flags, &sc->n_flags, e)) < 0 ||
	    (r = ju_string(o, "linux.seccomp", "listenerPath", &sc->listener_path, e)) < 0 ||
	    (r = ju_string(o, "linux.seccomp", "listenerMetadata", &sc->listener_metadata, e)) < 0)
		return r;
	if (sc->has_default_errno && sc->default_action != SCMP_ACT_ERRNO(0) && sc->default_action != SCMP_ACT_TRACE(0))
		return BAD(e, "linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
	if (sc->default_action == SCMP_ACT_NOTIFY)
		return BAD(e, "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
	for (size_t i = 0; i < sc->n_architectures; i++) {
		const char *a = sc->architectures[i];
		char lower[64];
		size_t j;

		if (strncmp(a, "SCMP_ARCH_", 10) != 0 || strlen(a) - 10 >= sizeof(lower))
			return BAD(e, "linux.seccomp.architectures[%zu]: unknown architecture '%s'", i, a);
		for (j = 0; a[10 + j]; j++)
			lower[j] = (char)tolower((unsigned char)a[10 + j]);
		lower[j] = '\0';
		if (seccomp_arch_resolve_name(lower) == 0)
			return BAD(e, "linux.seccomp.architectures[%zu]: unknown architecture '%s'", i, a);
	}
	for (size_t i = 0; i < sc->n_flags; i++) {
		bool known = false;
		for (const char *const *f = spec_seccomp_flag_names; *f; f++)
			known |= strcmp(*f, sc->flags[i]) == 0;
		if (!known)
			return BAD(e, "linux.seccomp.flags[%zu]: unknown flag '%s'", i, sc->flags[i]);
	}
	if ((r = ju_object_array(o, "linux.seccomp", "syscalls", sizeof(*sc->rules), (void **)&sc->rules, &sc->n_rules,
				 rule_item, sc, e)) < 0)
		return r;
	/* Without a notifying rule there is no listener to send: runc ignores
	 * the path with a warning, and so do we. */
	if (sc->listener_path && sc->listener_path[0] && !sc->uses_notify) {
		log_warn("config.json: linux.seccomp.listenerPath '%s': no rule uses SCMP_ACT_NOTIFY: ignored",
			 sc->listener_path);
		free(sc->listener_path);
		sc->listener_path = NULL;
	}
	if (sc->uses_notify && (sc->listener_path == NULL || sc->listener_path[0] == '\0'))
		return BAD(e, "linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY");
	return 0;
}

void spec_seccomp_free(struct oci_seccomp *sc)
{
	if (sc == NULL)
		return;
	strv_free(sc->architectures);
	strv_free(sc->flags);
	free(sc->listener_path);
	free(sc->listener_metadata);
	for (size_t i = 0; i < sc->n_rules; i++) {
		strv_free(sc->rules[i].names);
		free(sc->rules[i].args);
	}
	free(sc->rules);
	free(sc);
}
