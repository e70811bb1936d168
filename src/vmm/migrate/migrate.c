#include "vmm/migrate/migrate.h"

#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include <linux/kvm.h>

#include "casulo-config.h"
#include "common/log.h"
#include "common/thread.h"
#include "vmm/devices/device.h"
#include "vmm/image-lock.h"
#include "vmm/migrate/stream.h"
#include "vmm/machine.h"
#include "vmm/seccomp.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/vm.h"

#define PAGE GUEST_PAGE_SIZE
#define MAX_ROUNDS 30
#define IO_TIMEOUT_S 30
#define MAX_CONFIG_LEN (64 * 1024)
#define MAX_STATE_LEN (256ULL << 20)

struct migration {
	struct vm *vm;
	pthread_t thread;
	bool thread_started;
	uint32_t downtime_target_ms;
	void (*done)(void *opaque, const struct migration_progress *final);
	void *done_opaque;
	pthread_mutex_t lock; /* progress */
	struct migration_progress progress;
};

const char *migration_state_name(enum migration_state state)
{
	static const char *const names[] = {"none", "running", "completed", "failed"};

	return (unsigned)state < ARRAY_SIZE(names) ? names[state] : "unknown";
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* --- dirty pages --- */

static int set_dirty_logging(struct vm *vm, bool on)
{
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct guest_region *reg = &vm->mem.regions[i];
		struct kvm_userspace_memory_region region = {
		    .slot = i,
		    .flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		    .guest_phys_addr = reg->gpa,
		    .memory_size = reg->size,
		    .userspace_addr = (uint64_t)(uintptr_t)reg->hva,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
			return -errno;
	}
	return guest_memory_track_dirty(&vm->mem, on);
}

/* OR into bits (one per page of the host mapping) every page written since
 * the last call: KVM's log for each slot, and the VMM's own. */
static int collect_dirty(struct vm *vm, uint64_t *bits, uint64_t *scratch)
{
	uint64_t page_base = 0;

	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		uint64_t pages = vm->mem.regions[i].size / PAGE;
		struct kvm_dirty_log log = {.slot = i, .dirty_bitmap = scratch};

		memset(scratch, 0, (size_t)((pages + 63) / 64) * 8);
		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
			return -errno;
		/* Regions are 2 MiB multiples: each starts on a 64-page word. */
		for (uint64_t w = 0; w < (pages + 63) / 64; w++)
			bits[page_base / 64 + w] |= scratch[w];
		page_base += pages;
	}
	guest_memory_collect_dirty(&vm->mem, bits);
	return 0;
}

static uint64_t count_bits(const uint64_t *bits, uint64_t words)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bits[i]);
	return n;
}

/* --- the source --- */

static void set_failed(struct migration *m, const char *fmt, ...) PRINTF_FMT(2, 3);
/* The migration fails; its state says so once the VM runs here again. */
static void set_failed(struct migration *m, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&m->lock);
	va_start(ap, fmt);
	vsnprintf(m->progress.error, sizeof(m->progress.error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&m->lock);
	log_warn("migration to %s failed: %s; the VM keeps running here", m->progress.destination, m->progress.error);
}

/* Tell the owner the progress is final. */
static void report_done(struct migration *m)
{
	struct migration_progress final;

	if (m->done == NULL)
		return;
	migrate_progress(m, &final);
	m->done(m->done_opaque, &final);
}

static void progress(struct migration *m, struct stream *s, uint64_t pages, uint64_t remaining)
{
	pthread_mutex_lock(&m->lock);
	m->progress.bytes_sent = s->bytes;
	m->progress.pages_sent += pages;
	m->progress.remaining_pages = remaining;
	pthread_mutex_unlock(&m->lock);
}

static void send_page(struct stream *s, const struct guest_memory *mem, uint64_t page, bool skip_zero, uint64_t *sent)
{
	const uint8_t *p = mem->base + page * PAGE;

	if (guest_page_is_zero(p)) {
		if (skip_zero)
			return;
		stream_put_u32(s, REC_ZERO);
		stream_put_u64(s, page * PAGE);
	} else {
		stream_put_u32(s, REC_PAGE);
		stream_put_u64(s, page * PAGE);
		stream_put(s, p, PAGE);
	}
	(*sent)++;
}

/* Send the pages set in bits, clearing them. */
static uint64_t send_dirty(struct stream *s, const struct guest_memory *mem, uint64_t *bits, uint64_t words)
{
	uint64_t sent = 0;

	for (uint64_t w = 0; w < words && s->error == 0; w++) {
		while (bits[w]) {
			unsigned b = (unsigned)__builtin_ctzll(bits[w]);
			bits[w] &= bits[w] - 1;
			send_page(s, mem, w * 64 + b, false, &sent);
		}
	}
	return sent;
}

/* VMM thread (vm_call()): pause the VM for the last pages, if it still
 * runs (the guest may have powered off during the rounds). */
static int pause_running_vm(struct vm *vm, void *arg)
{
	(void)arg;
	return vm->state == VM_STATE_RUNNING ? vm_pause(vm) : -EINVAL;
}

static int resume_vm(struct vm *vm, void *arg)
{
	(void)arg;
	return vm->state == VM_STATE_RUNNING || vm->state == VM_STATE_PAUSED ? vm_resume(vm) : -EINVAL;
}

/* VMM thread (vm_call()): hand the disks' locks to the destination, or
 * take them back when it failed (image-lock.h). */
static int release_image_locks(struct vm *vm, void *arg)
{
	(void)arg;
	image_locks_release(vm->image_locks);
	return 0;
}

static int take_image_locks(struct vm *vm, void *arg)
{
	return image_locks_take(vm->image_locks, arg);
}

static int read_answer(struct stream *s, char *msg, size_t len)
{
	uint32_t code, n;

	if (stream_get_u32(s, &code) < 0 || stream_get_u32(s, &n) < 0)
		return s->error;
	if (n >= len) {
		snprintf(msg, len, "the destination's answer is malformed");
		return -EPROTO;
	}
	if (stream_get(s, msg, n) < 0)
		return s->error;
	msg[n] = '\0';
	return code == 0 ? 0 : -EPROTO;
}

static void *send_thread(void *arg)
{
	struct migration *m = arg;
	struct vm *vm = m->vm;
	uint64_t pages = vm->mem.size / PAGE, words = (pages + 63) / 64, sent, dirty;
	uint64_t *bits = calloc(words, 8), *scratch = calloc(words, 8);
	double start = now_ms(), round_start, paused_at = 0, bytes_per_ms = 0;
	bool logging = false, paused = false, unlocked = false;
	struct err *lock_err = NULL;
	struct snap_writer w;
	struct stream s = {.fd = -1};
	struct err *e = NULL;
	char why[512] = "";
	json_object *cfg;
	const char *cfg_text;
	int fd, r;

	pthread_setname_np(pthread_self(), "migration");
	snap_writer_init(&w, "casulo-vmm " CASULO_VERSION);
	if (vmm_seccomp_install(VMM_THREAD_MIGRATION, &e) < 0) {
		set_failed(m, "%s", e->msg);
		goto out;
	}
	if (bits == NULL || scratch == NULL || stream_init(&s, -1) < 0) {
		set_failed(m, "out of memory");
		goto out;
	}
	fd = stream_connect(m->progress.destination, IO_TIMEOUT_S, why, sizeof(why));
	if (fd < 0) {
		set_failed(m, "%s", why);
		goto out;
	}
	s.fd = fd;

	/* Hello: who we are and the VM's configuration. */
	cfg = vm_config_to_json(&vm->cfg);
	cfg_text = json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	stream_put(&s, MIGRATE_MAGIC, 8);
	stream_put_u32(&s, MIGRATE_VERSION);
	stream_put_u64(&s, PAGE);
	stream_put_u64(&s, vm->mem.size);
	stream_put_u32(&s, (uint32_t)strlen(cfg_text));
	stream_put(&s, cfg_text, strlen(cfg_text));
	json_object_put(cfg);
	if (stream_flush(&s) < 0 || (r = read_answer(&s, why, sizeof(why))) < 0) {
		set_failed(m, "%s", why[0] ? why : strerror(-s.error));
		goto out;
	}

	r = set_dirty_logging(vm, true);
	if (r < 0) {
		set_failed(m, "dirty logging: %s", strerror(-r));
		goto out;
	}
	logging = true;
	collect_dirty(vm, bits, scratch); /* start from a clean log */
	memset(bits, 0, words * 8);

	/* Round 0: all of memory; the destination starts zeroed, so zero pages need not go. */
	round_start = now_ms();
	sent = 0;
	for (uint64_t p = 0; p < pages && s.error == 0; p++)
		send_page(&s, &vm->mem, p, true, &sent);
	stream_flush(&s);
	progress(m, &s, sent, 0);
	bytes_per_ms = (double)s.bytes / MAX(now_ms() - round_start, 1.0);

	/* Rounds: what was dirtied meanwhile, until it fits the downtime. */
	for (uint32_t round = 1; s.error == 0; round++) {
		if (collect_dirty(vm, bits, scratch) < 0) {
			set_failed(m, "KVM_GET_DIRTY_LOG: %s", strerror(errno));
			goto out;
		}
		dirty = count_bits(bits, words);
		pthread_mutex_lock(&m->lock);
		m->progress.rounds = round;
		m->progress.remaining_pages = dirty;
		pthread_mutex_unlock(&m->lock);
		if ((double)(dirty * PAGE) <= bytes_per_ms * m->downtime_target_ms || round >= MAX_ROUNDS)
			break;
		round_start = now_ms();
		uint64_t before = s.bytes;
		sent = send_dirty(&s, &vm->mem, bits, words);
		stream_flush(&s);
		progress(m, &s, sent, 0);
		bytes_per_ms = (double)(s.bytes - before) / MAX(now_ms() - round_start, 1.0);
	}
	if (s.error) {
		set_failed(m, "sending memory: %s", strerror(-s.error));
		goto out;
	}

	/* Stop and copy: the last pages and the state, with the VM paused. */
	/* Downtime counts from here: the vCPUs stop as the pause goes on. */
	paused_at = now_ms();
	if (vm_call(vm, pause_running_vm, NULL) < 0) {
		/* Typically the guest powered off or reset during the rounds. */
		set_failed(m, "could not pause the VM (it is %s)",
			   vm_state_name(__atomic_load_n(&vm->state, __ATOMIC_ACQUIRE)));
		goto out;
	}
	paused = true;
	/* Paused, this VM does no more I/O: its disks' locks go before the
	 * state does, for the destination takes them as soon as it has it. */
	unlocked = vm_call(vm, release_image_locks, NULL) == 0;
	double t_paused = now_ms();
	collect_dirty(vm, bits, scratch);
	sent = send_dirty(&s, &vm->mem, bits, words);
	double t_pages = now_ms();
	r = vm_snapshot_write_state(vm, &w, &e);
	if (r < 0 || snap_writer_finish(&w) < 0) {
		set_failed(m, "state: %s", e ? e->msg : "out of memory");
		goto out;
	}
	stream_put_u32(&s, REC_STATE);
	stream_put_u64(&s, w.len);
	stream_put(&s, w.buf, w.len);
	stream_put_u32(&s, REC_END);
	if (stream_flush(&s) < 0) {
		set_failed(m, "sending the final state: %s", strerror(-s.error));
		goto out;
	}
	progress(m, &s, sent, 0);
	double t_state = now_ms();
	/* The destination says the VM runs there: only now is this one done. */
	if ((r = read_answer(&s, why, sizeof(why))) < 0) {
		set_failed(m, "the destination did not take the VM: %s", why[0] ? why : strerror(-s.error));
		goto out;
	}
	double ended = now_ms();
	log_debug("migration: downtime: pause %.1f ms, last %" PRIu64 " pages %.1f ms, state %zu bytes %.1f ms, "
		  "destination %.1f ms",
		  t_paused - paused_at, sent, t_pages - t_paused, w.len, t_state - t_pages, ended - t_state);
	pthread_mutex_lock(&m->lock);
	m->progress.state = MIGRATION_COMPLETED;
	m->progress.downtime_ms = ended - paused_at;
	m->progress.total_ms = ended - start;
	pthread_mutex_unlock(&m->lock);
	log_info("migration to %s completed: %u rounds, %.1f MiB, downtime %.1f ms, total %.0f ms",
		 m->progress.destination, m->progress.rounds, (double)s.bytes / (1 << 20), m->progress.downtime_ms,
		 m->progress.total_ms);
	report_done(m);
	vm_request_exit(vm, VM_EXIT_MIGRATED);
	goto done;
out:
	/* Failed before the destination took over: carry on here, with the
	 * disks' locks back; a disk another process took meanwhile keeps the
	 * VM paused rather than let two writers at it. */
	if (logging)
		set_dirty_logging(vm, false);
	if (unlocked && vm_call(vm, take_image_locks, &lock_err) < 0) {
		log_error("migration to %s: %s: the VM stays paused", m->progress.destination,
			  lock_err ? lock_err->msg : "its disks' locks could not be taken back");
		err_free(&lock_err);
		paused = false;
	}
	if (paused && vm_call(vm, resume_vm, NULL) < 0)
		log_warn("migration to %s: the VM stopped before it could run again here", m->progress.destination);
	pthread_mutex_lock(&m->lock);
	m->progress.state = MIGRATION_FAILED;
	m->progress.total_ms = now_ms() - start;
	pthread_mutex_unlock(&m->lock);
	report_done(m);
done:
	if (s.fd >= 0)
		close(s.fd);
	stream_free(&s);
	snap_writer_free(&w);
	err_free(&e);
	free(bits);
	free(scratch);
	return NULL;
}

int migrate_send_start(struct vm *vm, const struct migrate_send_params *params, struct migration **ret, struct err **e)
{
	struct migration *m;
	int r;

	if (devices_check_movable(vm->devices, e) < 0)
		return err_wrap(e, "migration");
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return err_set(e, ENOMEM, "migration to %s", params->destination);
	m->vm = vm;
	snprintf(m->progress.destination, sizeof(m->progress.destination), "%s", params->destination);
	m->downtime_target_ms = params->downtime_ms ? params->downtime_ms : MIGRATE_DEFAULT_DOWNTIME_MS;
	m->done = params->done;
	m->done_opaque = params->done_opaque;
	pthread_mutex_init(&m->lock, NULL);
	m->progress.state = MIGRATION_RUNNING;
	r = thread_start(&m->thread, send_thread, m);
	if (r != 0) {
		pthread_mutex_destroy(&m->lock);
		free(m);
		return err_set(e, r, "migration to %s: start thread", params->destination);
	}
	m->thread_started = true;
	*ret = m;
	return 0;
}

void migrate_progress(struct migration *m, struct migration_progress *p)
{
	pthread_mutex_lock(&m->lock);
	*p = m->progress;
	pthread_mutex_unlock(&m->lock);
}

void migrate_free(struct migration *m)
{
	if (m == NULL)
		return;
	if (m->thread_started)
		pthread_join(m->thread, NULL);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* --- the destination --- */

static void answer(struct stream *s, int code, const char *msg)
{
	stream_put_u32(s, (uint32_t)code);
	stream_put_u32(s, (uint32_t)strlen(msg));
	stream_put(s, msg, strlen(msg));
	stream_flush(s);
}

/* Wait for the source, giving up on SIGINT/SIGTERM. */
static int accept_source(struct vm *vm, int lfd, const char *spec, struct err **e)
{
	struct pollfd pfd[2] = {{lfd, POLLIN, 0}, {vm->signal_fd, POLLIN, 0}};

	log_info("migration: waiting on %s", spec);
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return err_set(e, errno, "migration '%s': poll", spec);
		}
		if (pfd[1].revents & POLLIN)
			return err_setx(e, EINTR, "migration '%s': stopped by a signal before a source came", spec);
		if (pfd[0].revents & POLLIN) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				return fd;
		}
	}
}

static int receive_hello(struct vm *vm, struct stream *s, const struct vm_config *host, struct err **e)
{
	char magic[8], *cfg;
	uint32_t version, cfg_len;
	uint64_t page, size;
	int r;

	if (stream_get(s, magic, 8) < 0 || memcmp(magic, MIGRATE_MAGIC, 8) != 0) {
		answer(s, 1, "not a Casulo migration");
		return err_setx(e, EPROTO, "the peer is not a Casulo migration source");
	}
	if (stream_get_u32(s, &version) < 0 || version != MIGRATE_VERSION) {
		answer(s, 1, "migration protocol version mismatch");
		return err_setx(e, EPROTO, "the source speaks migration protocol %u, this VMM %u", version,
				MIGRATE_VERSION);
	}
	if (stream_get_u64(s, &page) < 0 || stream_get_u64(s, &size) < 0 || stream_get_u32(s, &cfg_len) < 0 ||
	    page != PAGE || cfg_len == 0 || cfg_len > MAX_CONFIG_LEN) {
		answer(s, 1, "bad hello");
		return err_setx(e, EPROTO, "the source's hello is malformed");
	}
	cfg = calloc(1, cfg_len + 1);
	if (cfg == NULL || stream_get(s, cfg, cfg_len) < 0) {
		free(cfg);
		return err_setx(e, EPROTO, "the source's configuration did not arrive");
	}
	r = vm_snapshot_config_from_json(vm, cfg, host, e);
	free(cfg);
	if (r == 0 && vm->cfg.memory != size)
		r = err_setx(e, EPROTO, "the source's memory size does not match its configuration");
	/* The source holds its disks' locks until its last state is sent. */
	vm->defer_image_locks = true;
	if (r == 0)
		r = machine_build(vm, -1, e);
	answer(s, r == 0 ? 0 : 1, r == 0 ? "ok" : (*e)->msg);
	return r;
}

int migrate_receive(struct vm *vm, const char *spec, const struct vm_config *host, struct err **e)
{
	struct stream s = {.fd = -1};
	struct snap_reader reader = {0};
	uint8_t *state = NULL;
	uint64_t state_len = 0, pages = 0;
	char why[512];
	int lfd, fd, r;

	lfd = stream_listen(spec, why, sizeof(why));
	if (lfd < 0)
		return err_setx(e, -lfd, "migration %s", why);
	fd = accept_source(vm, lfd, spec, e);
	close(lfd);
	if (fd < 0)
		return fd;
	stream_set_timeout(fd, IO_TIMEOUT_S);
	if (stream_init(&s, fd) < 0) {
		close(fd);
		return err_set(e, ENOMEM, "migration from %s", spec);
	}
	r = receive_hello(vm, &s, host, e);
	while (r == 0) {
		uint32_t type;
		uint64_t off;

		if (stream_get_u32(&s, &type) < 0)
			break;
		if (type == REC_END)
			break;
		if (type == REC_PAGE || type == REC_ZERO) {
			uint8_t *dst;
			if (stream_get_u64(&s, &off) < 0)
				break;
			dst = (off % PAGE == 0 && off < vm->mem.size) ? vm->mem.base + off : NULL;
			if (dst == NULL) {
				r = err_setx(e, EPROTO, "the source sent page offset 0x%llx outside guest memory",
					     (unsigned long long)off);
				break;
			}
			if (type == REC_PAGE)
				stream_get(&s, dst, PAGE);
			else
				memset(dst, 0, PAGE);
			pages++;
		} else if (type == REC_STATE) {
			if (stream_get_u64(&s, &state_len) < 0)
				break;
			if (state_len > MAX_STATE_LEN || state != NULL || (state = malloc(state_len)) == NULL) {
				r = err_setx(e, EPROTO, "the source's state of %llu bytes is refused",
					     (unsigned long long)state_len);
				break;
			}
			stream_get(&s, state, state_len);
		} else {
			r = err_setx(e, EPROTO, "unknown record type %u from the source", type);
		}
	}
	if (r == 0 && s.error)
		r = err_set(e, -s.error, "migration: receiving from the source");
	if (r == 0 && state == NULL)
		r = err_setx(e, EPROTO, "migration: the source ended without sending the VM's state");
	if (r == 0)
		r = snap_reader_parse(&reader, state, state_len, e);
	if (r == 0)
		r = vm_snapshot_restore_state(vm, &reader, e);
	/* The source let its disks' locks go with the state: a disk someone
	 * else holds now (or a source that kept it) fails the migration, and
	 * the source carries on. */
	if (r == 0)
		r = image_locks_take(vm->image_locks, e);
	vm->defer_image_locks = false;
	/* Tell the source: on "0" it exits, on anything else it carries on. */
	answer(&s, r == 0 ? 0 : 1, r == 0 ? "running" : (*e)->msg);
	if (r == 0)
		log_info("migration: received %llu pages and the state (%.1f MiB in all)", (unsigned long long)pages,
			 (double)s.bytes / (1 << 20));
	snap_reader_free(&reader);
	free(state);
	stream_free(&s);
	close(fd);
	if (r < 0)
		return err_wrap(e, "migration from %s", spec);
	return 0;
}
