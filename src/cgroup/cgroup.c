/* A cgroup's life: create (with the checks runc makes), enter, freeze,
 * list and signal its processes, remove. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup/cgroup-internal.h"
#include "common/file.h"
#include "common/macro.h"

int cgroup_write(const char *dir, const char *file, const char *value, struct err **e)
{
	char path[4096];
	int r;

	/* A path cut short would name another file. */
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return err_set(e, ENAMETOOLONG, "cgroup '%.64s...': write %s", dir, file);
	r = write_file_str(path, value);
	if (r < 0)
		return err_set(e, -r, "cgroup '%s': write '%s' to %s", dir, value, file);
	return 0;
}

int cgroup_read(const char *dir, const char *file, char **ret)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	return read_file(path, ret, NULL);
}

bool cgroup_has_file(const char *dir, const char *file)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

/* A cpuset cgroup with no cpus or mems takes no process: give it its
 * parent's, from the top of the hierarchy down to dir, as runc does
 * (a level made beforehand by someone else may be empty too). */
static void cpuset_fill(const char *mountpoint, const char *dir)
{
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	char buf[4096];
	size_t mlen = strlen(mountpoint), len = strlen(dir);

	if (len >= sizeof(buf) || strncmp(dir, mountpoint, mlen) != 0)
		return;
	memcpy(buf, dir, len + 1);
	for (size_t p = mlen + 1; p <= len; p++) {
		if (buf[p] != '/' && buf[p] != '\0')
			continue;
		char saved = buf[p];
		buf[p] = '\0';
		for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
			_cleanup_free_ char *cur = NULL, *parent_val = NULL;
			char *slash = strrchr(buf, '/');
			if (cgroup_read(buf, files[i], &cur) < 0 || strspn(cur, " \n") != strlen(cur))
				continue;
			*slash = '\0';
			int r = cgroup_read(buf, files[i], &parent_val);
			*slash = '/';
			if (r == 0)
				(void)cgroup_write(buf, files[i], parent_val, NULL);
		}
		buf[p] = saved;
	}
}

/* mkdir -p.  *made_from is the length of the prefix of path that existed
 * before (path's length when nothing was made), so that unmake_dirs() can
 * take back exactly what this made. */
static int make_dirs(const char *path, size_t *made_from)
{
	char buf[4096];
	size_t len = strlen(path);

	*made_from = len;
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	/* Most often only the last level is missing (or none is): one call. */
	if (mkdir(path, 0755) == 0) {
		const char *last = strrchr(path, '/');
		*made_from = last ? (size_t)(last - path) : 0;
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -errno;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(buf, 0755) == 0) {
			if (*made_from == len)
				*made_from = (size_t)(strrchr(buf, '/') - buf);
		} else if (errno != EEXIST) {
			return -errno;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	return 0;
}

/* rmdir what make_dirs() made of path, deepest first. */
static void unmake_dirs(const char *path, size_t made_from)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return;
	memcpy(buf, path, len + 1);
	while (len > made_from) {
		if (rmdir(buf) < 0)
			return;
		while (len > 0 && buf[len] != '/')
			len--;
		buf[len] = '\0';
	}
}

static int read_pids(const char *dir, pid_t **pids, size_t *n)
{
	char *text = NULL, *save = NULL;
	size_t cap = *n;
	int r;

	if ((r = cgroup_read(dir, "cgroup.procs", &text)) < 0)
		return r;
	for (char *t = strtok_r(text, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		if (*n == cap) {
			pid_t *np = realloc(*pids, (cap ? cap * 2 : 16) * sizeof(pid_t));
			if (np == NULL) {
				free(text);
				return -ENOMEM;
			}
			*pids = np;
			cap = cap ? cap * 2 : 16;
		}
		(*pids)[(*n)++] = atoi(t);
	}
	free(text);
	return 0;
}

static int count_procs(const char *dir)
{
	pid_t *pids = NULL;
	size_t n = 0;
	int r = read_pids(dir, &pids, &n);

	free(pids);
	return r < 0 ? r : (int)MIN(n, (size_t)INT_MAX);
}

int cgroup_frozen(const struct cgroup *cg, char **why)
{
	const char *dir = cgroup_v1_dir(cg, "freezer");
	char *text = NULL;
	int frozen = 0;

	if (why)
		*why = NULL;
	/* v1: freezer.state says FREEZING or FROZEN when this cgroup or an
	 * ancestor is frozen. */
	if (dir && cgroup_read(dir, "freezer.state", &text) == 0) {
		text[strcspn(text, "\n")] = '\0';
		if (strcmp(text, "THAWED") != 0) {
			frozen = 1;
			if (why && asprintf(why, "cgroup '%s': freezer.state is %s", dir, text) < 0)
				*why = NULL;
		}
		free(text);
		text = NULL;
	}
	/* cgroup2: cgroup.events says "frozen 1" when this cgroup or an
	 * ancestor is frozen (cgroup.freeze is only its own wish). */
	if (!frozen && cg->unified.path && cgroup_read(cg->unified.path, "cgroup.events", &text) == 0) {
		if (strncmp(text, "frozen 1", 8) == 0 || strstr(text, "\nfrozen 1")) {
			frozen = 1;
			if (why && asprintf(why, "cgroup '%s': cgroup.events says frozen 1", cg->unified.path) < 0)
				*why = NULL;
		}
		free(text);
	}
	return frozen;
}

int cgroup_make(struct cgroup *cg, int *n_procs, struct err **e)
{
	size_t made_from[CGROUP_V1_MAX + 1];
	_cleanup_free_ char *why = NULL;
	size_t n = cgroup_n_dirs(cg), done = 0;
	int most = 0, r = 0;

	for (; done < n; done++) {
		const char *dir = cgroup_dir_at(cg, done);
		if ((r = make_dirs(dir, &made_from[done])) < 0) {
			r = err_set(e, -r, "cgroup '%s': mkdir", dir);
			goto undo;
		}
		if (done < cg->n_v1 && strstr(cg->v1[done].controllers, "cpuset"))
			cpuset_fill(cg->v1[done].mountpoint, dir);
	}
	/* runc's check: a frozen cgroup would hold the first process before
	 * it could report anything. */
	if (cgroup_frozen(cg, &why)) {
		r = err_setx(e, EBUSY, "cgroup '%s': unexpectedly frozen (%s)", cg->rel, why ? why : "frozen");
		goto undo;
	}
	for (size_t i = 0; i < n; i++)
		if (made_from[i] == strlen(cgroup_dir_at(cg, i))) /* one we made is empty */
			most = MAX(most, count_procs(cgroup_dir_at(cg, i)));
	if (n_procs)
		*n_procs = most;
	return 0;
undo:
	while (done-- > 0)
		unmake_dirs(cgroup_dir_at(cg, done), made_from[done]);
	return r;
}

int cgroup_enter_dir(const char *dir, pid_t pid, struct err **e)
{
	char val[32];

	snprintf(val, sizeof(val), "%d", (int)pid);
	return cgroup_write(dir, "cgroup.procs", val, e);
}

int cgroup_enter(const struct cgroup *cg, pid_t pid, struct err **e)
{
	for (size_t i = 0; i < cgroup_n_dirs(cg); i++)
		if (cgroup_enter_dir(cgroup_dir_at(cg, i), pid, e) < 0)
			return -err_code(*e);
	return 0;
}

int cgroup_enter_self(const struct cgroup *cg, bool now, int *unified_fd, struct err **e)
{
	*unified_fd = -1;
	for (size_t i = 0; i < cg->n_v1; i++)
		/* "0" into tasks moves the calling thread, which spares the
		 * kernel's global threadgroup lock (and its RCU grace period)
		 * that a write to cgroup.procs takes. */
		if (cgroup_write(cg->v1[i].path, "tasks", "0", e) < 0)
			return -err_code(*e);
	if (cg->unified.path) {
		if (now)
			return cgroup_write(cg->unified.path, "cgroup.procs", "0", e);
		*unified_fd = open(cg->unified.path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (*unified_fd < 0)
			return err_set(e, errno, "cgroup '%s': open", cg->unified.path);
	}
	return 0;
}

/* The directory to list processes from: one holding every process. */
static const char *procs_dir(const struct cgroup *cg)
{
	static const char *const pref[] = {"freezer", "pids", "memory", "devices", "cpu", "name=systemd"};

	if (cg->mode == CGROUP_MODE_V2)
		return cg->unified.path;
	for (size_t i = 0; i < ARRAY_SIZE(pref); i++) {
		const char *d = cgroup_v1_dir(cg, pref[i]);
		if (d)
			return d;
	}
	return cg->n_v1 ? cg->v1[0].path : cg->unified.path;
}

/* Processes in dir and its sub-cgroups. */
static int read_pids_tree(const char *dir, pid_t **pids, size_t *n)
{
	DIR *d;
	struct dirent *de;
	int r = read_pids(dir, pids, n);

	if (r < 0)
		return r;
	d = opendir(dir);
	if (d == NULL)
		return 0;
	while ((de = readdir(d))) {
		char sub[4200];
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		(void)read_pids_tree(sub, pids, n);
	}
	closedir(d);
	return 0;
}

int cgroup_pids(const struct cgroup *cg, pid_t **pids, size_t *n, struct err **e)
{
	const char *dir = procs_dir(cg);
	int r;

	*pids = NULL;
	*n = 0;
	if (dir == NULL)
		return 0;
	r = read_pids_tree(dir, pids, n);
	if (r < 0 && r != -ENOENT)
		return err_set(e, -r, "cgroup '%s': read cgroup.procs", dir);
	return 0;
}

int cgroup_signal_all(const struct cgroup *cg, int sig, struct err **e)
{
	pid_t *pids = NULL;
	size_t n = 0;
	int r = cgroup_pids(cg, &pids, &n, e);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (kill(pids[i], sig) < 0 && errno != ESRCH) {
			r = err_set(e, errno, "cgroup '%s': process %d: kill %d", cg->rel, (int)pids[i], sig);
			break;
		}
	free(pids);
	return r;
}

int cgroup_wait_empty(const struct cgroup *cg, unsigned ms)
{
	for (unsigned waited = 0;; waited += 2) {
		pid_t *pids = NULL;
		size_t n = 0;

		if (cgroup_pids(cg, &pids, &n, NULL) < 0)
			return 0;
		free(pids);
		if (n == 0)
			return 0;
		if (waited >= ms)
			return -ETIMEDOUT;
		msleep(2);
	}
}

/* Poll file in dir until it holds want (at most 2 s); poke is written
 * again now and then (a v1 FREEZING state can stall). */
static int wait_state(const char *dir, const char *file, const char *want, const char *poke, struct err **e)
{
	for (int i = 0; i < 2000; i++) {
		char *text = NULL;
		if (cgroup_read(dir, file, &text) < 0)
			break;
		bool done = strncmp(text, want, strlen(want)) == 0 || strstr(text, want) != NULL;
		free(text);
		if (done)
			return 0;
		if (poke && i % 50 == 49)
			(void)cgroup_write(dir, file, poke, NULL);
		msleep(1);
	}
	return err_setx(e, ETIMEDOUT, "cgroup '%s': %s: timed out waiting for '%s'", dir, file, want);
}

/* The freezer to use: v1's where it is mounted, else cgroup2's. */
static bool freezer_is_v2(const struct cgroup *cg)
{
	return cg->mode == CGROUP_MODE_V2 || (cgroup_v1_dir(cg, "freezer") == NULL && cg->unified.path);
}

int cgroup_freeze(const struct cgroup *cg, bool freeze, struct err **e)
{
	const char *dir;
	int r;

	if (freezer_is_v2(cg)) {
		dir = cg->unified.path;
		if ((r = cgroup_write(dir, "cgroup.freeze", freeze ? "1" : "0", e)) < 0)
			return r;
		return wait_state(dir, "cgroup.events", freeze ? "frozen 1" : "frozen 0", NULL, e);
	}
	dir = cgroup_v1_dir(cg, "freezer");
	if (dir == NULL)
		return err_setx(e, ENOTSUP, "cgroup '%s': no freezer controller is mounted", cg->rel);
	if ((r = cgroup_write(dir, "freezer.state", freeze ? "FROZEN" : "THAWED", e)) < 0)
		return r;
	return wait_state(dir, "freezer.state", freeze ? "FROZEN" : "THAWED", freeze ? "FROZEN" : NULL, e);
}

int cgroup_is_frozen(const struct cgroup *cg)
{
	const char *dir = cgroup_v1_dir(cg, "freezer");
	char *st = NULL;
	int r;

	if (freezer_is_v2(cg)) {
		if ((r = cgroup_read(cg->unified.path, "cgroup.freeze", &st)) < 0)
			return r;
		r = st[0] == '1';
		free(st);
		return r;
	}
	if (dir == NULL)
		return 0;
	if ((r = cgroup_read(dir, "freezer.state", &st)) < 0)
		return r;
	r = strncmp(st, "FROZEN", 6) == 0 || strncmp(st, "FREEZING", 8) == 0;
	free(st);
	return r;
}

/* rmdir a cgroup directory and its sub-cgroups, deepest first, retrying
 * a busy one (an exiting process may linger a moment) tries times. */
static int remove_tree(const char *dir, int tries)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	/* Most often it is empty and has no sub-cgroup: no listing needed
	 * (a cgroup's listing is long, its control files). */
	if (rmdir(dir) == 0 || errno == ENOENT)
		return 0;
	if (errno != EBUSY)
		return -errno;
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char sub[4200];
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		if (remove_tree(sub, tries) < 0)
			r = -errno;
	}
	closedir(d);
	for (int i = 0; i < tries; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		if (i + 1 < tries)
			msleep(2);
	}
	return r < 0 ? r : -EBUSY;
}

static int destroy(struct cgroup *cg, int tries, struct err **e)
{
	pid_t *pids = NULL;
	size_t n = 0;
	int r = 0;

	/* Processes left over: kill them, thawing first so that SIGKILL is
	 * delivered. */
	if (cgroup_pids(cg, &pids, &n, NULL) == 0 && n > 0) {
		if (cgroup_is_frozen(cg) == 1)
			(void)cgroup_freeze(cg, false, NULL);
		for (int round = 0; round < (tries > 1 ? 200 : 1) && n > 0; round++) {
			for (size_t i = 0; i < n; i++)
				kill(pids[i], SIGKILL);
			free(pids);
			pids = NULL;
			n = 0;
			msleep(round < 10 ? 1 : 5);
			if (cgroup_pids(cg, &pids, &n, NULL) < 0)
				break;
		}
	}
	free(pids);
	for (size_t i = 0; i < cgroup_n_dirs(cg); i++) {
		const char *path = cgroup_dir_at(cg, i);
		int rr = remove_tree(path, tries);
		if (rr < 0 && r == 0)
			r = err_set(e, -rr, "cgroup '%s': rmdir", path);
	}
	return r;
}

int cgroup_destroy(struct cgroup *cg, struct err **e)
{
	return destroy(cg, 500, e);
}

int cgroup_destroy_once(struct cgroup *cg, struct err **e)
{
	return destroy(cg, 1, e);
}
