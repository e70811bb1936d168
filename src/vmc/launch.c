/* casulo-vmm as the container's VM: where it is, how it starts, what is
 * recorded of it, and what its end says. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/json-doc.h"
#include "common/macro.h"
#include "oci/util.h"
#include "vmc/internal.h"

static char *exe_dir(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return NULL;
	self[n] = '\0';
	return strdup(dirname(self));
}

int vmc_paths_find(const struct vmc_options *vo, struct vmc_paths *p, struct err **e)
{
	const char *vmm = vo && vo->vmm ? vo->vmm : getenv("CASULO_VMM");
	const char *guest = vo && vo->guest_dir ? vo->guest_dir : getenv("CASULO_GUEST_DIR");
	_cleanup_free_ char *dir = NULL, *vmm_copy = NULL, *guest_dir = NULL;

	memset(p, 0, sizeof(*p));
	if (vmm && *vmm)
		p->vmm = strdup(vmm);
	else if ((dir = exe_dir()) == NULL || asprintf(&p->vmm, "%s/casulo-vmm", dir) < 0)
		p->vmm = NULL;
	if (p->vmm == NULL)
		return err_set(e, ENOMEM, "casulo-vmm");
	if (access(p->vmm, X_OK) < 0) {
		int r = err_set(e, errno, "casulo-vmm '%s' (set CASULO_VMM or --vmm)", p->vmm);
		vmc_paths_free(p);
		return r;
	}
	/* The guest beside the VMM, as casulo-vmm finds its default one. */
	if (guest && *guest)
		guest_dir = strdup(guest);
	else if ((vmm_copy = strdup(p->vmm)) == NULL || asprintf(&guest_dir, "%s/guest", dirname(vmm_copy)) < 0)
		guest_dir = NULL;
	if (guest_dir == NULL || asprintf(&p->kernel, "%s/vmlinux", guest_dir) < 0 ||
	    asprintf(&p->initrd, "%s/initrd.img", guest_dir) < 0) {
		vmc_paths_free(p);
		return err_set(e, ENOMEM, "guest");
	}
	if (access(p->kernel, R_OK) < 0 || access(p->initrd, R_OK) < 0) {
		int r = err_set(e, errno, "guest '%s' (make guest, or set CASULO_GUEST_DIR or --guest-dir)", guest_dir);
		vmc_paths_free(p);
		return r;
	}
	return 0;
}

void vmc_paths_free(struct vmc_paths *p)
{
	free(p->vmm);
	free(p->kernel);
	free(p->initrd);
	memset(p, 0, sizeof(*p));
}

/* In the VMM's child: the shares, bound under VMC_SHARED in a mount
 * namespace of its own (they go away with the VMM, whatever kills it).
 * Returns NULL or what failed. */
static const char *child_shares(const struct vmc_plan *plan, char *msg, size_t size)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
		snprintf(msg, size, "mount namespace: %s", strerror(errno));
		return msg;
	}
	if (mount("tmpfs", VMC_SHARED, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0) {
		snprintf(msg, size, "tmpfs on '%s': %s", VMC_SHARED, strerror(errno));
		return msg;
	}
	if (mkdir(VMC_SHARED "/mnt", 0755) < 0) {
		snprintf(msg, size, "mkdir: %s", strerror(errno));
		return msg;
	}
	for (size_t i = 0; i < plan->n_shares; i++) {
		char target[256];

		snprintf(target, sizeof(target), VMC_SHARED "/%s", plan->shares[i].guest);
		if (vmc_share_place(&plan->shares[i], target, -1, msg, size))
			return msg;
	}
	return NULL;
}

const char *vmc_share_place(const struct vmc_share *s, const char *target, int tree, char *msg, size_t size)
{
	int fd;

	if (s->is_dir ? mkdir(target, 0755) < 0
		      : (fd = open(target, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644)) < 0 || close(fd) < 0) {
		snprintf(msg, size, "'%s': %s", target, strerror(errno));
		return msg;
	}
	if (tree >= 0 ? move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0
		      : mount(s->host, target, NULL, MS_BIND | (s->recursive ? MS_REC : 0), NULL) < 0) {
		snprintf(msg, size, "bind '%s': %s", s->host, strerror(errno));
		return msg;
	}
	if (s->readonly && mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
		snprintf(msg, size, "read-only bind '%s': %s", s->host, strerror(errno));
		return msg;
	}
	return NULL;
}

int vmc_vm_start(const struct vmc_paths *paths, const struct vmc_plan *plan, int tap_fd, const uint8_t *mac,
		 struct vmc_vm *vm, struct err **e)
{
	char cpus[16], memory[32], net[64], fs[64];
	const char *argv[32];
	size_t n = 0;
	pid_t parent = getpid(), pid;
	int p[2];
	char why[512];
	ssize_t got;

	snprintf(cpus, sizeof(cpus), "%u", plan->cpus);
	snprintf(memory, sizeof(memory), "%lluM", (unsigned long long)plan->memory_mib);
	snprintf(fs, sizeof(fs), "tag=%s,path=%s", VMC_SHARE_TAG, VMC_SHARED);
	argv[n++] = paths->vmm;
	argv[n++] = "--kernel";
	argv[n++] = paths->kernel;
	argv[n++] = "--initrd";
	argv[n++] = paths->initrd;
	argv[n++] = "--cmdline";
	argv[n++] = getenv("CASULO_VM_DEBUG") ? VMC_CMDLINE_DEBUG : VMC_CMDLINE;
	argv[n++] = "--cpus";
	argv[n++] = cpus;
	argv[n++] = "--memory";
	argv[n++] = memory;
	argv[n++] = "--console";
	argv[n++] = "file:" VMC_CONSOLE;
	argv[n++] = "--vsock";
	argv[n++] = "cid=3,socket=" VMC_VSOCK;
	argv[n++] = "--fs";
	argv[n++] = fs;
	if (tap_fd >= 0) {
		snprintf(net, sizeof(net), "fd=3,mac=%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
			 mac[4], mac[5]);
		argv[n++] = "--net";
		argv[n++] = net;
	}
	argv[n] = NULL;

	if (mkdir(VMC_SHARED, 0755) < 0 && errno != EEXIST)
		return err_set(e, errno, "mkdir '%s'", VMC_SHARED);
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(e, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return err_set(e, errno, "fork casulo-vmm");
	}
	if (pid == 0) {
		char msg[400];
		const char *fail;
		int null, log;
		sigset_t none;

		close(p[0]);
		/* Its own session: a terminal's signals are the container's,
		 * forwarded by the monitor, never the VM's. */
		setsid();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		if ((fail = child_shares(plan, msg, sizeof(msg))) != NULL) {
			if (write(p[1], fail, strlen(fail)) < 0) {
				/* the monitor sees the exit */
			}
			_exit(1);
		}
		/* dup2() onto itself would keep close-on-exec. */
		if (tap_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : tap_fd >= 0 && dup2(tap_fd, 3) < 0)
			_exit(1);
		/* Opened once the TAP is at 3, so that neither takes its place. */
		null = open("/dev/null", O_RDWR | O_CLOEXEC);
		log = open(VMC_VMM_LOG, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		dup2(null, 0);
		dup2(log >= 0 ? log : null, 1);
		dup2(log >= 0 ? log : null, 2);
		/* Nothing else of ours or our caller's goes into the VMM. */
		syscall(SYS_close_range, tap_fd >= 0 ? 4U : 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		execv(paths->vmm, (char *const *)argv);
		snprintf(msg, sizeof(msg), "exec '%s': %s", paths->vmm, strerror(errno));
		if (write(p[1], msg, strlen(msg)) < 0) {
			/* as above */
		}
		_exit(127);
	}
	close(p[1]);
	/* The pipe closes on exec: anything in it is why the start failed. */
	got = read(p[0], why, sizeof(why) - 1);
	close(p[0]);
	if (got > 0) {
		why[got] = '\0';
		waitpid(pid, NULL, 0);
		return err_setx(e, EIO, "casulo-vmm: %s", why);
	}
	vm->pid = pid;
	vm->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	vm->start_time = proc_start_time(pid);
	return 0;
}

int vmc_record_save(const char *state_dir, const struct vmc_record *r, struct err **e)
{
	_cleanup_free_ char *path = NULL;
	json_object *o = json_object_new_object();
	const char *text;
	int ret;

	json_object_object_add(o, "vmm_pid", json_object_new_int(r->vmm_pid));
	json_object_object_add(o, "vmm_start", json_object_new_uint64(r->vmm_start));
	if (r->netns)
		json_object_object_add(o, "netns", json_object_new_string(r->netns));
	if (r->ifname)
		json_object_object_add(o, "ifname", json_object_new_string(r->ifname));
	if (r->guest_pid > 0)
		json_object_object_add(o, "guest_pid", json_object_new_int(r->guest_pid));
	if (r->sandbox)
		json_object_object_add(o, "sandbox", json_object_new_string(r->sandbox));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (asprintf(&path, "%s/%s", state_dir, VMC_RECORD) < 0)
		ret = err_set(e, ENOMEM, "%s", VMC_RECORD);
	else if ((ret = write_file_atomic(path, text, strlen(text), 0600)) < 0)
		ret = err_set(e, -ret, "write '%s'", path);
	json_object_put(o);
	return ret;
}

int vmc_record_load(const char *state_dir, struct vmc_record *r, struct err **e)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	json_object *o = NULL, *v;
	size_t len = 0;
	int ret;

	memset(r, 0, sizeof(*r));
	if (asprintf(&path, "%s/%s", state_dir, VMC_RECORD) < 0)
		return err_set(e, ENOMEM, "%s", VMC_RECORD);
	if ((ret = read_file(path, &text, &len)) < 0)
		return err_set(e, -ret, "read '%s'", path);
	if ((ret = json_doc_parse(text, len, path, &o, e)) < 0)
		return ret;
	if (json_object_object_get_ex(o, "vmm_pid", &v) && json_object_get_type(v) == json_type_int)
		r->vmm_pid = json_object_get_int(v);
	if (json_object_object_get_ex(o, "vmm_start", &v) && json_object_get_type(v) == json_type_int)
		r->vmm_start = json_object_get_uint64(v);
	if (json_object_object_get_ex(o, "netns", &v) && json_object_get_type(v) == json_type_string)
		r->netns = strdup(json_object_get_string(v));
	if (json_object_object_get_ex(o, "ifname", &v) && json_object_get_type(v) == json_type_string)
		r->ifname = strdup(json_object_get_string(v));
	if (json_object_object_get_ex(o, "guest_pid", &v) && json_object_get_type(v) == json_type_int)
		r->guest_pid = json_object_get_int(v);
	if (json_object_object_get_ex(o, "sandbox", &v) && json_object_get_type(v) == json_type_string)
		r->sandbox = strdup(json_object_get_string(v));
	json_object_put(o);
	return 0;
}

void vmc_record_clear(struct vmc_record *r)
{
	free(r->netns);
	free(r->ifname);
	free(r->sandbox);
	memset(r, 0, sizeof(*r));
}

/* The last line of file holding needle (or the last line at all when
 * needle is NULL), control characters dropped; NULL if none. */
static char *last_line(const char *file, const char *needle)
{
	_cleanup_free_ char *text = NULL;
	char *found = NULL, *save = NULL;
	size_t len;

	if (read_file(file, &text, &len) < 0)
		return NULL;
	for (char *l = strtok_r(text, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save))
		if (needle == NULL || strstr(l, needle))
			found = l;
	if (found == NULL)
		return NULL;
	found = strdup(found);
	for (char *c = found; c && *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	return found;
}

char *vmc_vm_console_tail(void)
{
	return last_line(VMC_CONSOLE, NULL);
}

char *vmc_vm_diagnose(pid_t vmm_pid, int wstatus, int *status)
{
	_cleanup_free_ char *line = NULL;
	char *msg = NULL;

	*status = 255;
	if ((line = last_line(VMC_CONSOLE, "Kernel panic")) != NULL) {
		if (asprintf(&msg, "the guest kernel panicked (%s)", line) < 0)
			msg = NULL;
	} else if (WIFSIGNALED(wstatus)) {
		*status = 128 + WTERMSIG(wstatus);
		if (asprintf(&msg, "its VM (casulo-vmm, pid %d) was killed by signal %d", (int)vmm_pid,
			     WTERMSIG(wstatus)) < 0)
			msg = NULL;
	} else if ((line = last_line(VMC_VMM_LOG, "triple fault")) != NULL) {
		/* A reset ends the VM with status 0, as a reboot does: its log
		 * says which it was. */
		if (asprintf(&msg, "its VM reset: a vCPU triple-faulted (%s)", line) < 0)
			msg = NULL;
	} else if (WEXITSTATUS(wstatus) != 0 && (line = last_line(VMC_VMM_LOG, NULL)) != NULL) {
		if (asprintf(&msg, "its VM failed (casulo-vmm exited with status %d: %s)", WEXITSTATUS(wstatus), line) <
		    0)
			msg = NULL;
	} else {
		/* The guest's last word, when it said one (its console is quiet). */
		line = last_line(VMC_CONSOLE, NULL);
		if (asprintf(&msg,
			     "its VM stopped (casulo-vmm exited with status %d) before the container's process ended: "
			     "the guest agent died or the guest rebooted%s%s%s",
			     WEXITSTATUS(wstatus), line ? "; its console ends with '" : "", line ? line : "",
			     line ? "'" : "") < 0)
			msg = NULL;
	}
	return msg;
}
