#include "common/migration-address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* out's text was cut to len: the caller's buffer is too small. */
static int check_fits(const char *to, int n, size_t len, struct err **e)
{
	if (n < 0 || (size_t)n >= len)
		return err_setx(e, ENAMETOOLONG, "migration destination '%s': too long", to);
	return 0;
}

int migration_address_resolve(const char *to, char *out, size_t len, struct err **e)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
	const char *colon = strrchr(to, ':');
	char host[256], addr[INET6_ADDRSTRLEN];
	unsigned char probe[sizeof(struct in6_addr)];
	int r;

	if (strncmp(to, "tcp:", 4) != 0 || colon == NULL || colon - to - 4 <= 0 || to[4] == '[' ||
	    (size_t)(colon - to - 4) >= sizeof(host))
		return check_fits(to, snprintf(out, len, "%s", to), len, e);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - to - 4), to + 4);
	if (inet_pton(AF_INET, host, probe) == 1 || inet_pton(AF_INET6, host, probe) == 1)
		return check_fits(to, snprintf(out, len, "%s", to), len, e);
	r = getaddrinfo(host, NULL, &hints, &res);
	if (r != 0)
		return err_setx(e, r == EAI_SYSTEM ? errno : EHOSTUNREACH, "migration destination '%s': %s", to,
				r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
	if (res->ai_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, addr, sizeof(addr));
		r = check_fits(to, snprintf(out, len, "tcp:[%s]%s", addr, colon), len, e);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, addr, sizeof(addr));
		r = check_fits(to, snprintf(out, len, "tcp:%s%s", addr, colon), len, e);
	}
	freeaddrinfo(res);
	return r;
}
