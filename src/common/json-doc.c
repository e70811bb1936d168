#include "common/json-doc.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whitespace and json-c's comments from t[i]. */
static size_t skip_blank(const char *t, size_t len, size_t i)
{
	while (i < len) {
		if (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r') {
			i++;
		} else if (t[i] == '/' && i + 1 < len && t[i + 1] == '*') {
			const char *end = memmem(t + i + 2, len - i - 2, "*/", 2);
			i = end ? (size_t)(end - t) + 2 : len;
		} else if (t[i] == '/' && i + 1 < len && t[i + 1] == '/') {
			const char *end = memchr(t + i, '\n', len - i);
			i = end ? (size_t)(end - t) + 1 : len;
		} else {
			break;
		}
	}
	return i;
}

/* The string whose opening quote is t[i]: returns the index past its
 * closing quote; *nul is the offset of a "\u0000" escape in it, or -1. */
static size_t scan_string(const char *t, size_t len, size_t i, ssize_t *nul)
{
	char quote = t[i++];

	*nul = -1;
	while (i < len && t[i] != quote) {
		if (t[i] == '\\' && i + 1 < len) {
			if (*nul < 0 && t[i + 1] == 'u' && i + 6 <= len && memcmp(t + i + 2, "0000", 4) == 0)
				*nul = (ssize_t)i;
			i += 2;
			continue;
		}
		i++;
	}
	return i < len ? i + 1 : len;
}

/* The first string holding a "\u0000" escape: its offset (or -1), where it
 * starts, whether it is a key. */
static ssize_t find_nul_escape(const char *t, size_t len, size_t *start, int *in_key)
{
	for (size_t i = 0; i < len;) {
		if (t[i] == '"' || t[i] == '\'') {
			ssize_t nul;
			size_t end = scan_string(t, len, i, &nul);
			if (nul >= 0) {
				size_t next = skip_blank(t, len, end);
				if (start)
					*start = i + 1;
				if (in_key)
					*in_key = next < len && t[next] == ':';
				return nul;
			}
			i = end;
		} else if (t[i] == '/') {
			size_t next = skip_blank(t, len, i);
			i = next > i ? next : i + 1;
		} else {
			i++;
		}
	}
	return -1;
}

ssize_t json_doc_find_nul_escape(const char *text, size_t len, int *in_key)
{
	return find_nul_escape(text, len, NULL, in_key);
}

/* head ("key" or "[3]") joined to the path below it; takes sub. */
static char *join_path(const char *head, char *sub)
{
	char *path = NULL;

	if (asprintf(&path, "%s%s%s", head, sub[0] && sub[0] != '[' ? "." : "", sub) < 0)
		return sub;
	free(sub);
	return path;
}

/* The path below o to a string holding a NUL ("" for o itself). */
static char *find_nul(json_object *o)
{
	char *sub;

	switch (json_object_get_type(o)) {
	case json_type_string:
		if ((size_t)json_object_get_string_len(o) != strlen(json_object_get_string(o)))
			return strdup("");
		return NULL;
	case json_type_object: {
		json_object_object_foreach(o, key, val)
		{
			if (val && (sub = find_nul(val)) != NULL)
				return join_path(key, sub);
		}
		return NULL;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			json_object *item = json_object_array_get_idx(o, i);
			char index[32];
			if (item && (sub = find_nul(item)) != NULL) {
				snprintf(index, sizeof(index), "[%zu]", i);
				return join_path(index, sub);
			}
		}
		return NULL;
	default:
		return NULL;
	}
}

char *json_doc_find_nul(json_object *root)
{
	char *path = find_nul(root);

	if (path && path[0] == '\0') {
		free(path);
		return strdup("(top level)");
	}
	return path;
}

/* A message is one line: control characters of a key or an excerpt
 * quoted in it become '?'. */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

int json_doc_parse(const char *text, size_t len, const char *doc, json_object **ret, struct err **e)
{
	json_tokener *tok;
	json_object *root;
	size_t end;

	*ret = NULL;
	if (len > INT32_MAX)
		return err_setx(e, EFBIG, "%s: not valid JSON: %zu bytes is too large", doc, len);
	tok = json_tokener_new();
	if (tok == NULL)
		return err_set(e, ENOMEM, "%s: parse", doc);
	root = json_tokener_parse_ex(tok, len ? text : "", (int)len);
	if (root == NULL || json_tokener_get_error(tok) != json_tokener_success) {
		enum json_tokener_error jerr = json_tokener_get_error(tok);
		size_t off = json_tokener_get_parse_end(tok);
		json_tokener_free(tok);
		json_object_put(root);
		return err_setx(e, EINVAL, "%s: not valid JSON: %s at byte %zu", doc,
				jerr == json_tokener_continue || jerr == json_tokener_success
				    ? "unexpected end of input"
				    : json_tokener_error_desc(jerr),
				off);
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (skip_blank(text, len, end) < len) {
		json_object_put(root);
		return err_setx(e, EINVAL, "%s: not valid JSON: trailing data after the document (byte %zu)", doc, end);
	}
	/* Every NUL inside a string came from a "\u0000" escape (json-c stops
	 * at a raw one): without "u0000" in the text there is none to look for. */
	if (memmem(text, len, "u0000", 5)) {
		char *path = json_doc_find_nul(root);
		size_t start = 0;
		int in_key = 0;
		ssize_t at;

		if (path) {
			int r;
			printable(path);
			r = err_setx(e, EINVAL,
				     "%s: %s: holds a NUL character (\\u0000), which would cut the string there", doc,
				     path);
			free(path);
			json_object_put(root);
			return r;
		}
		/* Not in a value: then in a key, which json-c cut at the NUL. */
		at = find_nul_escape(text, len, &start, &in_key);
		if (at >= 0) {
			size_t n = (size_t)at - start;
			char excerpt[65];
			snprintf(excerpt, sizeof(excerpt), "%.*s", (int)(n > 64 ? 64 : n), text + start);
			printable(excerpt);
			json_object_put(root);
			return err_setx(e, EINVAL, "%s: a %s holds a NUL character (\\u0000) at byte %zd: '%s%s'", doc,
					in_key ? "key" : "string", at, excerpt, n > 64 ? "..." : "");
		}
	}
	*ret = root;
	return 0;
}
