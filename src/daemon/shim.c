#include "daemon/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "common/parse.h"

#define SHIM_MAX_CLIENTS 8
#define SHIM_CLIENT_BUFFER (1u << 20) /* a client further behind is dropped */
#define SHIM_INPUT_BUFFER (64u << 10) /* input the workload has not read yet */
#define SHIM_DRAIN_SECONDS 2	      /* output after the workload's end, from what it left behind */
#define SHIM_HISTORY (64u << 10)      /* the last output, replayed to each client that connects */

struct buf {
	char *data;
	size_t len;
};

static bool buf_add(struct buf *b, const char *data, size_t len, size_t cap)
{
	char *nd;

	if (b->len + len > cap)
		return false;
	nd = realloc(b->data, b->len + len);
	if (nd == NULL && b->len + len > 0)
		return false;
	memcpy(nd + b->len, data, len);
	b->data = nd;
	b->len += len;
	return true;
}

/* Write what fd takes now; false when fd is broken. */
static bool buf_flush(struct buf *b, int fd)
{
	while (b->len > 0) {
		ssize_t n = write(fd, b->data, b->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN;
		}
		memmove(b->data, b->data + n, b->len - (size_t)n);
		b->len -= (size_t)n;
	}
	return true;
}

struct shim {
	const struct shim_opts *o;
	int log_fd;
	uint64_t log_size;
	int listen_fd, sig_fd, out_fd, in_fd;
	int clients[SHIM_MAX_CLIENTS];
	struct buf client_out[SHIM_MAX_CLIENTS];
	struct buf input;
	char history[SHIM_HISTORY];
	size_t hist_len, hist_head; /* a ring: hist_head is where the next byte goes */
	pid_t child;
	bool child_done;
	int status;
};

static void log_open(struct shim *s)
{
	struct stat st;

	s->log_fd = open(s->o->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	s->log_size = s->log_fd >= 0 && fstat(s->log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void log_write(struct shim *s, const char *data, size_t len)
{
	if (s->log_fd >= 0 && s->o->log_max && s->log_size + len > s->o->log_max) {
		char old[4200];
		snprintf(old, sizeof(old), "%s.1", s->o->log);
		close(s->log_fd);
		rename(s->o->log, old);
		log_open(s);
	}
	if (s->log_fd >= 0 && write_full(s->log_fd, data, len) == 0)
		s->log_size += len;
}

static void client_drop(struct shim *s, int i)
{
	close(s->clients[i]);
	s->clients[i] = -1;
	free(s->client_out[i].data);
	s->client_out[i] = (struct buf){0};
}

static void history_add(struct shim *s, const char *data, size_t len)
{
	if (len >= SHIM_HISTORY) {
		data += len - SHIM_HISTORY;
		len = SHIM_HISTORY;
	}
	for (size_t i = 0; i < len;) {
		size_t n = MIN(len - i, SHIM_HISTORY - s->hist_head);
		memcpy(s->history + s->hist_head, data + i, n);
		s->hist_head = (s->hist_head + n) % SHIM_HISTORY;
		i += n;
	}
	s->hist_len = MIN(s->hist_len + len, SHIM_HISTORY);
}

static void output(struct shim *s, const char *data, size_t len)
{
	log_write(s, data, len);
	history_add(s, data, len);
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++) {
		if (s->clients[i] < 0)
			continue;
		if (!buf_add(&s->client_out[i], data, len, SHIM_CLIENT_BUFFER) ||
		    !buf_flush(&s->client_out[i], s->clients[i]))
			client_drop(s, i);
	}
}

/* Write a small file atomically (temporary name, then rename). */
static int write_atomic(const char *dir, const char *name, const char *text)
{
	char tmp[4200], path[4200];
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write_full(fd, text, strlen(text)) < 0 || fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	return r;
}

/* Tell casulod how the start went: "ok PID" or "error MESSAGE". */
static void ready(const struct shim_opts *o, const char *word, const char *text)
{
	char msg[1024];
	int n;

	if (o->ready_fd < 0)
		return;
	n = snprintf(msg, sizeof(msg), "%s %s\n", word, text);
	if (n > 0)
		write_full(o->ready_fd, msg, MIN((size_t)n, sizeof(msg) - 1));
	close(o->ready_fd);
}

static int mount_overlay(const struct shim_opts *o, char *why, size_t size)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		snprintf(why, size, "private mount namespace: %s", strerror(errno));
		return -1;
	}
	if (mount("overlay", o->overlay_target, "overlay", 0, o->overlay_options) < 0) {
		snprintf(why, size, "overlay mount on '%s': %s", o->overlay_target, strerror(errno));
		return -1;
	}
	return 0;
}

/* The forked workload: stdio on the pipes, its own session, killed with
 * the shim.  Reports an exec failure's errno on err_fd. */
static void __attribute__((noreturn))
exec_workload(const struct shim_opts *o, int in_fd, int out_fd, int err_fd, pid_t shim)
{
	sigset_t none;
	int stderr_fd = out_fd, e;

	setsid();
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != shim)
		_exit(127);
	if (o->stderr_file) {
		stderr_fd = open(o->stderr_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (stderr_fd < 0)
			stderr_fd = out_fd;
	}
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(stderr_fd, 2) < 0)
		_exit(127);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Only stdio and the exec-error pipe go on; it closes on exec. */
	for (int fd = 3; fd < 1024; fd++)
		if (fd != err_fd)
			close(fd);
	execv(o->argv[0], o->argv);
	e = errno;
	write_full(err_fd, &e, sizeof(e));
	_exit(127);
}

static int start_workload(struct shim *s, char *why, size_t size)
{
	int in_pipe[2], out_pipe[2], err_pipe[2], e = 0;
	pid_t me = getpid();
	ssize_t n;

	if (pipe2(in_pipe, O_CLOEXEC) < 0 || pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
		snprintf(why, size, "pipe: %s", strerror(errno));
		return -1;
	}
	s->child = fork();
	if (s->child < 0) {
		snprintf(why, size, "fork: %s", strerror(errno));
		return -1;
	}
	if (s->child == 0)
		exec_workload(s->o, in_pipe[0], out_pipe[1], err_pipe[1], me);
	close(in_pipe[0]);
	close(out_pipe[1]);
	close(err_pipe[1]);
	n = read(err_pipe[0], &e, sizeof(e));
	close(err_pipe[0]);
	s->in_fd = in_pipe[1];
	s->out_fd = out_pipe[0];
	fd_set_nonblock(s->in_fd, 1);
	fd_set_nonblock(s->out_fd, 1);
	if (n == (ssize_t)sizeof(e)) {
		snprintf(why, size, "exec '%s': %s", s->o->argv[0], strerror(e));
		return -1;
	}
	return 0;
}

static int write_state(struct shim *s)
{
	char text[256], boot[BOOT_ID_LEN];
	uint64_t shim_start = 0, child_start = 0;

	if (pid_start_time(getpid(), &shim_start) < 0 || pid_start_time(s->child, &child_start) < 0)
		return -EIO;
	proc_boot_id(boot);
	snprintf(text, sizeof(text), "shim %d %" PRIu64 "\nworkload %d %" PRIu64 "\nboot %s\n", (int)getpid(),
		 shim_start, (int)s->child, child_start, boot);
	return write_atomic(s->o->dir, SHIM_STATE_FILE, text);
}

static void reap(struct shim *s)
{
	struct signalfd_siginfo si;
	int st;

	while (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	while (!s->child_done && waitpid(s->child, &st, WNOHANG) == s->child) {
		s->child_done = true;
		s->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
}

static void accept_client(struct shim *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++)
		if (s->clients[i] < 0) {
			/* What came before it, oldest byte first. */
			size_t start = (s->hist_head + SHIM_HISTORY - s->hist_len) % SHIM_HISTORY;
			size_t first = MIN(s->hist_len, SHIM_HISTORY - start);
			s->clients[i] = fd;
			buf_add(&s->client_out[i], s->history + start, first, SHIM_CLIENT_BUFFER);
			buf_add(&s->client_out[i], s->history, s->hist_len - first, SHIM_CLIENT_BUFFER);
			if (!buf_flush(&s->client_out[i], fd))
				client_drop(s, i);
			return;
		}
	close(fd);
}

/* Returns false once the workload's output has ended. */
static bool read_output(struct shim *s)
{
	char data[16384];

	for (;;) {
		ssize_t n = read(s->out_fd, data, sizeof(data));
		if (n > 0) {
			output(s, data, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN;
	}
}

static void read_client(struct shim *s, int i)
{
	char data[4096];
	ssize_t n = read(s->clients[i], data, sizeof(data));

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_drop(s, i);
		return;
	}
	if (n > 0 && s->in_fd >= 0) {
		/* What the workload does not read in time is dropped, as a
		 * serial line without flow control would. */
		buf_add(&s->input, data, (size_t)n, SHIM_INPUT_BUFFER);
		if (!buf_flush(&s->input, s->in_fd)) {
			close(s->in_fd);
			s->in_fd = -1;
		}
	}
}

static void run_loop(struct shim *s)
{
	double drain_until = 0;

	for (;;) {
		struct pollfd p[4 + SHIM_MAX_CLIENTS];
		int n = 0, timeout = -1, idx_client[SHIM_MAX_CLIENTS];

		if (s->child_done) {
			if (drain_until == 0)
				drain_until = proc_monotonic() + SHIM_DRAIN_SECONDS;
			if (s->out_fd < 0 || proc_monotonic() >= drain_until)
				return;
			timeout = 100;
		}
		p[n++] = (struct pollfd){.fd = s->sig_fd, .events = POLLIN};
		p[n++] = (struct pollfd){.fd = s->out_fd, .events = POLLIN};
		p[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
		p[n++] = (struct pollfd){.fd = s->input.len ? s->in_fd : -1, .events = POLLOUT};
		for (int i = 0; i < SHIM_MAX_CLIENTS; i++) {
			idx_client[i] = -1;
			if (s->clients[i] < 0)
				continue;
			idx_client[i] = n;
			p[n++] = (struct pollfd){.fd = s->clients[i],
						 .events = (short)(POLLIN | (s->client_out[i].len ? POLLOUT : 0))};
		}
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
			return;
		if (p[0].revents)
			reap(s);
		if (p[1].revents && !read_output(s)) {
			close(s->out_fd);
			s->out_fd = -1;
		}
		if (p[2].revents)
			accept_client(s);
		if (p[3].revents && !buf_flush(&s->input, s->in_fd)) {
			close(s->in_fd);
			s->in_fd = -1;
			s->input.len = 0;
		}
		for (int i = 0; i < SHIM_MAX_CLIENTS; i++) {
			short rev = idx_client[i] >= 0 ? p[idx_client[i]].revents : 0;
			if (rev & POLLOUT && !buf_flush(&s->client_out[i], s->clients[i]))
				client_drop(s, i);
			if (s->clients[i] >= 0 && rev & (POLLIN | POLLHUP | POLLERR))
				read_client(s, i);
		}
	}
}

int shim_main(const struct shim_opts *o)
{
	struct shim s = {.o = o, .listen_fd = -1, .out_fd = -1, .in_fd = -1, .child = -1};
	char path[4200], why[4400], status[32];
	sigset_t mask;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	s.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++)
		s.clients[i] = -1;
	log_open(&s);
	snprintf(path, sizeof(path), "%s/%s", o->dir, SHIM_CONSOLE_SOCKET);
	s.listen_fd = unix_listen(path, SHIM_MAX_CLIENTS);
	if (s.listen_fd < 0) {
		snprintf(why, sizeof(why), "console socket %s: %s", path, strerror(-s.listen_fd));
		ready(o, "error", why);
		return 1;
	}
	chmod(path, 0600);
	if (o->overlay_target && mount_overlay(o, why, sizeof(why)) < 0) {
		ready(o, "error", why);
		return 1;
	}
	if (start_workload(&s, why, sizeof(why)) < 0) {
		ready(o, "error", why);
		if (s.child > 0)
			waitpid(s.child, NULL, 0);
		write_atomic(o->dir, SHIM_EXIT_FILE, "127\n");
		return 1;
	}
	if (write_state(&s) < 0) {
		/* The workload died before its start time could be read: it
		 * still ends as any other, with its status. */
		reap(&s);
	}
	snprintf(status, sizeof(status), "%d", (int)getpid());
	ready(o, "ok", status);
	run_loop(&s);
	while (!s.child_done) {
		int st;
		if (waitpid(s.child, &st, 0) == s.child) {
			s.child_done = true;
			s.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		} else if (errno != EINTR) {
			s.status = 255;
			break;
		}
	}
	snprintf(status, sizeof(status), "%d\n", s.status);
	write_atomic(o->dir, SHIM_EXIT_FILE, status);
	return 0;
}

int shim_parse_args(int argc, char **argv, struct shim_opts *o, struct err **e)
{
	enum { O_DIR = 256, O_LOG, O_LOG_MAX, O_STDERR, O_OVERLAY_TARGET, O_OVERLAY_OPTIONS, O_READY_FD };
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, O_DIR},
	    {"log", required_argument, NULL, O_LOG},
	    {"log-max", required_argument, NULL, O_LOG_MAX},
	    {"stderr", required_argument, NULL, O_STDERR},
	    {"overlay-target", required_argument, NULL, O_OVERLAY_TARGET},
	    {"overlay-options", required_argument, NULL, O_OVERLAY_OPTIONS},
	    {"ready-fd", required_argument, NULL, O_READY_FD},
	    {NULL, 0, NULL, 0},
	};
	uint32_t fd;
	int opt;

	*o = (struct shim_opts){.log_max = SHIM_LOG_MAX_DEFAULT, .ready_fd = -1};
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (opt) {
		case O_DIR:
			o->dir = optarg;
			break;
		case O_LOG:
			o->log = optarg;
			break;
		case O_LOG_MAX:
			if (parse_size(optarg, &o->log_max) < 0)
				return err_setx(e, EINVAL, "--log-max '%s': not a size", optarg);
			break;
		case O_STDERR:
			o->stderr_file = optarg;
			break;
		case O_OVERLAY_TARGET:
			o->overlay_target = optarg;
			break;
		case O_OVERLAY_OPTIONS:
			o->overlay_options = optarg;
			break;
		case O_READY_FD:
			if (parse_u32(optarg, &fd) < 0 || fd > 1024)
				return err_setx(e, EINVAL, "--ready-fd '%s': not a file descriptor", optarg);
			o->ready_fd = (int)fd;
			break;
		default:
			return err_setx(e, EINVAL, "unknown option");
		}
	}
	if (o->dir == NULL || o->log == NULL)
		return err_setx(e, EINVAL, "--dir and --log are required");
	if ((o->overlay_target == NULL) != (o->overlay_options == NULL))
		return err_setx(e, EINVAL, "--overlay-target and --overlay-options go together");
	if (optind >= argc || argv[optind][0] != '/')
		return err_setx(e, EINVAL, "the workload's absolute path must follow the options");
	o->argv = argv + optind;
	return 0;
}

int shim_spawn(const char *shim_binary, const struct shim_opts *o, double timeout_s, pid_t *shim_pid, struct err **e)
{
	char log_max[32], *argv[32 + 64];
	char answer[1100];
	int ready_pipe[2], n = 0, st;
	size_t got = 0;
	double deadline;
	pid_t pid;

	argv[n++] = (char *)shim_binary;
	argv[n++] = (char *)"--dir";
	argv[n++] = (char *)o->dir;
	argv[n++] = (char *)"--log";
	argv[n++] = (char *)o->log;
	snprintf(log_max, sizeof(log_max), "%" PRIu64, o->log_max);
	argv[n++] = (char *)"--log-max";
	argv[n++] = log_max;
	argv[n++] = (char *)"--ready-fd";
	argv[n++] = (char *)"3";
	if (o->stderr_file) {
		argv[n++] = (char *)"--stderr";
		argv[n++] = (char *)o->stderr_file;
	}
	if (o->overlay_target) {
		argv[n++] = (char *)"--overlay-target";
		argv[n++] = (char *)o->overlay_target;
		argv[n++] = (char *)"--overlay-options";
		argv[n++] = (char *)o->overlay_options;
	}
	for (char **a = o->argv; *a; a++) {
		if (n >= (int)ARRAY_SIZE(argv) - 1)
			return err_setx(e, E2BIG, "shim for '%s': too many arguments", o->dir);
		argv[n++] = *a;
	}
	argv[n] = NULL;

	if (pipe2(ready_pipe, O_CLOEXEC) < 0)
		return err_set(e, errno, "shim for '%s': pipe", o->dir);
	pid = fork();
	if (pid < 0) {
		close(ready_pipe[0]);
		close(ready_pipe[1]);
		return err_set(e, errno, "shim for '%s': fork", o->dir);
	}
	if (pid == 0) {
		/* Only async-signal-safe calls from here: casulod has threads.
		 * A session of its own, then a second fork so that the shim is
		 * no child of casulod and lives on without it. */
		sigset_t none;
		setsid();
		if (fork() != 0)
			_exit(0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(ready_pipe[1], 3) < 0)
			_exit(127);
		(void)fd_stdio_to_null();
		syscall(SYS_close_range, 4, ~0U, 0);
		execv(shim_binary, argv);
		_exit(127);
	}
	close(ready_pipe[1]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	/* The answer, or EOF when the shim died or could not be executed. */
	deadline = proc_monotonic() + timeout_s;
	for (;;) {
		struct pollfd p = {.fd = ready_pipe[0], .events = POLLIN};
		int left = (int)((deadline - proc_monotonic()) * 1000);
		ssize_t r;
		if (left <= 0 || poll(&p, 1, left) == 0) {
			close(ready_pipe[0]);
			return err_setx(e, ETIMEDOUT, "shim for '%s': no answer in %.0f s", o->dir, timeout_s);
		}
		r = read(ready_pipe[0], answer + got, sizeof(answer) - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof(answer) - 1 || memchr(answer, '\n', got))
			break;
	}
	close(ready_pipe[0]);
	answer[got] = '\0';
	answer[strcspn(answer, "\n")] = '\0';
	if (strncmp(answer, "ok ", 3) == 0) {
		*shim_pid = (pid_t)atoi(answer + 3);
		return 0;
	}
	if (strncmp(answer, "error ", 6) == 0)
		return err_setx(e, EIO, "%s", answer + 6);
	return err_setx(e, EIO, "shim '%s' for '%s' ended without starting the workload", shim_binary, o->dir);
}

int shim_read_state(const char *dir, struct shim_state *st)
{
	char path[4200], text[512];
	int fd, pid1, pid2;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, SHIM_STATE_FILE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read_all(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return (int)n;
	text[n] = '\0';
	*st = (struct shim_state){0};
	if (sscanf(text, "shim %d %" SCNu64 "\nworkload %d %" SCNu64 "\nboot %36s", &pid1, &st->shim_start, &pid2,
		   &st->workload_start, st->boot_id) != 5 ||
	    pid1 <= 0 || pid2 <= 0)
		return -EINVAL;
	st->shim_pid = pid1;
	st->workload_pid = pid2;
	return 0;
}

int shim_read_exit(const char *dir, int *status)
{
	char path[4200], text[32];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, SHIM_EXIT_FILE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read_all(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	text[n] = '\0';
	*status = atoi(text);
	return 0;
}
