/*
 * Typed getters over json-c for the image documents: each error reads
 * "WHAT: FIELD: expected T, got U", WHAT naming the document ("manifest
 * sha256:ab12...").  An absent (or null) member is not an error unless the
 * getter says "required".
 */
#ifndef CASULO_IMAGE_JSONX_H
#define CASULO_IMAGE_JSONX_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/strv.h"

/* Parse exactly len bytes (not NUL-terminated input too). */
json_object *jx_parse(const char *buf, size_t len, const char *what, struct err **e);

json_object *jx_get(json_object *o, const char *key);
int jx_string(json_object *o, const char *key, bool required, const char *what, const char *field, char **ret,
	      struct err **e);
int jx_int64(json_object *o, const char *key, bool required, const char *what, const char *field, int64_t *ret,
	     struct err **e);
int jx_object(json_object *o, const char *key, const char *what, const char *field, json_object **ret, struct err **e);
int jx_array(json_object *o, const char *key, const char *what, const char *field, json_object **ret, struct err **e);
/* An array of strings into a NULL-terminated vector (NULL when absent),
 * freed with strv_free(). */
int jx_strv(json_object *o, const char *key, const char *what, const char *field, char ***ret, size_t *n,
	    struct err **e);

/* Build helpers that never fail silently: NULL on allocation failure. */
json_object *jx_strv_to_array(char *const *v, size_t n);

#endif
