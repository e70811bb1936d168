/*
 * casulod's HTTP servers (libmicrohttpd): the Unix socket, and TCP with
 * TLS when --listen is given.  Each is an epoll loop with a pool of
 * threads that never wait: a request that waits (an operation's end, the
 * next event) suspends its connection and is resumed by whoever ends the
 * wait, and a console websocket is handed to the loop thread.  Idle
 * connections are dropped after HTTP_IDLE_TIMEOUT seconds.
 *
 * Auth: on the Unix socket the peer's credentials (root, or a member of
 * the socket's group); on TCP the bearer token (Authorization header, or
 * the cookie POST /v1/session sets), the dashboard's static files apart.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include <openssl/crypto.h>

#include "common/body.h"
#include "common/fdutil.h"
#include "common/log.h"
#include "daemon/api.h"
#include "daemon/events.h"
#include "daemon/internal.h"
#include "daemon/websocket.h"
#include "oci/util.h"

#define HTTP_MAX_BODY (1u << 20)
#define HTTP_THREADS 8
#define HTTP_IDLE_TIMEOUT 30
#define HTTP_CONNECTION_LIMIT 1024
#define HTTP_PER_IP_LIMIT 64
#define TICK_MS 100
#define KEEPALIVE_S 15

struct request;
struct http;

/* What each libmicrohttpd daemon passes its callbacks: with a pool of
 * threads, a connection's daemon is a worker, not the one started. */
struct listener {
	struct http *h;
	bool tcp;
};

struct http {
	struct daemon *d;
	struct MHD_Daemon *unix_daemon, *tcp_daemon;
	int unix_fd, tcp_fd;
	char *token;
	bool has_group;
	gid_t group;
	char *cert, *key;
	pthread_t ticker;
	bool ticker_started;
	pthread_mutex_t wait_lock;
	struct request *waiting; /* suspended on an operation */
	struct listener unix_listener, tcp_listener;
};

struct request {
	struct http *h;
	struct MHD_Connection *c;
	bool tcp;
	struct body body;
	bool handled;
	int refs; /* MHD's, and an operation's while it may wake us */
	/* Waiting on an operation. */
	struct op *op;
	double deadline;
	bool in_wait_list, ready;
	struct request *wnext, *wprev;
};

static void request_put(struct request *r)
{
	bool last;

	pthread_mutex_lock(&r->h->wait_lock);
	last = --r->refs == 0;
	pthread_mutex_unlock(&r->h->wait_lock);
	if (last) {
		op_put(r->op);
		body_free(&r->body);
		free(r);
	}
}

/* ---- replies ---- */

static enum MHD_Result queue(struct MHD_Connection *c, int status, const char *body, const char *type,
			     const struct api_reply *rp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(body ? strlen(body) : 0, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	if (body)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type ? type : "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (rp && rp->set_cookie)
		MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, rp->set_cookie);
	if (rp && rp->location)
		MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, rp->location);
	if (status == 401)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"casulod\"");
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result PRINTF_FMT(3, 4) queue_error(struct MHD_Connection *c, int status, const char *fmt, ...)
{
	struct api_reply rp = {0};
	enum MHD_Result ret;
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_error(&rp, status, "%s", msg);
	ret = queue(c, rp.status, rp.body, NULL, NULL);
	api_reply_clear(&rp);
	return ret;
}

/* ---- server-sent events ---- */

static void sse_sleep(void *conn)
{
	MHD_suspend_connection(conn);
}

static void sse_wake(void *conn)
{
	MHD_resume_connection(conn);
}

struct sse {
	struct daemon *d;
	struct event_sub *sub;
};

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = cls;

	(void)pos;
	if (atomic_load(&s->d->stopping))
		return MHD_CONTENT_READER_END_OF_STREAM;
	return events_read(s->d->events, s->sub, buf, max);
}

static void sse_free(void *cls)
{
	struct sse *s = cls;

	events_unsubscribe(s->d->events, s->sub);
	free(s);
}

static enum MHD_Result queue_sse(struct request *req, const struct api_reply *rp)
{
	struct sse *s = calloc(1, sizeof(*s));
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (s == NULL)
		return MHD_NO;
	s->d = req->h->d;
	s->sub = events_subscribe(s->d->events, rp->sse_types, rp->last_event_id, req->c, sse_sleep, sse_wake);
	if (s->sub == NULL) {
		free(s);
		return MHD_NO;
	}
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, s, sse_free);
	if (r == NULL) {
		sse_free(s);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	ret = MHD_queue_response(req->c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- console websockets ---- */

struct upgrade {
	struct instance *inst;
	bool writer;
	struct MHD_UpgradeResponseHandle *urh;
};

static void upgrade_done(void *ctx)
{
	struct upgrade *u = ctx;

	if (u->urh)
		MHD_upgrade_action(u->urh, MHD_UPGRADE_ACTION_CLOSE);
	free(u);
}

static void on_upgraded(void *cls, struct MHD_Connection *c, void *req_cls, const char *extra_in, size_t extra_in_size,
			MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct upgrade *u = cls;
	struct instance *inst = u->inst;

	(void)c;
	(void)req_cls;
	u->urh = urh;
	u->inst = NULL;
	console_attach_instance(inst, sock, extra_in, extra_in_size, u->writer, upgrade_done, u);
}

static void release_writer(struct instance *inst, bool writer)
{
	if (!writer)
		return;
	pthread_mutex_lock(&inst->d->lock);
	inst->writer_taken = false;
	pthread_mutex_unlock(&inst->d->lock);
}

static bool header_has_token(struct MHD_Connection *c, const char *name, const char *token)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
	char buf[256], *save = NULL;

	if (v == NULL)
		return false;
	snprintf(buf, sizeof(buf), "%s", v);
	for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
		if (strcasecmp(t, token) == 0)
			return true;
	return false;
}

static enum MHD_Result queue_upgrade(struct request *req, struct api_reply *rp)
{
	const char *key = MHD_lookup_connection_value(req->c, MHD_HEADER_KIND, "Sec-WebSocket-Key");
	const char *version = MHD_lookup_connection_value(req->c, MHD_HEADER_KIND, "Sec-WebSocket-Version");
	struct upgrade *u;
	struct MHD_Response *r;
	enum MHD_Result ret;
	char accept[29];

	if (!header_has_token(req->c, "Upgrade", "websocket") || !header_has_token(req->c, "Connection", "upgrade") ||
	    !ws_key_valid(key) || version == NULL || strcmp(version, "13") != 0) {
		release_writer(rp->inst, rp->writer);
		return queue_error(req->c, 400,
				   "the console is a websocket: Upgrade: websocket, Connection: Upgrade, "
				   "Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key are needed");
	}
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		release_writer(rp->inst, rp->writer);
		return MHD_NO;
	}
	ws_accept_value(key, accept);
	u->inst = rp->inst;
	u->writer = rp->writer;
	rp->inst = NULL; /* the upgrade holds the reference now */
	r = MHD_create_response_for_upgrade(on_upgraded, u);
	if (r == NULL) {
		release_writer(u->inst, u->writer);
		instance_put(u->inst);
		free(u);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
	MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
	ret = MHD_queue_response(req->c, MHD_HTTP_SWITCHING_PROTOCOLS, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- static files (the dashboard) ---- */

static const char *mime_of(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {".html", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".json", "application/json"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".ico", "image/x-icon"},
	    {".map", "application/json"},
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

static enum MHD_Result queue_file(struct request *req, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct MHD_Response *r;
	enum MHD_Result ret;
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return queue_error(req->c, 404, "no such file");
	}
	r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
	if (r == NULL) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, mime_of(path));
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'");
	ret = MHD_queue_response(req->c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- waiting on operations ---- */

static void wait_unlink_locked(struct http *h, struct request *r)
{
	if (!r->in_wait_list)
		return;
	if (r->wprev)
		r->wprev->wnext = r->wnext;
	else
		h->waiting = r->wnext;
	if (r->wnext)
		r->wnext->wprev = r->wprev;
	r->in_wait_list = false;
}

/* The operation ended (op_on_done callback). */
static void wake_waiter(void *arg)
{
	struct request *r = arg;
	struct http *h = r->h;

	pthread_mutex_lock(&h->wait_lock);
	if (r->in_wait_list) {
		wait_unlink_locked(h, r);
		r->ready = true;
		MHD_resume_connection(r->c);
	}
	pthread_mutex_unlock(&h->wait_lock);
	request_put(r);
}

static enum MHD_Result reply_op(struct request *req)
{
	json_object *o = op_to_json(req->op);
	enum MHD_Result ret = queue(
	    req->c, 200, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	    NULL, NULL);

	json_object_put(o);
	return ret;
}

static enum MHD_Result start_wait(struct request *req, struct api_reply *rp)
{
	struct http *h = req->h;

	req->op = rp->op;
	rp->op = NULL;
	if (op_status(req->op) != OP_RUNNING || rp->timeout_s <= 0)
		return reply_op(req);
	pthread_mutex_lock(&h->wait_lock);
	req->deadline = proc_monotonic() + rp->timeout_s;
	req->in_wait_list = true;
	req->wprev = NULL;
	req->wnext = h->waiting;
	if (h->waiting)
		h->waiting->wprev = req;
	h->waiting = req;
	req->refs++; /* the operation's, until it calls wake_waiter or forgets us */
	MHD_suspend_connection(req->c);
	pthread_mutex_unlock(&h->wait_lock);
	op_on_done(req->op, wake_waiter, req);
	return MHD_YES;
}

/* ---- auth ---- */

static bool peer_allowed(struct http *h, struct MHD_Connection *c, char *why, size_t size)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char path[64], *status = NULL, *g, *save = NULL;
	size_t n;
	bool ok = false;

	if (ci == NULL || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		snprintf(why, size, "the peer's credentials are unknown");
		return false;
	}
	if (cred.uid == 0)
		return true;
	if (h->has_group) {
		if (cred.gid == h->group)
			return true;
		/* Its supplementary groups, as the kernel has them. */
		snprintf(path, sizeof(path), "/proc/%d/status", (int)cred.pid);
		if (read_file(path, &status, &n) == 0 && (g = strstr(status, "\nGroups:")) != NULL) {
			char *end = strchr(g + 1, '\n');
			if (end)
				*end = '\0';
			/* strtok_r: the pool's threads run this at once. */
			for (char *t = strtok_r(g + 8, " \t", &save); t && !ok; t = strtok_r(NULL, " \t", &save))
				ok = (gid_t)strtoul(t, NULL, 10) == h->group;
		}
		free(status);
	}
	if (!ok)
		snprintf(why, size, "uid %d is neither root nor in the socket's group", (int)cred.uid);
	return ok;
}

static bool token_matches(struct http *h, const char *given)
{
	size_t a = strlen(h->token), b = given ? strlen(given) : 0;

	return given && a == b && CRYPTO_memcmp(h->token, given, a) == 0;
}

bool http_token_matches(struct daemon *d, const char *given)
{
	return d->http && d->http->token && token_matches(d->http, given);
}

/* The cookie casulod_token's value, or NULL. */
static const char *cookie_token(struct MHD_Connection *c)
{
	return MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "casulod_token");
}

/* Origin, when a browser sends one, must be this server. */
static bool origin_ok(struct MHD_Connection *c)
{
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	char want[300];

	if (origin == NULL)
		return true;
	snprintf(want, sizeof(want), "https://%s", host ? host : "");
	return strcmp(origin, want) == 0;
}

static bool is_static(const char *method, const char *url)
{
	return strcmp(method, "GET") == 0 && (strcmp(url, "/") == 0 || strncmp(url, "/ui/", 4) == 0);
}

/* 0 when the request may go on, else the reply is queued (*ret). */
static int check_auth(struct request *req, const char *method, const char *url, enum MHD_Result *ret)
{
	char why[128];

	if (!req->tcp) {
		if (peer_allowed(req->h, req->c, why, sizeof(why)))
			return 0;
		*ret = queue_error(req->c, 403, "%s", why);
		return -1;
	}
	if (is_static(method, url) || (strcmp(method, "POST") == 0 && strcmp(url, "/v1/session") == 0))
		return 0;
	{
		const char *auth = MHD_lookup_connection_value(req->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
		if (auth && strncasecmp(auth, "Bearer ", 7) == 0 && token_matches(req->h, auth + 7))
			return 0;
		if (token_matches(req->h, cookie_token(req->c))) {
			/* A cookie goes with any request a browser makes: only
			 * pages of this server may use it. */
			if (origin_ok(req->c))
				return 0;
			*ret = queue_error(req->c, 403, "the request's Origin is not this server");
			return -1;
		}
	}
	*ret = queue_error(req->c, 401, "a valid bearer token is needed (Authorization: Bearer TOKEN)");
	return -1;
}

/* ---- the request handler ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct listener *l = cls;
	struct http *h = l->h;
	struct request *req = *con_cls;
	struct api_reply rp = {0};
	enum MHD_Result ret;

	(void)version;
	if (req == NULL) {
		req = calloc(1, sizeof(*req));
		if (req == NULL)
			return MHD_NO;
		req->h = h;
		req->c = c;
		req->refs = 1;
		req->tcp = l->tcp;
		*con_cls = req;
		atomic_fetch_add(&h->d->http_requests, 1);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		/* Past the limit it is read to the end, then refused (413). */
		if (body_append(&req->body, upload_data, *upload_data_size, HTTP_MAX_BODY) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->handled) {
		/* Resumed: the operation it waited for has ended, or the time. */
		if (req->op)
			return reply_op(req);
		return MHD_NO;
	}
	req->handled = true;
	if (req->body.too_large)
		return queue_error(c, 413, "request body is larger than %u bytes", HTTP_MAX_BODY);
	if (strlen(url) > 2048)
		return queue_error(c, 414, "request path is too long");
	if (check_auth(req, method, url, &ret) < 0)
		return ret;
	api_handle(&(struct api_request){.d = h->d,
					 .c = c,
					 .method = method,
					 .url = url,
					 .body = body_text(&req->body),
					 .len = req->body.len,
					 .tcp = req->tcp},
		   &rp);
	log_debug("http: %s %s -> %d", method, url, rp.status);
	switch (rp.kind) {
	case REPLY_WAIT_OP:
		ret = start_wait(req, &rp);
		break;
	case REPLY_SSE:
		ret = queue_sse(req, &rp);
		break;
	case REPLY_UPGRADE:
		if (req->tcp && !origin_ok(c)) {
			release_writer(rp.inst, rp.writer);
			ret = queue_error(c, 403, "the request's Origin is not this server");
		} else {
			ret = queue_upgrade(req, &rp);
		}
		break;
	case REPLY_FILE:
		ret = queue_file(req, rp.file);
		break;
	default:
		ret = queue(c, rp.status, rp.body, rp.content_type, &rp);
		break;
	}
	api_reply_clear(&rp);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct request *req = *con_cls;
	struct http *h = ((struct listener *)cls)->h;

	(void)c;
	(void)toe;
	if (req == NULL)
		return;
	pthread_mutex_lock(&h->wait_lock);
	wait_unlink_locked(h, req);
	pthread_mutex_unlock(&h->wait_lock);
	*con_cls = NULL;
	request_put(req);
}

/* ---- the ticker: timeouts of waits, keepalives, old operations ---- */

static void *ticker(void *arg)
{
	struct http *h = arg;
	unsigned tick = 0;

	while (!atomic_load(&h->d->stopping)) {
		double now = proc_monotonic();
		struct request *expired = NULL;

		usleep(TICK_MS * 1000);
		pthread_mutex_lock(&h->wait_lock);
		for (struct request *r = h->waiting, *next; r; r = next) {
			next = r->wnext;
			if (r->deadline <= now) {
				wait_unlink_locked(h, r);
				r->ready = true;
				r->wnext = expired;
				expired = r;
			}
		}
		pthread_mutex_unlock(&h->wait_lock);
		while (expired) {
			struct request *r = expired;
			expired = r->wnext;
			/* Whoever drops the operation's reference: us, if it has not
			 * taken its waiters yet. */
			if (op_forget(r->op, r))
				request_put(r);
			MHD_resume_connection(r->c);
		}
		if (++tick % (KEEPALIVE_S * 1000 / TICK_MS) == 0)
			events_keepalive(h->d);
		if (tick % (60 * 1000 / TICK_MS) == 0)
			ops_gc(h->d);
	}
	return NULL;
}

/* ---- start and stop ---- */

/* libmicrohttpd's logger: fmt is its own printf format. */
static void PRINTF_FMT(2, 0) mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("http: %s", msg);
}

static struct MHD_Daemon *start_mhd(struct http *h, int fd, bool tls)
{
	struct listener *l = tls ? &h->tcp_listener : &h->unix_listener;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0);
	/* One option list for both daemons: every callback's cls is the
	 * listener, which is what on_request and on_completed read it as. */
	struct MHD_OptionItem tls_options[] = {
	    {MHD_OPTION_PER_IP_CONNECTION_LIMIT, HTTP_PER_IP_LIMIT, NULL},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, h->key},
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert},
	    {MHD_OPTION_END, 0, NULL},
	};
	struct MHD_OptionItem no_options[] = {{MHD_OPTION_END, 0, NULL}};

	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
				MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTION_LIMIT,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT, MHD_OPTION_NOTIFY_COMPLETED,
				on_completed, l, MHD_OPTION_ARRAY, tls ? tls_options : no_options, MHD_OPTION_END);
}

static int listen_tcp(const char *spec, struct err **e)
{
	char host[256], *colon;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	int fd, one = 1, rc;

	snprintf(host, sizeof(host), "%s", spec);
	colon = strrchr(host, ':');
	if (colon == NULL || colon[1] == '\0')
		return err_setx(e, EINVAL, "--listen '%s': HOST:PORT expected", spec);
	*colon = '\0';
	if (host[0] == '[' && colon[-1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (rc != 0)
		return err_setx(e, EINVAL, "--listen '%s': %s", spec, gai_strerror(rc));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		freeaddrinfo(res);
		return err_set(e, errno, "--listen '%s': socket", spec);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		rc = err_set(e, errno, "--listen '%s'", spec);
		close(fd);
		freeaddrinfo(res);
		return rc;
	}
	freeaddrinfo(res);
	return fd;
}

static int read_secret(const char *what, const char *path, char **ret, struct err **e)
{
	size_t len;

	if (read_file(path, ret, &len) < 0)
		return err_set(e, errno, "%s '%s'", what, path);
	return 0;
}

static int setup_unix(struct http *h, struct err **e)
{
	struct daemon *d = h->d;
	const char *group = d->cfg.group ? d->cfg.group : "casulo";
	struct group *g = getgrnam(group);

	if (g) {
		h->has_group = true;
		h->group = g->gr_gid;
	} else if (d->cfg.group) {
		return err_setx(e, ENOENT, "--group '%s': no such group", group);
	}
	h->unix_fd = unix_listen(d->socket_path, 128);
	if (h->unix_fd < 0)
		return err_setx(e, -h->unix_fd, "socket '%s': %s%s", d->socket_path, strerror(-h->unix_fd),
				h->unix_fd == -EEXIST ? " (a file that is not a socket is there)" : "");
	/* The kernel checks the socket's mode at connect; the peer's
	 * credentials are checked again per connection. */
	if (chmod(d->socket_path, h->has_group ? 0660 : 0600) < 0 ||
	    (h->has_group && chown(d->socket_path, 0, h->group) < 0 && geteuid() == 0))
		return err_set(e, errno, "socket '%s': chmod", d->socket_path);
	return 0;
}

int http_start(struct daemon *d, struct err **e)
{
	struct http *h = calloc(1, sizeof(*h));
	int r;

	if (h == NULL)
		return err_set(e, ENOMEM, "http");
	h->d = d;
	h->unix_fd = h->tcp_fd = -1;
	h->unix_listener = (struct listener){h, false};
	h->tcp_listener = (struct listener){h, true};
	pthread_mutex_init(&h->wait_lock, NULL);
	d->http = h;
	if (d->cfg.listen) {
		if (!d->cfg.tls_cert || !d->cfg.tls_key || !d->cfg.token_file)
			return err_setx(e, EINVAL,
					"--listen needs --tls-cert, --tls-key and --token-file: no plain or "
					"unauthenticated TCP");
		if ((r = read_secret("--tls-cert", d->cfg.tls_cert, &h->cert, e)) < 0 ||
		    (r = read_secret("--tls-key", d->cfg.tls_key, &h->key, e)) < 0 ||
		    (r = read_secret("--token-file", d->cfg.token_file, &h->token, e)) < 0)
			return r;
		h->token[strcspn(h->token, "\r\n")] = '\0';
		if (strlen(h->token) < 16)
			return err_setx(e, EINVAL, "--token-file '%s': the token must have at least 16 characters",
					d->cfg.token_file);
		if ((h->tcp_fd = listen_tcp(d->cfg.listen, e)) < 0)
			return h->tcp_fd;
	}
	if ((r = setup_unix(h, e)) < 0)
		return r;
	h->unix_daemon = start_mhd(h, h->unix_fd, false);
	if (h->unix_daemon == NULL)
		return err_setx(e, EIO, "socket '%s': the HTTP server did not start", d->socket_path);
	if (h->tcp_fd >= 0) {
		h->tcp_daemon = start_mhd(h, h->tcp_fd, true);
		if (h->tcp_daemon == NULL)
			return err_setx(e, EIO,
					"--listen '%s': the HTTPS server did not start (is the key the certificate's?)",
					d->cfg.listen);
	}
	if (pthread_create(&h->ticker, NULL, ticker, h) == 0)
		h->ticker_started = true;
	return 0;
}

void http_stop(struct daemon *d)
{
	struct http *h = d->http;

	if (h == NULL)
		return;
	if (h->ticker_started)
		pthread_join(h->ticker, NULL);
	/* Suspended connections must be resumed before MHD stops. */
	pthread_mutex_lock(&h->wait_lock);
	for (struct request *r = h->waiting; r; r = r->wnext)
		MHD_resume_connection(r->c);
	pthread_mutex_unlock(&h->wait_lock);
	events_ping(d->events);
	if (h->unix_daemon)
		MHD_stop_daemon(h->unix_daemon);
	if (h->tcp_daemon)
		MHD_stop_daemon(h->tcp_daemon);
	if (h->unix_fd >= 0) {
		close(h->unix_fd);
		unlink(d->socket_path);
	}
	if (h->tcp_fd >= 0)
		close(h->tcp_fd);
	free(h->token);
	free(h->cert);
	free(h->key);
	/* Connections' requests are gone with MHD; h stays for late wakers. */
}
