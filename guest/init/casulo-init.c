/*
 * casulo-init: /init of Casulo's default guest (docs/guest.md).
 *
 *   1. mount proc, sys, devtmpfs, devpts, tmpfs on /run, /tmp, /dev/shm;
 *   2. load every module in /lib/modules, dependencies first;
 *   3. configure the network from ip= on the kernel command line;
 *   4. run the words after the kernel command line's "--" as a command
 *      (argv as is, no shell), or an interactive /bin/sh with none, in
 *      the foreground of the console, init's controlling terminal;
 *   5. reap every child until the command exits, let the console send
 *      what is queued, then write its status (exit code, or 128 +
 *      signal) to I/O port 0x604 with outl, sync and power off.
 *
 * With casulo.agent on the command line, steps 3-5 are the agent's
 * instead (agent.c): it runs an OCI container for casulo-runtime.
 *
 * Silent on success: every console byte is a VM exit.  casulo.verbose on
 * the command line prints one line when the command starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmdline.h"
#include "init.h"
#include "ipconfig.h"
#include "modules.h"
#include "powerbutton.h"

#define STATUS_PORT 0x604
#define MODULES_DIR "/lib/modules"
#define SHUTDOWN_GRACE_MS 5000
#define warn init_warn

void init_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("casulo-init: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void mount_one(const char *src, const char *dir, const char *type, unsigned long flags, const char *data)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		warn("mkdir '%s': %s", dir, strerror(errno));
	if (mount(src, dir, type, flags, data) < 0 && errno != EBUSY)
		warn("mount %s on '%s': %s", type, dir, strerror(errno));
}

static void mount_all(void)
{
	static const char *const links[][2] = {
	    {"/proc/self/fd", "/dev/fd"},
	    {"/proc/self/fd/0", "/dev/stdin"},
	    {"/proc/self/fd/1", "/dev/stdout"},
	    {"/proc/self/fd/2", "/dev/stderr"},
	};
	const unsigned long nosuid = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	mount_one("proc", "/proc", "proc", nosuid, NULL);
	mount_one("sysfs", "/sys", "sysfs", nosuid, NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666");
	mount_one("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	mount_one("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
			warn("symlink '%s': %s", links[i][1], strerror(errno));
}

/* The whole kernel command line, or "" (static: the command's argv may point into it). */
static const char *read_cmdline(void)
{
	static char buf[4096];
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void setup_network(const char *cmdline)
{
	char spec[512], msg[160];
	struct ipconfig c;
	int r = cmdline_get(cmdline, "ip", spec, sizeof(spec));

	if (r == 0)
		return;
	if (r < 0) {
		warn("ip=: value too long, network not configured");
		return;
	}
	if (ipconfig_parse(spec, &c, msg, sizeof(msg)) < 0) {
		warn("ip=%s: %s, network not configured", spec, msg);
		return;
	}
	if (ipconfig_apply(&c, 2000, msg, sizeof(msg)) < 0)
		warn("ip=%s: %s, network not configured", spec, msg);
}

/*
 * The console's real device ("/dev/ttyS0"), which unlike /dev/console can
 * be a controlling terminal: the last name in /sys/class/tty/console/active.
 */
static bool console_device(char *path, size_t size)
{
	char buf[256], *name;
	int fd = open("/sys/class/tty/console/active", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	name = strrchr(buf, ' ');
	name = name ? name + 1 : buf;
	if (*name == '\0')
		return false;
	snprintf(path, size, "/dev/%s", name);
	return true;
}

/*
 * init's own controlling terminal: the console's real device.  init stays
 * the session leader and puts the command in a foreground process group
 * of its own, as a shell does: Ctrl-C reaches the command, and when the
 * command exits the terminal is not hung up (a session leader's exit
 * hangs it up, which throws away output not yet sent).
 */
static int console_take(void)
{
	char tty[300];
	int fd;

	if (!console_device(tty, sizeof(tty)))
		return -1;
	fd = open(tty, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	(void)setsid(); /* fails harmlessly if PID 1 leads a session already */
	if (ioctl(fd, TIOCSCTTY, 0) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static pid_t spawn(char **argv, int tty)
{
	pid_t pid = fork();

	if (pid < 0)
		return pid;
	if (pid > 0) {
		/* Both sides set the group and the foreground: whichever runs first. */
		setpgid(pid, pid);
		if (tty >= 0)
			tcsetpgrp(tty, pid);
		return pid;
	}
	setpgid(0, 0);
	if (tty >= 0) {
		tcsetpgrp(tty, getpid());
		dup2(tty, 0);
		dup2(tty, 1);
		dup2(tty, 2);
	}
	signal(SIGTTOU, SIG_DFL);
	signal(SIGTTIN, SIG_DFL);
	setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin", 1);
	setenv("HOME", "/root", 1);
	setenv("TERM", "linux", 1);
	if (chdir("/root") < 0 && chdir("/") < 0)
		warn("chdir '/': %s", strerror(errno));
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvp(argv[0], argv);
	int err = errno;
	warn("exec '%s': %s", argv[0], strerror(err));
	_exit(err == ENOENT ? 127 : 126);
}

static unsigned status_of(int st)
{
	if (WIFEXITED(st))
		return (unsigned)WEXITSTATUS(st);
	return 128 + (unsigned)WTERMSIG(st);
}

/*
 * Reap every child until pid exits and return its status as a shell
 * would.  A press of the power button (button_fd) asks the command to
 * end: SIGTERM to its process group, SIGKILL if it is still there
 * SHUTDOWN_GRACE_MS later.
 */
static unsigned wait_for(pid_t pid, int button_fd)
{
	sigset_t chld;
	int sfd, grace = -1;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	for (;;) {
		struct pollfd pfd[2] = {{sfd, POLLIN, 0}, {button_fd, POLLIN, 0}};
		int st, n;
		pid_t got;

		/* Reap first: the child may have gone before the signalfd existed. */
		while ((got = waitpid(-1, &st, WNOHANG)) > 0)
			if (got == pid)
				return status_of(st);
		if (got < 0 && errno == ECHILD)
			return 255;
		n = poll(pfd, button_fd >= 0 ? 2 : 1, grace);
		if (n < 0 && errno != EINTR) {
			warn("poll: %s", strerror(errno));
			return 255;
		}
		if (n == 0 && grace >= 0) {
			warn("the command did not end within %d ms of the power button; killing it", grace);
			kill(-pid, SIGKILL);
			grace = -1;
			continue;
		}
		if (sfd >= 0 && (pfd[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) > 0)
				;
		}
		if (button_fd >= 0 && (pfd[1].revents & POLLIN) && powerbutton_pressed(button_fd) && grace < 0) {
			if (cmdline_has(read_cmdline(), "casulo.verbose"))
				warn("power button: ending the command");
			kill(-pid, SIGTERM);
			kill(-pid, SIGCONT);
			grace = SHUTDOWN_GRACE_MS;
		}
	}
}

/*
 * Wait (1 s at most) until the console has sent everything: a write to a
 * tty returns once the bytes are in the driver's buffer, and powering off
 * would drop the command's last output.
 */
static void console_drain(int fd)
{
	if (fd < 0)
		return;
	for (int ms = 0;; ms++) {
		int queued = 0, lsr = TIOCSER_TEMT;

		if (ioctl(fd, TIOCOUTQ, &queued) < 0)
			break;
		(void)ioctl(fd, TIOCSERGETLSR, &lsr); /* serial ports only */
		if (queued == 0 && (lsr & TIOCSER_TEMT))
			break;
		if (ms == 1000) {
			/* The tty is stuck: say so through printk, which polls the UART. */
			char msg[128];
			int kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
			int n =
			    snprintf(msg, sizeof(msg),
				     "<3>casulo-init: %d bytes of console output not sent after 1 s, lost\n", queued);

			if (kmsg >= 0) {
				if (write(kmsg, msg, (size_t)n) < 0) {
					/* nowhere left to report it */
				}
				close(kmsg);
			}
			break;
		}
		nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
	}
}

static void report_status(unsigned status)
{
	if (ioperm(STATUS_PORT, 4, 1) < 0) {
		warn("ioperm 0x%x: %s", STATUS_PORT, strerror(errno));
		return;
	}
	outl(status, STATUS_PORT);
}

int main(int argc, char **argv)
{
	static char *shell[] = {"/bin/sh", NULL};
	const char *cmdline;
	char **cmd = shell;
	int failed, n, words, tty;
	unsigned status;

	if (getpid() != 1) {
		fprintf(stderr, "casulo-init: must run as PID 1 (the guest's /init)\n");
		return 1;
	}
	mount_all();
	cmdline = read_cmdline();
	n = modules_load_dir(MODULES_DIR, stderr, &failed);
	if (n < 0 && n != -ENOENT)
		warn("'%s': %s", MODULES_DIR, strerror(-n));
	if (cmdline_has(cmdline, "casulo.agent"))
		agent_run(cmdline);
	setup_network(cmdline);

	/*
	 * The kernel passes init the words after "--", but also any unknown
	 * option without '=' before it: the command is the last words, as
	 * many as /proc/cmdline has after "--".
	 */
	words = cmdline_count_after_dashes(cmdline);
	if (words > argc - 1)
		words = argc - 1;
	if (words > 0)
		cmd = argv + argc - words;
	if (cmdline_has(cmdline, "casulo.verbose")) {
		fprintf(stderr, "casulo-init: %d modules loaded, %d failed; running", n < 0 ? 0 : n, failed);
		for (char **a = cmd; *a != NULL; a++)
			fprintf(stderr, " '%s'", *a);
		fputc('\n', stderr);
	}

	/* tcsetpgrp() from a background group would stop the caller. */
	signal(SIGTTOU, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	tty = console_take();
	status = wait_for(spawn(cmd, tty), powerbutton_open());
	console_drain(tty);
	init_poweroff(status);
}

void init_poweroff(unsigned status)
{
	sync();
	report_status(status);
	reboot(RB_POWER_OFF);
	warn("power off: %s", strerror(errno));
	for (;;)
		pause();
}
