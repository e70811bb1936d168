#include "vmm/devices/virtio/virtio.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <json-c/json.h>

#include "common/log.h"
#include "common/thread.h"
#include "vmm/arch/x86/aml.h"
#include "vmm/arch/x86/layout.h"
#include "vmm/seccomp.h"
#include "vmm/snapshot/format.h"
#include "vmm/vm.h"

#define VIRT_MAGIC 0x74726976 /* "virt" */
#define VIRTIO_MMIO_VERSION_MODERN 2
#define VIRTIO_ISR_QUEUE 0x1
#define VIRTIO_ISR_CONFIG 0x2

enum ctl_cmd { CTL_NONE, CTL_ACTIVATE, CTL_RESET, CTL_STOP, CTL_PAUSE, CTL_RESUME };

/* What an epoll event on the device thread refers to. */
/* WATCH_REMOVED: unwatched while an epoll batch may still point at it;
 * freed once the batch is done. */
enum watch_kind { WATCH_CTL, WATCH_KICK, WATCH_FD, WATCH_REMOVED };
struct virtio_watch {
	enum watch_kind kind;
	int fd;
	unsigned queue;
	virtio_fd_fn fn;
	uint32_t events; /* what the model asked for (epoll has 0 while paused) */
	struct virtio_watch *next;
};

static int watch_add(struct virtio_dev *vd, enum watch_kind kind, int fd, unsigned queue, virtio_fd_fn fn,
		     uint32_t events)
{
	struct virtio_watch *w = calloc(1, sizeof(*w));
	struct epoll_event ev = {.events = events};

	if (w == NULL)
		return -ENOMEM;
	*w = (struct virtio_watch){kind, fd, queue, fn, events, vd->watches};
	ev.data.ptr = w;
	if (epoll_ctl(vd->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int saved = errno;
		free(w);
		return -saved;
	}
	vd->watches = w;
	return 0;
}

int virtio_dev_watch(struct virtio_dev *vd, int fd, uint32_t events, virtio_fd_fn fn, struct err **e)
{
	int r = watch_add(vd, WATCH_FD, fd, 0, fn, events);

	if (r < 0)
		return err_set(e, -r, "%s '%s': watch fd %d", vd->ops->name, vd->id, fd);
	return 0;
}

static int watch_apply(struct virtio_dev *vd, struct virtio_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};

	return epoll_ctl(vd->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0 ? -errno : 0;
}

int virtio_dev_watch_modify(struct virtio_dev *vd, int fd, uint32_t events)
{
	for (struct virtio_watch *w = vd->watches; w; w = w->next) {
		if (w->kind == WATCH_FD && w->fd == fd) {
			w->events = events;
			return vd->paused ? 0 : watch_apply(vd, w, events);
		}
	}
	return -ENOENT;
}

/* Device thread only (or before the thread starts). */
static void free_removed_watches(struct virtio_dev *vd)
{
	while (vd->removed_watches) {
		struct virtio_watch *w = vd->removed_watches;
		vd->removed_watches = w->next;
		free(w);
	}
}

void virtio_dev_unwatch(struct virtio_dev *vd, int fd)
{
	for (struct virtio_watch **p = &vd->watches; *p; p = &(*p)->next) {
		if ((*p)->kind == WATCH_FD && (*p)->fd == fd) {
			struct virtio_watch *w = *p;
			(void)epoll_ctl(vd->epfd, EPOLL_CTL_DEL, fd, NULL);
			*p = w->next;
			/* A later event of the batch being handled may point at w. */
			w->kind = WATCH_REMOVED;
			w->next = vd->removed_watches;
			vd->removed_watches = w;
			return;
		}
	}
}

bool virtio_dev_has_feature(const struct virtio_dev *vd, unsigned bit)
{
	return bit < 64 && (vd->driver_features & (1ULL << bit));
}

static void raise_interrupt(struct virtio_dev *vd, unsigned isr)
{
	uint64_t one = 1;

	__atomic_add_fetch(&vd->interrupts, 1, __ATOMIC_RELAXED);
	atomic_fetch_or(&vd->interrupt_status, isr);
	(void)!write(vd->irq_fd, &one, sizeof(one));
}

void virtio_dev_notify_queue(struct virtio_dev *vd, unsigned q)
{
	if (virtq_should_notify(&vd->queues[q]))
		raise_interrupt(vd, VIRTIO_ISR_QUEUE);
}

void virtio_dev_config_changed(struct virtio_dev *vd)
{
	pthread_mutex_lock(&vd->lock);
	vd->config_generation++;
	pthread_mutex_unlock(&vd->lock);
	raise_interrupt(vd, VIRTIO_ISR_CONFIG);
}

void virtio_dev_fail(struct virtio_dev *vd, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (vd->broken)
		return;
	vd->broken = true;
	log_warn("%s '%s': %s: device needs reset", vd->ops->name, vd->id, why);
	pthread_mutex_lock(&vd->lock);
	vd->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	vd->config_generation++;
	pthread_mutex_unlock(&vd->lock);
	raise_interrupt(vd, VIRTIO_ISR_CONFIG);
}

/* --- the device thread --- */

static int do_activate(struct virtio_dev *vd)
{
	bool event_idx = virtio_dev_has_feature(vd, VIRTIO_RING_F_EVENT_IDX);
	struct virtq snapshot[VIRTIO_MAX_QUEUES];

	/* The queue registers belong to the vCPUs: copy them under the lock. */
	pthread_mutex_lock(&vd->lock);
	memcpy(snapshot, vd->queues, sizeof(snapshot));
	pthread_mutex_unlock(&vd->lock);
	for (unsigned i = 0; i < vd->ops->nqueues; i++) {
		struct virtq *q = &vd->queues[i];
		*q = snapshot[i];
		if (!q->ready)
			continue;
		q->ready = false;
		if (virtq_enable(q, &vd->vm->mem, event_idx) < 0) {
			virtio_dev_fail(vd,
					"queue %u: ring of %u entries at 0x%llx/0x%llx/0x%llx is not in guest memory",
					i, q->size, (unsigned long long)q->desc_addr, (unsigned long long)q->avail_addr,
					(unsigned long long)q->used_addr);
			return -EINVAL;
		}
	}
	if (vd->ops->activate && vd->ops->activate(vd) < 0) {
		virtio_dev_fail(vd, "activation failed");
		return -EIO;
	}
	vd->active = true;
	/* Kicks may have come before DRIVER_OK was complete. */
	for (unsigned i = 0; i < vd->ops->nqueues; i++)
		if (virtq_has_work(&vd->queues[i]))
			vd->ops->queue_notify(vd, i);
	return 0;
}

static void do_reset(struct virtio_dev *vd)
{
	if (vd->ops->reset)
		vd->ops->reset(vd);
	vd->active = false;
	vd->broken = false;
	for (unsigned i = 0; i < vd->ops->nqueues; i++)
		virtq_reset(&vd->queues[i]);
	atomic_store(&vd->interrupt_status, 0);
}

/* Quiesce: the model finishes what is in flight, its fds go quiet, and
 * kicks are left for do_resume() to look at. */
static void do_pause(struct virtio_dev *vd)
{
	if (vd->paused)
		return;
	if (vd->active && !vd->broken && vd->ops->quiesce)
		vd->ops->quiesce(vd);
	for (struct virtio_watch *w = vd->watches; w; w = w->next)
		if (w->kind == WATCH_FD)
			(void)watch_apply(vd, w, 0);
	vd->paused = true;
}

static void do_resume(struct virtio_dev *vd)
{
	if (!vd->paused)
		return;
	vd->paused = false;
	for (struct virtio_watch *w = vd->watches; w; w = w->next)
		if (w->kind == WATCH_FD)
			(void)watch_apply(vd, w, w->events);
	if (!vd->active || vd->broken)
		return;
	for (unsigned i = 0; i < vd->ops->nqueues; i++)
		if (virtq_has_work(&vd->queues[i]))
			vd->ops->queue_notify(vd, i);
}

static bool handle_ctl(struct virtio_dev *vd)
{
	uint64_t v;
	int cmd, result = 0;

	(void)!read(vd->ctl_fd, &v, sizeof(v));
	pthread_mutex_lock(&vd->ctl_lock);
	cmd = vd->ctl_cmd;
	pthread_mutex_unlock(&vd->ctl_lock);
	switch (cmd) {
	case CTL_ACTIVATE:
		result = do_activate(vd);
		break;
	case CTL_RESET:
		do_reset(vd);
		break;
	case CTL_STOP:
		do_reset(vd);
		break;
	case CTL_PAUSE:
		do_pause(vd);
		break;
	case CTL_RESUME:
		do_resume(vd);
		break;
	default:
		return true;
	}
	pthread_mutex_lock(&vd->ctl_lock);
	vd->ctl_cmd = CTL_NONE;
	vd->ctl_result = result;
	pthread_cond_broadcast(&vd->ctl_done);
	pthread_mutex_unlock(&vd->ctl_lock);
	return cmd != CTL_STOP;
}

static void *device_thread(void *arg)
{
	struct virtio_dev *vd = arg;
	struct epoll_event evs[16];
	char name[16];

	struct err *e = NULL;

	snprintf(name, sizeof(name), "%.15s", vd->id);
	pthread_setname_np(pthread_self(), name);
	/* Unfiltered, the device serves nothing: it fails, and so does the VM. */
	if (vmm_seccomp_install(vd->ops->thread_kind, &e) < 0) {
		vm_fail(vd->vm, "%s '%s': %s", vd->ops->name, vd->id, e->msg);
		err_free(&e);
		vd->broken = true;
	}
	for (;;) {
		int n = epoll_wait(vd->epfd, evs, 16, -1);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			struct virtio_watch *w = evs[i].data.ptr;
			uint64_t v;

			switch (w->kind) {
			case WATCH_CTL:
				if (!handle_ctl(vd))
					return NULL;
				break;
			case WATCH_KICK:
				(void)!read(w->fd, &v, sizeof(v));
				__atomic_add_fetch(&vd->kicks, 1, __ATOMIC_RELAXED);
				if (vd->active && !vd->broken && !vd->paused)
					vd->ops->queue_notify(vd, w->queue);
				break;
			case WATCH_FD:
				/* Always delivered (level-triggered epoll would spin
				 * otherwise); the model checks vd->active itself. */
				w->fn(vd, w->fd, evs[i].events);
				break;
			case WATCH_REMOVED:
				break;
			}
		}
		free_removed_watches(vd);
	}
	return NULL;
}

/* Run cmd on the device thread and wait for it.  A device whose thread
 * was never started (unit tests, fuzzers) runs everything inline. */
static int device_command(struct virtio_dev *vd, int cmd)
{
	uint64_t one = 1;
	int result;

	if (!vd->thread_started) {
		switch (cmd) {
		case CTL_ACTIVATE:
			return do_activate(vd);
		case CTL_PAUSE:
			do_pause(vd);
			return 0;
		case CTL_RESUME:
			do_resume(vd);
			return 0;
		default:
			do_reset(vd);
			return 0;
		}
	}
	pthread_mutex_lock(&vd->ctl_lock);
	while (vd->ctl_cmd != CTL_NONE)
		pthread_cond_wait(&vd->ctl_done, &vd->ctl_lock);
	vd->ctl_cmd = cmd;
	(void)!write(vd->ctl_fd, &one, sizeof(one));
	while (vd->ctl_cmd == cmd)
		pthread_cond_wait(&vd->ctl_done, &vd->ctl_lock);
	result = vd->ctl_result;
	pthread_mutex_unlock(&vd->ctl_lock);
	return result;
}

/* --- the virtio-mmio register file (vCPU threads) --- */

static void write_status(struct virtio_dev *vd, uint32_t v)
{
	uint32_t old = vd->status;

	if (v == 0) {
		pthread_mutex_unlock(&vd->lock);
		device_command(vd, CTL_RESET);
		pthread_mutex_lock(&vd->lock);
		vd->status = 0;
		vd->driver_features = 0;
		vd->device_features_sel = vd->driver_features_sel = vd->queue_sel = 0;
		return;
	}
	/* Bits are only ever added until reset; NEEDS_RESET is the device's. */
	v &= ~VIRTIO_CONFIG_S_NEEDS_RESET;
	if ((old & ~v) & ~VIRTIO_CONFIG_S_NEEDS_RESET) {
		log_debug("%s '%s': driver cleared status bits 0x%x, ignoring", vd->ops->name, vd->id, old & ~v);
		v |= old;
	}
	if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		/* Accept only features we offered, and only the modern interface. */
		if ((vd->driver_features & ~vd->device_features) ||
		    !(vd->driver_features & (1ULL << VIRTIO_F_VERSION_1)))
			v &= ~VIRTIO_CONFIG_S_FEATURES_OK;
	}
	if ((v & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		if (!(v & VIRTIO_CONFIG_S_FEATURES_OK)) {
			vd->status = v | VIRTIO_CONFIG_S_NEEDS_RESET;
			log_warn("%s '%s': DRIVER_OK without FEATURES_OK: device needs reset", vd->ops->name, vd->id);
			return;
		}
		vd->status = v;
		pthread_mutex_unlock(&vd->lock);
		device_command(vd, CTL_ACTIVATE);
		pthread_mutex_lock(&vd->lock);
		return;
	}
	vd->status = (v & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (vd->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static struct virtq *selected_queue(struct virtio_dev *vd)
{
	return vd->queue_sel < vd->ops->nqueues ? &vd->queues[vd->queue_sel] : NULL;
}

/* Queue registers may change only while the queue is off and the device
 * not yet running. */
static struct virtq *writable_queue(struct virtio_dev *vd)
{
	struct virtq *q = selected_queue(vd);

	if (q == NULL || q->ready || (vd->status & VIRTIO_CONFIG_S_DRIVER_OK))
		return NULL;
	return q;
}

static void set_low(uint64_t *v, uint32_t low)
{
	*v = (*v & 0xffffffff00000000ULL) | low;
}
static void set_high(uint64_t *v, uint32_t high)
{
	*v = (*v & 0xffffffffULL) | ((uint64_t)high << 32);
}

static uint32_t register_read(struct virtio_dev *vd, uint64_t off)
{
	struct virtq *q = selected_queue(vd);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRT_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return VIRTIO_MMIO_VERSION_MODERN;
	case VIRTIO_MMIO_DEVICE_ID:
		return vd->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_VENDOR_ID;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return vd->device_features_sel == 0   ? (uint32_t)vd->device_features
		       : vd->device_features_sel == 1 ? (uint32_t)(vd->device_features >> 32)
						      : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? q->max_size : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return atomic_load(&vd->interrupt_status);
	case VIRTIO_MMIO_STATUS:
		return vd->status;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return vd->config_generation;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
		return 0xffffffff; /* no shared memory regions */
	default:
		return 0;
	}
}

static void register_write(struct virtio_dev *vd, uint64_t off, uint32_t v)
{
	struct virtq *q;

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		vd->device_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		vd->driver_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (vd->status & VIRTIO_CONFIG_S_FEATURES_OK)
			break; /* too late: features are settled */
		if (vd->driver_features_sel == 0)
			set_low(&vd->driver_features, v);
		else if (vd->driver_features_sel == 1)
			set_high(&vd->driver_features, v);
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		vd->queue_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if ((q = writable_queue(vd)) != NULL)
			q->size = (uint16_t)MIN(v, (uint32_t)UINT16_MAX); /* checked on activation */
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		q = selected_queue(vd);
		if (q && !(vd->status & VIRTIO_CONFIG_S_DRIVER_OK))
			q->ready = v & 1;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		if ((q = writable_queue(vd)))
			set_low(&q->desc_addr, v);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		if ((q = writable_queue(vd)))
			set_high(&q->desc_addr, v);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
		if ((q = writable_queue(vd)))
			set_low(&q->avail_addr, v);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		if ((q = writable_queue(vd)))
			set_high(&q->avail_addr, v);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
		if ((q = writable_queue(vd)))
			set_low(&q->used_addr, v);
		break;
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		if ((q = writable_queue(vd)))
			set_high(&q->used_addr, v);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		atomic_fetch_and(&vd->interrupt_status, ~v);
		break;
	case VIRTIO_MMIO_STATUS:
		write_status(vd, v);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* Valid indexes arrive through ioeventfds; this one matched none. */
		log_debug("%s '%s': notify for queue %u that does not exist", vd->ops->name, vd->id, v);
		break;
	default:
		break; /* read-only or reserved */
	}
}

static void config_access(struct virtio_dev *vd, uint32_t off, uint8_t *data, uint32_t len, bool is_write)
{
	if (off >= vd->config_len || len > vd->config_len - off) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (is_write) {
		if (vd->ops->config_write)
			vd->ops->config_write(vd, off, data, len);
	} else {
		if (vd->ops->config_refresh)
			vd->ops->config_refresh(vd);
		memcpy(data, vd->config + off, len);
	}
}

void virtio_mmio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_dev *vd = opaque;

	pthread_mutex_lock(&vd->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		config_access(vd, (uint32_t)(offset - VIRTIO_MMIO_CONFIG), data, len, is_write);
	} else if (len != 4 || (offset & 3)) {
		/* Registers are 32 bits wide and aligned; anything else is ignored. */
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		uint32_t v;
		memcpy(&v, data, 4);
		register_write(vd, offset, v);
	} else {
		uint32_t v = register_read(vd, offset);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&vd->lock);
}

/* --- creation --- */

static void virtio_describe_acpi(struct device *dev, struct aml *aml)
{
	struct virtio_dev *vd = (struct virtio_dev *)dev;
	char name[5];

	snprintf(name, sizeof(name), "V%03X", vd->index & 0xfff);
	aml_device(aml, name);
	aml_name_decl(aml, "_HID");
	aml_string(aml, "LNRO0005");
	aml_name_decl(aml, "_UID");
	aml_integer(aml, vd->index);
	aml_crs_begin(aml);
	aml_crs_mem32(aml, (uint32_t)vd->mmio_base, VIRTIO_MMIO_SIZE);
	aml_crs_ext_irq(aml, vd->gsi, 1);
	aml_crs_end(aml);
	aml_end(aml);
}

static void virtio_destroy(struct device *dev)
{
	struct virtio_dev *vd = (struct virtio_dev *)dev;

	if (vd->thread_started) {
		device_command(vd, CTL_STOP);
		pthread_join(vd->thread, NULL);
	}
	if (vd->ops->destroy)
		vd->ops->destroy(vd);
	while (vd->watches) {
		struct virtio_watch *w = vd->watches;
		vd->watches = w->next;
		free(w);
	}
	free_removed_watches(vd);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		if (vd->kick_fds[i] >= 0)
			close(vd->kick_fds[i]);
	if (vd->irq_fd >= 0)
		close(vd->irq_fd);
	if (vd->ctl_fd >= 0)
		close(vd->ctl_fd);
	if (vd->epfd >= 0)
		close(vd->epfd);
	pthread_mutex_destroy(&vd->lock);
	pthread_mutex_destroy(&vd->ctl_lock);
	pthread_cond_destroy(&vd->ctl_done);
	free(vd);
}

#define VIRTIO_STATE_VERSION 1

static void virtio_save(struct device *dev, struct snap_writer *w)
{
	struct virtio_dev *vd = (struct virtio_dev *)dev;

	/* Paused: the device thread is idle, the registers still. */
	pthread_mutex_lock(&vd->lock);
	device_save_begin(dev, w, VIRTIO_STATE_VERSION);
	snap_put_u32(w, vd->ops->device_id);
	snap_put_u32(w, vd->status);
	snap_put_u64(w, vd->device_features);
	snap_put_u64(w, vd->driver_features);
	snap_put_u32(w, vd->device_features_sel);
	snap_put_u32(w, vd->driver_features_sel);
	snap_put_u32(w, vd->queue_sel);
	snap_put_u32(w, vd->config_generation);
	snap_put_u32(w, atomic_load(&vd->interrupt_status));
	snap_put_u8(w, vd->active);
	snap_put_u8(w, vd->broken);
	snap_put_u32(w, vd->config_len);
	snap_put_bytes(w, vd->config, vd->config_len);
	snap_put_u32(w, vd->ops->nqueues);
	for (unsigned i = 0; i < vd->ops->nqueues; i++) {
		const struct virtq *q = &vd->queues[i];
		snap_put_u16(w, q->size);
		snap_put_u8(w, q->ready);
		snap_put_u64(w, q->desc_addr);
		snap_put_u64(w, q->avail_addr);
		snap_put_u64(w, q->used_addr);
		snap_put_u16(w, q->last_avail);
		snap_put_u16(w, q->used_idx);
		snap_put_u16(w, q->signalled_used);
		snap_put_u8(w, q->signalled_valid);
	}
	pthread_mutex_unlock(&vd->lock);
	if (vd->ops->save)
		vd->ops->save(vd, w);
	snap_section_end(w);
}

static int virtio_restore(struct device *dev, const struct snap_reader *r, struct err **e)
{
	struct virtio_dev *vd = (struct virtio_dev *)dev;
	struct snap_section s;
	uint64_t device_features;
	uint32_t config_len;
	bool event_idx;
	int ret = device_restore_begin(dev, r, VIRTIO_STATE_VERSION, &s, e);

	if (ret < 0)
		return ret;
	if (snap_get_u32(&s) != vd->ops->device_id)
		return err_setx(e, EINVAL, "section '%s' holds another kind of device than %s", s.name, vd->ops->name);
	vd->status = snap_get_u32(&s);
	device_features = snap_get_u64(&s);
	vd->driver_features = snap_get_u64(&s);
	vd->device_features_sel = snap_get_u32(&s);
	vd->driver_features_sel = snap_get_u32(&s);
	vd->queue_sel = snap_get_u32(&s);
	vd->config_generation = snap_get_u32(&s);
	atomic_store(&vd->interrupt_status, snap_get_u32(&s));
	vd->active = snap_get_u8(&s) != 0;
	vd->broken = snap_get_u8(&s) != 0;
	config_len = snap_get_u32(&s);
	if (config_len != vd->config_len)
		return err_setx(e, EINVAL, "%s '%s': config space of %u bytes, this device has %u", vd->ops->name,
				vd->id, config_len, vd->config_len);
	snap_get_bytes(&s, vd->config, config_len);
	if ((device_features & vd->driver_features) != vd->driver_features ||
	    (vd->driver_features & ~vd->device_features))
		return err_setx(e, EINVAL, "%s '%s': the guest uses features this device does not offer here",
				vd->ops->name, vd->id);
	if (snap_get_u32(&s) != vd->ops->nqueues)
		return snap_bad_section(&s, e);
	event_idx = virtio_dev_has_feature(vd, VIRTIO_RING_F_EVENT_IDX);
	for (unsigned i = 0; i < vd->ops->nqueues; i++) {
		struct virtq *q = &vd->queues[i];
		uint16_t last_avail, used_idx, signalled;
		bool valid;

		q->size = snap_get_u16(&s);
		q->ready = snap_get_u8(&s) != 0;
		q->desc_addr = snap_get_u64(&s);
		q->avail_addr = snap_get_u64(&s);
		q->used_addr = snap_get_u64(&s);
		last_avail = snap_get_u16(&s);
		used_idx = snap_get_u16(&s);
		signalled = snap_get_u16(&s);
		valid = snap_get_u8(&s) != 0;
		if (vd->active && q->ready) {
			/* Map the rings again, then carry on from the saved indexes. */
			q->ready = false;
			if (virtq_enable(q, &vd->vm->mem, event_idx) < 0)
				return err_setx(e, EINVAL, "%s '%s': queue %u's rings are outside guest memory",
						vd->ops->name, vd->id, i);
			q->last_avail = last_avail;
			q->used_idx = used_idx;
			q->signalled_used = signalled;
			q->signalled_valid = valid;
		}
	}
	if (vd->ops->restore && (ret = vd->ops->restore(vd, &s, e)) < 0)
		return ret;
	if (!snap_section_ok(&s))
		return snap_bad_section(&s, e);
	if (vd->active && !vd->broken && vd->ops->activate && vd->ops->activate(vd) < 0)
		return err_setx(e, EIO, "%s '%s': could not be activated again", vd->ops->name, vd->id);
	return 0;
}

static void virtio_metrics(struct device *dev, json_object *c)
{
	struct virtio_dev *vd = (struct virtio_dev *)dev;
	const struct device_counter counters[] = {{"notifications", &vd->kicks}, {"interrupts", &vd->interrupts}};

	device_counters_add(c, counters, ARRAY_SIZE(counters));
	if (vd->ops->metrics)
		vd->ops->metrics(vd, c);
}

static int virtio_start(struct device *dev, struct err **e)
{
	struct virtio_dev *vd = (struct virtio_dev *)dev;

	return vd->thread_started ? 0 : virtio_dev_start(vd, e);
}

static void virtio_pause(struct device *dev)
{
	device_command((struct virtio_dev *)dev, CTL_PAUSE);
}

static void virtio_resume(struct device *dev)
{
	device_command((struct virtio_dev *)dev, CTL_RESUME);
}

static const struct device_ops virtio_device_ops = {
    .name = "virtio-mmio",
    .start = virtio_start,
    .pause = virtio_pause,
    .resume = virtio_resume,
    .metrics = virtio_metrics,
    .describe_acpi = virtio_describe_acpi,
    .destroy = virtio_destroy,
    .save = virtio_save,
    .restore = virtio_restore,
};

/* Interrupt lines for virtio-mmio devices: the ISA lines nothing else
 * uses (edge-triggered, as ISA lines are) and the IOAPIC's upper pins. */
static const uint8_t virtio_gsis[] = {5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};

static int register_kvm_fds(struct virtio_dev *vd, struct err **e)
{
	struct vm *vm = vd->vm;

	if (vm->vm_fd < 0)
		return 0; /* unit tests drive the transport without KVM */
	for (unsigned i = 0; i < vd->ops->nqueues; i++) {
		struct kvm_ioeventfd io = {
		    .datamatch = i,
		    .addr = vd->mmio_base + VIRTIO_MMIO_QUEUE_NOTIFY,
		    .len = 4,
		    .fd = vd->kick_fds[i],
		    .flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
		};
		if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0)
			return err_set(e, errno, "%s '%s': KVM_IOEVENTFD for queue %u", vd->ops->name, vd->id, i);
	}
	{
		struct kvm_irqfd irq = {.fd = (uint32_t)vd->irq_fd, .gsi = vd->gsi};
		if (ioctl(vm->vm_fd, KVM_IRQFD, &irq) < 0)
			return err_set(e, errno, "%s '%s': KVM_IRQFD on GSI %u", vd->ops->name, vd->id, vd->gsi);
	}
	return 0;
}

int virtio_dev_create(struct vm *vm, const struct virtio_dev_ops *ops, const char *id, uint64_t features,
		      const void *config, uint32_t config_len, void *priv, struct virtio_dev **ret, struct err **e)
{
	struct virtio_dev *vd;
	unsigned slot = vm->virtio_count;
	int r;

	if (slot >= ARRAY_SIZE(virtio_gsis) || ops->nqueues > VIRTIO_MAX_QUEUES || config_len > VIRTIO_CONFIG_MAX ||
	    (vd = calloc(1, sizeof(*vd))) == NULL) {
		/* The model's state is ours to free, whatever happens. */
		struct virtio_dev stub = {.ops = ops, .priv = priv};
		if (ops->destroy)
			ops->destroy(&stub);
		if (slot >= ARRAY_SIZE(virtio_gsis))
			return err_setx(e, ENOSPC, "%s '%s': no room for more than %zu virtio devices", ops->name, id,
					ARRAY_SIZE(virtio_gsis));
		if (ops->nqueues > VIRTIO_MAX_QUEUES || config_len > VIRTIO_CONFIG_MAX)
			return err_setx(e, EINVAL, "%s '%s': bad device description", ops->name, id);
		return err_set(e, ENOMEM, "%s '%s'", ops->name, id);
	}
	vd->dev.ops = &virtio_device_ops;
	snprintf(vd->dev.name, sizeof(vd->dev.name), "virtio-%u", slot);
	vd->dev.kind = ops->name;
	vd->ops = ops;
	vd->vm = vm;
	vd->priv = priv;
	snprintf(vd->id, sizeof(vd->id), "%s", id);
	vd->dev.id = vd->id;
	vd->index = slot;
	vd->mmio_base = LAYOUT_DEVICE_MMIO_START + (uint64_t)slot * VIRTIO_MMIO_SLOT;
	vd->gsi = virtio_gsis[slot];
	vd->device_features = features | VIRTIO_TRANSPORT_FEATURES;
	if (config)
		memcpy(vd->config, config, config_len);
	vd->config_len = config_len;
	vd->irq_fd = vd->ctl_fd = vd->epfd = -1;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		vd->kick_fds[i] = -1;
		vd->queues[i].max_size = ops->queue_size;
		virtq_reset(&vd->queues[i]);
	}
	pthread_mutex_init(&vd->lock, NULL);
	pthread_mutex_init(&vd->ctl_lock, NULL);
	pthread_cond_init(&vd->ctl_done, NULL);
	vm_add_device(vm, &vd->dev);
	vm->virtio_count++;

	vd->epfd = epoll_create1(EPOLL_CLOEXEC);
	vd->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vd->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vd->epfd < 0 || vd->irq_fd < 0 || vd->ctl_fd < 0)
		return err_set(e, errno, "%s '%s': eventfd", ops->name, id);
	if ((r = watch_add(vd, WATCH_CTL, vd->ctl_fd, 0, NULL, EPOLLIN)) < 0)
		return err_set(e, -r, "%s '%s': epoll", ops->name, id);
	for (unsigned i = 0; i < ops->nqueues; i++) {
		vd->kick_fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vd->kick_fds[i] < 0)
			return err_set(e, errno, "%s '%s': eventfd", ops->name, id);
		if ((r = watch_add(vd, WATCH_KICK, vd->kick_fds[i], i, NULL, EPOLLIN)) < 0)
			return err_set(e, -r, "%s '%s': epoll", ops->name, id);
	}
	r = register_kvm_fds(vd, e);
	if (r < 0)
		return r;
	r = bus_register(&vm->mmio, vd->mmio_base, VIRTIO_MMIO_SIZE, virtio_mmio_access, vd, vd->id, e);
	if (r < 0)
		return r;
	*ret = vd;
	return 0;
}

struct virtio_dev *virtio_dev_find(struct vm *vm, const struct virtio_dev_ops *ops)
{
	for (struct device *dev = vm->devices; dev; dev = dev->next)
		if (dev->ops == &virtio_device_ops && ((struct virtio_dev *)dev)->ops == ops)
			return (struct virtio_dev *)dev;
	return NULL;
}

struct virtio_dev *virtio_dev_find_id(struct vm *vm, const char *id)
{
	for (struct device *dev = vm->devices; dev; dev = dev->next)
		if (dev->ops == &virtio_device_ops && strcmp(((struct virtio_dev *)dev)->id, id) == 0)
			return (struct virtio_dev *)dev;
	return NULL;
}

bool virtio_dev_is(const struct device *dev)
{
	return dev->ops == &virtio_device_ops;
}

void virtio_dev_process_queue(struct virtio_dev *vd, unsigned q)
{
	if (vd->active && !vd->broken && q < vd->ops->nqueues)
		vd->ops->queue_notify(vd, q);
}

void virtio_dev_serve_queue(struct virtio_dev *vd, unsigned qi, struct virtq_req *req, virtio_serve_fn serve)
{
	struct virtq *q = &vd->queues[qi];
	uint16_t start = q->used_idx;
	int got;

	for (;;) {
		virtq_disable_kicks(q);
		while ((got = virtq_pop(q, req)) > 0) {
			uint32_t written = 0;

			switch (serve(vd, qi, req, &written)) {
			case VIRTIO_SERVED:
				virtq_complete(q, req, written);
				break;
			case VIRTIO_KEPT:
				break;
			case VIRTIO_FAILED:
				return; /* the device needs a reset: nothing more */
			}
		}
		if (got < 0) {
			virtio_dev_fail(vd, "malformed descriptor chain in queue %u", qi);
			return;
		}
		if (!virtq_enable_kicks(q))
			break;
	}
	/* Models may also return requests they held (virtio-balloon's statistics). */
	if (q->used_idx != start)
		virtio_dev_notify_queue(vd, qi);
}

int virtio_dev_start(struct virtio_dev *vd, struct err **e)
{
	int r = thread_start(&vd->thread, device_thread, vd);

	if (r != 0)
		return err_set(e, r, "%s '%s': start thread", vd->ops->name, vd->id);
	vd->thread_started = true;
	return 0;
}
