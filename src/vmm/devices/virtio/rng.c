/*
 * virtio-rng: entropy for the guest, from the host's getrandom().
 *
 * The guest's hw_random core reads it through /dev/hwrng and mixes it
 * into the kernel's pool, so a fresh guest has good randomness early.
 * Each request is filled up to RNG_MAX_REQUEST bytes: the spec lets the
 * device write less than the buffer holds, and a guest that posts a
 * gigabyte-sized buffer must not keep the device thread busy for long.
 */
#include <stdlib.h>
#include <sys/random.h>
#include <json-c/json.h>
#include <linux/virtio_ids.h>

#include "vmm/devices/virtio/rng.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/vm.h"

#define RNG_QUEUE_SIZE 64
#define RNG_REQ_SEGS 16
#define RNG_MAX_REQUEST (64 * 1024)

struct rng {
	struct virtq_req *req;
	uint64_t bytes; /* served, for GET /metrics (device thread writes) */
	uint8_t buf[RNG_MAX_REQUEST];
};

/* Fill the request's writable buffers; returns the bytes written. */
static uint32_t rng_fill(struct rng *r, const struct virtq_req *req)
{
	size_t want = (size_t)MIN(req->in_len, (uint64_t)RNG_MAX_REQUEST), got = 0;

	while (got < want) {
		ssize_t n = getrandom(r->buf + got, want - got, 0);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break; /* cannot happen after boot; deliver what we have */
		}
		got += (size_t)n;
	}
	return (uint32_t)iov_copy_to(req->in, req->n_in, 0, r->buf, got);
}

static enum virtio_served rng_serve(struct virtio_dev *vd, unsigned q, struct virtq_req *req, uint32_t *written)
{
	struct rng *r = vd->priv;

	(void)q;
	if (req->n_out > 0) {
		virtio_dev_fail(vd, "request %u has device-readable buffers", req->head);
		return VIRTIO_FAILED;
	}
	*written = rng_fill(r, req);
	__atomic_add_fetch(&r->bytes, *written, __ATOMIC_RELAXED);
	return VIRTIO_SERVED;
}

static void rng_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct rng *r = vd->priv;

	virtio_dev_serve_queue(vd, q, r->req, rng_serve);
}

static void rng_metrics(struct virtio_dev *vd, json_object *c)
{
	struct rng *r = vd->priv;

	const struct device_counter counters[] = {{"bytes", &r->bytes}};

	device_counters_add(c, counters, ARRAY_SIZE(counters));
}

static void rng_destroy(struct virtio_dev *vd)
{
	struct rng *r = vd->priv;

	if (r == NULL)
		return;
	virtq_req_free(r->req);
	free(r);
}

static const struct virtio_dev_ops rng_ops = {
    .name = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .nqueues = 1,
    .queue_size = RNG_QUEUE_SIZE,
    .queue_notify = rng_queue_notify,
    .destroy = rng_destroy,
    .metrics = rng_metrics,
};

int virtio_rng_create(struct vm *vm, struct err **e)
{
	struct virtio_dev *vd;
	struct rng *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->req = virtq_req_new(RNG_REQ_SEGS)) == NULL) {
		free(r);
		return err_set(e, ENOMEM, "virtio-rng 'rng0'");
	}
	return virtio_dev_create(vm, &rng_ops, "rng0", 0, NULL, 0, r, &vd, e);
}

static int virtio_rng_create_from(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	return cfg->rng ? virtio_rng_create(vm, e) : 0;
}

const struct device_type virtio_rng_type = {.name = "virtio-rng", .create = virtio_rng_create_from};
