#include "oci/state.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/json-doc.h"
#include "common/macro.h"
#include "oci/cgroups.h"
#include "oci/spec.h"
#include "oci/util.h"

#define OCI_STATE_VERSION "1.1.0"
#define JSON_OUT (JSON_C_TO_STRING_NOSLASHESCAPE)
#define JSON_PRETTY (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)

const char *const oci_status_names[] = {
    [STATUS_CREATING] = "creating", [STATUS_CREATED] = "created", [STATUS_RUNNING] = "running",
    [STATUS_PAUSED] = "paused",	    [STATUS_STOPPED] = "stopped",
};

int state_check_id(const char *id, struct err **e)
{
	size_t len = id ? strlen(id) : 0;

	if (len == 0)
		return err_setx(e, EINVAL, "container id: required");
	/* The id names a directory (state, cgroup): a longer one could only
	 * fail later, with a message as long as the id. */
	if (len > OCI_ID_MAX)
		return err_setx(e, EINVAL,
				"container id '%.32s...' (%zu characters): invalid id: longer than %d characters", id,
				len, OCI_ID_MAX);
	if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return err_setx(e, EINVAL, "container id '%s': invalid id format", id);
	for (const char *p = id; *p; p++) {
		unsigned char c = (unsigned char)*p;
		char what[16];
		if (isalnum(c) || strchr("_+-.", c))
			continue;
		if (isprint(c))
			snprintf(what, sizeof(what), "'%c'", c);
		else
			snprintf(what, sizeof(what), "byte 0x%02x", c);
		return err_setx(e, EINVAL,
				"container id '%s': invalid id format: invalid character %s at %zu (allowed: letters, "
				"digits, _+-.)",
				id, what, (size_t)(p - id));
	}
	return 0;
}

int state_dir_path(const char *root, const char *id, char **ret, struct err **e)
{
	int r = mkdir_p(root, 0711);

	if (r < 0)
		return err_set(e, -r, "state root '%s': mkdir", root);
	if (asprintf(ret, "%s/%s", root, id) < 0)
		return err_set(e, ENOMEM, "state root '%s'", root);
	return 0;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_get_type(v) != json_type_string)
		return NULL;
	return json_object_get_string(v);
}

/* <dir>/pids records a container's processes (see state.h) on one line of
 * fixed width, rewritten in place as a create goes: replacing state.json at
 * each step would cost a quarter of a millisecond each on ext4. */
#define PIDS_LINE "%-8s %10d %20llu %10d %20llu %10d %20llu\n"

struct oci_state *state_new(void)
{
	struct oci_state *s = calloc(1, sizeof(*s));

	if (s) {
		s->lock_fd = -1;
		s->record_fd = -1;
	}
	return s;
}

int state_record(struct oci_state *s, struct err **e)
{
	char line[160];
	int n;

	if (s->record_fd < 0) {
		_cleanup_free_ char *path = NULL;
		if (asprintf(&path, "%s/pids", s->dir) < 0)
			return err_set(e, ENOMEM, "container '%s'", s->id);
		s->record_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (s->record_fd < 0)
			return err_set(e, errno, "container '%s': create '%s'", s->id, path);
	}
	n = snprintf(line, sizeof(line), PIDS_LINE, s->creating ? "creating" : "created", (int)s->creator_pid,
		     s->creator_start, (int)s->setup_pid, s->setup_start, (int)s->pid, s->start_time);
	if (pwrite(s->record_fd, line, (size_t)n, 0) != n)
		return err_set(e, errno ? errno : EIO, "container '%s': record its processes", s->id);
	return 0;
}

/* Read <dir>/pids into s: 1 when read, 0 when there is none. */
static int load_pids(struct oci_state *s)
{
	_cleanup_free_ char *path = NULL;

	if (asprintf(&path, "%s/pids", s->dir) < 0)
		return 0;
	/* A line being rewritten may be read half old, half new: try again. */
	for (int attempt = 0; attempt < 5; attempt++) {
		_cleanup_free_ char *text = NULL;
		char stage[16];
		int creator, setup, init;
		size_t len;

		if (read_file(path, &text, &len) < 0)
			return 0;
		if (len > 0 && text[len - 1] == '\n' &&
		    sscanf(text, "%15s %d %llu %d %llu %d %llu", stage, &creator, &s->creator_start, &setup,
			   &s->setup_start, &init, &s->start_time) == 7 &&
		    (strcmp(stage, "creating") == 0 || strcmp(stage, "created") == 0)) {
			s->creating = strcmp(stage, "creating") == 0;
			s->creator_pid = creator;
			s->setup_pid = setup;
			s->pid = init;
			return 1;
		}
		msleep(1);
	}
	/* Unreadable: a create that died mid-write; its runtime is unknown. */
	s->creating = true;
	s->creator_pid = 0;
	return 1;
}

/* What a directory without state.json holds: a create killed between its
 * mkdir and its first records (or one a moment from writing them). */
static int load_unrecorded(const char *id, const char *dir, struct oci_state **ret, struct err **e)
{
	struct oci_state *s;
	struct stat sb;
	char created[64];

	if (stat(dir, &sb) < 0)
		return errno == ENOENT ? err_setx(e, ENOENT, "container '%s': container does not exist", id)
				       : err_set(e, errno, "container '%s': state directory '%s'", id, dir);
	s = state_new();
	if (s == NULL)
		return err_set(e, ENOMEM, "container '%s'", id);
	state_time_rfc3339(&sb.st_ctim, created, sizeof(created));
	s->id = strdup(id);
	s->dir = strdup(dir);
	s->bundle = strdup("");
	s->rootfs = strdup("");
	s->created = strdup(created);
	s->owner = strdup("");
	if (!s->id || !s->dir || !s->bundle || !s->rootfs || !s->created || !s->owner) {
		state_free(s);
		return err_set(e, ENOMEM, "container '%s'", id);
	}
	if (!load_pids(s))
		s->creating = true;
	*ret = s;
	return 0;
}

int state_load(const char *root, const char *id, struct oci_state **ret, struct err **e)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL;
	json_object *o, *v;
	struct oci_state *s;
	size_t len = 0;
	int r;

	if ((r = state_check_id(id, e)) < 0)
		return r;
	if (asprintf(&dir, "%s/%s", root, id) < 0 || asprintf(&path, "%s/state.json", dir) < 0)
		return err_set(e, ENOMEM, "container '%s'", id);
	r = read_file(path, &text, &len);
	if (r == -ENOENT)
		return load_unrecorded(id, dir, ret, e);
	if (r < 0)
		return err_set(e, -r, "container '%s': read state '%s'", id, path);
	if ((r = json_doc_parse(text, len, path, &o, e)) < 0)
		return err_wrap(e, "container '%s'", id);
	s = state_new();
	if (s == NULL) {
		json_object_put(o);
		return err_set(e, ENOMEM, "container '%s'", id);
	}
	s->id = strdup(id);
	s->dir = TAKE_PTR(dir);
	s->bundle = strdup(jstr(o, "bundle") ? jstr(o, "bundle") : "");
	s->rootfs = strdup(jstr(o, "rootfs") ? jstr(o, "rootfs") : "");
	s->created = strdup(jstr(o, "created") ? jstr(o, "created") : "");
	s->owner = strdup(jstr(o, "owner") ? jstr(o, "owner") : "");
	/* Before the pids file, state.json held the init's pid. */
	if (json_object_object_get_ex(o, "pid", &v))
		s->pid = json_object_get_int(v);
	if (json_object_object_get_ex(o, "start_time", &v))
		s->start_time = (unsigned long long)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "systemd_cgroup", &v))
		s->systemd_cgroup = json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "cgroup", &v) && (r = cgroups_from_json(v, &s->cg, e)) < 0) {
		json_object_put(o);
		state_free(s);
		return err_wrap(e, "container '%s'", id);
	}
	json_object_put(o);
	if (!s->id || !s->bundle || !s->rootfs || !s->created || !s->owner) {
		state_free(s);
		return err_set(e, ENOMEM, "container '%s'", id);
	}
	(void)load_pids(s);
	*ret = s;
	return 0;
}

int state_load_locked(const char *root, const char *id, struct oci_state **ret, struct err **e)
{
	_cleanup_free_ char *dir = NULL;
	int fd, r;

	if ((r = state_check_id(id, e)) < 0)
		return r;
	if (asprintf(&dir, "%s/%s", root, id) < 0)
		return err_set(e, ENOMEM, "container '%s'", id);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? err_setx(e, ENOENT, "container '%s': container does not exist", id)
				       : err_set(e, errno, "container '%s': open state directory", id);
	if (flock(fd, LOCK_EX) < 0) {
		r = err_set(e, errno, "container '%s': lock state directory", id);
		close(fd);
		return r;
	}
	if ((r = state_load(root, id, ret, e)) < 0) {
		close(fd);
		return r;
	}
	(*ret)->lock_fd = fd;
	return 0;
}

int state_save(const struct oci_state *s, struct err **e)
{
	_cleanup_free_ char *path = NULL;
	json_object *o = json_object_new_object();
	const char *text;
	int r;

	json_object_object_add(o, "id", json_object_new_string(s->id));
	json_object_object_add(o, "bundle", json_object_new_string(s->bundle));
	json_object_object_add(o, "rootfs", json_object_new_string(s->rootfs));
	json_object_object_add(o, "created", json_object_new_string(s->created));
	json_object_object_add(o, "owner", json_object_new_string(s->owner ? s->owner : ""));
	json_object_object_add(o, "systemd_cgroup", json_object_new_boolean(s->systemd_cgroup));
	if (s->cg)
		json_object_object_add(o, "cgroup", cgroups_to_json(s->cg));
	text = json_object_to_json_string_ext(o, JSON_OUT);
	if (asprintf(&path, "%s/state.json", s->dir) < 0) {
		json_object_put(o);
		return err_set(e, ENOMEM, "container '%s'", s->id);
	}
	r = write_file_atomic(path, text, strlen(text), 0600);
	json_object_put(o);
	if (r < 0)
		return err_set(e, -r, "container '%s': write state '%s'", s->id, path);
	return 0;
}

int state_load_spec(struct oci_state *s, struct err **e)
{
	_cleanup_free_ char *path = NULL;

	if (s->spec)
		return 0;
	if (asprintf(&path, "%s/config.json", s->dir) < 0)
		return err_set(e, ENOMEM, "container '%s'", s->id);
	if (spec_load(path, &s->spec, e) < 0)
		return err_wrap(e, "container '%s'", s->id);
	return 0;
}

int state_lock(struct oci_state *s, struct err **e)
{
	if (s->lock_fd >= 0)
		return 0;
	s->lock_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->lock_fd < 0)
		return err_set(e, errno, "container '%s': open state directory", s->id);
	if (flock(s->lock_fd, LOCK_EX) < 0)
		return err_set(e, errno, "container '%s': lock state directory", s->id);
	return 0;
}

void state_unlock(struct oci_state *s)
{
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	s->lock_fd = -1;
}

void state_free(struct oci_state *s)
{
	if (s == NULL)
		return;
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	if (s->record_fd >= 0)
		close(s->record_fd);
	free(s->id);
	free(s->dir);
	free(s->bundle);
	free(s->rootfs);
	free(s->created);
	free(s->owner);
	cgroup_free(s->cg);
	spec_free(s->spec);
	free(s);
}

enum oci_status state_status(const struct oci_state *s)
{
	char fifo[4200];

	if (s->creating)
		return proc_alive(s->creator_pid, s->creator_start) ? STATUS_CREATING : STATUS_STOPPED;
	if (s->pid <= 0 || !proc_alive(s->pid, s->start_time))
		return STATUS_STOPPED;
	snprintf(fifo, sizeof(fifo), "%s/exec.fifo", s->dir);
	if (access(fifo, F_OK) == 0)
		return STATUS_CREATED;
	if (s->cg && cgroup_is_frozen(s->cg) == 1)
		return STATUS_PAUSED;
	return STATUS_RUNNING;
}

static void add_annotations(json_object *o, const struct oci_spec *spec)
{
	json_object *a;

	if (spec == NULL || spec->n_annotations == 0)
		return;
	a = json_object_new_object();
	for (size_t i = 0; i < spec->n_annotations; i++)
		json_object_object_add(a, spec->annotations[i].key, json_object_new_string(spec->annotations[i].value));
	json_object_object_add(o, "annotations", a);
}

char *state_hook_json(const char *id, enum oci_status st, pid_t pid, const char *bundle, const struct oci_spec *spec)
{
	json_object *o = json_object_new_object();
	char *out;

	json_object_object_add(o, "ociVersion", json_object_new_string(OCI_STATE_VERSION));
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "status", json_object_new_string(oci_status_names[st]));
	if (st != STATUS_STOPPED)
		json_object_object_add(o, "pid", json_object_new_int(pid));
	json_object_object_add(o, "bundle", json_object_new_string(bundle));
	add_annotations(o, spec);
	out = strdup(json_object_to_json_string_ext(o, JSON_OUT));
	json_object_put(o);
	return out;
}

json_object *state_runc_object(const struct oci_state *s, enum oci_status st)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ociVersion", json_object_new_string(OCI_STATE_VERSION));
	json_object_object_add(o, "id", json_object_new_string(s->id));
	json_object_object_add(o, "pid", json_object_new_int(st == STATUS_STOPPED || s->pid < 0 ? 0 : s->pid));
	json_object_object_add(o, "status", json_object_new_string(oci_status_names[st]));
	json_object_object_add(o, "bundle", json_object_new_string(s->bundle));
	json_object_object_add(o, "rootfs", json_object_new_string(s->rootfs));
	json_object_object_add(o, "created", json_object_new_string(s->created));
	json_object_object_add(o, "owner", json_object_new_string(s->owner ? s->owner : ""));
	add_annotations(o, s->spec);
	return o;
}

char *state_runc_json(const struct oci_state *s, enum oci_status st)
{
	json_object *o = state_runc_object(s, st);
	char *out = strdup(json_object_to_json_string_ext(o, JSON_PRETTY));

	json_object_put(o);
	return out;
}

void state_time_rfc3339(const struct timespec *ts, char *buf, size_t size)
{
	struct tm tm;
	char date[32], frac[16];
	int n;

	gmtime_r(&ts->tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	/* Go's RFC3339Nano: nanoseconds without trailing zeros. */
	n = snprintf(frac, sizeof(frac), ".%09ld", ts->tv_nsec);
	while (n > 1 && frac[n - 1] == '0')
		frac[--n] = '\0';
	if (n == 1)
		frac[0] = '\0';
	snprintf(buf, size, "%s%sZ", date, frac);
}

void state_now_rfc3339(char *buf, size_t size)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	state_time_rfc3339(&ts, buf, size);
}
