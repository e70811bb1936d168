/*
 * Progress of pulls, imports and unpacks: per-layer bars (bytes, rate,
 * ETA) redrawn on a terminal, one plain line per step otherwise, or JSON
 * events (one object a line on stdout) for programs.
 */
#ifndef CASULO_IMAGE_PROGRESS_H
#define CASULO_IMAGE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum progress_mode { PROGRESS_NONE, PROGRESS_TTY, PROGRESS_LINES, PROGRESS_JSON, PROGRESS_CALLBACK };

struct progress;

/* TTY when stderr is a terminal, else plain lines; json and quiet win. */
enum progress_mode progress_pick(bool json, bool quiet);
struct progress *progress_new(enum progress_mode mode);
void progress_free(struct progress *p);

/* Progress for a program (casulod's operations): fn gets each item's
 * event ("start", "progress", "done", "exists", "failed"), its short
 * digest and bytes, on the thread that made progress. */
typedef void (*progress_fn)(void *ctx, const char *event, const char *action, const char *digest, uint64_t done,
			    uint64_t total);
struct progress *progress_new_callback(progress_fn fn, void *ctx);

/* A new item: action ("pull", "unpack", "import"), a digest, the total
 * (0 if unknown) and what is already there (a resumed download).
 * Returns its id; p may be NULL everywhere (nothing shown). */
int progress_add(struct progress *p, const char *action, const char *digest, uint64_t total, uint64_t start);
/* An item that is already there: one "exists" event or line. */
void progress_exists(struct progress *p, const char *action, const char *digest, uint64_t total);
void progress_update(struct progress *p, int id, uint64_t done);
/* status: "done", "exists", "failed". */
void progress_done(struct progress *p, int id, const char *status);
/* A one-off event: a line ("image NAME: pulled") or a JSON event with
 * the given key/value string pairs, NULL-terminated. */
void progress_note(struct progress *p, const char *event, ...) __attribute__((sentinel));

#endif
