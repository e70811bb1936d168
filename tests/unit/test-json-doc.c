/* json_doc_parse(): JSON documents with a NUL inside a string refused, the
 * field named; the rest of json-c's syntax unchanged. */
#include <json-c/json.h>
#include <string.h>

#include "common/json-doc.h"
#include "test.h"

static char *parse_error(const char *text)
{
	struct json_object *o = NULL;
	struct err *e = NULL;
	char *msg = NULL;

	if (json_doc_parse(text, strlen(text), "doc.json", &o, &e) == 0) {
		json_object_put(o);
		return NULL;
	}
	msg = strdup(e && e->msg ? e->msg : "?");
	err_free(&e);
	return msg;
}

TEST(nul_in_a_value_is_refused_with_its_path)
{
	static const char *const cases[][2] = {
	    {"{\"process\":{\"args\":[\"sh\",\"sl\\u0000eep\"]}}", "doc.json: process.args[1]: holds a NUL"},
	    {"{\"path\":\"/run/sn\\u0000ap\"}", "doc.json: path: holds a NUL"},
	    {"{\"a\":[{\"b\":[[\"\\u0000\"]]}]}", "doc.json: a[0].b[0][0]: holds"},
	    {"\"x\\u0000\"", "doc.json: (top level): holds"},
	    {"{'single':'quo\\u0000ted'}", "doc.json: single: holds"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *msg = parse_error(cases[i][0]);
		CHECK_CONTAINS(msg, cases[i][1]);
		free(msg);
	}
}

TEST(nul_in_a_key_is_refused)
{
	char *msg = parse_error("{\"linux\": {\"sysctl\": {\"kernel.shm_rmid_forced\\u0000x\": \"1\"}}}");

	CHECK_CONTAINS(msg, "doc.json: a key holds a NUL character (\\u0000) at byte 45: 'kernel.shm_rmid_forced'");
	free(msg);
	/* After a comment holding a quote, in json-c's lenient syntax. */
	msg = parse_error("{/* it's */ \"k\\u0000\": 1}");
	CHECK_CONTAINS(msg, "a key holds a NUL");
	free(msg);
}

TEST(what_is_not_a_nul_passes)
{
	static const char *const ok[] = {
	    "{\"a\":\"\\\\u0000\"}", /* an escaped backslash, then the text u0000 */
	    "{\"u0000\":\"u0000\"}",	   "{\"a\":\"\\u0001\"} \n\t", "[1, 2.5, null, true, {\"x\": [\"\\u00e9\"]}]",
	    "{/* c */ \"a\": 1 // end\n}",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *msg = parse_error(ok[i]);
		CHECK(msg == NULL);
		free(msg);
	}
	CHECK_INT(json_doc_find_nul_escape("\"a\\\\u0000\"", 10, NULL), ==, -1);
}

TEST(malformed_documents_are_named)
{
	static const char *const cases[][2] = {
	    {"", "doc.json: not valid JSON: unexpected end of input at byte 0"},
	    {"{\"a\":", "doc.json: not valid JSON: unexpected end of input"},
	    {"{\"a\":1} x", "doc.json: not valid JSON: trailing data after the document"},
	    {"{\"a\":1}{}", "trailing data"},
	    {"{\"a\" 1}", "doc.json: not valid JSON:"},
	};
	struct json_object *o = NULL;
	struct err *e = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *msg = parse_error(cases[i][0]);
		CHECK_CONTAINS(msg, cases[i][1]);
		free(msg);
	}
	/* A raw NUL byte ends what json-c reads: the rest is not whitespace. */
	CHECK_INT(json_doc_parse("{\"a\":\"x\"}\0junk", 14, "doc.json", &o, &e), <, 0);
	CHECK_CONTAINS(e ? e->msg : NULL, "not valid JSON");
	err_free(&e);
	CHECK_INT(json_doc_parse("{\"a\":\"x\0y\"}", 11, "doc.json", &o, &e), <, 0);
	err_free(&e);
}

/* Found by fuzz-snapshot-check: a key quoted in the message kept its raw
 * newline, and the one-line message became two. */
TEST(messages_stay_one_line)
{
	static const char *const docs[] = {
	    "{\"k\nx\\u0000\": 1}",
	    "{\"k\\nx\": \"a\\u0000b\"}",
	};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		char *msg = parse_error(docs[i]);
		CHECK_CONTAINS(msg, "NUL character");
		CHECK(msg != NULL && strchr(msg, '\n') == NULL && strchr(msg, '\r') == NULL);
		free(msg);
	}
}
