/*
 * Fuzz target: the control API's routing and request-body checks
 * (src/api/server.c), with no VM behind them.  The input is split into
 * method, path and body; whatever they are, the answer must be a status
 * and, for errors, a JSON body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "PUT", "POST", "DELETE"};
	static const char *const paths[] = {"/vm",
					    "/vm/state",
					    "/vm/shutdown",
					    "/vm/stop",
					    "/snapshot/create",
					    "/snapshot/load",
					    "/migration/send",
					    "/migration",
					    "/balloon",
					    "/balloon/statistics",
					    "/metrics",
					    "/rate-limits",
					    "/nope"};
	char *body, *resp = NULL;
	int status = 0;

	if (size < 2)
		return 0;
	body = malloc(size - 2 + 1);
	if (body == NULL)
		return 0;
	memcpy(body, data + 2, size - 2);
	body[size - 2] = '\0';
	api_handle(NULL, methods[data[0] % 4], paths[data[1] % (sizeof(paths) / sizeof(paths[0]))], body, size - 2,
		   &status, &resp);
	if (status < 200 || status > 599 || (status >= 400 && resp == NULL))
		abort();
	free(resp);
	free(body);
	return 0;
}
