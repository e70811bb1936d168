/*
 * Fuzz target: the tar-entry path logic (cleaning, whiteouts) and the
 * audit's content rules, on hostile names and bytes.  A cleaned path must
 * never hold a ".." component nor start with '/'.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/audit.h"
#include "image/tarpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void noop_pkg(void *ctx, const char *n, const char *v, const char *a, const char *s, const char *l)
{
	(void)ctx, (void)n, (void)v, (void)a, (void)s, (void)l;
}

static void noop_emit(void *ctx, const struct audit_check *c, const char *ev, const char *d)
{
	(void)ctx, (void)c, (void)ev, (void)d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[512], clean[512], target[512], parent[512];
	char *text;
	const char *kind, *last;
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;

	memcpy(name, data, n);
	name[n] = '\0';
	if (tarpath_clean(name, clean, sizeof(clean)) == 0) {
		if (clean[0] == '/' || strcmp(clean, "..") == 0 || strncmp(clean, "../", 3) == 0 ||
		    strstr(clean, "/../") || (strlen(clean) >= 3 && strcmp(clean + strlen(clean) - 3, "/..") == 0))
			abort();
		(void)tarpath_classify(clean, target, sizeof(target));
		tarpath_split(clean, parent, sizeof(parent), &last);
		if (!tarpath_within(clean, parent))
			abort();
		(void)audit_secret_file(clean);
		(void)audit_scan_path(clean);
	}
	(void)audit_scan_content((const char *)data, size, &kind);
	/* NUL-terminated copies for the text rules */
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	(void)audit_secret_var(text, text + strlen(text) / 2);
	(void)audit_remote_source(text);
	audit_accounts(text, text, text, noop_emit, NULL);
	sbom_parse_dpkg(text, size, noop_pkg, NULL);
	sbom_parse_apk(text, size, noop_pkg, NULL);
	free(text);
	return 0;
}
