/* The monitor's relay: a process's stdio between the caller's
 * descriptors and its session with the agent, signals forwarded, the
 * terminal's size followed, the exit status returned. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/file.h"
#include "common/log.h"
#include "oci/container.h"
#include "vmc/internal.h"

/* After the process's EXIT, how long the VM may take to power off. */
#define VM_STOP_MS 10000

void vmc_stdio_plain(struct vmc_stdio *io)
{
	memset(io, 0, sizeof(*io));
	io->in = 0;
	io->out = 1;
	io->err = 2;
	io->winsize_fd = -1;
}

int vmc_stdio_terminal(struct vmc_stdio *io, const char *console_socket, struct err **e)
{
	struct termios t;

	memset(io, 0, sizeof(*io));
	io->terminal = true;
	io->err = -1;
	if (console_socket == NULL) {
		/* Our own terminal, raw: the guest's pty does the line
		 * discipline, echo included. */
		io->in = 0;
		io->out = 1;
		io->winsize_fd = isatty(0) ? 0 : -1;
		if (io->winsize_fd == 0 && tcgetattr(0, &io->saved) == 0) {
			t = io->saved;
			cfmakeraw(&t);
			io->raw = tcsetattr(0, TCSANOW, &t) == 0;
		}
		return 0;
	}
	{
		char name[128];
		int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), s = -1, r;

		if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0 ||
		    (s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
			r = err_set(e, errno, "process.terminal: a host pty");
			if (m >= 0)
				close(m);
			return r;
		}
		if (tcgetattr(s, &t) == 0) {
			cfmakeraw(&t);
			tcsetattr(s, TCSANOW, &t);
		}
		r = terminal_send(console_socket, m, e);
		close(m);
		if (r < 0) {
			close(s);
			return r;
		}
		/* The slave as our controlling terminal: when the caller
		 * resizes the master, SIGWINCH tells us. */
		if (setsid() >= 0)
			(void)ioctl(s, TIOCSCTTY, 0);
		io->in = s;
		io->out = s;
		io->winsize_fd = s;
	}
	return 0;
}

void vmc_stdio_restore(struct vmc_stdio *io)
{
	if (io->raw)
		tcsetattr(io->in, TCSANOW, &io->saved);
	io->raw = false;
}

struct relay_state {
	struct vmc_relay *r;
	struct vmc_sink out, err;
	bool exited, start_pending, started, oom;
	int status;
	char *failure; /* why it ended without an EXIT */
};

static void say(struct relay_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct relay_state *s, const char *fmt, ...)
{
	char line[2048];
	int n = snprintf(line, sizeof(line), "casulo-runtime: container '%s': ", s->r->id);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	log_error("%s", line + strlen("casulo-runtime: "));
	strncat(line, s->r->io.terminal ? "\r\n" : "\n", sizeof(line) - strlen(line) - 1);
	(void)vmc_sink_write(s->r->io.err >= 0 ? &s->err : &s->out, line, strlen(line));
}

static int on_frame(void *ctx, const struct vmc_header *h, const uint8_t *p)
{
	struct relay_state *s = ctx;
	struct vmc_reply reply;
	struct err *e = NULL;
	char why[96];

	switch (h->type) {
	case VMC_STDOUT:
		return vmc_sink_write(&s->out, p, h->len);
	case VMC_STDERR:
		return vmc_sink_write(s->r->io.err >= 0 ? &s->err : &s->out, p, h->len);
	case VMC_EXIT:
		if (vmc_exit_decode(p, &s->status, why, sizeof(why)) < 0)
			return -EPROTO;
		s->exited = true;
		return 0;
	case VMC_OOM:
		s->oom = true;
		return 0;
	case VMC_REPLY:
		if (!s->start_pending)
			return -EPROTO;
		s->start_pending = false;
		if (vmc_reply_parse((const char *)p, h->len, &reply, &e) < 0) {
			say(s, "start: %s", e->msg);
			err_free(&e);
			return -EPROTO;
		}
		if (!reply.ok)
			say(s, "start: %s", reply.error);
		else
			s->started = true;
		vmc_reply_clear(&reply);
		/* `start` waits until no one reads the fifo: done. */
		if (s->r->fifo_fd >= 0) {
			close(s->r->fifo_fd);
			s->r->fifo_fd = -1;
		}
		return 0;
	default:
		return -EPROTO;
	}
}

static void send_start(struct relay_state *s)
{
	static const char req[] = "{\"op\":\"start\"}";

	(void)vmc_conn_send(&s->r->conn, VMC_REQUEST, req, sizeof(req) - 1);
	s->start_pending = true;
}

static void send_winsize(struct relay_state *s)
{
	struct winsize ws;
	uint8_t p[4];

	if (s->r->io.winsize_fd < 0 || ioctl(s->r->io.winsize_fd, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)
		return;
	p[0] = (uint8_t)ws.ws_row;
	p[1] = (uint8_t)(ws.ws_row >> 8);
	p[2] = (uint8_t)ws.ws_col;
	p[3] = (uint8_t)(ws.ws_col >> 8);
	(void)vmc_conn_send(&s->r->conn, VMC_RESIZE, p, sizeof(p));
}

/* The VM ended (or is to end): reap it within ms, SIGKILL after. */
static int vm_reap(struct vmc_vm *vm, int ms)
{
	int ws = 0;

	if (vm->pid <= 0)
		return 0;
	if (vm->pidfd >= 0) {
		struct pollfd p = {vm->pidfd, POLLIN, 0};
		if (poll(&p, 1, ms) <= 0)
			kill(vm->pid, SIGKILL);
	} else {
		kill(vm->pid, SIGKILL);
	}
	while (waitpid(vm->pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	vm->pidfd = -1;
	vm->pid = 0;
	return ws;
}

/* The first line of a small file (a cgroup value) into buf: 0 or -errno. */
static int read_line(const char *path, char *buf, size_t size)
{
	char *text = NULL;
	size_t len = 0;
	int r = read_file(path, &text, &len);

	if (r < 0)
		return r;
	snprintf(buf, size, "%s", text);
	buf[strcspn(buf, "\n")] = '\0';
	free(text);
	return 0;
}

/*
 * The guest's OOM kill of a pod's container, mirrored in the container's
 * host cgroup (ours, cgroup2), where containerd's shim and podman's conmon
 * watch memory.events: for a moment the cgroup's limit is what it uses
 * plus a little, and a child of ours, the OOM killer's first choice
 * (oom_score_adj 1000), fills it and is killed by the kernel; the limit
 * is then put back.  (A VM of its own has its VMM in that cgroup, which
 * such a child could not be sure to outweigh: not done there.)
 */
static void mirror_oom_kill(const char *id)
{
	char self[600], dir[700], max_path[720], swap_path[720], cur_path[720], old_max[32], old_swap[32] = "",
											     current[32], limit[32];
	int ws = 0;
	pid_t pid = -1;

	if (read_line("/proc/self/cgroup", self, sizeof(self)) < 0 || strncmp(self, "0::", 3) != 0)
		return;
	snprintf(dir, sizeof(dir), "/sys/fs/cgroup%s", self + 3);
	snprintf(max_path, sizeof(max_path), "%s/memory.max", dir);
	snprintf(swap_path, sizeof(swap_path), "%s/memory.swap.max", dir);
	snprintf(cur_path, sizeof(cur_path), "%s/memory.current", dir);
	if (read_line(max_path, old_max, sizeof(old_max)) < 0 || read_line(cur_path, current, sizeof(current)) < 0)
		return;
	if (read_line(swap_path, old_swap, sizeof(old_swap)) < 0)
		old_swap[0] = '\0';
	snprintf(limit, sizeof(limit), "%llu", (strtoull(current, NULL, 10) + (16ULL << 20)) & ~4095ULL);
	if (old_swap[0])
		(void)write_file_str(swap_path, "0");
	if (write_file_str(max_path, limit) == 0 && (pid = fork()) == 0) {
		(void)write_file_str("/proc/self/oom_score_adj", "1000");
		for (int i = 0; i < 256; i++) {
			char *chunk = malloc(1 << 20);
			if (chunk == NULL)
				break;
			memset(chunk, i + 1, 1 << 20);
		}
		_exit(0);
	} else if (pid > 0) {
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
			;
		if (!WIFSIGNALED(ws))
			log_warn("container '%s': its OOM kill in the guest could not be shown in the host cgroup", id);
	}
	(void)write_file_str(max_path, old_max);
	if (old_swap[0])
		(void)write_file_str(swap_path, old_swap);
}

int vmc_relay_run(struct vmc_relay *r)
{
	struct relay_state s = {.r = r, .status = 255};
	bool in_open = r->io.in >= 0, vm_gone = false, broken = false;
	pid_t vm_pid = r->vm ? r->vm->pid : 0;
	sigset_t all;
	int sfd, vm_ws = 0;
	char why[128];

	vmc_sink_init(&s.out, r->io.out);
	vmc_sink_init(&s.err, r->io.err);
	/* Every signal comes through the signalfd; SIGPIPE is ours to ignore
	 * (a caller that stopped reading), not the container's. */
	signal(SIGPIPE, SIG_IGN);
	sigfillset(&all);
	sigdelset(&all, SIGPIPE);
	container_block_signals(NULL);
	sfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
	if (r->start_now)
		send_start(&s);
	if (r->io.terminal)
		send_winsize(&s);
	while (!s.exited) {
		struct pollfd p[5];
		size_t n = 0, ic = 0, iin = 99, ififo = 99, isig = 99, ivm = 99;
		int rr;

		(void)vmc_conn_flush(&r->conn);
		p[ic = n++] = (struct pollfd){r->conn.fd, (short)(POLLIN | (r->conn.out.len ? POLLOUT : 0)), 0};
		if (in_open && r->conn.out.len < VMC_BACKLOG_MAX)
			p[iin = n++] = (struct pollfd){r->io.in, POLLIN, 0};
		if (r->fifo_fd >= 0 && !s.start_pending && !s.started)
			p[ififo = n++] = (struct pollfd){r->fifo_fd, POLLIN, 0};
		if (sfd >= 0)
			p[isig = n++] = (struct pollfd){sfd, POLLIN, 0};
		if (r->vm && r->vm->pidfd >= 0)
			p[ivm = n++] = (struct pollfd){r->vm->pidfd, POLLIN, 0};
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[ic].revents & (POLLIN | POLLHUP | POLLERR)) {
			why[0] = '\0';
			rr = vmc_conn_read(&r->conn, on_frame, &s, why, sizeof(why));
			if (rr == -EPROTO) {
				say(&s, "the guest agent broke the protocol: %s", why[0] ? why : "unexpected frame");
				broken = true;
				break;
			}
			if (rr < 0 && !s.exited) {
				if (r->vm == NULL)
					say(&s, "%s",
					    "the session with the guest agent ended before the process did "
					    "(its VM stopped?)");
				break;
			}
		}
		if (iin < n && p[iin].revents) {
			uint8_t buf[VMC_DATA_MAX];
			ssize_t got = read(r->io.in, buf, sizeof(buf));
			if (got > 0) {
				(void)vmc_conn_send(&r->conn, VMC_STDIN, buf, (size_t)got);
			} else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
				in_open = false;
				/* A terminal's input does not end: only a pipe's. */
				if (!r->io.terminal)
					(void)vmc_conn_send(&r->conn, VMC_STDIN, NULL, 0);
			}
		}
		if (ififo < n && p[ififo].revents) {
			char c;
			if (read(r->fifo_fd, &c, 1) == 1)
				send_start(&s);
		}
		if (isig < n && p[isig].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGWINCH)
					send_winsize(&s);
				else if (si.ssi_signo != SIGCHLD && si.ssi_signo != SIGPIPE && si.ssi_signo != SIGURG)
					(void)vmc_conn_send_u32(&r->conn, VMC_SIGNAL, si.ssi_signo);
			}
		}
		if (ivm < n && p[ivm].revents) {
			vm_ws = vm_reap(r->vm, 0);
			vm_gone = true;
			break;
		}
	}
	if (broken && r->vm && !vm_gone) {
		/* Said why already: a guest that breaks the protocol is not
		 * waited for. */
		kill(r->vm->pid, SIGKILL);
		(void)vm_reap(r->vm, 0);
		vm_gone = true;
	} else if (!s.exited && r->vm) {
		char *msg;
		/* The guest may still be writing its last words: let it stop. */
		if (!vm_gone) {
			vm_ws = vm_reap(r->vm, 3000);
			vm_gone = true;
		}
		msg = vmc_vm_diagnose(vm_pid, vm_ws, &s.status);
		say(&s, "%s", msg ? msg : "its VM stopped");
		free(msg);
	}
	if (s.oom && s.exited && r->vm == NULL)
		mirror_oom_kill(r->id);
	vmc_sink_drain(&s.out, 2000);
	vmc_sink_drain(&s.err, 2000);
	vmc_buf_free(&s.out.pending);
	vmc_buf_free(&s.err.pending);
	vmc_stdio_restore(&r->io);
	/* Closing the session lets the agent power the VM off. */
	vmc_conn_close(&r->conn);
	if (r->vm && !vm_gone)
		(void)vm_reap(r->vm, VM_STOP_MS);
	if (sfd >= 0)
		close(sfd);
	return s.status;
}
