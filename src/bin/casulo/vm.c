/*
 * `casulo vm VERB --api-socket PATH ...`: one VM's control API, by hand
 * (human-readable output) or by program (--json: the API's JSON as is).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "api/client.h"
#include "casulo.h"
#include "common/macro.h"
#include "common/migration-address.h"
#include "common/parse.h"
#include "common/ratelimit-json.h"

struct vm_opts {
	const char *socket;
	const char *path;
	const char *to;
	const char *target;
	uint32_t downtime_ms;
	bool json;
	bool wait;
	bool stats;
	const char *device;
	const char *rate, *rx_rate, *tx_rate;
	json_object *pins; /* affinity: [{"id", "host_cpus"}] */
	const char *vmm_cpus;
};

static void vm_usage(FILE *f)
{
	fprintf(f, "Usage: casulo vm VERB --api-socket PATH [OPTIONS]\n"
		   "Control one VM through the API socket of its casulo-vmm.\n"
		   "\n"
		   "Verbs:\n"
		   "  info                    state, uptime and configuration\n"
		   "  pause, resume           stop or restart the vCPUs and devices\n"
		   "  shutdown                ask the guest to power off (ACPI power button)\n"
		   "  stop                    end the VM at once\n"
		   "  snapshot --path DIR     write the VM's state and memory to DIR\n"
		   "  restore --path DIR      load a snapshot into a VMM started with --wait\n"
		   "  migrate --to tcp:HOST:PORT [--downtime MS] [--no-wait]\n"
		   "                          live-migrate to a VMM started with --incoming\n"
		   "  balloon --target SIZE   set the balloon (memory taken from the guest)\n"
		   "  balloon --stats         the guest's memory statistics\n"
		   "  stats                   metrics: exits per vCPU, I/O per device, memory\n"
		   "  rate-limit              the rate limits of every disk and network interface\n"
		   "  rate-limit --device ID (--rate SPEC | [--rx-rate SPEC] [--tx-rate SPEC])\n"
		   "                          change a disk's (--rate) or an interface's limits;\n"
		   "                          SPEC as --disk rate= takes it (10M/s:500ops/s, off)\n"
		   "  affinity [--vcpu N=CPUS]... [--vmm CPUS]\n"
		   "                          the host CPUs of each vCPU thread and of the VMM's\n"
		   "                          other threads; with options, pin them (CPUS: 0-3,8)\n"
		   "\n"
		   "Options:\n"
		   "  --api-socket PATH       the VMM's --api-socket (required)\n"
		   "  --json                  print the API's JSON instead of text\n"
		   "  -h, --help              show this help\n");
}

/* Send one request; returns the parsed JSON body (or NULL for none) and
 * prints the error and returns an exit status through *rc on failure. */
static json_object *call(const struct vm_opts *o, const char *verb, const char *method, const char *path,
			 const char *body, int *rc)
{
	struct err *e = NULL;
	char *resp = NULL;
	json_object *j = NULL, *msg;
	int status;

	*rc = 0;
	if (api_request(o->socket, method, path, body, &status, &resp, &e) < 0) {
		fprintf(stderr, "casulo: vm %s: %s\n", verb, e->msg);
		err_free(&e);
		*rc = 1;
		return NULL;
	}
	if (resp && *resp)
		j = json_tokener_parse(resp);
	if (status >= 300) {
		if (j && json_object_object_get_ex(j, "error", &msg))
			fprintf(stderr, "casulo: vm %s: %s (HTTP %d)\n", verb, json_object_get_string(msg), status);
		else
			fprintf(stderr, "casulo: vm %s: HTTP %d\n", verb, status);
		json_object_put(j);
		free(resp);
		*rc = 1;
		return NULL;
	}
	if (o->json && resp && *resp)
		printf("%s\n", resp);
	free(resp);
	return j;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "?";
}

static void print_info(json_object *j)
{
	json_object *cfg, *v;

	printf("state:   %s\n", str(j, "state"));
	if (json_object_object_get_ex(j, "uptime_seconds", &v))
		printf("uptime:  %.1f s\n", json_object_get_double(v));
	if (json_object_object_get_ex(j, "config", &cfg)) {
		printf("vcpus:   %s\n", str(cfg, "vcpus"));
		printf("memory:  %s MiB\n", str(cfg, "memory_mib"));
		printf("kernel:  %s\n", str(cfg, "kernel"));
		printf("cmdline: %s\n", str(cfg, "cmdline"));
		if (json_object_object_get_ex(cfg, "disks", &v))
			for (size_t i = 0; i < json_object_array_length(v); i++)
				printf("disk %zu:  %s\n", i, str(json_object_array_get_idx(v, i), "path"));
		if (json_object_object_get_ex(cfg, "nets", &v))
			for (size_t i = 0; i < json_object_array_length(v); i++)
				printf("net %zu:   %s\n", i, str(json_object_array_get_idx(v, i), "tap"));
	}
}

/* Print a flat JSON object as "key: value" lines, nested ones indented. */
static void print_tree(json_object *j, int depth)
{
	json_object_object_foreach(j, key, val)
	{
		if (json_object_is_type(val, json_type_object)) {
			printf("%*s%s:\n", depth * 2, "", key);
			print_tree(val, depth + 1);
		} else if (json_object_is_type(val, json_type_array)) {
			for (size_t i = 0; i < json_object_array_length(val); i++) {
				json_object *item = json_object_array_get_idx(val, i);
				printf("%*s%s[%zu]:\n", depth * 2, "", key, i);
				if (json_object_is_type(item, json_type_object))
					print_tree(item, depth + 1);
				else
					printf("%*s%s\n", depth * 2 + 2, "", json_object_get_string(item));
			}
		} else {
			printf("%*s%s: %s\n", depth * 2, "", key, json_object_get_string(val));
		}
	}
}

static int simple_put(const struct vm_opts *o, const char *verb, const char *path, const char *body, const char *done)
{
	int rc;
	json_object *j = call(o, verb, "PUT", path, body, &rc);

	json_object_put(j);
	if (rc == 0 && !o->json)
		printf("%s\n", done);
	return rc;
}

static char *json_body(const char *key, const char *value)
{
	json_object *o = json_object_new_object();
	char *s;

	json_object_object_add(o, key, json_object_new_string(value));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

/* One limit of the CLI's SPEC form into the API's JSON. */
static int add_rate(json_object *body, const char *key, const char *spec)
{
	struct ratelimit_config c;
	char why[160];

	if (spec == NULL)
		return 0;
	if (ratelimit_config_parse(spec, &c, why, sizeof(why)) < 0)
		return casulo_usage_error("vm rate-limit: --%s '%s': %s",
					  strcmp(key, "rate") == 0 ? "rate"
					  : key[0] == 'r'	   ? "rx-rate"
								   : "tx-rate",
					  spec, why);
	json_object_object_add(body, key, ratelimit_config_to_json(&c));
	return 0;
}

static void print_rate_limits(json_object *j)
{
	static const char *const names[] = {"rate", "rx_rate", "tx_rate"};
	json_object *devs, *v;
	char text[160];

	if (!json_object_object_get_ex(j, "devices", &devs))
		return;
	for (size_t i = 0; i < json_object_array_length(devs); i++) {
		json_object *d = json_object_array_get_idx(devs, i);
		printf("%s (%s):", str(d, "device"), str(d, "kind"));
		for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
			struct ratelimit_config c;
			if (!json_object_object_get_ex(d, names[k], &v))
				continue;
			if (!ratelimit_config_from_json(v, &c, text, sizeof(text)))
				snprintf(text, sizeof(text), "?");
			else
				ratelimit_config_format(&c, text, sizeof(text));
			printf(" %s=%s", names[k], text);
		}
		printf("\n");
	}
}

static int rate_limit(const struct vm_opts *o)
{
	json_object *body, *j;
	int rc;

	if (o->device == NULL) {
		if (o->rate || o->rx_rate || o->tx_rate)
			return casulo_usage_error("vm rate-limit: --device ID says which device the limits are for");
		j = call(o, "rate-limit", "GET", "/rate-limits", NULL, &rc);
		if (rc == 0 && !o->json)
			print_rate_limits(j);
		json_object_put(j);
		return rc;
	}
	if (!o->rate && !o->rx_rate && !o->tx_rate)
		return casulo_usage_error("vm rate-limit: give --rate SPEC (a disk), or --rx-rate/--tx-rate SPEC "
					  "(a network interface)");
	body = json_object_new_object();
	json_object_object_add(body, "device", json_object_new_string(o->device));
	if ((rc = add_rate(body, "rate", o->rate)) != 0 || (rc = add_rate(body, "rx_rate", o->rx_rate)) != 0 ||
	    (rc = add_rate(body, "tx_rate", o->tx_rate)) != 0) {
		json_object_put(body);
		return rc;
	}
	rc = simple_put(o, "rate-limit", "/rate-limits", json_object_to_json_string(body), "rate limits set");
	json_object_put(body);
	return rc;
}

/* "N=CPUS" of --vcpu, added to o->pins. */
static int add_pin(struct vm_opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char id_text[16];
	uint32_t id;
	json_object *pin;

	if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof(id_text) || eq[1] == '\0')
		return casulo_usage_error("vm affinity: --vcpu '%s': expected N=CPUS (0=2-3)", arg);
	memcpy(id_text, arg, (size_t)(eq - arg));
	id_text[eq - arg] = '\0';
	if (parse_u32(id_text, &id) < 0)
		return casulo_usage_error("vm affinity: --vcpu '%s': '%s' is not a vCPU number", arg, id_text);
	if (o->pins == NULL)
		o->pins = json_object_new_array();
	pin = json_object_new_object();
	json_object_object_add(pin, "id", json_object_new_int64(id));
	json_object_object_add(pin, "host_cpus", json_object_new_string(eq + 1));
	json_object_array_add(o->pins, pin);
	return 0;
}

static void print_affinity(json_object *j)
{
	json_object *vcpus, *vmm, *v;

	printf("host CPUs: %s\n", str(j, "host_cpus"));
	if (json_object_object_get_ex(j, "vcpus", &vcpus))
		for (size_t i = 0; i < json_object_array_length(vcpus); i++) {
			json_object *c = json_object_array_get_idx(vcpus, i);
			bool pinned = json_object_object_get_ex(c, "pinned", &v) && json_object_get_boolean(v);
			printf("vcpu %s (thread %s): %s%s\n", str(c, "id"), str(c, "thread_id"), str(c, "host_cpus"),
			       pinned ? " (pinned)" : "");
		}
	if (json_object_object_get_ex(j, "vmm", &vmm)) {
		bool pinned = json_object_object_get_ex(vmm, "pinned", &v) && json_object_get_boolean(v);
		printf("vmm threads: %s%s\n", str(vmm, "host_cpus"), pinned ? " (pinned)" : "");
	}
}

static int affinity(struct vm_opts *o)
{
	json_object *body = NULL, *j;
	int rc;

	if (o->pins || o->vmm_cpus) {
		body = json_object_new_object();
		if (o->pins)
			json_object_object_add(body, "vcpus", json_object_get(o->pins));
		if (o->vmm_cpus)
			json_object_object_add(body, "vmm_host_cpus", json_object_new_string(o->vmm_cpus));
	}
	j = call(o, "affinity", body ? "PATCH" : "GET", "/vm/affinity", body ? json_object_to_json_string(body) : NULL,
		 &rc);
	json_object_put(body);
	if (rc == 0 && !o->json)
		print_affinity(j);
	json_object_put(j);
	return rc;
}

static int migrate(const struct vm_opts *o)
{
	json_object *body, *j, *v;
	struct err *e = NULL;
	char to[512];
	int rc;

	if (o->to == NULL) /* vm_main() refuses migrate without --to */
		return 1;
	/* casulo-vmm takes numeric addresses only: a name is resolved here. */
	if (migration_address_resolve(o->to, to, sizeof(to), &e) < 0) {
		fprintf(stderr, "casulo: vm migrate: %s\n", e->msg);
		err_free(&e);
		return 1;
	}
	body = json_object_new_object();
	json_object_object_add(body, "destination", json_object_new_string(to));
	json_object_object_add(body, "downtime_ms", json_object_new_int((int)o->downtime_ms));
	/* With --wait (the default) the API answers when the migration has
	 * ended: the source VMM exits right after a successful one. */
	json_object_object_add(body, "wait", json_object_new_boolean(o->wait));
	j = call(o, "migrate", "PUT", "/migration/send", json_object_to_json_string(body), &rc);
	json_object_put(body);
	if (rc == 0 && !o->json) {
		if (!o->wait) {
			printf("migration started\n");
		} else {
			printf("migration completed");
			if (json_object_object_get_ex(j, "rounds", &v))
				printf(": %d rounds", json_object_get_int(v));
			if (json_object_object_get_ex(j, "bytes_sent", &v))
				printf(", %.1f MiB sent", (double)json_object_get_int64(v) / (1 << 20));
			if (json_object_object_get_ex(j, "total_ms", &v))
				printf(", %.0f ms in all", json_object_get_double(v));
			if (json_object_object_get_ex(j, "downtime_ms", &v))
				printf(", downtime %.1f ms", json_object_get_double(v));
			printf("\n");
		}
	}
	json_object_put(j);
	return rc;
}

int casulo_vm(int argc, char **argv)
{
	enum {
		O_SOCKET = 256,
		O_JSON,
		O_PATH,
		O_TO,
		O_DOWNTIME,
		O_NO_WAIT,
		O_TARGET,
		O_STATS,
		O_VCPU,
		O_VMM,
		O_DEVICE,
		O_RATE,
		O_RX_RATE,
		O_TX_RATE
	};
	static const struct option opts[] = {
	    {"api-socket", required_argument, NULL, O_SOCKET},
	    {"json", no_argument, NULL, O_JSON},
	    {"path", required_argument, NULL, O_PATH},
	    {"to", required_argument, NULL, O_TO},
	    {"downtime", required_argument, NULL, O_DOWNTIME},
	    {"no-wait", no_argument, NULL, O_NO_WAIT},
	    {"target", required_argument, NULL, O_TARGET},
	    {"stats", no_argument, NULL, O_STATS},
	    {"device", required_argument, NULL, O_DEVICE},
	    {"rate", required_argument, NULL, O_RATE},
	    {"rx-rate", required_argument, NULL, O_RX_RATE},
	    {"tx-rate", required_argument, NULL, O_TX_RATE},
	    {"vcpu", required_argument, NULL, O_VCPU},
	    {"vmm", required_argument, NULL, O_VMM},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vm_opts o = {.downtime_ms = 100, .wait = true};
	const char *verb;
	json_object *j;
	char *body;
	int opt, rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		vm_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	verb = argv[1];
	optind = 2;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case O_SOCKET:
			o.socket = optarg;
			break;
		case O_JSON:
			o.json = true;
			break;
		case O_PATH:
			o.path = optarg;
			break;
		case O_TO:
			o.to = optarg;
			break;
		case O_DOWNTIME:
			if (parse_u32(optarg, &o.downtime_ms) < 0)
				return casulo_usage_error("vm %s: --downtime '%s' is not a number of milliseconds",
							  verb, optarg);
			break;
		case O_NO_WAIT:
			o.wait = false;
			break;
		case O_TARGET:
			o.target = optarg;
			break;
		case O_STATS:
			o.stats = true;
			break;
		case O_DEVICE:
			o.device = optarg;
			break;
		case O_RATE:
			o.rate = optarg;
			break;
		case O_RX_RATE:
			o.rx_rate = optarg;
			break;
		case O_TX_RATE:
			o.tx_rate = optarg;
			break;
		case O_VCPU:
			if (add_pin(&o, optarg) != 0) {
				json_object_put(o.pins);
				return 2;
			}
			break;
		case O_VMM:
			o.vmm_cpus = optarg;
			break;
		case 'h':
			vm_usage(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc || o.socket == NULL || ((o.pins || o.vmm_cpus) && strcmp(verb, "affinity") != 0)) {
		json_object_put(o.pins);
		if (optind < argc)
			return casulo_usage_error("vm %s: unexpected argument '%s'", verb, argv[optind]);
		if (o.socket == NULL)
			return casulo_usage_error("vm %s: --api-socket PATH is required", verb);
		return casulo_usage_error("vm %s: --vcpu and --vmm go with affinity", verb);
	}
	if (strcmp(verb, "affinity") == 0) {
		rc = affinity(&o);
		json_object_put(o.pins);
		return rc;
	}

	if (strcmp(verb, "info") == 0) {
		j = call(&o, verb, "GET", "/vm", NULL, &rc);
		if (rc == 0 && !o.json)
			print_info(j);
		json_object_put(j);
		return rc;
	}
	if (strcmp(verb, "pause") == 0)
		return simple_put(&o, verb, "/vm/state", "{\"state\":\"paused\"}", "paused");
	if (strcmp(verb, "resume") == 0)
		return simple_put(&o, verb, "/vm/state", "{\"state\":\"running\"}", "running");
	if (strcmp(verb, "shutdown") == 0)
		return simple_put(&o, verb, "/vm/shutdown", NULL, "shutdown requested");
	if (strcmp(verb, "stop") == 0)
		return simple_put(&o, verb, "/vm/stop", NULL, "stopped");
	if (strcmp(verb, "snapshot") == 0 || strcmp(verb, "restore") == 0) {
		if (o.path == NULL)
			return casulo_usage_error("vm %s: --path DIR is required", verb);
		body = json_body("path", o.path);
		rc = simple_put(&o, verb, strcmp(verb, "snapshot") == 0 ? "/snapshot/create" : "/snapshot/load", body,
				strcmp(verb, "snapshot") == 0 ? "snapshot written" : "snapshot loaded");
		free(body);
		return rc;
	}
	if (strcmp(verb, "migrate") == 0) {
		if (o.to == NULL)
			return casulo_usage_error("vm migrate: --to tcp:HOST:PORT is required");
		return migrate(&o);
	}
	if (strcmp(verb, "balloon") == 0) {
		uint64_t size;
		char num[64];
		if (o.stats) {
			j = call(&o, verb, "GET", "/balloon/statistics", NULL, &rc);
			if (rc == 0 && !o.json)
				print_tree(j, 0);
			json_object_put(j);
			return rc;
		}
		if (o.target == NULL || parse_size(o.target, &size) < 0)
			return casulo_usage_error("vm balloon: --target SIZE (e.g. 128M) or --stats is required");
		snprintf(num, sizeof(num), "{\"target_mib\":%" PRIu64 "}", size >> 20);
		return simple_put(&o, verb, "/balloon", num, "balloon target set");
	}
	if (strcmp(verb, "rate-limit") == 0)
		return rate_limit(&o);
	if (strcmp(verb, "stats") == 0) {
		j = call(&o, verb, "GET", "/metrics", NULL, &rc);
		if (rc == 0 && !o.json)
			print_tree(j, 0);
		json_object_put(j);
		return rc;
	}
	return casulo_usage_error("vm: unknown verb '%s'", verb);
}
