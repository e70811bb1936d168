/*
 * Fuzz target: the vsock protocol between casulo-runtime and the guest
 * agent (src/vmc/proto.c), from both ends, and the plan of a container's
 * VM (src/vmc/plan.c).  The first byte chooses:
 *
 *   0: bytes a hostile guest sends the host: frames cut where the next
 *      bytes say, each checked; REPLY and HELLO parsed, EXIT decoded;
 *   1: bytes the host sends the agent: REQUESTs parsed, formatted again
 *      and parsed again (the round trip must hold), SIGNAL and RESIZE;
 *   2: a config.json: when libcasulo-oci accepts it, the VM's plan.
 *
 * A failure always says why; nothing crashes, leaks or reads past a frame.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "common/json-doc.h"
#include "oci/spec.h"
#include "vmc/plan.h"
#include "vmc/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void frame(const struct vmc_header *h, const uint8_t *p, enum vmc_side from)
{
	struct err *e = NULL;
	char why[128];
	int v;

	switch (h->type) {
	case VMC_REPLY: {
		struct vmc_reply r;
		if (vmc_reply_parse((const char *)p, h->len, &r, &e) == 0) {
			char *again = vmc_reply_format(&r);
			free(again);
			vmc_reply_clear(&r);
		} else if (e == NULL || e->msg == NULL) {
			abort();
		}
		break;
	}
	case VMC_HELLO:
		if (vmc_hello_check((const char *)p, h->len, &e) < 0 && (e == NULL || e->msg == NULL))
			abort();
		break;
	case VMC_REQUEST: {
		struct vmc_request r, back;
		if (vmc_request_parse((const char *)p, h->len, &r, &e) == 0) {
			char *text = vmc_request_format(&r);
			if (text == NULL || vmc_request_parse(text, strlen(text), &back, &e) < 0 || back.op != r.op)
				abort();
			vmc_request_clear(&back);
			free(text);
			vmc_request_clear(&r);
		} else if (e == NULL || e->msg == NULL) {
			abort();
		}
		break;
	}
	case VMC_EXIT:
		if (vmc_exit_decode(p, &v, why, sizeof(why)) == 0 && (v < 0 || v > 255))
			abort();
		break;
	case VMC_SIGNAL:
		if (vmc_signal_decode(p, &v, why, sizeof(why)) == 0 && (v < 1 || v > 64))
			abort();
		break;
	case VMC_RESIZE: {
		struct vmc_resize rs;
		(void)vmc_resize_decode(p, &rs, why, sizeof(why));
		break;
	}
	default:
		break;
	}
	(void)from;
	err_free(&e);
}

static void stream(const uint8_t *data, size_t size, enum vmc_side from)
{
	struct vmc_reader r;
	size_t off = 0;

	vmc_reader_init(&r, from);
	while (off < size) {
		/* One byte says how many of the next bytes arrive at once. */
		size_t n = (size_t)data[off++] * 7 + 1, used;
		struct vmc_header h;
		const uint8_t *payload;
		char why[128];
		int ret;

		if (n > size - off)
			n = size - off;
		while (n > 0) {
			ret = vmc_reader_feed(&r, data + off, n, &used, &h, &payload, why, sizeof(why));
			if (ret < 0) {
				if (why[0] == '\0')
					abort();
				vmc_reader_free(&r);
				return;
			}
			if (used > n)
				abort();
			off += used;
			n -= used;
			if (ret == 1) {
				if (h.len > VMC_JSON_MAX)
					abort();
				frame(&h, payload, from);
			}
		}
	}
	vmc_reader_free(&r);
}

static unsigned any_type(const char *path, void *ctx)
{
	(void)ctx;
	return strlen(path) % 3 == 0 ? S_IFREG : strlen(path) % 3 == 1 ? S_IFDIR : 0;
}

static void plan(const uint8_t *data, size_t size)
{
	struct vmc_host host = {.cpus = 2, .file_type = any_type};
	struct oci_spec *s = NULL;
	json_object *config = NULL;
	struct err *e = NULL;
	struct vmc_plan p;
	bool vm;

	if (spec_parse((const char *)data, size, &s, &e) < 0) {
		err_free(&e);
		return;
	}
	if (vmc_plan_wanted(s, true, &vm, &e) < 0 && (e == NULL || e->msg == NULL))
		abort();
	err_free(&e);
	if (json_doc_parse((const char *)data, size, "config.json", &config, &e) == 0) {
		if (vmc_plan_make(config, s, "fuzz", "/bundle", "/bundle/rootfs", &host, &p, &e) == 0) {
			if (p.n_shares == 0 || p.cpus == 0 || p.memory_mib < VMC_MIN_MEMORY_MIB)
				abort();
			vmc_plan_free(&p);
		} else if (e == NULL || e->msg == NULL) {
			abort();
		}
		json_object_put(config);
	}
	err_free(&e);
	spec_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		stream(data + 1, size - 1, VMC_FROM_GUEST);
		break;
	case 1:
		stream(data + 1, size - 1, VMC_FROM_HOST);
		break;
	default:
		plan(data + 1, size - 1);
	}
	return 0;
}
