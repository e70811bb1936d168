/* The runtime's verbs for a container in its own VM (vmc.h). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "common/json-doc.h"
#include "common/log.h"
#include "common/macro.h"
#include "oci/cgroups.h"
#include "oci/container.h"
#include "oci/spec.h"
#include "oci/state.h"
#include "oci/util.h"
#include "vmc/internal.h"

/* How long an answer from the agent may take: a create or an exec runs
 * libcasulo-oci in the guest, which bounds its own steps at 120 s. */
#define AGENT_OP_MS 150000
#define AGENT_CONNECT_MS 10000

/* ---- selection ---- */

static int read_config(const char *bundle, const char *config, char **path, char **text, size_t *len, struct err **e)
{
	int r;

	if (config && config[0] == '/' ? asprintf(path, "%s", config) < 0
				       : asprintf(path, "%s/%s", bundle, config ? config : "config.json") < 0)
		return err_set(e, ENOMEM, "bundle '%s'", bundle);
	if ((r = read_file(*path, text, len)) < 0)
		return err_set(e, -r, "bundle '%s': read config.json", bundle);
	return 0;
}

int vmc_wanted(const struct vmc_options *vo, const char *bundle, const char *config, bool *vm, struct err **e)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	char real[PATH_MAX];
	struct oci_spec *spec = NULL;
	size_t len = 0;
	int r;

	*vm = false;
	if (realpath(bundle ? bundle : ".", real) == NULL)
		return err_set(e, errno, "bundle '%s'", bundle ? bundle : ".");
	if ((r = read_config(real, config, &path, &text, &len, e)) < 0)
		return r;
	if ((r = spec_parse(text, len, &spec, e)) < 0)
		return err_wrap(e, "bundle '%s'", real);
	r = vmc_plan_wanted(spec, vo->default_vm, vm, e);
	spec_free(spec);
	return r;
}

bool vmc_is_vm(const struct oci_global *g, const char *id)
{
	char path[PATH_MAX];

	if (state_check_id(id, NULL) < 0)
		return false;
	snprintf(path, sizeof(path), "%s/%s/%s", g->root, id, VMC_RECORD);
	return access(path, F_OK) == 0;
}

/* ---- create ---- */

struct vm_create {
	const struct oci_global *g;
	const char *id;
	const struct oci_create_opts *o;
	bool run_mode;
	char bundle[PATH_MAX], rootfs[PATH_MAX];
	char *config_text;
	size_t config_len;
	struct oci_spec *spec;
	struct vmc_plan plan;
	struct vmc_pod pod; /* pod.dir set: a pod's container, in its sandbox's VM */
	struct vmc_paths paths;
	struct oci_state *st;
	struct cgroup *cg;
	bool dir_made, cg_made;
	int sync[2];
};

static unsigned host_file_type(const char *path, void *ctx)
{
	struct stat sb;

	(void)ctx;
	return stat(path, &sb) == 0 ? (unsigned)(sb.st_mode & S_IFMT) : 0;
}

static int prepare(struct vm_create *c, const struct vmc_options *vo, struct err **e)
{
	_cleanup_free_ char *path = NULL;
	json_object *config = NULL;
	struct vmc_host host = {.file_type = host_file_type};
	const char *rp;
	char joined[PATH_MAX * 2];
	struct stat sb;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int r;

	if ((r = state_check_id(c->id, e)) < 0)
		return r;
	if (realpath(c->o->bundle ? c->o->bundle : ".", c->bundle) == NULL)
		return err_set(e, errno, "bundle '%s'", c->o->bundle ? c->o->bundle : ".");
	if ((r = read_config(c->bundle, c->o->config, &path, &c->config_text, &c->config_len, e)) < 0)
		return r;
	if ((r = spec_parse(c->config_text, c->config_len, &c->spec, e)) < 0)
		return err_wrap(e, "bundle '%s'", c->bundle);
	if (!c->spec->has_process)
		return err_setx(e, EINVAL, "bundle '%s': config.json: process: required to create a container",
				c->bundle);
	rp = c->spec->root_path;
	snprintf(joined, sizeof(joined), "%s%s%s", rp[0] == '/' ? "" : c->bundle, rp[0] == '/' ? "" : "/", rp);
	if (realpath(joined, c->rootfs) == NULL)
		return err_set(e, errno, "root.path '%s'", joined);
	if (stat(c->rootfs, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return err_setx(e, ENOTDIR, "root.path '%s': not a directory", c->rootfs);
	if (c->spec->process.terminal && c->o->console_socket == NULL && (!c->run_mode || c->o->detach))
		return err_setx(
		    e, EINVAL,
		    "process.terminal: cannot allocate a terminal for a detached container without --console-socket");
	if (!c->spec->process.terminal && c->o->console_socket)
		return err_setx(e, EINVAL, "--console-socket: given but process.terminal is false");
	if (c->o->preserve_fds)
		return err_setx(e, EINVAL, "--preserve-fds: a host's descriptors cannot be passed into a VM");
	if ((r = json_doc_parse(c->config_text, c->config_len, "config.json", &config, e)) < 0)
		return r;
	host.cpus = ncpu > 0 ? (unsigned)ncpu : 1;
	if (vmc_pod_find(c->g, vmc_plan_sandbox(c->spec), c->id, &c->pod))
		host.sandbox_guest_pid = c->pod.guest_pid;
	r = vmc_plan_make(config, c->spec, c->id, c->bundle, c->rootfs, &host, &c->plan, e);
	json_object_put(config);
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->plan.n_warnings; i++)
		log_warn("container '%s': %s", c->id, c->plan.warnings[i]);
	return vmc_paths_find(vo, &c->paths, e);
}

/* The host cgroup holds the monitor and the VMM: the container's CPU
 * limits bound its vCPUs, its memory limit is the VM's (plus the VMM's
 * own), devices are the VMM's business (it opens /dev/kvm). */
static void host_resources(const struct vm_create *c, struct cgroup_resources *hr, struct cgroup_device_rule *all)
{
	const struct cgroup_resources *r = &c->spec->resources;

	memset(hr, 0, sizeof(*hr));
	*all = (struct cgroup_device_rule){.allow = true, .type = 'a', .major = -1, .minor = -1, .access = "rwm"};
	hr->devices = all;
	hr->n_devices = 1;
	hr->has_devices = true;
	if (!c->spec->has_resources)
		return;
	/* A CRI sandbox's shares are the pause process's (containerd gives
	 * it 2, the least): its VM runs the whole pod. */
	if (!vmc_plan_is_sandbox(c->spec))
		hr->has_cpu_shares = r->has_cpu_shares, hr->cpu_shares = r->cpu_shares;
	hr->has_cpu_quota = r->has_cpu_quota, hr->cpu_quota = r->cpu_quota;
	hr->has_cpu_period = r->has_cpu_period, hr->cpu_period = r->cpu_period;
	hr->cpu_cpus = r->cpu_cpus;
	hr->cpu_mems = r->cpu_mems;
	if (r->has_mem_limit && r->mem_limit > 0) {
		hr->has_mem_limit = true;
		hr->mem_limit = (int64_t)((c->plan.memory_mib + VMC_VMM_OVERHEAD_MIB) << 20);
	}
}

/* The record of the creation, as a plain create makes it (state.h). */
static int record_state(struct vm_create *c, struct err **e)
{
	_cleanup_free_ char *dir = NULL, *copy = NULL, *fifo = NULL;
	struct oci_state *st;
	char created[64];
	int r;

	if ((r = state_dir_path(c->g->root, c->id, &dir, e)) < 0)
		return r;
	if (!c->g->no_cgroups &&
	    (r = cgroups_resolve(c->spec->cgroups_path, c->id, c->g->systemd_cgroup, &c->cg, e)) < 0)
		return r;
	st = c->st = state_new();
	if (st == NULL)
		return err_set(e, ENOMEM, "container '%s'", c->id);
	state_now_rfc3339(created, sizeof(created));
	st->id = strdup(c->id);
	st->dir = strdup(dir);
	st->bundle = strdup(c->bundle);
	st->rootfs = strdup(c->rootfs);
	st->owner = strdup("");
	st->created = strdup(created);
	if (!st->id || !st->dir || !st->bundle || !st->rootfs || !st->owner || !st->created)
		return err_set(e, ENOMEM, "container '%s'", c->id);
	st->creating = true;
	st->creator_pid = getpid();
	st->creator_start = proc_start_time(st->creator_pid);
	st->systemd_cgroup = c->g->systemd_cgroup;
	if (mkdir(dir, 0711) < 0)
		return errno == EEXIST ? err_setx(e, EEXIST, "container '%s': container with id exists", c->id)
				       : err_set(e, errno, "container '%s': mkdir '%s'", c->id, dir);
	c->dir_made = true;
	/* vm.json first: from now on every verb knows this is a VM. */
	{
		struct vmc_record rec = {.sandbox = c->pod.dir ? c->pod.sandbox : NULL};
		if ((r = vmc_record_save(dir, &rec, e)) < 0)
			return r;
	}
	if ((r = state_lock(st, e)) < 0 || (r = state_record(st, e)) < 0)
		return r;
	st->cg = c->cg;
	r = state_save(st, e);
	st->cg = NULL;
	if (r < 0)
		return r;
	if (asprintf(&copy, "%s/config.json", dir) < 0 ||
	    (r = write_file_atomic(copy, c->config_text, c->config_len, 0600)) < 0)
		return err_set(e, r < 0 ? -r : ENOMEM, "container '%s': save config.json", c->id);
	if (!c->run_mode) {
		if (asprintf(&fifo, "%s/exec.fifo", dir) < 0)
			return err_set(e, ENOMEM, "container '%s'", c->id);
		if (mkfifo(fifo, 0622) < 0)
			return err_set(e, errno, "container '%s': mkfifo '%s'", c->id, fifo);
	}
	if (c->cg) {
		struct cgroup_resources hr;
		struct cgroup_device_rule all;
		if ((r = cgroups_make(c->cg, c->id, e)) < 0)
			return r;
		c->cg_made = true;
		host_resources(c, &hr, &all);
		if ((r = cgroups_apply(c->cg, &hr, NULL, 0, false, e)) < 0)
			return r;
	}
	return 0;
}

/* The create failed: take back everything, the monitor and its VM too. */
static void undo(struct vm_create *c, pid_t monitor)
{
	struct err *e = NULL;

	if (monitor > 0) {
		kill(monitor, SIGKILL);
		while (waitpid(monitor, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (c->cg && c->cg_made) {
		(void)cgroup_destroy(c->cg, &e);
		err_free(&e);
	}
	if (c->dir_made)
		(void)rm_rf_dir(c->st->dir);
}

static void create_free(struct vm_create *c)
{
	free(c->config_text);
	spec_free(c->spec);
	vmc_plan_free(&c->plan);
	vmc_pod_free(&c->pod);
	vmc_paths_free(&c->paths);
	cgroup_free(c->cg);
	state_free(c->st);
	if (c->sync[0] >= 0)
		close(c->sync[0]);
	if (c->sync[1] >= 0)
		close(c->sync[1]);
}

/* ---- the monitor's side of create ---- */

/* The message that ends a monitor's boot: 'R' ready, or 'E' and why. */
static void tell(int fd, char kind, const char *msg)
{
	char buf[4096];
	size_t n;

	buf[0] = kind;
	n = 1 + err_fit(buf + 1, sizeof(buf) - 1, msg ? msg : "");
	(void)send(fd, buf, n, MSG_NOSIGNAL);
}

/* The guest's network: the interface in the container's namespace, its
 * TAP and redirections, the address the guest takes.  No interface there
 * (a namespace with only lo): no NIC, as runc's container has none. */
static int plug_network(struct vm_create *c, struct vmc_request *req, struct vmc_netif *nif, int *tap_fd,
			struct err **e)
{
	json_object *lx, *nd, *dev;
	int fd, r;

	*tap_fd = -1;
	if (c->plan.netns == NULL)
		return 0;
	fd = open(c->plan.netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "network namespace '%s'", c->plan.netns);
	r = setns(fd, CLONE_NEWNET);
	close(fd);
	if (r < 0)
		return err_set(e, errno, "network namespace '%s': setns", c->plan.netns);
	r = vmc_net_find(nif, e);
	if (r == -ENOENT)
		return 0;
	if (r < 0 || (r = vmc_net_plug(nif, tap_fd, e)) < 0)
		return err_wrap(e, "network namespace '%s'", c->plan.netns);
	/* The guest moves its eth0 into the container's namespace. */
	if (!json_object_object_get_ex(c->plan.guest_spec, "linux", &lx)) {
		lx = json_object_new_object();
		json_object_object_add(c->plan.guest_spec, "linux", lx);
	}
	nd = json_object_new_object();
	dev = json_object_new_object();
	json_object_object_add(dev, "name", json_object_new_string("eth0"));
	json_object_object_add(nd, "eth0", dev);
	json_object_object_add(lx, "netDevices", nd);
	req->net.present = true;
	snprintf(req->net.address, sizeof(req->net.address), "%s", nif->address);
	snprintf(req->net.gateway, sizeof(req->net.gateway), "%s", nif->gateway);
	req->net.prefix = nif->prefix;
	req->net.mtu = nif->mtu;
	return 0;
}

/* Wait for the agent's boot session (the VM dying first is the answer
 * too), check its HELLO. */
static int boot_session(int listen_fd, const struct vmc_vm *vm, struct err **e)
{
	struct pollfd p[2] = {{listen_fd, POLLIN, 0}, {vm->pidfd, POLLIN, 0}};
	struct vmc_header h;
	char *payload = NULL;
	int fd, r;

	r = poll(p, vm->pidfd >= 0 ? 2 : 1, VMC_BOOT_TIMEOUT_MS);
	if (r == 0) {
		/* Where the guest stopped: its console's last line. */
		_cleanup_free_ char *tail = vmc_vm_console_tail();

		return err_setx(e, ETIMEDOUT,
				"its VM did not start its agent within %d s; the guest's console ends with '%s' (%s in "
				"the state directory: is the guest built from this tree?)",
				VMC_BOOT_TIMEOUT_MS / 1000, tail ? tail : "", VMC_CONSOLE);
	}
	if (!(p[0].revents & POLLIN)) {
		/* Why, from the VMM's status (left for the monitor to reap)
		 * and its last words. */
		siginfo_t si = {0};
		int ws = 0, status;
		_cleanup_free_ char *why = NULL;

		if (waitid(P_PID, (id_t)vm->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == vm->pid)
			ws = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0) : si.si_status;
		why = vmc_vm_diagnose(vm->pid, ws, &status);
		return err_setx(e, EIO, "while booting, %s", why ? why : "its VM stopped");
	}
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "the agent's session: accept");
	if ((r = vmc_read_frame(fd, VMC_FROM_GUEST, 30000, &h, &payload, e)) < 0 ||
	    (h.type != VMC_HELLO &&
	     (r = err_setx(e, EPROTO, "the agent began with %s, not HELLO", vmc_type_name(h.type))) < 0) ||
	    (r = vmc_hello_check(payload, h.len, e)) < 0) {
		free(payload);
		close(fd);
		return r;
	}
	free(payload);
	return fd;
}

/*
 * KVM attaches a VM's worker threads (Linux 6.1's kvm-nx-lpage-recovery)
 * to the cgroups of the process that created the VM: the VMM, in the
 * container's cgroup.  The cgroup v2 freezer cannot freeze a kernel
 * thread, so `pause` would wait for a "frozen 1" that never comes.  Once
 * the VM exists (the agent said HELLO), its kernel threads go to the
 * hierarchy's root, where kernel threads live.  (cgroup v1's freezer
 * skips them.)
 */
static void release_kernel_threads(const struct cgroup *cg)
{
	_cleanup_free_ char *path = NULL, *procs = NULL;
	size_t len = 0;

	if (cg == NULL || cg->unified.path == NULL || cg->unified.mountpoint == NULL ||
	    asprintf(&path, "%s/cgroup.procs", cg->unified.path) < 0 || read_file(path, &procs, &len) < 0)
		return;
	for (char *save = NULL, *t = strtok_r(procs, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		_cleanup_free_ char *stat = NULL;
		char file[64];
		const char *after;
		unsigned long flags = 0;
		size_t n = 0;

		snprintf(file, sizeof(file), "/proc/%s/stat", t);
		if (read_file(file, &stat, &n) < 0 || (after = strrchr(stat, ')')) == NULL)
			continue;
		/* state ppid pgrp session tty_nr tpgid flags */
		if (sscanf(after + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) == 1 &&
		    (flags & 0x00200000UL /* PF_KTHREAD */) &&
		    cgroup_enter_dir(cg->unified.mountpoint, (pid_t)atoi(t), NULL) < 0)
			log_warn("cgroup '%s': kernel thread %s stays: pause may time out", cg->rel, t);
	}
}

/* The monitor's first steps, in a VM of its own or a pod's: in the state
 * directory, in the cgroup, create's fifo open, the process's stdio; a
 * terminal without a size of its own takes ours. */
static int monitor_enter(struct vm_create *c, struct vmc_stdio *io, int *fifo_fd, struct err **e)
{
	int unified = -1, r;

	*fifo_fd = -1;
	if (chdir(c->st->dir) < 0)
		return err_set(e, errno, "chdir '%s'", c->st->dir);
	if (c->cg && (r = cgroup_enter_self(c->cg, true, &unified, e)) < 0)
		return r;
	if (!c->run_mode && (*fifo_fd = open("exec.fifo", O_RDWR | O_CLOEXEC)) < 0)
		return err_set(e, errno, "open exec.fifo");
	if ((r = c->spec->process.terminal ? vmc_stdio_terminal(io, c->o->console_socket, e)
					   : (vmc_stdio_plain(io), 0)) < 0)
		return r;
	if (c->spec->process.terminal && io->winsize_fd >= 0) {
		struct winsize ws;
		json_object *proc, *size;
		if (ioctl(io->winsize_fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col &&
		    json_object_object_get_ex(c->plan.guest_spec, "process", &proc) &&
		    !json_object_object_get_ex(proc, "consoleSize", &size)) {
			size = json_object_new_object();
			json_object_object_add(size, "height", json_object_new_int(ws.ws_row));
			json_object_object_add(size, "width", json_object_new_int(ws.ws_col));
			json_object_object_add(proc, "consoleSize", size);
		}
	}
	return 0;
}

/* On a session with the agent: create the container (req), the reply's
 * pid (the init's in the guest) in *guest_pid. */
static int create_in_guest(int fd, struct vm_create *c, struct vmc_request *req, int *guest_pid, struct err **e)
{
	struct vmc_header h;
	struct vmc_reply reply;
	char *payload = NULL, *text;
	int r = 0;

	req->op = VMC_OP_CREATE;
	req->id = (char *)c->id;
	req->spec = c->plan.guest_spec;
	text = vmc_request_format(req);
	if (text == NULL || (r = vmc_write_frame(fd, VMC_REQUEST, text, strlen(text))) < 0 ||
	    (r = vmc_read_frame(fd, VMC_FROM_GUEST, AGENT_OP_MS, &h, &payload, e)) < 0) {
		if (text && r < 0 && *e == NULL)
			err_set(e, -r, "the agent's session");
		free(text);
		return r < 0 ? r : err_set(e, ENOMEM, "request");
	}
	free(text);
	if (h.type != VMC_REPLY)
		r = err_setx(e, EPROTO, "the agent answered create with %s", vmc_type_name(h.type));
	else if ((r = vmc_reply_parse(payload, h.len, &reply, e)) == 0) {
		if (!reply.ok)
			r = err_setx(e, EIO, "%s", reply.error);
		*guest_pid = reply.pid;
		vmc_reply_clear(&reply);
	}
	free(payload);
	return r;
}

/* The monitor, between the fork and the container's creation in the
 * guest; on success the boot session's fd. */
static int monitor_boot(struct vm_create *c, struct vmc_vm *vm, struct vmc_stdio *io, int *fifo_fd, struct err **e)
{
	struct vmc_request req = {.op = VMC_OP_CREATE};
	struct vmc_record rec = {0};
	struct vmc_netif nif = {0};
	int tap = -1, lfd, fd, r;

	if ((r = monitor_enter(c, io, fifo_fd, e)) < 0)
		return r;
	if ((r = plug_network(c, &req, &nif, &tap, e)) < 0)
		return r;
	if ((lfd = unix_listen(VMC_VSOCK "_1025", 1)) < 0)
		return err_set(e, -lfd, "listen on '%s/%s_1025'", c->st->dir, VMC_VSOCK);
	r = vmc_vm_start(&c->paths, &c->plan, tap, nif.mac, vm, e);
	if (tap >= 0)
		close(tap);
	if (r < 0) {
		close(lfd);
		return r;
	}
	rec.vmm_pid = vm->pid;
	rec.vmm_start = vm->start_time;
	rec.netns = tap >= 0 ? c->plan.netns : NULL;
	rec.ifname = tap >= 0 ? nif.name : NULL;
	if ((r = vmc_record_save(c->st->dir, &rec, e)) < 0) {
		close(lfd);
		return r;
	}
	fd = boot_session(lfd, vm, e);
	close(lfd);
	unlink(VMC_VSOCK "_1025");
	if (fd < 0)
		return fd;
	release_kernel_threads(c->cg);
	/* The init's guest pid holds the namespaces a pod's containers join. */
	if ((r = create_in_guest(fd, c, &req, &rec.guest_pid, e)) < 0 ||
	    (r = vmc_record_save(c->st->dir, &rec, e)) < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* The monitor of a pod's container: its files into the sandbox's VM, a
 * session with that VM's agent, the container created on it; on success
 * the session's fd, which carries its init's stdio from then on. */
static int monitor_join(struct vm_create *c, struct vmc_stdio *io, int *fifo_fd, struct err **e)
{
	struct vmc_request req = {0};
	int guest_pid = 0, fd, r;

	if ((r = monitor_enter(c, io, fifo_fd, e)) < 0)
		return r;
	if ((r = vmc_pod_share(&c->pod, &c->plan, e)) < 0)
		return err_wrap(e, "pod sandbox '%s'", c->pod.sandbox);
	if ((fd = vmc_agent_connect(c->pod.dir, AGENT_CONNECT_MS, e)) < 0) {
		vmc_pod_unshare(&c->pod, c->id);
		return err_wrap(e, "pod sandbox '%s'", c->pod.sandbox);
	}
	if ((r = create_in_guest(fd, c, &req, &guest_pid, e)) < 0) {
		close(fd);
		vmc_pod_unshare(&c->pod, c->id);
		return r;
	}
	return fd;
}

static int monitor_vm_exit(struct vmc_vm *vm)
{
	if (vm->pid > 0) {
		kill(vm->pid, SIGKILL);
		while (waitpid(vm->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	return 0;
}

__attribute__((noreturn)) static void monitor_main(struct vm_create *c, pid_t creator)
{
	struct vmc_relay relay = {.id = c->id};
	struct vmc_vm vm = {.pid = 0, .pidfd = -1};
	struct err *e = NULL;
	char buf[8];
	int fd, status;

	close(c->sync[0]);
	c->sync[0] = -1;
	/* The create's lock is the create's (a verb waiting for it would wait
	 * for us). */
	if (c->st->lock_fd >= 0) {
		close(c->st->lock_fd);
		c->st->lock_fd = -1;
	}
	if (c->st->record_fd >= 0) {
		close(c->st->record_fd);
		c->st->record_fd = -1;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != creator)
		_exit(1);
	fd = c->pod.dir ? monitor_join(c, &relay.io, &relay.fifo_fd, &e)
			: monitor_boot(c, &vm, &relay.io, &relay.fifo_fd, &e);
	if (fd < 0) {
		tell(c->sync[1], 'E', e ? e->msg : "failed");
		monitor_vm_exit(&vm);
		_exit(1);
	}
	tell(c->sync[1], 'R', "");
	/* Until the create is committed, the creator's death is ours (and
	 * the VMM's: it dies with us). */
	if (recv(c->sync[1], buf, sizeof(buf), 0) != 1 || buf[0] != 'C') {
		monitor_vm_exit(&vm);
		_exit(1);
	}
	if (!c->run_mode)
		prctl(PR_SET_PDEATHSIG, 0);
	(void)send(c->sync[1], "K", 1, MSG_NOSIGNAL);
	close(c->sync[1]);
	/* A terminal's caller holds the pty's master, and the stdio it gave
	 * the create is not the container's: kept open here, its reader would
	 * wait for an end of file that never comes (containerd's shim reads
	 * the create's output pipe to its end before it calls start). */
	if (relay.io.terminal && c->o->console_socket)
		(void)fd_stdio_to_null();
	vmc_conn_init(&relay.conn, fd, VMC_FROM_GUEST);
	relay.start_now = c->run_mode;
	relay.vm = c->pod.dir ? NULL : &vm; /* a pod's container: the sandbox owns the VM */
	status = vmc_relay_run(&relay);
	{
		struct vmc_record rec;
		if (vmc_record_load(".", &rec, NULL) == 0 && rec.ifname)
			vmc_net_unplug(rec.ifname);
		vmc_record_clear(&rec);
	}
	_exit(status);
}

static int run_hooks(struct vm_create *c, enum oci_hook_kind kind, enum oci_status s, pid_t pid, struct err **e)
{
	_cleanup_free_ char *js = NULL;

	if (c->spec->n_hooks[kind] == 0)
		return 0;
	js = state_hook_json(c->id, s, pid, c->bundle, c->spec);
	return hooks_run(c->spec, kind, js, e);
}

/* create (and run's first half): on success *monitor is the container's
 * pid, running. */
static int do_create(struct vm_create *c, pid_t *monitor, struct err **e)
{
	char msg[4096];
	pid_t pid = -1;
	ssize_t n;
	int r;

	c->sync[0] = c->sync[1] = -1;
	if ((r = record_state(c, e)) < 0)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c->sync) < 0) {
		r = err_set(e, errno, "container '%s': socketpair", c->id);
		goto fail;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = err_set(e, errno, "container '%s': fork", c->id);
		goto fail;
	}
	if (pid == 0)
		monitor_main(c, getppid());
	close(c->sync[1]);
	c->sync[1] = -1;
	c->st->setup_pid = pid;
	c->st->setup_start = proc_start_time(pid);
	if ((r = state_record(c->st, e)) < 0)
		goto fail;
	n = recv(c->sync[0], msg, sizeof(msg) - 1, 0);
	if (n <= 0) {
		int ws = 0;
		waitpid(pid, &ws, 0);
		pid = -1;
		r = err_setx(e, EIO, "container '%s': its monitor died while starting the VM (%s %d)", c->id,
			     WIFSIGNALED(ws) ? "signal" : "status", WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
		goto fail;
	}
	msg[n] = '\0';
	if (msg[0] != 'R') {
		r = err_setx(e, EIO, "%s", msg + 1);
		goto fail;
	}
	if ((r = run_hooks(c, HOOK_PRESTART, STATUS_CREATING, pid, e)) < 0 ||
	    (r = run_hooks(c, HOOK_CREATE_RUNTIME, STATUS_CREATING, pid, e)) < 0)
		goto fail;
	c->st->creating = false;
	c->st->pid = pid;
	c->st->start_time = proc_start_time(pid);
	if ((r = state_record(c->st, e)) < 0 || (r = container_write_pid_file(c->o->pid_file, pid, e)) < 0)
		goto fail;
	if (send(c->sync[0], "C", 1, MSG_NOSIGNAL) != 1 || recv(c->sync[0], msg, 1, 0) != 1 || msg[0] != 'K') {
		r = err_setx(e, EIO, "container '%s': its monitor died", c->id);
		goto fail;
	}
	*monitor = pid;
	/* The record owns the cgroup now: destroy finds it there. */
	c->st->cg = c->cg;
	c->cg = NULL;
	return 0;
fail:
	if (*e)
		err_wrap(e, "container '%s'", c->id);
	undo(c, pid);
	return r;
}

int vmc_create(const struct oci_global *g, const struct vmc_options *vo, const char *id,
	       const struct oci_create_opts *o, struct err **e)
{
	struct vm_create c = {.g = g, .id = id, .o = o, .sync = {-1, -1}};
	pid_t pid;
	int r = prepare(&c, vo, e);

	if (r == 0)
		r = do_create(&c, &pid, e);
	create_free(&c);
	return r;
}

/* Wait for the monitor, passing on signals sent to us by other processes
 * (a terminal's signals reach the monitor directly: it is in our process
 * group). */
static int wait_monitor(pid_t pid)
{
	sigset_t all;
	int sfd, pidfd = (int)syscall(SYS_pidfd_open, pid, 0), ws = 0;

	sigfillset(&all);
	sfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
	for (;;) {
		struct pollfd p[2] = {{pidfd, POLLIN, 0}, {sfd, POLLIN, 0}};
		struct signalfd_siginfo si;
		if (waitpid(pid, &ws, WNOHANG) == pid)
			break;
		if (poll(p, 2, pidfd < 0 ? 100 : -1) < 0 && errno != EINTR)
			break;
		while (sfd >= 0 && read(sfd, &si, sizeof(si)) == sizeof(si))
			if (si.ssi_signo != SIGCHLD && si.ssi_code <= 0) /* SI_USER, SI_QUEUE, SI_TKILL */
				kill(pid, (int)si.ssi_signo);
	}
	if (sfd >= 0)
		close(sfd);
	if (pidfd >= 0)
		close(pidfd);
	return WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : WEXITSTATUS(ws);
}

int vmc_run(const struct oci_global *g, const struct vmc_options *vo, const char *id, const struct oci_create_opts *o,
	    int *status, struct err **e)
{
	struct vm_create c = {.g = g, .id = id, .o = o, .run_mode = !o->detach, .sync = {-1, -1}};
	sigset_t old;
	pid_t pid;
	int r;

	*status = 0;
	if (o->detach) {
		if ((r = vmc_create(g, vo, id, o, e)) < 0)
			return r;
		return oci_start(g, id, e);
	}
	/* Held from now on: none is lost (or kills us) before the monitor runs. */
	container_block_signals(&old);
	if ((r = prepare(&c, vo, e)) == 0 && (r = do_create(&c, &pid, e)) == 0) {
		struct err *he = NULL;
		/* The monitor asked the agent to start as it began. */
		if (run_hooks(&c, HOOK_POSTSTART, STATUS_RUNNING, pid, &he) < 0) {
			log_warn("container '%s': %s", id, he->msg);
			err_free(&he);
		}
		*status = wait_monitor(pid);
		/* We hold the state's lock since the create. */
		if (!o->keep)
			r = container_destroy(c.st, false, e);
	}
	create_free(&c);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

/* ---- verbs on an existing container ---- */

static int load(const struct oci_global *g, const char *id, bool locked, struct oci_state **st, enum oci_status *s,
		struct err **e)
{
	int r = locked ? state_load_locked(g->root, id, st, e) : state_load(g->root, id, st, e);

	if (r == 0)
		*s = state_status(*st);
	return r;
}

/* The monitor, whatever the create got to. */
static pid_t monitor_of(const struct oci_state *st, unsigned long long *start)
{
	if (st->creating) {
		*start = st->setup_start;
		return st->setup_pid;
	}
	*start = st->start_time;
	return st->pid;
}

/* Whether the container is still running: its state says so and its
 * monitor lives. */
static bool still_running(const struct oci_global *g, const char *id, pid_t mon, unsigned long long start)
{
	struct oci_state *now = NULL;
	enum oci_status s = STATUS_STOPPED;
	bool running = load(g, id, false, &now, &s, NULL) == 0 && s != STATUS_STOPPED;

	state_free(now);
	return running && mon > 0 && proc_alive(mon, start);
}

int vmc_kill(const struct oci_global *g, const char *id, int sig, bool all, struct err **e)
{
	struct vmc_request req = {.op = VMC_OP_KILL, .id = (char *)id, .signal = sig, .all = all};
	struct vmc_reply reply;
	_cleanup_free_ char *adir = NULL;
	struct oci_state *st;
	struct err *ce = NULL;
	enum oci_status s = STATUS_STOPPED;
	unsigned long long start;
	pid_t mon;
	int r = load(g, id, false, &st, &s, e);

	if (r < 0)
		return r;
	mon = monitor_of(st, &start);
	if (s == STATUS_STOPPED) {
		r = all ? 0 : err_setx(e, ESRCH, "container '%s': container not running", id);
		/* A pod's container's init has exited, its VM runs on: what the
		 * init left in its cgroup there is the agent's to kill (a VM of
		 * its own took them along when it powered off). */
		if (all && vmc_agent_dir(g, st->dir, &adir, &ce) == 0 && strcmp(adir, st->dir) != 0 &&
		    vmc_agent_call(adir, &req, AGENT_CONNECT_MS, &reply, &ce) == 0)
			vmc_reply_clear(&reply);
		err_free(&ce);
		goto out;
	}
	if (s == STATUS_RUNNING || s == STATUS_CREATED) {
		if ((r = vmc_agent_dir(g, st->dir, &adir, &ce)) == 0)
			r = vmc_agent_call(adir, &req, AGENT_CONNECT_MS, &reply, &ce);
		if (r == 0) {
			/* An agent that refuses while the container ends (its
			 * process gone, the VM powering off) refuses a container
			 * no longer running: said as runc says it, which
			 * containerd's shim takes for "already finished" rather
			 * than "unknown error after kill". */
			if (reply.ok)
				r = 0;
			else if (!still_running(g, id, mon, start))
				r = err_setx(e, ESRCH, "container '%s': container not running", id);
			else
				r = err_setx(e, EIO, "container '%s': %s", id, reply.error);
			vmc_reply_clear(&reply);
			goto out;
		}
		log_debug("container '%s': kill through the agent: %s", id, ce->msg);
		err_free(&ce);
	}
	/* Paused, being created, or the agent does not answer: the monitor
	 * forwards what it can catch once it runs; SIGKILL ends it and its
	 * VM, as SIGKILL ends a container's init. */
	if (mon <= 0 || !proc_alive(mon, start))
		r = err_setx(e, ESRCH, "container '%s': container not running", id);
	else if (kill(mon, sig) < 0)
		r = err_set(e, errno, "container '%s': kill %d (monitor pid %d)", id, sig, (int)mon);
	if (r == 0 && sig == SIGKILL && s == STATUS_PAUSED && st->cg)
		(void)cgroup_freeze(st->cg, false, NULL);
out:
	state_free(st);
	return r;
}

static void kill_and_wait(pid_t pid, unsigned long long start)
{
	if (pid <= 0 || !proc_alive(pid, start))
		return;
	kill(pid, SIGKILL);
	(void)container_wait_gone(pid, start, 10000);
}

/* Take the VM's redirection off the namespace's interface, from a child
 * (setns would move us). */
static void unplug(const struct vmc_record *rec)
{
	pid_t pid;
	int fd;

	if (rec->netns == NULL || rec->ifname == NULL)
		return;
	fd = open(rec->netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return; /* the namespace is gone, and what was in it */
	pid = fork();
	if (pid == 0) {
		if (setns(fd, CLONE_NEWNET) == 0)
			vmc_net_unplug(rec->ifname);
		_exit(0);
	}
	close(fd);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
}

/* A pod's container, stopped: out of its pod's VM (its files from the
 * share, its state from the guest), if that VM still runs. */
static void leave_pod(const struct oci_global *g, const char *id, const char *sandbox)
{
	struct vmc_request req = {.op = VMC_OP_DELETE, .id = (char *)id};
	struct vmc_reply reply;
	struct vmc_pod pod;
	struct err *e = NULL;

	if (!vmc_pod_find(g, sandbox, id, &pod))
		return;
	if (vmc_agent_call(pod.dir, &req, AGENT_CONNECT_MS, &reply, &e) == 0) {
		if (!reply.ok)
			log_debug("container '%s': delete in its pod's VM: %s", id, reply.error);
		vmc_reply_clear(&reply);
	} else {
		log_debug("container '%s': delete in its pod's VM: %s", id, e->msg);
		err_free(&e);
	}
	vmc_pod_unshare(&pod, id);
	vmc_pod_free(&pod);
}

int vmc_delete(const struct oci_global *g, const char *id, bool force, struct err **e)
{
	struct vmc_record rec;
	struct oci_state *st;
	enum oci_status s = STATUS_STOPPED;
	unsigned long long start;
	pid_t mon;
	int r = load(g, id, true, &st, &s, e);

	if (r < 0) {
		if (force && err_code(*e) == ENOENT) {
			err_free(e);
			return 0;
		}
		return r;
	}
	if ((s == STATUS_RUNNING || s == STATUS_PAUSED) && !force) {
		r = err_setx(e, EBUSY, "container '%s': cannot delete container %s that is not stopped: %s", id, id,
			     oci_status_names[s]);
		goto out;
	}
	if (vmc_record_load(st->dir, &rec, NULL) < 0)
		memset(&rec, 0, sizeof(rec));
	mon = monitor_of(st, &start);
	if (mon > 0 && proc_alive(mon, start))
		kill(mon, SIGKILL);
	if (rec.vmm_pid > 0 && proc_alive(rec.vmm_pid, rec.vmm_start))
		kill(rec.vmm_pid, SIGKILL);
	/* Frozen processes die once thawed. */
	if (s == STATUS_PAUSED && st->cg)
		(void)cgroup_freeze(st->cg, false, NULL);
	kill_and_wait(mon, start);
	kill_and_wait(rec.vmm_pid, rec.vmm_start);
	if (rec.sandbox)
		leave_pod(g, id, rec.sandbox);
	unplug(&rec);
	vmc_record_clear(&rec);
	r = container_destroy(st, false, e);
out:
	state_free(st);
	return r;
}

static int check_running(const char *id, enum oci_status s, const char *verb, struct err **e)
{
	switch (s) {
	case STATUS_STOPPED:
		return err_setx(e, EINVAL, "container '%s': cannot %s in a stopped container", id, verb);
	case STATUS_CREATING:
		return err_setx(e, EBUSY, "container '%s': cannot %s in a container that is being created", id, verb);
	case STATUS_PAUSED:
		return err_setx(e, EINVAL, "container '%s': cannot %s in a paused container: its VM is paused", id,
				verb);
	default:
		return 0;
	}
}

static int exec_request(const struct oci_exec_opts *o, struct vmc_request *req, bool *terminal, struct err **e)
{
	memset(req, 0, sizeof(*req));
	req->op = VMC_OP_EXEC;
	*terminal = o->has_tty && o->tty;
	if (o->process_file) {
		_cleanup_free_ char *text = NULL;
		json_object *t;
		size_t len = 0;
		int r = read_file(o->process_file, &text, &len);
		if (r < 0)
			return err_set(e, -r, "exec --process '%s'", o->process_file);
		if ((r = json_doc_parse(text, len, o->process_file, &req->process, e)) < 0)
			return r;
		if (json_object_get_type(req->process) != json_type_object)
			return err_setx(e, EINVAL, "%s: expected an object", o->process_file);
		if (!o->has_tty && json_object_object_get_ex(req->process, "terminal", &t))
			*terminal = json_object_get_boolean(t);
	}
	req->args = o->process_file ? NULL : o->args;
	req->n_args = o->process_file ? 0 : o->n_args;
	req->env = o->env;
	req->n_env = o->n_env;
	req->additional_gids = o->additional_gids;
	req->n_additional_gids = o->n_additional_gids;
	req->caps = o->caps;
	req->n_caps = o->n_caps;
	req->cwd = (char *)o->cwd;
	req->user = (char *)o->user;
	req->apparmor = (char *)o->apparmor;
	req->process_label = (char *)o->process_label;
	req->tty = o->tty;
	req->has_tty = o->has_tty;
	req->no_new_privs = o->no_new_privs;
	if (*terminal && !o->console_socket && o->detach)
		return err_setx(
		    e, EINVAL,
		    "exec --tty: cannot allocate a terminal for a detached process without --console-socket");
	if (!*terminal && o->console_socket)
		return err_setx(e, EINVAL, "exec --console-socket: given but no terminal was asked for");
	if (o->preserve_fds)
		return err_setx(e, EINVAL, "exec --preserve-fds: a host's descriptors cannot be passed into a VM");
	if (*terminal && !o->console_socket && isatty(0)) {
		struct winsize ws;
		if (ioctl(0, TIOCGWINSZ, &ws) == 0)
			req->rows = ws.ws_row, req->cols = ws.ws_col;
	}
	return 0;
}

int vmc_exec(const struct oci_global *g, const char *id, const struct oci_exec_opts *o, int *status, struct err **e)
{
	struct vmc_request req = {0};
	struct vmc_reply reply = {0};
	struct vmc_relay relay = {.id = id, .fifo_fd = -1};
	_cleanup_free_ char *text = NULL, *adir = NULL;
	struct oci_state *st;
	enum oci_status s = STATUS_STOPPED;
	struct vmc_header h;
	char *payload = NULL;
	bool terminal = false, blocked = false;
	sigset_t old;
	int fd = -1, r = load(g, id, false, &st, &s, e), p[2] = {-1, -1};
	pid_t pid;

	*status = 0;
	if (r < 0)
		return r;
	if ((r = check_running(id, s, "exec", e)) < 0 || (r = exec_request(o, &req, &terminal, e)) < 0)
		goto out;
	if (o->n_cgroups)
		log_warn("container '%s': exec --cgroup '%s': the process stays in the container's cgroup of its VM",
			 id, o->cgroups[0]);
	if (!o->detach) {
		container_block_signals(&old);
		blocked = true;
	}
	req.id = (char *)id;
	if ((r = vmc_agent_dir(g, st->dir, &adir, e)) < 0)
		goto out;
	if ((fd = vmc_agent_connect(adir, AGENT_CONNECT_MS, e)) < 0) {
		r = fd;
		goto out;
	}
	if ((text = vmc_request_format(&req)) == NULL) {
		r = err_set(e, ENOMEM, "exec");
		goto out;
	}
	if ((r = vmc_write_frame(fd, VMC_REQUEST, text, strlen(text))) < 0) {
		r = err_set(e, -r, "container '%s': exec: the agent's session", id);
		goto out;
	}
	if ((r = vmc_read_frame(fd, VMC_FROM_GUEST, AGENT_OP_MS, &h, &payload, e)) < 0)
		goto out;
	if (h.type != VMC_REPLY)
		r = err_setx(e, EPROTO, "container '%s': exec: the agent answered with %s", id, vmc_type_name(h.type));
	else if ((r = vmc_reply_parse(payload, h.len, &reply, e)) == 0) {
		if (!reply.ok)
			r = err_setx(e, EIO, "%s", reply.error);
		vmc_reply_clear(&reply);
	}
	free(payload);
	if (r < 0)
		goto out;
	vmc_conn_init(&relay.conn, fd, VMC_FROM_GUEST);
	fd = -1;
	if (!o->detach) {
		if (terminal)
			r = vmc_stdio_terminal(&relay.io, o->console_socket, e);
		else
			vmc_stdio_plain(&relay.io);
		if (r == 0)
			*status = vmc_relay_run(&relay);
		else
			vmc_conn_close(&relay.conn);
		goto out;
	}
	/* --detach: the process's pid, for the caller, is a monitor of its
	 * own, which exits with the process's status. */
	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		r = err_set(e, errno, "container '%s': exec: fork", id);
		vmc_conn_close(&relay.conn);
		goto out;
	}
	if (pid == 0) {
		struct err *ce = NULL;
		close(p[0]);
		if (terminal)
			r = vmc_stdio_terminal(&relay.io, o->console_socket, &ce);
		else
			vmc_stdio_plain(&relay.io);
		if (r < 0) {
			if (write(p[1], ce->msg, strlen(ce->msg)) < 0) {
				/* the caller sees the exit */
			}
			_exit(1);
		}
		close(p[1]);
		_exit(vmc_relay_run(&relay));
	}
	close(p[1]);
	vmc_conn_close(&relay.conn);
	{
		char msg[1024];
		ssize_t n = read(p[0], msg, sizeof(msg) - 1);
		close(p[0]);
		if (n > 0) {
			msg[n] = '\0';
			waitpid(pid, NULL, 0);
			r = err_setx(e, EIO, "container '%s': exec: %s", id, msg);
			goto out;
		}
	}
	r = container_write_pid_file(o->pid_file, pid, e);
out:
	if (blocked)
		sigprocmask(SIG_SETMASK, &old, NULL);
	if (fd >= 0)
		close(fd);
	/* The request borrowed o's strings: only its own parts go. */
	json_object_put(req.process);
	state_free(st);
	return r;
}

int vmc_ps(const struct oci_global *g, const char *id, bool json, char *const *args, size_t n_args, FILE *out,
	   struct err **e)
{
	struct vmc_request req = {.op = VMC_OP_PS, .id = (char *)id, .ps_args = (char **)args, .n_ps_args = n_args};
	struct vmc_reply reply;
	_cleanup_free_ char *adir = NULL;
	struct oci_state *st;
	enum oci_status s = STATUS_STOPPED;
	int r = load(g, id, false, &st, &s, e);

	if (r < 0)
		return r;
	if (s == STATUS_STOPPED) {
		fputs(json ? "null\n" : "", out);
		goto out;
	}
	if ((r = check_running(id, s, "list the processes", e)) < 0 || (r = vmc_agent_dir(g, st->dir, &adir, e)) < 0 ||
	    (r = vmc_agent_call(adir, &req, AGENT_CONNECT_MS, &reply, e)) < 0)
		goto out;
	if (!reply.ok) {
		r = err_setx(e, EIO, "container '%s': ps: %s", id, reply.error);
	} else if (json) {
		if (reply.n_pids == 0)
			fputs("null\n", out);
		for (size_t i = 0; i < reply.n_pids; i++)
			fprintf(out, "%s%d%s", i ? "," : "[", reply.pids[i], i + 1 == reply.n_pids ? "]\n" : "");
	} else if (reply.table) {
		fputs(reply.table, out);
	}
	vmc_reply_clear(&reply);
out:
	state_free(st);
	return r;
}

int vmc_update(const struct oci_global *g, const char *id, const struct cgroup_resources *res, struct err **e)
{
	struct vmc_request req = {.op = VMC_OP_UPDATE, .id = (char *)id};
	struct vmc_reply reply;
	_cleanup_free_ char *adir = NULL;
	struct oci_state *st;
	enum oci_status s = STATUS_STOPPED;
	int r = load(g, id, true, &st, &s, e);

	if (r < 0)
		return r;
	if (s == STATUS_STOPPED) {
		r = err_setx(e, EINVAL, "container '%s': cannot update a stopped container", id);
		goto out;
	}
	if ((r = check_running(id, s, "update", e)) < 0)
		goto out;
	if ((r = vmc_agent_dir(g, st->dir, &adir, e)) < 0)
		goto out;
	req.resources = vmc_resources_json(res);
	r = vmc_agent_call(adir, &req, AGENT_OP_MS, &reply, e);
	json_object_put(req.resources);
	if (r < 0)
		goto out;
	if (!reply.ok)
		r = err_setx(e, EIO, "container '%s': update: %s", id, reply.error);
	vmc_reply_clear(&reply);
	/* The CPU limits bound the vCPUs on the host too. */
	if (r == 0 && st->cg && (res->has_cpu_quota || res->has_cpu_period || res->has_cpu_shares)) {
		struct cgroup_resources hr = {0};
		hr.has_cpu_shares = res->has_cpu_shares, hr.cpu_shares = res->cpu_shares;
		hr.has_cpu_quota = res->has_cpu_quota, hr.cpu_quota = res->cpu_quota;
		hr.has_cpu_period = res->has_cpu_period, hr.cpu_period = res->cpu_period;
		r = cgroups_apply(st->cg, &hr, NULL, 0, true, e);
	}
out:
	state_free(st);
	return r;
}
