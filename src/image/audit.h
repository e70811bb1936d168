/*
 * Offline audit of an image: its config and every layer (files a later
 * layer deleted included: they still ship), with no database download.
 * Each finding carries a check ID, a severity, the evidence (a path or a
 * key), the digest of the layer that introduced it, and a fix.  The
 * same walk reads the dpkg and apk databases into a package inventory
 * (SPDX or CycloneDX JSON).  docs/images.md lists the checks.
 */
#ifndef CASULO_IMAGE_AUDIT_H
#define CASULO_IMAGE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"
#include "image/store.h"

enum audit_severity {
	AUDIT_SEVERITY_NONE, /* no finding; also "no exit level" */
	AUDIT_INFO,
	AUDIT_LOW,
	AUDIT_MEDIUM,
	AUDIT_HIGH,
	AUDIT_CRITICAL,
};

struct audit_check {
	const char *id;
	enum audit_severity severity;
	const char *title;
	const char *fix;
};

struct audit_finding {
	const struct audit_check *check;
	char *evidence; /* a path (no leading '/') or "ENV KEY", "label KEY", "history[3]" */
	char *detail;	/* why, in a few words */
	char *layer;	/* digest of the layer that introduced it; NULL: the image config */
};

struct package {
	char *type; /* "deb", "apk" */
	char *name, *version, *arch, *source, *license;
	char *layer;
};

struct audit_report {
	char *image, *digest, *os_id, *os_version;
	struct audit_finding *findings;
	size_t n_findings, cap_findings, ignored;
	struct package *packages;
	size_t n_packages, cap_packages;
	size_t layers;
	unsigned long long files;
};

struct audit_ignore {
	char *check;
	char *glob; /* NULL: everywhere */
};

struct audit_opts {
	struct audit_ignore *ignores;
	size_t n_ignores;
};

enum audit_format { AUDIT_TEXT, AUDIT_JSON, AUDIT_SARIF };
enum sbom_format { SBOM_NONE, SBOM_CYCLONEDX, SBOM_SPDX };

/* "ID" or "ID:GLOB" (fnmatch on the evidence). */
int audit_ignore_add(struct audit_opts *o, const char *spec, struct err **e);
int audit_ignore_load(struct audit_opts *o, const char *file, struct err **e);
void audit_opts_free(struct audit_opts *o);

/* An image of the store (name or digest), or a path (OCI layout, OCI or
 * docker archive) imported into a scratch store for the audit. */
int audit_image(struct store *s, const char *what, const struct audit_opts *o, struct audit_report *rep,
		struct err **e);
int audit_loaded(struct store *s, const struct store_loaded *img, const char *name, const struct audit_opts *o,
		 struct audit_report *rep, struct err **e);
void audit_report_free(struct audit_report *rep);

void audit_report_write(const struct audit_report *rep, enum audit_format f, FILE *out);
enum audit_severity audit_report_max(const struct audit_report *rep);
size_t audit_report_count(const struct audit_report *rep, enum audit_severity at_least);

const char *audit_severity_name(enum audit_severity s);
int audit_severity_parse(const char *s, enum audit_severity *out);
int audit_format_parse(const char *s, enum audit_format *out);
int sbom_format_parse(const char *s, enum sbom_format *out);
int sbom_write(const struct audit_report *rep, enum sbom_format f, FILE *out, struct err **e);
int sbom_write_file(const struct audit_report *rep, enum sbom_format f, const char *path, struct err **e);

/* --- the rules, pure (audit-rules.c; unit-tested and fuzzed) --- */

extern const struct audit_check audit_checks[];
const struct audit_check *audit_check_find(const char *id);

/* What a file's name alone says: a check ID, or NULL. */
const struct audit_check *audit_secret_file(const char *path);
/* Does the content confirm a file named like a secret (a key file that
 * holds a private key, an .npmrc with a token...)? */
bool audit_secret_file_confirmed(const struct audit_check *c, const char *path, const char *data, size_t len);
/* A private key or a known token format in content: the check, and the
 * kind ("AWS access key ID") in kind. */
const struct audit_check *audit_scan_content(const char *data, size_t len, const char **kind);
/* Should the content of this path be scanned (documentation and test
 * data of packages are not: they hold example keys)? */
bool audit_scan_path(const char *path);
/* ENV or label key=value that looks like a secret. */
bool audit_secret_var(const char *key, const char *value);
/* A history step that fetches remote content (ADD URL, curl|sh). */
bool audit_remote_source(const char *created_by);
/* USER runs as root? */
bool audit_user_is_root(const char *user);

/* Accounts: findings for empty passwords, duplicate uids and gids.  The
 * callback receives each (check, evidence, detail). */
typedef void (*audit_emit_fn)(void *ctx, const struct audit_check *c, const char *evidence, const char *detail);
void audit_accounts(const char *passwd, const char *shadow, const char *group, audit_emit_fn emit, void *ctx);

/* --- package databases (sbom.c) --- */
typedef void (*package_fn)(void *ctx, const char *name, const char *version, const char *arch, const char *source,
			   const char *license);
/* dpkg's status file (or a status.d entry): installed packages. */
void sbom_parse_dpkg(const char *text, size_t len, package_fn fn, void *ctx);
/* apk's installed database. */
void sbom_parse_apk(const char *text, size_t len, package_fn fn, void *ctx);
/* A package URL: pkg:deb/debian/NAME@VERSION?arch=ARCH. */
char *sbom_purl(const struct package *p, const char *os_id, const char *os_version);

#endif
