/*
 * Applying layers to a directory, confined to it.  Every parent directory
 * of an entry is resolved with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS): a symlink that an earlier layer planted
 * (absolute or relative, pointing anywhere) resolves inside the rootfs,
 * never out of it; the last component is never followed (O_NOFOLLOW,
 * O_EXCL, the *at() calls that act on a link itself), so an entry
 * replaces a symlink rather than writing through it.  Names with ".."
 * are refused, hard link targets too.
 *
 * Two forms:
 *  - flat (unpack, the copy fallback): whiteouts delete from the layers
 *    below; an opaque whiteout empties its directory of everything this
 *    layer did not write, wherever it comes in the stream, so that it
 *    acts before the layer's own entries;
 *  - overlay (the layer cache): each layer alone in its directory, its
 *    whiteouts written as overlayfs reads them (a 0/0 character device,
 *    trusted.overlay.opaque=y).
 */
#ifndef CASULO_IMAGE_UNPACK_H
#define CASULO_IMAGE_UNPACK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "image/layer.h"
#include "image/store.h"

struct progress;

struct unpack_opts {
	bool overlay_form;
	bool as_root; /* chown to the entries' owners, create devices */
};

struct unpack_stats {
	uint64_t entries, bytes, devices_skipped, owners_skipped;
};

/* Apply one layer (already opened) to the directory rootfd. */
int unpack_layer(int rootfd, struct layer_reader *lr, const char *layer_digest, const struct unpack_opts *o,
		 struct unpack_stats *st, struct err **e);

/* All layers of an image, flat, into dest (created; must not exist or be
 * empty).  On failure dest is removed again. */
int unpack_image_flat(struct store *s, const struct store_loaded *img, const char *dest, struct progress *p,
		      struct unpack_stats *st, struct err **e);

/* Make sure every layer of the image is in the layer cache (layers/HEX
 * of its diff_id, overlay form); needs root. */
int unpack_image_cached(struct store *s, const struct store_loaded *img, struct progress *p, struct err **e);

/* The overlay's lowerdir option for the image's cached layers (top layer
 * first): -ENOTSUP when it does not fit in size. */
int unpack_overlay_lowerdir(struct store *s, const struct store_loaded *img, char *out, size_t size, struct err **e);

/* Mount target as an overlay of the image's cached layers, with upper
 * and work directories (created).  -ENOTSUP when overlayfs is missing
 * or the option string would not fit, so that the caller copies. */
int unpack_mount_overlay(struct store *s, const struct store_loaded *img, const char *upper, const char *work,
			 const char *target, struct err **e);

#endif
