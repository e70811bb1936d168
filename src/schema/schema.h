/*
 * libcasulo-schema: requests checked against the API's own OpenAPI
 * document, so that the document is the one source of truth for what an
 * API accepts.  casulod uses it for docs/casulod-api.yaml; the VMM's API
 * (docs/api.yaml) can use it the same way.
 *
 * At build time scripts/openapi-schemas.py turns a document's schemas and
 * its operations (method, path, parameters, request body) into a JSON
 * blob compiled into the program (src/schema/meson.build has
 * openapi_schemas_gen, a generator that makes `NAME-schemas.c` defining
 * `const char SYMBOL[]` and `const size_t SYMBOL_len`).  At run time
 * schema_doc_load() compiles the blob once; the checks are then pure
 * functions over json-c values, safe from any number of threads.
 *
 * The subset of JSON Schema (OpenAPI 3.0's dialect) that is enforced, and
 * the only keywords the generator lets through besides annotations
 * (description, example, default, title, format, readOnly, writeOnly,
 * deprecated): the build fails on any other, so a constraint written in
 * the document is always a constraint checked.
 *
 *   type                  object, array, string, integer (a JSON number
 *                         without fraction or exponent), number, boolean
 *   nullable              null is accepted too
 *   properties, required  each property checked when present; a required
 *                         one missing is an error
 *   additionalProperties  false: no other key; a schema: other keys' values
 *                         checked against it; absent or true: anything
 *   enum                  the value equals one of the list (JSON equality)
 *   pattern               a POSIX extended regular expression (regcomp),
 *                         searched, not anchored, as JSON Schema says: write
 *                         ^...$ and [0-9] (no \d, no lookaround)
 *   minimum, maximum      inclusive bounds of integers and numbers
 *   minLength, maxLength  in characters (UTF-8 code points)
 *   minItems, maxItems, items   arrays
 *   $ref                  '#/components/schemas/NAME' only, nothing beside it
 *
 * Messages name the field by its path in the document ("vm.disks[1].path";
 * "body" for the whole body) and say what is wrong, in the words the VMM's
 * API already used:
 *
 *   field 'vm.kernel' is missing
 *   field 'state' must be a string, not an integer
 *   field 'state' must be one of "paused", "running", not "asleep"
 *   unknown field 'vm.x'
 *   field 'memory_mib' must be at least 32 (got 16)     (also: at most N)
 *   field 'destination' must match ^tcp:.+:[0-9]+$ (got "tcp:x")
 *   field 'name' must be 1 to 63 characters long (got 70)
 *   field 'vm.disks' must have at most 8 items (got 9)
 *   body must be a JSON object, not an array
 *
 * A value's echo in a message is cut at 64 bytes.  Every error is EINVAL.
 */
#ifndef CASULO_SCHEMA_SCHEMA_H
#define CASULO_SCHEMA_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct json_object;
struct schema_doc;
struct schema_op;

/* Compile the blob the generator made (len bytes of JSON).  Fails only on
 * a blob the generator would not make (a bad pattern, a dangling $ref). */
int schema_doc_load(const char *blob, size_t len, struct schema_doc **ret, struct err **e) MUST_CHECK;
void schema_doc_free(struct schema_doc *d);

/* Check value against components.schemas.NAME.  where names the value in
 * messages ("body"; NULL: field paths only).  -ENOENT when there is no
 * such schema (a program error, said as such). */
int schema_check(const struct schema_doc *d, const char *name, struct json_object *value, const char *where,
		 struct err **e) MUST_CHECK;

/* The document's operation "METHOD PATH", PATH as the document writes it
 * ("/v1/instances/{name}"), or NULL. */
const struct schema_op *schema_op_find(const struct schema_doc *d, const char *method, const char *path);

/* Parse a request body with json_doc_parse() (one document, no NUL in a
 * string) and check it against the operation's requestBody schema.  An
 * empty body (len 0) is an error when the body is required ("this request
 * needs a JSON body") and *ret is then NULL when it is not; a body on an
 * operation that takes none is an error ("METHOD PATH takes no body"),
 * except "{}".  *ret (when given) gets the parsed body, the caller's to
 * put. */
int schema_check_body(const struct schema_op *op, const char *body, size_t len, struct json_object **ret,
		      struct err **e) MUST_CHECK;

/* Check one path or query parameter's text (in: "path" or "query") against
 * its schema: integers and numbers must parse whole, booleans are "true"
 * or "false", strings are taken as they are.  A query parameter the
 * operation does not declare is an error ("unknown query parameter 'x'"),
 * so that a misspelt option is not silently ignored.  Messages say
 * "query parameter 'timeout' ..." or "path parameter 'name' ...". */
int schema_check_param(const struct schema_op *op, const char *in, const char *name, const char *value,
		       struct err **e) MUST_CHECK;

/* The required query parameters of op not in the NULL-terminated list
 * given: the first one's name, or NULL. */
const char *schema_missing_param(const struct schema_op *op, const char *const *given);

#endif
