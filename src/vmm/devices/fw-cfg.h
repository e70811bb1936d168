/*
 * fw_cfg, QEMU's firmware configuration device, at its x86 I/O ports, so
 * that test kernels and firmware written against QEMU read their
 * configuration the same way here (QEMU's docs/specs/fw_cfg.rst):
 *
 *   0x510  selector (16-bit write): picks an item, its read offset to 0
 *   0x511  data (8-bit read): the item's next byte; 0 past its end
 *   0x514  DMA address, high 32 bits, big-endian; reads "QEMU CFG"
 *   0x518  DMA address, low 32 bits, big-endian: writing it runs the
 *          transfer that the FWCfgDmaAccess at that address describes
 *
 * Items: the signature "QEMU", the ID (traditional and DMA interfaces),
 * UUID (zeros), RAM size, CPU count and maximum, "no graphics", the
 * command line (address, size with its NUL, data), the initrd (address,
 * size, data: read from the file, which stays open), and the file
 * directory with "etc/e820" (20-byte entries: address, length, type, all
 * little-endian).  Every item is read-only: data-port writes are ignored,
 * DMA writes fail with the error bit.  The DSDT describes the device as
 * QEMU0002, which Linux's qemu_fw_cfg driver binds to.
 *
 * Every guest-controlled value is checked: a selector names an item or
 * none (reads then give zeros), a DMA descriptor and the range it names
 * must lie in guest RAM or the transfer ends with the error bit.
 */
#ifndef CASULO_VMM_DEVICES_FW_CFG_H
#define CASULO_VMM_DEVICES_FW_CFG_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/devices/device.h"
#include "vmm/memory.h"

#define FW_CFG_PORT_SELECTOR 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_PORT_DMA 0x514
#define FW_CFG_PORTS 12 /* 0x510-0x51b, as QEMU declares them */

/* Item keys (QEMU's include/standard-headers/linux/qemu_fw_cfg.h). */
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_UUID 0x02
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NOGRAPHIC 0x04
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_MAX_CPUS 0x0f
#define FW_CFG_INITRD_ADDR 0x0a
#define FW_CFG_INITRD_SIZE 0x0b
#define FW_CFG_INITRD_DATA 0x12
#define FW_CFG_CMDLINE_ADDR 0x13
#define FW_CFG_CMDLINE_SIZE 0x14
#define FW_CFG_CMDLINE_DATA 0x15
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_FILE_FIRST 0x20
#define FW_CFG_MAX_FILES 16
#define FW_CFG_FILE_NAME_MAX 56

#define FW_CFG_ID_TRADITIONAL 0x01
#define FW_CFG_ID_DMA 0x02

/* FWCfgDmaAccess.control */
#define FW_CFG_DMA_ERROR 0x01
#define FW_CFG_DMA_READ 0x02
#define FW_CFG_DMA_SKIP 0x04
#define FW_CFG_DMA_SELECT 0x08
#define FW_CFG_DMA_WRITE 0x10

/* What reading 0x514-0x51b gives, as a big-endian 64-bit number. */
#define FW_CFG_DMA_SIGNATURE 0x51454d5520434647ULL /* "QEMU CFG" */

struct fw_cfg;

/* The register model alone (unit tests): no items but the signature, the
 * ID and the file directory; DMA reaches mem. */
struct fw_cfg *fw_cfg_new(const struct guest_memory *mem);
void fw_cfg_free(struct fw_cfg *f);
/* Add or replace item key (below FW_CFG_FILE_FIRST) with a copy of data. */
int fw_cfg_set_item(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len);
/* Item key's data is len bytes read from fd as the guest asks (fd is
 * f's from now on): a large file is not copied, and one that shrinks
 * reads as zeros past its new end. */
int fw_cfg_set_item_file(struct fw_cfg *f, uint16_t key, int fd, uint32_t len);
/* Add a named file (a copy); it gets the next selector from 0x20. */
int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len, struct err **e);
/* The I/O port handler, offset from 0x510. */
void fw_cfg_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* The VM's device: built-in, filled from the VM's configuration. */
extern const struct device_type fw_cfg_type;
struct vm;
/* Where the loader put the command line and the initrd (0: none). */
void fw_cfg_set_boot(struct vm *vm, uint64_t cmdline_addr, uint64_t initrd_addr);

#endif
