/* Parsers for user-supplied numbers and sizes. */
#ifndef CASULO_COMMON_PARSE_H
#define CASULO_COMMON_PARSE_H

#include <stdbool.h>
#include <stdint.h>

/* "256M", "4G", "1024K", "512" (bytes), "2T"; suffixes are binary (KiB..).
 * Returns 0, or -EINVAL on a malformed string, -ERANGE on overflow. */
int parse_size(const char *s, uint64_t *ret);

/* Whole unsigned decimal (or 0x hex) number with no trailing text. */
int parse_u64(const char *s, uint64_t *ret);
int parse_u32(const char *s, uint32_t *ret);

/* "on"/"off", "yes"/"no", "true"/"false", "1"/"0". */
int parse_bool(const char *s, bool *ret);

/*
 * Split one "key=value" item off a comma-separated option string, as in
 * "path=a.img,readonly=on".  *cursor advances past the item.  Returns 1
 * with key/value pointing into buf (modified in place), 0 at the end.
 * An item without '=' yields value NULL.
 */
int parse_next_option(char **cursor, char **key, char **value);

#endif
