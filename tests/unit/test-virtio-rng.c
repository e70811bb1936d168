/* virtio-rng driven by a fake guest driver, inline. */
#include <string.h>

#include "test.h"
#include "virtio-driver.h"
#include "vmm/devices/virtio/rng.h"

static void make_rng(struct vdrv *d)
{
	struct vm *vm = vdrv_fake_vm();
	struct err *e = NULL;

	CHECK_INT(virtio_rng_create(vm, &e), ==, 0);
	vdrv_init(d, vm, 0, 1);
	CHECK_INT(vdrv_read32(d, 0x008), ==, 4); /* VIRTIO_ID_RNG */
}

TEST(rng_fills_every_writable_byte)
{
	struct vdrv d;
	uint64_t a, b;
	struct vdrv_seg segs[2];
	uint16_t id;
	uint32_t len;
	uint8_t *pa, *pb;
	int zeros = 0;

	make_rng(&d);
	a = vdrv_alloc(&d, 4096);
	b = vdrv_alloc(&d, 4096);
	pa = vdrv_ptr(&d, a, 100);
	pb = vdrv_ptr(&d, b, 28);
	segs[0] = (struct vdrv_seg){a, 100, true};
	segs[1] = (struct vdrv_seg){b, 28, true};
	vdrv_post(&d, 0, segs, 2);
	vdrv_kick(&d, 0);
	CHECK(vdrv_used(&d, 0, &id, &len));
	CHECK_INT(len, ==, 128);
	for (int i = 0; i < 100; i++)
		zeros += pa[i] == 0;
	for (int i = 0; i < 28; i++)
		zeros += pb[i] == 0;
	CHECK_INT(zeros, <, 10); /* 128 random bytes have about half a zero */
	CHECK(!vdrv_needs_reset(&d));
	vdrv_free_vm(d.vm);
}

TEST(rng_caps_huge_requests)
{
	struct vdrv d;
	uint16_t id;
	uint32_t len;

	make_rng(&d);
	vdrv_post_one(&d, 0, vdrv_alloc(&d, 8 << 20), 8 << 20, true);
	vdrv_kick(&d, 0);
	CHECK(vdrv_used(&d, 0, &id, &len));
	CHECK_INT(len, ==, 64 * 1024);
	vdrv_free_vm(d.vm);
}

TEST(rng_readable_buffer_needs_reset)
{
	struct vdrv d;
	uint16_t id;
	uint32_t len;

	make_rng(&d);
	vdrv_post_one(&d, 0, vdrv_alloc(&d, 64), 64, false);
	vdrv_kick(&d, 0);
	CHECK(vdrv_needs_reset(&d));
	CHECK(!vdrv_used(&d, 0, &id, &len));
	/* After a reset the device serves again. */
	vdrv_reinit(&d);
	CHECK(!vdrv_needs_reset(&d));
	vdrv_post_one(&d, 0, vdrv_alloc(&d, 64), 64, true);
	vdrv_kick(&d, 0);
	CHECK(vdrv_used(&d, 0, &id, &len));
	CHECK_INT(len, ==, 64);
	vdrv_free_vm(d.vm);
}

TEST(rng_buffer_outside_guest_memory_needs_reset)
{
	struct vdrv d;

	make_rng(&d);
	vdrv_post_one(&d, 0, VDRV_MEM - 16, 64, true);
	vdrv_kick(&d, 0);
	CHECK(vdrv_needs_reset(&d));
	vdrv_free_vm(d.vm);
}

TEST(rng_option)
{
	struct vm_config cfg;
	struct err *e = NULL;

	vm_config_defaults(&cfg);
	CHECK(cfg.rng);
	CHECK_INT(vm_config_set_rng(&cfg, "off", &e), ==, 0);
	CHECK(!cfg.rng);
	CHECK_INT(vm_config_set_rng(&cfg, "maybe", &e), <, 0);
	CHECK_STR(e->msg, "--rng 'maybe': expected on or off");
	err_free(&e);
}
