/*
 * Virtio device core and the virtio-mmio (version 2) transport.
 *
 * A virtio device model supplies a struct virtio_dev_ops; the core keeps
 * the transport registers, feature negotiation, the queues, the
 * interrupt and a device thread:
 *
 *  - vCPU threads only touch transport registers (under vd->lock).  Queue
 *    notifications never reach them: each queue's QueueNotify write is an
 *    ioeventfd that wakes the device thread, and interrupts go back
 *    through an irqfd, so a slow backend never stalls a vCPU.
 *  - The device thread owns the queues.  Activation (DRIVER_OK) and reset
 *    run there too: the vCPU that wrote the status waits for it, so queue
 *    state is never shared between threads.
 *  - A driver that breaks the rules (bad ring addresses, a malformed
 *    chain, an impossible feature or status sequence) puts the device in
 *    the DEVICE_NEEDS_RESET state: it stops serving queues until reset.
 */
#ifndef CASULO_VMM_DEVICES_VIRTIO_VIRTIO_H
#define CASULO_VMM_DEVICES_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/devices/device.h"
#include "vmm/devices/virtio/queue.h"
#include "vmm/seccomp.h"

#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_MAX_THROTTLES 2 /* rate limiters on one device (virtio-net: rx and tx) */
#define VIRTIO_CONFIG_MAX 256
#define VIRTIO_MMIO_SIZE 0x200
#define VIRTIO_MMIO_SLOT 0x1000	    /* windows are placed 4 KiB apart */
#define VIRTIO_VENDOR_ID 0x4f4c5343 /* "CSLO" */

/* Transport-level features every Casulo device offers. */
#define VIRTIO_TRANSPORT_FEATURES                                                                                      \
	((1ULL << 32) /* VERSION_1 */ | (1ULL << 28) /* RING_INDIRECT_DESC */ | (1ULL << 29) /* RING_EVENT_IDX */)

struct vm;
struct virtio_dev;
struct virtio_watch;
struct throttle;
struct snap_writer;
struct snap_section;
struct json_object;

typedef void (*virtio_fd_fn)(struct virtio_dev *vd, int fd, uint32_t events);

struct virtio_dev_ops {
	const char *name;   /* "virtio-blk" */
	uint32_t device_id; /* VIRTIO_ID_* */
	unsigned nqueues;
	uint16_t queue_size; /* QueueNumMax of every queue */
	/* The seccomp list of its device thread (vmm/seccomp.h; 0: the plain
	 * device list). */
	enum vmm_thread_kind thread_kind;
	/* Device thread: the driver set DRIVER_OK; queues are mapped. */
	int (*activate)(struct virtio_dev *vd);
	/* Device thread: the driver reset the device (also before destroy). */
	void (*reset)(struct virtio_dev *vd);
	/* Device thread: queue q was kicked (or has work). */
	void (*queue_notify)(struct virtio_dev *vd, unsigned q);
	/* Device thread: finish every request in flight, for a pause
	 * (optional; models that complete requests at once need none). */
	void (*quiesce)(struct virtio_dev *vd);
	/* vCPU thread, vd->lock held: the driver wrote config bytes (optional;
	 * without it config space is read-only). */
	void (*config_write)(struct virtio_dev *vd, uint32_t offset, const uint8_t *data, uint32_t len);
	/* vCPU thread, vd->lock held: refresh vd->config before a read (optional). */
	void (*config_refresh)(struct virtio_dev *vd);
	/* Free the device's own state (after the thread stopped). */
	void (*destroy)(struct virtio_dev *vd);
	/* Snapshots (optional): the model's own state, written after the
	 * transport's in the device's section; the VM is paused.  A model
	 * without them has nothing beyond its rings to keep. */
	void (*save)(struct virtio_dev *vd, struct snap_writer *w);
	int (*restore)(struct virtio_dev *vd, struct snap_section *s, struct err **e);
	/* Model counters for GET /metrics (optional; any thread). */
	void (*metrics)(struct virtio_dev *vd, struct json_object *counters);
};

struct virtio_dev {
	struct device dev; /* in the VM's device list: start, pause, ACPI description, snapshots, destroy */
	const struct virtio_dev_ops *ops;
	struct vm *vm;
	char id[32]; /* instance name, e.g. "disk0", for messages */
	uint64_t mmio_base;
	unsigned gsi;
	unsigned index; /* DSDT device number */

	pthread_mutex_t lock; /* transport registers and config space */
	uint32_t status;
	uint64_t device_features; /* transport + device features */
	uint64_t driver_features;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint32_t config_generation;
	uint8_t config[VIRTIO_CONFIG_MAX];
	uint32_t config_len;
	atomic_uint interrupt_status;

	struct virtq queues[VIRTIO_MAX_QUEUES];
	int kick_fds[VIRTIO_MAX_QUEUES];
	int irq_fd;

	/* Device thread. */
	pthread_t thread;
	bool thread_started;
	int epfd;
	int ctl_fd;
	pthread_mutex_t ctl_lock;
	pthread_cond_t ctl_done;
	int ctl_cmd, ctl_result;
	struct virtio_watch *watches;	      /* what the thread's epoll events point at */
	struct virtio_watch *removed_watches; /* unwatched, freed after the current epoll batch */
	bool active;			      /* DRIVER_OK accepted, queues served */
	bool broken;			      /* DEVICE_NEEDS_RESET */
	bool paused;			      /* the VM is paused: no queue or fd is served */

	struct throttle *throttles[VIRTIO_MAX_THROTTLES]; /* the model's rate limiters (throttle.h) */

	void *priv;		    /* the device model's state */
	uint64_t kicks, interrupts; /* for GET /metrics (relaxed atomics) */
};

/*
 * Create a virtio-mmio device: allocate a window and an interrupt line,
 * register the ioeventfds and irqfd.  The device owns priv from the call
 * on: on any error it is released through ops->destroy (directly, or
 * with the device, which is already attached to the VM).  Start the
 * device thread with virtio_dev_start() once the model is ready.
 */
int virtio_dev_create(struct vm *vm, const struct virtio_dev_ops *ops, const char *id, uint64_t features,
		      const void *config, uint32_t config_len, void *priv, struct virtio_dev **ret,
		      struct err **e) MUST_CHECK;

/* The VM's first device of this model, or NULL. */
struct virtio_dev *virtio_dev_find(struct vm *vm, const struct virtio_dev_ops *ops);
/* The VM's virtio device whose instance name is id ("disk0", "net1"), or NULL. */
struct virtio_dev *virtio_dev_find_id(struct vm *vm, const char *id);
/* Is this device of the VM's list a virtio device? */
bool virtio_dev_is(const struct device *dev);

/* Start the device thread, once the model has added its own watches.
 * The VM starts every device's thread (devices_start(), the device's
 * start op) after creating them all, and pauses them with the VM (its
 * pause and resume ops: in-flight requests finished, no queue served).
 * A device whose thread is not started runs activation, reset and queue
 * processing inline on the caller's thread (virtio_dev_process_queue()):
 * unit tests and fuzzers drive it so. */
int virtio_dev_start(struct virtio_dev *vd, struct err **e) MUST_CHECK;
void virtio_dev_process_queue(struct virtio_dev *vd, unsigned q);

/* What a model's serve function did with one request. */
enum virtio_served { VIRTIO_SERVED, VIRTIO_KEPT, VIRTIO_FAILED };
/* Serve req, popped from queue q: VIRTIO_SERVED with *written bytes put
 * in its buffers (it is completed), VIRTIO_KEPT when the model holds on
 * to it, VIRTIO_FAILED after virtio_dev_fail(). */
typedef enum virtio_served (*virtio_serve_fn)(struct virtio_dev *vd, unsigned q, struct virtq_req *req,
					      uint32_t *written);
/* Device thread: serve every request queue q has, with kicks off while
 * busy and the race with a last kick closed, then interrupt the driver
 * once if anything was returned.  For models that serve each request at
 * once (virtio-rng, -console, -vsock, -balloon). */
void virtio_dev_serve_queue(struct virtio_dev *vd, unsigned q, struct virtq_req *req, virtio_serve_fn serve);
/* Device thread: tell the driver about used buffers on queue q if it wants. */
void virtio_dev_notify_queue(struct virtio_dev *vd, unsigned q);
/* Any thread: the config space changed (caller updated vd->config under vd->lock). */
void virtio_dev_config_changed(struct virtio_dev *vd);
/* Device thread: the driver broke the rules; stop and ask for a reset. */
void virtio_dev_fail(struct virtio_dev *vd, const char *fmt, ...) PRINTF_FMT(2, 3);
/* Device thread: was this feature negotiated? */
bool virtio_dev_has_feature(const struct virtio_dev *vd, unsigned bit);
/* Watch an extra fd on the device thread (a TAP device, a socket).  Its
 * callback runs whatever the device state: check vd->active. */
int virtio_dev_watch(struct virtio_dev *vd, int fd, uint32_t events, virtio_fd_fn fn, struct err **e) MUST_CHECK;
int virtio_dev_watch_modify(struct virtio_dev *vd, int fd, uint32_t events) MUST_CHECK;
void virtio_dev_unwatch(struct virtio_dev *vd, int fd);

/* The MMIO register handler (exported for unit tests and the fuzzer). */
void virtio_mmio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
