/* The process's own settings: executable lookup, rlimits, OOM score,
 * personality, I/O priority, scheduler, LSM labels, fds, environment. */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"
#include "oci/container.h"
#include "oci/json-util.h"
#include "oci/util.h"
#include "security/selinux.h"

static const char *env_get(char *const *env, const char *key)
{
	size_t n = strlen(key);

	for (; env && *env; env++)
		if (strncmp(*env, key, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

static bool is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int process_find_exec(const struct oci_process *p, char **ret, struct err **e)
{
	const char *name = p->args[0], *path;
	char *copy, *save = NULL;

	if (strchr(name, '/')) {
		struct stat st;
		if (stat(name, &st) < 0)
			return err_set(e, errno, "exec: '%s'", name);
		if (S_ISDIR(st.st_mode))
			return err_setx(e, EACCES, "exec: '%s': is a directory", name);
		/* As runc's lookup: no execute bit at all fails create, not
		 * the process's start (podman maps the words to 126). */
		if (!(st.st_mode & 0111))
			return err_setx(e, EACCES, "exec: '%s': permission denied", name);
		*ret = strdup(name);
		return *ret ? 0 : err_set(e, ENOMEM, "exec");
	}
	path = env_get(p->env, "PATH");
	if (path == NULL)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	copy = strdup(path);
	if (copy == NULL)
		return err_set(e, ENOMEM, "exec");
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *cand;
		if (asprintf(&cand, "%s/%s", *dir ? dir : ".", name) < 0)
			break;
		if (is_executable(cand)) {
			free(copy);
			*ret = cand;
			return 0;
		}
		free(cand);
	}
	free(copy);
	return err_setx(e, ENOENT, "exec: \"%s\": executable file not found in $PATH", name);
}

int process_limits(const struct oci_spec *s, const struct oci_process *p, pid_t pid, struct err **e)
{
	(void)pid;
	for (size_t i = 0; i < p->n_rlimits; i++) {
		struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
		if (setrlimit(p->rlimits[i].resource, &rl) < 0)
			return err_set(e, errno, "process.rlimits[%zu]: setrlimit %d to %llu/%llu", i,
				       p->rlimits[i].resource, (unsigned long long)rl.rlim_cur,
				       (unsigned long long)rl.rlim_max);
	}
	if (p->has_oom_score_adj) {
		char v[16];
		int r;
		snprintf(v, sizeof(v), "%d", p->oom_score_adj);
		r = write_file_str("/proc/self/oom_score_adj", v);
		if (r < 0)
			return err_set(e, -r, "process.oomScoreAdj: write %d to /proc/self/oom_score_adj",
				       p->oom_score_adj);
	}
	if (s && s->has_mempolicy &&
	    syscall(SYS_set_mempolicy, s->mempolicy_mode | (int)s->mempolicy_flags, s->mempolicy_nodes,
		    (unsigned long)(8 * sizeof(s->mempolicy_nodes))) < 0)
		return err_set(e, errno, "linux.memoryPolicy: set_mempolicy");
	if (s && s->has_personality && personality(s->personality) < 0)
		return err_set(e, errno, "linux.personality: personality(0x%lx)", s->personality);
	if (p->has_io_priority) {
		int v = (p->io_priority_class << 13) | p->io_priority;
		if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, v) < 0)
			return err_set(e, errno, "process.ioPriority: ioprio_set");
	}
	if (p->has_scheduler) {
		struct {
			uint32_t size;
			uint32_t policy;
			uint64_t flags;
			int32_t nice;
			uint32_t priority;
			uint64_t runtime, deadline, period;
		} attr = {48,
			  (uint32_t)p->sched_policy,
			  p->sched_flags,
			  p->sched_nice,
			  (uint32_t)p->sched_priority,
			  p->sched_runtime,
			  p->sched_deadline,
			  p->sched_period};
		if (syscall(SYS_sched_setattr, 0, &attr, 0) < 0)
			return err_set(e, errno, "process.scheduler: sched_setattr");
	}
	return 0;
}

int process_labels(const char *apparmor, const char *selinux, struct err **e)
{
	int r;

	if (apparmor && *apparmor) {
		char buf[512];
		/* Without AppArmor on the host the profile is ignored, as runc does. */
		if (access("/sys/kernel/security/apparmor", F_OK) == 0) {
			snprintf(buf, sizeof(buf), "exec %s", apparmor);
			r = write_file_str("/proc/self/attr/apparmor/exec", buf);
			if (r == -ENOENT)
				r = write_file_str("/proc/self/attr/exec", buf);
			if (r < 0)
				return err_set(e, -r, "process.apparmorProfile '%s': set exec profile", apparmor);
		}
	}
	/* Without SELinux on the host the label is ignored, as runc does. */
	if (selinux && *selinux && sel_enabled() && (r = sel_set_exec("process.selinuxLabel", selinux, e)) < 0)
		return r;
	return 0;
}

int process_fix_stdio(uid_t uid, struct err **e)
{
	struct stat null;

	if (uid == 0 || stat("/dev/null", &null) < 0)
		return 0;
	for (int fd = 0; fd < 3; fd++) {
		struct stat st;
		if (fstat(fd, &st) < 0 || st.st_uid == uid || (S_ISCHR(st.st_mode) && st.st_rdev == null.st_rdev))
			continue;
		/* Only the owner: the group may be the mount's choice. */
		if (fchown(fd, uid, (gid_t)-1) < 0 && errno != EINVAL && errno != EPERM && errno != EROFS)
			return err_set(e, errno, "stdio fd %d: chown to uid %u", fd, uid);
	}
	return 0;
}

void process_close_fds(unsigned preserve)
{
	unsigned first = 3 + preserve;

	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	for (int fd = (int)first; fd < 65536; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* The home directory of uid in the container's /etc/passwd, as runc sets
 * HOME when the spec does not. */
static char *passwd_home(uid_t uid)
{
	char *text = NULL, *save = NULL, *home = NULL;

	if (read_file("/etc/passwd", &text, NULL) < 0)
		return NULL;
	for (char *line = strtok_r(text, "\n", &save); line && !home; line = strtok_r(NULL, "\n", &save)) {
		char *f[7] = {0};
		int n = 0;
		for (char *p = line; n < 7; n++) {
			f[n] = p;
			p = strchr(p, ':');
			if (p == NULL)
				break;
			*p++ = '\0';
		}
		if (n >= 6 && f[2] && (uid_t)strtoul(f[2], NULL, 10) == uid && f[5] && *f[5])
			home = strdup(f[5]);
	}
	free(text);
	return home;
}

char **process_env(const struct oci_process *p)
{
	size_t n = strv_length(p->env);
	char **env = calloc(n + 2, sizeof(*env));

	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		env[i] = p->env[i];
	if (env_get(p->env, "HOME") == NULL) {
		char *home = passwd_home(p->user.uid);
		if (home == NULL || asprintf(&env[n], "HOME=%s", home) < 0)
			env[n] = "HOME=/";
		free(home);
	}
	return env;
}
