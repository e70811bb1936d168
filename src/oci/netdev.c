/* linux.netDevices (runtime-spec 1.2): host network devices moved into the
 * container's network namespace, renamed on the way, with one rtnetlink
 * RTM_NEWLINK (IFLA_NET_NS_PID + IFLA_IFNAME) each. */
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/macro.h"
#include "oci/container.h"

struct nl_req {
	struct nlmsghdr h;
	struct ifinfomsg i;
	char attrs[256];
};

static void add_attr(struct nl_req *req, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)req + NLMSG_ALIGN(req->h.nlmsg_len));

	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	req->h.nlmsg_len = NLMSG_ALIGN(req->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int move_one(int sock, const char *host_name, const char *new_name, pid_t pid, struct err **e)
{
	struct nl_req req = {0};
	char buf[4096];
	uint32_t target = (uint32_t)pid;
	unsigned index = if_nametoindex(host_name);
	ssize_t n;

	if (index == 0)
		return err_set(e, errno, "linux.netDevices '%s': no such network device on the host", host_name);
	req.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	req.h.nlmsg_type = RTM_NEWLINK;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.h.nlmsg_seq = 1;
	req.i.ifi_family = AF_UNSPEC;
	req.i.ifi_index = (int)index;
	add_attr(&req, IFLA_NET_NS_PID, &target, sizeof(target));
	if (new_name && *new_name)
		add_attr(&req, IFLA_IFNAME, new_name, strlen(new_name) + 1);
	if (send(sock, &req, req.h.nlmsg_len, 0) < 0)
		return err_set(e, errno, "linux.netDevices '%s': netlink send", host_name);
	n = recv(sock, buf, sizeof(buf), 0);
	if (n < 0)
		return err_set(e, errno, "linux.netDevices '%s': netlink receive", host_name);
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *err = NLMSG_DATA(h);
			if (err->error)
				return err_set(e, -err->error, "linux.netDevices '%s': move into the container as '%s'",
					       host_name, new_name && *new_name ? new_name : host_name);
			return 0;
		}
	}
	return 0;
}

int netdev_loopback_up(struct err **e)
{
	struct ifreq ifr = {0};
	_cleanup_close_ int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (sock < 0)
		return err_set(e, errno, "network namespace: socket");
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		return err_set(e, errno, "network namespace: read the flags of 'lo'");
	if (ifr.ifr_flags & IFF_UP)
		return 0;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
		return err_set(e, errno, "network namespace: bring 'lo' up");
	return 0;
}

int netdev_move_all(const struct oci_spec *s, pid_t pid, struct err **e)
{
	_cleanup_close_ int sock = -1;
	int r;

	if (s->n_net_devices == 0)
		return 0;
	sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (sock < 0)
		return err_set(e, errno, "linux.netDevices: netlink socket");
	for (size_t i = 0; i < s->n_net_devices; i++)
		if ((r = move_one(sock, s->net_devices[i].key, s->net_devices[i].value, pid, e)) < 0)
			return r;
	return 0;
}
