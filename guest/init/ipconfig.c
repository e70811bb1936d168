#include "ipconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IPCONFIG_FIELDS 7

/* Copy field i of spec (fields split by ':') into buf; "" if absent. */
static int ipconfig_field(const char *spec, int i, char *buf, size_t size)
{
	const char *p = spec, *end;

	for (; i > 0; i--) {
		p = strchr(p, ':');
		if (p == NULL) {
			buf[0] = '\0';
			return 0;
		}
		p++;
	}
	end = strchr(p, ':');
	size_t len = end ? (size_t)(end - p) : strlen(p);
	if (len >= size)
		return -EINVAL;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return 0;
}

static int ipconfig_netmask(const char *s, struct in_addr *mask)
{
	char *end;

	if (inet_pton(AF_INET, s, mask) == 1)
		return 0;
	errno = 0;
	unsigned long bits = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || bits > 32)
		return -EINVAL;
	mask->s_addr = bits == 0 ? 0 : htonl(~0U << (32 - bits));
	return 0;
}

static bool ipconfig_is_autoconf(const char *s)
{
	static const char *const names[] = {"on", "any", "dhcp", "bootp", "rarp", "both"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0)
			return true;
	return false;
}

int ipconfig_parse(const char *spec, struct ipconfig *c, char *msg, size_t msgsize)
{
	char f[IPCONFIG_FIELDS][256];

	memset(c, 0, sizeof(*c));
	msg[0] = '\0';
	if (strcmp(spec, "off") == 0 || strcmp(spec, "none") == 0)
		return 0;
	for (int i = 0; i < IPCONFIG_FIELDS; i++) {
		if (ipconfig_field(spec, i, f[i], sizeof(f[i])) < 0) {
			snprintf(msg, msgsize, "field %d is too long", i + 1);
			return -EINVAL;
		}
	}
	/* A lone keyword (ip=dhcp) or the autoconf field asks for a protocol. */
	if (strchr(spec, ':') == NULL && ipconfig_is_autoconf(spec)) {
		snprintf(msg, msgsize, "autoconfiguration '%s' is not supported, only static addresses", spec);
		return -EOPNOTSUPP;
	}
	if (ipconfig_is_autoconf(f[6])) {
		snprintf(msg, msgsize, "autoconfiguration '%s' is not supported, only static addresses", f[6]);
		return -EOPNOTSUPP;
	}
	if (f[6][0] != '\0' && strcmp(f[6], "off") != 0 && strcmp(f[6], "none") != 0 && strcmp(f[6], "static") != 0) {
		snprintf(msg, msgsize, "unknown autoconf '%s'", f[6]);
		return -EINVAL;
	}
	if (inet_pton(AF_INET, f[0], &c->client) != 1) {
		snprintf(msg, msgsize, "bad client address '%s'", f[0]);
		return -EINVAL;
	}
	if (f[2][0] != '\0' && inet_pton(AF_INET, f[2], &c->gateway) != 1) {
		snprintf(msg, msgsize, "bad gateway address '%s'", f[2]);
		return -EINVAL;
	}
	if (f[3][0] != '\0') {
		if (ipconfig_netmask(f[3], &c->netmask) < 0) {
			snprintf(msg, msgsize, "bad netmask '%s'", f[3]);
			return -EINVAL;
		}
	} else {
		/* The kernel's default: the address class. */
		uint32_t a = ntohl(c->client.s_addr);
		c->netmask.s_addr = htonl(IN_CLASSA(a) ? IN_CLASSA_NET : IN_CLASSB(a) ? IN_CLASSB_NET : IN_CLASSC_NET);
	}
	if (strlen(f[4]) >= sizeof(c->hostname) || strlen(f[5]) >= sizeof(c->device)) {
		snprintf(msg, msgsize, "hostname or device name too long");
		return -EINVAL;
	}
	strcpy(c->hostname, f[4]);
	strcpy(c->device, f[5]);
	c->enabled = true;
	return 0;
}

/* --- applying it: ioctls on an AF_INET socket --- */

static int ipconfig_up(int sock, const char *dev)
{
	struct ifreq ifr = {0};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
		return -errno;
	return 0;
}

static int ipconfig_set_addr(int sock, const char *dev, unsigned long req, struct in_addr a)
{
	struct ifreq ifr = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	sin->sin_family = AF_INET;
	sin->sin_addr = a;
	return ioctl(sock, req, &ifr) < 0 ? -errno : 0;
}

/* The first interface that is not loopback, or "" if none yet. */
static void ipconfig_first_device(int sock, char *name, size_t size)
{
	struct if_nameindex *list = if_nameindex();

	name[0] = '\0';
	for (struct if_nameindex *i = list; i != NULL && i->if_index != 0; i++) {
		struct ifreq ifr = {0};

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", i->if_name);
		if (ioctl(sock, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_LOOPBACK)) {
			snprintf(name, size, "%s", i->if_name);
			break;
		}
	}
	if (list != NULL)
		if_freenameindex(list);
}

int ipconfig_apply(const struct ipconfig *c, int wait_ms, char *msg, size_t msgsize)
{
	char dev[IFNAMSIZ];
	int sock, r;

	msg[0] = '\0';
	if (!c->enabled)
		return 0;
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		r = -errno;
		snprintf(msg, msgsize, "socket: %s", strerror(-r));
		return r;
	}
	r = ipconfig_up(sock, "lo");
	if (r < 0) {
		snprintf(msg, msgsize, "bring up 'lo': %s", strerror(-r));
		goto out;
	}
	/* A driver may still be registering its device: poll for it. */
	for (int waited = 0;; waited += 10) {
		if (c->device[0] != '\0')
			snprintf(dev, sizeof(dev), "%s", c->device);
		else
			ipconfig_first_device(sock, dev, sizeof(dev));
		if (dev[0] != '\0' && if_nametoindex(dev) != 0)
			break;
		if (waited >= wait_ms) {
			r = -ENODEV;
			if (c->device[0] != '\0')
				snprintf(msg, msgsize, "no network device '%s'", c->device);
			else
				snprintf(msg, msgsize, "no network device");
			goto out;
		}
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	if ((r = ipconfig_set_addr(sock, dev, SIOCSIFADDR, c->client)) < 0 ||
	    (r = ipconfig_set_addr(sock, dev, SIOCSIFNETMASK, c->netmask)) < 0) {
		snprintf(msg, msgsize, "'%s': set address: %s", dev, strerror(-r));
		goto out;
	}
	if ((r = ipconfig_up(sock, dev)) < 0) {
		snprintf(msg, msgsize, "bring up '%s': %s", dev, strerror(-r));
		goto out;
	}
	if (c->gateway.s_addr != INADDR_ANY) {
		struct rtentry rt = {0};
		struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
		struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst;
		struct sockaddr_in *mask = (struct sockaddr_in *)&rt.rt_genmask;

		dst->sin_family = mask->sin_family = gw->sin_family = AF_INET;
		gw->sin_addr = c->gateway;
		rt.rt_flags = RTF_UP | RTF_GATEWAY;
		rt.rt_dev = dev;
		if (ioctl(sock, SIOCADDRT, &rt) < 0) {
			r = -errno;
			snprintf(msg, msgsize, "default route via %s: %s", inet_ntoa(c->gateway), strerror(-r));
			goto out;
		}
	}
	if (c->hostname[0] != '\0' && sethostname(c->hostname, strlen(c->hostname)) < 0) {
		r = -errno;
		snprintf(msg, msgsize, "sethostname '%s': %s", c->hostname, strerror(-r));
		goto out;
	}
	r = 0;
out:
	close(sock);
	return r;
}
