#include "daemon/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct store_db {
	sqlite3 *db;
	char *path;
};

/* Version 1 (meta.schema_version): a later one migrates from it. */
static const char schema_sql[] = "BEGIN;"
				 "CREATE TABLE IF NOT EXISTS instances ("
				 " name TEXT PRIMARY KEY,"
				 " type TEXT NOT NULL CHECK (type IN ('vm', 'container')),"
				 " spec TEXT NOT NULL,"
				 " autostart INTEGER NOT NULL DEFAULT 0,"
				 " autostart_order INTEGER NOT NULL DEFAULT 0,"
				 " autostart_delay REAL NOT NULL DEFAULT 0,"
				 " created_at REAL NOT NULL,"
				 " started_at REAL NOT NULL DEFAULT 0,"
				 " stopped_at REAL NOT NULL DEFAULT 0,"
				 " exit_status INTEGER,"
				 " exit_reason TEXT);"
				 "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
				 "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');"
				 "COMMIT;";

static int db_error(struct store_db *s, int rc, struct err **e, const char *what)
{
	int code = rc == SQLITE_CONSTRAINT ? EEXIST : rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? EBUSY : EIO;

	return err_setx(e, code, "database '%s': %s: %s", s->path, what,
			s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

void store_row_clear(struct store_row *r)
{
	free(r->name);
	free(r->type);
	free(r->spec);
	free(r->exit_reason);
	*r = (struct store_row){0};
}

int store_db_open(const char *path, struct store_db **ret, struct err **e)
{
	struct store_db *s = calloc(1, sizeof(*s));
	char *msg = NULL;
	int rc;

	if (s == NULL || (s->path = strdup(path)) == NULL) {
		free(s);
		return err_set(e, ENOMEM, "database '%s'", path);
	}
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		db_error(s, rc, e, "open");
		store_db_close(s);
		return -err_code(*e);
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* One casulod at a time holds the database (the state directory's
	 * lock): exclusive locking lets WAL work without its shared-memory
	 * file (the state directory may be on a file system without shared
	 * maps, as the lab's 9p shares), and a commit costs one fsync of the
	 * log.  FULL: each commit is on disk before casulod answers. */
	rc = sqlite3_exec(s->db, "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
			  NULL, NULL, &msg);
	/* The tables are made once: a restart writes nothing (each write
	 * waits for the disk, and a restart should be quick). */
	if (rc == SQLITE_OK &&
	    sqlite3_table_column_metadata(s->db, NULL, "meta", "value", NULL, NULL, NULL, NULL, NULL) != SQLITE_OK)
		rc = sqlite3_exec(s->db, schema_sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		err_setx(e, EIO, "database '%s': %s", path, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		store_db_close(s);
		return -EIO;
	}
	*ret = s;
	return 0;
}

void store_db_close(struct store_db *s)
{
	if (s == NULL)
		return;
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

/* Prepare sql, bind the arguments (a format of 't' text, 'i' int, 'd'
 * double, 'n' null), step it once. */
static int exec_one(struct store_db *s, struct err **e, const char *what, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int rc, i = 1;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_error(s, rc, e, what);
	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++, i++) {
		switch (*f) {
		case 't':
			sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
			break;
		case 'i':
			sqlite3_bind_int(st, i, va_arg(ap, int));
			break;
		case 'd':
			sqlite3_bind_double(st, i, va_arg(ap, double));
			break;
		default:
			sqlite3_bind_null(st, i);
			break;
		}
	}
	va_end(ap);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(s, rc, e, what);
	return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

int store_db_insert(struct store_db *s, const struct store_row *r, struct err **e)
{
	int rc = exec_one(s, e, "insert",
			  "INSERT INTO instances (name, type, spec, autostart, autostart_order, autostart_delay,"
			  " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			  "tttiidd", r->name, r->type, r->spec, (int)r->autostart, r->autostart_order,
			  r->autostart_delay, r->created_at);

	if (rc == -EEXIST)
		return err_setx(e, EEXIST, "instance '%s' exists", r->name);
	return rc;
}

static int must_exist(int rc, const char *name, struct err **e)
{
	if (rc == -ENOENT)
		return err_setx(e, ENOENT, "instance '%s' does not exist", name);
	return rc;
}

int store_db_delete(struct store_db *s, const char *name, struct err **e)
{
	return must_exist(exec_one(s, e, "delete", "DELETE FROM instances WHERE name = ?", "t", name), name, e);
}

int store_db_set_autostart(struct store_db *s, const char *name, bool on, int order, double delay, struct err **e)
{
	return must_exist(exec_one(s, e, "autostart",
				   "UPDATE instances SET autostart = ?, autostart_order = ?, autostart_delay = ?"
				   " WHERE name = ?",
				   "iidt", (int)on, order, delay, name),
			  name, e);
}

int store_db_set_started(struct store_db *s, const char *name, double when, struct err **e)
{
	return must_exist(
	    exec_one(s, e, "record start", "UPDATE instances SET started_at = ? WHERE name = ?", "dt", when, name),
	    name, e);
}

int store_db_set_exit(struct store_db *s, const char *name, int status, const char *reason, double when, struct err **e)
{
	return must_exist(
	    exec_one(s, e, "record exit",
		     "UPDATE instances SET exit_status = ?, exit_reason = ?, stopped_at = ? WHERE name = ?", "itdt",
		     status, reason, when, name),
	    name, e);
}

static char *column_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? strdup((const char *)t) : NULL;
}

int store_db_list(struct store_db *s, struct store_row **rows, size_t *n, struct err **e)
{
	sqlite3_stmt *st = NULL;
	struct store_row *out = NULL;
	size_t count = 0, cap = 0;
	int rc;

	rc = sqlite3_prepare_v2(s->db,
				"SELECT name, type, spec, autostart, autostart_order, autostart_delay, created_at,"
				" started_at, stopped_at, exit_status, exit_reason FROM instances ORDER BY name",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_error(s, rc, e, "list");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_row *r;
		if (count == cap) {
			struct store_row *nr = realloc(out, (cap = cap ? cap * 2 : 16) * sizeof(*out));
			if (nr == NULL)
				break;
			out = nr;
		}
		r = &out[count++];
		*r = (struct store_row){
		    .name = column_text(st, 0),
		    .type = column_text(st, 1),
		    .spec = column_text(st, 2),
		    .autostart = sqlite3_column_int(st, 3) != 0,
		    .autostart_order = sqlite3_column_int(st, 4),
		    .autostart_delay = sqlite3_column_double(st, 5),
		    .created_at = sqlite3_column_double(st, 6),
		    .started_at = sqlite3_column_double(st, 7),
		    .stopped_at = sqlite3_column_double(st, 8),
		    .has_exit = sqlite3_column_type(st, 9) != SQLITE_NULL,
		    .exit_status = sqlite3_column_int(st, 9),
		    .exit_reason = column_text(st, 10),
		};
		if (r->name == NULL || r->type == NULL || r->spec == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < count; i++)
			store_row_clear(&out[i]);
		free(out);
		return rc == SQLITE_NOMEM || rc == SQLITE_ROW ? err_set(e, ENOMEM, "database '%s'", s->path)
							      : db_error(s, rc, e, "list");
	}
	*rows = out;
	*n = count;
	return 0;
}

int store_db_get_meta(struct store_db *s, const char *key, char **value, struct err **e)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL);

	*value = NULL;
	if (rc != SQLITE_OK)
		return db_error(s, rc, e, "meta");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*value = column_text(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(s, rc, e, "meta");
	return 0;
}

int store_db_set_meta(struct store_db *s, const char *key, const char *value, struct err **e)
{
	int rc = exec_one(s, e, "meta", "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", "tt", key, value);

	return rc == -ENOENT ? 0 : rc;
}
