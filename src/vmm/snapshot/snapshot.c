#include "vmm/snapshot/snapshot.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <zlib.h>
#include <unistd.h>
#include <json-c/json.h>

#include "casulo-config.h"
#include "common/fdutil.h"
#include "common/json-doc.h"
#include "common/log.h"
#include "vmm/devices/device.h"
#include "vmm/machine.h"
#include "vmm/snapshot/kvm-state.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* CRC-32 of guest RAM, as the backing file holds it. */
static uint32_t memory_crc(const uint8_t *p, uint64_t size)
{
	return (uint32_t)crc32_z(0, p, (size_t)size);
}

/*
 * Memory that is its backing file (backend=file,shared=on) stays there:
 * section memory.file records the file, its size and a CRC-32 of the
 * guest's memory (flushed to the file first), which a restore checks, so
 * a file changed since (the VM ran on, another file under the name) is
 * refused instead of handing the guest memory its state does not match.
 */
static int save_memory_file(struct vm *vm, struct snap_writer *w, struct err **e)
{
	if (msync(vm->mem.base, vm->mem.size, MS_SYNC) < 0)
		return err_set(e, errno, "memory file '%s': msync", vm->cfg.mem.path);
	snap_section_begin(w, "memory.file", SNAP_MEMORY_FILE_VERSION);
	snap_put_str(w, vm->cfg.mem.path);
	snap_put_u64(w, vm->mem.size);
	snap_put_u32(w, memory_crc(vm->mem.base, vm->mem.size));
	snap_section_end(w);
	return 0;
}

/* The file section memory.file names: there, large enough, unchanged. */
static int check_memory_file(const struct snap_reader *r, const struct vm_config *cfg, struct err **e)
{
	char path[PATH_MAX];
	struct snap_section s;
	struct stat st;
	uint64_t size;
	uint32_t crc;
	void *p;
	int fd;

	if (!snap_find(r, "memory.file", &s))
		return err_setx(e, EINVAL,
				"section 'memory.file' is missing (vm.config: memory is backend=file,shared=on)");
	if (s.version != SNAP_MEMORY_FILE_VERSION)
		return err_setx(e, EINVAL, "section 'memory.file': version %u is not one this VMM reads (%d)",
				s.version, SNAP_MEMORY_FILE_VERSION);
	snap_get_str(&s, path, sizeof(path));
	size = snap_get_u64(&s);
	crc = snap_get_u32(&s);
	if (!snap_section_ok(&s))
		return snap_bad_section(&s, e);
	if (strcmp(path, cfg->mem.path) != 0 || size != cfg->memory)
		return err_setx(e, EINVAL,
				"section 'memory.file' contradicts section 'vm.config' (file '%s', %llu bytes)", path,
				(unsigned long long)size);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "memory file '%s'", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < size) {
		close(fd);
		return err_setx(e, EINVAL, "memory file '%s': not a regular file of at least %llu bytes", path,
				(unsigned long long)size);
	}
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return err_set(e, errno, "memory file '%s': map", path);
	if (memory_crc(p, size) != crc) {
		munmap(p, size);
		return err_setx(e, EINVAL,
				"memory file '%s' changed since the snapshot (CRC-32 differs): the VM ran on "
				"after it, or another file has its name",
				path);
	}
	munmap(p, size);
	return 0;
}

int vm_snapshot_write_state(struct vm *vm, struct snap_writer *w, struct err **e)
{
	json_object *cfg = vm_config_to_json(&vm->cfg);
	int r;

	snap_section_begin(w, "vm.config", SNAP_CONFIG_VERSION);
	snap_put_str(w, json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	snap_section_end(w);
	json_object_put(cfg);
	r = guest_memory_is_file_shared(&vm->cfg.mem) ? save_memory_file(vm, w, e) : 0;
	if (r == 0)
		r = kvm_state_save_vm(vm, w, e);
	for (unsigned i = 0; r == 0 && i < vm->nvcpus; i++)
		r = kvm_state_save_vcpu(&vm->vcpus[i], w, e);
	if (r == 0)
		devices_save(vm->devices, w);
	return r;
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

		for (pos = 0; pos <= reg->size && r == 0; pos += GUEST_PAGE_SIZE) {
			bool zero = pos == reg->size || guest_page_is_zero(reg->hva + pos);
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

static int state_file_path(const char *dir, char *buf, size_t len, struct err **e)
{
	if (snprintf(buf, len, "%s/" SNAP_STATE_FILE, dir) >= (int)len)
		return err_setx(e, ENAMETOOLONG, "snapshot '%s': path too long", dir);
	return 0;
}

int vm_snapshot_create(struct vm *vm, const char *dir, struct err **e)
{
	char state_path[PATH_MAX], memory_path[PATH_MAX];
	struct snap_writer w;
	bool was_running = vm->state == VM_STATE_RUNNING;
	struct stat st;
	int r;

	r = state_file_path(dir, state_path, sizeof(state_path), e);
	if (r < 0)
		return r;
	if (snprintf(memory_path, sizeof(memory_path), "%s/" SNAP_MEMORY_FILE, dir) >= (int)sizeof(memory_path))
		return err_setx(e, ENAMETOOLONG, "snapshot '%s': path too long", dir);
	if (devices_check_movable(vm->devices, e) < 0)
		return err_wrap(e, "snapshot '%s'", dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_set(e, errno, "snapshot '%s': mkdir", dir);
	if (stat(state_path, &st) == 0 || stat(memory_path, &st) == 0)
		return err_setx(e, EEXIST, "snapshot '%s': already holds a snapshot", dir);
	if (was_running && vm_pause(vm) < 0)
		return err_setx(e, EIO, "snapshot '%s': could not pause the VM", dir);

	snap_writer_init(&w, "casulo-vmm " CASULO_VERSION);
	r = vm_snapshot_write_state(vm, &w, e);
	if (r == 0 && !guest_memory_is_file_shared(&vm->cfg.mem))
		r = write_memory(vm, memory_path, e);
	/* The state file goes last: a directory with a state file holds a whole snapshot. */
	if (r == 0)
		r = snap_writer_save(&w, state_path, e);
	snap_writer_free(&w);
	if (r < 0)
		unlink(memory_path);
	if (was_running && vm_resume(vm) < 0)
		log_warn("snapshot '%s': the VM could not be resumed (it is %s)", dir, vm_state_name(vm->state));
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
	/* vsock's and console2's sockets are this host's endpoints: given
	 * here, they replace the snapshot's (the devices stay). */
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

/* Parse a configuration in JSON (as in section vm.config, or a
 * migration's hello) into cfg, checked against the command line's limits. */
static int config_parse(struct vm_config *cfg, const char *json, size_t len, struct err **e)
{
	json_object *o;
	int ret;

	vm_config_defaults(cfg);
	if (json_doc_parse(json, len, "section 'vm.config'", &o, e) < 0)
		return -EINVAL;
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return err_setx(e, EINVAL, "section 'vm.config': not a JSON object");
	}
	ret = vm_config_from_json(cfg, o, e);
	json_object_put(o);
	if (ret < 0) {
		vm_config_free(cfg);
		return err_wrap(e, "section 'vm.config'");
	}
	return 0;
}

/* cfg, with this host's resources where host names them, becomes vm's. */
static int adopt_config(struct vm *vm, struct vm_config *cfg, const struct vm_config *host, struct err **e)
{
	int ret = apply_host_config(cfg, host, e);

	if (ret < 0) {
		vm_config_free(cfg);
		return ret;
	}
	vm->cfg = *cfg;
	vm->owns_cfg = true;
	return 0;
}

int vm_snapshot_config_from_json(struct vm *vm, const char *json, const struct vm_config *host, struct err **e)
{
	struct vm_config cfg;
	int ret = config_parse(&cfg, json, strlen(json), e);

	return ret < 0 ? ret : adopt_config(vm, &cfg, host, e);
}

/* The text of section vm.config, malloc'd, its length in *len. */
static int config_text(const struct snap_reader *r, char **text, size_t *len, struct err **e)
{
	struct snap_section s;

	*text = NULL;
	if (!snap_find(r, "vm.config", &s))
		return err_setx(e, EINVAL, "section 'vm.config' is missing");
	if (s.version != SNAP_CONFIG_VERSION && s.version != SNAP_CONFIG_VERSION_ANON)
		return err_setx(e, EINVAL, "section 'vm.config': version %u is not one this VMM reads (%d)", s.version,
				SNAP_CONFIG_VERSION);
	*text = malloc(s.len + 1);
	if (*text == NULL)
		return err_set(e, ENOMEM, "section 'vm.config'");
	snap_get_str(&s, *text, s.len + 1);
	if (!snap_section_ok(&s)) {
		free(*text);
		*text = NULL;
		return snap_bad_section(&s, e);
	}
	*len = s.len - 4; /* the string's bytes, NULs included: json_doc_parse() refuses them */
	return 0;
}

/* Every section once: a second copy would say something else. */
static int check_unique_sections(const struct snap_reader *r, struct err **e)
{
	for (uint32_t i = 1; i < r->nsections; i++)
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(r->sections[i].name, r->sections[j].name) == 0)
				return err_setx(e, EINVAL, "section '%s' appears twice (sections %u and %u)",
						r->sections[i].name, j, i);
	return 0;
}

/* One vcpu.N section for each vCPU of the configuration, and no other. */
static int check_vcpu_sections(const struct snap_reader *r, unsigned cpus, struct err **e)
{
	struct snap_section s;
	char name[SNAP_NAME_MAX + 1];

	for (unsigned i = 0; i < cpus; i++) {
		snprintf(name, sizeof(name), "vcpu.%u", i);
		if (!snap_find(r, name, &s))
			return err_setx(e, EINVAL, "section '%s' is missing (vm.config: vcpus is %u)", name, cpus);
	}
	for (uint32_t i = 0; i < r->nsections; i++) {
		const char *n = r->sections[i].name;
		char *end;
		unsigned long id;

		if (strncmp(n, "vcpu.", 5) != 0)
			continue;
		id = strtoul(n + 5, &end, 10);
		if (!isdigit((unsigned char)n[5]) || *end || id >= cpus || (n[5] == '0' && n[6]))
			return err_setx(e, EINVAL, "section '%s' contradicts section 'vm.config': vcpus is %u", n,
					cpus);
	}
	return 0;
}

int vm_snapshot_check(const struct snap_reader *r, struct vm_config *cfg, struct err **e)
{
	char *text;
	size_t len = 0;
	int ret;

	vm_config_defaults(cfg);
	if (check_unique_sections(r, e) < 0 || config_text(r, &text, &len, e) < 0)
		return -EINVAL;
	ret = config_parse(cfg, text, len, e);
	free(text);
	if (ret < 0)
		return ret;
	if (check_vcpu_sections(r, cfg->cpus, e) < 0 || kvm_state_check_vm(r, e) < 0) {
		vm_config_free(cfg);
		return -EINVAL;
	}
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
	if (ret == 0) {
		log_step("snapshot: KVM state loaded (VM and %u vCPUs)", vm->nvcpus);
		ret = devices_restore(vm->devices, r, e);
	}
	if (ret == 0) {
		log_step("snapshot: device state loaded");
		ret = devices_start(vm->devices, e);
	}
	if (ret == 0)
		log_step("snapshot: devices started");
	return ret;
}

/* The configuration vm_snapshot_check() gave (cfg, which the VM takes),
 * the machine built from it, with memory mapped from memory_fd, and the
 * state loaded. */
static int build_and_restore(struct vm *vm, const struct snap_reader *r, struct vm_config *cfg,
			     const struct vm_config *host, int memory_fd, struct err **e)
{
	int ret = adopt_config(vm, cfg, host, e);

	if (ret == 0)
		ret = machine_build(vm, memory_fd, e);
	if (ret == 0)
		ret = vm_snapshot_restore_state(vm, r, e);
	return ret;
}

/* The memory file: a regular file of exactly the guest's memory size. */
static int open_memory(const char *dir, const char *path, uint64_t size, struct err **e)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(e, errno, "snapshot '%s': memory file '%s'", dir, path);
	if (fstat(fd, &st) < 0) {
		err_set(e, errno, "snapshot '%s': memory file '%s': stat", dir, path);
		close(fd);
		return -EINVAL;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return err_setx(e, EINVAL, "snapshot '%s': memory file '%s' is %s, not a regular file", dir, path,
				S_ISDIR(st.st_mode) ? "a directory" : "a special file");
	}
	if ((uint64_t)st.st_size != size) {
		close(fd);
		return err_setx(e, EINVAL,
				"snapshot '%s': %s: the memory file is %lld bytes, section 'vm.config' "
				"gives the guest %llu MiB (%llu bytes)",
				dir, (uint64_t)st.st_size < size ? "truncated" : "contradictory", (long long)st.st_size,
				(unsigned long long)(size >> 20), (unsigned long long)size);
	}
	return fd;
}

int vm_snapshot_read_config(const char *dir, struct vm_config *cfg, struct err **e)
{
	char state_path[PATH_MAX];
	struct snap_reader r;
	int ret;

	ret = state_file_path(dir, state_path, sizeof(state_path), e);
	if (ret == 0)
		ret = snap_reader_open(&r, state_path, e);
	if (ret < 0)
		return ret;
	ret = vm_snapshot_check(&r, cfg, e);
	snap_reader_free(&r);
	return ret < 0 ? err_wrap(e, "snapshot '%s'", dir) : 0;
}

int vm_snapshot_load(struct vm *vm, const char *dir, const struct vm_config *host, bool *built, struct err **e)
{
	char state_path[PATH_MAX], memory_path[PATH_MAX], writer[SNAP_WRITER_MAX + 1];
	struct snap_reader r;
	struct vm_config cfg;
	int fd, ret;

	*built = false;
	if (snprintf(state_path, sizeof(state_path), "%s/" SNAP_STATE_FILE, dir) >= (int)sizeof(state_path) ||
	    snprintf(memory_path, sizeof(memory_path), "%s/" SNAP_MEMORY_FILE, dir) >= (int)sizeof(memory_path))
		return err_setx(e, ENAMETOOLONG, "snapshot '%s': path too long", dir);
	log_step("snapshot: loading '%s'", dir);
	ret = snap_reader_open(&r, state_path, e);
	if (ret < 0)
		return ret;
	snprintf(writer, sizeof(writer), "%s", r.writer);
	/* Everything that can be checked without a VM is, before one is built. */
	if (vm_snapshot_check(&r, &cfg, e) < 0) {
		snap_reader_free(&r);
		return err_wrap(e, "snapshot '%s'", dir);
	}
	log_step("snapshot: state file read and checked (%u sections)", r.nsections);
	/* File-backed shared memory is its file (fd -1: machine_build maps
	 * it); any other is in DIR/memory. */
	fd = -1;
	if (guest_memory_is_file_shared(&cfg.mem))
		ret = check_memory_file(&r, &cfg, e) < 0 ? err_wrap(e, "snapshot '%s'", dir) : 0;
	else
		ret = fd = open_memory(dir, memory_path, cfg.memory, e);
	if (ret < 0) {
		vm_config_free(&cfg);
		snap_reader_free(&r);
		return ret;
	}
	log_step("snapshot: memory file checked");
	*built = true;
	ret = build_and_restore(vm, &r, &cfg, host, fd, e);
	/* The mapping keeps the file; the descriptor can go. */
	if (fd >= 0)
		close(fd);
	snap_reader_free(&r);
	if (ret < 0)
		return err_wrap(e, "snapshot '%s'", dir);
	log_info("snapshot '%s': loaded (written by %s)", dir, writer);
	return 0;
}
