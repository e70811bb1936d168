/* The audit's rules: pure functions over names, contents and the config. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "image/audit.h"

const struct audit_check audit_checks[] = {
    {"private-key", AUDIT_CRITICAL, "private key in the image",
     "remove the key from every layer (a later RUN rm does not: the layer still ships it); mount it at run time "
     "or use a build secret"},
    {"cloud-credentials", AUDIT_CRITICAL, "cloud or registry credentials in the image",
     "remove the credentials file from every layer and rotate the credentials; pass them at run time"},
    {"unsafe-path", AUDIT_CRITICAL, "layer entry that would leave the rootfs",
     "rebuild the layer: no entry name or hard link target may hold '..' (unpackers that follow it write "
     "outside the container's rootfs)"},
    {"empty-password", AUDIT_CRITICAL, "account with an empty password",
     "lock the account (passwd -l) or set a password hash; use '*' or '!' for accounts that never log in"},
    {"token", AUDIT_HIGH, "access token in a file",
     "remove the token from every layer and revoke it; inject tokens at run time"},
    {"env-file", AUDIT_HIGH, ".env file in the image",
     "keep .env files out of the build context (.dockerignore) and pass settings at run time"},
    {"credential-file", AUDIT_HIGH, "credentials file in the image",
     "remove the file from every layer (use a build secret) and rotate what it held"},
    {"secret-env", AUDIT_HIGH, "secret in an environment variable of the image",
     "do not bake secrets into ENV: every user of the image can read them; pass them at run time"},
    {"secret-label", AUDIT_HIGH, "secret in a label of the image", "remove the secret from LABEL and rotate it"},
    {"user-root", AUDIT_MEDIUM, "the image runs as root",
     "add a USER with an unprivileged account (RUN useradd ...; USER app)"},
    {"world-writable", AUDIT_MEDIUM, "world-writable file or directory",
     "chmod o-w (directories that must be shared need the sticky bit: chmod 1777)"},
    {"duplicate-uid", AUDIT_MEDIUM, "accounts sharing a uid", "give each account its own uid in /etc/passwd"},
    {"git-directory", AUDIT_MEDIUM, ".git directory left in the image",
     "exclude .git from the build context (.dockerignore): it carries the whole source history"},
    {"remote-source", AUDIT_MEDIUM, "build step fetched remote content",
     "download with checksum verification (or COPY a vetted file) instead of ADD URL or curl | sh"},
    {"setuid", AUDIT_LOW, "setuid or setgid file",
     "remove the bit where it is not needed (chmod u-s,g-s), or the file"},
    {"sudo", AUDIT_LOW, "sudo installed", "containers do not need sudo: run as the right USER instead"},
    {"package-cache", AUDIT_LOW, "package manager cache left in the image",
     "clean in the same RUN that installs (apt-get clean && rm -rf /var/lib/apt/lists/*, apk --no-cache)"},
    {"duplicate-gid", AUDIT_LOW, "groups sharing a gid", "give each group its own gid in /etc/group"},
    {"latest-tag", AUDIT_LOW, "image named by the 'latest' tag",
     "use a version tag or a digest so that what runs is what was checked"},
    {NULL, AUDIT_SEVERITY_NONE, NULL, NULL},
};

const struct audit_check *audit_check_find(const char *id)
{
	for (const struct audit_check *c = audit_checks; c->id; c++)
		if (strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Does path end with "/suffix" or equal suffix? */
static bool path_is(const char *path, const char *suffix)
{
	size_t n = strlen(path), k = strlen(suffix);

	return n >= k && strcmp(path + n - k, suffix) == 0 && (n == k || path[n - k - 1] == '/');
}

const struct audit_check *audit_secret_file(const char *path)
{
	const char *b = base_name(path);

	if (strcmp(b, ".env") == 0 ||
	    (strncmp(b, ".env.", 5) == 0 && !ends_with(b, ".example") && !ends_with(b, ".sample") &&
	     !ends_with(b, ".template") && !ends_with(b, ".dist")))
		return audit_check_find("env-file");
	if (strcmp(b, "id_rsa") == 0 || strcmp(b, "id_dsa") == 0 || strcmp(b, "id_ecdsa") == 0 ||
	    strcmp(b, "id_ed25519") == 0 || ends_with(b, ".key") || ends_with(b, ".pem") || ends_with(b, ".p8"))
		return audit_check_find("private-key");
	if (path_is(path, ".aws/credentials") || path_is(path, ".docker/config.json") ||
	    path_is(path, ".kube/config") || strcmp(b, "application_default_credentials.json") == 0 ||
	    path_is(path, ".azure/accessTokens.json") ||
	    (ends_with(b, ".json") && (strstr(b, "service-account") || strstr(b, "service_account"))))
		return audit_check_find("cloud-credentials");
	if (strcmp(b, ".git-credentials") == 0 || strcmp(b, ".netrc") == 0 || strcmp(b, "_netrc") == 0 ||
	    strcmp(b, ".npmrc") == 0 || strcmp(b, ".pypirc") == 0 || strcmp(b, ".pgpass") == 0 ||
	    strcmp(b, ".my.cnf") == 0 || strcmp(b, ".vault-token") == 0 || strcmp(b, ".htpasswd") == 0)
		return audit_check_find("credential-file");
	return NULL;
}

static bool contains(const char *data, size_t len, const char *needle)
{
	return memmem(data, len, needle, strlen(needle)) != NULL;
}

/* A PEM private key: the header and base64 on the next line. */
static bool has_private_key(const char *data, size_t len)
{
	static const char begin[] = "-----BEGIN ";
	const char *p = data, *end = data + len;

	while ((p = memmem(p, (size_t)(end - p), begin, sizeof(begin) - 1))) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol ? eol : end;
		if (memmem(p, (size_t)(line_end - p), "PRIVATE KEY-----", 16) && eol) {
			/* a real key has base64 (or PEM headers) below */
			const char *q = eol + 1;
			size_t run = 0;
			while (q < end && (isalnum((unsigned char)*q) || *q == '+' || *q == '/' || *q == '=' ||
					   *q == ':' || *q == '-' || *q == ' '))
				q++, run++;
			if (run >= 16)
				return true;
		}
		p += sizeof(begin) - 1;
	}
	return false;
}

bool audit_secret_file_confirmed(const struct audit_check *c, const char *path, const char *data, size_t len)
{
	const char *b = base_name(path);

	if (c == NULL)
		return false;
	if (strcmp(c->id, "private-key") == 0)
		return has_private_key(data, len);
	if (strcmp(c->id, "env-file") == 0) {
		/* some assignment in it, not only comments */
		for (const char *line = data; line && line < data + len;) {
			const char *nl = memchr(line, '\n', (size_t)(data + len - line));
			size_t n = nl ? (size_t)(nl - line) : (size_t)(data + len - line);
			while (n && (*line == ' ' || *line == '\t'))
				line++, n--;
			if (n && *line != '#' && memchr(line, '=', n))
				return true;
			line = nl ? nl + 1 : NULL;
		}
		return false;
	}
	if (strcmp(c->id, "cloud-credentials") == 0) {
		if (path_is(path, ".aws/credentials"))
			return contains(data, len, "aws_secret_access_key") || contains(data, len, "aws_session_token");
		if (path_is(path, ".docker/config.json"))
			return contains(data, len, "\"auth\"") || contains(data, len, "identitytoken");
		if (path_is(path, ".kube/config"))
			return contains(data, len, "token:") || contains(data, len, "client-key-data") ||
			       contains(data, len, "password:");
		if (ends_with(b, ".json"))
			return contains(data, len, "\"private_key\"") || contains(data, len, "\"refresh_token\"") ||
			       contains(data, len, "accessToken");
		return len > 0;
	}
	if (strcmp(c->id, "credential-file") == 0) {
		if (strcmp(b, ".npmrc") == 0)
			return contains(data, len, "_authToken") || contains(data, len, "_auth") ||
			       contains(data, len, "_password");
		if (strcmp(b, ".pypirc") == 0 || strcmp(b, ".my.cnf") == 0)
			return contains(data, len, "password");
		if (strcmp(b, ".netrc") == 0 || strcmp(b, "_netrc") == 0)
			return contains(data, len, "password");
		return len > 0;
	}
	return false;
}

static bool upper_alnum(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool token_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* n characters of class at p (within end), then a boundary. */
static bool run_of(const char *p, const char *end, size_t n, bool (*cls)(char))
{
	if ((size_t)(end - p) < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!cls(p[i]))
			return false;
	return p + n == end || !cls(p[n]);
}

static bool alnum_char(char c)
{
	return isalnum((unsigned char)c);
}

const struct audit_check *audit_scan_content(const char *data, size_t len, const char **kind)
{
	const char *end = data + len;

	if (has_private_key(data, len)) {
		*kind = "PEM private key";
		return audit_check_find("private-key");
	}
	for (const char *p = data; p < end; p++) {
		const char *prev = p > data ? p - 1 : NULL;
		switch (*p) {
		case 'A':
			/* AWS access key IDs: AKIA/ASIA + 16; the docs' examples end in EXAMPLE */
			if ((end - p >= 4 && (memcmp(p, "AKIA", 4) == 0 || memcmp(p, "ASIA", 4) == 0)) &&
			    (!prev || !upper_alnum(*prev)) && run_of(p + 4, end, 16, upper_alnum) &&
			    memcmp(p + 13, "EXAMPLE", 7) != 0) {
				*kind = "AWS access key ID";
				return audit_check_find("cloud-credentials");
			}
			if (end - p >= 4 && memcmp(p, "AIza", 4) == 0 && (!prev || !token_char(*prev)) &&
			    run_of(p + 4, end, 35, token_char)) {
				*kind = "Google API key";
				return audit_check_find("token");
			}
			break;
		case 'g':
			if (end - p >= 4 && p[1] == 'h' && strchr("pousr", p[2]) && p[3] == '_' &&
			    (!prev || !token_char(*prev)) && run_of(p + 4, end, 36, alnum_char)) {
				*kind = "GitHub token";
				return audit_check_find("token");
			}
			if (end - p >= 11 && memcmp(p, "github_pat_", 11) == 0 && run_of(p + 11, end, 82, token_char)) {
				*kind = "GitHub token";
				return audit_check_find("token");
			}
			if (end - p >= 6 && memcmp(p, "glpat-", 6) == 0 && run_of(p + 6, end, 20, token_char)) {
				*kind = "GitLab token";
				return audit_check_find("token");
			}
			break;
		case 'x':
			if (end - p >= 15 && p[1] == 'o' && p[2] == 'x' && strchr("abpr", p[3]) && p[4] == '-' &&
			    (!prev || !token_char(*prev))) {
				size_t digits = 0;
				for (const char *q = p + 5; q < end && (isdigit((unsigned char)*q) || *q == '-'); q++)
					digits++;
				if (digits >= 10) {
					*kind = "Slack token";
					return audit_check_find("token");
				}
			}
			break;
		case 's':
			if (end - p >= 8 && (memcmp(p, "sk_live_", 8) == 0 || memcmp(p, "rk_live_", 8) == 0) &&
			    run_of(p + 8, end, 24, alnum_char)) {
				*kind = "Stripe secret key";
				return audit_check_find("token");
			}
			break;
		}
	}
	return NULL;
}

bool audit_scan_path(const char *path)
{
	static const char *const skip_prefix[] = {
	    "usr/share/doc/",
	    "usr/share/man/",
	    "usr/share/info/",
	    "usr/share/locale/",
	    "usr/include/",
	    "usr/share/i18n/",
	    "usr/src/",
	    "usr/share/common-licenses/",
	    "usr/share/ca-certificates/",
	    "etc/ssl/certs/",
	};
	static const char *const skip_component[] = {"test", "tests", "testdata", "testing", "examples", "example"};

	for (size_t i = 0; i < sizeof(skip_prefix) / sizeof(skip_prefix[0]); i++)
		if (strncmp(path, skip_prefix[i], strlen(skip_prefix[i])) == 0)
			return false;
	for (const char *p = path; p && *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (slash) /* directories only */
			for (size_t i = 0; i < sizeof(skip_component) / sizeof(skip_component[0]); i++)
				if (n == strlen(skip_component[i]) && strncmp(p, skip_component[i], n) == 0)
					return false;
		p = slash ? slash + 1 : NULL;
	}
	return true;
}

bool audit_secret_var(const char *key, const char *value)
{
	static const char *const words[] = {"PASSWORD", "PASSWD",  "PASSPHRASE", "SECRET",	"TOKEN",
					    "APIKEY",	"API_KEY", "ACCESS_KEY", "PRIVATE_KEY", "CREDENTIAL"};
	static const char *const not_secret_suffix[] = {"_FILE", "_PATH", "_DIR", "_URL_FILE"};
	char up[256];
	size_t n = strlen(key);
	const char *kind;

	if (value == NULL || *value == '\0')
		return false;
	if (audit_scan_content(value, strlen(value), &kind))
		return true;
	if (n >= sizeof(up))
		n = sizeof(up) - 1;
	for (size_t i = 0; i < n; i++)
		up[i] = (char)toupper((unsigned char)key[i]);
	up[n] = '\0';
	for (size_t i = 0; i < sizeof(not_secret_suffix) / sizeof(not_secret_suffix[0]); i++)
		if (ends_with(up, not_secret_suffix[i]))
			return false;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(up, words[i]))
			return true;
	return false;
}

bool audit_remote_source(const char *created_by)
{
	const char *p;

	if (created_by == NULL)
		return false;
	/* docker history: "/bin/sh -c #(nop) ADD https://... in /" ; buildkit: "ADD https://... # buildkit" */
	for (p = strstr(created_by, "ADD "); p; p = strstr(p + 4, "ADD ")) {
		const char *arg = p + 4;
		while (*arg == ' ')
			arg++;
		while (*arg == '-') { /* --chown=... */
			while (*arg && *arg != ' ')
				arg++;
			while (*arg == ' ')
				arg++;
		}
		if (strncmp(arg, "http://", 7) == 0 || strncmp(arg, "https://", 8) == 0)
			return true;
	}
	/* curl/wget piped into a shell */
	if ((strstr(created_by, "curl ") || strstr(created_by, "wget ")) &&
	    (strstr(created_by, "| sh") || strstr(created_by, "|sh") || strstr(created_by, "| bash") ||
	     strstr(created_by, "|bash")))
		return true;
	return false;
}

bool audit_user_is_root(const char *user)
{
	char name[256];
	const char *colon;

	if (user == NULL || *user == '\0')
		return true;
	colon = strchr(user, ':');
	snprintf(name, sizeof(name), "%.*s", colon ? (int)(colon - user) : (int)strlen(user), user);
	return strcmp(name, "root") == 0 || strcmp(name, "0") == 0 || name[0] == '\0';
}

/* Field i of a colon-separated line of n bytes into out. */
static bool field_of(const char *line, size_t n, int i, char *out, size_t size)
{
	const char *p = line, *end = line + n, *q;

	for (int k = 0; k < i; k++) {
		p = memchr(p, ':', (size_t)(end - p));
		if (p == NULL)
			return false;
		p++;
	}
	q = memchr(p, ':', (size_t)(end - p));
	n = q ? (size_t)(q - p) : (size_t)(end - p);
	if (n >= size)
		n = size - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

#define FOR_EACH_LINE(text, line, n)                                                                                   \
	for (const char *line = (text), *_nl; line && *line; line = _nl ? _nl + 1 : NULL)                              \
		for (size_t n = ((_nl = strchr(line, '\n')) ? (size_t)(_nl - line) : strlen(line)), _once = 1; _once;  \
		     _once = 0)

struct id_seen {
	unsigned long id;
	char name[64];
};

/* Accounts sharing an id: one finding per id. */
static void duplicates(const char *text, const char *check, const char *what, audit_emit_fn emit, void *ctx)
{
	struct id_seen *seen = NULL;
	size_t n_seen = 0;

	FOR_EACH_LINE(text, line, n)
	{
		char name[64], id[32], *end;
		unsigned long v;
		struct id_seen *grown;
		if (n == 0 || line[0] == '#' || !field_of(line, n, 0, name, sizeof(name)) ||
		    !field_of(line, n, 2, id, sizeof(id)))
			continue;
		v = strtoul(id, &end, 10);
		if (*id == '\0' || *end)
			continue;
		for (size_t i = 0; i < n_seen; i++) {
			if (seen[i].id == v && seen[i].name[0]) {
				char ev[160], detail[200];
				snprintf(ev, sizeof(ev), "etc/%s", what);
				snprintf(detail, sizeof(detail), "%s %lu: %s and %s",
					 strcmp(what, "passwd") == 0 ? "uid" : "gid", v, seen[i].name, name);
				emit(ctx, audit_check_find(check), ev, detail);
				seen[i].name[0] = '\0'; /* once per id */
				goto next;
			}
		}
		grown = realloc(seen, (n_seen + 1) * sizeof(*seen));
		if (grown == NULL)
			break;
		seen = grown;
		seen[n_seen].id = v;
		snprintf(seen[n_seen].name, sizeof(seen[n_seen].name), "%s", name);
		n_seen++;
	next:;
	}
	free(seen);
}

void audit_accounts(const char *passwd, const char *shadow, const char *group, audit_emit_fn emit, void *ctx)
{
	const struct audit_check *empty = audit_check_find("empty-password");

	if (shadow) {
		FOR_EACH_LINE(shadow, line, n)
		{
			char name[64], hash[16], detail[128];
			if (n == 0 || line[0] == '#' || !field_of(line, n, 0, name, sizeof(name)) ||
			    !field_of(line, n, 1, hash, sizeof(hash)))
				continue;
			if (hash[0] == '\0') {
				snprintf(detail, sizeof(detail), "account '%s' logs in without a password", name);
				emit(ctx, empty, "etc/shadow", detail);
			}
		}
	}
	if (passwd) {
		FOR_EACH_LINE(passwd, line, n)
		{
			char name[64], hash[16], detail[128];
			if (n == 0 || line[0] == '#' || !field_of(line, n, 0, name, sizeof(name)) ||
			    !field_of(line, n, 1, hash, sizeof(hash)))
				continue;
			/* An empty field in passwd itself bypasses shadow. */
			if (hash[0] == '\0') {
				snprintf(detail, sizeof(detail), "account '%s' has an empty password field in passwd",
					 name);
				emit(ctx, empty, "etc/passwd", detail);
			}
		}
		duplicates(passwd, "duplicate-uid", "passwd", emit, ctx);
	}
	if (group)
		duplicates(group, "duplicate-gid", "group", emit, ctx);
}
