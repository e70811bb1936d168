/*
 * checkpoint and restore through CRIU (Debian's criu, its command line),
 * with runc's options and what runc tells CRIU about a container: its
 * rootfs as root, the bind mounts (and the cgroup binds, masked files and
 * device binds) as external mounts named by their destination in the
 * container (a symlinked destination resolved as the mount resolved it),
 * the cgroup freezer, a network namespace joined by path as external,
 * CRIU's configuration file from the annotation org.criu.config (else
 * /etc/criu/runc.conf), and the init's stdio in descriptors.json so that
 * a restore hands its own pipes over.
 *
 * A restore makes the container as create does (state, cgroups), then
 * runs `criu restore` in the container's cgroups with the rootfs bound on
 * itself in a mount namespace of its own, the mount points created first
 * (a bind inside a bind: through the outer source, bound for the time),
 * the restored init becoming the runtime's child (--restore-sibling).
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/json-doc.h"
#include "common/log.h"
#include "common/macro.h"
#include "oci/cgroups.h"
#include "oci/container.h"
#include "oci/state.h"
#include "oci/util.h"

#define DESCRIPTORS "descriptors.json"
#define CRIU_CONFIG_ANNOTATION "org.criu.config"
#define CRIU_DEFAULT_CONFIG "/etc/criu/runc.conf"

/* ---- a growing argument vector ---- */

struct argv {
	char **v;
	size_t n, cap;
	bool oom;
};

static void arg_add(struct argv *a, const char *fmt, ...) PRINTF_FMT(2, 3);
static void arg_add(struct argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	if (a->oom)
		return;
	if (a->n + 2 > a->cap) {
		char **v = realloc(a->v, (a->cap ? a->cap * 2 : 32) * sizeof(char *));
		if (v == NULL) {
			a->oom = true;
			return;
		}
		a->v = v;
		a->cap = a->cap ? a->cap * 2 : 32;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s == NULL) {
		a->oom = true;
		return;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void argv_free(struct argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* ---- options both verbs share ---- */

static int manage_cgroups_mode(const char *mode, struct err **e)
{
	static const char *const modes[] = {"soft", "full", "strict", "ignore"};

	if (mode == NULL || *mode == '\0')
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
		if (strcmp(mode, modes[i]) == 0)
			return 0;
	return err_setx(e, EINVAL, "invalid --manage-cgroups-mode value '%s' (soft, full, strict or ignore)", mode);
}

static int empty_ns(const char *ns, struct err **e)
{
	if (ns == NULL || *ns == '\0' || strcmp(ns, "network") == 0)
		return 0;
	return err_setx(e, EINVAL, "--empty-ns '%s': only network can be left empty", ns);
}

/* CRIU's flags for what runc's options and a container ask. */
static void common_args(struct argv *a, const struct oci_criu_opts *o, const struct oci_spec *spec, bool restore)
{
	const char *config = NULL, *mode = o->manage_cgroups_mode;
	bool annotated = false;

	/* CRIU's strict restore wants the cgroups absent, but the runtime
	 * makes them (and sets the spec's resources) before CRIU runs, as
	 * runc does: restore them all, as strict would, into ours.  (runc
	 * 1.1.5 hands CRIU 3.17 a mode it restores as soft.) */
	if (restore && mode && strcmp(mode, "strict") == 0)
		mode = "full";
	arg_add(a, "--manage-cgroups%s%s", mode && *mode ? "=" : "", mode ? mode : "");
	if (o->tcp_established)
		arg_add(a, "--tcp-established");
	if (o->ext_unix_sk)
		arg_add(a, "--ext-unix-sk");
	if (o->shell_job)
		arg_add(a, "--shell-job");
	if (o->file_locks)
		arg_add(a, "--file-locks");
	if (o->auto_dedup)
		arg_add(a, "--auto-dedup");
	if (o->empty_ns && strcmp(o->empty_ns, "network") == 0)
		arg_add(a, "--empty-ns=net");
	/* runc's rule: the annotation names the container's CRIU
	 * configuration ("" for none); without it, runc's default file. */
	for (size_t i = 0; i < spec->n_annotations; i++)
		if (strcmp(spec->annotations[i].key, CRIU_CONFIG_ANNOTATION) == 0)
			config = spec->annotations[i].value, annotated = true;
	if (!annotated)
		config = CRIU_DEFAULT_CONFIG;
	if (config && *config && access(config, R_OK) == 0)
		arg_add(a, "--config=%s", config);
}

/* The directory a mount's destination really is in the rootfs (a symlink
 * in the way resolved inside it, as the mount was made), as CRIU sees
 * the mount point: "/data" for a destination "/data-link". */
static char *mount_point_in(int rootfd, const char *rootfs, const char *dest)
{
	char proc[64], target[PATH_MAX];
	int fd = open_in_root(rootfd, dest, O_PATH, 0);
	ssize_t n;
	size_t rlen = strlen(rootfs);

	if (fd < 0)
		return strdup(dest);
	n = readlink(fd_path(fd, proc, sizeof(proc)), target, sizeof(target) - 1);
	close(fd);
	if (n <= 0)
		return strdup(dest);
	target[n] = '\0';
	if (strncmp(target, rootfs, rlen) != 0 || (target[rlen] != '/' && target[rlen] != '\0'))
		return strdup(dest);
	return strdup(target[rlen] ? target + rlen : "/");
}

static bool is_bind(const struct oci_mount *m)
{
	if (m->type && strcmp(m->type, "bind") == 0)
		return true;
	for (size_t i = 0; i < m->n_options; i++)
		if (strcmp(m->options[i], "bind") == 0 || strcmp(m->options[i], "rbind") == 0)
			return true;
	return false;
}

static bool is_type(const struct oci_mount *m, const char *type)
{
	return m->type && strcmp(m->type, type) == 0 && !is_bind(m);
}

/* Device nodes bound from the host (in a user namespace, devices.c). */
static const char *const default_devices[] = {"/dev/null",   "/dev/zero",    "/dev/full",
					      "/dev/random", "/dev/urandom", "/dev/tty"};

/* The external mounts, as runc names them: a dump maps each mount point
 * to a key (its destination), a restore maps the key to the source on
 * this host. */
static int external_mounts(struct argv *a, const struct oci_spec *spec, const char *bundle, const char *rootfs,
			   const struct cgroup *cg, bool restore, struct err **e)
{
	_cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	bool cgns = spec->ns[NS_CGROUP].present, masked_file = false;

	if (rootfd < 0)
		return err_set(e, errno, "rootfs '%s': open", rootfs);
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const struct oci_mount *m = &spec->mounts[i];

		if (is_bind(m) && m->source) {
			_cleanup_free_ char *point = mount_point_in(rootfd, rootfs, m->destination);
			if (point == NULL)
				return err_set(e, ENOMEM, "mount '%s'", m->destination);
			if (!restore)
				arg_add(a, "--external=mnt[%s]:%s", point, point);
			else
				arg_add(a, "--external=mnt[%s]:%s%s%s", point, m->source[0] == '/' ? "" : bundle,
					m->source[0] == '/' ? "" : "/", m->source);
		} else if (is_type(m, "cgroup") && cg && !cgns && cg->mode != CGROUP_MODE_V2) {
			/* Without a cgroup namespace: a tmpfs holding a bind of each
			 * hierarchy's container directory (mounts.c). */
			for (size_t h = 0; h < cgroup_n_dirs(cg); h++) {
				const struct cgroup_dir *d = h < cg->n_v1 ? &cg->v1[h] : &cg->unified;
				const char *name = strrchr(d->mountpoint, '/');
				name = name ? name + 1 : d->mountpoint;
				if (restore)
					arg_add(a, "--external=mnt[%s/%s]:%s", m->destination, name, d->path);
				else
					arg_add(a, "--external=mnt[%s/%s]:%s/%s", m->destination, name, m->destination,
						name);
			}
		}
	}
	/* Masked files are /dev/null bound over them: one key for all. */
	for (size_t i = 0; i < spec->n_masked_paths; i++) {
		struct stat st;
		_cleanup_close_ int fd = open_in_root(rootfd, spec->masked_paths[i], O_PATH, 0);
		if (fd < 0 || fstat(fd, &st) < 0 || S_ISDIR(st.st_mode))
			continue;
		masked_file = true;
		if (!restore)
			arg_add(a, "--external=mnt[%s]:/dev/null", spec->masked_paths[i]);
	}
	if (restore && masked_file)
		arg_add(a, "--external=mnt[/dev/null]:/dev/null");
	/* In a user namespace the device nodes are binds of the host's. */
	if (spec->ns[NS_USER].present) {
		for (size_t i = 0; i < ARRAY_SIZE(default_devices); i++)
			if (!(restore && masked_file && strcmp(default_devices[i], "/dev/null") == 0))
				arg_add(a, "--external=mnt[%s]:%s", default_devices[i], default_devices[i]);
		for (size_t i = 0; i < spec->n_devices; i++)
			arg_add(a, "--external=mnt[%s]:%s", spec->devices[i].path, spec->devices[i].path);
	}
	return a->oom ? err_set(e, ENOMEM, "criu arguments") : 0;
}

/* A network namespace joined by path stays outside the images: CRIU is
 * told it is external, and a restore gives it back by fd. */
static int external_netns(struct argv *a, const struct oci_spec *spec, bool restore, int *fd, struct err **e)
{
	const char *path = spec->ns[NS_NET].present ? spec->ns[NS_NET].path : NULL;
	struct stat st;

	*fd = -1;
	if (path == NULL)
		return 0;
	if (!restore) {
		if (stat(path, &st) < 0)
			return err_set(e, errno, "linux.namespaces network '%s': stat", path);
		arg_add(a, "--external=net[%llu]:extRootNetNS", (unsigned long long)st.st_ino);
		return 0;
	}
	*fd = open(path, O_RDONLY); /* inherited by criu */
	if (*fd < 0)
		return err_set(e, errno, "linux.namespaces network '%s': open", path);
	arg_add(a, "--inherit-fd=fd[%d]:extRootNetNS", *fd);
	return 0;
}

/* The first line of CRIU's log that says what failed (its last one only
 * says that the whole failed). */
static void log_error_line(const char *log, char *buf, size_t size)
{
	_cleanup_free_ char *text = NULL;

	buf[0] = '\0';
	if (read_file(log, &text, NULL) < 0)
		return;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (strstr(line, "Error") == NULL)
			continue;
		snprintf(buf, size, "%s", line);
		return;
	}
}

struct criu_run {
	const char *criu;
	char **argv;
	const struct cgroup *cg;     /* joined before exec (restore) */
	const struct oci_spec *spec; /* restore: its mount points made first */
	const char *bundle, *rootfs; /* restore: the rootfs bound onto itself */
	const char *log;	     /* CRIU's log, quoted on failure */
	const char *what;	     /* "dump" */
};

/* In criu's process, before exec: a mount namespace of its own where the
 * mount points are made (through the outer bind's source for a bind
 * inside a bind) and the rootfs is bound onto itself, as criu --root
 * wants a mount point. */
static int prepare_restore_mounts(const struct criu_run *r, char *msg, size_t size)
{
	_cleanup_close_ int rootfd = -1;
	size_t n_binds = 0;
	char **binds = NULL;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return snprintf(msg, size, "restore: a mount namespace of its own: %s", strerror(errno)), -1;
	rootfd = open(r->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return snprintf(msg, size, "rootfs '%s': open: %s", r->rootfs, strerror(errno)), -1;
	binds = calloc(r->spec->n_mounts + 1, sizeof(char *));
	for (size_t i = 0; binds && i < r->spec->n_mounts; i++) {
		const struct oci_mount *m = &r->spec->mounts[i];
		struct stat st;
		char src[PATH_MAX], at[64];
		bool file = false;
		int fd;

		if (is_bind(m) && m->source) {
			snprintf(src, sizeof(src), "%s%s%s", m->source[0] == '/' ? "" : r->bundle,
				 m->source[0] == '/' ? "" : "/", m->source);
			file = stat(src, &st) == 0 && !S_ISDIR(st.st_mode);
		}
		fd = mkdir_in_root(rootfd, m->destination, 0755, file);
		if (fd < 0)
			continue; /* under a tmpfs CRIU restores whole, or made by CRIU */
		if (is_bind(m) && m->source &&
		    mount(src, fd_path(fd, at, sizeof(at)), NULL, MS_BIND | MS_REC, NULL) == 0)
			binds[n_binds++] = mount_point_in(rootfd, r->rootfs, m->destination);
		close(fd);
	}
	/* Only the mount points stay; the binds were for making them. */
	while (binds && n_binds-- > 0) {
		char path[PATH_MAX * 2];
		snprintf(path, sizeof(path), "%s%s", r->rootfs, binds[n_binds] ? binds[n_binds] : "");
		(void)umount2(path, MNT_DETACH);
		free(binds[n_binds]);
	}
	free(binds);
	if (mount(r->rootfs, r->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		return snprintf(msg, size, "rootfs '%s': bind onto itself: %s", r->rootfs, strerror(errno)), -1;
	return 0;
}

static int run_criu(const struct criu_run *r, struct err **e)
{
	char msg[4096] = "", tail[1024];
	int errpipe[2], status = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(errpipe, O_CLOEXEC) < 0)
		return err_set(e, errno, "criu %s: pipe", r->what);
	log_debug("criu %s: %s ...", r->what, r->argv[0]);
	pid = fork();
	if (pid < 0) {
		close(errpipe[0]);
		close(errpipe[1]);
		return err_set(e, errno, "criu %s: fork", r->what);
	}
	if (pid == 0) {
		struct err *ce = NULL;
		close(errpipe[0]);
		if (r->cg && cgroup_enter(r->cg, getpid(), &ce) < 0) {
			snprintf(msg, sizeof(msg), "%s", ce->msg);
			goto child_fail;
		}
		if (r->spec && prepare_restore_mounts(r, msg, sizeof(msg)) < 0)
			goto child_fail;
		execvp(r->criu, r->argv);
		snprintf(msg, sizeof(msg), "criu '%s': exec: %s (is Debian's criu installed? --criu names another)",
			 r->criu, strerror(errno));
	child_fail:
		(void)!write(errpipe[1], msg, strlen(msg));
		_exit(127);
	}
	close(errpipe[1]);
	n = read(errpipe[0], msg, sizeof(msg) - 1);
	close(errpipe[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n > 0) {
		msg[n] = '\0';
		return err_setx(e, EIO, "criu %s: %s", r->what, msg);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	log_error_line(r->log, tail, sizeof(tail));
	return err_setx(
	    e, EIO, "criu %s failed (%s %d)%s%s; its log: %s", r->what, WIFSIGNALED(status) ? "signal" : "status",
	    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), tail[0] ? ": " : "", tail, r->log);
}

/* An absolute directory for --image-path or --work-path: made (0700) when
 * make, else it must exist (a restore's images). */
static int directory(const char *given, const char *fallback, bool make, char **ret, struct err **e)
{
	char cwd[PATH_MAX], *p = NULL;
	struct stat st;
	int r;

	if (given && *given) {
		if (given[0] == '/')
			p = strdup(given);
		else if (getcwd(cwd, sizeof(cwd)) == NULL || asprintf(&p, "%s/%s", cwd, given) < 0)
			p = NULL;
	} else if (fallback) {
		p = strdup(fallback);
	} else if (getcwd(cwd, sizeof(cwd)) == NULL || asprintf(&p, "%s/checkpoint", cwd) < 0) {
		p = NULL;
	}
	if (p == NULL)
		return err_set(e, errno ? errno : ENOMEM, "checkpoint directory");
	if (!make)
		r = stat(p, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	else
		r = mkdir_p(p, 0700);
	if (r < 0) {
		r = err_set(e, -r, make ? "'%s': mkdir" : "checkpoint '%s' (--image-path)", p);
		free(p);
		return r;
	}
	*ret = p;
	return 0;
}

/* descriptors.json: where the init's stdio led (runc's file), so that a
 * restore can hand its own pipes over. */
static int save_descriptors(const char *images, pid_t pid, struct err **e)
{
	json_object *a = json_object_new_array();
	_cleanup_free_ char *path = NULL;
	const char *text;
	int r;

	for (int fd = 0; fd < 3; fd++) {
		char link[64], target[PATH_MAX];
		ssize_t n;
		snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)pid, fd);
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		json_object_array_add(a, json_object_new_string(n > 0 ? target : "/dev/null"));
	}
	text = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (asprintf(&path, "%s/" DESCRIPTORS, images) < 0)
		r = -ENOMEM;
	else
		r = write_file_atomic(path, text, strlen(text), 0600);
	json_object_put(a);
	return r < 0 ? err_set(e, -r, "'%s/" DESCRIPTORS "': write", images) : 0;
}

static int check_parent(const char *images, const char *parent, struct err **e)
{
	_cleanup_free_ char *real = NULL;
	struct stat st;

	if (parent[0] == '/')
		return err_setx(e, EINVAL, "invalid --parent-path '%s': must be relative to the image path", parent);
	if (asprintf(&real, "%s/%s", images, parent) < 0)
		return err_set(e, ENOMEM, "--parent-path");
	if (stat(real, &st) < 0)
		return err_set(e, errno, "invalid --parent-path: stat %s", real);
	if (!S_ISDIR(st.st_mode))
		return err_setx(e, ENOTDIR, "invalid --parent-path: %s: not a directory", real);
	return 0;
}

/* The freezer CRIU stops the container with: v1's, else cgroup2's. */
static const char *freezer_dir(const struct cgroup *cg)
{
	const char *d = cg ? cgroup_v1_dir(cg, "freezer") : NULL;

	return d ? d : cg ? cg->unified.path : NULL;
}

int oci_checkpoint(const struct oci_global *g, const char *id, const struct oci_criu_opts *o, struct err **e)
{
	_cleanup_free_ char *images = NULL, *work = NULL, *log = NULL;
	struct argv a = {0};
	struct oci_state *st = NULL;
	enum oci_status s;
	int netfd = -1, r;

	if ((r = manage_cgroups_mode(o->manage_cgroups_mode, e)) < 0 || (r = empty_ns(o->empty_ns, e)) < 0)
		return r;
	if (o->lazy_pages)
		return err_setx(e, ENOTSUP, "--lazy-pages: not supported (it needs CRIU's page server)");
	if ((r = state_load_locked(g->root, id, &st, e)) < 0)
		return r;
	s = state_status(st);
	if (s != STATUS_RUNNING) {
		r = err_setx(e, EINVAL, "container '%s': cannot checkpoint a container that is %s", id,
			     oci_status_names[s]);
		goto out;
	}
	if ((r = state_load_spec(st, e)) < 0)
		goto out;
	if (st->spec->process.terminal) {
		r = err_setx(e, ENOTSUP, "container '%s': checkpoint of a container with a terminal is not supported",
			     id);
		goto out;
	}
	if ((r = directory(o->image_path, NULL, true, &images, e)) < 0 ||
	    (r = directory(o->work_path, images, true, &work, e)) < 0)
		goto out;
	if (o->parent_path && *o->parent_path && (r = check_parent(images, o->parent_path, e)) < 0)
		goto out;
	if (!o->pre_dump && (r = save_descriptors(images, st->pid, e)) < 0)
		goto out;
	if (asprintf(&log, "%s/%s.log", work, o->pre_dump ? "pre-dump" : "dump") < 0) {
		r = err_set(e, ENOMEM, "checkpoint");
		goto out;
	}
	arg_add(&a, "%s", g->criu ? g->criu : "criu");
	arg_add(&a, "%s", o->pre_dump ? "pre-dump" : "dump");
	arg_add(&a, "--tree=%d", (int)st->pid);
	arg_add(&a, "--images-dir=%s", images);
	arg_add(&a, "--work-dir=%s", work);
	arg_add(&a, "--log-file=%s", o->pre_dump ? "pre-dump.log" : "dump.log");
	arg_add(&a, "-v4");
	arg_add(&a, "--root=%s", st->rootfs);
	if (o->leave_running && !o->pre_dump)
		arg_add(&a, "--leave-running");
	if (o->parent_path && *o->parent_path) {
		arg_add(&a, "--prev-images-dir=%s", o->parent_path);
		arg_add(&a, "--track-mem");
	} else if (o->pre_dump) {
		arg_add(&a, "--track-mem");
	}
	if (freezer_dir(st->cg))
		arg_add(&a, "--freeze-cgroup=%s", freezer_dir(st->cg));
	common_args(&a, o, st->spec, false);
	if (!o->pre_dump && ((r = external_mounts(&a, st->spec, st->bundle, st->rootfs, st->cg, false, e)) < 0 ||
			     (r = external_netns(&a, st->spec, false, &netfd, e)) < 0))
		goto out;
	if (a.oom) {
		r = err_set(e, ENOMEM, "criu arguments");
		goto out;
	}
	{
		struct criu_run run = {.criu = a.v[0], .argv = a.v, .log = log, .what = a.v[1]};
		if ((r = run_criu(&run, e)) < 0)
			goto out;
	}
	/* CRIU killed the processes: what is left goes, as runc's destroy. */
	if (!o->leave_running && !o->pre_dump)
		r = container_destroy(st, false, e);
out:
	argv_free(&a);
	state_free(st);
	return r;
}

struct restore_arg {
	const struct oci_global *g;
	const struct oci_criu_opts *o;
	const char *images, *work;
};

/* --inherit-fd for each of the init's stdio that was a pipe: ours take
 * their place (runc's way: a restoring shim's pipes). */
static int inherit_stdio(struct argv *a, const char *images, struct err **e)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	json_object *arr;
	size_t len = 0;
	int r;

	if (asprintf(&path, "%s/" DESCRIPTORS, images) < 0)
		return err_set(e, ENOMEM, "restore");
	if ((r = read_file(path, &text, &len)) < 0)
		return err_set(e, -r, "'%s': read (is it a checkpoint?)", path);
	if ((r = json_doc_parse(text, len, DESCRIPTORS, &arr, e)) < 0)
		return r;
	if (json_object_get_type(arr) != json_type_array) {
		json_object_put(arr);
		return err_setx(e, EINVAL, "'%s': expected an array", path);
	}
	for (size_t i = 0; i < json_object_array_length(arr) && i < 3; i++) {
		const char *d = json_object_get_string(json_object_array_get_idx(arr, i));
		if (d && strncmp(d, "pipe:", 5) == 0)
			arg_add(a, "--inherit-fd=fd[%zu]:%s", i, d);
	}
	json_object_put(arr);
	return 0;
}

/* The container's cgroups, as CRIU's --cgroup-root per v1 controller:
 * its processes come back there, whatever the checkpointed one's were. */
static void cgroup_roots(struct argv *a, const struct cgroup *cg)
{
	for (size_t i = 0; cg && i < cg->n_v1; i++) {
		const struct cgroup_dir *d = &cg->v1[i];
		const char *rel = d->path + strlen(d->mountpoint);
		_cleanup_free_ char *ctrls = strdup(d->controllers);
		char *save = NULL;
		for (char *t = ctrls ? strtok_r(ctrls, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
			arg_add(a, "--cgroup-root=%s:%s", t, *rel ? rel : "/");
	}
}

static int restore_start(struct run_ctx *c, void *arg, pid_t *pid, int *console_master, struct err **e)
{
	const struct restore_arg *ra = arg;
	_cleanup_free_ char *pidfile = NULL, *log = NULL, *text = NULL;
	struct argv a = {0};
	int netfd = -1, r;

	*console_master = -1;
	if (asprintf(&pidfile, "%s/criu.pid", c->state_dir) < 0 || asprintf(&log, "%s/restore.log", ra->work) < 0)
		return err_set(e, ENOMEM, "restore");
	arg_add(&a, "%s", ra->g->criu ? ra->g->criu : "criu");
	arg_add(&a, "restore");
	arg_add(&a, "--images-dir=%s", ra->images);
	arg_add(&a, "--work-dir=%s", ra->work);
	arg_add(&a, "--log-file=restore.log");
	arg_add(&a, "-v4");
	arg_add(&a, "--root=%s", c->rootfs);
	arg_add(&a, "--restore-detached");
	arg_add(&a, "--restore-sibling");
	arg_add(&a, "--pidfile=%s", pidfile);
	arg_add(&a, "--evasive-devices");
	common_args(&a, ra->o, c->spec, true);
	cgroup_roots(&a, c->cg);
	if ((r = inherit_stdio(&a, ra->images, e)) < 0 ||
	    (r = external_mounts(&a, c->spec, c->bundle, c->rootfs, c->cg, true, e)) < 0 ||
	    (r = external_netns(&a, c->spec, true, &netfd, e)) < 0)
		goto out;
	if (a.oom) {
		r = err_set(e, ENOMEM, "criu arguments");
		goto out;
	}
	{
		struct criu_run run = {.criu = a.v[0],
				       .argv = a.v,
				       .cg = c->cg,
				       .spec = c->spec,
				       .bundle = c->bundle,
				       .rootfs = c->rootfs,
				       .log = log,
				       .what = "restore"};
		if ((r = run_criu(&run, e)) < 0)
			goto out;
	}
	if ((r = read_file(pidfile, &text, NULL)) < 0) {
		r = err_set(e, -r, "criu restore: read its pid file '%s'", pidfile);
		goto out;
	}
	*pid = (pid_t)atoi(text);
	if (*pid <= 0)
		r = err_setx(e, EIO, "criu restore: pid file '%s' holds '%.32s'", pidfile, text);
	unlink(pidfile);
out:
	if (netfd >= 0)
		close(netfd);
	argv_free(&a);
	return r;
}

int oci_restore(const struct oci_global *g, const char *id, const struct oci_create_opts *co,
		const struct oci_criu_opts *o, int *status, struct err **e)
{
	_cleanup_free_ char *images = NULL, *work = NULL;
	struct restore_arg ra = {g, o, NULL, NULL};
	struct created cr;
	sigset_t old;
	int r;

	*status = 0;
	if ((r = manage_cgroups_mode(o->manage_cgroups_mode, e)) < 0 || (r = empty_ns(o->empty_ns, e)) < 0)
		return r;
	if (o->lazy_pages)
		return err_setx(e, ENOTSUP, "--lazy-pages: not supported (it needs CRIU's page server)");
	if (co->console_socket)
		return err_setx(e, ENOTSUP, "restore: --console-socket: a container with a terminal is not supported");
	if ((r = directory(o->image_path, NULL, false, &images, e)) < 0 ||
	    (r = directory(o->work_path, images, true, &work, e)) < 0)
		return r;
	ra.images = images;
	ra.work = work;
	if (!co->detach)
		container_block_signals(&old);
	if ((r = container_create(g, id, co, true, restore_start, &ra, &cr, e)) < 0)
		return r;
	if (co->detach) {
		container_created_free(&cr);
		return 0;
	}
	*status = container_wait_remove(&cr, false, &r, e);
	return r;
}
