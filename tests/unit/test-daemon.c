/* casulod's pure parts: websocket framing, the definitions store, the
 * events ring and the shim's state file. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/api.h"
#include "daemon/events.h"
#include "daemon/shim.h"
#include "daemon/store.h"
#include "daemon/websocket.h"
#include "schema/schema.h"
#include "test.h"

/* docs/casulod-api.yaml, compiled into the daemon's library. */
extern const char casulod_api_schemas[];
extern const size_t casulod_api_schemas_len;

static char *tmpdir(void)
{
	char *d = strdup("/tmp/test-daemon-XXXXXX");

	CHECK(mkdtemp(d) != NULL);
	return d;
}

/* A route without its operation in the document would answer 500. */
TEST(every_route_is_documented)
{
	struct schema_doc *doc = NULL;
	struct err *e = NULL;

	CHECK(schema_doc_load(casulod_api_schemas, casulod_api_schemas_len, &doc, &e) == 0);
	if (api_check_routes_documented(doc, &e) < 0) {
		fprintf(stderr, "%s\n", e->msg);
		err_free(&e);
		CHECK(0);
	}
	schema_doc_free(doc);
}

TEST(websocket_accept_value_is_rfc6455s)
{
	char out[29];

	ws_accept_value("dGhlIHNhbXBsZSBub25jZQ==", out);
	CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	CHECK(ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=="));
	CHECK(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ"));
	CHECK(!ws_key_valid("not base64 at all!!!!!=="));
	CHECK(!ws_key_valid(NULL));
	{
		char key[25];
		ws_new_key(key);
		CHECK(ws_key_valid(key));
	}
}

/* A frame of len bytes, masked as a client sends it, parsed back. */
static void round_trip(size_t len)
{
	uint8_t *buf = malloc(len + WS_HEADER_MAX), mask[4] = {0x12, 0x34, 0x56, 0x78};
	size_t h = ws_header(buf, WS_BINARY, len, mask);
	struct ws_frame f;

	for (size_t i = 0; i < len; i++)
		buf[h + i] = (uint8_t)(i * 7);
	ws_mask(buf + h, len, mask);
	/* Every prefix is incomplete, the whole is one frame. */
	for (size_t cut = 0; cut < h + len; cut += 1 + (h + len) / 50)
		CHECK_INT(ws_parse(buf, cut, true, 1 << 20, &f), ==, 0);
	CHECK_INT(ws_parse(buf, h + len, true, 1 << 20, &f), ==, (long long)(h + len));
	CHECK(f.fin && f.opcode == WS_BINARY && f.len == len);
	for (size_t i = 0; i < len; i++)
		if (f.payload[i] != (uint8_t)(i * 7))
			test_fail_at(__FILE__, __LINE__, "byte %zu of %zu", i, len);
	free(buf);
}

TEST(websocket_frames_round_trip)
{
	round_trip(0);
	round_trip(1);
	round_trip(125);
	round_trip(126);
	round_trip(65535);
	round_trip(65536);
	round_trip(200000);
}

TEST(websocket_bad_frames_are_refused)
{
	struct ws_frame f;
	uint8_t rsv[] = {0xc2, 0x80, 0, 0, 0, 0};		  /* RSV1 set */
	uint8_t op[] = {0x83, 0x80, 0, 0, 0, 0};		  /* opcode 3 */
	uint8_t long_ping[] = {0x89, 0xfe, 0x00, 0x7e};		  /* a 126-byte ping */
	uint8_t frag_close[] = {0x08, 0x80, 0, 0, 0, 0};	  /* a close without FIN */
	uint8_t unmasked[] = {0x82, 0x01, 'x'};			  /* a client frame without mask */
	uint8_t huge[] = {0x82, 0xff, 0, 0, 0, 0, 0, 0x11, 0, 0}; /* 1 MiB + 64 KiB */
	uint8_t top_bit[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0};

	CHECK_INT(ws_parse(rsv, sizeof(rsv), true, 100, &f), ==, -EPROTO);
	CHECK_INT(ws_parse(op, sizeof(op), true, 100, &f), ==, -EPROTO);
	CHECK_INT(ws_parse(long_ping, sizeof(long_ping), true, 1000, &f), ==, -EPROTO);
	CHECK_INT(ws_parse(frag_close, sizeof(frag_close), true, 100, &f), ==, -EPROTO);
	CHECK_INT(ws_parse(unmasked, sizeof(unmasked), true, 100, &f), ==, -EPROTO);
	CHECK_INT(ws_parse(unmasked, sizeof(unmasked), false, 100, &f), ==, 3);
	CHECK_INT(ws_parse(huge, sizeof(huge), true, 1 << 20, &f), ==, -EMSGSIZE);
	CHECK_INT(ws_parse(top_bit, sizeof(top_bit), true, 1 << 20, &f), ==, -EPROTO);
}

TEST(store_keeps_definitions_across_opens)
{
	char *dir = tmpdir(), path[256];
	struct store_db *db = NULL;
	struct store_row *rows = NULL;
	struct store_row r = {.name = "b",
			      .type = "vm",
			      .spec = "{\"vm\":{}}",
			      .autostart = true,
			      .autostart_order = 3,
			      .autostart_delay = 1.5,
			      .created_at = 100};
	struct err *e = NULL;
	size_t n = 0;
	char *v = NULL;

	snprintf(path, sizeof(path), "%s/db", dir);
	CHECK_INT(store_db_open(path, &db, &e), ==, 0);
	CHECK_INT(store_db_insert(db, &r, &e), ==, 0);
	r.name = "a";
	r.type = "container";
	CHECK_INT(store_db_insert(db, &r, &e), ==, 0);
	CHECK_INT(store_db_insert(db, &r, &e), ==, -EEXIST);
	CHECK_CONTAINS(e->msg, "instance 'a' exists");
	err_free(&e);
	CHECK_INT(store_db_set_exit(db, "b", 137, "killed", 200, &e), ==, 0);
	CHECK_INT(store_db_set_exit(db, "zz", 1, "exited", 200, &e), ==, -ENOENT);
	CHECK_CONTAINS(e->msg, "'zz' does not exist");
	err_free(&e);
	CHECK_INT(store_db_set_autostart(db, "a", false, 0, 0, &e), ==, 0);
	CHECK_INT(store_db_set_meta(db, "boot_id", "x", &e), ==, 0);
	store_db_close(db);

	CHECK_INT(store_db_open(path, &db, &e), ==, 0);
	CHECK_INT(store_db_list(db, &rows, &n, &e), ==, 0);
	CHECK_INT(n, ==, 2);
	CHECK_STR(rows[0].name, "a");
	CHECK(!rows[0].autostart && !rows[0].has_exit);
	CHECK_STR(rows[1].name, "b");
	CHECK(rows[1].autostart && rows[1].autostart_order == 3 && rows[1].has_exit && rows[1].exit_status == 137);
	CHECK_STR(rows[1].exit_reason, "killed");
	CHECK_STR(rows[1].spec, "{\"vm\":{}}");
	for (size_t i = 0; i < n; i++)
		store_row_clear(&rows[i]);
	free(rows);
	CHECK_INT(store_db_get_meta(db, "boot_id", &v, &e), ==, 0);
	CHECK_STR(v, "x");
	free(v);
	CHECK_INT(store_db_delete(db, "a", &e), ==, 0);
	CHECK_INT(store_db_delete(db, "a", &e), ==, -ENOENT);
	err_free(&e);
	store_db_close(db);
	/* A file that is not a database. */
	snprintf(path, sizeof(path), "%s/garbage", dir);
	{
		int fd = open(path, O_WRONLY | O_CREAT, 0600);
		CHECK(write(fd, "not sqlite at all, really not at all, no", 40) == 40);
		close(fd);
	}
	CHECK(store_db_open(path, &db, &e) < 0);
	CHECK_CONTAINS(e->msg, path);
	err_free(&e);
	CHECK(system("rm -rf /tmp/test-daemon-*") == 0);
	free(dir);
}

static int sleeps, wakes;
static void fake_sleep(void *c)
{
	(void)c;
	sleeps++;
}
static void fake_wake(void *c)
{
	(void)c;
	wakes++;
}

static json_object *event(const char *action)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "action", json_object_new_string(action));
	return o;
}

TEST(events_stream_replay_and_loss)
{
	struct events *ev = events_new();
	struct event_sub *all, *late, *ops;
	char buf[65536];
	ssize_t n;

	all = events_subscribe(ev, EVENT_LIFECYCLE | EVENT_OPERATION, 0, NULL, fake_sleep, fake_wake);
	ops = events_subscribe(ev, EVENT_OPERATION, 0, NULL, fake_sleep, fake_wake);
	CHECK_INT(events_read(ev, all, buf, sizeof(buf)), ==, 0);
	CHECK_INT(sleeps, ==, 1);
	events_publish(ev, EVENT_LIFECYCLE, event("one"));
	CHECK_INT(wakes, ==, 1); /* the sleeping one, not the operations' */
	events_publish(ev, EVENT_OPERATION, event("two"));
	n = events_read(ev, all, buf, sizeof(buf));
	buf[n] = '\0';
	CHECK_CONTAINS(buf, "id: 1\nevent: lifecycle\ndata: {\"action\":\"one\"");
	CHECK_CONTAINS(buf, "id: 2\nevent: operation\n");
	n = events_read(ev, ops, buf, sizeof(buf));
	buf[n] = '\0';
	CHECK(strstr(buf, "\"one\"") == NULL && strstr(buf, "\"two\"") != NULL);
	/* A small buffer gets an event in parts, none lost. */
	events_publish(ev, EVENT_LIFECYCLE, event("three"));
	{
		char whole[512] = "";
		size_t got = 0;
		while ((n = events_read(ev, all, buf, 7)) > 0) {
			memcpy(whole + got, buf, (size_t)n);
			got += (size_t)n;
		}
		whole[got] = '\0';
		CHECK_CONTAINS(whole, "id: 3\nevent: lifecycle\ndata: {\"action\":\"three\"");
	}
	/* From an id: what came after it. */
	late = events_subscribe(ev, EVENT_LIFECYCLE | EVENT_OPERATION, 1, NULL, fake_sleep, fake_wake);
	n = events_read(ev, late, buf, sizeof(buf));
	buf[n] = '\0';
	CHECK(strstr(buf, "id: 1\n") == NULL && strstr(buf, "id: 2\n") && strstr(buf, "id: 3\n"));
	events_unsubscribe(ev, late);
	/* Far behind: told so, then the oldest kept. */
	for (int i = 0; i < EVENTS_KEPT + 10; i++)
		events_publish(ev, EVENT_OPERATION, event("flood"));
	late = events_subscribe(ev, EVENT_OPERATION, 1, NULL, fake_sleep, fake_wake);
	n = events_read(ev, late, buf, sizeof(buf));
	buf[n] = '\0';
	CHECK_CONTAINS(buf, ": some events were lost");
	events_ping(ev);
	n = events_read(ev, all, buf, sizeof(buf));
	buf[n] = '\0';
	CHECK_CONTAINS(buf, ": keepalive");
	events_free(ev);
}

TEST(shim_state_file)
{
	char *dir = tmpdir(), path[256];
	struct shim_state st;
	int status, fd;

	CHECK_INT(shim_read_state(dir, &st), ==, -ENOENT);
	snprintf(path, sizeof(path), "%s/%s", dir, SHIM_STATE_FILE);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dprintf(fd, "shim 12 345\nworkload 13 346\nboot 0123-abcd\n");
	close(fd);
	CHECK_INT(shim_read_state(dir, &st), ==, 0);
	CHECK(st.shim_pid == 12 && st.shim_start == 345 && st.workload_pid == 13 && st.workload_start == 346);
	CHECK_STR(st.boot_id, "0123-abcd");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dprintf(fd, "shim -1 345\nworkload 13 346\nboot x\n");
	close(fd);
	CHECK_INT(shim_read_state(dir, &st), ==, -EINVAL);
	CHECK_INT(shim_read_exit(dir, &status), ==, -ENOENT);
	snprintf(path, sizeof(path), "%s/%s", dir, SHIM_EXIT_FILE);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dprintf(fd, "137\n");
	close(fd);
	CHECK_INT(shim_read_exit(dir, &status), ==, 0);
	CHECK_INT(status, ==, 137);
	CHECK(system("rm -rf /tmp/test-daemon-*") == 0);
	free(dir);
}
