/*
 * CMOS real-time clock (MC146818 at ports 0x70/0x71, IRQ 8).  The time is
 * the host's UTC clock plus an offset that the guest changes by writing
 * the time registers.  Update-ended and alarm interrupts tick once a
 * second from a timerfd on the VMM loop while the guest has them enabled
 * (hwclock waits for them); the periodic interrupt is not modelled.
 * Without this device Debian's kernel spends seconds probing for it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm/arch/x86/aml.h"
#include "vmm/arch/x86/layout.h"
#include "vmm/devices/device.h"
#include "vmm/devices/rtc.h"
#include "vmm/snapshot/format.h"
#include "vmm/vm.h"

#define RTC_BASE 0x70
#define CMOS_SIZE 128

enum {
	RTC_SECONDS = 0x00,
	RTC_SECONDS_ALARM = 0x01,
	RTC_MINUTES = 0x02,
	RTC_MINUTES_ALARM = 0x03,
	RTC_HOURS = 0x04,
	RTC_HOURS_ALARM = 0x05,
	RTC_DAY_OF_WEEK = 0x06,
	RTC_DAY_OF_MONTH = 0x07,
	RTC_MONTH = 0x08,
	RTC_YEAR = 0x09,
	RTC_REG_A = 0x0a,
	RTC_REG_B = 0x0b,
	RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d,
	RTC_CENTURY = 0x32,
};

#define REG_A_DEFAULT 0x26 /* 32.768 kHz time base, 1024 Hz rate */
#define REG_B_SET 0x80
#define REG_B_PIE 0x40
#define REG_B_AIE 0x20
#define REG_B_UIE 0x10
#define REG_B_DM_BINARY 0x04
#define REG_B_24H 0x02
#define REG_C_IRQF 0x80
#define REG_C_AF 0x20
#define REG_C_UF 0x10
#define REG_D_VRT 0x80
#define ALARM_DONT_CARE 0xc0

struct rtc {
	struct device dev;
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[CMOS_SIZE];
	int64_t offset; /* guest time minus host time, seconds */
	int timer_fd;
	int timer_armed;
	int irq_level;
};

static uint8_t to_bcd(unsigned v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}
static unsigned from_bcd(uint8_t v)
{
	return (unsigned)((v >> 4) * 10 + (v & 0xf));
}

static uint8_t encode(const struct rtc *r, unsigned v)
{
	return (r->cmos[RTC_REG_B] & REG_B_DM_BINARY) ? (uint8_t)v : to_bcd(v);
}

static unsigned decode(const struct rtc *r, uint8_t v)
{
	return (r->cmos[RTC_REG_B] & REG_B_DM_BINARY) ? v : from_bcd(v);
}

static uint8_t encode_hour(const struct rtc *r, unsigned hour)
{
	unsigned h12;

	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return encode(r, hour);
	h12 = hour % 12 ? hour % 12 : 12;
	return (uint8_t)(encode(r, h12) | (hour >= 12 ? 0x80 : 0));
}

static unsigned decode_hour(const struct rtc *r, uint8_t v)
{
	unsigned h;

	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return decode(r, v) % 24;
	h = decode(r, v & 0x7f) % 12;
	return (v & 0x80) ? h + 12 : h;
}

static void guest_time(const struct rtc *r, struct tm *tm)
{
	time_t now = time(NULL) + (time_t)r->offset;

	gmtime_r(&now, tm);
}

/* Value of a clock register at this instant. */
static uint8_t clock_reg(const struct rtc *r, unsigned reg)
{
	struct tm tm;

	guest_time(r, &tm);
	switch (reg) {
	case RTC_SECONDS:
		return encode(r, (unsigned)tm.tm_sec);
	case RTC_MINUTES:
		return encode(r, (unsigned)tm.tm_min);
	case RTC_HOURS:
		return encode_hour(r, (unsigned)tm.tm_hour);
	case RTC_DAY_OF_WEEK:
		return encode(r, (unsigned)tm.tm_wday + 1);
	case RTC_DAY_OF_MONTH:
		return encode(r, (unsigned)tm.tm_mday);
	case RTC_MONTH:
		return encode(r, (unsigned)tm.tm_mon + 1);
	case RTC_YEAR:
		return encode(r, (unsigned)(tm.tm_year + 1900) % 100);
	case RTC_CENTURY:
		return encode(r, (unsigned)(tm.tm_year + 1900) / 100);
	default:
		return r->cmos[reg];
	}
}

/* The guest set one clock field: move the offset so the clock shows it. */
static void set_clock_reg(struct rtc *r, unsigned reg, uint8_t v)
{
	struct tm tm;
	time_t t;

	guest_time(r, &tm);
	switch (reg) {
	case RTC_SECONDS:
		tm.tm_sec = (int)decode(r, v) % 60;
		break;
	case RTC_MINUTES:
		tm.tm_min = (int)decode(r, v) % 60;
		break;
	case RTC_HOURS:
		tm.tm_hour = (int)decode_hour(r, v);
		break;
	case RTC_DAY_OF_MONTH:
		tm.tm_mday = (int)MAX(decode(r, v), 1u);
		break;
	case RTC_MONTH:
		tm.tm_mon = (int)(MAX(decode(r, v), 1u) - 1) % 12;
		break;
	case RTC_YEAR:
		tm.tm_year = (tm.tm_year + 1900) / 100 * 100 + (int)decode(r, v) % 100 - 1900;
		break;
	case RTC_CENTURY:
		tm.tm_year = (int)decode(r, v) * 100 + (tm.tm_year + 1900) % 100 - 1900;
		break;
	default:
		return; /* day of week follows from the date */
	}
	t = timegm(&tm);
	if (t != (time_t)-1)
		r->offset = (int64_t)t - (int64_t)time(NULL);
}

static void rtc_update_irq(struct rtc *r)
{
	uint8_t c = r->cmos[RTC_REG_C] & (REG_C_AF | REG_C_UF);
	uint8_t enabled = r->cmos[RTC_REG_B] & (REG_B_AIE | REG_B_UIE);
	int level = ((c & REG_C_AF) && (enabled & REG_B_AIE)) || ((c & REG_C_UF) && (enabled & REG_B_UIE));

	if (level)
		r->cmos[RTC_REG_C] |= REG_C_IRQF;
	if (level != r->irq_level) {
		r->irq_level = level;
		vm_set_irq(r->vm, IRQ_RTC, level);
	}
}

static void rtc_arm_timer(struct rtc *r)
{
	int want = (r->cmos[RTC_REG_B] & (REG_B_AIE | REG_B_UIE)) != 0;
	struct itimerspec its = {0};

	if (want == r->timer_armed || r->timer_fd < 0)
		return;
	if (want) {
		its.it_value.tv_sec = 1;
		its.it_interval.tv_sec = 1;
	}
	if (timerfd_settime(r->timer_fd, 0, &its, NULL) == 0)
		r->timer_armed = want;
}

static int alarm_field_matches(const struct rtc *r, unsigned alarm_reg, unsigned clock)
{
	uint8_t a = r->cmos[alarm_reg];

	return (a & ALARM_DONT_CARE) == ALARM_DONT_CARE || clock_reg(r, clock) == a;
}

static void rtc_tick(void *opaque, uint32_t events)
{
	struct rtc *r = opaque;
	uint64_t expirations;

	(void)events;
	if (read(r->timer_fd, &expirations, sizeof(expirations)) < 0)
		return;
	pthread_mutex_lock(&r->lock);
	if (!(r->cmos[RTC_REG_B] & REG_B_SET)) {
		r->cmos[RTC_REG_C] |= REG_C_UF;
		if (alarm_field_matches(r, RTC_SECONDS_ALARM, RTC_SECONDS) &&
		    alarm_field_matches(r, RTC_MINUTES_ALARM, RTC_MINUTES) &&
		    alarm_field_matches(r, RTC_HOURS_ALARM, RTC_HOURS))
			r->cmos[RTC_REG_C] |= REG_C_AF;
		rtc_update_irq(r);
	}
	pthread_mutex_unlock(&r->lock);
}

static uint8_t rtc_read_data(struct rtc *r)
{
	unsigned reg = r->index;
	uint8_t v;

	switch (reg) {
	case RTC_REG_A:
		return r->cmos[RTC_REG_A]; /* UIP stays clear: updates are instant */
	case RTC_REG_C:
		v = r->cmos[RTC_REG_C];
		r->cmos[RTC_REG_C] = 0; /* reading acknowledges */
		rtc_update_irq(r);
		return v;
	case RTC_REG_D:
		return REG_D_VRT;
	default:
		return clock_reg(r, reg);
	}
}

static void rtc_write_data(struct rtc *r, uint8_t v)
{
	unsigned reg = r->index;

	switch (reg) {
	case RTC_SECONDS:
	case RTC_MINUTES:
	case RTC_HOURS:
	case RTC_DAY_OF_WEEK:
	case RTC_DAY_OF_MONTH:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY:
		set_clock_reg(r, reg, v);
		break;
	case RTC_REG_A:
		r->cmos[RTC_REG_A] = v & 0x7f; /* UIP is read-only */
		break;
	case RTC_REG_B:
		r->cmos[RTC_REG_B] = v;
		rtc_update_irq(r);
		rtc_arm_timer(r);
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break; /* read-only */
	default:
		r->cmos[reg] = v;
		break;
	}
}

static void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *r = opaque;

	pthread_mutex_lock(&r->lock);
	for (uint32_t i = 0; i < len && offset + i < 2; i++) {
		if (offset + i == 0) {
			if (is_write)
				r->index = data[i] & 0x7f; /* bit 7 masks NMIs */
			else
				data[i] = 0xff;
		} else if (is_write) {
			rtc_write_data(r, data[i]);
		} else {
			data[i] = rtc_read_data(r);
		}
	}
	pthread_mutex_unlock(&r->lock);
}

static void rtc_describe_acpi(struct device *dev, struct aml *aml)
{
	(void)dev;
	aml_device(aml, "RTC_");
	aml_name_decl(aml, "_HID");
	aml_eisaid(aml, "PNP0B00");
	aml_crs_begin(aml);
	aml_crs_io(aml, RTC_BASE, 2);
	aml_crs_irq(aml, IRQ_RTC);
	aml_crs_end(aml);
	aml_end(aml);
}

#define RTC_STATE_VERSION 1

static void rtc_save(struct device *dev, struct snap_writer *w)
{
	struct rtc *r = (struct rtc *)dev;

	pthread_mutex_lock(&r->lock);
	device_save_begin(dev, w, RTC_STATE_VERSION);
	snap_put_u8(w, r->index);
	snap_put_bytes(w, r->cmos, CMOS_SIZE);
	/* The offset from the host's clock, not a time: the guest's RTC keeps
	 * showing real time after a restore, as a battery-backed one would. */
	snap_put_u64(w, (uint64_t)r->offset);
	snap_put_u8(w, (uint8_t)r->irq_level);
	snap_section_end(w);
	pthread_mutex_unlock(&r->lock);
}

static int rtc_restore(struct device *dev, const struct snap_reader *rd, struct err **e)
{
	struct rtc *r = (struct rtc *)dev;
	struct snap_section s;
	int ret = device_restore_begin(dev, rd, RTC_STATE_VERSION, &s, e);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&r->lock);
	r->index = snap_get_u8(&s) & 0x7f;
	snap_get_bytes(&s, r->cmos, CMOS_SIZE);
	r->offset = (int64_t)snap_get_u64(&s);
	r->irq_level = snap_get_u8(&s) != 0;
	vm_set_irq(r->vm, IRQ_RTC, r->irq_level); /* KVM does not save line levels */
	rtc_arm_timer(r);
	pthread_mutex_unlock(&r->lock);
	return snap_section_ok(&s) ? 0 : snap_bad_section(&s, e);
}

static void rtc_destroy(struct device *dev)
{
	struct rtc *r = (struct rtc *)dev;

	if (r->timer_fd >= 0)
		close(r->timer_fd);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static const struct device_ops rtc_ops = {
    .name = "rtc",
    .describe_acpi = rtc_describe_acpi,
    .destroy = rtc_destroy,
    .save = rtc_save,
    .restore = rtc_restore,
};

static int rtc_create(struct vm *vm, const struct vm_config *cfg, struct err **e)
{
	struct rtc *r = calloc(1, sizeof(*r));
	int ret;

	(void)cfg; /* every VM has one */
	if (r == NULL)
		return err_set(e, ENOMEM, "rtc: allocate");
	r->dev.ops = &rtc_ops;
	r->vm = vm;
	pthread_mutex_init(&r->lock, NULL);
	r->cmos[RTC_REG_A] = REG_A_DEFAULT;
	r->cmos[RTC_REG_B] = REG_B_24H;
	r->timer_fd = -1;
	vm_add_device(vm, &r->dev);
	r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (r->timer_fd < 0)
		return err_set(e, errno, "rtc: timerfd_create");
	ret = event_loop_add(&vm->loop, r->timer_fd, EPOLLIN, rtc_tick, r, e);
	if (ret < 0)
		return ret;
	return bus_register(&vm->pio, RTC_BASE, 2, rtc_io, r, "rtc", e);
}

const struct device_type rtc_type = {.name = "rtc", .create = rtc_create};
