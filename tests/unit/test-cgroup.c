/* libcasulo-cgroup's pure parts: paths from mountinfo, sub-cgroups, the
 * device model and its transitions, the stats parsers, the v1/v2 unit
 * conversions; and the resource writers run against a fake cgroup tree
 * of plain files (no root needed). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup/cgroup-internal.h"
#include "cgroup/cgroup.h"
#include "common/file.h"
#include "test.h"

#define MI_LINE(id, root, mnt, fstype, opts) #id " 1 0:" #id " " root " " mnt " rw - " fstype " " fstype " " opts "\n"

static const char hybrid_mountinfo[] = MI_LINE(30, "/", "/sys/fs/cgroup", "tmpfs", "rw,mode=755")
    MI_LINE(31, "/", "/sys/fs/cgroup/cpu", "cgroup", "rw,cpu")
	MI_LINE(32, "/", "/sys/fs/cgroup/memory", "cgroup", "rw,memory")
	    MI_LINE(33, "/", "/sys/fs/cgroup/cpu\\040acct", "cgroup", "rw,cpuacct,clone_children")
		MI_LINE(34, "/", "/sys/fs/cgroup/systemd", "cgroup", "rw,xattr,name=systemd")
		    MI_LINE(35, "/", "/mnt/again", "cgroup", "rw,memory")
			MI_LINE(36, "/", "/sys/fs/cgroup/unified", "cgroup2", "rw,nsdelegate")
			    MI_LINE(37, "/", "/other/cgroup2", "cgroup2", "rw");

static const char hybrid_self[] = "4:memory:/user/1\n3:cpu:/\n2:cpuacct:/\n1:name=systemd:/s\n0::/u\n";

TEST(resolve_finds_every_hierarchy)
{
	struct cgroup *cg = NULL;
	struct err *e = NULL;

	CHECK_INT(cgroup_resolve_from(CGROUP_MODE_HYBRID, hybrid_mountinfo, hybrid_self, "c1", &cg, &e), ==, 0);
	/* memory mounted twice counts once; cpuacct's mount point unescaped. */
	CHECK_INT(cg->n_v1, ==, 4);
	CHECK_STR(cgroup_v1_dir(cg, "memory"), "/sys/fs/cgroup/memory/user/1/c1");
	CHECK_STR(cgroup_v1_dir(cg, "cpu"), "/sys/fs/cgroup/cpu/c1");
	CHECK_STR(cgroup_v1_dir(cg, "cpuacct"), "/sys/fs/cgroup/cpu acct/c1");
	CHECK_STR(cgroup_v1_dir(cg, "name=systemd"), "/sys/fs/cgroup/systemd/s/c1");
	CHECK(cgroup_v1_dir(cg, "pids") == NULL);
	CHECK_STR(cg->unified.path, "/sys/fs/cgroup/unified/u/c1");
	CHECK_INT(cgroup_n_dirs(cg), ==, 5);
	CHECK_STR(cgroup_dir_at(cg, 4), cg->unified.path);
	cgroup_free(cg);

	/* Absolute from each root; ".." cannot climb above a mount. */
	CHECK_INT(cgroup_resolve_from(CGROUP_MODE_HYBRID, hybrid_mountinfo, hybrid_self, "/a/../../b", &cg, &e), ==, 0);
	CHECK_STR(cgroup_v1_dir(cg, "memory"), "/sys/fs/cgroup/memory/b");
	CHECK_STR(cg->unified.path, "/sys/fs/cgroup/unified/b");
	cgroup_free(cg);

	/* v1: no cgroup2 side; v2: only the cgroup2 at /sys/fs/cgroup. */
	CHECK_INT(cgroup_resolve_from(CGROUP_MODE_V1, hybrid_mountinfo, hybrid_self, "c1", &cg, &e), ==, 0);
	CHECK(cg->unified.path == NULL);
	cgroup_free(cg);
	CHECK_INT(cgroup_resolve_from(CGROUP_MODE_V2, hybrid_mountinfo, hybrid_self, "c1", &cg, &e), ==, -ENOENT);
	CHECK_CONTAINS(e->msg, "no cgroup2 mount at /sys/fs/cgroup");
	err_free(&e);
	CHECK_INT(cgroup_resolve_from(CGROUP_MODE_V2, MI_LINE(40, "/", "/sys/fs/cgroup", "cgroup2", "rw"), "0::/x\n",
				      "vm-1", &cg, &e),
		  ==, 0);
	CHECK_INT(cg->n_v1, ==, 0);
	CHECK_STR(cg->unified.path, "/sys/fs/cgroup/x/vm-1");
	cgroup_free(cg);
	CHECK_INT(cgroup_resolve_from(CGROUP_MODE_V1, "", "", "c", &cg, &e), ==, -ENOENT);
	CHECK_CONTAINS(e->msg, "no cgroup hierarchy");
	err_free(&e);
}

TEST(path_join_follows_runc)
{
	static const struct {
		const char *mnt, *root, *own, *rel, *want;
	} cases[] = {
	    {"/sys/fs/cgroup/memory", "/", "/user/1", "/abs/c1", "/sys/fs/cgroup/memory/abs/c1"},
	    {"/sys/fs/cgroup/memory", "/", "/user/1", "rel/c1", "/sys/fs/cgroup/memory/user/1/rel/c1"},
	    {"/sys/fs/cgroup/pids", "/", "/", "c1", "/sys/fs/cgroup/pids/c1"},
	    /* ".." cannot climb above the hierarchy. */
	    {"/m", "/", "/a", "../../../../etc", "/m/etc"},
	    {"/m", "/", "/a", "/", "/m"},
	    /* A cgroup fs mounted with a non-root root (inside a container). */
	    {"/sys/fs/cgroup/cpu", "/docker/x", "/docker/x/sub", "c1", "/sys/fs/cgroup/cpu/sub/c1"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = NULL;
		CHECK_INT(cgroup_path_join(cases[i].mnt, cases[i].root, cases[i].own, cases[i].rel, &p), ==, 0);
		CHECK_STR(p, cases[i].want);
		free(p);
	}
}

TEST(child_puts_sub_cgroups_in_the_hierarchies_named)
{
	struct cgroup *cg = NULL, *c = NULL;
	struct err *e = NULL;

	CHECK_INT(cgroup_resolve_from(CGROUP_MODE_HYBRID, hybrid_mountinfo, hybrid_self, "c1", &cg, &e), ==, 0);
	CHECK_INT(cgroup_child(cg, NULL, "sub", &c, &e), ==, 0);
	CHECK_STR(cgroup_v1_dir(c, "memory"), "/sys/fs/cgroup/memory/user/1/c1/sub");
	CHECK_STR(c->unified.path, "/sys/fs/cgroup/unified/u/c1/sub");
	CHECK_STR(c->rel, "c1/sub");
	cgroup_free(c);
	CHECK_INT(cgroup_child(cg, "memory,name=systemd", "a/../b", &c, &e), ==, 0);
	CHECK_STR(cgroup_v1_dir(c, "memory"), "/sys/fs/cgroup/memory/user/1/c1/b");
	CHECK_STR(cgroup_v1_dir(c, "name=systemd"), "/sys/fs/cgroup/systemd/s/c1/b");
	CHECK_STR(cgroup_v1_dir(c, "cpu"), "/sys/fs/cgroup/cpu/c1");
	CHECK_STR(c->unified.path, "/sys/fs/cgroup/unified/u/c1");
	cgroup_free(c);
	/* "mem" is not "memory". */
	CHECK_INT(cgroup_child(cg, "mem", "x", &c, &e), ==, 0);
	CHECK_STR(cgroup_v1_dir(c, "memory"), "/sys/fs/cgroup/memory/user/1/c1");
	cgroup_free(c);
	CHECK_INT(cgroup_child(cg, NULL, "a/../../x", &c, &e), ==, -EINVAL);
	CHECK_CONTAINS(e->msg, "climbs out");
	err_free(&e);
	CHECK_INT(cgroup_child(cg, NULL, "/abs", &c, &e), ==, -EINVAL);
	err_free(&e);
	cgroup_free(cg);
}

/* ---- devices ---- */

static struct cgroup_device_rule R(bool allow, char type, int64_t major, int64_t minor, const char *access) {
	struct cgroup_device_rule r = {allow, type, major, minor, ""};

	snprintf(r.access, sizeof(r.access), "%s", access);
	return r;
}

static const char *
exception(const struct cgroup_devices_state *st, char type, int64_t major, int64_t minor)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->rules[i].type == type && st->rules[i].major == major && st->rules[i].minor == minor)
			return st->rules[i].access;
	return "";
}

TEST(devices_list_parses)
{
	struct cgroup_devices_state st;

	CHECK_INT(cgroup_devices_parse_list("a *:* rwm\n", &st), ==, 0);
	CHECK(st.default_allow);
	CHECK_INT(st.n, ==, 0);
	cgroup_devices_state_clear(&st);
	CHECK_INT(cgroup_devices_parse_list("c 1:3 rwm\nc *:* m\nb 8:* rw\n", &st), ==, 0);
	CHECK(!st.default_allow);
	CHECK_INT(st.n, ==, 3);
	CHECK_STR(exception(&st, 'c', 1, 3), "rwm");
	CHECK_STR(exception(&st, 'c', -1, -1), "m");
	CHECK_STR(exception(&st, 'b', 8, -1), "rw");
	cgroup_devices_state_clear(&st);
	CHECK_INT(cgroup_devices_parse_list("", &st), ==, 0);
	CHECK(!st.default_allow);
	CHECK_INT(cgroup_devices_parse_list("x 1:3 rwm\n", &st), ==, -EINVAL);
	CHECK_INT(cgroup_devices_parse_list("c 1:3\n", &st), ==, -EINVAL);
}

TEST(devices_model_follows_the_kernel)
{
	struct cgroup_devices_state st = {0};
	char why[256] = "";
	struct cgroup_device_rule rules[] = {
	    R(false, 'a', -1, -1, "rwm"), R(true, 'c', 1, 3, "rw"), R(true, 'c', 1, 3, "m"),
	    R(true, 'c', 1, 5, "rwm"),	  R(false, 'c', 1, 5, "w"), R(false, 'c', 1, 7, "rwm"),
	    R(true, 'c', -1, -1, "m"),	  R(true, 'b', 8, 0, "r"),
	};

	CHECK_INT(cgroup_devices_apply(&st, rules, 8, why, sizeof(why)), ==, 0);
	CHECK(!st.default_allow);
	CHECK_STR(exception(&st, 'c', 1, 3), "rwm"); /* allows add up */
	CHECK_STR(exception(&st, 'c', 1, 5), "rm");  /* a deny takes access away */
	CHECK_STR(exception(&st, 'c', 1, 7), "");    /* denying what is not allowed: nothing */
	CHECK_INT(st.n, ==, 4);
	/* Taking 'm' from c 1:9 while c *:* m allows it would be ignored by
	 * the kernel: refused. */
	struct cgroup_device_rule hole = R(false, 'c', 1, 9, "m");
	CHECK_INT(cgroup_devices_apply(&st, &hole, 1, why, sizeof(why)), ==, -EINVAL);
	CHECK_CONTAINS(why, "wildcard rule 'c *:* m'");
	/* 'a' resets, whatever else it says. */
	struct cgroup_device_rule a = R(true, 'a', 1, 11, "w");
	CHECK_INT(cgroup_devices_apply(&st, &a, 1, why, sizeof(why)), ==, 0);
	CHECK(st.default_allow);
	CHECK_INT(st.n, ==, 0);
	struct cgroup_device_rule deny = R(false, 'c', 1, 11, "r");
	CHECK_INT(cgroup_devices_apply(&st, &deny, 1, why, sizeof(why)), ==, 0);
	CHECK_STR(exception(&st, 'c', 1, 11), "r");
	cgroup_devices_state_clear(&st);
}

/* May a device with this access be opened in st? */
static bool reachable(const struct cgroup_devices_state *st, char type, int64_t major, int64_t minor, unsigned acc)
{
	unsigned matched = 0;

	for (size_t i = 0; i < st->n; i++) {
		const struct cgroup_device_rule *r = &st->rules[i];
		unsigned bits = 0;
		if (r->type != type || (r->major != -1 && r->major != major) || (r->minor != -1 && r->minor != minor))
			continue;
		for (const char *p = r->access; *p; p++)
			bits |= *p == 'r' ? 1 : *p == 'w' ? 2 : 4;
		matched |= bits;
	}
	return st->default_allow ? (matched & acc) == 0 : (matched & acc) == acc;
}

/* Write the transition one rule at a time; at each step, no probe device
 * may be reachable that both from and to keep closed (but towards a
 * blacklist, which v1 can only reach through "allow everything"), and at
 * the end the state is to. */
static void check_transition(const char *from_list, const struct cgroup_device_rule *to_rules, size_t n_to,
			     size_t want_writes)
{
	struct cgroup_devices_state from, to = {0}, cur;
	struct cgroup_device_rule *writes = NULL;
	size_t n = 0;

	CHECK_INT(cgroup_devices_parse_list(from_list, &from), ==, 0);
	CHECK_INT(cgroup_devices_apply(&to, to_rules, n_to, NULL, 0), ==, 0);
	CHECK_INT(cgroup_devices_transition(&from, &to, &writes, &n), ==, 0);
	CHECK_INT(n, ==, want_writes);
	CHECK_INT(cgroup_devices_parse_list(from_list, &cur), ==, 0);
	for (size_t i = 0; i < n; i++) {
		CHECK_INT(cgroup_devices_apply(&cur, &writes[i], 1, NULL, 0), ==, 0);
		for (int64_t minor = 0; minor < 12; minor++)
			for (unsigned acc = 1; acc < 8; acc <<= 1)
				if (!to.default_allow && reachable(&cur, 'c', 1, minor, acc))
					CHECK(reachable(&from, 'c', 1, minor, acc) ||
					      reachable(&to, 'c', 1, minor, acc));
	}
	CHECK(cur.default_allow == to.default_allow);
	CHECK_INT(cur.n, ==, to.n);
	for (size_t i = 0; i < to.n; i++)
		CHECK_STR(exception(&cur, to.rules[i].type, to.rules[i].major, to.rules[i].minor), to.rules[i].access);
	free(writes);
	cgroup_devices_state_clear(&from);
	cgroup_devices_state_clear(&to);
	cgroup_devices_state_clear(&cur);
}

TEST(devices_transitions_are_minimal_and_never_widen)
{
	struct cgroup_device_rule same[] = {R(false, 'a', -1, -1, "rwm"), R(true, 'c', 1, 3, "rwm"),
					    R(true, 'c', 1, 5, "rwm")};
	struct cgroup_device_rule changed[] = {R(false, 'a', -1, -1, "rwm"), R(true, 'c', 1, 3, "rw"),
					       R(true, 'c', 1, 9, "r")};
	struct cgroup_device_rule blacklist[] = {R(true, 'a', -1, -1, "rwm"), R(false, 'c', 1, 11, "rw")};
	struct cgroup_device_rule *w = NULL;
	struct cgroup_devices_state from, to = {0};
	size_t n = 0;

	/* Nothing to change: nothing written (no "a" that would close null). */
	check_transition("c 1:3 rwm\nc 1:5 rwm\n", same, 3, 0);
	/* 1:3 loses m, 1:5 goes, 1:9 comes: three writes, losses first. */
	check_transition("c 1:3 rwm\nc 1:5 rwm\n", changed, 3, 3);
	CHECK_INT(cgroup_devices_parse_list("c 1:3 rwm\nc 1:5 rwm\n", &from), ==, 0);
	CHECK_INT(cgroup_devices_apply(&to, changed, 3, NULL, 0), ==, 0);
	CHECK_INT(cgroup_devices_transition(&from, &to, &w, &n), ==, 0);
	char s[3][32];
	for (size_t i = 0; i < 3; i++)
		cgroup_device_rule_format(&w[i], s[i], sizeof(s[i]));
	CHECK_STR(s[0], "c 1:3 m");
	CHECK(!w[0].allow);
	CHECK_STR(s[1], "c 1:5 rwm");
	CHECK(!w[1].allow);
	CHECK_STR(s[2], "c 1:9 r");
	CHECK(w[2].allow);
	free(w);
	cgroup_devices_state_clear(&from);
	cgroup_devices_state_clear(&to);
	/* From allow-all (a new cgroup under the root): "a" first. */
	check_transition("a *:* rwm\n", same, 3, 3);
	/* To a blacklist: "a" to allow, then the denials. */
	check_transition("c 1:3 rwm\n", blacklist, 2, 2);
}

/* ---- stats parsers ---- */

TEST(stats_parsers)
{
	struct cgroup_stats s = {0};
	uint64_t *v = NULL;
	uint16_t *l = NULL;
	size_t n = 0;

	CHECK_INT(cgroup_stats_parse_memory_stat("cache 4096\nrss 8192\nbad\ntotal_cache 1\n", &s), ==, 0);
	CHECK_INT(s.mem_cache, ==, 4096);
	CHECK_INT(s.n_mem_raw, ==, 3);
	CHECK_STR(s.mem_raw[1].key, "rss");
	CHECK_INT(s.mem_raw[1].value, ==, 8192);
	CHECK_INT(cgroup_stats_parse_memory_events("low 0\nhigh 1\nmax 7\noom 2\noom_kill 3\n", &s), ==, 0);
	CHECK_INT(s.mem_events_max, ==, 7);
	CHECK_INT(s.mem_events_oom_kill, ==, 3);
	CHECK_INT(cgroup_stats_parse_memory_events("oom_kill_disable 1\nunder_oom 0\noom_kill 0\n", &s), ==, 0);
	CHECK(s.mem_oom_kill_disable);
	CHECK_INT(cgroup_stats_parse_cpu_stat("usage_usec 10\nuser_usec 4\nsystem_usec 6\nnr_periods 5\n"
					      "nr_throttled 2\nthrottled_usec 3\n",
					      true, &s),
		  ==, 0);
	CHECK_INT(s.cpu_total_ns, ==, 10000);
	CHECK_INT(s.cpu_kernel_ns, ==, 6000);
	CHECK_INT(s.cpu_throttled_ns, ==, 3000);
	CHECK_INT(cgroup_stats_parse_cpu_stat("nr_periods 1\nnr_throttled 1\nthrottled_time 77\n", false, &s), ==, 0);
	CHECK_INT(s.cpu_throttled_ns, ==, 77);
	CHECK_INT(cgroup_stats_parse_blkio("8:0 Read 4096\n8:0 Write 0\n8:16 8\nTotal 4096\n",
					   CGROUP_BLKIO_SERVICE_BYTES, &s),
		  ==, 0);
	CHECK_INT(s.n_blkio[CGROUP_BLKIO_SERVICE_BYTES], ==, 3);
	CHECK_STR(s.blkio[CGROUP_BLKIO_SERVICE_BYTES][0].op, "Read");
	CHECK_STR(s.blkio[CGROUP_BLKIO_SERVICE_BYTES][2].op, "");
	CHECK_INT(s.blkio[CGROUP_BLKIO_SERVICE_BYTES][2].minor, ==, 16);
	CHECK_INT(cgroup_stats_parse_io_stat("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n", &s), ==, 0);
	CHECK_INT(s.n_blkio[CGROUP_BLKIO_SERVICE_BYTES], ==, 5);
	CHECK_INT(s.blkio[CGROUP_BLKIO_SERVICE_BYTES][4].value, ==, 20);
	CHECK_INT(s.blkio[CGROUP_BLKIO_SERVICE_BYTES][4].major, ==, 259);
	CHECK_INT(s.n_blkio[CGROUP_BLKIO_SERVICED], ==, 2);
	cgroup_stats_clear(&s);
	CHECK_INT(cgroup_stats_parse_percpu("1 2 3 \n", &v, &n), ==, 0);
	CHECK_INT(n, ==, 3);
	CHECK_INT(v[2], ==, 3);
	free(v);
	CHECK_INT(cgroup_stats_parse_percpu("1 x", &v, &n), ==, -EINVAL);
	CHECK_INT(cgroup_stats_parse_list("0-2,5\n", &l, &n), ==, 0);
	CHECK_INT(n, ==, 4);
	CHECK_INT(l[3], ==, 5);
	free(l);
	CHECK_INT(cgroup_stats_parse_list("\n", &l, &n), ==, 0);
	CHECK_INT(n, ==, 0);
	CHECK_INT(cgroup_stats_parse_list("3-1", &l, &n), ==, -EINVAL);
	CHECK_INT(cgroup_stats_parse_list("1,a", &l, &n), ==, -EINVAL);
}

TEST(unit_conversions_are_runcs)
{
	CHECK_INT(cgroup_shares_to_weight(1024), ==, 39);
	CHECK_INT(cgroup_shares_to_weight(2), ==, 1);
	CHECK_INT(cgroup_shares_to_weight(262144), ==, 10000);
	CHECK_INT(cgroup_shares_to_weight(1), ==, 1);
	for (uint64_t w = 1; w <= 10000; w += 37)
		CHECK_INT(cgroup_shares_to_weight(cgroup_weight_to_shares(w)), ==, w);
	CHECK_INT(cgroup_blkio_to_io_weight(10), ==, 1);
	CHECK_INT(cgroup_blkio_to_io_weight(1000), ==, 10000);
	CHECK_INT(cgroup_blkio_to_io_weight(500), ==, 4950);
}

/* ---- the writers, against a tree of plain files ---- */

static char tree[64];

static void touch(const char *dir, const char *file, const char *content)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	if (content)
		CHECK(write(fd, content, strlen(content)) == (ssize_t)strlen(content));
	close(fd);
}

static char *slurp(const char *dir, const char *file)
{
	char p[512], *text = NULL;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	if (read_file(p, &text, NULL) < 0)
		return strdup("(missing)");
	return text;
}

#define CHECK_FILE(dir, file, want)                                                                                    \
	do {                                                                                                           \
		char *_t = slurp(dir, file);                                                                           \
		CHECK_STR(_t, want);                                                                                   \
		free(_t);                                                                                              \
	} while (0)

static struct cgroup *fake_cgroup(enum cgroup_mode mode)
{
	char mi[1024], dir[256];
	struct cgroup *cg = NULL;
	struct err *e = NULL;

	snprintf(tree, sizeof(tree), "/tmp/test-cgroup.XXXXXX");
	CHECK(mkdtemp(tree) != NULL);
	if (mode == CGROUP_MODE_V2) {
		snprintf(mi, sizeof(mi), "40 1 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
	} else {
		snprintf(mi, sizeof(mi),
			 "31 1 0:31 / %s/cpu rw - cgroup cgroup rw,cpu\n"
			 "32 1 0:32 / %s/memory rw - cgroup cgroup rw,memory\n"
			 "33 1 0:33 / %s/pids rw - cgroup cgroup rw,pids\n",
			 tree, tree, tree);
	}
	CHECK_INT(cgroup_resolve_from(mode, mi, "", "c", &cg, &e), ==, 0);
	if (mode == CGROUP_MODE_V2) {
		/* Point the cgroup2 side into the tree. */
		free(cg->unified.path);
		free(cg->unified.mountpoint);
		snprintf(dir, sizeof(dir), "%s/c", tree);
		cg->unified.path = strdup(dir);
		cg->unified.mountpoint = strdup(tree);
		CHECK(mkdir(dir, 0755) == 0);
		touch(tree, "cgroup.controllers", "");
	}
	for (size_t i = 0; i < cg->n_v1; i++) {
		CHECK(mkdir(cg->v1[i].mountpoint, 0755) == 0);
		CHECK(mkdir(cg->v1[i].path, 0755) == 0);
	}
	return cg;
}

static void remove_tree(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tree);
	CHECK(system(cmd) == 0);
}

TEST(v1_writers)
{
	struct cgroup *cg = fake_cgroup(CGROUP_MODE_V1);
	struct cgroup_resources r = {0};
	struct err *e = NULL;
	const char *mem = cgroup_v1_dir(cg, "memory"), *cpu = cgroup_v1_dir(cg, "cpu");

	touch(mem, "memory.limit_in_bytes", "");
	touch(mem, "memory.soft_limit_in_bytes", "");
	touch(cpu, "cpu.shares", "");
	touch(cpu, "cpu.cfs_quota_us", "");
	touch(cgroup_v1_dir(cg, "pids"), "pids.max", "");
	r.has_mem_limit = true, r.mem_limit = 64 << 20;
	r.has_mem_reservation = true, r.mem_reservation = 32 << 20;
	r.has_cpu_weight = true, r.cpu_weight = 39; /* v2's weight, as v1 shares */
	r.has_cpu_quota = true, r.cpu_quota = 50000;
	r.has_pids_limit = true, r.pids_limit = 0; /* 0: no limit */
	CHECK_INT(cgroup_set(cg, &r, &e), ==, 0);
	CHECK_FILE(mem, "memory.limit_in_bytes", "67108864");
	CHECK_FILE(mem, "memory.soft_limit_in_bytes", "33554432");
	CHECK_FILE(cpu, "cpu.shares", "999");
	CHECK_FILE(cpu, "cpu.cfs_quota_us", "50000");
	CHECK_FILE(cgroup_v1_dir(cg, "pids"), "pids.max", "max");
	/* A controller that is not mounted is named. */
	memset(&r, 0, sizeof(r));
	r.n_hugepages = 1;
	r.hugepages = &(struct cgroup_hugepage){"2MB", 1 << 21};
	CHECK_INT(cgroup_set(cg, &r, &e), ==, -ENOTSUP);
	CHECK_CONTAINS(e->msg, "hugetlb");
	err_free(&e);
	/* cgroup2 keys need a v2 host. */
	memset(&r, 0, sizeof(r));
	r.n_unified = 1;
	r.unified = &(struct cgroup_kv){"memory.max", "1G"};
	CHECK_INT(cgroup_check(cg, &r, &e), ==, -EINVAL);
	CHECK_CONTAINS(e->msg, "cannot use unified on cgroup v1");
	err_free(&e);
	remove_tree();
	cgroup_free(cg);
}

TEST(v2_writers_convert_as_runc)
{
	struct cgroup *cg = fake_cgroup(CGROUP_MODE_V2);
	struct cgroup_resources r = {0};
	struct err *e = NULL;
	const char *d = cg->unified.path;

	touch(d, "memory.max", "");
	touch(d, "memory.swap.max", "");
	touch(d, "cpu.weight", "");
	touch(d, "cpu.max", "max 100000\n");
	touch(d, "io.weight", "");
	touch(d, "pids.max", "");
	r.has_mem_limit = true, r.mem_limit = 64 << 20;
	r.has_mem_swap = true, r.mem_swap = 96 << 20; /* memory+swap */
	r.has_cpu_shares = true, r.cpu_shares = 1024;
	r.has_cpu_quota = true, r.cpu_quota = 50000; /* the period stays */
	r.has_blkio_weight = true, r.blkio_weight = 500;
	r.has_pids_limit = true, r.pids_limit = 20;
	CHECK_INT(cgroup_set(cg, &r, &e), ==, 0);
	CHECK_FILE(d, "memory.max", "67108864");
	CHECK_FILE(d, "memory.swap.max", "33554432");
	CHECK_FILE(d, "cpu.weight", "39");
	CHECK_FILE(d, "cpu.max", "50000 100000");
	CHECK_FILE(d, "io.weight", "default 4950");
	CHECK_FILE(d, "pids.max", "20");
	/* swap without a memory limit cannot be converted (runc's words) */
	memset(&r, 0, sizeof(r));
	touch(d, "memory.max", "max\n");
	r.has_mem_swap = true, r.mem_swap = 96 << 20;
	CHECK_INT(cgroup_set(cg, &r, &e), ==, -EINVAL);
	CHECK_CONTAINS(e->msg, "unable to set swap limit without memory limit");
	err_free(&e);
	/* A file a controller would provide is missing: the controller named. */
	memset(&r, 0, sizeof(r));
	r.has_cpu_idle = true, r.cpu_idle = 1;
	CHECK_INT(cgroup_set(cg, &r, &e), ==, -ENOTSUP);
	CHECK_CONTAINS(e->msg, "is the cpu controller enabled?");
	err_free(&e);
	remove_tree();
	cgroup_free(cg);
}

TEST(limits_as_people_write_them)
{
	struct cgroup_resources r = {0};
	struct err *e = NULL;
	char *path = NULL;

	CHECK_INT(cgroup_limits_parse("casulo/vm-1,memory=512M,cpu-quota=50000,cpu-period=100000,cpus=0,2-3,"
				      "pids=max,io-read-bps=8:0:10M,io-read-bps=8:16:1M,io-write-iops=8:0:100",
				      "path", &path, &r, &e),
		  ==, 0);
	CHECK_STR(path, "casulo/vm-1");
	CHECK(r.has_mem_limit && r.mem_limit == 512LL << 20);
	CHECK(r.has_cpu_quota && r.cpu_quota == 50000 && r.has_cpu_period && r.cpu_period == 100000);
	CHECK_STR(r.cpu_cpus, "0,2-3");
	CHECK(r.has_pids_limit && r.pids_limit == -1);
	CHECK_INT(r.n_blkio_throttle[CGROUP_THROTTLE_READ_BPS], ==, 2);
	CHECK_INT(r.blkio_throttle[CGROUP_THROTTLE_READ_BPS][0].rate, ==, 10 << 20);
	CHECK_INT(r.blkio_throttle[CGROUP_THROTTLE_READ_BPS][1].minor, ==, 16);
	CHECK_INT(r.blkio_throttle[CGROUP_THROTTLE_WRITE_IOPS][0].rate, ==, 100);
	free(path);
	cgroup_resources_clear(&r);

	CHECK_INT(cgroup_limits_parse("path=a/b,cpu-weight=200", "path", &path, &r, &e), ==, 0);
	CHECK_STR(path, "a/b");
	CHECK(r.has_cpu_weight && r.cpu_weight == 200);
	free(path);
	cgroup_resources_clear(&r);
	/* Without a first key, first may be NULL (casulo-jailer --limits). */
	CHECK_INT(cgroup_limits_parse("pids=8", NULL, NULL, &r, &e), ==, 0);
	CHECK(r.has_pids_limit && r.pids_limit == 8);
	cgroup_resources_clear(&r);
}

TEST(limits_refused_with_the_item_named)
{
	static const char *const bad[][2] = {
	    {"x,memory=lots", "memory 'lots'"},
	    {"x,cpu-weight=0", "cpu-weight '0'"},
	    {"x,swap=1G", "'swap': not a cgroup limit"},
	    {"x,cpus=0-", "cpus '0-'"},
	    {"x,io-read-bps=8:0", "io-read-bps '8:0'"},
	    {"x,memory=1G,junk", "'junk': expected KEY=VALUE"},
	    {"x,memory=1G,memory=2G", "'memory': given twice"},
	    {"x,cpus=0,pids=4,cpus=1", "'cpus': given twice"},
	};
	struct cgroup_resources r = {0};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err *e = NULL;
		char *path = NULL;

		CHECK_INT(cgroup_limits_parse(bad[i][0], "path", &path, &r, &e), ==, -EINVAL);
		CHECK(e && strstr(e->msg, bad[i][1]) != NULL);
		CHECK(path == NULL && !r.has_mem_limit);
		err_free(&e);
	}
}
