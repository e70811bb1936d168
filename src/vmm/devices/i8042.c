/*
 * Just enough of the i8042 keyboard controller for `reboot=k`: Linux
 * reboots by writing 0xfe (pulse the reset line) to the command port, or
 * by clearing bit 0 of the output port.  There is no keyboard behind it;
 * the FADT tells Linux not to probe for one.
 */
#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"
#include "vmm/devices/device.h"
#include "vmm/devices/i8042.h"
#include "vmm/snapshot/format.h"
#include "vmm/vm.h"

#define I8042_DATA_PORT 0x60
#define I8042_COMMAND_PORT 0x64

#define STATUS_OUTPUT_FULL 0x01
#define STATUS_SYSTEM_FLAG 0x04
#define STATUS_COMMAND 0x08

#define CMD_READ_CONFIG 0x20
#define CMD_WRITE_CONFIG 0x60
#define CMD_DISABLE_AUX 0xa7
#define CMD_ENABLE_AUX 0xa8
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_DISABLE_KBD 0xad
#define CMD_ENABLE_KBD 0xae
#define CMD_READ_OUTPUT_PORT 0xd0
#define CMD_WRITE_OUTPUT_PORT 0xd1
#define CMD_PULSE_RESET 0xfe

#define SELF_TEST_OK 0x55
#define OUTPUT_PORT_RESET_HIGH 0x01 /* clearing it resets the CPU */

struct i8042 {
	struct device dev;
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t status;
	uint8_t config;
	uint8_t output_port;
	uint8_t out_byte;
	uint8_t pending_cmd; /* a command waiting for its data byte */
};

static void i8042_reply(struct i8042 *k, uint8_t v)
{
	k->out_byte = v;
	k->status |= STATUS_OUTPUT_FULL;
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
	k->status |= STATUS_COMMAND;
	switch (cmd) {
	case CMD_READ_CONFIG:
		i8042_reply(k, k->config);
		break;
	case CMD_WRITE_CONFIG:
	case CMD_WRITE_OUTPUT_PORT:
		k->pending_cmd = cmd;
		break;
	case CMD_SELF_TEST:
		i8042_reply(k, SELF_TEST_OK);
		break;
	case CMD_KBD_TEST:
		i8042_reply(k, 0x00);
		break;
	case CMD_READ_OUTPUT_PORT:
		i8042_reply(k, k->output_port);
		break;
	case CMD_PULSE_RESET:
		log_info("i8042: reset pulse: the guest reboots");
		vm_request_exit(k->vm, VM_EXIT_REBOOT);
		break;
	default:
		break; /* enable/disable and the rest: nothing behind them */
	}
}

static void i8042_data(struct i8042 *k, uint8_t v)
{
	k->status &= (uint8_t)~STATUS_COMMAND;
	switch (k->pending_cmd) {
	case CMD_WRITE_CONFIG:
		k->config = v;
		break;
	case CMD_WRITE_OUTPUT_PORT:
		k->output_port = v;
		if (!(v & OUTPUT_PORT_RESET_HIGH)) {
			log_info("i8042: output port reset line low: the guest reboots");
			vm_request_exit(k->vm, VM_EXIT_REBOOT);
		}
		break;
	default:
		break; /* bytes for a keyboard that is not there */
	}
	k->pending_cmd = 0;
}

static void i8042_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;

	if (len == 0)
		return;
	pthread_mutex_lock(&k->lock);
	if (offset == 0) { /* data port */
		if (is_write) {
			i8042_data(k, data[0]);
		} else {
			data[0] = k->out_byte;
			k->status &= (uint8_t)~STATUS_OUTPUT_FULL;
		}
	} else if (offset == I8042_COMMAND_PORT - I8042_DATA_PORT) {
		if (is_write)
			i8042_command(k, data[0]);
		else
			data[0] = k->status;
	} else if (!is_write) {
		data[0] = 0xff;
	}
	for (uint32_t i = 1; i < len && !is_write; i++)
		data[i] = 0xff;
	pthread_mutex_unlock(&k->lock);
}

#define I8042_STATE_VERSION 1

static void i8042_save(struct device *dev, struct snap_writer *w)
{
	struct i8042 *k = (struct i8042 *)dev;
	uint8_t f[5];

	pthread_mutex_lock(&k->lock);
	f[0] = k->status;
	f[1] = k->config;
	f[2] = k->output_port;
	f[3] = k->out_byte;
	f[4] = k->pending_cmd;
	pthread_mutex_unlock(&k->lock);
	device_save_begin(dev, w, I8042_STATE_VERSION);
	snap_put_bytes(w, f, sizeof(f));
	snap_section_end(w);
}

static int i8042_restore(struct device *dev, const struct snap_reader *r, struct err **e)
{
	struct i8042 *k = (struct i8042 *)dev;
	struct snap_section s;
	uint8_t f[5];
	int ret = device_restore_begin(dev, r, I8042_STATE_VERSION, &s, e);

	if (ret < 0)
		return ret;
	snap_get_bytes(&s, f, sizeof(f));
	if (!snap_section_ok(&s))
		return snap_bad_section(&s, e);
	pthread_mutex_lock(&k->lock);
	k->status = f[0];
	k->config = f[1];
	k->output_port = f[2];
	k->out_byte = f[3];
	k->pending_cmd = f[4];
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static void i8042_destroy(struct device *dev)
{
	struct i8042 *k = (struct i8042 *)dev;

	pthread_mutex_destroy(&k->lock);
	free(k);
}

static const struct device_ops i8042_ops = {
    .name = "i8042",
    .destroy = i8042_destroy,
    .save = i8042_save,
    .restore = i8042_restore,
};

static int i8042_create(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	(void)cfg; /* every VM has one */
	if (k == NULL)
		return err_set(e, ENOMEM, "i8042: allocate");
	k->dev.ops = &i8042_ops;
	k->vm = vm;
	pthread_mutex_init(&k->lock, NULL);
	k->status = STATUS_SYSTEM_FLAG;
	k->output_port = OUTPUT_PORT_RESET_HIGH;
	vm_add_device(vm, &k->dev);
	/* 0x60-0x64; KVM's in-kernel PIT answers 0x61 (the speaker port)
	 * before an exit reaches us, and 0x62/0x63 read as ones. */
	return bus_register(&vm->pio, I8042_DATA_PORT, I8042_COMMAND_PORT - I8042_DATA_PORT + 1, i8042_io, k, "i8042",
			    e);
}

const struct device_type i8042_type = {.name = "i8042", .create = i8042_create};
