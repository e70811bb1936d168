/*
 * 16550A UART on COM1 (0x3f8, IRQ 4): the guest console.  Transmit goes
 * straight to the console backend; receive has a FIFO larger than the
 * real chip's 16 bytes so pasted text is not lost.  Register semantics
 * follow the 16550A data sheet; Linux's 8250 driver probes the FIFO,
 * scratch and loopback behaviour, so those are modelled too.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/arch/x86/aml.h"
#include "vmm/arch/x86/layout.h"
#include "vmm/console.h"
#include "vmm/devices/device.h"
#include "vmm/devices/serial.h"
#include "vmm/snapshot/format.h"
#include "vmm/vm.h"

#define COM1_BASE 0x3f8
#define SERIAL_PORTS 8
#define SERIAL_RX_CAPACITY 1024

enum { REG_DATA = 0, REG_IER = 1, REG_IIR_FCR = 2, REG_LCR = 3, REG_MCR = 4, REG_LSR = 5, REG_MSR = 6, REG_SCR = 7 };

#define IER_RDI 0x01  /* receive data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI 0x08  /* modem status */

#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_FIFO_ENABLED 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS 0x1e

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80
#define MSR_DELTAS 0x0f

struct serial {
	struct device dev;
	struct vm *vm;
	struct console *console;
	pthread_mutex_t lock;
	unsigned irq;
	uint8_t dll, dlm, ier, iir, fcr, lcr, mcr, lsr, msr, scr;
	int thr_pending; /* THR-empty interrupt waiting to be read from IIR */
	int irq_level;
	uint8_t rx[SERIAL_RX_CAPACITY];
	size_t rx_head, rx_count;
};

/* Recompute IIR from the pending conditions and drive the IRQ line. */
static void serial_update_irq(struct serial *s)
{
	uint8_t iir = IIR_NO_INT;
	int level;

	if ((s->ier & IER_RLSI) && (s->lsr & (LSR_OE | LSR_BI)))
		iir = IIR_RLSI;
	else if ((s->ier & IER_RDI) && (s->lsr & LSR_DR))
		iir = IIR_RDI;
	else if ((s->ier & IER_THRI) && s->thr_pending)
		iir = IIR_THRI;
	else if ((s->ier & IER_MSI) && (s->msr & MSR_DELTAS))
		iir = IIR_MSI;
	s->iir = iir | ((s->fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0);
	/* OUT2 gates the interrupt line on PCs; Linux sets it when it wants IRQs. */
	level = iir != IIR_NO_INT && (s->mcr & MCR_OUT2);
	if (level != s->irq_level) {
		s->irq_level = level;
		vm_set_irq(s->vm, s->irq, level);
	}
}

static void rx_push_locked(struct serial *s, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s->rx_count == SERIAL_RX_CAPACITY) {
			s->lsr |= LSR_OE;
			break;
		}
		s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_CAPACITY] = buf[i];
		s->rx_count++;
	}
	if (s->rx_count)
		s->lsr |= LSR_DR;
}

static uint8_t rx_pop_locked(struct serial *s)
{
	uint8_t ch;

	if (s->rx_count == 0)
		return 0;
	ch = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_RX_CAPACITY;
	s->rx_count--;
	if (s->rx_count == 0)
		s->lsr &= (uint8_t)~LSR_DR;
	return ch;
}

/* In loopback mode the modem inputs mirror the modem outputs. */
static uint8_t loopback_msr(uint8_t mcr)
{
	uint8_t msr = 0;

	if (mcr & MCR_RTS)
		msr |= MSR_CTS;
	if (mcr & MCR_DTR)
		msr |= MSR_DSR;
	if (mcr & MCR_OUT1)
		msr |= MSR_RI;
	if (mcr & MCR_OUT2)
		msr |= MSR_DCD;
	return msr;
}

static void serial_write_reg(struct serial *s, unsigned reg, uint8_t v)
{
	switch (reg) {
	case REG_DATA:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
			break;
		}
		if (s->mcr & MCR_LOOP) {
			rx_push_locked(s, &v, 1);
		} else {
			/* Output while holding the lock keeps characters in order
			 * when several vCPUs print at once. */
			console_write(s->console, &v, 1);
		}
		s->lsr |= LSR_THRE | LSR_TEMT;
		s->thr_pending = 1;
		break;
	case REG_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			break;
		}
		if (!(s->ier & IER_THRI) && (v & IER_THRI) && (s->lsr & LSR_THRE))
			s->thr_pending = 1;
		s->ier = v & 0x0f;
		break;
	case REG_IIR_FCR:
		if ((v ^ s->fcr) & FCR_ENABLE)
			v |= FCR_CLEAR_RX | FCR_CLEAR_TX;
		if (v & FCR_CLEAR_RX) {
			s->rx_head = s->rx_count = 0;
			s->lsr &= (uint8_t) ~(LSR_DR | LSR_OE);
		}
		s->fcr = v & 0xc9; /* keep enable, DMA mode and trigger level */
		break;
	case REG_LCR:
		s->lcr = v;
		break;
	case REG_MCR: {
		uint8_t old_msr = s->msr, new_msr;
		s->mcr = v & 0x1f;
		new_msr = (s->mcr & MCR_LOOP) ? loopback_msr(s->mcr) : (MSR_DCD | MSR_DSR | MSR_CTS);
		/* Delta bits record changes of CTS, DSR and DCD, and RI falling. */
		s->msr = (uint8_t)(new_msr | (old_msr & MSR_DELTAS));
		if ((old_msr ^ new_msr) & MSR_CTS)
			s->msr |= MSR_DCTS;
		if ((old_msr ^ new_msr) & MSR_DSR)
			s->msr |= MSR_DDSR;
		if ((old_msr ^ new_msr) & MSR_DCD)
			s->msr |= MSR_DDCD;
		if ((old_msr & MSR_RI) && !(new_msr & MSR_RI))
			s->msr |= MSR_TERI;
		break;
	}
	case REG_LSR:
	case REG_MSR:
		break; /* read-only */
	case REG_SCR:
		s->scr = v;
		break;
	}
	serial_update_irq(s);
}

static uint8_t serial_read_reg(struct serial *s, unsigned reg)
{
	uint8_t v = 0;

	switch (reg) {
	case REG_DATA:
		if (s->lcr & LCR_DLAB)
			v = s->dll;
		else
			v = rx_pop_locked(s);
		break;
	case REG_IER:
		v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
		break;
	case REG_IIR_FCR:
		v = s->iir;
		/* Reading IIR acknowledges a THR-empty interrupt. */
		if ((v & 0x0f) == IIR_THRI)
			s->thr_pending = 0;
		break;
	case REG_LCR:
		v = s->lcr;
		break;
	case REG_MCR:
		v = s->mcr;
		break;
	case REG_LSR:
		v = s->lsr;
		s->lsr &= (uint8_t) ~(LSR_OE | LSR_BI);
		break;
	case REG_MSR:
		v = s->msr;
		s->msr &= (uint8_t)~MSR_DELTAS;
		break;
	case REG_SCR:
		v = s->scr;
		break;
	}
	serial_update_irq(s);
	return v;
}

static void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;

	pthread_mutex_lock(&s->lock);
	/* Byte registers: a wider access touches consecutive registers. */
	for (uint32_t i = 0; i < len && offset + i < SERIAL_PORTS; i++) {
		if (is_write)
			serial_write_reg(s, (unsigned)(offset + i), data[i]);
		else
			data[i] = serial_read_reg(s, (unsigned)(offset + i));
	}
	pthread_mutex_unlock(&s->lock);
}

static size_t serial_rx_space(void *opaque)
{
	struct serial *s = opaque;
	size_t space;

	pthread_mutex_lock(&s->lock);
	space = SERIAL_RX_CAPACITY - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return space;
}

static void serial_rx_push(void *opaque, const uint8_t *buf, size_t n)
{
	struct serial *s = opaque;

	pthread_mutex_lock(&s->lock);
	rx_push_locked(s, buf, n);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_describe_acpi(struct device *dev, struct aml *aml)
{
	(void)dev;
	aml_device(aml, "COM1");
	aml_name_decl(aml, "_HID");
	aml_eisaid(aml, "PNP0501");
	aml_name_decl(aml, "_UID");
	aml_integer(aml, 1);
	aml_crs_begin(aml);
	aml_crs_io(aml, COM1_BASE, SERIAL_PORTS);
	aml_crs_irq(aml, IRQ_COM1);
	aml_crs_end(aml);
	aml_end(aml);
}

#define SERIAL_STATE_VERSION 1

static void serial_save(struct device *dev, struct snap_writer *w)
{
	struct serial *s = (struct serial *)dev;
	const uint8_t regs[] = {s->dll, s->dlm, s->ier, s->iir, s->fcr, s->lcr, s->mcr, s->lsr, s->msr, s->scr};

	pthread_mutex_lock(&s->lock);
	device_save_begin(dev, w, SERIAL_STATE_VERSION);
	snap_put_bytes(w, regs, sizeof(regs));
	snap_put_u8(w, (uint8_t)s->thr_pending);
	snap_put_u8(w, (uint8_t)s->irq_level);
	snap_put_u32(w, (uint32_t)s->rx_count);
	for (size_t i = 0; i < s->rx_count; i++)
		snap_put_u8(w, s->rx[(s->rx_head + i) % SERIAL_RX_CAPACITY]);
	snap_section_end(w);
	pthread_mutex_unlock(&s->lock);
}

static int serial_restore(struct device *dev, const struct snap_reader *r, struct err **e)
{
	struct serial *s = (struct serial *)dev;
	struct snap_section sec;
	uint8_t regs[10];
	uint32_t n;
	int ret = device_restore_begin(dev, r, SERIAL_STATE_VERSION, &sec, e);

	if (ret < 0)
		return ret;
	snap_get_bytes(&sec, regs, sizeof(regs));
	pthread_mutex_lock(&s->lock);
	s->dll = regs[0];
	s->dlm = regs[1];
	s->ier = regs[2];
	s->iir = regs[3];
	s->fcr = regs[4];
	s->lcr = regs[5];
	s->mcr = regs[6];
	s->lsr = regs[7];
	s->msr = regs[8];
	s->scr = regs[9];
	s->thr_pending = snap_get_u8(&sec);
	s->irq_level = snap_get_u8(&sec);
	/* KVM keeps the line's level outside the irqchip state it saves:
	 * drive it again, or a raised line would never be seen. */
	vm_set_irq(s->vm, s->irq, s->irq_level);
	n = snap_get_u32(&sec);
	s->rx_head = s->rx_count = 0;
	if (n <= SERIAL_RX_CAPACITY)
		for (uint32_t i = 0; i < n; i++)
			s->rx[s->rx_count++] = snap_get_u8(&sec);
	pthread_mutex_unlock(&s->lock);
	if (n > SERIAL_RX_CAPACITY || !snap_section_ok(&sec))
		return snap_bad_section(&sec, e);
	return 0;
}

static void serial_destroy(struct device *dev)
{
	struct serial *s = (struct serial *)dev;

	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct device_ops serial_ops = {
    .name = "serial",
    .describe_acpi = serial_describe_acpi,
    .destroy = serial_destroy,
    .save = serial_save,
    .restore = serial_restore,
};

static int serial_create(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	struct serial *s = calloc(1, sizeof(*s));
	struct console_sink sink;
	int r;

	(void)cfg; /* every VM has one */
	if (s == NULL)
		return err_set(e, ENOMEM, "serial COM1: allocate");
	s->dev.ops = &serial_ops;
	s->vm = vm;
	s->console = vm->console;
	s->irq = IRQ_COM1;
	pthread_mutex_init(&s->lock, NULL);
	s->lsr = LSR_THRE | LSR_TEMT;
	s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
	s->iir = IIR_NO_INT;
	vm_add_device(vm, &s->dev);
	r = bus_register(&vm->pio, COM1_BASE, SERIAL_PORTS, serial_io, s, "serial COM1", e);
	if (r < 0)
		return r;
	sink = (struct console_sink){.space = serial_rx_space, .push = serial_rx_push, .opaque = s};
	return console_attach_input(vm->console, &sink, e);
}

const struct device_type serial_type = {.name = "serial", .create = serial_create};
