/*
 * The OCI runtime configuration (config.json) as C structures, parsed and
 * validated in one place.  Every parse error names the JSON field and the
 * reason ("linux.resources.memory.limit: expected an integer, got string").
 */
#ifndef CASULO_OCI_SPEC_H
#define CASULO_OCI_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/cgroup.h"
#include "common/err.h"

struct json_object;

enum oci_hook_kind {
	HOOK_PRESTART,
	HOOK_CREATE_RUNTIME,
	HOOK_CREATE_CONTAINER,
	HOOK_START_CONTAINER,
	HOOK_POSTSTART,
	HOOK_POSTSTOP,
	HOOK_KIND_MAX,
};
extern const char *const oci_hook_names[HOOK_KIND_MAX];

enum oci_ns_kind {
	NS_USER, /* first: joined or created before the others */
	NS_MOUNT,
	NS_PID,
	NS_NET,
	NS_IPC,
	NS_UTS,
	NS_CGROUP,
	NS_TIME,
	NS_KIND_MAX,
};

struct oci_ns_info {
	const char *spec_name; /* "network" */
	const char *proc_name; /* "net" (/proc/PID/ns/net) */
	int clone_flag;
};
extern const struct oci_ns_info oci_ns_info[NS_KIND_MAX];

struct oci_kv {
	char *key;
	char *value;
};

struct oci_idmap {
	uint32_t container_id, host_id, size;
};

struct oci_mount {
	char *destination, *source, *type;
	char **options;
	size_t n_options;
	struct oci_idmap *uid_map, *gid_map;
	size_t n_uid_map, n_gid_map;
};

struct oci_rlimit {
	int resource;
	uint64_t soft, hard;
};

struct oci_hook {
	char *path;
	char **args; /* NULL-terminated */
	char **env;  /* NULL-terminated */
	int timeout; /* seconds, 0 = none */
};

enum oci_cap_set {
	CAP_SET_BOUNDING,
	CAP_SET_EFFECTIVE,
	CAP_SET_INHERITABLE,
	CAP_SET_PERMITTED,
	CAP_SET_AMBIENT,
	CAP_SET_MAX
};

struct oci_user {
	uid_t uid;
	gid_t gid;
	bool has_umask;
	mode_t umask;
	gid_t *additional_gids;
	size_t n_additional_gids;
};

struct oci_process {
	bool terminal;
	unsigned console_height, console_width;
	struct oci_user user;
	char **args; /* NULL-terminated */
	size_t n_args;
	char **env; /* NULL-terminated */
	size_t n_env;
	char *cwd;
	bool has_caps;
	uint64_t caps[CAP_SET_MAX];
	struct oci_rlimit *rlimits;
	size_t n_rlimits;
	bool no_new_privileges;
	char *apparmor_profile;
	bool has_oom_score_adj;
	int oom_score_adj;
	char *selinux_label;
	bool has_io_priority;
	int io_priority_class, io_priority;
	bool has_scheduler;
	int sched_policy, sched_nice, sched_priority;
	uint64_t sched_flags, sched_runtime, sched_deadline, sched_period;
};

struct oci_namespace {
	bool present;
	char *path; /* NULL: create a new one */
};

struct oci_device {
	char *path;
	char type; /* 'c', 'b', 'u', 'p' */
	int64_t major, minor;
	bool has_mode, has_uid, has_gid;
	mode_t mode;
	uid_t uid;
	gid_t gid;
};

struct oci_seccomp_arg {
	unsigned index;
	uint64_t value, value_two;
	int op; /* enum scmp_compare */
};

struct oci_seccomp_rule {
	char **names;
	size_t n_names;
	uint32_t action;
	bool has_errno;
	uint32_t errno_ret;
	struct oci_seccomp_arg *args;
	size_t n_args;
};

struct oci_seccomp {
	uint32_t default_action;
	bool has_default_errno;
	uint32_t default_errno;
	char **architectures;
	size_t n_architectures;
	char **flags;
	size_t n_flags;
	char *listener_path;
	char *listener_metadata;
	struct oci_seccomp_rule *rules;
	size_t n_rules;
	bool uses_notify;
};

struct oci_time_offset {
	bool present;
	int64_t secs;
	uint32_t nanosecs;
};

struct oci_spec {
	char *oci_version;
	char *root_path; /* as written in config.json */
	bool root_readonly;
	char *hostname, *domainname;
	struct oci_mount *mounts;
	size_t n_mounts;
	bool has_process;
	struct oci_process process;
	struct oci_hook *hooks[HOOK_KIND_MAX];
	size_t n_hooks[HOOK_KIND_MAX];
	struct oci_kv *annotations;
	size_t n_annotations;

	struct oci_namespace ns[NS_KIND_MAX];
	struct oci_idmap *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
	struct oci_time_offset time_monotonic, time_boottime;
	struct oci_device *devices;
	size_t n_devices;
	char *cgroups_path;
	bool has_resources;
	struct cgroup_resources resources; /* linux.resources, as written */
	struct oci_kv *sysctl;
	size_t n_sysctl;
	struct oci_seccomp *seccomp;
	char *rootfs_propagation;
	char **masked_paths;
	size_t n_masked_paths;
	char **readonly_paths;
	size_t n_readonly_paths;
	char *mount_label;
	bool has_personality;
	unsigned long personality;
	struct oci_kv *net_devices; /* linux.netDevices: host name -> name inside ("" = same) */
	size_t n_net_devices;
	bool has_mempolicy; /* linux.memoryPolicy (runtime-spec 1.2) */
	int mempolicy_mode;
	unsigned mempolicy_flags;
	unsigned long mempolicy_nodes[1024 / (8 * sizeof(unsigned long))];
};

/* Parse config.json text.  On error *e names the field and the reason. */
int spec_parse(const char *text, size_t len, struct oci_spec **ret, struct err **e) MUST_CHECK;
/* Read and parse a file ("<bundle>/config.json"). */
int spec_load(const char *path, struct oci_spec **ret, struct err **e) MUST_CHECK;
void spec_free(struct oci_spec *s);

/* Parse a process object alone (runc exec --process FILE). */
int spec_parse_process(const char *text, size_t len, struct oci_process *ret, struct err **e) MUST_CHECK;
void spec_process_clear(struct oci_process *p);

/* Parse a linux.resources object alone (runc update --resources FILE). */
int spec_parse_resources(const char *text, size_t len, struct cgroup_resources *ret, struct err **e) MUST_CHECK;

/* Names <-> values, shared with features and the CLI. */
int spec_signal_from_name(const char *name);			    /* "KILL", "SIGKILL", "9"; -1 if unknown */
int spec_cap_from_name(const char *name);			    /* "CAP_SYS_ADMIN"; -1 if unknown */
int spec_rlimit_from_name(const char *name);			    /* "RLIMIT_NOFILE"; -1 if unknown */
int spec_seccomp_action_from_name(const char *name, uint32_t *ret); /* "SCMP_ACT_ERRNO" */

/* Tables used by `features`. */
extern const char *const spec_seccomp_action_names[];
extern const char *const spec_seccomp_op_names[];
extern const char *const spec_seccomp_flag_names[];
extern const char *const spec_mount_option_names[];

#endif
