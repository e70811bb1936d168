/*
 * virtio-fs: the inodes and open files the guest knows about, as tables
 * of host file descriptors, and the one way names are resolved.
 *
 * Every inode the guest has looked up is held as an O_PATH | O_NOFOLLOW
 * fd: the host inode (and so its inode number) cannot go away or be
 * reused while the guest knows it, and no operation ever goes through a
 * path again.  The guest names it by a nodeid that encodes its slot and
 * the slot's generation, so a nodeid the server never handed out, or one
 * the guest has forgotten since, resolves to nothing.  Open files and
 * directories are the same with a handle (fh).
 *
 * Names are resolved one component at a time below a directory fd the
 * table holds: fs_name_ok() refuses "", ".", "..", anything with a '/'
 * or longer than NAME_MAX, and fs_open_beneath() opens with openat2()
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS and
 * O_NOFOLLOW: a symlink is opened as itself, never followed.  Nothing
 * outside the shared directory can be reached from its root this way.
 *
 * The number of fds both tables hold is bounded (a guest that looks up
 * a million files gets ENFILE, not the VMM's last descriptor).
 */
#ifndef CASULO_VMM_DEVICES_VIRTIO_FS_NODES_H
#define CASULO_VMM_DEVICES_VIRTIO_FS_NODES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/macro.h"

#define FS_ROOT_NODEID 1ULL

struct fs_node {
	int fd;		  /* O_PATH | O_NOFOLLOW; -1: a free slot */
	uint32_t gen;	  /* bumped each time the slot is freed */
	mode_t type;	  /* st_mode & S_IFMT: an inode never changes type */
	uint64_t nlookup; /* lookups the guest has not forgotten yet */
	dev_t dev;
	ino_t ino;
	uint32_t next; /* in use: next slot of its hash bucket; free: next free slot (0: none) */
};

struct fs_handle {
	int fd; /* -1: a free slot */
	uint32_t gen;
	bool dir;
	uint32_t next_free;
};

struct fs_nodes {
	struct fs_node *node; /* slot 0 is never used, slot 1 is the root */
	uint32_t nslots, cap;
	uint32_t free_head;
	uint32_t *bucket; /* (dev, ino) -> first slot, 0: empty */
	uint32_t nbuckets, live;
	struct fs_handle *handle;
	uint32_t nhandles, handle_cap;
	uint32_t handle_free_head; /* slot + 1, 0: none */
	uint32_t fds, max_fds;	   /* fds held by both tables, and the bound */
};

/* Take root_fd (an O_PATH directory fd) as the root, nodeid 1.  Returns 0
 * or -ENOMEM (root_fd is closed then too). */
int fs_nodes_init(struct fs_nodes *t, int root_fd, uint32_t max_fds) MUST_CHECK;
void fs_nodes_destroy(struct fs_nodes *t);
/* Forget every inode but the root and close every handle (unmount,
 * device reset); the ids handed out start over. */
void fs_nodes_reset(struct fs_nodes *t);

/* The node a guest nodeid names, or NULL.  The pointer is valid until the
 * next call that adds a node. */
struct fs_node *fs_node_get(struct fs_nodes *t, uint64_t nodeid);
/* Open name below the directory dirfd (O_PATH) and count one lookup of
 * its inode: *nodeid and *st describe it.  0 or -errno. */
int fs_node_lookup(struct fs_nodes *t, int dirfd, const char *name, uint64_t *nodeid, struct stat *st) MUST_CHECK;
/* The same for an O_PATH fd already open (taken over, closed on error). */
int fs_node_add_fd(struct fs_nodes *t, int fd, uint64_t *nodeid, struct stat *st) MUST_CHECK;
/* The guest dropped n lookups of nodeid; the last one frees it.  Unknown
 * nodeids and the root are ignored. */
void fs_node_forget(struct fs_nodes *t, uint64_t nodeid, uint64_t n);

/* Take fd over as an open file (or directory); *fh names it.  0, or
 * -ENFILE when the bound is reached (fd is closed then). */
int fs_handle_add(struct fs_nodes *t, int fd, bool dir, uint64_t *fh) MUST_CHECK;
struct fs_handle *fs_handle_get(struct fs_nodes *t, uint64_t fh);
/* 0, or -EBADF for an unknown handle. */
int fs_handle_close(struct fs_nodes *t, uint64_t fh) MUST_CHECK;

/* One directory entry name the guest may use: 1-NAME_MAX bytes, no '/',
 * not "." or "..".  0, -EINVAL or -ENAMETOOLONG. */
int fs_name_check(const char *name) MUST_CHECK;
/* openat2() below dirfd without following any symlink; flags get
 * O_NOFOLLOW | O_CLOEXEC.  Falls back to openat() where openat2() is
 * missing: with a checked single-component name and O_NOFOLLOW that is
 * just as confined.  Returns the fd or -errno. */
int fs_open_beneath(int dirfd, const char *name, int flags, mode_t mode) MUST_CHECK;

#endif
