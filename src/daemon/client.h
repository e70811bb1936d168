/*
 * A client of casulod's API (docs/casulod-api.yaml), for the casulo CLI:
 * requests over the Unix socket or HTTPS with a bearer token (libcurl),
 * and the console websocket over either.
 */
#ifndef CASULO_DAEMON_CLIENT_H
#define CASULO_DAEMON_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct casulod_client {
	const char *socket; /* the Unix socket, when url is NULL */
	const char *url;    /* "https://HOST:PORT" */
	char *token;	    /* for url */
	const char *tls_ca; /* a CA file for url's certificate */
	bool insecure;	    /* accept any certificate */
};

/* From the options given, else $CASULOD_URL, $CASULOD_TOKEN_FILE,
 * $CASULOD_SOCKET, /run/casulod/casulod.sock. */
int casulod_client_init(struct casulod_client *c, const char *socket, const char *url, const char *token_file,
			const char *tls_ca, struct err **e) MUST_CHECK;
void casulod_client_clear(struct casulod_client *c);

/* One request: *status and *resp (malloc'd, "" when empty).  Fails only
 * when casulod did not answer ("casulod is not running?" with the socket). */
int casulod_request(const struct casulod_client *c, const char *method, const char *path, const char *body, int *status,
		    char **resp, struct err **e) MUST_CHECK;

/* The error message of an error reply's JSON body (or the body as it is,
 * or "HTTP N"), malloc'd. */
char *casulod_error_text(int status, const char *resp);

struct casulod_ws;
/* Open a websocket on path (a console). */
int casulod_ws_open(const struct casulod_client *c, const char *path, struct casulod_ws **ret,
		    struct err **e) MUST_CHECK;
/* The fd to poll for input (data may also wait inside TLS: call
 * casulod_ws_read after a short timeout too). */
int casulod_ws_fd(const struct casulod_ws *ws);
/* A message's payload into *data (valid until the next call): >0 its
 * length, 0 nothing now, -EPIPE when the server closed. */
ssize_t casulod_ws_read(struct casulod_ws *ws, const char **data);
int casulod_ws_send(struct casulod_ws *ws, const void *data, size_t len);
void casulod_ws_close(struct casulod_ws *ws);

#endif
