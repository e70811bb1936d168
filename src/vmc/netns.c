#include "vmc/netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define NL_BUF 8192

struct nlmsg {
	union {
		struct nlmsghdr h;
		char buf[NL_BUF];
	};
};

static struct rtattr *nla_put(struct nlmsghdr *h, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
	size_t alen = RTA_LENGTH(len);

	if (NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(alen) > NL_BUF)
		return NULL;
	a->rta_type = type;
	a->rta_len = (unsigned short)alen;
	if (len)
		memcpy(RTA_DATA(a), data, len);
	h->nlmsg_len = (uint32_t)(NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(alen));
	return a;
}

static struct rtattr *nla_nest(struct nlmsghdr *h, unsigned short type)
{
	return nla_put(h, type, NULL, 0);
}

static void nla_nest_end(struct nlmsghdr *h, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)((char *)h + h->nlmsg_len - (char *)nest);
}

static int nl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct timeval tv = {5, 0};

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Send one request and wait for its acknowledgement: 0 or -errno. */
static int nl_talk(int fd, struct nlmsghdr *h)
{
	static uint32_t seq;
	char buf[NL_BUF];
	ssize_t n;

	h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	h->nlmsg_seq = ++seq;
	if (send(fd, h, h->nlmsg_len, 0) < 0)
		return -errno;
	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		for (struct nlmsghdr *r = (struct nlmsghdr *)buf; NLMSG_OK(r, (size_t)n); r = NLMSG_NEXT(r, n)) {
			if (r->nlmsg_seq != h->nlmsg_seq)
				continue;
			if (r->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *err = NLMSG_DATA(r);
				if (r->nlmsg_len < NLMSG_LENGTH(sizeof(*err)))
					return -EPROTO;
				return err->error;
			}
		}
	}
}

typedef void (*nl_dump_fn)(const struct nlmsghdr *h, void *ctx);

/* A dump request of type for family; fn sees each answer. */
static int nl_dump(int fd, uint16_t type, unsigned char family, nl_dump_fn fn, void *ctx)
{
	struct {
		struct nlmsghdr h;
		struct rtgenmsg g;
	} req = {.h = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtgenmsg)),
		       .nlmsg_type = type,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		       .nlmsg_seq = 1},
		 .g = {.rtgen_family = family}};
	char buf[32768];

	if (send(fd, &req, req.h.nlmsg_len, 0) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		for (struct nlmsghdr *r = (struct nlmsghdr *)buf; NLMSG_OK(r, (size_t)n); r = NLMSG_NEXT(r, n)) {
			if (r->nlmsg_type == NLMSG_DONE)
				return 0;
			if (r->nlmsg_type == NLMSG_ERROR)
				return -EPROTO;
			if (r->nlmsg_type == type - 2)
				fn(r, ctx); /* RTM_GET* answers with RTM_NEW* (GET - 2) */
		}
	}
}

#define NL_MAX_LINKS 64

struct links {
	struct vmc_netif l[NL_MAX_LINKS];
	unsigned flags[NL_MAX_LINKS];
	size_t n;
};

static void on_link(const struct nlmsghdr *h, void *ctx)
{
	struct links *ls = ctx;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifi));
	struct vmc_netif *l;

	if (len < 0 || ls->n == NL_MAX_LINKS)
		return;
	l = &ls->l[ls->n];
	memset(l, 0, sizeof(*l));
	l->ifindex = ifi->ifi_index;
	ls->flags[ls->n] = ifi->ifi_flags;
	for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		size_t alen = RTA_PAYLOAD(a);
		if (a->rta_type == IFLA_IFNAME && alen > 0 && alen <= IF_NAMESIZE)
			snprintf(l->name, sizeof(l->name), "%.*s", (int)alen, (const char *)RTA_DATA(a));
		else if (a->rta_type == IFLA_ADDRESS && alen == 6)
			memcpy(l->mac, RTA_DATA(a), 6);
		else if (a->rta_type == IFLA_MTU && alen == 4)
			memcpy(&l->mtu, RTA_DATA(a), 4);
	}
	ls->n++;
}

static void on_addr(const struct nlmsghdr *h, void *ctx)
{
	struct links *ls = ctx;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifa));

	if (len < 0 || ifa->ifa_family != AF_INET)
		return;
	for (size_t i = 0; i < ls->n; i++) {
		struct vmc_netif *l = &ls->l[i];
		if (l->ifindex != (int)ifa->ifa_index || l->address[0])
			continue;
		for (const struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len))
			if ((a->rta_type == IFA_LOCAL || a->rta_type == IFA_ADDRESS) && RTA_PAYLOAD(a) == 4) {
				inet_ntop(AF_INET, RTA_DATA(a), l->address, sizeof(l->address));
				l->prefix = ifa->ifa_prefixlen;
			}
	}
}

static void on_route(const struct nlmsghdr *h, void *ctx)
{
	struct links *ls = ctx;
	const struct rtmsg *rt = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*rt));
	char gw[16] = "";
	int oif = 0;

	if (len < 0 || rt->rtm_family != AF_INET || rt->rtm_dst_len != 0 || rt->rtm_table != RT_TABLE_MAIN)
		return;
	for (const struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == RTA_GATEWAY && RTA_PAYLOAD(a) == 4)
			inet_ntop(AF_INET, RTA_DATA(a), gw, sizeof(gw));
		else if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) == 4)
			memcpy(&oif, RTA_DATA(a), 4);
	}
	for (size_t i = 0; i < ls->n; i++)
		if (ls->l[i].ifindex == oif && gw[0] && ls->l[i].gateway[0] == '\0')
			snprintf(ls->l[i].gateway, sizeof(ls->l[i].gateway), "%s", gw);
}

int vmc_net_find(struct vmc_netif *nif, struct err **e)
{
	static struct links ls;
	int fd = nl_open(), r;

	if (fd < 0)
		return err_set(e, errno, "netlink socket");
	memset(&ls, 0, sizeof(ls));
	if ((r = nl_dump(fd, RTM_GETLINK, AF_UNSPEC, on_link, &ls)) < 0 ||
	    (r = nl_dump(fd, RTM_GETADDR, AF_INET, on_addr, &ls)) < 0 ||
	    (r = nl_dump(fd, RTM_GETROUTE, AF_INET, on_route, &ls)) < 0) {
		close(fd);
		return err_set(e, -r, "network namespace: list its interfaces");
	}
	close(fd);
	for (size_t i = 0; i < ls.n; i++) {
		if (!(ls.flags[i] & IFF_UP) || (ls.flags[i] & IFF_LOOPBACK) || ls.l[i].address[0] == '\0' ||
		    strcmp(ls.l[i].name, VMC_TAP_NAME) == 0)
			continue;
		*nif = ls.l[i];
		return 0;
	}
	return -ENOENT;
}

static int tap_open(unsigned mtu, int *index, struct err **e)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), s;

	if (fd < 0)
		return err_set(e, errno, "TAP: open '/dev/net/tun'");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", VMC_TAP_NAME);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		/* EBUSY: the TAP exists, held by the VMM of another container
		 * plugged into this namespace (a pod's second container). */
		int r = errno == EBUSY ? err_setx(e, EBUSY,
						  "TAP '%s': in use by another container's VM in this network "
						  "namespace: a network namespace (a pod) serves one container in a VM",
						  VMC_TAP_NAME)
				       : err_set(e, errno, "TAP '%s': create", VMC_TAP_NAME);
		close(fd);
		return r;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ifr.ifr_mtu = (int)mtu;
	if (s < 0 || (mtu && ioctl(s, SIOCSIFMTU, &ifr) < 0) || ioctl(s, SIOCGIFINDEX, &ifr) < 0 ||
	    (*index = ifr.ifr_ifindex, ioctl(s, SIOCGIFFLAGS, &ifr) < 0) ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0)) {
		int r = err_set(e, errno, "TAP '%s': bring up", VMC_TAP_NAME);
		if (s >= 0)
			close(s);
		close(fd);
		return r;
	}
	close(s);
	return fd;
}

static void tc_header(struct nlmsg *m, uint16_t type, uint16_t flags, int ifindex, uint32_t parent, uint32_t handle,
		      uint32_t info)
{
	struct tcmsg *t;

	memset(m, 0, sizeof(*m));
	m->h.nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg));
	m->h.nlmsg_type = type;
	m->h.nlmsg_flags = flags;
	t = NLMSG_DATA(&m->h);
	t->tcm_family = AF_UNSPEC;
	t->tcm_ifindex = ifindex;
	t->tcm_parent = parent;
	t->tcm_handle = handle;
	t->tcm_info = info;
}

static int tc_ingress(int fd, int ifindex)
{
	struct nlmsg m;

	tc_header(&m, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, ifindex, TC_H_INGRESS, 0xffff0000U, 0);
	nla_put(&m.h, TCA_KIND, "ingress", sizeof("ingress"));
	return nl_talk(fd, &m.h);
}

/* Every frame arriving on from leaves through to. */
static int tc_redirect(int fd, int from, int to)
{
	struct tc_mirred parms = {.action = TC_ACT_STOLEN, .eaction = TCA_EGRESS_REDIR, .ifindex = (uint32_t)to};
	struct rtattr *opts, *acts, *act, *aopts;
	struct nlmsg m;

	tc_header(&m, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, from, 0xffff0000U, 0,
		  TC_H_MAKE(1U << 16, htons(ETH_P_ALL)));
	if (!nla_put(&m.h, TCA_KIND, "matchall", sizeof("matchall")) || !(opts = nla_nest(&m.h, TCA_OPTIONS)) ||
	    !(acts = nla_nest(&m.h, TCA_MATCHALL_ACT)) || !(act = nla_nest(&m.h, 1)) ||
	    !nla_put(&m.h, TCA_ACT_KIND, "mirred", sizeof("mirred")) || !(aopts = nla_nest(&m.h, TCA_ACT_OPTIONS)) ||
	    !nla_put(&m.h, TCA_MIRRED_PARMS, &parms, sizeof(parms)))
		return -EMSGSIZE;
	nla_nest_end(&m.h, aopts);
	nla_nest_end(&m.h, act);
	nla_nest_end(&m.h, acts);
	nla_nest_end(&m.h, opts);
	return nl_talk(fd, &m.h);
}

static void tc_remove_ingress(int fd, int ifindex)
{
	struct nlmsg m;

	tc_header(&m, RTM_DELQDISC, 0, ifindex, TC_H_INGRESS, 0xffff0000U, 0);
	(void)nl_talk(fd, &m.h);
}

int vmc_net_plug(const struct vmc_netif *nif, int *tap_fd, struct err **e)
{
	int tap_index = 0, fd, nl, r;

	if ((fd = tap_open(nif->mtu, &tap_index, e)) < 0)
		return fd;
	if ((nl = nl_open()) < 0) {
		close(fd);
		return err_set(e, errno, "netlink socket");
	}
	r = tc_ingress(nl, nif->ifindex);
	if (r == -EEXIST) {
		r = err_setx(e, EEXIST,
			     "interface '%s': it has an ingress qdisc already (another VM's redirection?): a network "
			     "namespace serves one container in a VM",
			     nif->name);
		goto fail;
	}
	if (r < 0) {
		r = err_set(e, -r, "interface '%s': add an ingress qdisc (tc; the sch_ingress module)", nif->name);
		goto fail;
	}
	if ((r = tc_ingress(nl, tap_index)) < 0 || (r = tc_redirect(nl, nif->ifindex, tap_index)) < 0 ||
	    (r = tc_redirect(nl, tap_index, nif->ifindex)) < 0) {
		tc_remove_ingress(nl, nif->ifindex);
		r = err_set(e, -r,
			    "interface '%s': redirect it to TAP '%s' (tc matchall and mirred: cls_matchall, "
			    "act_mirred)",
			    nif->name, VMC_TAP_NAME);
		goto fail;
	}
	close(nl);
	*tap_fd = fd;
	return 0;
fail:
	close(nl);
	close(fd);
	return r;
}

void vmc_net_unplug(const char *ifname)
{
	unsigned index = if_nametoindex(ifname);
	int nl;

	if (index == 0 || (nl = nl_open()) < 0)
		return;
	tc_remove_ingress(nl, (int)index);
	close(nl);
}
