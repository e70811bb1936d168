/* `features` (the runtime-spec features document) and `spec` (a default
 * config.json, runc's template). */
#include <errno.h>
#include <json-c/json.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <unistd.h>

#include "oci/cgroups.h"
#include "oci/oci.h"
#include "oci/spec.h"
#include "oci/util.h"

static json_object *strings(const char *const *v)
{
	json_object *a = json_object_new_array();

	for (; *v; v++)
		json_object_array_add(a, json_object_new_string(*v));
	return a;
}

int oci_features(char **json, struct err **e)
{
	static const char *const hooks[] = {
	    "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop", NULL};
	static const char *const ns[] = {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts", NULL};
	static const char *const archs[] = {"SCMP_ARCH_X86",	 "SCMP_ARCH_X86_64", "SCMP_ARCH_X32",
					    "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM",    NULL};
	json_object *o = json_object_new_object(), *l = json_object_new_object(), *caps = json_object_new_array();
	json_object *cg = json_object_new_object(), *sc = json_object_new_object(), *aa = json_object_new_object();
	json_object *se = json_object_new_object(), *ann = json_object_new_object(), *mx = json_object_new_object();
	enum cgroup_mode mode = cgroup_detect_mode();

	json_object_object_add(o, "ociVersionMin", json_object_new_string("1.0.0"));
	json_object_object_add(o, "ociVersionMax", json_object_new_string("1.1.0"));
	json_object_object_add(o, "hooks", strings(hooks));
	json_object_object_add(o, "mountOptions", strings(spec_mount_option_names));
	json_object_object_add(l, "namespaces", strings(ns));
	{
		static const char *const modes[] = {
		    "MPOL_DEFAULT",	   "MPOL_PREFERRED",	       "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_LOCAL",
		    "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE", NULL};
		static const char *const mflags[] = {"MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES",
						     "MPOL_F_STATIC_NODES", NULL};
		json_object *mp = json_object_new_object();
		json_object_object_add(mp, "modes", strings(modes));
		json_object_object_add(mp, "flags", strings(mflags));
		json_object_object_add(l, "memoryPolicy", mp);
	}
	for (int c = 0; c <= CAP_LAST_CAP; c++) {
		char *name = cap_to_name(c), up[64];
		size_t i;
		if (name == NULL)
			continue;
		for (i = 0; name[i] && i < sizeof(up) - 1; i++)
			up[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
		up[i] = '\0';
		cap_free(name);
		if (strncmp(up, "CAP_", 4) == 0)
			json_object_array_add(caps, json_object_new_string(up));
	}
	json_object_object_add(l, "capabilities", caps);
	json_object_object_add(cg, "v1", json_object_new_boolean(1));
	json_object_object_add(cg, "v2", json_object_new_boolean(1));
	json_object_object_add(cg, "systemd", json_object_new_boolean(0));
	json_object_object_add(cg, "systemdUser", json_object_new_boolean(0));
	json_object_object_add(cg, "rdma", json_object_new_boolean(0));
	json_object_object_add(l, "cgroup", cg);
	json_object_object_add(sc, "enabled", json_object_new_boolean(1));
	json_object_object_add(sc, "actions", strings(spec_seccomp_action_names));
	json_object_object_add(sc, "operators", strings(spec_seccomp_op_names));
	json_object_object_add(sc, "archs", strings(archs));
	json_object_object_add(sc, "knownFlags", strings(spec_seccomp_flag_names));
	json_object_object_add(sc, "supportedFlags", strings(spec_seccomp_flag_names));
	json_object_object_add(l, "seccomp", sc);
	json_object_object_add(aa, "enabled",
			       json_object_new_boolean(access("/sys/kernel/security/apparmor", F_OK) == 0));
	json_object_object_add(l, "apparmor", aa);
	json_object_object_add(se, "enabled", json_object_new_boolean(access("/sys/fs/selinux/enforce", F_OK) == 0));
	json_object_object_add(l, "selinux", se);
	{
		json_object *idmap = json_object_new_object();
		json_object_object_add(idmap, "enabled", json_object_new_boolean(1));
		json_object_object_add(mx, "idmap", idmap);
	}
	json_object_object_add(l, "mountExtensions", mx);
	{
		json_object *nd = json_object_new_object();
		json_object_object_add(nd, "enabled", json_object_new_boolean(1));
		json_object_object_add(l, "netDevices", nd);
	}
	json_object_object_add(o, "linux", l);
	json_object_object_add(ann, "io.github.casulo.runtime.cgroup-mode",
			       json_object_new_string(mode == CGROUP_MODE_V2	   ? "v2"
						      : mode == CGROUP_MODE_HYBRID ? "hybrid"
										   : "v1"));
	json_object_object_add(ann, "org.opencontainers.runc.checkpoint.enabled", json_object_new_string("true"));
	json_object_object_add(o, "annotations", ann);
	*json = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return *json ? 0 : err_set(e, ENOMEM, "features");
}

static const char spec_template[] =
    "{\n"
    "  \"ociVersion\": \"1.1.0\",\n"
    "  \"process\": {\n"
    "    \"terminal\": true,\n"
    "    \"user\": { \"uid\": 0, \"gid\": 0 },\n"
    "    \"args\": [ \"sh\" ],\n"
    "    \"env\": [\n"
    "      \"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\n"
    "      \"TERM=xterm\"\n"
    "    ],\n"
    "    \"cwd\": \"/\",\n"
    "    \"capabilities\": {\n"
    "      \"bounding\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
    "      \"effective\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
    "      \"permitted\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
    "      \"ambient\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ]\n"
    "    },\n"
    "    \"rlimits\": [ { \"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024 } ],\n"
    "    \"noNewPrivileges\": true\n"
    "  },\n"
    "  \"root\": { \"path\": \"rootfs\", \"readonly\": true },\n"
    "  \"hostname\": \"casulo\",\n"
    "  \"mounts\": [\n"
    "    { \"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\" },\n"
    "    { \"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\",\n"
    "      \"options\": [ \"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\" ] },\n"
    "    { \"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\",\n"
    "      \"options\": [ \"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\"%s ] },\n"
    "    { \"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\",\n"
    "      \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\" ] },\n"
    "    { \"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\",\n"
    "      \"options\": [ \"nosuid\", \"noexec\", \"nodev\" ] },\n"
    "    { \"destination\": \"/sys\", \"type\": \"%s\", \"source\": \"%s\",\n"
    "      \"options\": [ %s\"nosuid\", \"noexec\", \"nodev\", \"ro\" ] },\n"
    "    { \"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": \"cgroup\",\n"
    "      \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\" ] }\n"
    "  ],\n"
    "  \"linux\": {\n"
    "%s"
    "%s"
    "    \"namespaces\": [\n"
    "      { \"type\": \"pid\" },%s { \"type\": \"ipc\" },\n"
    "      { \"type\": \"uts\" }, { \"type\": \"mount\" }%s\n"
    "    ],\n"
    "    \"maskedPaths\": [\n"
    "      \"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", \"/proc/keys\", \"/proc/latency_stats\",\n"
    "      \"/proc/timer_list\", \"/proc/timer_stats\", \"/proc/sched_debug\", \"/sys/firmware\",\n"
    "      \"/proc/scsi\"\n"
    "    ],\n"
    "    \"readonlyPaths\": [\n"
    "      \"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\", \"/proc/sysrq-trigger\"\n"
    "    ]\n"
    "  }\n"
    "}\n";

int oci_spec_default(bool rootless, char **json, struct err **e)
{
	char maps[256] = "";
	int r;

	if (rootless)
		snprintf(maps, sizeof(maps),
			 "    \"uidMappings\": [ { \"containerID\": 0, \"hostID\": %u, \"size\": 1 } ],\n"
			 "    \"gidMappings\": [ { \"containerID\": 0, \"hostID\": %u, \"size\": 1 } ],\n",
			 (unsigned)getuid(), (unsigned)getgid());
	/* runc 1.1's template: no cgroup namespace (scripts add their own
	 * namespaces to it); rootless, the host's network and a user
	 * namespace, and no device rules (a user cannot set them). */
	r = asprintf(json, spec_template, rootless ? "" : ", \"gid=5\"", rootless ? "none" : "sysfs",
		     rootless ? "/sys" : "sysfs", rootless ? "\"rbind\", " : "", maps,
		     rootless ? ""
			      : "    \"resources\": { \"devices\": [ { \"allow\": false, \"access\": \"rwm\" } ] },\n",
		     rootless ? "" : " { \"type\": \"network\" },", rootless ? ", { \"type\": \"user\" }" : "");
	if (r < 0)
		return err_set(e, ENOMEM, "spec");
	return 0;
}
