#include "vmc/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json-doc.h"
#include "common/strv.h"

static const char *const type_names[VMC_TYPE_MAX] = {
    [VMC_HELLO] = "HELLO",   [VMC_REQUEST] = "REQUEST", [VMC_REPLY] = "REPLY",	 [VMC_STDIN] = "STDIN",
    [VMC_STDOUT] = "STDOUT", [VMC_STDERR] = "STDERR",	[VMC_RESIZE] = "RESIZE", [VMC_SIGNAL] = "SIGNAL",
    [VMC_EXIT] = "EXIT",     [VMC_OOM] = "OOM",
};

const char *vmc_type_name(unsigned type)
{
	return type > 0 && type < VMC_TYPE_MAX ? type_names[type] : "unknown";
}

/* Who may send each type, and how long its payload may be (exact when
 * fixed). */
static const struct {
	enum vmc_side from;
	uint32_t max;
	bool fixed;
} type_rules[VMC_TYPE_MAX] = {
    [VMC_HELLO] = {VMC_FROM_GUEST, VMC_JSON_MAX, false},
    [VMC_REQUEST] = {VMC_FROM_HOST, VMC_JSON_MAX, false},
    [VMC_REPLY] = {VMC_FROM_GUEST, VMC_JSON_MAX, false},
    [VMC_STDIN] = {VMC_FROM_HOST, VMC_DATA_MAX, false},
    [VMC_STDOUT] = {VMC_FROM_GUEST, VMC_DATA_MAX, false},
    [VMC_STDERR] = {VMC_FROM_GUEST, VMC_DATA_MAX, false},
    [VMC_RESIZE] = {VMC_FROM_HOST, 4, true},
    [VMC_SIGNAL] = {VMC_FROM_HOST, 4, true},
    [VMC_EXIT] = {VMC_FROM_GUEST, 4, true},
    [VMC_OOM] = {VMC_FROM_GUEST, 0, true},
};

void vmc_u32_encode(uint8_t out[4], uint32_t v)
{
	out[0] = (uint8_t)v;
	out[1] = (uint8_t)(v >> 8);
	out[2] = (uint8_t)(v >> 16);
	out[3] = (uint8_t)(v >> 24);
}

uint32_t vmc_u32_decode(const uint8_t in[4])
{
	return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}

void vmc_header_encode(uint8_t out[VMC_HEADER_SIZE], uint16_t type, uint32_t len)
{
	vmc_u32_encode(out, len);
	out[4] = (uint8_t)type;
	out[5] = (uint8_t)(type >> 8);
	out[6] = 0;
	out[7] = 0;
}

int vmc_header_decode(const uint8_t in[VMC_HEADER_SIZE], enum vmc_side from, struct vmc_header *h, char *why,
		      size_t why_size)
{
	h->len = vmc_u32_decode(in);
	h->type = (uint16_t)(in[4] | in[5] << 8);
	h->flags = (uint16_t)(in[6] | in[7] << 8);
	if (h->type == 0 || h->type >= VMC_TYPE_MAX) {
		snprintf(why, why_size, "frame type %u unknown", h->type);
		return -EPROTO;
	}
	if (type_rules[h->type].from != from) {
		snprintf(why, why_size, "frame %s sent by the %s", vmc_type_name(h->type),
			 from == VMC_FROM_HOST ? "host" : "guest");
		return -EPROTO;
	}
	if (h->flags != 0) {
		snprintf(why, why_size, "frame %s with flags 0x%x", vmc_type_name(h->type), h->flags);
		return -EPROTO;
	}
	if (type_rules[h->type].fixed ? h->len != type_rules[h->type].max : h->len > type_rules[h->type].max) {
		snprintf(why, why_size, "frame %s of %u bytes (%s %u)", vmc_type_name(h->type), h->len,
			 type_rules[h->type].fixed ? "must be" : "at most", type_rules[h->type].max);
		return -EPROTO;
	}
	return 0;
}

int vmc_signal_decode(const uint8_t *p, int *sig, char *why, size_t why_size)
{
	uint32_t v = vmc_u32_decode(p);

	if (v < 1 || v > 64) {
		snprintf(why, why_size, "SIGNAL %u out of range (1-64)", v);
		return -EPROTO;
	}
	*sig = (int)v;
	return 0;
}

int vmc_exit_decode(const uint8_t *p, int *status, char *why, size_t why_size)
{
	uint32_t v = vmc_u32_decode(p);

	if (v > 255) {
		snprintf(why, why_size, "EXIT status %u out of range (0-255)", v);
		return -EPROTO;
	}
	*status = (int)v;
	return 0;
}

int vmc_resize_decode(const uint8_t *p, struct vmc_resize *r, char *why, size_t why_size)
{
	r->rows = (uint16_t)(p[0] | p[1] << 8);
	r->cols = (uint16_t)(p[2] | p[3] << 8);
	if (r->rows == 0 || r->cols == 0) {
		snprintf(why, why_size, "RESIZE to %ux%u", r->rows, r->cols);
		return -EPROTO;
	}
	return 0;
}

void vmc_reader_init(struct vmc_reader *r, enum vmc_side from)
{
	memset(r, 0, sizeof(*r));
	r->from = from;
}

void vmc_reader_free(struct vmc_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = r->have = 0;
}

static int reader_reserve(struct vmc_reader *r, size_t need)
{
	uint8_t *nb;
	size_t cap;

	if (need <= r->cap)
		return 0;
	cap = r->cap ? r->cap : 4096;
	while (cap < need)
		cap *= 2;
	nb = realloc(r->buf, cap);
	if (nb == NULL)
		return -ENOMEM;
	r->buf = nb;
	r->cap = cap;
	return 0;
}

int vmc_reader_feed(struct vmc_reader *r, const uint8_t *data, size_t len, size_t *used, struct vmc_header *h,
		    const uint8_t **payload, char *why, size_t why_size)
{
	size_t want, take;
	int ret;

	*used = 0;
	/* A frame handed out last time is done with. */
	if (r->have_header && r->have == VMC_HEADER_SIZE + r->h.len) {
		r->have = 0;
		r->have_header = false;
	}
	for (;;) {
		want = r->have_header ? VMC_HEADER_SIZE + r->h.len : VMC_HEADER_SIZE;
		if ((ret = reader_reserve(r, want)) < 0)
			return ret;
		take = want - r->have;
		if (take > len - *used)
			take = len - *used;
		memcpy(r->buf + r->have, data + *used, take);
		r->have += take;
		*used += take;
		if (r->have < want)
			return 0;
		if (!r->have_header) {
			if ((ret = vmc_header_decode(r->buf, r->from, &r->h, why, why_size)) < 0)
				return ret;
			r->have_header = true;
			continue; /* the payload, possibly empty */
		}
		*h = r->h;
		*payload = r->buf + VMC_HEADER_SIZE;
		return 1;
	}
}

/* ---- JSON messages ---- */

static int field_err(struct err **e, const char *doc, const char *field, const char *what)
{
	return err_setx(e, EINVAL, "%s: %s: %s", doc, field, what);
}

static const char *type_word(json_object *v)
{
	return json_type_to_name(json_object_get_type(v));
}

/* A string field (NULL when absent), at most max bytes. */
static int get_string(json_object *o, const char *doc, const char *key, bool required, size_t max, char **ret,
		      struct err **e)
{
	json_object *v;
	char msg[96];

	*ret = NULL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_get_type(v) == json_type_null) {
		if (required)
			return field_err(e, doc, key, "required");
		return 0;
	}
	if (json_object_get_type(v) != json_type_string) {
		snprintf(msg, sizeof(msg), "expected a string, got %s", type_word(v));
		return field_err(e, doc, key, msg);
	}
	if ((size_t)json_object_get_string_len(v) > max) {
		snprintf(msg, sizeof(msg), "longer than %zu bytes", max);
		return field_err(e, doc, key, msg);
	}
	*ret = strdup(json_object_get_string(v));
	return *ret ? 0 : err_set(e, ENOMEM, "%s", doc);
}

static int get_int(json_object *o, const char *doc, const char *key, bool required, long long lo, long long hi,
		   long long *ret, struct err **e)
{
	json_object *v;
	char msg[96];

	if (!json_object_object_get_ex(o, key, &v))
		return required ? field_err(e, doc, key, "required") : 0;
	if (json_object_get_type(v) != json_type_int) {
		snprintf(msg, sizeof(msg), "expected an integer, got %s", type_word(v));
		return field_err(e, doc, key, msg);
	}
	errno = 0;
	*ret = json_object_get_int64(v);
	if (errno == EINVAL || *ret < lo || *ret > hi) {
		snprintf(msg, sizeof(msg), "out of range (%lld-%lld)", lo, hi);
		return field_err(e, doc, key, msg);
	}
	return 1;
}

static int get_bool(json_object *o, const char *doc, const char *key, bool *ret, bool *present, struct err **e)
{
	json_object *v;
	char msg[96];

	if (present)
		*present = false;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (json_object_get_type(v) != json_type_boolean) {
		snprintf(msg, sizeof(msg), "expected a boolean, got %s", type_word(v));
		return field_err(e, doc, key, msg);
	}
	*ret = json_object_get_boolean(v);
	if (present)
		*present = true;
	return 0;
}

static int get_object(json_object *o, const char *doc, const char *key, bool required, json_object **ret,
		      struct err **e)
{
	json_object *v;
	char msg[96];

	*ret = NULL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_get_type(v) == json_type_null)
		return required ? field_err(e, doc, key, "required") : 0;
	if (json_object_get_type(v) != json_type_object) {
		snprintf(msg, sizeof(msg), "expected an object, got %s", type_word(v));
		return field_err(e, doc, key, msg);
	}
	*ret = json_object_get(v);
	return 0;
}

/* An array of strings (NULL-terminated), empty when absent. */
static int get_strings(json_object *o, const char *doc, const char *key, char ***ret, size_t *n, struct err **e)
{
	json_object *v;
	size_t len;
	char msg[128];

	*ret = NULL;
	*n = 0;
	if (!json_object_object_get_ex(o, key, &v) || json_object_get_type(v) == json_type_null)
		return 0;
	if (json_object_get_type(v) != json_type_array) {
		snprintf(msg, sizeof(msg), "expected an array, got %s", type_word(v));
		return field_err(e, doc, key, msg);
	}
	len = json_object_array_length(v);
	if (len > VMC_STRINGS_MAX) {
		snprintf(msg, sizeof(msg), "more than %d entries", VMC_STRINGS_MAX);
		return field_err(e, doc, key, msg);
	}
	*ret = calloc(len + 1, sizeof(char *));
	if (*ret == NULL)
		return err_set(e, ENOMEM, "%s", doc);
	for (size_t i = 0; i < len; i++) {
		json_object *s = json_object_array_get_idx(v, i);
		if (json_object_get_type(s) != json_type_string ||
		    (size_t)json_object_get_string_len(s) > VMC_STRING_MAX) {
			snprintf(msg, sizeof(msg), "[%zu]: expected a string of at most %d bytes", i, VMC_STRING_MAX);
			strv_free(*ret);
			*ret = NULL;
			return field_err(e, doc, key, msg);
		}
		if (((*ret)[i] = strdup(json_object_get_string(s))) == NULL) {
			strv_free(*ret);
			*ret = NULL;
			return err_set(e, ENOMEM, "%s", doc);
		}
	}
	*n = len;
	return 0;
}

static bool is_ipv4(const char *s)
{
	struct in_addr a;

	return s && inet_pton(AF_INET, s, &a) == 1;
}

static int parse_net(json_object *o, struct vmc_net *net, struct err **e)
{
	static const char doc[] = "request create: net";
	_cleanup_free_ char *addr = NULL, *gw = NULL;
	long long v = 0;
	int r;

	memset(net, 0, sizeof(*net));
	if ((r = get_string(o, doc, "address", true, 15, &addr, e)) < 0 ||
	    (r = get_string(o, doc, "gateway", false, 15, &gw, e)) < 0)
		return r;
	if (!is_ipv4(addr))
		return field_err(e, doc, "address", "not an IPv4 address");
	if (gw && !is_ipv4(gw))
		return field_err(e, doc, "gateway", "not an IPv4 address");
	if ((r = get_int(o, doc, "prefix", true, 0, 32, &v, e)) < 0)
		return r;
	net->prefix = (unsigned)v;
	v = 0;
	if ((r = get_int(o, doc, "mtu", false, 68, 65535, &v, e)) < 0)
		return r;
	net->mtu = (unsigned)v;
	snprintf(net->address, sizeof(net->address), "%s", addr);
	snprintf(net->gateway, sizeof(net->gateway), "%s", gw ? gw : "");
	net->present = true;
	return 0;
}

static const char *const op_names[] = {
    [VMC_OP_CREATE] = "create", [VMC_OP_START] = "start",   [VMC_OP_KILL] = "kill",	[VMC_OP_EXEC] = "exec",
    [VMC_OP_PS] = "ps",		[VMC_OP_UPDATE] = "update", [VMC_OP_DELETE] = "delete",
};

static bool id_ok(const char *id)
{
	return id[0] != '\0' && strchr(id, '/') == NULL && strcmp(id, ".") != 0 && strcmp(id, "..") != 0;
}

static int parse_exec(json_object *o, struct vmc_request *r, struct err **e)
{
	static const char doc[] = "request exec";
	long long v;
	int ret;

	if ((ret = get_object(o, doc, "process", false, &r->process, e)) < 0 ||
	    (ret = get_strings(o, doc, "args", &r->args, &r->n_args, e)) < 0 ||
	    (ret = get_strings(o, doc, "env", &r->env, &r->n_env, e)) < 0 ||
	    (ret = get_strings(o, doc, "additional_gids", &r->additional_gids, &r->n_additional_gids, e)) < 0 ||
	    (ret = get_strings(o, doc, "caps", &r->caps, &r->n_caps, e)) < 0 ||
	    (ret = get_string(o, doc, "cwd", false, 4096, &r->cwd, e)) < 0 ||
	    (ret = get_string(o, doc, "user", false, 256, &r->user, e)) < 0 ||
	    (ret = get_string(o, doc, "apparmor", false, 4096, &r->apparmor, e)) < 0 ||
	    (ret = get_string(o, doc, "process_label", false, 4096, &r->process_label, e)) < 0 ||
	    (ret = get_bool(o, doc, "tty", &r->tty, &r->has_tty, e)) < 0 ||
	    (ret = get_bool(o, doc, "no_new_privs", &r->no_new_privs, NULL, e)) < 0)
		return ret;
	if (r->process == NULL && r->n_args == 0)
		return field_err(e, doc, "args", "required without a process");
	v = 0;
	if ((ret = get_int(o, doc, "rows", false, 0, 65535, &v, e)) < 0)
		return ret;
	r->rows = (unsigned)v;
	v = 0;
	if ((ret = get_int(o, doc, "cols", false, 0, 65535, &v, e)) < 0)
		return ret;
	r->cols = (unsigned)v;
	return 0;
}

int vmc_request_parse(const char *text, size_t len, struct vmc_request *r, struct err **e)
{
	static const char doc[] = "request";
	json_object *o = NULL, *net = NULL;
	_cleanup_free_ char *op = NULL;
	long long v;
	int ret;

	memset(r, 0, sizeof(*r));
	if ((ret = json_doc_parse(text, len, doc, &o, e)) < 0)
		return ret;
	if (json_object_get_type(o) != json_type_object) {
		ret = err_setx(e, EINVAL, "request: expected an object, got %s", type_word(o));
		goto out;
	}
	if ((ret = get_string(o, doc, "op", true, 16, &op, e)) < 0)
		goto out;
	for (size_t i = 1; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (strcmp(op, op_names[i]) == 0)
			r->op = (enum vmc_op)i;
	/* Another op's id: which container of the VM (a pod's); without
	 * it, the VM's first. */
	if (r->op != VMC_OP_CREATE && r->op != 0) {
		if ((ret = get_string(o, doc, "id", r->op == VMC_OP_DELETE, VMC_ID_MAX, &r->id, e)) < 0)
			goto out;
		if (r->id && !id_ok(r->id)) {
			ret = field_err(e, doc, "id", "not a container id");
			goto out;
		}
	}
	switch (r->op) {
	case VMC_OP_CREATE:
		if ((ret = get_string(o, "request create", "id", true, VMC_ID_MAX, &r->id, e)) < 0 ||
		    (ret = get_object(o, "request create", "spec", true, &r->spec, e)) < 0 ||
		    (ret = get_object(o, "request create", "net", false, &net, e)) < 0)
			break;
		if (!id_ok(r->id))
			ret = field_err(e, "request create", "id", "not a container id");
		else if (net)
			ret = parse_net(net, &r->net, e);
		json_object_put(net); /* also after a bad id (fuzz-vmc found the leak) */
		break;
	case VMC_OP_START:
	case VMC_OP_DELETE:
		break;
	case VMC_OP_KILL:
		if ((ret = get_int(o, "request kill", "signal", true, 0, 64, &v, e)) < 0 ||
		    (ret = get_bool(o, "request kill", "all", &r->all, NULL, e)) < 0)
			break;
		r->signal = (int)v;
		ret = 0;
		break;
	case VMC_OP_EXEC:
		ret = parse_exec(o, r, e);
		break;
	case VMC_OP_PS:
		ret = get_strings(o, "request ps", "args", &r->ps_args, &r->n_ps_args, e);
		break;
	case VMC_OP_UPDATE:
		ret = get_object(o, "request update", "resources", true, &r->resources, e);
		break;
	default:
		ret = field_err(e, doc, "op", "unknown operation");
	}
out:
	json_object_put(o);
	if (ret < 0)
		vmc_request_clear(r);
	return ret < 0 ? ret : 0;
}

void vmc_request_clear(struct vmc_request *r)
{
	free(r->id);
	json_object_put(r->spec);
	json_object_put(r->process);
	json_object_put(r->resources);
	strv_free(r->args);
	strv_free(r->env);
	strv_free(r->additional_gids);
	strv_free(r->caps);
	strv_free(r->ps_args);
	free(r->cwd);
	free(r->user);
	free(r->apparmor);
	free(r->process_label);
	memset(r, 0, sizeof(*r));
}

static void add_strings(json_object *o, const char *key, char **v, size_t n)
{
	json_object *a;

	if (n == 0)
		return;
	a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	json_object_object_add(o, key, a);
}

static void add_string(json_object *o, const char *key, const char *v)
{
	if (v)
		json_object_object_add(o, key, json_object_new_string(v));
}

static char *to_text(json_object *o)
{
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return s;
}

char *vmc_request_format(const struct vmc_request *r)
{
	json_object *o = json_object_new_object(), *net;

	if (r->op < VMC_OP_CREATE || r->op > VMC_OP_DELETE) {
		json_object_put(o);
		return NULL;
	}
	json_object_object_add(o, "op", json_object_new_string(op_names[r->op]));
	add_string(o, "id", r->id);
	switch (r->op) {
	case VMC_OP_CREATE:
		if (r->spec)
			json_object_object_add(o, "spec", json_object_get(r->spec));
		if (r->net.present) {
			net = json_object_new_object();
			add_string(net, "address", r->net.address);
			json_object_object_add(net, "prefix", json_object_new_int((int)r->net.prefix));
			if (r->net.gateway[0])
				add_string(net, "gateway", r->net.gateway);
			if (r->net.mtu)
				json_object_object_add(net, "mtu", json_object_new_int((int)r->net.mtu));
			json_object_object_add(o, "net", net);
		}
		break;
	case VMC_OP_KILL:
		json_object_object_add(o, "signal", json_object_new_int(r->signal));
		json_object_object_add(o, "all", json_object_new_boolean(r->all));
		break;
	case VMC_OP_EXEC:
		if (r->process)
			json_object_object_add(o, "process", json_object_get(r->process));
		add_strings(o, "args", r->args, r->n_args);
		add_strings(o, "env", r->env, r->n_env);
		add_strings(o, "additional_gids", r->additional_gids, r->n_additional_gids);
		add_strings(o, "caps", r->caps, r->n_caps);
		add_string(o, "cwd", r->cwd);
		add_string(o, "user", r->user);
		add_string(o, "apparmor", r->apparmor);
		add_string(o, "process_label", r->process_label);
		if (r->has_tty)
			json_object_object_add(o, "tty", json_object_new_boolean(r->tty));
		if (r->no_new_privs)
			json_object_object_add(o, "no_new_privs", json_object_new_boolean(true));
		if (r->rows && r->cols) {
			json_object_object_add(o, "rows", json_object_new_int((int)r->rows));
			json_object_object_add(o, "cols", json_object_new_int((int)r->cols));
		}
		break;
	case VMC_OP_PS:
		add_strings(o, "args", r->ps_args, r->n_ps_args);
		break;
	case VMC_OP_UPDATE:
		if (r->resources)
			json_object_object_add(o, "resources", json_object_get(r->resources));
		break;
	default:
		break;
	}
	return to_text(o);
}

/* What the guest says is shown to users and logged: no control
 * characters (a hostile guest could otherwise rewrite a terminal or
 * forge log lines). */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

int vmc_reply_parse(const char *text, size_t len, struct vmc_reply *r, struct err **e)
{
	static const char doc[] = "reply";
	json_object *o = NULL, *v;
	long long n = 0;
	int ret;

	memset(r, 0, sizeof(*r));
	if ((ret = json_doc_parse(text, len, doc, &o, e)) < 0)
		return ret;
	if (json_object_get_type(o) != json_type_object) {
		ret = err_setx(e, EINVAL, "reply: expected an object, got %s", type_word(o));
		goto out;
	}
	if ((ret = get_bool(o, doc, "ok", &r->ok, NULL, e)) < 0 ||
	    (ret = get_string(o, doc, "error", false, 16384, &r->error, e)) < 0 ||
	    (ret = get_string(o, doc, "table", false, VMC_JSON_MAX, &r->table, e)) < 0 ||
	    (ret = get_int(o, doc, "pid", false, 0, 4194304, &n, e)) < 0)
		goto out;
	r->pid = (int)n;
	if (r->ok == (r->error != NULL)) {
		ret = err_setx(e, EINVAL, "reply: exactly one of ok and error");
		goto out;
	}
	if (r->error)
		sanitize(r->error);
	if (json_object_object_get_ex(o, "pids", &v)) {
		size_t count;
		if (json_object_get_type(v) != json_type_array ||
		    (count = json_object_array_length(v)) > VMC_PIDS_MAX) {
			ret = field_err(e, doc, "pids", "expected an array of at most 65536 pids");
			goto out;
		}
		r->pids = calloc(count ? count : 1, sizeof(int));
		if (r->pids == NULL) {
			ret = err_set(e, ENOMEM, "%s", doc);
			goto out;
		}
		for (size_t i = 0; i < count; i++) {
			json_object *p = json_object_array_get_idx(v, i);
			int64_t pid = json_object_get_type(p) == json_type_int ? json_object_get_int64(p) : 0;
			if (pid < 1 || pid > 4194304) {
				ret = field_err(e, doc, "pids", "a pid out of range (1-4194304)");
				goto out;
			}
			r->pids[i] = (int)pid;
		}
		r->n_pids = count;
	}
	ret = 0;
out:
	json_object_put(o);
	if (ret < 0)
		vmc_reply_clear(r);
	return ret;
}

void vmc_reply_clear(struct vmc_reply *r)
{
	free(r->error);
	free(r->pids);
	free(r->table);
	memset(r, 0, sizeof(*r));
}

char *vmc_reply_format(const struct vmc_reply *r)
{
	json_object *o = json_object_new_object();

	if (r->ok)
		json_object_object_add(o, "ok", json_object_new_boolean(true));
	else
		add_string(o, "error", r->error ? r->error : "failed");
	if (r->pid > 0)
		json_object_object_add(o, "pid", json_object_new_int(r->pid));
	if (r->pids) {
		json_object *a = json_object_new_array();
		for (size_t i = 0; i < r->n_pids; i++)
			json_object_array_add(a, json_object_new_int(r->pids[i]));
		json_object_object_add(o, "pids", a);
	}
	add_string(o, "table", r->table);
	return to_text(o);
}

int vmc_hello_check(const char *text, size_t len, struct err **e)
{
	json_object *o = NULL;
	_cleanup_free_ char *agent = NULL;
	long long version = 0;
	int r;

	if ((r = json_doc_parse(text, len, "hello", &o, e)) < 0)
		return r;
	if (json_object_get_type(o) != json_type_object)
		r = err_setx(e, EINVAL, "hello: expected an object");
	else if ((r = get_string(o, "hello", "agent", true, 64, &agent, e)) < 0 ||
		 (r = get_int(o, "hello", "version", true, 1, 1000, &version, e)) < 0)
		;
	else if (version != 1)
		r = err_setx(e, EPROTO, "hello: agent '%s' speaks version %lld, not 1", agent, version);
	else
		r = 0;
	json_object_put(o);
	return r;
}

char *vmc_hello_format(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "agent", json_object_new_string("casulo-init"));
	json_object_object_add(o, "version", json_object_new_int(1));
	return to_text(o);
}
