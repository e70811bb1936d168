/*
 * Fuzz target: casulod's checks of a request against its API document
 * (docs/casulod-api.yaml compiled in, src/schema/): a body through
 * json_doc_parse() and the operation's schema, and the same bytes as a
 * path and a query parameter.  Whatever the input, a check either passes
 * or fails with a message, and never reads or writes out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "schema/schema.h"

extern const char casulod_api_schemas[];
extern const size_t casulod_api_schemas_len;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ops[][2] = {
	    {"POST", "/v1/instances"},
	    {"PUT", "/v1/instances/{name}/state"},
	    {"PATCH", "/v1/instances/{name}"},
	    {"POST", "/v1/instances/{name}/migrate"},
	    {"POST", "/v1/images"},
	    {"DELETE", "/v1/instances/{name}"},
	    {"GET", "/v1/operations/{id}/wait"},
	    {"GET", "/v1/events"},
	};
	static const char *const params[] = {"name", "force", "timeout_s", "types", "lines", "mode"};
	static struct schema_doc *doc;
	const struct schema_op *op;
	struct err *e = NULL;
	json_object *o = NULL;
	char *text;

	if (doc == NULL && schema_doc_load(casulod_api_schemas, casulod_api_schemas_len, &doc, &e) < 0)
		abort(); /* the document itself must always compile */
	if (size < 1)
		return 0;
	op = schema_op_find(doc, ops[data[0] % 8][0], ops[data[0] % 8][1]);
	if (op == NULL)
		abort();
	if (schema_check_body(op, (const char *)data + 1, size - 1, &o, &e) < 0) {
		if (e == NULL || e->msg == NULL || o != NULL)
			abort();
		err_free(&e);
	}
	json_object_put(o);
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		if (schema_check_param(op, i == 0 ? "path" : "query", params[i], text, &e) < 0 && e == NULL)
			abort();
		err_free(&e);
	}
	free(text);
	return 0;
}
