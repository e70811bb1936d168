#include "vmm/console.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <termios.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "common/log.h"

struct console {
	struct event_loop *loop;
	void (*quit)(void *opaque);
	void *quit_opaque;
	int out_fd;
	int own_out_fd;
	int in_fd;
	int raw;
	struct termios saved_termios;
	int escape_pending;
	int input_paused;
	struct console_sink sink;
};

int console_create(const struct console_setup *setup, struct console **ret, struct err **e)
{
	enum console_mode mode = setup->mode;
	const char *path = setup->path;
	struct console *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return err_set(e, ENOMEM, "serial console");
	c->loop = setup->loop;
	c->quit = setup->quit;
	c->quit_opaque = setup->quit_opaque;
	c->out_fd = -1;
	c->in_fd = -1;
	switch (mode) {
	case CONSOLE_STDIO:
		c->out_fd = STDOUT_FILENO;
		c->in_fd = STDIN_FILENO;
		break;
	case CONSOLE_FILE:
		c->out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->out_fd < 0) {
			int saved = errno;
			free(c);
			return err_set(e, saved, "console file '%s': open", path);
		}
		c->own_out_fd = 1;
		break;
	case CONSOLE_NONE:
		break;
	}
	*ret = c;
	return 0;
}

void console_destroy(struct console *c)
{
	if (c == NULL)
		return;
	if (c->raw)
		(void)tcsetattr(c->in_fd, TCSAFLUSH, &c->saved_termios);
	if (c->own_out_fd)
		close(c->out_fd);
	free(c);
}

void console_write(struct console *c, const uint8_t *buf, size_t n)
{
	if (c->out_fd < 0)
		return;
	/* A closed reader (EPIPE) only loses console output, never the VM. */
	(void)write_full(c->out_fd, buf, n);
}

size_t console_filter_input(int *escape_pending, const uint8_t *in, size_t n, uint8_t *out, int *quit)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t ch = in[i];
		if (*escape_pending) {
			*escape_pending = 0;
			if (ch == CONSOLE_QUIT_CHAR) {
				*quit = 1;
				return o;
			}
			if (ch != CONSOLE_ESCAPE_CHAR)
				out[o++] = CONSOLE_ESCAPE_CHAR;
			out[o++] = ch;
		} else if (ch == CONSOLE_ESCAPE_CHAR) {
			*escape_pending = 1;
		} else {
			out[o++] = ch;
		}
	}
	return o;
}

static void console_on_input(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	uint8_t in[256], out[512];
	size_t room = c->sink.space(c->sink.opaque), n;
	ssize_t got;
	int quit = 0;

	(void)events;
	if (room == 0) {
		/* The guest is not reading: stop watching until it does. */
		(void)event_loop_modify(c->loop, c->in_fd, 0);
		c->input_paused = 1;
		c->loop->timeout_ms = 10;
		return;
	}
	/* Half the room: an escaped Ctrl-A can double a byte. */
	got = read(c->in_fd, in, MIN(sizeof(in), MAX(room / 2, (size_t)1)));
	if (got < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (got <= 0) {
		/* End of input: the guest keeps running without it. */
		event_loop_remove(c->loop, c->in_fd);
		return;
	}
	n = console_filter_input(&c->escape_pending, in, (size_t)got, out, &quit);
	if (n > 0)
		c->sink.push(c->sink.opaque, out, n);
	if (quit)
		c->quit(c->quit_opaque);
}

int console_attach_input(struct console *c, const struct console_sink *sink, struct err **e)
{
	struct termios raw;
	int r;

	c->sink = *sink;
	if (c->in_fd < 0)
		return 0;
	if (isatty(c->in_fd) && tcgetattr(c->in_fd, &c->saved_termios) == 0) {
		raw = c->saved_termios;
		cfmakeraw(&raw);
		if (tcsetattr(c->in_fd, TCSAFLUSH, &raw) == 0)
			c->raw = 1;
	}
	r = event_loop_add(c->loop, c->in_fd, EPOLLIN, console_on_input, c, e);
	if (r < 0) {
		/* stdin that epoll cannot watch (a regular file): no input. */
		if (err_code(*e) == EPERM) {
			err_free(e);
			log_debug("console: stdin cannot be polled, input disabled");
			c->in_fd = -1;
			return 0;
		}
		return r;
	}
	return 0;
}

void console_poll(struct console *c)
{
	if (c == NULL || !c->input_paused || c->sink.space(c->sink.opaque) == 0)
		return;
	c->input_paused = 0;
	c->loop->timeout_ms = -1;
	(void)event_loop_modify(c->loop, c->in_fd, EPOLLIN);
}
