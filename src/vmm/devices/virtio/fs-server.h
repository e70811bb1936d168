/*
 * virtio-fs: the FUSE server, serving one host directory to the guest.
 *
 * It sees requests only as the buffers of one virtqueue request: the
 * driver's (readable) ones hold the fuse_in_header and the operation's
 * arguments, WRITE's data after them; the device's (writable) ones take
 * the fuse_out_header and the reply, READ's data after it.  Everything
 * in them is the guest's and hostile: the arguments are copied out of
 * guest memory once, bounded (FS_MAX_ARGS) and parsed from the copy;
 * every length, offset, name, nodeid and fh is checked before use; a
 * request that does not parse gets EINVAL, an unknown opcode ENOSYS, and
 * nothing a guest sends makes the server touch a file outside the shared
 * directory (fs-nodes.h says how names are resolved).  With readonly set
 * every operation that would change the directory answers EROFS.
 *
 * Not thread-safe: one device thread serves a device's requests in order.
 */
#ifndef CASULO_VMM_DEVICES_VIRTIO_FS_SERVER_H
#define CASULO_VMM_DEVICES_VIRTIO_FS_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/err.h"

/* The largest READ or WRITE (max_write, max_pages in INIT's reply). */
#define FS_MAX_IO (1024 * 1024)
/* Buffers of one request the server handles: FS_MAX_IO in pages plus
 * the headers, with room to spare. */
#define FS_MAX_SEGS 300

struct fs_server;

struct fs_server_stats {
	uint64_t requests, errors, read_bytes, write_bytes;
};

/* Serve directory path (what names it in messages: "virtio-fs 'tag'"). */
int fs_server_new(const char *what, const char *path, bool readonly, struct fs_server **ret, struct err **e) MUST_CHECK;
void fs_server_free(struct fs_server *s);
/* Serve one request; returns the bytes written into the in buffers (0
 * for the requests that have no reply: FORGET, BATCH_FORGET). */
uint32_t fs_server_handle(struct fs_server *s, const struct iovec *out, unsigned nout, const struct iovec *in,
			  unsigned nin);
/* The driver went away (device reset): forget every inode and handle. */
void fs_server_reset(struct fs_server *s);
/* Counters for GET /metrics; any thread. */
void fs_server_get_stats(const struct fs_server *s, struct fs_server_stats *st);

#endif
