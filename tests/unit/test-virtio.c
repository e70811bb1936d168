/*
 * Virtqueues, the virtio-mmio transport and virtio-blk, driven from the
 * test as a (sometimes hostile) guest driver would.  Devices run inline:
 * their thread is never started, so every step is synchronous.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#include "test.h"
#include "vmm/devices/virtio/blk.h"
#include "vmm/devices/virtio/queue.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/image-lock.h"
#include "vmm/vm.h"

#define MEM (32 * MiB)
#define DESC 0x100000ULL
#define AVAIL 0x110000ULL
#define USED 0x120000ULL
#define BUF 0x200000ULL
#define QSIZE 16

/* A guest driver's view of one split queue. */
struct drv {
	struct guest_memory *mem;
	uint16_t size, avail_idx, next;
};

static struct vring_desc *desc_at(struct drv *d, unsigned i)
{
	return guest_memory_ptr(d->mem, DESC + 16ULL * i, 16);
}

static unsigned add_desc(struct drv *d, uint64_t addr, uint32_t len, uint16_t flags)
{
	unsigned i = d->next++;
	struct vring_desc *x = desc_at(d, i);

	x->addr = addr;
	x->len = len;
	x->flags = flags;
	x->next = (uint16_t)(flags & VRING_DESC_F_NEXT ? d->next : 0);
	return i;
}

static void publish(struct drv *d, uint16_t head)
{
	struct vring_avail *a = guest_memory_ptr(d->mem, AVAIL, 6 + 2 * d->size);

	a->ring[d->avail_idx % d->size] = head;
	d->avail_idx++;
	a->idx = d->avail_idx;
}

static void setup(struct guest_memory *mem, struct virtq *q, struct drv *d)
{
	struct err *e = NULL;

	CHECK_INT(guest_memory_create(mem, MEM, &e), ==, 0);
	memset(q, 0, sizeof(*q));
	q->max_size = QSIZE;
	virtq_reset(q);
	q->desc_addr = DESC;
	q->avail_addr = AVAIL;
	q->used_addr = USED;
	CHECK_INT(virtq_enable(q, mem, false), ==, 0);
	*d = (struct drv){.mem = mem, .size = QSIZE};
}

TEST(virtq_pops_a_chain_split_by_direction)
{
	struct guest_memory mem;
	struct virtq q;
	struct drv d;
	struct virtq_req *req = virtq_req_new(8);
	unsigned h;

	setup(&mem, &q, &d);
	h = add_desc(&d, BUF, 16, VRING_DESC_F_NEXT);
	add_desc(&d, BUF + 4096, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE);
	add_desc(&d, BUF + 8192, 1, VRING_DESC_F_WRITE);
	publish(&d, (uint16_t)h);
	CHECK_INT(virtq_pop(&q, req), ==, 1);
	CHECK_INT(req->n_out, ==, 1);
	CHECK_INT(req->n_in, ==, 2);
	CHECK_INT(req->out_len, ==, 16);
	CHECK_INT(req->in_len, ==, 513);
	CHECK(req->out[0].iov_base == guest_memory_ptr(&mem, BUF, 16));
	CHECK_INT(virtq_pop(&q, req), ==, 0);
	virtq_push(&q, req->head, 513);
	CHECK_INT(((struct vring_used *)guest_memory_ptr(&mem, USED, 8))->idx, ==, 1);
	CHECK_INT(((struct vring_used *)guest_memory_ptr(&mem, USED, 16))->ring[0].len, ==, 513);
	virtq_req_free(req);
	guest_memory_destroy(&mem);
}

static void expect_bad(struct drv *d, struct virtq *q, uint16_t head)
{
	struct virtq_req *req = virtq_req_new(4);

	publish(d, head);
	CHECK_INT(virtq_pop(q, req), ==, -EINVAL);
	virtq_req_free(req);
}

TEST(virtq_rejects_descriptor_loops)
{
	struct guest_memory mem;
	struct virtq q;
	struct drv d;

	setup(&mem, &q, &d);
	add_desc(&d, BUF, 16, VRING_DESC_F_NEXT);
	add_desc(&d, BUF, 16, VRING_DESC_F_NEXT);
	desc_at(&d, 1)->next = 0; /* 0 -> 1 -> 0 -> ... */
	expect_bad(&d, &q, 0);
	guest_memory_destroy(&mem);
}

TEST(virtq_rejects_addresses_outside_guest_ram)
{
	struct guest_memory mem;
	struct virtq q;
	struct drv d;

	setup(&mem, &q, &d);
	add_desc(&d, MEM - 8, 16, 0); /* runs off the end */
	expect_bad(&d, &q, 0);
	setup(&mem, &q, &d);
	add_desc(&d, UINT64_MAX - 4, 16, 0); /* wraps */
	expect_bad(&d, &q, 0);
	setup(&mem, &q, &d);
	add_desc(&d, 0xd0000000ULL, 16, 0); /* the MMIO hole */
	expect_bad(&d, &q, 0);
	guest_memory_destroy(&mem);
}

TEST(virtq_rejects_bad_indexes)
{
	struct guest_memory mem;
	struct virtq q;
	struct drv d;
	struct vring_avail *a;
	struct virtq_req *req = virtq_req_new(4);

	setup(&mem, &q, &d);
	add_desc(&d, BUF, 16, 0);
	expect_bad(&d, &q, QSIZE); /* head beyond the table */
	setup(&mem, &q, &d);
	add_desc(&d, BUF, 16, VRING_DESC_F_NEXT);
	desc_at(&d, 0)->next = 999; /* next beyond the table */
	expect_bad(&d, &q, 0);
	setup(&mem, &q, &d);
	a = guest_memory_ptr(&mem, AVAIL, 8);
	a->idx = QSIZE + 1; /* more outstanding than the queue holds */
	CHECK_INT(virtq_pop(&q, req), ==, -EINVAL);
	virtq_req_free(req);
	guest_memory_destroy(&mem);
}

TEST(virtq_rejects_readable_after_writable)
{
	struct guest_memory mem;
	struct virtq q;
	struct drv d;

	setup(&mem, &q, &d);
	add_desc(&d, BUF, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE);
	add_desc(&d, BUF, 16, 0);
	expect_bad(&d, &q, 0);
	guest_memory_destroy(&mem);
}

TEST(virtq_rejects_chains_longer_than_the_request_holds)
{
	struct guest_memory mem;
	struct virtq q;
	struct drv d;

	setup(&mem, &q, &d);
	for (int i = 0; i < 6; i++)
		add_desc(&d, BUF, 16, i < 5 ? VRING_DESC_F_NEXT : 0);
	expect_bad(&d, &q, 0); /* 6 readable buffers, room for 4 */
	guest_memory_destroy(&mem);
}

TEST(virtq_indirect_tables)
{
	struct guest_memory mem;
	struct virtq q;
	struct drv d;
	struct virtq_req *req = virtq_req_new(8);
	struct vring_desc *ind;

	setup(&mem, &q, &d);
	ind = guest_memory_ptr(&mem, BUF + 0x10000, 3 * 16);
	ind[0] = (struct vring_desc){BUF, 16, VRING_DESC_F_NEXT, 1};
	ind[1] = (struct vring_desc){BUF + 4096, 100, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2};
	ind[2] = (struct vring_desc){BUF + 8192, 1, VRING_DESC_F_WRITE, 0};
	add_desc(&d, BUF + 0x10000, 3 * 16, VRING_DESC_F_INDIRECT);
	publish(&d, 0);
	CHECK_INT(virtq_pop(&q, req), ==, 1);
	CHECK_INT(req->n_out, ==, 1);
	CHECK_INT(req->n_in, ==, 2);
	CHECK_INT(req->in_len, ==, 101);

	/* Nested indirect tables are forbidden. */
	ind[1] = (struct vring_desc){BUF + 0x10000, 48, VRING_DESC_F_INDIRECT, 0};
	publish(&d, 0);
	CHECK_INT(virtq_pop(&q, req), ==, -EINVAL);
	/* A table whose length is not a multiple of 16, or with NEXT set. */
	setup(&mem, &q, &d);
	add_desc(&d, BUF + 0x10000, 40, VRING_DESC_F_INDIRECT);
	expect_bad(&d, &q, 0);
	setup(&mem, &q, &d);
	add_desc(&d, BUF + 0x10000, 48, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT);
	expect_bad(&d, &q, 0);
	/* An indirect loop. */
	setup(&mem, &q, &d);
	ind = guest_memory_ptr(&mem, BUF + 0x10000, 2 * 16);
	ind[0] = (struct vring_desc){BUF, 16, VRING_DESC_F_NEXT, 1};
	ind[1] = (struct vring_desc){BUF, 16, VRING_DESC_F_NEXT, 0};
	add_desc(&d, BUF + 0x10000, 32, VRING_DESC_F_INDIRECT);
	expect_bad(&d, &q, 0);
	virtq_req_free(req);
	guest_memory_destroy(&mem);
}

TEST(virtq_enable_checks_rings)
{
	struct guest_memory mem;
	struct virtq q;
	struct drv d;

	setup(&mem, &q, &d);
	q.size = 12; /* not a power of two */
	CHECK_INT(virtq_enable(&q, &mem, false), ==, -EINVAL);
	q.size = 32; /* above the maximum */
	CHECK_INT(virtq_enable(&q, &mem, false), ==, -EINVAL);
	q.size = 16;
	q.desc_addr = DESC + 8; /* misaligned */
	CHECK_INT(virtq_enable(&q, &mem, false), ==, -EINVAL);
	q.desc_addr = MEM - 64; /* table runs off RAM */
	CHECK_INT(virtq_enable(&q, &mem, false), ==, -EINVAL);
	q.desc_addr = DESC;
	CHECK_INT(virtq_enable(&q, &mem, false), ==, 0);
	guest_memory_destroy(&mem);
}

TEST(virtq_event_index_suppresses_interrupts)
{
	struct guest_memory mem;
	struct virtq q;
	struct drv d;
	struct vring_avail *a;

	setup(&mem, &q, &d);
	CHECK_INT(virtq_enable(&q, &mem, true), ==, 0);
	a = guest_memory_ptr(&mem, AVAIL, 6 + 2 * QSIZE);
	a->ring[QSIZE] = 2; /* used_event: interrupt when used idx passes 2 */
	virtq_push(&q, 0, 0);
	CHECK(virtq_should_notify(&q)); /* first one always */
	virtq_push(&q, 0, 0);
	CHECK(!virtq_should_notify(&q)); /* used idx 2: not past 2 yet */
	virtq_push(&q, 0, 0);
	CHECK(virtq_should_notify(&q)); /* used idx 3 passed 2 */
	guest_memory_destroy(&mem);
}

TEST(iov_copies_stay_inside_buffers)
{
	char a[4] = "abcd", b[3] = "efg", out[16];
	struct iovec iov[2] = {{a, 4}, {b, 3}};

	CHECK_INT(iov_copy_from(iov, 2, 2, out, 16), ==, 5);
	CHECK(memcmp(out, "cdefg", 5) == 0);
	CHECK_INT(iov_copy_to(iov, 2, 6, "XYZ", 3), ==, 1);
	CHECK_INT(b[2], ==, 'X');
	CHECK_INT(iov_copy_from(iov, 2, 100, out, 4), ==, 0);
}

/* --- transport and virtio-blk --- */

struct fake_vm {
	struct vm vm;
};

static struct vm *fake_vm(void)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct err *e = NULL;

	vm->vm_fd = vm->kvm_fd = -1;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	CHECK_INT(guest_memory_create(&vm->mem, MEM, &e), ==, 0);
	return vm;
}

static void free_vm(struct vm *vm)
{
	devices_destroy_all(&vm->devices);
	bus_destroy(&vm->mmio);
	bus_destroy(&vm->pio);
	guest_memory_destroy(&vm->mem);
	free(vm);
}

static uint32_t rd(struct virtio_dev *vd, uint64_t off)
{
	uint32_t v;
	virtio_mmio_access(vd, off, (uint8_t *)&v, 4, false);
	return v;
}

static void wr(struct virtio_dev *vd, uint64_t off, uint32_t v)
{
	virtio_mmio_access(vd, off, (uint8_t *)&v, 4, true);
}

static char *temp_image(size_t size, int fill)
{
	char *path = strdup("/tmp/casulo-blk-XXXXXX");
	int fd = mkstemp(path);
	char *buf = malloc(size);

	memset(buf, fill, size);
	CHECK(write(fd, buf, size) == (ssize_t)size);
	close(fd);
	free(buf);
	return path;
}

static struct virtio_dev *make_blk(struct vm *vm, const char *path, bool readonly)
{
	struct disk_config d = {.path = path, .readonly = readonly, .id = "serial-123"};
	struct err *e = NULL;

	CHECK_INT(virtio_blk_create(vm, &d, 0, &e), ==, 0);
	if (e)
		test_fail_at(__FILE__, __LINE__, "%s", e->msg);
	return (struct virtio_dev *)vm->devices;
}

/* Negotiate like Linux: features, one queue at our ring addresses. */
static void drive_to_ok(struct virtio_dev *vd, uint64_t features)
{
	wr(vd, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(vd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(vd, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(vd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(vd, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(vd, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
	wr(vd, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(vd, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(vd, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC);
	wr(vd, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)AVAIL);
	wr(vd, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)USED);
	wr(vd, VIRTIO_MMIO_QUEUE_READY, 1);
	wr(vd, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
	       VIRTIO_CONFIG_S_DRIVER_OK);
}

#define F_VERSION_1 (1ULL << 32)
#define F_FLUSH (1ULL << VIRTIO_BLK_F_FLUSH)

TEST(mmio_identifies_and_negotiates)
{
	struct vm *vm = fake_vm();
	char *img = temp_image(1 << 20, 0);
	struct virtio_dev *vd = make_blk(vm, img, false);
	uint8_t byte;

	CHECK_INT(rd(vd, VIRTIO_MMIO_MAGIC_VALUE), ==, 0x74726976);
	CHECK_INT(rd(vd, VIRTIO_MMIO_VERSION), ==, 2);
	CHECK_INT(rd(vd, VIRTIO_MMIO_DEVICE_ID), ==, 2);
	wr(vd, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	CHECK(rd(vd, VIRTIO_MMIO_DEVICE_FEATURES) & 1); /* VERSION_1 */
	/* Capacity in the config space: 1 MiB = 2048 sectors. */
	CHECK_INT(rd(vd, VIRTIO_MMIO_CONFIG), ==, 2048);
	/* Out-of-range config reads are zero; odd-width register reads too. */
	CHECK_INT(rd(vd, VIRTIO_MMIO_CONFIG + 252), ==, 0);
	virtio_mmio_access(vd, VIRTIO_MMIO_MAGIC_VALUE, &byte, 1, false);
	CHECK_INT(byte, ==, 0);

	/* A feature we never offered: FEATURES_OK does not stick. */
	wr(vd, VIRTIO_MMIO_STATUS, 3);
	wr(vd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(vd, VIRTIO_MMIO_DRIVER_FEATURES, 1 | (1u << 20));
	wr(vd, VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK(!(rd(vd, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK));
	/* Legacy (no VERSION_1): refused too. */
	wr(vd, VIRTIO_MMIO_STATUS, 0);
	wr(vd, VIRTIO_MMIO_STATUS, 3);
	wr(vd, VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK(!(rd(vd, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK));
	/* DRIVER_OK without FEATURES_OK: needs reset. */
	wr(vd, VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_DRIVER_OK);
	CHECK(rd(vd, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* Reset clears everything. */
	wr(vd, VIRTIO_MMIO_STATUS, 0);
	CHECK_INT(rd(vd, VIRTIO_MMIO_STATUS), ==, 0);
	drive_to_ok(vd, F_VERSION_1 | F_FLUSH);
	CHECK_INT(rd(vd, VIRTIO_MMIO_STATUS), ==, 0xf);
	CHECK(vd->active);
	free_vm(vm);
	unlink(img);
	free(img);
}

TEST(mmio_bad_ring_address_needs_reset)
{
	struct vm *vm = fake_vm();
	char *img = temp_image(1 << 20, 0);
	struct virtio_dev *vd = make_blk(vm, img, false);

	wr(vd, VIRTIO_MMIO_STATUS, 3);
	wr(vd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(vd, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(vd, VIRTIO_MMIO_STATUS, 0xb);
	wr(vd, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(vd, VIRTIO_MMIO_QUEUE_DESC_LOW, 0xfffff000);
	wr(vd, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0x7);
	wr(vd, VIRTIO_MMIO_QUEUE_READY, 1);
	wr(vd, VIRTIO_MMIO_STATUS, 0xf);
	CHECK(rd(vd, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	CHECK(rd(vd, VIRTIO_MMIO_INTERRUPT_STATUS) & 2); /* config change raised */
	CHECK(!vd->active);
	wr(vd, VIRTIO_MMIO_STATUS, 0);
	CHECK_INT(rd(vd, VIRTIO_MMIO_STATUS), ==, 0);
	free_vm(vm);
	unlink(img);
	free(img);
}

/* One virtio-blk request: header, optional data, status. */
static uint8_t blk_request(struct virtio_dev *vd, struct drv *d, uint32_t type, uint64_t sector, uint64_t data_addr,
			   uint32_t data_len, bool data_writable)
{
	struct virtio_blk_outhdr *hdr = guest_memory_ptr(d->mem, BUF, sizeof(*hdr));
	uint8_t *status = guest_memory_ptr(d->mem, BUF + 64, 1);
	unsigned head;

	hdr->type = type;
	hdr->ioprio = 0;
	hdr->sector = sector;
	*status = 0xaa;
	d->next = 0;
	head = add_desc(d, BUF, sizeof(*hdr), VRING_DESC_F_NEXT);
	if (data_len)
		add_desc(d, data_addr, data_len, VRING_DESC_F_NEXT | (data_writable ? VRING_DESC_F_WRITE : 0));
	add_desc(d, BUF + 64, 1, VRING_DESC_F_WRITE);
	publish(d, (uint16_t)head);
	virtio_dev_process_queue(vd, 0);
	return *status;
}

TEST(blk_reads_writes_and_checks_ranges)
{
	struct vm *vm = fake_vm();
	char *img = temp_image(1 << 20, 0x5a);
	struct virtio_dev *vd = make_blk(vm, img, false);
	struct drv d = {.mem = &vm->mem, .size = QSIZE};
	uint8_t *data = guest_memory_ptr(&vm->mem, BUF + 0x1000, 4096);
	char file[4096];
	int fd;

	drive_to_ok(vd, F_VERSION_1 | F_FLUSH);
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_IN, 8, BUF + 0x1000, 4096, true), ==, VIRTIO_BLK_S_OK);
	CHECK_INT(data[0], ==, 0x5a);
	CHECK_INT(data[4095], ==, 0x5a);
	memset(data, 0x11, 4096);
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_OUT, 16, BUF + 0x1000, 4096, false), ==, VIRTIO_BLK_S_OK);
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), ==, VIRTIO_BLK_S_OK);
	fd = open(img, O_RDONLY);
	CHECK_INT(pread(fd, file, sizeof(file), 16 * 512), ==, 4096);
	close(fd);
	CHECK_INT(file[0], ==, 0x11);
	/* The last sector is fine, one past it is not; nor is an odd length. */
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_IN, 2047, BUF + 0x1000, 512, true), ==, VIRTIO_BLK_S_OK);
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_IN, 2047, BUF + 0x1000, 1024, true), ==, VIRTIO_BLK_S_IOERR);
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_IN, UINT64_MAX, BUF + 0x1000, 512, true), ==, VIRTIO_BLK_S_IOERR);
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_IN, 0, BUF + 0x1000, 100, true), ==, VIRTIO_BLK_S_IOERR);
	CHECK_INT(blk_request(vd, &d, 77, 0, 0, 0, false), ==, VIRTIO_BLK_S_UNSUPP);
	/* GET_ID: the serial. */
	memset(data, 0, 32);
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_GET_ID, 0, BUF + 0x1000, 20, true), ==, VIRTIO_BLK_S_OK);
	CHECK_STR((char *)data, "serial-123");
	CHECK(!vd->broken);
	free_vm(vm);
	unlink(img);
	free(img);
}

TEST(blk_discard_and_write_zeroes)
{
	struct vm *vm = fake_vm();
	char *img = temp_image(1 << 20, 0x77);
	struct virtio_dev *vd = make_blk(vm, img, false);
	struct drv d = {.mem = &vm->mem, .size = QSIZE};
	struct virtio_blk_discard_write_zeroes *r = guest_memory_ptr(&vm->mem, BUF + 0x1000, sizeof(*r));
	char file[512];
	int fd;

	drive_to_ok(vd, F_VERSION_1 | F_FLUSH);
	*r = (struct virtio_blk_discard_write_zeroes){.sector = 100, .num_sectors = 8};
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_WRITE_ZEROES, 0, BUF + 0x1000, sizeof(*r), false), ==,
		  VIRTIO_BLK_S_OK);
	fd = open(img, O_RDONLY);
	CHECK_INT(pread(fd, file, 512, 100 * 512), ==, 512);
	CHECK_INT(file[0], ==, 0);
	CHECK_INT(pread(fd, file, 512, 108 * 512), ==, 512);
	CHECK_INT(file[0], ==, 0x77);
	close(fd);
	*r = (struct virtio_blk_discard_write_zeroes){.sector = 2040, .num_sectors = 16};
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_DISCARD, 0, BUF + 0x1000, sizeof(*r), false), ==,
		  VIRTIO_BLK_S_IOERR); /* past the end */
	*r = (struct virtio_blk_discard_write_zeroes){.sector = 0, .num_sectors = 8};
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_DISCARD, 0, BUF + 0x1000, sizeof(*r), false), ==, VIRTIO_BLK_S_OK);
	free_vm(vm);
	unlink(img);
	free(img);
}

TEST(blk_readonly_refuses_writes)
{
	struct vm *vm = fake_vm();
	char *img = temp_image(1 << 20, 0x33);
	struct virtio_dev *vd = make_blk(vm, img, true);
	struct drv d = {.mem = &vm->mem, .size = QSIZE};
	char file[512];
	int fd;

	wr(vd, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	CHECK(rd(vd, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_RO));
	drive_to_ok(vd, F_VERSION_1 | F_FLUSH | (1ULL << VIRTIO_BLK_F_RO));
	memset(guest_memory_ptr(&vm->mem, BUF + 0x1000, 512), 0, 512);
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_OUT, 0, BUF + 0x1000, 512, false), ==, VIRTIO_BLK_S_IOERR);
	fd = open(img, O_RDONLY);
	CHECK_INT(pread(fd, file, 512, 0), ==, 512);
	close(fd);
	CHECK_INT(file[0], ==, 0x33);
	CHECK_INT(blk_request(vd, &d, VIRTIO_BLK_T_IN, 0, BUF + 0x1000, 512, true), ==, VIRTIO_BLK_S_OK);
	free_vm(vm);
	unlink(img);
	free(img);
}

TEST(blk_malformed_chain_needs_reset)
{
	struct vm *vm = fake_vm();
	char *img = temp_image(1 << 20, 0);
	struct virtio_dev *vd = make_blk(vm, img, false);
	struct drv d = {.mem = &vm->mem, .size = QSIZE};

	drive_to_ok(vd, F_VERSION_1 | F_FLUSH);
	/* A request with no writable byte for its status. */
	d.next = 0;
	add_desc(&d, BUF, 16, 0);
	publish(&d, 0);
	virtio_dev_process_queue(vd, 0);
	CHECK(vd->broken);
	CHECK(rd(vd, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	wr(vd, VIRTIO_MMIO_STATUS, 0);
	CHECK(!vd->broken);
	free_vm(vm);
	unlink(img);
	free(img);
}

/* Disks lock their images as QEMU does: two writers, or a writer and a
 * reader, are refused with a message naming the disk; readers share;
 * lock=off opts out.  The lock held by the test itself stands for another
 * VMM: it is the same kind of lock (an OFD lock on the whole file). */
TEST(blk_locks_its_image)
{
	struct vm *vm = fake_vm();
	char *img = temp_image(1 << 20, 0);
	struct disk_config rw = {.path = img, .lock = true}, ro = {.path = img, .readonly = true, .lock = true};
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
	struct err *e = NULL;
	char want[256];
	int fd;

	CHECK_INT(virtio_blk_create(vm, &rw, 0, &e), ==, 0);
	CHECK_INT(virtio_blk_create(vm, &rw, 1, &e), <, 0);
	snprintf(want, sizeof(want),
		 "disk '%s': in use: another disk or process holds a lock on it (lock=off shares it anyway)", img);
	CHECK_STR(e->msg, want);
	err_free(&e);
	CHECK_INT(virtio_blk_create(vm, &ro, 1, &e), <, 0);
	CHECK_CONTAINS(e->msg, "holds a write lock on it");
	err_free(&e);
	rw.lock = false;
	CHECK_INT(virtio_blk_create(vm, &rw, 1, &e), ==, 0);
	free_vm(vm);

	/* Readers share; a writer (another VMM's) is refused beside them. */
	vm = fake_vm();
	CHECK_INT(virtio_blk_create(vm, &ro, 0, &e), ==, 0);
	CHECK_INT(virtio_blk_create(vm, &ro, 1, &e), ==, 0);
	fd = open(img, O_RDWR | O_CLOEXEC);
	fl.l_type = F_WRLCK;
	CHECK_INT(fcntl(fd, F_OFD_SETLK, &fl), ==, -1);
	free_vm(vm);
	/* Closing the disks drops their locks. */
	CHECK_INT(fcntl(fd, F_OFD_SETLK, &fl), ==, 0);
	vm = fake_vm();
	rw.lock = true;
	CHECK_INT(virtio_blk_create(vm, &rw, 0, &e), <, 0);
	CHECK_CONTAINS(e->msg, "in use");
	err_free(&e);
	free_vm(vm);
	close(fd);
	unlink(img);
	free(img);
}

/* A live migration's hand-over (image-lock.h): the destination opens the
 * image while the source holds it, takes the lock only once the source
 * let it go, and takes all its disks' locks or none. */
TEST(blk_hands_its_lock_over)
{
	struct vm *src = fake_vm(), *dst = fake_vm();
	char *img = temp_image(1 << 20, 0), *other = temp_image(1 << 20, 0);
	struct disk_config rw = {.path = img, .lock = true}, rw2 = {.path = other, .lock = true};
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	struct err *e = NULL;
	int fd = open(other, O_RDWR | O_CLOEXEC);

	CHECK_INT(virtio_blk_create(src, &rw, 0, &e), ==, 0);
	dst->defer_image_locks = true;
	CHECK_INT(virtio_blk_create(dst, &rw2, 0, &e), ==, 0);
	CHECK_INT(virtio_blk_create(dst, &rw, 1, &e), ==, 0); /* the source's, not locked yet */
	/* Still the source's: the destination takes none of its two. */
	CHECK_INT(image_locks_take(dst->image_locks, &e), ==, -EBUSY);
	CHECK_CONTAINS(e->msg, "in use");
	err_free(&e);
	CHECK_INT(fcntl(fd, F_OFD_SETLK, &fl), ==, 0); /* 'other' was left free */
	fl.l_type = F_UNLCK;
	CHECK_INT(fcntl(fd, F_OFD_SETLK, &fl), ==, 0);
	/* The source lets go: the destination has both. */
	image_locks_release(src->image_locks);
	CHECK_INT(image_locks_take(dst->image_locks, &e), ==, 0);
	fl.l_type = F_WRLCK;
	CHECK_INT(fcntl(fd, F_OFD_SETLK, &fl), ==, -1);
	/* A source whose destination failed takes its lock back once the
	 * destination is gone, not before. */
	CHECK_INT(image_locks_take(src->image_locks, &e), ==, -EBUSY);
	err_free(&e);
	free_vm(dst);
	CHECK_INT(image_locks_take(src->image_locks, &e), ==, 0);
	CHECK_INT(fcntl(fd, F_OFD_SETLK, &fl), ==, 0);
	free_vm(src);
	close(fd);
	unlink(img);
	unlink(other);
	free(img);
	free(other);
}

TEST(blk_refuses_bad_images)
{
	struct vm *vm = fake_vm();
	struct disk_config d = {.path = "/nonexistent.img"};
	struct err *e = NULL;
	char *tiny = temp_image(100, 0);

	CHECK_INT(virtio_blk_create(vm, &d, 0, &e), <, 0);
	CHECK_STR(e->msg, "disk '/nonexistent.img': open: No such file or directory");
	d.path = tiny;
	CHECK_INT(virtio_blk_create(vm, &d, 0, &e), <, 0);
	CHECK_CONTAINS(e->msg, "smaller than one 512-byte sector");
	d.path = "/tmp";
	CHECK_INT(virtio_blk_create(vm, &d, 0, &e), <, 0);
	err_free(&e);
	unlink(tiny);
	free(tiny);
	free_vm(vm);
}
