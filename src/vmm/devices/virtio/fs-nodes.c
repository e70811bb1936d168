#include "vmm/devices/virtio/fs-nodes.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#define FIRST_BUCKETS 1024
#define NODE_SLOT(id) ((uint32_t)(id))
#define NODE_GEN(id) ((uint32_t)((id) >> 32))

static uint64_t make_id(uint32_t gen, uint32_t slot)
{
	return (uint64_t)gen << 32 | slot;
}

static uint32_t bucket_of(const struct fs_nodes *t, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4fULL;

	return (uint32_t)(h >> 32) & (t->nbuckets - 1);
}

static void hash_insert(struct fs_nodes *t, uint32_t slot)
{
	struct fs_node *n = &t->node[slot];
	uint32_t b = bucket_of(t, n->dev, n->ino);

	n->next = t->bucket[b];
	t->bucket[b] = slot;
}

static void hash_remove(struct fs_nodes *t, uint32_t slot)
{
	struct fs_node *n = &t->node[slot];

	for (uint32_t *p = &t->bucket[bucket_of(t, n->dev, n->ino)]; *p; p = &t->node[*p].next) {
		if (*p == slot) {
			*p = n->next;
			return;
		}
	}
}

static uint32_t hash_find(const struct fs_nodes *t, dev_t dev, ino_t ino)
{
	for (uint32_t s = t->bucket[bucket_of(t, dev, ino)]; s; s = t->node[s].next)
		if (t->node[s].dev == dev && t->node[s].ino == ino)
			return s;
	return 0;
}

/* Twice the buckets once there are more live nodes than buckets. */
static int hash_grow(struct fs_nodes *t)
{
	uint32_t *b = calloc((size_t)t->nbuckets * 2, sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
	free(t->bucket);
	t->bucket = b;
	t->nbuckets *= 2;
	for (uint32_t s = 1; s < t->nslots; s++)
		if (t->node[s].fd >= 0)
			hash_insert(t, s);
	return 0;
}

int fs_nodes_init(struct fs_nodes *t, int root_fd, uint32_t max_fds)
{
	struct stat st;

	memset(t, 0, sizeof(*t));
	t->max_fds = max_fds;
	t->nbuckets = FIRST_BUCKETS;
	t->cap = 64;
	t->bucket = calloc(t->nbuckets, sizeof(*t->bucket));
	t->node = calloc(t->cap, sizeof(*t->node));
	if (t->bucket == NULL || t->node == NULL || fstat(root_fd, &st) < 0) {
		close(root_fd);
		free(t->bucket);
		free(t->node);
		return -ENOMEM;
	}
	t->node[0].fd = -1;
	t->node[1] = (struct fs_node){
	    .fd = root_fd, .type = st.st_mode & S_IFMT, .nlookup = 1, .dev = st.st_dev, .ino = st.st_ino};
	t->nslots = 2;
	t->live = 1;
	t->fds = 1;
	hash_insert(t, 1);
	return 0;
}

static void node_free(struct fs_nodes *t, uint32_t slot)
{
	struct fs_node *n = &t->node[slot];

	hash_remove(t, slot);
	close(n->fd);
	n->fd = -1;
	n->nlookup = 0;
	if (++n->gen == 0)
		n->gen = 1;
	n->next = t->free_head;
	t->free_head = slot;
	t->live--;
	t->fds--;
}

/* The guest that knew the ids is gone (a new mount, a device reset): the
 * tables start over as they were, and hand out the same ids again. */
void fs_nodes_reset(struct fs_nodes *t)
{
	for (uint32_t s = 2; s < t->nslots; s++)
		if (t->node[s].fd >= 0)
			node_free(t, s);
	for (uint32_t i = 0; i < t->nhandles; i++)
		if (t->handle[i].fd >= 0)
			(void)!fs_handle_close(t, make_id(t->handle[i].gen, i + 1)); /* a live handle: it closes */
	if (t->nslots > 1) {
		t->node[1].nlookup = 1;
		t->nslots = 2;
	}
	t->free_head = 0;
	t->nhandles = 0;
	t->handle_free_head = 0;
}

void fs_nodes_destroy(struct fs_nodes *t)
{
	if (t->node == NULL)
		return;
	fs_nodes_reset(t);
	if (t->nslots > 1)
		close(t->node[1].fd);
	free(t->node);
	free(t->bucket);
	free(t->handle);
	memset(t, 0, sizeof(*t));
}

struct fs_node *fs_node_get(struct fs_nodes *t, uint64_t nodeid)
{
	uint32_t slot = NODE_SLOT(nodeid);

	if (slot == 0 || slot >= t->nslots || t->node[slot].fd < 0 || t->node[slot].gen != NODE_GEN(nodeid))
		return NULL;
	return &t->node[slot];
}

int fs_name_check(const char *name)
{
	size_t len = strnlen(name, NAME_MAX + 1);

	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	if (len == 0 || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	return 0;
}

int fs_open_beneath(int dirfd, const char *name, int flags, mode_t mode)
{
	static bool no_openat2;
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
	    .mode = (flags & O_CREAT) ? mode : 0,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd, r = fs_name_check(name);

	if (r < 0)
		return r;
	if (!__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
		fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno != ENOSYS)
			return -errno;
		__atomic_store_n(&no_openat2, true, __ATOMIC_RELAXED);
	}
	fd = openat(dirfd, name, (int)how.flags, mode);
	return fd < 0 ? -errno : fd;
}

static int node_slot_new(struct fs_nodes *t, uint32_t *slot)
{
	if (t->free_head) {
		*slot = t->free_head;
		t->free_head = t->node[*slot].next;
		return 0;
	}
	if (t->nslots == t->cap) {
		uint32_t cap = t->cap * 2;
		struct fs_node *n;

		if (cap <= t->cap || (n = realloc(t->node, (size_t)cap * sizeof(*n))) == NULL)
			return -ENOMEM;
		t->node = n;
		t->cap = cap;
	}
	*slot = t->nslots++;
	t->node[*slot] = (struct fs_node){.fd = -1, .gen = 1};
	return 0;
}

int fs_node_add_fd(struct fs_nodes *t, int fd, uint64_t *nodeid, struct stat *st)
{
	uint32_t slot;
	int r;

	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	slot = hash_find(t, st->st_dev, st->st_ino);
	if (slot) {
		/* Known already (a hard link, or looked up again): one fd is enough. */
		close(fd);
		t->node[slot].nlookup++;
		*nodeid = make_id(t->node[slot].gen, slot);
		return 0;
	}
	if (t->fds >= t->max_fds) {
		close(fd);
		return -ENFILE;
	}
	if ((t->live >= t->nbuckets && hash_grow(t) < 0) || node_slot_new(t, &slot) < 0) {
		close(fd);
		return -ENOMEM;
	}
	t->node[slot].fd = fd;
	t->node[slot].type = st->st_mode & S_IFMT;
	t->node[slot].nlookup = 1;
	t->node[slot].dev = st->st_dev;
	t->node[slot].ino = st->st_ino;
	hash_insert(t, slot);
	t->live++;
	t->fds++;
	*nodeid = make_id(t->node[slot].gen, slot);
	return 0;
}

int fs_node_lookup(struct fs_nodes *t, int dirfd, const char *name, uint64_t *nodeid, struct stat *st)
{
	int fd = fs_open_beneath(dirfd, name, O_PATH, 0);

	if (fd < 0)
		return fd;
	return fs_node_add_fd(t, fd, nodeid, st);
}

void fs_node_forget(struct fs_nodes *t, uint64_t nodeid, uint64_t n)
{
	struct fs_node *node = fs_node_get(t, nodeid);

	if (node == NULL || NODE_SLOT(nodeid) == 1)
		return;
	if (n >= node->nlookup)
		node_free(t, NODE_SLOT(nodeid));
	else
		node->nlookup -= n;
}

int fs_handle_add(struct fs_nodes *t, int fd, bool dir, uint64_t *fh)
{
	uint32_t i;

	if (t->fds >= t->max_fds) {
		close(fd);
		return -ENFILE;
	}
	if (t->handle_free_head) {
		i = t->handle_free_head - 1;
		t->handle_free_head = t->handle[i].next_free;
	} else {
		if (t->nhandles == t->handle_cap) {
			uint32_t cap = t->handle_cap ? t->handle_cap * 2 : 64;
			struct fs_handle *h;

			if (cap <= t->handle_cap || (h = realloc(t->handle, (size_t)cap * sizeof(*h))) == NULL) {
				close(fd);
				return -ENOMEM;
			}
			t->handle = h;
			t->handle_cap = cap;
		}
		i = t->nhandles++;
		t->handle[i].gen = 1;
	}
	t->handle[i].fd = fd;
	t->handle[i].dir = dir;
	t->fds++;
	*fh = make_id(t->handle[i].gen, i + 1);
	return 0;
}

struct fs_handle *fs_handle_get(struct fs_nodes *t, uint64_t fh)
{
	uint32_t slot = NODE_SLOT(fh);

	if (slot == 0 || slot > t->nhandles || t->handle[slot - 1].fd < 0 || t->handle[slot - 1].gen != NODE_GEN(fh))
		return NULL;
	return &t->handle[slot - 1];
}

int fs_handle_close(struct fs_nodes *t, uint64_t fh)
{
	struct fs_handle *h = fs_handle_get(t, fh);

	if (h == NULL)
		return -EBADF;
	close(h->fd);
	h->fd = -1;
	if (++h->gen == 0)
		h->gen = 1;
	h->next_free = t->handle_free_head;
	t->handle_free_head = NODE_SLOT(fh);
	t->fds--;
	return 0;
}
