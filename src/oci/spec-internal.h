/* Pieces of the config.json parser shared between spec*.c files. */
#ifndef CASULO_OCI_SPEC_INTERNAL_H
#define CASULO_OCI_SPEC_INTERNAL_H

#include <json-c/json.h>

#include "oci/spec.h"

int spec_resources_from_json(json_object *res, const char *path, struct cgroup_resources *r, struct err **e);
int spec_seccomp_from_json(json_object *linux_o, struct oci_spec *s, struct err **e);
void spec_seccomp_free(struct oci_seccomp *sc);
void spec_kv_free(struct oci_kv *kv, size_t n);

#endif
