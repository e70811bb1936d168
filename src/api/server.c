#include "api/server.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <json-c/json.h>

#include "common/body.h"
#include "common/fdutil.h"
#include "common/json-doc.h"
#include "common/log.h"
#include "common/ratelimit-json.h"
#include "common/macro.h"
#include "common/thread.h"
#include "schema/schema.h"
#include "api/actions.h"
#include "common/cpulist.h"
#include "vmm/seccomp.h"

#define API_MAX_BODY (64 * 1024)
/*
 * Idle clients must not lock the API out: connections are served by a
 * fixed pool of threads polling with epoll (an idle connection costs a
 * descriptor, not a thread), a connection silent for API_CONNECTION_TIMEOUT
 * seconds is closed, and one client process holds at most API_PEER_LIMIT
 * connections (its next ones are closed at once).  A request that waits on
 * the VM (a snapshot, a migration with "wait") occupies one thread of the
 * pool; new connections go to the others.
 */
#define API_THREADS 4
#define API_CONNECTION_LIMIT 256
/* libmicrohttpd's own limit, above ours: the connections on_connection()
 * closes (over a client's share) stay counted by it until its next turn,
 * and a flood of them must not make it refuse a well-behaved client's new
 * connection.  Below the usual 1024 open files, with the VMM's own. */
#define API_ACCEPT_LIMIT 768
#define API_CONNECTION_TIMEOUT 5
#define API_PEER_LIMIT 32
#define API_PATH_MAX 4096

/* The connections one client process holds. */
struct api_peer {
	pid_t pid;
	unsigned connections;
};

struct api_server {
	struct MHD_Daemon *daemon;
	struct vm_actions *acts;
	char *path;
	int fd;
	pthread_mutex_t peers_lock;
	struct api_peer peers[API_CONNECTION_LIMIT];
	unsigned npeers;
	unsigned admitted; /* the connections counted in peers[] */
};

/* The body collected for one request. */
struct request {
	struct body body;
};

/* --- request bodies --- */

static json_object *parse_body(const char *body, size_t len, char **err)
{
	struct err *e = NULL;
	json_object *o;

	if (len == 0) {
		*err = vm_action_error_json("this request needs a JSON body");
		return NULL;
	}
	/* json_doc_parse() refuses a NUL inside a string: {"path": "/a\u0000b"}
	 * would otherwise be used as "/a". */
	if (json_doc_parse(body, len, "body", &o, &e) < 0) {
		*err = vm_action_error_json("%s", e->msg);
		err_free(&e);
		return NULL;
	}
	if (!json_object_is_type(o, json_type_object)) {
		*err = vm_action_error_json("body must be a JSON object");
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Every key of o must be one of allowed (NULL-terminated). */
static bool only_keys(json_object *o, const char *const *allowed, char **err)
{
	json_object_object_foreach(o, key, val)
	{
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
	static const char *const keys[] = {"state", NULL};
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
	static const char *const keys[] = {"path", NULL};
	const char *path;

	if (!only_keys(o, keys, err) || (path = string_field(o, "path", sizeof(a->path), err)) == NULL)
		return false;
	snprintf(a->path, sizeof(a->path), "%s", path);
	return true;
}

static bool parse_migration(json_object *o, struct vm_action *a, char **err)
{
	static const char *const keys[] = {"destination", "downtime_ms", "wait", NULL};
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
	static const char *const keys[] = {"target_mib", NULL};
	uint64_t mib;

	if (!only_keys(o, keys, err) || !uint_field(o, "target_mib", 1ULL << 30, &mib, true, err))
		return false;
	a->balloon_target = mib << 20;
	return true;
}

static bool parse_rate_limit(json_object *o, struct vm_action *a, char **err)
{
	static const char *const keys[] = {"device", "rate", "rx_rate", "tx_rate", NULL};
	const char *device;
	char why[192];
	json_object *v;

	if (!only_keys(o, keys, err) || (device = string_field(o, "device", sizeof(a->device), err)) == NULL)
		return false;
	snprintf(a->device, sizeof(a->device), "%s", device);
	for (size_t i = 1; keys[i]; i++) {
		if (!json_object_object_get_ex(o, keys[i], &v))
			continue;
		if (!ratelimit_config_from_json(v, &a->rates[a->nrates].cfg, why, sizeof(why))) {
			*err = vm_action_error_json("field '%s': %s", keys[i], why);
			return false;
		}
		a->rates[a->nrates++].name = keys[i];
	}
	if (a->nrates == 0) {
		*err = vm_action_error_json("give the limits to set: \"rate\" (a disk), \"rx_rate\" or \"tx_rate\" "
					    "(a network interface)");
		return false;
	}
	return true;
}

/* One host CPU list of a PATCH /vm/affinity body. */
static bool cpus_field(json_object *o, const char *name, const char *what, cpu_set_t *set, char **err)
{
	const char *text = string_field(o, name, 1024, err);

	if (text == NULL)
		return false;
	if (cpulist_parse(text, set) < 0) {
		*err = vm_action_error_json("%s: '%s' is not a host CPU list (0-3,8)", what, text);
		return false;
	}
	return true;
}

static bool parse_affinity(json_object *o, struct vm_action *a, char **err)
{
	static const char *const keys[] = {"vcpus", "vmm_host_cpus", NULL};
	json_object *vcpus = NULL;
	size_t n = 0;

	if (!only_keys(o, keys, err))
		return false;
	if (json_object_object_get_ex(o, "vcpus", &vcpus)) {
		if (!json_object_is_type(vcpus, json_type_array)) {
			*err = vm_action_error_json("field 'vcpus' must be an array");
			return false;
		}
		n = json_object_array_length(vcpus);
	}
	if (n > VM_MAX_CPUS) {
		*err = vm_action_error_json("field 'vcpus' has more than %d items", VM_MAX_CPUS);
		return false;
	}
	a->affinity = calloc(n + 1, sizeof(*a->affinity));
	if (a->affinity == NULL) {
		*err = vm_action_error_json("out of memory");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		static const char *const item_keys[] = {"id", "host_cpus", NULL};
		json_object *item = json_object_array_get_idx(vcpus, i);
		struct affinity_change *c = &a->affinity[a->n_affinity];
		uint64_t id;
		if (!json_object_is_type(item, json_type_object)) {
			*err = vm_action_error_json("field 'vcpus' holds objects {\"id\", \"host_cpus\"}");
			return false;
		}
		if (!only_keys(item, item_keys, err) || !uint_field(item, "id", VM_MAX_CPUS - 1, &id, true, err) ||
		    !cpus_field(item, "host_cpus", "vcpus", &c->cpus, err))
			return false;
		c->vcpu = (int)id;
		a->n_affinity++;
	}
	if (json_object_object_get_ex(o, "vmm_host_cpus", NULL)) {
		struct affinity_change *c = &a->affinity[a->n_affinity];
		if (!cpus_field(o, "vmm_host_cpus", "vmm_host_cpus", &c->cpus, err))
			return false;
		c->vcpu = -1;
		a->n_affinity++;
	}
	if (a->n_affinity == 0) {
		*err = vm_action_error_json("nothing to change: give 'vcpus' or 'vmm_host_cpus'");
		return false;
	}
	return true;
}

static const struct route routes[] = {
    {"GET", "/vm", VM_ACTION_INFO, NULL},
    {"PUT", "/vm/state", VM_ACTION_PAUSE, parse_state},
    {"PUT", "/vm/shutdown", VM_ACTION_SHUTDOWN, NULL},
    {"PUT", "/vm/stop", VM_ACTION_STOP, NULL},
    {"PUT", "/snapshot/create", VM_ACTION_SNAPSHOT_CREATE, parse_snapshot},
    {"PUT", "/snapshot/load", VM_ACTION_SNAPSHOT_LOAD, parse_snapshot},
    {"PUT", "/migration/send", VM_ACTION_MIGRATE, parse_migration},
    {"GET", "/migration", VM_ACTION_MIGRATION_INFO, NULL},
    {"PUT", "/balloon", VM_ACTION_BALLOON_SET, parse_balloon},
    {"GET", "/balloon/statistics", VM_ACTION_BALLOON_STATS, NULL},
    {"GET", "/metrics", VM_ACTION_METRICS, NULL},
    {"GET", "/rate-limits", VM_ACTION_RATE_LIMITS, NULL},
    {"PUT", "/rate-limits", VM_ACTION_RATE_LIMIT_SET, parse_rate_limit},
    {"GET", "/vm/affinity", VM_ACTION_AFFINITY_GET, NULL},
    {"PATCH", "/vm/affinity", VM_ACTION_AFFINITY_SET, parse_affinity},
};

/* docs/api.yaml, compiled in by the build (src/schema/meson.build). */
extern const char vmm_api_schemas[];
extern const size_t vmm_api_schemas_len;

static struct schema_doc *api_doc;
static pthread_once_t api_doc_once = PTHREAD_ONCE_INIT;

static void api_doc_load(void)
{
	struct err *e = NULL;

	if (schema_doc_load(vmm_api_schemas, vmm_api_schemas_len, &api_doc, &e) < 0) {
		log_error("api: docs/api.yaml as compiled in: %s", e->msg);
		err_free(&e);
	}
}

/* Check a request's body against its operation in docs/api.yaml: the
 * document's types, patterns, bounds and required fields, unknown fields
 * refused.  *o gets the parsed body (NULL when there is none).  false with
 * *err set when the body breaks the document. */
static bool check_against_document(const char *method, const char *url, const char *body, size_t body_len,
				   json_object **o, bool *checked, int *status, char **err)
{
	const struct schema_op *op;
	struct err *e = NULL;

	*o = NULL;
	*checked = false;
	pthread_once(&api_doc_once, api_doc_load);
	if (api_doc == NULL) {
		*status = 500;
		*err = vm_action_error_json(
		    "the API's document (docs/api.yaml) could not be loaded: every request is refused");
		return false;
	}
	op = schema_op_find(api_doc, method, url);
	if (op == NULL) {
		/* api_check_routes_documented() keeps this from happening. */
		*status = 500;
		*err = vm_action_error_json("%s %s is not in the API's document (a program error)", method, url);
		return false;
	}
	if (schema_check_body(op, body, body_len, o, &e) < 0) {
		*status = 400;
		*err = vm_action_error_json("%s", e->msg);
		err_free(&e);
		return false;
	}
	*checked = true;
	return true;
}

int api_check_routes_documented(struct err **e)
{
	pthread_once(&api_doc_once, api_doc_load);
	if (api_doc == NULL)
		return err_setx(e, EINVAL, "docs/api.yaml as compiled in: it does not load");
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
		if (schema_op_find(api_doc, routes[i].method, routes[i].path) == NULL)
			return err_setx(e, ENOENT, "route %s %s: no operation in docs/api.yaml", routes[i].method,
					routes[i].path);
	return 0;
}

void api_handle(struct vm_actions *acts, const char *method, const char *url, const char *body, size_t body_len,
		int *status, char **resp_body)
{
	const struct route *route = NULL;
	bool path_known = false;
	struct vm_action a;
	char *err = NULL;
	json_object *o = NULL;
	bool checked;

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
	if (!check_against_document(method, url, body, body_len, &o, &checked, status, resp_body))
		return;
	vm_action_init(&a, route->kind);
	if (route->parse) {
		if (o == NULL)
			o = parse_body(body, body_len, &err);
		if (o == NULL || !route->parse(o, &a, &err)) {
			json_object_put(o);
			vm_action_release(&a);
			*status = 400;
			*resp_body = err;
			return;
		}
		json_object_put(o);
	} else if (!checked && body_len > 0 && strcmp(method, "PUT") == 0) {
		/* Bodies on body-less actions are tolerated only if empty JSON
		 * (the document's check says the same for the routes it has). */
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
	} else {
		json_object_put(o);
	}
	if (acts == NULL) {
		*status = 204;
		*resp_body = NULL;
		vm_action_release(&a);
		return;
	}
	vm_action_run(acts, &a);
	*status = a.http_status;
	*resp_body = a.body;
	a.body = NULL;
	vm_action_release(&a);
}

static enum MHD_Result respond(struct MHD_Connection *c, int status, char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(body ? strlen(body) : 0, body ? body : (char *)"", MHD_RESPMEM_MUST_COPY);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	if (body)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
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
		if (body_append(&req->body, upload_data, *upload_data_size, API_MAX_BODY) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->body.too_large)
		return respond(c, 413, vm_action_error_json("request body is larger than %d bytes", API_MAX_BODY));
	if (strlen(url) >= API_PATH_MAX)
		return respond(c, 414, vm_action_error_json("request path is too long"));
	api_handle(s->acts, method, url, body_text(&req->body), req->body.len, &status, &body);
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
		body_free(&req->body);
		free(req);
		*con_cls = NULL;
	}
}

/* The process at the other end of connection fd, 0 when unknown. */
static pid_t peer_pid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.pid : 0;
}

/* Count a new connection against its process, or close it when that
 * process already holds API_PEER_LIMIT or the API API_CONNECTION_LIMIT
 * in all.  *socket_context remembers the pid counted, for the close. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct api_server *s = cls;
	const union MHD_ConnectionInfo *info;
	pid_t pid = (pid_t)(intptr_t)*socket_context;
	unsigned i;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = NULL;
		info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		pid = info ? peer_pid(info->connect_fd) : 0;
		if (pid <= 0)
			return;
		pthread_mutex_lock(&s->peers_lock);
		for (i = 0; i < s->npeers && s->peers[i].pid != pid; i++)
			;
		if (i == s->npeers && i < ARRAY_SIZE(s->peers))
			s->peers[s->npeers++] = (struct api_peer){.pid = pid};
		if (i < s->npeers && s->peers[i].connections < API_PEER_LIMIT && s->admitted < API_CONNECTION_LIMIT) {
			s->peers[i].connections++;
			s->admitted++;
			*socket_context = (void *)(intptr_t)pid;
		} else if (i < s->npeers && s->peers[i].connections == 0) {
			s->peers[i] = s->peers[--s->npeers]; /* added above, never counted */
		}
		pthread_mutex_unlock(&s->peers_lock);
		if (*socket_context == NULL) {
			log_debug("api: process %d holds %d connections already: closing its next", (int)pid,
				  API_PEER_LIMIT);
			shutdown(info->connect_fd, SHUT_RDWR); /* MHD sees the end and closes it */
		}
	} else if (pid > 0) {
		pthread_mutex_lock(&s->peers_lock);
		for (i = 0; i < s->npeers; i++) {
			if (s->peers[i].pid == pid) {
				s->admitted--;
				if (--s->peers[i].connections == 0)
					s->peers[i] = s->peers[--s->npeers];
				break;
			}
		}
		pthread_mutex_unlock(&s->peers_lock);
		*socket_context = NULL;
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
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd, r = 0;

	if (path == NULL)
		return err_setx(e, EINVAL, "api socket: no path given");
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
			r = err_setx(e, EADDRINUSE,
				     "api socket '%s': in use (a VMM listens there, or it is not a socket)", path);
		else if (unlink(path) < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
			r = err_set(e, errno, "api socket '%s': bind", path);
	}
	/* A deep backlog: a client's flood of connections, accepted and
	 * closed over its share, must leave room for others' connects. */
	if (r == 0 && (chmod(path, 0600) < 0 || listen(fd, SOMAXCONN) < 0 || fd_set_nonblock(fd, 1) < 0)) {
		r = err_set(e, errno, "api socket '%s': listen", path);
		unlink(path);
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* libmicrohttpd's threads (its pool of connection threads) are not ours
 * to start: they get the API's seccomp filter from the thread that starts
 * the daemon, a short-lived thread that installs the filter first. */
struct daemon_start {
	struct api_server *s;
	struct err *e;
};

static void *start_daemon_filtered(void *arg)
{
	struct daemon_start *ds = arg;
	struct api_server *s = ds->s;

	pthread_setname_np(pthread_self(), "api");
	if (vmm_seccomp_install(VMM_THREAD_API, &ds->e) < 0)
		return NULL;
	s->daemon =
	    MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC, 0, NULL, NULL, on_request,
			     s, MHD_OPTION_LISTEN_SOCKET, s->fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)API_THREADS,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_ACCEPT_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
			     (unsigned)API_CONNECTION_TIMEOUT, MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK_SIZE,
			     MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
			     s, MHD_OPTION_END);
	if (s->daemon == NULL)
		err_setx(&ds->e, EIO, "api socket '%s': the HTTP server did not start", s->path);
	return NULL;
}

static int start_daemon(struct api_server *s, struct err **e)
{
	struct daemon_start ds = {.s = s};
	pthread_t t;
	int r = thread_start(&t, start_daemon_filtered, &ds);

	if (r != 0)
		return err_set(e, r, "api socket '%s': start thread", s->path);
	pthread_join(t, NULL);
	if (ds.e) {
		*e = ds.e;
		return -(*e)->code;
	}
	return 0;
}

int api_server_start(struct vm *vm, const char *path, struct api_server **ret, struct err **e)
{
	struct api_server *s = calloc(1, sizeof(*s));
	int r;

	if (s == NULL || (s->path = strdup(path)) == NULL) {
		free(s);
		return err_set(e, ENOMEM, "api socket '%s'", path);
	}
	s->fd = -1;
	pthread_mutex_init(&s->peers_lock, NULL);
	/* The document is compiled now, before any API thread runs (and
	 * before their seccomp filter): a failure is the server's own. */
	pthread_once(&api_doc_once, api_doc_load);
	r = api_doc ? 0 : err_setx(e, EINVAL, "api socket '%s': docs/api.yaml as compiled in is unusable", path);
	if (r == 0)
		r = vm_actions_create(vm, &s->acts, e);
	if (r == 0)
		r = s->fd = listen_unix(path, e);
	if (r >= 0)
		r = start_daemon(s, e);
	if (r < 0) {
		if (s->fd >= 0) {
			close(s->fd);
			unlink(path);
		}
		vm_actions_destroy(s->acts);
		pthread_mutex_destroy(&s->peers_lock);
		free(s->path);
		free(s);
		return r;
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
	MHD_quiesce_daemon(s->daemon);
	for (int i = 0; i < 100; i++) {
		const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (info == NULL || info->num_connections == 0)
			break;
		usleep(10 * 1000);
	}
	MHD_stop_daemon(s->daemon);
	vm_actions_destroy(s->acts);
	close(s->fd);
	unlink(s->path);
	pthread_mutex_destroy(&s->peers_lock);
	free(s->path);
	free(s);
}
