/* Parsers for user-supplied numbers and sizes. */
#ifndef CASULO_COMMON_PARSE_H
#define CASULO_COMMON_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "256M", "4G", "1024K", "512" (bytes), "2T"; suffixes are binary (KiB..).
 * Returns 0, or -EINVAL on a malformed string, -ERANGE on overflow. */
int parse_size(const char *s, uint64_t *ret);

/* Whole unsigned decimal (or 0x hex) number with no trailing text. */
int parse_u64(const char *s, uint64_t *ret);
int parse_u32(const char *s, uint32_t *ret);

/* A duration as Go writes it (runc's flags take them): "100ms", "5s",
 * "1m30s", "1.5s", "2h", "250us", "10ns"; a number without a unit is
 * refused, as Go does (but "0").  Into nanoseconds: 0, -EINVAL, -ERANGE. */
int parse_duration_ns(const char *s, uint64_t *ret);

/* "on"/"off", "yes"/"no", "true"/"false", "1"/"0". */
int parse_bool(const char *s, bool *ret);

/*
 * Split one "key=value" item off a comma-separated option string, as in
 * "path=a.img,readonly=on".  *cursor advances past the item.  Returns 1
 * with key/value pointing into buf (modified in place), 0 at the end.
 * An item without '=' yields value NULL.
 */
int parse_next_option(char **cursor, char **key, char **value);

/*
 * Walk a comma-separated "key=value" option string, calling fn(opaque,
 * index, key, value) for each item (index counts items from 0).  An item
 * without '=' that follows one whose key is in list_keys (NULL-ended)
 * continues that value, since host CPU lists hold commas: "cpus=0-1,4"
 * is cpus "0-1,4".  Any other item without '=' comes with value NULL.
 * Returns fn's first non-zero return, 0 at the end, or -ENOMEM.
 */
int parse_options_with_lists(const char *spec, const char *const *list_keys,
			     int (*fn)(void *opaque, unsigned index, const char *key, const char *value), void *opaque);

/*
 * The first key given twice among the key=value items of spec ("path=a,
 * readonly=on,path=b" gives "path"), copied to key (cut to len).  Items
 * without '=' are not keys.  Returns 1 when there is one, 0 when not,
 * -ENOMEM.
 */
int parse_option_duplicate(const char *spec, char *key, size_t len);

/* The number a line "Name:<spaces>N..." of /proc/self/status starts with,
 * read in base (8 for Umask, 10 for VmRSS's kB), or fallback. */
long proc_self_status(const char *name, int base, long fallback);

#endif
