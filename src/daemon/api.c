/*
 * The routes of docs/casulod-api.yaml.  Every path parameter, query
 * parameter and body is checked against the document (compiled in,
 * src/schema/) before a handler runs; handlers then only read values the
 * document allows.
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "casulo-config.h"
#include "daemon/api.h"
#include "daemon/events.h"
#include "daemon/internal.h"
#include "schema/schema.h"

#define WAIT_DEFAULT_S 60
#define LOG_KEEP (2u << 20)
#define MAX_PARAMS 4
#define MAX_QUERY 8

struct call {
	const struct api_request *rq;
	struct api_reply *rp;
	const char *params[MAX_PARAMS]; /* path parameters in order */
	char *param_buf[MAX_PARAMS];
	const char *query_keys[MAX_QUERY + 1], *query_values[MAX_QUERY];
	size_t n_query;
	json_object *body;
};

void api_reply_clear(struct api_reply *rp)
{
	free(rp->body);
	free(rp->set_cookie);
	free(rp->location);
	free(rp->file);
	op_put(rp->op);
	instance_put(rp->inst);
	*rp = (struct api_reply){0};
}

void api_error(struct api_reply *rp, int status, const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(msg));
	free(rp->body);
	rp->kind = REPLY_JSON;
	rp->status = status;
	rp->body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* Reply with JSON (taken). */
static void reply_json(struct api_reply *rp, int status, json_object *o)
{
	rp->kind = REPLY_JSON;
	rp->status = status;
	rp->body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static void reply_err(struct api_reply *rp, struct err *e, int fallback)
{
	int code = err_code(e), status;

	switch (code) {
	case EINVAL:
		status = 400;
		break;
	case ENOENT:
		status = 404;
		break;
	case EEXIST:
	case EBUSY:
		status = 409;
		break;
	default:
		status = fallback;
		break;
	}
	api_error(rp, status, "%s", e && e->msg ? e->msg : "failed");
}

/* 202 with the operation, and its Location. */
static void reply_op(struct api_reply *rp, struct op *op)
{
	char loc[64];

	snprintf(loc, sizeof(loc), "/v1/operations/%s", op_id(op));
	rp->location = strdup(loc);
	reply_json(rp, 202, op_to_json(op));
	op_put(op);
}

/* The end of a handler that started an operation on inst: 202 with the
 * operation, or the error (r < 0). */
static void finish_op(struct call *k, struct instance *inst, int r, struct op *op, struct err *e)
{
	if (r < 0)
		reply_err(k->rp, e, 500);
	else
		reply_op(k->rp, op);
	err_free(&e);
	instance_put(inst);
}

static bool query_bool(struct call *k, const char *key)
{
	for (size_t i = 0; i < k->n_query; i++)
		if (strcmp(k->query_keys[i], key) == 0)
			return strcmp(k->query_values[i], "true") == 0;
	return false;
}

static const char *query_str(struct call *k, const char *key)
{
	for (size_t i = 0; i < k->n_query; i++)
		if (strcmp(k->query_keys[i], key) == 0)
			return k->query_values[i];
	return NULL;
}

/* The instance of the path, or a 404. */
static struct instance *path_instance(struct call *k)
{
	struct instance *inst = instance_get(k->rq->d, k->params[0]);

	if (inst == NULL)
		api_error(k->rp, 404, "instance '%s' does not exist", k->params[0]);
	return inst;
}

/* ---- handlers ---- */

static void get_server(struct call *k)
{
	struct daemon *d = k->rq->d;
	json_object *o = json_object_new_object(), *r = json_object_new_object();

	json_object_object_add(o, "version", json_object_new_string(CASULO_VERSION));
	json_object_object_add(o, "api_version", json_object_new_string("1.0"));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "state_dir", json_object_new_string(d->state_dir));
	json_object_object_add(o, "run_dir", json_object_new_string(d->run_dir));
	json_object_object_add(o, "image_root", json_object_new_string(d->image_root));
	json_object_object_add(o, "started_at", json_object_new_double(d->started_at));
	json_object_object_add(o, "boot_id", json_object_new_string(d->boot_id));
	json_object_object_add(o, "first_start_since_boot", json_object_new_boolean(d->first_start_since_boot));
	json_object_object_add(o, "auth", json_object_new_string(k->rq->tcp ? "token" : "unix"));
	pthread_mutex_lock(&d->lock);
	json_object_object_add(o, "instances", json_object_new_int((int)d->n_instances));
	pthread_mutex_unlock(&d->lock);
	json_object_object_add(r, "found", json_object_new_int(d->reattach.found));
	json_object_object_add(r, "lost", json_object_new_int(d->reattach.lost));
	json_object_object_add(r, "ms", json_object_new_double(d->reattach.ms));
	json_object_object_add(r, "load_ms", json_object_new_double(d->reattach.load_ms));
	json_object_object_add(o, "reattach", r);
	reply_json(k->rp, 200, o);
}

static void list_instances(struct call *k)
{
	const char *type = query_str(k, "type");
	json_object *a = json_object_new_array();
	struct instance **list;
	size_t n;

	list = instances_snapshot(k->rq->d, &n);
	for (size_t i = 0; i < n; i++)
		if (type == NULL || strcmp(type, instance_type_name(list[i]->type)) == 0)
			json_object_array_add(a, instance_to_json(list[i]));
	instances_put(list, n);
	reply_json(k->rp, 200, a);
}

static void create_instance(struct call *k)
{
	struct instance *inst = NULL;
	struct op *op = NULL;
	struct err *e = NULL;
	int r = instance_create(k->rq->d, k->body, &inst, &op, &e);

	if (r < 0) {
		/* A file the definition names: 422, not 404. */
		int c = err_code(e);
		if (c == EINVAL)
			api_error(k->rp, 400, "%s", e->msg);
		else if (c == EEXIST)
			api_error(k->rp, 409, "%s", e->msg);
		else if (c == ENOMEM || c == EIO)
			api_error(k->rp, 500, "%s", e->msg);
		else
			api_error(k->rp, 422, "%s", e->msg);
	} else if (op) {
		reply_op(k->rp, op);
	} else {
		reply_json(k->rp, 201, instance_to_json(inst));
	}
	instance_put(inst);
	err_free(&e);
}

static void get_instance(struct call *k)
{
	struct instance *inst = path_instance(k);

	if (inst)
		reply_json(k->rp, 200, instance_to_json(inst));
	instance_put(inst);
}

static void patch_instance(struct call *k)
{
	struct instance *inst = path_instance(k);
	struct err *e = NULL;
	json_object *a;

	if (inst == NULL)
		return;
	json_object_object_get_ex(k->body, "autostart", &a);
	if (instance_set_autostart(inst, a, &e) < 0)
		reply_err(k->rp, e, 500);
	else
		reply_json(k->rp, 200, instance_to_json(inst));
	err_free(&e);
	instance_put(inst);
}

static void delete_instance(struct call *k)
{
	struct instance *inst = path_instance(k);
	struct op *op = NULL;
	struct err *e = NULL;
	int r;

	if (inst == NULL)
		return;
	r = instance_delete(inst, query_bool(k, "force"), &op, &e);
	if (r < 0)
		reply_err(k->rp, e, 500);
	else if (r > 0)
		reply_op(k->rp, op);
	else
		k->rp->status = 204;
	err_free(&e);
	instance_put(inst);
}

static void put_state(struct call *k)
{
	struct instance *inst = path_instance(k);
	json_object *action, *timeout;
	struct op *op = NULL;
	struct err *e = NULL;
	int r;

	if (inst == NULL)
		return;
	json_object_object_get_ex(k->body, "action", &action);
	r = instance_action(
	    inst, json_object_get_string(action),
	    json_object_object_get_ex(k->body, "timeout_s", &timeout) ? json_object_get_int(timeout) : -1, &op, &e);
	finish_op(k, inst, r, op, e);
}

static void post_snapshot(struct call *k)
{
	struct instance *inst = path_instance(k);
	json_object *path;
	struct op *op = NULL;
	struct err *e = NULL;
	int r;

	if (inst == NULL)
		return;
	json_object_object_get_ex(k->body, "path", &path);
	r = instance_snapshot(inst, json_object_get_string(path), &op, &e);
	finish_op(k, inst, r, op, e);
}

static void post_migrate(struct call *k)
{
	struct instance *inst = path_instance(k);
	json_object *dest, *dt;
	struct op *op = NULL;
	struct err *e = NULL;
	int r;

	if (inst == NULL)
		return;
	json_object_object_get_ex(k->body, "destination", &dest);
	r = instance_migrate(inst, json_object_get_string(dest),
			     json_object_object_get_ex(k->body, "downtime_ms", &dt) ? json_object_get_int(dt) : 100,
			     &op, &e);
	finish_op(k, inst, r, op, e);
}

static void get_console(struct call *k)
{
	struct instance *inst = path_instance(k);
	const char *mode = query_str(k, "mode");
	bool writer = mode == NULL || strcmp(mode, "rw") == 0;
	enum instance_state st;

	if (inst == NULL)
		return;
	pthread_mutex_lock(&inst->d->lock);
	st = inst->state;
	if (inst->shim_pidfd < 0) {
		pthread_mutex_unlock(&inst->d->lock);
		api_error(k->rp, 409, "instance '%s' is %s: its console is there while it runs", inst->name,
			  instance_state_name(st));
		instance_put(inst);
		return;
	}
	if (writer && inst->writer_taken) {
		pthread_mutex_unlock(&inst->d->lock);
		api_error(k->rp, 409, "instance '%s': the console has a writer already (mode=ro views it)", inst->name);
		instance_put(inst);
		return;
	}
	if (writer)
		inst->writer_taken = true;
	pthread_mutex_unlock(&inst->d->lock);
	k->rp->kind = REPLY_UPGRADE;
	k->rp->status = 101;
	k->rp->inst = inst;
	k->rp->writer = writer;
}

/* The last `lines` lines of what the console wrote (this run and before). */
static void get_logs(struct call *k)
{
	struct instance *inst = path_instance(k);
	const char *lines_s = query_str(k, "lines");
	char *path, *old = NULL, *buf;
	size_t used = 0;
	long lines = lines_s ? atol(lines_s) : 0;

	if (inst == NULL)
		return;
	path = instance_log_path(k->rq->d, inst->name);
	instance_put(inst);
	buf = malloc(LOG_KEEP + 1);
	if (path == NULL || buf == NULL || asprintf(&old, "%s.1", path) < 0) {
		free(path);
		free(buf);
		api_error(k->rp, 500, "out of memory");
		return;
	}
	for (int i = 0; i < 2; i++) {
		int fd = open(i == 0 ? old : path, O_RDONLY | O_CLOEXEC);
		off_t size;
		if (fd < 0)
			continue;
		size = lseek(fd, 0, SEEK_END);
		if (size > 0) {
			/* Keep the newest LOG_KEEP bytes of the two. */
			size_t want = (size_t)MIN((off_t)LOG_KEEP, size);
			if (used + want > LOG_KEEP) {
				size_t drop = used + want - LOG_KEEP;
				memmove(buf, buf + MIN(drop, used), used - MIN(drop, used));
				used -= MIN(drop, used);
			}
			ssize_t n = pread(fd, buf + used, want, size - (off_t)want);
			if (n > 0)
				used += (size_t)n;
		}
		close(fd);
	}
	buf[used] = '\0';
	free(path);
	free(old);
	if (lines > 0) {
		size_t at = used;
		long seen = 0;
		if (at > 0 && buf[at - 1] == '\n')
			at--;
		while (at > 0 && seen < lines)
			if (buf[--at] == '\n')
				seen++;
		if (seen == lines)
			at++;
		memmove(buf, buf + at, used - at + 1);
	}
	k->rp->kind = REPLY_JSON;
	k->rp->status = 200;
	k->rp->body = buf;
	k->rp->content_type = "text/plain; charset=utf-8";
}

static void list_ops(struct call *k)
{
	reply_json(k->rp, 200, ops_list_json(k->rq->d));
}

static void get_op(struct call *k)
{
	struct op *op = op_get(k->rq->d, k->params[0]);

	if (op == NULL) {
		api_error(k->rp, 404, "operation '%s' does not exist (or ended more than 10 minutes ago)",
			  k->params[0]);
		return;
	}
	reply_json(k->rp, 200, op_to_json(op));
	op_put(op);
}

static void wait_op(struct call *k)
{
	struct op *op = op_get(k->rq->d, k->params[0]);
	const char *t = query_str(k, "timeout_s");

	if (op == NULL) {
		api_error(k->rp, 404, "operation '%s' does not exist (or ended more than 10 minutes ago)",
			  k->params[0]);
		return;
	}
	k->rp->kind = REPLY_WAIT_OP;
	k->rp->status = 200;
	k->rp->op = op;
	k->rp->timeout_s = t ? atof(t) : WAIT_DEFAULT_S;
}

static void list_images(struct call *k)
{
	json_object *a = NULL;
	struct err *e = NULL;

	if (images_list(k->rq->d, &a, &e) < 0) {
		json_object_put(a);
		reply_err(k->rp, e, 500);
	} else {
		reply_json(k->rp, 200, a);
	}
	err_free(&e);
}

static int pull_op(struct op *op, void *arg, struct err **e)
{
	return images_pull(op_daemon(op), arg, op, e);
}

static void post_image(struct call *k)
{
	json_object *ref;
	char *r;
	struct op *op;

	json_object_object_get_ex(k->body, "ref", &ref);
	if ((r = strdup(json_object_get_string(ref))) == NULL ||
	    (op = op_start(k->rq->d, "pull", NULL, pull_op, r, free)) == NULL) {
		api_error(k->rp, 500, "out of memory");
		return;
	}
	reply_op(k->rp, op);
}

static void get_events(struct call *k)
{
	const char *types = query_str(k, "types");
	const char *last = MHD_lookup_connection_value(k->rq->c, MHD_HEADER_KIND, "Last-Event-ID");

	k->rp->kind = REPLY_SSE;
	k->rp->status = 200;
	k->rp->sse_types = types ? (strstr(types, "lifecycle") ? EVENT_LIFECYCLE : 0) |
				       (strstr(types, "operation") ? EVENT_OPERATION : 0)
				 : EVENT_LIFECYCLE | EVENT_OPERATION;
	k->rp->last_event_id = last ? strtoull(last, NULL, 10) : 0;
}

static void post_session(struct call *k)
{
	json_object *token;
	char *cookie = NULL;

	if (!k->rq->tcp) {
		api_error(k->rp, 400, "sessions are for the TCP listener (--listen); the Unix socket needs none");
		return;
	}
	json_object_object_get_ex(k->body, "token", &token);
	if (!http_token_matches(k->rq->d, json_object_get_string(token))) {
		api_error(k->rp, 401, "wrong token");
		return;
	}
	if (asprintf(&cookie, "casulod_token=%s; Path=/; HttpOnly; Secure; SameSite=Strict",
		     json_object_get_string(token)) < 0)
		cookie = NULL;
	k->rp->set_cookie = cookie;
	k->rp->status = 204;
}

static void get_metrics(struct call *k)
{
	k->rp->kind = REPLY_JSON;
	k->rp->status = 200;
	k->rp->body = metrics_text(k->rq->d);
	k->rp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* ---- routing ---- */

struct route {
	const char *method, *path;
	void (*fn)(struct call *k);
};

static const struct route routes[] = {
    {"GET", "/v1", get_server},
    {"GET", "/v1/instances", list_instances},
    {"POST", "/v1/instances", create_instance},
    {"GET", "/v1/instances/{name}", get_instance},
    {"PATCH", "/v1/instances/{name}", patch_instance},
    {"DELETE", "/v1/instances/{name}", delete_instance},
    {"PUT", "/v1/instances/{name}/state", put_state},
    {"POST", "/v1/instances/{name}/snapshot", post_snapshot},
    {"POST", "/v1/instances/{name}/migrate", post_migrate},
    {"GET", "/v1/instances/{name}/console", get_console},
    {"GET", "/v1/instances/{name}/logs", get_logs},
    {"GET", "/v1/operations", list_ops},
    {"GET", "/v1/operations/{id}", get_op},
    {"GET", "/v1/operations/{id}/wait", wait_op},
    {"GET", "/v1/images", list_images},
    {"POST", "/v1/images", post_image},
    {"GET", "/v1/events", get_events},
    {"POST", "/v1/session", post_session},
    {"GET", "/metrics", get_metrics},
};

int api_check_routes_documented(const struct schema_doc *doc, struct err **e)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (schema_op_find(doc, routes[i].method, routes[i].path) == NULL)
			return err_setx(e, ENOENT, "route %s %s: no operation in docs/casulod-api.yaml",
					routes[i].method, routes[i].path);
	return 0;
}

/* Does url match the template?  Path parameters into k (pointing into
 * k->param_buf). */
static bool match(const char *tmpl, const char *url, struct call *k)
{
	size_t n = 0;

	while (*tmpl && *url) {
		if (*tmpl == '{') {
			const char *end = strchr(url, '/');
			size_t len = end ? (size_t)(end - url) : strlen(url);
			if (len == 0 || n == MAX_PARAMS)
				return false;
			free(k->param_buf[n]);
			k->param_buf[n] = strndup(url, len);
			k->params[n] = k->param_buf[n];
			n++;
			url += len;
			tmpl = strchr(tmpl, '}');
			if (tmpl == NULL)
				return false;
			tmpl++;
			continue;
		}
		if (*tmpl != *url)
			return false;
		tmpl++;
		url++;
	}
	return *tmpl == '\0' && *url == '\0';
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct call *k = cls;

	(void)kind;
	if (k->n_query == MAX_QUERY)
		return MHD_NO;
	k->query_keys[k->n_query] = key;
	k->query_values[k->n_query] = value ? value : "";
	k->n_query++;
	return MHD_YES;
}

/* The path parameter names of a template, in order. */
static size_t param_names(const char *tmpl, char names[MAX_PARAMS][16])
{
	size_t n = 0;

	for (const char *p = strchr(tmpl, '{'); p && n < MAX_PARAMS; p = strchr(p + 1, '{'))
		snprintf(names[n++], 16, "%.*s", (int)(strcspn(p + 1, "}")), p + 1);
	return n;
}

/* The dashboard's files: / and /ui/PATH, PATH of plain names only. */
static bool serve_static(const struct api_request *rq, struct api_reply *rp)
{
	const char *dir = rq->d->cfg.dashboard_dir, *rel;
	char *path = NULL;

	if (strcmp(rq->method, "GET") != 0 || (strcmp(rq->url, "/") != 0 && strncmp(rq->url, "/ui/", 4) != 0))
		return false;
	if (dir == NULL) {
		api_error(rp, 404, "this casulod has no dashboard (built without npm, or --no-dashboard)");
		return true;
	}
	rel = strcmp(rq->url, "/") == 0 ? "index.html" : rq->url + 4;
	if (rel[0] == '\0' || strstr(rel, "..") ||
	    strspn(rel, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") != strlen(rel)) {
		api_error(rp, 404, "no such file");
		return true;
	}
	if (asprintf(&path, "%s/%s", dir, rel) < 0) {
		api_error(rp, 500, "out of memory");
		return true;
	}
	rp->kind = REPLY_FILE;
	rp->status = 200;
	rp->file = path;
	return true;
}

void api_handle(const struct api_request *rq, struct api_reply *rp)
{
	struct call k = {.rq = rq, .rp = rp};
	const struct route *route = NULL;
	const struct schema_op *op;
	bool path_known = false;
	struct err *e = NULL;
	char names[MAX_PARAMS][16];
	size_t n_names;

	rp->status = 200;
	if (serve_static(rq, rp))
		return;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!match(routes[i].path, rq->url, &k))
			continue;
		path_known = true;
		if (strcmp(rq->method, routes[i].method) == 0) {
			route = &routes[i];
			break;
		}
	}
	if (route == NULL) {
		if (path_known)
			api_error(rp, 405, "%s is not allowed on %s", rq->method, rq->url);
		else
			api_error(rp, 404, "no such resource: %s", rq->url);
		goto out;
	}
	op = schema_op_find(rq->d->schemas, route->method, route->path);
	if (op == NULL) {
		api_error(rp, 500, "%s %s is not in the API document (a program error)", route->method, route->path);
		goto out;
	}
	/* Everything the request carries, against the document. */
	n_names = param_names(route->path, names);
	for (size_t i = 0; i < n_names; i++)
		if (schema_check_param(op, "path", names[i], k.params[i], &e) < 0)
			goto bad;
	MHD_get_connection_values(rq->c, MHD_GET_ARGUMENT_KIND, collect_query, &k);
	if (k.n_query == MAX_QUERY) {
		api_error(rp, 400, "too many query parameters");
		goto out;
	}
	for (size_t i = 0; i < k.n_query; i++)
		if (schema_check_param(op, "query", k.query_keys[i], k.query_values[i], &e) < 0)
			goto bad;
	k.query_keys[k.n_query] = NULL;
	if (schema_missing_param(op, k.query_keys)) {
		api_error(rp, 400, "query parameter '%s' is missing", schema_missing_param(op, k.query_keys));
		goto out;
	}
	if (schema_check_body(op, rq->body, rq->len, &k.body, &e) < 0)
		goto bad;
	route->fn(&k);
	goto out;
bad:
	api_error(rp, 400, "%s", e->msg);
out:
	err_free(&e);
	json_object_put(k.body);
	for (size_t i = 0; i < MAX_PARAMS; i++)
		free(k.param_buf[i]);
}
