/* The pure parts of the guest's init (guest/init/): command line, ip=, modinfo. */
#include <arpa/inet.h>
#include <elf.h>
#include <errno.h>

#include "../../guest/init/cmdline.h"
#include "../../guest/init/ipconfig.h"
#include "../../guest/init/modules.h"
#include "test.h"

static const char *ip_str(struct in_addr a)
{
	static char buf[4][INET_ADDRSTRLEN];
	static int next;
	char *b = buf[next++ % 4];

	return inet_ntop(AF_INET, &a, b, INET_ADDRSTRLEN);
}

TEST(cmdline_get_values_and_flags)
{
	const char *cl = "console=ttyS0 quiet ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off "
			 "casulo.verbose x=\"a b\" -- /bin/sh -c \"echo hi\"";
	char v[64];

	CHECK_INT(cmdline_get(cl, "console", v, sizeof(v)), ==, 1);
	CHECK_STR(v, "ttyS0");
	CHECK_INT(cmdline_get(cl, "ip", v, sizeof(v)), ==, 1);
	CHECK_STR(v, "10.0.2.15::10.0.2.2:255.255.255.0::eth0:off");
	CHECK_INT(cmdline_get(cl, "x", v, sizeof(v)), ==, 1);
	CHECK_STR(v, "a b");
	CHECK_INT(cmdline_get(cl, "quiet", v, sizeof(v)), ==, 1);
	CHECK_STR(v, "");
	CHECK(cmdline_has(cl, "casulo.verbose"));
	CHECK(!cmdline_has(cl, "casulo"));
	CHECK(!cmdline_has(cl, "cons"));
	/* After "--" words are the command's, not options. */
	CHECK(!cmdline_has(cl, "-c"));
	CHECK_INT(cmdline_get(cl, "ip", v, 8), ==, -ENAMETOOLONG);
}

TEST(cmdline_last_option_wins)
{
	char v[16];

	CHECK_INT(cmdline_get("ip=1 ip=2", "ip", v, sizeof(v)), ==, 1);
	CHECK_STR(v, "2");
	CHECK_INT(cmdline_get("", "ip", v, sizeof(v)), ==, 0);
}

TEST(cmdline_counts_command_words)
{
	CHECK_INT(cmdline_count_after_dashes("quiet -- /bin/sh -c \"echo a; exit 3\""), ==, 3);
	CHECK_INT(cmdline_count_after_dashes("quiet --"), ==, 0);
	CHECK_INT(cmdline_count_after_dashes("quiet"), ==, 0);
	CHECK_INT(cmdline_count_after_dashes("a --x -- b -- c\n"), ==, 3);
	CHECK_INT(cmdline_count_after_dashes("  --   true  "), ==, 1);
}

TEST(ipconfig_static)
{
	struct ipconfig c;
	char msg[128];

	CHECK_INT(ipconfig_parse("10.0.2.15::10.0.2.2:255.255.255.0:guest:eth0:off", &c, msg, sizeof(msg)), ==, 0);
	CHECK(c.enabled);
	CHECK_STR(ip_str(c.client), "10.0.2.15");
	CHECK_STR(ip_str(c.gateway), "10.0.2.2");
	CHECK_STR(ip_str(c.netmask), "255.255.255.0");
	CHECK_STR(c.hostname, "guest");
	CHECK_STR(c.device, "eth0");
}

TEST(ipconfig_defaults_and_prefix)
{
	struct ipconfig c;
	char msg[128];

	/* No netmask: the class of the address; no device: the first one. */
	CHECK_INT(ipconfig_parse("10.1.2.3", &c, msg, sizeof(msg)), ==, 0);
	CHECK_STR(ip_str(c.netmask), "255.0.0.0");
	CHECK_STR(ip_str(c.gateway), "0.0.0.0");
	CHECK_STR(c.device, "");
	CHECK_INT(ipconfig_parse("192.168.1.9:::::", &c, msg, sizeof(msg)), ==, 0);
	CHECK_STR(ip_str(c.netmask), "255.255.255.0");
	CHECK_INT(ipconfig_parse("172.16.0.2:::20::eth1", &c, msg, sizeof(msg)), ==, 0);
	CHECK_STR(ip_str(c.netmask), "255.255.240.0");
	CHECK_STR(c.device, "eth1");
	CHECK_INT(ipconfig_parse("172.16.0.2:::0::", &c, msg, sizeof(msg)), ==, 0);
	CHECK_STR(ip_str(c.netmask), "0.0.0.0");
}

TEST(ipconfig_off_and_unsupported)
{
	struct ipconfig c;
	char msg[128];

	CHECK_INT(ipconfig_parse("off", &c, msg, sizeof(msg)), ==, 0);
	CHECK(!c.enabled);
	CHECK_INT(ipconfig_parse("none", &c, msg, sizeof(msg)), ==, 0);
	CHECK(!c.enabled);
	CHECK_INT(ipconfig_parse("dhcp", &c, msg, sizeof(msg)), ==, -EOPNOTSUPP);
	CHECK_CONTAINS(msg, "dhcp");
	CHECK_INT(ipconfig_parse(":::::eth0:dhcp", &c, msg, sizeof(msg)), ==, -EOPNOTSUPP);
	CHECK_INT(ipconfig_parse("10.0.0.1:::::eth0:static", &c, msg, sizeof(msg)), ==, 0);
}

TEST(ipconfig_rejects_garbage)
{
	struct ipconfig c;
	char msg[128];

	CHECK_INT(ipconfig_parse("", &c, msg, sizeof(msg)), ==, -EINVAL);
	CHECK_INT(ipconfig_parse("10.0.0.300", &c, msg, sizeof(msg)), ==, -EINVAL);
	CHECK_CONTAINS(msg, "client");
	CHECK_INT(ipconfig_parse("10.0.0.1::gw", &c, msg, sizeof(msg)), ==, -EINVAL);
	CHECK_CONTAINS(msg, "gateway");
	CHECK_INT(ipconfig_parse("10.0.0.1:::33", &c, msg, sizeof(msg)), ==, -EINVAL);
	CHECK_INT(ipconfig_parse("10.0.0.1:::24x", &c, msg, sizeof(msg)), ==, -EINVAL);
	CHECK_INT(ipconfig_parse("10.0.0.1:::::eth0:weird", &c, msg, sizeof(msg)), ==, -EINVAL);
	CHECK_INT(ipconfig_parse("10.0.0.1:::::abcdefghijklmnopq", &c, msg, sizeof(msg)), ==, -EINVAL);
}

/* A minimal ELF64 object: null section, .shstrtab, .modinfo. */
struct fake_ko {
	Elf64_Ehdr eh;
	char strtab[32];
	char modinfo[96];
	Elf64_Shdr sh[3];
};

static void fake_ko_init(struct fake_ko *k, const char *modinfo, size_t len)
{
	static const char names[] = "\0.shstrtab\0.modinfo";

	memset(k, 0, sizeof(*k));
	memcpy(k->eh.e_ident, ELFMAG, SELFMAG);
	k->eh.e_ident[EI_CLASS] = ELFCLASS64;
	k->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	k->eh.e_shoff = offsetof(struct fake_ko, sh);
	k->eh.e_shentsize = sizeof(Elf64_Shdr);
	k->eh.e_shnum = 3;
	k->eh.e_shstrndx = 1;
	memcpy(k->strtab, names, sizeof(names));
	memcpy(k->modinfo, modinfo, len);
	k->sh[1].sh_name = 1;
	k->sh[1].sh_offset = offsetof(struct fake_ko, strtab);
	k->sh[1].sh_size = sizeof(names);
	k->sh[2].sh_name = 11;
	k->sh[2].sh_offset = offsetof(struct fake_ko, modinfo);
	k->sh[2].sh_size = len;
}

TEST(modules_reads_modinfo)
{
	static const char info[] = "license=GPL\0depends=virtio,virtio_ring\0name=virtio_net\0vermagic=6.1";
	struct fake_ko k;
	const char *p;
	size_t len;
	char v[64];

	fake_ko_init(&k, info, sizeof(info));
	CHECK_INT(modules_find_modinfo(&k, sizeof(k), &p, &len), ==, 0);
	CHECK_INT(len, ==, sizeof(info));
	CHECK_INT(modules_modinfo_get(p, len, "name", v, sizeof(v)), ==, 1);
	CHECK_STR(v, "virtio_net");
	CHECK_INT(modules_modinfo_get(p, len, "depends", v, sizeof(v)), ==, 1);
	CHECK_STR(v, "virtio,virtio_ring");
	CHECK_INT(modules_modinfo_get(p, len, "vermagic", v, sizeof(v)), ==, 1);
	CHECK_STR(v, "6.1");
	CHECK_INT(modules_modinfo_get(p, len, "alias", v, sizeof(v)), ==, 0);
	CHECK_INT(modules_modinfo_get(p, len, "depends", v, 4), ==, -ENAMETOOLONG);
	/* An empty depends= is present and empty. */
	CHECK_INT(modules_modinfo_get("depends=\0name=x", 15, "depends", v, sizeof(v)), ==, 1);
	CHECK_STR(v, "");
}

TEST(modules_rejects_bad_elf)
{
	static const char info[] = "name=a";
	struct fake_ko k;
	const char *p;
	size_t len;

	fake_ko_init(&k, info, sizeof(info));
	CHECK_INT(modules_find_modinfo(&k, sizeof(k) - 1, &p, &len), ==, -EINVAL);
	CHECK_INT(modules_find_modinfo(&k, 10, &p, &len), ==, -EINVAL);
	k.sh[2].sh_size = 1u << 20;
	CHECK_INT(modules_find_modinfo(&k, sizeof(k), &p, &len), ==, -EINVAL);
	fake_ko_init(&k, info, sizeof(info));
	k.sh[2].sh_name = 2; /* "shstrtab": no .modinfo any more */
	CHECK_INT(modules_find_modinfo(&k, sizeof(k), &p, &len), ==, -ENOENT);
	k.eh.e_shstrndx = 7;
	CHECK_INT(modules_find_modinfo(&k, sizeof(k), &p, &len), ==, -EINVAL);
	k.eh.e_ident[EI_CLASS] = ELFCLASS32;
	CHECK_INT(modules_find_modinfo(&k, sizeof(k), &p, &len), ==, -EINVAL);
}

static size_t position(const size_t *order, size_t n, size_t i)
{
	for (size_t k = 0; k < n; k++)
		if (order[k] == i)
			return k;
	return n;
}

TEST(modules_order_puts_dependencies_first)
{
	struct module m[] = {
	    {.name = "virtio_net", .depends = "virtio_ring,virtio,net_failover"},
	    {.name = "net_failover", .depends = "failover"},
	    {.name = "virtio", .depends = "virtio_ring"},
	    {.name = "failover", .depends = ""},
	    {.name = "virtio_ring", .depends = ""},
	};
	size_t order[5];

	CHECK_INT(modules_order(m, 5, order, NULL), ==, 0);
	CHECK(position(order, 5, 4) < position(order, 5, 2));
	CHECK(position(order, 5, 2) < position(order, 5, 0));
	CHECK(position(order, 5, 3) < position(order, 5, 1));
	CHECK(position(order, 5, 1) < position(order, 5, 0));
	for (size_t i = 0; i < 5; i++)
		CHECK(position(order, 5, i) < 5);
}

TEST(modules_order_survives_missing_and_cycles)
{
	struct module m[] = {
	    {.name = "a", .depends = "b,missing"},
	    {.name = "b", .depends = "a"},
	    {.name = "c", .depends = ",,"},
	};
	size_t order[3];

	CHECK_INT(modules_order(m, 3, order, NULL), ==, 2);
	for (size_t i = 0; i < 3; i++)
		CHECK(position(order, 3, i) < 3);
}

TEST(modules_canonical_names)
{
	char name[] = "virtio-rng,kvm-amd";

	modules_canonical_name(name);
	CHECK_STR(name, "virtio_rng,kvm_amd");
}
