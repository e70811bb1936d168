/*
 * Static network configuration from the kernel-style option
 *   ip=<client>:<server>:<gateway>:<netmask>:<hostname>:<device>:<autoconf>
 * (Documentation/admin-guide/nfs/nfsroot.rst), applied with ioctls.
 * Only static configuration is supported: autoconf "off", "none",
 * "static" or empty.  The netmask may also be a prefix length ("24").
 */
#ifndef CASULO_GUEST_IPCONFIG_H
#define CASULO_GUEST_IPCONFIG_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

struct ipconfig {
	bool enabled; /* false for ip=off / ip=none */
	struct in_addr client;
	struct in_addr gateway; /* INADDR_ANY: no default route */
	struct in_addr netmask; /* classful default when not given */
	char hostname[65];	/* "" when not given */
	char device[IFNAMSIZ];	/* "" = the first device that is not loopback */
};

/*
 * Parse the value of ip=.  Returns 0, -EINVAL (malformed; msg says why) or
 * -EOPNOTSUPP (DHCP, BOOTP or RARP asked for).  msg gets a short reason.
 */
int ipconfig_parse(const char *spec, struct ipconfig *c, char *msg, size_t msgsize);

/*
 * Bring up lo and the device (waiting up to wait_ms for it to appear),
 * set address, netmask, default route and hostname.  Returns 0 or -errno
 * with msg saying what failed.
 */
int ipconfig_apply(const struct ipconfig *c, int wait_ms, char *msg, size_t msgsize);

#endif
