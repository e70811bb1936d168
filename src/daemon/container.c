/*
 * Containers: each a casulo-runtime container (`run` in the foreground
 * under a shim), with its own runtime root RUN/runtime.  The bundle casulod
 * runs is STATE/instances/NAME/config.json: a copy of a given bundle's
 * (its root.path made absolute), or one made from an image whose rootfs is
 * an overlay of the image store's cached layers, mounted by the shim in a
 * mount namespace of its own (it goes with the container, even on
 * kill -9).  Each has the cgroup /casulod/NAME, for its usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "common/file.h"
#include "common/json-doc.h"
#include "common/log.h"
#include "daemon/internal.h"
#include "image/bundle.h"
#include "image/image.h"
#include "image/progress.h"
#include "image/unpack.h"
#include "oci/oci.h"
#include "oci/util.h"

#define CONTAINER_READY_TIMEOUT_S 30
#define STOP_SIGNAL_ANNOTATION "org.opencontainers.image.stopSignal"

static char *path_of(struct daemon *d, const char *name, const char *file)
{
	char *p = NULL;

	if (asprintf(&p, "%s/instances/%s%s%s", d->state_dir, name, file ? "/" : "", file ? file : "") < 0)
		return NULL;
	return p;
}

static struct oci_global runtime_global(struct daemon *d, char *buf, size_t size)
{
	snprintf(buf, size, "%s/runtime", d->run_dir);
	return (struct oci_global){.root = buf};
}

static const char *str_of(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* Get or make o[key] as an object. */
static json_object *child(json_object *o, const char *key)
{
	json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_object))
		return v;
	v = json_object_new_object();
	json_object_object_add(o, key, v);
	return v;
}

/* env: KEY=VALUE entries over the config's, same keys replaced. */
static void merge_env(json_object *process, json_object *env)
{
	json_object *list, *out = json_object_new_array();

	if (json_object_object_get_ex(process, "env", &list))
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			const char *old = json_object_get_string(json_object_array_get_idx(list, i));
			size_t klen = strcspn(old, "=");
			bool replaced = false;
			for (size_t j = 0; j < json_object_array_length(env); j++) {
				const char *nw = json_object_get_string(json_object_array_get_idx(env, j));
				replaced |= strncmp(nw, old, klen) == 0 && nw[klen] == '=';
			}
			if (!replaced)
				json_object_array_add(out, json_object_new_string(old));
		}
	for (size_t j = 0; j < json_object_array_length(env); j++)
		json_object_array_add(out, json_copy(json_object_array_get_idx(env, j)));
	json_object_object_add(process, "env", out);
}

/* casulod's settings over a config.json: the command (for a bundle; an
 * image's goes through bundle_write_config), env, terminal, the cgroup and
 * resources. */
static void apply_spec(json_object *config, const char *name, json_object *spec, bool set_args)
{
	json_object *process = child(config, "process"), *linux_ = child(config, "linux"), *v;

	if (set_args && json_object_object_get_ex(spec, "command", &v) && json_object_array_length(v) > 0)
		json_object_object_add(process, "args", json_copy(v));
	if (json_object_object_get_ex(spec, "env", &v))
		merge_env(process, v);
	if (json_object_object_get_ex(spec, "terminal", &v))
		json_object_object_add(process, "terminal", json_object_new_boolean(json_object_get_boolean(v)));
	{
		char path[128];
		snprintf(path, sizeof(path), "/casulod/%s", name);
		json_object_object_add(linux_, "cgroupsPath", json_object_new_string(path));
	}
	if (json_object_object_get_ex(spec, "memory_mib", &v)) {
		json_object *mem = child(child(linux_, "resources"), "memory");
		json_object_object_add(mem, "limit", json_object_new_int64((int64_t)json_object_get_int64(v) << 20));
	}
	if (json_object_object_get_ex(spec, "cpus", &v)) {
		json_object *cpu = child(child(linux_, "resources"), "cpu");
		json_object_object_add(cpu, "period", json_object_new_int64(100000));
		json_object_object_add(cpu, "quota",
				       json_object_new_int64((int64_t)(json_object_get_double(v) * 100000)));
	}
	if (json_object_object_get_ex(spec, "pids_limit", &v)) {
		json_object *pids = child(child(linux_, "resources"), "pids");
		json_object_object_add(pids, "limit", json_object_new_int64(json_object_get_int64(v)));
	}
}

static int write_json(const char *path, json_object *o, struct err **e)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);

	if (write_file_atomic(path, text, strlen(text), 0644) < 0)
		return err_set(e, errno, "%s", path);
	return 0;
}

/* A fresh STATE/instances/NAME.tmp-XXXXXX for a create to fill, renamed
 * to NAME once whole (a create killed meanwhile leaves only the .tmp-, swept
 * at the next start). */
static char *tmp_dir(struct daemon *d, const char *name, struct err **e)
{
	char *p = NULL;

	if (asprintf(&p, "%s/instances/%s.tmp-XXXXXX", d->state_dir, name) < 0 || mkdtemp(p) == NULL) {
		err_set(e, errno ? errno : ENOMEM, "instance '%s': a directory in %s/instances", name, d->state_dir);
		free(p);
		return NULL;
	}
	return p;
}

static int finish_dir(struct daemon *d, const char *name, const char *tmp, struct err **e)
{
	char *dir = path_of(d, name, NULL);
	int r = 0;

	if (dir == NULL)
		return err_set(e, ENOMEM, "instance '%s'", name);
	rm_rf_dir(dir); /* a leftover of an earlier instance of the name */
	if (rename(tmp, dir) < 0)
		r = err_set(e, errno, "instance '%s': rename %s", name, tmp);
	free(dir);
	return r;
}

int container_prepare_bundle(struct daemon *d, const char *name, json_object *spec, struct err **e)
{
	const char *bundle = str_of(spec, "bundle");
	char path[4200], *text = NULL, *tmp;
	json_object *config = NULL, *root, *v;
	size_t len;
	int r;

	snprintf(path, sizeof(path), "%s/config.json", bundle);
	if (read_file(path, &text, &len) < 0)
		return err_set(e, errno, "bundle '%s': config.json", bundle);
	r = json_doc_parse(text, len, path, &config, e);
	free(text);
	if (r < 0)
		return r;
	root = child(config, "root");
	if (json_object_object_get_ex(root, "path", &v) && json_object_get_string(v)[0] != '/') {
		char abs[4200];
		snprintf(abs, sizeof(abs), "%s/%s", bundle, json_object_get_string(v));
		json_object_object_add(root, "path", json_object_new_string(abs));
	} else if (!json_object_object_get_ex(root, "path", &v)) {
		json_object_put(config);
		return err_setx(e, EINVAL, "bundle '%s': config.json has no root.path", bundle);
	}
	if (access(str_of(root, "path"), F_OK) < 0) {
		r = err_set(e, errno, "bundle '%s': rootfs '%s'", bundle, str_of(root, "path"));
		json_object_put(config);
		return r;
	}
	apply_spec(config, name, spec, true);
	if ((tmp = tmp_dir(d, name, e)) == NULL) {
		json_object_put(config);
		return -err_code(*e);
	}
	snprintf(path, sizeof(path), "%s/config.json", tmp);
	r = write_json(path, config, e);
	json_object_put(config);
	if (r == 0)
		r = finish_dir(d, name, tmp, e);
	if (r < 0)
		rm_rf_dir(tmp);
	free(tmp);
	return r;
}

/* ---- images ---- */

struct pull_progress {
	struct op *op;
	const char *stage;
	struct {
		char digest[16];
		uint64_t done, total;
	} items[64];
	size_t n;
};

static void on_progress(void *ctx, const char *event, const char *action, const char *digest, uint64_t done,
			uint64_t total)
{
	struct pull_progress *p = ctx;
	uint64_t sum_done = 0, sum_total = 0;
	size_t i;

	(void)event;
	(void)action;
	for (i = 0; i < p->n; i++)
		if (strcmp(p->items[i].digest, digest) == 0)
			break;
	if (i == p->n) {
		if (p->n == sizeof(p->items) / sizeof(p->items[0]))
			return;
		snprintf(p->items[p->n++].digest, sizeof(p->items[0].digest), "%s", digest);
	}
	p->items[i].done = done;
	p->items[i].total = total;
	for (i = 0; i < p->n; i++) {
		sum_done += p->items[i].done;
		sum_total += p->items[i].total;
	}
	op_progress(p->op, sum_total ? 100.0 * (double)sum_done / (double)sum_total : -1, p->stage, sum_done,
		    sum_total);
}

static int open_store(struct daemon *d, struct store *s, struct err **e)
{
	if (mkdir(d->image_root, 0700) < 0 && errno != EEXIST)
		return err_set(e, errno, "image store '%s'", d->image_root);
	return store_open(s, d->image_root, STORE_SHARED, e);
}

/* The image loaded, pulled first when the store lacks it. */
static int find_or_pull(struct daemon *d, struct store *s, const char *ref, struct op *op, struct store_loaded *l,
			struct err **e)
{
	struct pull_progress pp = {.op = op, .stage = "pulling"};
	struct pull_opts po = {0};
	struct store_image im;
	int r = store_find(s, ref, &im, e);

	if (r == -ENOENT) {
		char *name = NULL;
		err_free(e);
		po.progress = progress_new_callback(on_progress, &pp);
		r = image_pull(s, ref, &po, &name, NULL, e);
		progress_free(po.progress);
		if (r == 0)
			r = store_find(s, name, &im, e);
		free(name);
	}
	(void)d;
	if (r < 0)
		return r;
	r = store_load(s, &im.manifest, l, e);
	free(im.name);
	descriptor_free(&im.manifest);
	return r;
}

struct bundle_job {
	struct store *s;
	const struct store_loaded *l;
	const char *dir, *name;
	char *final_rootfs; /* root.path once the directory has its name */
	json_object *spec;
	int r;
	struct err *e;
};

/* On a thread of its own: a private mount namespace (unshare affects the
 * calling thread only) where the overlay is mounted long enough for
 * bundle_write_config() to read the image's /etc/passwd and /etc/group. */
static void *write_bundle(void *arg)
{
	struct bundle_job *j = arg;
	char rootfs[4200], upper[4200], work[4200], config[4200];
	json_object *args, *env, *v, *cfg = NULL;
	char **argv = NULL, **envv = NULL;
	struct bundle_opts bo = {.hostname = j->name};
	size_t n_args = 0, n_env = 0;
	char *text = NULL;
	size_t len;

	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", j->dir);
	snprintf(upper, sizeof(upper), "%s/upper", j->dir);
	snprintf(work, sizeof(work), "%s/work", j->dir);
	if (json_object_object_get_ex(j->spec, "command", &args) && (n_args = json_object_array_length(args)) > 0) {
		argv = calloc(n_args + 1, sizeof(*argv));
		for (size_t i = 0; argv && i < n_args; i++)
			argv[i] = (char *)json_object_get_string(json_object_array_get_idx(args, i));
	}
	if (json_object_object_get_ex(j->spec, "env", &env) && (n_env = json_object_array_length(env)) > 0) {
		envv = calloc(n_env + 1, sizeof(*envv));
		for (size_t i = 0; envv && i < n_env; i++)
			envv[i] = (char *)json_object_get_string(json_object_array_get_idx(env, i));
	}
	bo.args = argv;
	bo.n_args = argv ? n_args : 0;
	bo.env = envv;
	bo.n_env = envv ? n_env : 0;
	bo.terminal = json_object_object_get_ex(j->spec, "terminal", &v) && json_object_get_boolean(v);
	bo.rootfs = rootfs;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		j->r = err_set(&j->e, errno, "instance '%s': private mount namespace", j->name);
		goto out;
	}
	j->r = unpack_mount_overlay(j->s, j->l, upper, work, rootfs, &j->e);
	if (j->r < 0)
		goto out;
	j->r = bundle_write_config(j->dir, rootfs, &j->l->config, &bo, &j->e);
	umount2(rootfs, MNT_DETACH);
	if (j->r < 0)
		goto out;
	/* casulod's own settings over it. */
	snprintf(config, sizeof(config), "%s/config.json", j->dir);
	if (read_file(config, &text, &len) < 0) {
		j->r = err_set(&j->e, errno, "%s", config);
		goto out;
	}
	if ((j->r = json_doc_parse(text, len, config, &cfg, &j->e)) == 0) {
		apply_spec(cfg, j->name, j->spec, false);
		json_object_object_add(child(cfg, "root"), "path", json_object_new_string(j->final_rootfs));
		j->r = write_json(config, cfg, &j->e);
	}
out:
	json_object_put(cfg);
	free(text);
	free(argv);
	free(envv);
	return NULL;
}

/* The image store's record that the layers are in use (prune keeps them). */
static char *store_mark_name(const char *name)
{
	char *p = NULL;

	return asprintf(&p, "casulod-%s", name) < 0 ? NULL : p;
}

int container_prepare_image(struct daemon *d, const char *name, json_object *spec, struct op *op, struct err **e)
{
	struct store s = {0};
	struct store_loaded l = {0};
	struct pull_progress pp = {.op = op, .stage = "unpacking"};
	struct progress *p = NULL;
	struct bundle_job job = {0};
	char lower[4096], path[4200], *tmp = NULL, *mark = NULL;
	pthread_t t;
	int r;

	if ((r = open_store(d, &s, e)) < 0)
		return r;
	op_progress(op, -1, "finding the image", 0, 0);
	if ((r = find_or_pull(d, &s, str_of(spec, "image"), op, &l, e)) < 0)
		goto out;
	op_progress(op, -1, "unpacking", 0, 0);
	p = progress_new_callback(on_progress, &pp);
	if ((r = unpack_image_cached(&s, &l, p, e)) < 0)
		goto out;
	if ((r = unpack_overlay_lowerdir(&s, &l, lower, sizeof(lower), e)) < 0)
		goto out;
	if ((tmp = tmp_dir(d, name, e)) == NULL) {
		r = -err_code(*e);
		goto out;
	}
	job = (struct bundle_job){.s = &s, .l = &l, .dir = tmp, .name = name, .spec = spec};
	if ((job.final_rootfs = path_of(d, name, "rootfs")) == NULL) {
		r = err_set(e, ENOMEM, "instance '%s'", name);
		goto out;
	}
	if (pthread_create(&t, NULL, write_bundle, &job) != 0) {
		r = err_set(e, EAGAIN, "instance '%s': thread", name);
		goto out;
	}
	pthread_join(t, NULL);
	if ((r = job.r) < 0) {
		*e = job.e;
		job.e = NULL;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/lowerdir", tmp);
	if (write_file_atomic(path, lower, strlen(lower), 0644) < 0) {
		r = err_set(e, errno, "%s", path);
		goto out;
	}
	/* Layers in use: what `casulo run` writes for its containers. */
	if ((mark = store_mark_name(name)) != NULL && (mkdirat(s.containers_fd, mark, 0700) == 0 || errno == EEXIST)) {
		char list[4096] = "";
		size_t used = 0;
		for (size_t i = 0; i < l.config.n_diff_ids && used < sizeof(list); i++)
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s\n",
						 digest_hex(l.config.diff_ids[i]));
		int fd;
		snprintf(path, sizeof(path), "%s/layers", mark);
		fd = openat(s.containers_fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, list, strlen(list)) != (ssize_t)strlen(list))
			log_warn("instance '%s': cannot mark its layers in use in the image store: %s", name,
				 strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	r = finish_dir(d, name, tmp, e);
out:
	if (r < 0 && tmp)
		rm_rf_dir(tmp);
	err_free(&job.e);
	free(job.final_rootfs);
	free(tmp);
	free(mark);
	progress_free(p);
	store_loaded_free(&l);
	store_close(&s);
	return r;
}

void container_remove_files(struct daemon *d, const char *name)
{
	char *dir = path_of(d, name, NULL), *mark = store_mark_name(name);
	struct store s = {0};

	if (dir)
		rm_rf_dir(dir);
	if (mark && store_open(&s, d->image_root, STORE_SHARED, NULL) == 0) {
		remove_tree_at(s.containers_fd, mark);
		store_close(&s);
	}
	free(dir);
	free(mark);
}

int images_list(struct daemon *d, json_object **ret, struct err **e)
{
	struct store_image *images = NULL;
	struct store s = {0};
	size_t n = 0;
	int r;

	*ret = json_object_new_array();
	if (access(d->image_root, F_OK) < 0)
		return 0;
	if ((r = store_open(&s, d->image_root, STORE_SHARED, e)) < 0)
		return r;
	if ((r = store_list(&s, &images, &n, e)) == 0)
		for (size_t i = 0; i < n; i++) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string(images[i].name));
			json_object_object_add(o, "digest", json_object_new_string(images[i].manifest.digest));
			json_object_object_add(o, "size", json_object_new_int64(images[i].manifest.size));
			json_object_array_add(*ret, o);
		}
	store_images_free(images, n);
	store_close(&s);
	return r;
}

int images_pull(struct daemon *d, const char *ref, struct op *op, struct err **e)
{
	struct pull_progress pp = {.op = op, .stage = "pulling"};
	struct pull_opts po = {0};
	struct store s = {0};
	char *name = NULL;
	int r;

	if ((r = open_store(d, &s, e)) < 0)
		return r;
	po.progress = progress_new_callback(on_progress, &pp);
	r = image_pull(&s, ref, &po, &name, NULL, e);
	progress_free(po.progress);
	if (r == 0) {
		json_object *res = json_object_new_object();
		json_object_object_add(res, "name", json_object_new_string(name));
		op_set_result(op, res);
	}
	free(name);
	store_close(&s);
	return r;
}

/* ---- the backend ---- */

static int container_check(struct daemon *d, const char *name, json_object *def, struct err **e)
{
	json_object *spec = NULL;
	const char *bundle;
	char path[4200];

	json_object_object_get_ex(def, "container", &spec);
	bundle = str_of(spec, "bundle");
	if (bundle) {
		snprintf(path, sizeof(path), "%s/config.json", bundle);
		if (access(path, R_OK) < 0)
			return err_set(e, errno, "bundle '%s': config.json", bundle);
	}
	if (name) {
		char *cfg = path_of(d, name, "config.json");
		int r = cfg && access(cfg, R_OK) < 0 ? err_set(e, errno, "instance '%s': its bundle %s", name, cfg) : 0;
		free(cfg);
		return r;
	}
	return 0;
}

static int container_prepare(struct instance *inst, char ***ret, char **ot, char **oo, char **se, struct err **e)
{
	struct daemon *d = inst->d;
	char root[4200], *lower = NULL, *lowerfile = path_of(d, inst->name, "lowerdir");
	char **argv = calloc(12, sizeof(*argv));
	struct oci_global g = runtime_global(d, root, sizeof(root));
	size_t len;
	int n = 0;

	*ot = *oo = *se = NULL;
	if (argv == NULL || lowerfile == NULL) {
		free(argv);
		free(lowerfile);
		return err_set(e, ENOMEM, "instance '%s'", inst->name);
	}
	/* A container of the name left by an earlier run that was cut short. */
	{
		struct err *ignored = NULL;
		if (oci_delete(&g, inst->name, true, &ignored) < 0)
			err_free(&ignored);
	}
	argv[n++] = strdup(d->runtime);
	argv[n++] = strdup("--root");
	argv[n++] = strdup(root);
	asprintf(&argv[n++], "--log=%s/runtime.log", inst->run_dir);
	argv[n++] = strdup("run");
	argv[n++] = strdup("--bundle");
	argv[n++] = path_of(d, inst->name, NULL);
	argv[n++] = strdup(inst->name);
	for (int i = 0; i < n; i++)
		if (argv[i] == NULL) {
			for (int j = 0; j < n; j++)
				free(argv[j]);
			free(argv);
			free(lowerfile);
			return err_set(e, ENOMEM, "instance '%s'", inst->name);
		}
	if (read_file(lowerfile, &lower, &len) == 0) {
		*ot = path_of(d, inst->name, "rootfs");
		asprintf(oo, "lowerdir=%s,upperdir=%s/instances/%s/upper,workdir=%s/instances/%s/work", lower,
			 d->state_dir, inst->name, d->state_dir, inst->name);
		free(lower);
	}
	free(lowerfile);
	*ret = argv;
	return 0;
}

/* The container's runc state: status and pid. */
static int container_state(struct instance *inst, char *status, size_t size, pid_t *pid)
{
	char root[4200], *json = NULL;
	struct oci_global g = runtime_global(inst->d, root, sizeof(root));
	json_object *o, *v;
	int r;

	if ((r = oci_state(&g, inst->name, &json, NULL)) < 0)
		return r;
	o = json_tokener_parse(json);
	free(json);
	snprintf(status, size, "%s", o && json_object_object_get_ex(o, "status", &v) ? json_object_get_string(v) : "");
	*pid = o && json_object_object_get_ex(o, "pid", &v) ? json_object_get_int(v) : 0;
	json_object_put(o);
	return 0;
}

static int container_wait_ready(struct instance *inst, struct err **e)
{
	double end = proc_monotonic() + CONTAINER_READY_TIMEOUT_S;

	for (;;) {
		char status[32];
		pid_t pid;
		bool alive;
		pthread_mutex_lock(&inst->d->lock);
		alive = inst->shim_pidfd >= 0;
		pthread_mutex_unlock(&inst->d->lock);
		if (!alive)
			return err_setx(e, EIO, "instance '%s': the container ended as it started", inst->name);
		if (container_state(inst, status, sizeof(status), &pid) == 0 &&
		    (strcmp(status, "running") == 0 || strcmp(status, "stopped") == 0))
			return 0; /* one that ended at once ends as any other */
		if (proc_monotonic() > end)
			return err_setx(e, ETIMEDOUT, "instance '%s': not running after %d s", inst->name,
					CONTAINER_READY_TIMEOUT_S);
		usleep(5 * 1000);
	}
}

static int stop_signal(struct instance *inst)
{
	char *cfg = path_of(inst->d, inst->name, "config.json"), *text = NULL;
	json_object *o = NULL, *ann, *v;
	int sig = SIGTERM;
	size_t len;

	if (cfg && read_file(cfg, &text, &len) == 0 && json_doc_parse(text, len, cfg, &o, NULL) == 0 &&
	    json_object_object_get_ex(o, "annotations", &ann) &&
	    json_object_object_get_ex(ann, STOP_SIGNAL_ANNOTATION, &v)) {
		const char *name = json_object_get_string(v);
		int s;
		if (strncmp(name, "SIG", 3) == 0)
			name += 3;
		for (s = 1; s < NSIG; s++)
			if (sigabbrev_np(s) && strcmp(sigabbrev_np(s), name) == 0)
				sig = s;
		if (atoi(name) > 0 && atoi(name) < NSIG)
			sig = atoi(name);
	}
	json_object_put(o);
	free(text);
	free(cfg);
	return sig;
}

static int runtime_kill(struct instance *inst, int sig, bool all, struct err **e)
{
	char root[4200];
	struct oci_global g = runtime_global(inst->d, root, sizeof(root));
	int r = oci_kill(&g, inst->name, sig, all, e);

	if (r < 0)
		err_wrap(e, "instance '%s'", inst->name);
	return r;
}

static int container_stop_gently(struct instance *inst, struct err **e)
{
	return runtime_kill(inst, stop_signal(inst), false, e);
}

static int container_kill(struct instance *inst, struct err **e)
{
	return runtime_kill(inst, SIGKILL, true, e);
}

static int container_pause(struct instance *inst, bool pause, struct err **e)
{
	char root[4200];
	struct oci_global g = runtime_global(inst->d, root, sizeof(root));
	int r = pause ? oci_pause(&g, inst->name, e) : oci_resume(&g, inst->name, e);

	if (r < 0)
		err_wrap(e, "instance '%s'", inst->name);
	return r;
}

static void container_cleanup(struct instance *inst)
{
	char root[4200];
	struct oci_global g = runtime_global(inst->d, root, sizeof(root));
	struct err *e = NULL;

	if (oci_delete(&g, inst->name, true, &e) < 0 && err_code(e) != ENOENT)
		log_debug("instance '%s': delete: %s", inst->name, e->msg);
	err_free(&e);
}

/* Network bytes of the container's namespace, its status (a container
 * paused behind casulod's back), on slow rounds. */
static void container_sample(struct instance *inst, struct usage *u, bool slow)
{
	char status[32], path[64], line[512];
	uint64_t epoch;
	pid_t pid = 0;
	FILE *f;

	u->has_io = true;
	if (!slow)
		return;
	epoch = instance_op_epoch(inst);
	if (container_state(inst, status, sizeof(status), &pid) < 0 || pid <= 0)
		return;
	instance_workload_state(inst, epoch, status);
	snprintf(path, sizeof(path), "/proc/%d/net/dev", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return;
	u->net_rx_bytes = u->net_tx_bytes = 0;
	while (fgets(line, sizeof(line), f)) {
		char name[64];
		unsigned long long rx, tx;
		if (sscanf(line, " %63[^:]: %llu %*u %*u %*u %*u %*u %*u %*u %llu", name, &rx, &tx) == 3 &&
		    strcmp(name, "lo") != 0) {
			u->net_rx_bytes += rx;
			u->net_tx_bytes += tx;
		}
	}
	fclose(f);
}

const struct backend backend_container = {
    .check = container_check,
    .prepare = container_prepare,
    .wait_ready = container_wait_ready,
    .stop_gently = container_stop_gently,
    .stop_now = container_kill,
    .kill = container_kill,
    .pause = container_pause,
    .cleanup = container_cleanup,
    .sample = container_sample,
};
