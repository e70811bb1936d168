/* Unit tests of libcasulo-oci's pure parts (suite unit, run under ASan and
 * UBSan): config.json parsing and its errors, resources, seccomp, mount
 * options, names, the device eBPF program (paths: tests/unit/test-cgroup.c). */
#include <errno.h>
#include <linux/bpf.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/cgroups.h"
#include "oci/container.h"
#include "oci/spec.h"
#include "oci/state.h"
#include "oci/util.h"
#include "test.h"

#define MINIMAL                                                                                                        \
	"{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"rootfs\"},"                                                    \
	"\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},"                                                               \
	"\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"pid\"}]}"

/* Parse MINIMAL + extra + "}"; returns the error message or NULL. */
static char *parse_with(const char *extra, struct oci_spec **ret)
{
	struct err *e = NULL;
	char *text = NULL, *msg = NULL;
	struct oci_spec *s = NULL;

	if (asprintf(&text, MINIMAL "%s}", extra) < 0)
		return strdup("asprintf");
	if (spec_parse(text, strlen(text), &s, &e) < 0)
		msg = strdup(e && e->msg ? e->msg : "(no message)");
	err_free(&e);
	free(text);
	if (ret)
		*ret = s;
	else
		spec_free(s);
	return msg;
}

#define CHECK_ERROR(extra, needle)                                                                                     \
	do {                                                                                                           \
		char *_m = parse_with(extra, NULL);                                                                    \
		CHECK_CONTAINS(_m, needle);                                                                            \
		free(_m);                                                                                              \
	} while (0)

TEST(spec_minimal_config_parses)
{
	struct oci_spec *s = NULL;
	char *msg = parse_with("", &s);

	CHECK(msg == NULL);
	CHECK(s != NULL);
	CHECK_STR(s->oci_version, "1.1.0");
	CHECK_STR(s->root_path, "rootfs");
	CHECK(s->has_process);
	CHECK_STR(s->process.args[0], "sh");
	CHECK_INT(s->process.n_args, ==, 1);
	CHECK(s->ns[NS_MOUNT].present && s->ns[NS_MOUNT].path == NULL);
	CHECK(!s->ns[NS_NET].present);
	CHECK_INT(s->process.user.umask, ==, 022);
	spec_free(s);
	free(msg);
}

TEST(spec_full_process)
{
	struct oci_spec *s = NULL;
	char *msg =
	    parse_with(",\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\","
		       "\"source\":\"proc\",\"options\":[\"nosuid\",\"ro\"]}],"
		       "\"hooks\":{\"prestart\":[{\"path\":\"/bin/true\",\"args\":[\"true\",\"x\"],\"timeout\":3}]},"
		       "\"annotations\":{\"k\":\"v\"}",
		       &s);

	CHECK(msg == NULL);
	CHECK_INT(s->n_mounts, ==, 1);
	CHECK_STR(s->mounts[0].destination, "/proc");
	CHECK_INT(s->mounts[0].n_options, ==, 2);
	CHECK_INT(s->n_hooks[HOOK_PRESTART], ==, 1);
	CHECK_INT(s->hooks[HOOK_PRESTART][0].timeout, ==, 3);
	CHECK_STR(s->hooks[HOOK_PRESTART][0].args[1], "x");
	CHECK_INT(s->n_annotations, ==, 1);
	CHECK_STR(s->annotations[0].value, "v");
	spec_free(s);
	free(msg);
}

TEST(spec_errors_name_the_field)
{
	CHECK_ERROR(",\"hostname\":5", "hostname: expected a string, got integer");
	CHECK_ERROR(",\"mounts\":[{\"destination\":\"rel\"}]", "mounts[0].destination: 'rel' is not an absolute path");
	CHECK_ERROR(",\"mounts\":[7]", "mounts[0]: expected an object, got integer");
	CHECK_ERROR(",\"hooks\":{\"poststop\":[{\"path\":\"x\"}]}", "hooks.poststop[0].path");
	CHECK_ERROR(",\"annotations\":{\"a\":[]}", "annotations.a: expected a string, got array");
}

TEST(spec_process_errors)
{
	struct err *e = NULL;
	struct oci_process p;

	const char *rel = "{\"args\":[\"a\"],\"cwd\":\"x\"}";
	CHECK_INT(spec_parse_process(rel, strlen(rel), &p, &e), <, 0);
	CHECK_CONTAINS(e->msg, "process.cwd: 'x' is not an absolute path");
	err_free(&e);
	const char *noargs = "{\"args\":[],\"cwd\":\"/\"}";
	CHECK_INT(spec_parse_process(noargs, strlen(noargs), &p, &e), <, 0);
	CHECK_CONTAINS(e->msg, "process.args");
	err_free(&e);
	const char *rl =
	    "{\"args\":[\"a\"],\"cwd\":\"/\",\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":1,\"hard\":2},"
	    "{\"type\":\"RLIMIT_NOFILE\",\"soft\":1,\"hard\":2}]}";
	CHECK_INT(spec_parse_process(rl, strlen(rl), &p, &e), <, 0);
	CHECK_CONTAINS(e->msg, "process.rlimits[1].type: 'RLIMIT_NOFILE' is given twice");
	err_free(&e);
	const char *ok = "{\"args\":[\"a\"],\"cwd\":\"/\",\"user\":{\"uid\":5,\"gid\":6,\"additionalGids\":[7,8]},"
			 "\"capabilities\":{\"bounding\":[\"CAP_KILL\"]},\"rlimits\":[{\"type\":\"RLIMIT_CORE\","
			 "\"soft\":0,\"hard\":0}]}";
	CHECK_INT(spec_parse_process(ok, strlen(ok), &p, &e), ==, 0);
	CHECK_INT(p.user.uid, ==, 5);
	CHECK_INT(p.user.n_additional_gids, ==, 2);
	CHECK_INT(p.user.additional_gids[1], ==, 8);
	CHECK(p.has_caps);
	CHECK_INT(p.caps[CAP_SET_BOUNDING], ==, 1ULL << 5);
	CHECK_INT(p.rlimits[0].resource, ==, RLIMIT_CORE);
	spec_process_clear(&p);
}

TEST(spec_validation_across_fields)
{
	CHECK_ERROR(",\"linux\":{\"namespaces\":[{\"type\":\"user\"},{\"type\":\"mount\"}]}", "uidMappings");
	CHECK_ERROR(",\"hostname\":\"x\"", "needs a uts namespace");
	CHECK_ERROR(",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"}}",
		    "needs a network namespace");
	CHECK_ERROR(",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"timeOffsets\":{\"boottime\":{\"secs\":1}}}",
		    "new time namespace");
	CHECK_ERROR(",\"linux\":{\"namespaces\":[{\"type\":\"mount\",\"path\":\"rel\"}]}", "not an absolute path");
}

TEST(spec_rejects_bad_json)
{
	struct err *e = NULL;
	struct oci_spec *s = NULL;

	CHECK_INT(spec_parse("{\"ociVersion\":", 14, &s, &e), <, 0);
	CHECK_CONTAINS(e->msg, "not valid JSON");
	err_free(&e);
	CHECK_INT(spec_parse("[]", 2, &s, &e), <, 0);
	CHECK_CONTAINS(e->msg, "expected an object, got array");
	err_free(&e);
	CHECK_INT(spec_parse("{} x", 4, &s, &e), <, 0);
	CHECK_CONTAINS(e->msg, "trailing data");
	err_free(&e);
}

TEST(resources_parse_and_validate)
{
	struct cgroup_resources r;
	struct err *e = NULL;
	const char *ok =
	    "{\"memory\":{\"limit\":1048576,\"swap\":-1},\"cpu\":{\"shares\":512,\"quota\":-1,\"cpus\":\"0-1\"},"
	    "\"pids\":{\"limit\":10},\"devices\":[{\"allow\":false,\"access\":\"rwm\"},"
	    "{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":3,\"access\":\"rw\"}],"
	    "\"blockIO\":{\"weight\":100,\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,\"rate\":5}]},"
	    "\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":0}],\"unified\":{\"memory.high\":\"5M\"}}";

	CHECK_INT(spec_parse_resources(ok, strlen(ok), &r, &e), ==, 0);
	CHECK(r.has_mem_limit && r.mem_limit == 1048576);
	CHECK(r.has_mem_swap && r.mem_swap == -1);
	CHECK(r.has_cpu_quota && r.cpu_quota == -1);
	CHECK_STR(r.cpu_cpus, "0-1");
	CHECK_INT(r.n_devices, ==, 2);
	CHECK(!r.devices[0].allow && r.devices[0].type == 'a' && r.devices[0].major == -1);
	CHECK_STR(r.devices[1].access, "rw");
	CHECK_INT(r.n_blkio_throttle[0], ==, 1);
	CHECK_INT(r.blkio_throttle[0][0].rate, ==, 5);
	CHECK_STR(r.hugepages[0].page_size, "2MB");
	CHECK_STR(r.unified[0].key, "memory.high");
	cgroup_resources_clear(&r);

	const char *bad[][2] = {
	    {"{\"memory\":{\"swappiness\":101}}", "swappiness"},
	    {"{\"cpu\":{\"cpus\":\"a-b\"}}", "cpu.cpus"},
	    {"{\"unified\":{\"../x\":\"1\"}}", "unified"},
	    {"{\"pids\":{\"limit\":\"x\"}}", "resources.pids.limit: expected an integer, got string"},
	    {"{\"devices\":[{\"allow\":true,\"type\":\"x\"}]}", "resources.devices[0].type"},
	    {"{\"devices\":[{\"allow\":true,\"access\":\"\"}]}", "resources.devices[0].access: '' is not"},
	    {"{\"devices\":[{\"allow\":true,\"access\":\"rwx\"}]}", "'rwx' is not a combination of r, w and m"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(spec_parse_resources(bad[i][0], strlen(bad[i][0]), &r, &e), <, 0);
		CHECK_CONTAINS(e ? e->msg : NULL, bad[i][1]);
		err_free(&e);
	}
}

TEST(device_access_takes_any_combination_of_r_w_m)
{
	static const char *const in[][2] = {{"mr", "rm"}, {"wmrw", "rwm"}, {"rrr", "r"}, {"mw", "wm"}, {"rwm", "rwm"}};

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct cgroup_resources r;
		struct err *e = NULL;
		char json[128];

		snprintf(json, sizeof(json), "{\"devices\":[{\"allow\":true,\"type\":\"c\",\"access\":\"%s\"}]}",
			 in[i][0]);
		CHECK_INT(spec_parse_resources(json, strlen(json), &r, &e), ==, 0);
		CHECK_STR(r.devices[0].access, in[i][1]);
		cgroup_resources_clear(&r);
		err_free(&e);
	}
}

TEST(seccomp_section_parses)
{
	struct oci_spec *s = NULL;
	char *msg = parse_with(",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"seccomp\":{"
			       "\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":38,"
			       "\"architectures\":[\"SCMP_ARCH_X86_64\"],\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\"],"
			       "\"listenerPath\":\"/run/l.sock\",\"syscalls\":[{\"names\":[\"read\",\"write\"],"
			       "\"action\":\"SCMP_ACT_ALLOW\"},{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_NOTIFY\","
			       "\"args\":[{\"index\":1,\"value\":448,\"op\":\"SCMP_CMP_EQ\"}]}]}}",
			       &s);

	CHECK(msg == NULL);
	CHECK(s->seccomp != NULL);
	CHECK_INT(s->seccomp->default_action, ==, SCMP_ACT_ERRNO(0));
	CHECK_INT(s->seccomp->default_errno, ==, 38);
	CHECK_INT(s->seccomp->n_rules, ==, 2);
	CHECK(s->seccomp->uses_notify);
	CHECK_INT(s->seccomp->rules[1].args[0].value, ==, 448);
	CHECK_INT(s->seccomp->rules[1].args[0].op, ==, SCMP_CMP_EQ);
	spec_free(s);
	free(msg);
	CHECK_ERROR(
	    ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\","
	    "\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\",\"errnoRet\":1}]}}",
	    "errnoRet: only valid");
	CHECK_ERROR(
	    ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}],\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\","
	    "\"flags\":[\"SECCOMP_FILTER_FLAG_BOGUS\"]}}",
	    "linux.seccomp.flags[0]");
}

TEST(seccomp_filter_builds)
{
	struct oci_seccomp_arg arg = {1, 0700, 0, SCMP_CMP_EQ};
	char *names[] = {"mkdir", "no_such_syscall", NULL};
	struct oci_seccomp_rule rule = {names, 2, SCMP_ACT_ERRNO(0), true, 13, &arg, 1};
	struct oci_seccomp sc = {.default_action = SCMP_ACT_ALLOW, .rules = &rule, .n_rules = 1};
	struct seccomp_prepared *p = NULL;
	struct err *e = NULL;

	/* Building checks the rules without loading anything. */
	CHECK_INT(seccomp_prepare(&sc, &p, &e), ==, 0);
	CHECK(p != NULL);
	seccomp_prepared_free(p);
}

TEST(mount_options)
{
	char *opts[] = {"ro", "nosuid", "rbind", "rslave", "mode=755", "size=1m", "rro", "rw", "tmpcopyup", NULL};
	struct mount_opts m;
	struct err *e = NULL;

	CHECK_INT(mount_opts_parse(opts, 9, &m, &e), ==, 0);
	CHECK(!(m.flags & MS_RDONLY)); /* rw after ro wins */
	CHECK(m.clear & MS_RDONLY);
	CHECK(m.flags & MS_NOSUID);
	CHECK(m.bind && m.rbind && m.tmpcopyup);
	CHECK_INT(m.propagation, ==, MS_SLAVE | MS_REC);
	CHECK(m.attr_set != 0);
	CHECK_STR(m.data, "mode=755,size=1m");
	mount_opts_clear(&m);
}

TEST(names)
{
	CHECK_INT(spec_signal_from_name("KILL"), ==, SIGKILL);
	CHECK_INT(spec_signal_from_name("SIGTERM"), ==, SIGTERM);
	CHECK_INT(spec_signal_from_name("9"), ==, 9);
	CHECK_INT(spec_signal_from_name("RTMIN+2"), ==, SIGRTMIN + 2);
	CHECK_INT(spec_signal_from_name("NOPE"), ==, -1);
	CHECK_INT(spec_signal_from_name("0"), ==, -1);
	CHECK_INT(spec_cap_from_name("CAP_SYS_ADMIN"), ==, 21);
	CHECK_INT(spec_cap_from_name("CAP_NOPE"), ==, -1);
	CHECK_INT(spec_cap_from_name("21"), ==, -1);
	CHECK_INT(spec_rlimit_from_name("RLIMIT_NOFILE"), ==, RLIMIT_NOFILE);
	CHECK_INT(spec_rlimit_from_name("NOFILE"), ==, -1);
}

TEST(container_ids)
{
	CHECK_INT(state_check_id("abc-1.2_x+y", NULL), ==, 0);
	CHECK_INT(state_check_id("a/b", NULL), <, 0);
	CHECK_INT(state_check_id("..", NULL), <, 0);
	CHECK_INT(state_check_id("", NULL), <, 0);
	CHECK_INT(state_check_id("a b", NULL), <, 0);
}

/* A create's record: its stage and processes in <dir>/pids, rewritten in
 * place; what a killed create leaves reads as stopped. */
TEST(state_records_a_creates_progress)
{
	char root[] = "/tmp/casulo-state-test.XXXXXX", dir[64], path[96];
	struct oci_state *st = state_new(), *back = NULL;
	struct err *e = NULL;
	FILE *f;

	CHECK(mkdtemp(root) != NULL);
	snprintf(dir, sizeof(dir), "%s/c1", root);
	CHECK_INT(mkdir(dir, 0700), ==, 0);
	st->id = strdup("c1");
	st->dir = strdup(dir);
	st->bundle = strdup("/b");
	st->rootfs = strdup("/b/rootfs");
	st->created = strdup("2026-01-02T03:04:05Z");
	st->owner = strdup("");
	/* Killed before state.json: stopped, with nothing known. */
	CHECK_INT(state_load(root, "c1", &back, &e), ==, 0);
	CHECK(back->creating && state_status(back) == STATUS_STOPPED);
	state_free(back);
	/* Creating, by a live runtime (us), then its processes, then created. */
	st->creating = true;
	st->creator_pid = getpid();
	st->creator_start = proc_start_time(getpid());
	CHECK_INT(state_record(st, &e), ==, 0);
	CHECK_INT(state_save(st, &e), ==, 0);
	CHECK_INT(state_load(root, "c1", &back, &e), ==, 0);
	CHECK(back->creating && state_status(back) == STATUS_CREATING);
	CHECK_STR(back->bundle, "/b");
	state_free(back);
	st->setup_pid = 123456789;
	st->setup_start = 77;
	CHECK_INT(state_record(st, &e), ==, 0);
	CHECK_INT(state_load(root, "c1", &back, &e), ==, 0);
	CHECK_INT(back->setup_pid, ==, 123456789);
	CHECK_INT(back->setup_start, ==, 77);
	state_free(back);
	st->creating = false;
	st->pid = getpid();
	st->start_time = proc_start_time(getpid());
	CHECK_INT(state_record(st, &e), ==, 0);
	CHECK_INT(state_load(root, "c1", &back, &e), ==, 0);
	CHECK(!back->creating && back->pid == getpid());
	state_free(back);
	/* A runtime that died mid-create: stopped. */
	st->creating = true;
	st->creator_pid = 999999999;
	CHECK_INT(state_record(st, &e), ==, 0);
	CHECK_INT(state_load(root, "c1", &back, &e), ==, 0);
	CHECK(state_status(back) == STATUS_STOPPED);
	state_free(back);
	/* A torn line: stopped, not an error. */
	snprintf(path, sizeof(path), "%s/pids", dir);
	CHECK((f = fopen(path, "w")) != NULL);
	fputs("creat", f);
	fclose(f);
	CHECK_INT(state_load(root, "c1", &back, &e), ==, 0);
	CHECK(back->creating && state_status(back) == STATUS_STOPPED);
	state_free(back);
	state_free(st);
	err_free(&e);
	CHECK_INT(rm_rf_dir(root), ==, 0);
}

TEST(rfc3339_timestamps)
{
	char buf[64];

	state_now_rfc3339(buf, sizeof(buf));
	CHECK_INT(strlen(buf), >=, 20);
	CHECK(buf[4] == '-' && buf[10] == 'T' && buf[strlen(buf) - 1] == 'Z');
	CHECK(buf[strlen(buf) - 2] != '0'); /* trailing zeros are trimmed */
}

/* A tiny interpreter for the instructions the device program uses. */
static int run_device_program(const struct bpf_insn *p, size_t n, char type, const char *access, unsigned major,
			      unsigned minor)
{
	uint32_t ctx[3];
	uint64_t r[11] = {0};
	unsigned acc = 0;

	for (const char *a = access; *a; a++)
		acc |= *a == 'm' ? BPF_DEVCG_ACC_MKNOD : *a == 'r' ? BPF_DEVCG_ACC_READ : BPF_DEVCG_ACC_WRITE;
	ctx[0] = (acc << 16) | (type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
	ctx[1] = major;
	ctx[2] = minor;
	for (size_t pc = 0; pc < n; pc++) {
		const struct bpf_insn *i = &p[pc];
		switch (i->code) {
		case BPF_LDX | BPF_W | BPF_MEM:
			r[i->dst_reg] = ctx[i->off / 4];
			break;
		case BPF_ALU64 | BPF_AND | BPF_K:
			r[i->dst_reg] &= (uint64_t)(int64_t)i->imm;
			break;
		case BPF_ALU64 | BPF_RSH | BPF_K:
			r[i->dst_reg] >>= i->imm;
			break;
		case BPF_ALU64 | BPF_MOV | BPF_K:
			r[i->dst_reg] = (uint64_t)(int64_t)i->imm;
			break;
		case BPF_ALU64 | BPF_MOV | BPF_X:
			r[i->dst_reg] = r[i->src_reg];
			break;
		case BPF_JMP | BPF_JNE | BPF_K:
			if (r[i->dst_reg] != (uint64_t)(int64_t)i->imm)
				pc += (size_t)i->off;
			break;
		case BPF_JMP | BPF_EXIT:
			return (int)r[0];
		default:
			return -1;
		}
	}
	return -2; /* fell off the end */
}

TEST(device_program_follows_v1_semantics)
{
	struct cgroup_resources res = {0};
	struct cgroup_device_rule spec_rules[] = {
	    {false, 'a', -1, -1, "rwm"},
	    {true, 'c', 10, 229, "r"},
	    {true, 'b', 8, -1, "rw"},
	    {false, 'c', 1, 9, "rwm"}, /* overridden by the defaults added after */
	};
	struct cgroup_device_rule *rules = NULL;
	struct bpf_insn *prog = NULL;
	size_t n = 0, len = 0;

	res.devices = spec_rules;
	res.n_devices = 4;
	CHECK_INT(cgroups_device_rules(&res, NULL, 0, &rules, &n), ==, 0);
	CHECK_INT(cgroup_devices_program(rules, n, &prog, &len, NULL, 0), ==, 0);
	CHECK_INT(run_device_program(prog, len, 'c', "r", 10, 229), ==, 1);
	CHECK_INT(run_device_program(prog, len, 'c', "w", 10, 229), ==, 0);
	CHECK_INT(run_device_program(prog, len, 'c', "rw", 1, 3), ==, 1); /* /dev/null: default */
	CHECK_INT(run_device_program(prog, len, 'c', "rw", 1, 1), ==, 0); /* /dev/mem */
	CHECK_INT(run_device_program(prog, len, 'c', "m", 1, 1), ==, 1);  /* mknod of any */
	CHECK_INT(run_device_program(prog, len, 'b', "rw", 8, 17), ==, 1);
	CHECK_INT(run_device_program(prog, len, 'b', "rw", 9, 0), ==, 0);
	CHECK_INT(run_device_program(prog, len, 'c', "rw", 136, 4), ==, 1); /* pts */
	free(prog);
	free(rules);

	/* linux.devices adds no rule: under deny-all, /dev/kmsg stays closed;
	 * one that takes a default's path replaces it (runc). */
	struct cgroup_device_rule deny_all[] = {{false, 'a', -1, -1, "rwm"}};
	struct oci_device devs[] = {{.path = "/dev/kmsg", .type = 'c', .major = 1, .minor = 11},
				    {.path = "/dev/null", .type = 'c', .major = 1, .minor = 3}};
	res.devices = deny_all;
	res.n_devices = 1;
	CHECK_INT(cgroups_device_rules(&res, devs, 2, &rules, &n), ==, 0);
	CHECK_INT(cgroup_devices_program(rules, n, &prog, &len, NULL, 0), ==, 0);
	CHECK_INT(run_device_program(prog, len, 'c', "r", 1, 11), ==, 0);
	CHECK_INT(run_device_program(prog, len, 'c', "m", 1, 11), ==, 1);
	CHECK_INT(run_device_program(prog, len, 'c', "w", 1, 3), ==, 0);
	CHECK_INT(run_device_program(prog, len, 'c', "w", 1, 5), ==, 1); /* /dev/zero: default */
	free(prog);
	free(rules);

	/* Type 'a' is every device and every access, whatever else it says
	 * (as "a" in devices.deny on v1): denying 'a' writes denies reads. */
	struct cgroup_device_rule a_rules[] = {{true, 'a', -1, -1, "rwm"}, {false, 'a', 1, 11, "w"}};
	res.devices = a_rules;
	res.n_devices = 2;
	CHECK_INT(cgroups_device_rules(&res, NULL, 0, &rules, &n), ==, 0);
	CHECK_INT(cgroup_devices_program(rules, n, &prog, &len, NULL, 0), ==, 0);
	CHECK_INT(run_device_program(prog, len, 'c', "r", 1, 11), ==, 0);
	CHECK_INT(run_device_program(prog, len, 'b', "r", 8, 0), ==, 0);
	CHECK_INT(run_device_program(prog, len, 'c', "r", 1, 3), ==, 1);
	free(prog);
	free(rules);

	/* Allow-all as the last rule decides alone (nothing unreachable). */
	struct cgroup_device_rule all[] = {{true, 'a', -1, -1, "rwm"}};
	CHECK_INT(cgroup_bpf_build(all, 1, &prog, &len), ==, 0);
	CHECK_INT(len, ==, 8);
	CHECK_INT(run_device_program(prog, len, 'b', "rwm", 1, 2), ==, 1);
	free(prog);
}
