#include "image/jsonx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *type_name(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "boolean";
	case json_type_double:
		return "number";
	case json_type_int:
		return "integer";
	case json_type_object:
		return "object";
	case json_type_array:
		return "array";
	case json_type_string:
		return "string";
	}
	return "unknown";
}

json_object *jx_parse(const char *buf, size_t len, const char *what, struct err **e)
{
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error je;

	if (len > INT32_MAX) {
		err_setx(e, EFBIG, "%s: too large to parse", what);
		return NULL;
	}
	tok = json_tokener_new_ex(64);
	if (tok == NULL) {
		err_set(e, ENOMEM, "%s", what);
		return NULL;
	}
	o = json_tokener_parse_ex(tok, buf, (int)len);
	je = json_tokener_get_error(tok);
	if (je == json_tokener_continue) {
		json_object_put(o);
		o = NULL;
		err_setx(e, EINVAL, "%s: not valid JSON: truncated", what);
	} else if (je != json_tokener_success) {
		json_object_put(o);
		o = NULL;
		err_setx(e, EINVAL, "%s: not valid JSON: %s", what, json_tokener_error_desc(je));
	} else {
		/* Only white space may follow the document. */
		for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
			if (!strchr(" \t\r\n", buf[i])) {
				json_object_put(o);
				o = NULL;
				err_setx(e, EINVAL, "%s: not valid JSON: data after the document", what);
				break;
			}
		}
	}
	json_tokener_free(tok);
	return o;
}

json_object *jx_get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_is_type(v, json_type_null) ? NULL : v;
}

static int type_error(struct err **e, const char *what, const char *field, const char *want, json_object *got)
{
	if (got == NULL)
		return err_setx(e, EINVAL, "%s: %s: missing (expected %s)", what, field, want);
	return err_setx(e, EINVAL, "%s: %s: expected %s, got %s", what, field, want, type_name(got));
}

int jx_string(json_object *o, const char *key, bool required, const char *what, const char *field, char **ret,
	      struct err **e)
{
	json_object *v = jx_get(o, key);

	*ret = NULL;
	if (v == NULL)
		return required ? type_error(e, what, field, "a string", NULL) : 0;
	if (!json_object_is_type(v, json_type_string))
		return type_error(e, what, field, "a string", v);
	*ret = strdup(json_object_get_string(v));
	return *ret ? 0 : err_set(e, ENOMEM, "%s: %s", what, field);
}

int jx_int64(json_object *o, const char *key, bool required, const char *what, const char *field, int64_t *ret,
	     struct err **e)
{
	json_object *v = jx_get(o, key);

	if (v == NULL)
		return required ? type_error(e, what, field, "an integer", NULL) : 0;
	if (!json_object_is_type(v, json_type_int))
		return type_error(e, what, field, "an integer", v);
	errno = 0;
	*ret = json_object_get_int64(v);
	if (errno == EINVAL || (*ret == INT64_MAX && json_object_get_uint64(v) > INT64_MAX))
		return err_setx(e, ERANGE, "%s: %s: integer out of range", what, field);
	return 0;
}

int jx_object(json_object *o, const char *key, const char *what, const char *field, json_object **ret, struct err **e)
{
	json_object *v = jx_get(o, key);

	*ret = NULL;
	if (v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_object))
		return type_error(e, what, field, "an object", v);
	*ret = v;
	return 0;
}

int jx_array(json_object *o, const char *key, const char *what, const char *field, json_object **ret, struct err **e)
{
	json_object *v = jx_get(o, key);

	*ret = NULL;
	if (v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return type_error(e, what, field, "an array", v);
	*ret = v;
	return 0;
}

int jx_strv(json_object *o, const char *key, const char *what, const char *field, char ***ret, size_t *n,
	    struct err **e)
{
	json_object *a;
	char **v;
	size_t len;
	int r = jx_array(o, key, what, field, &a, e);

	*ret = NULL;
	*n = 0;
	if (r < 0 || a == NULL)
		return r;
	len = json_object_array_length(a);
	v = calloc(len + 1, sizeof(*v));
	if (v == NULL)
		return err_set(e, ENOMEM, "%s: %s", what, field);
	for (size_t i = 0; i < len; i++) {
		json_object *s = json_object_array_get_idx(a, i);
		if (!json_object_is_type(s, json_type_string)) {
			strv_free(v);
			return err_setx(e, EINVAL, "%s: %s[%zu]: expected a string, got %s", what, field, i,
					type_name(s));
		}
		v[i] = strdup(json_object_get_string(s));
		if (v[i] == NULL) {
			strv_free(v);
			return err_set(e, ENOMEM, "%s: %s", what, field);
		}
	}
	*ret = v;
	*n = len;
	return 0;
}

json_object *jx_strv_to_array(char *const *v, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}
