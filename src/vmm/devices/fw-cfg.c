#include "vmm/devices/fw-cfg.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/arch/x86/aml.h"
#include "vmm/arch/x86/e820.h"
#include "vmm/arch/x86/layout.h"
#include "vmm/snapshot/format.h"
#include "vmm/vm.h"

#define FW_CFG_KEYS (FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES)
#define FW_CFG_NO_ITEM 0xffff
#define FW_CFG_ARCH_LOCAL 0x8000 /* x86's own items: none here */
#define FW_CFG_WRITE_CHANNEL 0x4000
#define DIR_ENTRY_LEN 64
#define DMA_ACCESS_LEN 16
#define SELECTOR_OFFSET 0
#define DATA_OFFSET 1
#define DMA_HIGH_OFFSET 4
#define DMA_LOW_OFFSET 8

struct fw_cfg_item {
	const uint8_t *data; /* or, with data NULL, fd >= 0: the bytes are read from it */
	int fd;
	uint32_t len;
	bool owned;			 /* data was allocated here */
	char name[FW_CFG_FILE_NAME_MAX]; /* files only */
};

#define CACHE_LEN 4096 /* data-port reads of a file item, a block at a time */

struct fw_cfg {
	const struct guest_memory *mem;
	pthread_mutex_t lock; /* everything below */
	struct fw_cfg_item items[FW_CFG_KEYS];
	unsigned nfiles;
	uint16_t selected; /* FW_CFG_NO_ITEM: none */
	uint32_t offset;
	uint32_t dma_high;
	uint8_t cache[CACHE_LEN]; /* bytes [cache_start, cache_start + cache_len) of cache_key */
	uint16_t cache_key;
	uint32_t cache_start, cache_len;
};

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void item_release(struct fw_cfg_item *it)
{
	if (it->owned)
		free((void *)it->data);
	if (it->fd >= 0)
		close(it->fd);
	it->data = NULL;
	it->fd = -1;
	it->len = 0;
	it->owned = false;
}

/* Replace item key with a copy of data, or with fd's first len bytes. */
static int set_item(struct fw_cfg *f, uint16_t key, const void *data, int fd, uint32_t len)
{
	struct fw_cfg_item *it;
	void *p = NULL;

	if (key >= FW_CFG_KEYS)
		return -EINVAL;
	if (fd < 0) {
		p = malloc(len ? len : 1); /* an empty item still exists */
		if (p == NULL)
			return -ENOMEM;
		memcpy(p, data, len);
	}
	pthread_mutex_lock(&f->lock);
	it = &f->items[key];
	item_release(it);
	it->data = p;
	it->fd = fd;
	it->len = len;
	it->owned = p != NULL;
	f->cache_len = 0;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int fw_cfg_set_item(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len)
{
	return key < FW_CFG_FILE_FIRST ? set_item(f, key, data, -1, len) : -EINVAL;
}

int fw_cfg_set_item_file(struct fw_cfg *f, uint16_t key, int fd, uint32_t len)
{
	return key < FW_CFG_FILE_FIRST && fd >= 0 ? set_item(f, key, NULL, fd, len) : -EINVAL;
}

/* Copy len bytes of item it from offset off to dst; a file that ends
 * early (it shrank) gives zeros. */
static void item_copy(const struct fw_cfg_item *it, uint32_t off, uint8_t *dst, uint32_t len)
{
	ssize_t n = 0;

	if (it->data) {
		memcpy(dst, it->data + off, len);
		return;
	}
	while ((uint32_t)n < len) {
		ssize_t got = pread(it->fd, dst + n, len - (size_t)n, (off_t)off + n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += got;
	}
	memset(dst + n, 0, len - (size_t)n);
}

/* The directory: a big-endian count, then per file its size, selector,
 * a reserved word and its name (56 bytes, NUL-padded). */
static int rebuild_directory(struct fw_cfg *f)
{
	uint32_t len = 4 + DIR_ENTRY_LEN * f->nfiles;
	uint8_t *dir = calloc(1, len);

	if (dir == NULL)
		return -ENOMEM;
	put_be32(dir, f->nfiles);
	for (unsigned i = 0; i < f->nfiles; i++) {
		const struct fw_cfg_item *it = &f->items[FW_CFG_FILE_FIRST + i];
		uint8_t *ent = dir + 4 + DIR_ENTRY_LEN * i;
		put_be32(ent, it->len);
		put_be16(ent + 4, (uint16_t)(FW_CFG_FILE_FIRST + i));
		memcpy(ent + 8, it->name, strnlen(it->name, FW_CFG_FILE_NAME_MAX));
	}
	set_item(f, FW_CFG_FILE_DIR, dir, -1, len);
	free(dir);
	return 0;
}

int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len, struct err **e)
{
	uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + f->nfiles);
	int r;

	if (strlen(name) >= FW_CFG_FILE_NAME_MAX)
		return err_setx(e, ENAMETOOLONG, "fw_cfg file '%s': name longer than %d bytes", name,
				FW_CFG_FILE_NAME_MAX - 1);
	if (f->nfiles == FW_CFG_MAX_FILES)
		return err_setx(e, E2BIG, "fw_cfg file '%s': at most %d files", name, FW_CFG_MAX_FILES);
	r = set_item(f, key, data, -1, len);
	if (r < 0)
		return err_set(e, -r, "fw_cfg file '%s'", name);
	snprintf(f->items[key].name, FW_CFG_FILE_NAME_MAX, "%s", name);
	f->nfiles++;
	r = rebuild_directory(f);
	return r < 0 ? err_set(e, -r, "fw_cfg file directory") : 0;
}

struct fw_cfg *fw_cfg_new(const struct guest_memory *mem)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	uint8_t id[4];

	if (f == NULL)
		return NULL;
	f->mem = mem;
	f->selected = FW_CFG_NO_ITEM;
	for (unsigned i = 0; i < FW_CFG_KEYS; i++)
		f->items[i].fd = -1;
	pthread_mutex_init(&f->lock, NULL);
	put_le(id, FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA, 4);
	if (fw_cfg_set_item(f, FW_CFG_SIGNATURE, "QEMU", 4) < 0 || fw_cfg_set_item(f, FW_CFG_ID, id, 4) < 0 ||
	    rebuild_directory(f) < 0) {
		fw_cfg_free(f);
		return NULL;
	}
	return f;
}

void fw_cfg_free(struct fw_cfg *f)
{
	if (f == NULL)
		return;
	for (unsigned i = 0; i < FW_CFG_KEYS; i++)
		item_release(&f->items[i]);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* The selected item, or NULL (no item, an x86-local one, an empty key). */
static const struct fw_cfg_item *current(const struct fw_cfg *f)
{
	if (f->selected >= FW_CFG_KEYS || (f->items[f->selected].data == NULL && f->items[f->selected].fd < 0))
		return NULL;
	return &f->items[f->selected];
}

static void select_item(struct fw_cfg *f, uint16_t selector)
{
	/* The write channel bit only asks for writing, which no item allows. */
	selector &= (uint16_t)~FW_CFG_WRITE_CHANNEL;
	f->selected = (selector & FW_CFG_ARCH_LOCAL) ? FW_CFG_NO_ITEM : selector;
	f->offset = 0;
	f->cache_len = 0; /* a file item is read anew */
}

static uint8_t read_byte(struct fw_cfg *f)
{
	const struct fw_cfg_item *it = current(f);

	if (it == NULL || f->offset >= it->len)
		return 0;
	if (it->data)
		return it->data[f->offset++];
	if (f->cache_key != f->selected || f->offset < f->cache_start || f->offset - f->cache_start >= f->cache_len) {
		f->cache_key = f->selected;
		f->cache_start = f->offset;
		f->cache_len = MIN((uint32_t)CACHE_LEN, it->len - f->offset);
		item_copy(it, f->offset, f->cache, f->cache_len);
	}
	return f->cache[f->offset++ - f->cache_start];
}

/* Run the FWCfgDmaAccess at gpa; returns the control word to write back. */
static uint32_t dma_transfer(struct fw_cfg *f, uint64_t gpa)
{
	uint8_t *desc = guest_memory_ptr(f->mem, gpa, DMA_ACCESS_LEN);
	uint32_t control, length, result = 0;
	uint64_t addr;
	bool read;

	if (desc == NULL)
		return FW_CFG_DMA_ERROR; /* nowhere to write it, either */
	control = get_be32(desc);
	length = get_be32(desc + 4);
	addr = (uint64_t)get_be32(desc + 8) << 32 | get_be32(desc + 12);
	if (control & FW_CFG_DMA_SELECT)
		select_item(f, (uint16_t)(control >> 16));
	read = control & FW_CFG_DMA_READ;
	if (!read && (control & FW_CFG_DMA_WRITE))
		result = FW_CFG_DMA_ERROR; /* every item is read-only */
	else if (!read && !(control & FW_CFG_DMA_SKIP))
		length = 0;
	while (length > 0 && result == 0) {
		const struct fw_cfg_item *it = current(f);
		uint32_t avail = it && f->offset < it->len ? it->len - f->offset : 0;
		uint32_t n = avail ? MIN(avail, length) : length;
		uint8_t *dst = read ? guest_memory_ptr(f->mem, addr, n) : NULL;

		if (read && dst == NULL) {
			result = FW_CFG_DMA_ERROR;
			break;
		}
		if (read) {
			if (avail)
				item_copy(it, f->offset, dst, n);
			else
				memset(dst, 0, n); /* past the end: zeros */
			guest_memory_mark_dirty(f->mem, dst, n);
		}
		if (avail)
			f->offset += n;
		addr += n;
		length -= n;
	}
	return result;
}

void fw_cfg_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	static const uint8_t dma_signature[8] = "QEMU CFG";
	struct fw_cfg *f = opaque;

	pthread_mutex_lock(&f->lock);
	if (!is_write) {
		for (uint32_t i = 0; i < len; i++) {
			uint64_t at = offset + i;
			if (offset == DATA_OFFSET)
				data[i] = read_byte(f); /* a wide read takes that many bytes */
			else if (at >= DMA_HIGH_OFFSET && at < DMA_HIGH_OFFSET + 8)
				data[i] = dma_signature[at - DMA_HIGH_OFFSET];
			else
				data[i] = 0;
		}
	} else if (offset == SELECTOR_OFFSET && len == 2) {
		select_item(f, (uint16_t)(data[0] | data[1] << 8));
	} else if (offset == DMA_HIGH_OFFSET && len == 4) {
		f->dma_high = get_be32(data);
	} else if (offset == DMA_LOW_OFFSET && len == 4) {
		uint64_t gpa = (uint64_t)f->dma_high << 32 | get_be32(data);
		uint32_t result = dma_transfer(f, gpa);
		uint8_t *desc = guest_memory_ptr(f->mem, gpa, DMA_ACCESS_LEN); /* none: nowhere to answer */

		if (desc) {
			put_be32(desc, result);
			guest_memory_mark_dirty(f->mem, desc, 4);
		}
		f->dma_high = 0;
	}
	/* Other writes (the data port, bytes of the selector) change nothing. */
	pthread_mutex_unlock(&f->lock);
}

/* --- the VM's device ---------------------------------------------------- */

struct fw_cfg_dev {
	struct device dev;
	struct fw_cfg *cfg;
	uint32_t initrd_len; /* INITRD_DATA is read from the file */
	uint64_t initrd_addr;
	uint64_t cmdline_addr;
};

static void put_u32_item(struct fw_cfg *f, uint16_t key, uint32_t v)
{
	uint8_t b[4];

	put_le(b, v, 4);
	fw_cfg_set_item(f, key, b, 4);
}

static void put_u16_item(struct fw_cfg *f, uint16_t key, uint16_t v)
{
	uint8_t b[2];

	put_le(b, v, 2);
	fw_cfg_set_item(f, key, b, 2);
}

/* The initrd's addresses, known once the loader placed it (or restored). */
static void set_boot_items(struct fw_cfg_dev *d)
{
	put_u32_item(d->cfg, FW_CFG_CMDLINE_ADDR, (uint32_t)d->cmdline_addr);
	put_u32_item(d->cfg, FW_CFG_INITRD_ADDR, (uint32_t)d->initrd_addr);
}

static const struct device_ops fw_cfg_ops;

void fw_cfg_set_boot(struct vm *vm, uint64_t cmdline_addr, uint64_t initrd_addr)
{
	struct device *dev = devices_find(vm->devices, fw_cfg_ops.name);
	struct fw_cfg_dev *d = (struct fw_cfg_dev *)dev; /* dev is its first member */

	if (d == NULL)
		return;
	d->cmdline_addr = cmdline_addr;
	d->initrd_addr = initrd_addr;
	set_boot_items(d);
}

/* INITRD_DATA reads the file (a VM restored from a snapshot opens it
 * again: when it is gone, INITRD_DATA is empty and INITRD_SIZE 0). */
static void open_initrd(struct fw_cfg_dev *d, const char *path)
{
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	struct stat st;

	if (fd < 0) {
		if (path)
			log_debug("fw_cfg: initrd '%s': open: %s: no INITRD_DATA", path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size <= UINT32_MAX &&
	    fw_cfg_set_item_file(d->cfg, FW_CFG_INITRD_DATA, fd, (uint32_t)st.st_size) == 0) {
		d->initrd_len = (uint32_t)st.st_size;
		return;
	}
	close(fd);
}

static int fill_items(struct fw_cfg_dev *d, const struct vm *vm, struct err **e)
{
	struct e820_entry_desc map[E820_MAX];
	uint8_t e820[E820_MAX * 20], ram[8], uuid[16] = {0};
	unsigned n = e820_build(&vm->mem, map);
	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	int r;

	for (unsigned i = 0; i < n; i++) {
		put_le(e820 + 20 * i, map[i].addr, 8);
		put_le(e820 + 20 * i + 8, map[i].size, 8);
		put_le(e820 + 20 * i + 16, map[i].type, 4);
	}
	put_le(ram, vm->cfg.memory, 8);
	r = fw_cfg_set_item(d->cfg, FW_CFG_RAM_SIZE, ram, 8);
	if (r == 0)
		r = fw_cfg_set_item(d->cfg, FW_CFG_UUID, uuid, sizeof(uuid));
	if (r == 0)
		r = fw_cfg_set_item(d->cfg, FW_CFG_CMDLINE_DATA, cmdline, (uint32_t)strlen(cmdline) + 1);
	if (r < 0)
		return err_set(e, -r, "fw_cfg");
	put_u16_item(d->cfg, FW_CFG_NOGRAPHIC, 1);
	put_u16_item(d->cfg, FW_CFG_NB_CPUS, (uint16_t)vm->nvcpus);
	put_u16_item(d->cfg, FW_CFG_MAX_CPUS, (uint16_t)vm->nvcpus);
	put_u32_item(d->cfg, FW_CFG_CMDLINE_SIZE, (uint32_t)strlen(cmdline) + 1);
	put_u32_item(d->cfg, FW_CFG_INITRD_SIZE, d->initrd_len);
	set_boot_items(d);
	return fw_cfg_add_file(d->cfg, "etc/e820", e820, 20 * n, e);
}

static void fw_cfg_describe_acpi(struct device *dev, struct aml *aml)
{
	(void)dev;
	aml_device(aml, "FWCF");
	aml_name_decl(aml, "_HID");
	aml_string(aml, "QEMU0002");
	aml_name_decl(aml, "_STA");
	aml_integer(aml, 0x0b); /* present, enabled, functioning; not shown in a UI */
	aml_crs_begin(aml);
	aml_crs_io(aml, FW_CFG_PORT_SELECTOR, FW_CFG_PORTS);
	aml_crs_end(aml);
	aml_end(aml);
}

#define FW_CFG_STATE_VERSION 1

static void fw_cfg_save(struct device *dev, struct snap_writer *w)
{
	struct fw_cfg_dev *d = (struct fw_cfg_dev *)dev;

	pthread_mutex_lock(&d->cfg->lock);
	device_save_begin(dev, w, FW_CFG_STATE_VERSION);
	snap_put_u16(w, d->cfg->selected);
	snap_put_u32(w, d->cfg->offset);
	snap_put_u32(w, d->cfg->dma_high);
	snap_put_u64(w, d->cmdline_addr);
	snap_put_u64(w, d->initrd_addr);
	snap_section_end(w);
	pthread_mutex_unlock(&d->cfg->lock);
}

static int fw_cfg_restore(struct device *dev, const struct snap_reader *r, struct err **e)
{
	struct fw_cfg_dev *d = (struct fw_cfg_dev *)dev;
	char name[SNAP_NAME_MAX];
	struct snap_section s;
	int ret;

	/* Snapshots from before fw_cfg have no section: the device starts fresh. */
	device_section_name(dev, name, sizeof(name));
	if (!snap_find(r, name, &s))
		return 0;
	ret = device_restore_begin(dev, r, FW_CFG_STATE_VERSION, &s, e);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&d->cfg->lock);
	d->cfg->selected = snap_get_u16(&s);
	d->cfg->offset = snap_get_u32(&s);
	d->cfg->dma_high = snap_get_u32(&s);
	pthread_mutex_unlock(&d->cfg->lock);
	d->cmdline_addr = snap_get_u64(&s);
	d->initrd_addr = snap_get_u64(&s);
	set_boot_items(d);
	return snap_section_ok(&s) ? 0 : snap_bad_section(&s, e);
}

static void fw_cfg_destroy(struct device *dev)
{
	struct fw_cfg_dev *d = (struct fw_cfg_dev *)dev;

	fw_cfg_free(d->cfg);
	free(d);
}

static const struct device_ops fw_cfg_ops = {
    .name = "fw-cfg",
    .describe_acpi = fw_cfg_describe_acpi,
    .destroy = fw_cfg_destroy,
    .save = fw_cfg_save,
    .restore = fw_cfg_restore,
};

static int fw_cfg_create(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	struct fw_cfg_dev *d = calloc(1, sizeof(*d));
	int r;

	if (d == NULL)
		return err_set(e, ENOMEM, "fw_cfg");
	d->dev.ops = &fw_cfg_ops;
	vm_add_device(vm, &d->dev);
	d->cfg = fw_cfg_new(&vm->mem);
	if (d->cfg == NULL)
		return err_set(e, ENOMEM, "fw_cfg");
	open_initrd(d, cfg->initrd_path);
	r = fill_items(d, vm, e);
	if (r < 0)
		return r;
	return bus_register(&vm->pio, FW_CFG_PORT_SELECTOR, FW_CFG_PORTS, fw_cfg_io, d->cfg, "fw_cfg", e);
}

const struct device_type fw_cfg_type = {.name = "fw-cfg", .create = fw_cfg_create};
