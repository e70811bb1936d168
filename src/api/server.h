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
struct api_server;

int api_server_start(struct vm *vm, const char *socket_path, struct api_server **ret, struct err **e);
/* Close the socket, finish the connections, remove the socket file. */
void api_server_stop(struct api_server *s);

/* Route one request; exported for the unit tests and the fuzzer.  Fills
 * *status and *body (malloc'ed JSON or NULL).  vm may be NULL in tests:
 * routing and body checks then answer without running anything. */
void api_handle(struct vm *vm, const char *method, const char *url, const char *body, size_t body_len,
		int *status, char **resp_body);

#endif
