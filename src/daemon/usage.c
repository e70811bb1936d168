/*
 * Usage of instances, sampled every second by one thread: CPU time and
 * memory of a VM from its casulo-vmm process (/proc), of a container from
 * its cgroup; disk and network bytes from the VMM's device counters (every
 * few seconds, through its API) and a container's cgroup and network
 * namespace.  The listing, `casulo top`, the dashboard and /metrics read
 * these samples, so that none of them waits on a VMM.
 *
 * usage_read_cgroup() reads the cgroup files itself for now; it is the
 * one place to switch to src/cgroup's cgroup_stats_read() once that
 * library (branch runtime16b) is in.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "daemon/internal.h"

#define SAMPLE_INTERVAL_S 1.0
#define SLOW_SAMPLE_EVERY 5 /* VMM API calls: every fifth sample */

/* ---- cgroup files ---- */

struct cgroup_mounts {
	char memory[256], cpuacct[256], blkio[256], unified[256];
	bool v2; /* /sys/fs/cgroup is cgroup2 itself */
};

static void find_mounts(struct cgroup_mounts *m)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];

	memset(m, 0, sizeof(*m));
	while (f && fgets(line, sizeof(line), f)) {
		char mnt[256], fstype[64], opts[256];
		const char *sep = strstr(line, " - ");
		if (sep == NULL || sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s %*s %255s", fstype, opts) != 2)
			continue;
		if (strcmp(fstype, "cgroup2") == 0) {
			snprintf(m->unified, sizeof(m->unified), "%s", mnt);
			m->v2 |= strcmp(mnt, "/sys/fs/cgroup") == 0;
		} else if (strcmp(fstype, "cgroup") == 0) {
			/* Options end with the controllers: ",memory", ",cpu,cpuacct". */
			char *save = NULL;
			for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
				if (strcmp(o, "memory") == 0)
					snprintf(m->memory, sizeof(m->memory), "%s", mnt);
				else if (strcmp(o, "cpuacct") == 0)
					snprintf(m->cpuacct, sizeof(m->cpuacct), "%s", mnt);
				else if (strcmp(o, "blkio") == 0)
					snprintf(m->blkio, sizeof(m->blkio), "%s", mnt);
			}
		}
	}
	if (f)
		fclose(f);
}

static int read_small(const char *dir, const char *cgroup, const char *file, char *buf, size_t size)
{
	char path[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s%s/%s", dir, cgroup, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read_all(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	return 0;
}

/* "key value" lines: the value of key, or 0. */
static uint64_t keyed(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
			return strtoull(p + klen + 1, NULL, 10);
	return 0;
}

/* io.stat: "MAJ:MIN rbytes=N wbytes=N ..." per device, summed. */
static void io_stat(const char *text, uint64_t *rd, uint64_t *wr)
{
	const char *p;

	for (p = strstr(text, "rbytes="); p; p = strstr(p + 1, "rbytes="))
		*rd += strtoull(p + 7, NULL, 10);
	for (p = strstr(text, "wbytes="); p; p = strstr(p + 1, "wbytes="))
		*wr += strtoull(p + 7, NULL, 10);
}

/* blkio.throttle.io_service_bytes: "MAJ:MIN Read N" lines, summed. */
static void blkio_bytes(const char *text, uint64_t *rd, uint64_t *wr)
{
	char line[256];

	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		unsigned long long v;
		char op[16];
		snprintf(line, sizeof(line), "%.*s", (int)MIN(len, sizeof(line) - 1), p);
		if (sscanf(line, "%*s %15s %llu", op, &v) == 2) {
			if (strcmp(op, "Read") == 0)
				*rd += v;
			else if (strcmp(op, "Write") == 0)
				*wr += v;
		}
		p = nl ? nl + 1 : NULL;
	}
}

static struct cgroup_mounts mounts;
static pthread_once_t mounts_once = PTHREAD_ONCE_INIT;

static void mounts_init(void)
{
	find_mounts(&mounts);
}

int usage_read_cgroup(const char *cgroup, struct usage *u)
{
	const struct cgroup_mounts *m = &mounts;
	char buf[8192];
	bool any = false;

	pthread_once(&mounts_once, mounts_init);
	if (m->v2) {
		if (read_small(m->unified, cgroup, "memory.current", buf, sizeof(buf)) == 0) {
			u->memory_bytes = strtoull(buf, NULL, 10);
			if (read_small(m->unified, cgroup, "memory.stat", buf, sizeof(buf)) == 0) {
				uint64_t inactive = keyed(buf, "inactive_file");
				u->memory_bytes -= MIN(inactive, u->memory_bytes);
			}
			any = true;
		}
		if (read_small(m->unified, cgroup, "cpu.stat", buf, sizeof(buf)) == 0)
			u->cpu_ns = keyed(buf, "usage_usec") * 1000;
		if (read_small(m->unified, cgroup, "io.stat", buf, sizeof(buf)) == 0) {
			io_stat(buf, &u->disk_read_bytes, &u->disk_write_bytes);
			u->has_io = true;
		}
		return any ? 0 : -ENOENT;
	}
	if (m->memory[0] && read_small(m->memory, cgroup, "memory.usage_in_bytes", buf, sizeof(buf)) == 0) {
		u->memory_bytes = strtoull(buf, NULL, 10);
		if (read_small(m->memory, cgroup, "memory.stat", buf, sizeof(buf)) == 0) {
			uint64_t inactive = keyed(buf, "total_inactive_file");
			u->memory_bytes -= MIN(inactive, u->memory_bytes);
		}
		any = true;
	}
	if (m->cpuacct[0] && read_small(m->cpuacct, cgroup, "cpuacct.usage", buf, sizeof(buf)) == 0)
		u->cpu_ns = strtoull(buf, NULL, 10);
	if (m->blkio[0] && read_small(m->blkio, cgroup, "blkio.throttle.io_service_bytes", buf, sizeof(buf)) == 0) {
		blkio_bytes(buf, &u->disk_read_bytes, &u->disk_write_bytes);
		u->has_io = true;
	}
	return any ? 0 : -ENOENT;
}

/* ---- the sampler ---- */

static void sample_one(struct instance *inst, bool slow)
{
	struct daemon *d = inst->d;
	struct usage u = {0};
	double now = proc_monotonic();
	pid_t pid;
	int r;

	pthread_mutex_lock(&d->lock);
	pid = inst->shim_pidfd >= 0 ? inst->workload_pid : 0;
	u.has_io = inst->usage.has_io;
	u.disk_read_bytes = inst->usage.disk_read_bytes;
	u.disk_write_bytes = inst->usage.disk_write_bytes;
	u.net_rx_bytes = inst->usage.net_rx_bytes;
	u.net_tx_bytes = inst->usage.net_tx_bytes;
	pthread_mutex_unlock(&d->lock);
	if (pid <= 0)
		return;
	if (inst->type == INSTANCE_VM)
		r = proc_cpu_ns(pid, &u.cpu_ns) < 0 || proc_rss_bytes(pid, &u.memory_bytes) < 0 ? -1 : 0;
	else
		r = usage_read_cgroup(inst->cgroup, &u);
	if (r < 0)
		return; /* it is ending */
	backend_of(inst)->sample(inst, &u, slow);
	u.valid = true;
	u.sampled_at = proc_now();
	pthread_mutex_lock(&d->lock);
	if (inst->prev_sample > 0 && now > inst->prev_sample && u.cpu_ns >= inst->prev_cpu_ns)
		u.cpu_percent = (double)(u.cpu_ns - inst->prev_cpu_ns) / 1e9 / (now - inst->prev_sample) * 100.0;
	inst->prev_cpu_ns = u.cpu_ns;
	inst->prev_sample = now;
	if (inst->shim_pidfd >= 0)
		inst->usage = u;
	pthread_mutex_unlock(&d->lock);
}

void *usage_sampler(void *arg)
{
	struct daemon *d = arg;
	unsigned round = 0;

	while (!atomic_load(&d->stopping)) {
		double next = proc_monotonic() + SAMPLE_INTERVAL_S;
		struct instance **list;
		size_t n;

		list = instances_snapshot(d, &n);
		for (size_t i = 0; i < n && !atomic_load(&d->stopping); i++)
			sample_one(list[i], round % SLOW_SAMPLE_EVERY == 0);
		instances_put(list, n);
		round++;
		for (double left; (left = next - proc_monotonic()) > 0 && !atomic_load(&d->stopping);)
			usleep((useconds_t)(MIN(left, 0.2) * 1e6));
	}
	return NULL;
}
