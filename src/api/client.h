/* A client of the control API over its Unix socket (libcurl). */
#ifndef CASULO_API_CLIENT_H
#define CASULO_API_CLIENT_H

#include "common/err.h"

/* One request.  *status gets the HTTP status and *body the response body
 * (malloc'ed, possibly empty).  Fails only when there was no answer. */
int api_request(const char *socket_path, const char *method, const char *path, const char *body, int *status,
		char **resp_body, struct err **e);
/* The same with a time limit of its own (api_request's is 600 s, for
 * snapshots of large guests). */
int api_request_timeout(const char *socket_path, const char *method, const char *path, const char *body, long timeout_s,
			int *status, char **resp_body, struct err **e);

#endif
