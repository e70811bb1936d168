/* VMs: each its own casulo-vmm under a shim, with its own API socket
 * (docs/api.yaml), which casulod talks to with src/api's client. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <json-c/json.h>

#include "api/client.h"
#include "daemon/internal.h"

#define VM_READY_TIMEOUT_S 30

static json_object *spec_of(json_object *def)
{
	json_object *vm = NULL;

	json_object_object_get_ex(def, "vm", &vm);
	return vm;
}

static const char *str_of(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static int int_of(json_object *o, const char *key, int dflt)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? json_object_get_int(v) : dflt;
}

/* A file the VM needs: there, a regular file (or, for a disk, a block
 * device), readable (and writable for a writable disk). */
static int check_file(const char *what, const char *path, bool disk, bool write, struct err **e)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return err_set(e, errno, "%s '%s'", what, path);
	if (!S_ISREG(st.st_mode) && !(disk && S_ISBLK(st.st_mode)))
		return err_setx(e, S_ISDIR(st.st_mode) ? EISDIR : ENOTBLK, "%s '%s': not a regular file%s", what, path,
				disk ? " or block device" : "");
	if (access(path, write ? R_OK | W_OK : R_OK) < 0)
		return err_set(e, errno, "%s '%s'", what, path);
	return 0;
}

/* The kernel and initrd a VM boots: its own, or the default guest's. */
static void boot_files(struct daemon *d, json_object *vm, char *kernel, char *initrd, size_t size)
{
	const char *k = str_of(vm, "kernel"), *i = str_of(vm, "initrd");

	if (k) {
		snprintf(kernel, size, "%s", k);
		snprintf(initrd, size, "%s", i ? i : "");
	} else {
		snprintf(kernel, size, "%s/vmlinuz", d->guest_dir);
		snprintf(initrd, size, "%s/initrd.img", d->guest_dir);
	}
}

static int vm_check(struct daemon *d, const char *name, json_object *def, struct err **e)
{
	json_object *vm = spec_of(def), *disks;
	char kernel[4200], initrd[4200];
	int r;

	(void)name;
	if (int_of(vm, "memory_mib", 256) % 2)
		return err_setx(e, EINVAL, "field 'vm.memory_mib' must be a multiple of 2 (got %d)",
				int_of(vm, "memory_mib", 256));
	boot_files(d, vm, kernel, initrd, sizeof(kernel));
	if (str_of(vm, "kernel") == NULL && access(kernel, R_OK) < 0)
		return err_set(e, errno, "the default guest '%s' (no kernel given; make guest builds it)", kernel);
	if ((r = check_file("kernel", kernel, false, false, e)) < 0)
		return r;
	if (initrd[0] && (r = check_file("initrd", initrd, false, false, e)) < 0)
		return r;
	if (vm && json_object_object_get_ex(vm, "disks", &disks))
		for (size_t i = 0; i < json_object_array_length(disks); i++) {
			json_object *disk = json_object_array_get_idx(disks, i), *ro;
			bool readonly = json_object_object_get_ex(disk, "readonly", &ro) && json_object_get_boolean(ro);
			if ((r = check_file("disk", str_of(disk, "path"), true, !readonly, e)) < 0)
				return r;
		}
	return 0;
}

/* Append prefix+value to argv. */
static int add(char ***argv, size_t *n, const char *prefix, const char *value)
{
	char **na = realloc(*argv, (*n + 2) * sizeof(**argv));

	if (na == NULL)
		return -ENOMEM;
	*argv = na;
	if (asprintf(&na[*n], "%s%s", prefix, value) < 0)
		return -ENOMEM;
	na[++*n] = NULL;
	return 0;
}

static int vm_prepare(struct instance *inst, char ***ret, char **ot, char **oo, char **se, struct err **e)
{
	struct daemon *d = inst->d;
	json_object *vm = spec_of(inst->def), *list;
	char kernel[4200], initrd[4200], num[32];
	char **argv = NULL;
	size_t n = 0;
	int r = 0;

	*ot = *oo = *se = NULL;
	boot_files(d, vm, kernel, initrd, sizeof(kernel));
	r |= add(&argv, &n, "", d->vmm);
	r |= add(&argv, &n, "", "--api-socket");
	r |= add(&argv, &n, "", inst->api_socket);
	r |= add(&argv, &n, "", "--console");
	r |= add(&argv, &n, "", "stdio");
	/* Under Landlock: the VMM opens only its own files, and writes API
	 * snapshots beneath casulod's snapshot directory only. */
	r |= add(&argv, &n, "", "--landlock=on");
	r |= add(&argv, &n, "--snapshot-dir=", d->snapshot_dir);
	snprintf(num, sizeof(num), "%d", int_of(vm, "cpus", 1));
	r |= add(&argv, &n, "--cpus=", num);
	snprintf(num, sizeof(num), "%dM", int_of(vm, "memory_mib", 256));
	r |= add(&argv, &n, "--memory=", num);
	r |= add(&argv, &n, "--kernel=", kernel);
	if (initrd[0])
		r |= add(&argv, &n, "--initrd=", initrd);
	if (str_of(vm, "cmdline"))
		r |= add(&argv, &n, "--cmdline=", str_of(vm, "cmdline"));
	if (vm && json_object_object_get_ex(vm, "disks", &list))
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			json_object *disk = json_object_array_get_idx(list, i), *ro;
			bool readonly = json_object_object_get_ex(disk, "readonly", &ro) && json_object_get_boolean(ro);
			char spec[4200];
			snprintf(spec, sizeof(spec), "path=%s%s", str_of(disk, "path"), readonly ? ",readonly=on" : "");
			r |= add(&argv, &n, "--disk=", spec);
		}
	if (vm && json_object_object_get_ex(vm, "nets", &list))
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			json_object *net = json_object_array_get_idx(list, i);
			char spec[128];
			snprintf(spec, sizeof(spec), "tap=%s%s%s", str_of(net, "tap"),
				 str_of(net, "mac") ? ",mac=" : "", str_of(net, "mac") ? str_of(net, "mac") : "");
			r |= add(&argv, &n, "--net=", spec);
		}
	if (r) {
		for (size_t i = 0; i < n; i++)
			free(argv[i]);
		free(argv);
		return err_set(e, ENOMEM, "instance '%s'", inst->name);
	}
	*ret = argv;
	return 0;
}

int vm_api(struct instance *inst, const char *method, const char *path, const char *body, long timeout_s, int *status,
	   char **resp, struct err **e)
{
	return api_request_timeout(inst->api_socket, method, path, body, timeout_s, status, resp, e);
}

static bool running(struct instance *inst)
{
	bool r;

	pthread_mutex_lock(&inst->d->lock);
	r = inst->shim_pidfd >= 0;
	pthread_mutex_unlock(&inst->d->lock);
	return r;
}

static int vm_wait_ready(struct instance *inst, struct err **e)
{
	double end = proc_monotonic() + VM_READY_TIMEOUT_S;

	while (running(inst)) {
		char *resp = NULL;
		int status = 0;
		if (access(inst->api_socket, F_OK) == 0 &&
		    vm_api(inst, "GET", "/vm", NULL, 5, &status, &resp, NULL) == 0) {
			free(resp);
			if (status == 200)
				return 0;
		}
		if (proc_monotonic() > end)
			return err_setx(e, ETIMEDOUT, "instance '%s': the VMM's API did not answer in %d s", inst->name,
					VM_READY_TIMEOUT_S);
		usleep(10 * 1000);
	}
	return err_setx(e, EIO, "instance '%s': the VMM ended as it started", inst->name);
}

static int simple_put(struct instance *inst, const char *path, const char *body, struct err **e)
{
	char *resp = NULL;
	int status, r = vm_api(inst, "PUT", path, body, 10, &status, &resp, e);

	if (r == 0 && status >= 300)
		r = err_setx(e, EIO, "instance '%s': PUT %s: HTTP %d %s", inst->name, path, status, resp ? resp : "");
	free(resp);
	return r;
}

static int vm_stop_gently(struct instance *inst, struct err **e)
{
	return simple_put(inst, "/vm/shutdown", NULL, e);
}

static int vm_stop_now(struct instance *inst, struct err **e)
{
	return simple_put(inst, "/vm/stop", NULL, e);
}

static int vm_kill(struct instance *inst, struct err **e)
{
	pid_t pid;
	uint64_t start;
	int fd;

	pthread_mutex_lock(&inst->d->lock);
	pid = inst->workload_pid;
	start = inst->workload_start;
	pthread_mutex_unlock(&inst->d->lock);
	fd = proc_pidfd_checked(pid, start);
	if (fd < 0)
		return 0; /* gone already */
	if (syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) {
		int r = err_set(e, errno, "instance '%s': kill casulo-vmm %d", inst->name, (int)pid);
		close(fd);
		return r;
	}
	close(fd);
	return 0;
}

static int vm_pause(struct instance *inst, bool pause, struct err **e)
{
	return simple_put(inst, "/vm/state", pause ? "{\"state\":\"paused\"}" : "{\"state\":\"running\"}", e);
}

static void vm_cleanup(struct instance *inst)
{
	(void)inst; /* the VMM removes its socket; the run directory goes next */
}

/* Disk and network bytes from the VMM's device counters (GET /metrics),
 * and whether it is paused (GET /vm), on slow rounds. */
static void vm_sample(struct instance *inst, struct usage *u, bool slow)
{
	json_object *m, *devs, *v;
	char *resp = NULL;
	uint64_t epoch;
	int status;

	if (!slow || vm_api(inst, "GET", "/metrics", NULL, 2, &status, &resp, NULL) < 0 || status != 200) {
		free(resp);
		return;
	}
	m = json_tokener_parse(resp);
	free(resp);
	resp = NULL; /* the next request leaves it alone when it fails */
	if (m && json_object_object_get_ex(m, "devices", &devs)) {
		u->disk_read_bytes = u->disk_write_bytes = u->net_rx_bytes = u->net_tx_bytes = 0;
		for (size_t i = 0; i < json_object_array_length(devs); i++) {
			json_object *c;
			if (!json_object_object_get_ex(json_object_array_get_idx(devs, i), "counters", &c))
				continue;
			if (json_object_object_get_ex(c, "read_bytes", &v))
				u->disk_read_bytes += (uint64_t)json_object_get_int64(v);
			if (json_object_object_get_ex(c, "write_bytes", &v))
				u->disk_write_bytes += (uint64_t)json_object_get_int64(v);
			if (json_object_object_get_ex(c, "rx_bytes", &v))
				u->net_rx_bytes += (uint64_t)json_object_get_int64(v);
			if (json_object_object_get_ex(c, "tx_bytes", &v))
				u->net_tx_bytes += (uint64_t)json_object_get_int64(v);
		}
		u->has_io = true;
	}
	json_object_put(m);
	/* A VM found again after a restart may have been paused meanwhile. */
	epoch = instance_op_epoch(inst);
	if (vm_api(inst, "GET", "/vm", NULL, 2, &status, &resp, NULL) == 0 && status == 200 &&
	    (m = json_tokener_parse(resp)) != NULL) {
		instance_workload_state(inst, epoch,
					json_object_object_get_ex(m, "state", &v) ? json_object_get_string(v) : "");
		json_object_put(m);
	}
	free(resp);
}

const struct backend backend_vm = {
    .check = vm_check,
    .prepare = vm_prepare,
    .wait_ready = vm_wait_ready,
    .stop_gently = vm_stop_gently,
    .stop_now = vm_stop_now,
    .kill = vm_kill,
    .pause = vm_pause,
    .cleanup = vm_cleanup,
    .sample = vm_sample,
};
