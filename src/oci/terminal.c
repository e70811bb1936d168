/* process.terminal: a pty made inside the container, its master handed
 * to the --console-socket (or proxied by a foreground run/exec). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "common/macro.h"
#include "oci/container.h"
#include "oci/sync.h"

int terminal_setup(const struct oci_process *p, bool mount_console, int *master, struct err **e)
{
	_cleanup_close_ int m = -1, s = -1;
	char name[64];
	int unlock = 0;

	m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return err_set(e, errno, "process.terminal: open /dev/ptmx (is /dev/pts mounted?)");
	if (ioctl(m, TIOCSPTLCK, &unlock) < 0)
		return err_set(e, errno, "process.terminal: unlock pty");
	/* TIOCGPTPEER opens the slave through the master: no path lookup. */
	s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		return err_set(e, errno, "process.terminal: open pty slave");
	if (ptsname_r(m, name, sizeof(name)) != 0)
		snprintf(name, sizeof(name), "/dev/pts/?");
	if (p->console_height || p->console_width) {
		struct winsize ws = {.ws_row = (unsigned short)p->console_height,
				     .ws_col = (unsigned short)p->console_width};
		if (ioctl(s, TIOCSWINSZ, &ws) < 0)
			return err_set(e, errno, "process.consoleSize: set window size");
	}
	if (mount_console) {
		/* /dev/console is the pty slave, as runc does. */
		int fd = open("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
		if (mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0)
			return err_set(e, errno, "process.terminal: bind '%s' to /dev/console", name);
	}
	if (setsid() < 0 && errno != EPERM)
		return err_set(e, errno, "process.terminal: setsid");
	if (ioctl(s, TIOCSCTTY, 0) < 0)
		return err_set(e, errno, "process.terminal: make '%s' the controlling terminal", name);
	for (int fd = 0; fd < 3; fd++)
		if (dup2(s, fd) < 0)
			return err_set(e, errno, "process.terminal: dup2 onto fd %d", fd);
	*master = TAKE_FD(m);
	return 0;
}

int terminal_send(const char *socket_path, int master, struct err **e)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	_cleanup_close_ int sock = -1;
	int r;

	if (strlen(socket_path) >= sizeof(addr.sun_path))
		return err_setx(e, ENAMETOOLONG, "console socket '%s': path too long", socket_path);
	strcpy(addr.sun_path, socket_path);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return err_set(e, errno, "console socket '%s': socket", socket_path);
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return err_set(e, errno, "console socket '%s': connect", socket_path);
	r = fd_send(sock, "/dev/ptmx", 9, master);
	if (r < 0)
		return err_set(e, -r, "console socket '%s': send the pty master", socket_path);
	return 0;
}

static void copy_once(int from, int to, bool *open_)
{
	char buf[8192];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN))
			*open_ = false;
		return;
	}
	(void)write_full(to, buf, (size_t)n);
}

int terminal_proxy(int master, pid_t child, int *wstatus)
{
	struct termios saved, raw;
	bool is_tty = isatty(0) && tcgetattr(0, &saved) == 0;
	bool in_open = true, out_open = true;
	sigset_t mask;
	int sfd;

	if (is_tty) {
		struct winsize ws;
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
		if (ioctl(0, TIOCGWINSZ, &ws) == 0)
			ioctl(master, TIOCSWINSZ, &ws);
	}
	/* Every signal but the synchronous ones is held (container_wait's
	 * caller blocked them): read them all, forward all but these two. */
	container_block_signals(NULL);
	sigfillset(&mask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	*wstatus = 0;
	for (;;) {
		struct pollfd p[3] = {
		    {sfd, POLLIN, 0}, {master, out_open ? POLLIN : 0, 0}, {0, in_open ? POLLIN : 0, 0}};
		if (poll(p, 3, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
			copy_once(master, 1, &out_open);
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
			copy_once(0, master, &in_open);
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGCHLD) {
				if (waitpid(child, wstatus, WNOHANG) == child) {
					/* Drain what the container wrote last. */
					char buf[8192];
					ssize_t n;
					fd_set_nonblock(master, 1);
					while (out_open && (n = read(master, buf, sizeof(buf))) > 0)
						(void)write_full(1, buf, (size_t)n);
					break;
				}
			} else if (si.ssi_signo == SIGWINCH) {
				struct winsize ws;
				if (ioctl(0, TIOCGWINSZ, &ws) == 0)
					ioctl(master, TIOCSWINSZ, &ws);
			} else {
				kill(child, (int)si.ssi_signo);
			}
		}
	}
	if (is_tty)
		tcsetattr(0, TCSANOW, &saved);
	close(sfd);
	return 0;
}
