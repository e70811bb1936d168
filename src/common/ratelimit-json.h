/*
 * A rate limit (common/ratelimit.h) as JSON, the form of casulo-vmm's API
 * and configuration: {"bandwidth": BUCKET, "ops": BUCKET}, each bucket
 * {"size", "one_time_burst", "refill_time_ms"}; a bucket that limits
 * nothing is left out ({} limits nothing).  In libcasulo-json-doc, with
 * json-c, so that what links libcasulo-common alone does not need it.
 */
#ifndef CASULO_COMMON_RATELIMIT_JSON_H
#define CASULO_COMMON_RATELIMIT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "common/ratelimit.h"

json_object *ratelimit_config_to_json(const struct ratelimit_config *c);
/* false with a one-line reason in why when o is not a valid rate limit. */
bool ratelimit_config_from_json(json_object *o, struct ratelimit_config *c, char *why, size_t why_len);

#endif
