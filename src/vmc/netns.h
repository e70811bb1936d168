/*
 * The VM's network interface in the container's network namespace, as
 * Kata Containers plugs it: a TAP beside the interface podman or CNI made
 * (a veth), and tc redirections between the two (an ingress qdisc and a
 * matchall filter with a mirred "egress redirect" action on each), so
 * that every frame arriving on the veth leaves through the TAP to the VM,
 * and every frame the VM sends leaves through the veth.  The guest's eth0
 * takes the veth's MAC and IPv4 address; port publishing and the bridge
 * on the host see the same address and MAC as with runc.
 */
#ifndef CASULO_VMC_NETNS_H
#define CASULO_VMC_NETNS_H

#include <net/if.h>
#include <stdint.h>

#include "common/err.h"

#define VMC_TAP_NAME "casulo-tap0"

struct vmc_netif {
	char name[IF_NAMESIZE];
	int ifindex;
	uint8_t mac[6];
	unsigned mtu;
	char address[16]; /* dotted IPv4 */
	unsigned prefix;
	char gateway[16]; /* "" when there is no default route through it */
};

/* In the calling thread's network namespace: the interface the
 * container's traffic uses (the first one up, not loopback, with an IPv4
 * address); -ENOENT (no error set) when there is none. */
int vmc_net_find(struct vmc_netif *nif, struct err **e);
/* A TAP (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) named VMC_TAP_NAME, up with
 * nif's MTU, redirected to and from nif.  Returns its fd (it goes when the
 * last holder closes it, the VMM).  An interface redirected already (a
 * second VM in the namespace) is EEXIST. */
int vmc_net_plug(const struct vmc_netif *nif, int *tap_fd, struct err **e) MUST_CHECK;
/* Take nif's redirection away (best effort): the namespace is as it was. */
void vmc_net_unplug(const char *ifname);

#endif
