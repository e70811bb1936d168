/* Rate limits as JSON (common/ratelimit-json.h). */
#include "common/ratelimit-json.h"

#include <stdio.h>
#include <string.h>

#include "common/macro.h"

static const char *const bucket_keys[] = {"size", "one_time_burst", "refill_time_ms"};

json_object *ratelimit_config_to_json(const struct ratelimit_config *c)
{
	const struct {
		const char *name;
		const struct token_bucket_config *b;
	} buckets[] = {{"bandwidth", &c->bandwidth}, {"ops", &c->ops}};
	json_object *o = json_object_new_object();

	for (size_t i = 0; i < ARRAY_SIZE(buckets); i++) {
		const struct token_bucket_config *b = buckets[i].b;
		json_object *bj;
		if (b->size == 0)
			continue;
		bj = json_object_new_object();
		json_object_object_add(bj, bucket_keys[0], json_object_new_int64((int64_t)b->size));
		json_object_object_add(bj, bucket_keys[1], json_object_new_int64((int64_t)b->one_time_burst));
		json_object_object_add(bj, bucket_keys[2], json_object_new_int64((int64_t)b->refill_ms));
		json_object_object_add(o, buckets[i].name, bj);
	}
	return o;
}

static bool bucket_from_json(json_object *o, const char *name, struct token_bucket_config *b, char *why, size_t why_len)
{
	uint64_t *fields[] = {&b->size, &b->one_time_burst, &b->refill_ms};
	const char *invalid;
	json_object *v;

	memset(b, 0, sizeof(*b));
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(why, why_len, "'%s' is not an object", name);
		return false;
	}
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		if (strcmp(key, bucket_keys[0]) && strcmp(key, bucket_keys[1]) && strcmp(key, bucket_keys[2])) {
			snprintf(why, why_len, "'%s' has an unknown field '%s'", name, key);
			return false;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		if (!json_object_object_get_ex(o, bucket_keys[i], &v))
			continue;
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0) {
			snprintf(why, why_len, "'%s.%s' is not a whole number of at least 0", name, bucket_keys[i]);
			return false;
		}
		*fields[i] = (uint64_t)json_object_get_int64(v);
	}
	if ((invalid = token_bucket_config_invalid(b)) != NULL) {
		snprintf(why, why_len, "'%s': %s", name, invalid);
		return false;
	}
	return true;
}

bool ratelimit_config_from_json(json_object *o, struct ratelimit_config *c, char *why, size_t why_len)
{
	json_object *v;

	memset(c, 0, sizeof(*c));
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(why, why_len, "a rate limit is an object with \"bandwidth\" and \"ops\"");
		return false;
	}
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		if (strcmp(key, "bandwidth") != 0 && strcmp(key, "ops") != 0) {
			snprintf(why, why_len, "a rate limit has no field '%s' (only bandwidth and ops)", key);
			return false;
		}
	}
	if (json_object_object_get_ex(o, "bandwidth", &v) &&
	    !bucket_from_json(v, "bandwidth", &c->bandwidth, why, why_len))
		return false;
	if (json_object_object_get_ex(o, "ops", &v) && !bucket_from_json(v, "ops", &c->ops, why, why_len))
		return false;
	return true;
}
