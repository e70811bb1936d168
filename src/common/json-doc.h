/*
 * Reading a JSON document with json-c, refusing what json-c would let
 * through changed: shared by every parser of the project that reads JSON
 * (the runtime's config.json, process.json, resources and state; the API's
 * request bodies).
 *
 * A "\u0000" escape is the trap.  json-c keeps it inside a string value
 * (json_object_get_string_len() counts past it), but every C consumer
 * stops there: {"path": "/run/sn\u0000ap"} would be used as "/run/sn", and
 * an argument "sl\u0000eep" would run "sl".  In an object key json-c cuts
 * the key itself, silently.  json_doc_parse() refuses both, naming the
 * field, so that no caller has to check each string.
 */
#ifndef CASULO_COMMON_JSON_DOC_H
#define CASULO_COMMON_JSON_DOC_H

#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

struct json_object;

/*
 * Parse exactly len bytes of text as one JSON document (whitespace may
 * follow it, nothing else).  doc names the document in messages
 * ("config.json").  Errors (EINVAL): "DOC: not valid JSON: REASON at byte
 * N", "DOC: not valid JSON: trailing data after the document", "DOC: PATH:
 * holds a NUL character (\u0000), which would cut the string there",
 * "DOC: a key holds a NUL character (\u0000) at byte N: 'KEY...'".
 * *ret is the caller's to json_object_put().
 */
int json_doc_parse(const char *text, size_t len, const char *doc, struct json_object **ret, struct err **e) MUST_CHECK;

/* The path of the first string value under root holding a NUL
 * ("process.args[1]", "annotations.k"; "(top level)" for root itself),
 * malloc'd; NULL when there is none (or out of memory). */
char *json_doc_find_nul(struct json_object *root);

/* The offset in text of the first "\u0000" escape inside a string (a key
 * or a value), or -1.  It reads json-c's lenient syntax too: strings in
 * single quotes, comments.  *in_key (when given) says whether that string
 * is an object key. */
ssize_t json_doc_find_nul_escape(const char *text, size_t len, int *in_key);

#endif
