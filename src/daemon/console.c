/* Each running instance's console, on the loop thread: one connection to
 * its shim, the last CONSOLE_HISTORY bytes, and the websockets of its
 * viewers (any number) and writer (one at a time). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "common/log.h"
#include "daemon/internal.h"
#include "daemon/shim.h"
#include "daemon/websocket.h"

#define CONSOLE_HISTORY (64u << 10)
#define VIEWER_MAX_BEHIND (4u << 20) /* a viewer further behind is dropped */
#define WS_MAX_MESSAGE (64u << 10)
#define INPUT_MAX_PENDING (64u << 10)

struct viewer {
	struct console *c;
	int fd;
	struct loop_source *src;
	uint8_t *in;
	size_t in_len;
	uint8_t *out;
	size_t out_len;
	bool writer, closing;
	void (*done)(void *ctx);
	void *ctx;
	struct viewer *next;
};

struct console {
	struct instance *inst;
	int fd;
	struct loop_source *src;
	char hist[CONSOLE_HISTORY];
	size_t hist_len, hist_head; /* a ring: hist_head is where the next byte goes */
	struct viewer *viewers;
	uint8_t *input;
	size_t input_len;
	bool ended;
};

static void history_add(struct console *c, const char *data, size_t len)
{
	if (len >= CONSOLE_HISTORY) {
		data += len - CONSOLE_HISTORY;
		len = CONSOLE_HISTORY;
	}
	for (size_t i = 0; i < len;) {
		size_t n = MIN(len - i, CONSOLE_HISTORY - c->hist_head);
		memcpy(c->hist + c->hist_head, data + i, n);
		c->hist_head = (c->hist_head + n) % CONSOLE_HISTORY;
		i += n;
	}
	c->hist_len = MIN(c->hist_len + len, CONSOLE_HISTORY);
}

/* ---- viewers ---- */

static void viewer_close(struct viewer *v);

static bool viewer_flush(struct viewer *v)
{
	while (v->out_len) {
		ssize_t n = write(v->fd, v->out, v->out_len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return false;
		}
		memmove(v->out, v->out + n, v->out_len - (size_t)n);
		v->out_len -= (size_t)n;
	}
	loop_mod_fd(v->c->inst->d->loop, v->src, EPOLLIN | (v->out_len ? EPOLLOUT : 0));
	return true;
}

/* Queue one frame; false when the viewer is too far behind or broken. */
static bool viewer_send(struct viewer *v, enum ws_opcode op, const void *data, size_t len)
{
	uint8_t hdr[WS_HEADER_MAX];
	size_t h = ws_header(hdr, op, len, NULL);
	uint8_t *n;

	if (v->out_len + h + len > VIEWER_MAX_BEHIND)
		return false;
	n = realloc(v->out, v->out_len + h + len);
	if (n == NULL)
		return false;
	v->out = n;
	memcpy(v->out + v->out_len, hdr, h);
	if (len)
		memcpy(v->out + v->out_len + h, data, len);
	v->out_len += h + len;
	return viewer_flush(v);
}

static void viewer_send_close(struct viewer *v, uint16_t code, const char *why)
{
	uint8_t body[125];
	size_t len = 2 + MIN(strlen(why), sizeof(body) - 2);

	body[0] = (uint8_t)(code >> 8);
	body[1] = (uint8_t)code;
	memcpy(body + 2, why, len - 2);
	viewer_send(v, WS_CLOSE, body, len);
	v->closing = true;
}

static void viewer_free(struct viewer *v)
{
	struct console *c = v->c;

	for (struct viewer **p = &c->viewers; *p; p = &(*p)->next)
		if (*p == v) {
			*p = v->next;
			break;
		}
	loop_del_fd(c->inst->d->loop, v->src);
	if (v->writer) {
		pthread_mutex_lock(&c->inst->d->lock);
		c->inst->writer_taken = false;
		pthread_mutex_unlock(&c->inst->d->lock);
	}
	/* The http side closes the socket (MHD owns it). */
	if (v->done)
		v->done(v->ctx);
	free(v->in);
	free(v->out);
	free(v);
}

/* Send what is left, briefly, then let go. */
static void viewer_close(struct viewer *v)
{
	fd_set_nonblock(v->fd, 0);
	if (v->out_len) {
		struct timeval tv = {.tv_sec = 1};
		setsockopt(v->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		write_full(v->fd, v->out, v->out_len);
		v->out_len = 0;
	}
	viewer_free(v);
}

static void console_input(struct console *c, const uint8_t *data, size_t len);

static void viewer_handle(struct viewer *v, struct ws_frame *f)
{
	switch (f->opcode) {
	case WS_TEXT:
	case WS_BINARY:
	case WS_CONTINUATION:
		/* Input from the writer only; a viewer's is dropped. */
		if (v->writer && !v->c->ended)
			console_input(v->c, f->payload, f->len);
		break;
	case WS_PING:
		viewer_send(v, WS_PONG, f->payload, f->len);
		break;
	case WS_CLOSE:
		if (!v->closing)
			viewer_send_close(v, 1000, "bye");
		v->closing = true;
		break;
	default:
		break;
	}
}

/* Parse what arrived; false when the viewer must go. */
static bool viewer_parse(struct viewer *v)
{
	size_t at = 0;

	for (;;) {
		struct ws_frame f;
		ssize_t n = ws_parse(v->in + at, v->in_len - at, true, WS_MAX_MESSAGE, &f);
		if (n == 0)
			break;
		if (n < 0) {
			viewer_send_close(v, n == -EMSGSIZE ? 1009 : 1002,
					  n == -EMSGSIZE ? "message too big" : "protocol error");
			return false;
		}
		viewer_handle(v, &f);
		at += (size_t)n;
		if (v->closing)
			return false;
	}
	memmove(v->in, v->in + at, v->in_len - at);
	v->in_len -= at;
	return true;
}

static void on_viewer(void *ctx, uint32_t events)
{
	struct viewer *v = ctx;

	if (events & EPOLLOUT && !viewer_flush(v)) {
		viewer_free(v);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		size_t room = WS_MAX_MESSAGE + WS_HEADER_MAX - v->in_len;
		ssize_t n = read(v->fd, v->in + v->in_len, room);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			viewer_free(v);
			return;
		}
		if (n > 0) {
			v->in_len += (size_t)n;
			if (!viewer_parse(v)) {
				viewer_close(v);
				return;
			}
		}
	}
}

struct attach {
	struct instance *inst;
	int fd;
	char *extra;
	size_t extra_len;
	bool writer;
	void (*done)(void *ctx);
	void *ctx;
};

static void attach_now(void *arg)
{
	struct attach *a = arg;
	struct console *c = a->inst->console;
	struct viewer *v = calloc(1, sizeof(*v));

	if (v)
		v->in = malloc(WS_MAX_MESSAGE + WS_HEADER_MAX);
	if (v == NULL || v->in == NULL) {
		if (v)
			free(v);
		goto refuse;
	}
	v->fd = a->fd;
	v->writer = a->writer;
	v->done = a->done;
	v->ctx = a->ctx;
	if (c == NULL || c->ended) {
		/* It ended between the upgrade and now. */
		v->c = NULL;
		uint8_t hdr[WS_HEADER_MAX], body[] = {0x03, 0xe8};
		size_t h = ws_header(hdr, WS_CLOSE, sizeof(body), NULL);
		write_full(a->fd, hdr, h);
		write_full(a->fd, body, sizeof(body));
		if (a->writer) {
			pthread_mutex_lock(&a->inst->d->lock);
			a->inst->writer_taken = false;
			pthread_mutex_unlock(&a->inst->d->lock);
		}
		a->done(a->ctx);
		free(v->in);
		free(v);
		goto out;
	}
	v->c = c;
	fd_set_nonblock(v->fd, 1);
	v->next = c->viewers;
	c->viewers = v;
	v->src = loop_add_fd(c->inst->d->loop, v->fd, EPOLLIN, on_viewer, v);
	if (v->src == NULL) {
		viewer_free(v);
		goto out;
	}
	/* The history first, as one message, oldest byte first. */
	if (c->hist_len) {
		char *h = malloc(c->hist_len);
		size_t start = (c->hist_head + CONSOLE_HISTORY - c->hist_len) % CONSOLE_HISTORY;
		if (h) {
			for (size_t i = 0; i < c->hist_len; i++)
				h[i] = c->hist[(start + i) % CONSOLE_HISTORY];
			viewer_send(v, WS_BINARY, h, c->hist_len);
			free(h);
		}
	}
	if (a->extra_len) {
		memcpy(v->in, a->extra, MIN(a->extra_len, (size_t)WS_MAX_MESSAGE));
		v->in_len = MIN(a->extra_len, (size_t)WS_MAX_MESSAGE);
		if (!viewer_parse(v))
			viewer_close(v);
	}
	goto out;
refuse:
	if (a->writer) {
		pthread_mutex_lock(&a->inst->d->lock);
		a->inst->writer_taken = false;
		pthread_mutex_unlock(&a->inst->d->lock);
	}
	a->done(a->ctx);
out:
	instance_put(a->inst);
	free(a->extra);
	free(a);
}

/* The http side's way in: called on an MHD thread with a referenced
 * instance. */
void console_attach_instance(struct instance *inst, int fd, const char *extra, size_t extra_len, bool writer,
			     void (*done)(void *ctx), void *ctx)
{
	struct attach *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		done(ctx);
		instance_put(inst);
		return;
	}
	a->inst = inst;
	a->fd = fd;
	a->writer = writer;
	a->done = done;
	a->ctx = ctx;
	if (extra_len && (a->extra = malloc(extra_len)) != NULL) {
		memcpy(a->extra, extra, extra_len);
		a->extra_len = extra_len;
	}
	loop_post(inst->d->loop, attach_now, a);
}

/* ---- the shim's side ---- */

static void input_flush(struct console *c)
{
	while (c->input_len && c->fd >= 0) {
		ssize_t n = write(c->fd, c->input, c->input_len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		memmove(c->input, c->input + n, c->input_len - (size_t)n);
		c->input_len -= (size_t)n;
	}
	if (c->src)
		loop_mod_fd(c->inst->d->loop, c->src, EPOLLIN | (c->input_len ? EPOLLOUT : 0));
}

static void console_input(struct console *c, const uint8_t *data, size_t len)
{
	uint8_t *n;

	if (c->fd < 0 || c->input_len + len > INPUT_MAX_PENDING)
		return; /* dropped, as a serial line without flow control would */
	n = realloc(c->input, c->input_len + len);
	if (n == NULL)
		return;
	c->input = n;
	memcpy(c->input + c->input_len, data, len);
	c->input_len += len;
	input_flush(c);
}

static void broadcast(struct console *c, const char *data, size_t len)
{
	struct viewer *v = c->viewers;

	history_add(c, data, len);
	while (v) {
		struct viewer *next = v->next;
		if (!v->closing && !viewer_send(v, WS_BINARY, data, len)) {
			viewer_send_close(v, 1008, "too far behind");
			viewer_close(v);
		}
		v = next;
	}
}

static void disconnect(struct console *c)
{
	if (c->src)
		loop_del_fd(c->inst->d->loop, c->src);
	c->src = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void on_shim(void *ctx, uint32_t events)
{
	struct console *c = ctx;
	char buf[16384];

	if (events & EPOLLOUT)
		input_flush(c);
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));
		if (n > 0) {
			broadcast(c, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN)
			disconnect(c);
		break;
	}
}

struct console *console_new(struct instance *inst)
{
	struct console *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->inst = inst;
	c->fd = -1;
	return c;
}

void console_connect(struct console *c)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	disconnect(c);
	c->ended = false;
	/* The shim replays its last output to each client: that is the history. */
	c->hist_len = c->hist_head = 0;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s", c->inst->run_dir, SHIM_CONSOLE_SOCKET);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		log_warn("instance '%s': console %s: %s", c->inst->name, addr.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	fd_set_nonblock(fd, 1);
	c->fd = fd;
	c->src = loop_add_fd(c->inst->d->loop, fd, EPOLLIN, on_shim, c);
}

void console_end(struct console *c)
{
	if (c->fd >= 0)
		on_shim(c, EPOLLIN); /* what is left in the socket */
	disconnect(c);
	c->ended = true;
	while (c->viewers) {
		struct viewer *v = c->viewers;
		viewer_send_close(v, 1000, "the instance stopped");
		viewer_close(v);
	}
}

void console_free(struct console *c)
{
	if (c == NULL)
		return;
	console_end(c);
	free(c->input);
	free(c);
}
