/* The verbs on an existing container: state, kill, delete, pause,
 * resume, update, list, pids. */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "oci/cgroups.h"
#include "oci/container.h"
#include "oci/state.h"
#include "oci/util.h"

int container_wait_gone(pid_t pid, unsigned long long start_time, int timeout_ms)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pidfd >= 0) {
		struct pollfd p = {pidfd, POLLIN, 0};
		int r = poll(&p, 1, timeout_ms);
		close(pidfd);
		/* An exited but unreaped process also counts as gone. */
		if (r > 0 || !proc_alive(pid, start_time))
			return 0;
		return -ETIMEDOUT;
	}
	for (int waited = 0; waited < timeout_ms; waited += 5) {
		if (!proc_alive(pid, start_time))
			return 0;
		msleep(5);
	}
	return proc_alive(pid, start_time) ? -ETIMEDOUT : 0;
}

/* Is SIGKILL pending for pid (it dies as soon as it can run)? */
static bool sigkill_pending(pid_t pid)
{
	char path[64], *text = NULL;
	bool pending = false;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_file(path, &text, NULL) < 0)
		return false;
	for (const char *key = "ShdPnd:"; key; key = strcmp(key, "ShdPnd:") == 0 ? "SigPnd:" : NULL) {
		const char *p = strstr(text, key);
		if (p && (strtoull(p + strlen(key), NULL, 16) & (1ULL << (SIGKILL - 1))))
			pending = true;
	}
	free(text);
	return pending;
}

static int load_locked(const struct oci_global *g, const char *id, struct oci_state **st, struct err **e)
{
	return state_load_locked(g->root, id, st, e);
}

/* SIGKILL a process a killed create left (the setup child, the container
 * process), if it is still the one recorded, and wait for it a moment. */
static void kill_leftover(pid_t pid, unsigned long long start_time)
{
	if (pid <= 0 || !proc_alive(pid, start_time))
		return;
	kill(pid, SIGKILL);
	(void)container_wait_gone(pid, start_time, 1000);
}

int oci_state(const struct oci_global *g, const char *id, char **json, struct err **e)
{
	struct oci_state *st;
	int r = state_load(g->root, id, &st, e);

	if (r < 0)
		return r;
	(void)state_load_spec(st, NULL);
	*json = state_runc_json(st, state_status(st));
	state_free(st);
	return *json ? 0 : err_set(e, ENOMEM, "container '%s'", id);
}

int oci_kill(const struct oci_global *g, const char *id, int sig, bool all, struct err **e)
{
	struct oci_state *st;
	enum oci_status s;
	int r = state_load(g->root, id, &st, e);

	if (r < 0)
		return r;
	s = state_status(st);
	/* --all also once the init has exited, as runc: what it left in the
	 * cgroup is still reached.  containerd's shim kills a container's
	 * orphans so when the container has no PID namespace of its own (a
	 * pod's containers share the sandbox's). */
	if (s == STATUS_STOPPED && !(all && st->cg)) {
		r = err_setx(e, ESRCH, "container '%s': container not running", id);
	} else if (all && st->cg) {
		r = cgroup_signal_all(st->cg, sig, e);
		/* The init too, by its pid: where no cgroup hierarchy is mounted
		 * (a bare initramfs, as the lab's) the cgroup lists nobody. */
		if (r == 0 && s != STATUS_STOPPED && st->pid > 0 && kill(st->pid, sig) < 0 && errno != ESRCH)
			r = err_set(e, errno, "container '%s': kill %d (pid %d)", id, sig, (int)st->pid);
		if (r == 0 && s == STATUS_PAUSED && (sig == SIGKILL || sig == SIGTERM))
			(void)cgroup_freeze(st->cg, false, NULL);
	} else if (st->pid <= 0) {
		/* Never kill(0, ...): that is our own process group. */
		r = err_setx(e, EBUSY, "container '%s': the container is being created: no process yet", id);
	} else if (kill(st->pid, sig) < 0) {
		r = err_set(e, errno, "container '%s': kill %d (pid %d)", id, sig, (int)st->pid);
	}
	/* After --all SIGKILL, return once they are gone: the shim then has
	 * containerd close the container's stdio, and a process still dying
	 * would hold it open, its last output lost ("Failed to pipe stdout"
	 * in containerd's log).  Bounded: a process stuck in the kernel is not
	 * waited for. */
	if (r == 0 && all && st->cg && sig == SIGKILL)
		(void)cgroup_wait_empty(st->cg, 1000);
	state_free(st);
	return r;
}

int oci_delete(const struct oci_global *g, const char *id, bool force, struct err **e)
{
	struct oci_state *st;
	enum oci_status s;
	bool stuck = false;
	/* Locked first: a create of the same container finishes (or dies)
	 * before we look. */
	int r = load_locked(g, id, &st, e);

	if (r < 0) {
		/* runc: delete --force of a missing container succeeds. */
		if (force && err_code(*e) == ENOENT) {
			err_free(e);
			return 0;
		}
		return r;
	}
	s = state_status(st);
	if (s == STATUS_RUNNING || s == STATUS_PAUSED) {
		if (!force) {
			r = err_setx(e, EBUSY, "container '%s': cannot delete container %s that is not stopped: %s", id,
				     id, oci_status_names[s]);
			goto out;
		}
	}
	if (st->creating) {
		/* A create killed halfway (we hold its lock: its runtime is
		 * gone): what it started may still run. */
		kill_leftover(st->setup_pid, st->setup_start);
		kill_leftover(st->pid, st->start_time);
	} else if (s != STATUS_STOPPED) {
		kill(st->pid, SIGKILL);
		if (s == STATUS_PAUSED && st->cg)
			(void)cgroup_freeze(st->cg, false, NULL);
		if (container_wait_gone(st->pid, st->start_time, 1000) < 0) {
			/* Frozen by a freezer that is not ours (or stuck in the
			 * kernel): it dies when it runs again.  runc waits 10 s and
			 * fails; crun goes on; so do we, and say so. */
			if ((stuck = sigkill_pending(st->pid)))
				log_warn("container '%s': init %d has SIGKILL pending but does not run (frozen?); "
					 "deleting anyway",
					 id, (int)st->pid);
			else if (container_wait_gone(st->pid, st->start_time, 9000) < 0) {
				r = err_setx(e, ETIMEDOUT, "container '%s': init %d did not die after SIGKILL", id,
					     (int)st->pid);
				goto out;
			}
		}
	}
	r = container_destroy(st, stuck, e);
out:
	state_free(st);
	return r;
}

int oci_pause(const struct oci_global *g, const char *id, struct err **e)
{
	struct oci_state *st;
	int r = load_locked(g, id, &st, e);

	if (r < 0)
		return r;
	if (state_status(st) != STATUS_RUNNING)
		r = err_setx(e, EINVAL, "container '%s': container not running", id);
	else if (st->cg == NULL)
		r = err_setx(e, ENOTSUP, "container '%s': no cgroup to freeze", id);
	else
		r = cgroup_freeze(st->cg, true, e);
	state_free(st);
	return r;
}

int oci_resume(const struct oci_global *g, const char *id, struct err **e)
{
	struct oci_state *st;
	int r = load_locked(g, id, &st, e);

	if (r < 0)
		return r;
	if (state_status(st) != STATUS_PAUSED)
		r = err_setx(e, EINVAL, "container '%s': container not paused", id);
	else
		r = cgroup_freeze(st->cg, false, e);
	state_free(st);
	return r;
}

int oci_update(const struct oci_global *g, const char *id, const struct cgroup_resources *res, struct err **e)
{
	struct oci_state *st;
	int r = load_locked(g, id, &st, e);

	if (r < 0)
		return r;
	if (state_status(st) == STATUS_STOPPED)
		r = err_setx(e, EINVAL, "container '%s': cannot update a stopped container", id);
	else if (st->cg == NULL)
		r = err_setx(e, ENOTSUP, "container '%s': no cgroup", id);
	else if ((r = state_load_spec(st, e)) == 0)
		r = cgroups_apply(st->cg, res, st->spec->devices, st->spec->n_devices, true, e);
	state_free(st);
	return r;
}

int oci_pids(const struct oci_global *g, const char *id, pid_t **pids, size_t *n, struct err **e)
{
	struct oci_state *st;
	int r = state_load(g->root, id, &st, e);

	*pids = NULL;
	*n = 0;
	if (r < 0)
		return r;
	if (st->cg && state_status(st) != STATUS_STOPPED)
		r = cgroup_pids(st->cg, pids, n, e);
	state_free(st);
	return r;
}

static char *owner_name(const char *dir)
{
	struct stat sb;
	struct passwd *pw;
	char *s = NULL;
	FILE *f;

	if (stat(dir, &sb) < 0)
		return strdup("");
	/* /etc/passwd read directly, as runc does: getpwuid() would load
	 * glibc's NSS modules, which a static binary cannot rely on. */
	if ((f = fopen("/etc/passwd", "re")) != NULL) {
		while ((pw = fgetpwent(f)) != NULL)
			if (pw->pw_uid == sb.st_uid) {
				s = strdup(pw->pw_name);
				break;
			}
		fclose(f);
		if (s)
			return s;
	}
	if (asprintf(&s, "#%u", sb.st_uid) < 0)
		return NULL;
	return s;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int oci_list(const struct oci_global *g, enum oci_list_format f, FILE *out, struct err **e)
{
	json_object *arr = json_object_new_array();
	DIR *d = opendir(g->root);
	struct dirent *de;
	char **ids = NULL;
	size_t n = 0, cap = 0;
	/* Table columns: ID PID STATUS BUNDLE CREATED OWNER, tabwriter style. */
	char *cells[6][512];
	size_t rows = 0, width[6] = {2, 3, 6, 6, 7, 5};
	static const char *const heads[6] = {"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"};

	if (d == NULL && errno != ENOENT) {
		json_object_put(arr);
		return err_set(e, errno, "state root '%s': open", g->root);
	}
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nid = realloc(ids, (cap ? cap * 2 : 16) * sizeof(*ids));
			if (nid == NULL)
				break;
			ids = nid;
			cap = cap ? cap * 2 : 16;
		}
		ids[n++] = strdup(de->d_name);
	}
	if (d)
		closedir(d);
	if (n)
		qsort(ids, n, sizeof(*ids), cmp_str);
	for (size_t i = 0; i < n; i++) {
		struct oci_state *st = NULL;
		struct err *le = NULL;
		enum oci_status s;
		char pid[32];

		if (ids[i] == NULL || state_load(g->root, ids[i], &st, &le) < 0) {
			err_free(&le);
			continue;
		}
		s = state_status(st);
		free(st->owner);
		st->owner = owner_name(st->dir);
		if (f == OCI_LIST_QUIET) {
			fprintf(out, "%s\n", st->id);
		} else if (f == OCI_LIST_JSON) {
			(void)state_load_spec(st, NULL);
			json_object_array_add(arr, state_runc_object(st, s));
		} else if (rows < 512) {
			snprintf(pid, sizeof(pid), "%d", s == STATUS_STOPPED ? 0 : (int)st->pid);
			cells[0][rows] = strdup(st->id);
			cells[1][rows] = strdup(pid);
			cells[2][rows] = strdup(oci_status_names[s]);
			cells[3][rows] = strdup(st->bundle);
			cells[4][rows] = strdup(st->created);
			cells[5][rows] = strdup(st->owner ? st->owner : "");
			for (int c = 0; c < 6; c++)
				if (cells[c][rows] && strlen(cells[c][rows]) > width[c])
					width[c] = strlen(cells[c][rows]);
			rows++;
		}
		state_free(st);
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	if (f == OCI_LIST_JSON) {
		/* runc prints null for no containers. */
		fprintf(out, "%s\n",
			json_object_array_length(arr)
			    ? json_object_to_json_string_ext(arr, JSON_C_TO_STRING_NOSLASHESCAPE)
			    : "null");
	} else if (f == OCI_LIST_TABLE) {
		/* Go's tabwriter(minwidth 12, padding 3): last column unpadded. */
		for (size_t r = 0; r <= rows; r++) {
			for (int c = 0; c < 6; c++) {
				const char *v = r == 0 ? heads[c] : cells[c][r - 1] ? cells[c][r - 1] : "";
				size_t w = MAX(width[c] + 3, (size_t)12);
				if (c == 5)
					fprintf(out, "%s\n", v);
				else
					fprintf(out, "%-*s", (int)w, v);
			}
		}
		for (size_t r = 0; r < rows; r++)
			for (int c = 0; c < 6; c++)
				free(cells[c][r]);
	}
	json_object_put(arr);
	return 0;
}
