/*
 * libcasulo-vmc's pure parts: the vsock protocol between casulo-runtime
 * and the guest agent (every frame and field a hostile peer could send),
 * and the plan of a container's VM (selection, size, the guest's
 * config.json).
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json-doc.h"
#include "oci/spec.h"
#include "test.h"
#include "vmc/internal.h"
#include "vmc/plan.h"
#include "vmc/proto.h"

static int decode(uint16_t type, uint32_t len, uint16_t flags, enum vmc_side from, char *why)
{
	uint8_t h[VMC_HEADER_SIZE];
	struct vmc_header out;

	vmc_header_encode(h, type, len);
	h[6] = (uint8_t)flags;
	h[7] = (uint8_t)(flags >> 8);
	return vmc_header_decode(h, from, &out, why, 128);
}

TEST(headers_are_checked_before_any_payload)
{
	char why[128];

	CHECK_INT(decode(VMC_STDOUT, 100, 0, VMC_FROM_GUEST, why), ==, 0);
	CHECK_INT(decode(VMC_STDOUT, VMC_DATA_MAX, 0, VMC_FROM_GUEST, why), ==, 0);
	CHECK_INT(decode(VMC_STDOUT, VMC_DATA_MAX + 1, 0, VMC_FROM_GUEST, why), ==, -EPROTO);
	CHECK_CONTAINS(why, "at most");
	CHECK_INT(decode(VMC_REPLY, VMC_JSON_MAX + 1, 0, VMC_FROM_GUEST, why), ==, -EPROTO);
	CHECK_INT(decode(0, 0, 0, VMC_FROM_GUEST, why), ==, -EPROTO);
	CHECK_CONTAINS(why, "unknown");
	CHECK_INT(decode(77, 0, 0, VMC_FROM_GUEST, why), ==, -EPROTO);
	/* A guest cannot send what only the host sends, and the reverse. */
	CHECK_INT(decode(VMC_REQUEST, 10, 0, VMC_FROM_GUEST, why), ==, -EPROTO);
	CHECK_CONTAINS(why, "sent by the guest");
	CHECK_INT(decode(VMC_EXIT, 4, 0, VMC_FROM_HOST, why), ==, -EPROTO);
	CHECK_INT(decode(VMC_STDOUT, 1, 1, VMC_FROM_GUEST, why), ==, -EPROTO);
	CHECK_CONTAINS(why, "flags");
	/* Fixed sizes are exact. */
	CHECK_INT(decode(VMC_EXIT, 4, 0, VMC_FROM_GUEST, why), ==, 0);
	CHECK_INT(decode(VMC_EXIT, 3, 0, VMC_FROM_GUEST, why), ==, -EPROTO);
	CHECK_INT(decode(VMC_EXIT, 5, 0, VMC_FROM_GUEST, why), ==, -EPROTO);
	CHECK_INT(decode(VMC_SIGNAL, 0, 0, VMC_FROM_HOST, why), ==, -EPROTO);
	/* OOM: the guest's, empty. */
	CHECK_INT(decode(VMC_OOM, 0, 0, VMC_FROM_GUEST, why), ==, 0);
	CHECK_INT(decode(VMC_OOM, 1, 0, VMC_FROM_GUEST, why), ==, -EPROTO);
	CHECK_INT(decode(VMC_OOM, 0, 0, VMC_FROM_HOST, why), ==, -EPROTO);
	CHECK_INT(decode(VMC_RESIZE, 4, 0, VMC_FROM_HOST, why), ==, 0);
}

TEST(fixed_payloads_are_checked)
{
	uint8_t p[4];
	char why[96];
	int v;
	struct vmc_resize rs;

	vmc_u32_encode(p, 255);
	CHECK_INT(vmc_exit_decode(p, &v, why, sizeof(why)), ==, 0);
	CHECK_INT(v, ==, 255);
	vmc_u32_encode(p, 256);
	CHECK_INT(vmc_exit_decode(p, &v, why, sizeof(why)), ==, -EPROTO);
	vmc_u32_encode(p, 0xffffffffU);
	CHECK_INT(vmc_exit_decode(p, &v, why, sizeof(why)), ==, -EPROTO);
	vmc_u32_encode(p, 0);
	CHECK_INT(vmc_signal_decode(p, &v, why, sizeof(why)), ==, -EPROTO);
	vmc_u32_encode(p, 65);
	CHECK_INT(vmc_signal_decode(p, &v, why, sizeof(why)), ==, -EPROTO);
	vmc_u32_encode(p, 15);
	CHECK_INT(vmc_signal_decode(p, &v, why, sizeof(why)), ==, 0);
	CHECK_INT(v, ==, 15);
	p[0] = 24, p[1] = 0, p[2] = 80, p[3] = 0;
	CHECK_INT(vmc_resize_decode(p, &rs, why, sizeof(why)), ==, 0);
	CHECK_INT(rs.rows, ==, 24);
	CHECK_INT(rs.cols, ==, 80);
	p[0] = 0;
	CHECK_INT(vmc_resize_decode(p, &rs, why, sizeof(why)), ==, -EPROTO);
}

struct frames {
	int n;
	uint16_t types[8];
	char data[8][64];
};

/* Feed buf in pieces of step bytes; collect the frames. */
static int feed(struct vmc_reader *r, const uint8_t *buf, size_t len, size_t step, struct frames *f)
{
	char why[128];

	for (size_t off = 0; off < len;) {
		size_t n = len - off < step ? len - off : step, used;
		struct vmc_header h;
		const uint8_t *payload;
		int ret = vmc_reader_feed(r, buf + off, n, &used, &h, &payload, why, sizeof(why));
		if (ret < 0)
			return ret;
		off += used;
		if (ret == 1 && f->n < 8) {
			f->types[f->n] = h.type;
			snprintf(f->data[f->n], sizeof(f->data[0]), "%.*s", (int)h.len, (const char *)payload);
			f->n++;
		}
	}
	return 0;
}

TEST(reader_takes_frames_split_and_joined)
{
	uint8_t buf[256];
	size_t len = 0;

	vmc_header_encode(buf, VMC_STDOUT, 5);
	memcpy(buf + 8, "hello", 5);
	len = 13;
	vmc_header_encode(buf + len, VMC_STDERR, 0);
	len += 8;
	vmc_header_encode(buf + len, VMC_EXIT, 4);
	vmc_u32_encode(buf + len + 8, 3);
	len += 12;
	for (size_t step = 1; step <= len; step++) {
		struct vmc_reader r;
		struct frames f = {0};
		vmc_reader_init(&r, VMC_FROM_GUEST);
		CHECK_INT(feed(&r, buf, len, step, &f), ==, 0);
		CHECK_INT(f.n, ==, 3);
		CHECK_INT(f.types[0], ==, VMC_STDOUT);
		CHECK_STR(f.data[0], "hello");
		CHECK_INT(f.types[1], ==, VMC_STDERR);
		CHECK_INT(f.types[2], ==, VMC_EXIT);
		vmc_reader_free(&r);
	}
}

TEST(reader_refuses_a_huge_length_before_allocating)
{
	struct vmc_reader r;
	struct frames f = {0};
	uint8_t buf[8];

	vmc_reader_init(&r, VMC_FROM_GUEST);
	vmc_header_encode(buf, VMC_STDOUT, 0xfffffff0U);
	CHECK_INT(feed(&r, buf, sizeof(buf), 8, &f), ==, -EPROTO);
	CHECK(r.cap <= 4096);
	vmc_reader_free(&r);
}

static int parse_req(const char *text, struct vmc_request *r, struct err **e)
{
	return vmc_request_parse(text, strlen(text), r, e);
}

TEST(requests_name_what_is_wrong)
{
	static const struct {
		const char *text, *needle;
	} bad[] = {
	    {"[]", "expected an object"},
	    {"{}", "op: required"},
	    {"{\"op\":\"format-disk\"}", "unknown operation"},
	    {"{\"op\":1}", "op: expected a string"},
	    {"{\"op\":\"create\",\"id\":\"a/b\",\"spec\":{}}", "not a container id"},
	    {"{\"op\":\"create\",\"id\":\"..\",\"spec\":{}}", "not a container id"},
	    {"{\"op\":\"create\",\"id\":\"a\"}", "spec: required"},
	    {"{\"op\":\"create\",\"id\":\"a\",\"spec\":[]}", "spec: expected an object"},
	    {"{\"op\":\"create\",\"id\":\"a\",\"spec\":{},\"net\":{\"address\":\"300.1.1.1\",\"prefix\":24}}",
	     "net: address: not an IPv4"},
	    {"{\"op\":\"create\",\"id\":\"a\",\"spec\":{},\"net\":{\"address\":\"10.0.0.2\",\"prefix\":33}}",
	     "prefix: out of range"},
	    {"{\"op\":\"create\",\"id\":\"a\",\"spec\":{},\"net\":{\"address\":\"10.0.0.2\",\"prefix\":24,"
	     "\"gateway\":\"x\"}}",
	     "gateway: not an IPv4"},
	    {"{\"op\":\"kill\"}", "signal: required"},
	    {"{\"op\":\"kill\",\"signal\":65}", "signal: out of range"},
	    {"{\"op\":\"kill\",\"signal\":9,\"all\":\"yes\"}", "all: expected a boolean"},
	    {"{\"op\":\"exec\"}", "args: required without a process"},
	    {"{\"op\":\"exec\",\"args\":[1]}", "args: [0]: expected a string"},
	    {"{\"op\":\"exec\",\"args\":\"sh\"}", "args: expected an array"},
	    {"{\"op\":\"exec\",\"args\":[\"sh\"],\"rows\":70000}", "rows: out of range"},
	    {"{\"op\":\"exec\",\"args\":[\"s\\u0000h\"]}", "NUL"},
	    {"{\"op\":\"update\"}", "resources: required"},
	    {"{\"op\":\"start\"} x", "trailing"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vmc_request r;
		struct err *e = NULL;
		CHECK_INT(parse_req(bad[i].text, &r, &e), <, 0);
		CHECK(e != NULL);
		if (e)
			CHECK_CONTAINS(e->msg, bad[i].needle);
		err_free(&e);
	}
}

TEST(requests_round_trip)
{
	char *args[] = {"sh", "-c", "echo hi", NULL}, *env[] = {"A=1", NULL};
	struct vmc_request q = {.op = VMC_OP_EXEC,
				.args = args,
				.n_args = 3,
				.env = env,
				.n_env = 1,
				.cwd = "/tmp",
				.tty = true,
				.has_tty = true,
				.rows = 24,
				.cols = 80};
	struct vmc_request r;
	struct err *e = NULL;
	char *text = vmc_request_format(&q);

	CHECK(text != NULL);
	CHECK_INT(parse_req(text, &r, &e), ==, 0);
	CHECK_INT(r.op, ==, VMC_OP_EXEC);
	CHECK_INT(r.n_args, ==, 3);
	CHECK_STR(r.args[2], "echo hi");
	CHECK_STR(r.env[0], "A=1");
	CHECK_STR(r.cwd, "/tmp");
	CHECK(r.tty && r.has_tty);
	CHECK_INT(r.rows, ==, 24);
	vmc_request_clear(&r);
	free(text);

	q = (struct vmc_request){.op = VMC_OP_CREATE, .id = "c1", .spec = json_object_new_object()};
	q.net.present = true;
	strcpy(q.net.address, "10.88.0.5");
	strcpy(q.net.gateway, "10.88.0.1");
	q.net.prefix = 16;
	q.net.mtu = 1500;
	text = vmc_request_format(&q);
	json_object_put(q.spec);
	CHECK_INT(parse_req(text, &r, &e), ==, 0);
	CHECK_STR(r.id, "c1");
	CHECK(r.net.present);
	CHECK_STR(r.net.address, "10.88.0.5");
	CHECK_STR(r.net.gateway, "10.88.0.1");
	CHECK_INT(r.net.prefix, ==, 16);
	CHECK_INT(r.net.mtu, ==, 1500);
	vmc_request_clear(&r);
	free(text);
}

TEST(replies_from_a_hostile_guest)
{
	static const struct {
		const char *text, *needle;
	} bad[] = {
	    {"{}", "exactly one of ok and error"},
	    {"{\"ok\":true,\"error\":\"x\"}", "exactly one"},
	    {"{\"ok\":true,\"pid\":-1}", "pid: out of range"},
	    {"{\"ok\":true,\"pid\":99999999}", "pid: out of range"},
	    {"{\"ok\":true,\"pids\":[1,0]}", "pids"},
	    {"{\"ok\":true,\"pids\":{}}", "pids"},
	    {"{\"ok\":\"true\"}", "ok: expected a boolean"},
	    {"{\"error\":5}", "error: expected a string"},
	    {"\"ok\"", "expected an object"},
	};
	struct vmc_reply r;
	struct err *e = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(vmc_reply_parse(bad[i].text, strlen(bad[i].text), &r, &e), <, 0);
		CHECK(e != NULL);
		if (e)
			CHECK_CONTAINS(e->msg, bad[i].needle);
		err_free(&e);
	}
	/* A message cannot rewrite the terminal or forge log lines. */
	const char *t = "{\"error\":\"bad\\u001b[2J\\nlevel=info msg=forged\"}";
	CHECK_INT(vmc_reply_parse(t, strlen(t), &r, &e), ==, 0);
	CHECK(!r.ok);
	CHECK(strchr(r.error, '\n') == NULL && strchr(r.error, 0x1b) == NULL);
	vmc_reply_clear(&r);
	t = "{\"ok\":true,\"pids\":[1,7,42],\"table\":\"PID CMD\\n\"}";
	CHECK_INT(vmc_reply_parse(t, strlen(t), &r, &e), ==, 0);
	CHECK_INT(r.n_pids, ==, 3);
	CHECK_INT(r.pids[2], ==, 42);
	CHECK_STR(r.table, "PID CMD\n");
	vmc_reply_clear(&r);
}

TEST(hello_says_who_and_which_version)
{
	const char *h2 = "{\"agent\":\"x\",\"version\":2}";
	struct err *e = NULL;
	char *h = vmc_hello_format();

	CHECK_INT(vmc_hello_check(h, strlen(h), &e), ==, 0);
	free(h);
	CHECK_INT(vmc_hello_check(h2, strlen(h2), &e), ==, -EPROTO);
	CHECK_CONTAINS(e->msg, "version 2");
	err_free(&e);
	CHECK_INT(vmc_hello_check("{\"version\":1}", 13, &e), <, 0);
	err_free(&e);
}

/* ---- the plan ---- */

static struct oci_spec *spec_of(const char *text)
{
	struct oci_spec *s = NULL;
	struct err *e = NULL;

	if (spec_parse(text, strlen(text), &s, &e) < 0) {
		test_fail_at(__FILE__, __LINE__, "spec: %s", e->msg);
		err_free(&e);
	}
	return s;
}

#define SPEC_HEAD                                                                                                      \
	"{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"rootfs\"},\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"}"

TEST(vm_mode_is_chosen_by_annotation_name_or_flag)
{
	struct oci_spec *s = spec_of(SPEC_HEAD "}");
	struct err *e = NULL;
	bool vm;

	CHECK_INT(vmc_plan_wanted(s, false, &vm, &e), ==, 0);
	CHECK(!vm);
	CHECK_INT(vmc_plan_wanted(s, true, &vm, &e), ==, 0);
	CHECK(vm);
	spec_free(s);
	s = spec_of(SPEC_HEAD ",\"annotations\":{\"io.casulo.vm\":\"on\"}}");
	CHECK_INT(vmc_plan_wanted(s, false, &vm, &e), ==, 0);
	CHECK(vm);
	spec_free(s);
	s = spec_of(SPEC_HEAD ",\"annotations\":{\"io.casulo.vm\":\"off\"}}");
	CHECK_INT(vmc_plan_wanted(s, true, &vm, &e), ==, 0);
	CHECK(!vm);
	spec_free(s);
	/* A CRI sandbox boots its pod's VM; plain with a plain default. */
	s = spec_of(SPEC_HEAD ",\"annotations\":{\"io.kubernetes.cri.container-type\":\"sandbox\"}}");
	CHECK_INT(vmc_plan_wanted(s, true, &vm, &e), ==, 0);
	CHECK(vm);
	CHECK_INT(vmc_plan_wanted(s, false, &vm, &e), ==, 0);
	CHECK(!vm);
	CHECK(vmc_plan_is_sandbox(s));
	CHECK(vmc_plan_sandbox(s) == NULL);
	spec_free(s);
	/* A pod's container names its sandbox. */
	s = spec_of(SPEC_HEAD ",\"annotations\":{\"io.kubernetes.cri.container-type\":\"container\","
			      "\"io.kubernetes.cri.sandbox-id\":\"sb1\"}}");
	CHECK(!vmc_plan_is_sandbox(s));
	CHECK_STR(vmc_plan_sandbox(s), "sb1");
	spec_free(s);
	s = spec_of(SPEC_HEAD ",\"annotations\":{\"io.casulo.vm\":\"yes please\"}}");
	CHECK_INT(vmc_plan_wanted(s, true, &vm, &e), ==, -EINVAL);
	CHECK_CONTAINS(e->msg, "annotations.io.casulo.vm: 'yes please'");
	err_free(&e);
	spec_free(s);
}

static unsigned fake_type(const char *path, void *ctx)
{
	(void)ctx;
	if (strstr(path, "missing"))
		return 0;
	if (strncmp(path, "/dev/", 5) == 0)
		return S_IFCHR;
	if (strstr(path, ".sock"))
		return S_IFSOCK;
	if (strstr(path, "file"))
		return S_IFREG;
	return S_IFDIR;
}

static int plan_in(const char *text, int sandbox_guest_pid, struct vmc_plan *p, struct err **e)
{
	struct oci_spec *s = spec_of(text);
	struct vmc_host host = {.cpus = 4, .file_type = fake_type, .sandbox_guest_pid = sandbox_guest_pid};
	json_object *config = NULL;
	int r;

	if (s == NULL)
		return -EINVAL;
	CHECK_INT(json_doc_parse(text, strlen(text), "config.json", &config, e), ==, 0);
	r = vmc_plan_make(config, s, "c1", "/bundle", "/bundle/rootfs", &host, p, e);
	json_object_put(config);
	spec_free(s);
	return r;
}

static int plan(const char *text, struct vmc_plan *p, struct err **e)
{
	return plan_in(text, 0, p, e);
}

TEST(vm_size_from_annotations_or_resources)
{
	struct vmc_plan p;
	struct err *e = NULL;

	CHECK_INT(plan(SPEC_HEAD "}", &p, &e), ==, 0);
	CHECK_INT(p.cpus, ==, 1);
	CHECK_INT(p.memory_mib, ==, VMC_DEFAULT_MEMORY_MIB);
	vmc_plan_free(&p);
	CHECK_INT(plan(SPEC_HEAD ",\"linux\":{\"resources\":{\"cpu\":{\"quota\":150000,\"period\":100000},"
				 "\"memory\":{\"limit\":134217728}}}}",
		       &p, &e),
		  ==, 0);
	CHECK_INT(p.cpus, ==, 2);
	CHECK_INT(p.memory_mib, ==, 128 + VMC_GUEST_OVERHEAD_MIB);
	vmc_plan_free(&p);
	/* More vCPUs than the host has CPUs are no use. */
	CHECK_INT(plan(SPEC_HEAD ",\"linux\":{\"resources\":{\"cpu\":{\"quota\":1000000}}}}", &p, &e), ==, 0);
	CHECK_INT(p.cpus, ==, 4);
	vmc_plan_free(&p);
	CHECK_INT(
	    plan(SPEC_HEAD ",\"annotations\":{\"io.casulo.vm.cpus\":\"3\",\"io.casulo.vm.memory\":\"1G\"}}", &p, &e),
	    ==, 0);
	CHECK_INT(p.cpus, ==, 3);
	CHECK_INT(p.memory_mib, ==, 1024);
	vmc_plan_free(&p);
	/* A pod's VM from the limits containerd 1.7 sums for its sandbox. */
	CHECK_INT(plan(SPEC_HEAD ",\"annotations\":{\"io.kubernetes.cri.sandbox-cpu-quota\":\"250000\","
				 "\"io.kubernetes.cri.sandbox-cpu-period\":\"100000\","
				 "\"io.kubernetes.cri.sandbox-memory\":\"268435456\"}}",
		       &p, &e),
		  ==, 0);
	CHECK_INT(p.cpus, ==, 3);
	CHECK_INT(p.memory_mib, ==, 256 + VMC_GUEST_OVERHEAD_MIB);
	vmc_plan_free(&p);
	CHECK_INT(plan(SPEC_HEAD ",\"annotations\":{\"io.casulo.vm.cpus\":\"0\"}}", &p, &e), ==, -EINVAL);
	CHECK_CONTAINS(e->msg, "io.casulo.vm.cpus");
	err_free(&e);
	CHECK_INT(plan(SPEC_HEAD ",\"annotations\":{\"io.casulo.vm.memory\":\"16M\"}}", &p, &e), ==, -EINVAL);
	CHECK_CONTAINS(e->msg, "io.casulo.vm.memory");
	err_free(&e);
}

TEST(memory_sizes)
{
	uint64_t m;

	CHECK_INT(vmc_plan_parse_memory("512M", &m), ==, 0);
	CHECK_INT(m, ==, 512);
	CHECK_INT(vmc_plan_parse_memory("1G", &m), ==, 0);
	CHECK_INT(m, ==, 1024);
	CHECK_INT(vmc_plan_parse_memory("1048577", &m), ==, 0); /* 1 MiB and a byte: 2 MiB */
	CHECK_INT(m, ==, 2);
	CHECK_INT(vmc_plan_parse_memory("x", &m), ==, -EINVAL);
	CHECK_INT(vmc_plan_parse_memory("0", &m), ==, -EINVAL);
	CHECK_INT(vmc_plan_parse_memory("99999T", &m), ==, -EINVAL);
}

static const char *guest_str(json_object *o, const char *path)
{
	char copy[256], *save = NULL;

	snprintf(copy, sizeof(copy), "%s", path);
	for (char *k = strtok_r(copy, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) {
		if (json_object_get_type(o) == json_type_array)
			o = json_object_array_get_idx(o, (size_t)atoi(k));
		else if (!json_object_object_get_ex(o, k, &o))
			return NULL;
	}
	return o && json_object_get_type(o) == json_type_string ? json_object_get_string(o) : NULL;
}

TEST(the_guests_config_shares_the_rootfs_and_binds)
{
	struct vmc_plan p;
	struct err *e = NULL;
	json_object *v, *gs;

	CHECK_INT(plan(SPEC_HEAD ",\"mounts\":["
				 "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
				 "{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"/srv/data\",\"options\":"
				 "[\"rbind\",\"ro\"]},"
				 "{\"destination\":\"/etc/hosts\",\"source\":\"hostsfile\",\"options\":[\"bind\"]}],"
				 "\"hooks\":{\"prestart\":[{\"path\":\"/bin/true\"}],\"createContainer\":[{\"path\":"
				 "\"/bin/true\"}],\"poststop\":[{\"path\":\"/bin/true\"}]},"
				 "\"linux\":{\"cgroupsPath\":\"/pod/c1\",\"namespaces\":[{\"type\":\"pid\"},"
				 "{\"type\":\"network\",\"path\":\"/run/netns/pod\"},{\"type\":\"ipc\",\"path\":"
				 "\"/proc/1/ns/ipc\"}]}}",
		       &p, &e),
		  ==, 0);
	gs = p.guest_spec;
	CHECK_STR(guest_str(gs, "root.path"), VMC_GUEST_SHARE "/rootfs");
	CHECK_INT(p.n_shares, ==, 3);
	CHECK_STR(p.shares[0].host, "/bundle/rootfs");
	CHECK_STR(p.shares[1].host, "/srv/data");
	CHECK(p.shares[1].readonly && p.shares[1].recursive && p.shares[1].is_dir);
	CHECK_STR(p.shares[2].host, "/bundle/hostsfile");
	CHECK(!p.shares[2].is_dir && !p.shares[2].readonly);
	CHECK_STR(guest_str(gs, "mounts.1.source"), VMC_GUEST_SHARE "/mnt/1");
	CHECK_STR(guest_str(gs, "mounts.2.source"), VMC_GUEST_SHARE "/mnt/2");
	CHECK_STR(guest_str(gs, "mounts.0.source"), "proc");
	/* The host's hooks stay with the host; the container's go in. */
	CHECK(json_object_object_get_ex(gs, "hooks", &v));
	CHECK(!json_object_object_get_ex(v, "prestart", NULL));
	CHECK(!json_object_object_get_ex(v, "poststop", NULL));
	CHECK(json_object_object_get_ex(v, "createContainer", NULL));
	CHECK(guest_str(gs, "linux.cgroupsPath") == NULL);
	/* The network namespace is plugged into the VM; the others are
	 * made anew in the guest. */
	CHECK_STR(p.netns, "/run/netns/pod");
	CHECK(p.own_netns);
	CHECK(guest_str(gs, "linux.namespaces.1.path") == NULL);
	CHECK(guest_str(gs, "linux.namespaces.2.path") == NULL);
	CHECK_STR(guest_str(gs, "linux.namespaces.1.type"), "network");
	CHECK_INT(p.n_warnings, ==, 1);
	CHECK_CONTAINS(p.warnings[0], "ipc");
	vmc_plan_free(&p);
}

/* A pod's container in its sandbox's VM: its files under c/<id>/, the
 * namespaces given by path the sandbox init's in the guest, nothing to
 * plug. */
TEST(a_pods_container_joins_its_sandboxs_namespaces_and_share)
{
	struct vmc_plan p;
	struct err *e = NULL;
	json_object *gs;

	CHECK_INT(plan_in(SPEC_HEAD ",\"mounts\":[{\"destination\":\"/etc/hosts\",\"source\":\"/pod/hosts-file\","
				    "\"options\":[\"bind\"]}],"
				    "\"linux\":{\"namespaces\":[{\"type\":\"mount\"},"
				    "{\"type\":\"network\",\"path\":\"/run/netns/pod\"},{\"type\":\"ipc\",\"path\":"
				    "\"/proc/9/ns/ipc\"},{\"type\":\"pid\",\"path\":\"/proc/9/ns/pid\"}]}}",
			  42, &p, &e),
		  ==, 0);
	gs = p.guest_spec;
	CHECK_STR(p.shares[0].guest, "c/c1/rootfs");
	CHECK_STR(p.shares[1].guest, "c/c1/mnt/0");
	CHECK_STR(guest_str(gs, "root.path"), VMC_GUEST_SHARE "/c/c1/rootfs");
	CHECK_STR(guest_str(gs, "mounts.0.source"), VMC_GUEST_SHARE "/c/c1/mnt/0");
	CHECK(p.netns == NULL);
	CHECK(guest_str(gs, "linux.namespaces.0.path") == NULL);
	CHECK_STR(guest_str(gs, "linux.namespaces.1.path"), "/proc/42/ns/net");
	CHECK_STR(guest_str(gs, "linux.namespaces.2.path"), "/proc/42/ns/ipc");
	CHECK_STR(guest_str(gs, "linux.namespaces.3.path"), "/proc/42/ns/pid");
	CHECK_INT(p.n_warnings, ==, 0);
	vmc_plan_free(&p);
}

TEST(what_a_vm_cannot_share_is_refused)
{
	static const struct {
		const char *tail, *needle;
	} bad[] = {
	    {"\"mounts\":[{\"destination\":\"/d\",\"type\":\"bind\",\"source\":\"/dev/sda\"}]}", "device node"},
	    {"\"mounts\":[{\"destination\":\"/s\",\"type\":\"bind\",\"source\":\"/run/x.sock\"}]}", "socket"},
	    {"\"mounts\":[{\"destination\":\"/m\",\"type\":\"bind\",\"source\":\"/missing\"}]}",
	     "No such file or directory"},
	    {"\"linux\":{\"namespaces\":[{\"type\":\"network\"}],\"netDevices\":{\"eth1\":{}}}}", "netDevices"},
	    {"\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/run/agent.sock\","
	     "\"syscalls\":[{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}}}",
	     "listenerPath"},
	};
	char text[1024];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vmc_plan p;
		struct err *e = NULL;
		snprintf(text, sizeof(text), SPEC_HEAD ",%s", bad[i].tail);
		CHECK_INT(plan(text, &p, &e), <, 0);
		CHECK(e != NULL);
		if (e)
			CHECK_CONTAINS(e->msg, bad[i].needle);
		err_free(&e);
	}
}

TEST(update_resources_reach_the_guest_as_oci_json)
{
	const char *in =
	    "{\"memory\":{\"limit\":1048576,\"swap\":-1},\"cpu\":{\"quota\":50000,\"period\":100000,"
	    "\"cpus\":\"0-1\"},\"pids\":{\"limit\":33},\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]}";
	struct cgroup_resources r, back;
	struct err *e = NULL;
	json_object *o;
	const char *text;

	CHECK_INT(spec_parse_resources(in, strlen(in), &r, &e), ==, 0);
	o = vmc_resources_json(&r);
	text = json_object_to_json_string(o);
	CHECK_INT(spec_parse_resources(text, strlen(text), &back, &e), ==, 0);
	CHECK(back.has_mem_limit && back.mem_limit == 1048576);
	CHECK(back.has_mem_swap && back.mem_swap == -1);
	CHECK(back.has_cpu_quota && back.cpu_quota == 50000);
	CHECK_STR(back.cpu_cpus, "0-1");
	CHECK(back.has_pids_limit && back.pids_limit == 33);
	CHECK(back.has_devices && back.n_devices == 1 && !back.devices[0].allow);
	json_object_put(o);
	cgroup_resources_clear(&r);
	cgroup_resources_clear(&back);
}

static int put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* Why a container's VM ended, from its state directory's console and
 * VMM log (the monitor's and create's message): a reset ends casulo-vmm
 * with status 0, as a reboot does, and only its log tells them apart. */
TEST(a_vms_end_is_told_from_its_console_and_log)
{
	char dir[] = "/tmp/casulo-vmc-diag-XXXXXX", *msg;
	int old = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), status;

	CHECK(mkdtemp(dir) != NULL);
	CHECK_INT(chdir(dir), ==, 0);
	CHECK_INT(put(VMC_VMM_LOG, "casulo-vmm: info: boot\n"), ==, 0);
	msg = vmc_vm_diagnose(42, 0, &status); /* exit 0: a reboot or a poweroff */
	CHECK_CONTAINS(msg, "the guest agent died or the guest rebooted");
	CHECK(strstr(msg, "console") == NULL);
	CHECK_INT(status, ==, 255);
	free(msg);
	CHECK_INT(put(VMC_CONSOLE, "reboot: Restarting system\n"), ==, 0);
	msg = vmc_vm_diagnose(42, 0, &status);
	CHECK_CONTAINS(msg, "rebooted; its console ends with 'reboot: Restarting system'");
	free(msg);
	CHECK_INT(put(VMC_VMM_LOG, "casulo-vmm: warning: vcpu 0: triple fault: the guest resets, which ends the VM\n"),
		  ==, 0);
	msg = vmc_vm_diagnose(42, 0, &status);
	CHECK_CONTAINS(msg, "its VM reset: a vCPU triple-faulted (casulo-vmm: warning: vcpu 0: triple fault");
	free(msg);
	CHECK_INT(put(VMC_CONSOLE, "[    1.0] Kernel panic - not syncing: x\n"), ==, 0);
	msg = vmc_vm_diagnose(42, 0, &status);
	CHECK_CONTAINS(msg, "the guest kernel panicked (");
	free(msg);
	msg = vmc_vm_diagnose(42, SIGKILL, &status);
	CHECK_CONTAINS(msg, "the guest kernel panicked");
	unlink(VMC_CONSOLE);
	free(msg);
	msg = vmc_vm_diagnose(42, SIGKILL, &status);
	CHECK_CONTAINS(msg, "was killed by signal 9");
	CHECK_INT(status, ==, 128 + SIGKILL);
	free(msg);
	unlink(VMC_VMM_LOG);
	CHECK_INT(fchdir(old), ==, 0);
	close(old);
	rmdir(dir);
}
