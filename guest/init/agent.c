/*
 * casulo-init's agent mode: the guest side of a container in its own VM
 * (docs/vm-containers.md).  casulo-runtime on the host starts casulo-vmm
 * with the container's files shared over virtio-fs (tag "casulo") and
 * casulo.agent on the kernel command line; the agent
 *
 *   1. makes its root a mount with a parent (pivot_root refuses the
 *      initramfs itself), mounts cgroup2 and the share, raises the
 *      share's readahead;
 *   2. connects to the host (vsock CID 2, port VMC_BOOT_PORT), says
 *      HELLO, and is asked to create the container from the config.json
 *      the host rewrote for the guest, which libcasulo-oci does here as
 *      it would on a host (namespaces, mounts, cgroups, capabilities,
 *      seccomp...);
 *   3. serves that session (the init's stdio, signals, start, terminal
 *      size) and further ones the host opens on VMC_AGENT_PORT (exec,
 *      kill, ps, update), one poll loop, nothing blocking but the
 *      libcasulo-oci calls, which run in a forked helper each;
 *   4. when the container's init has exited and its output is sent, and
 *      the host has closed the boot session (or 10 s have passed), powers
 *      the VM off with the init's status.  A boot session closed before
 *      that (the host's monitor died) powers off at once.
 *
 * Everything the host sends is checked (vmc/proto.c); the agent trusts
 * the host, but a malformed frame only ends its session.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <json-c/json.h>

#include "init.h"
#include "ipconfig.h"
#include "oci/oci.h"
#include "oci/spec.h"
#include "vmc/proto.h"
#include "vmc/stream.h"

#define AGENT_DIR "/run/casulo"
#define AGENT_SHARE_TAG "casulo"
#define AGENT_SHARE_DIR AGENT_DIR "/shared"
#define AGENT_STATE AGENT_DIR "/state"
#define AGENT_BUNDLE AGENT_DIR "/bundle" /* -<id>: each container's */
#define AGENT_SESSIONS 64
/* After a process exits, how long its output may take to reach EOF (a
 * background process may hold the pipe). */
#define AGENT_DRAIN_MS 300
/* After the init's EXIT, how long the host may take to close the boot
 * session before the VM powers off anyway. */
#define AGENT_LINGER_MS 10000
/* A libcasulo-oci call bounds its own waits (120 s plus hooks); this
 * bounds the helper running it. */
#define AGENT_HELPER_MS 300000
/* The share's readahead: 128 KiB halves read throughput through
 * virtio-fs (docs/vmm.md). */
#define AGENT_READAHEAD_KB "1024"

struct proc {
	pid_t pid;
	int out_fd, err_fd; /* read ends (out_fd is the pty master for a terminal) */
	int pty;	    /* the master, for resizes; -1 without a terminal */
	struct vmc_sink in; /* stdin's write end (or the master again) */
	bool in_eof;	    /* the host ended the input: close once written */
	bool exited;
	int status;
	long long exit_ms;
};

struct session {
	bool used, boot, requested, has_proc, done;
	bool requested_before; /* a request was handled on it */
	bool ctr; /* a container's session: its init's stdio, its start (the boot one, or a pod's container's) */
	char id[VMC_ID_MAX + 1]; /* that container */
	char cgroup[600];	 /* its cgroup (cgroup2, from /), to tell the host of an OOM kill */
	struct vmc_conn conn;
	struct proc proc;
};

static struct agent {
	int listen_fd, sig_fd;
	struct session s[AGENT_SESSIONS];
	char id[VMC_ID_MAX + 1]; /* the VM's first container's, once created */
	bool created;
	bool init_done; /* the init's EXIT is queued */
	int init_status;
	long long linger_until;
	unsigned seq; /* names of exec files */
} A;

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static const struct oci_global guest_runtime = {.root = AGENT_STATE};
/* The container the request in hand is about (the helpers read it). */
static const char *target;
static bool debug_on;

/* casulo.debug on the command line: what the agent does, on the console. */
#define debug(fmt, ...)                                                                                                \
	do {                                                                                                           \
		if (debug_on)                                                                                          \
			init_warn("[%lld ms] " fmt, now_ms(), ##__VA_ARGS__);                                          \
	} while (0)

/* ---- setup ---- */

/* pivot_root(2) refuses a root mount without a parent, which the
 * initramfs is: make our root a bind mount of it, as switch_root would. */
static void root_with_parent(void)
{
	if (mkdir("/.root", 0700) < 0 && errno != EEXIST)
		init_warn("mkdir '/.root': %s", strerror(errno));
	if (mount("/", "/.root", NULL, MS_BIND | MS_REC, NULL) < 0 || chdir("/.root") < 0 ||
	    mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
		init_warn("root as a bind mount: %s (containers will need --no-pivot)", strerror(errno));
}

static void write_sys(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, value, strlen(value)) < 0)
		init_warn("write '%s': %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void mount_share(void)
{
	char bdi[96];
	struct stat st;

	if (mkdir(AGENT_DIR, 0700) < 0 && errno != EEXIST)
		init_warn("mkdir '%s': %s", AGENT_DIR, strerror(errno));
	if (mkdir(AGENT_SHARE_DIR, 0700) < 0 && errno != EEXIST)
		init_warn("mkdir '%s': %s", AGENT_SHARE_DIR, strerror(errno));
	if (mount(AGENT_SHARE_TAG, AGENT_SHARE_DIR, "virtiofs", MS_NODEV, NULL) < 0) {
		init_warn("mount virtiofs '%s': %s", AGENT_SHARE_TAG, strerror(errno));
		return;
	}
	if (stat(AGENT_SHARE_DIR, &st) == 0) {
		snprintf(bdi, sizeof(bdi), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev), minor(st.st_dev));
		write_sys(bdi, AGENT_READAHEAD_KB);
	}
}

static void setup(void)
{
	sigset_t all;

	root_with_parent();
	if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		init_warn("mount cgroup2: %s", strerror(errno));
	mount_share();
	/* Signals arrive through the signalfd only; the helpers unblock. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&all);
	sigaddset(&all, SIGCHLD);
	A.sig_fd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int vsock_listen(unsigned port)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
		init_warn("vsock listen on port %u: %s", port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int vsock_connect_host(unsigned port)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};

	for (int attempt = 0; attempt < 50; attempt++) {
		int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
		close(fd);
		usleep(20000);
	}
	return -1;
}

/* ---- helpers: a libcasulo-oci call in a forked child ---- */

typedef int (*helper_fn)(void *arg, FILE *out, struct err **e);

/*
 * Run fn in a child with stdio (each -1: /dev/null) and every signal
 * unblocked; what it writes to out comes back in *text.  Returns 0 when
 * fn succeeded, -1 when it failed (*text is then its error message).
 */
static int run_helper(helper_fn fn, void *arg, const int stdio[3], char **text)
{
	int p[2];
	pid_t pid;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int ws = 0, pidfd;
	long long deadline = now_ms() + AGENT_HELPER_MS;

	*text = NULL;
	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		*text = strdup(strerror(errno));
		return -1;
	}
	if (pid == 0) {
		struct err *e = NULL;
		sigset_t none;
		FILE *out;
		int null = open("/dev/null", O_RDWR);

		close(p[0]);
		sigemptyset(&none);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int i = 0; i < 3; i++)
			dup2(stdio && stdio[i] >= 0 ? stdio[i] : null, i);
		out = fdopen(p[1], "w");
		if (out == NULL)
			_exit(2);
		if (fn(arg, out, &e) < 0) {
			fputs(e && e->msg ? e->msg : "failed", out);
			fclose(out);
			_exit(1);
		}
		fclose(out);
		_exit(0);
	}
	close(p[1]);
	/* Until the helper exits: not until the pipe's EOF, since the
	 * container process it made holds a copy until it execs. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (bool gone = false;;) {
		struct pollfd pf[2] = {{p[0], POLLIN, 0}, {pidfd, POLLIN, 0}};
		long long left = deadline - now_ms();
		ssize_t n;
		if (!gone && (left <= 0 || poll(pf, pidfd >= 0 ? 2 : 1, (int)left) == 0)) {
			kill(pid, SIGKILL);
			gone = true;
		}
		if (pf[1].revents)
			gone = true;
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap ? cap * 2 : 8192);
			if (nb == NULL)
				break;
			buf = nb;
			cap = cap ? cap * 2 : 8192;
		}
		n = read(p[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0 || gone)
			break;
	}
	close(p[0]);
	if (pidfd >= 0)
		close(pidfd);
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (buf == NULL)
		buf = strdup("");
	else
		buf[len] = '\0';
	*text = buf;
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
		return 0;
	if (buf && buf[0] == '\0') {
		free(buf);
		if (asprintf(text, "the agent's helper %s %d", WIFSIGNALED(ws) ? "was killed by signal" : "exited",
			     WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws)) < 0)
			*text = NULL;
	}
	return -1;
}

static int read_pid_file(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return atoi(buf);
}

/* A Unix socket the container's terminal (its pty master) is sent to by
 * libcasulo-oci, accepted once the helper is done. */
static int console_listen(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int console_receive(int lfd)
{
	char byte, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&byte, 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct pollfd p = {lfd, POLLIN, 0};
	struct cmsghdr *c;
	int conn, fd = -1;

	if (poll(&p, 1, 1000) <= 0 || (conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		return -1;
	p.fd = conn;
	if (poll(&p, 1, 1000) > 0 && recvmsg(conn, &m, MSG_CMSG_CLOEXEC) > 0)
		for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
			    c->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(&fd, CMSG_DATA(c), sizeof(int));
	close(conn);
	return fd;
}

/* ---- processes attached to sessions ---- */

struct stdio_pipes {
	int child[3]; /* the process's ends */
	int ours[3];  /* stdin write end, stdout and stderr read ends */
};

static void pipes_close(int *fds)
{
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

static int pipes_make(struct stdio_pipes *sp)
{
	for (int i = 0; i < 3; i++)
		sp->child[i] = sp->ours[i] = -1;
	for (int i = 0; i < 3; i++) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0) {
			pipes_close(sp->child);
			pipes_close(sp->ours);
			return -1;
		}
		sp->child[i] = i == 0 ? p[0] : p[1];
		sp->ours[i] = i == 0 ? p[1] : p[0];
		fcntl(sp->ours[i], F_SETFL, O_NONBLOCK);
	}
	return 0;
}

static void proc_attach(struct session *s, pid_t pid, struct stdio_pipes *sp, int pty)
{
	struct proc *p = &s->proc;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->pty = pty;
	if (pty >= 0) {
		fcntl(pty, F_SETFL, O_NONBLOCK);
		p->out_fd = pty;
		p->err_fd = -1;
		vmc_sink_init(&p->in, dup(pty));
	} else {
		vmc_sink_init(&p->in, sp->ours[0]);
		p->out_fd = sp->ours[1];
		p->err_fd = sp->ours[2];
		sp->ours[0] = sp->ours[1] = sp->ours[2] = -1;
	}
	s->has_proc = true;
}

static void proc_close_fds(struct proc *p)
{
	if (p->out_fd >= 0)
		close(p->out_fd);
	if (p->err_fd >= 0)
		close(p->err_fd);
	if (p->in.fd >= 0)
		close(p->in.fd);
	vmc_buf_free(&p->in.pending);
	p->out_fd = p->err_fd = p->in.fd = p->pty = -1;
}

static void session_close(struct session *s)
{
	debug("session %s closed", s->boot ? "boot" : "other");
	if (s->has_proc) {
		/* The host is gone: so is what it was watching. */
		if (!s->proc.exited && s->proc.pid > 0)
			kill(s->proc.pid, SIGKILL);
		proc_close_fds(&s->proc);
	}
	if (s->boot && !A.init_done) {
		init_warn("the host closed the container's session: powering off");
		init_poweroff(255);
	}
	if (s->boot && A.init_done)
		init_poweroff((unsigned)A.init_status);
	vmc_conn_close(&s->conn);
	memset(s, 0, sizeof(*s));
	s->conn.fd = -1;
}

static int reply_error(struct session *s, const char *msg)
{
	struct vmc_reply r = {.ok = false, .error = (char *)msg};
	char *text = vmc_reply_format(&r);
	int ret = text ? vmc_conn_send(&s->conn, VMC_REPLY, text, strlen(text)) : -ENOMEM;

	free(text);
	return ret;
}

static int reply_ok(struct session *s, int pid)
{
	struct vmc_reply r = {.ok = true, .pid = pid};
	char *text = vmc_reply_format(&r);
	int ret = text ? vmc_conn_send(&s->conn, VMC_REPLY, text, strlen(text)) : -ENOMEM;

	free(text);
	return ret;
}

/* ---- operations ---- */

struct create_args {
	const char *id;
	const char *console;
	char bundle[VMC_ID_MAX + 64];
	char pid_file[VMC_ID_MAX + 80];
};

static int do_create(void *arg, FILE *out, struct err **e)
{
	struct create_args *a = arg;
	struct oci_create_opts o = {.bundle = a->bundle, .pid_file = a->pid_file, .console_socket = a->console};

	(void)out;
	return oci_create(&guest_runtime, a->id, &o, e);
}

/* In the container's network namespace: the address the host's interface
 * had, on the guest's eth0 (moved in by linux.netDevices). */
static int do_netconf(void *arg, FILE *out, struct err **e)
{
	const struct vmc_net *net = ((const struct vmc_net **)arg)[0];
	pid_t pid = *((const pid_t **)arg)[1];
	struct ipconfig c = {.enabled = true};
	char path[64], msg[160];
	int fd, r;

	(void)out;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		return err_set(e, errno, "network namespace of %d", (int)pid);
	inet_pton(AF_INET, net->address, &c.client);
	if (net->gateway[0])
		inet_pton(AF_INET, net->gateway, &c.gateway);
	c.netmask.s_addr = net->prefix == 0 ? 0 : htonl(~0U << (32 - net->prefix));
	snprintf(c.device, sizeof(c.device), "eth0");
	if (net->mtu) {
		struct ifreq ifr = {.ifr_mtu = (int)net->mtu};
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "eth0");
		if (s < 0 || ioctl(s, SIOCSIFMTU, &ifr) < 0)
			return err_set(e, errno, "eth0: mtu %u", net->mtu);
		close(s);
	}
	if ((r = ipconfig_apply(&c, 2000, msg, sizeof(msg))) < 0)
		return err_setx(e, -r, "eth0 %s/%u: %s", net->address, net->prefix, msg);
	return 0;
}

/* The cgroup2 path of pid ("" when unknown). */
static void cgroup_of(pid_t pid, char *out, size_t size)
{
	char path[64], buf[600];
	int fd;
	ssize_t n;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 3 || strncmp(buf, "0::", 3) != 0)
		return;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(out, size, "%s", buf + 3);
}

/* Did the cgroup's OOM killer kill anything (memory.events oom_kill)? */
static bool had_oom_kill(const char *cgroup)
{
	char path[600], buf[512], *at;
	int fd;
	ssize_t n;

	if (cgroup[0] == '\0')
		return false;
	snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.events", cgroup);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	at = strstr(buf, "oom_kill ");
	return at && atoll(at + strlen("oom_kill ")) > 0;
}

static void rmdir_bundle(const char *dir)
{
	char path[VMC_ID_MAX + 80];

	snprintf(path, sizeof(path), "%s/config.json", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/pid", dir);
	unlink(path);
	rmdir(dir);
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		r = -EIO;
	close(fd);
	return r;
}

/*
 * A process libcasulo-oci starts through fn (the init, or an exec'd
 * one): its stdio on pipes of ours, or its terminal sent to a socket of
 * ours (*console_slot, fn's argument, names it).  On success *pid and
 * the ends the agent keeps; on failure *text says why.
 */
static int spawn_process(const char *what, helper_fn fn, void *arg, const char **console_slot, bool terminal,
			 const char *pid_file, struct stdio_pipes *sp, int *pty, pid_t *pid, char **text)
{
	char console[64];
	int lfd = -1, r;

	*pty = -1;
	*pid = -1;
	*text = NULL;
	for (int i = 0; i < 3; i++)
		sp->child[i] = sp->ours[i] = -1;
	if (terminal) {
		snprintf(console, sizeof(console), AGENT_DIR "/console-%u.sock", ++A.seq);
		*console_slot = console;
		if ((lfd = console_listen(console)) < 0) {
			*text = strdup("cannot listen for the terminal");
			return -1;
		}
	} else if (pipes_make(sp) < 0) {
		*text = strdup("cannot make pipes");
		return -1;
	}
	r = run_helper(fn, arg, sp->child, text);
	pipes_close(sp->child);
	if (r == 0 && terminal && (*pty = console_receive(lfd)) < 0) {
		r = -1;
		free(*text);
		*text = NULL;
		if (asprintf(text, "%s: no terminal came from the process", what) < 0)
			*text = NULL;
	}
	if (lfd >= 0) {
		close(lfd);
		unlink(console);
	}
	*console_slot = NULL;
	if (r == 0 && (*pid = read_pid_file(pid_file)) <= 0) {
		r = -1;
		free(*text);
		if (asprintf(text, "%s: no pid file from the runtime", what) < 0)
			*text = NULL;
	}
	unlink(pid_file);
	if (r < 0) {
		pipes_close(sp->ours);
		if (*pty >= 0)
			close(*pty);
		*pty = -1;
		return -1;
	}
	free(*text);
	*text = NULL;
	return 0;
}

static void op_create(struct session *s, struct vmc_request *req)
{
	struct create_args a = {.id = req->id};
	struct stdio_pipes sp;
	char config[VMC_ID_MAX + 80];
	const char *spec_text;
	char *text = NULL;
	bool terminal = false;
	int pty, r;
	pid_t pid;
	json_object *proc, *t;

	/* The VM's first container on the boot session; a pod's others each
	 * on a session of its own, which then carries its init's stdio. */
	if (s->boot ? A.created : !A.created || s->requested_before) {
		reply_error(s, "create: the first container on the boot session, a pod's others on sessions of "
			       "their own");
		return;
	}
	snprintf(a.bundle, sizeof(a.bundle), AGENT_BUNDLE "-%s", req->id);
	snprintf(a.pid_file, sizeof(a.pid_file), "%s/pid", a.bundle);
	if (mkdir(a.bundle, 0700) < 0) {
		reply_error(s, errno == EEXIST ? "create: a container with this id exists in the VM"
					       : "create: cannot make the bundle's directory");
		return;
	}
	if (json_object_object_get_ex(req->spec, "process", &proc) && json_object_object_get_ex(proc, "terminal", &t))
		terminal = json_object_get_boolean(t);
	spec_text = json_object_to_json_string_ext(req->spec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	snprintf(config, sizeof(config), "%s/config.json", a.bundle);
	if (write_text(config, spec_text) < 0) {
		reply_error(s, "create: cannot write the guest's config.json");
		return;
	}
	r = spawn_process("create", do_create, &a, &a.console, terminal, a.pid_file, &sp, &pty, &pid, &text);
	if (r == 0 && req->net.present) {
		const void *args[2] = {&req->net, &pid};
		if ((r = run_helper(do_netconf, args, NULL, &text)) < 0) {
			char *msg = NULL;
			if (asprintf(&msg, "container network: %s", text) >= 0) {
				free(text);
				text = msg;
			}
			kill(pid, SIGKILL);
			pipes_close(sp.ours);
			if (pty >= 0)
				close(pty);
		}
		if (r == 0) {
			free(text);
			text = NULL;
		}
	}
	if (r < 0) {
		reply_error(s, text ? text : "create failed");
		free(text);
		rmdir_bundle(a.bundle);
		return;
	}
	debug("created %s", req->id);
	if (!A.created)
		snprintf(A.id, sizeof(A.id), "%s", req->id);
	A.created = true;
	s->ctr = true;
	snprintf(s->id, sizeof(s->id), "%s", req->id);
	proc_attach(s, pid, &sp, pty);
	cgroup_of(pid, s->cgroup, sizeof(s->cgroup));
	reply_ok(s, pid);
}

static int do_start(void *arg, FILE *out, struct err **e)
{
	(void)arg;
	(void)out;
	return oci_start(&guest_runtime, target, e);
}

struct kill_args {
	int sig;
	bool all;
};

static int do_kill(void *arg, FILE *out, struct err **e)
{
	struct kill_args *k = arg;

	(void)out;
	return oci_kill(&guest_runtime, target, k->sig, k->all, e);
}

static int do_ps(void *arg, FILE *out, struct err **e)
{
	struct vmc_request *req = arg;
	struct vmc_reply reply = {.ok = true};
	char *table = NULL, *text;
	size_t tlen = 0;
	pid_t *pids = NULL;
	size_t n = 0;
	FILE *t;
	int r;

	if ((r = oci_pids(&guest_runtime, target, &pids, &n, e)) < 0)
		return r;
	t = open_memstream(&table, &tlen);
	if (t == NULL)
		return err_set(e, ENOMEM, "ps");
	r = oci_ps_table(pids, n, req->ps_args, req->n_ps_args, t, e);
	fclose(t);
	if (r == 0) {
		reply.pids = calloc(n ? n : 1, sizeof(int));
		for (size_t i = 0; reply.pids && i < n; i++)
			reply.pids[i] = (int)pids[i];
		reply.n_pids = n;
		reply.table = table;
		text = vmc_reply_format(&reply);
		if (text)
			fputs(text, out);
		free(text);
		free(reply.pids);
	}
	free(table);
	free(pids);
	return r;
}

static int do_update(void *arg, FILE *out, struct err **e)
{
	struct vmc_request *req = arg;
	const char *text = json_object_to_json_string_ext(req->resources, JSON_C_TO_STRING_PLAIN);
	struct cgroup_resources res;
	int r;

	(void)out;
	if ((r = spec_parse_resources(text, strlen(text), &res, e)) < 0)
		return r;
	r = oci_update(&guest_runtime, target, &res, e);
	cgroup_resources_clear(&res);
	return r;
}

struct exec_args {
	struct vmc_request *req;
	char process_file[64];
	char pid_file[64];
	const char *console;
};

static int do_exec(void *arg, FILE *out, struct err **e)
{
	struct exec_args *x = arg;
	struct vmc_request *q = x->req;
	struct oci_exec_opts o = {
	    .process_file = x->process_file[0] ? x->process_file : NULL,
	    .console_socket = x->console,
	    .pid_file = x->pid_file,
	    .cwd = q->cwd,
	    .env = q->env,
	    .n_env = q->n_env,
	    .tty = q->tty,
	    .has_tty = q->has_tty,
	    .user = q->user,
	    .additional_gids = q->additional_gids,
	    .n_additional_gids = q->n_additional_gids,
	    .caps = q->caps,
	    .n_caps = q->n_caps,
	    .apparmor = q->apparmor,
	    .process_label = q->process_label,
	    .no_new_privs = q->no_new_privs,
	    .detach = true,
	    .args = q->args,
	    .n_args = q->n_args,
	};
	int status = 0;

	(void)out;
	return oci_exec(&guest_runtime, target, &o, &status, e);
}

static void op_exec(struct session *s, struct vmc_request *req)
{
	struct exec_args x = {.req = req};
	struct stdio_pipes sp;
	bool terminal = req->has_tty && req->tty;
	char *text = NULL;
	int pty, r;
	pid_t pid;
	json_object *t;

	if (!A.created) {
		reply_error(s, "exec: no container");
		return;
	}
	A.seq++;
	snprintf(x.pid_file, sizeof(x.pid_file), AGENT_DIR "/exec-%u.pid", A.seq);
	if (req->process) {
		snprintf(x.process_file, sizeof(x.process_file), AGENT_DIR "/exec-%u.json", A.seq);
		if (write_text(x.process_file, json_object_to_json_string_ext(req->process, JSON_C_TO_STRING_PLAIN)) <
		    0) {
			reply_error(s, "exec: cannot write the process file");
			return;
		}
		if (!req->has_tty && json_object_object_get_ex(req->process, "terminal", &t))
			terminal = json_object_get_boolean(t);
	}
	r = spawn_process("exec", do_exec, &x, &x.console, terminal, x.pid_file, &sp, &pty, &pid, &text);
	if (x.process_file[0])
		unlink(x.process_file);
	if (r < 0) {
		reply_error(s, text ? text : "exec failed");
		free(text);
		return;
	}
	if (pty >= 0 && req->rows && req->cols) {
		struct winsize ws = {.ws_row = (unsigned short)req->rows, .ws_col = (unsigned short)req->cols};
		ioctl(pty, TIOCSWINSZ, &ws);
	}
	proc_attach(s, pid, &sp, pty);
	reply_ok(s, pid);
}

/* A pod's container, stopped, goes from the guest: its state, cgroup and
 * bundle (the VM's first goes with the VM). */
static int do_delete(void *arg, FILE *out, struct err **e)
{
	(void)arg;
	(void)out;
	return oci_delete(&guest_runtime, target, true, e);
}

static void op_simple(struct session *s, helper_fn fn, void *arg, bool reply_is_text)
{
	char *text = NULL;
	int r = run_helper(fn, arg, NULL, &text);

	if (r < 0)
		reply_error(s, text ? text : "failed");
	else if (reply_is_text && text && text[0])
		(void)vmc_conn_send(&s->conn, VMC_REPLY, text, strlen(text));
	else
		reply_ok(s, 0);
	free(text);
}

static void handle_request(struct session *s, const uint8_t *payload, size_t len)
{
	struct vmc_request req;
	struct err *e = NULL;
	struct kill_args k;

	debug("request: %.*s", (int)(len > 200 ? 200 : len), (const char *)payload);
	if (vmc_request_parse((const char *)payload, len, &req, &e) < 0) {
		reply_error(s, e->msg);
		err_free(&e);
		if (!s->boot)
			s->done = true;
		return;
	}
	if (req.op != VMC_OP_CREATE && !A.created) {
		reply_error(s, "no container yet");
		s->done = !s->boot;
		vmc_request_clear(&req);
		return;
	}
	target = req.id ? req.id : s->ctr ? s->id : A.id;
	switch (req.op) {
	case VMC_OP_CREATE:
		op_create(s, &req);
		break;
	case VMC_OP_START:
		op_simple(s, do_start, NULL, false);
		break;
	case VMC_OP_KILL:
		k.sig = req.signal;
		k.all = req.all;
		op_simple(s, do_kill, &k, false);
		break;
	case VMC_OP_PS:
		op_simple(s, do_ps, &req, true);
		break;
	case VMC_OP_UPDATE:
		op_simple(s, do_update, &req, false);
		break;
	case VMC_OP_EXEC:
		op_exec(s, &req);
		break;
	case VMC_OP_DELETE:
		op_simple(s, do_delete, NULL, false);
		if (strcmp(target, A.id) != 0) {
			char bundle[VMC_ID_MAX + 64];
			snprintf(bundle, sizeof(bundle), AGENT_BUNDLE "-%s", target);
			rmdir_bundle(bundle);
		}
		break;
	}
	s->requested_before = true;
	/* One request per session but the boot one's; an exec goes on. */
	if (!s->boot && !s->has_proc)
		s->done = true;
	vmc_request_clear(&req);
}

static int on_frame(void *ctx, const struct vmc_header *h, const uint8_t *p)
{
	struct session *s = ctx;
	struct proc *pr = &s->proc;
	struct vmc_resize rs;
	char why[96];
	int sig;

	switch (h->type) {
	case VMC_REQUEST:
		/* A container's session (the boot one, a pod container's):
		 * create, then start; others: one request. */
		if (!s->boot && !s->ctr && s->requested)
			return -EPROTO;
		s->requested = true;
		handle_request(s, p, h->len);
		return 0;
	case VMC_STDIN:
		if (!s->has_proc || pr->in_eof)
			return 0;
		if (h->len == 0) {
			pr->in_eof = true;
			return 0;
		}
		return vmc_sink_write(&pr->in, p, h->len);
	case VMC_RESIZE:
		if (vmc_resize_decode(p, &rs, why, sizeof(why)) < 0)
			return -EPROTO;
		if (s->has_proc && pr->pty >= 0) {
			struct winsize ws = {.ws_row = rs.rows, .ws_col = rs.cols};
			ioctl(pr->pty, TIOCSWINSZ, &ws);
		}
		return 0;
	case VMC_SIGNAL:
		if (vmc_signal_decode(p, &sig, why, sizeof(why)) < 0)
			return -EPROTO;
		if (s->has_proc && !pr->exited && pr->pid > 0)
			kill(pr->pid, sig);
		return 0;
	default:
		return -EPROTO;
	}
}

/* ---- the loop ---- */

static struct session *session_new(int fd, bool boot)
{
	for (size_t i = 0; i < AGENT_SESSIONS; i++) {
		struct session *s = &A.s[i];
		if (s->used)
			continue;
		memset(s, 0, sizeof(*s));
		s->used = true;
		s->boot = boot;
		vmc_conn_init(&s->conn, fd, VMC_FROM_HOST);
		return s;
	}
	close(fd);
	return NULL;
}

/* Read what a process wrote into frames of type; false when there was
 * nothing (yet, or any more). */
static bool pump(struct session *s, int *fd, uint16_t type)
{
	static uint8_t buf[VMC_DATA_MAX];
	ssize_t n = read(*fd, buf, sizeof(buf));

	if (n > 0) {
		(void)vmc_conn_send(&s->conn, type, buf, (size_t)n);
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	/* EOF (EIO on a pty whose last slave closed) */
	if (*fd == s->proc.pty)
		s->proc.pty = -1;
	close(*fd);
	*fd = -1;
	return false;
}

/* Once a process has exited and its output is out (EOF, or the drain
 * time is over): EXIT. */
static void proc_finish(struct session *s)
{
	struct proc *p = &s->proc;

	if (!p->exited || s->done)
		return;
	if ((p->out_fd >= 0 || p->err_fd >= 0) && now_ms() < p->exit_ms + AGENT_DRAIN_MS)
		return;
	/* What is readable now still goes. */
	for (int round = 0; round < 64 && p->out_fd >= 0 && pump(s, &p->out_fd, VMC_STDOUT); round++)
		;
	for (int round = 0; round < 64 && p->err_fd >= 0 && pump(s, &p->err_fd, VMC_STDERR); round++)
		;
	/* The host mirrors it where its callers look (containerd's shim
	 * reports an OOM kill from the host cgroup's memory.events). */
	if (s->ctr && had_oom_kill(s->cgroup))
		(void)vmc_conn_send(&s->conn, VMC_OOM, NULL, 0);
	(void)vmc_conn_send_u32(&s->conn, VMC_EXIT, (uint32_t)p->status);
	debug("process %d: EXIT %d sent", (int)p->pid, p->status);
	proc_close_fds(p);
	s->done = true;
	if (s->boot) {
		A.init_done = true;
		A.init_status = p->status;
		A.linger_until = now_ms() + AGENT_LINGER_MS;
	}
}

static void reap(void)
{
	struct signalfd_siginfo si;
	int ws;
	pid_t pid;

	while (read(A.sig_fd, &si, sizeof(si)) > 0)
		;
	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
		for (size_t i = 0; i < AGENT_SESSIONS; i++) {
			struct session *s = &A.s[i];
			if (!s->used || !s->has_proc || s->proc.pid != pid || s->proc.exited)
				continue;
			s->proc.exited = true;
			s->proc.status = WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : WEXITSTATUS(ws);
			s->proc.exit_ms = now_ms();
			debug("process %d exited: %d", (int)pid, s->proc.status);
		}
	}
}

enum slot_kind { SLOT_LISTEN, SLOT_SIG, SLOT_CONN, SLOT_OUT, SLOT_ERR, SLOT_IN };

static void loop(void)
{
	struct pollfd pfd[3 + AGENT_SESSIONS * 4];
	struct {
		enum slot_kind kind;
		struct session *s;
	} slot[3 + AGENT_SESSIONS * 4];

	for (;;) {
		size_t n = 0;
		long long now = now_ms(), wake = -1;

		pfd[n] = (struct pollfd){A.listen_fd, POLLIN, 0};
		slot[n++].kind = SLOT_LISTEN;
		pfd[n] = (struct pollfd){A.sig_fd, POLLIN, 0};
		slot[n++].kind = SLOT_SIG;
		for (size_t i = 0; i < AGENT_SESSIONS; i++) {
			struct session *s = &A.s[i];
			struct proc *p = &s->proc;
			bool room = s->conn.out.len < VMC_BACKLOG_MAX;
			if (!s->used)
				continue;
			if (s->has_proc) {
				proc_finish(s);
				if (p->exited && !s->done)
					wake = wake < 0 ? p->exit_ms + AGENT_DRAIN_MS : wake;
				if (p->in_eof && p->in.pending.len == 0 && p->in.fd >= 0 && p->pty < 0) {
					close(p->in.fd);
					p->in.fd = -1;
				}
			}
			if (s->done && s->conn.out.len == 0 && !s->boot) {
				session_close(s);
				continue;
			}
			pfd[n] =
			    (struct pollfd){s->conn.fd,
					    (short)((!s->has_proc || p->in.pending.len < VMC_BACKLOG_MAX ? POLLIN : 0) |
						    (s->conn.out.len ? POLLOUT : 0)),
					    0};
			slot[n].kind = SLOT_CONN;
			slot[n++].s = s;
			if (!s->has_proc)
				continue;
			if (p->out_fd >= 0 && room) {
				pfd[n] = (struct pollfd){p->out_fd, POLLIN, 0};
				slot[n].kind = SLOT_OUT;
				slot[n++].s = s;
			}
			if (p->err_fd >= 0 && room) {
				pfd[n] = (struct pollfd){p->err_fd, POLLIN, 0};
				slot[n].kind = SLOT_ERR;
				slot[n++].s = s;
			}
			if (p->in.fd >= 0 && p->in.pending.len) {
				pfd[n] = (struct pollfd){p->in.fd, POLLOUT, 0};
				slot[n].kind = SLOT_IN;
				slot[n++].s = s;
			}
		}
		if (A.init_done) {
			if (now >= A.linger_until)
				init_poweroff((unsigned)A.init_status);
			wake = wake < 0 || A.linger_until < wake ? A.linger_until : wake;
		}
		if (poll(pfd, n, wake < 0 ? -1 : (int)(wake > now ? wake - now : 0)) < 0 && errno != EINTR)
			init_warn("poll: %s", strerror(errno));
		for (size_t i = 0; i < n; i++) {
			struct session *s = slot[i].s;
			char why[128];
			int r;

			if (pfd[i].revents == 0)
				continue;
			switch (slot[i].kind) {
			case SLOT_LISTEN: {
				int fd = accept4(A.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
				if (fd >= 0)
					session_new(fd, false);
				break;
			}
			case SLOT_SIG:
				reap();
				break;
			case SLOT_CONN:
				if (!s->used)
					break;
				if (pfd[i].revents & POLLOUT && vmc_conn_flush(&s->conn) < 0) {
					session_close(s);
					break;
				}
				if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
					break;
				why[0] = '\0';
				r = vmc_conn_read(&s->conn, on_frame, s, why, sizeof(why));
				if (r == -EPROTO)
					init_warn("session: %s", why[0] ? why : "protocol error");
				if (r < 0)
					session_close(s);
				else
					(void)vmc_conn_flush(&s->conn);
				break;
			case SLOT_OUT:
				if (s->used && s->proc.out_fd >= 0)
					pump(s, &s->proc.out_fd, VMC_STDOUT);
				break;
			case SLOT_ERR:
				if (s->used && s->proc.err_fd >= 0)
					pump(s, &s->proc.err_fd, VMC_STDERR);
				break;
			case SLOT_IN:
				if (s->used)
					vmc_sink_flush(&s->proc.in);
				break;
			}
		}
		for (size_t i = 0; i < AGENT_SESSIONS; i++)
			if (A.s[i].used && A.s[i].conn.out.len)
				(void)vmc_conn_flush(&A.s[i].conn);
	}
}

void agent_run(const char *cmdline)
{
	char *hello;
	struct session *boot;
	int fd;

	debug_on = strstr(cmdline, "casulo.debug") != NULL;
	for (size_t i = 0; i < AGENT_SESSIONS; i++)
		A.s[i].conn.fd = -1;
	debug("agent starting");
	setup();
	debug("set up");
	A.listen_fd = vsock_listen(VMC_AGENT_PORT);
	fd = vsock_connect_host(VMC_BOOT_PORT);
	if (fd < 0 || A.listen_fd < 0 || A.sig_fd < 0) {
		init_warn("cannot reach the host over vsock: %s", strerror(errno));
		init_poweroff(255);
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	boot = session_new(fd, true);
	hello = vmc_hello_format();
	if (boot == NULL || hello == NULL || vmc_conn_send(&boot->conn, VMC_HELLO, hello, strlen(hello)) < 0)
		init_poweroff(255);
	free(hello);
	(void)vmc_conn_flush(&boot->conn);
	loop();
	init_poweroff(255);
}
