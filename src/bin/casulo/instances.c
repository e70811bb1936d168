/*
 * casulod's verbs: ls, create, start, stop, restart, kill, pause, resume,
 * rm, info, console, logs, top, autostart.  Each is a request to casulod
 * (src/daemon/client.h); --json prints the API's JSON as it is.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "casulo.h"
#include "common/parse.h"
#include "daemon/client.h"

struct opts {
	const char *socket, *url, *token_file, *tls_ca;
	bool json, force, no_wait, read_only, follow, once, start;
	long timeout;
	long lines;
	double interval;
	struct casulod_client c;
};

enum {
	O_SOCKET = 300,
	O_URL,
	O_TOKEN_FILE,
	O_TLS_CA,
	O_JSON,
	O_FORCE,
	O_NO_WAIT,
	O_TIMEOUT,
	O_READ_ONLY,
	O_ONCE,
	O_INTERVAL,
	O_START,
	O_TYPE,
	O_KERNEL,
	O_INITRD,
	O_CMDLINE,
	O_CPUS,
	O_MEMORY,
	O_DISK,
	O_NET,
	O_IMAGE,
	O_BUNDLE,
	O_ENV,
	O_PIDS,
	O_AUTOSTART,
	O_ORDER,
	O_DELAY,
	O_STOP_TIMEOUT,
};

#define COMMON_OPTS                                                                                                    \
	{"socket", required_argument, NULL, O_SOCKET}, {"url", required_argument, NULL, O_URL},                        \
	    {"token-file", required_argument, NULL, O_TOKEN_FILE}, {"tls-ca", required_argument, NULL, O_TLS_CA},      \
	    {"json", no_argument, NULL, O_JSON},                                                                       \
	{                                                                                                              \
		"help", no_argument, NULL, 'h'                                                                         \
	}

static const char common_help[] =
    "Talking to casulod:\n"
    "  --socket PATH       its Unix socket (default $CASULOD_SOCKET, /run/casulod/casulod.sock)\n"
    "  --url https://H:P   its TLS listener instead (or $CASULOD_URL), with\n"
    "  --token-file FILE   the bearer token (or $CASULOD_TOKEN_FILE), and\n"
    "  --tls-ca FILE       the CA of its certificate (or $CASULOD_TLS_CA)\n"
    "  --json              the API's JSON instead of text\n";

static bool common_opt(struct opts *o, int opt)
{
	switch (opt) {
	case O_SOCKET:
		o->socket = optarg;
		return true;
	case O_URL:
		o->url = optarg;
		return true;
	case O_TOKEN_FILE:
		o->token_file = optarg;
		return true;
	case O_TLS_CA:
		o->tls_ca = optarg;
		return true;
	case O_JSON:
		o->json = true;
		return true;
	default:
		return false;
	}
}

static int connect_client(struct opts *o, const char *verb)
{
	struct err *e = NULL;

	if (casulod_client_init(&o->c, o->socket, o->url, o->token_file, o->tls_ca, &e) < 0) {
		fprintf(stderr, "casulo %s: %s\n", verb, e->msg);
		err_free(&e);
		return 1;
	}
	return 0;
}

/* A request; on success the parsed JSON body (NULL when empty), on failure
 * the error printed and *rc set to 1. */
static json_object *call(struct opts *o, const char *verb, const char *method, const char *path, const char *body,
			 int *status_out, int *rc)
{
	struct err *e = NULL;
	char *resp = NULL;
	json_object *j = NULL;
	int status = 0;

	*rc = 0;
	if (casulod_request(&o->c, method, path, body, &status, &resp, &e) < 0) {
		fprintf(stderr, "casulo %s: %s\n", verb, e->msg);
		err_free(&e);
		*rc = 1;
		return NULL;
	}
	if (status_out)
		*status_out = status;
	if (status >= 300) {
		char *msg = casulod_error_text(status, resp);
		fprintf(stderr, "casulo %s: %s\n", verb, msg);
		free(msg);
		free(resp);
		*rc = 1;
		return NULL;
	}
	if (resp && *resp)
		j = json_tokener_parse(resp);
	free(resp);
	return j;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) && !json_object_is_type(v, json_type_null)
		   ? json_object_get_string(v)
		   : NULL;
}

static double num(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : 0;
}

static void print_json(json_object *j)
{
	printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Wait for the operation op (a 202's body) to end: its JSON, or NULL with
 * the error printed. */
static json_object *wait_op(struct opts *o, const char *verb, json_object *op, int *rc)
{
	char path[128];
	const char *id = str(op, "id");
	json_object *done;

	if (id == NULL) {
		fprintf(stderr, "casulo %s: casulod answered 202 without an operation\n", verb);
		*rc = 1;
		return NULL;
	}
	for (;;) {
		snprintf(path, sizeof(path), "/v1/operations/%s/wait?timeout_s=3600", id);
		done = call(o, verb, "GET", path, NULL, NULL, rc);
		if (done == NULL)
			return NULL;
		if (strcmp(str(done, "status") ? str(done, "status") : "", "running") != 0)
			break;
		json_object_put(done);
	}
	if (strcmp(str(done, "status"), "success") != 0) {
		fprintf(stderr, "casulo %s: %s\n", verb, str(done, "error") ? str(done, "error") : "failed");
		json_object_put(done);
		*rc = 1;
		return NULL;
	}
	return done;
}

static void human_bytes(double b, char *buf, size_t size)
{
	if (b >= 1024.0 * 1024 * 1024)
		snprintf(buf, size, "%.1fG", b / (1024.0 * 1024 * 1024));
	else if (b >= 1024.0 * 1024)
		snprintf(buf, size, "%.1fM", b / (1024.0 * 1024));
	else if (b >= 1024)
		snprintf(buf, size, "%.0fK", b / 1024);
	else
		snprintf(buf, size, "%.0fB", b);
}

static void human_age(double seconds, char *buf, size_t size)
{
	if (seconds < 120)
		snprintf(buf, size, "%.0fs", seconds);
	else if (seconds < 7200)
		snprintf(buf, size, "%.0fm", seconds / 60);
	else if (seconds < 172800)
		snprintf(buf, size, "%.0fh", seconds / 3600);
	else
		snprintf(buf, size, "%.0fd", seconds / 86400);
}

/* "up 3m", "exited 0", "killed", "host-rebooted"... */
static void status_text(json_object *inst, char *buf, size_t size)
{
	const char *state = str(inst, "state"), *reason = str(inst, "exit_reason");
	json_object *st;
	char age[32];

	if (strcmp(state, "stopped") != 0) {
		human_age((double)time(NULL) - num(inst, "started_at"), age, sizeof(age));
		snprintf(buf, size, "up %s", age);
	} else if (reason == NULL) {
		snprintf(buf, size, "never started");
	} else if (json_object_object_get_ex(inst, "exit_status", &st) && !json_object_is_type(st, json_type_null)) {
		snprintf(buf, size, "%s %d", reason, json_object_get_int(st));
	} else {
		snprintf(buf, size, "%s", reason);
	}
}

static void print_table(json_object *list, bool top)
{
	printf("%-24s %-9s %-8s %6s %8s %-9s %s\n", "NAME", "TYPE", "STATE", "CPU%", "MEMORY", "AUTOSTART", "STATUS");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *inst = json_object_array_get_idx(list, i), *u = NULL, *a = NULL, *en;
		char cpu[16] = "-", mem[16] = "-", status[64], autostart[16] = "off";
		json_object_object_get_ex(inst, "usage", &u);
		if (u) {
			snprintf(cpu, sizeof(cpu), "%.1f", num(u, "cpu_percent"));
			human_bytes(num(u, "memory_bytes"), mem, sizeof(mem));
		}
		if (json_object_object_get_ex(inst, "autostart", &a) && json_object_object_get_ex(a, "enabled", &en) &&
		    json_object_get_boolean(en))
			snprintf(autostart, sizeof(autostart), "on (%d)", (int)num(a, "order"));
		status_text(inst, status, sizeof(status));
		printf("%-24s %-9s %-8s %6s %8s %-9s %s\n", str(inst, "name"), str(inst, "type"), str(inst, "state"),
		       cpu, mem, autostart, status);
	}
	(void)top;
}

/* ---- ls ---- */

static int do_ls(struct opts *o, const char *type)
{
	char path[64];
	int rc;
	json_object *list;

	snprintf(path, sizeof(path), "/v1/instances%s%s", type ? "?type=" : "", type ? type : "");
	list = call(o, "ls", "GET", path, NULL, NULL, &rc);
	if (list == NULL)
		return rc;
	if (o->json)
		print_json(list);
	else
		print_table(list, false);
	json_object_put(list);
	return 0;
}

/* ---- info ---- */

static void print_info(json_object *inst)
{
	json_object *def = NULL, *u = NULL, *a = NULL, *spec = NULL;
	char status[64], b[16];

	status_text(inst, status, sizeof(status));
	printf("name:      %s\ntype:      %s\nstate:     %s (%s)\n", str(inst, "name"), str(inst, "type"),
	       str(inst, "state"), status);
	if (str(inst, "pid"))
		printf("pid:       %s\n", str(inst, "pid"));
	if (str(inst, "operation"))
		printf("operation: %s\n", str(inst, "operation"));
	if (json_object_object_get_ex(inst, "autostart", &a))
		printf("autostart: %s, order %d, delay %.1f s\n", num(a, "enabled") ? "on" : "off",
		       (int)num(a, "order"), num(a, "delay_s"));
	if (json_object_object_get_ex(inst, "usage", &u)) {
		human_bytes(num(u, "memory_bytes"), b, sizeof(b));
		printf("cpu:       %.2f s (%.1f%%)\nmemory:    %s\n", num(u, "cpu_seconds"), num(u, "cpu_percent"), b);
		printf("disk:      %.0f bytes read, %.0f written\nnetwork:   %.0f bytes in, %.0f out\n",
		       num(u, "disk_read_bytes"), num(u, "disk_write_bytes"), num(u, "net_rx_bytes"),
		       num(u, "net_tx_bytes"));
	}
	if (json_object_object_get_ex(inst, "definition", &def) &&
	    (json_object_object_get_ex(def, "vm", &spec) || json_object_object_get_ex(def, "container", &spec))) {
		json_object_object_foreach(spec, key, val)
		{
			printf("%-10s %s\n", key,
			       json_object_to_json_string_ext(val,
							      JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		}
	}
}

/* ---- create ---- */

static int add_spec_list(json_object *spec, const char *key, const char *text, const char *first, struct opts *o)
{
	json_object *list, *item = json_object_new_object();
	char *copy = strdup(text), *cursor = copy, *k, *v;
	int r = 0;

	(void)o;
	if (!json_object_object_get_ex(spec, key, &list)) {
		list = json_object_new_array();
		json_object_object_add(spec, key, list);
	}
	while (copy && parse_next_option(&cursor, &k, &v) > 0) {
		bool b;
		if (v == NULL) {
			r = casulo_usage_error("create: --%s '%s': KEY=VALUE items expected",
					       strcmp(key, "disks") ? "net" : "disk", text);
			break;
		}
		if (strcmp(k, "readonly") == 0 && parse_bool(v, &b) == 0)
			json_object_object_add(item, k, json_object_new_boolean(b));
		else
			json_object_object_add(item, k, json_object_new_string(v));
	}
	free(copy);
	if (r == 0 && json_object_object_length(item) > 0 && json_object_object_get_ex(item, first, NULL)) {
		json_object_array_add(list, item);
		return 0;
	}
	json_object_put(item);
	return r ? r : casulo_usage_error("create: '%s' needs %s=...", text, first);
}

static int do_create(struct opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
	    COMMON_OPTS,
	    {"kernel", required_argument, NULL, O_KERNEL},
	    {"initrd", required_argument, NULL, O_INITRD},
	    {"cmdline", required_argument, NULL, O_CMDLINE},
	    {"cpus", required_argument, NULL, O_CPUS},
	    {"memory", required_argument, NULL, O_MEMORY},
	    {"disk", required_argument, NULL, O_DISK},
	    {"net", required_argument, NULL, O_NET},
	    {"image", required_argument, NULL, O_IMAGE},
	    {"bundle", required_argument, NULL, O_BUNDLE},
	    {"env", required_argument, NULL, O_ENV},
	    {"tty", no_argument, NULL, 't'},
	    {"pids-limit", required_argument, NULL, O_PIDS},
	    {"autostart", no_argument, NULL, O_AUTOSTART},
	    {"order", required_argument, NULL, O_ORDER},
	    {"delay", required_argument, NULL, O_DELAY},
	    {"stop-timeout", required_argument, NULL, O_STOP_TIMEOUT},
	    {"start", no_argument, NULL, O_START},
	    {NULL, 0, NULL, 0},
	};
	json_object *body, *spec, *autostart = NULL, *j, *env = NULL;
	const char *type, *name;
	bool vm;
	int opt, rc, status = 0;

	if (argc < 3 || (strcmp(argv[1], "vm") != 0 && strcmp(argv[1], "container") != 0)) {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			printf(
			    "Usage: casulo create vm NAME [--kernel PATH] [--initrd PATH] [--cmdline TEXT] [--cpus N]\n"
			    "                  [--memory SIZE] [--disk path=FILE[,readonly=on]]... [--net "
			    "tap=NAME[,mac=MAC]]...\n"
			    "       casulo create container NAME (--image REF | --bundle DIR) [-t] [--env K=V]...\n"
			    "                  [--memory SIZE] [--cpus N] [--pids-limit N] [-- COMMAND [ARG]...]\n"
			    "Both: [--autostart [--order N] [--delay SECONDS]] [--stop-timeout SECONDS] [--start]\n"
			    "A VM without --kernel boots the default guest.  Files named must exist.\n\n%s",
			    common_help);
			return 0;
		}
		return casulo_usage_error("create: 'vm NAME' or 'container NAME' expected");
	}
	type = argv[1];
	vm = strcmp(type, "vm") == 0;
	if (argc < 3 || argv[2][0] == '-')
		return casulo_usage_error("create %s: a NAME expected", type);
	name = argv[2];
	body = json_object_new_object();
	spec = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(name));
	json_object_object_add(body, "type", json_object_new_string(type));
	json_object_object_add(body, type, spec);
	optind = 3;
	while ((opt = getopt_long(argc, argv, "+ht", opts, NULL)) != -1) {
		uint64_t size;
		uint32_t n;
		double x;
		char *end;
		if (common_opt(o, opt))
			continue;
		switch (opt) {
		case O_KERNEL:
			json_object_object_add(spec, "kernel", json_object_new_string(optarg));
			break;
		case O_INITRD:
			json_object_object_add(spec, "initrd", json_object_new_string(optarg));
			break;
		case O_CMDLINE:
			json_object_object_add(spec, "cmdline", json_object_new_string(optarg));
			break;
		case O_CPUS:
			x = strtod(optarg, &end);
			if (*end || !(x > 0))
				return casulo_usage_error("create: --cpus '%s': a number expected", optarg);
			json_object_object_add(spec, "cpus",
					       vm ? json_object_new_int((int)x) : json_object_new_double(x));
			break;
		case O_MEMORY:
			if (parse_size(optarg, &size) < 0 || size < (1u << 20))
				return casulo_usage_error("create: --memory '%s': a size such as 256M expected",
							  optarg);
			json_object_object_add(spec, "memory_mib", json_object_new_int64((int64_t)(size >> 20)));
			break;
		case O_DISK:
			if (!vm)
				return casulo_usage_error("create: --disk is for VMs");
			if ((rc = add_spec_list(spec, "disks", optarg, "path", o)) != 0)
				return rc;
			break;
		case O_NET:
			if (!vm)
				return casulo_usage_error("create: --net is for VMs");
			if ((rc = add_spec_list(spec, "nets", optarg, "tap", o)) != 0)
				return rc;
			break;
		case O_IMAGE:
			json_object_object_add(spec, "image", json_object_new_string(optarg));
			break;
		case O_BUNDLE: {
			char *abs = realpath(optarg, NULL);
			json_object_object_add(spec, "bundle", json_object_new_string(abs ? abs : optarg));
			free(abs);
			break;
		}
		case O_ENV:
			if (env == NULL) {
				env = json_object_new_array();
				json_object_object_add(spec, "env", env);
			}
			json_object_array_add(env, json_object_new_string(optarg));
			break;
		case 't':
			json_object_object_add(spec, "terminal", json_object_new_boolean(true));
			break;
		case O_PIDS:
			if (parse_u32(optarg, &n) < 0)
				return casulo_usage_error("create: --pids-limit '%s': a number expected", optarg);
			json_object_object_add(spec, "pids_limit", json_object_new_int((int)n));
			break;
		case O_AUTOSTART:
		case O_ORDER:
		case O_DELAY:
			if (autostart == NULL) {
				autostart = json_object_new_object();
				json_object_object_add(body, "autostart", autostart);
				json_object_object_add(autostart, "enabled", json_object_new_boolean(true));
			}
			if (opt == O_ORDER) {
				if (parse_u32(optarg, &n) < 0)
					return casulo_usage_error("create: --order '%s': a number expected", optarg);
				json_object_object_add(autostart, "order", json_object_new_int((int)n));
			} else if (opt == O_DELAY) {
				x = strtod(optarg, &end);
				if (*end || x < 0)
					return casulo_usage_error("create: --delay '%s': seconds expected", optarg);
				json_object_object_add(autostart, "delay_s", json_object_new_double(x));
			}
			break;
		case O_STOP_TIMEOUT:
			if (parse_u32(optarg, &n) < 0)
				return casulo_usage_error("create: --stop-timeout '%s': seconds expected", optarg);
			json_object_object_add(body, "stop_timeout_s", json_object_new_int((int)n));
			break;
		case O_START:
			json_object_object_add(body, "start", json_object_new_boolean(true));
			break;
		case 'h':
			return do_create(o, 2, (char *[]){argv[0], (char *)"--help", NULL});
		default:
			json_object_put(body);
			return 2;
		}
	}
	if (optind < argc) {
		json_object *cmd;
		if (vm)
			return casulo_usage_error("create vm: unexpected argument '%s'", argv[optind]);
		cmd = json_object_new_array();
		for (int i = optind; i < argc; i++)
			json_object_array_add(cmd, json_object_new_string(argv[i]));
		json_object_object_add(spec, "command", cmd);
	}
	if ((rc = connect_client(o, "create")) != 0)
		return rc;
	j = call(o, "create", "POST", "/v1/instances", json_object_to_json_string(body), &status, &rc);
	json_object_put(body);
	if (j && status == 202) {
		json_object *op = wait_op(o, "create", j, &rc);
		json_object_put(j);
		j = NULL;
		if (op && json_object_object_get_ex(op, "result", &j))
			j = json_object_get(j);
		json_object_put(op);
	}
	if (j == NULL)
		return rc ? rc : 0;
	if (o->json)
		print_json(j);
	else
		printf("%s %s created%s\n", type, name,
		       strcmp(str(j, "state") ? str(j, "state") : "", "stopped") ? " and started" : "");
	json_object_put(j);
	return 0;
}

/* ---- start, stop, restart, kill, pause, resume, rm ---- */

static int do_action(struct opts *o, const char *verb, const char *name)
{
	char path[256], body[128];
	json_object *op, *done, *result;
	int rc = 0, status = 0;

	snprintf(path, sizeof(path), "/v1/instances/%s/state", name);
	if (o->timeout >= 0)
		snprintf(body, sizeof(body), "{\"action\":\"%s\",\"timeout_s\":%ld}", verb, o->timeout);
	else
		snprintf(body, sizeof(body), "{\"action\":\"%s\"}", verb);
	op = call(o, verb, "PUT", path, body, &status, &rc);
	if (op == NULL)
		return rc;
	if (o->no_wait) {
		if (o->json)
			print_json(op);
		else
			printf("%s: %s operation %s\n", name, verb, str(op, "id"));
		json_object_put(op);
		return 0;
	}
	done = wait_op(o, verb, op, &rc);
	json_object_put(op);
	if (done == NULL)
		return rc;
	if (o->json && json_object_object_get_ex(done, "result", &result))
		print_json(result);
	else if (!o->json)
		printf("%s %s\n", name,
		       strcmp(verb, "stop") == 0      ? "stopped"
		       : strcmp(verb, "kill") == 0    ? "killed"
		       : strcmp(verb, "pause") == 0   ? "paused"
		       : strcmp(verb, "resume") == 0  ? "resumed"
		       : strcmp(verb, "restart") == 0 ? "restarted"
						      : "started");
	json_object_put(done);
	return 0;
}

static int do_rm(struct opts *o, const char *name)
{
	char path[256];
	json_object *j, *done;
	int rc = 0, status = 0;

	snprintf(path, sizeof(path), "/v1/instances/%s%s", name, o->force ? "?force=true" : "");
	j = call(o, "rm", "DELETE", path, NULL, &status, &rc);
	if (rc)
		return rc;
	if (status == 202) {
		done = wait_op(o, "rm", j, &rc);
		json_object_put(done);
	}
	json_object_put(j);
	if (rc == 0 && !o->json)
		printf("%s deleted\n", name);
	return rc;
}

/* ---- console and logs ---- */

static struct termios saved_tty;
static bool tty_raw;

static void restore_tty(void)
{
	if (tty_raw)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	tty_raw = false;
}

/* Until the console closes, or Ctrl-] on a terminal; input that is not a
 * terminal ends with its end, and a second's output after it. */
static int console_loop(struct casulod_ws *ws, bool input, bool skip_first)
{
	const char *data;
	bool first = true;
	double linger_until = 0;

	if (input && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tty) == 0) {
		struct termios raw = saved_tty;
		cfmakeraw(&raw);
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0) {
			tty_raw = true;
			atexit(restore_tty);
		}
	}
	for (;;) {
		struct pollfd p[2] = {{.fd = casulod_ws_fd(ws), .events = POLLIN},
				      {.fd = input ? STDIN_FILENO : -1, .events = POLLIN}};
		ssize_t n;
		poll(p, 2, 50);
		while ((n = casulod_ws_read(ws, &data)) > 0) {
			if (!(skip_first && first))
				fwrite(data, 1, (size_t)n, stdout);
			first = false;
			fflush(stdout);
		}
		if (n < 0)
			break;
		if (linger_until > 0 && (double)time(NULL) + 0.0 >= linger_until)
			break;
		if (p[1].revents & (POLLIN | POLLHUP)) {
			char buf[4096];
			ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
			if (r <= 0) {
				input = false;
				linger_until = (double)time(NULL) + 2;
				continue;
			}
			/* Ctrl-] detaches, as telnet and virsh do. */
			if (tty_raw && memchr(buf, 0x1d, (size_t)r))
				break;
			if (casulod_ws_send(ws, buf, (size_t)r) < 0)
				break;
		}
	}
	restore_tty();
	return 0;
}

static int do_console(struct opts *o, const char *name)
{
	struct casulod_ws *ws = NULL;
	struct err *e = NULL;
	char path[256];

	snprintf(path, sizeof(path), "/v1/instances/%s/console%s", name, o->read_only ? "?mode=ro" : "");
	if (casulod_ws_open(&o->c, path, &ws, &e) < 0) {
		fprintf(stderr, "casulo console: %s\n", e->msg);
		err_free(&e);
		return 1;
	}
	if (isatty(STDIN_FILENO) && !o->read_only)
		fprintf(stderr, "(console of %s: Ctrl-] detaches)\r\n", name);
	console_loop(ws, !o->read_only, false);
	casulod_ws_close(ws);
	return 0;
}

static int do_logs(struct opts *o, const char *name)
{
	struct casulod_client *c = &o->c;
	struct err *e = NULL;
	char path[256], *resp = NULL;
	int status;

	if (o->lines > 0)
		snprintf(path, sizeof(path), "/v1/instances/%s/logs?lines=%ld", name, o->lines);
	else
		snprintf(path, sizeof(path), "/v1/instances/%s/logs", name);
	if (casulod_request(c, "GET", path, NULL, &status, &resp, &e) < 0) {
		fprintf(stderr, "casulo logs: %s\n", e->msg);
		err_free(&e);
		return 1;
	}
	if (status != 200) {
		char *msg = casulod_error_text(status, resp);
		fprintf(stderr, "casulo logs: %s\n", msg);
		free(msg);
		free(resp);
		return 1;
	}
	fwrite(resp, 1, strlen(resp), stdout);
	fflush(stdout);
	free(resp);
	if (o->follow) {
		struct casulod_ws *ws = NULL;
		snprintf(path, sizeof(path), "/v1/instances/%s/console?mode=ro", name);
		if (casulod_ws_open(c, path, &ws, &e) < 0) {
			/* Not running: the logs are all there is. */
			err_free(&e);
			return 0;
		}
		console_loop(ws, false, true); /* its first message is the history, printed above */
		casulod_ws_close(ws);
	}
	return 0;
}

/* ---- top ---- */

static int by_cpu(const void *a, const void *b)
{
	json_object *x = *(json_object *const *)a, *y = *(json_object *const *)b, *ux = NULL, *uy = NULL;
	double cx, cy;

	json_object_object_get_ex(x, "usage", &ux);
	json_object_object_get_ex(y, "usage", &uy);
	cx = num(ux, "cpu_percent");
	cy = num(uy, "cpu_percent");
	return cx < cy ? 1 : cx > cy ? -1 : strcmp(str(x, "name"), str(y, "name"));
}

static int do_top(struct opts *o)
{
	bool tty = isatty(STDOUT_FILENO) && !o->json && !o->once;
	int rc = 0;

	for (;;) {
		json_object *list = call(o, "top", "GET", "/v1/instances", NULL, NULL, &rc), *running;
		if (list == NULL)
			return rc;
		running = json_object_new_array();
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			json_object *inst = json_object_array_get_idx(list, i);
			if (json_object_object_get_ex(inst, "usage", NULL))
				json_object_array_add(running, json_object_get(inst));
		}
		json_object_array_sort(running, by_cpu);
		if (o->json) {
			json_object *sample = json_object_new_array();
			for (size_t i = 0; i < json_object_array_length(running); i++) {
				json_object *inst = json_object_array_get_idx(running, i), *u,
					    *row = json_object_new_object();
				json_object_object_get_ex(inst, "usage", &u);
				json_object_object_add(row, "name", json_object_new_string(str(inst, "name")));
				json_object_object_add(row, "type", json_object_new_string(str(inst, "type")));
				json_object_object_add(row, "state", json_object_new_string(str(inst, "state")));
				json_object_object_add(row, "usage", json_object_get(u));
				json_object_array_add(sample, row);
			}
			print_json(sample);
			json_object_put(sample);
		} else {
			if (tty)
				printf("\033[H\033[2J");
			printf("%-24s %-9s %-8s %7s %9s %10s %10s\n", "NAME", "TYPE", "STATE", "CPU%", "MEMORY",
			       "DISK R/W", "NET RX/TX");
			for (size_t i = 0; i < json_object_array_length(running); i++) {
				json_object *inst = json_object_array_get_idx(running, i), *u;
				char mem[16], dr[16], dw[16], nr[16], nt[16], disk[40], net[40];
				json_object_object_get_ex(inst, "usage", &u);
				human_bytes(num(u, "memory_bytes"), mem, sizeof(mem));
				human_bytes(num(u, "disk_read_bytes"), dr, sizeof(dr));
				human_bytes(num(u, "disk_write_bytes"), dw, sizeof(dw));
				human_bytes(num(u, "net_rx_bytes"), nr, sizeof(nr));
				human_bytes(num(u, "net_tx_bytes"), nt, sizeof(nt));
				snprintf(disk, sizeof(disk), "%s/%s", dr, dw);
				snprintf(net, sizeof(net), "%s/%s", nr, nt);
				printf("%-24s %-9s %-8s %7.1f %9s %10s %10s\n", str(inst, "name"), str(inst, "type"),
				       str(inst, "state"), num(u, "cpu_percent"), mem, disk, net);
			}
			if (json_object_array_length(running) == 0)
				printf("(nothing runs)\n");
		}
		fflush(stdout);
		json_object_put(running);
		json_object_put(list);
		if (o->once)
			return 0;
		usleep((useconds_t)(o->interval * 1e6));
	}
}

/* ---- autostart ---- */

static int do_autostart(struct opts *o, bool on, const char *name, long order, double delay)
{
	json_object *body = json_object_new_object(), *a = json_object_new_object(), *j;
	char path[256];
	int rc;

	json_object_object_add(a, "enabled", json_object_new_boolean(on));
	if (order >= 0)
		json_object_object_add(a, "order", json_object_new_int((int)order));
	if (delay >= 0)
		json_object_object_add(a, "delay_s", json_object_new_double(delay));
	json_object_object_add(body, "autostart", a);
	snprintf(path, sizeof(path), "/v1/instances/%s", name);
	j = call(o, "autostart", "PATCH", path, json_object_to_json_string(body), NULL, &rc);
	json_object_put(body);
	if (j == NULL)
		return rc;
	if (o->json)
		print_json(j);
	else
		printf("%s: autostart %s\n", name, on ? "on" : "off");
	json_object_put(j);
	return 0;
}

/* ---- the verbs' command line ---- */

static void verb_usage(const char *verb)
{
	printf("Usage:\n"
	       "  casulo ls [--type vm|container]               VMs and containers, with CPU and memory\n"
	       "  casulo create vm|container NAME ...           define one (casulo create --help)\n"
	       "  casulo start|stop|restart|kill NAME...        stop: gently, then after --timeout S at once\n"
	       "  casulo pause|resume NAME...\n"
	       "  casulo rm [--force] NAME...                   --force stops a running one first\n"
	       "  casulo info NAME                              state, usage, definition\n"
	       "  casulo console [--read-only] NAME             the console (Ctrl-] detaches)\n"
	       "  casulo logs [-n LINES] [-f] NAME              what the console wrote\n"
	       "  casulo top [--once] [--interval S]            live CPU and memory\n"
	       "  casulo autostart on|off NAME [--order N] [--delay S]\n"
	       "Operations wait for their end unless --no-wait.\n\n%s",
	       common_help);
	(void)verb;
}

int casulo_instances(int argc, char **argv)
{
	static const struct option opts[] = {
	    COMMON_OPTS,
	    {"force", no_argument, NULL, O_FORCE},
	    {"no-wait", no_argument, NULL, O_NO_WAIT},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"read-only", no_argument, NULL, O_READ_ONLY},
	    {"follow", no_argument, NULL, 'f'},
	    {"lines", required_argument, NULL, 'n'},
	    {"once", no_argument, NULL, O_ONCE},
	    {"interval", required_argument, NULL, O_INTERVAL},
	    {"type", required_argument, NULL, O_TYPE},
	    {"order", required_argument, NULL, O_ORDER},
	    {"delay", required_argument, NULL, O_DELAY},
	    {NULL, 0, NULL, 0},
	};
	struct opts o = {.timeout = -1, .interval = 1.0};
	const char *verb = argv[0], *type = NULL;
	long order = -1;
	double delay = -1;
	int opt, rc = 0, first;
	uint32_t n;
	char *end;

	if (strcmp(verb, "create") == 0) {
		rc = do_create(&o, argc, argv);
		casulod_client_clear(&o.c);
		return rc;
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "hfn:", opts, NULL)) != -1) {
		if (common_opt(&o, opt))
			continue;
		switch (opt) {
		case O_FORCE:
			o.force = true;
			break;
		case O_NO_WAIT:
			o.no_wait = true;
			break;
		case O_TIMEOUT:
			if (parse_u32(optarg, &n) < 0)
				return casulo_usage_error("%s: --timeout '%s': seconds expected", verb, optarg);
			o.timeout = n;
			break;
		case O_READ_ONLY:
			o.read_only = true;
			break;
		case 'f':
			o.follow = true;
			break;
		case 'n':
			if (parse_u32(optarg, &n) < 0 || n == 0)
				return casulo_usage_error("%s: --lines '%s': a number expected", verb, optarg);
			o.lines = n;
			break;
		case O_ONCE:
			o.once = true;
			break;
		case O_INTERVAL:
			o.interval = strtod(optarg, &end);
			if (*end || !(o.interval >= 0.1))
				return casulo_usage_error("%s: --interval '%s': seconds (0.1 or more) expected", verb,
							  optarg);
			break;
		case O_TYPE:
			if (strcmp(optarg, "vm") != 0 && strcmp(optarg, "container") != 0)
				return casulo_usage_error("%s: --type: vm or container", verb);
			type = optarg;
			break;
		case O_ORDER:
			if (parse_u32(optarg, &n) < 0)
				return casulo_usage_error("%s: --order '%s': a number expected", verb, optarg);
			order = n;
			break;
		case O_DELAY:
			delay = strtod(optarg, &end);
			if (*end || delay < 0)
				return casulo_usage_error("%s: --delay '%s': seconds expected", verb, optarg);
			break;
		case 'h':
			verb_usage(verb);
			return 0;
		default:
			return 2;
		}
	}
	first = optind;
	if (strcmp(verb, "autostart") == 0) {
		if (argc - first != 2 || (strcmp(argv[first], "on") != 0 && strcmp(argv[first], "off") != 0))
			return casulo_usage_error("autostart: 'on NAME' or 'off NAME' expected");
	} else if (strcmp(verb, "ls") == 0 || strcmp(verb, "top") == 0) {
		if (first < argc)
			return casulo_usage_error("%s: unexpected argument '%s'", verb, argv[first]);
	} else if (first >= argc) {
		return casulo_usage_error("%s: a NAME expected", verb);
	} else if ((strcmp(verb, "info") == 0 || strcmp(verb, "console") == 0 || strcmp(verb, "logs") == 0) &&
		   argc - first != 1) {
		return casulo_usage_error("%s: one NAME expected", verb);
	}
	if ((rc = connect_client(&o, verb)) != 0)
		return rc;
	if (strcmp(verb, "ls") == 0) {
		rc = do_ls(&o, type);
	} else if (strcmp(verb, "top") == 0) {
		rc = do_top(&o);
	} else if (strcmp(verb, "autostart") == 0) {
		rc = do_autostart(&o, strcmp(argv[first], "on") == 0, argv[first + 1], order, delay);
	} else if (strcmp(verb, "info") == 0) {
		char path[256];
		json_object *j;
		snprintf(path, sizeof(path), "/v1/instances/%s", argv[first]);
		j = call(&o, verb, "GET", path, NULL, NULL, &rc);
		if (j && o.json)
			print_json(j);
		else if (j)
			print_info(j);
		json_object_put(j);
	} else if (strcmp(verb, "console") == 0) {
		rc = do_console(&o, argv[first]);
	} else if (strcmp(verb, "logs") == 0) {
		rc = do_logs(&o, argv[first]);
	} else {
		for (int i = first; i < argc; i++) {
			int r = strcmp(verb, "rm") == 0 ? do_rm(&o, argv[i]) : do_action(&o, verb, argv[i]);
			if (r)
				rc = r;
		}
	}
	casulod_client_clear(&o.c);
	return rc;
}
