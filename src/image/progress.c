#include "image/progress.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "image/digest.h"

struct item {
	char action[16], id[13];
	uint64_t total, start, done;
	double t0, last_emit;
	const char *status; /* NULL while running */
};

struct progress {
	enum progress_mode mode;
	progress_fn fn;
	void *ctx;
	struct item *items;
	size_t n, cap;
	int drawn; /* lines on screen (TTY) */
	double last_draw;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum progress_mode progress_pick(bool json, bool quiet)
{
	if (json)
		return PROGRESS_JSON;
	if (quiet)
		return PROGRESS_NONE;
	return isatty(STDERR_FILENO) ? PROGRESS_TTY : PROGRESS_LINES;
}

struct progress *progress_new(enum progress_mode mode)
{
	struct progress *p = calloc(1, sizeof(*p));

	if (p)
		p->mode = mode;
	return p;
}

struct progress *progress_new_callback(progress_fn fn, void *ctx)
{
	struct progress *p = progress_new(PROGRESS_CALLBACK);

	if (p) {
		p->fn = fn;
		p->ctx = ctx;
	}
	return p;
}

static void callback(struct progress *p, const char *event, const struct item *it)
{
	p->fn(p->ctx, event, it->action, it->id, it->done, it->total);
}

static void human(uint64_t b, char *buf, size_t size)
{
	if (b >= 1024ULL * 1024 * 1024)
		snprintf(buf, size, "%.2f GiB", (double)b / (1024.0 * 1024 * 1024));
	else if (b >= 1024 * 1024)
		snprintf(buf, size, "%.1f MiB", (double)b / (1024.0 * 1024));
	else if (b >= 1024)
		snprintf(buf, size, "%.1f KiB", (double)b / 1024.0);
	else
		snprintf(buf, size, "%llu B", (unsigned long long)b);
}

static void json_event(const char *event, struct item *it)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "event", json_object_new_string(event));
	json_object_object_add(o, "action", json_object_new_string(it->action));
	json_object_object_add(o, "digest", json_object_new_string(it->id));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)it->done));
	json_object_object_add(o, "total", json_object_new_int64((int64_t)it->total));
	if (strcmp(event, "start") == 0)
		json_object_object_add(o, "resumed_at", json_object_new_int64((int64_t)it->start));
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

static void draw_line(struct item *it, double t)
{
	char done[32], total[32], rate[32] = "", eta[32] = "", bar[24];
	double el = t - it->t0;
	double r = el > 0.05 ? (double)(it->done - it->start) / el : 0;
	int fill = it->total ? (int)(20.0 * (double)it->done / (double)it->total) : 0;

	human(it->done, done, sizeof(done));
	human(it->total, total, sizeof(total));
	if (r > 0) {
		human((uint64_t)r, rate, sizeof(rate));
		strcat(rate, "/s");
		if (!it->status && it->total > it->done)
			snprintf(eta, sizeof(eta), "ETA %.0fs", (double)(it->total - it->done) / r);
	}
	if (fill > 20)
		fill = 20;
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(20 - fill));
	bar[20] = '\0';
	fprintf(stderr, "\r\033[K%-6s %s [%s] %10s / %-10s %12s %s%s\n", it->action, it->id, bar, done, total, rate,
		it->status ? it->status : eta, "");
}

static void redraw(struct progress *p, bool force)
{
	double t = now();

	if (!force && t - p->last_draw < 0.1)
		return;
	p->last_draw = t;
	if (p->drawn)
		fprintf(stderr, "\033[%dA", p->drawn);
	for (size_t i = 0; i < p->n; i++)
		draw_line(&p->items[i], t);
	p->drawn = (int)p->n;
	fflush(stderr);
}

void progress_exists(struct progress *p, const char *action, const char *digest, uint64_t total)
{
	struct item it = {0};

	if (p == NULL || p->mode == PROGRESS_NONE)
		return;
	if (p->mode == PROGRESS_CALLBACK) {
		snprintf(it.action, sizeof(it.action), "%s", action);
		digest_short(digest, it.id);
		it.total = it.done = total;
		callback(p, "exists", &it);
		return;
	}
	if (p->mode != PROGRESS_JSON) {
		/* a line, on a terminal too: nothing will move */
		int id = progress_add(p, action, digest, total, total);
		progress_done(p, id, "exists");
		return;
	}
	snprintf(it.action, sizeof(it.action), "%s", action);
	digest_short(digest, it.id);
	it.total = it.done = total;
	json_event("exists", &it);
}

int progress_add(struct progress *p, const char *action, const char *digest, uint64_t total, uint64_t start)
{
	struct item *it;

	if (p == NULL || p->mode == PROGRESS_NONE)
		return -1;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct item *n = realloc(p->items, cap * sizeof(*n));
		if (n == NULL)
			return -1;
		p->items = n;
		p->cap = cap;
	}
	it = &p->items[p->n];
	memset(it, 0, sizeof(*it));
	snprintf(it->action, sizeof(it->action), "%s", action);
	digest_short(digest, it->id);
	it->total = total;
	it->start = it->done = start;
	it->t0 = now();
	if (p->mode == PROGRESS_JSON) {
		json_event("start", it);
	} else if (p->mode == PROGRESS_CALLBACK) {
		callback(p, "start", it);
	} else if (p->mode == PROGRESS_LINES) {
		char t[32], s[32];
		human(total, t, sizeof(t));
		human(start, s, sizeof(s));
		if (start)
			fprintf(stderr, "%s %s: %s, resuming at %s\n", action, it->id, t, s);
		else
			fprintf(stderr, "%s %s: %s\n", action, it->id, t);
	}
	p->n++;
	if (p->mode == PROGRESS_TTY)
		redraw(p, true);
	return (int)(p->n - 1);
}

void progress_update(struct progress *p, int id, uint64_t done)
{
	struct item *it;
	double t;

	if (p == NULL || id < 0 || (size_t)id >= p->n)
		return;
	it = &p->items[id];
	it->done = done;
	if (p->mode == PROGRESS_TTY) {
		redraw(p, false);
	} else if (p->mode == PROGRESS_CALLBACK) {
		callback(p, "progress", it);
	} else if (p->mode == PROGRESS_JSON) {
		t = now();
		if (t - it->last_emit >= 1.0) {
			it->last_emit = t;
			json_event("progress", it);
		}
	}
}

void progress_done(struct progress *p, int id, const char *status)
{
	struct item *it;

	if (p == NULL || id < 0 || (size_t)id >= p->n)
		return;
	it = &p->items[id];
	it->status = status;
	if (strcmp(status, "exists") != 0 && it->total && strcmp(status, "failed") != 0)
		it->done = it->total;
	if (p->mode == PROGRESS_TTY) {
		redraw(p, true);
	} else if (p->mode == PROGRESS_CALLBACK) {
		callback(p, status, it);
	} else if (p->mode == PROGRESS_JSON) {
		json_event(status, it);
	} else if (p->mode == PROGRESS_LINES) {
		char b[32], r[32] = "";
		double el = now() - it->t0;
		human(it->done - it->start, b, sizeof(b));
		if (el > 0.001 && strcmp(status, "done") == 0) {
			human((uint64_t)((double)(it->done - it->start) / el), r, sizeof(r));
			fprintf(stderr, "%s %s: %s, %s in %.2f s (%s/s)\n", it->action, it->id, status, b, el, r);
		} else {
			fprintf(stderr, "%s %s: %s\n", it->action, it->id, status);
		}
	}
}

void progress_note(struct progress *p, const char *event, ...)
{
	va_list ap;
	const char *k, *v;

	if (p == NULL || p->mode == PROGRESS_NONE || p->mode == PROGRESS_CALLBACK)
		return;
	va_start(ap, event);
	if (p->mode == PROGRESS_JSON) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "event", json_object_new_string(event));
		while ((k = va_arg(ap, const char *)) && (v = va_arg(ap, const char *)))
			json_object_object_add(o, k, json_object_new_string(v));
		printf("%s\n",
		       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		fflush(stdout);
		json_object_put(o);
	} else {
		if (p->mode == PROGRESS_TTY) {
			/* The bars drawn so far stay above the note. */
			p->n = 0;
			p->drawn = 0;
		}
		fprintf(stderr, "%s", event);
		while ((k = va_arg(ap, const char *)) && (v = va_arg(ap, const char *)))
			fprintf(stderr, " %s=%s", k, v);
		fprintf(stderr, "\n");
	}
	va_end(ap);
}

void progress_free(struct progress *p)
{
	if (p == NULL)
		return;
	free(p->items);
	free(p);
}
