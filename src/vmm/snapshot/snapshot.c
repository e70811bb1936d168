#include "vmm/snapshot/snapshot.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "casulo-config.h"
#include "common/fdutil.h"
#include "common/log.h"
#include "vmm/devices/device.h"
#include "vmm/devices/virtio/virtio.h"
#include "vmm/snapshot/kvm-state.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define PAGE 4096
#define ZERO_SCAN_CHUNK (2 * 1024 * 1024)

int vm_snapshot_write_state(struct vm *vm, struct snap_writer *w, struct err **e)
{
	json_object *cfg = vm_config_to_json(&vm->cfg);
	int r;

	snap_section_begin(w, "vm.config", SNAP_CONFIG_VERSION);
	snap_put_str(w, json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	snap_section_end(w);
	json_object_put(cfg);
	r = kvm_state_save_vm(vm, w, e);
	for (unsigned i = 0; r == 0 && i < vm->nvcpus; i++)
		r = kvm_state_save_vcpu(&vm->vcpus[i], w, e);
	if (r == 0)
		devices_save(vm, w);
	return r;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Guest RAM to a sparse file: runs of non-zero pages written, the rest
 * left as holes (which read back as zeros). */
static int write_memory(struct vm *vm, const char *path, struct err **e)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	uint64_t off = 0;
	int r = 0;

	if (fd < 0)
		return err_set(e, errno, "snapshot memory '%s': create", path);
	if (ftruncate(fd, (off_t)vm->mem.size) < 0)
		r = err_set(e, errno, "snapshot memory '%s': size", path);
	for (unsigned i = 0; r == 0 && i < vm->mem.nregions; i++) {
		const struct guest_region *reg = &vm->mem.regions[i];
		uint64_t run_start = 0, pos;
		bool in_run = false;

		for (pos = 0; pos <= reg->size && r == 0; pos += PAGE) {
			bool zero = pos == reg->size || page_is_zero(reg->hva + pos);
			if (!zero && !in_run) {
				run_start = pos;
				in_run = true;
			} else if (zero && in_run) {
				r = pwrite_full(fd, reg->hva + run_start, pos - run_start, (off_t)(off + run_start));
				if (r < 0)
					r = err_set(e, -r, "snapshot memory '%s': write", path);
				in_run = false;
			}
		}
		off += reg->size;
	}
	if (r == 0 && fsync(fd) < 0)
		r = err_set(e, errno, "snapshot memory '%s': fsync", path);
	close(fd);
	if (r < 0)
		unlink(path);
	return r;
}

int vm_snapshot_create(struct vm *vm, const char *dir, struct err **e)
{
	char state_path[PATH_MAX], memory_path[PATH_MAX];
	struct snap_writer w;
	bool was_running = vm->state == VM_STATE_RUNNING;
	struct stat st;
	int r;

	if (snprintf(state_path, sizeof(state_path), "%s/" SNAP_STATE_FILE, dir) >= (int)sizeof(state_path) ||
	    snprintf(memory_path, sizeof(memory_path), "%s/" SNAP_MEMORY_FILE, dir) >= (int)sizeof(memory_path))
		return err_setx(e, ENAMETOOLONG, "snapshot '%s': path too long", dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_set(e, errno, "snapshot '%s': mkdir", dir);
	if (stat(state_path, &st) == 0 || stat(memory_path, &st) == 0)
		return err_setx(e, EEXIST, "snapshot '%s': already holds a snapshot", dir);
	if (was_running && vm_pause(vm) < 0)
		return err_setx(e, EIO, "snapshot '%s': could not pause the VM", dir);

	snap_writer_init(&w, "casulo-vmm " CASULO_VERSION);
	r = vm_snapshot_write_state(vm, &w, e);
	if (r == 0)
		r = write_memory(vm, memory_path, e);
	/* The state file goes last: a directory with a state file holds a whole snapshot. */
	if (r == 0)
		r = snap_writer_save(&w, state_path, e);
	snap_writer_free(&w);
	if (r < 0)
		unlink(memory_path);
	if (was_running)
		vm_resume(vm);
	if (r < 0)
		return err_wrap(e, "snapshot '%s'", dir);
	log_info("snapshot '%s': written", dir);
	return 0;
}

/* Host-local resources replace the snapshot's when the host names them. */
static int apply_host_config(struct vm_config *cfg, const struct vm_config *host, struct err **e)
{
	cfg->console = host->console;
	cfg->console_path = host->console_path ? vm_config_own(cfg, host->console_path) : NULL;
	/* The control socket, vsock's and console2's are this host's endpoints:
	 * given here, they replace the snapshot's (the devices stay). */
	cfg->control_socket = host->control_socket ? vm_config_own(cfg, host->control_socket) : NULL;
	if (host->vsock.enabled && cfg->vsock.enabled)
		cfg->vsock.socket = vm_config_own(cfg, host->vsock.socket);
	if (host->console2.kind != CONSOLE2_NONE && cfg->console2.kind != CONSOLE2_NONE) {
		cfg->console2.kind = host->console2.kind;
		cfg->console2.path = host->console2.path ? vm_config_own(cfg, host->console2.path) : NULL;
	}
	if (host->ndisks) {
		if (host->ndisks != cfg->ndisks)
			return err_setx(e, EINVAL, "%u disks given, the snapshot has %u", host->ndisks, cfg->ndisks);
		for (unsigned i = 0; i < host->ndisks; i++) {
			cfg->disks[i] = host->disks[i];
			cfg->disks[i].path = vm_config_own(cfg, host->disks[i].path);
			cfg->disks[i].id = host->disks[i].id ? vm_config_own(cfg, host->disks[i].id) : NULL;
		}
	}
	if (host->nnets) {
		if (host->nnets != cfg->nnets)
			return err_setx(e, EINVAL, "%u network interfaces given, the snapshot has %u", host->nnets,
					cfg->nnets);
		for (unsigned i = 0; i < host->nnets; i++) {
			struct net_config keep = cfg->nets[i];
			cfg->nets[i] = host->nets[i];
			cfg->nets[i].tap = host->nets[i].tap ? vm_config_own(cfg, host->nets[i].tap) : NULL;
			/* The guest already knows its MAC: keep it unless one is given. */
			if (!host->nets[i].has_mac && keep.has_mac) {
				memcpy(cfg->nets[i].mac, keep.mac, 6);
				cfg->nets[i].has_mac = true;
			}
		}
	}
	return 0;
}

/* Does a memory file of size bytes match the memory the snapshot's
 * configuration gives the guest? */
static bool memory_size_matches(const struct snap_reader *r, uint64_t size)
{
	struct snap_section s;
	json_object *o, *v;
	char *text;
	bool ok = false;

	if (!snap_find(r, "vm.config", &s) || (text = malloc(s.len + 1)) == NULL)
		return false;
	snap_get_str(&s, text, s.len + 1);
	o = json_tokener_parse(text);
	free(text);
	if (o && json_object_object_get_ex(o, "memory_mib", &v))
		ok = ((uint64_t)json_object_get_int64(v) << 20) == size;
	json_object_put(o);
	return ok;
}

int vm_snapshot_config_from_json(struct vm *vm, const char *json, const struct vm_config *host, struct err **e)
{
	struct vm_config cfg;
	json_object *o = json_tokener_parse(json);
	int ret;

	if (o == NULL)
		return err_setx(e, EINVAL, "corrupted: the configuration is not JSON");
	ret = vm_config_from_json(&cfg, o, e);
	json_object_put(o);
	if (ret == 0)
		ret = apply_host_config(&cfg, host, e);
	if (ret < 0) {
		vm_config_free(&cfg);
		return ret;
	}
	vm->cfg = cfg;
	vm->owns_cfg = true;
	return 0;
}

int vm_snapshot_restore_state(struct vm *vm, const struct snap_reader *r, struct err **e)
{
	struct snap_section s;
	int ret = kvm_state_restore_vm(vm, r, e);

	for (unsigned i = 0; ret == 0 && i < vm->nvcpus; i++) {
		char name[SNAP_NAME_MAX];
		snprintf(name, sizeof(name), "vcpu.%u", i);
		if (!snap_find(r, name, &s))
			ret = err_setx(e, EINVAL, "section '%s' is missing", name);
		else
			ret = kvm_state_restore_vcpu(&vm->vcpus[i], &s, e);
	}
	if (ret == 0)
		ret = devices_restore(vm, r, e);
	if (ret == 0)
		ret = virtio_devices_start(vm, e);
	return ret;
}

int vm_snapshot_read_state(struct vm *vm, const struct snap_reader *r, const struct vm_config *host, int memory_fd,
			   struct err **e)
{
	struct snap_section s;
	char *text;
	int ret;

	if (!snap_find(r, "vm.config", &s) || s.version != SNAP_CONFIG_VERSION)
		return err_setx(e, EINVAL, "section 'vm.config' is missing or of an unknown version");
	text = malloc(s.len + 1);
	if (text == NULL)
		return err_set(e, ENOMEM, "snapshot");
	snap_get_str(&s, text, s.len + 1);
	if (!snap_section_ok(&s)) {
		free(text);
		return snap_bad_section(&s, e);
	}
	ret = vm_snapshot_config_from_json(vm, text, host, e);
	free(text);
	if (ret == 0)
		ret = vm_build(vm, memory_fd, e);
	if (ret == 0)
		ret = vm_snapshot_restore_state(vm, r, e);
	return ret;
}

int vm_snapshot_load(struct vm *vm, const char *dir, const struct vm_config *host, bool *built, struct err **e)
{
	char state_path[PATH_MAX], memory_path[PATH_MAX], writer[SNAP_WRITER_MAX + 1];
	struct snap_reader r;
	struct stat st;
	int fd, ret;

	*built = false;
	if (snprintf(state_path, sizeof(state_path), "%s/" SNAP_STATE_FILE, dir) >= (int)sizeof(state_path) ||
	    snprintf(memory_path, sizeof(memory_path), "%s/" SNAP_MEMORY_FILE, dir) >= (int)sizeof(memory_path))
		return err_setx(e, ENAMETOOLONG, "snapshot '%s': path too long", dir);
	ret = snap_reader_open(&r, state_path, e);
	if (ret < 0)
		return ret;
	snprintf(writer, sizeof(writer), "%s", r.writer);
	fd = open(memory_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = err_set(e, errno, "snapshot '%s': memory file", dir);
		snap_reader_free(&r);
		return ret;
	}
	if (fstat(fd, &st) < 0 || !memory_size_matches(&r, (uint64_t)st.st_size)) {
		close(fd);
		snap_reader_free(&r);
		return err_setx(e, EINVAL, "snapshot '%s': truncated: the memory file is %lld bytes, not the guest's size",
				dir, (long long)st.st_size);
	}
	*built = true;
	ret = vm_snapshot_read_state(vm, &r, host, fd, e);
	/* The mapping keeps the file; the descriptor can go. */
	close(fd);
	snap_reader_free(&r);
	if (ret < 0)
		return err_wrap(e, "snapshot '%s'", dir);
	log_info("snapshot '%s': loaded (written by %s)", dir, writer);
	return 0;
}
