/* The package inventory: dpkg's and apk's databases, written as
 * CycloneDX 1.5 or SPDX 2.3 JSON with package URLs. */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "casulo-config.h"
#include "image/audit.h"

#define FIELD_MAX 256

/* Calls fn for each stanza (blank-line separated) of "Key: value" or
 * "K:value" records; get() reads a field of the current stanza. */
struct stanza {
	const char *start, *end;
};

static bool get_field(const struct stanza *s, const char *key, size_t klen, bool colon_space, char *out)
{
	for (const char *line = s->start; line < s->end;) {
		const char *nl = memchr(line, '\n', (size_t)(s->end - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(s->end - line);
		if (n > klen && memcmp(line, key, klen) == 0 && line[klen] == ':') {
			const char *v = line + klen + 1;
			size_t vl = n - klen - 1;
			if (colon_space)
				while (vl && (*v == ' ' || *v == '\t'))
					v++, vl--;
			while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
				vl--;
			if (vl >= FIELD_MAX)
				vl = FIELD_MAX - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return true;
		}
		line = nl ? nl + 1 : s->end;
	}
	out[0] = '\0';
	return false;
}

static void for_each_stanza(const char *text, size_t len, void (*fn)(const struct stanza *, void *), void *ctx)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		struct stanza s = {.start = p};
		const char *q = p;
		/* a stanza ends at an empty line */
		for (;;) {
			const char *nl = memchr(q, '\n', (size_t)(end - q));
			if (nl == NULL) {
				q = end;
				break;
			}
			if (nl + 1 < end && (nl[1] == '\n' || (nl[1] == '\r' && nl + 2 < end && nl[2] == '\n'))) {
				q = nl + 1;
				break;
			}
			q = nl + 1;
		}
		s.end = q;
		if (s.end > s.start)
			fn(&s, ctx);
		p = q;
		while (p < end && (*p == '\n' || *p == '\r'))
			p++;
	}
}

struct parse_ctx {
	package_fn fn;
	void *ctx;
};

static void dpkg_stanza(const struct stanza *s, void *data)
{
	struct parse_ctx *c = data;
	char name[FIELD_MAX], version[FIELD_MAX], arch[FIELD_MAX], source[FIELD_MAX], status[FIELD_MAX];

	if (!get_field(s, "Package", 7, true, name) || !get_field(s, "Version", 7, true, version) || !name[0])
		return;
	/* status.d entries (distroless) have no Status: installed by being there */
	if (get_field(s, "Status", 6, true, status)) {
		/* "want flag state": only the state "installed" counts */
		const char *state = strrchr(status, ' ');
		if (state == NULL || strcmp(state + 1, "installed") != 0)
			return;
	}
	get_field(s, "Architecture", 12, true, arch);
	get_field(s, "Source", 6, true, source);
	{
		char *paren = strchr(source, ' '); /* "src (1.2-3)" */
		if (paren)
			*paren = '\0';
	}
	c->fn(c->ctx, name, version, arch, source[0] ? source : NULL, NULL);
}

void sbom_parse_dpkg(const char *text, size_t len, package_fn fn, void *ctx)
{
	struct parse_ctx c = {fn, ctx};

	for_each_stanza(text, len, dpkg_stanza, &c);
}

static void apk_stanza(const struct stanza *s, void *data)
{
	struct parse_ctx *c = data;
	char name[FIELD_MAX], version[FIELD_MAX], arch[FIELD_MAX], origin[FIELD_MAX], license[FIELD_MAX];

	if (!get_field(s, "P", 1, false, name) || !get_field(s, "V", 1, false, version) || !name[0])
		return;
	get_field(s, "A", 1, false, arch);
	get_field(s, "o", 1, false, origin);
	get_field(s, "L", 1, false, license);
	c->fn(c->ctx, name, version, arch, origin[0] ? origin : NULL, license[0] ? license : NULL);
}

void sbom_parse_apk(const char *text, size_t len, package_fn fn, void *ctx)
{
	struct parse_ctx c = {fn, ctx};

	for_each_stanza(text, len, apk_stanza, &c);
}

/* Percent-encode what a purl component may not hold as is. */
static void purl_escape(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in && o + 4 < size; in++) {
		unsigned char ch = (unsigned char)*in;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
		    ch == '-' || ch == '_' || ch == '~') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
}

char *sbom_purl(const struct package *p, const char *os_id, const char *os_version)
{
	char name[3 * FIELD_MAX], version[3 * FIELD_MAX], arch[3 * FIELD_MAX], distro[3 * FIELD_MAX] = "";
	const char *ns = os_id && *os_id ? os_id : strcmp(p->type, "apk") == 0 ? "alpine" : "debian";
	char *out;

	purl_escape(p->name, name, sizeof(name));
	purl_escape(p->version, version, sizeof(version));
	purl_escape(p->arch ? p->arch : "", arch, sizeof(arch));
	if (os_version && *os_version) {
		char v[FIELD_MAX];
		snprintf(v, sizeof(v), "%s-%s", ns, os_version);
		purl_escape(v, distro, sizeof(distro));
	}
	if (asprintf(&out, "pkg:%s/%s/%s@%s%s%s%s%s", p->type, ns, name, version, arch[0] ? "?arch=" : "", arch,
		     distro[0] ? (arch[0] ? "&distro=" : "?distro=") : "", distro) < 0)
		return NULL;
	return out;
}

int sbom_format_parse(const char *s, enum sbom_format *out)
{
	if (strcmp(s, "cyclonedx") == 0)
		*out = SBOM_CYCLONEDX;
	else if (strcmp(s, "spdx") == 0)
		*out = SBOM_SPDX;
	else
		return -EINVAL;
	return 0;
}

static void uuid4(char out[37])
{
	unsigned char b[16] = {0};

	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)(rand() & 0xff);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
		 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void timestamp(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_object *cyclonedx(const struct audit_report *rep)
{
	json_object *doc = json_object_new_object(), *meta = json_object_new_object(),
		    *tools = json_object_new_object();
	json_object *tool_list = json_object_new_array(), *tool = json_object_new_object();
	json_object *comp = json_object_new_object(), *comps = json_object_new_array();
	char uuid[37], urn[64], ts[32];

	uuid4(uuid);
	snprintf(urn, sizeof(urn), "urn:uuid:%s", uuid);
	timestamp(ts);
	json_object_object_add(doc, "bomFormat", json_object_new_string("CycloneDX"));
	json_object_object_add(doc, "specVersion", json_object_new_string("1.5"));
	json_object_object_add(doc, "serialNumber", json_object_new_string(urn));
	json_object_object_add(doc, "version", json_object_new_int(1));
	json_object_object_add(meta, "timestamp", json_object_new_string(ts));
	json_object_object_add(tool, "type", json_object_new_string("application"));
	json_object_object_add(tool, "name", json_object_new_string("casulo"));
	json_object_object_add(tool, "version", json_object_new_string(CASULO_VERSION));
	json_object_array_add(tool_list, tool);
	json_object_object_add(tools, "components", tool_list);
	json_object_object_add(meta, "tools", tools);
	json_object_object_add(comp, "type", json_object_new_string("container"));
	json_object_object_add(comp, "bom-ref", json_object_new_string(rep->digest ? rep->digest : "image"));
	json_object_object_add(comp, "name", json_object_new_string(rep->image ? rep->image : "image"));
	if (rep->digest)
		json_object_object_add(comp, "version", json_object_new_string(rep->digest));
	json_object_object_add(meta, "component", comp);
	json_object_object_add(doc, "metadata", meta);
	for (size_t i = 0; i < rep->n_packages; i++) {
		const struct package *p = &rep->packages[i];
		json_object *c = json_object_new_object(), *props = json_object_new_array(), *prop;
		char *purl = sbom_purl(p, rep->os_id, rep->os_version);
		char ref[64];
		snprintf(ref, sizeof(ref), "pkg-%zu", i);
		json_object_object_add(c, "type", json_object_new_string("library"));
		json_object_object_add(c, "bom-ref", json_object_new_string(purl ? purl : ref));
		json_object_object_add(c, "name", json_object_new_string(p->name));
		json_object_object_add(c, "version", json_object_new_string(p->version));
		if (purl)
			json_object_object_add(c, "purl", json_object_new_string(purl));
		if (p->license) {
			json_object *ls = json_object_new_array(), *l = json_object_new_object(),
				    *lic = json_object_new_object();
			json_object_object_add(lic, "name", json_object_new_string(p->license));
			json_object_object_add(l, "license", lic);
			json_object_array_add(ls, l);
			json_object_object_add(c, "licenses", ls);
		}
		if (p->layer) {
			prop = json_object_new_object();
			json_object_object_add(prop, "name", json_object_new_string("casulo:layer"));
			json_object_object_add(prop, "value", json_object_new_string(p->layer));
			json_object_array_add(props, prop);
		}
		if (p->source) {
			prop = json_object_new_object();
			json_object_object_add(prop, "name", json_object_new_string("casulo:source-package"));
			json_object_object_add(prop, "value", json_object_new_string(p->source));
			json_object_array_add(props, prop);
		}
		json_object_object_add(c, "properties", props);
		json_object_array_add(comps, c);
		free(purl);
	}
	json_object_object_add(doc, "components", comps);
	return doc;
}

static void spdx_id(const char *prefix, const char *name, size_t i, char *out, size_t size)
{
	size_t o = (size_t)snprintf(out, size, "SPDXRef-%s-", prefix);

	for (; *name && o + 16 < size; name++)
		out[o++] = (isalnum((unsigned char)*name) || *name == '.' || *name == '-') ? *name : '-';
	snprintf(out + o, size - o, "-%zu", i);
}

static json_object *spdx(const struct audit_report *rep)
{
	json_object *doc = json_object_new_object(), *ci = json_object_new_object(),
		    *creators = json_object_new_array();
	json_object *pkgs = json_object_new_array(), *rels = json_object_new_array(), *img = json_object_new_object(),
		    *r;
	char uuid[37], ns[128], ts[32], tool[64];

	uuid4(uuid);
	timestamp(ts);
	snprintf(ns, sizeof(ns), "urn:uuid:%s", uuid);
	snprintf(tool, sizeof(tool), "Tool: casulo-%s", CASULO_VERSION);
	json_object_object_add(doc, "spdxVersion", json_object_new_string("SPDX-2.3"));
	json_object_object_add(doc, "dataLicense", json_object_new_string("CC0-1.0"));
	json_object_object_add(doc, "SPDXID", json_object_new_string("SPDXRef-DOCUMENT"));
	json_object_object_add(doc, "name", json_object_new_string(rep->image ? rep->image : "image"));
	json_object_object_add(doc, "documentNamespace", json_object_new_string(ns));
	json_object_array_add(creators, json_object_new_string(tool));
	json_object_object_add(ci, "creators", creators);
	json_object_object_add(ci, "created", json_object_new_string(ts));
	json_object_object_add(doc, "creationInfo", ci);
	json_object_object_add(img, "SPDXID", json_object_new_string("SPDXRef-Image"));
	json_object_object_add(img, "name", json_object_new_string(rep->image ? rep->image : "image"));
	if (rep->digest)
		json_object_object_add(img, "versionInfo", json_object_new_string(rep->digest));
	json_object_object_add(img, "downloadLocation", json_object_new_string("NOASSERTION"));
	json_object_object_add(img, "filesAnalyzed", json_object_new_boolean(false));
	json_object_object_add(img, "primaryPackagePurpose", json_object_new_string("CONTAINER"));
	json_object_array_add(pkgs, img);
	r = json_object_new_object();
	json_object_object_add(r, "spdxElementId", json_object_new_string("SPDXRef-DOCUMENT"));
	json_object_object_add(r, "relationshipType", json_object_new_string("DESCRIBES"));
	json_object_object_add(r, "relatedSpdxElement", json_object_new_string("SPDXRef-Image"));
	json_object_array_add(rels, r);
	for (size_t i = 0; i < rep->n_packages; i++) {
		const struct package *p = &rep->packages[i];
		json_object *o = json_object_new_object(), *refs = json_object_new_array(),
			    *ref = json_object_new_object();
		char id[FIELD_MAX + 64], *purl = sbom_purl(p, rep->os_id, rep->os_version);
		spdx_id(p->type, p->name, i, id, sizeof(id));
		json_object_object_add(o, "SPDXID", json_object_new_string(id));
		json_object_object_add(o, "name", json_object_new_string(p->name));
		json_object_object_add(o, "versionInfo", json_object_new_string(p->version));
		json_object_object_add(o, "downloadLocation", json_object_new_string("NOASSERTION"));
		json_object_object_add(o, "filesAnalyzed", json_object_new_boolean(false));
		json_object_object_add(o, "licenseConcluded", json_object_new_string("NOASSERTION"));
		json_object_object_add(o, "licenseDeclared", json_object_new_string("NOASSERTION"));
		json_object_object_add(o, "copyrightText", json_object_new_string("NOASSERTION"));
		if (p->source)
			json_object_object_add(o, "sourceInfo", json_object_new_string(p->source));
		json_object_object_add(ref, "referenceCategory", json_object_new_string("PACKAGE-MANAGER"));
		json_object_object_add(ref, "referenceType", json_object_new_string("purl"));
		json_object_object_add(ref, "referenceLocator", json_object_new_string(purl ? purl : ""));
		json_object_array_add(refs, ref);
		json_object_object_add(o, "externalRefs", refs);
		json_object_array_add(pkgs, o);
		r = json_object_new_object();
		json_object_object_add(r, "spdxElementId", json_object_new_string("SPDXRef-Image"));
		json_object_object_add(r, "relationshipType", json_object_new_string("CONTAINS"));
		json_object_object_add(r, "relatedSpdxElement", json_object_new_string(id));
		json_object_array_add(rels, r);
		free(purl);
	}
	json_object_object_add(doc, "packages", pkgs);
	json_object_object_add(doc, "relationships", rels);
	return doc;
}

int sbom_write(const struct audit_report *rep, enum sbom_format f, FILE *out, struct err **e)
{
	json_object *doc = f == SBOM_SPDX ? spdx(rep) : cyclonedx(rep);

	if (doc == NULL)
		return err_set(e, ENOMEM, "inventory");
	fprintf(out, "%s\n",
		json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
	if (fflush(out) != 0)
		return err_set(e, errno, "inventory: write");
	return 0;
}

int sbom_write_file(const struct audit_report *rep, enum sbom_format f, const char *path, struct err **e)
{
	FILE *out = fopen(path, "we");
	int r;

	if (out == NULL)
		return err_set(e, errno, "inventory '%s'", path);
	r = sbom_write(rep, f, out, e);
	if (fclose(out) != 0 && r == 0)
		r = err_set(e, errno, "inventory '%s'", path);
	return r;
}
