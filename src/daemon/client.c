#include "daemon/client.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <json-c/json.h>

#include "daemon/daemon.h"
#include "daemon/websocket.h"

#define CLIENT_TIMEOUT_S 3700 /* an operation's wait may take an hour */
#define WS_MAX (1u << 20)

struct casulod_ws;
static int casulod_ws_send_op(struct casulod_ws *ws, enum ws_opcode op, const void *data, size_t len);

int casulod_client_init(struct casulod_client *c, const char *socket, const char *url, const char *token_file,
			const char *tls_ca, struct err **e)
{
	const char *tf = token_file ? token_file : getenv("CASULOD_TOKEN_FILE");
	FILE *f;
	char buf[4200];

	*c = (struct casulod_client){0};
	c->url = url ? url : socket ? NULL : getenv("CASULOD_URL");
	c->socket = socket		       ? socket
		    : getenv("CASULOD_SOCKET") ? getenv("CASULOD_SOCKET")
					       : DAEMON_DEFAULT_RUN_DIR "/" DAEMON_SOCKET_NAME;
	c->tls_ca = tls_ca ? tls_ca : getenv("CASULOD_TLS_CA");
	if (c->url) {
		if (strncmp(c->url, "https://", 8) != 0)
			return err_setx(e, EINVAL, "--url '%s': casulod serves TCP with TLS only (https://HOST:PORT)",
					c->url);
		if (tf == NULL)
			return err_setx(e, EINVAL, "--url needs --token-file FILE (or $CASULOD_TOKEN_FILE)");
		if ((f = fopen(tf, "re")) == NULL)
			return err_set(e, errno, "token file '%s'", tf);
		if (fgets(buf, sizeof(buf), f) == NULL)
			buf[0] = '\0';
		fclose(f);
		buf[strcspn(buf, "\r\n")] = '\0';
		if ((c->token = strdup(buf)) == NULL)
			return err_set(e, ENOMEM, "token");
	}
	return 0;
}

void casulod_client_clear(struct casulod_client *c)
{
	free(c->token);
	c->token = NULL;
}

/*
 * The transport.  `casulo ls` should answer in a few milliseconds, and
 * libcurl alone costs about 25 ms of start-up (its TLS stack's libraries
 * and their constructors): so the Unix socket is spoken to directly (one
 * HTTP/1.1 request per connection, "Connection: close"), and libcurl is
 * opened with dlopen() only for --url, where it does TLS.
 */
#define CURL_SONAME "libcurl.so.4"

static struct {
	__typeof__(&curl_easy_init) init;
	__typeof__(&curl_easy_setopt) setopt;
	__typeof__(&curl_easy_perform) perform;
	__typeof__(&curl_easy_getinfo) getinfo;
	__typeof__(&curl_easy_send) send;
	__typeof__(&curl_easy_recv) recv;
	__typeof__(&curl_easy_cleanup) cleanup;
	__typeof__(&curl_easy_strerror) strerror;
} cu;

static int curl_load(struct err **e)
{
	void *h;

	if (cu.init)
		return 0;
	h = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		return err_setx(e, ELIBACC, "--url: %s", dlerror());
	*(void **)&cu.setopt = dlsym(h, "curl_easy_setopt");
	*(void **)&cu.perform = dlsym(h, "curl_easy_perform");
	*(void **)&cu.getinfo = dlsym(h, "curl_easy_getinfo");
	*(void **)&cu.send = dlsym(h, "curl_easy_send");
	*(void **)&cu.recv = dlsym(h, "curl_easy_recv");
	*(void **)&cu.cleanup = dlsym(h, "curl_easy_cleanup");
	*(void **)&cu.strerror = dlsym(h, "curl_easy_strerror");
	*(void **)&cu.init = dlsym(h, "curl_easy_init");
	if (!cu.init || !cu.setopt || !cu.perform || !cu.getinfo || !cu.send || !cu.recv || !cu.cleanup ||
	    !cu.strerror) {
		cu.init = NULL;
		return err_setx(e, ELIBACC, "--url: %s lacks a function casulo needs", CURL_SONAME);
	}
	return 0;
}

/* One connection to casulod: a Unix socket, or TLS through libcurl. */
struct conn {
	int fd;
	CURL *h;
};

static const char *where(const struct casulod_client *c)
{
	return c->url ? c->url : c->socket;
}

static int conn_open(const struct casulod_client *c, struct conn *k, struct err **e)
{
	*k = (struct conn){.fd = -1};
	if (c->url == NULL) {
		struct sockaddr_un addr = {.sun_family = AF_UNIX};
		if (strlen(c->socket) >= sizeof(addr.sun_path))
			return err_setx(e, ENAMETOOLONG, "socket '%s': path too long", c->socket);
		strcpy(addr.sun_path, c->socket);
		k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (k->fd < 0)
			return err_set(e, errno, "socket");
		if (connect(k->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			int saved = errno;
			close(k->fd);
			k->fd = -1;
			if (saved == ENOENT || saved == ECONNREFUSED)
				return err_setx(e, ECONNREFUSED, "casulod is not running (socket '%s': %s)", c->socket,
						strerror(saved));
			return err_set(e, saved, "casulod socket '%s'", c->socket);
		}
		return 0;
	}
	{
		curl_socket_t sock;
		CURLcode rc;
		int r = curl_load(e);
		if (r < 0)
			return r;
		if ((k->h = cu.init()) == NULL)
			return err_setx(e, ENOMEM, "casulod '%s': cannot set up libcurl", c->url);
		cu.setopt(k->h, CURLOPT_URL, c->url);
		cu.setopt(k->h, CURLOPT_CONNECT_ONLY, 1L);
		cu.setopt(k->h, CURLOPT_NOSIGNAL, 1L);
		cu.setopt(k->h, CURLOPT_CONNECTTIMEOUT, 30L);
		if (c->tls_ca)
			cu.setopt(k->h, CURLOPT_CAINFO, c->tls_ca);
		if (c->insecure) {
			cu.setopt(k->h, CURLOPT_SSL_VERIFYPEER, 0L);
			cu.setopt(k->h, CURLOPT_SSL_VERIFYHOST, 0L);
		}
		rc = cu.perform(k->h);
		if (rc != CURLE_OK) {
			cu.cleanup(k->h);
			k->h = NULL;
			return err_setx(e, EIO, "casulod '%s': %s", c->url, cu.strerror(rc));
		}
		cu.getinfo(k->h, CURLINFO_ACTIVESOCKET, &sock);
		k->fd = (int)sock;
	}
	return 0;
}

static void conn_close(struct conn *k)
{
	if (k->h)
		cu.cleanup(k->h);
	else if (k->fd >= 0)
		close(k->fd);
	*k = (struct conn){.fd = -1};
}

static int conn_send(struct conn *k, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		size_t sent = 0;
		if (k->h) {
			CURLcode rc = cu.send(k->h, p, len, &sent);
			if (rc == CURLE_AGAIN) {
				struct pollfd pf = {.fd = k->fd, .events = POLLOUT};
				poll(&pf, 1, 1000);
				continue;
			}
			if (rc != CURLE_OK)
				return -EPIPE;
		} else {
			ssize_t n = send(k->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return -EPIPE;
			sent = (size_t)n;
		}
		p += sent;
		len -= sent;
	}
	return 0;
}

/* What is there now (at most len): >0, 0 at the end, -EAGAIN for nothing
 * yet (with wait_ms, after waiting that long for something). */
static ssize_t conn_recv(struct conn *k, void *buf, size_t len, int wait_ms)
{
	for (int round = 0;; round++) {
		ssize_t n;
		if (k->h) {
			size_t got = 0;
			CURLcode rc = cu.recv(k->h, buf, len, &got);
			if (rc == CURLE_OK)
				return (ssize_t)got;
			if (rc != CURLE_AGAIN)
				return -EPIPE;
			n = -1;
			errno = EAGAIN;
		} else {
			n = recv(k->fd, buf, len, MSG_DONTWAIT);
			if (n >= 0)
				return n;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -EPIPE;
		}
		if (round > 0 || wait_ms == 0)
			return -EAGAIN;
		{
			struct pollfd pf = {.fd = k->fd, .events = POLLIN};
			poll(&pf, 1, wait_ms);
		}
	}
}

/* A whole response (the server closes after it, "Connection: close"). */
static int read_response(struct conn *k, char **out, size_t *out_len)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap + 1);
	double deadline = (double)time(NULL) + CLIENT_TIMEOUT_S;

	if (buf == NULL)
		return -ENOMEM;
	for (;;) {
		ssize_t n;
		if (len == cap) {
			char *nb = realloc(buf, cap * 2 + 1);
			if (nb == NULL) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = conn_recv(k, buf + len, cap - len, 1000);
		if (n == 0)
			break;
		if (n == -EAGAIN) {
			if ((double)time(NULL) > deadline) {
				free(buf);
				return -ETIMEDOUT;
			}
			continue;
		}
		if (n < 0) {
			free(buf);
			return (int)n;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}

/* Undo chunked transfer encoding in place. */
static size_t dechunk(char *body, size_t len)
{
	size_t in = 0, out = 0;

	while (in < len) {
		char *end;
		unsigned long n = strtoul(body + in, &end, 16);
		char *line = strstr(body + in, "\r\n");
		if (line == NULL || n == 0 || end == body + in)
			break;
		in = (size_t)(line - body) + 2;
		if (in + n > len)
			n = len - in;
		memmove(body + out, body + in, n);
		out += n;
		in += n + 2;
	}
	body[out] = '\0';
	return out;
}

int casulod_request(const struct casulod_client *c, const char *method, const char *path, const char *body, int *status,
		    char **resp, struct err **e)
{
	char head[4096 + 2048], *raw = NULL, *b;
	size_t raw_len = 0, blen = body ? strlen(body) : 0;
	struct conn k;
	int r, n;

	if ((r = conn_open(c, &k, e)) < 0)
		return r;
	n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s%s%s%s%zu\r\n\r\n",
		     method, path, c->url ? c->url + 8 : "localhost", c->url ? "Authorization: Bearer " : "",
		     c->url ? c->token : "", c->url ? "\r\n" : "",
		     body ? "Content-Type: application/json\r\nContent-Length: " : "Content-Length: ", blen);
	if (n < 0 || (size_t)n >= sizeof(head)) {
		conn_close(&k);
		return err_setx(e, E2BIG, "casulod: request path too long");
	}
	r = conn_send(&k, head, (size_t)n);
	if (r == 0 && blen)
		r = conn_send(&k, body, blen);
	if (r == 0)
		r = read_response(&k, &raw, &raw_len);
	conn_close(&k);
	if (r < 0)
		return err_setx(e, -r, "casulod '%s': %s %s: %s", where(c), method, path, strerror(-r));
	if (strncmp(raw, "HTTP/1.", 7) != 0 || (b = strstr(raw, "\r\n\r\n")) == NULL) {
		free(raw);
		return err_setx(e, EPROTO, "casulod '%s': not an HTTP answer", where(c));
	}
	*status = atoi(raw + 9);
	*b = '\0';
	b += 4;
	raw_len -= (size_t)(b - raw);
	if (strcasestr(raw, "\r\nTransfer-Encoding: chunked"))
		raw_len = dechunk(b, raw_len);
	memmove(raw, b, raw_len + 1);
	*resp = raw;
	return 0;
}

char *casulod_error_text(int status, const char *resp)
{
	json_object *o = resp && *resp ? json_tokener_parse(resp) : NULL, *msg;
	char *text = NULL;

	if (o && json_object_object_get_ex(o, "error", &msg))
		text = strdup(json_object_get_string(msg));
	else if (resp && *resp)
		text = strdup(resp);
	else if (asprintf(&text, "HTTP %d", status) < 0)
		text = NULL;
	json_object_put(o);
	return text ? text : strdup("?");
}

/* ---- the console websocket ---- */

struct casulod_ws {
	struct conn k;
	uint8_t *in;
	size_t in_len, consumed;
	bool closed;
};

/* Read what is there into ws->in; -EPIPE at the end. */
static int ws_fill(struct casulod_ws *ws, int wait_ms)
{
	for (;;) {
		ssize_t n;
		if (ws->in_len == WS_MAX + WS_HEADER_MAX)
			return -EMSGSIZE;
		n = conn_recv(&ws->k, ws->in + ws->in_len, WS_MAX + WS_HEADER_MAX - ws->in_len, wait_ms);
		if (n == -EAGAIN)
			return 0;
		if (n <= 0)
			return -EPIPE;
		ws->in_len += (size_t)n;
		wait_ms = 0;
	}
}

int casulod_ws_open(const struct casulod_client *c, const char *path, struct casulod_ws **ret, struct err **e)
{
	struct casulod_ws *ws = calloc(1, sizeof(*ws));
	char key[25], accept[29], req[8192];
	char *head_end = NULL;
	time_t end;
	int r;

	if (ws == NULL || (ws->in = malloc(WS_MAX + WS_HEADER_MAX + 1)) == NULL) {
		free(ws);
		return err_set(e, ENOMEM, "console");
	}
	if ((r = conn_open(c, &ws->k, e)) < 0) {
		free(ws->in);
		free(ws);
		return r;
	}
	ws_new_key(key);
	ws_accept_value(key, accept);
	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
		 path, c->url ? c->url + 8 : "localhost", key, c->url ? "Authorization: Bearer " : "",
		 c->url ? c->token : "", c->url ? "\r\n" : "");
	if (conn_send(&ws->k, req, strlen(req)) < 0) {
		casulod_ws_close(ws);
		return err_setx(e, EIO, "console: the request could not be sent");
	}
	/* The answer's head: 101, or an error with its JSON body. */
	end = time(NULL) + 30;
	for (;;) {
		int f = ws_fill(ws, 200);
		ws->in[ws->in_len] = '\0';
		if ((head_end = strstr((char *)ws->in, "\r\n\r\n")) != NULL || f < 0 || time(NULL) > end)
			break;
	}
	if (head_end == NULL) {
		casulod_ws_close(ws);
		return err_setx(e, EIO, "console: no answer from casulod");
	}
	if (strncmp((char *)ws->in, "HTTP/1.1 101", 12) != 0 || strstr((char *)ws->in, accept) == NULL) {
		int status = atoi((char *)ws->in + 9);
		char *msg;
		for (int i = 0; i < 20 && ws_fill(ws, 50) == 0; i++)
			;
		ws->in[ws->in_len] = '\0';
		head_end = strstr((char *)ws->in, "\r\n\r\n");
		msg = casulod_error_text(status, head_end ? head_end + 4 : "");
		err_setx(e, status == 404 ? ENOENT : status == 409 ? EBUSY : EIO, "%s", msg);
		free(msg);
		ws->closed = true;
		casulod_ws_close(ws);
		return -err_code(*e);
	}
	ws->consumed = (size_t)(head_end + 4 - (char *)ws->in);
	*ret = ws;
	return 0;
}

int casulod_ws_fd(const struct casulod_ws *ws)
{
	return ws->k.fd;
}

ssize_t casulod_ws_read(struct casulod_ws *ws, const char **data)
{
	for (;;) {
		struct ws_frame f;
		ssize_t n;
		int r;

		/* Drop what the last call handed out. */
		if (ws->consumed) {
			memmove(ws->in, ws->in + ws->consumed, ws->in_len - ws->consumed);
			ws->in_len -= ws->consumed;
			ws->consumed = 0;
		}
		n = ws_parse(ws->in, ws->in_len, false, WS_MAX, &f);
		if (n < 0)
			return -EPROTO;
		if (n > 0) {
			ws->consumed = (size_t)n;
			if (f.opcode == WS_CLOSE) {
				ws->closed = true;
				return -EPIPE;
			}
			if (f.opcode == WS_PING) {
				if (casulod_ws_send_op(ws, WS_PONG, f.payload, f.len) < 0)
					return -EPIPE;
				continue;
			}
			if (f.opcode == WS_PONG || f.len == 0)
				continue;
			*data = (const char *)f.payload;
			return (ssize_t)f.len;
		}
		if (ws->closed)
			return -EPIPE;
		r = ws_fill(ws, 0);
		if (r < 0)
			return r;
		if (ws_parse(ws->in, ws->in_len, false, WS_MAX, &f) == 0)
			return 0;
	}
}

static int casulod_ws_send_op(struct casulod_ws *ws, enum ws_opcode op, const void *data, size_t len)
{
	uint8_t hdr[WS_HEADER_MAX], mask[4], *copy = malloc(len ? len : 1);
	size_t h;
	int r;

	if (copy == NULL)
		return -ENOMEM;
	if (getrandom(mask, sizeof(mask), 0) != sizeof(mask))
		memset(mask, 0x37, sizeof(mask));
	memcpy(copy, data, len);
	ws_mask(copy, len, mask);
	h = ws_header(hdr, op, len, mask);
	r = conn_send(&ws->k, hdr, h);
	if (r == 0)
		r = conn_send(&ws->k, copy, len);
	free(copy);
	return r;
}

int casulod_ws_send(struct casulod_ws *ws, const void *data, size_t len)
{
	return casulod_ws_send_op(ws, WS_BINARY, data, len);
}

void casulod_ws_close(struct casulod_ws *ws)
{
	if (ws == NULL)
		return;
	if (!ws->closed) {
		uint8_t code[2] = {0x03, 0xe8}; /* 1000 */
		casulod_ws_send_op(ws, WS_CLOSE, code, sizeof(code));
	}
	conn_close(&ws->k);
	free(ws->in);
	free(ws);
}
