/*
 * virtio-fs: a host directory shared with the guest, which mounts it by
 * its tag (mount -t virtiofs TAG /mnt).  The FUSE protocol is served
 * here, in the VMM, on the device's own thread (fs-server.c): no helper
 * daemon.  Queue 0 is the high-priority queue (the guest's FORGETs),
 * queue 1 the one request queue; both carry FUSE requests and are served
 * alike.  No DAX window: the guest's page cache holds file data, and
 * mmap() of shared files works through it.
 *
 * The server holds open host files and inodes the guest knows by number:
 * state that cannot be written into a snapshot or sent to another host,
 * so a VM with a virtio-fs device refuses both (dev.unmovable).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <linux/virtio_fs.h>
#include <linux/virtio_ids.h>

#include "vmm/config.h"
#include "vmm/devices/virtio/fs-server.h"
#include "vmm/devices/virtio/fs.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/vm.h"

#define FS_QUEUE_SIZE 1024
#define FS_NUM_QUEUES 2 /* hiprio and one request queue */

struct vfs {
	struct fs_server *server;
	struct virtq_req *req;
	char unmovable[200]; /* dev.unmovable */
};

static enum virtio_served fs_serve(struct virtio_dev *vd, unsigned q, struct virtq_req *req, uint32_t *written)
{
	struct vfs *f = vd->priv;

	(void)q;
	*written = fs_server_handle(f->server, req->out, req->n_out, req->in, req->n_in);
	return VIRTIO_SERVED;
}

static void fs_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct vfs *f = vd->priv;

	virtio_dev_serve_queue(vd, q, f->req, fs_serve);
}

/* The driver is gone (reset, or unloaded): what it knew is forgotten. */
static void fs_reset(struct virtio_dev *vd)
{
	struct vfs *f = vd->priv;

	fs_server_reset(f->server);
}

static void fs_metrics(struct virtio_dev *vd, json_object *c)
{
	struct vfs *f = vd->priv;
	struct fs_server_stats st;

	const struct device_counter counters[] = {
	    {"requests", &st.requests},
	    {"errors", &st.errors},
	    {"read_bytes", &st.read_bytes},
	    {"write_bytes", &st.write_bytes},
	};

	fs_server_get_stats(f->server, &st);
	device_counters_add(c, counters, ARRAY_SIZE(counters));
}

static void fs_destroy(struct virtio_dev *vd)
{
	struct vfs *f = vd->priv;

	if (f == NULL)
		return;
	fs_server_free(f->server);
	virtq_req_free(f->req);
	free(f);
}

static const struct virtio_dev_ops fs_ops = {
    .thread_kind = VMM_THREAD_FS,
    .name = "virtio-fs",
    .device_id = VIRTIO_ID_FS,
    .nqueues = FS_NUM_QUEUES,
    .queue_size = FS_QUEUE_SIZE,
    .reset = fs_reset,
    .queue_notify = fs_queue_notify,
    .destroy = fs_destroy,
    .metrics = fs_metrics,
};

int virtio_fs_create(struct vm *vm, const struct fs_config *c, struct err **e)
{
	struct virtio_fs_config cfg = {.num_request_queues = FS_NUM_QUEUES - 1};
	struct virtio_dev *vd;
	struct vfs *f = calloc(1, sizeof(*f));
	char what[64];
	int r;

	snprintf(what, sizeof(what), "virtio-fs '%s'", c->tag);
	if (f == NULL || (f->req = virtq_req_new(FS_MAX_SEGS)) == NULL) {
		free(f);
		return err_set(e, ENOMEM, "%s", what);
	}
	r = fs_server_new(what, c->path, c->readonly, &f->server, e);
	if (r < 0) {
		fs_destroy(&(struct virtio_dev){.priv = f});
		return r;
	}
	/* The tag is exactly 36 bytes, NUL-padded only when shorter. */
	memcpy(cfg.tag, c->tag, MIN(strlen(c->tag), sizeof(cfg.tag)));
	r = virtio_dev_create(vm, &fs_ops, c->tag, 0, &cfg, sizeof(cfg), f, &vd, e);
	if (r < 0)
		return r;
	snprintf(f->unmovable, sizeof(f->unmovable),
		 "%s: the guest's open files and inodes in the shared directory are host state that cannot be saved "
		 "or moved",
		 what);
	vd->dev.unmovable = f->unmovable;
	return 0;
}

static int virtio_fs_create_all(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	for (unsigned i = 0; i < cfg->nfs; i++) {
		int r = virtio_fs_create(vm, &cfg->fs[i], e);
		if (r < 0)
			return r;
	}
	return 0;
}

const struct device_type virtio_fs_type = {.name = "virtio-fs", .create = virtio_fs_create_all};
