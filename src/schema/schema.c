/* The JSON Schema subset of schema.h, compiled once from the generator's
 * blob into a tree of nodes, then walked for each value. */
#include "schema/schema.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "common/json-doc.h"

enum {
	T_OBJECT = 1 << 0,
	T_ARRAY = 1 << 1,
	T_STRING = 1 << 2,
	T_INTEGER = 1 << 3,
	T_NUMBER = 1 << 4,
	T_BOOLEAN = 1 << 5,
};

enum additional { ADDITIONAL_ANY, ADDITIONAL_NONE, ADDITIONAL_SCHEMA };

struct node;

struct prop {
	char *name;
	struct node *schema;
};

struct node {
	unsigned types; /* 0: any */
	bool nullable;
	struct prop *props;
	size_t n_props;
	char **required;
	size_t n_required;
	enum additional additional;
	struct node *additional_schema;
	json_object *enum_values; /* an array, or NULL */
	bool has_pattern;
	regex_t re;
	char *pattern;
	bool has_min, has_max;
	long double min, max;
	long long min_len, max_len, min_items, max_items; /* -1: none */
	struct node *items;
	char *ref; /* the component's name */
	struct node *target;
	struct node *next_alloc;
};

struct param {
	char *name;
	bool in_path, required;
	struct node *schema;
};

struct schema_op {
	char *key; /* "PUT /vm/state" */
	struct node *body;
	bool body_required;
	struct param *params;
	size_t n_params;
};

struct component {
	char *name;
	struct node *node;
};

struct schema_doc {
	struct component *components;
	size_t n_components;
	struct schema_op *ops;
	size_t n_ops;
	struct node *nodes; /* every node, for freeing */
};

/* ---- compiling ---- */

static struct node *node_new(struct schema_doc *d)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->min_len = n->max_len = n->min_items = n->max_items = -1;
	n->next_alloc = d->nodes;
	d->nodes = n;
	return n;
}

static int compile(struct schema_doc *d, json_object *js, const char *where, struct node **ret, struct err **e);

static int get_count(json_object *js, const char *key, long long *out, const char *where, struct err **e)
{
	json_object *v;

	if (!json_object_object_get_ex(js, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return err_setx(e, EINVAL, "schema %s: %s must be a non-negative integer", where, key);
	*out = json_object_get_int64(v);
	return 0;
}

static int get_bound(json_object *js, const char *key, bool *has, long double *out, const char *where, struct err **e)
{
	json_object *v;

	if (!json_object_object_get_ex(js, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return err_setx(e, EINVAL, "schema %s: %s must be a number", where, key);
	*has = true;
	*out = json_object_is_type(v, json_type_int) ? (long double)json_object_get_int64(v)
						     : (long double)json_object_get_double(v);
	return 0;
}

static int compile_type(struct node *n, json_object *js, const char *where, struct err **e)
{
	static const struct {
		const char *name;
		unsigned bit;
	} types[] = {
	    {"object", T_OBJECT},   {"array", T_ARRAY},	  {"string", T_STRING},
	    {"integer", T_INTEGER}, {"number", T_NUMBER}, {"boolean", T_BOOLEAN},
	};
	json_object *v;
	const char *t;

	if (!json_object_object_get_ex(js, "type", &v))
		return 0;
	t = json_object_get_string(v);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (json_object_is_type(v, json_type_string) && strcmp(t, types[i].name) == 0) {
			n->types = types[i].bit;
			return 0;
		}
	return err_setx(e, EINVAL, "schema %s: unknown type '%s'", where, t);
}

static int compile_object(struct schema_doc *d, struct node *n, json_object *js, const char *where, struct err **e)
{
	json_object *props, *req, *add;
	char sub[512];
	int r;

	if (json_object_object_get_ex(js, "properties", &props)) {
		if (!json_object_is_type(props, json_type_object))
			return err_setx(e, EINVAL, "schema %s: properties must be a mapping", where);
		n->props = calloc((size_t)json_object_object_length(props) + 1, sizeof(*n->props));
		if (n->props == NULL)
			return err_set(e, ENOMEM, "schema %s", where);
		json_object_object_foreach(props, key, val)
		{
			struct prop *p = &n->props[n->n_props];
			snprintf(sub, sizeof(sub), "%s.%s", where, key);
			if ((p->name = strdup(key)) == NULL)
				return err_set(e, ENOMEM, "schema %s", sub);
			n->n_props++;
			if ((r = compile(d, val, sub, &p->schema, e)) < 0)
				return r;
		}
	}
	if (json_object_object_get_ex(js, "required", &req)) {
		size_t len = json_object_is_type(req, json_type_array) ? json_object_array_length(req) : 0;
		n->required = calloc(len + 1, sizeof(*n->required));
		if (n->required == NULL)
			return err_set(e, ENOMEM, "schema %s", where);
		for (size_t i = 0; i < len; i++) {
			json_object *name = json_object_array_get_idx(req, i);
			if (!json_object_is_type(name, json_type_string))
				return err_setx(e, EINVAL, "schema %s: required[%zu] must be a string", where, i);
			if ((n->required[n->n_required++] = strdup(json_object_get_string(name))) == NULL)
				return err_set(e, ENOMEM, "schema %s", where);
		}
	}
	if (json_object_object_get_ex(js, "additionalProperties", &add)) {
		if (json_object_is_type(add, json_type_boolean)) {
			n->additional = json_object_get_boolean(add) ? ADDITIONAL_ANY : ADDITIONAL_NONE;
		} else {
			snprintf(sub, sizeof(sub), "%s.additionalProperties", where);
			n->additional = ADDITIONAL_SCHEMA;
			if ((r = compile(d, add, sub, &n->additional_schema, e)) < 0)
				return r;
		}
	}
	return 0;
}

static int compile(struct schema_doc *d, json_object *js, const char *where, struct node **ret, struct err **e)
{
	struct node *n;
	json_object *v;
	char sub[512];
	int r;

	if (!json_object_is_type(js, json_type_object))
		return err_setx(e, EINVAL, "schema %s: a schema must be an object", where);
	if ((n = node_new(d)) == NULL)
		return err_set(e, ENOMEM, "schema %s", where);
	*ret = n;
	if (json_object_object_get_ex(js, "$ref", &v)) {
		static const char prefix[] = "#/components/schemas/";
		const char *ref = json_object_get_string(v);
		if (strncmp(ref, prefix, sizeof(prefix) - 1) != 0)
			return err_setx(e, EINVAL, "schema %s: $ref '%s' is not under %s", where, ref, prefix);
		n->ref = strdup(ref + sizeof(prefix) - 1);
		return n->ref ? 0 : err_set(e, ENOMEM, "schema %s", where);
	}
	if ((r = compile_type(n, js, where, e)) < 0)
		return r;
	if (json_object_object_get_ex(js, "nullable", &v))
		n->nullable = json_object_get_boolean(v);
	if ((r = compile_object(d, n, js, where, e)) < 0)
		return r;
	if (json_object_object_get_ex(js, "enum", &v)) {
		if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
			return err_setx(e, EINVAL, "schema %s: enum must be a list of values", where);
		n->enum_values = json_object_get(v);
	}
	if (json_object_object_get_ex(js, "pattern", &v)) {
		int rc;
		n->pattern = strdup(json_object_get_string(v));
		if (n->pattern == NULL)
			return err_set(e, ENOMEM, "schema %s", where);
		rc = regcomp(&n->re, n->pattern, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char msg[128];
			regerror(rc, &n->re, msg, sizeof(msg));
			return err_setx(e, EINVAL, "schema %s: pattern '%s': %s", where, n->pattern, msg);
		}
		n->has_pattern = true;
	}
	if ((r = get_bound(js, "minimum", &n->has_min, &n->min, where, e)) < 0 ||
	    (r = get_bound(js, "maximum", &n->has_max, &n->max, where, e)) < 0 ||
	    (r = get_count(js, "minLength", &n->min_len, where, e)) < 0 ||
	    (r = get_count(js, "maxLength", &n->max_len, where, e)) < 0 ||
	    (r = get_count(js, "minItems", &n->min_items, where, e)) < 0 ||
	    (r = get_count(js, "maxItems", &n->max_items, where, e)) < 0)
		return r;
	if (json_object_object_get_ex(js, "items", &v)) {
		snprintf(sub, sizeof(sub), "%s.items", where);
		if ((r = compile(d, v, sub, &n->items, e)) < 0)
			return r;
	}
	return 0;
}

static struct node *component_find(const struct schema_doc *d, const char *name)
{
	for (size_t i = 0; i < d->n_components; i++)
		if (strcmp(d->components[i].name, name) == 0)
			return d->components[i].node;
	return NULL;
}

/* Point every $ref at its component, refusing dangling refs and chains
 * of refs that come back to themselves. */
static int resolve_refs(struct schema_doc *d, struct err **e)
{
	for (struct node *n = d->nodes; n; n = n->next_alloc) {
		struct node *t = n;
		size_t hops = 0;
		if (n->ref == NULL)
			continue;
		if ((n->target = component_find(d, n->ref)) == NULL)
			return err_setx(e, EINVAL, "schema: $ref to '%s', which is not a schema of the document",
					n->ref);
		while (t->ref) {
			if (++hops > d->n_components)
				return err_setx(e, EINVAL, "schema: $ref '%s' refers to itself", n->ref);
			if ((t = component_find(d, t->ref)) == NULL)
				return err_setx(e, EINVAL, "schema: $ref to '%s', which is not a schema", n->ref);
		}
	}
	return 0;
}

static int load_ops(struct schema_doc *d, json_object *ops, struct err **e)
{
	int r;

	d->ops = calloc((size_t)json_object_object_length(ops) + 1, sizeof(*d->ops));
	if (d->ops == NULL)
		return err_set(e, ENOMEM, "schema");
	json_object_object_foreach(ops, key, val)
	{
		struct schema_op *op = &d->ops[d->n_ops++];
		json_object *body, *params, *v;
		size_t n;

		if ((op->key = strdup(key)) == NULL)
			return err_set(e, ENOMEM, "schema");
		if (json_object_object_get_ex(val, "body", &body) && (r = compile(d, body, key, &op->body, e)) < 0)
			return r;
		op->body_required = json_object_object_get_ex(val, "body_required", &v) && json_object_get_boolean(v);
		if (!json_object_object_get_ex(val, "params", &params) || !json_object_is_type(params, json_type_array))
			continue;
		n = json_object_array_length(params);
		if ((op->params = calloc(n + 1, sizeof(*op->params))) == NULL)
			return err_set(e, ENOMEM, "schema");
		for (size_t i = 0; i < n; i++) {
			json_object *p = json_object_array_get_idx(params, i), *name, *in, *req, *schema;
			struct param *pa = &op->params[op->n_params];
			if (!json_object_object_get_ex(p, "name", &name) || !json_object_object_get_ex(p, "in", &in) ||
			    !json_object_object_get_ex(p, "schema", &schema))
				return err_setx(e, EINVAL, "schema %s: params[%zu] lacks name, in or schema", key, i);
			if ((pa->name = strdup(json_object_get_string(name))) == NULL)
				return err_set(e, ENOMEM, "schema");
			op->n_params++;
			pa->in_path = strcmp(json_object_get_string(in), "path") == 0;
			pa->required = json_object_object_get_ex(p, "required", &req) && json_object_get_boolean(req);
			if ((r = compile(d, schema, key, &pa->schema, e)) < 0)
				return r;
		}
	}
	return 0;
}

int schema_doc_load(const char *blob, size_t len, struct schema_doc **ret, struct err **e)
{
	struct schema_doc *d = calloc(1, sizeof(*d));
	json_object *root = NULL, *schemas, *ops;
	int r;

	if (d == NULL)
		return err_set(e, ENOMEM, "schema");
	if ((r = json_doc_parse(blob, len, "schema document", &root, e)) < 0)
		goto fail;
	if (!json_object_object_get_ex(root, "schemas", &schemas) || !json_object_is_type(schemas, json_type_object)) {
		r = err_setx(e, EINVAL, "schema document: no 'schemas' mapping");
		goto fail;
	}
	d->components = calloc((size_t)json_object_object_length(schemas) + 1, sizeof(*d->components));
	if (d->components == NULL) {
		r = err_set(e, ENOMEM, "schema");
		goto fail;
	}
	json_object_object_foreach(schemas, name, val)
	{
		struct component *c = &d->components[d->n_components];
		if ((c->name = strdup(name)) == NULL) {
			r = err_set(e, ENOMEM, "schema");
			goto fail;
		}
		d->n_components++;
		if ((r = compile(d, val, name, &c->node, e)) < 0)
			goto fail;
	}
	if (json_object_object_get_ex(root, "operations", &ops) && (r = load_ops(d, ops, e)) < 0)
		goto fail;
	if ((r = resolve_refs(d, e)) < 0)
		goto fail;
	json_object_put(root);
	*ret = d;
	return 0;
fail:
	json_object_put(root);
	schema_doc_free(d);
	return r;
}

void schema_doc_free(struct schema_doc *d)
{
	struct node *n, *next;

	if (d == NULL)
		return;
	for (n = d->nodes; n; n = next) {
		next = n->next_alloc;
		for (size_t i = 0; i < n->n_props; i++)
			free(n->props[i].name);
		free(n->props);
		for (size_t i = 0; i < n->n_required; i++)
			free(n->required[i]);
		free(n->required);
		json_object_put(n->enum_values);
		if (n->has_pattern)
			regfree(&n->re);
		free(n->pattern);
		free(n->ref);
		free(n);
	}
	for (size_t i = 0; i < d->n_components; i++)
		free(d->components[i].name);
	free(d->components);
	for (size_t i = 0; i < d->n_ops; i++) {
		free(d->ops[i].key);
		for (size_t j = 0; j < d->ops[i].n_params; j++)
			free(d->ops[i].params[j].name);
		free(d->ops[i].params);
	}
	free(d->ops);
	free(d);
}

/* ---- checking ---- */

/* Where the walk is: "vm.disks[1]" in a growing buffer. */
struct path {
	char *buf;
	size_t len, cap;
	const char *where;  /* what the root is called ("body"), or NULL */
	const char *prefix; /* "field", "query parameter"... */
};

/* Append text (len bytes) to the path. */
static bool path_append(struct path *p, const char *text, size_t len)
{
	if (p->len + len + 1 > p->cap) {
		size_t cap = (p->len + len + 1) * 2;
		char *nb = realloc(p->buf, cap);
		if (nb == NULL)
			return false;
		p->buf = nb;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, text, len);
	p->len += len;
	p->buf[p->len] = '\0';
	return true;
}

static bool path_push_key(struct path *p, const char *key)
{
	return (p->len == 0 || path_append(p, ".", 1)) && path_append(p, key, strlen(key));
}

static bool path_push_index(struct path *p, size_t i)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "[%zu]", i);

	return path_append(p, buf, (size_t)n);
}

static void path_pop(struct path *p, size_t len)
{
	p->len = len;
	p->buf[len] = '\0';
}

/* "field 'vm.kernel'", or the root's own name ("body"). */
static const char *subject(const struct path *p, char *buf, size_t size)
{
	if (p->len == 0)
		snprintf(buf, size, "%s", p->where ? p->where : "value");
	else
		snprintf(buf, size, "%s '%s'", p->prefix, p->buf);
	return buf;
}

static const char *kind_of(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_int:
		return "an integer";
	case json_type_double:
		return "a number";
	case json_type_string:
		return "a string";
	case json_type_object:
		return "a JSON object";
	case json_type_array:
		return "an array";
	}
	return "?";
}

static const char *type_name(unsigned t)
{
	switch (t) {
	case T_OBJECT:
		return "a JSON object";
	case T_ARRAY:
		return "an array";
	case T_STRING:
		return "a string";
	case T_INTEGER:
		return "an integer";
	case T_NUMBER:
		return "a number";
	case T_BOOLEAN:
		return "true or false";
	}
	return "?";
}

/* The value as JSON for a message, cut at 64 bytes. */
static const char *echo(json_object *v, char *buf, size_t size)
{
	const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t len = strlen(s);

	if (len > 64)
		snprintf(buf, size, "%.61s...", s);
	else
		snprintf(buf, size, "%s", s);
	return buf;
}

static bool type_ok(unsigned types, json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_object:
		return types & T_OBJECT;
	case json_type_array:
		return types & T_ARRAY;
	case json_type_string:
		return types & T_STRING;
	case json_type_int:
		return types & (T_INTEGER | T_NUMBER);
	case json_type_double:
		return types & T_NUMBER;
	case json_type_boolean:
		return types & T_BOOLEAN;
	case json_type_null:
		return false;
	}
	return false;
}

static size_t utf8_length(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static long double number_of(json_object *v)
{
	if (json_object_is_type(v, json_type_double))
		return (long double)json_object_get_double(v);
	/* json-c keeps integers above INT64_MAX as unsigned. */
	if (json_object_get_int64(v) == INT64_MAX)
		return (long double)json_object_get_uint64(v);
	return (long double)json_object_get_int64(v);
}

static int check_node(const struct node *n, json_object *v, struct path *p, struct err **e);

static int check_range(const struct node *n, json_object *v, struct path *p, struct err **e)
{
	long double x = number_of(v);
	char who[600], got[80];

	if ((n->has_min && (x < n->min || isnan(x))) || (n->has_max && (x > n->max || isnan(x)))) {
		subject(p, who, sizeof(who));
		echo(v, got, sizeof(got));
		if (n->has_min && n->has_max)
			return err_setx(e, EINVAL, "%s must be between %.17Lg and %.17Lg (got %s)", who, n->min, n->max,
					got);
		if (n->has_min)
			return err_setx(e, EINVAL, "%s must be at least %.17Lg (got %s)", who, n->min, got);
		return err_setx(e, EINVAL, "%s must be at most %.17Lg (got %s)", who, n->max, got);
	}
	return 0;
}

static int check_bounds_count(const char *who, long long min, long long max, size_t count, const char *unit,
			      struct err **e)
{
	if ((min >= 0 && (long long)count < min) || (max >= 0 && (long long)count > max)) {
		if (min >= 0 && max >= 0)
			return err_setx(e, EINVAL, "%s must have %lld to %lld %s (got %zu)", who, min, max, unit,
					count);
		if (min >= 0)
			return err_setx(e, EINVAL, "%s must have at least %lld %s (got %zu)", who, min, unit, count);
		return err_setx(e, EINVAL, "%s must have at most %lld %s (got %zu)", who, max, unit, count);
	}
	return 0;
}

static int check_string(const struct node *n, json_object *v, struct path *p, struct err **e)
{
	const char *s = json_object_get_string(v);
	char who[600], got[80];

	subject(p, who, sizeof(who));
	if (n->min_len >= 0 || n->max_len >= 0) {
		size_t len = utf8_length(s);
		if ((n->min_len >= 0 && (long long)len < n->min_len) ||
		    (n->max_len >= 0 && (long long)len > n->max_len)) {
			if (n->min_len >= 0 && n->max_len >= 0)
				return err_setx(e, EINVAL, "%s must be %lld to %lld characters long (got %zu)", who,
						n->min_len, n->max_len, len);
			if (n->min_len >= 0)
				return err_setx(e, EINVAL, "%s must be at least %lld characters long (got %zu)", who,
						n->min_len, len);
			return err_setx(e, EINVAL, "%s must be at most %lld characters long (got %zu)", who, n->max_len,
					len);
		}
	}
	if (n->has_pattern && regexec(&n->re, s, 0, NULL, 0) != 0)
		return err_setx(e, EINVAL, "%s must match %s (got %s)", who, n->pattern, echo(v, got, sizeof(got)));
	return 0;
}

static int check_enum(const struct node *n, json_object *v, struct path *p, struct err **e)
{
	size_t count = json_object_array_length(n->enum_values), used = 0;
	char who[600], got[80], list[512];

	for (size_t i = 0; i < count; i++)
		if (json_object_equal(json_object_array_get_idx(n->enum_values, i), v))
			return 0;
	list[0] = '\0';
	for (size_t i = 0; i < count && used < sizeof(list); i++) {
		char one[80];
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 echo(json_object_array_get_idx(n->enum_values, i), one, sizeof(one)));
	}
	return err_setx(e, EINVAL, "%s must be one of %s, not %s", subject(p, who, sizeof(who)), list,
			echo(v, got, sizeof(got)));
}

static const struct node *prop_find(const struct node *n, const char *key)
{
	for (size_t i = 0; i < n->n_props; i++)
		if (strcmp(n->props[i].name, key) == 0)
			return n->props[i].schema;
	return NULL;
}

static int check_object(const struct node *n, json_object *v, struct path *p, struct err **e)
{
	size_t mark = p->len;
	json_object *field;
	int r;

	/* Required fields first: "field 'x' is missing" is the first thing to
	 * fix, whatever else is wrong. */
	for (size_t i = 0; i < n->n_required; i++) {
		if (json_object_object_get_ex(v, n->required[i], &field))
			continue;
		if (!path_push_key(p, n->required[i]))
			return err_set(e, ENOMEM, "schema");
		r = err_setx(e, EINVAL, "%s '%s' is missing", p->prefix, p->buf);
		path_pop(p, mark);
		return r;
	}
	json_object_object_foreach(v, key, val)
	{
		const struct node *sub = prop_find(n, key);
		if (!path_push_key(p, key))
			return err_set(e, ENOMEM, "schema");
		if (sub == NULL && n->additional == ADDITIONAL_NONE)
			r = err_setx(e, EINVAL, "unknown %s '%s'", p->prefix, p->buf);
		else if (sub == NULL && n->additional == ADDITIONAL_SCHEMA)
			r = check_node(n->additional_schema, val, p, e);
		else
			r = sub ? check_node(sub, val, p, e) : 0;
		path_pop(p, mark);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_array(const struct node *n, json_object *v, struct path *p, struct err **e)
{
	size_t len = json_object_array_length(v), mark = p->len;
	char who[600];
	int r;

	if ((r = check_bounds_count(subject(p, who, sizeof(who)), n->min_items, n->max_items, len, "items", e)) < 0)
		return r;
	if (n->items == NULL)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (!path_push_index(p, i))
			return err_set(e, ENOMEM, "schema");
		r = check_node(n->items, json_object_array_get_idx(v, i), p, e);
		path_pop(p, mark);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_node(const struct node *n, json_object *v, struct path *p, struct err **e)
{
	char who[600];
	int r;

	while (n->target)
		n = n->target;
	if (v == NULL || json_object_is_type(v, json_type_null)) {
		if (n->nullable || n->types == 0)
			return 0;
		return err_setx(e, EINVAL, "%s must be %s, not null", subject(p, who, sizeof(who)),
				type_name(n->types));
	}
	if (n->types && !type_ok(n->types, v))
		return err_setx(e, EINVAL, "%s must be %s, not %s", subject(p, who, sizeof(who)), type_name(n->types),
				kind_of(v));
	if (n->enum_values && (r = check_enum(n, v, p, e)) < 0)
		return r;
	switch (json_object_get_type(v)) {
	case json_type_object:
		return check_object(n, v, p, e);
	case json_type_array:
		return check_array(n, v, p, e);
	case json_type_string:
		return check_string(n, v, p, e);
	case json_type_int:
	case json_type_double:
		return check_range(n, v, p, e);
	default:
		return 0;
	}
}

static int check_with(const struct node *n, json_object *v, const char *where, const char *prefix, const char *name,
		      struct err **e)
{
	struct path p = {.buf = malloc(64), .cap = 64, .where = where, .prefix = prefix};
	int r;

	if (p.buf == NULL)
		return err_set(e, ENOMEM, "schema");
	p.buf[0] = '\0';
	if (name && !path_push_key(&p, name)) {
		free(p.buf);
		return err_set(e, ENOMEM, "schema");
	}
	r = check_node(n, v, &p, e);
	free(p.buf);
	return r;
}

int schema_check(const struct schema_doc *d, const char *name, json_object *value, const char *where, struct err **e)
{
	const struct node *n = component_find(d, name);

	if (n == NULL)
		return err_setx(e, ENOENT, "schema: no schema named '%s' (a program error)", name);
	return check_with(n, value, where, "field", NULL, e);
}

const struct schema_op *schema_op_find(const struct schema_doc *d, const char *method, const char *path)
{
	size_t mlen = strlen(method);

	for (size_t i = 0; i < d->n_ops; i++) {
		const char *k = d->ops[i].key;
		if (strncmp(k, method, mlen) == 0 && k[mlen] == ' ' && strcmp(k + mlen + 1, path) == 0)
			return &d->ops[i];
	}
	return NULL;
}

int schema_check_body(const struct schema_op *op, const char *body, size_t len, json_object **ret, struct err **e)
{
	json_object *o = NULL;
	int r;

	if (ret)
		*ret = NULL;
	if (len == 0) {
		if (op->body && op->body_required)
			return err_setx(e, EINVAL, "this request needs a JSON body");
		return 0;
	}
	if ((r = json_doc_parse(body, len, "body", &o, e)) < 0)
		return r;
	if (op->body == NULL) {
		bool empty = json_object_is_type(o, json_type_object) && json_object_object_length(o) == 0;
		json_object_put(o);
		return empty ? 0 : err_setx(e, EINVAL, "%s takes no body", op->key);
	}
	if ((r = check_with(op->body, o, "body", "field", NULL, e)) < 0) {
		json_object_put(o);
		return r;
	}
	if (ret)
		*ret = o;
	else
		json_object_put(o);
	return 0;
}

/* The text of a parameter as the JSON value its schema expects. */
static json_object *param_value(const struct node *n, const char *text)
{
	char *end;

	while (n->target)
		n = n->target;
	if (n->types & T_INTEGER) {
		long long x;
		errno = 0;
		x = strtoll(text, &end, 10);
		if (*text && *end == '\0' && errno == 0 && (*text == '-' || (*text >= '0' && *text <= '9')))
			return json_object_new_int64(x);
	} else if (n->types & T_NUMBER) {
		double x;
		errno = 0;
		x = strtod(text, &end);
		if (*text && *end == '\0' && errno == 0 && isfinite(x))
			return json_object_new_double(x);
	} else if (n->types & T_BOOLEAN) {
		if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
			return json_object_new_boolean(text[0] == 't');
	} else {
		return json_object_new_string(text);
	}
	return NULL;
}

int schema_check_param(const struct schema_op *op, const char *in, const char *name, const char *value, struct err **e)
{
	bool in_path = strcmp(in, "path") == 0;
	const struct param *pa = NULL;
	char prefix[32];
	json_object *v;
	int r;

	for (size_t i = 0; i < op->n_params; i++)
		if (op->params[i].in_path == in_path && strcmp(op->params[i].name, name) == 0)
			pa = &op->params[i];
	if (pa == NULL)
		return err_setx(e, EINVAL, "unknown %s parameter '%s'", in, name);
	snprintf(prefix, sizeof(prefix), "%s parameter", in);
	v = param_value(pa->schema, value);
	if (v == NULL) {
		const struct node *n = pa->schema;
		while (n->target)
			n = n->target;
		return err_setx(e, EINVAL, "%s '%s' must be %s (got '%.64s')", prefix, name, type_name(n->types),
				value);
	}
	r = check_with(pa->schema, v, NULL, prefix, name, e);
	json_object_put(v);
	return r;
}

const char *schema_missing_param(const struct schema_op *op, const char *const *given)
{
	for (size_t i = 0; i < op->n_params; i++) {
		bool found = false;
		if (!op->params[i].required || op->params[i].in_path)
			continue;
		for (const char *const *g = given; g && *g; g++)
			found |= strcmp(*g, op->params[i].name) == 0;
		if (!found)
			return op->params[i].name;
	}
	return NULL;
}
