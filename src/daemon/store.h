/*
 * casulod's definitions, in SQLite (STATE/casulod.db): one row per VM or
 * container with its definition (the JSON the API accepted), its autostart
 * settings and how it last ended.  Each change is one transaction with
 * synchronous=FULL, so a casulod killed at any point leaves a definition
 * whole or absent.  What runs is not here: the shims' files in the run
 * directory say that (shim.h), and they vanish with a reboot as the
 * processes do.
 *
 * Thread-safe (SQLite's serialized mode, one connection).
 */
#ifndef CASULO_DAEMON_STORE_H
#define CASULO_DAEMON_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

struct store_db;

struct store_row {
	char *name;
	char *type; /* "vm" or "container" */
	char *spec; /* the definition, JSON */
	bool autostart;
	int autostart_order;
	double autostart_delay;
	double created_at;
	double started_at, stopped_at; /* 0: never */
	bool has_exit;
	int exit_status;
	char *exit_reason; /* "exited", "killed", "host-rebooted", "supervisor-lost"; NULL */
};

void store_row_clear(struct store_row *r);

int store_db_open(const char *path, struct store_db **ret, struct err **e) MUST_CHECK;
void store_db_close(struct store_db *db);

/* A new definition; -EEXIST when the name is taken. */
int store_db_insert(struct store_db *db, const struct store_row *r, struct err **e) MUST_CHECK;
int store_db_delete(struct store_db *db, const char *name, struct err **e) MUST_CHECK;
int store_db_set_autostart(struct store_db *db, const char *name, bool on, int order, double delay,
			   struct err **e) MUST_CHECK;
int store_db_set_started(struct store_db *db, const char *name, double when, struct err **e) MUST_CHECK;
int store_db_set_exit(struct store_db *db, const char *name, int status, const char *reason, double when,
		      struct err **e) MUST_CHECK;

/* Every row, by name; *rows the caller's (store_row_clear each, free). */
int store_db_list(struct store_db *db, struct store_row **rows, size_t *n, struct err **e) MUST_CHECK;

/* Small settings ("boot_id"): *value malloc'd, NULL when unset. */
int store_db_get_meta(struct store_db *db, const char *key, char **value, struct err **e) MUST_CHECK;
int store_db_set_meta(struct store_db *db, const char *key, const char *value, struct err **e) MUST_CHECK;

#endif
