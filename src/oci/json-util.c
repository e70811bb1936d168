#include "oci/json-util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "oci/spec.h"

static const char *type_name(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "boolean";
	case json_type_double:
		return "number with a fraction";
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

json_object *ju_get(json_object *parent, const char *key)
{
	json_object *o = NULL;

	if (parent == NULL || !json_object_object_get_ex(parent, key, &o))
		return NULL;
	if (json_object_get_type(o) == json_type_null)
		return NULL;
	return o;
}

int ju_type_error(struct err **e, const char *path, const char *key, const char *want, json_object *got)
{
	return err_setx(e, EINVAL, "config.json: %s%s%s: expected %s, got %s", path ? path : "",
			path && *path && key ? "." : "", key ? key : "", want, type_name(got));
}

#define JU_FETCH(want_type, want_name)                                                                                 \
	json_object *o = ju_get(parent, key);                                                                          \
	if (o == NULL)                                                                                                 \
		return 0;                                                                                              \
	if (json_object_get_type(o) != (want_type))                                                                    \
	return ju_type_error(e, path, key, want_name, o)

int ju_object(json_object *parent, const char *path, const char *key, json_object **ret, struct err **e)
{
	*ret = NULL;
	JU_FETCH(json_type_object, "an object");
	*ret = o;
	return 0;
}

int ju_array(json_object *parent, const char *path, const char *key, json_object **ret, struct err **e)
{
	*ret = NULL;
	JU_FETCH(json_type_array, "an array");
	*ret = o;
	return 0;
}

int ju_string(json_object *parent, const char *path, const char *key, char **ret, struct err **e)
{
	JU_FETCH(json_type_string, "a string");
	free(*ret);
	*ret = strdup(json_object_get_string(o));
	if (*ret == NULL)
		return err_set(e, ENOMEM, "config.json: %s.%s", path, key);
	return 0;
}

int ju_bool(json_object *parent, const char *path, const char *key, bool *ret, bool *present, struct err **e)
{
	JU_FETCH(json_type_boolean, "a boolean");
	*ret = json_object_get_boolean(o);
	if (present)
		*present = true;
	return 0;
}

/* Integers arrive as json_type_int; json-c keeps values above INT64_MAX as
 * unsigned, which json_object_get_uint64() returns intact. */
int ju_node_int64(json_object *node, const char *path, int64_t *ret, struct err **e)
{
	if (json_object_get_type(node) != json_type_int)
		return ju_type_error(e, path, NULL, "an integer", node);
	errno = 0;
	*ret = json_object_get_int64(node);
	if (errno == ERANGE || (*ret == INT64_MAX && json_object_get_uint64(node) > INT64_MAX))
		return err_setx(e, ERANGE, "config.json: %s: integer out of range", path);
	return 0;
}

int ju_int64(json_object *parent, const char *path, const char *key, int64_t *ret, bool *present, struct err **e)
{
	JU_FETCH(json_type_int, "an integer");
	if (json_object_get_int64(o) == INT64_MAX && json_object_get_uint64(o) > INT64_MAX)
		return err_setx(e, ERANGE, "config.json: %s.%s: integer out of range", path, key);
	*ret = json_object_get_int64(o);
	if (present)
		*present = true;
	return 0;
}

int ju_uint64(json_object *parent, const char *path, const char *key, uint64_t *ret, bool *present, struct err **e)
{
	JU_FETCH(json_type_int, "an integer");
	if (json_object_get_int64(o) < 0)
		return err_setx(e, EINVAL, "config.json: %s.%s: must not be negative", path, key);
	*ret = json_object_get_uint64(o);
	if (present)
		*present = true;
	return 0;
}

int ju_uint32(json_object *parent, const char *path, const char *key, uint32_t *ret, bool *present, struct err **e)
{
	uint64_t v;
	bool p = false;
	int r = ju_uint64(parent, path, key, &v, &p, e);

	if (r < 0 || !p)
		return r;
	if (v > UINT32_MAX)
		return err_setx(e, ERANGE, "config.json: %s.%s: %llu is out of range (at most %u)", path, key,
				(unsigned long long)v, UINT32_MAX);
	*ret = (uint32_t)v;
	if (present)
		*present = true;
	return 0;
}

int ju_int32(json_object *parent, const char *path, const char *key, int32_t *ret, bool *present, struct err **e)
{
	int64_t v;
	bool p = false;
	int r = ju_int64(parent, path, key, &v, &p, e);

	if (r < 0 || !p)
		return r;
	if (v < INT32_MIN || v > INT32_MAX)
		return err_setx(e, ERANGE, "config.json: %s.%s: %lld is out of range", path, key, (long long)v);
	*ret = (int32_t)v;
	if (present)
		*present = true;
	return 0;
}

int ju_string_array(json_object *parent, const char *path, const char *key, char ***ret, size_t *n, struct err **e)
{
	size_t len, i;
	char **v;

	JU_FETCH(json_type_array, "an array of strings");
	len = json_object_array_length(o);
	v = calloc(len + 1, sizeof(*v));
	if (v == NULL)
		return err_set(e, ENOMEM, "config.json: %s.%s", path, key);
	for (i = 0; i < len; i++) {
		json_object *item = json_object_array_get_idx(o, i);
		if (item == NULL || json_object_get_type(item) != json_type_string) {
			char where[256];
			snprintf(where, sizeof(where), "%s%s%s[%zu]", path, *path ? "." : "", key, i);
			strv_free(v);
			return ju_type_error(e, where, NULL, "a string", item);
		}
		v[i] = strdup(json_object_get_string(item));
		if (v[i] == NULL) {
			strv_free(v);
			return err_set(e, ENOMEM, "config.json: %s.%s", path, key);
		}
	}
	strv_free(*ret);
	*ret = v;
	if (n)
		*n = len;
	return 0;
}

int ju_string_map(json_object *parent, const char *path, const char *key, struct oci_kv **ret, size_t *n,
		  struct err **e)
{
	struct oci_kv *kv;
	size_t count = 0;

	JU_FETCH(json_type_object, "an object of strings");
	kv = calloc((size_t)json_object_object_length(o) + 1, sizeof(*kv));
	if (kv == NULL)
		return err_set(e, ENOMEM, "config.json: %s.%s", path, key);
	json_object_object_foreach(o, k, val)
	{
		if (val == NULL || json_object_get_type(val) != json_type_string) {
			char where[512];
			snprintf(where, sizeof(where), "%s%s%s", path, *path ? "." : "", key);
			for (size_t i = 0; i < count; i++) {
				free(kv[i].key);
				free(kv[i].value);
			}
			free(kv);
			return ju_type_error(e, where, k, "a string", val);
		}
		kv[count].key = strdup(k);
		kv[count].value = strdup(json_object_get_string(val));
		count++;
		if (kv[count - 1].key == NULL || kv[count - 1].value == NULL) {
			for (size_t i = 0; i < count; i++) {
				free(kv[i].key);
				free(kv[i].value);
			}
			free(kv);
			return err_set(e, ENOMEM, "config.json: %s.%s", path, key);
		}
	}
	*ret = kv;
	*n = count;
	return 0;
}

int ju_object_array(json_object *parent, const char *path, const char *key, size_t elem_size, void **ret, size_t *n,
		    ju_item_fn fn, void *ctx, struct err **e)
{
	json_object *arr;
	size_t len;
	char *items;
	int r = ju_array(parent, path, key, &arr, e);

	if (r < 0 || arr == NULL)
		return r;
	len = json_object_array_length(arr);
	items = calloc(len + 1, elem_size);
	if (items == NULL)
		return err_set(e, ENOMEM, "config.json: %s%s%s", path, *path ? "." : "", key);
	*ret = items;
	*n = 0;
	for (size_t i = 0; i < len; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		char where[256];

		snprintf(where, sizeof(where), "%s%s%s[%zu]", path, *path ? "." : "", key, i);
		if (o == NULL || json_object_get_type(o) != json_type_object)
			return ju_type_error(e, where, NULL, "an object", o);
		*n = i + 1;
		if ((r = fn(o, where, items + i * elem_size, ctx, e)) < 0)
			return r;
	}
	return 0;
}
