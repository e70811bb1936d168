/*
 * Typed getters over json-c objects for the config.json parser.  Each one
 * takes the parent object, the key and the dotted path of the parent, and
 * on a type mismatch fills *e with "config.json: PATH.KEY: expected T, got U".
 * An absent key (or null) leaves the output untouched and returns 0; a
 * getter that says "present" in its name tells absent from given.
 */
#ifndef CASULO_OCI_JSON_UTIL_H
#define CASULO_OCI_JSON_UTIL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/strv.h"

/* The member, or NULL when absent or JSON null. */
json_object *ju_get(json_object *parent, const char *key);

int ju_type_error(struct err **e, const char *path, const char *key, const char *want, json_object *got);

int ju_object(json_object *parent, const char *path, const char *key, json_object **ret, struct err **e);
int ju_array(json_object *parent, const char *path, const char *key, json_object **ret, struct err **e);
int ju_string(json_object *parent, const char *path, const char *key, char **ret, struct err **e);
int ju_bool(json_object *parent, const char *path, const char *key, bool *ret, bool *present, struct err **e);
int ju_int64(json_object *parent, const char *path, const char *key, int64_t *ret, bool *present, struct err **e);
int ju_uint64(json_object *parent, const char *path, const char *key, uint64_t *ret, bool *present, struct err **e);
/* Range-checked variants. */
int ju_uint32(json_object *parent, const char *path, const char *key, uint32_t *ret, bool *present, struct err **e);
int ju_int32(json_object *parent, const char *path, const char *key, int32_t *ret, bool *present, struct err **e);
/* Array of strings, NULL-terminated copy in *ret and its length in *n. */
int ju_string_array(json_object *parent, const char *path, const char *key, char ***ret, size_t *n, struct err **e);
/* Object of string values ("annotations", "sysctl", "unified"). */
struct oci_kv;
int ju_string_map(json_object *parent, const char *path, const char *key, struct oci_kv **ret, size_t *n,
		  struct err **e);

/* An array of objects into a zeroed C array of elem_size items (one spare
 * item at the end): fn fills each from its JSON object, "where" naming it
 * ("mounts[3]").  *n counts the items handed to fn, so that a caller can
 * free a partly filled array after a failure. */
typedef int (*ju_item_fn)(json_object *item, const char *where, void *elem, void *ctx, struct err **e);
int ju_object_array(json_object *parent, const char *path, const char *key, size_t elem_size, void **ret, size_t *n,
		    ju_item_fn fn, void *ctx, struct err **e);

/* Value of an integer JSON node itself (for array items). */
int ju_node_int64(json_object *node, const char *path, int64_t *ret, struct err **e);

#endif
