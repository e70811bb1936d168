/*
 * A kernel or initrd file as the boot loader sees it: a read-only view
 * for parsing headers, and (when it came from a file) the descriptor the
 * bulk data is read from straight into guest memory.  Reading with
 * pread() instead of copying from the mapping keeps the file's pages out
 * of the VMM's own memory.
 */
#ifndef CASULO_VMM_BOOT_BLOB_H
#define CASULO_VMM_BOOT_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/fdutil.h"

struct blob {
	const uint8_t *data; /* whole contents, mapped or in memory */
	size_t len;
	int fd; /* -1: copy from data */
};

static inline struct blob blob_from_buffer(const void *data, size_t len)
{
	return (struct blob){.data = data, .len = len, .fd = -1};
}

/* Copy [off, off+len) of the blob to dst; the caller checked the range. */
static inline int blob_copy(const struct blob *b, uint64_t off, void *dst, size_t len)
{
	if (b->fd >= 0)
		return pread_full(b->fd, dst, len, (off_t)off);
	memcpy(dst, b->data + off, len);
	return 0;
}

#endif
