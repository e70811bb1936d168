/*
 * Fuzz target: the runtime's config.json parser (src/oci/spec*.c through
 * json_doc_parse()), JSON text into the validated struct oci_spec, and the
 * pure work the runtime then does with a spec before touching the system:
 * mount options, the device cgroup rules and their eBPF program, the
 * state document handed to hooks.  Whatever the input, the parser either
 * accepts it or says why, naming config.json; it never crashes or leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oci/cgroups.h"
#include "oci/container.h"
#include "oci/spec.h"
#include "oci/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the runtime computes from a valid spec before it changes anything. */
static void use_spec(const struct oci_spec *s)
{
	struct cgroup_device_rule *rules = NULL;
	struct bpf_insn *prog = NULL;
	size_t n = 0, len = 0;
	char *state;

	for (size_t i = 0; i < s->n_mounts; i++) {
		struct mount_opts mo;
		struct err *e = NULL;
		if (mount_opts_parse(s->mounts[i].options, s->mounts[i].n_options, &mo, &e) == 0)
			mount_opts_clear(&mo);
		else if (e == NULL || e->msg == NULL)
			abort(); /* a failure always says why */
		err_free(&e);
	}
	if (cgroups_device_rules(s->has_resources ? &s->resources : NULL, s->devices, s->n_devices, &rules, &n) == 0) {
		if (cgroup_devices_program(rules, n, &prog, &len, NULL, 0) == 0 && len == 0)
			abort();
		free(prog);
		free(rules);
	}
	state = state_hook_json("fuzz", STATUS_CREATING, 1, "/bundle", s);
	free(state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oci_spec *s = NULL;
	struct err *e = NULL;

	if (spec_parse((const char *)data, size, &s, &e) == 0) {
		if (s == NULL || e != NULL)
			abort();
		use_spec(s);
		spec_free(s);
		return 0;
	}
	/* Refused: with a message that names the document. */
	if (s != NULL || e == NULL || e->msg == NULL || strncmp(e->msg, "config.json: ", 13) != 0)
		abort();
	err_free(&e);
	return 0;
}
