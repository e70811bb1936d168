/*
 * virtio-vsock with the host side on Unix sockets (Firecracker's scheme).
 *
 *  - The guest connects to host port P: the device connects to the Unix
 *    socket PATH_P and answers RESPONSE, or RST when nobody listens there.
 *  - A host program connects to PATH and writes "CONNECT <port>\n": the
 *    device picks a free host port H (from 2^30 up), sends the guest a
 *    REQUEST from H to <port>, and on the guest's RESPONSE writes
 *    "OK <H>\n" to the program; from then on the stream is the guest's.
 *    A guest RST (nobody listening), a malformed line or no answer within
 *    VSOCK_CONNECT_TIMEOUT_MS closes the program's socket after one
 *    "ERR <why>\n" line (vsock_conn_refuse()).
 *
 * Flow control is credit-based in both directions, and nothing is
 * buffered without bound:
 *  - host -> guest: the Unix socket is read straight into a receive
 *    buffer the guest posted, never more than the guest's credit
 *    (buf_alloc - (tx_cnt - fwd_cnt)); without credit or buffers the
 *    socket is left unread and its writer blocks.
 *  - guest -> host: payloads are written to the socket straight from guest
 *    memory; what the socket does not take waits in a per-connection
 *    buffer of VSOCK_BUF_ALLOC bytes, which is exactly the credit this
 *    device advertises.  fwd_cnt only counts bytes the socket took, so a
 *    slow reader stops the guest, and a guest that sends beyond its credit
 *    is reset (RST), never buffered.
 *
 * Connections follow the virtio 1.2 state machine (5.10.6): REQUEST,
 * RESPONSE, RW, CREDIT_UPDATE/REQUEST, SHUTDOWN (half-close maps to
 * shutdown(2) on the Unix socket), RST.  Control packets a connection owes
 * the guest wait as flags on it until a receive buffer comes; replies to
 * packets for no connection wait in a small ring.  A chain that breaks the
 * framing rules (short header, payload longer than the chain or than
 * 64 KiB, a writable transmit buffer) is a driver bug: needs-reset.
 * Protocol errors on one connection (unknown op or type, data beyond
 * credit, data before RESPONSE) reset that connection only.
 *
 * The Unix sockets live in the device's own epoll set, edge-triggered,
 * with the connection as their event data: connections freed while that
 * set's events are being handled are only freed once the batch is done.
 *
 * This file is the device itself; its parts, one file per concern above
 * (connections, transmit, receive, host side), share vsock-internal.h.
 */
#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>
#include <linux/virtio_ids.h>

#include "vmm/devices/virtio/vsock-internal.h"
#include "vmm/devices/virtio/vsock.h"
#include "vmm/vm.h"

/* --- the event queue, resets --- */

static void vsock_deliver_event(struct vsock *v)
{
	struct virtio_dev *vd = v->vd;
	struct virtq *q = &vd->queues[VSOCK_EVQ];
	struct virtio_vsock_event ev = {.id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET)};
	int got;

	if (!v->event_owed || !vd->active || vd->broken)
		return;
	got = virtq_pop(q, v->req);
	if (got < 0) {
		virtio_dev_fail(vd, "malformed descriptor chain in the event queue");
		return;
	}
	if (got == 0)
		return; /* delivered when the guest posts a buffer */
	if (v->req->n_out > 0 || v->req->in_len < sizeof(ev)) {
		virtio_dev_fail(vd, "event buffer %u is not a device-writable 4-byte buffer", v->req->head);
		return;
	}
	iov_copy_to(v->req->in, v->req->n_in, 0, &ev, sizeof(ev));
	virtq_complete(q, v->req, sizeof(ev));
	v->event_owed = false;
	virtio_dev_notify_queue(vd, VSOCK_EVQ);
}

/* Drop every connection without a word to the guest (it forgets them too). */
static void vsock_drop_all(struct vsock *v)
{
	while (v->all)
		vsock_conn_free(v, v->all);
	v->orphan_len = 0;
	vsock_reap(v);
}

void virtio_vsock_transport_reset(struct virtio_dev *vd)
{
	struct vsock *v = vd->priv;

	vsock_drop_all(v);
	v->event_owed = true;
	vsock_deliver_event(v);
}

static void vsock_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct vsock *v = vd->priv;

	if (q == VSOCK_TXQ) {
		virtio_dev_serve_queue(vd, q, v->req, vsock_serve_tx);
		vsock_rx(v); /* replies, and data the guest's credit updates let through */
	} else if (q == VSOCK_RXQ)
		vsock_rx(v);
	else
		vsock_deliver_event(v);
	vsock_reap(v);
}

/* A restored guest had connections to sockets of another process: tell it
 * they are gone (as Firecracker does), once its driver runs again. */
static int vsock_restore(struct virtio_dev *vd, struct snap_section *s, struct err **e)
{
	struct vsock *v = vd->priv;

	(void)s;
	(void)e;
	v->event_owed = true;
	return 0;
}

/* Also after a restore (the event waits for a running driver). */
static int vsock_activate(struct virtio_dev *vd)
{
	vsock_deliver_event(vd->priv);
	return 0;
}

static void vsock_reset(struct virtio_dev *vd)
{
	struct vsock *v = vd->priv;

	vsock_drop_all(v);
	v->event_owed = false;
}

static void vsock_destroy(struct virtio_dev *vd)
{
	struct vsock *v = vd->priv;

	if (v == NULL)
		return;
	if (v->vd)
		vsock_drop_all(v);
	if (v->listen_fd >= 0) {
		close(v->listen_fd);
		unlink(v->path);
	}
	if (v->timer_fd >= 0)
		close(v->timer_fd);
	if (v->epfd >= 0)
		close(v->epfd);
	virtq_req_free(v->req);
	free(v->path);
	free(v);
}

static void vsock_metrics(struct virtio_dev *vd, json_object *o)
{
	struct vsock *v = vd->priv;
	const struct device_counter counters[] = {
	    {"connections", &v->connections},
	    {"resets_sent", &v->resets},
	    {"bytes_to_guest", &v->bytes_to_guest},
	    {"bytes_from_guest", &v->bytes_from_guest},
	};

	json_object_object_add(o, "connections_open",
			       json_object_new_int64(__atomic_load_n(&v->nconns, __ATOMIC_RELAXED)));
	device_counters_add(o, counters, ARRAY_SIZE(counters));
}

static const struct virtio_dev_ops vsock_ops = {
    .thread_kind = VMM_THREAD_VSOCK,
    .name = "virtio-vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .nqueues = 3,
    .queue_size = VSOCK_QUEUE_SIZE,
    .activate = vsock_activate,
    .reset = vsock_reset,
    .restore = vsock_restore,
    .metrics = vsock_metrics,
    .queue_notify = vsock_queue_notify,
    .destroy = vsock_destroy,
};

int virtio_vsock_create(struct vm *vm, const struct vsock_config *c, struct err **e)
{
	struct virtio_vsock_config cfg = {.guest_cid = htole64(c->cid)};
	struct virtio_dev *vd;
	struct vsock *v = calloc(1, sizeof(*v));
	int r;

	if (v == NULL || (v->req = virtq_req_new(VSOCK_REQ_SEGS)) == NULL || (v->path = strdup(c->socket)) == NULL) {
		if (v)
			virtq_req_free(v->req);
		free(v);
		return err_set(e, ENOMEM, "virtio-vsock 'vsock0'");
	}
	v->guest_cid = c->cid;
	v->next_port = VSOCK_FIRST_EPHEMERAL;
	v->listen_fd = v->epfd = v->timer_fd = -1;
	r = vsock_host_open(v, c, e);
	if (r < 0) {
		vsock_destroy(&(struct virtio_dev){.priv = v});
		return r;
	}
	/* From here on the VM owns v. */
	r = virtio_dev_create(vm, &vsock_ops, "vsock0", 0, &cfg, sizeof(cfg), v, &vd, e);
	if (r < 0)
		return r;
	v->vd = vd;
	return virtio_dev_watch(vd, v->epfd, EPOLLIN, vsock_on_host, e);
}

static int virtio_vsock_create_from(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	return cfg->vsock.enabled ? virtio_vsock_create(vm, &cfg->vsock, e) : 0;
}

const struct device_type virtio_vsock_type = {.name = "virtio-vsock", .create = virtio_vsock_create_from};
