#include "api/server.h"

#include <dlfcn.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <json-c/json.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/thread.h"
#include "vmm/actions.h"
#include "vmm/migrate/migrate.h"
#include "vmm/vm.h"

#define API_MAX_BODY (64 * 1024)
#define API_CONNECTION_LIMIT 64
#define API_CONNECTION_TIMEOUT 30 /* seconds a silent client keeps its thread */
#define API_PATH_MAX 4096

struct api_server {
	struct MHD_Daemon *daemon;
	struct vm *vm;
	char *path;
	int fd;
};

/* The body collected for one request. */
struct request {
	char *body;
	size_t len;
	bool too_large;
};

/* --- request bodies --- */

static json_object *parse_body(const char *body, size_t len, char **err)
{
	json_tokener *tok;
	json_object *o;

	if (len == 0) {
		*err = vm_action_error_json("this request needs a JSON body");
		return NULL;
	}
	tok = json_tokener_new();
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success) {
		*err = vm_action_error_json("body is not valid JSON: %s",
					    json_tokener_error_desc(json_tokener_get_error(tok)));
		json_object_put(o);
		o = NULL;
	} else if (!json_object_is_type(o, json_type_object)) {
		*err = vm_action_error_json("body must be a JSON object");
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* Every key of o must be one of allowed (NULL-terminated). */
static bool only_keys(json_object *o, const char *const *allowed, char **err)
{
	json_object_object_foreach(o, key, val) {
		bool ok = false;
		(void)val;
		for (const char *const *k = allowed; *k; k++)
			ok |= strcmp(key, *k) == 0;
		if (!ok) {
			*err = vm_action_error_json("unknown field '%s'", key);
			return false;
		}
	}
	return true;
}

static const char *string_field(json_object *o, const char *name, size_t max, char **err)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, name, &v)) {
		*err = vm_action_error_json("field '%s' is missing", name);
		return NULL;
	}
	if (!json_object_is_type(v, json_type_string)) {
		*err = vm_action_error_json("field '%s' must be a string", name);
		return NULL;
	}
	s = json_object_get_string(v);
	if (*s == '\0' || strlen(s) >= max) {
		*err = vm_action_error_json("field '%s' must be 1 to %zu characters", name, max - 1);
		return NULL;
	}
	return s;
}

/* An optional non-negative integer field; returns false on a bad value. */
static bool uint_field(json_object *o, const char *name, uint64_t max, uint64_t *ret, bool required, char **err)
{
	json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, name, &v)) {
		if (required)
			*err = vm_action_error_json("field '%s' is missing", name);
		return !required;
	}
	if (!json_object_is_type(v, json_type_int)) {
		*err = vm_action_error_json("field '%s' must be an integer", name);
		return false;
	}
	errno = 0;
	n = json_object_get_int64(v);
	if (errno || n < 0 || (uint64_t)n > max) {
		*err = vm_action_error_json("field '%s' must be between 0 and %llu", name, (unsigned long long)max);
		return false;
	}
	*ret = (uint64_t)n;
	return true;
}

/* --- routing --- */

struct route {
	const char *method;
	const char *path;
	enum vm_action_kind kind;
	/* Check the body and fill the action's arguments; NULL: no body. */
	bool (*parse)(json_object *o, struct vm_action *a, char **err);
};

static bool parse_state(json_object *o, struct vm_action *a, char **err)
{
	static const char *const keys[] = { "state", NULL };
	const char *st;

	if (!only_keys(o, keys, err) || (st = string_field(o, "state", 16, err)) == NULL)
		return false;
	if (strcmp(st, "paused") == 0)
		a->kind = VM_ACTION_PAUSE;
	else if (strcmp(st, "running") == 0)
		a->kind = VM_ACTION_RESUME;
	else {
		*err = vm_action_error_json("field 'state' must be \"paused\" or \"running\", not \"%s\"", st);
		return false;
	}
	return true;
}

static bool parse_snapshot(json_object *o, struct vm_action *a, char **err)
{
	static const char *const keys[] = { "path", NULL };
	const char *path;

	if (!only_keys(o, keys, err) || (path = string_field(o, "path", sizeof(a->path), err)) == NULL)
		return false;
	snprintf(a->path, sizeof(a->path), "%s", path);
	return true;
}

static bool parse_migration(json_object *o, struct vm_action *a, char **err)
{
	static const char *const keys[] = { "destination", "downtime_ms", "wait", NULL };
	const char *dest;
	uint64_t downtime = 100;
	json_object *wait;

	if (!only_keys(o, keys, err) || (dest = string_field(o, "destination", sizeof(a->destination), err)) == NULL ||
	    !uint_field(o, "downtime_ms", 60000, &downtime, false, err))
		return false;
	if (strncmp(dest, "tcp:", 4) != 0 || strrchr(dest, ':') == dest + 3) {
		*err = vm_action_error_json("field 'destination' must look like \"tcp:HOST:PORT\", not \"%s\"", dest);
		return false;
	}
	if (json_object_object_get_ex(o, "wait", &wait)) {
		if (!json_object_is_type(wait, json_type_boolean)) {
			*err = vm_action_error_json("field 'wait' must be true or false");
			return false;
		}
		a->wait = json_object_get_boolean(wait);
	}
	snprintf(a->destination, sizeof(a->destination), "%s", dest);
	a->downtime_ms = (uint32_t)(downtime ? downtime : 1);
	return true;
}

static bool parse_balloon(json_object *o, struct vm_action *a, char **err)
{
	static const char *const keys[] = { "target_mib", NULL };
	uint64_t mib;

	if (!only_keys(o, keys, err) || !uint_field(o, "target_mib", 1ULL << 30, &mib, true, err))
		return false;
	a->balloon_target = mib << 20;
	return true;
}

static const struct route routes[] = {
	{ "GET", "/vm", VM_ACTION_INFO, NULL },
	{ "PUT", "/vm/state", VM_ACTION_PAUSE, parse_state },
	{ "PUT", "/vm/shutdown", VM_ACTION_SHUTDOWN, NULL },
	{ "PUT", "/vm/stop", VM_ACTION_STOP, NULL },
	{ "PUT", "/snapshot/create", VM_ACTION_SNAPSHOT_CREATE, parse_snapshot },
	{ "PUT", "/snapshot/load", VM_ACTION_SNAPSHOT_LOAD, parse_snapshot },
	{ "PUT", "/migration/send", VM_ACTION_MIGRATE, parse_migration },
	{ "GET", "/migration", VM_ACTION_MIGRATION_INFO, NULL },
	{ "PUT", "/balloon", VM_ACTION_BALLOON_SET, parse_balloon },
	{ "GET", "/balloon/statistics", VM_ACTION_BALLOON_STATS, NULL },
	{ "GET", "/metrics", VM_ACTION_METRICS, NULL },
};

/*
 * A migration started with "wait": answer once it has ended.  The progress
 * is read here, not through the VMM thread: a migration that completes
 * ends the VMM, which then takes no more actions, but the API keeps
 * serving its last requests until they are answered (api_server_stop).
 */
static void wait_for_migration(struct vm *vm, int *status, char **resp_body)
{
	for (;;) {
		json_object *info = migrate_info(vm), *state;
		const char *st = json_object_object_get_ex(info, "state", &state) ? json_object_get_string(state) : "";

		if (strcmp(st, "running") != 0) {
			json_object *err;
			free(*resp_body);
			if (strcmp(st, "completed") == 0) {
				*status = 200;
				*resp_body = strdup(json_object_to_json_string_ext(info, JSON_C_TO_STRING_PLAIN));
			} else {
				*status = 500;
				*resp_body = vm_action_error_json("%s", json_object_object_get_ex(info, "error", &err)
										? json_object_get_string(err) : "migration failed");
			}
			json_object_put(info);
			return;
		}
		json_object_put(info);
		usleep(20 * 1000);
	}
}

void api_handle(struct vm *vm, const char *method, const char *url, const char *body, size_t body_len, int *status,
		char **resp_body)
{
	const struct route *route = NULL;
	bool path_known = false;
	struct vm_action a;
	char *err = NULL;
	json_object *o = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		if (strcmp(url, routes[i].path) != 0)
			continue;
		path_known = true;
		if (strcmp(method, routes[i].method) == 0)
			route = &routes[i];
	}
	if (route == NULL) {
		*status = path_known ? 405 : 404;
		*resp_body = path_known ? vm_action_error_json("%s is not allowed on %s", method, url)
					: vm_action_error_json("no such resource: %s", url);
		return;
	}
	vm_action_init(&a, route->kind);
	if (route->parse) {
		o = parse_body(body, body_len, &err);
		if (o == NULL || !route->parse(o, &a, &err)) {
			json_object_put(o);
			vm_action_release(&a);
			*status = 400;
			*resp_body = err;
			return;
		}
		json_object_put(o);
	} else if (body_len > 0 && strcmp(method, "PUT") == 0) {
		/* Bodies on body-less actions are tolerated only if empty JSON. */
		o = parse_body(body, body_len, &err);
		if (o == NULL || json_object_object_length(o) != 0) {
			json_object_put(o);
			free(err);
			vm_action_release(&a);
			*status = 400;
			*resp_body = vm_action_error_json("%s %s takes no fields", method, url);
			return;
		}
		json_object_put(o);
	}
	if (vm == NULL) {
		*status = 204;
		*resp_body = NULL;
		vm_action_release(&a);
		return;
	}
	vm_action_run(vm, &a);
	*status = a.http_status;
	*resp_body = a.body;
	a.body = NULL;
	if (a.kind == VM_ACTION_MIGRATE && a.wait && *status == 202)
		wait_for_migration(vm, status, resp_body);
	vm_action_release(&a);
}

/* --- libmicrohttpd glue --- */

/* libmicrohttpd links GnuTLS and with it p11-kit, nettle, gmp and
 * libunistring: about 3 MiB of resident library pages once their
 * constructors have run.  A VM started without --api-socket should not pay
 * for them, so the library is opened when the first API server starts, not
 * linked into casulo-vmm.  Only the declarations of <microhttpd.h> are used. */
#define MHD_SONAME "libmicrohttpd.so.12"

static struct {
	__typeof__(&MHD_start_daemon) start_daemon;
	__typeof__(&MHD_quiesce_daemon) quiesce_daemon;
	__typeof__(&MHD_get_daemon_info) get_daemon_info;
	__typeof__(&MHD_stop_daemon) stop_daemon;
	__typeof__(&MHD_create_response_from_buffer) create_response_from_buffer;
	__typeof__(&MHD_add_response_header) add_response_header;
	__typeof__(&MHD_queue_response) queue_response;
	__typeof__(&MHD_destroy_response) destroy_response;
} mhd;
static char mhd_load_error[256];
static pthread_once_t mhd_once = PTHREAD_ONCE_INIT;

static void mhd_load_once(void)
{
	void *h = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
	const char *missing = NULL;

	if (h == NULL) {
		snprintf(mhd_load_error, sizeof(mhd_load_error), "%s", dlerror());
		return;
	}
#define MHD_SYM(field, name)                                                  \
	do {                                                                  \
		*(void **)&mhd.field = dlsym(h, name);                        \
		if (mhd.field == NULL && missing == NULL)                     \
			missing = name;                                       \
	} while (0)
	MHD_SYM(start_daemon, "MHD_start_daemon");
	MHD_SYM(quiesce_daemon, "MHD_quiesce_daemon");
	MHD_SYM(get_daemon_info, "MHD_get_daemon_info");
	MHD_SYM(stop_daemon, "MHD_stop_daemon");
	MHD_SYM(create_response_from_buffer, "MHD_create_response_from_buffer");
	MHD_SYM(add_response_header, "MHD_add_response_header");
	MHD_SYM(queue_response, "MHD_queue_response");
	MHD_SYM(destroy_response, "MHD_destroy_response");
#undef MHD_SYM
	if (missing != NULL) {
		snprintf(mhd_load_error, sizeof(mhd_load_error), "%s: no symbol %s", MHD_SONAME, missing);
		mhd.start_daemon = NULL;
	}
}

static int mhd_load(const char *path, struct err **e)
{
	pthread_once(&mhd_once, mhd_load_once);
	if (mhd.start_daemon == NULL)
		return err_setx(e, ELIBACC, "api socket '%s': %s", path, mhd_load_error);
	return 0;
}

static enum MHD_Result respond(struct MHD_Connection *c, int status, char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = mhd.create_response_from_buffer(body ? strlen(body) : 0, body ? body : (char *)"",
					    MHD_RESPMEM_MUST_COPY);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	if (body)
		mhd.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = mhd.queue_response(c, (unsigned)status, r);
	mhd.destroy_response(r);
	free(body);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct api_server *s = cls;
	struct request *req = *con_cls;
	char *body = NULL;
	int status;

	(void)version;
	if (req == NULL) {
		req = calloc(1, sizeof(*req));
		if (req == NULL)
			return MHD_NO;
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		/* Keep reading a too-large body to the end, then refuse it. */
		if (!req->too_large && req->len + *upload_data_size <= API_MAX_BODY) {
			char *nb = realloc(req->body, req->len + *upload_data_size + 1);
			if (nb == NULL)
				return MHD_NO;
			req->body = nb;
			memcpy(req->body + req->len, upload_data, *upload_data_size);
			req->len += *upload_data_size;
			req->body[req->len] = '\0';
		} else {
			req->too_large = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->too_large)
		return respond(c, 413, vm_action_error_json("request body is larger than %d bytes", API_MAX_BODY));
	if (strlen(url) >= API_PATH_MAX)
		return respond(c, 414, vm_action_error_json("request path is too long"));
	api_handle(s->vm, method, url, req->body ? req->body : "", req->len, &status, &body);
	log_debug("api: %s %s -> %d", method, url, status);
	return respond(c, status, body);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct request *req = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (req) {
		free(req->body);
		free(req);
		*con_cls = NULL;
	}
}

/* A socket file left behind by a VMM that died can go; a live one, or a
 * file that is not a socket, stays. */
static bool stale_socket(const struct sockaddr_un *addr)
{
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live = probe >= 0 && connect(probe, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
	struct stat st;

	if (probe >= 0)
		close(probe);
	return !live && stat(addr->sun_path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int listen_unix(const char *path, struct err **e)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, r = 0;

	if (strlen(path) >= sizeof(addr.sun_path))
		return err_setx(e, ENAMETOOLONG, "api socket '%s': path is longer than %zu bytes", path,
				sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, errno, "api socket '%s': socket", path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (errno != EADDRINUSE)
			r = err_set(e, errno, "api socket '%s': bind", path);
		else if (!stale_socket(&addr))
			r = err_setx(e, EADDRINUSE, "api socket '%s': in use (a VMM listens there, or it is not a socket)",
				     path);
		else if (unlink(path) < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
			r = err_set(e, errno, "api socket '%s': bind", path);
	}
	if (r == 0 && (chmod(path, 0600) < 0 || listen(fd, API_CONNECTION_LIMIT) < 0)) {
		r = err_set(e, errno, "api socket '%s': listen", path);
		unlink(path);
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int api_server_start(struct vm *vm, const char *path, struct api_server **ret, struct err **e)
{
	struct api_server *s = calloc(1, sizeof(*s));
	int fd;

	if (s == NULL)
		return err_set(e, ENOMEM, "api socket '%s'", path);
	fd = mhd_load(path, e);
	if (fd >= 0)
		fd = listen_unix(path, e);
	if (fd < 0) {
		free(s);
		return fd;
	}
	s->vm = vm;
	s->fd = fd;
	s->path = strdup(path);
	s->daemon = mhd.start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
				     on_request, s, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
				     (unsigned)API_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
				     (unsigned)API_CONNECTION_TIMEOUT, MHD_OPTION_THREAD_STACK_SIZE,
				     (size_t)THREAD_STACK_SIZE, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				     MHD_OPTION_END);
	if (s->daemon == NULL) {
		close(fd);
		unlink(path);
		free(s->path);
		free(s);
		return err_setx(e, EIO, "api socket '%s': the HTTP server did not start", path);
	}
	*ret = s;
	return 0;
}

void api_server_stop(struct api_server *s)
{
	if (s == NULL)
		return;
	/* Stop accepting, then give requests in flight (the one that stopped
	 * the VM, say) a moment to send their answers. */
	mhd.quiesce_daemon(s->daemon);
	for (int i = 0; i < 100; i++) {
		const union MHD_DaemonInfo *info = mhd.get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (info == NULL || info->num_connections == 0)
			break;
		usleep(10 * 1000);
	}
	mhd.stop_daemon(s->daemon);
	close(s->fd);
	unlink(s->path);
	free(s->path);
	free(s);
}
