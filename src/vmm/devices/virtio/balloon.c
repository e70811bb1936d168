/*
 * virtio-balloon: the guest gives memory back to the host, and tells it
 * how its memory is used.
 *
 * Pages the guest puts in the balloon (inflate queue) or reports free
 * (free page reporting queue) are dropped from the VMM's mapping with
 * MADV_DONTNEED before the request is returned: the guest reuses a page
 * only after the device acknowledged it, so a page is never discarded
 * under the guest's feet, and the next touch maps a zeroed page.  Every
 * PFN and range is checked against guest RAM first; a PFN outside it
 * (or in the MMIO hole) is a driver breaking the rules: needs-reset.
 * PFNs are sorted and merged into runs so that a 2 MiB block ballooned
 * whole is one madvise() that frees its transparent huge page at once.
 *
 * Queues are numbered by what was negotiated (virtio 1.2, 5.5.2):
 * inflate 0, deflate 1, then stats if STATS_VQ, then reporting if
 * PAGE_REPORTING.  The driver's one statistics buffer is held by the
 * device; handing it back asks for fresh values (every stats=SECONDS,
 * and whenever the control path queries the balloon).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_ids.h>

#include "common/log.h"
#include "vmm/devices/virtio/balloon.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/snapshot/format.h"
#include "vmm/vm.h"

#define BALLOON_QUEUE_SIZE 128
#define BALLOON_NQUEUES 4
#define BALLOON_REQ_SEGS 64 /* Linux reports at most 32 ranges at once */
#define BALLOON_PAGE 4096ULL
#define BALLOON_PFN_CHUNK 512
/* Linux sends at most 256 PFNs per request; anything far beyond is not a driver. */
#define BALLOON_PFN_BYTES_MAX (64 * 1024)
#define BALLOON_STAT_BYTES 10 /* le16 tag, le64 value, packed */
#define BALLOON_STATS_BYTES_MAX (BALLOON_STAT_BYTES * 256)

enum balloon_queue { BQ_NONE, BQ_INFLATE, BQ_DEFLATE, BQ_STATS, BQ_REPORT };

struct balloon {
	struct virtio_dev *vd;
	uint64_t memory;
	int timer_fd;	/* stats=SECONDS, or -1 */
	int refresh_fd; /* other threads ask for fresh statistics */

	/* Device thread. */
	struct virtq_req *req;
	enum balloon_queue role[BALLOON_NQUEUES];
	unsigned stats_q;
	bool stats_held;
	uint16_t stats_head;

	atomic_uint_least64_t released_pages;
	pthread_mutex_t lock; /* the statistics below */
	bool stats_valid;
	struct timespec stats_time;
	uint64_t stats[BALLOON_STATS_MAX];
	uint32_t stats_present;
};

static const char *const stat_names[BALLOON_STATS_MAX] = {
    "swap-in",		"swap-out",	"major-faults",	       "minor-faults",	   "free-memory", "total-memory",
    "available-memory", "disk-caches",	"hugetlb-allocations", "hugetlb-failures", "oom-kills",	  "alloc-stalls",
    "async-scans",	"direct-scans", "async-reclaims",      "direct-reclaims",
};

const char *virtio_balloon_stat_name(unsigned tag)
{
	return tag < BALLOON_STATS_MAX ? stat_names[tag] : NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* A run of whole pages [gpa, gpa + len): check it, and release it on inflate. */
static int balloon_run(struct balloon *b, uint64_t gpa, uint64_t len, bool release)
{
	void *p = guest_memory_ptr(&b->vd->vm->mem, gpa, len);

	if (p == NULL)
		return -EINVAL;
	if (release && madvise(p, len, MADV_DONTNEED) == 0)
		atomic_fetch_add(&b->released_pages, len / BALLOON_PAGE);
	return 0;
}

/* An inflate or deflate request: an array of le32 4 KiB page frame numbers. */
static int balloon_pfns(struct balloon *b, const struct virtq_req *req, bool inflate)
{
	uint32_t pfns[BALLOON_PFN_CHUNK];
	uint64_t total;

	if (req->n_in > 0 || req->out_len % 4 || req->out_len > BALLOON_PFN_BYTES_MAX)
		return -EINVAL;
	total = req->out_len / 4;
	for (uint64_t done = 0; done < total;) {
		size_t n = (size_t)MIN(total - done, (uint64_t)BALLOON_PFN_CHUNK);
		uint64_t start, len;

		iov_copy_from(req->out, req->n_out, done * 4, pfns, n * 4);
		done += n;
		qsort(pfns, n, sizeof(pfns[0]), cmp_u32);
		start = pfns[0];
		len = 1;
		for (size_t i = 1; i <= n; i++) {
			if (i < n && pfns[i] == pfns[i - 1])
				continue; /* the same page twice */
			if (i < n && pfns[i] == start + len) {
				len++;
				continue;
			}
			if (balloon_run(b, start * BALLOON_PAGE, len * BALLOON_PAGE, inflate) < 0)
				return -EINVAL;
			if (i < n) {
				start = pfns[i];
				len = 1;
			}
		}
	}
	return 0;
}

/* A free page report: device-writable buffers that are the free ranges
 * themselves (already checked against guest RAM by virtq_pop()). */
static int balloon_report(struct balloon *b, const struct virtq_req *req)
{
	if (req->n_out > 0)
		return -EINVAL;
	for (unsigned i = 0; i < req->n_in; i++) {
		uintptr_t start = ALIGN_UP((uintptr_t)req->in[i].iov_base, (uintptr_t)BALLOON_PAGE);
		uintptr_t end =
		    ALIGN_DOWN((uintptr_t)req->in[i].iov_base + req->in[i].iov_len, (uintptr_t)BALLOON_PAGE);

		/* Only whole pages inside the range: never a byte beyond it. */
		if (end > start && madvise((void *)start, end - start, MADV_DONTNEED) == 0)
			atomic_fetch_add(&b->released_pages, (end - start) / BALLOON_PAGE);
	}
	return 0;
}

static int balloon_stats(struct balloon *b, const struct virtq_req *req)
{
	uint64_t stats[BALLOON_STATS_MAX];
	uint32_t present = 0;

	if (req->n_in > 0 || req->out_len % BALLOON_STAT_BYTES || req->out_len > BALLOON_STATS_BYTES_MAX)
		return -EINVAL;
	for (uint64_t off = 0; off < req->out_len; off += BALLOON_STAT_BYTES) {
		uint8_t raw[BALLOON_STAT_BYTES];
		uint16_t tag;
		uint64_t val;

		iov_copy_from(req->out, req->n_out, off, raw, sizeof(raw));
		memcpy(&tag, raw, 2);
		memcpy(&val, raw + 2, 8);
		/* Tags this device does not know are ignored, as the spec says. */
		if (tag < BALLOON_STATS_MAX) {
			stats[tag] = val;
			present |= 1u << tag;
		}
	}
	pthread_mutex_lock(&b->lock);
	for (unsigned t = 0; t < BALLOON_STATS_MAX; t++)
		if (present & (1u << t))
			b->stats[t] = stats[t];
	b->stats_present = present;
	b->stats_valid = true;
	clock_gettime(CLOCK_MONOTONIC, &b->stats_time);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static enum virtio_served balloon_serve(struct virtio_dev *vd, unsigned q, struct virtq_req *req, uint32_t *written)
{
	struct balloon *b = vd->priv;
	enum balloon_queue role = b->role[q];

	(void)written;
	switch (role) {
	case BQ_INFLATE:
	case BQ_DEFLATE:
		if (balloon_pfns(b, req, role == BQ_INFLATE) < 0) {
			virtio_dev_fail(vd, "%s request %u: PFNs outside guest memory or a malformed array",
					role == BQ_INFLATE ? "inflate" : "deflate", req->head);
			return VIRTIO_FAILED;
		}
		return VIRTIO_SERVED;
	case BQ_REPORT:
		if (balloon_report(b, req) < 0) {
			virtio_dev_fail(vd, "free page report %u has device-readable buffers", req->head);
			return VIRTIO_FAILED;
		}
		return VIRTIO_SERVED;
	default:
		if (balloon_stats(b, req) < 0) {
			virtio_dev_fail(vd, "statistics buffer %u is malformed", req->head);
			return VIRTIO_FAILED;
		}
		/* Keep the newest buffer: returning it is how we ask for more. */
		if (b->stats_held)
			virtq_push(&vd->queues[q], b->stats_head, 0);
		b->stats_held = true;
		b->stats_head = req->head;
		return VIRTIO_KEPT;
	}
}

static void balloon_queue_notify(struct virtio_dev *vd, unsigned q)
{
	struct balloon *b = vd->priv;

	/* A queue the negotiated features do not use is left alone. */
	if (q < BALLOON_NQUEUES && b->role[q] != BQ_NONE)
		virtio_dev_serve_queue(vd, q, b->req, balloon_serve);
}

/* Device thread: hand the statistics buffer back so the guest refills it. */
static void balloon_request_stats(struct balloon *b)
{
	struct virtio_dev *vd = b->vd;

	if (!vd->active || vd->broken || !b->stats_held)
		return;
	b->stats_held = false;
	virtq_push(&vd->queues[b->stats_q], b->stats_head, 0);
	virtio_dev_notify_queue(vd, b->stats_q);
}

static void balloon_on_wakeup(struct virtio_dev *vd, int fd, uint32_t events)
{
	uint64_t v;

	(void)events;
	(void)!read(fd, &v, sizeof(v)); /* timerfd and eventfd both count in 8 bytes */
	balloon_request_stats(vd->priv);
}

static int balloon_activate(struct virtio_dev *vd)
{
	struct balloon *b = vd->priv;
	unsigned next = 2;

	memset(b->role, 0, sizeof(b->role));
	b->role[0] = BQ_INFLATE;
	b->role[1] = BQ_DEFLATE;
	if (virtio_dev_has_feature(vd, VIRTIO_BALLOON_F_STATS_VQ)) {
		b->stats_q = next;
		b->role[next++] = BQ_STATS;
	}
	if (virtio_dev_has_feature(vd, VIRTIO_BALLOON_F_REPORTING))
		b->role[next++] = BQ_REPORT;
	/* stats_held stays: a restored device still holds the guest's buffer. */
	return 0;
}

static void balloon_reset(struct virtio_dev *vd)
{
	struct balloon *b = vd->priv;
	uint32_t zero = 0;

	memset(b->role, 0, sizeof(b->role));
	b->stats_held = false;
	/* The driver's count is gone with the driver; the target stays. */
	pthread_mutex_lock(&vd->lock);
	memcpy(vd->config + offsetof(struct virtio_balloon_config, actual), &zero, 4);
	pthread_mutex_unlock(&vd->lock);
}

/* vCPU thread, vd->lock held: only `actual` is the driver's to write. */
static void balloon_config_write(struct virtio_dev *vd, uint32_t offset, const uint8_t *data, uint32_t len)
{
	const uint32_t actual = offsetof(struct virtio_balloon_config, actual);

	if (offset >= actual && len <= 4 && offset + len <= actual + 4)
		memcpy(vd->config + offset, data, len);
	else
		log_debug("virtio-balloon '%s': driver wrote %u config bytes at %u, ignoring", vd->id, len, offset);
}

static void balloon_destroy(struct virtio_dev *vd)
{
	struct balloon *b = vd->priv;

	if (b == NULL)
		return;
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	if (b->refresh_fd >= 0)
		close(b->refresh_fd);
	virtq_req_free(b->req);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

#define BALLOON_STATE_VERSION 1

/* Snapshots: the statistics buffer the device holds is the guest's only
 * one; a restored device must hand back the same descriptor. */
static void balloon_save(struct virtio_dev *vd, struct snap_writer *w)
{
	struct balloon *b = vd->priv;

	snap_put_u32(w, BALLOON_STATE_VERSION);
	snap_put_u8(w, b->stats_held);
	snap_put_u16(w, b->stats_head);
	snap_put_u64(w, atomic_load(&b->released_pages));
}

static int balloon_restore(struct virtio_dev *vd, struct snap_section *s, struct err **e)
{
	struct balloon *b = vd->priv;

	if (snap_get_u32(s) != BALLOON_STATE_VERSION)
		return err_setx(e, EINVAL, "virtio-balloon '%s': state of an unknown version", vd->id);
	b->stats_held = snap_get_u8(s) != 0;
	b->stats_head = snap_get_u16(s);
	atomic_store(&b->released_pages, snap_get_u64(s));
	return snap_section_ok(s) ? 0 : snap_bad_section(s, e);
}

/* The target and the driver's count, in pages, from the config space. */
static void balloon_sizes(struct virtio_dev *vd, uint32_t *pages, uint32_t *actual)
{
	pthread_mutex_lock(&vd->lock);
	memcpy(pages, vd->config + offsetof(struct virtio_balloon_config, num_pages), 4);
	memcpy(actual, vd->config + offsetof(struct virtio_balloon_config, actual), 4);
	pthread_mutex_unlock(&vd->lock);
}

static void balloon_metrics(struct virtio_dev *vd, json_object *o)
{
	struct balloon *b = vd->priv;
	uint32_t pages, actual;

	balloon_sizes(vd, &pages, &actual);
	json_object_object_add(o, "target_bytes", json_object_new_int64((int64_t)(pages * BALLOON_PAGE)));
	json_object_object_add(o, "actual_bytes", json_object_new_int64((int64_t)(actual * BALLOON_PAGE)));
	json_object_object_add(o, "released_bytes",
			       json_object_new_int64((int64_t)(atomic_load(&b->released_pages) * BALLOON_PAGE)));
}

static const struct virtio_dev_ops balloon_ops = {
    .name = "virtio-balloon",
    .device_id = VIRTIO_ID_BALLOON,
    .nqueues = BALLOON_NQUEUES,
    .queue_size = BALLOON_QUEUE_SIZE,
    .activate = balloon_activate,
    .reset = balloon_reset,
    .queue_notify = balloon_queue_notify,
    .config_write = balloon_config_write,
    .destroy = balloon_destroy,
    .save = balloon_save,
    .restore = balloon_restore,
    .metrics = balloon_metrics,
};

int virtio_balloon_set_target(struct virtio_dev *vd, uint64_t target, struct err **e)
{
	struct balloon *b = vd->priv;
	uint32_t pages;

	if (target > b->memory)
		return err_setx(e, EINVAL, "balloon: target of %llu MiB is more than guest memory (%llu MiB)",
				(unsigned long long)(target >> 20), (unsigned long long)(b->memory >> 20));
	pages = (uint32_t)(target / BALLOON_PAGE);
	pthread_mutex_lock(&vd->lock);
	memcpy(vd->config + offsetof(struct virtio_balloon_config, num_pages), &pages, 4);
	pthread_mutex_unlock(&vd->lock);
	virtio_dev_config_changed(vd);
	return 0;
}

void virtio_balloon_query(struct virtio_dev *vd, struct balloon_info *info)
{
	struct balloon *b = vd->priv;
	uint32_t pages, actual;
	struct timespec now;
	uint64_t one = 1;

	memset(info, 0, sizeof(*info));
	balloon_sizes(vd, &pages, &actual);
	info->target = pages * BALLOON_PAGE;
	info->actual = actual * BALLOON_PAGE;
	info->released = atomic_load(&b->released_pages) * BALLOON_PAGE;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&b->lock);
	info->stats_valid = b->stats_valid;
	info->stats_present = b->stats_present;
	memcpy(info->stats, b->stats, sizeof(info->stats));
	info->stats_age = (double)(now.tv_sec - b->stats_time.tv_sec) + (now.tv_nsec - b->stats_time.tv_nsec) / 1e9;
	pthread_mutex_unlock(&b->lock);
	/* The queue belongs to the device thread; without one (tests) we are it. */
	if (vd->thread_started)
		(void)!write(b->refresh_fd, &one, sizeof(one));
	else
		balloon_request_stats(b);
}

int virtio_balloon_create(struct vm *vm, const struct balloon_config *c, struct virtio_dev **ret, struct err **e)
{
	struct virtio_balloon_config cfg;
	struct virtio_dev *vd;
	struct balloon *b = calloc(1, sizeof(*b));
	uint64_t features = 1ULL << VIRTIO_BALLOON_F_STATS_VQ;
	int r;

	if (b == NULL)
		return err_set(e, ENOMEM, "virtio-balloon 'balloon0'");
	pthread_mutex_init(&b->lock, NULL);
	b->timer_fd = b->refresh_fd = -1;
	b->memory = vm->mem.size;
	if (c->target > b->memory) {
		balloon_destroy(&(struct virtio_dev){.priv = b});
		return err_setx(e, EINVAL, "balloon: target of %llu MiB is more than guest memory (%llu MiB)",
				(unsigned long long)(c->target >> 20), (unsigned long long)(vm->mem.size >> 20));
	}
	b->req = virtq_req_new(BALLOON_REQ_SEGS);
	b->refresh_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->req == NULL || b->refresh_fd < 0) {
		int err = b->req == NULL ? ENOMEM : errno;
		balloon_destroy(&(struct virtio_dev){.priv = b});
		return err_set(e, err, "virtio-balloon 'balloon0'");
	}
	if (c->deflate_on_oom)
		features |= 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (c->free_page_reporting)
		features |= 1ULL << VIRTIO_BALLOON_F_REPORTING;
	memset(&cfg, 0, sizeof(cfg));
	cfg.num_pages = (uint32_t)(c->target / BALLOON_PAGE);
	/* From here on the VM owns b. */
	r = virtio_dev_create(vm, &balloon_ops, "balloon0", features, &cfg, sizeof(cfg), b, &vd, e);
	if (r < 0)
		return r;
	b->vd = vd;
	r = virtio_dev_watch(vd, b->refresh_fd, EPOLLIN, balloon_on_wakeup, e);
	if (r < 0)
		return r;
	if (c->stats_interval > 0) {
		struct itimerspec every = {.it_interval = {.tv_sec = c->stats_interval},
					   .it_value = {.tv_sec = c->stats_interval}};
		b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (b->timer_fd < 0 || timerfd_settime(b->timer_fd, 0, &every, NULL) < 0)
			return err_set(e, errno, "virtio-balloon 'balloon0': timerfd");
		r = virtio_dev_watch(vd, b->timer_fd, EPOLLIN, balloon_on_wakeup, e);
		if (r < 0)
			return r;
	}
	if (ret)
		*ret = vd;
	return 0;
}

static int virtio_balloon_create_from(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	return cfg->balloon.enabled ? virtio_balloon_create(vm, &cfg->balloon, NULL, e) : 0;
}

const struct device_type virtio_balloon_type = {.name = "virtio-balloon", .create = virtio_balloon_create_from};

struct virtio_dev *virtio_balloon_find(struct vm *vm)
{
	return virtio_dev_find(vm, &balloon_ops);
}
