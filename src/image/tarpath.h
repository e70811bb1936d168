/*
 * The path logic of layer entries, pure and fuzzed: names cleaned into
 * rootfs-relative paths (no "..", no absolute escape), OCI whiteouts told
 * apart, and a string hash map for the paths a layer has written.
 */
#ifndef CASULO_IMAGE_TARPATH_H
#define CASULO_IMAGE_TARPATH_H

#include <stdbool.h>
#include <stddef.h>

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"

/*
 * Clean a tar entry name into a relative path below the rootfs: leading
 * "/" and "./" dropped, "//" and "/./" folded, a trailing "/" dropped; the
 * root itself is "".  Returns 0, -EINVAL when a ".." component would
 * leave the rootfs (any ".." at all: layers have no business with them)
 * or the name holds a NUL-free but empty component trick, -ENAMETOOLONG.
 */
int tarpath_clean(const char *name, char *out, size_t size);

enum tarpath_kind {
	TARPATH_NORMAL,
	TARPATH_WHITEOUT, /* "dir/.wh.NAME": target is "dir/NAME" */
	TARPATH_OPAQUE,	  /* "dir/.wh..wh..opq": target is "dir" */
	TARPATH_RESERVED, /* another ".wh..wh." name: ignored */
};

/* Classify a cleaned path; for whiteouts, target receives the path it
 * hides.  Returns the kind, or -EINVAL for ".wh." with no name. */
int tarpath_classify(const char *clean, char *target, size_t size);

/* Split a cleaned path into its parent ("" for the root) and last name;
 * parent must hold size bytes. */
void tarpath_split(const char *clean, char *parent, size_t size, const char **name);

/* Does path lie at or below dir ("" is the root, holding everything)? */
bool tarpath_within(const char *path, const char *dir);

/* An open-addressing hash map from strings (copied) to pointers. */
struct strmap {
	struct strmap_slot {
		char *key;
		void *value;
	} * slots;
	size_t cap, count;
};

void strmap_init(struct strmap *m);
/* Insert or replace; returns 0 or -ENOMEM.  *old receives the previous
 * value (NULL if none) so that the caller can free it. */
int strmap_put(struct strmap *m, const char *key, void *value, void **old);
void *strmap_get(const struct strmap *m, const char *key);
bool strmap_has(const struct strmap *m, const char *key);
/* Free the keys (and each value with free_value, when given). */
void strmap_free(struct strmap *m, void (*free_value)(void *));
#define strmap_foreach(m, slot)                                                                                        \
	for (struct strmap_slot *slot = (m)->slots; slot && slot < (m)->slots + (m)->cap; slot++)                      \
		if (slot->key)

/* Add path and each of its ancestors to a set (values unused). */
int strmap_add_with_parents(struct strmap *m, const char *path);

#endif
