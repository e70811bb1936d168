/*
 * libcasulo-cgroup: cgroups for containers and virtual machines, with the
 * cgroupfs driver (no systemd).  One library for casulo-runtime (a
 * container's cgroup), the VMM's jailer and `--cgroup` (a VMM in a cgroup)
 * and the management layer (stats of both).
 *
 * Layouts: v1 (one hierarchy per controller set), hybrid (v1 controllers
 * plus a cgroup2 mount at /sys/fs/cgroup/unified, as on this project's
 * machines) and v2.  A `struct cgroup` names one cgroup: the same path in
 * every hierarchy, its directories resolved once (cgroup_resolve()) so
 * that they can be recorded before anything exists and removed after the
 * process that made them died.
 *
 * Resources are the OCI runtime spec's linux.resources, which is the one
 * vocabulary that spans v1 and v2; the library converts for v2 (shares to
 * cpu.weight, quota and period to cpu.max, memory+swap to memory.swap.max,
 * blkio weights to io.weight or io.bfq.weight) as runc does.  Every error
 * names the directory and the file.
 */
#ifndef CASULO_CGROUP_CGROUP_H
#define CASULO_CGROUP_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

enum cgroup_mode { CGROUP_MODE_V1, CGROUP_MODE_HYBRID, CGROUP_MODE_V2 };

#define CGROUP_V1_MAX 16

struct cgroup_dir {
	char *controllers; /* "memory", "cpu,cpuacct", "name=systemd"; "" for cgroup2 */
	char *mountpoint;  /* "/sys/fs/cgroup/memory" */
	char *path;	   /* the cgroup's directory there */
};

struct cgroup {
	enum cgroup_mode mode;
	char *rel; /* the path as asked, e.g. "/libpod_parent/x" or "vm-1" */
	struct cgroup_dir v1[CGROUP_V1_MAX];
	size_t n_v1;
	struct cgroup_dir unified; /* path NULL when there is no cgroup2 mount */
};

/* ---- layout and paths (layout.c) ---- */

/* What /sys/fs/cgroup is: cgroup2 (v2), a tmpfs with cgroup2 at
 * /sys/fs/cgroup/unified (hybrid) or without (v1). */
enum cgroup_mode cgroup_detect_mode(void);
const char *cgroup_mode_name(enum cgroup_mode mode); /* "v1", "hybrid", "v2" */

/* The cgroup at path in every hierarchy, creating nothing: an absolute
 * path is taken from each hierarchy's root, a relative one from the
 * caller's own cgroup there; "." and ".." are cleaned lexically, so a path
 * cannot climb above a mount. */
int cgroup_resolve(const char *path, struct cgroup **ret, struct err **e) MUST_CHECK;
/* The same from given texts (/proc/self/mountinfo, /proc/self/cgroup):
 * the pure part, for tests. */
int cgroup_resolve_from(enum cgroup_mode mode, const char *mountinfo, const char *proc_cgroup, const char *path,
			struct cgroup **ret, struct err **e) MUST_CHECK;
/* path under one hierarchy mounted at mountpoint (whose mount root is
 * mount_root), own being the caller's cgroup there. */
int cgroup_path_join(const char *mountpoint, const char *mount_root, const char *own, const char *rel, char **ret);
/* A copy of cg whose directories are the sub-cgroup sub ("a/b") in the
 * hierarchies holding one of controllers ("memory,pids"; "" or NULL for
 * all, the cgroup2 one included), the others left as they are.  sub may
 * not climb out ("..") nor be absolute. */
int cgroup_child(const struct cgroup *cg, const char *controllers, const char *sub, struct cgroup **ret,
		 struct err **e) MUST_CHECK;
/* The directory holding a v1 controller, or NULL. */
const char *cgroup_v1_dir(const struct cgroup *cg, const char *controller);
/* Every directory of cg (v1 ones first, the cgroup2 one last). */
size_t cgroup_n_dirs(const struct cgroup *cg);
const char *cgroup_dir_at(const struct cgroup *cg, size_t i);
void cgroup_free(struct cgroup *cg);

/* ---- life cycle (cgroup.c) ---- */

/* Create the directories (and the parents missing), a v1 cpuset level
 * with no cpus or mems filled from its parent, the new one and those
 * before it (a cpuset cgroup takes no process until both are set).  A
 * frozen cgroup (by its own freezer or an ancestor's) is refused with
 * EBUSY, since no process could run in it.  *n_procs (when given) gets
 * the most processes found in one directory that existed before.  On
 * failure, the directories this call made are removed. */
int cgroup_make(struct cgroup *cg, int *n_procs, struct err **e) MUST_CHECK;
/* Move the calling single-threaded process into cg's v1 directories
 * (writing 0 to tasks, which spares the kernel's global threadgroup lock)
 * and open the cgroup2 directory for clone3(CLONE_INTO_CGROUP): *unified_fd,
 * or -1 without one.  With now, join the cgroup2 side at once too. */
int cgroup_enter_self(const struct cgroup *cg, bool now, int *unified_fd, struct err **e) MUST_CHECK;
/* Move pid (a whole process) into every directory of cg. */
int cgroup_enter(const struct cgroup *cg, pid_t pid, struct err **e) MUST_CHECK;
/* Write pid into dir/cgroup.procs. */
int cgroup_enter_dir(const char *dir, pid_t pid, struct err **e) MUST_CHECK;
/* Kill what is left (thawing first), remove every directory and its
 * sub-cgroups, retrying a busy one a while. */
int cgroup_destroy(struct cgroup *cg, struct err **e);
/* The same, trying each directory once: for a process that cannot die
 * yet (frozen by a freezer that is not ours). */
int cgroup_destroy_once(struct cgroup *cg, struct err **e);

/* Processes in cg and its sub-cgroups. */
int cgroup_pids(const struct cgroup *cg, pid_t **pids, size_t *n, struct err **e) MUST_CHECK;
int cgroup_signal_all(const struct cgroup *cg, int sig, struct err **e) MUST_CHECK;
/* Wait up to ms milliseconds until no process is left in the cgroup (a
 * process is gone from it once it has exited, reaped or not); 0 when it
 * is empty, -ETIMEDOUT when not. */
int cgroup_wait_empty(const struct cgroup *cg, unsigned ms);

/* The freezer: v1's, else cgroup2's; waits until the change is done. */
int cgroup_freeze(const struct cgroup *cg, bool freeze, struct err **e);
/* 1 when cg itself is (being) frozen, 0 not, -errno. */
int cgroup_is_frozen(const struct cgroup *cg);
/* 1 when a process in cg cannot run: frozen by the v1 freezer or by
 * cgroup2's, its own or an ancestor's; else 0.  *why (when why is given
 * and it is frozen) names the file that said so. */
int cgroup_frozen(const struct cgroup *cg, char **why);

/* Write "value" into dir/file, the error naming both. */
int cgroup_write(const char *dir, const char *file, const char *value, struct err **e);

/* ---- resources (resources.c, v1.c, v2.c) ---- */

enum cgroup_throttle_kind {
	CGROUP_THROTTLE_READ_BPS,
	CGROUP_THROTTLE_WRITE_BPS,
	CGROUP_THROTTLE_READ_IOPS,
	CGROUP_THROTTLE_WRITE_IOPS,
	CGROUP_THROTTLE_KINDS
};

struct cgroup_throttle {
	int64_t major, minor;
	uint64_t rate; /* bytes or operations per second */
};

struct cgroup_weight_device {
	int64_t major, minor;
	bool has_weight, has_leaf_weight;
	uint16_t weight, leaf_weight; /* 10..1000 */
};

struct cgroup_hugepage {
	char *page_size; /* "2MB" */
	uint64_t limit;	 /* bytes */
};

struct cgroup_kv {
	char *key, *value;
};

/* A device rule, as v1's devices.allow and devices.deny take it. */
struct cgroup_device_rule {
	bool allow;
	char type;	/* 'a' (every device, every access), 'c', 'b' */
	int64_t major;	/* -1: any */
	int64_t minor;	/* -1: any */
	char access[4]; /* subset of "rwm", in that order */
};

/*
 * What to write: each has_ field says the value is given, and only what is
 * given is written (an update gives only what changes).  Units and special
 * values are the OCI runtime spec's: memory in bytes with -1 for no limit,
 * swap as memory+swap, cpu quota and period in microseconds (quota -1: no
 * limit), shares in v1's units (cpu_weight is v2's 1..10000, converted for
 * v1), blkio weights 10..1000, pids -1 or 0 for no limit.
 */
struct cgroup_resources {
	struct cgroup_device_rule *devices; /* set with cgroup_set_devices() */
	size_t n_devices;
	bool has_devices;

	bool has_mem_limit, has_mem_reservation, has_mem_swap, has_mem_kernel, has_mem_kernel_tcp, has_mem_swappiness,
	    has_mem_disable_oom_killer, has_mem_use_hierarchy, has_mem_check_before_update;
	int64_t mem_limit, mem_reservation, mem_swap, mem_kernel, mem_kernel_tcp;
	uint64_t mem_swappiness;
	bool mem_disable_oom_killer, mem_use_hierarchy, mem_check_before_update;

	bool has_cpu_shares, has_cpu_weight, has_cpu_quota, has_cpu_burst, has_cpu_period, has_cpu_rt_runtime,
	    has_cpu_rt_period, has_cpu_idle;
	uint64_t cpu_shares, cpu_weight, cpu_period, cpu_rt_period, cpu_burst;
	int64_t cpu_quota, cpu_rt_runtime, cpu_idle;
	char *cpu_cpus, *cpu_mems; /* NULL or "": unchanged */

	bool has_pids_limit;
	int64_t pids_limit;

	bool has_blkio_weight, has_blkio_leaf_weight;
	uint16_t blkio_weight, blkio_leaf_weight;
	struct cgroup_weight_device *blkio_weight_devices;
	size_t n_blkio_weight_devices;
	struct cgroup_throttle *blkio_throttle[CGROUP_THROTTLE_KINDS];
	size_t n_blkio_throttle[CGROUP_THROTTLE_KINDS];

	struct cgroup_hugepage *hugepages;
	size_t n_hugepages;

	bool has_net_class_id;
	uint32_t net_class_id;

	struct cgroup_kv *unified; /* cgroup2 files written as given */
	size_t n_unified;
};

/* Free what r holds and zero it. */
void cgroup_resources_clear(struct cgroup_resources *r);

/* Can r be written on cg's layout at all?  Checked before anything is
 * made: cgroup2 keys (unified) need a v2 host. */
int cgroup_check(const struct cgroup *cg, const struct cgroup_resources *r, struct err **e) MUST_CHECK;
/* Write r's resources (not its devices), after cgroup_check().  On a hybrid host the v1 side
 * takes what v1 can, the cgroup2 side hugetlb where it lives there and
 * the unified keys.  A resource whose controller is missing fails, naming
 * the controller. */
int cgroup_set(struct cgroup *cg, const struct cgroup_resources *r, struct err **e) MUST_CHECK;

/* ---- limits as people write them (limits.c) ---- */

#define CGROUP_LIMIT_KEYS                                                                                              \
	"cpu-quota, cpu-period, cpu-weight, cpus, mems, memory, memory-swap, pids, io-weight, io-read-bps, "           \
	"io-write-bps, io-read-iops, io-write-iops"

/*
 * "[PATH,]memory=512M,cpu-quota=50000,cpus=0-1,io-read-bps=8:0:10M":
 * comma-separated key=value limits into r (cleared first by the caller).
 * Sizes take suffixes (512M); cpu-quota, memory, memory-swap (memory
 * plus swap, as OCI says) and pids take "max" for no limit; cpus and mems
 * are lists whose own commas are allowed ("cpus=0,2"); io-*-bps and
 * io-*-iops are MAJOR:MINOR:RATE and repeatable.  With first_key
 * ("path"), a leading item without '=' or first_key=VALUE goes to *first
 * (malloc'ed, NULL when absent); without it first may be NULL.  On error r is cleared and the message
 * names the item.
 */
int cgroup_limits_parse(const char *spec, const char *first_key, char **first, struct cgroup_resources *r,
			struct err **e) MUST_CHECK;

/* ---- devices (devices.c, bpf.c) ---- */

/* Make the device rules of cg exactly rules (the last matching rule
 * decides; no match denies, after a leading deny-all).  v1: the fewest
 * writes from what devices.list holds now, never opening a device the
 * old or the new rules deny (runc's minimal transition); cgroup2: a new
 * eBPF program attached before the old ones are detached (both apply
 * meanwhile). */
int cgroup_set_devices(const struct cgroup *cg, const struct cgroup_device_rule *rules, size_t n,
		       struct err **e) MUST_CHECK;

/* The devices state of a v1 cgroup (devices.list) and the rules taking it
 * there, as pure functions for tests.  A state is a default (allow or
 * deny everything) and exceptions with their access. */
struct cgroup_devices_state {
	bool default_allow;
	struct cgroup_device_rule *rules; /* exceptions: allow is !default_allow */
	size_t n;
};
int cgroup_devices_parse_list(const char *text, struct cgroup_devices_state *ret);
/* Apply rules in order to st (the kernel's v1 semantics); a rule that would
 * punch a hole in a wildcard exception is refused (-EINVAL, *why says). */
int cgroup_devices_apply(struct cgroup_devices_state *st, const struct cgroup_device_rule *rules, size_t n, char *why,
			 size_t why_size);
/* The writes that take from to to: rules for devices.allow (allow) and
 * devices.deny (!allow), in order. */
int cgroup_devices_transition(const struct cgroup_devices_state *from, const struct cgroup_devices_state *to,
			      struct cgroup_device_rule **ret, size_t *n);
void cgroup_devices_state_clear(struct cgroup_devices_state *st);
/* "c 1:3 rwm", "a" */
void cgroup_device_rule_format(const struct cgroup_device_rule *r, char *buf, size_t size);

/* The eBPF program of a rule list (struct bpf_insn, malloc'd), the last
 * matching rule deciding; cgroup_devices_program() makes it from what the
 * model makes of rules (-EINVAL and *why for a rule it refuses), as
 * cgroup_set_devices() loads it. */
struct bpf_insn;
int cgroup_bpf_build(const struct cgroup_device_rule *rules, size_t n, struct bpf_insn **ret, size_t *len);
int cgroup_devices_program(const struct cgroup_device_rule *rules, size_t n, struct bpf_insn **ret, size_t *len,
			   char *why, size_t why_size);

/* ---- statistics (stats.c) ---- */

struct cgroup_mem_entry {
	uint64_t usage, max_usage, limit, failcnt; /* bytes; limit UINT64_MAX-ish when none */
};

struct cgroup_blkio_entry {
	uint64_t major, minor;
	char op[12]; /* "Read", "Write", "Sync", "Async", "Discard", "Total" */
	uint64_t value;
};

enum cgroup_blkio_kind {
	CGROUP_BLKIO_SERVICE_BYTES,
	CGROUP_BLKIO_SERVICED,
	CGROUP_BLKIO_QUEUED,
	CGROUP_BLKIO_SERVICE_TIME,
	CGROUP_BLKIO_WAIT_TIME,
	CGROUP_BLKIO_MERGED,
	CGROUP_BLKIO_TIME,
	CGROUP_BLKIO_SECTORS,
	CGROUP_BLKIO_KINDS
};

struct cgroup_hugetlb_stat {
	char page_size[24]; /* "2MB" */
	uint64_t usage, max_usage, failcnt;
};

struct cgroup_u64_kv {
	char *key;
	uint64_t value;
};

/* What the kernel counts for a cgroup, as runc's `events --stats` shows
 * it: v1 and v2 files read into one shape (v2: usage from memory.current,
 * failcnt from memory.events' max, ...). */
struct cgroup_stats {
	bool has_cpu;
	uint64_t cpu_total_ns, cpu_user_ns, cpu_kernel_ns;
	uint64_t *percpu_ns, *percpu_user_ns, *percpu_kernel_ns; /* n_cpus each, v1 */
	size_t n_cpus;
	uint64_t cpu_periods, cpu_throttled_periods, cpu_throttled_ns;

	bool has_cpuset; /* v1 */
	uint16_t *cpuset_cpus, *cpuset_mems;
	size_t n_cpuset_cpus, n_cpuset_mems;
	uint64_t cpuset_flags[8]; /* cpu_exclusive .. sched_load_balance, as enum below */
	int64_t cpuset_relax_domain_level;

	bool has_memory;
	uint64_t mem_cache;
	struct cgroup_mem_entry mem, swap, kernel, kernel_tcp;
	bool has_swap, has_kernel, has_kernel_tcp;
	struct cgroup_u64_kv *mem_raw; /* memory.stat */
	size_t n_mem_raw;
	/* memory.events (v2) or memory.oom_control (v1) */
	uint64_t mem_events_low, mem_events_high, mem_events_max, mem_events_oom, mem_events_oom_kill;
	bool mem_under_oom, mem_oom_kill_disable;

	bool has_pids;
	uint64_t pids_current, pids_limit; /* limit 0: none */

	struct cgroup_blkio_entry *blkio[CGROUP_BLKIO_KINDS];
	size_t n_blkio[CGROUP_BLKIO_KINDS];

	struct cgroup_hugetlb_stat *hugetlb;
	size_t n_hugetlb;
};

enum cgroup_cpuset_flag {
	CGROUP_CPUSET_CPU_EXCLUSIVE,
	CGROUP_CPUSET_MEM_HARDWALL,
	CGROUP_CPUSET_MEM_EXCLUSIVE,
	CGROUP_CPUSET_MEMORY_MIGRATE,
	CGROUP_CPUSET_MEMORY_SPREAD_PAGE,
	CGROUP_CPUSET_MEMORY_SPREAD_SLAB,
	CGROUP_CPUSET_MEMORY_PRESSURE,
	CGROUP_CPUSET_SCHED_LOAD_BALANCE,
};

/* Read every controller cg has; a controller missing is left out (its
 * has_ false).  -ENOENT when the cgroup is gone. */
int cgroup_stats_read(const struct cgroup *cg, struct cgroup_stats *s, struct err **e) MUST_CHECK;
void cgroup_stats_clear(struct cgroup_stats *s);

/* Parsers of the files, pure for tests.  Each fills s and returns 0 or
 * -EINVAL/-ENOMEM. */
int cgroup_stats_parse_memory_stat(const char *text, struct cgroup_stats *s);
int cgroup_stats_parse_memory_events(const char *text, struct cgroup_stats *s);
int cgroup_stats_parse_cpu_stat(const char *text, bool v2, struct cgroup_stats *s);
int cgroup_stats_parse_blkio(const char *text, enum cgroup_blkio_kind kind, struct cgroup_stats *s);
int cgroup_stats_parse_io_stat(const char *text, struct cgroup_stats *s);
int cgroup_stats_parse_percpu(const char *text, uint64_t **ret, size_t *n);
int cgroup_stats_parse_list(const char *text, uint16_t **ret, size_t *n); /* "0-3,6" */

/* OOM notifications: an fd to poll (POLLIN), then cgroup_oom_watch_read()
 * says how many OOMs happened since the last read (v1: each time the
 * cgroup hit its limit with nothing to reclaim; v2: OOM kills); -ENOENT
 * once the cgroup is gone. */
struct cgroup_oom_watch;
int cgroup_oom_watch_open(const struct cgroup *cg, struct cgroup_oom_watch **ret, struct err **e) MUST_CHECK;
int cgroup_oom_watch_fd(const struct cgroup_oom_watch *w);
int cgroup_oom_watch_read(struct cgroup_oom_watch *w, uint64_t *count);
void cgroup_oom_watch_close(struct cgroup_oom_watch *w);

#endif
