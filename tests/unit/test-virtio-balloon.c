/* virtio-balloon with a fake guest driver (its API actions: test-api.c). */
#include <string.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_mmio.h>

#include "test.h"
#include "virtio-driver.h"
#include "vmm/devices/virtio/balloon.h"

#define F_STATS (1ULL << VIRTIO_BALLOON_F_STATS_VQ)
#define F_REPORTING (1ULL << VIRTIO_BALLOON_F_REPORTING)
#define INFLATE 0
#define DEFLATE 1

static void make_balloon(struct vdrv *d, const struct balloon_config *c, uint64_t features, unsigned nq)
{
	struct vm *vm = vdrv_fake_vm();
	struct err *e = NULL;

	CHECK_INT(virtio_balloon_create(vm, c, NULL, &e), ==, 0);
	vdrv_init(d, vm, features, nq);
}

/* Post a PFN array on queue q and kick; true if the device returned it. */
static bool send_pfns(struct vdrv *d, unsigned q, const uint32_t *pfns, unsigned n)
{
	uint64_t gpa = vdrv_alloc(d, 4 * n + 4);
	uint16_t id;
	uint32_t len;

	memcpy(vdrv_ptr(d, gpa, 4 * n), pfns, 4 * n);
	vdrv_post_one(d, q, gpa, 4 * n, false);
	vdrv_kick(d, q);
	return vdrv_used(d, q, &id, &len);
}

static uint64_t released(struct vdrv *d)
{
	struct balloon_info info;

	virtio_balloon_query(d->vd, &info);
	return info.released;
}

TEST(balloon_inflate_gives_pages_back)
{
	struct balloon_config c = {.enabled = true};
	struct vdrv d;
	uint64_t region;
	uint8_t *p;
	uint32_t pfns[300];

	make_balloon(&d, &c, 0, 2);
	region = vdrv_alloc(&d, 2 << 20);
	p = vdrv_ptr(&d, region, 2 << 20);
	memset(p, 0xab, 2 << 20);
	/* 256 pages in scrambled order, one twice, plus 40 elsewhere. */
	for (unsigned i = 0; i < 256; i++)
		pfns[i] = (uint32_t)((region >> 12) + ((i * 37) % 256));
	pfns[256] = pfns[3];
	for (unsigned i = 257; i < 297; i++)
		pfns[i] = (uint32_t)((region >> 12) + 300 + (i - 257) * 2);
	CHECK(send_pfns(&d, INFLATE, pfns, 297));
	CHECK(!vdrv_needs_reset(&d));
	/* Released pages read back as zeros; their neighbours are untouched. */
	CHECK_INT(p[0], ==, 0);
	CHECK_INT(p[255 * 4096 + 4095], ==, 0);
	CHECK_INT(p[256 * 4096], ==, 0xab);
	CHECK_INT(p[300 * 4096], ==, 0);
	CHECK_INT(p[301 * 4096], ==, 0xab);
	CHECK_INT(released(&d), ==, (256 + 40) * 4096ULL);
	/* Deflate: accepted, nothing released. */
	CHECK(send_pfns(&d, DEFLATE, pfns, 256));
	CHECK_INT(released(&d), ==, (256 + 40) * 4096ULL);
	vdrv_free_vm(d.vm);
}

TEST(balloon_hostile_pfns_need_reset)
{
	struct balloon_config c = {.enabled = true};
	uint32_t beyond = (uint32_t)(VDRV_MEM >> 12), hole = 0xd0000, last = beyond - 1;
	struct vdrv d;
	uint64_t gpa;

	make_balloon(&d, &c, 0, 2);
	CHECK(send_pfns(&d, INFLATE, &last, 1)); /* the last page is fine */
	CHECK(!vdrv_needs_reset(&d));
	CHECK(!send_pfns(&d, INFLATE, &beyond, 1));
	CHECK(vdrv_needs_reset(&d));
	vdrv_reinit(&d);
	CHECK(!send_pfns(&d, DEFLATE, &hole, 1));
	CHECK(vdrv_needs_reset(&d));
	vdrv_reinit(&d);
	/* A ragged array, and a writable one. */
	gpa = vdrv_alloc(&d, 4096);
	vdrv_post_one(&d, INFLATE, gpa, 6, false);
	vdrv_kick(&d, INFLATE);
	CHECK(vdrv_needs_reset(&d));
	vdrv_reinit(&d);
	vdrv_post_one(&d, INFLATE, gpa, 8, true);
	vdrv_kick(&d, INFLATE);
	CHECK(vdrv_needs_reset(&d));
	vdrv_reinit(&d);
	/* An array far longer than any driver sends. */
	vdrv_post_one(&d, INFLATE, vdrv_alloc(&d, 1 << 20), 1 << 20, false);
	vdrv_kick(&d, INFLATE);
	CHECK(vdrv_needs_reset(&d));
	vdrv_free_vm(d.vm);
}

struct __attribute__((packed)) stat_entry {
	uint16_t tag;
	uint64_t val;
};

TEST(balloon_statistics_are_held_and_refreshed)
{
	struct balloon_config c = {.enabled = true};
	struct stat_entry *st;
	struct balloon_info info;
	struct vdrv d;
	uint64_t gpa;
	uint16_t id;
	uint32_t len;

	make_balloon(&d, &c, F_STATS, 3);
	virtio_balloon_query(d.vd, &info);
	CHECK(!info.stats_valid);
	gpa = vdrv_alloc(&d, 4096);
	st = vdrv_ptr(&d, gpa, 3 * sizeof(*st));
	st[0] = (struct stat_entry){VIRTIO_BALLOON_S_MEMFREE, 123 << 20};
	st[1] = (struct stat_entry){VIRTIO_BALLOON_S_MEMTOT, 456 << 20};
	st[2] = (struct stat_entry){999, 7}; /* unknown: ignored */
	vdrv_post_one(&d, 2, gpa, 3 * sizeof(*st), false);
	vdrv_kick(&d, 2);
	CHECK(!vdrv_used(&d, 2, &id, &len)); /* the device keeps it */
	virtio_balloon_query(d.vd, &info);
	CHECK(info.stats_valid);
	CHECK_INT(info.stats[VIRTIO_BALLOON_S_MEMFREE], ==, 123 << 20);
	CHECK_INT(info.stats[VIRTIO_BALLOON_S_MEMTOT], ==, 456 << 20);
	CHECK_INT(info.stats_present, ==, (1u << VIRTIO_BALLOON_S_MEMFREE) | (1u << VIRTIO_BALLOON_S_MEMTOT));
	CHECK_STR(virtio_balloon_stat_name(VIRTIO_BALLOON_S_MEMFREE), "free-memory");
	/* The query handed the buffer back: the guest refills it. */
	CHECK(vdrv_used(&d, 2, &id, &len));
	CHECK_INT(len, ==, 0);
	/* A torn entry is a driver bug. */
	vdrv_post_one(&d, 2, gpa, 15, false);
	vdrv_kick(&d, 2);
	CHECK(vdrv_needs_reset(&d));
	vdrv_free_vm(d.vm);
}

TEST(balloon_free_page_reporting)
{
	struct balloon_config c = {.enabled = true, .free_page_reporting = true};
	struct vdrv_seg segs[2];
	struct vdrv d;
	uint64_t region;
	uint8_t *p;
	uint16_t id;
	uint32_t len;

	/* Without STATS_VQ the reporting queue is queue 2. */
	make_balloon(&d, &c, F_REPORTING, 3);
	region = vdrv_alloc(&d, 1 << 20);
	p = vdrv_ptr(&d, region, 1 << 20);
	memset(p, 0x5a, 1 << 20);
	segs[0] = (struct vdrv_seg){region, 256 << 10, true};
	/* An unaligned range: only the whole pages inside it go. */
	segs[1] = (struct vdrv_seg){region + (512 << 10) + 100, 8192, true};
	vdrv_post(&d, 2, segs, 2);
	vdrv_kick(&d, 2);
	CHECK(vdrv_used(&d, 2, &id, &len));
	CHECK(!vdrv_needs_reset(&d));
	CHECK_INT(p[0], ==, 0);
	CHECK_INT(p[(256 << 10) - 1], ==, 0);
	CHECK_INT(p[256 << 10], ==, 0x5a);
	CHECK_INT(p[(512 << 10) + 100], ==, 0x5a);  /* partial first page kept */
	CHECK_INT(p[(512 << 10) + 4096], ==, 0);    /* the one whole page */
	CHECK_INT(p[(512 << 10) + 8192], ==, 0x5a); /* partial last page kept */
	CHECK_INT(released(&d), ==, (256 << 10) + 4096);
	/* Readable report buffers are a driver bug. */
	vdrv_post_one(&d, 2, region, 4096, false);
	vdrv_kick(&d, 2);
	CHECK(vdrv_needs_reset(&d));
	vdrv_free_vm(d.vm);
}

TEST(balloon_target_and_actual_in_config)
{
	struct balloon_config c = {.enabled = true, .target = 8 << 20};
	struct balloon_info info;
	struct err *e = NULL;
	struct vdrv d;

	make_balloon(&d, &c, 0, 2);
	CHECK_INT(vdrv_read32(&d, VIRTIO_MMIO_CONFIG), ==, 2048); /* num_pages */
	CHECK_INT(virtio_balloon_set_target(d.vd, (32 << 20) + 100, &e), ==, 0);
	CHECK_INT(vdrv_read32(&d, VIRTIO_MMIO_CONFIG), ==, 8192);
	CHECK(vdrv_read32(&d, VIRTIO_MMIO_INTERRUPT_STATUS) & 2); /* config change */
	vdrv_write32(&d, VIRTIO_MMIO_CONFIG + 4, 8192);		  /* the driver's actual */
	vdrv_write32(&d, VIRTIO_MMIO_CONFIG, 1);		  /* not its to write */
	virtio_balloon_query(d.vd, &info);
	CHECK_INT(info.target, ==, 32 << 20);
	CHECK_INT(info.actual, ==, 32 << 20);
	CHECK_INT(virtio_balloon_set_target(d.vd, VDRV_MEM + 4096, &e), <, 0);
	CHECK_CONTAINS(e->msg, "more than guest memory");
	err_free(&e);
	/* A driver reset forgets actual, keeps the target. */
	vdrv_reinit(&d);
	virtio_balloon_query(d.vd, &info);
	CHECK_INT(info.actual, ==, 0);
	CHECK_INT(info.target, ==, 32 << 20);
	vdrv_free_vm(d.vm);
}

TEST(balloon_option)
{
	struct vm_config cfg;
	struct err *e = NULL;

	vm_config_defaults(&cfg);
	CHECK_INT(vm_config_set_balloon(&cfg, "on", &e), ==, 0);
	CHECK(cfg.balloon.enabled && cfg.balloon.target == 0);
	CHECK_INT(vm_config_set_balloon(&cfg, "target=64M,deflate-on-oom=on,free-page-reporting=on,stats=5", &e), ==,
		  0);
	CHECK(cfg.balloon.enabled && cfg.balloon.deflate_on_oom && cfg.balloon.free_page_reporting);
	CHECK_INT(cfg.balloon.target, ==, 64 << 20);
	CHECK_INT(cfg.balloon.stats_interval, ==, 5);
	CHECK_INT(vm_config_set_balloon(&cfg, "target=64Q", &e), <, 0);
	CHECK_STR(e->msg, "--balloon 'target=64Q': target '64Q' is not a size (e.g. 128M)");
	CHECK_INT(vm_config_set_balloon(&cfg, "stats=-1", &e), <, 0);
	CHECK_INT(vm_config_set_balloon(&cfg, "colour=red", &e), <, 0);
	CHECK_STR(e->msg, "--balloon 'colour=red': unknown key 'colour'");
	CHECK_INT(vm_config_set_balloon(&cfg, "off", &e), ==, 0);
	CHECK(!cfg.balloon.enabled);
	err_free(&e);
	vm_config_free(&cfg);
}

TEST(balloon_refuses_target_above_memory)
{
	struct balloon_config c = {.enabled = true, .target = VDRV_MEM * 2};
	struct vm *vm = vdrv_fake_vm();
	struct err *e = NULL;

	CHECK_INT(virtio_balloon_create(vm, &c, NULL, &e), <, 0);
	CHECK_CONTAINS(e->msg, "balloon: target of 128 MiB is more than guest memory (64 MiB)");
	err_free(&e);
	vdrv_free_vm(vm);
}
