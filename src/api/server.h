/*
 * The VM's control API: HTTP/1.1 with JSON bodies on a Unix socket
 * (docs/api.yaml).  Requests are parsed and checked here, on the API's
 * own threads (one per connection, so a slow client holds up only
 * itself), and carried out by the VMM thread as struct vm_action.
 */
#ifndef CASULO_API_SERVER_H
#define CASULO_API_SERVER_H

#include "common/err.h"

struct vm;
struct vm_actions;
struct api_server;

/* Serve the VM's API on a Unix socket, with its control plane
 * (actions.h); before vm_run(), stopped after it. */
int api_server_start(struct vm *vm, const char *socket_path, struct api_server **ret, struct err **e) MUST_CHECK;
/* Close the socket, finish the connections, remove the socket file. */
void api_server_stop(struct api_server *s);

/* Route one request; exported for the unit tests and the fuzzer.  Fills
 * *status and *body (malloc'ed JSON or NULL).  acts may be NULL in tests:
 * routing and body checks then answer without running anything. */
void api_handle(struct vm_actions *acts, const char *method, const char *url, const char *body, size_t body_len,
		int *status, char **resp_body);

/* 0 when every route has its operation in docs/api.yaml (a request
 * on a route without one is refused with 500); else the first that has
 * none, in *e.  For the unit test that keeps the two in step. */
int api_check_routes_documented(struct err **e) MUST_CHECK;

#endif
