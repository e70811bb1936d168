/* Between http.c (libmicrohttpd, sockets, auth, suspension) and api.c
 * (the routes of docs/casulod-api.yaml): a request in, a reply out. */
#ifndef CASULO_DAEMON_API_H
#define CASULO_DAEMON_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct daemon;
struct instance;
struct op;
struct MHD_Connection;

struct api_request {
	struct daemon *d;
	struct MHD_Connection *c; /* headers and query arguments */
	const char *method, *url;
	const char *body;
	size_t len;
	bool tcp; /* on the TLS listener (cookies, Origin checks) */
};

enum reply_kind {
	REPLY_JSON,    /* status and body (JSON, or text with content_type) */
	REPLY_WAIT_OP, /* the operation's JSON once it has ended or timeout_s passed */
	REPLY_SSE,     /* an events stream */
	REPLY_UPGRADE, /* a console websocket */
	REPLY_FILE,    /* a dashboard file */
};

struct api_reply {
	enum reply_kind kind;
	int status;
	char *body;
	const char *content_type; /* NULL: application/json */
	char *set_cookie;
	char *location;
	struct op *op; /* WAIT_OP (referenced) */
	double timeout_s;
	unsigned sse_types;
	uint64_t last_event_id;
	struct instance *inst; /* UPGRADE (referenced) */
	bool writer;
	char *file; /* FILE: its path */
};

/* Route and answer one request (auth already checked). */
void api_handle(const struct api_request *rq, struct api_reply *rp);
/* An error reply: status and {"error": MESSAGE}. */
void api_error(struct api_reply *rp, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void api_reply_clear(struct api_reply *rp);

struct schema_doc;
struct err;
/* 0 when every route has its operation in doc (docs/casulod-api.yaml);
 * else the first that has none, in *e (such a request is answered 500).
 * For the unit test that keeps the two in step. */
int api_check_routes_documented(const struct schema_doc *doc, struct err **e);

#endif
