/* Namespaces: open the ones to join, join and unshare them in the setup
 * child, write id maps and time offsets. */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "oci/container.h"
#include "oci/sync.h"
#include "oci/util.h"

int ns_open_paths(struct run_ctx *c, struct err **e)
{
	for (int k = 0; k < NS_KIND_MAX; k++) {
		const struct oci_namespace *ns = &c->spec->ns[k];
		int type;

		c->ns_fds[k] = -1;
		c->ns_new[k] = ns->present && ns->path == NULL;
		if (!ns->present || ns->path == NULL)
			continue;
		c->ns_fds[k] = open(ns->path, O_RDONLY | O_CLOEXEC);
		if (c->ns_fds[k] < 0)
			return err_set(e, errno, "namespace %s '%s': open", oci_ns_info[k].spec_name, ns->path);
		type = ioctl(c->ns_fds[k], NS_GET_NSTYPE);
		if (type >= 0 && type != oci_ns_info[k].clone_flag)
			return err_setx(e, EINVAL, "namespace %s '%s': not a %s namespace", oci_ns_info[k].spec_name,
					ns->path, oci_ns_info[k].spec_name);
		if (type < 0 && errno != ENOTTY)
			return err_set(e, errno, "namespace %s '%s': not a namespace file", oci_ns_info[k].spec_name,
				       ns->path);
	}
	return 0;
}

int ns_open_of_pid(struct run_ctx *c, pid_t pid, struct err **e)
{
	for (int k = 0; k < NS_KIND_MAX; k++) {
		char mine[64], theirs[64];
		struct stat a, b;

		c->ns_fds[k] = -1;
		c->ns_new[k] = false;
		snprintf(mine, sizeof(mine), "/proc/self/ns/%s", oci_ns_info[k].proc_name);
		snprintf(theirs, sizeof(theirs), "/proc/%d/ns/%s", (int)pid, oci_ns_info[k].proc_name);
		if (stat(theirs, &b) < 0) {
			if (errno == ENOENT && k == NS_TIME)
				continue;
			return err_set(e, errno, "container process %d: namespace %s", (int)pid,
				       oci_ns_info[k].spec_name);
		}
		if (stat(mine, &a) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			continue;
		c->ns_fds[k] = open(theirs, O_RDONLY | O_CLOEXEC);
		if (c->ns_fds[k] < 0)
			return err_set(e, errno, "container process %d: open namespace %s", (int)pid,
				       oci_ns_info[k].spec_name);
	}
	return 0;
}

void ns_close_all(struct run_ctx *c)
{
	for (int k = 0; k < NS_KIND_MAX; k++) {
		if (c->ns_fds[k] >= 0)
			close(c->ns_fds[k]);
		c->ns_fds[k] = -1;
	}
}

static int join(struct run_ctx *c, int k, struct err **e)
{
	if (c->ns_fds[k] < 0)
		return 0;
	if (setns(c->ns_fds[k], oci_ns_info[k].clone_flag) < 0)
		return err_set(e, errno, "namespace %s '%s': setns", oci_ns_info[k].spec_name,
			       c->spec->ns[k].path ? c->spec->ns[k].path : "(container)");
	close(c->ns_fds[k]);
	c->ns_fds[k] = -1;
	return 0;
}

static int write_time_offsets(const struct oci_spec *s, struct err **e)
{
	char buf[128];
	int n = 0, r;

	if (s->time_monotonic.present)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "monotonic %lld %u\n",
			      (long long)s->time_monotonic.secs, s->time_monotonic.nanosecs);
	if (s->time_boottime.present)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "boottime %lld %u\n", (long long)s->time_boottime.secs,
			      s->time_boottime.nanosecs);
	if (n == 0)
		return 0;
	/* One line per write: the kernel parses a single offset at a time on
	 * older versions. */
	for (char *line = buf, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		r = write_file("/proc/self/timens_offsets", line, (size_t)(nl - line + 1));
		if (r < 0)
			return err_set(e, -r, "linux.timeOffsets: write /proc/self/timens_offsets");
	}
	return 0;
}

int ns_enter(struct run_ctx *c, struct err **e)
{
	static const int order[] = {NS_IPC, NS_UTS, NS_NET, NS_PID, NS_CGROUP, NS_TIME, NS_MOUNT};
	int flags = 0, r;
	uint8_t new_user = c->ns_new[NS_USER];
	bool joined_user = c->ns_fds[NS_USER] >= 0;

	/* A joined user namespace first: the others belong to it.  A new one
	 * last: namespaces joined by path belong to the host's. */
	if ((r = join(c, NS_USER, e)) < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(order); i++)
		if ((r = join(c, order[i], e)) < 0)
			return r;
	if (new_user && unshare(CLONE_NEWUSER) < 0)
		return err_set(e, errno, "namespace user: unshare");
	/* The runtime writes our id maps and moves us into the cgroup. */
	if ((r = sync_send(c->child_sock, SYNC_USERNS, &new_user, 1, -1)) < 0)
		return err_set(e, -r, "namespaces: sync with runtime");
	if ((r = sync_expect(c->child_sock, SYNC_USERNS_DONE, NULL, 0, NULL, NULL, "namespaces", e)) < 0)
		return r;
	if (new_user || joined_user) {
		if (setresgid(0, 0, 0) < 0)
			return err_set(e, errno, "namespace user: setresgid(0) (is gid 0 mapped?)");
		if (setresuid(0, 0, 0) < 0)
			return err_set(e, errno, "namespace user: setresuid(0) (is uid 0 mapped?)");
	}
	/* All but user (done) and cgroup (the container process makes it once
	 * it sits in its cgroups). */
	for (int k = 0; k < NS_KIND_MAX; k++)
		if (k != NS_USER && k != NS_CGROUP && c->ns_new[k])
			flags |= oci_ns_info[k].clone_flag;
	if (flags && unshare(flags) < 0) {
		int saved = errno;
		for (int k = 0; k < NS_KIND_MAX; k++)
			if (k != NS_USER && k != NS_CGROUP && c->ns_new[k] && unshare(oci_ns_info[k].clone_flag) < 0)
				return err_set(e, errno, "namespace %s: unshare", oci_ns_info[k].spec_name);
		if (saved)
			return err_set(e, saved, "namespaces: unshare");
	}
	if (c->ns_new[NS_TIME] && (r = write_time_offsets(c->spec, e)) < 0)
		return r;
	return 0;
}

static int write_map(pid_t pid, const char *file, const struct oci_idmap *m, size_t n, struct err **e)
{
	char path[64], buf[4096];
	size_t len = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		int w =
		    snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", m[i].container_id, m[i].host_id, m[i].size);
		if (w < 0 || (size_t)w >= sizeof(buf) - len)
			return err_setx(e, E2BIG, "linux.%s: too many mappings", file);
		len += (size_t)w;
	}
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	r = write_file(path, buf, len);
	if (r < 0)
		return err_set(e, -r, "linux.%s: write %s",
			       strcmp(file, "uid_map") == 0 ? "uidMappings" : "gidMappings", path);
	return 0;
}

int ns_write_idmaps(const struct oci_spec *s, pid_t pid, struct err **e)
{
	int r = write_map(pid, "uid_map", s->uid_mappings, s->n_uid_mappings, e);

	if (r < 0)
		return r;
	return write_map(pid, "gid_map", s->gid_mappings, s->n_gid_mappings, e);
}
